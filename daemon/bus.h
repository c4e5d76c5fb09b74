/* The daemon's own D-Bus API on the session bus (DESIGN.md; its names are in bus-names.h).
 * Methods answer from memory and one short SQLite query, never waiting on a worker or the
 * network. Main thread. */
#pragma once

#include <systemd/sd-bus.h>

#include <stdint.h>

#include "bus-names.h"
#include "store.h"
#include "worker-state.h"

typedef struct Bus Bus;

/* One account as Status() shows it. Strings are borrowed until the next event is dispatched. */
typedef struct AccountStatus {
        const char *account;
        WorkerState state;
        const char *error;   /* the last error in words, "" when none */
        int64_t last_sync;   /* seconds since the epoch of the last finished pass, 0: never */
        uint64_t messages;   /* messages read */
        uint64_t codes;      /* distinct codes found */
} AccountStatus;

/* What the API asks of its owner (the Manager, which owns the Bus: the dependency goes one way).
 * Each is called on the main thread with the userdata given to bus_new(). */
typedef struct BusHandlers {
        /* Accounts in config order; account_status() takes 0 <= i < n_accounts(). */
        size_t (*n_accounts)(void *userdata);
        int (*account_status)(void *userdata, size_t i, AccountStatus *ret);
        /* Scans account (NULL or "": every account) again from the start of its history;
         * restarts one that had stopped on an error. -ENOENT when there is no such account. */
        int (*rescan)(void *userdata, const char *account);
        /* Reads the configuration and the rules again (as SIGHUP does). -EINVAL with *ret_error
         * (owned, the first error, may be NULL) when they have errors: the running configuration
         * is kept. -ESHUTDOWN while stopping. */
        int (*reload)(void *userdata, char **ret_error);
        /* The open store (borrowed). */
        Store *(*store)(void *userdata);
} BusHandlers;

/* Publishes the object and takes the name. handlers (borrowed: static) and userdata serve every
 * method. -EEXIST when another alcoded owns the name. */
int bus_new(sd_bus *bus, const BusHandlers *handlers, void *userdata, Bus **ret);
Bus *bus_free(Bus *b);

/* Signals and property changes; each accepts b == NULL (no bus) and only logs its failures. */
void bus_emit_code_found(Bus *b, const StoredCode *c);
void bus_emit_account_state(Bus *b, const char *account, WorkerState state);
void bus_emit_accounts_changed(Bus *b);
