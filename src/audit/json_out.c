/*
 * The audit as JSON: every group, every workflow with its leak figures,
 * and the leak totals with the rule that produced each. Money is exact:
 * integer picodollars beside 12-decimal USD strings.
 */
#include "audit/spend.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>

static void add_money(struct json_object *o, const char *name, pico_t v)
{
    char key[64], usd[40];

    snprintf(key, sizeof(key), "%s_pico", name);
    json_object_object_add(o, key, json_object_new_int64(v));
    snprintf(key, sizeof(key), "%s_usd", name);
    json_object_object_add(
        o, key, json_object_new_string(pico_format_usd(v, usd, sizeof(usd))));
}

static void add_int(struct json_object *o, const char *name, int64_t v)
{
    json_object_object_add(o, name, json_object_new_int64(v));
}

static struct json_object *agg_json(const agg_t *g)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(g->name));
    add_int(o, "calls", g->calls);
    add_int(o, "input_tokens", g->input_tokens);
    add_int(o, "output_tokens", g->output_tokens);
    add_money(o, "spend", g->spend);
    add_money(o, "estimated", g->estimated);
    add_int(o, "estimated_calls", g->estimated_calls);
    add_int(o, "unpriced_calls", g->unpriced);
    return o;
}

static struct json_object *map_json(const amap_t *map, const agg_t *other)
{
    struct json_object *arr = json_object_new_array();
    size_t n;
    const agg_t **rows = audit_ranked(map, other, &n);

    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, agg_json(rows[i]));
    free(rows);
    return arr;
}

static struct json_object *workflow_json(const workflow_t *w)
{
    struct json_object *o = agg_json(&w->agg);

    json_object_object_add(
        o, "owner",
        json_object_new_string(w->several_owners ? "(several)" : w->owner));
    add_int(o, "retries", w->retries);
    add_int(o, "duplicates", w->duplicates);
    add_int(o, "days", w->days);
    add_int(o, "outlier_days", w->outlier_days);
    add_money(o, "leak_routing", w->leak_routing);
    add_money(o, "leak_prefix", w->leak_prefix);
    add_money(o, "leak_history", w->leak_history);
    add_money(o, "leak_retries", w->leak_retries);
    add_money(o, "leak_duplicates", w->leak_duplicates);
    add_money(o, "leak_outliers", w->leak_outliers);
    return o;
}

static struct json_object *workflows_json(const audit_t *a)
{
    struct json_object *arr = json_object_new_array();
    size_t n;
    const agg_t **rows = audit_ranked(&a->workflows, &a->other_wf.agg, &n);

    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, workflow_json((const workflow_t *)rows[i]));
    free(rows);
    return arr;
}

static struct json_object *leak_json(pico_t v, const char *how)
{
    struct json_object *o = json_object_new_object();

    add_money(o, "amount", v);
    json_object_object_add(o, "how", json_object_new_string(how));
    return o;
}

static struct json_object *leaks_json(const audit_totals_t *t)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(
        o, "routing",
        leak_json(t->leak_routing,
                  "premium model in a workflow of >= 20 calls with answers "
                  "of <= 100 tokens on average: spend minus the same usage "
                  "priced at the provider's cheaper tier"));
    json_object_object_add(
        o, "context_prefix",
        leak_json(t->leak_prefix,
                  "system prompt >= 1024 tokens resent uncached after a "
                  "workflow's first call: spend minus the same call with "
                  "those tokens priced as cache reads"));
    json_object_object_add(
        o, "context_history",
        leak_json(t->leak_history,
                  "spend minus the same call without the turns before the "
                  "last four (tokens scaled from the text estimate to the "
                  "reported input)"));
    json_object_object_add(
        o, "retries",
        leak_json(t->leak_retries,
                  "spend of calls repeating the same owner, workflow and "
                  "last user turn within 60 s, and of ledger retries"));
    json_object_object_add(
        o, "volume_duplicates",
        leak_json(t->leak_duplicates,
                  "spend of exact repeats of an earlier request by the same "
                  "owner, outside the retry window"));
    json_object_object_add(
        o, "volume_outliers",
        leak_json(t->leak_outliers,
                  "on days above 3x a workflow's median daily calls (>= 3 "
                  "days seen): day spend minus day spend x median / calls"));
    add_money(o, "context_total", t->leak_context);
    add_money(o, "volume_total", t->leak_volume);
    return o;
}

static struct json_object *sources_json(const audit_t *a)
{
    struct json_object *arr = json_object_new_array();

    for (size_t i = 0; i < a->n_sources; i++) {
        const audit_read_stats_t *s = &a->sources[i].stats;
        struct json_object *o = json_object_new_object(), *bad;

        json_object_object_add(o, "path",
                               json_object_new_string(a->sources[i].path));
        json_object_object_add(
            o, "format", json_object_new_string(audit_format_name(s->format)));
        add_int(o, "records", s->lines);
        add_int(o, "calls", s->calls);
        add_int(o, "malformed", s->malformed);
        add_int(o, "skipped", s->skipped);
        add_int(o, "estimated", s->estimated);
        bad = json_object_new_array();
        for (int64_t k = 0; k < s->malformed && k < AUDIT_BAD_LINES_KEPT; k++) {
            struct json_object *b = json_object_new_object();
            add_int(b, "line", s->bad_lines[k]);
            json_object_object_add(b, "why",
                                   json_object_new_string(s->bad_why[k]));
            json_object_array_add(bad, b);
        }
        json_object_object_add(o, "malformed_lines", bad);
        json_object_array_add(arr, o);
    }
    return arr;
}

struct json_object *audit_to_json(const audit_t *a)
{
    struct json_object *root = json_object_new_object();
    const audit_totals_t *t = &a->totals;

    json_object_object_add(root, "sources", sources_json(a));
    json_object_object_add(root, "total", agg_json(&a->total));
    add_int(root, "workflow_count", t->workflows);
    json_object_object_add(root, "by_owner",
                           map_json(&a->owners, &a->other_owner));
    json_object_object_add(root, "by_model",
                           map_json(&a->models, &a->other_model));
    json_object_object_add(root, "by_week",
                           map_json(&a->weeks, &a->other_week));
    json_object_object_add(root, "by_workflow", workflows_json(a));
    json_object_object_add(root, "leaks", leaks_json(t));
    return root;
}

int audit_write_json(const audit_t *a, FILE *out)
{
    struct json_object *root = audit_to_json(a);

    fputs(json_object_to_json_string_ext(
              root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
          out);
    fputc('\n', out);
    json_object_put(root);
    return ferror(out) ? -EIO : 0;
}
