#include <stdio.h>

#include "cli.h"
#include "i18n.h"
#include "strv.h"

const char *ansi_bold(void) { return arg_color ? "\033[1m" : ""; }
const char *ansi_red(void) { return arg_color ? "\033[1;31m" : ""; }
const char *ansi_yellow(void) { return arg_color ? "\033[33m" : ""; }
const char *ansi_grey(void) { return arg_color ? "\033[2m" : ""; }
const char *ansi_normal(void) { return arg_color ? "\033[0m" : ""; }

const char *cli_kind_words(CodeKind k) {
        switch (k) {
        case CODE_KIND_SPECIFIC: return _("specific code");
        case CODE_KIND_COMPANY: return _("company code");
        case CODE_KIND_ACCESS: return _("access code");
        case CODE_KIND_OTP: return _("login code");
        case CODE_KIND_REQUEST: return _("request number");
        case CODE_KIND_FILE: return _("file number");
        default: return _("code");
        }
}

int cli_load_config(Config **ret) {
        _cleanup_strv_free_ char **errors = NULL;
        int r;

        r = config_load(arg_config, ret, &errors);
        if (r == -ENOENT) {
                fprintf(stderr, _("alcode: cannot read the configuration '%s': no such file.\n"), arg_config);
                return r;
        }
        STRV_FOREACH(e, errors)
                fprintf(stderr, "%s\n", *e);
        if (r < 0 && !errors)
                fprintf(stderr, _("alcode: cannot load the configuration: %s\n"), strerror(-r));
        return r;
}

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

int cli_open_store(StoreMode mode, Store **ret) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        if (arg_db)
                path = strdup(arg_db);
        else {
                /* The config may name another database. */
                _cleanup_strv_free_ char **errors = NULL;
                r = config_load(arg_config, &config, &errors);
                if (r >= 0)
                        path = strdup(config->database);
                else if (arg_config || r != -EINVAL) {
                        STRV_FOREACH(e, errors)
                                fprintf(stderr, "%s\n", *e);
                        return r;
                } else
                        fprintf(stderr, _("alcode: warning: the configuration has errors ('alcode check' "
                                          "lists them); using the default database.\n"));
        }
        if (!path && store_default_path(&path) < 0) {
                fprintf(stderr, _("alcode: cannot find the database: set $HOME or use --db.\n"));
                return -ENXIO;
        }
        if (!path)
                return -ENOMEM;

        r = store_open(path, mode, ret, &error);
        switch (r) {
        case 0:
                return 0;
        case -ENOENT:
                fprintf(stderr, _("alcode: no database at '%s' yet: alcoded has not stored any code "
                                  "(is it running? see 'systemctl --user status alcoded').\n"), path);
                break;
        case -EPROTO:
                fprintf(stderr, _("alcode: the database '%s' was written by a newer alcode; "
                                  "upgrade alcode to read it.\n"), path);
                break;
        case -EBADMSG:
                fprintf(stderr, _("alcode: '%s' is not an alcode database or is damaged (%s).\n"), path,
                        strna(error));
                break;
        case -EBUSY:
                fprintf(stderr, _("alcode: the database '%s' is locked by another program; try again.\n"), path);
                break;
        case -EROFS:
        case -EACCES:
        case -EPERM:
                fprintf(stderr, _("alcode: cannot write to the database '%s': %s.\n"), path,
                        error ?: strerror(-r));
                break;
        default:
                fprintf(stderr, _("alcode: cannot open the database '%s': %s.\n"), path, error ?: strerror(-r));
        }
        return r;
}
