/*
 * Anthropic Messages on the wire. Usage counters are disjoint:
 * input_tokens is only what was neither read from nor written to the
 * cache. A stream opens with the input side in message_start (output a
 * placeholder 1) and reports output in message_delta events whose
 * counts are cumulative, so a reader that sums them over-counts.
 */
#include "sim_wire.h"

#include <stdio.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "sim_server.h"

enum event_kind {
    EV_MESSAGE_START,
    EV_BLOCK_START,
    EV_PING,
    EV_BLOCK_DELTA,
    EV_INTERIM_DELTA, /* message_delta with no stop_reason yet */
    EV_BLOCK_STOP,
    EV_FINAL_DELTA,
    EV_MESSAGE_STOP
};

static void put(struct json_object *obj, const char *key,
                struct json_object *value)
{
    json_object_object_add(obj, key, value);
}

static void put_int(struct json_object *obj, const char *key, int64_t value)
{
    put(obj, key, json_object_new_int64(value));
}

static void put_str(struct json_object *obj, const char *key, const char *value)
{
    put(obj, key, json_object_new_string(value));
}

static int64_t uncached(const struct answer *a)
{
    return a->prompt_tokens - a->cached_tokens - answer_cache_writes(a);
}

static int64_t output_total(const struct answer *a)
{
    return a->answer_tokens + a->reasoning_tokens;
}

/* input_tokens and both cache counters, as message_start has them. */
static void put_input_counts(struct json_object *usage, const struct answer *a)
{
    put_int(usage, "input_tokens", uncached(a));
    put_int(usage, "cache_creation_input_tokens", answer_cache_writes(a));
    put_int(usage, "cache_read_input_tokens", a->cached_tokens);
}

static void put_cache_split(struct json_object *usage, const struct answer *a)
{
    struct json_object *split;

    if (a->no_cache_split)
        return;
    split = json_object_new_object();
    put_int(split, "ephemeral_5m_input_tokens", a->cache_write_tokens);
    put_int(split, "ephemeral_1h_input_tokens", a->cache_write_1h_tokens);
    put(usage, "cache_creation", split);
}

/* Thinking and server-tool counts go with the final output count. */
static void put_output_extras(struct json_object *usage, const struct answer *a)
{
    struct json_object *obj;

    if (a->reasoning_tokens > 0) {
        obj = json_object_new_object();
        put_int(obj, "thinking_tokens", a->reasoning_tokens);
        put(usage, "output_tokens_details", obj);
    }
    if (a->web_searches > 0) {
        obj = json_object_new_object();
        put_int(obj, "web_search_requests", a->web_searches);
        put_int(obj, "web_fetch_requests", 0);
        put(usage, "server_tool_use", obj);
    }
}

static void put_tier_geo(struct json_object *usage, const struct answer *a)
{
    put_str(usage, "service_tier",
            a->service_tier[0] ? a->service_tier : "standard");
    if (a->geo[0] != '\0')
        put_str(usage, "inference_geo", a->geo);
}

/* The usage of a finished message; output is `output` tokens. */
static struct json_object *usage_with(const struct answer *a, int64_t output,
                                      bool final)
{
    struct json_object *usage = json_object_new_object();

    put_input_counts(usage, a);
    put_cache_split(usage, a);
    put_int(usage, "output_tokens", output);
    if (final)
        put_output_extras(usage, a);
    put_tier_geo(usage, a);
    return usage;
}

static struct json_object *usage_json(struct call *call)
{
    return usage_with(&call->answer, output_total(&call->answer), true);
}

static const char *stop_reason(const struct answer *a)
{
    if (a->tool_name != NULL)
        return "tool_use";
    return a->truncated ? "max_tokens" : "end_turn";
}

static struct json_object *block_json(const struct answer *a, bool whole)
{
    struct json_object *block = json_object_new_object();

    if (a->tool_name == NULL) {
        put_str(block, "type", "text");
        put(block, "text",
            json_object_new_string_len(whole ? a->text : "",
                                       whole ? (int)a->text_len : 0));
        return block;
    }
    put_str(block, "type", "tool_use");
    put_str(block, "id", a->tool_id);
    put_str(block, "name", a->tool_name);
    put(block, "input",
        whole ? json_tokener_parse(a->text) : json_object_new_object());
    return block;
}

/* The message object; a stream's message_start has no content yet. */
static struct json_object *message_json(const struct answer *a, bool whole)
{
    struct json_object *msg = json_object_new_object();
    struct json_object *content = json_object_new_array();

    if (whole)
        json_object_array_add(content, block_json(a, true));
    put_str(msg, "id", a->id);
    put_str(msg, "type", "message");
    put_str(msg, "role", "assistant");
    put_str(msg, "model", a->model);
    put(msg, "content", content);
    put(msg, "stop_reason",
        whole ? json_object_new_string(stop_reason(a)) : NULL);
    put(msg, "stop_sequence", NULL);
    put(msg, "usage",
        whole ? usage_with(a, output_total(a), true) : usage_with(a, 1, false));
    return msg;
}

static struct json_object *plain_json(struct call *call)
{
    return message_json(&call->answer, true);
}

/*
 * V14's shape: an interim message_delta halfway through the text (or,
 * for a short answer, just before the final one), then the final.
 */
static void messages_plan(struct call *call)
{
    size_t n = call->answer.nchunks;
    int64_t tail = (int64_t)n;

    call_plan_add(call, EV_MESSAGE_START, 0, CALL_GROUP_HEAD);
    call_plan_add(call, EV_BLOCK_START, 0, CALL_GROUP_HEAD);
    call_plan_add(call, EV_PING, 0, CALL_GROUP_HEAD);
    for (size_t i = 0; i < n; i++) {
        call_plan_add(call, EV_BLOCK_DELTA, i, (int64_t)i);
        if (n >= 2 && i == n / 2 - 1)
            call_plan_add(call, EV_INTERIM_DELTA, i + 1, (int64_t)i);
    }
    call_plan_add(call, EV_BLOCK_STOP, 0, tail);
    if (n < 2)
        call_plan_add(call, EV_INTERIM_DELTA, n, tail);
    call_plan_add(call, EV_FINAL_DELTA, 0, tail);
    call_plan_add(call, EV_MESSAGE_STOP, 0, tail);
}

static struct json_object *typed(const char *type)
{
    struct json_object *obj = json_object_new_object();

    put_str(obj, "type", type);
    return obj;
}

static struct json_object *block_delta(const struct answer *a, size_t i)
{
    struct json_object *obj = typed("content_block_delta");
    struct json_object *delta = json_object_new_object();
    size_t start = i == 0 ? 0 : a->chunk_ends[i - 1];
    struct json_object *piece = json_object_new_string_len(
        a->text + start, (int)(a->chunk_ends[i] - start));

    put_int(obj, "index", 0);
    if (a->tool_name != NULL) {
        put_str(delta, "type", "input_json_delta");
        put(delta, "partial_json", piece);
    } else {
        put_str(delta, "type", "text_delta");
        put(delta, "text", piece);
    }
    put(obj, "delta", delta);
    return obj;
}

/* Usage of the last message_delta: output only, or (sim:delta_usage=
 * full, BUG-08) the input and cache counters repeated too. */
static struct json_object *final_usage(const struct answer *a)
{
    struct json_object *usage = json_object_new_object();

    if (a->delta_full)
        put_input_counts(usage, a);
    put_int(usage, "output_tokens", output_total(a));
    put_output_extras(usage, a);
    return usage;
}

static struct json_object *message_delta(const struct answer *a, bool final,
                                         size_t chunks)
{
    struct json_object *obj = typed("message_delta");
    struct json_object *delta = json_object_new_object();
    struct json_object *usage;

    put(delta, "stop_reason",
        final ? json_object_new_string(stop_reason(a)) : NULL);
    put(delta, "stop_sequence", NULL);
    put(obj, "delta", delta);
    if (final) {
        usage = final_usage(a);
    } else {
        usage = json_object_new_object();
        put_int(usage, "output_tokens",
                a->reasoning_tokens + answer_pieces_upto(a, chunks));
    }
    put(obj, "usage", usage);
    return obj;
}

static struct json_object *event_json(const struct answer *a,
                                      const struct call_step *step)
{
    struct json_object *obj;

    switch (step->kind) {
    case EV_MESSAGE_START:
        obj = typed("message_start");
        put(obj, "message", message_json(a, false));
        return obj;
    case EV_BLOCK_START:
        obj = typed("content_block_start");
        put_int(obj, "index", 0);
        put(obj, "content_block", block_json(a, false));
        return obj;
    case EV_PING:
        return typed("ping");
    case EV_BLOCK_DELTA:
        return block_delta(a, step->index);
    case EV_INTERIM_DELTA:
        return message_delta(a, false, step->index);
    case EV_BLOCK_STOP:
        obj = typed("content_block_stop");
        put_int(obj, "index", 0);
        return obj;
    case EV_FINAL_DELTA:
        return message_delta(a, true, a->nchunks);
    default:
        return typed("message_stop");
    }
}

static void messages_render(struct call *call, size_t i, struct evbuffer *out)
{
    struct json_object *obj = event_json(&call->answer, &call->steps[i]);
    struct json_object *type;

    /* call_sse writes the name before it drops obj, and type with it. */
    json_object_object_get_ex(obj, "type", &type);
    call_sse(out, json_object_get_string(type), obj);
}

/* Overloaded, after a 200: an error event and no message_stop. */
static bool messages_stream_error(struct call *call, struct evbuffer *out)
{
    call_sse(out, "error",
             server_anthropic_error_json("overloaded_error", "Overloaded",
                                         call->answer.request_id));
    return false;
}

static void add_header(struct call *call, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(call->req), name,
                      value);
}

static void messages_headers(struct call *call)
{
    add_header(call, "request-id", call->answer.request_id);
}

static void rate_limit_headers(struct call *call)
{
    static const char *const kinds[] = {"requests", "tokens", "input-tokens",
                                        "output-tokens"};
    char name[64];

    add_header(call, "retry-after", "7");
    for (size_t i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "anthropic-ratelimit-%s-limit", kinds[i]);
        add_header(call, name, "1000");
        snprintf(name, sizeof(name), "anthropic-ratelimit-%s-remaining",
                 kinds[i]);
        add_header(call, name, "0");
        snprintf(name, sizeof(name), "anthropic-ratelimit-%s-reset", kinds[i]);
        add_header(call, name, "2026-01-01T00:00:07Z");
    }
}

/* A spend-cap 429 looks like a rate limit but has no retry-after and
 * says why in error.details.error_code: retrying never helps. */
static struct json_object *spend_cap_body(const struct answer *a)
{
    struct json_object *body = server_anthropic_error_json(
        "rate_limit_error",
        "You have reached your specified workspace API usage limits. You "
        "will regain access on 2026-02-01 at 00:00 UTC. (simulated)",
        a->request_id);
    struct json_object *error, *details = json_object_new_object();

    json_object_object_get_ex(body, "error", &error);
    put_str(details, "error_code", "enforced_spend_limit_reached");
    put(error, "details", details);
    return body;
}

static void messages_refuse(struct call *call)
{
    const struct answer *a = &call->answer;
    struct json_object *body;
    int status;

    messages_headers(call);
    if (call->fault == FAULT_429) {
        status = 429;
        rate_limit_headers(call);
        body = server_anthropic_error_json(
            "rate_limit_error",
            "This request would exceed the rate limit for your "
            "organization. (simulated)",
            a->request_id);
    } else if (call->fault == FAULT_SPENDCAP) {
        status = 429;
        body = spend_cap_body(a);
    } else if (call->fault == FAULT_503 || call->fault == FAULT_529) {
        status = 529;
        body = server_anthropic_error_json("overloaded_error", "Overloaded",
                                           a->request_id);
    } else if (call->fault == FAULT_413) {
        status = 413;
        body = server_anthropic_error_json(
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            a->request_id);
    } else {
        status = 500;
        body = server_anthropic_error_json("api_error", "Internal server error",
                                           a->request_id);
    }
    server_send_json(call->req, status, body);
}

static bool messages_stream_has_usage(struct call *call)
{
    return true;
}

const struct call_ops wire_messages_ops = {
    .surface = SURFACE_MESSAGES,
    .add_headers = messages_headers,
    .plain_json = plain_json,
    .plan = messages_plan,
    .render = messages_render,
    .stream_error = messages_stream_error,
    .refuse = messages_refuse,
    .usage_json = usage_json,
    .stream_has_usage = messages_stream_has_usage,
};
