/* json-writer: see json-writer.h. Plain stdio, no allocation: a line is written as it is built. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "json-writer.h"
#include "text.h"

int json_write_control(FILE *out, const unsigned char *p, size_t n) {
        unsigned cp = n == 1 ? p[0]
                    : n == 2 ? (p[0] & 0x1Fu) << 6 | (p[1] & 0x3Fu)
                             : (p[0] & 0x0Fu) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu);

        return fprintf(out, "\\u%04x", cp) < 0 ? negative_errno() : 0;
}

/* The short escapes json_quote() uses for C0 controls; 0 where it writes \u00xx. */
static char short_escape(unsigned char c) {
        switch (c) {
        case '\b': return 'b';
        case '\t': return 't';
        case '\n': return 'n';
        case '\f': return 'f';
        case '\r': return 'r';
        default: return 0;
        }
}

int json_write_string(FILE *out, const char *s) {
        const unsigned char *p = (const unsigned char *) s, *end = p + strlen(s);
        int r;

        if (putc('"', out) < 0)
                return negative_errno();
        while (p < end) {
                size_t n = text_control_len(p, (size_t) (end - p));
                char e;

                if (n == 1 && (e = short_escape(*p))) {
                        if (putc('\\', out) < 0 || putc(e, out) < 0)
                                return negative_errno();
                } else if (n > 0) {
                        r = json_write_control(out, p, n);
                        if (r < 0)
                                return r;
                } else {
                        n = 1;
                        if ((*p == '"' || *p == '\\') && putc('\\', out) < 0)
                                return negative_errno();
                        if (putc(*p, out) < 0)
                                return negative_errno();
                }
                p += n;
        }
        return putc('"', out) < 0 ? negative_errno() : 0;
}

static void keep_error(JsonWriter *w, int r) {
        if (r < 0 && w->error == 0)
                w->error = r;
}

void json_writer_begin(JsonWriter *w, FILE *out) {
        *w = (JsonWriter) { .out = out, .first = true };
        if (putc('{', out) < 0)
                keep_error(w, negative_errno());
}

static void member(JsonWriter *w, const char *key) {
        if (!w->first && putc(',', w->out) < 0)
                keep_error(w, negative_errno());
        w->first = false;
        keep_error(w, json_write_string(w->out, key));
        if (putc(':', w->out) < 0)
                keep_error(w, negative_errno());
}

void json_writer_string(JsonWriter *w, const char *key, const char *value) {
        member(w, key);
        if (!value) {
                if (fputs("null", w->out) < 0)
                        keep_error(w, negative_errno());
                return;
        }
        keep_error(w, json_write_string(w->out, value));
}

void json_writer_null(JsonWriter *w, const char *key) {
        json_writer_string(w, key, NULL);
}

void json_writer_bool(JsonWriter *w, const char *key, bool value) {
        member(w, key);
        if (fputs(value ? "true" : "false", w->out) < 0)
                keep_error(w, negative_errno());
}

void json_writer_int(JsonWriter *w, const char *key, int64_t value) {
        member(w, key);
        if (fprintf(w->out, "%" PRIi64, value) < 0)
                keep_error(w, negative_errno());
}

void json_writer_uint(JsonWriter *w, const char *key, uint64_t value) {
        member(w, key);
        if (fprintf(w->out, "%" PRIu64, value) < 0)
                keep_error(w, negative_errno());
}

int json_writer_end(JsonWriter *w) {
        if (fputs("}\n", w->out) < 0)
                keep_error(w, negative_errno());
        return w->error;
}
