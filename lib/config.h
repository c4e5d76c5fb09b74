/* The configuration file (INI, see alcode.conf(5)), parsed once into an immutable Config that
 * the daemon's threads share read-only. Every error names file:line and the key; a config with
 * errors is never half-used. */
#pragma once

#include <stdint.h>

#include "macro.h"
#include "strmap.h"

typedef enum TlsMode {
        TLS_MODE_IMPLICIT,
        TLS_MODE_STARTTLS,
        TLS_MODE_NONE, /* loopback hosts only */
        _TLS_MODE_MAX,
        _TLS_MODE_INVALID = -EINVAL,
} TlsMode;

typedef enum AuthMethod {
        AUTH_METHOD_LOGIN,
        AUTH_METHOD_PLAIN,
        AUTH_METHOD_XOAUTH2,
        AUTH_METHOD_OAUTHBEARER, /* RFC 7628 */
        AUTH_METHOD_OAUTH2,      /* OAUTHBEARER or XOAUTH2, whichever the server offers */
        _AUTH_METHOD_MAX,
        _AUTH_METHOD_INVALID = -EINVAL,
} AuthMethod;

const char *tls_mode_to_string(TlsMode m) _pure_;
const char *auth_method_to_string(AuthMethod m) _pure_;

typedef struct Account {
        char *name;
        unsigned line;             /* of its [account NAME] header */
        char *host;
        uint16_t port;             /* 993 for implicit TLS, else 143, unless set */
        TlsMode tls;
        char *user;
        char *password_command;    /* run to get the password or token (see secret.h) */
        char *password;            /* secret: only from a file others cannot read */
        AuthMethod auth;
        char *ca_file;
        uint8_t fingerprint[32];   /* SHA-256 pin of the server certificate */
        bool has_fingerprint;
        char **folders;            /* globs; default "*" */
        char **exclude;            /* globs */
        int64_t since;             /* backfill horizon (epoch seconds at 00:00 UTC), 0: all */
        char **idle;               /* folders watched with IDLE (globs) */
        unsigned poll_interval;    /* seconds */
        /* Built-in OAuth2 (oauth2.h): set when oauth2_provider or oauth2_client_id is. */
        char *oauth2_provider;     /* a preset: "microsoft", "google" */
        char *oauth2_client_id;
        char *oauth2_client_secret;
        char *oauth2_authorize_url; /* overrides of the preset (https:// only) */
        char *oauth2_token_url;
        char *oauth2_device_url;
        char *oauth2_scope;
        char *oauth2_token_file;   /* the refresh token in a 0600 file instead of the keyring */
} Account;

/* Whether alcode gets the account's access tokens itself (oauth2.h), rather than from a
 * password_command. */
static inline bool account_uses_oauth2(const Account *a) {
        return a->oauth2_client_id || a->oauth2_provider;
}
/* Whether the login sends a bearer token (XOAUTH2 or OAUTHBEARER). */
static inline bool auth_is_oauth(AuthMethod m) {
        return m == AUTH_METHOD_XOAUTH2 || m == AUTH_METHOD_OAUTHBEARER || m == AUTH_METHOD_OAUTH2;
}

typedef struct Config {
        char *path;                /* NULL when no file was read */
        char *database;
        char **rule_dirs;          /* shipped, then user, then `rules =` folders, in that order */
        bool notify;
        bool notify_show_code;
        char **employer_domains;
        unsigned otp_retention_days; /* expired one-time codes are deleted after this */
        Account *accounts;
        size_t n_accounts;
        StrMap account_index;      /* name → index in accounts */
} Config;

/* The default config path: $XDG_CONFIG_HOME/alcode/alcode.conf (~/.config/...). */
int config_default_path(char **ret);

/* Loads path (NULL: the default path, which may be missing: then defaults are used). Errors are
 * appended to *errors as "file:line: message"; on any error *ret is not set and -EINVAL is
 * returned. -ENOENT when an explicit path does not exist. */
int config_load(const char *path, Config **ret, char ***errors);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

const Account *config_find_account(const Config *c, const char *name);
/* The user's own addresses: the accounts' user names that are addresses, in config order (mail
 * they sent is never trusted, whatever its domain). *ret is a new strv, NULL when there is none;
 * -ENOMEM. */
int config_user_addresses(const Config *c, char ***ret);
/* True when the two accounts need no reconnect to go from a to b. */
bool account_equal(const Account *a, const Account *b);

/* Expands a leading ~ and $HOME, $XDG_CONFIG_HOME, $XDG_DATA_HOME. */
int path_expand(const char *in, char **ret);

/* Whether host is a loopback name or address (localhost, 127.0.0.0/8, ::1). */
bool host_is_loopback(const char *host) _pure_;

/* Whether host can name an IMAP server: an IP address, or a DNS name (ASCII labels of letters,
 * digits, '-' and '_'). No blank, control character, '/', ':' or '@'. */
bool host_valid(const char *host) _pure_;

/* Whether n can name an [account NAME]: 1 to 64 letters, digits and -_.@+. */
bool account_name_valid(const char *n) _pure_;
