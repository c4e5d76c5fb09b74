/* store.c on real SQLite files in a temporary folder: modes, idempotence, the cursor moving with
 * its codes (failure and crash injected before COMMIT), trust upgrades, the code lifecycle
 * (expiry, purge, supersession), JSON Lines, migrations from every released schema, and the
 * databases a reader must refuse clearly (missing, empty, foreign, newer, corrupt, locked). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test-util.h"
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "store-format.h"
#include "store.h"

static char dir[] = "/tmp/alcode-test-store-XXXXXX";
static char path[256];
static int counter = 0;

DEFINE_TEST_TMPDIR(dir)

/* Each test gets its own database file in its own folder. */
static int fresh_path(void **state) {
        (void) state;
        (void) snprintf(path, sizeof path, "%s/t%d/alcode.db", dir, ++counter);
        return 0;
}

static Message *message_at(uint32_t uid, const char *value, CodeKind kind, bool trusted, int64_t date) {
        Message *m = calloc(1, sizeof(Message));
        assert_non_null(m);
        m->ref.uid = uid;
        m->ref.uidvalidity = 7;
        m->sender = strdup(trusted ? "ne-pas-repondre@actionlogement.fr" : "alerte@action-logement-securite.com");
        m->subject = strdup("Votre code");
        assert_true(asprintf(&m->message_id, "<%u@actionlogement.fr>", uid) > 0);
        m->date = date;
        m->date_tz = 60;
        assert_int_equal(message_add_code(m, &(Code) { .kind = kind, .value = (char *) value,
                                                       .display = (char *) value, .trusted = trusted,
                                                       .rule = (char *) "r@1" }), 1);
        return m;
}

static Message *message(uint32_t uid, const char *value, CodeKind kind, bool trusted) {
        return message_at(uid, value, kind, trusted, 1772525640); /* 2026-03-03T08:14:00Z */
}

/* Commits one message in account/folder, moving the cursor to its uid. Returns the number of
 * new codes, or a negative error. */
static int commit_one(Store *s, const char *account, const char *folder, Message *m) {
        StoredCode *fresh = NULL;
        size_t n_fresh = 0;
        StoreBatch b = { .account = account, .folder = folder, .uidvalidity = 7, .last_uid = m->ref.uid,
                         .move_cursor = true, .messages_seen = 1, .messages = &m, .n_messages = 1 };
        int r = store_commit(s, &b, &fresh, &n_fresh);

        if (r < 0)
                return r;
        stored_codes_free(fresh, n_fresh);
        return (int) n_fresh;
}

/* commit_one() of a message made for it, freed after. */
static int commit_free(Store *s, Message *m) {
        int r = commit_one(s, "perso", "INBOX", m);
        message_free(m);
        return r;
}

static Store *open_rw(void) {
        Store *s = NULL;
        assert_int_equal(store_open(path, STORE_READ_WRITE, &s, NULL), 0);
        return s;
}

static int64_t query_int(const char *p, const char *sql) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int64_t v;

        assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static void exec_sql(const char *p, const char *sql) {
        sqlite3 *db = NULL;
        char *err = NULL;

        assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
                fail_msg("%s: %s", sql, err);
        sqlite3_close(db);
}

static StoredCode *list(Store *s, StoreFilter f, size_t *ret_n) {
        StoredCode *c = NULL;
        assert_int_equal(store_list(s, &f, &c, ret_n), 0);
        return c;
}

static void test_modes(void **state) {
        Store *s = NULL;
        struct stat st;
        char sub[300];

        (void) state;
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), -ENOENT);
        s = open_rw();
        store_close(s);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        (void) snprintf(sub, sizeof sub, "%s/t%d", dir, counter);
        assert_int_equal(stat(sub, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);

        /* A database others can read is made private again. */
        assert_int_equal(chmod(path, 0644), 0);
        s = open_rw();
        store_close(s);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* A folder is not a database. */
        assert_int_equal(store_open(sub, STORE_READ_ONLY, &s, NULL), -EISDIR);
}

static void test_idempotence(void **state) {
        Store *s;
        uint32_t uidvalidity, last;
        Message *m = message(10, "AB12CD34", CODE_KIND_SPECIFIC, true);
        size_t n;

        (void) state;
        s = open_rw();
        assert_int_equal(store_get_cursor(s, "perso", "INBOX", &uidvalidity, &last, NULL), -ENOENT);
        assert_int_equal(commit_one(s, "perso", "INBOX", m), 1);
        assert_int_equal(store_get_cursor(s, "perso", "INBOX", &uidvalidity, &last, NULL), 0);
        assert_int_equal(uidvalidity, 7);
        assert_int_equal(last, 10);

        /* The same message again (a replay after a crash): nothing new, nothing added. */
        assert_int_equal(commit_one(s, "perso", "INBOX", m), 0);
        assert_int_equal(query_int(path, "SELECT count(*) FROM messages"), 1);
        assert_int_equal(query_int(path, "SELECT count(*) FROM sightings"), 1);

        /* A copy in another folder and in another account: no new code, two more sightings. */
        m->ref.uid = 99;
        assert_int_equal(commit_one(s, "perso", "Archives", m), 0);
        assert_int_equal(commit_one(s, "travail", "INBOX", m), 0);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes"), 1);
        assert_int_equal(query_int(path, "SELECT count(*) FROM sightings"), 3);

        /* The code keeps its first source. */
        StoredCode *c = list(s, STORE_FILTER_ALL, &n);
        assert_int_equal(n, 1);
        assert_string_equal(c[0].account, "perso");
        assert_string_equal(c[0].folder, "INBOX");
        stored_codes_free(c, n);
        message_free(m);
        store_close(s);
}

#ifdef ALCODE_TEST_HOOKS
/* The cursor of account/folder stands at last. */
static void assert_last_uid(Store *s, const char *account, const char *folder, uint32_t last) {
        uint32_t uidvalidity, got;

        assert_int_equal(store_get_cursor(s, account, folder, &uidvalidity, &got, NULL), 0);
        assert_int_equal(got, last);
}

static void test_cursor_failure_injected(void **state) {
        Store *s;
        Message *m1 = message(10, "AB12CD34", CODE_KIND_SPECIFIC, true);
        Message *m2 = message(11, "EF56GH78", CODE_KIND_SPECIFIC, true);

        (void) state;
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "INBOX", m1), 1);

        /* An error between the inserts and the COMMIT: neither the code nor the cursor moves. */
        assert_int_equal(setenv("ALCODE_TEST_FAIL_BEFORE_COMMIT", "1", 1), 0);
        assert_int_equal(commit_one(s, "perso", "INBOX", m2), -EIO);
        assert_int_equal(unsetenv("ALCODE_TEST_FAIL_BEFORE_COMMIT"), 0);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes"), 1);
        assert_last_uid(s, "perso", "INBOX", 10);

        /* The replay stores both. */
        assert_int_equal(commit_one(s, "perso", "INBOX", m2), 1);
        assert_last_uid(s, "perso", "INBOX", 11);
        message_free(m1);
        message_free(m2);
        store_close(s);
}

static void test_cursor_crash_injected(void **state) {
        Store *s;
        Message *m1 = message(10, "AB12CD34", CODE_KIND_SPECIFIC, true);
        Message *m2 = message(11, "EF56GH78", CODE_KIND_SPECIFIC, true);
        int status;
        pid_t pid;

        (void) state;
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "INBOX", m1), 1);
        store_close(s);

        /* A process dies between the inserts and the COMMIT, its transaction half written. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                Store *c = NULL;
                (void) signal(SIGABRT, SIG_DFL);
                if (store_open(path, STORE_READ_WRITE, &c, NULL) < 0)
                        _exit(3);
                (void) setenv("ALCODE_TEST_CRASH_BEFORE_COMMIT", "1", 1);
                (void) commit_one(c, "perso", "INBOX", m2);
                _exit(4); /* not reached */
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);

        /* Whoever opens it next sees the state before that transaction. */
        s = open_rw();
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes"), 1);
        assert_last_uid(s, "perso", "INBOX", 10);
        assert_int_equal(commit_one(s, "perso", "INBOX", m2), 1);
        assert_last_uid(s, "perso", "INBOX", 11);
        store_close(s);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes"), 2);
        message_free(m1);
        message_free(m2);
}
#endif

static void test_untrusted_then_trusted(void **state) {
        Store *s;
        StoredCode *c;
        size_t n;
        Message *bad = message_at(20, "ZZ99YY88", CODE_KIND_SPECIFIC, false, 1772525640);
        Message *good = message_at(21, "ZZ99YY88", CODE_KIND_SPECIFIC, true, 1772612040);
        StoreFilter f = STORE_FILTER_ALL;

        (void) state;
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "Junk", bad), 1);
        /* The same code from a trusted sender: worth telling, and now its shown source. */
        assert_int_equal(commit_one(s, "perso", "INBOX", good), 1);
        /* A trusted code seen again from a look-alike stays trusted and is not news. */
        bad->ref.uid = 22;
        assert_int_equal(commit_one(s, "perso", "Junk", bad), 0);

        c = list(s, STORE_FILTER_ALL, &n);
        assert_int_equal(n, 1);
        assert_true(c[0].trusted);
        assert_string_equal(c[0].folder, "INBOX");
        assert_int_equal(c[0].date, 1772612040);
        stored_codes_free(c, n);
        f.untrusted_only = true;
        c = list(s, f, &n);
        assert_int_equal(n, 0);
        stored_codes_free(c, n);
        message_free(bad);
        message_free(good);
        store_close(s);
}

static void test_otp_lifecycle(void **state) {
        Store *s;
        StoredCode *c;
        size_t n;
        int64_t now = (int64_t) time(NULL);
        Message *old = message_at(1, "111111", CODE_KIND_OTP, true, now - 2 * 3600);
        Message *cur = message_at(2, "222222", CODE_KIND_OTP, true, now);
        Message *other = message_at(3, "AB12CD34", CODE_KIND_SPECIFIC, true, now);
        StoreFilter f = STORE_FILTER_ALL;
        char *buf = NULL;
        size_t len = 0;
        FILE *out;

        (void) state;
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "INBOX", old), 1);
        assert_int_equal(commit_one(s, "perso", "INBOX", cur), 1);

        /* Both kept, newest first; the old one expired and replaced. */
        f.kind = CODE_KIND_OTP;
        c = list(s, f, &n);
        assert_int_equal(n, 2);
        assert_string_equal(c[0].value, "222222");
        assert_false(c[0].expired);
        assert_false(c[0].superseded);
        assert_int_equal(c[0].expires_at, now + STORE_OTP_LIFETIME_SEC);
        assert_string_equal(c[1].value, "111111");
        assert_true(c[1].expired);
        assert_true(c[1].superseded);
        stored_codes_free(c, n);

        out = open_memstream(&buf, &len);
        assert_int_equal(store_write_json(s, &f, out), 2);
        fclose(out);
        assert_non_null(strstr(buf, "\"value\":\"111111\""));
        assert_non_null(strstr(strstr(buf, "\"value\":\"111111\""), "\"expired\":true,\"superseded\":true}"));
        assert_null(strstr(buf, "\"expired\":false"));
        free(buf);

        /* What `latest otp` asks for: trusted and not expired. */
        f.trusted_only = f.unexpired_only = true;
        c = list(s, f, &n);
        assert_int_equal(n, 1);
        assert_string_equal(c[0].value, "222222");
        stored_codes_free(c, n);

        /* Expired for 1.5 h: kept with a retention of 2 h, deleted with 1 h, at the next commit,
         * with its message. */
        store_set_otp_retention(s, 2 * 3600);
        assert_int_equal(commit_one(s, "perso", "INBOX", other), 1);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes WHERE kind = 'otp'"), 2);
        store_set_otp_retention(s, 3600);
        other->ref.uid = 4;
        assert_int_equal(commit_one(s, "perso", "INBOX", other), 0);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes WHERE kind = 'otp'"), 1);
        assert_int_equal(query_int(path, "SELECT count(*) FROM messages WHERE uid = 1"), 0);
        assert_int_equal(query_int(path, "SELECT count(*) FROM messages"), 3);
        /* Found already past its retention (a login code in old mail): purged by the commit that
         * stored it, never reported as new (its id would go to the next code). */
        assert_int_equal(commit_free(s, message_at(5, "333333", CODE_KIND_OTP, true, now - 3 * 86400)), 0);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes WHERE kind = 'otp'"), 1);
        message_free(old);
        message_free(cur);
        message_free(other);
        store_close(s);
}

static const char *values(StoredCode *c, size_t n, char *buf, size_t size) {
        size_t k = 0;
        buf[0] = 0;
        for (size_t i = 0; i < n; i++)
                k += (size_t) snprintf(buf + k, size - k, "%s%s%s%s", i ? " " : "", c[i].value,
                                       c[i].superseded ? "-" : "", c[i].trusted ? "" : "?");
        return buf;
}

/* The listing of f asserted as values() writes it, and freed. */
static void assert_listed(Store *s, StoreFilter f, const char *want) {
        char buf[256];
        size_t n;
        StoredCode *c = list(s, f, &n);

        assert_string_equal(values(c, n, buf, sizeof buf), want);
        stored_codes_free(c, n);
}

static void test_supersede(void **state) {
        Store *s;
        StoredCode *c;
        size_t n;
        StoreFilter f = STORE_FILTER_ALL;
        Message *jan = message_at(1, "JAN11111", CODE_KIND_SPECIFIC, true, 1767225600);
        Message *mar = message_at(2, "MAR33333", CODE_KIND_SPECIFIC, true, 1772323200);
        Message *apr = message_at(3, "APR44444", CODE_KIND_SPECIFIC, false, 1775001600);
        Message *feb = message_at(4, "FEB22222", CODE_KIND_SPECIFIC, true, 1769904000);
        Message *r1 = message_at(5, "D1", CODE_KIND_REQUEST, true, 1767225600);
        Message *r2 = message_at(6, "D2", CODE_KIND_REQUEST, true, 1772323200);

        (void) state;
        s = open_rw();
        f.kind = CODE_KIND_SPECIFIC;
        assert_int_equal(commit_one(s, "perso", "INBOX", jan), 1);
        assert_int_equal(commit_one(s, "perso", "INBOX", mar), 1);
        assert_listed(s, f, "MAR33333 JAN11111-");

        /* A newer look-alike does not replace the trusted one; an older trusted one arrives late. */
        assert_int_equal(commit_one(s, "perso", "Junk", apr), 1);
        assert_int_equal(commit_one(s, "perso", "Archives", feb), 1);
        assert_listed(s, f, "APR44444? MAR33333 FEB22222- JAN11111-");

        /* Forgetting the newest brings the one before back. */
        c = list(s, f, &n);
        assert_int_equal(store_forget(s, c[1].id), 0);
        assert_int_equal(store_forget(s, c[1].id), -ENOENT);
        stored_codes_free(c, n);
        assert_listed(s, f, "APR44444? FEB22222 JAN11111-");
        assert_int_equal(query_int(path, "SELECT count(*) FROM messages WHERE uid = 2"), 0);

        /* Request numbers name different requests: both stay current. */
        assert_int_equal(commit_one(s, "perso", "INBOX", r1), 1);
        assert_int_equal(commit_one(s, "perso", "INBOX", r2), 1);
        f.kind = CODE_KIND_REQUEST;
        assert_listed(s, f, "D2 D1");

        message_free(jan);
        message_free(mar);
        message_free(apr);
        message_free(feb);
        message_free(r1);
        message_free(r2);
        store_close(s);
}

/* A code's date and source are its earliest sighting's, whatever the order mail is read in:
 * what supersedes what must not change when a resumed scan reads the same mail in another order. */
static void test_earliest_sighting(void **state) {
        Store *s;
        StoredCode *c;
        size_t n;
        char buf[256];
        StoreFilter f = STORE_FILTER_ALL;
        Message *feb = message_at(40, "FEB22222", CODE_KIND_SPECIFIC, true, 1769904000);
        Message *mar = message_at(41, "OLD11111", CODE_KIND_SPECIFIC, true, 1772323200);
        Message *jan = message_at(42, "OLD11111", CODE_KIND_SPECIFIC, true, 1767225600);
        Message *spoof = message_at(43, "OLD11111", CODE_KIND_SPECIFIC, false, 1764547200);

        (void) state;
        s = open_rw();
        f.kind = CODE_KIND_SPECIFIC;
        assert_int_equal(commit_one(s, "perso", "INBOX", feb), 1);
        assert_int_equal(commit_one(s, "perso", "INBOX", mar), 1);
        assert_listed(s, f, "OLD11111 FEB22222-");

        /* Read later, the January mail that first gave OLD11111: the code is January's, and
         * February's is the current one, as when January's mail is read first. */
        assert_int_equal(commit_one(s, "perso", "Archives", jan), 0);
        c = list(s, f, &n);
        assert_string_equal(values(c, n, buf, sizeof buf), "FEB22222 OLD11111-");
        assert_int_equal(c[1].date, 1767225600);
        assert_string_equal(c[1].folder, "Archives");
        stored_codes_free(c, n);

        /* An older look-alike is a sighting, not the trusted code's source. */
        assert_int_equal(commit_one(s, "perso", "Junk", spoof), 0);
        c = list(s, f, &n);
        assert_int_equal(c[1].date, 1767225600);
        assert_string_equal(c[1].folder, "Archives");
        stored_codes_free(c, n);

        message_free(feb);
        message_free(mar);
        message_free(jan);
        message_free(spoof);
        store_close(s);
}

static void test_json(void **state) {
        Store *s;
        char *buf = NULL, expected[1024], found[40];
        size_t len = 0, n;
        FILE *out;
        StoredCode *c;
        StoreFilter f = STORE_FILTER_ALL;
        Message *m = message(4711, "AB12CD34", CODE_KIND_SPECIFIC, true);

        (void) state;
        free(m->codes[0].display);
        m->codes[0].display = strdup("AB12 CD34");
        free(m->subject);
        m->subject = strdup("Votre \"code\" spécifique");
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "INBOX", m), 1);
        store_close(s);

        /* What DESIGN.md shows, member for member, from a read-only handle. */
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), 0);
        c = list(s, STORE_FILTER_ALL, &n);
        (void) format_rfc3339(c[0].found_at, 0, found, sizeof found);
        (void) snprintf(expected, sizeof expected,
                        "{\"id\":%" PRIi64 ",\"kind\":\"specific\",\"value\":\"AB12CD34\",\"display\":\"AB12 CD34\","
                        "\"trusted\":true,\"sender\":\"ne-pas-repondre@actionlogement.fr\","
                        "\"date\":\"2026-03-03T09:14:00+01:00\",\"account\":\"perso\",\"folder\":\"INBOX\","
                        "\"uid\":4711,\"uidvalidity\":7,\"message_id\":\"<4711@actionlogement.fr>\","
                        "\"subject\":\"Votre \\\"code\\\" spécifique\",\"rule\":\"r@1\",\"found_at\":\"%s\"}\n",
                        c[0].id, found);
        stored_codes_free(c, n);
        out = open_memstream(&buf, &len);
        f.kind = CODE_KIND_SPECIFIC;
        assert_int_equal(store_write_json(s, &f, out), 1);
        fclose(out);
        assert_string_equal(buf, expected);
        free(buf);
        /* Read-only handles refuse writes. */
        assert_int_equal(store_forget(s, 1), -EROFS);
        assert_int_equal(commit_one(s, "perso", "INBOX", m), -EROFS);
        store_close(s);

        /* The same for a code found by `alcode scan` in a local file, not stored. */
        free(m->ref.source);
        m->ref.source = strdup("mail/x.eml");
        m->date_tz = -330;
        buf = NULL;
        out = open_memstream(&buf, &len);
        assert_int_equal(store_json_for_message(m, out), 0);
        fclose(out);
        assert_string_equal(buf, "{\"kind\":\"specific\",\"value\":\"AB12CD34\",\"display\":\"AB12 CD34\","
                                 "\"trusted\":true,\"sender\":\"ne-pas-repondre@actionlogement.fr\","
                                 "\"date\":\"2026-03-03T02:44:00-05:30\",\"message_id\":\"<4711@actionlogement.fr>\","
                                 "\"subject\":\"Votre \\\"code\\\" spécifique\",\"rule\":\"r@1\","
                                 "\"source\":\"mail/x.eml\"}\n");
        free(buf);
        message_free(m);
}

/* The schema as text, whitespace folded, one object per line, in name order. */
static char *schema_of(const char *p) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        char *buf = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&buf, &len);

        assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_schema ORDER BY name", -1,
                                            &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
                const char *sql = (const char *) sqlite3_column_text(st, 2);
                fprintf(out, "%s %s: ", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
                for (bool space = false; sql && *sql; sql++) {
                        bool s = strchr(" \t\n", *sql);
                        if (!s && space)
                                putc(' ', out);
                        if (!s)
                                putc(*sql, out);
                        space = s;
                }
                putc('\n', out);
        }
        fprintf(out, "user_version %d\n", (int) query_int(p, "PRAGMA user_version"));
        fprintf(out, "application_id %d\n", (int) query_int(p, "PRAGMA application_id"));
        sqlite3_finalize(st);
        sqlite3_close(db);
        fclose(out);
        return buf;
}

static char *read_file(const char *p) {
        char *buf = NULL;
        size_t len = 0;
        FILE *in = fopen(p, "re"), *out = open_memstream(&buf, &len);
        int ch;

        assert_non_null(in);
        while ((ch = getc(in)) != EOF)
                putc(ch, out);
        fclose(in);
        fclose(out);
        return buf;
}

/* Every released schema (tests/data/store/schema-v<N>.sql, with rows) migrates to the current
 * one: the same schema as a new database, every row still there; and the current one opens
 * unchanged. */
static void test_migrations(void **state) {
        char fresh[300], old[300], name[300];
        _cleanup_free_ char *want = NULL;
        struct dirent **entries = NULL;
        Store *s;
        int n_entries, versions = 0;

        (void) state;
        (void) snprintf(fresh, sizeof fresh, "%s/t%d/fresh.db", dir, counter);
        assert_int_equal(store_open(fresh, STORE_READ_WRITE, &s, NULL), 0);
        store_close(s);
        want = schema_of(fresh);
        (void) snprintf(name, sizeof name, "user_version %d\n", STORE_SCHEMA_VERSION);
        assert_non_null(strstr(want, name));

        /* Version 0: an empty file, as the daemon creates it. Readers say "empty". */
        (void) snprintf(old, sizeof old, "%s/t%d/v0.db", dir, counter);
        assert_int_equal(close(open(old, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
        assert_int_equal(store_open(old, STORE_READ_ONLY, &s, NULL), -ENODATA);
        assert_int_equal(store_open(old, STORE_READ_WRITE, &s, NULL), 0);
        store_close(s);
        _cleanup_free_ char *got0 = schema_of(old);
        assert_string_equal(got0, want);

        n_entries = scandir(TEST_DATA_DIR "/store", &entries, NULL, alphasort);
        assert_true(n_entries > 0);
        for (int i = 0; i < n_entries; i++) {
                int version;
                int64_t codes, messages, sightings, cursors;
                _cleanup_free_ char *sql = NULL, *got = NULL, *again = NULL, *sql_path = NULL;

                if (sscanf(entries[i]->d_name, "schema-v%d.sql", &version) != 1) {
                        free(entries[i]);
                        continue;
                }
                versions++;
                assert_true(version >= 1 && version <= STORE_SCHEMA_VERSION);
                /* The source tree may be anywhere, at any depth: no fixed-size buffer for it. */
                assert_true(asprintf(&sql_path, "%s/store/%s", TEST_DATA_DIR, entries[i]->d_name) > 0);
                (void) snprintf(old, sizeof old, "%s/t%d/v%d.db", dir, counter, version);
                free(entries[i]);
                sql = read_file(sql_path);
                exec_sql(old, sql);
                codes = query_int(old, "SELECT count(*) FROM codes");
                messages = query_int(old, "SELECT count(*) FROM messages");
                sightings = query_int(old, "SELECT count(*) FROM sightings");
                cursors = query_int(old, "SELECT count(*) FROM cursors");
                assert_true(codes > 0);

                /* A reader does not migrate: it asks for the daemon. */
                s = NULL;
                assert_int_equal(store_open(old, STORE_READ_ONLY, &s, NULL),
                                 version < STORE_SCHEMA_VERSION ? -ESTALE : 0);
                store_close(s);

                assert_int_equal(store_open(old, STORE_READ_WRITE, &s, NULL), 0);
                store_close(s);
                got = schema_of(old);
                assert_string_equal(got, want);
                assert_int_equal(query_int(old, "SELECT count(*) FROM codes"), codes);
                assert_int_equal(query_int(old, "SELECT count(*) FROM messages"), messages);
                assert_int_equal(query_int(old, "SELECT count(*) FROM sightings"), sightings);
                assert_int_equal(query_int(old, "SELECT count(*) FROM cursors"), cursors);

                /* Current → current: nothing changes. */
                assert_int_equal(store_open(old, STORE_READ_WRITE, &s, NULL), 0);
                StoredCode *c;
                size_t n;
                c = list(s, STORE_FILTER_ALL, &n);
                assert_int_equal(n, codes);
                stored_codes_free(c, n);
                store_close(s);
                again = schema_of(old);
                assert_string_equal(again, want);
        }
        free(entries);
        /* The fixture of the current version is there, ready for the next migration. */
        assert_int_equal(versions, STORE_SCHEMA_VERSION);
}

/* A value keeps its case; identity does not: the same code in other capitals is the same code,
 * and the store keeps the first writing. */
static void test_case_kept(void **state) {
        Store *s;
        StoredCode *c;
        size_t n;
        StoreFilter f = { .kind = CODE_KIND_SPECIFIC, .trusted_only = true, .limit = 1 };

        (void) state;
        s = open_rw();
        assert_int_equal(commit_free(s, message(1, "k7P29xq4", CODE_KIND_SPECIFIC, true)), 1);
        assert_int_equal(commit_free(s, message(2, "K7P29XQ4", CODE_KIND_SPECIFIC, true)), 0);
        assert_int_equal(commit_free(s, message(3, "k7p29xq4", CODE_KIND_SPECIFIC, false)), 0);
        c = list(s, f, &n); /* what `alcode latest` prints */
        assert_int_equal(n, 1);
        assert_string_equal(c[0].value, "k7P29xq4");
        stored_codes_free(c, n);
        c = list(s, STORE_FILTER_ALL, &n);
        assert_int_equal(n, 1);
        stored_codes_free(c, n);
        assert_int_equal(query_int(path, "SELECT count(*) FROM sightings"), 3);
        store_close(s);
}

static Message *possible_at(uint32_t uid) {
        Message *m = calloc(1, sizeof(Message));
        assert_non_null(m);
        m->ref.uid = uid;
        m->ref.uidvalidity = 7;
        m->sender = strdup("notifications@mail.al-in.fr");
        m->subject = strdup("Votre espace AL'in");
        assert_true(asprintf(&m->message_id, "<%u@al-in.fr>", uid) > 0);
        m->date = 1772525640;
        m->date_tz = 60;
        assert_int_equal(message_add_code(m, &(Code) { .kind = CODE_KIND_POSSIBLE, .trusted = true,
                                                       .rule = (char *) "possible" }), 1);
        return m;
}

/* A possible code: one per message, no value ("value": null in JSON), counted apart, and
 * dismissed with forget. */
static void test_possible(void **state) {
        Store *s;
        StoredCode *c;
        size_t n, len = 0;
        uint64_t count, messages, codes;
        int64_t last;
        char *buf = NULL;
        FILE *out;
        StoreFilter f = { .kind = CODE_KIND_POSSIBLE };
        Message *m = possible_at(40);

        (void) state;
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "INBOX", m), 1);
        assert_int_equal(commit_one(s, "perso", "INBOX", m), 0); /* the same mail again */
        message_free(m);
        assert_int_equal(commit_free(s, possible_at(41)), 1);
        assert_int_equal(commit_free(s, message(42, "AB12CD34", CODE_KIND_SPECIFIC, true)), 1);
        assert_int_equal(store_count_possible(s, &count), 0);
        assert_int_equal(count, 2);
        assert_int_equal(store_account_stats(s, "perso", &messages, &codes, &last), 0);
        assert_int_equal(codes, 1);

        c = list(s, f, &n);
        assert_int_equal(n, 2);
        assert_null(c[0].value);
        assert_null(c[0].display);
        assert_int_equal(c[0].kind, CODE_KIND_POSSIBLE);
        assert_true(c[0].trusted);
        assert_string_equal(c[0].subject, "Votre espace AL'in");
        int64_t id = c[0].id;
        stored_codes_free(c, n);

        out = open_memstream(&buf, &len);
        f.id = id;
        assert_int_equal(store_write_json(s, &f, out), 1);
        fclose(out);
        assert_non_null(strstr(buf, "\"kind\":\"possible\""));
        assert_non_null(strstr(buf, "\"value\":null"));
        assert_null(strstr(buf, "\"display\""));
        assert_non_null(strstr(buf, "\"uid\":41"));
        free(buf);

        assert_int_equal(store_forget(s, id), 0);
        assert_int_equal(store_count_possible(s, &count), 0);
        assert_int_equal(count, 1);
        store_close(s);
}

/* A store written by the release that upper-cased values (tests/data/store/v1-mixed-case.sql,
 * written by that release's store-writer): each display is kept and the value takes its case
 * from it; identity stays caseless. */
static void test_migration_keeps_case(void **state) {
        char old[300];
        _cleanup_free_ char *sql = read_file(TEST_DATA_DIR "/store/v1-mixed-case.sql");
        Store *s;
        StoredCode *c;
        size_t n;
        const char *want[][2] = {
                { "specific", "k7p29xq4" }, { "access", "aB3d9F7q" }, { "company", "12345678901234" },
                { "file", "LP20260087412" },
        };

        (void) state;
        (void) snprintf(old, sizeof old, "%s/t%d", dir, counter);
        assert_int_equal(mkdir(old, 0700), 0);
        (void) snprintf(old, sizeof old, "%s/t%d/v1case.db", dir, counter);
        exec_sql(old, sql);
        assert_int_equal(store_open(old, STORE_READ_WRITE, &s, NULL), 0);
        c = list(s, STORE_FILTER_ALL, &n);
        assert_int_equal(n, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                size_t k;
                for (k = 0; k < n; k++)
                        if (streq(code_kind_to_string(c[k].kind), want[i][0]))
                                break;
                assert_true(k < n);
                assert_string_equal(c[k].value, want[i][1]);
        }
        for (size_t k = 0; k < n; k++)
                if (c[k].kind == CODE_KIND_SPECIFIC)
                        assert_string_equal(c[k].display, "k7p2-9xq4");
        stored_codes_free(c, n);
        /* The same code in capitals is still the one stored. */
        Message *m = message(99, "K7P29XQ4", CODE_KIND_SPECIFIC, true);
        StoreBatch b = { .account = "perso", .folder = "INBOX", .uidvalidity = 7, .last_uid = 99,
                         .move_cursor = true, .messages = &m, .n_messages = 1 };
        StoredCode *fresh = NULL;
        size_t n_fresh = 0;
        assert_int_equal(store_commit(s, &b, &fresh, &n_fresh), 0);
        assert_int_equal(n_fresh, 0);
        message_free(m);
        store_close(s);
}

static void test_refused(void **state) {
        Store *s = NULL;
        char other[300], *error = NULL;
        struct stat before, after;
        int fd;

        (void) state;
        s = open_rw();
        store_close(s);

        /* Newer than this program: refused by readers and writers, with a reason. */
        exec_sql(path, "PRAGMA user_version = 999");
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, &error), -EPROTO);
        assert_non_null(strstr(error, "newer"));
        free(error);
        assert_int_equal(store_open(path, STORE_READ_WRITE, &s, NULL), -EPROTO);
        assert_int_equal(query_int(path, "PRAGMA user_version"), 999);

        /* Some other program's database is not touched. */
        (void) snprintf(other, sizeof other, "%s/t%d/other.db", dir, counter);
        exec_sql(other, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep me')");
        assert_int_equal(store_open(other, STORE_READ_ONLY, &s, &error), -EBADMSG);
        assert_non_null(strstr(error, "not an alcode database"));
        free(error);
        assert_int_equal(store_open(other, STORE_READ_WRITE, &s, NULL), -EBADMSG);
        assert_int_equal(query_int(other, "SELECT count(*) FROM sqlite_schema"), 1);
        exec_sql(other, "PRAGMA application_id = 1234; DROP TABLE notes");
        assert_int_equal(store_open(other, STORE_READ_WRITE, &s, NULL), -EBADMSG);

        /* Not a database at all: refused, and not overwritten. */
        (void) snprintf(other, sizeof other, "%s/t%d/garbage.db", dir, counter);
        fd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        for (int i = 0; i < 256; i++)
                assert_int_equal(write(fd, "this is not SQLite at all, just text\n", 37), 37);
        close(fd);
        assert_int_equal(stat(other, &before), 0);
        assert_int_equal(store_open(other, STORE_READ_ONLY, &s, &error), -EBADMSG);
        assert_non_null(error);
        free(error);
        assert_int_equal(store_open(other, STORE_READ_WRITE, &s, NULL), -EBADMSG);
        assert_int_equal(stat(other, &after), 0);
        assert_int_equal(before.st_size, after.st_size);
        assert_int_equal(before.st_mtime, after.st_mtime);
}

static void test_damaged(void **state) {
        Store *s;
        Message *batch[200];
        char value[32];
        StoreBatch b = { .account = "perso", .folder = "INBOX", .uidvalidity = 7, .move_cursor = true,
                         .messages = batch, .n_messages = ELEMENTSOF(batch) };
        StoredCode *c = NULL;
        size_t n = 0;
        struct stat st;

        (void) state;
        s = open_rw();
        for (size_t i = 0; i < ELEMENTSOF(batch); i++) {
                (void) snprintf(value, sizeof value, "X%07zu", i);
                batch[i] = message((uint32_t) i + 1, value, CODE_KIND_FILE, true);
        }
        b.last_uid = ELEMENTSOF(batch);
        assert_int_equal(store_commit(s, &b, NULL, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(batch); i++)
                message_free(batch[i]);
        store_close(s);

        /* Cut in the middle: the header still opens, the rows are gone: an error, never an
         * empty list. */
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > 8 * 4096);
        assert_int_equal(truncate(path, st.st_size / 2), 0);
        if (store_open(path, STORE_READ_ONLY, &s, NULL) == 0) {
                assert_int_equal(store_list(s, &STORE_FILTER_ALL, &c, &n), -EBADMSG);
                store_close(s);
        }
}

static void test_locked(void **state) {
        Store *s;
        sqlite3 *db = NULL;

        (void) state;
        s = open_rw();
        store_close(s);

        /* Another program holds the file in exclusive mode: a clear "busy", after the wait. */
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE", NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), -EBUSY);
        sqlite3_close(db);
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), 0);
        store_close(s);
}

/* Another writer holds the lock: the commit fails with -EBUSY, changes nothing, and the same
 * batch committed once the lock is gone is stored whole and visible to other readers. */
static void test_busy_then_retry(void **state) {
        Store *s;
        sqlite3 *db = NULL;
        Message *m = message(5, "BUSY5555", CODE_KIND_SPECIFIC, true);

        (void) state;
        s = open_rw();
        store_set_busy_timeout(s, 50);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(commit_one(s, "perso", "INBOX", m), -EBUSY);
        assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);

        assert_int_equal(commit_one(s, "perso", "INBOX", m), 1);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes WHERE value = 'BUSY5555'"), 1);
        assert_int_equal(query_int(path, "SELECT last_uid FROM cursors WHERE folder = 'INBOX'"), 5);
        message_free(m);
        store_close(s);
}

/* While the daemon's connection is open, another program's read-write connection comes and goes
 * (sqlite3, a backup tool, `alcode forget`): it must not find itself the last one and delete the
 * WAL, or every later commit of the daemon goes to a deleted file and is lost. */
static void test_other_connection_closing(void **state) {
        Store *s;
        Message *m1 = message(1, "WAL11111", CODE_KIND_SPECIFIC, true);
        Message *m2 = message(2, "WAL22222", CODE_KIND_FILE, true);
        char wal[300];
        int status;
        pid_t pid;

        (void) state;
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "INBOX", m1), 1);
        /* Another program (a fresh one: a forked child would inherit SQLite's in-memory lock
         * bookkeeping and not be fooled). */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                (void) dup2(null, STDOUT_FILENO);
                execlp("sqlite3", "sqlite3", path, "SELECT count(*) FROM codes", (char *) NULL);
                _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        (void) snprintf(wal, sizeof wal, "%s-wal", path);
        assert_int_equal(access(wal, F_OK), 0);

        assert_int_equal(commit_one(s, "perso", "INBOX", m2), 1);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes"), 2);
        message_free(m1);
        message_free(m2);
        store_close(s);
        assert_int_equal(query_int(path, "SELECT count(*) FROM codes"), 2);
}

/* Root reads and writes whatever the modes say: drop the capabilities that let it. */
static int drop_dac_override(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};

        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        for (int cap = CAP_DAC_OVERRIDE; cap <= CAP_DAC_READ_SEARCH; cap++)
                d[cap / 32].effective &= ~(1U << (cap % 32));
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static void test_read_only_folder(void **state) {
        Store *s;
        char sub[300];
        Message *m = message(1, "AB12CD34", CODE_KIND_SPECIFIC, true);
        int status;
        pid_t pid;

        (void) state;
        s = open_rw();
        assert_int_equal(commit_one(s, "perso", "INBOX", m), 1);
        store_close(s); /* the last connection removes -wal and -shm */
        message_free(m);
        (void) snprintf(sub, sizeof sub, "%s/t%d", dir, counter);
        assert_int_equal(chmod(path, 0400), 0);
        assert_int_equal(chmod(sub, 0500), 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                StoredCode *c = NULL;
                size_t n = 0;
                int r;

                if (drop_dac_override() < 0)
                        _exit(2);
                /* A reader still reads it (opened immutable: nobody can be writing it)... */
                if (store_open(path, STORE_READ_ONLY, &s, NULL) < 0)
                        _exit(3);
                if (store_list(s, &STORE_FILTER_ALL, &c, &n) < 0 || n != 1)
                        _exit(4);
                stored_codes_free(c, n);
                store_close(s);
                /* ...and a writer says why it cannot. */
                r = store_open(path, STORE_READ_WRITE, &s, NULL);
                _exit(r == -EACCES || r == -EROFS ? 0 : 5);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(chmod(sub, 0700), 0);
        assert_int_equal(chmod(path, 0600), 0);
}

/* A writer commits as fast as it can while readers open, list and close: no reader ever fails
 * or sees fewer codes than before, and no commit ever waits for a reader. */
static void test_concurrent(void **state) {
        Store *s;
        int status, reads = 0;
        size_t last = 0;
        pid_t pid;

        (void) state;
        s = open_rw();
        store_close(s);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                Store *w = NULL;
                char value[32];
                if (store_open(path, STORE_READ_WRITE, &w, NULL) < 0)
                        _exit(3);
                for (unsigned i = 0; i < 400; i++) {
                        Message *m;
                        (void) snprintf(value, sizeof value, "C%07u", i);
                        m = message_at(i + 1, value, i % 2 ? CODE_KIND_SPECIFIC : CODE_KIND_FILE, true,
                                       1772525640 + i);
                        if (commit_one(w, "perso", "INBOX", m) != 1)
                                _exit(4);
                        message_free(m);
                }
                store_close(w);
                _exit(0);
        }
        for (;;) {
                StoredCode *c = NULL;
                size_t n = 0;
                bool done = waitpid(pid, &status, WNOHANG) == pid;

                assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), 0);
                assert_int_equal(store_list(s, &STORE_FILTER_ALL, &c, &n), 0);
                assert_true(n >= last);
                last = n;
                stored_codes_free(c, n);
                store_close(s);
                reads++;
                if (done)
                        break;
        }
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(last, 400);
        assert_true(reads > 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup(test_modes, fresh_path),
                cmocka_unit_test_setup(test_idempotence, fresh_path),
#ifdef ALCODE_TEST_HOOKS
                cmocka_unit_test_setup(test_cursor_failure_injected, fresh_path),
                cmocka_unit_test_setup(test_cursor_crash_injected, fresh_path),
#endif
                cmocka_unit_test_setup(test_untrusted_then_trusted, fresh_path),
                cmocka_unit_test_setup(test_otp_lifecycle, fresh_path),
                cmocka_unit_test_setup(test_supersede, fresh_path),
                cmocka_unit_test_setup(test_earliest_sighting, fresh_path),
                cmocka_unit_test_setup(test_json, fresh_path),
                cmocka_unit_test_setup(test_migrations, fresh_path),
                cmocka_unit_test_setup(test_migration_keeps_case, fresh_path),
                cmocka_unit_test_setup(test_case_kept, fresh_path),
                cmocka_unit_test_setup(test_possible, fresh_path),
                cmocka_unit_test_setup(test_refused, fresh_path),
                cmocka_unit_test_setup(test_damaged, fresh_path),
                cmocka_unit_test_setup(test_locked, fresh_path),
                cmocka_unit_test_setup(test_busy_then_retry, fresh_path),
                cmocka_unit_test_setup(test_other_connection_closing, fresh_path),
                cmocka_unit_test_setup(test_read_only_folder, fresh_path),
                cmocka_unit_test_setup(test_concurrent, fresh_path),
        };
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
