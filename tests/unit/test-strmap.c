/* strmap.c and strv_push(): what goes in comes out, duplicates are refused, growth keeps every
 * entry, and lists built by strv_push() stay NULL-terminated strvs. */
#include "test-util.h"

#include "macro.h"
#include "strmap.h"
#include "strv.h"

static void test_map(void **state) {
        _cleanup_strv_free_ char **keys = NULL;
        StrMap m = STRMAP_INIT;
        size_t n = 0, allocated = 0, v;

        (void) state;
        for (size_t i = 0; i < 50000; i++) {
                char *k = NULL;
                assert_true(asprintf(&k, "key-%zu", i) > 0);
                assert_int_equal(strv_push(&keys, &n, &allocated, k), 0);
        }
        assert_int_equal(strv_length(keys), 50000);
        assert_null(keys[n]);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(strmap_put(&m, keys[i], i), 0);
        assert_int_equal(strmap_size(&m), 50000);
        for (size_t i = 0; i < n; i++) {
                char k[32];
                (void) snprintf(k, sizeof k, "key-%zu", i);
                assert_true(strmap_get(&m, k, &v));
                assert_int_equal(v, i);
                assert_int_equal(strmap_put(&m, k, 0), -EEXIST);
        }
        assert_false(strmap_get(&m, "key-50000", NULL));
        assert_false(strmap_get(&m, "", NULL));
        assert_int_equal(strmap_put(&m, "", 7), 0);
        assert_true(strmap_get(&m, "", &v));
        assert_int_equal(v, 7);
        strmap_done(&m);
        assert_false(strmap_get(&m, "key-1", NULL));
}

/* strv_push() onto a list made elsewhere (exactly as long as it needs). */
static void test_push_onto_strv(void **state) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n, allocated = 0;

        (void) state;
        assert_int_equal(strv_split_comma("a, b", &l), 0);
        n = strv_length(l);
        for (int i = 0; i < 100; i++)
                assert_int_equal(strv_push(&l, &n, &allocated, strdup("x")), 0);
        assert_int_equal(strv_length(l), 102);
        assert_string_equal(l[1], "b");
        assert_int_equal(strv_push(&l, &n, &allocated, NULL), -ENOMEM);
        assert_int_equal(strv_length(l), 102);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_map),
                cmocka_unit_test(test_push_onto_strv),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
