/*
 * The four leaks, measured as calls arrive (retries, duplicates,
 * context) or once every call is in (routing, volume outliers). Each
 * counterfactual is the same usage priced again by billing_cost, so the
 * difference is exact; see spend.c for the rules in words.
 */
#include "audit/spend.h"

#include "util/arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pico_t audit_scale(pico_t a, int64_t num, int64_t den)
{
    __int128 p = (__int128)a * num, q = p / den, r = p % den;

    if (r < 0) {
        r += den;
        q -= 1;
    }
    if (2 * r > den || (2 * r == den && (q & 1)))
        q += 1;
    return (pico_t)q;
}

void audit_day_name(int64_t day, char *out, size_t outlen)
{
    int64_t z = day + 719468, era, doe, yoe, y, doy, mp, d, m;

    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    snprintf(out, outlen, "%04d-%02d-%02d", (int)(y + (m <= 2)), (int)m,
             (int)d);
}

static uint64_t who(const audit_call_t *call, uint64_t h)
{
    h = audit_hash(h, call->owner, strlen(call->owner));
    return audit_hash(h, call->key, strlen(call->key));
}

void audit_leak_retry(audit_t *a, workflow_t *w, const audit_call_t *call,
                      const priced_t *p)
{
    int64_t prev = 0;
    bool retry = call->is_retry;

    /* "Within seconds" needs a time: calls without one are never
     * retries of each other. */
    if (!retry && call->turn_hash != 0 && call->count == 1 && call->at != 0 &&
        call->label[0] != '(')
        retry = recent_seen(a->retry, who(call, call->turn_hash), call->at,
                            &prev) &&
                call->at - prev <= RETRY_WINDOW && call->at >= prev;
    if (retry) {
        w->retries++;
        w->leak_retries += p->cost;
        return;
    }
    if (call->request_hash == 0 || call->count != 1)
        return;
    if (recent_seen(a->dups, who(call, call->request_hash), call->at, NULL)) {
        w->duplicates++;
        w->leak_duplicates += p->cost;
    }
}

/* Cost of usage u at the call's price (0 when it cannot be priced). */
static pico_t cost_of(const priced_t *p, const usage_t *u)
{
    cost_t c = billing_cost(p->price, u);

    return c.status == COST_PRICED || c.status == COST_ESTIMATED ? c.total : 0;
}

/* Spend above the same call with its resent prefix read from cache. */
static void leak_prefix(workflow_t *w, const audit_call_t *call,
                        const priced_t *p)
{
    usage_t u = call->usage;
    int64_t prefix,
        uncached = u.input_tokens - u.cached_tokens - u.cache_write_tokens;

    if (call->prefix_est < CACHE_MIN_PREFIX || call->prompt_est <= 0 ||
        w->agg.calls <= call->count || uncached <= 0)
        return;
    prefix = u.input_tokens * call->prefix_est / call->prompt_est;
    if (prefix > uncached)
        prefix = uncached;
    u.cached_tokens += prefix;
    w->leak_prefix += cost_of(p, &call->usage) - cost_of(p, &u);
}

/* Spend above the same call with only its last four turns. */
static void leak_history(workflow_t *w, const audit_call_t *call,
                         const priced_t *p)
{
    usage_t u = call->usage;
    int64_t drop;

    if (call->history_est <= 0 || call->prompt_est <= 0)
        return;
    drop = u.input_tokens * call->history_est / call->prompt_est;
    u.input_tokens -= drop;
    if (u.cached_tokens > u.input_tokens)
        u.cached_tokens = u.input_tokens;
    if (u.cache_write_tokens > u.input_tokens - u.cached_tokens)
        u.cache_write_tokens = u.input_tokens - u.cached_tokens;
    if (u.cache_write_1h_tokens > u.cache_write_tokens)
        u.cache_write_1h_tokens = u.cache_write_tokens;
    if (u.audio_in_tokens >
        u.input_tokens - u.cached_tokens - u.cache_write_tokens)
        u.audio_in_tokens = 0;
    w->leak_history += cost_of(p, &call->usage) - cost_of(p, &u);
}

void audit_leak_context(audit_t *a, workflow_t *w, const audit_call_t *call,
                        const priced_t *p)
{
    if (p->price == NULL || (call->has_cost && !call->cost_fallback))
        return;
    leak_prefix(w, call, p);
    leak_history(w, call, p);
}

void audit_leak_routing(audit_t *a, const audit_call_t *call, const priced_t *p)
{
    uint64_t key = audit_hash(call->workflow, call->model, strlen(call->model));
    wf_model_t *m = amap_get(&a->wf_models, key, true);
    const char *cheaper;
    const price_t *price;
    cost_t c;

    if (m == NULL)
        return;
    if (m->calls == 0) {
        m->workflow = call->workflow;
        audit_copy(m->model, sizeof(m->model), call->model);
        cheaper = audit_cheaper_tier(a->table, call->model, call->at);
        audit_copy(m->cheaper, sizeof(m->cheaper), cheaper);
    }
    m->calls += call->count;
    m->spend += p->cost;
    if (m->cheaper[0] == '\0')
        return;
    price = billing_lookup_at(a->table, m->cheaper, call->at);
    c = billing_cost(price, &call->usage);
    m->cheaper_spend += c.status == COST_PRICED || c.status == COST_ESTIMATED
                            ? c.total
                            : p->cost;
}

void audit_leak_volume(audit_t *a, const audit_call_t *call, const priced_t *p)
{
    int64_t day = call->at / 86400;
    uint64_t key = audit_hash(call->workflow, &day, sizeof(day));
    wf_day_t *d;

    if (call->at == 0)
        return;
    if ((d = amap_get(&a->wf_days, key, true)) == NULL)
        return;
    d->workflow = call->workflow;
    d->day = day;
    d->calls += call->count;
    d->spend += p->cost;
}

static workflow_t *find_wf(audit_t *a, uint64_t key)
{
    workflow_t *w = amap_get(&a->workflows, key, false);

    return w != NULL ? w : &a->other_wf;
}

/* A workflow routes cheaper when it repeats and its answers are short. */
static void finish_routing(audit_t *a)
{
    for (size_t i = 0; i < a->wf_models.n; i++) {
        wf_model_t *m = amap_at(&a->wf_models, i);
        workflow_t *w = find_wf(a, m->workflow);

        if (m->cheaper[0] == '\0' || w->agg.calls < ROUTE_MIN_CALLS ||
            w->answer_tokens > SHORT_ANSWER * w->agg.calls ||
            m->cheaper_spend >= m->spend)
            continue;
        w->leak_routing += m->spend - m->cheaper_spend;
    }
}

/* By workflow, then by volume, so each workflow's median is in reach. */
static int cmp_day(const void *x, const void *y)
{
    const wf_day_t *a = x, *b = y;

    if (a->workflow != b->workflow)
        return a->workflow < b->workflow ? -1 : 1;
    return a->calls < b->calls ? -1 : a->calls > b->calls;
}

/* One workflow's days [s, e), sorted by volume. */
static void outlier_days(audit_t *a, const wf_day_t *days, size_t s, size_t e)
{
    workflow_t *w = find_wf(a, days[s].workflow);
    int64_t median = days[s + (e - s) / 2].calls;

    w->days += (int64_t)(e - s);
    if (e - s < OUTLIER_MIN_DAYS)
        return;
    for (size_t k = s; k < e; k++) {
        if (days[k].calls <= OUTLIER_FACTOR * median)
            continue;
        w->outlier_days++;
        w->leak_outliers +=
            days[k].spend - audit_scale(days[k].spend, median, days[k].calls);
    }
}

static void finish_outliers(audit_t *a)
{
    size_t n = a->wf_days.n, s = 0;
    wf_day_t *days = malloc((n + 1) * sizeof(*days));

    if (days == NULL)
        die_oom();
    if (n > 0)
        memcpy(days, a->wf_days.elems, n * sizeof(*days));
    qsort(days, n, sizeof(*days), cmp_day);
    for (size_t e = 1; e <= n; e++) {
        if (e < n && days[e].workflow == days[s].workflow)
            continue;
        outlier_days(a, days, s, e);
        s = e;
    }
    free(days);
}

static void sum_workflow(audit_totals_t *t, const workflow_t *w)
{
    t->leak_prefix += w->leak_prefix;
    t->leak_history += w->leak_history;
    t->leak_retries += w->leak_retries;
    t->leak_duplicates += w->leak_duplicates;
    t->leak_outliers += w->leak_outliers;
    t->leak_routing += w->leak_routing;
}

void audit_finish(audit_t *a, audit_totals_t *totals)
{
    audit_totals_t *t = &a->totals;

    if (!a->finished) {
        finish_routing(a);
        finish_outliers(a);
        memset(t, 0, sizeof(*t));
        for (size_t i = 0; i < a->workflows.n; i++)
            sum_workflow(t, amap_at(&a->workflows, i));
        sum_workflow(t, &a->other_wf);
        t->leak_context = t->leak_prefix + t->leak_history;
        t->leak_volume = t->leak_duplicates + t->leak_outliers;
        t->calls = a->total.calls;
        t->records = a->records;
        t->spend = a->total.spend;
        t->estimated = a->total.estimated;
        t->estimated_calls = a->total.estimated_calls;
        t->unpriced_calls = a->total.unpriced;
        t->workflows = (int64_t)a->workflows.n;
        a->finished = true;
    }
    if (totals != NULL)
        *totals = *t;
}
