/*
 * Building a check set from a JSON object (the shape a task's `checks:`
 * takes in the YAML config), for tests and for a loader that already
 * holds the config as JSON.
 */
#include "route/checks.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static int wrong(char *err, size_t errlen, const char *key, const char *need)
{
    snprintf(err, errlen, "checks: %s must be %s", key, need);
    return -EINVAL;
}

static int read_bool(struct json_object *v, const char *key, bool *out,
                     char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_boolean))
        return wrong(err, errlen, key, "true or false");
    *out = json_object_get_boolean(v);
    return 0;
}

static int read_count(struct json_object *v, const char *key, int64_t *out,
                      char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return wrong(err, errlen, key, "a non-negative integer");
    *out = json_object_get_int64(v);
    return 0;
}

static int read_string(struct json_object *v, const char *key, const char **out,
                       char *err, size_t errlen)
{
    if (!json_object_is_type(v, json_type_string))
        return wrong(err, errlen, key, "a string");
    *out = json_object_get_string(v);
    return 0;
}

static int read_phrases(struct json_object *v, const char **phrases,
                        checks_desc_t *d, char *err, size_t errlen)
{
    size_t n;

    if (!json_object_is_type(v, json_type_array))
        return wrong(err, errlen, "refusal_phrases", "an array of strings");
    n = json_object_array_length(v);
    if (n > CHECKS_MAX_PHRASES)
        return wrong(err, errlen, "refusal_phrases", "at most 64 strings");
    for (size_t i = 0; i < n; i++) {
        if (read_string(json_object_array_get_idx(v, i), "refusal_phrases",
                        &phrases[i], err, errlen) < 0)
            return -EINVAL;
    }
    d->refusal_phrases = phrases;
    d->n_refusal_phrases = n;
    d->no_refusal = true; /* a list given is a list meant to be used */
    return 0;
}

static int read_member(const char *key, struct json_object *v, checks_desc_t *d,
                       const char **phrases, char *err, size_t errlen)
{
    if (strcmp(key, "json") == 0)
        return read_bool(v, key, &d->json, err, errlen);
    if (strcmp(key, "no_truncation") == 0)
        return read_bool(v, key, &d->no_truncation, err, errlen);
    if (strcmp(key, "no_refusal") == 0)
        return read_bool(v, key, &d->no_refusal, err, errlen);
    if (strcmp(key, "final_number") == 0)
        return read_bool(v, key, &d->final_number, err, errlen);
    if (strcmp(key, "min_chars") == 0)
        return read_count(v, key, &d->min_chars, err, errlen);
    if (strcmp(key, "max_chars") == 0)
        return read_count(v, key, &d->max_chars, err, errlen);
    if (strcmp(key, "must_match") == 0)
        return read_string(v, key, &d->must_match, err, errlen);
    if (strcmp(key, "must_not_match") == 0)
        return read_string(v, key, &d->must_not_match, err, errlen);
    if (strcmp(key, "refusal_phrases") == 0)
        return read_phrases(v, phrases, d, err, errlen);
    if (strcmp(key, "schema") == 0) {
        d->schema = v;
        return 0;
    }
    snprintf(err, errlen, "checks: unknown member '%.64s'", key);
    return -EINVAL;
}

int checks_parse_json(struct json_object *obj, checks_t **out, char *err,
                      size_t errlen)
{
    const char *phrases[CHECKS_MAX_PHRASES];
    checks_desc_t d;

    *out = NULL;
    if (!json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "checks: must be an object");
        return -EINVAL;
    }
    checks_desc_init(&d);
    json_object_object_foreach(obj, key, v)
    {
        if (read_member(key, v, &d, phrases, err, errlen) < 0)
            return -EINVAL;
    }
    return checks_compile(&d, out, err, errlen);
}
