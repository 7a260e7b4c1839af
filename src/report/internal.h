/*
 * Shared by the files of src/report: the group table a scan fills, the
 * histograms the daily rollup keeps, and helpers for exact money. Internal
 * to src/report.
 */
#ifndef TOLLGATE_REPORT_INTERNAL_H
#define TOLLGATE_REPORT_INTERNAL_H

#include "report/report.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MS_PER_HOUR INT64_C(3600000)
#define MS_PER_DAY_R INT64_C(86400000)

/* Log-linear histogram: values below 64 exactly, above that 32 buckets
 * per power of two (a bucket's values differ by at most 1/32). */
#define HIST_BUCKETS 1024

typedef struct hist {
    int64_t *count; /* HIST_BUCKETS, or NULL when empty */
    int64_t n;
} hist_t;

int hist_index(int64_t value);
/* The smallest value of bucket i (the value reported for it). */
int64_t hist_value(int index);
void hist_add(hist_t *h, int64_t value, int64_t times);
void hist_merge(hist_t *to, const hist_t *from);
/* Nearest-rank percentile: the bucket holding rank ceil(pct * n / 100). */
int64_t hist_percentile(const hist_t *h, int pct);
void hist_free(hist_t *h);
/* Sparse little-endian (u16 index, u32 count) pairs; caller frees. */
unsigned char *hist_encode(const hist_t *h, int *len);
void hist_decode_add(hist_t *h, const void *blob, int len);

/* A growable list of values; never longer than the rows scanned. */
typedef struct samples {
    int64_t *v;
    size_t n;
    size_t cap;
} samples_t;

void samples_push(samples_t *s, int64_t value);
void samples_append(samples_t *to, const samples_t *from);

typedef struct group {
    report_row_t row;
    size_t key_len[REPORT_MAX_DIMS];
    uint64_t hash;
    samples_t latency, ttfb, input;    /* exact, from scanned rows */
    hist_t h_latency, h_ttfb, h_input; /* from rollup rows */
} group_t;

/* Groups by key: open addressing over the keys' bytes. */
typedef struct groups {
    int n_by;
    group_t *items;
    size_t n;
    size_t cap;
    size_t *slots; /* index + 1, 0 empty */
    size_t n_slots;
    bool overflow;
} groups_t;

void groups_init(groups_t *g, int n_by);
/* The group of these keys (text and length per dim), made if new. */
group_t *groups_find(groups_t *g, const char *const *keys, const size_t *lens);
void groups_free(groups_t *g);

/* Adds with overflow noted in *overflow. */
void add_to(int64_t *sum, int64_t value, bool *overflow);

/* Spend over a count, half to even at the picodollar. */
pico_t divide_half_even(pico_t amount, int64_t count);

/* Turns groups into sorted report rows and a total (percentiles, cost per
 * useful outcome); the groups give up their keys. */
void groups_finish(groups_t *g, const report_opts_t *opts, report_row_t **rows,
                   size_t *n_rows, report_row_t *total);
void rows_free(report_row_t *rows, size_t n);

/* The nearest-rank median of v[0..n), n > 0; reorders v. */
int64_t report_sample_median(int64_t *v, size_t n);

/* Fills the derived fields of a row: has_spend, cost per useful. */
void row_settle(report_row_t *row);

/* Opens the ledger read-only; *version gets its schema version. */
int ledger_open_ro(const char *path, sqlite3 **db, int *version, char *err,
                   size_t errlen);
bool table_exists(sqlite3 *db, const char *table);
bool column_exists(sqlite3 *db, const char *table, const char *column);

/* The daily rollup: what is in it, read into groups. */
typedef struct rollup_state {
    bool present;
    int64_t max_rowid; /* outcome rows up to here are in it */
} rollup_state_t;

void rollup_read_state(sqlite3 *db, rollup_state_t *st);
/* Adds the rollup rows of days [lo_ms, hi_ms) to g. Returns outcomes
 * added, or -EIO. */
int64_t rollup_read(sqlite3 *db, const report_opts_t *opts, int64_t lo_ms,
                    int64_t hi_ms, groups_t *g);

/* The SQL text of a dim over `outcomes` (alias o), or over the rollup
 * table (alias o) when rollup is true (NULL: the rollup lacks it). */
const char *dim_sql(report_dim_t dim, bool rollup);

/* What the ledger file holds beyond the version 2 schema. */
typedef struct ledger_shape {
    int version;
    bool has_trim;      /* input_tokens_before_trim, trim_saved_pico */
    bool has_cache_hit; /* outcomes.cache_hit */
    bool has_feedback;  /* the feedback table */
    bool has_rework;    /* the rework table */
} ledger_shape_t;

void ledger_shape_read(sqlite3 *db, int version, ledger_shape_t *shape);

/* One scan of outcome rows into groups: started_ms in [lo_ms, hi_ms)
 * and rowid in (rowid_lo, rowid_hi]. */
typedef struct scan_spec {
    const report_opts_t *opts; /* by, n_by */
    const ledger_shape_t *shape;
    int64_t lo_ms, hi_ms;
    int64_t rowid_lo, rowid_hi;
} scan_spec_t;

int scan_rows(sqlite3 *db, const scan_spec_t *spec, groups_t *g, char *err,
              size_t errlen);

/*
 * Every outcome with started_ms in [lo, hi) summed into g (whole days
 * from the rollup when usable), then feedback and rework applied.
 * *from_rollup grows by the outcomes read from rollup rows.
 */
int report_collect(sqlite3 *db, const report_opts_t *opts,
                   const ledger_shape_t *shape, int64_t lo, int64_t hi,
                   groups_t *g, int64_t *from_rollup, char *err, size_t errlen);

/* Formats unix ms as 2026-11-01T09:00:00Z (".123" when not whole). */
void report_format_time(int64_t ms, char *out, size_t len);

/* A rate num/den with 4 decimals, half to even; "n/a" when den is 0. */
void format_rate(int64_t num, int64_t den, char *out, size_t len);

/* The leaks' writers (leaks.c). */
void leaks_write_table(const report_t *report, FILE *out);
struct json_object *leaks_to_json(const report_t *report);
void leaks_free(report_t *report);

#endif
