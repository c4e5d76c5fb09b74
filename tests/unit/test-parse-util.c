/* parse-util.c: the one boolean, port and domain parser that alcode.conf, the rule files and
 * `alcode init` share. Table-driven: what is accepted and what it becomes, what is refused. */
#include "test-util.h"

#include "macro.h"
#include "parse-util.h"

static void test_boolean(void **state) {
        static const struct { const char *in; int want; } rows[] = {
                { "yes", 1 }, { "YES", 1 }, { "true", 1 }, { "On", 1 }, { "1", 1 },
                { "no", 0 }, { "False", 0 }, { "off", 0 }, { "0", 0 },
                { "", -EINVAL }, { "y", -EINVAL }, { "2", -EINVAL }, { "yes ", -EINVAL },
                { "oui", -EINVAL }, { "01", -EINVAL },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                print_message("'%s'\n", rows[i].in);
                assert_int_equal(parse_boolean(rows[i].in), rows[i].want);
        }
}

static void test_unsigned_and_port(void **state) {
        static const struct { const char *in; int want; uint16_t port; } rows[] = {
                { "1", 0, 1 }, { "993", 0, 993 }, { "65535", 0, 65535 }, { "0143", 0, 143 },
                { "0", -EINVAL, 0 }, { "65536", -EINVAL, 0 }, { "-1", -EINVAL, 0 }, { "+993", -EINVAL, 0 },
                { " 993", -EINVAL, 0 }, { "993 ", -EINVAL, 0 }, { "0x3e1", -EINVAL, 0 }, { "", -EINVAL, 0 },
                { "99999999999999999999999", -EINVAL, 0 }, { "9a", -EINVAL, 0 },
        };
        unsigned u = 7;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                uint16_t p = 4242;
                print_message("'%s'\n", rows[i].in);
                assert_int_equal(parse_port(rows[i].in, &p), rows[i].want);
                assert_int_equal(p, rows[i].want == 0 ? rows[i].port : 4242); /* untouched on error */
        }
        assert_int_equal(parse_unsigned("64", 64, &u), 0);
        assert_int_equal(u, 64);
        assert_int_equal(parse_unsigned("65", 64, &u), -EINVAL);
        assert_int_equal(parse_unsigned("0", 64, &u), 0);
        assert_int_equal(u, 0);
}

static void test_domain(void **state) {
        static const struct { const char *in; const char *want; } ok[] = {
                { "actionlogement.fr", "actionlogement.fr" },
                { "Mail.ActionLogement.FR", "mail.actionlogement.fr" },
                { "al-in.fr", "al-in.fr" },
                { "3com.com", "3com.com" },
                { "a.b", "a.b" },
                /* IDNA2008: the U-label becomes its A-label; a valid A-label stays. */
                { "exämple.fr", "xn--exmple-cua.fr" },
                { "MENUISERIES-DURÂND.fr", "xn--menuiseries-durnd-3pb.fr" },
                { "xn--exmple-cua.fr", "xn--exmple-cua.fr" },
                { "XN--EXMPLE-CUA.FR", "xn--exmple-cua.fr" },
        };
        static const char *const bad[] = {
                "", "fr", "localhost", ".actionlogement.fr", "actionlogement.fr.", "action..logement.fr",
                "-al.fr", "al-.fr", "al.-fr", "al_in.fr", "al in.fr", "al\tin.fr", "al@in.fr", "al/in.fr",
                "a\r.fr", "xn--zzzzzzzzz-.fr", "xn--ab-.fr",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.fr", /* 64 */
        };
        char long_name[300];

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                _cleanup_free_ char *n = NULL;
                print_message("ok '%s'\n", ok[i].in);
                assert_int_equal(domain_normalize(ok[i].in, &n), 0);
                assert_string_equal(n, ok[i].want);
                assert_true(domain_valid(ok[i].in));
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *n = NULL;
                print_message("bad '%s'\n", bad[i]);
                assert_int_equal(domain_normalize(bad[i], &n), -EINVAL);
                assert_null(n);
                assert_false(domain_valid(bad[i]));
        }
        /* 63-byte labels are fine; 253 bytes in all, not 254. */
        memset(long_name, 'a', sizeof long_name);
        for (size_t i = 63; i < 253; i += 64)
                long_name[i] = '.';
        long_name[253] = 0;
        assert_true(domain_valid(long_name));
        long_name[253] = 'a';
        long_name[254] = 0;
        assert_false(domain_valid(long_name));
}

/* The A-label shown beside a domain in other letters (a homograph), nothing beside an ASCII one. */
static void test_address_domain_ascii(void **state) {
        static const struct { const char *in; const char *want; } cases[] = {
                { "noreply@\xd0\xb0" "ctionlogement.fr", "xn--ctionlogement-v1k.fr" }, /* Cyrillic а */
                { "jeanne@ex\xc3\xa4mple.fr", "xn--exmple-cua.fr" },
                { "noreply@actionlogement.fr", NULL },
                { "noreply@xn--ctionlogement-v1k.fr", NULL }, /* shown as it is already */
                { "no-at-sign", NULL },
                { "bad@\xff\xfe.fr", NULL },                                      /* not a domain */
                { NULL, NULL },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *a = NULL;
                assert_int_equal(address_domain_ascii(cases[i].in, &a), 0);
                if (cases[i].want)
                        assert_string_equal(a, cases[i].want);
                else
                        assert_null(a);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_boolean),
                cmocka_unit_test(test_unsigned_and_port),
                cmocka_unit_test(test_domain),
                cmocka_unit_test(test_address_domain_ascii),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
