/*
 * Route rules: which tier of a task's chain a request starts at, from
 * the request's features (size, tools, images, response format, the last
 * user turn, key, team). First matching rule wins; else the default.
 */
#ifndef TOLLGATE_ROUTE_RULES_H
#define TOLLGATE_ROUTE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Text parts of the last user turn a pattern is tried on; more are not
 * looked at. */
#define ROUTE_MAX_PARTS 16

typedef enum route_format {
    ROUTE_FORMAT_NONE = 0, /* the request names none */
    ROUTE_FORMAT_TEXT,
    ROUTE_FORMAT_JSON_OBJECT,
    ROUTE_FORMAT_JSON_SCHEMA
} route_format_t;

/*
 * What rules look at. Strings are borrowed: the text parts point into
 * the parsed request and live as long as it does.
 */
typedef struct route_features {
    int64_t input_tokens; /* the gateway's estimate; the caller sets it */
    bool has_tools;
    bool has_images;
    route_format_t response_format;
    const char *last_user[ROUTE_MAX_PARTS]; /* text parts, in order */
    size_t last_user_len[ROUTE_MAX_PARTS];
    size_t n_last_user;
    const char *key;  /* key name; the caller sets it (NULL: none) */
    const char *team; /* the caller sets it (NULL: none) */
} route_features_t;

/*
 * Reads has_tools, has_images, response_format and the last user turn's
 * text from a request in any of the three shapes: OpenAI chat
 * (messages, tools or functions, response_format), Anthropic messages
 * (messages with content blocks, tools, output_format) and OpenAI
 * Responses (input as a string or items, tools, text.format). Zeroes
 * everything else: set input_tokens, key and team after. Images are
 * image_url, image and input_image parts in any message. Returns 0, or
 * -EINVAL when req is not an object (f is zeroed then).
 */
int route_features_from_request(struct json_object *req, route_features_t *f);

typedef enum route_tri {
    ROUTE_EITHER = 0, /* not asked */
    ROUTE_YES,
    ROUTE_NO
} route_tri_t;

/* Conditions of one rule; all that are set must hold. */
typedef struct route_when {
    int64_t min_input_tokens; /* -1: unset */
    int64_t max_input_tokens; /* -1: unset */
    route_tri_t tools;
    route_tri_t images;
    unsigned formats; /* bit (1 << route_format_t) per allowed one; 0 any */
    const char *last_user_matches; /* route/regex.h dialect; NULL unset */
    const char *const *keys;       /* any of these key names */
    size_t n_keys;
    const char *const *teams; /* any of these teams */
    size_t n_teams;
} route_when_t;

typedef struct route_rule_desc {
    route_when_t when;
    int start_tier; /* index into the task's tier chain, from 0 */
} route_rule_desc_t;

typedef struct route_rules route_rules_t;

/* Sets every condition of when to unset. */
void route_when_init(route_when_t *when);

/*
 * Compiles n rules (copied; nothing is kept by reference) with the tier
 * used when none matches. Returns 0 with *out (free with
 * route_rules_free) or -EINVAL with "rule N: reason" in err.
 */
int route_rules_compile(const route_rule_desc_t *rules, size_t n,
                        int default_tier, route_rules_t **out, char *err,
                        size_t errlen);

/*
 * Builds rules from a JSON array such as [{"when": {"min_input_tokens":
 * 8000, "tools": true, "images": false, "response_format":
 * ["json_schema", "json_object"], "last_user_matches": "(?i)^translate",
 * "key": "ci-bot", "team": ["research"]}, "start_tier": 2}]. key, team
 * and response_format take a string or an array of strings;
 * response_format names are none, text, json_object, json_schema.
 * Unknown members are errors. Same ownership and errors as
 * route_rules_compile.
 */
int route_rules_parse_json(struct json_object *rules, int default_tier,
                           route_rules_t **out, char *err, size_t errlen);

void route_rules_free(route_rules_t *rules);

/*
 * The start tier for f: the first matching rule's, else the default. A
 * pattern matches when it matches any text part of the last user turn.
 * *matched (may be NULL) gets the rule's index, or -1 for the default.
 * Never fails; safe on several threads at once.
 */
int route_rules_pick(const route_rules_t *rules, const route_features_t *f,
                     int *matched);

/* The highest tier any rule or the default names, so the config can
 * check it against the task's chain. */
int route_rules_max_tier(const route_rules_t *rules);

#endif
