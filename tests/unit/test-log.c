/* log.c: a record that quotes bytes from outside (a folder name from the server, a charset
 * name from a mail) reaches stderr as one line with no control character in it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test-util.h"

#include "log.h"

static void test_no_control_reaches_stderr(void **state) {
        char path[] = "/tmp/test-log-XXXXXX", buf[4096];
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        ssize_t n;

        (void) state;
        assert_true(fd >= 0 && saved >= 0);
        unsetenv("JOURNAL_STREAM");
        log_setup("test-log");
        log_set_max_level(LOG_DEBUG);
        assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        LogContext ctx = { .account = "perso", .folder = "IN\033]0;x\007BOX\xc2\x9b" "31m", .uid = 7 };
        log_full_errno_ctx(LOG_WARNING, 0, &ctx, "part 2: unknown charset '%s'",
                           "x-\033[2J\r\nalcoded: forged line\xe2\x80\xae\xe2\x81\xa6");
        assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        close(saved);

        n = pread(fd, buf, sizeof buf - 1, 0);
        close(fd);
        unlink(path);
        assert_true(n > 0);
        buf[n] = 0;
        assert_string_equal(buf, "test-log: warning: account 'perso' folder 'IN?]0;x?BOX?31m' UID 7: part 2: "
                                 "unknown charset 'x-?[2J?" "?alcoded: forged line?" "?'\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_control_reaches_stderr),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
