/* io.github.alcode.Daemon1 with an sd_bus_vtable: sd-bus answers Introspect, Peer and
 * Properties for us. Every method replies at once: Status() reads the slots and one statistics
 * query per account, ListCodes() one SELECT, Rescan() only wakes workers, Reload() reads the
 * configuration and the rules (files only, no network). */
#include <systemd/sd-bus-vtable.h>

#include "build-config.h"
#include "bus.h"
#include "log.h"

struct Bus {
        sd_bus *bus;
        sd_bus_slot *vtable_slot;
        const BusHandlers *handlers;
        void *userdata;           /* the handlers' */
};

static int method_status(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Bus *b = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssttx)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < b->handlers->n_accounts(b->userdata); i++) {
                AccountStatus st;

                r = b->handlers->account_status(b->userdata, i, &st);
                if (r < 0)
                        return sd_bus_error_set_errnof(error, r, "Cannot read the statistics of the store: %m");
                r = sd_bus_message_append(reply, "(sssttx)", st.account, worker_state_to_string(st.state),
                                          st.error, (uint64_t) MAX(st.last_sync, (int64_t) 0), st.messages,
                                          (int64_t) st.codes);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_rescan(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        const char *account;
        int r;

        r = sd_bus_message_read(msg, "s", &account);
        if (r < 0)
                return r;
        r = b->handlers->rescan(b->userdata, account);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, BUS_ERROR_NO_SUCH_ACCOUNT, "No account named '%s'.", account);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

/* What `systemctl --user reload alcoded` calls (ExecReload=): unlike SIGHUP, it answers only
 * once the new configuration is in use, and with an error when it was refused, so that
 * systemctl fails and says why. */
static int method_reload(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *why = NULL;
        Bus *b = userdata;
        int r;

        r = b->handlers->reload(b->userdata, &why);
        if (r == -ESHUTDOWN)
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, "alcoded is stopping.");
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, BUS_ERROR_BAD_CONFIG,
                                         "The new configuration was refused, alcoded keeps the one it had: %s "
                                         "(run 'alcode check' for every error)",
                                         why ?: strerror(-r));
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_list_codes(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        Bus *b = userdata;
        StoredCode *codes = NULL;
        const char *kind;
        size_t n = 0;
        int r;

        r = sd_bus_message_read(msg, "s", &kind);
        if (r < 0)
                return r;
        if (!isempty(kind)) {
                f.kind = code_kind_from_string(kind);
                if (f.kind < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown kind '%s' (expected specific, company, access, otp, "
                                                 "request, file or possible).", kind);
        }
        r = store_list(b->handlers->store(b->userdata), &f, &codes, &n);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Cannot read the store: %m");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(xsssbx)");
        for (size_t i = 0; i < n && r >= 0; i++)
                r = sd_bus_message_append(reply, "(xsssbx)", codes[i].id, code_kind_to_string(codes[i].kind),
                                          strempty(codes[i].value), strempty(codes[i].sender), (int) codes[i].trusted,
                                          codes[i].date);
        stored_codes_free(codes, n);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        (void) bus, (void) path, (void) interface, (void) property, (void) userdata, (void) error;
        return sd_bus_message_append(reply, "s", ALCODE_VERSION);
}

static int property_accounts(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Bus *b = userdata;
        int r;

        (void) bus, (void) path, (void) interface, (void) property;
        r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; i < b->handlers->n_accounts(b->userdata) && r >= 0; i++) {
                AccountStatus st;
                r = b->handlers->account_status(b->userdata, i, &st);
                if (r < 0)
                        return sd_bus_error_set_errnof(error, r, "Cannot read the store: %m");
                r = sd_bus_message_append(reply, "s", st.account);
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static const sd_bus_vtable daemon_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Accounts", "as", property_accounts, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Status", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssttx)", accounts), method_status,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rescan", SD_BUS_ARGS("s", account), SD_BUS_NO_RESULT, method_rescan,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListCodes", SD_BUS_ARGS("s", kind), SD_BUS_RESULT("a(xsssbx)", codes),
                                method_list_codes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("CodeFound", SD_BUS_ARGS("x", id, "s", kind, "s", value, "b", trusted), 0),
        SD_BUS_SIGNAL_WITH_ARGS("AccountStateChanged", SD_BUS_ARGS("s", account, "s", state), 0),
        SD_BUS_VTABLE_END,
};

int bus_new(sd_bus *bus, const BusHandlers *handlers, void *userdata, Bus **ret) {
        Bus *b;
        int r;

        b = calloc(1, sizeof(Bus));
        if (!b)
                return -ENOMEM;
        *b = (Bus) { .bus = sd_bus_ref(bus), .handlers = handlers, .userdata = userdata };
        r = sd_bus_add_object_vtable(bus, &b->vtable_slot, BUS_PATH, BUS_INTERFACE, daemon_vtable, b);
        if (r >= 0)
                /* Synchronous, once, before READY=1: clients may call us as soon as systemd
                 * reports the service started. No queueing: a second daemon must not run. */
                r = sd_bus_request_name(bus, BUS_NAME, 0);
        if (r < 0) {
                bus_free(b);
                return r;
        }
        *ret = b;
        return 0;
}

Bus *bus_free(Bus *b) {
        if (!b)
                return NULL;
        sd_bus_slot_unref(b->vtable_slot);
        sd_bus_unref(b->bus);
        free(b);
        return NULL;
}

void bus_emit_code_found(Bus *b, const StoredCode *c) {
        int r;

        if (!b)
                return;
        r = sd_bus_emit_signal(b->bus, BUS_PATH, BUS_INTERFACE, "CodeFound", "xssb", c->id,
                               code_kind_to_string(c->kind), strempty(c->value), (int) c->trusted);
        if (r < 0)
                log_debug_errno(r, "Cannot emit CodeFound, ignoring: %m");
}

void bus_emit_account_state(Bus *b, const char *account, WorkerState state) {
        int r;

        if (!b)
                return;
        r = sd_bus_emit_signal(b->bus, BUS_PATH, BUS_INTERFACE, "AccountStateChanged", "ss", account,
                               worker_state_to_string(state));
        if (r < 0)
                log_debug_errno(r, "Cannot emit AccountStateChanged, ignoring: %m");
}

void bus_emit_accounts_changed(Bus *b) {
        int r;

        if (!b)
                return;
        r = sd_bus_emit_properties_changed(b->bus, BUS_PATH, BUS_INTERFACE, "Accounts", NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot emit PropertiesChanged, ignoring: %m");
}
