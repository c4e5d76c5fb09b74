/* rules.c: rule files (every error with file:line:column, drop-in replacement, the keyword
 * list), then the shipped pack in config/rules.d/ on wordings written here, in French and
 * English, each kind, its traps (phone numbers, dates, amounts, footers, negations, the SIRET
 * given as a personal code) and the trust of each code. */
#include <sys/stat.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#include "test-util.h"

#include "macro.h"
#include "rules.h"
#include "strbuf.h"
#include "strv.h"
#include "text.h"

static char dir[] = "/tmp/alcode-test-rules-XXXXXX";

DEFINE_TEST_TMPDIR(dir)

/* dir/sub/name with text; returns its path. */
static char *write_file(const char *sub, const char *name, const char *text) {
        _cleanup_free_ char *d = NULL;

        assert_true(asprintf(&d, "%s/%s", dir, sub) > 0);
        return test_write_file(d, name, text);
}

/* Loads text as the one rule file dir/sub/t.rules; its errors go to *errors. */
static Rules *load_text(const char *sub, const char *text, char ***errors) {
        _cleanup_free_ char *path = write_file(sub, "t.rules", text);
        char *files[2] = { path, NULL };
        Rules *rules = NULL;

        assert_int_equal(rules_load_files(files, &rules, errors), 0);
        return rules;
}

#define GOOD_RULE "[rule good]\nkind = otp\nsenders = example.org\npattern = code (?<code>\\d+)\n"

static void test_errors(void **state) {
        static const struct {
                const char *text, *error; /* error: what follows "path:" */
        } cases[] = {
                { "[rules]\nversion = x\n", "2:11: expected a positive version number, got 'x'" },
                { "[rules]\nfoo = 1\n", "2: unknown key 'foo' in [rules]" },
                { "[nope]\nk = v\n", "2: unknown section [nope] (expected [rules], [define] or [rule NAME])" },
                { "[define]\nlower = x\n", "2: define names are upper case: 'lower'" },
                { "[rule a]\nkind = secret\n", "2:8: unknown kind 'secret' (expected specific, company, access, otp, request or file)" },
                { "[rule a]\nkind = otp\nsenders = exa mple.org\n", "3:11: invalid domain 'exa mple.org'" },
                /* One domain validator with alcode.conf and alcode init: two labels at least, no
                 * hyphen at either end of a label. */
                { "[rule a]\nkind = otp\nsenders = localhost\n", "3:11: invalid domain 'localhost'" },
                { "[rule a]\nkind = otp\nsenders = example.org, al-.fr\n", "3:11: invalid domain 'al-.fr'" },
                { "[rule a]\nkind = otp\nlength = 9-3\n", "3:10: expected a length range like 6-16, got '9-3'" },
                { "[rule a]\nkind = otp\ncheck = luhn\n", "3:9: unknown check 'luhn' (expected none, siret or not-siret)" },
                { "[rule a]\nkind = otp\nwhere = header\n", "3:9: unknown place 'header' (expected subject, body)" },
                { "[rule a]\nkind = otp\nkeywords = ab\n", "3:12: keyword 'ab' is shorter than 3 characters" },
                { "[rule a]\nkind = otp\nbogus = 1\n", "3: unknown key 'bogus' in [rule a]" },
                { "[rule a]\nkind = otp\nsenders = example.org\n", "1: rule 'a' has no pattern" },
                { "[rule a]\nsenders = example.org\npattern = (?<code>x)\n", "1: rule 'a' has no kind" },
                { "[rule a]\nkind = otp\npattern = (?<code>x)\n", "1: rule 'a' needs senders, employer = yes or a brand pattern" },
                { "[rule a]\nkind = otp\nbrand = x\npattern = (?<code>x)\n", "1: rule 'a' reads other senders' mail (brand) but has no keywords" },
                /* PCRE2 errors point at the character, across joined lines and fragments. */
                { "[rule a]\nkind = otp\nsenders = example.org\npattern = code (?<code>\\d+\n", "4:27: missing closing parenthesis" },
                { "[rule a]\nkind = otp\nsenders = example.org\npattern = code\n    (?<code>[z-a])\n", "5:16: range out of order in character class" },
                { "[define]\nV = [z-a]\n[rule a]\nkind = otp\nsenders = example.org\npattern = x(?<code>{V})\n", "2:8: range out of order in character class" },
                { "[rule a]\nkind = otp\nsenders = example.org\npattern = x(?<code>{NOPE})\n", "4:20: unknown fragment {NOPE} (not in [define])" },
                { "[define]\nA = {B}\nB = {A}\n[rule a]\nkind = otp\nsenders = example.org\npattern = (?<code>{A})\n", "refers to itself" },
                { "[define]\nA = x{A}\n[rule a]\nkind = otp\nsenders = example.org\npattern = (?<code>{A})\n", "2:6: fragment {A} refers to itself" },
                /* Deep but not circular: said as such, not as a loop. */
                { "[define]\nA = {B}\nB = {C}\nC = {D}\nD = {E}\nE = {F}\nF = {G}\nG = {H}\nH = {I}\nI = x\n"
                  "[rule a]\nkind = otp\nsenders = example.org\npattern = (?<code>{A})\n",
                  "9:5: fragment {I} nested more than 8 levels deep" },
                { "[rule a]\nkind = otp\nsenders = example.org\npattern = code (\\d+)\n", "4:11: pattern has no (?<code>...) group" },
                { "[rule a]\nkind = otp\nsenders = example.org\npattern = x\n  y\nkeywords = abc\n  def\nkind2 = 1\n", "8: unknown key 'kind2' in [rule a]" },
                { "[rule a]\nkind = otp\n  more\n", "3: only patterns, defines and lists may continue on the next line" },
                { "[rule bad name]\nkind = otp\n", "1: invalid or duplicate rule name 'bad name'" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL, *path = NULL;
                _cleanup_strv_free_ char **errors = NULL;
                _cleanup_(rules_freep) Rules *rules = NULL;
                char *files[2] = { NULL, NULL };
                bool found = false;

                /* A good rule after the bad one still loads. */
                assert_true(asprintf(&text, "%s%s", cases[i].text, GOOD_RULE) > 0);
                path = write_file("errors", "t.rules", text);
                files[0] = path;
                assert_int_equal(rules_load_files(files, &rules, &errors), 0);
                STRV_FOREACH(e, errors) {
                        const char *rest = startswith(*e, path);
                        assert_non_null(rest);
                        if (rest[0] == ':' && strstr(rest + 1, cases[i].error) &&
                            (strstr(cases[i].error, "refers") || streq(rest + 1, cases[i].error)))
                                found = true;
                }
                if (!found) {
                        char *all = NULL;
                        STRV_FOREACH(e, errors)
                                (void) (asprintf(&all, "%s\n%s", strempty(all), *e) > 0);
                        fail_msg("case %zu: expected '%s', got:%s", i, cases[i].error, strna(all));
                }
                assert_true(rules_count(rules) >= 1);
        }
}

/* An internationalised sender domain is kept as mail carries it: its xn-- A-label. */
static void test_idn_sender(void **state) {
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_(rules_freep) Rules *rules = NULL;

        (void) state;
        rules = load_text("idn", "[rule a]\nkind = otp\nsenders = Exämple.FR, xn--exmple-cua.fr\n"
                                 "pattern = code (?<code>\\d+)\n", &errors);
        assert_null(errors);
        assert_int_equal(rules_count(rules), 1);
        assert_int_equal(strv_length((char **) rules_trusted_domains(rules)), 1);
        assert_string_equal(rules_trusted_domains(rules)[0], "xn--exmple-cua.fr");
}

static void test_load_dirs(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *shipped = NULL, *user = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_(rules_freep) Rules *rules = NULL;

        (void) state;
        a = write_file("shipped", "otp.rules", "[rules]\nversion = 3\n[rule x]\nkind = otp\nsenders = a.example\n"
                                              "brand = brand\nkeywords = Brand, Spécial\npattern = (?<code>\\d{6})\n");
        b = write_file("shipped", "file.rules", "[rule y]\nkind = file\nsenders = b.example\npattern = (?<code>\\d{6})\n");
        c = write_file("user", "otp.rules", "[rule z]\nkind = otp\nsenders = c.example, a.example\npattern = (?<code>\\d{6})\n");
        assert_true(asprintf(&shipped, "%s/shipped", dir) > 0);
        assert_true(asprintf(&user, "%s/user", dir) > 0);

        /* The user's otp.rules replaces the shipped one; a missing folder is no error. */
        char *dirs[] = { shipped, user, (char *) "/nonexistent/rules.d", NULL };
        assert_int_equal(rules_load(dirs, &rules, &errors), 0);
        assert_null(errors);
        assert_int_equal(rules_count(rules), 2);
        assert_true(strv_contains(rules_trusted_domains(rules), "b.example"));
        assert_true(strv_contains(rules_trusted_domains(rules), "c.example"));
        assert_true(strv_contains(rules_trusted_domains(rules), "a.example"));
        assert_null(rules_search_keywords(rules)[0]);
        rules = rules_free(rules);

        /* Keywords: folded (accents, case) as the text is. */
        char *shipped_only[] = { shipped, NULL };
        assert_int_equal(rules_load(shipped_only, &rules, &errors), 0);
        assert_true(strv_contains(rules_search_keywords(rules), "brand"));
        assert_true(strv_contains(rules_search_keywords(rules), "special"));
#ifdef RUNNING_ON_VALGRIND
        if (!RUNNING_ON_VALGRIND) /* valgrind gets the interpreter (see rules.c) */
#endif
                assert_true(rules_jit(rules));
}

/* ---- the shipped pack ---- */

typedef enum Who { AL, VISALE, EMPLOYER, PROVIDER, OTHER, LOOKALIKE, SPOOF, SNE, LANDLORD, GOUV } Who;

static SenderInfo sender_of(Who who) {
        switch (who) {
        case AL: return (SenderInfo) { .address = "ne-pas-repondre@actionlogement.fr", .domain = "actionlogement.fr", .name = "Action Logement" };
        case VISALE: return (SenderInfo) { .address = "contact@visale.fr", .domain = "visale.fr", .name = "Visale" };
        case EMPLOYER: return (SenderInfo) { .address = "rh@employeur.example", .domain = "employeur.example", .name = "DRH", .employer = true };
        case PROVIDER: return (SenderInfo) { .address = "no-reply@paie.example", .domain = "paie.example", .name = "Paie en ligne" };
        case OTHER: return (SenderInfo) { .address = "securite@banque.example", .domain = "banque.example", .name = "Ma Banque" };
        case LOOKALIKE: return (SenderInfo) { .address = "support@actionlogement-fr.example", .domain = "actionlogement-fr.example", .name = "Action Logement", .lookalike = true };
        case SPOOF: return (SenderInfo) { .address = "noreply@al-in.fr", .domain = "al-in.fr", .name = "AL'in", .auth_failed = true };
        case SNE: return (SenderInfo) { .address = "ne-pas-repondre@demande-logement-social.gouv.fr", .domain = "demande-logement-social.gouv.fr", .name = "Demande de logement social" };
        case LANDLORD: return (SenderInfo) { .address = "portail@habitat-exemple.fr", .domain = "habitat-exemple.fr", .name = "Habitat Exemple" };
        case GOUV: return (SenderInfo) { .address = "noreply@impots.gouv.fr", .domain = "impots.gouv.fr", .name = "Impots" };
        }
        return (SenderInfo) {};
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Runs the pack on a subject and a body; returns the codes as "kind=VALUE(display)", with '!'
 * for untrusted ones, sorted and joined by "; ". */
static char *run(const Rules *rules, Who who, const char *subject, const char *body, bool quoted) {
        _cleanup_(rule_matcher_freep) RuleMatcher *m = NULL;
        _cleanup_(message_freep) Message *msg = calloc(1, sizeof(Message));
        SenderInfo s = sender_of(who);
        RuleText texts[2];
        char *folded[2] = {};
        size_t n = 0, l;
        StrBuf out = STRBUF_INIT(0);
        char **lines = NULL;

        assert_non_null(msg);
        assert_int_equal(rule_matcher_new(&m), 0);
        if (subject) {
                assert_true(text_fold(subject, strlen(subject), 0, &folded[n], &l) >= 0);
                texts[n] = (RuleText) { .text = folded[n], .len = l, .subject = true };
                n++;
        }
        assert_true(text_fold(body, strlen(body), 0, &folded[n], &l) >= 0);
        l = text_remove_links(folded[n], l);
        texts[n] = (RuleText) { .text = folded[n], .len = l, .quoted = quoted };
        n++;
        assert_true(rules_match(rules, m, texts, n, &s, msg, NULL, NULL, NULL) >= 0);
        for (size_t i = 0; i < msg->n_codes; i++)
                assert_int_equal(strv_extendf(&lines, "%s=%s(%s)%s", code_kind_to_string(msg->codes[i].kind),
                                              msg->codes[i].value, msg->codes[i].display,
                                              msg->codes[i].trusted ? "" : "!"), 0);
        if (lines)
                qsort(lines, strv_length(lines), sizeof(char *), cmp_str);
        STRV_FOREACH(x, lines)
                assert_true(strbuf_printf(&out, "%s%s", out.len ? "; " : "", *x) >= 0);
        assert_int_equal(strbuf_ensure(&out), 0);
        strv_free(lines);
        free(folded[0]);
        free(folded[1]);
        return strbuf_take(&out, NULL);
}

static Rules *shipped_rules(void) {
        _cleanup_strv_free_ char **errors = NULL;
        char *dirs[] = { (char *) TEST_RULES_DIR, NULL };
        Rules *rules = NULL;

        assert_int_equal(rules_load(dirs, &rules, &errors), 0);
        if (errors)
                fail_msg("shipped rules: %s", errors[0]);
        assert_true(rules_count(rules) >= 6);
        return rules;
}

/* Mail written here, and what the shipped pack must read in it. */
typedef struct RuleCase {
        Who who;
        const char *subject, *body;
        const char *expected; /* "kind=value(display); ...", "" for nothing; '!' ends an untrusted one */
} RuleCase;

static void assert_rule_cases(const Rules *rules, const RuleCase *cases, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *got = run(rules, cases[i].who, cases[i].subject, cases[i].body, false);
                if (!streq(got, cases[i].expected))
                        fail_msg("case %zu: '%s'\n  got      '%s'\n  expected '%s'", i, cases[i].body, got,
                                 cases[i].expected);
        }
}

static void test_shipped_pack(void **state) {
        static const RuleCase cases[] = {
                /* specific */
                { AL, NULL, "Votre code spécifique est le suivant : 7K2M 9QXD", "specific=7K2M9QXD(7K2M 9QXD)" },
                { AL, NULL, "CODE SPÉCIFIQUE\n\n4821 7730\n\nGardez-le.", "specific=48217730(4821 7730)" },
                { AL, NULL, "Your specific code: AB12-CD34.", "specific=AB12CD34(AB12-CD34)" },
                { AL, NULL, "Voici votre code spécifique (AL’in) : « Q7W2E9R4 »", "specific=Q7W2E9R4(Q7W2E9R4)" },
                { AL, NULL, "Code spécifique\tR2D2C3PO", "specific=R2D2C3PO(R2D2C3PO)" },
                { AL, NULL, "ZK41PQ7M est votre code spécifique.", "specific=ZK41PQ7M(ZK41PQ7M)" },
                { AL, NULL, "Votre code sp\xc3\xa9\xe2\x80\x8b" "cifique\xc2\xa0: X\xe2\x80\x8b" "9\xe2\x80\x8bK4 2LM", "specific=X9K42LM(X9K4 2LM)" },
                { AL, NULL, "Votre code spécifique : 4 8 2 1 7 7 3 0", "specific=48217730(4 8 2 1 7 7 3 0)" },
                { AL, NULL, "VOTRE CODE SPECIFIQUE EST GH52KL90", "specific=GH52KL90(GH52KL90)" },
                { AL, NULL, "Code spécifique n° 31807724, à conserver.", "specific=31807724(31807724)" },
                { AL, NULL, "Le code spécifique qui vous a été attribué est le 5KD8 2QPN.", "specific=5KD82QPN(5KD8 2QPN)" },
                { AL, NULL, "Code spécifique (à transmettre à votre bailleur) :\n« W7RT 44KP »", "specific=W7RT44KP(W7RT 44KP)" },
                /* ... never a SIRET, never after a negation; nothing from labels without value */
                { AL, NULL, "Code spécifique : 412 345 678 00012", "company=41234567800012(412 345 678 00012)" },
                { AL, NULL, "Attention, ce n'est pas votre code spécifique : c'est le code entreprise ENT55A21.",
                  "company=ENT55A21(ENT55A21)" },
                { AL, NULL, "Votre code spécifique vous sera communiqué par votre employeur.\nNe confondez pas ce "
                            "code avec le code entreprise (SIRET). Rappel : 2026 sera l'année du changement.", "" },
                { AL, NULL, "Code spécifique : envoyé par SMS au 06 12 34 56 78", "" },
                { AL, NULL, "Code spécifique valable jusqu'au 12-03-2027.", "" },
                { AL, NULL, "Votre code spécifique est valable 12 mois et coûte 0 €.", "" },
                /* company */
                { EMPLOYER, NULL, "Bonjour, le code entreprise à saisir pour Action Logement : 51248736900021", "company=51248736900021(51248736900021)" },
                { EMPLOYER, NULL, "SIRET de votre employeur : 512 487 369 00021", "company=51248736900021(512 487 369 00021)" },
                { EMPLOYER, NULL, "Company code: ACME-77, for Action Logement.", "company=ACME77(ACME-77)" },
                { EMPLOYER, NULL, "Code entreprise : 512 487 369 00022", "" }, /* Luhn */
                { EMPLOYER, NULL, "Le SIREN de l'entreprise (code entreprise) : 552 100 554", "company=552100554(552 100 554)" },
                { AL, NULL, "Code spécifique : voir le SMS envoyé au +33 6 12 34 56 78", "" },
                { AL, NULL, "Action Logement Services - SAS au capital de 20 000 000 EUR - RCS Paris 824 541 148 - SIRET 824 541 148 00014", "" },
                { AL, NULL, "N° SIRET :\n824 541 148 00014", "" },
                { AL, NULL, "Mentions légales - SIRET 512 487 369 00021 - siège social : Paris", "" },
                { OTHER, NULL, "Code entreprise : 51248736900021", "" },
                /* access */
                { EMPLOYER, NULL, "Votre code d'accès Action Logement : HJ7K2M9P", "access=HJ7K2M9P(HJ7K2M9P)" },
                { EMPLOYER, "Action Logement", "Your digital access code is A7B8C9D0E1.", "access=A7B8C9D0E1(A7B8C9D0E1)" },
                { EMPLOYER, NULL, "Code d'accès Wi-Fi invités : WIFI2026", "" },
                { PROVIDER, NULL, "Clé d’accès dématérialisée Action Logement : HJ7K-2M9P", "access=HJ7K2M9P(HJ7K-2M9P)!" },
                { EMPLOYER, NULL, "Je n'ai pas reçu mon code d'accès Action Logement (matricule 467888).", "" },
                { EMPLOYER, NULL, "Action Logement : ce n'est pas votre code d'accès, 3 étapes", "" },
                /* otp */
                { AL, NULL, "Saisissez ce code de vérification : 481 093. Il expire dans 15 minutes.", "otp=481093(481 093)" },
                { AL, NULL, "Use 513920 to sign in to your account.", "otp=513920(513920)" },
                { AL, NULL, "Your verification code is 772016", "otp=772016(772016)" },
                { AL, NULL, "[116035] est votre code de connexion", "otp=116035(116035)" },
                { AL, "Votre code de connexion : 664 201", "Il figure dans l'objet.", "otp=664201(664 201)" },
                { AL, NULL, "Votre code : K7P-2QX, valable 10 minutes.", "otp=K7P2QX(K7P-2QX)" },
                { AL, NULL, "Votre code : K7P-2QX", "" }, /* says nothing of its kind */
                { AL, NULL, "Code de connexion demandé à 14:32 le 02/03/2026.", "" },
                { OTHER, NULL, "Code de vérification : 902114", "" },
                { LOOKALIKE, NULL, "Action Logement : votre code de sécurité 330811", "otp=330811(330811)!" },
                { SPOOF, NULL, "AL'in : votre code de vérification est 552 817", "otp=552817(552 817)!" },
                /* request */
                { AL, NULL, "Numéro unique départemental : 0751124812345ALS01", "request=0751124812345ALS01(0751124812345ALS01)" },
                { AL, NULL, "Votre demande n° 0691225000123GDPUB a été enregistrée.", "request=0691225000123GDPUB(0691225000123GDPUB)" },
                { AL, NULL, "Application number: 069 122 500 0123 GDPUB", "request=0691225000123GDPUB(069 122 500 0123 GDPUB)" },
                { AL, NULL, "Numéro de demande : 2026-001", "" },
                { AL, NULL, "N° unique : 0931226000456ALS02", "request=0931226000456ALS02(0931226000456ALS02)" },
                /* file */
                { AL, NULL, "Dossier n° MJ-2026-004512 reçu.", "file=MJ2026004512(MJ-2026-004512)" },
                { VISALE, NULL, "Numéro de visa : V123456789", "file=V123456789(V123456789)" },
                { AL, NULL, "Référence à rappeler : LP 2026 77 1045", "file=LP2026771045(LP 2026 77 1045)" },
                { AL, NULL, "Numéro de dossier : 1 200,00 € remboursables", "" },
                { AL, NULL, "Numéro de dossier : 381,40 EUR", "" },
                { AL, NULL, "Numéro de dossier : appelez le 0970 800 800.", "" },
                { AL, NULL, "Numéro de dossier : 2026-03-12", "" },
                { AL, NULL, "Code spécifique :\n75013 PARIS", "" },
                /* several kinds in one message */
                { AL, NULL, "Code entreprise : ENT7Q2\nCode spécifique : 9XK2 4PLM\nNuméro de dossier : MJ 2026 00451",
                  "company=ENT7Q2(ENT7Q2); file=MJ202600451(MJ 2026 00451); specific=9XK24PLM(9XK2 4PLM)" },
                { AL, NULL, "Code entreprise : ENT7Q2 Code spécifique : 9XK2 4PLM", "company=ENT7Q2(ENT7Q2); specific=9XK24PLM(9XK2 4PLM)" },
                /* links and addresses are not read */
                { AL, NULL, "Votre code spécifique : https://www.al-in.fr/c?code=AB12CD34 ou bounce-620881@al-in.fr", "" },
                /* a code from a trusted sender's quoted text is untrusted */
        };
        _cleanup_(rules_freep) Rules *rules = shipped_rules();

        (void) state;
        assert_rule_cases(rules, cases, ELEMENTSOF(cases));
        _cleanup_free_ char *q = run(rules, AL, NULL, "Code spécifique : 9XK2 4PLM", true);
        assert_string_equal(q, "specific=9XK24PLM(9XK2 4PLM)!");
}

/* A file over the per-file limit says so once and keeps the rules before it; a duplicate name
 * is found among many (by a hash table now: the linear search made loading quadratic); rules
 * sharing a keyword or a sender domain share one entry. */
static void test_many_rules(void **state) {
        _cleanup_free_ char *path = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_(rules_freep) Rules *rules = NULL;
        char *files[2] = { NULL, NULL };
        FILE *f;
        size_t limit = 0, dup = 0;
        char *text = NULL;
        size_t size = 0;

        (void) state;
        f = open_memstream(&text, &size);
        assert_non_null(f);
        for (unsigned i = 0; i < 5000; i++) {
                fprintf(f, "[rule r%u]\nkind = otp\nsenders = d%u.example.org, shared.example.org\n"
                           "keywords = word%u, commun\npattern = code (?<code>\\d{6})\n", i, i % 7, i % 5);
                if (i == 200)
                        fprintf(f, "[rule r17]\nkind = otp\n");
        }
        assert_int_equal(fclose(f), 0);
        path = write_file("many", "many.rules", text);
        free(text);
        files[0] = path;
        assert_int_equal(rules_load_files(files, &rules, &errors), 0);
        STRV_FOREACH(e, errors) {
                if (strstr(*e, "more than 256 rules in one file"))
                        limit++;
                else if (strstr(*e, "invalid or duplicate rule name 'r17'"))
                        dup++;
                else
                        fail_msg("unexpected error: %s", *e);
        }
        assert_int_equal(limit, 1);
        assert_int_equal(dup, 1);
        assert_int_equal(rules_count(rules), 256);
        assert_int_equal(strv_length(rules_trusted_domains(rules)), 8);
        assert_int_equal(strv_length(rules_search_keywords(rules)), 6);

        /* One rule's list is bounded too: each item is compared with those before it. */
        {
                _cleanup_free_ char *p2 = NULL;
                _cleanup_strv_free_ char **errors2 = NULL;
                _cleanup_(rules_freep) Rules *rules2 = NULL;
                bool said = false;

                f = open_memstream(&text, &size);
                assert_non_null(f);
                fputs("[rule big]\nkind = otp\nsenders = example.org\npattern = (?<code>\\d{6})\nkeywords = kw0", f);
                for (unsigned i = 1; i < 1100; i++)
                        fprintf(f, "\n    , kw%u", i);
                fputs("\n", f);
                assert_int_equal(fclose(f), 0);
                p2 = write_file("many", "big.rules", text);
                free(text);
                files[0] = p2;
                assert_int_equal(rules_load_files(files, &rules2, &errors2), 0);
                STRV_FOREACH(e, errors2)
                        said = said || strstr(*e, "more than 1024 keywords in one rule");
                assert_true(said);
        }
}

/* The classes of issue 12, each on wordings written here (not the sample corpus): subject
 * references, grouped and wrapped codes, lower and mixed case, login-code layouts, product
 * numbers, the national request number, HR's code specifique, negative wording, a brand in a
 * landlord's footer. */
static void test_generalised(void **state) {
        static const RuleCase cases[] = {
                /* the code in the subject, the body pointing to it */
                { AL, "[Q4TZ8MW2] - votre code spécifique AL'in", "Bonjour,\nvous trouverez le code mentionné dans l'objet de ce message.",
                  "specific=Q4TZ8MW2(Q4TZ8MW2)" },
                { AL, "AL'in : 905 113", "Pour vous connecter, saisissez le code figurant en objet.", "otp=905113(905 113)" },
                { AL, "AL'in : 71650392", "(Votre code spécifique est indiqué en objet.)", "specific=71650392(71650392)" },
                { AL, "AL'in - K2P9W7QD", "Reprenez l'inscription avec le code figurant en objet.", "specific=K2P9W7QD(K2P9W7QD)" },
                { AL, "Dossier 7731 0042 55 : pièces reçues", "Bonjour, nous avons reçu vos justificatifs.", "file=7731004255(7731 0042 55)" },
                { AL, "Action Logement : 377201", "Merci de votre visite.", "" }, /* no pointer: not read */
                { OTHER, "[Q4TZ8MW2]", "Le code est dans l'objet.", "" },
                /* grouped and wrapped */
                { AL, NULL, "Votre code spécifique : HT6P 2WQA 9KD3", "specific=HT6P2WQA9KD3(HT6P 2WQA 9KD3)" },
                { AL, NULL, "Vous pourrez désormais utiliser votre code spécifique RX3K-PL8V-\n4TM2 auprès de votre bailleur.",
                  "specific=RX3KPL8V4TM2(RX3K-PL8V-4TM2)" },
                /* lower and mixed case: kept as written */
                { AL, NULL, "Votre code spécifique : m4q8-zt2x", "specific=m4q8zt2x(m4q8-zt2x)" },
                { AL, NULL, "Code de connexion à usage unique : hx72pk9", "otp=hx72pk9(hx72pk9)" },
                { AL, NULL, "Votre code spécifique : Pq7T 3Xv9", "specific=Pq7T3Xv9(Pq7T 3Xv9)" },
                { EMPLOYER, NULL, "Votre code d'accès Action Logement (respectez les minuscules) :\nh8Kw tZqR 4mPx", "access=h8KwtZqR4mPx(h8Kw tZqR 4mPx)" },
                { EMPLOYER, NULL, "Code d'accès Action Logement …… Merci 4", "" },
                { EMPLOYER, NULL, "Code d'accès Action Logement : QWRT bvXz 7K2P", "access=QWRTbvXz7K2P(QWRT bvXz 7K2P)" },
                { EMPLOYER, NULL, "Code d'accès Action Logement : 9fTr-KWmn-Lobe-x4Qa", "access=9fTrKWmnLobex4Qa(9fTr-KWmn-Lobe-x4Qa)" },
                { EMPLOYER, NULL, "Code d'accès Action Logement : 9fTr2K Merci.", "access=9fTr2K(9fTr2K)" },
                /* an access code by its shape, in an employer's mail whose words no label knows */
                { EMPLOYER, NULL, "Bienvenue ! Pour les aides au logement, votre sésame personnel\n\nQX4T 8NVR 2KLM", "access=QX4T8NVR2KLM(QX4T 8NVR 2KLM)" },
                { EMPLOYER, NULL, "Your housing benefits login code 8R8W VUMJ QLZK", "access=8R8WVUMJQLZK(8R8W VUMJ QLZK)" },
                { EMPLOYER, NULL, "Code d'accès au parking : PK7744AB", "" },
                { EMPLOYER, NULL, "Action Logement, SIRET à jour\nSIRET actuel ..... 512 487 369 00021\nAncien SIRET ..... 552 100 554 00013",
                  "company=51248736900021(512 487 369 00021)" },
                { AL, NULL, "Numéro de dossier ........ MJ 2026 004 117", "file=MJ2026004117(MJ 2026 004 117)" },
                { EMPLOYER, NULL, "Vous nous avez demandé le code entreprise pour Action Logement. Le voici : 512 487 369 00021.", "company=51248736900021(512 487 369 00021)" },
                /* login-code layouts */
                { AL, NULL, "Votre code :\n\n730 118\n\nValidité : 5 min", "otp=730118(730 118)" },
                { AL, NULL, "Code envoyé au 06 ** ** ** 41 :\n\n   880246\n", "otp=880246(880246)" },
                { AL, NULL, "Voici votre code de vérification, envoyé au 07 ** ** ** 07 : 259004", "otp=259004(259004)" },
                { AL, NULL, "Votre code de connexion\n\n\n417 582\n\nIl expire dans 10 minutes.", "otp=417582(417 582)" },
                { AL, NULL, "617204 est votre code. Ne le communiquez à personne.", "otp=617204(617204)" },
                { AL, NULL, "Code : Z7Q4KM\nDurée de validité : 10 minutes", "otp=Z7Q4KM(Z7Q4KM)" },
                { AL, NULL, "Votre code de vérification :\n3\t9\t0\t5\t1\t7\n", "otp=390517(3 9 0 5 1 7)" },
                { AL, NULL, "Votre code de connexion :\n\n10h30\n", "" },
                /* product numbers */
                { AL, NULL, "Votre demande d'AVANCE LOCA-PASS® n° LP-2027-0041893 est en cours d'instruction.",
                  "request=LP20270041893(LP-2027-0041893)" },
                { AL, NULL, "Votre demande d'aide MOBILI-JEUNE® du 3 mars a bien été enregistrée sous le numéro MJ26-118-204.",
                  "file=MJ26118204(MJ26-118-204)" },
                { VISALE, NULL, "Votre Visa n° V208431977 est valable trois mois.", "file=V208431977(V208431977)" },
                { AL, NULL, "AVANCE LOCA-PASS® : 1 200 € sur 25 mois.", "" },
                /* the national request number, from its own service only */
                { SNE, NULL, "Attestation d'enregistrement\nNuméro unique : 0751226004417ALS03", "request=0751226004417ALS03(0751226004417ALS03)" },
                { GOUV, NULL, "Action Logement - numéro unique : 0751226004417ALS03", "" },
                { AL, NULL, "Votre demande de logement social est enregistrée.\nRéférence nationale à rappeler : 075 12 26 004417 ALS03",
                  "request=0751226004417ALS03(075 12 26 004417 ALS03)" },
                /* HR's code specifique */
                { EMPLOYER, NULL, "Action Logement nous a remis les codes spécifiques de l'équipe ; le vôtre est KQ4M 7TRX ZP2W.",
                  "specific=KQ4M7TRXZP2W(KQ4M 7TRX ZP2W)" },
                { AL, NULL, "Votre demande d'aide à la mobilité est enregistrée sous la référence AM-2026-4417302.",
                  "request=AM20264417302(AM-2026-4417302)" },
                /* groups of four or five in any case, some of them letters only */
                { AL, NULL, "Votre code spécifique : qbcm-38ar", "specific=qbcm38ar(qbcm-38ar)" },
                { AL, NULL, "Votre code spécifique : y5tp-44Ew-Mfrr\nÀ bientôt", "specific=y5tp44EwMfrr(y5tp-44Ew-Mfrr)" },
                { AL, NULL, "Please type your specific code as shown: Rne7 D92M qk", "specific=Rne7D92Mqk(Rne7 D92M qk)" },
                { AL, NULL, "Code spécifique personnel\nrxxf 8d6x\n", "specific=rxxf8d6x(rxxf 8d6x)" },
                { AL, NULL, "Votre code spécifique 7VZY G7EH DX reste valable.", "specific=7VZYG7EHDX(7VZY G7EH DX)" },
                { AL, NULL, "Keep your specific code 7895 7875 with your papers.", "specific=78957875(7895 7875)" },
                { AL, NULL, "Votre code spécifique AB12 CD34 pour AL'in.", "specific=AB12CD34(AB12 CD34)" },
                { AL, NULL, "Voici votre code spécifique : k7pm wqza hhrt. Attention aux minuscules.",
                  "specific=k7pmwqzahhrt(k7pm wqza hhrt)" },
                { AL, NULL, "Votre code spécifique arrive : 1234 dans deux mois.", "" },
                /* the access code by its shape is never cut before a further group */
                { EMPLOYER, NULL, "Pour les aides au logement Action Logement, voici ce qu'il vous faut :\nmb37 wYB7 2alD HGzL\n",
                  "access=mb37wYB72alDHGzL(mb37 wYB7 2alD HGzL)" },
                /* a letter: the label in the introduction, the value set apart further down */
                { AL, NULL, "Objet : votre compte AL'in\n\nMadame,\n\nComme convenu lors de notre entretien, vous trouverez "
                  "ci-après le code spécifique rattaché à votre compte, à conserver.\n\n      QWRT 4K7P ZM\n\n"
                  "Veuillez agréer, Madame, nos salutations distinguées.", "specific=QWRT4K7PZM(QWRT 4K7P ZM)" },
                /* a request number before its label, or named before and its request after */
                { AL, NULL, "0691225000123GDPUB : voilà le numéro unique de votre demande.",
                  "request=0691225000123GDPUB(0691225000123GDPUB)" },
                { AL, NULL, "LP-2027-0041893, c'est désormais le numéro de votre demande.", "request=LP20270041893(LP-2027-0041893)" },
                { AL, NULL, "MJ-2026-0311204 is the number of your request.", "request=MJ20260311204(MJ-2026-0311204)" },
                { AL, NULL, "La référence AM-2026-4417302 désigne maintenant votre demande.", "request=AM20264417302(AM-2026-4417302)" },
                { SNE, NULL, "0751226004417ALS03 demeure le numéro unique de votre demande.",
                  "request=0751226004417ALS03(0751226004417ALS03)" },
                { AL, NULL, "0691225000123GDPUB : ancien numéro de votre demande, à ne plus utiliser.", "" },
                { EMPLOYER, NULL, "Bonjour, voici le code spécifique Action Logement de notre groupe : GRP7731K", "specific=GRP7731K(GRP7731K)" },
                /* negative wording rejects that value only */
                { EMPLOYER, NULL, "Pour AL'in, le SIRET 512 487 369 00021 ne fonctionnera pas, saisissez le SIRET 552 100 554 00013.",
                  "company=55210055400013(552 100 554 00013)" },
                { AL, NULL, "Ancien code spécifique : 8TQ2 LM41\nNouveau code spécifique : 3PW7 XK62",
                  "specific=3PW7XK62(3PW7 XK62)" },
                { AL, NULL, "Le code spécifique 4MR8T2QA est erroné ; votre code spécifique est 9CH4W1ZN.",
                  "specific=9CH4W1ZN(9CH4W1ZN)" },
                { AL, NULL, "Votre nouveau code spécifique 5VN2K8RA remplace l'ancien.", "specific=5VN2K8RA(5VN2K8RA)" },
                /* a landlord of the group: not an access code */
                { LANDLORD, NULL, "Votre code d'accès à l'espace locataire : PL8842KQ\n--\nHabitat Exemple, membre du Groupe Action Logement", "" },
                { LANDLORD, NULL, "Code d'accès : PL8842KQ\n\nGroupe Action Logement", "" },
        };
        _cleanup_(rules_freep) Rules *rules = shipped_rules();

        (void) state;
        assert_rule_cases(rules, cases, ELEMENTSOF(cases));
}

/* Whatever bytes a caller hands rules_match(), PCRE2 reads valid UTF-8: a raw lead byte
 * between label and value no longer swallows the value's first digit (PCRE2 took "\xC34" for
 * one character, and the code lost its 4), and one at the very end no longer makes it read past
 * the text. Each bad byte reads as one U+FFFD. */
static void test_invalid_utf8(void **state) {
        static const struct {
                const char *text, *want;
        } cases[] = {
                { "code\xC3" "482913", "482913" },
                { "code\xE2\x80" "482913", "482913" },
                { "code\xF0\x9F" "482913", "482913" },
                { "\xC3" "code:482913", "482913" },
                { "ton code:482913 \xF0", "482913" },
                { "\xFF\xFE code:\xE2\x80 482913", NULL }, /* a space between label and value */
        };
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_(rules_freep) Rules *rules = NULL;
        _cleanup_(rule_matcher_freep) RuleMatcher *m = NULL;
        SenderInfo s = { .address = "no\xC3reply@example.org", .domain = "example.org", .name = "Ex\xE9mple" };

        (void) state;
        rules = load_text("utf8", "[rule good]\nkind = otp\nsenders = example.org\n"
                                  "pattern = code[^\\d\\s]*(?<code>\\d+)\n", &errors);
        assert_null(errors);
        assert_int_equal(rule_matcher_new(&m), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(message_freep) Message *msg = calloc(1, sizeof(Message));
                RuleText t = { .text = cases[i].text, .len = strlen(cases[i].text) };

                assert_non_null(msg);
                assert_int_equal(rules_match(rules, m, &t, 1, &s, msg, NULL, NULL, NULL), cases[i].want ? 1 : 0);
                if (cases[i].want) {
                        assert_string_equal(msg->codes[0].value, cases[i].want);
                        assert_int_equal(msg->codes[0].kind, CODE_KIND_OTP);
                        assert_true(msg->codes[0].trusted);
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_idn_sender),
                cmocka_unit_test(test_load_dirs),
                cmocka_unit_test(test_shipped_pack),
                cmocka_unit_test(test_many_rules),
                cmocka_unit_test(test_generalised),
                cmocka_unit_test(test_invalid_utf8),
        };
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
