/* See imap-notify.h. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-notify.h"

static const char status_prefix[] = "* STATUS ";
static const char overflow_prefix[] = "* OK [NOTIFICATIONOVERFLOW]";
static const char list_prefix[] = "* LIST ";
static const char throttled_prefix[] = "* OK [THROTTLED]";
static const char throttled_code[] = "[THROTTLED]";

static bool prefix_of(const char *p, size_t n, const char *full) {
        size_t m = strlen(full);
        return strncasecmp(p, full, n < m ? n : m) == 0;
}

static bool same_name(const char *a, const char *b) {
        /* RFC 3501 §5.1: INBOX in any case is INBOX. */
        return strcasecmp(a, "INBOX") == 0 ? strcasecmp(b, "INBOX") == 0 : strcmp(a, b) == 0;
}

static void add_name(ImapNotifyScan *n, char *name) {
        char **l;

        for (size_t i = 0; i < n->n_names; i++)
                if (same_name(n->names[i], name)) {
                        free(name);
                        return;
                }
        if (n->n_names >= IMAP_NOTIFY_NAMES_MAX || !(l = realloc(n->names, (n->n_names + 2) * sizeof(char *)))) {
                free(name);
                n->all = true;
                return;
        }
        n->names = l;
        n->names[n->n_names++] = name;
        n->names[n->n_names] = NULL;
}

/* The mailbox of "* STATUS <mailbox> (...)": an atom or a quoted string. A literal, or anything
 * unreadable, means "look everywhere". */
static void parse_status(ImapNotifyScan *n, const char *p, size_t len) {
        char *name = malloc(len + 1), *o = name;
        size_t i = 0;

        if (!name) {
                n->all = true;
                return;
        }
        if (len > 0 && p[0] == '"') {
                for (i = 1; i < len && p[i] != '"'; i++) {
                        if (p[i] == '\\' && i + 1 < len)
                                i++;
                        *o++ = p[i];
                }
                if (i >= len) { /* no closing quote */
                        free(name);
                        n->all = true;
                        return;
                }
        } else
                for (; i < len && p[i] != ' ' && p[i] != '(' && p[i] != '{' && p[i] != '"' && (unsigned char) p[i] > ' ';
                     i++)
                        *o++ = p[i];
        *o = 0;
        if (o == name) {
                free(name);
                n->all = true;
                return;
        }
        add_name(n, name);
}

#define TAG_MAX 16 /* libetpan's tags are numbers; a longer word starts no tagged line of ours */

/* The length of the tag of a tagged "OK" line, or 0 when p (n bytes, maybe the start of a line
 * only) cannot be one. Called for each byte of a line's start: bounded work per byte. */
static size_t tagged_ok(const char *p, size_t n) {
        size_t i = 0;

        while (i < n && i <= TAG_MAX && (isalnum((unsigned char) p[i]) || p[i] == '.'))
                i++;
        if (i == 0 || i > TAG_MAX || (i < n && !prefix_of(p + i, n - i, " OK ")))
                return 0;
        return i;
}

/* Whether the n bytes at the start of a line may still be one that counts. */
static bool wanted(const char *p, size_t n) {
        return prefix_of(p, n, status_prefix) || prefix_of(p, n, overflow_prefix) || prefix_of(p, n, list_prefix) ||
               prefix_of(p, n, throttled_prefix) || tagged_ok(p, n) > 0;
}

static bool contains(const char *p, size_t n, const char *word) {
        size_t m = strlen(word);

        for (size_t i = 0; i + m <= n; i++)
                if (strncasecmp(p + i, word, m) == 0)
                        return true;
        return false;
}

static bool starts(const ImapNotifyScan *n, const char *prefix) {
        size_t m = strlen(prefix);
        return n->len >= m && strncasecmp(n->line, prefix, m) == 0;
}

/* A whole line (without its CRLF) that starts like a notification, or a longer one cut. */
static void line_done(ImapNotifyScan *n, bool cut) {
        size_t sp = sizeof status_prefix - 1, op = sizeof overflow_prefix - 1;

        /* Gmail's "OK [THROTTLED]", untagged or as a command's answer: done, but slow down. */
        if (starts(n, throttled_prefix) ||
            (!starts(n, "* ") && tagged_ok(n->line, n->len) > 0 && contains(n->line, n->len, throttled_code)))
                n->throttled++;
        if (starts(n, list_prefix)) {
                /* RFC 5465 MailboxName: a folder was created, deleted or renamed (also our
                 * own LIST's answers: imap.c forgets those). */
                n->events++;
                n->folders_changed = true;
        } else if (n->len >= sp && strncasecmp(n->line, status_prefix, sp) == 0) {
                n->events++;
                if (cut)
                        n->all = true;
                else
                        parse_status(n, n->line + sp, n->len - sp);
        } else if (n->len >= op && strncasecmp(n->line, overflow_prefix, op) == 0) {
                n->events++;
                n->all = true;
        }
}

void imap_notify_scan_feed(ImapNotifyScan *n, const char *p, size_t k) {
        const char *end = p + k;

        while (p < end) {
                if (n->skipping) {
                        const char *nl = memchr(p, '\n', (size_t) (end - p));
                        if (!nl)
                                return;
                        p = nl + 1;
                        n->skipping = false;
                        n->len = 0;
                        continue;
                }
                char c = *p++;
                if (c == '\n') {
                        if (n->len > 0 && n->line[n->len - 1] == '\r')
                                n->len--;
                        line_done(n, false);
                        n->len = 0;
                        continue;
                }
                if (n->len == IMAP_NOTIFY_LINE_MAX) {
                        line_done(n, true);
                        n->skipping = true;
                        p--; /* c is not a newline: skipped with the rest of the line */
                        continue;
                }
                n->line[n->len++] = c;
                /* Not a notification: skip to the next line without copying it. */
                if (!wanted(n->line, n->len))
                        n->skipping = true;
        }
}

void imap_notify_scan_clear(ImapNotifyScan *n) {
        for (size_t i = 0; i < n->n_names; i++)
                free(n->names[i]);
        free(n->names);
        n->names = NULL;
        n->n_names = 0;
        n->all = false;
        n->events = 0;
}

void imap_notify_scan_forget(ImapNotifyScan *n, const char *name) {
        for (size_t i = 0; i < n->n_names; i++)
                if (same_name(n->names[i], name)) {
                        free(n->names[i]);
                        memmove(n->names + i, n->names + i + 1, (n->n_names - i) * sizeof(char *));
                        n->n_names--;
                        return;
                }
}
