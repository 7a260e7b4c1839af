/*
 * Reading OpenAI usage objects into normalised usage, and telling an
 * answer with content or tool calls from an empty one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream/openai.h"
#include "upstream/usage.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static struct json_object *parsed;

static int parsed_teardown(void **state)
{
    json_object_put(parsed);
    parsed = NULL;
    return 0;
}

/* Parses text into the test's one object, freed by the teardown. */
static struct json_object *json(const char *text)
{
    json_object_put(parsed);
    parsed = json_tokener_parse(text);
    assert_non_null(parsed);
    return parsed;
}

static int read_usage(const char *text, usage_t *usage)
{
    return openai_read_usage(json(text), usage);
}

static void expect_not_present(const usage_t *usage)
{
    usage_t zero;

    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(usage, &zero, sizeof(zero));
}

static void test_read_usage_takes_every_count(void **state)
{
    usage_t u;

    assert_int_equal(
        read_usage("{\"prompt_tokens\":100,\"completion_tokens\":50,"
                   "\"total_tokens\":150,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":20,"
                   "\"cache_write_tokens\":7,\"audio_tokens\":3},"
                   "\"completion_tokens_details\":{\"reasoning_tokens\":10,"
                   "\"audio_tokens\":4,\"accepted_prediction_tokens\":1}}",
                   &u),
        0);
    assert_true(u.present);
    assert_int_equal(u.input_tokens, 100);
    assert_int_equal(u.output_tokens, 50);
    assert_int_equal(u.cached_tokens, 20);
    assert_int_equal(u.cache_write_tokens, 7);
    assert_int_equal(u.audio_in_tokens, 3);
    assert_int_equal(u.reasoning_tokens, 10);
    assert_int_equal(u.audio_out_tokens, 4);
}

static void test_read_usage_counts_missing_details_as_zero(void **state)
{
    static const char *const texts[] = {
        "{\"prompt_tokens\":9,\"completion_tokens\":2}",
        "{\"prompt_tokens\":9,\"completion_tokens\":2,"
        "\"prompt_tokens_details\":null,\"completion_tokens_details\":null}",
        "{\"prompt_tokens\":9,\"completion_tokens\":2,"
        "\"prompt_tokens_details\":{\"cached_tokens\":null},"
        "\"completion_tokens_details\":{}}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        usage_t u;

        assert_int_equal(read_usage(texts[i], &u), 0);
        assert_true(u.present);
        assert_int_equal(u.input_tokens, 9);
        assert_int_equal(u.output_tokens, 2);
        assert_int_equal(u.cached_tokens, 0);
        assert_int_equal(u.cache_write_tokens, 0);
        assert_int_equal(u.audio_in_tokens, 0);
        assert_int_equal(u.reasoning_tokens, 0);
        assert_int_equal(u.audio_out_tokens, 0);
    }
}

static void test_read_usage_accepts_zero_and_large_counts(void **state)
{
    usage_t u;

    assert_int_equal(
        read_usage("{\"prompt_tokens\":0,\"completion_tokens\":0}", &u), 0);
    assert_true(u.present);
    assert_int_equal(u.input_tokens, 0);
    assert_int_equal(read_usage("{\"prompt_tokens\":1000000000000,"
                                "\"completion_tokens\":4294967296}",
                                &u),
                     0);
    assert_int_equal(u.input_tokens, INT64_C(1000000000000));
    assert_int_equal(u.output_tokens, INT64_C(4294967296));
}

/* A count no call can have would overflow every report's sums. */
static void test_read_usage_rejects_absurd_counts(void **state)
{
    usage_t u;

    assert_int_equal(read_usage("{\"prompt_tokens\":1000000000001,"
                                "\"completion_tokens\":1}",
                                &u),
                     -EINVAL);
    assert_false(u.present);
    assert_int_equal(read_usage("{\"prompt_tokens\":1,"
                                "\"completion_tokens\":9223372036854775807}",
                                &u),
                     -EINVAL);
    assert_int_equal(read_usage("{\"prompt_tokens\":1,\"completion_tokens\":1,"
                                "\"prompt_tokens_details\":{\"cached_tokens\":"
                                "1000000000000000000000000000000}}",
                                &u),
                     -EINVAL);
}

/* Chat usage and every other provider's share one idea of a count. */
static void test_read_usage_cap_is_the_shared_cap(void **state)
{
    char text[160];
    usage_t u;

    snprintf(text, sizeof(text),
             "{\"prompt_tokens\":1,\"completion_tokens\":1,"
             "\"completion_tokens_details\":{\"reasoning_tokens\":%lld}}",
             (long long)USAGE_MAX_TOKENS);
    assert_int_equal(read_usage(text, &u), 0);
    assert_int_equal(u.reasoning_tokens, USAGE_MAX_TOKENS);
    snprintf(text, sizeof(text),
             "{\"prompt_tokens\":1,\"completion_tokens\":1,"
             "\"completion_tokens_details\":{\"reasoning_tokens\":%lld}}",
             (long long)USAGE_MAX_TOKENS + 1);
    assert_int_equal(read_usage(text, &u), -EINVAL);
    expect_not_present(&u);
}

static void test_read_usage_rejects_missing_totals(void **state)
{
    static const char *const texts[] = {
        "{}",
        "{\"prompt_tokens\":1}",
        "{\"completion_tokens\":1}",
        "{\"total_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":1}}",
        "{\"input_tokens\":1,\"output_tokens\":1}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        usage_t u;

        memset(&u, 0x5a, sizeof(u));
        assert_int_equal(read_usage(texts[i], &u), -EINVAL);
        expect_not_present(&u);
    }
}

static void test_read_usage_rejects_counts_that_are_not_whole(void **state)
{
    static const char *const texts[] = {
        "{\"prompt_tokens\":-1,\"completion_tokens\":1}",
        "{\"prompt_tokens\":1,\"completion_tokens\":-5}",
        "{\"prompt_tokens\":\"10\",\"completion_tokens\":1}",
        "{\"prompt_tokens\":1.5,\"completion_tokens\":1}",
        "{\"prompt_tokens\":1,\"completion_tokens\":true}",
        "{\"prompt_tokens\":1,\"completion_tokens\":[1]}",
        "{\"prompt_tokens\":1,\"completion_tokens\":1,"
        "\"prompt_tokens_details\":{\"cached_tokens\":-1}}",
        "{\"prompt_tokens\":1,\"completion_tokens\":1,"
        "\"prompt_tokens_details\":{\"cached_tokens\":\"1\"}}",
        "{\"prompt_tokens\":1,\"completion_tokens\":1,"
        "\"completion_tokens_details\":{\"reasoning_tokens\":0.5}}",
        "{\"prompt_tokens\":1,\"completion_tokens\":1,"
        "\"completion_tokens_details\":{\"audio_tokens\":-2}}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        usage_t u;

        if (read_usage(texts[i], &u) != -EINVAL)
            fail_msg("accepted %s", texts[i]);
        expect_not_present(&u);
    }
}

static void test_read_usage_rejects_null_totals(void **state)
{
    /* A usage object whose totals are null says nothing about the tokens
     * used; reading it as 0 would price a real call at $0. */
    usage_t u;

    assert_int_equal(
        read_usage("{\"prompt_tokens\":null,\"completion_tokens\":null}", &u),
        -EINVAL);
    expect_not_present(&u);
    assert_int_equal(
        read_usage("{\"prompt_tokens\":12,\"completion_tokens\":null}", &u),
        -EINVAL);
    expect_not_present(&u);
}

static void test_read_usage_rejects_a_usage_not_object(void **state)
{
    usage_t u;

    assert_int_equal(openai_read_usage(NULL, &u), -EINVAL);
    expect_not_present(&u);
    assert_int_equal(read_usage("[100, 50]", &u), -EINVAL);
    expect_not_present(&u);
    assert_int_equal(read_usage("150", &u), -EINVAL);
    expect_not_present(&u);
    assert_int_equal(read_usage("\"usage\"", &u), -EINVAL);
    expect_not_present(&u);
}

static bool has_answer(const char *text)
{
    return openai_has_answer(json(text));
}

static void test_has_answer_sees_content_or_tool_calls(void **state)
{
    assert_true(has_answer("{\"choices\":[{\"message\":{\"role\":"
                           "\"assistant\",\"content\":\"Hi\"}}]}"));
    assert_true(has_answer("{\"choices\":[{\"message\":{\"content\":null,"
                           "\"tool_calls\":[{\"id\":\"call_1\"}]}}]}"));
    assert_true(has_answer("{\"choices\":[{\"message\":{\"content\":\"\"}},"
                           "{\"message\":{\"content\":\"second\"}}]}"));
}

static void test_has_answer_is_false_for_empty_answers(void **state)
{
    static const char *const texts[] = {
        "{}",
        "{\"choices\":[]}",
        "{\"choices\":null}",
        "{\"choices\":{\"message\":{\"content\":\"x\"}}}",
        "{\"choices\":[{}]}",
        "{\"choices\":[null,1,\"x\"]}",
        "{\"choices\":[{\"message\":null}]}",
        "{\"choices\":[{\"message\":{\"content\":\"\"}}]}",
        "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]}}]}",
        "{\"choices\":[{\"message\":{\"content\":[\"x\"],"
        "\"tool_calls\":{}}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"streamed\"}}]}",
        "[{\"choices\":[{\"message\":{\"content\":\"x\"}}]}]",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (has_answer(texts[i]))
            fail_msg("saw an answer in %s", texts[i]);
    assert_false(openai_has_answer(NULL));
}

#define TEST(fn) cmocka_unit_test_teardown(fn, parsed_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_read_usage_takes_every_count),
        TEST(test_read_usage_counts_missing_details_as_zero),
        TEST(test_read_usage_accepts_zero_and_large_counts),
        TEST(test_read_usage_rejects_absurd_counts),
        TEST(test_read_usage_cap_is_the_shared_cap),
        TEST(test_read_usage_rejects_missing_totals),
        TEST(test_read_usage_rejects_counts_that_are_not_whole),
        TEST(test_read_usage_rejects_null_totals),
        TEST(test_read_usage_rejects_a_usage_not_object),
        TEST(test_has_answer_sees_content_or_tool_calls),
        TEST(test_has_answer_is_false_for_empty_answers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
