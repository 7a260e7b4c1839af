/*
 * Reading feedback: the x-tollgate-feedback header and the JSON body of
 * POST /v1/outcomes/{id}/feedback. Both come from callers, so both are
 * strict: an unknown word is an error, never ignored.
 */
#include "feedback/feedback.h"

#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_HEX 24

bool feedback_is_outcome_id(const char *id)
{
    if (strncmp(id, "out_", 4) != 0 || strlen(id) != 4 + ID_HEX)
        return false;
    for (int i = 4; i < 4 + ID_HEX; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool parse_bool(const char *v, size_t len, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes"};
    static const char *const no[] = {"false", "0", "no"};

    for (size_t i = 0; i < 3; i++) {
        if (strlen(yes[i]) == len && strncasecmp(v, yes[i], len) == 0) {
            *out = true;
            return true;
        }
        if (strlen(no[i]) == len && strncasecmp(v, no[i], len) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_score(const char *v, size_t len, double *out)
{
    char text[64];
    char *end;

    if (len == 0 || len >= sizeof(text))
        return false;
    memcpy(text, v, len);
    text[len] = '\0';
    *out = strtod(text, &end);
    return *end == '\0' && isfinite(*out);
}

/* One parameter: "useful", "not-useful", "useful=B" or "score=N". */
static int parse_param(const char *p, size_t len, feedback_t *out,
                       bool *has_useful)
{
    const char *eq = memchr(p, '=', len);
    size_t name_len = eq ? (size_t)(eq - p) : len;
    const char *v = eq ? eq + 1 : NULL;
    size_t v_len = eq ? len - name_len - 1 : 0;

    if (!eq && len == 6 && strncasecmp(p, "useful", 6) == 0) {
        out->useful = true;
    } else if (!eq && len == 10 && strncasecmp(p, "not-useful", 10) == 0) {
        out->useful = false;
    } else if (eq && name_len == 6 && strncasecmp(p, "useful", 6) == 0) {
        if (!parse_bool(v, v_len, &out->useful))
            return -EINVAL;
    } else if (eq && name_len == 5 && strncasecmp(p, "score", 5) == 0) {
        if (!parse_score(v, v_len, &out->score))
            return -EINVAL;
        out->has_score = true;
        return 0;
    } else {
        return -EINVAL;
    }
    if (*has_useful)
        return -EINVAL;
    *has_useful = true;
    return 0;
}

int feedback_from_header(const char *value, feedback_t *out)
{
    const char *p = value;
    bool has_useful = false;
    size_t len;

    memset(out, 0, sizeof(*out));
    while (is_space(*p))
        p++;
    len = strcspn(p, "; \t");
    if (len != 4 + ID_HEX)
        return -EINVAL;
    memcpy(out->outcome_id, p, len);
    if (!feedback_is_outcome_id(out->outcome_id))
        return -EINVAL;
    p += len;

    for (;;) {
        while (is_space(*p) || *p == ';')
            p++;
        if (*p == '\0')
            break;
        len = strcspn(p, "; \t");
        if (parse_param(p, len, out, &has_useful) < 0)
            return -EINVAL;
        p += len;
    }
    return has_useful ? 0 : -EINVAL;
}

static int fail(char *err, size_t errlen, const char *message)
{
    snprintf(err, errlen, "%s", message);
    return -EINVAL;
}

static int read_fields(json_object *root, feedback_t *out, char *err,
                       size_t errlen)
{
    json_object *useful, *score, *note;
    const char *text;

    if (!json_object_object_get_ex(root, "useful", &useful) ||
        !json_object_is_type(useful, json_type_boolean))
        return fail(err, errlen,
                    "useful is required and must be true or "
                    "false");
    out->useful = json_object_get_boolean(useful);

    if (json_object_object_get_ex(root, "score", &score) && score != NULL) {
        if (!json_object_is_type(score, json_type_double) &&
            !json_object_is_type(score, json_type_int))
            return fail(err, errlen, "score must be a number");
        out->score = json_object_get_double(score);
        out->has_score = isfinite(out->score);
        if (!out->has_score)
            return fail(err, errlen, "score must be a finite number");
    }

    if (json_object_object_get_ex(root, "note", &note) && note != NULL) {
        if (!json_object_is_type(note, json_type_string))
            return fail(err, errlen, "note must be a string");
        text = json_object_get_string(note);
        if (strlen(text) >= sizeof(out->note))
            return fail(err, errlen, "note is longer than 511 bytes");
        snprintf(out->note, sizeof(out->note), "%s", text);
    }
    return 0;
}

static const char *const known_fields[] = {"useful", "score", "note"};

static int check_known(json_object *root, char *err, size_t errlen)
{
    json_object_object_foreach(root, name, value)
    {
        bool known = false;

        (void)value;
        for (size_t i = 0; i < 3; i++)
            known |= strcmp(name, known_fields[i]) == 0;
        if (!known) {
            snprintf(err, errlen,
                     "unknown field '%.64s': use useful, score and note", name);
            return -EINVAL;
        }
    }
    return 0;
}

int feedback_from_json(const char *outcome_id, const char *body, size_t len,
                       feedback_t *out, char *err, size_t errlen)
{
    json_tokener *tok;
    json_object *root;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!feedback_is_outcome_id(outcome_id))
        return fail(err, errlen, "an outcome id is out_ and 24 hex digits");
    snprintf(out->outcome_id, sizeof(out->outcome_id), "%s", outcome_id);
    tok = json_tokener_new();
    if (tok == NULL)
        die_oom();
    root = json_tokener_parse_ex(tok, body, (int)len);
    if (root == NULL || json_tokener_get_parse_end(tok) != len ||
        !json_object_is_type(root, json_type_object)) {
        rc = fail(err, errlen,
                  "the body must be a JSON object such as "
                  "{\"useful\": false}");
        goto out;
    }
    rc = check_known(root, err, errlen);
    if (rc == 0)
        rc = read_fields(root, out, err, errlen);

out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}
