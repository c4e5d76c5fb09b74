/* alcode scan: the daemon's pipeline over local mail: .eml files, Maildir folders (cur/, new/,
 * Maildir++ ".Folder" subfolders), mbox files (Google Takeout: "From " separators, ">From "
 * quoting) and folders of them.
 *
 * Small files are read into one reused buffer (cheaper than a mapping per message); large
 * ones (mbox) are mapped, and their messages handed to the pipeline in place unless a
 * ">From " line has to be unquoted. Every message is named by its file, and by its line in
 * an mbox ("Takeout.mbox:1234"), in output, warnings and errors. Unreadable input is
 * reported and skipped; the exit status is then 2. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cli.h"
#include "store-format.h"
#include "i18n.h"
#include "imap.h"
#include "log.h"
#include "pipeline.h"
#include "sender.h"
#include "strbuf.h"
#include "strv.h"

#define STORE_CHUNK 256
#define MAX_DEPTH 32
#define READ_MAX (1u << 20) /* files up to this size are read, larger ones mapped */

typedef struct ScanState {
        Pipeline *pipeline;
        Store *store;
        Message **batch;
        size_t n_batch;
        size_t n_files, n_messages, n_codes, n_new;
        bool bad_input;
        char *buf;      /* reused read buffer */
        size_t buf_alloc;
        StrBuf unquote; /* reused for mbox messages with ">From " lines */
} ScanState;

static int flush_store(ScanState *st) {
        StoredCode *fresh = NULL;
        size_t n_fresh = 0;
        int r = 0;

        if (st->store && st->n_batch > 0) {
                StoreBatch b = { .messages = st->batch, .n_messages = st->n_batch };
                r = store_commit(st->store, &b, &fresh, &n_fresh);
                if (r < 0)
                        fprintf(stderr, _("alcode: cannot store the codes: %s\n"), strerror(-r));
                st->n_new += n_fresh;
                stored_codes_free(fresh, n_fresh);
        }
        for (size_t i = 0; i < st->n_batch; i++)
                message_free(st->batch[i]);
        st->n_batch = 0;
        return r;
}

/* Everything printed below that came from outside (file names, what the mail says) goes
 * through cli_clean() / cli_write_text(): no byte of a mail drives the terminal. */
static void print_message(const Message *m) {
        _cleanup_free_ char *source = cli_clean(m->ref.source), *sender = cli_clean(m->sender);

        for (size_t i = 0; i < m->n_codes; i++) {
                const Code *c = &m->codes[i];
                _cleanup_free_ char *display = cli_clean(c->display), *value = cli_clean(c->value);

                if (c->kind == CODE_KIND_POSSIBLE) {
                        printf(_("%s: %s%-16s%s %s may hold a code no rule read: alcode scan --explain %s\n"),
                               strna(source), ansi_grey(), code_kind_to_words(c->kind), ansi_normal(), strna(sender),
                               strna(source));
                        continue;
                }
                printf("%s: %s%-16s%s %s%s%s", strna(source), ansi_grey(), code_kind_to_words(c->kind), ansi_normal(),
                       c->trusted ? ansi_bold() : ansi_red(), strna(display), ansi_normal());
                if (!streq(c->display, c->value))
                        printf(" (%s)", strna(value));
                printf("  %s%s%s\n", c->trusted ? "" : ansi_red(),
                       c->trusted ? strna(sender) : _("⚠ UNVERIFIED SENDER"), ansi_normal());
        }
}

static void explain_texts(const SenderInfo *s, const RuleText *texts, size_t n, void *userdata) {
        _cleanup_free_ char *address = cli_clean(s->address), *name = s->name ? cli_clean(s->name) : NULL;

        (void) userdata;
        printf(_("sender: %s"), strna(address));
        if (name)
                printf(" (%s)", name);
        printf("\n");
        if (s->employer)
                printf(_("  an employer domain (employer_domains)\n"));
        if (s->auth_passed)
                printf(_("  Authentication-Results: passed for its domain\n"));
        if (s->why)
                printf(_("  not trustworthy: %s\n"), s->why);
        if (s->auth_domain) {
                _cleanup_free_ char *d = cli_clean(s->auth_domain), *own = cli_clean(s->domain);
                printf(_("  Authentication-Results judged header.from=%s, not the From domain %s\n"), strna(d),
                       strna(own));
        }
        for (size_t i = 0; i < n; i++) {
                const RuleText *t = &texts[i];
                printf(_("--- text %zu (%s%s%s), as the rules see it:\n"), i, t->subject ? _("subject") : _("body"),
                       t->quoted ? _(", quoted or forwarded") : "",
                       t->attached ? _(", inside an attached message") : "");
                cli_write_text(stdout, t->text, t->len, true);
                printf("\n");
        }
        printf(_("--- rules:\n"));
}

static void explain_verdict(const RuleVerdict *v, void *userdata) {
        _cleanup_free_ char *display = v->display ? cli_cleann(v->display, v->display_len) : NULL;

        (void) userdata;
        if (v->kind == CODE_KIND_POSSIBLE) {
                printf(_("possible code (text %u at %zu): %s\n"), v->text_index, v->offset, v->rejected);
                return;
        }
        if (!v->display && v->ran) {
                printf(_("%s:%u: rule %s (%s) ran and found no candidate: %s\n"), v->file, v->line, v->rule,
                       code_kind_to_string(v->kind), v->rejected);
                return;
        }
        if (!v->display) {
                printf(_("%s:%u: rule %s (%s) did not run: %s\n"), v->file, v->line, v->rule,
                       code_kind_to_string(v->kind), v->rejected);
                return;
        }
        printf(_("%s:%u: rule %s (%s) found '%.*s' in text %u at %zu: %s%s%s\n"), v->file, v->line, v->rule,
               code_kind_to_string(v->kind), (int) strlen(strna(display)), strna(display), v->text_index, v->offset,
               v->rejected ? _("rejected, ") : _("accepted"), v->rejected ?: "",
               v->rejected ? "" : v->trusted ? _(" (trusted sender)") : _(" (untrusted)"));
}

static int scan_one(ScanState *st, const char *data, size_t size, const char *source, const char *folder) {
        _cleanup_strv_free_ char **warnings = NULL;
        MessageRef ref = { .source = (char *) source, .folder = (char *) folder };
        Message *m = NULL;
        int r;

        _cleanup_free_ char *shown = cli_clean(source);
        if (!shown)
                return -ENOMEM;
        if (arg_explain)
                printf(_("=== %s\n"), shown);
        r = pipeline_run(st->pipeline, data, size, &ref, &m, &warnings,
                         arg_explain ? explain_verdict : NULL, NULL);
        if (r < 0) {
                fprintf(stderr, _("alcode: %s: %s\n"), shown, strerror(-r));
                return r;
        }
        st->n_messages++;
        STRV_FOREACH(w, warnings) {
                _cleanup_free_ char *cw = cli_clean(*w);
                if (arg_explain)
                        printf(_("warning: %s\n"), strna(cw));
                else
                        fprintf(stderr, _("alcode: %s: %s\n"), shown, strna(cw));
        }
        if (arg_explain) {
                printf(_("=== %zu code(s)\n"), m->n_codes);
                print_message(m);
        }
        st->n_codes += m->n_codes;
        if (m->n_codes == 0) {
                message_free(m);
                return 0;
        }
        if (arg_json)
                (void) store_json_for_message(m, stdout);
        else if (!arg_explain)
                print_message(m);
        if (!st->store) {
                message_free(m);
                return 0;
        }
        st->batch[st->n_batch++] = m;
        return st->n_batch >= STORE_CHUNK ? flush_store(st) : 0;
}

/* "From sender date": what mboxrd writers put before each message (RFC 4155). */
static bool is_from_line(const char *line, size_t len, bool prev_blank) {
        const char *sp;

        if (len < 5 || memcmp(line, "From ", 5) != 0)
                return false;
        if (prev_blank)
                return true;
        /* Without a blank line before it, accept only a well-formed one: an address, then a
         * date with a time. */
        sp = memchr(line + 5, ' ', len - 5);
        return sp && sp > line + 5 && memchr(sp, ':', len - (size_t) (sp - line));
}

/* How many bytes at the start of p[0..n) are in set. The data may be a mapping that ends on a
 * page boundary with no NUL after it: never strspn() on it. */
static size_t span(const char *p, size_t n, const char *set) {
        size_t k = 0;

        while (k < n && p[k] && strchr(set, p[k]))
                k++;
        return k;
}

static int scan_mbox_message(ScanState *st, const char *data, size_t size, bool quoted,
                             const char *path, size_t line_no, const char *folder, const char *distrust) {
        char source[4096 + 32];
        int r;

        (void) snprintf(source, sizeof source, "%s:%zu", path, line_no);
        if (size == 0 || (size <= 2 && span(data, size, "\r\n") == size)) {
                _cleanup_free_ char *shown = cli_clean(source);
                fprintf(stderr, _("alcode: %s: empty message, skipping\n"), strna(shown));
                return 0;
        }
        if (quoted) {
                /* mboxrd: one '>' comes off every ">+From " line. */
                st->unquote.len = 0;
                for (size_t i = 0; i < size;) {
                        const char *nl = memchr(data + i, '\n', size - i);
                        size_t len = nl ? (size_t) (nl - data) - i + 1 : size - i;
                        size_t k = span(data + i, len, ">");
                        bool q = k > 0 && k < len && len - k >= 5 && memcmp(data + i + k, "From ", 5) == 0;

                        if (strbuf_append(&st->unquote, data + i + q, len - q) < 0)
                                return -ENOMEM;
                        i += len;
                }
                data = st->unquote.data;
                size = st->unquote.len;
        }
        pipeline_set_distrust(st->pipeline, distrust);
        r = scan_one(st, data, size, source, folder);
        pipeline_set_distrust(st->pipeline, NULL);
        return r;
}

/* Where the header block of the message at [p, p + n) ends (past its blank line), or n. */
static size_t header_end(const char *p, size_t n) {
        for (size_t i = 0; i < n;) {
                const char *nl = memchr(p + i, '\n', n - i);
                size_t len = nl ? (size_t) (nl - p) - i + 1 : n - i;
                if ((len == 1 && p[i] == '\n') || (len == 2 && p[i] == '\r'))
                        return i + len;
                i += len;
        }
        return n;
}

/* The unfolded value of the first field called name in the header block [h, h + n), into buf
 * (NUL-terminated, cut to size). Returns false when there is none. */
static bool header_field(const char *h, size_t n, const char *name, char *buf, size_t size) {
        size_t nl = strlen(name), k = 0;

        for (size_t i = 0; i < n;) {
                const char *e = memchr(h + i, '\n', n - i);
                size_t len = e ? (size_t) (e - h) - i + 1 : n - i;

                if (len > nl && strncasecmp(h + i, name, nl) == 0 && h[i + nl] == ':') {
                        for (size_t j = i + nl + 1; j < n; j++) {
                                if (h[j] == '\n' && (j + 1 >= n || (h[j + 1] != ' ' && h[j + 1] != '\t')))
                                        break;
                                if (h[j] != '\r' && h[j] != '\n' && k + 1 < size)
                                        buf[k++] = h[j] ? h[j] : ' ';
                        }
                        buf[k] = 0;
                        return true;
                }
                i += len;
        }
        return false;
}

#define MAX_BOUNDARY 200
#define MAX_MBOX_HEADER (256u << 10)

/* The close delimiter "--boundary--" of a multipart message's top Content-Type, or "". */
static void multipart_close(const char *h, size_t n, char *ret, size_t size) {
        char v[1024], *b;
        size_t l;

        ret[0] = 0;
        if (!header_field(h, n, "Content-Type", v, sizeof v))
                return;
        b = v + strspn(v, " \t");
        if (strncasecmp(b, "multipart/", 10) != 0 || !(b = strcasestr(b, "boundary=")))
                return;
        b += 9;
        if (*b == '"')
                l = strcspn(++b, "\"");
        else
                l = strcspn(b, " \t;");
        if (l == 0 || l + 5 > size)
                return;
        (void) snprintf(ret, size, "--%.*s--", (int) l, b);
}

/* What a message's Content-Length says about where it ends: true when that end is consistent
 * with the mbox (the end of the file, or a "From " line after at most one blank line), with
 * *ret_next there; *ret_claimed is the end it claims in any case (0: no Content-Length). */
static bool content_length_end(const char *data, size_t size, size_t start, size_t *ret_next,
                               size_t *ret_claimed) {
        /* Looked for in the first 256 KiB only: a file of messages without a blank line would
         * otherwise be read to its end once per message. */
        size_t limit = MIN(size - start, (size_t) MAX_MBOX_HEADER), h = header_end(data + start, limit), e;
        char v[32], *end;
        unsigned long long cl;

        *ret_claimed = 0;
        if (h == limit && limit < size - start)
                return false;
        if (!header_field(data + start, h, "Content-Length", v, sizeof v))
                return false;
        end = v + strspn(v, " \t");
        if (*end < '0' || *end > '9')
                return false;
        errno = 0;
        cl = strtoull(end, &end, 10);
        if (errno != 0 || cl > size || (*end != 0 && *end != ' ' && *end != '\t'))
                return false;
        e = start + h + (size_t) cl;
        *ret_claimed = e;
        if (e > size)
                return false;
        if (e < size && data[e] == '\n')
                e++;
        else if (e + 1 < size && data[e] == '\r' && data[e + 1] == '\n')
                e += 2;
        if (e != size && !(e > 0 && data[e - 1] == '\n' && size - e >= 5 && memcmp(data + e, "From ", 5) == 0))
                return false;
        *ret_next = e;
        return true;
}

/* An mbox is split on its "From " lines (after a blank line, or well-formed), except that a
 * message whose Content-Length is consistent with the file (mboxcl2) runs to that length, its
 * own "From " lines being body. Text that may have arrived inside another message never gets a
 * trusted sender: a message that starts before the end claimed by a previous message's
 * (inconsistent) Content-Length, or while a previous message's multipart body is still open
 * (its closing boundary not yet seen), is scanned with its sender distrusted. */
static int scan_mbox(ScanState *st, const char *data, size_t size, const char *path, const char *folder) {
        size_t line_no = 1, start = 0, start_line = 0, cl_next = 0, claimed = 0, claimed_end = 0;
        bool in_message = false, prev_blank = true, quoted = false, cl_message = false;
        const char *distrust = NULL;
        char open_close[MAX_BOUNDARY + 5] = "";
        int r;

        for (size_t i = 0; i <= size;) {
                const char *line = data + i;
                const char *nl = i < size ? memchr(line, '\n', size - i) : NULL;
                size_t len = i < size ? (nl ? (size_t) (nl - line) + 1 : size - i) : 0;
                bool sep = i >= size || (cl_message && i == cl_next) ||
                           ((!cl_message || i > cl_next) && is_from_line(line, len, prev_blank));

                if (sep) {
                        if (in_message) {
                                /* The blank line before "From " belongs to the separator. */
                                size_t end = i;
                                if (end > start && data[end - 1] == '\n')
                                        end--;
                                if (end > start && data[end - 1] == '\r')
                                        end--;
                                r = scan_mbox_message(st, data + start, end - start, quoted, path, start_line,
                                                      folder, distrust);
                                if (r == -ENOMEM)
                                        return r;

                                /* What this message says about the next one. */
                                if (cl_message)
                                        open_close[0] = 0;
                                else {
                                        size_t h = header_end(data + start, i - start);
                                        if (claimed > i)
                                                claimed_end = MAX(claimed_end, claimed);
                                        if (open_close[0]) {
                                                if (memmem(data + start, i - start, open_close, strlen(open_close)))
                                                        open_close[0] = 0;
                                        } else {
                                                multipart_close(data + start, h, open_close, sizeof open_close);
                                                if (open_close[0] &&
                                                    memmem(data + start + h, i - start - h, open_close, strlen(open_close)))
                                                        open_close[0] = 0;
                                        }
                                }
                        }
                        if (i >= size)
                                break;
                        in_message = true;
                        quoted = false;
                        start = i + len;
                        start_line = line_no;
                        const char *was = distrust;
                        distrust = start < claimed_end
                                           ? "inside the previous message of the mbox by its Content-Length"
                                   : open_close[0]
                                           ? "inside the previous message of the mbox (its MIME body is not closed)"
                                           : NULL;
                        if (distrust && !was) {
                                /* Say it once where it starts: a broken sender's message without
                                 * its closing boundary makes all the rest untrusted. */
                                _cleanup_free_ char *shown = cli_clean(path);
                                fprintf(stderr,
                                        _("alcode: %s:%zu: this message may be text inside the one before it "
                                          "(%s); it and the next ones until that one ends are read as from an "
                                          "unverified sender.\n"),
                                        strna(shown), line_no, start < claimed_end ? "Content-Length" : "MIME");
                        }
                        cl_message = content_length_end(data, size, start, &cl_next, &claimed);
                } else if (in_message && line[0] == '>') {
                        size_t k = span(line, len, ">");
                        if (k < len && len - k >= 5 && memcmp(line + k, "From ", 5) == 0)
                                quoted = true;
                }
                prev_blank = len == 1 || (len == 2 && line[0] == '\r');
                i += len;
                line_no++;
        }
        return 0;
}

static bool looks_like_mbox(const char *data, size_t size) {
        const char *nl = memchr(data, '\n', MIN(size, (size_t) 1024));
        return size >= 5 && memcmp(data, "From ", 5) == 0 && nl && is_from_line(data, (size_t) (nl - data), false);
}

static int scan_data(ScanState *st, const char *data, size_t size, const char *path, const char *folder) {
        if (looks_like_mbox(data, size))
                return scan_mbox(st, data, size, path, folder);
        return scan_one(st, data, size, path, folder);
}

static void read_error(const char *path, int err) {
        _cleanup_free_ char *shown = cli_clean(path);
        fprintf(stderr, _("alcode: cannot read '%s': %s\n"), strna(shown), strerror(err));
}

/* Maps a file read-only, followed by at least one inaccessible page: the data carries no NUL
 * after its last byte, and a parser that looked for one would read whatever mapping happens to
 * come next. With the guard it stops at once, the same way on every run. Returns NULL (errno
 * set) on failure; unmap map_len bytes. */
static void *map_file(int fd, size_t size, size_t *ret_map_len) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE), len;
        void *base;

        if (size > SIZE_MAX - 2 * page) {
                errno = EFBIG;
                return NULL;
        }
        len = (size + page - 1) / page * page + page;
        base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
                return NULL;
        if (mmap(base, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
                int e = errno;
                (void) munmap(base, len);
                errno = e;
                return NULL;
        }
        *ret_map_len = len;
        return base;
}

static int scan_file(ScanState *st, const char *path, const char *folder) {
        _cleanup_close_ int fd = -EBADF;
        struct stat sb;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &sb) < 0) {
                read_error(path, errno);
                st->bad_input = true;
                return 0;
        }
        st->n_files++;
        if ((size_t) sb.st_size <= READ_MAX) {
                /* One read into the reused buffer (a file may grow meanwhile: read what fits). */
                size_t want = (size_t) sb.st_size, got = 0;
                if (st->buf_alloc < want + 1) {
                        char *p = realloc(st->buf, want + 1);
                        if (!p)
                                return -ENOMEM;
                        st->buf = p;
                        st->buf_alloc = want + 1;
                }
                while (got < want) {
                        ssize_t n = read(fd, st->buf + got, want - got);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                read_error(path, errno);
                                st->bad_input = true;
                                return 0;
                        }
                        if (n == 0)
                                break;
                        got += (size_t) n;
                }
                st->buf[got] = 0;
                r = scan_data(st, st->buf, got, path, folder);
        } else {
                size_t map_len;
                void *map = map_file(fd, (size_t) sb.st_size, &map_len);
                if (!map) {
                        read_error(path, errno);
                        st->bad_input = true;
                        return 0;
                }
                (void) madvise(map, (size_t) sb.st_size, MADV_SEQUENTIAL);
                r = scan_data(st, map, (size_t) sb.st_size, path, folder);
                (void) munmap(map, map_len);
        }
        return r == -ENOMEM ? r : 0;
}

/* The folder a message lives in, as the daemon would name it: the Maildir ("INBOX/cur/x" →
 * "INBOX", Maildir++ ".Sent" → "Sent", decoded from modified UTF-7 as an IMAP server's are:
 * ".Envoy&AOk-s" → "Envoyés"), the directory of an .eml, the name of an mbox. */
static char *folder_of(const char *path, bool is_mbox) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash, *base;

        if (!copy)
                return NULL;
        if (is_mbox) {
                base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
                if (endswith(base, ".mbox"))
                        base[strlen(base) - 5] = 0;
                return strdup(base);
        }
        slash = strrchr(copy, '/');
        if (!slash)
                return strdup(".");
        *slash = 0;
        base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
        if ((streq(base, "cur") || streq(base, "new")) && base > copy) {
                base[-1] = 0;
                base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
                if (base[0] == '.' && base[1])
                        base++;
                return imap_utf7_decode(base);
        }
        if (base[0] == '.' && base[1])
                base++;
        return strdup(base);
}

static bool is_mail_name(const char *dir, const char *name) {
        const char *base = strrchr(dir, '/');
        base = base ? base + 1 : dir;
        /* Maildir: every file in cur/ and new/ is a message. */
        if (streq(base, "cur") || streq(base, "new"))
                return name[0] != '.';
        return endswith(name, ".eml") || endswith(name, ".mbox") || endswith(name, ".mbx") ||
               streq(name, "mbox");
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int scan_path(ScanState *st, const char *path, unsigned depth, bool explicit) {
        struct stat sb;
        int r;

        if (stat(path, &sb) < 0) {
                read_error(path, errno);
                st->bad_input = true;
                return 0;
        }
        if (!S_ISDIR(sb.st_mode)) {
                _cleanup_free_ char *folder = NULL;

                if (!S_ISREG(sb.st_mode)) {
                        if (explicit) {
                                _cleanup_free_ char *shown = cli_clean(path);
                                fprintf(stderr, _("alcode: '%s' is not a file or folder.\n"), strna(shown));
                                st->bad_input = true;
                        }
                        return 0;
                }
                folder = folder_of(path, endswith(path, ".mbox") || endswith(path, "/mbox"));
                if (!folder)
                        return -ENOMEM;
                return scan_file(st, path, folder);
        }
        if (depth > MAX_DEPTH)
                return 0;

        /* Files are scanned as they are listed, so that memory does not follow the size of a
         * folder (a Maildir cur/ may hold 100,000 messages); sub-folders, few, are visited
         * afterwards in name order. */
        _cleanup_strv_free_ char **subdirs = NULL;
        size_t n_subdirs = 0, subdirs_allocated = 0; /* strv_push(): a folder may hold very many */
        DIR *d = opendir(path);
        struct dirent *de;
        if (!d) {
                read_error(path, errno);
                st->bad_input = true;
                return 0;
        }
        r = 0;
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                unsigned char type = de->d_type;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&child, "%s/%s", path, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (type == DT_UNKNOWN) {
                        struct stat cs;
                        if (lstat(child, &cs) < 0)
                                continue;
                        type = S_ISREG(cs.st_mode) ? DT_REG : S_ISDIR(cs.st_mode) ? DT_DIR : DT_LNK;
                }
                if (type == DT_REG) {
                        _cleanup_free_ char *folder = NULL;
                        if (de->d_name[0] == '.' || !is_mail_name(path, de->d_name))
                                continue;
                        folder = folder_of(child, endswith(de->d_name, ".mbox") || streq(de->d_name, "mbox"));
                        r = folder ? scan_file(st, child, folder) : -ENOMEM;
                } else if (type == DT_DIR) {
                        /* tmp/: messages still being delivered. Hidden folders only as
                         * Maildir++ subfolders (".Sent/cur"). */
                        if (streq(de->d_name, "tmp"))
                                continue;
                        if (de->d_name[0] == '.') {
                                _cleanup_free_ char *cur = NULL;
                                if (asprintf(&cur, "%s/cur", child) < 0) {
                                        r = -ENOMEM;
                                        break;
                                }
                                if (access(cur, F_OK) < 0)
                                        continue;
                        }
                        r = strv_push(&subdirs, &n_subdirs, &subdirs_allocated, TAKE_PTR(child));
                }
                /* Symbolic links are not followed. */
        }
        closedir(d);
        if (r < 0)
                return r;
        if (subdirs)
                qsort(subdirs, n_subdirs, sizeof(char *), cmp_str);
        STRV_FOREACH(sub, subdirs) {
                r = scan_path(st, *sub, depth + 1, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

int verb_scan(int argc, char *argv[]) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(rules_freep) Rules *rules = NULL;
        _cleanup_(pipeline_freep) Pipeline *p = NULL;
        _cleanup_(store_closep) Store *store = NULL;
        _cleanup_strv_free_ char **self = NULL;
        ScanState st = { .unquote = STRBUF_INIT(0) };
        int r = 0;

        if (arg_explain && arg_json) {
                /* JSON Lines leave no room for the explanation on stdout. */
                fprintf(stderr, _("alcode scan: --explain and --json do not go together.\n"));
                return EXIT_BAD_INPUT;
        }
        if (cli_load_config(&config) < 0)
                return 1;
        if (cli_load_rules(config, &rules) < 0)
                return 1;
        if (pipeline_new(rules, config->employer_domains, NULL, &p) < 0 || config_user_addresses(config, &self) < 0)
                return log_oom(), 1;
        pipeline_set_user_addresses(p, self);
        if (arg_explain)
                pipeline_set_text_callback(p, explain_texts, NULL);
        if (arg_store && cli_open_store(STORE_READ_WRITE, &store) < 0)
                return 1;
        st.pipeline = p;
        st.store = store;
        st.batch = calloc(STORE_CHUNK, sizeof(Message *));
        if (!st.batch)
                return log_oom(), 1;

        for (int i = 1; i < argc && r >= 0; i++)
                r = scan_path(&st, argv[i], 0, true);
        if (flush_store(&st) < 0 && r >= 0)
                r = -EIO;
        free(st.batch);
        free(st.buf);
        strbuf_done(&st.unquote);
        if (r < 0) {
                fprintf(stderr, _("alcode: scan failed: %s\n"), strerror(-r));
                return 1;
        }
        if (!arg_json)
                fprintf(stderr, _("%zu message(s) in %zu file(s): %zu code(s) found.\n"), st.n_messages,
                        st.n_files, st.n_codes);
        if (store && !arg_json)
                fprintf(stderr, _("%zu new code(s) stored.\n"), st.n_new);
        return st.bad_input ? EXIT_BAD_INPUT : 0;
}
