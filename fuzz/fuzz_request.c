/*
 * libFuzzer target for what the gateway does to a chat request body: a
 * strict json-c parse, then the model swap and the usage edit spliced
 * into the caller's bytes. Whatever the parser accepts must still parse
 * after the splice, carry the new model exactly and keep every other
 * member.
 *
 * Two known divergences are skipped unless FUZZ_REQUEST_STRICT=1: json-c
 * 0.16 accepts single-quoted object keys even with JSON_TOKENER_STRICT,
 * which jsonedit (rightly) refuses; and jsonedit compares keys on their
 * raw text (jsonedit.h), json-c on their decoded text, so a key written
 * "mod\u0065l" is "model" to json-c only.
 */
#include "util/jsonedit.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEW_MODEL "\"tollgate-upstream\""

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool hold_jsonc_view;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_request: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *env = getenv("FUZZ_REQUEST_STRICT");

    hold_jsonc_view = env != NULL && strcmp(env, "1") == 0;
    return 0;
}

/* The gateway's parse (chat.c parse_body): strict, whole body. */
static struct json_object *parse_strict(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;
    size_t end;

    check(tok != NULL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, text, (int)len);
    end = jsonedit_skip_ws(text, len, json_tokener_get_parse_end(tok));
    if (obj != NULL &&
        (json_tokener_get_error(tok) != json_tokener_success || end != len)) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    return obj;
}

/* True when the raw key at [start, end) has an escape and decodes to one
 * of the names the gateway edits. */
static bool escaped_edit_key(const char *text, size_t start, size_t end)
{
    static const char *const names[] = {"model", "stream_options",
                                        "include_usage"};
    struct json_object *key;
    char *copy;
    bool hit = false;

    if (memchr(text + start, '\\', end - start) == NULL)
        return false;
    copy = strndup(text + start, end - start);
    check(copy != NULL, "out of memory");
    key = json_tokener_parse(copy);
    free(copy);
    for (size_t i = 0; key != NULL && i < 3; i++)
        hit |= strcmp(json_object_get_string(key), names[i]) == 0;
    json_object_put(key);
    return hit;
}

static size_t skip_string_raw(const char *t, size_t len, size_t pos)
{
    for (pos++; pos < len; pos++) {
        if (t[pos] == '\\')
            pos++;
        else if (t[pos] == '"')
            return pos + 1;
    }
    return len;
}

static size_t skip_value_raw(const char *t, size_t len, size_t pos)
{
    int depth = 0;

    do {
        char c;

        if (pos >= len)
            return len;
        c = t[pos];
        if (c == '"') {
            pos = skip_string_raw(t, len, pos);
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (depth == 0) {
            while (pos < len && memchr(",}] \t\r\n", t[pos], 7) == NULL)
                pos++;
            return pos;
        }
        pos++;
    } while (depth > 0);
    return pos;
}

/* In text json-c accepted strictly, a single quote outside a string can
 * only open a single-quoted key: not JSON, though json-c takes it. */
static bool has_single_quoted_key(const char *t, size_t len)
{
    for (size_t pos = 0; pos < len; pos++) {
        if (t[pos] == '\'')
            return true;
        if (t[pos] == '"')
            pos = skip_string_raw(t, len, pos) - 1;
    }
    return false;
}

/*
 * Walks the members of the valid object at obj; true when a key the
 * gateway edits is written with an escape there or, one level down, in
 * the object value of any member.
 */
static bool has_escaped_edit_key(const char *t, size_t len, size_t obj,
                                 int levels)
{
    size_t pos = jsonedit_skip_ws(t, len, obj + 1);

    while (pos < len && t[pos] == '"') {
        size_t kend = skip_string_raw(t, len, pos), vstart, vend;

        if (escaped_edit_key(t, pos, kend))
            return true;
        vstart = jsonedit_skip_ws(t, len, jsonedit_skip_ws(t, len, kend) + 1);
        vend = skip_value_raw(t, len, vstart);
        if (levels > 0 && vstart < len && t[vstart] == '{' &&
            has_escaped_edit_key(t, len, vstart, levels - 1))
            return true;
        pos = jsonedit_skip_ws(t, len, vend);
        if (pos < len && t[pos] == ',')
            pos = jsonedit_skip_ws(t, len, pos + 1);
    }
    return false;
}

/* Compared as json-c prints them, since json_object_equal() holds NaN
 * unequal to itself and json-c reads NaN even when strict. */
static bool same_value(struct json_object *a, struct json_object *b)
{
    return strcmp(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) ==
           0;
}

/* Every member of a other than skip is in b with an equal value. */
static void check_members_kept(struct json_object *a, struct json_object *b,
                               const char *skip)
{
    json_object_object_foreach(a, key, val)
    {
        struct json_object *other;

        if (strcmp(key, skip) == 0)
            continue;
        check(json_object_object_get_ex(b, key, &other) &&
                  same_value(val, other),
              "a member changed");
    }
}

static bool wants_usage(struct json_object *obj)
{
    struct json_object *opts, *inc;

    return json_object_object_get_ex(obj, "stream_options", &opts) &&
           json_object_is_type(opts, json_type_object) &&
           json_object_object_get_ex(opts, "include_usage", &inc) &&
           json_object_is_type(inc, json_type_boolean) &&
           json_object_get_boolean(inc);
}

/* Returns the model edit in *edit (0 edits when there is no model). */
static size_t check_model_edit(arena_t *arena, const char *text, size_t len,
                               struct json_object *orig, bool plain,
                               json_edit_t *edit)
{
    json_span_t span;
    struct json_object *edited, *model;
    size_t top = jsonedit_skip_ws(text, len, 0), nl = strlen(NEW_MODEL);
    size_t out_len;
    int rc = jsonedit_find(text, len, top, "model", &span);
    const char *out;

    check(rc != -EINVAL, "find refused an object json-c accepted");
    if (plain)
        check(rc == (json_object_object_get_ex(orig, "model", NULL) ? 0
                                                                    : -ENOENT),
              "find disagrees with json-c about model");
    if (rc != 0)
        return 0;
    *edit = (json_edit_t){span.start, span.end, NEW_MODEL};
    out = jsonedit_apply(arena, text, len, edit, 1, &out_len);
    check(out_len == len - (span.end - span.start) + nl &&
              memcmp(out, text, span.start) == 0 &&
              memcmp(out + span.start, NEW_MODEL, nl) == 0 &&
              memcmp(out + span.start + nl, text + span.end, len - span.end) ==
                  0,
          "model splice is not exact");
    edited = parse_strict(out, out_len);
    check(edited != NULL, "model splice made invalid JSON");
    if (plain) {
        check(json_object_object_get_ex(edited, "model", &model) &&
                  strcmp(json_object_get_string(model), "tollgate-upstream") ==
                      0,
              "json-c does not see the new model");
        check_members_kept(orig, edited, "model");
    }
    json_object_put(edited);
    return 1;
}

static size_t check_usage_edit(arena_t *arena, const char *text, size_t len,
                               struct json_object *orig, bool plain,
                               json_edit_t *edit)
{
    bool asked;
    int rc = jsonedit_usage_edit(arena, text, len, edit, &asked);
    size_t out_len;
    const char *out;
    struct json_object *edited, *a, *b;

    check(rc == 0 || rc == 1, "usage edit refused an object json-c accepted");
    out = jsonedit_apply(arena, text, len, edit, (size_t)rc, &out_len);
    edited = parse_strict(out, out_len);
    check(edited != NULL, "usage edit made invalid JSON");
    if (plain) {
        check(asked == wants_usage(orig), "caller_asked is wrong");
        check(rc == (asked ? 0 : 1), "edit count is wrong");
        check(wants_usage(edited), "edited request does not ask for usage");
        check_members_kept(orig, edited, "stream_options");
        if (json_object_object_get_ex(orig, "stream_options", &a) &&
            json_object_is_type(a, json_type_object)) {
            json_object_object_get_ex(edited, "stream_options", &b);
            check_members_kept(a, b, "include_usage");
        }
    }
    json_object_put(edited);
    return (size_t)rc;
}

static void check_object(arena_t *arena, const char *text, size_t len,
                         struct json_object *obj)
{
    json_edit_t edits[2];
    size_t n, out_len;
    const char *out;
    struct json_object *edited;
    bool plain =
        hold_jsonc_view ||
        !has_escaped_edit_key(text, len, jsonedit_skip_ws(text, len, 0), 1);

    if (!hold_jsonc_view && has_single_quoted_key(text, len))
        return;
    n = check_model_edit(arena, text, len, obj, plain, &edits[0]);
    n += check_usage_edit(arena, text, len, obj, plain, &edits[n]);
    out = jsonedit_apply(arena, text, len, edits, n, &out_len);
    edited = parse_strict(out, out_len);
    check(edited != NULL, "model and usage edits together made invalid JSON");
    json_object_put(edited);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    arena_t *arena;
    struct json_object *obj;
    json_edit_t edit;
    json_span_t span;
    bool asked;
    int rc;

    if (size > (1u << 20))
        return 0;
    arena = arena_new(4096);
    obj = parse_strict(text, size);
    rc = jsonedit_usage_edit(arena, text, size, &edit, &asked);
    check(rc == 0 || rc == 1 || rc == -EINVAL, "usage edit code");
    rc = jsonedit_find(text, size, 0, "model", &span);
    check(rc == 0 || rc == -ENOENT || rc == -EINVAL, "find code");
    if (obj != NULL && json_object_is_type(obj, json_type_object))
        check_object(arena, text, size, obj);
    else if (obj != NULL)
        check(jsonedit_usage_edit(arena, text, size, &edit, &asked) == -EINVAL,
              "usage edit accepted a body that is not an object");
    json_object_put(obj);
    arena_free(arena);
    return 0;
}
