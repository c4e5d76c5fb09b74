/* The states of an account as alcoded publishes them (Status(), AccountStateChanged) and the
 * words that show them to a user: one table for `alcode status` and alcoded's STATUS=. */
#pragma once

/* The untranslated words for state ("idle" → "watching"), or NULL for an unknown state: pass
 * them through _() to show them. */
const char *account_state_words(const char *state);
