/*
 * POST /v1/embeddings (and an Azure deployment's embeddings): checks
 * the input as OpenAI does, counts its tokens by the simulator's rule
 * (the pieces of each string, the length of each token array) and
 * answers with short deterministic vectors.
 */
#include "sim_surfaces.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "sim_build.h"
#include "sim_server.h"
#include "sim_tokens.h"
#include "sim_util.h"
#include "sim_wire.h"

#define EMBEDDING_DEFAULT_DIMS 8
#define EMBEDDING_MAX_DIMS 3072

struct embeddings_request {
    struct json_object *body;
    const char *model;          /* the model to answer as */
    struct json_object *inputs; /* an array, owned */
    int64_t dims;
    bool base64;
    int64_t tokens;
};

static bool is_token_array(struct json_object *value)
{
    size_t n;

    if (!json_object_is_type(value, json_type_array))
        return false;
    n = json_object_array_length(value);
    for (size_t i = 0; i < n; i++) {
        if (!json_object_is_type(json_object_array_get_idx(value, i),
                                 json_type_int))
            return false;
    }
    return n > 0;
}

/* Tokens of one input: a non-empty string or a token array; -1 if
 * it is neither. */
static int64_t input_tokens(struct json_object *input)
{
    size_t len;

    if (json_object_is_type(input, json_type_string)) {
        len = (size_t)json_object_get_string_len(input);
        return len > 0 ? tokens_count(json_object_get_string(input), len) : -1;
    }
    if (is_token_array(input))
        return (int64_t)json_object_array_length(input);
    return -1;
}

/* One string or token array is a batch of one; an array of ints is a
 * single token array, not a batch of numbers. */
static struct json_object *input_list(struct json_object *input)
{
    struct json_object *list;

    if (json_object_is_type(input, json_type_array) && !is_token_array(input))
        return json_object_get(input);
    list = json_object_new_array();
    json_object_array_add(list, json_object_get(input));
    return list;
}

static int check_input(struct embeddings_request *er, struct sim_rejection *rej)
{
    struct json_object *input = util_member(er->body, "input");
    size_t n;

    if (input == NULL)
        return util_reject(rej, "input", "missing_required_parameter",
                           "Missing required parameter: 'input'.");
    er->inputs = input_list(input);
    n = json_object_array_length(er->inputs);
    if (n == 0)
        return util_reject(rej, "input", "invalid_value",
                           "'$.input' is invalid. Please check the API "
                           "reference: https://platform.openai.com/docs/api-"
                           "reference.");
    for (size_t i = 0; i < n; i++) {
        int64_t tokens = input_tokens(json_object_array_get_idx(er->inputs, i));

        if (tokens < 0)
            return util_reject(rej, "input", "invalid_value",
                               "'$.input' is invalid. Please check the API "
                               "reference: https://platform.openai.com/docs/"
                               "api-reference.");
        er->tokens += tokens;
    }
    return 0;
}

static int check_format(struct embeddings_request *er,
                        struct sim_rejection *rej)
{
    struct json_object *dims = util_member(er->body, "dimensions");
    struct json_object *format = util_member(er->body, "encoding_format");
    const char *name = format ? json_object_get_string(format) : "float";

    er->dims = EMBEDDING_DEFAULT_DIMS;
    if (dims != NULL) {
        if (!json_object_is_type(dims, json_type_int) ||
            json_object_get_int64(dims) < 1 ||
            json_object_get_int64(dims) > EMBEDDING_MAX_DIMS)
            return util_reject(rej, "dimensions", "invalid_value",
                               "Invalid 'dimensions': expected an integer from "
                               "1 to %d.",
                               EMBEDDING_MAX_DIMS);
        er->dims = json_object_get_int64(dims);
    }
    if (strcmp(name, "float") != 0 && strcmp(name, "base64") != 0)
        return util_reject(rej, "encoding_format", "invalid_value",
                           "Invalid 'encoding_format': expected 'float' or "
                           "'base64'.");
    er->base64 = strcmp(name, "base64") == 0;
    return 0;
}

static int check_request(struct sim *sim, struct embeddings_request *er,
                         const char *deployment_model,
                         struct sim_rejection *rej)
{
    struct json_object *model = util_member(er->body, "model");

    er->model = deployment_model;
    if (er->model == NULL) {
        if (model == NULL || !json_object_is_type(model, json_type_string) ||
            json_object_get_string_len(model) == 0)
            return util_reject(rej, "model", "missing_required_parameter",
                               "Missing required parameter: 'model'.");
        er->model = json_object_get_string(model);
    }
    if (check_input(er, rej) < 0 || check_format(er, rej) < 0)
        return -EINVAL;
    if (deployment_model == NULL && !sim_knows_model(sim, er->model)) {
        util_reject(rej, "model", "model_not_found",
                    "The model `%.100s` does not exist or you do not have "
                    "access to it.",
                    er->model);
        rej->status = 404;
        return -ENOENT;
    }
    return 0;
}

/* Multiples of 1/1024 print exactly and stay within [-1, 1]. */
static double component(uint64_t *state)
{
    return (double)((int64_t)(util_mix(state) % 2049) - 1024) / 1024.0;
}

static struct json_object *vector_json(const struct embeddings_request *er,
                                       struct json_object *input)
{
    size_t len;
    const char *json =
        json_object_to_json_string_length(input, SERVER_JSON_FLAGS, &len);
    uint64_t state = util_hash(UTIL_FNV_SEED, er->model, strlen(er->model));
    struct json_object *vector;
    float *packed;
    char *b64;

    state = util_hash(state, json, len);
    if (!er->base64) {
        vector = json_object_new_array();
        for (int64_t i = 0; i < er->dims; i++)
            json_object_array_add(vector,
                                  json_object_new_double(component(&state)));
        return vector;
    }
    packed = util_xcalloc((size_t)er->dims, sizeof(*packed));
    for (int64_t i = 0; i < er->dims; i++)
        packed[i] = (float)component(&state);
    b64 = util_base64((const unsigned char *)packed,
                      (size_t)er->dims * sizeof(*packed));
    vector = json_object_new_string(b64);
    free(b64);
    free(packed);
    return vector;
}

static struct json_object *data_json(const struct embeddings_request *er)
{
    struct json_object *data = json_object_new_array();
    size_t n = json_object_array_length(er->inputs);

    for (size_t i = 0; i < n; i++) {
        struct json_object *item = json_object_new_object();

        json_object_object_add(item, "object",
                               json_object_new_string("embedding"));
        json_object_object_add(item, "index",
                               json_object_new_int64((int64_t)i));
        json_object_object_add(
            item, "embedding",
            vector_json(er, json_object_array_get_idx(er->inputs, i)));
        json_object_array_add(data, item);
    }
    return data;
}

/* Faults and directives are read from the last string input. */
static void fill_ask(const struct embeddings_request *er, struct ask *ask)
{
    size_t n = json_object_array_length(er->inputs);
    struct json_object *last = json_object_array_get_idx(er->inputs, n - 1);

    ask->model = er->model;
    ask->answer_model = er->model;
    ask->counted = er->tokens;
    ask->limit = -1;
    ask->no_output = true;
    if (json_object_is_type(last, json_type_string))
        ask->last_user =
            util_xstrndup(json_object_get_string(last),
                          (size_t)json_object_get_string_len(last));
    else
        ask->last_user = util_xstrndup("", 0);
    ask->last_user_len = strlen(ask->last_user);
    build_directives(ask);
}

void embeddings_handle(struct sim *sim, struct evhttp_request *req,
                       const char *deployment_model)
{
    struct embeddings_request er = {0};
    struct sim_rejection rej = {0};
    struct ask ask = {0};
    const struct call_ops *ops =
        deployment_model ? &wire_azure_embeddings_ops : &wire_embeddings_ops;
    struct call *call;
    const char *name;
    size_t len;

    if (build_parse_body(req, &er.body) < 0) {
        util_reject(&rej, NULL, NULL,
                    "We could not parse the JSON body of your "
                    "request. The OpenAI API expects a JSON "
                    "payload, but what was sent was not valid "
                    "JSON.");
        goto out_reject;
    }
    if (check_request(sim, &er, deployment_model, &rej) < 0)
        goto out_reject;
    fill_ask(&er, &ask);
    if (build_pick_fault(req, &ask, &name, &len) < 0) {
        util_reject(&rej, NULL, "unknown_sim_fault",
                    "Unknown simulator fault '%.*s'.",
                    (int)(len > 64 ? 64 : len), name);
        goto out_reject;
    }

    call = build_call(sim, req, &ask, ops, "emb-", false);
    call->payload = data_json(&er);
    call_begin(call);
    goto out_free;

out_reject:
    server_send_error(req, rej.status, "invalid_request_error", rej.message,
                      rej.param[0] ? rej.param : NULL, rej.code);
out_free:
    ask_free(&ask);
    json_object_put(er.inputs);
    json_object_put(er.body);
}
