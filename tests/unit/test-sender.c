/* sender.c: domain matching, punycode (RFC 3492 samples), the confusable skeleton, Sent folder
 * names, and the whole analysis of a message's From / Reply-To / Authentication-Results. */
#include "test-util.h"

#include "macro.h"
#include "mime.h"
#include "sender.h"

static char *const trusted[] = { "actionlogement.fr", "al-in.fr", "visale.fr", NULL };
static char *const employer[] = { "menuiseries-durand.example", NULL };
static char *const self[] = { "jeanne@example.org", NULL };

static void test_domain_matches(void **state) {
        static const struct {
                const char *domain, *d;
                bool match;
        } cases[] = {
                { "al-in.fr", "al-in.fr", true },
                { "mail.al-in.fr", "al-in.fr", true },
                { "MAIL.AL-IN.FR", "al-in.fr", true },
                { "evil-al-in.fr", "al-in.fr", false },
                { "al-in.fr.evil.example", "al-in.fr", false },
                { "xal-in.fr", "al-in.fr", false },
                { "fr", "al-in.fr", false },
                { "", "al-in.fr", false },
                { "al-in.fr", "", false },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(sender_domain_matches(cases[i].domain, cases[i].d), cases[i].match);
        assert_false(sender_domain_matches(NULL, "al-in.fr"));
}

static void test_punycode(void **state) {
        static const struct {
                const char *in, *out; /* out NULL: invalid */
        } cases[] = {
                { "l-in-43d", "аl-in" },                 /* Cyrillic а */
                { "actionlogemnt-63k", "actionlogemеnt" },
                { "bcher-kva", "bücher" },
                { "mnchen-3ya", "münchen" },
                { "ihqwcrb4cv8a8dqg056pqjye", "他们为什么不说中文" }, /* RFC 3492 7.1 (A) */
                { "egbpdaj6bu4bxfgehfvwxn", "ليهمابتكلموشعربي؟" },  /* (B) */
                { "abc-", NULL },                        /* nothing encoded: not an A-label */
                { "", NULL },
                { "ab.cd", NULL },                       /* one label only */
                { "99999999999999", NULL },              /* overflow */
                { "a-b!", NULL },
                { "\xc3\xa9-x", NULL },                  /* non-ASCII basic code point */
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = NULL;
                int r = sender_punycode_decode(cases[i].in, strlen(cases[i].in), &out);
                if (!cases[i].out) {
                        if (r != -EINVAL)
                                fail_msg("case %zu: '%s' accepted as '%s'", i, cases[i].in, out);
                        continue;
                }
                if (r != 0)
                        fail_msg("case %zu: '%s' refused: %d", i, cases[i].in, r);
                assert_string_equal(out, cases[i].out);
                free(out);
        }
        /* Every prefix and odd input: no crash, no read past the end. */
        const char *all = "ihqwcrb4cv8a8dqg056pqjye-zz9";
        for (size_t k = 0; k <= strlen(all); k++) {
                char *in = test_exact_copy(all, k), *out = NULL;
                if (sender_punycode_decode(in, k, &out) == 0)
                        assert_true(test_valid_utf8(out, strlen(out)));
                free(out);
                free(in);
        }
}

static void test_skeleton(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "xn--actionlogment-43k.fr", "actlonlogementfr" },   /* Cyrillic е */
                { "actionlogernent.fr", "actlonlogementfr" },          /* rn for m */
                { "act10nl0gement.fr", "actlonlogementfr" },           /* digits */
                { "Action Logement", "actlonlogement" },
                { "AL’in", "alln" },
                { "ΑL-іn", "alln" },                                    /* Greek Α, Cyrillic і */
                { "Éléments", "elements" },
                { "", "" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *k = sender_skeleton(cases[i].in);
                assert_non_null(k);
                if (!streq(k, cases[i].out))
                        fail_msg("case %zu: '%s' gave '%s'", i, cases[i].in, k);
                free(k);
        }
}

static void test_folder_is_sent(void **state) {
        static const struct {
                const char *folder;
                bool sent;
        } cases[] = {
                { "Sent", true },
                { "Sent Items", true },
                { "INBOX.Sent", true },
                { "[Gmail]/Sent Mail", true },
                { "Éléments envoyés", true },
                { "&AMk-l&AOk-ments envoy&AOk-s", false }, /* names are decoded first (imap.c) */
                { "Envoyés", true },
                { "INBOX", false },
                { "Sent-Archive", false },
                { "Résent", false },
                { NULL, false },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (sender_folder_is_sent(cases[i].folder) != cases[i].sent)
                        fail_msg("case %zu: '%s'", i, strna(cases[i].folder));
}

/* Analyses a message made of these headers and a one-line body. */
static void analyze(const char *headers, SenderInfo *ret) {
        char *raw = NULL;
        MimeMessage *m = NULL;

        assert_true(asprintf(&raw, "%s\nContent-Type: text/plain\n\nx\n", headers) > 0);
        assert_int_equal(mime_parse(raw, strlen(raw), NULL, &m), 0);
        assert_int_equal(sender_analyze(m, trusted, employer, self, ret), 0);
        mime_message_free(m);
        free(raw);
}

static void test_analyze(void **state) {
        static const struct {
                const char *headers;
                bool trusted;     /* by a rule trusting `trusted` (not the employer) */
                bool employer_ok; /* by a rule trusting the employer too */
                bool lookalike, auth_failed, mismatch, is_self;
        } cases[] = {
                /* Plain trusted senders, subdomains, upper case (domains are case-insensitive). An
                 * FQDN dot is not in RFC 5322's syntax: untrusted (see test_forged). */
                { "From: AL <noreply@actionlogement.fr>", true, true, false, false, false, false },
                { "From: <Notifications@MAIL.AL-IN.FR>", true, true, false, false, false, false },
                { "From: noreply@visale.fr.", false, false, false, false, false, false },
                /* Authentication: failures in any header (one added below the receiving server's can
                 * only take trust away), passes in the topmost only; comments ignored; aligned
                 * domains. */
                { "Authentication-Results: mx; dmarc=fail header.from=actionlogement.fr\n"
                  "From: <noreply@actionlogement.fr>", false, false, false, true, false, false },
                { "Authentication-Results: mx; dkim=fail header.d=actionlogement.fr\n"
                  "From: <noreply@actionlogement.fr>", false, false, false, true, false, false },
                { "Authentication-Results: mx; dkim=fail header.d=actionlogement.fr; dkim=pass header.d=mail.actionlogement.fr\n"
                  "From: <noreply@actionlogement.fr>", true, true, false, false, false, false },
                { "Authentication-Results: mx; dkim=fail (dkim=pass in a comment) header.d=al-in.fr\n"
                  "From: <a@al-in.fr>", false, false, false, true, false, false },
                { "Authentication-Results: mx; dmarc=pass header.from=al-in.fr\n"
                  "Authentication-Results: forged; dmarc=fail header.from=al-in.fr\n"
                  "From: <a@al-in.fr>", false, false, false, true, false, false },
                { "Authentication-Results: mx; dkim=fail header.d=esp.example; dmarc=pass header.from=al-in.fr\n"
                  "From: <a@al-in.fr>", true, true, false, false, false, false },
                /* A verdict on another From domain: the server read another From than ours. */
                { "Authentication-Results: mx; dmarc=fail header.from=other.example\n"
                  "From: <a@al-in.fr>", false, false, false, false, false, false },
                /* Every header.from of a result counts; one without a dot is not a parent domain. */
                { "Authentication-Results: mx; dmarc=pass header.from=al-in.fr header.from=evil.example\n"
                  "From: <a@al-in.fr>", false, false, false, false, false, false },
                { "Authentication-Results: mx; dmarc=pass header.from=fr\n"
                  "From: <a@al-in.fr>", false, false, false, false, false, false },
                { "Authentication-Results: mx; dmarc=pass header.from= header.from=evil.example\n"
                  "From: <a@al-in.fr>", false, false, false, false, false, false },
                /* A result we cannot read still names the From it judged (found by fuzz-sender). */
                { "Authentication-Results: mx; dmarc=\377\377\377\377\377\377\377\377\377\377\377\377\377\377\377\377pass header.from=evil.example\n"
                  "From: <a@al-in.fr>", false, false, false, false, false, false },
                /* Look-alikes: never trusted, flagged. */
                { "From: Action Logement <noreply@actionlogement-fr.com>", false, false, true, false, false, false },
                { "From: AL'in <support@xn--l-in-43d.fr>", false, false, true, false, false, false },
                { "From: Service <noreply@xn--actionlogemnt-63k.fr>", false, false, true, false, false, false },
                { "From: Service <noreply@actionlogernent.fr>", false, false, true, false, false, false },
                { "From: Visale <noreply@actionlogement.fr.espace-client.example>", false, false, true, false, false, false },
                { "From: Service <contact@al-in-fr.example>", false, false, true, false, false, false },
                { "From: \"noreply@actionlogement.fr\" <someone@freemail.example>", false, false, true, false, false, false },
                { "From: Action Logement <someone@freemail.example>", false, false, true, false, false, false },
                { "From: =?UTF-8?B?QUzigJlpbg==?= <x@freemail.example>", false, false, true, false, false, false },
                /* Not look-alikes. */
                { "From: Paul <paul@example.net>", false, false, false, false, false, false },
                { "From: Caroline <caroline@maline.example>", false, false, false, false, false, false },
                /* Reply-To elsewhere: suspicious without authentication, a tool's address with it. */
                { "From: <contact@visale.fr>\nReply-To: <visale@freemail.example>", false, false, false, false, true, false },
                { "Authentication-Results: mx; dkim=pass header.d=visale.fr\n"
                  "From: <contact@visale.fr>\nReply-To: <crm@esp.example>", true, true, false, false, false, false },
                { "From: <contact@visale.fr>\nReply-To: <x@al-in.fr>", true, true, false, false, false, false },
                /* Trusted domain only in Reply-To: the From decides. */
                { "From: <x@freemail.example>\nReply-To: <noreply@actionlogement.fr>", false, false, false, false, false, false },
                /* The employer: trusted only by rules that say so. */
                { "From: RH <rh@menuiseries-durand.example>", false, true, false, false, false, false },
                { "From: RH <rh@paie.menuiseries-durand.example>", false, true, false, false, false, false },
                /* The user's own address: never trusted. */
                { "From: Jeanne <Jeanne@Example.ORG>", false, false, false, false, false, true },
                /* No From at all, or an unparsable one. */
                { "Subject: none", false, false, false, false, false, false },
                { "From: Action Logement", false, false, true, false, false, false },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                SenderInfo s = {};
                analyze(cases[i].headers, &s);
                if (sender_trusted(&s, trusted, false) != cases[i].trusted ||
                    sender_trusted(&s, trusted, true) != cases[i].employer_ok || s.lookalike != cases[i].lookalike ||
                    s.auth_failed != cases[i].auth_failed || s.mismatch != cases[i].mismatch ||
                    s.self != cases[i].is_self)
                        fail_msg("case %zu: trusted %d/%d lookalike %d auth_failed %d mismatch %d self %d (%s)", i,
                                 sender_trusted(&s, trusted, false), sender_trusted(&s, trusted, true), s.lookalike,
                                 s.auth_failed, s.mismatch, s.self, strna(s.why));
                if (!cases[i].trusted && !cases[i].employer_ok && s.domain && (s.lookalike || s.auth_failed || s.mismatch || s.self))
                        assert_non_null(s.why);
                sender_info_done(&s);
        }
}

static void analyze_raw(const char *raw, size_t len, SenderInfo *ret) {
        MimeMessage *m = NULL;

        assert_int_equal(mime_parse(raw, len, NULL, &m), 0);
        assert_int_equal(sender_analyze(m, trusted, employer, self, ret), 0);
        mime_message_free(m);
}

#define AR_EVIL "Authentication-Results: mx.example.org; dkim=pass header.d=evil.example; " \
                "dmarc=pass header.from=evil.example\n"
#define AL "ne-pas-repondre@actionlogement.fr"

/* issue 11: every one of these was stored as a trusted code from ne-pas-repondre@actionlogement.fr.
 * Each is judged with the receiving server's verdict on evil.example (as reported) and without
 * any Authentication-Results: the From alone must already be refused, except where it is
 * well-formed (upper-case domain, lower-case field name) and only the verdict tells. */
static void test_forged(void **state) {
        static const struct {
                const char *headers;
                size_t len;       /* 0: strlen */
                const char *why;  /* without Authentication-Results; NULL: trusted then */
        } cases[] = {
                { "From: <x@evil.example> <" AL ">", 0, "several angle addresses" },
                { "From: x@evil.example <" AL ">", 0, "the display name is an address" },
                { "From: \"x@evil.example\" <" AL ">", 0, "the display name is another address" },
                { "From: =?utf-8?q?x=40evil=2Eexample?= <" AL ">", 0, "the display name is another address" },
                { "From: Action Logement <" AL, 0, "no closing '>'" },
                { "From: Action Logement <" AL "> x@evil.example", 0, "junk after the address" },
                { "From: [x] <" AL ">", 0, "junk before the address" },
                { "From: " AL " x@evil.example", 0, "junk around the address" },
                { "From: x@evil.example" AL, 0, "two '@' in the address" },
                { "From: <" AL ">\nFrom: <x@evil.example>", 0, "several From fields" },
                { "From: <x@evil.example>\nfrom: <" AL ">", 0, "several From fields" },
                { "From : <x@evil.example>\nFrom: <" AL ">", 0, "several From fields" },
                { "From: <" AL ">\nX-Junk line without a colon\nFrom: <x@evil.example>", 0, "several From fields" },
                { "From: " AL ", x@evil.example", 0, "several mailboxes" },
                { "From: Undisclosed: " AL ", x@evil.example;", 0, "a group or a source route" },
                { "From: <@evil.example,@relay.example:" AL ">", 0, "a source route before the address" },
                { "From: <@evil.example:" AL ">", 0, "a source route before the address" },
                { "From: <ne-pas-repondre@actionlogement.fr\0.evil.example>", 55, "a NUL or control character in the header" },
                { "From: <ne-pas-repondre@actionlogement.fr\033]8;;x\a>", 0, "a NUL or control character in the header" },
                { "From: <ne-pas-repondre(x@evil.example)@actionlogement.fr>", 0, "a comment inside the address" },
                { "From: ne-pas-repondre@actionlogement.fr(x).evil.example", 0, "junk around the address" },
                { "From: <x\\@evil.example@actionlogement.fr>", 0, "a backslash inside the address" },
                { "From: <\"x@evil.example\"@actionlogement.fr>", 0, "a quoted local part" },
                { "From: <" AL ".>", 0, "a trailing dot in the domain" },
                { "From: <x@[192.0.2.1]>", 0, "a domain literal" },
                { "From: <" AL ">\nSender: <a@evil.example>\nSender: <b@evil.example>", 0, "several Sender fields" },
                { "From: <" AL ">\nSender: <a@evil.example>, <b@evil.example>", 0, "a malformed Sender field" },
                /* Well-formed: only the receiving server's verdict tells. */
                { "From: <ne-pas-repondre@ACTIONLOGEMENT.FR>", 0, NULL },
                { "from: <" AL ">", 0, NULL },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = cases[i].len ?: strlen(cases[i].headers);
                for (unsigned with_ar = 0; with_ar < 2; with_ar++) {
                        _cleanup_free_ char *raw = malloc(len + 256);
                        SenderInfo s = {};
                        size_t n = 0;

                        assert_non_null(raw);
                        if (with_ar)
                                n = (size_t) sprintf(raw, "%s", AR_EVIL);
                        memcpy(raw + n, cases[i].headers, len);
                        n += len;
                        n += (size_t) sprintf(raw + n, "\nSubject: x\nContent-Type: text/plain\n\nx\n");
                        analyze_raw(raw, n, &s);
                        const char *want = with_ar && !cases[i].why
                                                   ? "Authentication-Results judged another From domain (header.from)"
                                                   : cases[i].why;
                        if (sender_trusted(&s, trusted, true) != !want || !streq(strempty(s.why), strempty(want)))
                                fail_msg("case %zu%s: trusted %d, why '%s', expected '%s'", i,
                                         with_ar ? " (with A-R)" : "", sender_trusted(&s, trusted, true),
                                         strna(s.why), strna(want));
                        if (with_ar && !cases[i].why)
                                assert_string_equal(s.auth_domain, "evil.example");
                        sender_info_done(&s);
                }
        }
}

/* Well-formed senders that stay trusted, with a verdict on their own domain. */
static void test_well_formed(void **state) {
        static const char *const froms[] = {
                "From: Action Logement <" AL ">",
                "From: " AL,
                "From: " AL " (Action Logement)",
                "From: (Action Logement) <" AL ">",
                "From: \"Action Logement, service client\" <" AL ">",
                "From: \"Dupont \\\"AL\\\"\" <" AL ">",
                "From: =?utf-8?q?Action_Logement?= <" AL ">",
                "From: \"" AL "\" <" AL ">",
                "From: Action Logement\n <" AL ">",
                "From:<" AL ">",
                "FROM: Action Logement <" AL ">",
                "From: Action Logement <" AL ">\nSender: <bounces@esp.example>",
                "From: AL <" AL ">\nAuthentication-Results: mx; dmarc=pass header.from=ActionLogement.FR",
                "From: AL <notifications@mail.al-in.fr>\nAuthentication-Results: mx; dmarc=pass header.from=al-in.fr",
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(froms); i++) {
                SenderInfo s = {};
                analyze(froms[i], &s);
                if (!sender_trusted(&s, trusted, false))
                        fail_msg("case %zu: not trusted: %s", i, strna(s.why));
                sender_info_done(&s);
        }
}

static void test_parse_mailbox(void **state) {
        static const struct {
                const char *in, *address; /* NULL: refused */
        } cases[] = {
                { "A <x@Example.ORG>", "x@example.org" },
                { "X@EXAMPLE.org", "X@example.org" },
                { "  <x.y+z@a-b.example>  ", "x.y+z@a-b.example" },
                { "x..y@example.org", NULL },
                { ".x@example.org", NULL },
                { "x@example..org", NULL },
                { "x@.example.org", NULL },
                { "<>", NULL },
                { "", NULL },
                { "\"unterminated <x@example.org>", NULL },
                { "(unterminated x@example.org", NULL },
                { "A <x@example.org>>", NULL },
                { "A > <x@example.org>", NULL },
                { "x@exa_mple.org", NULL },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *a = NULL;
                const char *why = NULL;
                int r = sender_parse_mailbox(cases[i].in, strlen(cases[i].in), &a, &why);
                if (cases[i].address ? r != 0 || !streq(a, cases[i].address) : r != -EINVAL || !why)
                        fail_msg("case %zu '%s': r=%d address '%s' why '%s'", i, cases[i].in, r, strna(a), strna(why));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domain_matches), cmocka_unit_test(test_punycode),
                cmocka_unit_test(test_skeleton),       cmocka_unit_test(test_folder_is_sent),
                cmocka_unit_test(test_analyze),        cmocka_unit_test(test_forged),
                cmocka_unit_test(test_well_formed),    cmocka_unit_test(test_parse_mailbox),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
