/*
 * Retry decisions for the attempt loop. The classification follows what
 * the official SDKs retry (408, 409, 429, 5xx, connection errors) with
 * the exceptions that keep failing however often they are sent: a
 * spend cap, an account out of credit, a prompt larger than the window
 * (gateway-faults.md BUG-16 and BUG-19).
 */
#include "route/retry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How providers and OpenAI-compatible servers word a prompt that does
 * not fit. Matched without regard to case. */
static const char *const overflow_phrases[] = {
    "context_length_exceeded",              /* OpenAI, Azure (code) */
    "context_window_exceeded",              /* several compatible servers */
    "exceed_context_size",                  /* llama.cpp (type) */
    "maximum context length",               /* OpenAI, vLLM, Mistral */
    "model's context length",               /* SGLang */
    "prompt is too long",                   /* Anthropic */
    "exceeds the maximum number of tokens", /* Gemini */
    "exceeds the context window",           /* OpenAI Responses */
    "exceed context limit",                 /* Anthropic, input + max_tokens */
    "input is too long",                    /* Bedrock */
    "reduce the length of the messages",    /* older OpenAI wording */
    "exceeds the available context size",   /* llama.cpp */
    "too large for model with",             /* Mistral */
    "tokens + `max_new_tokens` must be",    /* TGI */
};

/* 429s that mean the account, not the moment: out of credit, or a
 * request larger than the per-minute token limit itself. */
static const char *const stuck_429_phrases[] = {
    "insufficient_quota",
    "credit_balance_exhausted",
    "request too large",
};

static bool says(const char *body, const char *const *phrases, size_t n)
{
    for (size_t i = 0; body != NULL && i < n; i++) {
        if (strcasestr(body, phrases[i]) != NULL)
            return true;
    }
    return false;
}

#define SAYS(body, list) says(body, list, sizeof(list) / sizeof(list[0]))

retry_class_t retry_classify(provider_kind_t kind, int status,
                             const char *error_body)
{
    if (error_body != NULL &&
        strstr(error_body, "enforced_spend_limit_reached") != NULL)
        return RETRY_NEVER;
    if (status >= 400 && status != 401 && status != 403 &&
        SAYS(error_body, overflow_phrases))
        return RETRY_CONTEXT_OVERFLOW;
    if (status <= 0)
        return RETRY_SAME;
    if (status == 429)
        return SAYS(error_body, stuck_429_phrases) ? RETRY_FALLBACK
                                                   : RETRY_SAME;
    if (status == 408 || status == 409 || (status >= 500 && status <= 599))
        return RETRY_SAME;
    return RETRY_NEVER;
}

const char *retry_class_name(retry_class_t cls)
{
    static const char *const names[] = {"retry", "fallback", "context_overflow",
                                        "never"};

    return cls <= RETRY_NEVER ? names[cls] : "unknown";
}

void retry_policy_init(retry_policy_t *p)
{
    p->max_retries = 2;
    p->base_ms = 500;
    p->cap_ms = 8000;
    p->max_retry_after_ms = 120000;
}

int64_t retry_backoff_ms(const retry_policy_t *p, int retry_no, uint64_t rnd)
{
    int64_t ceiling = p->base_ms > 0 ? p->base_ms : 0;

    for (int i = 1; i < retry_no && ceiling < p->cap_ms; i++)
        ceiling *= 2;
    if (ceiling > p->cap_ms)
        ceiling = p->cap_ms;
    if (ceiling <= 0)
        return 0;
    return (int64_t)(rnd % (uint64_t)(ceiling + 1));
}

int64_t retry_delay_ms(const retry_policy_t *p, int retry_no,
                       int64_t retry_after_ms, uint64_t rnd)
{
    if (retry_no < 1 || retry_no > p->max_retries)
        return -1;
    if (retry_after_ms > p->max_retry_after_ms)
        return -1;
    if (retry_after_ms >= 0)
        return retry_after_ms;
    return retry_backoff_ms(p, retry_no, rnd);
}
