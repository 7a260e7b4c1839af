/*
 * Tests of the ledger: every appended outcome and attempt reaches SQLite
 * with exact values, the queue bound holds, close drains, files reopen.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ledger/ledger.h"

#ifdef __SANITIZE_ADDRESS__
#define BUILD_KIND "ASan"
#else
#define BUILD_KIND "optimised"
#endif

typedef struct fixture {
    char dir[64];
    char path[96];
} fixture_t;

static int setup_dir(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tollgate-ledger-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/ledger.db", fx->dir);
    *state = fx;
    return 0;
}

static int teardown_dir(void **state)
{
    fixture_t *fx = *state;
    char file[128];
    const char *suffix[] = {"", "-wal", "-shm"};

    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", fx->path, suffix[i]);
        unlink(file);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Outcome i: 1 to 3 attempts; every 10th unpriced, every 7th an error. */
static void make_outcome(int i, ledger_outcome_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "out_%024x", i);
    out->started_ms = INT64_C(1793520000000) + i;
    snprintf(out->endpoint, sizeof(out->endpoint), "chat.completions");
    snprintf(out->key_id, sizeof(out->key_id), "key-%d", i % 5);
    snprintf(out->team, sizeof(out->team), "team-%d", i % 3);
    snprintf(out->owner, sizeof(out->owner), "owner@example.com");
    snprintf(out->task, sizeof(out->task), "ticket-triage");
    snprintf(out->requested_model, sizeof(out->requested_model), "fast");
    snprintf(out->model, sizeof(out->model), "gpt-4o-mini");
    out->http_status = i % 7 == 0 ? 502 : 200;
    if (i % 7 == 0)
        snprintf(out->error_type, sizeof(out->error_type), "upstream_5xx");
    out->streamed = i % 2 == 1;
    out->useful = i % 7 != 0;
    out->n_attempts = i % 3 + 1;

    for (int a = 0; a < out->n_attempts; a++) {
        ledger_attempt_t *at = &out->attempts[a];

        at->attempt_no = a + 1;
        snprintf(at->reason, sizeof(at->reason), a ? "retry" : "first");
        snprintf(at->model, sizeof(at->model), "gpt-4o-mini");
        snprintf(at->upstream_model, sizeof(at->upstream_model),
                 "gpt-4o-mini-2024-07-18");
        snprintf(at->provider, sizeof(at->provider), "openai");
        at->http_status = out->http_status;
        at->usage.present = true;
        at->usage.input_tokens = 1000 + i;
        at->usage.cached_tokens = 100;
        at->usage.audio_in_tokens = a;
        at->usage.output_tokens = 50 + a;
        at->usage.reasoning_tokens = 10;
        at->usage.audio_out_tokens = 2 * a;
        at->cost_status = i % 10 == 0 ? COST_UNPRICED : COST_PRICED;
        at->cost = INT64_C(150000000) * (i + 1) + a;
        snprintf(at->price_source, sizeof(at->price_source),
                 "builtin:gpt-4o-mini");
        at->started_ms = out->started_ms + 10 * a;
        at->latency_ms = 200 + a;
        at->ttfb_ms = a == 2 ? -1 : 40;

        out->usage.input_tokens += at->usage.input_tokens;
        out->usage.cached_tokens += at->usage.cached_tokens;
        out->usage.output_tokens += at->usage.output_tokens;
        out->usage.reasoning_tokens += at->usage.reasoning_tokens;
        if (at->cost_status == COST_PRICED)
            out->cost += at->cost;
    }
    out->usage.present = true;
    out->cost_status = i % 10 == 0 ? COST_UNPRICED : COST_PRICED;
    out->latency_ms = 300 + i;
    out->ttfb_ms = 45;
}

static ledger_t *open_ledger(const char *path, size_t cap)
{
    char err[256] = "";
    ledger_t *ledger = ledger_open(path, cap, err, sizeof(err));

    if (ledger == NULL)
        fail_msg("ledger_open: %s", err);
    return ledger;
}

static void append_range(ledger_t *ledger, int from, int to)
{
    ledger_outcome_t outcome;

    for (int i = from; i < to; i++) {
        make_outcome(i, &outcome);
        while (ledger_admit(ledger) == -EBUSY)
            ledger_flush(ledger);
        ledger_append(ledger, &outcome);
    }
}

static sqlite3 *open_reader(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    return db;
}

static int64_t query_int64(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    int64_t value;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

/* The text of the first column of the first row, in a static buffer;
 * "NULL" when the value is SQL NULL. */
static const char *query_text(sqlite3 *db, const char *sql)
{
    static char text[512];
    sqlite3_stmt *stmt;
    const unsigned char *value;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    value = sqlite3_column_text(stmt, 0);
    snprintf(text, sizeof(text), "%s", value ? (const char *)value : "NULL");
    sqlite3_finalize(stmt);
    return text;
}

static void test_ledger_writes_every_outcome_and_attempt(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 256);
    int64_t attempts = 0;
    sqlite3 *db;

    append_range(ledger, 0, 1000);
    ledger_close(ledger);
    for (int i = 0; i < 1000; i++)
        attempts += i % 3 + 1;

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes"), 1000);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM attempts"),
                     attempts);
    assert_int_equal(query_int64(db, "PRAGMA user_version"),
                     LEDGER_SCHEMA_VERSION);
    assert_string_equal(query_text(db, "PRAGMA journal_mode"), "wal");

    /* Outcome 11: priced, streamed, three attempts. */
    assert_string_equal(
        query_text(db, "SELECT id || '|' || started_ms || '|' || endpoint"
                       " || '|' || key_id || '|' || team || '|' || owner"
                       " || '|' || task || '|' || requested_model || '|'"
                       " || model || '|' || http_status || '|' || error_type"
                       " || '|' || streamed || '|' || useful FROM outcomes"
                       " WHERE id = 'out_00000000000000000000000b'"),
        "out_00000000000000000000000b|1793520000011|chat.completions|key-1|"
        "team-2|owner@example.com|ticket-triage|fast|gpt-4o-mini|200||1|1");
    assert_string_equal(
        query_text(db, "SELECT input_tokens || '|' || cached_tokens || '|'"
                       " || cache_write_tokens || '|' || output_tokens"
                       " || '|' || reasoning_tokens || '|' || cost_status"
                       " || '|' || cost_pico || '|' || latency_ms || '|'"
                       " || ttfb_ms || '|' || n_attempts FROM outcomes"
                       " WHERE id = 'out_00000000000000000000000b'"),
        "3033|300|0|153|30|priced|5400000003|311|45|3");
    assert_string_equal(
        query_text(db, "SELECT attempt_no || '|' || reason || '|' || model"
                       " || '|' || upstream_model || '|' || provider || '|'"
                       " || http_status || '|' || error_type || '|'"
                       " || input_tokens || '|' || cached_tokens || '|'"
                       " || cache_write_tokens || '|' || audio_in_tokens"
                       " || '|' || output_tokens || '|' || reasoning_tokens"
                       " || '|' || audio_out_tokens || '|' || cost_status"
                       " || '|' || cost_pico || '|' || price_source || '|'"
                       " || started_ms || '|' || latency_ms || '|' || ttfb_ms"
                       " FROM attempts WHERE outcome_id ="
                       " 'out_00000000000000000000000b' AND attempt_no = 3"),
        "3|retry|gpt-4o-mini|gpt-4o-mini-2024-07-18|openai|200||1011|100|0|"
        "2|52|10|4|priced|1800000002|builtin:gpt-4o-mini|1793520000031|202|"
        "-1");

    /* Outcome 70: unpriced (no cost at all, never $0) and an error. */
    assert_string_equal(
        query_text(db, "SELECT cost_status || '|' || http_status || '|'"
                       " || error_type || '|' || useful FROM outcomes"
                       " WHERE id = 'out_000000000000000000000046'"),
        "unpriced|502|upstream_5xx|0");
    assert_string_equal(query_text(db, "SELECT cost_pico FROM outcomes WHERE"
                                       " id = 'out_000000000000000000000046'"),
                        "NULL");
    assert_int_equal(query_int64(db, "SELECT count(*) FROM attempts WHERE"
                                     " outcome_id ="
                                     " 'out_000000000000000000000046' AND"
                                     " cost_pico IS NULL"),
                     2);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes WHERE"
                                     " cost_pico IS NULL"),
                     100);
    sqlite3_close(db);
}

static void test_ledger_stores_strings_that_fill_their_field(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 4);
    ledger_outcome_t outcome;
    sqlite3 *db;

    make_outcome(1, &outcome);
    memset(outcome.team, 't', sizeof(outcome.team));
    outcome.n_attempts = 0;
    assert_int_equal(ledger_admit(ledger), 0);
    ledger_append(ledger, &outcome);
    ledger_close(ledger);

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "SELECT length(team) FROM outcomes"),
                     sizeof(outcome.team));
    assert_int_equal(query_int64(db, "SELECT count(*) FROM attempts"), 0);
    sqlite3_close(db);
}

static void test_ledger_refuses_admission_when_full(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 4);
    ledger_outcome_t outcome;
    ledger_stats_t stats;

    for (int i = 0; i < 4; i++)
        assert_int_equal(ledger_admit(ledger), 0);
    assert_int_equal(ledger_admit(ledger), -EBUSY);
    ledger_get_stats(ledger, &stats);
    assert_int_equal(stats.capacity, 4);
    assert_int_equal(stats.admitted, 4);
    assert_true(stats.full);

    ledger_cancel(ledger);
    ledger_get_stats(ledger, &stats);
    assert_int_equal(stats.admitted, 3);
    assert_false(stats.full);
    assert_int_equal(ledger_admit(ledger), 0);
    assert_int_equal(ledger_admit(ledger), -EBUSY);

    /* Appended records hold their slot until committed. */
    for (int i = 0; i < 4; i++) {
        make_outcome(i, &outcome);
        ledger_append(ledger, &outcome);
    }
    ledger_get_stats(ledger, &stats);
    assert_int_equal(stats.admitted, 0);
    assert_int_equal(stats.queued + stats.written, 4);

    ledger_flush(ledger);
    ledger_get_stats(ledger, &stats);
    assert_int_equal(stats.queued, 0);
    assert_int_equal(stats.written, 4);
    assert_int_equal(stats.failed, 0);
    assert_false(stats.full);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ledger_admit(ledger), 0);
    for (int i = 0; i < 4; i++)
        ledger_cancel(ledger);
    ledger_close(ledger);
}

static void test_ledger_close_drains_the_queue(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 3000);
    sqlite3 *db;

    append_range(ledger, 0, 3000);
    ledger_close(ledger);

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes"), 3000);
    sqlite3_close(db);
}

static void test_ledger_reopens_an_existing_file(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 8);
    ledger_stats_t stats;
    sqlite3 *db;

    append_range(ledger, 0, 5);
    ledger_close(ledger);

    ledger = open_ledger(fx->path, 8);
    append_range(ledger, 5, 12);
    ledger_flush(ledger);
    ledger_get_stats(ledger, &stats);
    assert_int_equal(stats.written, 7);
    ledger_close(ledger);

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes"), 12);
    assert_int_equal(query_int64(db, "SELECT max(started_ms) FROM outcomes"),
                     INT64_C(1793520000011));
    sqlite3_close(db);
}

/* Version 1 of the schema, as the first release wrote it. */
static const char v1_schema[] =
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
    " n_attempts INTEGER NOT NULL);"
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
    " PRIMARY KEY (outcome_id, attempt_no));";


static void test_ledger_migrates_a_version_1_file(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger;
    ledger_outcome_t out;
    sqlite3 *db;

    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO outcomes VALUES ('out_old',"
                                  " 1, 'chat.completions', 'k', 't', 'o',"
                                  " 'x', 'm', 'm', 200, '', 0, 1, 10, 0, 0,"
                                  " 5, 0, 'priced', 77, 1, 1, 1);"
                                  "PRAGMA user_version=1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    ledger = open_ledger(fx->path, 8);
    make_outcome(1, &out);
    out.cost_status = COST_ESTIMATED;
    out.cost_estimate = 123456;
    out.usage.estimated = true;
    out.usage.cache_write_1h_tokens = 7;
    out.attempts[0].cost_status = COST_ESTIMATED;
    out.attempts[0].cost_estimate = 123456;
    out.attempts[0].usage.service_tier = SERVICE_BATCH;
    snprintf(out.attempts[0].usage.geo, sizeof(out.attempts[0].usage.geo),
             "us");
    assert_int_equal(ledger_admit(ledger), 0);
    ledger_append(ledger, &out);
    ledger_close(ledger);

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "PRAGMA user_version"), 2);
    assert_int_equal(query_int64(db, "SELECT cost_pico FROM outcomes"
                                     " WHERE id = 'out_old'"),
                     77);
    assert_int_equal(query_int64(db, "SELECT usage_estimated + web_searches"
                                     " FROM outcomes WHERE id = 'out_old'"),
                     0);
    assert_int_equal(query_int64(db, "SELECT cost_estimate_pico FROM outcomes"
                                     " WHERE id != 'out_old'"),
                     123456);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes WHERE"
                                     " cost_pico IS NULL AND usage_estimated"
                                     " = 1 AND cache_write_1h_tokens = 7"),
                     1);
    assert_string_equal(query_text(db, "SELECT service_tier || '/' || geo ||"
                                       " '/' || cost_status FROM attempts"
                                       " WHERE attempt_no = 1 AND"
                                       " outcome_id != 'out_old'"),
                        "batch/us/estimated");
    sqlite3_close(db);
}

static void test_ledger_refuses_a_newer_schema(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    sqlite3 *db;

    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    assert_null(ledger_open(fx->path, 4, err, sizeof(err)));
    assert_non_null(strstr(err, "version 99"));
}

static void test_ledger_open_reports_bad_arguments(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    char path[160];

    assert_null(ledger_open(fx->path, 0, err, sizeof(err)));
    assert_non_null(strstr(err, "capacity"));

    snprintf(path, sizeof(path), "%s/no/such/dir/ledger.db", fx->dir);
    err[0] = '\0';
    assert_null(ledger_open(path, 4, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
}

/* A duplicate id can never be committed; the ledger must skip that one
 * record, loudly, and keep writing the rest. */
static void test_ledger_duplicate_id_does_not_wedge_writer(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 64);
    ledger_outcome_t outcome;
    ledger_stats_t stats;
    sqlite3 *db;

    append_range(ledger, 0, 10);
    ledger_flush(ledger);
    make_outcome(3, &outcome);
    assert_int_equal(ledger_admit(ledger), 0);
    ledger_append(ledger, &outcome);
    append_range(ledger, 10, 20);
    ledger_flush(ledger);

    ledger_get_stats(ledger, &stats);
    assert_int_equal(stats.written, 20);
    assert_int_equal(stats.queued, 0);
    ledger_close(ledger);

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes"), 20);
    sqlite3_close(db);
}

/* Another connection holds the write lock: the batch fails with
 * SQLITE_BUSY, is counted, kept, and committed once the lock is gone. */
static void test_ledger_retries_a_batch_while_the_file_is_locked(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 16);
    ledger_stats_t stats;
    sqlite3 *db;

    ledger_flush(ledger);
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    append_range(ledger, 0, 3);
    do {
        sched_yield();
        ledger_get_stats(ledger, &stats);
    } while (stats.failed == 0);
    assert_int_equal(stats.written, 0);
    assert_int_equal(stats.queued, 3);

    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    ledger_flush(ledger);
    ledger_get_stats(ledger, &stats);
    assert_int_equal(stats.written, 3);
    assert_int_equal(stats.queued, 0);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes"), 3);
    sqlite3_close(db);
    ledger_close(ledger);
}

typedef struct producer {
    ledger_t *ledger;
    int from, to;
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;

    append_range(p->ledger, p->from, p->to);
    return NULL;
}

/* A ring of 7 slots wraps about a thousand times under two producers and
 * the writer; every record must arrive once, with its own values. */
static void test_ledger_small_ring_wraps_without_losing_records(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 7);
    producer_t producers[2] = {{ledger, 0, 4000}, {ledger, 4000, 8000}};
    pthread_t threads[2];
    int64_t latency_sum = 0;
    sqlite3 *db;

    for (int i = 0; i < 2; i++)
        assert_int_equal(
            pthread_create(&threads[i], NULL, produce, &producers[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    ledger_close(ledger);
    for (int i = 0; i < 8000; i++)
        latency_sum += 300 + i;

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes"), 8000);
    assert_int_equal(query_int64(db, "SELECT count(DISTINCT id) FROM"
                                     " outcomes"),
                     8000);
    assert_int_equal(query_int64(db, "SELECT sum(latency_ms) FROM outcomes"),
                     latency_sum);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes WHERE"
                                     " latency_ms - 300 != started_ms -"
                                     " 1793520000000"),
                     0);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM attempts a JOIN"
                                     " outcomes o ON o.id = a.outcome_id"
                                     " WHERE a.input_tokens !="
                                     " 1000 + o.started_ms - 1793520000000"),
                     0);
    sqlite3_close(db);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) +
           (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* Prints the figure only: timing depends on the machine and the build. */
static void test_ledger_time_to_write_50000_outcomes(void **state)
{
    fixture_t *fx = *state;
    ledger_t *ledger = open_ledger(fx->path, 8192);
    ledger_outcome_t outcome;
    struct timespec start;
    unsigned refused = 0;
    double appending, total;
    sqlite3 *db;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < 50000; i++) {
        make_outcome(i, &outcome);
        while (ledger_admit(ledger) == -EBUSY) {
            refused++;
            ledger_flush(ledger);
        }
        ledger_append(ledger, &outcome);
    }
    appending = seconds_since(&start);
    ledger_close(ledger);
    total = seconds_since(&start);

    printf("ledger: 50000 outcomes of 1 to 3 attempts written in %.3f s "
           "(%.0f/s, %s build); appends took %.3f s with %u refusals at "
           "capacity 8192\n",
           total, 50000 / total, BUILD_KIND, appending, refused);

    db = open_reader(fx->path);
    assert_int_equal(query_int64(db, "SELECT count(*) FROM outcomes"), 50000);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_ledger_writes_every_outcome_and_attempt, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            test_ledger_stores_strings_that_fill_their_field, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(test_ledger_refuses_admission_when_full,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ledger_close_drains_the_queue,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ledger_reopens_an_existing_file,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ledger_migrates_a_version_1_file,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ledger_refuses_a_newer_schema,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_ledger_open_reports_bad_arguments,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(
            test_ledger_duplicate_id_does_not_wedge_writer, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            test_ledger_retries_a_batch_while_the_file_is_locked, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            test_ledger_small_ring_wraps_without_losing_records, setup_dir,
            teardown_dir),
        cmocka_unit_test_setup_teardown(
            test_ledger_time_to_write_50000_outcomes, setup_dir, teardown_dir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
