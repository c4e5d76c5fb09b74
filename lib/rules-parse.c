/* Rule files → a compiled, immutable Rules: reading .rules files, dispatching their keys,
 * expanding [define] fragments, compiling PCRE2 and indexing every rule's keywords into one
 * pattern. Matching is rules.c's job.
 *
 * Rule files are read with ini-file (inih) into raw sources first and compiled once the whole
 * file is known, so that [define] fragments may come in any order and a value may continue on
 * indented lines. Every regex remembers the line and column of each piece of its source, so a
 * PCRE2 error offset becomes "file:line:column" even after {NAME} expansion and joins. */
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#include "conf-parser.h"
#include "ini-file.h"
#include "parse-util.h"
#include "rules-internal.h"
#include "strbuf.h"
#include "strv.h"
#include "text.h"

#define RULES_MAX_PER_FILE 256
#define RULES_MAX_FILES 256
#define RULES_MAX_PATTERNS 64
#define RULES_MAX_LIST 1024 /* senders, exclude_senders or keywords of one rule */
#define RULES_MAX_SOURCE 16384
#define RULES_MAX_NESTING 8 /* [define] fragments inside fragments */
#define RULES_COMPILE_OPTIONS (PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MULTILINE)

/* valgrind cannot follow JIT-compiled code (it reports the JIT's word reads as uses of
 * uninitialised memory): under valgrind the interpreter runs, with the same results.
 * ALCODE_PCRE2_NO_JIT=1 asks for the interpreter too (another memory checker, a test of the
 * fallback that a unit with MemoryDenyWriteExecute= would get). */
static bool use_jit(void) {
        const char *e = getenv("ALCODE_PCRE2_NO_JIT");

        if (e && *e && !streq(e, "0"))
                return false;
#ifdef RUNNING_ON_VALGRIND
        return !RUNNING_ON_VALGRIND;
#else
        return true;
#endif
}

static const struct {
        const char *string;
} rule_check_table[_RULE_CHECK_MAX] = {
        [RULE_CHECK_NONE] = { "none" },
        [RULE_CHECK_SIRET] = { "siret" },
        [RULE_CHECK_NOT_SIRET] = { "not-siret" },
};

DEFINE_PRIVATE_STRING_TABLE_LOOKUP_FROM_STRING(rule_check, RuleCheck, rule_check_table);
static void regex_done(Regex *x) {
        free(x->source);
        free(x->pieces);
        pcre2_code_free(x->code);
        *x = (Regex) { .code_group = -1 };
}

static void rule_done(Rule *r) {
        free(r->name);
        free(r->id);
        free(r->file);
        strv_free(r->senders);
        strv_free(r->exclude_senders);
        strv_free(r->keywords);
        free(r->keyword_ids);
        regex_done(&r->brand);
        regex_done(&r->requires);
        regex_done(&r->subject);
        regex_done(&r->body);
        for (size_t i = 0; i < r->n_patterns; i++)
                regex_done(&r->patterns[i]);
        free(r->patterns);
        for (size_t i = 0; i < r->n_rejects; i++)
                regex_done(&r->rejects[i]);
        free(r->rejects);
        for (size_t i = 0; i < r->n_reject_contexts; i++)
                regex_done(&r->reject_contexts[i]);
        free(r->reject_contexts);
        for (size_t i = 0; i < r->n_reject_sentences; i++)
                regex_done(&r->reject_sentences[i]);
        free(r->reject_sentences);
}

Rules *rules_free(Rules *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_rules; i++)
                rule_done(&r->rules[i]);
        free(r->rules);
        strmap_done(&r->trusted_domain_index);
        strv_free(r->trusted_domains);
        strv_free(r->keywords);
        pcre2_code_free(r->keyword_re);
        free(r);
        return NULL;
}

char *const *rules_search_keywords(const Rules *r) {
        return r->keywords;
}

size_t rules_count(const Rules *r) {
        return r ? r->n_rules : 0;
}

char *const *rules_trusted_domains(const Rules *r) {
        return r->trusted_domains;
}

bool rules_jit(const Rules *r) {
        return r->jit;
}

typedef struct Define {
        char *name;
        Regex fragment; /* source and positions only; never compiled alone */
} Define;

typedef struct FileState {
        char *path;
        unsigned version;
        Define *defines;
        size_t n_defines;
        Rule *rules;
        size_t n_rules, rules_allocated;
        StrMap rule_names; /* name → index in rules */
        bool full;     /* RULES_MAX_PER_FILE reached (and said once): the rest is skipped */
        Regex *last;   /* the regex a continuation line extends */
        const ConfigTableItem *last_list; /* or: the list key (keywords, senders...) it extends */
        bool skipping; /* inside an invalid section: ignore its keys */
        char ***errors;
} FileState;

static int regex_set(IniFile *f, Regex *x, const char *value, bool append) {
        size_t l = x->source ? strlen(x->source) : 0, vl = strlen(value);
        SourcePiece *p;
        char *s;

        if (!append && x->source)
                return ini_file_error(f, 0, "duplicate key; only one is allowed here");
        if (l + vl > RULES_MAX_SOURCE)
                return ini_file_error(f, 0, "pattern longer than %d bytes", RULES_MAX_SOURCE);
        s = realloc(x->source, l + vl + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s + l, value, vl + 1);
        x->source = s;
        p = reallocarray(x->pieces, x->n_pieces + 1, sizeof(SourcePiece));
        if (!p)
                return -ENOMEM;
        x->pieces = p;
        x->pieces[x->n_pieces++] = (SourcePiece) { .offset = l, .line = ini_file_line(f),
                                                   .column = ini_file_value_column(f) };
        x->code_group = -1;
        return 0;
}

static int regex_list_add(IniFile *f, Regex **list, size_t *n, const char *value, Regex **ret) {
        Regex *l;

        if (*n >= RULES_MAX_PATTERNS)
                return ini_file_error(f, 0, "more than %d patterns of this key", RULES_MAX_PATTERNS);
        l = reallocarray(*list, *n + 1, sizeof(Regex));
        if (!l)
                return -ENOMEM;
        *list = l;
        l[*n] = (Regex) { .code_group = -1 };
        *ret = &l[(*n)++];
        return regex_set(f, *ret, value, false);
}

/* ---- the keys of [rules] and [rule NAME] ---- */

/* Which regex list a pattern-list key fills (the ltype of its table row). */
typedef enum RuleList {
        RULE_LIST_PATTERN,
        RULE_LIST_REJECT,
        RULE_LIST_REJECT_CONTEXT,
        RULE_LIST_REJECT_SENTENCE,
        _RULE_LIST_MAX,
} RuleList;

static void rule_regex_list(Rule *rule, RuleList which, Regex ***ret_list, size_t **ret_n) {
        switch (which) {
        case RULE_LIST_PATTERN:
                *ret_list = &rule->patterns, *ret_n = &rule->n_patterns;
                break;
        case RULE_LIST_REJECT:
                *ret_list = &rule->rejects, *ret_n = &rule->n_rejects;
                break;
        case RULE_LIST_REJECT_CONTEXT:
                *ret_list = &rule->reject_contexts, *ret_n = &rule->n_reject_contexts;
                break;
        case RULE_LIST_REJECT_SENTENCE:
                *ret_list = &rule->reject_sentences, *ret_n = &rule->n_reject_sentences;
                break;
        default:
                assert(!"unknown RuleList");
                *ret_list = NULL, *ret_n = NULL;
        }
}

static CONFIG_PARSER_PROTOTYPE(rule_parse_version) {
        unsigned *version = data;

        if (parse_unsigned(value, 1000000, version) < 0 || *version == 0)
                return ini_file_error(f, ini_file_value_column(f), "expected a positive version number, got '%s'",
                                      value);
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(rule_parse_kind) {
        CodeKind *kind = data;

        *kind = code_kind_from_string(value);
        if (*kind == CODE_KIND_POSSIBLE) /* the pipeline's own, for codes no rule read */
                *kind = _CODE_KIND_INVALID;
        if (*kind < 0)
                return ini_file_error(f, ini_file_value_column(f),
                                      "unknown kind '%s' (expected specific, company, access, otp, request or file)",
                                      value);
        return 0;
}

/* Which words a list key holds (the ltype of its table row). */
typedef enum RuleWords {
        RULE_WORDS_DOMAINS,  /* senders, exclude_senders */
        RULE_WORDS_KEYWORDS, /* keywords */
} RuleWords;

/* A sender domain as mail carries it (parse-util's one validator). Returns 0 with *ret, or
 * the error reported (*ret NULL). */
static int rule_domain_word(IniFile *f, unsigned col, const char *w, char **ret) {
        int r = domain_normalize(w, ret);

        if (r == -EINVAL) {
                *ret = NULL;
                return ini_file_error(f, col, "invalid domain '%s'", w);
        }
        return r;
}

/* A keyword as the text is matched: folded (accents, quotes), lower case. */
static int rule_keyword_word(IniFile *f, unsigned col, const char *w, char **ret) {
        _cleanup_free_ char *folded = NULL;
        size_t fl;
        int r;

        *ret = NULL;
        r = text_fold(w, strlen(w), 256, &folded, &fl);
        if (r < 0)
                return r == -ENOMEM ? r : ini_file_error(f, col, "keyword too long");
        for (char *p = folded; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        if (fl < 3)
                return ini_file_error(f, col, "keyword '%s' is shorter than 3 characters", w);
        *ret = TAKE_PTR(folded);
        return 0;
}

/* One word of senders, exclude_senders or keywords (ltype says which). */
static CONFIG_PARSER_PROTOTYPE(rule_parse_word) {
        char ***list = data;
        unsigned col = ini_file_value_column(f);
        _cleanup_free_ char *n = NULL;
        int r;

        r = ltype == RULE_WORDS_DOMAINS ? rule_domain_word(f, col, value, &n) : rule_keyword_word(f, col, value, &n);
        if (r < 0 || !n)
                return r < 0 ? r : 1;
        if (strv_length(*list) >= RULES_MAX_LIST) {
                r = ltype == RULE_WORDS_DOMAINS
                            ? ini_file_error(f, col, "more than %d domains in '%s'", RULES_MAX_LIST, key)
                            : ini_file_error(f, col, "more than %d keywords in one rule", RULES_MAX_LIST);
                return r < 0 ? r : 1;
        }
        if (!strv_contains(*list, n))
                return strv_consume(list, TAKE_PTR(n));
        return 0;
}

/* senders, exclude_senders, keywords: comma-separated words, continued on indented lines; each
 * new one is compared with those before it, so the list is bounded. */
static CONFIG_PARSER_PROTOTYPE(rule_parse_words) {
        return config_parse_words(f, key, value, ltype, data, userdata, rule_parse_word);
}

static CONFIG_PARSER_PROTOTYPE(rule_parse_bool) {
        int b = parse_boolean(value);

        if (b < 0)
                return ini_file_error(f, ini_file_value_column(f), "expected yes or no, got '%s'", value);
        *(bool *) data = b;
        return 0;
}

/* brand, requires, subject, body: one regex, continued on indented lines. */
static CONFIG_PARSER_PROTOTYPE(rule_parse_regex) {
        FileState *st = userdata;

        st->last = data;
        return regex_set(f, data, value, false);
}

/* pattern, reject, reject_context, reject_sentence: one more regex in the list ltype names. */
static CONFIG_PARSER_PROTOTYPE(rule_parse_regex_list) {
        FileState *st = userdata;
        Regex **list, *x = NULL;
        size_t *n;
        int r;

        rule_regex_list(data, ltype, &list, &n);
        r = regex_list_add(f, list, n, value, &x);
        st->last = x;
        return r;
}

/* length: data is the Rule (min_length and max_length). */
static CONFIG_PARSER_PROTOTYPE(rule_parse_length) {
        Rule *rule = data;
        unsigned a, b;
        char *dash = strchr(value, '-');
        _cleanup_free_ char *lo = dash ? strndup(value, (size_t) (dash - value)) : strdup(value);

        if (!lo)
                return -ENOMEM;
        if (parse_unsigned(lo, 64, &a) < 0 || parse_unsigned(dash ? dash + 1 : value, 64, &b) < 0 || a < 1 ||
            a > b)
                return ini_file_error(f, ini_file_value_column(f), "expected a length range like 6-16, got '%s'",
                                      value);
        rule->min_length = a;
        rule->max_length = b;
        return 0;
}

/* A number from 0 to ltype. */
static CONFIG_PARSER_PROTOTYPE(rule_parse_unsigned) {
        if (parse_unsigned(value, (unsigned) ltype, data) < 0)
                return ini_file_error(f, ini_file_value_column(f), "expected a number, got '%s'", value);
        return 0;
}

static CONFIG_PARSER_PROTOTYPE(rule_parse_check) {
        RuleCheck c = rule_check_from_string(value);

        if (c < 0)
                return ini_file_error(f, ini_file_value_column(f), "unknown check '%s' (expected none, siret or not-siret)",
                                      value);
        *(RuleCheck *) data = c;
        return 0;
}

/* One place of where. */
static CONFIG_PARSER_PROTOTYPE(rule_parse_place) {
        Rule *rule = data;
        int r;

        if (streq(value, "subject"))
                rule->in_subject = true;
        else if (streq(value, "body"))
                rule->in_body = true;
        else {
                r = ini_file_error(f, ini_file_value_column(f), "unknown place '%s' (expected subject, body)", value);
                return r < 0 ? r : 1;
        }
        return 0;
}

/* where: data is the Rule (in_subject and in_body). */
static CONFIG_PARSER_PROTOTYPE(rule_parse_where) {
        Rule *rule = data;

        rule->in_subject = rule->in_body = false;
        return config_parse_words(f, key, value, ltype, data, userdata, rule_parse_place);
}

/* Every key of a rule file but [define]'s (whose keys are the fragments' names): [rules] keys
 * fill the FileState, [rule NAME] keys the Rule. userdata is the FileState. */
static const ConfigTableItem rule_items[] = {
        { "rules", "version", rule_parse_version, 0, offsetof(FileState, version) },
        { "rule", "kind", rule_parse_kind, 0, offsetof(Rule, kind) },
        { "rule", "senders", rule_parse_words, RULE_WORDS_DOMAINS, offsetof(Rule, senders) },
        { "rule", "exclude_senders", rule_parse_words, RULE_WORDS_DOMAINS, offsetof(Rule, exclude_senders) },
        { "rule", "keywords", rule_parse_words, RULE_WORDS_KEYWORDS, offsetof(Rule, keywords) },
        { "rule", "employer", rule_parse_bool, 0, offsetof(Rule, employer) },
        { "rule", "brand", rule_parse_regex, 0, offsetof(Rule, brand) },
        { "rule", "requires", rule_parse_regex, 0, offsetof(Rule, requires) },
        { "rule", "subject", rule_parse_regex, 0, offsetof(Rule, subject) },
        { "rule", "body", rule_parse_regex, 0, offsetof(Rule, body) },
        { "rule", "pattern", rule_parse_regex_list, RULE_LIST_PATTERN, 0 },
        { "rule", "reject", rule_parse_regex_list, RULE_LIST_REJECT, 0 },
        { "rule", "reject_context", rule_parse_regex_list, RULE_LIST_REJECT_CONTEXT, 0 },
        { "rule", "reject_sentence", rule_parse_regex_list, RULE_LIST_REJECT_SENTENCE, 0 },
        { "rule", "length", rule_parse_length, 0, 0 },
        { "rule", "min_digits", rule_parse_unsigned, 64, offsetof(Rule, min_digits) },
        { "rule", "check", rule_parse_check, 0, offsetof(Rule, check) },
        { "rule", "where", rule_parse_where, 0, 0 },
};

/* Lists continue on indented lines as patterns do. */
static bool item_is_list(const ConfigTableItem *item) {
        return item->parse == rule_parse_words;
}

/* A [define] key: NAME = fragment. */
static int define_key(IniFile *f, FileState *st, const char *key, const char *value) {
        bool ok = *key;
        Define *d;

        for (const char *p = key; *p; p++)
                ok = ok && (isupper((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '_');
        if (!ok)
                return ini_file_error(f, 0, "define names are upper case: '%s'", key);
        for (size_t i = 0; i < st->n_defines; i++)
                if (streq(st->defines[i].name, key))
                        return ini_file_error(f, 0, "'%s' is defined twice", key);
        d = reallocarray(st->defines, st->n_defines + 1, sizeof(Define));
        if (!d)
                return -ENOMEM;
        st->defines = d;
        d[st->n_defines] = (Define) { .name = strdup(key), .fragment.code_group = -1 };
        if (!d[st->n_defines].name)
                return -ENOMEM;
        st->last = &d[st->n_defines++].fragment;
        return regex_set(f, st->last, value, false);
}

/* Starts [rule NAME] unless it is the rule being read; an invalid or duplicate name, or one
 * rule too many, makes the keys up to the next section skipped (st->skipping). */
static int rule_section(IniFile *f, FileState *st, const char *name) {
        bool ok = *name;
        Rule *l;

        if (st->n_rules > 0 && streq(st->rules[st->n_rules - 1].name, name))
                return 0;
        if (st->full)
                return 0; /* said once at the rule that went over the limit */
        for (const char *p = name; *p; p++)
                ok = ok && (isalnum((unsigned char) *p) || *p == '-' || *p == '_' || *p == '.');
        if (strmap_get(&st->rule_names, name, NULL))
                ok = false;
        if (!ok) {
                if (!st->skipping &&
                    strv_extendf(st->errors, "%s:%u: invalid or duplicate rule name '%s'", st->path,
                                 ini_file_section_line(f) ?: ini_file_line(f), name) < 0)
                        return -ENOMEM;
                st->skipping = true;
                return 0;
        }
        if (st->n_rules >= RULES_MAX_PER_FILE) {
                /* Once: the rules beyond it would each say the same. */
                st->full = st->skipping = true;
                return ini_file_error(f, 0, "more than %d rules in one file; the rules from here "
                                            "to the end of the file are ignored", RULES_MAX_PER_FILE);
        }
        if (st->n_rules == st->rules_allocated) {
                size_t n = MAX(st->rules_allocated * 2, (size_t) 8);
                l = reallocarray(st->rules, n, sizeof(Rule));
                if (!l)
                        return -ENOMEM;
                st->rules = l;
                st->rules_allocated = n;
        }
        l = st->rules;
        l[st->n_rules] = (Rule) {
                .name = strdup(name), .line = ini_file_section_line(f) ?: ini_file_line(f),
                .kind = _CODE_KIND_INVALID,
                .brand.code_group = -1, .requires.code_group = -1, .subject.code_group = -1, .body.code_group = -1,
                .min_length = 4, .max_length = 32, .min_digits = 1, .in_subject = true,
                .in_body = true,
        };
        st->n_rules++;
        if (!l[st->n_rules - 1].name || strmap_put(&st->rule_names, l[st->n_rules - 1].name, st->n_rules - 1) < 0)
                return -ENOMEM;
        st->skipping = false;
        return 0;
}

static int file_handler(IniFile *f, const char *section, const char *key, const char *value,
                        bool continuation, void *userdata) {
        FileState *st = userdata;
        const ConfigTableItem *item;
        const char *name;
        Rule *rule;
        int r;

        if (continuation) {
                if (st->last)
                        return regex_set(f, st->last, value, true);
                if (st->last_list && st->n_rules > 0 && !st->skipping)
                        return config_table_parse(st->last_list, f, st->last_list->key, value,
                                                  &st->rules[st->n_rules - 1], st);
                return ini_file_error(f, 0, "only patterns, defines and lists may continue on the next line");
        }
        st->last = NULL;
        st->last_list = NULL;

        if (streq(section, "rules")) {
                item = config_table_find(rule_items, ELEMENTSOF(rule_items), "rules", key);
                if (!item)
                        return ini_file_error(f, 0, "unknown key '%s' in [rules]", key);
                return config_table_parse(item, f, key, value, st, st);
        }
        if (streq(section, "define"))
                return define_key(f, st, key, value);
        name = startswith(section, "rule ");
        if (!name)
                return ini_file_error(f, 0, "unknown section [%s] (expected [rules], [define] or [rule NAME])",
                                      section);
        r = rule_section(f, st, name + strspn(name, " "));
        if (r < 0 || st->skipping)
                return r;
        rule = &st->rules[st->n_rules - 1];
        item = config_table_find(rule_items, ELEMENTSOF(rule_items), "rule", key);
        if (!item)
                return ini_file_error(f, 0, "unknown key '%s' in [rule %s]", key, rule->name);
        r = config_table_parse(item, f, key, value, rule, st);
        if (r >= 0 && item_is_list(item))
                st->last_list = item;
        return r;
}

/* Where one byte of an expanded pattern comes from. */
typedef struct SourcePos {
        unsigned line, column;
} SourcePos;

typedef struct Expansion {
        StrBuf text;
        SourcePos *pos; /* one per byte of text, plus one for its end */
        size_t alloc;
        const char *unknown; /* on -ENOENT: the name not defined (points into a source) */
        size_t unknown_len;
        SourcePos where;     /* on -ENOENT / -ELOOP / -EMLINK: the reference */
        const void *active[RULES_MAX_NESTING]; /* the fragments being expanded, outermost first */
} Expansion;

static void expansion_done(Expansion *e) {
        strbuf_done(&e->text);
        free(e->pos);
}

static int expansion_append(Expansion *e, const char *p, size_t n, const Regex *from, size_t offset) {
        int r;

        if (e->text.len + n + 1 > e->alloc) {
                size_t a = MAX(e->alloc * 2, e->text.len + n + 1);
                SourcePos *q = reallocarray(e->pos, a, sizeof(SourcePos));
                if (!q)
                        return -ENOMEM;
                e->pos = q;
                e->alloc = a;
        }
        for (size_t k = 0; k < n; k++)
                regex_position(from, offset + k, &e->pos[e->text.len + k].line, &e->pos[e->text.len + k].column);
        r = strbuf_append(&e->text, p, n);
        return r;
}

/* Expands the {NAME} references of x (recursively, RULES_MAX_NESTING levels at most) into e, remembering for
 * every byte the line and column it was written at, so that a PCRE2 error inside a fragment
 * points into the [define] section. */
static int expand(const FileState *st, const Regex *x, Expansion *e, unsigned depth) {
        const char *src = x->source;
        int r;

        for (size_t i = 0; src[i];) {
                const Define *def = NULL;
                size_t j = i + 1;

                if (src[i] == '{' && (i == 0 || src[i - 1] != '\\') && isupper((unsigned char) src[i + 1])) {
                        while (isupper((unsigned char) src[j]) || isdigit((unsigned char) src[j]) || src[j] == '_')
                                j++;
                        if (src[j] == '}') {
                                for (size_t k = 0; k < st->n_defines && !def; k++)
                                        if (strlen(st->defines[k].name) == j - i - 1 &&
                                            memcmp(st->defines[k].name, src + i + 1, j - i - 1) == 0)
                                                def = &st->defines[k];
                                bool cycle = false;
                                for (unsigned k = 0; def && k < depth; k++)
                                        cycle = cycle || e->active[k] == def;
                                if (!def || cycle || depth >= RULES_MAX_NESTING) {
                                        e->unknown = src + i + 1;
                                        e->unknown_len = j - i - 1;
                                        regex_position(x, i, &e->where.line, &e->where.column);
                                        return !def ? -ENOENT : cycle ? -ELOOP : -EMLINK;
                                }
                        }
                }
                if (def) {
                        e->active[depth] = def;
                        r = expand(st, &def->fragment, e, depth + 1);
                        if (r < 0)
                                return r;
                        i = j + 1;
                        continue;
                }
                /* Copy up to the next '{'. */
                j = i + 1;
                while (src[j] && src[j] != '{')
                        j++;
                r = expansion_append(e, src + i, j - i, x, i);
                if (r < 0)
                        return r;
                i = j;
        }
        return 0;
}

void regex_position(const Regex *x, size_t offset, unsigned *ret_line, unsigned *ret_column) {
        const SourcePiece *p = &x->pieces[0];

        for (size_t i = 0; i < x->n_pieces; i++)
                if (x->pieces[i].offset <= offset)
                        p = &x->pieces[i];
        *ret_line = p->line;
        *ret_column = p->column + (unsigned) (offset - p->offset);
}

/* Where a pattern starts in its file, for the errors that concern it whole. */
static SourcePos regex_start(const Regex *x) {
        SourcePos p;

        regex_position(x, 0, &p.line, &p.column);
        return p;
}

/* Records "path:line:column: message"; returns 1 (an error reported) or -ENOMEM. */
static int pos_error(const FileState *st, SourcePos pos, const char *fmt, ...) _printf_(3, 4);
static int pos_error(const FileState *st, SourcePos pos, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = ini_file_append_error(st->errors, st->path, pos.line, pos.column, fmt, ap);
        va_end(ap);
        return r < 0 ? r : 1;
}

/* 0 when compiled (or empty), 1 when an error was reported, -ENOMEM. */
static int regex_compile(const FileState *st, Regex *x, bool need_code, bool *jit) {
        _cleanup_(expansion_done) Expansion e = { .text = STRBUF_INIT(RULES_MAX_SOURCE * 4) };
        PCRE2_SIZE erroffset;
        int errcode, r;
        uint32_t captures;

        if (!x->source)
                return 0;
        r = expand(st, x, &e, 0);
        if (r == -ENOENT || r == -ELOOP || r == -EMLINK)
                return pos_error(st, e.where,
                                 r == -ENOENT  ? "unknown fragment {%.*s} (not in [define])"
                                 : r == -ELOOP ? "fragment {%.*s} refers to itself"
                                               : "fragment {%.*s} nested more than "
                                                 STRINGIFY(RULES_MAX_NESTING) " levels deep",
                                 (int) e.unknown_len, e.unknown);
        if (r == -E2BIG)
                return pos_error(st, regex_start(x), "pattern longer than %d bytes once expanded", RULES_MAX_SOURCE * 4);
        if (r < 0)
                return r;
        if (strbuf_ensure(&e.text) < 0 || expansion_append(&e, "", 0, x, strlen(x->source)) < 0)
                return -ENOMEM;
        /* The end position: where the pattern's source ends. */
        regex_position(x, strlen(x->source), &e.pos[e.text.len].line, &e.pos[e.text.len].column);
        x->code = pcre2_compile((PCRE2_SPTR) e.text.data, e.text.len, RULES_COMPILE_OPTIONS,
                                &errcode, &erroffset, NULL);
        if (!x->code) {
                PCRE2_UCHAR msg[256];
                (void) pcre2_get_error_message(errcode, msg, sizeof msg);
                return pos_error(st, e.pos[MIN((size_t) erroffset, e.text.len)], "%s", (char *) msg);
        }
        if (pcre2_pattern_info(x->code, PCRE2_INFO_CAPTURECOUNT, &captures) == 0 &&
            captures >= RULES_OVECTOR_PAIRS) {
                pcre2_code_free(TAKE_PTR(x->code));
                return pos_error(st, regex_start(x), "more than %d capture groups", RULES_OVECTOR_PAIRS - 1);
        }
        x->code_group = pcre2_substring_number_from_name(x->code, (PCRE2_SPTR) "code");
        if (x->code_group < 0)
                x->code_group = -1;
        if (need_code && x->code_group < 0) {
                pcre2_code_free(TAKE_PTR(x->code));
                return pos_error(st, regex_start(x), "pattern has no (?<code>...) group");
        }
        /* JIT may be refused (MemoryDenyWriteExecute=, no executable memory): the interpreter
         * gives the same results, only slower. */
        x->jit = use_jit() && pcre2_jit_compile(x->code, PCRE2_JIT_COMPLETE) == 0;
        if (!x->jit)
                *jit = false;
        return 0;
}

static int rule_finish(FileState *st, Rule *rule, bool *jit) {
        int r;

        if (asprintf(&rule->id, "%s@%u", rule->name, st->version) < 0) {
                rule->id = NULL;
                return -ENOMEM;
        }
        rule->file = strdup(st->path);
        if (!rule->file)
                return -ENOMEM;
        if (rule->kind < 0)
                return strv_extendf(st->errors, "%s:%u: rule '%s' has no kind", st->path, rule->line,
                                    rule->name) < 0 ? -ENOMEM : 1;
        if (rule->n_patterns == 0)
                return strv_extendf(st->errors, "%s:%u: rule '%s' has no pattern", st->path,
                                    rule->line, rule->name) < 0 ? -ENOMEM : 1;
        if (!rule->senders && !rule->employer && !rule->brand.source)
                return strv_extendf(st->errors, "%s:%u: rule '%s' needs senders, employer = yes or "
                                                "a brand pattern", st->path, rule->line, rule->name) < 0 ? -ENOMEM : 1;
        /* Mail from other senders must carry a keyword: the IMAP backfill relies on it. */
        if (rule->brand.source && !rule->keywords)
                return strv_extendf(st->errors, "%s:%u: rule '%s' reads other senders' mail (brand) "
                                                "but has no keywords", st->path, rule->line, rule->name) < 0 ? -ENOMEM : 1;

        /* Counted here, not by measuring the error list before and after: that is as long as
         * the errors of every rule before this one. */
        bool bad = false;
        Regex *singles[] = { &rule->brand, &rule->requires, &rule->subject, &rule->body };
        for (size_t i = 0; i < ELEMENTSOF(singles); i++)
                if ((r = regex_compile(st, singles[i], false, jit)) < 0)
                        return r;
                else
                        bad = bad || r > 0;
        for (RuleList which = 0; which < _RULE_LIST_MAX; which++) {
                Regex **list;
                size_t *n;

                rule_regex_list(rule, which, &list, &n);
                for (size_t i = 0; i < *n; i++)
                        if ((r = regex_compile(st, &(*list)[i], which == RULE_LIST_PATTERN, jit)) < 0)
                                return r;
                        else
                                bad = bad || r > 0;
        }
        return bad ? 1 : 0;
}

static int rules_add_file(Rules *rules, const char *path, char ***errors) {
        FileState st = { .version = 1, .errors = errors };
        int r;

        st.path = strdup(path);
        if (!st.path)
                return -ENOMEM;
        r = ini_file_parse(path, file_handler, &st, errors);
        if (r < 0 && r != -ENOMEM)
                r = strv_extendf(errors, "%s: cannot read: %s", path, strerror(-r));
        for (size_t i = 0; i < st.n_rules && r >= 0; i++) {
                Rule *rule = &st.rules[i];
                int k = rule_finish(&st, rule, &rules->jit);
                if (k < 0) {
                        r = k;
                        break;
                }
                if (k > 0)
                        continue; /* reported; the other rules still load */
                if (rules->n_rules == rules->rules_allocated) {
                        size_t n = MAX(rules->rules_allocated * 2, (size_t) 8);
                        Rule *l = reallocarray(rules->rules, n, sizeof(Rule));
                        if (!l) {
                                r = -ENOMEM;
                                break;
                        }
                        rules->rules = l;
                        rules->rules_allocated = n;
                }
                rules->rules[rules->n_rules++] = *rule;
                *rule = (Rule) {};
                STRV_FOREACH(d, rules->rules[rules->n_rules - 1].senders) {
                        char *copy;
                        if (strmap_get(&rules->trusted_domain_index, *d, NULL))
                                continue;
                        copy = strdup(*d);
                        if ((r = strv_push(&rules->trusted_domains, &rules->n_trusted_domains,
                                           &rules->trusted_domains_allocated, copy)) < 0 ||
                            (r = strmap_put(&rules->trusted_domain_index, copy, 0)) < 0)
                                break;
                }
        }
        strmap_done(&st.rule_names);
        for (size_t i = 0; i < st.n_rules; i++)
                rule_done(&st.rules[i]);
        free(st.rules);
        for (size_t i = 0; i < st.n_defines; i++) {
                free(st.defines[i].name);
                regex_done(&st.defines[i].fragment);
        }
        free(st.defines);
        free(st.path);
        return r < 0 ? r : 0;
}

static Rules *rules_new(void) {
        Rules *r = calloc(1, sizeof(Rules));

        if (!r)
                return NULL;
        r->jit = true;
        r->trusted_domains = calloc(1, sizeof(char *));
        r->keywords = calloc(1, sizeof(char *));
        if (!r->trusted_domains || !r->keywords)
                return rules_free(r);
        return r;
}

/* One pattern for every keyword, each in its own group, so that one pass over a text tells
 * which keywords it holds. A space in a keyword matches any one blank (line breaks too). */
static int rules_build_keywords(Rules *rules, char ***errors) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(0);
        _cleanup_(strmap_done) StrMap ids = STRMAP_INIT;
        size_t n_keywords = strv_length(rules->keywords), allocated = 0;
        int errcode;
        PCRE2_SIZE erroffset;

        for (size_t i = 0; i < rules->n_rules; i++) {
                Rule *rule = &rules->rules[i];

                rule->n_keyword_ids = strv_length(rule->keywords);
                if (rule->n_keyword_ids == 0)
                        continue;
                rule->keyword_ids = calloc(rule->n_keyword_ids, sizeof(size_t));
                if (!rule->keyword_ids)
                        return -ENOMEM;
                for (size_t k = 0; k < rule->n_keyword_ids; k++) {
                        size_t id;
                        if (!strmap_get(&ids, rule->keywords[k], &id)) {
                                id = n_keywords;
                                if (strv_push(&rules->keywords, &n_keywords, &allocated,
                                              strdup(rule->keywords[k])) < 0 ||
                                    strmap_put(&ids, rules->keywords[id], id) < 0)
                                        return -ENOMEM;
                        }
                        rule->keyword_ids[k] = id;
                }
        }
        STRV_FOREACH(k, rules->keywords) {
                if (b.len > 0 && strbuf_putc(&b, '|') < 0)
                        return -ENOMEM;
                if (strbuf_putc(&b, '(') < 0)
                        return -ENOMEM;
                for (const char *p = *k; *p; p++) {
                        int r;
                        if (*p == ' ')
                                r = strbuf_puts(&b, "\\s");
                        else if ((unsigned char) *p < 0x80 && !isalnum((unsigned char) *p)) {
                                char esc[2] = { '\\', *p };
                                r = strbuf_append(&b, esc, 2);
                        } else
                                r = strbuf_putc(&b, *p);
                        if (r < 0)
                                return r;
                }
                if (strbuf_putc(&b, ')') < 0)
                        return -ENOMEM;
        }
        if (b.len == 0)
                return 0;
        rules->keyword_re = pcre2_compile((PCRE2_SPTR) b.data, b.len, PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS,
                                          &errcode, &erroffset, NULL);
        if (!rules->keyword_re && errcode == PCRE2_ERROR_NOMEMORY)
                return -ENOMEM;
        if (!rules->keyword_re) {
                /* Escaped literals: only their number can be too much (a compiled pattern is at
                 * most 64 KiB, 65,535 groups). */
                PCRE2_UCHAR msg[256];
                (void) pcre2_get_error_message(errcode, msg, sizeof msg);
                return strv_extendf(errors, "rules: the %zu different keywords of the rules are too many to "
                                            "search together (%s); use fewer keywords", n_keywords, (char *) msg);
        }
        if (!use_jit() || pcre2_jit_compile(rules->keyword_re, PCRE2_JIT_COMPLETE) != 0)
                rules->jit = false;
        return 0;
}

int rules_load_files(char *const *files, Rules **ret, char ***errors) {
        _cleanup_(rules_freep) Rules *rules = rules_new();
        int r;

        if (!rules)
                return -ENOMEM;
        STRV_FOREACH(f, files)
                if ((r = rules_add_file(rules, *f, errors)) < 0)
                        return r;
        r = rules_build_keywords(rules, errors);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(rules);
        return 0;
}

static int cmp_basename(const void *a, const void *b) {
        const char *x = strrchr(*(char *const *) a, '/'), *y = strrchr(*(char *const *) b, '/');
        return strcmp(x ? x + 1 : *(char *const *) a, y ? y + 1 : *(char *const *) b);
}

int rules_load(char *const *dirs, Rules **ret, char ***errors) {
        _cleanup_strv_free_ char **files = NULL;
        int r;

        STRV_FOREACH(d, dirs) {
                DIR *dir = opendir(*d);
                struct dirent *de;

                if (!dir) {
                        if (errno != ENOENT && strv_extendf(errors, "%s: cannot open rule folder: %m", *d) < 0)
                                return -ENOMEM;
                        continue;
                }
                while ((de = readdir(dir))) {
                        _cleanup_free_ char *path = NULL;
                        size_t i;

                        if (de->d_name[0] == '.' || !endswith(de->d_name, ".rules"))
                                continue;
                        if (asprintf(&path, "%s/%s", *d, de->d_name) < 0) {
                                closedir(dir);
                                return -ENOMEM;
                        }
                        /* Same file name in a later folder replaces the earlier one. */
                        for (i = 0; files && files[i]; i++)
                                if (streq(strrchr(files[i], '/') + 1, de->d_name))
                                        break;
                        if (files && files[i]) {
                                free(files[i]);
                                files[i] = TAKE_PTR(path);
                        } else if (strv_length(files) < RULES_MAX_FILES &&
                                   (r = strv_consume(&files, TAKE_PTR(path))) < 0) {
                                closedir(dir);
                                return r;
                        }
                }
                closedir(dir);
        }
        if (files)
                qsort(files, strv_length(files), sizeof(char *), cmp_basename);
        return rules_load_files(files, ret, errors);
}
