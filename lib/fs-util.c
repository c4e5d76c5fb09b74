/* Folders: creating a path's parents with the right modes, and finding the user's own folders
 * (home, XDG config and data) through libsystemd's sd_path_lookup(), the one place they are
 * resolved. */
#include <assert.h>
#include <stdint.h>
#include <sys/stat.h>

#include <systemd/sd-path.h>

#include "fs-util.h"
#include "macro.h"

int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = 0;
        for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
                *p = 0;
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(dir, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int user_path(UserDir dir, const char *suffix, char **ret) {
        static const uint64_t types[] = {
                [USER_DIR_HOME] = SD_PATH_USER,
                [USER_DIR_CONFIG] = SD_PATH_USER_CONFIGURATION,
                [USER_DIR_DATA] = SD_PATH_USER_SHARED,
        };

        assert(dir >= 0 && (size_t) dir < ELEMENTSOF(types));
        return sd_path_lookup(types[dir], isempty(suffix) ? NULL : suffix, ret);
}

int path_expand(const char *in, char **ret) {
        static const struct {
                const char *prefix;
                UserDir dir;
        } prefixes[] = {
                { "~", USER_DIR_HOME },
                { "$HOME", USER_DIR_HOME },
                { "$XDG_CONFIG_HOME", USER_DIR_CONFIG },
                { "$XDG_DATA_HOME", USER_DIR_DATA },
        };
        char *out;

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                size_t l = strlen(prefixes[i].prefix);
                if (strncmp(in, prefixes[i].prefix, l) == 0 && (in[l] == '/' || in[l] == 0))
                        return user_path(prefixes[i].dir, in + l, ret);
        }
        out = strdup(in);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}
