/*
 * Tests of the audit: workflow normalisation, every importer (with its
 * malformed lines named by number), and each leak's arithmetic in exact
 * picodollars at the built-in prices; replay's mapping of calls to the
 * gateway config's tasks and their cascade.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "audit/internal.h"
#include "audit/policy.h"
#include "audit/tasks.h"

#define T0 INT64_C(1793491200) /* 2026-11-01T00:00:00Z */

/* gpt-4o: $2.50 in, $1.25 cached, $10 out per million tokens. */
#define GPT4O_IN INT64_C(2500000)
#define GPT4O_CACHED INT64_C(1250000)
#define GPT4O_OUT INT64_C(10000000)
#define MINI_IN INT64_C(150000)
#define MINI_OUT INT64_C(600000)

static void norm_is(const char *in, const char *want)
{
    char out[256];

    audit_normalise(in, strlen(in), out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_normalise_numbers_ids_quotes_emails(void **state)
{
    (void)state;
    norm_is("Ticket #1234 at 2026-11-01 09:30", "Ticket ## at #-#-# #:#");
    norm_is("order A7F3K9Q2 for bob@example.com", "order # for @");
    norm_is("name \"Ada Lovelace\" and 'x y'", "name \"*\" and '*'");
    norm_is("id 123e4567-e89b-12d3-a456-426614174000 ok", "id # ok");
    norm_is("  many   spaces\n\nhere ", "many spaces here ");
    norm_is("it's v2 of gpt4o", "it's v# of gpt#o");
}

static void test_workflow_same_template_same_hash(void **state)
{
    audit_call_t a = {0}, b = {0}, c = {0};
    const char *sys1 = "Classify ticket 17 for customer \"Acme\".";
    const char *sys2 = "Classify ticket 9921 for customer \"Initech\".";
    const char *sys3 = "Summarise ticket 17.";

    (void)state;
    audit_set_workflow(&a, sys1, strlen(sys1), "x", 1, "x", 1);
    audit_set_workflow(&b, sys2, strlen(sys2), "y", 1, "y", 1);
    audit_set_workflow(&c, sys3, strlen(sys3), "x", 1, "x", 1);
    assert_int_equal(a.workflow, b.workflow);
    assert_int_not_equal(a.workflow, c.workflow);
    assert_int_not_equal(a.turn_hash, b.turn_hash);
    assert_string_equal(a.label, "Classify ticket # for customer \"*\".");
}

static void test_workflow_without_system_uses_user_head(void **state)
{
    audit_call_t a = {0}, b = {0};
    const char *u1 = "Translate: the cat sleeps";
    const char *u2 = "Translate: a dog barks at 3 am";

    (void)state;
    audit_set_workflow(&a, NULL, 0, u1, strlen(u1), u1, strlen(u1));
    audit_set_workflow(&b, NULL, 0, u2, strlen(u2), u2, strlen(u2));
    assert_int_equal(a.workflow, b.workflow);
    assert_string_equal(a.label, "Translate");
}

static void test_parse_usd_exact(void **state)
{
    pico_t v = 0;

    (void)state;
    assert_int_equal(audit_parse_usd("0.00045", 7, &v), 0);
    assert_int_equal(v, INT64_C(450000000));
    assert_int_equal(audit_parse_usd("4.5e-04", 7, &v), 0);
    assert_int_equal(v, INT64_C(450000000));
    /* 13th decimal: half to even. */
    assert_int_equal(audit_parse_usd("0.0000000000025", 15, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(audit_parse_usd("0.0000000000035", 15, &v), 0);
    assert_int_equal(v, 4);
    assert_int_equal(audit_parse_usd("12", 2, &v), 0);
    assert_int_equal(v, 12 * PICO_PER_USD);
    assert_int_equal(audit_parse_usd("abc", 3, &v), -EINVAL);
    assert_int_equal(audit_parse_usd("", 0, &v), -EINVAL);
}

static void test_scale_half_even(void **state)
{
    (void)state;
    assert_int_equal(audit_scale(10, 1, 4), 2); /* 2.5 -> 2 */
    assert_int_equal(audit_scale(14, 1, 4), 4); /* 3.5 -> 4 */
    assert_int_equal(audit_scale(-10, 1, 4), -2);
    assert_int_equal(audit_scale(1000, 2, 3), 667);
}

/* Writes text to a temporary file; the caller unlinks path. */
static void write_file(char *path, const char *text)
{
    int fd;

    strcpy(path, "/tmp/test_audit_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* Reads every call of a file; returns the reader's stats. */
static audit_read_stats_t read_all(const char *text, audit_call_t *calls,
                                   int max, int *n)
{
    char path[64], err[256];
    audit_reader_t *r;
    audit_read_stats_t stats;

    write_file(path, text);
    r = audit_reader_open(path, err, sizeof(err));
    assert_non_null(r);
    *n = 0;
    while (*n < max && audit_reader_next(r, &calls[*n]) == 1)
        (*n)++;
    stats = *audit_reader_stats(r);
    audit_reader_close(r);
    unlink(path);
    return stats;
}

static void test_jsonl_chat_shapes_and_malformed_lines(void **state)
{
    const char *text =
        "{\"timestamp\": 1793491200, \"owner\": \"alice\", \"request\": "
        "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"system\", "
        "\"content\": \"Triage.\"}, {\"role\": \"user\", \"content\": "
        "\"Ticket 1\"}]}, \"response\": {\"model\": \"gpt-4o\", \"usage\": "
        "{\"prompt_tokens\": 100, \"completion_tokens\": 2}}}\n"
        "{\"request\": {\n"
        "\n"
        "{\"response\": {\"type\": \"message\", \"model\": \"claude-x\", "
        "\"usage\": {\"input_tokens\": 10, \"cache_read_input_tokens\": 5, "
        "\"output_tokens\": 3}}}\n"
        "{\"response\": {\"object\": \"response\", \"model\": \"gpt-4o\", "
        "\"usage\": {\"input_tokens\": 7, \"output_tokens\": 1}}}\n"
        "{\"response\": {\"usage\": {\"prompt_tokens\": -1, "
        "\"completion_tokens\": 1}}}\n"
        "[1, 2]\n";
    audit_call_t calls[8];
    int n;
    audit_read_stats_t s = read_all(text, calls, 8, &n);

    (void)state;
    assert_int_equal(s.format, AUDIT_FMT_JSONL);
    assert_int_equal(n, 3);
    assert_int_equal(s.malformed, 3);
    assert_int_equal(s.bad_lines[0], 2);
    assert_int_equal(s.bad_lines[1], 6);
    assert_int_equal(s.bad_lines[2], 7);
    assert_string_equal(calls[0].owner, "alice");
    assert_int_equal(calls[0].at, T0);
    assert_int_equal(calls[0].usage.input_tokens, 100);
    assert_string_equal(calls[0].label, "Triage.");
    assert_int_equal(calls[1].usage.input_tokens, 15);
    assert_int_equal(calls[1].usage.cached_tokens, 5);
    assert_int_equal(calls[2].usage.output_tokens, 1);
}

static void test_jsonl_without_usage_is_estimated(void **state)
{
    const char *text =
        "{\"request\": {\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\":"
        " \"user\", \"content\": \"Say hello in German.\"}]}, \"response\": "
        "{\"choices\": [{\"message\": {\"content\": \"Hallo\"}}]}}\n";
    audit_call_t calls[2];
    int n;
    audit_read_stats_t s = read_all(text, calls, 2, &n);

    (void)state;
    assert_int_equal(n, 1);
    assert_int_equal(s.estimated, 1);
    assert_true(calls[0].usage.estimated);
    assert_int_equal(calls[0].usage.input_tokens, 5);
    assert_int_equal(calls[0].usage.output_tokens, 1);
}

static void test_batch_output_lines(void **state)
{
    const char *text =
        "{\"id\": \"b1\", \"custom_id\": \"req-1\", \"response\": "
        "{\"status_code\": 200, \"body\": {\"model\": \"gpt-4o-mini\", "
        "\"created\": 1793491200, \"usage\": {\"prompt_tokens\": 1000, "
        "\"completion_tokens\": 100}}}, \"error\": null}\n"
        "{\"id\": \"b2\", \"custom_id\": \"req-2\", \"response\": null, "
        "\"error\": {\"code\": \"batch_expired\"}}\n"
        "{\"custom_id\": \"req-3\", \"method\": \"POST\", \"url\": "
        "\"/v1/chat/completions\", \"body\": {}}\n";
    audit_call_t calls[4];
    int n;
    audit_read_stats_t s = read_all(text, calls, 4, &n);

    (void)state;
    assert_int_equal(n, 2);
    assert_int_equal(s.skipped, 1);
    assert_int_equal(calls[0].usage.service_tier, SERVICE_BATCH);
    assert_true(calls[1].failed);
    assert_true(calls[1].has_cost);
    assert_int_equal(calls[1].cost, 0);
    assert_string_equal(calls[0].label, "req-#");
}

static void test_usage_api_page(void **state)
{
    const char *text =
        "{\n \"object\": \"page\",\n \"data\": [{\"object\": \"bucket\", "
        "\"start_time\": 1793491200, \"results\": [{\"object\": "
        "\"organization.usage.completions.result\", \"input_tokens\": 1000,"
        " \"input_cached_tokens\": 400, \"output_tokens\": 10, "
        "\"num_model_requests\": 5, \"project_id\": \"p1\", \"model\": "
        "\"gpt-4o\", \"batch\": true}]}]\n}\n";
    audit_call_t calls[2];
    int n;
    audit_read_stats_t s = read_all(text, calls, 2, &n);

    (void)state;
    assert_int_equal(s.format, AUDIT_FMT_USAGE_API);
    assert_int_equal(n, 1);
    assert_int_equal(calls[0].count, 5);
    assert_int_equal(calls[0].usage.cached_tokens, 400);
    assert_int_equal(calls[0].usage.service_tier, SERVICE_BATCH);
    assert_string_equal(calls[0].owner, "p1");
}

static void test_litellm_json_and_csv(void **state)
{
    const char *json =
        "[{\"request_id\": \"a\", \"spend\": 0.0123, \"model\": \"x-model\","
        " \"prompt_tokens\": 10, \"completion_tokens\": 2, \"user\": "
        "\"bob\", \"startTime\": \"2026-11-01T00:00:05Z\"},\n"
        " {\"request_id\": \"b\", \"spend\": 0, \"prompt_tokens\": -3}]\n";
    const char *csv =
        "request_id,spend,prompt_tokens,completion_tokens,startTime,model,"
        "user\n"
        "c1,0.00045,100,20,2026-11-03 08:00:00,gpt-4o,\"carol, jr\"\n"
        "c2,0.1,abc,5,2026-11-03 08:00:00,gpt-4o,carol\n"
        "c3,\"0.5\n";
    audit_call_t calls[4];
    int n;
    audit_read_stats_t s = read_all(json, calls, 4, &n);

    (void)state;
    assert_int_equal(s.format, AUDIT_FMT_LITELLM);
    assert_int_equal(n, 1);
    assert_int_equal(s.malformed, 1);
    assert_int_equal(s.bad_lines[0], 2);
    assert_true(calls[0].cost_fallback);
    assert_int_equal(calls[0].cost, INT64_C(12300000000));
    assert_int_equal(calls[0].at, T0 + 5);

    s = read_all(csv, calls, 4, &n);
    assert_int_equal(s.format, AUDIT_FMT_LITELLM_CSV);
    assert_int_equal(n, 1);
    assert_int_equal(s.malformed, 2);
    assert_int_equal(s.bad_lines[0], 3);
    assert_int_equal(s.bad_lines[1], 4);
    assert_string_equal(calls[0].owner, "carol, jr");
    assert_int_equal(calls[0].usage.input_tokens, 100);
}

/* A priced call on gpt-4o for the leak tests. */
static audit_call_t call_at(int64_t at, const char *system, const char *user,
                            int64_t in, int64_t out)
{
    audit_call_t c = {0};

    c.at = at;
    c.count = 1;
    strcpy(c.owner, "alice");
    strcpy(c.model, "gpt-4o");
    audit_set_workflow(&c, system, strlen(system), user, strlen(user), user,
                       strlen(user));
    c.request_hash = audit_hash(c.turn_hash, "r", 1);
    c.usage.present = true;
    c.usage.input_tokens = in;
    c.usage.output_tokens = out;
    return c;
}

static audit_t *new_audit(price_table_t **table)
{
    audit_opts_t opts = {0};

    *table = billing_table_new();
    return audit_new(*table, &opts);
}

static void test_leak_routing_exact(void **state)
{
    price_table_t *table;
    audit_t *a = new_audit(&table);
    audit_totals_t t;
    char user[32];

    (void)state;
    for (int i = 0; i < 20; i++) {
        snprintf(user, sizeof(user), "ticket %d", i);
        audit_call_t c = call_at(T0 + i * 3600, "Classify.", user, 100, 10);
        audit_add(a, &c);
    }
    audit_finish(a, &t);
    /* Each: 100 x 2.5e6 + 10 x 1e7 = 350,000,000 on gpt-4o, and
     * 100 x 150,000 + 10 x 600,000 = 21,000,000 on gpt-4o-mini. */
    assert_int_equal(t.spend, 20 * INT64_C(350000000));
    assert_int_equal(t.leak_routing, 20 * INT64_C(329000000));
    assert_int_equal(t.leak_retries, 0);
    audit_free(a);
    billing_table_free(table);
}

static void test_leak_routing_needs_short_answers(void **state)
{
    price_table_t *table;
    audit_t *a = new_audit(&table);
    audit_totals_t t;

    (void)state;
    for (int i = 0; i < 20; i++) {
        audit_call_t c = call_at(T0 + i * 3600, "Write.", "essay", 100, 500);
        c.request_hash += (uint64_t)i;
        audit_add(a, &c);
    }
    audit_finish(a, &t);
    assert_int_equal(t.leak_routing, 0);
    audit_free(a);
    billing_table_free(table);
}

static void test_leak_retry_and_duplicate_exact(void **state)
{
    price_table_t *table;
    audit_t *a = new_audit(&table);
    audit_totals_t t;
    audit_call_t first = call_at(T0, "Triage.", "printer broken", 100, 2);
    audit_call_t retry = first, dup = first, later = first;

    (void)state;
    retry.at = T0 + 30;
    dup.at = T0 + 600;
    later.at = T0 + 3600;
    strcpy(later.owner, "bob"); /* another owner: neither */
    audit_add(a, &first);
    audit_add(a, &retry);
    audit_add(a, &dup);
    audit_add(a, &later);
    audit_finish(a, &t);
    /* 100 x 2.5e6 + 2 x 1e7 = 270,000,000 each. */
    assert_int_equal(t.leak_retries, INT64_C(270000000));
    assert_int_equal(t.leak_duplicates, INT64_C(270000000));
    assert_int_equal(t.spend, 4 * INT64_C(270000000));
    audit_free(a);
    billing_table_free(table);
}

static void test_leak_context_prefix_and_history_exact(void **state)
{
    price_table_t *table;
    audit_t *a = new_audit(&table);
    audit_totals_t t;
    audit_call_t c1 = call_at(T0, "Long policy.", "q1", 2500, 10);
    audit_call_t c2 = call_at(T0 + 3600, "Long policy.", "q2", 2500, 10);
    audit_call_t h = call_at(T0 + 7200, "Chat.", "turn 9", 4000, 10);

    (void)state;
    c1.prefix_est = c2.prefix_est = 2000;
    c1.prompt_est = c2.prompt_est = 2500;
    h.history_est = 1000;
    h.prompt_est = 2000;
    audit_add(a, &c1);
    audit_add(a, &c2);
    audit_add(a, &h);
    audit_finish(a, &t);
    /* c2 only (c1 writes the cache): 2000 x (2.5e6 - 1.25e6). */
    assert_int_equal(t.leak_prefix, INT64_C(2500000000));
    /* h: 4000 x 1000 / 2000 = 2000 tokens dropped x 2.5e6. */
    assert_int_equal(t.leak_history, INT64_C(5000000000));
    assert_int_equal(t.leak_context, INT64_C(7500000000));
    audit_free(a);
    billing_table_free(table);
}

static void test_leak_volume_outlier_day_exact(void **state)
{
    price_table_t *table;
    audit_t *a = new_audit(&table);
    audit_totals_t t;
    int per_day[4] = {1, 1, 1, 10};

    (void)state;
    for (int d = 0; d < 4; d++)
        for (int i = 0; i < per_day[d]; i++) {
            char user[32];
            snprintf(user, sizeof(user), "job %d-%d", d, i);
            audit_call_t c =
                call_at(T0 + d * 86400 + i * 3600, "Report.", user, 100, 200);
            audit_add(a, &c);
        }
    audit_finish(a, &t);
    /* Day 4: 10 calls of 2,250,000,000; median 1: spend above it is
     * 22,500,000,000 - 22,500,000,000 x 1 / 10. */
    assert_int_equal(t.leak_outliers, INT64_C(20250000000));
    assert_int_equal(t.leak_volume, INT64_C(20250000000));
    audit_free(a);
    billing_table_free(table);
}

static void test_source_cost_and_fallback(void **state)
{
    price_table_t *table;
    audit_t *a = new_audit(&table);
    audit_totals_t t;
    audit_call_t ledger = call_at(T0, "A.", "x", 100, 2);
    audit_call_t logged = call_at(T0, "B.", "y", 100, 2);
    audit_call_t unknown = call_at(T0, "C.", "z", 100, 2);

    (void)state;
    ledger.has_cost = true;
    ledger.cost = 123;
    logged.has_cost = logged.cost_fallback = true;
    logged.cost = 999;
    strcpy(unknown.model, "in-house-model");
    unknown.has_cost = unknown.cost_fallback = true;
    unknown.cost = 777;
    audit_add(a, &ledger);
    audit_add(a, &logged);
    audit_add(a, &unknown);
    audit_finish(a, &t);
    /* The ledger's own cost, usage over the log's figure, and the log's
     * figure only for a model with no price. */
    assert_int_equal(t.spend, 123 + INT64_C(270000000) + 777);
    audit_free(a);
    billing_table_free(table);
}

static void test_csv_quoted_newline(void **state)
{
    char path[64];
    csv_t csv = {0};
    FILE *f;

    (void)state;
    write_file(path, "a,b\n\"x\ny\",\"q\"\"q\"\n");
    f = fopen(path, "r");
    assert_int_equal(csv_next(&csv, f), 1);
    assert_int_equal(csv_next(&csv, f), 1);
    assert_int_equal(csv.line, 2);
    assert_string_equal(csv.fields[0], "x\ny");
    assert_string_equal(csv.fields[1], "q\"q");
    assert_int_equal(csv_next(&csv, f), 0);
    fclose(f);
    csv_free(&csv);
    unlink(path);
}

/* The fast chat-log path gives the same call as json-c and shape_call
 * for every line it takes, and hands the rest back. */
static int slow_call(const char *line, audit_call_t *call)
{
    struct json_object *obj = json_tokener_parse(line);
    char why[64] = "";
    int rc;

    memset(call, 0, sizeof(*call));
    rc = shape_call(shape_of(obj), obj, call, why);
    json_object_put(obj);
    return rc;
}

static int fast_call(const char *line, audit_call_t *call)
{
    struct json_tokener *tok = json_tokener_new();
    char why[64] = "";
    int rc;

    memset(call, 0, sizeof(*call));
    rc = shape_fast_chat(line, strlen(line), tok, call, why);
    json_tokener_free(tok);
    return rc;
}

static void test_fast_chat_path_equals_json_c(void **state)
{
    static const char *const taken[] = {
        "{\"timestamp\": 1793491200, \"owner\": \"ana\", \"key\": \"k1\", "
        "\"request\": {\"model\": \"gpt-4o\", \"temperature\": 0, "
        "\"messages\": [{\"role\": \"system\", \"content\": \"Team 7.\"}, "
        "{\"role\": \"user\", \"content\": \"Ticket #12\"}]}, "
        "\"response\": {\"object\": \"chat.completion\", \"created\": 5, "
        "\"choices\": [], \"service_tier\": \"default\", \"usage\": "
        "{\"prompt_tokens\": 30, \"completion_tokens\": 3, "
        "\"prompt_tokens_details\": {\"cached_tokens\": 10}}}}\n",
        "{\"time\": \"2026-11-02T10:00:00Z\", \"user\": \"\", \"team\": "
        "\"ops\", \"request\": {\"model\": \"gpt-4o-mini\", \"messages\": "
        "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\","
        " \"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}, "
        "{\"role\": \"assistant\", \"content\": \"d\"}, {\"role\": \"user\","
        " \"content\": \"e\"}, {\"role\": \"user\", \"content\": \"f\"}]}, "
        "\"response\": {\"model\": \"gpt-4o-mini-2024\", \"usage\": "
        "{\"prompt_tokens\": 9, \"completion_tokens\": 1}}}",
    };
    static const char *const handed_back[] = {
        "{\"request\": {\"model\": \"m\", \"messages\": [{\"role\": "
        "\"user\", \"content\": \"a\\\"b\"}]}, \"response\": {\"usage\": "
        "{\"prompt_tokens\": 1, \"completion_tokens\": 1}}}",
        "{\"status_code\": 500, \"request\": {\"messages\": []}, "
        "\"response\": {\"usage\": {\"prompt_tokens\": 1}}}",
        "{\"request\": {\"messages\": []}, \"response\": {\"choices\": []}}",
        "{\"timestamp\": 1.5, \"request\": {\"messages\": []}, "
        "\"response\": {\"usage\": {\"prompt_tokens\": 1}}}",
        "{\"request\": {\"messages\": []}, \"response\": {\"usage\": "
        "{\"prompt_tokens\": 1}}} trailing",
        "{\"request\": {\"messages\": [], \"x\": [[[[[[[[[[[[[[[[[[[[[[[[[["
        "[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}, \"response\": {\"usage\": "
        "{\"prompt_tokens\": 1}}}",
    };
    audit_call_t fast, slow;

    (void)state;
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        assert_int_equal(fast_call(taken[i], &fast), 1);
        assert_int_equal(slow_call(taken[i], &slow), 1);
        assert_memory_equal(&fast, &slow, sizeof(fast));
    }
    for (size_t i = 0; i < sizeof(handed_back) / sizeof(handed_back[0]); i++)
        assert_int_equal(fast_call(handed_back[i], &fast), -EAGAIN);
}

static const char task_config[] =
    "providers:\n"
    "  - {name: p, kind: openai-compatible, base_url: http://127.0.0.1:9}\n"
    "models:\n"
    "  - {name: cheap, provider: p, tier: 1}\n"
    "  - {name: strong, provider: p, tier: 2}\n"
    "tasks:\n"
    "  - name: math\n"
    "    route: [cheap, strong]\n"
    "    checks: {final_number: true}\n"
    "    max_attempts: 2\n"
    "  - name: triage\n"
    "    route: [cheap]\n";

static const char *two_answers(void *arg, int tier, size_t *len)
{
    const char *const *texts = arg;

    *len = strlen(texts[tier]);
    return texts[tier];
}

/* The log's task first, then replay.workflow_tasks, then --task; and a
 * failed final_number check escalates once within max_attempts. */
static void test_replay_maps_calls_to_config_tasks(void **state)
{
    char cfg[64], pol[96], text[256];
    const char *fail[] = {"I think it is", "#### 7"};
    const char *pass[] = {"So the answer is 12.", "#### 7"};
    audit_call_t call = {0};
    task_cascade_t c;
    policy_t p;

    write_file(cfg, task_config);
    snprintf(text, sizeof(text),
             "config: %s\nreplay:\n  workflow_tasks:\n"
             "    \"Classify the ticket\": triage\n",
             strrchr(cfg, '/') + 1);
    write_file(pol, text);
    assert_int_equal(policy_load(&p, pol, stderr), 0);
    assert_null(policy_task_name(&p, &call));
    p.default_task = "math";
    assert_string_equal(policy_task_name(&p, &call), "math");
    audit_copy(call.label, sizeof(call.label), "Classify the ticket: #");
    assert_string_equal(policy_task_name(&p, &call), "triage");
    audit_copy(call.task, sizeof(call.task), "math");
    assert_string_equal(policy_task_name(&p, &call), "math");

    assert_null(task_set_find(p.tasks, "nope"));
    assert_null(task_set_only(p.tasks));
    task_policy_cascade(task_set_find(p.tasks, "math"), two_answers, fail, &c);
    assert_int_equal(c.n_attempts, 2);
    assert_int_equal(c.escalations, 1);
    assert_int_equal(c.tier[1], 1);
    task_policy_cascade(task_set_find(p.tasks, "math"), two_answers, pass, &c);
    assert_int_equal(c.n_attempts, 1);
    assert_int_equal(c.escalations, 0);
    policy_free(&p);
    unlink(cfg);
    unlink(pol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise_numbers_ids_quotes_emails),
        cmocka_unit_test(test_workflow_same_template_same_hash),
        cmocka_unit_test(test_workflow_without_system_uses_user_head),
        cmocka_unit_test(test_parse_usd_exact),
        cmocka_unit_test(test_scale_half_even),
        cmocka_unit_test(test_jsonl_chat_shapes_and_malformed_lines),
        cmocka_unit_test(test_jsonl_without_usage_is_estimated),
        cmocka_unit_test(test_batch_output_lines),
        cmocka_unit_test(test_usage_api_page),
        cmocka_unit_test(test_litellm_json_and_csv),
        cmocka_unit_test(test_leak_routing_exact),
        cmocka_unit_test(test_leak_routing_needs_short_answers),
        cmocka_unit_test(test_leak_retry_and_duplicate_exact),
        cmocka_unit_test(test_leak_context_prefix_and_history_exact),
        cmocka_unit_test(test_leak_volume_outlier_day_exact),
        cmocka_unit_test(test_source_cost_and_fallback),
        cmocka_unit_test(test_csv_quoted_newline),
        cmocka_unit_test(test_fast_chat_path_equals_json_c),
        cmocka_unit_test(test_replay_maps_calls_to_config_tasks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
