/*
 * Billing rules: every vector V1-V20 of research/billing-semantics.md §7
 * and the cost faults BUG-01/03/05/06 of gateway-faults.md as a price and
 * a normalised usage, with exact picodollars; service tiers, geography,
 * rounding, effective dates, aliases and disagreements.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "billing/billing.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Microdollars (the vectors' S) to picodollars. */
#define MICRO(n) ((int64_t)(n)*1000000)

static pico_t per_mtok(const char *text)
{
    pico_t pico = -1;

    assert_int_equal(billing_parse_price(text, strlen(text), true, &pico), 0);
    return pico;
}

static price_t price_make(const char *model, const char *in, const char *cached,
                          const char *out)
{
    price_t price;

    assert_int_equal(billing_price_init(&price, model, "test"), 0);
    price.input = per_mtok(in);
    if (cached != NULL)
        price.cached_input = per_mtok(cached);
    price.output = per_mtok(out);
    return price;
}

/* Anthropic's three disjoint counters, normalised as the parsers do:
 * input_tokens is their sum, writes and reads sit inside it. */
static usage_t usage_anthropic(int64_t in, int64_t write, int64_t read,
                               int64_t out)
{
    usage_t u = {.present = true,
                 .input_tokens = in + write + read,
                 .cached_tokens = read,
                 .cache_write_tokens = write,
                 .output_tokens = out};

    return u;
}

static usage_t usage_make(int64_t in, int64_t cached, int64_t out)
{
    usage_t u = {.present = true,
                 .input_tokens = in,
                 .cached_tokens = cached,
                 .output_tokens = out};

    return u;
}

static cost_t cost_expect(const price_t *price, const usage_t *usage,
                          pico_t input, pico_t output, pico_t fees)
{
    cost_t cost = billing_cost(price, usage);

    assert_int_equal(cost.status, COST_PRICED);
    assert_int_equal(cost.input, input);
    assert_int_equal(cost.output, output);
    assert_int_equal(cost.fees, fees);
    assert_int_equal(cost.total, input + output + fees);
    return cost;
}

static price_t sonnet_45(void)
{
    price_t p = price_make("claude-sonnet-4-5", "3", "0.3", "15");

    p.cache_write = per_mtok("3.75");
    p.cache_write_1h = per_mtok("6");
    p.tier_threshold = 200000;
    p.tier_input = per_mtok("6");
    p.tier_cached_input = per_mtok("0.6");
    p.tier_cache_write = per_mtok("7.5");
    p.tier_cache_write_1h = per_mtok("12");
    p.tier_output = per_mtok("22.5");
    return p;
}

static price_t gemini_25_pro(void)
{
    price_t p = price_make("gemini-2.5-pro", "1.25", "0.125", "10");

    p.tier_threshold = 200000;
    p.tier_input = per_mtok("2.5");
    p.tier_cached_input = per_mtok("0.25");
    p.tier_output = per_mtok("15");
    return p;
}

static void test_vectors_v1_to_v6_openai(void **state)
{
    price_t gpt4o = price_make("gpt-4o", "2.50", "1.25", "10.00");
    price_t gpt41 = price_make("gpt-4.1", "2.00", "0.50", "8.00");
    price_t gpt5 = price_make("gpt-5", "1.25", "0.125", "10.00");
    price_t audio = price_make("gpt-audio", "2.50", NULL, "10.00");
    price_t mini = price_make("gpt-4o-mini", "0.15", "0.075", "0.60");
    usage_t u = usage_make(2000, 0, 4500);

    (void)state;
    cost_expect(
        &gpt4o,
        &(usage_t){.present = true, .input_tokens = 1200, .output_tokens = 300},
        MICRO(3000), MICRO(3000), 0); /* V1 */
    u = usage_make(10000, 8192, 500);
    cost_expect(&gpt41, &u, MICRO(7712), MICRO(4000), 0); /* V2 */
    u = usage_make(2000, 0, 4500);
    u.reasoning_tokens = 4000;
    cost_expect(&gpt5, &u, MICRO(2500), MICRO(45000), 0); /* V3 */

    audio.audio_input = per_mtok("32");
    audio.audio_output = per_mtok("64");
    u = usage_make(1500, 0, 600);
    u.audio_in_tokens = 1000;
    u.audio_out_tokens = 450;
    cost_expect(&audio, &u, MICRO(33250), MICRO(30300), 0); /* V4 */

    u = usage_make(2000, 0, 1000); /* V5: predictions sit inside output */
    cost_expect(&gpt4o, &u, MICRO(5000), MICRO(10000), 0);
    u = usage_make(2048, 1024, 2);
    cost_expect(&mini, &u, 230400000, 1200000, 0); /* V6: $0.0002316 */
}

/* V7: the stream was cut before usage: no cost, never $0 priced. */
static void test_vector_v7_usage_missing(void **state)
{
    price_t mini = price_make("gpt-4o-mini", "0.15", "0.075", "0.60");
    usage_t none = {.present = false, .input_tokens = 2048};
    cost_t cost = billing_cost(&mini, &none);

    (void)state;
    assert_int_equal(cost.status, COST_USAGE_MISSING);
    assert_int_equal(cost.total, 0);
}

static void test_vectors_v8_to_v10_openai(void **state)
{
    price_t mini5 = price_make("gpt-5-mini", "0.25", "0.025", "2.00");
    price_t luna = price_make("gpt-5.6-luna", "1.00", "0.10", "6.00");
    price_t gpt54 = price_make("gpt-5.4", "2.50", "0.25", "15");
    usage_t u = usage_make(5000, 4096, 1200);

    (void)state;
    u.reasoning_tokens = 1000;
    cost_expect(&mini5, &u, 328400000, MICRO(2400), 0); /* V8 */

    luna.cache_write = per_mtok("1.25");
    u = usage_make(20000, 0, 1000);
    u.cache_write_tokens = 16000;
    cost_expect(&luna, &u, MICRO(24000), MICRO(6000), 0); /* V9a */
    u = usage_make(20500, 16000, 1000);
    cost_expect(&luna, &u, MICRO(6100), MICRO(6000), 0); /* V9b */

    gpt54.tier_threshold = 272000;
    gpt54.tier_input = per_mtok("5");
    gpt54.tier_cached_input = per_mtok("0.5");
    gpt54.tier_output = per_mtok("22.5");
    u = usage_make(300000, 200000, 2000);
    assert_true(cost_expect(&gpt54, &u, MICRO(600000), MICRO(45000), 0).flags &
                COST_FLAG_LONG_CONTEXT); /* V10a */
    u = usage_make(272000, 200000, 2000);
    cost_expect(&gpt54, &u, MICRO(230000), MICRO(30000), 0); /* V10b */
}

/* V11: service-tier rates the entry lists, used without the rule. */
static void test_vector_v11_batch_and_flex_rates(void **state)
{
    price_t mini = price_make("gpt-4o-mini", "0.15", "0.075", "0.60");
    price_t gpt5 = price_make("gpt-5", "1.25", "0.125", "10");
    usage_t u = usage_make(100000, 0, 10000);
    cost_t cost;

    (void)state;
    mini.batch.present = true;
    mini.batch.base[RATE_INPUT] = per_mtok("0.075");
    mini.batch.base[RATE_OUTPUT] = per_mtok("0.30");
    u.service_tier = SERVICE_BATCH;
    cost = cost_expect(&mini, &u, MICRO(7500), MICRO(3000), 0);
    assert_int_equal(cost.flags & COST_FLAG_TIER_FALLBACK, 0);

    gpt5.flex.present = true;
    gpt5.flex.base[RATE_INPUT] = per_mtok("0.625");
    gpt5.flex.base[RATE_OUTPUT] = per_mtok("5");
    u = usage_make(10000, 0, 2000);
    u.service_tier = SERVICE_FLEX;
    cost_expect(&gpt5, &u, MICRO(6250), MICRO(10000), 0);
    u.service_tier = SERVICE_STANDARD;
    cost_expect(&gpt5, &u, MICRO(12500), MICRO(20000), 0);
}

static void test_vectors_v12_to_v14_anthropic(void **state)
{
    price_t sonnet = sonnet_45();
    price_t haiku = price_make("claude-haiku-4-5", "1", "0.1", "5");
    usage_t u = usage_anthropic(3000, 2000, 10000, 800);
    cost_t cost;

    (void)state;
    cost_expect(&sonnet, &u, MICRO(19500), MICRO(12000), 0); /* V12 */

    u = usage_anthropic(500, 6000, 0, 1000);
    u.cache_write_1h_tokens = 4000;
    cost = cost_expect(&sonnet, &u, MICRO(33000), MICRO(15000), 0); /* V13 */
    assert_int_equal(cost.flags & COST_FLAG_WRITE_1H_AS_5M, 0);

    /* Without a 1-hour rate the writes go at 5m, and the record says so:
     * the $0.039 the vector warns about, flagged rather than silent. */
    sonnet.cache_write_1h = PRICE_ABSENT;
    cost = cost_expect(&sonnet, &u, MICRO(24000), MICRO(15000), 0);
    assert_true(cost.flags & COST_FLAG_WRITE_1H_AS_5M);

    haiku.cache_write = per_mtok("1.25");
    u = usage_anthropic(472, 0, 12000, 350); /* V14: the last delta */
    cost_expect(&haiku, &u, MICRO(1672), MICRO(1750), 0);
}

static void test_vectors_v15_to_v17_anthropic(void **state)
{
    price_t sonnet = sonnet_45();
    usage_t u = usage_anthropic(40000, 10000, 160000, 3000);

    (void)state;
    cost_expect(&sonnet, &u, MICRO(411000), MICRO(67500), 0); /* V15 */

    u = usage_anthropic(200000, 0, 0, 1000);
    cost_expect(&sonnet, &u, MICRO(600000), MICRO(15000), 0); /* V16a */
    u = usage_anthropic(200001, 0, 0, 1000);
    cost_expect(&sonnet, &u, MICRO(1200006), MICRO(22500), 0); /* V16b */

    sonnet.fee_per_web_search = INT64_C(10000000000); /* $10 / 1000 */
    u = usage_anthropic(2000, 0, 0, 1500);
    u.web_searches = 3;
    cost_expect(&sonnet, &u, MICRO(6000), MICRO(22500), MICRO(30000));
}

/* V18a with listed batch rates and by the rule; V18b US-only, 11/10. */
static void test_vector_v18_batch_and_geo(void **state)
{
    price_t haiku = price_make("claude-haiku-4-5", "1", "0.1", "5");
    price_t sonnet46 = price_make("claude-sonnet-4-6", "3", "0.3", "15");
    usage_t u = usage_anthropic(10000, 0, 50000, 2000);
    cost_t cost;

    (void)state;
    u.service_tier = SERVICE_BATCH;
    cost = cost_expect(&haiku, &u, MICRO(7500), MICRO(5000), 0);
    assert_true(cost.flags & COST_FLAG_TIER_FALLBACK);

    haiku.batch.present = true;
    haiku.batch.base[RATE_INPUT] = per_mtok("0.5");
    haiku.batch.base[RATE_CACHED] = per_mtok("0.05");
    haiku.batch.base[RATE_OUTPUT] = per_mtok("2.5");
    cost = cost_expect(&haiku, &u, MICRO(7500), MICRO(5000), 0);
    assert_int_equal(cost.flags & COST_FLAG_TIER_FALLBACK, 0);

    sonnet46.geo[sonnet46.n_geo++] = (price_geo_t){"us", 11, 10};
    u.service_tier = SERVICE_STANDARD;
    snprintf(u.geo, sizeof(u.geo), "us");
    cost = cost_expect(&sonnet46, &u, MICRO(49500), MICRO(33000), 0);
    assert_true(cost.flags & COST_FLAG_GEO);
    snprintf(u.geo, sizeof(u.geo), "eu");
    cost_expect(&sonnet46, &u, MICRO(45000), MICRO(30000), 0);
}

static void test_vectors_v19_v20_gemini(void **state)
{
    price_t pro = gemini_25_pro();
    usage_t u = usage_make(120000, 100000, 2000 + 3000);

    (void)state;
    cost_expect(&pro, &u, MICRO(37500), MICRO(50000), 0); /* V19 */
    u = usage_make(250000, 0, 4000 + 1000);
    cost_expect(&pro, &u, MICRO(625000), MICRO(75000), 0); /* V20 */
}

/* BUG-01: write tokens once, at the write rate; reads at the read rate. */
static void test_bug01_cache_buckets_priced_once(void **state)
{
    price_t sonnet = sonnet_45();
    usage_t u = usage_anthropic(20, 10000, 30000, 400);

    (void)state;
    assert_int_equal(u.input_tokens, 40020);
    cost_expect(&sonnet, &u, MICRO(46560), MICRO(6000), 0); /* $0.05256 */
}

/* BUG-03: reasoning inside output is billed once; with its own rate it
 * is split out, never added. */
static void test_bug03_reasoning_billed_once(void **state)
{
    price_t a = price_make("a", "1.25", NULL, "10");
    price_t b = price_make("b", "3", NULL, "15");
    usage_t u = usage_make(500, 0, 1800);

    (void)state;
    u.reasoning_tokens = 1500;
    cost_expect(&a, &u, 625000000, MICRO(18000), 0);   /* $0.018625 */
    cost_expect(&b, &u, MICRO(1500), MICRO(27000), 0); /* $0.0285 */
    a.reasoning_output = per_mtok("20");
    cost_expect(&a, &u, 625000000, MICRO(3000 + 30000), 0);
}

/* BUG-05: cached batch tokens keep their discount, whether the entry
 * lists batch rates, lists only one side, or lists none. */
static void test_bug05_batch_keeps_cache_discount(void **state)
{
    price_t p = price_make("gpt-5-mini", "1.25", "0.125", "10");
    usage_t u = usage_make(50000, 40000, 1000);
    cost_t cost;

    (void)state;
    u.service_tier = SERVICE_BATCH;
    cost = cost_expect(&p, &u, MICRO(8750), MICRO(5000), 0); /* $0.01375 */
    assert_true(cost.flags & COST_FLAG_TIER_FALLBACK);

    p.batch.present = true;
    p.batch.base[RATE_INPUT] = per_mtok("0.625");
    p.batch.base[RATE_OUTPUT] = per_mtok("5");
    cost = cost_expect(&p, &u, MICRO(8750), MICRO(5000), 0);
    assert_true(cost.flags & COST_FLAG_TIER_FALLBACK);

    p.batch.base[RATE_CACHED] = per_mtok("0.0625");
    cost = cost_expect(&p, &u, MICRO(8750), MICRO(5000), 0);
    assert_int_equal(cost.flags & COST_FLAG_TIER_FALLBACK, 0);
}

/* BUG-05: a long batch prompt is billed at half the long-context rates. */
static void test_bug05_long_batch_prompt_uses_tier(void **state)
{
    price_t p = price_make("gpt-5.4", "2.50", "0.25", "15");
    usage_t u = usage_make(300000, 200000, 2000);

    (void)state;
    p.tier_threshold = 272000;
    p.tier_input = per_mtok("5");
    p.tier_cached_input = per_mtok("0.5");
    p.tier_output = per_mtok("22.5");
    p.batch.present = true;
    p.batch.base[RATE_INPUT] = per_mtok("1.25");
    p.batch.base[RATE_OUTPUT] = per_mtok("7.5");
    u.service_tier = SERVICE_BATCH;
    cost_expect(&p, &u, MICRO(300000), MICRO(22500), 0);
}

/* Halving and 11/10 leave fractions: one rounding, half to even. */
static void test_rounding_half_even_once(void **state)
{
    price_t p = price_make("tiny", "0.000001", NULL, "0.000003");
    usage_t u = usage_make(5, 0, 0);

    (void)state;
    p.geo[p.n_geo++] = (price_geo_t){"us", 11, 10};
    snprintf(u.geo, sizeof(u.geo), "us");
    cost_expect(&p, &u, 6, 0, 0); /* 5.5 -> 6 */
    u.input_tokens = 15;
    cost_expect(&p, &u, 16, 0, 0); /* 16.5 -> 16 */

    u = usage_make(5, 0, 1);
    u.service_tier = SERVICE_FLEX;
    cost_expect(&p, &u, 2, 2, 0); /* 2.5 + 1.5 = 4: parts 2 and 2 */
    u = usage_make(1, 0, 1);
    u.service_tier = SERVICE_BATCH;
    cost_expect(&p, &u, 0, 2, 0); /* 0.5 + 1.5 = 2, input 0.5 -> 0 */
}

static void test_priority_without_rates_is_standard_and_flagged(void **state)
{
    price_t p = price_make("m", "1", NULL, "2");
    usage_t u = usage_make(1000, 0, 1000);
    cost_t cost;

    (void)state;
    u.service_tier = SERVICE_PRIORITY;
    cost = cost_expect(&p, &u, MICRO(1000), MICRO(2000), 0);
    assert_true(cost.flags & COST_FLAG_TIER_FALLBACK);
    p.priority.present = true;
    p.priority.base[RATE_INPUT] = per_mtok("2.5");
    p.priority.base[RATE_OUTPUT] = per_mtok("5");
    cost = cost_expect(&p, &u, MICRO(2500), MICRO(5000), 0);
    assert_int_equal(cost.flags & COST_FLAG_TIER_FALLBACK, 0);
}

static void test_fees_per_request_and_negative_leaves(void **state)
{
    price_t p = price_make("m", "1", NULL, "2");
    usage_t u = usage_make(1000, 0, 1000);
    cost_t cost;

    (void)state;
    p.fee_per_request = 5000;
    cost_expect(&p, &u, MICRO(1000), MICRO(2000), 5000);

    u.cache_write_tokens = 10;
    u.cache_write_1h_tokens = 11;
    assert_int_equal(billing_cost(&p, &u).status, COST_INVALID_USAGE);
    u = usage_make(100, 60, 10);
    u.cache_write_tokens = 41;
    assert_int_equal(billing_cost(&p, &u).status, COST_INVALID_USAGE);
    u = usage_make(100, 0, 10);
    u.web_searches = -1;
    assert_int_equal(billing_cost(&p, &u).status, COST_INVALID_USAGE);

    u = usage_make(100, 0, 10);
    u.estimated = true;
    cost = billing_cost(&p, &u);
    assert_int_equal(cost.status, COST_ESTIMATED);
    assert_int_equal(cost.total, MICRO(100) + MICRO(20) + 5000);
}

/* An entry filled by hand from zeroed memory (as config.c does) has only
 * the first seven rates: no 1-hour rate is read as $0. */
static void test_zeroed_entry_has_no_new_rates(void **state)
{
    price_t p;
    usage_t u = usage_anthropic(0, 1000, 0, 0);
    cost_t cost;

    (void)state;
    memset(&p, 0, sizeof(p));
    p.input = per_mtok("3");
    p.output = per_mtok("15");
    p.cache_write = per_mtok("3.75");
    p.cached_input = p.reasoning_output = PRICE_ABSENT;
    p.audio_input = p.audio_output = PRICE_ABSENT;
    u.cache_write_1h_tokens = 1000;
    snprintf(u.geo, sizeof(u.geo), "us");
    u.service_tier = SERVICE_PRIORITY;
    cost = cost_expect(&p, &u, MICRO(3750), 0, 0);
    assert_true(cost.flags & COST_FLAG_WRITE_1H_AS_5M);
    assert_int_equal(cost.flags & COST_FLAG_GEO, 0);
}

static price_table_t *bug06_table(void)
{
    price_table_t *table = billing_table_new_empty();
    price_t alias = price_make("gpt-4o", "2.50", NULL, "10.00");
    price_t dated = price_make("gpt-4o-2024-05-13", "5.00", NULL, "15.00");

    billing_put(table, &alias);
    billing_put(table, &dated);
    assert_int_equal(billing_alias(table, "gpt-4o-2024-05-13", "gpt-4o"), 0);
    assert_int_equal(billing_alias(table, "house-model", "gpt-4o"), 0);
    return table;
}

/* BUG-06's three cases, with an alias that must not shadow the exact
 * dated entry. */
static void test_bug06_three_cases(void **state)
{
    price_table_t *table = bug06_table();
    usage_t u = usage_make(1000, 0, 500);
    const price_t *p;

    (void)state;
    p = billing_lookup_at(table, "gpt-4o-2024-11-20", 0);
    assert_string_equal(p->model, "gpt-4o");
    cost_expect(p, &u, MICRO(2500), MICRO(5000), 0);

    p = billing_lookup_at(table, "gpt-4o-2024-05-13", 0);
    assert_string_equal(p->model, "gpt-4o-2024-05-13");
    cost_expect(p, &u, MICRO(5000), MICRO(7500), 0);

    p = billing_lookup_at(table, "zeta-9", 0);
    assert_null(p);
    assert_int_equal(billing_cost(p, &u).status, COST_UNPRICED);
    billing_table_free(table);
}

static void test_alias_rules_and_order(void **state)
{
    price_table_t *table = bug06_table();
    char longname[200];

    (void)state;
    assert_string_equal(billing_lookup_at(table, "house-model", 0)->model,
                        "gpt-4o");
    assert_string_equal(billing_lookup_at(table, "acme/house-model", 0)->model,
                        "gpt-4o");
    assert_string_equal(
        billing_lookup_at(table, "house-model-20250101", 0)->model, "gpt-4o");
    assert_string_equal(billing_lookup_at(table, "gpt-4o@20241022", 0)->model,
                        "gpt-4o");

    /* A later alias of the same name replaces the earlier one. */
    assert_int_equal(billing_alias(table, "house-model", "gpt-4o-2024-05-13"),
                     0);
    assert_string_equal(billing_lookup_at(table, "house-model", 0)->model,
                        "gpt-4o-2024-05-13");

    /* Aliases that loop end, unpriced. */
    assert_int_equal(billing_alias(table, "loop-a", "loop-b"), 0);
    assert_int_equal(billing_alias(table, "loop-b", "loop-a"), 0);
    assert_null(billing_lookup_at(table, "loop-a", 0));

    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(billing_alias(table, "a", "a"), -EINVAL);
    assert_int_equal(billing_alias(table, "", "a"), -EINVAL);
    assert_int_equal(billing_alias(table, longname, "a"), -ENAMETOOLONG);
    billing_table_free(table);
}

/* Several entries per model: the last one in force wins. */
static void test_lookup_at_effective_dates(void **state)
{
    price_table_t *table = billing_table_new_empty();
    price_t old = price_make("m", "2", NULL, "10");
    price_t now = price_make("m", "3", NULL, "15");
    price_t night = price_make("m", "1", NULL, "5");

    (void)state;
    now.valid_from = 1788220800; /* 2026-09-01 */
    old.valid_to = 1788220800;
    billing_put(table, &old);
    billing_put(table, &now);
    assert_int_equal(billing_table_size(table), 2);
    assert_int_equal(billing_lookup_at(table, "m", 1788220799)->input,
                     per_mtok("2"));
    assert_int_equal(billing_lookup_at(table, "m", 1788220800)->input,
                     per_mtok("3"));

    /* A daily window (UTC) wins while open, wrapping past midnight. */
    night.day_from = 22 * 3600;
    night.day_to = 6 * 3600;
    night.valid_from = 1788220800;
    billing_put(table, &night);
    assert_int_equal(billing_lookup_at(table, "m", 1788220800 + 3600)->input,
                     per_mtok("1"));
    assert_int_equal(
        billing_lookup_at(table, "m", 1788220800 + 12 * 3600)->input,
        per_mtok("3"));
    assert_int_equal(
        billing_lookup_at(table, "m", 1788220800 + 23 * 3600)->input,
        per_mtok("1"));
    billing_table_free(table);
}

/* Config beats imports beats built-ins, whatever order they came in. */
static void test_precedence_keeps_every_source(void **state)
{
    price_table_t *table = billing_table_new_empty();
    price_t config = price_make("m", "9", NULL, "9");
    price_t import = price_make("m", "2", NULL, "10");
    price_t builtin = price_make("m", "2", "1", "8");

    (void)state;
    snprintf(config.source, sizeof(config.source), "config:m");
    snprintf(import.source, sizeof(import.source), "litellm:x.json");
    snprintf(builtin.source, sizeof(builtin.source), "builtin");
    billing_put(table, &config);
    billing_put(table, &import);
    billing_put(table, &builtin);
    assert_int_equal(billing_table_size(table), 3);
    assert_string_equal(billing_lookup_at(table, "m", 0)->source, "config:m");
    billing_table_free(table);
}

struct seen {
    int n;
    char fields[8][40];
};

static void disagreement_note(const billing_disagreement_t *d, void *arg)
{
    struct seen *seen = arg;

    if (seen->n < 8)
        snprintf(seen->fields[seen->n], sizeof(seen->fields[0]), "%s",
                 d->field);
    seen->n++;
}

static void test_disagreements_rate_by_rate(void **state)
{
    price_table_t *table = billing_table_new_empty();
    price_t import = price_make("m", "2", NULL, "10");
    price_t builtin = price_make("m", "2", "1", "8");
    price_t same = price_make("n", "1", NULL, "1");
    struct seen seen = {0};

    (void)state;
    snprintf(import.source, sizeof(import.source), "litellm:x.json");
    snprintf(builtin.source, sizeof(builtin.source), "builtin");
    import.tier_threshold = 200000;
    billing_put(table, &import);
    billing_put(table, &builtin);
    billing_put(table, &same);

    assert_int_equal(
        billing_disagreements(table, NULL, 0, disagreement_note, &seen), 2);
    assert_string_equal(seen.fields[0], "output");
    assert_string_equal(seen.fields[1], "tier_threshold");
    assert_int_equal(billing_disagreements(table, "n", 0, NULL, NULL), 0);
    billing_table_free(table);
}

/* The entry a record stores names its source and entry. */
static void test_origin_names_source_and_entry(void **state)
{
    price_table_t *table = billing_table_new();
    const price_t *p = billing_lookup(table, "gpt-4o");
    price_t legacy;
    char origin[160];

    (void)state;
    billing_origin_format(p, origin, sizeof(origin));
    assert_string_equal(origin, "builtin#gpt-4o");
    memset(&legacy, 0, sizeof(legacy));
    snprintf(legacy.source, sizeof(legacy.source), "config:x");
    snprintf(legacy.model, sizeof(legacy.model), "x");
    billing_origin_format(&legacy, origin, sizeof(origin));
    assert_string_equal(origin, "config:x#x");
    billing_table_free(table);
}

static void test_builtin_current_models(void **state)
{
    price_table_t *table = billing_table_new();
    const price_t *p;
    usage_t u = usage_anthropic(500, 6000, 0, 1000);

    (void)state;
    u.cache_write_1h_tokens = 4000;
    p = billing_lookup_at(table, "claude-sonnet-4-5-20250929", 1790000000);
    assert_string_equal(p->origin, "builtin#claude-sonnet-4-5");
    cost_expect(p, &u, MICRO(33000), MICRO(15000), 0); /* V13 */

    p = billing_lookup_at(table, "claude-sonnet-5", 1788220799);
    assert_int_equal(p->input, per_mtok("2"));
    p = billing_lookup_at(table, "claude-sonnet-5", 1788220800);
    assert_int_equal(p->input, per_mtok("3"));
    assert_int_equal(p->cache_write_1h, per_mtok("6"));
    assert_int_equal(p->fee_per_web_search, INT64_C(10000000000));

    /* Sonnet 4.6's long-context tier ended on 2026-03-13. */
    p = billing_lookup_at(table, "claude-sonnet-4-6", 1773359999);
    assert_int_equal(p->tier_threshold, 200000);
    p = billing_lookup_at(table, "claude-sonnet-4-6", 1773360000);
    assert_int_equal(p->tier_threshold, 0);
    assert_int_equal(p->geo[0].num, 11);

    p = billing_lookup(table, "gpt-4o-mini");
    assert_int_equal(p->batch.base[RATE_INPUT], 75000);
    assert_int_equal(p->batch.base[RATE_CACHED], 37500);
    assert_non_null(billing_lookup(table, "text-embedding-3-small"));
    assert_non_null(billing_lookup(table, "o4-mini"));
    assert_non_null(billing_lookup(table, "gemini-2.5-flash"));
    billing_table_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_v1_to_v6_openai),
        cmocka_unit_test(test_vector_v7_usage_missing),
        cmocka_unit_test(test_vectors_v8_to_v10_openai),
        cmocka_unit_test(test_vector_v11_batch_and_flex_rates),
        cmocka_unit_test(test_vectors_v12_to_v14_anthropic),
        cmocka_unit_test(test_vectors_v15_to_v17_anthropic),
        cmocka_unit_test(test_vector_v18_batch_and_geo),
        cmocka_unit_test(test_vectors_v19_v20_gemini),
        cmocka_unit_test(test_bug01_cache_buckets_priced_once),
        cmocka_unit_test(test_bug03_reasoning_billed_once),
        cmocka_unit_test(test_bug05_batch_keeps_cache_discount),
        cmocka_unit_test(test_bug05_long_batch_prompt_uses_tier),
        cmocka_unit_test(test_rounding_half_even_once),
        cmocka_unit_test(test_priority_without_rates_is_standard_and_flagged),
        cmocka_unit_test(test_fees_per_request_and_negative_leaves),
        cmocka_unit_test(test_zeroed_entry_has_no_new_rates),
        cmocka_unit_test(test_bug06_three_cases),
        cmocka_unit_test(test_alias_rules_and_order),
        cmocka_unit_test(test_lookup_at_effective_dates),
        cmocka_unit_test(test_precedence_keeps_every_source),
        cmocka_unit_test(test_disagreements_rate_by_rate),
        cmocka_unit_test(test_origin_names_source_and_entry),
        cmocka_unit_test(test_builtin_current_models),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
