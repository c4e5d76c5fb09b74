/* Matching messages against compiled Rules (built by rules-parse.c): judging each candidate a
 * pattern captures and arbitrating between kinds.
 *
 * A rule runs on a message when the sender is one it trusts, or, for other senders,
 * when one of its keywords and its `brand` pattern appear (then its codes are untrusted). All
 * keywords of all rules are one PCRE2 pattern, run once per message and only when some rule
 * needs it, so that the bulk of the mail (no trusted sender, no keyword) costs one scan.
 * Guards narrow further; each pattern's (?<code>...) capture is then checked (length, digits,
 * SIRET/Luhn, reject patterns) and canonicalised; of the codes found, one value goes to the
 * kind whose label is closest.
 *
 * PCRE2 reads its subjects without checking their UTF-8 (PCRE2_NO_UTF_CHECK: checking every
 * call would cost a pass over the text per pattern), so this file makes sure once: every text
 * becomes a Subject when rules_match() starts (valid, or copied with U+FFFD), parts of it are
 * cut at character boundaries, and subject_match() is the only call of pcre2_match(). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

#include "rules-internal.h"
#include "strbuf.h"
#include "strmap.h"
#include "strv.h"
#include "text.h"

#define RULES_MAX_CANDIDATES 256
#define RULES_MATCH_LIMIT 1000000
#define RULES_DEPTH_LIMIT 5000
#define RULES_HEAP_LIMIT_KIB 20480

struct RuleMatcher {
        pcre2_match_data *md;
        pcre2_match_context *mc;
        pcre2_jit_stack *jit_stack;
        pcre2_match_data *keyword_md;
        bool *keyword_seen;      /* per keyword, for the message being matched */
        size_t n_keyword_seen;
};
int rule_matcher_new(RuleMatcher **ret) {
        _cleanup_(rule_matcher_freep) RuleMatcher *m = calloc(1, sizeof(RuleMatcher));

        if (!m)
                return -ENOMEM;
        m->md = pcre2_match_data_create(RULES_OVECTOR_PAIRS, NULL);
        m->mc = pcre2_match_context_create(NULL);
        if (!m->md || !m->mc)
                return -ENOMEM;
        /* No JIT stack means the JIT's default 32 KiB one: still correct, limits still apply. */
        m->jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        (void) pcre2_set_match_limit(m->mc, RULES_MATCH_LIMIT);
        (void) pcre2_set_depth_limit(m->mc, RULES_DEPTH_LIMIT);
        (void) pcre2_set_heap_limit(m->mc, RULES_HEAP_LIMIT_KIB);
        if (m->jit_stack)
                pcre2_jit_stack_assign(m->mc, NULL, m->jit_stack);
        *ret = TAKE_PTR(m);
        return 0;
}

RuleMatcher *rule_matcher_free(RuleMatcher *m) {
        if (!m)
                return NULL;
        pcre2_match_data_free(m->md);
        pcre2_match_context_free(m->mc);
        pcre2_jit_stack_free(m->jit_stack);
        pcre2_match_data_free(m->keyword_md);
        free(m->keyword_seen);
        free(m);
        return NULL;
}

#define CONTINUATION_BYTE(c) (((unsigned char) (c) & 0xC0) == 0x80)

/* A text PCRE2 reads: valid UTF-8, so that PCRE2 need not check it again at every call
 * (PCRE2_NO_UTF_CHECK, where an unchecked raw byte or cut character made its JIT read out of
 * bounds three times: fuzz-pipeline). Made only by subject_new(), which checks once and, when it
 * must, copies with U+FFFD for each bad byte (owned), and by subject_slice(), which cuts at
 * character boundaries; read only by subject_match(). */
typedef struct Subject {
        const char *text;
        size_t len;
        char *owned;
} Subject;

static void subject_done(Subject *s) {
        free(s->owned);
        *s = (Subject) { .text = "" };
}

/* text (len bytes, any bytes; NULL: empty) as a Subject. Returns 0 or -ENOMEM. */
static int subject_new(const char *text, size_t len, Subject *ret) {
        int r;

        *ret = (Subject) { .text = text ?: "", .len = text ? len : 0 };
        if (text_utf8_valid(ret->text, ret->len))
                return 0;
        r = text_utf8_sanitize(text, len, /* max= */ 0, &ret->owned, &ret->len);
        if (r < 0) {
                *ret = (Subject) { .text = "" };
                return -ENOMEM;
        }
        ret->text = ret->owned;
        return 0;
}

/* The part [start, end) of s, narrowed to whole characters (borrowed from s). */
static Subject subject_slice(const Subject *s, size_t start, size_t end) {
        end = MIN(end, s->len);
        start = MIN(start, end);
        while (start < end && CONTINUATION_BYTE(s->text[start]))
                start++;
        while (end > start && end < s->len && CONTINUATION_BYTE(s->text[end]))
                end--;
        return (Subject) { .text = s->text + start, .len = end - start };
}

/* The one call of pcre2_match() in alcode. start is moved to the next character boundary (a
 * search resumed after an empty match may point inside a character). Returns PCRE2's result. */
static int subject_match(const pcre2_code *code, const Subject *s, size_t start, pcre2_match_data *md,
                         pcre2_match_context *mc) {
        if (start > s->len)
                return PCRE2_ERROR_NOMATCH;
        while (start < s->len && CONTINUATION_BYTE(s->text[start]))
                start++;
        return pcre2_match(code, (PCRE2_SPTR) s->text, s->len, start, PCRE2_NO_UTF_CHECK, md, mc);
}

/* Returns 1 on a match, 0 none, or a PCRE2 error (< 0). */
static int regex_find(const pcre2_code *code, RuleMatcher *m, const Subject *s, size_t start) {
        int r = subject_match(code, s, start, m->md, m->mc);
        return r >= 0 ? 1 : r == PCRE2_ERROR_NOMATCH ? 0 : r;
}

struct RulePattern {
        pcre2_code *code;
};

int rule_pattern_new(const char *pattern, RulePattern **ret) {
        _cleanup_(rule_pattern_freep) RulePattern *p = calloc(1, sizeof(RulePattern));
        PCRE2_SIZE off;
        int err;

        if (!p)
                return -ENOMEM;
        p->code = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS,
                                &err, &off, NULL);
        if (!p->code)
                return err == PCRE2_ERROR_NOMEMORY ? -ENOMEM : -EINVAL;
        *ret = TAKE_PTR(p);
        return 0;
}

RulePattern *rule_pattern_free(RulePattern *p) {
        if (p) {
                pcre2_code_free(p->code);
                free(p);
        }
        return NULL;
}

int rule_pattern_find(const RulePattern *p, RuleMatcher *m, const char *text, size_t len, size_t *ret_offset) {
        Subject s;
        int r;

        r = subject_new(text, len, &s);
        if (r < 0)
                return r;
        r = regex_find(p->code, m, &s, 0);
        if (r > 0)
                *ret_offset = pcre2_get_ovector_pointer(m->md)[0];
        subject_done(&s);
        return MAX(r, 0);
}

int rules_keywords_in(const Rules *rules, RuleMatcher *m, const char *text, size_t len) {
        Subject s;
        int r;

        if (!rules->keyword_re)
                return 0;
        r = subject_new(text, len, &s);
        if (r < 0)
                return r;
        r = regex_find(rules->keyword_re, m, &s, 0);
        subject_done(&s);
        return r != 0; /* a PCRE2 error (a limit): as if one were there */
}

static bool is_limit_error(int r) {
        return r == PCRE2_ERROR_MATCHLIMIT || r == PCRE2_ERROR_DEPTHLIMIT ||
               r == PCRE2_ERROR_HEAPLIMIT || r == PCRE2_ERROR_JIT_STACKLIMIT;
}

typedef struct MatchRun {
        const Rules *rules;
        RuleMatcher *m;
        const RuleText *texts;
        Subject *subjects;       /* texts[i] as PCRE2 reads it */
        size_t n_texts;
        const SenderInfo *sender;
        Subject sender_subjects[2]; /* folded display name, address ("" when none) */
        RuleExplainFunc explain;
        void *userdata;
        char ***warnings;
        bool keywords_done;
        bool read;               /* a rule got past its sender gate */
} MatchRun;

static int limit_warning(MatchRun *run, const Rule *rule, const Regex *x, int err) {
        PCRE2_UCHAR msg[128];

        if (!run->warnings)
                return 0;
        (void) pcre2_get_error_message(err, msg, sizeof msg);
        return strv_extendf(run->warnings, "%s:%u: rule '%s': %s, skipping this pattern", rule->file,
                            x->pieces ? x->pieces[0].line : rule->line, rule->name, (char *) msg);
}

/* Runs x over s; a limit error is reported as a warning and counts as no match. */
static int regex_find_warn(MatchRun *run, const Rule *rule, const Regex *x, const Subject *s, size_t start) {
        int r = regex_find(x->code, run->m, s, start);

        if (r < 0) {
                if (is_limit_error(r) && limit_warning(run, rule, x, r) < 0)
                        return -ENOMEM;
                return 0;
        }
        return r;
}

static bool luhn_valid(const char *digits) {
        unsigned sum = 0;
        size_t n = strlen(digits);

        for (size_t i = 0; i < n; i++) {
                unsigned d = (unsigned) (digits[n - 1 - i] - '0');
                if (i % 2 == 1) {
                        d *= 2;
                        if (d > 9)
                                d -= 9;
                }
                sum += d;
        }
        return sum % 10 == 0;
}

static bool all_digits(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

static bool is_siret(const char *canonical) {
        return strlen(canonical) == 14 && all_digits(canonical) && luhn_valid(canonical);
}

typedef enum Verdict {
        VERDICT_OK,
        VERDICT_TOO_SHORT,
        VERDICT_TOO_LONG,
        VERDICT_FEW_DIGITS,
        VERDICT_SIRET,
        VERDICT_NOT_SIRET,
        VERDICT_REJECT,
        VERDICT_REJECT_CONTEXT,
        VERDICT_REJECT_SENTENCE,
        VERDICT_NOMEM,
        _VERDICT_MAX,
        _VERDICT_INVALID = -EINVAL,
} Verdict;

/* What alcode scan --explain says of a rejected candidate. */
static const struct {
        const char *string;
} verdict_table[_VERDICT_MAX] = {
        [VERDICT_TOO_SHORT] = { "too short for this kind" },
        [VERDICT_TOO_LONG] = { "too long for this kind" },
        [VERDICT_FEW_DIGITS] = { "too few digits" },
        [VERDICT_SIRET] = { "a SIRET (the employer's company number), not this kind" },
        [VERDICT_NOT_SIRET] = { "digits only, but not a valid SIREN/SIRET" },
        [VERDICT_REJECT] = { "matches a reject pattern" },
        [VERDICT_REJECT_CONTEXT] = { "its line matches a reject_context pattern" },
        [VERDICT_REJECT_SENTENCE] = { "its clause matches a reject_sentence pattern (it says the value is wrong, old or not to be used)" },
        [VERDICT_NOMEM] = { "out of memory" },
};

DEFINE_PRIVATE_STRING_TABLE_LOOKUP_TO_STRING(verdict, Verdict, verdict_table);

static Verdict candidate_check(MatchRun *run, const Rule *rule, const char *canonical, const Subject *display,
                               const Subject *line, const Subject *sentence) {
        size_t len = strlen(canonical), digits = 0;
        int r;

        for (const char *p = canonical; *p; p++)
                digits += isdigit((unsigned char) *p) != 0;
        if (len < rule->min_length)
                return VERDICT_TOO_SHORT;
        if (len > rule->max_length)
                return VERDICT_TOO_LONG;
        if (digits < rule->min_digits)
                return VERDICT_FEW_DIGITS;
        if (rule->check == RULE_CHECK_NOT_SIRET && is_siret(canonical))
                return VERDICT_SIRET;
        if (rule->check == RULE_CHECK_SIRET && all_digits(canonical) &&
            !((len == 14 || len == 9) && luhn_valid(canonical)))
                return VERDICT_NOT_SIRET;
        for (size_t i = 0; i < rule->n_rejects; i++) {
                r = regex_find_warn(run, rule, &rule->rejects[i], display, 0);
                if (r < 0)
                        return VERDICT_NOMEM;
                if (r > 0)
                        return VERDICT_REJECT;
        }
        for (size_t i = 0; i < rule->n_reject_contexts; i++) {
                r = regex_find_warn(run, rule, &rule->reject_contexts[i], line, 0);
                if (r < 0)
                        return VERDICT_NOMEM;
                if (r > 0)
                        return VERDICT_REJECT_CONTEXT;
        }
        for (size_t i = 0; i < rule->n_reject_sentences; i++) {
                r = regex_find_warn(run, rule, &rule->reject_sentences[i], sentence, 0);
                if (r < 0)
                        return VERDICT_NOMEM;
                if (r > 0)
                        return VERDICT_REJECT_SENTENCE;
        }
        return VERDICT_OK;
}

typedef struct Candidate {
        CodeKind kind;
        char *value;
        char *display;
        bool trusted;
        size_t rule;     /* index in Rules */
        size_t distance; /* bytes between the value and the rest of its match (the label) */
} Candidate;

typedef struct Candidates {
        Candidate *c;
        size_t n;
} Candidates;

static void candidates_done(Candidates *cs) {
        for (size_t i = 0; i < cs->n; i++) {
                free(cs->c[i].value);
                free(cs->c[i].display);
        }
        free(cs->c);
}

/* Whether text[k] ends a clause: '.' (not in a run of dots), '!', '?', ';' or ',' before a
 * blank or the end; a line
 * break, unless it only wraps a sentence (a letter, digit or comma before, a lower-case letter
 * after); a dash between blanks (" - "). */
static bool clause_end(const char *text, size_t len, size_t k) {
        char c = text[k], next = k + 1 < len ? text[k + 1] : '\n';

        if (c == '.' && ((k > 0 && text[k - 1] == '.') || next == '.'))
                return false; /* dot leaders ("Code ..... X"), an ellipsis */
        if (strchr(".!?;,", c))
                return next == ' ' || next == '\n';
        if (c == '\n')
                return !(k > 0 && (isalnum((unsigned char) text[k - 1]) || text[k - 1] == ',') &&
                         islower((unsigned char) next));
        return c == '-' && k > 0 && text[k - 1] == ' ' && next == ' ';
}

/* The clause holding [start, end) of t (see clause_end()), at most 400 bytes each side (cut at
 * character boundaries by subject_slice()). */
static Subject clause_around(const Subject *t, size_t start, size_t end) {
        size_t s = start, e = end;

        while (s > 0 && start - s < 400 && !clause_end(t->text, t->len, s - 1))
                s--;
        while (e < t->len && e - end < 400 && !clause_end(t->text, t->len, e))
                e++;
        return subject_slice(t, s, e);
}

static Subject line_around(const Subject *t, size_t offset) {
        size_t s = offset, e = offset;

        while (s > 0 && t->text[s - 1] != '\n')
                s--;
        while (e < t->len && t->text[e] != '\n')
                e++;
        return subject_slice(t, s, e);
}

/* A captured value may start with words that are not part of it: in "CODE D'ACCES ACTION
 * LOGEMENT EMPJ8D2R4U" the value pattern reads four upper-case groups. When the whole does
 * not fit the kind, the value is read again without its leading letters-only words of three
 * or more letters. Returns the offset of the next reading, or 0 when there is none. */
static size_t skip_leading_word(const char *s, size_t len) {
        size_t i = 0;

        while (i < len && isalpha((unsigned char) s[i]))
                i++;
        if (i < 3 || i >= len || (s[i] != ' ' && s[i] != '-' && s[i] != '.'))
                return 0;
        return i + 1;
}

static void explain_verdict(MatchRun *run, const Rule *rule, const Regex *x, size_t text_index,
                            size_t cs, size_t ce, bool trusted, const char *why) {
        unsigned line, col;

        if (!run->explain)
                return;
        regex_position(x, 0, &line, &col);
        run->explain(&(RuleVerdict) {
                             .rule = rule->id, .file = rule->file, .line = line, .kind = rule->kind,
                             .display = run->subjects[text_index].text + cs, .display_len = ce - cs,
                             .offset = cs, .text_index = (unsigned) text_index, .trusted = trusted,
                             .rejected = why,
                     },
                     run->userdata);
}

static void explain_rule(MatchRun *run, const Rule *rule, const char *why) {
        if (run->explain)
                run->explain(&(RuleVerdict) { .rule = rule->id, .file = rule->file, .line = rule->line,
                                              .kind = rule->kind, .rejected = why },
                             run->userdata);
}

static int candidate_add(Candidates *cs, const Rule *rule, size_t rule_index, const char *display,
                         size_t len, bool trusted, size_t distance) {
        Candidate *n;
        char *d, *v;

        if (cs->n >= RULES_MAX_CANDIDATES)
                return 0;
        d = strndup(display, len);
        if (d) { /* a code wrapped at a line end is shown on one line */
                char *o = d;
                for (const char *q = d; *q; q++)
                        if (*q != '\n')
                                *o++ = *q;
                *o = 0;
        }
        v = d ? code_canonicalize(d) : NULL;
        if (!v) {
                free(d);
                return -ENOMEM;
        }
        n = reallocarray(cs->c, cs->n + 1, sizeof(Candidate));
        if (!n) {
                free(d);
                free(v);
                return -ENOMEM;
        }
        cs->c = n;
        cs->c[cs->n++] = (Candidate) { .kind = rule->kind, .value = v, .display = d, .trusted = trusted,
                                       .rule = rule_index, .distance = distance };
        return 0;
}

/* Judges one captured value [cs, ce) of text t matched by x over [ms, me). */
static int rule_candidate(MatchRun *run, const Rule *rule, size_t rule_index, const Regex *x,
                          size_t t, size_t ms, size_t me, size_t cs, size_t ce, bool trusted,
                          Candidates *out) {
        const Subject *tx = &run->subjects[t];
        Subject line;

        /* Separators at the edges are not part of the value. */
        while (ce > cs && strchr(" .-", tx->text[ce - 1]))
                ce--;
        while (cs < ce && strchr(" .-", tx->text[cs]))
                cs++;
        line = line_around(tx, cs);

        for (;;) {
                _cleanup_free_ char *display = strndup(tx->text + cs, ce - cs);
                _cleanup_free_ char *canonical = display ? code_canonicalize(display) : NULL;
                Subject value = subject_slice(tx, cs, ce), clause = clause_around(tx, cs, ce);
                Verdict v;
                size_t skip;

                if (!canonical)
                        return -ENOMEM;
                v = candidate_check(run, rule, canonical, &value, &line, &clause);
                if (v == VERDICT_NOMEM)
                        return -ENOMEM;
                if (v == VERDICT_OK) {
                        explain_verdict(run, rule, x, t, cs, ce, trusted, NULL);
                        /* Distance from the label: before the value, or after it when the
                         * label follows ("482913 est votre code"). */
                        size_t distance = MAX(cs - ms, me > ce ? me - ce : 0);
                        return candidate_add(out, rule, rule_index, tx->text + cs, ce - cs, trusted, distance);
                }
                explain_verdict(run, rule, x, t, cs, ce, trusted, verdict_to_string(v));
                if (v != VERDICT_TOO_LONG && v != VERDICT_FEW_DIGITS)
                        return 0;
                skip = skip_leading_word(tx->text + cs, ce - cs);
                if (skip == 0)
                        return 0;
                cs += skip;
        }
}

/* Marks which keywords appear in the texts or the sender (once per message, on demand). */
static int keywords_scan(MatchRun *run) {
        const Rules *rules = run->rules;
        RuleMatcher *m = run->m;
        size_t n = strv_length(rules->keywords);
        if (run->keywords_done)
                return 0;
        run->keywords_done = true;
        if (m->n_keyword_seen < n) {
                bool *b = reallocarray(m->keyword_seen, n, sizeof(bool));
                if (!b)
                        return -ENOMEM;
                m->keyword_seen = b;
                m->n_keyword_seen = n;
        }
        if (n == 0)
                return 0;
        memset(m->keyword_seen, 0, n * sizeof(bool));
        if (!rules->keyword_re)
                return 0;
        if (!m->keyword_md || pcre2_get_ovector_count(m->keyword_md) < n + 1) {
                pcre2_match_data_free(m->keyword_md);
                m->keyword_md = pcre2_match_data_create((uint32_t) n + 1, NULL);
                if (!m->keyword_md)
                        return -ENOMEM;
        }
        for (size_t t = 0; t < run->n_texts + ELEMENTSOF(run->sender_subjects); t++) {
                const Subject *s = t < run->n_texts ? &run->subjects[t] : &run->sender_subjects[t - run->n_texts];

                for (size_t start = 0; start < s->len;) {
                        int r = subject_match(rules->keyword_re, s, start, m->keyword_md, m->mc);
                        PCRE2_SIZE *ov;

                        if (r <= 0)
                                break;
                        ov = pcre2_get_ovector_pointer(m->keyword_md);
                        for (int g = 1; g < r; g++)
                                if (ov[2 * g] != PCRE2_UNSET)
                                        m->keyword_seen[g - 1] = true;
                        start = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
                }
        }
        return 0;
}

static int rule_has_keyword(MatchRun *run, const Rule *rule) {
        int r = keywords_scan(run);

        if (r < 0)
                return r;
        for (size_t i = 0; i < rule->n_keyword_ids; i++)
                if (run->m->keyword_seen[rule->keyword_ids[i]])
                        return 1;
        return 0;
}

typedef enum Where {
        IN_SUBJECT = 1 << 0,
        IN_BODY = 1 << 1,
        IN_SENDER = 1 << 2, /* display name and address */
} Where;

/* Whether x matches somewhere: 1, 0, or -ENOMEM. */
static int regex_in_texts(MatchRun *run, const Rule *rule, const Regex *x, Where where) {
        int r;

        for (size_t t = 0; t < run->n_texts; t++) {
                if (!(where & (run->texts[t].subject ? IN_SUBJECT : IN_BODY)))
                        continue;
                r = regex_find_warn(run, rule, x, &run->subjects[t], 0);
                if (r != 0)
                        return r;
        }
        if (where & IN_SENDER)
                for (size_t i = 0; i < ELEMENTSOF(run->sender_subjects); i++)
                        if (run->sender_subjects[i].len > 0 &&
                            (r = regex_find_warn(run, rule, x, &run->sender_subjects[i], 0)) != 0)
                                return r;
        return 0;
}

static int rule_run(MatchRun *run, size_t rule_index, Candidates *out) {
        const Rule *rule = &run->rules->rules[rule_index];
        const SenderInfo *sender = run->sender;
        bool trusted_sender = sender_trusted(sender, rule->senders, rule->employer);
        int r;

        if (!trusted_sender) {
                /* Other senders only when they claim the brand; their codes stay untrusted. */
                if (!rule->brand.code) {
                        explain_rule(run, rule, "sender not trusted by this rule, which reads no other mail");
                        return 0;
                }
                if (sender && sender->domain && sender_domain_in(sender->domain, rule->exclude_senders)) {
                        explain_rule(run, rule, "sender is in exclude_senders");
                        return 0;
                }
                r = rule_has_keyword(run, rule);
                if (r <= 0) {
                        explain_rule(run, rule, "sender not trusted and no keyword in the message");
                        return r;
                }
                /* Read from here on: a text left out (an HTML alternative) holding the brand
                 * could give this rule a code. */
                run->read = true;
                r = regex_in_texts(run, rule, &rule->brand, IN_SUBJECT | IN_BODY | IN_SENDER);
                if (r <= 0) {
                        explain_rule(run, rule, "sender not trusted and no brand mention");
                        return r;
                }
        }
        run->read = true; /* a trusted sender's mail, always */
        if (rule->requires.code &&
            (r = regex_in_texts(run, rule, &rule->requires, IN_SUBJECT | IN_BODY | IN_SENDER)) <= 0) {
                explain_rule(run, rule, "the message does not match 'requires'");
                return r;
        }
        if (rule->subject.code && (r = regex_in_texts(run, rule, &rule->subject, IN_SUBJECT)) <= 0) {
                explain_rule(run, rule, "subject guard does not match");
                return r;
        }
        if (rule->body.code && (r = regex_in_texts(run, rule, &rule->body, IN_BODY)) <= 0) {
                explain_rule(run, rule, "body guard does not match");
                return r;
        }

        size_t before = out->n;
        bool matched = false;
        for (size_t t = 0; t < run->n_texts; t++) {
                const RuleText *tx = &run->texts[t];
                const Subject *sx = &run->subjects[t];
                bool trusted = trusted_sender && tx->attached == 0 && !tx->quoted;

                if ((tx->subject && !rule->in_subject) || (!tx->subject && !rule->in_body))
                        continue;
                for (size_t p = 0; p < rule->n_patterns; p++) {
                        const Regex *x = &rule->patterns[p];

                        for (size_t start = 0; start <= sx->len && out->n < RULES_MAX_CANDIDATES;) {
                                PCRE2_SIZE *ov;
                                size_t ms, me, cs, ce;

                                r = regex_find_warn(run, rule, x, sx, start);
                                if (r <= 0) {
                                        if (r < 0)
                                                return r;
                                        break;
                                }
                                ov = pcre2_get_ovector_pointer(run->m->md);
                                ms = ov[0];
                                me = ov[1];
                                cs = ov[2 * x->code_group];
                                ce = ov[2 * x->code_group + 1];
                                /* Next search after this match (one character on an empty one:
                                 * subject_match() moves it to the character's end). */
                                start = me > ms ? me : me + 1;
                                matched = true;
                                if (cs == PCRE2_UNSET || ce <= cs)
                                        continue;
                                r = rule_candidate(run, rule, rule_index, x, t, ms, me, cs, ce, trusted, out);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        if (!matched && out->n == before && run->explain)
                run->explain(&(RuleVerdict) { .rule = rule->id, .file = rule->file, .line = rule->line, .kind = rule->kind,
                                              .ran = true,
                                              .rejected = trusted_sender ? "no pattern matched (sender trusted)"
                                                                         : "no pattern matched (sender not trusted)" },
                             run->userdata);
        return 0;
}

static void match_run_done(MatchRun *run) {
        for (size_t i = 0; run->subjects && i < run->n_texts; i++)
                subject_done(&run->subjects[i]);
        free(run->subjects);
        for (size_t i = 0; i < ELEMENTSOF(run->sender_subjects); i++)
                subject_done(&run->sender_subjects[i]);
}

/* Every text the rules read becomes a Subject once, here: the texts, the folded display name
 * and the address (header bytes, which may be anything). */
static int match_run_subjects(MatchRun *run) {
        const SenderInfo *sender = run->sender;
        _cleanup_free_ char *name = NULL;
        size_t l = 0;
        int r;

        run->subjects = calloc(MAX(run->n_texts, (size_t) 1), sizeof(Subject));
        if (!run->subjects)
                return -ENOMEM;
        for (size_t i = 0; i < run->n_texts; i++) {
                r = subject_new(run->texts[i].text, run->texts[i].len, &run->subjects[i]);
                if (r < 0)
                        return r;
        }
        if (sender && sender->name) {
                r = text_fold(sender->name, strlen(sender->name), 1024, &name, &l);
                if (r == -ENOMEM)
                        return r;
        }
        r = subject_new(name, l, &run->sender_subjects[0]);
        if (r < 0)
                return r;
        if (!run->sender_subjects[0].owned) /* it reads name: keep it as long */
                run->sender_subjects[0].owned = TAKE_PTR(name);
        return subject_new(sender ? sender->address : NULL, sender && sender->address ? strlen(sender->address) : 0,
                           &run->sender_subjects[1]);
}

int rules_match(const Rules *rules, RuleMatcher *m, const RuleText *texts, size_t n_texts,
                const SenderInfo *sender, Message *msg, RuleExplainFunc explain, void *userdata,
                char ***warnings) {
        _cleanup_(match_run_done) MatchRun run = {
                .rules = rules, .m = m, .texts = texts, .n_texts = n_texts, .sender = sender,
                .explain = explain, .userdata = userdata, .warnings = warnings,
        };
        Candidates cs = {};
        int r, added = 0;

        r = match_run_subjects(&run);
        if (r < 0)
                return r;
        for (size_t i = 0; i < rules->n_rules && r >= 0; i++)
                r = rule_run(&run, i, &cs);

        /* One value, one kind: when rules of different kinds claim the same value, the one
         * whose label sits closest to it wins (ties: the first rule). A trusted sighting of a
         * value makes it trusted (message_add_code() merges). */
        for (size_t i = 0; i < cs.n && r >= 0; i++) {
                const Candidate *c = &cs.c[i];
                bool keep = true;

                for (size_t j = 0; j < cs.n && keep; j++) {
                        const Candidate *o = &cs.c[j];
                        if (o->kind != c->kind && code_value_equal(o->value, c->value) &&
                            (o->distance < c->distance || (o->distance == c->distance && o->rule < c->rule)))
                                keep = false;
                }
                if (!keep)
                        continue;
                r = message_add_code(msg, &(Code) { .kind = c->kind, .value = c->value, .display = c->display,
                                                    .trusted = c->trusted,
                                                    .rule = rules->rules[c->rule].id });
                if (r > 0)
                        added++;
        }
        if (run.read)
                msg->read_by_rules = true;
        candidates_done(&cs);
        return r < 0 ? r : added;
}
