/*
 * What the caller sent: parsed once, checked the way the provider would
 * check it (so a request that cannot succeed is refused here, unbilled),
 * and rewritten for the provider with as few byte edits as possible.
 */
#include "proxy/call.h"

#include "proxy/router.h"
#include "util/jsonedit.h"

#include <errno.h>
#include <inttypes.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <string.h>

struct json_object *request_parse(chat_call_t *call, const char *body,
                                  size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;
    size_t end;
    char msg[160];

    if (tok == NULL)
        die_oom();
    /* json-c's strict mode still takes 'single quotes' and NaN, which a
     * provider refuses: RFC 8259 is checked first. */
    if (jsonedit_validate(body, len, &end) == 0) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, body, (int)len);
        end = json_tokener_get_parse_end(tok);
    } else {
        obj = NULL;
    }
    if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        jsonedit_skip_ws(body, len, end) != len) {
        if (len == 0)
            snprintf(msg, sizeof(msg),
                     "the request body is empty; send a "
                     "JSON object");
        else
            snprintf(msg, sizeof(msg),
                     "the request body is not valid "
                     "JSON (error near byte %zu)",
                     end);
        json_object_put(obj);
        json_tokener_free(tok);
        call_fail(call, 400, "invalid_request_error", "invalid_json", NULL,
                  msg);
        return NULL;
    }
    json_tokener_free(tok);
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        call_fail(call, 400, "invalid_request_error", "invalid_json", NULL,
                  "the request body must be a JSON object");
        return NULL;
    }
    return obj;
}

static bool is_null(struct json_object *v)
{
    return v == NULL || json_object_is_type(v, json_type_null);
}

/* Checks the messages the way the provider would, so a request that can
 * never succeed is refused here and not billed. */
static const char *check_messages(struct json_object *msgs)
{
    size_t n = json_object_array_length(msgs);

    if (n == 0)
        return "messages must not be empty";
    for (size_t i = 0; i < n; i++) {
        struct json_object *m = json_object_array_get_idx(msgs, i);
        struct json_object *role, *calls;

        if (!json_object_is_type(m, json_type_object))
            return "each message must be an object";
        if (!json_object_object_get_ex(m, "role", &role) ||
            !json_object_is_type(role, json_type_string))
            return "each message needs a role";
        if (!json_object_object_get_ex(m, "tool_calls", &calls) ||
            is_null(calls))
            continue;
        if (!json_object_is_type(calls, json_type_array))
            return "tool_calls must be an array";
        for (size_t j = 0; j < json_object_array_length(calls); j++) {
            struct json_object *c = json_object_array_get_idx(calls, j);
            struct json_object *fn;

            if (!json_object_is_type(c, json_type_object) ||
                !json_object_object_get_ex(c, "function", &fn) ||
                !json_object_is_type(fn, json_type_object))
                return "each tool call needs a function object";
        }
    }
    return NULL;
}

static const char *pick_task(chat_call_t *call, struct json_object *obj,
                             const cfg_key_t *key)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(call->req);
    const char *task = evhttp_find_header(h, "X-Tollgate-Task");
    struct json_object *meta, *v;

    if (task != NULL && task[0] != '\0')
        return task;
    if (json_object_object_get_ex(obj, "metadata", &meta) &&
        json_object_object_get_ex(meta, "task", &v) &&
        json_object_is_type(v, json_type_string) &&
        json_object_get_string_len(v) > 0) {
        /* A NUL inside would cut the name short: a control character
         * makes check_task() refuse it instead. */
        if (strlen(json_object_get_string(v)) !=
            (size_t)json_object_get_string_len(v))
            return "\x01";
        return arena_strdup(call->arena, json_object_get_string(v));
    }
    if (key->default_task != NULL)
        return key->default_task;
    return "default";
}

/* Task names go into logs, reports and CSV: printable ASCII only. */
static const char *check_task(const char *task)
{
    if (strlen(task) >= 64)
        return "the task name is longer than 63 characters";
    for (const char *p = task; *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            return "the task name must be printable ASCII";
    return NULL;
}

/* A member the gateway reads must appear once: a provider that keeps the
 * first of two would run something other than what was priced. */
static const char *check_duplicates(chat_call_t *call)
{
    static const char *keys[] = {"model", "stream", "stream_options"};
    struct evbuffer *in = evhttp_request_get_input_buffer(call->req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    size_t top = jsonedit_skip_ws(body, len, 0);

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (jsonedit_count(body, len, top, keys[i]) > 1)
            return arena_printf(
                call->arena, "the request gives '%s' more than once", keys[i]);
    return NULL;
}

/* Anthropic's own rules for a messages request, checked before it is
 * sent: messages must be a non-empty array of role/content objects, and
 * max_tokens is required. */
static const char *check_anthropic(struct json_object *obj, const char **param,
                                   const char **code)
{
    struct json_object *msgs, *max;

    *param = "messages";
    if (!json_object_object_get_ex(obj, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array)) {
        *code = "missing_field";
        return "messages: field required (an array)";
    }
    if (json_object_array_length(msgs) == 0)
        return "messages: at least one message is required";
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        struct json_object *m = json_object_array_get_idx(msgs, i), *role;

        if (!json_object_is_type(m, json_type_object) ||
            !json_object_object_get_ex(m, "role", &role) ||
            !json_object_is_type(role, json_type_string))
            return "messages: each message needs a role";
    }
    *param = "max_tokens";
    if (!json_object_object_get_ex(obj, "max_tokens", &max)) {
        *code = "missing_field";
        return "max_tokens: field required (a positive integer)";
    }
    if (!json_object_is_type(max, json_type_int) ||
        json_object_get_int64(max) < 1)
        return "max_tokens: field required (a positive integer)";
    return NULL;
}

/* `input` of a responses or embeddings request: a string or an array. */
static const char *check_input(struct json_object *obj, bool nonempty)
{
    struct json_object *in;

    if (!json_object_object_get_ex(obj, "input", &in) ||
        !(json_object_is_type(in, json_type_string) ||
          json_object_is_type(in, json_type_array)))
        return "you must give input (a string or an array)";
    if (nonempty && json_object_is_type(in, json_type_array) &&
        json_object_array_length(in) == 0)
        return "input must not be empty";
    return NULL;
}

/* The surface's own required fields. */
static bool read_body_fields(chat_call_t *call, struct json_object *obj)
{
    struct json_object *msgs;
    const char *problem = NULL, *param = "messages";
    const char *code = "invalid_value";

    switch (call->surface) {
    case SURFACE_CHAT:
        if (!json_object_object_get_ex(obj, "messages", &msgs) ||
            !json_object_is_type(msgs, json_type_array)) {
            problem = "you must give messages (an array)";
            code = "missing_field";
        } else {
            problem = check_messages(msgs);
        }
        break;
    case SURFACE_MESSAGES:
        problem = check_anthropic(obj, &param, &code);
        break;
    case SURFACE_RESPONSES:
    case SURFACE_EMBEDDINGS:
        param = "input";
        problem = check_input(obj, call->surface == SURFACE_EMBEDDINGS);
        break;
    }
    if (problem == NULL)
        return true;
    call_fail(call, 400, "invalid_request_error", code, param, problem);
    return false;
}

/* No model writes more in one answer (the largest output limits are
 * in the hundreds of thousands); above it a cap only breaks the cost
 * bound's arithmetic. */
#define MAX_OUTPUT_TOKENS INT64_C(100000000)

/* The caller's output cap, under the surface's name for it. */
static bool read_max_tokens(chat_call_t *call, struct json_object *obj)
{
    static const char *const names[][2] = {
        {"max_completion_tokens", "max_tokens"},
        {"max_tokens", NULL},
        {"max_output_tokens", NULL},
        {NULL, NULL},
    };
    struct json_object *v;

    for (int i = 0; i < 2; i++) {
        const char *name = names[call->surface][i];

        if (name == NULL || !json_object_object_get_ex(obj, name, &v) ||
            is_null(v))
            continue;
        if (!json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 1 ||
            json_object_get_int64(v) > MAX_OUTPUT_TOKENS) {
            call_fail(call, 400, "invalid_request_error", "invalid_value", name,
                      arena_printf(call->arena,
                                   "%s must be an integer from 1 to "
                                   "%" PRId64,
                                   name, (int64_t)MAX_OUTPUT_TOKENS));
            return false;
        }
        call->max_tokens = json_object_get_int64(v);
        return true;
    }
    return true;
}

static bool read_stream_flag(chat_call_t *call, struct json_object *obj)
{
    struct json_object *stream;

    if (json_object_object_get_ex(obj, "stream", &stream) && !is_null(stream)) {
        if (!json_object_is_type(stream, json_type_boolean)) {
            call_fail(call, 400, "invalid_request_error", "invalid_type",
                      "stream", "stream must be true or false");
            return false;
        }
        call->stream = json_object_get_boolean(stream);
    }
    if (call->stream && call->surface == SURFACE_EMBEDDINGS) {
        call_fail(call, 400, "invalid_request_error", "invalid_value", "stream",
                  "embeddings cannot be streamed");
        return false;
    }
    call->rec->streamed = call->stream;
    return true;
}

bool request_read(chat_call_t *call, struct json_object *obj,
                  const cfg_key_t *key)
{
    struct json_object *model;
    const char *problem, *task;

    task = pick_task(call, obj, key);
    if ((problem = check_task(task)) != NULL) {
        call_fail(call, 400, "invalid_request_error", "invalid_value", "task",
                  problem);
        return false;
    }
    copy_str(call->rec->task, sizeof(call->rec->task), task);
    if ((problem = check_duplicates(call)) != NULL) {
        call_fail(call, 400, "invalid_request_error", "duplicate_key", NULL,
                  problem);
        return false;
    }
    if (!json_object_object_get_ex(obj, "model", &model) ||
        !json_object_is_type(model, json_type_string)) {
        call_fail(call, 400, "invalid_request_error", "missing_field", "model",
                  "you must give a model (a string)");
        return false;
    }
    if (strlen(json_object_get_string(model)) !=
            (size_t)json_object_get_string_len(model) ||
        json_object_get_string_len(model) >=
            (int)sizeof(call->rec->requested_model)) {
        call_fail(call, 400, "invalid_request_error", "invalid_value", "model",
                  "the model name holds a NUL character or is longer than "
                  "127 bytes");
        return false;
    }
    copy_str(call->rec->requested_model, sizeof(call->rec->requested_model),
             json_object_get_string(model));
    return read_body_fields(call, obj) && read_stream_flag(call, obj) &&
           read_max_tokens(call, obj);
}

/*
 * The output cap the policy stage set, when it differs from the caller's:
 * its value replaced, or the member added after the opening brace under
 * the surface's name (max_completion_tokens for OpenAI's own API, which
 * refuses max_tokens on reasoning models).
 */
static int max_tokens_edit(chat_call_t *call, const char *body, size_t len,
                           json_edit_t *edit)
{
    static const char *const names[] = {"max_completion_tokens", "max_tokens",
                                        "max_output_tokens"};
    size_t top = jsonedit_skip_ws(body, len, 0);
    const char *name;
    json_span_t span;

    if (call->surface == SURFACE_EMBEDDINGS || call->max_sent <= 0 ||
        call->max_sent == call->max_tokens)
        return 0;
    name = names[call->surface];
    if (call->surface == SURFACE_CHAT &&
        (call->model->provider->type != PROVIDER_OPENAI ||
         strcmp(call->model->provider->kind, "openai") != 0 ||
         jsonedit_find(body, len, top, "max_tokens", &span) == 0))
        name = "max_tokens";
    if (call->surface == SURFACE_CHAT &&
        jsonedit_find(body, len, top, "max_completion_tokens", &span) == 0)
        name = "max_completion_tokens";
    if (jsonedit_find(body, len, top, name, &span) == 0) {
        edit->start = span.start;
        edit->end = span.end;
        edit->text = arena_printf(call->arena, "%" PRId64, call->max_sent);
    } else {
        edit->start = edit->end = top + 1;
        edit->text = arena_printf(call->arena, "\"%s\":%" PRId64 ",", name,
                                  call->max_sent);
    }
    return 1;
}

/*
 * Anthropic's metadata takes user_id only: the task a caller named there
 * is Tollgate's, and is taken out before the request goes on.
 */
static int metadata_edit(chat_call_t *call, const char *body, size_t len,
                         json_edit_t *edit)
{
    size_t top = jsonedit_skip_ws(body, len, 0);
    struct json_tokener *tok;
    struct json_object *meta;
    json_span_t span;
    int n = 0;

    if (call->surface != SURFACE_MESSAGES ||
        jsonedit_find(body, len, top, "metadata", &span) < 0)
        return 0;
    if ((tok = json_tokener_new()) == NULL)
        die_oom();
    meta = json_tokener_parse_ex(tok, body + span.start,
                                 (int)(span.end - span.start));
    json_tokener_free(tok);
    if (json_object_is_type(meta, json_type_object) &&
        json_object_object_get_ex(meta, "task", NULL)) {
        json_object_object_del(meta, "task");
        edit->start = span.start;
        edit->end = span.end;
        edit->text = arena_strdup(
            call->arena,
            json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN));
        n = 1;
    }
    json_object_put(meta);
    return n;
}

int request_build_body(chat_call_t *call, const char *body, size_t len)
{
    json_edit_t edits[4];
    size_t n = 0;
    json_span_t span;
    size_t top = jsonedit_skip_ws(body, len, 0);

    if (strcmp(call->model->upstream, call->rec->requested_model) != 0) {
        if (jsonedit_find(body, len, top, "model", &span) < 0)
            return -EINVAL;
        edits[n].start = span.start;
        edits[n].end = span.end;
        edits[n].text =
            arena_printf(call->arena, "\"%s\"", call->model->upstream);
        n++;
    }
    /* Only OpenAI chat streams need usage asked for: the others always
     * carry it (Anthropic's message_delta, the Responses terminal event). */
    if (call->stream && call->surface == SURFACE_CHAT) {
        int rc = jsonedit_usage_edit(call->arena, body, len, &edits[n],
                                     &call->caller_wants_usage);

        if (rc < 0)
            return rc;
        n += (size_t)rc;
    } else {
        call->caller_wants_usage = true;
    }
    n += (size_t)max_tokens_edit(call, body, len, &edits[n]);
    n += (size_t)metadata_edit(call, body, len, &edits[n]);
    call->body =
        jsonedit_apply(call->arena, body, len, edits, n, &call->body_len);
    return 0;
}

/* Which provider kinds serve which surface. An OpenAI chat caller may
 * reach an Anthropic model (translated); the other surfaces pass through
 * to a provider that speaks them natively. */
bool request_check_route(chat_call_t *call)
{
    provider_kind_t kind = call->model->provider->type;
    const char *need = NULL;

    switch (call->surface) {
    case SURFACE_CHAT:
        call->translate = kind == PROVIDER_ANTHROPIC;
        return true;
    case SURFACE_MESSAGES:
        if (kind != PROVIDER_ANTHROPIC)
            need = "an anthropic provider; use /v1/chat/completions for "
                   "this model";
        break;
    case SURFACE_RESPONSES:
        if (kind != PROVIDER_OPENAI)
            need = "an openai provider";
        break;
    case SURFACE_EMBEDDINGS:
        if (kind == PROVIDER_ANTHROPIC)
            need = "an openai, azure or gemini provider";
        break;
    }
    if (need == NULL)
        return true;
    call_fail(call, 400, "invalid_request_error", "unsupported_route", "model",
              arena_printf(call->arena,
                           "the model '%.100s' is served by provider '%s' "
                           "(kind %s); this endpoint needs %s",
                           call->rec->requested_model,
                           call->model->provider->name,
                           call->model->provider->kind, need));
    return false;
}

static const char *const surface_paths[] = {"chat/completions", "messages",
                                            "responses", "embeddings"};

void request_upstream(chat_call_t *call, upstream_request_t *rq)
{
    const cfg_provider_t *prov = call->model->provider;
    const char *path =
        surface_paths[call->translate ? SURFACE_MESSAGES : call->surface];
    const char **headers = arena_alloc(call->arena, 3 * sizeof(char *));
    size_t n = 0;

    rq->api_key = prov->api_key;
    switch (prov->type) {
    case PROVIDER_AZURE:
        rq->url = arena_printf(
            call->arena, "%s/openai/deployments/%s/%s?api-version=%s",
            prov->base_url, call->model->upstream, path, prov->api_version);
        rq->key_header = "api-key";
        break;
    case PROVIDER_ANTHROPIC:
        rq->url = arena_printf(call->arena, "%s/%s", prov->base_url, path);
        rq->key_header = "x-api-key";
        headers[n++] = arena_printf(call->arena, "anthropic-version: %s",
                                    prov->api_version);
        break;
    default:
        rq->url = arena_printf(call->arena, "%s/%s", prov->base_url, path);
        break;
    }
    if (call->surface == SURFACE_MESSAGES) {
        struct evkeyvalq *in = evhttp_request_get_input_headers(call->req);
        const char *beta = evhttp_find_header(in, "anthropic-beta");

        if (beta != NULL && strpbrk(beta, "\r\n") == NULL)
            headers[n++] =
                arena_printf(call->arena, "anthropic-beta: %s", beta);
    }
    headers[n] = NULL;
    rq->headers = headers;
}

/* An OpenAI chat request for an Anthropic model, rewritten. Returns 0,
 * or -EINVAL after answering 400 with the reason. */
int request_translate(chat_call_t *call, struct json_object *obj)
{
    translate_request_opts_t opts = {
        .upstream_model = call->model->upstream,
        .default_max_tokens = call->max_sent > 0 ? call->max_sent
                              : call->model->max_tokens > 0
                                  ? call->model->max_tokens
                                  : call->gw->config->default_max_tokens,
    };
    translate_request_t out;
    json_span_t span;
    json_edit_t edit;

    if (translate_request_to_anthropic(call->arena, obj, &opts, &out) < 0) {
        call_fail(call, 400, "invalid_request_error", "unsupported_for_model",
                  out.param, out.message);
        return -EINVAL;
    }
    call->body = out.body;
    call->body_len = out.body_len;
    call->caller_wants_usage = out.include_usage;
    /* A step-down below the caller's own cap. */
    if (call->max_sent > 0 && out.max_tokens > call->max_sent &&
        jsonedit_find(out.body, out.body_len, 0, "max_tokens", &span) == 0) {
        edit.start = span.start;
        edit.end = span.end;
        edit.text = arena_printf(call->arena, "%" PRId64, call->max_sent);
        call->body = jsonedit_apply(call->arena, out.body, out.body_len, &edit,
                                    1, &call->body_len);
        out.max_tokens = call->max_sent;
    }
    call->max_sent = out.max_tokens;
    return 0;
}

#define REASK_DEFAULT                                                          \
    "Your previous answer did not pass these checks: {failures}. Answer "      \
    "again and fix them."

/* The re-ask message with {failures} filled in. */
static const char *reask_text(chat_call_t *call, const char *failures)
{
    const char *tmpl = call->rt != NULL && call->rt->cfg->reask_message
                           ? call->rt->cfg->reask_message
                           : REASK_DEFAULT;
    const char *at = strstr(tmpl, "{failures}");

    if (at == NULL)
        return tmpl;
    return arena_printf(call->arena, "%.*s%s%s", (int)(at - tmpl), tmpl,
                        failures, at + 10);
}

int request_reask(chat_call_t *call, const char *answer, size_t len,
                  const char *failures)
{
    struct json_object *a = json_object_new_string_len(answer, (int)len);
    struct json_object *m = json_object_new_string(reask_text(call, failures));
    size_t top;
    json_span_t span;
    json_edit_t edit;

    if (a == NULL || m == NULL)
        die_oom();
    call->orig_body = call->base_body;
    call->orig_len = call->base_len;
    top = jsonedit_skip_ws(call->orig_body, call->orig_len, 0);
    if (jsonedit_find(call->orig_body, call->orig_len, top, "messages", &span) <
            0 ||
        span.end < 2 || call->orig_body[span.end - 1] != ']') {
        json_object_put(a);
        json_object_put(m);
        return -EINVAL;
    }
    /* Before the array's closing bracket: the answer, then the ask. */
    edit.start = edit.end = span.end - 1;
    edit.text =
        arena_printf(call->arena,
                     ",{\"role\":\"assistant\",\"content\":%s},"
                     "{\"role\":\"user\",\"content\":%s}",
                     json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                     json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
    call->orig_body = jsonedit_apply(call->arena, call->orig_body,
                                     call->orig_len, &edit, 1, &call->orig_len);
    json_object_put(a);
    json_object_put(m);
    return 0;
}
