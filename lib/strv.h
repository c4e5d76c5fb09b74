/* NULL-terminated string vectors (owned strings in an owned array). */
#pragma once

#include <stddef.h>

#include "macro.h"

size_t strv_length(char *const *l);
/* Appends a copy of s. */
int strv_extend(char ***l, const char *s);
/* Appends s itself, taking ownership (s is freed on failure). */
int strv_consume(char ***l, char *s);
int strv_extendf(char ***l, const char *fmt, ...) _printf_(2, 3);
/* Appends s (taken; freed on failure) to *l, which holds *n strings, and keeps it
 * NULL-terminated. *allocated (0 at first) is the room the caller keeps for it, grown by
 * doubling: appends cost O(1), where strv_consume() counts the whole list each time. For lists
 * built in a loop whose length is not bounded by a small constant. */
int strv_push(char ***l, size_t *n, size_t *allocated, char *s);
/* strv_push() of a formatted string. */
int strv_pushf(char ***l, size_t *n, size_t *allocated, const char *fmt, ...) _printf_(4, 5);
bool strv_contains(char *const *l, const char *s);
bool strv_contains_case(char *const *l, const char *s);
/* Splits s at commas, trimming blanks around each item; empty items are dropped. */
int strv_split_comma(const char *s, char ***ret);
char **strv_copy(char *const *l);
char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)

/* Environment blocks ("NAME=value" items). The value of name, or NULL. */
const char *strv_env_get(char *const *l, const char *name);
/* Sets name=value, replacing an item of that name. */
int strv_env_set(char ***l, const char *name, const char *value);
