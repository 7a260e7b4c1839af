/*
 * Learned thresholds, in memory. Counts sit in a dense array found
 * through an open-addressing index keyed by (task, tier); the array
 * grows up to the configured cap, because task names come from callers
 * and must not grow memory without bound.
 *
 * The pick trusts a tier only once it has min_samples answers, and then
 * only as far as the Wilson lower bound of its pass rate: a tier with 9
 * passes out of 10 has a bound near 0.60 at 95 %, so it does not yet
 * beat a 0.85 target. Until a cheap tier earns trust, calls start at
 * the strongest tier, and the explore share is what gathers the data.
 */
#include "route/stats.h"

#include "util/arena.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char task[ROUTE_TASK_MAX + 1];
    char tier[ROUTE_TIER_MAX + 1];
    int64_t passes, fails;
    int64_t updated_ms;
    bool dirty;
} entry_t;

struct route_stats {
    route_stats_opts_t opts;
    double z;
    int32_t *index; /* slot -> entry number, -1 empty */
    size_t index_size;
    entry_t *entries;
    size_t n, allocated;
};

static const struct {
    int pct;
    double z;
} z_table[] = {{80, 1.2815515655446004}, {85, 1.4395314709384563},
               {90, 1.6448536269514722}, {95, 1.959963984540054},
               {98, 2.3263478740408408}, {99, 2.5758293035489004}};

double route_stats_z(int confidence_pct)
{
    for (size_t i = 0; i < sizeof(z_table) / sizeof(z_table[0]); i++) {
        if (z_table[i].pct == confidence_pct)
            return z_table[i].z;
    }
    return -1;
}

double route_wilson_lower(int64_t passes, int64_t n, double z)
{
    double p, z2n, centre, margin, lower;

    if (n <= 0)
        return 0;
    p = (double)passes / (double)n;
    z2n = z * z / (double)n;
    centre = p + z2n / 2;
    margin = z * sqrt(p * (1 - p) / (double)n + z2n / (4 * (double)n));
    lower = (centre - margin) / (1 + z2n);
    return lower < 0 ? 0 : lower;
}

void route_stats_opts_init(route_stats_opts_t *opts)
{
    opts->confidence_pct = 95;
    opts->min_samples = 30;
    opts->max_samples = 10000;
    opts->max_entries = 4096;
}

int route_stats_new(const route_stats_opts_t *opts, route_stats_t **out)
{
    route_stats_t *s;

    *out = NULL;
    if (route_stats_z(opts->confidence_pct) < 0 || opts->min_samples < 0 ||
        opts->max_samples < 0 || opts->max_entries == 0 ||
        opts->max_entries > (1u << 24) ||
        (opts->max_samples > 0 && opts->max_samples <= opts->min_samples))
        return -EINVAL;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        die_oom();
    s->opts = *opts;
    s->z = route_stats_z(opts->confidence_pct);
    s->index_size = 16;
    while (s->index_size < 2 * opts->max_entries)
        s->index_size *= 2;
    s->index = malloc(s->index_size * sizeof(int32_t));
    if (s->index == NULL)
        die_oom();
    memset(s->index, 0xff, s->index_size * sizeof(int32_t));
    *out = s;
    return 0;
}

void route_stats_free(route_stats_t *stats)
{
    if (stats == NULL)
        return;
    free(stats->index);
    free(stats->entries);
    free(stats);
}

static uint64_t pair_hash(const char *task, const char *tier)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = task; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL; /* no byte of a name is 0xff */
    for (const char *p = tier; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* The index slot of the pair: its entry's, or the empty one it would
 * take. The index is at most half full, so the probe ends. */
static size_t slot_of(const route_stats_t *s, const char *task,
                      const char *tier)
{
    size_t mask = s->index_size - 1;
    size_t i = (size_t)pair_hash(task, tier) & mask;

    while (s->index[i] >= 0) {
        const entry_t *e = &s->entries[s->index[i]];

        if (strcmp(e->task, task) == 0 && strcmp(e->tier, tier) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

static const entry_t *find(const route_stats_t *s, const char *task,
                           const char *tier)
{
    size_t i = slot_of(s, task, tier);

    return s->index[i] >= 0 ? &s->entries[s->index[i]] : NULL;
}

static int check_names(const char *task, const char *tier)
{
    if (strlen(task) > ROUTE_TASK_MAX || strlen(tier) > ROUTE_TIER_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* The pair's entry, made if new; NULL when the table is full. */
static entry_t *entry_for(route_stats_t *s, const char *task, const char *tier)
{
    size_t i = slot_of(s, task, tier);
    entry_t *e;

    if (s->index[i] >= 0)
        return &s->entries[s->index[i]];
    if (s->n == s->opts.max_entries)
        return NULL;
    if (s->n == s->allocated) {
        s->allocated = s->allocated ? 2 * s->allocated : 16;
        s->entries = realloc(s->entries, s->allocated * sizeof(entry_t));
        if (s->entries == NULL)
            die_oom();
    }
    e = &s->entries[s->n];
    memset(e, 0, sizeof(*e));
    strcpy(e->task, task);
    strcpy(e->tier, tier);
    s->index[i] = (int32_t)s->n++;
    return e;
}

/* Old answers weigh less once a pair is well known, so a model that
 * changes behaviour is noticed within max_samples answers. */
static void age(const route_stats_t *s, entry_t *e)
{
    if (s->opts.max_samples > 0 &&
        e->passes + e->fails >= s->opts.max_samples) {
        e->passes /= 2;
        e->fails /= 2;
    }
}

int route_stats_record(route_stats_t *stats, const char *task, const char *tier,
                       bool passed, int64_t now_ms)
{
    entry_t *e;

    if (check_names(task, tier) < 0)
        return -ENAMETOOLONG;
    e = entry_for(stats, task, tier);
    if (e == NULL)
        return -ENOSPC;

    if (passed)
        e->passes++;
    else
        e->fails++;
    age(stats, e);
    e->updated_ms = now_ms;
    e->dirty = true;
    return 0;
}

int route_stats_feedback(route_stats_t *stats, const char *task,
                         const char *tier, bool useful, int64_t now_ms)
{
    entry_t *e;

    if (check_names(task, tier) < 0)
        return -ENAMETOOLONG;
    if (find(stats, task, tier) == NULL)
        return -ENOENT;
    e = entry_for(stats, task, tier);

    if (useful && e->fails > 0) {
        e->fails--;
        e->passes++;
    } else if (!useful && e->passes > 0) {
        e->passes--;
        e->fails++;
    }
    e->updated_ms = now_ms;
    e->dirty = true;
    return 0;
}

int route_stats_get(const route_stats_t *stats, const char *task,
                    const char *tier, int64_t *passes, int64_t *fails)
{
    const entry_t *e =
        check_names(task, tier) == 0 ? find(stats, task, tier) : NULL;

    *passes = e ? e->passes : 0;
    *fails = e ? e->fails : 0;
    return e ? 0 : -ENOENT;
}

static int64_t samples_of(const route_stats_t *s, const char *task,
                          const char *tier, double *lower)
{
    int64_t passes, fails;

    route_stats_get(s, task, tier, &passes, &fails);
    *lower = route_wilson_lower(passes, passes + fails, s->z);
    return passes + fails;
}

/* Another tier than chosen: an unknown one when any, so exploration
 * gathers the data that is missing first. */
static int explore(const route_stats_t *s, const char *task,
                   const char *const tiers[], size_t n, int chosen, uint32_t r)
{
    size_t unknown = 0, k = 0;
    double lower;

    for (size_t i = 0; i < n; i++)
        unknown += (int)i != chosen &&
                   samples_of(s, task, tiers[i], &lower) < s->opts.min_samples;
    for (size_t i = 0; i < n; i++) {
        bool is_unknown =
            samples_of(s, task, tiers[i], &lower) < s->opts.min_samples;

        if ((int)i == chosen || (unknown > 0 && !is_unknown))
            continue;
        if (k++ == r % (unknown > 0 ? unknown : n - 1))
            return (int)i;
    }
    return chosen;
}

int route_auto_pick(const route_stats_t *stats, const char *task,
                    const char *const tiers[], size_t n, double target_rate,
                    double explore_share, uint64_t rnd, route_auto_why_t *why)
{
    route_auto_why_t w = {.best = -1};
    int pick;

    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < n && w.best < 0; i++) {
        double lower;
        int64_t samples = samples_of(stats, task, tiers[i], &lower);

        if (samples >= stats->opts.min_samples && lower >= target_rate)
            w.best = (int)i;
    }
    w.unknown = w.best < 0;
    if (w.unknown)
        w.best = (int)n - 1;

    pick = w.best;
    if (n > 1 && (double)(rnd >> 32) < explore_share * 4294967296.0)
        pick = explore(stats, task, tiers, n, w.best, (uint32_t)rnd);
    w.explored = pick != w.best;
    w.samples = samples_of(stats, task, tiers[pick], &w.lower);
    if (why != NULL)
        *why = w;
    return pick;
}

void route_stats_snapshot(route_stats_t *stats, bool dirty_only,
                          route_stats_rows_t *out)
{
    size_t n = 0;

    out->rows = malloc((stats->n + 1) * sizeof(route_stats_row_t));
    if (out->rows == NULL)
        die_oom();
    for (size_t i = 0; i < stats->n; i++) {
        entry_t *e = &stats->entries[i];
        route_stats_row_t *r = &out->rows[n];

        if (dirty_only && !e->dirty)
            continue;
        memcpy(r->task, e->task, sizeof(r->task));
        memcpy(r->tier, e->tier, sizeof(r->tier));
        r->passes = e->passes;
        r->fails = e->fails;
        r->updated_ms = e->updated_ms;
        e->dirty = false;
        n++;
    }
    out->n = n;
}

size_t route_stats_merge(route_stats_t *stats, const route_stats_rows_t *rows)
{
    size_t taken = 0;

    for (size_t i = 0; i < rows->n; i++) {
        const route_stats_row_t *r = &rows->rows[i];
        entry_t *e = entry_for(stats, r->task, r->tier);

        if (e == NULL || r->passes < 0 || r->fails < 0)
            continue;
        e->passes += r->passes;
        e->fails += r->fails;
        if (r->updated_ms > e->updated_ms)
            e->updated_ms = r->updated_ms;
        taken++;
    }
    return taken;
}

void route_stats_rows_free(route_stats_rows_t *rows)
{
    free(rows->rows);
    rows->rows = NULL;
    rows->n = 0;
}

void route_stats_mark_dirty(route_stats_t *stats,
                            const route_stats_rows_t *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        size_t slot = slot_of(stats, rows->rows[i].task, rows->rows[i].tier);

        if (stats->index[slot] >= 0)
            stats->entries[stats->index[slot]].dirty = true;
    }
}
