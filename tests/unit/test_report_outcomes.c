/*
 * Tests of the report's quality figures: feedback and rework applied to
 * their outcomes' groups, retry spend, --compare, the four leaks with
 * exact dollars, the daily rollup agreeing with a full scan, time
 * buckets, and the HTML page keeping caller-chosen names inert.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "feedback/feedback.h"
#include "feedback/store.h"
#include "ledger/ledger.h"
#include "report/report.h"

#define T0 INT64_C(1793491200000) /* 2026-11-01T00:00:00Z */
#define HOUR INT64_C(3600000)
#define DAY (24 * HOUR)
#define MILLION INT64_C(1000000)

typedef struct fixture {
    char dir[64];
    char path[96];
} fixture_t;

typedef struct spec {
    const char *task;
    const char *model;
    int64_t at_ms;
    pico_t first, retry; /* attempt costs; retry 0 means one attempt */
    bool useful;
    int64_t input;
    int64_t latency_ms;
} spec_t;

/*
 * triage on gpt-4o-mini: five useful outcomes at $0.000001; on gpt-4o
 * five at $0.00001, one of them not useful after a retry, one with 1,000
 * input tokens (the others 100); one untasked outcome. The day before,
 * three outcomes for --compare.
 */
static const spec_t specs[] = {
    {"triage", "gpt-4o-mini", T0 + 1 * HOUR, MILLION, 0, true, 100, 100},
    {"triage", "gpt-4o-mini", T0 + 2 * HOUR, MILLION, 0, true, 100, 200},
    {"triage", "gpt-4o-mini", T0 + 3 * HOUR, MILLION, 0, true, 100, 300},
    {"triage", "gpt-4o-mini", T0 + 4 * HOUR, MILLION, 0, true, 100, 400},
    {"triage", "gpt-4o-mini", T0 + 5 * HOUR, MILLION, 0, true, 100, 500},
    {"triage", "gpt-4o", T0 + 1 * HOUR, 4 * MILLION, 6 * MILLION, false, 100,
     600},
    {"triage", "gpt-4o", T0 + 2 * HOUR, 10 * MILLION, 0, true, 1000, 700},
    {"triage", "gpt-4o", T0 + 3 * HOUR, 10 * MILLION, 0, true, 100, 800},
    {"triage", "gpt-4o", T0 + 4 * HOUR, 10 * MILLION, 0, true, 100, 900},
    {"triage", "gpt-4o", T0 + 5 * HOUR, 10 * MILLION, 0, true, 100, 1000},
    {"", "gpt-4o-mini", T0 + 6 * HOUR, 2 * MILLION, 0, true, 100, 1100},
    {"triage", "gpt-4o-mini", T0 - 20 * HOUR, 3 * MILLION, 0, true, 100, 50},
    {"triage", "gpt-4o-mini", T0 - 10 * HOUR, 3 * MILLION, 0, false, 100, 50},
    {"", "gpt-4o-mini", T0 - 5 * HOUR, MILLION, 0, true, 100, 1100},
};

#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

static void set_attempt(ledger_attempt_t *a, int no, const char *reason,
                        const spec_t *s, pico_t cost)
{
    a->attempt_no = no;
    snprintf(a->reason, sizeof(a->reason), "%s", reason);
    snprintf(a->model, sizeof(a->model), "%s", s->model);
    a->http_status = 200;
    a->cost_status = COST_PRICED;
    a->cost = cost;
    a->started_ms = s->at_ms;
}

static void fill(int i, const spec_t *s, ledger_outcome_t *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "out_%024x", i + 1);
    o->started_ms = s->at_ms;
    snprintf(o->key_id, sizeof(o->key_id), "alpha");
    snprintf(o->team, sizeof(o->team), "support");
    snprintf(o->task, sizeof(o->task), "%s", s->task);
    snprintf(o->model, sizeof(o->model), "%s", s->model);
    o->http_status = 200;
    o->useful = s->useful;
    o->usage.present = true;
    o->usage.input_tokens = s->input;
    o->cost_status = COST_PRICED;
    o->cost = s->first + s->retry;
    o->latency_ms = s->latency_ms;
    o->ttfb_ms = 10;
    o->n_attempts = s->retry ? 2 : 1;
    set_attempt(&o->attempts[0], 1, "first", s, s->first);
    if (s->retry)
        set_attempt(&o->attempts[1], 2, "retry", s, s->retry);
    /* The first outcome had 400 tokens of context trimmed away. */
    if (i == 0) {
        o->trim_before = 500;
        o->trim_after = 100;
        o->trim_saved = 60000;
    }
}

static void put_links(const char *path)
{
    sqlite3 *db = store_open(path);
    feedback_t fb = {.useful = false};

    assert_non_null(db);
    /* The second mini outcome: passed its checks, called no use. */
    snprintf(fb.outcome_id, sizeof(fb.outcome_id), "out_%024x", 2);
    assert_int_equal(feedback_store(db, &fb, NULL, FEEDBACK_FROM_API, T0),
                     FEEDBACK_STORED);
    fb.useful = true;
    snprintf(fb.outcome_id, sizeof(fb.outcome_id), "out_%024x", 4);
    assert_int_equal(feedback_store(db, &fb, NULL, FEEDBACK_FROM_API, T0),
                     FEEDBACK_STORED);
    /* The third mini outcome asked the first's question again. */
    assert_int_equal(store_put_rework(db, "out_000000000000000000000003",
                                      "out_000000000000000000000001", T0, "k"),
                     0);
    sqlite3_close(db);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256] = "";
    ledger_outcome_t out;
    ledger_t *ledger;

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tollgate-quality-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/ledger.db", fx->dir);
    ledger = ledger_open(fx->path, 64, err, sizeof(err));
    if (ledger == NULL)
        fail_msg("ledger_open: %s", err);
    for (size_t i = 0; i < N_SPECS; i++) {
        fill((int)i, &specs[i], &out);
        assert_int_equal(ledger_admit(ledger), 0);
        ledger_append(ledger, &out);
    }
    ledger_close(ledger);
    put_links(fx->path);
    *state = fx;
    return 0;
}

static int teardown(void **state)
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

static json_object *run_json(const char *path, ...)
{
    char *argv[24] = {"report", "--ledger", (char *)path, "--format", "json"};
    int argc = 5;
    report_opts_t opts;
    char err[256] = "";
    char *text = NULL;
    size_t len = 0;
    json_object *root;
    FILE *out;
    va_list ap;

    va_start(ap, path);
    while ((argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    if (report_parse_args(argc, argv, T0 + DAY, &opts, stdout, err,
                          sizeof(err)) != 0)
        fail_msg("report_parse_args: %s", err);
    out = open_memstream(&text, &len);
    if (report_run(&opts, out, err, sizeof(err)) != 0)
        fail_msg("report_run: %s", err);
    fclose(out);
    root = json_tokener_parse(text);
    if (root == NULL)
        fail_msg("not JSON: %s", text);
    free(text);
    return root;
}

static json_object *get(json_object *obj, const char *name)
{
    json_object *value = NULL;

    if (!json_object_object_get_ex(obj, name, &value))
        fail_msg("no field %s in %s", name, json_object_to_json_string(obj));
    return value;
}

static int64_t num(json_object *obj, const char *name)
{
    return json_object_get_int64(get(obj, name));
}

static const char *str(json_object *obj, const char *name)
{
    return json_object_get_string(get(obj, name));
}

static json_object *row(json_object *root, size_t i)
{
    return json_object_array_get_idx(get(root, "rows"), i);
}

static void test_report_applies_feedback_rework_and_retries(void **state)
{
    fixture_t *fx = *state;
    json_object *root = run_json(fx->path, "--since", "24h", NULL);
    json_object *mini = row(root, 2), *big = row(root, 1);
    json_object *total = get(root, "total");

    assert_string_equal(str(mini, "model"), "gpt-4o-mini");
    assert_int_equal(num(mini, "outcomes"), 5);
    assert_int_equal(num(mini, "checks_passed"), 5);
    assert_int_equal(num(mini, "useful"), 4);
    assert_int_equal(num(mini, "feedback"), 2);
    assert_int_equal(num(mini, "feedback_negative"), 1);
    assert_int_equal(num(mini, "repeats"), 1);
    assert_string_equal(json_object_get_string(get(mini, "feedback_rate")),
                        "0.4000");
    assert_string_equal(json_object_get_string(get(mini, "rework_rate")),
                        "0.2000");
    assert_int_equal(num(mini, "trimmed_tokens"), 400);
    assert_string_equal(str(mini, "trim_saved_usd"), "0.000000060000");
    assert_null(get(mini, "cache_hits"));
    /* $0.000005 over 4 useful outcomes. */
    assert_int_equal(num(mini, "cost_per_useful_pico"), 1250000);

    assert_int_equal(num(big, "outcomes"), 5);
    assert_int_equal(num(big, "attempts"), 6);
    assert_int_equal(num(big, "extra_attempts"), 1);
    assert_int_equal(num(big, "useful"), 4);
    assert_int_equal(num(big, "retry_spend_pico"), 6 * MILLION);
    assert_string_equal(str(big, "retry_spend_usd"), "0.000006000000");
    assert_string_equal(json_object_get_string(get(big, "check_pass_rate")),
                        "0.8000");
    assert_int_equal(num(big, "cost_per_useful_pico"), 12500000);

    assert_int_equal(num(total, "outcomes"), 11);
    assert_int_equal(num(total, "spend_pico"), 57 * MILLION);
    assert_int_equal(num(total, "useful"), 9);
    /* (1 extra attempt + 1 repeated ask) / 11 outcomes. */
    assert_string_equal(json_object_get_string(get(total, "rework_rate")),
                        "0.1818");
    json_object_put(root);
}

static void test_report_compares_with_the_previous_period(void **state)
{
    fixture_t *fx = *state;
    json_object *root = run_json(fx->path, "--since", "24h", "--compare", NULL);
    json_object *prev = get(root, "previous_total");
    json_object *mini = row(root, 2);

    assert_string_equal(str(get(root, "previous_window"), "since"),
                        "2026-10-31T00:00:00Z");
    assert_int_equal(num(prev, "outcomes"), 3);
    assert_int_equal(num(prev, "spend_pico"), 7 * MILLION);
    assert_int_equal(num(prev, "useful"), 2);
    assert_int_equal(num(prev, "cost_per_useful_pico"), 3500000);
    /* Rows match by keys, each previous row at most once. */
    assert_int_equal(num(get(row(root, 0), "previous"), "outcomes"), 1);
    assert_int_equal(num(get(mini, "previous"), "outcomes"), 2);
    assert_null(get(get(row(root, 1), "previous"), "cost_per_useful_pico"));
    json_object_put(root);
}

static json_object *leak(json_object *root, int i, const char *kind)
{
    json_object *l = json_object_array_get_idx(get(root, "leaks"), i);

    assert_string_equal(str(l, "kind"), kind);
    return l;
}

static void test_report_leaks_have_exact_dollars(void **state)
{
    fixture_t *fx = *state;
    json_object *root = run_json(fx->path, "--since", "24h", "--leaks", NULL);
    json_object *l;

    /* gpt-4o-mini is useful as often (4 of 5) at $0.000001: gpt-4o's five
     * priced outcomes ($0.00005) would have cost $0.000005. */
    l = leak(root, 0, "routing");
    assert_int_equal(num(l, "amount_pico"), 45 * MILLION);
    assert_non_null(strstr(str(l, "change"), "Route task 'triage' to "
                                             "gpt-4o-mini instead of gpt-4o"));
    /* Median input 100: the 1,000-token call had 800 over twice that, at
     * gpt-4o's built-in $2.50 per million. */
    l = leak(root, 1, "context");
    assert_int_equal(num(l, "tokens"), 800);
    assert_int_equal(num(l, "amount_pico"), 800 * INT64_C(2500000));
    assert_non_null(strstr(str(l, "change"), "context budget of 200"));
    /* The not-useful outcomes: mini's $0.000001, gpt-4o's $0.00001 (its
     * retry included). */
    l = leak(root, 2, "retries");
    assert_int_equal(num(l, "amount_pico"), 11 * MILLION);
    /* The repeated ask ($0.000001) and the untasked call ($0.000002). */
    l = leak(root, 3, "volume");
    assert_int_equal(num(l, "amount_pico"), 3 * MILLION);
    assert_string_equal(str(l, "amount_usd"), "0.000003000000");
    json_object_put(root);
}

static void test_rollup_agrees_with_a_full_scan(void **state)
{
    fixture_t *fx = *state;
    json_object *scan, *rolled;
    char err[256];

    scan = run_json(fx->path, "--by", "task", "--no-rollup", NULL);
    assert_int_equal(report_rollup_refresh(fx->path, err, sizeof(err)),
                     (int64_t)N_SPECS);
    assert_int_equal(report_rollup_refresh(fx->path, err, sizeof(err)), 0);
    rolled = run_json(fx->path, "--by", "task", NULL);

    assert_int_equal(num(rolled, "rollup_outcomes"), (int64_t)N_SPECS);
    assert_true(
        json_object_get_boolean(get(rolled, "approximate_percentiles")));
    for (size_t i = 0; i < 2; i++) {
        static const char *const same[] = {"outcomes",         "attempts",
                                           "spend_pico",       "useful",
                                           "feedback",         "repeats",
                                           "retry_spend_pico", "checks_passed",
                                           "extra_attempts",   "input_tokens"};

        for (size_t f = 0; f < sizeof(same) / sizeof(same[0]); f++)
            assert_int_equal(num(row(scan, i), same[f]),
                             num(row(rolled, i), same[f]));
    }
    /* Values below 64 are exact in a histogram; 1,100 ms lands in the
     * bucket [1088, 1120). */
    assert_int_equal(num(row(rolled, 0), "latency_p50_ms"), 1088);
    assert_int_equal(num(row(rolled, 0), "ttfb_p50_ms"), 10);
    json_object_put(scan);
    json_object_put(rolled);

    /* A window inside one day is scanned, rollup or not: exact. */
    rolled = run_json(fx->path, "--since", "2026-11-01T02:00Z", "--until",
                      "2026-11-01T03:00Z", NULL);
    assert_int_equal(num(rolled, "rollup_outcomes"), 0);
    assert_int_equal(num(get(rolled, "total"), "outcomes"), 2);
    json_object_put(rolled);
}

static void test_report_groups_by_day_with_iso_keys(void **state)
{
    fixture_t *fx = *state;
    json_object *root = run_json(fx->path, "--by", "day", NULL);

    assert_int_equal(json_object_array_length(get(root, "rows")), 2);
    assert_string_equal(str(row(root, 0), "day"), "2026-10-31T00:00:00Z");
    assert_int_equal(num(row(root, 0), "outcomes"), 3);
    assert_string_equal(str(row(root, 1), "day"), "2026-11-01T00:00:00Z");
    assert_int_equal(num(row(root, 1), "outcomes"), 11);
    json_object_put(root);
}

static void test_html_page_keeps_names_inert(void **state)
{
    char dir[] = "/tmp/tollgate-bundle-XXXXXX";
    char file[96];
    json_object *data = json_object_new_object();
    char err[256] = "", *text = NULL;
    size_t len = 0;
    FILE *f, *out;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/dashboard.js", dir);
    f = fopen(file, "w");
    fputs("var s = \"</script>\";", f);
    fclose(f);
    snprintf(file, sizeof(file), "%s/dashboard.css", dir);
    f = fopen(file, "w");
    fputs("body{}", f);
    fclose(f);
    setenv("TOLLGATE_DASHBOARD_DIR", dir, 1);

    json_object_object_add(
        data, "task", json_object_new_string("</script><script>alert(1)&"));
    out = open_memstream(&text, &len);
    assert_int_equal(report_write_html(data, out, err, sizeof(err)), 0);
    fclose(out);
    assert_non_null(strstr(text, "\\u003c/script\\u003e\\u003cscript\\u003e"
                                 "alert(1)\\u0026"));
    assert_null(strstr(text, "<script>alert"));
    assert_non_null(strstr(text, "var s = \"<\\/script>\";"));
    free(text);

    unlink(file);
    snprintf(file, sizeof(file), "%s/dashboard.js", dir);
    unlink(file);
    rmdir(dir);
    out = open_memstream(&text, &len);
    assert_int_equal(report_write_html(data, out, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "make dashboard"));
    fclose(out);
    free(text);
    unsetenv("TOLLGATE_DASHBOARD_DIR");
    json_object_put(data);
}

int main(void)
{
#define WITH_LEDGER(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        WITH_LEDGER(test_report_applies_feedback_rework_and_retries),
        WITH_LEDGER(test_report_compares_with_the_previous_period),
        WITH_LEDGER(test_report_leaks_have_exact_dollars),
        WITH_LEDGER(test_rollup_agrees_with_a_full_scan),
        WITH_LEDGER(test_report_groups_by_day_with_iso_keys),
        cmocka_unit_test(test_html_page_keeps_names_inert),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
