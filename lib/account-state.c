#include "account-state.h"
#include "i18n.h"
#include "macro.h"

const char *account_state_words(const char *state) {
        static const struct {
                const char *state;
                const char *words;
        } table[] = {
                { "connecting", N_("connecting") },
                { "scanning", N_("scanning") },
                { "idle", N_("watching") },
                { "backoff", N_("waiting to reconnect") },
                { "password", N_("waiting for password_command (keyring locked?)") },
                { "failed", N_("failed") },
                { "stopped", N_("stopped") },
                { "stuck", N_("stuck") },
        };

        for (size_t i = 0; state && i < ELEMENTSOF(table); i++)
                if (streq(state, table[i].state))
                        return table[i].words;
        return NULL;
}
