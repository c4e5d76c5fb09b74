/* Rule files are read with ini-file (inih) into raw sources first and compiled once the whole
 * file is known, so that [define] fragments may come in any order and a value may continue on
 * indented lines. Every regex remembers the line and column of each piece of its source, so a
 * PCRE2 error offset becomes "file:line:column" even after {NAME} expansion and joins.
 *
 * Matching: a rule runs on a message when the sender is one it trusts, or, for other senders,
 * when its `brand` pattern appears (then its codes are untrusted). Guards narrow further; each
 * pattern's (?<code>...) capture is then checked (length, digits, SIRET/Luhn, reject patterns)
 * and canonicalised. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <stdarg.h>
#include <dirent.h>
#include <pcre2.h>
#include <stdio.h>

#include "ini-file.h"
#include "log.h"
#include "rules.h"
#include "strbuf.h"
#include "strv.h"

#define RULES_MAX_PER_FILE 256
#define RULES_MAX_FILES 256
#define RULES_MAX_PATTERNS 64
#define RULES_MAX_CANDIDATES 256
#define RULES_MAX_SOURCE 16384
#define RULES_MATCH_LIMIT 1000000
#define RULES_DEPTH_LIMIT 5000
#define RULES_HEAP_LIMIT_KIB 20480
#define RULES_OVECTOR_PAIRS 64
#define RULES_COMPILE_OPTIONS (PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MULTILINE)

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
} RuleCheck;

static const char *const rule_check_names[_RULE_CHECK_MAX] = {
        [RULE_CHECK_NONE] = "none",
        [RULE_CHECK_SIRET] = "siret",
        [RULE_CHECK_NOT_SIRET] = "not-siret",
};

struct Rule {
        char *name;
        char *id; /* name@version */
        char *file;
        unsigned line;
        CodeKind kind;
        char **senders;
        char **keywords;
        bool employer;
        Regex brand, subject, body;
        Regex *patterns;
        size_t n_patterns;
        Regex *rejects;
        size_t n_rejects;
        Regex *reject_contexts;
        size_t n_reject_contexts;
        unsigned min_length, max_length, min_digits;
        RuleCheck check;
        bool in_subject, in_body;
};

struct Rules {
        Rule *rules;
        size_t n_rules;
        char **trusted_domains;
        char **keywords;
        bool jit;
};

struct RuleMatcher {
        pcre2_match_data *md;
        pcre2_match_context *mc;
        pcre2_jit_stack *jit_stack;
};

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
        strv_free(r->keywords);
        regex_done(&r->brand);
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
}

Rules *rules_free(Rules *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_rules; i++)
                rule_done(&r->rules[i]);
        free(r->rules);
        strv_free(r->trusted_domains);
        strv_free(r->keywords);
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

/* ---- parsing ---- */

typedef struct FileState {
        char *path;
        unsigned version;
        char **define_names;
        char **define_values;
        Rule *rules;
        size_t n_rules;
        Regex *last;   /* the regex a continuation line extends */
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

static int parse_bool(const char *v, bool *ret) {
        if (strcaseeq(v, "yes") || strcaseeq(v, "true") || streq(v, "1") || strcaseeq(v, "on"))
                *ret = true;
        else if (strcaseeq(v, "no") || strcaseeq(v, "false") || streq(v, "0") || strcaseeq(v, "off"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_uint(const char *v, unsigned max, unsigned *ret) {
        char *end;
        unsigned long u;

        if (!isdigit((unsigned char) *v))
                return -EINVAL;
        errno = 0;
        u = strtoul(v, &end, 10);
        if (errno || *end || u > max)
                return -EINVAL;
        *ret = (unsigned) u;
        return 0;
}

static bool domain_valid(const char *d) {
        size_t label = 0;

        if (!*d || *d == '.' || strlen(d) > 253)
                return false;
        for (const char *p = d; *p; p++) {
                if (*p == '.') {
                        if (label == 0)
                                return false;
                        label = 0;
                } else if (isalnum((unsigned char) *p) || *p == '-')
                        label++;
                else
                        return false;
        }
        return label > 0;
}

static int rule_key(IniFile *f, FileState *st, Rule *rule, const char *key, const char *value) {
        unsigned col = ini_file_value_column(f);
        Regex *x = NULL;
        int r;

        if (streq(key, "kind")) {
                rule->kind = code_kind_from_string(value);
                if (rule->kind < 0)
                        return ini_file_error(f, col, "unknown kind '%s' (expected specific, "
                                                      "company, access, otp, request or file)",
                                              value);
        } else if (streq(key, "senders")) {
                _cleanup_strv_free_ char **l = NULL;
                r = strv_split_comma(value, &l);
                if (r < 0)
                        return r;
                STRV_FOREACH(d, l) {
                        for (char *p = *d; *p; p++)
                                *p = (char) tolower((unsigned char) *p);
                        if (!domain_valid(*d))
                                return ini_file_error(f, col, "invalid domain '%s'", *d);
                        if (!strv_contains(rule->senders, *d) && (r = strv_extend(&rule->senders, *d)) < 0)
                                return r;
                }
        } else if (streq(key, "keywords")) {
                _cleanup_strv_free_ char **l = NULL;
                r = strv_split_comma(value, &l);
                if (r < 0)
                        return r;
                STRV_FOREACH(k, l)
                        if (!strv_contains_case(rule->keywords, *k) && (r = strv_extend(&rule->keywords, *k)) < 0)
                                return r;
        } else if (streq(key, "employer")) {
                if (parse_bool(value, &rule->employer) < 0)
                        return ini_file_error(f, col, "expected yes or no, got '%s'", value);
        } else if (streq(key, "brand"))
                return st->last = &rule->brand, regex_set(f, &rule->brand, value, false);
        else if (streq(key, "subject"))
                return st->last = &rule->subject, regex_set(f, &rule->subject, value, false);
        else if (streq(key, "body"))
                return st->last = &rule->body, regex_set(f, &rule->body, value, false);
        else if (streq(key, "pattern")) {
                r = regex_list_add(f, &rule->patterns, &rule->n_patterns, value, &x);
                st->last = x;
                return r;
        } else if (streq(key, "reject")) {
                r = regex_list_add(f, &rule->rejects, &rule->n_rejects, value, &x);
                st->last = x;
                return r;
        } else if (streq(key, "reject_context")) {
                r = regex_list_add(f, &rule->reject_contexts, &rule->n_reject_contexts, value, &x);
                st->last = x;
                return r;
        } else if (streq(key, "length")) {
                unsigned a, b;
                char *dash = strchr(value, '-');
                _cleanup_free_ char *lo = dash ? strndup(value, (size_t) (dash - value)) : strdup(value);
                if (!lo)
                        return -ENOMEM;
                if (parse_uint(lo, 64, &a) < 0 || parse_uint(dash ? dash + 1 : value, 64, &b) < 0 ||
                    a < 1 || a > b)
                        return ini_file_error(f, col, "expected a length range like 6-16, got '%s'", value);
                rule->min_length = a;
                rule->max_length = b;
        } else if (streq(key, "min_digits")) {
                if (parse_uint(value, 64, &rule->min_digits) < 0)
                        return ini_file_error(f, col, "expected a number, got '%s'", value);
        } else if (streq(key, "check")) {
                RuleCheck c;
                for (c = 0; c < _RULE_CHECK_MAX; c++)
                        if (streq(value, rule_check_names[c]))
                                break;
                if (c == _RULE_CHECK_MAX)
                        return ini_file_error(f, col, "unknown check '%s' (expected none, siret or not-siret)",
                                              value);
                rule->check = c;
        } else if (streq(key, "where")) {
                _cleanup_strv_free_ char **l = NULL;
                r = strv_split_comma(value, &l);
                if (r < 0)
                        return r;
                rule->in_subject = rule->in_body = false;
                STRV_FOREACH(w, l) {
                        if (streq(*w, "subject"))
                                rule->in_subject = true;
                        else if (streq(*w, "body"))
                                rule->in_body = true;
                        else
                                return ini_file_error(f, col, "unknown place '%s' (expected subject, body)", *w);
                }
        } else
                return ini_file_error(f, 0, "unknown key '%s' in [rule %s]", key, rule->name);
        st->last = NULL;
        return 0;
}

static int file_handler(IniFile *f, const char *section, const char *key, const char *value,
                        bool continuation, void *userdata) {
        FileState *st = userdata;
        const char *name;

        if (continuation) {
                if (!st->last)
                        return ini_file_error(f, 0, "only patterns may continue on the next line");
                return regex_set(f, st->last, value, true);
        }
        st->last = NULL;

        if (streq(section, "rules")) {
                if (streq(key, "version")) {
                        if (parse_uint(value, 1000000, &st->version) < 0 || st->version == 0)
                                return ini_file_error(f, ini_file_value_column(f),
                                                      "expected a positive version number, got '%s'", value);
                        return 0;
                }
                return ini_file_error(f, 0, "unknown key '%s' in [rules]", key);
        }
        if (streq(section, "define")) {
                bool ok = *key;
                for (const char *p = key; *p; p++)
                        ok = ok && (isupper((unsigned char) *p) || isdigit((unsigned char) *p) || *p == '_');
                if (!ok)
                        return ini_file_error(f, 0, "define names are upper case: '%s'", key);
                if (strv_contains(st->define_names, key))
                        return ini_file_error(f, 0, "'%s' is defined twice", key);
                if (strv_extend(&st->define_names, key) < 0 || strv_extend(&st->define_values, value) < 0)
                        return -ENOMEM;
                return 0;
        }
        name = startswith(section, "rule ");
        if (!name)
                return ini_file_error(f, 0, "unknown section [%s] (expected [rules], [define] or [rule NAME])",
                                      section);
        name += strspn(name, " ");
        if (st->n_rules == 0 || !streq(st->rules[st->n_rules - 1].name, name)) {
                Rule *l;
                bool ok = *name;

                for (const char *p = name; *p; p++)
                        ok = ok && (isalnum((unsigned char) *p) || *p == '-' || *p == '_' || *p == '.');
                for (size_t i = 0; i < st->n_rules; i++)
                        if (streq(st->rules[i].name, name))
                                ok = false;
                if (!ok) {
                        if (!st->skipping)
                                (void) ini_file_error(f, 0, "invalid or duplicate rule name '%s'", name);
                        st->skipping = true;
                        return 0;
                }
                if (st->n_rules >= RULES_MAX_PER_FILE)
                        return ini_file_error(f, 0, "more than %d rules in one file", RULES_MAX_PER_FILE);
                l = reallocarray(st->rules, st->n_rules + 1, sizeof(Rule));
                if (!l)
                        return -ENOMEM;
                st->rules = l;
                l[st->n_rules] = (Rule) {
                        .name = strdup(name), .line = ini_file_line(f), .kind = _CODE_KIND_INVALID,
                        .brand.code_group = -1, .subject.code_group = -1, .body.code_group = -1,
                        .min_length = 4, .max_length = 32, .min_digits = 1, .in_subject = true,
                        .in_body = true,
                };
                st->n_rules++;
                if (!l[st->n_rules - 1].name)
                        return -ENOMEM;
                st->skipping = false;
        }
        if (st->skipping)
                return 0;
        return rule_key(f, st, &st->rules[st->n_rules - 1], key, value);
}

/* Expands {NAME} references; map[i] = offset in source of expanded byte i (a reference maps
 * all its bytes to the '{'). */
static int expand_defines(const FileState *st, const char *src, char **ret, size_t **ret_map,
                          char **ret_unknown) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(RULES_MAX_SOURCE * 4);
        _cleanup_free_ size_t *map = NULL;
        size_t n_map = 0, alloc = 0;
        int r = 0;

        *ret_unknown = NULL;
        for (size_t i = 0; src[i];) {
                const char *v = NULL;
                size_t l = 1;

                if (src[i] == '{' && (i == 0 || src[i - 1] != '\\')) {
                        size_t j = i + 1;
                        while (isupper((unsigned char) src[j]) || isdigit((unsigned char) src[j]) || src[j] == '_')
                                j++;
                        if (src[j] == '}' && j > i + 1 && isupper((unsigned char) src[i + 1])) {
                                _cleanup_free_ char *name = strndup(src + i + 1, j - i - 1);
                                if (!name)
                                        return -ENOMEM;
                                for (size_t k = 0; st->define_names && st->define_names[k]; k++)
                                        if (streq(st->define_names[k], name))
                                                v = st->define_values[k];
                                if (!v) {
                                        *ret_unknown = TAKE_PTR(name);
                                        return -ENOENT;
                                }
                                l = j - i + 1;
                        }
                }
                size_t add = v ? strlen(v) : 1;
                r = strbuf_append(&b, v ?: src + i, add);
                if (r < 0)
                        return r;
                if (n_map + add + 1 > alloc) {
                        size_t *m;
                        alloc = (n_map + add + 1) * 2;
                        m = reallocarray(map, alloc, sizeof(size_t));
                        if (!m)
                                return -ENOMEM;
                        map = m;
                }
                for (size_t k = 0; k < add; k++)
                        map[n_map++] = i;
                i += l;
        }
        if (!map && !(map = calloc(1, sizeof(size_t))))
                return -ENOMEM;
        map[n_map] = strlen(src);
        if (strbuf_ensure(&b) < 0)
                return -ENOMEM;
        *ret = strbuf_take(&b, NULL);
        *ret_map = TAKE_PTR(map);
        return 0;
}

static void regex_position(const Regex *x, size_t offset, unsigned *ret_line, unsigned *ret_column) {
        const SourcePiece *p = &x->pieces[0];

        for (size_t i = 0; i < x->n_pieces; i++)
                if (x->pieces[i].offset <= offset)
                        p = &x->pieces[i];
        *ret_line = p->line;
        *ret_column = p->column + (unsigned) (offset - p->offset);
}

static int regex_error(const FileState *st, const Regex *x, size_t offset, const char *fmt, ...) _printf_(4, 5);
static int regex_error(const FileState *st, const Regex *x, size_t offset, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        unsigned line, column;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg)
                return -ENOMEM;
        regex_position(x, offset, &line, &column);
        return strv_extendf(st->errors, "%s:%u:%u: %s", st->path, line, column, msg);
}

static int regex_compile(const FileState *st, Regex *x, bool need_code, bool *jit) {
        _cleanup_free_ char *expanded = NULL, *unknown = NULL;
        _cleanup_free_ size_t *map = NULL;
        PCRE2_SIZE erroffset;
        int errcode, r;
        uint32_t captures;

        if (!x->source)
                return 0;
        r = expand_defines(st, x->source, &expanded, &map, &unknown);
        if (r == -ENOENT) {
                const char *ref = strstr(x->source, unknown);
                return regex_error(st, x, ref ? (size_t) (ref - x->source) - 1 : 0,
                                   "unknown fragment {%s} (not in [define])", unknown);
        }
        if (r < 0)
                return r;
        x->code = pcre2_compile((PCRE2_SPTR) expanded, PCRE2_ZERO_TERMINATED, RULES_COMPILE_OPTIONS,
                                &errcode, &erroffset, NULL);
        if (!x->code) {
                PCRE2_UCHAR msg[256];
                (void) pcre2_get_error_message(errcode, msg, sizeof msg);
                return regex_error(st, x, map[MIN((size_t) erroffset, strlen(expanded))], "%s", (char *) msg);
        }
        if (pcre2_pattern_info(x->code, PCRE2_INFO_CAPTURECOUNT, &captures) == 0 &&
            captures >= RULES_OVECTOR_PAIRS) {
                pcre2_code_free(TAKE_PTR(x->code));
                return regex_error(st, x, 0, "more than %d capture groups", RULES_OVECTOR_PAIRS - 1);
        }
        x->code_group = pcre2_substring_number_from_name(x->code, (PCRE2_SPTR) "code");
        if (x->code_group < 0)
                x->code_group = -1;
        if (need_code && x->code_group < 0) {
                pcre2_code_free(TAKE_PTR(x->code));
                return regex_error(st, x, 0, "pattern has no (?<code>...) group");
        }
        /* JIT may be refused (MemoryDenyWriteExecute=, no executable memory): the interpreter
         * gives the same results, only slower. */
        x->jit = pcre2_jit_compile(x->code, PCRE2_JIT_COMPLETE) == 0;
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

        size_t before = strv_length(*st->errors);
        Regex *singles[] = { &rule->brand, &rule->subject, &rule->body };
        for (size_t i = 0; i < ELEMENTSOF(singles); i++)
                if ((r = regex_compile(st, singles[i], false, jit)) < 0)
                        return r;
        for (size_t i = 0; i < rule->n_patterns; i++)
                if ((r = regex_compile(st, &rule->patterns[i], true, jit)) < 0)
                        return r;
        for (size_t i = 0; i < rule->n_rejects; i++)
                if ((r = regex_compile(st, &rule->rejects[i], false, jit)) < 0)
                        return r;
        for (size_t i = 0; i < rule->n_reject_contexts; i++)
                if ((r = regex_compile(st, &rule->reject_contexts[i], false, jit)) < 0)
                        return r;
        return strv_length(*st->errors) > before ? 1 : 0;
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
                Rule *l = reallocarray(rules->rules, rules->n_rules + 1, sizeof(Rule));
                if (!l) {
                        r = -ENOMEM;
                        break;
                }
                rules->rules = l;
                l[rules->n_rules++] = *rule;
                *rule = (Rule) {};
                STRV_FOREACH(d, l[rules->n_rules - 1].senders)
                        if (!strv_contains(rules->trusted_domains, *d) &&
                            (r = strv_extend(&rules->trusted_domains, *d)) < 0)
                                break;
                STRV_FOREACH(w, l[rules->n_rules - 1].keywords)
                        if (r >= 0 && !strv_contains_case(rules->keywords, *w) &&
                            (r = strv_extend(&rules->keywords, *w)) < 0)
                                break;
        }
        for (size_t i = 0; i < st.n_rules; i++)
                rule_done(&st.rules[i]);
        free(st.rules);
        strv_free(st.define_names);
        strv_free(st.define_values);
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

int rules_load_files(char *const *files, Rules **ret, char ***errors) {
        _cleanup_(rules_freep) Rules *rules = rules_new();
        int r;

        if (!rules)
                return -ENOMEM;
        STRV_FOREACH(f, files)
                if ((r = rules_add_file(rules, *f, errors)) < 0)
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

/* ---- matching ---- */

int rule_matcher_new(RuleMatcher **ret) {
        RuleMatcher *m = calloc(1, sizeof(RuleMatcher));

        if (!m)
                return -ENOMEM;
        m->md = pcre2_match_data_create(RULES_OVECTOR_PAIRS, NULL);
        m->mc = pcre2_match_context_create(NULL);
        m->jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
        if (!m->md || !m->mc) {
                rule_matcher_free(m);
                return -ENOMEM;
        }
        (void) pcre2_set_match_limit(m->mc, RULES_MATCH_LIMIT);
        (void) pcre2_set_depth_limit(m->mc, RULES_DEPTH_LIMIT);
        (void) pcre2_set_heap_limit(m->mc, RULES_HEAP_LIMIT_KIB);
        if (m->jit_stack)
                pcre2_jit_stack_assign(m->mc, NULL, m->jit_stack);
        *ret = m;
        return 0;
}

RuleMatcher *rule_matcher_free(RuleMatcher *m) {
        if (!m)
                return NULL;
        pcre2_match_data_free(m->md);
        pcre2_match_context_free(m->mc);
        pcre2_jit_stack_free(m->jit_stack);
        free(m);
        return NULL;
}

/* Returns 1 on a match, 0 none, or a PCRE2 error (< 0). */
static int regex_find(const Regex *x, RuleMatcher *m, const char *s, size_t len, size_t start) {
        int r = pcre2_match(x->code, (PCRE2_SPTR) s, len, start, PCRE2_NO_UTF_CHECK, m->md, m->mc);
        return r >= 0 ? 1 : r == PCRE2_ERROR_NOMATCH ? 0 : r;
}

static bool is_limit_error(int r) {
        return r == PCRE2_ERROR_MATCHLIMIT || r == PCRE2_ERROR_DEPTHLIMIT ||
               r == PCRE2_ERROR_HEAPLIMIT || r == PCRE2_ERROR_JIT_STACKLIMIT;
}

static int limit_warning(const Rule *rule, const Regex *x, int err, char ***warnings) {
        PCRE2_UCHAR msg[128];

        if (!warnings)
                return 0;
        (void) pcre2_get_error_message(err, msg, sizeof msg);
        return strv_extendf(warnings, "%s:%u: rule '%s': %s, skipping this pattern", rule->file,
                            x->pieces[0].line, rule->name, (char *) msg);
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

/* Checks a candidate; returns NULL when it passes, else why not. */
static const char *candidate_check(const Rule *rule, RuleMatcher *m, const char *canonical,
                                   const char *display, size_t display_len, const char *line,
                                   size_t line_len, int *ret_err, const Regex **ret_x) {
        size_t len = strlen(canonical), digits = 0;
        int r;

        for (const char *p = canonical; *p; p++)
                digits += isdigit((unsigned char) *p) != 0;
        if (len < rule->min_length || len > rule->max_length)
                return "length out of range";
        if (digits < rule->min_digits)
                return "too few digits";
        if (rule->check == RULE_CHECK_NOT_SIRET && len == 14 && all_digits(canonical) && luhn_valid(canonical))
                return "a SIRET (company number), not this kind";
        if (rule->check == RULE_CHECK_SIRET && all_digits(canonical) &&
            !((len == 14 || len == 9) && luhn_valid(canonical)))
                return "digits but not a valid SIREN/SIRET";
        for (size_t i = 0; i < rule->n_rejects; i++) {
                r = regex_find(&rule->rejects[i], m, display, display_len, 0);
                if (r == 1)
                        return "matches a reject pattern";
                if (r < 0) {
                        *ret_err = r;
                        *ret_x = &rule->rejects[i];
                }
        }
        for (size_t i = 0; i < rule->n_reject_contexts; i++) {
                r = regex_find(&rule->reject_contexts[i], m, line, line_len, 0);
                if (r == 1)
                        return "its line matches a reject_context pattern";
                if (r < 0) {
                        *ret_err = r;
                        *ret_x = &rule->reject_contexts[i];
                }
        }
        return NULL;
}

typedef struct Candidate {
        CodeKind kind;
        char *value;
        char *display;
        bool trusted;
        const char *rule_id;
        size_t distance; /* from the start of the match (the label) to the code */
} Candidate;

static bool regex_matches_any(const Regex *x, RuleMatcher *m, const RuleText *texts, size_t n,
                              bool subject, const SenderInfo *sender, int *ret_err) {
        int r;

        for (size_t i = 0; i < n; i++) {
                if (texts[i].subject != subject && subject)
                        continue;
                r = regex_find(x, m, texts[i].text, texts[i].len, 0);
                if (r == 1)
                        return true;
                if (r < 0)
                        *ret_err = r;
        }
        if (!subject && sender) {
                const char *extra[] = { sender->name, sender->address };
                for (size_t i = 0; i < ELEMENTSOF(extra); i++)
                        if (extra[i] && regex_find(x, m, extra[i], strlen(extra[i]), 0) == 1)
                                return true;
        }
        return false;
}

static void line_around(const char *text, size_t len, size_t offset, size_t *ret_start, size_t *ret_len) {
        size_t s = offset, e = offset;

        while (s > 0 && text[s - 1] != '\n')
                s--;
        while (e < len && text[e] != '\n')
                e++;
        *ret_start = s;
        *ret_len = e - s;
}

static int rule_run(const Rule *rule, RuleMatcher *m, const RuleText *texts, size_t n_texts,
                    const SenderInfo *sender, Candidate *cands, size_t *n_cands,
                    RuleExplainFunc explain, void *userdata, char ***warnings) {
        bool trusted_sender = sender_trusted(sender, rule->senders, rule->employer);
        int err = 0, r;

        if (!trusted_sender) {
                /* Other senders only when they claim the brand; their codes stay untrusted. */
                if (!rule->brand.code || !regex_matches_any(&rule->brand, m, texts, n_texts, false, sender, &err))
                        goto out;
        }
        if (rule->subject.code && !regex_matches_any(&rule->subject, m, texts, n_texts, true, NULL, &err))
                goto out;
        if (rule->body.code) {
                bool found = false;
                for (size_t i = 0; i < n_texts && !found; i++)
                        if (!texts[i].subject && regex_find(&rule->body, m, texts[i].text, texts[i].len, 0) == 1)
                                found = true;
                if (!found)
                        goto out;
        }

        for (size_t t = 0; t < n_texts; t++) {
                const RuleText *tx = &texts[t];

                if ((tx->subject && !rule->in_subject) || (!tx->subject && !rule->in_body))
                        continue;
                for (size_t p = 0; p < rule->n_patterns; p++) {
                        const Regex *x = &rule->patterns[p];
                        size_t start = 0;

                        while (start <= tx->len && *n_cands < RULES_MAX_CANDIDATES) {
                                PCRE2_SIZE *ov;
                                size_t ms, me, cs, ce, ls, ll;
                                const Regex *bad = NULL;
                                int cerr = 0;

                                r = regex_find(x, m, tx->text, tx->len, start);
                                if (r < 0 && is_limit_error(r)) {
                                        if (limit_warning(rule, x, r, warnings) < 0)
                                                return -ENOMEM;
                                        break;
                                }
                                if (r <= 0)
                                        break;
                                ov = pcre2_get_ovector_pointer(m->md);
                                ms = ov[0];
                                me = ov[1];
                                cs = ov[2 * x->code_group];
                                ce = ov[2 * x->code_group + 1];
                                /* Next search starts after this match (one char on an empty one). */
                                start = me > ms ? me : me + 1;
                                while (start < tx->len && ((unsigned char) tx->text[start] & 0xC0) == 0x80)
                                        start++;
                                if (cs == PCRE2_UNSET || ce <= cs)
                                        continue;
                                while (ce > cs && tx->text[ce - 1] == ' ')
                                        ce--;

                                _cleanup_free_ char *display = strndup(tx->text + cs, ce - cs);
                                if (!display)
                                        return -ENOMEM;
                                _cleanup_free_ char *canonical = code_canonicalize(display);
                                if (!canonical)
                                        return -ENOMEM;
                                line_around(tx->text, tx->len, cs, &ls, &ll);
                                const char *why = candidate_check(rule, m, canonical, display, ce - cs,
                                                                  tx->text + ls, ll, &cerr, &bad);
                                if (cerr < 0 && is_limit_error(cerr) && limit_warning(rule, bad, cerr, warnings) < 0)
                                        return -ENOMEM;
                                bool trusted = trusted_sender && tx->attached == 0;

                                if (explain) {
                                        unsigned line, col;
                                        regex_position(x, 0, &line, &col);
                                        explain(&(RuleVerdict) {
                                                        .rule = rule->id, .file = rule->file, .line = line,
                                                        .kind = rule->kind, .display = tx->text + cs,
                                                        .display_len = ce - cs, .offset = cs, .text_index = (unsigned) t,
                                                        .trusted = trusted, .rejected = why,
                                                },
                                                userdata);
                                }
                                if (why)
                                        continue;
                                cands[(*n_cands)++] = (Candidate) {
                                        .kind = rule->kind, .value = TAKE_PTR(canonical),
                                        .display = TAKE_PTR(display), .trusted = trusted,
                                        .rule_id = rule->id, .distance = cs - ms,
                                };
                        }
                }
        }
out:
        if (err < 0 && is_limit_error(err) && warnings &&
            strv_extendf(warnings, "%s:%u: rule '%s': a guard pattern hit PCRE2's limits", rule->file,
                         rule->line, rule->name) < 0)
                return -ENOMEM;
        return 0;
}

int rules_match(const Rules *rules, RuleMatcher *m, const RuleText *texts, size_t n_texts,
                const SenderInfo *sender, Message *msg, RuleExplainFunc explain, void *userdata,
                char ***warnings) {
        _cleanup_free_ Candidate *cands = calloc(RULES_MAX_CANDIDATES, sizeof(Candidate));
        size_t n = 0;
        int r = 0, added = 0;

        if (!cands)
                return -ENOMEM;
        for (size_t i = 0; i < rules->n_rules && r >= 0; i++)
                r = rule_run(&rules->rules[i], m, texts, n_texts, sender, cands, &n, explain,
                             userdata, warnings);

        /* One value, one kind: when rules of different kinds claim the same value, the one
         * whose label sits closest to it wins (ties: the first rule). */
        for (size_t i = 0; i < n && r >= 0; i++) {
                bool keep = true;
                for (size_t j = 0; j < n && keep; j++)
                        if (j != i && cands[j].kind != cands[i].kind && streq(cands[j].value, cands[i].value) &&
                            (cands[j].distance < cands[i].distance ||
                             (cands[j].distance == cands[i].distance && j < i)))
                                keep = false;
                if (!keep)
                        continue;
                r = message_add_code(msg, &(Code) { .kind = cands[i].kind, .value = cands[i].value,
                                                    .display = cands[i].display,
                                                    .trusted = cands[i].trusted,
                                                    .rule = (char *) cands[i].rule_id });
                if (r > 0)
                        added++;
        }
        for (size_t i = 0; i < n; i++) {
                free(cands[i].value);
                free(cands[i].display);
        }
        return r < 0 ? r : added;
}
