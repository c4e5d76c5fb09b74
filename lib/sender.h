/* Who sent a message, and whether we can believe it. Parses From/Sender/Reply-To (done by
 * mime.c), reads Authentication-Results, spots look-alike domains and display names. Pure. */
#pragma once

#include "macro.h"

typedef struct MimeMessage MimeMessage;

typedef struct SenderInfo {
        char *address;          /* From addr-spec, or NULL */
        char *domain;           /* its domain, lower case, or NULL */
        char *name;             /* display name (UTF-8) or NULL */
        bool auth_failed;       /* Authentication-Results: dkim/dmarc/spf fail for the From domain */
        bool lookalike;         /* domain or display name imitates a trusted brand */
        bool mismatch;          /* Sender:/Reply-To: in another domain than From: */
        bool employer;          /* From domain is one of the configured employer domains */
} SenderInfo;

void sender_info_done(SenderInfo *s);

/* Analyses m's headers. trusted_domains: every domain any rule trusts (for look-alike checks);
 * employer_domains: from the config. Returns 0 or -ENOMEM. */
int sender_analyze(const MimeMessage *m, char *const *trusted_domains,
                   char *const *employer_domains, SenderInfo *ret);

/* True when domain equals d or is a subdomain of it ("mail.al-in.fr" is in "al-in.fr"),
 * comparing whole labels: "evil-al-in.fr" and "al-in.fr.evil.example" are not. */
bool domain_matches(const char *domain, const char *d) _pure_;

/* Whether the sender is trusted by a rule trusting `domains` (and the employer's when
 * employer is true). */
bool sender_trusted(const SenderInfo *s, char *const *domains, bool employer);
