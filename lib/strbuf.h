/* A growable, length-tracked, always NUL-terminated byte buffer with a hard cap. Every decoder
 * writes through one, so that no input can make us allocate without bound. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "macro.h"

typedef struct StrBuf {
        char *data;     /* owned; NUL-terminated when non-NULL */
        size_t len;
        size_t alloc;
        size_t max;     /* 0 = no cap */
        bool truncated; /* an append hit the cap; what fit was kept */
} StrBuf;

#define STRBUF_INIT(cap) ((StrBuf) { .max = (cap) })

/* Appends n bytes. Past the cap, appends what fits, sets truncated and returns -E2BIG. */
int strbuf_append(StrBuf *b, const void *p, size_t n);
int strbuf_puts(StrBuf *b, const char *s);
int strbuf_putc(StrBuf *b, char c);
int strbuf_printf(StrBuf *b, const char *fmt, ...) _printf_(2, 3);
/* Appends the UTF-8 encoding of code point cp (invalid ones become U+FFFD). */
int strbuf_put_utf8(StrBuf *b, unsigned cp);
/* Makes sure data is non-NULL (an empty string) so it can be taken. */
int strbuf_ensure(StrBuf *b);
/* Returns the data (owned by the caller) and resets the buffer. */
char *strbuf_take(StrBuf *b, size_t *ret_len);
void strbuf_done(StrBuf *b);

static inline void strbuf_donep(StrBuf *b) {
        strbuf_done(b);
}
#define _cleanup_strbuf_ _cleanup_(strbuf_donep)
