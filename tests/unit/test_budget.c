/*
 * Tests of the budget book: reservations never let spend pass a hard
 * limit (BUG-11), holds are all or nothing across scopes, soft limits are
 * reported once a period, refusals say why and when, the worst-case
 * bound holds against billing_cost(), and a restart rebuilds spend from
 * a ledger file with exact totals.
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

#include "billing/billing.h"
#include "budget/budget.h"
#include "ledger/ledger.h"

#define CENT (PICO_PER_USD / 100)
#define H INT64_C(3600000)
/* 2026-12-03T00:00Z, a Thursday. */
#define DEC3 INT64_C(1796256000000)

static void add(budget_book_t *book, budget_scope_t scope, const char *name,
                budget_period_t period, pico_t hard, pico_t soft)
{
    budget_spec_t spec = {scope, name, period, hard, soft};

    assert_int_equal(budget_add(book, &spec), 0);
}

static budget_status_t status_of(budget_book_t *book, const budget_who_t *who,
                                 int64_t now, int index)
{
    budget_status_t st[BUDGET_MAX_HOLDS];
    int n = budget_status(book, who, now, st, BUDGET_MAX_HOLDS);

    assert_true(index < n);
    return st[index];
}

/* BUG-11: $1.00 hard, $0.95 spent, five calls of $0.033 at once. */
static void test_budget_bug11_exactly_one_of_five_fits(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {"key-budget-test", NULL, NULL};
    budget_reservation_t res[5];
    budget_refusal_t refusal;
    price_t price;
    budget_bound_t bound = {1000, 2000, 0};
    pico_t amount;
    int admitted = 0;

    (void)state;
    add(book, BUDGET_SCOPE_KEY, "key-budget-test", BUDGET_MONTH, PICO_PER_USD,
        BUDGET_NO_LIMIT);
    budget_record(book, &who, DEC3, 95 * CENT, DEC3);

    billing_price_init(&price, "claude-sonnet-4-5", "test");
    price.input = 3000000;   /* $3.00 / 1M */
    price.output = 15000000; /* $15.00 / 1M */
    assert_int_equal(budget_worst_case(&price, &bound, &amount), 0);
    assert_int_equal(amount, INT64_C(33000000000)); /* $0.033 */

    for (int i = 0; i < 5; i++) {
        int rc =
            budget_reserve(book, &who, amount, DEC3 + 1, &res[i], &refusal);

        admitted += rc == 0;
        assert_true(rc == 0 || rc == -EDQUOT);
    }
    assert_int_equal(admitted, 1);
    assert_int_equal(refusal.budget.spent, 95 * CENT);
    assert_int_equal(refusal.budget.held, amount);
    assert_int_equal(refusal.budget.hard, PICO_PER_USD);
    assert_int_equal(refusal.amount, amount);

    budget_settle(book, &res[0], amount, DEC3 + 2000, NULL);
    for (int i = 1; i < 5; i++)
        budget_release(book, &res[i]); /* inactive: no-ops */
    assert_int_equal(status_of(book, &who, DEC3 + 3000, 0).spent,
                     INT64_C(983000000000));
    assert_int_equal(status_of(book, &who, DEC3 + 3000, 0).held, 0);
    budget_book_free(book);
}

/* A small generator so the interleaving is the same on every run. */
static uint64_t next_random(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 33;
}

#define CALLS 200

/*
 * 200 calls against a $4.00 budget, with reserve, settle and release
 * interleaved in a fixed pseudo-random order, many in flight at once. A
 * model of the book is kept alongside; after every step the book must
 * match it and spent + held must stay under the limit.
 */
static void test_budget_never_overspent_under_interleaving(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {"k", "t", "task"};
    budget_reservation_t res[CALLS];
    pico_t amount[CALLS], hard = 4 * PICO_PER_USD, spent = 0, held = 0;
    int started = 0, refused = 0, settled = 0, released = 0;
    int max_in_flight = 0;
    uint64_t seed = 42;

    (void)state;
    memset(res, 0, sizeof(res));
    add(book, BUDGET_SCOPE_KEY, "k", BUDGET_DAY, hard, BUDGET_NO_LIMIT);
    add(book, BUDGET_SCOPE_GLOBAL, "", BUDGET_TOTAL, 2 * hard, BUDGET_NO_LIMIT);

    while (settled + released + refused < CALLS) {
        int pick = (int)(next_random(&seed) % 3);
        int i = (int)(next_random(&seed) % CALLS);
        budget_status_t st;

        if (pick == 0 && started < CALLS) {
            amount[started] = (pico_t)(next_random(&seed) % 12 + 1) * CENT;
            if (budget_reserve(book, &who, amount[started], DEC3, &res[started],
                               NULL) == 0) {
                held += amount[started];
                assert_true(spent + held <= hard);
            } else {
                assert_true(spent + held + amount[started] > hard);
                refused++;
            }
            started++;
        } else if (pick == 1 && res[i].active) {
            pico_t actual =
                amount[i] * (pico_t)(next_random(&seed) % 101) / 100;

            budget_settle(book, &res[i], actual, DEC3, NULL);
            held -= amount[i];
            spent += actual;
            settled++;
        } else if (pick == 2 && res[i].active) {
            budget_release(book, &res[i]);
            held -= amount[i];
            released++;
        }
        if (started - refused - settled - released > max_in_flight)
            max_in_flight = started - refused - settled - released;
        st = status_of(book, &who, DEC3, 0);
        assert_int_equal(st.spent, spent);
        assert_int_equal(st.held, held);
        assert_true(st.spent + st.held <= hard);
    }
    assert_int_equal(started, CALLS);
    assert_int_equal(settled + released + refused, CALLS);
    assert_int_equal(status_of(book, &who, DEC3, 0).held, 0);
    assert_int_equal(status_of(book, &who, DEC3, 1).spent, spent);
    /* The fixed seed gives these exact figures; a change in them means
     * the book decided differently. */
    assert_int_equal(settled, 63);
    assert_int_equal(released, 80);
    assert_int_equal(refused, 57);
    assert_int_equal(spent, INT64_C(2071800000000));
    assert_true(max_in_flight > 20);
    budget_book_free(book);
}

static void test_budget_scopes_all_or_nothing(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {"alice", "search", "triage"};
    budget_who_t other = {"bob", "ads", "triage"};
    budget_reservation_t res;
    budget_refusal_t refusal;

    (void)state;
    add(book, BUDGET_SCOPE_KEY, "alice", BUDGET_DAY, 10 * PICO_PER_USD, -1);
    add(book, BUDGET_SCOPE_TEAM, "search", BUDGET_MONTH, PICO_PER_USD, -1);
    add(book, BUDGET_SCOPE_TASK, "triage", BUDGET_WEEK, 5 * PICO_PER_USD, -1);
    add(book, BUDGET_SCOPE_GLOBAL, NULL, BUDGET_TOTAL, 100 * PICO_PER_USD, -1);
    budget_record(book, &who, DEC3, 90 * CENT, DEC3);

    /* The team has $0.10 left: $0.20 is refused and nothing is held. */
    assert_int_equal(
        budget_reserve(book, &who, 20 * CENT, DEC3, &res, &refusal), -EDQUOT);
    assert_false(res.active);
    assert_int_equal(refusal.budget.scope, BUDGET_SCOPE_TEAM);
    assert_string_equal(refusal.budget.name, "search");
    for (int i = 0; i < 4; i++)
        assert_int_equal(status_of(book, &who, DEC3, i).held, 0);

    /* $0.05 fits everywhere and is held by all four. */
    assert_int_equal(budget_reserve(book, &who, 5 * CENT, DEC3, &res, NULL), 0);
    assert_int_equal(res.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(status_of(book, &who, DEC3, i).held, 5 * CENT);

    /* Another key shares only the task and global budgets. */
    assert_int_equal(budget_status(book, &other, DEC3, NULL, 0), 0);
    assert_int_equal(status_of(book, &other, DEC3, 0).scope, BUDGET_SCOPE_TASK);
    assert_int_equal(status_of(book, &other, DEC3, 0).held, 5 * CENT);
    budget_settle(book, &res, 4 * CENT, DEC3, NULL);
    assert_int_equal(status_of(book, &who, DEC3, 1).spent, 94 * CENT);
    assert_int_equal(status_of(book, &other, DEC3, 1).spent, 94 * CENT);
    budget_book_free(book);
}

static void test_budget_settle_above_hold_still_counts(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {"k", NULL, NULL};
    budget_reservation_t res;
    budget_settlement_t out;

    (void)state;
    add(book, BUDGET_SCOPE_KEY, "k", BUDGET_DAY, PICO_PER_USD, -1);
    assert_int_equal(budget_reserve(book, &who, 10 * CENT, DEC3, &res, NULL),
                     0);
    budget_settle(book, &res, 12 * CENT, DEC3, &out);
    assert_true(out.over_hold);
    assert_int_equal(out.over_by, 2 * CENT);
    assert_int_equal(status_of(book, &who, DEC3, 0).spent, 12 * CENT);
    assert_int_equal(status_of(book, &who, DEC3, 0).held, 0);

    /* A second settle, or a release, of an ended hold does nothing. */
    budget_settle(book, &res, 12 * CENT, DEC3, &out);
    budget_release(book, &res);
    assert_false(out.over_hold);
    assert_int_equal(status_of(book, &who, DEC3, 0).spent, 12 * CENT);
    budget_book_free(book);
}

static void test_budget_soft_limit_reported_once_per_period(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {NULL, "team-a", NULL};
    budget_reservation_t res;
    budget_settlement_t out;
    pico_t costs[] = {30 * CENT, 30 * CENT, 10 * CENT};
    int crossed[] = {0, 1, 0};

    (void)state;
    add(book, BUDGET_SCOPE_TEAM, "team-a", BUDGET_DAY, PICO_PER_USD, 50 * CENT);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            budget_reserve(book, &who, 30 * CENT, DEC3 + i, &res, NULL), 0);
        budget_settle(book, &res, costs[i], DEC3 + i, &out);
        assert_int_equal(out.n_soft, crossed[i]);
    }
    assert_int_equal(status_of(book, &who, DEC3, 0).spent, 70 * CENT);

    /* The next day starts at zero and reports again. */
    assert_int_equal(
        budget_reserve(book, &who, 60 * CENT, DEC3 + 24 * H, &res, NULL), 0);
    budget_settle(book, &res, 60 * CENT, DEC3 + 24 * H, &out);
    assert_int_equal(out.n_soft, 1);
    assert_int_equal(out.soft[0].spent, 60 * CENT);
    assert_int_equal(out.soft[0].soft, 50 * CENT);
    assert_int_equal(out.soft[0].reset_ms, DEC3 + 48 * H);
    budget_book_free(book);
}

static void test_budget_hold_across_reset_settles_in_its_period(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {"k", NULL, NULL};
    budget_reservation_t late;
    budget_status_t st;

    (void)state;
    add(book, BUDGET_SCOPE_KEY, "k", BUDGET_DAY, PICO_PER_USD, -1);
    assert_int_equal(
        budget_reserve(book, &who, 40 * CENT, DEC3 + 24 * H - 1, &late, NULL),
        0);

    /* After midnight the hold still counts against the new day... */
    st = status_of(book, &who, DEC3 + 24 * H, 0);
    assert_int_equal(st.start_ms, DEC3 + 24 * H);
    assert_int_equal(st.spent, 0);
    assert_int_equal(st.held, 40 * CENT);

    /* ...and its cost belongs to the day it started in. */
    budget_settle(book, &late, 30 * CENT, DEC3 + 24 * H + 5, NULL);
    st = status_of(book, &who, DEC3 + 24 * H + 5, 0);
    assert_int_equal(st.spent, 0);
    assert_int_equal(st.held, 0);
    budget_book_free(book);
}

static void test_budget_refusal_message_names_budget_and_reset(void **state)
{
    budget_tz_t *tz = NULL;
    budget_book_t *book;
    budget_who_t who = {"alice", NULL, NULL};
    budget_reservation_t res;
    budget_refusal_t refusal;
    char err[128], msg[512];

    (void)state;
    if (budget_tz_load("Europe/Berlin", &tz, err, sizeof(err)) != 0) {
        printf("SKIP test_budget_refusal_message: %s\n", err);
        return;
    }
    book = budget_book_new(tz);
    add(book, BUDGET_SCOPE_KEY, "alice", BUDGET_MONTH, PICO_PER_USD, -1);
    budget_record(book, &who, DEC3, 95 * CENT, DEC3);
    assert_int_equal(
        budget_reserve(book, &who, INT64_C(33000000000), DEC3, &res, &refusal),
        0);
    assert_int_equal(
        budget_reserve(book, &who, INT64_C(33000000000), DEC3, &res, &refusal),
        -EDQUOT);
    budget_refusal_message(&refusal, tz, msg, sizeof(msg));
    assert_string_equal(
        msg, "Budget exceeded: the monthly budget of key 'alice' has "
             "$0.950000000000 spent and $0.033000000000 held of its "
             "$1.000000000000 limit; this call needs up to $0.033000000000. "
             "It resets at 2027-01-01T00:00:00+01:00.");
    budget_book_free(book);
    budget_tz_free(tz);
}

static void test_budget_total_and_global_message(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {0};
    budget_reservation_t res;
    budget_refusal_t refusal;
    char msg[512];

    (void)state;
    add(book, BUDGET_SCOPE_GLOBAL, "", BUDGET_TOTAL, 0, -1);
    assert_int_equal(budget_reserve(book, &who, 0, DEC3, &res, NULL), 0);
    budget_settle(book, &res, 0, DEC3, NULL);
    assert_int_equal(budget_reserve(book, &who, 1, DEC3, &res, &refusal),
                     -EDQUOT);
    budget_refusal_message(&refusal, NULL, msg, sizeof(msg));
    assert_string_equal(
        msg, "Budget exceeded: the total budget of the gateway has "
             "$0.000000000000 spent and $0.000000000000 held of its "
             "$0.000000000000 limit; this call needs up to $0.000000000001. "
             "It does not reset.");
    budget_book_free(book);
}

static void test_budget_add_checks_its_spec(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    char long_name[80];
    budget_spec_t spec = {BUDGET_SCOPE_KEY, "k", BUDGET_DAY, 1, -1};
    budget_reservation_t res;
    budget_who_t who = {"k", NULL, NULL};

    (void)state;
    assert_int_equal(budget_add(book, &spec), 0);
    assert_int_equal(budget_add(book, &spec), -EEXIST);
    spec.period = BUDGET_MONTH;
    spec.hard = -2;
    assert_int_equal(budget_add(book, &spec), -EINVAL);
    spec.hard = BUDGET_NO_LIMIT;
    spec.scope = BUDGET_SCOPE_GLOBAL;
    assert_int_equal(budget_add(book, &spec), -EINVAL);
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    spec.scope = BUDGET_SCOPE_TEAM;
    spec.name = long_name;
    assert_int_equal(budget_add(book, &spec), -ENAMETOOLONG);
    assert_int_equal(budget_count(book), 1);

    assert_int_equal(budget_reserve(book, &who, -1, DEC3, &res, NULL), -EINVAL);
    /* Sums that would overflow are refused, never wrapped. */
    assert_int_equal(budget_reserve(book, &who, INT64_MAX, DEC3, &res, NULL),
                     -EDQUOT);
    budget_book_free(book);
}

static void test_budget_no_budget_applies_is_an_empty_hold(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t who = {"nobody", NULL, NULL};
    budget_reservation_t res;
    budget_status_t st;

    (void)state;
    add(book, BUDGET_SCOPE_KEY, "k", BUDGET_DAY, BUDGET_NO_LIMIT, -1);
    assert_int_equal(budget_reserve(book, &who, INT64_MAX, DEC3, &res, NULL),
                     0);
    assert_int_equal(res.n, 0);
    budget_settle(book, &res, 5, DEC3, NULL);
    assert_int_equal(budget_at(book, 0, DEC3, &st), 0);
    assert_int_equal(budget_at(book, 1, DEC3, &st), -ENOENT);
    budget_book_free(book);
}

static void test_budget_input_bound_counts_overheads(void **state)
{
    (void)state;
    assert_int_equal(budget_input_bound(1000, 3, 1),
                     1000 + BUDGET_TOKENS_PER_REQUEST +
                         3 * BUDGET_TOKENS_PER_MESSAGE +
                         BUDGET_TOKENS_PER_IMAGE);
    assert_int_equal(budget_input_bound(0, 0, 0), BUDGET_TOKENS_PER_REQUEST);
    assert_int_equal(budget_input_bound(SIZE_MAX, INT64_MAX, INT64_MAX),
                     INT64_MAX);
}

static void test_budget_worst_case_takes_the_dearest_rates(void **state)
{
    price_t p;
    budget_bound_t small = {1000, 100, 0}, large = {300000, 100, 0};
    budget_bound_t huge = {INT64_MAX, INT64_MAX, 0};
    pico_t out;

    (void)state;
    billing_price_init(&p, "sonnet", "test");
    p.input = 3000000;
    p.cached_input = 300000;
    p.cache_write = 3750000;
    p.output = 15000000;
    p.tier_threshold = 200000;
    p.tier_input = 6000000;
    p.tier_cache_write = 7500000;
    p.tier_output = 22500000;

    /* Below the threshold: cache write is the dearest input rate. */
    assert_int_equal(budget_worst_case(&p, &small, &out), 0);
    assert_int_equal(out, 1000 * INT64_C(3750000) + 100 * INT64_C(15000000));
    /* Past it the long-context twins may apply. */
    assert_int_equal(budget_worst_case(&p, &large, &out), 0);
    assert_int_equal(out, 300000 * INT64_C(7500000) + 100 * INT64_C(22500000));
    assert_int_equal(budget_worst_case(&p, &huge, &out), -EOVERFLOW);

    small.input_tokens = -1;
    assert_int_equal(budget_worst_case(&p, &small, &out), -EINVAL);
    billing_price_init(&p, "no-output", "test");
    p.input = 1;
    small.input_tokens = 1;
    assert_int_equal(budget_worst_case(&p, &small, &out), -EINVAL);
}

#ifdef PRICE_LAYOUT
static void test_budget_worst_case_counts_fees_geo_and_priority(void **state)
{
    price_t p;
    budget_bound_t bound = {1000, 1000, 3};
    pico_t out;

    (void)state;
    billing_price_init(&p, "m", "test");
    p.input = 1000000;
    p.output = 4000000;
    p.priority.present = true;
    for (int k = 0; k < PRICE_RATES; k++)
        p.priority.base[k] = p.priority.tier[k] = PRICE_ABSENT;
    p.priority.base[RATE_INPUT] = 2000000;
    p.priority.base[RATE_OUTPUT] = 8000000;
    p.fee_per_request = 5;
    p.fee_per_web_search = 10000000000;
    snprintf(p.geo[0].name, sizeof(p.geo[0].name), "us");
    p.geo[0].num = 11;
    p.geo[0].den = 10;
    p.n_geo = 1;

    assert_int_equal(budget_worst_case(&p, &bound, &out), 0);
    assert_int_equal(out, (1000 * INT64_C(2000000) + 1000 * INT64_C(8000000)) *
                                  11 / 10 +
                              5 + 3 * INT64_C(10000000000));
}
#endif

/* Any usage inside the bound costs at most the bound, whatever its mix of
 * cached, written, reasoning tokens, tier and geography. */
static void test_budget_worst_case_bounds_billing_cost(void **state)
{
    price_t p;
    budget_bound_t bound = {250000, 8000, 0};
    pico_t worst;
    uint64_t seed = 7;

    (void)state;
    billing_price_init(&p, "sonnet", "test");
    p.input = 3000000;
    p.cached_input = 300000;
    p.cache_write = 3750000;
    p.output = 15000000;
    p.reasoning_output = 15000000;
    p.tier_threshold = 200000;
    p.tier_input = 6000000;
    p.tier_cached_input = 600000;
    p.tier_cache_write = 7500000;
    p.tier_output = 22500000;
    assert_int_equal(budget_worst_case(&p, &bound, &worst), 0);

    for (int i = 0; i < 2000; i++) {
        usage_t u = {0};
        cost_t c;

        u.present = true;
        u.input_tokens = (int64_t)(next_random(&seed) % 250001);
        u.cached_tokens = (int64_t)next_random(&seed) % (u.input_tokens + 1);
        u.cache_write_tokens = (int64_t)next_random(&seed) %
                               (u.input_tokens - u.cached_tokens + 1);
        u.output_tokens = (int64_t)(next_random(&seed) % 8001);
        u.reasoning_tokens =
            (int64_t)next_random(&seed) % (u.output_tokens + 1);
        u.service_tier = (service_tier_t)(next_random(&seed) % 4);
        c = billing_cost(&p, &u);
        assert_int_equal(c.status, COST_PRICED);
        assert_true(c.total <= worst);
    }
}

/* Enough budgets to make the name map grow several times. */
static void test_budget_many_keys_each_their_own(void **state)
{
    budget_book_t *book = budget_book_new(NULL);
    budget_reservation_t res;
    char name[32];

    (void)state;
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "key-%d", i);
        add(book, BUDGET_SCOPE_KEY, name, BUDGET_DAY, i, -1);
    }
    for (int i = 0; i < 1000; i += 37) {
        budget_who_t who = {name, NULL, NULL};

        snprintf(name, sizeof(name), "key-%d", i);
        assert_int_equal(budget_reserve(book, &who, i, DEC3, &res, NULL), 0);
        assert_int_equal(res.n, 1);
        assert_int_equal(budget_reserve(book, &who, 1, DEC3, &res, NULL),
                         -EDQUOT);
    }
    assert_int_equal(budget_count(book), 1000);
    budget_book_free(book);
}

typedef struct row {
    const char *key, *team, *task;
    int64_t started;
    cost_status_t status;
    pico_t cost;
    int64_t attempt_at[2];
    pico_t attempt_cost[2];
} row_t;

static void put_row(ledger_t *ledger, int i, const row_t *r)
{
    ledger_outcome_t o;

    memset(&o, 0, sizeof(o));
    snprintf(o.id, sizeof(o.id), "out_%024d", i);
    o.started_ms = r->started;
    snprintf(o.key_id, sizeof(o.key_id), "%s", r->key);
    snprintf(o.team, sizeof(o.team), "%s", r->team);
    snprintf(o.task, sizeof(o.task), "%s", r->task);
    o.http_status = 200;
    o.cost_status = r->status;
    for (int a = 0; a < 2 && r->attempt_at[a] != 0; a++) {
        ledger_attempt_t *at = &o.attempts[a];

        at->attempt_no = a + 1;
        at->started_ms = r->attempt_at[a];
        at->cost_status = r->status;
        at->cost = r->attempt_cost[a];
        at->cost_estimate = r->attempt_cost[a];
        o.n_attempts = a + 1;
    }
    assert_int_equal(ledger_admit(ledger), 0);
    ledger_append(ledger, &o);
}

static void write_ledger(const char *path)
{
    const row_t rows[] = {
        {"alice",
         "search",
         "triage",
         DEC3 + H,
         COST_PRICED,
         150,
         {DEC3 + H, DEC3 + H + 10000},
         {100, 50}},
        {"alice",
         "search",
         "triage",
         DEC3 - H,
         COST_PRICED,
         1000,
         {DEC3 - H, 0},
         {1000, 0}},
        /* Started before midnight, its attempt after: counts today. */
        {"alice",
         "search",
         "other",
         DEC3 - 1000,
         COST_PRICED,
         7,
         {DEC3 + 500, 0},
         {7, 0}},
        {"bob",
         "search",
         "other",
         DEC3 - 18 * 24 * H,
         COST_PRICED,
         20000,
         {DEC3 - 18 * 24 * H, 0},
         {20000, 0}},
        {"alice",
         "search",
         "triage",
         DEC3 + 2 * H,
         COST_UNPRICED,
         0,
         {DEC3 + 2 * H, 0},
         {999999, 0}},
        {"alice",
         "search",
         "triage",
         DEC3 + 3 * H,
         COST_ESTIMATED,
         300,
         {DEC3 + 3 * H, 0},
         {300, 0}},
    };
    char err[256];
    ledger_t *ledger = ledger_open(path, 64, err, sizeof(err));

    if (ledger == NULL)
        fail_msg("%s", err);
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++)
        put_row(ledger, (int)i, &rows[i]);
    ledger_close(ledger);
}

static void remove_db(const char *path)
{
    char file[128];
    const char *suffix[] = {"", "-wal", "-shm"};

    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", path, suffix[i]);
        unlink(file);
    }
}

static void test_budget_restart_rebuilds_spend_from_the_ledger(void **state)
{
    char dir[] = "/tmp/tollgate-budget-XXXXXX", path[96], err[256];
    budget_book_t *book = budget_book_new(NULL);
    budget_who_t alice = {"alice", "search", "triage"};
    budget_reservation_t res;
    budget_settlement_t out;
    int64_t now = DEC3 + 15 * H;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ledger.db", dir);
    write_ledger(path);

    add(book, BUDGET_SCOPE_KEY, "alice", BUDGET_DAY, PICO_PER_USD, 400);
    add(book, BUDGET_SCOPE_KEY, "alice", BUDGET_TOTAL, PICO_PER_USD, -1);
    add(book, BUDGET_SCOPE_TEAM, "search", BUDGET_MONTH, PICO_PER_USD, -1);
    add(book, BUDGET_SCOPE_TASK, "triage", BUDGET_WEEK, PICO_PER_USD, -1);
    add(book, BUDGET_SCOPE_GLOBAL, "", BUDGET_TOTAL, PICO_PER_USD, -1);
    assert_int_equal(budget_rebuild(book, path, now, err, sizeof(err)), 0);

    assert_int_equal(status_of(book, &alice, now, 0).spent, 457);
    assert_int_equal(status_of(book, &alice, now, 1).spent, 1457);
    assert_int_equal(status_of(book, &alice, now, 2).spent, 1457);
    assert_int_equal(status_of(book, &alice, now, 3).spent, 1450);
    assert_int_equal(status_of(book, &alice, now, 4).spent, 21457);

    /* The soft limit was passed before the restart: not reported again. */
    assert_int_equal(budget_reserve(book, &alice, 1, now, &res, NULL), 0);
    budget_settle(book, &res, 1, now, &out);
    assert_int_equal(out.n_soft, 0);

    budget_book_free(book);
    remove_db(path);
    rmdir(dir);
}

static void test_budget_rebuild_of_a_file_without_ledger(void **state)
{
    char dir[] = "/tmp/tollgate-budget-XXXXXX", path[96], err[256];
    budget_book_t *book = budget_book_new(NULL);
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/empty.db", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(budget_rebuild(book, path, DEC3, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/missing.db", dir);
    assert_int_equal(budget_rebuild(book, path, DEC3, err, sizeof(err)), -EIO);
    snprintf(path, sizeof(path), "%s/empty.db", dir);
    unlink(path);
    rmdir(dir);
    budget_book_free(book);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_bug11_exactly_one_of_five_fits),
        cmocka_unit_test(test_budget_never_overspent_under_interleaving),
        cmocka_unit_test(test_budget_scopes_all_or_nothing),
        cmocka_unit_test(test_budget_settle_above_hold_still_counts),
        cmocka_unit_test(test_budget_soft_limit_reported_once_per_period),
        cmocka_unit_test(test_budget_hold_across_reset_settles_in_its_period),
        cmocka_unit_test(test_budget_refusal_message_names_budget_and_reset),
        cmocka_unit_test(test_budget_total_and_global_message),
        cmocka_unit_test(test_budget_add_checks_its_spec),
        cmocka_unit_test(test_budget_no_budget_applies_is_an_empty_hold),
        cmocka_unit_test(test_budget_many_keys_each_their_own),
        cmocka_unit_test(test_budget_input_bound_counts_overheads),
        cmocka_unit_test(test_budget_worst_case_takes_the_dearest_rates),
#ifdef PRICE_LAYOUT
        cmocka_unit_test(test_budget_worst_case_counts_fees_geo_and_priority),
#endif
        cmocka_unit_test(test_budget_worst_case_bounds_billing_cost),
        cmocka_unit_test(test_budget_restart_rebuilds_spend_from_the_ledger),
        cmocka_unit_test(test_budget_rebuild_of_a_file_without_ledger),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
