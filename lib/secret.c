#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "secret.h"
#include "strv.h"

#define SECRET_MAX 65536

extern char **environ;

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

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Tests of the timeout need seconds, not half a minute. */
static int command_timeout_sec(void) {
#ifdef ALCODE_TEST_HOOKS
        const char *v = getenv("ALCODE_TEST_SECRET_TIMEOUT");
        if (v && atoi(v) > 0)
                return atoi(v);
#endif
        return SECRET_COMMAND_TIMEOUT_SEC;
}

static int run_command(const char *cmd, char **ret, char **ret_error) {
        _cleanup_strv_free_ char **argv = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        _cleanup_close_ int rd = -EBADF;
        int pipefd[2], r, status;
        char *buf = NULL;
        size_t len = 0;
        pid_t pid;
        int timeout_sec = command_timeout_sec();
        int64_t deadline = now_ms() + timeout_sec * 1000;
        bool timed_out = false, too_long = false;

        r = command_argv(cmd, &argv);
        if (r < 0) {
                if (r != -ENOMEM)
                        *ret_error = strdup("password_command is empty");
                return r;
        }

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        rd = pipefd[0];
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
        /* Its stderr may echo the secret or the command: never into our logs. */
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        /* Its own process group, so that a timeout ends what it started too (a shell's
         * children, a helper that forks). */
        posix_spawnattr_init(&attr);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attr, 0);
        r = posix_spawnp(&pid, argv[0], &fa, &attr, argv, environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        (void) close(pipefd[1]);
        if (r != 0) {
                if (asprintf(ret_error, "cannot run password_command '%s': %s", argv[0], strerror(r)) < 0)
                        *ret_error = NULL;
                return -r;
        }

        buf = malloc(SECRET_MAX + 1);
        if (!buf) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return -ENOMEM;
        }
        for (;;) {
                struct pollfd p = { .fd = rd, .events = POLLIN };
                int64_t left = deadline - now_ms();
                ssize_t n;

                if (left <= 0) {
                        timed_out = true;
                        break;
                }
                r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        timed_out = r == 0;
                        break;
                }
                if (len >= SECRET_MAX) {
                        too_long = true;
                        break;
                }
                n = read(rd, buf + len, SECRET_MAX - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        if (timed_out || too_long)
                (void) kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        buf[len] = 0;

        if (timed_out || too_long || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                int k;
                if (timed_out)
                        k = asprintf(ret_error, "password_command timed out after %d s", timeout_sec);
                else if (too_long)
                        k = asprintf(ret_error, "password_command printed more than %d bytes", SECRET_MAX);
                else if (WIFSIGNALED(status))
                        k = asprintf(ret_error, "password_command killed by signal %d", WTERMSIG(status));
                else
                        k = asprintf(ret_error, "password_command exited with status %d", WEXITSTATUS(status));
                if (k < 0)
                        *ret_error = NULL;
                explicit_bzero(buf, len);
                free(buf);
                return timed_out ? -ETIMEDOUT : -EIO;
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
        *ret_error = NULL;
        if (a->password_command)
                return run_command(a->password_command, ret_secret, ret_error);
        if (a->password) {
                *ret_secret = strdup(a->password);
                return *ret_secret ? 0 : -ENOMEM;
        }
        *ret_error = strdup("no password or password_command");
        return -ENOKEY;
}
