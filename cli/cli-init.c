/* alcode init: the first-run setup, on the terminal or from options (--yes).
 *
 * It asks only what it cannot guess, in the order a person thinks of it: the address; for the
 * providers in the table below nothing else but the password; otherwise the server. It tests
 * the account with the daemon's own code (imap_session_connect(): the certificate is checked before the
 * password is sent), puts the password where the user chose (the Secret Service through
 * secret-tool, a command of theirs, or the config file, then readable by them only), and writes
 * a commented config. The config is written only at the end (a password chosen for the
 * keyring goes there once tested, before the last question). An existing config keeps its
 * text: after asking, the account is appended to a copy of it in a temporary file, which is
 * checked with config_load() and then renamed over it. A typed password lives in one buffer, wiped after use;
 * it is never echoed, logged, or put in an error message. */
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli.h"
#include "fs-util.h"
#include "i18n.h"
#include "imap.h"
#include "init-oauth2.h"
#include "ini-file.h"
#include "log.h"
#include "parse-util.h"
#include "prompt.h"
#include "secret.h"
#include "spawn-util.h"
#include "strv.h"

#define INIT_TIMEOUT_SEC 30
#define INIT_LOGIN_TRIES 3

/* A NULL-terminated argument vector, for run_program(). */
#define ARGV(...) ((char *const[]) { __VA_ARGS__, NULL })

typedef enum SecretKind {
        SECRET_PASSWORD,     /* the usual password */
        SECRET_APP_PASSWORD, /* a password made for mail programs in the account's settings */
        SECRET_TOKEN,        /* an OAuth2 access token (auth = xoauth2) */
} SecretKind;

typedef struct Provider {
        const char *name;          /* for people */
        const char *account;       /* the default account name */
        const char *host;          /* IMAP, implicit TLS on 993 */
        const char *domains;       /* the mail domains it hosts, space-separated */
        bool login_is_local_part;  /* the login is the part before '@' */
        SecretKind secret;
        const char *hint;          /* N_(): what to type as the password, and where to get it */
} Provider;

/* Servers and login rules as each provider documents them for mail programs. */
static const Provider providers[] = {
        { "Gmail", "gmail", "imap.gmail.com", "gmail.com googlemail.com", false, SECRET_APP_PASSWORD,
          N_("Google wants an app password here, not your usual password: turn on 2-Step "
             "Verification,\nthen create one at https://myaccount.google.com/apppasswords and "
             "type its 16 letters.") },
        { "Outlook.com", "outlook", "outlook.office365.com",
          "outlook.com outlook.fr hotmail.com hotmail.fr live.com live.fr msn.com", false, SECRET_TOKEN,
          N_("Outlook.com and Hotmail no longer accept a password over IMAP: they want an OAuth2 access\n"
             "token. Give a command that prints a fresh token (for example 'oama access "
             "ADDRESS',\nor mutt_oauth2.py from mutt); alcode then logs in with auth = xoauth2.") },
        { "Yahoo", "yahoo", "imap.mail.yahoo.com", "yahoo.com yahoo.fr ymail.com rocketmail.com", false,
          SECRET_APP_PASSWORD,
          N_("Yahoo wants an app password here: in your Yahoo account, Account security, "
             "then\n\"Generate app password\".") },
        { "iCloud", "icloud", "imap.mail.me.com", "icloud.com me.com mac.com", true, SECRET_APP_PASSWORD,
          N_("Apple wants an app-specific password here: https://account.apple.com, Sign-In and "
             "Security,\nthen App-Specific Passwords.") },
        { "Orange", "orange", "imap.orange.fr", "orange.fr wanadoo.fr", false, SECRET_PASSWORD, NULL },
        { "Free", "free", "imap.free.fr", "free.fr", false, SECRET_PASSWORD, NULL },
        { "SFR", "sfr", "imap.sfr.fr", "sfr.fr neuf.fr cegetel.net club-internet.fr", false, SECRET_PASSWORD,
          NULL },
        { "La Poste", "laposte", "imap.laposte.net", "laposte.net", false, SECRET_PASSWORD, NULL },
        { "Bouygues Telecom", "bbox", "imap4.bbox.fr", "bbox.fr", false, SECRET_PASSWORD, NULL },
};

typedef enum SecretPlace {
        PLACE_KEYRING = 1, /* the numbers of the menu */
        PLACE_COMMAND = 2,
        PLACE_FILE = 3,
} SecretPlace;

/* The options of `alcode init` (see init_set_option()); --config and --account are common. */
static struct {
        const char *email, *host, *port, *tls, *user, *password_command, *ca_file, *employer_domains;
        bool no_test, no_enable, yes;
} opt;

typedef struct Setup {
        bool interactive;
        char *config_path;
        char *existing;           /* the config file's text when it exists */
        mode_t existing_mode;
        Config *existing_config;
        char *email;
        const Provider *provider;
        char *name;
        char *host;
        uint16_t port;
        TlsMode tls;
        AuthMethod auth;
        char *user;
        char *ca_file;
        SecretPlace place;
        char *password;           /* secret: typed, for PLACE_KEYRING and PLACE_FILE */
        char *password_command;
        bool in_keyring;          /* written there: stays even if init stops */
        char *employer_domains;
        InitOAuth2 oauth;         /* built-in OAuth2 sign-in (cli-init-oauth2.c) */
} Setup;

static void setup_done(Setup *s) {
        free(s->config_path);
        free(s->existing);
        config_free(s->existing_config);
        free(s->email);
        free(s->name);
        free(s->host);
        free(s->user);
        free(s->ca_file);
        erase_and_free(s->password);
        free(s->password_command);
        free(s->employer_domains);
        init_oauth2_done(&s->oauth);
}

int init_set_option(const char *name, const char *value) {
        static const struct {
                const char *name;
                size_t offset;
        } strings[] = {
#define S(n, f) { n, offsetof(__typeof__(opt), f) }
                S("email", email), S("host", host), S("port", port), S("tls", tls), S("user", user),
                S("password-command", password_command), S("ca-file", ca_file),
                S("employer-domains", employer_domains),
#undef S
        };

        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                if (streq(name, strings[i].name)) {
                        *(const char **) ((char *) &opt + strings[i].offset) = value;
                        return 0;
                }
        if (streq(name, "no-test"))
                opt.no_test = true;
        else if (streq(name, "no-enable"))
                opt.no_enable = true;
        else if (streq(name, "yes"))
                opt.yes = true;
        else
                return init_oauth2_set_option(name, value);
        return 0;
}

/* ---- checks of what people type ---- */

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static bool email_ok(const char *e) {
        const char *at = strrchr(e, '@');

        /* It becomes the login (user =) when none is given: one line, no blank. */
        if (!at || at == e || strlen(e) > 254 || strpbrk(e, " \t,;<>\"'") || has_control(e))
                return false;
        return domain_valid(at + 1);
}

/* An INI value as alcode.conf keeps it: no blanks at its ends, no " ;" (a comment), one line,
 * and short enough for the line limit. */
static bool ini_value_ok(const char *key, const char *v) {
        size_t l = strlen(v);

        if (l == 0 || isspace((unsigned char) v[0]) || isspace((unsigned char) v[l - 1]) || has_control(v))
                return false;
        for (const char *p = v; *p; p++)
                if (*p == ';' && p > v && isspace((unsigned char) p[-1]))
                        return false;
        return strlen(key) + 3 + l < INI_FILE_MAX_LINE;
}

static const Provider *provider_for(const char *domain) {
        for (size_t i = 0; i < ELEMENTSOF(providers); i++) {
                const char *p = providers[i].domains;
                size_t l = strlen(domain);
                for (; *p; p += strcspn(p, " "), p += strspn(p, " "))
                        if (strncasecmp(p, domain, l) == 0 && (p[l] == ' ' || p[l] == 0))
                                return &providers[i];
        }
        return NULL;
}

static bool account_exists(const Setup *s, const char *name) {
        return s->existing_config && config_find_account(s->existing_config, name);
}

/* The provider's short name ("gmail"), else the domain's label before the last one ("example"
 * for jeanne@mail.example.org); a number is added when the config already has that name. */
static int default_account_name(const Setup *s, char **ret) {
        _cleanup_free_ char *base = NULL;
        const char *domain = strrchr(s->email, '@') + 1;
        char *name = NULL;

        if (s->provider)
                base = strdup(s->provider->account);
        else {
                const char *last = strrchr(domain, '.'), *start = domain;
                for (const char *p = domain; p < last; p++)
                        if (*p == '.')
                                start = p + 1;
                base = strndup(start, (size_t) (last - start));
                for (char *p = base; p && *p; p++)
                        *p = (char) tolower((unsigned char) *p);
        }
        if (!base)
                return -ENOMEM;
        if (!account_name_valid(base)) {
                free(base);
                if (!(base = strdup("mail")))
                        return -ENOMEM;
        }
        for (unsigned i = 1; i < 100; i++) {
                free(name);
                if ((i == 1 ? asprintf(&name, "%s", base) : asprintf(&name, "%s%u", base, i)) < 0)
                        return -ENOMEM;
                if (!account_exists(s, name))
                        break;
        }
        *ret = name;
        return 0;
}

static char *find_program(const char *name) {
        const char *path = getenv("PATH") ?: "/usr/bin:/bin";

        for (const char *p = path; *p; p += strcspn(p, ":"), p += strspn(p, ":")) {
                _cleanup_free_ char *full = NULL;
                size_t l = strcspn(p, ":");
                if (l == 0 || asprintf(&full, "%.*s/%s", (int) l, p, name) < 0)
                        continue;
                if (access(full, X_OK) == 0)
                        return TAKE_PTR(full);
        }
        return NULL;
}

/* Runs argv, its stdin fed from input (or the terminal when NULL), stdout/stderr to ours unless
 * quiet. Returns its exit status, or -errno when it could not run. */
static int run_program(char *const *argv, const char *input, bool quiet) {
        int pipefd[2] = { -EBADF, -EBADF }, status, r;
        pid_t pid;

        if (input && pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        (void) fflush(stdout);
        /* In our process group: it may ask on the terminal (a keyring's prompt). */
        r = -spawn_start(&(SpawnOptions) { .argv = argv, .stdin_fd = input ? pipefd[0] : SPAWN_INHERIT,
                                           .stdout_fd = quiet ? SPAWN_NULL : SPAWN_INHERIT,
                                           .stderr_fd = quiet ? SPAWN_NULL : SPAWN_INHERIT,
                                           .keep_process_group = true }, &pid);
        if (input) {
                (void) close(pipefd[0]);
                if (r == 0) {
                        /* A secret is small: it fits in the pipe, no need to poll. */
                        size_t l = strlen(input);
                        ssize_t n = write(pipefd[1], input, l);
                        if (n < 0 || (size_t) n != l)
                                r = EPIPE;
                }
                (void) close(pipefd[1]);
        }
        if (r != 0 && r != EPIPE)
                return -r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r == EPIPE)
                return -EPIPE;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the questions ---- */

static int ask_email(Setup *s) {
        if (opt.email) {
                if (!email_ok(opt.email)) {
                        fprintf(stderr, _("alcode init: --email takes an e-mail address on one line, not '%s'.\n"),
                                opt.email);
                        return -EINVAL;
                }
                s->email = strdup(opt.email);
                return s->email ? 0 : -ENOMEM;
        }
        if (!s->interactive) {
                fprintf(stderr, _("alcode init: --yes needs --email.\n"));
                return -EINVAL;
        }
        for (;;) {
                _cleanup_free_ char *e = NULL;
                int r = prompt_line(_("Your e-mail address, the one Action Logement and your employer write to"),
                                    NULL, &e);
                if (r < 0)
                        return r;
                if (email_ok(e)) {
                        s->email = TAKE_PTR(e);
                        return 0;
                }
                printf(_("'%s' is not an e-mail address (name@example.org).\n"), e);
        }
}

/* --tls and --port, checked before anything is asked. */
static int parse_server_options(Setup *s) {
        s->tls = _TLS_MODE_INVALID;
        if (opt.tls) {
                if (streq(opt.tls, "implicit"))
                        s->tls = TLS_MODE_IMPLICIT;
                else if (streq(opt.tls, "starttls"))
                        s->tls = TLS_MODE_STARTTLS;
                else if (streq(opt.tls, "none"))
                        s->tls = TLS_MODE_NONE;
                else {
                        fprintf(stderr, _("alcode init: --tls takes implicit, starttls or none, not '%s'.\n"),
                                opt.tls);
                        return -EINVAL;
                }
        }
        if (opt.port && parse_port(opt.port, &s->port) < 0) {
                fprintf(stderr, _("alcode init: --port takes a number from 1 to 65535, not '%s'.\n"), opt.port);
                return -EINVAL;
        }
        return 0;
}

/* "imap.example.org:1993" typed as the server: the port taken from it, unless --port said one.
 * One colon only (an IPv6 address has several). */
static bool split_host_port(Setup *s) {
        char *colon = strchr(s->host, ':');
        uint16_t port;

        if (!colon || strchr(colon + 1, ':') || parse_port(colon + 1, &port) < 0)
                return false;
        *colon = '\0';
        if (!host_valid(s->host)) {
                *colon = ':';
                return false;
        }
        if (!opt.port)
                s->port = port;
        return true;
}

/* The server a provider of the table does not give: asked, with its port unless --port. */
static int ask_unknown_server(Setup *s, const char *domain) {
        bool port_given = false;
        int r;

        if (!s->interactive) {
                fprintf(stderr, _("alcode init: alcode does not know the IMAP server of %s: give --host.\n"),
                        domain);
                return -EINVAL;
        }
        printf(_("alcode does not know the mail server of %s. Its help pages give it (look for\n"
                 "\"IMAP\" or \"incoming server\").\n"), domain);
        for (;;) {
                r = prompt_line(_("IMAP server (for example imap.example.org)"), NULL, &s->host);
                if (r < 0)
                        return r;
                if (host_valid(s->host))
                        break;
                port_given = split_host_port(s);
                if (port_given)
                        break;
                printf(_("Type the server's name alone, for example imap.example.org (or with its port: "
                         "imap.example.org:993).\n"));
                free(s->host);
                s->host = NULL;
        }
        if (!opt.port && !port_given)
                for (;;) {
                        _cleanup_free_ char *p = NULL;
                        r = prompt_line(_("Port (993 for TLS, 143 for STARTTLS)"), "993", &p);
                        if (r < 0)
                                return r;
                        if (parse_port(p, &s->port) >= 0)
                                break;
                }
        return 0;
}

/* The server's name: --host, else the provider's, else asked. */
static int ask_host(Setup *s, const char *domain) {
        int r;

        if (opt.host) {
                if (!host_valid(opt.host)) {
                        fprintf(stderr, _("alcode init: --host takes a server name (imap.example.org) or an IP "
                                          "address, not '%s'.\n"), opt.host);
                        return -EINVAL;
                }
                s->host = strdup(opt.host);
        } else if (s->provider)
                s->host = strdup(s->provider->host);
        else {
                r = ask_unknown_server(s, domain);
                if (r < 0)
                        return r;
        }
        return s->host ? 0 : -ENOMEM;
}

/* The port and TLS mode that were not given: from each other, else asked for an unusual port. */
static int choose_port_and_tls(Setup *s) {
        int r;

        if (s->port == 0)
                s->port = s->tls == TLS_MODE_STARTTLS || s->tls == TLS_MODE_NONE ? 143 : 993;
        if (s->tls < 0 && s->port != 993 && s->port != 143 && s->interactive) {
                bool implicit = true;
                r = prompt_yes_no(_("Does this port use TLS from the start, as 993 does (no: STARTTLS, as 143)?"),
                                  true, &implicit);
                if (r < 0)
                        return r;
                s->tls = implicit ? TLS_MODE_IMPLICIT : TLS_MODE_STARTTLS;
        }
        /* RFC 8314 §3.3: implicit TLS, unless the port is the one for STARTTLS. */
        if (s->tls < 0)
                s->tls = s->port == 143 ? TLS_MODE_STARTTLS : TLS_MODE_IMPLICIT;
        if (s->provider && !opt.host)
                printf(s->tls == TLS_MODE_IMPLICIT ? _("%s: IMAP server %s, port %u, TLS.\n")
                                                   : _("%s: IMAP server %s, port %u, STARTTLS.\n"),
                       s->provider->name, s->host, s->port);
        if (s->tls == TLS_MODE_NONE && !host_is_loopback(s->host)) {
                fprintf(stderr, _("alcode init: --tls none is only allowed to this machine (localhost); "
                                  "the password would cross the network in clear.\n"));
                return -EINVAL;
        }
        return 0;
}

/* --ca-file: a readable file that alcode.conf can hold. */
static int check_ca_file(Setup *s) {
        int r;

        if (!opt.ca_file)
                return 0;
        r = path_expand(opt.ca_file, &s->ca_file);
        if (r >= 0 && (s->ca_file[0] != '/' || !ini_value_ok("ca_file", s->ca_file))) {
                fprintf(stderr, _("alcode init: alcode.conf cannot hold that --ca-file (a path on one "
                                  "line, absolute or from ~/, without \" ;\" in it), not '%s'.\n"),
                        opt.ca_file);
                return -EINVAL;
        }
        if (r < 0 || access(s->ca_file, R_OK) < 0) {
                fprintf(stderr, _("alcode init: cannot read the CA file '%s'.\n"), opt.ca_file);
                return -EINVAL;
        }
        return 0;
}

static int ask_server(Setup *s) {
        const char *domain = strrchr(s->email, '@') + 1;
        int r;

        s->provider = provider_for(domain);
        r = parse_server_options(s);
        if (r >= 0)
                r = ask_host(s, domain);
        if (r >= 0)
                r = choose_port_and_tls(s);
        if (r >= 0)
                r = check_ca_file(s);
        return r;
}

static int ask_user(Setup *s) {
        if (opt.user) {
                if (!ini_value_ok("user", opt.user)) {
                        fprintf(stderr, _("alcode init: alcode.conf cannot hold that --user (empty, blanks at "
                                          "its ends, several lines, \" ;\" in it, or too long).\n"));
                        return -EINVAL;
                }
                s->user = strdup(opt.user);
        } else if (s->provider && s->provider->login_is_local_part)
                s->user = strndup(s->email, strcspn(s->email, "@"));
        else if (s->provider || !s->interactive)
                s->user = strdup(s->email);
        else
                for (;;) {
                        int r = prompt_line(_("Login name"), s->email, &s->user);
                        if (r < 0 || ini_value_ok("user", s->user))
                                return r;
                        printf(_("alcode.conf cannot hold that login name (blanks at its ends, \" ;\" in it, or "
                                 "too long).\n"));
                        free(s->user);
                        s->user = NULL;
                }
        return s->user ? 0 : -ENOMEM;
}

static int ask_name(Setup *s) {
        if (arg_account) {
                if (!account_name_valid(arg_account)) {
                        fprintf(stderr, _("alcode init: '%s' cannot name an account (letters, digits, -_.@+).\n"),
                                arg_account);
                        return -EINVAL;
                }
                if (account_exists(s, arg_account)) {
                        fprintf(stderr, _("alcode init: %s already has an account '%s'.\n"), s->config_path,
                                arg_account);
                        return -EEXIST;
                }
                s->name = strdup(arg_account);
                return s->name ? 0 : -ENOMEM;
        }
        return default_account_name(s, &s->name);
}

static int ask_password_command(Setup *s) {
        for (;;) {
                int r = prompt_line(_("Command that prints the password (or the token)"), NULL,
                                    &s->password_command);
                if (r < 0)
                        return r;
                if (ini_value_ok("password_command", s->password_command))
                        return 0;
                printf(_("alcode.conf cannot hold that command (empty, too long, or with \" ;\" in it).\n"));
                free(s->password_command);
                s->password_command = NULL;
        }
}

/* The password itself (s->place is PLACE_KEYRING or PLACE_FILE). -EAGAIN: it cannot go in the
 * file, choose another place. */
static int ask_secret(Setup *s) {
        int r;

        erase_and_free(s->password);
        s->password = NULL;
        for (;;) {
                r = prompt_secret(s->provider && s->provider->secret == SECRET_APP_PASSWORD
                                          ? _("App password (it does not show as you type)")
                                          : _("Password (it does not show as you type)"),
                                  &s->password);
                if (r < 0)
                        return r;
                if (s->place == PLACE_FILE && !ini_value_ok("password", s->password))
                        printf(_("This password cannot be written in alcode.conf (blanks at its ends, \" ;\" in "
                                 "it, or too long):\nchoose the keyring or a command instead.\n"));
                else if (*s->password)
                        return 0;
                erase_and_free(s->password);
                s->password = NULL;
                if (s->place == PLACE_FILE)
                        return -EAGAIN;
        }
}

static int ask_password(Setup *s) {
        _cleanup_free_ char *keyring = find_program("secret-tool");
        unsigned choice;
        int r;

        if (s->provider && s->provider->hint)
                printf("\n%s\n", _(s->provider->hint));
        if (s->provider && s->provider->secret == SECRET_TOKEN)
                s->auth = AUTH_METHOD_XOAUTH2;
        if (opt.password_command) {
                if (!ini_value_ok("password_command", opt.password_command)) {
                        fprintf(stderr, _("alcode init: alcode.conf cannot hold that --password-command "
                                          "(empty, several lines, too long, or with \" ;\" in it).\n"));
                        return -EINVAL;
                }
                s->place = PLACE_COMMAND;
                s->password_command = strdup(opt.password_command);
                return s->password_command ? 0 : -ENOMEM;
        }
        if (!s->interactive) {
                fprintf(stderr, _("alcode init: --yes needs --password-command (a typed password needs a "
                                  "terminal).\n"));
                return -EINVAL;
        }
        if (s->auth == AUTH_METHOD_XOAUTH2) {
                s->place = PLACE_COMMAND;
                return ask_password_command(s);
        }

        printf(_("\nWhere should alcoded find the password?\n"));
        if (keyring)
                printf(_("  1  in your keyring (Secret Service, with secret-tool): recommended\n"));
        printf(_("  2  from a command that prints it (pass, a password manager...)\n"
                 "  3  written in alcode.conf, which only you can read\n"));
        if (!keyring)
                printf(_("(To keep it in your keyring, install secret-tool: sudo apt install libsecret-tools)\n"));
        for (;;) {
                r = prompt_number(_("Your choice"), 3, keyring ? 1 : 2, &choice);
                if (r < 0)
                        return r;
                if (choice != PLACE_KEYRING || keyring)
                        break;
        }
        s->place = (SecretPlace) choice;
        if (s->place == PLACE_COMMAND)
                return ask_password_command(s);
        return ask_secret(s);
}

/* ---- the connection test ---- */

static void explain_failure(const Setup *s, int r, const char *error) {
        switch (r) {
        case -EACCES:
                printf(_("The server refused the login (%s).\n"), strna(error));
                if (s->oauth.enabled)
                        printf(_("It refused the access token the provider gave: check that IMAP is on in your "
                                 "webmail's settings,\nand that your application may use IMAP (alcode.conf(5), "
                                 "OAUTH2).\n"));
                else if (s->provider && s->provider->secret == SECRET_APP_PASSWORD)
                        printf(_("%s wants an app password, not your usual password (see above).\n"),
                               s->provider->name);
                else
                        printf(_("Check the password, and in your webmail's settings that access by mail "
                                 "programs (IMAP) is on.\n"));
                break;
        case -EPERM:
                printf(_("The server's certificate was refused, so the password was not sent.\n%s\n"
                         "Someone may be impersonating the server, or it uses a certificate of its own: then\n"
                         "give its authority with --ca-file, or pin it with fingerprint = in alcode.conf(5).\n"),
                       strna(error));
                break;
        case -ENOKEY:
                printf(_("The password command failed: %s.\n"), strna(error));
                break;
        case -ECONNRESET:
                printf(_("%s.\nIs port %u the one for TLS from the start (993)? A STARTTLS port (143) needs --tls "
                         "starttls.\n"), strna(error), s->port);
                break;
        case -EPROTONOSUPPORT:
                printf(_("%s.\nTry port 993 (TLS from the start).\n"), strna(error));
                break;
        default:
                printf(_("Cannot reach the server: %s.\nCheck its name and port, and your connection.\n"),
                       error ?: strerror(-r));
        }
}

static int test_connection(Setup *s) {
        _cleanup_(imap_session_freep) ImapSession *session = NULL;
        _cleanup_free_ char *error = NULL;
        Account a = {
                .name = s->name, .host = s->host, .port = s->port, .tls = s->tls, .user = s->user,
                .password = s->place == PLACE_COMMAND ? NULL : s->password,
                .password_command = s->place == PLACE_COMMAND ? s->password_command : NULL,
                .auth = s->auth, .ca_file = s->ca_file,
        };
        ImapFolder *folders = NULL;
        size_t n = 0;
        int r;

        if (s->oauth.enabled)
                init_oauth2_account(&s->oauth, &a);

        printf(_("\nConnecting to %s port %u, checking its certificate...\n"), s->host, s->port);
        (void) fflush(stdout);
        r = imap_session_new(&a, INIT_TIMEOUT_SEC, &session);
        if (r >= 0)
                r = imap_session_connect(session, &error);
        if (r < 0) {
                explain_failure(s, r, error);
                return r;
        }
        r = imap_list(session, &folders, &n);
        if (r >= 0)
                printf(_("It works: the certificate is valid and the login accepted; %zu folders to search, "
                         "Spam and Trash included.\n"), n);
        else
                printf(_("It works: the certificate is valid and the login accepted.\n"));
        imap_folders_free(folders, n);
        imap_logout(session);
        return 0;
}

/* Tests until it works, the user gives up, or (without a terminal) once. */
static int test_loop(Setup *s) {
        for (unsigned attempt = 1;; attempt++) {
                bool again = false;
                int r = test_connection(s);
                if (r >= 0 || r == -ENOMEM)
                        return r;
                if (!s->interactive)
                        return r;
                if (r == -EACCES && s->place != PLACE_COMMAND && attempt < INIT_LOGIN_TRIES) {
                        r = prompt_yes_no(_("Type the password again?"), true, &again);
                        if (r < 0)
                                return r;
                        if (again) {
                                r = ask_secret(s);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                }
                r = prompt_yes_no(_("Write the configuration all the same?"), false, &again);
                if (r < 0)
                        return r;
                return again ? 0 : -ECANCELED;
        }
}

/* ---- OAuth2 ---- */

/* The sign-in, the connection test with its access token, then the refresh token kept. */
static int sign_in_oauth2(Setup *s) {
        Account a = { .name = s->name, .host = s->host, .port = s->port, .tls = s->tls, .user = s->user,
                      .ca_file = s->ca_file };
        int r;

        init_oauth2_account(&s->oauth, &a);
        r = init_oauth2_sign_in(&s->oauth, &a, s->email, s->interactive);
        if (r >= 0 && !opt.no_test)
                r = test_connection(s);
        if (r >= 0)
                r = init_oauth2_store(&s->oauth, &a, s->email);
        oauth2_forget(NULL);
        return r < 0 && r != -ENOMEM && r != -EINVAL ? -ECANCELED : r;
}

/* ---- the keyring ---- */

static int store_in_keyring(Setup *s) {
        _cleanup_free_ char *label = NULL;
        _cleanup_erase_ char *back = NULL;
        _cleanup_free_ char *error = NULL;
        Account a = { .name = s->name };
        int r;

        if (asprintf(&label, "alcode: %s", s->email) < 0 ||
            asprintf(&s->password_command, "secret-tool lookup alcode %s", s->name) < 0)
                return -ENOMEM;
        r = run_program(ARGV("secret-tool", "store", "--label", label, "alcode", s->name), s->password,
                        /* quiet= */ true);
        if (r == 0) {
                /* Read it back the way alcoded will. */
                a.password_command = s->password_command;
                r = secret_get(&a, &back, &error);
                if (r >= 0 && !streq(back, s->password))
                        r = -EBADMSG;
        }
        if (r == 0) {
                printf(_("The password is in your keyring; alcoded reads it with '%s'.\n"), s->password_command);
                s->in_keyring = true;
                return 0;
        }
        printf(_("The keyring did not take the password. Is a keyring running and unlocked (GNOME Keyring,\n"
                 "KeePassXC)?\n"));
        return -ENOKEY;
}

/* ---- the file ---- */

/* Writes text as comment lines, whatever line breaks a translation put in it. */
static void comment(FILE *f, const char *fmt, ...) _printf_(2, 3);
static void comment(FILE *f, const char *fmt, ...) {
        _cleanup_free_ char *text = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        for (const char *p = text; *p;) {
                size_t l = strcspn(p, "\n");
                fprintf(f, "# %.*s\n", (int) l, p);
                p += l + (p[l] == '\n');
        }
}

static void write_account(const Setup *s, FILE *f) {
        fprintf(f, "[account %s]\n", s->name);
        if (s->provider)
                comment(f, "%s", s->provider->name);
        fprintf(f, "host = %s\nport = %u\ntls = %s\nuser = %s\n", s->host, s->port, tls_mode_to_string(s->tls),
                s->user);
        if (s->oauth.enabled) {
                Account a = { .name = s->name };
                init_oauth2_account(&s->oauth, &a);
                comment(f, _("alcode signs in with OAuth2: 'alcode init --reauth %s' signs in again."), s->name);
                init_oauth2_write(&s->oauth, &a, f);
        } else if (s->auth != AUTH_METHOD_LOGIN)
                fprintf(f, "auth = %s\n", auth_method_to_string(s->auth));
        switch (s->oauth.enabled ? 0 : s->place) {
        case PLACE_KEYRING:
                comment(f, _("The password is in your keyring; 'secret-tool clear alcode %s' removes it."), s->name);
                fprintf(f, "password_command = %s\n", s->password_command);
                break;
        case PLACE_COMMAND:
                comment(f, _("This command prints the password (its first line)."));
                fprintf(f, "password_command = %s\n", s->password_command);
                break;
        case PLACE_FILE:
                comment(f, _("The password itself: alcode accepts it only while no one else can read this file."));
                fprintf(f, "password = %s\n", s->password);
                break;
        }
        if (s->ca_file)
                fprintf(f, "ca_file = %s\n", s->ca_file);
        comment(f, _("Folders to search, comma separated (globs): all of them by default, Spam and Trash\n"
                     "included. Mail older than 'since' (YYYY-MM-DD) is left alone."));
        fprintf(f, "; folders = *\n; exclude = Drafts\n; since = 2018-01-01\n");
}

static int config_text(const Setup *s, char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return -ENOMEM;
        if (s->existing) {
                fputs(s->existing, f);
                if (*s->existing && !endswith(s->existing, "\n"))
                        fputc('\n', f);
                fputc('\n', f);
                comment(f, _("Added by 'alcode init'."));
        } else {
                comment(f, _("alcode configuration, written by 'alcode init'. alcode.conf(5) describes every key;\n"
                             "'alcode check' checks the file. After a change: systemctl --user reload alcoded"));
                fputs("\n[alcode]\n", f);
                comment(f, _("Your employer's mail domains (HR), comma separated: the access codes and company\n"
                             "codes they send are trusted."));
                if (s->employer_domains)
                        fprintf(f, "employer_domains = %s\n", s->employer_domains);
                else
                        fputs("; employer_domains = mon-employeur.fr\n", f);
                comment(f, _("Desktop notifications, and whether they show the code itself."));
                fputs("; notify = yes\n; notify_show_code = yes\n\n", f);
        }
        write_account(s, f);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}

/* Whether the file read back holds the account as asked and nothing more: a value that slipped
 * past the checks above and added a line of its own would show here. */
static bool config_says(const Setup *s, const Config *c) {
        const Account *a = config_find_account(c, s->name);
        size_t before = s->existing_config ? s->existing_config->n_accounts : 0;

        if (!a || c->n_accounts != before + 1)
                return false;
        if (!streq_ptr(a->host, s->host) || !streq_ptr(a->user, s->user) || a->port != s->port ||
            a->tls != s->tls || !streq_ptr(a->ca_file, s->ca_file) || a->has_fingerprint ||
            !streq(a->folders[0], "*") || a->folders[1] || a->exclude[0] || a->since != 0)
                return false;
        if (s->oauth.enabled) {
                Account want = { .name = s->name };

                init_oauth2_account(&s->oauth, &want);
                /* The token file's path is expanded (~) when read: only its presence compares. */
                if (a->auth != want.auth || a->password || a->password_command ||
                    !streq_ptr(a->oauth2_provider, want.oauth2_provider) ||
                    !streq_ptr(a->oauth2_client_id, want.oauth2_client_id) ||
                    !streq_ptr(a->oauth2_client_secret, want.oauth2_client_secret) ||
                    !streq_ptr(a->oauth2_authorize_url, want.oauth2_authorize_url) ||
                    !streq_ptr(a->oauth2_token_url, want.oauth2_token_url) ||
                    !streq_ptr(a->oauth2_device_url, want.oauth2_device_url) ||
                    !streq_ptr(a->oauth2_scope, want.oauth2_scope) || !a->oauth2_token_file != !want.oauth2_token_file)
                        return false;
        } else if (a->auth != s->auth ||
                   (s->place == PLACE_FILE ? !streq_ptr(a->password, s->password) || a->password_command
                                           : !streq_ptr(a->password_command, s->password_command) || a->password))
                return false;
        if (!s->existing) {
                _cleanup_strv_free_ char **domains = NULL;
                size_t i = 0;

                if (strv_split_comma(s->employer_domains ?: "", &domains) < 0)
                        return false;
                for (; domains[i]; i++)
                        if (!c->employer_domains[i] || !strcaseeq(c->employer_domains[i], domains[i]))
                                return false;
                if (c->employer_domains[i])
                        return false;
                /* The database and the rule folders are the defaults. */
                if (strv_length(c->rule_dirs) > 2)
                        return false;
        }
        return true;
}

/* Writes the file next to its destination, checks it as alcoded will read it, and only then
 * puts it in place: renameat2(RENAME_NOREPLACE) for a new file (someone else's file created in
 * the meantime is never replaced), rename() over the old one when appending. */
static int write_config(const Setup *s) {
        _cleanup_free_ char *text = NULL, *tmp = NULL;
        _cleanup_(config_freep) Config *check = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        mode_t mode = s->existing ? s->existing_mode & 0777 : 0600;
        int fd, r;

        r = config_text(s, &text);
        if (r < 0)
                return r;
        if (s->place == PLACE_FILE && (mode & 077)) {
                printf(_("%s now holds a password: only you can read it from now on.\n"), s->config_path);
                mode &= 0700;
        }
        r = mkdir_parents(s->config_path, 0700);
        if (r < 0) {
                fprintf(stderr, _("alcode init: cannot create the folder of %s: %s\n"), s->config_path, strerror(-r));
                return r;
        }
        if (asprintf(&tmp, "%s.XXXXXX", s->config_path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                fprintf(stderr, _("alcode init: cannot write next to %s: %s\n"), s->config_path, strerror(-r));
                return r;
        }
        r = fchmod(fd, mode) < 0 ? -errno : 0;
        if (r >= 0) {
                size_t l = strlen(text);
                ssize_t n = write(fd, text, l);
                r = n < 0 ? -errno : (size_t) n != l ? -EIO : fsync(fd) < 0 ? -errno : 0;
        }
        explicit_bzero(text, strlen(text)); /* it may hold the password */
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0) {
                r = config_load(tmp, &check, &errors);
                STRV_FOREACH(e, errors)
                        fprintf(stderr, "%s\n", *e);
                if (r < 0)
                        fprintf(stderr, _("alcode init: the configuration it wrote does not load; this is a bug.\n"));
                else if (!config_says(s, check)) {
                        fprintf(stderr, _("alcode init: the configuration it wrote does not say what was asked; "
                                          "this is a bug.\n"));
                        r = -EBADMSG;
                }
        } else
                fprintf(stderr, _("alcode init: cannot write %s: %s\n"), tmp, strerror(-r));
        if (r >= 0) {
                if (s->existing)
                        r = rename(tmp, s->config_path) < 0 ? -errno : 0;
                else
                        r = renameat2(AT_FDCWD, tmp, AT_FDCWD, s->config_path, RENAME_NOREPLACE) < 0 ? -errno : 0;
                if (r < 0)
                        fprintf(stderr, _("alcode init: cannot write %s: %s\n"), s->config_path, strerror(-r));
        }
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

static int read_existing(Setup *s) {
        _cleanup_strv_free_ char **errors = NULL;
        struct stat sb;
        size_t size = 0;
        FILE *f;
        int r;

        f = fopen(s->config_path, "re");
        if (!f) {
                if (errno == ENOENT)
                        return 0;
                r = -errno;
                fprintf(stderr, _("alcode init: cannot read %s: %s\n"), s->config_path, strerror(-r));
                return r;
        }
        if (fstat(fileno(f), &sb) < 0 || !(s->existing = calloc(1, (size_t) sb.st_size + 1))) {
                (void) fclose(f);
                return -ENOMEM;
        }
        s->existing_mode = sb.st_mode;
        size = fread(s->existing, 1, (size_t) sb.st_size, f);
        s->existing[size] = 0;
        (void) fclose(f);
        r = config_load(s->config_path, &s->existing_config, &errors);
        if (r < 0) {
                STRV_FOREACH(e, errors)
                        fprintf(stderr, "%s\n", *e);
                fprintf(stderr, _("alcode init: fix %s first ('alcode check' shows what is wrong).\n"),
                        s->config_path);
                return -EINVAL;
        }
        return 1;
}

/* --employer-domains, checked before anything else is asked or tested. */
static int check_employer_option(void) {
        _cleanup_strv_free_ char **l = NULL;

        if (!opt.employer_domains || !*opt.employer_domains)
                return 0;
        if (strv_split_comma(opt.employer_domains, &l) < 0)
                return -ENOMEM;
        STRV_FOREACH(x, l)
                if (!domain_valid(*x)) {
                        fprintf(stderr, _("alcode init: --employer-domains takes domain names separated "
                                          "by commas (mon-employeur.fr), not '%s'.\n"), *x);
                        return -EINVAL;
                }
        if (!ini_value_ok("employer_domains", opt.employer_domains)) {
                fprintf(stderr, _("alcode init: --employer-domains takes domain names separated by "
                                  "commas, on one line.\n"));
                return -EINVAL;
        }
        return 0;
}

static int ask_employer(Setup *s) {
        _cleanup_free_ char *d = NULL;

        if (s->existing)
                return 0; /* [alcode] is the user's already */
        if (opt.employer_domains)
                d = strdup(opt.employer_domains);
        else if (s->interactive) {
                printf(_("\nSince January 2026, employers with more than 50 employees e-mail each of them an access\n"
                         "code. alcode trusts the codes from your employer's mail domain once it knows it.\n"));
                for (;;) {
                        _cleanup_strv_free_ char **l = NULL;
                        bool ok = true;
                        int r = prompt_line(_("Your employer's mail domain (for example mon-employeur.fr), or "
                                              "empty if you do not know it"), NULL, &d);
                        if (r < 0)
                                return r;
                        if (strv_split_comma(d, &l) < 0)
                                return -ENOMEM;
                        STRV_FOREACH(x, l)
                                ok = ok && domain_valid(*x);
                        if (ok)
                                break;
                        free(d);
                        d = NULL;
                        printf(_("That is not a domain name; type the part after '@' in your work e-mail "
                                 "address.\n"));
                }
        }
        if (d && *d)
                s->employer_domains = TAKE_PTR(d);
        return 0;
}

/* ---- the service ---- */

static void offer_service(const Setup *s) {
        bool yes = true;
        int r;

        if (opt.no_enable)
                yes = false;
        else if (s->interactive) {
                r = prompt_yes_no(_("\nStart alcoded now and at every login (systemctl --user enable alcoded)?"),
                                  true, &yes);
                if (r < 0)
                        yes = false;
        }
        if (yes) {
                r = run_program(ARGV("systemctl", "--user", "enable", "alcoded.service"), NULL, false);
                /* Started, or told to read the configuration again when it runs already. */
                if (r == 0)
                        r = run_program(ARGV("systemctl", "--user", "reload-or-restart", "alcoded.service"), NULL,
                                        false);
                if (r == 0) {
                        printf(_("alcoded is running; 'systemctl --user status alcoded' shows how it is doing.\n"));
                        return;
                }
                if (r < 0)
                        printf(_("alcoded could not be started: cannot run systemctl (%s).\n"), strerror(-r));
                else
                        printf(_("alcoded could not be started with systemctl (see above).\n"));
        }
        printf(_("To scan once by hand: alcoded --once\n"
                 "To start it at every login: systemctl --user enable --now alcoded\n"));
}

/* The config to write: --config, else the default path. */
static int find_config_path(Setup *s) {
        int r;

        if (arg_config)
                s->config_path = strdup(arg_config);
        else if ((r = config_default_path(&s->config_path)) < 0 && r != -ENOMEM) {
                fprintf(stderr, _("alcode init: $HOME is not set; give --config FILE.\n"));
                return -EINVAL;
        }
        return s->config_path ? 0 : -ENOMEM;
}

/* What happens, and whether to add an account to an existing config: -ECANCELED when not. */
static int greet(const Setup *s) {
        bool go_on = true;
        int r;

        if (!s->interactive)
                return 0;
        printf(_("This sets up alcode for one mailbox. Nothing leaves this computer except the "
                 "connection to\nyour mail server, and nothing is written before the end "
                 "(Ctrl-C stops).\n\n"));
        if (!s->existing)
                return 0;
        printf(_("%s already exists (%zu account(s)).\n"), s->config_path, s->existing_config->n_accounts);
        r = prompt_yes_no(_("Add a new account to it?"), true, &go_on);
        return r < 0 || !go_on ? -ECANCELED : 0; /* Ctrl-D too: nothing was written */
}

/* The password and where it goes, tested unless --no-test; asked again when it cannot go where
 * the user chose (the file, the keyring). */
static int ask_and_test_password(Setup *s) {
        int r = 0;

        while (r >= 0) {
                r = ask_password(s);
                if (r >= 0 && !opt.no_test)
                        r = test_loop(s);
                if (r == -EAGAIN) {
                        r = 0; /* that password cannot go in the file: choose another place */
                        continue;
                }
                if (r < 0 || s->place != PLACE_KEYRING)
                        break;
                r = store_in_keyring(s);
                if (r != -ENOKEY || !s->interactive)
                        break;
                /* The keyring failed: choose another place (the password is asked again). */
                erase_and_free(s->password);
                s->password = NULL;
                free(s->password_command);
                s->password_command = NULL;
                r = 0;
        }
        return r;
}

/* Every question, in order; nothing is written yet. */
static int ask_everything(Setup *s) {
        int r;

        r = check_employer_option();
        if (r >= 0)
                r = ask_email(s);
        if (r >= 0)
                r = ask_server(s);
        if (r >= 0)
                r = ask_user(s);
        if (r >= 0)
                r = ask_name(s);
        if (r >= 0)
                r = init_oauth2_ask(&s->oauth, s->provider ? s->provider->host : s->host, s->existing_config,
                                    s->interactive);
        if (r > 0)
                r = sign_in_oauth2(s);
        else if (r >= 0)
                r = ask_and_test_password(s);
        if (r >= 0)
                r = ask_employer(s);
        return r;
}

/* The exit code for a failure r of the steps above (each printed its error). */
static int exit_code(const Setup *s, int r) {
        if (r == -ECANCELED && s->in_keyring) {
                printf(_("Stopped; the configuration was not written, but the password is in your keyring "
                         "('secret-tool clear alcode %s' removes it).\n"), s->name);
                return 1;
        }
        if (r == -ECANCELED) {
                printf(_("Stopped; nothing was written.\n"));
                return 1;
        }
        if (r == -ENOMEM)
                return log_oom(), 1;
        return r == -EINVAL || r == -EEXIST ? EXIT_BAD_INPUT : 1;
}

int verb_init(_unused_ int argc, _unused_ char *argv[]) {
        _cleanup_(setup_done) Setup s = { .auth = AUTH_METHOD_LOGIN };
        int r;

        s.interactive = !opt.yes;
        r = find_config_path(&s);
        if (r < 0)
                return exit_code(&s, r);
        if (init_oauth2_reauth_account())
                /* The sign-in happens in the browser: no terminal needed. */
                return init_oauth2_reauth(s.config_path, s.interactive && isatty(STDIN_FILENO));
        if (s.interactive && !isatty(STDIN_FILENO)) {
                fprintf(stderr, _("alcode init: the questions need a terminal; without one, give the settings "
                                  "as options with --yes (see 'man alcode').\n"));
                return EXIT_BAD_INPUT;
        }
        r = read_existing(&s);
        if (r < 0)
                return 1;
        r = greet(&s);
        if (r >= 0)
                r = ask_everything(&s);
        if (r < 0)
                return exit_code(&s, r);

        r = write_config(&s);
        if (r < 0)
                return 1;
        if (s.existing)
                printf(_("\nAccount '%s' (%s) added to %s.\n"), s.name, s.email, s.config_path);
        else
                printf(_("\nWrote %s with the account '%s' (%s).\n"), s.config_path, s.name, s.email);
        offer_service(&s);
        printf(_("\nOnce alcoded has read your mail, 'alcode list' shows the codes it found (your code\n"
                 "spécifique, the code entreprise, access codes from HR...). 'alcode scan FILE' reads saved\n"
                 "mail (.eml, mbox) too.\n"));
        return 0;
}
