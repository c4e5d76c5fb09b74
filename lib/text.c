/* Charset conversion, HTML to text and folding, written as small state machines over bytes so
 * that every output is bounded by a StrBuf cap and no input can make them read out of bounds.
 * Single-byte Western charsets (the bulk of French mail) use tables; the rest go through iconv in
 * bulk, and where iconv stops on an invalid byte that byte becomes one U+FFFD and conversion
 * resumes after it, so a bad byte never costs the rest of the part. */
#include <ctype.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>

#include "strbuf.h"
#include "text.h"

#define REPLACEMENT 0xFFFDu

static size_t utf8_decode(const unsigned char *p, size_t n, unsigned *ret_cp) {
        unsigned cp, min;
        size_t len;

        if (p[0] < 0x80) {
                *ret_cp = p[0];
                return 1;
        }
        if ((p[0] & 0xE0) == 0xC0)
                len = 2, cp = p[0] & 0x1F, min = 0x80;
        else if ((p[0] & 0xF0) == 0xE0)
                len = 3, cp = p[0] & 0x0F, min = 0x800;
        else if ((p[0] & 0xF8) == 0xF0)
                len = 4, cp = p[0] & 0x07, min = 0x10000;
        else
                goto invalid;
        if (len > n)
                goto invalid;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        goto invalid;
                cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                goto invalid;
        *ret_cp = cp;
        return len;
invalid:
        *ret_cp = REPLACEMENT;
        return 1;
}

size_t text_utf8_decode(const char *p, size_t n, unsigned *ret_cp) {
        return utf8_decode((const unsigned char *) p, n, ret_cp);
}

/* Length of s[0..n) without an incomplete UTF-8 sequence at its end. */
static size_t utf8_complete_length(const char *s, size_t n) {
        size_t i = n, need;

        /* Walk back over at most 3 continuation bytes to the lead byte. */
        while (i > 0 && n - i < 4 && ((unsigned char) s[i - 1] & 0xC0) == 0x80)
                i--;
        if (i == 0 || ((unsigned char) s[i - 1] & 0x80) == 0)
                return n;
        unsigned char lead = (unsigned char) s[i - 1];
        need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
        return n - (i - 1) >= need ? n : i - 1;
}

static int finish(StrBuf *b, int r, char **ret, size_t *ret_len) {
        if (r == -ENOMEM)
                return r;
        /* A cap may cut a character in two: never hand out a broken sequence. */
        if (b->truncated && b->data) {
                b->len = utf8_complete_length(b->data, b->len);
                b->data[b->len] = 0;
        }
        if (strbuf_ensure(b) < 0)
                return -ENOMEM;
        *ret = strbuf_take(b, ret_len);
        return b->truncated || r == -E2BIG ? -E2BIG : r;
}

int text_utf8_sanitize(const char *in, size_t n, size_t max, char **ret, size_t *ret_len) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(max);
        const unsigned char *p = (const unsigned char *) in;
        int r = 0;

        for (size_t i = 0; i < n && r == 0;) {
                size_t start = i;
                unsigned cp;

                /* Copy runs of valid ASCII in one go. */
                while (i < n && p[i] < 0x80 && p[i] != 0)
                        i++;
                if (i > start)
                        r = strbuf_append(&b, p + start, i - start);
                if (r < 0 || i >= n)
                        break;
                if (p[i] == 0) {
                        i++;
                        continue;
                }
                size_t l = utf8_decode(p + i, n - i, &cp);
                r = cp == REPLACEMENT && l == 1 ? strbuf_put_utf8(&b, REPLACEMENT)
                                                : strbuf_append(&b, p + i, l);
                i += l;
        }
        return finish(&b, r, ret, ret_len);
}

/* Mislabelled Latin-1/Windows-1252 under a UTF-8 label: not valid UTF-8, and more invalid
 * sequences than valid multi-byte characters. A UTF-8 text with a stray byte stays UTF-8. */
static bool utf8_mislabelled(const char *in, size_t n) {
        const unsigned char *p = (const unsigned char *) in;
        size_t bad = 0, good = 0;
        unsigned cp;

        for (size_t i = 0; i < n;) {
                size_t l = utf8_decode(p + i, n - i, &cp);
                if (cp == REPLACEMENT && l == 1)
                        bad++;
                else if (l > 1)
                        good++;
                i += l;
        }
        return bad > good;
}

bool text_utf8_valid(const char *in, size_t n) {
        const unsigned char *p = (const unsigned char *) in;
        unsigned cp;

        for (size_t i = 0; i < n;) {
                size_t l;

                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                l = utf8_decode(p + i, n - i, &cp);
                if (cp == REPLACEMENT && l == 1)
                        return false;
                i += l;
        }
        return true;
}

/* Windows-1252 0x80..0x9F; 0 = undefined. */
static const uint16_t cp1252_c1[32] = {
        0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
        0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

typedef enum SingleByte { SB_CP1252, SB_LATIN9 } SingleByte;

static unsigned single_byte_cp(SingleByte cs, unsigned char c) {
        if (c >= 0x80 && c < 0xA0 && cs == SB_CP1252)
                return cp1252_c1[c - 0x80] ?: REPLACEMENT;
        if (cs == SB_LATIN9)
                switch (c) {
                case 0xA4: return 0x20AC;
                case 0xA6: return 0x0160;
                case 0xA8: return 0x0161;
                case 0xB4: return 0x017D;
                case 0xB8: return 0x017E;
                case 0xBC: return 0x0152;
                case 0xBD: return 0x0153;
                case 0xBE: return 0x0178;
                }
        return c;
}

static int single_byte_to_utf8(SingleByte cs, const char *in, size_t n, StrBuf *b) {
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++) {
                unsigned char c = (unsigned char) in[i];
                if (c == 0)
                        continue;
                r = c < 0x80 ? strbuf_putc(b, (char) c) : strbuf_put_utf8(b, single_byte_cp(cs, c));
        }
        return r;
}

static int iconv_to_utf8(iconv_t cd, const char *in, size_t n, StrBuf *b) {
        char out[4096];
        char *ip = (char *) in;
        size_t il = n;
        int r = 0;

        while (il > 0 && r == 0) {
                char *op = out;
                size_t ol = sizeof out;
                size_t k = iconv(cd, &ip, &il, &op, &ol);
                int e = errno;

                r = strbuf_append(b, out, (size_t) (op - out));
                if (k != (size_t) -1 || r < 0)
                        continue;
                if (e == E2BIG)
                        continue;
                /* EILSEQ or EINVAL (truncated at the end): one replacement, skip one byte. */
                r = strbuf_put_utf8(b, REPLACEMENT);
                ip++;
                il--;
                (void) iconv(cd, NULL, NULL, NULL, NULL);
        }
        if (r == 0) {
                char *op = out;
                size_t ol = sizeof out;
                (void) iconv(cd, NULL, NULL, &op, &ol);
                r = strbuf_append(b, out, (size_t) (op - out));
        }
        return r;
}

static void charset_normalize(const char *charset, char *buf, size_t size) {
        size_t k = 0;

        for (const char *p = charset ?: ""; *p && k + 1 < size; p++)
                if (*p != '"' && *p != '\'' && !isspace((unsigned char) *p))
                        buf[k++] = (char) tolower((unsigned char) *p);
        buf[k] = 0;
}

int text_to_utf8(const char *charset, const char *in, size_t n, size_t max, char **ret,
                 size_t *ret_len) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(max);
        char cs[64];
        int r, unknown = 0;
        iconv_t cd;

        charset_normalize(charset, cs, sizeof cs);
        if (isempty(cs) || streq(cs, "utf-8") || streq(cs, "utf8") || streq(cs, "unicode-1-1-utf-8")) {
                /* Latin-1 labelled UTF-8 (or unlabelled) is common too: Windows-1252, not U+FFFD. */
                if (!text_utf8_valid(in, n) && utf8_mislabelled(in, n))
                        return finish(&b, single_byte_to_utf8(SB_CP1252, in, n, &b), ret, ret_len);
                return text_utf8_sanitize(in, n, max, ret, ret_len);
        }

        if (streq(cs, "us-ascii") || streq(cs, "ascii") || streq(cs, "ansi_x3.4-1968") ||
            streq(cs, "iso-8859-1") || streq(cs, "iso8859-1") || streq(cs, "iso_8859-1") ||
            streq(cs, "latin1") || streq(cs, "l1") || streq(cs, "windows-1252") ||
            streq(cs, "cp1252") || streq(cs, "x-cp1252")) {
                /* Real ASCII/UTF-8 mislabelled as ASCII is common too: prefer UTF-8 if valid. */
                if ((streq(cs, "us-ascii") || streq(cs, "ascii")) && text_utf8_valid(in, n))
                        return text_utf8_sanitize(in, n, max, ret, ret_len);
                r = single_byte_to_utf8(SB_CP1252, in, n, &b);
        } else if (streq(cs, "iso-8859-15") || streq(cs, "iso8859-15") || streq(cs, "latin9") ||
                   streq(cs, "latin-9")) {
                r = single_byte_to_utf8(SB_LATIN9, in, n, &b);
        } else {
                cd = iconv_open("UTF-8", cs);
                if (cd == (iconv_t) -1) {
                        unknown = 1;
                        if (text_utf8_valid(in, n)) {
                                r = text_utf8_sanitize(in, n, max, ret, ret_len);
                                return r < 0 ? r : unknown;
                        }
                        r = single_byte_to_utf8(SB_CP1252, in, n, &b);
                } else {
                        r = iconv_to_utf8(cd, in, n, &b);
                        iconv_close(cd);
                }
        }
        r = finish(&b, r, ret, ret_len);
        if (r < 0)
                return r;
        if (!text_utf8_valid(*ret, *ret_len)) {
                /* iconv may emit NULs for odd inputs: sanitize once more. */
                _cleanup_free_ char *t = TAKE_PTR(*ret);
                return text_utf8_sanitize(t, *ret_len, max, ret, ret_len);
        }
        return unknown;
}

/* ---- HTML ---- */

static const struct {
        const char *name;
        unsigned cp;
} html_entities[] = {
        { "amp", '&' },      { "lt", '<' },         { "gt", '>' },        { "quot", '"' },
        { "apos", '\'' },    { "nbsp", 0xA0 },      { "shy", 0xAD },      { "eacute", 0xE9 },
        { "Eacute", 0xC9 },  { "egrave", 0xE8 },    { "Egrave", 0xC8 },   { "ecirc", 0xEA },
        { "Ecirc", 0xCA },   { "euml", 0xEB },      { "Euml", 0xCB },     { "agrave", 0xE0 },
        { "Agrave", 0xC0 },  { "acirc", 0xE2 },     { "Acirc", 0xC2 },    { "auml", 0xE4 },
        { "Auml", 0xC4 },    { "aacute", 0xE1 },    { "ccedil", 0xE7 },   { "Ccedil", 0xC7 },
        { "icirc", 0xEE },   { "Icirc", 0xCE },     { "iuml", 0xEF },     { "Iuml", 0xCF },
        { "iacute", 0xED },  { "ocirc", 0xF4 },     { "Ocirc", 0xD4 },    { "ouml", 0xF6 },
        { "Ouml", 0xD6 },    { "oacute", 0xF3 },    { "ucirc", 0xFB },    { "Ucirc", 0xDB },
        { "ugrave", 0xF9 },  { "Ugrave", 0xD9 },    { "uuml", 0xFC },     { "Uuml", 0xDC },
        { "uacute", 0xFA },  { "yuml", 0xFF },      { "ntilde", 0xF1 },   { "szlig", 0xDF },
        { "oelig", 0x153 },  { "OElig", 0x152 },    { "aelig", 0xE6 },    { "AElig", 0xC6 },
        { "laquo", 0xAB },   { "raquo", 0xBB },     { "lsquo", 0x2018 },  { "rsquo", 0x2019 },
        { "sbquo", 0x201A }, { "ldquo", 0x201C },   { "rdquo", 0x201D },  { "bdquo", 0x201E },
        { "ndash", 0x2013 }, { "mdash", 0x2014 },   { "hellip", 0x2026 }, { "euro", 0x20AC },
        { "copy", 0xA9 },    { "reg", 0xAE },       { "trade", 0x2122 },  { "deg", 0xB0 },
        { "bull", 0x2022 },  { "middot", 0xB7 },    { "times", 0xD7 },    { "sup2", 0xB2 },
        { "ensp", 0x2002 },  { "emsp", 0x2003 },    { "thinsp", 0x2009 }, { "zwnj", 0x200C },
        { "zwj", 0x200D },   { "lrm", 0x200E },     { "rlm", 0x200F },    { "ordm", 0xBA },
        { "sect", 0xA7 },    { "para", 0xB6 },      { "iexcl", 0xA1 },    { "iquest", 0xBF },
        { "colon", ':' },    { "num", '#' },        { "sol", '/' },       { "period", '.' },
        { "comma", ',' },    { "lpar", '(' },       { "rpar", ')' },      { "NewLine", '\n' },
        { "Tab", '\t' },     { "ZeroWidthSpace", 0x200B },
};

/* Decodes an entity at p (just after '&'). Returns the number of bytes consumed after '&' and
 * the code point, or 0 when this is not an entity (the '&' is then literal). */
static size_t html_entity(const char *p, size_t n, unsigned *ret_cp) {
        size_t i = 0;

        if (n > 0 && p[0] == '#') {
                unsigned long v = 0;
                bool hex = n > 1 && (p[1] == 'x' || p[1] == 'X');
                size_t digits = 0;

                i = hex ? 2 : 1;
                for (; i < n && digits < 8; i++, digits++) {
                        int c = (unsigned char) p[i];
                        if (hex && isxdigit(c))
                                v = v * 16 + (unsigned long) (isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
                        else if (!hex && isdigit(c))
                                v = v * 10 + (unsigned long) (c - '0');
                        else
                                break;
                }
                if (digits == 0)
                        return 0;
                if (i < n && p[i] == ';')
                        i++;
                /* HTML5: NUL, surrogates and out-of-range become U+FFFD; C1 read as cp1252. */
                if (v >= 0x80 && v < 0xA0)
                        v = cp1252_c1[v - 0x80] ?: REPLACEMENT;
                else if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                        v = REPLACEMENT;
                *ret_cp = (unsigned) v;
                return i;
        }

        while (i < n && i < 32 && isalnum((unsigned char) p[i]))
                i++;
        if (i == 0)
                return 0;
        for (size_t k = 0; k < ELEMENTSOF(html_entities); k++)
                if (strlen(html_entities[k].name) == i && memcmp(p, html_entities[k].name, i) == 0) {
                        bool semi = i < n && p[i] == ';';
                        /* Without ';' only the legacy core entities are recognised. */
                        if (!semi && html_entities[k].cp > 0xFF)
                                return 0;
                        *ret_cp = html_entities[k].cp;
                        return i + semi;
                }
        return 0;
}

typedef enum TagClass { TAG_INLINE, TAG_BLOCK, TAG_CELL, TAG_SKIP } TagClass;

/* Sorted by name, for bsearch(). */
static const struct TagEntry {
        const char *name;
        TagClass class;
} tag_classes[] = {
        { "address", TAG_BLOCK },    { "article", TAG_BLOCK },    { "aside", TAG_BLOCK },
        { "blockquote", TAG_BLOCK }, { "body", TAG_BLOCK },       { "br", TAG_BLOCK },
        { "caption", TAG_BLOCK },    { "center", TAG_BLOCK },     { "dd", TAG_BLOCK },
        { "div", TAG_BLOCK },        { "dl", TAG_BLOCK },         { "dt", TAG_BLOCK },
        { "fieldset", TAG_BLOCK },   { "figcaption", TAG_BLOCK }, { "figure", TAG_BLOCK },
        { "footer", TAG_BLOCK },     { "form", TAG_BLOCK },       { "h1", TAG_BLOCK },
        { "h2", TAG_BLOCK },         { "h3", TAG_BLOCK },         { "h4", TAG_BLOCK },
        { "h5", TAG_BLOCK },         { "h6", TAG_BLOCK },         { "head", TAG_SKIP },
        { "header", TAG_BLOCK },     { "hr", TAG_BLOCK },         { "html", TAG_BLOCK },
        { "legend", TAG_BLOCK },     { "li", TAG_BLOCK },         { "main", TAG_BLOCK },
        { "nav", TAG_BLOCK },        { "ol", TAG_BLOCK },         { "option", TAG_BLOCK },
        { "p", TAG_BLOCK },          { "pre", TAG_BLOCK },        { "script", TAG_SKIP },
        { "section", TAG_BLOCK },    { "style", TAG_SKIP },       { "table", TAG_BLOCK },
        { "tbody", TAG_BLOCK },      { "td", TAG_CELL },          { "template", TAG_SKIP },
        { "tfoot", TAG_BLOCK },      { "th", TAG_CELL },          { "thead", TAG_BLOCK },
        { "title", TAG_SKIP },       { "tr", TAG_BLOCK },         { "ul", TAG_BLOCK },
        { "xml", TAG_SKIP },
};

static int tag_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const struct TagEntry *) elem)->name);
}

/* name: lower case. */
static TagClass tag_class(const char *name) {
        const struct TagEntry *e = bsearch(name, tag_classes, ELEMENTSOF(tag_classes), sizeof(tag_classes[0]),
                                           tag_cmp);
        return e ? e->class : TAG_INLINE;
}

static int put_break(StrBuf *b, char c) {
        /* No separator at the start, none piled up; folding collapses the rest. */
        if (b->len == 0 || b->data[b->len - 1] == c)
                return 0;
        return strbuf_putc(b, c);
}

#define HTML_NAME_MAX 16 /* tag names are cut to 15 bytes: longer ones are none we know */

/* Reads the tag that starts at html[i] ('<'): returns where the text after it starts, with its
 * lower-case name and whether it closes; or 0 when the '<' opens no tag (a lone '<' is text). */
static size_t html_tag_read(const char *html, size_t n, size_t i, char name[static HTML_NAME_MAX],
                            bool *ret_closing) {
        size_t j = i + 1, k = 0;
        bool closing = j < n && html[j] == '/';
        char quote = 0;

        if (closing)
                j++;
        if (!(j < n && (isalpha((unsigned char) html[j]) || html[j] == '!' || html[j] == '?')))
                return 0;
        while (j < n && (isalnum((unsigned char) html[j]) || html[j] == '!' || html[j] == '?' || html[j] == ':' ||
                         html[j] == '-')) {
                if (k + 1 < HTML_NAME_MAX)
                        name[k++] = (char) tolower((unsigned char) html[j]);
                j++;
        }
        name[k] = 0;
        /* Find the end of the tag. A quote opens a value only after '=' (as HTML tokenizers read
         * it), so a stray apostrophe in a tag does not swallow the document. */
        for (char prev = 0; j < n; j++) {
                if (quote) {
                        if (html[j] == quote)
                                quote = 0;
                } else if ((html[j] == '"' || html[j] == '\'') && prev == '=')
                        quote = html[j];
                else if (html[j] == '>')
                        break;
                if (!isspace((unsigned char) html[j]))
                        prev = html[j];
        }
        *ret_closing = closing;
        return j < n ? j + 1 : n;
}

/* What a tag does to the text: starts or ends an element whose content is dropped
 * (skip_until: the closing tag awaited, "" outside one), or breaks a line or a table cell. */
static int html_tag_apply(StrBuf *b, const char *name, bool closing, char skip_until[static HTML_NAME_MAX]) {
        TagClass tc = tag_class(name);

        if (*skip_until) {
                if ((closing && streq(name, skip_until)) || (streq(skip_until, "head") && streq(name, "body")))
                        *skip_until = 0;
                return 0;
        }
        if (!closing && tc == TAG_SKIP) {
                (void) snprintf(skip_until, HTML_NAME_MAX, "%s", name);
                return 0;
        }
        if (tc == TAG_BLOCK)
                return put_break(b, '\n');
        if (tc == TAG_CELL && !closing)
                return put_break(b, '\t');
        return 0;
}

int text_html_to_text(const char *html, size_t n, size_t max, char **ret, size_t *ret_len) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(max);
        char skip_until[HTML_NAME_MAX] = ""; /* inside script/style/...: the closing tag we wait for */
        int r = 0;

        for (size_t i = 0; i < n && r >= 0;) {
                char c = html[i];

                if (c == '<') {
                        /* Comment: skip to "-->" (or the end). */
                        if (i + 3 < n && memcmp(html + i, "<!--", 4) == 0) {
                                const char *e = memmem(html + i + 4, n - i - 4, "-->", 3);
                                i = e ? (size_t) (e - html) + 3 : n;
                                continue;
                        }
                        char name[HTML_NAME_MAX];
                        bool closing;
                        size_t end = html_tag_read(html, n, i, name, &closing);

                        if (end > 0) {
                                i = end;
                                r = html_tag_apply(&b, name, closing, skip_until);
                                continue;
                        }
                        /* A lone '<' is text. */
                }

                if (*skip_until) {
                        i++;
                        continue;
                }

                if (c == '&') {
                        unsigned cp;
                        size_t l = html_entity(html + i + 1, n - i - 1, &cp);
                        if (l > 0) {
                                r = strbuf_put_utf8(&b, cp);
                                i += 1 + l;
                                continue;
                        }
                }

                if (c == '\r' || c == '\n' || c == '\t' || c == '\f') {
                        if (b.len > 0 && !isspace((unsigned char) b.data[b.len - 1]))
                                r = strbuf_putc(&b, ' ');
                        i++;
                        continue;
                }

                /* Copy a run of plain text at once. */
                size_t s = i;
                while (i < n && html[i] != '<' && html[i] != '&' && html[i] != '\r' &&
                       html[i] != '\n' && html[i] != '\t' && html[i] != '\f')
                        i++;
                if (i == s)
                        i++;
                r = strbuf_append(&b, html + s, i - s);
        }
        return finish(&b, r, ret, ret_len);
}

/* ---- folding ---- */

/* U+00C0..U+017F without their accents; "" keeps the character. */
static const char *const latin_fold[0x180 - 0xC0] = {
        "A", "A", "A", "A", "A", "A", "AE", "C", "E", "E", "E", "E",
        "I", "I", "I", "I", "D", "N", "O", "O", "O", "O", "O", "",
        "O", "U", "U", "U", "U", "Y", "TH", "ss", "a", "a", "a", "a",
        "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
        "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u",
        "u", "y", "th", "y", "A", "a", "A", "a", "A", "a", "C", "c",
        "C", "c", "C", "c", "C", "c", "D", "d", "D", "d", "E", "e",
        "E", "e", "E", "e", "E", "e", "E", "e", "G", "g", "G", "g",
        "G", "g", "G", "g", "H", "h", "H", "h", "I", "i", "I", "i",
        "I", "i", "I", "i", "I", "i", "IJ", "ij", "J", "j", "K", "k",
        "k", "L", "l", "L", "l", "L", "l", "L", "l", "L", "l", "N",
        "n", "N", "n", "N", "n", "", "N", "n", "O", "o", "O", "o",
        "O", "o", "OE", "oe", "R", "r", "R", "r", "R", "r", "S", "s",
        "S", "s", "S", "s", "S", "s", "T", "t", "T", "t", "T", "t",
        "U", "u", "U", "u", "U", "u", "U", "u", "U", "u", "U", "u",
        "W", "w", "Y", "y", "Y", "Z", "z", "Z", "z", "Z", "z", "s",
};

typedef enum FoldClass { FOLD_KEEP, FOLD_SPACE, FOLD_DROP, FOLD_NEWLINE } FoldClass;

/* Maps a code point to its folded replacement (returned in buf) or a class. */
static FoldClass fold_cp(unsigned cp, const char **ret) {
        *ret = NULL;
        switch (cp) {
        case '\t': case '\v': case '\f': case 0xA0: case 0x1680: case 0x2000 ... 0x200A:
        case 0x202F: case 0x205F: case 0x3000:
                return FOLD_SPACE;
        case '\r': case 0xAD: case 0x200B ... 0x200F: case 0x2060 ... 0x2064: case 0xFEFF:
        case 0x180E: case 0x0300 ... 0x036F: case 0x202A ... 0x202E:
        case 0x2066 ... 0x2069:
                return FOLD_DROP;
        case 0x2028: case 0x2029: case 0x85:
                return FOLD_NEWLINE;
        case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032: case 0xB4: case 0x2BC:
        case 0x60: case 0xFF07:
                *ret = "'";
                return FOLD_KEEP;
        case 0x201C: case 0x201D: case 0x201E: case 0x201F: case 0xAB: case 0xBB: case 0x2033:
        case 0x2039: case 0x203A:
                *ret = "\"";
                return FOLD_KEEP;
        case 0x2010 ... 0x2015: case 0x2212: case 0xFE58: case 0xFE63: case 0xFF0D:
                *ret = "-";
                return FOLD_KEEP;
        case 0x2026:
                *ret = "...";
                return FOLD_KEEP;
        case 0xFB00: *ret = "ff"; return FOLD_KEEP;
        case 0xFB01: *ret = "fi"; return FOLD_KEEP;
        case 0xFB02: *ret = "fl"; return FOLD_KEEP;
        }
        if (cp >= 0xC0 && cp < 0x180 && *latin_fold[cp - 0xC0])
                *ret = latin_fold[cp - 0xC0];
        return FOLD_KEEP;
}

/* Before a kept character: writes what the blanks since the last one stand for, a paragraph
 * break (two newlines at most) or one space, and nothing at the start of the text. */
static inline int fold_separator(StrBuf *b, unsigned *newlines, bool *pending_space) {
        int r = 0;

        if (*newlines > 0 && b->len > 0)
                r = strbuf_append(b, "\n\n", MIN(*newlines, 2u));
        else if (*pending_space && b->len > 0)
                r = strbuf_putc(b, ' ');
        *newlines = 0;
        *pending_space = false;
        return r;
}

int text_fold(const char *in, size_t n, size_t max, char **ret, size_t *ret_len) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(max);
        const unsigned char *p = (const unsigned char *) in;
        bool pending_space = false;
        unsigned newlines = 0;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0;) {
                unsigned cp;
                size_t l;
                const char *rep;
                FoldClass fc;

                /* Fast path: a run of printable ASCII that folding leaves alone. */
                if (p[i] > ' ' && p[i] < 0x7F && p[i] != '`') {
                        size_t e = i + 1;
                        while (e < n && p[e] > ' ' && p[e] < 0x7F && p[e] != '`')
                                e++;
                        r = fold_separator(&b, &newlines, &pending_space);
                        if (r >= 0)
                                r = strbuf_append(&b, p + i, e - i);
                        i = e;
                        continue;
                }
                l = utf8_decode(p + i, n - i, &cp);

                /* Fullwidth ASCII (U+FF01..U+FF5E) is a known obfuscation: read it as ASCII. */
                if (cp >= 0xFF01 && cp <= 0xFF5E && cp != 0xFF07 && cp != 0xFF0D)
                        cp -= 0xFEE0;

                fc = cp == ' ' ? FOLD_SPACE : cp == '\n' ? FOLD_NEWLINE : cp == 0 ? FOLD_DROP
                                                                                : fold_cp(cp, &rep);
                i += l;
                switch (fc) {
                case FOLD_DROP:
                        continue;
                case FOLD_SPACE:
                        pending_space = true;
                        continue;
                case FOLD_NEWLINE:
                        newlines++;
                        pending_space = false;
                        continue;
                case FOLD_KEEP:
                        break;
                }

                r = fold_separator(&b, &newlines, &pending_space);
                if (r < 0)
                        break;
                if (rep)
                        r = strbuf_puts(&b, rep);
                else if (cp < 0x80)
                        r = strbuf_putc(&b, (char) cp);
                else
                        r = strbuf_put_utf8(&b, cp);
        }
        return finish(&b, r, ret, ret_len);
}

/* ---- links ---- */

static bool is_url_char(char c) {
        return !isspace((unsigned char) c) && !strchr("<>\"'`()[]{}|\\^", c) && c != 0;
}

static bool is_local_char(char c) {
        return isalnum((unsigned char) c) || (c && strchr("._%+-=", c));
}

/* Length of an e-mail domain at p ("mail.example.org"), 0 when there is none. */
static size_t domain_length(const char *p, size_t n) {
        size_t i = 0, last_dot = 0;

        while (i < n && (isalnum((unsigned char) p[i]) || p[i] == '-' || p[i] == '.')) {
                if (p[i] == '.' && i + 1 < n && isalnum((unsigned char) p[i + 1]))
                        last_dot = i;
                i++;
        }
        while (i > 0 && (p[i - 1] == '.' || p[i - 1] == '-'))
                i--;
        return last_dot > 0 && last_dot < i ? i : 0;
}

size_t text_remove_links(char *s, size_t n) {
        size_t r = 0, w = 0;

        while (r < n) {
                size_t url = 0;

                if (((s[r] | 0x20) == 'h' || (s[r] | 0x20) == 'w') && (r == 0 || !isalnum((unsigned char) s[r - 1])) &&
                    ((n - r >= 7 && strncasecmp(s + r, "http://", 7) == 0) ||
                     (n - r >= 8 && strncasecmp(s + r, "https://", 8) == 0) ||
                     (n - r >= 4 && strncasecmp(s + r, "www.", 4) == 0 && r + 4 < n &&
                      isalnum((unsigned char) s[r + 4])))) {
                        url = r;
                        while (url < n && is_url_char(s[url]))
                                url++;
                        /* A sentence may end right after a link. */
                        while (url > r && strchr(".,;:!?", s[url - 1]))
                                url--;
                        url -= r;
                } else if (s[r] == '@' && w > 0 && is_local_char(s[w - 1])) {
                        size_t d = domain_length(s + r + 1, n - r - 1);
                        if (d > 0) {
                                /* Take back the local part already copied. */
                                while (w > 0 && is_local_char(s[w - 1]))
                                        w--;
                                url = 1 + d;
                        }
                }
                if (url > 0) {
                        /* One blank keeps the words around apart, never two. */
                        r += url;
                        if (w > 0 && !isspace((unsigned char) s[w - 1]) && r < n && !isspace((unsigned char) s[r]))
                                s[w++] = ' ';
                        else if (w > 0 && s[w - 1] == ' ' && r < n && s[r] == ' ')
                                r++;
                        continue;
                }
                s[w++] = s[r++];
        }
        if (w < n)
                s[w] = 0;
        return w;
}

/* ---- quoted and forwarded text ---- */

static bool contains_case(const char *l, size_t len, const char *word) {
        size_t wl = strlen(word);

        for (size_t i = 0; i + wl <= len; i++)
                if (strncasecmp(l + i, word, wl) == 0)
                        return true;
        return false;
}

/* The line [l, l+len) without its leading blanks and quote markers. */
static const char *line_body(const char *l, size_t *len) {
        while (*len > 0 && (*l == ' ' || *l == '>')) {
                l++;
                (*len)--;
        }
        return l;
}

static bool starts_case(const char *l, size_t len, const char *prefix) {
        size_t pl = strlen(prefix);
        return len >= pl && strncasecmp(l, prefix, pl) == 0;
}

/* "-------- Message transféré --------", "-----Original Message-----", "Begin forwarded
 * message:" and their French forms. */
static bool is_forward_separator(const char *l, size_t len) {
        static const char *const words[] = {
                "message transfere", "forwarded message", "original message", "message d'origine",
                "message original", "message initial", "courriel transfere", "mail transfere", NULL,
        };

        if (starts_case(l, len, "begin forwarded message") || starts_case(l, len, "debut du message reexpedie") ||
            starts_case(l, len, "debut du message transfere"))
                return true;
        if (len < 2 || !((l[0] == '-' && l[1] == '-') || (l[0] == '_' && l[1] == '_')))
                return false;
        for (const char *const *w = words; *w; w++)
                if (contains_case(l, len, *w))
                        return true;
        return false;
}

/* A header line of a quoted message ("De : …", "Subject: …"): returns 2 for From, 1 for the
 * others, 0 for none. */
static int header_line(const char *l, size_t len) {
        static const char *const from[] = { "de", "from", "expediteur", NULL };
        static const char *const other[] = { "envoye", "sent", "date", "objet", "subject", "sujet", "a",
                                             "to", "pour", "cc", "destinataire", NULL };

        for (int k = 0; k < 2; k++)
                for (const char *const *h = k == 0 ? from : other; *h; h++) {
                        size_t hl = strlen(*h), i = hl;
                        if (!starts_case(l, len, *h))
                                continue;
                        while (i < len && l[i] == ' ')
                                i++;
                        if (i < len && l[i] == ':')
                                return k == 0 ? 2 : 1;
                }
        return 0;
}

/* "Le 06/02/2026, Jérôme <rh@…> a écrit :" / "On Mon, …, X wrote:", maybe wrapped once. */
static bool is_reply_header(const char *l, size_t len, const char *next, size_t next_len) {
        char buf[512];
        size_t n;

        if (!starts_case(l, len, "le ") && !starts_case(l, len, "on "))
                return false;
        if (len == 0 || len >= sizeof buf)
                return false;
        memcpy(buf, l, len);
        n = len;
        if (l[len - 1] != ':') {
                if (!next || next_len == 0 || next[next_len - 1] != ':' || n + 1 + next_len >= sizeof buf)
                        return false;
                buf[n++] = ' ';
                memcpy(buf + n, next, next_len);
                n += next_len;
        }
        return contains_case(buf, n, "a ecrit") || contains_case(buf, n, "wrote") ||
               contains_case(buf, n, "schrieb");
}

/* Offset of the first line that starts quoted or forwarded text, or n. */
static size_t quote_start(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                const char *nl = memchr(s + i, '\n', n - i), *next = NULL;
                size_t len = nl ? (size_t) (nl - s) - i : n - i, next_len = 0, blen = len;
                const char *b = line_body(s + i, &blen);

                if (nl) {
                        const char *e = memchr(nl + 1, '\n', n - (size_t) (nl + 1 - s));
                        next_len = e ? (size_t) (e - nl - 1) : n - (size_t) (nl + 1 - s);
                        next = line_body(nl + 1, &next_len);
                }
                /* Every marker starts with "--"/"__" or "le "/"on ", or holds a ':'. */
                if (blen == 0 || (b[0] != '-' && b[0] != '_' && (b[0] | 0x20) != 'l' && (b[0] | 0x20) != 'o' &&
                                  !memchr(b, ':', blen))) {
                        i += len + 1;
                        continue;
                }
                if (is_forward_separator(b, blen) || is_reply_header(b, blen, next, next_len))
                        return i;
                /* A header block: a From line next to another header line. */
                int h = header_line(b, blen);
                if (h > 0 && next) {
                        int hn = header_line(next, next_len);
                        if (hn > 0 && (h == 2 || hn == 2))
                                return i;
                }
                i += len + 1;
        }
        return n;
}

int text_split_quoted(const char *s, size_t n, char **ret_own, size_t *ret_own_len, char **ret_quoted,
                      size_t *ret_quoted_len) {
        _cleanup_strbuf_ StrBuf own = STRBUF_INIT(0), quoted = STRBUF_INIT(0);
        size_t q = quote_start(s, n);
        bool any = q < n;

        for (size_t i = 0; i < q && !any;) {
                if (s[i] == '>')
                        any = true;
                const char *nl = memchr(s + i, '\n', q - i);
                i = nl ? (size_t) (nl - s) + 1 : q;
        }
        if (!any)
                return 0;

        for (size_t i = 0; i < n;) {
                const char *nl = memchr(s + i, '\n', n - i);
                size_t len = nl ? (size_t) (nl - s) - i + 1 : n - i;
                bool is_quote = i >= q || s[i] == '>';
                const char *l = s + i;
                size_t ll = len;
                int r;

                if (is_quote) {
                        while (ll > 0 && (*l == '>' || *l == ' ')) {
                                l++;
                                ll--;
                        }
                        r = strbuf_append(&quoted, l, ll);
                        if (r >= 0 && (ll == 0 || l[ll - 1] != '\n'))
                                r = strbuf_putc(&quoted, '\n');
                } else
                        r = strbuf_append(&own, l, ll);
                if (r < 0)
                        return r;
                i += len;
        }
        if (strbuf_ensure(&own) < 0 || strbuf_ensure(&quoted) < 0)
                return -ENOMEM;
        *ret_own = strbuf_take(&own, ret_own_len);
        *ret_quoted = strbuf_take(&quoted, ret_quoted_len);
        return 1;
}

size_t text_control_len(const unsigned char *p, size_t n) {
        if (n == 0)
                return 0;
        if (p[0] < 0x20 || p[0] == 0x7f)
                return 1;
        if (n >= 2 && p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
                return 2;
        if (n >= 2 && p[0] == 0xD8 && p[1] == 0x9C)
                return 2;
        if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80 &&
            (p[2] == 0x8E || p[2] == 0x8F || (p[2] >= 0xA8 && p[2] <= 0xAE)))
                return 3;
        if (n >= 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9)
                return 3;
        if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
                return 3;
        return 0;
}
