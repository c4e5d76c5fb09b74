/* fs-util.c: the user's folders (user_path(), path_expand()) as alcode.conf, the store and
 * the rules find them: $XDG_* when absolute, else under $HOME; mkdir_parents(). */
#include <sys/stat.h>

#include "test-util.h"

#include "fs-util.h"
#include "macro.h"

static void expect(UserDir dir, const char *suffix, const char *want) {
        _cleanup_free_ char *p = NULL;

        assert_int_equal(user_path(dir, suffix, &p), 0);
        assert_string_equal(p, want);
}

static void expect_expand(const char *in, const char *want) {
        _cleanup_free_ char *p = NULL;

        print_message("'%s'\n", in);
        assert_int_equal(path_expand(in, &p), 0);
        assert_string_equal(p, want);
}

static void test_user_path(void **state) {
        (void) state;
        assert_int_equal(setenv("HOME", "/home/jeanne", 1), 0);
        assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
        assert_int_equal(unsetenv("XDG_DATA_HOME"), 0);
        expect(USER_DIR_CONFIG, "alcode/alcode.conf", "/home/jeanne/.config/alcode/alcode.conf");
        expect(USER_DIR_DATA, "alcode/alcode.db", "/home/jeanne/.local/share/alcode/alcode.db");
        expect(USER_DIR_HOME, NULL, "/home/jeanne");

        assert_int_equal(setenv("XDG_CONFIG_HOME", "/srv/conf", 1), 0);
        assert_int_equal(setenv("XDG_DATA_HOME", "/srv/data", 1), 0);
        expect(USER_DIR_CONFIG, "alcode/rules.d", "/srv/conf/alcode/rules.d");
        expect(USER_DIR_DATA, "alcode/alcode.db", "/srv/data/alcode/alcode.db");

        /* The XDG base directory spec: a relative value is ignored. */
        assert_int_equal(setenv("XDG_CONFIG_HOME", "relative/conf", 1), 0);
        assert_int_equal(setenv("XDG_DATA_HOME", "", 1), 0);
        expect(USER_DIR_CONFIG, "alcode/alcode.conf", "/home/jeanne/.config/alcode/alcode.conf");
        expect(USER_DIR_DATA, "alcode/alcode.db", "/home/jeanne/.local/share/alcode/alcode.db");
}

static void test_path_expand(void **state) {
        (void) state;
        assert_int_equal(setenv("HOME", "/home/jeanne", 1), 0);
        assert_int_equal(setenv("XDG_CONFIG_HOME", "/srv/conf", 1), 0);
        assert_int_equal(unsetenv("XDG_DATA_HOME"), 0);
        expect_expand("~/mail/ca.pem", "/home/jeanne/mail/ca.pem");
        expect_expand("~", "/home/jeanne");
        expect_expand("$HOME/x", "/home/jeanne/x");
        expect_expand("$XDG_CONFIG_HOME/alcode/rules.d", "/srv/conf/alcode/rules.d");
        expect_expand("$XDG_DATA_HOME/alcode/alcode.db", "/home/jeanne/.local/share/alcode/alcode.db");
        /* Only a whole leading name is expanded. */
        expect_expand("~jeanne/x", "~jeanne/x");
        expect_expand("$HOMEX/y", "$HOMEX/y");
        expect_expand("/etc/ssl/$HOME", "/etc/ssl/$HOME");
        expect_expand("relative", "relative");
}

static void test_mkdir_parents(void **state) {
        char dir[] = "/tmp/alcode-test-fs-util-XXXXXX";
        _cleanup_free_ char *path = NULL, *inner = NULL, *cmd = NULL;
        struct stat st;

        (void) state;
        assert_non_null(mkdtemp(dir));
        assert_true(asprintf(&path, "%s/a/b/alcode.db", dir) > 0);
        assert_true(asprintf(&inner, "%s/a/b", dir) > 0);
        assert_int_equal(mkdir_parents(path, 0700), 0);
        assert_int_equal(stat(inner, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0700);
        assert_int_equal(mkdir_parents(path, 0700), 0); /* again: already there */
        assert_true(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_user_path),
                cmocka_unit_test(test_path_expand),
                cmocka_unit_test(test_mkdir_parents),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
