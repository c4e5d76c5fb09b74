/* One loaded configuration: the Config, the Rules compiled from its rule folders, and a digest
 * of the rule files they came from. Immutable once loaded. Workers borrow the Account, Rules
 * and employer domains of the Settings they were started with, so a Settings is
 * reference-counted: a reload (SIGHUP) installs a new one while the workers of unchanged
 * accounts keep the old one alive. ref/unref on the main thread only. */
#pragma once

#include <stdint.h>

#include "config.h"
#include "rules.h"

typedef struct Settings {
        unsigned n_ref;
        Config *config;          /* owned */
        Rules *rules;            /* owned */
        uint8_t rules_digest[32];
} Settings;

/* Loads the config at path (NULL: the default path) and its rules. Every error is logged as
 * "file:line: message" and, when ret_first_error is not NULL, the first one is returned there
 * (owned); returns -EINVAL when there was any, -ENOENT when an explicit path does not exist, or
 * another -errno. */
int settings_load(const char *path, Settings **ret, char **ret_first_error);
Settings *settings_ref(Settings *s);
Settings *settings_unref(Settings *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Settings *, settings_unref);

/* True when workers started with a can go on unchanged under b: same rule files, same
 * employer domains. (Per-account changes are account_equal()'s business.) */
bool settings_workers_equal(const Settings *a, const Settings *b);
