/* What every verb shares: loading the config and opening the store with errors a person can
 * act on, the one output path for text from outside (cli_write_text(): nothing that drives a
 * terminal gets through), table cells measured in terminal columns, colours, local dates, and
 * the final flush of stdout. Linked into `alcode`, so it uses nothing beyond the config and the
 * store (see cli.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <time.h>
#include <wchar.h>

#include "cli.h"
#include "i18n.h"
#include "strv.h"
#include "text.h"

const char *ansi_bold(void) { return arg_color ? "\033[1m" : ""; }
const char *ansi_red(void) { return arg_color ? "\033[1;31m" : ""; }
const char *ansi_yellow(void) { return arg_color ? "\033[33m" : ""; }
const char *ansi_grey(void) { return arg_color ? "\033[2m" : ""; }
const char *ansi_normal(void) { return arg_color ? "\033[0m" : ""; }

/* Says why config_load() failed with r: the file's errors (file:line), else the reason. */
static void print_config_error(int r, char **errors) {
        if (r == -ENOENT) {
                fprintf(stderr, _("alcode: cannot read the configuration '%s': no such file.\n"), arg_config);
                return;
        }
        STRV_FOREACH(e, errors)
                fprintf(stderr, "%s\n", *e);
        if (!errors)
                fprintf(stderr, _("alcode: cannot load the configuration: %s\n"), strerror(-r));
}

int cli_load_config(Config **ret) {
        _cleanup_strv_free_ char **errors = NULL;
        int r;

        r = config_load(arg_config, ret, &errors);
        if (r < 0)
                print_config_error(r, errors);
        return r;
}

/* The database: --db, else the config's `database`, else the default. A config that cannot be
 * read is an error, except the default config with errors, which only warns (alcode check
 * lists them) and leaves the default database. quiet: nothing is printed. */
static int database_path(bool quiet, char **ret) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        int r;

        if (arg_db) {
                *ret = strdup(arg_db);
                return *ret ? 0 : -ENOMEM;
        }
        r = config_load(arg_config, &config, &errors);
        if (r >= 0 && config->database) {
                *ret = TAKE_PTR(config->database);
                return 0;
        }
        if (r < 0 && (arg_config || r != -EINVAL)) {
                if (!quiet)
                        print_config_error(r, errors);
                return r;
        }
        if (r < 0 && !quiet)
                fprintf(stderr, _("alcode: warning: the configuration has errors ('alcode check' lists them); "
                                  "using the default database.\n"));
        r = store_default_path(ret);
        if (r == -ENXIO && !quiet)
                fprintf(stderr, _("alcode: cannot find the database: set $HOME or use --db.\n"));
        return r;
}

int cli_open_store_quiet(Store **ret) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        int r;

        r = database_path(/* quiet= */ true, &path);
        if (r < 0)
                return r;
        return store_open(path, STORE_READ_ONLY, ret, &error);
}

int cli_open_store(StoreMode mode, Store **ret) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        int r;

        r = database_path(/* quiet= */ false, &path);
        if (r < 0)
                return r;

        r = store_open(path, mode, ret, &error);
        switch (r) {
        case 0:
                return 0;
        case -ENOENT:
                fprintf(stderr, _("alcode: no database at '%s' yet: alcoded has not stored any code "
                                  "(is it running? see 'systemctl --user status alcoded').\n"), path);
                break;
        case -ENODATA:
                fprintf(stderr, _("alcode: the database '%s' is empty: alcoded has not set it up yet "
                                  "(is it running? see 'systemctl --user status alcoded').\n"), path);
                break;
        case -ESTALE:
                fprintf(stderr, _("alcode: the database '%s' has an older format; restart alcoded once to "
                                  "upgrade it ('systemctl --user restart alcoded').\n"), path);
                break;
        case -EPROTO:
                fprintf(stderr, _("alcode: the database '%s' was written by a newer alcode; "
                                  "upgrade alcode to read it.\n"), path);
                break;
        case -EBADMSG:
                fprintf(stderr, _("alcode: '%s' is not an alcode database or is damaged (%s).\n"), path,
                        error ?: strerror(-r));
                break;
        case -EBUSY:
                fprintf(stderr, _("alcode: the database '%s' is locked by another program; try again.\n"), path);
                break;
        case -EISDIR:
                fprintf(stderr, _("alcode: '%s' is a folder, not a database.\n"), path);
                break;
        case -ELOOP:
                fprintf(stderr, _("alcode: the database '%s' is a symbolic link; alcode opens only the file "
                                  "itself: give the path it points to.\n"), path);
                break;
        case -EROFS:
        case -EACCES:
        case -EPERM:
                if (mode == STORE_READ_ONLY)
                        fprintf(stderr, _("alcode: cannot read the database '%s': %s.\n"), path,
                                error ?: strerror(-r));
                else
                        fprintf(stderr, _("alcode: cannot write to the database '%s': %s.\n"), path,
                                error ?: strerror(-r));
                break;
        default:
                fprintf(stderr, _("alcode: cannot open the database '%s': %s.\n"), path, error ?: strerror(-r));
        }
        return r;
}

int cli_store_error(Store *s, int r) {
        const char *path = store_path(s);

        if (ferror(stdout)) {
                /* Writing failed, not the database. A closed pipe (alcode list | head) is fine. */
                if (r == -EPIPE)
                        return 0;
                fprintf(stderr, _("alcode: cannot write the output: %s.\n"), strerror(-r));
                return EXIT_BAD_INPUT;
        }
        switch (r) {
        case -ENOMEM:
                fprintf(stderr, _("alcode: out of memory.\n"));
                break;
        case -EBADMSG:
                fprintf(stderr, _("alcode: the database '%s' is damaged (%s).\n"), path, store_last_error(s));
                break;
        case -EBUSY:
                fprintf(stderr, _("alcode: the database '%s' is locked by another program; try again.\n"), path);
                break;
        default:
                if (store_is_read_only(s))
                        fprintf(stderr, _("alcode: cannot read the database '%s': %s.\n"), path, store_last_error(s));
                else
                        fprintf(stderr, _("alcode: cannot write to the database '%s': %s.\n"), path,
                                store_last_error(s));
        }
        return EXIT_BAD_INPUT;
}

int cli_flush_stdout(void) {
        bool failed_before = ferror(stdout);
        int r;

        errno = 0;
        if (fflush(stdout) == 0 && !failed_before)
                return 0;
        /* An earlier write failed and the buffer went with it: its errno is gone. */
        r = errno ?: EIO;
        /* Reported once: what is left in the buffer is dropped, the error flag cleared, so
         * that the check at exit (alcode.c) does not report it again. */
        __fpurge(stdout);
        clearerr(stdout);
        if (r == EPIPE)
                return 0;
        fprintf(stderr, _("alcode: cannot write the output: %s.\n"), strerror(r));
        return EXIT_BAD_INPUT;
}

static bool is_control(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0x2028 || cp == 0x2029 ||
               (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || /* bidi overrides */
               cp == 0x200E || cp == 0x200F || cp == 0x061C ||                /* and marks */
               cp == 0xFEFF;
}

static size_t char_width(uint32_t cp) {
        int w;

        if (is_control(cp))
                return 1; /* printed as '?' */
        w = wcwidth((wchar_t) cp);
        return w < 0 ? 1 : (size_t) w; /* unknown in this locale: assume one column */
}

static bool plain_ascii(char c) {
        return c >= 0x20 && c < 0x7F;
}

size_t cli_text_width(const char *s) {
        size_t w = 0;
        uint32_t cp;

        if (!s)
                return 0;
        while (*s) {
                if (plain_ascii(*s)) { /* the common case, without wcwidth() */
                        s++;
                        w++;
                        continue;
                }
                s += text_utf8_decode(s, SIZE_MAX, &cp);
                w += char_width(cp);
        }
        return w;
}

void cli_print_cell(FILE *f, const char *s, size_t width, size_t max) {
        size_t used = 0, limit;
        uint32_t cp;

        if (!s)
                s = "-";
        /* Cut only text wider than max, keeping a column for the "…". */
        limit = max > 0 && cli_text_width(s) > max ? max - 1 : SIZE_MAX;
        while (*s) {
                size_t n, w;

                for (n = 0; plain_ascii(s[n]) && used + n < limit; n++)
                        ;
                if (n > 0) {
                        fwrite(s, 1, n, f);
                        s += n;
                        used += n;
                        continue;
                }
                n = text_utf8_decode(s, SIZE_MAX, &cp);
                w = char_width(cp);
                if (used + w > limit) {
                        fputs("…", f);
                        used++;
                        break;
                }
                if (is_control(cp) || (cp == 0xFFFD && n == 1))
                        putc('?', f);
                else
                        fwrite(s, 1, n, f);
                s += n;
                used += w;
        }
        for (; used < width; used++)
                putc(' ', f);
}

void cli_local_date(int64_t t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (t <= 0 || !localtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
                (void) snprintf(buf, size, "-");
}

/* The one way text from outside (mail, file names, the store) reaches a terminal: valid UTF-8
 * is written as it is, and every byte or character that could drive the terminal (C0 and C1
 * controls, DEL, bidi overrides and isolates, line and paragraph separators) or that is not
 * UTF-8 becomes '?'. multiline keeps '\n' (and a tab as a space). Reads exactly n bytes. */
void cli_write_text(FILE *f, const char *s, size_t n, bool multiline) {
        for (size_t i = 0; i < n;) {
                size_t k;
                uint32_t cp;

                for (k = i; k < n && plain_ascii(s[k]); k++)
                        ;
                if (k > i) {
                        fwrite(s + i, 1, k - i, f);
                        i = k;
                        continue;
                }
                k = text_utf8_decode(s + i, n - i, &cp);
                if (multiline && cp == '\n')
                        putc('\n', f);
                else if (multiline && cp == '\t')
                        putc(' ', f);
                else if (is_control(cp) || (cp == 0xFFFD && k == 1))
                        putc('?', f);
                else
                        fwrite(s + i, 1, k, f);
                i += k;
        }
}

void cli_print_text(FILE *f, const char *s) {
        if (!s)
                s = "-";
        cli_write_text(f, s, strlen(s), false);
}

char *cli_cleann(const char *s, size_t n) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        if (!m)
                return NULL;
        cli_write_text(m, s, n, false);
        if (fclose(m) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

char *cli_clean(const char *s) {
        return cli_cleann(strna(s), strlen(strna(s)));
}
