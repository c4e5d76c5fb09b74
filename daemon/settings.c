/* The rule digest is a SHA-256 over every *.rules file in the rule folders (name and bytes, in
 * folder then name order). It is coarser than what rules_load() keeps (a shadowed file counts
 * too), which only costs a needless worker restart on reload, never a missed change. */
#include <dirent.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>

#include "log.h"
#include "secret.h"
#include "store.h"
#include "settings.h"
#include "strv.h"

#define RULE_FILE_MAX (4u << 20)

static int hash_file(gnutls_hash_hd_t h, const char *dir, const char *name) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *path = NULL;
        char buf[16384];
        size_t total = 0;
        ssize_t k;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return 0; /* rules_load() reports unreadable files */
        (void) gnutls_hash(h, name, strlen(name) + 1);
        while ((k = read(fd, buf, sizeof buf)) > 0 && total < RULE_FILE_MAX) {
                (void) gnutls_hash(h, buf, (size_t) k);
                total += (size_t) k;
        }
        return 0;
}

static int filter_rules(const struct dirent *de) {
        return de->d_name[0] != '.' && endswith(de->d_name, ".rules");
}

static int rules_digest(char *const *dirs, uint8_t ret[static 32]) {
        gnutls_hash_hd_t h;
        int r = 0;

        if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
                return -ENOMEM;
        STRV_FOREACH(d, dirs) {
                struct dirent **list = NULL;
                int n = scandir(*d, &list, filter_rules, alphasort);

                (void) gnutls_hash(h, *d, strlen(*d) + 1);
                for (int i = 0; i < n; i++) {
                        if (r >= 0)
                                r = hash_file(h, *d, list[i]->d_name);
                        free(list[i]);
                }
                free(list);
        }
        gnutls_hash_deinit(h, ret);
        return r;
}

int settings_load(const char *path, Settings **ret, char **ret_first_error) {
        _cleanup_(settings_unrefp) Settings *s = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        int r;

        s = calloc(1, sizeof(Settings));
        if (!s)
                return log_oom();
        s->n_ref = 1;

        r = config_load(path, &s->config, &errors);
        if (r == -ENOENT)
                return log_error_errno(r, "Cannot read the configuration '%s': no such file.", path);
        if (r < 0 && r != -EINVAL)
                return log_error_errno(r, "Cannot load the configuration: %m");
        /* What config_load() leaves to its callers: the helpers' run bits, the default store. */
        if (r >= 0 && secret_check_accounts(s->config, &errors) < 0)
                return log_oom();
        if (r >= 0 && !s->config->database && (r = store_default_path(&s->config->database)) < 0)
                return log_error_errno(r, "Cannot find the default database path: %m");
        if (r >= 0) {
                r = rules_load(s->config->rule_dirs, &s->rules, &errors);
                if (r < 0)
                        return log_error_errno(r, "Cannot load the rules: %m");
        }
        if (strv_length(errors) > 0) {
                STRV_FOREACH(e, errors)
                        log_error("%s", *e);
                if (ret_first_error)
                        *ret_first_error = strdup(errors[0]);
                return -EINVAL;
        }
        if (rules_count(s->rules) == 0)
                return log_error_errno(-ENOENT, "No rules found in the rule folders; is alcode installed correctly?");
        r = rules_digest(s->config->rule_dirs, s->rules_digest);
        if (r < 0)
                return log_oom();
        log_debug("%zu rules loaded%s.", rules_count(s->rules), rules_jit(s->rules) ? " (JIT)" : "");
        *ret = TAKE_PTR(s);
        return 0;
}

Settings *settings_ref(Settings *s) {
        if (s)
                s->n_ref++;
        return s;
}

Settings *settings_unref(Settings *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        rules_free(s->rules);
        config_free(s->config);
        free(s);
        return NULL;
}

static bool domains_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strcaseeq(a[i], b[i]))
                        return false;
        return true;
}

bool settings_workers_equal(const Settings *a, const Settings *b) {
        return memcmp(a->rules_digest, b->rules_digest, sizeof a->rules_digest) == 0 &&
               domains_equal(a->config->employer_domains, b->config->employer_domains);
}
