/* pipeline.c end to end with the shipped rules: the hand-written messages of tests/data (each
 * decoder path, every sender case), the user's own mail, every prefix of a message, the
 * explain callback, and one property over the generated test mailbox: a message from a sender no rule
 * trusts yields nothing unless it holds one of rules_search_keywords() (the IMAP backfill
 * relies on it), and rules read a message (read_by_rules) only then or from a trusted sender. */
#include <dirent.h>
#include <sys/stat.h>

#include "test-util.h"

#include "macro.h"
#include "pipeline.h"
#include "strbuf.h"
#include "strv.h"
#include "text.h"

static char *const employer[] = { "menuiseries-durand.example", NULL };
static char *const self[] = { "jeanne@menuiseries-durand.example", NULL };

static Rules *shipped_rules(void) {
        _cleanup_strv_free_ char **errors = NULL;
        char *dirs[] = { (char *) TEST_RULES_DIR, NULL };
        Rules *rules = NULL;

        assert_int_equal(rules_load(dirs, &rules, &errors), 0);
        assert_null(errors);
        return rules;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* "kind=VALUE" with '!' when untrusted, sorted, "; "-joined. */
static char *codes_of(const Message *m) {
        _cleanup_strv_free_ char **l = NULL;
        StrBuf b = STRBUF_INIT(0);

        for (size_t i = 0; i < m->n_codes; i++)
                assert_int_equal(strv_extendf(&l, "%s=%s%s", code_kind_to_string(m->codes[i].kind),
                                              m->codes[i].value ?: "-", m->codes[i].trusted ? "" : "!"), 0);
        if (l)
                qsort(l, strv_length(l), sizeof(char *), cmp_str);
        STRV_FOREACH(x, l)
                assert_true(strbuf_printf(&b, "%s%s", b.len ? "; " : "", *x) >= 0);
        assert_int_equal(strbuf_ensure(&b), 0);
        return strbuf_take(&b, NULL);
}

static Message *run_file(Pipeline *p, const char *file, const char *folder, char ***warnings) {
        MessageRef ref = { .source = (char *) file, .folder = (char *) folder };
        Message *m = NULL;
        size_t n;
        char *raw = test_read_data(file, &n);

        assert_int_equal(pipeline_run(p, raw, n, &ref, &m, warnings, NULL, NULL), 0);
        free(raw);
        assert_string_equal(m->ref.source, file);
        return m;
}

static void test_data_files(void **state) {
        static const struct {
                const char *file, *folder, *codes;
        } cases[] = {
                { "al-specific-qp-latin1.eml", "INBOX", "specific=ZQ48TK27" },
                /* The HTML part's table and the text part agree; CSS, comments, title, the footer
                 * SIRET and the tracking link yield nothing. */
                { "al-combined-html-base64.eml", "INBOX", "company=41234567800012; specific=RT58KW2" },
                { "otp-english-cp1252.eml", "INBOX", "otp=482913" },
                /* The example code of the text attachment is not read. */
                { "hr-access.eml", "INBOX", "access=HJ7K2M9P4QXW; company=51248736900021" },
                { "forward-attached.eml", "INBOX", "otp=730214!" },
                { "forward-base64-rfc822.eml", "INBOX", "specific=PX4R9T2M!" },
                { "phishing-idn.eml", "Junk", "specific=KM82QW4L!" },
                { "spoof-dmarc-fail.eml", "INBOX", "otp=551207!" },
                { "reply-to-mismatch.eml", "INBOX", "file=V2026447109!" },
                { "user-reply-quoted.eml", "INBOX", "access=HJ7K2M9P4QXW!" },
                { "al-nearmiss.eml", "INBOX", "" },
                { "other-otp.eml", "INBOX", "" },
                { "unknown-charset.eml", "INBOX", "specific=LM47PQ2D" },
                { "rfc2047-subject.eml", "INBOX", "specific=ZK41PQ7M" },
                { "not-mime.eml", "INBOX", "" },
                { "qp-trailing.eml", "INBOX", "" },
                /* The national request number, from the national portal's own domain (issue 12). */
                { "sne-attestation.eml", "INBOX", "request=0751223456789ALS01" },
                /* A Sent folder holds the user's own mail. */
                { "al-specific-qp-latin1.eml", "Sent", "specific=ZQ48TK27!" },
                { "hr-access.eml", "INBOX.Sent Items", "access=HJ7K2M9P4QXW!; company=51248736900021!" },
        };
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        pipeline_set_user_addresses(p, self);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_strv_free_ char **warnings = NULL;
                _cleanup_(message_freep) Message *m = run_file(p, cases[i].file, cases[i].folder, &warnings);
                _cleanup_free_ char *got = codes_of(m);
                if (!streq(got, cases[i].codes))
                        fail_msg("%s (%s): got '%s', expected '%s'", cases[i].file, cases[i].folder, got, cases[i].codes);
                /* Warnings never carry message content. */
                STRV_FOREACH(w, warnings)
                        for (size_t c = 0; c < m->n_codes; c++)
                                assert_null(strstr(*w, m->codes[c].value));
        }
}

/* The RFC 6154 \\Sent flag, carried in MessageRef.sent, decides over the folder's name: a
 * server that names its Sent folder is believed; one that names none leaves the name to tell. */
static void test_sent_flag(void **state) {
        static const struct {
                const char *folder;
                FolderSent sent;
                const char *codes;
        } cases[] = {
                { "Archives/2026", FOLDER_SENT_YES, "specific=ZQ48TK27!" },
                { "Sent", FOLDER_SENT_NO, "specific=ZQ48TK27" },
                { "Sent", FOLDER_SENT_UNKNOWN, "specific=ZQ48TK27!" },
                { "Envoyés", FOLDER_SENT_UNKNOWN, "specific=ZQ48TK27!" },
                { "INBOX", FOLDER_SENT_UNKNOWN, "specific=ZQ48TK27" },
        };
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        size_t n;
        _cleanup_free_ char *raw = test_read_data("al-specific-qp-latin1.eml", &n);

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MessageRef ref = { .account = (char *) "perso", .folder = (char *) cases[i].folder, .uid = 1,
                                   .uidvalidity = 1, .sent = cases[i].sent };
                _cleanup_(message_freep) Message *m = NULL;
                _cleanup_free_ char *got = NULL;

                assert_int_equal(pipeline_run(p, raw, n, &ref, &m, NULL, NULL, NULL), 0);
                assert_int_equal(m->ref.sent, cases[i].sent);
                got = codes_of(m);
                if (!streq(got, cases[i].codes))
                        fail_msg("case %zu (%s): got '%s', expected '%s'", i, cases[i].folder, got, cases[i].codes);
        }
}

/* Issue 12, end to end, on mails written here: a code cut by a quoted-printable soft break or
 * a dash at a wrapped line's end, one digit per HTML table cell, lower case kept, and the
 * safety net: a trusted sender's mail that gives a code no rule reads becomes a possible code
 * (no value), while newsletters, password mail, other senders and other administrations stay
 * quiet. */
static void test_generalised_mail(void **state) {
#define HDR(from) "From: " from "\nSubject: Votre espace\nDate: Tue, 03 Mar 2026 09:14:00 +0100\nMIME-Version: 1.0\n"
        static const struct {
                const char *raw, *codes;
        } cases[] = {
                { HDR("AL'in <notifications@mail.al-in.fr>") "Content-Type: text/plain; charset=utf-8\n"
                  "Content-Transfer-Encoding: quoted-printable\n\nVotre code sp=C3=A9cifique AL'in : W5AZ KU8D 7=\nJG2\n",
                  "specific=W5AZKU8D7JG2" },
                { HDR("AL'in <notifications@mail.al-in.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Nous vous rappelons votre code specifique, a conserver precieusement : QW7P-\nZ4KM-\n8TRA\n",
                  "specific=QW7PZ4KM8TRA" },
                { HDR("Action Logement <noreply@actionlogement.fr>") "Content-Type: text/html; charset=utf-8\n\n"
                  "<p>Votre code de connexion :</p><table><tr><td>7</td><td>3</td><td>0</td><td>9</td><td>1</td>"
                  "<td>5</td></tr></table><p>Il expire dans 10 minutes.</p>\n", "otp=730915" },
                { HDR("Action Logement <noreply@actionlogement.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Votre code sp\xc3\xa9" "cifique : r8kd-2mzq\n", "specific=r8kd2mzq" },
                /* the safety net */
                { HDR("AL'in <notifications@mail.al-in.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Votre code sp\xc3\xa9" "cifique : consultez le document joint a ce message.\n", "possible=-" },
                { HDR("RH <rh@menuiseries-durand.example>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Voici votre code pour les aides au logement, dans le fichier joint.\n", "possible=-" },
                { HDR("AL'in <notifications@mail.al-in.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Your specific code is 4471.\n", "possible=-" },
                { HDR("AL'in <notifications@mail.al-in.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Votre num\xc3\xa9ro de demande :\n\n  075-12 ALS\n", "possible=-" },
                /* mail that speaks of codes without giving one: no value, no pointer to one */
                { HDR("AL'in <notifications@mail.al-in.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Your request number is unchanged. We still need your tax notice.\n", "" },
                { HDR("Action Logement <noreply@actionlogement.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Le code entreprise est le SIRET de votre employeur : demandez-le au service RH.\n", "" },
                { HDR("Action Logement <noreply@actionlogement.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Voici comment obtenir votre code sp\xc3\xa9" "cifique : inscrivez-vous sur AL'in.\n", "" },
                { HDR("Action Logement <noreply@actionlogement.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Pour changer de mot de passe, utilisez le code que vous recevrez.\n", "" },
                { HDR("Action Logement <news@actionlogement.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Votre code : tout savoir sur vos aides.\nSe desabonner\n", "" },
                { HDR("Action Logement <noreply@actionlogement.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Action Logement ne vous demandera jamais votre code specifique par e-mail.\n", "" },
                { HDR("Ma Banque <securite@banque.example>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Votre code de verification : voir l'application.\n", "" },
                { HDR("Impots <noreply@impots.gouv.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Action Logement - numero unique : 0751226004417ALS03\n", "" },
                { HDR("Habitat Exemple <portail@habitat-exemple.fr>") "Content-Type: text/plain; charset=utf-8\n\n"
                  "Code d'acces a votre espace locataire : HB77QK21\n--\nHabitat Exemple, Groupe Action Logement\n", "" },
        };
#undef HDR
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(message_freep) Message *m = NULL;
                assert_int_equal(pipeline_run(p, cases[i].raw, strlen(cases[i].raw), NULL, &m, NULL, NULL, NULL), 0);
                _cleanup_free_ char *got = codes_of(m);
                if (!streq(got, cases[i].codes))
                        fail_msg("case %zu: got '%s', expected '%s'", i, got, cases[i].codes);
                for (size_t c = 0; c < m->n_codes; c++)
                        if (m->codes[c].kind == CODE_KIND_POSSIBLE) {
                                assert_null(m->codes[c].value);
                                assert_null(m->codes[c].display);
                                assert_true(m->codes[c].trusted);
                        }
        }
}

static void test_message_fields(void **state) {
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        _cleanup_(message_freep) Message *m = NULL;

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        m = run_file(p, "al-specific-qp-latin1.eml", "INBOX", NULL);
        assert_string_equal(m->sender, "ne-pas-repondre@actionlogement.fr");
        assert_string_equal(m->sender_name, "Action Logement");
        assert_string_equal(m->subject, "Votre code spécifique");
        assert_string_equal(m->message_id, "<t1@actionlogement.fr>");
        assert_int_equal(m->date, 1772439240);
        assert_int_equal(m->n_codes, 1);
        assert_string_equal(m->codes[0].display, "ZQ48 TK27");
        assert_string_equal(m->codes[0].value, "ZQ48TK27");
        assert_string_equal(m->codes[0].rule, "al-specific@3");
        assert_string_equal(m->ref.folder, "INBOX");
}

static void test_user_addresses(void **state) {
        static const char *raw = "From: Jeanne <jeanne@menuiseries-durand.example>\n"
                                 "Subject: Action Logement\nContent-Type: text/plain\n\n"
                                 "Mon code d'acces Action Logement : HJ7K2M9P\n";
        static const char *gmail = "X-Gmail-Labels: Opened,Sent\nFrom: RH <rh@menuiseries-durand.example>\n"
                                   "Content-Type: text/plain\n\nVotre code d'acces Action Logement : HJ7K2M9P\n";
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        Message *m = NULL;

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        /* Without the user's addresses, the employer's domain is trusted... */
        assert_int_equal(pipeline_run(p, raw, strlen(raw), NULL, &m, NULL, NULL, NULL), 0);
        assert_int_equal(m->n_codes, 1);
        assert_true(m->codes[0].trusted);
        m = message_free(m);
        /* ...but not the user's own address on it. */
        pipeline_set_user_addresses(p, self);
        assert_int_equal(pipeline_run(p, raw, strlen(raw), NULL, &m, NULL, NULL, NULL), 0);
        assert_int_equal(m->n_codes, 1);
        assert_false(m->codes[0].trusted);
        m = message_free(m);
        /* Google Takeout's Sent label. */
        assert_int_equal(pipeline_run(p, gmail, strlen(gmail), NULL, &m, NULL, NULL, NULL), 0);
        assert_int_equal(m->n_codes, 1);
        assert_false(m->codes[0].trusted);
        m = message_free(m);
}

typedef struct Seen {
        size_t accepted, rejected, skipped;
        bool subject_text;
} Seen;

static void on_verdict(const RuleVerdict *v, void *userdata) {
        Seen *s = userdata;
        if (!v->display)
                s->skipped++;
        else if (v->rejected)
                s->rejected++;
        else
                s->accepted++;
}

static void on_texts(const SenderInfo *sender, const RuleText *texts, size_t n, void *userdata) {
        Seen *s = userdata;
        assert_non_null(sender);
        for (size_t i = 0; i < n; i++)
                if (texts[i].subject)
                        s->subject_text = true;
}

static void test_explain(void **state) {
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        Seen seen = {};
        Message *m = NULL;
        size_t n;
        char *raw = test_read_data("al-combined-html-base64.eml", &n);

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        pipeline_set_text_callback(p, on_texts, &seen);
        assert_int_equal(pipeline_run(p, raw, n, NULL, &m, NULL, on_verdict, &seen), 0);
        assert_true(seen.subject_text);
        assert_true(seen.accepted >= 2);
        assert_true(seen.rejected >= 1); /* Action Logement's own SIRET */
        assert_true(seen.skipped >= 1);  /* rules not trusting al-in.fr for this kind */
        message_free(m);
        free(raw);
}

/* The whole pipeline on every prefix of a message: no crash, no read past the end. */
static void test_every_prefix(void **state) {
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        size_t n;
        char *raw = test_read_data("hr-access.eml", &n);

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        for (size_t k = 0; k <= n; k++) {
                char *exact = test_exact_copy(raw, k);
                Message *m = NULL;
                assert_int_equal(pipeline_run(p, exact, k, NULL, &m, NULL, NULL, NULL), 0);
                message_free(m);
                free(exact);
        }
        free(raw);
}

/* A mail not read whole (text past max_text, a subject past 4 KiB): pipeline_run() returns 1
 * and warns; a trusted sender's mail with no code read is kept as a possible code, an untrusted
 * one's is not. Read whole, the same mail gives its code and 0. */
static void test_not_read_whole(void **state) {
#define HEAD "From: AL'in <notifications@al-in.fr>\n" \
             "Authentication-Results: mx.example; dkim=pass header.d=al-in.fr; dmarc=pass header.from=al-in.fr\n" \
             "Subject: %s\nContent-Type: text/plain; charset=utf-8\n\n%s"
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *whole = NULL, *cut = NULL;
        MimeLimits small = MIME_LIMITS_DEFAULT;
        StrBuf body = STRBUF_INIT(0), subject = STRBUF_INIT(0);

        (void) state;
        small.max_text = 4096;
        assert_int_equal(pipeline_new(rules, employer, NULL, &whole), 0);
        assert_int_equal(pipeline_new(rules, employer, &small, &cut), 0);
        for (int i = 0; i < 100; i++)
                assert_true(strbuf_puts(&body, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n") >= 0);
        assert_true(strbuf_puts(&body, "Votre code sp\xc3\xa9\x63ifique : HJ7K 2M9P\n") >= 0);
        for (int i = 0; i < 1000; i++)
                assert_true(strbuf_puts(&subject, "Lorem ipsum ") >= 0);
        assert_true(strbuf_puts(&subject, "code HJ7K 2M9P") >= 0);

        for (int untrusted = 0; untrusted < 2; untrusted++) {
                _cleanup_free_ char *raw = NULL, *long_subject = NULL;
                _cleanup_strv_free_ char **warnings = NULL;
                Message *m = NULL;

                assert_true(asprintf(&raw, HEAD, "Votre espace AL'in", body.data) >= 0);
                assert_true(asprintf(&long_subject, HEAD, subject.data, "Bonjour.\n") >= 0);
                if (untrusted) {
                        memcpy(strstr(raw, "al-in.fr>"), "al-in.zz", 8);
                        memcpy(strstr(long_subject, "al-in.fr>"), "al-in.zz", 8);
                }

                assert_int_equal(pipeline_run(whole, raw, strlen(raw), NULL, &m, &warnings, NULL, NULL), 0);
                assert_null(warnings);
                _cleanup_free_ char *got = codes_of(m);
                assert_string_equal(got, untrusted ? "specific=HJ7K2M9P!" : "specific=HJ7K2M9P");
                m = message_free(m);

                assert_int_equal(pipeline_run(cut, raw, strlen(raw), NULL, &m, &warnings, NULL, NULL), 1);
                assert_non_null(warnings);
                assert_non_null(strstr(warnings[0], "text limit of 4096 bytes reached"));
                assert_int_equal(m->n_codes, !untrusted);
                if (!untrusted)
                        assert_true(m->codes[0].kind == CODE_KIND_POSSIBLE && m->codes[0].trusted);
                m = message_free(m);
                warnings = strv_free(warnings);

                assert_int_equal(pipeline_run(whole, long_subject, strlen(long_subject), NULL, &m, &warnings, NULL, NULL), 1);
                assert_true(strv_contains(warnings, "Subject: longer than 4096 bytes, truncated"));
                assert_int_equal(m->n_codes, !untrusted);
                if (!untrusted)
                        assert_true(m->codes[0].kind == CODE_KIND_POSSIBLE);
                m = message_free(m);
        }
        strbuf_done(&body);
        strbuf_done(&subject);
#undef HEAD
}

/* ---- keywords: a necessary condition for untrusted senders ---- */

typedef struct Capture {
        StrBuf all; /* every text the rules saw, folded, plus the sender */
        char *const *trusted_domains;
        bool trusted;  /* by a rule (their domains, the employer's) */
} Capture;

static void capture_texts(const SenderInfo *sender, const RuleText *texts, size_t n, void *userdata) {
        Capture *c = userdata;
        c->all.len = 0;
        c->trusted = sender_trusted(sender, c->trusted_domains, true);
        for (size_t i = 0; i < n; i++)
                assert_true(strbuf_append(&c->all, texts[i].text, texts[i].len) >= 0 &&
                            strbuf_putc(&c->all, '\n') >= 0);
        if (sender->name) {
                char *f = NULL;
                size_t l;
                assert_true(text_fold(sender->name, strlen(sender->name), 0, &f, &l) >= 0);
                assert_true(strbuf_printf(&c->all, "%s\n", f) >= 0);
                free(f);
        }
        if (sender->address)
                assert_true(strbuf_printf(&c->all, "%s\n", sender->address) >= 0);
        assert_int_equal(strbuf_ensure(&c->all), 0);
}

/* Whether keyword appears caseless, a space matching any blank (as the rules read them). */
static bool holds_keyword(const char *text, const char *keyword) {
        size_t kl = strlen(keyword);
        for (const char *p = text; *p; p++) {
                size_t i = 0;
                while (i < kl && p[i] && (keyword[i] == ' ' ? (p[i] == ' ' || p[i] == '\n')
                                                             : (p[i] | 0x20) == (keyword[i] | 0x20)))
                        i++;
                if (i == kl)
                        return true;
        }
        return false;
}

static size_t check_dir(Pipeline *p, const Rules *rules, Capture *c, const char *path, unsigned depth) {
        DIR *d = opendir(path);
        struct dirent *de;
        size_t checked = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                struct stat st;

                if (de->d_name[0] == '.')
                        continue;
                assert_true(asprintf(&child, "%s/%s", path, de->d_name) > 0);
                assert_int_equal(stat(child, &st), 0);
                if (S_ISDIR(st.st_mode) && depth < 4) {
                        checked += check_dir(p, rules, c, child, depth + 1);
                        continue;
                }
                if (!endswith(de->d_name, ".eml"))
                        continue;
                FILE *f = fopen(child, "re");
                assert_non_null(f);
                char *raw = malloc((size_t) st.st_size + 1);
                assert_non_null(raw);
                assert_int_equal(fread(raw, 1, (size_t) st.st_size, f), (size_t) st.st_size);
                fclose(f);
                Message *m = NULL;
                assert_int_equal(pipeline_run(p, raw, (size_t) st.st_size, NULL, &m, NULL, NULL, NULL), 0);
                bool untrusted = false, keyword = false;
                for (size_t i = 0; i < m->n_codes; i++)
                        untrusted = untrusted || !m->codes[i].trusted;
                STRV_FOREACH(k, rules_search_keywords(rules))
                        keyword = keyword || holds_keyword(c->all.data, *k);
                if (untrusted && !keyword)
                        fail_msg("%s: untrusted code found without any keyword", child);
                /* What the IMAP backfill reads an HTML alternative again for: every message
                 * that gave a code, and none from an untrusted sender without a keyword. */
                if (m->n_codes > 0 && !m->read_by_rules)
                        fail_msg("%s: a code, but read_by_rules is false", child);
                if (m->read_by_rules && !keyword && !c->trusted)
                        fail_msg("%s: read_by_rules without a keyword or a trusted sender", child);
                checked++;
                message_free(m);
                free(raw);
        }
        closedir(d);
        return checked;
}

static void test_keywords_necessary(void **state) {
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        Capture c = { .all = STRBUF_INIT(0), .trusted_domains = rules_trusted_domains(rules) };
        char path[1024];
        struct stat st;

        (void) state;
        /* The test mailbox tests/tools/mkmail.py writes into the build tree (tests/CMakeLists.txt). */
        (void) snprintf(path, sizeof path, "%s/sample", TEST_CORPUS_DIR);
        if (stat(path, &st) < 0)
                fail_msg("no generated test mailbox at %s: build the test-corpus target", path);
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        pipeline_set_text_callback(p, capture_texts, &c);
        assert_true(check_dir(p, rules, &c, path, 0) > 1000);
        /* The hand-written ones too. */
        assert_true(check_dir(p, rules, &c, TEST_DATA_DIR, 0) > 10);
        strbuf_done(&c.all);
}

/* pipeline_set_distrust(): alcode scan's way to say "this text was inside another message". */
static void test_distrust(void **state) {
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        const char *expect[] = { "specific=ZQ48TK27!", "specific=ZQ48TK27" };

        (void) state;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        for (size_t i = 0; i < ELEMENTSOF(expect); i++) {
                pipeline_set_distrust(p, i == 0 ? "inside another message" : NULL);
                _cleanup_(message_freep) Message *m = run_file(p, "al-specific-qp-latin1.eml", "INBOX", NULL);
                _cleanup_free_ char *got = codes_of(m);
                assert_string_equal(got, expect[i]);
        }
}

/* A message whose HTML alternative imap_fetch_parts() left out (MessageRef.left_out): when it
 * must be read again with it (wants_left_out), and when not. */
static void test_wants_left_out(void **state) {
        static const char plain[] = "Bonjour,\r\nVoici les nouvelles de la semaine, en bref, pour ceux qui lisent en texte "
                                    "et qui aiment les nouvelles de la semaine en bref et en texte seulement.\r\n"
                                    "Bonne semaine a toutes et a tous, et a la semaine prochaine pour d'autres nouvelles.\r\n"
                                    "Au programme : le marche du samedi, la fete de l'ecole et les horaires d'ete.\r\n";
        static const struct {
                const char *head, *extra_plain;
                bool want;
        } cases[] = {
                { "From: Le Journal <news@journal.example>\r\nSubject: Les nouvelles\r\n", "", false },
                /* A rule reads it: a trusted sender, a brand word in the subject or the text. */
                { "From: AL'in <notifications@al-in.fr>\r\nSubject: Les nouvelles\r\n", "", true },
                { "From: Le Journal <news@journal.example>\r\nSubject: Visale et vous\r\n", "", true },
                { "From: Le Journal <news@journal.example>\r\nSubject: Les nouvelles\r\n", "Action Logement vous aide.\r\n", true },
                /* The brand only in an address: the rules read the text without it. */
                { "From: Le Journal <news@journal.example>\r\nSubject: Les nouvelles\r\n", "www.actionlogement.fr/suivi\r\n", true },
                { "From: Le Journal <news@journal.example>\r\nSubject: Les nouvelles\r\n", "De : ne-pas-repondre@actionlogement.fr\r\n", true },
                /* The sender claims a trusted or employer domain, or imitates one. */
                { "From: RH <rh@menuiseries-durand.example>\r\nAuthentication-Results: mx.example; dmarc=fail "
                  "header.from=menuiseries-durand.example\r\nSubject: Les nouvelles\r\n", "", true },
                { "From: Service <noreply@\xd0\xb0" "ctionlogement.fr>\r\nSubject: Les nouvelles\r\n", "", true },
        };

        (void) state;
        _cleanup_(rules_freep) Rules *rules = shipped_rules();
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        assert_int_equal(pipeline_new(rules, employer, NULL, &p), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                for (int left_out = 0; left_out <= 1; left_out++) {
                        _cleanup_free_ char *raw = NULL;
                        _cleanup_(message_freep) Message *m = NULL;
                        MessageRef ref = { .left_out = left_out };

                        assert_true(asprintf(&raw, "%sMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n"
                                                   "--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s%s\r\n"
                                                   "--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\r\n--a--\r\n",
                                             cases[i].head, plain, cases[i].extra_plain) > 0);
                        print_message("case %zu, left out: %d\n", i, left_out);
                        assert_int_equal(pipeline_run(p, raw, strlen(raw), &ref, &m, NULL, NULL, NULL), 0);
                        assert_int_equal(m->wants_left_out, left_out && cases[i].want);
                }
        /* A plain text too short to say it all (a stub, or one that does not decode). */
        _cleanup_(message_freep) Message *m = NULL;
        const char *stub = "From: Le Journal <news@journal.example>\r\nSubject: Les nouvelles\r\nMIME-Version: 1.0\r\n"
                           "Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/plain\r\n"
                           "Content-Transfer-Encoding: base64\r\n\r\n%%%% not base64 %%%%\r\n--a\r\nContent-Type: text/html\r\n\r\n\r\n--a--\r\n";
        assert_int_equal(pipeline_run(p, stub, strlen(stub), &(MessageRef) { .left_out = true }, &m, NULL, NULL, NULL), 0);
        assert_true(m->wants_left_out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_data_files),
                cmocka_unit_test(test_sent_flag),     cmocka_unit_test(test_message_fields),
                cmocka_unit_test(test_distrust),
                cmocka_unit_test(test_generalised_mail),
                cmocka_unit_test(test_user_addresses), cmocka_unit_test(test_explain),
                cmocka_unit_test(test_every_prefix),   cmocka_unit_test(test_keywords_necessary),
                cmocka_unit_test(test_not_read_whole), cmocka_unit_test(test_wants_left_out),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
