/* Loading the rules for alcode scan, with its errors on stderr (alcode check prints them as its
 * findings, on stdout). Kept apart from cli-common.c: rules bring in PCRE2 and the mail parser,
 * which the store verbs of `alcode` do without. */
#include <stdio.h>

#include "cli.h"
#include "i18n.h"
#include "strv.h"

int cli_load_rules(const Config *config, Rules **ret) {
        _cleanup_strv_free_ char **errors = NULL;
        int r;

        r = rules_load(config->rule_dirs, ret, &errors);
        if (r < 0) {
                fprintf(stderr, _("alcode: cannot load the rules: %s\n"), strerror(-r));
                return r;
        }
        STRV_FOREACH(e, errors)
                fprintf(stderr, "%s\n", *e);
        if (errors) {
                *ret = rules_free(*ret);
                return -EINVAL;
        }
        if (rules_count(*ret) == 0) {
                fprintf(stderr, _("alcode: no rules found (looked in: "));
                STRV_FOREACH(d, config->rule_dirs)
                        fprintf(stderr, "%s%s", *d, d[1] ? ", " : ")\n");
                *ret = rules_free(*ret);
                return -ENOENT;
        }
        return 0;
}
