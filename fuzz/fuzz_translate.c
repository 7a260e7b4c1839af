/*
 * libFuzzer target for the OpenAI <-> Anthropic translator
 * (src/proxy/translate.c). The input is read as a caller's chat request
 * (when it parses as strict JSON), as a provider's Anthropic answer, as
 * an Anthropic SSE stream (and as one event under each event name), and
 * as an error body under a range of statuses.
 *
 * Checks translate.h: a request that translates is valid JSON with the
 * upstream model, a positive max_tokens, alternating turns that start
 * with the user and no blank text; the caller's tree is left as it was.
 * An answer that translates is a chat.completion whose usage matches the
 * usage_t returned, and when usage_read_anthropic() accepts the same
 * answer the two agree. A stream writes only "data: <JSON>" lines, at
 * most one [DONE] and nothing after its end; fed through a small buffer
 * that refuses with -ENOSPC and is retried, it writes the same bytes as
 * through a large one. Error bodies always come out as JSON of the
 * target's shape.
 *
 * One known divergence is skipped unless FUZZ_TRANSLATE_STRICT=1: an
 * answer whose usage usage_read_anthropic() refuses (a count that is a
 * string, null or missing) still comes back from the translator with
 * usage present, its unreadable counts as 0, so the call is priced, not
 * estimated (fuzz/repro/translate/usage-unreadable.json).
 */
#include "proxy/translate.h"
#include "upstream/sse.h"
#include "upstream/usage.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_MAX (256u * 1024)
#define BIG_CAP (64u << 20)
#define UPSTREAM "claude-fuzz-1"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool strict;

/* One stream translated twice: into a large buffer, and into a small one
 * drained into `log` whenever it refuses. */
typedef struct pair {
    translate_stream_t big, small;
    buf_t big_out, small_out, log;
    bool done_seen;
} pair_t;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_translate: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *env = getenv("FUZZ_TRANSLATE_STRICT");

    strict = env != NULL && strcmp(env, "1") == 0;
    return 0;
}

/* Exactly one JSON value (spaces around it allowed), or NULL. */
static struct json_object *parse_strict(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;
    size_t end;

    check(tok != NULL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, text, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (obj != NULL && json_tokener_get_error(tok) != json_tokener_success)
        obj = NULL;
    while (obj != NULL && end < len && strchr(" \t\r\n", text[end]) != NULL)
        end++;
    if (obj != NULL && end != len) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    return obj;
}

static struct json_object *get(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (obj != NULL && json_object_is_type(obj, json_type_object))
        json_object_object_get_ex(obj, key, &v);
    return v;
}

static bool is(struct json_object *v, json_type type)
{
    return v != NULL && json_object_is_type(v, type);
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n\f\v")] == '\0';
}

/* A message's content: a non-blank string, or blocks whose text blocks
 * are not blank. */
static void check_content(struct json_object *content)
{
    if (is(content, json_type_string)) {
        check(!blank(json_object_get_string(content)), "blank content");
        return;
    }
    check(is(content, json_type_array) && json_object_array_length(content) > 0,
          "a message without content");
    for (size_t k = 0; k < json_object_array_length(content); k++) {
        struct json_object *b = json_object_array_get_idx(content, k);
        struct json_object *type = get(b, "type"), *text = get(b, "text");

        if (is(type, json_type_string) &&
            strcmp(json_object_get_string(type), "text") == 0)
            check(is(text, json_type_string) &&
                      !blank(json_object_get_string(text)),
                  "a blank text block");
    }
}

static void check_messages(struct json_object *msgs)
{
    const char *want = "user";

    check(is(msgs, json_type_array) && json_object_array_length(msgs) > 0,
          "translated request without messages");
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        struct json_object *m = json_object_array_get_idx(msgs, i);
        struct json_object *role = get(m, "role");

        check(is(role, json_type_string) &&
                  strcmp(json_object_get_string(role), want) == 0,
              "turns do not alternate from the user's");
        check_content(get(m, "content"));
        want = strcmp(want, "user") == 0 ? "assistant" : "user";
    }
}

static void check_request_body(const translate_request_t *out)
{
    struct json_object *req, *v;

    check(out->body != NULL && strlen(out->body) == out->body_len,
          "request body length");
    req = parse_strict(out->body, out->body_len);
    check(is(req, json_type_object), "request body is not a JSON object");
    v = get(req, "model");
    check(is(v, json_type_string) &&
              strcmp(json_object_get_string(v), UPSTREAM) == 0,
          "request does not name the upstream model");
    v = get(req, "max_tokens");
    check(out->max_tokens > 0 && is(v, json_type_int) &&
              json_object_get_int64(v) == out->max_tokens,
          "max_tokens differs from what went upstream");
    v = get(req, "stream");
    check(out->stream ==
              (is(v, json_type_boolean) && json_object_get_boolean(v)),
          "stream flag differs from the body");
    check(out->stream || !out->include_usage, "include_usage without stream");
    check_messages(get(req, "messages"));
    json_object_put(req);
}

static void translate_request(arena_t *arena, const char *text, size_t len)
{
    translate_request_opts_t opts = {UPSTREAM, 1 + (int64_t)(len % 4096)};
    struct json_object *chat = parse_strict(text, len);
    translate_request_t out;
    char *before;
    int rc;

    if (chat == NULL)
        return;
    before = strdup(json_object_to_json_string_ext(chat, 0));
    check(before != NULL, "out of memory");
    rc = translate_request_to_anthropic(arena, chat, &opts, &out);
    check(rc == 0 || rc == -EINVAL, "request: undocumented code");
    if (rc == 0)
        check_request_body(&out);
    else
        check(out.message != NULL && out.message[0] != '\0',
              "request refused without a message");
    check(strcmp(before, json_object_to_json_string_ext(chat, 0)) == 0,
          "the caller's request was modified");
    free(before);
    json_object_put(chat);
}

static bool same_usage(const usage_t *a, const usage_t *b)
{
    return a->present == b->present && a->input_tokens == b->input_tokens &&
           a->cached_tokens == b->cached_tokens &&
           a->cache_write_tokens == b->cache_write_tokens &&
           a->cache_write_1h_tokens == b->cache_write_1h_tokens &&
           a->output_tokens == b->output_tokens &&
           a->reasoning_tokens == b->reasoning_tokens &&
           a->web_searches == b->web_searches &&
           a->service_tier == b->service_tier && strcmp(a->geo, b->geo) == 0;
}

static int64_t int_at(struct json_object *obj, const char *key)
{
    struct json_object *v = get(obj, key);

    return is(v, json_type_int) ? json_object_get_int64(v) : -1;
}

/* The body's usage object says what out->usage says. */
static void check_answer_usage(struct json_object *completion, const usage_t *u)
{
    struct json_object *usage = get(completion, "usage");

    check((usage != NULL) == u->present, "usage object vs usage.present");
    if (usage == NULL)
        return;
    check(int_at(usage, "prompt_tokens") == u->input_tokens &&
              int_at(usage, "completion_tokens") == u->output_tokens &&
              int_at(get(usage, "prompt_tokens_details"), "cached_tokens") ==
                  u->cached_tokens,
          "answer usage differs from the usage_t returned");
    check(u->cached_tokens + u->cache_write_tokens <= u->input_tokens,
          "answer input does not hold its cache counters");
}

static void translate_answer(arena_t *arena, const char *text, size_t len)
{
    translate_reply_opts_t opts = {"gpt-fuzz", 1767225600, false};
    struct json_object *completion, *msg;
    translate_answer_t out;
    usage_t reader;
    int rc = translate_answer_to_openai(arena, text, len, &opts, &out);

    check(rc == 0 || rc == -EINVAL, "answer: undocumented code");
    check(out.provider_model != NULL, "answer: provider_model is NULL");
    if (rc < 0) {
        check(out.body == NULL, "answer: body set on failure");
        return;
    }
    completion = parse_strict(out.body, out.body_len);
    check(is(completion, json_type_object), "answer is not a JSON object");
    msg = get(json_object_array_get_idx(get(completion, "choices"), 0),
              "message");
    check(is(msg, json_type_object), "answer without choices[0].message");
    check_answer_usage(completion, &out.usage);
    json_object_put(completion);

    msg = parse_strict(text, len);
    rc = usage_read_anthropic(msg, &reader);
    if (rc == 0)
        check(same_usage(&reader, &out.usage),
              "translated usage differs from usage_read_anthropic");
    if (strict && rc == -EINVAL)
        check(!out.usage.present,
              "translated usage present where usage_read_anthropic refused");
    json_object_put(msg);
}

/* Each "data: ...\n\n" line in [from, len) of out is JSON or [DONE]. */
static void check_lines(pair_t *p, size_t from)
{
    const char *s, *end;

    if (from >= p->big_out.len)
        return;
    s = p->big_out.data + from;
    end = p->big_out.data + p->big_out.len;

    while (s < end) {
        const char *nl = memmem(s, (size_t)(end - s), "\n\n", 2);
        struct json_object *obj;

        check(nl != NULL && strncmp(s, "data: ", 6) == 0,
              "stream output is not data lines");
        check(!p->done_seen, "stream output after [DONE]");
        s += 6;
        if ((size_t)(nl - s) == 6 && memcmp(s, "[DONE]", 6) == 0) {
            p->done_seen = true;
        } else {
            obj = parse_strict(s, (size_t)(nl - s));
            check(is(obj, json_type_object), "stream line is not JSON");
            json_object_put(obj);
        }
        s = nl + 2;
    }
}

/* Feeds the small translator, draining and retrying on -ENOSPC; an event
 * larger than the buffer makes the buffer grow. */
static int feed_small(pair_t *p, const char *name, const char *data, size_t len)
{
    for (;;) {
        int rc =
            translate_stream_feed(&p->small, name, data, len, &p->small_out);

        if (rc != -ENOSPC)
            return rc;
        check(p->small_out.len <= p->small_out.cap, "buffer past its cap");
        if (p->small_out.len == 0) {
            p->small_out.cap *= 2;
            continue;
        }
        check(buf_append(&p->log, p->small_out.data, p->small_out.len) == 0,
              "log full");
        buf_consume(&p->small_out, p->small_out.len);
    }
}

static void pair_feed(pair_t *p, const char *name, const char *data, size_t len)
{
    size_t from = p->big_out.len;
    bool ended = p->big.ended;
    int rc = translate_stream_feed(&p->big, name, data, len, &p->big_out);
    int small_rc = feed_small(p, name, data, len);

    check(rc == 0 || rc == -EPROTO, "stream: undocumented code");
    check(rc == small_rc, "small buffer changed the return code");
    check(!ended || p->big_out.len == from, "output after the stream ended");
    check(rc == 0 || p->big.ended, "-EPROTO without ending the stream");
    check(!translate_stream_ended_ok(&p->big) || p->big.ended,
          "ended_ok without ended");
    check_lines(p, from);
}

static void pair_init(pair_t *p, arena_t *arena, size_t seed)
{
    translate_reply_opts_t opts = {"gpt-fuzz", 1767225600, seed & 1};

    memset(p, 0, sizeof(*p));
    translate_stream_init(&p->big, arena, &opts);
    translate_stream_init(&p->small, arena, &opts);
    buf_init(&p->big_out, BIG_CAP);
    buf_init(&p->small_out, 16 + seed % 200);
    buf_init(&p->log, BIG_CAP);
}

static void pair_end(pair_t *p)
{
    usage_t a, b;

    check(p->small_out.len == 0 ||
              buf_append(&p->log, p->small_out.data, p->small_out.len) == 0,
          "log full");
    check(p->log.len == p->big_out.len &&
              (p->log.len == 0 ||
               memcmp(p->log.data, p->big_out.data, p->log.len) == 0),
          "a refused and retried event changed the stream");
    translate_stream_usage(&p->big, &a);
    translate_stream_usage(&p->small, &b);
    check(same_usage(&a, &b), "retries changed the stream's usage");
    check(!a.present ||
              a.cached_tokens + a.cache_write_tokens <= a.input_tokens,
          "stream input does not hold its cache counters");
    check(translate_stream_provider_model(&p->big) != NULL,
          "provider model is NULL");
    buf_free(&p->big_out);
    buf_free(&p->small_out);
    buf_free(&p->log);
}

static int on_event(void *ctx, const sse_event_t *ev)
{
    pair_feed(ctx, ev->name, ev->data, ev->data_len);
    return 0;
}

static void translate_sse(arena_t *arena, const char *text, size_t len)
{
    sse_parser_t parser;
    pair_t p;

    pair_init(&p, arena, len);
    sse_init(&parser, 1u << 20);
    check(sse_feed(&parser, text, len, on_event, &p) == 0, "sse_feed failed");
    sse_free(&parser);
    pair_end(&p);
}

/* The whole input as one event: in the order a stream runs, then alone
 * as an unnamed event and as an error. */
static void translate_events(arena_t *arena, const char *text, size_t len)
{
    static const char *const order[] = {
        "message_start",      "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta",       "ping",
        "message_stop"};
    pair_t p;

    pair_init(&p, arena, len);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        pair_feed(&p, order[i], text, len);
    pair_end(&p);

    pair_init(&p, arena, len + 1);
    pair_feed(&p, NULL, text, len);
    pair_end(&p);
    pair_init(&p, arena, len + 2);
    pair_feed(&p, "error", text, len);
    pair_end(&p);
}

static void check_error_body(const translate_error_t *e, bool anthropic)
{
    struct json_object *body = parse_strict(e->body, e->body_len);
    struct json_object *err = get(body, "error");

    check(e->body_len == strlen(e->body), "error body length");
    check(is(get(err, "message"), json_type_string) &&
              is(get(err, "type"), json_type_string),
          "error body without message and type");
    check(!anthropic || is(get(body, "type"), json_type_string),
          "Anthropic error without a top-level type");
    json_object_put(body);
}

/* Four statuses per input, picked by its length: every status is tried
 * over a run, and each input is not parsed sixteen times over. */
static void translate_errors(arena_t *arena, const char *text, size_t len)
{
    static const int statuses[] = {0,   200, 400, 401, 402, 403, 404, 413,
                                   418, 429, 500, 503, 504, 529, 600, -1};
    translate_error_t e;

    for (size_t i = 0; i < 4; i++) {
        int status = statuses[(len + 5 * i) % 16];

        translate_error_to_openai(arena, status, text, len, &e);
        check(e.status >= 400 && e.status <= 599,
              "OpenAI error status outside 4xx and 5xx");
        check_error_body(&e, false);
        translate_error_to_anthropic(arena, status, text, len, &e);
        check(e.status == status, "Anthropic error changed the status");
        check_error_body(&e, true);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    arena_t *arena;

    if (size > INPUT_MAX)
        return 0;
    arena = arena_new(4096);
    translate_request(arena, text, size);
    translate_answer(arena, text, size);
    translate_events(arena, text, size);
    translate_sse(arena, text, size);
    translate_errors(arena, text, size);
    arena_free(arena);
    return 0;
}
