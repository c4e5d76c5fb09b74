/* libFuzzer: the sender judgement (From, Sender, Authentication-Results; mime.c's reading of
 * the header block and sender.c's) on arbitrary bytes, with a property checked by a separate,
 * deliberately simple reading: a sender judged trusted has exactly one From field, no control
 * byte in the header, one '@' and at most one '<' and '>' outside quoted strings and comments
 * in it, no ',' ':' ';' there (several mailboxes, a group, a source route), a domain without
 * a trailing dot, and no DKIM/DMARC result naming another header.from. Seeds:
 * tests/fuzz/seeds/sender. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "sender.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *const trusted[] = { (char *) "actionlogement.fr", (char *) "al-in.fr", NULL };
static char *const employer[] = { (char *) "menuiseries-durand.example", NULL };

static void fail(const char *what) {
        fprintf(stderr, "fuzz-sender: trusted although %s\n", what);
        abort();
}

/* The header block: lines up to the first empty one. Calls f(name, name_len, value) for each
 * field, the value unfolded into a buffer of its own. */
typedef struct Check {
        unsigned from;
        char from_value[8192];
        const char *domain;
} Check;

static bool domain_covers(const char *from_domain, const char *d) {
        size_t lf = strlen(from_domain), ld = strlen(d);
        if (ld == lf)
                return strcasecmp(from_domain, d) == 0;
        return lf > ld && from_domain[lf - ld - 1] == '.' && strcasecmp(from_domain + lf - ld, d) == 0;
}

static void check_auth_results(const char *v, const char *from_domain) {
        /* Every "header.from=" in a DMARC or DKIM result, outside comments. */
        char buf[8192];
        size_t k = 0;
        unsigned depth = 0;

        for (const char *p = v; *p && k + 1 < sizeof buf; p++) {
                if (*p == '(')
                        depth++;
                else if (*p == ')' && depth > 0)
                        depth--;
                else if (depth == 0)
                        buf[k++] = (char) tolower((unsigned char) *p);
        }
        buf[k] = 0;
        for (char *seg = buf, *next; seg; seg = next) {
                next = strchr(seg, ';');
                if (next)
                        *next++ = 0;
                char *method = seg + strspn(seg, " \t");
                if (seg == buf) { /* authserv-id [version] first */
                        method += strcspn(method, " \t");
                        method += strspn(method, " \t");
                        method += strspn(method, "0123456789");
                        method += strspn(method, " \t");
                }
                size_t ml = strcspn(method, " \t=/");
                if (!(ml == 5 && strncmp(method, "dmarc", 5) == 0) && !(ml == 4 && strncmp(method, "dkim", 4) == 0))
                        continue;
                for (char *h = strstr(seg, "header.from"); h; h = strstr(h + 1, "header.from")) {
                        char *q = h + 11, d[256];
                        size_t n;
                        if (h > seg && !isspace((unsigned char) h[-1]))
                                continue;
                        q += strspn(q, " \t");
                        if (*q != '=')
                                continue;
                        q++;
                        q += strspn(q, " \t\"");
                        n = strcspn(q, " \t\";");
                        if (n == 0 || n >= sizeof d)
                                continue;
                        memcpy(d, q, n);
                        d[n] = 0;
                        char *at = strrchr(d, '@'), *dom = at ? at + 1 : d;
                        if (*dom && dom[strlen(dom) - 1] == '.')
                                dom[strlen(dom) - 1] = 0;
                        if (!domain_covers(from_domain, dom))
                                fail("an Authentication-Results names another header.from");
                }
        }
}

static void check_header(const uint8_t *data, size_t size, const SenderInfo *s) {
        Check c = { .domain = s->domain };
        char *ar = NULL;
        size_t i = 0;

        while (i < size) {
                size_t e = i;
                while (e < size && data[e] != '\n')
                        e++;
                size_t len = e - i;
                if (len > 0 && data[e - 1] == '\r')
                        len--;
                if (len == 0)
                        break;
                for (size_t k = i; k < i + len; k++)
                        if ((data[k] < 0x20 && data[k] != '\t') || data[k] == 0x7f)
                                fail("a control byte in the header");
                /* Field name: up to ':', blanks before it allowed. */
                const uint8_t *colon = memchr(data + i, ':', len);
                if (colon && data[i] != ' ' && data[i] != '\t') {
                        size_t nl = (size_t) (colon - (data + i));
                        while (nl > 0 && (data[i + nl - 1] == ' ' || data[i + nl - 1] == '\t'))
                                nl--;
                        /* Its value with the continuation lines. */
                        char value[8192];
                        size_t vk = 0, j = (size_t) (colon - data) + 1;
                        for (; j < size; j++) {
                                if (data[j] == '\n' && !(j + 1 < size && (data[j + 1] == ' ' || data[j + 1] == '\t')))
                                        break;
                                if (data[j] != '\r' && data[j] != '\n' && vk + 1 < sizeof value)
                                        value[vk++] = (char) data[j];
                        }
                        value[vk] = 0;
                        if (nl == 4 && strncasecmp((const char *) data + i, "from", 4) == 0) {
                                if (c.from++ == 0)
                                        memcpy(c.from_value, value, vk + 1);
                        } else if (nl == 22 && strncasecmp((const char *) data + i, "authentication-results", 22) == 0) {
                                ar = strdup(value);
                                if (ar && s->domain)
                                        check_auth_results(ar, s->domain);
                                free(ar);
                        }
                }
                i = e + 1;
        }
        if (c.from != 1)
                fail("not exactly one From field");

        unsigned at = 0, lt = 0, gt = 0, sep = 0, depth = 0;
        bool quoted = false;
        for (const char *p = c.from_value; *p; p++) {
                if (quoted) {
                        if (*p == '\\' && p[1])
                                p++;
                        else if (*p == '"')
                                quoted = false;
                        continue;
                }
                if (depth > 0) {
                        if (*p == '\\' && p[1])
                                p++;
                        else if (*p == '(')
                                depth++;
                        else if (*p == ')')
                                depth--;
                        continue;
                }
                switch (*p) {
                case '"': quoted = true; break;
                case '(': depth++; break;
                case '@': at++; break;
                case '<': lt++; break;
                case '>': gt++; break;
                case ',': case ';': case ':': sep++; break;
                }
        }
        if (at != 1)
                fail("not one '@' in the From field");
        if (lt > 1 || gt > 1 || lt != gt)
                fail("several or unbalanced angle brackets");
        if (sep > 0)
                fail("several mailboxes, a group or a source route");
        if (quoted || depth > 0)
                fail("an unterminated quoted string or comment");
        if (!s->domain || !*s->domain || s->domain[strlen(s->domain) - 1] == '.')
                fail("no domain, or a trailing dot");
        if (!s->address || strchr(s->address, '@') != strrchr(s->address, '@'))
                fail("an address without exactly one '@'");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        MimeMessage *m = NULL;
        SenderInfo s = {};

        if (mime_parse((const char *) data, size, NULL, &m) < 0)
                abort(); /* only -ENOMEM may fail */
        if (sender_analyze(m, trusted, employer, NULL, &s) < 0)
                abort();
        if (sender_trusted(&s, trusted, true))
                check_header(data, size, &s);
        sender_info_done(&s);
        mime_message_free(m);
        return 0;
}
