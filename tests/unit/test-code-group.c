/* code-group.c: folding a list of new codes changes nothing in the group notification made of
 * it, shown at any time (login codes expire in between), and keeps the list a handful long
 * however many codes a backfill brings. */
#include "test-util.h"

#include "code-group.h"
#include "macro.h"

/* What show_group() (daemon/notify.c) puts in a group notification: the newest unexpired
 * trusted code of each listed kind, the others counted per kind or as untrusted, the total. */
typedef struct View {
        char shown[ELEMENTSOF(code_group_listed)][32];
        size_t counts[_CODE_KIND_MAX];
        size_t untrusted, total;
} View;

static void view_of(const StoredCode *codes, size_t n, const CodeTally *t, int64_t now, View *v) {
        const StoredCode *shown[ELEMENTSOF(code_group_listed)] = {};

        *v = (View) {};
        for (size_t k = 0; k < ELEMENTSOF(code_group_listed); k++) {
                for (size_t i = 0; i < n; i++) {
                        const StoredCode *c = &codes[i], *b = shown[k];
                        if (c->kind != code_group_listed[k] || !c->trusted ||
                            (c->expires_at > 0 && c->expires_at <= now))
                                continue;
                        if (!b || c->date > b->date || (c->date == b->date && strcmp(c->value, b->value) > 0))
                                shown[k] = c;
                }
                if (shown[k])
                        snprintf(v->shown[k], sizeof v->shown[k], "%s", shown[k]->value);
        }
        for (size_t i = 0; i < n; i++) {
                bool is_shown = false;
                for (size_t k = 0; k < ELEMENTSOF(shown); k++)
                        is_shown = is_shown || shown[k] == &codes[i];
                if (is_shown)
                        continue;
                if (!codes[i].trusted)
                        v->untrusted++;
                else
                        v->counts[codes[i].kind]++;
        }
        v->total = n;
        if (t) {
                for (size_t k = 0; k < _CODE_KIND_MAX; k++)
                        v->counts[k] += t->trusted[k];
                v->untrusted += t->untrusted;
                v->total += t->n;
        }
}

static void assert_view_equal(const View *a, const View *b) {
        for (size_t k = 0; k < ELEMENTSOF(code_group_listed); k++)
                assert_string_equal(a->shown[k], b->shown[k]);
        for (size_t k = 0; k < _CODE_KIND_MAX; k++)
                assert_int_equal(a->counts[k], b->counts[k]);
        assert_int_equal(a->untrusted, b->untrusted);
        assert_int_equal(a->total, b->total);
}

static StoredCode make(unsigned id, CodeKind kind, bool trusted, int64_t date, int64_t expires_at) {
        char value[32];

        snprintf(value, sizeof value, "V%05u", id);
        return (StoredCode) { .id = id, .kind = kind, .trusted = trusted, .date = date, .expires_at = expires_at,
                              .value = strdup(value), .display = strdup(value), .account = strdup("acct"),
                              .folder = strdup("INBOX"), .subject = strdup("Votre code") };
}

/* Random lists, taken in batches as alcoded does (fold after each), against the whole list:
 * dates close together (ties broken by value), login codes with different validities. */
static void test_same_notification(void **state) {
        enum { N = 3000 };
        StoredCode *all = calloc(N, sizeof(StoredCode)), *kept = calloc(N, sizeof(StoredCode));
        CodeTally t = {};
        size_t n_kept = 0;

        (void) state;
        assert_non_null(all);
        assert_non_null(kept);
        srand(16);
        for (unsigned i = 0; i < N; i++) {
                CodeKind kind = (CodeKind) (rand() % _CODE_KIND_MAX);
                int64_t date = 1000 + rand() % 50;
                int64_t expires = kind == CODE_KIND_OTP ? date + (rand() % 2 ? 10 : 40)
                                  : rand() % 10 == 0     ? date + 30
                                                         : 0;
                all[i] = make(i, kind, rand() % 5 != 0, date, expires);
                all[i].value[1] = (char) ('0' + rand() % 3); /* same date, value decides */
        }
        for (size_t done = 0; done < N;) {
                size_t k = MIN((size_t) (1 + rand() % 40), N - done);
                for (size_t i = 0; i < k; i++) {
                        kept[n_kept + i] = all[done + i];
                        kept[n_kept + i].value = strdup(all[done + i].value);
                        kept[n_kept + i].display = strdup(all[done + i].display);
                        kept[n_kept + i].account = strdup("acct");
                        kept[n_kept + i].folder = strdup("INBOX");
                        kept[n_kept + i].subject = strdup("Votre code");
                }
                n_kept = code_group_fold(kept, n_kept + k, &t);
                done += k;
        }
        assert_int_equal(n_kept + t.n, N);
        assert_true(n_kept < N / 10);
        for (int64_t now = 990; now <= 1100; now++) {
                View full, folded;
                view_of(all, N, NULL, now, &full);
                view_of(kept, n_kept, &t, now, &folded);
                assert_view_equal(&full, &folded);
        }
        stored_codes_free(all, N);
        stored_codes_free(kept, n_kept);
}

/* A backfill of a million messages: 20,000 login codes (each new again once the store drops it),
 * codes of every kind, untrusted ones. What is held stays one code per listed kind. */
static void test_bounded(void **state) {
        StoredCode *l = NULL;
        CodeTally t = {};
        size_t n = 0;

        (void) state;
        for (unsigned i = 0; i < 20000; i++) {
                StoredCode *a = reallocarray(l, n + 2, sizeof(StoredCode));
                assert_non_null(a);
                l = a;
                l[n++] = make(i, CODE_KIND_OTP, true, 1000 + i, 1000 + i + 600);
                CodeKind kind = (CodeKind) (i % _CODE_KIND_MAX);
                if (kind == CODE_KIND_OTP)
                        kind = CODE_KIND_SPECIFIC;
                l[n++] = make(100000 + i, kind, i % 3 != 0, 5000 + i % 7000, 0);
                n = code_group_fold(l, n, &t);
                assert_true(n <= ELEMENTSOF(code_group_listed));
        }
        assert_int_equal(n + t.n, 40000);
        for (size_t i = 0; i < n; i++)
                if (l[i].kind == CODE_KIND_OTP)
                        assert_string_equal(l[i].value, "V19999");
        stored_codes_free(l, n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_same_notification),
                cmocka_unit_test(test_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
