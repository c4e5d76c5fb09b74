/* Small file-system helpers shared by the store and `alcode init`. */
#pragma once

#include <sys/types.h>

/* Creates the folders above path that are missing: the innermost (path's own folder) with
 * mode, the ones above it with 0755 (less the umask), as ~/.local/share would be. Returns 0
 * or -errno. */
int mkdir_parents(const char *path, mode_t mode);
