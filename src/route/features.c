/*
 * Route features of a request, read from its parsed JSON in whichever
 * shape the caller spoke: OpenAI chat, Anthropic messages or OpenAI
 * Responses. Only what rules look at is read; nothing is copied.
 */
#include "route/rules.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

static struct json_object *member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v))
        return NULL;
    return v;
}

static const char *member_string(struct json_object *obj, const char *key)
{
    struct json_object *v = member(obj, key);

    return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                    : NULL;
}

static bool non_empty_array(struct json_object *v)
{
    return json_object_is_type(v, json_type_array) &&
           json_object_array_length(v) > 0;
}

static bool is_image_part(struct json_object *part)
{
    const char *type = member_string(part, "type");

    return type != NULL &&
           (strcmp(type, "image_url") == 0 || strcmp(type, "image") == 0 ||
            strcmp(type, "input_image") == 0);
}

static bool any_image(struct json_object *turns)
{
    size_t n = json_object_array_length(turns);

    for (size_t i = 0; i < n; i++) {
        struct json_object *content =
            member(json_object_array_get_idx(turns, i), "content");
        size_t parts = json_object_is_type(content, json_type_array)
                           ? json_object_array_length(content)
                           : 0;

        for (size_t k = 0; k < parts; k++) {
            if (is_image_part(json_object_array_get_idx(content, k)))
                return true;
        }
    }
    return false;
}

static void add_part(route_features_t *f, struct json_object *text)
{
    if (!json_object_is_type(text, json_type_string) ||
        f->n_last_user == ROUTE_MAX_PARTS)
        return;
    f->last_user[f->n_last_user] = json_object_get_string(text);
    f->last_user_len[f->n_last_user] = (size_t)json_object_get_string_len(text);
    f->n_last_user++;
}

/* The text of one user turn: a plain string, or its text parts ("text"
 * in chat and messages, "input_text" in Responses). */
static void read_user_text(route_features_t *f, struct json_object *content)
{
    size_t n;

    if (json_object_is_type(content, json_type_string)) {
        add_part(f, content);
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        struct json_object *part = json_object_array_get_idx(content, i);
        const char *type = member_string(part, "type");

        if (type != NULL &&
            (strcmp(type, "text") == 0 || strcmp(type, "input_text") == 0))
            add_part(f, member(part, "text"));
    }
}

static void read_last_user(route_features_t *f, struct json_object *turns)
{
    for (size_t i = json_object_array_length(turns); i-- > 0;) {
        struct json_object *turn = json_object_array_get_idx(turns, i);
        const char *role = member_string(turn, "role");

        if (role != NULL && strcmp(role, "user") == 0) {
            read_user_text(f, member(turn, "content"));
            return;
        }
    }
}

static route_format_t format_named(const char *type)
{
    if (type == NULL)
        return ROUTE_FORMAT_NONE;
    if (strcmp(type, "text") == 0)
        return ROUTE_FORMAT_TEXT;
    if (strcmp(type, "json_object") == 0)
        return ROUTE_FORMAT_JSON_OBJECT;
    if (strcmp(type, "json_schema") == 0)
        return ROUTE_FORMAT_JSON_SCHEMA;
    return ROUTE_FORMAT_NONE;
}

/* response_format (chat), output_format (messages), text.format
 * (Responses): whichever the request has. */
static route_format_t read_format(struct json_object *req)
{
    struct json_object *fmt = member(req, "response_format");

    if (fmt == NULL)
        fmt = member(req, "output_format");
    if (fmt == NULL)
        fmt = member(member(req, "text"), "format");
    return format_named(member_string(fmt, "type"));
}

int route_features_from_request(struct json_object *req, route_features_t *f)
{
    struct json_object *turns = member(req, "messages");
    struct json_object *input = member(req, "input");

    memset(f, 0, sizeof(*f));
    if (!json_object_is_type(req, json_type_object))
        return -EINVAL;

    f->has_tools = non_empty_array(member(req, "tools")) ||
                   non_empty_array(member(req, "functions"));
    f->response_format = read_format(req);
    if (turns == NULL && json_object_is_type(input, json_type_string)) {
        add_part(f, input);
        return 0;
    }
    if (turns == NULL)
        turns = input;
    if (!json_object_is_type(turns, json_type_array))
        return 0;

    f->has_images = any_image(turns);
    read_last_user(f, turns);
    return 0;
}
