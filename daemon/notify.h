/* Desktop notifications through org.freedesktop.Notifications on the session bus, always
 * asynchronous, and the actions they offer (Copy runs the clipboard helper, watched from the
 * loop). A missing notification server is a warning: the codes are stored anyway, and what
 * could not be shown is shown when a server starts. Main thread only; its bus must be
 * attached to an sd-event loop in which SIGCHLD is blocked. */
#pragma once

#include <systemd/sd-bus.h>

#include "code-group.h"
#include "store.h"

typedef struct Notifier Notifier;

/* bus may be NULL (no session bus): every call then only logs. */
int notifier_new(sd_bus *bus, bool show_code, Notifier **ret);
Notifier *notifier_free(Notifier *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(Notifier *, notifier_free);
/* After a reload: mask the codes shown from now on, or not. */
void notifier_set_show_code(Notifier *n, bool show_code);

/* One notification for one code, one grouped notification for several (a backfill); folded
 * (may be NULL): the codes code_group_fold() took out of the list, counted in the group. */
int notifier_show_codes(Notifier *n, const StoredCode *codes, size_t n_codes, const CodeTally *folded);
/* Something the user must act on (refused login, changed certificate): critical urgency.
 * category: the hint, e.g. "network.error" or "x-alcode.config.error". */
int notifier_show_trouble(Notifier *n, const char *category, const char *summary, const char *body);
/* Notify calls still waiting for their reply. */
unsigned notifier_pending(const Notifier *n);
