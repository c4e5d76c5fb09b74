#include <stdio.h>

#include "pipeline.h"
#include "sender.h"
#include "strv.h"
#include "text.h"

struct Pipeline {
        const Rules *rules;
        char *const *employer_domains;
        MimeLimits limits;
        RuleMatcher *matcher;
        PipelineTextFunc text_cb;
        void *text_userdata;
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
                if (asprintf(&msg->sender, "%.*s@%s", (int) (at - s->address), s->address, s->domain) < 0) {
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

int pipeline_run(Pipeline *p, const char *raw, size_t size, const MessageRef *ref,
                 Message **ret, char ***warnings, RuleExplainFunc explain, void *userdata) {
        _cleanup_(mime_message_freep) MimeMessage *mm = NULL;
        _cleanup_(message_freep) Message *msg = NULL;
        _cleanup_(sender_info_done) SenderInfo sender = {};
        RuleText *texts = NULL;
        char **owned = NULL;
        size_t n = 0;
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
        r = sender_analyze(mm, rules_trusted_domains(p->rules), p->employer_domains, &sender);
        if (r < 0)
                return r;
        r = fill_headers(msg, mm, &sender);
        if (r < 0)
                return r;

        texts = calloc(mm->n_texts + 1, sizeof(RuleText));
        owned = calloc(mm->n_texts + 2, sizeof(char *));
        if (!texts || !owned) {
                r = -ENOMEM;
                goto finish;
        }
        if (mm->subject) {
                size_t l;
                r = text_fold(mm->subject, strlen(mm->subject), 4096, &owned[n], &l);
                if (r == -ENOMEM)
                        goto finish;
                texts[n] = (RuleText) { .text = owned[n], .len = l, .subject = true };
                n++;
        }
        for (size_t i = 0; i < mm->n_texts; i++) {
                _cleanup_free_ char *plain = NULL;
                const char *src = mm->texts[i].text;
                size_t len = mm->texts[i].len, l;

                if (mm->texts[i].html) {
                        r = text_html_to_text(src, len, p->limits.max_text, &plain, &len);
                        if (r == -ENOMEM)
                                goto finish;
                        src = plain;
                }
                r = text_fold(src, len, p->limits.max_text, &owned[n], &l);
                if (r == -ENOMEM)
                        goto finish;
                texts[n] = (RuleText) { .text = owned[n], .len = l, .attached = mm->texts[i].attached };
                n++;
        }
        if (p->text_cb)
                for (size_t i = 0; i < n; i++)
                        p->text_cb((unsigned) i, &texts[i], p->text_userdata);

        r = rules_match(p->rules, p->matcher, texts, n, &sender, msg, explain, userdata, warnings);
        if (r >= 0) {
                r = 0;
                *ret = TAKE_PTR(msg);
        }
finish:
        free(texts);
        strv_free(owned);
        return r;
}
