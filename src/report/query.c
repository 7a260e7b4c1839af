/*
 * Reads a report out of the ledger in one scan of the window. SQLite's
 * GROUP BY sorts every row first, which took 2 to 3 s for 1,000,000
 * outcomes on the reference machine (the target is under 1 s), so the
 * scan streams the few columns a report needs and C sums them per group
 * in a hash table; percentiles come from each group's latencies by
 * selection, not a full sort. One statement reads one snapshot, so the
 * figures agree with each other while the gateway keeps appending.
 */
#include "report/report.h"

#include "ledger/ledger.h"

#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000

/* Columns of `outcomes` by report_dim_t. */
static const char *const dim_columns[] = {"task", "model", "team", "key_id",
                                          "owner"};

/* What each outcome contributes, after the --by columns. */
enum {
    COL_ATTEMPTS,
    COL_STATUS,
    COL_INPUT,
    COL_CACHED,
    COL_OUTPUT,
    COL_REASONING,
    COL_COST,
    COL_COST_STATUS,
    COL_USEFUL,
    COL_LATENCY,
    COL_TTFB,
    COL_ERROR,
    COL_ESTIMATE
};

static const char scan_columns[] =
    "n_attempts, http_status, input_tokens, cached_tokens, output_tokens,"
    " reasoning_tokens, cost_pico, cost_status, useful, latency_ms,"
    " ttfb_ms, error_type, ";
/* Schema 1 files, not yet migrated by a gateway, have no estimates. */
static const char estimate_column[2][24] = {"NULL", "cost_estimate_pico"};

/* A growable list of milliseconds; it never holds more than the number
 * of outcomes in the window. */
typedef struct samples {
    int64_t *ms;
    size_t n;
    size_t cap;
} samples_t;

typedef struct group {
    report_row_t row;
    size_t key_len[REPORT_MAX_DIMS];
    uint64_t hash;
    samples_t latency;
    samples_t ttfb;
} group_t;

typedef struct scan {
    group_t *groups;
    size_t n_groups;
    size_t cap_groups;
    size_t *slots;  /* open addressing: group index + 1, 0 empty */
    size_t n_slots; /* a power of two, at least twice n_groups */
    bool overflow;
} scan_t;

static void *xrealloc(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        p = NULL;
    else
        p = realloc(p, n * size);
    if (p == NULL) {
        fputs("tollgate report: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void samples_push(samples_t *s, int64_t ms)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->ms = xrealloc(s->ms, s->cap, sizeof(int64_t));
    }
    s->ms[s->n++] = ms;
}

static void samples_append(samples_t *to, const samples_t *from)
{
    if (from->n == 0)
        return;
    if (to->n + from->n > to->cap) {
        to->cap = to->n + from->n;
        to->ms = xrealloc(to->ms, to->cap, sizeof(int64_t));
    }
    memcpy(to->ms + to->n, from->ms, from->n * sizeof(int64_t));
    to->n += from->n;
}

/* FNV-1a over each key and its length, so ("ab","c") and ("a","bc")
 * differ. */
static uint64_t hash_keys(sqlite3_stmt *stmt, int n_by)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (int i = 0; i < n_by; i++) {
        const unsigned char *key = sqlite3_column_text(stmt, i);
        size_t len = (size_t)sqlite3_column_bytes(stmt, i);

        for (size_t j = 0; j < len; j++)
            h = (h ^ key[j]) * UINT64_C(1099511628211);
        h = (h ^ len) * UINT64_C(1099511628211);
    }
    return h;
}

static bool same_keys(const group_t *g, sqlite3_stmt *stmt, int n_by)
{
    for (int i = 0; i < n_by; i++) {
        const void *key = sqlite3_column_text(stmt, i);
        size_t len = (size_t)sqlite3_column_bytes(stmt, i);

        if (len != g->key_len[i] ||
            (len > 0 && memcmp(key, g->row.keys[i], len) != 0))
            return false;
    }
    return true;
}

static void insert_slot(scan_t *scan, size_t index)
{
    size_t mask = scan->n_slots - 1;
    size_t s = (size_t)scan->groups[index].hash & mask;

    while (scan->slots[s] != 0)
        s = (s + 1) & mask;
    scan->slots[s] = index + 1;
}

static void rehash(scan_t *scan)
{
    free(scan->slots);
    scan->n_slots = scan->n_slots ? scan->n_slots * 2 : 64;
    scan->slots = xrealloc(NULL, scan->n_slots, sizeof(size_t));
    memset(scan->slots, 0, scan->n_slots * sizeof(size_t));
    for (size_t g = 0; g < scan->n_groups; g++)
        insert_slot(scan, g);
}

static group_t *new_group(scan_t *scan, sqlite3_stmt *stmt, int n_by,
                          uint64_t hash)
{
    group_t *g;

    if (scan->n_groups == scan->cap_groups) {
        scan->cap_groups = scan->cap_groups ? scan->cap_groups * 2 : 16;
        scan->groups =
            xrealloc(scan->groups, scan->cap_groups, sizeof(group_t));
    }
    g = &scan->groups[scan->n_groups++];
    memset(g, 0, sizeof(*g));
    g->hash = hash;
    for (int i = 0; i < n_by; i++) {
        const unsigned char *key = sqlite3_column_text(stmt, i);
        size_t len = (size_t)sqlite3_column_bytes(stmt, i);

        g->key_len[i] = len;
        g->row.keys[i] = xrealloc(NULL, len + 1, 1);
        if (len > 0)
            memcpy(g->row.keys[i], key, len);
        g->row.keys[i][len] = '\0';
    }

    /* Keep the table at most half full so probes stay short. */
    if (scan->n_groups * 2 > scan->n_slots)
        rehash(scan);
    else
        insert_slot(scan, scan->n_groups - 1);
    return g;
}

static group_t *find_group(scan_t *scan, sqlite3_stmt *stmt, int n_by)
{
    uint64_t hash = hash_keys(stmt, n_by);
    size_t mask = scan->n_slots - 1;
    size_t s = (size_t)hash & mask;

    for (; scan->slots[s] != 0; s = (s + 1) & mask) {
        group_t *g = &scan->groups[scan->slots[s] - 1];

        if (g->hash == hash && same_keys(g, stmt, n_by))
            return g;
    }
    return new_group(scan, stmt, n_by, hash);
}

static bool add(int64_t *sum, int64_t value)
{
    return __builtin_add_overflow(*sum, value, sum);
}

/* Unpriced, usage_missing, invalid_usage and estimated: money was
 * probably spent but its exact amount is unknown. "none" means nothing
 * was billed. */
static bool cost_unknown(const char *status)
{
    return strcmp(status, "unpriced") == 0 ||
           strcmp(status, "estimated") == 0 ||
           strcmp(status, "usage_missing") == 0 ||
           strcmp(status, "invalid_usage") == 0;
}

static int64_t column(sqlite3_stmt *stmt, int n_by, int col)
{
    return sqlite3_column_int64(stmt, n_by + col);
}

static void add_outcome(scan_t *scan, sqlite3_stmt *stmt, int n_by)
{
    group_t *g = find_group(scan, stmt, n_by);
    report_row_t *row = &g->row;
    const unsigned char *text =
        sqlite3_column_text(stmt, n_by + COL_COST_STATUS);
    const char *status = text ? (const char *)text : "";
    int64_t ttfb = column(stmt, n_by, COL_TTFB);
    bool overflow = false;

    row->outcomes++;
    /* A stream that broke after its 200 still failed. */
    row->errors += column(stmt, n_by, COL_STATUS) != 200 ||
                   sqlite3_column_bytes(stmt, n_by + COL_ERROR) > 0;
    row->unpriced += cost_unknown(status);
    if (cost_unknown(status))
        overflow |=
            add(&row->unpriced_tokens,
                column(stmt, n_by, COL_INPUT) + column(stmt, n_by, COL_OUTPUT));
    row->estimated += strcmp(status, "estimated") == 0;
    overflow |= add(&row->estimate, column(stmt, n_by, COL_ESTIMATE));
    row->useful += column(stmt, n_by, COL_USEFUL) != 0;
    row->useful_known +=
        column(stmt, n_by, COL_USEFUL) != 0 && !cost_unknown(status);
    overflow |= add(&row->attempts, column(stmt, n_by, COL_ATTEMPTS));
    overflow |= add(&row->input_tokens, column(stmt, n_by, COL_INPUT));
    overflow |= add(&row->cached_tokens, column(stmt, n_by, COL_CACHED));
    overflow |= add(&row->output_tokens, column(stmt, n_by, COL_OUTPUT));
    overflow |= add(&row->reasoning_tokens, column(stmt, n_by, COL_REASONING));
    if (strcmp(status, "priced") == 0)
        overflow |= add(&row->spend, column(stmt, n_by, COL_COST));
    scan->overflow |= overflow;

    samples_push(&g->latency, column(stmt, n_by, COL_LATENCY));
    /* A negative time to first byte means no byte came: no sample. */
    if (sqlite3_column_type(stmt, n_by + COL_TTFB) != SQLITE_NULL && ttfb >= 0)
        samples_push(&g->ttfb, ttfb);
}

static void build_sql(const report_opts_t *opts, int version, char *sql,
                      size_t len)
{
    size_t n = (size_t)snprintf(sql, len, "SELECT ");

    for (int i = 0; i < opts->n_by; i++)
        n += (size_t)snprintf(sql + n, len - n, "%s, ",
                              dim_columns[opts->by[i]]);
    snprintf(sql + n, len - n, "%s%s FROM outcomes WHERE 1%s%s", scan_columns,
             estimate_column[version >= 2],
             opts->has_since ? " AND started_ms >= ?1" : "",
             opts->has_until ? " AND started_ms < ?2" : "");
}

static int scan_ledger(sqlite3 *db, int version, const report_opts_t *opts,
                       scan_t *scan, char *err, size_t errlen)
{
    sqlite3_stmt *stmt;
    char sql[1024];
    int rc;

    build_sql(opts, version, sql, sizeof(sql));
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read %s: %s", opts->ledger_path,
                 sqlite3_errmsg(db));
        return -EIO;
    }
    if (opts->has_since)
        sqlite3_bind_int64(stmt, 1, opts->since_ms);
    if (opts->has_until)
        sqlite3_bind_int64(stmt, 2, opts->until_ms);

    rehash(scan);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        add_outcome(scan, stmt, opts->n_by);
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "cannot read %s: %s", opts->ledger_path,
                 sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

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

static void set_percentiles(report_row_t *row, samples_t *latency,
                            samples_t *ttfb)
{
    size_t k50, k95;

    row->has_latency = latency->n > 0;
    if (row->has_latency) {
        k50 = rank_index(latency->n, 50);
        k95 = rank_index(latency->n, 95);
        select_kth(latency->ms, latency->n, k95);
        select_kth(latency->ms, k95 + 1, k50);
        row->latency_p50_ms = latency->ms[k50];
        row->latency_p95_ms = latency->ms[k95];
    }
    row->has_ttfb = ttfb->n > 0;
    if (row->has_ttfb) {
        k50 = rank_index(ttfb->n, 50);
        select_kth(ttfb->ms, ttfb->n, k50);
        row->ttfb_p50_ms = ttfb->ms[k50];
    }
}

/* Spend over useful outcomes, rounded half to even at the picodollar. */
static pico_t divide_half_even(pico_t spend, int64_t useful)
{
    uint64_t mag = spend < 0 ? (uint64_t)(-(spend + 1)) + 1 : (uint64_t)spend;
    uint64_t den = (uint64_t)useful;
    uint64_t q = mag / den, r = mag % den;

    if (r > den - r || (r == den - r && (q & 1)))
        q++;
    return spend < 0 ? -(pico_t)q : (pico_t)q;
}

/* Spend is unknown when every outcome's cost is; cost per useful outcome
 * divides the known spend by the useful outcomes whose cost is known, so
 * an unpriced outcome never makes the figure look cheaper. */
static void set_cost_per_useful(report_row_t *row)
{
    row->has_spend = row->outcomes == 0 || row->unpriced < row->outcomes;
    row->has_cost_per_useful = row->useful_known > 0 && row->has_spend;
    if (row->has_cost_per_useful)
        row->cost_per_useful = divide_half_even(row->spend, row->useful_known);
}

static bool add_to_total(report_row_t *total, const report_row_t *row)
{
    bool overflow = false;

    total->outcomes += row->outcomes;
    total->errors += row->errors;
    total->unpriced += row->unpriced;
    total->estimated += row->estimated;
    overflow |= add(&total->unpriced_tokens, row->unpriced_tokens);
    overflow |= add(&total->estimate, row->estimate);
    total->useful += row->useful;
    total->useful_known += row->useful_known;
    overflow |= add(&total->attempts, row->attempts);
    overflow |= add(&total->input_tokens, row->input_tokens);
    overflow |= add(&total->cached_tokens, row->cached_tokens);
    overflow |= add(&total->output_tokens, row->output_tokens);
    overflow |= add(&total->reasoning_tokens, row->reasoning_tokens);
    overflow |= add(&total->spend, row->spend);
    return overflow;
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

/* Moves the groups into the report, sorted by key, with the total. */
static void finish(scan_t *scan, report_t *report)
{
    samples_t all_latency = {0}, all_ttfb = {0};

    report->rows = xrealloc(NULL, scan->n_groups, sizeof(report_row_t));
    report->n_rows = scan->n_groups;
    for (size_t i = 0; i < scan->n_groups; i++) {
        group_t *g = &scan->groups[i];

        samples_append(&all_latency, &g->latency);
        samples_append(&all_ttfb, &g->ttfb);
        set_percentiles(&g->row, &g->latency, &g->ttfb);
        set_cost_per_useful(&g->row);
        scan->overflow |= add_to_total(&report->total, &g->row);
        report->rows[i] = g->row;
        memset(g->row.keys, 0, sizeof(g->row.keys));
    }
    qsort_r(report->rows, report->n_rows, sizeof(report_row_t), compare_rows,
            &report->opts.n_by);

    set_percentiles(&report->total, &all_latency, &all_ttfb);
    set_cost_per_useful(&report->total);
    free(all_latency.ms);
    free(all_ttfb.ms);
}

static void scan_free(scan_t *scan)
{
    for (size_t i = 0; i < scan->n_groups; i++) {
        group_t *g = &scan->groups[i];

        for (int k = 0; k < REPORT_MAX_DIMS; k++)
            free(g->row.keys[k]);
        free(g->latency.ms);
        free(g->ttfb.ms);
    }
    free(scan->groups);
    free(scan->slots);
}

/* Opens read-only; fails on a file that is not a ledger of a version
 * this code understands. */
static int open_ledger(const char *path, sqlite3 **db, int *out_version,
                       char *err, size_t errlen)
{
    sqlite3_stmt *stmt = NULL;
    int version = -1;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, db, flags, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
        rc = sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &stmt, NULL);
    }
    if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
        version = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);

    if (version < 0) {
        snprintf(err, errlen, "cannot open ledger %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        return -EIO;
    }
    if (version < 1 || version > LEDGER_SCHEMA_VERSION) {
        snprintf(err, errlen,
                 "%s is not a Tollgate ledger of schema version %d "
                 "(its user_version is %d)",
                 path, LEDGER_SCHEMA_VERSION, version);
        return -EPROTO;
    }
    *out_version = version;
    return 0;
}

int report_query(const report_opts_t *opts, report_t *report, char *err,
                 size_t errlen)
{
    scan_t scan = {0};
    sqlite3 *db = NULL;
    int version = 0;
    int rc;

    memset(report, 0, sizeof(*report));
    report->opts = *opts;
    if (opts->n_by < 1 || opts->n_by > REPORT_MAX_DIMS) {
        snprintf(err, errlen, "group by 1 to %d columns", REPORT_MAX_DIMS);
        return -EINVAL;
    }

    rc = open_ledger(opts->ledger_path, &db, &version, err, errlen);
    if (rc < 0)
        goto close_db;
    rc = scan_ledger(db, version, opts, &scan, err, errlen);
    if (rc < 0)
        goto free_scan;

    finish(&scan, report);
    if (scan.overflow) {
        snprintf(err, errlen, "sums overflow 64 bits");
        rc = -EOVERFLOW;
    }

free_scan:
    scan_free(&scan);
close_db:
    sqlite3_close(db);
    return rc;
}

void report_free(report_t *report)
{
    for (size_t g = 0; g < report->n_rows; g++)
        for (int i = 0; i < REPORT_MAX_DIMS; i++)
            free(report->rows[g].keys[i]);
    free(report->rows);
    report->rows = NULL;
    report->n_rows = 0;
}
