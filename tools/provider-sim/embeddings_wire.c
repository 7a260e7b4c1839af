/*
 * Embeddings on the wire: a plain list object whose usage has only
 * prompt_tokens and total_tokens. There is no stream; a stream fault
 * (cut, malformed) bends the plain body as for chat.
 */
#include "sim_wire.h"

#include <event2/keyvalq_struct.h>

static struct json_object *usage_json(struct call *call)
{
    struct json_object *usage = json_object_new_object();
    int64_t tokens = call->answer.prompt_tokens;

    json_object_object_add(usage, "prompt_tokens",
                           json_object_new_int64(tokens));
    json_object_object_add(usage, "total_tokens",
                           json_object_new_int64(tokens));
    return usage;
}

static struct json_object *plain_json(struct call *call)
{
    struct json_object *obj = json_object_new_object();

    json_object_object_add(obj, "object", json_object_new_string("list"));
    json_object_object_add(obj, "data", json_object_get(call->payload));
    json_object_object_add(obj, "model",
                           json_object_new_string(call->answer.model));
    json_object_object_add(obj, "usage", usage_json(call));
    return obj;
}

/* Embeddings never stream: the handler never sets call->stream. */
static void no_plan(struct call *call)
{
}

static void no_render(struct call *call, size_t step, struct evbuffer *out)
{
}

static bool no_stream_error(struct call *call, struct evbuffer *out)
{
    return false;
}

static bool has_usage(struct call *call)
{
    return true;
}

static void embeddings_headers(struct call *call)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(call->req);

    evhttp_add_header(headers, "x-request-id", call->answer.request_id);
    if (call->ops->surface == SURFACE_AZURE_EMBEDDINGS)
        evhttp_add_header(headers, "apim-request-id", call->answer.request_id);
}

#define EMBEDDINGS_OPS(SURFACE)                                                \
    {                                                                          \
        .surface = SURFACE, .add_headers = embeddings_headers,                 \
        .plain_json = plain_json, .plan = no_plan, .render = no_render,        \
        .stream_error = no_stream_error, .refuse = wire_openai_refuse,         \
        .usage_json = usage_json, .stream_has_usage = has_usage,               \
    }

const struct call_ops wire_embeddings_ops = EMBEDDINGS_OPS(SURFACE_EMBEDDINGS);
const struct call_ops wire_azure_embeddings_ops =
    EMBEDDINGS_OPS(SURFACE_AZURE_EMBEDDINGS);
