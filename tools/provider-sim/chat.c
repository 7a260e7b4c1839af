/*
 * The chat completions endpoint of the simulator. Validation mirrors
 * OpenAI's 400s; the answer is deterministic for a given request, so
 * tests can recompute its usage from the token rule.
 */
#include "sim_chat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include "sim_answer.h"
#include "sim_call.h"
#include "sim_replay.h"
#include "sim_server.h"
#include "sim_tokens.h"
#include "sim_util.h"

#define JSON_MAX_DEPTH 64
#define FAULT_MARKER "sim:fault="

/* A request rejected the way OpenAI rejects it. */
struct rejection {
    int status;
    const char *type;
    const char *code;
    char param[64];
    char message[256];
};

/* What the simulator needs from a valid request; body owns the rest. */
struct chat_request {
    struct json_object *body;
    const char *model;
    struct json_object *messages;
    size_t nmessages;
    bool stream;
    bool include_usage;
    int64_t limit; /* max (completion) tokens, -1 when none */
    char *last_user;
    size_t last_user_len;
    enum sim_fault fault;
};

static int reject(struct rejection *rej, const char *param, const char *code,
                  const char *fmt, ...)
{
    va_list ap;

    rej->status = 400;
    rej->type = "invalid_request_error";
    rej->code = code;
    snprintf(rej->param, sizeof(rej->param), "%s", param ? param : "");
    va_start(ap, fmt);
    vsnprintf(rej->message, sizeof(rej->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

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

static int reject_type(struct rejection *rej, const char *param,
                       const char *expected, struct json_object *value)
{
    return reject(rej, param, "invalid_type",
                  "Invalid type for '%s': expected %s, but got %s "
                  "instead.",
                  param, expected, type_words(value));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int parse_body(struct evhttp_request *req, struct json_object **out,
                      struct rejection *rej)
{
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(input);
    const char *data = len ? (const char *)evbuffer_pullup(input, -1) : "";
    struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    struct json_object *obj;
    size_t end;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                    JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, data, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (json_tokener_get_error(tok) != json_tokener_success)
        obj = NULL;
    json_tokener_free(tok);

    while (obj != NULL && end < len && is_blank(data[end]))
        end++;
    if (obj == NULL || end != len ||
        !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return reject(rej, NULL, NULL,
                      "We could not parse the JSON body of your request. "
                      "The OpenAI API expects a JSON payload, but what was "
                      "sent was not valid JSON.");
    }
    *out = obj;
    return 0;
}

static int check_model(struct chat_request *chat, struct rejection *rej)
{
    struct json_object *model;

    if (!json_object_object_get_ex(chat->body, "model", &model) ||
        json_object_is_type(model, json_type_null) ||
        (json_object_is_type(model, json_type_string) &&
         json_object_get_string_len(model) == 0))
        return reject(rej, "model", "missing_required_parameter",
                      "Missing required parameter: 'model'.");
    if (!json_object_is_type(model, json_type_string))
        return reject_type(rej, "model", "a string", model);
    if (strlen(json_object_get_string(model)) !=
        (size_t)json_object_get_string_len(model))
        return reject(rej, "model", "invalid_value",
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
                         struct rejection *rej)
{
    struct json_object *role, *content;
    char param[48];

    snprintf(param, sizeof(param), "messages[%zu]", i);
    if (!json_object_is_type(msg, json_type_object))
        return reject_type(rej, param, "an object", msg);

    snprintf(param, sizeof(param), "messages[%zu].role", i);
    if (!json_object_object_get_ex(msg, "role", &role))
        return reject(rej, param, "missing_required_parameter",
                      "Missing required parameter: '%s'.", param);
    if (!json_object_is_type(role, json_type_string))
        return reject_type(rej, param, "a string", role);
    if (!known_role(json_object_get_string(role)))
        return reject(rej, param, "invalid_value",
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

static int check_messages(struct chat_request *chat, struct rejection *rej)
{
    struct json_object *messages;

    if (!json_object_object_get_ex(chat->body, "messages", &messages) ||
        json_object_is_type(messages, json_type_null))
        return reject(rej, "messages", "missing_required_parameter",
                      "Missing required parameter: 'messages'.");
    if (!json_object_is_type(messages, json_type_array))
        return reject_type(rej, "messages", "an array", messages);

    chat->messages = messages;
    chat->nmessages = json_object_array_length(messages);
    if (chat->nmessages == 0)
        return reject(rej, "messages", "empty_array",
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

static int check_stream(struct chat_request *chat, struct rejection *rej)
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
        return reject(rej, "stream_options", NULL,
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
                             struct rejection *rej)
{
    struct json_object *value;
    int64_t limit;

    if (!member(chat->body, key, &value))
        return 0;
    if (!json_object_is_type(value, json_type_int))
        return reject_type(rej, key, "an integer", value);

    limit = json_object_get_int64(value);
    if (limit < 1)
        return reject(rej, key, "integer_below_min_value",
                      "Invalid '%s': integer below minimum value. Expected "
                      "a value >= 1, but got %lld instead.",
                      key, (long long)limit);
    chat->limit = limit;
    return 0;
}

/* max_completion_tokens wins over the deprecated max_tokens. */
static int check_limits(struct chat_request *chat, struct rejection *rej)
{
    chat->limit = -1;
    if (check_limit_field(chat, "max_tokens", rej) < 0)
        return -EINVAL;
    return check_limit_field(chat, "max_completion_tokens", rej);
}

static void find_last_user(struct chat_request *chat)
{
    struct json_object *msg, *role;
    int64_t nontext;

    for (size_t i = chat->nmessages; i-- > 0;) {
        msg = json_object_array_get_idx(chat->messages, i);
        json_object_object_get_ex(msg, "role", &role);
        if (strcmp(json_object_get_string(role), "user") == 0) {
            chat->last_user =
                tokens_message_text(msg, &chat->last_user_len, &nontext);
            return;
        }
    }
    chat->last_user = util_xstrndup("", 0);
    chat->last_user_len = 0;
}

static size_t fault_name_len(const char *name, const char *end)
{
    const char *p = name;

    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
        p++;
    return (size_t)(p - name);
}

/* The header wins; else a sim:fault=NAME marker in the last user turn. */
static int pick_fault(struct evhttp_request *req, struct chat_request *chat,
                      struct rejection *rej)
{
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    const char *name = evhttp_find_header(headers, "x-sim-fault");
    size_t len;

    if (name != NULL) {
        len = strlen(name);
    } else {
        const char *end = chat->last_user + chat->last_user_len;
        const char *hit = memmem(chat->last_user, chat->last_user_len,
                                 FAULT_MARKER, strlen(FAULT_MARKER));

        if (hit == NULL)
            return 0;
        name = hit + strlen(FAULT_MARKER);
        len = fault_name_len(name, end);
    }

    if (fault_parse(name, len, &chat->fault) < 0)
        return reject(rej, NULL, "unknown_sim_fault",
                      "Unknown simulator fault '%.*s'. Known: 429, 500, "
                      "503, stall, cut, malformed, midstream-error.",
                      (int)(len > 64 ? 64 : len), name);
    return 0;
}

static int check_request(struct sim *sim, struct evhttp_request *req,
                         struct chat_request *chat, struct rejection *rej)
{
    if (parse_body(req, &chat->body, rej) < 0 || check_model(chat, rej) < 0 ||
        check_messages(chat, rej) < 0 || check_stream(chat, rej) < 0 ||
        check_limits(chat, rej) < 0)
        return -EINVAL;

    if (!sim_knows_model(sim, chat->model)) {
        reject(rej, NULL, "model_not_found",
               "The model `%.100s` does not exist or you do not have "
               "access to it.",
               chat->model);
        rej->status = 404;
        return -ENOENT;
    }

    find_last_user(chat);
    return pick_fault(req, chat, rej);
}

/* Hash of everything but the last message, per model. */
static uint64_t prefix_hash(const struct chat_request *chat)
{
    uint64_t hash =
        util_hash(UTIL_FNV_SEED, chat->model, strlen(chat->model) + 1);

    for (size_t i = 0; i + 1 < chat->nmessages; i++) {
        struct json_object *msg = json_object_array_get_idx(chat->messages, i);
        size_t len;
        const char *json =
            json_object_to_json_string_length(msg, SERVER_JSON_FLAGS, &len);

        hash = util_hash(hash, json, len);
        hash = util_hash(hash, "\n", 1);
    }
    return hash;
}

/*
 * OpenAI caches prompt prefixes of 1024 tokens or more in 128-token
 * blocks; a repeat of the same prefix on the same model reads them.
 */
static int64_t cached_tokens(struct sim *sim, const struct chat_request *chat)
{
    int64_t prefix_tokens;
    uint64_t hash;
    bool seen;

    if (chat->nmessages < 2)
        return 0;

    prefix_tokens = tokens_prompt(chat->messages, chat->nmessages - 1);
    hash = prefix_hash(chat);
    seen = util_set_has(&sim->prompt_cache, hash);
    util_set_add(&sim->prompt_cache, hash);

    if (!seen || prefix_tokens < SIM_CACHE_MIN_TOKENS)
        return 0;
    return prefix_tokens / SIM_CACHE_BLOCK * SIM_CACHE_BLOCK;
}

static char *format_fingerprint(const char *model)
{
    uint64_t hash = util_hash(UTIL_FNV_SEED, model, strlen(model));
    char buf[32];

    snprintf(buf, sizeof(buf), "fp_%010llx",
             (unsigned long long)(hash & UINT64_C(0xffffffffff)));
    return util_xstrndup(buf, strlen(buf));
}

static char *format_id(const char *prefix, uint64_t n, bool hex)
{
    char buf[64];

    if (hex) {
        uint64_t state = n;
        uint64_t a = util_mix(&state), b = util_mix(&state);

        snprintf(buf, sizeof(buf), "%s%016llx%016llx", prefix,
                 (unsigned long long)a, (unsigned long long)b);
    } else {
        snprintf(buf, sizeof(buf), "%s%llu", prefix, (unsigned long long)n);
    }
    return util_xstrndup(buf, strlen(buf));
}

static char *answer_text(struct sim *sim, const struct chat_request *chat,
                         struct answer *answer, size_t *len)
{
    const char *recorded = NULL;

    if (sim->replay != NULL) {
        recorded = replay_find(sim->replay, chat->model, chat->last_user,
                               chat->last_user_len, len);
        answer->replay = recorded ? ANSWER_REPLAY_HIT : ANSWER_REPLAY_MISS;
    }
    if (recorded != NULL)
        return util_xstrndup(recorded, *len);
    return answer_default_text(chat->last_user, chat->last_user_len,
                               chat->model, len);
}

/*
 * Reasoning tokens (2 per answer token) sit inside completion_tokens,
 * so a reasoning model's visible answer gets a third of the limit and
 * completion_tokens never exceeds max_completion_tokens.
 */
static void build_answer(struct sim *sim, const struct chat_request *chat,
                         struct answer *answer)
{
    bool reasoning = sim_is_reasoning(sim, chat->model);
    int64_t limit = chat->limit;
    uint64_t n = ++sim->next_id;
    const char *model = sim_snapshot_for(sim, chat->model);
    size_t len;
    char *text;

    answer->id = format_id("chatcmpl-", n, false);
    answer->request_id = format_id("req_", n, true);
    answer->model = util_xstrndup(model, strlen(model));
    answer->fingerprint = format_fingerprint(model);
    answer->created = sim_created(sim);

    if (reasoning && limit >= 0)
        limit /= 3;
    text = answer_text(sim, chat, answer, &len);
    answer_set_text(answer, text, len, limit, reasoning);

    answer->prompt_tokens = tokens_prompt(chat->messages, chat->nmessages);
    answer->cached_tokens = cached_tokens(sim, chat);
}

static void start_call(struct sim *sim, struct evhttp_request *req,
                       const struct chat_request *chat)
{
    struct call *call = call_new(sim, req);

    call->fault = chat->fault;
    call->stream = chat->stream;
    call->include_usage = chat->include_usage;
    sim_latency_for(sim, chat->model, &call->ttft_ms, &call->per_token_ms);

    /* Refused calls get ids and a record but no answer or cache entry. */
    if (chat->fault == FAULT_429 || chat->fault == FAULT_500 ||
        chat->fault == FAULT_503 ||
        (chat->fault == FAULT_MIDSTREAM && !chat->stream)) {
        const char *model = sim_snapshot_for(sim, chat->model);
        uint64_t n = ++sim->next_id;

        call->answer.model = util_xstrndup(model, strlen(model));
        call->answer.request_id = format_id("req_", n, true);
    } else {
        build_answer(sim, chat, &call->answer);
    }
    call_begin(call);
}

void chat_handle(struct sim *sim, struct evhttp_request *req)
{
    struct chat_request chat = {0};
    struct rejection rej = {0};

    if (check_request(sim, req, &chat, &rej) < 0) {
        server_send_error(req, rej.status, rej.type, rej.message,
                          rej.param[0] ? rej.param : NULL, rej.code);
        goto out_free;
    }
    start_call(sim, req, &chat);

out_free:
    free(chat.last_user);
    json_object_put(chat.body);
}
