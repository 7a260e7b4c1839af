/*
 * The chat completions endpoints of the simulator (OpenAI, Azure
 * OpenAI, Gemini's compatible one). Validation mirrors OpenAI's 400s;
 * the answer is deterministic for a given request, so tests can
 * recompute its usage from the token rule.
 */
#include "sim_chat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "sim_build.h"
#include "sim_server.h"
#include "sim_wire.h"

/* What the simulator needs from a valid request; body owns the rest. */
struct chat_request {
    struct json_object *body;
    enum surface surface;
    const char *model; /* NULL: Azure, the deployment names it */
    struct json_object *messages;
    size_t nmessages;
    bool stream;
    bool include_usage;
    int64_t limit; /* max (completion) tokens, -1 when none */
};

static const char *type_words(struct json_object *value)
{
    switch (json_object_get_type(value)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_int:
        return "an integer";
    case json_type_double:
        return "a decimal";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    default:
        return "a string";
    }
}

static int reject_type(struct sim_rejection *rej, const char *param,
                       const char *expected, struct json_object *value)
{
    return util_reject(rej, param, "invalid_type",
                       "Invalid type for '%s': expected %s, but got %s "
                       "instead.",
                       param, expected, type_words(value));
}

static int check_model(struct chat_request *chat, struct sim_rejection *rej)
{
    struct json_object *model;

    bool absent = !json_object_object_get_ex(chat->body, "model", &model) ||
                  json_object_is_type(model, json_type_null);

    /* Azure takes the model from the deployment in the path. */
    if (absent && chat->surface == SURFACE_AZURE)
        return 0;
    if (absent || (json_object_is_type(model, json_type_string) &&
                   json_object_get_string_len(model) == 0))
        return util_reject(rej, "model", "missing_required_parameter",
                           "Missing required parameter: 'model'.");
    if (!json_object_is_type(model, json_type_string))
        return reject_type(rej, "model", "a string", model);
    if (strlen(json_object_get_string(model)) !=
        (size_t)json_object_get_string_len(model))
        return util_reject(rej, "model", "invalid_value",
                           "Invalid 'model': the name holds a NUL character.");

    chat->model = json_object_get_string(model);
    return 0;
}

static const char *const roles[] = {"system",    "developer", "user",
                                    "assistant", "tool",      "function"};

static bool known_role(const char *role)
{
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(role, roles[i]) == 0)
            return true;
    }
    return false;
}

static int check_message(struct json_object *msg, size_t i,
                         struct sim_rejection *rej)
{
    struct json_object *role, *content;
    char param[48];

    snprintf(param, sizeof(param), "messages[%zu]", i);
    if (!json_object_is_type(msg, json_type_object))
        return reject_type(rej, param, "an object", msg);

    snprintf(param, sizeof(param), "messages[%zu].role", i);
    if (!json_object_object_get_ex(msg, "role", &role))
        return util_reject(rej, param, "missing_required_parameter",
                           "Missing required parameter: '%s'.", param);
    if (!json_object_is_type(role, json_type_string))
        return reject_type(rej, param, "a string", role);
    if (!known_role(json_object_get_string(role)))
        return util_reject(rej, param, "invalid_value",
                           "Invalid value for '%s'. Supported values are: "
                           "'system', 'assistant', 'user', 'function', 'tool', "
                           "and 'developer'.",
                           param);

    snprintf(param, sizeof(param), "messages[%zu].content", i);
    if (json_object_object_get_ex(msg, "content", &content) &&
        !json_object_is_type(content, json_type_null) &&
        !json_object_is_type(content, json_type_string) &&
        !json_object_is_type(content, json_type_array))
        return reject_type(rej, param, "one of a string or array of objects",
                           content);
    return 0;
}

static int check_messages(struct chat_request *chat, struct sim_rejection *rej)
{
    struct json_object *messages;

    if (!json_object_object_get_ex(chat->body, "messages", &messages) ||
        json_object_is_type(messages, json_type_null))
        return util_reject(rej, "messages", "missing_required_parameter",
                           "Missing required parameter: 'messages'.");
    if (!json_object_is_type(messages, json_type_array))
        return reject_type(rej, "messages", "an array", messages);

    chat->messages = messages;
    chat->nmessages = json_object_array_length(messages);
    if (chat->nmessages == 0)
        return util_reject(rej, "messages", "empty_array",
                           "Invalid 'messages': empty array. Expected an array "
                           "with minimum length 1, but got an empty array "
                           "instead.");

    for (size_t i = 0; i < chat->nmessages; i++) {
        if (check_message(json_object_array_get_idx(messages, i), i, rej) < 0)
            return -EINVAL;
    }
    return 0;
}

/* Looks up an optional member: 0 absent or null, 1 present. */
static int member(struct json_object *obj, const char *key,
                  struct json_object **value)
{
    if (!json_object_object_get_ex(obj, key, value) ||
        json_object_is_type(*value, json_type_null))
        return 0;
    return 1;
}

static int check_stream(struct chat_request *chat, struct sim_rejection *rej)
{
    struct json_object *stream, *options, *include;

    if (member(chat->body, "stream", &stream)) {
        if (!json_object_is_type(stream, json_type_boolean))
            return reject_type(rej, "stream", "a boolean", stream);
        chat->stream = json_object_get_boolean(stream);
    }

    if (!member(chat->body, "stream_options", &options))
        return 0;
    if (!chat->stream)
        return util_reject(rej, "stream_options", NULL,
                           "The 'stream_options' parameter is only allowed "
                           "when 'stream' is enabled.");
    if (!json_object_is_type(options, json_type_object))
        return reject_type(rej, "stream_options", "an object", options);

    if (member(options, "include_usage", &include)) {
        if (!json_object_is_type(include, json_type_boolean))
            return reject_type(rej, "stream_options.include_usage", "a boolean",
                               include);
        chat->include_usage = json_object_get_boolean(include);
    }
    return 0;
}

static int check_limit_field(struct chat_request *chat, const char *key,
                             struct sim_rejection *rej)
{
    struct json_object *value;
    int64_t limit;

    if (!member(chat->body, key, &value))
        return 0;
    if (!json_object_is_type(value, json_type_int))
        return reject_type(rej, key, "an integer", value);

    limit = json_object_get_int64(value);
    if (limit < 1)
        return util_reject(
            rej, key, "integer_below_min_value",
            "Invalid '%s': integer below minimum value. Expected "
            "a value >= 1, but got %lld instead.",
            key, (long long)limit);
    chat->limit = limit;
    return 0;
}

/* max_completion_tokens wins over the deprecated max_tokens. */
static int check_limits(struct chat_request *chat, struct sim_rejection *rej)
{
    chat->limit = -1;
    if (check_limit_field(chat, "max_tokens", rej) < 0)
        return -EINVAL;
    return check_limit_field(chat, "max_completion_tokens", rej);
}

static int unknown_fault(struct sim_rejection *rej, const char *name,
                         size_t len)
{
    return util_reject(rej, NULL, "unknown_sim_fault",
                       "Unknown simulator fault '%.*s'. Known: 429, 500, 503, "
                       "529, 413, spendcap, stall, cut, malformed, "
                       "midstream-error, failed.",
                       (int)(len > 64 ? 64 : len), name);
}

static int check_request(struct sim *sim, struct evhttp_request *req,
                         struct chat_request *chat, struct sim_rejection *rej)
{
    if (build_parse_body(req, &chat->body) < 0)
        return util_reject(
            rej, NULL, NULL,
            "We could not parse the JSON body of your request. "
            "The OpenAI API expects a JSON payload, but what was "
            "sent was not valid JSON.");
    if (check_model(chat, rej) < 0 || check_messages(chat, rej) < 0 ||
        check_stream(chat, rej) < 0 || check_limits(chat, rej) < 0)
        return -EINVAL;

    if (chat->model != NULL && !sim_knows_model(sim, chat->model)) {
        util_reject(rej, NULL, "model_not_found",
                    "The model `%.100s` does not exist or you do not have "
                    "access to it.",
                    chat->model);
        rej->status = 404;
        return -ENOENT;
    }
    return 0;
}

static void fill_ask(struct sim *sim, const struct chat_request *chat,
                     const char *deployment_model, struct ask *ask)
{
    ask->model = deployment_model ? deployment_model : chat->model;
    ask->answer_model = deployment_model ? deployment_model
                                         : sim_snapshot_for(sim, chat->model);
    ask->messages = chat->messages;
    ask->nmessages = chat->nmessages;
    ask->counted = -1;
    ask->limit = chat->limit;
    ask->stream = chat->stream;
    ask->prefix_cache = true;
    build_last_user(ask);
}

static const struct call_ops *ops_for(enum surface surface)
{
    if (surface == SURFACE_AZURE)
        return &wire_azure_ops;
    if (surface == SURFACE_GEMINI)
        return &wire_gemini_ops;
    return &wire_chat_ops;
}

static void send_rejection(struct evhttp_request *req, enum surface surface,
                           const struct sim_rejection *rej)
{
    if (surface == SURFACE_GEMINI)
        server_send_gemini_error(req, rej->status, rej->message);
    else
        server_send_error(req, rej->status, rej->type, rej->message,
                          rej->param[0] ? rej->param : NULL, rej->code);
}

void chat_handle(struct sim *sim, struct evhttp_request *req,
                 enum surface surface, const char *deployment_model)
{
    struct chat_request chat = {.surface = surface};
    struct sim_rejection rej = {0};
    struct ask ask = {0};
    struct call *call;
    const char *name;
    size_t len;

    if (check_request(sim, req, &chat, &rej) < 0)
        goto out_reject;
    fill_ask(sim, &chat, deployment_model, &ask);
    if (build_pick_fault(req, &ask, &name, &len) < 0) {
        unknown_fault(&rej, name, len);
        goto out_reject;
    }

    call = build_call(sim, req, &ask, ops_for(surface), "chatcmpl-", false);
    call->include_usage = chat.include_usage;
    call_begin(call);
    goto out_free;

out_reject:
    send_rejection(req, surface, &rej);
out_free:
    ask_free(&ask);
    json_object_put(chat.body);
}
