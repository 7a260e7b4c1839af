/*
 * Tests of /metrics: exact counters and spend per task, model and team,
 * the latency histogram, bounded labels, escaping, upstream errors by
 * provider and the ledger's health lines, in Prometheus' text format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/metrics.h"
#include "util/clock.h"

static void outcome(ledger_outcome_t *o, const char *task, const char *model,
                    const char *team, int status, pico_t cost, int64_t ms)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->task, sizeof(o->task), "%s", task);
    snprintf(o->model, sizeof(o->model), "%s", model);
    snprintf(o->team, sizeof(o->team), "%s", team);
    o->http_status = status;
    o->useful = status == 200;
    o->cost_status = COST_PRICED;
    o->cost = cost;
    o->latency_ms = ms;
    o->usage.input_tokens = 100;
    o->usage.cached_tokens = 40;
    o->usage.output_tokens = 7;
    o->n_attempts = 1;
    snprintf(o->attempts[0].provider, sizeof(o->attempts[0].provider),
             "openai");
    o->attempts[0].http_status = status;
}

static char *render(const metrics_t *m, const metrics_health_t *h)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    assert_int_equal(metrics_render(m, h, out), 0);
    fclose(out);
    return text;
}

static void assert_line(const char *text, const char *line)
{
    char *want = NULL;

    assert_true(asprintf(&want, "\n%s\n", line) > 0);
    if (strstr(text, want) == NULL)
        fail_msg("no line '%s' in:\n%s", line, text);
    free(want);
}

static void test_metrics_count_calls_tokens_and_exact_spend(void **state)
{
    metrics_t *m = metrics_new(0);
    metrics_health_t h = {0};
    ledger_outcome_t o;
    char *text;

    (void)state;
    outcome(&o, "triage", "fast", "support", 200, 123450000, 40);
    metrics_observe(m, &o);
    outcome(&o, "triage", "fast", "support", 502, 1, 2600);
    o.error_type[0] = 'x';
    metrics_observe(m, &o);
    outcome(&o, "triage", "fast", "support", 200, 0, 100);
    o.cost_status = COST_UNPRICED;
    metrics_observe(m, &o);
    text = render(m, &h);

    assert_non_null(strstr(text, "# TYPE tollgate_calls_total counter\n"));
    assert_line(text, "tollgate_calls_total{task=\"triage\",model=\"fast\","
                      "team=\"support\"} 3");
    assert_line(text, "tollgate_errors_total{task=\"triage\",model=\"fast\","
                      "team=\"support\"} 1");
    assert_line(text, "tollgate_unpriced_total{task=\"triage\",model=\"fast\","
                      "team=\"support\"} 1");
    assert_line(text, "tollgate_input_tokens_total{task=\"triage\","
                      "model=\"fast\",team=\"support\"} 300");
    assert_line(text, "tollgate_spend_usd_total{task=\"triage\","
                      "model=\"fast\",team=\"support\"} 0.000123450001");
    assert_line(text, "tollgate_call_duration_seconds_bucket{task=\"triage\","
                      "model=\"fast\",team=\"support\",le=\"0.050\"} 1");
    assert_line(text, "tollgate_call_duration_seconds_bucket{task=\"triage\","
                      "model=\"fast\",team=\"support\",le=\"2.500\"} 2");
    assert_line(text, "tollgate_call_duration_seconds_bucket{task=\"triage\","
                      "model=\"fast\",team=\"support\",le=\"5.000\"} 3");
    assert_line(text, "tollgate_call_duration_seconds_sum{task=\"triage\","
                      "model=\"fast\",team=\"support\"} 2.740");
    assert_line(text,
                "tollgate_upstream_attempts_total{provider=\"openai\"} 3");
    assert_line(text, "tollgate_upstream_errors_total{provider=\"openai\"} 1");
    free(text);
    metrics_free(m);
}

static void test_metrics_labels_are_bounded_and_escaped(void **state)
{
    metrics_t *m = metrics_new(2);
    metrics_health_t h = {0};
    ledger_outcome_t o;
    char *text;

    (void)state;
    outcome(&o, "a\"b\\c", "m1", "t", 200, 1, 1);
    metrics_observe(m, &o);
    outcome(&o, "second", "m1", "t", 200, 1, 1);
    metrics_observe(m, &o);
    outcome(&o, "third", "m1", "t", 200, 1, 1);
    metrics_observe(m, &o);
    outcome(&o, "fourth", "m1", "t", 200, 1, 1);
    metrics_observe(m, &o);
    text = render(m, &h);

    assert_line(text, "tollgate_calls_total{task=\"a\\\"b\\\\c\",model=\"m1\","
                      "team=\"t\"} 1");
    assert_line(text, "tollgate_calls_total{task=\"other\",model=\"m1\","
                      "team=\"t\"} 2");
    assert_null(strstr(text, "third"));
    free(text);
    metrics_free(m);
}

static void test_metrics_ledger_lag_is_the_oldest_uncommitted(void **state)
{
    metrics_t *m = metrics_new(0);
    metrics_health_t h = {0};
    ledger_outcome_t o;
    char *text;

    (void)state;
    outcome(&o, "t", "m", "x", 200, 1, 1);
    metrics_observe(m, &o);
    metrics_observe(m, &o);
    h.has_ledger = true;
    h.ledger.capacity = 64;
    h.ledger.queued = 1;
    h.ledger.written = 1;
    h.calls_in_flight = 3;
    /* The second record was observed "now" on the monotonic clock; the
     * render happens 1,234 ms later. */
    h.now_mono_ms = clock_mono_ms() + 1234;
    text = render(m, &h);
    assert_line(text, "tollgate_ledger_queue_depth 1");
    assert_line(text, "tollgate_ledger_capacity 64");
    assert_line(text, "tollgate_calls_in_flight 3");
    assert_line(text, "tollgate_ledger_written_total 1");
    assert_non_null(strstr(text, "\ntollgate_ledger_lag_seconds 1.2"));
    free(text);

    h.ledger.written = 2;
    text = render(m, &h);
    assert_line(text, "tollgate_ledger_lag_seconds 0.000");
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_count_calls_tokens_and_exact_spend),
        cmocka_unit_test(test_metrics_labels_are_bounded_and_escaped),
        cmocka_unit_test(test_metrics_ledger_lag_is_the_oldest_uncommitted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
