/*
 * Retries and fallbacks: what a failed attempt's status and error body
 * mean (retry the same model, fall back to the next, move to a larger
 * context window, or give the caller the error), how long to wait
 * before a retry, and a per-task retry budget so an outage cannot turn
 * into a retry storm. Pure functions: time and randomness come in as
 * arguments.
 */
#ifndef TOLLGATE_ROUTE_RETRY_H
#define TOLLGATE_ROUTE_RETRY_H

#include "config/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum retry_class {
    RETRY_SAME = 0,         /* transient: retry (budget allowing), else
                               fall back */
    RETRY_FALLBACK,         /* this model will keep failing; the next
                               model in the chain may not */
    RETRY_CONTEXT_OVERFLOW, /* the prompt is too big: only a model with a
                               larger window can take it */
    RETRY_NEVER             /* the request itself is at fault: answer the
                               caller with the error */
} retry_class_t;

/*
 * Classifies a failed attempt. status is the HTTP status, or 0 when no
 * response came (timeout, refused or dropped connection). error_body is
 * the provider's error body, NUL-terminated, or NULL.
 *   - 0, 408, 409, 429, 500-599 (529 too): RETRY_SAME;
 *   - a 429 that says the account is out of credit (OpenAI
 *     insufficient_quota, credit_balance_exhausted): RETRY_FALLBACK;
 *   - an Anthropic spend-cap error (error.details.error_code
 *     enforced_spend_limit_reached, on any status): RETRY_NEVER;
 *   - a 4xx or 5xx whose body says the context window was exceeded, in
 *     any provider's words (OpenAI context_length_exceeded, Anthropic
 *     "prompt is too long", Gemini "exceeds the maximum number of
 *     tokens", vLLM/SGLang/Mistral/llama.cpp/TGI phrasings):
 *     RETRY_CONTEXT_OVERFLOW, ahead of every rule above;
 *   - anything else (400, 401, 402, 403, 404, 413, 422, ...):
 *     RETRY_NEVER. Whether 401/403 may fall back to another provider is
 *     the caller's config decision, not made here.
 * kind is the provider's dialect; the texts recognised are the same for
 * all, since OpenAI-compatible servers copy each other's wording.
 */
retry_class_t retry_classify(provider_kind_t kind, int status,
                             const char *error_body);

/* "retry", "fallback", "context_overflow", "never". */
const char *retry_class_name(retry_class_t cls);

/*
 * Parses a retry-after header: delta-seconds ("30", also "1.5") or an
 * HTTP date (IMF-fixdate, RFC 850 or asctime form), relative to now_ms
 * (unix ms). A date in the past gives 0. Returns 0 with *delay_ms, or
 * -EINVAL for anything else (negative, garbage, out of range).
 */
int retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms);

/*
 * The delay the provider asked for: retry-after-ms (milliseconds, sent
 * by OpenAI and Anthropic) when it parses, else retry-after. Either may
 * be NULL. Returns 0 with *delay_ms or -ENOENT when neither gives one.
 */
int retry_after_pick(const char *retry_after_ms, const char *retry_after,
                     int64_t now_ms, int64_t *delay_ms);

typedef struct retry_policy {
    int max_retries;            /* retries of one model per attempt chain */
    int64_t base_ms;            /* first backoff ceiling: 500 */
    int64_t cap_ms;             /* backoff ceiling cap: 8000 */
    int64_t max_retry_after_ms; /* a longer ask means no retry: 120000 */
} retry_policy_t;

/* Sets 2 retries, 500 ms, 8 s, 120 s (as openai-python does). */
void retry_policy_init(retry_policy_t *p);

/*
 * Exponential backoff with full jitter for the retry_no-th retry (1 for
 * the first): uniform in [0, min(cap_ms, base_ms * 2^(retry_no-1))],
 * taken from rnd. Never negative, never above cap_ms.
 */
int64_t retry_backoff_ms(const retry_policy_t *p, int retry_no, uint64_t rnd);

/*
 * The wait before the retry_no-th retry: the provider's retry_after_ms
 * when it gave one (>= 0) and it is at most max_retry_after_ms, else the
 * backoff. Returns -1 when the retry should not happen: retry_no past
 * max_retries, or the provider asked for longer than
 * max_retry_after_ms (surface the error or fall back instead of
 * waiting).
 */
int64_t retry_delay_ms(const retry_policy_t *p, int retry_no,
                       int64_t retry_after_ms, uint64_t rnd);

/* Slots a budget window may have. */
#define RETRY_BUDGET_MAX_SLOTS 120

/*
 * A retry budget: over a sliding window of n_slots slots of slot_ms
 * each, retries may be at most share_permille / 1000 of first attempts
 * (calls), but at least min_retries (so a quiet task can still retry).
 * One budget per task; times are the caller's monotonic clock in ms,
 * never negative.
 */
typedef struct retry_budget {
    int n_slots;
    int64_t slot_ms;
    int share_permille;
    int64_t min_retries;
    struct {
        int64_t epoch; /* now_ms / slot_ms of the slot's counts */
        int64_t calls;
        int64_t retries;
    } slots[RETRY_BUDGET_MAX_SLOTS];
} retry_budget_t;

/*
 * Sets up an empty budget (e.g. 60 slots of 1000 ms, 100 permille,
 * 10 retries). Returns 0 or -EINVAL for n_slots outside
 * 1..RETRY_BUDGET_MAX_SLOTS, slot_ms < 1, share outside 0..1000 or
 * negative min_retries.
 */
int retry_budget_init(retry_budget_t *b, int n_slots, int64_t slot_ms,
                      int share_permille, int64_t min_retries);

/* Counts a first attempt at now_ms. */
void retry_budget_note_call(retry_budget_t *b, int64_t now_ms);

/*
 * Asks for one retry at now_ms: true (and the retry is counted) when the
 * window's retries are below max(min_retries, calls * share / 1000).
 * Same budget for fallbacks caused by errors, if the caller wants them
 * limited too.
 */
bool retry_budget_take(retry_budget_t *b, int64_t now_ms);

/* The window's counts at now_ms (slots older than the window dropped). */
void retry_budget_counts(const retry_budget_t *b, int64_t now_ms,
                         int64_t *calls, int64_t *retries);

#endif
