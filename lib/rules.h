/* Rule files: what makes a code, of which kind, from whom. See alcode.rules(5) and the shipped
 * pack in config/rules.d/.
 *
 * A file holds [rules] (version), [define] (fragments reused as {NAME} in patterns) and
 * [rule NAME] sections with the keys:
 *   kind            specific | company | access | otp | request | file
 *   senders         domains whose mail the rule trusts (the domain or a subdomain of it)
 *   employer        yes: also trust the configured employer_domains
 *   keywords        plain words (comma separated); mail from a sender the rule does not trust
 *                   is read only when one of them appears in its subject, sender or text
 *                   (caseless, accents ignored): a necessary condition, also used by the IMAP
 *                   backfill to narrow SEARCH. Required with `brand`.
 *   brand           regex; mail from senders the rule does not trust is read only when it
 *                   matches there too (its codes are then untrusted)
 *   exclude_senders domains never read unless trusted (other administrations that send the
 *                   same kind of number)
 *   requires        regex that must match somewhere: subject, text or sender
 *   subject, body   regex guards: the subject / some body text must match
 *   pattern         regex (several allowed) whose named group (?<code>...) captures a value
 *   reject          regex on the captured value: vetoes it (phone numbers, dates...)
 *   reject_context  regex on the line holding the value: vetoes it (legal footers...)
 *   reject_sentence regex on the sentence holding the value: vetoes it ("... ne fonctionnera
 *                   pas", "ancien code", "ne pas utiliser": wording that says it is wrong)
 *   length, min_digits, check (none | siret | not-siret), where (subject, body)
 * Values may continue on indented lines (joined without a blank), and [define] fragments may
 * use one another; " ;" starts a comment (inih), so a pattern never holds a blank before ';'.
 * The candidate a pattern captures is checked (length, digits, check, reject, reject_context,
 * reject_sentence);
 * when it is too long or has too few digits it is read again without its leading words of
 * letters ("ACTION LOGEMENT EMPJ8D2R4U"). One value claimed by several kinds goes to the kind
 * whose label is closest. Errors name file:line:column, inside fragments too.
 * Patterns are PCRE2 with UTF|UCP|CASELESS|MULTILINE, JIT-compiled when the system allows it,
 * and run on folded text (text_fold()). Compiled Rules are immutable and shared by every
 * thread; each thread matches through its own RuleMatcher (match data, JIT stack, limits). */
#pragma once

#include <stddef.h>

#include "message.h"
#include "sender.h"

typedef struct Rules Rules;
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
/* Every `keywords =` word of every rule (borrowed, valid while r lives). A message from a
 * sender that no rule trusts (and that is not an employer domain when a rule trusts those)
 * yields nothing unless one of these words appears, caseless, in its subject, From (name or
 * address) or text: an IMAP backfill may narrow its SEARCH with them. */
char *const *rules_search_keywords(const Rules *r) _pure_;
/* True when the JIT compiled every pattern. */
bool rules_jit(const Rules *r) _pure_;

/* One piece of text to match: folded UTF-8 (text_fold()). */
typedef struct RuleText {
        const char *text;
        size_t len;
        bool subject;      /* the Subject line */
        bool quoted;       /* quoted or inline-forwarded text: never trusted */
        unsigned attached; /* > 0: from an attached (forwarded) message: never trusted */
} RuleText;

/* What rules_match() reports to an explain callback: each candidate and its fate, and each
 * rule that did not run (display == NULL, rejected says why). */
typedef struct RuleVerdict {
        const char *rule;        /* "name@version" */
        const char *file;
        unsigned line;           /* of the pattern (of the rule when display is NULL) */
        CodeKind kind;
        const char *display;     /* the captured text (not NUL-terminated: display_len), or NULL */
        size_t display_len;
        size_t offset;           /* in the text */
        unsigned text_index;
        bool trusted;
        bool ran;                /* display == NULL: the rule ran but no pattern matched */
        const char *rejected;    /* NULL: accepted; else why */
} RuleVerdict;

typedef void (*RuleExplainFunc)(const RuleVerdict *v, void *userdata);

/* A fixed pattern of the program's own (UTF, UCP, caseless), for matching outside the rules:
 * through the same one PCRE2 call as the rules, so any text may be given. */
typedef struct RulePattern RulePattern;
/* Returns 0, -EINVAL for a pattern PCRE2 refuses, or -ENOMEM. */
int rule_pattern_new(const char *pattern, RulePattern **ret);
RulePattern *rule_pattern_free(RulePattern *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(RulePattern *, rule_pattern_free);
/* Where p first matches in text (len bytes, any bytes): 1 with *ret_offset, 0 for none (a
 * PCRE2 error such as a match limit counts as none), or -ENOMEM. m lends its match data and
 * limits. */
int rule_pattern_find(const RulePattern *p, RuleMatcher *m, const char *text, size_t len, size_t *ret_offset);

/* Whether one of the rules' keywords (any rule's) is in text: 1, 0, or -ENOMEM. */
int rules_keywords_in(const Rules *r, RuleMatcher *m, const char *text, size_t len);

int rule_matcher_new(RuleMatcher **ret);
RuleMatcher *rule_matcher_free(RuleMatcher *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(RuleMatcher *, rule_matcher_free);

/* Runs every rule over texts and adds the codes found to msg (deduplicated by kind and value;
 * when one value is claimed by several kinds, the kind whose label is closest wins).
 * warnings receives "file:line: rule 'x': ..." for patterns stopped by PCRE2's limits.
 * Sets msg->read_by_rules when a rule got past its sender gate (trusted sender, or its keywords
 * there). Returns the number of codes added, or -ENOMEM. */
int rules_match(const Rules *r, RuleMatcher *m, const RuleText *texts, size_t n_texts,
                const SenderInfo *sender, Message *msg, RuleExplainFunc explain, void *userdata,
                char ***warnings);
