/*
 * Tests of the approvals store: a held call's pending approval, approved
 * once (used up by exactly one retry), granted standing until a date, or
 * denied; retries for another key, task or tier never pass.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget/approvals.h"

#define T0 INT64_C(1796256000000)
#define H INT64_C(3600000)

typedef struct fixture {
    char dir[64];
    char path[96];
    approvals_t *store;
} fixture_t;

static int setup_store(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tollgate-apr-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/ledger.db", fx->dir);
    if (approvals_open(fx->path, &fx->store, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    *state = fx;
    return 0;
}

static int teardown_store(void **state)
{
    fixture_t *fx = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char file[128];

    approvals_close(fx->store);
    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", fx->path, suffix[i]);
        unlink(file);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static const approval_call_t call = {"alice", "contract-summary", "premium"};

static void hold(approvals_t *store, char id[APPROVAL_ID_SIZE])
{
    approval_request_t req = {
        "alice",   "contract-summary",    "premium",
        "gpt-4.1", INT64_C(620000000000), "estimated cost over $0.50"};

    assert_int_equal(approvals_create(store, &req, T0, id), 0);
}

static approval_verdict_t check(approvals_t *store, const approval_call_t *c,
                                const char *id, int64_t now, approval_t *a)
{
    approval_verdict_t verdict;

    assert_int_equal(approvals_check(store, c, id, now, &verdict, a), 0);
    return verdict;
}

static void test_approvals_pending_then_once_is_used_up(void **state)
{
    fixture_t *fx = *state;
    char id[APPROVAL_ID_SIZE];
    approval_t a;

    hold(fx->store, id);
    assert_memory_equal(id, "apr_", 4);
    assert_int_equal(strlen(id), APPROVAL_ID_SIZE - 1);
    assert_int_equal(check(fx->store, &call, NULL, T0, NULL), APPROVAL_NONE);
    assert_int_equal(check(fx->store, &call, id, T0, &a), APPROVAL_PENDING);
    assert_int_equal(a.estimate, INT64_C(620000000000));
    assert_string_equal(a.reason, "estimated cost over $0.50");

    assert_int_equal(approvals_approve_once(fx->store, id, "ops-lead", T0 + 5),
                     0);
    assert_int_equal(check(fx->store, &call, id, T0 + 10, &a), APPROVAL_PASS);
    assert_int_equal(a.used_ms, T0 + 10);
    assert_string_equal(a.decided_by, "ops-lead");
    /* Used up: the next retry with the same id is held again. */
    assert_int_equal(check(fx->store, &call, id, T0 + 20, NULL), APPROVAL_USED);
    assert_int_equal(approvals_get(fx->store, id, &a), 0);
    assert_int_equal(a.decision, APPROVAL_DECISION_ONCE);
    assert_int_equal(a.decided_ms, T0 + 5);
    assert_int_equal(a.used_ms, T0 + 10);
}

static void test_approvals_standing_passes_until_its_date(void **state)
{
    fixture_t *fx = *state;
    char id[APPROVAL_ID_SIZE];
    approval_t a;
    approval_call_t other_tier = {"alice", "contract-summary", "standard"};

    hold(fx->store, id);
    assert_int_equal(
        approvals_grant_standing(fx->store, id, "ops-lead", T0 + 24 * H, T0),
        0);
    /* With the header or without it, again and again, until the date. */
    assert_int_equal(check(fx->store, &call, id, T0 + H, NULL), APPROVAL_PASS);
    assert_int_equal(check(fx->store, &call, NULL, T0 + 2 * H, &a),
                     APPROVAL_PASS);
    assert_string_equal(a.id, id);
    assert_int_equal(check(fx->store, &call, "", T0 + 24 * H - 1, NULL),
                     APPROVAL_PASS);
    assert_int_equal(check(fx->store, &call, id, T0 + 24 * H, NULL),
                     APPROVAL_EXPIRED);
    assert_int_equal(check(fx->store, &call, NULL, T0 + 24 * H, NULL),
                     APPROVAL_NONE);
    /* Another tier is not covered. */
    assert_int_equal(check(fx->store, &other_tier, NULL, T0 + H, NULL),
                     APPROVAL_NONE);
    assert_int_equal(check(fx->store, &other_tier, id, T0 + H, NULL),
                     APPROVAL_MISMATCH);
}

static void test_approvals_deny_and_decide_once_only(void **state)
{
    fixture_t *fx = *state;
    char id[APPROVAL_ID_SIZE];
    approval_t *list;
    size_t n;

    hold(fx->store, id);
    assert_int_equal(approvals_deny(fx->store, id, "", T0), -EINVAL);
    assert_int_equal(approvals_deny(fx->store, id, "ops-lead", T0), 0);
    assert_int_equal(approvals_approve_once(fx->store, id, "other", T0),
                     -EALREADY);
    assert_int_equal(approvals_grant_standing(fx->store, id, "x", T0 + H, T0),
                     -EALREADY);
    assert_int_equal(approvals_grant_standing(fx->store, id, "x", T0, T0),
                     -EINVAL);
    assert_int_equal(approvals_deny(fx->store, "apr_missing", "x", T0),
                     -ENOENT);
    assert_int_equal(check(fx->store, &call, id, T0, NULL), APPROVAL_DENIED);
    assert_int_equal(check(fx->store, &call, "apr_missing", T0, NULL),
                     APPROVAL_UNKNOWN);

    hold(fx->store, id);
    assert_int_equal(approvals_list(fx->store, true, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, id);
    free(list);
    assert_int_equal(approvals_list(fx->store, false, &list, &n), 0);
    assert_int_equal(n, 2);
    free(list);
}

static void test_approvals_other_key_cannot_use_an_id(void **state)
{
    fixture_t *fx = *state;
    char id[APPROVAL_ID_SIZE];
    approval_call_t mallory = {"mallory", "contract-summary", "premium"};
    approval_t a;

    hold(fx->store, id);
    assert_int_equal(approvals_approve_once(fx->store, id, "ops", T0), 0);
    memset(&a, 0, sizeof(a));
    assert_int_equal(check(fx->store, &mallory, id, T0, &a), APPROVAL_MISMATCH);
    assert_string_equal(a.id, "");
    /* Still unused for its own caller. */
    assert_int_equal(check(fx->store, &call, id, T0, NULL), APPROVAL_PASS);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_store, teardown_store)
    const struct CMUnitTest tests[] = {
        T(test_approvals_pending_then_once_is_used_up),
        T(test_approvals_standing_passes_until_its_date),
        T(test_approvals_deny_and_decide_once_only),
        T(test_approvals_other_key_cannot_use_an_id),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
