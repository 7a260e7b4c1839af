/*
 * One simulated answer: its text, how the text splits into stream
 * chunks, its usage by the simulator's token rule, and the OpenAI Chat
 * Completions JSON (plain object, stream chunks, usage) built from it.
 */
#ifndef PROVIDER_SIM_ANSWER_H
#define PROVIDER_SIM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define ANSWER_MAX_WORDS 100000

enum answer_replay {
    ANSWER_REPLAY_OFF = 0, /* no replay file loaded */
    ANSWER_REPLAY_MISS,
    ANSWER_REPLAY_HIT
};

/* Everything the answer owns is freed by answer_free. */
struct answer {
    char *id;          /* chatcmpl-<n> */
    char *request_id;  /* x-request-id */
    char *model;       /* model reported in the response */
    char *fingerprint; /* system_fingerprint */
    int64_t created;
    char *text;
    size_t text_len;
    size_t *chunk_ends; /* byte offset where each stream chunk ends */
    size_t nchunks;
    bool truncated; /* finish_reason "length" instead of "stop" */
    enum answer_replay replay;
    int64_t prompt_tokens;
    int64_t cached_tokens;
    int64_t answer_tokens;
    int64_t reasoning_tokens;
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

/* The usage object, OpenAI's shape with every detail field present. */
struct json_object *answer_usage_json(const struct answer *answer);

/* The whole chat.completion object. */
struct json_object *answer_completion_json(const struct answer *answer);

enum answer_chunk {
    ANSWER_CHUNK_ROLE,    /* delta {role, content:""} */
    ANSWER_CHUNK_CONTENT, /* delta {content: chunk i} */
    ANSWER_CHUNK_FINISH,  /* delta {} with finish_reason */
    ANSWER_CHUNK_USAGE    /* choices [] with the usage */
};

/*
 * One chat.completion.chunk. with_usage adds "usage": null to the first
 * three kinds, as OpenAI does under stream_options.include_usage.
 */
struct json_object *answer_chunk_json(const struct answer *answer,
                                      enum answer_chunk kind, size_t index,
                                      bool with_usage);

#endif
