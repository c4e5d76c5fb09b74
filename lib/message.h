/* Shared value types: the kinds of code, one found Code, and a Message with its provenance
 * (where it lives) and the codes found in it. Every pointer member is owned by its struct. */
#pragma once

#include <stdint.h>

#include "macro.h"

typedef enum CodeKind {
        CODE_KIND_SPECIFIC, /* the employee's personal code spécifique */
        CODE_KIND_COMPANY,  /* the employer's code entreprise (usually its SIRET) */
        CODE_KIND_ACCESS,   /* HR's dematerialised access code (decree 2025-1478) */
        CODE_KIND_OTP,      /* one-time login / verification code */
        CODE_KIND_REQUEST,  /* numéro de demande (housing request) */
        CODE_KIND_FILE,     /* numéro de dossier / visa */
        CODE_KIND_POSSIBLE, /* a trusted sender's mail that speaks of a code no rule read: no
                             * value, only where the mail is (never a rule's kind) */
        _CODE_KIND_MAX,
        _CODE_KIND_INVALID = -EINVAL,
} CodeKind;

const char *code_kind_to_string(CodeKind k) _pure_;
CodeKind code_kind_from_string(const char *s) _pure_;
/* The kind in the user's words, translated ("code spécifique" in French); "code" for an
 * invalid kind. For the CLI and notifications. */
const char *code_kind_to_words(CodeKind k);

typedef struct Code {
        CodeKind kind;
        char *value;   /* as written, case kept, spaces/NBSP/'-'/'.' removed; NULL when possible */
        char *display; /* as written in the mail */
        bool trusted;  /* sender verified for this rule (see rules.h) */
        char *rule;    /* "name@version" */
} Code;

void code_done(Code *c);

/* Whether a message's folder holds the user's own sent mail (then no code in it is trusted). */
typedef enum FolderSent {
        FOLDER_SENT_UNKNOWN, /* not said (local files, or no folder of the server is RFC 6154
                              * \Sent): the folder's name tells (sender_folder_is_sent()) */
        FOLDER_SENT_YES,     /* the server marks it \Sent */
        FOLDER_SENT_NO,      /* the server marks another folder \Sent */
} FolderSent;

/* Where a message lives. For IMAP: account, folder, uidvalidity, uid; for local files: source. */
typedef struct MessageRef {
        char *account;
        char *folder;
        uint32_t uidvalidity;
        uint32_t uid;
        char *source;
        FolderSent sent;
        char **labels;     /* Gmail: the message's labels (X-GM-LABELS), or NULL */
        bool left_out;     /* raw lacks its HTML alternative (imap_fetch_parts()) */
} MessageRef;

void message_ref_done(MessageRef *r);
int message_ref_copy(const MessageRef *from, MessageRef *to);

typedef struct Message {
        MessageRef ref;
        char *message_id;  /* with angle brackets, or NULL */
        char *sender;      /* addr-spec of From, lower-cased domain, or NULL */
        char *sender_name; /* decoded display name, or NULL */
        char *subject;     /* decoded UTF-8, or NULL */
        int64_t date;      /* seconds since the epoch from Date:, 0 when missing/invalid */
        int date_tz;       /* Date:'s offset from UTC in minutes */
        Code *codes;
        size_t n_codes;
        /* A rule read its texts (its sender is trusted by one, or a brand keyword is there), or
         * the safety net would. */
        bool read_by_rules;
        /* ref.left_out, and what was left out could change its codes: read_by_rules, or its
         * sender claims a trusted or employer domain or imitates one, or a keyword is in a
         * link (the rules read texts without their links), or its plain text is a stub. */
        bool wants_left_out;
} Message;

Message *message_free(Message *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Message *, message_free);

/* Appends a copy of code (strings duplicated) unless one with the same kind and value is there
 * (values compared caselessly: identity, not display). Returns 1 when added, 0 when a
 * duplicate, -ENOMEM. */
int message_add_code(Message *m, const Code *code);

/* Canonical form of a displayed value: the code as written, case kept (a code may be
 * case-sensitive), with only its grouping separators removed: blanks, NBSP (and the other
 * no-break spaces), '-' and '.'. Returns NULL on OOM. */
char *code_canonicalize(const char *display);
/* Whether two canonical values name the same code (ASCII caseless). */
bool code_value_equal(const char *a, const char *b) _pure_;

/* RFC 3339 with the original offset ("2026-03-02T09:14:00+01:00") into buf (>= 32 bytes). */
const char *format_rfc3339(int64_t t, int tz_minutes, char *buf, size_t size);
