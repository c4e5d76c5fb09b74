#include <stdlib.h>

#include "build-config.h"
#include "i18n.h"

void i18n_setup(void) {
        /* $ALCODE_LOCALE_DIR points at the catalogs of a build tree (build/locale), as git's
         * $GIT_TEXTDOMAINDIR does, so that tests run the translations before installation.
         * secure_getenv(): ignored in a privileged process. */
        const char *dir = secure_getenv("ALCODE_LOCALE_DIR");

        (void) setlocale(LC_ALL, "");
        (void) bindtextdomain("alcode", dir && dir[0] == '/' ? dir : ALCODE_LOCALE_DIR);
        (void) bind_textdomain_codeset("alcode", "UTF-8");
        (void) textdomain("alcode");
}
