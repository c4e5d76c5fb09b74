/* A cmocka program with one passing and one skipping test, for the check in tests/CMakeLists.txt
 * that a unit test which skips exits 77 (ctest: "Skipped"), and 1 under CI=true. */
#include "test-util.h"

static void test_passes(void **state) {
        (void) state;
        assert_int_equal(1 + 1, 2);
}

static void test_skips(void **state) {
        (void) state;
        skip();
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_passes),
                cmocka_unit_test(test_skips),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
