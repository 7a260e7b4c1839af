/*
 * What the provider answered, read in its own dialect: usage, model and
 * whether the answer is whole, for OpenAI chat (and Gemini's copy of it),
 * Anthropic messages, OpenAI responses and embeddings, plain or streamed;
 * and an OpenAI chat caller's view of an Anthropic answer, translated.
 */
#include "proxy/call.h"

#include "proxy/router.h"
#include "proxy/translate.h"
#include "upstream/openai.h"
#include "upstream/usage.h"

#include <json-c/json.h>
#include <string.h>

/* A stream's translated bytes for one event stay far below this. */
#define TRANSLATE_OUT_CAP (1024 * 1024)

/* Whether this call's answers are checked, so their text is kept. */
static bool collecting(const chat_call_t *call)
{
    return call->rt != NULL && call->rt->checks != NULL &&
           checks_any(call->rt->checks);
}

static void keep_text(void *ctx, const char *text, size_t len)
{
    chat_call_t *call = ctx;

    buf_append(&call->text, text, len);
}

/* OpenAI and Anthropic name a cut answer differently; checks read
 * "length" for both. */
static void take_finish(chat_call_t *call, const char *reason)
{
    if (reason == NULL)
        return;
    if (strcmp(reason, "max_tokens") == 0 || strcmp(reason, "incomplete") == 0)
        reason = "length";
    copy_str(call->finish_reason, sizeof(call->finish_reason), reason);
}

static const char *str_at(struct json_object *obj, const char *key)
{
    struct json_object *v;

    if (obj != NULL && json_object_object_get_ex(obj, key, &v) &&
        json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

/* The finish reason a stream event carries, in any dialect. */
static void event_finish(chat_call_t *call, struct json_object *ev)
{
    struct json_object *v, *c0;

    if (json_object_object_get_ex(ev, "choices", &v) &&
        json_object_is_type(v, json_type_array) &&
        (c0 = json_object_array_get_idx(v, 0)) != NULL)
        take_finish(call, str_at(c0, "finish_reason"));
    if (json_object_object_get_ex(ev, "delta", &v))
        take_finish(call, str_at(v, "stop_reason"));
    if (json_object_object_get_ex(ev, "response", &v))
        take_finish(call, str_at(v, "status") &&
                                  strcmp(str_at(v, "status"), "incomplete") == 0
                              ? "length"
                              : NULL);
}

static void collect_event(chat_call_t *call, const sse_event_t *ev)
{
    struct json_object *obj = json_tokener_parse(ev->data);

    if (obj == NULL)
        return;
    usage_event_text(obj, keep_text, call);
    event_finish(call, obj);
    json_object_put(obj);
}

/* The text of a plain answer: chat choices, Anthropic content blocks,
 * Responses output items. */
static void collect_plain(chat_call_t *call, struct json_object *obj)
{
    struct json_object *v, *c0, *msg, *item, *parts;

    if (json_object_object_get_ex(obj, "choices", &v) &&
        json_object_is_type(v, json_type_array) &&
        (c0 = json_object_array_get_idx(v, 0)) != NULL) {
        take_finish(call, str_at(c0, "finish_reason"));
        if (json_object_object_get_ex(c0, "message", &msg) &&
            str_at(msg, "content") != NULL)
            keep_text(call, str_at(msg, "content"),
                      strlen(str_at(msg, "content")));
        return;
    }
    take_finish(call, str_at(obj, "stop_reason"));
    if (str_at(obj, "status") &&
        strcmp(str_at(obj, "status"), "incomplete") == 0)
        take_finish(call, "length");
    v = NULL;
    if (!json_object_object_get_ex(obj, "content", &v))
        json_object_object_get_ex(obj, "output", &v);
    for (size_t i = 0; v && json_object_is_type(v, json_type_array) &&
                       i < json_object_array_length(v);
         i++) {
        item = json_object_array_get_idx(v, i);
        if (str_at(item, "text") != NULL)
            keep_text(call, str_at(item, "text"), strlen(str_at(item, "text")));
        if (!json_object_object_get_ex(item, "content", &parts) ||
            !json_object_is_type(parts, json_type_array))
            continue;
        for (size_t j = 0; j < json_object_array_length(parts); j++) {
            const char *t = str_at(json_object_array_get_idx(parts, j), "text");

            if (t != NULL)
                keep_text(call, t, strlen(t));
        }
    }
}

void answer_init(chat_call_t *call)
{
    translate_reply_opts_t opts = {
        .model = call->rec->requested_model,
        .created = call->rec->started_ms / 1000,
        .include_usage = call->caller_wants_usage,
    };

    call->gemini = call->model->provider->type == PROVIDER_GEMINI;
    usage_anthropic_stream_init(&call->anth);
    usage_responses_stream_init(&call->responses);
    buf_init(&call->tout, TRANSLATE_OUT_CAP);
    if (call->translate)
        translate_stream_init(&call->ts, call->arena, &opts);
}

void answer_free(chat_call_t *call)
{
    buf_free(&call->tout);
}

/*
 * A cheap count of the text in an event, for the estimate a call gets
 * when its usage never comes: the string values of the members that carry
 * generated text, escapes and all, through usage_estimate_tokens. It is
 * a scan, not a parse, so the common path pays a few memmem calls.
 */
static int64_t estimate_text(const char *data, size_t len)
{
    static const char *const keys[] = {"\"content\":\"", "\"text\":\"",
                                       "\"partial_json\":\"",
                                       "\"arguments\":\"", "\"delta\":\""};
    const char *end = data + len;
    int64_t tokens = 0;

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        size_t klen = strlen(keys[k]);
        const char *p = data;

        while ((p = memmem(p, (size_t)(end - p), keys[k], klen)) != NULL) {
            const char *s = p += klen;

            while (p < end && *p != '"')
                p += *p == '\\' && p + 1 < end ? 2 : 1;
            tokens += usage_estimate_tokens(s, (size_t)(p - s));
        }
    }
    return tokens;
}

static bool has_nonempty_content(const char *data, size_t len)
{
    const char *p = data, *end = data + len;

    while ((p = memmem(p, (size_t)(end - p), "\"content\"", 9)) != NULL) {
        p += 9;
        while (p < end && (*p == ' ' || *p == ':'))
            p++;
        if (p + 1 < end && p[0] == '"' && p[1] != '"')
            return true;
    }
    return memmem(data, len, "\"tool_calls\":[", 14) != NULL;
}

/* Whether a chunk may carry usage: every chunk but the last says
 * "usage":null, and parsing each one would cost more than the proxying. */
static bool usage_present(const char *data, size_t len)
{
    const char *end = data + len;
    const char *p = memmem(data, len, "\"usage\"", 7);

    if (p == NULL)
        return false;
    p += 7;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\t'))
        p++;
    return !(end - p >= 4 && memcmp(p, "null", 4) == 0);
}

static void take_model(chat_call_t *call, struct json_object *obj)
{
    struct json_object *v;

    if (json_object_object_get_ex(obj, "model", &v) &&
        json_object_is_type(v, json_type_string))
        copy_str(call->resp_model, sizeof(call->resp_model),
                 json_object_get_string(v));
}

/* Reads usage, model and errors from one OpenAI chat chunk. Returns true
 * when the chunk is the usage-only chunk the caller did not ask for.
 * Gemini's copy sends usage on every chunk: the last one wins. */
static bool inspect_chunk(chat_call_t *call, const sse_event_t *ev)
{
    struct json_object *obj, *v, *choices;
    bool drop = false;
    int rc;

    if (!call->saw_content && has_nonempty_content(ev->data, ev->data_len))
        call->saw_content = true;
    if (!usage_present(ev->data, ev->data_len) &&
        memmem(ev->data, ev->data_len, "\"error\"", 7) == NULL &&
        call->resp_model[0] != '\0')
        return false;
    obj = json_tokener_parse(ev->data);
    if (obj == NULL || !json_object_is_type(obj, json_type_object))
        goto out;
    take_model(call, obj);
    if (json_object_object_get_ex(obj, "error", &v) && v != NULL)
        call->stream_error = true;
    if (!json_object_object_get_ex(obj, "usage", &v) || v == NULL)
        goto out;
    rc = call->gemini ? usage_read_gemini_openai(obj, &call->att->usage)
                      : usage_read_chat(obj, &call->att->usage);
    if (rc == 0)
        drop = !call->caller_wants_usage &&
               json_object_object_get_ex(obj, "choices", &choices) &&
               json_object_is_type(choices, json_type_array) &&
               json_object_array_length(choices) == 0;
out:
    json_object_put(obj);
    return drop;
}

int answer_stream_event(chat_call_t *call, const sse_event_t *ev,
                        const char **out, size_t *out_len)
{
    bool done = ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0;

    *out = ev->raw;
    *out_len = ev->raw_len;
    if (!done)
        call->est_out += estimate_text(ev->data, ev->data_len);
    if (!done && collecting(call))
        collect_event(call, ev);
    if (call->translate) {
        buf_consume(&call->tout, call->tout.len);
        translate_stream_feed(&call->ts, ev->name, ev->data, ev->data_len,
                              &call->tout);
        *out = call->tout.data;
        *out_len = call->tout.len;
        if (!call->saw_content && has_nonempty_content(*out, *out_len))
            call->saw_content = true;
        return 0;
    }
    switch (call->surface) {
    case SURFACE_MESSAGES:
        usage_anthropic_stream_feed(&call->anth, ev->name, ev->data,
                                    ev->data_len);
        call->saw_content |=
            memmem(ev->data, ev->data_len, "content_block_delta", 19) != NULL;
        break;
    case SURFACE_RESPONSES:
        usage_responses_stream_feed(&call->responses, ev->name, ev->data,
                                    ev->data_len);
        call->saw_content |=
            memmem(ev->data, ev->data_len, ".delta\"", 7) != NULL;
        break;
    default:
        if (!done && inspect_chunk(call, ev))
            *out_len = 0;
        break;
    }
    return 0;
}

/* Usage, model and completeness of a stream that has ended. */
bool answer_stream_end(chat_call_t *call)
{
    ledger_attempt_t *att = call->att;

    if (call->translate) {
        translate_stream_usage(&call->ts, &att->usage);
        copy_str(call->resp_model, sizeof(call->resp_model),
                 translate_stream_provider_model(&call->ts));
        /* An error event ends the stream after message_start's
         * placeholder output: the count is a lower bound. */
        if (!translate_stream_ended_ok(&call->ts) && att->usage.present)
            answer_estimate(call);
        call->stream_error =
            call->ts.ended && !translate_stream_ended_ok(&call->ts);
        return translate_stream_ended_ok(&call->ts) || call->ts.ended;
    }
    switch (call->surface) {
    case SURFACE_MESSAGES:
        att->usage = call->anth.usage;
        copy_str(call->resp_model, sizeof(call->resp_model), call->anth.model);
        call->stream_error = call->anth.error;
        if (!call->anth.stopped && att->usage.present)
            answer_estimate(call);
        return call->anth.stopped || call->anth.error;
    case SURFACE_RESPONSES:
        att->usage = call->responses.usage;
        if (call->responses.model[0] != '\0')
            copy_str(call->resp_model, sizeof(call->resp_model),
                     call->responses.model);
        call->stream_error = call->responses.error ||
                             call->responses.end == USAGE_RESPONSES_FAILED;
        return call->responses.end != USAGE_RESPONSES_OPEN ||
               call->responses.error;
    default:
        return true;
    }
}

/* The stream's own error event, in the caller's dialect. */
char *answer_stream_error(chat_call_t *call, const char *code,
                          const char *message)
{
    switch (call->surface) {
    case SURFACE_MESSAGES:
        return arena_printf(call->arena,
                            "event: error\ndata: {\"type\":\"error\","
                            "\"error\":{\"type\":\"api_error\","
                            "\"message\":\"%s (%s)\"}}\n\n",
                            message, code);
    case SURFACE_RESPONSES:
        return arena_printf(call->arena,
                            "event: error\ndata: {\"type\":\"error\","
                            "\"code\":\"%s\",\"message\":\"%s\","
                            "\"param\":null}\n\n",
                            code, message);
    default:
        return arena_printf(call->arena,
                            "data: {\"error\":{\"message\":\"%s\",\"type\":"
                            "\"upstream_error\",\"param\":null,\"code\":"
                            "\"%s\"}}\n\n",
                            message, code);
    }
}

static bool has_answer(chat_call_t *call, struct json_object *obj)
{
    struct json_object *v;

    switch (call->surface) {
    case SURFACE_MESSAGES:
        return json_object_object_get_ex(obj, "content", &v) &&
               json_object_is_type(v, json_type_array) &&
               json_object_array_length(v) > 0;
    case SURFACE_RESPONSES:
        return json_object_object_get_ex(obj, "output", &v) &&
               json_object_is_type(v, json_type_array) &&
               json_object_array_length(v) > 0;
    case SURFACE_EMBEDDINGS:
        return json_object_object_get_ex(obj, "data", &v) &&
               json_object_is_type(v, json_type_array) &&
               json_object_array_length(v) > 0;
    default:
        return openai_has_answer(obj);
    }
}

static void read_plain_usage(chat_call_t *call, struct json_object *obj)
{
    usage_t *u = &call->att->usage;

    switch (call->surface) {
    case SURFACE_MESSAGES:
        usage_read_anthropic(obj, u);
        break;
    case SURFACE_RESPONSES:
        usage_read_responses(obj, u);
        break;
    case SURFACE_EMBEDDINGS:
        usage_read_embeddings(obj, u);
        break;
    default:
        if (call->gemini)
            usage_read_gemini_openai(obj, u);
        else
            usage_read_chat(obj, u);
        break;
    }
}

/* A translated call: the Anthropic body becomes a chat completion, or
 * the Anthropic error OpenAI's. Returns the status for the caller. */
static int translate_plain(chat_call_t *call, int status)
{
    translate_reply_opts_t opts = {
        .model = call->rec->requested_model,
        .created = call->rec->started_ms / 1000,
    };
    translate_answer_t ans;
    translate_error_t err;

    if (status == 200 &&
        translate_answer_to_openai(call->arena, call->resp.data, call->resp.len,
                                   &opts, &ans) == 0) {
        call->att->usage = ans.usage;
        copy_str(call->resp_model, sizeof(call->resp_model),
                 ans.provider_model);
        call->reply_body = ans.body;
        call->reply_len = ans.body_len;
        call->rec->useful = has_nonempty_content(ans.body, ans.body_len);
        return 200;
    }
    translate_error_to_openai(call->arena, status, call->resp.data,
                              call->resp.len, &err);
    call->reply_body = err.body;
    call->reply_len = err.body_len;
    return err.status;
}

int answer_plain(chat_call_t *call, struct json_object *obj, int status)
{
    call->reply_body = call->resp.data ? call->resp.data : "";
    call->reply_len = call->resp.len;
    call->est_out = estimate_text(call->reply_body, call->reply_len);
    if (status == 200 && collecting(call))
        collect_plain(call, obj);
    if (call->translate)
        return translate_plain(call, status);
    take_model(call, obj);
    read_plain_usage(call, obj);
    if (status == 200)
        call->rec->useful = has_answer(call, obj);
    return status;
}

/*
 * Usage the provider never sent, counted here: input from the bytes of
 * the request that went upstream (JSON syntax included, so it leans
 * high), output from the generated text that passed (see estimate_text).
 * A stream cut after Anthropic's message_start keeps its exact input and
 * takes the larger output of the two.
 */
void answer_estimate(chat_call_t *call)
{
    usage_t *u = &call->att->usage;
    int64_t in = usage_estimate_tokens(call->body, call->body_len);

    /* A plain answer cut short: count the text that did come. */
    if (!call->sse_mode && call->est_out == 0 && call->resp.len > 0)
        call->est_out = estimate_text(call->resp.data, call->resp.len);
    if (!u->present) {
        memset(u, 0, sizeof(*u));
        u->input_tokens = in;
    }
    if (call->est_out > u->output_tokens)
        u->output_tokens = call->est_out;
    u->present = true;
    u->estimated = true;
}
