/* The Manager owns the main thread's world: sd-event loop, session bus, the store, the config
 * and rules, the notifier and one Worker per account. Workers talk to it only through the
 * Queue; everything here runs on the main thread. */
#pragma once

#include "config.h"
#include "rules.h"

typedef struct Manager Manager;

/* Takes ownership of config and rules. */
int manager_new(Config *config, Rules *rules, bool once, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Opens the store and the bus, starts the workers, sends READY=1. */
int manager_start(Manager *m);
/* Runs until stopped (or, with once, until every account is done). Returns the exit code. */
int manager_run(Manager *m);
