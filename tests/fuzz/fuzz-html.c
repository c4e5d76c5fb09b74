/* libFuzzer: HTML to text, folding, link removal and the quote splitter, chained as the
 * pipeline chains them; every output must be valid UTF-8 within its cap. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(const char *s, size_t n) {
        char *copy = NULL;
        size_t l;

        /* Sanitizing valid UTF-8 changes nothing. */
        if (text_utf8_sanitize(s, n, 0, &copy, &l) < 0 || l != n || memcmp(copy, s, n) != 0)
                abort();
        free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *utf8 = NULL, *plain = NULL, *folded = NULL, *own = NULL, *quoted = NULL;
        size_t ul, pl, fl, ol, ql;
        const size_t cap = 64 * 1024;

        if (text_to_utf8("windows-1252", (const char *) data, size, cap, &utf8, &ul) < 0 && !utf8)
                return 0;
        check_utf8(utf8, ul);
        if (text_html_to_text(utf8, ul, cap, &plain, &pl) == -ENOMEM)
                goto out;
        check_utf8(plain, pl);
        if (pl > cap)
                abort();
        if (text_fold(plain, pl, cap, &folded, &fl) == -ENOMEM)
                goto out;
        check_utf8(folded, fl);
        fl = text_remove_links(folded, fl);
        check_utf8(folded, fl);
        if (text_split_quoted(folded, fl, &own, &ol, &quoted, &ql) > 0) {
                check_utf8(own, ol);
                check_utf8(quoted, ql);
                if (ol + ql > fl + fl / 2 + 2)
                        abort();
        }
out:
        free(utf8);
        free(plain);
        free(folded);
        free(own);
        free(quoted);
        return 0;
}
