/* Verbs that talk to the running daemon over its D-Bus API (DESIGN.md): status and rescan.
 * The daemon has no D-Bus service file, so asking never starts it: no bus, or no owner of the
 * name, means "not running" (exit 3). status adds what only the store knows, read-only: when
 * each account's code spécifique was found and how many possible codes there are, never a
 * code. */
#include <inttypes.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "bus-names.h"
#include "cli.h"
#include "i18n.h"
#include "json-writer.h"
#include "worker-state.h"

#define CALL_TIMEOUT_USEC (25 * 1000000ULL)

static int not_running(void) {
        fprintf(stderr, _("alcode: alcoded is not running (start it with 'systemctl --user start alcoded').\n"));
        return EXIT_NO_DAEMON;
}

static bool error_means_not_running(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED);
}

/* Calls method; returns 0 with *ret_reply, EXIT_NO_DAEMON, or 1 after printing the error. */
static int call(const char *method, sd_bus_message **ret_reply, const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        va_list ap;
        int r;

        r = sd_bus_open_user(&bus);
        if (r < 0)
                return not_running(); /* no session bus at all */
        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, BUS_PATH, BUS_INTERFACE, method);
        if (r >= 0)
                r = sd_bus_message_set_auto_start(m, false);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0) {
                fprintf(stderr, _("alcode: cannot build the D-Bus call: %s\n"), strerror(-r));
                return 1;
        }
        r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &error, ret_reply);
        if (r >= 0)
                return 0;
        if (error_means_not_running(&error) || r == -ENOTCONN || r == -ECONNRESET)
                return not_running();
        if (sd_bus_error_has_name(&error, BUS_ERROR_NO_SUCH_ACCOUNT)) {
                fprintf(stderr, "alcode: %s\n", error.message);
                return EXIT_BAD_INPUT;
        }
        fprintf(stderr, _("alcode: alcoded answered with an error: %s\n"),
                error.message ?: strerror(-r));
        return 1;
}

/* A state from a newer alcoded that this alcode does not know is shown as it is published. */
static const char *state_words(const char *state) {
        const char *words = worker_state_to_words(worker_state_from_string(state));

        return words ? _(words) : state;
}

typedef struct StatusRow {
        const char *account, *state, *error;
        uint64_t last_sync, messages;
        int64_t codes;
        int64_t specific_found;   /* when its newest trusted code spécifique was stored; 0: none */
        int64_t possible;         /* possible codes seen in its mail; -1: the store cannot be read */
} StatusRow;

/* A write error is reported by cli_flush_stdout() at the end of the verb. */
static void print_status_json(const StatusRow *r) {
        JsonWriter w;
        char when[40];

        json_writer_begin(&w, stdout);
        json_writer_string(&w, "account", r->account);
        json_writer_string(&w, "state", r->state);
        json_writer_string(&w, "error", isempty(r->error) ? NULL : r->error);
        json_writer_string(&w, "last_sync",
                           r->last_sync == 0 ? NULL : format_rfc3339((int64_t) r->last_sync, 0, when, sizeof when));
        json_writer_uint(&w, "messages", r->messages);
        json_writer_int(&w, "codes", r->codes);
        if (r->possible >= 0)
                json_writer_int(&w, "possible", r->possible);
        else
                json_writer_null(&w, "possible");
        json_writer_string(&w, "specific_found",
                           r->specific_found <= 0 ? NULL : format_rfc3339(r->specific_found, 0, when, sizeof when));
        (void) json_writer_end(&w);
}

/* What the store adds to the daemon's answer, never a code itself (`alcode latest` prints that):
 * when each account's newest trusted code spécifique was stored (what a user waits for after
 * `alcode init`), and how many possible codes (mail from a trusted sender that may hold a code
 * no rule read) were seen in each account and in all (local files stored by `alcode scan
 * --store` too). Left at 0, -1 and *ret_total -1 when the store cannot be read. */
static void read_store(StatusRow *rows, size_t n, int64_t *ret_total) {
        _cleanup_(store_closep) Store *s = NULL;
        uint64_t total;

        *ret_total = -1;
        for (size_t i = 0; i < n; i++)
                rows[i].possible = -1;
        if (cli_open_store_quiet(&s) < 0)
                return;
        if (store_count_possible(s, &total) >= 0)
                *ret_total = (int64_t) total;
        for (size_t i = 0; i < n; i++) {
                StoreFilter f = { .kind = CODE_KIND_SPECIFIC, .account = rows[i].account, .trusted_only = true,
                                  .limit = 1 };
                StoredCode *c = NULL;
                size_t k = 0;

                if (store_list(s, &f, &c, &k) >= 0 && k > 0)
                        rows[i].specific_found = c[0].found_at;
                stored_codes_free(c, k);

                f = (StoreFilter) { .kind = CODE_KIND_POSSIBLE, .account = rows[i].account };
                c = NULL;
                k = 0;
                if (store_list(s, &f, &c, &k) >= 0)
                        rows[i].possible = (int64_t) k;
                stored_codes_free(c, k);
        }
}

/* "Your code spécifique: found 2026-12-03 10:00 (alcode latest specific)", the newest. */
static void print_specific_found(const StatusRow *rows, size_t n) {
        const StatusRow *newest = NULL;
        char when[32];

        for (size_t i = 0; i < n; i++)
                if (rows[i].specific_found > 0 && (!newest || rows[i].specific_found > newest->specific_found))
                        newest = &rows[i];
        if (!newest)
                return;
        cli_local_date(newest->specific_found, when, sizeof when);
        printf(_("\n%sYour code spécifique: found %s%s (alcode latest specific)\n"), ansi_bold(), when,
               ansi_normal());
}

/* "2 mails may hold a code no rule read: alcode list", when the store holds possible codes. */
static void print_possible_count(int64_t n) {
        if (n > 0)
                printf(ngettext("\n%s%zu mail may hold a code no rule read:%s alcode list\n",
                                "\n%s%zu mails may hold a code no rule read:%s alcode list\n", (unsigned long) n),
                       ansi_yellow(), (size_t) n, ansi_normal());
}

int verb_status(_unused_ int argc, _unused_ char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        StatusRow *rows = NULL;
        size_t n = 0, wa, ws;
        int64_t possible;
        int r;

        r = call("Status", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(sssttx)");
        for (;;) {
                StatusRow row = {};
                if (r < 0)
                        break;
                r = sd_bus_message_read(reply, "(sssttx)", &row.account, &row.state, &row.error, &row.last_sync,
                                        &row.messages, &row.codes);
                if (r <= 0)
                        break;
                StatusRow *l = reallocarray(rows, n + 1, sizeof(StatusRow));
                if (!l) {
                        r = -ENOMEM;
                        break;
                }
                rows = l;
                rows[n++] = row;
        }
        if (r < 0) {
                free(rows);
                fprintf(stderr, _("alcode: cannot read alcoded's answer: %s\n"), strerror(-r));
                return 1;
        }

        read_store(rows, n, &possible);
        if (arg_json) {
                for (size_t i = 0; i < n; i++)
                        print_status_json(&rows[i]);
                free(rows);
                return 0;
        }
        if (n == 0) {
                printf(_("alcoded is running, with no account configured.\n"));
                free(rows);
                return 0;
        }
        wa = cli_text_width(_("ACCOUNT"));
        ws = cli_text_width(_("STATE"));
        for (size_t i = 0; i < n; i++) {
                wa = MAX(wa, MIN(cli_text_width(rows[i].account), (size_t) 30));
                ws = MAX(ws, cli_text_width(state_words(rows[i].state)));
        }
        fputs(ansi_bold(), stdout);
        cli_print_cell(stdout, _("ACCOUNT"), wa + 2, 0);
        cli_print_cell(stdout, _("STATE"), ws + 2, 0);
        cli_print_cell(stdout, _("LAST SYNC"), 18, 0);
        printf("%9s  %5s%s\n", _("MESSAGES"), _("CODES"), ansi_normal());
        for (size_t i = 0; i < n; i++) {
                const StatusRow *row = &rows[i];
                char when[32];
                bool bad = worker_state_is_trouble(worker_state_from_string(row->state));

                cli_local_date((int64_t) row->last_sync, when, sizeof when);
                cli_print_cell(stdout, row->account, wa + 2, 30);
                fputs(bad ? ansi_red() : "", stdout);
                cli_print_cell(stdout, state_words(row->state), ws, 0);
                printf("%s  ", bad ? ansi_normal() : "");
                cli_print_cell(stdout, when, 18, 0);
                printf("%9" PRIu64 "  %5" PRIi64 "\n", row->messages, row->codes);
                if (!isempty(row->error)) {
                        /* The server's words: printed as a cell, so no control character passes. */
                        printf("%*s%s", (int) wa + 2, "", ansi_grey());
                        cli_print_cell(stdout, row->error, 0, 200);
                        printf("%s\n", ansi_normal());
                }
        }
        print_specific_found(rows, n);
        free(rows);
        print_possible_count(possible);
        return 0;
}

int verb_rescan(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *account = argc > 1 ? argv[1] : "";
        int r;

        r = call("Rescan", &reply, "s", account);
        if (r != 0)
                return r;
        if (isempty(account))
                printf(_("alcoded is reading every account again.\n"));
        else
                printf(_("alcoded is reading account '%s' again.\n"), account);
        return 0;
}
