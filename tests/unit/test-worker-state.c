/* worker-state.c: every state reads back from its published word, the published words are the
 * ones DESIGN.md and alcoded(8) promise (Status(), AccountStateChanged, `status --json`), each
 * state has its own words for a user, and unknown words and values are refused. */
#include "test-util.h"

#include "worker-state.h"

static void test_published_words(void **state) {
        /* The interface, in enum order: a rename here breaks every client of the D-Bus API. */
        static const char *const published[] = {
                "connecting", "scanning", "idle", "backoff", "password", "failed", "stopped", "stuck",
        };

        (void) state;
        assert_int_equal(ELEMENTSOF(published), _WORKER_STATE_MAX);
        for (WorkerState s = 0; s < _WORKER_STATE_MAX; s++) {
                assert_string_equal(worker_state_to_string(s), published[s]);
                assert_int_equal(worker_state_from_string(published[s]), s);
        }
}

static void test_words(void **state) {
        (void) state;
        assert_string_equal(worker_state_to_words(WORKER_IDLE), "watching");
        assert_string_equal(worker_state_to_words(WORKER_BACKOFF), "waiting to reconnect");
        for (WorkerState s = 0; s < _WORKER_STATE_MAX; s++) {
                assert_non_null(worker_state_to_words(s));
                for (WorkerState t = 0; t < s; t++)
                        assert_string_not_equal(worker_state_to_words(s), worker_state_to_words(t));
        }
}

static void test_trouble(void **state) {
        (void) state;
        /* What `alcode status` shows in red. */
        for (WorkerState s = 0; s < _WORKER_STATE_MAX; s++)
                assert_int_equal(worker_state_is_trouble(s), s == WORKER_BACKOFF || s == WORKER_PASSWORD ||
                                                              s == WORKER_FAILED || s == WORKER_STUCK);
}

static void test_refused(void **state) {
        (void) state;
        assert_int_equal(worker_state_from_string(NULL), _WORKER_STATE_INVALID);
        assert_int_equal(worker_state_from_string(""), _WORKER_STATE_INVALID);
        assert_int_equal(worker_state_from_string("waiting to reconnect"), _WORKER_STATE_INVALID);
        assert_int_equal(worker_state_from_string("Idle"), _WORKER_STATE_INVALID);
        assert_null(worker_state_to_string(_WORKER_STATE_MAX));
        assert_null(worker_state_to_string(_WORKER_STATE_INVALID));
        assert_null(worker_state_to_words(_WORKER_STATE_MAX));
        assert_null(worker_state_to_words(_WORKER_STATE_INVALID));
        assert_false(worker_state_is_trouble(_WORKER_STATE_MAX));
        assert_false(worker_state_is_trouble(_WORKER_STATE_INVALID));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_published_words),
                cmocka_unit_test(test_words),
                cmocka_unit_test(test_trouble),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
