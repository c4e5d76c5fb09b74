/* spawn-util.c with real children (/bin/sh): whatever the parent blocks or ignores, the child
 * starts with an empty mask and default dispositions, in a group of its own; spawn_wait()
 * bounds a child's whole life (one that closes stdout and stays is killed at the deadline,
 * with what it started in its group) and ends it at once when the cancel descriptor fires. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn-util.h"

/* Starts sh -c script with stdout on a pipe, whose read end it returns. */
static void run_sh(const char *script, pid_t *ret_pid, int *ret_fd) {
        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) script, NULL };
        int p[2];

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(spawn_start(&(SpawnOptions) { .argv = argv, .stdin_fd = SPAWN_NULL, .stdout_fd = p[1],
                                                       .stderr_fd = SPAWN_NULL }, ret_pid), 0);
        close(p[1]);
        *ret_fd = p[0];
}

static unsigned long long status_field(const char *text, const char *name) {
        const char *p = strstr(text, name);

        assert_non_null(p);
        return strtoull(p + strlen(name), NULL, 16);
}

static void test_clean_mask(void **state) {
        sigset_t block, old;
        char buf[8192] = "";
        size_t len = 0;
        ssize_t k;
        pid_t pid;
        int fd, status;

        (void) state;
        /* What alcoded does: block the loop's signals, ignore SIGPIPE. */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGHUP);
        sigaddset(&block, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
        signal(SIGPIPE, SIG_IGN);
        /* exec: the status is grep's own, not that of a shell forking it. */
        run_sh("exec cat /proc/self/status", &pid, &fd);
        while ((k = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
                len += (size_t) k;
        close(fd);
        assert_int_equal(spawn_wait(pid, spawn_now_ms() + 10000, -1, &status), 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
        signal(SIGPIPE, SIG_DFL);
        assert_int_equal(status_field(buf, "SigBlk:\t"), 0);
        unsigned long long ign = status_field(buf, "SigIgn:\t");
        assert_false(ign & (1ULL << (SIGPIPE - 1)));
        assert_false(ign & (1ULL << (SIGTERM - 1)));
        /* Its own process group. */
        assert_int_equal(strtol(strstr(buf, "NSpgid:\t") + 8, NULL, 10), pid);
}

static bool alive(pid_t pid) {
        char path[64], st[512];
        FILE *f;
        bool r = false;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        if (fgets(st, sizeof st, f)) {
                const char *p = strrchr(st, ')');
                r = p && p[2] != 'Z';
        }
        fclose(f);
        return r;
}

static void test_deadline_bounds_whole_life(void **state) {
        char buf[256];
        ssize_t k;
        pid_t pid, grandchild;
        int fd, status;
        int64_t t0 = spawn_now_ms();

        (void) state;
        /* It prints, closes stdout, starts a child and stays. */
        run_sh("sleep 300 >/dev/null & echo $!; exec >&-; wait", &pid, &fd);
        k = read(fd, buf, sizeof buf - 1);
        assert_true(k > 0);
        buf[k] = 0;
        grandchild = (pid_t) atoi(buf);
        assert_int_equal(read(fd, buf, sizeof buf), 0); /* EOF: stdout closed */
        close(fd);
        assert_int_equal(spawn_wait(pid, spawn_now_ms() + 500, -1, &status), -ETIMEDOUT);
        assert_true(spawn_now_ms() - t0 < 5000);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_false(alive(pid));
        for (int i = 0; i < 100 && alive(grandchild); i++)
                usleep(10000);
        assert_false(alive(grandchild));
}

static void test_cancel(void **state) {
        pid_t pid;
        int fd, status, efd = eventfd(0, EFD_CLOEXEC);
        int64_t t0;

        (void) state;
        assert_true(efd >= 0);
        run_sh("exec sleep 300", &pid, &fd);
        close(fd);
        assert_int_equal(eventfd_write(efd, 1), 0);
        t0 = spawn_now_ms();
        assert_int_equal(spawn_wait(pid, spawn_now_ms() + 30000, efd, &status), -ECANCELED);
        assert_true(spawn_now_ms() - t0 < 2000);
        assert_true(WIFSIGNALED(status));
        close(efd);
}

static void test_status_words(void **state) {
        char buf[64];

        (void) state;
        assert_string_equal(spawn_status_to_string(W_EXITCODE(3, 0), buf, sizeof buf), "exited with status 3");
        assert_string_equal(spawn_status_to_string(SIGKILL, buf, sizeof buf), "killed by signal 9 (SIGKILL)");
}

static void test_missing_program(void **state) {
        char *argv[] = { (char *) "alcode-no-such-program", NULL };
        pid_t pid;

        (void) state;
        assert_int_equal(spawn_start(&(SpawnOptions) { .argv = argv, .stdin_fd = SPAWN_NULL, .stdout_fd = SPAWN_NULL,
                                                       .stderr_fd = SPAWN_NULL }, &pid), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_clean_mask),          cmocka_unit_test(test_deadline_bounds_whole_life),
                cmocka_unit_test(test_cancel),              cmocka_unit_test(test_status_words),
                cmocka_unit_test(test_missing_program),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
