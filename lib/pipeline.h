/* The whole extraction, pure: RFC 5322 bytes in, a Message with its codes out
 * (mime → text → sender → rules). The daemon and `alcode scan` both call this, so the CLI finds
 * exactly what the daemon finds. A Pipeline belongs to one thread (it owns match data); the
 * Rules it borrows may be shared. */
#pragma once

#include <stddef.h>

#include "message.h"
#include "mime.h"
#include "rules.h"

typedef struct Pipeline Pipeline;

/* rules and employer_domains are borrowed and must outlive the pipeline. */
int pipeline_new(const Rules *rules, char *const *employer_domains, const MimeLimits *limits,
                 Pipeline **ret);
Pipeline *pipeline_free(Pipeline *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pipeline *, pipeline_free);

/* Extracts the codes of one message. ref (may be NULL) is copied into the result.
 * warnings (may be NULL) receives what was malformed or skipped, never message content.
 * explain (may be NULL) sees every candidate. Malformed mail is read best-effort and is not an
 * error. Returns 0 or -ENOMEM. */
int pipeline_run(Pipeline *p, const char *raw, size_t size, const MessageRef *ref,
                 Message **ret, char ***warnings, RuleExplainFunc explain, void *userdata);

/* Explain mode also wants the texts the rules saw: called once per text before matching. */
typedef void (*PipelineTextFunc)(unsigned index, const RuleText *text, void *userdata);
void pipeline_set_text_callback(Pipeline *p, PipelineTextFunc f, void *userdata);
