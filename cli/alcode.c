/* alcode: the companion CLI. Options may come before or after the verb (getopt permutes);
 * the first non-option argument is the verb, the rest its arguments. The verb table says, for
 * each verb, how many arguments it takes and which options, and dispatch_verb() checks both
 * before the verb's function runs (systemctl's idiom).
 *
 * This file is compiled into both `alcode` and `alcode-full` (see cli.h): in `alcode`, a verb
 * marked VERB_FULL has no function and is run by executing alcode-full with the same
 * arguments. */
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <unistd.h>

#include "build-config.h"
#include "cli.h"
#include "i18n.h"
#include "log.h"

const char *arg_db = NULL;
const char *arg_config = NULL;
bool arg_json = false;
bool arg_csv = false;
bool arg_store = false;
bool arg_explain = false;
bool arg_untrusted = false;
const char *arg_kind = NULL;
const char *arg_account = NULL;
bool arg_color = false;

#define VERB_ANY UINT_MAX

typedef enum VerbFlags {
        VERB_FULL = 1 << 0, /* needs the mail, TLS and D-Bus stack: only alcode-full runs it */
} VerbFlags;

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args; /* arguments after the verb's name; VERB_ANY: no limit */
        VerbFlags flags;
        int (*run)(int argc, char *argv[]);
        const char *options; /* long options it accepts besides the common ones, space-separated */
        const char *usage;   /* said when the count is wrong; NULL: "unexpected argument" */
} Verb;

/* alcode does not link the functions of the VERB_FULL verbs. */
#ifdef ALCODE_CLI_FULL
#  define FULL(f) f
#else
#  define FULL(f) NULL
#endif

static const Verb verbs[] = {
        { "list", 0, 0, 0, verb_list, "kind account untrusted", NULL },
        { "latest", 0, 1, 0, verb_latest, "", N_("alcode latest: expected at most one KIND.\n") },
        { "show", 1, 1, 0, verb_show, "", N_("alcode show: expected one code ID (see 'alcode list').\n") },
        { "scan", 1, VERB_ANY, VERB_FULL, FULL(verb_scan), "store explain",
          N_("alcode scan: expected at least one file or folder.\n") },
        { "check", 0, 0, VERB_FULL, FULL(verb_check), "", NULL },
        { "export", 0, 0, 0, verb_export, "csv", NULL },
        { "forget", 1, 1, 0, verb_forget, "", N_("alcode forget: expected one code ID (see 'alcode list').\n") },
        { "status", 0, 0, VERB_FULL, FULL(verb_status), "", NULL },
        { "rescan", 0, 1, VERB_FULL, FULL(verb_rescan), "", NULL },
        { "init", 0, 0, VERB_FULL, FULL(verb_init),
          "account email host port tls user password-command ca-file employer-domains "
          "no-test no-enable yes oauth2 oauth2-provider oauth2-client-id oauth2-client-secret "
          "oauth2-authorize-url oauth2-token-url oauth2-device-url oauth2-scope device token-file "
          "reauth", NULL },
};

static void help(void) {
        printf(_("Usage: alcode [OPTIONS] COMMAND [ARGS]\n\n"
                 "Finds and keeps the codes Action Logement, AL'in and your employer's HR send by e-mail.\n\n"
                 "Commands:\n"
                 "  list [--kind K] [--account A] [--untrusted]  stored codes, newest first\n"
                 "  latest [KIND]            the newest trusted value of KIND (default: specific)\n"
                 "  show ID                  one code with where it came from\n"
                 "  scan [--store] [--explain] PATH...\n"
                 "                           look for codes in .eml files, Maildir folders, mbox files\n"
                 "  check                    check the configuration and rules\n"
                 "  export --json|--csv      every code with its provenance\n"
                 "  forget ID                remove one code\n"
                 "  status                   what the running alcoded is doing, per account\n"
                 "  rescan [ACCOUNT]         make alcoded read every message again\n"
                 "  init                     set up a mail account, asking on the terminal; or with --yes\n"
                 "                           and --email, --host, --port, --tls, --user, --password-command,\n"
                 "                           --ca-file, --employer-domains, --account, --no-test, --no-enable;\n"
                 "                           OAuth2 (Outlook.com, Gmail): --oauth2, --oauth2-provider,\n"
                 "                           --oauth2-client-id, --oauth2-client-secret, --device, --token-file\n"
                 "  init --reauth ACCOUNT    sign in again to an OAuth2 account\n\n"
                 "Kinds: specific, company, access, otp, request, file.\n\n"
                 "Options:\n"
                 "      --db FILE            database (default ~/.local/share/alcode/alcode.db)\n"
                 "  -c, --config FILE        configuration (default ~/.config/alcode/alcode.conf)\n"
                 "      --json               JSON Lines output\n"
                 "  -h, --help               show this help\n"
                 "  -V, --version            show the version\n"));
}

static bool verb_accepts(const Verb *v, const char *opt) {
        const char *p = v->options;
        size_t l = strlen(opt);

        for (; p && *p; p += strcspn(p, " "), p += strspn(p, " "))
                if (strncmp(p, opt, l) == 0 && (p[l] == ' ' || p[l] == 0))
                        return true;
        return false;
}

/* A closed standard descriptor would be taken by the next file opened (the database, a mail
 * file) and output meant for the terminal would land in it. Each closed one gets an O_PATH
 * descriptor of /dev/null: it holds the number, and reading or writing it fails with EBADF
 * as the closed descriptor would, so that a lost output is still reported. */
static void guard_std_fds(void) {
        for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++)
                if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
                        int n = open("/dev/null", O_PATH);
                        if (n >= 0 && n != fd) { /* cannot happen: fd was the lowest free number */
                                (void) dup2(n, fd);
                                (void) close(n);
                        }
                }
}

/* Every verb ends here: what stdout still holds is written, and output that was lost (a full
 * disk, a closed descriptor) makes the run fail with a message, as coreutils' close_stdout()
 * does. A closed pipe (alcode list | head) is not an error. */
static int finish(int r) {
        int k = cli_flush_stdout();

        return r != 0 ? r : k;
}

/* Runs alcode-full: next to this binary in a build tree, else where it is installed. */
static int exec_full(const char *verb, char *argv[]) {
#ifndef ALCODE_CLI_FULL
        _cleanup_free_ char *self = realpath("/proc/self/exe", NULL), *sibling = NULL;
        char *slash = self ? strrchr(self, '/') : NULL;

        if (slash && asprintf(&sibling, "%.*s/alcode-full", (int) (slash - self), self) >= 0 &&
            access(sibling, X_OK) == 0)
                (void) execv(sibling, argv);
        (void) execv(ALCODE_LIBEXEC_DIR "/alcode-full", argv);
        fprintf(stderr, _("alcode %s: cannot run '%s': %s\n"), verb, ALCODE_LIBEXEC_DIR "/alcode-full",
                strerror(errno));
#else
        (void) argv;
        fprintf(stderr, _("alcode: command '%s' is not built in.\n"), verb);
#endif
        return EXIT_BAD_INPUT;
}

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(name, verbs[i].name))
                        return &verbs[i];
        return NULL;
}

/* Runs verb with argv[0] its name, after checking the number of its arguments; in alcode, a
 * VERB_FULL verb by executing alcode-full with the arguments as given (original). */
static int dispatch_verb(const Verb *verb, int argc, char *argv[], char *original[]) {
        unsigned n = (unsigned) argc - 1;

        if (n < verb->min_args || n > verb->max_args) {
                if (verb->usage)
                        fputs(_(verb->usage), stderr);
                else
                        fprintf(stderr, _("alcode %s: unexpected argument '%s'.\n"), verb->name,
                                argv[verb->max_args + 1]);
                return EXIT_BAD_INPUT;
        }
        if (!verb->run)
                return exec_full(verb->name, original);

        /* https://no-color.org: set and not empty. */
        arg_color = isatty(STDOUT_FILENO) && isempty(getenv("NO_COLOR")) && !arg_json &&
                    !streq_ptr(getenv("TERM"), "dumb");
        return verb->run(argc, argv);
}

/* Every option: --db, --config, --json, --help and --version go with any verb, the others with
 * the verbs whose row names them. */
enum { ARG_DB = 0x100, ARG_JSON, ARG_CSV, ARG_STORE, ARG_EXPLAIN, ARG_UNTRUSTED, ARG_KIND, ARG_ACCOUNT,
       ARG_INIT };
static const struct option options[] = {
        { "db", required_argument, NULL, ARG_DB },
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, ARG_JSON },
        { "csv", no_argument, NULL, ARG_CSV },
        { "store", no_argument, NULL, ARG_STORE },
        { "explain", no_argument, NULL, ARG_EXPLAIN },
        { "untrusted", no_argument, NULL, ARG_UNTRUSTED },
        { "kind", required_argument, NULL, ARG_KIND },
        { "account", required_argument, NULL, ARG_ACCOUNT },
        /* alcode init's, kept by init_set_option() */
        { "email", required_argument, NULL, ARG_INIT },
        { "host", required_argument, NULL, ARG_INIT },
        { "port", required_argument, NULL, ARG_INIT },
        { "tls", required_argument, NULL, ARG_INIT },
        { "user", required_argument, NULL, ARG_INIT },
        { "password-command", required_argument, NULL, ARG_INIT },
        { "ca-file", required_argument, NULL, ARG_INIT },
        { "employer-domains", required_argument, NULL, ARG_INIT },
        { "no-test", no_argument, NULL, ARG_INIT },
        { "no-enable", no_argument, NULL, ARG_INIT },
        { "yes", no_argument, NULL, ARG_INIT },
        /* alcode init's OAuth2 options (cli/init-oauth2.h) */
        { "oauth2", no_argument, NULL, ARG_INIT },
        { "oauth2-provider", required_argument, NULL, ARG_INIT },
        { "oauth2-client-id", required_argument, NULL, ARG_INIT },
        { "oauth2-client-secret", required_argument, NULL, ARG_INIT },
        { "oauth2-authorize-url", required_argument, NULL, ARG_INIT },
        { "oauth2-token-url", required_argument, NULL, ARG_INIT },
        { "oauth2-device-url", required_argument, NULL, ARG_INIT },
        { "oauth2-scope", required_argument, NULL, ARG_INIT },
        { "device", no_argument, NULL, ARG_INIT },
        { "token-file", required_argument, NULL, ARG_INIT },
        { "reauth", required_argument, NULL, ARG_INIT },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        {},
};

/* The verb options given (see Verb.options), checked once the verb is known. */
static const char *arg_verb_options[ELEMENTSOF(options)];
static size_t arg_n_verb_options = 0;

/* Returns 1 to go on with the verb at argv[optind], 0 when done (--help, --version), -EINVAL
 * for a usage error (said). */
static int parse_argv(int argc, char *argv[]) {
        int c, idx = 0;

        while ((c = getopt_long(argc, argv, "c:hV", options, &idx)) >= 0) {
                const char *verb_option = NULL;

                switch (c) {
                case ARG_DB: arg_db = optarg; break;
                case 'c': arg_config = optarg; break;
                case ARG_JSON: arg_json = true; break;
                case ARG_CSV: arg_csv = true; verb_option = "csv"; break;
                case ARG_STORE: arg_store = true; verb_option = "store"; break;
                case ARG_EXPLAIN: arg_explain = true; verb_option = "explain"; break;
                case ARG_UNTRUSTED: arg_untrusted = true; verb_option = "untrusted"; break;
                case ARG_KIND: arg_kind = optarg; verb_option = "kind"; break;
                case ARG_ACCOUNT: arg_account = optarg; verb_option = "account"; break;
                case ARG_INIT:
#ifdef ALCODE_CLI_FULL /* alcode runs alcode-full for init, which parses the options again */
                        (void) init_set_option(options[idx].name, optarg);
#endif
                        verb_option = options[idx].name;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("alcode %s\n", ALCODE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, _("Try 'alcode --help'.\n"));
                        return -EINVAL;
                }
                if (verb_option && arg_n_verb_options < ELEMENTSOF(arg_verb_options))
                        arg_verb_options[arg_n_verb_options++] = verb_option;
        }
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_free_ char **original = NULL;
        const Verb *verb = NULL;
        int r;

        guard_std_fds();
        log_setup("alcode");
        i18n_setup();
        (void) signal(SIGPIPE, SIG_IGN);
        /* One thread: no stdio locking around each of the many writes of a long table. */
        (void) __fsetlocking(stdout, FSETLOCKING_BYCALLER);

        /* getopt permutes argv; alcode-full gets the arguments as they were given. */
        original = calloc(argc + 1, sizeof(char *));
        if (!original) {
                (void) log_oom();
                return EXIT_FAILURE;
        }
        memcpy(original, argv, argc * sizeof(char *));

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r == 0 ? finish(0) : EXIT_BAD_INPUT;
        if (optind >= argc) {
                help();
                return finish(EXIT_BAD_INPUT);
        }
        verb = find_verb(argv[optind]);
        if (!verb) {
                fprintf(stderr, _("alcode: unknown command '%s'. Try 'alcode --help'.\n"), argv[optind]);
                return EXIT_BAD_INPUT;
        }
        for (size_t i = 0; i < arg_n_verb_options; i++)
                if (!verb_accepts(verb, arg_verb_options[i])) {
                        fprintf(stderr, _("alcode %s: option --%s does not apply here.\n"), verb->name,
                                arg_verb_options[i]);
                        return EXIT_BAD_INPUT;
                }
        return finish(dispatch_verb(verb, argc - optind, argv + optind, original));
}
