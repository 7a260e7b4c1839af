/*
 * Types shared by every module: money in integer picodollars and the
 * normalised token usage of one attempt, as billing and the ledger see it.
 */
#ifndef TOLLGATE_COMMON_H
#define TOLLGATE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Money: 1 USD = 10^12 picodollars. Never a float. */
typedef int64_t pico_t;
#define PICO_PER_USD INT64_C(1000000000000)

/* The service tier a call was billed at (the provider's answer says). */
typedef enum service_tier {
    SERVICE_STANDARD = 0,
    SERVICE_BATCH = 1,
    SERVICE_FLEX = 2,
    SERVICE_PRIORITY = 3
} service_tier_t;

/*
 * Usage of one attempt, normalised to OpenAI semantics whatever the
 * provider: every detail count is a subset of its parent. input_tokens is
 * all input (Anthropic's three disjoint counters summed, Gemini's prompt
 * plus tool-use prompt); cached, cache-write and audio-in tokens sit
 * inside it, and 1-hour writes inside cache writes. output_tokens is all
 * billed output (Gemini's thoughts added); reasoning and audio-out sit
 * inside it. A count the provider did not send is 0. `present` is false
 * when no usage arrived at all: such a call is never $0. `estimated` is
 * true when Tollgate counted the tokens itself because the provider's
 * usage never came.
 */
typedef struct usage {
    bool present;
    bool estimated;
    int64_t input_tokens;
    int64_t cached_tokens;
    int64_t cache_write_tokens;
    int64_t cache_write_1h_tokens;
    int64_t audio_in_tokens;
    int64_t output_tokens;
    int64_t reasoning_tokens;
    int64_t audio_out_tokens;
    int64_t web_searches; /* billable per-use searches */
    service_tier_t service_tier;
    char geo[8]; /* "" or where inference ran, e.g. "us" */
} usage_t;

/* Why a cost is what it is. */
typedef enum cost_status {
    COST_PRICED = 0,        /* exact, from usage and a known price */
    COST_UNPRICED = 1,      /* usage known, model has no price */
    COST_USAGE_MISSING = 2, /* no usage arrived (cut stream, error) */
    COST_INVALID_USAGE = 3, /* usage broke its own rules (subset > parent) */
    COST_NONE = 4,          /* no upstream call was billed (refused, 4xx) */
    COST_ESTIMATED = 5      /* priced from usage Tollgate counted itself */
} cost_status_t;

const char *cost_status_name(cost_status_t status);
const char *service_tier_name(service_tier_t tier);

/* The value of a hex digit, or -1 when c is not one. */
int hex_digit(int c);

/* Writes "0.000123450000" (12 decimals) into out; returns out. */
char *pico_format_usd(pico_t pico, char *out, size_t outlen);

#endif
