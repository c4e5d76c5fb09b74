/* The shared value types of message.h: the code kinds' one string table (published names and
 * labels), the life of a Code, a MessageRef and a Message (copy, add a code, free), a code's
 * canonical value, and the RFC 3339 dates codes are shown with. */
#include <ctype.h>
#include <stdio.h>
#include <time.h>

#include "i18n.h"
#include "message.h"
#include "strv.h"

static const struct {
        const char *string; /* stored and published: never change one */
        const char *label;
} code_kind_table[_CODE_KIND_MAX] = {
        [CODE_KIND_SPECIFIC] = { "specific", N_("specific code") },
        [CODE_KIND_COMPANY] = { "company", N_("company code") },
        [CODE_KIND_ACCESS] = { "access", N_("access code") },
        [CODE_KIND_OTP] = { "otp", N_("login code") },
        [CODE_KIND_REQUEST] = { "request", N_("request number") },
        [CODE_KIND_FILE] = { "file", N_("file number") },
        [CODE_KIND_POSSIBLE] = { "possible", N_("possible code") },
};

DEFINE_STRING_TABLE_LOOKUP(code_kind, CodeKind, code_kind_table);

const char *code_kind_to_words(CodeKind k) {
        return k >= 0 && k < _CODE_KIND_MAX ? _(code_kind_table[k].label) : _("code");
}

void code_done(Code *c) {
        free(c->value);
        free(c->display);
        free(c->rule);
        *c = (Code) {};
}

void message_ref_done(MessageRef *r) {
        free(r->account);
        free(r->folder);
        free(r->source);
        strv_free(r->labels);
        *r = (MessageRef) {};
}

static int strdup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int message_ref_copy(const MessageRef *from, MessageRef *to) {
        MessageRef c = { .uidvalidity = from->uidvalidity, .uid = from->uid, .sent = from->sent,
                         .left_out = from->left_out };

        if (strdup_opt(from->account, &c.account) < 0 || strdup_opt(from->folder, &c.folder) < 0 ||
            strdup_opt(from->source, &c.source) < 0 || (from->labels && !(c.labels = strv_copy(from->labels)))) {
                message_ref_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

Message *message_free(Message *m) {
        if (!m)
                return NULL;
        message_ref_done(&m->ref);
        free(m->message_id);
        free(m->sender);
        free(m->sender_name);
        free(m->subject);
        for (size_t i = 0; i < m->n_codes; i++)
                code_done(&m->codes[i]);
        free(m->codes);
        free(m);
        return NULL;
}

int message_add_code(Message *m, const Code *code) {
        Code c = { .kind = code->kind, .trusted = code->trusted };
        Code *n;

        for (size_t i = 0; i < m->n_codes; i++)
                if (m->codes[i].kind == code->kind && code_value_equal(m->codes[i].value, code->value)) {
                        /* The same code seen twice stays trusted if any sighting was. */
                        m->codes[i].trusted = m->codes[i].trusted || code->trusted;
                        return 0;
                }

        if (strdup_opt(code->value, &c.value) < 0 || strdup_opt(code->display, &c.display) < 0 ||
            strdup_opt(code->rule, &c.rule) < 0)
                goto oom;
        n = reallocarray(m->codes, m->n_codes + 1, sizeof(Code));
        if (!n)
                goto oom;
        m->codes = n;
        m->codes[m->n_codes++] = c;
        return 1;
oom:
        code_done(&c);
        return -ENOMEM;
}

char *code_canonicalize(const char *display) {
        char *c = malloc(strlen(display) + 1), *o = c;
        const unsigned char *p = (const unsigned char *) display;

        if (!c)
                return NULL;
        while (*p) {
                if (strchr(" \t\n-.", *p))
                        p++;
                else if (p[0] == 0xC2 && p[1] == 0xA0) /* NBSP */
                        p += 2;
                else if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xAF || (p[2] >= 0x80 && p[2] <= 0x8A)))
                        p += 3; /* NNBSP, thin and other fixed-width spaces */
                else
                        *o++ = (char) *p++;
        }
        *o = 0;
        return c;
}

bool code_value_equal(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcaseeq(a, b);
}

const char *format_rfc3339(int64_t t, int tz_minutes, char *buf, size_t size) {
        time_t local = (time_t) (t + (int64_t) tz_minutes * 60);
        struct tm tm;
        int off = tz_minutes < 0 ? -tz_minutes : tz_minutes;

        if (!gmtime_r(&local, &tm)) {
                (void) snprintf(buf, size, "1970-01-01T00:00:00Z");
                return buf;
        }
        if (tz_minutes == 0)
                (void) strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
        else {
                char base[32];
                (void) strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
                (void) snprintf(buf, size, "%s%c%02d:%02d", base, tz_minutes < 0 ? '-' : '+',
                                off / 60, off % 60);
        }
        return buf;
}
