/* config_user_addresses(): the user names of the accounts that are addresses, in config order,
 * read from a configuration file as alcoded and `alcode scan` read it. */
#include <stdio.h>
#include <sys/stat.h>

#include "test-util.h"

#include "config.h"
#include "strv.h"

static Config *load(const char *text) {
        char dir[] = "/tmp/alcode-test-config-XXXXXX", path[64];
        char **errors = NULL;
        Config *c = NULL;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        (void) snprintf(path, sizeof path, "%s/alcode.conf", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(path, 0600), 0);
        assert_int_equal(config_load(path, &c, &errors), 0);
        assert_null(errors);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
        return c;
}

static void test_user_addresses(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **l = NULL;

        (void) state;
        c = load("[account perso]\nhost = imap.example.org\nuser = jeanne@example.org\npassword = x\n"
                 "[account work]\nhost = imap.example.com\nuser = jdupont\npassword = x\n"
                 "[account other]\nhost = imap.example.net\nuser = j.dupont@example.net\npassword = x\n");
        assert_int_equal(config_user_addresses(c, &l), 0);
        assert_int_equal(strv_length(l), 2);
        assert_string_equal(l[0], "jeanne@example.org");
        assert_string_equal(l[1], "j.dupont@example.net");
}

static void test_no_address(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        char **l = NULL;

        (void) state;
        c = load("[account work]\nhost = imap.example.com\nuser = jdupont\npassword = x\n");
        assert_int_equal(config_user_addresses(c, &l), 0);
        assert_null(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_user_addresses),
                cmocka_unit_test(test_no_address),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
