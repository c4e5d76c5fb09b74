/* libetpan does the MIME work; this file bounds what it is given and turns its tree into our
 * flat MimeMessage.
 *
 * Two known libetpan 1.9.4 hazards are guarded here (see VIOLATIONS.md):
 *  - its quoted-printable decoder reads one or two bytes past a body that ends in "=X": every
 *    message is copied into a buffer with zeroed padding before parsing;
 *  - its MIME parser recurses per nesting level and costs quadratic time in the depth: before
 *    parsing we count Content-Type header lines (an upper bound of the entities, hence of the
 *    depth) and cut the message before the one past max_parts. */
#include <ctype.h>
#include <stdarg.h>
#include <libetpan/libetpan.h>
#include <stdio.h>
#include <time.h>

#include "mime.h"
#include "strbuf.h"
#include "strv.h"
#include "text.h"

#define MIME_PADDING 8
#define MAX_EXTRA_HEADERS 64
#define MAX_HEADER_VALUE 4096

static void mail_address_done(MailAddress *a) {
        free(a->name);
        free(a->address);
        *a = (MailAddress) {};
}

MimeMessage *mime_message_free(MimeMessage *m) {
        if (!m)
                return NULL;
        free(m->subject);
        mail_address_done(&m->from);
        mail_address_done(&m->sender);
        for (size_t i = 0; i < m->n_reply_to; i++)
                mail_address_done(&m->reply_to[i]);
        free(m->reply_to);
        free(m->message_id);
        strv_free(m->auth_results);
        strv_free(m->headers_extra);
        for (size_t i = 0; i < m->n_texts; i++)
                free(m->texts[i].text);
        free(m->texts);
        strv_free(m->warnings);
        free(m);
        return NULL;
}

static bool has_encoded_word(const char *s, size_t len) {
        return memmem(s, len, "=?", 2) != NULL;
}

static void replace_line_breaks(char *s) {
        for (; s && *s; s++)
                if (*s == '\r' || *s == '\n' || *s == '\t')
                        *s = ' ';
}

char *mime_decode_header(const char *value, size_t len) {
        char *out = NULL;
        size_t out_len;

        len = MIN(len, (size_t) MAX_HEADER_VALUE);
        if (has_encoded_word(value, len)) {
                _cleanup_free_ char *copy = strndup(value, len), *decoded = NULL;
                size_t idx = 0;

                if (!copy)
                        return NULL;
                if (mailmime_encoded_phrase_parse("utf-8", copy, strlen(copy), &idx, "utf-8",
                                                  &decoded) == MAILIMF_NO_ERROR &&
                    decoded) {
                        /* Unknown charsets come back as raw bytes: make it valid UTF-8. */
                        if (text_to_utf8("utf-8", decoded, strlen(decoded), MAX_HEADER_VALUE, &out,
                                         &out_len) < 0 && !out)
                                return NULL;
                        replace_line_breaks(out);
                        return out;
                }
        }
        /* Raw 8-bit headers: UTF-8 when valid, else the Western default. */
        if (text_to_utf8("us-ascii", value, len, MAX_HEADER_VALUE, &out, &out_len) < 0 && !out)
                return NULL;
        replace_line_breaks(out);
        return out;
}

int mail_address_domain(const char *address, char **ret_domain) {
        const char *at = address ? strrchr(address, '@') : NULL;
        char *d;

        if (!at || at == address || !at[1])
                return -EINVAL;
        d = strdup(at + 1);
        if (!d)
                return -ENOMEM;
        for (char *p = d; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        /* A trailing dot (FQDN form) is the same domain. */
        if (*d && d[strlen(d) - 1] == '.')
                d[strlen(d) - 1] = 0;
        *ret_domain = d;
        return 0;
}

typedef struct Walker {
        MimeMessage *msg;
        const MimeLimits *limits;
        unsigned parts;
        size_t text_used;
} Walker;

static int warn(MimeMessage *m, const char *fmt, ...) _printf_(2, 3);
static int warn(MimeMessage *m, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        if (strv_length(m->warnings) >= 32)
                return 0;
        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return strv_consume(&m->warnings, s);
}

static int set_address(MailAddress *a, const struct mailimf_mailbox *mb) {
        if (!mb)
                return 0;
        if (mb->mb_display_name) {
                a->name = mime_decode_header(mb->mb_display_name, strlen(mb->mb_display_name));
                if (!a->name)
                        return -ENOMEM;
        }
        if (mb->mb_addr_spec) {
                a->address = strdup(mb->mb_addr_spec);
                if (!a->address)
                        return -ENOMEM;
        }
        return 0;
}

/* Fallback for a From: that libetpan could not parse: "<addr>" or the first token with '@'. */
static int set_address_loose(MailAddress *a, const char *value) {
        const char *lt = strrchr(value, '<'), *gt = lt ? strchr(lt, '>') : NULL;

        if (lt && gt && gt > lt + 1) {
                a->address = strndup(lt + 1, (size_t) (gt - lt - 1));
                if (lt > value) {
                        a->name = mime_decode_header(value, (size_t) (lt - value));
                        if (!a->name)
                                return -ENOMEM;
                }
        } else {
                const char *at = strchr(value, '@'), *s, *e;
                if (!at)
                        return 0;
                for (s = at; s > value && !isspace((unsigned char) s[-1]) && s[-1] != '"'; s--)
                        ;
                for (e = at; *e && !isspace((unsigned char) *e) && *e != '"' && *e != '>'; e++)
                        ;
                a->address = strndup(s, (size_t) (e - s));
        }
        return a->address ? 0 : -ENOMEM;
}

static int add_reply_to(MimeMessage *m, const struct mailimf_mailbox *mb) {
        MailAddress *n;

        if (m->n_reply_to >= 8)
                return 0;
        n = reallocarray(m->reply_to, m->n_reply_to + 1, sizeof(MailAddress));
        if (!n)
                return -ENOMEM;
        m->reply_to = n;
        m->reply_to[m->n_reply_to] = (MailAddress) {};
        return set_address(&m->reply_to[m->n_reply_to++], mb);
}

static int set_date(MimeMessage *m, const struct mailimf_date_time *dt) {
        struct tm tm = {
                .tm_year = dt->dt_year - 1900, .tm_mon = dt->dt_month - 1, .tm_mday = dt->dt_day,
                .tm_hour = dt->dt_hour, .tm_min = dt->dt_min, .tm_sec = dt->dt_sec,
        };
        int zone = dt->dt_zone, sign = zone < 0 ? -1 : 1, tz;
        time_t t;

        zone = zone < 0 ? -zone : zone;
        tz = sign * ((zone / 100) * 60 + zone % 100);
        if (dt->dt_year < 1970 || dt->dt_year > 9999 || dt->dt_month < 1 || dt->dt_month > 12 ||
            dt->dt_day < 1 || dt->dt_day > 31 || tz < -24 * 60 || tz > 24 * 60)
                return warn(m, "invalid Date: header, ignoring");
        t = timegm(&tm);
        if (t == (time_t) -1)
                return warn(m, "invalid Date: header, ignoring");
        m->date = (int64_t) t - (int64_t) tz * 60;
        m->date_tz = tz;
        return 0;
}

static int read_fields(MimeMessage *m, const struct mailimf_fields *fields) {
        const char *loose_from = NULL;
        int r = 0;

        if (!fields || !fields->fld_list)
                return 0;
        for (clistiter *it = clist_begin(fields->fld_list); it && r >= 0; it = clist_next(it)) {
                const struct mailimf_field *f = clist_content(it);

                switch (f->fld_type) {
                case MAILIMF_FIELD_FROM:
                        if (!m->from.address && f->fld_data.fld_from &&
                            f->fld_data.fld_from->frm_mb_list &&
                            clist_begin(f->fld_data.fld_from->frm_mb_list->mb_list))
                                r = set_address(&m->from, clist_content(clist_begin(
                                                                  f->fld_data.fld_from->frm_mb_list->mb_list)));
                        break;
                case MAILIMF_FIELD_SENDER:
                        if (!m->sender.address && f->fld_data.fld_sender)
                                r = set_address(&m->sender, f->fld_data.fld_sender->snd_mb);
                        break;
                case MAILIMF_FIELD_REPLY_TO:
                        if (!f->fld_data.fld_reply_to || !f->fld_data.fld_reply_to->rt_addr_list)
                                break;
                        for (clistiter *a = clist_begin(f->fld_data.fld_reply_to->rt_addr_list->ad_list);
                             a && r >= 0; a = clist_next(a)) {
                                const struct mailimf_address *ad = clist_content(a);
                                if (ad->ad_type == MAILIMF_ADDRESS_MAILBOX)
                                        r = add_reply_to(m, ad->ad_data.ad_mailbox);
                                else if (ad->ad_data.ad_group && ad->ad_data.ad_group->grp_mb_list)
                                        for (clistiter *g = clist_begin(ad->ad_data.ad_group->grp_mb_list->mb_list);
                                             g && r >= 0; g = clist_next(g))
                                                r = add_reply_to(m, clist_content(g));
                        }
                        break;
                case MAILIMF_FIELD_SUBJECT:
                        if (!m->subject && f->fld_data.fld_subject && f->fld_data.fld_subject->sbj_value) {
                                const char *v = f->fld_data.fld_subject->sbj_value;
                                m->subject = mime_decode_header(v, strlen(v));
                                if (!m->subject)
                                        r = -ENOMEM;
                        }
                        break;
                case MAILIMF_FIELD_MESSAGE_ID:
                        if (!m->message_id && f->fld_data.fld_message_id &&
                            f->fld_data.fld_message_id->mid_value &&
                            asprintf(&m->message_id, "<%.998s>", f->fld_data.fld_message_id->mid_value) < 0) {
                                m->message_id = NULL;
                                r = -ENOMEM;
                        }
                        break;
                case MAILIMF_FIELD_ORIG_DATE:
                        if (m->date == 0 && f->fld_data.fld_orig_date && f->fld_data.fld_orig_date->dt_date_time)
                                r = set_date(m, f->fld_data.fld_orig_date->dt_date_time);
                        break;
                case MAILIMF_FIELD_OPTIONAL_FIELD: {
                        const struct mailimf_optional_field *o = f->fld_data.fld_optional_field;
                        if (!o || !o->fld_name || !o->fld_value)
                                break;
                        if (strcaseeq(o->fld_name, "Authentication-Results")) {
                                if (strv_length(m->auth_results) < MAX_EXTRA_HEADERS)
                                        r = strv_consume(&m->auth_results,
                                                         strndup(o->fld_value, MAX_HEADER_VALUE));
                        } else if (strcaseeq(o->fld_name, "From")) {
                                /* libetpan keeps an unparsable From: as an optional field. */
                                loose_from = loose_from ?: o->fld_value;
                        } else if (strv_length(m->headers_extra) < MAX_EXTRA_HEADERS)
                                r = strv_extendf(&m->headers_extra, "%.100s: %.4000s", o->fld_name,
                                                 o->fld_value);
                        break;
                }
                default:
                        break;
                }
        }
        if (r >= 0 && !m->from.address && loose_from) {
                mail_address_done(&m->from);
                r = set_address_loose(&m->from, loose_from);
                if (r >= 0)
                        r = warn(m, "malformed From: header, read loosely");
        }
        return r;
}

static int add_text(Walker *w, const char *data, size_t len, const char *charset, bool html,
                    unsigned attached, unsigned part_no) {
        MimeMessage *m = w->msg;
        size_t budget = w->limits->max_text > w->text_used ? w->limits->max_text - w->text_used : 0;
        char *text = NULL;
        size_t text_len = 0;
        MimeText *n;
        int r;

        if (budget == 0)
                return warn(m, "part %u: text limit of %zu bytes reached, skipping", part_no,
                            w->limits->max_text);
        r = text_to_utf8(charset, data, len, budget, &text, &text_len);
        if (r == -ENOMEM)
                return r;
        if (r == 1)
                (void) warn(m, "part %u: unknown charset '%.40s', read as UTF-8/Windows-1252",
                            part_no, charset);
        if (r == -E2BIG)
                (void) warn(m, "part %u: text limit of %zu bytes reached, truncated", part_no,
                            w->limits->max_text);
        n = reallocarray(m->texts, m->n_texts + 1, sizeof(MimeText));
        if (!n) {
                free(text);
                return -ENOMEM;
        }
        m->texts = n;
        m->texts[m->n_texts++] = (MimeText) { .text = text, .len = text_len, .html = html,
                                             .attached = attached };
        w->text_used += text_len;
        return 0;
}

static bool is_attachment(const struct mailmime *mime) {
        if (!mime->mm_mime_fields)
                return false;
        for (clistiter *it = clist_begin(mime->mm_mime_fields->fld_list); it; it = clist_next(it)) {
                const struct mailmime_field *f = clist_content(it);
                if (f->fld_type == MAILMIME_FIELD_DISPOSITION && f->fld_data.fld_disposition &&
                    f->fld_data.fld_disposition->dsp_type)
                        return f->fld_data.fld_disposition->dsp_type->dsp_type ==
                               MAILMIME_DISPOSITION_TYPE_ATTACHMENT;
        }
        /* No disposition: a named text part is an attached file, not the message text. */
        return mime->mm_content_type && mailmime_content_param_get(mime->mm_content_type, "name");
}

static int walk(Walker *w, const struct mailmime *mime, unsigned attached, unsigned depth);

static int walk_single(Walker *w, const struct mailmime *mime, unsigned attached) {
        const struct mailmime_content *ct = mime->mm_content_type;
        const struct mailmime_data *d = mime->mm_data.mm_single;
        bool html = false;
        char *decoded = NULL;
        size_t idx = 0, decoded_len = 0;
        int r, encoding;

        if (ct && ct->ct_type) {
                if (ct->ct_type->tp_type != MAILMIME_TYPE_DISCRETE_TYPE ||
                    !ct->ct_type->tp_data.tp_discrete_type ||
                    ct->ct_type->tp_data.tp_discrete_type->dt_type != MAILMIME_DISCRETE_TYPE_TEXT)
                        return 0;
                if (ct->ct_subtype && strcaseeq(ct->ct_subtype, "html"))
                        html = true;
                else if (ct->ct_subtype && !strcaseeq(ct->ct_subtype, "plain"))
                        return 0; /* calendar, csv, rtf...: not message text */
        }
        if (!d || d->dt_type != MAILMIME_DATA_TEXT || !d->dt_data.dt_text.dt_data)
                return 0;
        if (is_attachment(mime))
                return 0;

        encoding = mime->mm_mime_fields ? mailmime_transfer_encoding_get(mime->mm_mime_fields)
                                        : MAILMIME_MECHANISM_8BIT;
        r = mailmime_part_parse(d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length, &idx,
                                encoding, &decoded, &decoded_len);
        if (r != MAILIMF_NO_ERROR)
                return warn(w->msg, "part %u: cannot decode transfer encoding, skipping", w->parts);

        r = add_text(w, decoded, decoded_len,
                     ct ? mailmime_content_charset_get((struct mailmime_content *) ct) : "us-ascii",
                     html, attached, w->parts);
        mailmime_decoded_part_free(decoded);
        return r;
}

/* The headers of an attached message, as a forward shows them, so that rules can see who
 * originally sent it. Always read as untrusted (attached > 0). */
static int add_attached_headers(Walker *w, const struct mailimf_fields *fields, unsigned attached) {
        _cleanup_(mime_message_freep) MimeMessage *h = calloc(1, sizeof(MimeMessage));
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(8192);
        int r;

        if (!h)
                return -ENOMEM;
        r = read_fields(h, fields);
        if (r < 0)
                return r;
        if (h->from.address)
                (void) strbuf_printf(&b, "From: %s <%s>\n", strempty(h->from.name), h->from.address);
        if (h->subject)
                (void) strbuf_printf(&b, "Subject: %s\n", h->subject);
        if (b.len == 0)
                return 0;
        return add_text(w, b.data, b.len, "utf-8", false, attached, w->parts);
}

static int walk(Walker *w, const struct mailmime *mime, unsigned attached, unsigned depth) {
        int r = 0;

        if (!mime)
                return 0;
        if (++w->parts > w->limits->max_parts)
                return 0; /* already warned by the pre-scan cut */

        switch (mime->mm_type) {
        case MAILMIME_SINGLE:
                return walk_single(w, mime, attached);
        case MAILMIME_MULTIPLE:
                if (!mime->mm_data.mm_multipart.mm_mp_list)
                        return 0;
                for (clistiter *it = clist_begin(mime->mm_data.mm_multipart.mm_mp_list); it && r >= 0;
                     it = clist_next(it))
                        r = walk(w, clist_content(it), attached, depth + 1);
                return r;
        case MAILMIME_MESSAGE:
                if (depth > 0) {
                        /* message/rfc822 inside the message: a forward as attachment. */
                        attached++;
                        r = add_attached_headers(w, mime->mm_data.mm_message.mm_fields, attached);
                        if (r < 0)
                                return r;
                }
                return walk(w, mime->mm_data.mm_message.mm_msg_mime, attached, depth + 1);
        default:
                return 0;
        }
}

/* Length of the prefix of raw that holds at most max_parts Content-Type header lines. */
static size_t bounded_length(const char *raw, size_t size, unsigned max_parts, bool *ret_cut) {
        unsigned count = 0;

        *ret_cut = false;
        for (size_t i = 0; i < size;) {
                if (size - i >= 13 && strncasecmp(raw + i, "content-type:", 13) == 0 &&
                    ++count > max_parts) {
                        *ret_cut = true;
                        return i;
                }
                const char *nl = memchr(raw + i, '\n', size - i);
                if (!nl)
                        break;
                i = (size_t) (nl - raw) + 1;
        }
        return size;
}

int mime_parse(const char *raw, size_t size, const MimeLimits *limits, MimeMessage **ret) {
        _cleanup_(mime_message_freep) MimeMessage *m = NULL;
        _cleanup_free_ char *buf = NULL;
        struct mailmime *mime = NULL;
        MimeLimits lim = limits ? *limits : MIME_LIMITS_DEFAULT;
        Walker w = { .limits = &lim };
        size_t n, idx = 0;
        bool cut;
        int r;

        m = calloc(1, sizeof(MimeMessage));
        if (!m)
                return -ENOMEM;
        w.msg = m;

        n = MIN(size, lim.max_message);
        if (n < size && (r = warn(m, "message larger than %zu bytes, reading only the start",
                                  lim.max_message)) < 0)
                return r;
        n = bounded_length(raw, n, lim.max_parts, &cut);
        if (cut && (r = warn(m, "more than %u MIME parts, ignoring the rest", lim.max_parts)) < 0)
                return r;

        /* Zeroed padding: libetpan's QP decoder reads up to two bytes past "=X" at the end. */
        buf = malloc(n + MIME_PADDING);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, raw, n);
        memset(buf + n, 0, MIME_PADDING);

        r = mailmime_parse(buf, n, &idx, &mime);
        if (r == MAILIMF_ERROR_MEMORY)
                return -ENOMEM;
        if (r != MAILIMF_NO_ERROR || !mime) {
                /* Not MIME at all: headers if any, then the rest as plain text. */
                struct mailimf_fields *fields = NULL;
                size_t hidx = 0;

                if (mailimf_envelope_and_optional_fields_parse(buf, n, &hidx, &fields) == MAILIMF_NO_ERROR) {
                        r = read_fields(m, fields);
                        mailimf_fields_free(fields);
                        if (r < 0)
                                return r;
                }
                r = warn(m, "not a valid MIME message, read as plain text");
                if (r >= 0)
                        r = add_text(&w, buf + MIN(hidx, n), n - MIN(hidx, n), "us-ascii", false, 0, 1);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(m);
                return 0;
        }

        if (mime->mm_type == MAILMIME_MESSAGE)
                r = read_fields(m, mime->mm_data.mm_message.mm_fields);
        if (r >= 0)
                r = walk(&w, mime, 0, 0);
        mailmime_free(mime);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}
