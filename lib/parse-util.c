/* Shared value parsers (see parse-util.h): booleans, numbers, ports and mail domains. */
#include <ctype.h>
#include <idn2.h>

#include "parse-util.h"

int parse_boolean(const char *v) {
        if (strcaseeq(v, "yes") || strcaseeq(v, "true") || strcaseeq(v, "on") || streq(v, "1"))
                return 1;
        if (strcaseeq(v, "no") || strcaseeq(v, "false") || strcaseeq(v, "off") || streq(v, "0"))
                return 0;
        return -EINVAL;
}

int parse_unsigned(const char *v, unsigned max, unsigned *ret) {
        unsigned long u;
        char *end;

        /* strtoul() takes blanks, a sign and "0x" (with base 0) that nobody means here. */
        if (!isdigit((unsigned char) *v))
                return -EINVAL;
        errno = 0;
        u = strtoul(v, &end, 10);
        if (errno || *end || u > max)
                return -EINVAL;
        *ret = (unsigned) u;
        return 0;
}

int parse_port(const char *v, uint16_t *ret) {
        unsigned p;

        if (parse_unsigned(v, 65535, &p) < 0 || p == 0)
                return -EINVAL;
        *ret = (uint16_t) p;
        return 0;
}

/* RFC 1035 §2.3.1 (with RFC 1123's leading digit) and RFC 5891 §4.2.3.1 (no hyphen at either
 * end): what every valid IDNA domain is once in A-labels. */
static bool ldh_domain_valid(const char *d) {
        size_t label = 0, labels = 0, l = strlen(d);

        if (l == 0 || l > 253)
                return false;
        for (const char *p = d;; p++) {
                if (*p == '.' || *p == 0) {
                        if (label == 0 || p[-1] == '-')
                                return false;
                        labels++;
                        label = 0;
                        if (*p == 0)
                                break;
                        continue;
                }
                if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && *p != '-')
                        return false;
                if (label == 0 && *p == '-')
                        return false;
                if (++label > 63)
                        return false;
        }
        return labels >= 2;
}

int domain_normalize(const char *in, char **ret) {
        _cleanup_free_ char *out = NULL;
        bool ascii = true;

        if (strlen(in) > 1024)
                return -EINVAL;
        for (const char *p = in; *p; p++)
                if ((unsigned char) *p >= 0x80)
                        ascii = false;
                else if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return -EINVAL;
        if (ascii) {
                out = strdup(in);
                if (!out)
                        return -ENOMEM;
                for (char *p = out; *p; p++)
                        *p = (char) tolower((unsigned char) *p);
        }
        /* U-labels become A-labels; A-labels (xn--) are decoded and checked as U-labels are
         * (RFC 5891 §5.4): a made-up xn-- label is refused. libidn2 allocates with malloc(). */
        if (!ascii || strstr(out, "xn--")) {
                char *a = NULL;
                int r = idn2_lookup_u8((const uint8_t *) (out ?: in), (uint8_t **) &a, IDN2_NONTRANSITIONAL);
                if (r == IDN2_MALLOC)
                        return -ENOMEM;
                if (r != IDN2_OK)
                        return -EINVAL;
                free(out);
                out = a;
                for (char *p = out; *p; p++)
                        *p = (char) tolower((unsigned char) *p);
        }
        if (!ldh_domain_valid(out))
                return -EINVAL;
        *ret = TAKE_PTR(out);
        return 0;
}

bool domain_valid(const char *d) {
        _cleanup_free_ char *n = NULL;

        return domain_normalize(d, &n) == 0;
}

int address_domain_ascii(const char *address, char **ret) {
        const char *at = address ? strrchr(address, '@') : NULL;
        bool ascii = true;
        int r;

        *ret = NULL;
        for (const char *p = at; p && *p; p++)
                ascii = ascii && (unsigned char) *p < 0x80;
        if (ascii)
                return 0;
        r = domain_normalize(at + 1, ret);
        return r == -ENOMEM ? r : 0;
}
