/* SQLite store. Error codes are mapped to -errno here only (table below); SQLite's own text
 * is kept for the message the caller prints.
 *
 * Dedup is done by the database: codes are UNIQUE(kind, value), sightings UNIQUE(code,
 * message), messages UNIQUE(account, folder, uidvalidity, uid, source). A code is "new" when
 * its INSERT changed a row, or when it was known only from untrusted mail and now comes from a
 * trusted sender. */
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "store.h"
#include "strbuf.h"

#define STORE_BUSY_TIMEOUT_MS 5000
#define OTP_LIFETIME_SEC (30 * 60)

struct Store {
        sqlite3 *db;
        bool read_only;
};

static int errno_from_sqlite(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_TOOBIG:
                return -E2BIG;
        default:
                return -EIO;
        }
}

static void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

void stored_code_done(StoredCode *c) {
        free(c->value);
        free(c->display);
        free(c->sender);
        free(c->sender_name);
        free(c->account);
        free(c->folder);
        free(c->subject);
        *c = (StoredCode) {};
}

void stored_codes_free(StoredCode *c, size_t n) {
        for (size_t i = 0; i < n; i++)
                stored_code_done(&c[i]);
        free(c);
}

int store_default_path(char **ret) {
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        int r;

        if (xdg && xdg[0] == '/')
                r = asprintf(ret, "%s/alcode/alcode.db", xdg);
        else if (home && home[0] == '/')
                r = asprintf(ret, "%s/.local/share/alcode/alcode.db", home);
        else
                return -ENXIO;
        return r < 0 ? -ENOMEM : 0;
}

/* rfc3339(t, tz_minutes): the message date with its own offset, as DESIGN.md's JSON shows. */
static void sql_rfc3339(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
        char buf[40];

        if (argc < 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL) {
                sqlite3_result_null(ctx);
                return;
        }
        format_rfc3339(sqlite3_value_int64(argv[0]), argc > 1 ? sqlite3_value_int(argv[1]) : 0, buf,
                       sizeof buf);
        sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
}

static int exec(Store *s, const char *sql) {
        return errno_from_sqlite(sqlite3_exec(s->db, sql, NULL, NULL, NULL));
}

static const char *const migrations[] = {
        /* 0 → 1 */
        "CREATE TABLE messages ("
        "  id INTEGER PRIMARY KEY,"
        "  account TEXT NOT NULL,"       /* '' for local files */
        "  folder TEXT NOT NULL,"
        "  uidvalidity INTEGER NOT NULL,"
        "  uid INTEGER NOT NULL,"
        "  source TEXT NOT NULL,"        /* file path for local files, '' for IMAP */
        "  message_id TEXT,"
        "  sender TEXT,"
        "  sender_name TEXT,"
        "  subject TEXT,"
        "  date INTEGER NOT NULL,"
        "  date_tz INTEGER NOT NULL,"
        "  seen_at INTEGER NOT NULL,"
        "  UNIQUE (account, folder, uidvalidity, uid, source));"
        "CREATE TABLE codes ("
        "  id INTEGER PRIMARY KEY,"
        "  kind TEXT NOT NULL,"
        "  value TEXT NOT NULL,"
        "  display TEXT NOT NULL,"
        "  trusted INTEGER NOT NULL,"
        "  rule TEXT NOT NULL,"
        "  message INTEGER NOT NULL REFERENCES messages(id),"
        "  date INTEGER NOT NULL,"
        "  date_tz INTEGER NOT NULL,"
        "  first_seen INTEGER NOT NULL,"
        "  last_seen INTEGER NOT NULL,"
        "  expires_at INTEGER,"
        "  UNIQUE (kind, value));"
        "CREATE INDEX codes_by_date ON codes (date DESC, id DESC);"
        "CREATE INDEX codes_by_kind ON codes (kind, trusted, date DESC, id DESC);"
        "CREATE TABLE sightings ("
        "  code INTEGER NOT NULL REFERENCES codes(id) ON DELETE CASCADE,"
        "  message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
        "  rule TEXT NOT NULL,"
        "  trusted INTEGER NOT NULL,"
        "  PRIMARY KEY (code, message)) WITHOUT ROWID;"
        "CREATE INDEX sightings_by_message ON sightings (message);"
        "CREATE TABLE cursors ("
        "  account TEXT NOT NULL,"
        "  folder TEXT NOT NULL,"
        "  uidvalidity INTEGER NOT NULL,"
        "  last_uid INTEGER NOT NULL,"
        "  highest_modseq INTEGER NOT NULL DEFAULT 0,"
        "  messages_seen INTEGER NOT NULL DEFAULT 0,"
        "  updated_at INTEGER NOT NULL,"
        "  PRIMARY KEY (account, folder)) WITHOUT ROWID;",
};

static int user_version(Store *s, int *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);

        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        *ret = sqlite3_column_int(st, 0);
        return 0;
}

static int migrate(Store *s) {
        int v, r;

        r = user_version(s, &v);
        if (r < 0)
                return r;
        if (v > STORE_SCHEMA_VERSION)
                return -EPROTO;
        if (v == STORE_SCHEMA_VERSION)
                return 0;
        if (s->read_only)
                return -EROFS; /* an older schema: the daemon (a writer) must upgrade it first */

        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        /* Read again inside the write lock: another process may have migrated meanwhile. */
        r = user_version(s, &v);
        for (; r >= 0 && v < STORE_SCHEMA_VERSION; v++) {
                char pragma[64];
                r = exec(s, migrations[v]);
                if (r < 0)
                        break;
                (void) snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
                r = exec(s, pragma);
        }
        if (r < 0) {
                (void) exec(s, "ROLLBACK");
                return r;
        }
        return exec(s, "COMMIT");
}

static int make_parent_dir(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = 0;
        if (mkdir(dir, 0700) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        /* Parents (e.g. ~/.local/share) get the usual 0755; only our own folder is 0700. */
        if (make_parent_dir(dir) < 0)
                return -errno;
        char *p = strrchr(dir, '/');
        if (p && p != dir) {
                *p = 0;
                (void) mkdir(dir, 0755);
                *p = '/';
        }
        return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

int store_open(const char *path, StoreMode mode, Store **ret, char **ret_error) {
        _cleanup_(store_closep) Store *s = NULL;
        int rc, r, flags;

        if (ret_error)
                *ret_error = NULL;
        s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        s->read_only = mode == STORE_READ_ONLY;

        if (s->read_only) {
                if (access(path, F_OK) < 0)
                        return -errno;
                flags = SQLITE_OPEN_READONLY;
        } else {
                int fd;

                r = make_parent_dir(path);
                if (r < 0)
                        return r;
                /* Create it ourselves so that it is 0600 from the first byte; SQLite gives the
                 * -wal and -shm files the same mode. */
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return -errno;
                (void) close(fd);
                flags = SQLITE_OPEN_READWRITE;
        }

        rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                if (ret_error && s->db)
                        *ret_error = strdup(sqlite3_errmsg(s->db));
                return errno_from_sqlite(rc);
        }
        sqlite3_extended_result_codes(s->db, 1);
        (void) sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
        rc = sqlite3_create_function(s->db, "rfc3339", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                     sql_rfc3339, NULL, NULL);
        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);

        r = exec(s, "PRAGMA foreign_keys = ON");
        if (r >= 0 && !s->read_only)
                r = exec(s, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
        if (r >= 0)
                r = migrate(s);
        if (r < 0) {
                if (ret_error)
                        *ret_error = strdup(r == -EPROTO ? "the database was written by a newer alcode"
                                                         : sqlite3_errmsg(s->db));
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_close(Store *s) {
        if (!s)
                return NULL;
        (void) sqlite3_close(s->db);
        free(s);
        return NULL;
}

static char *column_strdup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return t ? strdup((const char *) t) : NULL;
}

static int prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        return errno_from_sqlite(sqlite3_prepare_v2(s->db, sql, -1, ret, NULL));
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
        if (v)
                (void) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
        else
                (void) sqlite3_bind_null(st, i);
}

static int step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : errno_from_sqlite(rc);
}

static int add_new_code(StoredCode **list, size_t *n, const StoreBatch *b, const Message *m,
                        const Code *c, int64_t id, int64_t date, int64_t now) {
        StoredCode *l = reallocarray(*list, *n + 1, sizeof(StoredCode));
        StoredCode sc = { .id = id, .kind = c->kind, .trusted = c->trusted, .date = date,
                          .date_tz = m->date_tz, .found_at = now };

        if (!l)
                return -ENOMEM;
        *list = l;
        sc.value = strdup(c->value);
        sc.display = strdup(c->display ?: c->value);
        sc.sender = m->sender ? strdup(m->sender) : NULL;
        sc.sender_name = m->sender_name ? strdup(m->sender_name) : NULL;
        sc.account = strdup(b->account ?: "");
        sc.folder = strdup(b->folder ?: "");
        sc.subject = m->subject ? strdup(m->subject) : NULL;
        if (!sc.value || !sc.display || !sc.account || !sc.folder || (m->sender && !sc.sender) ||
            (m->sender_name && !sc.sender_name) || (m->subject && !sc.subject)) {
                stored_code_done(&sc);
                return -ENOMEM;
        }
        l[(*n)++] = sc;
        return 0;
}

static int commit_message(Store *s, const StoreBatch *b, const Message *m, int64_t now,
                          StoredCode **new_codes, size_t *n_new) {
        _cleanup_stmt_ sqlite3_stmt *msg = NULL, *ins = NULL, *upd = NULL, *sight = NULL;
        int64_t message_id, date = m->date > 0 ? m->date : now;
        int r, rc;

        r = prepare(s,
                    "INSERT INTO messages (account, folder, uidvalidity, uid, source, message_id,"
                    " sender, sender_name, subject, date, date_tz, seen_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                    " ON CONFLICT (account, folder, uidvalidity, uid, source)"
                    " DO UPDATE SET seen_at = excluded.seen_at RETURNING id",
                    &msg);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(msg, 1, b->account ?: "", -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(msg, 2, b->folder ?: "", -1, SQLITE_STATIC);
        (void) sqlite3_bind_int64(msg, 3, m->ref.uidvalidity);
        (void) sqlite3_bind_int64(msg, 4, m->ref.uid);
        (void) sqlite3_bind_text(msg, 5, m->ref.source ?: "", -1, SQLITE_STATIC);
        bind_text_or_null(msg, 6, m->message_id);
        bind_text_or_null(msg, 7, m->sender);
        bind_text_or_null(msg, 8, m->sender_name);
        bind_text_or_null(msg, 9, m->subject);
        (void) sqlite3_bind_int64(msg, 10, date);
        (void) sqlite3_bind_int(msg, 11, m->date_tz);
        (void) sqlite3_bind_int64(msg, 12, now);
        rc = sqlite3_step(msg);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        message_id = sqlite3_column_int64(msg, 0);

        r = prepare(s,
                    "INSERT INTO codes (kind, value, display, trusted, rule, message, date, date_tz,"
                    " first_seen, last_seen, expires_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)"
                    " ON CONFLICT (kind, value) DO NOTHING",
                    &ins);
        if (r < 0)
                return r;
        /* Known code: note the sighting; a trusted sighting upgrades an untrusted code and
         * becomes its shown source. Returns a row only when it was upgraded. */
        r = prepare(s,
                    "UPDATE codes SET last_seen = ?3,"
                    " message = iif(?4 > trusted, ?5, message),"
                    " date = iif(?4 > trusted, ?6, date),"
                    " date_tz = iif(?4 > trusted, ?7, date_tz),"
                    " display = iif(?4 > trusted, ?8, display),"
                    " rule = iif(?4 > trusted, ?9, rule),"
                    " trusted = max(trusted, ?4)"
                    " WHERE kind = ?1 AND value = ?2"
                    " RETURNING id, (?4 > 0 AND message = ?5 AND first_seen < ?3 + 1) AS upgraded",
                    &upd);
        if (r < 0)
                return r;
        r = prepare(s,
                    "INSERT INTO sightings (code, message, rule, trusted) VALUES (?1, ?2, ?3, ?4)"
                    " ON CONFLICT DO NOTHING",
                    &sight);
        if (r < 0)
                return r;

        for (size_t i = 0; i < m->n_codes; i++) {
                const Code *c = &m->codes[i];
                const char *kind = code_kind_to_string(c->kind);
                int64_t code_id;
                bool is_new;

                if (!kind || !c->value)
                        continue;
                (void) sqlite3_reset(ins);
                (void) sqlite3_bind_text(ins, 1, kind, -1, SQLITE_STATIC);
                (void) sqlite3_bind_text(ins, 2, c->value, -1, SQLITE_STATIC);
                (void) sqlite3_bind_text(ins, 3, c->display ?: c->value, -1, SQLITE_STATIC);
                (void) sqlite3_bind_int(ins, 4, c->trusted);
                (void) sqlite3_bind_text(ins, 5, strempty(c->rule), -1, SQLITE_STATIC);
                (void) sqlite3_bind_int64(ins, 6, message_id);
                (void) sqlite3_bind_int64(ins, 7, date);
                (void) sqlite3_bind_int(ins, 8, m->date_tz);
                (void) sqlite3_bind_int64(ins, 9, now);
                if (c->kind == CODE_KIND_OTP)
                        (void) sqlite3_bind_int64(ins, 10, date + OTP_LIFETIME_SEC);
                else
                        (void) sqlite3_bind_null(ins, 10);
                r = step_done(ins);
                if (r < 0)
                        return r;

                if (sqlite3_changes(s->db) > 0) {
                        code_id = sqlite3_last_insert_rowid(s->db);
                        is_new = true;
                } else {
                        int64_t was_trusted;
                        _cleanup_stmt_ sqlite3_stmt *q = NULL;

                        /* Was it untrusted before this sighting? (read before the update) */
                        r = prepare(s, "SELECT trusted FROM codes WHERE kind = ?1 AND value = ?2", &q);
                        if (r < 0)
                                return r;
                        (void) sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
                        (void) sqlite3_bind_text(q, 2, c->value, -1, SQLITE_STATIC);
                        rc = sqlite3_step(q);
                        if (rc != SQLITE_ROW)
                                return errno_from_sqlite(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
                        was_trusted = sqlite3_column_int64(q, 0);

                        (void) sqlite3_reset(upd);
                        (void) sqlite3_bind_text(upd, 1, kind, -1, SQLITE_STATIC);
                        (void) sqlite3_bind_text(upd, 2, c->value, -1, SQLITE_STATIC);
                        (void) sqlite3_bind_int64(upd, 3, now);
                        (void) sqlite3_bind_int(upd, 4, c->trusted);
                        (void) sqlite3_bind_int64(upd, 5, message_id);
                        (void) sqlite3_bind_int64(upd, 6, date);
                        (void) sqlite3_bind_int(upd, 7, m->date_tz);
                        (void) sqlite3_bind_text(upd, 8, c->display ?: c->value, -1, SQLITE_STATIC);
                        (void) sqlite3_bind_text(upd, 9, strempty(c->rule), -1, SQLITE_STATIC);
                        rc = sqlite3_step(upd);
                        if (rc != SQLITE_ROW)
                                return errno_from_sqlite(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
                        code_id = sqlite3_column_int64(upd, 0);
                        while ((rc = sqlite3_step(upd)) == SQLITE_ROW)
                                ;
                        is_new = c->trusted && !was_trusted;
                }

                (void) sqlite3_reset(sight);
                (void) sqlite3_bind_int64(sight, 1, code_id);
                (void) sqlite3_bind_int64(sight, 2, message_id);
                (void) sqlite3_bind_text(sight, 3, strempty(c->rule), -1, SQLITE_STATIC);
                (void) sqlite3_bind_int(sight, 4, c->trusted);
                r = step_done(sight);
                if (r < 0)
                        return r;

                if (is_new && new_codes && (r = add_new_code(new_codes, n_new, b, m, c, code_id, date, now)) < 0)
                        return r;
        }
        return 0;
}

static int commit_cursor(Store *s, const StoreBatch *b, int64_t now) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s,
                    "INSERT INTO cursors (account, folder, uidvalidity, last_uid, highest_modseq,"
                    " messages_seen, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    " ON CONFLICT (account, folder) DO UPDATE SET"
                    " messages_seen = iif(uidvalidity = excluded.uidvalidity,"
                    "                     messages_seen + excluded.messages_seen, excluded.messages_seen),"
                    " uidvalidity = excluded.uidvalidity,"
                    " last_uid = excluded.last_uid,"
                    " highest_modseq = excluded.highest_modseq,"
                    " updated_at = excluded.updated_at",
                    &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, b->account, -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 2, b->folder, -1, SQLITE_STATIC);
        (void) sqlite3_bind_int64(st, 3, b->uidvalidity);
        (void) sqlite3_bind_int64(st, 4, b->last_uid);
        (void) sqlite3_bind_int64(st, 5, (sqlite3_int64) b->highest_modseq);
        (void) sqlite3_bind_int64(st, 6, b->messages_seen);
        (void) sqlite3_bind_int64(st, 7, now);
        return step_done(st);
}

int store_commit(Store *s, const StoreBatch *b, StoredCode **ret_new, size_t *ret_n_new) {
        StoredCode *new_codes = NULL;
        size_t n_new = 0;
        int64_t now = (int64_t) time(NULL);
        int r;

        if (s->read_only)
                return -EROFS;
        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        for (size_t i = 0; i < b->n_messages && r >= 0; i++)
                if (b->messages[i]->n_codes > 0)
                        r = commit_message(s, b, b->messages[i], now, ret_new ? &new_codes : NULL, &n_new);
        if (r >= 0 && b->move_cursor && b->account && b->folder)
                r = commit_cursor(s, b, now);
#ifdef ALCODE_TEST_HOOKS
        /* Fault injection: die between the inserts and the COMMIT that makes them durable. */
        if (r >= 0 && getenv("ALCODE_TEST_CRASH_BEFORE_COMMIT"))
                abort();
#endif
        if (r >= 0)
                r = exec(s, "COMMIT");
        if (r < 0) {
                (void) exec(s, "ROLLBACK");
                stored_codes_free(new_codes, n_new);
                return r;
        }
        if (ret_new) {
                *ret_new = new_codes;
                *ret_n_new = n_new;
        }
        return 0;
}

int store_get_cursor(Store *s, const char *account, const char *folder, uint32_t *ret_uidvalidity,
                     uint32_t *ret_last_uid, uint64_t *ret_highest_modseq) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = prepare(s, "SELECT uidvalidity, last_uid, highest_modseq FROM cursors"
                       " WHERE account = ?1 AND folder = ?2", &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 2, folder, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        *ret_uidvalidity = (uint32_t) sqlite3_column_int64(st, 0);
        *ret_last_uid = (uint32_t) sqlite3_column_int64(st, 1);
        if (ret_highest_modseq)
                *ret_highest_modseq = (uint64_t) sqlite3_column_int64(st, 2);
        return 0;
}

void store_cursors_free(StoreCursor *c, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(c[i].folder);
        free(c);
}

int store_list_cursors(Store *s, const char *account, StoreCursor **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        StoreCursor *list = NULL;
        size_t n = 0;
        int r, rc;

        r = prepare(s, "SELECT folder, uidvalidity, last_uid, highest_modseq FROM cursors"
                       " WHERE account = ?1 ORDER BY folder", &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreCursor *l = reallocarray(list, n + 1, sizeof(StoreCursor));
                if (!l) {
                        store_cursors_free(list, n);
                        return -ENOMEM;
                }
                list = l;
                list[n] = (StoreCursor) {
                        .folder = column_strdup(st, 0),
                        .uidvalidity = (uint32_t) sqlite3_column_int64(st, 1),
                        .last_uid = (uint32_t) sqlite3_column_int64(st, 2),
                        .highest_modseq = (uint64_t) sqlite3_column_int64(st, 3),
                };
                if (!list[n++].folder) {
                        store_cursors_free(list, n);
                        return -ENOMEM;
                }
        }
        if (rc != SQLITE_DONE) {
                store_cursors_free(list, n);
                return errno_from_sqlite(rc);
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int store_reset_cursors(Store *s, const char *account) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "DELETE FROM cursors WHERE ?1 IS NULL OR account = ?1", &st);
        if (r < 0)
                return r;
        bind_text_or_null(st, 1, account);
        return step_done(st);
}

/* The WHERE clause shared by list and JSON queries; parameters ?1..?5. */
#define FILTER_SQL                                                                                 \
        " WHERE (?1 IS NULL OR c.kind = ?1) AND (?2 IS NULL OR m.account = ?2)"                    \
        " AND (?3 = 0 OR c.trusted = 0) AND (?4 = 0 OR c.trusted = 1) AND (?5 = 0 OR c.id = ?5)"   \
        " ORDER BY c.date DESC, c.id DESC LIMIT ?6"

#define SUPERSEDED_SQL                                                                             \
        "EXISTS (SELECT 1 FROM codes n WHERE n.kind = c.kind AND n.trusted = 1"                    \
        " AND (n.date > c.date OR (n.date = c.date AND n.id > c.id)))"

static void bind_filter(sqlite3_stmt *st, const StoreFilter *f) {
        bind_text_or_null(st, 1, f->kind >= 0 ? code_kind_to_string(f->kind) : NULL);
        bind_text_or_null(st, 2, f->account);
        (void) sqlite3_bind_int(st, 3, f->untrusted_only);
        (void) sqlite3_bind_int(st, 4, f->trusted_only);
        (void) sqlite3_bind_int64(st, 5, f->id);
        (void) sqlite3_bind_int64(st, 6, f->limit > 0 ? (sqlite3_int64) f->limit : -1);
}

int store_list(Store *s, const StoreFilter *f, StoredCode **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        StoredCode *list = NULL;
        size_t n = 0;
        int r, rc;

        r = prepare(s,
                    "SELECT c.id, c.kind, c.value, c.display, c.trusted, m.sender, m.sender_name,"
                    " c.date, c.date_tz, m.account, m.folder, m.subject, c.first_seen,"
                    " c.expires_at IS NOT NULL AND c.expires_at < unixepoch() AS expired, "
                    SUPERSEDED_SQL " AS superseded"
                    " FROM codes c JOIN messages m ON m.id = c.message" FILTER_SQL,
                    &st);
        if (r < 0)
                return r;
        bind_filter(st, f);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoredCode *l = reallocarray(list, n + 1, sizeof(StoredCode));
                if (!l) {
                        stored_codes_free(list, n);
                        return -ENOMEM;
                }
                list = l;
                list[n++] = (StoredCode) {
                        .id = sqlite3_column_int64(st, 0),
                        .kind = code_kind_from_string((const char *) sqlite3_column_text(st, 1)),
                        .value = column_strdup(st, 2),
                        .display = column_strdup(st, 3),
                        .trusted = sqlite3_column_int(st, 4),
                        .sender = column_strdup(st, 5),
                        .sender_name = column_strdup(st, 6),
                        .date = sqlite3_column_int64(st, 7),
                        .date_tz = sqlite3_column_int(st, 8),
                        .account = column_strdup(st, 9),
                        .folder = column_strdup(st, 10),
                        .subject = column_strdup(st, 11),
                        .found_at = sqlite3_column_int64(st, 12),
                        .expired = sqlite3_column_int(st, 13),
                        .superseded = sqlite3_column_int(st, 14),
                };
                if (!list[n - 1].value || !list[n - 1].display || !list[n - 1].account || !list[n - 1].folder) {
                        stored_codes_free(list, n);
                        return -ENOMEM;
                }
        }
        if (rc != SQLITE_DONE) {
                stored_codes_free(list, n);
                return errno_from_sqlite(rc);
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* One JSON object per code, as DESIGN.md shows; local files carry "source" instead of the
 * IMAP location. */
#define JSON_CODE_SQL                                                                              \
        "json_object('id', c.id, 'kind', c.kind, 'value', c.value, 'display', c.display,"          \
        " 'trusted', json(iif(c.trusted, 'true', 'false')), 'sender', m.sender,"                  \
        " 'date', rfc3339(c.date, c.date_tz), 'account', nullif(m.account, ''),"                  \
        " 'folder', nullif(m.folder, ''), 'uid', iif(m.source = '', m.uid, NULL),"                \
        " 'uidvalidity', iif(m.source = '', m.uidvalidity, NULL), 'message_id', m.message_id,"     \
        " 'subject', m.subject, 'rule', c.rule, 'found_at', rfc3339(c.first_seen, 0),"            \
        " 'source', nullif(m.source, ''), 'expired', json(iif(c.expires_at IS NOT NULL AND"       \
        " c.expires_at < unixepoch(), 'true', 'false')))"

static int write_rows(sqlite3_stmt *st, FILE *out) {
        int rc, n = 0;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const unsigned char *line = sqlite3_column_text(st, 0);
                if (line && fprintf(out, "%s\n", (const char *) line) < 0)
                        return -EIO;
                n++;
        }
        return rc == SQLITE_DONE ? n : errno_from_sqlite(rc);
}

int store_write_json(Store *s, const StoreFilter *f, FILE *out) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        /* json_patch('{}', obj) applies obj as an RFC 7396 merge patch to an empty object,
         * which drops its null members: absent fields are absent, not null. */
        r = prepare(s,
                    "SELECT json_patch('{}', " JSON_CODE_SQL ")"
                    " FROM codes c JOIN messages m ON m.id = c.message" FILTER_SQL,
                    &st);
        if (r < 0)
                return r;
        bind_filter(st, f);
        return write_rows(st, out);
}

int store_write_csv(Store *s, FILE *out) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    "SELECT c.id, c.kind, c.value, c.display, c.trusted, m.sender,"
                    " rfc3339(c.date, c.date_tz), m.account, m.folder, m.uidvalidity, m.uid,"
                    " m.message_id, m.subject, c.rule, rfc3339(c.first_seen, 0), m.source"
                    " FROM codes c JOIN messages m ON m.id = c.message ORDER BY c.date DESC, c.id DESC",
                    &st);
        if (r < 0)
                return r;
        fputs("id,kind,value,display,trusted,sender,date,account,folder,uidvalidity,uid,"
              "message_id,subject,rule,found_at,source\r\n", out);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                for (int i = 0; i < 16; i++) {
                        const char *v = (const char *) sqlite3_column_text(st, i);
                        if (i > 0)
                                fputc(',', out);
                        if (i == 4)
                                v = sqlite3_column_int(st, i) ? "true" : "false";
                        if (!v)
                                continue;
                        if (strpbrk(v, ",\"\r\n")) {
                                fputc('"', out);
                                for (const char *p = v; *p; p++) {
                                        if (*p == '"')
                                                fputc('"', out);
                                        fputc(*p, out);
                                }
                                fputc('"', out);
                        } else
                                fputs(v, out);
                }
                fputs("\r\n", out);
        }
        return rc == SQLITE_DONE ? 0 : errno_from_sqlite(rc);
}

void store_sightings_free(StoreSighting *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].account);
                free(l[i].folder);
                free(l[i].source);
                free(l[i].message_id);
                free(l[i].sender);
                free(l[i].rule);
        }
        free(l);
}

int store_list_sightings(Store *s, int64_t code_id, StoreSighting **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        StoreSighting *list = NULL;
        size_t n = 0;
        int r, rc;

        r = prepare(s,
                    "SELECT m.account, m.folder, m.source, m.uidvalidity, m.uid, m.message_id, m.sender,"
                    " m.date, m.date_tz, s.rule, s.trusted"
                    " FROM sightings s JOIN messages m ON m.id = s.message WHERE s.code = ?1"
                    " ORDER BY m.date, m.id",
                    &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(st, 1, code_id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                StoreSighting *l = reallocarray(list, n + 1, sizeof(StoreSighting));
                if (!l) {
                        store_sightings_free(list, n);
                        return -ENOMEM;
                }
                list = l;
                l[n] = (StoreSighting) {
                        .account = column_strdup(st, 0), .folder = column_strdup(st, 1),
                        .source = column_strdup(st, 2), .uidvalidity = (uint32_t) sqlite3_column_int64(st, 3),
                        .uid = (uint32_t) sqlite3_column_int64(st, 4), .message_id = column_strdup(st, 5),
                        .sender = column_strdup(st, 6), .date = sqlite3_column_int64(st, 7),
                        .date_tz = sqlite3_column_int(st, 8), .rule = column_strdup(st, 9),
                        .trusted = sqlite3_column_int(st, 10),
                };
                if (!l[n].account || !l[n].folder || !l[n].source || !l[n].rule) {
                        store_sightings_free(list, n + 1);
                        return -ENOMEM;
                }
                n++;
        }
        if (rc != SQLITE_DONE) {
                store_sightings_free(list, n);
                return errno_from_sqlite(rc);
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int store_forget(Store *s, int64_t id) {
        int r, changes;
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (s->read_only)
                return -EROFS;
        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = prepare(s, "DELETE FROM codes WHERE id = ?1", &st);
        if (r >= 0) {
                (void) sqlite3_bind_int64(st, 1, id);
                r = step_done(st);
        }
        changes = sqlite3_changes(s->db);
        if (r >= 0)
                r = exec(s, "DELETE FROM messages WHERE id NOT IN (SELECT message FROM sightings)"
                            " AND id NOT IN (SELECT message FROM codes)");
        if (r >= 0 && changes == 0)
                r = -ENOENT;
        if (r < 0) {
                (void) exec(s, "ROLLBACK");
                return r;
        }
        return exec(s, "COMMIT");
}

int store_account_stats(Store *s, const char *account, uint64_t *ret_messages, uint64_t *ret_codes,
                        int64_t *ret_last_sync) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    "SELECT (SELECT ifnull(sum(messages_seen), 0) FROM cursors WHERE account = ?1),"
                    " (SELECT count(DISTINCT s.code) FROM sightings s JOIN messages m ON m.id = s.message"
                    "  WHERE m.account = ?1),"
                    " (SELECT ifnull(max(updated_at), 0) FROM cursors WHERE account = ?1)",
                    &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        *ret_messages = (uint64_t) sqlite3_column_int64(st, 0);
        *ret_codes = (uint64_t) sqlite3_column_int64(st, 1);
        *ret_last_sync = sqlite3_column_int64(st, 2);
        return 0;
}

int store_json_for_message(const Message *m, FILE *out) {
        sqlite3 *db = NULL;
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_create_function(db, "rfc3339", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                             NULL, sql_rfc3339, NULL, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(
                        db,
                        "SELECT json_patch('{}', json_object("
                        " 'kind', ?1, 'value', ?2, 'display', ?3, 'trusted', json(iif(?4, 'true', 'false')),"
                        " 'sender', ?5, 'date', iif(?6 > 0, rfc3339(?6, ?7), NULL), 'message_id', ?8,"
                        " 'subject', ?9, 'rule', ?10, 'source', ?11, 'account', ?12, 'folder', ?13,"
                        " 'uid', ?14, 'uidvalidity', ?15))",
                        -1, &st, NULL);
        for (size_t i = 0; rc == SQLITE_OK && i < m->n_codes && r >= 0; i++) {
                const Code *c = &m->codes[i];
                (void) sqlite3_reset(st);
                (void) sqlite3_bind_text(st, 1, code_kind_to_string(c->kind), -1, SQLITE_STATIC);
                (void) sqlite3_bind_text(st, 2, c->value, -1, SQLITE_STATIC);
                bind_text_or_null(st, 3, c->display);
                (void) sqlite3_bind_int(st, 4, c->trusted);
                bind_text_or_null(st, 5, m->sender);
                (void) sqlite3_bind_int64(st, 6, m->date);
                (void) sqlite3_bind_int(st, 7, m->date_tz);
                bind_text_or_null(st, 8, m->message_id);
                bind_text_or_null(st, 9, m->subject);
                bind_text_or_null(st, 10, c->rule);
                bind_text_or_null(st, 11, m->ref.source);
                bind_text_or_null(st, 12, m->ref.account);
                bind_text_or_null(st, 13, m->ref.folder);
                if (m->ref.account) {
                        (void) sqlite3_bind_int64(st, 14, m->ref.uid);
                        (void) sqlite3_bind_int64(st, 15, m->ref.uidvalidity);
                } else {
                        (void) sqlite3_bind_null(st, 14);
                        (void) sqlite3_bind_null(st, 15);
                }
                r = write_rows(st, out);
        }
        if (rc != SQLITE_OK)
                r = errno_from_sqlite(rc);
        sqlite3_finalize(TAKE_PTR(st));
        sqlite3_close(db);
        return r < 0 ? r : 0;
}
