/*
 * The daily rollup: per UTC day, task, model, team, key and owner, the
 * sums a report needs and histograms of latency, time to first byte and
 * input tokens. It lives in the ledger file (report_rollup and
 * report_rollup_state, made here), and remembers the last outcome rowid
 * it took: rows are only ever appended, so "rowid <= max_rowid" is
 * exactly what it holds, whatever order the started_ms times arrive in.
 * A report reads whole days from it and scans the rest, which keeps a
 * report over 1,000,000 outcomes under a second.
 */
#include "report/internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Outcomes per transaction: the gateway's writer waits at most this
 * long for the file (about 50 ms). */
#define CHUNK_ROWS 20000
#define BUSY_MS 5000

static const char tables_sql[] =
    "CREATE TABLE IF NOT EXISTS report_rollup ("
    " day_ms INTEGER NOT NULL, task TEXT NOT NULL, model TEXT NOT NULL,"
    " team TEXT NOT NULL, key_id TEXT NOT NULL, owner TEXT NOT NULL,"
    " outcomes INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    " reasoning_tokens INTEGER NOT NULL, spend_pico INTEGER NOT NULL,"
    " priced INTEGER NOT NULL, unpriced INTEGER NOT NULL,"
    " unpriced_tokens INTEGER NOT NULL, estimated INTEGER NOT NULL,"
    " estimate_pico INTEGER NOT NULL, checks_passed INTEGER NOT NULL,"
    " useful_known INTEGER NOT NULL, not_useful_spend_pico INTEGER NOT NULL,"
    " extra_attempts INTEGER NOT NULL, retry_spend_pico INTEGER NOT NULL,"
    " retry_spend_not_useful_pico INTEGER NOT NULL,"
    " trimmed_tokens INTEGER NOT NULL, trim_saved_pico INTEGER NOT NULL,"
    " cache_hits INTEGER NOT NULL, latency_hist BLOB, ttfb_hist BLOB,"
    " input_hist BLOB,"
    " PRIMARY KEY (day_ms, task, model, team, key_id, owner));"
    "CREATE TABLE IF NOT EXISTS report_rollup_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), max_rowid INTEGER NOT NULL);";

#define AT(field) offsetof(report_row_t, field)

/* The summed columns, in table order, and where each goes in a row. */
static const struct {
    const char *name;
    size_t offset;
} sums[] = {
    {"outcomes", AT(outcomes)},
    {"attempts", AT(attempts)},
    {"errors", AT(errors)},
    {"input_tokens", AT(input_tokens)},
    {"cached_tokens", AT(cached_tokens)},
    {"output_tokens", AT(output_tokens)},
    {"reasoning_tokens", AT(reasoning_tokens)},
    {"spend_pico", AT(spend)},
    {"priced", AT(priced)},
    {"unpriced", AT(unpriced)},
    {"unpriced_tokens", AT(unpriced_tokens)},
    {"estimated", AT(estimated)},
    {"estimate_pico", AT(estimate)},
    {"checks_passed", AT(checks_passed)},
    {"useful_known", AT(useful_known)},
    {"not_useful_spend_pico", AT(not_useful_spend)},
    {"extra_attempts", AT(extra_attempts)},
    {"retry_spend_pico", AT(retry_spend)},
    {"retry_spend_not_useful_pico", AT(retry_spend_not_useful)},
    {"trimmed_tokens", AT(trimmed_tokens)},
    {"trim_saved_pico", AT(trim_saved)},
    {"cache_hits", AT(cache_hits)},
};

#define N_SUMS (sizeof(sums) / sizeof(sums[0]))

static int64_t *field(report_row_t *row, size_t i)
{
    return (int64_t *)((char *)row + sums[i].offset);
}

static size_t sum_list(char *out, size_t len, const char *prefix)
{
    size_t n = 0;

    for (size_t i = 0; i < N_SUMS; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s%s", i ? ", " : "", prefix,
                              sums[i].name);
    return n;
}

void rollup_read_state(sqlite3 *db, rollup_state_t *st)
{
    sqlite3_stmt *stmt;

    memset(st, 0, sizeof(*st));
    if (!table_exists(db, "report_rollup_state") ||
        sqlite3_prepare_v2(db,
                           "SELECT max_rowid FROM report_rollup_state"
                           " WHERE id = 1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        st->present = true;
        st->max_rowid = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
}

static void add_rollup_row(groups_t *g, sqlite3_stmt *st, bool trim, bool cache)
{
    const char *keys[REPORT_MAX_DIMS];
    size_t lens[REPORT_MAX_DIMS];
    group_t *x;
    int n = g->n_by;
    hist_t *hists[3];

    for (int i = 0; i < n; i++) {
        const unsigned char *text = sqlite3_column_text(st, i);

        keys[i] = text ? (const char *)text : "";
        lens[i] = (size_t)sqlite3_column_bytes(st, i);
    }
    x = groups_find(g, keys, lens);
    for (size_t i = 0; i < N_SUMS; i++)
        add_to(field(&x->row, i), sqlite3_column_int64(st, n + (int)i),
               &g->overflow);
    x->row.useful += sqlite3_column_int64(st, n + 13); /* checks_passed */
    x->row.has_trim = trim;
    x->row.has_cache_hits = cache;

    hists[0] = &x->h_latency;
    hists[1] = &x->h_ttfb;
    hists[2] = &x->h_input;
    for (int h = 0; h < 3; h++)
        hist_decode_add(hists[h], sqlite3_column_blob(st, n + N_SUMS + h),
                        sqlite3_column_bytes(st, n + N_SUMS + h));
}

int64_t rollup_read(sqlite3 *db, const report_opts_t *opts, int64_t lo_ms,
                    int64_t hi_ms, groups_t *g)
{
    char sql[2048];
    sqlite3_stmt *stmt;
    size_t n = (size_t)snprintf(sql, sizeof(sql), "SELECT ");
    int64_t outcomes = 0;
    bool trim = column_exists(db, "outcomes", "trim_saved_pico");
    bool cache = column_exists(db, "outcomes", "cache_hit");
    int rc;

    for (int i = 0; i < opts->n_by; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s, ",
                              dim_sql(opts->by[i], true));
    n += sum_list(sql + n, sizeof(sql) - n, "o.");
    snprintf(sql + n, sizeof(sql) - n,
             ", o.latency_hist, o.ttfb_hist, o.input_hist FROM report_rollup"
             " o WHERE o.day_ms >= ?1 AND o.day_ms < ?2");
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(stmt, 1, lo_ms);
    sqlite3_bind_int64(stmt, 2, hi_ms);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        add_rollup_row(g, stmt, trim, cache);
        outcomes += sqlite3_column_int64(stmt, opts->n_by);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? outcomes : -EIO;
}

/* ---- keeping it up to date ---- */

static const report_dim_t rollup_dims[] = {REPORT_BY_DAY,   REPORT_BY_TASK,
                                           REPORT_BY_MODEL, REPORT_BY_TEAM,
                                           REPORT_BY_KEY,   REPORT_BY_OWNER};

static int64_t query_int64(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    int64_t value = 0;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(stmt) == SQLITE_ROW)
        value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

/* Adds the stored row of x's keys, if any, into x. */
static int merge_stored(sqlite3 *db, group_t *x)
{
    report_opts_t opts = {.n_by = 6};
    groups_t one;
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql),
                                "SELECT o.day_ms, o.task, o.model, o.team,"
                                " o.key_id, o.owner, ");
    sqlite3_stmt *stmt;
    int rc;

    memcpy(opts.by, rollup_dims, sizeof(rollup_dims));
    n += sum_list(sql + n, sizeof(sql) - n, "o.");
    snprintf(sql + n, sizeof(sql) - n,
             ", o.latency_hist, o.ttfb_hist, o.input_hist FROM report_rollup"
             " o WHERE day_ms = ?1 AND task = ?2 AND model = ?3 AND team = ?4"
             " AND key_id = ?5 AND owner = ?6");
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_int64(stmt, 1, strtoll(x->row.keys[0], NULL, 10));
    for (int i = 1; i < 6; i++)
        sqlite3_bind_text(stmt, i + 1, x->row.keys[i], -1, SQLITE_STATIC);

    groups_init(&one, 6);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        add_rollup_row(&one, stmt, false, false);
        for (size_t i = 0; i < N_SUMS; i++)
            add_to(field(&x->row, i), *field(&one.items[0].row, i),
                   &one.overflow);
        hist_merge(&x->h_latency, &one.items[0].h_latency);
        hist_merge(&x->h_ttfb, &one.items[0].h_ttfb);
        hist_merge(&x->h_input, &one.items[0].h_input);
    }
    sqlite3_finalize(stmt);
    groups_free(&one);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static void bind_hist(sqlite3_stmt *stmt, int idx, hist_t *h,
                      const samples_t *s)
{
    unsigned char *blob;
    int len;

    for (size_t i = 0; i < s->n; i++)
        hist_add(h, s->v[i], 1);
    blob = hist_encode(h, &len);
    sqlite3_bind_blob(stmt, idx, blob, len, free);
}

static int store_group(sqlite3 *db, group_t *x)
{
    char sql[2048];
    size_t n = (size_t)snprintf(sql, sizeof(sql),
                                "INSERT OR REPLACE INTO report_rollup (day_ms,"
                                " task, model, team, key_id, owner, ");
    sqlite3_stmt *stmt;
    int rc;

    n += sum_list(sql + n, sizeof(sql) - n, "");
    n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                          ", latency_hist, ttfb_hist, input_hist) VALUES (");
    for (size_t i = 0; i < 6 + N_SUMS + 3; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s?", i ? "," : "");
    snprintf(sql + n, sizeof(sql) - n, ")");
    if (merge_stored(db, x) < 0 ||
        sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        return -EIO;

    sqlite3_bind_int64(stmt, 1, strtoll(x->row.keys[0], NULL, 10));
    for (int i = 1; i < 6; i++)
        sqlite3_bind_text(stmt, i + 1, x->row.keys[i], -1, SQLITE_STATIC);
    for (size_t i = 0; i < N_SUMS; i++)
        sqlite3_bind_int64(stmt, 7 + (int)i, *field(&x->row, i));
    bind_hist(stmt, 7 + N_SUMS, &x->h_latency, &x->latency);
    bind_hist(stmt, 8 + N_SUMS, &x->h_ttfb, &x->ttfb);
    bind_hist(stmt, 9 + N_SUMS, &x->h_input, &x->input);
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Takes rows (from, to] into the rollup. */
static int roll_chunk(sqlite3 *db, const ledger_shape_t *shape, int64_t from,
                      int64_t to, char *err, size_t errlen)
{
    report_opts_t opts = {.n_by = 6};
    scan_spec_t spec = {&opts, shape, INT64_MIN, INT64_MAX, from, to};
    groups_t g;
    char sql[128];
    int rc;

    memcpy(opts.by, rollup_dims, sizeof(rollup_dims));
    groups_init(&g, 6);
    rc = scan_rows(db, &spec, &g, err, errlen);
    for (size_t i = 0; rc == 0 && i < g.n; i++)
        rc = store_group(db, &g.items[i]);
    groups_free(&g);
    if (rc < 0)
        return rc;
    snprintf(sql, sizeof(sql),
             "INSERT OR REPLACE INTO report_rollup_state VALUES (1, %lld)",
             (long long)to);
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* One transaction: up to CHUNK_ROWS rows. Returns rows taken or < 0. */
static int64_t roll_once(sqlite3 *db, int version, char *err, size_t errlen)
{
    ledger_shape_t shape;
    int64_t from, last, to;
    int rc;

    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return -EBUSY;
    ledger_shape_read(db, version, &shape);
    from = query_int64(db, "SELECT ifnull(max(max_rowid), 0) FROM"
                           " report_rollup_state");
    last = query_int64(db, "SELECT ifnull(max(rowid), 0) FROM outcomes");
    to = last - from > CHUNK_ROWS ? from + CHUNK_ROWS : last;
    rc = from < 0 || last < 0 ? -EIO : 0;
    if (rc == 0 && to > from)
        rc = roll_chunk(db, &shape, from, to, err, errlen);
    if (rc < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return to > from ? to - from : 0;
}

int64_t report_rollup_refresh(const char *ledger_path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int64_t total = 0, n;
    int version = 0;

    err[0] = '\0';
    if (ledger_open_ro(ledger_path, &db, &version, err, errlen) < 0) {
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_close(db);
    db = NULL;
    if (sqlite3_open_v2(ledger_path, &db, SQLITE_OPEN_READWRITE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, tables_sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot write the rollup into %s: %s",
                 ledger_path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_busy_timeout(db, BUSY_MS);
    while ((n = roll_once(db, version, err, errlen)) > 0)
        total += n;
    if (n < 0 && err[0] == '\0')
        snprintf(err, errlen, "rollup of %s: %s", ledger_path,
                 sqlite3_errmsg(db));
    sqlite3_close(db);
    return n < 0 ? n : total;
}

int64_t report_rollup_maybe(const char *ledger_path, int64_t min_new)
{
    sqlite3 *db = NULL;
    rollup_state_t st;
    int64_t last;
    int version;
    char err[256];

    if (ledger_open_ro(ledger_path, &db, &version, err, sizeof(err)) < 0) {
        sqlite3_close(db);
        return -EIO;
    }
    rollup_read_state(db, &st);
    last = query_int64(db, "SELECT ifnull(max(rowid), 0) FROM outcomes");
    sqlite3_close(db);
    if (last - st.max_rowid < min_new)
        return 0;
    return report_rollup_refresh(ledger_path, err, sizeof(err));
}
