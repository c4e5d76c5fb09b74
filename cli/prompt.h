/* Questions on the terminal, for `alcode init`: a line, a secret typed without echo, yes/no in
 * the user's language (rpmatch(): "o" answers yes in French), a number from a menu.
 *
 * Questions are given without final punctuation: "Port" shows as "Port [993]: ". Prompts go to
 * stdout, answers come from stdin. Every function returns 0 with the answer, or
 * -ECANCELED when the user pressed Ctrl-D (end of input), or -errno. While a secret is read,
 * SIGINT, SIGTERM and SIGHUP restore the terminal's echo before the program dies. */
#pragma once

#include "macro.h"

/* A line without its line break, blanks trimmed at both ends. An empty answer gives a copy of
 * def (when not NULL) or "". The answer is owned by the caller. */
int prompt_line(const char *question, const char *def, char **ret);

/* A secret: echo off while it is typed; only its line break is removed. The caller wipes it
 * with erase_and_free(). Needs stdin to be a terminal (-ENOTTY otherwise). */
int prompt_secret(const char *question, char **ret);

/* Yes or no; an empty answer gives def. Asks again until the answer is understood. */
int prompt_yes_no(const char *question, bool def, bool *ret);

/* A number in [1, max]; an empty answer gives def. Asks again until it gets one. */
int prompt_number(const char *question, unsigned max, unsigned def, unsigned *ret);
