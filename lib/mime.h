/* MIME decoding with libetpan: from raw RFC 5322 bytes to the headers we judge senders by and
 * the text parts, decoded (base64/QP undone, charset converted to UTF-8). The only user of
 * libetpan's mailmime/mailimf parsers. Pure; callable from any thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct MimeLimits {
        size_t max_message; /* bytes handed to the parser; the rest is not read */
        unsigned max_parts; /* MIME entities (also bounds nesting depth) */
        size_t max_text;    /* decoded text per message, all parts together */
} MimeLimits;

#define MIME_LIMITS_DEFAULT                                                                        \
        ((MimeLimits) { .max_message = 64u << 20, .max_parts = 1000, .max_text = 2u << 20 })

typedef struct MailAddress {
        char *name;    /* decoded display name (UTF-8) or NULL */
        char *address; /* addr-spec as written, or NULL when unparsable */
} MailAddress;

typedef struct MimeText {
        char *text;         /* UTF-8, owned */
        size_t len;
        bool html;          /* from text/html: still HTML, see text_html_to_text() */
        unsigned attached;  /* > 0: inside an attached message/rfc822 (a forward) */
} MimeText;

typedef struct MimeMessage {
        char *subject;           /* decoded UTF-8 or NULL */
        MailAddress from;        /* first From mailbox */
        MailAddress sender;      /* Sender:, when present */
        MailAddress *reply_to;
        size_t n_reply_to;
        char *message_id;        /* "<id>" or NULL */
        int64_t date;            /* 0 when missing or invalid */
        int date_tz;             /* minutes east of UTC */
        char **auth_results;     /* Authentication-Results values, topmost first (at most 16) */
        /* The top header block as the bytes say it, read apart from libetpan (which keeps only
         * what it could parse): what sender.c needs to judge whether the From is ambiguous. */
        unsigned n_from;         /* From fields, whatever the case of the name ("from:", "From :") */
        unsigned n_sender;       /* Sender fields */
        char *from_raw;          /* the first From field's value, unfolded, bytes as written */
        size_t from_raw_len;     /* (it may hold a NUL: use the length) */
        char *sender_raw;        /* the first Sender field's value, likewise */
        size_t sender_raw_len;
        bool header_long;        /* the From or Sender value was cut at 4 KiB */
        bool header_control;     /* a NUL or another control byte (not TAB, CR, LF) in the header */
        char *gmail_labels;      /* X-Gmail-Labels (Google Takeout), or NULL */
        MimeText *texts;
        size_t n_texts;
        bool cut;                /* text not all read: cut at max_text, max_message, max_parts, or a
                                  * Subject longer than 4 KiB */
        char **warnings;         /* what was malformed or skipped; never message content */
        size_t n_warnings;
} MimeMessage;

/* Parses raw (not required to be NUL-terminated). Never fails on malformed mail: it reads what
 * it can and adds warnings. Returns 0 or -ENOMEM. */
int mime_parse(const char *raw, size_t size, const MimeLimits *limits, MimeMessage **ret);
MimeMessage *mime_message_free(MimeMessage *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(MimeMessage *, mime_message_free);

/* Decodes an RFC 2047 header value (B and Q words, several words, mixed charsets, raw UTF-8 or
 * Latin-1 bytes tolerated) to UTF-8. Returns NULL on OOM. */
char *mime_decode_header(const char *value, size_t len);

/* Splits an address into local part and lower-cased domain (IDNA left as is). The domain is
 * what follows the last '@'. Returns -EINVAL when there is no '@' or an empty side. */
int mail_address_domain(const char *address, char **ret_domain);
