/* imap.c's pure parts: modified UTF-7 folder names (RFC 3501 §5.1.3) and special-use names
 * (RFC 6154). The protocol itself is tested against a real dovecot (tests/integration). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test-util.h"

#include "imap.h"
#include "test-util.h"

static void test_utf7(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "INBOX", "INBOX" },
                { "Envoy&AOk-s", "Envoyés" },
                { "&AMk-l&AOk-ments envoy&AOk-s", "Éléments envoyés" },
                { "Tom &- Jerry", "Tom & Jerry" },
                { "&ZeVnLIqe-", "日本語" },
                { "&2D3eAA-", "\xf0\x9f\x98\x80" },       /* a surrogate pair: U+1F600 */
                { "Archives/2024", "Archives/2024" },
                { "", "" },
                /* Not modified UTF-7: shown as the server sent it. */
                { "bad &AOk", "bad &AOk" },
                { "bad &*-", "bad &*-" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *s = imap_utf7_decode(cases[i].in);
                assert_non_null(s);
                assert_string_equal(s, cases[i].out);
                free(s);
        }
}

static void test_utf7_every_prefix(void **state) {
        /* The name in pieces: a cut inside an encoded piece (before its '-') leaves a name that
         * is not modified UTF-7, which is shown as it is; a cut elsewhere, the decoded prefix. */
        static const struct {
                const char *raw, *decoded;
        } pieces[] = {
                { "&AMk-", "É" }, { "l", "l" }, { "&AOk-", "é" }, { "ments ", "ments " },
                { "&ZeVnLIqe-", "日本語" }, { " ", " " }, { "&2D3eAA-", "\xf0\x9f\x98\x80" },
        };
        char in[64] = "";
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(pieces); i++)
                strcat(in, pieces[i].raw);
        for (size_t n = 0; n <= strlen(in); n++) {
                char *cut = strndup(in, n), *s = imap_utf7_decode(cut), expected[64] = "";
                size_t at = 0;

                for (size_t i = 0; i < ELEMENTSOF(pieces); i++) {
                        size_t l = strlen(pieces[i].raw);
                        if (at + l <= n)
                                strcat(expected, pieces[i].decoded);
                        else if (pieces[i].raw[0] != '&')
                                strncat(expected, pieces[i].raw, n - at);
                        else if (n > at)
                                strcpy(expected, cut);
                        at += l;
                        if (at >= n)
                                break;
                }
                if (!s || !streq(s, expected))
                        fail_msg("cut at %zu: '%s' decoded as '%s', expected '%s'", n, cut, strna(s), expected);
                assert_true(test_valid_utf8(s, strlen(s)));
                free(s);
                free(cut);
        }
}

static void test_special_use(void **state) {
        (void) state;
        assert_int_equal(imap_special_use_from_string("Junk"), IMAP_FOLDER_JUNK);
        assert_int_equal(imap_special_use_from_string("\\Junk"), IMAP_FOLDER_JUNK);
        assert_int_equal(imap_special_use_from_string("spam"), IMAP_FOLDER_JUNK);
        assert_int_equal(imap_special_use_from_string("Trash"), IMAP_FOLDER_TRASH);
        assert_int_equal(imap_special_use_from_string("Archive"), IMAP_FOLDER_ARCHIVE);
        assert_int_equal(imap_special_use_from_string("All"), IMAP_FOLDER_ALL);
        assert_int_equal(imap_special_use_from_string("INBOX"), 0);
        assert_int_equal(imap_special_use_from_string("Noselect"), 0);
        assert_int_equal(imap_special_use_from_string("Archives/*"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_utf7),
                cmocka_unit_test(test_utf7_every_prefix),
                cmocka_unit_test(test_special_use),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
