/* store-format: the store's codes as JSON Lines and CSV, and codes found by scan as JSON (see
 * store-format.c). */
#pragma once

#include <stdio.h>

#include "message.h"
#include "store.h"

/* Writes matching codes as JSON Lines (one object per line, per DESIGN.md) to out, built by
 * SQLite's JSON functions. Returns the number written, or -errno (of the failed write, when
 * writing to out failed: ferror(out) tells). */
int store_write_json(Store *s, const StoreFilter *f, FILE *out);
/* CSV export of every code with provenance (RFC 4180 quoting; cells a spreadsheet would run
 * as formulas get a leading apostrophe). Errors as store_write_json(). */
int store_write_csv(Store *s, FILE *out);
/* JSON for codes that are not stored (alcode scan): one line per code of m, the members of
 * store_write_json() that a message not in the store has, written by json-writer.h. */
int store_json_for_message(const Message *m, FILE *out);
