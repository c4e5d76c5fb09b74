/* imap.c's pure parts: modified UTF-7 folder names (RFC 3501 §5.1.3), special-use names
 * (RFC 6154) and the NOTIFY scanner (RFC 5465, imap-notify.c). The protocol itself is tested against a real dovecot (tests/integration). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test-util.h"

#include "imap.h"
#include "imap-notify.h"
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


typedef struct NotifyCase {
        const char *in;
        const char *names[5]; /* expected, in order */
        bool all;
        unsigned events;
        bool folders;       /* a "* LIST" line (MailboxName) */
        unsigned throttled; /* "OK [THROTTLED]" lines */
} NotifyCase;

static const NotifyCase notify_cases[] = {
        { "* OK Still here\r\n* STATUS Trash (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7 UNSEEN 1)\r\n* 1 EXISTS\r\n"
          "* STATUS \"Archive/2024 x\" (UIDNEXT 3)\r\n* STATUS INBOX (UIDNEXT 3)\r\n* status inbox (UIDNEXT 4)\r\n"
          "* STATUS Trash (UIDNEXT 3)\r\n",
          { "Trash", "Archive/2024 x", "INBOX" }, false, 5, false, 0 },
        /* Only at a line's start, untagged: a tagged answer or a line inside another is none. */
        { "a1 STATUS Trash (UIDNEXT 2)\r\n* 3 FETCH (BODY[] {20}\r\nx * STATUS Junk (U)\r\n)\r\n", {}, false, 0, false, 0 },
        /* A body line that looks like one is taken as one: a STATUS more, nothing lost. */
        { "* 3 FETCH (BODY[] {24}\r\n* STATUS Junk (UIDNEXT)\r\n)\r\n", { "Junk" }, false, 1, false, 0 },
        { "* OK [NOTIFICATIONOVERFLOW] too many\r\n", {}, true, 1, false, 0 },
        { "* OK Still here\n* STATUS Sent\n", { "Sent" }, false, 1, false, 0 }, /* bare LF */
        /* Names it cannot read: look everywhere. */
        { "* STATUS {5}\r\nhello (UIDNEXT 2)\r\n", {}, true, 1, false, 0 },
        { "* STATUS \"unterminated (UIDNEXT 2)\r\n", {}, true, 1, false, 0 },
        { "* STATUS (UIDNEXT 2)\r\n", {}, true, 1, false, 0 },
        { "* STATUS \"a\\\"b\\\\c\" (UIDNEXT 2)\r\n", { "a\"b\\c" }, false, 1, false, 0 },
        { "* STATUS &AOk-t&AOk- (UIDNEXT 2)\r\n", { "&AOk-t&AOk-" }, false, 1, false, 0 },
        /* Cut in the middle of a notification: nothing until its end of line. */
        { "* STATUS Trash (UIDNEXT", {}, false, 0, false, 0 },
        /* MailboxName (RFC 5465 §5.4): a folder created, deleted or renamed. */
        { "* LIST () \"/\" New\r\n", {}, false, 1, true, 0 },
        { "* LIST (\\NonExistent) \"/\" Old\r\n* STATUS Trash (UIDNEXT 2)\r\n", { "Trash" }, false, 2, true, 0 },
        { "* 3 FETCH (BODY[] {10}\r\nx * LIST y\r\n)\r\n", {}, false, 0, false, 0 },
        /* Gmail slowing us down: on a command's OK (at its end or as its code), or untagged. */
        { "12 OK Success [THROTTLED]\r\n* OK [THROTTLED] slow down\r\n13 OK [throttled] done\r\n", {}, false, 0,
          false, 3 },
        { "12 OK done\r\n13 NO [THROTTLED] refused\r\n* OK Still here [THROTTLED]\r\nab.1 OK\r\n", {}, false, 0,
          false, 0 },
        { "* STATUS Trash (UIDNEXT 2)\r\n7 OK Success [THROTTLED]\n", { "Trash" }, false, 1, false, 1 },
        /* A body line starting with a long word is no tagged answer of ours (and costs little). */
        { "12345678901234567 OK [THROTTLED]\r\nBonjour OK [THROTTLED]\r\n", {}, false, 0, false, 1 },
};

static void check_notify(const ImapNotifyScan *n, const NotifyCase *c, const char *how) {
        size_t want = 0;

        while (want < ELEMENTSOF(c->names) && c->names[want])
                want++;
        if (n->n_names != want || n->all != c->all || n->events != c->events || n->folders_changed != c->folders ||
            n->throttled != c->throttled)
                fail_msg("%s: %zu names, all=%d, %u events, folders=%d, throttled %u for %s", how, n->n_names, n->all,
                         n->events, n->folders_changed, n->throttled, c->in);
        for (size_t i = 0; i < want; i++)
                assert_string_equal(n->names[i], c->names[i]);
        if (want > 0)
                assert_null(n->names[want]);
}

static void test_notify_scan_every_split(void **state) {
        (void) state;
        for (size_t k = 0; k < ELEMENTSOF(notify_cases); k++) {
                const NotifyCase *c = &notify_cases[k];
                size_t len = strlen(c->in);
                ImapNotifyScan n = {};

                /* In two pieces, cut at every byte. */
                for (size_t cut = 0; cut <= len; cut++) {
                        imap_notify_scan_feed(&n, c->in, cut);
                        imap_notify_scan_feed(&n, c->in + cut, len - cut);
                        check_notify(&n, c, "two pieces");
                        imap_notify_scan_clear(&n);
                        n = (ImapNotifyScan) {};
                }
                /* One byte at a time. */
                for (size_t i = 0; i < len; i++)
                        imap_notify_scan_feed(&n, c->in + i, 1);
                check_notify(&n, c, "byte by byte");
                imap_notify_scan_clear(&n);
        }
}

static void test_notify_scan_limits(void **state) {
        ImapNotifyScan n = {};
        char line[IMAP_NOTIFY_LINE_MAX + 64];

        (void) state;
        /* A STATUS line longer than the scanner holds: its name is not read; look everywhere. */
        memset(line, 'x', sizeof line);
        memcpy(line, "* STATUS ", 9);
        imap_notify_scan_feed(&n, line, sizeof line);
        imap_notify_scan_feed(&n, "\r\n* STATUS Junk (UIDNEXT 2)\r\n", 29);
        assert_true(n.all);
        assert_int_equal(n.events, 2);
        assert_int_equal(n.n_names, 1);
        assert_string_equal(n.names[0], "Junk");
        imap_notify_scan_clear(&n);
        assert_false(n.all);
        assert_int_equal(n.n_names, 0);

        /* Past IMAP_NOTIFY_NAMES_MAX distinct names: look everywhere, memory stays bounded. */
        for (unsigned i = 0; i < IMAP_NOTIFY_NAMES_MAX + 10; i++) {
                char l[64];
                int k = snprintf(l, sizeof l, "* STATUS f%u (UIDNEXT 2)\r\n", i);
                imap_notify_scan_feed(&n, l, (size_t) k);
        }
        assert_true(n.all);
        assert_int_equal(n.n_names, IMAP_NOTIFY_NAMES_MAX);

        /* Forgetting a name (our own STATUS answered it). */
        imap_notify_scan_forget(&n, "f3");
        assert_int_equal(n.n_names, IMAP_NOTIFY_NAMES_MAX - 1);
        assert_string_equal(n.names[3], "f4");
        assert_null(n.names[n.n_names]);
        imap_notify_scan_clear(&n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_utf7),
                cmocka_unit_test(test_utf7_every_prefix),
                cmocka_unit_test(test_special_use),
                cmocka_unit_test(test_notify_scan_every_split),
                cmocka_unit_test(test_notify_scan_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
