/* store-writer: commits messages through the real store_commit(), for the integration tests
 * and bench/store, which need stores with chosen contents and a writer busy beside the CLI.
 *
 *   store-writer DB              reads messages from stdin, one code per line, tab-separated:
 *                                  account folder uidvalidity uid kind value display trusted
 *                                  sender date tz subject
 *                                (kind "possible": value and display are "-", not stored)
 *                                (account "-": a local file, whose path is the folder field;
 *                                consecutive lines with the same account, folder and uid are one
 *                                message), or "@cursor account folder uidvalidity last_uid seen".
 *                                Consecutive messages of one folder are one batch, which moves
 *                                that folder's cursor to its highest uid.
 *   store-writer DB --fill N     stores N synthetic codes of every kind over two years.
 *   store-writer DB --churn SEC  commits one new code at a time for SEC seconds, or until
 *                                SIGTERM; prints the number of commits; exits 1 if one failed. */
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "store.h"
#include "strv.h"

#define BATCH_MAX 1000

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
        (void) sig;
        stop = 1;
}

typedef struct Batch {
        char *account; /* NULL: local files */
        char *folder;
        uint32_t uidvalidity, last_uid;
        Message *messages[BATCH_MAX];
        size_t n;
} Batch;

static int flush(Store *s, Batch *b) {
        StoreBatch sb = {
                .account = b->account, .folder = b->account ? b->folder : NULL,
                .uidvalidity = b->uidvalidity, .last_uid = b->last_uid, .move_cursor = b->account != NULL,
                .messages_seen = (uint32_t) b->n, .messages = b->messages, .n_messages = b->n,
        };
        StoredCode *fresh = NULL;
        size_t n_fresh = 0;
        int r = 0;

        if (b->n > 0) {
                r = store_commit(s, &sb, &fresh, &n_fresh);
                stored_codes_free(fresh, n_fresh);
                if (r < 0)
                        fprintf(stderr, "store-writer: commit failed: %s (%s)\n", strerror(-r), store_last_error(s));
        }
        for (size_t i = 0; i < b->n; i++)
                message_free(b->messages[i]);
        b->n = 0;
        return r;
}

static Message *new_message(const char *account, const char *folder, uint32_t uidvalidity, uint32_t uid,
                            const char *sender, int64_t date, int tz, const char *subject) {
        Message *m = calloc(1, sizeof(Message));

        if (!m)
                return NULL;
        *m = (Message) { .ref = { .uidvalidity = uidvalidity, .uid = uid }, .date = date, .date_tz = tz };
        if (account) {
                m->ref.account = strdup(account);
                m->ref.folder = strdup(folder);
        } else
                m->ref.source = strdup(folder);
        m->sender = strdup(sender);
        m->subject = strdup(subject);
        if (asprintf(&m->message_id, "<%u.%u.%s@store-writer>", uidvalidity, uid, account ?: "local") < 0)
                m->message_id = NULL;
        if (!m->sender || !m->subject || !m->message_id || (account ? !m->ref.folder : !m->ref.source))
                return message_free(m);
        return m;
}

static int add_code(Message *m, CodeKind kind, const char *value, const char *display, bool trusted) {
        Code c = { .kind = kind, .value = (char *) value, .display = (char *) display, .trusted = trusted,
                   .rule = (char *) "store-writer@1" };
        return message_add_code(m, &c) < 0 ? -ENOMEM : 0;
}

/* Starts a new batch when the folder changes or the batch is full. */
static int batch_for(Store *s, Batch *b, const char *account, const char *folder, uint32_t uidvalidity) {
        int r;

        if (b->n > 0 && b->n < BATCH_MAX && streq_ptr(b->account, account) && streq(b->folder, folder) &&
            b->uidvalidity == uidvalidity)
                return 0;
        r = flush(s, b);
        free(b->account);
        free(b->folder);
        b->account = account ? strdup(account) : NULL;
        b->folder = strdup(folder);
        b->uidvalidity = uidvalidity;
        b->last_uid = 0;
        return r < 0 ? r : (!b->folder || (account && !b->account)) ? -ENOMEM : 0;
}

static int read_lines(Store *s) {
        Batch b = {};
        char *line = NULL;
        size_t size = 0;
        unsigned line_no = 0;
        int r = 0;

        while (r >= 0 && getline(&line, &size, stdin) >= 0) {
                _cleanup_strv_free_ char **f = NULL;
                size_t n = 0;
                char *p = line, *tab;

                line_no++;
                line[strcspn(line, "\n")] = 0;
                if (!*line)
                        continue;
                for (;;) {
                        tab = strchr(p, '\t');
                        if (tab)
                                *tab = 0;
                        if (strv_extend(&f, p) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        n++;
                        if (!tab)
                                break;
                        p = tab + 1;
                }
                if (r < 0)
                        break;
                if (streq(f[0], "@cursor") && n == 6) {
                        Message *none[1];
                        StoreBatch sb = { .account = f[1], .folder = f[2], .uidvalidity = (uint32_t) atol(f[3]),
                                          .last_uid = (uint32_t) atol(f[4]), .move_cursor = true,
                                          .messages_seen = (uint32_t) atol(f[5]), .messages = none };
                        r = flush(s, &b);
                        if (r >= 0)
                                r = store_commit(s, &sb, NULL, NULL);
                        continue;
                }
                if (n != 12 || code_kind_from_string(f[4]) < 0) {
                        fprintf(stderr, "store-writer: stdin:%u: expected 12 tab-separated fields\n", line_no);
                        r = -EINVAL;
                        break;
                }
                const char *account = streq(f[0], "-") ? NULL : f[0];
                uint32_t uidvalidity = (uint32_t) atol(f[2]), uid = (uint32_t) atol(f[3]);
                r = batch_for(s, &b, account, f[1], uidvalidity);
                if (r < 0)
                        break;
                Message *last = b.n > 0 ? b.messages[b.n - 1] : NULL;
                if (!last || last->ref.uid != uid) {
                        last = new_message(account, f[1], uidvalidity, uid, f[8], atoll(f[9]), atoi(f[10]), f[11]);
                        if (!last) {
                                r = -ENOMEM;
                                break;
                        }
                        b.messages[b.n++] = last;
                        b.last_uid = MAX(b.last_uid, uid);
                }
                /* A possible code has no value ("-" in both columns). */
                if (code_kind_from_string(f[4]) == CODE_KIND_POSSIBLE)
                        r = add_code(last, CODE_KIND_POSSIBLE, NULL, NULL, streq(f[7], "1"));
                else
                        r = add_code(last, code_kind_from_string(f[4]), f[5], f[6], streq(f[7], "1"));
        }
        free(line);
        if (r >= 0)
                r = flush(s, &b);
        for (size_t i = 0; i < b.n; i++)
                message_free(b.messages[i]);
        free(b.account);
        free(b.folder);
        return r;
}

static const char *const folders[] = { "INBOX", "Junk", "Archives/2024", "Archives/2025", "Trash" };

static int fill(Store *s, unsigned long count) {
        Batch b = {};
        uint32_t uids[2][ELEMENTSOF(folders)] = {};
        int64_t now = (int64_t) time(NULL);
        int r = 0;

        /* Keep every code asked for, old login codes too. */
        store_set_otp_retention(s, INT64_MAX / 2);
        /* Grouped by folder so that batches are full: i walks the folders in blocks. */
        for (unsigned long i = 0; r >= 0 && i < count; i++) {
                unsigned long block = i / BATCH_MAX;
                size_t folder = block % ELEMENTSOF(folders), account = (block / ELEMENTSOF(folders)) % 2;
                CodeKind kind = (CodeKind) (i % CODE_KIND_POSSIBLE); /* every kind a rule finds */
                bool trusted = i % 10 != 0;
                char value[32], display[40];
                Message *m;

                r = batch_for(s, &b, account ? "travail" : "perso", folders[folder], 1700000000);
                if (r < 0)
                        break;
                (void) snprintf(value, sizeof value, "%c%07lu", 'A' + kind, i);
                (void) snprintf(display, sizeof display, "%.4s %s", value, value + 4);
                m = new_message(b.account, b.folder, 1700000000, ++uids[account][folder],
                                trusted ? "ne-pas-repondre@actionlogement.fr" : "alerte@action-logement-securite.com",
                                now - (int64_t) (count - i) * 600, 60, "Votre code");
                if (!m) {
                        r = -ENOMEM;
                        break;
                }
                b.messages[b.n++] = m;
                b.last_uid = MAX(b.last_uid, m->ref.uid);
                r = add_code(m, kind, value, display, trusted);
        }
        if (r >= 0)
                r = flush(s, &b);
        for (size_t i = 0; i < b.n; i++)
                message_free(b.messages[i]);
        free(b.account);
        free(b.folder);
        return r;
}

static int churn(Store *s, unsigned seconds) {
        time_t end = time(NULL) + seconds;
        unsigned long commits = 0;
        int r = 0;

        while (!stop && time(NULL) < end) {
                Message *m = new_message("churn", "INBOX", 1, (uint32_t) commits + 1,
                                         "ne-pas-repondre@actionlogement.fr", (int64_t) time(NULL), 60, "Churn");
                char value[32];
                StoreBatch sb = { .account = "churn", .folder = "INBOX", .uidvalidity = 1,
                                  .last_uid = (uint32_t) commits + 1, .move_cursor = true, .messages_seen = 1,
                                  .messages = &m, .n_messages = 1 };

                (void) snprintf(value, sizeof value, "R%09lu", commits);
                if (!m || add_code(m, CODE_KIND_REQUEST, value, value, true) < 0) {
                        message_free(m);
                        return -ENOMEM;
                }
                r = store_commit(s, &sb, NULL, NULL);
                message_free(m);
                if (r < 0) {
                        fprintf(stderr, "store-writer: commit %lu failed: %s (%s)\n", commits, strerror(-r),
                                store_last_error(s));
                        break;
                }
                commits++;
        }
        printf("%lu\n", commits);
        return r;
}

int main(int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        if (argc != 2 && !(argc == 4 && (streq(argv[2], "--fill") || streq(argv[2], "--churn")))) {
                fprintf(stderr, "usage: store-writer DB [--fill N | --churn SECONDS] (see the source)\n");
                return 2;
        }
        (void) signal(SIGTERM, on_signal);
        (void) signal(SIGINT, on_signal);
        r = store_open(argv[1], STORE_READ_WRITE, &s, &error);
        if (r < 0) {
                fprintf(stderr, "store-writer: %s: %s\n", argv[1], error ?: strerror(-r));
                return 1;
        }
        if (argc == 2)
                r = read_lines(s);
        else if (streq(argv[2], "--fill"))
                r = fill(s, strtoul(argv[3], NULL, 10));
        else
                r = churn(s, (unsigned) strtoul(argv[3], NULL, 10));
        return r < 0 ? 1 : 0;
}
