/* One thread per account: connect, scan every folder from its cursor, hand the results to the
 * main thread as WorkerEvents through the Queue, then watch for new mail. A worker owns its
 * IMAP session and its Pipeline; it shares only the immutable Config/Account/Rules and the
 * Queue. Everything it learns goes through the queue; nothing else is shared. */
#pragma once

#include <stdint.h>

#include "config.h"
#include "message.h"
#include "queue.h"
#include "rules.h"
#include "worker-state.h"

typedef struct Worker Worker;

typedef enum WorkerEventType {
        WORKER_EVENT_BATCH,     /* messages of one folder and the cursor they bring it to */
        WORKER_EVENT_STATE,     /* state/progress change */
        WORKER_EVENT_SCAN_DONE, /* a full pass over every folder finished */
        WORKER_EVENT_EXIT,      /* the thread is about to return (result set) */
} WorkerEventType;

/* Owned by whoever holds it; worker_event_free() frees everything. */
typedef struct WorkerEvent {
        WorkerEventType type;
        Worker *worker;          /* borrowed: the sender (valid until it is joined) */
        char *account;
        /* BATCH */
        char *folder;
        uint32_t uidvalidity;
        uint32_t last_uid;
        uint64_t highest_modseq;
        bool keep_cursor;        /* codes found ahead of the cursor: store them, leave it */
        uint32_t messages_seen;
        Message **messages;
        size_t n_messages;
        /* STATE: connecting, scanning, idle, backoff, failed or stopped */
        WorkerState state;
        char *error;             /* what went wrong, in words (no secrets) */
        int error_code;          /* -errno */
        unsigned progress, total;
        /* EXIT */
        int result;
} WorkerEvent;

void worker_event_free(void *e);

/* A folder cursor as stored, handed to the worker at start. */
typedef struct WorkerCursor {
        char *folder;
        uint32_t uidvalidity;
        uint32_t last_uid;
} WorkerCursor;

typedef struct WorkerOptions {
        const Account *account;       /* borrowed, immutable */
        const Rules *rules;           /* borrowed, immutable */
        char *const *employer_domains;
        char *const *user_addresses;  /* the user's own addresses: never trusted (copied) */
        Queue *queue;
        bool once;                    /* one pass, then exit */
        unsigned timeout_sec;         /* per IMAP command */
        WorkerCursor *cursors;        /* taken over */
        size_t n_cursors;
} WorkerOptions;

/* Starts the thread. Takes ownership of opts->cursors. */
int worker_start(const WorkerOptions *opts, Worker **ret);
/* Asks the thread to stop (any blocked command is cancelled). Any thread. */
void worker_stop(Worker *w);
/* Asks for a new pass over every folder from the cursors (rescan = from scratch). */
void worker_wake(Worker *w, bool rescan);
/* Joins the thread (after WORKER_EVENT_EXIT, or after worker_stop()) and frees it. */
Worker *worker_free(Worker *w);
const char *worker_account(const Worker *w);
