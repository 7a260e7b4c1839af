/*
 * From filled groups to report rows: percentiles (by selection over the
 * exact values, or from histograms where rollup rows were read), cost per
 * useful outcome, the total, and the order of the rows.
 */
#include "report/internal.h"

#include "util/arena.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static void swap(int64_t *a, int64_t *b)
{
    int64_t t = *a;

    *a = *b;
    *b = t;
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/*
 * Moves the k-th smallest of v[0..n) to v[k], with no larger value
 * before it and no smaller after (Hoare's FIND, as Wirth writes it).
 * Input that keeps defeating the pivot falls back to qsort, so the worst
 * case stays n log n.
 */
static void select_kth(int64_t *v, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    int budget = 64;

    while (lo < hi) {
        int64_t pivot = v[kk];
        ptrdiff_t i = lo, j = hi;

        if (budget-- == 0) {
            qsort(v + lo, (size_t)(hi - lo + 1), sizeof(int64_t),
                  compare_int64);
            return;
        }
        do {
            while (v[i] < pivot)
                i++;
            while (pivot < v[j])
                j--;
            if (i <= j)
                swap(&v[i++], &v[j--]);
        } while (i <= j);
        if (j < kk)
            lo = i;
        if (kk < i)
            hi = j;
    }
}

/* Nearest rank: the value at 1-based rank ceil(pct * n / 100). */
static size_t rank_index(size_t n, int pct)
{
    return ((size_t)pct * n + 99) / 100 - 1;
}

int64_t report_sample_median(int64_t *v, size_t n)
{
    size_t k = rank_index(n, 50);

    select_kth(v, n, k);
    return v[k];
}

/* The pct-th percentile of s, or of s and h together when h has values
 * (then s is added to h, and the figure is a bucket's). */
static bool percentile(samples_t *s, hist_t *h, int pct, int64_t *out,
                       bool *approximate)
{
    size_t k;

    if (h->n > 0) {
        for (size_t i = 0; i < s->n; i++)
            hist_add(h, s->v[i], 1);
        s->n = 0;
        *approximate = true;
        *out = hist_percentile(h, pct);
        return true;
    }
    if (s->n == 0)
        return false;
    k = rank_index(s->n, pct);
    select_kth(s->v, s->n, k);
    *out = s->v[k];
    return true;
}

static void set_percentiles(report_row_t *row, samples_t *latency,
                            samples_t *ttfb, samples_t *input, hist_t *hl,
                            hist_t *ht, hist_t *hi)
{
    /* p95 first: selecting it leaves the smaller values before it, and
     * the median is among them. */
    row->has_latency =
        percentile(latency, hl, 95, &row->latency_p95_ms, &row->approximate);
    if (row->has_latency)
        percentile(latency, hl, 50, &row->latency_p50_ms, &row->approximate);
    row->has_ttfb =
        percentile(ttfb, ht, 50, &row->ttfb_p50_ms, &row->approximate);
    row->has_input_p50 =
        percentile(input, hi, 50, &row->input_p50, &row->approximate);
}

/* Spend is unknown when every outcome's cost is; cost per useful outcome
 * divides the known spend by the useful outcomes whose cost is known, so
 * an unpriced outcome never makes the figure look cheaper. */
void row_settle(report_row_t *row)
{
    row->rework = row->extra_attempts + row->repeats;
    row->has_spend = row->outcomes == 0 || row->unpriced < row->outcomes;
    row->has_cost_per_useful = row->useful_known > 0 && row->has_spend;
    if (row->has_cost_per_useful)
        row->cost_per_useful = divide_half_even(row->spend, row->useful_known);
}

/* Every additive field of `from` into `to`. */
static void row_add(report_row_t *to, const report_row_t *from, bool *ovf)
{
    add_to(&to->outcomes, from->outcomes, ovf);
    add_to(&to->attempts, from->attempts, ovf);
    add_to(&to->errors, from->errors, ovf);
    add_to(&to->input_tokens, from->input_tokens, ovf);
    add_to(&to->cached_tokens, from->cached_tokens, ovf);
    add_to(&to->output_tokens, from->output_tokens, ovf);
    add_to(&to->reasoning_tokens, from->reasoning_tokens, ovf);
    add_to(&to->spend, from->spend, ovf);
    add_to(&to->priced, from->priced, ovf);
    add_to(&to->unpriced, from->unpriced, ovf);
    add_to(&to->unpriced_tokens, from->unpriced_tokens, ovf);
    add_to(&to->estimated, from->estimated, ovf);
    add_to(&to->estimate, from->estimate, ovf);
    add_to(&to->checks_passed, from->checks_passed, ovf);
    add_to(&to->feedback, from->feedback, ovf);
    add_to(&to->feedback_negative, from->feedback_negative, ovf);
    add_to(&to->useful, from->useful, ovf);
    add_to(&to->useful_known, from->useful_known, ovf);
    add_to(&to->not_useful_spend, from->not_useful_spend, ovf);
    add_to(&to->extra_attempts, from->extra_attempts, ovf);
    add_to(&to->repeats, from->repeats, ovf);
    add_to(&to->repeat_spend, from->repeat_spend, ovf);
    add_to(&to->retry_spend, from->retry_spend, ovf);
    add_to(&to->retry_spend_not_useful, from->retry_spend_not_useful, ovf);
    add_to(&to->trimmed_tokens, from->trimmed_tokens, ovf);
    add_to(&to->trim_saved, from->trim_saved, ovf);
    add_to(&to->cache_hits, from->cache_hits, ovf);
    add_to(&to->excess_input, from->excess_input, ovf);
    to->has_trim |= from->has_trim;
    to->has_cache_hits |= from->has_cache_hits;
}

static int compare_rows(const void *a, const void *b, void *n_by)
{
    const report_row_t *x = a, *y = b;

    for (int i = 0; i < *(const int *)n_by; i++) {
        int c = strcmp(x->keys[i], y->keys[i]);

        if (c != 0)
            return c;
    }
    return 0;
}

typedef struct pool {
    samples_t latency, ttfb, input;
    hist_t hl, ht, hi;
} pool_t;

static void pool_add(pool_t *p, const group_t *x)
{
    samples_append(&p->latency, &x->latency);
    samples_append(&p->ttfb, &x->ttfb);
    samples_append(&p->input, &x->input);
    hist_merge(&p->hl, &x->h_latency);
    hist_merge(&p->ht, &x->h_ttfb);
    hist_merge(&p->hi, &x->h_input);
}

static void pool_free(pool_t *p)
{
    free(p->latency.v);
    free(p->ttfb.v);
    free(p->input.v);
    hist_free(&p->hl);
    hist_free(&p->ht);
    hist_free(&p->hi);
}

void groups_finish(groups_t *g, const report_opts_t *opts, report_row_t **rows,
                   size_t *n_rows, report_row_t *total)
{
    pool_t all = {0};
    int n_by = opts->n_by;

    *rows = calloc(g->n ? g->n : 1, sizeof(report_row_t));
    if (*rows == NULL)
        die_oom();
    *n_rows = g->n;
    memset(total, 0, sizeof(*total));
    for (size_t i = 0; i < g->n; i++) {
        group_t *x = &g->items[i];

        pool_add(&all, x);
        set_percentiles(&x->row, &x->latency, &x->ttfb, &x->input,
                        &x->h_latency, &x->h_ttfb, &x->h_input);
        row_settle(&x->row);
        row_add(total, &x->row, &g->overflow);
        total->approximate |= x->row.approximate;
        (*rows)[i] = x->row;
        memset(x->row.keys, 0, sizeof(x->row.keys));
    }
    qsort_r(*rows, *n_rows, sizeof(report_row_t), compare_rows, &n_by);

    set_percentiles(total, &all.latency, &all.ttfb, &all.input, &all.hl,
                    &all.ht, &all.hi);
    row_settle(total);
    pool_free(&all);
}
