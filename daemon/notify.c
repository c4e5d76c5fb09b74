/* Notifications are sent with sd_bus_call_async(); replies and the ActionInvoked /
 * NotificationClosed signals arrive on the main loop. Signals are broadcast to every client,
 * so we act only on ids we created. Actions: "default" replaces the notification with the
 * code's provenance; "copy" (trusted codes only) pipes the code into wl-copy or xclip.
 *
 * A notification that no server took (none runs yet: the daemon starts with the user manager,
 * before the desktop) is held, the last NOTIFY_HELD of them, and sent again when a server
 * takes the name org.freedesktop.Notifications.
 *
 * Copy never blocks the loop: the session's display comes from the user manager's environment
 * at the time of the click (org.freedesktop.systemd1.Manager.Environment, which the desktop
 * fills with `systemctl --user import-environment` or `dbus-update-activation-environment
 * --systemd`), not from ours at start, which predates the session; the helper is started with
 * a clean signal mask, fed through a pipe that cannot block (a code is far below a pipe's
 * buffer), and watched with an sd-event child source; its exit status decides whether the
 * copy worked, and a failed copy is logged and shown. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "i18n.h"
#include "log.h"
#include "notify.h"
#include "parse-util.h"
#include "spawn-util.h"
#include "strbuf.h"
#include "strv.h"
#include "text.h"

#define NOTIFY_REMEMBERED 32
#define NOTIFY_HELD 8
#define COPY_TIMEOUT_USEC (10 * 1000 * 1000ULL)
#define CATEGORY_CODE "email.arrived"

extern char **environ;

typedef struct Shown {
        uint32_t id;
        char *code;    /* for "copy"; NULL when grouped or untrusted */
        char *details; /* for "default" */
        char *summary;
} Shown;

typedef struct Call Call;
typedef struct CopyJob CopyJob;

struct Notifier {
        sd_bus *bus;
        bool show_code;
        unsigned pending;
        sd_bus_slot *action_slot, *closed_slot, *owner_slot;
        Shown shown[NOTIFY_REMEMBERED];
        size_t next;
        bool warned_no_server;
        Call *held[NOTIFY_HELD];  /* oldest first */
        size_t n_held;
        CopyJob *copies;          /* running copies */
};

/* One Notify call, kept until it is answered (and held while no server takes it). */
struct Call {
        Notifier *n;
        uint32_t replaces;
        char *summary;
        char *body;
        const char *category;
        uint8_t urgency;
        bool copy_action;
        char *code;
        char *details;
};

/* A copy to the clipboard: the session's environment is asked for, then each usable tool is
 * tried in turn until one exits 0. */
struct CopyJob {
        Notifier *n;
        CopyJob *next;
        char *code;
        char **env;               /* the environment the helper gets */
        sd_bus_slot *env_call;
        size_t tool;              /* the next tool to try */
        const char *running;      /* the tool running now, or NULL */
        pid_t pid;
        int err_fd;               /* the read end of the helper's stderr */
        sd_event_source *child, *timer;
        char *last_error;         /* what the last tool said went wrong */
        bool timed_out;           /* the running tool was killed at COPY_TIMEOUT_USEC */
};

static const char *const copy_tools[][4] = {
        { "WAYLAND_DISPLAY", "wl-copy", NULL },
        { "DISPLAY", "xclip", "-selection", "clipboard" },
};

static void shown_done(Shown *s) {
        erase_and_free(s->code);
        free(s->details);
        free(s->summary);
        *s = (Shown) {};
}

static void call_free(Call *c) {
        if (!c)
                return;
        erase_and_free(c->code);
        free(c->details);
        free(c->summary);
        free(c->body);
        free(c);
}

static const char *kind_summary(CodeKind k) {
        switch (k) {
        case CODE_KIND_SPECIFIC: return _("Action Logement: specific code");
        case CODE_KIND_COMPANY: return _("Action Logement: company code (your employer's)");
        case CODE_KIND_ACCESS: return _("Action Logement: access code from your employer");
        case CODE_KIND_OTP: return _("Action Logement: login code");
        case CODE_KIND_REQUEST: return _("Action Logement: request number");
        case CODE_KIND_FILE: return _("Action Logement: file number");
        case CODE_KIND_POSSIBLE: return _("Action Logement: a mail may hold a code no rule read");
        default: return _("Action Logement: code");
        }
}

/* Servers that support body markup interpret &, < and >: escape them. Text from mail or a
 * server (a subject, a folder, an error) must not drive a terminal a notification daemon logs
 * to, reorder what is shown (U+202E), or start a forged line: what text_control_len() finds
 * becomes '?', as in the logs; keep_newlines keeps the '\n' of a body we composed. */
static int put_escaped_full(StrBuf *b, const char *s, bool keep_newlines) {
        size_t n = s ? strlen(s) : 0;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0;) {
                size_t bad = keep_newlines && s[i] == '\n' ? 0 : text_control_len((const unsigned char *) s + i, n - i);

                if (bad > 0) {
                        r = strbuf_putc(b, '?');
                        i += bad;
                        continue;
                }
                r = s[i] == '&' ? strbuf_puts(b, "&amp;") : s[i] == '<' ? strbuf_puts(b, "&lt;")
                  : s[i] == '>' ? strbuf_puts(b, "&gt;") : strbuf_putc(b, s[i]);
                i++;
        }
        return r;
}

static int put_escaped(StrBuf *b, const char *s) {
        return put_escaped_full(b, s, false);
}

/* In the user's time zone, not the sender's: the user compares it with their own clock. */
static void format_date(int64_t t, char *buf, size_t size) {
        time_t local = (time_t) t;
        struct tm tm;

        if (t <= 0 || !localtime_r(&local, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
                (void) snprintf(buf, size, "?");
}

static const char *masked(const Notifier *n, const StoredCode *c) {
        if (c->kind == CODE_KIND_POSSIBLE)
                return _("(no code read: see 'alcode list')");
        return n->show_code ? c->display : "••••••••";
}

static int send_call(Notifier *n, Call *c);

static int notify_new_call(Notifier *n, const char *summary, const char *body, const char *category,
                           uint8_t urgency, Call **ret) {
        Call *c = calloc(1, sizeof(Call));

        if (!c)
                return -ENOMEM;
        *c = (Call) { .n = n, .category = category, .urgency = urgency };
        if (!(c->summary = strdup(summary)) || !(c->body = strdup(body))) {
                call_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* ---- copy ---- */

static CopyJob *copy_free(CopyJob *j) {
        if (!j)
                return NULL;
        sd_bus_slot_unref(j->env_call);
        sd_event_source_disable_unref(j->child);
        sd_event_source_disable_unref(j->timer);
        safe_close(j->err_fd);
        erase_and_free(j->code);
        strv_free(j->env);
        free(j->last_error);
        free(j);
        return NULL;
}

static void copy_finish(CopyJob *j, bool ok) {
        Notifier *n = j->n;

        for (CopyJob **p = &n->copies; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        if (!ok) {
                _cleanup_free_ char *body = NULL;
                Call *c;
                log_warning("Cannot copy the code to the clipboard: %s.",
                            j->last_error ?: "neither wl-copy (Wayland) nor xclip (X11) is usable: no "
                                             "WAYLAND_DISPLAY or DISPLAY in the session's environment, "
                                             "or the tool is not installed");
                if (asprintf(&body, "%s\n%s", j->last_error ?: _("Neither wl-copy (Wayland) nor xclip (X11) is usable."),
                             _("Copy it from 'alcode latest' or 'alcode list'.")) >= 0 &&
                    notify_new_call(n, _("alcode: the code was not copied"), body, "x-alcode.copy.error", 1, &c) >= 0)
                        (void) send_call(n, c);
        }
        copy_free(j);
}

static int copy_try_next(CopyJob *j);

/* What the helper wrote on stderr, first line, printable ASCII only: it names the problem
 * ("Can't open display"). Read without blocking: a helper that forked keeps the pipe open. */
static void copy_read_error(CopyJob *j, const char *how) {
        char buf[256] = "";
        ssize_t k = j->err_fd >= 0 ? read(j->err_fd, buf, sizeof buf - 1) : -1;

        if (k > 0) {
                buf[k] = 0;
                buf[strcspn(buf, "\r\n")] = 0;
                for (char *p = buf; *p; p++)
                        if (*p < 0x20 || *p > 0x7e)
                                *p = '?';
        }
        free(j->last_error);
        if (asprintf(&j->last_error, "%s %s%s%s%s", j->running, how, k > 0 && *buf ? " (" : "", k > 0 ? buf : "",
                     k > 0 && *buf ? ")" : "") < 0)
                j->last_error = NULL;
}

static int on_copy_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CopyJob *j = userdata;
        char how[64];

        (void) s;
        j->child = sd_event_source_disable_unref(j->child);
        j->timer = sd_event_source_disable_unref(j->timer);
        if (si->si_code == CLD_EXITED && si->si_status == 0) {
                log_info("Copied a code to the clipboard with %s.", j->running);
                copy_finish(j, true);
                return 0;
        }
        if (!j->timed_out)
                copy_read_error(j, spawn_status_to_string(si->si_code == CLD_EXITED ? W_EXITCODE(si->si_status, 0)
                                                                                     : si->si_status,
                                                          how, sizeof how));
        j->timed_out = false;
        j->err_fd = safe_close(j->err_fd);
        if (copy_try_next(j) < 0)
                copy_finish(j, false);
        return 0;
}

static int on_copy_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        CopyJob *j = userdata;

        (void) s, (void) usec;
        /* It never forked into the background: end it, and whatever it started. */
        (void) kill(-j->pid, SIGKILL);
        copy_read_error(j, "did not finish within 10 s");
        j->timed_out = true;
        j->err_fd = safe_close(j->err_fd);
        /* The child source reaps it and moves on. */
        j->timer = sd_event_source_disable_unref(j->timer);
        return 0;
}

/* Starts the next usable tool. -ENOENT when none is left. */
static int copy_try_next(CopyJob *j) {
        sd_event *e = sd_bus_get_event(j->n->bus);

        for (; j->tool < ELEMENTSOF(copy_tools); j->tool++) {
                const char *const *t = copy_tools[j->tool];
                char *argv[4] = { (char *) t[1], (char *) t[2], (char *) t[3], NULL };
                _cleanup_close_ int in_r = -EBADF, in_w = -EBADF, err_w = -EBADF;
                int p[2], r;

                if (isempty(strv_env_get(j->env, t[0])))
                        continue;
                if (pipe2(p, O_CLOEXEC) < 0)
                        return -errno;
                in_r = p[0], in_w = p[1];
                if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                        return -errno;
                j->err_fd = safe_close(j->err_fd);
                j->err_fd = p[0], err_w = p[1];
                r = spawn_start(&(SpawnOptions) { .argv = argv, .envp = j->env, .stdin_fd = in_r, .stdout_fd = SPAWN_NULL,
                                                  .stderr_fd = err_w }, &j->pid);
                if (r < 0) {
                        free(j->last_error);
                        if (asprintf(&j->last_error, "cannot run %s: %s", t[1], strerror(-r)) < 0)
                                j->last_error = NULL;
                        continue;
                }
                j->running = t[1];
                j->tool++;
                /* A code is a few bytes, a pipe holds 64 KiB: this write never blocks. */
                (void) !write(in_w, j->code, strlen(j->code));
                in_w = safe_close(in_w);
                r = sd_event_add_child(e, &j->child, j->pid, WEXITED, on_copy_exit, j);
                if (r >= 0)
                        r = sd_event_add_time_relative(e, &j->timer, CLOCK_MONOTONIC, COPY_TIMEOUT_USEC, 0,
                                                       on_copy_timeout, j);
                if (r < 0) {
                        log_warning_errno(r, "Cannot watch %s: %m", t[1]);
                        return r;
                }
                return 0;
        }
        return -ENOENT;
}

/* Overrides env's display variables with the session's (from the user manager). */
static int env_merge_session(char ***env, char **session) {
        static const char *const names[] = { "WAYLAND_DISPLAY", "DISPLAY", "XAUTHORITY", "XDG_SESSION_TYPE" };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const char *v = strv_env_get(session, names[i]);
                if (!v)
                        continue;
                r = strv_env_set(env, names[i], v);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_session_env(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        CopyJob *j = userdata;
        _cleanup_strv_free_ char **session = NULL;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int r;

        (void) ret_error;
        j->env_call = sd_bus_slot_unref(j->env_call);
        if (e)
                /* No systemd user manager on this bus (a plain dbus-daemon): ours is all there is. */
                log_debug("No session environment from the user manager (%s); using alcoded's own.",
                          e->message ?: e->name);
        else {
                r = sd_bus_message_enter_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_read_strv(m, &session);
                if (r >= 0)
                        r = env_merge_session(&j->env, session);
                if (r < 0)
                        log_debug_errno(r, "Cannot read the session environment, using alcoded's own: %m");
        }
        if (copy_try_next(j) < 0)
                copy_finish(j, false);
        return 0;
}

static void copy_start(Notifier *n, const char *code) {
        CopyJob *j = calloc(1, sizeof(CopyJob));
        int r;

        if (!j || !(j->code = strdup(code)) || !(j->env = strv_copy(environ))) {
                copy_free(j);
                (void) log_oom();
                return;
        }
        j->n = n;
        j->err_fd = -EBADF;
        j->next = n->copies;
        n->copies = j;
        r = sd_bus_call_method_async(n->bus, &j->env_call, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.DBus.Properties", "Get", on_session_env, j, "ss",
                                     "org.freedesktop.systemd1.Manager", "Environment");
        if (r < 0 && copy_try_next(j) < 0)
                copy_finish(j, false);
}

static int on_action(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Notifier *n = userdata;
        const char *key;
        uint32_t id;

        (void) error;
        if (sd_bus_message_read(m, "us", &id, &key) < 0)
                return 0;
        for (size_t i = 0; i < NOTIFY_REMEMBERED; i++) {
                Shown *s = &n->shown[i];
                if (s->id != id || id == 0)
                        continue;
                if (streq(key, "copy") && s->code)
                        copy_start(n, s->code);
                else if (streq(key, "default") && s->details) {
                        Call *c;
                        if (notify_new_call(n, s->summary ?: "alcode", s->details, CATEGORY_CODE, 1, &c) >= 0) {
                                c->replaces = id;
                                (void) send_call(n, c);
                        }
                }
                return 0;
        }
        return 0;
}

static int on_closed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Notifier *n = userdata;
        uint32_t id, reason;

        (void) error;
        if (sd_bus_message_read(m, "uu", &id, &reason) < 0)
                return 0;
        for (size_t i = 0; i < NOTIFY_REMEMBERED; i++)
                if (n->shown[i].id == id && id != 0)
                        shown_done(&n->shown[i]);
        return 0;
}

/* A notification server took the name: show what waited for one. */
static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Notifier *n = userdata;
        const char *name, *old_owner, *new_owner;
        Call *held[NOTIFY_HELD];
        size_t k;

        (void) error;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || isempty(new_owner) ||
            n->n_held == 0)
                return 0;
        log_info("A notification server started: showing %zu notification(s) that waited for one.", n->n_held);
        k = n->n_held;
        memcpy(held, n->held, k * sizeof(Call *));
        n->n_held = 0;
        for (size_t i = 0; i < k; i++)
                (void) send_call(n, held[i]);
        return 0;
}

int notifier_new(sd_bus *bus, bool show_code, Notifier **ret) {
        Notifier *n = calloc(1, sizeof(Notifier));
        int r;

        if (!n)
                return -ENOMEM;
        n->show_code = show_code;
        if (bus) {
                n->bus = sd_bus_ref(bus);
                /* Subscribe before the first Notify, or an early click is lost. */
                r = sd_bus_match_signal_async(bus, &n->action_slot, "org.freedesktop.Notifications",
                                              "/org/freedesktop/Notifications", "org.freedesktop.Notifications",
                                              "ActionInvoked", on_action, NULL, n);
                if (r >= 0)
                        r = sd_bus_match_signal_async(bus, &n->closed_slot, "org.freedesktop.Notifications",
                                                      "/org/freedesktop/Notifications",
                                                      "org.freedesktop.Notifications", "NotificationClosed",
                                                      on_closed, NULL, n);
                if (r >= 0)
                        r = sd_bus_add_match_async(bus, &n->owner_slot,
                                                   "type='signal',sender='org.freedesktop.DBus',"
                                                   "path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',"
                                                   "member='NameOwnerChanged',arg0='org.freedesktop.Notifications'",
                                                   on_owner_changed, NULL, n);
                if (r < 0)
                        log_warning_errno(r, "Cannot watch notification actions, ignoring: %m");
        }
        *ret = n;
        return 0;
}

Notifier *notifier_free(Notifier *n) {
        if (!n)
                return NULL;
        sd_bus_slot_unref(n->action_slot);
        sd_bus_slot_unref(n->closed_slot);
        sd_bus_slot_unref(n->owner_slot);
        /* A helper still running is left to finish: it is in our cgroup, which systemd ends. */
        while (n->copies) {
                CopyJob *j = n->copies;
                n->copies = j->next;
                copy_free(j);
        }
        for (size_t i = 0; i < n->n_held; i++)
                call_free(n->held[i]);
        sd_bus_unref(n->bus);
        for (size_t i = 0; i < NOTIFY_REMEMBERED; i++)
                shown_done(&n->shown[i]);
        free(n);
        return NULL;
}

void notifier_set_show_code(Notifier *n, bool show_code) {
        if (n)
                n->show_code = show_code;
}

unsigned notifier_pending(const Notifier *n) {
        return n ? n->pending : 0;
}

/* Keeps c until a server takes the name; the oldest goes when too many wait. */
static void hold(Notifier *n, Call *c) {
        if (n->n_held == NOTIFY_HELD) {
                call_free(n->held[0]);
                memmove(n->held, n->held + 1, (NOTIFY_HELD - 1) * sizeof(Call *));
                n->n_held--;
        }
        n->held[n->n_held++] = c;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        Notifier *n = c->n;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        uint32_t id = 0;

        (void) ret_error;
        n->pending--;
        if (e) {
                if (!n->warned_no_server)
                        log_warning("Cannot show a desktop notification (%s); it is shown when a notification "
                                    "server starts, and the code is stored: see 'alcode list'.",
                                    e->message ?: e->name);
                n->warned_no_server = true;
                hold(n, c);
                return 0;
        }
        if (sd_bus_message_read(m, "u", &id) >= 0 && id > 0) {
                Shown *s = NULL;
                n->warned_no_server = false;
                for (size_t i = 0; i < NOTIFY_REMEMBERED && !s; i++)
                        if (n->shown[i].id == id)
                                s = &n->shown[i];
                if (!s) {
                        s = &n->shown[n->next];
                        n->next = (n->next + 1) % NOTIFY_REMEMBERED;
                }
                shown_done(s);
                *s = (Shown) { .id = id, .code = TAKE_PTR(c->code), .details = TAKE_PTR(c->details),
                               .summary = TAKE_PTR(c->summary) };
        }
        call_free(c);
        return 0;
}

/* Sends c (taken over). */
static int send_call(Notifier *n, Call *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!n->bus) {
                call_free(c);
                return 0;
        }
        r = sd_bus_message_new_method_call(n->bus, &m, "org.freedesktop.Notifications",
                                           "/org/freedesktop/Notifications",
                                           "org.freedesktop.Notifications", "Notify");
        if (r >= 0)
                r = sd_bus_message_append(m, "susss", "alcode", c->replaces, "dialog-password", c->summary, c->body);
        if (r >= 0)
                r = c->copy_action ? sd_bus_message_append(m, "as", 4, "default", _("Details"), "copy", _("Copy code"))
                                   : sd_bus_message_append(m, "as", 2, "default", _("Details"));
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 3, "desktop-entry", "s", "alcode", "category", "s",
                                          c->category, "urgency", "y", c->urgency);
        if (r >= 0)
                r = sd_bus_message_append(m, "i", (int32_t) -1);
        if (r >= 0) {
                c->n = n;
                r = sd_bus_call_async(n->bus, NULL, m, on_reply, c, 0);
        }
        if (r < 0) {
                call_free(c);
                return log_warning_errno(r, "Cannot send a desktop notification, ignoring: %m");
        }
        n->pending++;
        return 0;
}

/* The "default" action's text: where the code came from. The subject may hold the code itself,
 * so it is left out when codes are masked. */
static int details_text(const StoredCode *c, bool with_subject, char **ret) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(4096);
        char date[64];

        format_date(c->date, date, sizeof date);
        (void) strbuf_printf(&b, "%s: ", _("Account"));
        (void) put_escaped(&b, c->account);
        (void) strbuf_puts(&b, " / ");
        (void) put_escaped(&b, c->folder);
        if (with_subject) {
                (void) strbuf_printf(&b, "\n%s: ", _("Subject"));
                (void) put_escaped(&b, strempty(c->subject));
        }
        (void) strbuf_printf(&b, "\n%s: ", _("From"));
        (void) put_escaped(&b, strna(c->sender));
        (void) strbuf_printf(&b, "\n%s: %s\n%s", _("Date"), date, _("Run 'alcode list' for every code."));
        if (strbuf_ensure(&b) < 0)
                return -ENOMEM;
        *ret = strbuf_take(&b, NULL);
        return 0;
}

static int show_one(Notifier *n, const StoredCode *k) {
        _cleanup_strbuf_ StrBuf body = STRBUF_INIT(8192);
        _cleanup_free_ char *summary = NULL, *ascii = NULL;
        Call *c;
        char date[64];
        int r;

        format_date(k->date, date, sizeof date);
        if (k->trusted)
                summary = strdup(kind_summary(k->kind));
        else if (asprintf(&summary, _("⚠ Unverified sender: %s"), code_kind_to_words(k->kind)) < 0)
                summary = NULL;
        /* The code and the sender are foreign text: escaped. */
        if (k->kind == CODE_KIND_POSSIBLE) {
                /* Where the mail is, never its text: the user opens it. */
                (void) strbuf_printf(&body, "%s: ", _("Subject"));
                (void) put_escaped(&body, strempty(k->subject));
                (void) strbuf_printf(&body, "\n%s: ", _("Folder"));
                (void) put_escaped(&body, k->account);
                (void) strbuf_puts(&body, " / ");
                (void) put_escaped(&body, k->folder);
                (void) strbuf_printf(&body, _("\nNo rule read a code in it: 'alcode show %" PRIi64
                                              "', or save it and run 'alcode scan --explain'.\n"), k->id);
        } else {
                (void) put_escaped(&body, masked(n, k));
                (void) strbuf_puts(&body, "\n");
        }
        (void) strbuf_puts(&body, _("From: "));
        (void) put_escaped(&body, strna(k->sender));
        if (address_domain_ascii(k->sender, &ascii) < 0)
                return -ENOMEM;
        if (ascii)
                (void) strbuf_printf(&body, " [%s]", ascii);
        (void) strbuf_printf(&body, "\n%s%s", _("Date: "), date);
        if (!k->trusted)
                (void) strbuf_printf(&body, "\n%s",
                                     _("This sender is not Action Logement's: do not use this code "
                                       "before checking it on actionlogement.fr."));
        if (!summary || strbuf_ensure(&body) < 0)
                return -ENOMEM;
        r = notify_new_call(n, summary, body.data, CATEGORY_CODE, 1, &c);
        if (r < 0)
                return r;
        /* Copying works with the code masked too: it never shows on screen. */
        if (k->trusted && k->value && !(c->code = strdup(k->value)))
                goto oom;
        c->copy_action = c->code != NULL;
        if (details_text(k, n->show_code, &c->details) < 0)
                goto oom;
        return send_call(n, c);
oom:
        call_free(c);
        return -ENOMEM;
}

/* The newest trusted code of kind among codes, skipping expired ones; NULL if none. Codes of
 * one date are ordered by value, as the store orders them (alcode latest, superseded). */
static const StoredCode *newest_trusted(const StoredCode *codes, size_t n_codes, CodeKind kind, int64_t now) {
        const StoredCode *best = NULL;

        for (size_t i = 0; i < n_codes; i++) {
                const StoredCode *c = &codes[i];
                if (c->kind != kind || !c->trusted || (c->expires_at > 0 && c->expires_at <= now))
                        continue;
                if (!best || c->date > best->date ||
                    (c->date == best->date && strcmp(strempty(c->value), strempty(best->value)) > 0))
                        best = c;
        }
        return best;
}

/* Several codes at once (a backfill): what the user came for first. The newest trusted code
 * spécifique leads, with the Copy action; then the employer's newest access and company codes
 * and a login code still valid; everything else is counted per kind, never listed: an older
 * code of a kind is superseded by the newest, a login code expires within minutes. */
static int show_group(Notifier *n, const StoredCode *codes, size_t n_codes, const CodeTally *folded) {
        const CodeKind *listed = code_group_listed;
        _cleanup_strbuf_ StrBuf body = STRBUF_INIT(8192);
        _cleanup_free_ char *summary = NULL;
        const StoredCode *shown[ELEMENTSOF(code_group_listed)] = {};
        size_t counts[_CODE_KIND_MAX] = {}, untrusted = 0, others = 0;
        bool any_untrusted = false;
        int64_t now = (int64_t) time(NULL);
        Call *c;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(code_group_listed); i++) {
                shown[i] = newest_trusted(codes, n_codes, listed[i], now);
                if (!shown[i])
                        continue;
                (void) strbuf_printf(&body, "%s: ", code_kind_to_words(listed[i]));
                (void) put_escaped(&body, masked(n, shown[i]));
                (void) strbuf_puts(&body, "\n");
        }
        for (size_t i = 0; i < n_codes; i++) {
                bool is_shown = false;
                for (size_t k = 0; k < ELEMENTSOF(shown); k++)
                        is_shown = is_shown || shown[k] == &codes[i];
                if (is_shown)
                        continue;
                if (!codes[i].trusted) {
                        untrusted++;
                        any_untrusted = true;
                } else if (codes[i].kind >= 0 && codes[i].kind < _CODE_KIND_MAX) {
                        counts[codes[i].kind]++;
                        others++;
                }
        }
        /* What code_group_fold() took out of the list, counted the same way. */
        for (CodeKind k = 0; folded && k < _CODE_KIND_MAX; k++) {
                counts[k] += folded->trusted[k];
                others += folded->trusted[k];
        }
        if (folded && folded->untrusted > 0) {
                untrusted += folded->untrusted;
                any_untrusted = true;
        }
        if (others > 0) {
                bool first = true;
                (void) strbuf_puts(&body, _("Also found: "));
                for (CodeKind k = 0; k < _CODE_KIND_MAX; k++)
                        if (counts[k] > 0) {
                                (void) strbuf_printf(&body, "%s%s ×%zu", first ? "" : ", ", code_kind_to_words(k), counts[k]);
                                first = false;
                        }
                (void) strbuf_puts(&body, "\n");
        }
        if (untrusted > 0)
                (void) strbuf_printf(&body, _("⚠ %zu from senders that are not trusted for their kind\n"), untrusted);
        (void) strbuf_puts(&body, _("Run 'alcode list' to see every code with its sender and date."));

        if (asprintf(&summary, any_untrusted ? _("Action Logement: %zu codes found (some unverified)")
                                             : _("Action Logement: %zu codes found"),
                     n_codes + (folded ? folded->n : 0)) < 0)
                summary = NULL;
        if (!summary || strbuf_ensure(&body) < 0)
                return -ENOMEM;
        r = notify_new_call(n, summary, body.data, CATEGORY_CODE, 1, &c);
        if (r < 0)
                return r;
        /* Copy takes the code that leads: the specific code, else the first one listed. */
        for (size_t i = 0; i < ELEMENTSOF(shown) && !c->code; i++)
                if (shown[i] && !(c->code = strdup(shown[i]->value)))
                        goto oom;
        c->copy_action = c->code != NULL;
        for (size_t i = 0; i < ELEMENTSOF(shown) && !c->details; i++)
                if (shown[i] && details_text(shown[i], n->show_code, &c->details) < 0)
                        goto oom;
        if (!c->details && !(c->details = strdup(_("Run 'alcode list' to see every code with its sender and date."))))
                goto oom;
        return send_call(n, c);
oom:
        call_free(c);
        return -ENOMEM;
}

int notifier_show_codes(Notifier *n, const StoredCode *codes, size_t n_codes, const CodeTally *folded) {
        size_t total = n_codes + (folded ? folded->n : 0);

        if (total == 0)
                return 0;
        /* Normal urgency: a look-alike in the Junk folder must not pin a notification that
         * never expires; the warning is in the words. */
        return total == 1 && n_codes == 1 ? show_one(n, &codes[0]) : show_group(n, codes, n_codes, folded);
}

int notifier_show_trouble(Notifier *n, const char *category, const char *summary, const char *body) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(8192);
        Call *c;
        int r;

        /* The server's error text is foreign: escaped like any other. */
        if (put_escaped_full(&b, body, true) < 0 || strbuf_ensure(&b) < 0)
                return -ENOMEM;
        r = notify_new_call(n, summary, b.data, category, 2, &c);
        if (r < 0)
                return r;
        if (!(c->details = strdup(b.data))) {
                call_free(c);
                return -ENOMEM;
        }
        return send_call(n, c);
}
