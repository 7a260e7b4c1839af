/*
 * The built-in price table: list prices of the main OpenAI, Anthropic and
 * Google models, so a gateway with no price file still prices them.
 *
 * Figures are USD per million tokens, as decimal text, parsed into
 * picodollars per token at start. They are LiteLLM's
 * model_prices_and_context_window.json (snapshot 2026-07-24) for the same
 * names, cross-checked against pydantic genai-prices (2026-08-21). Rows
 * that depart from LiteLLM, each listed by test_billing on every run:
 *  - claude-sonnet-5: $3/$15 (read $0.30, write $3.75) from 2026-09-01,
 *    per genai-prices; the LiteLLM snapshot predates that and still has
 *    the introductory $2/$10.
 *  - gemini-2.5-pro, gemini-3.1-pro-preview: LiteLLM's entries (Vertex)
 *    carry a long-context cache-write rate of $0.25 with no base rate;
 *    Gemini has no per-request cache-write price, so it is left out.
 *  - claude-3-5-haiku is from genai-prices: LiteLLM lists it only under
 *    Bedrock and Vertex names.
 * Prices that change by date, service tier or region are given here at
 * their standard, global, current value only.
 */
#include "billing/billing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One row: rates as USD per 1M tokens (NULL when absent), limits in
 * tokens (0 when unknown). */
struct builtin_row {
    const char *model;
    const char *in, *cached, *write, *out, *reasoning, *audio_in, *audio_out;
    int64_t tier; /* long-context threshold, strict >, 0 for none */
    const char *tier_in, *tier_cached, *tier_write, *tier_out;
    int64_t max_in, max_out;
};

static const struct builtin_row builtin_rows[] = {
    /* OpenAI. Cache writes cost the input rate before GPT-5.6. */
    {"gpt-4o", .in = "2.5", .cached = "1.25", .out = "10", .max_in = 128000,
     .max_out = 16384},
    {"gpt-4o-mini", .in = "0.15", .cached = "0.075", .out = "0.6",
     .max_in = 128000, .max_out = 16384},
    {"gpt-4.1", .in = "2", .cached = "0.5", .out = "8", .max_in = 1047576,
     .max_out = 32768},
    {"gpt-4.1-mini", .in = "0.4", .cached = "0.1", .out = "1.6",
     .max_in = 1047576, .max_out = 32768},
    {"gpt-4.1-nano", .in = "0.1", .cached = "0.025", .out = "0.4",
     .max_in = 1047576, .max_out = 32768},
    {"o3", .in = "2", .cached = "0.5", .out = "8", .max_in = 200000,
     .max_out = 100000},
    {"o3-mini", .in = "1.1", .cached = "0.55", .out = "4.4", .max_in = 200000,
     .max_out = 100000},
    {"o4-mini", .in = "1.1", .cached = "0.275", .out = "4.4", .max_in = 200000,
     .max_out = 100000},
    {"gpt-5", .in = "1.25", .cached = "0.125", .out = "10", .max_in = 272000,
     .max_out = 128000},
    {"gpt-5-mini", .in = "0.25", .cached = "0.025", .out = "2",
     .max_in = 272000, .max_out = 128000},
    {"gpt-5-nano", .in = "0.05", .cached = "0.005", .out = "0.4",
     .max_in = 272000, .max_out = 128000},
    {"gpt-5.1", .in = "1.25", .cached = "0.125", .out = "10", .max_in = 272000,
     .max_out = 128000},
    {"gpt-5.2", .in = "1.75", .cached = "0.175", .out = "14", .max_in = 272000,
     .max_out = 128000},
    {"gpt-5.4", .in = "2.5", .cached = "0.25", .out = "15", .tier = 272000,
     .tier_in = "5", .tier_cached = "0.5", .tier_out = "22.5",
     .max_in = 1050000, .max_out = 128000},
    {"gpt-5.4-mini", .in = "0.75", .cached = "0.075", .out = "4.5",
     .max_in = 1050000, .max_out = 128000},
    {"gpt-5.4-nano", .in = "0.2", .cached = "0.02", .out = "1.25",
     .max_in = 1050000, .max_out = 128000},
    {"gpt-5.5", .in = "5", .cached = "0.5", .out = "30", .tier = 272000,
     .tier_in = "10", .tier_cached = "1", .tier_out = "45", .max_in = 1050000,
     .max_out = 128000},
    {"gpt-5.6-sol", .in = "5", .cached = "0.5", .write = "6.25", .out = "30",
     .tier = 272000, .tier_in = "10", .tier_cached = "1", .tier_write = "12.5",
     .tier_out = "45", .max_in = 1050000, .max_out = 128000},
    {"gpt-5.6-terra", .in = "2.5", .cached = "0.25", .write = "3.125",
     .out = "15", .tier = 272000, .tier_in = "5", .tier_cached = "0.5",
     .tier_write = "6.25", .tier_out = "22.5", .max_in = 1050000,
     .max_out = 128000},
    {"gpt-5.6-luna", .in = "1", .cached = "0.1", .write = "1.25", .out = "6",
     .tier = 272000, .tier_in = "2", .tier_cached = "0.2", .tier_write = "2.5",
     .tier_out = "9", .max_in = 1050000, .max_out = 128000},
    {"gpt-audio", .in = "2.5", .out = "10", .audio_in = "32", .audio_out = "64",
     .max_in = 128000, .max_out = 16384},
    {"text-embedding-3-small", .in = "0.02", .out = "0", .max_in = 8191},
    {"text-embedding-3-large", .in = "0.13", .out = "0", .max_in = 8191},
    /* Anthropic. cache write = the 5-minute write. */
    {"claude-opus-4-1", .in = "15", .cached = "1.5", .write = "18.75",
     .out = "75", .max_in = 200000, .max_out = 32000},
    {"claude-opus-4-5", .in = "5", .cached = "0.5", .write = "6.25",
     .out = "25", .max_in = 200000, .max_out = 64000},
    {"claude-opus-4-7", .in = "5", .cached = "0.5", .write = "6.25",
     .out = "25", .max_in = 1000000, .max_out = 128000},
    {"claude-opus-5", .in = "5", .cached = "0.5", .write = "6.25", .out = "25",
     .max_in = 1000000, .max_out = 128000},
    {"claude-sonnet-4-5", .in = "3", .cached = "0.3", .write = "3.75",
     .out = "15", .tier = 200000, .tier_in = "6", .tier_cached = "0.6",
     .tier_write = "7.5", .tier_out = "22.5", .max_in = 200000,
     .max_out = 64000},
    {"claude-sonnet-4-6", .in = "3", .cached = "0.3", .write = "3.75",
     .out = "15", .max_in = 1000000, .max_out = 64000},
    {"claude-sonnet-5", .in = "3", .cached = "0.3", .write = "3.75",
     .out = "15", .max_in = 1000000, .max_out = 128000},
    {"claude-haiku-4-5", .in = "1", .cached = "0.1", .write = "1.25",
     .out = "5", .max_in = 200000, .max_out = 64000},
    {"claude-3-5-haiku", .in = "0.8", .cached = "0.08", .write = "1",
     .out = "4", .max_in = 200000, .max_out = 8192},
    /* Google (Gemini API). No per-request cache-write price. */
    {"gemini-2.5-pro", .in = "1.25", .cached = "0.125", .out = "10",
     .tier = 200000, .tier_in = "2.5", .tier_cached = "0.25", .tier_out = "15",
     .max_in = 1048576, .max_out = 65535},
    {"gemini-2.5-flash", .in = "0.3", .cached = "0.03", .out = "2.5",
     .reasoning = "2.5", .audio_in = "1", .max_in = 1048576, .max_out = 65535},
    {"gemini-2.5-flash-lite", .in = "0.1", .cached = "0.01", .out = "0.4",
     .reasoning = "0.4", .audio_in = "0.3", .max_in = 1048576,
     .max_out = 65535},
    {"gemini-3.1-pro-preview", .in = "2", .cached = "0.2", .out = "12",
     .tier = 200000, .tier_in = "4", .tier_cached = "0.4", .tier_out = "18",
     .max_in = 1048576, .max_out = 65536},
    {"gemini-3.5-flash", .in = "1.5", .cached = "0.15", .out = "9",
     .reasoning = "9", .audio_in = "1", .max_in = 1048576, .max_out = 65535},
    {"gemini-3.6-flash", .in = "1.5", .cached = "0.15", .out = "7.5",
     .reasoning = "7.5", .max_in = 1048576, .max_out = 65536},
};

static void rate_set(const char *model, const char *text, pico_t *rate)
{
    if (text == NULL)
        return;
    if (billing_parse_price(text, strlen(text), true, rate) < 0) {
        fprintf(stderr, "billing: built-in price %s for %s is invalid\n", text,
                model);
        abort();
    }
}

static void builtin_add(price_table_t *table, const struct builtin_row *row)
{
    price_t price;

    if (billing_price_init(&price, row->model, "builtin") < 0) {
        fprintf(stderr, "billing: built-in name %s is too long\n", row->model);
        abort();
    }
    rate_set(row->model, row->in, &price.input);
    rate_set(row->model, row->cached, &price.cached_input);
    rate_set(row->model, row->write, &price.cache_write);
    rate_set(row->model, row->out, &price.output);
    rate_set(row->model, row->reasoning, &price.reasoning_output);
    rate_set(row->model, row->audio_in, &price.audio_input);
    rate_set(row->model, row->audio_out, &price.audio_output);

    price.tier_threshold = row->tier;
    rate_set(row->model, row->tier_in, &price.tier_input);
    rate_set(row->model, row->tier_cached, &price.tier_cached_input);
    rate_set(row->model, row->tier_write, &price.tier_cache_write);
    rate_set(row->model, row->tier_out, &price.tier_output);

    price.max_input_tokens = row->max_in;
    price.max_output_tokens = row->max_out;
    billing_put(table, &price);
}

price_table_t *billing_table_new(void)
{
    price_table_t *table = billing_table_new_empty();

    for (size_t i = 0; i < sizeof(builtin_rows) / sizeof(builtin_rows[0]); i++)
        builtin_add(table, &builtin_rows[i]);
    return table;
}
