/*
 * Billing: price parsing, the cost rules against the worked vectors of
 * research/billing-semantics.md §7 and the faults of gateway-faults.md,
 * lookups, the built-in table and LiteLLM imports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "billing/billing.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LITELLM_REL                                                            \
    "/data/llm-prices/litellm/model_prices_and_context_window.json"

/* Picodollars per token from USD per million tokens. */
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

static usage_t usage_make(int64_t in, int64_t cached, int64_t out)
{
    usage_t usage = {.present = true,
                     .input_tokens = in,
                     .cached_tokens = cached,
                     .output_tokens = out};

    return usage;
}

/* Usage with every detail: input, cached, cache-write and audio-in tokens,
 * output, reasoning and audio-out tokens. */
static usage_t usage_full(int64_t in, int64_t cached, int64_t written,
                          int64_t audio_in, int64_t out, int64_t reasoning,
                          int64_t audio_out)
{
    usage_t usage = {.present = true,
                     .input_tokens = in,
                     .cached_tokens = cached,
                     .cache_write_tokens = written,
                     .audio_in_tokens = audio_in,
                     .output_tokens = out,
                     .reasoning_tokens = reasoning,
                     .audio_out_tokens = audio_out};

    return usage;
}

static void cost_expect(const price_t *price, const usage_t *usage,
                        pico_t input, pico_t output)
{
    cost_t cost = billing_cost(price, usage);

    assert_int_equal(cost.status, COST_PRICED);
    assert_int_equal(cost.input, input);
    assert_int_equal(cost.output, output);
    assert_int_equal(cost.total, input + output);
}

static void price_expect(const char *text, bool per_million, pico_t want)
{
    pico_t pico = -1;

    assert_int_equal(
        billing_parse_price(text, strlen(text), per_million, &pico), 0);
    assert_int_equal(pico, want);
}

static void price_reject(const char *text, bool per_million)
{
    pico_t pico = 42;

    assert_int_equal(
        billing_parse_price(text, strlen(text), per_million, &pico), -EINVAL);
    assert_int_equal(pico, 42);
}

static void test_parse_price_plain_and_exponent_forms(void **state)
{
    pico_t pico;

    (void)state;
    price_expect("0.0000025", false, 2500000);
    price_expect("2.50", true, 2500000);
    price_expect("3e-06", false, 3000000);
    price_expect("1.5e-07", false, 150000);
    price_expect("5.46875e-07", false, 546875);
    price_expect("3E-6", false, 3000000);
    price_expect("7.5e-08", false, 75000);
    price_expect("1.5E+2", true, 150000000);
    price_expect("1e-12", false, 1);
    price_expect("0.005", true, 5000);
    price_expect("3.125", true, 3125000);
    price_expect("0", false, 0);
    price_expect("0.0", true, 0);
    price_expect("0e-99", false, 0);
    price_expect("000.25", true, 250000);
    price_expect("1000", false, PRICE_RATE_MAX);

    /* The length bounds the text: the rest of a buffer is not read. */
    assert_int_equal(billing_parse_price("3e-06xyz", 5, false, &pico), 0);
    assert_int_equal(pico, 3000000);
}

static void test_parse_price_rejects_what_is_not_a_plain_decimal(void **state)
{
    (void)state;
    price_reject("", false);
    price_reject("+1", false);
    price_reject("-1e-06", false);
    price_reject("-0", false);
    price_reject(".5", true);
    price_reject("5.", true);
    price_reject("1e", false);
    price_reject("1e-", false);
    price_reject("1e+", false);
    price_reject("1.2.3", true);
    price_reject(" 1", true);
    price_reject("1 ", true);
    price_reject("0x10", true);
    price_reject("NaN", false);
    price_reject("inf", false);
    price_reject("1,5", true);
    price_reject("1e99999999999999999999", false);
    assert_int_equal(billing_parse_price(NULL, 0, false, NULL), -EINVAL);
}

static void test_parse_price_rejects_fractions_of_a_picodollar(void **state)
{
    (void)state;
    price_reject("1e-13", false);
    price_reject("5e-13", false);
    price_reject("0.0000000000005", false);
    price_reject("2.5000001", true);
    price_reject("2.9999900000000002e-06", false);
    /* Too large for int64 picodollars, or past $1000 a token (where
     * doubling and summing rates could overflow). */
    price_reject("1e7", false);
    price_reject("9223372.036854775808", false);
    price_reject("99999999999999999999999", true);
    price_reject("9223372.036854775807", false);
    price_reject("2000000.0", false);
    price_reject("1000.000000000001", false);
}

/* V1: gpt-4o, plain chat. */
static void test_cost_v1_plain_chat(void **state)
{
    price_t price = price_make("gpt-4o", "2.50", "1.25", "10.00");
    usage_t usage = usage_make(1200, 0, 300);

    (void)state;
    cost_expect(&price, &usage, INT64_C(3000000000), INT64_C(3000000000));
}

/* V2: cached tokens are inside prompt_tokens, not on top of them. */
static void test_cost_v2_cached_is_subset_of_prompt(void **state)
{
    price_t price = price_make("gpt-4.1", "2.00", "0.50", "8.00");
    usage_t usage = usage_make(10000, 8192, 500);

    (void)state;
    cost_expect(&price, &usage, INT64_C(7712000000), INT64_C(4000000000));
}

/* V3: reasoning tokens are inside completion_tokens. */
static void test_cost_v3_reasoning_inside_output_billed_once(void **state)
{
    price_t price = price_make("gpt-5", "1.25", "0.125", "10.00");
    usage_t usage = usage_make(2000, 0, 4500);

    (void)state;
    usage.reasoning_tokens = 4000;
    cost_expect(&price, &usage, INT64_C(2500000000), INT64_C(45000000000));
}

/* V4: audio tokens at the audio rates, text at the text rates. */
static void test_cost_v4_audio_at_modality_rates(void **state)
{
    price_t price = price_make("gpt-audio", "2.50", NULL, "10.00");
    usage_t usage = usage_make(1500, 0, 600);

    (void)state;
    price.audio_input = per_mtok("32.00");
    price.audio_output = per_mtok("64.00");
    usage.audio_in_tokens = 1000;
    usage.audio_out_tokens = 450;
    cost_expect(&price, &usage, INT64_C(33250000000), INT64_C(30300000000));
}

/* V5: accepted and rejected prediction tokens sit inside completion. */
static void test_cost_v5_predicted_output_billed_once(void **state)
{
    price_t price = price_make("gpt-4o", "2.50", "1.25", "10.00");
    usage_t usage = usage_make(2000, 0, 1000);

    (void)state;
    cost_expect(&price, &usage, INT64_C(5000000000), INT64_C(10000000000));
}

/* V6: the usage chunk of a stream: $0.0002316 = 231,600,000 pico. */
static void test_cost_v6_streaming_usage_chunk(void **state)
{
    price_t price = price_make("gpt-4o-mini", "0.15", "0.075", "0.60");
    usage_t usage = usage_make(2048, 1024, 2);

    (void)state;
    cost_expect(&price, &usage, 230400000, 1200000);
    assert_int_equal(billing_cost(&price, &usage).total, 231600000);
}

/* V9: GPT-5.6 family cache writes at 1.25x, then reads at 0.1x. */
static void test_cost_v9_cache_write_at_its_own_rate(void **state)
{
    price_t price = price_make("gpt-5.6-luna", "1.00", "0.10", "6.00");
    usage_t first = usage_make(20000, 0, 1000);
    usage_t again = usage_make(20500, 16000, 1000);

    (void)state;
    price.cache_write = per_mtok("1.25");
    first.cache_write_tokens = 16000;
    cost_expect(&price, &first, INT64_C(24000000000), INT64_C(6000000000));
    cost_expect(&price, &again, INT64_C(6100000000), INT64_C(6000000000));
}

/* V10: above 272k input tokens the whole request moves to the tier. */
static void test_cost_v10_long_context_is_a_cliff(void **state)
{
    price_t price = price_make("gpt-5.4", "2.50", "0.25", "15");
    usage_t above = usage_make(300000, 200000, 2000);
    usage_t at = usage_make(272000, 200000, 2000);
    usage_t just_above = usage_make(272001, 0, 0);

    (void)state;
    price.tier_threshold = 272000;
    price.tier_input = per_mtok("5.00");
    price.tier_cached_input = per_mtok("0.50");
    price.tier_output = per_mtok("22.50");

    cost_expect(&price, &above, INT64_C(600000000000), INT64_C(45000000000));
    assert_int_equal(billing_cost(&price, &above).total, INT64_C(645000000000));
    cost_expect(&price, &at, INT64_C(230000000000), INT64_C(30000000000));
    assert_int_equal(billing_cost(&price, &at).total, INT64_C(260000000000));
    cost_expect(&price, &just_above, INT64_C(272001) * 5000000, 0);
}

/* BUG-03 A: $0.018625, not $0.033625. */
static void test_bug03_reasoning_not_billed_twice(void **state)
{
    price_t price = price_make("reasoner", "1.25", NULL, "10.00");
    usage_t usage = usage_make(500, 0, 1800);
    cost_t cost;

    (void)state;
    usage.reasoning_tokens = 1500;
    cost = billing_cost(&price, &usage);
    assert_int_equal(cost.status, COST_PRICED);
    assert_int_equal(cost.input, 625000000);
    assert_int_equal(cost.output, INT64_C(18000000000));
    assert_int_equal(cost.total, INT64_C(18625000000));
}

static void test_cost_reasoning_rate_splits_reasoning_out(void **state)
{
    price_t price = price_make("split", "1.25", NULL, "10.00");
    usage_t usage = usage_make(500, 0, 1800);

    (void)state;
    price.reasoning_output = per_mtok("20");
    usage.reasoning_tokens = 1500;
    /* 300 text tokens at $10 plus 1,500 reasoning tokens at $20. */
    cost_expect(&price, &usage, 625000000,
                INT64_C(300) * 10000000 + INT64_C(1500) * 20000000);
}

static void test_cost_absent_rates_fall_back_to_text_rates(void **state)
{
    price_t price = price_make("plain", "2", NULL, "8");
    usage_t usage = usage_make(1000, 300, 100);

    (void)state;
    usage.cache_write_tokens = 200;
    usage.audio_in_tokens = 100;
    usage.audio_out_tokens = 50;
    cost_expect(&price, &usage, INT64_C(1000) * 2000000,
                INT64_C(100) * 8000000);

    /* A tier twin without a base twin: the other rates keep their base. */
    price.tier_threshold = 500;
    price.tier_cached_input = per_mtok("0.5");
    cost_expect(&price, &usage, INT64_C(700) * 2000000 + 300 * 500000,
                INT64_C(100) * 8000000);
}

static price_table_t *bug06_table(void)
{
    price_table_t *table = billing_table_new_empty();
    price_t alias = price_make("gpt-4o", "2.50", NULL, "10.00");
    price_t dated = price_make("gpt-4o-2024-05-13", "5.00", NULL, "15.00");

    billing_put(table, &alias);
    billing_put(table, &dated);
    return table;
}

/* BUG-06: a dated snapshot with no entry is priced as its alias. */
static void test_bug06_dated_model_resolves_to_alias(void **state)
{
    price_table_t *table = bug06_table();
    usage_t usage = usage_make(1000, 0, 500);
    const price_t *price = billing_lookup(table, "gpt-4o-2024-11-20");

    (void)state;
    assert_non_null(price);
    assert_string_equal(price->model, "gpt-4o");
    assert_int_equal(billing_cost(price, &usage).total, INT64_C(7500000000));
    billing_table_free(table);
}

/* BUG-06: a dated snapshot with its own entry keeps its own price. */
static void test_bug06_exact_dated_entry_wins(void **state)
{
    price_table_t *table = bug06_table();
    usage_t usage = usage_make(1000, 0, 500);
    const price_t *price = billing_lookup(table, "gpt-4o-2024-05-13");

    (void)state;
    assert_non_null(price);
    assert_string_equal(price->model, "gpt-4o-2024-05-13");
    assert_int_equal(billing_cost(price, &usage).total, INT64_C(12500000000));
    billing_table_free(table);
}

/* BUG-06: an unknown model is unpriced, never a measured $0. */
static void test_bug06_unknown_model_is_unpriced_never_free(void **state)
{
    price_table_t *table = bug06_table();
    usage_t usage = usage_make(1000, 0, 500);
    const price_t *price = billing_lookup(table, "zeta-9");
    cost_t cost = billing_cost(price, &usage);

    (void)state;
    assert_null(price);
    assert_int_equal(cost.status, COST_UNPRICED);
    assert_int_not_equal(cost.status, COST_PRICED);
    billing_table_free(table);
}

/* BUG-10: the usage chunk the gateway asked for prices the stream. */
static void test_bug10_streamed_usage_is_priced(void **state)
{
    price_table_t *table = billing_table_new();
    usage_t usage = usage_make(1200, 0, 300);
    cost_t cost = billing_cost(billing_lookup(table, "gpt-4o-mini"), &usage);

    (void)state;
    assert_int_equal(cost.status, COST_PRICED);
    assert_int_equal(cost.input, 180000000);
    assert_int_equal(cost.output, 180000000);
    assert_int_equal(cost.total, 360000000); /* $0.00036 */
    billing_table_free(table);
}

static void test_cost_usage_missing_is_never_free(void **state)
{
    price_t price = price_make("gpt-4o-mini", "0.15", "0.075", "0.60");
    usage_t none = {0};

    (void)state;
    assert_int_equal(billing_cost(&price, &none).status, COST_USAGE_MISSING);
    assert_int_equal(billing_cost(NULL, &none).status, COST_USAGE_MISSING);
    assert_int_equal(billing_cost(&price, NULL).status, COST_USAGE_MISSING);
    none.input_tokens = 5;
    assert_int_equal(billing_cost(&price, &none).status, COST_USAGE_MISSING);
}

static void invalid_expect(const price_t *price, usage_t usage)
{
    cost_t cost = billing_cost(price, &usage);

    assert_int_equal(cost.status, COST_INVALID_USAGE);
    assert_int_equal(cost.total, 0);
}

static void test_cost_subset_larger_than_parent_is_invalid(void **state)
{
    price_t price = price_make("m", "1", "0.5", "2");
    usage_t usage = usage_make(100, 0, 100);

    (void)state;
    price.audio_input = per_mtok("3");
    price.audio_output = per_mtok("4");
    price.reasoning_output = per_mtok("2");

    invalid_expect(&price, usage_make(100, 101, 10));
    invalid_expect(&price, usage_full(100, 60, 41, 0, 10, 0, 0));
    invalid_expect(&price, usage_full(100, 0, 0, 101, 10, 0, 0));
    invalid_expect(&price, usage_full(100, 50, 0, 51, 10, 0, 0));
    invalid_expect(&price, usage_full(100, 0, 0, 0, 10, 11, 0));
    invalid_expect(&price, usage_full(100, 0, 0, 0, 10, 0, 11));
    invalid_expect(&price, usage_full(100, 0, 0, 0, 10, 6, 5));
    invalid_expect(&price, usage_full(-1, 0, 0, 0, 10, 0, 0));
    invalid_expect(&price, usage_full(100, 0, 0, 0, -10, 0, 0));
    invalid_expect(NULL, usage_make(100, 101, 10));

    /* At the limit each subset is still valid. */
    usage = usage_full(100, 60, 40, 0, 10, 5, 5);
    assert_int_equal(billing_cost(&price, &usage).status, COST_PRICED);
}

static void test_cost_overflow_is_invalid(void **state)
{
    price_t price = price_make("dear", "150", NULL, "600");

    (void)state;
    invalid_expect(&price, usage_make(INT64_MAX / 2, 0, 0));
    invalid_expect(&price, usage_make(0, 0, INT64_MAX));
    invalid_expect(
        &price, usage_make(INT64_C(9000000000000), 0, INT64_C(9000000000000)));
}

static void test_cost_without_input_or_output_rate_is_unpriced(void **state)
{
    price_t price;
    usage_t usage = usage_make(10, 0, 10);

    (void)state;
    assert_int_equal(billing_price_init(&price, "half", "test"), 0);
    price.input = per_mtok("1");
    assert_int_equal(billing_cost(&price, &usage).status, COST_UNPRICED);
}

static void test_lookup_prefix_and_date_forms(void **state)
{
    price_table_t *table = billing_table_new();
    price_t routed = price_make("openrouter/gpt-4o", "9", NULL, "9");

    (void)state;
    billing_put(table, &routed);
    assert_string_equal(billing_lookup(table, "openai/gpt-4o")->model,
                        "gpt-4o");
    assert_string_equal(billing_lookup(table, "openrouter/gpt-4o")->model,
                        "openrouter/gpt-4o");
    assert_string_equal(
        billing_lookup(table, "claude-haiku-4-5-20251001")->model,
        "claude-haiku-4-5");
    assert_string_equal(
        billing_lookup(table, "claude-3-5-haiku-20241022")->model,
        "claude-3-5-haiku");
    assert_string_equal(
        billing_lookup(table, "azure/gpt-4.1-mini-2025-04-14")->model,
        "gpt-4.1-mini");
    assert_string_equal(billing_lookup(table, "gpt-4o-2024-08-06")->model,
                        "gpt-4o");

    /* Not a date, or not a date form we strip. */
    assert_null(billing_lookup(table, "gpt-4o-2024-13-06"));
    assert_null(billing_lookup(table, "gpt-4o-20241306"));
    assert_null(billing_lookup(table, "gpt-4o-0613"));
    assert_null(billing_lookup(table, "gpt-4o-2024-08-06-extra"));
    assert_null(billing_lookup(table, "-2024-08-06"));
    assert_null(billing_lookup(table, ""));
    assert_null(billing_lookup(table, NULL));
    billing_table_free(table);
}

static void test_table_put_replaces_and_grows(void **state)
{
    price_table_t *table = billing_table_new_empty();
    char name[32];

    (void)state;
    for (int i = 0; i < 5000; i++) {
        price_t price = price_make("", "1", NULL, "2");

        snprintf(name, sizeof(name), "model-%d", i);
        assert_int_equal(billing_price_init(&price, name, "test"), 0);
        price.input = i;
        price.output = i;
        billing_put(table, &price);
    }
    assert_int_equal(billing_table_size(table), 5000);
    for (int i = 0; i < 5000; i += 7) {
        snprintf(name, sizeof(name), "model-%d", i);
        assert_int_equal(billing_lookup(table, name)->input, i);
    }

    {
        price_t again = price_make("model-7", "3", NULL, "4");

        billing_put(table, &again);
    }
    assert_int_equal(billing_table_size(table), 5000);
    assert_int_equal(billing_lookup(table, "model-7")->input, 3000000);
    assert_string_equal(billing_table_at(table, 7)->model, "model-7");
    assert_null(billing_table_at(table, 5000));
    billing_table_free(table);
}

static void test_price_init_rejects_long_names(void **state)
{
    char name[200];
    price_t price;

    (void)state;
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(billing_price_init(&price, name, "test"), -ENAMETOOLONG);
    assert_string_equal(price.model, "");
    assert_int_equal(price.cached_input, PRICE_ABSENT);
}

static void test_builtin_table_prices(void **state)
{
    price_table_t *table = billing_table_new();
    const price_t *price;
    size_t n = billing_table_size(table);

    (void)state;
    assert_true(n >= 30 && n <= 60);
    for (size_t i = 0; i < n; i++) {
        price = billing_table_at(table, i);
        assert_string_equal(price->source, "builtin");
        assert_true(price->input >= 0 && price->output >= 0);
    }

    price = billing_lookup(table, "gpt-4o");
    assert_int_equal(price->input, 2500000);
    assert_int_equal(price->cached_input, 1250000);
    assert_int_equal(price->cache_write, PRICE_ABSENT);
    assert_int_equal(price->output, 10000000);
    assert_int_equal(price->max_input_tokens, 128000);

    price = billing_lookup(table, "gemini-2.5-pro");
    assert_int_equal(price->tier_threshold, 200000);
    assert_int_equal(price->tier_input, 2500000);
    assert_int_equal(price->tier_cached_input, 250000);
    assert_int_equal(price->tier_output, 15000000);

    price = billing_lookup(table, "gpt-5.6-luna");
    assert_int_equal(price->cache_write, 1250000);
    assert_int_equal(price->tier_cache_write, 2500000);
    billing_table_free(table);
}

/* Import depends on json-c handing back a number's text as written. */
static void test_jsonc_keeps_number_text(void **state)
{
    static const char *const texts[] = {"1.5e-07",     "0.0000025", "3E-6",
                                        "5.46875e-07", "2000000.0", "1e400"};
    char doc[64];

    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_object *root, *value;

        snprintf(doc, sizeof(doc), "{\"v\": %s}", texts[i]);
        root = json_tokener_parse(doc);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "v", &value));
        assert_int_equal(json_object_get_type(value), json_type_double);
        assert_string_equal(json_object_get_string(value), texts[i]);
        json_object_put(root);
    }
}

static const char small_litellm[] =
    "{\n"
    "  \"sample_spec\": {\"input_cost_per_token\": 0.0,\n"
    "                  \"output_cost_per_token\": 0.0},\n"
    "  \"last_updated\": \"2026-07-24\",\n"
    "  \"gpt-4o\": {\"input_cost_per_token\": \"5e-06\",\n"
    "             \"output_cost_per_token\": \"1.5e-05\",\n"
    "             \"max_input_tokens\": \"128000\"},\n"
    "  \"acme/strings\": {\"input_cost_per_token\": \"3e-06\",\n"
    "                   \"output_cost_per_token\": \"1.5e-05\",\n"
    "                   \"cache_read_input_token_cost\": \"3E-7\"},\n"
    "  \"acme/plain\": {\"input_cost_per_token\": 0.0000025,\n"
    "    \"output_cost_per_token\": 1e-05,\n"
    "    \"cache_creation_input_token_cost\": 1.25e-06,\n"
    "    \"cache_creation_input_token_cost_above_1hr\": 6e-06,\n"
    "    \"output_cost_per_reasoning_token\": 2e-05,\n"
    "    \"input_cost_per_audio_token\": 3.2e-05,\n"
    "    \"output_cost_per_audio_token\": 6.4e-05,\n"
    "    \"input_cost_per_token_batches\": 1e-06,\n"
    "    \"max_input_tokens\": 2000000.0, \"max_output_tokens\": 8192},\n"
    "  \"acme/long-k\": {\"input_cost_per_token\": 1.25e-06,\n"
    "    \"input_cost_per_token_above_200k_tokens\": 2.5e-06,\n"
    "    \"input_cost_per_token_above_200k_tokens_priority\": 9e-06,\n"
    "    \"output_cost_per_token\": 1e-05,\n"
    "    \"output_cost_per_token_above_200k_tokens\": 1.5e-05,\n"
    "    \"cache_read_input_token_cost_above_200k_tokens\": 2.5e-07,\n"
    "    \"cache_creation_input_token_cost_above_1hr_above_200k_tokens\":"
    " 1.2e-05},\n"
    "  \"acme/long-n\": {\"input_cost_per_token\": 1e-06,\n"
    "    \"input_cost_per_token_above_128000_tokens\": 2e-06,\n"
    "    \"output_cost_per_token\": 2e-06},\n"
    "  \"acme/null-cache\": {\"input_cost_per_token\": 1e-06,\n"
    "    \"output_cost_per_token\": 2e-06,\n"
    "    \"cache_read_input_token_cost\": null},\n"
    "  \"acme/no-price\": {\"mode\": \"image_generation\",\n"
    "    \"output_cost_per_image\": 0.04, \"max_input_tokens\": 1000},\n"
    "  \"acme/input-only\": {\"input_cost_per_token\": 1e-07},\n"
    "  \"acme/fraction\": {\"input_cost_per_token\": 2.9999900000000002e-06,\n"
    "    \"output_cost_per_token\": 1.5e-05},\n"
    "  \"acme/negative\": {\"input_cost_per_token\": -1e-06,\n"
    "    \"output_cost_per_token\": 1e-06},\n"
    "  \"acme/bool\": {\"input_cost_per_token\": true,\n"
    "    \"output_cost_per_token\": 1e-06},\n"
    "  \"acme/two-tiers\": {\"input_cost_per_token\": 1e-06,\n"
    "    \"input_cost_per_token_above_128k_tokens\": 2e-06,\n"
    "    \"output_cost_per_token\": 1e-06,\n"
    "    \"output_cost_per_token_above_200k_tokens\": 3e-06},\n"
    "  \"%s\": {\"input_cost_per_token\": 1e-06,\n"
    "    \"output_cost_per_token\": 1e-06}\n"
    "}\n";

/* Writes text to a new temporary file; its path goes into path. */
static void temp_write(char *path, size_t pathlen, const char *text)
{
    const char *dir = getenv("TMPDIR");
    FILE *file;
    int fd;

    snprintf(path, pathlen, "%s/tollgate-litellm-XXXXXX",
             dir != NULL ? dir : "/tmp");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    file = fdopen(fd, "w");
    assert_non_null(file);
    assert_int_equal(fputs(text, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
}

static void small_file_write(char *path, size_t pathlen)
{
    char long_name[150], *text;
    size_t size = sizeof(small_litellm) + sizeof(long_name);

    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    text = malloc(size);
    assert_non_null(text);
    snprintf(text, size, small_litellm, long_name);
    temp_write(path, pathlen, text);
    free(text);
}

static void small_import_check_rates(const price_table_t *table,
                                     const char *source)
{
    const price_t *p = billing_lookup(table, "gpt-4o");

    assert_string_equal(p->source, source);
    assert_int_equal(p->input, 5000000);
    assert_int_equal(p->output, 15000000);
    assert_int_equal(p->cached_input, PRICE_ABSENT);
    assert_int_equal(p->max_input_tokens, 128000);

    p = billing_lookup(table, "acme/strings");
    assert_int_equal(p->input, 3000000);
    assert_int_equal(p->cached_input, 300000);

    p = billing_lookup(table, "acme/plain");
    assert_int_equal(p->input, 2500000);
    assert_int_equal(p->output, 10000000);
    assert_int_equal(p->cached_input, PRICE_ABSENT);
    assert_int_equal(p->cache_write, 1250000);
    assert_int_equal(p->reasoning_output, 20000000);
    assert_int_equal(p->audio_input, 32000000);
    assert_int_equal(p->audio_output, 64000000);
    assert_int_equal(p->tier_threshold, 0);
    assert_int_equal(p->max_input_tokens, 2000000);
    assert_int_equal(p->max_output_tokens, 8192);

    p = billing_lookup(table, "acme/null-cache");
    assert_int_equal(p->cached_input, PRICE_ABSENT);
}

static void small_import_check_tiers(const price_table_t *table)
{
    const price_t *p = billing_lookup(table, "acme/long-k");

    assert_int_equal(p->tier_threshold, 200000);
    assert_int_equal(p->tier_input, 2500000);
    assert_int_equal(p->tier_output, 15000000);
    assert_int_equal(p->tier_cached_input, 250000);
    assert_int_equal(p->tier_cache_write, PRICE_ABSENT);
    assert_int_equal(p->cache_write, PRICE_ABSENT);

    p = billing_lookup(table, "acme/long-n");
    assert_int_equal(p->tier_threshold, 128000);
    assert_int_equal(p->tier_input, 2000000);
    assert_int_equal(p->tier_output, PRICE_ABSENT);
}

static void test_litellm_import_small_file(void **state)
{
    price_table_t *table = billing_table_new();
    size_t builtin = billing_table_size(table);
    billing_import_t counts;
    char path[256], source[300], err[256] = "";
    int rc;

    (void)state;
    small_file_write(path, sizeof(path));
    rc = billing_import_litellm(table, path, &counts, err, sizeof(err));
    assert_int_equal(rc, 6);
    assert_int_equal(counts.loaded, 6);
    assert_int_equal(counts.unpriced, 2);
    assert_int_equal(counts.rejected, 5);
    assert_string_equal(err, "");
    /* gpt-4o is added beside the built-in entry, which it outranks. */
    assert_int_equal(billing_table_size(table), builtin + 6);

    snprintf(source, sizeof(source), "litellm:%s", strrchr(path, '/') + 1);
    small_import_check_rates(table, source);
    small_import_check_tiers(table);
    assert_null(billing_lookup(table, "sample_spec"));
    assert_null(billing_lookup(table, "acme/no-price"));
    assert_null(billing_lookup(table, "acme/input-only"));
    assert_null(billing_lookup(table, "acme/fraction"));
    assert_null(billing_lookup(table, "acme/negative"));
    assert_null(billing_lookup(table, "acme/two-tiers"));

    unlink(path);
    billing_table_free(table);
}

static void test_litellm_import_errors(void **state)
{
    static const char *const bad[] = {"{\"a\": {\"input_cost_per_token\": 1",
                                      "[1, 2]", "{} trailing", ""};
    price_table_t *table = billing_table_new_empty();
    char path[256], err[256];

    (void)state;
    err[0] = '\0';
    assert_int_equal(billing_load_litellm(table, "/nonexistent/prices.json",
                                          err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/prices.json"));

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        temp_write(path, sizeof(path), bad[i]);
        assert_int_equal(billing_load_litellm(table, path, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, path));
        unlink(path);
    }
    assert_int_equal(billing_table_size(table), 0);
    billing_table_free(table);
}

/* The shared LiteLLM file, or NULL after printing the SKIP line. */
static const char *litellm_path(char *path, size_t pathlen)
{
    const char *shared = getenv("TOLLGATE_SHARED");

    snprintf(path, pathlen, "%s" LITELLM_REL,
             shared != NULL ? shared : "../shared");
    if (access(path, R_OK) == 0)
        return path;
    printf("SKIP test_billing litellm: %s missing\n", path);
    return NULL;
}

static double ms_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void real_import_check_entries(const price_table_t *table)
{
    const price_t *p = billing_lookup(table, "gpt-4o");

    assert_string_equal(p->source,
                        "litellm:model_prices_and_context_window.json");
    assert_int_equal(p->input, 2500000);
    assert_int_equal(p->cached_input, 1250000);
    assert_int_equal(p->cache_write, PRICE_ABSENT);
    assert_int_equal(p->output, 10000000);
    assert_int_equal(p->max_input_tokens, 128000);
    assert_int_equal(p->max_output_tokens, 16384);

    p = billing_lookup(table, "gpt-4o-mini");
    assert_int_equal(p->input, 150000);
    assert_int_equal(p->cached_input, 75000);
    assert_int_equal(p->output, 600000);

    /* LiteLLM has Claude 3.5 Haiku only under Bedrock and Vertex names. */
    p = billing_lookup(table, "anthropic.claude-3-5-haiku-20241022-v1:0");
    assert_int_equal(p->input, 800000);
    assert_int_equal(p->cached_input, 80000);
    assert_int_equal(p->cache_write, 1000000);
    assert_int_equal(p->output, 4000000);
    p = billing_lookup(table, "claude-3-5-haiku-20241022");
    assert_string_equal(p->model, "claude-3-5-haiku");
    assert_string_equal(p->source, "builtin");
    assert_int_equal(p->input, 800000);
    assert_int_equal(p->output, 4000000);

    /* Floats that are not whole picodollars are rejected, not rounded. */
    assert_null(billing_lookup(table, "databricks/databricks-gpt-5-mini"));
}

static void real_import_check_long_context(const price_table_t *table)
{
    usage_t usage = usage_make(300000, 200000, 2000);
    const price_t *p = billing_lookup(table, "gpt-5.4");

    assert_int_equal(p->tier_threshold, 272000);
    assert_int_equal(p->tier_input, 5000000);
    assert_int_equal(p->tier_cached_input, 500000);
    assert_int_equal(p->tier_output, 22500000);
    assert_int_equal(billing_cost(p, &usage).total, INT64_C(645000000000));

    p = billing_lookup(table, "claude-sonnet-4-5");
    assert_int_equal(p->tier_threshold, 200000);
    assert_int_equal(p->cache_write, 3750000);
    assert_int_equal(p->tier_cache_write, 7500000);
    assert_int_equal(p->tier_output, 22500000);

    p = billing_lookup(table, "gemini/gemini-2.5-pro");
    assert_int_equal(p->tier_threshold, 200000);
    assert_int_equal(p->tier_input, 2500000);
    assert_int_equal(p->output, 10000000);
}

static void test_litellm_import_real_file(void **state)
{
    price_table_t *table = billing_table_new();
    billing_import_t counts = {0};
    struct timespec start;
    char path[1024], err[256] = "";
    int rc;

    (void)state;
    if (litellm_path(path, sizeof(path)) == NULL) {
        billing_table_free(table);
        skip();
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = billing_import_litellm(table, path, &counts, err, sizeof(err));
    printf("test_billing litellm: %d entries loaded, %d without an input "
           "and output price, %d rejected, in %.1f ms\n",
           rc, counts.unpriced, counts.rejected, ms_since(&start));

    assert_true(rc > 2000);
    assert_string_equal(err, "");
    assert_int_equal(counts.loaded + counts.unpriced + counts.rejected, 2983);
    real_import_check_entries(table);
    real_import_check_long_context(table);
    billing_table_free(table);
}

/* Differences the built-in table keeps on purpose (see builtin.c). */
static const struct known_difference {
    const char *model;
    const char *field;
} known_differences[] = {
    {"claude-sonnet-5", "input"},
    {"claude-sonnet-5", "cached_input"},
    {"claude-sonnet-5", "cache_write"},
    {"claude-sonnet-5", "output"},
    {"gemini-2.5-pro", "tier_cache_write"},
    {"gemini-3.1-pro-preview", "tier_cache_write"},
};

static const struct price_field {
    const char *name;
    size_t offset;
} price_fields[] = {
    {"input", offsetof(price_t, input)},
    {"cached_input", offsetof(price_t, cached_input)},
    {"cache_write", offsetof(price_t, cache_write)},
    {"output", offsetof(price_t, output)},
    {"reasoning_output", offsetof(price_t, reasoning_output)},
    {"audio_input", offsetof(price_t, audio_input)},
    {"audio_output", offsetof(price_t, audio_output)},
    {"tier_threshold", offsetof(price_t, tier_threshold)},
    {"tier_input", offsetof(price_t, tier_input)},
    {"tier_cached_input", offsetof(price_t, tier_cached_input)},
    {"tier_cache_write", offsetof(price_t, tier_cache_write)},
    {"tier_output", offsetof(price_t, tier_output)},
    {"max_input_tokens", offsetof(price_t, max_input_tokens)},
    {"max_output_tokens", offsetof(price_t, max_output_tokens)},
};

static bool difference_known(const char *model, const char *field)
{
    for (size_t i = 0;
         i < sizeof(known_differences) / sizeof(known_differences[0]); i++) {
        if (strcmp(known_differences[i].model, model) == 0 &&
            strcmp(known_differences[i].field, field) == 0)
            return true;
    }
    return false;
}

/* Prints every field where the two entries differ; returns how many of
 * those are not known differences. */
static int entry_compare(const price_t *builtin, const price_t *litellm)
{
    int unknown = 0;

    for (size_t i = 0; i < sizeof(price_fields) / sizeof(price_fields[0]);
         i++) {
        const struct price_field *f = &price_fields[i];
        int64_t a = *(const int64_t *)((const char *)builtin + f->offset);
        int64_t b = *(const int64_t *)((const char *)litellm + f->offset);
        bool known = difference_known(builtin->model, f->name);

        if (a == b)
            continue;
        printf("test_billing builtin vs litellm: %s %s: builtin %" PRId64
               ", litellm %" PRId64 "%s\n",
               builtin->model, f->name, a, b,
               known ? " (known, see builtin.c)" : " UNEXPECTED");
        unknown += known ? 0 : 1;
    }
    return unknown;
}

static void test_builtin_matches_litellm(void **state)
{
    price_table_t *builtin = billing_table_new();
    price_table_t *litellm = billing_table_new_empty();
    char path[1024], err[256] = "";
    int unexpected = 0;

    (void)state;
    if (litellm_path(path, sizeof(path)) == NULL) {
        billing_table_free(builtin);
        billing_table_free(litellm);
        skip();
    }
    assert_true(billing_load_litellm(litellm, path, err, sizeof(err)) > 0);

    for (size_t i = 0; i < billing_table_size(builtin); i++) {
        const price_t *b = billing_table_at(builtin, i);
        const price_t *l = billing_lookup(litellm, b->model);

        /* LiteLLM has today's prices only. */
        if (billing_lookup(builtin, b->model) != b)
            continue;

        if (l == NULL || strcmp(l->model, b->model) != 0) {
            printf("test_billing builtin vs litellm: %s: no LiteLLM entry "
                   "of that name\n",
                   b->model);
            continue;
        }
        unexpected += entry_compare(b, l);
    }
    assert_int_equal(unexpected, 0);
    billing_table_free(builtin);
    billing_table_free(litellm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_price_plain_and_exponent_forms),
        cmocka_unit_test(test_parse_price_rejects_what_is_not_a_plain_decimal),
        cmocka_unit_test(test_parse_price_rejects_fractions_of_a_picodollar),
        cmocka_unit_test(test_cost_v1_plain_chat),
        cmocka_unit_test(test_cost_v2_cached_is_subset_of_prompt),
        cmocka_unit_test(test_cost_v3_reasoning_inside_output_billed_once),
        cmocka_unit_test(test_cost_v4_audio_at_modality_rates),
        cmocka_unit_test(test_cost_v5_predicted_output_billed_once),
        cmocka_unit_test(test_cost_v6_streaming_usage_chunk),
        cmocka_unit_test(test_cost_v9_cache_write_at_its_own_rate),
        cmocka_unit_test(test_cost_v10_long_context_is_a_cliff),
        cmocka_unit_test(test_bug03_reasoning_not_billed_twice),
        cmocka_unit_test(test_cost_reasoning_rate_splits_reasoning_out),
        cmocka_unit_test(test_cost_absent_rates_fall_back_to_text_rates),
        cmocka_unit_test(test_bug06_dated_model_resolves_to_alias),
        cmocka_unit_test(test_bug06_exact_dated_entry_wins),
        cmocka_unit_test(test_bug06_unknown_model_is_unpriced_never_free),
        cmocka_unit_test(test_bug10_streamed_usage_is_priced),
        cmocka_unit_test(test_cost_usage_missing_is_never_free),
        cmocka_unit_test(test_cost_subset_larger_than_parent_is_invalid),
        cmocka_unit_test(test_cost_overflow_is_invalid),
        cmocka_unit_test(test_cost_without_input_or_output_rate_is_unpriced),
        cmocka_unit_test(test_lookup_prefix_and_date_forms),
        cmocka_unit_test(test_table_put_replaces_and_grows),
        cmocka_unit_test(test_price_init_rejects_long_names),
        cmocka_unit_test(test_builtin_table_prices),
        cmocka_unit_test(test_jsonc_keeps_number_text),
        cmocka_unit_test(test_litellm_import_small_file),
        cmocka_unit_test(test_litellm_import_errors),
        cmocka_unit_test(test_litellm_import_real_file),
        cmocka_unit_test(test_builtin_matches_litellm),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
