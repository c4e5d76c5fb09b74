/* The Manager owns the main thread's world: the sd-event loop, the session bus (notifications
 * and our D-Bus API), the system bus (logind's PrepareForSleep), the store, the current
 * Settings and one AccountSlot (with its Worker thread) per account. Workers talk to it only
 * through the Queue. Everything here runs on the main thread. */
#pragma once

#include <stdint.h>

#include "settings.h"
#include "store.h"

typedef struct Manager Manager;

/* Takes a reference on settings. config_path (NULL: the default) is read again on SIGHUP. */
int manager_new(const char *config_path, Settings *settings, bool once, Manager **ret);
/* Frees everything. Must not be called while manager_stuck() is true: a thread blocked in
 * libetpan still uses the queue and its Settings (exit the process instead). */
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Opens the store and the buses, starts the workers, sends READY=1. Logs its errors. */
int manager_start(Manager *m);
/* Runs until stopped (SIGTERM/SIGINT), or with once until every account finished its pass.
 * Returns the exit code: 0, or 1 when with once some account failed. */
int manager_run(Manager *m);
/* True when, after manager_run(), a worker thread did not stop within the bound. */
bool manager_stuck(const Manager *m);

