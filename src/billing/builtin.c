/*
 * The built-in price table: list prices of the main OpenAI, Anthropic and
 * Google models, so a gateway with no price file still prices them.
 *
 * Figures are USD per million tokens, as decimal text, parsed into
 * picodollars per token at start. They are LiteLLM's
 * model_prices_and_context_window.json (snapshot 2026-07-24) for the same
 * names, cross-checked against pydantic genai-prices (2026-08-21); the
 * 1-hour cache writes are Anthropic's (2x input), which genai-prices v1
 * lacks. Rows that depart from LiteLLM, each listed by test_billing on
 * every run:
 *  - claude-sonnet-5: $2/$10 until 2026-09-01, then $3/$15 (read $0.30,
 *    write $3.75, 1h $6), per genai-prices; the LiteLLM snapshot predates
 *    the change.
 *  - claude-sonnet-4-6, claude-opus-4-6: long-context tier until
 *    2026-03-13, flat after (1M context GA), per genai-prices.
 *  - gemini-2.5-pro, gemini-3.1-pro-preview: LiteLLM's entries (Vertex)
 *    carry a long-context cache-write rate of $0.25 with no base rate;
 *    Gemini has no per-request cache-write price, so it is left out.
 *  - claude-3-5-haiku is from genai-prices: LiteLLM lists it only under
 *    Bedrock and Vertex names.
 * Batch (OpenAI, Anthropic, Gemini) and flex (OpenAI, where offered) are
 * exactly half of every standard rate, as the providers document, and are
 * written out as such; priority rates are LiteLLM's. Claude web search is
 * $10 per 1,000 searches; US-only inference is 1.1x on the Claude models
 * LiteLLM marks so, and on claude-sonnet-4-6 (billing-semantics V18).
 */
#include "billing/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HALF_BATCH 0x1
#define HALF_FLEX 0x2
#define FEE_CLAUDE_SEARCH "10" /* USD per 1,000 searches */

/* One row: rates as USD per 1M tokens (NULL when absent), limits in
 * tokens (0 when unknown), dates as "YYYY-MM-DD" (NULL: open). */
struct builtin_row {
    const char *model, *provider;
    const char *in, *cached, *write, *write_1h, *out, *reasoning;
    const char *audio_in, *audio_out;
    int64_t tier; /* long-context threshold, strict >, 0 for none */
    const char *tier_in, *tier_cached, *tier_write, *tier_write_1h;
    const char *tier_out;
    const char *prio_in, *prio_cached, *prio_out;
    int half; /* HALF_BATCH | HALF_FLEX */
    const char *search_per_1k;
    bool geo_us;
    const char *from, *to;
    int64_t max_in, max_out;
};

#define OPENAI .provider = "openai", .half = HALF_BATCH
#define OPENAI_FLEX .provider = "openai", .half = HALF_BATCH | HALF_FLEX
#define CLAUDE                                                                 \
    .provider = "anthropic", .half = HALF_BATCH,                               \
    .search_per_1k = FEE_CLAUDE_SEARCH
#define GEMINI .provider = "google", .half = HALF_BATCH

static const struct builtin_row builtin_rows[] = {
    /* OpenAI. Cache writes cost the input rate before GPT-5.6. */
    {"gpt-4o", OPENAI, .in = "2.5", .cached = "1.25", .out = "10",
     .prio_in = "4.25", .prio_cached = "2.125", .prio_out = "17",
     .max_in = 128000, .max_out = 16384},
    {"gpt-4o-mini", OPENAI, .in = "0.15", .cached = "0.075", .out = "0.6",
     .prio_in = "0.25", .prio_cached = "0.125", .prio_out = "1",
     .max_in = 128000, .max_out = 16384},
    {"gpt-4.1", OPENAI, .in = "2", .cached = "0.5", .out = "8",
     .prio_in = "3.5", .prio_cached = "0.875", .prio_out = "14",
     .max_in = 1047576, .max_out = 32768},
    {"gpt-4.1-mini", OPENAI, .in = "0.4", .cached = "0.1", .out = "1.6",
     .prio_in = "0.7", .prio_cached = "0.175", .prio_out = "2.8",
     .max_in = 1047576, .max_out = 32768},
    {"gpt-4.1-nano", OPENAI, .in = "0.1", .cached = "0.025", .out = "0.4",
     .prio_in = "0.2", .prio_cached = "0.05", .prio_out = "0.8",
     .max_in = 1047576, .max_out = 32768},
    {"o3", OPENAI_FLEX, .in = "2", .cached = "0.5", .out = "8",
     .prio_in = "3.5", .prio_cached = "0.875", .prio_out = "14",
     .max_in = 200000, .max_out = 100000},
    {"o3-mini", OPENAI, .in = "1.1", .cached = "0.55", .out = "4.4",
     .max_in = 200000, .max_out = 100000},
    {"o4-mini", OPENAI_FLEX, .in = "1.1", .cached = "0.275", .out = "4.4",
     .prio_in = "2", .prio_cached = "0.5", .prio_out = "8", .max_in = 200000,
     .max_out = 100000},
    {"gpt-5", OPENAI_FLEX, .in = "1.25", .cached = "0.125", .out = "10",
     .prio_in = "2.5", .prio_cached = "0.25", .prio_out = "20",
     .max_in = 272000, .max_out = 128000},
    {"gpt-5-mini", OPENAI_FLEX, .in = "0.25", .cached = "0.025", .out = "2",
     .prio_in = "0.45", .prio_cached = "0.045", .prio_out = "3.6",
     .max_in = 272000, .max_out = 128000},
    {"gpt-5-nano", OPENAI_FLEX, .in = "0.05", .cached = "0.005", .out = "0.4",
     .max_in = 272000, .max_out = 128000},
    {"gpt-5.1", OPENAI, .in = "1.25", .cached = "0.125", .out = "10",
     .prio_in = "2.5", .prio_cached = "0.25", .prio_out = "20",
     .max_in = 272000, .max_out = 128000},
    {"gpt-5.2", OPENAI, .in = "1.75", .cached = "0.175", .out = "14",
     .prio_in = "3.5", .prio_cached = "0.35", .prio_out = "28",
     .max_in = 272000, .max_out = 128000},
    {"gpt-5.4", OPENAI_FLEX, .in = "2.5", .cached = "0.25", .out = "15",
     .tier = 272000, .tier_in = "5", .tier_cached = "0.5", .tier_out = "22.5",
     .prio_in = "5", .prio_cached = "0.5", .prio_out = "30", .max_in = 1050000,
     .max_out = 128000},
    {"gpt-5.4-mini", OPENAI_FLEX, .in = "0.75", .cached = "0.075", .out = "4.5",
     .prio_in = "1.5", .prio_cached = "0.15", .prio_out = "9",
     .max_in = 1050000, .max_out = 128000},
    {"gpt-5.4-nano", OPENAI_FLEX, .in = "0.2", .cached = "0.02", .out = "1.25",
     .max_in = 1050000, .max_out = 128000},
    {"gpt-5.5", OPENAI_FLEX, .in = "5", .cached = "0.5", .out = "30",
     .tier = 272000, .tier_in = "10", .tier_cached = "1", .tier_out = "45",
     .prio_in = "10", .prio_cached = "1", .prio_out = "60", .max_in = 1050000,
     .max_out = 128000},
    {"gpt-5.6-sol", OPENAI, .in = "5", .cached = "0.5", .write = "6.25",
     .out = "30", .tier = 272000, .tier_in = "10", .tier_cached = "1",
     .tier_write = "12.5", .tier_out = "45", .max_in = 1050000,
     .max_out = 128000},
    {"gpt-5.6-terra", OPENAI, .in = "2.5", .cached = "0.25", .write = "3.125",
     .out = "15", .tier = 272000, .tier_in = "5", .tier_cached = "0.5",
     .tier_write = "6.25", .tier_out = "22.5", .max_in = 1050000,
     .max_out = 128000},
    {"gpt-5.6-luna", OPENAI, .in = "1", .cached = "0.1", .write = "1.25",
     .out = "6", .tier = 272000, .tier_in = "2", .tier_cached = "0.2",
     .tier_write = "2.5", .tier_out = "9", .max_in = 1050000,
     .max_out = 128000},
    {"gpt-audio", .provider = "openai", .in = "2.5", .out = "10",
     .audio_in = "32", .audio_out = "64", .max_in = 128000, .max_out = 16384},
    {"text-embedding-3-small", OPENAI, .in = "0.02", .out = "0",
     .max_in = 8191},
    {"text-embedding-3-large", OPENAI, .in = "0.13", .out = "0",
     .max_in = 8191},

    /* Anthropic. write = the 5-minute write, write_1h = 2x input. */
    {"claude-opus-4-1", CLAUDE, .in = "15", .cached = "1.5", .write = "18.75",
     .write_1h = "30", .out = "75", .max_in = 200000, .max_out = 32000},
    {"claude-opus-4-5", CLAUDE, .in = "5", .cached = "0.5", .write = "6.25",
     .write_1h = "10", .out = "25", .max_in = 200000, .max_out = 64000},
    {"claude-opus-4-6", CLAUDE, .in = "5", .cached = "0.5", .write = "6.25",
     .write_1h = "10", .out = "25", .tier = 200000, .tier_in = "10",
     .tier_cached = "1", .tier_write = "12.5", .tier_write_1h = "20",
     .tier_out = "37.5", .geo_us = true, .to = "2026-03-13", .max_in = 1000000,
     .max_out = 128000},
    {"claude-opus-4-6", CLAUDE, .in = "5", .cached = "0.5", .write = "6.25",
     .write_1h = "10", .out = "25", .geo_us = true, .from = "2026-03-13",
     .max_in = 1000000, .max_out = 128000},
    {"claude-opus-4-7", CLAUDE, .in = "5", .cached = "0.5", .write = "6.25",
     .write_1h = "10", .out = "25", .geo_us = true, .max_in = 1000000,
     .max_out = 128000},
    {"claude-opus-4-8", CLAUDE, .in = "5", .cached = "0.5", .write = "6.25",
     .write_1h = "10", .out = "25", .geo_us = true, .max_in = 1000000,
     .max_out = 128000},
    {"claude-opus-5", CLAUDE, .in = "5", .cached = "0.5", .write = "6.25",
     .write_1h = "10", .out = "25", .geo_us = true, .max_in = 1000000,
     .max_out = 128000},
    {"claude-sonnet-4-5", CLAUDE, .in = "3", .cached = "0.3", .write = "3.75",
     .write_1h = "6", .out = "15", .tier = 200000, .tier_in = "6",
     .tier_cached = "0.6", .tier_write = "7.5", .tier_write_1h = "12",
     .tier_out = "22.5", .max_in = 200000, .max_out = 64000},
    {"claude-sonnet-4-6", CLAUDE, .in = "3", .cached = "0.3", .write = "3.75",
     .write_1h = "6", .out = "15", .tier = 200000, .tier_in = "6",
     .tier_cached = "0.6", .tier_write = "7.5", .tier_write_1h = "12",
     .tier_out = "22.5", .geo_us = true, .to = "2026-03-13", .max_in = 1000000,
     .max_out = 64000},
    {"claude-sonnet-4-6", CLAUDE, .in = "3", .cached = "0.3", .write = "3.75",
     .write_1h = "6", .out = "15", .geo_us = true, .from = "2026-03-13",
     .max_in = 1000000, .max_out = 64000},
    {"claude-sonnet-5", CLAUDE, .in = "2", .cached = "0.2", .write = "2.5",
     .write_1h = "4", .out = "10", .geo_us = true, .to = "2026-09-01",
     .max_in = 1000000, .max_out = 128000},
    {"claude-sonnet-5", CLAUDE, .in = "3", .cached = "0.3", .write = "3.75",
     .write_1h = "6", .out = "15", .geo_us = true, .from = "2026-09-01",
     .max_in = 1000000, .max_out = 128000},
    {"claude-haiku-4-5", CLAUDE, .in = "1", .cached = "0.1", .write = "1.25",
     .write_1h = "2", .out = "5", .max_in = 200000, .max_out = 64000},
    {"claude-3-5-haiku", CLAUDE, .in = "0.8", .cached = "0.08", .write = "1",
     .write_1h = "1.6", .out = "4", .max_in = 200000, .max_out = 8192},

    /* Google (Gemini API). No per-request cache-write price. */
    {"gemini-2.5-pro", GEMINI, .in = "1.25", .cached = "0.125", .out = "10",
     .tier = 200000, .tier_in = "2.5", .tier_cached = "0.25", .tier_out = "15",
     .max_in = 1048576, .max_out = 65535},
    {"gemini-2.5-flash", GEMINI, .in = "0.3", .cached = "0.03", .out = "2.5",
     .reasoning = "2.5", .audio_in = "1", .max_in = 1048576, .max_out = 65535},
    {"gemini-2.5-flash-lite", GEMINI, .in = "0.1", .cached = "0.01",
     .out = "0.4", .reasoning = "0.4", .audio_in = "0.3", .max_in = 1048576,
     .max_out = 65535},
    {"gemini-3.1-pro-preview", GEMINI, .in = "2", .cached = "0.2", .out = "12",
     .tier = 200000, .tier_in = "4", .tier_cached = "0.4", .tier_out = "18",
     .max_in = 1048576, .max_out = 65536},
    {"gemini-3.5-flash", GEMINI, .in = "1.5", .cached = "0.15", .out = "9",
     .reasoning = "9", .audio_in = "1", .max_in = 1048576, .max_out = 65535},
    {"gemini-3.6-flash", GEMINI, .in = "1.5", .cached = "0.15", .out = "7.5",
     .reasoning = "7.5", .max_in = 1048576, .max_out = 65536},
};

static void die_row(const struct builtin_row *row, const char *what)
{
    fprintf(stderr, "billing: built-in %s for %s is invalid\n", what,
            row->model);
    abort();
}

static void rate_set(const struct builtin_row *row, const char *text,
                     pico_t *rate)
{
    if (text == NULL)
        return;
    if (billing_parse_price(text, strlen(text), true, rate) < 0)
        die_row(row, text);
}

static int64_t date_set(const struct builtin_row *row, const char *text)
{
    int y, m, d;

    if (text == NULL)
        return 0;
    if (sscanf(text, "%4d-%2d-%2d", &y, &m, &d) != 3)
        die_row(row, text);
    return date_to_unix(y, m, d);
}

/* The standard rates as the row gives them. */
static void standard_set(price_t *p, const struct builtin_row *row)
{
    const char *base[PRICE_RATES] = {
        row->in,  row->cached,    row->write,    row->write_1h,
        row->out, row->reasoning, row->audio_in, row->audio_out};
    const char *tier[PRICE_RATES] = {row->tier_in,
                                     row->tier_cached,
                                     row->tier_write,
                                     row->tier_write_1h,
                                     row->tier_out,
                                     NULL,
                                     NULL,
                                     NULL};

    for (int k = 0; k < PRICE_RATES; k++) {
        rate_set(row, base[k], price_rate_ref(p, SERVICE_STANDARD, k, false));
        rate_set(row, tier[k], price_rate_ref(p, SERVICE_STANDARD, k, true));
    }
    p->tier_threshold = row->tier;
}

/* A service tier at exactly half of every standard rate. */
static void half_set(price_t *p, service_tier_t service)
{
    price_rates_t *set = price_service_rates(p, service);

    set->present = true;
    for (int k = 0; k < PRICE_RATES; k++) {
        pico_t base = billing_rate_get(p, SERVICE_STANDARD, k, false);
        pico_t tier = billing_rate_get(p, SERVICE_STANDARD, k, true);

        set->base[k] = base >= 0 && base % 2 == 0 ? base / 2 : PRICE_ABSENT;
        set->tier[k] = tier >= 0 && tier % 2 == 0 ? tier / 2 : PRICE_ABSENT;
    }
}

static void service_set(price_t *p, const struct builtin_row *row)
{
    if (row->half & HALF_BATCH)
        half_set(p, SERVICE_BATCH);
    if (row->half & HALF_FLEX)
        half_set(p, SERVICE_FLEX);
    if (row->prio_in == NULL)
        return;
    p->priority.present = true;
    rate_set(row, row->prio_in, &p->priority.base[RATE_INPUT]);
    rate_set(row, row->prio_cached, &p->priority.base[RATE_CACHED]);
    rate_set(row, row->prio_out, &p->priority.base[RATE_OUTPUT]);
}

static void builtin_add(price_table_t *table, const struct builtin_row *row)
{
    price_t price;

    if (billing_price_init(&price, row->model, "builtin") < 0)
        die_row(row, "name");
    standard_set(&price, row);
    service_set(&price, row);
    snprintf(price.provider, sizeof(price.provider), "%s",
             row->provider != NULL ? row->provider : "");
    if (row->search_per_1k != NULL &&
        decimal_scaled(row->search_per_1k, strlen(row->search_per_1k),
                       SHIFT_PER_THOUSAND, &price.fee_per_web_search) < 0)
        die_row(row, row->search_per_1k);
    if (row->geo_us)
        price.geo[price.n_geo++] = (price_geo_t){"us", 11, 10};

    price.valid_from = date_set(row, row->from);
    price.valid_to = date_set(row, row->to);
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
