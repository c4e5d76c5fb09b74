/* The worker thread. A pass over a folder: EXAMINE, compare UIDVALIDITY with the cursor (a
 * change means rescan from UID 1: the store's UNIQUE constraints absorb the repeats), list the
 * UIDs above the cursor, stream them in one FETCH and run the pipeline on each message as it
 * arrives. Every message is read by the same pipeline as `alcode scan`, so the daemon finds
 * exactly what the CLI finds: no server-side search ever decides that a message is not worth
 * reading (servers search raw, undecoded HTML and do not fold text as the rules do). What the
 * server's SEARCH does do, on a first pass, is pick the likely code mail (trusted senders,
 * brand words in the subject), which is read in every folder before any folder is read in
 * full, so that its codes show up in seconds.
 * Only what the rules read is downloaded: headers and text parts (imap_fetch_parts(): BODYSTRUCTURE,
 * then the sections, a few round trips per 1,000 messages), never attachments; an HTML
 * alternative beside a plain one only for mail that may hold a code (Message.wants_left_out,
 * run_pipeline()). A server whose
 * BODYSTRUCTURE libetpan cannot parse gets the old way from then on: whole messages, those
 * above LARGE_MESSAGE read through BODYSTRUCTURE one by one.
 *
 * One Batch is pushed every BATCH_MESSAGES messages; its cursor covers exactly what it
 * reports, so that the main thread's single transaction keeps codes and cursor together.
 *
 * Then, unless --once: IDLE (RFC 2177) on the `idle` folders, one connection each (the first
 * shares the main connection), and STATUS polling of the other folders every poll_interval;
 * plain polling when the server has no IDLE. IDLE is re-issued every 28 minutes (RFC 2177 asks
 * for less than 29).
 *
 * Every IMAP command runs under a watchdog deadline: a thread of this worker cancels the session
 * when a command makes no progress for 2 × timeout (libetpan's own per-read timeout does not
 * catch its busy loop on a connection cut inside a literal, nor a server that drips bytes).
 * The lines read during IDLE (keep-alives, notifications) are not: they would wake that thread
 * twice each; there a dripping server only delays its own news (the account's thread waits
 * anyway), and worker_stop() still cancels the read.
 *
 * Failures are classed as isync does: a message that cannot be parsed is read best-effort; a
 * folder that cannot be opened is skipped; a connection failure ends the pass and, unless
 * --once, backs off (exponential, jittered, capped, cancellable) and reconnects; a refused
 * login or certificate stops the worker: retrying would not help and would hammer the server. */
#include <fnmatch.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>

#include "imap.h"
#include "log.h"
#include "pipeline.h"
#include "strv.h"
#include "worker.h"

#define WORKER_STACK_SIZE (8u << 20) /* libetpan's MIME parser recurses */
#define WATCHDOG_STACK_SIZE (256u << 10)
#define BATCH_MESSAGES 500
#define LARGE_MESSAGE (256u << 10)  /* above: headers and text parts only */
#define MAX_TEXT_PART (4u << 20)
#define BACKOFF_MIN_SEC 2
#define BACKOFF_MAX_SEC 600
#define REIDLE_SEC (28 * 60)        /* RFC 2177: re-issue IDLE before 29 minutes */
#define MAX_IDLE_CONNECTIONS 4
#define RESCAN_LIMIT 3
#define MAX_PARALLEL_SCANS 4
#define PRIORITY_FIRST 32           /* likely code mails of a folder read (and stored) first */
#define THROTTLE_MIN_MS 1000        /* Gmail's "OK [THROTTLED]": the first pause, doubled while it */
#define THROTTLE_MAX_MS 60000       /* lasts, up to this, halved once it stopped */

typedef struct Conn {
        ImapSession *session;
        const ImapFolder *folder; /* the folder it IDLEs on, or NULL */
        int idle_fd;
        bool idling;
        int64_t idle_since;       /* ms */
} Conn;

struct Worker {
        pthread_t thread;
        bool started;
        WorkerOptions opts;
        char *account;
        int wake_fd;
        atomic_bool stop;
        atomic_bool rescan;
        Pipeline *pipeline;
        unsigned timeout_sec;
        unsigned poll_interval;
        unsigned backoff_min, backoff_max;
        bool progressed;          /* this session stored something: the server works */
        bool full_fetch;          /* BODYSTRUCTURE failed once: read whole messages */
        bool no_priority;         /* a pass was cut: go on from the cursors, no first pass */
        bool gated;               /* holds one of the MAX_PARALLEL_SCANS places */
        unsigned throttle_ms;     /* the pause at each chunk while the server says [THROTTLED] */
        unsigned throttle_min_ms, throttle_max_ms;
        WorkerState state;        /* what push_state() said last, with its progress */
        unsigned progress, total;
        bool gmail;               /* the server has X-GM-EXT-1 (see gmail_all()) */
        char **domains;           /* trusted sender domains (the first look's FROM) */
        char **self;              /* the user's own addresses (pipeline_set_user_addresses) */
        int64_t session_start;    /* ms: when this session began connecting (for "phase" debug lines) */

        ImapFolder *folders;      /* of the current connection */
        size_t n_folders;
        Conn conns[MAX_IDLE_CONNECTIONS]; /* [0]: the main connection */
        size_t n_conns;
        bool notify;              /* conns[0] watches every folder with NOTIFY (RFC 5465) */
        bool notify_names;        /* ... and the server says when folders come and go (MailboxName) */
        bool no_mailbox_names;    /* the server refused MailboxName once: not asked again */

        /* The watchdog: `lock` guards everything below and every Conn.session pointer. */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t watchdog;
        bool watchdog_started;
        bool watchdog_quit;
        ImapSession *armed;
        int64_t deadline;         /* ms, CLOCK_MONOTONIC; 0: disarmed */
        unsigned armed_sec;
};

void worker_event_free(void *p) {
        WorkerEvent *e = p;

        if (!e)
                return;
        free(e->account);
        free(e->folder);
        free(e->error);
        for (size_t i = 0; i < e->n_messages; i++)
                message_free(e->messages[i]);
        free(e->messages);
        free(e);
}

const char *worker_account(const Worker *w) {
        return w->account;
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A debug line saying how long into the session a step of the first pass ended: where the
 * time to the first code goes (alcoded -v; bench/backfill.py --trace). */
static void phase(Worker *w, const char *folder, const char *what) {
        LogContext ctx = { .account = w->account, .folder = folder };

        if (log_get_max_level() >= LOG_DEBUG)
                log_full_errno_ctx(LOG_DEBUG, 0, &ctx, "phase: %s at +%" PRIi64 " ms", what,
                                   now_ms() - w->session_start);
}

static LogContext ctx_of(const Worker *w, const char *folder) {
        return (LogContext) { .account = w->account, .folder = folder };
}

/* ---- watchdog ---- */

static void *watchdog_main(void *userdata) {
        Worker *w = userdata;

        pthread_mutex_lock(&w->lock);
        while (!w->watchdog_quit) {
                if (w->deadline == 0) {
                        pthread_cond_wait(&w->cond, &w->lock);
                        continue;
                }
                int64_t left = w->deadline - now_ms();
                if (left > 0) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ts.tv_sec += left / 1000;
                        ts.tv_nsec += (left % 1000) * 1000000;
                        if (ts.tv_nsec >= 1000000000) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000;
                        }
                        (void) pthread_cond_timedwait(&w->cond, &w->lock, &ts);
                        continue;
                }
                /* No progress for the whole window: the session is stalled or spinning. */
                log_full_errno_ctx(LOG_WARNING, -ETIMEDOUT, &(LogContext) { .account = w->account },
                                   "the server made no progress for %u s, dropping the connection",
                                   w->armed_sec);
                imap_session_cancel(w->armed);
                w->deadline = 0;
                w->armed = NULL;
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Arms (or re-arms, on progress) the deadline for what session s is doing now. */
static void watchdog_arm(Worker *w, ImapSession *s) {
        pthread_mutex_lock(&w->lock);
        w->armed = s;
        w->armed_sec = 2 * w->timeout_sec;
        w->deadline = now_ms() + 2000 * (int64_t) w->timeout_sec;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

/* Data arrived: the deadline moves on (only if armed: a late callback must not re-arm). */
static void watchdog_progress(void *userdata) {
        Worker *w = userdata;

        pthread_mutex_lock(&w->lock);
        if (w->deadline != 0)
                w->deadline = now_ms() + 2000 * (int64_t) w->timeout_sec;
        pthread_mutex_unlock(&w->lock);
}

static void watchdog_disarm(Worker *w) {
        pthread_mutex_lock(&w->lock);
        w->deadline = 0;
        w->armed = NULL;
        pthread_mutex_unlock(&w->lock);
}

/* Runs one IMAP call under the watchdog. */
#define GUARDED(w, s, call)                                                                        \
        ({                                                                                         \
                watchdog_arm(w, s);                                                                \
                int _r_ = (call);                                                                  \
                watchdog_disarm(w);                                                                \
                _r_;                                                                               \
        })

/* ---- events ---- */

static WorkerEvent *event_new(Worker *w, WorkerEventType type) {
        WorkerEvent *e = calloc(1, sizeof(WorkerEvent));

        if (!e)
                return NULL;
        e->type = type;
        e->worker = w;
        e->account = strdup(w->account);
        if (!e->account) {
                free(e);
                return NULL;
        }
        return e;
}

static int push(Worker *w, WorkerEvent *e) {
        int r;

        if (!e)
                return -ENOMEM;
        r = queue_push(w->opts.queue, e);
        if (r < 0)
                worker_event_free(e);
        return r;
}

static void push_state(Worker *w, WorkerState state, int error_code, const char *error,
                       unsigned progress, unsigned total) {
        WorkerEvent *e = event_new(w, WORKER_EVENT_STATE);

        w->state = state;
        w->progress = progress;
        w->total = total;
        if (!e)
                return;
        e->state = state;
        e->error_code = error_code;
        e->error = error ? strdup(error) : NULL;
        e->progress = progress;
        e->total = total;
        (void) push(w, e);
}

/* Gmail's "OK [THROTTLED]" (untagged, or at the end of a command's OK): the command is done,
 * but the account is slowed down. Where a scan may pause (between two chunks of a folder,
 * before a folder), it pauses: from throttle_min_ms, doubled each time the server said it again
 * since the last pause, up to throttle_max_ms, halved each time it did not. Never an error,
 * never a message skipped: only gaps between commands. alcode status says so while it lasts. */
static int throttle_pause(Worker *w, ImapSession *s) {
        struct pollfd p = { .fd = w->wake_fd, .events = POLLIN };
        unsigned before = w->throttle_ms;
        LogContext ctx = ctx_of(w, NULL);
        bool armed;
        char said[128];

        if (imap_throttled_take(s) > 0)
                w->throttle_ms = before ? MIN(2 * before, w->throttle_max_ms) : w->throttle_min_ms;
        else
                w->throttle_ms = before / 2 >= w->throttle_min_ms ? before / 2 : 0;
        if (w->throttle_ms == 0) {
                if (before > 0) {
                        log_full_errno_ctx(LOG_INFO, 0, &ctx, "the server no longer asks us to slow down");
                        push_state(w, w->state, 0, "", w->progress, w->total); /* "": the words said go */
                }
                return 0;
        }
        if (before == 0)
                log_full_errno_ctx(LOG_NOTICE, 0, &ctx, "the server asks us to slow down ([THROTTLED]): "
                                   "pausing between reads");
        (void) snprintf(said, sizeof said, "the server asks us to slow down: pausing %.1f s between reads",
                        w->throttle_ms / 1000.0);
        push_state(w, w->state, 0, said, w->progress, w->total);
        /* Not a stalled server: no deadline while we wait (a command's is armed again after). */
        pthread_mutex_lock(&w->lock);
        armed = w->deadline != 0;
        pthread_mutex_unlock(&w->lock);
        watchdog_disarm(w);
        (void) poll(&p, 1, (int) w->throttle_ms);
        if (armed)
                watchdog_arm(w, s);
        return atomic_load(&w->stop) ? -ECANCELED : 0;
}

/* ---- cursors ---- */

static WorkerCursor *cursor_find(Worker *w, const char *folder) {
        for (size_t i = 0; i < w->opts.n_cursors; i++)
                if (streq(w->opts.cursors[i].folder, folder))
                        return &w->opts.cursors[i];
        return NULL;
}

static int cursor_set(Worker *w, const char *folder, uint32_t uidvalidity, uint32_t last_uid) {
        WorkerCursor *c = cursor_find(w, folder), *l;

        if (!c) {
                l = reallocarray(w->opts.cursors, w->opts.n_cursors + 1, sizeof(WorkerCursor));
                if (!l)
                        return -ENOMEM;
                w->opts.cursors = l;
                c = &l[w->opts.n_cursors];
                *c = (WorkerCursor) { .folder = strdup(folder) };
                if (!c->folder)
                        return -ENOMEM;
                w->opts.n_cursors++;
        }
        c->uidvalidity = uidvalidity;
        c->last_uid = last_uid;
        return 0;
}

/* ---- folders ---- */

/* A glob matches a folder by its decoded name, its server name, or, when the glob names a
 * special use ("Junk"), by the RFC 6154 flag: a Junk folder called "Spam" is still Junk. */
static bool folder_matches(char *const *globs, const ImapFolder *f) {
        STRV_FOREACH(g, globs) {
                unsigned su = imap_special_use_from_string(*g);
                if (fnmatch(*g, f->display, 0) == 0 || fnmatch(*g, f->name, 0) == 0 || (su && (f->flags & su)))
                        return true;
        }
        return false;
}

static bool folder_selected(const Account *a, const ImapFolder *f) {
        if (f->flags & IMAP_FOLDER_NOSELECT)
                return false;
        return folder_matches(a->folders, f) && !folder_matches(a->exclude, f);
}

/* Gmail (X-GM-EXT-1): labels are folders there, so a labelled message shows up in INBOX, in
 * each of its labels and in All Mail. All Mail (\All) holds every message but those in Spam
 * and Trash: when the configuration selects it, those three are read and nothing else, and
 * each message is read once. The \All folder found among the server's folders, or NULL. */
static const ImapFolder *gmail_all(Worker *w) {
        if (!w->gmail)
                return NULL;
        for (size_t i = 0; i < w->n_folders; i++)
                if ((w->folders[i].flags & IMAP_FOLDER_ALL) && folder_selected(w->opts.account, &w->folders[i]))
                        return &w->folders[i];
        return NULL;
}

static bool folder_wanted(Worker *w, const ImapFolder *f) {
        if (!folder_selected(w->opts.account, f))
                return false;
        return !gmail_all(w) || (f->flags & (IMAP_FOLDER_ALL | IMAP_FOLDER_JUNK | IMAP_FOLDER_TRASH));
}

/* IDLE where asked; on Gmail, All Mail stands for INBOX (new mail lands in both). */
static bool folder_idle(Worker *w, const ImapFolder *f) {
        const Account *a = w->opts.account;

        if (!folder_wanted(w, f))
                return false;
        if (folder_matches(a->idle, f))
                return true;
        if (!gmail_all(w) || !(f->flags & IMAP_FOLDER_ALL))
                return false;
        for (size_t i = 0; i < w->n_folders; i++)
                if (strcaseeq(w->folders[i].name, "INBOX") && folder_matches(a->idle, &w->folders[i]))
                        return true;
        return false;
}

/* ---- scanning ---- */

/* Sessions that connect and read at once, over every account of the process: 50 accounts
 * reading at once share the CPU (ours and the server's) fifty ways, and each one's server-side
 * SEARCH and FETCH then outlast the watchdog. A session holds its place from connecting to the
 * end of its first pass; watching for new mail needs none. */
static pthread_mutex_t scan_gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scan_gate_cond = PTHREAD_COND_INITIALIZER;
static unsigned scans_running;

static int scan_gate_enter(Worker *w) {
        pthread_mutex_lock(&scan_gate_lock);
        while (scans_running >= MAX_PARALLEL_SCANS && !atomic_load(&w->stop)) {
                struct timespec ts;
                (void) clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec++; /* worker_stop() does not signal this condition: look again each second */
                (void) pthread_cond_timedwait(&scan_gate_cond, &scan_gate_lock, &ts);
        }
        if (!atomic_load(&w->stop)) {
                scans_running++;
                w->gated = true;
        }
        pthread_mutex_unlock(&scan_gate_lock);
        return w->gated ? 0 : -ECANCELED;
}

static void scan_gate_leave(Worker *w) {
        if (!w->gated)
                return;
        pthread_mutex_lock(&scan_gate_lock);
        scans_running--;
        w->gated = false;
        pthread_cond_signal(&scan_gate_cond);
        pthread_mutex_unlock(&scan_gate_lock);
}

typedef struct Scan {
        Worker *w;
        ImapSession *s;
        const ImapFolder *f;
        ImapFolderState st;
        WorkerEvent *batch;
        uint32_t floor;           /* cursor before this scan */
        uint32_t last;            /* highest UID read so far */
        bool keep_cursor;
        const uint32_t *skip;     /* UIDs read already (ascending) */
        size_t n_skip;
        size_t n_skip_counted;    /* skip[] below this index are in messages_seen */
        bool parts;               /* reading through imap_fetch_parts() */
        uint32_t *large;          /* UIDs to read through BODYSTRUCTURE */
        size_t n_large;
        size_t seen;
} Scan;

static int batch_start(Scan *sc) {
        sc->batch = event_new(sc->w, WORKER_EVENT_BATCH);
        if (!sc->batch || !(sc->batch->folder = strdup(sc->f->display))) {
                worker_event_free(TAKE_PTR(sc->batch));
                return -ENOMEM;
        }
        sc->batch->uidvalidity = sc->st.uidvalidity;
        sc->batch->highest_modseq = sc->st.highest_modseq;
        sc->batch->keep_cursor = sc->keep_cursor;
        return 0;
}

static int cmp_message_uid(const void *a, const void *b) {
        uint32_t x = (*(Message *const *) a)->ref.uid, y = (*(Message *const *) b)->ref.uid;
        return x < y ? -1 : x > y;
}

/* Pushes the batch with the cursor at `cursor` (never below where it was). */
static int batch_push(Scan *sc, uint32_t cursor) {
        int r;

        if (!sc->batch && (r = batch_start(sc)) < 0)
                return r;
        /* In UID order, as a whole-message read stores them (imap_fetch_parts() hands them
         * over by shape): the first sighting of a code is its source, so the store is the same
         * whichever way the messages came. */
        if (sc->batch->n_messages > 1)
                qsort(sc->batch->messages, sc->batch->n_messages, sizeof(Message *), cmp_message_uid);
        sc->batch->last_uid = MAX(cursor, sc->floor);
        if (!sc->keep_cursor) {
                r = cursor_set(sc->w, sc->f->display, sc->st.uidvalidity, sc->batch->last_uid);
                if (r < 0)
                        return r;
                sc->floor = sc->batch->last_uid;
        }
        sc->w->progressed = true;
        return push(sc->w, TAKE_PTR(sc->batch));
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

/* The cursor may only pass UIDs that are done: not a large message still to be read. */
static uint32_t safe_cursor(const Scan *sc) {
        return sc->n_large > 0 ? MIN(sc->last, sc->large[0] - 1) : sc->last;
}

static int run_pipeline(Scan *sc, const ImapMessage *m) {
        Worker *w = sc->w;
        MessageRef ref = { .account = w->account, .folder = sc->f->display,
                           .uidvalidity = sc->st.uidvalidity, .uid = m->uid, .sent = imap_folder_sent(sc->f),
                           .labels = (char **) m->labels, .left_out = m->alternatives_left_out };
        LogContext ctx = { .account = w->account, .folder = sc->f->display, .uid = m->uid };
        _cleanup_strv_free_ char **warnings = NULL;
        Message *msg = NULL;
        Message **l;
        int r;

        r = pipeline_run(w->pipeline, m->data, m->size, &ref, &msg, &warnings, NULL, NULL);
        if (r < 0)
                return r;
        if (msg->wants_left_out) {
                /* Its HTML alternative could change its codes: read it too, as in the whole message. */
                message_free(msg);
                return IMAP_FETCH_AGAIN;
        }
        STRV_FOREACH(wn, warnings)
                log_full_errno_ctx(LOG_DEBUG, 0, &ctx, "%s", *wn);
        if (r > 0)
                log_full_errno_ctx(LOG_WARNING, 0, &ctx, "message not read whole (text cut at a size limit or "
                                   "a rule stopped by PCRE2's limits)%s; alcode scan --explain says which",
                                   msg->n_codes == 0 ? ", no code found"
                                   : msg->codes[0].kind == CODE_KIND_POSSIBLE ? ", no code found: kept as a possible code"
                                                                              : "");
        if (msg->n_codes == 0) {
                message_free(msg);
                return 0;
        }
        log_full_errno_ctx(LOG_INFO, 0, &ctx, "found %zu code(s)", msg->n_codes);
        if (!sc->batch && (r = batch_start(sc)) < 0) {
                message_free(msg);
                return r;
        }
        l = reallocarray(sc->batch->messages, sc->batch->n_messages + 1, sizeof(Message *));
        if (!l) {
                message_free(msg);
                return -ENOMEM;
        }
        sc->batch->messages = l;
        l[sc->batch->n_messages++] = msg;
        return 0;
}

/* The messages of the first pass are not fetched again, but counted as read where the cursor
 * passes them, as if they had been. */
static int count_skipped(Scan *sc, uint32_t upto) {
        int r;

        while (sc->n_skip_counted < sc->n_skip && sc->skip[sc->n_skip_counted] <= upto) {
                if (!sc->batch && (r = batch_start(sc)) < 0)
                        return r;
                sc->batch->messages_seen++;
                sc->seen++;
                sc->n_skip_counted++;
        }
        return 0;
}

static int on_message(const ImapMessage *m, void *userdata) {
        Scan *sc = userdata;
        int r;

        if (atomic_load(&sc->w->stop))
                return -ECANCELED;
        r = count_skipped(sc, m->settled);
        if (r < 0)
                return r;
        if (m->uid == 0) {
                /* Every UID up to settled is done: the cursor may pass them, and a batch goes
                 * out only here, so that the messages it counts are exactly those below it. */
                sc->last = MAX(sc->last, m->settled);
                if (sc->batch && sc->batch->messages_seen >= BATCH_MESSAGES)
                        r = batch_push(sc, safe_cursor(sc));
                return r < 0 ? r : throttle_pause(sc->w, sc->s);
        }
        if (sc->n_skip > 0 && bsearch(&m->uid, sc->skip, sc->n_skip, sizeof(uint32_t), cmp_u32))
                return 0; /* read in the first pass already (and counted by count_skipped()) */
        if (!sc->parts && m->truncated && m->full_size > LARGE_MESSAGE) {
                /* Read it later, text parts only (another command cannot run inside this one). */
                uint32_t *l = reallocarray(sc->large, sc->n_large + 1, sizeof(uint32_t));
                if (!l)
                        return -ENOMEM;
                sc->large = l;
                sc->large[sc->n_large++] = m->uid;
                if (sc->n_large > 1 && m->uid < sc->large[sc->n_large - 2])
                        qsort(sc->large, sc->n_large, sizeof(uint32_t), cmp_u32);
        } else {
                r = run_pipeline(sc, m);
                if (r != 0)
                        return r; /* an error, or IMAP_FETCH_AGAIN: not read yet */
        }
        sc->last = MAX(sc->last, m->settled);
        sc->seen++;
        if (!sc->batch && (r = batch_start(sc)) < 0)
                return r;
        sc->batch->messages_seen++;
        if (!sc->parts && sc->batch->messages_seen >= BATCH_MESSAGES)
                return batch_push(sc, safe_cursor(sc));
        return 0;
}

static int on_large_message(const ImapMessage *m, void *userdata) {
        return m->uid == 0 ? 0 : run_pipeline(userdata, m);
}

/* Reads the large messages put aside, in UID order, moving the cursor as they are done. */
static int read_large(Scan *sc) {
        int r;

        for (size_t i = 0; i < sc->n_large; i++) {
                uint32_t uid = sc->large[i];
                if (atomic_load(&sc->w->stop))
                        return -ECANCELED;
                /* A structure it cannot write back is read whole, its first 16 MiB. */
                r = GUARDED(sc->w, sc->s, imap_fetch_parts(sc->s, &uid, 1, uid, NULL, 0, MAX_TEXT_PART, 4 * MAX_TEXT_PART,
                                                           on_large_message, sc));
                if (r < 0)
                        return r;
        }
        sc->n_large = 0;
        return 0;
}

static void scan_done(Scan *sc) {
        worker_event_free(sc->batch);
        free(sc->large);
}

/* Removes from a (ascending) the UIDs in b (ascending); returns the new count. */
static size_t uids_remove(uint32_t *a, size_t n, const uint32_t *b, size_t m) {
        size_t k = 0, j = 0;

        for (size_t i = 0; i < n; i++) {
                while (j < m && b[j] < a[i])
                        j++;
                if (j < m && b[j] == a[i])
                        continue;
                a[k++] = a[i];
        }
        return k;
}

static int scan_read_failed(Scan *sc, int r) {
        if (r == -EPROTO) {
                /* libetpan 1.9.4 could not parse what the server said (BODYSTRUCTURE
                 * trips it on some servers): whole messages from the next connection on. */
                LogContext ctx = ctx_of(sc->w, sc->f->display);
                log_full_errno_ctx(LOG_WARNING, r, &ctx, "reading text parts failed (%s); reading whole "
                                   "messages from now on", imap_last_error(sc->s));
                sc->w->full_fetch = true;
        }
        return r;
}

/* Reads the UIDs given (or first:* when uids is NULL) and pushes their batches. */
static int scan_read(Scan *sc, const uint32_t *uids, size_t n, uint32_t first) {
        Worker *w = sc->w;
        int r;

        if (!w->full_fetch) {
                sc->parts = true;
                r = GUARDED(w, sc->s, imap_fetch_parts(sc->s, uids, n, first, sc->skip, sc->n_skip, MAX_TEXT_PART, 4 * MAX_TEXT_PART,
                                                       on_message, sc));
                sc->parts = false;
                return scan_read_failed(sc, r);
        }
        r = GUARDED(w, sc->s, imap_fetch(sc->s, uids, n, first, LARGE_MESSAGE, on_message, sc));
        if (r < 0)
                return r;
        return read_large(sc);
}

/* The likely code mail first (a first pass only): it shows up in seconds even in a mailbox
 * that takes minutes to read. Its batches leave the cursor alone; the full pass skips it. */
static int scan_priority_read(Scan *sc, uint32_t first, uint32_t *uids, size_t n, uint32_t **ret, size_t *ret_n);

static int scan_priority(Scan *sc, uint32_t first, uint32_t **ret, size_t *ret_n) {
        Worker *w = sc->w;
        uint32_t *uids = NULL;
        size_t n = 0;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = GUARDED(w, sc->s, imap_search_candidates(sc->s, first, w->domains,
                                                     rules_search_keywords(w->opts.rules), &uids, &n));
        if (r == -EOPNOTSUPP)
                return 0; /* the full pass alone will do */
        if (r < 0)
                return r;
        return scan_priority_read(sc, first, uids, n, ret, ret_n);
}

/* Reads the likely code mail uids (owned, taken), its batches leaving the cursor alone. */
static int scan_priority_read(Scan *sc, uint32_t first, uint32_t *uids, size_t n, uint32_t **ret, size_t *ret_n) {
        int r = 0;

        *ret = NULL;
        *ret_n = 0;
        if (n > 0) {
                sc->keep_cursor = true;
                /* A first few, stored at once, then the rest: with hundreds of likely code
                 * mails in a folder the first code need not wait for the server to work out
                 * every structure. In UID order all the same (the first sighting of a code is
                 * its source). */
                for (size_t done = 0, k = PRIORITY_FIRST; done < n && r >= 0; done += k, k = n) {
                        k = MIN(k, n - done);
                        r = scan_read(sc, uids + done, k, first);
                        if (r >= 0 && sc->batch && sc->batch->n_messages > 0)
                                r = batch_push(sc, 0);
                        worker_event_free(TAKE_PTR(sc->batch));
                }
                sc->keep_cursor = false;
                sc->last = 0;
                sc->seen = 0;
                if (r < 0) {
                        free(uids);
                        return r;
                }
        }
        *ret = uids;
        *ret_n = n;
        return 0;
}

/* The first pass's likely code mail of one folder, read before any folder is read in full. */
typedef struct Early {
        bool done;
        uint32_t uidvalidity;
        ImapFolderState st;       /* as the first look saw it */
        uint32_t *uids;
        size_t n;
} Early;

static int scan_folder_early(Worker *w, ImapSession *s, const ImapFolder *f, Early *early);

/* Scans one folder on session s from its cursor. Returns 0, -ENOENT when the folder cannot be
 * opened (skip it), or another error for the connection. */
static int scan_folder(Worker *w, ImapSession *s, const ImapFolder *f) {
        return scan_folder_early(w, s, f, NULL);
}

/* Opens f for one round of scan_folder_early(): after a pause if the server asked for one, its
 * EXAMINE sent with the first FETCH (*ret_ahead) when the first look has just seen it new. */
static int folder_open(Worker *w, ImapSession *s, const ImapFolder *f, Early *early, unsigned round, Scan *sc,
                       WorkerCursor **ret_c, bool *ret_ahead) {
        LogContext ctx = ctx_of(w, f->display);
        WorkerCursor *c;
        bool ahead;
        int r;

        r = throttle_pause(w, s);
        if (r < 0)
                return r;
        c = cursor_find(w, f->display);
        /* A new folder the first look has seen, read from its first UID: its EXAMINE goes with
         * the first FETCH (whose answer says whether it is still the same). */
        ahead = round == 0 && early && early->done && early->st.exists > 0 && w->opts.account->since == 0 &&
                (!c || atomic_load(&w->rescan));
        if (ahead) {
                sc->st = early->st;
                r = GUARDED(w, s, imap_examine_ahead(s, f->name, early->uidvalidity, &sc->st));
        } else
                r = GUARDED(w, s, imap_examine(s, f->name, &sc->st));
        if (r == -ENOENT)
                log_full_errno_ctx(LOG_WARNING, r, &ctx, "cannot open folder (%s), skipping", imap_last_error(s));
        *ret_c = c;
        *ret_ahead = ahead;
        return r;
}

/* What one round of scan_folder_early() leaves in sc goes before the next. */
static void scan_round_reset(Scan *sc, uint32_t **prio, size_t *n_prio) {
        free(TAKE_PTR(*prio));
        *n_prio = 0;
        sc->skip = NULL;
        sc->n_skip = 0;
        sc->n_skip_counted = 0;
        sc->last = 0;
        sc->seen = 0;
}

/* The same, the likely code mail already read when early says so. */
static int scan_folder_early(Worker *w, ImapSession *s, const ImapFolder *f, Early *early) {
        const Account *a = w->opts.account;
        LogContext ctx = ctx_of(w, f->display);
        _cleanup_free_ uint32_t *prio = NULL, *uids = NULL;
        size_t n_prio = 0, n = 0, total = 0;
        Scan sc = { .w = w, .s = s, .f = f };
        WorkerCursor *c;
        uint32_t first;
        bool known, ahead;
        int r;

        for (unsigned round = 0; round < RESCAN_LIMIT; round++) {
                r = folder_open(w, s, f, early, round, &sc, &c, &ahead);
                if (r < 0)
                        return r;

                known = c && c->uidvalidity == sc.st.uidvalidity && !(round == 0 && atomic_load(&w->rescan));
                if (c && c->uidvalidity != sc.st.uidvalidity)
                        log_full_errno_ctx(LOG_NOTICE, 0, &ctx, "UIDVALIDITY changed (%u → %u): rescanning the folder",
                                           c->uidvalidity, sc.st.uidvalidity);
                first = known ? c->last_uid + 1 : 1;
                sc.floor = first - 1;
                /* Nothing new in a folder we know. */
                if (known && (sc.st.exists == 0 || (sc.st.uidnext > 0 && sc.st.uidnext <= first)))
                        break;

                if (!known && sc.st.exists > 0 && round == 0 && early && early->done &&
                    early->uidvalidity == sc.st.uidvalidity) {
                        prio = TAKE_PTR(early->uids);
                        n_prio = early->n;
                } else if (!known && sc.st.exists > 0 && !w->no_priority) {
                        r = scan_priority(&sc, first, &prio, &n_prio);
                        if (r < 0)
                                goto finish;
                }
                sc.skip = prio;
                sc.n_skip = n_prio;

                if (sc.st.exists > 0) {
                        /* The UIDs to read: SEARCH SINCE when there is a horizon, else
                         * "first:*"; what the first pass read is left out either way. */
                        if (a->since > 0) {
                                r = GUARDED(w, s, imap_search(s, first, a->since, &uids, &n));
                                if (r < 0)
                                        goto finish;
                                n = uids_remove(uids, n, prio, n_prio);
                                r = n > 0 ? scan_read(&sc, uids, n, first) : 0;
                        } else
                                r = scan_read(&sc, NULL, 0, first);
                        if (r == -ESTALE && ahead) {
                                /* Changed since the first look (nothing was read): the usual way. */
                                scan_round_reset(&sc, &prio, &n_prio);
                                continue;
                        }
                        if (r == -ENOENT && ahead) {
                                log_full_errno_ctx(LOG_WARNING, r, &ctx, "cannot open folder (%s), skipping",
                                                   imap_last_error(s));
                                goto finish;
                        }
                        if (r < 0)
                                goto finish;
                }
                /* Every UID below UIDNEXT (as of EXAMINE) has now been listed and read. */
                r = count_skipped(&sc, UINT32_MAX);
                if (r >= 0)
                        r = batch_push(&sc, MAX(sc.last, sc.st.uidnext > 0 ? sc.st.uidnext - 1 : 0));
                if (r < 0)
                        goto finish;
                total += sc.seen;
                free(TAKE_PTR(uids));
                scan_round_reset(&sc, &prio, &n_prio);
                /* Mail that arrived while we read (an EXISTS inside our FETCH): once more. */
                if (!imap_has_new_mail(s, sc.st.exists))
                        break;
        }
        if (total > 0)
                log_full_errno_ctx(LOG_INFO, 0, &ctx, "read %zu new message(s)", total);
        r = 0;
finish:
        scan_done(&sc);
        return r;
}

/* ---- connections ---- */

static void conn_close(Worker *w, Conn *c, bool polite) {
        ImapSession *s;

        pthread_mutex_lock(&w->lock);
        s = TAKE_PTR(c->session);
        pthread_mutex_unlock(&w->lock);
        if (s && polite) {
                if (c->idling)
                        (void) GUARDED(w, s, imap_idle_done(s));
                watchdog_arm(w, s);
                imap_logout(s);
                watchdog_disarm(w);
        }
        imap_session_free(s);
        *c = (Conn) { .idle_fd = -EBADF };
}

static void close_all(Worker *w) {
        bool polite = !atomic_load(&w->stop);

        for (size_t i = w->n_conns; i > 0; i--)
                conn_close(w, &w->conns[i - 1], polite);
        w->n_conns = 0;
        imap_folders_free(w->folders, w->n_folders);
        w->folders = NULL;
        w->n_folders = 0;
}

static bool fatal_error(int r) {
        /* Retrying cannot help: the user must act (password, certificate, config). Not
         * -ENOMEM: libetpan reports a literal of absurd announced size that way, and memory
         * may come back. Not -ENOKEY (password_command failed): a keyring still locked at
         * login opens later, so that is retried with the backoff like a network failure. */
        return r == -EACCES || r == -EPERM || r == -EPROTONOSUPPORT || r == -EINVAL ||
               r == -EKEYREVOKED; /* OAuth2: the sign-in was revoked or expired */
}

static int conn_open(Worker *w, Conn *c, bool report) {
        _cleanup_free_ char *error = NULL;
        ImapSession *s = NULL;
        int r;

        *c = (Conn) { .idle_fd = -EBADF };
        r = imap_session_new(w->opts.account, w->timeout_sec, &s);
        if (r < 0)
                return r;
        imap_session_set_progress(s, watchdog_progress, w);
        /* Published before connecting, so that worker_stop() and the watchdog can cancel it. */
        pthread_mutex_lock(&w->lock);
        c->session = s;
        pthread_mutex_unlock(&w->lock);
        if (atomic_load(&w->stop))
                imap_session_cancel(s);
        r = GUARDED(w, s, imap_session_connect(s, &error));
        if (r < 0) {
                /* An extra IDLE connection's failure is logged too: it ends the session. */
                log_full_errno_ctx(report ? LOG_ERR : LOG_WARNING, r, &(LogContext) { .account = w->account },
                                   "%s", error ?: "cannot connect");
                if (report)
                        push_state(w, fatal_error(r) ? WORKER_FAILED : WORKER_BACKOFF, r, error, 0, 0);
                conn_close(w, c, false);
                return r;
        }
        return 0;
}

/* One pass over every selected folder, on the main connection. */
static void earlies_free(Early *e, size_t n) {
        for (size_t i = 0; e && i < n; i++)
                free(e[i].uids);
        free(e);
}

/* Appends the ascending UIDs b (owned, taken) to e's, keeping them ascending and unique. */
static int early_add(Early *e, uint32_t *b, size_t m) {
        uint32_t *l;
        size_t k = 0;

        if (m == 0) {
                free(b);
                return 0;
        }
        if (!e->uids) {
                e->uids = b;
                e->n = m;
                return 0;
        }
        l = reallocarray(e->uids, e->n + m, sizeof(uint32_t));
        if (!l) {
                free(b);
                return -ENOMEM;
        }
        memcpy(l + e->n, b, m * sizeof(uint32_t));
        free(b);
        qsort(l, e->n + m, sizeof(uint32_t), cmp_u32);
        for (size_t i = 0; i < e->n + m; i++)
                if (k == 0 || l[k - 1] != l[i])
                        l[k++] = l[i];
        e->uids = l;
        e->n = k;
        return 0;
}

static void early_phase(Worker *w, const ImapFolder *f, size_t n) {
        char what[96];

        if (log_get_max_level() < LOG_DEBUG)
                return;
        (void) snprintf(what, sizeof what, "read the folder's likely code mail (%zu messages)", n);
        phase(w, f->display, what);
}

/* The jobs one after the other (reading whole messages: no imap_fetch_parts_folders()). */
static int early_read_each(Worker *w, ImapSession *s, ImapPartsJob *jobs, size_t q) {
        int r = 0;

        for (size_t i = 0; i < q && r >= 0; i++) {
                Scan *sc = jobs[i].userdata;
                r = GUARDED(w, s, imap_examine_ahead(s, jobs[i].folder, jobs[i].uidvalidity, jobs[i].st));
                if (r >= 0)
                        r = scan_read(sc, jobs[i].uids, jobs[i].n, 1);
                jobs[i].r = r;
                if (r == -ENOENT || r == -ESTALE || r == -EPROTO)
                        r = 0; /* that folder's (the caller says) */
        }
        return r;
}

/* Reads the likely code mail the first look found in the m folders x (of: their index in
 * w->folders) at once: every folder's first few (PRIORITY_FIRST), stored, then the rest, two
 * round trips each time whatever the number of folders (imap_fetch_parts_folders()). */
static int early_read(Worker *w, ImapSession *s, ImapScout *x, const size_t *of, size_t m, Early *early) {
        _cleanup_free_ Scan *sc = calloc(MAX(m, 1u), sizeof(Scan));
        _cleanup_free_ ImapPartsJob *jobs = calloc(MAX(m, 1u), sizeof(ImapPartsJob));
        _cleanup_free_ size_t *done = calloc(MAX(m, 1u), sizeof(size_t)), *at = calloc(MAX(m, 1u), sizeof(size_t));
        int r = 0;

        if (!sc || !jobs || !done || !at)
                return -ENOMEM;
        for (size_t j = 0; j < m; j++)
                sc[j] = (Scan) { .w = w, .s = s, .f = &w->folders[of[j]], .st = x[j].st, .keep_cursor = true,
                                 .parts = !w->full_fetch };
        for (size_t k = PRIORITY_FIRST; r >= 0; k = IMAP_PARTS_JOB_MAX) {
                size_t q = 0;

                for (size_t j = 0; j < m; j++)
                        if (early[of[j]].done && done[j] < x[j].n) {
                                size_t c = MIN(k, x[j].n - done[j]);
                                jobs[q] = (ImapPartsJob) { .folder = sc[j].f->name, .uidvalidity = early[of[j]].uidvalidity,
                                                           .st = &sc[j].st, .uids = x[j].uids + done[j], .n = c,
                                                           .cb = on_message, .userdata = &sc[j] };
                                at[q++] = j;
                                done[j] += c;
                        }
                if (q == 0)
                        break;
                if (w->full_fetch)
                        r = early_read_each(w, s, jobs, q);
                else
                        r = GUARDED(w, s, imap_fetch_parts_folders(s, jobs, q, MAX_TEXT_PART, 4 * MAX_TEXT_PART));
                for (size_t i = 0; i < q && r >= 0; i++) {
                        Scan *c = &sc[at[i]];
                        if (jobs[i].r == -ENOENT || jobs[i].r == -ESTALE)
                                early[of[at[i]]].done = false; /* gone or changed: the full pass looks again */
                        else if (jobs[i].r < 0)
                                r = scan_read_failed(c, jobs[i].r);
                        else if (c->batch && c->batch->n_messages > 0)
                                r = batch_push(c, 0);
                        worker_event_free(TAKE_PTR(c->batch));
                }
        }
        for (size_t j = 0; j < m; j++) {
                if (r >= 0 && early[of[j]].done && x[j].n > 0) {
                        early_phase(w, sc[j].f, x[j].n);
                        r = early_add(&early[of[j]], TAKE_PTR(x[j].uids), x[j].n);
                }
                scan_done(&sc[j]);
        }
        return r;
}

/* The first look at every folder not read yet, in one round trip a wave (imap_scout()), then
 * the likely code mail of those that have some. In two waves: each folder's newest messages
 * (a sixteenth of it, at least EARLY_RECENT_MIN), then the older ones, their UIDs from one
 * STATUS of every folder (one round trip more). A server's SEARCH of headers costs it a read of
 * every message it has not indexed them for (13 s for 50,000 messages of a freshly delivered
 * dovecot): the newest mail, where a new user's code spécifique is, is searched, read and
 * stored first. */
#define EARLY_RECENT_SHARE 16
#define EARLY_RECENT_MIN 200

static int scan_early_all(Worker *w, ImapSession *s, Early *early) {
        _cleanup_free_ ImapScout *x = calloc(w->n_folders, sizeof(ImapScout));
        _cleanup_free_ size_t *of = calloc(w->n_folders, sizeof(size_t)), *of2 = calloc(w->n_folders, sizeof(size_t));
        _cleanup_free_ uint32_t *lo = calloc(w->n_folders, sizeof(uint32_t));
        size_t n = 0, k = 0;
        int r = 0;

        if (!x || !of || !of2 || !lo)
                return -ENOMEM;
        if (w->no_priority)
                return 0;
        for (size_t i = 0; i < w->n_folders; i++) {
                const WorkerCursor *c = cursor_find(w, w->folders[i].display);
                /* A folder with a cursor is read from it (its UIDVALIDITY is checked then). */
                if (!folder_wanted(w, &w->folders[i]) || (c && !atomic_load(&w->rescan)))
                        continue;
                x[n] = (ImapScout) { .folder = w->folders[i].name };
                of[n++] = i;
        }
        if (n == 0)
                return 0;
        /* INBOX first: where the code spécifique lands. */
        for (size_t j = 1; j < n; j++)
                if (strcaseeq(w->folders[of[j]].name, "INBOX")) {
                        ImapScout t = x[j];
                        size_t o = of[j];
                        memmove(x + 1, x, j * sizeof(ImapScout));
                        memmove(of + 1, of, j * sizeof(size_t));
                        x[0] = t;
                        of[0] = o;
                        break;
                }
        r = GUARDED(w, s, imap_status_all(s, x, n));
        if (r < 0)
                return r;
        /* Where each folder's newest mail begins; empty or refused folders are left to the full pass. */
        for (size_t j = 0; j < n; j++) {
                uint32_t recent = MAX((uint32_t) EARLY_RECENT_MIN, x[j].st.exists / EARLY_RECENT_SHARE);
                if (x[j].r < 0 || x[j].st.exists == 0)
                        continue;
                lo[k] = x[j].st.uidnext > recent ? x[j].st.uidnext - recent : 1;
                of[k++] = of[j];
        }
        n = k;
        for (unsigned wave = 0; wave < 2 && n > 0 && r >= 0; wave++) {
                size_t m = 0;

                /* The second wave: the older mail of the folders the first one found. */
                for (size_t j = 0; j < n; j++)
                        if (wave == 0 || (early[of[j]].done && lo[j] > 1)) {
                                x[m] = (ImapScout) { .folder = w->folders[of[j]].name,
                                                     .first_uid = wave == 0 ? lo[j] : 1,
                                                     .last_uid = wave == 0 ? 0 : lo[j] - 1 };
                                of2[m++] = of[j];
                        }
                if (m == 0)
                        break;
                r = GUARDED(w, s, imap_scout(s, x, m, w->domains, rules_search_keywords(w->opts.rules)));
                phase(w, NULL, wave == 0 ? "first look at the newest mail of every new folder"
                                         : "first look at the older mail");
                if (r == -EOPNOTSUPP)
                        return 0; /* nothing to look for: the full pass alone will do */
                for (size_t j = 0; j < m; j++) {
                        Early *e = &early[of2[j]];

                        if (wave == 1 && (x[j].r < 0 || x[j].st.uidvalidity != e->uidvalidity)) {
                                e->done = false; /* gone or changed meanwhile: the full pass looks again */
                                x[j].n = 0;
                                continue;
                        }
                        if (x[j].r < 0 || x[j].st.exists == 0) {
                                x[j].n = 0;
                                continue; /* said (or found empty) when the folder is read */
                        }
                        e->uidvalidity = x[j].st.uidvalidity;
                        if (wave == 0)
                                e->st = x[j].st;
                        e->done = true;
                }
                if (r >= 0)
                        r = early_read(w, s, x, of2, m, early);
                for (size_t j = 0; j < m; j++)
                        free(TAKE_PTR(x[j].uids));
        }
        return r;
}

static int scan_all(Worker *w) {
        ImapSession *s = w->conns[0].session;
        size_t selected = 0, done = 0;
        Early *early;
        int r = 0;

        for (size_t i = 0; i < w->n_folders; i++)
                selected += folder_wanted(w, &w->folders[i]);
        /* What a user waits for first is their code: the likely code mail of every folder not
         * read yet goes first, then each folder is read in full. */
        early = calloc(w->n_folders, sizeof(Early));
        if (!early)
                return -ENOMEM;
        push_state(w, WORKER_SCANNING, 0, NULL, 0, (unsigned) selected);
        r = scan_early_all(w, s, early);
        phase(w, NULL, "read the likely code mail");
        for (size_t i = 0; i < w->n_folders && r >= 0; i++) {
                if (!folder_wanted(w, &w->folders[i]))
                        continue;
                push_state(w, WORKER_SCANNING, 0, NULL, (unsigned) done, (unsigned) selected);
                r = scan_folder_early(w, s, &w->folders[i], &early[i]);
                if (r < 0 && r != -ENOENT)
                        break;
                done++;
                r = 0;
        }
        earlies_free(early, w->n_folders);
        if (r < 0 && r != -ECANCELED)
                log_full_errno_ctx(LOG_ERR, r, &(LogContext) { .account = w->account },
                                   "scan interrupted: %s", imap_last_error(s));
        /* The first pass moves no cursor: redone after every cut, a server that cuts sessions
         * sooner than it takes would never let the scan go on. After a cut, the next sessions
         * go on from the cursors (what the first pass read is stored; codes are stored once). */
        w->no_priority = r < 0;
        if (r >= 0) {
                atomic_store(&w->rescan, false);
                (void) push(w, event_new(w, WORKER_EVENT_SCAN_DONE));
        }
        return r;
}

static int idle_begin(Worker *w, Conn *c) {
        int r;

        r = GUARDED(w, c->session, imap_idle_start(c->session, &c->idle_fd));
        if (r < 0)
                return r;
        c->idling = true;
        c->idle_since = now_ms();
        return 0;
}

static int idle_end(Worker *w, Conn *c) {
        if (!c->idling)
                return 0;
        c->idling = false;
        return GUARDED(w, c->session, imap_idle_done(c->session));
}

/* New mail on an IDLE connection, or its 28 minutes are up: read what is new, IDLE again. */
static int idle_refresh(Worker *w, Conn *c) {
        int r;

        r = idle_end(w, c);
        if (r >= 0)
                r = scan_folder(w, c->session, c->folder);
        if (r >= 0)
                r = idle_begin(w, c);
        return r;
}

/* STATUS of one folder on s; reads it when it has new mail. */
static int poll_one(Worker *w, ImapSession *s, const ImapFolder *f) {
        ImapFolderState st;
        int r;

        r = GUARDED(w, s, imap_status(s, f->name, &st));
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        const WorkerCursor *cur = cursor_find(w, f->display);
        if (cur && cur->uidvalidity == st.uidvalidity && st.uidnext > 0 && st.uidnext <= cur->last_uid + 1)
                return 0; /* nothing new */
        r = scan_folder(w, s, f);
        return r == -ENOENT ? 0 : r;
}

/* STATUS of every folder nobody IDLEs on; reads those with new mail. On the main connection,
 * which leaves and re-enters its own IDLE around it. */
static int poll_folders(Worker *w) {
        Conn *main_conn = &w->conns[0];
        int r;

        r = idle_end(w, main_conn);
        if (r < 0)
                return r;
        for (size_t i = 0; i < w->n_folders && r >= 0; i++) {
                const ImapFolder *f = &w->folders[i];
                bool watched = false;

                if (!folder_wanted(w, f))
                        continue;
                for (size_t k = 0; k < w->n_conns; k++)
                        watched = watched || w->conns[k].folder == f;
                if (watched)
                        continue; /* IDLE tells us; the main connection's own folder is read below */
                r = poll_one(w, main_conn->session, f);
        }
        if (r >= 0 && main_conn->folder)
                r = idle_refresh(w, main_conn);
        return r;
}

/* ---- NOTIFY: every folder on one connection ---- */

/* The folder the NOTIFY connection keeps selected between events (its new mail comes as
 * EXISTS, the others' as STATUS): INBOX (on Gmail All Mail) where it is watched, where most
 * mail lands, and the one folder whose mail written behind the server's back (a maildir
 * delivery that bypasses dovecot) the server still notices; else the first IDLE folder, else
 * the first one read. */
static const ImapFolder *notify_home(Worker *w) {
        for (size_t i = 0; i < w->n_folders; i++)
                if (folder_idle(w, &w->folders[i]) &&
                    (strcaseeq(w->folders[i].name, "INBOX") || (gmail_all(w) && (w->folders[i].flags & IMAP_FOLDER_ALL))))
                        return &w->folders[i];
        for (size_t i = 0; i < w->n_folders; i++)
                if (folder_idle(w, &w->folders[i]))
                        return &w->folders[i];
        for (size_t i = 0; i < w->n_folders; i++)
                if (folder_wanted(w, &w->folders[i]))
                        return &w->folders[i];
        return NULL;
}

static bool folder_named(const ImapFolder *f, const char *name) {
        return strcaseeq(f->name, "INBOX") ? strcaseeq(name, "INBOX") : streq(f->name, name);
}

static int notify_relist(Worker *w);

/* Out of IDLE, reads what the notifications named (every folder when sweep, or when the server
 * lost count: NOTIFICATIONOVERFLOW), the home folder last (which selects it again), until no
 * notification is left (those mixed into our own commands' answers included), then IDLE. A
 * folder is read from its cursor, as on any pass: no message read twice, none skipped. Folders
 * created, deleted or renamed (MailboxName; or, where the server cannot say, at every sweep and
 * every notification) are looked for first. */
static int notify_refresh(Worker *w, bool sweep) {
        Conn *c = &w->conns[0];
        int r;

        r = idle_end(w, c);
        for (unsigned round = 0; r >= 0 && (round == 0 || imap_notify_pending(c->session)); round++) {
                _cleanup_strv_free_ char **names = NULL;
                bool all = false;

                if (imap_notify_folders_changed(c->session) || sweep || !w->notify_names)
                        r = notify_relist(w);
                if (r < 0)
                        break;
                (void) imap_notify_take(c->session, &names, &all);
                if (all && !sweep) {
                        LogContext ctx = ctx_of(w, NULL);
                        log_full_errno_ctx(LOG_INFO, 0, &ctx, "the server lost count of its notifications: "
                                           "looking at every folder");
                }
                for (size_t i = 0; i < w->n_folders && r >= 0; i++) {
                        const ImapFolder *f = &w->folders[i];
                        bool named = sweep || all;

                        if (f == c->folder || !folder_wanted(w, f))
                                continue;
                        STRV_FOREACH(n, names)
                                named = named || folder_named(f, *n);
                        if (named)
                                r = poll_one(w, c->session, f);
                }
                if (r >= 0)
                        r = scan_folder(w, c->session, c->folder);
                if (r == -ENOENT)
                        r = 0;
                sweep = false;
                if (round >= 16) /* mail never stops coming: IDLE, the next notification goes on */
                        break;
        }
        if (r >= 0)
                r = idle_begin(w, c);
        return r;
}

/* The names of the folders read, as the server names them. */
static int wanted_names(Worker *w, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;

        for (size_t i = 0; i < w->n_folders; i++)
                if (folder_wanted(w, &w->folders[i]) && strv_extend(&names, w->folders[i].name) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(names);
        return 0;
}

/* NOTIFY SET for the folders read, with MailboxName events unless the server refused them once
 * (then notify_refresh() lists the folders again at every sweep and every notification). */
static int notify_set(Worker *w) {
        _cleanup_strv_free_ char **names = NULL;
        ImapSession *s = w->conns[0].session;
        int r;

        r = wanted_names(w, &names);
        if (r < 0)
                return r;
        if (!w->no_mailbox_names) {
                r = GUARDED(w, s, imap_notify_set(s, names, true));
                /* Refused, or answered in a way libetpan cannot read: never asked again. */
                if (r == -EOPNOTSUPP || r == -EPROTO) {
                        LogContext ctx = ctx_of(w, NULL);
                        log_full_errno_ctx(LOG_INFO, 0, &ctx, "%s: looking for new folders at every notification",
                                           imap_last_error(s));
                        w->no_mailbox_names = true;
                }
                if (r != -EOPNOTSUPP)
                        goto done;
        }
        r = GUARDED(w, s, imap_notify_set(s, names, false));
done:
        w->notify_names = r >= 0 && !w->no_mailbox_names;
        return r;
}

/* The folders changed (or may have): LIST again. When the folders read are not the same any
 * more, NOTIFY SET for the new ones, then each new folder is read from its cursor (a new one in
 * full) and watched from then on; a folder gone is no longer asked for. Out of IDLE. */
static int notify_relist(Worker *w) {
        _cleanup_strv_free_ char **before = NULL, **after = NULL;
        _cleanup_free_ char *home = NULL;
        Conn *c = &w->conns[0];
        ImapFolder *old = w->folders, *f = NULL;
        size_t n_old = w->n_folders, n = 0;
        bool same;
        int r;

        r = wanted_names(w, &before);
        if (r < 0)
                return r;
        if (c->folder && !(home = strdup(c->folder->name)))
                return -ENOMEM;
        r = GUARDED(w, c->session, imap_list(c->session, &f, &n));
        if (r < 0)
                return r;
        w->folders = f;
        w->n_folders = n;
        r = wanted_names(w, &after);
        if (r < 0)
                goto fail;
        same = strv_length(before) == strv_length(after);
        STRV_FOREACH(a, after)
                same = same && strv_contains(before, *a);
        if (same) {
                w->folders = old;
                w->n_folders = n_old;
                imap_folders_free(f, n);
                return 0;
        }
        /* The home folder stays, unless it is gone. */
        c->folder = NULL;
        for (size_t i = 0; home && i < n && !c->folder; i++)
                if (folder_wanted(w, &f[i]) && folder_named(&f[i], home))
                        c->folder = &f[i];
        if (!c->folder)
                c->folder = notify_home(w);
        imap_folders_free(old, n_old);
        if (!c->folder)
                return -ENOENT; /* nothing left to watch: a new pass says so */
        r = notify_set(w);
        for (size_t i = 0; i < n && r >= 0; i++) {
                LogContext ctx = ctx_of(w, f[i].display);

                if (!folder_wanted(w, &f[i]) || strv_contains(before, f[i].name))
                        continue;
                log_full_errno_ctx(LOG_INFO, 0, &ctx, "new folder: reading it, then watching it");
                r = scan_folder(w, c->session, &f[i]);
                if (r == -ENOENT)
                        r = 0;
        }
        return r;
fail:
        w->folders = old;
        w->n_folders = n_old;
        imap_folders_free(f, n);
        return r;
}

/* NOTIFY SET for every folder read, on the main connection; 1 when it watches that way, 0 when
 * the server has no NOTIFY or refused it (then one IDLE connection per `idle` folder and STATUS
 * polling for the rest, as before). */
static int notify_begin(Worker *w) {
        Conn *c = &w->conns[0];
        const ImapFolder *home = notify_home(w);
        size_t n = 0;
        int r;

        w->notify = false;
        if (!home || !imap_has_notify(c->session))
                return 0;
        r = notify_set(w);
        if (r == -EOPNOTSUPP) {
                LogContext ctx = ctx_of(w, NULL);
                log_full_errno_ctx(LOG_INFO, 0, &ctx, "%s: one IDLE connection per watched folder",
                                   imap_last_error(c->session));
                return 0;
        }
        if (r < 0)
                return r;
        w->notify = true;
        c->folder = home;
        /* Mail that came between the pass and NOTIFY SET. */
        r = notify_refresh(w, true);
        if (r < 0)
                return r;
        for (size_t i = 0; i < w->n_folders; i++)
                n += folder_wanted(w, &w->folders[i]);
        for (size_t i = 0; i < w->n_folders; i++)
                if (folder_wanted(w, &w->folders[i])) {
                        LogContext ctx = ctx_of(w, w->folders[i].display);
                        log_full_errno_ctx(LOG_DEBUG, 0, &ctx, "watching with IDLE and NOTIFY (%zu folders, "
                                           "one connection)", n);
                }
        return 1;
}

/* The old way: one IDLE connection per `idle` folder (the first one on the main connection),
 * as many as the server allows up to MAX_IDLE_CONNECTIONS; poll_folders() does the rest. */
static int idle_connections_begin(Worker *w) {
        int r;

        for (size_t i = 0; i < w->n_folders && w->n_conns < MAX_IDLE_CONNECTIONS; i++) {
                const ImapFolder *f = &w->folders[i];
                Conn *c;

                if (!folder_idle(w, f))
                        continue;
                c = &w->conns[w->n_conns > 0 && w->conns[0].folder ? w->n_conns : 0];
                if (c != &w->conns[0]) {
                        r = conn_open(w, c, false);
                        if (r == -EUSERS) {
                                /* The server allows no more connections: the folders left are
                                 * polled on the connections we have. */
                                log_full_errno_ctx(LOG_NOTICE, r, &(LogContext) { .account = w->account },
                                                   "no further connection allowed; polling the other "
                                                   "folders every %u s", w->poll_interval);
                                return 0;
                        }
                        if (r < 0)
                                return r;
                        w->n_conns++;
                }
                c->folder = f;
                r = scan_folder(w, c->session, f); /* selects it, reads what came meanwhile */
                if (r >= 0)
                        r = idle_begin(w, c);
                if (r < 0)
                        return r;
                LogContext ctx = ctx_of(w, f->display);
                log_full_errno_ctx(LOG_DEBUG, 0, &ctx, "watching with IDLE");
        }
        return 0;
}

/* Waits for a connection to have something to say, a wake-up, or the deadline; ready[i] is
 * set for a connection whose news libetpan holds already. 0 when a new pass was asked for, 1
 * otherwise (look at the connections), < 0 on error or stop. */
static int watch_wait(Worker *w, int64_t next_poll, struct pollfd *p, bool *ready) {
        int64_t now = now_ms(), wait = next_poll - now;
        bool any = false;
        int r;

        p[0] = (struct pollfd) { .fd = w->wake_fd, .events = POLLIN };
        if (atomic_load(&w->stop))
                return -ECANCELED;
        for (size_t i = 0; i < w->n_conns; i++) {
                Conn *c = &w->conns[i];
                p[i + 1] = (struct pollfd) { .fd = c->idling ? c->idle_fd : -1, .events = POLLIN };
                ready[i] = false;
                if (!c->idling)
                        continue;
                /* The buffered-EXISTS trap: what libetpan holds, poll() cannot see. */
                if (imap_idle_pending(c->session))
                        ready[i] = any = true;
                /* A notification that came with our own commands' answers. */
                if (w->notify && imap_notify_pending(c->session))
                        any = true;
                wait = MIN(wait, c->idle_since + 1000 * (int64_t) REIDLE_SEC - now);
        }
        r = any ? 0 : poll(p, w->n_conns + 1, (int) MIN(MAX(wait, (int64_t) 0), (int64_t) 86400000));
        if (r < 0 && errno != EINTR)
                return -errno;
        if (r > 0 && (p[0].revents & POLLIN)) {
                uint64_t v;
                (void) !read(w->wake_fd, &v, sizeof v);
                return atomic_load(&w->stop) ? -ECANCELED : 0;
        }
        return 1;
}

/* One connection after watch_wait(): its news read (keep-alives leave IDLE as it is), and the
 * folders it watches read when something happened or their 28 minutes are up. */
static int watch_conn(Worker *w, Conn *c, bool ready, short revents, int64_t *next_poll) {
        bool reidle = false;
        int r;

        if (!c->idling)
                return 0;
        if (ready || (revents & (POLLIN | POLLHUP | POLLERR))) {
                /* Not under the watchdog: arming it wakes its thread twice, which would make
                 * each keep-alive three wake-ups, not one. This reads lines poll() announced,
                 * each read bounded by the session's timeout (a silent server fails it) and
                 * cancelled by worker_stop(); commands keep their watchdog. */
                r = imap_idle_read(c->session);
                if (r < 0)
                        return r;
                /* With NOTIFY nothing is polled: the poll interval only bounds how long the
                 * server may stay silent (a keep-alive will do) before we make sure it still
                 * answers. */
                if (w->notify)
                        *next_poll = now_ms() + 1000 * (int64_t) w->poll_interval;
                if (r == 0 && !(w->notify && imap_notify_pending(c->session)))
                        return 0;
        } else if (w->notify && imap_notify_pending(c->session))
                ;
        else if (now_ms() < c->idle_since + 1000 * (int64_t) REIDLE_SEC)
                return 0;
        else
                reidle = true;
        /* With NOTIFY, every 28 minutes each folder's STATUS too: whatever a notification could
         * not tell is found then at the latest. */
        return w->notify ? notify_refresh(w, reidle) : idle_refresh(w, c);
}

/* After the first pass: IDLE where asked and possible, poll the rest; returns on error, stop
 * or a request for a new pass (0). With NOTIFY, one connection watches every folder. */
static int watch(Worker *w) {
        int64_t next_poll = now_ms() + 1000 * (int64_t) w->poll_interval;
        int r = 0;

        if (imap_has_idle(w->conns[0].session)) {
                r = notify_begin(w);
                if (r >= 0 && !w->notify)
                        r = idle_connections_begin(w);
                if (r < 0)
                        return r;
        }
        /* The backfill is done: no more reads to pause between ("": the words said go). */
        push_state(w, WORKER_IDLE, 0, w->throttle_ms > 0 ? "" : NULL, 0, 0);
        w->throttle_ms = 0;

        for (;;) {
                struct pollfd p[MAX_IDLE_CONNECTIONS + 1];
                bool ready[MAX_IDLE_CONNECTIONS];

                r = watch_wait(w, next_poll, p, ready);
                if (r <= 0)
                        return r;
                for (size_t i = 0; i < w->n_conns && r >= 0; i++)
                        r = watch_conn(w, &w->conns[i], ready[i], p[i + 1].revents, &next_poll);
                if (r >= 0 && now_ms() >= next_poll) {
                        r = w->notify ? notify_refresh(w, false) : poll_folders(w);
                        next_poll = now_ms() + 1000 * (int64_t) w->poll_interval;
                }
                if (r < 0)
                        return r;
        }
}

/* What the connection that failed said (every session keeps its last error). */
static const char *conns_error(Worker *w) {
        for (size_t i = 0; i < w->n_conns; i++)
                if (w->conns[i].session && !streq(imap_last_error(w->conns[i].session), "no error"))
                        return imap_last_error(w->conns[i].session);
        return "no reason given";
}

/* Closes the extra connections and ends IDLE on the first: what a pass starts from. */
static int conns_keep_first(Worker *w) {
        int r;

        for (size_t i = 1; i < w->n_conns; i++)
                conn_close(w, &w->conns[i], true);
        w->n_conns = 1;
        r = idle_end(w, &w->conns[0]);
        w->conns[0].folder = NULL;
        return r;
}

/* Connect, LIST, one pass over every folder, then watch until something fails. */
static int run_session(Worker *w, bool *ret_scanned) {
        int r;

        push_state(w, WORKER_CONNECTING, 0, NULL, 0, 0);
        w->session_start = now_ms();
        r = conn_open(w, &w->conns[0], true);
        if (r < 0)
                return r;
        phase(w, NULL, "logged in");
        w->n_conns = 1;
        w->gmail = imap_has_capability(w->conns[0].session, "X-GM-EXT-1");
        log_full_errno_ctx(LOG_INFO, 0, &(LogContext) { .account = w->account }, "connected to %s",
                           w->opts.account->host);
        for (;;) {
                /* LIST on every pass: folders come and go. */
                imap_folders_free(w->folders, w->n_folders);
                w->folders = NULL;
                w->n_folders = 0;
                r = GUARDED(w, w->conns[0].session, imap_list(w->conns[0].session, &w->folders, &w->n_folders));
                if (r < 0) {
                        log_full_errno_ctx(LOG_ERR, r, &(LogContext) { .account = w->account }, "%s",
                                           imap_last_error(w->conns[0].session));
                        return r;
                }
                phase(w, NULL, "listed the folders");
                r = scan_all(w);
                if (r < 0)
                        return r;
                scan_gate_leave(w);
                *ret_scanned = true;
                if (w->opts.once)
                        return 0;
                /* A new pass (Rescan) starts from a clean state: no IDLE anywhere. */
                r = conns_keep_first(w);
                if (r < 0)
                        return r;
                r = watch(w);
                if (r < 0) {
                        if (!atomic_load(&w->stop))
                                log_full_errno_ctx(LOG_WARNING, r, &(LogContext) { .account = w->account },
                                                   "connection lost while watching for new mail: %s",
                                                   conns_error(w));
                        return r;
                }
                r = conns_keep_first(w);
                if (r < 0)
                        return r;
        }
}

/* Waits up to sec seconds for a wake-up (stop, rescan, new pass). */
static void wait_wake(Worker *w, unsigned sec) {
        struct pollfd p = { .fd = w->wake_fd, .events = POLLIN };
        uint64_t v;

        if (poll(&p, 1, (int) MIN(sec, 86400u) * 1000) > 0)
                (void) !read(w->wake_fd, &v, sizeof v);
}

/* A number in [0, n] that differs from one process to the next: from getrandom(), which does
 * not block once the kernel's pool is ready (always, by the time a user session runs); else
 * from the clock, the process and the thread. random() is never seeded here, so every alcoded
 * would draw the same sequence and back off in step with the others. */
static unsigned random_upto(unsigned n) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t) sizeof v) {
                struct timespec ts = {};
                (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                v = (uint64_t) ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t) getpid() << 32 ^
                    (uint64_t) (uintptr_t) pthread_self();
        }
        return (unsigned) (v % ((uint64_t) n + 1));
}

static unsigned backoff_delay(Worker *w, unsigned attempt) {
        unsigned d = MIN(w->backoff_min << MIN(attempt, 10u), w->backoff_max);

        /* Full jitter on the upper half: many clients of one server do not reconnect in step. */
        return d / 2 + random_upto(d / 2) + 1;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        unsigned attempt = 0;
        WorkerEvent *e;
        int r = 0;

        while (!atomic_load(&w->stop)) {
                bool scanned = false;

                w->progressed = false;
                r = scan_gate_enter(w);
                if (r >= 0)
                        r = run_session(w, &scanned);
                scan_gate_leave(w);
                close_all(w);
                /* A session that got work done was cut, not refused: reconnect soon, not after
                 * a backoff grown by earlier failures. */
                if (scanned || w->progressed)
                        attempt = 0;
                if (atomic_load(&w->stop) || w->opts.once || fatal_error(r))
                        break;
                unsigned d = backoff_delay(w, attempt++);
                push_state(w, WORKER_BACKOFF, r, NULL, 0, 0);
                log_full_errno_ctx(LOG_INFO, 0, &(LogContext) { .account = w->account },
                                   "reconnecting in %u s", d);
                wait_wake(w, d);
        }
        close_all(w);
        e = event_new(w, WORKER_EVENT_EXIT);
        if (e) {
                e->result = r;
                e->state = r < 0 && !atomic_load(&w->stop) ? WORKER_FAILED : WORKER_STOPPED;
                (void) push(w, e);
        }
        return NULL;
}

/* Tests of stalled servers and of polling need seconds, not minutes. */
static unsigned seconds_from_env(const char *name, unsigned dflt) {
#ifdef ALCODE_TEST_HOOKS
        const char *v = getenv(name);
        if (v && atoi(v) > 0)
                return (unsigned) atoi(v);
#else
        (void) name;
#endif
        return dflt;
}

int worker_start(const WorkerOptions *opts, Worker **ret) {
        Worker *w = calloc(1, sizeof(Worker));
        pthread_condattr_t ca;
        pthread_attr_t attr;
        int r;

        if (!w)
                return -ENOMEM;
        w->opts = *opts;
        w->wake_fd = -EBADF;
        w->timeout_sec = seconds_from_env("ALCODE_TEST_IMAP_TIMEOUT", MAX(opts->timeout_sec, 1u));
        w->poll_interval = seconds_from_env("ALCODE_TEST_POLL_INTERVAL", opts->account->poll_interval);
        w->backoff_max = seconds_from_env("ALCODE_TEST_BACKOFF_MAX", BACKOFF_MAX_SEC);
        /* The jitter test needs a first delay wide enough to tell processes apart. */
        w->backoff_min = MIN(seconds_from_env("ALCODE_TEST_BACKOFF_MIN", BACKOFF_MIN_SEC), w->backoff_max);
        w->throttle_max_ms = seconds_from_env("ALCODE_TEST_THROTTLE_MAX_MS", THROTTLE_MAX_MS);
        w->throttle_min_ms = MIN(seconds_from_env("ALCODE_TEST_THROTTLE_MIN_MS", THROTTLE_MIN_MS), w->throttle_max_ms);
#ifdef ALCODE_TEST_HOOKS
        /* The old way, whole messages: tests compare what both find. */
        w->full_fetch = getenv("ALCODE_TEST_FULL_FETCH") != NULL;
#endif
        for (size_t i = 0; i < MAX_IDLE_CONNECTIONS; i++)
                w->conns[i].idle_fd = -EBADF;
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &ca);
        pthread_condattr_destroy(&ca);
        w->account = strdup(opts->account->name);
        /* Not the employer's: its domain sends a work mailbox's everyday mail (colleagues,
         * payslips: 40 % of a work INBOX), and the first look would read all of it. Its
         * likely code mail names the brand in the subject, which the first look asks for. */
        w->domains = strv_copy(rules_trusted_domains(opts->rules));
        if (!w->account || !w->domains) {
                worker_free(w);
                return -ENOMEM;
        }
        w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->wake_fd < 0) {
                r = -errno;
                worker_free(w);
                return r;
        }
        r = pipeline_new(opts->rules, opts->employer_domains, NULL, &w->pipeline);
        if (r < 0) {
                worker_free(w);
                return r;
        }
        if (opts->user_addresses) {
                w->self = strv_copy(opts->user_addresses);
                if (!w->self) {
                        worker_free(w);
                        return -ENOMEM;
                }
                pipeline_set_user_addresses(w->pipeline, w->self);
        }
        w->opts.user_addresses = w->self; /* the caller's list may go */
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, WATCHDOG_STACK_SIZE);
        r = -pthread_create(&w->watchdog, &attr, watchdog_main, w);
        if (r == 0) {
                w->watchdog_started = true;
                pthread_attr_setstacksize(&attr, WORKER_STACK_SIZE);
                r = -pthread_create(&w->thread, &attr, worker_main, w);
        }
        pthread_attr_destroy(&attr);
        if (r < 0) {
                worker_free(w);
                return r;
        }
        w->started = true;
        *ret = w;
        return 0;
}

void worker_stop(Worker *w) {
        uint64_t one = 1;

        atomic_store(&w->stop, true);
        (void) !write(w->wake_fd, &one, sizeof one);
        pthread_mutex_lock(&w->lock);
        for (size_t i = 0; i < MAX_IDLE_CONNECTIONS; i++)
                imap_session_cancel(w->conns[i].session);
        pthread_mutex_unlock(&w->lock);
}

void worker_wake(Worker *w, bool rescan) {
        uint64_t one = 1;

        if (rescan)
                atomic_store(&w->rescan, true);
        (void) !write(w->wake_fd, &one, sizeof one);
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->started) {
                worker_stop(w);
                pthread_join(w->thread, NULL);
        }
        if (w->watchdog_started) {
                pthread_mutex_lock(&w->lock);
                w->watchdog_quit = true;
                pthread_cond_signal(&w->cond);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->watchdog, NULL);
        }
        pipeline_free(w->pipeline);
        if (w->wake_fd >= 0)
                (void) close(w->wake_fd);
        for (size_t i = 0; i < w->opts.n_cursors; i++)
                free(w->opts.cursors[i].folder);
        free(w->opts.cursors);
        strv_free(w->domains);
        strv_free(w->self);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w->account);
        free(w);
        return NULL;
}
