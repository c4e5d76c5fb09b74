/* One formatted record per call, written with a single write(2) (stderr) or sd_journal_send()
 * (journal), so that lines from worker threads never interleave. %m in a format expands to the
 * error passed in, as in systemd. */
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"

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

int log_internal(int level, int error, const LogContext *ctx, const char *file, int line,
                 const char *func, const char *format, ...) {
        char msg[2048], where[512] = "";
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

        if (log_journal) {
                char uid[16] = "";
                if (ctx && ctx->uid > 0)
                        (void) snprintf(uid, sizeof uid, "%u", ctx->uid);
                (void) sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level,
                                       "SYSLOG_IDENTIFIER=%s", log_ident, "CODE_FILE=%s", file,
                                       "CODE_LINE=%i", line, "CODE_FUNC=%s", func,
                                       "ERRNO=%i", error,
                                       "ACCOUNT=%s", ctx && ctx->account ? ctx->account : "",
                                       "FOLDER=%s", ctx && ctx->folder ? ctx->folder : "",
                                       "UID=%s", uid,
                                       "RULE=%s", ctx && ctx->rule ? ctx->rule : "", NULL);
        } else {
                char out[3072];
                int n;

                if (ctx) {
                        size_t k = 0;
                        if (ctx->account)
                                k += snprintf(where + k, sizeof where - k, "account '%s' ",
                                              ctx->account);
                        if (ctx->folder && k < sizeof where)
                                k += snprintf(where + k, sizeof where - k, "folder '%s' ",
                                              ctx->folder);
                        if (ctx->uid > 0 && k < sizeof where)
                                k += snprintf(where + k, sizeof where - k, "UID %u ", ctx->uid);
                        if (ctx->rule && k < sizeof where)
                                k += snprintf(where + k, sizeof where - k, "rule '%s' ",
                                              ctx->rule);
                        if (k > 0 && k + 1 < sizeof where)
                                where[k - 1] = ':', where[k] = ' ', where[k + 1] = 0;
                }
                n = snprintf(out, sizeof out, "%s: %s%s%s\n", log_ident, level_prefix(level),
                             where, msg);
                if (n > 0)
                        (void) !write(STDERR_FILENO, out, MIN((size_t) n, sizeof out - 1));
        }

        errno = saved_errno;
        return -error;
}
