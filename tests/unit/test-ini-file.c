/* ini-file.c: what the handler sees (section, key, value, continuation, line, column) and the
 * errors it reports, every one with its line, on files written to a temporary folder. */
#include <unistd.h>

#include "test-util.h"

#include "ini-file.h"
#include "macro.h"
#include "strbuf.h"
#include "strv.h"

static char dir[] = "/tmp/alcode-test-ini-XXXXXX";

DEFINE_TEST_TMPDIR(dir)

/* Records every call as "line:column [section] key=value" (+ for a continuation). */
static int record(IniFile *f, const char *section, const char *key, const char *value, bool continuation,
                  void *userdata) {
        StrBuf *b = userdata;
        if (streq(key, "fail"))
                return ini_file_error(f, ini_file_value_column(f), "bad value '%s'", value) < 0 ? -ENOMEM : 0;
        if (streq(key, "stop"))
                return -ECANCELED;
        return strbuf_printf(b, "%u:%u [%s] %s%s%s\n", ini_file_line(f), ini_file_value_column(f), section, key,
                             continuation ? "+=" : "=", value) < 0 ? -ENOMEM : 0;
}

static void test_parse(void **state) {
        static const struct {
                const char *text, *calls, *errors;
                int r;
        } cases[] = {
                { "a = 1\n[s]\nb=two words\n", "1:5 [] a=1\n3:3 [s] b=two words\n", "", 0 },
                /* Comments: ';' or '#' first, or ';' after a blank. */
                { "; c\n# c\n[s]\nk = v ; comment\nx = a;b\n", "4:5 [s] k=v\n5:5 [s] x=a;b\n", "", 0 },
                /* A value continues on indented lines. */
                { "[s]\nk = (a|\n    b)\nn = 1\n", "2:5 [s] k=(a|\n3:5 [s] k+=b)\n4:5 [s] n=1\n", "", 0 },
                /* Every malformed line is reported, not only the first. */
                { "[s\nk = 1\nnonsense\nalso nonsense\nm = 2\n", "2:5 [] k=1\n5:5 [] m=2\n",
                  "X:1: unterminated section header\nX:3: expected 'key = value' or '[section]'\n"
                  "X:4: expected 'key = value' or '[section]'\n", 0 },
                /* Handler errors name line and column. */
                { "[s]\n\nfail =  oops\n", "", "X:3:9: bad value 'oops'\n", 0 },
                /* A handler may stop the parse. */
                { "a=1\nstop=1\nb=2\n", "1:3 [] a=1\n", "", -ECANCELED },
                { "", "", "", 0 },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = test_write_file(dir, "t.ini", cases[i].text);
                _cleanup_strv_free_ char **errors = NULL;
                StrBuf calls = STRBUF_INIT(0), errs = STRBUF_INIT(0);
                int r = ini_file_parse(path, record, &calls, &errors);

                assert_int_equal(r, cases[i].r);
                STRV_FOREACH(e, errors) {
                        const char *rest = startswith(*e, path);
                        /* An if, not assert_non_null(): the compiler then knows that printf
                         * never gets NULL (Release builds warned with -Wformat-overflow). */
                        if (!rest)
                                fail_msg("case %zu: error not naming the file: %s", i, *e);
                        else
                                assert_int_equal(strbuf_printf(&errs, "X%s\n", rest), 0);
                }
                assert_int_equal(strbuf_ensure(&calls), 0);
                assert_int_equal(strbuf_ensure(&errs), 0);
                if (!streq(calls.data, cases[i].calls) || !streq(errs.data, cases[i].errors))
                        fail_msg("case %zu:\ncalls:\n%s\nerrors:\n%s", i, calls.data, errs.data);
                strbuf_done(&calls);
                strbuf_done(&errs);
        }
}

static void test_long_line(void **state) {
        _cleanup_free_ char *text = NULL, *path = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        StrBuf calls = STRBUF_INIT(0);

        (void) state;
        /* Longer than inih's line buffer: an error for that line, the next lines still read. */
        assert_true(asprintf(&text, "[s]\nk = %0*d\nn = 1\n", INI_FILE_MAX_LINE + 10, 7) > 0);
        path = test_write_file(dir, "long.ini", text);
        assert_int_equal(ini_file_parse(path, record, &calls, &errors), 0);
        assert_int_equal(strv_length(errors), 1);
        assert_non_null(strstr(errors[0], ":2: line longer than"));
        assert_int_equal(strbuf_ensure(&calls), 0);
        assert_string_equal(calls.data, "3:5 [s] n=1\n");
        strbuf_done(&calls);
}

static void test_missing(void **state) {
        _cleanup_strv_free_ char **errors = NULL;
        StrBuf calls = STRBUF_INIT(0);

        (void) state;
        assert_int_equal(ini_file_parse("/nonexistent/alcode.ini", record, &calls, &errors), -ENOENT);
        assert_null(errors);
        strbuf_done(&calls);
}

/* A file of many broken lines: the first ones are reported, then one line says the rest is
 * not read (the list does not grow with the file). A NUL byte is named as such, at its column,
 * not taken for a long line. */
static void test_many_errors_and_nul(void **state) {
        _cleanup_strv_free_ char **errors = NULL, **errors2 = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL, *nul_path = NULL;
        StrBuf calls = STRBUF_INIT(0);
        size_t n = 0;
        FILE *f;

        (void) state;
        f = open_memstream(&text, &n);
        assert_non_null(f);
        for (unsigned i = 0; i < 100000; i++)
                fputs("nonsense\n", f);
        assert_int_equal(fclose(f), 0);
        path = test_write_file(dir, "many.ini", text);
        assert_int_equal(ini_file_parse(path, record, &calls, &errors), 0);
        assert_int_equal(strv_length(errors), INI_FILE_MAX_ERRORS);
        assert_non_null(strstr(errors[INI_FILE_MAX_ERRORS - 1], "the rest of the file is not read"));

        assert_true(asprintf(&nul_path, "%s/nul.ini", dir) > 0);
        f = fopen(nul_path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite("[s]\nk = ab\0cd\nm = 2\n", 1, 20, f), 20);
        assert_int_equal(fclose(f), 0);
        strbuf_done(&calls);
        assert_int_equal(ini_file_parse(nul_path, record, &calls, &errors2), 0);
        assert_int_equal(strv_length(errors2), 1);
        assert_true(endswith(errors2[0], ":2:7: NUL byte in the line"));
        assert_non_null(strstr(calls.data, "3:5 [s] m=2"));
        strbuf_done(&calls);

        /* An endless line (here endless NUL bytes) ends the reading instead of never ending. */
        {
                _cleanup_strv_free_ char **errors3 = NULL;
                assert_int_equal(ini_file_parse("/dev/zero", record, &calls, &errors3), 0);
                assert_true(strv_length(errors3) >= 1);
                assert_non_null(strstr(errors3[strv_length(errors3) - 1], "the rest of the file is not read"));
                strbuf_done(&calls);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_missing),
                cmocka_unit_test(test_many_errors_and_nul),
        };
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
