/* One formatted record per call, written with a single write(2) (stderr) or sd_journal_sendv()
 * (journal), so that lines from worker threads never interleave. %m in a format expands to the
 * error passed in, as in systemd. */
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* We pass CODE_FILE=, CODE_LINE= and CODE_FUNC= of the caller ourselves: without this,
 * sd_journal_sendv() adds its own (this file's), and every record carries them twice. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "log.h"
#include "text.h"

static const char *log_ident = "alcode";
static int log_max_level = LOG_INFO;
static bool log_journal = false;

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *ident) {
        if (ident)
                log_ident = ident;
        log_journal = stderr_is_journal();
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

bool log_to_journal(void) {
        return log_journal;
}

static const char *level_prefix(int level) {
        switch (level) {
        case LOG_EMERG ... LOG_ERR:
                return "error: ";
        case LOG_WARNING:
                return "warning: ";
        default:
                return "";
        }
}

/* Native journal protocol through sd_journal_sendv(): only the fields that are set, so that
 * `journalctl ACCOUNT=perso` finds exactly that account's records. */
static int log_to_journal_fields(int level, int error, const LogContext *ctx, const char *file,
                                 int line, const char *func, const char *msg) {
        char f_msg[2048 + 8], f_prio[16], f_ident[64], f_file[256], f_line[32], f_func[128],
                f_errno[32], f_account[256], f_folder[512], f_uid[32], f_rule[256];
        struct iovec iov[11];
        size_t n = 0;

#define FIELD(buf, ...)                                                                            \
        do {                                                                                       \
                int _k = snprintf(buf, sizeof buf, __VA_ARGS__);                                   \
                if (_k > 0)                                                                        \
                        iov[n++] = (struct iovec) { buf, MIN((size_t) _k, sizeof buf - 1) };       \
        } while (0)
        FIELD(f_msg, "MESSAGE=%s", msg);
        FIELD(f_prio, "PRIORITY=%i", level);
        FIELD(f_ident, "SYSLOG_IDENTIFIER=%s", log_ident);
        FIELD(f_file, "CODE_FILE=%s", file);
        FIELD(f_line, "CODE_LINE=%i", line);
        FIELD(f_func, "CODE_FUNC=%s", func);
        if (error > 0)
                FIELD(f_errno, "ERRNO=%i", error);
        if (ctx && ctx->account)
                FIELD(f_account, "ACCOUNT=%s", ctx->account);
        if (ctx && ctx->folder)
                FIELD(f_folder, "FOLDER=%s", ctx->folder);
        if (ctx && ctx->uid > 0)
                FIELD(f_uid, "UID=%u", ctx->uid);
        if (ctx && ctx->rule)
                FIELD(f_rule, "RULE=%s", ctx->rule);
#undef FIELD
        return sd_journal_sendv(iov, (int) n);
}

/* Folder names from the server, warnings about a mail (a charset name), a server's error text:
 * a record may quote bytes from outside, and it must not drive the terminal that shows it nor
 * start a forged line. What text_control_len() finds (a newline too) becomes '?', in place.
 * Returns the new length. */
static size_t log_clean(char *s, size_t n) {
        size_t k = 0;

        for (size_t i = 0; i < n;) {
                size_t bad = text_control_len((const unsigned char *) s + i, n - i);

                if (bad) {
                        s[k++] = '?';
                        i += bad;
                } else
                        s[k++] = s[i++];
        }
        return k;
}

static void log_to_stderr(int level, const LogContext *ctx, const char *msg) {
        char where[512] = "", out[3072];
        size_t k = 0;
        int n;

        if (ctx) {
                if (ctx->account)
                        k += snprintf(where + k, sizeof where - k, "account '%s' ", ctx->account);
                if (ctx->folder && k < sizeof where)
                        k += snprintf(where + k, sizeof where - k, "folder '%s' ", ctx->folder);
                if (ctx->uid > 0 && k < sizeof where)
                        k += snprintf(where + k, sizeof where - k, "UID %u ", ctx->uid);
                if (ctx->rule && k < sizeof where)
                        k += snprintf(where + k, sizeof where - k, "rule '%s' ", ctx->rule);
                if (k > 0 && k + 1 < sizeof where)
                        where[k - 1] = ':', where[k] = ' ', where[k + 1] = 0;
        }
        n = snprintf(out, sizeof out, "%s: %s%s%s\n", log_ident, level_prefix(level), where, msg);
        if (n > 0) {
                size_t len = log_clean(out, MIN((size_t) n, sizeof out - 1) - 1);
                out[len++] = '\n';
                (void) !write(STDERR_FILENO, out, len);
        }
}

int log_internal(int level, int error, const LogContext *ctx, const char *file, int line,
                 const char *func, const char *format, ...) {
        char msg[2048];
        int saved_errno = errno;
        va_list ap;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                return -error;

        errno = error; /* for %m */
        va_start(ap, format);
        (void) vsnprintf(msg, sizeof msg, format, ap);
        va_end(ap);

        /* Should the journal socket be gone, the record still goes to stderr (the journal's
         * stream, or wherever systemd put it). */
        msg[log_clean(msg, strlen(msg))] = 0;
        if (!log_journal || log_to_journal_fields(level, error, ctx, file, line, func, msg) < 0)
                log_to_stderr(level, ctx, msg);

        errno = saved_errno;
        return -error;
}
