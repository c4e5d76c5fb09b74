/* Questions on the terminal for alcode init (see prompt.h): each prints its question on stdout
 * and reads one answer from stdin, a secret with echo off and the terminal put back whatever
 * happens. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>

#include "i18n.h"
#include "prompt.h"

#define PROMPT_SECRET_MAX 4096

/* The terminal's settings while a secret is read, for the signal handler to put back. */
static struct termios saved_termios;
static volatile sig_atomic_t termios_saved = 0;

static void restore_and_die(int sig) {
        if (termios_saved)
                (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
        (void) signal(sig, SIG_DFL);
        (void) raise(sig);
}

static char *trim(char *s) {
        size_t l;

        s += strspn(s, " \t");
        l = strlen(s);
        while (l > 0 && isspace((unsigned char) s[l - 1]))
                s[--l] = 0;
        return s;
}

/* One line from stdin, without its line break: 0, -ECANCELED at end of input, or -errno. */
static int read_line(char **ret) {
        char *line = NULL;
        size_t size = 0;
        ssize_t n;

        (void) fflush(stdout);
        errno = 0;
        n = getline(&line, &size, stdin);
        if (n < 0) {
                int r = errno ? -errno : -ECANCELED;
                free(line);
                if (r == -ECANCELED)
                        putchar('\n'); /* Ctrl-D left the cursor after the question */
                return r;
        }
        line[strcspn(line, "\r\n")] = 0;
        *ret = line;
        return 0;
}

/* One answer, blanks trimmed: 1 with *ret (owned by the caller), 0 when the answer is empty
 * (the default), or -ECANCELED / -errno as read_line(). */
static int read_answer(char **ret) {
        _cleanup_free_ char *line = NULL;
        char *answer;
        int r;

        r = read_line(&line);
        if (r < 0)
                return r;
        answer = trim(line);
        if (!*answer)
                return 0;
        memmove(line, answer, strlen(answer) + 1);
        *ret = TAKE_PTR(line);
        return 1;
}

int prompt_line(const char *question, const char *def, char **ret) {
        char *answer = NULL;
        int r;

        if (def && *def)
                /* TRANSLATORS: a question and its default answer: "Port [993]: ". French
                 * typography puts a space before the colon. */
                printf(_("%s [%s]: "), question, def);
        else
                /* TRANSLATORS: a question without a default answer: "Login name: ". */
                printf(_("%s: "), question);
        r = read_answer(&answer);
        if (r < 0)
                return r;
        if (r == 0 && !(answer = strdup(strempty(def))))
                return -ENOMEM;
        *ret = answer;
        return 0;
}

/* Reads the secret with read(2), not stdio: a terminal in canonical mode hands over one line per
 * read, and no copy of it stays behind in a FILE buffer or a realloc()ed one. */
static int read_secret(char **ret) {
        _cleanup_erase_ char *buf = calloc(1, PROMPT_SECRET_MAX + 1); /* always NUL-terminated */
        size_t len = 0;

        if (!buf)
                return -ENOMEM;
        (void) fflush(stdout);
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf + len, PROMPT_SECRET_MAX - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0 && len == 0) {
                        putchar('\n');
                        return -ECANCELED;
                }
                len += (size_t) n;
                if (n == 0 || buf[len - 1] == '\n' || len == PROMPT_SECRET_MAX)
                        break;
        }
        /* Only the first line; wipe the rest, which erase_and_free() would no longer see. */
        explicit_bzero(buf + strcspn(buf, "\r\n"), len - strcspn(buf, "\r\n"));
        *ret = TAKE_PTR(buf);
        return 0;
}

int prompt_secret(const char *question, char **ret) {
        struct sigaction sa = { .sa_handler = restore_and_die }, old[3];
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
        struct termios t;
        int r;

        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return -errno;
        termios_saved = 1;
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                (void) sigaction(sigs[i], &sa, &old[i]);
        t = saved_termios;
        /* No echo, but the final line break still shows, as with getpass(). */
        t.c_lflag &= ~(tcflag_t) ECHO;
        t.c_lflag |= ECHONL;
        /* Set before the question appears, so nothing typed after it can echo. */
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0) {
                r = -errno;
                goto finish;
        }
        printf(_("%s: "), question);
        r = read_secret(ret);
        (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
finish:
        termios_saved = 0;
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                (void) sigaction(sigs[i], &old[i], NULL);
        return r;
}

int prompt_yes_no(const char *question, bool def, bool *ret) {
        for (;;) {
                _cleanup_free_ char *answer = NULL;
                int r;

                /* TRANSLATORS: the answers a yes/no question takes; keep the default in
                 * capitals. Answers are read with the locale's yes/no patterns (o/n in French). */
                printf("%s %s ", question, def ? _("[Y/n]") : _("[y/N]"));
                r = read_answer(&answer);
                if (r <= 0) {
                        if (r == 0)
                                *ret = def;
                        return r;
                }
                r = rpmatch(answer);
                if (r >= 0) {
                        *ret = r == 1;
                        return 0;
                }
                printf(_("Please answer y (yes) or n (no).\n"));
        }
}

int prompt_number(const char *question, unsigned max, unsigned def, unsigned *ret) {
        for (;;) {
                _cleanup_free_ char *answer = NULL;
                char *end;
                unsigned long v;
                int r;

                /* TRANSLATORS: a question and the number answered by default: "Your choice [1]: ". */
                printf(_("%s [%u]: "), question, def);
                r = read_answer(&answer);
                if (r <= 0) {
                        if (r == 0)
                                *ret = def;
                        return r;
                }
                errno = 0;
                v = strtoul(answer, &end, 10);
                if (isdigit((unsigned char) *answer) && !*end && !errno && v >= 1 && v <= max) {
                        *ret = (unsigned) v;
                        return 0;
                }
                printf(_("Please type a number from 1 to %u.\n"), max);
        }
}
