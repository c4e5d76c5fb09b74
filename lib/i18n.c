#include "build-config.h"
#include "i18n.h"

void i18n_setup(void) {
        (void) setlocale(LC_ALL, "");
        (void) bindtextdomain("alcode", ALCODE_LOCALE_DIR);
        (void) bind_textdomain_codeset("alcode", "UTF-8");
        (void) textdomain("alcode");
}
