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
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cli.h"
#include "i18n.h"
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

static void print_message(const Message *m) {
        for (size_t i = 0; i < m->n_codes; i++) {
                const Code *c = &m->codes[i];
                if (c->kind == CODE_KIND_POSSIBLE) {
                        printf(_("%s: %s%-16s%s %s may hold a code no rule read: alcode scan --explain %s\n"),
                               m->ref.source, ansi_grey(), code_kind_to_words(c->kind), ansi_normal(), strna(m->sender),
                               m->ref.source);
                        continue;
                }
                printf("%s: %s%-16s%s %s%s%s", m->ref.source, ansi_grey(), code_kind_to_words(c->kind), ansi_normal(),
                       c->trusted ? ansi_bold() : ansi_red(), c->display, ansi_normal());
                if (!streq(c->display, c->value))
                        printf(" (%s)", c->value);
                printf("  %s%s%s\n", c->trusted ? "" : ansi_red(),
                       c->trusted ? strna(m->sender) : _("⚠ UNVERIFIED SENDER"), ansi_normal());
        }
}

static void explain_texts(const SenderInfo *s, const RuleText *texts, size_t n, void *userdata) {
        (void) userdata;
        printf(_("sender: %s"), strna(s->address));
        if (s->name)
                printf(" (%s)", s->name);
        printf("\n");
        if (s->employer)
                printf(_("  an employer domain (employer_domains)\n"));
        if (s->auth_passed)
                printf(_("  Authentication-Results: passed for its domain\n"));
        if (s->why)
                printf(_("  not trustworthy: %s\n"), s->why);
        for (size_t i = 0; i < n; i++) {
                const RuleText *t = &texts[i];
                printf(_("--- text %zu (%s%s%s), as the rules see it:\n"), i, t->subject ? _("subject") : _("body"),
                       t->quoted ? _(", quoted or forwarded") : "",
                       t->attached ? _(", inside an attached message") : "");
                fwrite(t->text, 1, t->len, stdout);
                printf("\n");
        }
        printf(_("--- rules:\n"));
}

static void explain_verdict(const RuleVerdict *v, void *userdata) {
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
               code_kind_to_string(v->kind), (int) v->display_len, v->display, v->text_index, v->offset,
               v->rejected ? _("rejected, ") : _("accepted"), v->rejected ?: "",
               v->rejected ? "" : v->trusted ? _(" (trusted sender)") : _(" (untrusted)"));
}

static int scan_one(ScanState *st, const char *data, size_t size, const char *source, const char *folder) {
        _cleanup_strv_free_ char **warnings = NULL;
        MessageRef ref = { .source = (char *) source, .folder = (char *) folder };
        Message *m = NULL;
        int r;

        if (arg_explain)
                printf(_("=== %s\n"), source);
        r = pipeline_run(st->pipeline, data, size, &ref, &m, &warnings,
                         arg_explain ? explain_verdict : NULL, NULL);
        if (r < 0) {
                fprintf(stderr, _("alcode: %s: %s\n"), source, strerror(-r));
                return r;
        }
        st->n_messages++;
        STRV_FOREACH(w, warnings) {
                if (arg_explain)
                        printf(_("warning: %s\n"), *w);
                else
                        fprintf(stderr, _("alcode: %s: %s\n"), source, *w);
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

static int scan_mbox_message(ScanState *st, const char *data, size_t size, bool quoted,
                             const char *path, size_t line_no, const char *folder) {
        char source[4096 + 32];

        (void) snprintf(source, sizeof source, "%s:%zu", path, line_no);
        if (size == 0 || (size <= 2 && strspn(data, "\r\n") == size)) {
                fprintf(stderr, _("alcode: %s: empty message, skipping\n"), source);
                return 0;
        }
        if (quoted) {
                /* mboxrd: one '>' comes off every ">+From " line. */
                st->unquote.len = 0;
                for (size_t i = 0; i < size;) {
                        const char *nl = memchr(data + i, '\n', size - i);
                        size_t len = nl ? (size_t) (nl - data) - i + 1 : size - i;
                        size_t k = strspn(data + i, ">");
                        bool q = k > 0 && k < len && len - k >= 5 && memcmp(data + i + k, "From ", 5) == 0;

                        if (strbuf_append(&st->unquote, data + i + q, len - q) < 0)
                                return -ENOMEM;
                        i += len;
                }
                data = st->unquote.data;
                size = st->unquote.len;
        }
        return scan_one(st, data, size, source, folder);
}

static int scan_mbox(ScanState *st, const char *data, size_t size, const char *path, const char *folder) {
        size_t line_no = 1, start = 0, start_line = 0;
        bool in_message = false, prev_blank = true, quoted = false;
        int r;

        for (size_t i = 0; i <= size;) {
                const char *line = data + i;
                const char *nl = i < size ? memchr(line, '\n', size - i) : NULL;
                size_t len = i < size ? (nl ? (size_t) (nl - line) + 1 : size - i) : 0;
                bool sep = i >= size || is_from_line(line, len, prev_blank);

                if (sep) {
                        if (in_message) {
                                /* The blank line before "From " belongs to the separator. */
                                size_t end = i;
                                if (end > start && data[end - 1] == '\n')
                                        end--;
                                if (end > start && data[end - 1] == '\r')
                                        end--;
                                r = scan_mbox_message(st, data + start, end - start, quoted, path, start_line,
                                                      folder);
                                if (r == -ENOMEM)
                                        return r;
                        }
                        if (i >= size)
                                break;
                        in_message = true;
                        quoted = false;
                        start = i + len;
                        start_line = line_no;
                } else if (in_message && line[0] == '>') {
                        size_t k = strspn(line, ">");
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

static int scan_file(ScanState *st, const char *path, const char *folder) {
        _cleanup_close_ int fd = -EBADF;
        struct stat sb;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &sb) < 0) {
                fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
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
                                fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
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
                void *map = mmap(NULL, (size_t) sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (map == MAP_FAILED) {
                        fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
                        st->bad_input = true;
                        return 0;
                }
                (void) madvise(map, (size_t) sb.st_size, MADV_SEQUENTIAL);
                r = scan_data(st, map, (size_t) sb.st_size, path, folder);
                (void) munmap(map, (size_t) sb.st_size);
        }
        return r == -ENOMEM ? r : 0;
}

/* The folder a message lives in, as the daemon would name it: the Maildir ("INBOX/cur/x" →
 * "INBOX", Maildir++ ".Sent" → "Sent"), the directory of an .eml, the name of an mbox. */
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
                fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
                st->bad_input = true;
                return 0;
        }
        if (!S_ISDIR(sb.st_mode)) {
                _cleanup_free_ char *folder = NULL;

                if (!S_ISREG(sb.st_mode)) {
                        if (explicit) {
                                fprintf(stderr, _("alcode: '%s' is not a file or folder.\n"), path);
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
                fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
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

/* The user's own addresses: the accounts' user names that are addresses. */
static int user_addresses(const Config *config, char ***ret) {
        size_t n = strv_length(*ret), allocated = 0;

        /* strv_push(): strv_extend() would count the list at each account. */
        for (size_t i = 0; i < config->n_accounts; i++)
                if (config->accounts[i].user && strchr(config->accounts[i].user, '@') &&
                    strv_push(ret, &n, &allocated, strdup(config->accounts[i].user)) < 0)
                        return -ENOMEM;
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

        if (argc < 2) {
                fprintf(stderr, _("alcode scan: expected at least one file or folder.\n"));
                return EXIT_BAD_INPUT;
        }
        if (arg_explain && arg_json) {
                /* JSON Lines leave no room for the explanation on stdout. */
                fprintf(stderr, _("alcode scan: --explain and --json do not go together.\n"));
                return EXIT_BAD_INPUT;
        }
        if (cli_load_config(&config) < 0)
                return 1;
        if (cli_load_rules(config, &rules) < 0)
                return 1;
        if (pipeline_new(rules, config->employer_domains, NULL, &p) < 0 || user_addresses(config, &self) < 0)
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
