/*
 * The group table a report scan fills, the rows it turns into, and the
 * histograms the daily rollup stores. A scan sums each outcome into its
 * group in C (SQLite's GROUP BY sorts every row first, 2 to 3 s for
 * 1,000,000 outcomes); exact percentiles come from each group's values by
 * selection, and from histograms where rollup rows were read.
 */
#include "report/internal.h"

#include "util/arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- histograms ---- */

int hist_index(int64_t value)
{
    int e, index;

    if (value < 64)
        return value < 0 ? 0 : (int)value;
    e = 63 - __builtin_clzll((unsigned long long)value);
    index = 64 + (e - 6) * 32 + (int)((value >> (e - 5)) & 31);
    return index < HIST_BUCKETS ? index : HIST_BUCKETS - 1;
}

int64_t hist_value(int index)
{
    int e, sub;

    if (index < 64)
        return index;
    e = (index - 64) / 32 + 6;
    sub = (index - 64) % 32;
    return (int64_t)(32 + sub) << (e - 5);
}

void hist_add(hist_t *h, int64_t value, int64_t times)
{
    if (h->count == NULL) {
        h->count = calloc(HIST_BUCKETS, sizeof(int64_t));
        if (h->count == NULL)
            die_oom();
    }
    h->count[hist_index(value)] += times;
    h->n += times;
}

void hist_merge(hist_t *to, const hist_t *from)
{
    for (int i = 0; from->count != NULL && i < HIST_BUCKETS; i++)
        if (from->count[i] != 0)
            hist_add(to, hist_value(i), from->count[i]);
}

int64_t hist_percentile(const hist_t *h, int pct)
{
    int64_t rank = (pct * h->n + 99) / 100, seen = 0;

    for (int i = 0; h->count != NULL && i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return hist_value(i);
    }
    return 0;
}

void hist_free(hist_t *h)
{
    free(h->count);
    h->count = NULL;
    h->n = 0;
}

unsigned char *hist_encode(const hist_t *h, int *len)
{
    unsigned char *blob = malloc(HIST_BUCKETS * 6 + 1);
    int n = 0;

    if (blob == NULL)
        die_oom();
    for (int i = 0; h->count != NULL && i < HIST_BUCKETS; i++) {
        uint64_t c = (uint64_t)h->count[i];

        if (c == 0)
            continue;
        blob[n++] = (unsigned char)(i & 0xff);
        blob[n++] = (unsigned char)(i >> 8);
        for (int b = 0; b < 4; b++)
            blob[n++] = (unsigned char)(c >> (8 * b));
    }
    *len = n;
    return blob;
}

void hist_decode_add(hist_t *h, const void *blob, int len)
{
    const unsigned char *p = blob;

    for (int off = 0; off + 6 <= len; off += 6) {
        int index = p[off] | p[off + 1] << 8;
        int64_t c = 0;

        for (int b = 0; b < 4; b++)
            c |= (int64_t)p[off + 2 + b] << (8 * b);
        if (index < HIST_BUCKETS)
            hist_add(h, hist_value(index), c);
    }
}

/* ---- samples ---- */

static void *xrealloc(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        die_oom();
    p = realloc(p, n * size);
    if (p == NULL && n != 0)
        die_oom();
    return p;
}

void samples_push(samples_t *s, int64_t value)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = xrealloc(s->v, s->cap, sizeof(int64_t));
    }
    s->v[s->n++] = value;
}

void samples_append(samples_t *to, const samples_t *from)
{
    if (from->n == 0)
        return;
    if (to->n + from->n > to->cap) {
        to->cap = to->n + from->n;
        to->v = xrealloc(to->v, to->cap, sizeof(int64_t));
    }
    memcpy(to->v + to->n, from->v, from->n * sizeof(int64_t));
    to->n += from->n;
}

/* ---- the group table ---- */

void groups_init(groups_t *g, int n_by)
{
    memset(g, 0, sizeof(*g));
    g->n_by = n_by;
    g->n_slots = 64;
    g->slots = xrealloc(NULL, g->n_slots, sizeof(size_t));
    memset(g->slots, 0, g->n_slots * sizeof(size_t));
}

/* FNV-1a over each key and its length, so ("ab","c") and ("a","bc")
 * differ. */
static uint64_t hash_keys(const char *const *keys, const size_t *lens, int n)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < lens[i]; j++)
            h = (h ^ (unsigned char)keys[i][j]) * UINT64_C(1099511628211);
        h = (h ^ lens[i]) * UINT64_C(1099511628211);
    }
    return h;
}

static bool same_keys(const group_t *x, const char *const *keys,
                      const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        if (lens[i] != x->key_len[i] ||
            (lens[i] > 0 && memcmp(keys[i], x->row.keys[i], lens[i]) != 0))
            return false;
    return true;
}

static void insert_slot(groups_t *g, size_t index)
{
    size_t mask = g->n_slots - 1;
    size_t s = (size_t)g->items[index].hash & mask;

    while (g->slots[s] != 0)
        s = (s + 1) & mask;
    g->slots[s] = index + 1;
}

static void rehash(groups_t *g)
{
    g->n_slots *= 2;
    free(g->slots);
    g->slots = xrealloc(NULL, g->n_slots, sizeof(size_t));
    memset(g->slots, 0, g->n_slots * sizeof(size_t));
    for (size_t i = 0; i < g->n; i++)
        insert_slot(g, i);
}

static group_t *new_group(groups_t *g, const char *const *keys,
                          const size_t *lens, uint64_t hash)
{
    group_t *x;

    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->items = xrealloc(g->items, g->cap, sizeof(group_t));
    }
    x = &g->items[g->n++];
    memset(x, 0, sizeof(*x));
    x->hash = hash;
    for (int i = 0; i < g->n_by; i++) {
        x->key_len[i] = lens[i];
        x->row.keys[i] = xrealloc(NULL, lens[i] + 1, 1);
        if (lens[i] > 0)
            memcpy(x->row.keys[i], keys[i], lens[i]);
        x->row.keys[i][lens[i]] = '\0';
    }
    /* Keep the table at most half full so probes stay short. */
    if (g->n * 2 > g->n_slots)
        rehash(g);
    else
        insert_slot(g, g->n - 1);
    return x;
}

group_t *groups_find(groups_t *g, const char *const *keys, const size_t *lens)
{
    uint64_t hash = hash_keys(keys, lens, g->n_by);
    size_t mask = g->n_slots - 1;

    for (size_t s = (size_t)hash & mask; g->slots[s] != 0; s = (s + 1) & mask) {
        group_t *x = &g->items[g->slots[s] - 1];

        if (x->hash == hash && same_keys(x, keys, lens, g->n_by))
            return x;
    }
    return new_group(g, keys, lens, hash);
}

void groups_free(groups_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        group_t *x = &g->items[i];

        for (int k = 0; k < REPORT_MAX_DIMS; k++)
            free(x->row.keys[k]);
        free(x->latency.v);
        free(x->ttfb.v);
        free(x->input.v);
        hist_free(&x->h_latency);
        hist_free(&x->h_ttfb);
        hist_free(&x->h_input);
    }
    free(g->items);
    free(g->slots);
    memset(g, 0, sizeof(*g));
}

void add_to(int64_t *sum, int64_t value, bool *overflow)
{
    *overflow |= __builtin_add_overflow(*sum, value, sum);
}

pico_t divide_half_even(pico_t amount, int64_t count)
{
    uint64_t mag =
        amount < 0 ? (uint64_t)(-(amount + 1)) + 1 : (uint64_t)amount;
    uint64_t den = (uint64_t)count;
    uint64_t q = mag / den, r = mag % den;

    if (r > den - r || (r == den - r && (q & 1)))
        q++;
    return amount < 0 ? -(pico_t)q : (pico_t)q;
}

void rows_free(report_row_t *rows, size_t n)
{
    for (size_t r = 0; r < n; r++) {
        for (int i = 0; i < REPORT_MAX_DIMS; i++)
            free(rows[r].keys[i]);
        if (rows[r].previous != NULL)
            rows_free(rows[r].previous, 1);
        free(rows[r].previous);
    }
}
