/*
 * Route rules from a JSON array (a task's `route.rules:` in the YAML
 * config, or a test's literal), turned into descriptions and compiled.
 */
#include "route/rules.h"

#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Borrowed strings of one rule, alive while the JSON is. */
typedef struct rule_strings {
    const char **keys;
    const char **teams;
} rule_strings_t;

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return -EINVAL;
}

/* A string or an array of strings, as a borrowed list. */
static int read_names(struct json_object *v, const char ***list, size_t *n,
                      char *err, size_t errlen)
{
    bool one = json_object_is_type(v, json_type_string);
    size_t count;

    if (!one && !json_object_is_type(v, json_type_array))
        return bad(err, errlen,
                   "key/team/response_format: a string or an "
                   "array of strings");
    count = one ? 1 : json_object_array_length(v);
    *list = calloc(count + 1, sizeof(char *));
    if (*list == NULL)
        die_oom();
    *n = count;
    for (size_t i = 0; i < count; i++) {
        struct json_object *e = one ? v : json_object_array_get_idx(v, i);

        if (!json_object_is_type(e, json_type_string))
            return bad(err, errlen,
                       "key/team/response_format: a string or "
                       "an array of strings");
        (*list)[i] = json_object_get_string(e);
    }
    return 0;
}

static int read_formats(struct json_object *v, unsigned *formats, char *err,
                        size_t errlen)
{
    static const char *const names[] = {"none", "text", "json_object",
                                        "json_schema"};
    const char **list = NULL;
    size_t n = 0;
    int rc = read_names(v, &list, &n, err, errlen);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t k = 0;

        while (k < 4 && strcmp(list[i], names[k]) != 0)
            k++;
        if (k == 4)
            rc = bad(err, errlen,
                     "response_format: none, text, "
                     "json_object or json_schema");
        else
            *formats |= 1u << k;
    }
    free(list);
    return rc;
}

static int read_tri(struct json_object *v, route_tri_t *out, char *err,
                    size_t errlen)
{
    if (!json_object_is_type(v, json_type_boolean))
        return bad(err, errlen, "tools/images: true or false");
    *out = json_object_get_boolean(v) ? ROUTE_YES : ROUTE_NO;
    return 0;
}

static int read_tokens(struct json_object *v, int64_t *out, char *err,
                       size_t errlen)
{
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return bad(err, errlen, "input token bounds: integers, 0 or more");
    *out = json_object_get_int64(v);
    return 0;
}

static int read_condition(const char *key, struct json_object *v,
                          route_when_t *w, rule_strings_t *s, char *err,
                          size_t errlen)
{
    if (strcmp(key, "min_input_tokens") == 0)
        return read_tokens(v, &w->min_input_tokens, err, errlen);
    if (strcmp(key, "max_input_tokens") == 0)
        return read_tokens(v, &w->max_input_tokens, err, errlen);
    if (strcmp(key, "tools") == 0)
        return read_tri(v, &w->tools, err, errlen);
    if (strcmp(key, "images") == 0)
        return read_tri(v, &w->images, err, errlen);
    if (strcmp(key, "response_format") == 0)
        return read_formats(v, &w->formats, err, errlen);
    if (strcmp(key, "key") == 0 && s->keys == NULL)
        return read_names(v, &s->keys, &w->n_keys, err, errlen);
    if (strcmp(key, "team") == 0 && s->teams == NULL)
        return read_names(v, &s->teams, &w->n_teams, err, errlen);
    if (strcmp(key, "last_user_matches") == 0) {
        if (!json_object_is_type(v, json_type_string))
            return bad(err, errlen, "last_user_matches: a string");
        w->last_user_matches = json_object_get_string(v);
        return 0;
    }
    snprintf(err, errlen, "unknown condition '%.64s'", key);
    return -EINVAL;
}

static int read_when(struct json_object *when, route_when_t *w,
                     rule_strings_t *s, char *err, size_t errlen)
{
    if (!json_object_is_type(when, json_type_object))
        return bad(err, errlen, "when: an object");
    json_object_object_foreach(when, key, v)
    {
        if (read_condition(key, v, w, s, err, errlen) < 0)
            return -EINVAL;
    }
    w->keys = s->keys;
    w->teams = s->teams;
    return 0;
}

static int read_rule(struct json_object *r, route_rule_desc_t *d,
                     rule_strings_t *s, char *err, size_t errlen)
{
    bool have_tier = false;

    route_when_init(&d->when);
    if (!json_object_is_type(r, json_type_object))
        return bad(err, errlen, "a rule is an object");
    json_object_object_foreach(r, key, v)
    {
        if (strcmp(key, "when") == 0) {
            if (read_when(v, &d->when, s, err, errlen) < 0)
                return -EINVAL;
        } else if (strcmp(key, "start_tier") == 0 &&
                   json_object_is_type(v, json_type_int)) {
            d->start_tier = json_object_get_int(v);
            have_tier = true;
        } else {
            snprintf(err, errlen, "unknown or mistyped member '%.64s'", key);
            return -EINVAL;
        }
    }
    return have_tier ? 0 : bad(err, errlen, "start_tier missing");
}

int route_rules_parse_json(struct json_object *rules, int default_tier,
                           route_rules_t **out, char *err, size_t errlen)
{
    size_t n = json_object_is_type(rules, json_type_array)
                   ? json_object_array_length(rules)
                   : 0;
    route_rule_desc_t *descs = calloc(n + 1, sizeof(*descs));
    rule_strings_t *strings = calloc(n + 1, sizeof(*strings));
    char why[200];
    int rc = 0;

    if (descs == NULL || strings == NULL)
        die_oom();
    *out = NULL;
    if (!json_object_is_type(rules, json_type_array))
        rc = bad(err, errlen, "rules: an array");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = read_rule(json_object_array_get_idx(rules, i), &descs[i],
                       &strings[i], why, sizeof(why));
        if (rc < 0)
            snprintf(err, errlen, "rule %zu: %s", i, why);
    }
    if (rc == 0)
        rc = route_rules_compile(descs, n, default_tier, out, err, errlen);

    for (size_t i = 0; i < n; i++) {
        free(strings[i].keys);
        free(strings[i].teams);
    }
    free(strings);
    free(descs);
    return rc;
}
