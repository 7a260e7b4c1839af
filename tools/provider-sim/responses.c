/*
 * POST /v1/responses, OpenAI's Responses API: checks the request as
 * OpenAI does (400s in OpenAI's shape), turns `instructions` and
 * `input` (a string or items) into messages for the token rule, and
 * builds the answer.
 */
#include "sim_surfaces.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sim_build.h"
#include "sim_server.h"
#include "sim_wire.h"

/* OpenAI's floor for max_output_tokens. */
#define RESPONSES_MIN_OUTPUT 16

struct responses_request {
    struct json_object *body;
    const char *model;
    struct json_object *input;
    struct json_object *instructions; /* NULL when absent */
    int64_t limit;                    /* -1 when absent */
    bool stream;
};

static int check_string(struct json_object *value, const char *param,
                        struct sim_rejection *rej)
{
    if (json_object_is_type(value, json_type_string))
        return 0;
    return util_reject(rej, param, "invalid_type",
                       "Invalid type for '%s': expected a string.", param);
}

static int check_input(struct responses_request *rr, struct sim_rejection *rej)
{
    rr->input = util_member(rr->body, "input");
    if (rr->input == NULL)
        return util_reject(rej, "input", "missing_required_parameter",
                           "Missing required parameter: 'input'.");
    if (!json_object_is_type(rr->input, json_type_string) &&
        !json_object_is_type(rr->input, json_type_array))
        return util_reject(rej, "input", "invalid_type",
                           "Invalid type for 'input': expected a string or an "
                           "array of input items.");

    for (size_t i = 0; json_object_is_type(rr->input, json_type_array) &&
                       i < json_object_array_length(rr->input);
         i++) {
        if (!json_object_is_type(json_object_array_get_idx(rr->input, i),
                                 json_type_object))
            return util_reject(rej, "input", "invalid_type",
                               "Invalid type for 'input[%zu]': expected an "
                               "object.",
                               i);
    }
    return 0;
}

static int check_limit(struct responses_request *rr, struct sim_rejection *rej)
{
    struct json_object *value = util_member(rr->body, "max_output_tokens");

    rr->limit = -1;
    if (value == NULL)
        return 0;
    if (!json_object_is_type(value, json_type_int))
        return util_reject(rej, "max_output_tokens", "invalid_type",
                           "Invalid type for 'max_output_tokens': expected an "
                           "integer.");
    rr->limit = json_object_get_int64(value);
    if (rr->limit < RESPONSES_MIN_OUTPUT)
        return util_reject(rej, "max_output_tokens", "integer_below_min_value",
                           "Invalid 'max_output_tokens': integer below minimum "
                           "value. Expected a value >= %d, but got %lld "
                           "instead.",
                           RESPONSES_MIN_OUTPUT, (long long)rr->limit);
    return 0;
}

static int check_model(struct responses_request *rr, struct sim_rejection *rej)
{
    struct json_object *model = util_member(rr->body, "model");

    if (model != NULL && check_string(model, "model", rej) < 0)
        return -EINVAL;
    if (model == NULL || json_object_get_string_len(model) == 0)
        return util_reject(rej, "model", "missing_required_parameter",
                           "Missing required parameter: 'model'.");
    rr->model = json_object_get_string(model);
    return 0;
}

static int check_body(struct sim *sim, struct responses_request *rr,
                      struct sim_rejection *rej)
{
    struct json_object *stream = util_member(rr->body, "stream");

    if (check_model(rr, rej) < 0 || check_input(rr, rej) < 0 ||
        check_limit(rr, rej) < 0)
        return -EINVAL;

    rr->instructions = util_member(rr->body, "instructions");
    if (rr->instructions != NULL &&
        check_string(rr->instructions, "instructions", rej) < 0)
        return -EINVAL;
    if (stream != NULL && !json_object_is_type(stream, json_type_boolean))
        return util_reject(rej, "stream", "invalid_type",
                           "Invalid type for 'stream': expected a boolean.");
    rr->stream = stream != NULL && json_object_get_boolean(stream);

    if (!sim_knows_model(sim, rr->model)) {
        util_reject(rej, "model", "model_not_found",
                    "The model '%.100s' does not exist or you do not have "
                    "access to it.",
                    rr->model);
        rej->status = 404;
        return -ENOENT;
    }
    return 0;
}

static struct json_object *chat_message(const char *role,
                                        struct json_object *content)
{
    struct json_object *msg = json_object_new_object();

    json_object_object_add(msg, "role", json_object_new_string(role));
    json_object_object_add(msg, "content", content);
    return msg;
}

/* input_text and output_text parts become chat text parts. */
static struct json_object *chat_part(struct json_object *part)
{
    struct json_object *type = util_member(part, "type");
    const char *name = type ? json_object_get_string(type) : "";
    struct json_object *text;

    if (strcmp(name, "input_text") != 0 && strcmp(name, "output_text") != 0)
        return json_object_get(part);
    text = json_object_new_object();
    json_object_object_add(text, "type", json_object_new_string("text"));
    json_object_object_add(text, "text",
                           json_object_get(util_member(part, "text")));
    return text;
}

/* An item as the token rule sees it: a message keeps its role and its
 * content; anything else counts as a message with no text. */
static struct json_object *chat_item(struct json_object *item)
{
    struct json_object *role = util_member(item, "role");
    struct json_object *content = util_member(item, "content");
    struct json_object *parts;
    size_t n;

    if (!json_object_is_type(role, json_type_string))
        return json_object_new_object();
    if (!json_object_is_type(content, json_type_array))
        return chat_message(json_object_get_string(role),
                            json_object_get(content));

    parts = json_object_new_array();
    n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(parts,
                              chat_part(json_object_array_get_idx(content, i)));
    return chat_message(json_object_get_string(role), parts);
}

static struct json_object *counted_messages(const struct responses_request *rr)
{
    struct json_object *list = json_object_new_array();
    size_t n;

    if (rr->instructions != NULL)
        json_object_array_add(
            list, chat_message("system", json_object_get(rr->instructions)));
    if (json_object_is_type(rr->input, json_type_string)) {
        json_object_array_add(list,
                              chat_message("user", json_object_get(rr->input)));
        return list;
    }
    n = json_object_array_length(rr->input);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(
            list, chat_item(json_object_array_get_idx(rr->input, i)));
    return list;
}

/* What the response object echoes from the request. */
static struct json_object *echo_json(const struct responses_request *rr)
{
    struct json_object *echo = json_object_new_object();

    json_object_object_add(echo, "instructions",
                           json_object_get(rr->instructions));
    json_object_object_add(echo, "max_output_tokens",
                           rr->limit >= 0 ? json_object_new_int64(rr->limit)
                                          : NULL);
    return echo;
}

static void fill_ask(struct sim *sim, const struct responses_request *rr,
                     struct ask *ask)
{
    ask->model = rr->model;
    ask->answer_model = sim_snapshot_for(sim, rr->model);
    ask->messages = counted_messages(rr);
    ask->nmessages = json_object_array_length(ask->messages);
    ask->counted = -1;
    ask->limit = rr->limit;
    ask->stream = rr->stream;
    ask->prefix_cache = true;
    build_last_user(ask);
}

void responses_handle(struct sim *sim, struct evhttp_request *req)
{
    struct responses_request rr = {0};
    struct sim_rejection rej = {0};
    struct ask ask = {0};
    struct call *call;
    const char *name;
    size_t len;

    if (build_parse_body(req, &rr.body) < 0) {
        util_reject(&rej, NULL, NULL,
                    "We could not parse the JSON body of your "
                    "request. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid "
                    "JSON.");
        goto out_reject;
    }
    if (check_body(sim, &rr, &rej) < 0)
        goto out_reject;
    fill_ask(sim, &rr, &ask);
    if (build_pick_fault(req, &ask, &name, &len) < 0) {
        util_reject(&rej, NULL, "unknown_sim_fault",
                    "Unknown simulator fault '%.*s'.",
                    (int)(len > 64 ? 64 : len), name);
        goto out_reject;
    }

    call = build_call(sim, req, &ask, &wire_responses_ops, "resp_", true);
    call->payload = echo_json(&rr);
    call_begin(call);
    goto out_free;

out_reject:
    server_send_error(req, rej.status, "invalid_request_error", rej.message,
                      rej.param[0] ? rej.param : NULL, rej.code);
out_free:
    json_object_put(ask.messages);
    ask_free(&ask);
    json_object_put(rr.body);
}
