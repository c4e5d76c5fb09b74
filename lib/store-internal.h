/* What store.c lends store-format.c, which formats the rows of its queries: nothing else
 * includes this. SQLite result codes become -errno in store.c only. */
#pragma once

#include <sqlite3.h>

#include "store.h"

static inline void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

/* sqlite3_prepare_v2() on the store's connection. */
int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret);
/* SELECT columns FROM codes c JOIN messages m WHERE what f asks, newest first; in columns, ?3 is
 * the current time. */
int store_filter_query(Store *s, const char *columns, const StoreFilter *f, sqlite3_stmt **ret);
/* An SQLite result code as 0 or -errno. */
int store_errno_from_sqlite(int rc);
