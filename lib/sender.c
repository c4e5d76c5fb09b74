/* Sender trust is decided on the From addr-spec's domain only, compared label by label; the
 * display name, Return-Path and Reply-To never make a sender trusted, they can only raise
 * suspicion. The From must be unambiguous first: one From field (counted by mime.c from the
 * bytes), holding one mailbox that this file parses strictly (RFC 5322 without the obsolete
 * forms, comments or quoting inside the address) and that libetpan reads the same; anything
 * else may be read differently by the receiving server's DMARC check and the user's mail
 * program, so it is never trusted.
 *
 * The topmost Authentication-Results header is the one the user's own MTA added (RFC 8601 §5:
 * MTAs remove or rename forged ones above theirs); a pass is read there only. A DKIM/DMARC
 * result naming another header.from than our From domain (the server read another From), a
 * DMARC failure, or a DKIM failure with no passing aligned signature makes a trusted domain
 * untrusted, in any A-R header: one added lower down can only take trust away from its own
 * message. alcode.rules(5) and SECURITY.md state the rule for users.
 *
 * Look-alikes are judged on a confusable skeleton (UTS #39 in spirit, with a small table):
 * punycode labels are decoded, Cyrillic/Greek letters that look Latin are mapped to it, and
 * separators dropped, so "xn--actionlogment-43k.fr", "actionlogernent.fr" and
 * "actionlogement.fr.espace-securise.example" all reveal the brand they imitate. A look-alike
 * is never trusted; it is flagged so the user sees it. */
#include <ctype.h>
#include <idn2.h>
#include <stdio.h>

#include "mime.h"
#include "sender.h"
#include "strbuf.h"
#include "strv.h"
#include "text.h"

void sender_info_done(SenderInfo *s) {
        free(s->address);
        free(s->domain);
        free(s->name);
        free(s->auth_domain);
        *s = (SenderInfo) {};
}

/* ---- one mailbox, strictly (RFC 5322 §3.4, without the obsolete and the doubtful) ---- */

static bool ascii_alnum(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* atext, and UTF-8 bytes (RFC 6532). */
static bool is_atext(unsigned char c) {
        return ascii_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c)) || c >= 0x80;
}

/* Skips blanks and comments (nested, with quoted pairs) from p; counts the comments. NULL
 * when a comment is not closed. */
static const char *skip_cfws(const char *p, const char *e, unsigned *comments) {
        for (;;) {
                unsigned depth = 0;

                while (p < e && (*p == ' ' || *p == '\t'))
                        p++;
                if (p >= e || *p != '(')
                        return p;
                (*comments)++;
                do {
                        if (*p == '\\' && ++p >= e)
                                return NULL;
                        else if (*p == '(')
                                depth++;
                        else if (*p == ')')
                                depth--;
                        p++;
                } while (p < e && depth > 0);
                if (depth > 0)
                        return NULL;
        }
}

/* p at '"': past the closing quote, or NULL. */
static const char *skip_quoted(const char *p, const char *e) {
        for (p++; p < e; p++) {
                if (*p == '\\') {
                        if (++p >= e)
                                return NULL;
                } else if (*p == '"')
                        return p + 1;
        }
        return NULL;
}

/* Why [p, e) is not a plain addr-spec (dot-atom "@" domain), or NULL. */
static const char *addr_spec_why(const char *p, const char *e) {
        const char *at = NULL, *q;

        if (p >= e)
                return "no address";
        if (*p == '@')
                return "a source route before the address";
        for (q = p; q < e; q++)
                switch (*q) {
                case '(': case ')':
                        return "a comment inside the address";
                case '\\':
                        return "a backslash inside the address";
                case '"':
                        return "a quoted local part";
                case ' ': case '\t':
                        return "a blank inside the address";
                case '[': case ']':
                        return "a domain literal";
                case ',': case ':': case ';': case '<': case '>':
                        return "a second address inside the address";
                case '@':
                        if (at)
                                return "two '@' in the address";
                        at = q;
                        break;
                }
        if (!at || at == p || at + 1 >= e)
                return "no local part and domain";
        /* local part: atoms separated by single dots */
        for (q = p; q < at; q++)
                if (*q == '.' ? q == p || q + 1 == at || q[1] == '.' : !is_atext((unsigned char) *q))
                        return "a malformed local part";
        /* domain: non-empty labels of letters, digits, '-' (and UTF-8), no trailing dot */
        if (e[-1] == '.')
                return "a trailing dot in the domain";
        for (q = at + 1; q < e; q++) {
                unsigned char c = (unsigned char) *q;
                if (c == '.' ? q == at + 1 || q[-1] == '.' : !(ascii_alnum(c) || c == '-' || c >= 0x80))
                        return "a malformed domain";
        }
        return NULL;
}

/* Whether the display name holds an address-looking word other than address. */
static bool name_has_other_address(const char *name, const char *address) {
        static const char stop[] = " \t\"'<>()[],;:";

        for (const char *at = strchr(name, '@'); at; at = strchr(at + 1, '@')) {
                const char *s = at, *e = at + 1;
                while (s > name && !strchr(stop, s[-1]))
                        s--;
                while (*e && !strchr(stop, *e))
                        e++;
                if (s == at || e == at + 1 || !memchr(at + 1, '.', (size_t) (e - at - 1)))
                        continue;
                while (e > at + 1 && e[-1] == '.')
                        e--;
                if (strlen(address) != (size_t) (e - s) || strncasecmp(s, address, (size_t) (e - s)) != 0)
                        return true;
        }
        return false;
}

/* The structure of a From value, outside quoted strings and comments: at most one <...>, no
 * group, no list. Returns why it is refused, or NULL with the '<' and '>' (NULL when none) and
 * whether an '@' appears before any '<'. */
static const char *mailbox_structure_why(const char *v, const char *e, const char **ret_lt, const char **ret_gt,
                                         bool *ret_at_outside) {
        const char *lt = NULL, *gt = NULL;
        unsigned comments = 0, n_lt = 0, n_gt = 0, n_comma = 0, n_group = 0, n_at_outside = 0;

        for (const char *q = v; q < e;) {
                if (*q == '"') {
                        if (!(q = skip_quoted(q, e)))
                                return "an unterminated quoted string";
                        continue;
                }
                if (*q == '(') {
                        if (!(q = skip_cfws(q, e, &comments)))
                                return "an unterminated comment";
                        continue;
                }
                bool inside = n_lt > n_gt;
                switch (*q) {
                case '<':
                        if (n_lt++ == 0)
                                lt = q;
                        break;
                case '>':
                        if (n_gt++ == 0)
                                gt = q;
                        break;
                case ',':
                        n_comma += !inside;
                        break;
                case ':': case ';':
                        n_group += !inside;
                        break;
                case '@':
                        n_at_outside += n_lt == 0;
                        break;
                }
                q++;
        }
        if (n_lt > 1 || n_gt > 1)
                return "several angle addresses";
        if (n_lt == 1 && n_gt == 0)
                return "no closing '>'";
        if (n_gt > n_lt || (lt && gt < lt))
                return "a stray '>'";
        if (n_group > 0)
                return "a group or a source route";
        if (n_comma > 0)
                return "several mailboxes";
        *ret_lt = lt;
        *ret_gt = gt;
        *ret_at_outside = n_at_outside > 0;
        return NULL;
}

int sender_parse_mailbox(const char *v, size_t n, char **ret_address, const char **ret_why) {
        const char *e = v + n, *p, *lt = NULL, *gt = NULL, *a0, *a1, *why;
        unsigned comments = 0;
        bool at_outside = false;
        _cleanup_free_ char *address = NULL;

#define REFUSE(why) do { *ret_why = (why); return -EINVAL; } while (0)
        if (!v)
                REFUSE("no From field");
        for (size_t i = 0; i < n; i++)
                if (((unsigned char) v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
                        REFUSE("a NUL or control character");
        why = mailbox_structure_why(v, e, &lt, &gt, &at_outside);
        if (why)
                REFUSE(why);

        if (lt) {
                /* display-name "<" addr-spec ">": the name is words, quoted strings, comments. */
                if (at_outside)
                        REFUSE("the display name is an address");
                for (p = v; p < lt;) {
                        if (*p == '"')
                                p = skip_quoted(p, lt);
                        else if (*p == ' ' || *p == '\t' || *p == '(')
                                p = skip_cfws(p, lt, &comments);
                        else if (is_atext((unsigned char) *p) || *p == '.')
                                p++;
                        else
                                REFUSE("junk before the address");
                        if (!p)
                                REFUSE("junk before the address");
                }
                a0 = lt + 1;
                a1 = gt;
                p = skip_cfws(gt + 1, e, &comments);
                if (p != e)
                        REFUSE("junk after the address");
        } else {
                /* A bare addr-spec, maybe with a comment after it. */
                a0 = skip_cfws(v, e, &comments);
                if (!a0)
                        REFUSE("an unterminated comment");
                for (a1 = a0; a1 < e && *a1 != ' ' && *a1 != '\t' && *a1 != '('; a1++)
                        ;
                p = skip_cfws(a1, e, &comments);
                if (p != e)
                        REFUSE(a0 == a1 ? "no address" : "junk around the address");
        }
        why = addr_spec_why(a0, a1);
        if (why)
                REFUSE(why);

        address = strndup(a0, (size_t) (a1 - a0));
        if (!address)
                return -ENOMEM;
        for (char *d = strrchr(address, '@'); *d; d++)
                *d = (char) tolower((unsigned char) *d);
        if (lt && lt > v) {
                _cleanup_free_ char *name = mime_decode_header(v, (size_t) (lt - v));
                if (!name)
                        return -ENOMEM;
                if (name_has_other_address(name, address))
                        REFUSE("the display name is another address");
        }
#undef REFUSE
        *ret_address = TAKE_PTR(address);
        *ret_why = NULL;
        return 0;
}

bool sender_domain_matches(const char *domain, const char *d) {
        size_t ld, lx;

        if (!domain || !d || !*d)
                return false;
        ld = strlen(domain);
        lx = strlen(d);
        if (ld == lx)
                return strcaseeq(domain, d);
        return ld > lx && domain[ld - lx - 1] == '.' && strcaseeq(domain + ld - lx, d);
}

bool sender_domain_in(const char *domain, char *const *list) {
        STRV_FOREACH(d, list)
                if (sender_domain_matches(domain, *d))
                        return true;
        return false;
}

/* ---- punycode: libidn2 (RFC 3492, RFC 5891) ---- */

int sender_punycode_decode(const char *label, size_t len, char **ret) {
        _cleanup_free_ char *ace = NULL;
        char *out = NULL;
        int r;

        /* One label: a '.' or a NUL would make libidn2 read several, or fewer. */
        if (len > SENDER_LABEL_MAX || memchr(label, '.', len) || memchr(label, 0, len))
                return -EINVAL;
        if (asprintf(&ace, "xn--%.*s", (int) len, label) < 0)
                return -ENOMEM;
        r = idn2_to_unicode_8z8z(ace, &out, 0);
        if (r == IDN2_MALLOC)
                return -ENOMEM;
        if (r != IDN2_OK)
                return -EINVAL;
        *ret = strdup(out);
        idn2_free(out);
        return *ret ? 0 : -ENOMEM;
}

/* ---- confusable skeleton ---- */

static const struct {
        uint16_t cp;
        char c;
} confusables[] = {
        /* Cyrillic */
        { 0x0430, 'a' }, { 0x0435, 'e' }, { 0x0451, 'e' }, { 0x043E, 'o' }, { 0x0440, 'p' },
        { 0x0441, 'c' }, { 0x0443, 'y' }, { 0x0445, 'x' }, { 0x0456, 'l' }, { 0x0457, 'l' },
        { 0x0458, 'j' }, { 0x0455, 's' }, { 0x0501, 'd' }, { 0x04BB, 'h' }, { 0x051B, 'q' },
        { 0x051D, 'w' }, { 0x043A, 'k' }, { 0x043C, 'm' }, { 0x0410, 'a' }, { 0x0412, 'b' },
        { 0x0415, 'e' }, { 0x041A, 'k' }, { 0x041C, 'm' }, { 0x041D, 'h' }, { 0x041E, 'o' },
        { 0x0420, 'p' }, { 0x0421, 'c' }, { 0x0422, 't' }, { 0x0423, 'y' }, { 0x0425, 'x' },
        { 0x0406, 'l' }, { 0x0408, 'j' }, { 0x0405, 's' }, { 0x04CF, 'l' },
        /* Greek */
        { 0x03B1, 'a' }, { 0x03B5, 'e' }, { 0x03B9, 'l' }, { 0x03BA, 'k' }, { 0x03BD, 'v' },
        { 0x03BF, 'o' }, { 0x03C1, 'p' }, { 0x03C4, 't' }, { 0x03C5, 'u' }, { 0x03C7, 'x' },
        { 0x0391, 'a' }, { 0x0392, 'b' }, { 0x0395, 'e' }, { 0x0396, 'z' }, { 0x0397, 'h' },
        { 0x0399, 'l' }, { 0x039A, 'k' }, { 0x039C, 'm' }, { 0x039D, 'n' }, { 0x039F, 'o' },
        { 0x03A1, 'p' }, { 0x03A4, 't' }, { 0x03A5, 'y' }, { 0x03A7, 'x' },
        /* Latin look-alikes that folding keeps */
        { 0x0237, 'j' }, { 0x0261, 'g' }, { 0x0251, 'a' }, { 0x0269, 'l' }, { 0x01C0, 'l' },
        { 0x2113, 'l' },
};

/* After text_fold() (accents and full-width forms gone): ASCII letters in one case, the
 * letters that pass for each other in one class (i, l, 1, |; o, 0), Cyrillic and Greek
 * look-alikes as their Latin twin; 0 for what is not a letter. */
static char skeleton_char(unsigned cp) {
        if (cp < 0x80) {
                int c = tolower((int) cp);
                switch (c) {
                case '0': return 'o';
                case '1': case '|': case 'i': return 'l';
                }
                return isalpha(c) ? (char) c : 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(confusables); i++)
                if (confusables[i].cp == cp)
                        return confusables[i].c;
        return 0;
}

static int skeleton_append(StrBuf *b, const char *s, size_t len) {
        _cleanup_free_ char *folded = NULL;
        size_t n;
        int r;

        r = text_fold(s, len, 1024, &folded, &n);
        if (r == -ENOMEM)
                return r;
        for (size_t i = 0; i < n;) {
                unsigned cp;
                char c;

                i += text_utf8_decode(folded + i, n - i, &cp);
                c = skeleton_char(cp);
                if (c && (r = strbuf_putc(b, c)) == -ENOMEM)
                        return r;
        }
        return 0;
}

char *sender_skeleton(const char *s) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(1024);
        const char *p = s;

        while (*p) {
                size_t l = strcspn(p, ".@");
                _cleanup_free_ char *decoded = NULL;

                if (l > 4 && strncasecmp(p, "xn--", 4) == 0 &&
                    sender_punycode_decode(p + 4, l - 4, &decoded) == 0) {
                        if (skeleton_append(&b, decoded, strlen(decoded)) < 0)
                                return NULL;
                } else if (skeleton_append(&b, p, l) < 0)
                        return NULL;
                p += l;
                if (*p)
                        p++;
        }
        if (strbuf_ensure(&b) < 0)
                return NULL;
        /* "rn" reads as "m", "vv" as "w". */
        char *o = b.data;
        for (const char *q = b.data; *q; q++) {
                if (q[0] == 'r' && q[1] == 'n')
                        *o++ = 'm', q++;
                else if (q[0] == 'v' && q[1] == 'v')
                        *o++ = 'w', q++;
                else
                        *o++ = *q;
        }
        *o = 0;
        return strbuf_take(&b, NULL);
}

/* Brand names, as skeletons ('i' reads 'l'). "alin" (AL'in) is short: only a whole label or a
 * label prefix counts in a domain, and only a whole word in a display name. */
static const char *const brand_skeletons[] = { "actlonlogement", "actlonslogement", "vlsale", NULL };
#define ALIN_SKELETON "alln"

static bool skeleton_has_brand(const char *k) {
        for (const char *const *t = brand_skeletons; *t; t++)
                if (strstr(k, *t))
                        return true;
        return false;
}

static bool domain_lookalike(const char *domain, char *const *trusted) {
        _cleanup_free_ char *k = sender_skeleton(domain);
        const char *p;

        if (!k)
                return false;
        if (skeleton_has_brand(k))
                return true;
        STRV_FOREACH(t, trusted) {
                _cleanup_free_ char *tk = sender_skeleton(*t);
                if (tk && strlen(tk) >= 5 && strstr(k, tk))
                        return true;
        }
        /* AL'in: "alin" / "al-in" as a label or label prefix ("al-in-fr.com", "alin-verif.example"). */
        for (p = domain; p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL) {
                size_t l = strcspn(p, ".");
                _cleanup_free_ char *label = strndup(p, l), *lk = NULL;

                if (!label)
                        return false;
                lk = sender_skeleton(label);
                if (lk && startswith(lk, ALIN_SKELETON))
                        return true;
        }
        return false;
}

static bool name_claims_brand(const char *name, char *const *trusted) {
        _cleanup_free_ char *k = NULL;

        if (!name)
                return false;
        STRV_FOREACH(t, trusted)
                if (strcasestr(name, *t))
                        return true;
        k = sender_skeleton(name);
        if (!k)
                return false;
        if (skeleton_has_brand(k))
                return true;
        /* "AL'in", "AL’in", "AL-in", "ALIN" as a word of the name. */
        for (const char *p = name; *p;) {
                size_t l = strcspn(p, " \t\"()<>[],;:");
                if (l >= 4 && l <= 8) {
                        _cleanup_free_ char *w = strndup(p, l);
                        _cleanup_free_ char *wk = w ? sender_skeleton(w) : NULL;
                        if (wk && streq(wk, ALIN_SKELETON))
                                return true;
                }
                p += l;
                p += strspn(p, " \t\"()<>[],;:");
        }
        return false;
}

/* ---- Authentication-Results (RFC 8601) ---- */

typedef struct AuthSummary {
        bool dmarc_fail, dmarc_pass, dkim_fail, dkim_pass;
        char *other_domain; /* a header.from that is not the From domain */
} AuthSummary;

/* Whether a signing/asserted domain is aligned (relaxed) with the From domain. */
static bool aligned(const char *d, const char *from_domain) {
        return sender_domain_matches(from_domain, d) || sender_domain_matches(d, from_domain);
}

/* Copies an A-R value without comments, so that "(...)" holds no false "dkim=pass". */
static char *strip_comments(const char *v) {
        char *o = strdup(v), *q = o;
        unsigned depth = 0;
        bool quoted = false;

        if (!o)
                return NULL;
        for (const char *p = v; *p; p++) {
                if (quoted) {
                        if (*p == '"')
                                quoted = false;
                        *q++ = *p;
                } else if (*p == '(')
                        depth++;
                else if (*p == ')' && depth > 0)
                        depth--;
                else if (depth == 0) {
                        if (*p == '"')
                                quoted = true;
                        *q++ = *p;
                }
        }
        *q = 0;
        return o;
}

/* The value of the first property name=value in resinfo at or after *from (NULL: from the
 * start), and *from moved past it so that a loop sees every one. */
static const char *prop_value_next(const char *resinfo, const char *name, char *buf, size_t size,
                                   const char **from) {
        size_t l = strlen(name);

        for (const char *p = from && *from ? *from : resinfo; (p = strcasestr(p, name)); p += l) {
                const char *v;
                size_t n;

                if (p > resinfo && !isspace((unsigned char) p[-1]))
                        continue;
                v = p + l;
                v += strspn(v, " \t");
                if (*v != '=')
                        continue;
                v++;
                v += strspn(v, " \t\"");
                n = strcspn(v, " \t\";");
                if (from) {
                        *from = v + n;
                        if (n == 0)
                                continue;
                        n = MIN(n, size - 1); /* cut: it matches nothing, which is safe */
                }
                if (n == 0 || n >= size)
                        return NULL;
                memcpy(buf, v, n);
                buf[n] = 0;
                /* header.i=@sub.domain or user@domain: keep the domain, in lower case, without
                 * a trailing dot. */
                char *at = strrchr(buf, '@'), *d = at ? at + 1 : buf;
                for (char *c = d; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                if (*d && d[strlen(d) - 1] == '.')
                        d[strlen(d) - 1] = 0;
                return d;
        }
        return NULL;
}

static const char *prop_value(const char *resinfo, const char *name, char *buf, size_t size) {
        return prop_value_next(resinfo, name, buf, size, NULL);
}

/* Reads one Authentication-Results value. Every DKIM or DMARC result that names a header.from
 * other than from_domain is recorded (in any header: it can only make trust harder); failures
 * for from_domain count in any header; passes only in the topmost one (top), the user's own
 * server's. Returns 0 or -ENOMEM. */
static int auth_summarize(const char *value, const char *from_domain, bool top, AuthSummary *ret) {
        _cleanup_free_ char *v = strip_comments(value);
        char *save = NULL, *res;
        bool first = true;

        if (!v)
                return -ENOMEM;
        for (res = strtok_r(v, ";", &save); res; res = strtok_r(NULL, ";", &save), first = false) {
                char method[16], result[16], dbuf[256];
                const char *d;
                size_t ml, rl;

                res += strspn(res, " \t\r\n");
                if (first) {
                        /* authserv-id [version]: what follows without a ';' is read as a result
                         * all the same (a malformed header can only take trust away). */
                        res += strcspn(res, " \t\r\n");
                        res += strspn(res, " \t\r\n");
                        res += strspn(res, "0123456789");
                        res += strspn(res, " \t\r\n");
                }
                ml = strcspn(res, " \t=/");
                if (ml == 0 || ml >= sizeof method)
                        continue;
                memcpy(method, res, ml);
                method[ml] = 0;
                if (!strcaseeq(method, "dmarc") && !strcaseeq(method, "dkim"))
                        continue;
                /* The From domain the checker read: it must be ours (or, as some write it, its
                 * organisational domain: mail.al-in.fr read as al-in.fr), whatever the result,
                 * even one we cannot read (fuzz-sender found "dmarc=<junk>pass header.from=x"). */
                bool other = false;
                const char *at = NULL;
                while (!other && (d = prop_value_next(res, "header.from", dbuf, sizeof dbuf, &at)))
                        if (!sender_domain_matches(from_domain, d) || !strchr(d, '.')) {
                                if (!ret->other_domain && !(ret->other_domain = strdup(d)))
                                        return -ENOMEM;
                                other = true;
                        }
                if (other)
                        continue;
                const char *eq = strchr(res, '=');
                if (!eq)
                        continue;
                eq++;
                eq += strspn(eq, " \t");
                rl = strcspn(eq, " \t\r\n");
                if (rl == 0 || rl >= sizeof result)
                        continue;
                memcpy(result, eq, rl);
                result[rl] = 0;
                if (strcaseeq(method, "dmarc")) {
                        if (strcaseeq(result, "fail"))
                                ret->dmarc_fail = true;
                        else if (strcaseeq(result, "pass") && top)
                                ret->dmarc_pass = true;
                } else {
                        d = prop_value(res, "header.d", dbuf, sizeof dbuf);
                        if (!d)
                                d = prop_value(res, "header.i", dbuf, sizeof dbuf);
                        if (d && !aligned(d, from_domain))
                                continue;
                        if (strcaseeq(result, "fail"))
                                ret->dkim_fail = true;
                        else if (strcaseeq(result, "pass") && d && top)
                                ret->dkim_pass = true;
                }
        }
        return 0;
}

/* Why the From (and Sender) fields of m are ambiguous, or NULL. Sets *ret_address to the
 * strictly parsed From address when there is one. */
static int judge_fields(const MimeMessage *m, char **ret_address, const char **ret_why) {
        _cleanup_free_ char *from = NULL, *sender = NULL;
        const char *why = NULL;
        int r;

        *ret_why = NULL;
        if (m->header_control)
                return *ret_why = "a NUL or control character in the header", 0;
        if (m->n_from == 0)
                return *ret_why = "no From field", 0;
        if (m->n_from > 1)
                return *ret_why = "several From fields", 0;
        if (m->header_long)
                return *ret_why = "a From or Sender field too long to judge", 0;
        if (m->n_sender > 1)
                return *ret_why = "several Sender fields", 0;
        r = sender_parse_mailbox(m->from_raw, m->from_raw_len, &from, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return *ret_why = why, 0;
        *ret_address = TAKE_PTR(from);
        /* libetpan gave the rest of the pipeline its reading: it must be the same. */
        if (!m->from.address || !strcaseeq(m->from.address, *ret_address))
                return *ret_why = "the From field reads as two different addresses", 0;
        if (m->n_sender == 1) {
                r = sender_parse_mailbox(m->sender_raw, m->sender_raw_len, &sender, &why);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return *ret_why = "a malformed Sender field", 0;
        }
        return 0;
}

static bool address_in(const char *address, char *const *list) {
        STRV_FOREACH(a, list)
                if (strcaseeq(address, *a))
                        return true;
        return false;
}

int sender_analyze(const MimeMessage *m, char *const *trusted_domains,
                   char *const *employer_domains, char *const *user_addresses, SenderInfo *ret) {
        _cleanup_(sender_info_done) SenderInfo s = {};
        _cleanup_free_ char *strict = NULL;
        const char *ambiguous;
        int r;

        r = judge_fields(m, &strict, &ambiguous);
        if (r < 0)
                return r;
        s.ambiguous = ambiguous;
        if (strict || m->from.address) {
                /* The strict reading when there is one (domain in lower case), else libetpan's. */
                s.address = strict ? TAKE_PTR(strict) : strdup(m->from.address);
                if (!s.address)
                        return -ENOMEM;
                r = mail_address_domain(s.address, &s.domain);
                if (r == -ENOMEM)
                        return r;
                s.self = address_in(s.address, user_addresses);
        }
        if (m->from.name && !(s.name = strdup(m->from.name)))
                return -ENOMEM;

        if (s.domain) {
                bool trusted_domain = sender_domain_in(s.domain, trusted_domains);
                AuthSummary a = {};

                STRV_FOREACH(ar, m->auth_results)
                        if (auth_summarize(*ar, s.domain, ar == m->auth_results, &a) < 0) {
                                free(a.other_domain);
                                return -ENOMEM;
                        }
                s.auth_domain = a.other_domain;
                s.auth_conflict = a.other_domain;
                s.auth_failed = a.dmarc_fail || (a.dkim_fail && !a.dkim_pass);
                s.auth_passed = !s.auth_failed && !s.auth_conflict && (a.dmarc_pass || a.dkim_pass);
                s.employer = sender_domain_in(s.domain, employer_domains);
                if (!trusted_domain && !s.employer && !s.self)
                        s.lookalike = domain_lookalike(s.domain, trusted_domains) ||
                                      name_claims_brand(s.name, trusted_domains);

                /* A Reply-To elsewhere than a trusted From: who answers is not who wrote. With
                 * passing authentication it is only a campaign tool's address; without it, it
                 * is the classic spoof. */
                for (size_t i = 0; i < m->n_reply_to && trusted_domain && !s.auth_passed; i++) {
                        _cleanup_free_ char *d = NULL;
                        if (!m->reply_to[i].address || mail_address_domain(m->reply_to[i].address, &d) < 0)
                                continue;
                        if (!sender_domain_in(d, trusted_domains) && !sender_domain_in(d, employer_domains))
                                s.mismatch = true;
                }
                if (s.self)
                        s.why = "the user's own address";
                else if (s.ambiguous)
                        s.why = ambiguous;
                else if (s.auth_conflict)
                        s.why = "Authentication-Results judged another From domain (header.from)";
                else if (s.auth_failed)
                        s.why = "Authentication-Results shows DMARC/DKIM failing for the From domain";
                else if (s.mismatch)
                        s.why = "Reply-To points outside the trusted From domain";
                else if (s.lookalike)
                        s.why = "look-alike of a trusted sender";
        } else if (m->from.name || m->from.address) {
                /* No domain: "From: Action Logement" is all it says. */
                s.lookalike = name_claims_brand(m->from.name, trusted_domains) ||
                              name_claims_brand(m->from.address, trusted_domains);
                if (s.ambiguous)
                        s.why = ambiguous;
                else if (s.lookalike)
                        s.why = "look-alike of a trusted sender";
        }

        *ret = s;
        s = (SenderInfo) {};
        return 0;
}

bool sender_trusted(const SenderInfo *s, char *const *domains, bool employer) {
        if (!s || !s->domain || s->self || s->ambiguous || s->auth_conflict || s->auth_failed || s->lookalike ||
            s->mismatch)
                return false;
        if (sender_domain_in(s->domain, domains))
                return true;
        return employer && s->employer;
}

bool sender_folder_is_sent(const char *folder) {
        static const char *const names[] = {
                "sent", "sent items", "sent messages", "sent mail", "sent-mail", "envoyes",
                "elements envoyes", "messages envoyes", "courrier envoye", "envoye", NULL,
        };
        const char *base;
        char buf[64];
        size_t k = 0;

        if (!folder)
                return false;
        /* Last hierarchy level: "INBOX.Sent", "[Gmail]/Sent Mail". */
        base = folder + strlen(folder);
        while (base > folder && base[-1] != '/' && base[-1] != '.')
                base--;
        /* Fold the few accents these names carry: é and É. Names are UTF-8: IMAP's modified
         * UTF-7 is decoded once, by imap_utf7_decode(). */
        for (const char *p = base; *p && k + 1 < sizeof buf; p++) {
                if ((unsigned char) p[0] == 0xC3 && ((unsigned char) p[1] == 0xA9 || (unsigned char) p[1] == 0x89)) {
                        buf[k++] = 'e';
                        p++;
                } else
                        buf[k++] = (char) tolower((unsigned char) *p);
        }
        buf[k] = 0;
        for (const char *const *n = names; *n; n++)
                if (streq(buf, *n))
                        return true;
        return false;
}
