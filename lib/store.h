/* The code store: one SQLite file (WAL, foreign keys, busy timeout), schema versioned with
 * PRAGMA user_version and migrated forward on open by writers. Writers (the daemon, `scan
 * --store`) commit a StoreBatch in one transaction: the messages, their codes (deduplicated by
 * UNIQUE constraints, never SELECT-then-INSERT) and the folder cursor that covers them, so that
 * a crash replays and never skips. Readers (the CLI) open it read-only and never block writers.
 *
 * Code lifecycle, kept by the writer so that readers only read columns:
 * - `otp` codes carry an expiry (the message date + STORE_OTP_LIFETIME_SEC); they are shown as
 *   expired afterwards and deleted once expired for longer than the OTP retention.
 * - For the kinds a person holds one of at a time (specific, company, access, otp), the newest
 *   trusted code supersedes every older code of its kind: both are kept, the older is marked.
 *   Request and file numbers name different requests and never supersede each other.
 *
 * A Store belongs to one thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "message.h"

typedef struct Store Store;

typedef enum StoreMode {
        STORE_READ_ONLY,
        STORE_READ_WRITE, /* creates the file (0600) and its folder (0700) when missing */
        STORE_READ_WRITE_EXISTING, /* read-write, -ENOENT when missing (alcode forget) */
} StoreMode;

/* The schema this program writes; store.c holds one migration per earlier version. */
#define STORE_SCHEMA_VERSION 3

#define STORE_OTP_LIFETIME_SEC (30 * 60)
#define STORE_OTP_RETENTION_DEFAULT_SEC (7 * 86400)

/* Opens path. Errors: -ENOENT (missing, read-only mode), -EACCES (not readable, or not writable
 * in read-write mode), -EROFS (read-only file system or file in read-write mode), -EISDIR,
 * -EPROTO (newer schema than this program), -ENODATA (read-only: an empty file, no schema yet),
 * -ESTALE (read-only: an older schema that a writer must migrate first), -EBADMSG (not a
 * database, or damaged; a schema version this program never wrote, negative ones included),
 * -ELOOP (path is a symbolic link: readers and writers alike open only the file itself),
 * -EBUSY (locked beyond the busy timeout). ret_error (may be NULL) gets
 * a text for the user (SQLite's own when there is one), owned by the caller. */
int store_open(const char *path, StoreMode mode, Store **ret, char **ret_error);
Store *store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close);

/* SQLite's text for the last failure on s (valid until the next call on s). */
const char *store_last_error(Store *s);
/* How long a write waits for another writer's lock before failing with -EBUSY (the daemon
 * keeps it short: its main loop must not stall; it retries later instead). */
void store_set_busy_timeout(Store *s, unsigned msec);
/* The path s was opened with (owned by s), and whether it was opened read-only. */
const char *store_path(const Store *s);
bool store_is_read_only(const Store *s);

/* The default path: $XDG_DATA_HOME/alcode/alcode.db or ~/.local/share/alcode/alcode.db (user_path()). */
int store_default_path(char **ret);

/* How long an expired otp code is kept before a commit deletes it (0: as soon as it expires;
 * negative: the default, STORE_OTP_RETENTION_DEFAULT_SEC). */
void store_set_otp_retention(Store *s, int64_t seconds);

/* What one commit covers: the messages of one folder (or of local files: account and folder
 * NULL), and the cursor position they bring the folder to. */
typedef struct StoreBatch {
        const char *account;
        const char *folder;
        uint32_t uidvalidity;
        uint32_t last_uid;        /* cursor: every UID <= last_uid has been read */
        uint64_t highest_modseq;
        bool move_cursor;
        uint32_t messages_seen;   /* messages read for this batch (for status), with or without codes */
        Message *const *messages; /* borrowed; only those with codes are stored */
        size_t n_messages;
} StoreBatch;

/* A stored code with what the user and notifications need. All strings owned. */
typedef struct StoredCode {
        int64_t id;
        CodeKind kind;
        char *value;       /* NULL for a possible code */
        char *display;     /* NULL for a possible code */
        bool trusted;
        char *sender;      /* or NULL */
        char *sender_name; /* or NULL */
        int64_t date;      /* of the message that brought it */
        int date_tz;
        char *account;     /* "" for local files */
        char *folder;      /* "" for local files */
        char *subject;     /* or NULL */
        int64_t found_at;
        int64_t expires_at; /* 0: does not expire */
        bool expired;
        bool superseded;   /* a newer trusted code of the same kind exists */
} StoredCode;

void stored_code_done(StoredCode *c);
void stored_codes_free(StoredCode *c, size_t n);

/* Commits b in one transaction, then deletes otp codes expired beyond the retention.
 * ret_new (may be NULL) receives the codes that were not in the store before, or were known
 * only from untrusted mail and now come from a trusted sender (for notification). Returns 0,
 * or -errno with the store unchanged. */
int store_commit(Store *s, const StoreBatch *b, StoredCode **ret_new, size_t *ret_n_new);

/* Folder cursor: 0 and *ret_* set, or -ENOENT when the folder was never synced. */
int store_get_cursor(Store *s, const char *account, const char *folder, uint32_t *ret_uidvalidity,
                     uint32_t *ret_last_uid, uint64_t *ret_highest_modseq);
typedef struct StoreCursor {
        char *account;
        char *folder;
        uint32_t uidvalidity;
        uint32_t last_uid;
        uint64_t highest_modseq;
        uint64_t messages_seen;
        int64_t updated_at;
} StoreCursor;

/* Every folder cursor of account (NULL: of every account), by account then folder. */
int store_list_cursors(Store *s, const char *account, StoreCursor **ret, size_t *ret_n);
void store_cursors_free(StoreCursor *c, size_t n);

/* Forgets cursors of account (every folder; NULL: all accounts) so the next sync rescans. */
int store_reset_cursors(Store *s, const char *account);

typedef struct StoreFilter {
        CodeKind kind;       /* _CODE_KIND_INVALID: any */
        const char *account; /* NULL: any; else codes seen in that account */
        bool untrusted_only;
        bool trusted_only;
        bool unexpired_only;
        int64_t id;          /* > 0: only this one */
        size_t limit;        /* 0: no limit */
} StoreFilter;

#define STORE_FILTER_ALL ((StoreFilter) { .kind = _CODE_KIND_INVALID })

/* Codes matching f, newest first. */
int store_list(Store *s, const StoreFilter *f, StoredCode **ret, size_t *ret_n);
/* One message a code was seen in (full provenance for `alcode show`). */
typedef struct StoreSighting {
        char *account;     /* "" for local files */
        char *folder;
        char *source;      /* file path for local files, "" for IMAP */
        uint32_t uidvalidity;
        uint32_t uid;
        char *message_id;  /* or NULL */
        char *sender;      /* or NULL */
        int64_t date;
        int date_tz;
        char *rule;
        bool trusted;
        char *labels;      /* Gmail: the message's labels, ", "-separated, or NULL */
} StoreSighting;

int store_list_sightings(Store *s, int64_t code_id, StoreSighting **ret, size_t *ret_n);
void store_sightings_free(StoreSighting *l, size_t n);

/* Removes one code (and messages left without codes). -ENOENT when there is no such id. */
int store_forget(Store *s, int64_t id);

/* Per-account statistics: messages seen, codes found (possible codes not counted), last sync
 * (seconds since epoch). */
int store_account_stats(Store *s, const char *account, uint64_t *ret_messages, uint64_t *ret_codes,
                        int64_t *ret_last_sync);

/* How many possible codes (kind "possible": a trusted sender's mail that speaks of a code no
 * rule read) the store holds. */
int store_count_possible(Store *s, uint64_t *ret);

