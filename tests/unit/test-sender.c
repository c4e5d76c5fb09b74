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
                { "abc-", "abc" },
                { "", "" },
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
                { "&AMk-l&AOk-ments envoy&AOk-s", true }, /* the same in modified UTF-7 */
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
                /* Plain trusted senders, subdomains, upper case, an FQDN dot. */
                { "From: AL <noreply@actionlogement.fr>", true, true, false, false, false, false },
                { "From: <Notifications@MAIL.AL-IN.FR>", true, true, false, false, false, false },
                { "From: noreply@visale.fr.", true, true, false, false, false, false },
                /* Authentication: topmost header only, comments ignored, aligned domains. */
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
                  "From: <a@al-in.fr>", true, true, false, false, false, false },
                { "Authentication-Results: mx; dkim=fail header.d=esp.example; dmarc=pass header.from=al-in.fr\n"
                  "From: <a@al-in.fr>", true, true, false, false, false, false },
                { "Authentication-Results: mx; dmarc=fail header.from=other.example\n"
                  "From: <a@al-in.fr>", true, true, false, false, false, false },
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_domain_matches), cmocka_unit_test(test_punycode),
                cmocka_unit_test(test_skeleton),       cmocka_unit_test(test_folder_is_sent),
                cmocka_unit_test(test_analyze),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
