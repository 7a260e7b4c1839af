/*
 * The `sim:KEY=VALUE` directives a test writes into the last user
 * message to shape an answer's usage (cache reads and writes, forced
 * input, reasoning, web searches, tier, geography) or to ask for a tool
 * call. Every surface reads the same directives and reports them in its
 * own usage semantics.
 */
#ifndef PROVIDER_SIM_DIRECTIVE_H
#define PROVIDER_SIM_DIRECTIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest count a directive may set; bigger values are clamped. */
#define DIRECTIVE_MAX_COUNT INT64_C(1000000000)
/* Largest sim:web_search count (each search adds stream events). */
#define DIRECTIVE_MAX_SEARCHES 1000

/* Counts are -1 when the directive is absent; strings "" when absent. */
struct directives {
    int64_t input;          /* sim:input: uncached input tokens */
    int64_t cache_read;     /* sim:cache_read */
    int64_t cache_write;    /* sim:cache_write: 5-minute writes */
    int64_t cache_write_1h; /* sim:cache_write_1h */
    int64_t reasoning;      /* sim:reasoning */
    int64_t web_search;     /* sim:web_search */
    char service_tier[16];  /* sim:service_tier */
    char geo[16];           /* sim:geo */
    char tool[64];          /* sim:tool */
    bool delta_full;        /* sim:delta_usage=full */
    bool no_cache_split;    /* sim:cache_split=none */
};

/*
 * Reads every directive in len bytes of text into dir, which it resets
 * first. A later directive overrides an earlier one with the same key;
 * unknown keys and malformed values are ignored. Never fails.
 */
void directives_parse(const char *text, size_t len, struct directives *dir);

#endif
