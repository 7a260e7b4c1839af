/*
 * Counting for the trimmer: each message's input tokens, measured so that
 * they add up to the whole request's count (tokens_count_chat for OpenAI
 * models), and the frozen prefix the provider's cache depends on.
 */
#include "context/context_int.h"

#include <string.h>

/* Images have no text to count; these are the usual sizes: a 1024x1024
 * high-detail image on OpenAI, a full-size image on Anthropic. */
#define IMAGE_TOKENS_OPENAI 765
#define IMAGE_TOKENS_ANTHROPIC 1600

/* Reply priming: <|start|>assistant<|message|>. */
#define PRIMING_TOKENS 3
#define MESSAGE_TOKENS 3

int64_t ctx_count(const convo_t *c, const char *s, size_t len)
{
    if (c->enc != NULL)
        return tokens_count(c->enc, s, len);
    return (int64_t)((len + 3) / 4);
}

static const char *type_of(json_object *obj)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, "type", &v) ||
        !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

static json_object *member(json_object *obj, const char *key)
{
    json_object *v = NULL;

    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

static int64_t base64_tokens(json_object *data)
{
    /* decoded bytes, about four to a token */
    return json_object_get_string_len(data) * 3 / 16;
}

static bool is_media(const char *type)
{
    return strcmp(type, "image") == 0 || strcmp(type, "image_url") == 0 ||
           strcmp(type, "input_image") == 0 ||
           strcmp(type, "input_audio") == 0 || strcmp(type, "file") == 0 ||
           strcmp(type, "document") == 0;
}

static int64_t value_tokens(convo_t *c, json_object *v);

/* A part with no text of its own: an estimate, flagged as one. */
static int64_t media_tokens(convo_t *c, json_object *part)
{
    const char *type = type_of(part);
    json_object *src = member(part, "source");
    json_object *file = member(part, "file");
    json_object *data = NULL;

    c->estimated = true;
    if (strcmp(type, "image") == 0)
        return IMAGE_TOKENS_ANTHROPIC;
    if (strcmp(type, "image_url") == 0 || strcmp(type, "input_image") == 0)
        return IMAGE_TOKENS_OPENAI;
    if (file != NULL && json_object_is_type(file, json_type_object) &&
        (data = member(file, "file_data")) != NULL)
        return base64_tokens(data);
    if (src == NULL || !json_object_is_type(src, json_type_object))
        return 0;
    if (strcmp(type_of(src), "content") == 0)
        return value_tokens(c, member(src, "content"));
    if ((data = member(src, "data")) == NULL ||
        !json_object_is_type(data, json_type_string))
        return 0;
    if (strcmp(type_of(src), "text") == 0)
        return ctx_count(c, json_object_get_string(data),
                         (size_t)json_object_get_string_len(data));
    return base64_tokens(data);
}

/* Keys whose strings are structure, not text the model reads. */
static bool key_skipped(const char *key)
{
    static const char *const skip[] = {
        "type",         "id",         "tool_use_id",
        "tool_call_id", "media_type", "cache_control",
        "signature",    NULL,
    };

    for (size_t i = 0; skip[i] != NULL; i++)
        if (strcmp(key, skip[i]) == 0)
            return true;
    return false;
}

/* Every string the model reads in V; media by estimate. */
static int64_t value_tokens(convo_t *c, json_object *v)
{
    int64_t total = 0;

    switch (json_object_get_type(v)) {
    case json_type_string:
        return ctx_count(c, json_object_get_string(v),
                         (size_t)json_object_get_string_len(v));
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            total += value_tokens(c, json_object_array_get_idx(v, i));
        return total;
    case json_type_object:
        if (is_media(type_of(v)))
            return media_tokens(c, v);
        json_object_object_foreach(v, key, val)
        {
            if (!key_skipped(key))
                total += value_tokens(c, val);
        }
        return total;
    default:
        return 0;
    }
}

/* Media parts of an OpenAI content array, which tokens_count_chat skips. */
static int64_t media_extra(convo_t *c, json_object *msg)
{
    json_object *content = member(msg, "content");
    int64_t total = 0;

    if (!json_object_is_type(content, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i);

        if (json_object_is_type(part, json_type_object) &&
            is_media(type_of(part)))
            total += media_tokens(c, part);
    }
    return total;
}

/* tokens_count_chat on this message alone, less its reply priming. */
static int64_t openai_message_tokens(convo_t *c, json_object *msg)
{
    json_object *req = json_object_new_object();
    json_object *arr = json_object_new_array();
    tokens_chat_t chat;

    json_object_array_add(arr, json_object_get(msg));
    json_object_object_add(req, "messages", arr);
    tokens_count_chat(c->enc, NULL, req, &chat);
    json_object_put(req);
    c->estimated = c->estimated || chat.estimated;
    return chat.total - PRIMING_TOKENS + media_extra(c, msg);
}

static int64_t openai_tools_tokens(convo_t *c)
{
    json_object *req = json_object_new_object();
    json_object *tools = member(c->root, "tools");
    tokens_chat_t chat;

    if (tools == NULL) {
        json_object_put(req);
        return 0;
    }
    json_object_object_add(req, "messages", json_object_new_array());
    json_object_object_add(req, "tools", json_object_get(tools));
    tokens_count_chat(c->enc, NULL, req, &chat);
    json_object_put(req);
    c->estimated = c->estimated || chat.estimated;
    return chat.tools;
}

static bool openai_exact(const convo_t *c)
{
    return c->surface == CONTEXT_OPENAI_CHAT && c->enc != NULL;
}

static void pieces_count(convo_t *c)
{
    for (size_t i = 0; i < c->n_pieces; i++) {
        piece_t *p = &c->pieces[i];

        if (p->kind == PIECE_DOC)
            p->tokens =
                media_tokens(c, json_object_array_get_idx(p->holder, p->index));
        else if (p->text != NULL)
            p->tokens = ctx_count(c, p->text, p->len);
        else
            p->tokens = value_tokens(c, member(p->holder, p->key));
    }
}

void ctx_count_request(convo_t *c)
{
    json_object *tools = member(c->root, "tools");
    tokens_kind_t kind;

    c->exact = c->enc != NULL && tokens_model_kind(c->model, &kind) &&
               kind == tokens_encoding_kind(c->enc);
    c->percent = c->exact ? 100 : tokens_estimate(c->model, 100);
    c->estimated = !c->exact;

    c->fixed = PRIMING_TOKENS;
    if (openai_exact(c))
        c->fixed += openai_tools_tokens(c);
    else if (tools != NULL)
        c->fixed += value_tokens(c, tools);
    if (c->surface == CONTEXT_ANTHROPIC && member(c->root, "system") != NULL)
        c->fixed += value_tokens(c, member(c->root, "system"));

    for (size_t i = 0; i < c->n; i++)
        c->m[i].raw = openai_exact(c)
                          ? openai_message_tokens(c, c->m[i].obj)
                          : MESSAGE_TOKENS + value_tokens(c, c->m[i].obj);
    pieces_count(c);
}

static bool has_breakpoint(json_object *v, int depth)
{
    if (depth > 8)
        return false;
    if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (has_breakpoint(json_object_array_get_idx(v, i), depth + 1))
                return true;
        return false;
    }
    if (!json_object_is_type(v, json_type_object))
        return false;
    json_object_object_foreach(v, key, val)
    {
        if (strcmp(key, "cache_control") == 0 || has_breakpoint(val, depth + 1))
            return true;
    }
    return false;
}

/* Messages that start inside OpenAI's cached prefix of N tokens. */
static size_t prefix_end(const convo_t *c, int64_t n)
{
    int64_t offset = c->fixed - PRIMING_TOKENS;
    size_t i = 0;

    while (i < c->n && offset < n)
        offset += c->m[i++].raw;
    return i;
}

void ctx_freeze(convo_t *c)
{
    const context_policy_t *pol = c->policy;

    if (pol->respect_cache) {
        for (size_t i = c->n; i-- > c->frozen;) {
            if (has_breakpoint(c->m[i].obj, 0)) {
                c->frozen = i + 1;
                break;
            }
        }
        if (c->surface == CONTEXT_ANTHROPIC &&
            member(c->root, "cache_control") != NULL)
            c->frozen = c->n;
        if (c->surface == CONTEXT_OPENAI_CHAT &&
            pol->openai_prefix_tokens > 0 &&
            prefix_end(c, pol->openai_prefix_tokens) > c->frozen)
            c->frozen = prefix_end(c, pol->openai_prefix_tokens);
    }
    c->first_turn = 0;
    while (c->first_turn < c->n_turns &&
           c->turn_start[c->first_turn] < c->frozen)
        c->first_turn++;
}
