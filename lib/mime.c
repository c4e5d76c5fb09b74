/* libetpan does the MIME work; this file bounds what it is given and turns its tree into our
 * flat MimeMessage.
 *
 * Two known libetpan 1.9.4 hazards are guarded here (see VIOLATIONS.md):
 *  - its quoted-printable decoder reads one or two bytes past a body that ends in "=X": every
 *    buffer handed to it is a copy with zeroed padding;
 *  - its MIME parser recurses once per nesting level and costs time quadratic in the depth
 *    (and overflows the stack past a few thousand levels): before parsing we count the
 *    Content-Type header lines, an upper bound of the entities and hence of the depth, and cut
 *    the message before the one past max_parts.
 * A message/rfc822 part sent base64 or quoted-printable (RFC 2046 forbids it, clients do it)
 * is decoded and parsed again, within the same part budget. */
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
#define MAX_AUTH_RESULTS 16
#define MAX_HEADER_VALUE 4096
#define MAX_REPARSE 8 /* encoded message/rfc822 inside encoded message/rfc822... */
#define MAX_WARNINGS 32

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
        free(m->from_raw);
        free(m->sender_raw);
        free(m->gmail_labels);
        for (size_t i = 0; i < m->n_texts; i++)
                free(m->texts[i].text);
        free(m->texts);
        strv_free(m->warnings);
        free(m);
        return NULL;
}

/* RFC 2047 is decoded here rather than by libetpan's mailmime_encoded_phrase_parse(): that one
 * opens an iconv descriptor per word (a third of the time spent on a typical mailbox), turns
 * bad bytes into '?', and cannot join a character split between two words. */

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) (c | 0x20);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the text of one encoded word (B or Q) and appends the bytes to b. */
static int encoded_word_decode(char encoding, const char *t, size_t n, StrBuf *b) {
        int r = 0;

        if (encoding == 'b') {
                unsigned acc = 0, bits = 0;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        int v = b64_value(t[i]);
                        if (v < 0)
                                continue; /* padding, stray characters */
                        acc = (acc << 6) | (unsigned) v;
                        bits += 6;
                        if (bits >= 8) {
                                bits -= 8;
                                r = strbuf_putc(b, (char) ((acc >> bits) & 0xFF));
                        }
                }
                return r;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                int h, l;
                if (t[i] == '_')
                        r = strbuf_putc(b, ' ');
                else if (t[i] == '=' && i + 2 < n && (h = hex_value(t[i + 1])) >= 0 && (l = hex_value(t[i + 2])) >= 0) {
                        r = strbuf_putc(b, (char) (h << 4 | l));
                        i += 2;
                } else
                        r = strbuf_putc(b, t[i]);
        }
        return r;
}

/* Parses "=?charset[*lang]?B|Q?text?=" at s. Returns its length, or 0 when it is not one. */
static size_t encoded_word_parse(const char *s, size_t n, char *charset, size_t charset_size, char *ret_encoding,
                                 const char **ret_text, size_t *ret_text_len) {
        size_t i = 2, c = 0, t;

        if (n < 8 || s[0] != '=' || s[1] != '?')
                return 0;
        while (i < n && s[i] != '?' && !isspace((unsigned char) s[i])) {
                if (c + 1 >= charset_size)
                        return 0;
                charset[c++] = s[i++];
        }
        charset[c] = 0;
        if (c == 0 || i + 3 > n || s[i] != '?' || s[i + 2] != '?')
                return 0;
        char *star = strchr(charset, '*'); /* RFC 2231 language */
        if (star)
                *star = 0;
        *ret_encoding = (char) (s[i + 1] | 0x20);
        if (*ret_encoding != 'b' && *ret_encoding != 'q')
                return 0;
        t = i + 3;
        for (i = t; i + 1 < n; i++) {
                if (s[i] == '?' && s[i + 1] == '=') {
                        *ret_text = s + t;
                        *ret_text_len = i - t;
                        return i + 2;
                }
                if (s[i] == '\r' || s[i] == '\n')
                        return 0;
        }
        return 0;
}

/* Converts the bytes gathered for one charset and appends them to out. */
static int flush_words(StrBuf *raw, const char *charset, StrBuf *out) {
        _cleanup_free_ char *u = NULL;
        size_t ul;
        int r;

        if (raw->len == 0)
                return 0;
        r = text_to_utf8(charset, raw->data, raw->len, MAX_HEADER_VALUE, &u, &ul);
        raw->len = 0;
        if (r == -ENOMEM)
                return r;
        r = strbuf_append(out, u, ul);
        return r == -ENOMEM ? r : 0;
}

char *mime_decode_header(const char *value, size_t len) {
        _cleanup_strbuf_ StrBuf out = STRBUF_INIT(MAX_HEADER_VALUE), raw = STRBUF_INIT(MAX_HEADER_VALUE);
        char charset[48] = "", prev_charset[48] = "";
        bool after_word = false;
        int r = 0;

        len = MIN(len, (size_t) MAX_HEADER_VALUE);
        for (size_t i = 0; i < len && r >= 0;) {
                const char *text;
                size_t tl, wl = 0, ws = 0;
                char enc;

                /* Blanks between two encoded words are not text (RFC 2047 §6.2). */
                while (i + ws < len && isspace((unsigned char) value[i + ws]))
                        ws++;
                if (i + ws < len && value[i + ws] == '=')
                        wl = encoded_word_parse(value + i + ws, len - i - ws, charset, sizeof charset, &enc, &text,
                                                &tl);
                if (wl > 0) {
                        /* Bytes of adjacent words in one charset are converted together: a
                         * character may be split between them. */
                        if (!streq(charset, prev_charset))
                                r = flush_words(&raw, prev_charset, &out);
                        if (r >= 0 && ws > 0 && !after_word)
                                r = strbuf_append(&out, " ", 1);
                        if (r >= 0)
                                r = encoded_word_decode(enc, text, tl, &raw);
                        memcpy(prev_charset, charset, sizeof charset);
                        after_word = true;
                        i += ws + wl;
                        continue;
                }
                /* Plain text (raw 8-bit tolerated: UTF-8 when valid, else Windows-1252). */
                r = flush_words(&raw, prev_charset, &out);
                after_word = false;
                size_t e = i + MAX(ws, (size_t) 1);
                while (e < len && !(value[e] == '=' && e + 1 < len && value[e + 1] == '?') &&
                       !isspace((unsigned char) value[e]))
                        e++;
                if (r >= 0) {
                        _cleanup_free_ char *u = NULL;
                        size_t ul;
                        r = text_to_utf8("us-ascii", value + i, e - i, MAX_HEADER_VALUE, &u, &ul);
                        if (r != -ENOMEM)
                                r = strbuf_append(&out, u, ul);
                }
                i = e;
        }
        if (r >= 0)
                r = flush_words(&raw, prev_charset, &out);
        if (r == -ENOMEM || strbuf_ensure(&out) < 0)
                return NULL;
        /* Unfold (RFC 5322 §2.2.3: a line break before a blank is not text); tabs are blanks. */
        size_t k = 0;
        for (size_t i = 0; i < out.len; i++)
                if (out.data[i] != '\r' && out.data[i] != '\n')
                        out.data[k++] = out.data[i] == '\t' ? ' ' : out.data[i];
        out.len = k;
        out.data[k] = 0;
        return strbuf_take(&out, NULL);
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
        unsigned parts;    /* entities seen, nested parses included */
        unsigned reparses; /* encoded message/rfc822 parts parsed again */
        size_t text_used;
} Walker;

static int warn(MimeMessage *m, const char *fmt, ...) _printf_(2, 3);
static int warn(MimeMessage *m, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        if (m->n_warnings >= MAX_WARNINGS)
                return 0;
        m->n_warnings++;
        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return strv_consume(&m->warnings, s);
}

/* An addr-spec as valid UTF-8 (raw 8-bit bytes are read as Windows-1252): rules match it, the
 * store and JSON keep it. Returns NULL on OOM. */
static char *address_copy(const char *s, size_t n) {
        char *out = NULL;
        size_t l;

        if (text_to_utf8("us-ascii", s, MIN(n, (size_t) MAX_HEADER_VALUE), MAX_HEADER_VALUE, &out, &l) == -ENOMEM)
                return NULL;
        return out;
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
                a->address = address_copy(mb->mb_addr_spec, strlen(mb->mb_addr_spec));
                if (!a->address)
                        return -ENOMEM;
        }
        return 0;
}

/* Fallback for a From: that libetpan could not parse: "<addr>" or the first token with '@'. */
static int set_address_loose(MailAddress *a, const char *value) {
        const char *lt = strrchr(value, '<'), *gt = lt ? strchr(lt, '>') : NULL;

        if (lt && gt && gt > lt + 1) {
                a->address = address_copy(lt + 1, (size_t) (gt - lt - 1));
                if (lt > value) {
                        a->name = mime_decode_header(value, (size_t) (lt - value));
                        if (!a->name)
                                return -ENOMEM;
                }
        } else {
                const char *at = strchr(value, '@'), *s, *e;
                if (!at) {
                        a->name = mime_decode_header(value, strlen(value));
                        return a->name ? 0 : -ENOMEM;
                }
                for (s = at; s > value && !isspace((unsigned char) s[-1]) && s[-1] != '"'; s--)
                        ;
                for (e = at; *e && !isspace((unsigned char) *e) && *e != '"' && *e != '>'; e++)
                        ;
                a->address = address_copy(s, (size_t) (e - s));
        }
        if (!a->address) {
                /* No address at all: keep what it claims to be, to judge it. */
                a->name = mime_decode_header(value, strlen(value));
                return a->name ? 0 : -ENOMEM;
        }
        return 0;
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

static char *message_id_copy(const char *id) {
        _cleanup_free_ char *utf8 = address_copy(id, MIN(strlen(id), (size_t) 998));
        char *s = NULL;

        if (!utf8 || asprintf(&s, "<%s>", utf8) < 0)
                return NULL;
        return s;
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
                                else if (strlen(v) > MAX_HEADER_VALUE) {
                                        m->cut = true;
                                        r = warn(m, "Subject: longer than %d bytes, truncated", MAX_HEADER_VALUE);
                                }
                        }
                        break;
                case MAILIMF_FIELD_MESSAGE_ID:
                        if (!m->message_id && f->fld_data.fld_message_id &&
                            f->fld_data.fld_message_id->mid_value &&
                            !(m->message_id = message_id_copy(f->fld_data.fld_message_id->mid_value))) {
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
                        if (strcaseeq(o->fld_name, "From")) {
                                /* libetpan keeps an unparsable From: as an optional field. */
                                loose_from = loose_from ?: o->fld_value;
                        } else if (!m->gmail_labels && strcaseeq(o->fld_name, "X-Gmail-Labels")) {
                                m->gmail_labels = mime_decode_header(o->fld_value, strlen(o->fld_value));
                                if (!m->gmail_labels)
                                        r = -ENOMEM;
                        }
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

        if (budget == 0) {
                m->cut = true;
                return warn(m, "part %u: text limit of %zu bytes reached, skipping", part_no,
                            w->limits->max_text);
        }
        r = text_to_utf8(charset, data, len, budget, &text, &text_len);
        if (r == -ENOMEM)
                return r;
        if (r == 1 && warn(m, "part %u: unknown charset '%.40s', read as UTF-8 or Windows-1252", part_no,
                           charset) < 0)
                r = -ENOMEM;
        if (r == -E2BIG)
                m->cut = true;
        if (r == -E2BIG && warn(m, "part %u: text limit of %zu bytes reached, truncated", part_no,
                                w->limits->max_text) < 0)
                r = -ENOMEM;
        if (r == -ENOMEM) {
                free(text);
                return r;
        }
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

static int part_encoding(const struct mailmime *mime) {
        return mime->mm_mime_fields ? mailmime_transfer_encoding_get(mime->mm_mime_fields)
                                    : MAILMIME_MECHANISM_8BIT;
}

static bool is_attachment(const struct mailmime *mime) {
        if (mime->mm_mime_fields)
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

/* Undoes base64 or quoted-printable; the result is the caller's (mailmime_decoded_part_free). */
static int decode_body(Walker *w, const struct mailmime_data *d, int encoding, char **ret, size_t *ret_len) {
        _cleanup_free_ char *padded = NULL;
        size_t idx = 0, len = d->dt_data.dt_text.dt_length;
        int r;

        /* libetpan's QP decoder reads up to two bytes past "=X" at the very end: give it a
         * zero-padded copy when that can happen (the body may end the caller's buffer). */
        if (encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
                padded = malloc(len + MIME_PADDING);
                if (!padded)
                        return -ENOMEM;
                memcpy(padded, d->dt_data.dt_text.dt_data, len);
                memset(padded + len, 0, MIME_PADDING);
        }
        r = mailmime_part_parse(padded ?: d->dt_data.dt_text.dt_data, len, &idx, encoding, ret, ret_len);
        if (r == MAILIMF_ERROR_MEMORY)
                return -ENOMEM;
        if (r != MAILIMF_NO_ERROR)
                return warn(w->msg, "part %u: cannot decode its transfer encoding, skipping", w->parts) < 0
                               ? -ENOMEM
                               : -EBADMSG;
        return 0;
}

static int walk(Walker *w, const struct mailmime *mime, unsigned attached, unsigned depth);
static int parse_buffer(Walker *w, const char *raw, size_t size, unsigned attached);

static bool is_message_type(const struct mailmime_content *ct) {
        return ct && ct->ct_type && ct->ct_type->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE &&
               ct->ct_type->tp_data.tp_composite_type &&
               ct->ct_type->tp_data.tp_composite_type->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE &&
               ct->ct_subtype && (strcaseeq(ct->ct_subtype, "rfc822") || strcaseeq(ct->ct_subtype, "global"));
}

/* A message/rfc822 part sent base64 or quoted-printable: libetpan leaves it a single part.
 * Decode it and parse it as the attached message it is. */
static int walk_encoded_message(Walker *w, const struct mailmime *mime, unsigned attached) {
        const struct mailmime_data *body = mime->mm_data.mm_single;
        int encoding = part_encoding(mime);
        char *decoded = NULL;
        size_t decoded_len;
        int r;

        if (!body || body->dt_type != MAILMIME_DATA_TEXT || !body->dt_data.dt_text.dt_data)
                return 0;
        if (encoding != MAILMIME_MECHANISM_BASE64 && encoding != MAILMIME_MECHANISM_QUOTED_PRINTABLE)
                return 0;
        if (w->reparses >= MAX_REPARSE)
                return warn(w->msg, "part %u: encoded messages nested too deep, skipping", w->parts);
        w->reparses++;
        r = decode_body(w, body, encoding, &decoded, &decoded_len);
        if (r == -EBADMSG)
                return 0;
        if (r < 0)
                return r;
        r = warn(w->msg, "part %u: message/rfc822 with a %s transfer encoding, decoded", w->parts,
                 encoding == MAILMIME_MECHANISM_BASE64 ? "base64" : "quoted-printable");
        if (r >= 0)
                r = parse_buffer(w, decoded, decoded_len, attached + 1);
        mailmime_decoded_part_free(decoded);
        return r;
}

static int walk_single(Walker *w, const struct mailmime *mime, unsigned attached) {
        const struct mailmime_content *ct = mime->mm_content_type;
        const struct mailmime_data *d = mime->mm_data.mm_single;
        bool html = false;
        char *decoded = NULL;
        size_t decoded_len = 0;
        int r;

        if (is_message_type(ct))
                return walk_encoded_message(w, mime, attached);
        if (ct && ct->ct_type) {
                if (ct->ct_type->tp_type != MAILMIME_TYPE_DISCRETE_TYPE ||
                    !ct->ct_type->tp_data.tp_discrete_type ||
                    ct->ct_type->tp_data.tp_discrete_type->dt_type != MAILMIME_DISCRETE_TYPE_TEXT)
                        return 0; /* images, PDF, calendars...: not text */
                if (ct->ct_subtype && strcaseeq(ct->ct_subtype, "html"))
                        html = true;
                else if (ct->ct_subtype && !strcaseeq(ct->ct_subtype, "plain"))
                        return 0; /* calendar, csv, rtf...: not message text */
        }
        if (!d || d->dt_type != MAILMIME_DATA_TEXT || !d->dt_data.dt_text.dt_data)
                return 0;
        /* Attached files (a "procedure.txt" may hold example codes) are not the message. */
        if (is_attachment(mime))
                return 0;

        r = decode_body(w, d, part_encoding(mime), &decoded, &decoded_len);
        if (r == -EBADMSG)
                return 0;
        if (r < 0)
                return r;
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
                r = strbuf_printf(&b, "From: %s <%s>\n", strempty(h->from.name), h->from.address);
        if (r >= 0 && h->subject)
                r = strbuf_printf(&b, "Subject: %s\n", h->subject);
        if (r == -ENOMEM)
                return r;
        if (b.len == 0)
                return 0;
        return add_text(w, b.data, b.len, "utf-8", false, attached, w->parts);
}

/* message/rfc822 inside the message: a forward as attachment, read as a message whose codes
 * are never trusted. */
static int walk_attached_message(Walker *w, const struct mailmime *mime, unsigned attached, unsigned depth) {
        int r;

        attached++;
        r = add_attached_headers(w, mime->mm_data.mm_message.mm_fields, attached);
        if (r < 0)
                return r;
        return walk(w, mime->mm_data.mm_message.mm_msg_mime, attached, depth + 1);
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
                if (depth > 0)
                        return walk_attached_message(w, mime, attached, depth);
                return walk(w, mime->mm_data.mm_message.mm_msg_mime, attached, depth + 1);
        default:
                return 0;
        }
}

/* Length of the prefix of raw that holds at most max_parts Content-Type header lines
 * ("Content-Type", maybe blanks, ':' at a line start, as libetpan reads them). The cut goes
 * before the boundary line that opens the part left out: libetpan drops a whole multipart
 * whose body ends with a boundary line followed by nothing, and the parts before it (a code
 * in part 1 of 100,000) with it; without that last line it keeps them. */
static size_t bounded_length(const char *raw, size_t size, unsigned max_parts, bool *ret_cut) {
        unsigned count = 0;
        size_t boundary_line = SIZE_MAX;

        *ret_cut = false;
        for (size_t i = 0; i < size;) {
                if (raw[i] == '-' && i + 1 < size && raw[i + 1] == '-')
                        boundary_line = i;
                if ((raw[i] | 0x20) == 'c' && size - i >= 12 && strncasecmp(raw + i, "content-type", 12) == 0) {
                        size_t j = i + 12;
                        while (j < size && (raw[j] == ' ' || raw[j] == '\t'))
                                j++;
                        if (j < size && raw[j] == ':' && ++count > max_parts) {
                                *ret_cut = true;
                                return boundary_line < i ? boundary_line : i;
                        }
                }
                const char *nl = memchr(raw + i, '\n', size - i);
                if (!nl)
                        break;
                i = (size_t) (nl - raw) + 1;
        }
        return size;
}

/* One header field of the top header block, unfolded: CR and LF dropped, the blanks kept. */
static int keep_field(const char *v, size_t n, char **ret, size_t *ret_len) {
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(MAX_HEADER_VALUE);
        int r;

        while (n > 0 && (*v == ' ' || *v == '\t'))
                v++, n--;
        for (size_t i = 0; i < n; i++)
                if (v[i] != '\r' && v[i] != '\n' && (r = strbuf_putc(&b, v[i])) == -ENOMEM)
                        return r;
        if (strbuf_ensure(&b) < 0)
                return -ENOMEM;
        bool cut = b.truncated;
        *ret = strbuf_take(&b, ret_len);
        return cut; /* 1: cut at MAX_HEADER_VALUE */
}

/* Reads the top header block from the bytes, as a receiving server's DMARC check would: every
 * field named From or Sender (case-insensitive, blanks before the colon allowed, RFC 5322
 * §4.5.3), every Authentication-Results in order, and any control byte. libetpan stops at
 * what it cannot parse and keeps a NUL-cut string; this reading does neither, so that two From
 * fields, or a From hidden after a malformed line, are seen. Bounded by size; no terminator
 * needed. */
static int read_header_block(MimeMessage *m, const char *raw, size_t size) {
        const char *name = NULL, *value = NULL;
        size_t name_len = 0, end;
        unsigned n_auth = 0;
        int r;

        for (size_t i = 0;; i = end) {
                const char *nl = i < size ? memchr(raw + i, '\n', size - i) : NULL;
                size_t line_end = nl ? (size_t) (nl - raw) : size, len;
                bool last = i >= size || (line_end - i == 0) || (line_end - i == 1 && raw[i] == '\r');

                end = nl ? line_end + 1 : size;
                len = line_end - i;
                for (size_t k = i; !last && k < line_end; k++) {
                        unsigned char c = (unsigned char) raw[k];
                        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f ||
                            (c == '\r' && k + 1 != line_end))
                                m->header_control = true;
                }
                if (!last && (raw[i] == ' ' || raw[i] == '\t'))
                        continue; /* continuation of the field being read */

                /* The field that ends here: [name, value .. i). */
                if (name) {
                        size_t vlen = (size_t) (raw + i - value);
                        char *v = NULL;
                        size_t vl;

                        if (name_len == 4 && strncasecmp(name, "from", 4) == 0) {
                                if (m->n_from++ == 0 &&
                                    (r = keep_field(value, vlen, &m->from_raw, &m->from_raw_len)) != 0) {
                                        if (r < 0)
                                                return r;
                                        m->header_long = true;
                                }
                        } else if (name_len == 6 && strncasecmp(name, "sender", 6) == 0) {
                                if (m->n_sender++ == 0 &&
                                    (r = keep_field(value, vlen, &m->sender_raw, &m->sender_raw_len)) != 0) {
                                        if (r < 0)
                                                return r;
                                        m->header_long = true;
                                }
                        } else if (name_len == 22 && strncasecmp(name, "authentication-results", 22) == 0 &&
                                   n_auth++ < MAX_AUTH_RESULTS) {
                                if ((r = keep_field(value, vlen, &v, &vl)) < 0)
                                        return r;
                                if (strv_consume(&m->auth_results, v) < 0)
                                        return -ENOMEM;
                        }
                        name = NULL;
                }
                if (last)
                        return 0;

                /* field-name = 1*ftext, then blanks (obsolete syntax), then ':'. A line that is
                 * none (an mbox "From " line on top) is skipped. */
                size_t k = 0;
                while (k < len && raw[i + k] > 32 && raw[i + k] < 127 && raw[i + k] != ':')
                        k++;
                name_len = k;
                while (k < len && (raw[i + k] == ' ' || raw[i + k] == '\t'))
                        k++;
                if (name_len > 0 && k < len && raw[i + k] == ':') {
                        name = raw + i;
                        value = raw + i + k + 1;
                }
        }
}

/* Parses one message (the top one, or an attached one that was encoded) into w. */
static int parse_buffer(Walker *w, const char *raw, size_t size, unsigned attached) {
        MimeMessage *m = w->msg;
        _cleanup_free_ char *buf = NULL;
        struct mailmime *mime = NULL;
        unsigned budget = w->limits->max_parts > w->parts ? w->limits->max_parts - w->parts : 0;
        size_t n, idx = 0;
        bool cut;
        int r;

        n = MIN(size, w->limits->max_message);
        m->cut = m->cut || n < size;
        if (n < size && (r = warn(m, "message larger than %zu bytes, reading only the start",
                                  w->limits->max_message)) < 0)
                return r;
        n = bounded_length(raw, n, budget, &cut);
        m->cut = m->cut || cut;
        if (cut && (r = warn(m, "more than %u MIME parts, ignoring the rest", w->limits->max_parts)) < 0)
                return r;

        /* Zeroed padding: libetpan's QP decoder reads up to two bytes past "=X" at the end. The
         * tree points into buf: it lives until mailmime_free(). */
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
                        r = attached == 0 ? read_fields(m, fields) : add_attached_headers(w, fields, attached);
                        mailimf_fields_free(fields);
                        if (r < 0)
                                return r;
                }
                r = warn(m, "not a valid MIME message, read as plain text");
                if (r >= 0)
                        r = add_text(w, buf + MIN(hidx, n), n - MIN(hidx, n), "us-ascii", false, attached,
                                     w->parts + 1);
                return r;
        }

        if (mime->mm_type == MAILMIME_MESSAGE) {
                if (attached == 0)
                        r = read_fields(m, mime->mm_data.mm_message.mm_fields);
                else
                        r = add_attached_headers(w, mime->mm_data.mm_message.mm_fields, attached);
        }
        if (r >= 0)
                r = walk(w, mime, attached, 0);
        mailmime_free(mime);
        return r;
}

int mime_parse(const char *raw, size_t size, const MimeLimits *limits, MimeMessage **ret) {
        _cleanup_(mime_message_freep) MimeMessage *m = calloc(1, sizeof(MimeMessage));
        MimeLimits lim = limits ? *limits : MIME_LIMITS_DEFAULT;
        Walker w = { .msg = m, .limits = &lim };
        int r;

        if (!m)
                return -ENOMEM;
        r = read_header_block(m, raw, MIN(size, lim.max_message));
        if (r < 0)
                return r;
        r = parse_buffer(&w, raw, size, 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}
