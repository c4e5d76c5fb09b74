/* Shared by the CLI verbs: parsed options (arg_*), exit codes, helpers to open the config,
 * rules and store the way every verb does. */
#pragma once

#include <stdio.h>

#include "config.h"
#include "message.h"
#include "rules.h"
#include "store.h"

enum {
        EXIT_NONE = 1,        /* latest: no such code; show: unknown id; check: errors */
        EXIT_BAD_INPUT = 2,   /* scan: unreadable input; usage errors */
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

/* Loads the config (errors printed; returns < 0 on failure). With optional, a missing default
 * config is not an error. */
int cli_load_config(Config **ret);
/* Loads the rules of config, printing errors. */
int cli_load_rules(const Config *config, Rules **ret);
/* Opens the store read-only (queries) or read-write, printing a clear error. */
int cli_open_store(StoreMode mode, Store **ret);

/* The kind in words, for people ("code spécifique"), translated. */
const char *cli_kind_words(CodeKind k);

/* Terminal colours, only when arg_color. */
const char *ansi_bold(void);
const char *ansi_red(void);
const char *ansi_yellow(void);
const char *ansi_grey(void);
const char *ansi_normal(void);

int verb_list(int argc, char *argv[]);
int verb_latest(int argc, char *argv[]);
int verb_show(int argc, char *argv[]);
int verb_export(int argc, char *argv[]);
int verb_forget(int argc, char *argv[]);
int verb_scan(int argc, char *argv[]);
int verb_check(int argc, char *argv[]);
