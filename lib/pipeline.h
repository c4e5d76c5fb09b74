/* The whole extraction, pure: RFC 5322 bytes in, a Message with its codes out
 * (mime → text → sender → rules). The daemon and `alcode scan` both call pipeline_run(), so
 * the CLI finds exactly what the daemon finds. A Pipeline belongs to one thread (it owns PCRE2
 * match data and a JIT stack); the Rules it borrows may be shared between threads. */
#pragma once

#include <stddef.h>

#include "message.h"
#include "mime.h"
#include "rules.h"

typedef struct Pipeline Pipeline;

/* rules and employer_domains are borrowed and must outlive the pipeline. limits may be NULL
 * (MIME_LIMITS_DEFAULT). */
int pipeline_new(const Rules *rules, char *const *employer_domains, const MimeLimits *limits,
                 Pipeline **ret);
Pipeline *pipeline_free(Pipeline *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pipeline *, pipeline_free);

/* The user's own addresses (borrowed, must outlive the pipeline; NULL: none): their mail is
 * never trusted, nor is mail in a Sent folder (MessageRef.sent, else the name in
 * MessageRef.folder: sender_folder_is_sent()). */
void pipeline_set_user_addresses(Pipeline *p, char *const *addresses);

/* For the next messages, until called again with NULL: where they come from makes their
 * sender untrusted whatever the headers say, and why (static text, borrowed) is what --explain
 * shows. alcode scan uses it for a message that an mbox's own structure (Content-Length, an
 * unclosed MIME body) places inside another one. */
void pipeline_set_distrust(Pipeline *p, const char *why);

/* Extracts the codes of one message. ref (may be NULL) is copied into the result.
 * warnings (may be NULL) receives what was malformed or skipped, never message content.
 * explain (may be NULL) sees every candidate. Malformed mail is read best-effort and is not an
 * error. When the text was not read whole (cut at a MimeLimits or subject limit, or a pattern
 * stopped by PCRE2's limits: warnings say which) and a trusted sender's mail gave no code, a
 * possible code is added. Returns 0, 1 when the text was not read whole, or -ENOMEM. */
int pipeline_run(Pipeline *p, const char *raw, size_t size, const MessageRef *ref,
                 Message **ret, char ***warnings, RuleExplainFunc explain, void *userdata);

/* Explain mode also wants the sender analysis and the texts the rules saw: called once per
 * message (texts in the order rules_match() numbers them) before matching. */
typedef void (*PipelineTextFunc)(const SenderInfo *sender, const RuleText *texts, size_t n_texts,
                                 void *userdata);
void pipeline_set_text_callback(Pipeline *p, PipelineTextFunc f, void *userdata);
