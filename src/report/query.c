/*
 * Reads a report out of the ledger in one snapshot. Whole days the daily
 * rollup covers come from it (report_rollup_refresh keeps it); every
 * other outcome in the window is scanned: the few columns a report needs
 * are streamed and summed per group in C. Feedback and rework links are
 * small tables, read last and applied to the groups of their outcomes,
 * so an outcome's usefulness follows feedback that arrives after the
 * rollup took it.
 */
#include "report/internal.h"

#include "ledger/ledger.h"

#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define BUSY_TIMEOUT_MS 5000

static const char *const dim_exprs[REPORT_MAX_DIMS] = {
    "o.task",
    "o.model",
    "o.team",
    "o.key_id",
    "o.owner",
    "(o.started_ms / 3600000) * 3600000",
    "(o.started_ms / 86400000) * 86400000"};

static const char *const rollup_exprs[REPORT_MAX_DIMS] = {
    "o.task", "o.model", "o.team", "o.key_id", "o.owner", NULL, "o.day_ms"};

const char *dim_sql(report_dim_t dim, bool rollup)
{
    if (dim < 0 || dim >= REPORT_MAX_DIMS)
        return NULL;
    return rollup ? rollup_exprs[dim] : dim_exprs[dim];
}

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
    COL_ESTIMATE,
    COL_RETRY_SPEND,
    COL_TRIMMED,
    COL_TRIM_SAVED,
    COL_CACHE_HIT
};

static const char scan_columns[] =
    "o.n_attempts, o.http_status, o.input_tokens, o.cached_tokens,"
    " o.output_tokens, o.reasoning_tokens, o.cost_pico, o.cost_status,"
    " o.useful, o.latency_ms, o.ttfb_ms, o.error_type, ";

/* Only outcomes with more than one attempt have a retry or an
 * escalation, so the attempts table is probed for those alone. */
static const char retry_column[] =
    ", CASE WHEN o.n_attempts > 1 THEN (SELECT ifnull(sum(a.cost_pico), 0)"
    " FROM attempts a WHERE a.outcome_id = o.id AND a.reason <> 'first'"
    " AND a.cost_status = 'priced') ELSE 0 END";

/* input_tokens_before_trim is 0 when the task trims nothing. */
static const char trim_columns[2][200] = {
    ", 0, 0", ", CASE WHEN o.input_tokens_before_trim > 0 THEN"
              " max(o.input_tokens_before_trim - o.input_tokens_after_trim, 0)"
              " ELSE 0 END, o.trim_saved_pico"};

bool table_exists(sqlite3 *db, const char *table)
{
    return sqlite3_table_column_metadata(db, NULL, table, NULL, NULL, NULL,
                                         NULL, NULL, NULL) == SQLITE_OK;
}

bool column_exists(sqlite3 *db, const char *table, const char *column)
{
    return sqlite3_table_column_metadata(db, NULL, table, column, NULL, NULL,
                                         NULL, NULL, NULL) == SQLITE_OK;
}

void ledger_shape_read(sqlite3 *db, int version, ledger_shape_t *shape)
{
    memset(shape, 0, sizeof(*shape));
    shape->version = version;
    shape->has_trim =
        column_exists(db, "outcomes", "input_tokens_before_trim") &&
        column_exists(db, "outcomes", "input_tokens_after_trim") &&
        column_exists(db, "outcomes", "trim_saved_pico");
    shape->has_cache_hit = column_exists(db, "outcomes", "cache_hit");
    shape->has_feedback = table_exists(db, "feedback");
    shape->has_rework = table_exists(db, "rework");
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

static group_t *group_of(groups_t *g, sqlite3_stmt *stmt)
{
    const char *keys[REPORT_MAX_DIMS];
    size_t lens[REPORT_MAX_DIMS];

    for (int i = 0; i < g->n_by; i++) {
        const unsigned char *text = sqlite3_column_text(stmt, i);

        keys[i] = text ? (const char *)text : "";
        lens[i] = (size_t)sqlite3_column_bytes(stmt, i);
    }
    return groups_find(g, keys, lens);
}

static void add_money(report_row_t *row, sqlite3_stmt *st, int n,
                      const char *status, bool *ovf)
{
    bool priced = strcmp(status, "priced") == 0;
    bool useful = column(st, n, COL_USEFUL) != 0;
    int64_t cost = column(st, n, COL_COST);

    row->unpriced += cost_unknown(status);
    if (cost_unknown(status))
        add_to(&row->unpriced_tokens,
               column(st, n, COL_INPUT) + column(st, n, COL_OUTPUT), ovf);
    row->estimated += strcmp(status, "estimated") == 0;
    add_to(&row->estimate, column(st, n, COL_ESTIMATE), ovf);
    row->useful_known += useful && !cost_unknown(status);
    row->priced += priced;
    if (priced)
        add_to(&row->spend, cost, ovf);
    if (priced && !useful)
        add_to(&row->not_useful_spend, cost, ovf);
    add_to(&row->retry_spend, column(st, n, COL_RETRY_SPEND), ovf);
    if (!useful)
        add_to(&row->retry_spend_not_useful, column(st, n, COL_RETRY_SPEND),
               ovf);
    add_to(&row->trim_saved, column(st, n, COL_TRIM_SAVED), ovf);
}

static void add_outcome(groups_t *g, sqlite3_stmt *st,
                        const ledger_shape_t *shape)
{
    group_t *x = group_of(g, st);
    report_row_t *row = &x->row;
    int n = g->n_by;
    const unsigned char *text = sqlite3_column_text(st, n + COL_COST_STATUS);
    int64_t ttfb = column(st, n, COL_TTFB);
    int64_t attempts = column(st, n, COL_ATTEMPTS);
    bool ovf = false;

    row->outcomes++;
    /* A stream that broke after its 200 still failed. */
    row->errors += column(st, n, COL_STATUS) != 200 ||
                   sqlite3_column_bytes(st, n + COL_ERROR) > 0;
    add_money(row, st, n, text ? (const char *)text : "", &ovf);
    row->checks_passed += column(st, n, COL_USEFUL) != 0;
    row->useful += column(st, n, COL_USEFUL) != 0;
    add_to(&row->attempts, attempts, &ovf);
    row->extra_attempts += attempts > 1 ? attempts - 1 : 0;
    add_to(&row->input_tokens, column(st, n, COL_INPUT), &ovf);
    add_to(&row->cached_tokens, column(st, n, COL_CACHED), &ovf);
    add_to(&row->output_tokens, column(st, n, COL_OUTPUT), &ovf);
    add_to(&row->reasoning_tokens, column(st, n, COL_REASONING), &ovf);
    add_to(&row->trimmed_tokens, column(st, n, COL_TRIMMED), &ovf);
    row->cache_hits += column(st, n, COL_CACHE_HIT) != 0;
    row->has_trim = shape->has_trim;
    row->has_cache_hits = shape->has_cache_hit;
    g->overflow |= ovf;

    samples_push(&x->latency, column(st, n, COL_LATENCY));
    samples_push(&x->input, column(st, n, COL_INPUT));
    /* A negative time to first byte means no byte came: no sample. */
    if (sqlite3_column_type(st, n + COL_TTFB) != SQLITE_NULL && ttfb >= 0)
        samples_push(&x->ttfb, ttfb);
}

static void build_sql(const scan_spec_t *spec, char *sql, size_t len)
{
    const report_opts_t *opts = spec->opts;
    const ledger_shape_t *shape = spec->shape;
    size_t n = (size_t)snprintf(sql, len, "SELECT ");

    for (int i = 0; i < opts->n_by; i++)
        n += (size_t)snprintf(sql + n, len - n, "%s, ",
                              dim_sql(opts->by[i], false));
    /* Schema 1 files, not yet migrated by a gateway, have no
     * estimates. */
    snprintf(sql + n, len - n,
             "%s%s%s%s%s FROM outcomes o WHERE o.started_ms >= ?1"
             " AND o.started_ms < ?2 AND o.rowid > ?3 AND o.rowid <= ?4",
             scan_columns,
             shape->version >= 2 ? "o.cost_estimate_pico" : "NULL",
             retry_column, trim_columns[shape->has_trim],
             shape->has_cache_hit ? ", ifnull(o.cache_hit, 0)" : ", 0");
}

int scan_rows(sqlite3 *db, const scan_spec_t *spec, groups_t *g, char *err,
              size_t errlen)
{
    sqlite3_stmt *stmt;
    char sql[2048];
    int rc;

    if (spec->lo_ms >= spec->hi_ms || spec->rowid_lo >= spec->rowid_hi)
        return 0;
    build_sql(spec, sql, sizeof(sql));
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read the ledger: %s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_int64(stmt, 1, spec->lo_ms);
    sqlite3_bind_int64(stmt, 2, spec->hi_ms);
    sqlite3_bind_int64(stmt, 3, spec->rowid_lo);
    sqlite3_bind_int64(stmt, 4, spec->rowid_hi);

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        add_outcome(g, stmt, spec->shape);
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "cannot read the ledger: %s", sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- feedback and rework, applied after the sums ---- */

/* CROSS JOIN keeps the small table outside: left to itself, SQLite may
 * walk every outcome of the window by time and probe the small table
 * for each. */
static const char feedback_sql[] =
    " o.useful, o.cost_status, o.cost_pico, max(f.useful = 0),"
    " CASE WHEN o.n_attempts > 1 THEN (SELECT ifnull(sum(a.cost_pico), 0)"
    " FROM attempts a WHERE a.outcome_id = o.id AND a.reason <> 'first'"
    " AND a.cost_status = 'priced') ELSE 0 END"
    " FROM feedback f CROSS JOIN outcomes o ON o.id = f.outcome_id"
    " WHERE o.started_ms >= ?1 AND o.started_ms < ?2 GROUP BY f.outcome_id";

static const char rework_sql[] =
    " o.cost_status, o.cost_pico, o.useful FROM rework r CROSS JOIN outcomes o"
    " ON o.id = r.outcome_id WHERE o.started_ms >= ?1 AND o.started_ms < ?2";

static void apply_feedback(groups_t *g, sqlite3_stmt *st)
{
    report_row_t *row = &group_of(g, st)->row;
    int n = g->n_by;
    const unsigned char *status = sqlite3_column_text(st, n + 1);
    bool priced = status && strcmp((const char *)status, "priced") == 0;
    bool known = status && !cost_unknown((const char *)status);

    row->feedback++;
    if (sqlite3_column_int(st, n + 3) == 0)
        return;
    row->feedback_negative++;
    if (sqlite3_column_int(st, n) == 0)
        return;
    /* It passed its checks, but the caller said it was no use. */
    row->useful--;
    row->useful_known -= known;
    if (priced)
        add_to(&row->not_useful_spend, sqlite3_column_int64(st, n + 2),
               &g->overflow);
    add_to(&row->retry_spend_not_useful, sqlite3_column_int64(st, n + 4),
           &g->overflow);
}

static void apply_rework(groups_t *g, sqlite3_stmt *st)
{
    report_row_t *row = &group_of(g, st)->row;
    const unsigned char *status = sqlite3_column_text(st, g->n_by);

    row->repeats++;
    /* A repeat that failed its checks is already in not_useful_spend. */
    if (status && strcmp((const char *)status, "priced") == 0 &&
        sqlite3_column_int(st, g->n_by + 2) != 0)
        add_to(&row->repeat_spend, sqlite3_column_int64(st, g->n_by + 1),
               &g->overflow);
}

static int apply_links(sqlite3 *db, const report_opts_t *opts, int64_t lo,
                       int64_t hi, const char *tail, groups_t *g,
                       void (*apply)(groups_t *, sqlite3_stmt *))
{
    sqlite3_stmt *stmt;
    char sql[1024];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "SELECT ");
    int rc;

    for (int i = 0; i < opts->n_by; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s,",
                              dim_sql(opts->by[i], false));
    snprintf(sql + n, sizeof(sql) - n, "%s", tail);
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(stmt, 1, lo);
    sqlite3_bind_int64(stmt, 2, hi);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        apply(g, stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- one window ---- */

static int64_t floor_day(int64_t ms)
{
    int64_t d = ms / MS_PER_DAY_R;

    return (ms < 0 && ms % MS_PER_DAY_R != 0 ? d - 1 : d) * MS_PER_DAY_R;
}

static bool rollup_usable(const report_opts_t *opts)
{
    for (int i = 0; i < opts->n_by; i++)
        if (dim_sql(opts->by[i], true) == NULL)
            return false;
    return !opts->no_rollup;
}

/* The whole days of [lo, hi) from the rollup, the rest scanned. */
static int read_window(sqlite3 *db, const report_opts_t *opts,
                       const ledger_shape_t *shape, int64_t lo, int64_t hi,
                       groups_t *g, int64_t *from_rollup, char *err,
                       size_t errlen)
{
    rollup_state_t st = {0};
    scan_spec_t spec = {opts, shape, lo, hi, 0, INT64_MAX};
    int64_t day_lo, day_hi;
    int rc;

    if (rollup_usable(opts))
        rollup_read_state(db, &st);
    if (!st.present || st.max_rowid == 0)
        return scan_rows(db, &spec, g, err, errlen);

    day_lo = lo == INT64_MIN ? INT64_MIN : floor_day(lo - 1) + MS_PER_DAY_R;
    day_hi = hi == INT64_MAX ? INT64_MAX : floor_day(hi);
    if (day_lo >= day_hi)
        return scan_rows(db, &spec, g, err, errlen);

    *from_rollup += rollup_read(db, opts, day_lo, day_hi, g);
    spec.rowid_lo = st.max_rowid; /* rows the rollup has not taken */
    rc = scan_rows(db, &spec, g, err, errlen);
    spec.rowid_lo = 0;
    spec.rowid_hi = st.max_rowid; /* the partial days at either end */
    spec.hi_ms = day_lo;
    if (rc == 0)
        rc = scan_rows(db, &spec, g, err, errlen);
    spec.lo_ms = day_hi;
    spec.hi_ms = hi;
    if (rc == 0)
        rc = scan_rows(db, &spec, g, err, errlen);
    return rc;
}

int report_collect(sqlite3 *db, const report_opts_t *opts,
                   const ledger_shape_t *shape, int64_t lo, int64_t hi,
                   groups_t *g, int64_t *from_rollup, char *err, size_t errlen)
{
    int rc = read_window(db, opts, shape, lo, hi, g, from_rollup, err, errlen);

    if (rc == 0 && shape->has_feedback)
        rc = apply_links(db, opts, lo, hi, feedback_sql, g, apply_feedback);
    if (rc == 0 && shape->has_rework)
        rc = apply_links(db, opts, lo, hi, rework_sql, g, apply_rework);
    if (rc < 0 && err[0] == '\0')
        snprintf(err, errlen, "cannot read the ledger: %s", sqlite3_errmsg(db));
    return rc;
}

/* Time keys are unix ms while grouping; people read ISO times. */
static void name_times(const report_opts_t *opts, report_row_t *rows, size_t n)
{
    for (int i = 0; i < opts->n_by; i++) {
        if (opts->by[i] != REPORT_BY_HOUR && opts->by[i] != REPORT_BY_DAY)
            continue;
        for (size_t r = 0; r < n; r++) {
            char text[40];

            report_format_time(strtoll(rows[r].keys[i], NULL, 10), text,
                               sizeof(text));
            free(rows[r].keys[i]);
            rows[r].keys[i] = strdup(text);
        }
    }
}

/* Opens read-only; fails on a file that is not a ledger of a version
 * this code understands. */
int ledger_open_ro(const char *path, sqlite3 **db, int *out_version, char *err,
                   size_t errlen)
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

/* --compare: each row gets the previous period's row of the same keys,
 * or an empty one. */
static void attach_previous(report_t *report, report_row_t *prev, size_t n_prev)
{
    int n_by = report->opts.n_by;

    for (size_t r = 0; r < report->n_rows; r++) {
        report_row_t *row = &report->rows[r];

        row->previous = calloc(1, sizeof(report_row_t));
        if (row->previous == NULL)
            abort();
        row_settle(row->previous);
        for (size_t p = 0; p < n_prev; p++) {
            /* A row already taken has given up its keys. */
            bool same = prev[p].keys[0] != NULL;

            for (int i = 0; i < n_by && same; i++)
                same = strcmp(row->keys[i], prev[p].keys[i]) == 0;
            if (!same)
                continue;
            *row->previous = prev[p];
            memset(prev[p].keys, 0, sizeof(prev[p].keys));
            break;
        }
    }
}

static int query_previous(sqlite3 *db, const ledger_shape_t *shape,
                          report_t *report, char *err, size_t errlen)
{
    const report_opts_t *opts = &report->opts;
    int64_t hi = opts->since_ms;
    int64_t until = opts->has_until ? opts->until_ms : opts->now_ms;
    int64_t lo = hi - (until - hi);
    report_row_t *rows = NULL;
    size_t n = 0;
    groups_t g;
    int rc;

    groups_init(&g, opts->n_by);
    rc = report_collect(db, opts, shape, lo, hi, &g, &report->rollup_outcomes,
                        err, errlen);
    if (rc == 0) {
        groups_finish(&g, opts, &rows, &n, &report->previous_total);
        name_times(opts, rows, n);
        attach_previous(report, rows, n);
        report->has_previous = true;
        report->previous_since_ms = lo;
        report->previous_until_ms = hi;
    }
    rows_free(rows, n);
    free(rows);
    groups_free(&g);
    return rc;
}

static int query_all(sqlite3 *db, int version, const report_opts_t *opts,
                     report_t *report, char *err, size_t errlen)
{
    ledger_shape_t shape;
    int64_t lo = opts->has_since ? opts->since_ms : INT64_MIN;
    int64_t hi = opts->has_until ? opts->until_ms : INT64_MAX;
    groups_t g;
    int rc;

    ledger_shape_read(db, version, &shape);
    groups_init(&g, opts->n_by);
    rc = report_collect(db, opts, &shape, lo, hi, &g, &report->rollup_outcomes,
                        err, errlen);
    if (rc == 0) {
        groups_finish(&g, opts, &report->rows, &report->n_rows, &report->total);
        name_times(opts, report->rows, report->n_rows);
        if (g.overflow)
            rc = -EOVERFLOW;
    }
    groups_free(&g);
    if (rc == 0 && opts->compare)
        rc = query_previous(db, &shape, report, err, errlen);
    report->used_rollup = report->rollup_outcomes > 0;
    if (rc == -EOVERFLOW)
        snprintf(err, errlen, "sums overflow 64 bits");
    return rc;
}

int report_query(const report_opts_t *opts, report_t *report, char *err,
                 size_t errlen)
{
    sqlite3 *db = NULL;
    int version = 0;
    int rc;

    memset(report, 0, sizeof(*report));
    report->opts = *opts;
    err[0] = '\0';
    if (opts->n_by < 1 || opts->n_by > REPORT_MAX_DIMS) {
        snprintf(err, errlen, "group by 1 to %d columns", REPORT_MAX_DIMS);
        return -EINVAL;
    }
    if (opts->compare && !opts->has_since) {
        snprintf(err, errlen,
                 "--compare needs --since: the previous "
                 "period is the same length before it");
        return -EINVAL;
    }

    rc = ledger_open_ro(opts->ledger_path, &db, &version, err, errlen);
    if (rc == 0) {
        /* One read transaction: every statement sees one snapshot. */
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        rc = query_all(db, version, opts, report, err, errlen);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return rc;
}

void report_free(report_t *report)
{
    rows_free(report->rows, report->n_rows);
    free(report->rows);
    report->rows = NULL;
    report->n_rows = 0;
    leaks_free(report);
}
