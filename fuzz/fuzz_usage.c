/*
 * libFuzzer target for the usage readers (src/upstream/usage.c), which
 * read what a provider answered. The input is read three ways: as one
 * JSON answer for every usage_read_*; as that same text handed to each
 * stream accumulator as one event under every event name it knows; and
 * as an SSE byte stream whose events go to all four accumulators.
 *
 * Checks the contract in usage.h: only the documented codes; a failed
 * read leaves usage all zero; a read usage has every count from 0 to
 * USAGE_MAX_TOKENS, a service tier in range and a short geo; Anthropic's
 * summed input holds its cache counters, Gemini's output its thoughts;
 * the estimate is never negative nor above one token per byte.
 */
#include "upstream/sse.h"
#include "upstream/usage.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_MAX (256u * 1024)
#define EVENT_CAP (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The accumulators one stream feeds; every event goes to all of them. */
typedef struct streams {
    usage_chat_stream_t chat;
    usage_chat_stream_t gemini_compat;
    usage_responses_stream_t responses;
    usage_anthropic_stream_t anthropic;
    usage_gemini_stream_t gemini;
} streams_t;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_usage: %s\n", what);
        abort();
    }
}

static bool count_ok(int64_t n)
{
    return n >= 0 && n <= USAGE_MAX_TOKENS;
}

static bool all_zero(const usage_t *u)
{
    static const usage_t zero;

    return memcmp(u, &zero, sizeof(zero)) == 0;
}

/* What any usage_t a reader or accumulator holds must satisfy. */
static void check_bounds(const usage_t *u, const char *who)
{
    char what[96];

    snprintf(what, sizeof(what), "%s: a count outside 0..cap", who);
    check(count_ok(u->input_tokens) && count_ok(u->cached_tokens) &&
              count_ok(u->cache_write_tokens) &&
              count_ok(u->cache_write_1h_tokens) &&
              count_ok(u->audio_in_tokens) && count_ok(u->output_tokens) &&
              count_ok(u->reasoning_tokens) && count_ok(u->audio_out_tokens) &&
              count_ok(u->web_searches),
          what);
    snprintf(what, sizeof(what), "%s: bad tier, geo or estimated flag", who);
    check(u->service_tier >= SERVICE_STANDARD &&
              u->service_tier <= SERVICE_PRIORITY &&
              memchr(u->geo, '\0', sizeof(u->geo)) != NULL && !u->estimated,
          what);
}

/* A plain reader's result, whatever it read. */
static void check_read(int rc, const usage_t *u, const char *who)
{
    char what[96];

    snprintf(what, sizeof(what), "%s: undocumented return code %d", who, rc);
    check(rc == 0 || rc == -EINVAL || rc == -ENOENT, what);
    snprintf(what, sizeof(what), "%s: failure left usage behind", who);
    check(rc == 0 || all_zero(u), what);
    snprintf(what, sizeof(what), "%s: success without present", who);
    check(rc != 0 || u->present, what);
    check_bounds(u, who);
}

static void read_plain(struct json_object *answer)
{
    usage_t u, chat;
    int rc, chat_rc;

    chat_rc = usage_read_chat(answer, &chat);
    check_read(chat_rc, &chat, "usage_read_chat");

    rc = usage_read_gemini_openai(answer, &u);
    check_read(rc, &u, "usage_read_gemini_openai");
    check(rc != 0 || (chat_rc == 0 && u.input_tokens == chat.input_tokens &&
                      u.output_tokens >= chat.output_tokens),
          "gemini_openai disagrees with chat on what both read");

    rc = usage_read_responses(answer, &u);
    check_read(rc, &u, "usage_read_responses");

    rc = usage_read_anthropic(answer, &u);
    check_read(rc, &u, "usage_read_anthropic");
    check(rc != 0 || u.cached_tokens + u.cache_write_tokens <= u.input_tokens,
          "anthropic input does not hold its cache counters");

    rc = usage_read_gemini(answer, &u);
    check_read(rc, &u, "usage_read_gemini");
    check(rc != 0 || u.reasoning_tokens <= u.output_tokens,
          "gemini output does not hold its thoughts");

    rc = usage_read_embeddings(answer, &u);
    check_read(rc, &u, "usage_read_embeddings");
    check(rc != 0 || u.output_tokens == 0, "embeddings with output tokens");
}

static void read_members(struct json_object *answer)
{
    static const char *const keys[] = {"usage", "prompt_tokens", "service_tier",
                                       "input_tokens", ""};
    service_tier_t tier;
    int64_t n;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int rc = usage_read_count(answer, keys[i], &n);

        check((rc == 0 && count_ok(n)) || (rc == -EINVAL && n == 0),
              "usage_read_count result");
        rc = usage_read_tier(answer, keys[i], &tier);
        check((rc == 0 || rc == -EINVAL) && tier >= SERVICE_STANDARD &&
                  tier <= SERVICE_PRIORITY,
              "usage_read_tier result");
    }
}

static void count_text(void *ctx, const char *text, size_t len)
{
    int64_t n = usage_estimate_tokens(text, len);

    check(n >= 0 && (size_t)n <= len, "estimate of a piece out of range");
    *(int64_t *)ctx += n;
}

static void estimate(const char *text, size_t len, struct json_object *answer)
{
    int64_t n = usage_estimate_tokens(text, len), pieces = 0;
    int found;

    check(n >= 0 && (size_t)n <= len, "estimate outside 0..bytes");
    n = usage_estimate_event(text, len);
    check(n >= 0, "negative event estimate");
    found = usage_event_text(answer, count_text, &pieces);
    check(found >= 0 && (found > 0 || pieces == 0), "event text count");
    check(answer == NULL || !json_object_is_type(answer, json_type_object) ||
              pieces == n,
          "usage_estimate_event differs from its pieces");
}

static void check_streams(const streams_t *s)
{
    check_bounds(&s->chat.usage, "chat stream");
    check_bounds(&s->gemini_compat.usage, "gemini-compat stream");
    check_bounds(&s->responses.usage, "responses stream");
    check_bounds(&s->anthropic.usage, "anthropic stream");
    check_bounds(&s->gemini.usage, "gemini stream");
    check(!s->chat.invalid || all_zero(&s->chat.usage),
          "chat stream invalid but keeps usage");
    check(!s->gemini.invalid || all_zero(&s->gemini.usage),
          "gemini stream invalid but keeps usage");
    check(!s->anthropic.invalid || all_zero(&s->anthropic.usage),
          "anthropic stream invalid but keeps usage");
    check(!s->anthropic.usage.present || s->anthropic.started,
          "anthropic usage present without message_start");
    check(!s->anthropic.usage.present ||
              s->anthropic.usage.cached_tokens +
                      s->anthropic.usage.cache_write_tokens <=
                  s->anthropic.usage.input_tokens,
          "anthropic stream input does not hold its cache counters");
    check(s->responses.end >= USAGE_RESPONSES_OPEN &&
              s->responses.end <= USAGE_RESPONSES_FAILED,
          "responses end out of range");
    check(memchr(s->responses.error_code, '\0', 64) &&
              memchr(s->responses.model, '\0', 128) &&
              memchr(s->anthropic.error_type, '\0', 64) &&
              memchr(s->anthropic.model, '\0', 128) &&
              memchr(s->anthropic.stop_reason, '\0', 32) &&
              memchr(s->gemini.model, '\0', 128),
          "a stream string is not terminated");
}

static void streams_init(streams_t *s)
{
    usage_chat_stream_init(&s->chat, false);
    usage_chat_stream_init(&s->gemini_compat, true);
    usage_responses_stream_init(&s->responses);
    usage_anthropic_stream_init(&s->anthropic);
    usage_gemini_stream_init(&s->gemini);
}

static void stream_feed(streams_t *s, const char *name, const char *data,
                        size_t len)
{
    int rc[5];

    rc[0] = usage_chat_stream_feed(&s->chat, data, len);
    rc[1] = usage_chat_stream_feed(&s->gemini_compat, data, len);
    rc[2] = usage_responses_stream_feed(&s->responses, name, data, len);
    rc[3] = usage_anthropic_stream_feed(&s->anthropic, name, data, len);
    rc[4] = usage_gemini_stream_feed(&s->gemini, data, len);
    for (int i = 0; i < 5; i++)
        check(rc[i] == 0 || rc[i] == -EINVAL, "stream feed code");
    check_streams(s);
}

/* The whole input as one event, under each name a provider uses. */
static void feed_as_event(const char *text, size_t len)
{
    static const char *const names[] = {NULL,
                                        "",
                                        "message_start",
                                        "message_delta",
                                        "message_stop",
                                        "response.completed",
                                        "response.failed",
                                        "error",
                                        "ping"};
    streams_t s;

    streams_init(&s);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        stream_feed(&s, names[i], text, len);
}

static int on_event(void *ctx, const sse_event_t *ev)
{
    stream_feed(ctx, ev->name, ev->data, ev->data_len);
    check(usage_estimate_event(ev->data, ev->data_len) >= 0,
          "negative event estimate");
    return 0;
}

static void feed_as_stream(const char *text, size_t len)
{
    sse_parser_t parser;
    streams_t s;
    int rc;

    streams_init(&s);
    sse_init(&parser, EVENT_CAP);
    rc = sse_feed(&parser, text, len, on_event, &s);
    check(rc == 0, "sse_feed failed under a cap larger than the input");
    sse_free(&parser);
}

static struct json_object *parse_answer(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;

    check(tok != NULL, "out of memory");
    obj = json_tokener_parse_ex(tok, text, (int)len);
    json_tokener_free(tok);
    return obj;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct json_object *answer;

    if (size > INPUT_MAX)
        return 0;
    answer = parse_answer(text, size);
    read_plain(answer);
    read_members(answer);
    estimate(text, size, answer);
    json_object_put(answer);

    feed_as_event(text, size);
    feed_as_stream(text, size);
    return 0;
}
