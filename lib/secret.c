/* Gets an account's secret: runs its password_command (without a shell unless the command needs
 * one) through spawn-util with a timeout and a cancel fd, reads the first line of its stdout
 * into a bounded buffer, or takes the `password` from the config. Also checks, without running
 * them, that the configured helpers can run (secret_check_accounts()). */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/wait.h>

#include "secret.h"
#include "spawn-util.h"
#include "strv.h"

#define SECRET_MAX 65536

static bool needs_shell(const char *cmd) {
        return strpbrk(cmd, "|&;<>()$`\\\"'*?[]#~=%{}\n") != NULL;
}

static int split_words(const char *cmd, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;

        for (const char *p = cmd; *p;) {
                size_t l;
                p += strspn(p, " \t");
                l = strcspn(p, " \t");
                if (l == 0)
                        break;
                if (strv_consume(&argv, strndup(p, l)) < 0)
                        return -ENOMEM;
                p += l;
        }
        if (!argv)
                return -EINVAL;
        *ret = TAKE_PTR(argv);
        return 0;
}

static int command_argv(const char *cmd, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;

        if (!needs_shell(cmd))
                return split_words(cmd, ret);
        if (strv_extend(&argv, "/bin/sh") < 0 || strv_extend(&argv, "-c") < 0 || strv_extend(&argv, cmd) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(argv);
        return 0;
}

/* A program named by its path must be an executable file. A bare name is looked up in
 * $PATH only when it runs: the PATH of `alcode check` in a terminal is not the service's, and
 * a helper (pass, secret-tool) may be installed after the configuration is written. */
static int check_program(const char *name) {
        if (!strchr(name, '/'))
                return 0;
        return access(name, X_OK) < 0 ? -errno : 0;
}

int secret_command_check(const char *cmd, char **ret_error) {
        _cleanup_strv_free_ char **argv = NULL;
        int r;

        *ret_error = NULL;
        r = command_argv(cmd, &argv);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_error = strdup("the command is empty");
                return *ret_error ? r : -ENOMEM;
        }
        r = check_program(argv[0]);
        if (r < 0 && asprintf(ret_error, "cannot run '%s': %s", argv[0], strerror(-r)) < 0)
                return -ENOMEM;
        return r;
}

int secret_check_accounts(const Config *c, char ***errors) {
        int n = 0;

        for (size_t i = 0; i < c->n_accounts; i++) {
                const Account *a = &c->accounts[i];
                _cleanup_free_ char *why = NULL;
                int r;

                if (!a->password_command)
                        continue;
                r = secret_command_check(a->password_command, &why);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0)
                        continue;
                if (strv_extendf(errors, "%s:%u: key 'password_command': %s", strna(c->path),
                                 a->password_command_line, why) < 0)
                        return -ENOMEM;
                n++;
        }
        return n;
}

/* Tests of the timeout need seconds, not half a minute. */
static int command_timeout_sec(void) {
#ifdef ALCODE_TEST_HOOKS
        const char *v = getenv("ALCODE_TEST_SECRET_TIMEOUT");
        if (v && atoi(v) > 0)
                return atoi(v);
#endif
        return SECRET_COMMAND_TIMEOUT_SEC;
}

/* Reads the child's stdout until EOF, the size cap or the deadline. */
static int read_output(int fd, int cancel_fd, int64_t deadline, char *buf, size_t *ret_len) {
        size_t len = 0;

        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = cancel_fd, .events = POLLIN } };
                int64_t left = deadline - spawn_now_ms();
                ssize_t n;
                int r;

                if (left <= 0)
                        return *ret_len = len, -ETIMEDOUT;
                r = poll(p, 2, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return *ret_len = len, -errno;
                if (r == 0)
                        continue; /* the deadline check above ends it */
                if (p[1].revents & POLLIN)
                        return *ret_len = len, -ECANCELED;
                if (len >= SECRET_MAX)
                        return *ret_len = len, -E2BIG;
                n = read(fd, buf + len, SECRET_MAX - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return *ret_len = len, 0;
                len += (size_t) n;
        }
}

/* The deadline bounds the child's whole life, not the reading only: a helper that closes its
 * stdout and goes on running is killed at the deadline, with everything in its process group. */
static int run_command(const char *cmd, int cancel_fd, char **ret, char **ret_error) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_close_ int rd = -EBADF, wr = -EBADF;
        int pipefd[2], r, status = 0;
        char *buf = NULL, how[64];
        size_t len = 0;
        pid_t pid;
        int timeout_sec = command_timeout_sec();
        int64_t deadline = spawn_now_ms() + timeout_sec * 1000;

        r = command_argv(cmd, &argv);
        if (r < 0) {
                if (r != -ENOMEM)
                        *ret_error = strdup("password_command is empty");
                return r;
        }

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        rd = pipefd[0];
        wr = pipefd[1];
        /* Its stderr may echo the secret or the command: never into our logs. */
        r = spawn_start(&(SpawnOptions) { .argv = argv, .stdin_fd = SPAWN_NULL, .stdout_fd = wr,
                                          .stderr_fd = SPAWN_NULL }, &pid);
        wr = safe_close(wr);
        if (r < 0) {
                if (asprintf(ret_error, "cannot run password_command '%s': %s", argv[0], strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }

        buf = malloc(SECRET_MAX + 1);
        if (!buf) {
                (void) spawn_wait(pid, 0, -1, &status);
                return -ENOMEM;
        }
        int rr = read_output(rd, cancel_fd, deadline, buf, &len);
        rd = safe_close(rd);
        /* On a read error, an overlong output or a cancel, end it now. */
        r = spawn_wait(pid, rr < 0 && rr != -ETIMEDOUT ? 0 : deadline, cancel_fd, &status);
        buf[len] = 0;

        if (rr < 0 || r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                int k;
                bool timed_out = rr == -ETIMEDOUT || r == -ETIMEDOUT;
                bool cancelled = rr == -ECANCELED || r == -ECANCELED;
                if (cancelled)
                        k = asprintf(ret_error, "password_command cancelled");
                else if (timed_out)
                        k = asprintf(ret_error, "password_command timed out after %d s", timeout_sec);
                else if (rr == -E2BIG)
                        k = asprintf(ret_error, "password_command printed more than %d bytes", SECRET_MAX);
                else
                        k = asprintf(ret_error, "password_command %s",
                                     spawn_status_to_string(status, how, sizeof how));
                if (k < 0)
                        *ret_error = NULL;
                explicit_bzero(buf, len);
                free(buf);
                return cancelled ? -ECANCELED : timed_out ? -ETIMEDOUT : -EIO;
        }
        /* First line only, without its line break. */
        buf[strcspn(buf, "\r\n")] = 0;
        if (!*buf) {
                free(buf);
                *ret_error = strdup("password_command printed nothing");
                return -ENODATA;
        }
        explicit_bzero(buf + strlen(buf), len - strlen(buf));
        *ret = buf;
        return 0;
}

int secret_get(const Account *a, char **ret_secret, char **ret_error) {
        return secret_get_cancellable(a, -EBADF, ret_secret, ret_error);
}

int secret_get_cancellable(const Account *a, int cancel_fd, char **ret_secret, char **ret_error) {
        *ret_error = NULL;
        if (a->password_command)
                return run_command(a->password_command, cancel_fd, ret_secret, ret_error);
        if (a->password) {
                *ret_secret = strdup(a->password);
                return *ret_secret ? 0 : -ENOMEM;
        }
        *ret_error = strdup("no password or password_command");
        return -ENOKEY;
}
