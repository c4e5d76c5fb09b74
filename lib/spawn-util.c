/* posix_spawn() with the attributes every child of ours needs, and a wait that is bounded in
 * time. The wait polls a pidfd (Linux 5.3); where pidfd_open() is refused (an old kernel, a
 * seccomp filter) it falls back to waitid(WNOHANG) every 10 ms. waitid(WNOWAIT) leaves the
 * child a zombie until the group is killed: the pid, and with it the group id, stay ours. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spawn-util.h"

extern char **environ;

int64_t spawn_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int spawn_start(const SpawnOptions *o, pid_t *ret_pid) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        pid_t pid;
        int r;

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        const int fds[3] = { o->stdin_fd, o->stdout_fd, o->stderr_fd };
        for (int i = 0; i < 3 && r == 0; i++)
                r = fds[i] >= 0 ? posix_spawn_file_actions_adddup2(&fa, fds[i], i)
                  : fds[i] == SPAWN_INHERIT ? 0
                  : posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
        /* Empty mask; every signal back to SIG_DFL (glibc skips SIGKILL/SIGSTOP itself). */
        sigemptyset(&none);
        sigfillset(&all);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &all);
        if (r == 0)
                r = posix_spawnattr_setpgroup(&attr, 0);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                     (o->keep_process_group ? 0 : POSIX_SPAWN_SETPGROUP));
        if (r == 0)
                r = posix_spawnp(&pid, o->argv[0], &fa, &attr, o->argv, o->envp ?: environ);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        *ret_pid = pid;
        return 0;
}

static int exited(pid_t pid) {
        siginfo_t si = {};

        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == EINTR ? 0 : -errno;
        return si.si_pid == pid;
}

/* 1 when the child exited, 0 at the deadline, -ECANCELED, -errno. */
static int wait_exit(pid_t pid, int64_t deadline_ms, int cancel_fd) {
        int fd = -1, r;

#ifdef SYS_pidfd_open
        fd = (int) syscall(SYS_pidfd_open, pid, 0);
#endif
        for (;;) {
                r = exited(pid);
                if (r != 0)
                        break;
                int64_t left = deadline_ms - spawn_now_ms();
                if (left <= 0)
                        break;
                struct pollfd p[2] = { { .fd = cancel_fd, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
                int k = poll(p, 2, (int) MIN(left, fd >= 0 ? (int64_t) INT32_MAX : 10));
                if (k < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                if (k > 0 && (p[0].revents & POLLIN)) {
                        r = -ECANCELED;
                        break;
                }
        }
        if (fd >= 0)
                (void) close(fd);
        return r;
}

int spawn_wait(pid_t pid, int64_t deadline_ms, int cancel_fd, int *ret_status) {
        int r, status = 0;

        r = wait_exit(pid, deadline_ms, cancel_fd);
        /* The child is a zombie or still running: either way its pid is not reused yet, so
         * neither is its process group id. What it left running in its group goes now. */
        (void) kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *ret_status = status;
        if (r < 0)
                return r;
        return r == 0 ? -ETIMEDOUT : 0;
}

const char *spawn_status_to_string(int status, char *buf, size_t size) {
        if (WIFEXITED(status))
                (void) snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                (void) snprintf(buf, size, "killed by signal %d (SIG%s)", WTERMSIG(status),
                                sigabbrev_np(WTERMSIG(status)) ?: "?");
        else
                (void) snprintf(buf, size, "ended with status 0x%x", (unsigned) status);
        return buf;
}
