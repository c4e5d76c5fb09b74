/* The OAuth2 part of `alcode init` (cli-init-oauth2.c): whether to sign in with OAuth2, the
 * client id, the sign-in itself (browser with a loopback redirect, or a device code), where the
 * refresh token goes, and `alcode init --reauth ACCOUNT`. cli-init.c calls it at a few points
 * and otherwise knows nothing of OAuth2. */
#pragma once

#include <stdio.h>

#include "config.h"
#include "oauth2.h"

typedef struct InitOAuth2 {
        bool enabled;            /* the account signs in with built-in OAuth2 */
        const OAuth2Preset *preset;
        char *client_id;
        char *client_secret;     /* secret-ish: wiped */
        char *token_file;        /* NULL: the keyring */
        OAuth2Tokens tokens;     /* from the sign-in */
} InitOAuth2;

void init_oauth2_done(InitOAuth2 *o);

/* Keeps one of the options below (name without "--"); -EINVAL when it is not one of them. */
int init_oauth2_set_option(const char *name, const char *value);

/* Whether `alcode init --reauth ACCOUNT` was asked for (then init_oauth2_reauth() runs alone). */
const char *init_oauth2_reauth_account(void);

/* Decides whether the account uses OAuth2: the options say so, or the address is one of a
 * preset's (provider_host: the IMAP host alcode knows for the address, or NULL) and the user
 * chooses the sign-in. The client id is the option's, else that of an account of existing with
 * the same provider, else asked for. Returns 1 when it does (o filled, not signed in yet), 0 when not (the
 * password questions follow), < 0 on error (printed). */
int init_oauth2_ask(InitOAuth2 *o, const char *provider_host, const Config *existing, bool interactive);

/* Fills the oauth2 fields of a (borrowed from o and from the options). */
void init_oauth2_account(const InitOAuth2 *o, Account *a);

/* Signs in (a filled by init_oauth2_account()), puts the access token in the cache for the
 * connection test. < 0 on failure (printed). */
int init_oauth2_sign_in(InitOAuth2 *o, const Account *a, const char *email, bool interactive);

/* Stores the refresh token (keyring, or the token file). < 0 on failure (printed). */
int init_oauth2_store(InitOAuth2 *o, const Account *a, const char *email);

/* The account's oauth2 lines for alcode.conf. */
void init_oauth2_write(const InitOAuth2 *o, const Account *a, FILE *f);

/* alcode init --reauth ACCOUNT: signs in again for an account of config_path and stores the
 * new refresh token where the old one was. Returns an exit status. */
int init_oauth2_reauth(const char *config_path, bool interactive);
