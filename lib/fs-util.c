#include <sys/stat.h>

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
