/*
 * JSON Schema subset: the validator. It walks the compiled node graph
 * beside the instance, building the JSON pointer of the value at hand,
 * and stops at the first error. Every step down (into a value, a $ref or
 * a combinator) counts against JSONSCHEMA_MAX_DEPTH, which is what makes
 * a schema like {"$ref": "#"} finish.
 */
#include "route/jsonschema_int.h"

#include "route/regex.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct walk {
    pointer_t at; /* pointer of the instance value at hand */
    char *err;
    size_t errlen;
} walk_t;

static int check(walk_t *w, const node_t *n, struct json_object *v, int depth);

static int fail(walk_t *w, const char *what)
{
    snprintf(w->err, w->errlen, "%s: %s", w->at.len ? w->at.text : "/", what);
    return -EINVAL;
}

static bool is_integer(struct json_object *v)
{
    double d;

    if (json_object_is_type(v, json_type_int))
        return true;
    if (!json_object_is_type(v, json_type_double))
        return false;
    d = json_object_get_double(v);
    return isfinite(d) && floor(d) == d;
}

static unsigned type_of(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return T_NULL;
    case json_type_boolean:
        return T_BOOLEAN;
    case json_type_object:
        return T_OBJECT;
    case json_type_array:
        return T_ARRAY;
    case json_type_string:
        return T_STRING;
    default:
        return is_integer(v) ? T_NUMBER | T_INTEGER : T_NUMBER;
    }
}

static int check_type(walk_t *w, const node_t *n, struct json_object *v)
{
    char why[96] = "expected ";
    bool first = true;

    if (n->types == 0 || (n->types & type_of(v)) != 0)
        return 0;
    for (size_t i = 0; i < N_TYPES; i++) {
        if ((n->types & (1u << i)) == 0)
            continue;
        strcat(why, first ? "" : " or ");
        strcat(why, jsonschema_type_names[i]);
        first = false;
    }
    return fail(w, why);
}

static bool json_equal(struct json_object *a, struct json_object *b, int depth);

static bool objects_equal(struct json_object *a, struct json_object *b,
                          int depth)
{
    if (json_object_object_length(a) != json_object_object_length(b))
        return false;
    json_object_object_foreach(a, key, va)
    {
        struct json_object *vb;

        if (!json_object_object_get_ex(b, key, &vb) ||
            !json_equal(va, vb, depth + 1))
            return false;
    }
    return true;
}

static bool arrays_equal(struct json_object *a, struct json_object *b,
                         int depth)
{
    size_t n = json_object_array_length(a);

    if (n != json_object_array_length(b))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!json_equal(json_object_array_get_idx(a, i),
                        json_object_array_get_idx(b, i), depth + 1))
            return false;
    }
    return true;
}

/* Equality as JSON Schema means it: 1 equals 1.0, key order is moot. */
static bool json_equal(struct json_object *a, struct json_object *b, int depth)
{
    unsigned ta = type_of(a), tb = type_of(b);

    if (depth > JSONSCHEMA_MAX_DEPTH)
        return false;
    if ((ta & T_NUMBER) && (tb & T_NUMBER)) {
        if (json_object_is_type(a, json_type_int) &&
            json_object_is_type(b, json_type_int))
            return json_object_get_int64(a) == json_object_get_int64(b);
        return json_object_get_double(a) == json_object_get_double(b);
    }
    if (ta != tb)
        return false;
    if (ta == T_NULL)
        return true;
    if (ta == T_BOOLEAN)
        return json_object_get_boolean(a) == json_object_get_boolean(b);
    if (ta == T_STRING)
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    if (ta == T_ARRAY)
        return arrays_equal(a, b, depth);
    return objects_equal(a, b, depth);
}

static int check_enum_const(walk_t *w, const node_t *n, struct json_object *v)
{
    size_t count;

    if (n->has_const && !json_equal(n->const_value, v, 0))
        return fail(w, "not the const value");
    if (n->enum_values == NULL)
        return 0;
    count = json_object_array_length(n->enum_values);
    for (size_t i = 0; i < count; i++) {
        if (json_equal(json_object_array_get_idx(n->enum_values, i), v, 0))
            return 0;
    }
    return fail(w, "not one of the enum values");
}

static int check_number(walk_t *w, const node_t *n, struct json_object *v)
{
    double d = json_object_get_double(v);
    char why[96];

    if (n->minimum.set && d < n->minimum.value)
        snprintf(why, sizeof(why), "below minimum %g", n->minimum.value);
    else if (n->maximum.set && d > n->maximum.value)
        snprintf(why, sizeof(why), "above maximum %g", n->maximum.value);
    else if (n->xminimum.set && d <= n->xminimum.value)
        snprintf(why, sizeof(why), "not above exclusiveMinimum %g",
                 n->xminimum.value);
    else if (n->xmaximum.set && d >= n->xmaximum.value)
        snprintf(why, sizeof(why), "not below exclusiveMaximum %g",
                 n->xmaximum.value);
    else
        return 0;
    return fail(w, why);
}

static int64_t code_points(const char *s, size_t len)
{
    int64_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int check_string(walk_t *w, const node_t *n, struct json_object *v)
{
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    int64_t chars = code_points(s, len);
    char why[160];

    if (n->min_len >= 0 && chars < n->min_len)
        snprintf(why, sizeof(why), "shorter than minLength %lld",
                 (long long)n->min_len);
    else if (n->max_len >= 0 && chars > n->max_len)
        snprintf(why, sizeof(why), "longer than maxLength %lld",
                 (long long)n->max_len);
    else if (n->pattern != NULL && !route_regex_search(n->pattern, s, len))
        snprintf(why, sizeof(why), "does not match pattern '%.100s'",
                 n->pattern_text);
    else
        return 0;
    return fail(w, why);
}

static int check_array(walk_t *w, const node_t *n, struct json_object *v,
                       int depth)
{
    size_t count = json_object_array_length(v);
    char why[96];

    if (n->min_items >= 0 && (int64_t)count < n->min_items) {
        snprintf(why, sizeof(why), "fewer than minItems %lld",
                 (long long)n->min_items);
        return fail(w, why);
    }
    if (n->max_items >= 0 && (int64_t)count > n->max_items) {
        snprintf(why, sizeof(why), "more than maxItems %lld",
                 (long long)n->max_items);
        return fail(w, why);
    }
    for (size_t i = 0; n->items != NULL && i < count; i++) {
        size_t mark = jsonschema_pointer_push_index(&w->at, i);

        if (check(w, n->items, json_object_array_get_idx(v, i), depth) < 0)
            return -EINVAL;
        jsonschema_pointer_pop(&w->at, mark);
    }
    return 0;
}

static const node_t *declared(const node_t *n, const char *key)
{
    for (size_t i = 0; i < n->n_props; i++) {
        if (strcmp(n->props[i].name, key) == 0)
            return n->props[i].schema;
    }
    return NULL;
}

static int check_member(walk_t *w, const node_t *n, const char *key,
                        struct json_object *value, int depth)
{
    const node_t *schema = declared(n, key);
    size_t mark = jsonschema_pointer_push(&w->at, key);

    if (schema == NULL && n->no_additional)
        return fail(w, "property not allowed");
    if (schema == NULL)
        schema = n->additional;
    if (schema != NULL && check(w, schema, value, depth) < 0)
        return -EINVAL;
    jsonschema_pointer_pop(&w->at, mark);
    return 0;
}

static int check_object(walk_t *w, const node_t *n, struct json_object *v,
                        int depth)
{
    struct json_object *ignored;
    char why[160];

    for (size_t i = 0; i < n->n_required; i++) {
        if (json_object_object_get_ex(v, n->required[i], &ignored))
            continue;
        snprintf(why, sizeof(why), "missing required property '%.100s'",
                 n->required[i]);
        return fail(w, why);
    }
    json_object_object_foreach(v, key, value)
    {
        if (check_member(w, n, key, value, depth) < 0)
            return -EINVAL;
    }
    return 0;
}

/* How many branches v passes; their errors are not the caller's. */
static size_t count_passing(walk_t *w, const node_list_t *list,
                            struct json_object *v, int depth)
{
    char scratch[PATH_MAX_LEN + 160];
    walk_t sub = *w;
    size_t passing = 0;

    sub.err = scratch;
    sub.errlen = sizeof(scratch);
    for (size_t i = 0; i < list->n; i++) {
        sub.at = w->at;
        passing += check(&sub, list->nodes[i], v, depth) == 0;
    }
    return passing;
}

static int check_combinators(walk_t *w, const node_t *n, struct json_object *v,
                             int depth)
{
    char why[96];
    size_t passing;

    for (size_t i = 0; i < n->all_of.n; i++) {
        if (check(w, n->all_of.nodes[i], v, depth) < 0)
            return -EINVAL;
    }
    if (n->any_of.n > 0 && count_passing(w, &n->any_of, v, depth) == 0)
        return fail(w, "matches none of anyOf");
    if (n->one_of.n == 0)
        return 0;
    passing = count_passing(w, &n->one_of, v, depth);
    if (passing == 1)
        return 0;
    snprintf(why, sizeof(why), "matches %zu of oneOf, not exactly one",
             passing);
    return fail(w, why);
}

static int check_by_type(walk_t *w, const node_t *n, struct json_object *v,
                         int depth)
{
    unsigned t = type_of(v);

    if (t & T_NUMBER)
        return check_number(w, n, v);
    if (t == T_STRING)
        return check_string(w, n, v);
    if (t == T_ARRAY)
        return check_array(w, n, v, depth);
    if (t == T_OBJECT)
        return check_object(w, n, v, depth);
    return 0;
}

static int check(walk_t *w, const node_t *n, struct json_object *v, int depth)
{
    if (++depth > JSONSCHEMA_MAX_DEPTH)
        return fail(w, "nested deeper than 64");
    if (n->reject_all)
        return fail(w, "no value allowed here");
    if (n->ref != NULL && check(w, n->ref, v, depth) < 0)
        return -EINVAL;
    if (check_type(w, n, v) < 0 || check_enum_const(w, n, v) < 0)
        return -EINVAL;
    if (check_by_type(w, n, v, depth) < 0)
        return -EINVAL;
    return check_combinators(w, n, v, depth);
}

int jsonschema_validate(const jsonschema_t *js, struct json_object *instance,
                        char *err, size_t errlen)
{
    walk_t w = {.err = err, .errlen = errlen};

    w.at.text[0] = '\0';
    return check(&w, js->root, instance, 0);
}
