/* json-writer: JSON Lines objects for what is not a store query (alcode scan --json, alcode
 * status --json). The store's own JSON is built by SQLite's JSON functions in the query that
 * reads the rows (lib/store-format.c); this writer escapes strings the same way, so that both
 * print the same bytes for the same text.
 *
 * Strings are escaped as SQLite's json_quote() does ('"', '\\', C0 controls as \b \t \n \f \r
 * or \u00xx) and, in addition, every character of text_control_len() that SQLite leaves as it
 * is (DEL, C1, bidi controls, U+2028/9, BOM) is written as \uXXXX: the same string to any JSON
 * reader, nothing a terminal acts on. Bytes that are not UTF-8 are passed through, as SQLite
 * passes them (text from mail reaches here already decoded to UTF-8).
 *
 * A write error is kept: the first failed write's -errno is returned by json_writer_end(). */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "macro.h"

typedef struct JsonWriter {
        FILE *out;
        bool first;      /* no member written yet in the current object */
        int error;       /* 0, or the -errno of the first write that failed */
} JsonWriter;

/* Starts an object ('{') on out. */
void json_writer_begin(JsonWriter *w, FILE *out);
/* A member with a string value; value NULL writes null. */
void json_writer_string(JsonWriter *w, const char *key, const char *value);
void json_writer_null(JsonWriter *w, const char *key);
void json_writer_bool(JsonWriter *w, const char *key, bool value);
void json_writer_int(JsonWriter *w, const char *key, int64_t value);
void json_writer_uint(JsonWriter *w, const char *key, uint64_t value);
/* Ends the object and its line ("}\n"). Returns 0, or the -errno of the first failed write. */
int json_writer_end(JsonWriter *w);

/* Writes s as a JSON string literal, quotes included. Returns 0 or -errno. */
int json_write_string(FILE *out, const char *s);
/* Writes the n bytes at p (n >= 1), a character that text_control_len() found, as \uXXXX.
 * Returns 0 or -errno. Also used by the store's JSON output for what SQLite leaves as is. */
int json_write_control(FILE *out, const unsigned char *p, size_t n);
