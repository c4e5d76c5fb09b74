/* Main loop. Worker events arrive through the queue's eventfd: a BATCH is committed in one
 * transaction (codes + cursor) and its new codes are queued for notification; notifications
 * are grouped while any account is still backfilling, so a first run shows one notification,
 * not hundreds. SIGTERM/SIGINT stop the workers and exit once they are gone (bounded). */
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "manager.h"
#include "notify.h"
#include "queue.h"
#include "store.h"
#include "strv.h"
#include "worker.h"

#define IMAP_TIMEOUT_SEC 30
#define STOP_TIMEOUT_USEC (5 * 1000000ULL)
#define NOTIFY_FLUSH_TIMEOUT_USEC (3 * 1000000ULL)
#define NOTIFY_DEBOUNCE_USEC (200 * 1000ULL)

typedef struct AccountSlot {
        const Account *account; /* borrowed from config */
        Worker *worker;
        WorkerState state;
        char *error;
        bool running;
        bool scanned_once;      /* a full pass finished: new codes now notify one by one */
        unsigned progress, total;
} AccountSlot;

struct Manager {
        sd_event *event;
        sd_bus *bus;
        Config *config;
        Rules *rules;
        Store *store;
        Queue *queue;
        sd_event_source *queue_source;
        sd_event_source *flush_timer;
        sd_event_source *exit_timer;
        Notifier *notifier;
        AccountSlot *slots;
        size_t n_slots;
        StoredCode *pending;
        size_t n_pending;
        bool once;
        bool stopping;
        bool failed;
};

static void flush_notifications(Manager *m) {
        if (m->n_pending == 0)
                return;
        if (m->config->notify && m->notifier)
                (void) notifier_show_codes(m->notifier, m->pending, m->n_pending);
        stored_codes_free(m->pending, m->n_pending);
        m->pending = NULL;
        m->n_pending = 0;
}

static bool any_backfilling(const Manager *m) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i].running && !m->slots[i].scanned_once)
                        return true;
        return false;
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) usec;
        if (!any_backfilling(m))
                flush_notifications(m);
        return 0;
}

static void schedule_flush(Manager *m) {
        uint64_t now;

        if (m->once)
                return; /* flushed once at the end */
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (m->flush_timer) {
                (void) sd_event_source_set_time(m->flush_timer, now + NOTIFY_DEBOUNCE_USEC);
                (void) sd_event_source_set_enabled(m->flush_timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_add_time(m->event, &m->flush_timer, CLOCK_MONOTONIC,
                                         now + NOTIFY_DEBOUNCE_USEC, 0, on_flush_timer, m);
}

static void update_status(Manager *m) {
        char buf[1024];
        size_t k = 0;

        for (size_t i = 0; i < m->n_slots && k < sizeof buf; i++) {
                const AccountSlot *s = &m->slots[i];
                if (s->state == WORKER_SCANNING && s->total > 0)
                        k += (size_t) snprintf(buf + k, sizeof buf - k, "%s%s: scanning %u/%u", i ? ", " : "",
                                               s->account->name, s->progress, s->total);
                else
                        k += (size_t) snprintf(buf + k, sizeof buf - k, "%s%s: %s", i ? ", " : "",
                                               s->account->name, worker_state_to_string(s->state));
        }
        if (m->n_slots == 0)
                (void) snprintf(buf, sizeof buf, "no accounts configured");
        (void) sd_notifyf(0, "STATUS=%s", buf);
}

static AccountSlot *slot_of(Manager *m, const WorkerEvent *e) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i].worker == e->worker)
                        return &m->slots[i];
        return NULL;
}

static int handle_batch(Manager *m, AccountSlot *slot, WorkerEvent *e) {
        StoreBatch b = {
                .account = e->account, .folder = e->folder, .uidvalidity = e->uidvalidity,
                .last_uid = e->last_uid, .highest_modseq = e->highest_modseq, .move_cursor = !e->keep_cursor,
                .messages_seen = e->messages_seen, .messages = e->messages, .n_messages = e->n_messages,
        };
        LogContext ctx = { .account = e->account, .folder = e->folder };
        StoredCode *new_codes = NULL;
        size_t n_new = 0;
        int r;

        r = store_commit(m->store, &b, &new_codes, &n_new);
        if (r < 0) {
                /* Memory and disk now disagree: stop this worker rather than skip mail. */
                log_full_errno_ctx(LOG_ERR, r, &ctx, "cannot store results, stopping this account: %m");
                m->failed = true;
                if (slot && slot->worker)
                        worker_stop(slot->worker);
                return r;
        }
        if (n_new == 0)
                return 0;
        for (size_t i = 0; i < n_new; i++)
                log_full_errno_ctx(LOG_NOTICE, 0, &ctx, "new %s%s code stored (id %" PRIi64 ")", new_codes[i].trusted ? "" : "untrusted ",
                                   code_kind_to_string(new_codes[i].kind), new_codes[i].id);
        StoredCode *l = reallocarray(m->pending, m->n_pending + n_new, sizeof(StoredCode));
        if (!l) {
                stored_codes_free(new_codes, n_new);
                return log_oom();
        }
        m->pending = l;
        memcpy(m->pending + m->n_pending, new_codes, n_new * sizeof(StoredCode));
        m->n_pending += n_new;
        free(new_codes);
        schedule_flush(m);
        return 0;
}

static void check_done(Manager *m);

static void handle_event(Manager *m, WorkerEvent *e) {
        AccountSlot *slot = slot_of(m, e);

        switch (e->type) {
        case WORKER_EVENT_BATCH:
                (void) handle_batch(m, slot, e);
                break;
        case WORKER_EVENT_STATE:
                if (!slot)
                        break;
                if (slot->state != e->state && e->state == WORKER_FAILED && m->notifier && m->config->notify) {
                        _cleanup_free_ char *summary = NULL;
                        if (asprintf(&summary, "alcode: account '%s' needs attention", e->account) >= 0)
                                (void) notifier_show_trouble(m->notifier, summary, strempty(e->error));
                }
                slot->state = e->state;
                slot->progress = e->progress;
                slot->total = e->total;
                if (e->error) {
                        free(slot->error);
                        slot->error = TAKE_PTR(e->error);
                }
                update_status(m);
                break;
        case WORKER_EVENT_SCAN_DONE:
                if (slot) {
                        slot->scanned_once = true;
                        free(slot->error);
                        slot->error = NULL;
                }
                if (!m->once && !any_backfilling(m))
                        flush_notifications(m);
                break;
        case WORKER_EVENT_EXIT:
                if (!slot)
                        break;
                slot->running = false;
                slot->state = e->state;
                if (e->result < 0 && !m->stopping)
                        m->failed = true;
                worker_free(TAKE_PTR(slot->worker));
                update_status(m);
                check_done(m);
                break;
        }
}

static int on_queue(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        WorkerEvent *e;

        (void) s;
        (void) fd;
        (void) revents;
        while ((e = queue_pop(m->queue))) {
                handle_event(m, e);
                worker_event_free(e);
        }
        return 0;
}

static bool all_exited(const Manager *m) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i].running)
                        return false;
        return true;
}

static int on_exit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) usec;
        if (m->stopping && !all_exited(m))
                log_warning("Some accounts did not stop in time; exiting anyway.");
        return sd_event_exit(m->event, m->failed && m->once ? 1 : 0);
}

/* Leaves the loop once every worker is gone and notifications went out (bounded). */
static void check_done(Manager *m) {
        uint64_t now;

        if (!all_exited(m) || (!m->once && !m->stopping))
                return;
        flush_notifications(m);
        if (notifier_pending(m->notifier) == 0) {
                (void) sd_event_exit(m->event, m->failed && m->once ? 1 : 0);
                return;
        }
        if (!m->exit_timer && sd_event_now(m->event, CLOCK_MONOTONIC, &now) >= 0)
                (void) sd_event_add_time(m->event, &m->exit_timer, CLOCK_MONOTONIC,
                                         now + NOTIFY_FLUSH_TIMEOUT_USEC, 0, on_exit_timer, m);
}

static int on_post(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        (void) s;
        /* A notification reply may have been the last thing we waited for. */
        if (all_exited(m) && (m->once || m->stopping) && notifier_pending(m->notifier) == 0 &&
            m->n_pending == 0)
                (void) sd_event_exit(m->event, m->failed && m->once ? 1 : 0);
        return 0;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        uint64_t now;

        (void) s;
        log_info("Received %s, stopping.", strsignal((int) si->ssi_signo));
        (void) sd_notify(0, "STOPPING=1");
        m->stopping = true;
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i].worker)
                        worker_stop(m->slots[i].worker);
        if (!m->exit_timer && sd_event_now(m->event, CLOCK_MONOTONIC, &now) >= 0)
                (void) sd_event_add_time(m->event, &m->exit_timer, CLOCK_MONOTONIC, now + STOP_TIMEOUT_USEC,
                                         0, on_exit_timer, m);
        check_done(m);
        return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) s;
        (void) si;
        (void) userdata;
        log_notice("Received SIGHUP; configuration reload is not supported yet, ignoring.");
        return 0;
}

int manager_new(Config *config, Rules *rules, bool once, Manager **ret) {
        Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m)
                return -ENOMEM;
        m->config = config;
        m->rules = rules;
        m->once = once;
        r = sd_event_default(&m->event);
        if (r >= 0)
                r = queue_new(&m->queue);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_slots; i++) {
                worker_free(m->slots[i].worker);
                free(m->slots[i].error);
        }
        free(m->slots);
        /* Events still queued (a worker that ended after the loop) are dropped here. */
        queue_free(m->queue, worker_event_free);
        stored_codes_free(m->pending, m->n_pending);
        notifier_free(m->notifier);
        sd_event_source_unref(m->queue_source);
        sd_event_source_unref(m->flush_timer);
        sd_event_source_unref(m->exit_timer);
        sd_bus_flush_close_unref(m->bus);
        store_close(m->store);
        sd_event_unref(m->event);
        rules_free(m->rules);
        config_free(m->config);
        free(m);
        return NULL;
}

/* The worker starts from the cursors that are on disk, never from anything in memory. */
static int load_cursors(Manager *m, const Account *a, WorkerCursor **ret, size_t *ret_n) {
        StoreCursor *c = NULL;
        WorkerCursor *w;
        size_t n = 0;
        int r;

        r = store_list_cursors(m->store, a->name, &c, &n);
        if (r < 0)
                return log_error_errno(r, "Cannot read the folder cursors of account '%s': %m", a->name);
        w = calloc(n + 1, sizeof(WorkerCursor));
        if (!w) {
                store_cursors_free(c, n);
                return log_oom();
        }
        for (size_t i = 0; i < n; i++)
                w[i] = (WorkerCursor) { .folder = TAKE_PTR(c[i].folder), .uidvalidity = c[i].uidvalidity,
                                        .last_uid = c[i].last_uid };
        store_cursors_free(c, n);
        *ret = w;
        *ret_n = n;
        return 0;
}

int manager_start(Manager *m) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = store_open(m->config->database, STORE_READ_WRITE, &m->store, &error);
        if (r < 0)
                return log_error_errno(r, "Cannot open the database '%s': %s", m->config->database,
                                       error ?: strerror(-r));
        store_set_otp_retention(m->store, (int64_t) m->config->otp_retention_days * 86400);

        r = sd_bus_open_user(&m->bus);
        if (r < 0)
                log_warning_errno(r, "No session bus (%m): no desktop notifications, codes are still stored.");
        else {
                r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0)
                        return log_error_errno(r, "Cannot attach the bus to the event loop: %m");
        }
        r = notifier_new(m->bus, m->config->notify_show_code, &m->notifier);
        if (r < 0)
                return log_oom();

        r = sd_event_add_io(m->event, &m->queue_source, queue_fd(m->queue), EPOLLIN, on_queue, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the worker queue: %m");
        r = sd_event_add_post(m->event, NULL, on_post, m);
        if (r < 0)
                return log_error_errno(r, "Cannot add a post handler: %m");
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, on_stop_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, on_stop_signal, m);
        (void) sd_event_add_signal(m->event, NULL, SIGHUP, on_hup, m);
        (void) sd_event_set_watchdog(m->event, true);

        m->slots = calloc(m->config->n_accounts + 1, sizeof(AccountSlot));
        if (!m->slots)
                return log_oom();
        /* The user's own addresses, as `alcode scan` takes them: mail they sent is never
         * trusted, whatever its domain. */
        _cleanup_strv_free_ char **self = NULL;
        for (size_t i = 0; i < m->config->n_accounts; i++)
                if (m->config->accounts[i].user && strchr(m->config->accounts[i].user, '@') &&
                    strv_extend(&self, m->config->accounts[i].user) < 0)
                        return log_oom();
        for (size_t i = 0; i < m->config->n_accounts; i++) {
                const Account *a = &m->config->accounts[i];
                WorkerOptions o = {
                        .account = a, .rules = m->rules, .employer_domains = m->config->employer_domains,
                        .user_addresses = self,
                        .queue = m->queue, .once = m->once, .timeout_sec = IMAP_TIMEOUT_SEC,
                };
                AccountSlot *slot = &m->slots[m->n_slots++];

                *slot = (AccountSlot) { .account = a, .state = WORKER_CONNECTING };
                r = load_cursors(m, a, &o.cursors, &o.n_cursors);
                if (r < 0)
                        return r;
                r = worker_start(&o, &slot->worker);
                if (r < 0)
                        return log_error_errno(r, "Cannot start the worker of account '%s': %m", a->name);
                slot->running = true;
        }
        if (m->n_slots == 0)
                log_notice("No account configured in %s: nothing to watch.", m->config->path ?: "the default config");
        update_status(m);
        (void) sd_notify(0, "READY=1");
        return 0;
}

int manager_run(Manager *m) {
        int r;

        if (m->once && m->n_slots == 0)
                return 0;
        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
