/* Main loop. Worker events arrive through the queue's eventfd: a BATCH is committed in one
 * transaction (codes + cursor), its new codes are announced (CodeFound) and shown. While an
 * account backfills (its first pass, or a Rescan) its new codes are held back and shown as one
 * notification when the pass ends; afterwards the codes of every batch drained in one go are
 * shown together, at once: a burst makes one notification and a lone code waits for nothing.
 *
 * Slots: one per account, in config order. A slot holds a reference on the Settings its worker
 * was started with, because the worker borrows the Account and Rules in it. SIGHUP loads new
 * Settings and compares: an unchanged account keeps running on the old Settings; a changed one
 * is stopped and started again (with the new Settings) when its EXIT arrives; a removed one
 * is stopped and dropped; a new one starts. A failed commit stops the worker and ignores its
 * later batches, whose cursors would otherwise skip the messages of the failed one.
 *
 * Liveness: sd-event sends WATCHDOG=1 from this loop. A worker that is connecting or scanning
 * sends events as it goes; one silent for longer than STUCK_AFTER is marked "stuck" (STATUS=,
 * Status(), AccountStateChanged). That timer is armed only while some worker is busy, so an
 * idle daemon wakes for nothing but the watchdog.
 *
 * Stop: SIGTERM/SIGINT stop every worker (a blocked command is cancelled), commit what
 * arrives, flush notifications and leave within STOP_TIMEOUT, stuck worker or not. */
#include <assert.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "bus.h"
#include "i18n.h"
#include "log.h"
#include "manager.h"
#include "notify.h"
#include "queue.h"
#include "strbuf.h"
#include "strv.h"
#include "worker.h"

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define IMAP_TIMEOUT_SEC 30
#define STOP_TIMEOUT_USEC (3 * USEC_PER_SEC)
/* A write waits this long for another writer's lock; then the batch is retried from a timer
 * (first after STORE_RETRY_MIN_USEC, doubling up to STORE_RETRY_MAX_USEC), so that a locked
 * database never stalls the main loop, D-Bus or the other accounts. */
#define STORE_BUSY_MSEC 200
#define STORE_RETRY_MIN_USEC (1000 * 1000ULL)
#define STORE_RETRY_MAX_USEC (60 * 1000 * 1000ULL)
/* --once gives up on a database that stays unusable after about 15 s of retries. */
#define STORE_RETRY_ONCE_USEC (8 * 1000 * 1000ULL)
#define NOTIFY_FLUSH_TIMEOUT_USEC (3 * USEC_PER_SEC)
/* A pass reports at least once per batch of messages, which takes several commands, each
 * bounded by the IMAP timeout. */
#define STUCK_AFTER_USEC (4 * IMAP_TIMEOUT_SEC * USEC_PER_SEC)
/* A password_command that fails is retried (a keyring still locked at login opens a little
 * later); the user is told once when it has failed for this long. */
#define PASSWORD_NOTIFY_AFTER_USEC (5 * 60 * USEC_PER_SEC)

typedef struct CodeList {
        StoredCode *codes;
        size_t n;
} CodeList;

/* Why an account shows an error: what clears it depends on the cause, never on its words. */
typedef enum SlotError {
        SLOT_ERROR_NONE,
        SLOT_ERROR_WORKER,       /* the worker's words: server, network, login, configuration */
        SLOT_ERROR_START,        /* its thread could not start */
        SLOT_ERROR_STORE_BUSY,   /* another program holds the database's lock: retrying */
        SLOT_ERROR_STORE_FULL,   /* no space left for the database: retrying */
        SLOT_ERROR_STORE_FAILED, /* a commit failed: the worker was stopped */
} SlotError;

typedef struct AccountSlot {
        Settings *settings;       /* ref: the worker borrows account and rules from it */
        const Account *account;   /* borrowed from settings */
        Worker *worker;           /* NULL once its thread ended */
        WorkerState state;
        char *error;              /* the last error in words (no secrets), or NULL */
        SlotError error_cause;    /* why error is set */
        int error_code;           /* -errno of the last failure (-ENOKEY: no password yet) */
        uint64_t password_since;  /* CLOCK_MONOTONIC usec since password_command fails; 0: it works */
        bool password_notified;   /* the user was told that it keeps failing */
        unsigned progress, total;
        bool scanned_once;        /* its current pass is not a backfill */
        bool found_specific;      /* a trusted code spécifique came from it (STATUS= says so) */
        bool stuck;
        bool commit_failed;       /* drop this worker's later batches */
        bool removed;             /* gone from the config: drop the slot when the worker ends */
        Settings *restart_with;   /* ref: start again with these when the worker ends */
        WorkerState published;    /* the state last sent as AccountStateChanged, or invalid */
        uint64_t last_event;      /* CLOCK_MONOTONIC usec of the worker's last event */
        int64_t last_pass;        /* CLOCK_REALTIME seconds of the last finished pass */
        CodeList held;            /* new codes held back while it backfills */
} AccountSlot;

struct Manager {
        sd_event *event;
        sd_bus *bus;              /* session bus, or NULL */
        sd_bus *system_bus;       /* for logind, or NULL */
        sd_bus_slot *sleep_slot;
        Bus *api;
        Notifier *notifier;
        char *config_path;
        Settings *settings;       /* the current configuration */
        Store *store;
        Queue *queue;
        sd_event_source *queue_source, *stuck_timer, *exit_timer;
        AccountSlot **slots;
        size_t n_slots;
        CodeList pending;         /* new codes to show once the queue is drained */
        WorkerEvent **deferred;   /* batches the store could not take yet, oldest first */
        size_t n_deferred;
        sd_event_source *retry_timer;
        uint64_t retry_delay;     /* usec; doubles while the store stays unusable */
        uint64_t stuck_after;
        bool once;
        bool stopping;
        bool failed;
        bool bus_lost;            /* the session bus went away: exit 1, systemd restarts us */
        bool stuck_at_exit;
        bool reload_failed;       /* the last reload kept the running configuration (STATUS= says so) */
};

static void code_list_done(CodeList *l) {
        stored_codes_free(l->codes, l->n);
        *l = (CodeList) {};
}

/* Moves n codes (and the array holding them) into l. */
static int code_list_take(CodeList *l, StoredCode *codes, size_t n) {
        StoredCode *a;

        if (n == 0) {
                free(codes);
                return 0;
        }
        a = reallocarray(l->codes, l->n + n, sizeof(StoredCode));
        if (!a) {
                stored_codes_free(codes, n);
                return -ENOMEM;
        }
        memcpy(a + l->n, codes, n * sizeof(StoredCode));
        free(codes);
        l->codes = a;
        l->n += n;
        return 0;
}

static int code_list_move(CodeList *to, CodeList *from) {
        CodeList f = *from;

        *from = (CodeList) {};
        return code_list_take(to, f.codes, f.n);
}

static uint64_t now_usec(Manager *m) {
        uint64_t t = 0;

        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &t);
        return t;
}

static int exit_code(const Manager *m) {
        return (m->once && m->failed) || m->bus_lost ? 1 : 0;
}

/* ---- slots ---- */

static AccountSlot *slot_free(AccountSlot *s) {
        if (!s)
                return NULL;
        worker_free(s->worker); /* joins: only for a thread that ended or will end soon */
        free(s->error);
        code_list_done(&s->held);
        settings_unref(s->restart_with);
        settings_unref(s->settings);
        free(s);
        return NULL;
}

static AccountSlot *slot_of(Manager *m, const Worker *w) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i]->worker == w)
                        return m->slots[i];
        return NULL;
}

static AccountSlot *slot_find(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (!m->slots[i]->removed && streq(m->slots[i]->account->name, name))
                        return m->slots[i];
        return NULL;
}

static bool slot_busy(const AccountSlot *s) {
        return s->worker && (s->state == WORKER_CONNECTING || s->state == WORKER_SCANNING);
}

/* The state as published (Status(), AccountStateChanged, STATUS=): the worker's, and those only
 * the manager knows (stuck, waiting for the password, the thread gone). */
static WorkerState slot_state(const AccountSlot *s) {
        if (!s->worker)
                return s->state == WORKER_FAILED ? WORKER_FAILED : WORKER_STOPPED;
        if (s->stuck)
                return WORKER_STUCK;
        if (s->state == WORKER_BACKOFF && s->error_code == -ENOKEY)
                return WORKER_PASSWORD;
        return s->state;
}

/* Takes error (NULL: clears it). */
static void slot_set_error(AccountSlot *s, SlotError cause, char *error) {
        free(s->error);
        s->error = error;
        s->error_cause = error ? cause : SLOT_ERROR_NONE;
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

static int slot_start(Manager *m, AccountSlot *s) {
        _cleanup_strv_free_ char **self = NULL;
        WorkerOptions o = {
                .account = s->account, .rules = s->settings->rules,
                .employer_domains = s->settings->config->employer_domains, .queue = m->queue,
                .once = m->once, .timeout_sec = IMAP_TIMEOUT_SEC,
        };
        int r;

        assert(!s->worker);
        /* As `alcode scan` takes them. (A reload that adds an account does not restart the
         * others for its address: they learn it when they next start.) */
        r = config_user_addresses(s->settings->config, &self);
        if (r < 0)
                return log_oom();
        o.user_addresses = self; /* copied by the worker */
        r = load_cursors(m, s->account, &o.cursors, &o.n_cursors);
        if (r >= 0) {
                r = worker_start(&o, &s->worker);
                if (r < 0)
                        log_error_errno(r, "Cannot start the worker of account '%s': %m", s->account->name);
        }
        if (r < 0) {
                s->state = WORKER_FAILED;
                slot_set_error(s, SLOT_ERROR_START, strdup("cannot start"));
                return r;
        }
        s->state = WORKER_CONNECTING;
        s->scanned_once = false;
        s->stuck = s->commit_failed = false;
        s->last_event = now_usec(m);
        slot_set_error(s, SLOT_ERROR_NONE, NULL);
        return 0;
}

/* Moves a stopped slot to the Settings it waits for (its account has the same name there). */
static void slot_switch_settings(AccountSlot *s) {
        Settings *old = s->settings;

        assert(!s->worker && s->restart_with);
        s->settings = TAKE_PTR(s->restart_with);
        s->account = config_find_account(s->settings->config, s->account->name);
        assert(s->account);
        settings_unref(old); /* last: the name looked up above lives in it */
}

static AccountSlot *slot_new(Settings *settings, const Account *a) {
        AccountSlot *s = calloc(1, sizeof(AccountSlot));

        if (!s)
                return NULL;
        *s = (AccountSlot) { .settings = settings_ref(settings), .account = a, .state = WORKER_STOPPED,
                             .published = _WORKER_STATE_INVALID };
        return s;
}

/* ---- status ---- */

static void publish_state(Manager *m, AccountSlot *s) {
        WorkerState st = slot_state(s);

        if (s->removed || s->published == st)
                return;
        s->published = st;
        bus_emit_account_state(m->api, s->account->name, st);
}

static void update_status(Manager *m) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(2048);
        uint64_t now = now_usec(m);
        bool first = true;

        for (size_t i = 0; i < m->n_slots; i++) {
                const AccountSlot *s = m->slots[i];

                if (s->removed)
                        continue;
                (void) strbuf_printf(&b, "%s%s: ", first ? "" : "; ", s->account->name);
                first = false;
                if (s->stuck)
                        (void) strbuf_printf(&b, "stuck %s (no progress for %llu s)",
                                             worker_state_to_string(s->state),
                                             (unsigned long long) ((now - s->last_event) / USEC_PER_SEC));
                else if (s->worker && s->state == WORKER_SCANNING && s->total > 0)
                        (void) strbuf_printf(&b, "scanning %u/%u", s->progress, s->total);
                else if (!s->worker && s->state == WORKER_FAILED)
                        (void) strbuf_printf(&b, "error (%s)", strna(s->error));
                else
                        (void) strbuf_puts(&b, worker_state_to_words(slot_state(s)));
                /* What a user waits for after `alcode init`: said as soon as it is stored,
                 * while the exact scan goes on behind it (then the notification says it). */
                if (s->found_specific && s->worker && s->state == WORKER_SCANNING && !s->stuck)
                        (void) strbuf_puts(&b, ", found your code spécifique");
        }
        if (first)
                (void) strbuf_puts(&b, "no accounts configured");
        if (m->reload_failed)
                (void) strbuf_puts(&b, " (reload failed: the previous configuration is in use)");
        if (strbuf_ensure(&b) >= 0)
                (void) sd_notifyf(0, "STATUS=%s", b.data);
}

static void arm_stuck_timer(Manager *m) {
        uint64_t next = UINT64_MAX;

        for (size_t i = 0; i < m->n_slots; i++)
                if (slot_busy(m->slots[i]) && !m->slots[i]->stuck)
                        next = MIN(next, m->slots[i]->last_event + m->stuck_after);
        if (next == UINT64_MAX) {
                if (m->stuck_timer)
                        (void) sd_event_source_set_enabled(m->stuck_timer, SD_EVENT_OFF);
                return;
        }
        if (m->stuck_timer) {
                (void) sd_event_source_set_time(m->stuck_timer, next);
                (void) sd_event_source_set_enabled(m->stuck_timer, SD_EVENT_ONESHOT);
        }
}

static int on_stuck_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) source;
        usec = now_usec(m);
        for (size_t i = 0; i < m->n_slots; i++) {
                AccountSlot *s = m->slots[i];

                if (!slot_busy(s) || s->stuck || usec < s->last_event + m->stuck_after)
                        continue;
                s->stuck = true;
                log_full_errno_ctx(LOG_WARNING, 0, &(LogContext) { .account = s->account->name },
                                   "no progress for %llu s while %s: the server or the network may be stalled",
                                   (unsigned long long) ((usec - s->last_event) / USEC_PER_SEC),
                                   worker_state_to_string(s->state));
                publish_state(m, s);
        }
        update_status(m);
        arm_stuck_timer(m);
        return 0;
}

/* ---- notifications ---- */

static void flush_notifications(Manager *m) {
        if (m->pending.n == 0)
                return;
        if (m->settings->config->notify)
                (void) notifier_show_codes(m->notifier, m->pending.codes, m->pending.n);
        code_list_done(&m->pending);
}

/* What the notification says for each way an account stops (gettext ids: N_ here, _ when shown). */
static const struct {
        int error_code;
        const char *summary; /* printf format, one %s: the account's name */
        const char *advice;
} trouble_texts[] = {
        { -EACCES, N_("alcode: login refused for '%s'"),
          N_("Check the user name and password of this account, then run "
             "'systemctl --user reload alcoded'.") },
        { -EPERM, N_("alcode: the certificate of '%s' was refused"),
          N_("No password was sent. If the server changed its certificate on purpose, "
             "update ca_file or fingerprint and reload alcoded; otherwise someone may be "
             "intercepting your mail.") },
        { -ENOKEY, N_("alcode: no password for '%s'"),
          N_("The password_command of this account gives no password (is the keyring "
             "locked?). alcoded tries again by itself; unlock the keyring or fix the "
             "command.") },
        /* error says "needs you to sign in again: alcode init --reauth NAME (...)". */
        { -EKEYREVOKED, N_("alcode: sign in again for '%s'"),
          N_("Your provider no longer accepts alcode's sign-in (revoked, expired, or the password "
             "changed). alcode will not try again until you sign in.") },
        { -EPROTONOSUPPORT, N_("alcode: '%s' offers no secure connection"),
          N_("The server does not offer STARTTLS and alcode never sends a password in "
             "clear text. Try tls = implicit.") },
        /* Last: any other error. */
        { 0, N_("alcode: account '%s' stopped"),
          N_("See 'alcode status' and 'journalctl --user -u alcoded'.") },
};

static void notify_trouble(Manager *m, const AccountSlot *s, int error_code, const char *error) {
        _cleanup_free_ char *summary = NULL, *body = NULL;
        size_t i = 0;
        int k;

        if (!m->settings->config->notify)
                return;
        while (i < ELEMENTSOF(trouble_texts) - 1 && trouble_texts[i].error_code != error_code)
                i++;
        /* Each summary is a literal above with one %s; msgfmt --check holds translations to it. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        k = asprintf(&summary, _(trouble_texts[i].summary), s->account->name);
#pragma GCC diagnostic pop
        if (k < 0 || asprintf(&body, "%s%s%s", strempty(error), isempty(error) ? "" : "\n", _(trouble_texts[i].advice)) < 0) {
                log_oom();
                return;
        }
        (void) notifier_show_trouble(m->notifier, error_code == -ENOKEY ? "x-alcode.password.error" : "network.error",
                                     summary, body);
}

/* A pass leaves its message buffers free in the worker's malloc arena, which glibc keeps:
 * after a backfill that is megabytes per account. Give them back once no pass is running. */
static void trim_memory(Manager *m) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i]->worker && m->slots[i]->state == WORKER_SCANNING)
                        return;
        (void) malloc_trim(0);
}

/* ---- worker events ---- */

static void check_done(Manager *m);

/* The UID and rule that brought a stored code, for the journal's UID= and RULE= fields. */
static void batch_find_code(const WorkerEvent *e, const StoredCode *c, LogContext *where) {
        for (size_t i = 0; i < e->n_messages; i++)
                for (size_t k = 0; k < e->messages[i]->n_codes; k++) {
                        const Code *code = &e->messages[i]->codes[k];
                        if (code->kind == c->kind && code_value_equal(code->value, c->value)) {
                                where->uid = e->messages[i]->ref.uid;
                                where->rule = code->rule;
                                return;
                        }
                }
}

/* A locked database (another writer, e.g. `alcode scan --store`) or a full disk passes: the
 * batch waits and is retried; anything else stops the account. */
static bool store_error_is_transient(int r) {
        return r == -EBUSY || r == -ENOSPC;
}

/* Possible codes are announced once: only the first one stored (the store held none before
 * this batch) is kept in new_codes for CodeFound and the notification; the others are
 * dropped from it (they are stored, listed and counted all the same). Returns the new count. */
static size_t keep_first_possible(Manager *m, StoredCode *codes, size_t n) {
        uint64_t stored = 0;
        size_t fresh = 0, out = 0;
        bool kept = false;

        for (size_t i = 0; i < n; i++)
                fresh += codes[i].kind == CODE_KIND_POSSIBLE;
        if (fresh == 0)
                return n;
        if (store_count_possible(m->store, &stored) < 0)
                stored = UINT64_MAX; /* unknown: announce none rather than many */
        for (size_t i = 0; i < n; i++) {
                if (codes[i].kind == CODE_KIND_POSSIBLE && (kept || stored != fresh)) {
                        stored_code_done(&codes[i]);
                        continue;
                }
                kept = kept || codes[i].kind == CODE_KIND_POSSIBLE;
                codes[out++] = codes[i];
        }
        return out;
}

/* Commits one batch. Returns 0 when stored (or dropped on purpose), -EAGAIN when the store is
 * unusable for now: the caller keeps the batch for a retry. */
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

        if (slot && slot->commit_failed)
                return 0; /* replayed from the stored cursor when the account starts again */
        r = store_commit(m->store, &b, &new_codes, &n_new);
        if (r < 0 && store_error_is_transient(r)) {
                if (m->n_deferred == 0)
                        log_full_errno_ctx(LOG_WARNING, r, &ctx, "cannot store results yet (%s), retrying",
                                           store_last_error(m->store));
                if (slot)
                        slot_set_error(slot, r == -EBUSY ? SLOT_ERROR_STORE_BUSY : SLOT_ERROR_STORE_FULL,
                                       strdup(r == -EBUSY ? "database locked by another program, retrying"
                                                          : "disk full, retrying"));
                return -EAGAIN;
        }
        if (r < 0) {
                /* Memory and disk now disagree: stop this worker rather than skip mail. */
                log_full_errno_ctx(LOG_ERR, r, &ctx, "cannot store results (%s), stopping this account",
                                   store_last_error(m->store));
                m->failed = true;
                if (slot && slot->worker) {
                        slot->commit_failed = true;
                        slot_set_error(slot, SLOT_ERROR_STORE_FAILED,
                                       strdup("cannot write to the database"));
                        worker_stop(slot->worker);
                        notify_trouble(m, slot, r, slot->error);
                }
                return 0;
        }
        if (slot && slot->error && !slot->commit_failed && m->n_deferred == 0)
                slot_set_error(slot, SLOT_ERROR_NONE, NULL);
        for (size_t i = 0; slot && !slot->found_specific && i < e->n_messages; i++)
                for (size_t k = 0; k < e->messages[i]->n_codes; k++)
                        if (e->messages[i]->codes[k].kind == CODE_KIND_SPECIFIC && e->messages[i]->codes[k].trusted) {
                                slot->found_specific = true;
                                update_status(m);
                                break;
                        }
        n_new = keep_first_possible(m, new_codes, n_new);
        for (size_t i = 0; i < n_new; i++) {
                LogContext where = ctx;

                batch_find_code(e, &new_codes[i], &where);
                log_full_errno_ctx(LOG_NOTICE, 0, &where, "new %s%s code stored (id %" PRIi64 ")",
                                   new_codes[i].trusted ? "" : "untrusted ",
                                   code_kind_to_string(new_codes[i].kind), new_codes[i].id);
                bus_emit_code_found(m->api, &new_codes[i]);
        }
        if (slot && !slot->scanned_once)
                r = code_list_take(&slot->held, new_codes, n_new);
        else
                r = code_list_take(&m->pending, new_codes, n_new);
        if (r < 0)
                log_oom(); /* the codes are stored; only their notification is lost */
        return 0;
}

static int on_retry_timer(sd_event_source *source, uint64_t usec, void *userdata);

static void arm_retry(Manager *m) {
        m->retry_delay = m->retry_delay == 0 ? STORE_RETRY_MIN_USEC : MIN(m->retry_delay * 2, STORE_RETRY_MAX_USEC);
        if (m->retry_timer) {
                (void) sd_event_source_set_time_relative(m->retry_timer, m->retry_delay);
                (void) sd_event_source_set_enabled(m->retry_timer, SD_EVENT_ONESHOT);
        } else if (sd_event_add_time_relative(m->event, &m->retry_timer, CLOCK_MONOTONIC, m->retry_delay, 0,
                                              on_retry_timer, m) < 0)
                log_warning("Cannot arm the store retry timer; delayed results wait for the next batch.");
}

/* Keeps e (owned) for a retry; later batches queue up behind it, so that no cursor ever moves
 * past a batch that is not stored. */
static void defer_batch(Manager *m, WorkerEvent *e) {
        WorkerEvent **l = reallocarray(m->deferred, m->n_deferred + 1, sizeof(WorkerEvent *));

        if (!l) {
                /* Dropping it is safe: its cursor did not move, the next pass reads it again. */
                (void) log_oom();
                worker_event_free(e);
                return;
        }
        m->deferred = l;
        l[m->n_deferred++] = e;
        if (!m->retry_timer || sd_event_source_get_enabled(m->retry_timer, NULL) <= 0)
                arm_retry(m);
}

/* Stores the deferred batches in order; stops at the first that still cannot be stored.
 * Returns true when none is left. */
static bool retry_deferred(Manager *m) {
        size_t done = 0;

        while (done < m->n_deferred) {
                WorkerEvent *e = m->deferred[done];
                if (handle_batch(m, slot_of(m, e->worker), e) == -EAGAIN)
                        break;
                worker_event_free(e);
                done++;
        }
        memmove(m->deferred, m->deferred + done, (m->n_deferred - done) * sizeof(WorkerEvent *));
        m->n_deferred -= done;
        if (m->n_deferred > 0)
                return false;
        if (done > 0)
                log_info("The database is usable again: %zu delayed batch(es) stored.", done);
        m->retry_delay = 0;
        /* Whatever made the store wait (a lock, a full disk) is over for every account. */
        for (size_t i = 0; i < m->n_slots; i++) {
                AccountSlot *s = m->slots[i];
                if (!s->commit_failed &&
                    (s->error_cause == SLOT_ERROR_STORE_BUSY || s->error_cause == SLOT_ERROR_STORE_FULL))
                        slot_set_error(s, SLOT_ERROR_NONE, NULL);
        }
        return true;
}

/* Drops what could not be stored: nothing is lost, the cursors did not move past it. */
static void drop_deferred(Manager *m) {
        if (m->n_deferred == 0)
                return;
        log_warning("%zu batch(es) could not be stored; their mail is read again at the next start.",
                    m->n_deferred);
        for (size_t i = 0; i < m->n_deferred; i++)
                worker_event_free(m->deferred[i]);
        m->n_deferred = 0;
        m->failed = true;
}

static bool all_exited(const Manager *m);

static int on_retry_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) source;
        (void) usec;
        if (!retry_deferred(m)) {
                if (m->once && all_exited(m) && m->retry_delay >= STORE_RETRY_ONCE_USEC)
                        drop_deferred(m);
                else
                        arm_retry(m);
        }
        for (size_t i = 0; i < m->n_slots; i++)
                publish_state(m, m->slots[i]);
        if (!m->once)
                flush_notifications(m);
        update_status(m);
        check_done(m);
        return 0;
}

static void handle_exit(Manager *m, AccountSlot *s, WorkerEvent *e) {
        /* Deferred batches outlive their worker: they must not point at it. */
        for (size_t i = 0; i < m->n_deferred; i++)
                if (m->deferred[i]->worker == s->worker)
                        m->deferred[i]->worker = NULL;
        s->state = e->state;
        if (e->result < 0 && !m->stopping && !s->restart_with && !s->removed)
                m->failed = true;
        s->worker = worker_free(s->worker);
        s->stuck = false;
        /* Whatever it found is stored: show it. */
        if (code_list_move(&m->pending, &s->held) < 0)
                log_oom();

        if (s->removed) {
                for (size_t i = 0; i < m->n_slots; i++)
                        if (m->slots[i] == s) {
                                memmove(m->slots + i, m->slots + i + 1, (m->n_slots - i - 1) * sizeof(AccountSlot *));
                                m->n_slots--;
                                break;
                        }
                slot_free(s);
                return;
        }
        if (s->restart_with && !m->stopping) {
                slot_switch_settings(s);
                (void) slot_start(m, s);
        }
        publish_state(m, s);
}

/* A password_command that fails keeps the account waiting (state "password"), retried with the
 * reconnection backoff; past PASSWORD_NOTIFY_AFTER_USEC the user is told, once per episode. */
static void password_wait(Manager *m, AccountSlot *s, const WorkerEvent *e) {
        if (e->state == WORKER_CONNECTING)
                return;
        if (e->state != WORKER_BACKOFF || e->error_code != -ENOKEY) {
                if (s->password_since > 0 && e->state != WORKER_BACKOFF)
                        log_full_errno_ctx(LOG_INFO, 0, &(LogContext) { .account = s->account->name },
                                           "password_command works again");
                if (e->state != WORKER_BACKOFF)
                        s->password_since = 0, s->password_notified = false;
                return;
        }
        if (s->password_since == 0)
                s->password_since = now_usec(m);
        else if (!s->password_notified && now_usec(m) - s->password_since >= PASSWORD_NOTIFY_AFTER_USEC) {
                s->password_notified = true;
                notify_trouble(m, s, e->error_code, e->error ?: s->error);
        }
}

/* Returns true when it kept e (a deferred batch), false when the caller frees it. */
static bool handle_event(Manager *m, WorkerEvent *e) {
        AccountSlot *s = slot_of(m, e->worker);

        if (s) {
                s->last_event = now_usec(m);
                if (s->stuck) {
                        s->stuck = false;
                        log_full_errno_ctx(LOG_INFO, 0, &(LogContext) { .account = s->account->name },
                                           "making progress again");
                }
        }
        switch (e->type) {
        case WORKER_EVENT_BATCH:
                if (m->n_deferred > 0 || handle_batch(m, s, e) == -EAGAIN) {
                        defer_batch(m, e);
                        if (s)
                                publish_state(m, s);
                        return true;
                }
                break;
        case WORKER_EVENT_STATE:
                if (!s)
                        break;
                if (e->state == WORKER_FAILED && s->state != WORKER_FAILED)
                        notify_trouble(m, s, e->error_code, e->error);
                if (e->state == WORKER_BACKOFF || e->state == WORKER_FAILED)
                        s->error_code = e->error_code;
                else if (e->state != WORKER_CONNECTING)
                        s->error_code = 0;
                password_wait(m, s, e);
                bool pass_ended = e->state == WORKER_IDLE && s->state != WORKER_IDLE;
                s->state = e->state;
                s->progress = e->progress;
                s->total = e->total;
                if (e->error)
                        slot_set_error(s, SLOT_ERROR_WORKER, TAKE_PTR(e->error));
                if (pass_ended)
                        trim_memory(m);
                break;
        case WORKER_EVENT_SCAN_DONE:
                if (!s)
                        break;
                s->scanned_once = true;
                s->last_pass = (int64_t) time(NULL);
                if (!s->commit_failed)
                        slot_set_error(s, SLOT_ERROR_NONE, NULL);
                if (code_list_move(&m->pending, &s->held) < 0)
                        log_oom();
                break;
        case WORKER_EVENT_EXIT:
                if (s)
                        handle_exit(m, s, e); /* may free s */
                return false;
        }
        if (s)
                publish_state(m, s);
        return false;
}

static void drain_queue(Manager *m) {
        WorkerEvent *e;

        while ((e = queue_pop(m->queue)))
                if (!handle_event(m, e))
                        worker_event_free(e);
        /* --once shows everything in one notification at the end. */
        if (!m->once)
                flush_notifications(m);
        update_status(m);
        arm_stuck_timer(m);
        check_done(m);
}

static int on_queue(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) s;
        (void) fd;
        (void) revents;
        drain_queue(userdata);
        return 0;
}

/* ---- stopping ---- */

static bool all_exited(const Manager *m) {
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i]->worker)
                        return false;
        return true;
}

static int on_exit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) usec;
        if (!all_exited(m))
                log_warning("Some accounts did not stop in time; exiting without them.");
        else if (notifier_pending(m->notifier) > 0)
                log_warning("The notification server did not answer in time; exiting.");
        return sd_event_exit(m->event, exit_code(m));
}

static void add_exit_timer(Manager *m, uint64_t delay) {
        if (!m->exit_timer &&
            sd_event_add_time_relative(m->event, &m->exit_timer, CLOCK_MONOTONIC, delay, 0, on_exit_timer, m) < 0)
                (void) sd_event_exit(m->event, exit_code(m));
}

/* Leaves the loop once every worker is gone and the notifications were answered (bounded). */
static void check_done(Manager *m) {
        if ((!m->once && !m->stopping) || !all_exited(m))
                return;
        if (m->n_deferred > 0) {
                if (m->once && !m->stopping)
                        return; /* the retry timer decides */
                if (!retry_deferred(m))
                        drop_deferred(m);
        }
        flush_notifications(m);
        if (notifier_pending(m->notifier) == 0)
                (void) sd_event_exit(m->event, exit_code(m));
        else
                add_exit_timer(m, NOTIFY_FLUSH_TIMEOUT_USEC);
}

static int on_post(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        (void) s;
        /* A notification reply may have been the last thing we waited for. */
        if ((m->once || m->stopping) && all_exited(m) && m->pending.n == 0 && m->n_deferred == 0 &&
            notifier_pending(m->notifier) == 0)
                (void) sd_event_exit(m->event, exit_code(m));
        return 0;
}

static void begin_stop(Manager *m);

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) s;
        if (m->stopping)
                return 0;
        log_info("Received SIG%s, stopping.", sigabbrev_np((int) si->ssi_signo));
        begin_stop(m);
        return 0;
}

/* sd-bus does not reconnect: after a restart of the session bus there would be no D-Bus API
 * and no notification until alcoded is restarted. Stop cleanly and exit 1, so that systemd
 * (Restart=on-failure) starts it again on the new bus; what was committed is stored, the
 * rest is read again from the cursors. */
static int on_bus_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        (void) msg;
        (void) error;
        if (m->stopping)
                return 0;
        log_warning("The session bus went away; stopping, to be started again on the new one.");
        m->bus_lost = true;
        begin_stop(m);
        return 0;
}

static void begin_stop(Manager *m) {
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping...");
        m->stopping = true;
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i]->worker)
                        worker_stop(m->slots[i]->worker);
        add_exit_timer(m, STOP_TIMEOUT_USEC);
        check_done(m);
}

/* ---- reload ---- */

typedef struct ReloadCounts {
        unsigned started, restarted, stopped, kept;
} ReloadCounts;

/* The running configuration stays: says so in the log and, since `systemctl --user reload`
 * succeeds either way, in a notification where the user looks. */
static void reload_refused(Manager *m, const char *first_error) {
        _cleanup_free_ char *body = NULL;

        log_error("The new configuration has errors (see above); keeping the running one.");
        if (m->settings->config->notify &&
            asprintf(&body, "%s\n%s", strempty(first_error),
                     _("alcoded goes on with the configuration it had. 'alcode check' lists "
                       "every error.")) >= 0)
                (void) notifier_show_trouble(m->notifier, "x-alcode.config.error",
                                             _("alcode: the new configuration has errors"), body);
}

/* A slot for an account that new adds. */
static AccountSlot *reload_slot_new(Settings *new, const Account *a) {
#ifdef ALCODE_TEST_HOOKS
        /* =N: the first N of these run out of memory. */
        static int made = 0;
        const char *e = getenv("ALCODE_TEST_RELOAD_ENOMEM");
        if (e && ++made <= atoi(e))
                return NULL;
#endif
        return slot_new(new, a);
}

/* After RELOADING=1, every way out says READY=1, or systemd waits for it (and `systemctl
 * reload` with it) until it times out; STATUS= says the running configuration stays. */
static void reload_failed(Manager *m) {
        m->reload_failed = true;
        update_status(m);
        (void) sd_notify(0, "READY=1");
}

/* Fills slots (room for every account of new and every current slot) with the slots of new's
 * accounts, in its order: a running unchanged one is kept, a changed one is stopped to start
 * again with new (all: every one), a new one is made. -ENOMEM (logged) when a slot cannot be
 * made: then nothing has changed, since the slots are all made before any worker is stopped. */
static int reload_plan_accounts(Manager *m, Settings *new, bool all, AccountSlot **slots, size_t *n,
                                ReloadCounts *counts) {
        for (size_t i = 0; i < new->config->n_accounts; i++) {
                const Account *a = &new->config->accounts[i];
                AccountSlot *s = slot_find(m, a->name) ?: reload_slot_new(new, a);

                if (!s) {
                        for (size_t k = 0; k < *n; k++)
                                if (slots[k]->settings == new)
                                        slot_free(slots[k]);
                        *n = 0;
                        return log_oom();
                }
                slots[(*n)++] = s;
        }
        for (size_t i = 0; i < *n; i++) {
                AccountSlot *s = slots[i];

                if (s->settings == new) { /* made above */
                        counts->started++;
                        continue;
                }
                s->restart_with = settings_unref(s->restart_with);
                if (s->worker && !all && account_equal(s->account, &new->config->accounts[i]) && !s->commit_failed) {
                        counts->kept++;
                        continue;
                }
                counts->restarted++;
                s->restart_with = settings_ref(new);
                if (s->worker)
                        worker_stop(s->worker);
        }
        return 0;
}

/* Stops the accounts that new does not have: those still stopping join slots after new's. */
static void reload_drop_accounts(Manager *m, const Settings *new, AccountSlot **slots, size_t *n,
                                 ReloadCounts *counts) {
        for (size_t i = 0; i < m->n_slots; i++) {
                AccountSlot *s = m->slots[i];
                if (config_find_account(new->config, s->account->name) && !s->removed)
                        continue;
                if (!s->removed)
                        counts->stopped++;
                s->removed = true;
                s->restart_with = settings_unref(s->restart_with);
                if (s->worker) {
                        worker_stop(s->worker);
                        slots[(*n)++] = s;
                } else
                        slot_free(s);
        }
}

/* Starts what is new, and what was waiting on a worker that is already gone. */
static void reload_start_accounts(Manager *m) {
        for (size_t i = 0; i < m->n_slots; i++) {
                AccountSlot *s = m->slots[i];
                if (s->worker || s->removed)
                        continue;
                if (s->restart_with)
                        slot_switch_settings(s);
                (void) slot_start(m, s);
                publish_state(m, s);
        }
}

/* Returns 0, or -errno with *ret_error (owned, may be NULL) saying what was refused. */
static int manager_reload(Manager *m, char **ret_error) {
        _cleanup_(settings_unrefp) Settings *new = NULL;
        _cleanup_free_ AccountSlot **slots = NULL;
        _cleanup_free_ char *first_error = NULL;
        ReloadCounts counts = {};
        size_t n = 0;
        bool all;
        int r;

        (void) sd_notify(0, "RELOADING=1\nSTATUS=Reloading the configuration...");
        r = settings_load(m->config_path, &new, &first_error);
        if (r < 0) {
                reload_refused(m, first_error);
                reload_failed(m);
                if (ret_error)
                        *ret_error = TAKE_PTR(first_error);
                return r;
        }
        if (!streq(new->config->database, m->settings->config->database))
                log_warning("The database moved to '%s'; alcoded keeps using '%s' until it is restarted.",
                            new->config->database, m->settings->config->database);
        all = !settings_workers_equal(m->settings, new);
        if (all)
                log_info("Rules or employer domains changed: every account starts again.");

        /* The new order is the new config's; removed accounts that are still stopping follow. */
        slots = calloc(new->config->n_accounts + m->n_slots + 1, sizeof(AccountSlot *));
        r = slots ? reload_plan_accounts(m, new, all, slots, &n, &counts) : log_oom();
        if (r < 0) {
                log_error("Cannot reload: out of memory; keeping the running configuration.");
                reload_failed(m);
                return r;
        }
        reload_drop_accounts(m, new, slots, &n, &counts);

        free(m->slots);
        m->slots = TAKE_PTR(slots);
        m->n_slots = n;
        settings_unref(m->settings);
        m->settings = TAKE_PTR(new);
        notifier_set_show_code(m->notifier, m->settings->config->notify_show_code);
        store_set_otp_retention(m->store, (int64_t) m->settings->config->otp_retention_days * 86400);

        reload_start_accounts(m);
        m->reload_failed = false;
        log_info("Configuration reloaded: %u account(s) started, %u restarted, %u stopped, %u unchanged.",
                 counts.started, counts.restarted, counts.stopped, counts.kept);
        bus_emit_accounts_changed(m->api);
        update_status(m);
        arm_stuck_timer(m);
        (void) sd_notify(0, "READY=1");
        return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) s;
        (void) si;
        if (m->stopping || m->once)
                return 0;
        log_info("Received SIGHUP, reloading the configuration.");
        (void) manager_reload(m, NULL);
        return 0;
}

/* ---- suspend/resume ---- */

static int on_prepare_for_sleep(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int sleeping;

        (void) error;
        if (sd_bus_message_read(msg, "b", &sleeping) < 0 || sleeping)
                return 0;
        /* Connections did not survive the sleep: look again now rather than at the next
         * timeout, which could be many minutes away. */
        log_info("Resumed from sleep: checking every account now.");
        for (size_t i = 0; i < m->n_slots; i++)
                if (m->slots[i]->worker)
                        worker_wake(m->slots[i]->worker, false);
        return 0;
}

static void watch_sleep(Manager *m) {
        int r;

        r = sd_bus_open_system(&m->system_bus);
        if (r >= 0)
                r = sd_bus_attach_event(m->system_bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_match_signal_async(m->system_bus, &m->sleep_slot, "org.freedesktop.login1",
                                              "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                              "PrepareForSleep", on_prepare_for_sleep, NULL, m);
        if (r < 0) {
                log_debug_errno(r, "No system bus (%m): not watching for suspend and resume.");
                m->sleep_slot = sd_bus_slot_unref(m->sleep_slot);
                m->system_bus = sd_bus_flush_close_unref(m->system_bus);
        }
}

/* ---- the D-Bus API's handlers (bus.h) ---- */

static size_t api_n_accounts(void *userdata) {
        Manager *m = userdata;
        size_t n = 0;

        for (size_t i = 0; i < m->n_slots; i++)
                n += !m->slots[i]->removed;
        return n;
}

static int api_account_status(void *userdata, size_t i, AccountStatus *ret) {
        Manager *m = userdata;
        AccountSlot *s = NULL;
        int64_t last_sync = 0;
        int r;

        for (size_t k = 0, j = 0; k < m->n_slots && !s; k++)
                if (!m->slots[k]->removed && j++ == i)
                        s = m->slots[k];
        if (!s)
                return -ENOENT;
        *ret = (AccountStatus) { .account = s->account->name, .state = slot_state(s), .error = strempty(s->error) };
        r = store_account_stats(m->store, s->account->name, &ret->messages, &ret->codes, &last_sync);
        if (r < 0)
                return r;
        ret->last_sync = MAX(last_sync, s->last_pass);
        return 0;
}

static int api_reload(void *userdata, char **ret_error) {
        Manager *m = userdata;

        *ret_error = NULL;
        if (m->stopping || m->once)
                return -ESHUTDOWN;
        log_info("Reload requested over D-Bus, reloading the configuration.");
        return manager_reload(m, ret_error);
}

static int api_rescan(void *userdata, const char *account) {
        Manager *m = userdata;
        bool found = false;

        for (size_t i = 0; i < m->n_slots; i++) {
                AccountSlot *s = m->slots[i];

                if (s->removed || (!isempty(account) && !streq(account, s->account->name)))
                        continue;
                found = true;
                log_full_errno_ctx(LOG_INFO, 0, &(LogContext) { .account = s->account->name },
                                   "rescan requested");
                if (!s->worker && slot_start(m, s) < 0)
                        continue;
                /* A rescan is a backfill: what it finds is shown in one notification. */
                s->scanned_once = false;
                worker_wake(s->worker, true);
                publish_state(m, s);
        }
        if (!found)
                return -ENOENT;
        update_status(m);
        arm_stuck_timer(m);
        return 0;
}

static Store *api_store(void *userdata) {
        Manager *m = userdata;

        return m->store;
}

static const BusHandlers api_handlers = {
        .n_accounts = api_n_accounts,
        .account_status = api_account_status,
        .rescan = api_rescan,
        .reload = api_reload,
        .store = api_store,
};

/* ---- public ---- */

int manager_new(const char *config_path, Settings *settings, bool once, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        *m = (Manager) { .settings = settings_ref(settings), .once = once, .stuck_after = STUCK_AFTER_USEC };
        if (config_path && !(m->config_path = strdup(config_path)))
                return -ENOMEM;
#ifdef ALCODE_TEST_HOOKS
        const char *e = getenv("ALCODE_TEST_STUCK_MSEC");
        if (e)
                m->stuck_after = strtoull(e, NULL, 10) * USEC_PER_MSEC;
#endif
        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        r = queue_new(&m->queue);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_slots; i++)
                slot_free(m->slots[i]);
        free(m->slots);
        /* Events of workers that ended after the loop are dropped here: their cursors did not
         * move, so the next start reads those messages again. */
        queue_free(m->queue, worker_event_free);
        for (size_t i = 0; i < m->n_deferred; i++)
                worker_event_free(m->deferred[i]);
        free(m->deferred);
        sd_event_source_unref(m->retry_timer);
        code_list_done(&m->pending);
        bus_free(m->api);
        notifier_free(m->notifier);
        sd_event_source_unref(m->queue_source);
        sd_event_source_unref(m->stuck_timer);
        sd_event_source_unref(m->exit_timer);
        sd_bus_slot_unref(m->sleep_slot);
        sd_bus_flush_close_unref(m->system_bus);
        sd_bus_flush_close_unref(m->bus);
        store_close(m->store);
        sd_event_unref(m->event);
        settings_unref(m->settings);
        free(m->config_path);
        free(m);
        return NULL;
}

static int open_session_bus(Manager *m) {
        int r;

        r = sd_bus_open_user_with_description(&m->bus, "alcoded");
        if (r >= 0)
                r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                log_warning_errno(r, "No session bus (%m): no desktop notifications and no D-Bus API; "
                                     "codes are still stored.");
                m->bus = sd_bus_flush_close_unref(m->bus);
                return 0;
        }
        if (m->once)
                return 0;
        r = sd_bus_match_signal(m->bus, NULL, NULL, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                "Disconnected", on_bus_disconnected, m);
        if (r < 0)
                log_warning_errno(r, "Cannot watch the session bus connection, ignoring: %m");
        r = bus_new(m->bus, &api_handlers, m, &m->api);
        if (r == -EEXIST)
                return log_error_errno(r, "Another alcoded already runs on this session bus ('%s' is taken).",
                                       BUS_NAME);
        if (r < 0)
                log_warning_errno(r, "Cannot publish the D-Bus API, ignoring: %m");
        return 0;
}

/* Whether the database, or the first folder of its path that exists, is on a read-only mount. */
static bool database_read_only(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        char *slash;

        while (p && *p) {
                if (access(p, W_OK) < 0 && errno == EROFS)
                        return true;
                if (access(p, F_OK) == 0)
                        return false;
                slash = strrchr(p, '/');
                if (!slash)
                        return false;
                *slash = 0;
        }
        return false;
}

int manager_start(Manager *m) {
        _cleanup_free_ char *error = NULL;
        const Config *c = m->settings->config;
        int r;

        r = store_open(c->database, STORE_READ_WRITE, &m->store, &error);
        if (r == -ELOOP)
                return log_error_errno(r, "Cannot open the database '%s': it is a symbolic link; set database = "
                                          "to the file it points to", c->database);
        if (r < 0 && database_read_only(c->database))
                /* The unit's sandbox makes all but ~/.local/share/alcode read-only. */
                return log_error_errno(r, "Cannot open the database '%s': %s. The folder is read-only here: under "
                                          "systemd, open it to alcoded with 'systemctl --user edit alcoded' and the "
                                          "lines [Service] ReadWritePaths=-FOLDER (see alcoded(8), SANDBOX).",
                                       c->database, error ?: strerror(-r));
        if (r < 0)
                return log_error_errno(r, "Cannot open the database '%s': %s", c->database, error ?: strerror(-r));
        store_set_otp_retention(m->store, (int64_t) c->otp_retention_days * 86400);
        store_set_busy_timeout(m->store, STORE_BUSY_MSEC);

        r = open_session_bus(m);
        if (r < 0)
                return r;
        r = notifier_new(m->bus, c->notify_show_code, &m->notifier);
        if (r < 0)
                return log_oom();
        if (!m->once)
                watch_sleep(m);

        r = sd_event_add_io(m->event, &m->queue_source, queue_fd(m->queue), EPOLLIN, on_queue, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the worker queue: %m");
        r = sd_event_add_post(m->event, NULL, on_post, m);
        if (r < 0)
                return log_error_errno(r, "Cannot add a post handler: %m");
        r = sd_event_add_time(m->event, &m->stuck_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_stuck_timer, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGTERM, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_stop_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_hup, m);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the event loop: %m");
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Cannot enable the watchdog, ignoring: %m");

        m->slots = calloc(c->n_accounts + 1, sizeof(AccountSlot *));
        if (!m->slots)
                return log_oom();
        for (size_t i = 0; i < c->n_accounts; i++) {
                AccountSlot *s = slot_new(m->settings, &c->accounts[i]);
                if (!s)
                        return log_oom();
                m->slots[m->n_slots++] = s;
                r = slot_start(m, s);
                if (r < 0)
                        return r;
                publish_state(m, s);
        }
        if (m->n_slots == 0)
                log_notice("No account configured in %s: nothing to watch.", c->path ?: "the default config");
        update_status(m);
        arm_stuck_timer(m);
        (void) sd_notify(0, "READY=1");
        return 0;
}

int manager_run(Manager *m) {
        int r;

        if (m->once && m->n_slots == 0)
                return 0;
        r = sd_event_loop(m->event);
        if (r < 0) {
                log_error_errno(r, "Event loop failed: %m");
                r = 1;
        }
        /* What arrived after the loop ended is committed too. */
        m->stopping = true;
        drain_queue(m);
        m->stuck_at_exit = !all_exited(m);
        if (m->stuck_at_exit)
                /* Everything committed is on disk; the store is ours alone. */
                m->store = store_close(m->store);
        return r;
}

bool manager_stuck(const Manager *m) {
        return m->stuck_at_exit;
}
