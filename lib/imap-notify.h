/* What an IMAP server's NOTIFY (RFC 5465) said, read from the raw bytes of the session.
 *
 * libetpan knows nothing of NOTIFY: an unsolicited "* STATUS Trash (...)" that arrives in the
 * middle of another command's answer is parsed and dropped (it keeps the last STATUS only).
 * So imap.c feeds every byte the server sends through this scanner, which notes the mailboxes
 * that "* STATUS" lines name and "* OK [NOTIFICATIONOVERFLOW]". Bytes come in any chunks
 * (a line may be cut anywhere). A line inside a literal (a message body) that looks like a
 * notification is taken as one: that costs a STATUS round trip, never a lost message.
 *
 * It also notes "* LIST" lines (RFC 5465 MailboxName: a folder created, deleted or renamed) and
 * Gmail's "OK [THROTTLED]" (untagged, or at the end of a command's OK: done, but slow down). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

#define IMAP_NOTIFY_LINE_MAX 512u  /* longer STATUS lines: the name is not read, `all` is set */
#define IMAP_NOTIFY_NAMES_MAX 64u  /* more distinct names: `all` is set */

typedef struct ImapNotifyScan {
        char line[IMAP_NOTIFY_LINE_MAX];
        size_t len;
        bool skipping;  /* the rest of this line is of no interest */
        char **names;   /* mailboxes named by "* STATUS" (as sent: modified UTF-7), no repeats */
        size_t n_names;
        bool all;       /* NOTIFICATIONOVERFLOW, a name that could not be read, or too many */
        bool folders_changed; /* a "* LIST" line: not forgotten by imap_notify_scan_clear() */
        unsigned events;
        unsigned throttled;   /* "OK [THROTTLED]" lines: not forgotten by imap_notify_scan_clear() */
} ImapNotifyScan;

void imap_notify_scan_feed(ImapNotifyScan *n, const char *p, size_t k);
/* Forgets the names and flags (not the position in the current line). */
void imap_notify_scan_clear(ImapNotifyScan *n);
/* Forgets name (after a STATUS of it answered what the notification would have said). */
void imap_notify_scan_forget(ImapNotifyScan *n, const char *name);
