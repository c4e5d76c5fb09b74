/* alcode init, the OAuth2 part (see init-oauth2.h). The sign-in happens at the provider, in a
 * browser: alcode prints the address (and opens it with xdg-open when there is a display),
 * waits on 127.0.0.1 for the browser to come back, and never sees the password. For Microsoft
 * on a machine without a browser, the device grant shows a code to type on another device.
 * The refresh token goes to the keyring (secret-tool) unless --token-file names a file. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

#include "cli.h"
#include "fs-util.h"
#include "i18n.h"
#include "imap.h"
#include "init-oauth2.h"
#include "ini-file.h"
#include "log.h"
#include "prompt.h"
#include "store.h"
#include "strv.h"

#define SIGN_IN_TIMEOUT_SEC 300
#define REAUTH_TEST_TIMEOUT_SEC 30

extern char **environ;

static struct {
        bool oauth2, device;
        const char *provider, *client_id, *client_secret, *authorize_url, *token_url, *device_url, *scope,
                *token_file, *reauth;
} opt;

int init_oauth2_set_option(const char *name, const char *value) {
        static const struct {
                const char *name;
                const char **field;
        } strings[] = {
                { "oauth2-provider", &opt.provider },       { "oauth2-client-id", &opt.client_id },
                { "oauth2-client-secret", &opt.client_secret }, { "oauth2-authorize-url", &opt.authorize_url },
                { "oauth2-token-url", &opt.token_url },     { "oauth2-device-url", &opt.device_url },
                { "oauth2-scope", &opt.scope },             { "token-file", &opt.token_file },
                { "reauth", &opt.reauth },
        };

        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                if (streq(name, strings[i].name)) {
                        *strings[i].field = value;
                        return 0;
                }
        if (streq(name, "oauth2"))
                opt.oauth2 = true;
        else if (streq(name, "device"))
                opt.device = true;
        else
                return -EINVAL;
        return 0;
}

const char *init_oauth2_reauth_account(void) {
        return opt.reauth;
}

void init_oauth2_done(InitOAuth2 *o) {
        free(o->client_id);
        erase_and_free(o->client_secret);
        free(o->token_file);
        oauth2_tokens_done(&o->tokens);
        *o = (InitOAuth2) {};
}

static bool value_ok(const char *v) {
        return !isempty(v) && !strpbrk(v, " \t\r\n;\"") && strlen(v) < 1024;
}

static bool url_ok(const char *v) {
        return v && startswith(v, "https://") && value_ok(v);
}

static int check_options(void) {
        const char *urls[] = { opt.authorize_url, opt.token_url, opt.device_url };

        if (opt.provider && !oauth2_preset(opt.provider)) {
                fprintf(stderr, _("alcode init: --oauth2-provider takes %s, not '%s'.\n"), OAUTH2_PRESET_NAMES,
                        opt.provider);
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(urls); i++)
                if (urls[i] && !url_ok(urls[i])) {
                        fprintf(stderr, _("alcode init: '%s' is not an https:// address.\n"), urls[i]);
                        return -EINVAL;
                }
        if ((opt.client_id && !value_ok(opt.client_id)) || (opt.client_secret && !value_ok(opt.client_secret)) ||
            (opt.scope && (isempty(opt.scope) || strpbrk(opt.scope, "\r\n;")))) {
                fprintf(stderr, _("alcode init: alcode.conf cannot hold that client id, secret or scope.\n"));
                return -EINVAL;
        }
        return 0;
}

/* alcoded.service may write only in the store's folder (ProtectHome=read-only): a token file
 * elsewhere cannot take the new refresh token a provider that rotates them (Microsoft) sends. */
static void warn_token_file_place(const char *path) {
        _cleanup_free_ char *db = NULL;
        char *slash;

        if (store_default_path(&db) < 0 || !(slash = strrchr(db, '/')))
                return;
        slash[1] = 0;
        if (!startswith(path, db))
                printf(_("Note: the alcoded service may write only in %s; keep the token file there, or it\n"
                         "cannot store the new refresh token your provider may send.\n"), db);
}

/* An account of the config with the same provider already has a registered application. */
static const Account *same_provider(const InitOAuth2 *o, const Config *existing) {
        for (size_t i = 0; o->preset && existing && i < existing->n_accounts; i++) {
                const Account *a = &existing->accounts[i];
                if (a->oauth2_client_id && a->oauth2_provider && streq(a->oauth2_provider, o->preset->name))
                        return a;
        }
        return NULL;
}

static int ask_client(InitOAuth2 *o, const Config *existing, bool interactive) {
        const Account *other = opt.client_id ? NULL : same_provider(o, existing);
        int r;

        if (opt.client_id)
                o->client_id = strdup(opt.client_id);
        else if (other) {
                printf(_("Using the application (client) id of account '%s'.\n"), other->name);
                o->client_id = strdup(other->oauth2_client_id);
                if (other->oauth2_client_secret && !opt.client_secret &&
                    !(o->client_secret = strdup(other->oauth2_client_secret)))
                        return -ENOMEM;
        } else if (!interactive) {
                fprintf(stderr, _("alcode init: OAuth2 needs --oauth2-client-id: the id of the application you "
                                  "registered with\nyour provider (alcode.conf(5), OAUTH2, says how).\n"));
                return -EINVAL;
        } else {
                printf(_("\nalcode needs the id of an application registered with %s; alcode ships none of its\n"
                         "own. 'man alcode.conf', section OAUTH2, says how to register one in a few steps.\n"),
                       o->preset ? o->preset->display : _("your provider"));
                for (;;) {
                        r = prompt_line(_("Application (client) id"), NULL, &o->client_id);
                        if (r < 0)
                                return r;
                        if (value_ok(o->client_id))
                                break;
                        free(o->client_id);
                        o->client_id = NULL;
                }
        }
        if (!o->client_id)
                return -ENOMEM;
        if (opt.client_secret)
                o->client_secret = strdup(opt.client_secret);
        else if (o->preset && o->preset->needs_secret && interactive && !o->client_secret) {
                for (;;) {
                        r = prompt_line(_("Client secret (Google gives one with a \"Desktop app\" client)"), NULL,
                                        &o->client_secret);
                        if (r < 0)
                                return r;
                        if (value_ok(o->client_secret))
                                break;
                        erase_and_free(o->client_secret);
                        o->client_secret = NULL;
                }
        }
        if (opt.client_secret && !o->client_secret)
                return -ENOMEM;
        if (o->preset && o->preset->needs_secret && !o->client_secret) {
                fprintf(stderr, _("alcode init: %s also needs the client secret of your application: give "
                                  "--oauth2-client-secret.\n"), o->preset->display);
                return -EINVAL;
        }
        if (opt.token_file) {
                r = path_expand(opt.token_file, &o->token_file);
                if (r < 0 || o->token_file[0] != '/') {
                        fprintf(stderr, _("alcode init: --token-file needs an absolute path (or ~/...).\n"));
                        return r == -ENOMEM ? r : -EINVAL;
                }
                warn_token_file_place(o->token_file);
        }
        return 0;
}

int init_oauth2_ask(InitOAuth2 *o, const char *provider_host, const Config *existing, bool interactive) {
        bool given;
        int r;

        r = check_options();
        if (r < 0)
                return r;
        o->preset = opt.provider ? oauth2_preset(opt.provider) : oauth2_preset_for_host(provider_host);
        /* Endpoints alone choose OAuth2 only where no preset offers the choice. */
        given = opt.oauth2 || opt.provider || opt.client_id || (!o->preset && opt.token_url);
        if (!given && !o->preset)
                return 0;
        if (!given) {
                unsigned choice;
                if (!interactive)
                        return 0; /* --yes without OAuth2 options: the password questions decide */
                printf(_("\n%s signs you in on its own page, in your browser: alcode never sees your password.\n"),
                       o->preset->display);
                printf(_("  1  sign in in the browser (recommended)\n"));
                if (o->preset->device_url)
                        printf(_("  2  sign in on another device with a code (this machine has no browser)\n"
                                 "  3  a command that prints an access token (another OAuth2 program)\n"));
                else
                        printf(_("  2  an app password instead (Google's \"App passwords\")\n"));
                r = prompt_number(_("Your choice"), o->preset->device_url ? 3 : 2, 1, &choice);
                if (r < 0)
                        return r;
                if (choice == 2 && o->preset->device_url)
                        opt.device = true;
                else if (choice != 1)
                        return 0;
        }
        if (!o->preset && !opt.token_url) {
                fprintf(stderr, _("alcode init: OAuth2 needs --oauth2-provider (%s) or --oauth2-token-url.\n"),
                        OAUTH2_PRESET_NAMES);
                return -EINVAL;
        }
        r = ask_client(o, existing, interactive);
        if (r < 0)
                return r;
        o->enabled = true;
        return 1;
}

void init_oauth2_account(const InitOAuth2 *o, Account *a) {
        a->auth = AUTH_METHOD_OAUTH2;
        a->oauth2_provider = o->preset ? (char *) o->preset->name : NULL;
        a->oauth2_client_id = o->client_id;
        a->oauth2_client_secret = o->client_secret;
        a->oauth2_authorize_url = (char *) opt.authorize_url;
        a->oauth2_token_url = (char *) opt.token_url;
        a->oauth2_device_url = (char *) opt.device_url;
        a->oauth2_scope = (char *) opt.scope;
        a->oauth2_token_file = o->token_file;
}

/* Opens url in the user's browser when there is a display; the address is printed anyway. */
static void open_browser(const char *url) {
        posix_spawn_file_actions_t fa;
        pid_t pid;

        if (isempty(getenv("DISPLAY")) && isempty(getenv("WAYLAND_DISPLAY")))
                return;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        if (posix_spawnp(&pid, "xdg-open", &fa, NULL, (char *const[]) { (char *) "xdg-open", (char *) url, NULL },
                         environ) == 0)
                (void) waitpid(pid, NULL, WNOHANG);
        posix_spawn_file_actions_destroy(&fa);
}

static void show(const char *url, const char *user_code, void *userdata) {
        (void) userdata;
        if (user_code)
                printf(_("\nOn any device with a browser, open\n  %s\nand type the code %s (alcode waits; Ctrl-C "
                         "stops).\n"), url, user_code);
        else {
                printf(_("\nSign in at your provider in your browser; if it does not open by itself, open this "
                         "address:\n\n%s\n\nalcode waits for the browser to come back (Ctrl-C stops).\n"), url);
                (void) fflush(stdout);
                open_browser(url);
        }
        (void) fflush(stdout);
}

int init_oauth2_sign_in(InitOAuth2 *o, const Account *a, const char *email, bool interactive) {
        _cleanup_free_ char *error = NULL;
        OAuth2Client c;
        int r;

        (void) interactive;
        if (oauth2_client_from_account(a, &c) < 0) {
                fprintf(stderr, _("alcode init: the OAuth2 client id or token address is missing.\n"));
                return -EINVAL;
        }
        oauth2_tokens_done(&o->tokens);
        if (opt.device)
                r = oauth2_sign_in_device(&c, show, NULL, &o->tokens, &error);
        else
                r = oauth2_sign_in_browser(&c, email, SIGN_IN_TIMEOUT_SEC, show, NULL, &o->tokens, &error);
        if (r < 0) {
                printf(_("The sign-in did not work: %s.\n"), error ?: strerror(-r));
                if (r == -EPERM)
                        printf(_("The provider's certificate was refused, so nothing was sent to it.\n"));
                return r;
        }
        printf(_("Signed in.\n"));
        /* The connection test logs in with this access token, from the cache. */
        oauth2_forget(a->name);
        r = oauth2_remember(a->name, &o->tokens);
        return r < 0 ? r : 0;
}

int init_oauth2_store(InitOAuth2 *o, const Account *a, const char *email) {
        _cleanup_free_ char *label = NULL, *error = NULL;
        int r;

        if (asprintf(&label, "alcode OAuth2: %s", email) < 0)
                return -ENOMEM;
        r = oauth2_token_store(a, label, o->tokens.refresh_token, &error);
        if (r < 0) {
                printf(_("The refresh token could not be kept: %s.\n"), strna(error));
                if (!a->oauth2_token_file)
                        printf(_("Is a keyring running and unlocked? Or keep it in a file with --token-file.\n"));
                return r;
        }
        if (a->oauth2_token_file)
                printf(_("The sign-in is kept in %s (only you can read it).\n"), a->oauth2_token_file);
        else
                printf(_("The sign-in is kept in your keyring; 'secret-tool clear alcode-oauth2 %s' removes it.\n"),
                       a->name);
        return 0;
}

void init_oauth2_write(const InitOAuth2 *o, const Account *a, FILE *f) {
        fprintf(f, "auth = oauth2\n");
        if (a->oauth2_provider)
                fprintf(f, "oauth2_provider = %s\n", a->oauth2_provider);
        fprintf(f, "oauth2_client_id = %s\n", o->client_id);
        if (o->client_secret)
                fprintf(f, "oauth2_client_secret = %s\n", o->client_secret);
        if (a->oauth2_authorize_url)
                fprintf(f, "oauth2_authorize_url = %s\n", a->oauth2_authorize_url);
        if (a->oauth2_token_url)
                fprintf(f, "oauth2_token_url = %s\n", a->oauth2_token_url);
        if (a->oauth2_device_url)
                fprintf(f, "oauth2_device_url = %s\n", a->oauth2_device_url);
        if (a->oauth2_scope)
                fprintf(f, "oauth2_scope = %s\n", a->oauth2_scope);
        if (a->oauth2_token_file)
                fprintf(f, "oauth2_token_file = %s\n", a->oauth2_token_file);
}

/* Logs in with the new access token before the old refresh token is replaced. */
static int test_login(const Account *a) {
        _cleanup_(imap_session_freep) ImapSession *session = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        printf(_("Connecting to %s port %u...\n"), a->host, a->port);
        (void) fflush(stdout);
        r = imap_session_new(a, REAUTH_TEST_TIMEOUT_SEC, &session);
        if (r >= 0)
                r = imap_session_connect(session, &error);
        if (r < 0) {
                printf(_("The server did not accept the new sign-in: %s.\n"), error ?: strerror(-r));
                return r;
        }
        imap_logout(session);
        printf(_("It works.\n"));
        return 0;
}

int init_oauth2_reauth(const char *config_path, bool interactive) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        InitOAuth2 o = {};
        const Account *a;
        int r;

        r = check_options();
        if (r < 0)
                return EXIT_BAD_INPUT;
        r = config_load(config_path, &c, &errors);
        if (r < 0) {
                STRV_FOREACH(e, errors)
                        fprintf(stderr, "%s\n", *e);
                if (r == -ENOENT)
                        fprintf(stderr, _("alcode init: %s does not exist.\n"), config_path);
                return EXIT_BAD_INPUT;
        }
        a = config_find_account(c, opt.reauth);
        if (!a) {
                fprintf(stderr, _("alcode init: %s has no account '%s'.\n"), config_path, opt.reauth);
                return EXIT_BAD_INPUT;
        }
        if (!account_uses_oauth2(a)) {
                fprintf(stderr, _("alcode init: account '%s' does not use alcode's OAuth2 sign-in "
                                  "(oauth2_client_id).\n"), a->name);
                return EXIT_BAD_INPUT;
        }
        (void) interactive;
        printf(_("Signing in again for account '%s' (%s).\n"), a->name, a->user);
        r = init_oauth2_sign_in(&o, a, a->user, interactive);
        if (r >= 0)
                r = test_login(a);
        if (r >= 0)
                r = init_oauth2_store(&o, a, a->user);
        init_oauth2_done(&o);
        oauth2_forget(NULL);
        if (r < 0)
                return 1;
        printf(_("Done. If alcoded is running: systemctl --user reload alcoded\n"));
        return 0;
}
