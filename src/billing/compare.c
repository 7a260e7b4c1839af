/*
 * Disagreements between price sources: for each model, the entry each
 * source has in force compared rate by rate with the one lookups return.
 * Used by `tollgate prices check`; never on the request path.
 */
#include "billing/internal.h"

#include <stdio.h>
#include <string.h>

static const char *const service_prefix[] = {
    [SERVICE_STANDARD] = "",
    [SERVICE_BATCH] = "batch.",
    [SERVICE_FLEX] = "flex.",
    [SERVICE_PRIORITY] = "priority.",
};

struct compare {
    billing_disagreement_t d;
    billing_disagreement_fn *fn;
    void *arg;
    size_t found;
};

static void differ(struct compare *c, const char *field, int64_t a, int64_t b)
{
    snprintf(c->d.field, sizeof(c->d.field), "%s", field);
    c->d.winner_value = a;
    c->d.other_value = b;
    c->found++;
    if (c->fn != NULL)
        c->fn(&c->d, c->arg);
}

/* Rates both entries give and that differ. Tier twins count only when
 * both entries have a long-context tier. */
static void rates_compare(struct compare *c, service_tier_t service)
{
    const price_t *a = c->d.winner, *b = c->d.other;
    bool tiers = a->tier_threshold > 0 && b->tier_threshold > 0;
    char field[40];

    for (int k = 0; k < PRICE_RATES; k++) {
        for (int tier = 0; tier <= (tiers ? 1 : 0); tier++) {
            pico_t x = billing_rate_get(a, service, k, tier);
            pico_t y = billing_rate_get(b, service, k, tier);

            if (x < 0 || y < 0 || x == y)
                continue;
            snprintf(field, sizeof(field), "%s%s%s", service_prefix[service],
                     tier ? "tier_" : "", billing_rate_name(k));
            differ(c, field, x, y);
        }
    }
}

static void entries_compare(struct compare *c)
{
    const price_t *a = c->d.winner, *b = c->d.other;

    for (int s = SERVICE_STANDARD; s <= SERVICE_PRIORITY; s++)
        rates_compare(c, s);
    if (a->tier_threshold != b->tier_threshold)
        differ(c, "tier_threshold", a->tier_threshold, b->tier_threshold);
    if (a->layout != PRICE_LAYOUT || b->layout != PRICE_LAYOUT)
        return;
    if (a->fee_per_request > 0 && b->fee_per_request > 0 &&
        a->fee_per_request != b->fee_per_request)
        differ(c, "fee_per_request", a->fee_per_request, b->fee_per_request);
    if (a->fee_per_web_search > 0 && b->fee_per_web_search > 0 &&
        a->fee_per_web_search != b->fee_per_web_search)
        differ(c, "fee_per_web_search", a->fee_per_web_search,
               b->fee_per_web_search);
}

/* True when a later entry of the same source is in force: that one
 * speaks for the source. */
static bool superseded(const price_table_t *table, const price_t *e, int64_t at)
{
    for (const price_t *n = table_name_next(table, e); n != NULL;
         n = table_name_next(table, n)) {
        if (strcmp(n->source, e->source) == 0 && table_entry_in_force(n, at))
            return true;
    }
    return false;
}

static void name_compare(const price_table_t *table, const char *name,
                         int64_t at, struct compare *c)
{
    const price_t *winner = table_name_pick(table, name, at);

    if (winner == NULL)
        return;
    c->d.model = winner->model;
    c->d.winner = winner;
    for (const price_t *e = table_name_first(table, name); e != NULL;
         e = table_name_next(table, e)) {
        if (strcmp(e->source, winner->source) == 0 ||
            !table_entry_in_force(e, at) || superseded(table, e, at))
            continue;
        c->d.other = e;
        entries_compare(c);
    }
}

size_t billing_disagreements(const price_table_t *table, const char *model,
                             int64_t at, billing_disagreement_fn *fn, void *arg)
{
    struct compare c = {.fn = fn, .arg = arg};

    if (table == NULL)
        return 0;
    if (model != NULL) {
        name_compare(table, model, at, &c);
        return c.found;
    }
    for (size_t i = 0; i < billing_table_size(table); i++) {
        const price_t *e = billing_table_at(table, i);

        if (table_name_first(table, e->model) == e)
            name_compare(table, e->model, at, &c);
    }
    return c.found;
}
