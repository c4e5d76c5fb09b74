/* Shared by the CLI verbs: parsed options (arg_*), exit codes, helpers to open the config,
 * rules and store the way every verb does, and to print for people (colours, table cells).
 *
 * Two binaries are linked from cli/: `alcode` holds only the verbs over the store
 * (alcode.c, cli-common.c, cli-codes.c), so that `alcode latest` loads SQLite and not the
 * mail, TLS, HTTP and D-Bus stack; `alcode-full` holds every verb, and `alcode` executes it for
 * the verbs it lacks (VERB_FULL in alcode.c's table). Measured on a 100,000-code store (Release
 * build, hyperfine -N, 2 shared cores): `alcode --version` 1.7 ms in alcode, 8.3 ms in
 * alcode-full (46 shared libraries instead of 13, libcurl's the most); `alcode latest` 2.4 ms
 * against 8.3 ms, where the bare sqlite3 shell takes 1.9 ms (bench/store.py's bound is 2x).
 * A new verb: its declaration here, a row in alcode.c's table, a cli-*.c file. */
#pragma once

#include <stdio.h>

#include "config.h"
#include "message.h"
#include "rules.h"
#include "store.h"

enum {
        EXIT_NONE = 1,        /* latest: no such code; show/forget: unknown id; check: errors */
        EXIT_BAD_INPUT = 2,   /* usage errors; unreadable input: mail files, the database */
        EXIT_NO_DAEMON = 3,   /* status/rescan: the daemon is not running */
};

extern const char *arg_db;
extern const char *arg_config;
extern bool arg_json;
extern bool arg_csv;
extern bool arg_store;
extern bool arg_explain;
extern bool arg_untrusted;
extern const char *arg_kind;
extern const char *arg_account;
extern bool arg_color;

/* Loads the config (errors printed; returns < 0 on failure). A missing default config is not
 * an error: the defaults are used. */
int cli_load_config(Config **ret);
/* Loads the rules of config, printing errors. */
int cli_load_rules(const Config *config, Rules **ret);
/* Opens the store (--db, else the config's `database`, else the default) read-only for queries
 * or read-write, printing a clear error that names the file. */
int cli_open_store(StoreMode mode, Store **ret);
/* The same, read-only, printing nothing (for what a verb only adds to its answer). */
int cli_open_store_quiet(Store **ret);
/* Prints what failed when reading or writing the open store failed with r; returns
 * EXIT_BAD_INPUT. */
int cli_store_error(Store *s, int r);
/* Flushes stdout; a closed pipe (alcode list | head) is not an error. Returns 0 or prints
 * the error and returns EXIT_BAD_INPUT. */
int cli_flush_stdout(void);


/* Terminal colours, only when arg_color. */
const char *ansi_bold(void);
const char *ansi_red(void);
const char *ansi_yellow(void);
const char *ansi_grey(void);
const char *ansi_normal(void);

/* Columns that UTF-8 text s takes on a terminal (wide characters count 2, combining 0). */
size_t cli_text_width(const char *s);
/* Prints s (NULL: "-") to f in at most max columns (0: no limit; longer text ends with "…"),
 * padded with spaces to width. Control characters, which mail could use to drive the
 * terminal, are printed as '?'. */
void cli_print_cell(FILE *f, const char *s, size_t width, size_t max);
/* The one output path for text from outside (mail, file names, stored values): control
 * characters (C0, C1, DEL), bidi controls, U+2028/9 and bytes that are not UTF-8 are written
 * as '?'. cli_write_text() writes n bytes (multiline: '\n' kept); cli_print_text() a string
 * (NULL: "-"); cli_clean() and cli_cleann() return a cleaned copy (NULL on OOM) for messages built with
 * printf(). */
void cli_write_text(FILE *f, const char *s, size_t n, bool multiline);
void cli_print_text(FILE *f, const char *s);
char *cli_clean(const char *s);          /* NULL: "n/a" */
char *cli_cleann(const char *s, size_t n);
/* "2026-03-02 09:14" in local time, or "-". */
void cli_local_date(int64_t t, char *buf, size_t size);

int verb_list(int argc, char *argv[]);
int verb_latest(int argc, char *argv[]);
int verb_show(int argc, char *argv[]);
int verb_export(int argc, char *argv[]);
int verb_forget(int argc, char *argv[]);
/* Only in alcode-full: */
int verb_scan(int argc, char *argv[]);
int verb_check(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_rescan(int argc, char *argv[]);
int verb_init(int argc, char *argv[]);
/* Keeps the value of one of alcode init's options (name without "--"; value NULL for flags). */
int init_set_option(const char *name, const char *value);
