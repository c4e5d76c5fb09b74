/* The states of an account, as its worker thread reports them and alcoded derives them: one
 * enum and one table that names each state twice, in the word alcoded publishes (Status(),
 * AccountStateChanged, `alcode status --json`: an interface, DESIGN.md) and in the words that
 * show it to a user (`alcode status`, alcoded's STATUS=). */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include "macro.h"

typedef enum WorkerState {
        WORKER_CONNECTING,
        WORKER_SCANNING,
        WORKER_IDLE,
        WORKER_BACKOFF,   /* waiting to reconnect after a failure */
        WORKER_PASSWORD,  /* backing off because password_command gave no password (alcoded) */
        WORKER_FAILED,    /* stopped: needs the user (login refused, certificate refused) */
        WORKER_STOPPED,
        WORKER_STUCK,     /* connecting or scanning, and silent for too long (alcoded) */
        _WORKER_STATE_MAX,
        _WORKER_STATE_INVALID = -EINVAL,
} WorkerState;

/* The published word ("backoff"), or NULL for a value out of range. */
const char *worker_state_to_string(WorkerState s) _pure_;
/* The state of a published word, or _WORKER_STATE_INVALID (NULL, or a word this version does
 * not know). */
WorkerState worker_state_from_string(const char *s) _pure_;
/* The untranslated words for a user ("waiting to reconnect"), or NULL for a value out of range:
 * pass them through _() to show them. */
const char *worker_state_to_words(WorkerState s) _pure_;
/* Whether a user should look at an account in this state (`alcode status` shows it in red):
 * not connected, and not by choice. False for a value out of range. */
bool worker_state_is_trouble(WorkerState s) _pure_;
