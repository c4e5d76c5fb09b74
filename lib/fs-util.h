/* Small file-system helpers shared by the store, the config and `alcode init`: folders, and
 * the user's own folders (XDG base directories) resolved in one place. */
#pragma once

#include <sys/types.h>

/* Creates the folders above path that are missing: the innermost (path's own folder) with
 * mode, the ones above it with 0755 (less the umask), as ~/.local/share would be. Returns 0
 * or -errno. */
int mkdir_parents(const char *path, mode_t mode);

typedef enum UserDir {
        USER_DIR_HOME,   /* $HOME */
        USER_DIR_CONFIG, /* $XDG_CONFIG_HOME, else ~/.config */
        USER_DIR_DATA,   /* $XDG_DATA_HOME, else ~/.local/share */
} UserDir;

/* The user's folder dir joined with suffix (NULL or "" for the folder itself), resolved by
 * sd_path_lookup() as systemd resolves it: an $XDG_* variable counts only when it is an
 * absolute path, $HOME only when absolute and normalised, else the home folder of the user's
 * passwd entry. Returns 0 and an owned string, or -errno. */
int user_path(UserDir dir, const char *suffix, char **ret);

/* Expands a leading ~ and $HOME, $XDG_CONFIG_HOME, $XDG_DATA_HOME (followed by '/' or the end)
 * with user_path(); anything else is copied. Returns 0 and an owned string, or -errno. */
int path_expand(const char *in, char **ret);
