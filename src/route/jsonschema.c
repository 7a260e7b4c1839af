/*
 * JSON Schema subset: the compiler. Each schema object compiles to
 * exactly one node, remembered by address, so a $ref cycle (a tree whose
 * children are trees) compiles to a cyclic graph and never loops; the
 * validator walks that graph with a depth counter.
 */
#include "route/jsonschema_int.h"

#include "route/regex.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const jsonschema_type_names[N_TYPES] = {
    "null", "boolean", "object", "array", "number", "integer", "string"};

typedef struct compiler {
    jsonschema_t *js;
    struct json_object *memo_json[MAX_NODES];
    node_t *memo_node[MAX_NODES];
    size_t n_memo;
    int depth;
    pointer_t path; /* where in the schema, for errors */
    char *err;
    size_t errlen;
} compiler_t;

size_t jsonschema_pointer_push(pointer_t *p, const char *segment)
{
    size_t mark = p->len;
    char buf[PATH_MAX_LEN];
    size_t n = 0;

    for (const char *s = segment; *s != '\0' && n + 3 < sizeof(buf); s++) {
        if (*s == '~' || *s == '/') {
            buf[n++] = '~';
            buf[n++] = *s == '~' ? '0' : '1';
        } else {
            buf[n++] = *s;
        }
    }
    buf[n] = '\0';
    if (p->len + n + 2 <= sizeof(p->text)) {
        p->text[p->len++] = '/';
        memcpy(p->text + p->len, buf, n + 1);
        p->len += n;
    }
    return mark;
}

size_t jsonschema_pointer_push_index(pointer_t *p, size_t index)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%zu", index);
    return jsonschema_pointer_push(p, buf);
}

void jsonschema_pointer_pop(pointer_t *p, size_t mark)
{
    p->len = mark;
    p->text[mark] = '\0';
}

static int fail(compiler_t *c, const char *what)
{
    snprintf(c->err, c->errlen, "schema %s: %s",
             c->path.len ? c->path.text : "/", what);
    return -EINVAL;
}

static int compile(compiler_t *c, struct json_object *s, node_t **out);

static int compile_child(compiler_t *c, struct json_object *s,
                         const char *keyword, const char *name, node_t **out)
{
    size_t mark = jsonschema_pointer_push(&c->path, keyword);
    int rc;

    if (name != NULL)
        jsonschema_pointer_push(&c->path, name);
    rc = compile(c, s, out);
    if (rc == 0)
        jsonschema_pointer_pop(&c->path, mark);
    return rc;
}

static bool is_number(struct json_object *v)
{
    return json_object_is_type(v, json_type_int) ||
           json_object_is_type(v, json_type_double);
}

static int type_bit(const char *name, unsigned *bits)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        if (strcmp(name, jsonschema_type_names[i]) == 0) {
            *bits |= 1u << i;
            return 0;
        }
    }
    return -EINVAL;
}

static int kw_type(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *t;
    char why[160];
    size_t count;

    if (!json_object_object_get_ex(s, "type", &t))
        return 0;
    if (json_object_is_type(t, json_type_string)) {
        if (type_bit(json_object_get_string(t), &n->types) == 0)
            return 0;
        snprintf(why, sizeof(why), "unknown type '%.64s'",
                 json_object_get_string(t));
        return fail(c, why);
    }
    if (!json_object_is_type(t, json_type_array))
        return fail(c, "type must be a string or an array of strings");

    count = json_object_array_length(t);
    for (size_t i = 0; i < count; i++) {
        struct json_object *e = json_object_array_get_idx(t, i);

        if (!json_object_is_type(e, json_type_string) ||
            type_bit(json_object_get_string(e), &n->types) < 0)
            return fail(c, "type array holds an unknown type");
    }
    return 0;
}

static int kw_enum_const(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *v;

    if (json_object_object_get_ex(s, "enum", &v)) {
        if (!json_object_is_type(v, json_type_array))
            return fail(c, "enum must be an array");
        n->enum_values = v;
    }
    if (json_object_object_get_ex(s, "const", &v)) {
        n->has_const = true;
        n->const_value = v;
    }
    return 0;
}

static int get_bound(compiler_t *c, struct json_object *s, const char *key,
                     bound_t *b)
{
    struct json_object *v;

    if (!json_object_object_get_ex(s, key, &v))
        return 0;
    if (json_object_is_type(v, json_type_boolean))
        return 0; /* draft 4 exclusive flags, read by kw_numbers */
    if (!is_number(v))
        return fail(c, "numeric bound must be a number");
    b->set = true;
    b->value = json_object_get_double(v);
    return 0;
}

/* Draft 4 spells exclusive bounds as booleans beside minimum/maximum. */
static void draft4_exclusive(struct json_object *s, const char *flag,
                             bound_t *plain, bound_t *exclusive)
{
    struct json_object *v;

    if (json_object_object_get_ex(s, flag, &v) &&
        json_object_is_type(v, json_type_boolean) &&
        json_object_get_boolean(v) && plain->set) {
        *exclusive = *plain;
        plain->set = false;
    }
}

static int kw_numbers(compiler_t *c, struct json_object *s, node_t *n)
{
    if (get_bound(c, s, "minimum", &n->minimum) < 0 ||
        get_bound(c, s, "maximum", &n->maximum) < 0 ||
        get_bound(c, s, "exclusiveMinimum", &n->xminimum) < 0 ||
        get_bound(c, s, "exclusiveMaximum", &n->xmaximum) < 0)
        return -EINVAL;
    draft4_exclusive(s, "exclusiveMinimum", &n->minimum, &n->xminimum);
    draft4_exclusive(s, "exclusiveMaximum", &n->maximum, &n->xmaximum);
    return 0;
}

static int get_count(compiler_t *c, struct json_object *s, const char *key,
                     int64_t *out)
{
    struct json_object *v;

    *out = -1;
    if (!json_object_object_get_ex(s, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return fail(c, "count must be a non-negative integer");
    *out = json_object_get_int64(v);
    return 0;
}

static int kw_pattern(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *v;
    compiled_regex_t *cr;
    char why[160], reason[128];

    if (!json_object_object_get_ex(s, "pattern", &v))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return fail(c, "pattern must be a string");

    cr = calloc(1, sizeof(*cr));
    if (cr == NULL)
        die_oom();
    if (route_regex_compile(&cr->re, json_object_get_string(v), reason,
                            sizeof(reason)) < 0) {
        free(cr);
        snprintf(why, sizeof(why), "pattern: %s", reason);
        return fail(c, why);
    }
    cr->next = c->js->regexes;
    c->js->regexes = cr;
    n->pattern = &cr->re;
    n->pattern_text = json_object_get_string(v);
    return 0;
}

static int kw_strings(compiler_t *c, struct json_object *s, node_t *n)
{
    if (get_count(c, s, "minLength", &n->min_len) < 0 ||
        get_count(c, s, "maxLength", &n->max_len) < 0)
        return -EINVAL;
    return kw_pattern(c, s, n);
}

static int kw_arrays(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *v;

    if (get_count(c, s, "minItems", &n->min_items) < 0 ||
        get_count(c, s, "maxItems", &n->max_items) < 0)
        return -EINVAL;
    if (!json_object_object_get_ex(s, "items", &v))
        return 0;
    if (json_object_is_type(v, json_type_array))
        return fail(c, "items as an array (tuples) is not supported");
    return compile_child(c, v, "items", NULL, &n->items);
}

static int kw_properties(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *v;
    size_t i = 0;

    if (!json_object_object_get_ex(s, "properties", &v))
        return 0;
    if (!json_object_is_type(v, json_type_object))
        return fail(c, "properties must be an object");

    n->n_props = (size_t)json_object_object_length(v);
    n->props = arena_alloc(c->js->arena, n->n_props * sizeof(prop_t) + 1);
    json_object_object_foreach(v, name, sub)
    {
        n->props[i].name = name;
        if (compile_child(c, sub, "properties", name, &n->props[i].schema) < 0)
            return -EINVAL;
        i++;
    }
    return 0;
}

static int kw_required(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *v;

    if (!json_object_object_get_ex(s, "required", &v))
        return 0;
    if (!json_object_is_type(v, json_type_array))
        return fail(c, "required must be an array of strings");

    n->n_required = json_object_array_length(v);
    n->required = arena_alloc(c->js->arena, n->n_required * sizeof(char *) + 1);
    for (size_t i = 0; i < n->n_required; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);

        if (!json_object_is_type(e, json_type_string))
            return fail(c, "required must be an array of strings");
        n->required[i] = json_object_get_string(e);
    }
    return 0;
}

static int kw_objects(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *v;

    if (kw_properties(c, s, n) < 0 || kw_required(c, s, n) < 0)
        return -EINVAL;
    if (!json_object_object_get_ex(s, "additionalProperties", &v))
        return 0;
    if (json_object_is_type(v, json_type_boolean)) {
        n->no_additional = !json_object_get_boolean(v);
        return 0;
    }
    return compile_child(c, v, "additionalProperties", NULL, &n->additional);
}

static int kw_list(compiler_t *c, struct json_object *s, const char *key,
                   node_list_t *list)
{
    struct json_object *v;

    if (!json_object_object_get_ex(s, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_array) ||
        json_object_array_length(v) == 0)
        return fail(c, "allOf/anyOf/oneOf must be a non-empty array");

    list->n = json_object_array_length(v);
    list->nodes = arena_alloc(c->js->arena, list->n * sizeof(node_t *));
    for (size_t i = 0; i < list->n; i++) {
        char index[24];

        snprintf(index, sizeof(index), "%zu", i);
        if (compile_child(c, json_object_array_get_idx(v, i), key, index,
                          &list->nodes[i]) < 0)
            return -EINVAL;
    }
    return 0;
}

/* Decodes one RFC 6901 segment of length len into out. */
static void unescape_segment(const char *seg, size_t len, char *out,
                             size_t outlen)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < outlen; i++) {
        if (seg[i] == '~' && i + 1 < len &&
            (seg[i + 1] == '0' || seg[i + 1] == '1')) {
            out[n++] = seg[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            out[n++] = seg[i];
        }
    }
    out[n] = '\0';
}

static struct json_object *resolve_step(struct json_object *at,
                                        const char *name)
{
    struct json_object *v = NULL;
    char *end;
    long index;

    if (json_object_is_type(at, json_type_object))
        return json_object_object_get_ex(at, name, &v) ? v : NULL;
    if (!json_object_is_type(at, json_type_array))
        return NULL;
    index = strtol(name, &end, 10);
    if (*name == '\0' || *end != '\0' || index < 0)
        return NULL;
    return json_object_array_get_idx(at, (size_t)index);
}

/* The value a local reference ("#", "#/definitions/x") points at. */
static struct json_object *resolve_ref(struct json_object *root,
                                       const char *ref)
{
    struct json_object *at = root;
    const char *p = ref + 1;

    while (*p == '/' && at != NULL) {
        const char *end = strchr(p + 1, '/');
        size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
        char name[256];

        unescape_segment(p + 1, len, name, sizeof(name));
        at = resolve_step(at, name);
        p += len + 1;
    }
    return *p == '\0' ? at : NULL;
}

static int kw_ref(compiler_t *c, struct json_object *s, node_t *n)
{
    struct json_object *v, *target;

    if (!json_object_object_get_ex(s, "$ref", &v))
        return 0;
    if (!json_object_is_type(v, json_type_string) ||
        json_object_get_string(v)[0] != '#')
        return fail(c, "only local $ref (\"#...\") is supported");

    target = resolve_ref(c->js->root_json, json_object_get_string(v));
    if (target == NULL)
        return fail(c, "$ref points at nothing");
    return compile_child(c, target, "$ref", NULL, &n->ref);
}

static int compile_keywords(compiler_t *c, struct json_object *s, node_t *n)
{
    if (kw_type(c, s, n) < 0 || kw_enum_const(c, s, n) < 0 ||
        kw_numbers(c, s, n) < 0 || kw_strings(c, s, n) < 0 ||
        kw_arrays(c, s, n) < 0 || kw_objects(c, s, n) < 0)
        return -EINVAL;
    if (kw_list(c, s, "allOf", &n->all_of) < 0 ||
        kw_list(c, s, "anyOf", &n->any_of) < 0 ||
        kw_list(c, s, "oneOf", &n->one_of) < 0)
        return -EINVAL;
    return kw_ref(c, s, n);
}

static node_t *node_new(compiler_t *c, struct json_object *s)
{
    node_t *n = arena_alloc(c->js->arena, sizeof(*n));

    memset(n, 0, sizeof(*n));
    n->min_items = n->max_items = n->min_len = n->max_len = -1;
    c->memo_json[c->n_memo] = s;
    c->memo_node[c->n_memo++] = n;
    return n;
}

static int compile(compiler_t *c, struct json_object *s, node_t **out)
{
    int rc;

    for (size_t i = 0; i < c->n_memo; i++) {
        if (c->memo_json[i] == s) {
            *out = c->memo_node[i];
            return 0;
        }
    }
    if (c->n_memo == MAX_NODES)
        return fail(c, "too many sub-schemas");
    if (c->depth >= JSONSCHEMA_MAX_DEPTH)
        return fail(c, "nested too deep");
    if (json_object_is_type(s, json_type_boolean)) {
        *out = node_new(c, s);
        (*out)->reject_all = !json_object_get_boolean(s);
        return 0;
    }
    if (!json_object_is_type(s, json_type_object))
        return fail(c, "a schema must be an object or a boolean");

    *out = node_new(c, s);
    c->depth++;
    rc = compile_keywords(c, s, *out);
    c->depth--;
    return rc;
}

void jsonschema_free(jsonschema_t *js)
{
    if (js == NULL)
        return;
    while (js->regexes != NULL) {
        compiled_regex_t *next = js->regexes->next;

        regfree(&js->regexes->re);
        free(js->regexes);
        js->regexes = next;
    }
    json_object_put(js->root_json);
    arena_free(js->arena);
    free(js);
}

int jsonschema_compile(struct json_object *schema, jsonschema_t **out,
                       char *err, size_t errlen)
{
    compiler_t *c = calloc(1, sizeof(*c));
    jsonschema_t *js = calloc(1, sizeof(*js));
    int rc;

    if (c == NULL || js == NULL)
        die_oom();
    js->arena = arena_new(4096);
    js->root_json = json_object_get(schema);
    c->js = js;
    c->err = err;
    c->errlen = errlen;

    rc = compile(c, schema, &js->root);
    if (rc < 0) {
        jsonschema_free(js);
        js = NULL;
    }
    *out = js;
    free(c);
    return rc;
}
