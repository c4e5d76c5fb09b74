/* Notifications are sent with sd_bus_call_method_async(); replies and the ActionInvoked /
 * NotificationClosed signals arrive on the main loop. Signals are broadcast to every client,
 * so we act only on ids we created. Actions: "default" replaces the notification with the
 * code's provenance; "copy" (trusted codes only) pipes the code into wl-copy or xclip. */
#include <fcntl.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "i18n.h"
#include "log.h"
#include "notify.h"
#include "strbuf.h"

#define NOTIFY_GROUP_SHOWN 6
#define NOTIFY_REMEMBERED 32

extern char **environ;

typedef struct Shown {
        uint32_t id;
        char *code;    /* for "copy"; NULL when grouped or untrusted */
        char *details; /* for "default" */
        char *summary;
} Shown;

struct Notifier {
        sd_bus *bus;
        bool show_code;
        unsigned pending;
        sd_bus_slot *action_slot, *closed_slot;
        Shown shown[NOTIFY_REMEMBERED];
        size_t next;
        bool warned_no_server;
};

typedef struct Call {
        Notifier *n;
        char *code;
        char *details;
        char *summary;
} Call;

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

/* Servers that support body markup interpret &, < and >: escape them. */
static int put_escaped(StrBuf *b, const char *s) {
        int r = 0;

        for (; s && *s && r >= 0; s++)
                r = *s == '&' ? strbuf_puts(b, "&amp;") : *s == '<' ? strbuf_puts(b, "&lt;")
                  : *s == '>' ? strbuf_puts(b, "&gt;") : strbuf_putc(b, *s);
        return r;
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

static void spawn_copy(const char *code) {
        static const char *const tools[][3] = {
                { "wl-copy", NULL },
                { "xclip", "-selection", "clipboard" },
        };
        const char *env_needed[] = { "WAYLAND_DISPLAY", "DISPLAY" };

        for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                posix_spawn_file_actions_t fa;
                char *argv[4] = { (char *) tools[i][0], (char *) tools[i][1], (char *) tools[i][2], NULL };
                int p[2];
                pid_t pid;

                if (!getenv(env_needed[i]))
                        continue;
                if (pipe2(p, O_CLOEXEC) < 0)
                        return;
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_adddup2(&fa, p[0], STDIN_FILENO);
                posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
                int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
                posix_spawn_file_actions_destroy(&fa);
                (void) close(p[0]);
                if (r != 0) {
                        (void) close(p[1]);
                        continue;
                }
                (void) !write(p[1], code, strlen(code));
                (void) close(p[1]);
                /* wl-copy/xclip fork to serve the selection: the child we started returns soon. */
                (void) waitpid(pid, NULL, 0);
                log_info("Copied a code to the clipboard with %s.", argv[0]);
                return;
        }
        log_warning("Cannot copy the code: neither wl-copy (Wayland) nor xclip (X11) is usable.");
}

static int send_notify(Notifier *n, uint32_t replaces, const char *summary, const char *body,
                       bool copy_action, uint8_t urgency, Call *c);

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
                        spawn_copy(s->code);
                else if (streq(key, "default") && s->details) {
                        Call *c = calloc(1, sizeof(Call));
                        if (c && (c->summary = strdup(s->summary ?: "alcode")))
                                (void) send_notify(n, id, c->summary, s->details, false, 1, c);
                        else
                                call_free(c);
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

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        Notifier *n = c->n;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        uint32_t id = 0;

        (void) ret_error;
        n->pending--;
        if (e) {
                if (!n->warned_no_server)
                        log_warning("Cannot show a desktop notification (%s), ignoring; the code is "
                                    "stored: see 'alcode list'.", e->message ?: e->name);
                n->warned_no_server = true;
        } else if (sd_bus_message_read(m, "u", &id) >= 0 && id > 0) {
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

static int send_notify(Notifier *n, uint32_t replaces, const char *summary, const char *body,
                       bool copy_action, uint8_t urgency, Call *c) {
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
                r = sd_bus_message_append(m, "susss", "alcode", replaces, "dialog-password", summary, body);
        if (r >= 0)
                r = copy_action ? sd_bus_message_append(m, "as", 4, "default", _("Details"), "copy", _("Copy code"))
                                : sd_bus_message_append(m, "as", 2, "default", _("Details"));
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 3, "desktop-entry", "s", "alcode", "category", "s",
                                          "email.arrived", "urgency", "y", urgency);
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

int notifier_show_codes(Notifier *n, const StoredCode *codes, size_t n_codes) {
        _cleanup_strbuf_ StrBuf body = STRBUF_INIT(8192);
        _cleanup_free_ char *summary = NULL;
        Call *c;
        bool any_untrusted = false;
        char date[64];

        if (n_codes == 0)
                return 0;
        for (size_t i = 0; i < n_codes; i++)
                any_untrusted = any_untrusted || !codes[i].trusted;
        c = calloc(1, sizeof(Call));
        if (!c)
                return -ENOMEM;

        if (n_codes == 1) {
                const StoredCode *k = &codes[0];
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
                (void) strbuf_printf(&body, "\n%s%s", _("Date: "), date);
                if (!k->trusted)
                        (void) strbuf_printf(&body, "\n%s",
                                             _("This sender is not Action Logement's: do not use this code "
                                               "before checking it on actionlogement.fr."));
                /* Copying works with the code masked too: it never shows on screen. */
                if (k->trusted && k->value && !(c->code = strdup(k->value)))
                        goto oom;
                if (details_text(k, n->show_code, &c->details) < 0)
                        goto oom;
        } else {
                if (asprintf(&summary, any_untrusted ? _("Action Logement: %zu codes found (some unverified)")
                                                     : _("Action Logement: %zu codes found"), n_codes) < 0)
                        summary = NULL;
                for (size_t i = 0; i < n_codes && i < NOTIFY_GROUP_SHOWN; i++) {
                        (void) strbuf_printf(&body, "%s%s: ", codes[i].trusted ? "" : "⚠ ", code_kind_to_words(codes[i].kind));
                        (void) put_escaped(&body, masked(n, &codes[i]));
                        (void) strbuf_puts(&body, "\n");
                }
                if (n_codes > NOTIFY_GROUP_SHOWN)
                        (void) strbuf_printf(&body, _("…and %zu more: run 'alcode list'."), n_codes - NOTIFY_GROUP_SHOWN);
                c->details = strdup(_("Run 'alcode list' to see every code with its sender and date."));
                if (!c->details)
                        goto oom;
        }
        if (!summary || strbuf_ensure(&body) < 0 || !(c->summary = strdup(summary)))
                goto oom;
        /* Normal urgency: a look-alike in the Junk folder must not pin a notification that
         * never expires; the warning is in the words. */
        return send_notify(n, 0, summary, body.data, c->code != NULL, 1, c);
oom:
        call_free(c);
        return -ENOMEM;
}

int notifier_show_trouble(Notifier *n, const char *summary, const char *body) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(8192);
        Call *c = calloc(1, sizeof(Call));

        /* The server's error text is foreign: escaped like any other. */
        if (!c || put_escaped(&b, body) < 0 || strbuf_ensure(&b) < 0 || !(c->summary = strdup(summary)) ||
            !(c->details = strdup(b.data))) {
                call_free(c);
                return -ENOMEM;
        }
        return send_notify(n, 0, summary, b.data, false, 2, c);
}
