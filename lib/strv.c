/* NULL-terminated string vectors (see strv.h): append, search, split, copy, free, and the
 * "NAME=value" environment blocks built with them. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

#include "strv.h"

size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **c;

        if (!s)
                return -ENOMEM;
        c = reallocarray(*l, n + 2, sizeof(char *));
        if (!c) {
                free(s);
                return -ENOMEM;
        }
        c[n] = s;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_push(char ***l, size_t *n, size_t *allocated, char *s) {
        if (!s)
                return -ENOMEM;
        if (*allocated == 0 && *l)
                *allocated = *n + 1; /* the least any list of *n strings has */
        if (*n + 2 > *allocated) {
                size_t a = MAX(*allocated * 2, (size_t) 8);
                char **c = reallocarray(*l, a, sizeof(char *));
                if (!c) {
                        free(s);
                        return -ENOMEM;
                }
                *l = c;
                *allocated = a;
        }
        (*l)[(*n)++] = s;
        (*l)[*n] = NULL;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        return strv_consume(l, strdup(s));
}

int strv_extendf(char ***l, const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        s = vasprintf_safe(fmt, ap);
        va_end(ap);
        return strv_consume(l, s); /* -ENOMEM for NULL */
}

int strv_pushf(char ***l, size_t *n, size_t *allocated, const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        s = vasprintf_safe(fmt, ap);
        va_end(ap);
        return strv_push(l, n, allocated, s); /* -ENOMEM for NULL */
}

bool strv_contains(char *const *l, const char *s) {
        STRV_FOREACH(i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

bool strv_contains_case(char *const *l, const char *s) {
        STRV_FOREACH(i, l)
                if (strcaseeq(*i, s))
                        return true;
        return false;
}

int strv_split_comma(const char *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const char *p = s;

        while (p && *p) {
                const char *e = strchr(p, ','), *end = e ?: p + strlen(p);
                const char *a = p, *b = end;
                int r;

                while (a < b && isspace((unsigned char) *a))
                        a++;
                while (b > a && isspace((unsigned char) b[-1]))
                        b--;
                if (b > a) {
                        r = strv_consume(&l, strndup(a, (size_t) (b - a)));
                        if (r < 0)
                                return r;
                }
                p = e ? e + 1 : NULL;
        }
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

char **strv_copy(char *const *l) {
        size_t n = strv_length(l);
        char **c = calloc(n + 1, sizeof(char *));

        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(l[i]);
                if (!c[i])
                        return strv_free(c);
        }
        return c;
}

char **strv_free(char **l) {
        STRV_FOREACH(i, l)
                free(*i);
        free(l);
        return NULL;
}

const char *strv_env_get(char *const *l, const char *name) {
        size_t k = strlen(name);

        STRV_FOREACH(s, l)
                if (strncmp(*s, name, k) == 0 && (*s)[k] == '=')
                        return *s + k + 1;
        return NULL;
}

int strv_env_set(char ***l, const char *name, const char *value) {
        size_t k = strlen(name);
        char *item;

        if (asprintf(&item, "%s=%s", name, value) < 0)
                return -ENOMEM;
        for (char **s = *l; s && *s; s++)
                if (strncmp(*s, name, k) == 0 && (*s)[k] == '=') {
                        free(*s);
                        *s = item;
                        return 0;
                }
        return strv_consume(l, item);
}
