/*
 * Which encoding a model uses, estimates for models with no public
 * tokenizer, and the token count of a whole OpenAI chat request with the
 * per-message overhead of OpenAI's cookbook (num_tokens_from_messages).
 */
#include "tokens/tokens_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "openai/gpt-4o" and "ft:gpt-4o:org::id" name gpt-4o. */
static const char *model_base(const char *model)
{
    const char *slash = strrchr(model, '/');

    if (slash != NULL)
        model = slash + 1;
    if (has_prefix(model, "ft:"))
        model += 3;
    return model;
}

/* tiktoken model.py (v0.14.0), most specific prefixes first. */
static const char *const o200k_prefixes[] = {
    "gpt-5", "gpt-4.5", "gpt-4.1", "gpt-4o",  "chatgpt-4o",
    "o1",    "o3",      "o4",      "gpt-oss", NULL,
};
static const char *const cl100k_prefixes[] = {
    "gpt-4",       "gpt-3.5",     "gpt-35", "text-embedding-3-",
    "davinci-002", "babbage-002", NULL,
};

static bool prefix_in(const char *model, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (has_prefix(model, list[i]))
            return true;
    return false;
}

bool tokens_model_kind(const char *model, tokens_kind_t *kind)
{
    const char *base = model_base(model == NULL ? "" : model);

    *kind = TOKENS_O200K;
    if (prefix_in(base, o200k_prefixes))
        return true;
    if (prefix_in(base, cl100k_prefixes) ||
        strcmp(base, "text-embedding-ada-002") == 0) {
        *kind = TOKENS_CL100K;
        return true;
    }
    return false;
}

int64_t tokens_estimate(const char *model, int64_t count)
{
    const char *base = model_base(model == NULL ? "" : model);
    int64_t percent = 100;

    if (has_prefix(base, "claude") || has_prefix(base, "anthropic."))
        percent = 125;
    else if (has_prefix(base, "gemini") || has_prefix(base, "gemma"))
        percent = 110;
    return (count * percent + 99) / 100;
}

/* A JSON string's tokens; bytes that are not UTF-8 count as U+FFFD. */
static int64_t string_tokens(const tokens_encoding_t *enc,
                             struct json_object *str)
{
    const uint8_t *s = (const uint8_t *)json_object_get_string(str);
    size_t n = (size_t)json_object_get_string_len(str);
    size_t valid = utf8_valid_prefix(s, n);
    uint8_t *fixed;
    size_t len = 0;
    int64_t count;

    if (valid == n)
        return tokens_count(enc, (const char *)s, n);
    fixed = malloc(n * 3 + 1);
    if (fixed == NULL)
        abort();
    for (size_t p = 0; p < n;) {
        size_t ok = utf8_valid_prefix(s + p, n - p);

        memcpy(fixed + len, s + p, ok);
        len += ok;
        p += ok;
        if (p == n)
            break;
        memcpy(fixed + len, "\xEF\xBF\xBD", 3);
        len += 3;
        /* An encoded surrogate (ED A0..BF xx) is one lone surrogate. */
        p += s[p] == 0xED && p + 2 < n && s[p + 1] >= 0xA0 ? 3 : 1;
    }
    count = tokens_count(enc, (const char *)fixed, len);
    free(fixed);
    return count;
}

static const char *str_field(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int64_t field_tokens(const tokens_encoding_t *enc,
                            struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return 0;
    return string_tokens(enc, v);
}

/* Text parts of an array content count; images and audio do not. */
static int64_t parts_tokens(const tokens_encoding_t *enc,
                            struct json_object *parts, tokens_chat_t *out)
{
    int64_t total = 0;

    for (size_t i = 0; i < json_object_array_length(parts); i++) {
        struct json_object *part = json_object_array_get_idx(parts, i);
        const char *type = str_field(part, "type");

        if (type != NULL && strcmp(type, "text") == 0)
            total += field_tokens(enc, part, "text");
        else
            out->estimated = true;
    }
    return total;
}

/* Tool calls an assistant made: their names and argument texts. */
static int64_t calls_tokens(const tokens_encoding_t *enc,
                            struct json_object *calls, tokens_chat_t *out)
{
    int64_t total = 0;

    out->estimated = true;
    for (size_t i = 0; i < json_object_array_length(calls); i++) {
        struct json_object *call = json_object_array_get_idx(calls, i);
        struct json_object *fn = NULL;

        if (!json_object_object_get_ex(call, "function", &fn))
            continue;
        total += field_tokens(enc, fn, "name");
        total += field_tokens(enc, fn, "arguments");
    }
    return total;
}

static void message_count(const tokens_encoding_t *enc, struct json_object *msg,
                          int per_name, tokens_chat_t *out)
{
    json_object_object_foreach(msg, key, val)
    {
        json_type type = json_object_get_type(val);

        if (type == json_type_string) {
            out->text += string_tokens(enc, val);
            if (strcmp(key, "name") == 0)
                out->overhead += per_name;
        } else if (type == json_type_array && strcmp(key, "content") == 0) {
            out->text += parts_tokens(enc, val, out);
        } else if (type == json_type_array && strcmp(key, "tool_calls") == 0) {
            out->text += calls_tokens(enc, val, out);
        } else if (type != json_type_null) {
            out->estimated = true;
        }
    }
}

/* The cookbook's num_tokens_for_tools constants for the model family. */
typedef struct tool_costs {
    int func_init, prop_init, prop_key, enum_init, enum_item, func_end;
} tool_costs_t;

/* "text" without one trailing period, counted. */
static int64_t trimmed_tokens(const tokens_encoding_t *enc, const char *a,
                              const char *b, const char *c)
{
    char *line = NULL;
    int64_t count = 0;
    int n = c != NULL ? asprintf(&line, "%s:%s:%s", a, b, c)
                      : asprintf(&line, "%s:%s", a, b);

    if (n < 0)
        abort();
    if (n > 0 && line[n - 1] == '.')
        line[--n] = '\0';
    count = tokens_count(enc, line, (size_t)n);
    free(line);
    return count;
}

static int64_t property_tokens(const tokens_encoding_t *enc,
                               const tool_costs_t *tc, const char *name,
                               struct json_object *prop)
{
    struct json_object *values = NULL;
    const char *type = str_field(prop, "type");
    const char *desc = str_field(prop, "description");
    int64_t total = tc->prop_key;

    if (json_object_object_get_ex(prop, "enum", &values) &&
        json_object_is_type(values, json_type_array)) {
        total += tc->enum_init;
        for (size_t i = 0; i < json_object_array_length(values); i++) {
            struct json_object *v = json_object_array_get_idx(values, i);

            total += tc->enum_item;
            if (json_object_is_type(v, json_type_string))
                total += string_tokens(enc, v);
        }
    }
    return total +
           trimmed_tokens(enc, name, type ? type : "", desc ? desc : "");
}

static int64_t function_tokens(const tokens_encoding_t *enc,
                               const tool_costs_t *tc, struct json_object *fn)
{
    struct json_object *params = NULL;
    struct json_object *props = NULL;
    const char *name = str_field(fn, "name");
    const char *desc = str_field(fn, "description");
    int64_t total = tc->func_init;

    total += trimmed_tokens(enc, name ? name : "", desc ? desc : "", NULL);
    if (!json_object_object_get_ex(fn, "parameters", &params) ||
        !json_object_object_get_ex(params, "properties", &props) ||
        !json_object_is_type(props, json_type_object) ||
        json_object_object_length(props) == 0)
        return total;
    total += tc->prop_init;
    json_object_object_foreach(props, key, prop) total +=
        property_tokens(enc, tc, key, prop);
    return total;
}

static int64_t tools_tokens(const tokens_encoding_t *enc,
                            struct json_object *tools)
{
    tool_costs_t tc = {7, 3, 3, -3, 3, 12};
    int64_t total = 0;

    if (enc->kind == TOKENS_CL100K)
        tc.func_init = 10;
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        struct json_object *tool = json_object_array_get_idx(tools, i);
        struct json_object *fn = NULL;

        if (json_object_object_get_ex(tool, "function", &fn))
            total += function_tokens(enc, &tc, fn);
    }
    return total > 0 ? total + tc.func_end : 0;
}

int tokens_count_chat(const tokens_encoding_t *enc, const char *model,
                      struct json_object *req, tokens_chat_t *out)
{
    struct json_object *msgs = NULL;
    struct json_object *tools = NULL;
    const char *base = model_base(model == NULL ? "" : model);
    bool old = has_prefix(base, "gpt-3.5-turbo-0301");
    tokens_kind_t kind;

    memset(out, 0, sizeof(*out));
    if (!json_object_object_get_ex(req, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array))
        return -EINVAL;
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        struct json_object *msg = json_object_array_get_idx(msgs, i);

        out->overhead += old ? 4 : 3;
        out->n_messages++;
        if (json_object_is_type(msg, json_type_object))
            message_count(enc, msg, old ? -1 : 1, out);
    }
    out->overhead += 3; /* <|start|>assistant<|message|> */

    if (json_object_object_get_ex(req, "tools", &tools) &&
        json_object_is_type(tools, json_type_array)) {
        out->tools = tools_tokens(enc, tools);
        out->estimated = out->estimated || out->tools != 0;
    }
    out->total = out->text + out->overhead + out->tools;
    if (model != NULL && !tokens_model_kind(model, &kind)) {
        out->total = tokens_estimate(model, out->total);
        out->estimated = true;
    }
    return 0;
}
