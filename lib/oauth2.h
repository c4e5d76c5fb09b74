/* OAuth2 (RFC 6749) for IMAP accounts that no longer take a password: Outlook.com/Hotmail/Live
 * and Gmail. The grants alcode uses are the ones meant for programs on a user's machine:
 *  - the authorization code grant with PKCE (RFC 7636, S256) and a loopback redirect on
 *    127.0.0.1 and a random port (RFC 8252 §7.3): `alcode init` prints the URL, the user signs
 *    in in a browser, the provider sends the browser back to our one-shot listener;
 *  - the device authorization grant (RFC 8628), for Microsoft, on a machine without a browser;
 *  - the refresh token grant, in the daemon, before each login whose cached access token is
 *    close to its end.
 *
 * HTTPS goes through libcurl with the checks the IMAP connection has: the peer chain against the
 * system trust (or the account's ca_file), the host name, TLS 1.2 or later, https only, no
 * redirects followed. Verification is never turned off. Responses are JSON (jansson), bounded
 * in size.
 *
 * Tokens are secrets: they are never logged, never put in an error message, and every buffer
 * that held one is wiped (explicit_bzero) before it is freed. The refresh token lives in the
 * Secret Service (secret-tool, attributes alcode-oauth2 = ACCOUNT) or, when the user asked for
 * it, in a file of their own with mode 0600 (oauth2_token_file); access tokens only in this
 * process's memory (oauth2_access_token()'s cache). */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"

typedef struct OAuth2Preset {
        const char *name;          /* "microsoft", "google" */
        const char *display;       /* for people */
        const char *authorize_url;
        const char *token_url;
        const char *device_url;    /* NULL: the provider has no device grant for mail */
        const char *scope;
        const char *redirect_host; /* loopback redirect: "localhost" where the provider matches
                                    * a registered http://localhost whatever the port; NULL:
                                    * 127.0.0.1 (RFC 8252 §7.3) */
        bool needs_secret;         /* Google gives installed apps a client secret too */
} OAuth2Preset;

const OAuth2Preset *oauth2_preset(const char *name) _pure_;
/* The preset that serves IMAP host (outlook.office365.com → microsoft), or NULL. */
const OAuth2Preset *oauth2_preset_for_host(const char *host) _pure_;
/* NULL-terminated names, for error messages. */
#define OAUTH2_PRESET_NAMES "microsoft, google"

/* What an account's OAuth2 endpoints are once its preset and its overrides are applied. */
typedef struct OAuth2Client {
        const char *client_id;
        const char *client_secret;  /* may be NULL */
        const char *authorize_url;
        const char *token_url;
        const char *device_url;     /* may be NULL */
        const char *scope;
        const char *redirect_host;  /* NULL: 127.0.0.1 */
        const char *ca_file;        /* NULL: the system's trust store */
} OAuth2Client;

/* Fills c from the account (borrowed strings). -EINVAL when something needed is missing. */
int oauth2_client_from_account(const Account *a, OAuth2Client *ret);

typedef struct OAuth2Tokens {
        char *access_token;   /* secret */
        char *refresh_token;  /* secret, may be NULL (the provider kept the old one) */
        int64_t expires_at;   /* CLOCK_REALTIME seconds; 0: unknown */
} OAuth2Tokens;

void oauth2_tokens_done(OAuth2Tokens *t);

/* Errors of the calls below, besides -ENOMEM:
 *  -EKEYREVOKED   invalid_grant: the refresh token (or the code) is no longer valid, the user
 *                 must sign in again;
 *  -EACCES        the provider refused (access_denied, unauthorized_client, invalid_client...);
 *  -EPERM         the provider's certificate was refused (nothing was sent);
 *  -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EPROTO: try again later;
 *  -ECANCELED     the sign-in was abandoned (device code expired, no browser came back).
 * *ret_error (owned) says why in words, never with a token. */

/* The refresh token grant. */
int oauth2_refresh(const OAuth2Client *c, const char *refresh_token, OAuth2Tokens *ret, char **ret_error);

/* Where the user goes (printed, and opened with xdg-open when a display is there). */
typedef void (*OAuth2ShowFunc)(const char *url, const char *user_code, void *userdata);

/* The authorization code grant with PKCE through a loopback listener on 127.0.0.1. login_hint
 * (the address) may be NULL. Waits up to timeout_sec for the browser. */
int oauth2_sign_in_browser(const OAuth2Client *c, const char *login_hint, unsigned timeout_sec,
                           OAuth2ShowFunc show, void *userdata, OAuth2Tokens *ret, char **ret_error);

/* The device authorization grant: show() gets the verification URL and the user code; polls
 * the token endpoint at the interval the provider asks for (slower after slow_down). */
int oauth2_sign_in_device(const OAuth2Client *c, OAuth2ShowFunc show, void *userdata, OAuth2Tokens *ret,
                          char **ret_error);

/* ---- where the refresh token is kept ---- */

/* Reads the account's refresh token (keyring, or oauth2_token_file). -ENOKEY when there is
 * none. */
int oauth2_token_load(const Account *a, char **ret, char **ret_error);
/* Stores it (replacing the old one). label is for the keyring's item. */
int oauth2_token_store(const Account *a, const char *label, const char *refresh_token, char **ret_error);

/* ---- the daemon's cache of access tokens ---- */

/* An access token for a's login: the cached one while it has more than a margin left (a fifth
 * of its life, at most 5 minutes), else a new one from the refresh token. A rotated refresh
 * token is stored back. After -EKEYREVOKED the account is marked and no request is sent for it
 * again until oauth2_forget() (a reload, a new sign-in). Thread-safe. */
int oauth2_access_token(const Account *a, char **ret_token, char **ret_error);
/* A flag that, once true, aborts this thread's HTTPS requests within about a second (with
 * -ECANCELED): imap.c points it at the session's cancel flag around oauth2_access_token(), so
 * that stopping the daemon never waits for a provider that does not answer. NULL: none. */
void oauth2_set_abort_flag(const atomic_bool *flag);
/* Puts an access token in the cache (alcode init, right after the sign-in). */
int oauth2_remember(const char *account, const OAuth2Tokens *t);
/* Drops what the cache holds for account (NULL: everything), wiping it. */
void oauth2_forget(const char *account);

/* The SASL initial responses (RFC 7628 §3.1 and Google's XOAUTH2), base64-encoded. */
int oauth2_sasl_oauthbearer(const char *user, const char *host, uint16_t port, const char *token, char **ret);
int oauth2_sasl_xoauth2(const char *user, const char *token, char **ret);
