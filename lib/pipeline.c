/* One message through the whole extraction (see pipeline.h): MIME decoding, texts for the
 * rules, the rules, then the safety net for a trusted sender's mail that speaks of a code no
 * rule read. Each MIME text part becomes one or two RuleTexts: HTML is turned into text,
 * everything is folded (text_fold()), links and addresses are blanked, and quoted or forwarded
 * lines are split off into a text of their own that can never yield a trusted code. The
 * subject is one more text. No PCRE2 here: the safety net's patterns are RulePatterns, matched
 * the one way rules.c matches everything. */
#include <stdio.h>

#include "pipeline.h"
#include "sender.h"
#include "strv.h"
#include "text.h"

#define SUBJECT_MAX 4096
/* A plain alternative with fewer letters (links aside) may only say "read the HTML", or be one
 * that did not decode (its bytes are not words). */
#define STUB_LETTERS 100

/* The safety net: mail from a trusted sender (a domain some rule trusts, or an employer
 * domain) that speaks of a code, a number or an identifier of ours, and yields no code, is kept
 * as a possible code. Run on the folded subject and the sender's own text (not quoted, not
 * attached). Newsletters, offers, password resets (any mail about a password), appointments,
 * warnings against fraud ("we will never ask for your code") and announcements ("the codes
 * will be sent on ...") speak of codes too, but hold none: they stay quiet. */
/* A code or number of ours (KIND), said to be given in this mail, in one clause. Mail that only
 * speaks of codes ("comment obtenir votre code specifique ?", "your specific code is personal",
 * "le code entreprise est le SIRET de votre employeur") is not enough: either a cue says where
 * the code is (POSSIBLE_WHERE: "ci-dessous", "en objet", "dans le fichier joint", "voici"...),
 * or a weaker cue (POSSIBLE_CUE: a colon, "is", "utilisez"...) is followed by something that
 * looks like a value (POSSIBLE_VALUE: a token holding a digit, in the same clause or alone on
 * the next line), which no rule read. */
#define POSSIBLE_KIND                                                                              \
        "(?:\\bcodes?\\b(?!\\s+(?:postal|promo|promotionnel|de\\s+reduction|avantage|de\\s+la\\s+route|du\\s+travail))"     \
        "|\\b(?:numero|n[o\u00b0]|no\\.?|reference|ref\\.?)\\s*(?:unique|de\\s+(?:votre\\s+|la\\s+|du\\s+)?(?:demande|dossier|visa)" \
        "|d'enregistrement|du\\s+dossier)|\\b(?:visa|dossier|demande)\\s+(?:n[o\u00b0]|numero)"                  \
        "|\\bidentifiant\\s+(?:unique|personnel|de\\s+connexion)|\\bpasscode\\b"                          \
        "|\\b(?:file|request|application|visa)\\s+(?:number|no\\.?|reference)\\b)"
#define POSSIBLE_WHERE                                                                             \
        "(?:\\bvoici\\b(?!\\s+(?:comment|pourquoi|ce\\s+qu))|\\bhere\\s+(?:is|are)\\b(?!\\s+(?:how|why|what))"     \
        "|\\bci-(?:dessous|joint|apres)\\b|\\bbelow\\b|\\b(?:piece|document|fichier)\\s+jointe?\\b|\\ben\\s+pj\\b"   \
        "|\\battache?d\\b|\\battachment\\b|\\bsuivante?\\s*:|\\bfollowing\\s*:|\\bobjet\\b|\\bsubject\\b)"
#define POSSIBLE_CUE                                                                               \
        "(?:[^\\S\\n]*:|\\butilisez\\b|\\bsaisissez\\b|\\bentrez\\b|\\btapez\\b|\\buse\\b|\\benter\\b|\\btype\\b"      \
        "|\\bindiquee?\\b|\\bfigure\\b|\\bcommunique\\b|\\battribuee?\\b|\\best\\b|\\bis\\b)"
#define POSSIBLE_TOKEN                                                                             \
        "(?<![\\w@/:,.+-])(?!(?:\\+33\\s?|0)[1-9](?:[ .]?\\d\\d){4})(?=[A-Za-z0-9 .-]{0,24}?\\d)"                 \
        "(?:[A-Za-z0-9]{4,}|[A-Za-z0-9](?:[ .-][A-Za-z0-9]){3,}|[A-Za-z0-9]{2,}(?:[ .-][A-Za-z0-9]{2,})+)(?![\\w@/:%]|,\\d)"
#define POSSIBLE_VALUE                                                                             \
        "(?=[^.!?\\n]{0,80}?" POSSIBLE_TOKEN "|[^.!?\\n]{0,80}\\n(?:[^\\S\\n]*\\n){0,3}[^\\S\\n]*[\\[\"'*(|>]*"         \
        POSSIBLE_TOKEN ")"
static const char possible_mention[] =
        POSSIBLE_KIND "[^.!?\\n]{0,60}?" POSSIBLE_WHERE "|" POSSIBLE_WHERE "[^.!?\\n]{0,60}?" POSSIBLE_KIND
        "|(?:" POSSIBLE_KIND "[^.!?\\n]{0,60}?" POSSIBLE_CUE "|" POSSIBLE_CUE "[^.!?\\n]{0,60}?" POSSIBLE_KIND ")"
        POSSIBLE_VALUE;
static const char possible_quiet[] =
        "se\\s+desabonner|desinscri|desabonnement|unsubscribe|newsletter|lettre\\s+d'information"
        "|mot\\s+de\\s+passe\\s+oublie|reinitialis|reset\\s+(?:your\\s+)?password|password\\s+reset"
        "|(?:choisir|creer|definir)\\s+(?:un|votre)\\s+nouveau\\s+mot\\s+de\\s+passe"
        "|\\boffres?\\s+(?:speciale|exclusive|promotionnelle|commerciale|partenaire)|\\bpromotion|webinaire|webinar"
        "|enquete\\s+de\\s+satisfaction|questionnaire"
        /* warnings against fraud: "Action Logement ne vous demandera jamais votre code" */
        "|\\bjamais\\b[^.\\n]{0,80}\\bcodes?\\b|\\bnever\\b[^.\\n]{0,80}\\bcodes?\\b|\\bfraud|\\bhameconnage|\\bphishing|\\barnaque"
        "|\\bescroquer|\\bscam|\\bvigilan|\\bmefie|\\busurpation|\\bsuspicious|\\bfaux\\s+(?:mails|messages|courriels|sites)"
        /* password resets and changes, appointments, news */
        "|mot\\s+de\\s+passe|\\bpassword\\b|rendez-vous|\\brdv\\b|\\bappointment|\\bactualites\\b|\\bwebinar|\\bpreferences\\b"
        "|\\bnews\\b|\\bdecouvrez\\b|\\bevenement"
        /* the code is elsewhere: in the user's online space, by post, by text message */
        "|\\bespace\\s+(?:personnel|client|beneficiaire|salarie|adherent|en\\s+ligne)|\\bconnectez-vous"
        "|\\ben\\s+ligne\\b|\\bonline\\b|\\bpar\\s+(?:sms|courrier|voie\\s+postale|la\\s+poste)|\\bby\\s+(?:sms|text|post)\\b"
        /* announcements: the code is yet to come */
        "|\\b(?:seront|sera)\\s+(?:\\w+\\s+)?(?:envoyee?s?|transmise?s?|communiquee?s?|adressee?s?|distribuee?s?)"
        "|\\bvous\\s+(?:le\\s+|les\\s+)?recevrez|\\bcodes?\\b[^.\\n]{0,60}\\bjamais\\b"
        "|\\bwill\\s+(?:be\\s+sent|receive|be\\s+e-?mailed)|\\bprochainement\\b|\\barriveront\\b|\\barrivent\\b";

struct Pipeline {
        const Rules *rules;
        char *const *employer_domains;
        char *const *user_addresses;
        MimeLimits limits;
        RuleMatcher *matcher;
        PipelineTextFunc text_cb;
        void *text_userdata;
        const char *distrust;
        RulePattern *mention, *quiet;
};

int pipeline_new(const Rules *rules, char *const *employer_domains, const MimeLimits *limits,
                 Pipeline **ret) {
        _cleanup_(pipeline_freep) Pipeline *p = calloc(1, sizeof(Pipeline));
        int r;

        if (!p)
                return -ENOMEM;
        p->rules = rules;
        p->employer_domains = employer_domains;
        p->limits = limits ? *limits : MIME_LIMITS_DEFAULT;
        r = rule_matcher_new(&p->matcher);
        if (r < 0)
                return r;
        /* Fixed patterns: only memory can fail. */
        r = rule_pattern_new(possible_mention, &p->mention);
        if (r < 0)
                return r;
        r = rule_pattern_new(possible_quiet, &p->quiet);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

Pipeline *pipeline_free(Pipeline *p) {
        if (!p)
                return NULL;
        rule_matcher_free(p->matcher);
        rule_pattern_free(p->mention);
        rule_pattern_free(p->quiet);
        free(p);
        return NULL;
}

void pipeline_set_user_addresses(Pipeline *p, char *const *addresses) {
        p->user_addresses = addresses;
}

void pipeline_set_distrust(Pipeline *p, const char *why) {
        p->distrust = why;
}

void pipeline_set_text_callback(Pipeline *p, PipelineTextFunc f, void *userdata) {
        p->text_cb = f;
        p->text_userdata = userdata;
}

static int add_warnings(char ***warnings, char **list) {
        if (!warnings)
                return 0;
        STRV_FOREACH(w, list)
                if (strv_extend(warnings, *w) < 0)
                        return -ENOMEM;
        return 0;
}

static int fill_headers(Message *msg, const MimeMessage *mm, const SenderInfo *s) {
        if (mm->message_id && !(msg->message_id = strdup(mm->message_id)))
                return -ENOMEM;
        if (s->address) {
                /* addr-spec with the domain in lower case, as we compared it */
                const char *at = strrchr(s->address, '@');
                int r = at && s->domain ? asprintf(&msg->sender, "%.*s@%s", (int) (at - s->address), s->address,
                                                   s->domain)
                                        : asprintf(&msg->sender, "%s", s->address);
                if (r < 0) {
                        msg->sender = NULL;
                        return -ENOMEM;
                }
        }
        if (mm->from.name && !(msg->sender_name = strdup(mm->from.name)))
                return -ENOMEM;
        if (mm->subject && !(msg->subject = strdup(mm->subject)))
                return -ENOMEM;
        msg->date = mm->date;
        msg->date_tz = mm->date_tz;
        return 0;
}

typedef struct Texts {
        RuleText *t;
        char **owned;
        size_t n, alloc;
        bool left_out;          /* MessageRef.left_out: look for keywords in links too */
        bool keyword_in_links;  /* (or anywhere in the text, before its links went) */
        size_t own_letters;     /* (left_out) ASCII letters in the sender's own plain text, links aside */
} Texts;

static void texts_done(Texts *x) {
        for (size_t i = 0; i < x->n; i++)
                free(x->owned[i]);
        free(x->owned);
        free(x->t);
}

/* Takes ownership of s (also on failure). */
static int texts_add(Texts *x, char *s, size_t len, RuleText proto) {
        if (x->n == x->alloc) {
                size_t a = x->alloc ? x->alloc * 2 : 8;
                RuleText *t = reallocarray(x->t, a, sizeof(RuleText));
                if (t)
                        x->t = t;
                char **o = t ? reallocarray(x->owned, a, sizeof(char *)) : NULL;
                if (!o) {
                        free(s);
                        return -ENOMEM;
                }
                x->owned = o;
                x->alloc = a;
        }
        proto.text = s;
        proto.len = len;
        x->t[x->n] = proto;
        x->owned[x->n++] = s;
        return 0;
}

static size_t count_letters(const char *s, size_t n) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                k += (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z');
        return k;
}

/* A message with its HTML alternative left out: a keyword in a link ("www.actionlogement.fr",
 * an address) is a reason to read it, though the rules read texts without their links. */
static int links_keyword(Pipeline *p, Texts *x, const char *folded, size_t len) {
        int r;

        if (!x->left_out || x->keyword_in_links)
                return 0;
        r = rules_keywords_in(p->rules, p->matcher, folded, len);
        if (r > 0)
                x->keyword_in_links = true;
        return MIN(r, 0);
}

/* Decoded text of one MIME part → folded, link-free RuleTexts (own words, then quoted ones).
 * *cut is set when the text was cut at max_text. */
static int add_part(Pipeline *p, Texts *x, const MimeText *mt, bool *cut) {
        _cleanup_free_ char *plain = NULL, *folded = NULL, *own = NULL, *quoted = NULL;
        const char *src = mt->text;
        size_t len = mt->len, own_len, quoted_len;
        int r;

        if (mt->html) {
                r = text_html_to_text(src, len, p->limits.max_text, &plain, &len);
                if (r == -ENOMEM)
                        return r;
                *cut = *cut || r == -E2BIG;
                src = plain;
        }
        r = text_fold(src, len, p->limits.max_text, &folded, &len);
        if (r == -ENOMEM)
                return r;
        *cut = *cut || r == -E2BIG;
        r = links_keyword(p, x, folded, len);
        if (r < 0)
                return r;
        len = text_remove_links(folded, len);
        if (x->left_out && !mt->html && !mt->attached)
                x->own_letters += count_letters(folded, len);
        r = text_split_quoted(folded, len, &own, &own_len, &quoted, &quoted_len);
        if (r < 0)
                return r;
        if (r == 0)
                return texts_add(x, TAKE_PTR(folded), len, (RuleText) { .attached = mt->attached });
        if (own_len > 0) {
                r = texts_add(x, TAKE_PTR(own), own_len, (RuleText) { .attached = mt->attached });
                if (r < 0)
                        return r;
        }
        return texts_add(x, TAKE_PTR(quoted), quoted_len, (RuleText) { .attached = mt->attached, .quoted = true });
}

/* Google Takeout keeps the folder in "X-Gmail-Labels: Sent,Opened,...". */
static bool gmail_sent(const char *labels) {
        _cleanup_free_ char *copy = labels ? strdup(labels) : NULL;
        char *save = NULL;

        if (!copy)
                return false;
        for (char *l = strtok_r(copy, ",", &save); l; l = strtok_r(NULL, ",", &save)) {
                l += strspn(l, " \t\"");
                l[strcspn(l, "\"")] = 0;
                if (sender_folder_is_sent(l))
                        return true;
        }
        return false;
}

/* RFC 6154's \Sent when the server says; else the folder's name. */
static bool folder_is_sent(const MessageRef *ref) {
        if (!ref)
                return false;
        if (ref->sent != FOLDER_SENT_UNKNOWN)
                return ref->sent == FOLDER_SENT_YES;
        return sender_folder_is_sent(ref->folder);
}

/* Where re first matches in the sender's own texts (subject included): the text's index, -1
 * for none, or -ENOMEM (< -1). */
static int net_find(Pipeline *p, const RulePattern *re, const Texts *x, size_t *ret_offset) {
        for (size_t i = 0; i < x->n; i++) {
                int r;

                if (x->t[i].quoted || x->t[i].attached)
                        continue;
                r = rule_pattern_find(re, p->matcher, x->t[i].text, x->t[i].len, ret_offset);
                if (r < 0)
                        return r;
                if (r > 0)
                        return (int) i;
        }
        return -1;
}

/* The safety net (see possible_mention): adds a possible code to msg when a trusted sender's
 * mail speaks of a code and no rule read one, or was not read whole (incomplete: a code may be
 * in what was not read). */
static int possible_code(Pipeline *p, const Texts *x, const SenderInfo *sender, bool incomplete,
                         Message *msg, RuleExplainFunc explain, void *userdata) {
        size_t offset = 0;
        int t, r;

        if (!sender_trusted(sender, rules_trusted_domains(p->rules), true))
                return 0;
        msg->read_by_rules = true;
        if (msg->n_codes > 0)
                return 0;
        if (incomplete) {
                r = message_add_code(msg, &(Code) { .kind = CODE_KIND_POSSIBLE, .trusted = true, .rule = (char *) "possible" });
                if (r < 0)
                        return r;
                if (explain)
                        explain(&(RuleVerdict) { .rule = "possible", .kind = CODE_KIND_POSSIBLE,
                                                 .rejected = "a trusted sender's mail was not read whole (see the "
                                                             "warnings) and no rule read a code: kept as a possible code" },
                                userdata);
                return 0;
        }
        t = net_find(p, p->mention, x, &offset);
        if (t < 0)
                return t < -1 ? t : 0;
        r = net_find(p, p->quiet, x, &offset);
        if (r < -1)
                return r;
        if (r >= 0) {
                if (explain)
                        explain(&(RuleVerdict) { .rule = "possible", .kind = CODE_KIND_POSSIBLE, .text_index = (unsigned) t,
                                                 .rejected = "a trusted sender speaks of a code, but this looks like a "
                                                             "newsletter, an offer or a password reset: not kept" },
                                userdata);
                return 0;
        }
        r = message_add_code(msg, &(Code) { .kind = CODE_KIND_POSSIBLE, .trusted = true, .rule = (char *) "possible" });
        if (r < 0)
                return r;
        if (explain)
                explain(&(RuleVerdict) { .rule = "possible", .kind = CODE_KIND_POSSIBLE, .text_index = (unsigned) t,
                                         .offset = offset,
                                         .rejected = "a trusted sender speaks of a code here, but no rule read one: "
                                                     "kept as a possible code" },
                        userdata);
        return 0;
}

/* A sender that claims a trusted domain (its authentication failed, or it is ambiguous), an
 * employer domain, or imitates one: the mail the rules must judge whole, trusted or not. */
static bool claims_trusted(Pipeline *p, const SenderInfo *s) {
        return s->lookalike || s->employer || s->mismatch ||
               (s->domain && sender_domain_in(s->domain, rules_trusted_domains(p->rules)));
}

int pipeline_run(Pipeline *p, const char *raw, size_t size, const MessageRef *ref,
                 Message **ret, char ***warnings, RuleExplainFunc explain, void *userdata) {
        _cleanup_(mime_message_freep) MimeMessage *mm = NULL;
        _cleanup_(message_freep) Message *msg = NULL;
        _cleanup_(sender_info_done) SenderInfo sender = {};
        _cleanup_(texts_done) Texts texts = { .left_out = ref && ref->left_out };
        _cleanup_strv_free_ char **limited = NULL;
        bool cut;
        int r;

        msg = calloc(1, sizeof(Message));
        if (!msg)
                return -ENOMEM;
        if (ref && (r = message_ref_copy(ref, &msg->ref)) < 0)
                return r;

        r = mime_parse(raw, size, &p->limits, &mm);
        if (r < 0)
                return r;
        r = add_warnings(warnings, mm->warnings);
        if (r < 0)
                return r;
        cut = mm->cut;
        r = sender_analyze(mm, rules_trusted_domains(p->rules), p->employer_domains, p->user_addresses,
                           &sender);
        if (r < 0)
                return r;
        if (!sender.self && (folder_is_sent(ref) || gmail_sent(mm->gmail_labels))) {
                sender.self = true;
                sender.why = "a Sent folder: the user's own mail";
        }
        if (p->distrust && !sender.self) {
                sender.ambiguous = true;
                sender.why = p->distrust;
        }
        r = fill_headers(msg, mm, &sender);
        if (r < 0)
                return r;

        if (mm->subject) {
                char *s;
                size_t l;
                r = text_fold(mm->subject, strlen(mm->subject), SUBJECT_MAX, &s, &l);
                if (r == -ENOMEM)
                        return r;
                cut = cut || r == -E2BIG;
                r = links_keyword(p, &texts, s, l);
                if (r < 0) {
                        free(s);
                        return r;
                }
                l = text_remove_links(s, l);
                r = texts_add(&texts, s, l, (RuleText) { .subject = true });
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < mm->n_texts; i++) {
                r = add_part(p, &texts, &mm->texts[i], &cut);
                if (r < 0)
                        return r;
        }
        if (p->text_cb)
                p->text_cb(&sender, texts.t, texts.n, p->text_userdata);

        /* rules_match() warns only of patterns stopped by PCRE2's limits. */
        r = rules_match(p->rules, p->matcher, texts.t, texts.n, &sender, msg, explain, userdata, &limited);
        if (r < 0)
                return r;
        r = add_warnings(warnings, limited);
        if (r < 0)
                return r;
        cut = cut || limited;
        r = possible_code(p, &texts, &sender, cut, msg, explain, userdata);
        if (r < 0)
                return r;
        msg->wants_left_out = texts.left_out && (msg->read_by_rules || texts.keyword_in_links ||
                                                 texts.own_letters < STUB_LETTERS || claims_trusted(p, &sender));
        *ret = TAKE_PTR(msg);
        return cut;
}
