/*
 * Billing: the price table (built-in entries, LiteLLM and genai-prices
 * imports, config overrides) and the cost of one attempt from its usage.
 * Runs on the event loop after each attempt ends; lookups never touch disk.
 */
#ifndef TOLLGATE_BILLING_H
#define TOLLGATE_BILLING_H

#include "util/common.h"

/* A rate that the entry does not define. */
#define PRICE_ABSENT INT64_C(-1)

/* The largest rate or fee accepted, in picodollars per token ($1,000 a
 * token): far above any real price, and small enough that the cost
 * arithmetic can double and sum rates without overflow. */
#define PRICE_RATE_MAX INT64_C(1000000000000000)

/* Set in price_t.layout by billing_price_init(); see price_t. */
#define PRICE_LAYOUT UINT32_C(0x70726332)

/* Named geography multipliers one entry can carry ("us" = 11/10). */
#define PRICE_GEO_MAX 4

/* The priced token buckets, in the order reports list them. */
typedef enum price_rate {
    RATE_INPUT = 0, /* uncached text input */
    RATE_CACHED,    /* cache read */
    RATE_WRITE_5M,  /* cache write (5-minute, or the only write rate) */
    RATE_WRITE_1H,  /* 1-hour cache write */
    RATE_OUTPUT,    /* text output (reasoning too, without its own rate) */
    RATE_REASONING, /* reasoning output, when priced apart */
    RATE_AUDIO_IN,  /* audio input */
    RATE_AUDIO_OUT, /* audio output */
    PRICE_RATES
} price_rate_t;

/*
 * The rates of one service tier (batch, flex, priority) as the source
 * lists them: `base` below the long-context threshold, `tier` above it.
 * Each is PRICE_ABSENT where the source gives none; `present` is false
 * when the source gives no rate for this service tier at all.
 */
typedef struct price_rates {
    bool present;
    pico_t base[PRICE_RATES];
    pico_t tier[PRICE_RATES];
} price_rates_t;

/* A multiplier for calls that ran in one geography, as num/den. */
typedef struct price_geo {
    char name[8];
    int64_t num;
    int64_t den;
} price_geo_t;

/*
 * One model's prices, in picodollars per token (so $2.50 per million
 * tokens is 2,500,000). Absent rates are PRICE_ABSENT: a cached or
 * cache-write rate that is absent falls back to the input rate, a 1-hour
 * write to the 5-minute write, an audio rate or the reasoning rate leaves
 * those tokens in their text bucket. Above `tier_threshold` input tokens
 * (strict >, 0 = no tier) every rate switches, for the whole request, to
 * its tier_ twin where that twin is present; a rate without a twin keeps
 * its base rate.
 *
 * The first block of fields is the original layout, which some callers
 * fill by hand. Everything after `layout` counts only when layout is
 * PRICE_LAYOUT (billing_price_init() sets it): an entry from zeroed
 * memory has no 1-hour write rate, no tier twins beyond the first four,
 * no fees, no service-tier rates and no geography multipliers.
 */
typedef struct price {
    char model[128];
    char source[160]; /* "builtin", "config:...", "litellm:<file>", ... */
    pico_t input;
    pico_t cached_input;
    pico_t cache_write; /* the 5-minute write */
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

    uint32_t layout;
    pico_t cache_write_1h;
    pico_t tier_cache_write_1h;
    pico_t tier_reasoning_output;
    pico_t tier_audio_input;
    pico_t tier_audio_output;
    pico_t fee_per_request;    /* picodollars per priced request */
    pico_t fee_per_web_search; /* picodollars per billable search */
    price_rates_t batch;
    price_rates_t flex;
    price_rates_t priority;
    price_geo_t geo[PRICE_GEO_MAX];
    int n_geo;
    char provider[32]; /* "openai", "anthropic", ...; "" when unknown */
    /* Where the numbers came from, precisely enough to find them again:
     * "litellm:<file>#<key>", "genai-prices:<file>#<provider>/<id>@<date>",
     * "builtin#<model>". The ledger stores this string. */
    char origin[160];
    int64_t valid_from; /* unix seconds, 0 = since always */
    int64_t valid_to;   /* unix seconds, exclusive, 0 = no end */
    int32_t day_from;   /* seconds into the UTC day; a daily window */
    int32_t day_to;     /* [day_from, day_to), may wrap; equal = all day */
} price_t;

typedef struct price_table price_table_t;

/* cost_t.flags: how the cost was reached, for the spend record. */
#define COST_FLAG_LONG_CONTEXT 0x1u   /* above the long-context threshold */
#define COST_FLAG_TIER_FALLBACK 0x2u  /* service-tier rate missing: rule */
#define COST_FLAG_WRITE_1H_AS_5M 0x4u /* no 1-hour rate: 5-minute rate */
#define COST_FLAG_GEO 0x8u            /* a geography multiplier applied */

/*
 * The cost of one attempt, split as genai-prices reports it. input +
 * output + fees == total, exactly.
 */
typedef struct cost {
    cost_status_t status;
    pico_t input;  /* uncached, cached, cache-write and audio input */
    pico_t output; /* text, reasoning and audio output */
    pico_t total;
    pico_t fees;    /* per-request and per-search fees */
    unsigned flags; /* COST_FLAG_* */
} cost_t;

/* A new table holding the built-in prices. Owned by the caller; aborts on
 * out of memory. */
price_table_t *billing_table_new(void);
void billing_table_free(price_table_t *table);

/* An empty table, without the built-in entries (for tests and for tools
 * that price from one source only). Owned by the caller; aborts on out of
 * memory. */
price_table_t *billing_table_new_empty(void);

/*
 * Adds one entry. The table keeps every source's entry: one with the same
 * model, source, valid_from and daily window as an existing entry replaces
 * it, any other is added. Which entry a lookup returns is decided then
 * (see billing_lookup_at). An empty origin is filled in as
 * "<source>#<model>".
 */
void billing_put(price_table_t *table, const price_t *price);

/*
 * The price for a model name at a time (unix seconds). Resolution, in
 * this order, the first that finds an entry in force wins:
 *   1. an exact entry of that name;
 *   2. a configured alias (billing_alias) of that name, its target
 *      resolved by these same rules;
 *   3. the name without a provider prefix ("openai/gpt-4o"): exact, alias;
 *   4. the name (and the prefix-less name) without a date suffix
 *      ("-2024-08-06", "-20241022", "@20241022"): exact, alias;
 *   5. genai-prices match clauses: first those of the provider the prefix
 *      names, then of the providers whose model_match takes the name,
 *      then all, in load order.
 * NULL when nothing matches: the model is unpriced. Among the entries of
 * one name, those in force at `at` compete: config beats imports, imports
 * beat built-ins, and within one rank the entry added last wins (genai-
 * prices' "last active entry wins"). The pointer stays valid until the
 * table is freed or changed.
 */
const price_t *billing_lookup_at(const price_table_t *table, const char *model,
                                 int64_t at);

/* billing_lookup_at() at the current wall-clock time. */
const price_t *billing_lookup(const price_table_t *table, const char *model);

/*
 * Makes `alias` resolve as `target` (rule 2 of billing_lookup_at). A later
 * alias of the same name replaces the earlier. Returns 0, -EINVAL for an
 * empty or self-referring name, -ENAMETOOLONG when a name does not fit
 * price_t.model.
 */
int billing_alias(price_table_t *table, const char *alias, const char *target);

/*
 * Parses a decimal price in USD per token ("3e-06", "0.0000025") or, with
 * per_million set, USD per million tokens ("2.50") into picodollars per
 * token. Returns 0, or -EINVAL when the text is not a plain decimal or is
 * not a whole number of picodollars per token.
 */
int billing_parse_price(const char *text, size_t len, bool per_million,
                        pico_t *out);

/*
 * Cost of one attempt, OpenAI usage semantics: cached, cache-write and
 * audio-in tokens inside input_tokens, 1-hour writes inside cache writes,
 * reasoning and audio-out inside output_tokens; each token is billed once
 * at the rate of the smallest bucket the model prices. The rate set is
 * chosen by usage->service_tier, then by the long-context tier (basis:
 * input_tokens). A service tier the entry has no rates for is priced by
 * the documented rule: batch and flex at exactly 1/2 of the standard
 * rates, priority at the standard rates; COST_FLAG_TIER_FALLBACK says so.
 * A geography multiplier matching usage->geo scales the token cost (not
 * the fees); the one rounding, half to even, comes last.
 *
 * price may be NULL: the status is then COST_UNPRICED. Usage that is not
 * present gives COST_USAGE_MISSING; a negative count or leaf (a subset
 * larger than its parent) gives COST_INVALID_USAGE; usage Tollgate counted
 * itself gives COST_ESTIMATED. Totals are exact integers.
 */
cost_t billing_cost(const price_t *price, const usage_t *usage);

/* Number of entries (every source's), for logs and `tollgate check`. */
size_t billing_table_size(const price_table_t *table);

/* The entry at index i (0 <= i < billing_table_size()), in the order the
 * entries were first added; NULL past the end. Valid as long as a
 * billing_lookup() result is. */
const price_t *billing_table_at(const price_table_t *table, size_t i);

/*
 * Sets every rate of price to PRICE_ABSENT, its limits, fees and dates to
 * 0 and layout to PRICE_LAYOUT, and copies model and source in (origin
 * becomes "<source>#<model>"), for callers that fill an entry field by
 * field. Returns 0, or -ENAMETOOLONG when model does not fit price_t.model
 * (the name is then left empty). A source that does not fit is cut short.
 */
int billing_price_init(price_t *price, const char *model, const char *source);

/* A rate of an entry: service tier `service`, base or long-context `tier`
 * rate. Standard rates come from the named fields. PRICE_ABSENT when the
 * entry does not give it. */
pico_t billing_rate_get(const price_t *price, service_tier_t service,
                        price_rate_t rate, bool tier);

/* "input", "cached", "write_5m", "write_1h", "output", "reasoning",
 * "audio_in", "audio_out". */
const char *billing_rate_name(price_rate_t rate);

/* Writes the entry's origin (or "<source>#<model>" when it has none) into
 * out, cut to outlen - 1 characters. */
void billing_origin_format(const price_t *price, char *out, size_t outlen);

/* What one import did with the file's entries. */
typedef struct billing_import {
    int loaded;   /* entries added or replaced */
    int unpriced; /* no input or no output price: skipped */
    int rejected; /* a rate that is not a whole number of picodollars per
                     token (or negative, or too large), a name longer than
                     price_t.model, two long-context thresholds, a match
                     clause that does not compile: skipped */
} billing_import_t;

/* Called once per skipped entry with its name and why. */
typedef void billing_reject_fn(const char *entry, const char *why, void *arg);

/*
 * Reads a price file and adds its entries. The format is told by the
 * content: a JSON object is LiteLLM's model_prices_and_context_window.json
 * (USD per token), a JSON array is pydantic genai-prices' data.json (USD
 * per million tokens, match clauses, dated prices). Prices are read from
 * their decimal text, never through a double. Counts and on_reject may be
 * NULL. Returns the number of entries loaded, or a negative code with a
 * message in err (the file unreadable or not one of the two formats).
 */
int billing_import_file(price_table_t *table, const char *path,
                        billing_import_t *counts, billing_reject_fn *on_reject,
                        void *arg, char *err, size_t errlen);

/* billing_import_file() without the reject callback (the name is kept for
 * callers from before genai-prices; both formats are accepted). */
int billing_import_litellm(price_table_t *table, const char *path,
                           billing_import_t *counts, char *err, size_t errlen);

/* billing_import_file() with neither counts nor callback. */
int billing_load_litellm(price_table_t *table, const char *path, char *err,
                         size_t errlen);

/* One rate on which two sources' entries for a model disagree. */
typedef struct billing_disagreement {
    const char *model;
    const price_t *winner; /* the entry lookups return */
    const price_t *other;  /* another source's entry in force */
    char field[40];        /* "input", "tier_output", "batch.input", ... */
    int64_t winner_value;
    int64_t other_value;
} billing_disagreement_t;

typedef void billing_disagreement_fn(const billing_disagreement_t *d,
                                     void *arg);

/*
 * Compares, for each model name (or only `model` when not NULL), the
 * entry in force at `at` of each source with the one lookups return, rate
 * by rate: fields that both entries define and that differ, plus the
 * long-context threshold. Calls fn for each (fn may be NULL) and returns
 * how many there were.
 */
size_t billing_disagreements(const price_table_t *table, const char *model,
                             int64_t at, billing_disagreement_fn *fn,
                             void *arg);

/*
 * `tollgate prices import FILE [--json] [-v]` and `tollgate prices check
 * --config FILE [--all]`. Returns the exit code: 0 clean, 1 findings
 * (rejected entries, unpriced models, disagreeing sources), 2 usage or
 * file errors.
 */
int prices_main(int argc, char **argv);

#endif
