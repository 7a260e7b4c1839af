/*
 * One simulated answer, whatever the surface: its text (or a tool
 * call's input JSON), how that text splits into stream chunks, and its
 * usage counts by the simulator's token rule and the `sim:` directives.
 * The surfaces render these counts in their own usage semantics.
 */
#ifndef PROVIDER_SIM_ANSWER_H
#define PROVIDER_SIM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "sim_surface.h"

#define ANSWER_MAX_WORDS 100000

enum answer_replay {
    ANSWER_REPLAY_OFF = 0, /* no replay file loaded */
    ANSWER_REPLAY_MISS,
    ANSWER_REPLAY_HIT
};

/* Everything the answer owns is freed by answer_free. */
struct answer {
    char *id;          /* chatcmpl-<n>, msg_..., resp_... */
    char *request_id;  /* x-request-id, request-id */
    char *model;       /* model reported in the response */
    char *fingerprint; /* system_fingerprint */
    int64_t created;
    char *text;
    size_t text_len;
    size_t *chunk_ends; /* byte offset where each stream chunk ends */
    size_t nchunks;
    bool truncated; /* finish_reason "length" instead of "stop" */
    enum answer_replay replay;
    uint64_t serial;            /* the simulator's answer number */
    char *tool_name;            /* non-NULL: text is a tool call's input JSON */
    char *tool_id;              /* toolu_... for that call */
    int64_t prompt_tokens;      /* all input, cache reads and writes included */
    int64_t cached_tokens;      /* cache reads */
    int64_t cache_write_tokens; /* 5-minute cache writes */
    int64_t cache_write_1h_tokens; /* 1-hour cache writes */
    int64_t answer_tokens;         /* pieces of text */
    int64_t reasoning_tokens;
    int64_t web_searches;
    char service_tier[16]; /* "" when the surface's default applies */
    char geo[16];          /* "" when no sim:geo was given */
    bool delta_full;       /* sim:delta_usage=full */
    bool no_cache_split;   /* sim:cache_split=none */
};

/*
 * The default text for (last user message, model): 8 + hash % 40 words
 * from a fixed list, or exactly N words when the message holds
 * "sim:words=N" (N capped at ANSWER_MAX_WORDS). Caller frees.
 */
char *answer_default_text(const char *last_user, size_t last_len,
                          const char *model, size_t *len);

/*
 * Takes ownership of text, truncates it to `limit` pieces when limit is
 * not negative, splits it into chunks and counts answer and reasoning
 * tokens. Prompt, cache and identity fields are set by the caller.
 */
void answer_set_text(struct answer *answer, char *text, size_t len,
                     int64_t limit, bool reasoning);

void answer_free(struct answer *answer);

/* Pieces of the text's first `nchunks` stream chunks. */
int64_t answer_pieces_upto(const struct answer *answer, size_t nchunks);

/* All cache writes, both TTLs. */
int64_t answer_cache_writes(const struct answer *answer);

/*
 * The /_sim/usage "normalized" object: what a correct reader of the
 * surface's usage records, in OpenAI's subset semantics (every count
 * but web_searches a subset of input_tokens or output_tokens). Counts a
 * surface never reports are 0; output_tokens is `output` (pass
 * answer_tokens + reasoning_tokens for a finished answer).
 */
struct json_object *answer_normalized_json(const struct answer *answer,
                                           enum surface surface,
                                           int64_t output);

#endif
