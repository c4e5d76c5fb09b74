/* mime.c: RFC 2047 headers, the MIME walk over hand-written messages (tests/data), every
 * prefix of them, and the guards around libetpan: a quoted-printable body ending in "=X",
 * 10,000 nested multiparts, 100,000 parts, and the size limits. */
#include <sys/resource.h>
#include <time.h>

#include "test-util.h"

#include "macro.h"
#include "mime.h"
#include "strbuf.h"

static void test_decode_header(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "plain", "plain" },
                { "=?utf-8?q?caf=C3=A9?=", "café" },
                { "=?UTF-8?Q?Votre_code_sp=C3=A9cifique?=", "Votre code spécifique" },
                { "=?iso-8859-1?Q?Ihr_C=F3digo?= =?UTF-8?B?OiDinJM=?= plain tail", "Ihr Código: ✓ plain tail" },
                { "=?UTF-8?B?QUzigJlpbg==?=", "AL’in" },
                /* Blanks between encoded words vanish; around plain words they stay. */
                { "=?utf-8?q?a?= =?utf-8?q?b?=", "ab" },
                { "=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab" },
                { "x =?utf-8?q?a?= y", "x a y" },
                /* A character split between two words of one charset. */
                { "=?utf-8?b?ww==?= =?utf-8?b?qQ==?=", "é" },
                /* Mixed charsets, lower-case encodings, RFC 2231 language tags. */
                { "=?iso-8859-15?q?=A4?= =?windows-1252?q?=80?=", "€€" },
                { "=?utf-8*fr?q?ok?=", "ok" },
                /* Unknown charset: read as UTF-8 (else Windows-1252), not dropped. */
                { "=?x-nope?q?abc?=", "abc" },
                { "=?x-nope?q?caf=E9?=", "café" },
                /* Bad bytes become U+FFFD, never '?'. */
                { "=?utf-8?q?=C3=A9a=FFb?=", "éa\xef\xbf\xbd" "b" },  /* a stray byte in UTF-8 */
                { "=?utf-8?q?sp=E9cifique?=", "spécifique" },         /* Latin-1 labelled UTF-8 */
                /* Not encoded words: kept as written. */
                { "=?utf-8?q?broken", "=?utf-8?q?broken" },
                { "=?utf-8?x?abc?=", "=?utf-8?x?abc?=" },
                { "a=?b", "a=?b" },
                { "=?", "=?" },
                /* Raw 8-bit: UTF-8 when valid, else Windows-1252. */
                { "caf\xc3\xa9", "café" },
                { "caf\xe9 \x93ok\x94", "café “ok”" },
                /* Line breaks and tabs become spaces. */
                { "a\r\n\tb", "a b" },
                { "", "" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = mime_decode_header(cases[i].in, strlen(cases[i].in));
                assert_non_null(out);
                if (!streq(out, cases[i].out))
                        fail_msg("case %zu: '%s' gave '%s', expected '%s'", i, cases[i].in, out, cases[i].out);
                free(out);
        }
}

/* Every prefix of every case decodes to valid UTF-8 without reading past it. */
static void test_decode_header_prefixes(void **state) {
        static const char *inputs[] = {
                "=?iso-8859-1?Q?Ihr_C=F3digo?= =?UTF-8?B?OiDinJM=?= plain tail",
                "=?utf-8?b?ww==?= =?utf-8?b?qQ==?= =?x?q?=E9=?=",
                "x =?utf-8*fr?Q?a_b=3?= caf\xe9 \xc3",
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(inputs); i++)
                for (size_t k = 0; k <= strlen(inputs[i]); k++) {
                        char *in = test_exact_copy(inputs[i], k);
                        char *out = mime_decode_header(in, k);
                        assert_non_null(out);
                        if (!test_valid_utf8(out, strlen(out)))
                                fail_msg("input %zu cut at %zu: invalid UTF-8 out", i, k);
                        free(out);
                        free(in);
                }
}

static void b64_append(StrBuf *b, const unsigned char *p, size_t n) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned) p[i] << 16 | (i + 1 < n ? (unsigned) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
                char out[4] = { t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=', i + 2 < n ? t[v & 63] : '=' };
                assert_int_equal(strbuf_append(b, out, 4), 0);
        }
}

static void q_append(StrBuf *b, const unsigned char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i] >= 0x80 || p[i] == '=' || p[i] == '?' || p[i] == '_' || p[i] == ' ')
                        assert_true(strbuf_printf(b, p[i] == ' ' ? "_" : "=%02X", p[i]) >= 0);
                else
                        assert_int_equal(strbuf_putc(b, (char) p[i]), 0);
}

/* A text cut at every byte into two encoded words (B, then Q; a character split between
 * them too) decodes to the text. */
static void test_decode_header_split(void **state) {
        static const char text[] = "Code spécifique : é€✓ 😀 AB12";
        const size_t n = sizeof text - 1;

        (void) state;
        for (int q = 0; q < 2; q++)
                for (size_t k = 0; k <= n; k++) {
                        StrBuf b = STRBUF_INIT(0);
                        assert_int_equal(strbuf_puts(&b, q ? "=?UTF-8?Q?" : "=?utf-8?b?"), 0);
                        (q ? q_append : b64_append)(&b, (const unsigned char *) text, k);
                        assert_int_equal(strbuf_puts(&b, q ? "?=\r\n =?UTF-8?Q?" : "?= =?utf-8?b?"), 0);
                        (q ? q_append : b64_append)(&b, (const unsigned char *) text + k, n - k);
                        assert_int_equal(strbuf_puts(&b, "?="), 0);
                        char *out = mime_decode_header(b.data, b.len);
                        if (!out || !streq(out, text))
                                fail_msg("%s split at %zu: '%s'", q ? "Q" : "B", k, strna(out));
                        free(out);
                        strbuf_done(&b);
                }
}

/* A quoted-printable body with a soft line break at every position, and a base64 body with a
 * line break at every position, decode to the same text. */
static void test_body_split(void **state) {
        static const char text[] = "Votre code spécifique : AB12 CD34 – valable 12 mois.";
        const size_t n = sizeof text - 1;
        StrBuf qp = STRBUF_INIT(0), b64 = STRBUF_INIT(0);

        (void) state;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) text[i];
                assert_true(c >= 0x80 || c == '=' ? strbuf_printf(&qp, "=%02X", c) >= 0 : strbuf_putc(&qp, (char) c) >= 0);
        }
        b64_append(&b64, (const unsigned char *) text, n);
        for (int enc = 0; enc < 2; enc++) {
                const StrBuf *e = enc ? &b64 : &qp;
                for (size_t k = 0; k <= e->len; k++) {
                        StrBuf msg = STRBUF_INIT(0);
                        MimeMessage *m = NULL;

                        /* Not inside a QP escape. */
                        if (!enc && ((k >= 1 && e->data[k - 1] == '=') || (k >= 2 && e->data[k - 2] == '=')))
                                continue;
                        assert_true(strbuf_printf(&msg, "Content-Type: text/plain; charset=utf-8\n"
                                                         "Content-Transfer-Encoding: %s\n\n%.*s%s\n%s\n",
                                                  enc ? "base64" : "quoted-printable", (int) k, e->data,
                                                  enc ? "" : "=", e->data + k) >= 0);
                        assert_int_equal(mime_parse(msg.data, msg.len, NULL, &m), 0);
                        assert_int_equal(m->n_texts, 1);
                        if (!startswith(m->texts[0].text, text))
                                fail_msg("%s split at %zu: '%s'", enc ? "base64" : "QP", k, m->texts[0].text);
                        mime_message_free(m);
                        strbuf_done(&msg);
                }
        }
        strbuf_done(&qp);
        strbuf_done(&b64);
}

static void test_address_domain(void **state) {
        static const struct {
                const char *in, *domain;
        } cases[] = {
                { "a@Example.ORG", "example.org" },
                { "a@b@c.example", "c.example" },
                { "a@example.org.", "example.org" },
                { "noreply@xn--l-in-43d.fr", "xn--l-in-43d.fr" },
                { "nodomain", NULL },
                { "@example.org", NULL },
                { "a@", NULL },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *d = NULL;
                int r = mail_address_domain(cases[i].in, &d);
                if (!cases[i].domain)
                        assert_int_equal(r, -EINVAL);
                else {
                        assert_int_equal(r, 0);
                        assert_string_equal(d, cases[i].domain);
                }
                free(d);
        }
}

static MimeMessage *parse_file(const char *name) {
        MimeMessage *m = NULL;
        size_t n;
        char *raw = test_read_data(name, &n);
        char *exact = test_exact_copy(raw, n);

        assert_int_equal(mime_parse(exact, n, NULL, &m), 0);
        free(exact);
        free(raw);
        assert_non_null(m);
        return m;
}

static const MimeText *find_text(const MimeMessage *m, const char *needle) {
        for (size_t i = 0; i < m->n_texts; i++)
                if (strstr(m->texts[i].text, needle))
                        return &m->texts[i];
        return NULL;
}

static bool has_warning(const MimeMessage *m, const char *needle) {
        for (size_t i = 0; m->warnings && m->warnings[i]; i++)
                if (strstr(m->warnings[i], needle))
                        return true;
        return false;
}

static void test_parse_files(void **state) {
        static const struct {
                const char *file, *subject, *from_name, *from, *text;
                int html;         /* the part holding `text`: 1 html, 0 plain */
                unsigned attached;
                const char *absent; /* must appear in no text */
                const char *warning;
        } cases[] = {
                /* QP soft line break inside the code, Latin-1. */
                { "al-specific-qp-latin1.eml", "Votre code spécifique", "Action Logement",
                  "ne-pas-repondre@actionlogement.fr", "code spécifique : ZQ48 TK27", 0, 0, NULL, NULL },
                /* base64 HTML (still HTML here: text.c turns it into text). */
                { "al-combined-html-base64.eml", "Vos codes", "AL'in", "notifications@mail.al-in.fr",
                  "<span>RT5</span>", 1, 0, NULL, NULL },
                /* Windows-1252 bytes labelled ISO-8859-1. */
                { "otp-english-cp1252.eml", "Your sign-in code", "AL'in", "security@notifications.al-in.fr",
                  "AL’in. Your one–time code: 482 913", 0, 0, NULL, NULL },
                /* Attached files are skipped, text/plain ones too. */
                { "hr-access.eml", "Votre clé d’accès Action Logement", "Ressources humaines",
                  "rh@menuiseries-durand.example", "« HJ7K-2M9P-4QXW »", 0, 0, "EXEMPLE9Z", NULL },
                /* message/rfc822: read, marked attached, its headers shown. */
                { "forward-attached.eml", "Fwd: ton code", "Paul", "paul@example.net",
                  "Votre code de connexion : 730 214", 0, 1, NULL, NULL },
                { "forward-attached.eml", NULL, NULL, NULL, "From: Action Logement <ne-pas-repondre@actionlogement.fr>",
                  0, 1, NULL, NULL },
                /* ... even base64-encoded. */
                { "forward-base64-rfc822.eml", "Fwd: code", "Paul", "paul@example.net",
                  "Votre code spécifique : PX4R 9T2M", 0, 1, NULL, "message/rfc822 with a base64" },
                { "unknown-charset.eml", "Inscription", "AL'in", "ne-pas-repondre@al-in.fr", "LM47 PQ2D", 0, 0,
                  NULL, "unknown charset 'x-unheard-of'" },
                /* Folded RFC 2047 words in two charsets, in Subject and in the From name. */
                { "rfc2047-subject.eml", "Votre code spécifique : ZK41PQ7M", "Action Logement – Service clients",
                  "ne-pas-repondre@actionlogement.fr", "dans l'objet", 0, 0, NULL, NULL },
                /* QP ending in "=4" at the end of the buffer. */
                { "qp-trailing.eml", "qp", NULL, "x@example.org", "abc", 0, 0, NULL, NULL },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MimeMessage *m = parse_file(cases[i].file);
                const MimeText *t;

                if (cases[i].subject)
                        assert_string_equal(m->subject, cases[i].subject);
                if (cases[i].from_name)
                        assert_string_equal(m->from.name, cases[i].from_name);
                if (cases[i].from)
                        assert_string_equal(m->from.address, cases[i].from);
                t = find_text(m, cases[i].text);
                if (!t)
                        fail_msg("%s: no text holds '%s'", cases[i].file, cases[i].text);
                assert_int_equal(t->html, cases[i].html);
                assert_int_equal(t->attached, cases[i].attached);
                if (cases[i].absent)
                        assert_null(find_text(m, cases[i].absent));
                if (cases[i].warning && !has_warning(m, cases[i].warning))
                        fail_msg("%s: no warning '%s'", cases[i].file, cases[i].warning);
                for (size_t k = 0; k < m->n_texts; k++)
                        assert_true(test_valid_utf8(m->texts[k].text, m->texts[k].len));
                mime_message_free(m);
        }
}

static void test_headers(void **state) {
        MimeMessage *m = parse_file("spoof-dmarc-fail.eml");

        (void) state;
        /* Topmost first. */
        assert_non_null(m->auth_results);
        assert_non_null(strstr(m->auth_results[0], "dmarc=fail"));
        assert_non_null(strstr(m->auth_results[1], "evil.example"));
        mime_message_free(m);

        m = parse_file("al-specific-qp-latin1.eml");
        assert_string_equal(m->message_id, "<t1@actionlogement.fr>");
        assert_int_equal(m->date, 1772439240); /* 2026-03-02T08:14:00Z */
        assert_int_equal(m->date_tz, 60);
        mime_message_free(m);

        m = parse_file("reply-to-mismatch.eml");
        assert_int_equal(m->n_reply_to, 1);
        assert_string_equal(m->reply_to[0].address, "visale.dossiers@freemail.example");
        mime_message_free(m);
}

static void test_not_mime(void **state) {
        static const char *inputs[] = {
                "", "\n", "no headers at all", "From: only@headers.example\n",
                "From: <broken\nSubject: =?utf-8?q?x\n\nbody",
                "Content-Type: multipart/mixed; boundary=x\n\n--x\n--x--",
                "Content-Type: multipart/mixed\n\nno boundary",
                "Content-Type: text/plain; charset=\"\n\n\xff\xfe",
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                MimeMessage *m = NULL;
                char *exact = test_exact_copy(inputs[i], strlen(inputs[i]));
                assert_int_equal(mime_parse(exact, strlen(inputs[i]), NULL, &m), 0);
                for (size_t k = 0; k < m->n_texts; k++)
                        assert_true(test_valid_utf8(m->texts[k].text, m->texts[k].len));
                mime_message_free(m);
                free(exact);
        }
        MimeMessage *m = parse_file("not-mime.eml");
        mime_message_free(m);

        /* Raw 8-bit bytes in an address or a Message-ID come out as valid UTF-8: rules match
         * them with PCRE2's UTF check off (found by fuzz-pipeline). */
        static const char raw[] = "From: AL'in >spp uort@xn\x85\x85l-in.example\nMessage-ID: <\xff@x>\n"
                                  "Reply-To: <r\x92@\x85.example>\n\nx";
        assert_int_equal(mime_parse(raw, sizeof raw - 1, NULL, &m), 0);
        assert_non_null(m->from.address);
        assert_true(test_valid_utf8(m->from.address, strlen(m->from.address)));
        assert_true(test_valid_utf8(m->message_id, strlen(m->message_id)));
        for (size_t i = 0; i < m->n_reply_to; i++)
                assert_true(test_valid_utf8(m->reply_to[i].address, strlen(m->reply_to[i].address)));
        mime_message_free(m);
}

/* Every message cut at every byte: never a crash, never a read past the end (ASan), always
 * valid UTF-8 out. */
static void test_every_prefix(void **state) {
        static const char *files[] = { "al-specific-qp-latin1.eml", "forward-base64-rfc822.eml", "qp-trailing.eml",
                                       "rfc2047-subject.eml" };
        (void) state;
        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                size_t n;
                char *raw = test_read_data(files[f], &n);
                for (size_t k = 0; k <= n; k++) {
                        MimeMessage *m = NULL;
                        char *exact = test_exact_copy(raw, k);
                        assert_int_equal(mime_parse(exact, k, NULL, &m), 0);
                        for (size_t t = 0; t < m->n_texts; t++)
                                assert_true(test_valid_utf8(m->texts[t].text, m->texts[t].len));
                        mime_message_free(m);
                        free(exact);
                }
                free(raw);
        }
}

static double cpu_seconds(void) {
        return (double) clock() / CLOCKS_PER_SEC;
}

static long max_rss_kib(void) {
        struct rusage ru;
        assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
        return ru.ru_maxrss;
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Parses a pathological message: it must end well within a generous time (libetpan alone is
 * quadratic in the depth: tens of seconds, or a stack overflow), with at most max_parts parts
 * read, the cut reported, and memory that does not follow the input. */
static void check_bounded(const char *raw, size_t n, const char *what) {
        MimeMessage *m = NULL;
        double t0 = cpu_seconds();
        long rss0 = max_rss_kib();

        assert_int_equal(mime_parse(raw, n, NULL, &m), 0);
        if (cpu_seconds() - t0 > 10.0)
                fail_msg("%s: %.1f s of CPU", what, cpu_seconds() - t0);
        assert_true(m->n_texts <= MIME_LIMITS_DEFAULT.max_parts);
        assert_true(has_warning(m, "more than 1000 MIME parts"));
#ifndef UNDER_ASAN
        /* The message is copied once, libetpan's tree holds at most max_parts entities. */
        if (max_rss_kib() - rss0 > 64 * 1024)
                fail_msg("%s: peak RSS grew by %ld KiB", what, max_rss_kib() - rss0);
#else
        (void) rss0;
#endif
        mime_message_free(m);
}

static void test_nested_multiparts(void **state) {
        StrBuf b = STRBUF_INIT(0);
        const unsigned depth = 10000;

        (void) state;
        assert_int_equal(strbuf_puts(&b, "From: deep@example.org\nSubject: deep\n"), 0);
        for (unsigned i = 0; i < depth; i++)
                assert_int_equal(strbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%u\"\n\n--b%u\n", i, i), 0);
        assert_int_equal(strbuf_puts(&b, "Content-Type: text/plain\n\ninnermost\n"), 0);
        for (unsigned i = depth; i-- > 0;)
                assert_int_equal(strbuf_printf(&b, "--b%u--\n", i), 0);
        check_bounded(b.data, b.len, "10,000 nested multiparts");
        strbuf_done(&b);
}

static void test_many_parts(void **state) {
        StrBuf b = STRBUF_INIT(0);
        const unsigned parts = 100000;

        (void) state;
        assert_int_equal(strbuf_puts(&b, "From: wide@example.org\nSubject: wide\n"
                                         "Content-Type: multipart/mixed; boundary=\"w\"\n\n"), 0);
        for (unsigned i = 0; i < parts; i++)
                assert_int_equal(strbuf_printf(&b, "--w\nContent-Type: text/plain\n\npart %u\n", i), 0);
        assert_int_equal(strbuf_puts(&b, "--w--\n"), 0);
        check_bounded(b.data, b.len, "100,000 parts");
        strbuf_done(&b);
}

static void test_limits(void **state) {
        MimeLimits lim = MIME_LIMITS_DEFAULT;
        StrBuf b = STRBUF_INIT(0);
        MimeMessage *m = NULL;
        size_t total = 0;

        (void) state;
        assert_int_equal(strbuf_puts(&b, "Subject: big\nContent-Type: multipart/mixed; boundary=\"x\"\n\n"), 0);
        for (unsigned i = 0; i < 4; i++) {
                assert_int_equal(strbuf_puts(&b, "--x\nContent-Type: text/plain\n\n"), 0);
                for (unsigned k = 0; k < 100; k++)
                        assert_int_equal(strbuf_puts(&b, "0123456789012345678901234567890123456789\n"), 0);
        }
        assert_int_equal(strbuf_puts(&b, "--x--\n"), 0);

        /* Decoded text: capped across parts. */
        lim.max_text = 6000;
        assert_int_equal(mime_parse(b.data, b.len, &lim, &m), 0);
        for (size_t i = 0; i < m->n_texts; i++)
                total += m->texts[i].len;
        assert_true(total <= lim.max_text);
        assert_true(has_warning(m, "text limit of 6000 bytes"));
        m = mime_message_free(m);

        /* Message size: only the start is read. */
        lim = MIME_LIMITS_DEFAULT;
        lim.max_message = 200;
        assert_int_equal(mime_parse(b.data, b.len, &lim, &m), 0);
        assert_true(has_warning(m, "larger than 200 bytes"));
        assert_string_equal(m->subject, "big");
        m = mime_message_free(m);
        strbuf_done(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decode_header),     cmocka_unit_test(test_decode_header_prefixes),
                cmocka_unit_test(test_decode_header_split), cmocka_unit_test(test_body_split),
                cmocka_unit_test(test_address_domain),    cmocka_unit_test(test_parse_files),
                cmocka_unit_test(test_headers),           cmocka_unit_test(test_not_mime),
                cmocka_unit_test(test_every_prefix),      cmocka_unit_test(test_nested_multiparts),
                cmocka_unit_test(test_many_parts),        cmocka_unit_test(test_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
