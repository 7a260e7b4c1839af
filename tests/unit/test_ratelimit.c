/*
 * Tests of the rate limiter: RPM and TPM arithmetic on the one-second
 * sliding window at exact times, concurrency limits, refused calls that
 * take nothing (BUG-14), TPM from the caller's estimate corrected to real
 * usage (BUG-15), x-ratelimit-* values and a rebuild from the ledger.
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

#include "budget/ratelimit.h"
#include "ledger/ledger.h"

/* 2026-12-03T00:00Z: whole minutes make the window's slots easy to name. */
#define T0 INT64_C(1796256000000)
#define S INT64_C(1000)

static void set(ratelimit_t *rl, budget_scope_t scope, const char *name,
                int64_t rpm, int64_t tpm, int64_t concurrent)
{
    ratelimit_spec_t spec = {scope, name, rpm, tpm, concurrent};

    assert_int_equal(ratelimit_set(rl, &spec), 0);
}

/* BUG-14: rpm 2, one call in flight; B is refused for concurrency and must
 * not use up the RPM allowance C needs. */
static void test_ratelimit_bug14_refused_call_takes_no_rpm(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    budget_who_t who = {"k", NULL, NULL};
    ratelimit_ticket_t a, b, c, d;
    ratelimit_refusal_t why;
    ratelimit_headers_t h;

    (void)state;
    set(rl, BUDGET_SCOPE_KEY, "k", 2, 0, 1);
    assert_int_equal(ratelimit_admit(rl, &who, 10, T0, &a, &why, &h), 0);
    assert_int_equal(h.remaining_requests, 1);

    assert_int_equal(ratelimit_admit(rl, &who, 10, T0 + S, &b, &why, &h),
                     -EAGAIN);
    assert_false(b.active);
    assert_int_equal(why.kind, RATELIMIT_CONCURRENT);
    assert_int_equal(why.retry_after_s, 1);
    assert_int_equal(h.remaining_requests, 1);

    ratelimit_settle(rl, &a, 12, T0 + 5 * S);
    assert_int_equal(ratelimit_admit(rl, &who, 10, T0 + 6 * S, &c, &why, &h),
                     0);
    assert_int_equal(h.remaining_requests, 0);
    ratelimit_settle(rl, &c, 12, T0 + 7 * S);

    /* The third request of the minute waits for A's slot: 60 s after
     * second 0, 53 s from t = 7 s. */
    assert_int_equal(ratelimit_admit(rl, &who, 10, T0 + 7 * S, &d, &why, &h),
                     -EAGAIN);
    assert_int_equal(why.kind, RATELIMIT_REQUESTS);
    assert_int_equal(why.used, 2);
    assert_int_equal(why.limit, 2);
    assert_int_equal(why.retry_after_s, 53);
    assert_false(why.never);
    ratelimit_free(rl);
}

static void test_ratelimit_rpm_window_frees_slots_at_exact_times(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    budget_who_t who = {NULL, "team", NULL};
    ratelimit_ticket_t t;
    ratelimit_refusal_t why;
    ratelimit_headers_t h;
    int64_t at[3] = {T0 + 500, T0 + 10200, T0 + 30900};

    (void)state;
    set(rl, BUDGET_SCOPE_TEAM, "team", 3, 0, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ratelimit_admit(rl, &who, 0, at[i], &t, NULL, &h), 0);
        ratelimit_settle(rl, &t, 0, at[i]);
        assert_int_equal(h.remaining_requests, 2 - i);
    }
    /* Full until second 0 leaves the window at t = 60 s. */
    assert_int_equal(ratelimit_admit(rl, &who, 0, T0 + 59999, &t, &why, &h),
                     -EAGAIN);
    assert_int_equal(why.retry_after_s, 1);
    assert_int_equal(h.reset_requests_ms, 90 * S - 59999);
    assert_int_equal(ratelimit_admit(rl, &who, 0, T0 + 60 * S, &t, &why, &h),
                     0);
    ratelimit_settle(rl, &t, 0, T0 + 60 * S);
    assert_int_equal(h.remaining_requests, 0);

    /* Next free: second 10 leaves at 70 s; asked at 61.5 s: 8.5 s, so 9. */
    assert_int_equal(ratelimit_admit(rl, &who, 0, T0 + 61500, &t, &why, &h),
                     -EAGAIN);
    assert_int_equal(why.retry_after_s, 9);
    assert_int_equal(h.limit_requests, 3);
    assert_int_equal(h.limit_tokens, -1);

    /* Two minutes of quiet empty the window. */
    ratelimit_peek(rl, &who, T0 + 200 * S, &h);
    assert_int_equal(h.remaining_requests, 3);
    assert_int_equal(h.reset_requests_ms, 0);
    ratelimit_free(rl);
}

static void test_ratelimit_tpm_estimate_then_real_usage(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    budget_who_t who = {"k", NULL, NULL};
    ratelimit_ticket_t first, second;
    ratelimit_refusal_t why;
    ratelimit_headers_t h;

    (void)state;
    set(rl, BUDGET_SCOPE_KEY, "k", 0, 1000, 0);
    assert_int_equal(ratelimit_admit(rl, &who, 600, T0, &first, &why, &h), 0);
    assert_int_equal(h.remaining_tokens, 400);
    assert_int_equal(ratelimit_admit(rl, &who, 500, T0 + S, &second, &why, &h),
                     -EAGAIN);
    assert_int_equal(why.kind, RATELIMIT_TOKENS);
    assert_int_equal(why.used, 600);
    assert_int_equal(why.asked, 500);
    assert_int_equal(why.retry_after_s, 59);

    /* The provider counted 300: the window follows it. */
    ratelimit_settle(rl, &first, 300, T0 + 2 * S);
    assert_int_equal(
        ratelimit_admit(rl, &who, 500, T0 + 3 * S, &second, &why, &h), 0);
    assert_int_equal(h.remaining_tokens, 200);
    assert_int_equal(h.reset_tokens_ms, 63 * S - 3 * S);
    /* No usage arrived: the estimate stands. */
    ratelimit_settle(rl, &second, -1, T0 + 4 * S);
    ratelimit_peek(rl, &who, T0 + 4 * S, &h);
    assert_int_equal(h.remaining_tokens, 200);

    /* More than the limit alone can never pass. */
    assert_int_equal(
        ratelimit_admit(rl, &who, 1001, T0 + 100 * S, &second, &why, &h),
        -EAGAIN);
    assert_true(why.never);
    ratelimit_free(rl);
}

/* BUG-15: a 4 MB base64 image is the caller's few hundred tokens, not a
 * million; the limiter charges what it is told and then the real count. */
static void test_ratelimit_bug15_image_uses_the_callers_estimate(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    budget_who_t who = {"k", NULL, NULL};
    ratelimit_ticket_t t;
    ratelimit_headers_t h;
    int64_t text = 6, image = 765, max_tokens = 300;

    (void)state;
    set(rl, BUDGET_SCOPE_KEY, "k", 0, 50000, 0);
    assert_int_equal(
        ratelimit_admit(rl, &who, text + image + max_tokens, T0, &t, NULL, &h),
        0);
    assert_int_equal(h.remaining_tokens, 50000 - 1071);
    ratelimit_settle(rl, &t, 778 + 41, T0 + 2 * S);
    ratelimit_peek(rl, &who, T0 + 2 * S, &h);
    assert_int_equal(h.remaining_tokens, 50000 - 819);
    ratelimit_free(rl);
}

static void test_ratelimit_concurrency_limit_and_refund(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    budget_who_t who = {"k", NULL, "task"};
    ratelimit_ticket_t t[3];
    ratelimit_refusal_t why;
    ratelimit_headers_t h;

    (void)state;
    set(rl, BUDGET_SCOPE_TASK, "task", 100, 1000, 2);
    assert_int_equal(ratelimit_admit(rl, &who, 100, T0, &t[0], NULL, NULL), 0);
    assert_int_equal(ratelimit_admit(rl, &who, 100, T0, &t[1], NULL, NULL), 0);
    assert_int_equal(ratelimit_admit(rl, &who, 100, T0, &t[2], &why, &h),
                     -EAGAIN);
    assert_int_equal(why.kind, RATELIMIT_CONCURRENT);
    assert_int_equal(why.used, 2);
    assert_int_equal(why.scope, BUDGET_SCOPE_TASK);
    assert_int_equal(h.remaining_requests, 98);
    assert_int_equal(h.remaining_tokens, 800);

    /* A later stage refused the call: it gives everything back. */
    ratelimit_refund(rl, &t[1], T0 + 10);
    ratelimit_refund(rl, &t[1], T0 + 10); /* no-op */
    assert_int_equal(ratelimit_admit(rl, &who, 100, T0 + 20, &t[2], NULL, &h),
                     0);
    assert_int_equal(h.remaining_requests, 98);
    assert_int_equal(h.remaining_tokens, 800);
    ratelimit_settle(rl, &t[0], 100, T0 + 30);
    ratelimit_settle(rl, &t[2], 100, T0 + 30);
    ratelimit_free(rl);
}

static void test_ratelimit_scopes_refuse_without_charging(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    budget_who_t alice = {"alice", "search", NULL};
    budget_who_t bob = {"bob", "search", NULL};
    budget_who_t alice_alone = {"alice", NULL, NULL};
    ratelimit_ticket_t t;
    ratelimit_refusal_t why;
    ratelimit_headers_t h;

    (void)state;
    set(rl, BUDGET_SCOPE_KEY, "alice", 10, 0, 0);
    set(rl, BUDGET_SCOPE_KEY, "bob", 10, 0, 0);
    set(rl, BUDGET_SCOPE_TEAM, "search", 1, 0, 0);
    assert_int_equal(ratelimit_admit(rl, &bob, 0, T0, &t, NULL, NULL), 0);
    assert_int_equal(ratelimit_admit(rl, &alice, 0, T0 + S, &t, &why, &h),
                     -EAGAIN);
    assert_int_equal(why.scope, BUDGET_SCOPE_TEAM);
    assert_string_equal(why.name, "search");
    assert_int_equal(why.retry_after_s, 59);
    /* The header reports the tightest limit: the team's. */
    assert_int_equal(h.limit_requests, 1);
    assert_int_equal(h.remaining_requests, 0);

    ratelimit_peek(rl, &alice_alone, T0 + S, &h);
    assert_int_equal(h.limit_requests, 10);
    assert_int_equal(h.remaining_requests, 10);
    ratelimit_free(rl);
}

static void test_ratelimit_clock_stepping_back_keeps_counts(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    budget_who_t who = {"k", NULL, NULL};
    ratelimit_ticket_t t;
    ratelimit_headers_t h;

    (void)state;
    set(rl, BUDGET_SCOPE_KEY, "k", 5, 0, 0);
    assert_int_equal(ratelimit_admit(rl, &who, 0, T0 + 30 * S, &t, NULL, &h),
                     0);
    ratelimit_settle(rl, &t, 0, T0 + 30 * S);
    ratelimit_peek(rl, &who, T0 + 10 * S, &h);
    assert_int_equal(h.remaining_requests, 4);
    ratelimit_free(rl);
}

static void test_ratelimit_set_checks_its_spec(void **state)
{
    ratelimit_t *rl = ratelimit_new();
    ratelimit_spec_t spec = {BUDGET_SCOPE_KEY, "k", -1, 0, 0};
    budget_who_t nobody = {"x", "y", "z"};
    ratelimit_ticket_t t;
    ratelimit_headers_t h;

    (void)state;
    assert_int_equal(ratelimit_set(rl, &spec), -EINVAL);
    spec.rpm = 1;
    spec.scope = BUDGET_SCOPE_GLOBAL;
    assert_int_equal(ratelimit_set(rl, &spec), -EINVAL);
    spec.name = NULL;
    assert_int_equal(ratelimit_set(rl, &spec), 0);
    /* Changing a limit keeps the window. */
    assert_int_equal(ratelimit_admit(rl, &nobody, 0, T0, &t, NULL, &h), 0);
    spec.rpm = 2;
    assert_int_equal(ratelimit_set(rl, &spec), 0);
    ratelimit_peek(rl, &nobody, T0, &h);
    assert_int_equal(h.remaining_requests, 1);
    ratelimit_settle(rl, &t, 0, T0);
    ratelimit_free(rl);
}

static void test_ratelimit_reset_durations_as_openai_writes_them(void **state)
{
    char out[32];

    (void)state;
    assert_string_equal(ratelimit_format_reset(0, out, sizeof(out)), "0s");
    assert_string_equal(ratelimit_format_reset(250, out, sizeof(out)), "250ms");
    assert_string_equal(ratelimit_format_reset(1000, out, sizeof(out)), "1s");
    assert_string_equal(ratelimit_format_reset(59500, out, sizeof(out)),
                        "59.5s");
    assert_string_equal(ratelimit_format_reset(360000, out, sizeof(out)),
                        "6m0s");
    assert_string_equal(ratelimit_format_reset(61001, out, sizeof(out)),
                        "1m1.001s");
}

static void put(ledger_t *ledger, int i, const char *key, int64_t at,
                int64_t in, int64_t out, int attempts)
{
    ledger_outcome_t o;

    memset(&o, 0, sizeof(o));
    snprintf(o.id, sizeof(o.id), "out_%024d", i);
    snprintf(o.key_id, sizeof(o.key_id), "%s", key);
    o.started_ms = at;
    o.usage.present = true;
    o.usage.input_tokens = in;
    o.usage.output_tokens = out;
    o.n_attempts = attempts;
    for (int a = 0; a < attempts; a++) {
        o.attempts[a].attempt_no = a + 1;
        o.attempts[a].started_ms = at;
    }
    assert_int_equal(ledger_admit(ledger), 0);
    ledger_append(ledger, &o);
}

static void test_ratelimit_restart_rebuilds_the_window(void **state)
{
    char dir[] = "/tmp/tollgate-rl-XXXXXX", path[96], file[128], err[256];
    const char *suffix[] = {"", "-wal", "-shm"};
    ratelimit_t *rl = ratelimit_new();
    budget_who_t who = {"k", NULL, NULL};
    int64_t now = T0 + 90 * S;
    ledger_t *ledger;
    ratelimit_headers_t h;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ledger.db", dir);
    ledger = ledger_open(path, 16, err, sizeof(err));
    assert_non_null(ledger);
    put(ledger, 0, "k", T0 + 20 * S, 100, 10, 1); /* left the window */
    put(ledger, 1, "k", T0 + 31 * S, 200, 20, 1); /* second 31: in */
    put(ledger, 2, "k", T0 + 80 * S, 300, 30, 2); /* in */
    put(ledger, 3, "k", T0 + 85 * S, 999, 99, 0); /* refused: no call */
    put(ledger, 4, "j", T0 + 85 * S, 400, 40, 1); /* another key */
    ledger_close(ledger);

    set(rl, BUDGET_SCOPE_KEY, "k", 10, 1000, 0);
    assert_int_equal(ratelimit_rebuild(rl, path, now, err, sizeof(err)), 0);
    ratelimit_peek(rl, &who, now, &h);
    assert_int_equal(h.remaining_requests, 8);
    assert_int_equal(h.remaining_tokens, 1000 - 220 - 330);
    assert_int_equal(h.reset_requests_ms, T0 + 140 * S - now);

    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", path, suffix[i]);
        unlink(file);
    }
    rmdir(dir);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit_bug14_refused_call_takes_no_rpm),
        cmocka_unit_test(test_ratelimit_rpm_window_frees_slots_at_exact_times),
        cmocka_unit_test(test_ratelimit_tpm_estimate_then_real_usage),
        cmocka_unit_test(test_ratelimit_bug15_image_uses_the_callers_estimate),
        cmocka_unit_test(test_ratelimit_concurrency_limit_and_refund),
        cmocka_unit_test(test_ratelimit_scopes_refuse_without_charging),
        cmocka_unit_test(test_ratelimit_clock_stepping_back_keeps_counts),
        cmocka_unit_test(test_ratelimit_set_checks_its_spec),
        cmocka_unit_test(test_ratelimit_reset_durations_as_openai_writes_them),
        cmocka_unit_test(test_ratelimit_restart_rebuilds_the_window),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
