/* Rule files: what makes a code, of which kind, from whom. See alcode.rules(5).
 *
 * A file holds [rules] (version), [define] (fragments reused as {NAME} in patterns) and
 * [rule NAME] sections. Patterns are PCRE2 with UTF|UCP|CASELESS|MULTILINE, JIT-compiled when
 * the system allows it, and run on folded text (text_fold()). Compiled Rules are immutable and
 * shared by every thread; each thread matches through its own RuleMatcher (match data, JIT
 * stack, limits). */
#pragma once

#include <stddef.h>

#include "message.h"
#include "sender.h"

typedef struct Rules Rules;
typedef struct Rule Rule;
typedef struct RuleMatcher RuleMatcher;

/* Loads every *.rules file in dirs, in order; a file whose name was already seen in an earlier
 * directory replaces it (as systemd drop-ins do). Missing directories are skipped. Errors are
 * appended to *errors as "file:line:column: message"; the rules that compiled are kept.
 * Returns 0 (check *errors) or -ENOMEM. */
int rules_load(char *const *dirs, Rules **ret, char ***errors);
/* The same for an explicit list of files. */
int rules_load_files(char *const *files, Rules **ret, char ***errors);
Rules *rules_free(Rules *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Rules *, rules_free);

size_t rules_count(const Rules *r) _pure_;
/* Every sender domain some rule trusts (borrowed, valid while r lives). */
char *const *rules_trusted_domains(const Rules *r) _pure_;
/* Every `keywords =` literal of every rule (borrowed, valid while r lives): plain words that a
 * message from a sender the rule does not trust must contain (in subject, sender name or body)
 * for the rule to find anything there. Used to narrow an IMAP backfill with server-side SEARCH;
 * matching itself never relies on them. */
char *const *rules_search_keywords(const Rules *r) _pure_;
/* True when the JIT compiled every pattern. */
bool rules_jit(const Rules *r) _pure_;

/* One piece of text to match: folded UTF-8. */
typedef struct RuleText {
        const char *text;
        size_t len;
        bool subject;      /* the Subject line */
        unsigned attached; /* > 0: from an attached (forwarded) message: never trusted */
} RuleText;

/* What rules_match() reports to an explain callback: each candidate and its fate. */
typedef struct RuleVerdict {
        const char *rule;        /* "name@version" */
        const char *file;
        unsigned line;           /* of the pattern */
        CodeKind kind;
        const char *display;     /* the captured text (not NUL-terminated: display_len) */
        size_t display_len;
        size_t offset;           /* in the text */
        unsigned text_index;
        bool trusted;
        const char *rejected;    /* NULL: accepted; else why */
} RuleVerdict;

typedef void (*RuleExplainFunc)(const RuleVerdict *v, void *userdata);

int rule_matcher_new(RuleMatcher **ret);
RuleMatcher *rule_matcher_free(RuleMatcher *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(RuleMatcher *, rule_matcher_free);

/* Runs every rule over texts and adds the codes found to msg (deduplicated by kind and value;
 * when one value is claimed by several kinds, the kind whose label is closest wins).
 * warnings receives "file:line: rule 'x': ..." for patterns stopped by PCRE2's limits.
 * Returns the number of codes added, or -ENOMEM. */
int rules_match(const Rules *r, RuleMatcher *m, const RuleText *texts, size_t n_texts,
                const SenderInfo *sender, Message *msg, RuleExplainFunc explain, void *userdata,
                char ***warnings);
