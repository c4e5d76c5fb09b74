/* Child processes (password_command, the clipboard helper, the editor of `alcode init`): one
 * way to start them, and one way to bound their life. A child starts with an empty signal mask
 * and every signal at its default disposition, whatever the parent blocked or ignored (alcoded
 * blocks SIGTERM for its event loop and ignores SIGPIPE: a helper that inherited that would
 * outlive `systemctl stop`), in a process group of its own, so that a timeout ends what it
 * started too. No loop, no thread: callable from any thread. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define SPAWN_NULL (-1)    /* the stream is /dev/null */
#define SPAWN_INHERIT (-2) /* the stream is the caller's */

typedef struct SpawnOptions {
        char *const *argv;       /* argv[0] looked up in $PATH unless it holds a '/' */
        char *const *envp;       /* NULL: the caller's environment */
        int stdin_fd;            /* a descriptor, SPAWN_NULL or SPAWN_INHERIT */
        int stdout_fd;
        int stderr_fd;
        bool keep_process_group; /* an interactive child stays in the terminal's group */
} SpawnOptions;

/* Starts the child. Returns 0 and its pid (also its process group, unless keep_process_group),
 * or -errno. */
int spawn_start(const SpawnOptions *o, pid_t *ret_pid);

/* Waits until the child exits, the CLOCK_MONOTONIC deadline (ms, from spawn_now_ms()) passes or
 * cancel_fd (if >= 0) becomes readable, whichever comes first. Then ends whatever is left of its
 * process group with SIGKILL (while the child is not yet reaped, so its pid and group cannot have
 * been reused) and reaps it. Returns 0 and its wait status, -ETIMEDOUT or -ECANCELED (the child
 * was killed; *ret_status says how it ended). */
int spawn_wait(pid_t pid, int64_t deadline_ms, int cancel_fd, int *ret_status);

int64_t spawn_now_ms(void);

/* "exited with status 1", "killed by signal 9": for messages. */
const char *spawn_status_to_string(int status, char *buf, size_t size);
