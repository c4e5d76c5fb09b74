/* The Manager owns the main thread's world: the sd-event loop, the session bus (notifications
 * and our D-Bus API), the system bus (logind's PrepareForSleep), the store, the current
 * Settings and one AccountSlot (with its Worker thread) per account. Workers talk to it only
 * through the Queue. Everything here runs on the main thread. */
#pragma once

#include <stdint.h>

#include "settings.h"
#include "store.h"
#include "worker-state.h"

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

/* For the D-Bus API (bus.c). Account i in config order, 0 <= i < manager_n_accounts(). Strings
 * are borrowed until the next event is dispatched. */
typedef struct AccountStatus {
        const char *account;
        WorkerState state;
        const char *error;   /* the last error in words, "" when none */
        int64_t last_sync;   /* seconds since the epoch of the last finished pass, 0: never */
        uint64_t messages;   /* messages read */
        uint64_t codes;      /* distinct codes found */
} AccountStatus;

size_t manager_n_accounts(const Manager *m);
int manager_account_status(Manager *m, size_t i, AccountStatus *ret);
/* Scans account (NULL or "": every account) again from the start of its history; restarts an
 * account that had stopped on an error. -ENOENT when there is no such account. */
int manager_rescan(Manager *m, const char *account);
/* Reads the configuration and the rules again (as SIGHUP does). -EINVAL with *ret_error (owned,
 * the first error, may be NULL) when they have errors: the running configuration is kept. */
int manager_reload_config(Manager *m, char **ret_error);
Store *manager_store(Manager *m);
