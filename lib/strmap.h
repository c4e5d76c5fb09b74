/* A hash table from strings to numbers, for the loaders' "seen before?" questions (duplicate
 * accounts, rule names, keyword ids), which a linear search made quadratic. Keys are borrowed:
 * each must outlive the map and not change. Open addressing, linear probing, grown at 1/2 full;
 * the hash is seeded per process, so a file cannot be written to collide on purpose. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct StrMapSlot StrMapSlot;

typedef struct StrMap {
        StrMapSlot *slots;
        size_t n, allocated;
} StrMap;

#define STRMAP_INIT { NULL, 0, 0 }

/* Adds key → value. 0 when added, -EEXIST when key was there already (its value is left as
 * it was), -ENOMEM. */
int strmap_put(StrMap *m, const char *key, size_t value);
/* Whether key is there; its value in *ret (may be NULL). */
bool strmap_get(const StrMap *m, const char *key, size_t *ret);
size_t strmap_size(const StrMap *m);
void strmap_done(StrMap *m);
