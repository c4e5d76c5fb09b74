/* alcode.conf → an immutable Config. Keys are described once in config_items[] {section, key,
 * parser, ltype, offset} and dispatched by conf-parser.c, as the rule files' keys are; the
 * parser of each key validates its value and reports "file:line: key 'x': expected ..."
 * itself. Checks that need the whole account (host missing, tls = none to a remote host) run
 * after the file is read and point at the [account] header line. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "build-config.h"
#include "conf-parser.h"
#include "config.h"
#include "fs-util.h"
#include "ini-file.h"
#include "oauth2.h"
#include "parse-util.h"
#include "strv.h"

static const struct {
        const char *string;
} tls_mode_table[_TLS_MODE_MAX] = {
        [TLS_MODE_IMPLICIT] = { "implicit" },
        [TLS_MODE_STARTTLS] = { "starttls" },
        [TLS_MODE_NONE] = { "none" },
};

static const struct {
        const char *string;
} auth_method_table[_AUTH_METHOD_MAX] = {
        [AUTH_METHOD_LOGIN] = { "login" },
        [AUTH_METHOD_PLAIN] = { "plain" },
        [AUTH_METHOD_XOAUTH2] = { "xoauth2" },
        [AUTH_METHOD_OAUTHBEARER] = { "oauthbearer" },
        [AUTH_METHOD_OAUTH2] = { "oauth2" },
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(tls_mode, TlsMode, tls_mode_table);
DEFINE_PRIVATE_STRING_TABLE_LOOKUP_FROM_STRING_CASE(tls_mode, TlsMode, tls_mode_table);
DEFINE_STRING_TABLE_LOOKUP_TO_STRING(auth_method, AuthMethod, auth_method_table);
DEFINE_PRIVATE_STRING_TABLE_LOOKUP_FROM_STRING_CASE(auth_method, AuthMethod, auth_method_table);

int config_default_path(char **ret) {
        return user_path(USER_DIR_CONFIG, "alcode/alcode.conf", ret);
}

bool host_is_loopback(const char *host) {
        struct in_addr a4;
        struct in6_addr a6;

        if (!host)
                return false;
        if (strcaseeq(host, "localhost") || endswith(host, ".localhost"))
                return true;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

bool host_valid(const char *host) {
        struct in_addr a4;
        struct in6_addr a6;
        size_t label = 0, l;

        if (!host)
                return false;
        if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
                return true;
        /* A DNS name: labels of letters, digits, '-' and '_' (some internal names have one),
         * 1 to 63 long, joined by dots. Internationalised names go in their xn-- form. */
        l = strlen(host);
        if (l == 0 || l > 253)
                return false;
        for (const char *p = host; *p; p++) {
                if (*p == '.') {
                        if (label == 0)
                                return false;
                        label = 0;
                        continue;
                }
                if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
                        return false;
                if (++label > 63)
                        return false;
        }
        return label > 0;
}

static void account_done(Account *a) {
        free(a->name);
        free(a->host);
        free(a->user);
        free(a->password_command);
        erase_and_free(a->password);
        free(a->ca_file);
        strv_free(a->folders);
        strv_free(a->exclude);
        strv_free(a->idle);
        free(a->oauth2_provider);
        free(a->oauth2_client_id);
        erase_and_free(a->oauth2_client_secret);
        free(a->oauth2_authorize_url);
        free(a->oauth2_token_url);
        free(a->oauth2_device_url);
        free(a->oauth2_scope);
        free(a->oauth2_token_file);
        *a = (Account) {};
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->database);
        strv_free(c->rule_dirs);
        strv_free(c->employer_domains);
        for (size_t i = 0; i < c->n_accounts; i++)
                account_done(&c->accounts[i]);
        free(c->accounts);
        strmap_done(&c->account_index);
        free(c);
        return NULL;
}

const Account *config_find_account(const Config *c, const char *name) {
        size_t i;

        return strmap_get(&c->account_index, name, &i) ? &c->accounts[i] : NULL;
}

int config_user_addresses(const Config *c, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0, allocated = 0;

        /* strv_push(): strv_extend() would count the list at each account. */
        for (size_t i = 0; i < c->n_accounts; i++)
                if (c->accounts[i].user && strchr(c->accounts[i].user, '@') &&
                    strv_push(&l, &n, &allocated, strdup(c->accounts[i].user)) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

static bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

bool account_equal(const Account *a, const Account *b) {
        return streq_ptr(a->name, b->name) && streq_ptr(a->host, b->host) && a->port == b->port &&
               a->tls == b->tls && streq_ptr(a->user, b->user) &&
               streq_ptr(a->password_command, b->password_command) &&
               streq_ptr(a->password, b->password) && a->auth == b->auth &&
               streq_ptr(a->ca_file, b->ca_file) && a->has_fingerprint == b->has_fingerprint &&
               memcmp(a->fingerprint, b->fingerprint, sizeof a->fingerprint) == 0 &&
               strv_equal(a->folders, b->folders) && strv_equal(a->exclude, b->exclude) &&
               a->since == b->since && strv_equal(a->idle, b->idle) &&
               a->poll_interval == b->poll_interval && streq_ptr(a->oauth2_provider, b->oauth2_provider) &&
               streq_ptr(a->oauth2_client_id, b->oauth2_client_id) &&
               streq_ptr(a->oauth2_client_secret, b->oauth2_client_secret) &&
               streq_ptr(a->oauth2_authorize_url, b->oauth2_authorize_url) &&
               streq_ptr(a->oauth2_token_url, b->oauth2_token_url) &&
               streq_ptr(a->oauth2_device_url, b->oauth2_device_url) &&
               streq_ptr(a->oauth2_scope, b->oauth2_scope) && streq_ptr(a->oauth2_token_file, b->oauth2_token_file);
}

/* ---- key parsers ---- */

typedef struct ParseState {
        Config *config;
        Account *account;  /* the [account] whose keys are being read */
        bool file_private; /* not readable by group or others */
        char **rules_extra;
        size_t accounts_allocated;
        /* Keys already set (bit i: the table's key i), to catch duplicates: in [alcode], and in
         * the last [account] (only the last one can take keys: another with the same name
         * further down is a duplicate account). */
        uint64_t global_keys_set, account_keys_set;
} ParseState;

static int key_error(IniFile *f, const char *key, const char *fmt, ...) _printf_(3, 4);
static int key_error(IniFile *f, const char *key, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        msg = vasprintf_safe(fmt, ap);
        va_end(ap);
        return msg ? ini_file_error(f, 0, "key '%s': %s", key, msg) : -ENOMEM;
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_string) {
        char **s = data;

        if (isempty(value))
                return key_error(f, key, "expected a value");
        /* A carriage return or a tab would reach the server inside a command (the login). */
        if (has_control(value))
                return key_error(f, key, "control character (such as a carriage return) in the value");
        free(*s);
        *s = strdup(value);
        return *s ? 0 : -ENOMEM;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_path) {
        char **s = data;
        char *p;
        int r;

        if (isempty(value))
                return key_error(f, key, "expected a path");
        r = path_expand(value, &p);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return key_error(f, key, "cannot expand '%s' ($HOME is not set)", value);
        if (p[0] != '/') {
                free(p);
                return key_error(f, key, "expected an absolute path (or ~/...), got '%s'", value);
        }
        free(*s);
        *s = p;
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_bool) {
        int b = parse_boolean(value);

        if (b < 0)
                return key_error(f, key, "expected yes or no, got '%s'", value);
        *(bool *) data = b;
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_list) {
        char ***l = data;
        char **n;
        int r;

        r = strv_split_comma(value, &n);
        if (r < 0)
                return r;
        strv_free(*l);
        *l = n;
        return 0;
}

static bool glob_valid(const char *g) {
        int depth = 0;

        /* fnmatch() treats a lone '[' as a literal; a user who wrote one meant a class. */
        for (const char *p = g; *p; p++) {
                if (*p == '\\' && p[1])
                        p++;
                else if (*p == '[')
                        depth++;
                else if (*p == ']' && depth > 0)
                        depth--;
        }
        return depth == 0 && *g;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_globs) {
        int r = config_parse_list(f, key, value, ltype, data, userdata);

        if (r < 0)
                return r;
        STRV_FOREACH(g, *(char ***) data)
                if (!glob_valid(*g))
                        return key_error(f, key, "invalid folder pattern '%s' (unbalanced '[')", *g);
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_domains) {
        int r = config_parse_list(f, key, value, ltype, data, userdata);

        if (r < 0)
                return r;
        for (char **d = *(char ***) data; *d; d++) {
                char *n;

                r = domain_normalize(*d, &n);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return key_error(f, key, "invalid domain '%s'", *d);
                free(*d);
                *d = n;
        }
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_host) {
        if (!host_valid(value))
                return key_error(f, key, "expected a server name (imap.example.org) or an IP address, "
                                          "got '%s'", value);
        return config_parse_string(f, key, value, ltype, data, userdata);
}

static CONFIG_PARSER_PROTOTYPE(config_parse_port) {
        if (parse_port(value, data) < 0)
                return key_error(f, key, "expected a port number 1-65535, got '%s'", value);
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_seconds) {
        unsigned v;

        if (parse_unsigned(value, 86400, &v) < 0 || v < 10)
                return key_error(f, key, "expected seconds between 10 and 86400, got '%s'", value);
        *(unsigned *) data = v;
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_days) {
        unsigned v;

        if (parse_unsigned(value, 3650, &v) < 0)
                return key_error(f, key, "expected a number of days between 0 and 3650, got '%s'", value);
        *(int *) data = (int) v;
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_tls) {
        TlsMode m = tls_mode_from_string(value);

        if (m < 0)
                return key_error(f, key, "expected implicit, starttls or none, got '%s'", value);
        *(TlsMode *) data = m;
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_auth) {
        AuthMethod m = auth_method_from_string(value);

        if (m < 0)
                return key_error(f, key, "expected login, plain, oauth2, xoauth2 or oauthbearer, got '%s'", value);
        *(AuthMethod *) data = m;
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_https_url) {
        const char *host = startswith(value, "https://");

        if (!host || !*host || strpbrk(value, " \t\"<>"))
                return key_error(f, key, "expected an https:// address, got '%s'", value);
        return config_parse_string(f, key, value, ltype, data, userdata);
}

static CONFIG_PARSER_PROTOTYPE(config_parse_oauth2_provider) {
        if (!oauth2_preset(value))
                return key_error(f, key, "expected one of " OAUTH2_PRESET_NAMES ", got '%s'", value);
        return config_parse_string(f, key, value, ltype, data, userdata);
}

/* YYYY-MM-DD exactly, and a day that exists: strptime() takes "2026-2-3" and February 30th,
 * which timegm() then turns into March 2nd. */
static CONFIG_PARSER_PROTOTYPE(config_parse_since) {
        static const char shape[] = "dddd-dd-dd";
        struct tm tm = {}, back;
        time_t t;

        for (size_t i = 0; i < sizeof shape - 1; i++)
                if (shape[i] == 'd' ? !isdigit((unsigned char) value[i]) : value[i] != shape[i])
                        goto invalid;
        if (value[sizeof shape - 1] != 0)
                goto invalid;
        tm.tm_year = atoi(value) - 1900;
        tm.tm_mon = atoi(value + 5) - 1;
        tm.tm_mday = atoi(value + 8);
        if (tm.tm_year < 70)
                goto invalid;
        back = tm;
        t = timegm(&back); /* normalises back: February 30th becomes March 2nd */
        if (t == (time_t) -1 || back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon || back.tm_mday != tm.tm_mday)
                return key_error(f, key, "no such day: '%s'", value);
        *(int64_t *) data = (int64_t) t;
        return 0;
invalid:
        return key_error(f, key, "expected a date YYYY-MM-DD (1970 or later), got '%s'", value);
}

/* data: the Account's fingerprint; userdata's account gets has_fingerprint. */
static CONFIG_PARSER_PROTOTYPE(config_parse_fingerprint) {
        ParseState *st = userdata;
        uint8_t *fp = data;
        const char *p = startswith_no_case(value, "sha256:");
        size_t n = 0;

        if (!p)
                return key_error(f, key, "expected sha256:XX:XX:... (64 hex digits), got '%s'", value);
        for (; *p; p++) {
                int hi, lo;
                if (*p == ':' || *p == ' ')
                        continue;
                if (!isxdigit((unsigned char) p[0]) || !isxdigit((unsigned char) p[1]) || n >= 32)
                        return key_error(f, key, "expected sha256: and 64 hex digits");
                hi = isdigit((unsigned char) p[0]) ? p[0] - '0' : tolower((unsigned char) p[0]) - 'a' + 10;
                lo = isdigit((unsigned char) p[1]) ? p[1] - '0' : tolower((unsigned char) p[1]) - 'a' + 10;
                fp[n++] = (uint8_t) (hi << 4 | lo);
                p++;
        }
        if (n != 32)
                return key_error(f, key, "expected sha256: and 64 hex digits, got %zu bytes", n);
        st->account->has_fingerprint = true;
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(config_parse_command) {
        ParseState *st = userdata;

        /* Whether it can run is secret_check_accounts()'s to say: no file system here. */
        st->account->password_command_line = ini_file_line(f);
        return config_parse_string(f, key, value, ltype, data, userdata);
}

static CONFIG_PARSER_PROTOTYPE(config_parse_password) {
        ParseState *st = userdata;

        if (!st->file_private)
                return key_error(f, key, "refused: the file can be read by other users; "
                                          "chmod 600 it or use password_command");
        erase_and_free(*(char **) data);
        *(char **) data = strdup(value);
        return *(char **) data ? 0 : -ENOMEM;
}

/* One folder of the rules list. */
static CONFIG_PARSER_PROTOTYPE(config_parse_rules_dir) {
        ParseState *st = userdata;
        char *p = NULL;
        int r;

        r = config_parse_path(f, key, value, /* ltype= */ 0, &p, userdata);
        if (r < 0 || !p) {
                free(p);
                return r < 0 ? r : 1;
        }
        return strv_consume(&st->rules_extra, p);
}

static CONFIG_PARSER_PROTOTYPE(config_parse_rules) {
        return config_parse_words(f, key, value, ltype, data, userdata, config_parse_rules_dir);
}

/* Every key of alcode.conf: [alcode] keys fill the Config, [account NAME] keys the Account. */
static const ConfigTableItem config_items[] = {
        { "alcode", "database", config_parse_path, 0, offsetof(Config, database) },
        { "alcode", "rules", config_parse_rules, 0, 0 },
        { "alcode", "notify", config_parse_bool, 0, offsetof(Config, notify) },
        { "alcode", "notify_show_code", config_parse_bool, 0, offsetof(Config, notify_show_code) },
        { "alcode", "employer_domains", config_parse_domains, 0, offsetof(Config, employer_domains) },
        { "alcode", "otp_retention", config_parse_days, 0, offsetof(Config, otp_retention_days) },
        { "account", "host", config_parse_host, 0, offsetof(Account, host) },
        { "account", "port", config_parse_port, 0, offsetof(Account, port) },
        { "account", "tls", config_parse_tls, 0, offsetof(Account, tls) },
        { "account", "user", config_parse_string, 0, offsetof(Account, user) },
        { "account", "password_command", config_parse_command, 0, offsetof(Account, password_command) },
        { "account", "password", config_parse_password, 0, offsetof(Account, password) },
        { "account", "auth", config_parse_auth, 0, offsetof(Account, auth) },
        { "account", "ca_file", config_parse_path, 0, offsetof(Account, ca_file) },
        { "account", "fingerprint", config_parse_fingerprint, 0, offsetof(Account, fingerprint) },
        { "account", "folders", config_parse_globs, 0, offsetof(Account, folders) },
        { "account", "exclude", config_parse_globs, 0, offsetof(Account, exclude) },
        { "account", "since", config_parse_since, 0, offsetof(Account, since) },
        { "account", "idle", config_parse_globs, 0, offsetof(Account, idle) },
        { "account", "poll_interval", config_parse_seconds, 0, offsetof(Account, poll_interval) },
        { "account", "oauth2_provider", config_parse_oauth2_provider, 0, offsetof(Account, oauth2_provider) },
        { "account", "oauth2_client_id", config_parse_string, 0, offsetof(Account, oauth2_client_id) },
        { "account", "oauth2_client_secret", config_parse_string, 0, offsetof(Account, oauth2_client_secret) },
        { "account", "oauth2_authorize_url", config_parse_https_url, 0, offsetof(Account, oauth2_authorize_url) },
        { "account", "oauth2_token_url", config_parse_https_url, 0, offsetof(Account, oauth2_token_url) },
        { "account", "oauth2_device_url", config_parse_https_url, 0, offsetof(Account, oauth2_device_url) },
        { "account", "oauth2_scope", config_parse_string, 0, offsetof(Account, oauth2_scope) },
        { "account", "oauth2_token_file", config_parse_path, 0, offsetof(Account, oauth2_token_file) },
};
_Static_assert(ELEMENTSOF(config_items) <= 64, "one bit per key");

bool account_name_valid(const char *n) {
        if (!*n || strlen(n) > 64)
                return false;
        for (const char *p = n; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("-_.@+", *p))
                        return false;
        return true;
}

/* The Account that [account NAME] keys go to: the last one when NAME is its name, else a new
 * one (NULL and an error reported when NAME is invalid or already used). */
static int account_for_section(ParseState *st, IniFile *f, const char *name, Account **ret) {
        Config *c = st->config;
        Account *a = c->n_accounts > 0 ? &c->accounts[c->n_accounts - 1] : NULL;

        name += strspn(name, " ");
        if (a && streq(a->name, name)) {
                *ret = a;
                return 0;
        }
        *ret = NULL;
        if (!account_name_valid(name))
                return ini_file_error(f, 0, "invalid account name '%s' (letters, digits, -_.@+)", name);
        if (config_find_account(c, name))
                return ini_file_error(f, 0, "duplicate account '%s'", name);
        if (c->n_accounts == st->accounts_allocated) {
                size_t n = MAX(st->accounts_allocated * 2, (size_t) 4);
                Account *l = reallocarray(c->accounts, n, sizeof(Account));
                if (!l)
                        return -ENOMEM;
                c->accounts = l;
                st->accounts_allocated = n;
        }
        a = &c->accounts[c->n_accounts];
        *a = (Account) { .name = strdup(name), .line = ini_file_section_line(f), .tls = TLS_MODE_IMPLICIT,
                         .auth = AUTH_METHOD_LOGIN, .poll_interval = 300 };
        if (!a->name)
                return -ENOMEM;
        c->n_accounts++;
        if (strmap_put(&c->account_index, a->name, c->n_accounts - 1) < 0)
                return -ENOMEM;
        st->account_keys_set = 0;
        *ret = a;
        return 0;
}

static int handler(IniFile *f, const char *section, const char *key, const char *value,
                   bool continuation, void *userdata) {
        ParseState *st = userdata;
        const ConfigTableItem *item;
        const char *name, *kind;
        void *object;
        uint64_t *set;
        int r;

        if (continuation)
                return ini_file_error(f, 0, "key '%s': values do not continue on indented lines", key);
        if (streq(section, "alcode")) {
                kind = "alcode";
                object = st->config;
                set = &st->global_keys_set;
        } else if ((name = startswith(section, "account "))) {
                r = account_for_section(st, f, name, &st->account);
                if (!st->account)
                        return r;
                kind = "account";
                object = st->account;
                set = &st->account_keys_set;
        } else if (streq(section, ""))
                return ini_file_error(f, 0, "key '%s' outside of a section ([alcode] or [account NAME])", key);
        else
                return ini_file_error(f, 0, "unknown section [%s] (expected [alcode] or [account NAME])", section);

        item = config_table_find(config_items, ELEMENTSOF(config_items), kind, key);
        if (!item)
                return ini_file_error(f, 0, "unknown key '%s' in [%s]", key, section);
        if (*set & UINT64_C(1) << (item - config_items))
                return ini_file_error(f, 0, "key '%s' set twice in [%s]", key, section);
        *set |= UINT64_C(1) << (item - config_items);
        return config_table_parse(item, f, key, value, object, st);
}

/* Errors of the whole-account checks, appended without counting the list each time: a file
 * of 20,000 accounts may have as many. */
typedef struct ErrorList {
        char ***l;
        size_t n, allocated;
} ErrorList;

#define error_add(e, ...) strv_pushf((e)->l, &(e)->n, &(e)->allocated, __VA_ARGS__)

/* An account with built-in OAuth2: a client id, a token endpoint (from the preset or set), and
 * no password besides. auth defaults to oauth2 (chosen from the server's capabilities). */
static int check_oauth2(Config *c, Account *a, ErrorList *el) {
        const char *p = c->path;
        OAuth2Client oc;

        if (!a->oauth2_client_id)
                return error_add(el, "%s:%u: account '%s': missing 'oauth2_client_id' (register alcode "
                                            "with your provider: see alcode.conf(5))", p, a->line, a->name);
        if (oauth2_client_from_account(a, &oc) < 0)
                return error_add(el, "%s:%u: account '%s': missing 'oauth2_token_url' (or "
                                            "oauth2_provider = " OAUTH2_PRESET_NAMES ")", p, a->line, a->name);
        if (a->password || a->password_command)
                return error_add(el, "%s:%u: account '%s': with oauth2_client_id alcode signs in itself: "
                                            "remove 'password'/'password_command'", p, a->line, a->name);
        if (!auth_is_oauth(a->auth))
                a->auth = AUTH_METHOD_OAUTH2;
        return 0;
}

static int check_accounts(Config *c, char ***errors) {
        ErrorList el = { .l = errors, .n = strv_length(*errors) };

        for (size_t i = 0; i < c->n_accounts; i++) {
                Account *a = &c->accounts[i];
                const char *p = c->path;
                int r = 0;

                if (!a->host)
                        r = error_add(&el, "%s:%u: account '%s': missing 'host'", p, a->line, a->name);
                else if (a->tls == TLS_MODE_NONE && !host_is_loopback(a->host))
                        r = error_add(&el, "%s:%u: account '%s': tls = none is only allowed to a "
                                                 "loopback host, not '%s'", p, a->line, a->name, a->host);
                if (r >= 0 && !a->user)
                        r = error_add(&el, "%s:%u: account '%s': missing 'user'", p, a->line, a->name);
                if (r >= 0 && account_uses_oauth2(a))
                        r = check_oauth2(c, a, &el);
                else if (r >= 0 && !a->password && !a->password_command)
                        r = error_add(&el, "%s:%u: account '%s': missing 'password_command' (or 'password')",
                                         p, a->line, a->name);
                if (r >= 0 && a->password && a->password_command)
                        r = error_add(&el, "%s:%u: account '%s': set 'password' or 'password_command', "
                                                 "not both", p, a->line, a->name);
                if (r >= 0 && auth_is_oauth(a->auth) && !a->password_command && !account_uses_oauth2(a))
                        r = error_add(&el, "%s:%u: account '%s': auth = %s needs oauth2_provider and "
                                                 "oauth2_client_id (built-in sign-in, see alcode.conf(5)), or a "
                                                 "password_command that prints the access token",
                                         p, a->line, a->name, auth_method_to_string(a->auth));
                if (r < 0)
                        return r;
                if (a->port == 0)
                        a->port = a->tls == TLS_MODE_IMPLICIT ? 993 : 143;
                if (!a->folders && strv_extend(&a->folders, "*") < 0)
                        return -ENOMEM;
                if (!a->idle && (strv_extend(&a->idle, "INBOX") < 0 || strv_extend(&a->idle, "Junk") < 0))
                        return -ENOMEM;
                if (!a->exclude && !(a->exclude = calloc(1, sizeof(char *))))
                        return -ENOMEM;
        }
        return 0;
}

static int set_defaults(Config *c, char **rules_extra) {
        _cleanup_free_ char *user_rules = NULL;
        int r;

        r = strv_extend(&c->rule_dirs, ALCODE_RULES_DIR);
        if (r < 0)
                return r;
        /* Without a home folder there are no user rules; the shipped ones still load. */
        r = user_path(USER_DIR_CONFIG, "alcode/rules.d", &user_rules);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && (r = strv_extend(&c->rule_dirs, user_rules)) < 0)
                return r;
        STRV_FOREACH(d, rules_extra)
                if (!strv_contains(c->rule_dirs, *d) && (r = strv_extend(&c->rule_dirs, *d)) < 0)
                        return r;
        if (!c->employer_domains && !(c->employer_domains = calloc(1, sizeof(char *))))
                return -ENOMEM;
        return 0;
}

int config_load(const char *path, Config **ret, char ***errors) {
        _cleanup_(config_freep) Config *c = calloc(1, sizeof(Config));
        _cleanup_free_ char *default_path = NULL;
        ParseState st = { .config = c };
        size_t errors_before = strv_length(*errors);
        struct stat sb;
        int r;

        if (!c)
                return -ENOMEM;
        c->notify = true;
        c->notify_show_code = true;
        c->otp_retention_days = -1;

        if (!path) {
                r = config_default_path(&default_path);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && access(default_path, F_OK) == 0)
                        path = default_path;
        } else if (stat(path, &sb) < 0) {
                /* A missing file is the caller's to explain (a default config may be absent);
                 * anything else (ENOTDIR, EACCES, ENAMETOOLONG, ELOOP) is said here. */
                if (errno == ENOENT)
                        return -ENOENT;
                r = strv_extendf(errors, "%s: cannot read: %s", path, strerror(errno));
                return r < 0 ? r : -EINVAL;
        } else if (S_ISDIR(sb.st_mode)) {
                r = strv_extendf(errors, "%s: is a folder, not a configuration file", path);
                return r < 0 ? r : -EINVAL;
        }

        if (path) {
                c->path = strdup(path);
                if (!c->path)
                        return -ENOMEM;
                st.file_private = stat(path, &sb) == 0 && (sb.st_mode & 077) == 0;
                r = ini_file_parse(path, handler, &st, errors);
                if (r == -ENOMEM)
                        goto finish;
                if (r < 0) {
                        r = r == -EISDIR ? strv_extendf(errors, "%s: is a folder, not a configuration file", path)
                                         : strv_extendf(errors, "%s: cannot read: %s", path, strerror(-r));
                        if (r >= 0)
                                r = -EINVAL;
                        goto finish;
                }
        }
        r = check_accounts(c, errors);
        if (r >= 0)
                r = set_defaults(c, st.rules_extra);
        if (r >= 0 && strv_length(*errors) > errors_before)
                r = -EINVAL;
        if (r >= 0)
                *ret = TAKE_PTR(c);
finish:
        strv_free(st.rules_extra);
        return r;
}
