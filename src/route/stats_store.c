/*
 * Learned thresholds on disk: the route_stats table in the ledger's
 * SQLite file, on a connection of its own (WAL lets it write while the
 * ledger's writer thread has the file open). These functions block on
 * disk and run on a worker thread; the loop only snapshots and merges.
 */
#include "route/stats.h"

#include "util/arena.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ledger's writer holds the lock for at most one batch. */
#define BUSY_TIMEOUT_MS 5000

static const char table_sql[] = "CREATE TABLE IF NOT EXISTS route_stats ("
                                " task TEXT NOT NULL,"
                                " tier TEXT NOT NULL,"
                                " passes INTEGER NOT NULL,"
                                " fails INTEGER NOT NULL,"
                                " updated_ms INTEGER NOT NULL,"
                                " PRIMARY KEY (task, tier))";

static const char upsert_sql[] =
    "INSERT INTO route_stats (task, tier, passes, fails, updated_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (task, tier) DO UPDATE SET passes = excluded.passes,"
    " fails = excluded.fails, updated_ms = excluded.updated_ms";

static int db_fail(sqlite3 *db, char *err, size_t errlen)
{
    snprintf(err, errlen, "route_stats: %s",
             db ? sqlite3_errmsg(db) : "out of memory");
    return -EIO;
}

static int write_rows(sqlite3 *db, const route_stats_rows_t *rows)
{
    sqlite3_stmt *st;
    int rc = SQLITE_OK;

    if (sqlite3_prepare_v2(db, upsert_sql, -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    for (size_t i = 0; i < rows->n && rc == SQLITE_OK; i++) {
        const route_stats_row_t *r = &rows->rows[i];

        sqlite3_bind_text(st, 1, r->task, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r->tier, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, r->passes);
        sqlite3_bind_int64(st, 4, r->fails);
        sqlite3_bind_int64(st, 5, r->updated_ms);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -EIO;
}

int route_stats_save(const char *path, const route_stats_rows_t *rows,
                     char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite3 *db = NULL;
    int rc = 0;

    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, errlen);
        goto close_db;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (sqlite3_exec(db, table_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, errlen);
        goto close_db;
    }
    if (write_rows(db, rows) < 0 ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(db, err, errlen);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }

close_db:
    sqlite3_close(db);
    return rc;
}

static bool table_exists(sqlite3 *db)
{
    sqlite3_stmt *st;
    bool found;

    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                           " AND name = 'route_stats'",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static void read_row(sqlite3_stmt *st, route_stats_row_t *r)
{
    const unsigned char *task = sqlite3_column_text(st, 0);
    const unsigned char *tier = sqlite3_column_text(st, 1);

    snprintf(r->task, sizeof(r->task), "%s", task ? (const char *)task : "");
    snprintf(r->tier, sizeof(r->tier), "%s", tier ? (const char *)tier : "");
    r->passes = sqlite3_column_int64(st, 2);
    r->fails = sqlite3_column_int64(st, 3);
    r->updated_ms = sqlite3_column_int64(st, 4);
}

static int read_rows(sqlite3 *db, route_stats_rows_t *out)
{
    sqlite3_stmt *st;
    size_t cap = 64;
    int rc;

    if (sqlite3_prepare_v2(db,
                           "SELECT task, tier, passes, fails, updated_ms"
                           " FROM route_stats ORDER BY task, tier",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    out->rows = malloc(cap * sizeof(route_stats_row_t));
    if (out->rows == NULL)
        die_oom();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap *= 2;
            out->rows = realloc(out->rows, cap * sizeof(route_stats_row_t));
            if (out->rows == NULL)
                die_oom();
        }
        read_row(st, &out->rows[out->n++]);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int route_stats_load(const char *path, route_stats_rows_t *out, char *err,
                     size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = 0;

    out->rows = NULL;
    out->n = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        /* No file yet: nothing learned yet. */
        if (sqlite3_errcode(db) != SQLITE_CANTOPEN)
            rc = db_fail(db, err, errlen);
        goto close_db;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (table_exists(db) && read_rows(db, out) < 0) {
        rc = db_fail(db, err, errlen);
        route_stats_rows_free(out);
    }

close_db:
    sqlite3_close(db);
    return rc;
}

typedef struct flush_job {
    route_stats_t *stats;
    route_stats_rows_t rows;
    int rc;
    char err[256];
    char path[]; /* copied */
} flush_job_t;

static void flush_run(void *arg)
{
    flush_job_t *job = arg;

    job->rc =
        route_stats_save(job->path, &job->rows, job->err, sizeof(job->err));
}

static void flush_done(void *arg)
{
    flush_job_t *job = arg;

    /* Logged here, on the loop, where logging is ordered. */
    if (job->rc < 0) {
        log_warn("route stats not saved, kept for the next flush: %s",
                 job->err);
        route_stats_mark_dirty(job->stats, &job->rows);
    }
    route_stats_rows_free(&job->rows);
    free(job);
}

void route_stats_flush(route_stats_t *stats, struct worker *w, const char *path)
{
    flush_job_t *job = malloc(sizeof(*job) + strlen(path) + 1);

    if (job == NULL)
        die_oom();
    job->stats = stats;
    job->rc = 0;
    strcpy(job->path, path);
    route_stats_snapshot(stats, true, &job->rows);
    if (job->rows.n == 0) {
        flush_done(job);
        return;
    }
    worker_submit(w, flush_run, flush_done, job);
}
