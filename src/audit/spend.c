/*
 * The audit itself: prices each call exactly, adds it to its owner,
 * workflow, model and week, and measures the four leaks. Every figure
 * is integer picodollars; memory grows with workflows, owners and days,
 * never with lines (each map is capped and folds the rest into "other").
 *
 * How each leak is computed (docs/audit.md says the same for users):
 * - routing: in a workflow of at least ROUTE_MIN_CALLS calls whose mean
 *   answer is at most SHORT_ANSWER tokens, the spend on a premium model
 *   minus the same usage priced at the provider's cheaper tier.
 * - context: (a) a system prompt of at least CACHE_MIN_PREFIX tokens sent
 *   uncached again: spend minus the same call with those tokens billed
 *   as cache reads; (b) history: spend minus the same call without the
 *   turns before the last four (tokens scaled from our estimate of the
 *   text to the reported input).
 * - retries: a call with the same owner, workflow and last user turn as
 *   one less than RETRY_WINDOW seconds before it (or a retry attempt in
 *   the ledger): its whole spend.
 * - volume: exact duplicates of an earlier request (same owner, same
 *   text) outside the retry window; and on a workflow's outlier days
 *   (more than OUTLIER_FACTOR times its median day, at least
 *   OUTLIER_MIN_DAYS days seen), the spend above the median volume.
 */
#include "audit/spend.h"

#include "util/arena.h"

#include <stdlib.h>
#include <string.h>

#define MAP_MAX 100000

/* The group a name falls in: its own, or the capped map's "(other)". */
static agg_t *group_of(amap_t *map, agg_t *other, const char *name)
{
    uint64_t h = audit_hash(AUDIT_HASH_SEED, name, strlen(name));
    agg_t *g = amap_get(map, h, true);

    if (g == NULL)
        return other;
    if (g->calls == 0 && g->name[0] == '\0')
        audit_copy(g->name, sizeof(g->name),
                   *name != '\0' ? name : "(unknown)");
    return g;
}

audit_t *audit_new(const price_table_t *table, const audit_opts_t *opts)
{
    audit_t *a = calloc(1, sizeof(*a));

    if (a == NULL || (a->retry = calloc(1, sizeof(recent_t))) == NULL ||
        (a->dups = calloc(1, sizeof(recent_t))) == NULL)
        die_oom();
    a->table = table;
    a->opts = *opts;
    amap_init(&a->owners, sizeof(agg_t), MAP_MAX);
    amap_init(&a->models, sizeof(agg_t), MAP_MAX);
    amap_init(&a->weeks, sizeof(agg_t), MAP_MAX);
    amap_init(&a->workflows, sizeof(workflow_t), MAP_MAX);
    amap_init(&a->wf_models, sizeof(wf_model_t), MAP_MAX);
    amap_init(&a->wf_days, sizeof(wf_day_t), 4 * MAP_MAX);
    audit_copy(a->other_owner.name, AUDIT_NAME_MAX, "(other)");
    audit_copy(a->other_model.name, AUDIT_NAME_MAX, "(other)");
    audit_copy(a->other_week.name, AUDIT_NAME_MAX, "(other)");
    audit_copy(a->other_wf.agg.name, AUDIT_NAME_MAX, "(other workflows)");
    return a;
}

void audit_free(audit_t *a)
{
    if (a == NULL)
        return;
    amap_free(&a->owners);
    amap_free(&a->models);
    amap_free(&a->weeks);
    amap_free(&a->workflows);
    amap_free(&a->wf_models);
    amap_free(&a->wf_days);
    free(a->retry);
    free(a->dups);
    free(a->sources);
    free(a);
}

void audit_add_source(audit_t *a, const char *path,
                      const audit_read_stats_t *stats)
{
    audit_source_t *s;

    a->sources = realloc(a->sources, (a->n_sources + 1) * sizeof(*s));
    if (a->sources == NULL)
        die_oom();
    s = &a->sources[a->n_sources++];
    audit_copy(s->path, sizeof(s->path), path);
    s->stats = *stats;
}

/* A Usage API bucket sums many calls: the long-context threshold is per
 * call, so buckets are priced at base rates. */
static cost_t price_usage(const audit_call_t *call, const price_t *price,
                          const usage_t *usage)
{
    price_t flat;

    if (call->count <= 1 || price == NULL || price->tier_threshold == 0)
        return billing_cost(price, usage);
    flat = *price;
    flat.tier_threshold = 0;
    return billing_cost(&flat, usage);
}

/* billing_lookup_at, remembered per model and day: a log names few
 * models, and prices change at most daily. */
static const price_t *price_memo(audit_t *a, const char *model, int64_t at)
{
    uint64_t h = audit_hash(AUDIT_HASH_SEED, model, strlen(model));
    int64_t day = at / 86400;
    price_memo_t *m = &a->memo[h % PRICE_MEMO];

    if (m->hash != h || m->day != day || strcmp(m->model, model) != 0) {
        m->hash = h;
        m->day = day;
        audit_copy(m->model, sizeof(m->model), model);
        m->price = billing_lookup_at(a->table, model, at);
    }
    return m->price;
}

/* The call's cost, exactly: the source's own when it is authoritative,
 * else from usage; the log's figure only when usage cannot be priced. */
static void price_call(audit_t *a, const audit_call_t *call, priced_t *p)
{
    cost_t c;

    memset(p, 0, sizeof(*p));
    p->price = price_memo(a, call->model, call->at);
    if (call->has_cost && !call->cost_fallback) {
        p->known = true;
        p->cost = call->cost;
        return;
    }
    c = price_usage(call, p->price, &call->usage);
    if (c.status == COST_PRICED || c.status == COST_ESTIMATED) {
        p->known = true;
        p->estimated = c.status == COST_ESTIMATED;
        p->cost = c.total;
    } else if (call->has_cost) {
        p->known = true;
        p->cost = call->cost;
    }
}

static void agg_add(agg_t *g, const audit_call_t *call, const priced_t *p)
{
    g->calls += call->count;
    g->input_tokens += call->usage.input_tokens;
    g->output_tokens += call->usage.output_tokens;
    if (!p->known)
        g->unpriced += call->count;
    else if (p->estimated) {
        g->estimated += p->cost;
        g->estimated_calls += call->count;
    } else
        g->spend += p->cost;
}

/* Monday of the call's ISO week, as a day number since 1970-01-01. */
static int64_t week_of(int64_t at)
{
    int64_t day = at >= 0 ? at / 86400 : (at - 86399) / 86400;
    int64_t idx = day + 3 >= 0 ? (day + 3) / 7 : (day + 3 - 6) / 7;

    return idx * 7 - 3;
}

static void add_groups(audit_t *a, const audit_call_t *call, const priced_t *p)
{
    char week[16];

    agg_add(group_of(&a->owners, &a->other_owner, call->owner), call, p);
    agg_add(group_of(&a->models, &a->other_model, call->model), call, p);
    if (call->at == 0)
        snprintf(week, sizeof(week), "(no time)");
    else
        audit_day_name(week_of(call->at), week, sizeof(week));
    agg_add(group_of(&a->weeks, &a->other_week, week), call, p);
    agg_add(&a->total, call, p);
}

static workflow_t *workflow_of(audit_t *a, const audit_call_t *call)
{
    workflow_t *w = amap_get(&a->workflows, call->workflow, true);

    if (w == NULL)
        return &a->other_wf;
    if (w->agg.calls == 0) {
        audit_copy(w->agg.name, sizeof(w->agg.name),
                   call->label[0] != '\0' ? call->label : "(empty prompt)");
        audit_copy(w->owner, sizeof(w->owner), call->owner);
    } else if (strcmp(w->owner, call->owner) != 0) {
        w->several_owners = true;
    }
    return w;
}

void audit_add(audit_t *a, const audit_call_t *call)
{
    priced_t p;
    workflow_t *w;

    if ((a->opts.has_since && call->at < a->opts.since) ||
        (a->opts.has_until && call->at >= a->opts.until))
        return;
    price_call(a, call, &p);
    add_groups(a, call, &p);
    a->records++;
    w = workflow_of(a, call);
    agg_add(&w->agg, call, &p);
    w->answer_tokens += call->usage.output_tokens;
    if (!p.known)
        return;
    audit_leak_retry(a, w, call, &p);
    audit_leak_context(a, w, call, &p);
    audit_leak_routing(a, call, &p);
    audit_leak_volume(a, call, &p);
}
