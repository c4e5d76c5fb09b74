/* Logging in the systemd manner: log_*_errno() returns -errno so that callers can
 * "return log_error_errno(r, ...)". Under systemd (stderr connected to the journal) records go
 * to the journal with structured fields (ACCOUNT=, FOLDER=, UID=, RULE=); otherwise one line on
 * stderr. Safe to call from any thread. lib/ itself logs at debug level at most.
 * Never pass a code, password, token, message body or subject: the log is not a secret store. */
#pragma once

#include <stdint.h>
#include <syslog.h>

#include "macro.h"

/* Where a record comes from; every field may be NULL/0. Borrowed for the duration of the call. */
typedef struct LogContext {
        const char *account;
        const char *folder;
        uint32_t uid;
        const char *rule;
} LogContext;

/* Sets the program name and picks the target: the journal when $JOURNAL_STREAM names our
 * stderr, else stderr. */
void log_setup(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);
/* True when records go to the journal. */
bool log_to_journal(void);

int log_internal(int level, int error, const LogContext *ctx, const char *file, int line,
                 const char *func, const char *format, ...) _printf_(7, 8);

#define log_full_errno_ctx(level, error, ctx, ...)                                                 \
        log_internal(level, error, ctx, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full_errno(level, error, ...) log_full_errno_ctx(level, error, NULL, __VA_ARGS__)

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")
