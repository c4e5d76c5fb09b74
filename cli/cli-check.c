/* alcode check: validates the configuration (with each account's password_command, which must
 * exist and be executable) and every rule file, printing each error as "file:line: message",
 * without touching the network or the store. */
#include <stdio.h>

#include "cli.h"
#include "i18n.h"
#include "secret.h"
#include "strv.h"

int verb_check(_unused_ int argc, _unused_ char *argv[]) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(rules_freep) Rules *rules = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        int r;

        r = config_load(arg_config, &config, &errors);
        if (r == -ENOENT) {
                fprintf(stderr, _("%s: no such file\n"), arg_config);
                return EXIT_NONE;
        }
        if (r >= 0 && secret_check_accounts(config, &errors) == -ENOMEM)
                r = -ENOMEM;
        if (r >= 0) {
                r = rules_load(config->rule_dirs, &rules, &errors);
                if (r < 0) {
                        fprintf(stderr, _("alcode: cannot load the rules: %s\n"), strerror(-r));
                        return EXIT_NONE;
                }
        }
        STRV_FOREACH(e, errors)
                printf("%s\n", *e);
        if (errors || r < 0)
                return EXIT_NONE;
        if (rules_count(rules) == 0) {
                printf(_("no rules found (looked in: "));
                STRV_FOREACH(d, config->rule_dirs)
                        printf("%s%s", *d, d[1] ? ", " : ")\n");
                return EXIT_NONE;
        }
        printf(_("%s: OK, %zu account(s), %zu rule(s)%s.\n"), config->path ?: _("default configuration"),
               config->n_accounts, rules_count(rules), rules_jit(rules) ? _(" (JIT)") : "");
        return 0;
}
