/* gettext for user-visible strings (CLI messages, notifications). Never for log messages. */
#pragma once

#include <libintl.h>
#include <locale.h>

#define _(s) gettext(s)
#define N_(s) (s)

/* setlocale() + bindtextdomain("alcode", $ALCODE_LOCALE_DIR or the installed ALCODE_LOCALE_DIR). */
void i18n_setup(void);
