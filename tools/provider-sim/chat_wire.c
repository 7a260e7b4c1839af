/*
 * Chat Completions on the wire, in the three dialects the simulator
 * speaks: OpenAI's own, Azure OpenAI's (content-filter results, a first
 * stream chunk with no choices) and Gemini's OpenAI-compatible endpoint
 * (usage on every chunk, thoughts left out of completion_tokens).
 */
#include "sim_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "sim_server.h"

enum chunk_kind {
    CHUNK_FILTER,  /* Azure: choices [] with prompt_filter_results */
    CHUNK_ROLE,    /* delta {role, content:""} */
    CHUNK_CONTENT, /* delta {content: chunk i} */
    CHUNK_FINISH,  /* delta {} with finish_reason */
    CHUNK_USAGE,   /* choices [] with the usage */
    CHUNK_DONE     /* data: [DONE] */
};

static void put(struct json_object *obj, const char *key,
                struct json_object *value)
{
    json_object_object_add(obj, key, value);
}

static struct json_object *int_json(int64_t value)
{
    return json_object_new_int64(value);
}

static enum surface surface_of(const struct call *call)
{
    return call->ops->surface;
}

/* OpenAI's usage: cache reads and writes inside prompt_tokens,
 * reasoning inside completion_tokens. */
static struct json_object *openai_usage(const struct answer *answer)
{
    int64_t completion = answer->answer_tokens + answer->reasoning_tokens;
    int64_t writes = answer_cache_writes(answer);
    struct json_object *usage = json_object_new_object();
    struct json_object *prompt_details = json_object_new_object();
    struct json_object *completion_details = json_object_new_object();

    put(usage, "prompt_tokens", int_json(answer->prompt_tokens));
    put(usage, "completion_tokens", int_json(completion));
    put(usage, "total_tokens", int_json(answer->prompt_tokens + completion));

    put(prompt_details, "cached_tokens", int_json(answer->cached_tokens));
    if (writes > 0)
        put(prompt_details, "cache_write_tokens", int_json(writes));
    put(prompt_details, "audio_tokens", int_json(0));
    put(usage, "prompt_tokens_details", prompt_details);

    put(completion_details, "reasoning_tokens",
        int_json(answer->reasoning_tokens));
    put(completion_details, "audio_tokens", int_json(0));
    put(completion_details, "accepted_prediction_tokens", int_json(0));
    put(completion_details, "rejected_prediction_tokens", int_json(0));
    put(usage, "completion_tokens_details", completion_details);
    return usage;
}

/*
 * Gemini's compatible endpoint: completion_tokens is the visible text
 * only, yet total_tokens counts the thoughts too. `pieces` is the text
 * sent so far, since every stream chunk carries the usage to date.
 */
static struct json_object *gemini_usage(const struct answer *answer,
                                        int64_t pieces)
{
    struct json_object *usage = json_object_new_object();
    struct json_object *details;

    put(usage, "prompt_tokens", int_json(answer->prompt_tokens));
    put(usage, "completion_tokens", int_json(pieces));
    put(usage, "total_tokens",
        int_json(answer->prompt_tokens + pieces + answer->reasoning_tokens));
    if (answer->cached_tokens > 0) {
        details = json_object_new_object();
        put(details, "cached_tokens", int_json(answer->cached_tokens));
        put(usage, "prompt_tokens_details", details);
    }
    return usage;
}

static struct json_object *usage_json(struct call *call)
{
    const struct answer *a = &call->answer;

    if (surface_of(call) == SURFACE_GEMINI)
        return gemini_usage(a, a->answer_tokens);
    return openai_usage(a);
}

static const char *finish_reason(const struct answer *answer)
{
    return answer->truncated ? "length" : "stop";
}

static const char *service_tier(const struct answer *answer)
{
    return answer->service_tier[0] ? answer->service_tier : "default";
}

static struct json_object *head_json(const struct answer *answer,
                                     const char *object)
{
    struct json_object *obj = json_object_new_object();

    put(obj, "id", json_object_new_string(answer->id));
    put(obj, "object", json_object_new_string(object));
    put(obj, "created", int_json(answer->created));
    put(obj, "model", json_object_new_string(answer->model));
    return obj;
}

/* Azure's content-filter verdict: every category safe. */
static struct json_object *filter_results(void)
{
    static const char *const categories[] = {"hate", "self_harm", "sexual",
                                             "violence"};
    struct json_object *results = json_object_new_object();

    for (size_t i = 0; i < 4; i++) {
        struct json_object *verdict = json_object_new_object();

        put(verdict, "filtered", json_object_new_boolean(0));
        put(verdict, "severity", json_object_new_string("safe"));
        put(results, categories[i], verdict);
    }
    return results;
}

static struct json_object *prompt_filter_results(void)
{
    struct json_object *list = json_object_new_array();
    struct json_object *entry = json_object_new_object();

    put(entry, "prompt_index", int_json(0));
    put(entry, "content_filter_results", filter_results());
    json_object_array_add(list, entry);
    return list;
}

/* Fields after choices and usage that only OpenAI and Azure send. */
static void put_tail(struct json_object *obj, const struct call *call)
{
    const struct answer *a = &call->answer;

    if (surface_of(call) == SURFACE_GEMINI)
        return;
    put(obj, "service_tier", json_object_new_string(service_tier(a)));
    put(obj, "system_fingerprint", json_object_new_string(a->fingerprint));
}

static struct json_object *completion_json(struct call *call)
{
    const struct answer *a = &call->answer;
    struct json_object *obj = head_json(a, "chat.completion");
    struct json_object *choices = json_object_new_array();
    struct json_object *choice = json_object_new_object();
    struct json_object *message = json_object_new_object();

    put(message, "role", json_object_new_string("assistant"));
    put(message, "content",
        json_object_new_string_len(a->text, (int)a->text_len));
    put(message, "refusal", NULL);
    put(message, "annotations", json_object_new_array());

    put(choice, "index", int_json(0));
    put(choice, "message", message);
    put(choice, "logprobs", NULL);
    put(choice, "finish_reason", json_object_new_string(finish_reason(a)));
    if (surface_of(call) == SURFACE_AZURE)
        put(choice, "content_filter_results", filter_results());
    json_object_array_add(choices, choice);

    put(obj, "choices", choices);
    put(obj, "usage", usage_json(call));
    put_tail(obj, call);
    if (surface_of(call) == SURFACE_AZURE)
        put(obj, "prompt_filter_results", prompt_filter_results());
    return obj;
}

static struct json_object *chunk_delta(const struct answer *answer,
                                       enum chunk_kind kind, size_t index)
{
    struct json_object *delta = json_object_new_object();
    size_t start, end;

    if (kind == CHUNK_ROLE) {
        put(delta, "role", json_object_new_string("assistant"));
        put(delta, "content", json_object_new_string(""));
        put(delta, "refusal", NULL);
    } else if (kind == CHUNK_CONTENT) {
        start = index == 0 ? 0 : answer->chunk_ends[index - 1];
        end = answer->chunk_ends[index];
        put(delta, "content",
            json_object_new_string_len(answer->text + start,
                                       (int)(end - start)));
    }
    return delta;
}

static struct json_object *chunk_choices(const struct answer *answer,
                                         enum chunk_kind kind, size_t index)
{
    struct json_object *choices = json_object_new_array();
    struct json_object *choice;
    const char *finish = NULL;

    if (kind == CHUNK_USAGE)
        return choices;

    if (kind == CHUNK_FINISH)
        finish = finish_reason(answer);

    choice = json_object_new_object();
    put(choice, "index", int_json(0));
    put(choice, "delta", chunk_delta(answer, kind, index));
    put(choice, "logprobs", NULL);
    put(choice, "finish_reason",
        finish ? json_object_new_string(finish) : NULL);
    json_object_array_add(choices, choice);
    return choices;
}

/* Azure sends its prompt verdict first, in a chunk with no id. */
static struct json_object *filter_chunk(void)
{
    struct json_object *obj = json_object_new_object();

    put(obj, "choices", json_object_new_array());
    put(obj, "created", int_json(0));
    put(obj, "id", json_object_new_string(""));
    put(obj, "model", json_object_new_string(""));
    put(obj, "object", json_object_new_string(""));
    put(obj, "prompt_filter_results", prompt_filter_results());
    return obj;
}

/* Text pieces a Gemini chunk's cumulative usage covers. */
static int64_t pieces_by(const struct answer *answer, enum chunk_kind kind,
                         size_t index)
{
    if (kind == CHUNK_ROLE)
        return 0;
    if (kind == CHUNK_CONTENT)
        return answer_pieces_upto(answer, index + 1);
    return answer->answer_tokens;
}

/*
 * One chat.completion.chunk. OpenAI adds "usage": null to every chunk
 * under include_usage and sends the usage in a last chunk of its own;
 * Gemini puts the usage so far on every chunk.
 */
static struct json_object *chunk_json(struct call *call, enum chunk_kind kind,
                                      size_t index)
{
    const struct answer *a = &call->answer;
    struct json_object *obj = head_json(a, "chat.completion.chunk");

    put_tail(obj, call);
    put(obj, "choices", chunk_choices(a, kind, index));

    if (surface_of(call) == SURFACE_GEMINI)
        put(obj, "usage", gemini_usage(a, pieces_by(a, kind, index)));
    else if (kind == CHUNK_USAGE)
        put(obj, "usage", openai_usage(a));
    else if (call->include_usage)
        put(obj, "usage", NULL);
    return obj;
}

static void chat_plan(struct call *call)
{
    int64_t tail = (int64_t)call->answer.nchunks;

    if (surface_of(call) == SURFACE_AZURE)
        call_plan_add(call, CHUNK_FILTER, 0, CALL_GROUP_HEAD);
    call_plan_add(call, CHUNK_ROLE, 0, CALL_GROUP_HEAD);
    for (size_t i = 0; i < call->answer.nchunks; i++)
        call_plan_add(call, CHUNK_CONTENT, i, (int64_t)i);
    call_plan_add(call, CHUNK_FINISH, 0, tail);
    if (call->include_usage && surface_of(call) != SURFACE_GEMINI)
        call_plan_add(call, CHUNK_USAGE, 0, tail);
    call_plan_add(call, CHUNK_DONE, 0, tail);
}

static void chat_render(struct call *call, size_t i, struct evbuffer *out)
{
    const struct call_step *step = &call->steps[i];

    if (step->kind == CHUNK_DONE)
        evbuffer_add(out, "data: [DONE]\n\n", 14);
    else if (step->kind == CHUNK_FILTER)
        call_sse(out, NULL, filter_chunk());
    else
        call_sse(out, NULL, chunk_json(call, step->kind, step->index));
}

static bool chat_stream_error(struct call *call, struct evbuffer *out)
{
    struct json_object *obj;

    if (surface_of(call) == SURFACE_GEMINI) {
        obj = server_gemini_error_json(
            500, "An internal error has occurred. Please retry or "
                 "report in https://developers.generativeai.google/"
                 "guide/troubleshooting (simulated)");
    } else {
        obj = json_object_new_object();
        put(obj, "error",
            server_error_json("server_error",
                              "The server had an error while processing "
                              "your request. Sorry about that! (simulated)",
                              NULL, NULL));
    }
    call_sse(out, NULL, obj);
    return false;
}

static void openai_headers(struct call *call)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(call->req);

    evhttp_add_header(headers, "x-request-id", call->answer.request_id);
    if (surface_of(call) == SURFACE_AZURE)
        evhttp_add_header(headers, "apim-request-id", call->answer.request_id);
}

static void gemini_headers(struct call *call)
{
}

static bool chat_stream_has_usage(struct call *call)
{
    return surface_of(call) == SURFACE_GEMINI || call->include_usage;
}

static void rate_limit_headers(struct evkeyvalq *headers)
{
    evhttp_add_header(headers, "retry-after", "7");
    evhttp_add_header(headers, "x-ratelimit-limit-requests", "500");
    evhttp_add_header(headers, "x-ratelimit-remaining-requests", "0");
    evhttp_add_header(headers, "x-ratelimit-reset-requests", "7s");
    evhttp_add_header(headers, "x-ratelimit-limit-tokens", "30000");
    evhttp_add_header(headers, "x-ratelimit-remaining-tokens", "0");
    evhttp_add_header(headers, "x-ratelimit-reset-tokens", "7s");
}

void wire_openai_refuse(struct call *call)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(call->req);
    struct evhttp_request *req = call->req;

    evhttp_add_header(headers, "x-request-id", call->answer.request_id);
    switch (call->fault) {
    case FAULT_429:
        rate_limit_headers(headers);
        server_send_error(req, 429, "requests",
                          "Rate limit reached for requests (simulated). "
                          "Please try again in 7s.",
                          NULL, "rate_limit_exceeded");
        break;
    case FAULT_SPENDCAP:
        server_send_error(req, 429, "insufficient_quota",
                          "You exceeded your current quota, please check "
                          "your plan and billing details. (simulated)",
                          NULL, "insufficient_quota");
        break;
    case FAULT_503:
    case FAULT_529:
        server_send_error(req, 503, "service_unavailable_error",
                          "The server is overloaded or not ready yet "
                          "(simulated).",
                          NULL, "server_is_overloaded");
        break;
    case FAULT_413:
        server_send_error(req, 413, "invalid_request_error",
                          "Request too large (simulated).", NULL,
                          "request_too_large");
        break;
    default:
        server_send_error(req, 500, "server_error",
                          "The server had an error while processing your "
                          "request. Sorry about that! (simulated)",
                          NULL, NULL);
    }
}

/* Google's RetryInfo detail, which says how long to wait. */
static void add_retry_info(struct json_object *body)
{
    struct json_object *error, *details = json_object_new_array();
    struct json_object *info = json_object_new_object();

    put(info, "@type",
        json_object_new_string("type.googleapis.com/google.rpc.RetryInfo"));
    put(info, "retryDelay", json_object_new_string("7s"));
    json_object_array_add(details, info);
    json_object_object_get_ex(body, "error", &error);
    put(error, "details", details);
}

void wire_gemini_refuse(struct call *call)
{
    struct json_object *body;
    int status;

    switch (call->fault) {
    case FAULT_429:
        status = 429;
        body = server_gemini_error_json(
            status, "Resource has been exhausted (e.g. check "
                    "quota). (simulated)");
        add_retry_info(body);
        break;
    case FAULT_SPENDCAP:
        status = 429;
        body = server_gemini_error_json(
            status, "You exceeded your current quota, please check "
                    "your plan and billing details. (simulated)");
        break;
    case FAULT_503:
    case FAULT_529:
        status = 503;
        body = server_gemini_error_json(
            status, "The model is overloaded. Please try again "
                    "later. (simulated)");
        break;
    case FAULT_413:
        status = 400;
        body = server_gemini_error_json(
            status, "Request payload size exceeds the limit: "
                    "20971520 bytes. (simulated)");
        break;
    default:
        status = 500;
        body = server_gemini_error_json(
            status, "An internal error has occurred. (simulated)");
    }
    server_send_json(call->req, status, body);
}

#define CHAT_OPS(SURFACE, HEADERS, REFUSE)                                     \
    {                                                                          \
        .surface = SURFACE, .add_headers = HEADERS,                            \
        .plain_json = completion_json, .plan = chat_plan,                      \
        .render = chat_render, .stream_error = chat_stream_error,              \
        .refuse = REFUSE, .usage_json = usage_json,                            \
        .stream_has_usage = chat_stream_has_usage,                             \
    }

const struct call_ops wire_chat_ops =
    CHAT_OPS(SURFACE_CHAT, openai_headers, wire_openai_refuse);
const struct call_ops wire_azure_ops =
    CHAT_OPS(SURFACE_AZURE, openai_headers, wire_openai_refuse);
const struct call_ops wire_gemini_ops =
    CHAT_OPS(SURFACE_GEMINI, gemini_headers, wire_gemini_refuse);
