/*
 * Learned thresholds: Wilson bounds at known values, the auto pick with
 * and without data, exploration decided by the random number passed in,
 * feedback moving counts, the table cap, and counts that survive a
 * restart through the SQLite table (directly and through the worker).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "route/stats.h"
#include "util/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const tiers[] = {"mixtral", "gpt-4o-mini", "gpt-4"};

/* The bound in millionths, floored: an exact value to compare. */
static long ppm(double x)
{
    return (long)floor(x * 1e6);
}

static route_stats_t *stats_new(int64_t min_samples)
{
    route_stats_opts_t o;
    route_stats_t *s;

    route_stats_opts_init(&o);
    o.min_samples = min_samples;
    assert_int_equal(route_stats_new(&o, &s), 0);
    return s;
}

static void record_n(route_stats_t *s, const char *task, const char *tier,
                     int passes, int fails)
{
    for (int i = 0; i < passes; i++)
        assert_int_equal(route_stats_record(s, task, tier, true, 1000), 0);
    for (int i = 0; i < fails; i++)
        assert_int_equal(route_stats_record(s, task, tier, false, 1000), 0);
}

static void test_wilson_lower_bound_known_values(void **state)
{
    double z95 = route_stats_z(95);

    assert_int_equal(ppm(route_wilson_lower(8, 10, z95)), 490162);
    assert_int_equal(ppm(route_wilson_lower(9, 10, z95)), 595849);
    assert_int_equal(ppm(route_wilson_lower(10, 10, z95)), 722467);
    assert_int_equal(ppm(route_wilson_lower(90, 100, z95)), 825634);
    assert_int_equal(ppm(route_wilson_lower(900, 1000, z95)), 879848);
    assert_int_equal(ppm(route_wilson_lower(0, 10, z95)), 0);
    assert_int_equal(ppm(route_wilson_lower(0, 0, z95)), 0);
    assert_int_equal(ppm(route_wilson_lower(50, 100, route_stats_z(90))),
                     418847);
    assert_int_equal(ppm(route_wilson_lower(27, 30, route_stats_z(80))),
                     807806);
    /* Mixtral's GSM8K accuracy in routellm-evals: 841 of 1,257 that pass
     * the format check. */
    assert_int_equal(ppm(route_wilson_lower(841, 1257, z95)), 642559);
}

static void test_z_table(void **state)
{
    assert_int_equal(ppm(route_stats_z(95)), 1959963);
    assert_int_equal(ppm(route_stats_z(99)), 2575829);
    assert_int_equal(ppm(route_stats_z(80)), 1281551);
    assert_true(route_stats_z(97) < 0);
}

static void test_auto_pick_without_data_starts_strongest(void **state)
{
    route_stats_t *s = stats_new(30);
    route_auto_why_t why;

    assert_int_equal(route_auto_pick(s, "triage", tiers, 3, 0.8, 0.0, 0, &why),
                     2);
    assert_true(why.unknown);
    assert_false(why.explored);
    assert_int_equal(why.samples, 0);
    /* Plenty of passes, but below min_samples: still unknown. */
    record_n(s, "triage", "mixtral", 29, 0);
    assert_int_equal(route_auto_pick(s, "triage", tiers, 3, 0.8, 0.0, 0, NULL),
                     2);
    record_n(s, "triage", "mixtral", 1, 0);
    assert_int_equal(route_auto_pick(s, "triage", tiers, 3, 0.8, 0.0, 0, &why),
                     0);
    assert_false(why.unknown);
    assert_int_equal(why.samples, 30);
    assert_int_equal(ppm(why.lower), 886486);
    route_stats_free(s);
}

static void test_auto_pick_cheapest_meeting_target(void **state)
{
    route_stats_t *s = stats_new(30);

    record_n(s, "t", "mixtral", 80, 20);     /* lower bound 0.711 */
    record_n(s, "t", "gpt-4o-mini", 90, 10); /* lower bound 0.825 */
    record_n(s, "t", "gpt-4", 99, 1);
    assert_int_equal(route_auto_pick(s, "t", tiers, 3, 0.70, 0, 0, NULL), 0);
    assert_int_equal(route_auto_pick(s, "t", tiers, 3, 0.80, 0, 0, NULL), 1);
    assert_int_equal(route_auto_pick(s, "t", tiers, 3, 0.90, 0, 0, NULL), 2);
    /* Nothing meets 0.99: the strongest, flagged. */
    assert_int_equal(route_auto_pick(s, "t", tiers, 3, 0.99, 0, 0, NULL), 2);
    /* Another task learns apart. */
    assert_int_equal(route_auto_pick(s, "other", tiers, 3, 0.5, 0, 0, NULL), 2);
    assert_int_equal(route_auto_pick(s, "t", tiers, 0, 0.5, 0, 0, NULL),
                     -EINVAL);
    route_stats_free(s);
}

static uint64_t rnd(uint32_t high, uint32_t low)
{
    return (uint64_t)high << 32 | low;
}

static void test_auto_pick_explores_by_the_number_given(void **state)
{
    route_stats_t *s = stats_new(30);
    route_auto_why_t why;

    record_n(s, "t", "gpt-4", 95, 5);
    /* explore_share 0.1 is 429496729.6 of 2^32. */
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(429496729, 0), &why),
        0);
    assert_true(why.explored);
    assert_int_equal(why.best, 2);
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(429496730, 0), &why),
        2);
    assert_false(why.explored);
    /* Both cheaper tiers are unknown: the low half picks among them. */
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(0, 1), NULL), 1);
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(0, 2), NULL), 0);
    /* Once mixtral is known, exploring goes to the unknown one only. */
    record_n(s, "t", "mixtral", 20, 20);
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(0, 0), NULL), 1);
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(0, 7), NULL), 1);
    /* All known: any tier but the chosen one. */
    record_n(s, "t", "gpt-4o-mini", 20, 20);
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(0, 0), NULL), 0);
    assert_int_equal(
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.1, rnd(0, 1), NULL), 1);
    /* One tier: nothing to explore. */
    assert_int_equal(route_auto_pick(s, "t", tiers, 1, 0.8, 1.0, 0, NULL), 0);
    route_stats_free(s);
}

static void test_auto_pick_explore_share_over_many_draws(void **state)
{
    route_stats_t *s = stats_new(30);
    uint64_t x = 88172645463325252ULL;
    int explored = 0;

    record_n(s, "t", "gpt-4", 95, 5);
    for (int i = 0; i < 10000; i++) {
        route_auto_why_t why;

        x ^= x << 13; /* xorshift64: a fixed, repeatable sequence */
        x ^= x >> 7;
        x ^= x << 17;
        route_auto_pick(s, "t", tiers, 3, 0.8, 0.05, x, &why);
        explored += why.explored;
    }
    assert_int_equal(explored, 452); /* same sequence in Python: 452 */
    route_stats_free(s);
}

static void test_feedback_moves_one_count(void **state)
{
    route_stats_t *s = stats_new(1);
    int64_t p, f;

    record_n(s, "t", "mixtral", 2, 0);
    assert_int_equal(route_stats_feedback(s, "t", "mixtral", false, 2000), 0);
    assert_int_equal(route_stats_get(s, "t", "mixtral", &p, &f), 0);
    assert_int_equal(p, 1);
    assert_int_equal(f, 1);
    assert_int_equal(route_stats_feedback(s, "t", "mixtral", true, 2000), 0);
    assert_int_equal(route_stats_get(s, "t", "mixtral", &p, &f), 0);
    assert_int_equal(p, 2);
    assert_int_equal(f, 0);
    /* Nothing to move: left alone. */
    assert_int_equal(route_stats_feedback(s, "t", "mixtral", true, 2000), 0);
    assert_int_equal(route_stats_get(s, "t", "mixtral", &p, &f), 0);
    assert_int_equal(p, 2);
    assert_int_equal(route_stats_feedback(s, "t", "gpt-4", true, 2000),
                     -ENOENT);
    assert_int_equal(route_stats_get(s, "t", "gpt-4", &p, &f), -ENOENT);
    route_stats_free(s);
}

static void test_counts_halve_at_max_samples(void **state)
{
    route_stats_opts_t o;
    route_stats_t *s;
    int64_t p, f;

    route_stats_opts_init(&o);
    o.min_samples = 5;
    o.max_samples = 100;
    assert_int_equal(route_stats_new(&o, &s), 0);
    record_n(s, "t", "gpt-4", 70, 29);
    route_stats_get(s, "t", "gpt-4", &p, &f);
    assert_int_equal(p + f, 99);
    record_n(s, "t", "gpt-4", 0, 1);
    route_stats_get(s, "t", "gpt-4", &p, &f);
    assert_int_equal(p, 35);
    assert_int_equal(f, 15);
    route_stats_free(s);
}

static void test_table_cap_and_name_limits(void **state)
{
    route_stats_opts_t o;
    route_stats_t *s;
    char long_task[100];

    route_stats_opts_init(&o);
    o.max_entries = 2;
    assert_int_equal(route_stats_new(&o, &s), 0);
    assert_int_equal(route_stats_record(s, "a", "m", true, 1), 0);
    assert_int_equal(route_stats_record(s, "b", "m", true, 1), 0);
    assert_int_equal(route_stats_record(s, "c", "m", true, 1), -ENOSPC);
    assert_int_equal(route_stats_record(s, "a", "m", true, 1), 0);
    memset(long_task, 'x', 99);
    long_task[99] = '\0';
    assert_int_equal(route_stats_record(s, long_task, "m", true, 1),
                     -ENAMETOOLONG);
    route_stats_free(s);

    o.confidence_pct = 97;
    assert_int_equal(route_stats_new(&o, &s), -EINVAL);
    route_stats_opts_init(&o);
    o.max_samples = o.min_samples;
    assert_int_equal(route_stats_new(&o, &s), -EINVAL);
}

static void test_many_pairs_are_all_found(void **state)
{
    route_stats_t *s = stats_new(1);
    char task[32];
    int64_t p, f;

    for (int i = 0; i < 3000; i++) {
        snprintf(task, sizeof(task), "task-%d", i);
        record_n(s, task, tiers[i % 3], i % 7, 1);
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(task, sizeof(task), "task-%d", i);
        assert_int_equal(route_stats_get(s, task, tiers[i % 3], &p, &f), 0);
        assert_int_equal(p, i % 7);
        assert_int_equal(f, 1);
    }
    route_stats_free(s);
}

static void temp_path(char *path, size_t len)
{
    snprintf(path, len, "/tmp/tollgate-route-stats-%d.db", (int)getpid());
    unlink(path);
}

static void test_counts_survive_a_restart(void **state)
{
    route_stats_t *before = stats_new(1), *after = stats_new(1);
    route_stats_rows_t rows, loaded;
    char path[128], err[256];
    int64_t p, f;

    temp_path(path, sizeof(path));
    record_n(before, "gsm8k", "mixtral", 5, 2);
    record_n(before, "gsm8k", "gpt-4", 3, 0);
    route_stats_snapshot(before, true, &rows);
    assert_int_equal(rows.n, 2);
    assert_int_equal(route_stats_save(path, &rows, err, sizeof(err)), 0);
    route_stats_rows_free(&rows);

    /* Only changed pairs are saved next time; a row replaces its own. */
    record_n(before, "gsm8k", "gpt-4", 0, 1);
    route_stats_snapshot(before, true, &rows);
    assert_int_equal(rows.n, 1);
    assert_int_equal(route_stats_save(path, &rows, err, sizeof(err)), 0);
    route_stats_rows_free(&rows);

    assert_int_equal(route_stats_load(path, &loaded, err, sizeof(err)), 0);
    assert_int_equal(loaded.n, 2);
    assert_int_equal(route_stats_merge(after, &loaded), 2);
    route_stats_rows_free(&loaded);
    assert_int_equal(route_stats_get(after, "gsm8k", "mixtral", &p, &f), 0);
    assert_int_equal(p, 5);
    assert_int_equal(f, 2);
    assert_int_equal(route_stats_get(after, "gsm8k", "gpt-4", &p, &f), 0);
    assert_int_equal(p, 3);
    assert_int_equal(f, 1);
    route_stats_free(before);
    route_stats_free(after);
    unlink(path);
}

static void test_load_of_missing_file_or_table_is_empty(void **state)
{
    route_stats_rows_t rows;
    char path[128], err[256];
    sqlite3 *db;

    temp_path(path, sizeof(path));
    assert_int_equal(route_stats_load(path, &rows, err, sizeof(err)), 0);
    assert_int_equal(rows.n, 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE outcomes (id TEXT)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(route_stats_load(path, &rows, err, sizeof(err)), 0);
    assert_int_equal(rows.n, 0);
    route_stats_rows_free(&rows);
    unlink(path);
}

static void test_save_failure_reports_and_keeps_rows_dirty(void **state)
{
    route_stats_t *s = stats_new(1);
    route_stats_rows_t rows;
    char err[256];

    record_n(s, "t", "gpt-4", 1, 0);
    route_stats_snapshot(s, true, &rows);
    assert_int_equal(
        route_stats_save("/nonexistent-dir/x.db", &rows, err, sizeof(err)),
        -EIO);
    assert_true(strncmp(err, "route_stats: ", 13) == 0);
    route_stats_mark_dirty(s, &rows);
    route_stats_rows_free(&rows);
    route_stats_snapshot(s, true, &rows);
    assert_int_equal(rows.n, 1);
    route_stats_rows_free(&rows);
    route_stats_free(s);
}

static void test_flush_saves_on_the_worker(void **state)
{
    struct event_base *base = event_base_new();
    worker_t *w = worker_new(base);
    route_stats_t *s = stats_new(1);
    route_stats_rows_t rows;
    char path[128], err[256];

    temp_path(path, sizeof(path));
    record_n(s, "t", "gpt-4", 4, 1);
    route_stats_flush(s, w, path);
    route_stats_flush(s, w, path); /* nothing changed: no job */
    assert_int_equal(worker_pending(w), 1);
    worker_free(w); /* runs the job and its completion */
    event_base_free(base);

    assert_int_equal(route_stats_load(path, &rows, err, sizeof(err)), 0);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.rows[0].task, "t");
    assert_string_equal(rows.rows[0].tier, "gpt-4");
    assert_int_equal(rows.rows[0].passes, 4);
    assert_int_equal(rows.rows[0].fails, 1);
    assert_int_equal(rows.rows[0].updated_ms, 1000);
    route_stats_rows_free(&rows);
    route_stats_free(s);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wilson_lower_bound_known_values),
        cmocka_unit_test(test_z_table),
        cmocka_unit_test(test_auto_pick_without_data_starts_strongest),
        cmocka_unit_test(test_auto_pick_cheapest_meeting_target),
        cmocka_unit_test(test_auto_pick_explores_by_the_number_given),
        cmocka_unit_test(test_auto_pick_explore_share_over_many_draws),
        cmocka_unit_test(test_feedback_moves_one_count),
        cmocka_unit_test(test_counts_halve_at_max_samples),
        cmocka_unit_test(test_table_cap_and_name_limits),
        cmocka_unit_test(test_many_pairs_are_all_found),
        cmocka_unit_test(test_counts_survive_a_restart),
        cmocka_unit_test(test_load_of_missing_file_or_table_is_empty),
        cmocka_unit_test(test_save_failure_reports_and_keeps_rows_dirty),
        cmocka_unit_test(test_flush_saves_on_the_worker),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
