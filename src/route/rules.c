/*
 * Route rules: compiling a task's ordered rules and picking the start
 * tier for a request. Rules are few and checked in order; the costly
 * part, the pattern, is compiled once here.
 */
#include "route/rules.h"

#include "route/regex.h"
#include "util/arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rule {
    route_when_t when; /* keys and teams point at the copies below */
    char **keys;
    char **teams;
    bool has_pattern;
    regex_t pattern;
    int start_tier;
} rule_t;

struct route_rules {
    rule_t *rules;
    size_t n;
    int default_tier;
};

void route_when_init(route_when_t *when)
{
    memset(when, 0, sizeof(*when));
    when->min_input_tokens = -1;
    when->max_input_tokens = -1;
}

static char *copy_string(const char *s)
{
    char *c = strdup(s);

    if (c == NULL)
        die_oom();
    return c;
}

static char **copy_list(const char *const *list, size_t n)
{
    char **c = calloc(n + 1, sizeof(char *));

    if (c == NULL)
        die_oom();
    for (size_t i = 0; i < n; i++)
        c[i] = copy_string(list[i]);
    return c;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
}

void route_rules_free(route_rules_t *rules)
{
    if (rules == NULL)
        return;
    for (size_t i = 0; i < rules->n; i++) {
        rule_t *r = &rules->rules[i];

        free_list(r->keys, r->when.n_keys);
        free_list(r->teams, r->when.n_teams);
        if (r->has_pattern)
            regfree(&r->pattern);
    }
    free(rules->rules);
    free(rules);
}

static int compile_rule(const route_rule_desc_t *d, rule_t *r, char *err,
                        size_t errlen)
{
    const route_when_t *w = &d->when;

    if (d->start_tier < 0) {
        snprintf(err, errlen, "start_tier must be 0 or more");
        return -EINVAL;
    }
    if (w->min_input_tokens >= 0 && w->max_input_tokens >= 0 &&
        w->min_input_tokens > w->max_input_tokens) {
        snprintf(err, errlen, "min_input_tokens above max_input_tokens");
        return -EINVAL;
    }
    r->when = *w;
    r->start_tier = d->start_tier;
    r->keys = copy_list(w->keys, w->n_keys);
    r->teams = copy_list(w->teams, w->n_teams);
    r->when.keys = (const char *const *)r->keys;
    r->when.teams = (const char *const *)r->teams;
    r->when.last_user_matches = NULL;

    if (w->last_user_matches == NULL)
        return 0;
    if (route_regex_compile(&r->pattern, w->last_user_matches, err, errlen) < 0)
        return -EINVAL;
    r->has_pattern = true;
    return 0;
}

int route_rules_compile(const route_rule_desc_t *descs, size_t n,
                        int default_tier, route_rules_t **out, char *err,
                        size_t errlen)
{
    route_rules_t *rules = calloc(1, sizeof(*rules));
    char why[200];

    if (rules == NULL || (rules->rules = calloc(n + 1, sizeof(rule_t))) == NULL)
        die_oom();
    rules->default_tier = default_tier;
    *out = NULL;
    if (default_tier < 0) {
        snprintf(err, errlen, "default tier must be 0 or more");
        goto free_rules;
    }
    for (; rules->n < n; rules->n++) {
        if (compile_rule(&descs[rules->n], &rules->rules[rules->n], why,
                         sizeof(why)) < 0) {
            snprintf(err, errlen, "rule %zu: %s", rules->n, why);
            rules->n++; /* free what this rule got so far */
            goto free_rules;
        }
    }
    *out = rules;
    return 0;

free_rules:
    route_rules_free(rules);
    return -EINVAL;
}

static bool listed(const char *const *list, size_t n, const char *name)
{
    if (n == 0)
        return true;
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(list[i], name) == 0)
            return true;
    }
    return false;
}

static bool tri_holds(route_tri_t want, bool have)
{
    return want == ROUTE_EITHER || (want == ROUTE_YES) == have;
}

static bool pattern_holds(const rule_t *r, const route_features_t *f)
{
    if (!r->has_pattern)
        return true;
    for (size_t i = 0; i < f->n_last_user; i++) {
        if (route_regex_search(&r->pattern, f->last_user[i],
                               f->last_user_len[i]))
            return true;
    }
    return false;
}

static bool rule_holds(const rule_t *r, const route_features_t *f)
{
    const route_when_t *w = &r->when;

    if (w->min_input_tokens >= 0 && f->input_tokens < w->min_input_tokens)
        return false;
    if (w->max_input_tokens >= 0 && f->input_tokens > w->max_input_tokens)
        return false;
    if (!tri_holds(w->tools, f->has_tools) ||
        !tri_holds(w->images, f->has_images))
        return false;
    if (w->formats != 0 && (w->formats & (1u << f->response_format)) == 0)
        return false;
    if (!listed(w->keys, w->n_keys, f->key) ||
        !listed(w->teams, w->n_teams, f->team))
        return false;
    return pattern_holds(r, f);
}

int route_rules_pick(const route_rules_t *rules, const route_features_t *f,
                     int *matched)
{
    for (size_t i = 0; i < rules->n; i++) {
        if (rule_holds(&rules->rules[i], f)) {
            if (matched != NULL)
                *matched = (int)i;
            return rules->rules[i].start_tier;
        }
    }
    if (matched != NULL)
        *matched = -1;
    return rules->default_tier;
}

int route_rules_max_tier(const route_rules_t *rules)
{
    int max = rules->default_tier;

    for (size_t i = 0; i < rules->n; i++) {
        if (rules->rules[i].start_tier > max)
            max = rules->rules[i].start_tier;
    }
    return max;
}
