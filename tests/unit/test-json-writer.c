/* json-writer.c: strings escaped as SQLite's json_quote() escapes them (SQLite is the oracle:
 * the store's JSON and scan's JSON must read the same), the terminal controls SQLite leaves
 * raw written as \uXXXX, bytes that are not UTF-8 passed through, objects, and write errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test-util.h"
#include <sqlite3.h>

#include "json-writer.h"

/* What json_write_string() writes for s. */
static char *quoted(const char *s) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_non_null(f);
        assert_int_equal(json_write_string(f, s), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

/* What SQLite's json_quote() makes of s. */
static char *sqlite_quoted(sqlite3 *db, const char *s) {
        sqlite3_stmt *st = NULL;
        char *r;

        assert_int_equal(sqlite3_prepare_v2(db, "SELECT json_quote(?1)", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_bind_text(st, 1, s, -1, SQLITE_STATIC), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        r = strdup((const char *) sqlite3_column_text(st, 0));
        assert_non_null(r);
        sqlite3_finalize(st);
        return r;
}

static void assert_quoted(const char *s, const char *expected) {
        char *q = quoted(s);
        assert_string_equal(q, expected);
        free(q);
}

/* Every byte but DEL alone, ASCII text, quotes, backslashes and bytes that are not UTF-8:
 * the very bytes SQLite writes. */
static void test_same_as_sqlite(void **state) {
        static const char *const texts[] = {
                "", ("Votre code sp\xc3\xa9" "cifique"), "a\"b\\c/d", "tab\there\r\nnext\f\b", "\x01\x1f",
                "\xff\xfe not UTF-8 \xc3", "\xc3(", "\xe2\x82", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        };
        sqlite3 *db = NULL;
        (void) state;

        assert_int_equal(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL), SQLITE_OK);
        for (unsigned c = 1; c < 256; c++) {
                char s[2] = { (char) c, 0 };
                char *mine, *theirs;
                if (c == 0x7f)
                        continue; /* below: SQLite leaves DEL raw */
                mine = quoted(s);
                theirs = sqlite_quoted(db, s);
                assert_string_equal(mine, theirs);
                free(mine);
                free(theirs);
        }
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                char *mine = quoted(texts[i]), *theirs = sqlite_quoted(db, texts[i]);
                assert_string_equal(mine, theirs);
                free(mine);
                free(theirs);
        }
        sqlite3_close(db);
}

/* What a terminal would act on and SQLite passes through. */
static void test_terminal_controls(void **state) {
        (void) state;
        assert_quoted("\x1b[2J", "\"\\u001b[2J\"");
        assert_quoted("a\x7f" "b", "\"a\\u007fb\"");
        assert_quoted("\xc2\x9b" "31m", "\"\\u009b31m\"");                  /* C1 CSI */
        assert_quoted("\xc2\xa0", "\"\xc2\xa0\"");                           /* NBSP is text */
        assert_quoted("\xe2\x80\xae" "evil", "\"\\u202eevil\"");           /* RLO */
        assert_quoted("\xe2\x81\xa6", "\"\\u2066\"");                        /* LRI */
        assert_quoted("\xd8\x9c", "\"\\u061c\"");                            /* ALM */
        assert_quoted("\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\"");
        assert_quoted("\xef\xbb\xbf", "\"\\ufeff\"");                        /* BOM */
        assert_quoted("\xe2\x80\x8e", "\"\\u200e\"");                        /* LRM */
        /* A control cut short at the end is not one: its bytes go through. */
        assert_quoted("\xe2\x80", "\"\xe2\x80\"");
}

static void test_object(void **state) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        JsonWriter w;
        (void) state;

        assert_non_null(f);
        json_writer_begin(&w, f);
        json_writer_string(&w, "account", "perso");
        json_writer_string(&w, "error", NULL);
        json_writer_null(&w, "last_sync");
        json_writer_bool(&w, "trusted", true);
        json_writer_bool(&w, "expired", false);
        json_writer_int(&w, "min", INT64_MIN);
        json_writer_uint(&w, "max", UINT64_MAX);
        json_writer_string(&w, "k\"ey", "v");
        assert_int_equal(json_writer_end(&w), 0);
        json_writer_begin(&w, f);
        assert_int_equal(json_writer_end(&w), 0);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(buf, "{\"account\":\"perso\",\"error\":null,\"last_sync\":null,\"trusted\":true,"
                                 "\"expired\":false,\"min\":-9223372036854775808,"
                                 "\"max\":18446744073709551615,\"k\\\"ey\":\"v\"}\n{}\n");
        free(buf);
}

/* A stream that cannot be written: the first error comes back from json_writer_end(). */
static void test_write_error(void **state) {
        FILE *f = fopen("/dev/null", "re");
        JsonWriter w;
        (void) state;

        assert_non_null(f);
        json_writer_begin(&w, f);
        json_writer_string(&w, "a", "b\x1b");
        json_writer_uint(&w, "n", 1);
        assert_int_equal(json_writer_end(&w), -EBADF);
        assert_int_equal(json_write_string(f, "x"), -EBADF);
        fclose(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_same_as_sqlite),
                cmocka_unit_test(test_terminal_controls),
                cmocka_unit_test(test_object),
                cmocka_unit_test(test_write_error),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
