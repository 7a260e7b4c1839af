/*
 * OpenAI Chat Completions <-> Anthropic Messages. A chat request routed to
 * an Anthropic model is rewritten for /v1/messages; the answer, its stream
 * and its errors come back in OpenAI's shape. Pure: no I/O, no globals.
 *
 * What a chat request cannot carry to Anthropic
 * ---------------------------------------------
 * Refused with a message for a 400 (the caller would otherwise get an
 * answer that silently differs from what it asked for):
 *   n > 1; logprobs true; top_logprobs; response_format json_object or
 *   json_schema; audio output (modalities with "audio", or audio); the
 *   legacy functions / function_call; web_search_options; input_audio
 *   and file content parts; temperature or top_p outside 0..1; a stop
 *   sequence made only of whitespace (Anthropic refuses it); temperature
 *   and top_p together, unless top_p is 1 (then dropped); tool types
 *   other than function; tool_choice other than auto, none, required or
 *   one function, or a tool_choice that needs tools when there are none;
 *   images outside user and tool messages; image data URLs that are not
 *   base64 jpeg, png, gif or webp.
 * Dropped silently, since Anthropic has no equivalent and they tune
 * sampling or bookkeeping rather than the kind of answer (refusing them
 * would break ordinary clients): model (the route's upstream id is used),
 * seed, frequency_penalty, presence_penalty, logit_bias, service_tier,
 * store, prediction, reasoning_effort, verbosity, prompt_cache_key,
 * safety_identifier, stream_options (read for include_usage),
 * response_format text, tool `strict`, image `detail`, message `name`,
 * metadata other than `user`, and any member this list does not name.
 * Text parts that are empty or only whitespace and empty stop strings are
 * left out too (Anthropic refuses them and they say nothing).
 * Rewritten: system and developer messages, wherever they stand, go to the
 * top-level system; consecutive messages of one role are merged (tool
 * results count as user) because Anthropic requires alternation; messages
 * left with no content are skipped; max_completion_tokens wins over
 * max_tokens; parallel_tool_calls false becomes disable_parallel_tool_use;
 * metadata.user, else user, becomes metadata.user_id; image_url parts
 * become image blocks (base64 source for data: URLs, url source else).
 * Refused as invalid for Anthropic: no messages, a first message that is
 * not the user's, an assistant tool call without its result right after,
 * a tool result that answers no call of the message before.
 *
 * Answers: the OpenAI id is "chatcmpl-" + the Anthropic message id;
 * thinking, redacted thinking and server-tool blocks are dropped.
 * finish_reason: end_turn, stop_sequence, pause_turn -> stop; max_tokens,
 * model_context_window_exceeded -> length; tool_use -> tool_calls;
 * refusal -> content_filter; anything else -> stop.
 */
#ifndef TOLLGATE_TRANSLATE_H
#define TOLLGATE_TRANSLATE_H

#include "util/arena.h"
#include "util/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

typedef struct translate_request_opts {
    const char *upstream_model; /* Anthropic model id sent upstream */
    int64_t default_max_tokens; /* when the caller set no limit; > 0 */
} translate_request_opts_t;

typedef struct translate_request {
    char *body; /* the Anthropic request, NUL-terminated, arena memory */
    size_t body_len;
    int64_t max_tokens; /* what went upstream, for budgeting */
    bool stream;
    bool include_usage;  /* stream_options.include_usage was true */
    const char *message; /* on -EINVAL: for a 400, arena memory */
    const char *param;   /* on -EINVAL: the member at fault, or NULL */
} translate_request_t;

/*
 * Rewrites an OpenAI chat request (a parsed object the caller keeps) as an
 * Anthropic Messages request. Returns 0 with out->body set, or -EINVAL
 * with out->message (and out->param when one member is at fault) when the
 * request cannot go to Anthropic as it is.
 */
int translate_request_to_anthropic(arena_t *arena, struct json_object *chat,
                                   const translate_request_opts_t *opts,
                                   translate_request_t *out);

typedef struct translate_reply_opts {
    const char *model;  /* the model name the caller asked for */
    int64_t created;    /* unix seconds for `created` */
    bool include_usage; /* streams: end with a usage chunk */
} translate_reply_opts_t;

typedef struct translate_answer {
    char *body; /* the chat.completion, NUL-terminated, arena memory */
    size_t body_len;
    const char *provider_model; /* Anthropic's `model`, "" when absent */
    usage_t usage; /* normalised; present false when usage was missing */
} translate_answer_t;

/*
 * Rewrites a plain Anthropic message (text of the 200 body) as an OpenAI
 * chat.completion. Its usage follows OpenAI: prompt_tokens is the three
 * Anthropic input counters summed, cached and cache-write tokens sit
 * inside it. Returns 0, or -EINVAL when text is not an Anthropic message
 * (out->body is then NULL).
 */
int translate_answer_to_openai(arena_t *arena, const char *text, size_t len,
                               const translate_reply_opts_t *opts,
                               translate_answer_t *out);

/* Anthropic's raw counters as a stream accumulates them. */
typedef struct translate_counts {
    bool present;
    bool has_thinking; /* output_tokens_details.thinking_tokens came */
    int64_t input;     /* uncached input only */
    int64_t cache_write;
    int64_t cache_write_1h;
    int64_t cache_read;
    int64_t output; /* inclusive of thinking */
    int64_t thinking;
    int64_t web_searches;
    service_tier_t tier;
    char geo[8];
} translate_counts_t;

/* One streamed answer's state. Fields are private; use the functions. */
typedef struct translate_stream {
    arena_t *arena;
    translate_reply_opts_t opts;
    const char *id;
    const char *provider_model;
    translate_counts_t counts;
    int tool_block; /* Anthropic index of the open tool_use block, or -1 */
    int tools;      /* tool calls begun so far */
    bool started;   /* the role chunk was written */
    bool finish_sent;
    bool ended; /* [DONE] or an error line was written */
    bool ended_ok;
} translate_stream_t;

/* Starts a translator; strings it keeps are copied into arena, which
 * must outlive it. Nothing to free. */
void translate_stream_init(translate_stream_t *ts, arena_t *arena,
                           const translate_reply_opts_t *opts);

/*
 * Feeds one Anthropic SSE event (its event name, or NULL/"" to use the
 * data's `type`; data is its JSON text) and appends what the caller must
 * see, as "data: {...}\n\n" lines, to out. An `error` event becomes
 * {"error":{message,type,code}} (types as translate_error_to_openai maps
 * them) and ends the stream without [DONE]; message_stop ends it with the
 * usage chunk (when asked, and when usage came) and [DONE]. ping and
 * unknown events write nothing, and so does anything after the end.
 * Returns 0; -EPROTO when the event could not be read (an error line was
 * written and the stream ended); -ENOSPC when out's cap would be passed
 * (nothing of that event appended, state as before: it can be fed again).
 */
int translate_stream_feed(translate_stream_t *ts, const char *event,
                          const char *data, size_t len, buf_t *out);

/* The stream reached message_stop (not an error, not cut short). */
bool translate_stream_ended_ok(const translate_stream_t *ts);

/* Usage so far, normalised (input all three counters, cached = reads,
 * cache writes = creation, output inclusive); present false when none. */
void translate_stream_usage(const translate_stream_t *ts, usage_t *usage);

/* The provider's model id from message_start, "" before it. */
const char *translate_stream_provider_model(const translate_stream_t *ts);

typedef struct translate_error {
    int status;
    char *body; /* NUL-terminated, arena memory */
    size_t body_len;
} translate_error_t;

/*
 * Anthropic error (status and body text, which may be anything) to
 * OpenAI's {error:{message,type,param:null,code}}, keeping the message:
 *   invalid_request_error 400 -> 400 invalid_request_error
 *   authentication_error 401  -> 401 authentication_error, invalid_api_key
 *   billing_error 402         -> 402 billing_error
 *   permission_error 403      -> 403 permission_error
 *   not_found_error 404       -> 404 invalid_request_error, not_found
 *   request_too_large 413     -> 413 invalid_request_error,
 *                                request_too_large
 *   rate_limit_error 429      -> 429 rate_limit_error, rate_limit_exceeded
 *     (a spend-cap 429 -> 429 insufficient_quota, insufficient_quota)
 *   api_error 500             -> 500 server_error
 *   timeout_error 504         -> 504 server_error, timeout
 *   overloaded_error 529      -> 503 server_error, overloaded
 * The type decides; an unknown type or unreadable body goes by status
 * (other 4xx invalid_request_error, 5xx server_error, 529 -> 503,
 * anything else 502 server_error). Never fails.
 */
void translate_error_to_openai(arena_t *arena, int status, const char *text,
                               size_t len, translate_error_t *out);

/*
 * OpenAI error (Tollgate's own or a provider's) to Anthropic's
 * {type:"error",error:{type,message}}. Status is kept; the type follows
 * it: 400 invalid_request_error, 401 authentication_error, 402
 * billing_error, 403 permission_error, 404 not_found_error, 413
 * request_too_large, 429 rate_limit_error, 503 and 529 overloaded_error,
 * 504 timeout_error, other 4xx invalid_request_error, other 5xx
 * api_error. Never fails.
 */
void translate_error_to_anthropic(arena_t *arena, int status, const char *text,
                                  size_t len, translate_error_t *out);

/* Writes Anthropic's error body for status (type as above) with message.
 * Returns arena memory, its length in *len. */
char *translate_anthropic_error(arena_t *arena, int status, const char *message,
                                size_t *len);

/* Writes OpenAI's {error:{message,type,param,code}}; param and code may be
 * NULL (written as null). Returns arena memory, its length in *len. */
char *translate_openai_error(arena_t *arena, const char *message,
                             const char *type, const char *param,
                             const char *code, size_t *len);

#endif
