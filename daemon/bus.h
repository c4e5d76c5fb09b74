/* The daemon's own D-Bus API on the session bus (DESIGN.md; its names are in bus-names.h).
 * Methods answer from memory and one short SQLite query, never waiting on a worker or the
 * network. Main thread. */
#pragma once

#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "manager.h"
#include "store.h"
#include "worker-state.h"

typedef struct Bus Bus;

/* Publishes the object and takes the name. -EEXIST when another alcoded owns it. */
int bus_new(sd_bus *bus, Manager *m, Bus **ret);
Bus *bus_free(Bus *b);

/* Signals and property changes; each accepts b == NULL (no bus) and only logs its failures. */
void bus_emit_code_found(Bus *b, const StoredCode *c);
void bus_emit_account_state(Bus *b, const char *account, WorkerState state);
void bus_emit_accounts_changed(Bus *b);
