/* Each MIME text part becomes one or two RuleTexts: HTML is turned into text, everything is
 * folded (text_fold()), links and addresses are blanked, and quoted or forwarded lines are
 * split off into a text of their own that can never yield a trusted code. The subject is one
 * more text. */
#include <stdio.h>

#include "pipeline.h"
#include "sender.h"
#include "strv.h"
#include "text.h"

#define SUBJECT_MAX 4096

struct Pipeline {
        const Rules *rules;
        char *const *employer_domains;
        char *const *user_addresses;
        MimeLimits limits;
        RuleMatcher *matcher;
        PipelineTextFunc text_cb;
        void *text_userdata;
        const char *distrust;
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
        *ret = TAKE_PTR(p);
        return 0;
}

Pipeline *pipeline_free(Pipeline *p) {
        if (!p)
                return NULL;
        rule_matcher_free(p->matcher);
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

/* Decoded text of one MIME part → folded, link-free RuleTexts (own words, then quoted ones). */
static int add_part(Pipeline *p, Texts *x, const MimeText *mt) {
        _cleanup_free_ char *plain = NULL, *folded = NULL, *own = NULL, *quoted = NULL;
        const char *src = mt->text;
        size_t len = mt->len, own_len, quoted_len;
        int r;

        if (mt->html) {
                r = text_html_to_text(src, len, p->limits.max_text, &plain, &len);
                if (r == -ENOMEM)
                        return r;
                src = plain;
        }
        r = text_fold(src, len, p->limits.max_text, &folded, &len);
        if (r == -ENOMEM)
                return r;
        len = text_remove_links(folded, len);
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

int pipeline_run(Pipeline *p, const char *raw, size_t size, const MessageRef *ref,
                 Message **ret, char ***warnings, RuleExplainFunc explain, void *userdata) {
        _cleanup_(mime_message_freep) MimeMessage *mm = NULL;
        _cleanup_(message_freep) Message *msg = NULL;
        _cleanup_(sender_info_done) SenderInfo sender = {};
        _cleanup_(texts_done) Texts texts = {};
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
        r = sender_analyze(mm, rules_trusted_domains(p->rules), p->employer_domains, p->user_addresses,
                           &sender);
        if (r < 0)
                return r;
        if (!sender.self && ((ref && sender_folder_is_sent(ref->folder)) || gmail_sent(mm->gmail_labels))) {
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
                l = text_remove_links(s, l);
                r = texts_add(&texts, s, l, (RuleText) { .subject = true });
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < mm->n_texts; i++) {
                r = add_part(p, &texts, &mm->texts[i]);
                if (r < 0)
                        return r;
        }
        if (p->text_cb)
                p->text_cb(&sender, texts.t, texts.n, p->text_userdata);

        r = rules_match(p->rules, p->matcher, texts.t, texts.n, &sender, msg, explain, userdata, warnings);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(msg);
        return 0;
}
