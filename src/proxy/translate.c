/*
 * OpenAI Chat <-> Anthropic Messages translation for routes that send an
 * OpenAI caller to an Anthropic model: request out, answer, stream and
 * errors back. The proxy calls it; it does no I/O of its own.
 *
 * Objects from the caller's request (strings, schemas, numbers) are shared
 * into the new tree by reference rather than copied: json-c keeps the text
 * a number was parsed from, so 0.70 goes upstream as 0.70, and the
 * caller's tree is never modified.
 */
#include "proxy/translate.h"

#include "upstream/usage.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define COUNT_MAX INT64_C(1000000000000)

typedef struct json_object json_t;

/* ---- JSON helpers ---------------------------------------------------- */

/* A member's value, NULL when absent or null: every field read here means
 * the same by both, so explicit nulls from callers are tolerated. */
static json_t *member(json_t *obj, const char *key)
{
    json_t *v;

    if (obj == NULL || !json_object_is_type(obj, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(obj, key, &v) ||
        json_object_is_type(v, json_type_null))
        return NULL;
    return v;
}

static bool is_type(json_t *v, json_type type)
{
    return v != NULL && json_object_is_type(v, type);
}

static const char *member_str(json_t *obj, const char *key)
{
    json_t *v = member(obj, key);

    return is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool streq(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

static void put(json_t *obj, const char *key, json_t *value)
{
    json_object_object_add(obj, key, value);
}

static void put_str(json_t *obj, const char *key, const char *value)
{
    json_object_object_add(obj, key, json_object_new_string(value));
}

static char *json_to_arena(arena_t *arena, json_t *obj, size_t *len)
{
    size_t n = 0;
    const char *text = json_object_to_json_string_length(obj, JSON_FLAGS, &n);

    if (text == NULL)
        die_oom();
    *len = n;
    return arena_strndup(arena, text, n);
}

/* Exactly one JSON value (spaces around it allowed), or NULL. */
static json_t *parse_json(const char *text, size_t len)
{
    json_tokener *tok;
    json_t *obj;
    size_t end;

    if (text == NULL || len > INT_MAX)
        return NULL;
    tok = json_tokener_new();
    if (tok == NULL)
        die_oom();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, text, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (obj != NULL && json_tokener_get_error(tok) != json_tokener_success)
        obj = NULL;
    json_tokener_free(tok);

    while (obj != NULL && end < len && strchr(" \t\r\n", text[end]) != NULL)
        end++;
    if (obj != NULL && end != len) {
        json_object_put(obj);
        obj = NULL;
    }
    return obj;
}

static bool is_blank(const char *text)
{
    return text[strspn(text, " \t\r\n\f\v")] == '\0';
}

/* ---- request: conversion state --------------------------------------- */

typedef struct conv {
    arena_t *arena;
    translate_request_t *out;
    const char *where; /* "messages[3]" while reading that message */
    json_t *system;    /* text blocks of every system message */
    json_t *messages;  /* Anthropic messages, roles merged */
} conv_t;

static int refuse(conv_t *c, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(conv_t *c, const char *param, const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    c->out->message = arena_strdup(c->arena, text);
    c->out->param = param ? arena_strdup(c->arena, param) : NULL;
    return -EINVAL;
}

/* ---- request: content blocks ----------------------------------------- */

/* Anthropic refuses text blocks that are empty or only whitespace; such a
 * block carries nothing, so it is left out. */
static void append_text(json_t *blocks, json_t *text, json_t *cache)
{
    json_t *block;

    if (is_blank(json_object_get_string(text)))
        return;
    block = json_object_new_object();
    put_str(block, "type", "text");
    put(block, "text", json_object_get(text));
    if (cache != NULL)
        put(block, "cache_control", json_object_get(cache));
    json_object_array_add(blocks, block);
}

/* A text part, or an assistant's refusal part read as its text. */
static int add_text_part(conv_t *c, json_t *part, const char *key,
                         json_t *blocks)
{
    json_t *text = member(part, key);

    if (!is_type(text, json_type_string))
        return refuse(c, c->where, "%s: a %s part needs a string \"%s\"",
                      c->where, key, key);
    append_text(blocks, text, member(part, "cache_control"));
    return 0;
}

static bool image_type_known(const char *type)
{
    static const char *const known[] = {"image/jpeg", "image/png", "image/gif",
                                        "image/webp"};

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(type, known[i]) == 0)
            return true;
    return false;
}

/* data:<type>;base64,<data> as a base64 source; NULL once refused. */
static json_t *data_source(conv_t *c, const char *url)
{
    const char *type = url + strlen("data:");
    const char *semi = strchr(type, ';');
    const char *media;
    json_t *source;

    if (semi == NULL || strncmp(semi, ";base64,", 8) != 0) {
        refuse(c, c->where,
               "%s: an image data URL must be base64, as in "
               "data:image/png;base64,...",
               c->where);
        return NULL;
    }
    media = arena_strndup(c->arena, type, (size_t)(semi - type));
    if (strcmp(media, "image/jpg") == 0)
        media = "image/jpeg";
    if (!image_type_known(media)) {
        refuse(
            c, c->where,
            "%s: image type \"%s\" is not supported (jpeg, png, gif or webp)",
            c->where, media);
        return NULL;
    }

    source = json_object_new_object();
    put_str(source, "type", "base64");
    put_str(source, "media_type", media);
    put_str(source, "data", semi + 8);
    return source;
}

static json_t *image_source(conv_t *c, const char *url)
{
    json_t *source;

    if (strncmp(url, "data:", 5) == 0)
        return data_source(c, url);
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        refuse(c, c->where,
               "%s: an image url must be http(s) or a base64 data URL",
               c->where);
        return NULL;
    }
    source = json_object_new_object();
    put_str(source, "type", "url");
    put_str(source, "url", url);
    return source;
}

static int add_image(conv_t *c, json_t *part, json_t *blocks)
{
    json_t *ref = member(part, "image_url");
    const char *url = is_type(ref, json_type_string)
                          ? json_object_get_string(ref)
                          : member_str(ref, "url");
    json_t *source, *block;

    if (url == NULL)
        return refuse(c, c->where, "%s: an image_url part needs a url",
                      c->where);
    source = image_source(c, url);
    if (source == NULL)
        return -EINVAL;

    block = json_object_new_object();
    put_str(block, "type", "image");
    put(block, "source", source);
    if (member(part, "cache_control") != NULL)
        put(block, "cache_control",
            json_object_get(member(part, "cache_control")));
    json_object_array_add(blocks, block);
    return 0;
}

static int add_part(conv_t *c, json_t *part, bool images, json_t *blocks)
{
    const char *type = member_str(part, "type");

    if (type == NULL)
        return refuse(c, c->where, "%s: a content part needs a type", c->where);
    if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0)
        return add_text_part(c, part, type, blocks);
    if (strcmp(type, "image_url") == 0 && images)
        return add_image(c, part, blocks);
    if (strcmp(type, "image_url") == 0)
        return refuse(c, c->where,
                      "%s: images are accepted only in user and tool messages",
                      c->where);
    return refuse(
        c, c->where,
        "%s: content parts of type \"%s\" are not supported by this model",
        c->where, type);
}

/* content: a string, an array of parts, or null (nothing). */
static int add_content(conv_t *c, json_t *content, bool images, json_t *blocks)
{
    if (content == NULL)
        return 0;
    if (is_type(content, json_type_string)) {
        append_text(blocks, content, NULL);
        return 0;
    }
    if (!is_type(content, json_type_array))
        return refuse(c, c->where,
                      "%s: content must be a string or an array of parts",
                      c->where);

    for (size_t j = 0; j < json_object_array_length(content); j++) {
        json_t *part = json_object_array_get_idx(content, j);
        int rc;

        if (!is_type(part, json_type_object))
            return refuse(c, c->where, "%s: a content part is not an object",
                          c->where);
        rc = add_part(c, part, images, blocks);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A lone text block without cache_control means the same as its string:
 * returns a new reference to the simpler of the two. */
static json_t *plain_content(json_t *blocks)
{
    json_t *block;

    if (json_object_array_length(blocks) != 1)
        return json_object_get(blocks);
    block = json_object_array_get_idx(blocks, 0);
    if (!streq(member_str(block, "type"), "text") ||
        member(block, "cache_control") != NULL)
        return json_object_get(blocks);
    return json_object_get(member(block, "text"));
}

/* ---- request: messages by role ----------------------------------------- */

static int add_system(conv_t *c, json_t *msg)
{
    json_t *content = member(msg, "content");

    if (is_type(content, json_type_array)) {
        for (size_t j = 0; j < json_object_array_length(content); j++) {
            json_t *part = json_object_array_get_idx(content, j);

            if (!streq(member_str(part, "type"), "text"))
                return refuse(c, c->where,
                              "%s: system messages take only text parts",
                              c->where);
        }
    }
    return add_content(c, content, false, c->system);
}

/* Some clients send "" (or nothing) as the arguments of a tool without
 * parameters; Anthropic wants an object, and {} says the same. */
static int parse_arguments(conv_t *c, json_t *fn, const char *name,
                           json_t **input)
{
    json_t *args = member(fn, "arguments");
    const char *text;

    if (args != NULL && !is_type(args, json_type_string))
        return refuse(
            c, c->where,
            "%s: the arguments of tool call \"%s\" must be a string of JSON",
            c->where, name);
    text = args ? json_object_get_string(args) : "";
    if (is_blank(text)) {
        *input = json_object_new_object();
        return 0;
    }

    *input = parse_json(text, strlen(text));
    if (is_type(*input, json_type_object))
        return 0;
    json_object_put(*input);
    *input = NULL;
    return refuse(c, c->where,
                  "%s: the arguments of tool call \"%s\" are not a JSON object",
                  c->where, name);
}

static int add_tool_use(conv_t *c, json_t *call, json_t *blocks)
{
    json_t *fn = member(call, "function");
    json_t *id = member(call, "id"), *name = member(fn, "name");
    const char *type = member_str(call, "type");
    json_t *input, *block;
    int rc;

    if (type != NULL && strcmp(type, "function") != 0)
        return refuse(c, c->where,
                      "%s: tool calls of type \"%s\" are not supported",
                      c->where, type);
    if (!is_type(id, json_type_string) || !is_type(name, json_type_string))
        return refuse(c, c->where,
                      "%s: a tool call needs an id and a function name",
                      c->where);
    rc = parse_arguments(c, fn, json_object_get_string(name), &input);
    if (rc < 0)
        return rc;

    block = json_object_new_object();
    put_str(block, "type", "tool_use");
    put(block, "id", json_object_get(id));
    put(block, "name", json_object_get(name));
    put(block, "input", input);
    json_object_array_add(blocks, block);
    return 0;
}

static int add_tool_calls(conv_t *c, json_t *calls, json_t *blocks)
{
    if (calls == NULL)
        return 0;
    if (!is_type(calls, json_type_array))
        return refuse(c, c->where, "%s: tool_calls must be an array", c->where);

    for (size_t k = 0; k < json_object_array_length(calls); k++) {
        int rc = add_tool_use(c, json_object_array_get_idx(calls, k), blocks);

        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_tool_result(conv_t *c, json_t *msg, json_t *blocks)
{
    json_t *id = member(msg, "tool_call_id");
    json_t *inner, *block;
    int rc;

    if (!is_type(id, json_type_string))
        return refuse(c, c->where, "%s: a tool message needs a tool_call_id",
                      c->where);
    inner = json_object_new_array();
    rc = add_content(c, member(msg, "content"), true, inner);
    if (rc < 0)
        goto out_inner;

    block = json_object_new_object();
    put_str(block, "type", "tool_result");
    put(block, "tool_use_id", json_object_get(id));
    if (json_object_array_length(inner) > 0)
        put(block, "content", plain_content(inner));
    json_object_array_add(blocks, block);

out_inner:
    json_object_put(inner);
    return rc;
}

/* Anthropic requires user and assistant turns to alternate, so a message
 * of the same role as the one before is folded into it. */
static void push_message(conv_t *c, const char *role, json_t *blocks)
{
    size_t n = json_object_array_length(c->messages);
    json_t *last = n ? json_object_array_get_idx(c->messages, n - 1) : NULL;
    json_t *msg;

    if (json_object_array_length(blocks) == 0) {
        json_object_put(blocks);
        return;
    }
    if (streq(member_str(last, "role"), role)) {
        json_t *content = member(last, "content");

        for (size_t k = 0; k < json_object_array_length(blocks); k++)
            json_object_array_add(
                content, json_object_get(json_object_array_get_idx(blocks, k)));
        json_object_put(blocks);
        return;
    }

    msg = json_object_new_object();
    put_str(msg, "role", role);
    put(msg, "content", blocks);
    json_object_array_add(c->messages, msg);
}

static int add_turn(conv_t *c, json_t *msg, const char *role)
{
    json_t *blocks = json_object_new_array();
    json_t *content = member(msg, "content");
    int rc;

    if (strcmp(role, "user") == 0)
        rc = add_content(c, content, true, blocks);
    else if (strcmp(role, "tool") == 0)
        rc = add_tool_result(c, msg, blocks);
    else {
        rc = add_content(c, content, false, blocks);
        if (rc == 0)
            rc = add_tool_calls(c, member(msg, "tool_calls"), blocks);
    }
    if (rc < 0) {
        json_object_put(blocks);
        return rc;
    }

    push_message(c, strcmp(role, "assistant") == 0 ? "assistant" : "user",
                 blocks);
    return 0;
}

static int add_message(conv_t *c, json_t *msg)
{
    const char *role = member_str(msg, "role");

    if (!is_type(msg, json_type_object))
        return refuse(c, c->where, "%s is not an object", c->where);
    if (role == NULL)
        return refuse(c, c->where, "%s: a message needs a role", c->where);
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return add_system(c, msg);
    if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0 ||
        strcmp(role, "tool") == 0)
        return add_turn(c, msg, role);
    return refuse(c, c->where, "%s: role \"%s\" is not supported", c->where,
                  role);
}

static int add_messages(conv_t *c, json_t *messages)
{
    size_t n;

    if (!is_type(messages, json_type_array))
        return refuse(c, "messages", "messages must be an array");
    n = json_object_array_length(messages);
    if (n == 0)
        return refuse(c, "messages", "messages must not be empty");

    for (size_t i = 0; i < n; i++) {
        int rc;

        c->where = arena_printf(c->arena, "messages[%zu]", i);
        rc = add_message(c, json_object_array_get_idx(messages, i));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- request: checks Anthropic would otherwise answer with a 400 ------ */

static bool has_block(json_t *msg, const char *type, const char *key,
                      const char *id)
{
    json_t *content = member(msg, "content");

    for (size_t k = 0; is_type(content, json_type_array) &&
                       k < json_object_array_length(content);
         k++) {
        json_t *block = json_object_array_get_idx(content, k);

        if (streq(member_str(block, "type"), type) &&
            streq(member_str(block, key), id))
            return true;
    }
    return false;
}

/* Every tool_use needs its tool_result in the very next message, every
 * tool_result a tool_use in the message before, ahead of any text. */
static int check_pairs(conv_t *c, size_t i)
{
    size_t n = json_object_array_length(c->messages);
    json_t *msg = json_object_array_get_idx(c->messages, i);
    json_t *prev = i ? json_object_array_get_idx(c->messages, i - 1) : NULL;
    json_t *next =
        i + 1 < n ? json_object_array_get_idx(c->messages, i + 1) : NULL;
    json_t *content = member(msg, "content");
    bool other = false;

    for (size_t k = 0; k < json_object_array_length(content); k++) {
        json_t *block = json_object_array_get_idx(content, k);
        const char *type = member_str(block, "type");
        const char *id = member_str(block, "id");
        const char *use = member_str(block, "tool_use_id");

        if (streq(type, "tool_use") &&
            !has_block(next, "tool_result", "tool_use_id", id))
            return refuse(c, "messages",
                          "messages: tool call \"%s\" has no tool message "
                          "answering it right after",
                          id);
        if (streq(type, "tool_result") &&
            (other || !has_block(prev, "tool_use", "id", use)))
            return refuse(
                c, "messages",
                "messages: the tool message for \"%s\" must come right after "
                "the assistant message that made that call",
                use);
        other = other || !streq(type, "tool_result");
    }
    return 0;
}

static int check_turns(conv_t *c)
{
    size_t n = json_object_array_length(c->messages);
    json_t *first = n ? json_object_array_get_idx(c->messages, 0) : NULL;

    if (n == 0)
        return refuse(
            c, "messages",
            "messages: at least one user message with content is required");
    if (!streq(member_str(first, "role"), "user"))
        return refuse(c, "messages",
                      "messages: the first message after the system messages "
                      "must be the user's");

    for (size_t i = 0; i < n; i++) {
        int rc = check_pairs(c, i);

        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Turns each message's blocks into a string where that reads the same. */
static void simplify_messages(conv_t *c)
{
    for (size_t i = 0; i < json_object_array_length(c->messages); i++) {
        json_t *msg = json_object_array_get_idx(c->messages, i);

        put(msg, "content", plain_content(member(msg, "content")));
    }
}

/* ---- request: top-level members ---------------------------------------- */

static int check_unsupported(conv_t *c, json_t *chat)
{
    static const char *const refused[] = {"top_logprobs", "audio", "functions",
                                          "function_call",
                                          "web_search_options"};
    json_t *n = member(chat, "n"), *logprobs = member(chat, "logprobs");
    json_t *format = member(chat, "response_format");
    json_t *modalities = member(chat, "modalities");

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (member(chat, refused[i]) != NULL)
            return refuse(c, refused[i], "%s is not supported by this model",
                          refused[i]);
    if (n != NULL &&
        !(is_type(n, json_type_int) && json_object_get_int64(n) == 1))
        return refuse(c, "n",
                      "n must be 1: this model gives one choice per request");
    if (logprobs != NULL && !(is_type(logprobs, json_type_boolean) &&
                              !json_object_get_boolean(logprobs)))
        return refuse(c, "logprobs",
                      "logprobs are not available from this model");
    if (format != NULL && !streq(member_str(format, "type"), "text"))
        return refuse(c, "response_format",
                      "response_format other than text is not supported by "
                      "this model; ask for JSON in the prompt instead");

    for (size_t i = 0; is_type(modalities, json_type_array) &&
                       i < json_object_array_length(modalities);
         i++)
        if (streq(json_object_get_string(
                      json_object_array_get_idx(modalities, i)),
                  "audio"))
            return refuse(c, "modalities",
                          "audio output is not supported by this model");
    return 0;
}

static int add_max_tokens(conv_t *c, json_t *chat,
                          const translate_request_opts_t *opts, json_t *req)
{
    const char *key = "max_completion_tokens";
    json_t *v = member(chat, key);
    int64_t limit = opts->default_max_tokens;

    if (v == NULL) {
        key = "max_tokens";
        v = member(chat, key);
    }
    if (v != NULL) {
        if (!is_type(v, json_type_int) || json_object_get_int64(v) < 1)
            return refuse(c, key, "%s must be a positive integer", key);
        limit = json_object_get_int64(v);
    }
    if (limit < 1)
        return refuse(c, "max_tokens", "max_tokens is required for this model");

    c->out->max_tokens = limit;
    put(req, "max_tokens", json_object_new_int64(limit));
    return 0;
}

static int add_tool(conv_t *c, size_t k, json_t *tool, json_t *tools)
{
    const char *param = arena_printf(c->arena, "tools[%zu]", k);
    json_t *fn = member(tool, "function");
    json_t *name = member(fn, "name"), *desc = member(fn, "description");
    json_t *params = member(fn, "parameters");
    json_t *out;

    if (!streq(member_str(tool, "type"), "function"))
        return refuse(
            c, param,
            "%s: only tools of type function are supported by this model",
            param);
    if (!is_type(name, json_type_string) ||
        (desc != NULL && !is_type(desc, json_type_string)))
        return refuse(
            c, param,
            "%s: a function needs a name and at most a string description",
            param);
    if (params != NULL && !is_type(params, json_type_object))
        return refuse(c, param, "%s: parameters must be a JSON Schema object",
                      param);

    out = json_object_new_object();
    put(out, "name", json_object_get(name));
    if (desc != NULL)
        put(out, "description", json_object_get(desc));
    if (params != NULL)
        put(out, "input_schema", json_object_get(params));
    else
        put(out, "input_schema",
            json_tokener_parse("{\"type\":\"object\",\"properties\":{}}"));
    if (member(tool, "cache_control") != NULL)
        put(out, "cache_control",
            json_object_get(member(tool, "cache_control")));
    json_object_array_add(tools, out);
    return 0;
}

/* The Anthropic tool_choice type for the caller's choice, or NULL when it
 * left the choice to the model; *name for a named function. */
static int choice_type(conv_t *c, json_t *v, const char **type,
                       const char **name)
{
    const char *s =
        is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

    *type = NULL;
    *name = NULL;
    if (v == NULL)
        return 0;
    if (streq(s, "auto") || streq(s, "none"))
        *type = s;
    else if (streq(s, "required"))
        *type = "any";
    else if (streq(member_str(v, "type"), "function") &&
             member_str(member(v, "function"), "name") != NULL) {
        *type = "tool";
        *name = member_str(member(v, "function"), "name");
    } else
        return refuse(c, "tool_choice",
                      "tool_choice must be auto, none, required or "
                      "{\"type\":\"function\",\"function\":{\"name\":...}}");
    return 0;
}

static int add_tool_choice(conv_t *c, json_t *chat, bool have_tools,
                           json_t *req)
{
    json_t *parallel = member(chat, "parallel_tool_calls");
    bool single = is_type(parallel, json_type_boolean) &&
                  !json_object_get_boolean(parallel);
    const char *type, *name;
    json_t *choice;
    int rc = choice_type(c, member(chat, "tool_choice"), &type, &name);

    if (rc < 0)
        return rc;
    if (!have_tools &&
        (type == NULL || streq(type, "auto") || streq(type, "none")))
        return 0;
    if (!have_tools)
        return refuse(c, "tool_choice", "tool_choice needs tools");
    if (type == NULL && !single)
        return 0;

    choice = json_object_new_object();
    put_str(choice, "type", type ? type : "auto");
    if (name != NULL)
        put_str(choice, "name", name);
    if (single && !streq(type, "none"))
        put(choice, "disable_parallel_tool_use", json_object_new_boolean(1));
    put(req, "tool_choice", choice);
    return 0;
}

static int add_tools(conv_t *c, json_t *chat, json_t *req)
{
    json_t *tools = member(chat, "tools");
    json_t *out = json_object_new_array();
    size_t n =
        is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;
    int rc = 0;

    if (tools != NULL && !is_type(tools, json_type_array))
        rc = refuse(c, "tools", "tools must be an array");
    for (size_t k = 0; rc == 0 && k < n; k++)
        rc = add_tool(c, k, json_object_array_get_idx(tools, k), out);
    if (rc == 0)
        rc = add_tool_choice(c, chat, n > 0, req);

    if (rc == 0 && n > 0)
        put(req, "tools", json_object_get(out));
    json_object_put(out);
    return rc;
}

static int add_stop(conv_t *c, json_t *chat, json_t *req)
{
    json_t *stop = member(chat, "stop");
    json_t *seqs = json_object_new_array();
    size_t n =
        is_type(stop, json_type_array) ? json_object_array_length(stop) : 1;
    int rc = 0;

    for (size_t k = 0; stop != NULL && rc == 0 && k < n; k++) {
        json_t *seq = is_type(stop, json_type_array)
                          ? json_object_array_get_idx(stop, k)
                          : stop;

        if (!is_type(seq, json_type_string))
            rc = refuse(c, "stop",
                        "stop must be a string or an array of strings");
        else if (json_object_get_string_len(seq) == 0)
            continue;
        else if (is_blank(json_object_get_string(seq)))
            rc = refuse(c, "stop",
                        "stop: this model does not accept a stop sequence made "
                        "only of whitespace");
        else
            json_object_array_add(seqs, json_object_get(seq));
    }

    if (rc == 0 && json_object_array_length(seqs) > 0)
        put(req, "stop_sequences", json_object_get(seqs));
    json_object_put(seqs);
    return rc;
}

/* temperature and top_p: Anthropic takes 0..1 (OpenAI's temperature goes
 * to 2, and scaling it would change what the caller asked for). */
static int add_unit_number(conv_t *c, json_t *chat, const char *key,
                           json_t *req)
{
    json_t *v = member(chat, key);
    double d;

    if (v == NULL)
        return 0;
    if (!is_type(v, json_type_double) && !is_type(v, json_type_int))
        return refuse(c, key, "%s must be a number", key);
    d = json_object_get_double(v);
    if (!(d >= 0.0 && d <= 1.0))
        return refuse(c, key, "%s must be between 0 and 1 for this model", key);
    put(req, key, json_object_get(v));
    return 0;
}

/* Anthropic's current models refuse temperature and top_p together. A
 * top_p of 1 cuts nothing off, so it is dropped; any other pair is refused
 * rather than sampled differently from what the caller asked. */
static int add_sampling(conv_t *c, json_t *chat, json_t *req)
{
    json_t *top_p = member(chat, "top_p");
    int rc = add_unit_number(c, chat, "temperature", req);

    if (rc == 0)
        rc = add_unit_number(c, chat, "top_p", req);
    if (rc < 0 || top_p == NULL || member(req, "temperature") == NULL)
        return rc;

    if (json_object_get_double(top_p) == 1.0) {
        json_object_object_del(req, "top_p");
        return 0;
    }
    return refuse(c, "top_p",
                  "temperature and top_p cannot both be set for "
                  "this model; send only one");
}

static void add_metadata(json_t *chat, json_t *req)
{
    json_t *user = member(member(chat, "metadata"), "user");
    json_t *meta;

    if (!is_type(user, json_type_string))
        user = member(chat, "user");
    if (!is_type(user, json_type_string))
        return;
    meta = json_object_new_object();
    put(meta, "user_id", json_object_get(user));
    put(req, "metadata", meta);
}

static int add_stream(conv_t *c, json_t *chat, json_t *req)
{
    json_t *stream = member(chat, "stream");
    json_t *usage = member(member(chat, "stream_options"), "include_usage");

    if (stream != NULL && !is_type(stream, json_type_boolean))
        return refuse(c, "stream", "stream must be true or false");
    if (stream == NULL || !json_object_get_boolean(stream))
        return 0;

    c->out->stream = true;
    c->out->include_usage =
        is_type(usage, json_type_boolean) && json_object_get_boolean(usage);
    put(req, "stream", json_object_new_boolean(1));
    return 0;
}

static int build_request(conv_t *c, json_t *chat,
                         const translate_request_opts_t *opts, json_t *req)
{
    int rc;

    put_str(req, "model", opts->upstream_model ? opts->upstream_model : "");
    rc = add_max_tokens(c, chat, opts, req);
    if (rc < 0)
        return rc;
    if (json_object_array_length(c->system) > 0)
        put(req, "system", plain_content(c->system));
    simplify_messages(c);
    put(req, "messages", json_object_get(c->messages));

    rc = add_tools(c, chat, req);
    if (rc == 0)
        rc = add_stop(c, chat, req);
    if (rc == 0)
        rc = add_sampling(c, chat, req);
    if (rc == 0)
        add_metadata(chat, req);
    if (rc == 0)
        rc = add_stream(c, chat, req);
    return rc;
}

int translate_request_to_anthropic(arena_t *arena, json_t *chat,
                                   const translate_request_opts_t *opts,
                                   translate_request_t *out)
{
    conv_t c = {.arena = arena, .out = out, .where = "messages"};
    json_t *req = json_object_new_object();
    int rc;

    memset(out, 0, sizeof(*out));
    c.system = json_object_new_array();
    c.messages = json_object_new_array();

    if (!is_type(chat, json_type_object))
        rc = refuse(&c, NULL, "the request body must be a JSON object");
    else
        rc = check_unsupported(&c, chat);
    if (rc == 0)
        rc = add_messages(&c, member(chat, "messages"));
    if (rc == 0)
        rc = check_turns(&c);
    if (rc == 0)
        rc = build_request(&c, chat, opts, req);
    if (rc == 0)
        out->body = json_to_arena(arena, req, &out->body_len);

    json_object_put(req);
    json_object_put(c.messages);
    json_object_put(c.system);
    return rc;
}

/* ---- usage ------------------------------------------------------------- */

/* Replaces *dst when obj[key] is a count; says whether it did. */
static bool take_count(json_t *obj, const char *key, int64_t *dst)
{
    json_t *v = member(obj, key);
    int64_t n;

    if (!is_type(v, json_type_int))
        return false;
    n = json_object_get_int64(v);
    if (n < 0 || n > COUNT_MAX)
        return false;
    *dst = n;
    return true;
}

static void take_tier_geo(json_t *usage, translate_counts_t *k)
{
    const char *tier = member_str(usage, "service_tier");
    const char *geo = member_str(usage, "inference_geo");

    if (streq(tier, "priority"))
        k->tier = SERVICE_PRIORITY;
    else if (streq(tier, "batch"))
        k->tier = SERVICE_BATCH;
    else if (tier != NULL)
        k->tier = SERVICE_STANDARD;
    if (geo != NULL && strcmp(geo, "global") != 0 &&
        strlen(geo) < sizeof(k->geo))
        snprintf(k->geo, sizeof(k->geo), "%s", geo);
}

/* Takes what usage carries and leaves the rest: message_delta repeats
 * only the counters that moved, and its counts are cumulative, so a value
 * replaces the one before and is never added to it. */
static void update_counts(translate_counts_t *k, json_t *usage)
{
    json_t *creation = member(usage, "cache_creation");

    if (!is_type(usage, json_type_object))
        return;
    k->present = true;
    take_count(usage, "input_tokens", &k->input);
    take_count(usage, "cache_creation_input_tokens", &k->cache_write);
    take_count(usage, "cache_read_input_tokens", &k->cache_read);
    take_count(usage, "output_tokens", &k->output);
    take_count(creation, "ephemeral_1h_input_tokens", &k->cache_write_1h);
    if (take_count(member(usage, "output_tokens_details"), "thinking_tokens",
                   &k->thinking))
        k->has_thinking = true;
    take_count(member(usage, "server_tool_use"), "web_search_requests",
               &k->web_searches);
    take_tier_geo(usage, k);
}

static void counts_to_usage(const translate_counts_t *k, usage_t *usage)
{
    memset(usage, 0, sizeof(*usage));
    if (!k->present)
        return;
    usage->present = true;
    usage->input_tokens = k->input + k->cache_write + k->cache_read;
    usage->cached_tokens = k->cache_read;
    usage->cache_write_tokens = k->cache_write;
    usage->cache_write_1h_tokens = k->cache_write_1h;
    usage->output_tokens = k->output;
    usage->reasoning_tokens = k->thinking;
    usage->web_searches = k->web_searches;
    usage->service_tier = k->tier;
    snprintf(usage->geo, sizeof(usage->geo), "%s", k->geo);
}

/* OpenAI's usage object: Anthropic's disjoint input counters summed into
 * prompt_tokens, reads and writes shown as the subsets they are. */
static json_t *usage_json(const translate_counts_t *k)
{
    int64_t prompt = k->input + k->cache_write + k->cache_read;
    json_t *usage = json_object_new_object();
    json_t *in = json_object_new_object();

    put(usage, "prompt_tokens", json_object_new_int64(prompt));
    put(usage, "completion_tokens", json_object_new_int64(k->output));
    put(usage, "total_tokens", json_object_new_int64(prompt + k->output));
    put(in, "cached_tokens", json_object_new_int64(k->cache_read));
    put(in, "cache_write_tokens", json_object_new_int64(k->cache_write));
    put(usage, "prompt_tokens_details", in);
    if (k->has_thinking) {
        json_t *out = json_object_new_object();

        put(out, "reasoning_tokens", json_object_new_int64(k->thinking));
        put(usage, "completion_tokens_details", out);
    }
    return usage;
}

/* ---- answer ------------------------------------------------------------ */

static const char *finish_reason(const char *stop)
{
    static const char *const map[][2] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"pause_turn", "stop"},
        {"max_tokens", "length"},
        {"model_context_window_exceeded", "length"},
        {"tool_use", "tool_calls"},
        {"refusal", "content_filter"},
    };

    for (size_t i = 0; stop != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(stop, map[i][0]) == 0)
            return map[i][1];
    return "stop";
}

static json_t *tool_call_json(json_t *block)
{
    json_t *call = json_object_new_object();
    json_t *fn = json_object_new_object();
    json_t *input = member(block, "input");
    const char *args =
        input ? json_object_to_json_string_ext(input, JSON_FLAGS) : "{}";

    put(call, "id",
        json_object_new_string(member_str(block, "id") ? member_str(block, "id")
                                                       : ""));
    put_str(call, "type", "function");
    put(fn, "name",
        json_object_new_string(
            member_str(block, "name") ? member_str(block, "name") : ""));
    put_str(fn, "arguments", args);
    put(call, "function", fn);
    return call;
}

/* The assistant message: text blocks joined, tool_use blocks as tool
 * calls; thinking and server-tool blocks are not the caller's. */
static json_t *answer_message(json_t *content)
{
    json_t *msg = json_object_new_object();
    json_t *calls = json_object_new_array();
    buf_t text;

    buf_init(&text, SIZE_MAX);
    buf_append(&text, "", 0);
    for (size_t k = 0; k < json_object_array_length(content); k++) {
        json_t *block = json_object_array_get_idx(content, k);
        json_t *t = member(block, "text");
        const char *type = member_str(block, "type");

        if (streq(type, "text") && is_type(t, json_type_string))
            buf_append(&text, json_object_get_string(t),
                       (size_t)json_object_get_string_len(t));
        else if (streq(type, "tool_use"))
            json_object_array_add(calls, tool_call_json(block));
    }

    put_str(msg, "role", "assistant");
    if (text.len == 0 && json_object_array_length(calls) > 0)
        put(msg, "content", NULL);
    else
        put(msg, "content",
            json_object_new_string_len(text.data, (int)text.len));
    if (json_object_array_length(calls) > 0)
        put(msg, "tool_calls", json_object_get(calls));
    put(msg, "refusal", NULL);
    json_object_put(calls);
    buf_free(&text);
    return msg;
}

static json_t *completion_json(arena_t *arena, json_t *msg,
                               const translate_reply_opts_t *opts,
                               const translate_counts_t *k)
{
    const char *id = member_str(msg, "id");
    json_t *out = json_object_new_object();
    json_t *choices = json_object_new_array();
    json_t *choice = json_object_new_object();

    put_str(out, "id", arena_printf(arena, "chatcmpl-%s", id ? id : ""));
    put_str(out, "object", "chat.completion");
    put(out, "created", json_object_new_int64(opts->created));
    put_str(out, "model", opts->model ? opts->model : "");

    put(choice, "index", json_object_new_int(0));
    put(choice, "message", answer_message(member(msg, "content")));
    put(choice, "logprobs", NULL);
    put_str(choice, "finish_reason",
            finish_reason(member_str(msg, "stop_reason")));
    json_object_array_add(choices, choice);
    put(out, "choices", choices);

    if (k->present)
        put(out, "usage", usage_json(k));
    return out;
}

int translate_answer_to_openai(arena_t *arena, const char *text, size_t len,
                               const translate_reply_opts_t *opts,
                               translate_answer_t *out)
{
    json_t *msg = parse_json(text, len);
    const char *type = member_str(msg, "type");
    translate_counts_t counts;
    json_t *completion;
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    memset(&counts, 0, sizeof(counts));
    out->provider_model = "";
    if (!is_type(member(msg, "content"), json_type_array) ||
        (type != NULL && strcmp(type, "message") != 0))
        goto out_msg;

    update_counts(&counts, member(msg, "usage"));
    /* The bill comes from the same reader /v1/messages uses: usage it
     * refuses (a count that is a string, null or missing) is missing
     * here too, and gets estimated, never priced as 0. */
    if (usage_read_anthropic(msg, &out->usage) != 0)
        memset(&out->usage, 0, sizeof(out->usage));
    if (member_str(msg, "model") != NULL)
        out->provider_model = arena_strdup(arena, member_str(msg, "model"));
    completion = completion_json(arena, msg, opts, &counts);
    out->body = json_to_arena(arena, completion, &out->body_len);
    json_object_put(completion);
    rc = 0;

out_msg:
    json_object_put(msg);
    return rc;
}

/* ---- errors ------------------------------------------------------------ */

typedef struct error_map {
    const char *anthropic; /* Anthropic's error.type */
    int status;            /* the status Anthropic sends it with */
    int openai_status;
    const char *openai_type;
    const char *code;
} error_map_t;

static const error_map_t error_maps[] = {
    {"invalid_request_error", 400, 400, "invalid_request_error", NULL},
    {"authentication_error", 401, 401, "authentication_error",
     "invalid_api_key"},
    {"billing_error", 402, 402, "billing_error", NULL},
    {"permission_error", 403, 403, "permission_error", NULL},
    {"not_found_error", 404, 404, "invalid_request_error", "not_found"},
    {"request_too_large", 413, 413, "invalid_request_error",
     "request_too_large"},
    {"rate_limit_error", 429, 429, "rate_limit_error", "rate_limit_exceeded"},
    {"api_error", 500, 500, "server_error", NULL},
    {"timeout_error", 504, 504, "server_error", "timeout"},
    {"overloaded_error", 529, 503, "server_error", "overloaded"},
};

#define N_ERROR_MAPS (sizeof(error_maps) / sizeof(error_maps[0]))

/* The row for an Anthropic type, else for status; NULL when neither. */
static const error_map_t *error_lookup(const char *type, int status)
{
    for (size_t i = 0; type != NULL && i < N_ERROR_MAPS; i++)
        if (strcmp(type, error_maps[i].anthropic) == 0)
            return &error_maps[i];
    for (size_t i = 0; i < N_ERROR_MAPS; i++)
        if (status == error_maps[i].status)
            return &error_maps[i];
    return NULL;
}

/* How OpenAI callers should see an Anthropic error of type and status. */
static error_map_t error_for_openai(const char *type, int status, json_t *err)
{
    const error_map_t *row = error_lookup(type, status);
    error_map_t m = {NULL, status, status, "server_error", NULL};
    const char *why = member_str(member(err, "details"), "error_code");

    if (row != NULL)
        m = *row;
    else if (status >= 400 && status < 500)
        m.openai_type = "invalid_request_error";
    else if (status < 400 || status > 599)
        m.openai_status = 502;
    if (m.openai_status == 429 && streq(why, "enforced_spend_limit_reached"))
        m.openai_type = m.code = "insufficient_quota";
    return m;
}

/* Anthropic's error type for a status Tollgate or OpenAI answered with. */
static const char *anthropic_type(int status)
{
    const error_map_t *row = error_lookup(NULL, status);

    if (status == 503)
        return "overloaded_error";
    if (row != NULL)
        return row->anthropic;
    if (status >= 400 && status < 500)
        return "invalid_request_error";
    return "api_error";
}

static void put_nullable(json_t *obj, const char *key, const char *value)
{
    put(obj, key, value ? json_object_new_string(value) : NULL);
}

char *translate_openai_error(arena_t *arena, const char *message,
                             const char *type, const char *param,
                             const char *code, size_t *len)
{
    json_t *body = json_object_new_object();
    json_t *err = json_object_new_object();
    char *text;

    put_str(err, "message", message ? message : "");
    put_str(err, "type", type ? type : "server_error");
    put_nullable(err, "param", param);
    put_nullable(err, "code", code);
    put(body, "error", err);
    text = json_to_arena(arena, body, len);
    json_object_put(body);
    return text;
}

char *translate_anthropic_error(arena_t *arena, int status, const char *message,
                                size_t *len)
{
    json_t *body = json_object_new_object();
    json_t *err = json_object_new_object();
    char *text;

    put_str(body, "type", "error");
    put_str(err, "type", anthropic_type(status));
    put_str(err, "message", message ? message : "");
    put(body, "error", err);
    text = json_to_arena(arena, body, len);
    json_object_put(body);
    return text;
}

void translate_error_to_openai(arena_t *arena, int status, const char *text,
                               size_t len, translate_error_t *out)
{
    json_t *body = parse_json(text, len);
    json_t *err = member(body, "error");
    const char *message = member_str(err, "message");
    error_map_t m = error_for_openai(member_str(err, "type"), status, err);

    if (message == NULL)
        message =
            arena_printf(arena, "the provider answered with status %d", status);
    out->status = m.openai_status;
    out->body = translate_openai_error(arena, message, m.openai_type, NULL,
                                       m.code, &out->body_len);
    json_object_put(body);
}

void translate_error_to_anthropic(arena_t *arena, int status, const char *text,
                                  size_t len, translate_error_t *out)
{
    json_t *body = parse_json(text, len);
    const char *message = member_str(member(body, "error"), "message");

    if (message == NULL)
        message =
            arena_printf(arena, "the request failed with status %d", status);
    out->status = status;
    out->body =
        translate_anthropic_error(arena, status, message, &out->body_len);
    json_object_put(body);
}

/* ---- stream ------------------------------------------------------------ */

void translate_stream_init(translate_stream_t *ts, arena_t *arena,
                           const translate_reply_opts_t *opts)
{
    memset(ts, 0, sizeof(*ts));
    ts->arena = arena;
    ts->opts = *opts;
    ts->opts.model = arena_strdup(arena, opts->model ? opts->model : "");
    ts->id = "chatcmpl-";
    ts->provider_model = "";
    ts->tool_block = -1;
}

static void emit(buf_t *out, json_t *obj)
{
    size_t n = 0;
    const char *text = json_object_to_json_string_length(obj, JSON_FLAGS, &n);

    if (text == NULL)
        die_oom();
    buf_append(out, "data: ", 6);
    buf_append(out, text, n);
    buf_append(out, "\n\n", 2);
}

static json_t *chunk_head(const translate_stream_t *ts)
{
    json_t *chunk = json_object_new_object();

    put_str(chunk, "id", ts->id);
    put_str(chunk, "object", "chat.completion.chunk");
    put(chunk, "created", json_object_new_int64(ts->opts.created));
    put_str(chunk, "model", ts->opts.model);
    return chunk;
}

/* One chunk of choice 0; takes the reference to delta. */
static void emit_delta(const translate_stream_t *ts, json_t *delta,
                       const char *finish, buf_t *out)
{
    json_t *chunk = chunk_head(ts);
    json_t *choices = json_object_new_array();
    json_t *choice = json_object_new_object();

    put(choice, "index", json_object_new_int(0));
    put(choice, "delta", delta);
    put(choice, "logprobs", NULL);
    put_nullable(choice, "finish_reason", finish);
    json_object_array_add(choices, choice);
    put(chunk, "choices", choices);
    if (ts->opts.include_usage)
        put(chunk, "usage", NULL);
    emit(out, chunk);
    json_object_put(chunk);
}

static void ensure_started(translate_stream_t *ts, buf_t *out)
{
    json_t *delta;

    if (ts->started)
        return;
    delta = json_object_new_object();
    put_str(delta, "role", "assistant");
    put_str(delta, "content", "");
    emit_delta(ts, delta, NULL, out);
    ts->started = true;
}

static void emit_text(translate_stream_t *ts, json_t *text, buf_t *out)
{
    json_t *delta;

    if (!is_type(text, json_type_string) ||
        json_object_get_string_len(text) == 0)
        return;
    delta = json_object_new_object();
    put(delta, "content", json_object_get(text));
    emit_delta(ts, delta, NULL, out);
}

/* A tool_calls[] entry for the tool call begun last, index first as
 * OpenAI writes it. */
static json_t *tool_entry(const translate_stream_t *ts)
{
    json_t *call = json_object_new_object();

    put(call, "index", json_object_new_int(ts->tools - 1));
    return call;
}

/* A chunk whose delta is tool_calls [call]; takes the reference. */
static void emit_tool(translate_stream_t *ts, json_t *call, buf_t *out)
{
    json_t *delta = json_object_new_object();
    json_t *calls = json_object_new_array();

    json_object_array_add(calls, call);
    put(delta, "tool_calls", calls);
    emit_delta(ts, delta, NULL, out);
}

static int on_message_start(translate_stream_t *ts, json_t *ev, buf_t *out)
{
    json_t *msg = member(ev, "message");
    const char *id = member_str(msg, "id");
    const char *model = member_str(msg, "model");

    if (ts->started)
        return 0;
    if (id != NULL)
        ts->id = arena_printf(ts->arena, "chatcmpl-%s", id);
    if (model != NULL)
        ts->provider_model = arena_strdup(ts->arena, model);
    update_counts(&ts->counts, member(msg, "usage"));
    ensure_started(ts, out);
    return 0;
}

static int on_block_start(translate_stream_t *ts, json_t *ev, buf_t *out)
{
    json_t *block = member(ev, "content_block");
    const char *type = member_str(block, "type");
    json_t *call, *fn;

    ensure_started(ts, out);
    ts->tool_block = -1;
    if (streq(type, "text"))
        emit_text(ts, member(block, "text"), out);
    if (!streq(type, "tool_use"))
        return 0;

    ts->tool_block = json_object_get_int(member(ev, "index"));
    ts->tools++;
    call = tool_entry(ts);
    fn = json_object_new_object();
    put_str(call, "id", member_str(block, "id") ? member_str(block, "id") : "");
    put_str(call, "type", "function");
    put_str(fn, "name",
            member_str(block, "name") ? member_str(block, "name") : "");
    put_str(fn, "arguments", "");
    put(call, "function", fn);
    emit_tool(ts, call, out);
    return 0;
}

static int on_block_delta(translate_stream_t *ts, json_t *ev, buf_t *out)
{
    json_t *delta = member(ev, "delta");
    const char *type = member_str(delta, "type");
    json_t *part = member(delta, "partial_json");
    int index = json_object_get_int(member(ev, "index"));
    json_t *call, *fn;

    ensure_started(ts, out);
    if (streq(type, "text_delta"))
        emit_text(ts, member(delta, "text"), out);
    if (!streq(type, "input_json_delta") || index != ts->tool_block ||
        !is_type(part, json_type_string) ||
        json_object_get_string_len(part) == 0)
        return 0;

    call = tool_entry(ts);
    fn = json_object_new_object();
    put(fn, "arguments", json_object_get(part));
    put(call, "function", fn);
    emit_tool(ts, call, out);
    return 0;
}

static int on_block_stop(translate_stream_t *ts, json_t *ev, buf_t *out)
{
    ts->tool_block = -1;
    return 0;
}

static void emit_finish(translate_stream_t *ts, const char *stop, buf_t *out)
{
    if (ts->finish_sent)
        return;
    ensure_started(ts, out);
    emit_delta(ts, json_object_new_object(), finish_reason(stop), out);
    ts->finish_sent = true;
}

static int on_message_delta(translate_stream_t *ts, json_t *ev, buf_t *out)
{
    const char *stop = member_str(member(ev, "delta"), "stop_reason");

    update_counts(&ts->counts, member(ev, "usage"));
    if (stop != NULL)
        emit_finish(ts, stop, out);
    return 0;
}

static int on_message_stop(translate_stream_t *ts, json_t *ev, buf_t *out)
{
    emit_finish(ts, NULL, out);
    if (ts->opts.include_usage && ts->counts.present) {
        json_t *chunk = chunk_head(ts);

        put(chunk, "choices", json_object_new_array());
        put(chunk, "usage", usage_json(&ts->counts));
        emit(out, chunk);
        json_object_put(chunk);
    }
    buf_append(out, "data: [DONE]\n\n", 14);
    ts->ended = true;
    ts->ended_ok = true;
    return 0;
}

static void emit_error(translate_stream_t *ts, const char *message,
                       const char *type, const char *code, buf_t *out)
{
    json_t *line = json_object_new_object();
    json_t *err = json_object_new_object();

    put_str(err, "message", message);
    put_str(err, "type", type);
    put_nullable(err, "code", code);
    put(line, "error", err);
    emit(out, line);
    json_object_put(line);
    ts->ended = true;
}

static int on_error(translate_stream_t *ts, json_t *ev, buf_t *out)
{
    json_t *err = member(ev, "error");
    const char *message = member_str(err, "message");
    error_map_t m = error_for_openai(member_str(err, "type"), 500, err);

    emit_error(ts, message ? message : "the provider reported an error",
               m.openai_type, m.code, out);
    return 0;
}

typedef int (*event_fn)(translate_stream_t *ts, json_t *ev, buf_t *out);

static event_fn event_handler(const char *name)
{
    static const struct {
        const char *name;
        event_fn fn;
    } handlers[] = {
        {"message_start", on_message_start},
        {"content_block_start", on_block_start},
        {"content_block_delta", on_block_delta},
        {"content_block_stop", on_block_stop},
        {"message_delta", on_message_delta},
        {"message_stop", on_message_stop},
        {"error", on_error},
    };

    for (size_t i = 0;
         name != NULL && i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(name, handlers[i].name) == 0)
            return handlers[i].fn;
    return NULL;
}

/* What one event turns into, written to chunks; -EPROTO when it could
 * not be read (an error line is written then). */
static int translate_event(translate_stream_t *ts, const char *event,
                           const char *data, size_t len, buf_t *chunks)
{
    json_t *ev = parse_json(data, len);
    const char *name = event && *event ? event : member_str(ev, "type");
    event_fn fn = event_handler(name);
    int rc = 0;

    if (fn != NULL && is_type(ev, json_type_object))
        rc = fn(ts, ev, chunks);
    else if (fn != NULL || name == NULL) {
        emit_error(ts,
                   "the provider sent a stream event that could not be read",
                   "server_error", "bad_upstream_event", chunks);
        rc = -EPROTO;
    }
    json_object_put(ev);
    return rc;
}

int translate_stream_feed(translate_stream_t *ts, const char *event,
                          const char *data, size_t len, buf_t *out)
{
    translate_stream_t saved = *ts;
    buf_t chunks;
    int rc;

    if (ts->ended)
        return 0;
    buf_init(&chunks, SIZE_MAX);
    rc = translate_event(ts, event, data, len, &chunks);

    /* All of an event's chunks or none, so a full buffer can be retried
     * with the same event once the caller has drained it. */
    if (chunks.len > 0 && buf_append(out, chunks.data, chunks.len) < 0) {
        *ts = saved;
        rc = -ENOSPC;
    }
    buf_free(&chunks);
    return rc;
}

bool translate_stream_ended_ok(const translate_stream_t *ts)
{
    return ts->ended_ok;
}

void translate_stream_usage(const translate_stream_t *ts, usage_t *usage)
{
    counts_to_usage(&ts->counts, usage);
}

const char *translate_stream_provider_model(const translate_stream_t *ts)
{
    return ts->provider_model;
}
