/*
 * Internals of the JSON Schema subset shared by its compiler
 * (jsonschema.c) and validator (jsonschema_validate.c). Not for other
 * modules.
 */
#ifndef TOLLGATE_JSONSCHEMA_INT_H
#define TOLLGATE_JSONSCHEMA_INT_H

#include "route/jsonschema.h"
#include "util/arena.h"

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

struct json_object;

/* A schema with more distinct sub-schemas than this is refused: configs
 * are written by hand, and the memo below is searched linearly. */
#define MAX_NODES 4096
#define PATH_MAX_LEN 512

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_INTEGER = 1 << 5,
    T_STRING = 1 << 6
};

#define N_TYPES 7

/* "null", "boolean", ... in bit order. */
extern const char *const jsonschema_type_names[N_TYPES];

typedef struct js_node node_t;

typedef struct prop {
    const char *name;
    node_t *schema;
} prop_t;

typedef struct bound {
    bool set;
    double value;
} bound_t;

typedef struct node_list {
    node_t **nodes;
    size_t n;
} node_list_t;

struct js_node {
    bool reject_all; /* the schema `false` */
    unsigned types;  /* 0: any type */
    struct json_object *enum_values;
    bool has_const;
    struct json_object *const_value;
    prop_t *props;
    size_t n_props;
    const char **required;
    size_t n_required;
    bool no_additional;
    node_t *additional;
    node_t *items;
    int64_t min_items, max_items, min_len, max_len; /* -1: unset */
    bound_t minimum, maximum, xminimum, xmaximum;
    regex_t *pattern;
    const char *pattern_text;
    node_list_t all_of, any_of, one_of;
    node_t *ref;
};

typedef struct compiled_regex {
    regex_t re;
    struct compiled_regex *next;
} compiled_regex_t;

struct jsonschema {
    arena_t *arena;
    struct json_object *root_json;
    node_t *root;
    compiled_regex_t *regexes;
};

/* A JSON pointer being built; segments past the cap are dropped. */
typedef struct pointer {
    char text[PATH_MAX_LEN];
    size_t len;
} pointer_t;

/* Appends one segment (escaped as RFC 6901 says) and returns the length
 * to pop back to. */
size_t jsonschema_pointer_push(pointer_t *p, const char *segment);
size_t jsonschema_pointer_push_index(pointer_t *p, size_t index);
void jsonschema_pointer_pop(pointer_t *p, size_t mark);

#endif
