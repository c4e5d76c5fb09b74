/* libFuzzer: the rule-file parser and compiler (inih, defines, PCRE2 with its limits), then a
 * match of what compiled over a fixed text. Seeds: config/rules.d. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rules.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char text[] = "Votre code specifique : AB12 CD34\nCode entreprise : 412 345 678 00012\n"
                                   "Action Logement, code de verification 123456, valable 10 minutes.";
        char path[64], **errors = NULL;
        Rules *rules = NULL;
        RuleMatcher *m = NULL;
        Message msg = {};
        int fd;

        fd = memfd_create("fuzz.rules", MFD_CLOEXEC);
        if (fd < 0 || write(fd, data, size) != (ssize_t) size)
                abort();
        (void) snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        char *files[] = { path, NULL };
        if (rules_load_files(files, &rules, &errors) < 0)
                abort();
        STRV_FOREACH(e, errors)
                if (!strstr(*e, path))
                        abort(); /* every error names the file */
        if (rule_matcher_new(&m) < 0)
                abort();
        SenderInfo s = { .address = (char *) "a@example.org", .domain = (char *) "example.org", .name = (char *) "AL" };
        RuleText t[] = { { .text = "Action Logement", .len = 15, .subject = true },
                         { .text = text, .len = sizeof text - 1 } };
        if (rules_match(rules, m, t, 2, &s, &msg, NULL, NULL, &errors) < 0)
                abort();
        for (size_t i = 0; i < msg.n_codes; i++)
                code_done(&msg.codes[i]);
        free(msg.codes);
        rule_matcher_free(m);
        rules_free(rules);
        strv_free(errors);
        close(fd);
        return 0;
}
