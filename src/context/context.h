/*
 * Context trimming: rewrites a chat request so that what adds nothing
 * (old turns, repeated instructions, resent documents, stale or huge tool
 * output) is not sent, counts every token removed and flags trims the
 * last user turn seems to depend on. Pure: no I/O, no globals; the proxy
 * calls it between the policy stage and building the upstream body.
 */
#ifndef TOLLGATE_CONTEXT_H
#define TOLLGATE_CONTEXT_H

#include "billing/billing.h"
#include "tokens/tokens.h"
#include "util/arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* The request body's shape. */
typedef enum context_surface {
    CONTEXT_OPENAI_CHAT = 0, /* POST /v1/chat/completions */
    CONTEXT_ANTHROPIC = 1    /* POST /v1/messages */
} context_surface_t;

/*
 * One task's trimming policy; the config loader fills it (or calls
 * context_policy_parse). A "turn" is a user message that is not a tool
 * result, with everything after it up to the next such message. Every
 * rule is off at 0 / false, except keep_system and respect_cache.
 */
typedef struct context_policy {
    int64_t budget_tokens;   /* input budget; over it, drop oldest turns */
    bool keep_system;        /* keep system messages inside dropped turns */
    int keep_last_turns;     /* drop turns before the last N */
    bool drop_repeated;      /* paragraphs repeated from earlier text */
    int tool_result_age;     /* results followed by N assistant replies */
    int64_t tool_output_max; /* cut longer tool outputs to head and tail */
    bool drop_documents;     /* documents identical to an earlier one */
    bool respect_cache;      /* never touch the cached prefix */
    int64_t openai_prefix_tokens; /* OpenAI's cached prefix; 0 = none */
} context_policy_t;

/* Smallest accepted tool_output_max: head, tail and the marker fit. */
#define CONTEXT_TOOL_OUTPUT_MIN 64

/* What each rule removed. */
typedef enum context_rule {
    CONTEXT_RULE_OLD_TURNS = 0, /* keep_last_turns */
    CONTEXT_RULE_REPEATED,      /* drop_repeated */
    CONTEXT_RULE_TOOL_RESULTS,  /* tool_result_age */
    CONTEXT_RULE_TOOL_OUTPUT,   /* tool_output_max */
    CONTEXT_RULE_DOCUMENTS,     /* drop_documents */
    CONTEXT_RULE_BUDGET,        /* budget_tokens */
    CONTEXT_RULES
} context_rule_t;

typedef struct context_removed {
    int items;      /* messages dropped, or texts replaced or cut */
    int64_t tokens; /* input tokens this rule took out */
} context_removed_t;

#define CONTEXT_RISK_WORDS_MAX 16

typedef struct context_result {
    bool changed;     /* false: send the request as it is */
    const char *body; /* rewritten request (arena), NULL when unchanged */
    size_t body_len;
    int64_t tokens_before; /* the request's input tokens */
    int64_t tokens_after;  /* = before - the sum of removed[].tokens */
    bool estimated;        /* counts are estimates, not the model's own */
    bool over_budget;      /* the budget could not be met within the rules */
    context_removed_t removed[CONTEXT_RULES];
    int messages_dropped;
    bool risk; /* the last user turn names what was removed */
    const char *risk_words[CONTEXT_RISK_WORDS_MAX];
    size_t n_risk_words;
} context_result_t;

/* keep_system and respect_cache on, every other rule off. */
void context_policy_default(context_policy_t *policy);

/*
 * Fills *policy from a task's `context:` subtree (as the config keeps it
 * in JSON): budget_tokens, keep_system, keep_last_turns,
 * drop_repeated_instructions, tool_result_max_age_turns,
 * tool_output_max_tokens, drop_resent_documents, respect_cache,
 * openai_cached_prefix_tokens. Absent keys keep the defaults; numbers may
 * be JSON numbers or decimal strings. Returns 0, or -EINVAL with a
 * message in err for an unknown key or a value out of range.
 */
int context_policy_parse(struct json_object *obj, context_policy_t *policy,
                         char *err, size_t errlen);

/* "old_turns", "repeated", "tool_results", "tool_output", "documents",
 * "budget". */
const char *context_rule_name(context_rule_t rule);

/*
 * Trims REQUEST (left unchanged; it may be shared) by POLICY and writes
 * the outcome to *out. The system prompt, the last user turn and
 * everything up to the last cache breakpoint (when respect_cache) are
 * never removed; a tool call and its results are dropped together or not
 * at all; the result is a request the provider accepts whenever the input
 * was; trimming a trimmed request changes nothing. Counts are exact when
 * ENC is MODEL's encoding (tokens_model_kind), otherwise estimated with
 * tokens_estimate (ENC NULL: one token per 4 bytes) and flagged. The
 * body lives in ARENA. Returns 0, or -EINVAL when REQUEST has no
 * "messages" array or POLICY is out of range.
 */
int context_trim(arena_t *arena, context_surface_t surface,
                 struct json_object *request, const context_policy_t *policy,
                 const tokens_encoding_t *enc, const char *model,
                 context_result_t *out);

/* Dollars saved: REMOVED input tokens at PRICE's input rate (0 when the
 * rate is absent); saturates instead of overflowing. */
pico_t context_saved_pico(const price_t *price, int64_t removed);

#endif
