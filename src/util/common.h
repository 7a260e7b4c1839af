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

/*
 * Usage as the provider reported it, OpenAI semantics: every detail count
 * is a subset of its parent (cached and cache-write tokens sit inside
 * input_tokens; reasoning and audio-out inside output_tokens). A count the
 * provider did not send is 0. `present` is false when no usage arrived at
 * all (a stream cut before its usage chunk): such a call is never $0.
 */
typedef struct usage {
    bool present;
    int64_t input_tokens;
    int64_t cached_tokens;
    int64_t cache_write_tokens;
    int64_t audio_in_tokens;
    int64_t output_tokens;
    int64_t reasoning_tokens;
    int64_t audio_out_tokens;
} usage_t;

/* Why a cost is what it is. */
typedef enum cost_status {
    COST_PRICED = 0,        /* exact, from usage and a known price */
    COST_UNPRICED = 1,      /* usage known, model has no price */
    COST_USAGE_MISSING = 2, /* no usage arrived (cut stream, error) */
    COST_INVALID_USAGE = 3, /* usage broke its own rules (subset > parent) */
    COST_NONE = 4           /* no upstream call was billed (refused, 4xx) */
} cost_status_t;

const char *cost_status_name(cost_status_t status);

/* The value of a hex digit, or -1 when c is not one. */
int hex_digit(int c);

/* Writes "0.000123450000" (12 decimals) into out; returns out. */
char *pico_format_usd(pico_t pico, char *out, size_t outlen);

#endif
