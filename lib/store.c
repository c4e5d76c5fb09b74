/* SQLite store: schema and migrations, commits, queries. How rows are written out (JSON Lines,
 * CSV) is store-format.c's. SQLite result codes are mapped to -errno here only
 * (errno_from_sqlite()); SQLite's own text is kept for the message the caller prints.
 *
 * Dedup is done by the database: codes are UNIQUE(kind, value), sightings UNIQUE(code,
 * message), messages UNIQUE(account, folder, uidvalidity, uid, source). A code is "new" when
 * its INSERT changed a row, or when it was known only from untrusted mail and now comes from a
 * trusted sender, which also makes that message its shown source.
 *
 * Schema versions: migrations[v] takes a database from version v to v + 1, inside the one
 * transaction that also sets user_version, with foreign keys off as SQLite's ALTER TABLE
 * procedure asks. tests/data/store/schema-v<N>.sql keeps every released version as it was, and
 * test-store migrates each of them to the current one.
 *
 * Readers open the file with SQLITE_OPEN_READONLY. In WAL mode a reader still needs the -shm
 * file: when it is missing and the folder is not writable (a read-only mount, a backup copy),
 * nobody can be writing the database, so it is opened immutable instead, unless a -wal file
 * with content would then be ignored. */
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "fs-util.h"
#include "json-writer.h"
#include "store.h"
#include "store-internal.h"
#include "strbuf.h"

#define STORE_BUSY_TIMEOUT_MS 5000      /* a writer waits for another writer */
#define STORE_READ_BUSY_TIMEOUT_MS 2000 /* a reader only waits for a writer in exclusive mode */
#define STORE_APPLICATION_ID 0x616c6364 /* "alcd" in the header: an alcode database */

/* The kinds a person holds one of at a time: a newer trusted one replaces the older. */
static bool kind_supersedes(CodeKind k) {
        return k == CODE_KIND_SPECIFIC || k == CODE_KIND_COMPANY || k == CODE_KIND_ACCESS ||
               k == CODE_KIND_OTP;
}

/* Version 0 → 1. Once released, never edit a migration: add the next one. */
#define SCHEMA_V1                                                                                  \
        "CREATE TABLE messages ("                                                                  \
        "  id INTEGER PRIMARY KEY,"                                                                \
        "  account TEXT NOT NULL,"    /* '' for local files */                                     \
        "  folder TEXT NOT NULL,"                                                                  \
        "  uidvalidity INTEGER NOT NULL,"                                                          \
        "  uid INTEGER NOT NULL,"                                                                  \
        "  source TEXT NOT NULL,"     /* file path for local files, '' for IMAP */                 \
        "  message_id TEXT,"                                                                       \
        "  sender TEXT,"                                                                           \
        "  sender_name TEXT,"                                                                      \
        "  subject TEXT,"                                                                          \
        "  date INTEGER NOT NULL,"                                                                 \
        "  date_tz INTEGER NOT NULL," /* minutes east of UTC */                                    \
        "  seen_at INTEGER NOT NULL,"                                                              \
        "  UNIQUE (account, folder, uidvalidity, uid, source));"                                   \
        "CREATE TABLE codes ("                                                                     \
        "  id INTEGER PRIMARY KEY,"                                                                \
        "  kind TEXT NOT NULL,"                                                                    \
        "  value TEXT NOT NULL,"      /* canonical */                                              \
        "  display TEXT NOT NULL,"    /* as written */                                             \
        "  trusted INTEGER NOT NULL,"                                                              \
        "  rule TEXT NOT NULL,"       /* name@version */                                           \
        "  message INTEGER NOT NULL REFERENCES messages(id)," /* the source shown */               \
        "  date INTEGER NOT NULL,"                                                                 \
        "  date_tz INTEGER NOT NULL,"                                                              \
        "  first_seen INTEGER NOT NULL,"                                                           \
        "  last_seen INTEGER NOT NULL,"                                                            \
        "  expires_at INTEGER,"                                                                    \
        "  superseded INTEGER NOT NULL DEFAULT 0,"                                                 \
        "  UNIQUE (kind, value));"                                                                 \
        "CREATE INDEX codes_by_date ON codes (date DESC, id DESC);"                                \
        "CREATE INDEX codes_by_kind ON codes (kind, date DESC, id DESC);"                          \
        "CREATE INDEX codes_trusted ON codes (kind, date DESC, id DESC) WHERE trusted = 1;"        \
        "CREATE INDEX codes_current ON codes (kind, date, id) WHERE superseded = 0;"               \
        "CREATE INDEX codes_by_message ON codes (message);"                                        \
        "CREATE INDEX codes_expiring ON codes (expires_at) WHERE expires_at IS NOT NULL;"          \
        "CREATE TABLE sightings ("                                                                 \
        "  code INTEGER NOT NULL REFERENCES codes(id) ON DELETE CASCADE,"                          \
        "  message INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"                    \
        "  rule TEXT NOT NULL,"                                                                    \
        "  trusted INTEGER NOT NULL,"                                                              \
        "  PRIMARY KEY (code, message)) WITHOUT ROWID;"                                            \
        "CREATE INDEX sightings_by_message ON sightings (message);"                                \
        "CREATE TABLE cursors ("                                                                   \
        "  account TEXT NOT NULL,"                                                                 \
        "  folder TEXT NOT NULL,"                                                                  \
        "  uidvalidity INTEGER NOT NULL,"                                                          \
        "  last_uid INTEGER NOT NULL,"                                                             \
        "  highest_modseq INTEGER NOT NULL DEFAULT 0,"                                             \
        "  messages_seen INTEGER NOT NULL DEFAULT 0,"                                              \
        "  updated_at INTEGER NOT NULL,"                                                           \
        "  PRIMARY KEY (account, folder)) WITHOUT ROWID;"

/* Version 1 → 2: values keep their case (identity is caseless: COLLATE NOCASE, which also
 * makes UNIQUE (kind, value) and every "value = ?" caseless), and possible codes (kind
 * 'possible', no value, no display: a trusted sender's mail that speaks of a code no rule
 * read), one per message. Existing rows keep their display; their value, upper-cased by
 * version 1, takes its case from the display when the display, without its grouping
 * separators, is that value in another case. SQLite's procedure for changing a table: a new
 * one, copied, the old one dropped, the new one renamed (foreign keys are off). */
#define SQL_UNGROUP(x) "replace(replace(replace(replace(replace(" x ", ' ', ''), char(160), ''), '-', ''), '.', ''), char(8239), '')"
#define SCHEMA_V2                                                                                  \
        "CREATE TABLE codes_v2 ("                                                                  \
        "  id INTEGER PRIMARY KEY,"                                                                \
        "  kind TEXT NOT NULL,"                                                                    \
        "  value TEXT COLLATE NOCASE," /* as written, separators removed; NULL: possible */        \
        "  display TEXT,"             /* as written; NULL: possible */                             \
        "  trusted INTEGER NOT NULL,"                                                              \
        "  rule TEXT NOT NULL,"                                                                    \
        "  message INTEGER NOT NULL REFERENCES messages(id),"                                      \
        "  date INTEGER NOT NULL,"                                                                 \
        "  date_tz INTEGER NOT NULL,"                                                              \
        "  first_seen INTEGER NOT NULL,"                                                           \
        "  last_seen INTEGER NOT NULL,"                                                            \
        "  expires_at INTEGER,"                                                                    \
        "  superseded INTEGER NOT NULL DEFAULT 0,"                                                 \
        "  UNIQUE (kind, value),"                                                                  \
        "  CHECK ((kind = 'possible') = (value IS NULL)));"                                        \
        "INSERT INTO codes_v2 SELECT id, kind,"                                                    \
        "  iif(upper(" SQL_UNGROUP("display") ") = value, " SQL_UNGROUP("display") ", value),"    \
        "  display, trusted, rule, message, date, date_tz, first_seen, last_seen, expires_at,"     \
        "  superseded FROM codes;"                                                                 \
        "DROP TABLE codes;"                                                                        \
        "ALTER TABLE codes_v2 RENAME TO codes;"                                                    \
        "CREATE INDEX codes_by_date ON codes (date DESC, id DESC);"                                \
        "CREATE INDEX codes_by_kind ON codes (kind, date DESC, id DESC);"                          \
        "CREATE INDEX codes_trusted ON codes (kind, date DESC, id DESC) WHERE trusted = 1;"        \
        "CREATE INDEX codes_current ON codes (kind, date, id) WHERE superseded = 0;"               \
        "CREATE INDEX codes_by_message ON codes (message);"                                        \
        "CREATE INDEX codes_expiring ON codes (expires_at) WHERE expires_at IS NOT NULL;"          \
        "CREATE UNIQUE INDEX codes_possible ON codes (message) WHERE kind = 'possible';"

/* Version 2 → 3: a message's Gmail labels (X-GM-LABELS, read in [Gmail]/All Mail where a
 * labelled message is read once), a JSON array of strings, NULL elsewhere. */
#define SCHEMA_V3 "ALTER TABLE messages ADD COLUMN labels TEXT;"

static const char *const migrations[] = {
        SCHEMA_V1,
        SCHEMA_V2,
        SCHEMA_V3,
};
_Static_assert(ELEMENTSOF(migrations) == STORE_SCHEMA_VERSION, "one migration per schema version");

/* Statements of the write path, prepared once per Store. */
typedef enum StatementId {
        STMT_MESSAGE,
        STMT_CODE_INSERT,
        STMT_POSSIBLE_INSERT,
        STMT_CODE_UPGRADE,
        STMT_CODE_EARLIER,
        STMT_CODE_SEEN,
        STMT_SIGHTING,
        STMT_CURSOR,
        STMT_NEWEST_TRUSTED,
        STMT_SUPERSEDE,
        STMT_UNSUPERSEDE,
        STMT_EXPIRED_ANY,
        _STMT_MAX,
} StatementId;

static const char *const statement_sql[_STMT_MAX] = {
        [STMT_MESSAGE] =
                "INSERT INTO messages (account, folder, uidvalidity, uid, source, message_id,"
                " sender, sender_name, subject, date, date_tz, seen_at, labels)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                " ON CONFLICT (account, folder, uidvalidity, uid, source)"
                " DO UPDATE SET seen_at = excluded.seen_at, labels = coalesce(excluded.labels, labels) RETURNING id",
        [STMT_CODE_INSERT] =
                "INSERT INTO codes (kind, value, display, trusted, rule, message, date, date_tz,"
                " first_seen, last_seen, expires_at)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)"
                " ON CONFLICT (kind, value) DO NOTHING",
        /* A possible code: one per message (codes_possible), no value. */
        [STMT_POSSIBLE_INSERT] =
                "INSERT INTO codes (kind, value, display, trusted, rule, message, date, date_tz,"
                " first_seen, last_seen) VALUES ('possible', NULL, NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?6)"
                " ON CONFLICT DO NOTHING",
        /* A trusted sighting of a code known only from untrusted mail becomes its source. */
        [STMT_CODE_UPGRADE] =
                "UPDATE codes SET trusted = 1, display = ?3, rule = ?4, message = ?5, date = ?6,"
                " date_tz = ?7, expires_at = ?8"
                " WHERE kind = ?1 AND value = ?2 AND trusted = 0",
        /* A code's date and source are those of its earliest sighting of the same trust, so
         * that they (and what supersedes what) do not depend on the order mail is read in. */
        [STMT_CODE_EARLIER] =
                "UPDATE codes SET display = ?3, rule = ?4, message = ?5, date = ?6, date_tz = ?7, expires_at = ?8"
                " WHERE kind = ?1 AND value = ?2 AND trusted = ?9 AND date > ?6",
        [STMT_CODE_SEEN] =
                "UPDATE codes SET last_seen = max(last_seen, ?3) WHERE kind = ?1 AND value = ?2 RETURNING id",
        [STMT_SIGHTING] =
                "INSERT INTO sightings (code, message, rule, trusted) VALUES (?1, ?2, ?3, ?4)"
                " ON CONFLICT DO NOTHING",
        [STMT_CURSOR] =
                "INSERT INTO cursors (account, folder, uidvalidity, last_uid, highest_modseq,"
                " messages_seen, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                " ON CONFLICT (account, folder) DO UPDATE SET"
                " messages_seen = iif(uidvalidity = excluded.uidvalidity,"
                "                     messages_seen + excluded.messages_seen, excluded.messages_seen),"
                " uidvalidity = excluded.uidvalidity,"
                " last_uid = excluded.last_uid,"
                " highest_modseq = excluded.highest_modseq,"
                " updated_at = excluded.updated_at",
        [STMT_NEWEST_TRUSTED] =
                "SELECT value, date FROM codes WHERE kind = ?1 AND trusted = 1"
                " ORDER BY date DESC, value DESC LIMIT 1",
        /* Everything older than the newest trusted code (?2 value, ?3 date) is superseded, the
         * rest is not; codes of the same date are ordered by value, not by the order they were
         * read in, which a resumed or throttled scan changes. Both touch only the rows that
         * change (codes_current, codes_by_kind). */
        [STMT_SUPERSEDE] =
                "UPDATE codes SET superseded = 1"
                " WHERE kind = ?1 AND superseded = 0 AND (date < ?3 OR (date = ?3 AND value < ?2))",
        [STMT_UNSUPERSEDE] =
                "UPDATE codes SET superseded = 0"
                " WHERE kind = ?1 AND superseded = 1 AND (date > ?3 OR (date = ?3 AND value >= ?2))",
        [STMT_EXPIRED_ANY] = "SELECT 1 FROM codes WHERE expires_at < ?1 LIMIT 1",
};

struct Store {
        sqlite3 *db;
        char *path;
        bool read_only;
        int64_t otp_retention;
        sqlite3_stmt *stmt[_STMT_MAX];
};

static int errno_from_sqlite(int rc) {
        switch (rc) {
        case SQLITE_READONLY_DIRECTORY:
        case SQLITE_READONLY_CANTINIT:
        case SQLITE_READONLY_CANTLOCK:
                return -EROFS;
        case SQLITE_CANTOPEN_ISDIR:
                return -EISDIR;
        }
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
        case SQLITE_CANTOPEN: /* the file exists (checked before): its -wal/-shm cannot be opened */
                return -EACCES;
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
        return user_path(USER_DIR_DATA, "alcode/alcode.db", ret);
}

static int exec(Store *s, const char *sql) {
        return errno_from_sqlite(sqlite3_exec(s->db, sql, NULL, NULL, NULL));
}

static int prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        return errno_from_sqlite(sqlite3_prepare_v2(s->db, sql, -1, ret, NULL));
}

/* A statement of the write path, reset and unbound; the caller resets it after use. */
static int statement(Store *s, StatementId id, sqlite3_stmt **ret) {
        if (!s->stmt[id]) {
                int rc = sqlite3_prepare_v3(s->db, statement_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmt[id], NULL);
                if (rc != SQLITE_OK)
                        return errno_from_sqlite(rc);
        }
        (void) sqlite3_reset(s->stmt[id]);
        (void) sqlite3_clear_bindings(s->stmt[id]);
        *ret = s->stmt[id];
        return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
        if (v)
                (void) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
        else
                (void) sqlite3_bind_null(st, i);
}

/* Runs st to completion and resets it. */
static int step_done(sqlite3_stmt *st) {
        int rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                ;
        (void) sqlite3_reset(st);
        return errno_from_sqlite(rc);
}

/* Runs sql, a query without parameters that yields one row, and reads the row's first column:
 * a count or a pragma. */
static int query_int64(Store *s, const char *sql, int64_t *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = prepare(s, sql, &st);
        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return errno_from_sqlite(rc);
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

/* Reads one integer pragma (user_version, application_id). */
static int pragma_int(Store *s, const char *pragma, int *ret) {
        int64_t v = 0;
        int r = query_int64(s, pragma, &v);

        if (r >= 0)
                *ret = (int) v;
        return r;
}

static int schema_is_empty(Store *s) {
        int64_t n = 0;
        int r = query_int64(s, "SELECT count(*) FROM sqlite_schema", &n);

        return r < 0 ? r : n == 0;
}

/* Keeps the first reason given for a failure (owned by the caller of store_open()). */
static void set_reason(char **reason, const char *text) {
        if (!*reason && text)
                *reason = strdup(text);
}

/* Which schema the file holds: 0 for a new (empty) database, -EBADMSG with *reason when it
 * is some other program's database, -EPROTO when it is newer than this program. */
static int schema_version(Store *s, int *ret, char **reason) {
        int version = 0, app_id = 0, r;

        r = pragma_int(s, "PRAGMA user_version", &version);
        if (r >= 0)
                r = pragma_int(s, "PRAGMA application_id", &app_id);
        if (r < 0)
                return r;
        if (app_id != STORE_APPLICATION_ID && (app_id != 0 || version != 0)) {
                set_reason(reason, "not an alcode database");
                return -EBADMSG;
        }
        if (version == 0) {
                r = schema_is_empty(s);
                if (r < 0)
                        return r;
                if (r == 0) {
                        set_reason(reason, "not an alcode database");
                        return -EBADMSG;
                }
        }
        if (version < 0) {
                /* migrations[] would be indexed below its start. */
                set_reason(reason, "an unknown schema version (negative): not written by alcode");
                return -EBADMSG;
        }
        if (version > STORE_SCHEMA_VERSION) {
                set_reason(reason, "written by a newer version of alcode");
                return -EPROTO;
        }
        *ret = version;
        return 0;
}

/* schema_version() in one read transaction: its two pragmas and the schema count must see the
 * same state, not one before and one after a writer's migration (a reader then took a store
 * being created for "not an alcode database"). */
static int schema_version_snapshot(Store *s, int *ret, char **reason) {
        int r;

        r = exec(s, "BEGIN");
        if (r < 0)
                return r;
        r = schema_version(s, ret, reason);
        if (r < 0 && sqlite3_errcode(s->db) != SQLITE_OK)
                set_reason(reason, sqlite3_errmsg(s->db)); /* before ROLLBACK replaces it */
        (void) exec(s, "ROLLBACK");
        return r;
}

static int migrate(Store *s, char **reason) {
        char pragma[80];
        int v = 0, r;

        /* SQLite's procedure for schema changes: foreign keys off outside the transaction,
         * foreign_key_check before the COMMIT. */
        r = exec(s, "PRAGMA foreign_keys = OFF");
        if (r >= 0)
                r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        /* Read again inside the write lock: another process may have migrated meanwhile. */
        r = schema_version(s, &v, reason);
        for (; r >= 0 && v < STORE_SCHEMA_VERSION; v++) {
                r = exec(s, migrations[v]);
                if (r < 0)
                        set_reason(reason, sqlite3_errmsg(s->db));
        }
        if (r >= 0) {
                _cleanup_stmt_ sqlite3_stmt *st = NULL;
                r = prepare(s, "PRAGMA foreign_key_check", &st);
                if (r >= 0 && sqlite3_step(st) == SQLITE_ROW) {
                        set_reason(reason, "a migration broke a foreign key");
                        r = -EBADMSG;
                }
        }
        if (r >= 0) {
                (void) snprintf(pragma, sizeof pragma, "PRAGMA application_id = %d; PRAGMA user_version = %d",
                                STORE_APPLICATION_ID, STORE_SCHEMA_VERSION);
                r = exec(s, pragma);
        }
        if (r >= 0)
                r = exec(s, "COMMIT");
        if (r < 0)
                (void) exec(s, "ROLLBACK");
        if (exec(s, "PRAGMA foreign_keys = ON") < 0 && r >= 0)
                r = -EIO;
        return r;
}

static bool file_exists(const char *path, const char *suffix, bool *ret_empty) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        if (asprintf(&p, "%s%s", path, suffix) < 0 || stat(p, &st) < 0)
                return false;
        if (ret_empty)
                *ret_empty = st.st_size == 0;
        return true;
}

static bool dir_writable(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;

        if (!dir)
                return false;
        if (!slash)
                return faccessat(AT_FDCWD, ".", W_OK, AT_EACCESS) == 0;
        if (slash == dir)
                slash[1] = 0;
        else
                *slash = 0;
        return faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) == 0;
}

/* "file:" URI for path with ?immutable=1 (RFC 3986 percent-encoding). */
static int immutable_uri(const char *path, char **ret) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(0);
        int r = strbuf_puts(&b, "file:");

        for (const unsigned char *p = (const unsigned char *) path; r >= 0 && *p; p++)
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("/-._~", *p))
                        r = strbuf_putc(&b, (char) *p);
                else
                        r = strbuf_printf(&b, "%%%02X", *p);
        if (r >= 0)
                r = strbuf_puts(&b, "?immutable=1");
        if (r < 0)
                return r;
        *ret = strbuf_take(&b, NULL);
        return 0;
}

/* Opens the database at uri (a path, or a file: URI with SQLITE_OPEN_URI in flags) with
 * extended result codes and busy_ms of patience for locks, and reads its schema version. */
static int db_open(Store *s, const char *uri, int flags, int busy_ms, int *ret_version, char **reason) {
        int rc = sqlite3_open_v2(uri, &s->db, flags, NULL);

        if (rc != SQLITE_OK)
                return errno_from_sqlite(rc);
        (void) sqlite3_extended_result_codes(s->db, 1);
        (void) sqlite3_busy_timeout(s->db, busy_ms);
        return schema_version_snapshot(s, ret_version, reason);
}

static int open_read_only(Store *s, const char *path, char **reason) {
        _cleanup_free_ char *uri = NULL;
        struct stat st;
        bool wal_empty = true;
        int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, version = 0, r;

        /* A symbolic link is refused, as writers refuse it (O_NOFOLLOW below): SQLite would put
         * the -wal and -shm files next to its target while the checks here look next to it. */
        if (lstat(path, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) < 0)
                return -errno;
        if (st.st_size == 0)
                return -ENODATA;
        if (!dir_writable(path) && !file_exists(path, "-shm", NULL)) {
                if (file_exists(path, "-wal", &wal_empty) && !wal_empty) {
                        set_reason(reason, "its folder is read-only and its -wal file holds changes "
                                           "that need a -shm file to be read");
                        return -EROFS;
                }
                r = immutable_uri(path, &uri);
                if (r < 0)
                        return r;
                flags |= SQLITE_OPEN_URI;
        }
        r = db_open(s, uri ?: path, flags, STORE_READ_BUSY_TIMEOUT_MS, &version, reason);
        if (r < 0)
                return r;
        if (version == 0)
                return -ENODATA;
        if (version < STORE_SCHEMA_VERSION) {
                set_reason(reason, "an older schema that alcoded upgrades when it starts");
                return -ESTALE;
        }
        return 0;
}

static int open_read_write(Store *s, const char *path, bool create, char **reason) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int version = 0, r;

        if (create) {
                /* Parents (~/.local/share) get the usual 0755; ours is 0700. */
                r = mkdir_parents(path, 0700);
                if (r < 0)
                        return r;
        }
        /* Create it ourselves so that it is 0600 from the first byte; SQLite gives the -wal and
         * -shm files the same mode. */
        fd = open(path, O_RDWR | (create ? O_CREAT : 0) | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((st.st_mode & 077) != 0 && fchmod(fd, st.st_mode & 0700) < 0)
                return -errno;
        /* Close it before SQLite opens the file: closing any descriptor of a file drops every
         * POSIX lock this process holds on it, SQLite's included. Another process closing its
         * connection would then think it the last one and delete the WAL under our feet. */
        fd = safe_close(fd);

        /* db_open() refuses a foreign or newer database before anything writes to it. */
        r = db_open(s, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                    STORE_BUSY_TIMEOUT_MS, &version, reason);
        if (r < 0)
                return r;
        r = exec(s, "PRAGMA journal_mode = WAL");
        if (r >= 0)
                r = exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON");
        if (r >= 0 && version < STORE_SCHEMA_VERSION)
                r = migrate(s, reason);
        return r;
}

int store_open(const char *path, StoreMode mode, Store **ret, char **ret_error) {
        _cleanup_(store_closep) Store *s = NULL;
        _cleanup_free_ char *reason = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        s = malloc(sizeof(Store));
        if (!s)
                return -ENOMEM;
        *s = (Store) {
                .path = strdup(path),
                .read_only = mode == STORE_READ_ONLY,
                .otp_retention = STORE_OTP_RETENTION_DEFAULT_SEC,
        };
        if (!s->path)
                return -ENOMEM;

        r = s->read_only ? open_read_only(s, path, &reason)
                         : open_read_write(s, path, mode == STORE_READ_WRITE, &reason);
        if (r < 0) {
                if (!reason && s->db && sqlite3_errcode(s->db) != SQLITE_OK)
                        set_reason(&reason, sqlite3_errmsg(s->db));
                if (ret_error)
                        *ret_error = TAKE_PTR(reason);
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_close(Store *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(s->stmt[i]);
        (void) sqlite3_close(s->db);
        free(s->path);
        free(s);
        return NULL;
}

const char *store_last_error(Store *s) {
        return sqlite3_errmsg(s->db);
}

void store_set_busy_timeout(Store *s, unsigned msec) {
        (void) sqlite3_busy_timeout(s->db, (int) MIN(msec, (unsigned) INT_MAX));
}

const char *store_path(const Store *s) {
        return s->path;
}

bool store_is_read_only(const Store *s) {
        return s->read_only;
}

void store_set_otp_retention(Store *s, int64_t seconds) {
        s->otp_retention = seconds < 0 ? STORE_OTP_RETENTION_DEFAULT_SEC : seconds;
}

static char *column_strdup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return t ? strdup((const char *) t) : NULL;
}

/* Grows *list (of *alloc elements of size) to hold n + 1. */
static int grow(void **list, size_t *alloc, size_t n, size_t size) {
        void *l;
        size_t a;

        if (n < *alloc)
                return 0;
        a = MAX(*alloc * 2, (size_t) 16);
        l = reallocarray(*list, a, size);
        if (!l)
                return -ENOMEM;
        *list = l;
        *alloc = a;
        return 0;
}

/* How the rows of a listing become an array of structs: the element's size, how one row fills
 * one (-ENOMEM when a value it needs could not be copied; the element is freed with the others
 * then) and how one is freed. */
typedef struct RowType {
        size_t size;
        int (*read)(sqlite3_stmt *st, void *elem, void *userdata);
        void (*done)(void *elem);
} RowType;

static void rows_free(const RowType *t, void *list, size_t n) {
        for (size_t i = 0; i < n; i++)
                t->done((char *) list + i * t->size);
        free(list);
}

/* Defines name_rows from name_read() and name_done(), and free_func(), which frees an array of
 * them. */
#define DEFINE_ROW_TYPE(name, type, free_func)                                                     \
        static const RowType name##_rows = {                                                       \
                .size = sizeof(type),                                                              \
                .read = name##_read,                                                               \
                .done = name##_done,                                                               \
        };                                                                                         \
        void free_func(type *l, size_t n) {                                                        \
                rows_free(&name##_rows, l, n);                                                     \
        }

/* Steps st to its end, reading each row into a growing array of t's elements, which goes to
 * *ret with its count to *ret_n. */
static int rows_read(sqlite3_stmt *st, const RowType *t, void *userdata, void **ret, size_t *ret_n) {
        void *list = NULL;
        size_t n = 0, alloc = 0;
        int rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                void *elem;

                if (grow(&list, &alloc, n, t->size) < 0) {
                        rows_free(t, list, n);
                        return -ENOMEM;
                }
                elem = (char *) list + n++ * t->size;
                memset(elem, 0, t->size);
                if (t->read(st, elem, userdata) < 0) {
                        rows_free(t, list, n);
                        return -ENOMEM;
                }
        }
        if (rc != SQLITE_DONE) {
                rows_free(t, list, n);
                return errno_from_sqlite(rc);
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

typedef struct CommitState {
        int64_t now;
        bool touched[_CODE_KIND_MAX]; /* kinds whose supersession must be recomputed */
        StoredCode *new_codes;        /* NULL when the caller does not want them */
        size_t n_new, alloc_new;
        bool want_new;
} CommitState;

static int add_new_code(CommitState *cs, const StoreBatch *b, const Message *m, const Code *c,
                        int64_t id, int64_t date, int64_t expires_at) {
        StoredCode sc = {
                .id = id, .kind = c->kind, .trusted = c->trusted, .date = date, .date_tz = m->date_tz,
                .found_at = cs->now, .expires_at = expires_at,
        };

        if (grow((void **) &cs->new_codes, &cs->alloc_new, cs->n_new, sizeof(StoredCode)) < 0)
                return -ENOMEM;
        sc.value = c->value ? strdup(c->value) : NULL;
        sc.display = c->display || c->value ? strdup(c->display ?: c->value) : NULL;
        sc.sender = m->sender ? strdup(m->sender) : NULL;
        sc.sender_name = m->sender_name ? strdup(m->sender_name) : NULL;
        sc.account = strdup(b->account ?: "");
        sc.folder = strdup(b->folder ?: "");
        sc.subject = m->subject ? strdup(m->subject) : NULL;
        if ((c->value && (!sc.value || !sc.display)) || !sc.account || !sc.folder || (m->sender && !sc.sender) ||
            (m->sender_name && !sc.sender_name) || (m->subject && !sc.subject)) {
                stored_code_done(&sc);
                return -ENOMEM;
        }
        cs->new_codes[cs->n_new++] = sc;
        return 0;
}

/* Records that message_id gave code_id through c's rule (a code seen again is seen here). */
static int add_sighting(Store *s, int64_t code_id, int64_t message_id, const Code *c) {
        sqlite3_stmt *st = NULL;
        int r = statement(s, STMT_SIGHTING, &st);

        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(st, 1, code_id);
        (void) sqlite3_bind_int64(st, 2, message_id);
        (void) sqlite3_bind_text(st, 3, strempty(c->rule), -1, SQLITE_STATIC);
        (void) sqlite3_bind_int(st, 4, c->trusted);
        return step_done(st);
}

/* A possible code: stored once per message, with a sighting like any code (alcode show). */
static int commit_possible(Store *s, CommitState *cs, const StoreBatch *b, const Message *m,
                           int64_t message_id, int64_t date, const Code *c) {
        sqlite3_stmt *st = NULL;
        int64_t code_id;
        int r;

        r = statement(s, STMT_POSSIBLE_INSERT, &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int(st, 1, c->trusted);
        (void) sqlite3_bind_text(st, 2, strempty(c->rule), -1, SQLITE_STATIC);
        (void) sqlite3_bind_int64(st, 3, message_id);
        (void) sqlite3_bind_int64(st, 4, date);
        (void) sqlite3_bind_int(st, 5, m->date_tz);
        (void) sqlite3_bind_int64(st, 6, cs->now);
        r = step_done(st);
        if (r < 0 || sqlite3_changes(s->db) == 0)
                return r; /* known already */
        code_id = sqlite3_last_insert_rowid(s->db);
        r = add_sighting(s, code_id, message_id, c);
        if (r < 0)
                return r;
        return cs->want_new ? add_new_code(cs, b, m, c, code_id, date, 0) : 0;
}

/* Makes message the source of the stored code c (date, display, rule, expiry) where the
 * statement's condition holds: STMT_CODE_UPGRADE (a trusted sighting of an untrusted code) or
 * STMT_CODE_EARLIER (an older sighting of the same trust). Returns the rows changed (0 or 1). */
static int code_set_source(Store *s, StatementId id, const char *kind, int64_t message_id, int64_t date,
                           int64_t expires_at, const Message *m, const Code *c) {
        sqlite3_stmt *st = NULL;
        int r = statement(s, id, &st);

        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 2, c->value, -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 3, c->display ?: c->value, -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 4, strempty(c->rule), -1, SQLITE_STATIC);
        (void) sqlite3_bind_int64(st, 5, message_id);
        (void) sqlite3_bind_int64(st, 6, date);
        (void) sqlite3_bind_int(st, 7, m->date_tz);
        if (expires_at > 0)
                (void) sqlite3_bind_int64(st, 8, expires_at);
        if (id == STMT_CODE_EARLIER)
                (void) sqlite3_bind_int(st, 9, c->trusted);
        r = step_done(st);
        return r < 0 ? r : sqlite3_changes(s->db);
}

static int commit_code(Store *s, CommitState *cs, const StoreBatch *b, const Message *m,
                       int64_t message_id, int64_t date, const Code *c) {
        const char *kind = code_kind_to_string(c->kind);
        int64_t expires_at = c->kind == CODE_KIND_OTP ? date + STORE_OTP_LIFETIME_SEC : 0;
        sqlite3_stmt *st = NULL;
        int64_t code_id;
        bool is_new;
        int r, rc;

        if (c->kind == CODE_KIND_POSSIBLE)
                return commit_possible(s, cs, b, m, message_id, date, c);
        if (!kind || isempty(c->value))
                return 0;

        r = statement(s, STMT_CODE_INSERT, &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 2, c->value, -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 3, c->display ?: c->value, -1, SQLITE_STATIC);
        (void) sqlite3_bind_int(st, 4, c->trusted);
        (void) sqlite3_bind_text(st, 5, strempty(c->rule), -1, SQLITE_STATIC);
        (void) sqlite3_bind_int64(st, 6, message_id);
        (void) sqlite3_bind_int64(st, 7, date);
        (void) sqlite3_bind_int(st, 8, m->date_tz);
        (void) sqlite3_bind_int64(st, 9, cs->now);
        if (expires_at > 0)
                (void) sqlite3_bind_int64(st, 10, expires_at);
        r = step_done(st);
        if (r < 0)
                return r;

        if (sqlite3_changes(s->db) > 0) {
                code_id = sqlite3_last_insert_rowid(s->db);
                is_new = true;
        } else {
                is_new = false;
                if (c->trusted) {
                        r = code_set_source(s, STMT_CODE_UPGRADE, kind, message_id, date, expires_at, m, c);
                        if (r < 0)
                                return r;
                        is_new = r > 0;
                }
                if (!is_new) {
                        /* A code's source is its earliest sighting of the same trust, whatever
                         * the order mail is read in (what supersedes what depends on it). */
                        r = code_set_source(s, STMT_CODE_EARLIER, kind, message_id, date, expires_at, m, c);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                cs->touched[c->kind] = true;
                }

                r = statement(s, STMT_CODE_SEEN, &st);
                if (r < 0)
                        return r;
                (void) sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
                (void) sqlite3_bind_text(st, 2, c->value, -1, SQLITE_STATIC);
                (void) sqlite3_bind_int64(st, 3, cs->now);
                rc = sqlite3_step(st);
                code_id = sqlite3_column_int64(st, 0);
                r = step_done(st);
                if (rc != SQLITE_ROW)
                        return r < 0 ? r : -EBADMSG; /* the conflicting row vanished */
                if (r < 0)
                        return r;
        }

        r = add_sighting(s, code_id, message_id, c);
        if (r < 0)
                return r;

        if (!is_new)
                return 0;
        cs->touched[c->kind] = true;
        return cs->want_new ? add_new_code(cs, b, m, c, code_id, date, expires_at) : 0;
}

/* A JSON array of the labels, each string escaped by the one JSON writer; *ret is malloc'ed. */
static int labels_json(char *const *labels, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        int r = 0;

        if (!f)
                return -errno;
        if (fputc('[', f) == EOF)
                r = -EIO;
        for (char *const *l = labels; r >= 0 && *l; l++) {
                if (l != labels && fputc(',', f) == EOF)
                        r = -EIO;
                if (r >= 0)
                        r = json_write_string(f, *l);
        }
        if (r >= 0 && fputc(']', f) == EOF)
                r = -EIO;
        if (fclose(f) == EOF && r >= 0)
                r = -errno;
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        return 0;
}

static int commit_message(Store *s, CommitState *cs, const StoreBatch *b, const Message *m) {
        _cleanup_free_ char *labels = NULL;
        int64_t message_id, date = m->date > 0 ? m->date : cs->now;
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = statement(s, STMT_MESSAGE, &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, b->account ?: "", -1, SQLITE_STATIC);
        (void) sqlite3_bind_text(st, 2, b->folder ?: "", -1, SQLITE_STATIC);
        (void) sqlite3_bind_int64(st, 3, m->ref.uidvalidity);
        (void) sqlite3_bind_int64(st, 4, m->ref.uid);
        (void) sqlite3_bind_text(st, 5, m->ref.source ?: "", -1, SQLITE_STATIC);
        bind_text_or_null(st, 6, m->message_id);
        bind_text_or_null(st, 7, m->sender);
        bind_text_or_null(st, 8, m->sender_name);
        bind_text_or_null(st, 9, m->subject);
        (void) sqlite3_bind_int64(st, 10, date);
        (void) sqlite3_bind_int(st, 11, m->date_tz);
        (void) sqlite3_bind_int64(st, 12, cs->now);
        if (m->ref.labels) {
                r = labels_json(m->ref.labels, &labels);
                if (r < 0) {
                        sqlite3_reset(st);
                        return r;
                }
        }
        bind_text_or_null(st, 13, labels);
        rc = sqlite3_step(st);
        message_id = sqlite3_column_int64(st, 0);
        r = step_done(st);
        if (rc != SQLITE_ROW)
                return r < 0 ? r : errno_from_sqlite(rc);
        if (r < 0)
                return r;

        for (size_t i = 0; i < m->n_codes; i++) {
                r = commit_code(s, cs, b, m, message_id, date, &m->codes[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int commit_cursor(Store *s, const StoreBatch *b, int64_t now) {
        sqlite3_stmt *st = NULL;
        int r;

        r = statement(s, STMT_CURSOR, &st);
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

/* Marks the codes of kind older than its newest trusted code as superseded, and the others
 * not (after a forget, the previous one comes back). */
static int refresh_superseded(Store *s, CodeKind kind) {
        const char *k = code_kind_to_string(kind);
        _cleanup_free_ char *newest_value = NULL;
        int64_t newest_date = INT64_MIN;
        sqlite3_stmt *st = NULL;
        int r;

        if (!kind_supersedes(kind))
                return 0;
        r = statement(s, STMT_NEWEST_TRUSTED, &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
                newest_value = column_strdup(st, 0);
                newest_date = sqlite3_column_int64(st, 1);
                if (!newest_value) {
                        sqlite3_reset(st);
                        return -ENOMEM;
                }
        }
        r = step_done(st);
        if (r < 0)
                return r;

        for (StatementId id = STMT_SUPERSEDE; id <= STMT_UNSUPERSEDE; id++) {
                r = statement(s, id, &st);
                if (r < 0)
                        return r;
                (void) sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
                (void) sqlite3_bind_text(st, 2, newest_value, -1, SQLITE_STATIC);
                (void) sqlite3_bind_int64(st, 3, newest_date);
                r = step_done(st);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int refresh_touched(Store *s, const bool touched[static _CODE_KIND_MAX]) {
        for (CodeKind k = 0; k < _CODE_KIND_MAX; k++)
                if (touched[k]) {
                        int r = refresh_superseded(s, k);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* Deletes the codes that `where` (SQL on table codes, one parameter ?1 = arg) selects, with
 * their sightings and the messages left with no code, inside the caller's transaction.
 * Returns the number of codes deleted. */
static int delete_codes(Store *s, const char *where, int64_t arg) {
        _cleanup_stmt_ sqlite3_stmt *sight = NULL, *codes = NULL, *msg = NULL;
        _cleanup_free_ int64_t *messages = NULL;
        _cleanup_free_ char *sql_sight = NULL, *sql_codes = NULL;
        bool touched[_CODE_KIND_MAX] = {};
        size_t n = 0, alloc = 0;
        int r, rc, deleted = 0;

        if (asprintf(&sql_sight, "DELETE FROM sightings WHERE code IN (SELECT id FROM codes WHERE %s)"
                                 " RETURNING message", where) < 0 ||
            asprintf(&sql_codes, "DELETE FROM codes WHERE %s RETURNING kind", where) < 0)
                return -ENOMEM;

        /* Sightings first, to learn which messages may be left without codes. */
        r = prepare(s, sql_sight, &sight);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(sight, 1, arg);
        while ((rc = sqlite3_step(sight)) == SQLITE_ROW) {
                if (grow((void **) &messages, &alloc, n, sizeof(int64_t)) < 0)
                        return -ENOMEM;
                messages[n++] = sqlite3_column_int64(sight, 0);
        }
        if (rc != SQLITE_DONE)
                return errno_from_sqlite(rc);

        r = prepare(s, sql_codes, &codes);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(codes, 1, arg);
        while ((rc = sqlite3_step(codes)) == SQLITE_ROW) {
                CodeKind k = code_kind_from_string((const char *) sqlite3_column_text(codes, 0));
                if (k >= 0)
                        touched[k] = true;
                deleted++;
        }
        if (rc != SQLITE_DONE)
                return errno_from_sqlite(rc);

        r = prepare(s, "DELETE FROM messages WHERE id = ?1"
                       " AND NOT EXISTS (SELECT 1 FROM sightings WHERE message = ?1)"
                       " AND NOT EXISTS (SELECT 1 FROM codes WHERE message = ?1)", &msg);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                (void) sqlite3_bind_int64(msg, 1, messages[i]);
                r = step_done(msg);
                if (r < 0)
                        return r;
        }
        r = refresh_touched(s, touched);
        return r < 0 ? r : deleted;
}

/* Deletes the codes expired before `before`; most commits find none and cost one probe. */
static int purge_expired(Store *s, int64_t before) {
        sqlite3_stmt *st = NULL;
        bool any;
        int r;

        r = statement(s, STMT_EXPIRED_ANY, &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(st, 1, before);
        any = sqlite3_step(st) == SQLITE_ROW;
        r = step_done(st);
        if (r < 0 || !any)
                return r;
        return delete_codes(s, "expires_at < ?1", before);
}

/* A code found already past its retention (a login code in old mail) is purged by the commit
 * that stored it: it is not new, and its id may go to the next code. */
static void new_codes_drop_purged(CommitState *cs, int64_t before) {
        size_t k = 0;

        for (size_t i = 0; i < cs->n_new; i++) {
                if (cs->new_codes[i].expires_at > 0 && cs->new_codes[i].expires_at < before)
                        stored_code_done(&cs->new_codes[i]);
                else
                        cs->new_codes[k++] = cs->new_codes[i];
        }
        cs->n_new = k;
}

int store_commit(Store *s, const StoreBatch *b, StoredCode **ret_new, size_t *ret_n_new) {
        CommitState cs = { .now = (int64_t) time(NULL), .want_new = ret_new };
        int r;

        if (s->read_only)
                return -EROFS;
        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        for (size_t i = 0; i < b->n_messages && r >= 0; i++)
                if (b->messages[i]->n_codes > 0)
                        r = commit_message(s, &cs, b, b->messages[i]);
        if (r >= 0)
                r = refresh_touched(s, cs.touched);
        if (r >= 0 && b->move_cursor && b->account && b->folder)
                r = commit_cursor(s, b, cs.now);
        if (r >= 0)
                r = purge_expired(s, cs.now - s->otp_retention);
        if (r >= 0)
                new_codes_drop_purged(&cs, cs.now - s->otp_retention);
#ifdef ALCODE_TEST_HOOKS
        /* Fault injection between the inserts and the COMMIT that makes them durable: an error
         * (rolled back) or a crash (the journal is left behind). */
        if (r >= 0 && getenv("ALCODE_TEST_FAIL_BEFORE_COMMIT"))
                r = -EIO;
        if (r >= 0 && getenv("ALCODE_TEST_CRASH_BEFORE_COMMIT")) {
                /* =N: at the Nth commit of this process (1 when not a number). */
                static int commits = 0;
                if (++commits >= MAX(atoi(getenv("ALCODE_TEST_CRASH_BEFORE_COMMIT")), 1))
                        abort();
        }
#endif
        if (r >= 0)
                r = exec(s, "COMMIT");
        if (r < 0) {
                (void) exec(s, "ROLLBACK");
                stored_codes_free(cs.new_codes, cs.n_new);
                return r;
        }
        if (ret_new) {
                *ret_new = cs.new_codes;
                *ret_n_new = cs.n_new;
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

static int cursor_read(sqlite3_stmt *st, void *elem, _unused_ void *userdata) {
        StoreCursor *c = elem;

        *c = (StoreCursor) {
                .account = column_strdup(st, 0),
                .folder = column_strdup(st, 1),
                .uidvalidity = (uint32_t) sqlite3_column_int64(st, 2),
                .last_uid = (uint32_t) sqlite3_column_int64(st, 3),
                .highest_modseq = (uint64_t) sqlite3_column_int64(st, 4),
                .messages_seen = (uint64_t) sqlite3_column_int64(st, 5),
                .updated_at = sqlite3_column_int64(st, 6),
        };
        return c->account && c->folder ? 0 : -ENOMEM;
}

static void cursor_done(void *elem) {
        StoreCursor *c = elem;

        free(c->account);
        free(c->folder);
}

DEFINE_ROW_TYPE(cursor, StoreCursor, store_cursors_free);

int store_list_cursors(Store *s, const char *account, StoreCursor **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s, "SELECT account, folder, uidvalidity, last_uid, highest_modseq, messages_seen,"
                       " updated_at FROM cursors WHERE ?1 IS NULL OR account = ?1 ORDER BY account, folder",
                    &st);
        if (r < 0)
                return r;
        bind_text_or_null(st, 1, account);
        return rows_read(st, &cursor_rows, NULL, (void **) ret, ret_n);
}

int store_reset_cursors(Store *s, const char *account) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        if (s->read_only)
                return -EROFS;
        r = prepare(s, "DELETE FROM cursors WHERE ?1 IS NULL OR account = ?1", &st);
        if (r < 0)
                return r;
        bind_text_or_null(st, 1, account);
        return step_done(st);
}

/* SELECT columns FROM codes c JOIN messages m WHERE <only the conditions f sets>, newest first.
 * Conditions are left out rather than written "?1 IS NULL OR …", which would keep SQLite from
 * using the indexes. Parameters: ?1 kind, ?2 account, ?3 now, ?4 id, ?5 limit. */
static int filter_query(Store *s, const char *columns, const StoreFilter *f, sqlite3_stmt **ret) {
        _cleanup_strbuf_ StrBuf sql = STRBUF_INIT(0);
        sqlite3_stmt *st = NULL;
        int r;

        r = strbuf_printf(&sql, "SELECT %s FROM codes c JOIN messages m ON m.id = c.message WHERE 1", columns);
        if (r >= 0 && f->kind >= 0)
                r = strbuf_puts(&sql, " AND c.kind = ?1");
        if (r >= 0 && f->account)
                r = strbuf_puts(&sql, " AND EXISTS (SELECT 1 FROM sightings s JOIN messages sm ON sm.id = s.message"
                                      " WHERE s.code = c.id AND sm.account = ?2)");
        if (r >= 0 && f->untrusted_only)
                r = strbuf_puts(&sql, " AND c.trusted = 0");
        if (r >= 0 && f->trusted_only)
                r = strbuf_puts(&sql, " AND c.trusted = 1");
        if (r >= 0 && f->unexpired_only)
                r = strbuf_puts(&sql, " AND (c.expires_at IS NULL OR c.expires_at > ?3)");
        if (r >= 0 && f->id > 0)
                r = strbuf_puts(&sql, " AND c.id = ?4");
        if (r >= 0)
                r = strbuf_puts(&sql, " ORDER BY c.date DESC, c.value DESC, c.id DESC LIMIT ?5");
        if (r < 0)
                return r;
        r = prepare(s, sql.data, &st);
        if (r < 0)
                return r;
        /* Parameters the text does not use are simply out of range: ignore those binds. */
        if (f->kind >= 0)
                (void) sqlite3_bind_text(st, 1, code_kind_to_string(f->kind), -1, SQLITE_STATIC);
        if (f->account)
                (void) sqlite3_bind_text(st, 2, f->account, -1, SQLITE_STATIC);
        (void) sqlite3_bind_int64(st, 3, (sqlite3_int64) time(NULL));
        (void) sqlite3_bind_int64(st, 4, f->id);
        (void) sqlite3_bind_int64(st, 5, f->limit > 0 ? (sqlite3_int64) f->limit : -1);
        *ret = st;
        return 0;
}

static int code_read(sqlite3_stmt *st, void *elem, void *userdata) {
        StoredCode *c = elem;
        int64_t now = *(const int64_t *) userdata;

        *c = (StoredCode) {
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
                .expires_at = sqlite3_column_int64(st, 13),
                .superseded = sqlite3_column_int(st, 14),
        };
        c->expired = c->expires_at > 0 && c->expires_at <= now;
        if ((c->kind != CODE_KIND_POSSIBLE && (!c->value || !c->display)) || !c->account || !c->folder)
                return -ENOMEM;
        return 0;
}

static void stored_code_elem_done(void *elem) {
        stored_code_done(elem);
}

static const RowType code_rows = {
        .size = sizeof(StoredCode),
        .read = code_read,
        .done = stored_code_elem_done,
};

int store_list(Store *s, const StoreFilter *f, StoredCode **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t now = (int64_t) time(NULL);
        int r;

        r = filter_query(s,
                         "c.id, c.kind, c.value, c.display, c.trusted, m.sender, m.sender_name, c.date,"
                         " c.date_tz, m.account, m.folder, m.subject, c.first_seen, c.expires_at, c.superseded",
                         f, &st);
        if (r < 0)
                return r;
        return rows_read(st, &code_rows, &now, (void **) ret, ret_n);
}

static int sighting_read(sqlite3_stmt *st, void *elem, _unused_ void *userdata) {
        StoreSighting *g = elem;

        *g = (StoreSighting) {
                .account = column_strdup(st, 0),
                .folder = column_strdup(st, 1),
                .source = column_strdup(st, 2),
                .uidvalidity = (uint32_t) sqlite3_column_int64(st, 3),
                .uid = (uint32_t) sqlite3_column_int64(st, 4),
                .message_id = column_strdup(st, 5),
                .sender = column_strdup(st, 6),
                .date = sqlite3_column_int64(st, 7),
                .date_tz = sqlite3_column_int(st, 8),
                .rule = column_strdup(st, 9),
                .trusted = sqlite3_column_int(st, 10),
                .labels = column_strdup(st, 11),
        };
        return g->account && g->folder && g->source && g->rule ? 0 : -ENOMEM;
}

static void sighting_done(void *elem) {
        StoreSighting *g = elem;

        free(g->account);
        free(g->folder);
        free(g->source);
        free(g->message_id);
        free(g->sender);
        free(g->rule);
        free(g->labels);
}

DEFINE_ROW_TYPE(sighting, StoreSighting, store_sightings_free);

int store_list_sightings(Store *s, int64_t code_id, StoreSighting **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r;

        r = prepare(s,
                    "SELECT m.account, m.folder, m.source, m.uidvalidity, m.uid, m.message_id, m.sender,"
                    " m.date, m.date_tz, s.rule, s.trusted,"
                    " (SELECT group_concat(value, ', ') FROM json_each(m.labels))"
                    " FROM sightings s JOIN messages m ON m.id = s.message WHERE s.code = ?1"
                    " ORDER BY m.date, m.id",
                    &st);
        if (r < 0)
                return r;
        (void) sqlite3_bind_int64(st, 1, code_id);
        return rows_read(st, &sighting_rows, NULL, (void **) ret, ret_n);
}

int store_forget(Store *s, int64_t id) {
        int r;

        if (s->read_only)
                return -EROFS;
        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = delete_codes(s, "id = ?1", id);
        if (r == 0)
                r = -ENOENT;
        if (r >= 0)
                r = exec(s, "COMMIT");
        if (r < 0) {
                (void) exec(s, "ROLLBACK");
                return r;
        }
        return 0;
}

int store_account_stats(Store *s, const char *account, uint64_t *ret_messages, uint64_t *ret_codes,
                        int64_t *ret_last_sync) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r, rc;

        r = prepare(s,
                    "SELECT (SELECT ifnull(sum(messages_seen), 0) FROM cursors WHERE account = ?1),"
                    " (SELECT count(DISTINCT s.code) FROM sightings s JOIN messages m ON m.id = s.message"
                    "  JOIN codes c ON c.id = s.code WHERE m.account = ?1 AND c.kind != 'possible'),"
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

int store_count_possible(Store *s, uint64_t *ret) {
        int64_t n = 0;
        int r = query_int64(s, "SELECT count(*) FROM codes WHERE kind = 'possible'", &n);

        if (r >= 0)
                *ret = (uint64_t) n;
        return r;
}

/* For store-format.c (store-internal.h). */
int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        return prepare(s, sql, ret);
}

int store_filter_query(Store *s, const char *columns, const StoreFilter *f, sqlite3_stmt **ret) {
        return filter_query(s, columns, f, ret);
}

int store_errno_from_sqlite(int rc) {
        return errno_from_sqlite(rc);
}
