/* Small helpers in the systemd idiom: cleanup attributes, ownership transfer, string tests,
 * string tables (DEFINE_STRING_TABLE_LOOKUP), a vasprintf() that cannot leave garbage. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))
#define _pure_ __attribute__((pure))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x) /* a macro's value as a string literal */
#include <sys/param.h> /* MIN, MAX: libetpan pulls this in too, so use the same definition */

/* Hands over ownership of *p: returns its value and leaves NULL behind. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _ptr_ = (p);                                                         \
                (p) = NULL;                                                                        \
                _ptr_;                                                                             \
        })

#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd_ = (fd);                                                                   \
                (fd) = -EBADF;                                                                     \
                _fd_;                                                                              \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes fd when valid; returns -EBADF to assign back: fd = safe_close(fd). */
static inline int safe_close(int fd) {
        if (fd >= 0)
                (void) close(fd);
        return -EBADF;
}

static inline void closep(int *fd) {
        if (*fd >= 0)
                (void) close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Defines name##p(), a cleanup wrapper for a free function that accepts NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
        static inline void func##p(type *p) {                                                      \
                if (*p)                                                                            \
                        func(*p);                                                                  \
        }

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool strcaseeq(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

static inline const char *strempty(const char *s) {
        return s ?: "";
}

static inline const char *strna(const char *s) {
        return s ?: "n/a";
}

/* Returns the part of s after prefix, or NULL when s does not start with it. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

static inline const char *startswith_no_case(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncasecmp(s, prefix, l) == 0 ? s + l : NULL;
}

static inline bool endswith(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

/* Wipes a secret before freeing it. */
static inline void erase_and_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}
static inline void erase_and_freep(char **p) {
        erase_and_free(*p);
}
#define _cleanup_erase_ _cleanup_(erase_and_freep)

/* vasprintf() that returns the string, or NULL when out of memory (where vasprintf() leaves its
 * pointer undefined): the one formatter under every printf-like error and list helper. */
_printf_(1, 0) static inline char *vasprintf_safe(const char *fmt, va_list ap) {
        char *s;

        return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

/* Convert a libc -1/errno result into -errno. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

#define RET_NERRNO(expr)                                                                           \
        ({                                                                                         \
                int _r_ = (expr);                                                                  \
                _r_ < 0 ? negative_errno() : _r_;                                                  \
        })

/* systemd's DEFINE_STRING_TABLE_LOOKUP: name##_to_string() and name##_from_string() for an
 * enum type whose values index table, an array of rows with a member `string` (other members
 * are other columns of the same table). _from_string() returns -EINVAL for NULL or an unknown
 * string, so the enum needs its _..._INVALID = -EINVAL. The _PRIVATE_ forms define static
 * functions, one direction each; _FROM_STRING_CASE ignores ASCII case (config values). */
#define _DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, table, scope)                            \
        scope const char *name##_to_string(type i) {                                               \
                return i >= 0 && (size_t) i < ELEMENTSOF(table) ? table[i].string : NULL;          \
        }
#define _DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, table, scope, eq)                      \
        scope type name##_from_string(const char *s) {                                             \
                for (size_t i = 0; s && i < ELEMENTSOF(table); i++)                                \
                        if (table[i].string && eq(table[i].string, s))                             \
                                return (type) i;                                                   \
                return (type) -EINVAL;                                                             \
        }
#define DEFINE_STRING_TABLE_LOOKUP(name, type, table)                                              \
        _DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, table, )                                 \
        _DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, table, , streq)
#define DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, table)                                    \
        _DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, table, )
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP_TO_STRING(name, type, table)                            \
        _DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type, table, static)
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, table)                          \
        _DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, table, static, streq)
#define DEFINE_PRIVATE_STRING_TABLE_LOOKUP_FROM_STRING_CASE(name, type, table)                     \
        _DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type, table, static, strcaseeq)
