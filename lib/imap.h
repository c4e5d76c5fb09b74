/* The only user of libetpan's IMAP client. A session is owned by one worker thread and is
 * read-only by construction: folders are opened with EXAMINE, bodies fetched with BODY.PEEK,
 * and no function here sends STORE, COPY, EXPUNGE, APPEND or SELECT.
 *
 * Connecting verifies the server's certificate (tls-verify.h) before any credential is sent.
 * Every read and write has the session's timeout; on top of that, imap_session_cancel() may be
 * called from another thread (a watchdog) to abort whatever the session is doing, including
 * libetpan 1.9.4's endless loop on a connection cut inside a literal. A cancelled session only
 * fails from then on: free it and reconnect. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "message.h"

typedef struct ImapSession ImapSession;

typedef enum ImapFolderFlags {
        IMAP_FOLDER_NOSELECT = 1 << 0,
        IMAP_FOLDER_JUNK = 1 << 1,
        IMAP_FOLDER_TRASH = 1 << 2,
        IMAP_FOLDER_ARCHIVE = 1 << 3,
        IMAP_FOLDER_ALL = 1 << 4,
        IMAP_FOLDER_SENT = 1 << 5,
        IMAP_FOLDER_DRAFTS = 1 << 6,
        IMAP_FOLDER_NO_SENT_FLAG = 1 << 7, /* no folder of the LIST is \Sent */
} ImapFolderFlags;

typedef struct ImapFolder {
        char *name;    /* as the server names it (modified UTF-7): use it in commands */
        char *display; /* decoded UTF-8 for people and the store */
        char delimiter;
        unsigned flags;
} ImapFolder;

void imap_folders_free(ImapFolder *f, size_t n);
/* For MessageRef.sent: what the server's RFC 6154 \Sent flags say of f. */
static inline FolderSent imap_folder_sent(const ImapFolder *f) {
        return f->flags & IMAP_FOLDER_SENT ? FOLDER_SENT_YES
               : f->flags & IMAP_FOLDER_NO_SENT_FLAG ? FOLDER_SENT_UNKNOWN
                                                     : FOLDER_SENT_NO;
}
/* The RFC 6154 special-use flag called name ("Junk", "\\Trash"...), or 0. */
unsigned imap_special_use_from_string(const char *name) _pure_;

/* A session that is not connected yet: publish it to the thread that may cancel it, then call
 * imap_session_connect(). a is borrowed and must outlive the session. */
int imap_session_new(const Account *a, unsigned timeout_sec, ImapSession **ret);
/* Connects, verifies TLS, gets the secret and logs in. Errors: -ECONNREFUSED, -ETIMEDOUT,
 * -ECONNRESET (TLS handshake), -EPERM (certificate refused: no credential was sent),
 * -EPROTONOSUPPORT (STARTTLS not offered), -EACCES (login refused), -EUSERS (login refused
 * for now: too many connections, or throttled), -EAGAIN (login service unavailable), -ENOKEY
 * (secret unavailable), -ECANCELED, -EPROTO. *ret_error (owned) says why in words, never with a
 * secret. */
int imap_session_connect(ImapSession *s, char **ret_error);
/* The same over fd, a connected socket (taken over, closed with the session), for an
 * account with tls = none: tests and the IMAP fuzzer talk to the session through a
 * socketpair. */
int imap_session_connect_fd(ImapSession *s, int fd, char **ret_error);
/* Called (in the session's thread) whenever a command receives data: a watchdog's sign of
 * life. */
typedef void (*ImapProgressFunc)(void *userdata);
void imap_session_set_progress(ImapSession *s, ImapProgressFunc f, void *userdata);
/* Frees without waiting: LOGOUT is only sent by imap_logout(). */
ImapSession *imap_session_free(ImapSession *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImapSession *, imap_session_free);
/* From any thread, as long as the session is not being freed: aborts the command in progress
 * and every later one (they fail with -ECANCELED). */
void imap_session_cancel(ImapSession *s);
/* The last error's text (borrowed, valid until the next call). */
const char *imap_last_error(const ImapSession *s);
bool imap_has_capability(ImapSession *s, const char *name);
bool imap_has_idle(ImapSession *s);

/* Every folder (LIST "" "*"), with special-use flags (RFC 6154). */
int imap_list(ImapSession *s, ImapFolder **ret, size_t *ret_n);

typedef struct ImapFolderState {
        uint32_t uidvalidity;
        uint32_t uidnext;
        uint32_t exists;
        uint64_t highest_modseq; /* 0 when CONDSTORE is not offered */
} ImapFolderState;

/* EXAMINE (RFC 3501 §6.3.2: read-only, \Seen never set). -ENOENT: no such folder. */
int imap_examine(ImapSession *s, const char *folder, ImapFolderState *ret);
/* The same, its answer read by the next command (one round trip less when that is
 * imap_fetch_parts(), whose first FETCH goes with it): *ret (borrowed until then) holds the
 * state expected until the answer fills it. The next command fails with -ENOENT when the folder
 * cannot be opened, -ESTALE when its UIDVALIDITY is not uidvalidity (no message handed over
 * either way, the session still usable). */
int imap_examine_ahead(ImapSession *s, const char *folder, uint32_t uidvalidity, ImapFolderState *ret);
/* True when the selected folder grew past `exists` messages (an EXISTS the server sent
 * during the last commands). */
bool imap_has_new_mail(ImapSession *s, uint32_t exists);
/* STATUS (UIDNEXT UIDVALIDITY MESSAGES [HIGHESTMODSEQ]) of a folder that is not selected:
 * polling without opening it. */
int imap_status(ImapSession *s, const char *folder, ImapFolderState *ret);

/* UIDs >= first_uid of the selected folder whose internal date is on or after since (epoch
 * seconds, 0: any), ascending. Filters out the highest UID that "n:*" returns even when it is
 * below n. */
int imap_search(ImapSession *s, uint32_t first_uid, int64_t since, uint32_t **ret, size_t *ret_n);

/* UIDs >= first_uid whose From contains one of domains or whose Subject or From contains one of
 * keywords: header-only keys, cheap on the server. Used to fetch likely code mail first; never
 * to decide that a message is not worth reading. -EOPNOTSUPP when the server refused. */
int imap_search_candidates(ImapSession *s, uint32_t first_uid, char *const *domains,
                           char *const *keywords, uint32_t **ret, size_t *ret_n);

/* A first look at folders not read yet, in one round trip (EXAMINE and the candidate SEARCH of
 * imap_search_candidates() over first_uid:last_uid for each, pipelined): the folder's state and
 * its likely code mail.
 * r is 0, -ENOENT (the folder cannot be opened) or -EOPNOTSUPP (the search was refused). The
 * session ends with the last folder selected. Returns -EOPNOTSUPP when there is nothing to
 * search for. */
typedef struct ImapScout {
        const char *folder; /* in: as the server names it */
        uint32_t first_uid, last_uid; /* in: the UIDs to search, first_uid:last_uid (0, 0: all;
                                       * last_uid 0: to the end) */
        ImapFolderState st; /* highest_modseq left 0 */
        uint32_t *uids;     /* ascending, owned by the caller */
        size_t n;
        int r;
} ImapScout;
/* STATUS (UIDVALIDITY UIDNEXT MESSAGES) of every folder of f, in one round trip: f[i].st, and
 * f[i].r 0 or -ENOENT (NO: gone since LIST, say). The selected folder stays as it was. */
int imap_status_all(ImapSession *s, ImapScout *f, size_t n);
int imap_scout(ImapSession *s, ImapScout *f, size_t n, char *const *domains, char *const *keywords);

/* One fetched message. data is borrowed for the duration of the callback. */
typedef struct ImapMessage {
        uint32_t uid;
        const char *data;
        size_t size;    /* bytes in data */
        uint32_t full_size; /* RFC822.SIZE */
        bool truncated; /* full_size > size: only the first size bytes are in data */
        uint32_t settled; /* every UID asked for up to this one has been handed over (or is gone) */
        char *const *labels; /* Gmail (X-GM-EXT-1): its X-GM-LABELS, decoded ("INBOX" for
                              * \Inbox, "Important" for \Important...), or NULL */
        bool alternatives_left_out; /* imap_fetch_parts(): an HTML alternative is empty */
} ImapMessage;

/* An ImapFetchFunc's answer to a message with alternatives_left_out: read it again with them. */
#define IMAP_FETCH_AGAIN 1

typedef int (*ImapFetchFunc)(const ImapMessage *m, void *userdata);

/* Streams BODY.PEEK[]<0.max_size> of the given UIDs (ascending; n == 0 with first_uid > 0
 * means "first_uid:*") in one command: cb sees each message as soon as it is parsed, in the
 * server's order, and memory stays bounded by one message. UIDs below first_uid are skipped.
 * cb returning < 0 stops reading (the session must then be dropped). */
int imap_fetch(ImapSession *s, const uint32_t *uids, size_t n, uint32_t first_uid,
               size_t max_size, ImapFetchFunc cb, void *userdata);

/* Headers and text parts only, for every message: BODYSTRUCTURE first, then the top header,
 * every part's MIME header (and attached messages' headers) and the bodies of text/plain and
 * text/html parts (up to max_part each), put back together as one message in which other
 * parts are empty: what the MIME parser reads in it is what it reads in the whole message.
 * A message whose structure cannot be written back is read whole, up to max_whole bytes.
 * uids as for imap_fetch(); with n == 0, "first_uid:*" but for the UIDs in skip (ascending): a
 * folder of up to 1,000 messages (by its last EXAMINE) has its structures read at once, a
 * larger one is listed with SEARCH first. Messages come in batches of
 * at most 1,000 UIDs, not in UID order within a batch; after each batch cb sees an
 * ImapMessage with uid 0 whose settled says that every UID up to it is done. A few round
 * trips per batch whatever the number of messages (commands are pipelined); memory bounded
 * by one message (and what a batch keeps of the messages read again, 16 MiB at most).
 * In a batch of 64 messages or more, a text/html part next to a text/plain one of 256 bytes or
 * more in a multipart/alternative (the same text, RFC 2046) is left out, its body empty
 * (alternatives_left_out): cb returns IMAP_FETCH_AGAIN to see the message again, later in the
 * same batch, with it (one more round trip for the batch). */
int imap_fetch_parts(ImapSession *s, const uint32_t *uids, size_t n, uint32_t first_uid, const uint32_t *skip,
                     size_t n_skip, size_t max_part, size_t max_whole, ImapFetchFunc cb, void *userdata);

/* imap_fetch_parts() of the given UIDs of several folders at once: every folder's EXAMINE and
 * structures in one round trip, then every folder's sections in another (each folder's EXAMINE
 * again before its first), where one folder after the other takes two round trips each.
 * Nothing is left out (these are the likely code mail, read first). Each
 * job's uids (ascending, 1 to IMAP_PARTS_JOB_MAX of them) go to its cb, then a settled message; its result
 * in r: 0, -ENOENT (cannot be opened), -ESTALE (its UIDVALIDITY is no longer uidvalidity; no
 * message handed over), or what imap_fetch_parts() would return. The function's own result is
 * an error for the connection (or -EINVAL: a job with no UIDs or too many). */
#define IMAP_PARTS_JOB_MAX 1000
typedef struct ImapPartsJob {
        const char *folder;
        uint32_t uidvalidity;
        ImapFolderState *st;      /* its EXAMINE's answer */
        const uint32_t *uids;
        size_t n;
        ImapFetchFunc cb;
        void *userdata;
        int r;
} ImapPartsJob;
int imap_fetch_parts_folders(ImapSession *s, ImapPartsJob *jobs, size_t n, size_t max_part, size_t max_whole);

/* RFC 2177 IDLE on the selected folder. imap_idle_start() returns the fd to poll for input;
 * imap_idle_pending() is true when libetpan already buffered the server's news (then poll()
 * would not see it); imap_idle_done() ends IDLE. */
int imap_idle_start(ImapSession *s, int *ret_fd);
bool imap_idle_pending(ImapSession *s);
/* While idling, when the fd is readable or imap_idle_pending(): reads the untagged lines that
 * arrived. Returns 0 when they were only keep-alives ("* OK Still here", RFC 2177 §3: servers
 * send them to keep the connection up), so IDLE goes on untouched; 1 when something else came
 * (EXISTS, EXPUNGE, BYE, a NOTIFY STATUS or NOTIFICATIONOVERFLOW...): end IDLE and look. < 0
 * when the connection is gone. */
int imap_idle_read(ImapSession *s);
int imap_idle_done(ImapSession *s);

/* NOTIFY (RFC 5465): one connection watches every folder. imap_notify_set() asks for
 * "* N EXISTS" on the selected folder and "* STATUS <folder> (...)" for each of folders (as
 * the server names them) when mail arrives or goes: -EOPNOTSUPP when the server has no NOTIFY,
 * refused it, or a name cannot be sent (then watch the old way). From then on, every
 * notification is recorded, whether it came during IDLE (imap_idle_read() returns 1) or mixed
 * into another command's answer (libetpan drops those): imap_notify_take() hands over the
 * folders named since the last call (owned strv, or NULL) and sets *ret_all when every folder
 * must be looked at (NOTIFICATIONOVERFLOW, a name it could not read); false when nothing came.
 * imap_status() of a folder forgets what was recorded for it (its answer says it all).
 * With mailbox_names, it also asks for MailboxName events in the personal namespace (a folder
 * created, deleted or renamed: "* LIST" lines): imap_notify_folders_changed() says one came
 * since the last imap_list() (which forgets them: its answer says it all); -EOPNOTSUPP when
 * the server refused that (try again without). */
bool imap_has_notify(ImapSession *s);
int imap_notify_set(ImapSession *s, char *const *folders, bool mailbox_names);
bool imap_notify_take(ImapSession *s, char ***ret_names, bool *ret_all);
bool imap_notify_pending(ImapSession *s);
bool imap_notify_folders_changed(ImapSession *s);

/* How many times the server said "OK [THROTTLED]" since the last call (Gmail: the command is
 * done, but slow down; untagged, or at the end of a command's OK), then forgets them. A
 * refusal ("NO [THROTTLED]") is an error of the command instead (-EBUSY). */
unsigned imap_throttled_take(ImapSession *s);

/* LOGOUT politely (bounded by the timeout). */
void imap_logout(ImapSession *s);

/* Modified UTF-7 (RFC 3501 §5.1.3) to UTF-8. Invalid input is returned as is. */
char *imap_utf7_decode(const char *name);
