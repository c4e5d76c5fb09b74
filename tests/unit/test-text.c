/* text.c: charsets, HTML to text, folding. Table-driven; every decoder is also fed every
 * prefix of its input (cut at each byte) and must return valid UTF-8 without reading past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test-util.h"

#include <iconv.h>

#include "macro.h"
#include "text.h"

static void test_charsets(void **state) {
        static const struct {
                const char *charset, *in, *out;
        } cases[] = {
                { "utf-8", "caf\xc3\xa9", "café" },
                { "UTF8", "ok", "ok" },
                { "iso-8859-1", "caf\xe9", "café" },
                { "ISO-8859-1", "\x93quoted\x94 \x80", "“quoted” €" }, /* read as windows-1252 */
                { "windows-1252", "l\x92\x65quipe \x85", "l’equipe …" },
                { "iso-8859-15", "\xa4 \xbd\x75vre", "€ œuvre" },
                { "\"us-ascii\"", "plain", "plain" },
                { "us-ascii", "caf\xc3\xa9", "café" },                /* mislabelled UTF-8 */
                /* UTF-8 with a stray invalid byte: U+FFFD for it, the rest as UTF-8 */
                { "utf-8", "caf\xc3\xa9 bad \xff byte", "café bad \xef\xbf\xbd byte" },
                { "utf-8", "\xc3\xa9\xc3\xa9 over\xc0\xaflong", "éé over\xef\xbf\xbd\xef\xbf\xbdlong" },
                { "utf-8", "\xe2\x82\xac\xe2\x82\xac trunc\xe2\x82", "€€ trunc\xef\xbf\xbd\xef\xbf\xbd" },
                /* Latin-1/Windows-1252 labelled UTF-8 (or not labelled): read as Windows-1252 */
                { "utf-8", "Votre code sp\xe9\x63ifique \x96 l\x92\xe9quipe", "Votre code spécifique – l’équipe" },
                { "UTF-8", "bad \xff byte", "bad ÿ byte" },
                { "utf8", "d\xe9j\xe0 \xe9t\xe9 \xc3\xa9", "déjà été Ã©" }, /* 4 invalid > 1 valid */
                { "", "caf\xe9", "café" },
                { "koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет" },  /* through iconv */
                { NULL, "none", "none" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = NULL;
                size_t len;
                int r = text_to_utf8(cases[i].charset, cases[i].in, strlen(cases[i].in), 0, &out, &len);
                assert_int_equal(r, 0);
                assert_string_equal(out, cases[i].out);
                assert_int_equal(len, strlen(cases[i].out));
                free(out);
        }
}

static void test_unknown_charset(void **state) {
        char *out = NULL;
        size_t len;

        (void) state;
        assert_int_equal(text_to_utf8("x-no-such-charset", "caf\xc3\xa9", 5, 0, &out, &len), 1);
        assert_string_equal(out, "café");
        free(out);
        assert_int_equal(text_to_utf8("x-no-such-charset", "caf\xe9", 4, 0, &out, &len), 1);
        assert_string_equal(out, "café");
        free(out);
}

static void test_cap(void **state) {
        char *out = NULL;
        size_t len;

        (void) state;
        assert_int_equal(text_to_utf8("utf-8", "abcdefgh", 8, 4, &out, &len), -E2BIG);
        assert_int_equal(len, 4);
        assert_string_equal(out, "abcd");
        free(out);
        /* A cap inside a character drops the whole character. */
        for (size_t cap = 1; cap <= 7; cap++) {
                assert_int_equal(text_to_utf8("iso-8859-1", "\x80\x80\x80", 3, cap, &out, &len), -E2BIG);
                assert_int_equal(len, cap / 3 * 3);
                assert_true(test_valid_utf8(out, len));
                free(out);
        }
}

static void test_html(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "<p>Code&nbsp;: <b>AB12</b></p>", "Code\xc2\xa0: AB12\n" },
                { "a<br>b<br/>c", "a\nb\nc" },
                { "<table><tr><td>Code</td><td>X1</td></tr></table>", "Code\tX1\n" },
                { "<style>.c{color:#112233}</style>ok", "ok" },
                { "<head><title>T 123456</title></head><body>x</body>", "x\n" },
                { "<script>var c='999999';</script>y", "y" },
                { "<!-- 123456 -->z", "z" },
                { "&eacute;&#233;&#xE9;&amp;&lt;&gt;&quot;", "ééé&<>\"" },
                { "&unknown; & &", "&unknown; & &" },
                { "&#128;", "€" },
                { "<a href=\"https://x.example/?c=ABCD1234\">lien</a>", "lien" },
                { "a <b title='x>y'>bold</b>", "a bold" },
                { "line\r\nbreak", "line break" },
                { "a < b", "a < b" },
                /* A stray apostrophe inside a tag does not hide the rest of the document. */
                { "<p class=x title=it's>AB12</p>CD", "AB12\nCD" },
                { "<td>a</td><td>b</td>", "a\tb" },
                { "<HEAD><STYLE>x</STYLE></HEAD><BODY>t</BODY>", "t\n" },
                { "<h1>T</h1><ul><li>x</li><li>y</li></ul>", "T\nx\ny\n" },
                { "a&nbsp;&shy;b&#8203;c", "a\xc2\xa0\xc2\xad" "b\xe2\x80\x8b" "c" },
                { "&#0;&#xD800;&#x110000;", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
                { "<!-- unterminated", "" },
                { "<scr<b>ipt>x", "ipt>x" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = NULL;
                size_t len;
                assert_int_equal(text_html_to_text(cases[i].in, strlen(cases[i].in), 0, &out, &len), 0);
                assert_string_equal(out, cases[i].out);
                free(out);
        }
}

static void test_fold(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "Code spécifique", "Code specifique" },
                { "CODE SPÉCIFIQUE", "CODE SPECIFIQUE" },
                { "AB12\xc2\xa0" "CD34", "AB12 CD34" },          /* NBSP */
                { "AB12\xe2\x80\xaf" "CD34", "AB12 CD34" },      /* narrow NBSP */
                { "AB\xe2\x80\x8b" "12", "AB12" },               /* zero-width space */
                { "AB\xc2\xad" "12", "AB12" },                   /* soft hyphen */
                { "l\xe2\x80\x99" "equipe", "l'equipe" },
                { "a\xe2\x80\x93" "b", "a-b" },
                { "a  \t b", "a b" },
                { "a \n\n\n\n b", "a\n\nb" },
                { "  lead", "lead" },
                { "cœur", "coeur" },
                { "e\xcc\x81t\xc3\xa9", "ete" },                  /* NFD é */
                { "\xef\xbc\xa1\xef\xbc\x91", "A1" },            /* fullwidth */
                { "«code»", "\"code\"" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = NULL;
                size_t len;
                assert_int_equal(text_fold(cases[i].in, strlen(cases[i].in), 0, &out, &len), 0);
                assert_string_equal(out, cases[i].out);
                free(out);
        }
}

/* What text_utf8_sanitize() must make of s[0..n) when only its end may be cut inside a
 * character: the longest valid prefix, then U+FFFD for each byte left. */
static char *sanitized_expected(const char *s, size_t n) {
        size_t j = n;
        char *e;

        while (j > 0 && !test_valid_utf8(s, j))
                j--;
        e = malloc(j + 3 * (n - j) + 1);
        assert_non_null(e);
        memcpy(e, s, j);
        for (size_t i = 0; i < n - j; i++)
                memcpy(e + j + 3 * i, "\xef\xbf\xbd", 3);
        e[j + 3 * (n - j)] = 0;
        return e;
}

/* Windows-1252 by iconv, independent of text.c's own table (the inputs hold none of the five
 * bytes iconv does not map). */
static char *cp1252_expected(const char *s, size_t n) {
        iconv_t cd = iconv_open("UTF-8", "CP1252");
        char *out = calloc(4 * n + 1, 1), *in = (char *) s, *o = out;
        size_t il = n, ol = 4 * n;

        assert_true(cd != (iconv_t) -1);
        assert_non_null(out);
        assert_true(iconv(cd, &in, &il, &o, &ol) != (size_t) -1);
        iconv_close(cd);
        return out;
}

/* Every prefix of tricky input decodes to valid UTF-8, within bounds (ASan checks the reads):
 * the same text as the whole input up to the cut, U+FFFD for a character cut short. */
static void test_every_prefix(void **state) {
        static const char *inputs[] = {
                "<p>Caf\xc3\xa9 &eacute;&#x1F600; <td>x</td><!-- c --> &am",
                "\xe2\x82\xac\xf0\x9f\x98\x80\xc3",
                "<script>x</scr",
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                size_t n = strlen(inputs[i]);
                for (size_t k = 0; k <= n; k++) {
                        char *buf = malloc(k ?: 1), *out, *utf8, *expected;
                        size_t len, ulen;
                        memcpy(buf, inputs[i], k);
                        /* HTML input is UTF-8 (mime.c converts first): sanitize the cut prefix. */
                        assert_int_equal(text_utf8_sanitize(buf, k, 0, &utf8, &ulen), 0);
                        expected = sanitized_expected(buf, k);
                        assert_string_equal(utf8, expected);
                        assert_int_equal(ulen, strlen(expected));
                        free(expected);
                        assert_int_equal(text_html_to_text(utf8, ulen, 0, &out, &len), 0);
                        assert_true(test_valid_utf8(out, len));
                        free(out);
                        free(utf8);
                        assert_int_equal(text_fold(buf, k, 0, &out, &len), 0);
                        assert_true(test_valid_utf8(out, len));
                        free(out);
                        assert_int_equal(text_to_utf8("windows-1252", buf, k, 0, &out, &len), 0);
                        expected = cp1252_expected(buf, k);
                        assert_string_equal(out, expected);
                        assert_int_equal(len, strlen(expected));
                        free(expected);
                        free(out);
                        free(buf);
                }
        }
}

static void test_remove_links(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "voir https://www.al-in.fr/#/connexion?c=ABCD1234 ici", "voir ici" },
                { "(http://x.example/a).", "( )." },
                { "site www.actionlogement.fr.", "site ." },
                { "ecrire a bounce-620881@mailer.example ou", "ecrire a ou" },
                { "De : AL <noreply@actionlogement.fr>", "De : AL < >" },
                { "AB12https://x.example/CD34", "AB12https://x.example/CD34" },
                { "x\nhttps://t.example/o/123456789012\ny", "x\n\ny" },
                { "code AB12@ rien", "code AB12@ rien" },
                { "a@b pas un domaine", "a@b pas un domaine" },
                { "wwwx. http: httpsfoo", "wwwx. http: httpsfoo" },
                { "", "" },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *s = strdup(cases[i].in);
                size_t n = text_remove_links(s, strlen(s));
                assert_int_equal(n, strlen(s));
                assert_string_equal(s, cases[i].out);
                free(s);
        }
}

static void test_split_quoted(void **state) {
        static const struct {
                const char *in, *own, *quoted; /* quoted NULL: nothing split off */
        } cases[] = {
                { "Bonjour\nCode : AB12\n", NULL, NULL },
                { "Merci\n> Code : AB12\n>> plus\nfin\n", "Merci\nfin\n", "Code : AB12\nplus\n" },
                { "Note\n-------- Message transfere --------\nDe : AL\nCode : X1\n", "Note\n",
                  "-------- Message transfere --------\nDe : AL\nCode : X1\n" },
                { "Voici\n-----Original Message-----\nFrom: x\n", "Voici\n", "-----Original Message-----\nFrom: x\n" },
                { "ok\nLe 2 mars 2026, RH a ecrit :\nCode\n", "ok\n", "Le 2 mars 2026, RH a ecrit :\nCode\n" },
                { "ok\nLe 2 mars 2026 a 10:02, Ressources humaines a\necrit :\nx\n", "ok\n",
                  "Le 2 mars 2026 a 10:02, Ressources humaines a\necrit :\nx\n" },
                { "ok\nOn Mon, Mar 2, 2026, HR wrote:\nx\n", "ok\n", "On Mon, Mar 2, 2026, HR wrote:\nx\n" },
                { "ok\nDe : RH\nEnvoye : lundi\nObjet : code\nx\n", "ok\n", "De : RH\nEnvoye : lundi\nObjet : code\nx\n" },
                { "Begin forwarded message:\nx\n", "", "Begin forwarded message:\nx\n" },
                /* Not markers: one header-like line, a sentence starting with "Le". */
                { "Objet : votre demande\nDate : 2 mars\n", NULL, NULL },
                { "Le code est pret :\nAB12\n", NULL, NULL },
                { "De : votre conseiller\nMerci\n", NULL, NULL },
        };
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *own = NULL, *quoted = NULL;
                size_t ol, ql;
                int r = text_split_quoted(cases[i].in, strlen(cases[i].in), &own, &ol, &quoted, &ql);
                if (!cases[i].quoted) {
                        if (r != 0)
                                fail_msg("case %zu: split, own '%s' quoted '%s'", i, own, quoted);
                        continue;
                }
                if (r != 1)
                        fail_msg("case %zu: not split", i);
                assert_string_equal(own, cases[i].own);
                assert_string_equal(quoted, cases[i].quoted);
                assert_int_equal(ol, strlen(own));
                assert_int_equal(ql, strlen(quoted));
                free(own);
                free(quoted);
        }
}

/* The splitter and the link remover never read past their input, whatever the cut. */
static void test_quoted_every_prefix(void **state) {
        const char *in = "Note\n> cite\nLe 2 mars, X <x@y.example> a\necrit :\n--\nDe : a\nEnvoye: b\nhttps://x.example/y z";
        (void) state;
        for (size_t k = 0; k <= strlen(in); k++) {
                char *buf = malloc(k + 1), *own = NULL, *quoted = NULL;
                size_t ol, ql;
                memcpy(buf, in, k);
                /* The '>' line is quoted from the moment it is there; the first line is the
                 * reader's own. */
                if (k < strlen("Note\n>")) {
                        assert_int_equal(text_split_quoted(buf, k, &own, &ol, &quoted, &ql), 0);
                        assert_null(own);
                        assert_null(quoted);
                } else {
                        assert_int_equal(text_split_quoted(buf, k, &own, &ol, &quoted, &ql), 1);
                        assert_true(strncmp(own, "Note\n", 5) == 0);
                        assert_int_equal(ol, strlen(own));
                        assert_int_equal(ql, strlen(quoted));
                        assert_true(ol + ql <= k);
                }
                free(own);
                free(quoted);
                assert_true(text_remove_links(buf, k) <= k);
                free(buf);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_charsets),     cmocka_unit_test(test_unknown_charset),
                cmocka_unit_test(test_cap),          cmocka_unit_test(test_html),
                cmocka_unit_test(test_fold),         cmocka_unit_test(test_every_prefix),
                cmocka_unit_test(test_remove_links), cmocka_unit_test(test_split_quoted),
                cmocka_unit_test(test_quoted_every_prefix),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
