/*
 * `tollgate report --leaks`: the four ways money leaks, each in dollars
 * over the window, with a concrete change and how the figure was made.
 *
 * - routing: per task, a model whose outcomes are useful at least as
 *   often as a dearer model's, at a lower average cost per outcome (over
 *   at least LEAK_MIN_SAMPLE outcomes), would have cost its average for
 *   each of the dearer model's priced outcomes. Leak = the difference.
 * - context: per task, input beyond twice the task's median input is
 *   context that adds nothing (stale turns, resent documents, repeated
 *   instructions); those tokens at the model's input price.
 * - retries: spend of outcomes that were not useful (checks failed or a
 *   caller said so), plus retry and escalation attempts of useful ones.
 * - volume: spend of useful repeats of an earlier ask (a cache would have
 *   answered), plus spend with no task, which nobody can cap or judge.
 *
 * Retries and volume are disjoint spend. Routing and context are what a
 * change would save, and overlap the other two; they are not added up.
 */
#include "report/internal.h"

#include "billing/billing.h"
#include "config/config.h"
#include "util/arena.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define LEAK_MIN_SAMPLE 5

static char *text_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *text_printf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;

    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        die_oom();
    va_end(ap);
    return out;
}

static const char *usd(pico_t pico, char *buf, size_t len)
{
    return pico_format_usd(pico, buf, len);
}

/* Percent with one decimal, from a rate num/den. */
static void percent(int64_t num, int64_t den, char *out, size_t len)
{
    int64_t tenths = den ? divide_half_even(num * 1000, den) : 0;

    snprintf(out, len, "%" PRId64 ".%" PRId64 "%%", tenths / 10, tenths % 10);
}

/* ---- routing ---- */

/* useful(a)/outcomes(a) >= useful(b)/outcomes(b), exactly. */
static bool passes_as_often(const report_row_t *a, const report_row_t *b)
{
    return (__int128)a->useful * b->outcomes >=
           (__int128)b->useful * a->outcomes;
}

/* avg(a) < avg(b) per priced outcome, exactly. */
static bool cheaper(const report_row_t *a, const report_row_t *b)
{
    return (__int128)a->spend * b->priced < (__int128)b->spend * a->priced;
}

static pico_t routing_saving(const report_row_t *dear,
                             const report_row_t *cheap)
{
    __int128 at_cheap = (__int128)dear->priced * cheap->spend;
    pico_t would = (pico_t)(at_cheap / cheap->priced);

    if ((at_cheap % cheap->priced) * 2 >= cheap->priced)
        would++;
    return dear->spend - would;
}

/* The best cheaper model of the same task for rows[i], or -1. */
static long cheaper_peer(const report_row_t *rows, size_t n, size_t i)
{
    long best = -1;

    for (size_t j = 0; j < n; j++) {
        const report_row_t *c = &rows[j];

        if (j == i || strcmp(c->keys[0], rows[i].keys[0]) != 0 ||
            c->outcomes < LEAK_MIN_SAMPLE || c->priced == 0 ||
            !cheaper(c, &rows[i]) || !passes_as_often(c, &rows[i]))
            continue;
        if (best < 0 || cheaper(c, &rows[best]))
            best = (long)j;
    }
    return best;
}

static void leak_routing(report_t *report, report_leak_t *leak)
{
    pico_t top = 0;
    long top_i = -1, top_c = -1;
    char a[40], b[40], m[40];

    leak->kind = "routing";
    leak->has_amount = true;
    for (size_t i = 0; i < report->n_rows; i++) {
        const report_row_t *r = &report->rows[i];
        long c =
            r->priced > 0 ? cheaper_peer(report->rows, report->n_rows, i) : -1;
        pico_t saving;

        if (c < 0)
            continue;
        saving = routing_saving(r, &report->rows[c]);
        leak->amount += saving;
        leak->outcomes += r->priced;
        if (saving > top) {
            top = saving;
            top_i = (long)i;
            top_c = c;
        }
    }
    leak->method = text_printf(
        "Per task, a model whose outcomes are useful at least as often as a "
        "dearer model's, at a lower average cost per priced outcome (over "
        "at least %d outcomes), is priced for each of the dearer model's "
        "priced outcomes; the leak is what the dearer model cost above "
        "that.",
        LEAK_MIN_SAMPLE);
    if (top_i < 0) {
        leak->change = text_printf("None: no task has a cheaper model that "
                                   "passes as often.");
        return;
    }
    const report_row_t *d = &report->rows[top_i], *c = &report->rows[top_c];
    percent(c->useful, c->outcomes, a, sizeof(a));
    percent(d->useful, d->outcomes, b, sizeof(b));
    leak->change = text_printf(
        "Route task '%s' to %s instead of %s: %s of its outcomes are useful "
        "against %s, and it saves $%s in this window.",
        d->keys[0], c->keys[1], d->keys[1], a, b, usd(top, m, sizeof(m)));
}

/* ---- context ---- */

static pico_t input_price(const report_opts_t *opts, const char *model,
                          const price_table_t *builtin, bool *known)
{
    const config_t *cfg = opts->config;
    const cfg_model_t *cm = cfg ? config_find_model(cfg, model) : NULL;
    const price_table_t *table = opts->prices ? opts->prices : builtin;
    const price_t *p = NULL;

    if (cm != NULL && cm->has_price) {
        *known = true;
        return cm->price.input;
    }
    if (cm != NULL)
        p = billing_lookup(table,
                           cm->price_entry ? cm->price_entry : cm->upstream);
    if (p == NULL)
        p = billing_lookup(table, model);
    *known = p != NULL;
    return p ? p->input : 0;
}

static void leak_context(report_t *report, report_leak_t *leak)
{
    price_table_t *builtin = billing_table_new();
    int64_t top_tokens = 0, unknown = 0;
    long top_i = -1;

    leak->kind = "context";
    leak->has_amount = true;
    for (size_t i = 0; i < report->n_rows; i++) {
        const report_row_t *r = &report->rows[i];
        bool known;
        pico_t price = input_price(&report->opts, r->keys[1], builtin, &known);

        leak->tokens += r->excess_input;
        if (!known)
            unknown += r->excess_input;
        leak->amount += r->excess_input * price;
        leak->outcomes += r->excess_input > 0 ? r->outcomes : 0;
        if (r->excess_input > top_tokens) {
            top_tokens = r->excess_input;
            top_i = (long)i;
        }
    }
    billing_table_free(builtin);
    leak->method = text_printf(
        "Per task, input tokens above twice the task's median input per "
        "outcome, priced at each model's input rate (config, then "
        "built-in prices); %" PRId64 " of those tokens are on models "
        "with no known price and are left out of the dollars.%s",
        unknown,
        report->total.approximate ? " Medians of rolled-up days come from "
                                    "histograms (within 3.2%)."
                                  : "");
    if (top_i < 0) {
        leak->change = text_printf("None: no outcome sent more than twice "
                                   "its task's median input.");
        return;
    }
    const report_row_t *t = &report->rows[top_i];
    leak->change = text_printf(
        "Give task '%s' a context budget of %" PRId64 " input tokens "
        "(twice its median of %" PRId64 "): trim stale turns and resent "
        "documents before they go upstream; %" PRId64 " tokens on %s "
        "were over it.",
        t->keys[0], 2 * t->input_p50, t->input_p50, top_tokens, t->keys[1]);
}

/* ---- retries ---- */

static pico_t retries_of(const report_row_t *r)
{
    return r->not_useful_spend + (r->retry_spend - r->retry_spend_not_useful);
}

static void leak_retries(report_t *report, report_leak_t *leak)
{
    pico_t top = -1;
    long top_i = -1;
    char a[40], m[40];

    leak->kind = "retries";
    leak->has_amount = true;
    for (size_t i = 0; i < report->n_rows; i++) {
        const report_row_t *r = &report->rows[i];

        leak->amount += retries_of(r);
        leak->outcomes += r->outcomes - r->useful + r->extra_attempts;
        if (retries_of(r) > top) {
            top = retries_of(r);
            top_i = (long)i;
        }
    }
    leak->method = text_printf(
        "Spend of priced outcomes that were not useful (their final attempt "
        "failed its checks, or a caller's feedback said so), plus the "
        "attempts of useful outcomes whose reason is not 'first' (retries, "
        "fallbacks, escalations).");
    if (top_i < 0 || top <= 0) {
        leak->change = text_printf("None: no spend on failed outcomes or "
                                   "retries.");
        return;
    }
    const report_row_t *r = &report->rows[top_i];
    percent(r->outcomes - r->useful, r->outcomes, a, sizeof(a));
    leak->change = text_printf(
        "Task '%s' on %s: %s of outcomes are not useful; they and "
        "retries cost "
        "$%s. Fix the prompt or the check, or start it on the tier that "
        "passes instead of escalating to it.",
        r->keys[0], r->keys[1], a, usd(top, m, sizeof(m)));
}

/* ---- volume ---- */

static pico_t untasked_of(const report_row_t *r)
{
    if (r->keys[0][0] != '\0')
        return 0;
    return r->spend - r->not_useful_spend -
           (r->retry_spend - r->retry_spend_not_useful) - r->repeat_spend;
}

static void leak_volume(report_t *report, report_leak_t *leak)
{
    pico_t repeats = 0, untasked = 0, top = 0;
    int64_t n_repeats = 0;
    long top_i = -1;
    char a[40], b[40];

    leak->kind = "volume";
    leak->has_amount = true;
    for (size_t i = 0; i < report->n_rows; i++) {
        const report_row_t *r = &report->rows[i];

        repeats += r->repeat_spend;
        n_repeats += r->repeats;
        untasked += untasked_of(r);
        if (r->repeat_spend > top) {
            top = r->repeat_spend;
            top_i = (long)i;
        }
    }
    leak->amount = repeats + untasked;
    leak->outcomes = n_repeats;
    leak->method = text_printf(
        "Spend of useful outcomes that repeated an earlier ask of the same "
        "key and task within the rework window (an exact-match cache would "
        "have answered them: $%s), plus the remaining spend of calls with "
        "no task, which no budget or check can be set for ($%s).",
        usd(repeats, a, sizeof(a)), usd(untasked, b, sizeof(b)));
    if (top_i >= 0)
        leak->change = text_printf(
            "Turn on the cache for task '%s' on %s: its repeated asks cost "
            "$%s.%s",
            report->rows[top_i].keys[0], report->rows[top_i].keys[1],
            usd(top, a, sizeof(a)),
            untasked > 0 ? " Require a task on every call (X-Tollgate-Task "
                           "or the key's default) and cap each task."
                         : "");
    else
        leak->change = text_printf(
            untasked > 0 ? "Require a task on every call (X-Tollgate-Task or "
                           "the key's default) and cap each task."
                         : "None: no repeated asks and no untasked spend.");
}

/* ---- the query ---- */

/* Median input per task, from every model's values of the task. */
static void task_medians(groups_t *g, int64_t *median)
{
    for (size_t i = 0; i < g->n; i++) {
        samples_t s = {0};
        hist_t h = {0};
        bool approx = false;

        for (size_t j = 0; j < g->n; j++) {
            if (strcmp(g->items[j].row.keys[0], g->items[i].row.keys[0]))
                continue;
            samples_append(&s, &g->items[j].input);
            hist_merge(&h, &g->items[j].h_input);
        }
        for (size_t k = 0; h.n > 0 && k < s.n; k++)
            hist_add(&h, s.v[k], 1);
        median[i] = 0;
        if (h.n > 0)
            median[i] = hist_percentile(&h, 50);
        else if (s.n > 0)
            median[i] = report_sample_median(s.v, s.n);
        (void)approx;
        free(s.v);
        hist_free(&h);
    }
}

static void excess_inputs(groups_t *g)
{
    int64_t *median = calloc(g->n ? g->n : 1, sizeof(int64_t));

    if (median == NULL)
        die_oom();
    task_medians(g, median);
    for (size_t i = 0; i < g->n; i++) {
        group_t *x = &g->items[i];
        int64_t cap = 2 * median[i], excess = 0;

        for (size_t k = 0; k < x->input.n; k++)
            excess += x->input.v[k] > cap ? x->input.v[k] - cap : 0;
        for (int b = 0; x->h_input.count && b < HIST_BUCKETS; b++)
            if (hist_value(b) > cap)
                excess += x->h_input.count[b] * (hist_value(b) - cap);
        x->row.excess_input = excess;
    }
    free(median);
}

int report_query_leaks(const report_opts_t *opts, report_t *report, char *err,
                       size_t errlen)
{
    report_opts_t o = *opts;
    ledger_shape_t shape;
    sqlite3 *db = NULL;
    groups_t g;
    int version = 0, rc;

    o.by[0] = REPORT_BY_TASK;
    o.by[1] = REPORT_BY_MODEL;
    o.n_by = 2;
    o.compare = false;
    memset(report, 0, sizeof(*report));
    report->opts = o;
    err[0] = '\0';
    rc = ledger_open_ro(o.ledger_path, &db, &version, err, errlen);
    if (rc < 0)
        goto out;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    ledger_shape_read(db, version, &shape);
    groups_init(&g, 2);
    rc = report_collect(db, &o, &shape, o.has_since ? o.since_ms : INT64_MIN,
                        o.has_until ? o.until_ms : INT64_MAX, &g,
                        &report->rollup_outcomes, err, errlen);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc == 0) {
        excess_inputs(&g);
        groups_finish(&g, &o, &report->rows, &report->n_rows, &report->total);
        report->used_rollup = report->rollup_outcomes > 0;
        leak_routing(report, &report->leaks[0]);
        leak_context(report, &report->leaks[1]);
        leak_retries(report, &report->leaks[2]);
        leak_volume(report, &report->leaks[3]);
        report->has_leaks = true;
    }
    groups_free(&g);
out:
    sqlite3_close(db);
    return rc;
}

void leaks_free(report_t *report)
{
    for (int i = 0; report->has_leaks && i < REPORT_N_LEAKS; i++) {
        free(report->leaks[i].change);
        free(report->leaks[i].method);
        free(report->leaks[i].detail);
    }
    report->has_leaks = false;
}

/* ---- output ---- */

void leaks_write_table(const report_t *report, FILE *out)
{
    char money[40];

    fprintf(out, "Leaks over the window (%" PRId64 " outcomes)\n\n",
            report->total.outcomes);
    for (int i = 0; i < REPORT_N_LEAKS; i++) {
        const report_leak_t *l = &report->leaks[i];

        fprintf(out, "%-8s $%s", l->kind, usd(l->amount, money, sizeof(money)));
        if (l->tokens > 0)
            fprintf(out, "  (%" PRId64 " tokens)", l->tokens);
        fprintf(out, "\n  change: %s\n  how:    %s\n\n", l->change, l->method);
    }
    fputs("Retries and volume are disjoint spend; routing and context are "
          "what a change would save, and overlap them.\n",
          out);
}

json_object *leaks_to_json(const report_t *report)
{
    json_object *list = json_object_new_array();
    char money[40];

    for (int i = 0; i < REPORT_N_LEAKS; i++) {
        const report_leak_t *l = &report->leaks[i];
        json_object *obj = json_object_new_object();

        json_object_object_add(obj, "kind", json_object_new_string(l->kind));
        json_object_object_add(
            obj, "amount_usd",
            json_object_new_string(usd(l->amount, money, sizeof(money))));
        json_object_object_add(obj, "amount_pico",
                               json_object_new_int64(l->amount));
        json_object_object_add(obj, "outcomes",
                               json_object_new_int64(l->outcomes));
        json_object_object_add(obj, "tokens", json_object_new_int64(l->tokens));
        json_object_object_add(obj, "change",
                               json_object_new_string(l->change));
        json_object_object_add(obj, "method",
                               json_object_new_string(l->method));
        json_object_array_add(list, obj);
    }
    return list;
}
