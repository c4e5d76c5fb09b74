/* Who sent a message, and whether we can believe it. Reads From/Sender/Reply-To (parsed by
 * mime.c, and From/Sender again strictly here) and the Authentication-Results, spots look-alike domains (IDN homographs
 * included) and display names, and recognises the user's own mail. Pure; any thread. */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef struct MimeMessage MimeMessage;

typedef struct SenderInfo {
        char *address;       /* From addr-spec, or NULL */
        char *domain;        /* its domain in lower case, as written (punycode stays "xn--"), or NULL */
        char *name;          /* display name (UTF-8) or NULL */
        bool auth_failed;    /* an Authentication-Results: dmarc=fail, or dkim=fail and no dkim=pass
                              * in the topmost one, for the From domain */
        bool auth_passed;    /* topmost Authentication-Results: dmarc=pass, or dkim=pass with
                              * header.d aligned with the From domain; no failure or conflict */
        bool lookalike;      /* domain or display name imitates a trusted domain or the brand */
        bool mismatch;       /* Reply-To: outside a trusted From domain, without authentication */
        bool employer;       /* From domain is one of the configured employer domains */
        bool self;           /* the user's own mail: one of their addresses, or a Sent folder */
        bool ambiguous;      /* From (or Sender) is not exactly one well-formed mailbox in exactly
                              * one field: readers may disagree on who sent it */
        bool auth_conflict;  /* an Authentication-Results judged another From domain */
        char *auth_domain;   /* that domain (header.from), or NULL */
        const char *why;     /* static text: why a trusted-looking sender is not trusted, or NULL */
} SenderInfo;

void sender_info_done(SenderInfo *s);

/* Parses one From (or Sender) field value strictly: exactly one mailbox, "addr-spec" or
 * "display-name <addr-spec>", the addr-spec a dot-atom local part, '@', and a domain of
 * non-empty labels (letters, digits, '-', UTF-8). Refused: several mailboxes or angle
 * addresses, a group, a source route, a missing '>', anything else around the address, a
 * comment, quoted local part, backslash or blank inside the address, a domain literal, a
 * trailing dot, NUL and control bytes, a display name holding another address. v need not be
 * NUL-terminated. Returns 0 and the addr-spec (domain in lower case) in ret_address,
 * -EINVAL with the reason (static text) in ret_why, or -ENOMEM. */
int sender_parse_mailbox(const char *v, size_t n, char **ret_address, const char **ret_why);

/* Analyses m's headers. trusted_domains: every domain a rule trusts (also the reference for
 * look-alikes); employer_domains: from the config; user_addresses: the user's own addresses
 * (mail from them is never trusted). Any list may be NULL. Returns 0 or -ENOMEM. */
int sender_analyze(const MimeMessage *m, char *const *trusted_domains,
                   char *const *employer_domains, char *const *user_addresses, SenderInfo *ret);

/* True when domain equals d or is a subdomain of it ("mail.al-in.fr" is in "al-in.fr"),
 * comparing whole labels, case-insensitively: "evil-al-in.fr" and "al-in.fr.evil.example"
 * are not. */
bool sender_domain_matches(const char *domain, const char *d) _pure_;
bool sender_domain_in(const char *domain, char *const *list) _pure_;

/* Whether a rule trusting `domains` (and the employer's domains when employer is true) may
 * trust this sender: the From domain matches, authentication did not fail, and the sender is
 * neither a look-alike, nor suspicious, nor the user. */
bool sender_trusted(const SenderInfo *s, char *const *domains, bool employer);

/* Longest label sender_punycode_decode() takes (DNS allows 63 bytes; hostile mail may not). */
#define SENDER_LABEL_MAX 255
/* Decodes one punycode label (RFC 3492, without the "xn--" prefix) into UTF-8, with libidn2.
 * Returns 0, -EINVAL on malformed input (or input libidn2 refuses), -ENOMEM. */
int sender_punycode_decode(const char *label, size_t len, char **ret);

/* The confusable skeleton of a domain or name: "xn--" labels decoded, letters that look alike
 * (Cyrillic а/е/о/р/с…, Greek ο, accented Latin, digits 0/1 for o/l, "rn" for "m") mapped
 * to plain ASCII, everything but letters dropped. "xn--actionlogment-43k.fr" (Cyrillic е)
 * gives "actionlogementfr". Returns NULL on OOM. */
char *sender_skeleton(const char *s);

/* Whether a folder name (UTF-8) is one where the user's own sent mail lives ("Sent", "Sent
 * Items", "[Gmail]/Sent Mail", "Éléments envoyés", "INBOX.Sent"...): the guess when the
 * server marks no folder RFC 6154 \Sent (MessageRef.sent). */
bool sender_folder_is_sent(const char *folder) _pure_;
