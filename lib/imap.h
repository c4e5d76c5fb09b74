/* The only user of libetpan's IMAP client. A session is owned by one worker thread and is
 * read-only by construction: folders are opened with EXAMINE, bodies fetched with BODY.PEEK,
 * and no function here sends STORE, COPY, EXPUNGE, APPEND or SELECT.
 *
 * Connecting verifies the server's certificate (tls-verify.h) before any credential is sent.
 * Every command has the session's timeout; imap_session_cancel() may be called from another
 * thread to abort a blocked command (the session must then be freed). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct ImapSession ImapSession;

typedef enum ImapFolderFlags {
        IMAP_FOLDER_NOSELECT = 1 << 0,
        IMAP_FOLDER_JUNK = 1 << 1,
        IMAP_FOLDER_TRASH = 1 << 2,
        IMAP_FOLDER_ARCHIVE = 1 << 3,
        IMAP_FOLDER_ALL = 1 << 4,
        IMAP_FOLDER_SENT = 1 << 5,
        IMAP_FOLDER_DRAFTS = 1 << 6,
} ImapFolderFlags;

typedef struct ImapFolder {
        char *name;    /* as the server names it (modified UTF-7): use it in commands */
        char *display; /* decoded UTF-8 for people and the store */
        char delimiter;
        unsigned flags;
} ImapFolder;

void imap_folders_free(ImapFolder *f, size_t n);

/* Connects, verifies TLS, gets the secret and logs in. Errors: -ECONNREFUSED, -ETIMEDOUT,
 * -EPERM (certificate refused: no credential was sent), -EPROTONOSUPPORT (STARTTLS not
 * offered), -EACCES (login refused), -ENOKEY (secret unavailable), -EPROTO. *ret_error
 * (owned) says why in words, never with a secret. */
int imap_connect(const Account *a, unsigned timeout_sec, ImapSession **ret, char **ret_error);
ImapSession *imap_session_free(ImapSession *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImapSession *, imap_session_free);
/* From another thread: aborts the command in progress. */
void imap_session_cancel(ImapSession *s);
/* The last error's text (borrowed, valid until the next call). */
const char *imap_last_error(const ImapSession *s);
bool imap_has_capability(ImapSession *s, const char *name);

/* Every folder (LIST "" "*"), with special-use flags (RFC 6154). */
int imap_list(ImapSession *s, ImapFolder **ret, size_t *ret_n);

typedef struct ImapFolderState {
        uint32_t uidvalidity;
        uint32_t uidnext;
        uint32_t exists;
        uint64_t highest_modseq; /* 0 when CONDSTORE is not offered */
} ImapFolderState;

/* EXAMINE (RFC 3501 §6.3.2: read-only, \Seen never set). */
int imap_examine(ImapSession *s, const char *folder, ImapFolderState *ret);

/* UIDs >= first_uid (and internal date >= since when since > 0), ascending.
 * Filters out the highest UID that UID SEARCH returns for "n:*" even when it is below n. */
int imap_search(ImapSession *s, uint32_t first_uid, int64_t since, uint32_t **ret, size_t *ret_n);

/* One fetched message: raw bytes (at most max_size; truncated true when cut). */
typedef struct ImapMessage {
        uint32_t uid;
        char *data;
        size_t size;
        bool truncated;
} ImapMessage;

/* Fetches BODY.PEEK[] of uids in one command (at most max_size bytes each) and calls cb for
 * each message, in the server's order. cb owns nothing; returns < 0 to stop. */
typedef int (*ImapFetchFunc)(const ImapMessage *m, void *userdata);
int imap_fetch(ImapSession *s, const uint32_t *uids, size_t n, size_t max_size, ImapFetchFunc cb,
               void *userdata);

/* LOGOUT politely (bounded by the timeout). */
void imap_logout(ImapSession *s);

/* Modified UTF-7 (RFC 3501 §5.1.3) to UTF-8. Invalid input is returned as is. */
char *imap_utf7_decode(const char *name);
