/*
 * Token usage from every provider's answer (OpenAI Chat and Responses,
 * Anthropic Messages, Gemini native and OpenAI-compatible, embeddings),
 * plain or streamed, normalised into the usage_t billing prices.
 */
#ifndef TOLLGATE_USAGE_H
#define TOLLGATE_USAGE_H

#include "util/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* The largest count a usage may carry, raw or normalised. */
#define USAGE_MAX_TOKENS INT64_C(1000000000000)

/*
 * Rules shared by every reader below:
 * - A count is a JSON integer from 0 to USAGE_MAX_TOKENS. A string, a
 *   fraction, a negative or a larger number fails the whole read with
 *   -EINVAL; a normalised sum (Anthropic's input, Gemini's output) past
 *   the cap fails too.
 * - A detail count that is absent or null is 0. The totals a bill is made
 *   of (named per reader) must be integers: null is not 0.
 * - A subset larger than its parent is kept as sent; billing flags it.
 * - On any failure *usage is left all zero (present false).
 * - A reader returns -ENOENT when the answer carries no usage at all
 *   (absent or null), so the caller can tell "missing" from "invalid".
 * - Nothing returned points into the JSON: callers keep ownership.
 */

/*
 * Reads obj[key] as one count into *out. Absent, null, or obj not an
 * object: *out = 0 and 0 returned. Returns -EINVAL (and *out = 0) when the
 * value is not an integer from 0 to USAGE_MAX_TOKENS.
 */
int usage_read_count(struct json_object *obj, const char *key, int64_t *out);

/*
 * Maps a service tier as OpenAI or Anthropic names it: "flex", "priority",
 * "batch"; "default", "auto", "standard", any other name, absent or null
 * are standard. Returns 0, or -EINVAL when the value is not a string.
 */
int usage_read_tier(struct json_object *obj, const char *key,
                    service_tier_t *tier);

/*
 * OpenAI Chat completion (or one stream chunk): completion.usage read by
 * openai_read_usage (prompt_tokens and completion_tokens required), plus
 * completion.service_tier. Predictions are not added: they sit inside
 * completion_tokens.
 */
int usage_read_chat(struct json_object *completion, usage_t *usage);

/*
 * A chat completion from Gemini's OpenAI-compatible endpoint: as
 * usage_read_chat, then usage_fix_gemini_openai with usage.total_tokens.
 */
int usage_read_gemini_openai(struct json_object *completion, usage_t *usage);

/*
 * Gemini's OpenAI-compatible endpoint has been seen to leave thoughts out
 * of completion_tokens while total_tokens = prompt + completion + thoughts,
 * sometimes also sending them as completion_tokens_details.
 * reasoning_tokens. Rule: when total_tokens > input + output, the gap is
 * thoughts billed at the output rate; it is added to output_tokens, and
 * reasoning_tokens becomes the larger of itself and the gap. A total that
 * is not above input + output (OpenAI's own meaning), negative (not sent)
 * or past USAGE_MAX_TOKENS changes nothing. Returns true when it added.
 */
bool usage_fix_gemini_openai(usage_t *usage, int64_t total_tokens);

/*
 * OpenAI Responses object: response.usage (input_tokens and output_tokens
 * required; *_details optional), response.service_tier, and one web search
 * per output[] item of type "web_search_call".
 */
int usage_read_responses(struct json_object *response, usage_t *usage);

/*
 * Anthropic message object: message.usage. Its three input counters are
 * disjoint, so input_tokens = input + cache_creation + cache_read, cached
 * = cache_read, cache_write = cache_creation, cache_write_1h =
 * cache_creation.ephemeral_1h_input_tokens (absent: every write is 5m).
 * output_tokens is inclusive; reasoning = output_tokens_details.
 * thinking_tokens; web_searches = server_tool_use.web_search_requests;
 * service_tier; geo = inference_geo ("global" is ""; a name of 8 bytes or
 * more fails the read). input_tokens and output_tokens are required.
 */
int usage_read_anthropic(struct json_object *message, usage_t *usage);

/*
 * Gemini GenerateContentResponse (native shape): usageMetadata. input =
 * promptTokenCount + toolUsePromptTokenCount; cached =
 * cachedContentTokenCount; output = candidatesTokenCount +
 * thoughtsTokenCount (thoughts are billed apart from, and on top of,
 * candidates); reasoning = thoughts; audio in and out from the AUDIO
 * entries of promptTokensDetails and candidatesTokensDetails.
 * promptTokenCount is required; the other counts may be absent (Gemini
 * leaves out zeros).
 */
int usage_read_gemini(struct json_object *response, usage_t *usage);

/*
 * Embeddings answer: usage.prompt_tokens (total_tokens when prompt_tokens
 * is absent or null; one of them is required) into input_tokens.
 */
int usage_read_embeddings(struct json_object *response, usage_t *usage);

/*
 * Streams. Each accumulator is a plain struct the caller owns (zeroed by
 * its _init), fed one SSE event at a time: the event's name ("" or NULL
 * when the stream has none) and its joined data lines. A feed function
 * returns 0, or -EINVAL when the event is not JSON or carries usage that
 * breaks the rules above; the state stays usable after a failure.
 */

/*
 * OpenAI Chat chunks (also Gemini's OpenAI-compatible stream, which sends
 * usage on every chunk): the last chunk whose usage is not null wins.
 * Set gemini_compat before feeding to apply usage_fix_gemini_openai.
 * A chunk whose usage breaks the rules clears usage and sets invalid,
 * until a later chunk brings valid usage.
 */
typedef struct usage_chat_stream {
    usage_t usage;
    bool gemini_compat; /* set by the caller */
    bool invalid;       /* the last usage seen was unreadable */
    bool done;          /* "[DONE]" came */
    bool error;         /* a chunk with an "error" member came */
} usage_chat_stream_t;

void usage_chat_stream_init(usage_chat_stream_t *st, bool gemini_compat);
int usage_chat_stream_feed(usage_chat_stream_t *st, const char *data,
                           size_t len);

/* How a Responses stream ended. */
typedef enum usage_responses_end {
    USAGE_RESPONSES_OPEN = 0, /* no terminal event (yet) */
    USAGE_RESPONSES_COMPLETED = 1,
    USAGE_RESPONSES_INCOMPLETE = 2, /* e.g. max_output_tokens: billed */
    USAGE_RESPONSES_FAILED = 3
} usage_responses_end_t;

/*
 * OpenAI Responses stream: usage is read from the terminal event's
 * response object (response.completed, .incomplete or .failed), as
 * usage_read_responses does; a terminal response without usage leaves
 * usage not present. An "error" event sets error and keeps its code.
 */
typedef struct usage_responses_stream {
    usage_t usage;
    usage_responses_end_t end;
    bool error;
    char error_code[64]; /* "" when the error event had none */
    char model[128];     /* the terminal response's model, or "" */
} usage_responses_stream_t;

void usage_responses_stream_init(usage_responses_stream_t *st);
int usage_responses_stream_feed(usage_responses_stream_t *st, const char *name,
                                const char *data, size_t len);

/*
 * Anthropic Messages stream, accumulated as Anthropic's SDK does: usage
 * starts from message_start.message.usage; each message_delta replaces
 * output_tokens, and replaces input_tokens, both cache counters,
 * cache_creation, thinking tokens and server_tool_use when present and
 * not null. Counts are never summed. usage is kept normalised after each
 * event and is present only once message_start brought valid usage. A
 * message_delta that breaks the rules clears usage and sets invalid for
 * the rest of the stream. ping and unknown events are ignored.
 */
typedef struct usage_anthropic_stream {
    usage_t usage;
    int64_t uncached_input; /* Anthropic's own input_tokens */
    bool started;           /* message_start came with usage */
    bool stopped;           /* message_stop came */
    bool invalid;
    bool error;           /* an "error" event came */
    char error_type[64];  /* its error.type, e.g. "overloaded_error" */
    char model[128];      /* message_start's model */
    char stop_reason[32]; /* the last non-null delta.stop_reason */
} usage_anthropic_stream_t;

void usage_anthropic_stream_init(usage_anthropic_stream_t *st);
int usage_anthropic_stream_feed(usage_anthropic_stream_t *st, const char *name,
                                const char *data, size_t len);

/*
 * Gemini native stream (streamGenerateContent?alt=sse): every chunk's
 * usageMetadata is cumulative, so the last one wins, as in the chat
 * stream (invalid likewise). finished is set by a candidate with a
 * finishReason; error by a chunk with an "error" member.
 */
typedef struct usage_gemini_stream {
    usage_t usage;
    bool invalid;
    bool finished;
    bool error;
    char model[128]; /* the last modelVersion, or "" */
} usage_gemini_stream_t;

void usage_gemini_stream_init(usage_gemini_stream_t *st);
int usage_gemini_stream_feed(usage_gemini_stream_t *st, const char *data,
                             size_t len);

/*
 * Estimation, for a call whose usage never came. A deterministic count
 * of BPE tokens in UTF-8 text that leans high on English prose (+8% on
 * the whole of a ShareGPT sample against both o200k and cl100k; a single
 * text may be from 22% under to 38% over; code +17%; other languages
 * may come out under). Runs of letters are one token up to 8 bytes and
 * one more per 4 bytes after (2 and 4 for a word with a letter outside
 * ASCII), digits one per 3, punctuation one per 2, CJK, kana and Hangul
 * one per character, characters outside the BMP (emoji) two, whitespace
 * runs other than a single space one. A byte that is not UTF-8 is one.
 * The caller marks the usage estimated. Never negative.
 */
int64_t usage_estimate_tokens(const char *utf8, size_t len);

/* Called once per piece of visible text; text is not NUL-terminated. */
typedef void (*usage_text_fn)(void *ctx, const char *text, size_t len);

/*
 * Calls fn for each piece of generated text in one parsed stream event:
 * an OpenAI chat chunk (each choice's delta content, refusal, reasoning
 * content and tool-call arguments), an Anthropic content_block_delta
 * (text, thinking, partial_json) or a Responses *.delta event (output
 * text, refusal, reasoning text, function-call arguments), or a Gemini
 * chunk's candidate parts. Returns the number of pieces (0 for any other
 * event or a NULL one).
 */
int usage_event_text(struct json_object *event, usage_text_fn fn, void *ctx);

/*
 * The estimated tokens of the visible text in one event's data (JSON
 * text of the shapes above): 0 for an event with none or that is not
 * JSON. Summing it over a stream gives the estimate for what passed.
 */
int64_t usage_estimate_event(const char *data, size_t len);

#endif
