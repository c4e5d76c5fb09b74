/* Verbs over the stored codes: list, latest, show, export, forget. The queries open the store
 * read-only, so they never block the daemon; forget alone writes. Text for people goes through
 * gettext; what scripts read (latest's value, --json, --csv) does not. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "parse-util.h"
#include "store-format.h"
#include "i18n.h"

/* Cells wider than this are cut with "…", so that one long sender keeps the table readable. */
#define MAX_CODE_COLUMNS 32
#define MAX_FROM_COLUMNS 36
#define MAX_WHERE_COLUMNS 32
#define MAX_FOLDERS_NAMED 8

static int parse_kind(const char *s, CodeKind *ret) {
        CodeKind k = code_kind_from_string(s);

        if (k < 0) {
                fprintf(stderr, _("alcode: unknown kind '%s' (expected specific, company, access, otp, "
                                  "request, file or possible).\n"), s);
                return -EINVAL;
        }
        *ret = k;
        return 0;
}

static int parse_id(const char *s, int64_t *ret) {
        char *end;
        long long v;

        /* Digits only: strtoll() would also take " 1", "+1" and "\n1". */
        errno = 0;
        v = isdigit((unsigned char) s[0]) ? strtoll(s, &end, 10) : -1;
        if (v <= 0 || errno || *end) {
                fprintf(stderr, _("alcode: '%s' is not a code id (see 'alcode list').\n"), s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* What the last column says about a code that is not simply current, and its colour. */
typedef enum Note {
        NOTE_NONE,
        NOTE_UNTRUSTED,
        NOTE_EXPIRED,
        NOTE_SUPERSEDED,
        _NOTE_MAX,
} Note;

static Note note_of(const StoredCode *c) {
        return !c->trusted ? NOTE_UNTRUSTED : c->expired ? NOTE_EXPIRED : c->superseded ? NOTE_SUPERSEDED : NOTE_NONE;
}

static size_t kind_index(CodeKind k) {
        return k >= 0 && k < _CODE_KIND_MAX ? (size_t) k : _CODE_KIND_MAX;
}

static int print_table(const StoredCode *c, size_t n) {
        _cleanup_free_ char **places = calloc(n, sizeof(char *));
        /* Translated once, not once per row. */
        const char *notes[_NOTE_MAX] = {
                [NOTE_UNTRUSTED] = _("⚠ UNVERIFIED SENDER"),
                [NOTE_EXPIRED] = _("expired"),
                [NOTE_SUPERSEDED] = _("replaced by a newer one"),
        };
        const char *colors[_NOTE_MAX] = {
                [NOTE_NONE] = ansi_bold(), [NOTE_UNTRUSTED] = ansi_red(),
                [NOTE_EXPIRED] = ansi_yellow(), [NOTE_SUPERSEDED] = ansi_grey(),
        };
        const char *local = _("local file"), *kinds[_CODE_KIND_MAX + 1];
        size_t wid = strlen("ID"), wkind = cli_text_width(_("KIND")), wcode = cli_text_width(_("CODE")),
               wdate = MAX(cli_text_width(_("DATE")), strlen("2026-03-02 09:14")),
               wfrom = cli_text_width(_("FROM")), wwhere = cli_text_width(_("WHERE"));
        char date[32], id[24];
        int r = 0;

        if (!places)
                return -ENOMEM;
        for (CodeKind k = 0; k <= _CODE_KIND_MAX; k++)
                kinds[k] = code_kind_to_words(k); /* [_CODE_KIND_MAX]: an unknown kind */
        for (size_t i = 0; i < n; i++) {
                if (!isempty(c[i].account) && asprintf(&places[i], "%s/%s", c[i].account, c[i].folder) < 0) {
                        places[i] = NULL;
                        r = -ENOMEM;
                        break;
                }
                wid = MAX(wid, (size_t) snprintf(id, sizeof id, "%" PRIi64, c[i].id));
                wkind = MAX(wkind, cli_text_width(kinds[kind_index(c[i].kind)]));
                wcode = MAX(wcode, MIN(cli_text_width(c[i].display ?: "-"), (size_t) MAX_CODE_COLUMNS));
                wfrom = MAX(wfrom, MIN(cli_text_width(strna(c[i].sender)), (size_t) MAX_FROM_COLUMNS));
                wwhere = MAX(wwhere, MIN(cli_text_width(places[i] ?: local), (size_t) MAX_WHERE_COLUMNS));
        }

        if (r >= 0) {
                fputs(ansi_bold(), stdout);
                printf("%*s  ", (int) wid, "ID");
                cli_print_cell(stdout, _("KIND"), wkind + 2, 0);
                cli_print_cell(stdout, _("CODE"), wcode + 2, 0);
                cli_print_cell(stdout, _("DATE"), wdate + 2, 0);
                cli_print_cell(stdout, _("FROM"), wfrom + 2, 0);
                cli_print_cell(stdout, _("WHERE"), 0, 0);
                printf("%s\n", ansi_normal());
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const StoredCode *k = &c[i];
                Note note = note_of(k);

                cli_local_date(k->date, date, sizeof date);
                printf("%*" PRIi64 "  ", (int) wid, k->id);
                cli_print_cell(stdout, kinds[kind_index(k->kind)], wkind + 2, 0);
                /* The code in bold when it is the one to use, else in its note's colour. */
                fputs(colors[note], stdout);
                cli_print_cell(stdout, k->display, 0, MAX_CODE_COLUMNS);
                fputs(ansi_normal(), stdout);
                cli_print_cell(stdout, "", wcode + 2 - MIN(cli_text_width(k->display ?: "-"), (size_t) MAX_CODE_COLUMNS), 0);
                cli_print_cell(stdout, date, wdate + 2, 0);
                cli_print_cell(stdout, k->sender, wfrom + 2, MAX_FROM_COLUMNS);
                fputs(ansi_grey(), stdout);
                cli_print_cell(stdout, places[i] ?: local, note ? wwhere + 2 : 0, MAX_WHERE_COLUMNS);
                fputs(ansi_normal(), stdout);
                if (note)
                        printf("%s%s%s", colors[note], notes[note], ansi_normal());
                putchar('\n');
        }
        for (size_t i = 0; i < n; i++)
                free(places[i]);
        return r;
}

/* Who a trusted sender is, in the user's words: the service its domain belongs to. */
static const char *sender_org(const char *sender) {
        static const struct {
                const char *domain, *name;
        } orgs[] = {
                { "actionlogement.fr", "Action Logement" },
                { "al-in.fr", "AL'in" },
                { "visale.fr", "Visale" },
                { "demande-logement-social.gouv.fr", N_("the social housing request portal") },
        };
        const char *at = sender ? strrchr(sender, '@') : NULL;

        for (size_t i = 0; at && i < ELEMENTSOF(orgs); i++) {
                size_t dl = strlen(at + 1), ol = strlen(orgs[i].domain);
                if (dl >= ol && strcaseeq(at + 1 + dl - ol, orgs[i].domain) && (dl == ol || at[1 + dl - ol - 1] == '.'))
                        return _(orgs[i].name);
        }
        return _("your employer");
}

/* After the codes: the mail from trusted senders that may hold a code no rule read, grouped by
 * sender ("1 mail from Action Logement may hold a code no rule read: alcode show 12 / alcode
 * scan --explain"). Where they are, never what they say. */
static void print_possible(const StoredCode *c, size_t n) {
        bool *done = calloc(n, sizeof(bool));

        if (!done)
                return;
        for (size_t i = 0; i < n; i++) {
                const char *org;
                size_t count = 0;

                if (done[i] || c[i].kind != CODE_KIND_POSSIBLE)
                        continue;
                org = sender_org(c[i].sender);
                for (size_t j = i; j < n; j++)
                        if (!done[j] && c[j].kind == CODE_KIND_POSSIBLE && streq(sender_org(c[j].sender), org))
                                count++;
                printf(ngettext("%s%zu mail from %s may hold a code no rule read:%s alcode show",
                                "%s%zu mails from %s may hold a code no rule read:%s alcode show", count),
                       ansi_yellow(), count, org, ansi_normal());
                for (size_t j = i, k = 0; j < n; j++)
                        if (!done[j] && c[j].kind == CODE_KIND_POSSIBLE && streq(sender_org(c[j].sender), org)) {
                                printf("%s %" PRIi64, k++ ? "," : "", c[j].id);
                                done[j] = true;
                        }
                printf(_(" / alcode scan --explain\n"));
        }
        free(done);
}

/* Whether a trusted code of kind is stored. */
static int have_trusted(Store *s, CodeKind kind) {
        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *c = NULL;
        size_t n = 0;
        int r;

        f.kind = kind;
        f.trusted_only = true;
        f.limit = 1;
        r = store_list(s, &f, &c, &n);
        stored_codes_free(c, n);
        return r < 0 ? r : n > 0;
}

static void explain_company_code(FILE *f) {
        fprintf(f, _("Note: a company code (code entreprise) is your employer's code, not your personal code "
                     "spécifique.\n"
                     "Your employer uses it with Action Logement; it will not open your AL'in file. Your personal "
                     "code comes\n"
                     "from Action Logement or AL'in (mail from actionlogement.fr or al-in.fr), and since decree "
                     "n° 2025-1478\n"
                     "employers of 50 or more people e-mail each employee an access code: ask your HR for it.\n"));
}

static bool looks_like_junk(const char *folder) {
        static const char *const words[] = { "junk", "spam", "indésirable", "indesirable", "pourriel", "bulk" };
        _cleanup_free_ char *lower = strdup(folder);

        if (!lower)
                return false;
        for (char *p = lower; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strstr(lower, words[i]))
                        return true;
        return false;
}

/* Nothing stored at all: say what was searched and what to try. */
static int explain_nothing(Store *s) {
        StoreCursor *c = NULL;
        size_t n = 0, n_accounts = 0;
        uint64_t messages = 0;
        bool junk = false;
        int r;

        r = store_list_cursors(s, NULL, &c, &n);
        if (r < 0)
                return r;
        printf(_("No code found yet.\n\n"));
        for (size_t i = 0; i < n; i++) {
                n_accounts += i == 0 || !streq(c[i].account, c[i - 1].account);
                messages += c[i].messages_seen;
                junk = junk || looks_like_junk(c[i].folder);
        }
        if (n == 0)
                printf(_("No mail folder has been searched yet: alcoded has not finished a first sync "
                         "(is it running? see\n'systemctl --user status alcoded').\n"));
        else {
                printf(ngettext("Searched %zu folder", "Searched %zu folders", n), n);
                printf(ngettext(" in %zu account", " in %zu accounts", n_accounts), n_accounts);
                printf(ngettext(", %" PRIu64 " message:\n", ", %" PRIu64 " messages:\n", messages), messages);
        }
        for (size_t i = 0, first = 0; i < n; i++) {
                char date[32];
                int64_t last = 0;
                size_t named;

                if (i > first && streq(c[i].account, c[first].account))
                        continue;
                first = i;
                printf("  ");
                cli_print_cell(stdout, c[i].account, 0, 0);
                printf(": ");
                named = 0;
                for (size_t j = i; j < n && streq(c[j].account, c[i].account); j++) {
                        last = MAX(last, c[j].updated_at);
                        if (named++ < MAX_FOLDERS_NAMED) {
                                if (named > 1)
                                        printf(", ");
                                cli_print_cell(stdout, c[j].folder, 0, 0);
                        }
                }
                if (named > MAX_FOLDERS_NAMED)
                        printf(ngettext(" and %zu other", " and %zu others", named - MAX_FOLDERS_NAMED),
                               named - MAX_FOLDERS_NAMED);
                cli_local_date(last, date, sizeof date);
                printf(_(" (last checked %s)\n"), date);
        }
        store_cursors_free(c, n);

        printf(_("\nWhat to try next:\n"));
        if (n > 0 && !junk)
                printf(_("  • Spam: none of these folders looks like a Spam or Junk folder, where codes often land.\n"
                         "    Check 'folders' and 'exclude' in your alcode.conf.\n"));
        else
                printf(_("  • Spam: codes often land in the Spam or Junk folder; make sure alcode.conf does not "
                         "exclude it.\n"));
        printf(_("  • Old e-mail addresses: Action Logement writes to the address you gave it, maybe an old one.\n"
                 "    Add that mailbox as an [account] in alcode.conf, or search an export of it with\n"
                 "    'alcode scan' (a Google Takeout .mbox file works).\n"));
        printf(_("  • Your employer's HR: since decree n° 2025-1478, employers of 50 or more people e-mail each\n"
                 "    employee an access code; ask HR to send yours again.\n"));
        printf(_("  • Action Logement: its online chat on actionlogement.fr can tell you how to get your\n"
                 "    code spécifique again.\n"));
        return 0;
}

/* Opens the store read-only and runs f, for list, latest and show: with --json the codes are
 * written as JSON Lines and *ret_codes is left NULL, else they are returned for the verb to
 * print. *ret_n is how many there are either way. Returns 0, or the exit code after saying
 * what failed. */
static int query_codes(const StoreFilter *f, Store **ret_store, StoredCode **ret_codes, size_t *ret_n) {
        int r;

        *ret_codes = NULL;
        *ret_n = 0;
        if (cli_open_store(STORE_READ_ONLY, ret_store) < 0)
                return EXIT_BAD_INPUT;
        r = arg_json ? store_write_json(*ret_store, f, stdout) : store_list(*ret_store, f, ret_codes, ret_n);
        if (r < 0)
                return cli_store_error(*ret_store, r);
        if (arg_json)
                *ret_n = (size_t) r;
        return 0;
}

int verb_list(_unused_ int argc, _unused_ char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *codes = NULL;
        size_t n = 0;
        bool company = false, untrusted = false;
        int r;

        if (arg_kind && parse_kind(arg_kind, &f.kind) < 0)
                return EXIT_BAD_INPUT;
        f.account = arg_account;
        f.untrusted_only = arg_untrusted;
        r = query_codes(&f, &s, &codes, &n);
        if (r != 0 || arg_json)
                return r != 0 ? r : cli_flush_stdout();

        /* Possible codes go after the codes, as one line per sender, not as rows. */
        size_t n_codes = 0, n_possible;
        for (size_t i = 0; i < n; i++)
                if (codes[i].kind != CODE_KIND_POSSIBLE) {
                        StoredCode t = codes[n_codes];
                        codes[n_codes++] = codes[i];
                        codes[i] = t;
                }
        n_possible = n - n_codes;
        if (n_codes > 0)
                r = print_table(codes, n_codes);
        if (r >= 0 && n_possible > 0) {
                if (n_codes > 0)
                        putchar('\n');
                print_possible(codes + n_codes, n_possible);
        }
        if (n > 0)
                ;
        else if (f.kind >= 0 || f.account || f.untrusted_only) {
                /* Filters hid everything: only say so, unless nothing is stored at all. */
                StoreFilter all = STORE_FILTER_ALL;
                all.limit = 1;
                r = store_list(s, &all, &codes, &n);
                if (r >= 0 && n > 0)
                        printf(_("No stored code matches these filters ('alcode list' shows them all).\n"));
                else if (r >= 0)
                        r = explain_nothing(s);
                stored_codes_free(codes, n);
                codes = NULL;
                n = 0;
        } else
                r = explain_nothing(s);
        for (size_t i = 0; i < n; i++) {
                company = company || codes[i].kind == CODE_KIND_COMPANY;
                untrusted = untrusted || !codes[i].trusted;
        }
        stored_codes_free(codes, n);
        if (r >= 0 && untrusted)
                printf(_("\n⚠ An UNVERIFIED SENDER is not proven to be Action Logement, AL'in or your employer: "
                         "the mail may be\nphishing. Do not type such a code anywhere before checking it with "
                         "them.\n"));
        /* Only the employer's code is known: the user may take it for theirs. */
        if (r >= 0 && company && (r = have_trusted(s, CODE_KIND_SPECIFIC)) == 0) {
                putchar('\n');
                explain_company_code(stdout);
        }
        if (r < 0)
                return cli_store_error(s, r);
        return cli_flush_stdout();
}

int verb_latest(int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *codes = NULL;
        size_t n = 0;
        int r;

        f.kind = CODE_KIND_SPECIFIC;
        if (argc == 2 && parse_kind(argv[1], &f.kind) < 0)
                return EXIT_BAD_INPUT;
        f.trusted_only = true;
        f.unexpired_only = f.kind == CODE_KIND_OTP; /* an expired login code is no use to a script */
        f.limit = 1;
        r = query_codes(&f, &s, &codes, &n);
        if (r != 0)
                return r;
        if (codes && n > 0)
                printf("%s\n", codes[0].value);
        stored_codes_free(codes, codes ? n : 0);
        if (n > 0)
                return cli_flush_stdout();

        fprintf(stderr, f.kind == CODE_KIND_OTP ? _("alcode: no valid trusted %s stored.\n")
                                                 : _("alcode: no trusted %s stored.\n"),
                code_kind_to_words(f.kind));
        f.trusted_only = false;
        f.untrusted_only = true;
        f.unexpired_only = false;
        r = store_list(s, &f, &codes, &n);
        if (r >= 0 && n > 0)
                fprintf(stderr, _("alcode: one from an UNVERIFIED SENDER is stored: see 'alcode list --untrusted "
                                  "--kind %s'.\n"), code_kind_to_string(f.kind));
        stored_codes_free(codes, n);
        if (r >= 0 && f.kind == CODE_KIND_SPECIFIC) {
                f = STORE_FILTER_ALL;
                f.kind = CODE_KIND_COMPANY;
                f.limit = 1;
                r = store_list(s, &f, &codes, &n);
                if (r >= 0 && n > 0)
                        explain_company_code(stderr);
                stored_codes_free(codes, n);
        }
        return EXIT_NONE;
}

static void print_field(const char *label, const char *value) {
        printf("  %s%s%s ", ansi_grey(), label, ansi_normal());
        cli_print_cell(stdout, value, 0, 0);
}

/* alcode show: the code, its sender, subject, dates and state. */
static void print_code_details(const StoredCode *c) {
        _cleanup_free_ char *ascii = NULL;
        char date[32];

        if (c->kind == CODE_KIND_POSSIBLE) {
                printf(_("%sA mail from %s may hold a code no rule read.%s\n"), ansi_yellow(), sender_org(c->sender),
                       ansi_normal());
                printf(_("  Open it in your mail program; to help a rule read it, save it as a .eml file and run\n"
                         "  'alcode scan --explain FILE' (see alcode.rules(5)). 'alcode forget %" PRIi64 "' dismisses it.\n"),
                       c->id);
        } else {
                fputs(c->trusted ? ansi_bold() : ansi_red(), stdout);
                cli_print_cell(stdout, c->display, 0, 0);
                printf("%s  %s\n", ansi_normal(), code_kind_to_words(c->kind));
                print_field(_("Value:   "), c->value);
                putchar('\n');
        }
        print_field(_("Sender:  "), c->sender);
        (void) address_domain_ascii(c->sender, &ascii); /* out of memory: the address alone */
        if (ascii)
                printf(" [%s]", ascii);
        if (c->sender_name) {
                printf(" (");
                cli_print_cell(stdout, c->sender_name, 0, 0);
                printf(")");
        }
        if (!c->trusted)
                printf("  %s%s%s", ansi_red(), _("⚠ UNVERIFIED SENDER: not a trusted sender for this kind"),
                       ansi_normal());
        putchar('\n');
        print_field(_("Subject: "), c->subject);
        putchar('\n');
        cli_local_date(c->date, date, sizeof date);
        print_field(_("Date:    "), date);
        putchar('\n');
        cli_local_date(c->found_at, date, sizeof date);
        print_field(_("Found:   "), date);
        putchar('\n');
        if (c->expires_at > 0) {
                cli_local_date(c->expires_at, date, sizeof date);
                print_field(_("Expires: "), date);
                if (c->expired)
                        printf("  %s%s%s", ansi_yellow(), _("(expired)"), ansi_normal());
                putchar('\n');
        }
        if (c->superseded) {
                print_field(_("Status:  "), _("replaced by a newer one"));
                putchar('\n');
        }
}

/* alcode show: each message the code was seen in. */
static void print_sightings(const StoreSighting *seen, size_t n_seen) {
        printf(_("  Seen in:\n"));
        for (size_t i = 0; i < n_seen; i++) {
                const StoreSighting *g = &seen[i];

                printf("    ");
                if (*g->source)
                        cli_print_cell(stdout, g->source, 0, 0);
                else {
                        cli_print_cell(stdout, g->account, 0, 0);
                        putchar('/');
                        cli_print_cell(stdout, g->folder, 0, 0);
                        printf(_(" UID %" PRIu32 " (UIDVALIDITY %" PRIu32 ")"), g->uid, g->uidvalidity);
                }
                if (g->labels) {
                        printf(_(", labels "));
                        cli_print_cell(stdout, g->labels, 0, 0);
                }
                printf(_(", Message-ID "));
                cli_print_cell(stdout, g->message_id, 0, 0);
                _cleanup_free_ char *rule = cli_clean(g->rule);
                printf(_(", rule %s, %s\n"), strna(rule), g->trusted ? _("trusted") : _("untrusted"));
        }
}

int verb_show(_unused_ int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        StoredCode *codes = NULL;
        StoreSighting *seen = NULL;
        size_t n = 0, n_seen = 0;
        const StoredCode *c;
        int r;

        if (parse_id(argv[1], &f.id) < 0)
                return EXIT_BAD_INPUT;
        r = query_codes(&f, &s, &codes, &n);
        if (r != 0)
                return r;
        if (n == 0) {
                fprintf(stderr, _("alcode: no code with id %s.\n"), argv[1]);
                return EXIT_NONE;
        }
        if (!codes) /* written as JSON */
                return cli_flush_stdout();
        c = &codes[0];
        r = store_list_sightings(s, f.id, &seen, &n_seen);

        print_code_details(c);
        print_sightings(seen, r >= 0 ? n_seen : 0);
        store_sightings_free(seen, n_seen);
        stored_codes_free(codes, n);
        if (r < 0)
                return cli_store_error(s, r);
        return cli_flush_stdout();
}

int verb_export(_unused_ int argc, _unused_ char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        StoreFilter f = STORE_FILTER_ALL;
        int r;

        if (arg_json == arg_csv) {
                fprintf(stderr, _("alcode export: use exactly one of --json or --csv.\n"));
                return EXIT_BAD_INPUT;
        }
        if (cli_open_store(STORE_READ_ONLY, &s) < 0)
                return EXIT_BAD_INPUT;
        r = arg_json ? store_write_json(s, &f, stdout) : store_write_csv(s, stdout);
        if (r < 0)
                return cli_store_error(s, r);
        return cli_flush_stdout();
}

int verb_forget(_unused_ int argc, char *argv[]) {
        _cleanup_(store_closep) Store *s = NULL;
        int64_t id;
        int r;

        if (parse_id(argv[1], &id) < 0)
                return EXIT_BAD_INPUT;
        if (cli_open_store(STORE_READ_WRITE_EXISTING, &s) < 0)
                return EXIT_BAD_INPUT;
        r = store_forget(s, id);
        if (r == -ENOENT) {
                fprintf(stderr, _("alcode: no code with id %s.\n"), argv[1]);
                return EXIT_NONE;
        }
        if (r < 0)
                return cli_store_error(s, r);
        printf(_("Code %s removed. It comes back only if its mail is read again (alcode rescan, "
                 "alcode scan --store).\n"), argv[1]);
        return cli_flush_stdout();
}
