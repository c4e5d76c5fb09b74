/* Verbs over the stored codes: list, latest, show, export, forget. Queries open the store
 * read-only, so they never block the daemon. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "i18n.h"
#include "strbuf.h"

static int parse_kind(const char *s, CodeKind *ret) {
        CodeKind k = code_kind_from_string(s);

        if (k < 0) {
                fprintf(stderr, _("alcode: unknown kind '%s' (expected specific, company, access, otp, "
                                  "request or file).\n"), s);
                return -EINVAL;
        }
        *ret = k;
        return 0;
}

static int parse_id(const char *s, int64_t *ret) {
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end || v <= 0 || !*s) {
                fprintf(stderr, _("alcode: '%s' is not a code id (see 'alcode list').\n"), s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static void local_date(int64_t t, char *buf, size_t size) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (t <= 0 || !localtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
                (void) snprintf(buf, size, "-");
}

/* Display width of UTF-8 text (code points; our strings are not East Asian wide). */
static size_t width(const char *s) {
        size_t w = 0;
        for (; s && *s; s++)
                w += ((unsigned char) *s & 0xC0) != 0x80;
        return w;
}

static void pad(const char *s, size_t w) {
        size_t n = width(s);
        fputs(s, stdout);
        for (; n < w; n++)
                putchar(' ');
}

static void print_table(const StoredCode *c, size_t n) {
        size_t wk = width(_("KIND")), wv = width(_("CODE")), ws = width(_("FROM"));
        char date[32];

        for (size_t i = 0; i < n; i++) {
                wk = MAX(wk, width(cli_kind_words(c[i].kind)));
                wv = MAX(wv, width(c[i].display));
                ws = MAX(ws, MIN(width(c[i].sender), (size_t) 40));
        }
        printf("%s%-5s ", ansi_bold(), "ID");
        pad(_("KIND"), wk + 1);
        pad(_("CODE"), wv + 1);
        pad(_("DATE"), 17);
        pad(_("FROM"), ws + 1);
        printf("%s%s\n", _("WHERE"), ansi_normal());
        for (size_t i = 0; i < n; i++) {
                const StoredCode *k = &c[i];
                local_date(k->date, date, sizeof date);
                printf("%-5" PRIi64 " ", k->id);
                pad(cli_kind_words(k->kind), wk + 1);
                printf("%s", k->trusted ? ansi_bold() : ansi_red());
                pad(k->display, wv + 1);
                printf("%s", ansi_normal());
                pad(date, 17);
                pad(k->sender ?: "-", ws + 1);
                printf("%s%s%s", ansi_grey(), isempty(k->account) ? _("local file") : k->account, ansi_normal());
                if (!isempty(k->folder))
                        printf("%s/%s%s", ansi_grey(), k->folder, ansi_normal());
                if (!k->trusted)
                        printf("  %s%s%s", ansi_red(), _("⚠ UNVERIFIED SENDER"), ansi_normal());
                else if (k->expired)
                        printf("  %s%s%s", ansi_yellow(), _("(expired)"), ansi_normal());
                else if (k->superseded)
                        printf("  %s%s%s", ansi_grey(), _("(replaced by a newer one)"), ansi_normal());
                putchar('\n');
        }
}

int verb_list(int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *codes = NULL;
        size_t n = 0;
        bool specific = false, company = false;
        int r;

        if (argc > 1) {
                fprintf(stderr, _("alcode list: unexpected argument '%s'.\n"), argv[1]);
                return EXIT_BAD_INPUT;
        }
        if (arg_kind && parse_kind(arg_kind, &f.kind) < 0)
                return EXIT_BAD_INPUT;
        f.account = arg_account;
        f.untrusted_only = arg_untrusted;
        if (cli_open_store(STORE_READ_ONLY, &s) < 0)
                return 1;
        if (arg_json) {
                r = store_write_json(s, &f, stdout);
                if (r < 0) {
                        fprintf(stderr, _("alcode: cannot read the database: %s\n"), strerror(-r));
                        return 1;
                }
                return 0;
        }
        r = store_list(s, &f, &codes, &n);
        if (r < 0) {
                fprintf(stderr, _("alcode: cannot read the database: %s\n"), strerror(-r));
                return 1;
        }
        if (n == 0)
                printf(_("No code stored%s.\n"), arg_kind || arg_account || arg_untrusted ? _(" matching these filters") : "");
        else
                print_table(codes, n);
        for (size_t i = 0; i < n; i++) {
                specific = specific || (codes[i].kind == CODE_KIND_SPECIFIC && codes[i].trusted);
                company = company || codes[i].kind == CODE_KIND_COMPANY;
        }
        if (company && !specific && !arg_kind)
                printf(_("\nNote: a company code (code entreprise) identifies your employer; it is not your "
                         "personal code spécifique.\nThe specific code comes from Action Logement when your "
                         "file is validated (look for mail from actionlogement.fr or al-in.fr).\n"));
        stored_codes_free(codes, n);
        return 0;
}

int verb_latest(int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *codes = NULL;
        size_t n = 0;
        int r;

        if (argc > 2) {
                fprintf(stderr, _("alcode latest: expected at most one KIND.\n"));
                return EXIT_BAD_INPUT;
        }
        f.kind = CODE_KIND_SPECIFIC;
        if (argc == 2 && parse_kind(argv[1], &f.kind) < 0)
                return EXIT_BAD_INPUT;
        f.trusted_only = true;
        f.limit = 1;
        if (cli_open_store(STORE_READ_ONLY, &s) < 0)
                return 1;
        if (arg_json) {
                r = store_write_json(s, &f, stdout);
                return r < 0 ? 1 : r == 0 ? EXIT_NONE : 0;
        }
        r = store_list(s, &f, &codes, &n);
        if (r < 0) {
                fprintf(stderr, _("alcode: cannot read the database: %s\n"), strerror(-r));
                return 1;
        }
        if (n == 0) {
                fprintf(stderr, _("alcode: no trusted %s stored.\n"), cli_kind_words(f.kind));
                return EXIT_NONE;
        }
        printf("%s\n", codes[0].value);
        stored_codes_free(codes, n);
        return 0;
}

int verb_show(int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *codes = NULL;
        StoreSighting *seen = NULL;
        size_t n = 0, n_seen = 0;
        char date[32], found[32];
        int r;

        if (argc != 2) {
                fprintf(stderr, _("alcode show: expected one code ID (see 'alcode list').\n"));
                return EXIT_BAD_INPUT;
        }
        if (parse_id(argv[1], &f.id) < 0)
                return EXIT_BAD_INPUT;
        if (cli_open_store(STORE_READ_ONLY, &s) < 0)
                return 1;
        if (arg_json) {
                r = store_write_json(s, &f, stdout);
                return r < 0 ? 1 : r == 0 ? EXIT_NONE : 0;
        }
        r = store_list(s, &f, &codes, &n);
        if (r < 0) {
                fprintf(stderr, _("alcode: cannot read the database: %s\n"), strerror(-r));
                return 1;
        }
        if (n == 0) {
                fprintf(stderr, _("alcode: no code with id %s.\n"), argv[1]);
                return EXIT_NONE;
        }
        local_date(codes[0].date, date, sizeof date);
        local_date(codes[0].found_at, found, sizeof found);
        printf("%s%s%s  %s\n", ansi_bold(), codes[0].display, ansi_normal(), cli_kind_words(codes[0].kind));
        printf(_("Value:    %s\n"), codes[0].value);
        printf(_("Sender:   %s%s%s\n"), codes[0].sender ?: "-", codes[0].trusted ? "" : "  ",
               codes[0].trusted ? "" : _("(UNVERIFIED: not a trusted sender for this kind)"));
        printf(_("Subject:  %s\n"), codes[0].subject ?: "-");
        printf(_("Date:     %s\n"), date);
        printf(_("Found:    %s\n"), found);
        printf(_("Seen in:\n"));
        r = store_list_sightings(s, f.id, &seen, &n_seen);
        for (size_t i = 0; r >= 0 && i < n_seen; i++) {
                const StoreSighting *g = &seen[i];
                if (*g->source)
                        printf("  %s", g->source);
                else
                        printf(_("  %s/%s UID %u (UIDVALIDITY %u)"), g->account, g->folder, g->uid, g->uidvalidity);
                printf(_(", Message-ID %s, rule %s, %s\n"), g->message_id ?: "-", g->rule,
                       g->trusted ? _("trusted") : _("untrusted"));
        }
        store_sightings_free(seen, n_seen);
        stored_codes_free(codes, n);
        return r < 0 ? 1 : 0;
}

int verb_export(int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        int r;

        if (argc > 1) {
                fprintf(stderr, _("alcode export: unexpected argument '%s'.\n"), argv[1]);
                return EXIT_BAD_INPUT;
        }
        if (arg_json == arg_csv) {
                fprintf(stderr, _("alcode export: use exactly one of --json or --csv.\n"));
                return EXIT_BAD_INPUT;
        }
        if (cli_open_store(STORE_READ_ONLY, &s) < 0)
                return 1;
        r = arg_json ? store_write_json(s, &f, stdout) : store_write_csv(s, stdout);
        if (r < 0 || fflush(stdout) != 0) {
                fprintf(stderr, _("alcode: export failed: %s\n"), strerror(r < 0 ? -r : errno));
                return 1;
        }
        return 0;
}

int verb_forget(int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        int64_t id;
        int r;

        if (argc != 2) {
                fprintf(stderr, _("alcode forget: expected one code ID (see 'alcode list').\n"));
                return EXIT_BAD_INPUT;
        }
        if (parse_id(argv[1], &id) < 0)
                return EXIT_BAD_INPUT;
        if (cli_open_store(STORE_READ_WRITE, &s) < 0)
                return 1;
        r = store_forget(s, id);
        if (r == -ENOENT) {
                fprintf(stderr, _("alcode: no code with id %s.\n"), argv[1]);
                return EXIT_NONE;
        }
        if (r < 0) {
                fprintf(stderr, _("alcode: cannot remove code %s: %s\n"), argv[1], strerror(-r));
                return 1;
        }
        printf(_("Code %s removed. It comes back only if its mail is read again (alcode rescan, "
                 "alcode scan --store).\n"), argv[1]);
        return 0;
}
