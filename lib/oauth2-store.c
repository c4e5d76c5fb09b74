/* Where an account's OAuth2 refresh token is kept (see oauth2.h):
 *  - by default in the Secret Service, through secret-tool (as `alcode init` keeps passwords),
 *    in an item with the attribute alcode-oauth2 = ACCOUNT;
 *  - in oauth2_token_file when the user asked for a file: mode 0600, owned by them, replaced
 *    atomically (a temporary file in the same folder, then rename()).
 * The token goes to secret-tool on its stdin and comes back on its stdout, never in argv. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "oauth2.h"
#include "spawn-util.h"
#include "strv.h"

#define TOKEN_MAX 16384
#define HELPER_TIMEOUT_MS 30000

/* Writes input (may be NULL) to the child's stdin and reads its stdout into buf (TOKEN_MAX bytes)
 * at the same time, so that neither side waits on the other, until its stdout ends, the cap is
 * reached or the deadline passes (-ETIMEDOUT). Closes *in_fd once all is written. */
static int helper_exchange(int *in_fd, int out_fd, const char *input, int64_t deadline, char *buf,
                           size_t *ret_len) {
        size_t len = 0, in_off = 0, in_len = input ? strlen(input) : 0;

        if (in_len == 0)
                *in_fd = safe_close(*in_fd);
        (void) fcntl(*in_fd, F_SETFL, O_NONBLOCK);
        for (;;) {
                struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN }, { .fd = *in_fd, .events = POLLOUT } };
                int64_t left = deadline - spawn_now_ms();
                ssize_t n;
                int r;

                if (left <= 0)
                        return *ret_len = len, -ETIMEDOUT;
                r = poll(p, *in_fd >= 0 ? 2 : 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        break;
                if (*in_fd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
                        n = write(*in_fd, input + in_off, in_len - in_off);
                        if (n > 0)
                                in_off += (size_t) n;
                        if (n < 0 || in_off == in_len)
                                *in_fd = safe_close(*in_fd);
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (len >= TOKEN_MAX)
                                break;
                        n = read(out_fd, buf + len, TOKEN_MAX - len);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        len += (size_t) n;
                }
        }
        *ret_len = len;
        return 0;
}

/* Runs argv with input on its stdin (may be NULL) and its stdout's first line in *ret_output
 * (may be NULL), within HELPER_TIMEOUT_MS for its whole life. stderr goes to /dev/null. Returns
 * the exit status (128 + the signal that killed it), or -errno. */
static int run_helper(char *const *argv, const char *input, char **ret_output) {
        _cleanup_close_ int in_r = -EBADF, in_w = -EBADF, out_r = -EBADF, out_w = -EBADF;
        int64_t deadline = spawn_now_ms() + HELPER_TIMEOUT_MS;
        int fds[2], status = 0, r, rx;
        size_t len = 0;
        char *buf;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        in_r = fds[0], in_w = fds[1];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        out_r = fds[0], out_w = fds[1];
        buf = malloc(TOKEN_MAX + 1);
        if (!buf)
                return -ENOMEM;
        r = spawn_start(&(SpawnOptions) { .argv = argv, .stdin_fd = in_r, .stdout_fd = out_w,
                                          .stderr_fd = SPAWN_NULL }, &pid);
        in_r = safe_close(in_r);
        out_w = safe_close(out_w);
        if (r < 0) {
                free(buf);
                return r;
        }
        rx = helper_exchange(&in_w, out_r, input, deadline, buf, &len);
        in_w = safe_close(in_w);
        out_r = safe_close(out_r);
        r = spawn_wait(pid, rx < 0 ? 0 : deadline, -1, &status);
        buf[len] = 0;
        if (ret_output && rx >= 0 && r >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                size_t l = strcspn(buf, "\r\n");
                explicit_bzero(buf + l, len - l);
                buf[l] = 0;
                *ret_output = TAKE_PTR(buf);
        }
        if (buf) {
                explicit_bzero(buf, len);
                free(buf);
        }
        if (rx < 0 || r < 0)
                return -ETIMEDOUT;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int file_load(const Account *a, char **ret, char **ret_error) {
        _cleanup_close_ int fd = open(a->oauth2_token_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        char *buf;
        struct stat sb;
        ssize_t n;

        if (fd < 0) {
                int r = -errno;
                if (asprintf(ret_error, "cannot read %s: %s", a->oauth2_token_file, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r == -ENOENT ? -ENOKEY : r;
        }
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 077)) {
                if (asprintf(ret_error, "refused %s: it must be a file of yours that no one else can read "
                                        "(chmod 600)", a->oauth2_token_file) < 0)
                        *ret_error = NULL;
                return -EPERM;
        }
        buf = malloc(TOKEN_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = read(fd, buf, TOKEN_MAX);
        if (n < 0)
                n = 0;
        buf[n] = 0;
        buf[strcspn(buf, "\r\n")] = 0;
        if (!*buf) {
                free(buf);
                if (asprintf(ret_error, "%s holds no refresh token", a->oauth2_token_file) < 0)
                        *ret_error = NULL;
                return -ENOKEY;
        }
        *ret = buf;
        return 0;
}

static int file_store(const Account *a, const char *token, char **ret_error) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t l = strlen(token);
        ssize_t n;
        int r = 0;

        if (asprintf(&tmp, "%s.XXXXXX", a->oauth2_token_file) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                r = -errno;
        else if (fchmod(fd, 0600) < 0)
                r = -errno;
        else if ((n = write(fd, token, l)) < 0 || (size_t) n != l || write(fd, "\n", 1) != 1)
                r = n < 0 ? -errno : -EIO;
        else if (fsync(fd) < 0)
                r = -errno;
        else if (rename(tmp, a->oauth2_token_file) < 0)
                r = -errno;
        if (r < 0) {
                if (fd >= 0)
                        (void) unlink(tmp);
                if (asprintf(ret_error, "cannot write %s: %s", a->oauth2_token_file, strerror(-r)) < 0)
                        *ret_error = NULL;
        }
        return r;
}

int oauth2_token_load(const Account *a, char **ret, char **ret_error) {
        char *out = NULL;
        int r;

        if (a->oauth2_token_file)
                return file_load(a, ret, ret_error);
        r = run_helper((char *const[]) { (char *) "secret-tool", (char *) "lookup", (char *) "alcode-oauth2",
                                         a->name, NULL },
                       NULL, &out);
        if (r == 0 && out && *out) {
                *ret = out;
                return 0;
        }
        erase_and_free(out);
        if (r < 0 && r != -ETIMEDOUT) {
                if (asprintf(ret_error, "cannot run secret-tool: %s", strerror(-r)) < 0)
                        *ret_error = NULL;
                return -ENOKEY;
        }
        if (asprintf(ret_error, r == -ETIMEDOUT ? "the keyring did not answer in time"
                                                : "no refresh token in the keyring (is it unlocked? else sign in "
                                                  "again: alcode init --reauth %s)", a->name) < 0)
                *ret_error = NULL;
        return r == -ETIMEDOUT ? -ETIMEDOUT : -ENOKEY;
}

int oauth2_token_store(const Account *a, const char *label, const char *refresh_token, char **ret_error) {
        int r;

        if (a->oauth2_token_file)
                return file_store(a, refresh_token, ret_error);
        r = run_helper((char *const[]) { (char *) "secret-tool", (char *) "store", (char *) "--label", (char *) label,
                                         (char *) "alcode-oauth2", a->name, NULL },
                       refresh_token, NULL);
        if (r == 0)
                return 0;
        if (asprintf(ret_error, r < 0 ? "cannot run secret-tool: %s" : "secret-tool store failed (is a keyring "
                                                                        "running and unlocked?)%s",
                     r < 0 ? strerror(-r) : "") < 0)
                *ret_error = NULL;
        return -ENOKEY;
}
