/* store.c on a real SQLite file in a temporary folder: modes, idempotence, cursor moving with
 * its codes, trust upgrades, JSON Lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/stat.h>

#include "store.h"

static char dir[] = "/tmp/alcode-test-store-XXXXXX";
static char path[256];

static int setup(void **state) {
        (void) state;
        if (!mkdtemp(dir))
                return -1;
        (void) snprintf(path, sizeof path, "%s/sub/alcode.db", dir);
        return 0;
}

static int teardown(void **state) {
        char cmd[512];
        (void) state;
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static Message *message(uint32_t uid, const char *value, CodeKind kind, bool trusted) {
        Message *m = calloc(1, sizeof(Message));
        assert_non_null(m);
        m->ref.uid = uid;
        m->ref.uidvalidity = 7;
        m->sender = strdup("ne-pas-repondre@actionlogement.fr");
        m->subject = strdup("Votre code");
        m->message_id = strdup("<x@actionlogement.fr>");
        m->date = 1772525640; /* 2026-03-03T08:14:00Z */
        m->date_tz = 60;
        assert_int_equal(message_add_code(m, &(Code) { .kind = kind, .value = (char *) value,
                                                       .display = (char *) value, .trusted = trusted,
                                                       .rule = (char *) "r@1" }), 1);
        return m;
}

static void test_modes_and_idempotence(void **state) {
        Store *s = NULL;
        struct stat st;
        StoredCode *fresh = NULL;
        size_t n_fresh = 0;
        uint32_t uidvalidity, last;
        Message *m1 = message(10, "AB12CD34", CODE_KIND_SPECIFIC, true);
        Message *batch[] = { m1 };
        StoreBatch b = { .account = "perso", .folder = "INBOX", .uidvalidity = 7, .last_uid = 10,
                         .move_cursor = true, .messages_seen = 3, .messages = batch, .n_messages = 1 };

        (void) state;
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), -ENOENT);
        assert_int_equal(store_open(path, STORE_READ_WRITE, &s, NULL), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(store_get_cursor(s, "perso", "INBOX", &uidvalidity, &last, NULL), -ENOENT);

        assert_int_equal(store_commit(s, &b, &fresh, &n_fresh), 0);
        assert_int_equal(n_fresh, 1);
        assert_string_equal(fresh[0].value, "AB12CD34");
        stored_codes_free(fresh, n_fresh);
        assert_int_equal(store_get_cursor(s, "perso", "INBOX", &uidvalidity, &last, NULL), 0);
        assert_int_equal(uidvalidity, 7);
        assert_int_equal(last, 10);

        /* The same message again, and a copy in another folder: nothing new. */
        assert_int_equal(store_commit(s, &b, &fresh, &n_fresh), 0);
        assert_int_equal(n_fresh, 0);
        free(fresh);
        b.folder = "Archives";
        m1->ref.uid = 99;
        assert_int_equal(store_commit(s, &b, &fresh, &n_fresh), 0);
        assert_int_equal(n_fresh, 0);
        free(fresh);

        StoredCode *list = NULL;
        size_t n = 0;
        assert_int_equal(store_list(s, &STORE_FILTER_ALL, &list, &n), 0);
        assert_int_equal(n, 1);
        stored_codes_free(list, n);
        message_free(m1);
        store_close(s);

        assert_int_equal(stat(dir, &st), 0);
        char sub[300];
        (void) snprintf(sub, sizeof sub, "%s/sub", dir);
        assert_int_equal(stat(sub, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_untrusted_then_trusted(void **state) {
        Store *s = NULL;
        StoredCode *fresh = NULL;
        size_t n_fresh = 0;
        Message *bad = message(20, "ZZ99YY88", CODE_KIND_SPECIFIC, false);
        Message *good = message(21, "ZZ99YY88", CODE_KIND_SPECIFIC, true);
        StoreBatch b = { .account = "perso", .folder = "Junk", .uidvalidity = 7, .last_uid = 20,
                         .move_cursor = true, .messages = &bad, .n_messages = 1 };

        (void) state;
        assert_int_equal(store_open(path, STORE_READ_WRITE, &s, NULL), 0);
        assert_int_equal(store_commit(s, &b, &fresh, &n_fresh), 0);
        assert_int_equal(n_fresh, 1);
        assert_false(fresh[0].trusted);
        stored_codes_free(fresh, n_fresh);

        b.messages = &good;
        b.last_uid = 21;
        assert_int_equal(store_commit(s, &b, &fresh, &n_fresh), 0);
        assert_int_equal(n_fresh, 1); /* now from a trusted sender: worth telling */
        assert_true(fresh[0].trusted);
        stored_codes_free(fresh, n_fresh);

        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *list = NULL;
        size_t n = 0;
        f.untrusted_only = true;
        assert_int_equal(store_list(s, &f, &list, &n), 0);
        assert_int_equal(n, 0);
        free(list);
        message_free(bad);
        message_free(good);
        store_close(s);
}

static void test_json(void **state) {
        Store *s = NULL;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        (void) state;
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), 0);
        f = open_memstream(&buf, &len);
        StoreFilter flt = STORE_FILTER_ALL;
        flt.kind = CODE_KIND_SPECIFIC;
        flt.limit = 1;
        assert_int_equal(store_write_json(s, &flt, f), 1);
        fclose(f);
        assert_non_null(strstr(buf, "\"kind\":\"specific\""));
        assert_non_null(strstr(buf, "\"trusted\":true"));
        assert_non_null(strstr(buf, "\"date\":\"2026-03-03T09:14:00+01:00\""));
        assert_non_null(strstr(buf, "\"account\":\"perso\""));
        assert_null(strstr(buf, "\"source\""));
        assert_null(strstr(buf, "null"));
        assert_int_equal(buf[len - 1], '\n');
        free(buf);
        /* Read-only handles refuse writes. */
        assert_int_equal(store_forget(s, 1), -EROFS);
        store_close(s);
}

static void test_newer_schema_refused(void **state) {
        Store *s = NULL;
        char cmd[600];

        (void) state;
        (void) snprintf(cmd, sizeof cmd, "sqlite3 '%s' 'PRAGMA user_version = 999' 2>/dev/null", path);
        if (system(cmd) != 0)
                skip();
        assert_int_equal(store_open(path, STORE_READ_ONLY, &s, NULL), -EPROTO);
        assert_int_equal(store_open(path, STORE_READ_WRITE, &s, NULL), -EPROTO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_modes_and_idempotence),
                cmocka_unit_test(test_untrusted_then_trusted),
                cmocka_unit_test(test_json),
                cmocka_unit_test(test_newer_schema_refused),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
