/*
 * Usage extraction for OpenAI-shaped answers. Explicit nulls are common
 * from SDKs and compatible servers, so every field is read as optional.
 */
#include "upstream/openai.h"

#include "upstream/usage.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

static struct json_object *member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (obj != NULL && json_object_is_type(obj, json_type_object))
        json_object_object_get_ex(obj, key, &v);
    return v;
}

int openai_read_usage(struct json_object *u, usage_t *usage)
{
    struct json_object *pd, *cd, *v;
    bool ok = true;

    memset(usage, 0, sizeof(*usage));
    if (u == NULL || !json_object_is_type(u, json_type_object))
        return -EINVAL;
    /* The totals are what the bill is made of: null or absent is not 0. */
    if (!json_object_object_get_ex(u, "prompt_tokens", &v) ||
        !json_object_is_type(v, json_type_int) ||
        !json_object_object_get_ex(u, "completion_tokens", &v) ||
        !json_object_is_type(v, json_type_int))
        return -EINVAL;

    pd = member(u, "prompt_tokens_details");
    cd = member(u, "completion_tokens_details");
    /* A count past USAGE_MAX_TOKENS is no real call: it would only break
     * the sums every report makes. */
    ok &= usage_read_count(u, "prompt_tokens", &usage->input_tokens) == 0;
    ok &= usage_read_count(u, "completion_tokens", &usage->output_tokens) == 0;
    ok &= usage_read_count(pd, "cached_tokens", &usage->cached_tokens) == 0;
    ok &= usage_read_count(pd, "cache_write_tokens",
                           &usage->cache_write_tokens) == 0;
    ok &= usage_read_count(pd, "audio_tokens", &usage->audio_in_tokens) == 0;
    ok &=
        usage_read_count(cd, "reasoning_tokens", &usage->reasoning_tokens) == 0;
    ok &= usage_read_count(cd, "audio_tokens", &usage->audio_out_tokens) == 0;

    if (!ok) {
        memset(usage, 0, sizeof(*usage));
        return -EINVAL;
    }
    usage->present = true;
    return 0;
}

bool openai_has_answer(struct json_object *completion)
{
    struct json_object *choices = member(completion, "choices");
    size_t n;

    if (choices == NULL || !json_object_is_type(choices, json_type_array))
        return false;
    n = json_object_array_length(choices);
    for (size_t i = 0; i < n; i++) {
        struct json_object *msg =
            member(json_object_array_get_idx(choices, i), "message");
        struct json_object *content = member(msg, "content");
        struct json_object *calls = member(msg, "tool_calls");

        if (content != NULL && json_object_is_type(content, json_type_string) &&
            json_object_get_string_len(content) > 0)
            return true;
        if (calls != NULL && json_object_is_type(calls, json_type_array) &&
            json_object_array_length(calls) > 0)
            return true;
    }
    return false;
}
