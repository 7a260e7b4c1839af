/*
 * Counts pieces, the simulator's stand-in for tokens, in answers and in
 * prompts. See sim_tokens.h for the rule; README.md states it for tests.
 */
#include "sim_tokens.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sim_util.h"

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

static bool is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/*
 * Offset just past the piece that starts at i (text[i] is not space).
 * A lead byte takes up to three continuation bytes with it, so one
 * multi-byte character is one piece.
 */
static size_t piece_end(const unsigned char *p, size_t len, size_t i)
{
    size_t extra = 0;

    if (is_alnum(p[i])) {
        while (i < len && is_alnum(p[i]))
            i++;
        return i;
    }

    if (p[i] >= 0xc0) {
        while (i + 1 < len && extra < 3 && (p[i + 1] & 0xc0) == 0x80) {
            i++;
            extra++;
        }
    }
    return i + 1;
}

int64_t tokens_count(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    int64_t pieces = 0;
    size_t i = 0;

    while (i < len) {
        if (is_space(p[i])) {
            i++;
            continue;
        }
        i = piece_end(p, len, i);
        pieces++;
    }
    return pieces;
}

size_t tokens_truncate(const char *text, size_t len, int64_t limit)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t end = 0;
    size_t i = 0;
    int64_t pieces = 0;

    while (i < len) {
        if (is_space(p[i])) {
            i++;
            continue;
        }
        if (pieces == limit)
            return end;
        i = piece_end(p, len, i);
        end = i;
        pieces++;
    }
    return len;
}

static bool is_text_part(struct json_object *part)
{
    struct json_object *type;

    if (!json_object_is_type(part, json_type_object))
        return false;
    if (!json_object_object_get_ex(part, "type", &type))
        return false;
    return json_object_is_type(type, json_type_string) &&
           strcmp(json_object_get_string(type), "text") == 0;
}

static void append(char **buf, size_t *len, const char *text, size_t n)
{
    *buf = util_xrealloc(*buf, *len + n + 1);
    memcpy(*buf + *len, text, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static char *parts_text(struct json_object *parts, size_t *len,
                        int64_t *nontext)
{
    size_t nparts = json_object_array_length(parts);
    char *buf = util_xstrndup("", 0);
    struct json_object *part, *text;

    for (size_t i = 0; i < nparts; i++) {
        part = json_object_array_get_idx(parts, i);
        if (!is_text_part(part)) {
            (*nontext)++;
            continue;
        }
        if (json_object_object_get_ex(part, "text", &text) &&
            json_object_is_type(text, json_type_string))
            append(&buf, len, json_object_get_string(text),
                   (size_t)json_object_get_string_len(text));
    }
    return buf;
}

char *tokens_message_text(struct json_object *msg, size_t *len,
                          int64_t *nontext)
{
    struct json_object *content;

    *len = 0;
    *nontext = 0;
    if (!json_object_object_get_ex(msg, "content", &content))
        return util_xstrndup("", 0);

    if (json_object_is_type(content, json_type_string)) {
        *len = (size_t)json_object_get_string_len(content);
        return util_xstrndup(json_object_get_string(content), *len);
    }
    if (json_object_is_type(content, json_type_array))
        return parts_text(content, len, nontext);
    return util_xstrndup("", 0);
}

static int64_t string_pieces(struct json_object *obj, const char *key)
{
    struct json_object *value;

    if (!json_object_object_get_ex(obj, key, &value) ||
        !json_object_is_type(value, json_type_string))
        return 0;
    return tokens_count(json_object_get_string(value),
                        (size_t)json_object_get_string_len(value));
}

static int64_t tool_call_pieces(struct json_object *msg)
{
    struct json_object *calls, *function;
    int64_t pieces = 0;
    size_t ncalls;

    if (!json_object_object_get_ex(msg, "tool_calls", &calls) ||
        !json_object_is_type(calls, json_type_array))
        return 0;

    ncalls = json_object_array_length(calls);
    for (size_t i = 0; i < ncalls; i++) {
        struct json_object *call = json_object_array_get_idx(calls, i);

        if (!json_object_is_type(call, json_type_object) ||
            !json_object_object_get_ex(call, "function", &function) ||
            !json_object_is_type(function, json_type_object))
            continue;
        pieces += string_pieces(function, "name");
        pieces += string_pieces(function, "arguments");
    }
    return pieces;
}

int64_t tokens_message(struct json_object *msg)
{
    int64_t nontext, tokens;
    size_t len;
    char *text;

    if (!json_object_is_type(msg, json_type_object))
        return TOKENS_PER_MESSAGE;

    text = tokens_message_text(msg, &len, &nontext);
    tokens = TOKENS_PER_MESSAGE + tokens_count(text, len);
    free(text);

    tokens += nontext * TOKENS_PER_NONTEXT_PART;
    return tokens + tool_call_pieces(msg);
}

int64_t tokens_prompt(struct json_object *messages, size_t count)
{
    int64_t tokens = TOKENS_PER_PROMPT;

    for (size_t i = 0; i < count; i++)
        tokens += tokens_message(json_object_array_get_idx(messages, i));
    return tokens;
}
