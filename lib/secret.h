/* Account secrets (passwords, OAuth2 access tokens): from `password_command` or `password`.
 * The secret is returned in a buffer the caller wipes with erase_and_free(); it is never put in
 * an error message or a log. Callable from any thread. */
#pragma once

#include "config.h"

#define SECRET_COMMAND_TIMEOUT_SEC 30

/* Returns 0 and the secret, or -errno with *ret_error (owned) saying what went wrong in words
 * that contain no secret: "password_command exited with status 1", "... timed out after 30 s".
 * The command's stderr is discarded, its stdout's first line is the secret. It runs without a
 * shell unless it contains shell syntax (quotes, pipes, $...). */
int secret_get(const Account *a, char **ret_secret, char **ret_error);
/* The same, ended early (-ECANCELED, the command killed) when cancel_fd becomes readable: the
 * worker's stop must not wait for a helper that waits for a keyring prompt. */
int secret_get_cancellable(const Account *a, int cancel_fd, char **ret_secret, char **ret_error);

/* Checks, without running it, that the program cmd would run is an executable file when it
 * is named by its path (the first word; /bin/sh when cmd needs a shell; a bare name is found
 * in $PATH when it runs). 0, or -errno and *ret_error (owned) in words. */
int secret_command_check(const char *cmd, char **ret_error);
/* secret_command_check() on every account's password_command of c, so that a helper that is
 * missing or not executable is a config error found before the first connection; each is
 * appended to *errors as "file:line: key 'password_command': why". The config parser does not
 * look at the file system: its callers (alcode check, alcoded) call this after config_load().
 * Returns the number of errors appended, or -ENOMEM. */
int secret_check_accounts(const Config *c, char ***errors);
