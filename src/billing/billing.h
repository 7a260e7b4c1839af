/*
 * Billing: the price table (built-in entries, LiteLLM imports, config
 * overrides) and the cost of one attempt from its usage. Runs on the event
 * loop after each attempt ends; lookups never touch the disk.
 */
#ifndef TOLLGATE_BILLING_H
#define TOLLGATE_BILLING_H

#include "util/common.h"

/* A rate that the entry does not define. */
#define PRICE_ABSENT INT64_C(-1)

/*
 * One model's prices, in picodollars per token (so $2.50 per million
 * tokens is 2,500,000). Absent rates are PRICE_ABSENT: a cached rate that
 * is absent falls back to the input rate, an audio rate to the text rate.
 * Above `tier_threshold` input tokens (strict >, 0 = no tier) every rate
 * switches to its tier_ twin where that twin is present.
 */
typedef struct price {
    char model[128];
    char source[160]; /* "builtin", "config", "litellm:<file>" */
    pico_t input;
    pico_t cached_input;
    pico_t cache_write;
    pico_t output;
    pico_t reasoning_output;
    pico_t audio_input;
    pico_t audio_output;
    int64_t tier_threshold;
    pico_t tier_input;
    pico_t tier_cached_input;
    pico_t tier_cache_write;
    pico_t tier_output;
    int64_t max_input_tokens;  /* 0 when unknown */
    int64_t max_output_tokens; /* 0 when unknown */
} price_t;

typedef struct price_table price_table_t;

/* The cost of one attempt, split as genai-prices reports it. */
typedef struct cost {
    cost_status_t status;
    pico_t input;  /* uncached, cached, cache-write and audio input */
    pico_t output; /* text, reasoning and audio output */
    pico_t total;
} cost_t;

/* A new table holding the built-in prices. Owned by the caller; aborts on
 * out of memory. */
price_table_t *billing_table_new(void);
void billing_table_free(price_table_t *table);

/*
 * Reads LiteLLM's model_prices_and_context_window.json. Prices are read
 * from their decimal text (1.5e-07, "3e-06"), never through a double.
 * Entries replace built-in ones of the same name; entries with no usable
 * input and output price are skipped. Returns the number of entries
 * loaded, or a negative code with a message in err.
 */
int billing_load_litellm(price_table_t *table, const char *path, char *err,
                         size_t errlen);

/* Adds or replaces one entry (config overrides use source "config"). */
void billing_put(price_table_t *table, const price_t *price);

/*
 * Finds the price for a model name: an exact entry first, then the name
 * with a provider prefix ("openai/") removed, then the name with a date
 * suffix ("-2024-08-06", "-20241022") removed. Returns NULL when nothing
 * matches. The pointer stays valid until the table is freed or changed.
 */
const price_t *billing_lookup(const price_table_t *table, const char *model);

/*
 * Parses a decimal price in USD per token ("3e-06", "0.0000025") or, with
 * per_million set, USD per million tokens ("2.50") into picodollars per
 * token. Returns 0, or -EINVAL when the text is not a plain decimal or is
 * not a whole number of picodollars per token.
 */
int billing_parse_price(const char *text, size_t len, bool per_million,
                        pico_t *out);

/*
 * Cost of one attempt, OpenAI usage semantics (details are subsets of
 * their parents; reasoning is inside output and billed once). price may be
 * NULL: the status is then COST_UNPRICED. Usage that is not present gives
 * COST_USAGE_MISSING; a subset larger than its parent gives
 * COST_INVALID_USAGE. Totals are exact integers.
 */
cost_t billing_cost(const price_t *price, const usage_t *usage);

/* Number of entries, for logs and `tollgate check`. */
size_t billing_table_size(const price_table_t *table);

/* An empty table, without the built-in entries (for tests and for tools
 * that price from one source only). Owned by the caller; aborts on out of
 * memory. */
price_table_t *billing_table_new_empty(void);

/* The entry at index i (0 <= i < billing_table_size()), in the order the
 * entries were first added; NULL past the end. Valid as long as a
 * billing_lookup() result is. */
const price_t *billing_table_at(const price_table_t *table, size_t i);

/*
 * Sets every rate of price to PRICE_ABSENT and its limits to 0, and copies
 * model and source in, for callers that fill an entry field by field.
 * Returns 0, or -ENAMETOOLONG when model does not fit price_t.model (the
 * name is then left empty). A source that does not fit is cut short.
 */
int billing_price_init(price_t *price, const char *model, const char *source);

/* What one LiteLLM import did with the file's entries. */
typedef struct billing_import {
    int loaded;   /* added or replaced */
    int unpriced; /* no input or no output price: skipped */
    int rejected; /* a rate that is not a whole number of picodollars per
                     token (or negative, or too large), a name longer than
                     price_t.model, two long-context thresholds: skipped */
} billing_import_t;

/* billing_load_litellm() that also reports what it skipped; counts may be
 * NULL. Returns the same as billing_load_litellm(). */
int billing_import_litellm(price_table_t *table, const char *path,
                           billing_import_t *counts, char *err, size_t errlen);

#endif
