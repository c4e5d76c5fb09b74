/* The worker thread. Scanning a folder: EXAMINE, compare UIDVALIDITY with the cursor (a
 * change means rescan from UID 1: the store's UNIQUE constraints absorb the repeats), UID
 * SEARCH above the cursor, FETCH in batches, run the pipeline on each message and push one
 * Batch per fetch batch. The cursor in a Batch covers exactly the messages in it, so that the
 * main thread's single transaction keeps codes and cursor together.
 *
 * Failures are classed as isync does: a message that cannot be parsed is read best-effort; a
 * folder that cannot be opened is skipped; a connection failure ends the pass and, unless
 * --once, backs off (exponential, jittered, capped, cancellable) and reconnects; a refused
 * login or certificate stops the worker: retrying would not help and would hammer the server. */
#include <fnmatch.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>

#include "imap.h"
#include "log.h"
#include "pipeline.h"
#include "strv.h"
#include "worker.h"

#define WORKER_STACK_SIZE (8u << 20) /* libetpan's MIME parser recurses */
#define FETCH_BATCH 64
#define MAX_MESSAGE_SIZE (16u << 20)
#define BACKOFF_MIN_SEC 2
#define BACKOFF_MAX_SEC 600

struct Worker {
        pthread_t thread;
        bool started;
        WorkerOptions opts;
        char *account;
        int wake_fd;
        atomic_bool stop;
        atomic_bool rescan;
        pthread_mutex_t session_lock; /* guards `session` for cancel from other threads */
        ImapSession *session;
        Pipeline *pipeline;
};

static const char *const worker_states[_WORKER_STATE_MAX] = {
        [WORKER_CONNECTING] = "connecting", [WORKER_SCANNING] = "scanning",
        [WORKER_IDLE] = "idle",             [WORKER_BACKOFF] = "waiting to reconnect",
        [WORKER_FAILED] = "failed",         [WORKER_STOPPED] = "stopped",
};

const char *worker_state_to_string(WorkerState s) {
        return s >= 0 && s < _WORKER_STATE_MAX ? worker_states[s] : NULL;
}

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

        if (!e)
                return;
        e->state = state;
        e->error_code = error_code;
        e->error = error ? strdup(error) : NULL;
        e->progress = progress;
        e->total = total;
        (void) push(w, e);
}

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
                c = &l[w->opts.n_cursors++];
                *c = (WorkerCursor) { .folder = strdup(folder) };
                if (!c->folder) {
                        w->opts.n_cursors--;
                        return -ENOMEM;
                }
        }
        c->uidvalidity = uidvalidity;
        c->last_uid = last_uid;
        return 0;
}

static bool folder_selected(const Account *a, const ImapFolder *f) {
        bool in = false;

        if (f->flags & IMAP_FOLDER_NOSELECT)
                return false;
        STRV_FOREACH(g, a->folders)
                if (fnmatch(*g, f->display, 0) == 0 || fnmatch(*g, f->name, 0) == 0)
                        in = true;
        STRV_FOREACH(g, a->exclude)
                if (fnmatch(*g, f->display, 0) == 0 || fnmatch(*g, f->name, 0) == 0)
                        in = false;
        return in;
}

typedef struct FetchContext {
        Worker *w;
        const char *folder;
        uint32_t uidvalidity;
        WorkerEvent *batch;
} FetchContext;

static int on_message(const ImapMessage *m, void *userdata) {
        FetchContext *fc = userdata;
        Worker *w = fc->w;
        MessageRef ref = { .account = w->account, .folder = (char *) fc->folder,
                           .uidvalidity = fc->uidvalidity, .uid = m->uid };
        _cleanup_strv_free_ char **warnings = NULL;
        Message *msg = NULL;
        LogContext ctx = { .account = w->account, .folder = fc->folder, .uid = m->uid };
        int r;

        fc->batch->messages_seen++;
        fc->batch->last_uid = MAX(fc->batch->last_uid, m->uid);
        if (m->truncated)
                log_full_errno_ctx(LOG_INFO, 0, &ctx, "message larger than %u bytes, reading only the start",
                                   MAX_MESSAGE_SIZE);
        r = pipeline_run(w->pipeline, m->data, m->size, &ref, &msg, &warnings, NULL, NULL);
        if (r < 0)
                return r;
        STRV_FOREACH(wn, warnings)
                log_full_errno_ctx(LOG_DEBUG, 0, &ctx, "%s", *wn);
        if (msg->n_codes == 0) {
                message_free(msg);
                return 0;
        }
        log_full_errno_ctx(LOG_INFO, 0, &ctx, "found %zu code(s)", msg->n_codes);
        Message **l = reallocarray(fc->batch->messages, fc->batch->n_messages + 1, sizeof(Message *));
        if (!l) {
                message_free(msg);
                return -ENOMEM;
        }
        fc->batch->messages = l;
        l[fc->batch->n_messages++] = msg;
        return 0;
}

/* Scans one folder. Returns 0, -ENOENT when the folder cannot be opened (skip it), or another
 * error for the connection. */
static int scan_folder(Worker *w, const ImapFolder *f) {
        const Account *a = w->opts.account;
        LogContext ctx = { .account = w->account, .folder = f->display };
        _cleanup_free_ uint32_t *uids = NULL;
        ImapFolderState st;
        WorkerCursor *c;
        uint32_t first = 1;
        size_t n = 0;
        int r;

        r = imap_examine(w->session, f->name, &st);
        if (r == -ENOENT) {
                log_full_errno_ctx(LOG_WARNING, r, &ctx, "cannot open folder (%s), skipping",
                                   imap_last_error(w->session));
                return r;
        }
        if (r < 0)
                return r;

        c = cursor_find(w, f->display);
        if (c && c->uidvalidity == st.uidvalidity && !atomic_load(&w->rescan))
                first = c->last_uid + 1;
        else if (c && c->uidvalidity != st.uidvalidity)
                log_full_errno_ctx(LOG_NOTICE, 0, &ctx, "UIDVALIDITY changed (%u → %u): rescanning the folder",
                                   c->uidvalidity, st.uidvalidity);

        if (st.exists > 0 && (st.uidnext == 0 || st.uidnext > first)) {
                r = imap_search(w->session, first, a->since, &uids, &n);
                if (r < 0)
                        return r;
        }

        /* Nothing new in a folder we know: nothing to record either. */
        if (n == 0 && c && c->uidvalidity == st.uidvalidity)
                return 0;

        for (size_t i = 0; i < n || i == 0; i += FETCH_BATCH) {
                FetchContext fc = { .w = w, .folder = f->display, .uidvalidity = st.uidvalidity };
                size_t k = MIN((size_t) FETCH_BATCH, n - MIN(i, n));

                if (atomic_load(&w->stop))
                        return -ECANCELED;
                fc.batch = event_new(w, WORKER_EVENT_BATCH);
                if (!fc.batch || !(fc.batch->folder = strdup(f->display))) {
                        worker_event_free(fc.batch);
                        return -ENOMEM;
                }
                fc.batch->uidvalidity = st.uidvalidity;
                fc.batch->highest_modseq = st.highest_modseq;
                /* An empty folder still records its UIDVALIDITY; the cursor never goes back. */
                fc.batch->last_uid = first > 1 ? first - 1 : 0;
                if (k > 0) {
                        r = imap_fetch(w->session, uids + i, k, MAX_MESSAGE_SIZE, on_message, &fc);
                        if (r < 0) {
                                worker_event_free(fc.batch);
                                return r;
                        }
                        /* Messages expunged meanwhile were not returned: the batch still covers them. */
                        fc.batch->last_uid = MAX(fc.batch->last_uid, uids[i + k - 1]);
                }
                r = cursor_set(w, f->display, st.uidvalidity, fc.batch->last_uid);
                if (r < 0) {
                        worker_event_free(fc.batch);
                        return r;
                }
                r = push(w, fc.batch);
                if (r < 0)
                        return r;
                if (n == 0)
                        break;
        }
        if (n > 0)
                log_full_errno_ctx(LOG_INFO, 0, &ctx, "scanned %zu new message(s)", n);
        return 0;
}

static int connect_session(Worker *w) {
        _cleanup_free_ char *error = NULL;
        ImapSession *s = NULL;
        int r;

        push_state(w, WORKER_CONNECTING, 0, NULL, 0, 0);
        r = imap_connect(w->opts.account, w->opts.timeout_sec, &s, &error);
        if (r < 0) {
                log_full_errno_ctx(LOG_ERR, r, &(LogContext) { .account = w->account }, "%s",
                                   error ?: "cannot connect");
                push_state(w, r == -EACCES || r == -EPERM || r == -EPROTONOSUPPORT || r == -ENOKEY
                                      ? WORKER_FAILED
                                      : WORKER_BACKOFF,
                           r, error, 0, 0);
                return r;
        }
        pthread_mutex_lock(&w->session_lock);
        w->session = s;
        pthread_mutex_unlock(&w->session_lock);
        log_full_errno_ctx(LOG_INFO, 0, &(LogContext) { .account = w->account }, "connected to %s",
                           w->opts.account->host);
        return 0;
}

static void drop_session(Worker *w) {
        pthread_mutex_lock(&w->session_lock);
        ImapSession *s = TAKE_PTR(w->session);
        pthread_mutex_unlock(&w->session_lock);
        if (s && !atomic_load(&w->stop))
                imap_logout(s);
        imap_session_free(s);
}

/* One pass over every selected folder. */
static int scan_all(Worker *w) {
        ImapFolder *folders = NULL;
        size_t n = 0, selected = 0, done = 0;
        int r;

        r = imap_list(w->session, &folders, &n);
        if (r < 0) {
                log_full_errno_ctx(LOG_ERR, r, &(LogContext) { .account = w->account }, "%s",
                                   imap_last_error(w->session));
                return r;
        }
        for (size_t i = 0; i < n; i++)
                selected += folder_selected(w->opts.account, &folders[i]);
        for (size_t i = 0; i < n; i++) {
                if (!folder_selected(w->opts.account, &folders[i]))
                        continue;
                push_state(w, WORKER_SCANNING, 0, NULL, (unsigned) done, (unsigned) selected);
                r = scan_folder(w, &folders[i]);
                if (r < 0 && r != -ENOENT)
                        break;
                done++;
                r = 0;
        }
        imap_folders_free(folders, n);
        if (r < 0 && r != -ECANCELED)
                log_full_errno_ctx(LOG_ERR, r, &(LogContext) { .account = w->account },
                                   "scan interrupted: %s", imap_last_error(w->session));
        if (r >= 0) {
                atomic_store(&w->rescan, false);
                (void) push(w, event_new(w, WORKER_EVENT_SCAN_DONE));
        }
        return r;
}

/* Waits up to sec seconds for a wake-up (stop, rescan, new pass). Returns true if woken. */
static bool wait_wake(Worker *w, unsigned sec) {
        struct pollfd p = { .fd = w->wake_fd, .events = POLLIN };
        uint64_t v;
        int r;

        r = poll(&p, 1, (int) MIN(sec, 86400u) * 1000);
        if (r > 0) {
                (void) !read(w->wake_fd, &v, sizeof v);
                return true;
        }
        return false;
}

static unsigned backoff_delay(unsigned attempt) {
        unsigned d = BACKOFF_MIN_SEC << MIN(attempt, 10u);
        unsigned jitter;

        d = MIN(d, (unsigned) BACKOFF_MAX_SEC);
        jitter = (unsigned) (random() % (d / 2 + 1)); /* spread reconnects of many clients */
        return d / 2 + jitter + 1;
}

static void *worker_main(void *userdata) {
        Worker *w = userdata;
        unsigned attempt = 0;
        int r = 0;
        WorkerEvent *e;

        while (!atomic_load(&w->stop)) {
                if (!w->session) {
                        r = connect_session(w);
                        if (r == -EACCES || r == -EPERM || r == -EPROTONOSUPPORT || r == -ENOKEY || r == -ENOMEM)
                                break; /* retrying would not help */
                }
                if (w->session) {
                        r = scan_all(w);
                        if (r >= 0)
                                attempt = 0;
                        else
                                drop_session(w);
                }
                if (w->opts.once || atomic_load(&w->stop) || r == -ENOMEM)
                        break;
                if (r >= 0) {
                        /* Until IDLE lands: poll every poll_interval. */
                        push_state(w, WORKER_IDLE, 0, NULL, 0, 0);
                        (void) wait_wake(w, w->opts.account->poll_interval);
                } else {
                        unsigned d = backoff_delay(attempt++);
                        push_state(w, WORKER_BACKOFF, r, NULL, 0, 0);
                        log_full_errno_ctx(LOG_INFO, 0, &(LogContext) { .account = w->account },
                                           "reconnecting in %u s", d);
                        (void) wait_wake(w, d);
                }
        }
        drop_session(w);
        e = event_new(w, WORKER_EVENT_EXIT);
        if (e) {
                e->result = r;
                e->state = r < 0 && !atomic_load(&w->stop) ? WORKER_FAILED : WORKER_STOPPED;
                (void) push(w, e);
        }
        return NULL;
}

int worker_start(const WorkerOptions *opts, Worker **ret) {
        Worker *w = calloc(1, sizeof(Worker));
        pthread_attr_t attr;
        int r;

        if (!w)
                return -ENOMEM;
        w->opts = *opts;
        w->wake_fd = -EBADF;
        pthread_mutex_init(&w->session_lock, NULL);
        w->account = strdup(opts->account->name);
        if (!w->account) {
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
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, WORKER_STACK_SIZE);
        r = -pthread_create(&w->thread, &attr, worker_main, w);
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
        pthread_mutex_lock(&w->session_lock);
        imap_session_cancel(w->session);
        pthread_mutex_unlock(&w->session_lock);
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
        pipeline_free(w->pipeline);
        if (w->wake_fd >= 0)
                (void) close(w->wake_fd);
        for (size_t i = 0; i < w->opts.n_cursors; i++)
                free(w->opts.cursors[i].folder);
        free(w->opts.cursors);
        pthread_mutex_destroy(&w->session_lock);
        free(w->account);
        free(w);
        return NULL;
}
