#include <stdio.h>

#include "strbuf.h"

static int strbuf_reserve(StrBuf *b, size_t extra) {
        size_t need = b->len + extra + 1, a;
        char *p;

        if (need < b->len)
                return -ENOMEM;
        if (need <= b->alloc)
                return 0;
        a = MAX(b->alloc * 2, (size_t) 64);
        while (a < need)
                a *= 2;
        if (b->max > 0)
                a = MIN(a, b->max + 1);
        p = realloc(b->data, a);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->alloc = a;
        b->data[b->len] = 0; /* NUL-terminated even before the first append (strbuf_ensure) */
        return 0;
}

int strbuf_append(StrBuf *b, const void *p, size_t n) {
        int r, ret = 0;

        if (b->max > 0 && b->len + n > b->max) {
                n = b->max - MIN(b->len, b->max);
                b->truncated = true;
                ret = -E2BIG;
        }
        r = strbuf_reserve(b, n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return ret;
}

int strbuf_puts(StrBuf *b, const char *s) {
        return strbuf_append(b, s, strlen(s));
}

int strbuf_putc(StrBuf *b, char c) {
        return strbuf_append(b, &c, 1);
}

int strbuf_printf(StrBuf *b, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        int n, r;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        r = strbuf_append(b, s, (size_t) n);
        free(s);
        return r;
}

int strbuf_put_utf8(StrBuf *b, unsigned cp) {
        char u[4];

        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                cp = 0xFFFD;
        if (cp < 0x80)
                return strbuf_putc(b, (char) cp);
        if (cp < 0x800) {
                u[0] = (char) (0xC0 | (cp >> 6));
                u[1] = (char) (0x80 | (cp & 0x3F));
                return strbuf_append(b, u, 2);
        }
        if (cp < 0x10000) {
                u[0] = (char) (0xE0 | (cp >> 12));
                u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char) (0x80 | (cp & 0x3F));
                return strbuf_append(b, u, 3);
        }
        u[0] = (char) (0xF0 | (cp >> 18));
        u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char) (0x80 | (cp & 0x3F));
        return strbuf_append(b, u, 4);
}

int strbuf_ensure(StrBuf *b) {
        return strbuf_reserve(b, 0);
}

char *strbuf_take(StrBuf *b, size_t *ret_len) {
        char *p;

        if (strbuf_ensure(b) < 0)
                return NULL;
        p = TAKE_PTR(b->data);
        if (ret_len)
                *ret_len = b->len;
        *b = STRBUF_INIT(b->max);
        return p;
}

void strbuf_done(StrBuf *b) {
        free(b->data);
        *b = STRBUF_INIT(b->max);
}
