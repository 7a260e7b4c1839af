/*
 * Tests of `tollgate report`: exact spend, cost per useful outcome and
 * percentiles per group from a ledger of known outcomes, in each format.
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

#include "ledger/ledger.h"
#include "report/report.h"

#define T0 INT64_C(1793491200000) /* 2026-11-01T00:00:00Z */
#define HOUR INT64_C(3600000)
#define DAY (24 * HOUR)

typedef struct fixture {
    char dir[64];
    char path[96];
} fixture_t;

typedef struct spec {
    const char *task;
    const char *model;
    const char *team;
    int64_t started_ms;
    int http_status;
    cost_status_t cost_status;
    pico_t cost;
    bool useful;
    int n_attempts;
    int64_t latency_ms;
    int64_t ttfb_ms;
    int64_t input, cached, output, reasoning;
} spec_t;

/*
 * The ledger every test reads. Sorted by task, model the groups are
 * contract-summary/claude-x, contract-summary/gpt-4o, ticket-triage/"",
 * ticket-triage/gpt-4o, ticket-triage/gpt-4o-mini.
 */
static const spec_t outcomes[] = {
    {"ticket-triage", "gpt-4o-mini", "support", T0 + 1 * HOUR, 200, COST_PRICED,
     1000000, true, 1, 100, 20, 1000, 200, 50, 0},
    {"ticket-triage", "gpt-4o-mini", "support", T0 + 2 * HOUR, 200, COST_PRICED,
     2000003, true, 2, 300, 40, 2000, 0, 70, 10},
    {"ticket-triage", "gpt-4o-mini", "support", T0 + 3 * HOUR, 502,
     COST_USAGE_MISSING, 0, false, 3, 900, -1, 0, 0, 0, 0},
    {"ticket-triage", "gpt-4o", "support", T0 + 4 * HOUR, 200, COST_PRICED,
     5000002, true, 1, 1000, 200, 400, 0, 30, 0},
    {"contract-summary", "claude-x", "legal", T0 + 5 * HOUR, 200, COST_UNPRICED,
     0, true, 1, 2000, 500, 9000, 0, 800, 0},
    {"contract-summary", "gpt-4o", "legal", T0 - 2 * DAY, 200, COST_PRICED,
     7000000, false, 1, 1500, 300, 5000, 1000, 600, 0},
    {"ticket-triage", "", "support", T0 + 6 * HOUR, 429, COST_NONE, 0, false, 0,
     1, -1, 0, 0, 0, 0},
};

#define N_OUTCOMES (sizeof(outcomes) / sizeof(outcomes[0]))

static void fill_outcome(int i, const spec_t *spec, ledger_outcome_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "out_%024x", i + 1);
    out->started_ms = spec->started_ms;
    snprintf(out->endpoint, sizeof(out->endpoint), "chat.completions");
    snprintf(out->key_id, sizeof(out->key_id), "key-%s", spec->team);
    snprintf(out->team, sizeof(out->team), "%s", spec->team);
    snprintf(out->owner, sizeof(out->owner), "owner-%s", spec->team);
    snprintf(out->task, sizeof(out->task), "%s", spec->task);
    snprintf(out->requested_model, sizeof(out->requested_model), "%s",
             spec->model);
    snprintf(out->model, sizeof(out->model), "%s", spec->model);
    out->http_status = spec->http_status;
    out->useful = spec->useful;
    out->usage.present = spec->cost_status != COST_USAGE_MISSING;
    out->usage.input_tokens = spec->input;
    out->usage.cached_tokens = spec->cached;
    out->usage.output_tokens = spec->output;
    out->usage.reasoning_tokens = spec->reasoning;
    out->cost_status = spec->cost_status;
    out->cost = spec->cost;
    out->latency_ms = spec->latency_ms;
    out->ttfb_ms = spec->ttfb_ms;
    out->n_attempts = spec->n_attempts;
    for (int a = 0; a < spec->n_attempts; a++) {
        out->attempts[a].attempt_no = a + 1;
        out->attempts[a].cost_status = spec->cost_status;
        out->attempts[a].started_ms = spec->started_ms;
    }
}

static void append_specs(ledger_t *ledger, const spec_t *specs, size_t n,
                         int first_id)
{
    ledger_outcome_t out;

    for (size_t i = 0; i < n; i++) {
        fill_outcome(first_id + (int)i, &specs[i], &out);
        assert_int_equal(ledger_admit(ledger), 0);
        ledger_append(ledger, &out);
    }
}

static int setup_ledger(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    char err[256] = "";
    ledger_t *ledger;

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/tollgate-report-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/ledger.db", fx->dir);

    ledger = ledger_open(fx->path, 64, err, sizeof(err));
    if (ledger == NULL)
        fail_msg("ledger_open: %s", err);
    append_specs(ledger, outcomes, N_OUTCOMES, 0);
    ledger_close(ledger);
    *state = fx;
    return 0;
}

static int teardown_ledger(void **state)
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

/* Runs `report ARGS...` with now injected; returns the output (caller
 * frees) and asserts success. */
static char *run_report(const char *path, int64_t now_ms, ...)
{
    char *argv[16] = {"report", "--ledger", (char *)path};
    int argc = 3;
    report_opts_t opts;
    char err[256] = "";
    char *text = NULL;
    size_t len = 0;
    FILE *out;
    va_list ap;

    va_start(ap, now_ms);
    while ((argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);

    if (report_parse_args(argc, argv, now_ms, &opts, stdout, err,
                          sizeof(err)) != 0)
        fail_msg("report_parse_args: %s", err);
    out = open_memstream(&text, &len);
    assert_non_null(out);
    if (report_run(&opts, out, err, sizeof(err)) != 0)
        fail_msg("report_run: %s", err);
    fclose(out);
    return text;
}

static json_object *parse_json(const char *text)
{
    json_object *root = json_tokener_parse(text);

    if (root == NULL)
        fail_msg("not JSON: %s", text);
    return root;
}

static json_object *field(json_object *obj, const char *name)
{
    json_object *value = NULL;

    if (!json_object_object_get_ex(obj, name, &value))
        fail_msg("no field %s", name);
    return value;
}

static int64_t int_field(json_object *obj, const char *name)
{
    json_object *value = field(obj, name);

    assert_true(json_object_is_type(value, json_type_int));
    return json_object_get_int64(value);
}

static const char *str_field(json_object *obj, const char *name)
{
    json_object *value = field(obj, name);

    assert_true(json_object_is_type(value, json_type_string));
    return json_object_get_string(value);
}

static void assert_null_field(json_object *obj, const char *name)
{
    assert_null(field(obj, name));
}

static void test_report_json_by_task_model_has_exact_figures(void **state)
{
    fixture_t *fx = *state;
    char *text = run_report(fx->path, T0 + DAY, "--format", "json", NULL);
    json_object *root = parse_json(text);
    json_object *rows = field(root, "rows");
    json_object *mini, *total;

    assert_int_equal(json_object_array_length(rows), 5);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(
                            field(root, "group_by"), 1)),
                        "model");
    assert_null_field(field(root, "window"), "since");

    /* ticket-triage / gpt-4o-mini: two priced, one cut stream. */
    mini = json_object_array_get_idx(rows, 4);
    assert_string_equal(str_field(mini, "task"), "ticket-triage");
    assert_string_equal(str_field(mini, "model"), "gpt-4o-mini");
    assert_int_equal(int_field(mini, "outcomes"), 3);
    assert_int_equal(int_field(mini, "attempts"), 6);
    assert_int_equal(int_field(mini, "errors"), 1);
    assert_int_equal(int_field(mini, "input_tokens"), 3000);
    assert_int_equal(int_field(mini, "cached_tokens"), 200);
    assert_int_equal(int_field(mini, "output_tokens"), 120);
    assert_int_equal(int_field(mini, "reasoning_tokens"), 10);
    assert_string_equal(str_field(mini, "spend_usd"), "0.000003000003");
    assert_int_equal(int_field(mini, "spend_pico"), 3000003);
    assert_int_equal(int_field(mini, "unpriced"), 1);
    assert_int_equal(int_field(mini, "useful"), 2);
    /* 3000003 / 2 = 1500001.5: half to even gives 1500002. */
    assert_string_equal(str_field(mini, "cost_per_useful_usd"),
                        "0.000001500002");
    assert_int_equal(int_field(mini, "cost_per_useful_pico"), 1500002);
    assert_int_equal(int_field(mini, "latency_p50_ms"), 300);
    assert_int_equal(int_field(mini, "latency_p95_ms"), 900);
    assert_int_equal(int_field(mini, "ttfb_p50_ms"), 20);

    /* The unpriced model: spend unknown, so no figure (never $0), and the
     * outcome counted apart. */
    assert_string_equal(str_field(json_object_array_get_idx(rows, 0), "model"),
                        "claude-x");
    assert_null_field(json_object_array_get_idx(rows, 0), "spend_pico");
    assert_null_field(json_object_array_get_idx(rows, 0), "spend_usd");
    assert_null_field(json_object_array_get_idx(rows, 0),
                      "cost_per_useful_pico");
    assert_int_equal(int_field(json_object_array_get_idx(rows, 0), "unpriced"),
                     1);

    total = field(root, "total");
    assert_null(json_object_object_get(total, "task"));
    assert_int_equal(int_field(total, "outcomes"), 7);
    assert_int_equal(int_field(total, "attempts"), 9);
    assert_int_equal(int_field(total, "errors"), 2);
    assert_int_equal(int_field(total, "spend_pico"), 15000005);
    assert_string_equal(str_field(total, "spend_usd"), "0.000015000005");
    assert_int_equal(int_field(total, "unpriced"), 2);
    assert_int_equal(int_field(total, "useful"), 4);
    /* Known spend over the 3 useful outcomes whose cost is known:
     * 15000005 / 3 = 5000001.67, so 5000002. */
    assert_int_equal(int_field(total, "cost_per_useful_pico"), 5000002);
    assert_int_equal(int_field(total, "latency_p50_ms"), 900);
    assert_int_equal(int_field(total, "latency_p95_ms"), 2000);
    assert_int_equal(int_field(total, "ttfb_p50_ms"), 200);

    json_object_put(root);
    free(text);
}

static void test_report_no_useful_outcome_has_no_cost_per_useful(void **state)
{
    fixture_t *fx = *state;
    char *text = run_report(fx->path, T0 + DAY, "--format", "json", NULL);
    json_object *root = parse_json(text);
    json_object *rows = field(root, "rows");
    json_object *gpt4o = json_object_array_get_idx(rows, 1);
    json_object *refused = json_object_array_get_idx(rows, 2);

    assert_string_equal(str_field(gpt4o, "model"), "gpt-4o");
    assert_int_equal(int_field(gpt4o, "useful"), 0);
    assert_int_equal(int_field(gpt4o, "spend_pico"), 7000000);
    assert_null_field(gpt4o, "cost_per_useful_usd");
    assert_null_field(gpt4o, "cost_per_useful_pico");

    /* A refusal: no upstream call, no first byte, not "unpriced". */
    assert_string_equal(str_field(refused, "model"), "");
    assert_int_equal(int_field(refused, "unpriced"), 0);
    assert_int_equal(int_field(refused, "errors"), 1);
    assert_int_equal(int_field(refused, "attempts"), 0);
    assert_int_equal(int_field(refused, "latency_p50_ms"), 1);
    assert_null_field(refused, "ttfb_p50_ms");

    json_object_put(root);
    free(text);
}

static void test_report_csv_by_team_is_exact(void **state)
{
    fixture_t *fx = *state;
    char *text =
        run_report(fx->path, T0 + DAY, "--by", "team", "--format", "csv", NULL);

    assert_string_equal(
        text,
        "team,outcomes,attempts,errors,input_tokens,cached_tokens,"
        "output_tokens,reasoning_tokens,spend_usd,spend_pico,unpriced,"
        "unpriced_tokens,estimated,estimate_usd,estimate_pico,"
        "useful,cost_per_useful_usd,cost_per_useful_pico,latency_p50_ms,"
        "latency_p95_ms,ttfb_p50_ms,checks_passed,feedback,"
        "feedback_negative,extra_attempts,repeats,retry_spend_pico,"
        "trimmed_tokens,trim_saved_usd,cache_hits,check_pass_rate,"
        "feedback_rate,rework_rate,retry_spend_usd\n"
        "legal,2,2,0,14000,1000,1400,0,0.000007000000,7000000,1,9800,0,"
        "0.000000000000,0,1,n/a,n/a,1500,2000,300,1,0,0,0,0,0,0,"
        "0.000000000000,n/a,0.5000,0.0000,0.0000,0.000000000000\n"
        "support,5,7,2,3400,200,150,10,0.000008000005,8000005,1,0,0,"
        "0.000000000000,0,3,0.000002666668,2666668,300,1000,40,3,0,0,3,"
        "0,0,0,0.000000000000,n/a,0.6000,0.0000,0.6000,0.000000000000\n"
        "TOTAL,7,9,2,17400,1200,1550,10,0.000015000005,15000005,2,9800,"
        "0,0.000000000000,0,4,0.000005000002,5000002,900,2000,200,4,0,0,"
        "3,0,0,0,0.000000000000,n/a,0.5714,0.0000,0.4286,0.000000000000\n");
    free(text);
}

static void test_report_csv_shows_na_without_useful(void **state)
{
    fixture_t *fx = *state;
    char *text = run_report(fx->path, T0 + DAY, "--by", "model,task",
                            "--format=csv", NULL);

    assert_non_null(strstr(text, "\ngpt-4o,contract-summary,1,1,0,5000,1000,"
                                 "600,0,0.000007000000,7000000,0,0,0,"
                                 "0.000000000000,0,0,n/a,n/a,"
                                 "1500,1500,300,0,0,0,0,0,0,0,"
                                 "0.000000000000,n/a,"
                                 "0.0000,0.0000,0.0000,0.000000000000\n"));
    assert_non_null(strstr(text, "\n,ticket-triage,1,0,1,0,0,0,0,"
                                 "0.000000000000,0,0,0,0,0.000000000000,0,0,"
                                 "n/a,n/a,1,1,n/a,0,0,0,0,0,0,0,"
                                 "0.000000000000,n/a,"
                                 "0.0000,0.0000,0.0000,0.000000000000\n"));
    assert_non_null(strstr(text, "\nTOTAL,,7,"));
    free(text);
}

static void test_report_since_uses_the_injected_now(void **state)
{
    fixture_t *fx = *state;
    char *text = run_report(fx->path, T0 + DAY, "--since", "24h", "--format",
                            "json", NULL);
    json_object *root = parse_json(text);
    json_object *window = field(root, "window");
    json_object *total = field(root, "total");

    assert_string_equal(str_field(window, "since"), "2026-11-01T00:00:00Z");
    assert_int_equal(int_field(window, "since_ms"), T0);
    assert_null_field(window, "until");
    assert_int_equal(json_object_array_length(field(root, "rows")), 4);
    assert_int_equal(int_field(total, "outcomes"), 6);
    assert_int_equal(int_field(total, "spend_pico"), 8000005);
    /* 8000005 over the 3 useful outcomes of known cost. */
    assert_int_equal(int_field(total, "cost_per_useful_pico"), 2666668);
    assert_int_equal(int_field(total, "latency_p50_ms"), 300);
    assert_int_equal(int_field(total, "latency_p95_ms"), 2000);
    assert_int_equal(int_field(total, "ttfb_p50_ms"), 40);
    json_object_put(root);
    free(text);

    /* [T0+2h, T0+4h): the second and third outcomes only. */
    text = run_report(fx->path, T0 + DAY, "--since", "2026-11-01T02:00Z",
                      "--until", "2026-11-01T04:00:00Z", "--by", "task",
                      "--format", "json", NULL);
    root = parse_json(text);
    total = field(root, "total");
    assert_int_equal(int_field(total, "outcomes"), 2);
    assert_int_equal(int_field(total, "spend_pico"), 2000003);
    assert_int_equal(int_field(total, "cost_per_useful_pico"), 2000003);
    json_object_put(root);
    free(text);
}

static void test_report_table_is_aligned(void **state)
{
    fixture_t *fx = *state;
    char *text = run_report(fx->path, T0 + DAY, "--since", "2026-10-01", NULL);
    char *line, *save = NULL;
    size_t width = 0;
    int table_lines = 0;

    assert_non_null(strstr(text, "ledger "));
    assert_non_null(strstr(text, "\nwindow from 2026-10-01T00:00:00Z"
                                 " (inclusive), no end\n"));
    assert_non_null(strstr(text, "\nTASK "));
    assert_non_null(strstr(text, "\nTOTAL "));
    assert_non_null(strstr(text, "0.000015  "));
    assert_non_null(strstr(text, "Spend leaves out 2 outcomes (9800 tokens) "
                                 "whose exact cost is unknown, not $0."));

    /* Every table line has the same width: numbers align right. */
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "TASK ", 5) != 0 &&
            strncmp(line, "ticket-", 7) != 0 &&
            strncmp(line, "contract-", 9) != 0 &&
            strncmp(line, "TOTAL ", 6) != 0)
            continue;
        if (width == 0)
            width = strlen(line);
        assert_int_equal(strlen(line), width);
        table_lines++;
    }
    assert_int_equal(table_lines, 7);
    free(text);
}

static void test_report_reads_while_the_ledger_is_open(void **state)
{
    fixture_t *fx = *state;
    static const spec_t more[] = {
        {"ticket-triage", "gpt-4o-mini", "support", T0 + 7 * HOUR, 200,
         COST_PRICED, 10, true, 1, 50, 5, 1, 0, 1, 0},
    };
    char err[256] = "";
    ledger_t *ledger = ledger_open(fx->path, 8, err, sizeof(err));
    char *text;
    json_object *root;

    assert_non_null(ledger);
    append_specs(ledger, more, 1, 100);
    ledger_flush(ledger);

    text = run_report(fx->path, T0 + DAY, "--by", "owner", "--format", "json",
                      NULL);
    root = parse_json(text);
    assert_int_equal(int_field(field(root, "total"), "outcomes"), 8);
    assert_int_equal(int_field(field(root, "total"), "spend_pico"), 15000015);
    assert_string_equal(
        str_field(json_object_array_get_idx(field(root, "rows"), 1), "owner"),
        "owner-support");
    json_object_put(root);
    free(text);
    ledger_close(ledger);
}

static void test_report_csv_defuses_formulas_and_quotes(void **state)
{
    fixture_t *fx = *state;
    static const spec_t odd[] = {
        {"=HYPERLINK(\"x\")", "m", "t", T0, 200, COST_PRICED, 1, true, 1, 1, 1,
         0, 0, 0, 0},
        {"a,b", "m", "t", T0, 200, COST_PRICED, 1, true, 1, 1, 1, 0, 0, 0, 0},
    };
    char err[256] = "";
    ledger_t *ledger = ledger_open(fx->path, 8, err, sizeof(err));
    char *text;

    assert_non_null(ledger);
    append_specs(ledger, odd, 2, 200);
    ledger_close(ledger);

    text =
        run_report(fx->path, T0 + DAY, "--by", "task", "--format", "csv", NULL);
    assert_non_null(strstr(text, "\n\"'=HYPERLINK(\"\"x\"\")\",1,"));
    assert_non_null(strstr(text, "\n\"a,b\",1,"));
    free(text);
}

/* 1,000 outcomes in one group, latencies 1..1000 in scrambled order
 * with every tenth one repeated: nearest rank over 1,100 samples. */
static void test_report_percentiles_are_nearest_rank(void **state)
{
    fixture_t *fx = *state;
    char err[256] = "";
    ledger_t *ledger = ledger_open(fx->path, 2048, err, sizeof(err));
    spec_t spec = {
        "load", "m", "t", T0 + 8 * HOUR, 200, COST_PRICED, 1, true, 1, 0, 0, 0,
        0,      0,   0};
    char *text;
    json_object *root, *row;

    assert_non_null(ledger);
    for (int i = 0; i < 1100; i++) {
        spec.latency_ms = (i * 7919) % 1000 + 1;
        if (i >= 1000)
            spec.latency_ms = (i - 1000) * 10 + 1;
        spec.ttfb_ms = i % 2 ? -1 : spec.latency_ms;
        append_specs(ledger, &spec, 1, 1000 + i);
    }
    ledger_close(ledger);

    text = run_report(fx->path, T0 + DAY, "--by", "task", "--since",
                      "2026-11-01T08:00Z", "--format", "json", NULL);
    root = parse_json(text);
    row = json_object_array_get_idx(field(root, "rows"), 0);
    /* Sorted: 1, 1, 2..10, 11, 11, ...: value v sits at rank
     * v + ceil(v / 10). p50 is rank 550 -> 500; p95 rank 1045 -> 950. */
    assert_int_equal(int_field(row, "outcomes"), 1100);
    assert_int_equal(int_field(row, "latency_p50_ms"), 500);
    assert_int_equal(int_field(row, "latency_p95_ms"), 950);
    /* Even i only: odd values once, 1, 21, ..., 981 twice; rank 275. */
    assert_int_equal(int_field(row, "ttfb_p50_ms"), 499);
    assert_int_equal(int_field(row, "cost_per_useful_pico"), 1);
    json_object_put(root);
    free(text);
}

static void test_report_parse_time_accepts_iso_and_spans(void **state)
{
    int64_t ms = 0;
    int64_t now = T0 + 12 * HOUR;

    (void)state;
    assert_int_equal(report_parse_time("2026-11-01", now, &ms), 0);
    assert_int_equal(ms, T0);
    assert_int_equal(report_parse_time("2026-11-01T09:00Z", now, &ms), 0);
    assert_int_equal(ms, INT64_C(1793523600000));
    assert_int_equal(report_parse_time("2026-11-01T09:00:00Z", now, &ms), 0);
    assert_int_equal(ms, INT64_C(1793523600000));
    assert_int_equal(report_parse_time("2026-11-01T11:00:00+02:00", now, &ms),
                     0);
    assert_int_equal(ms, INT64_C(1793523600000));
    assert_int_equal(report_parse_time("2024-02-29T23:59:59Z", now, &ms), 0);
    assert_int_equal(ms, INT64_C(1709251199000));
    assert_int_equal(report_parse_time("1969-12-31", now, &ms), 0);
    assert_int_equal(ms, -DAY);

    assert_int_equal(report_parse_time("24h", now, &ms), 0);
    assert_int_equal(ms, now - DAY);
    assert_int_equal(report_parse_time("7d", now, &ms), 0);
    assert_int_equal(ms, now - 7 * DAY);
    assert_int_equal(report_parse_time("30m", now, &ms), 0);
    assert_int_equal(ms, now - 30 * 60000);

    assert_int_equal(report_parse_time("2026-02-29", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("2026-11-01T25:00Z", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("2026-11-01T09:00", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("2026-11-01x", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("24", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("h", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("3y", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("1234567890d", now, &ms), -EINVAL);
    assert_int_equal(report_parse_time("", now, &ms), -EINVAL);
}

/* Parses argv; returns the code and leaves the message in err. */
static int parse(char *err, size_t errlen, int argc, ...)
{
    char *argv[16];
    report_opts_t opts;
    va_list ap;

    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    err[0] = '\0';
    return report_parse_args(argc, argv, T0, &opts, stdout, err, errlen);
}

static void test_report_rejects_bad_arguments(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(parse(err, sizeof(err), 1, "report"), -EINVAL);
    assert_non_null(strstr(err, "--ledger FILE is required"));
    assert_int_equal(parse(err, sizeof(err), 2, "report", "--ledger"), -EINVAL);
    assert_non_null(strstr(err, "--ledger needs a value"));
    assert_int_equal(parse(err, sizeof(err), 5, "report", "--ledger", "x",
                           "--by", "task,colour"),
                     -EINVAL);
    assert_non_null(strstr(err, "'colour'"));
    assert_int_equal(parse(err, sizeof(err), 5, "report", "--ledger", "x",
                           "--by", "task,task"),
                     -EINVAL);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(
        parse(err, sizeof(err), 5, "report", "--ledger", "x", "--by", "task,"),
        -EINVAL);
    assert_int_equal(parse(err, sizeof(err), 5, "report", "--ledger", "x",
                           "--format", "xml"),
                     -EINVAL);
    assert_non_null(strstr(err, "table, csv, json or html"));
    assert_int_equal(parse(err, sizeof(err), 5, "report", "--ledger", "x",
                           "--since", "yesterday"),
                     -EINVAL);
    assert_non_null(strstr(err, "--since yesterday: not a time"));
    assert_int_equal(parse(err, sizeof(err), 7, "report", "--ledger", "x",
                           "--since", "1h", "--until", "2h"),
                     -EINVAL);
    assert_non_null(strstr(err, "before --until"));
    assert_int_equal(
        parse(err, sizeof(err), 4, "report", "--ledger", "x", "--verbose"),
        -EINVAL);
    assert_non_null(strstr(err, "unknown argument '--verbose'"));
    assert_int_equal(parse(err, sizeof(err), 5, "report", "--ledger", "x",
                           "--by", "key,owner"),
                     0);
}

static void test_report_main_exit_codes(void **state)
{
    fixture_t *fx = *state;
    char missing[160];
    char *bad_usage[] = {"report", "--format", "xml"};
    char *no_file[] = {"report", "--ledger", missing};
    char *ok[] = {"report", "--ledger", fx->path, "--format", "csv"};
    FILE *saved = stdout;
    char *text = NULL;
    size_t len = 0;

    snprintf(missing, sizeof(missing), "%s/none.db", fx->dir);
    assert_int_equal(report_main(3, bad_usage), 2);
    assert_int_equal(report_main(3, no_file), 1);
    assert_int_equal(access(missing, F_OK), -1);

    stdout = open_memstream(&text, &len);
    assert_int_equal(report_main(5, ok), 0);
    fclose(stdout);
    stdout = saved;
    assert_non_null(strstr(text, "\nTOTAL,,7,"));
    free(text);
}

static void test_report_refuses_a_file_that_is_not_a_ledger(void **state)
{
    fixture_t *fx = *state;
    char path[160];
    char err[256] = "";
    report_opts_t opts;
    report_t report;
    FILE *f;

    snprintf(path, sizeof(path), "%s/plain.txt", fx->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not sqlite\n", f);
    fclose(f);

    char *argv[] = {"report", "--ledger", path};
    assert_int_equal(
        report_parse_args(3, argv, T0, &opts, stdout, err, sizeof(err)), 0);
    assert_int_equal(report_query(&opts, &report, err, sizeof(err)), -EIO);
    assert_non_null(strstr(err, path));
    report_free(&report);
    unlink(path);
}

int main(void)
{
#define TEST(fn)                                                               \
    cmocka_unit_test_setup_teardown(fn, setup_ledger, teardown_ledger)
    const struct CMUnitTest tests[] = {
        TEST(test_report_json_by_task_model_has_exact_figures),
        TEST(test_report_no_useful_outcome_has_no_cost_per_useful),
        TEST(test_report_csv_by_team_is_exact),
        TEST(test_report_csv_shows_na_without_useful),
        TEST(test_report_since_uses_the_injected_now),
        TEST(test_report_table_is_aligned),
        TEST(test_report_reads_while_the_ledger_is_open),
        TEST(test_report_csv_defuses_formulas_and_quotes),
        TEST(test_report_percentiles_are_nearest_rank),
        cmocka_unit_test(test_report_parse_time_accepts_iso_and_spans),
        cmocka_unit_test(test_report_rejects_bad_arguments),
        TEST(test_report_main_exit_codes),
        TEST(test_report_refuses_a_file_that_is_not_a_ledger),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
