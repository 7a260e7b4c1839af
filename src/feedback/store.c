/*
 * The feedback and rework tables of the ledger file. The ledger's writer
 * owns `outcomes` and `attempts`; these two tables belong to this module,
 * which creates them when missing (so the ledger's schema version does
 * not change) and writes them from the gateway's worker thread with its
 * own connection. docs/report.md has the columns.
 */
#include "feedback/feedback.h"
#include "feedback/store.h"

#include "util/log.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

/* The ledger writer commits every few ms; a short wait rides it out. */
#define STORE_BUSY_MS 2000

static const char tables_sql[] =
    "CREATE TABLE IF NOT EXISTS feedback ("
    " outcome_id TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " key_id TEXT NOT NULL,"
    " useful INTEGER NOT NULL,"
    " score REAL,"
    " note TEXT NOT NULL,"
    " source TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS feedback_outcome ON feedback(outcome_id);"
    "CREATE TABLE IF NOT EXISTS rework ("
    " outcome_id TEXT PRIMARY KEY,"
    " earlier_id TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " rework_key TEXT NOT NULL);";

static const char owner_sql[] = "SELECT key_id FROM outcomes WHERE id = ?1";

static const char put_feedback_sql[] =
    "INSERT INTO feedback (outcome_id, at_ms, key_id, useful, score, note,"
    " source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

static const char put_rework_sql[] =
    "INSERT OR IGNORE INTO rework (outcome_id, earlier_id, at_ms,"
    " rework_key) VALUES (?1, ?2, ?3, ?4)";

int feedback_ensure_tables(sqlite3 *db, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, tables_sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

sqlite3 *store_open(const char *path)
{
    sqlite3 *db = NULL;
    char err[256];
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        log_error("feedback: cannot open %s: %s", path,
                  db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    if (feedback_ensure_tables(db, err, sizeof(err)) < 0) {
        log_error("feedback: cannot create tables in %s: %s", path, err);
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* The outcome's key_id into owner; 1 found, 0 not found, -EIO. */
static int find_owner(sqlite3 *db, const char *id, char *owner, size_t len)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(db, owner_sql, -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(owner, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static const char *const source_names[] = {"api", "header"};

static int put_feedback(sqlite3 *db, const feedback_t *fb, const char *key_id,
                        feedback_source_t source, int64_t at_ms)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(db, put_feedback_sql, -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, fb->outcome_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, at_ms);
    sqlite3_bind_text(st, 3, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, fb->useful);
    if (fb->has_score)
        sqlite3_bind_double(st, 5, fb->score);
    sqlite3_bind_text(st, 6, fb->note, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, source_names[source == FEEDBACK_FROM_HEADER], -1,
                      SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

feedback_result_t feedback_store(sqlite3 *db, const feedback_t *fb,
                                 const char *owner, feedback_source_t source,
                                 int64_t at_ms)
{
    char key_id[64] = "";
    int found = find_owner(db, fb->outcome_id, key_id, sizeof(key_id));

    if (found < 0)
        return FEEDBACK_STORE_FAILED;
    if (found == 0)
        return FEEDBACK_NO_OUTCOME;
    if (owner != NULL && strcmp(owner, key_id) != 0)
        return FEEDBACK_NOT_OWNER;
    if (put_feedback(db, fb, owner ? owner : "admin", source, at_ms) < 0)
        return FEEDBACK_STORE_FAILED;
    return FEEDBACK_STORED;
}

int store_put_rework(sqlite3 *db, const char *outcome_id,
                     const char *earlier_id, int64_t at_ms, const char *key)
{
    sqlite3_stmt *st;
    int rc;

    if (sqlite3_prepare_v2(db, put_rework_sql, -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(st, 1, outcome_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, earlier_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, at_ms);
    sqlite3_bind_text(st, 4, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* One connection for the worker thread, which runs jobs one at a time. */
static struct {
    sqlite3 *db;
    char path[4096];
} worker_store;

sqlite3 *store_worker_db(const char *path)
{
    if (worker_store.db != NULL && strcmp(worker_store.path, path) == 0)
        return worker_store.db;
    sqlite3_close(worker_store.db);
    worker_store.db = store_open(path);
    snprintf(worker_store.path, sizeof(worker_store.path), "%s", path);
    return worker_store.db;
}
