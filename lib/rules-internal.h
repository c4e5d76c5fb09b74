/* The inside of a compiled Rules, shared by the two halves of lib/rules: rules-parse.c builds it
 * from rule files, rules.c matches messages against it. Nothing outside those two files includes
 * this header. */
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>

#include "rules.h"
#include "strmap.h"

#define RULES_OVECTOR_PAIRS 64 /* match data: groups of one pattern, plus one */

typedef struct SourcePiece {
        size_t offset; /* in source */
        unsigned line, column;
} SourcePiece;

typedef struct Regex {
        char *source;
        SourcePiece *pieces;
        size_t n_pieces;
        pcre2_code *code;
        int code_group; /* number of the "code" group, or -1 */
        bool jit;
} Regex;

typedef enum RuleCheck {
        RULE_CHECK_NONE,
        RULE_CHECK_SIRET,     /* all-digit values must be a Luhn-valid SIREN (9) or SIRET (14) */
        RULE_CHECK_NOT_SIRET, /* a Luhn-valid 14-digit value is a SIRET, not this kind */
        _RULE_CHECK_MAX,
        _RULE_CHECK_INVALID = -EINVAL,
} RuleCheck;

typedef struct Rule Rule;

struct Rule {
        char *name;
        char *id; /* name@version */
        char *file;
        unsigned line;
        CodeKind kind;
        char **senders;
        char **exclude_senders;
        char **keywords;         /* folded, lower case */
        size_t *keyword_ids;     /* indexes of keywords in Rules.keywords */
        size_t n_keyword_ids;
        bool employer;
        Regex brand, requires, subject, body;
        Regex *patterns;
        size_t n_patterns;
        Regex *rejects;
        size_t n_rejects;
        Regex *reject_contexts;
        size_t n_reject_contexts;
        Regex *reject_sentences;
        size_t n_reject_sentences;
        unsigned min_length, max_length, min_digits;
        RuleCheck check;
        bool in_subject, in_body;
};

struct Rules {
        Rule *rules;
        size_t n_rules, rules_allocated;
        char **trusted_domains;
        size_t n_trusted_domains, trusted_domains_allocated;
        StrMap trusted_domain_index;
        char **keywords;
        pcre2_code *keyword_re;  /* (kw1)|(kw2)|...: group i+1 is keyword i */
        bool jit;
};

/* The line and column where byte offset of x's (unexpanded) source was written. */
void regex_position(const Regex *x, size_t offset, unsigned *ret_line, unsigned *ret_column);
