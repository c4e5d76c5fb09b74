/* INI files read with inih, each key placed at its file:line:column (see ini-file.h). inih calls
 * a reader for each line; ours counts lines, remembers the current line's text (to know where
 * a value starts, and whether it is a continuation) and refuses lines too long for inih's fixed
 * buffer instead of letting inih split them silently. Errors of config and rule files alike
 * take their one form here (ini_file_append_error()). */
#include <ini.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "ini-file.h"
#include "strv.h"

struct IniFile {
        const char *path;
        FILE *f;
        unsigned line;
        unsigned section_line; /* of the last [section] header */
        char text[INI_FILE_MAX_LINE + 8];
        char last_key[64];
        char last_section[64];
        bool in_key;        /* the previous meaningful line was a key: indented lines continue it */
        bool continuation;  /* the key being handled continues the previous value */
        IniFileHandler handler;
        void *userdata;
        char ***errors;
        unsigned n_errors;
        bool stop;          /* the rest of the file is not read */
        int fatal;
};

unsigned ini_file_line(const IniFile *f) {
        return f->line;
}

unsigned ini_file_section_line(const IniFile *f) {
        return f->section_line;
}

const char *ini_file_path(const IniFile *f) {
        return f->path;
}

unsigned ini_file_value_column(const IniFile *f) {
        const char *p = f->text;

        if (!f->continuation) {
                p = strpbrk(f->text, "=:");
                if (!p)
                        return 0;
                p++;
        }
        while (*p == ' ' || *p == '\t')
                p++;
        return (unsigned) (p - f->text) + 1;
}

int ini_file_append_error(char ***errors, const char *path, unsigned line, unsigned column, const char *fmt,
                          va_list ap) {
        _cleanup_free_ char *msg = vasprintf_safe(fmt, ap);

        if (!msg)
                return -ENOMEM;
        if (column > 0)
                return strv_extendf(errors, "%s:%u:%u: %s", path, line, column, msg);
        return strv_extendf(errors, "%s:%u: %s", path, line, msg);
}

int ini_file_error(IniFile *f, unsigned column, const char *fmt, ...) {
        va_list ap;
        int r;

        if (f->n_errors >= INI_FILE_MAX_ERRORS)
                return 0;
        if (++f->n_errors == INI_FILE_MAX_ERRORS)
                return strv_extendf(f->errors, "%s:%u: more than %d errors; the rest of the file is not read",
                                    f->path, f->line, INI_FILE_MAX_ERRORS - 1);
        va_start(ap, fmt);
        r = ini_file_append_error(f->errors, f->path, f->line, column, fmt, ap);
        va_end(ap);
        return r;
}

/* inih reports only the first malformed line; check each one here to report them all. */
static void check_syntax(IniFile *f) {
        const char *s = f->text + strspn(f->text, " \t\r\n");
        bool indented = s > f->text;

        if (!*s || *s == '#' || *s == ';')
                return;
        if (indented && f->in_key)
                return; /* continuation */
        if (*s == '[') {
                f->in_key = false;
                f->section_line = f->line;
                if (!strchr(s, ']'))
                        (void) ini_file_error(f, 0, "unterminated section header");
                return;
        }
        if (!strpbrk(s, "=:")) {
                (void) ini_file_error(f, 0, "expected 'key = value' or '[section]'");
                return;
        }
        f->in_key = true;
}

#define INI_FILE_MAX_SKIP (1024 * 1024)

static char *reader(char *str, int num, void *stream) {
        IniFile *f = stream;
        size_t len = 0, nul = SIZE_MAX;
        int c = EOF;

        if (f->fatal < 0 || f->stop || f->n_errors >= INI_FILE_MAX_ERRORS)
                return NULL;
        /* fgets() would hide a NUL byte: the line would look cut short (and, at the buffer's
         * size, too long). Read it byte by byte instead. */
        while (len + 1 < (size_t) num && (c = getc(f->f)) != EOF) {
                if (c == 0 && nul == SIZE_MAX)
                        nul = len;
                str[len++] = (char) c;
                if (c == '\n')
                        break;
        }
        if (len == 0)
                return NULL;
        str[len] = 0;
        f->line++;
        if (str[len - 1] != '\n' && c != EOF && (c = getc(f->f)) != EOF) {
                (void) ungetc(c, f->f);
                /* Longer than inih's buffer: report it and skip the rest of the line. */
                (void) ini_file_error(f, 0, "line longer than %d characters; continue the value "
                                            "on an indented line",
                                      INI_FILE_MAX_LINE);
                /* Skipped up to a bound: /dev/zero, or a file of one endless line, is no
                 * configuration, and reading it would never end. */
                for (size_t skipped = 0; (c = getc(f->f)) != EOF && c != '\n'; skipped++)
                        if (skipped >= INI_FILE_MAX_SKIP) {
                                (void) ini_file_error(f, 0, "line longer than %d bytes; the rest of the file "
                                                            "is not read", INI_FILE_MAX_SKIP);
                                f->stop = true;
                                break;
                        }
                nul = SIZE_MAX; /* one error for the line is enough */
                str[0] = '\n';
                str[1] = 0;
        }
        if (nul != SIZE_MAX) {
                (void) ini_file_error(f, (unsigned) nul + 1, "NUL byte in the line");
                str[0] = '\n';
                str[1] = 0;
        }
        (void) snprintf(f->text, sizeof f->text, "%s", str);
        check_syntax(f);
        return str;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        IniFile *f = user;
        bool continuation;
        int r;

        if (!streq(section, f->last_section)) {
                (void) snprintf(f->last_section, sizeof f->last_section, "%s", section);
                f->last_key[0] = 0;
        }
        continuation = (f->text[0] == ' ' || f->text[0] == '\t') && streq(name, f->last_key);
        (void) snprintf(f->last_key, sizeof f->last_key, "%s", name);
        f->continuation = continuation;
        r = f->handler(f, section, name, value, continuation, f->userdata);
        if (r < 0) {
                f->fatal = r;
                return 0;
        }
        return 1;
}

int ini_file_parse(const char *path, IniFileHandler h, void *userdata, char ***errors) {
        IniFile f = { .path = path, .handler = h, .userdata = userdata, .errors = errors };
        struct stat sb = {};
        int r;

        f.f = fopen(path, "re");
        if (!f.f)
                return -errno;
        if (fstat(fileno(f.f), &sb) < 0 || S_ISDIR(sb.st_mode)) {
                r = S_ISDIR(sb.st_mode) ? -EISDIR : -errno;
                fclose(f.f);
                return r;
        }
        /* Malformed lines were reported by check_syntax(); inih's own count adds nothing. */
        r = ini_parse_stream(reader, &f, handler, &f);
        if (r == -2)
                f.fatal = -ENOMEM;
        if (ferror(f.f) && f.fatal == 0)
                f.fatal = -EIO;
        fclose(f.f);
        return f.fatal;
}
