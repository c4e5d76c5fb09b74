#include "i18n.h"
#include "worker-state.h"

static const struct {
        const char *string; /* published: never change one */
        const char *words;
        bool trouble;
} worker_state_table[_WORKER_STATE_MAX] = {
        [WORKER_CONNECTING] = { "connecting", N_("connecting"), false },
        [WORKER_SCANNING] = { "scanning", N_("scanning"), false },
        [WORKER_IDLE] = { "idle", N_("watching"), false },
        [WORKER_BACKOFF] = { "backoff", N_("waiting to reconnect"), true },
        [WORKER_PASSWORD] = { "password", N_("waiting for password_command (keyring locked?)"), true },
        [WORKER_FAILED] = { "failed", N_("failed"), true },
        [WORKER_STOPPED] = { "stopped", N_("stopped"), false },
        [WORKER_STUCK] = { "stuck", N_("stuck"), true },
};

DEFINE_STRING_TABLE_LOOKUP(worker_state, WorkerState, worker_state_table);

const char *worker_state_to_words(WorkerState s) {
        return s >= 0 && s < _WORKER_STATE_MAX ? worker_state_table[s].words : NULL;
}

bool worker_state_is_trouble(WorkerState s) {
        return s >= 0 && s < _WORKER_STATE_MAX && worker_state_table[s].trouble;
}
