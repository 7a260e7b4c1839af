/*
 * The ledger's SQLite back end: a ring of record pointers that the event
 * loop appends finished outcomes to, and one writer thread that commits
 * them in batches and frees them. docs/ledger.md states the schema and what a
 * crash can lose.
 *
 * Slots: `capacity` ring entries are shared by three kinds of record,
 * admitted (a call in flight holds a slot but has not written it yet),
 * queued (copied into the ring, waiting) and writing (in the batch being
 * committed). Their sum never exceeds the capacity, so the ring never
 * overwrites a record the writer has not committed: the queued records
 * sit right behind the batch, at head + writing, and an append always
 * lands behind the last queued one. The writer reads its batch without
 * the mutex, because nobody writes into slots that are in the batch.
 */
#include "ledger/ledger.h"

#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A writer that falls behind takes bigger batches, and a bigger batch
 * costs less per record (index pages are shared by more inserts); the cap
 * keeps one transaction to a fraction of a second. */
#define BATCH_MAX 4096
/* Group commit: the writer gathers records for up to GROUP_WAIT_MS, or
 * until GROUP_MIN are queued, before it commits. Waking it per record
 * cost more than the proxying itself when both share one core. */
#define GROUP_WAIT_MS 10
#define GROUP_MIN 256
/* Another writer (an operator's sqlite3 shell) makes a batch fail after
 * this long; the writer then retries with its own backoff. */
#define BUSY_TIMEOUT_MS 250
#define RETRY_FIRST_MS 10
#define RETRY_MAX_MS 1000

struct ledger {
    sqlite3 *db;
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    sqlite3_stmt *put_outcome;
    sqlite3_stmt *put_attempt;

    pthread_t writer;
    bool writer_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* to the writer: records queued, or closing */
    pthread_cond_t progress; /* to flushers: a batch is done */

    ledger_outcome_t **ring; /* `capacity` slots; records owned here */
    size_t capacity;
    size_t head;     /* ring index of the oldest uncommitted record */
    size_t writing;  /* records in the batch being committed */
    size_t queued;   /* records behind the batch */
    size_t admitted; /* slots held by calls in flight */
    uint64_t appended;
    uint64_t done; /* records the writer has finished with */
    uint64_t written;
    uint64_t failed;
    bool closing;
    unsigned flushers; /* ledger_flush() callers waiting */
    char error[256];   /* the writer's last SQLite error */
};

/* Version 2 added these; a version 1 file gets them by ALTER TABLE, with
 * the defaults a version 1 row means (no such tokens, nothing estimated). */
#define V2_OUTCOME_COLUMNS                                                     \
    "ALTER TABLE outcomes ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL"   \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE outcomes ADD COLUMN web_searches INTEGER NOT NULL"            \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE outcomes ADD COLUMN usage_estimated INTEGER NOT NULL"         \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE outcomes ADD COLUMN cost_estimate_pico INTEGER;"              \
    "ALTER TABLE outcomes ADD COLUMN policy TEXT NOT NULL DEFAULT '';"         \
    "ALTER TABLE outcomes ADD COLUMN input_tokens_before_trim INTEGER NOT"     \
    " NULL DEFAULT 0;"                                                         \
    "ALTER TABLE outcomes ADD COLUMN input_tokens_after_trim INTEGER NOT"      \
    " NULL DEFAULT 0;"                                                         \
    "ALTER TABLE outcomes ADD COLUMN trim_saved_pico INTEGER NOT NULL"         \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE outcomes ADD COLUMN trim_flagged INTEGER NOT NULL"            \
    " DEFAULT 0;"
#define V2_ATTEMPT_COLUMNS                                                     \
    "ALTER TABLE attempts ADD COLUMN cache_write_1h_tokens INTEGER NOT NULL"   \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE attempts ADD COLUMN web_searches INTEGER NOT NULL"            \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE attempts ADD COLUMN service_tier TEXT NOT NULL"               \
    " DEFAULT 'standard';"                                                     \
    "ALTER TABLE attempts ADD COLUMN geo TEXT NOT NULL DEFAULT '';"            \
    "ALTER TABLE attempts ADD COLUMN usage_estimated INTEGER NOT NULL"         \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE attempts ADD COLUMN cost_estimate_pico INTEGER;"              \
    "ALTER TABLE attempts ADD COLUMN cost_flags INTEGER NOT NULL"              \
    " DEFAULT 0;"                                                              \
    "ALTER TABLE attempts ADD COLUMN checks TEXT NOT NULL DEFAULT '';"         \
    "ALTER TABLE attempts ADD COLUMN budget_pico INTEGER;"

static const char migrate_v2_sql[] = V2_OUTCOME_COLUMNS V2_ATTEMPT_COLUMNS;

static const char schema_sql[] =
    "CREATE TABLE outcomes ("
    " id TEXT PRIMARY KEY,"
    " started_ms INTEGER NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " key_id TEXT NOT NULL,"
    " team TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " task TEXT NOT NULL,"
    " requested_model TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " http_status INTEGER NOT NULL,"
    " error_type TEXT NOT NULL,"
    " streamed INTEGER NOT NULL,"
    " useful INTEGER NOT NULL,"
    " input_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL,"
    " cache_write_tokens INTEGER NOT NULL,"
    " output_tokens INTEGER NOT NULL,"
    " reasoning_tokens INTEGER NOT NULL,"
    " cost_status TEXT NOT NULL,"
    " cost_pico INTEGER,"
    " latency_ms INTEGER NOT NULL,"
    " ttfb_ms INTEGER NOT NULL,"
    " n_attempts INTEGER NOT NULL);" V2_OUTCOME_COLUMNS
    "CREATE INDEX outcomes_started_ms ON outcomes(started_ms);"
    "CREATE TABLE attempts ("
    " outcome_id TEXT NOT NULL,"
    " attempt_no INTEGER NOT NULL,"
    " reason TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " upstream_model TEXT NOT NULL,"
    " provider TEXT NOT NULL,"
    " http_status INTEGER NOT NULL,"
    " error_type TEXT NOT NULL,"
    " input_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL,"
    " cache_write_tokens INTEGER NOT NULL,"
    " audio_in_tokens INTEGER NOT NULL,"
    " output_tokens INTEGER NOT NULL,"
    " reasoning_tokens INTEGER NOT NULL,"
    " audio_out_tokens INTEGER NOT NULL,"
    " cost_status TEXT NOT NULL,"
    " cost_pico INTEGER,"
    " price_source TEXT NOT NULL,"
    " started_ms INTEGER NOT NULL,"
    " latency_ms INTEGER NOT NULL,"
    " ttfb_ms INTEGER NOT NULL,"
    " PRIMARY KEY (outcome_id, attempt_no));" V2_ATTEMPT_COLUMNS;

static const char put_outcome_sql[] =
    "INSERT INTO outcomes (id, started_ms, endpoint, key_id, team, owner,"
    " task, requested_model, model, http_status, error_type, streamed,"
    " useful, input_tokens, cached_tokens, cache_write_tokens,"
    " output_tokens, reasoning_tokens, cost_status, cost_pico, latency_ms,"
    " ttfb_ms, n_attempts, cache_write_1h_tokens, web_searches,"
    " usage_estimated, cost_estimate_pico, policy,"
    " input_tokens_before_trim, input_tokens_after_trim, trim_saved_pico,"
    " trim_flagged) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
    " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24,"
    " ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32)";

static const char put_attempt_sql[] =
    "INSERT INTO attempts (outcome_id, attempt_no, reason, model,"
    " upstream_model, provider, http_status, error_type, input_tokens,"
    " cached_tokens, cache_write_tokens, audio_in_tokens, output_tokens,"
    " reasoning_tokens, audio_out_tokens, cost_status, cost_pico,"
    " price_source, started_ms, latency_ms, ttfb_ms,"
    " cache_write_1h_tokens, web_searches, service_tier, geo,"
    " usage_estimated, cost_estimate_pico, cost_flags, checks,"
    " budget_pico) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
    " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24,"
    " ?25, ?26, ?27, ?28, ?29, ?30)";

/* The record's fixed-size strings may fill their array without a NUL. */
#define BIND_TEXT(stmt, idx, field)                                            \
    sqlite3_bind_text((stmt), (idx), (field),                                  \
                      (int)strnlen((field), sizeof(field)), SQLITE_STATIC)

static int step_reset(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);

    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void bind_cost(sqlite3_stmt *stmt, int idx, cost_status_t status,
                      pico_t cost)
{
    if (status == COST_PRICED)
        sqlite3_bind_int64(stmt, idx, cost);
    else
        sqlite3_bind_null(stmt, idx);
}

/* The estimate is kept apart from cost_pico, which only ever holds what
 * the provider's own usage priced. */
static void bind_estimate(sqlite3_stmt *stmt, int idx, cost_status_t status,
                          pico_t estimate)
{
    if (status == COST_ESTIMATED)
        sqlite3_bind_int64(stmt, idx, estimate);
    else
        sqlite3_bind_null(stmt, idx);
}

static int put_attempt(ledger_t *ledger, const ledger_outcome_t *outcome,
                       const ledger_attempt_t *attempt)
{
    sqlite3_stmt *st = ledger->put_attempt;
    const usage_t *usage = &attempt->usage;

    BIND_TEXT(st, 1, outcome->id);
    sqlite3_bind_int(st, 2, attempt->attempt_no);
    BIND_TEXT(st, 3, attempt->reason);
    BIND_TEXT(st, 4, attempt->model);
    BIND_TEXT(st, 5, attempt->upstream_model);
    BIND_TEXT(st, 6, attempt->provider);
    sqlite3_bind_int(st, 7, attempt->http_status);
    BIND_TEXT(st, 8, attempt->error_type);

    sqlite3_bind_int64(st, 9, usage->input_tokens);
    sqlite3_bind_int64(st, 10, usage->cached_tokens);
    sqlite3_bind_int64(st, 11, usage->cache_write_tokens);
    sqlite3_bind_int64(st, 12, usage->audio_in_tokens);
    sqlite3_bind_int64(st, 13, usage->output_tokens);
    sqlite3_bind_int64(st, 14, usage->reasoning_tokens);
    sqlite3_bind_int64(st, 15, usage->audio_out_tokens);

    sqlite3_bind_text(st, 16, cost_status_name(attempt->cost_status), -1,
                      SQLITE_STATIC);
    bind_cost(st, 17, attempt->cost_status, attempt->cost);
    BIND_TEXT(st, 18, attempt->price_source);
    sqlite3_bind_int64(st, 19, attempt->started_ms);
    sqlite3_bind_int64(st, 20, attempt->latency_ms);
    sqlite3_bind_int64(st, 21, attempt->ttfb_ms);
    sqlite3_bind_int64(st, 22, usage->cache_write_1h_tokens);
    sqlite3_bind_int64(st, 23, usage->web_searches);
    sqlite3_bind_text(st, 24, service_tier_name(usage->service_tier), -1,
                      SQLITE_STATIC);
    BIND_TEXT(st, 25, usage->geo);
    sqlite3_bind_int(st, 26, usage->estimated);
    bind_estimate(st, 27, attempt->cost_status, attempt->cost_estimate);
    sqlite3_bind_int(st, 28, (int)attempt->cost_flags);
    BIND_TEXT(st, 29, attempt->checks);
    if (attempt->budget_charged)
        sqlite3_bind_int64(st, 30, attempt->budget_charge);
    else
        sqlite3_bind_null(st, 30);
    return step_reset(st);
}

static int attempts_stored(const ledger_outcome_t *outcome)
{
    if (outcome->n_attempts < 0)
        return 0;
    if (outcome->n_attempts > LEDGER_MAX_ATTEMPTS)
        return LEDGER_MAX_ATTEMPTS;
    return outcome->n_attempts;
}

static int put_outcome(ledger_t *ledger, const ledger_outcome_t *outcome)
{
    sqlite3_stmt *st = ledger->put_outcome;
    const usage_t *usage = &outcome->usage;
    int rc;

    BIND_TEXT(st, 1, outcome->id);
    sqlite3_bind_int64(st, 2, outcome->started_ms);
    BIND_TEXT(st, 3, outcome->endpoint);
    BIND_TEXT(st, 4, outcome->key_id);
    BIND_TEXT(st, 5, outcome->team);
    BIND_TEXT(st, 6, outcome->owner);
    BIND_TEXT(st, 7, outcome->task);
    BIND_TEXT(st, 8, outcome->requested_model);
    BIND_TEXT(st, 9, outcome->model);
    sqlite3_bind_int(st, 10, outcome->http_status);
    BIND_TEXT(st, 11, outcome->error_type);
    sqlite3_bind_int(st, 12, outcome->streamed);
    sqlite3_bind_int(st, 13, outcome->useful);

    sqlite3_bind_int64(st, 14, usage->input_tokens);
    sqlite3_bind_int64(st, 15, usage->cached_tokens);
    sqlite3_bind_int64(st, 16, usage->cache_write_tokens);
    sqlite3_bind_int64(st, 17, usage->output_tokens);
    sqlite3_bind_int64(st, 18, usage->reasoning_tokens);

    sqlite3_bind_text(st, 19, cost_status_name(outcome->cost_status), -1,
                      SQLITE_STATIC);
    bind_cost(st, 20, outcome->cost_status, outcome->cost);
    sqlite3_bind_int64(st, 21, outcome->latency_ms);
    sqlite3_bind_int64(st, 22, outcome->ttfb_ms);
    sqlite3_bind_int(st, 23, outcome->n_attempts);
    sqlite3_bind_int64(st, 24, usage->cache_write_1h_tokens);
    sqlite3_bind_int64(st, 25, usage->web_searches);
    sqlite3_bind_int(st, 26, usage->estimated);
    bind_estimate(st, 27, outcome->cost_status, outcome->cost_estimate);
    BIND_TEXT(st, 28, outcome->policy);
    sqlite3_bind_int64(st, 29, outcome->trim_before);
    sqlite3_bind_int64(st, 30, outcome->trim_after);
    sqlite3_bind_int64(st, 31, outcome->trim_saved);
    sqlite3_bind_int(st, 32, outcome->trim_flagged);
    rc = step_reset(st);

    for (int i = 0; rc == SQLITE_OK && i < attempts_stored(outcome); i++)
        rc = put_attempt(ledger, outcome, &outcome->attempts[i]);
    return rc;
}

/* Writes ring[start .. start+n) in one transaction; all or nothing. */
static int write_batch(ledger_t *ledger, size_t start, size_t n)
{
    int rc = step_reset(ledger->begin);

    for (size_t i = 0; rc == SQLITE_OK && i < n; i++)
        rc = put_outcome(ledger, ledger->ring[(start + i) % ledger->capacity]);
    if (rc == SQLITE_OK)
        rc = step_reset(ledger->commit);

    if (rc == SQLITE_OK)
        return rc;

    /* Some errors roll the transaction back on their own; others leave
     * it open, and the retry needs a clean start either way. */
    snprintf(ledger->error, sizeof(ledger->error), "%s",
             sqlite3_errmsg(ledger->db));
    if (!sqlite3_get_autocommit(ledger->db))
        step_reset(ledger->rollback);
    return rc;
}

/* A record the database refuses (a duplicate id) fails on every retry,
 * so retrying would wedge the ledger; everything else may pass later. */
static bool is_permanent(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
        return true;
    default:
        return false;
    }
}

static void wait_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

static void log_rejected(ledger_t *ledger, const ledger_outcome_t *outcome)
{
    char id[sizeof(outcome->id) + 1];
    char usd[32];

    snprintf(id, sizeof(id), "%.*s",
             (int)strnlen(outcome->id, sizeof(outcome->id)), outcome->id);
    log_write(LOG_ERROR, id,
              "ledger: outcome refused by the database and not written "
              "(cost_status=%s cost_usd=%s): %s",
              cost_status_name(outcome->cost_status),
              pico_format_usd(outcome->cost, usd, sizeof(usd)), ledger->error);
}

/*
 * Commits one batch, waiting and retrying as long as the failure may be
 * transient (busy, I/O error, disk full). Returns how many records are in
 * the database afterwards: n, unless the database refused one of them.
 */
static size_t commit_batch(ledger_t *ledger, size_t start, size_t n)
{
    long delay = RETRY_FIRST_MS;
    size_t stored = 0;
    int rc;

    while ((rc = write_batch(ledger, start, n)) != SQLITE_OK) {
        if (is_permanent(rc))
            break;
        pthread_mutex_lock(&ledger->lock);
        ledger->failed++;
        pthread_mutex_unlock(&ledger->lock);
        log_warn("ledger: commit of %zu records failed, retrying in %ld "
                 "ms: %s",
                 n, delay, ledger->error);
        wait_ms(delay);
        delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
    }
    if (rc == SQLITE_OK)
        return n;

    /* One record spoils the batch: write them one by one so only the
     * refused one stays out, and say which it is. */
    if (n == 1) {
        log_rejected(ledger, ledger->ring[start]);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        stored += commit_batch(ledger, (start + i) % ledger->capacity, 1);
    return stored;
}

/* The batch's slots are not reused until head moves past them, so their
 * records can be freed without the lock. */
static void release_batch(ledger_t *ledger, size_t start, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t slot = (start + i) % ledger->capacity;

        free(ledger->ring[slot]);
        ledger->ring[slot] = NULL;
    }
}

static size_t slots_used(const ledger_t *ledger);

/* With the lock held: lets records gather for a group commit, unless
 * someone is waiting for them or the queue is filling. */
static void gather(ledger_t *ledger)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += GROUP_WAIT_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (ledger->queued < GROUP_MIN && !ledger->closing &&
           ledger->flushers == 0 && slots_used(ledger) < ledger->capacity / 2)
        if (pthread_cond_timedwait(&ledger->wake, &ledger->lock, &until) ==
            ETIMEDOUT)
            break;
}

static void *writer_main(void *arg)
{
    ledger_t *ledger = arg;
    size_t start, n, stored;

    pthread_mutex_lock(&ledger->lock);
    for (;;) {
        while (ledger->queued == 0 && !ledger->closing)
            pthread_cond_wait(&ledger->wake, &ledger->lock);
        if (ledger->queued == 0)
            break;
        gather(ledger);

        start = ledger->head;
        n = ledger->queued < BATCH_MAX ? ledger->queued : BATCH_MAX;
        ledger->writing = n;
        ledger->queued -= n;
        pthread_mutex_unlock(&ledger->lock);

        stored = commit_batch(ledger, start, n);
        release_batch(ledger, start, n);

        pthread_mutex_lock(&ledger->lock);
        ledger->head = (start + n) % ledger->capacity;
        ledger->writing = 0;
        ledger->written += stored;
        ledger->done += n;
        pthread_cond_broadcast(&ledger->progress);
    }
    pthread_mutex_unlock(&ledger->lock);
    return NULL;
}

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int query_int(sqlite3 *db, const char *sql, int *value)
{
    sqlite3_stmt *stmt;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);

    if (rc != SQLITE_OK)
        return -EIO;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

static int set_wal(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *stmt;
    const char *mode;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -EIO;
    }
    rc = sqlite3_step(stmt);
    mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(stmt, 0) : NULL;
    if (mode == NULL || strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "cannot switch to WAL mode: %s",
                 mode ? mode : sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
        return -EIO;
    }
    sqlite3_finalize(stmt);
    return exec_sql(db, "PRAGMA synchronous=NORMAL", err, errlen);
}

/* Creates the schema in an empty file; accepts a file it created before;
 * refuses one from a newer version rather than write rows it would
 * misread. */
static int ensure_schema(sqlite3 *db, char *err, size_t errlen)
{
    char sql[64];
    int version = 0;
    int rc = exec_sql(db, "BEGIN IMMEDIATE", err, errlen);

    if (rc < 0)
        return rc;
    if (query_int(db, "PRAGMA user_version", &version) < 0) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        rc = -EIO;
    } else if (version > LEDGER_SCHEMA_VERSION) {
        snprintf(err, errlen, "ledger schema version %d is newer than %d",
                 version, LEDGER_SCHEMA_VERSION);
        rc = -EPROTO;
    } else if (version == 0) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
                 LEDGER_SCHEMA_VERSION);
        rc = exec_sql(db, schema_sql, err, errlen);
        if (rc == 0)
            rc = exec_sql(db, sql, err, errlen);
    } else if (version == 1) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
                 LEDGER_SCHEMA_VERSION);
        rc = exec_sql(db, migrate_v2_sql, err, errlen);
        if (rc == 0)
            rc = exec_sql(db, sql, err, errlen);
    }

    if (rc == 0)
        return exec_sql(db, "COMMIT", err, errlen);
    exec_sql(db, "ROLLBACK", sql, sizeof(sql));
    return rc;
}

static int prepare(ledger_t *ledger, const char *sql, sqlite3_stmt **stmt,
                   char *err, size_t errlen)
{
    int rc = sqlite3_prepare_v3(ledger->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                stmt, NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(ledger->db));
        return -EIO;
    }
    return 0;
}

static int prepare_all(ledger_t *ledger, char *err, size_t errlen)
{
    if (prepare(ledger, "BEGIN IMMEDIATE", &ledger->begin, err, errlen) ||
        prepare(ledger, "COMMIT", &ledger->commit, err, errlen) ||
        prepare(ledger, "ROLLBACK", &ledger->rollback, err, errlen) ||
        prepare(ledger, put_outcome_sql, &ledger->put_outcome, err, errlen) ||
        prepare(ledger, put_attempt_sql, &ledger->put_attempt, err, errlen))
        return -EIO;
    return 0;
}

static int open_db(ledger_t *ledger, const char *path, char *err, size_t errlen)
{
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &ledger->db, flags, NULL);

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 ledger->db ? sqlite3_errmsg(ledger->db) : sqlite3_errstr(rc));
        return -EIO;
    }
    sqlite3_busy_timeout(ledger->db, BUSY_TIMEOUT_MS);

    rc = set_wal(ledger->db, err, errlen);
    if (rc == 0)
        rc = ensure_schema(ledger->db, err, errlen);
    if (rc == 0)
        rc = prepare_all(ledger, err, errlen);
    return rc;
}

static void close_db(ledger_t *ledger)
{
    sqlite3_finalize(ledger->begin);
    sqlite3_finalize(ledger->commit);
    sqlite3_finalize(ledger->rollback);
    sqlite3_finalize(ledger->put_outcome);
    sqlite3_finalize(ledger->put_attempt);
    sqlite3_close(ledger->db);
}

static void ledger_free(ledger_t *ledger)
{
    close_db(ledger);
    pthread_cond_destroy(&ledger->progress);
    pthread_cond_destroy(&ledger->wake);
    pthread_mutex_destroy(&ledger->lock);
    if (ledger->ring != NULL)
        release_batch(ledger, 0, ledger->capacity);
    free(ledger->ring);
    free(ledger);
}

ledger_t *ledger_open(const char *path, size_t queue_cap, char *err,
                      size_t errlen)
{
    ledger_t *ledger;

    if (queue_cap == 0 || queue_cap > LEDGER_MAX_CAPACITY) {
        snprintf(err, errlen, "ledger queue capacity must be 1 to %d",
                 LEDGER_MAX_CAPACITY);
        return NULL;
    }
    ledger = calloc(1, sizeof(*ledger));
    if (ledger == NULL) {
        log_error("ledger: out of memory");
        abort();
    }
    pthread_mutex_init(&ledger->lock, NULL);
    {
        pthread_condattr_t attr;

        /* gather() times its wait on the monotonic clock. */
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&ledger->wake, &attr);
        pthread_condattr_destroy(&attr);
    }
    pthread_cond_init(&ledger->progress, NULL);
    ledger->capacity = queue_cap;

    /* Slots hold pointers: a record takes memory only while queued, so a
     * large queue bound costs little until the writer falls behind. */
    ledger->ring = calloc(queue_cap, sizeof(*ledger->ring));
    if (ledger->ring == NULL) {
        snprintf(err, errlen, "no memory for %zu ledger slots", queue_cap);
        goto free_ledger;
    }
    if (open_db(ledger, path, err, errlen) < 0)
        goto free_ledger;
    if (pthread_create(&ledger->writer, NULL, writer_main, ledger) != 0) {
        snprintf(err, errlen, "cannot start the ledger writer thread");
        goto free_ledger;
    }
    ledger->writer_started = true;
    return ledger;

free_ledger:
    ledger_free(ledger);
    return NULL;
}

static size_t slots_used(const ledger_t *ledger)
{
    return ledger->admitted + ledger->queued + ledger->writing;
}

int ledger_admit(ledger_t *ledger)
{
    int rc = 0;

    pthread_mutex_lock(&ledger->lock);
    if (slots_used(ledger) >= ledger->capacity)
        rc = -EBUSY;
    else
        ledger->admitted++;
    pthread_mutex_unlock(&ledger->lock);
    return rc;
}

void ledger_cancel(ledger_t *ledger)
{
    pthread_mutex_lock(&ledger->lock);
    if (ledger->admitted > 0)
        ledger->admitted--;
    pthread_mutex_unlock(&ledger->lock);
}

void ledger_append(ledger_t *ledger, const ledger_outcome_t *outcome)
{
    size_t len = offsetof(ledger_outcome_t, attempts) +
                 (size_t)attempts_stored(outcome) * sizeof(ledger_attempt_t);
    size_t slot;
    ledger_outcome_t *copy = malloc(len);

    if (copy == NULL) {
        log_error("ledger: out of memory");
        abort();
    }
    memcpy(copy, outcome, len);
    pthread_mutex_lock(&ledger->lock);

    /* A caller that skipped ledger_admit() gets a free slot if there is
     * one; writing over a queued record instead would lose it. */
    if (ledger->admitted > 0) {
        ledger->admitted--;
    } else if (slots_used(ledger) >= ledger->capacity) {
        log_error("ledger: ledger_append without a slot while the queue "
                  "is full");
        abort();
    }

    slot = (ledger->head + ledger->writing + ledger->queued) % ledger->capacity;
    ledger->ring[slot] = copy;
    ledger->queued++;
    ledger->appended++;
    /* The writer needs a nudge to start gathering, and one when a group
     * is full; in between it waits on its own timer. */
    if (ledger->queued == 1 || ledger->queued == GROUP_MIN ||
        slots_used(ledger) >= ledger->capacity / 2)
        pthread_cond_signal(&ledger->wake);
    pthread_mutex_unlock(&ledger->lock);
}

void ledger_flush(ledger_t *ledger)
{
    uint64_t target;

    pthread_mutex_lock(&ledger->lock);
    target = ledger->appended;
    ledger->flushers++;
    pthread_cond_signal(&ledger->wake);
    while (ledger->done < target)
        pthread_cond_wait(&ledger->progress, &ledger->lock);
    ledger->flushers--;
    pthread_mutex_unlock(&ledger->lock);
}

void ledger_get_stats(ledger_t *ledger, ledger_stats_t *stats)
{
    pthread_mutex_lock(&ledger->lock);
    stats->capacity = ledger->capacity;
    stats->admitted = ledger->admitted;
    stats->queued = ledger->queued + ledger->writing;
    stats->written = ledger->written;
    stats->failed = ledger->failed;
    stats->full = slots_used(ledger) >= ledger->capacity;
    pthread_mutex_unlock(&ledger->lock);
}

void ledger_close(ledger_t *ledger)
{
    if (ledger == NULL)
        return;

    pthread_mutex_lock(&ledger->lock);
    ledger->closing = true;
    pthread_cond_signal(&ledger->wake);
    pthread_mutex_unlock(&ledger->lock);

    if (ledger->writer_started)
        pthread_join(ledger->writer, NULL);
    ledger_free(ledger);
}
