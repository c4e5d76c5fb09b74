/* What a group notification (several codes at once: a backfill) shows of its codes: the
 * newest trusted code of each listed kind, one by one; every other code only counted, per kind
 * or as untrusted. alcoded holds an account's new codes until its backfill ends (and --once
 * holds them to the end): folding the codes that will only be counted into a tally keeps that
 * list a handful long, however many codes a backfill of a million messages brings. */
#pragma once

#include <stddef.h>

#include "message.h"
#include "store.h"

/* The kinds a group notification lists, in the order it lists them. */
extern const CodeKind code_group_listed[4];

/* Codes folded out of a list: counted, never listed. */
typedef struct CodeTally {
        size_t n;                        /* every code folded */
        size_t trusted[_CODE_KIND_MAX];  /* trusted ones, per kind */
        size_t untrusted;
} CodeTally;

/* Folds out of codes (freeing them, counting them in t) every code that a group notification
 * would only count, whatever the time it is shown at: untrusted codes, kinds it does not list,
 * and a trusted code of a listed kind when another one of that kind is newer (date, then value,
 * as the store orders them) and expires no sooner. The others keep their order. Returns their
 * number. Only for a group: a single code is shown alone (the caller folds only two or more). */
size_t code_group_fold(StoredCode *codes, size_t n_codes, CodeTally *t);
