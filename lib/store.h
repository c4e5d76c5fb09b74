/* The code store: one SQLite file (WAL, foreign keys, busy timeout), schema versioned with
 * PRAGMA user_version and migrated forward on open. Writers (the daemon, `scan --store`) commit
 * a StoreBatch in one transaction: the messages, their codes (deduplicated by UNIQUE
 * constraints, never SELECT-then-INSERT) and the folder cursor that covers them, so that a
 * crash replays and never skips. Readers (the CLI) open it read-only and never block writers.
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
} StoreMode;

#define STORE_SCHEMA_VERSION 1

/* Opens path. Errors: -ENOENT (missing, read-only mode), -EROFS/-EACCES (cannot write),
 * -EPROTO (newer schema than this program), -EBADMSG (not a database / corrupt), -EBUSY
 * (locked beyond the busy timeout). ret_error (may be NULL) gets SQLite's text. */
int store_open(const char *path, StoreMode mode, Store **ret, char **ret_error);
Store *store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close);

/* The default path: $XDG_DATA_HOME/alcode/alcode.db or ~/.local/share/alcode/alcode.db. */
int store_default_path(char **ret);

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
        char *value;
        char *display;
        bool trusted;
        char *sender;
        char *sender_name;
        int64_t date;     /* of the message that brought it */
        int date_tz;
        char *account;
        char *folder;
        char *subject;
        int64_t found_at;
        bool expired;
        bool superseded;  /* a newer trusted code of the same kind exists */
} StoredCode;

void stored_code_done(StoredCode *c);
void stored_codes_free(StoredCode *c, size_t n);

/* Commits b in one transaction. ret_new (may be NULL) receives the codes that were not in the
 * store before (for notification). Returns 0, or -errno with the store unchanged. */
int store_commit(Store *s, const StoreBatch *b, StoredCode **ret_new, size_t *ret_n_new);

/* Folder cursor: 0 and *ret_* set, or -ENOENT when the folder was never synced. */
int store_get_cursor(Store *s, const char *account, const char *folder, uint32_t *ret_uidvalidity,
                     uint32_t *ret_last_uid, uint64_t *ret_highest_modseq);
typedef struct StoreCursor {
        char *folder;
        uint32_t uidvalidity;
        uint32_t last_uid;
        uint64_t highest_modseq;
} StoreCursor;

/* Every folder cursor of account. */
int store_list_cursors(Store *s, const char *account, StoreCursor **ret, size_t *ret_n);
void store_cursors_free(StoreCursor *c, size_t n);

/* Forgets cursors of account (every folder; NULL: all accounts) so the next sync rescans. */
int store_reset_cursors(Store *s, const char *account);

typedef struct StoreFilter {
        CodeKind kind;       /* _CODE_KIND_INVALID: any */
        const char *account; /* NULL: any */
        bool untrusted_only;
        bool trusted_only;
        int64_t id;          /* > 0: only this one */
        size_t limit;        /* 0: no limit */
} StoreFilter;

#define STORE_FILTER_ALL ((StoreFilter) { .kind = _CODE_KIND_INVALID })

/* Codes matching f, newest first. */
int store_list(Store *s, const StoreFilter *f, StoredCode **ret, size_t *ret_n);
/* Writes matching codes as JSON Lines (one object per line, per DESIGN.md) to out, built by
 * SQLite's JSON functions. Returns the number written. */
int store_write_json(Store *s, const StoreFilter *f, FILE *out);
/* CSV export of every code with provenance (RFC 4180 quoting). */
int store_write_csv(Store *s, FILE *out);
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
} StoreSighting;

int store_list_sightings(Store *s, int64_t code_id, StoreSighting **ret, size_t *ret_n);
void store_sightings_free(StoreSighting *l, size_t n);

/* Removes one code (and messages left without codes). -ENOENT when there is no such id. */
int store_forget(Store *s, int64_t id);

/* Per-account statistics: messages seen, codes found, last sync (seconds since epoch). */
int store_account_stats(Store *s, const char *account, uint64_t *ret_messages, uint64_t *ret_codes,
                        int64_t *ret_last_sync);

/* JSON for codes that are not stored (alcode scan): one line per code of m, built with an
 * in-memory SQLite's json_object(). */
int store_json_for_message(const Message *m, FILE *out);
