/*
 * Learned thresholds for `route: auto`: pass counts per task and tier
 * (from checks and caller feedback), the Wilson lower bound of each pass
 * rate, and the pick of the cheapest tier whose bound meets the task's
 * target, with a share of calls sent elsewhere to keep learning. Counts
 * live in memory on the loop and are saved to the ledger file by a
 * worker thread, so they survive a restart.
 */
#ifndef TOLLGATE_ROUTE_STATS_H
#define TOLLGATE_ROUTE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;

/* Longest task and tier names kept; longer ones are refused. */
#define ROUTE_TASK_MAX 63
#define ROUTE_TIER_MAX 127

typedef struct route_stats_opts {
    int confidence_pct;  /* 80, 85, 90, 95, 98 or 99 (two-sided z) */
    int64_t min_samples; /* fewer: the tier's rate counts as unknown */
    int64_t max_samples; /* at this many, both counts halve; 0 never */
    size_t max_entries;  /* (task, tier) pairs kept; new ones refused */
} route_stats_opts_t;

typedef struct route_stats route_stats_t;

/* Sets 95 %, 30 samples, halving at 10,000, 4,096 entries. */
void route_stats_opts_init(route_stats_opts_t *opts);

/*
 * A new, empty table. Returns 0 with *out (the caller owns it; free with
 * route_stats_free) or -EINVAL for a confidence not in the table, a
 * negative count, or max_samples not above min_samples.
 */
int route_stats_new(const route_stats_opts_t *opts, route_stats_t **out);
void route_stats_free(route_stats_t *stats);

/* The two-sided z for a confidence in percent, or -1 if not tabled. */
double route_stats_z(int confidence_pct);

/*
 * Wilson score interval's lower bound for passes out of n at z; 0 when
 * n is 0. Pure arithmetic, exact to double rounding.
 */
double route_wilson_lower(int64_t passes, int64_t n, double z);

/*
 * Counts one checked answer of tier (a model name) on task, at now_ms.
 * Returns 0, -ENAMETOOLONG for a name past the limits above, or -ENOSPC
 * when the pair is new and the table is full (the count is dropped; task
 * names come from callers, so their number is capped). Loop thread only.
 */
int route_stats_record(route_stats_t *stats, const char *task, const char *tier,
                       bool passed, int64_t now_ms);

/*
 * Caller feedback on an answer already counted: moves one count from
 * pass to fail (useful false) or from fail to pass (useful true). A
 * count that is not there to move is left alone. Same returns as
 * route_stats_record, plus -ENOENT for a pair never counted.
 */
int route_stats_feedback(route_stats_t *stats, const char *task,
                         const char *tier, bool useful, int64_t now_ms);

/* The counts of a pair; 0 or -ENOENT (both set to 0). */
int route_stats_get(const route_stats_t *stats, const char *task,
                    const char *tier, int64_t *passes, int64_t *fails);

/* Why route_auto_pick chose what it chose, for the ledger. */
typedef struct route_auto_why {
    int best;        /* the tier the bounds chose */
    bool explored;   /* the pick is another tier, to keep learning */
    bool unknown;    /* no tier met the target with enough samples */
    double lower;    /* the returned tier's lower bound */
    int64_t samples; /* the returned tier's passes + fails */
} route_auto_why_t;

/*
 * The start tier for task among tiers[0..n) (model names, cheapest
 * first): the cheapest tier with at least min_samples counts and a lower
 * bound >= target_rate; if none, the last (strongest) tier. Then, when
 * the top 32 bits of rnd, read as a fraction of 2^32, fall below
 * explore_share, another tier instead: an unknown one if any (chosen by
 * the low 32 bits of rnd), else any other. Deterministic in rnd. Returns
 * the index, or -EINVAL when n is 0. why may be NULL.
 */
int route_auto_pick(const route_stats_t *stats, const char *task,
                    const char *const tiers[], size_t n, double target_rate,
                    double explore_share, uint64_t rnd, route_auto_why_t *why);

/* A row of the route_stats table. */
typedef struct route_stats_row {
    char task[ROUTE_TASK_MAX + 1];
    char tier[ROUTE_TIER_MAX + 1];
    int64_t passes, fails;
    int64_t updated_ms;
} route_stats_row_t;

typedef struct route_stats_rows {
    route_stats_row_t *rows; /* malloc'd; route_stats_rows_free */
    size_t n;
} route_stats_rows_t;

/*
 * Copies the counts (only those changed since the last snapshot when
 * dirty_only) so a worker can save them while the loop goes on. Marks
 * them clean. Loop thread only.
 */
void route_stats_snapshot(route_stats_t *stats, bool dirty_only,
                          route_stats_rows_t *out);

/*
 * Adds rows (from route_stats_load) to the in-memory counts; call once
 * at start-up, before any record. Rows past the table's cap are dropped;
 * returns how many were taken. Loop thread only.
 */
size_t route_stats_merge(route_stats_t *stats, const route_stats_rows_t *rows);

void route_stats_rows_free(route_stats_rows_t *rows);

/* Marks the pairs of rows changed again, after a save of them failed.
 * Loop thread only. */
void route_stats_mark_dirty(route_stats_t *stats,
                            const route_stats_rows_t *rows);

/*
 * Writes rows into the table route_stats(task, tier, passes, fails,
 * updated_ms) of the SQLite file at path (the ledger file), creating
 * it, in one transaction; a row replaces the stored one. Blocks on disk:
 * run it on a worker thread. Returns 0 or -EIO with SQLite's message.
 */
int route_stats_save(const char *path, const route_stats_rows_t *rows,
                     char *err, size_t errlen);

/*
 * Reads every row of route_stats from path (an absent table reads as no
 * rows). Blocks on disk. Returns 0 with *out (free with
 * route_stats_rows_free) or -EIO.
 */
int route_stats_load(const char *path, route_stats_rows_t *out, char *err,
                     size_t errlen);

/*
 * Snapshots the changed counts and saves them on w; if the save fails,
 * the rows are marked changed again so the next flush retries them. path
 * is copied. stats must outlive the job (worker_free runs pending jobs
 * first). Loop thread only; aborts on out of memory.
 */
void route_stats_flush(route_stats_t *stats, struct worker *w,
                       const char *path);

#endif
