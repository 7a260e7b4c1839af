/*
 * POST /v1/messages, Anthropic's Messages API: checks the headers and
 * body as Anthropic does (its 400/404/413 in Anthropic's error shape),
 * resolves a sim:tool= request against the request's tools, and builds
 * the answer. The system prompt counts as one more message.
 */
#include "sim_surfaces.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "sim_build.h"
#include "sim_server.h"
#include "sim_wire.h"

/* Anthropic's standard request size limit. */
#define MESSAGES_MAX_BODY (32u * 1024 * 1024)

struct messages_rejection {
    int status;
    const char *type;
    char message[256];
};

struct messages_request {
    struct json_object *body;
    const char *model;
    struct json_object *messages;
    struct json_object *system; /* NULL when absent */
    struct json_object *tools;  /* NULL when absent */
    int64_t max_tokens;
    bool stream;
};

static int reject(struct messages_rejection *rej, int status, const char *fmt,
                  ...)
{
    va_list ap;

    rej->status = status;
    rej->type = status == 413   ? "request_too_large"
                : status == 404 ? "not_found_error"
                                : "invalid_request_error";
    va_start(ap, fmt);
    vsnprintf(rej->message, sizeof(rej->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int check_headers(struct evhttp_request *req,
                         struct messages_rejection *rej)
{
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    struct evbuffer *body = evhttp_request_get_input_buffer(req);

    if (evhttp_find_header(headers, "anthropic-version") == NULL)
        return reject(rej, 400, "anthropic-version: header is required");
    if (evbuffer_get_length(body) > MESSAGES_MAX_BODY)
        return reject(rej, 413,
                      "Request exceeds the maximum allowed number "
                      "of bytes.");
    return 0;
}

static int check_message(struct json_object *msg, size_t i,
                         struct messages_rejection *rej)
{
    struct json_object *role, *content;
    const char *name;

    if (!json_object_is_type(msg, json_type_object))
        return reject(rej, 400,
                      "messages.%zu: Input should be a valid dictionary", i);
    role = util_member(msg, "role");
    name = json_object_is_type(role, json_type_string)
               ? json_object_get_string(role)
               : "";
    if (strcmp(name, "user") != 0 && strcmp(name, "assistant") != 0)
        return reject(rej, 400,
                      "messages.%zu.role: Input should be 'user' or "
                      "'assistant'",
                      i);
    content = util_member(msg, "content");
    if (content == NULL)
        return reject(rej, 400, "messages.%zu.content: Field required", i);
    if (!json_object_is_type(content, json_type_string) &&
        !json_object_is_type(content, json_type_array))
        return reject(rej, 400,
                      "messages.%zu.content: Input should be a valid list", i);
    return 0;
}

static int check_messages(struct messages_request *mr,
                          struct messages_rejection *rej)
{
    size_t n;

    mr->messages = util_member(mr->body, "messages");
    if (mr->messages == NULL)
        return reject(rej, 400, "messages: Field required");
    if (!json_object_is_type(mr->messages, json_type_array))
        return reject(rej, 400, "messages: Input should be a valid list");
    n = json_object_array_length(mr->messages);
    if (n == 0)
        return reject(rej, 400, "messages: at least one message is required");
    for (size_t i = 0; i < n; i++) {
        if (check_message(json_object_array_get_idx(mr->messages, i), i, rej) <
            0)
            return -EINVAL;
    }
    return 0;
}

static int check_max_tokens(struct messages_request *mr,
                            struct messages_rejection *rej)
{
    struct json_object *value = util_member(mr->body, "max_tokens");

    if (value == NULL)
        return reject(rej, 400, "max_tokens: Field required");
    if (!json_object_is_type(value, json_type_int))
        return reject(rej, 400, "max_tokens: Input should be a valid integer");
    mr->max_tokens = json_object_get_int64(value);
    if (mr->max_tokens < 1)
        return reject(rej, 400,
                      "max_tokens: Input should be greater than or "
                      "equal to 1");
    return 0;
}

static int check_options(struct messages_request *mr,
                         struct messages_rejection *rej)
{
    struct json_object *stream = util_member(mr->body, "stream");

    if (stream != NULL && !json_object_is_type(stream, json_type_boolean))
        return reject(rej, 400, "stream: Input should be a valid boolean");
    mr->stream = stream != NULL && json_object_get_boolean(stream);

    mr->system = util_member(mr->body, "system");
    if (mr->system != NULL &&
        !json_object_is_type(mr->system, json_type_string) &&
        !json_object_is_type(mr->system, json_type_array))
        return reject(rej, 400, "system: Input should be a valid list");

    mr->tools = util_member(mr->body, "tools");
    if (mr->tools != NULL && !json_object_is_type(mr->tools, json_type_array))
        return reject(rej, 400, "tools: Input should be a valid list");
    return 0;
}

static int check_body(struct sim *sim, struct messages_request *mr,
                      struct messages_rejection *rej)
{
    struct json_object *model = util_member(mr->body, "model");

    if (model == NULL)
        return reject(rej, 400, "model: Field required");
    if (!json_object_is_type(model, json_type_string) ||
        json_object_get_string_len(model) == 0)
        return reject(rej, 400, "model: Input should be a valid string");
    mr->model = json_object_get_string(model);

    if (check_messages(mr, rej) < 0 || check_max_tokens(mr, rej) < 0 ||
        check_options(mr, rej) < 0)
        return -EINVAL;
    if (!sim_knows_model(sim, mr->model))
        return reject(rej, 404, "model: %.100s", mr->model);
    return 0;
}

static int check_request(struct sim *sim, struct evhttp_request *req,
                         struct messages_request *mr,
                         struct messages_rejection *rej)
{
    if (check_headers(req, rej) < 0)
        return -EINVAL;
    if (build_parse_body(req, &mr->body) < 0)
        return reject(rej, 400,
                      "There was an issue with the formatting of "
                      "your request: the body is not valid JSON.");
    return check_body(sim, mr, rej);
}

/* The messages as the token rule sees them: system first, if any. */
static struct json_object *counted_messages(const struct messages_request *mr)
{
    struct json_object *list = json_object_new_array();
    size_t n = json_object_array_length(mr->messages);

    if (mr->system != NULL) {
        struct json_object *system = json_object_new_object();

        json_object_object_add(system, "role",
                               json_object_new_string("system"));
        json_object_object_add(system, "content", json_object_get(mr->system));
        json_object_array_add(list, system);
    }
    for (size_t i = 0; i < n; i++)
        json_object_array_add(
            list, json_object_get(json_object_array_get_idx(mr->messages, i)));
    return list;
}

/* The tool sim:tool= names, when the request offers a tool by that name. */
static const char *find_tool(const struct messages_request *mr,
                             const char *wanted)
{
    size_t n = mr->tools ? json_object_array_length(mr->tools) : 0;

    for (size_t i = 0; i < n && wanted[0] != '\0'; i++) {
        struct json_object *name =
            util_member(json_object_array_get_idx(mr->tools, i), "name");

        if (json_object_is_type(name, json_type_string) &&
            strcmp(json_object_get_string(name), wanted) == 0)
            return json_object_get_string(name);
    }
    return NULL;
}

static void fill_ask(struct sim *sim, const struct messages_request *mr,
                     struct ask *ask)
{
    ask->model = mr->model;
    ask->answer_model = sim_snapshot_for(sim, mr->model);
    ask->messages = counted_messages(mr);
    ask->nmessages = json_object_array_length(ask->messages);
    ask->counted = -1;
    ask->limit = mr->max_tokens;
    ask->stream = mr->stream;
    build_last_user(ask);
    ask->tool = find_tool(mr, ask->dir.tool);
}

void messages_handle(struct sim *sim, struct evhttp_request *req)
{
    struct messages_request mr = {0};
    struct messages_rejection rej = {0};
    struct ask ask = {0};
    const char *name;
    size_t len;

    if (check_request(sim, req, &mr, &rej) < 0)
        goto out_reject;
    fill_ask(sim, &mr, &ask);
    if (build_pick_fault(req, &ask, &name, &len) < 0) {
        reject(&rej, 400, "Unknown simulator fault '%.*s'.",
               (int)(len > 64 ? 64 : len), name);
        goto out_reject;
    }

    call_begin(build_call(sim, req, &ask, &wire_messages_ops, "msg_", true));
    goto out_free;

out_reject:
    server_send_anthropic_error(sim, req, rej.status, rej.type, rej.message);
out_free:
    json_object_put(ask.messages);
    ask_free(&ask);
    json_object_put(mr.body);
}
