/* Helpers shared by the unit tests (header-only: each test is one executable). */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Skips are visible. cmocka's exit status counts failures only, so a test that called skip()
 * passed as far as ctest could tell: here the executable exits 77 (ctest's SKIP_RETURN_CODE,
 * shown as "Skipped") when a test skipped and none failed, and 1 under CI=true, where no test
 * may skip. Every unit test includes this header, so plain skip() and
 * cmocka_run_group_tests() get this behaviour. */
static bool test_util_skipped = false;

#undef skip
#define skip()                                  \
        do {                                    \
                test_util_skipped = true;       \
                _skip(__FILE__, __LINE__);      \
        } while (0)

static inline int test_util_exit_status(int failed) {
        const char *ci = getenv("CI");

        if (failed != 0)
                return 1;
        if (!test_util_skipped)
                return 0;
        if (ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0 || strcmp(ci, "yes") == 0)) {
                fprintf(stderr, "FAIL: a test skipped, and CI forbids skipping\n");
                return 1;
        }
        fprintf(stderr, "SKIPPED: at least one test skipped (exit status 77)\n");
        return 77;
}

#undef cmocka_run_group_tests
#define cmocka_run_group_tests(group_tests, group_setup, group_teardown)                               \
        test_util_exit_status(_cmocka_run_group_tests(#group_tests, group_tests,                       \
                                                      sizeof(group_tests) / sizeof((group_tests)[0]), \
                                                      group_setup, group_teardown))

/* Reads tests/data/name whole; aborts the test when it cannot. */
static inline char *test_read_data(const char *name, size_t *ret_len) {
        char *path = NULL;
        FILE *f;
        char *buf;
        long n;

        /* The source tree may be anywhere, at any depth: no fixed-size buffer for its path. */
        assert_true(asprintf(&path, "%s/%s", TEST_DATA_DIR, name) > 0);
        f = fopen(path, "re");
        free(path);
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        buf = malloc((size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
        buf[n] = 0;
        fclose(f);
        *ret_len = (size_t) n;
        return buf;
}

/* A copy of the first n bytes in a buffer of exactly n bytes, so that AddressSanitizer sees
 * any read past the end. */
static inline char *test_exact_copy(const char *s, size_t n) {
        char *c = malloc(n ? n : 1);
        assert_non_null(c);
        memcpy(c, s, n);
        return c;
}

/* Whether s[0..n) is valid UTF-8 without NUL bytes. */
static inline bool test_valid_utf8(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;
        for (size_t i = 0; i < n;) {
                unsigned c = p[i], len, cp;
                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xE0) == 0xC0)
                        len = 2, cp = c & 0x1F;
                else if ((c & 0xF0) == 0xE0)
                        len = 3, cp = c & 0x0F;
                else if ((c & 0xF8) == 0xF0)
                        len = 4, cp = c & 0x07;
                else
                        return false;
                if (i + len > n)
                        return false;
                for (unsigned k = 1; k < len; k++) {
                        if ((p[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3F);
                }
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
                    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += len;
        }
        return true;
}

/* A private folder for one test executable: DEFINE_TEST_TMPDIR(dir) with dir a char array
 * holding "/tmp/alcode-test-NAME-XXXXXX" defines tmpdir_setup(), which makes it (mkdtemp()
 * changes dir in place), and tmpdir_teardown(), which removes it whole, even folders a test made
 * read-only: cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown). */
static inline int test_tmpdir_remove(const char *dir) {
        char *cmd = NULL;
        int r;

        if (asprintf(&cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", dir, dir) < 0)
                return -1;
        r = system(cmd);
        free(cmd);
        return r == 0 ? 0 : -1;
}

#define DEFINE_TEST_TMPDIR(dir)                                 \
        static int tmpdir_setup(void **state) {                 \
                (void) state;                                   \
                return mkdtemp(dir) ? 0 : -1;                   \
        }                                                       \
        static int tmpdir_teardown(void **state) {              \
                (void) state;                                   \
                return test_tmpdir_remove(dir);                 \
        }

/* Writes text to dir/name (dir is made if missing, one level) and returns the path (free it). */
static inline char *test_write_file(const char *dir, const char *name, const char *text) {
        char *path = NULL;
        FILE *f;

        (void) mkdir(dir, 0755);
        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
        return path;
}
