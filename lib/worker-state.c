#include "i18n.h"
#include "worker-state.h"

static const struct {
        const char *string; /* published: never change one */
        const char *words;
} worker_state_table[_WORKER_STATE_MAX] = {
        [WORKER_CONNECTING] = { "connecting", N_("connecting") },
        [WORKER_SCANNING] = { "scanning", N_("scanning") },
        [WORKER_IDLE] = { "idle", N_("watching") },
        [WORKER_BACKOFF] = { "backoff", N_("waiting to reconnect") },
        [WORKER_PASSWORD] = { "password", N_("waiting for password_command (keyring locked?)") },
        [WORKER_FAILED] = { "failed", N_("failed") },
        [WORKER_STOPPED] = { "stopped", N_("stopped") },
        [WORKER_STUCK] = { "stuck", N_("stuck") },
};

DEFINE_STRING_TABLE_LOOKUP(worker_state, WorkerState, worker_state_table);

const char *worker_state_to_words(WorkerState s) {
        return s >= 0 && s < _WORKER_STATE_MAX ? worker_state_table[s].words : NULL;
}
