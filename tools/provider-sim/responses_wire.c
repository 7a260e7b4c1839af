/*
 * OpenAI Responses on the wire: the response object, and its stream of
 * named events, each with a sequence_number, ending in a terminal event
 * (response.completed, response.incomplete, response.failed) that
 * carries the whole response with its usage. Reasoning and web search
 * calls show up as output items before the message.
 */
#include "sim_wire.h"

#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "sim_build.h"
#include "sim_server.h"

enum event_kind {
    EV_CREATED,
    EV_IN_PROGRESS,
    EV_ITEM_ADDED, /* index: output index */
    EV_ITEM_DONE,
    EV_SEARCH_IN_PROGRESS,
    EV_SEARCH_SEARCHING,
    EV_SEARCH_COMPLETED,
    EV_PART_ADDED,
    EV_TEXT_DELTA, /* index: content chunk */
    EV_TEXT_DONE,
    EV_PART_DONE,
    EV_TERMINAL
};

/* How far the response has come when it is written out. */
enum phase {
    PHASE_STARTED, /* created, in_progress: no output, no usage */
    PHASE_ENDED,   /* completed or incomplete */
    PHASE_FAILED   /* failed after part of the text */
};

static const char *const event_names[] = {
    [EV_CREATED] = "response.created",
    [EV_IN_PROGRESS] = "response.in_progress",
    [EV_ITEM_ADDED] = "response.output_item.added",
    [EV_ITEM_DONE] = "response.output_item.done",
    [EV_SEARCH_IN_PROGRESS] = "response.web_search_call.in_progress",
    [EV_SEARCH_SEARCHING] = "response.web_search_call.searching",
    [EV_SEARCH_COMPLETED] = "response.web_search_call.completed",
    [EV_PART_ADDED] = "response.content_part.added",
    [EV_TEXT_DELTA] = "response.output_text.delta",
    [EV_TEXT_DONE] = "response.output_text.done",
    [EV_PART_DONE] = "response.content_part.done",
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

static size_t reasoning_items(const struct answer *a)
{
    return a->reasoning_tokens > 0 ? 1 : 0;
}

static size_t message_index(const struct answer *a)
{
    return reasoning_items(a) + (size_t)a->web_searches;
}

static char *item_id(const struct answer *a, const char *prefix, size_t index)
{
    return build_id(prefix, (a->serial << 12) + index, true);
}

static void put_item_id(struct json_object *obj, const char *key,
                        const struct answer *a, size_t index)
{
    const char *prefix = index == message_index(a)    ? "msg_"
                         : index < reasoning_items(a) ? "rs_"
                                                      : "ws_";
    char *id = item_id(a, prefix, index);

    put_str(obj, key, id);
    free(id);
}

/* Text bytes the message holds: all of it, or what a failed stream
 * sent before it failed. */
static size_t text_end(const struct call *call, enum phase phase)
{
    size_t chunks;

    if (phase != PHASE_FAILED)
        return call->answer.text_len;
    chunks = call_chunks_before_fault(call);
    return chunks == 0 ? 0 : call->answer.chunk_ends[chunks - 1];
}

static struct json_object *text_part(const char *text, size_t len)
{
    struct json_object *part = json_object_new_object();

    put_str(part, "type", "output_text");
    put(part, "text", json_object_new_string_len(text, (int)len));
    put(part, "annotations", json_object_new_array());
    return part;
}

static struct json_object *message_item(const struct call *call,
                                        enum phase phase, bool whole)
{
    const struct answer *a = &call->answer;
    struct json_object *item = json_object_new_object();
    struct json_object *content = json_object_new_array();
    const char *status = "completed";

    if (!whole)
        status = "in_progress";
    else if (a->truncated || phase != PHASE_ENDED)
        status = "incomplete";

    put_item_id(item, "id", a, message_index(a));
    put_str(item, "type", "message");
    put_str(item, "status", status);
    put_str(item, "role", "assistant");
    if (whole)
        json_object_array_add(content,
                              text_part(a->text, text_end(call, phase)));
    put(item, "content", content);
    return item;
}

static struct json_object *search_item(const struct answer *a, size_t index,
                                       bool whole)
{
    struct json_object *item = json_object_new_object();
    struct json_object *action;

    put_item_id(item, "id", a, index);
    put_str(item, "type", "web_search_call");
    put_str(item, "status", whole ? "completed" : "in_progress");
    if (whole) {
        action = json_object_new_object();
        put_str(action, "type", "search");
        put_str(action, "query", "simulated search");
        put(item, "action", action);
    }
    return item;
}

static struct json_object *item_json(const struct call *call, size_t index,
                                     enum phase phase, bool whole)
{
    const struct answer *a = &call->answer;
    struct json_object *item;

    if (index == message_index(a))
        return message_item(call, phase, whole);
    if (index >= reasoning_items(a))
        return search_item(a, index, whole);
    item = json_object_new_object();
    put_item_id(item, "id", a, index);
    put_str(item, "type", "reasoning");
    put(item, "summary", json_object_new_array());
    return item;
}

/* Cached and written tokens inside input_tokens, reasoning inside
 * output_tokens, as in Chat Completions. */
static struct json_object *usage_with(const struct answer *a, int64_t output)
{
    struct json_object *usage = json_object_new_object();
    struct json_object *in = json_object_new_object();
    struct json_object *out = json_object_new_object();

    put_int(usage, "input_tokens", a->prompt_tokens);
    put_int(in, "cached_tokens", a->cached_tokens);
    put_int(in, "cache_write_tokens", answer_cache_writes(a));
    put(usage, "input_tokens_details", in);
    put_int(usage, "output_tokens", output);
    put_int(out, "reasoning_tokens", a->reasoning_tokens);
    put(usage, "output_tokens_details", out);
    put_int(usage, "total_tokens", a->prompt_tokens + output);
    return usage;
}

static int64_t output_for(const struct call *call, enum phase phase)
{
    const struct answer *a = &call->answer;

    if (phase == PHASE_FAILED)
        return a->reasoning_tokens +
               answer_pieces_upto(a, call_chunks_before_fault(call));
    return a->answer_tokens + a->reasoning_tokens;
}

static const char *status_for(const struct answer *a, enum phase phase)
{
    if (phase == PHASE_STARTED)
        return "in_progress";
    if (phase == PHASE_FAILED)
        return "failed";
    return a->truncated ? "incomplete" : "completed";
}

static struct json_object *error_for(enum phase phase)
{
    struct json_object *error;

    if (phase != PHASE_FAILED)
        return NULL;
    error = json_object_new_object();
    put_str(error, "code", "server_error");
    put_str(error, "message",
            "The model failed to generate a response. "
            "(simulated)");
    return error;
}

static struct json_object *incomplete_for(const struct answer *a,
                                          enum phase phase)
{
    struct json_object *details;

    if (phase != PHASE_ENDED || !a->truncated)
        return NULL;
    details = json_object_new_object();
    put_str(details, "reason", "max_output_tokens");
    return details;
}

static struct json_object *output_json(const struct call *call,
                                       enum phase phase)
{
    struct json_object *output = json_object_new_array();
    size_t n = message_index(&call->answer) + 1;

    for (size_t i = 0; phase != PHASE_STARTED && i < n; i++)
        json_object_array_add(output, item_json(call, i, phase, true));
    return output;
}

static void put_echo(struct json_object *obj, const struct call *call,
                     const char *key)
{
    struct json_object *value = NULL;

    if (call->payload != NULL)
        json_object_object_get_ex(call->payload, key, &value);
    put(obj, key, json_object_get(value));
}

static struct json_object *response_json(const struct call *call,
                                         enum phase phase)
{
    const struct answer *a = &call->answer;
    struct json_object *obj = json_object_new_object();

    put_str(obj, "id", a->id);
    put_str(obj, "object", "response");
    put_int(obj, "created_at", a->created);
    put_str(obj, "status", status_for(a, phase));
    put(obj, "error", error_for(phase));
    put(obj, "incomplete_details", incomplete_for(a, phase));
    put_echo(obj, call, "instructions");
    put_echo(obj, call, "max_output_tokens");
    put_str(obj, "model", a->model);
    put(obj, "output", output_json(call, phase));
    put(obj, "parallel_tool_calls", json_object_new_boolean(1));
    put(obj, "previous_response_id", NULL);
    put_str(obj, "service_tier",
            a->service_tier[0] ? a->service_tier : "default");
    put(obj, "store", json_object_new_boolean(1));
    put(obj, "usage",
        phase == PHASE_STARTED ? NULL : usage_with(a, output_for(call, phase)));
    return obj;
}

static struct json_object *plain_json(struct call *call)
{
    return response_json(call, PHASE_ENDED);
}

static struct json_object *usage_json(struct call *call)
{
    enum phase phase = call->fault == FAULT_FAILED && call->stream
                           ? PHASE_FAILED
                           : PHASE_ENDED;

    return usage_with(&call->answer, output_for(call, phase));
}

static void plan_search(struct call *call, size_t index)
{
    call_plan_add(call, EV_ITEM_ADDED, index, CALL_GROUP_HEAD);
    call_plan_add(call, EV_SEARCH_IN_PROGRESS, index, CALL_GROUP_HEAD);
    call_plan_add(call, EV_SEARCH_SEARCHING, index, CALL_GROUP_HEAD);
    call_plan_add(call, EV_SEARCH_COMPLETED, index, CALL_GROUP_HEAD);
    call_plan_add(call, EV_ITEM_DONE, index, CALL_GROUP_HEAD);
}

static void responses_plan(struct call *call)
{
    const struct answer *a = &call->answer;
    size_t message = message_index(a);
    int64_t tail = (int64_t)a->nchunks;

    call_plan_add(call, EV_CREATED, 0, CALL_GROUP_HEAD);
    call_plan_add(call, EV_IN_PROGRESS, 0, CALL_GROUP_HEAD);
    if (reasoning_items(a) > 0) {
        call_plan_add(call, EV_ITEM_ADDED, 0, CALL_GROUP_HEAD);
        call_plan_add(call, EV_ITEM_DONE, 0, CALL_GROUP_HEAD);
    }
    for (size_t i = reasoning_items(a); i < message; i++)
        plan_search(call, i);
    call_plan_add(call, EV_ITEM_ADDED, message, CALL_GROUP_HEAD);
    call_plan_add(call, EV_PART_ADDED, message, CALL_GROUP_HEAD);
    for (size_t i = 0; i < a->nchunks; i++)
        call_plan_add(call, EV_TEXT_DELTA, i, (int64_t)i);
    call_plan_add(call, EV_TEXT_DONE, message, tail);
    call_plan_add(call, EV_PART_DONE, message, tail);
    call_plan_add(call, EV_ITEM_DONE, message, tail);
    call_plan_add(call, EV_TERMINAL, 0, tail);
}

static struct json_object *event_head(const char *type, size_t seq)
{
    struct json_object *obj = json_object_new_object();

    put_str(obj, "type", type);
    put_int(obj, "sequence_number", (int64_t)seq);
    return obj;
}

/* item_id, output_index and content_index of the message's text. */
static void put_text_place(struct json_object *obj, const struct answer *a)
{
    put_item_id(obj, "item_id", a, message_index(a));
    put_int(obj, "output_index", (int64_t)message_index(a));
    put_int(obj, "content_index", 0);
}

static struct json_object *delta_json(struct json_object *obj,
                                      const struct answer *a, size_t i)
{
    size_t start = i == 0 ? 0 : a->chunk_ends[i - 1];

    put_text_place(obj, a);
    put(obj, "delta",
        json_object_new_string_len(a->text + start,
                                   (int)(a->chunk_ends[i] - start)));
    put(obj, "logprobs", json_object_new_array());
    return obj;
}

/* The events about one output item or the message's text part. */
static struct json_object *item_event(const struct call *call,
                                      const struct call_step *step,
                                      struct json_object *obj)
{
    const struct answer *a = &call->answer;
    bool done = step->kind == EV_ITEM_DONE || step->kind == EV_PART_DONE ||
                step->kind == EV_TEXT_DONE;

    if (step->kind == EV_ITEM_ADDED || step->kind == EV_ITEM_DONE) {
        put_int(obj, "output_index", (int64_t)step->index);
        put(obj, "item", item_json(call, step->index, PHASE_ENDED, done));
        return obj;
    }
    if (step->kind == EV_TEXT_DELTA)
        return delta_json(obj, a, step->index);
    if (step->kind == EV_TEXT_DONE) {
        put_text_place(obj, a);
        put(obj, "text", json_object_new_string_len(a->text, (int)a->text_len));
        return obj;
    }
    if (step->kind == EV_PART_ADDED || step->kind == EV_PART_DONE) {
        put_text_place(obj, a);
        put(obj, "part", text_part(a->text, done ? a->text_len : 0));
        return obj;
    }
    put_int(obj, "output_index", (int64_t)step->index);
    put_item_id(obj, "item_id", a, step->index);
    return obj;
}

static const char *terminal_name(const struct answer *a)
{
    return a->truncated ? "response.incomplete" : "response.completed";
}

static void responses_render(struct call *call, size_t i, struct evbuffer *out)
{
    const struct call_step *step = &call->steps[i];
    const char *name = step->kind == EV_TERMINAL ? terminal_name(&call->answer)
                                                 : event_names[step->kind];
    struct json_object *obj = event_head(name, i);

    if (step->kind == EV_CREATED || step->kind == EV_IN_PROGRESS)
        put(obj, "response", response_json(call, PHASE_STARTED));
    else if (step->kind == EV_TERMINAL)
        put(obj, "response", response_json(call, PHASE_ENDED));
    else
        obj = item_event(call, step, obj);
    call_sse(out, name, obj);
}

/* midstream-error: an `error` event; failed: response.failed, whose
 * response carries the usage of what was produced. */
static bool responses_stream_error(struct call *call, struct evbuffer *out)
{
    struct json_object *obj;

    if (call->fault == FAULT_FAILED) {
        obj = event_head("response.failed", call->next_step);
        put(obj, "response", response_json(call, PHASE_FAILED));
        call_sse(out, "response.failed", obj);
        return true;
    }
    obj = event_head("error", call->next_step);
    put_str(obj, "code", "server_error");
    put_str(obj, "message",
            "The server had an error while processing your "
            "request. Sorry about that! (simulated)");
    put(obj, "param", NULL);
    call_sse(out, "error", obj);
    return false;
}

static void responses_headers(struct call *call)
{
    evhttp_add_header(evhttp_request_get_output_headers(call->req),
                      "x-request-id", call->answer.request_id);
}

static bool responses_stream_has_usage(struct call *call)
{
    return true;
}

const struct call_ops wire_responses_ops = {
    .surface = SURFACE_RESPONSES,
    .add_headers = responses_headers,
    .plain_json = plain_json,
    .plan = responses_plan,
    .render = responses_render,
    .stream_error = responses_stream_error,
    .refuse = wire_openai_refuse,
    .usage_json = usage_json,
    .stream_has_usage = responses_stream_has_usage,
};
