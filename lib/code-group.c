#include <string.h>

#include "code-group.h"
#include "macro.h"

const CodeKind code_group_listed[4] = { CODE_KIND_SPECIFIC, CODE_KIND_ACCESS, CODE_KIND_COMPANY, CODE_KIND_OTP };

static bool listed(CodeKind k) {
        for (size_t i = 0; i < ELEMENTSOF(code_group_listed); i++)
                if (code_group_listed[i] == k)
                        return true;
        return false;
}

/* d shows instead of c at any time c could show: newer, and unexpired whenever c is. */
static bool dominates(const StoredCode *d, const StoredCode *c) {
        if (d->kind != c->kind || !d->trusted)
                return false;
        if (d->date < c->date ||
            (d->date == c->date && strcmp(strempty(d->value), strempty(c->value)) <= 0))
                return false;
        return d->expires_at == 0 || (c->expires_at != 0 && d->expires_at >= c->expires_at);
}

size_t code_group_fold(StoredCode *codes, size_t n_codes, CodeTally *t) {
        size_t out = 0;

        for (size_t i = 0; i < n_codes; i++) {
                StoredCode *c = &codes[i];
                bool fold = !c->trusted || !listed(c->kind);

                /* Against the kept ones and those still to come; a folded one never dominates
                 * (its dominator, kept or to come, dominates whatever it would have). */
                for (size_t j = 0; !fold && j < out; j++)
                        fold = dominates(&codes[j], c);
                for (size_t j = i + 1; !fold && j < n_codes; j++)
                        fold = dominates(&codes[j], c);
                if (!fold) {
                        if (out != i)
                                codes[out] = *c;
                        out++;
                        continue;
                }
                t->n++;
                if (!c->trusted)
                        t->untrusted++;
                else if (c->kind >= 0 && c->kind < _CODE_KIND_MAX)
                        t->trusted[c->kind]++;
                stored_code_done(c);
        }
        return out;
}
