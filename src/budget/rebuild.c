/*
 * Budgets and rate windows after a restart, rebuilt from the ledger file
 * the writer thread keeps. Runs once at start, before the loop serves
 * calls, on its own read-only SQLite connection (WAL lets it read while
 * the ledger's writer is open).
 */
#include "budget/budget.h"
#include "budget/ratelimit.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>

/* Attempts reach back at most this far before their outcome's start, so
 * the outcome index can narrow the scan (a call never runs for a day). */
#define OUTCOME_SLACK_MS INT64_C(86400000)

/* What each attempt was charged to its budgets when it settled (its
 * hold, when its cost was unknown), else its cost or estimate: the
 * rebuilt books equal the ones the gateway kept. */
static const char budget_sql[] =
    "SELECT o.key_id, o.team, o.task, a.started_ms,"
    " COALESCE(a.budget_pico, a.cost_pico, a.cost_estimate_pico)"
    " FROM outcomes o JOIN attempts a ON a.outcome_id = o.id"
    " WHERE o.started_ms >= ?1 AND a.started_ms >= ?2"
    " AND COALESCE(a.budget_pico, a.cost_pico, a.cost_estimate_pico)"
    " IS NOT NULL";

/* A ledger written before budget_pico existed. */
static const char budget_nocharge_sql[] =
    "SELECT o.key_id, o.team, o.task, a.started_ms,"
    " COALESCE(a.cost_pico, a.cost_estimate_pico)"
    " FROM outcomes o JOIN attempts a ON a.outcome_id = o.id"
    " WHERE o.started_ms >= ?1 AND a.started_ms >= ?2"
    " AND COALESCE(a.cost_pico, a.cost_estimate_pico) IS NOT NULL";

/* A version 1 ledger has no estimate column. */
static const char budget_v1_sql[] =
    "SELECT o.key_id, o.team, o.task, a.started_ms, a.cost_pico"
    " FROM outcomes o JOIN attempts a ON a.outcome_id = o.id"
    " WHERE o.started_ms >= ?1 AND a.started_ms >= ?2"
    " AND a.cost_pico IS NOT NULL";

static const char ratelimit_sql[] =
    "SELECT key_id, team, task, started_ms, input_tokens + output_tokens"
    " FROM outcomes WHERE started_ms > ?1 AND started_ms <= ?2"
    " AND n_attempts > 0";

static int open_ledger(const char *path, sqlite3 **db, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        sqlite3_close(*db);
        *db = NULL;
        return -EIO;
    }
    sqlite3_busy_timeout(*db, 5000);
    return 0;
}

static bool has_ledger_tables(sqlite3 *db)
{
    sqlite3_stmt *st;
    int n = 0;

    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_master WHERE"
                           " type = 'table' AND name IN ('outcomes',"
                           " 'attempts')",
                           -1, &st, NULL) != SQLITE_OK)
        return false;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n == 2;
}

static const char *text_at(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);

    return s != NULL ? s : "";
}

static void who_of(sqlite3_stmt *st, budget_who_t *who)
{
    who->key = text_at(st, 0);
    who->team = text_at(st, 1);
    who->task = text_at(st, 2);
}

static int64_t minus_slack(int64_t ms)
{
    return ms < BUDGET_TIME_MIN + OUTCOME_SLACK_MS ? BUDGET_TIME_MIN
                                                   : ms - OUTCOME_SLACK_MS;
}

static int scan_budget(sqlite3 *db, budget_book_t *book, int64_t now_ms,
                       char *err, size_t errlen)
{
    int64_t from = budget_earliest_start(book, now_ms);
    budget_who_t who;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, budget_sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        rc = sqlite3_prepare_v2(db, budget_nocharge_sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        rc = sqlite3_prepare_v2(db, budget_v1_sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, minus_slack(from));
    sqlite3_bind_int64(st, 2, from);

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        who_of(st, &who);
        budget_record(book, &who, sqlite3_column_int64(st, 3),
                      sqlite3_column_int64(st, 4), now_ms);
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int budget_rebuild(budget_book_t *book, const char *ledger_path, int64_t now_ms,
                   char *err, size_t errlen)
{
    sqlite3 *db;
    int rc = open_ledger(ledger_path, &db, err, errlen);

    if (rc < 0)
        return rc;
    if (has_ledger_tables(db))
        rc = scan_budget(db, book, now_ms, err, errlen);
    sqlite3_close(db);
    return rc;
}

static int scan_windows(sqlite3 *db, ratelimit_t *rl, int64_t now_ms, char *err,
                        size_t errlen)
{
    budget_who_t who;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, ratelimit_sql, -1, &st, NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, now_ms - RATELIMIT_WINDOW_S * 1000);
    sqlite3_bind_int64(st, 2, now_ms);

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        who_of(st, &who);
        ratelimit_record(rl, &who, sqlite3_column_int64(st, 3),
                         sqlite3_column_int64(st, 4), now_ms);
    }
    if (rc != SQLITE_DONE)
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int ratelimit_rebuild(ratelimit_t *rl, const char *ledger_path, int64_t now_ms,
                      char *err, size_t errlen)
{
    sqlite3 *db;
    int rc = open_ledger(ledger_path, &db, err, errlen);

    if (rc < 0)
        return rc;
    if (has_ledger_tables(db))
        rc = scan_windows(db, rl, now_ms, err, errlen);
    sqlite3_close(db);
    return rc;
}
