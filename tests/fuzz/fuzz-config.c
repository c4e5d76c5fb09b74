/* libFuzzer: the configuration parser (inih and the key table). Seeds: the example config. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[64], **errors = NULL;
        Config *c = NULL;
        int fd, r;

        fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
        if (fd < 0 || write(fd, data, size) != (ssize_t) size || fchmod(fd, 0600) < 0)
                abort();
        (void) snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        r = config_load(path, &c, &errors);
        if (r >= 0 && (!c || errors))
                abort();
        if (r < 0 && r != -EINVAL && r != -ENOMEM)
                abort();
        STRV_FOREACH(e, errors)
                if (!strstr(*e, path))
                        abort(); /* every error names the file */
        config_free(c);
        strv_free(errors);
        close(fd);
        return 0;
}
