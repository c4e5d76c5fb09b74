/* alcode scan: the daemon's pipeline over local mail: .eml files, Maildir folders (cur/, new/),
 * mbox files (Google Takeout: "From " separators, ">From " quoting) and folders of them. Files
 * are mapped, not read, so a large mbox costs no copy. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cli.h"
#include "i18n.h"
#include "pipeline.h"
#include "strbuf.h"
#include "strv.h"

#define STORE_CHUNK 256
#define MAX_DEPTH 32

typedef struct ScanState {
        Pipeline *pipeline;
        Store *store;
        Message **batch;
        size_t n_batch;
        size_t n_files, n_messages, n_codes, n_new;
        bool bad_input;
        const char *current; /* source being explained */
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
                printf("%s: %s%-16s%s %s%s%s", m->ref.source, ansi_grey(), cli_kind_words(c->kind), ansi_normal(),
                       c->trusted ? ansi_bold() : ansi_red(), c->display, ansi_normal());
                if (!streq(c->display, c->value))
                        printf(" (%s)", c->value);
                printf("  %s%s%s\n", c->trusted ? "" : ansi_red(),
                       c->trusted ? strna(m->sender) : _("⚠ UNVERIFIED SENDER"), ansi_normal());
        }
}

static void explain_text(unsigned index, const RuleText *t, void *userdata) {
        (void) userdata;
        printf(_("--- text %u (%s%s), as the rules see it:\n"), index,
               t->subject ? _("subject") : _("body"), t->attached ? _(", inside an attached message") : "");
        fwrite(t->text, 1, t->len, stdout);
        printf("\n");
}

static void explain_verdict(const RuleVerdict *v, void *userdata) {
        (void) userdata;
        printf(_("%s:%u: rule %s (%s) found '%.*s' in text %u at %zu: %s%s%s\n"), v->file, v->line, v->rule,
               code_kind_to_string(v->kind), (int) v->display_len, v->display, v->text_index, v->offset,
               v->rejected ? _("rejected, ") : _("accepted"), v->rejected ?: "",
               v->rejected ? "" : v->trusted ? _(" (trusted sender)") : _(" (untrusted)"));
}

static int scan_one(ScanState *st, const char *data, size_t size, const char *source) {
        _cleanup_strv_free_ char **warnings = NULL;
        MessageRef ref = { .source = (char *) source };
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
        if (arg_explain) {
                printf(_("sender: %s\n"), strna(m->sender));
                STRV_FOREACH(w, warnings)
                        printf(_("warning: %s\n"), *w);
        }
        st->n_codes += m->n_codes;
        if (arg_json)
                (void) store_json_for_message(m, stdout);
        else if (!arg_explain)
                print_message(m);
        if (m->n_codes == 0 || !st->store) {
                message_free(m);
                return 0;
        }
        st->batch[st->n_batch++] = m;
        return st->n_batch >= STORE_CHUNK ? flush_store(st) : 0;
}

/* An mbox holds messages after lines "From ..." (at the start or after an empty line); in the
 * messages, ">From " (and ">>From "...) lines lose one '>' (mboxrd). */
static int scan_mbox(ScanState *st, const char *data, size_t size, const char *path) {
        _cleanup_strbuf_ StrBuf msg = STRBUF_INIT(0);
        size_t line_no = 1, start_line = 0;
        bool in_message = false, prev_blank = true;
        int r;

        for (size_t i = 0; i <= size;) {
                const char *line = data + i;
                const char *nl = i < size ? memchr(line, '\n', size - i) : NULL;
                size_t len = i < size ? (nl ? (size_t) (nl - line) + 1 : size - i) : 0;
                bool sep = i >= size || (prev_blank && len >= 5 && memcmp(line, "From ", 5) == 0);

                if (sep) {
                        if (in_message) {
                                char source[4096 + 32];
                                (void) snprintf(source, sizeof source, "%s:%zu", path, start_line);
                                r = scan_one(st, msg.data ?: "", msg.len, source);
                                if (r == -ENOMEM)
                                        return r;
                                msg.len = 0;
                        }
                        if (i >= size)
                                break;
                        in_message = true;
                        start_line = line_no;
                } else if (in_message) {
                        const char *p = line;
                        size_t l = len;
                        size_t k = strspn(line, ">");
                        if (k > 0 && k < len && len - k >= 5 && memcmp(line + k, "From ", 5) == 0)
                                p++, l--;
                        if (strbuf_append(&msg, p, l) < 0)
                                return -ENOMEM;
                }
                prev_blank = len == 0 || (len == 1 && line[0] == '\n') || (len == 2 && line[0] == '\r');
                i += len;
                line_no++;
        }
        return 0;
}

static int scan_file(ScanState *st, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        struct stat sb;
        void *map;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &sb) < 0) {
                fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
                st->bad_input = true;
                return 0;
        }
        st->n_files++;
        if (sb.st_size == 0)
                return scan_one(st, "", 0, path);
        map = mmap(NULL, (size_t) sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
                fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
                st->bad_input = true;
                return 0;
        }
        (void) madvise(map, (size_t) sb.st_size, MADV_SEQUENTIAL);
        if ((size_t) sb.st_size >= 5 && memcmp(map, "From ", 5) == 0)
                r = scan_mbox(st, map, (size_t) sb.st_size, path);
        else
                r = scan_one(st, map, (size_t) sb.st_size, path);
        (void) munmap(map, (size_t) sb.st_size);
        return r == -ENOMEM ? r : 0;
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
                if (!S_ISREG(sb.st_mode)) {
                        if (explicit) {
                                fprintf(stderr, _("alcode: '%s' is not a file or folder.\n"), path);
                                st->bad_input = true;
                        }
                        return 0;
                }
                return scan_file(st, path);
        }
        if (depth > MAX_DEPTH)
                return 0;

        _cleanup_strv_free_ char **names = NULL;
        DIR *d = opendir(path);
        struct dirent *de;
        if (!d) {
                fprintf(stderr, _("alcode: cannot read '%s': %s\n"), path, strerror(errno));
                st->bad_input = true;
                return 0;
        }
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && strv_extend(&names, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        closedir(d);
        if (names)
                qsort(names, strv_length(names), sizeof(char *), cmp_str);
        STRV_FOREACH(n, names) {
                _cleanup_free_ char *child = NULL;
                struct stat cs;

                if (asprintf(&child, "%s/%s", path, *n) < 0)
                        return -ENOMEM;
                if (lstat(child, &cs) < 0 || S_ISLNK(cs.st_mode))
                        continue;
                if (!S_ISDIR(cs.st_mode) && !is_mail_name(path, *n))
                        continue;
                if (streq(*n, "tmp"))
                        continue; /* Maildir tmp/: messages still being delivered */
                r = scan_path(st, child, depth + 1, false);
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
        ScanState st = {};
        int r;

        if (argc < 2) {
                fprintf(stderr, _("alcode scan: expected at least one file or folder.\n"));
                return EXIT_BAD_INPUT;
        }
        if (cli_load_config(&config) < 0)
                return 1;
        if (cli_load_rules(config, &rules) < 0)
                return 1;
        r = pipeline_new(rules, config->employer_domains, NULL, &p);
        if (r < 0)
                return 1;
        if (arg_explain)
                pipeline_set_text_callback(p, explain_text, NULL);
        if (arg_store && cli_open_store(STORE_READ_WRITE, &store) < 0)
                return 1;
        st.pipeline = p;
        st.store = store;
        st.batch = calloc(STORE_CHUNK, sizeof(Message *));
        if (!st.batch)
                return 1;

        for (int i = 1; i < argc; i++) {
                r = scan_path(&st, argv[i], 0, true);
                if (r < 0)
                        break;
        }
        if (flush_store(&st) < 0)
                r = -EIO;
        free(st.batch);
        if (r < 0) {
                fprintf(stderr, _("alcode: scan failed: %s\n"), strerror(-r));
                return 1;
        }
        if (!arg_json)
                fprintf(stderr, _("%zu message(s) in %zu file(s): %zu code(s) found%s.\n"), st.n_messages,
                        st.n_files, st.n_codes, "");
        if (store && !arg_json)
                fprintf(stderr, _("%zu new code(s) stored.\n"), st.n_new);
        return st.bad_input ? EXIT_BAD_INPUT : 0;
}
