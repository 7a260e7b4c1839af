/*
 * Retries: the classification table (BUG-16: a 400 is never retried;
 * BUG-19: every provider's context-overflow wording is recognised),
 * retry-after in seconds and as HTTP dates, backoff bounds with injected
 * randomness, and the retry budget's sliding window.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "route/retry.h"

#include <errno.h>
#include <string.h>

static void expect(provider_kind_t kind, int status, const char *body,
                   retry_class_t want)
{
    retry_class_t got = retry_classify(kind, status, body);

    if (got != want)
        fail_msg("status %d body %s: %s, want %s", status,
                 body ? body : "(none)", retry_class_name(got),
                 retry_class_name(want));
}

static void test_classify_status_table(void **state)
{
    static const struct {
        int status;
        retry_class_t want;
    } table[] = {
        {0, RETRY_SAME},    {400, RETRY_NEVER}, {401, RETRY_NEVER},
        {402, RETRY_NEVER}, {403, RETRY_NEVER}, {404, RETRY_NEVER},
        {408, RETRY_SAME},  {409, RETRY_SAME},  {413, RETRY_NEVER},
        {422, RETRY_NEVER}, {429, RETRY_SAME},  {500, RETRY_SAME},
        {502, RETRY_SAME},  {503, RETRY_SAME},  {504, RETRY_SAME},
        {529, RETRY_SAME},  {-1, RETRY_SAME},   {301, RETRY_NEVER},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        expect(PROVIDER_OPENAI, table[i].status, NULL, table[i].want);
        expect(PROVIDER_ANTHROPIC, table[i].status, "{}", table[i].want);
    }
}

static void test_classify_bug16_bad_request_never_retried(void **state)
{
    expect(PROVIDER_OPENAI, 400,
           "{\"error\": {\"message\": \"Invalid value for temperature: must "
           "be at most 2.\", \"type\": \"invalid_request_error\", \"param\": "
           "\"temperature\", \"code\": \"invalid_value\"}}",
           RETRY_NEVER);
}

static void test_classify_bug19_context_overflow_wordings(void **state)
{
    /* The three bodies of BUG-19, then each provider's own. */
    expect(PROVIDER_OPENAI, 400,
           "{\"object\": \"error\", \"message\": \"The input (40000 tokens) "
           "is longer than the model's context length (32768 tokens).\", "
           "\"type\": \"BadRequestError\", \"code\": 400}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_OPENAI, 400,
           "{\"error\":{\"message\":\"This model's maximum context length is "
           "32768 tokens. However, you requested 40512 tokens.\"}}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_ANTHROPIC, 400,
           "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
           "\"message\":\"prompt is too long: 210000 tokens > 200000 "
           "maximum\"}}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_OPENAI, 400,
           "{\"error\":{\"message\":\"...\",\"type\":\"invalid_request_error\","
           "\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_GEMINI, 400,
           "[{\"error\":{\"code\":400,\"message\":\"The input token count "
           "(1200000) exceeds the maximum number of tokens allowed "
           "(1048576).\",\"status\":\"INVALID_ARGUMENT\"}}]",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_ANTHROPIC, 400,
           "{\"error\":{\"message\":\"input length and `max_tokens` exceed "
           "context limit: 197626 + 21333 > 200000\"}}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_OPENAI, 400,
           "{\"error\":{\"code\":400,\"message\":\"the request exceeds the "
           "available context size, try increasing it\","
           "\"type\":\"exceed_context_size_error\"}}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_OPENAI, 422,
           "{\"error\":\"Input validation error: `inputs` tokens + "
           "`max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens "
           "and 512 `max_new_tokens`\"}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_OPENAI, 400,
           "{\"message\":\"Prompt contains 40000 tokens and 0 draft tokens, "
           "too large for model with 32768 maximum context length\"}",
           RETRY_CONTEXT_OVERFLOW);
    expect(PROVIDER_AZURE, 400,
           "{\"error\":{\"code\":\"context_length_exceeded\"}}",
           RETRY_CONTEXT_OVERFLOW);
    /* Auth errors are never read as overflow, whatever they say. */
    expect(PROVIDER_OPENAI, 401, "prompt is too long", RETRY_NEVER);
}

static void test_classify_429_kinds(void **state)
{
    expect(PROVIDER_OPENAI, 429,
           "{\"error\":{\"message\":\"Rate limit reached for requests\","
           "\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}",
           RETRY_SAME);
    expect(PROVIDER_OPENAI, 429,
           "{\"error\":{\"message\":\"You exceeded your current quota\","
           "\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}",
           RETRY_FALLBACK);
    expect(PROVIDER_OPENAI, 429,
           "{\"error\":{\"message\":\"Request too large for gpt-4o on tokens "
           "per min (TPM): Limit 30000, Requested 50000.\","
           "\"code\":\"rate_limit_exceeded\"}}",
           RETRY_FALLBACK);
    expect(PROVIDER_ANTHROPIC, 429,
           "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
           "\"message\":\"Number of request tokens has exceeded your "
           "per-minute rate limit\"}}",
           RETRY_SAME);
}

static void test_classify_anthropic_spend_cap_never(void **state)
{
    expect(PROVIDER_ANTHROPIC, 429,
           "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
           "\"message\":\"You have reached your specified workspace API "
           "usage limits.\",\"details\":{\"error_code\":"
           "\"enforced_spend_limit_reached\"}}}",
           RETRY_NEVER);
}

static void test_class_names(void **state)
{
    assert_string_equal(retry_class_name(RETRY_SAME), "retry");
    assert_string_equal(retry_class_name(RETRY_FALLBACK), "fallback");
    assert_string_equal(retry_class_name(RETRY_CONTEXT_OVERFLOW),
                        "context_overflow");
    assert_string_equal(retry_class_name(RETRY_NEVER), "never");
}

static int64_t after(const char *value, int64_t now_ms)
{
    int64_t delay = -99;

    assert_int_equal(retry_after_parse(value, now_ms, &delay), 0);
    return delay;
}

static void test_retry_after_seconds(void **state)
{
    assert_int_equal(after("30", 0), 30000);
    assert_int_equal(after(" 0 ", 0), 0);
    assert_int_equal(after("1.5", 0), 1500);
    assert_int_equal(after("0.0015", 0), 1);
    assert_int_equal(after("120", 0), 120000);
}

static void test_retry_after_http_dates(void **state)
{
    int64_t t = INT64_C(784111777000); /* 1994-11-06T08:49:37Z */

    assert_int_equal(after("Sun, 06 Nov 1994 08:49:37 GMT", t - 30000), 30000);
    assert_int_equal(after("Sunday, 06-Nov-94 08:49:37 GMT", t - 30000), 30000);
    assert_int_equal(after("Sun Nov  6 08:49:37 1994", t - 30000), 30000);
    /* In the past: retry now. */
    assert_int_equal(after("Sun, 06 Nov 1994 08:49:37 GMT", t + 5000), 0);
    assert_int_equal(
        after("Thu, 03 Dec 2026 12:00:00 GMT", INT64_C(1796299200000) - 2500),
        2500);
    assert_int_equal(
        after("Tue, 29 Feb 2000 00:00:10 GMT", INT64_C(951782400000)), 10000);
}

static void test_retry_after_garbage_refused(void **state)
{
    static const char *const bad[] = {"",
                                      "-1",
                                      "soon",
                                      "30s",
                                      "1e3",
                                      "Sun, 06 Nov 1994 08:49:37 UTC",
                                      "Sun, 06 Foo 1994 08:49:37 GMT",
                                      "Sun, 32 Nov 1994 08:49:37 GMT",
                                      "99999999999"};
    int64_t delay;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (retry_after_parse(bad[i], 0, &delay) != -EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
    }
    assert_int_equal(retry_after_parse(NULL, 0, &delay), -EINVAL);
}

static void test_retry_after_pick_prefers_ms(void **state)
{
    int64_t delay;

    assert_int_equal(retry_after_pick("250", "3", 0, &delay), 0);
    assert_int_equal(delay, 250);
    assert_int_equal(retry_after_pick("x", "3", 0, &delay), 0);
    assert_int_equal(delay, 3000);
    assert_int_equal(retry_after_pick(NULL, NULL, 0, &delay), -ENOENT);
    assert_int_equal(retry_after_pick(NULL, "later", 0, &delay), -ENOENT);
}

static void test_backoff_full_jitter_bounds(void **state)
{
    retry_policy_t p;

    retry_policy_init(&p);
    /* Ceilings 500, 1000, 2000, 4000, 8000, then capped at 8000. */
    assert_int_equal(retry_backoff_ms(&p, 1, 0), 0);
    assert_int_equal(retry_backoff_ms(&p, 1, 500), 500);
    assert_int_equal(retry_backoff_ms(&p, 1, 501), 0);
    assert_int_equal(retry_backoff_ms(&p, 2, 1000), 1000);
    assert_int_equal(retry_backoff_ms(&p, 3, 2000), 2000);
    assert_int_equal(retry_backoff_ms(&p, 4, 4000), 4000);
    assert_int_equal(retry_backoff_ms(&p, 5, 8000), 8000);
    assert_int_equal(retry_backoff_ms(&p, 6, 8000), 8000);
    assert_int_equal(retry_backoff_ms(&p, 60, 8001), 0);
    assert_int_equal(retry_backoff_ms(&p, 2, 1234567), 1234567 % 1001);
    for (uint64_t r = 0; r < 100000; r += 7)
        assert_true(retry_backoff_ms(&p, 3, r * 2654435761u) <= 2000);
}

static void test_delay_honours_retry_after_up_to_cap(void **state)
{
    retry_policy_t p;

    retry_policy_init(&p);
    assert_int_equal(retry_delay_ms(&p, 1, 30000, 7), 30000);
    assert_int_equal(retry_delay_ms(&p, 1, 0, 7), 0);
    assert_int_equal(retry_delay_ms(&p, 1, 120000, 7), 120000);
    /* Asking for more than 120 s: no retry at all. */
    assert_int_equal(retry_delay_ms(&p, 1, 120001, 7), -1);
    /* No header: backoff. */
    assert_int_equal(retry_delay_ms(&p, 2, -1, 7), 7);
    /* Past max_retries: no retry. */
    assert_int_equal(retry_delay_ms(&p, 3, -1, 7), -1);
    assert_int_equal(retry_delay_ms(&p, 0, -1, 7), -1);
}

static void test_budget_share_of_calls_in_window(void **state)
{
    retry_budget_t b;
    int64_t calls, retries;
    int granted = 0;

    /* 60 slots of 1 s; retries at most 10 % of calls, at least 2. */
    assert_int_equal(retry_budget_init(&b, 60, 1000, 100, 2), 0);
    for (int i = 0; i < 50; i++)
        retry_budget_note_call(&b, 10000 + i * 100);
    for (int i = 0; i < 20; i++)
        granted += retry_budget_take(&b, 15000);
    assert_int_equal(granted, 5);
    retry_budget_counts(&b, 15000, &calls, &retries);
    assert_int_equal(calls, 50);
    assert_int_equal(retries, 5);
}

static void test_budget_floor_for_quiet_tasks(void **state)
{
    retry_budget_t b;

    assert_int_equal(retry_budget_init(&b, 60, 1000, 100, 2), 0);
    retry_budget_note_call(&b, 0);
    assert_true(retry_budget_take(&b, 0));
    assert_true(retry_budget_take(&b, 0));
    assert_false(retry_budget_take(&b, 0));
}

static void test_budget_window_slides(void **state)
{
    retry_budget_t b;
    int64_t calls, retries;

    assert_int_equal(retry_budget_init(&b, 60, 1000, 500, 0), 0);
    retry_budget_note_call(&b, 0);     /* slot of second 0 */
    retry_budget_note_call(&b, 999);   /* same second */
    retry_budget_note_call(&b, 30500); /* second 30 */
    assert_true(retry_budget_take(&b, 30500));
    retry_budget_counts(&b, 59999, &calls, &retries);
    assert_int_equal(calls, 3);
    assert_int_equal(retries, 1);
    /* At 60.0 s, second 0 leaves the window. */
    retry_budget_counts(&b, 60000, &calls, &retries);
    assert_int_equal(calls, 1);
    assert_int_equal(retries, 1);
    assert_false(retry_budget_take(&b, 60000)); /* 1 * 0.5 = 0 allowed */
    /* At 90.0 s, second 30 leaves too: all empty. */
    retry_budget_counts(&b, 90000, &calls, &retries);
    assert_int_equal(calls, 0);
    assert_int_equal(retries, 0);
    /* A slot reused a lap later starts from zero. */
    retry_budget_note_call(&b, 120000);
    retry_budget_counts(&b, 120000, &calls, &retries);
    assert_int_equal(calls, 1);
}

static void test_budget_outage_cannot_storm(void **state)
{
    retry_budget_t b;
    int granted = 0;

    /* 100 calls a second, every one failing, for 5 minutes. */
    assert_int_equal(retry_budget_init(&b, 60, 1000, 100, 10), 0);
    for (int64_t ms = 0; ms < 300000; ms += 10) {
        retry_budget_note_call(&b, ms);
        granted += retry_budget_take(&b, ms);
    }
    /* Never more than 10 % of calls: 3,000 of 30,000. */
    assert_int_equal(granted, 3000);
}

static void test_budget_init_refuses_bad_values(void **state)
{
    retry_budget_t b;

    assert_int_equal(retry_budget_init(&b, 0, 1000, 100, 0), -EINVAL);
    assert_int_equal(
        retry_budget_init(&b, RETRY_BUDGET_MAX_SLOTS + 1, 1000, 100, 0),
        -EINVAL);
    assert_int_equal(retry_budget_init(&b, 60, 0, 100, 0), -EINVAL);
    assert_int_equal(retry_budget_init(&b, 60, 1000, 1001, 0), -EINVAL);
    assert_int_equal(retry_budget_init(&b, 60, 1000, 100, -1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_status_table),
        cmocka_unit_test(test_classify_bug16_bad_request_never_retried),
        cmocka_unit_test(test_classify_bug19_context_overflow_wordings),
        cmocka_unit_test(test_classify_429_kinds),
        cmocka_unit_test(test_classify_anthropic_spend_cap_never),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_http_dates),
        cmocka_unit_test(test_retry_after_garbage_refused),
        cmocka_unit_test(test_retry_after_pick_prefers_ms),
        cmocka_unit_test(test_backoff_full_jitter_bounds),
        cmocka_unit_test(test_delay_honours_retry_after_up_to_cap),
        cmocka_unit_test(test_budget_share_of_calls_in_window),
        cmocka_unit_test(test_budget_floor_for_quiet_tasks),
        cmocka_unit_test(test_budget_window_slides),
        cmocka_unit_test(test_budget_outage_cannot_storm),
        cmocka_unit_test(test_budget_init_refuses_bad_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
