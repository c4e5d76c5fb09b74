/* libFuzzer: the whole pipeline (libetpan MIME, charsets, HTML, folding, sender analysis and
 * the shipped rules) on arbitrary bytes. Seeds: tests/data. */
#include <stdint.h>
#include <stdlib.h>

#include "pipeline.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static Rules *rules;
static Pipeline *pipeline;
static char *employer[] = { (char *) "menuiseries-durand.example", NULL };
static char *self[] = { (char *) "jeanne@menuiseries-durand.example", NULL };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char *dirs[] = { (char *) FUZZ_RULES_DIR, NULL };
        char **errors = NULL;

        (void) argc;
        (void) argv;
        if (rules_load(dirs, &rules, &errors) < 0 || errors || rules_count(rules) == 0)
                abort();
        if (pipeline_new(rules, employer, NULL, &pipeline) < 0)
                abort();
        pipeline_set_user_addresses(pipeline, self);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The folder decides trust too: take it from the first byte. */
        static const char *folders[] = { "INBOX", "Sent", "Junk", NULL };
        MessageRef ref = { .folder = (char *) folders[size > 0 ? data[0] % 4 : 0] };
        char **warnings = NULL;
        Message *m = NULL;

        if (pipeline_run(pipeline, (const char *) data, size, &ref, &m, &warnings, NULL, NULL) < 0)
                abort(); /* only -ENOMEM may fail */
        /* A code has a value and its text as written; a possible code (a trusted mail that
         * speaks of a code no rule read, or was not read whole) has no value. pipeline_run()
         * returns 1 for a mail not read whole. */
        for (size_t i = 0; i < m->n_codes; i++) {
                const Code *c = &m->codes[i];
                if (c->kind == CODE_KIND_POSSIBLE ? c->value != NULL
                                                  : !c->value || !c->value[0] || !c->display || !c->display[0])
                        abort();
        }
        message_free(m);
        strv_free(warnings);
        return 0;
}
