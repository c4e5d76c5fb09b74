/* libFuzzer: IMAP responses from a hostile server, fed to lib/imap.c (and libetpan's parser
 * under it) through a socketpair. The input is everything the server says, in order: the
 * greeting, then the answers to whatever the client sends (libetpan tags its commands 1, 2,
 * 3...; the seeds are real sessions with those tags). The client runs one whole worker
 * session against it: connect and LOGIN, LIST, EXAMINE, SEARCH (plain and by candidates),
 * a streamed FETCH, a large message by BODYSTRUCTURE, STATUS, IDLE, LOGOUT. It goes on after
 * a failure (each call must then fail cleanly on the broken session).
 *
 * The server end is written before the session starts and then shut for writing: the client
 * reads the input, then end-of-file, which the session must turn into an error, not a busy
 * loop (libetpan 1.9.4 spins on end-of-file inside a literal). -max_len must stay below the
 * socket buffer (the client's commands are never read). libetpan itself is not instrumented:
 * its memory errors show as crashes, not as ASan reports, and coverage guides only through
 * lib/imap.c. Seeds: tests/fuzz/seeds/imap/. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *folders[] = { (char *) "*", NULL };
static char *domains[] = { (char *) "actionlogement.fr", NULL };
static char *keywords[] = { (char *) "code", (char *) "spécifique", NULL };

static const Account account = {
        .name = (char *) "fuzz", .host = (char *) "127.0.0.1", .port = 143, .tls = TLS_MODE_NONE,
        .user = (char *) "u", .password = (char *) "p", .auth = AUTH_METHOD_LOGIN,
        .folders = folders, .exclude = NULL, .idle = folders, .poll_interval = 300,
};

static unsigned checksum;

static int on_message(const ImapMessage *m, void *userdata) {
        (void) userdata;
        /* Every byte the session hands out must be readable (ASan checks). */
        for (size_t i = 0; i < m->size; i++)
                checksum += (unsigned char) m->data[i];
        return m->uid == 7 ? -ECANCELED : 0; /* also the path where a callback stops the read */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ImapSession *s = NULL;
        ImapFolder *f = NULL;
        ImapFolderState st;
        uint32_t *uids = NULL;
        size_t n_f = 0, n = 0;
        char *error = NULL;
        int sv[2], fd;

        if (size > 65536)
                return 0; /* more than the socket buffer: the write below would block */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        if (size > 0 && write(sv[1], data, size) != (ssize_t) size)
                abort();
        (void) shutdown(sv[1], SHUT_WR);

        if (imap_session_new(&account, 1, &s) < 0)
                abort();
        (void) imap_session_connect_fd(s, sv[0], &error);
        free(error);

        if (imap_list(s, &f, &n_f) >= 0)
                imap_folders_free(f, n_f);
        (void) imap_examine(s, "INBOX", &st);
        (void) imap_has_new_mail(s, 0);
        if (imap_search(s, 1, 86400, &uids, &n) >= 0)
                free(uids);
        uids = NULL;
        if (imap_search_candidates(s, 1, domains, keywords, &uids, &n) >= 0) {
                (void) imap_fetch(s, uids, n, 1, 4096, on_message, NULL);
                free(uids);
        }
        (void) imap_fetch(s, NULL, 0, 1, 262144, on_message, NULL);
        (void) imap_fetch_parts(s, NULL, 0, 3, NULL, 0, 65536, 262144, on_message, NULL);
        /* An EXAMINE sent ahead of the FETCH, and several folders' reads pipelined. */
        st = (ImapFolderState) { .uidvalidity = 1, .exists = 2 };
        if (imap_examine_ahead(s, "Junk", 1, &st) >= 0)
                (void) imap_fetch_parts(s, NULL, 0, 1, NULL, 0, 65536, 262144, on_message, NULL);
        {
                static const uint32_t some[] = { 1, 2, 5 };
                ImapFolderState st2[2] = {};
                ImapPartsJob jobs[2] = {
                        { .folder = "INBOX", .uidvalidity = 1, .st = &st2[0], .uids = some, .n = 3, .cb = on_message },
                        { .folder = "Junk", .uidvalidity = 7, .st = &st2[1], .uids = some + 1, .n = 2, .cb = on_message },
                };
                (void) imap_fetch_parts_folders(s, jobs, 2, 65536, 262144);
        }
        {
                ImapScout x[2] = { { .folder = "INBOX" }, { .folder = "Junk" } };
                (void) imap_scout(s, x, 2, domains, keywords);
                free(x[0].uids);
                free(x[1].uids);
        }
        (void) imap_status(s, "Junk", &st);
        if (imap_idle_start(s, &fd) >= 0) {
                (void) imap_idle_pending(s);
                (void) imap_idle_done(s);
        }
        imap_logout(s);
        imap_session_free(s);
        close(sv[1]);
        return 0;
}
