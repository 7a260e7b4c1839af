/*
 * Reading usage from every provider shape, plain and streamed, into the
 * normalised usage billing prices; the token estimate and the visible
 * text it is made from. Vectors are billing-semantics.md §7 and the
 * gateway-faults.md cases they are named after.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream/sse.h"
#include "upstream/usage.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The normalised counts a test expects, in usage_t's order. */
typedef struct want {
    int64_t input, cached, write, write_1h, audio_in;
    int64_t output, reasoning, audio_out, searches;
} want_t;

static void expect_usage(const usage_t *u, want_t w)
{
    assert_true(u->present);
    assert_false(u->estimated);
    assert_int_equal(u->input_tokens, w.input);
    assert_int_equal(u->cached_tokens, w.cached);
    assert_int_equal(u->cache_write_tokens, w.write);
    assert_int_equal(u->cache_write_1h_tokens, w.write_1h);
    assert_int_equal(u->audio_in_tokens, w.audio_in);
    assert_int_equal(u->output_tokens, w.output);
    assert_int_equal(u->reasoning_tokens, w.reasoning);
    assert_int_equal(u->audio_out_tokens, w.audio_out);
    assert_int_equal(u->web_searches, w.searches);
}

static void expect_not_present(const usage_t *usage)
{
    usage_t zero;

    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(usage, &zero, sizeof(zero));
}

/* Stream helpers: the project's SSE parser splits the text; each event
 * goes to one accumulator, and feed failures are counted. */
static int feed_failures;

static int on_chat(void *ctx, const sse_event_t *ev)
{
    if (usage_chat_stream_feed(ctx, ev->data, ev->data_len) < 0)
        feed_failures++;
    return 0;
}

static int on_responses(void *ctx, const sse_event_t *ev)
{
    if (usage_responses_stream_feed(ctx, ev->name, ev->data, ev->data_len) < 0)
        feed_failures++;
    return 0;
}

static int on_anthropic(void *ctx, const sse_event_t *ev)
{
    if (usage_anthropic_stream_feed(ctx, ev->name, ev->data, ev->data_len) < 0)
        feed_failures++;
    return 0;
}

static int on_gemini(void *ctx, const sse_event_t *ev)
{
    if (usage_gemini_stream_feed(ctx, ev->data, ev->data_len) < 0)
        feed_failures++;
    return 0;
}

static int feed_sse(const char *text, sse_event_fn fn, void *ctx)
{
    sse_parser_t p;

    feed_failures = 0;
    sse_init(&p, 1 << 16);
    assert_int_equal(sse_feed(&p, text, strlen(text), fn, ctx), 0);
    sse_free(&p);
    return feed_failures;
}

/* ---- counts and tiers ---- */

static void test_read_count_takes_whole_numbers_in_range(void **state)
{
    struct json_object *o =
        json("{\"a\":0,\"b\":1000000000000,\"n\":null,\"x\":12}");
    int64_t v = 99;

    assert_int_equal(usage_read_count(o, "a", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(usage_read_count(o, "b", &v), 0);
    assert_int_equal(v, USAGE_MAX_TOKENS);
    assert_int_equal(usage_read_count(o, "n", &v), 0);
    assert_int_equal(v, 0);
    v = 5;
    assert_int_equal(usage_read_count(o, "absent", &v), 0);
    assert_int_equal(v, 0);
    v = 5;
    assert_int_equal(usage_read_count(NULL, "x", &v), 0);
    assert_int_equal(v, 0);
}

static void test_read_count_rejects_what_no_call_can_have(void **state)
{
    static const char *const texts[] = {
        "{\"c\":-1}",
        "{\"c\":1000000000001}",
        "{\"c\":9223372036854775807}",
        "{\"c\":18446744073709551615}",
        "{\"c\":100000000000000000000000000000}",
        "{\"c\":1.5}",
        "{\"c\":1e3}",
        "{\"c\":\"12\"}",
        "{\"c\":true}",
        "{\"c\":[1]}",
        "{\"c\":{\"v\":1}}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        int64_t v = 7;

        if (usage_read_count(json(texts[i]), "c", &v) != -EINVAL)
            fail_msg("accepted %s", texts[i]);
        assert_int_equal(v, 0);
    }
}

static void test_read_tier_maps_every_name(void **state)
{
    static const struct {
        const char *text;
        service_tier_t tier;
    } cases[] = {
        {"{\"t\":\"flex\"}", SERVICE_FLEX},
        {"{\"t\":\"priority\"}", SERVICE_PRIORITY},
        {"{\"t\":\"batch\"}", SERVICE_BATCH},
        {"{\"t\":\"default\"}", SERVICE_STANDARD},
        {"{\"t\":\"auto\"}", SERVICE_STANDARD},
        {"{\"t\":\"standard\"}", SERVICE_STANDARD},
        {"{\"t\":\"scale\"}", SERVICE_STANDARD},
        {"{\"t\":null}", SERVICE_STANDARD},
        {"{}", SERVICE_STANDARD},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        service_tier_t tier = SERVICE_BATCH;

        assert_int_equal(usage_read_tier(json(cases[i].text), "t", &tier), 0);
        assert_int_equal(tier, cases[i].tier);
    }
}

static void test_read_tier_rejects_a_tier_not_a_string(void **state)
{
    service_tier_t tier;

    assert_int_equal(usage_read_tier(json("{\"t\":1}"), "t", &tier), -EINVAL);
    assert_int_equal(usage_read_tier(json("{\"t\":{}}"), "t", &tier), -EINVAL);
}

/* ---- OpenAI Chat ---- */

static int read_chat(const char *text, usage_t *usage)
{
    return usage_read_chat(json(text), usage);
}

static void test_chat_v1_plain(void **state)
{
    usage_t u;

    assert_int_equal(
        read_chat("{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":1200,"
                  "\"completion_tokens\":300,\"total_tokens\":1500,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":0},"
                  "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
                  &u),
        0);
    expect_usage(&u, (want_t){.input = 1200, .output = 300});
    assert_int_equal(u.service_tier, SERVICE_STANDARD);
    assert_string_equal(u.geo, "");
}

static void test_chat_v2_cached_is_a_subset(void **state)
{
    usage_t u;

    assert_int_equal(
        read_chat("{\"usage\":{\"prompt_tokens\":10000,"
                  "\"completion_tokens\":500,\"total_tokens\":10500,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":8192,"
                  "\"cache_write_tokens\":0,\"audio_tokens\":0}}}",
                  &u),
        0);
    expect_usage(&u, (want_t){.input = 10000, .cached = 8192, .output = 500});
}

/* V3 and BUG-03 case A: reasoning sits inside completion_tokens. */
static void test_chat_v3_reasoning_is_inside_output(void **state)
{
    usage_t u;

    assert_int_equal(
        read_chat("{\"usage\":{\"prompt_tokens\":2000,"
                  "\"completion_tokens\":4500,"
                  "\"completion_tokens_details\":{\"reasoning_tokens\":4000}}}",
                  &u),
        0);
    expect_usage(&u,
                 (want_t){.input = 2000, .output = 4500, .reasoning = 4000});
    assert_int_equal(
        read_chat("{\"usage\":{\"prompt_tokens\":500,"
                  "\"completion_tokens\":1800,\"total_tokens\":2300,"
                  "\"completion_tokens_details\":{\"reasoning_tokens\":1500}}}",
                  &u),
        0);
    expect_usage(&u, (want_t){.input = 500, .output = 1800, .reasoning = 1500});
}

static void test_chat_v4_audio_counts_are_subsets(void **state)
{
    usage_t u;

    assert_int_equal(
        read_chat("{\"usage\":{\"prompt_tokens\":1500,"
                  "\"prompt_tokens_details\":{\"audio_tokens\":1000,"
                  "\"text_tokens\":500,\"cached_tokens\":0},"
                  "\"completion_tokens\":600,\"completion_tokens_details\":"
                  "{\"audio_tokens\":450,\"text_tokens\":150}}}",
                  &u),
        0);
    expect_usage(&u, (want_t){.input = 1500,
                              .audio_in = 1000,
                              .output = 600,
                              .audio_out = 450});
}

static void test_chat_v5_predictions_are_not_added(void **state)
{
    usage_t u;

    assert_int_equal(
        read_chat("{\"usage\":{\"prompt_tokens\":2000,"
                  "\"completion_tokens\":1000,\"completion_tokens_details\":"
                  "{\"accepted_prediction_tokens\":600,"
                  "\"rejected_prediction_tokens\":150}}}",
                  &u),
        0);
    expect_usage(&u, (want_t){.input = 2000, .output = 1000});
}

static void test_chat_v11_service_tier_is_read(void **state)
{
    usage_t u;

    assert_int_equal(
        read_chat("{\"service_tier\":\"flex\",\"usage\":{\"prompt_tokens\":"
                  "10000,\"completion_tokens\":2000,\"prompt_tokens_details\":"
                  "{\"cached_tokens\":0}}}",
                  &u),
        0);
    expect_usage(&u, (want_t){.input = 10000, .output = 2000});
    assert_int_equal(u.service_tier, SERVICE_FLEX);
    assert_int_equal(read_chat("{\"service_tier\":\"priority\",\"usage\":"
                               "{\"prompt_tokens\":1,\"completion_tokens\":1}}",
                               &u),
                     0);
    assert_int_equal(u.service_tier, SERVICE_PRIORITY);
    assert_int_equal(read_chat("{\"service_tier\":\"default\",\"usage\":"
                               "{\"prompt_tokens\":1,\"completion_tokens\":1}}",
                               &u),
                     0);
    assert_int_equal(u.service_tier, SERVICE_STANDARD);
}

static void test_chat_subset_larger_than_parent_is_kept(void **state)
{
    usage_t u;

    /* Billing flags it; clamping here would hide the provider's error. */
    assert_int_equal(
        read_chat("{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":50},"
                  "\"completion_tokens_details\":{\"reasoning_tokens\":9}}}",
                  &u),
        0);
    expect_usage(
        &u, (want_t){.input = 10, .cached = 50, .output = 5, .reasoning = 9});
}

static void test_chat_missing_usage_is_not_invalid_usage(void **state)
{
    usage_t u;

    memset(&u, 0x5a, sizeof(u));
    assert_int_equal(read_chat("{\"choices\":[]}", &u), -ENOENT);
    expect_not_present(&u);
    assert_int_equal(read_chat("{\"usage\":null}", &u), -ENOENT);
    expect_not_present(&u);
    assert_int_equal(read_chat("{\"usage\":[1,2]}", &u), -EINVAL);
    expect_not_present(&u);
    assert_int_equal(read_chat("[{\"usage\":{}}]", &u), -EINVAL);
    expect_not_present(&u);
    assert_int_equal(usage_read_chat(NULL, &u), -EINVAL);
    expect_not_present(&u);
}

static void test_chat_bad_usage_or_tier_fails_whole(void **state)
{
    static const char *const texts[] = {
        "{\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":1}}",
        "{\"usage\":{\"prompt_tokens\":-3,\"completion_tokens\":1}}",
        "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":\"1\"}}",
        "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,"
        "\"prompt_tokens_details\":{\"audio_tokens\":2000000000000}}}",
        "{\"service_tier\":7,\"usage\":{\"prompt_tokens\":1,"
        "\"completion_tokens\":1}}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        usage_t u;

        if (read_chat(texts[i], &u) != -EINVAL)
            fail_msg("accepted %s", texts[i]);
        expect_not_present(&u);
    }
}

/* The five data lines of billing-semantics.md §1.3 (V6). */
static const char v6_stream[] =
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\","
    "\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\","
    "\"service_tier\":\"default\",\"choices\":[{\"index\":0,\"delta\":"
    "{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-7\",\"service_tier\":\"default\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
    "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-7\",\"service_tier\":\"default\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-7\",\"service_tier\":\"default\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":2048,"
    "\"completion_tokens\":2,\"total_tokens\":2050,"
    "\"prompt_tokens_details\":{\"cached_tokens\":1024,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,"
    "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
    "\"rejected_prediction_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";

static void test_chat_stream_v6_takes_the_usage_chunk(void **state)
{
    usage_chat_stream_t st;

    usage_chat_stream_init(&st, false);
    assert_int_equal(feed_sse(v6_stream, on_chat, &st), 0);
    expect_usage(&st.usage,
                 (want_t){.input = 2048, .cached = 1024, .output = 2});
    assert_int_equal(st.usage.service_tier, SERVICE_STANDARD);
    assert_true(st.done);
    assert_false(st.error);
    assert_false(st.invalid);
}

/* V7: the first two chunks, then the connection closes. */
static void test_chat_stream_v7_cut_leaves_usage_missing(void **state)
{
    const char *cut = strstr(v6_stream, "\n\n") + 2;
    char text[sizeof(v6_stream)];
    usage_chat_stream_t st;

    cut = strstr(cut, "\n\n") + 2;
    memcpy(text, v6_stream, (size_t)(cut - v6_stream));
    text[cut - v6_stream] = '\0';
    usage_chat_stream_init(&st, false);
    assert_int_equal(feed_sse(text, on_chat, &st), 0);
    expect_not_present(&st.usage);
    assert_false(st.done);
    assert_false(st.invalid);
}

/* BUG-10: the usage chunk Tollgate asked for is read, not $0. */
static void test_chat_stream_bug10_usage_asked_for_is_read(void **state)
{
    static const char text[] =
        "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\","
        "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"role\":\"assistant\",\"content\":\"Hi\"},"
        "\"finish_reason\":null}],\"usage\":null}\n\n"
        "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\","
        "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
        "data: {\"id\":\"chatcmpl-t1\",\"object\":\"chat.completion.chunk\","
        "\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{"
        "\"prompt_tokens\":1200,\"completion_tokens\":300,"
        "\"total_tokens\":1500}}\n\n"
        "data: [DONE]\n\n";
    usage_chat_stream_t st;

    usage_chat_stream_init(&st, false);
    assert_int_equal(feed_sse(text, on_chat, &st), 0);
    expect_usage(&st.usage, (want_t){.input = 1200, .output = 300});
    assert_true(st.done);
}

static void test_chat_stream_error_chunk_is_seen(void **state)
{
    static const char text[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],"
        "\"usage\":null}\n\n"
        "data: {\"error\":{\"message\":\"overloaded\","
        "\"type\":\"server_error\"}}\n\n";
    usage_chat_stream_t st;

    usage_chat_stream_init(&st, false);
    assert_int_equal(feed_sse(text, on_chat, &st), 0);
    assert_true(st.error);
    assert_false(st.done);
    expect_not_present(&st.usage);
}

static void test_chat_stream_last_usage_wins_even_if_broken(void **state)
{
    const char *good = "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
                       "\"completion_tokens\":6}}";
    const char *bad = "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
                      "\"completion_tokens\":-6}}";
    usage_chat_stream_t st;

    usage_chat_stream_init(&st, false);
    assert_int_equal(usage_chat_stream_feed(&st, good, strlen(good)), 0);
    assert_true(st.usage.present);
    assert_int_equal(usage_chat_stream_feed(&st, bad, strlen(bad)), -EINVAL);
    assert_true(st.invalid);
    expect_not_present(&st.usage);
    assert_int_equal(usage_chat_stream_feed(&st, good, strlen(good)), 0);
    assert_false(st.invalid);
    expect_usage(&st.usage, (want_t){.input = 5, .output = 6});
    assert_int_equal(usage_chat_stream_feed(&st, "{not json", 9), -EINVAL);
    assert_int_equal(usage_chat_stream_feed(&st, "[1]", 3), -EINVAL);
    assert_int_equal(usage_chat_stream_feed(&st, "", 0), -EINVAL);
    expect_usage(&st.usage, (want_t){.input = 5, .output = 6});
}

/* ---- Gemini's OpenAI-compatible endpoint ---- */

static void test_gemini_openai_adds_thoughts_left_out(void **state)
{
    usage_t u;

    /* Thoughts only in the total. */
    assert_int_equal(
        usage_read_gemini_openai(json("{\"usage\":{\"prompt_tokens\":100,"
                                      "\"completion_tokens\":50,"
                                      "\"total_tokens\":180}}"),
                                 &u),
        0);
    expect_usage(&u, (want_t){.input = 100, .output = 80, .reasoning = 30});

    /* Thoughts as reasoning_tokens, outside completion_tokens. */
    assert_int_equal(
        usage_read_gemini_openai(
            json("{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":50,"
                 "\"total_tokens\":180,\"completion_tokens_details\":"
                 "{\"reasoning_tokens\":30}}}"),
            &u),
        0);
    expect_usage(&u, (want_t){.input = 100, .output = 80, .reasoning = 30});
}

static void test_gemini_openai_leaves_openai_meaning_alone(void **state)
{
    usage_t u;

    /* Reasoning already inside completion: the total says so. */
    assert_int_equal(
        usage_read_gemini_openai(
            json("{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":80,"
                 "\"total_tokens\":180,\"completion_tokens_details\":"
                 "{\"reasoning_tokens\":30}}}"),
            &u),
        0);
    expect_usage(&u, (want_t){.input = 100, .output = 80, .reasoning = 30});
    assert_int_equal(
        usage_read_gemini_openai(json("{\"usage\":{\"prompt_tokens\":100,"
                                      "\"completion_tokens\":80,"
                                      "\"total_tokens\":null}}"),
                                 &u),
        0);
    expect_usage(&u, (want_t){.input = 100, .output = 80});
    assert_int_equal(
        usage_read_gemini_openai(json("{\"usage\":{\"prompt_tokens\":100,"
                                      "\"completion_tokens\":80,"
                                      "\"total_tokens\":150}}"),
                                 &u),
        0);
    expect_usage(&u, (want_t){.input = 100, .output = 80});
    assert_int_equal(
        usage_read_gemini_openai(json("{\"usage\":{\"prompt_tokens\":100,"
                                      "\"completion_tokens\":80,"
                                      "\"total_tokens\":\"180\"}}"),
                                 &u),
        -EINVAL);
    expect_not_present(&u);
}

static void test_fix_gemini_openai_rule(void **state)
{
    usage_t u = {.present = true,
                 .input_tokens = 10,
                 .output_tokens = 5,
                 .reasoning_tokens = 40};

    assert_false(usage_fix_gemini_openai(&u, -1));
    assert_false(usage_fix_gemini_openai(&u, 15));
    assert_false(usage_fix_gemini_openai(&u, USAGE_MAX_TOKENS + 1));
    assert_int_equal(u.output_tokens, 5);

    /* A reported reasoning count larger than the gap is kept. */
    assert_true(usage_fix_gemini_openai(&u, 35));
    assert_int_equal(u.output_tokens, 25);
    assert_int_equal(u.reasoning_tokens, 40);
    assert_int_equal(u.input_tokens, 10);
}

static void test_chat_stream_gemini_compat_last_chunk_wins(void **state)
{
    static const char text[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"The\"}}],"
        "\"usage\":{\"prompt_tokens\":250000,\"completion_tokens\":12,"
        "\"total_tokens\":251012}}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\" report\"}}],"
        "\"usage\":{\"prompt_tokens\":250000,\"completion_tokens\":2100,"
        "\"total_tokens\":253100}}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\".\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":250000,"
        "\"completion_tokens\":4000,\"total_tokens\":255000}}\n\n"
        "data: [DONE]\n\n";
    usage_chat_stream_t st;

    usage_chat_stream_init(&st, true);
    assert_int_equal(feed_sse(text, on_chat, &st), 0);
    expect_usage(&st.usage,
                 (want_t){.input = 250000, .output = 5000, .reasoning = 1000});

    /* Without the flag the same chunks read as OpenAI means them. */
    usage_chat_stream_init(&st, false);
    assert_int_equal(feed_sse(text, on_chat, &st), 0);
    expect_usage(&st.usage, (want_t){.input = 250000, .output = 4000});
}

/* ---- OpenAI Responses ---- */

static const char v8_stream[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,"
    "\"response\":{\"id\":\"resp_9\",\"status\":\"in_progress\","
    "\"usage\":null}}\n\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":5,"
    "\"item_id\":\"msg_1\",\"output_index\":1,\"content_index\":0,"
    "\"delta\":\"Hello\"}\n\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"sequence_number\":9,"
    "\"response\":{\"id\":\"resp_9\",\"status\":\"completed\","
    "\"model\":\"gpt-5-mini-2025-08-07\",\"usage\":{\"input_tokens\":5000,"
    "\"input_tokens_details\":{\"cached_tokens\":4096,"
    "\"cache_write_tokens\":0},\"output_tokens\":1200,"
    "\"output_tokens_details\":{\"reasoning_tokens\":1000},"
    "\"total_tokens\":6200}}}\n\n";

static void test_responses_stream_v8_completed(void **state)
{
    usage_responses_stream_t st;

    usage_responses_stream_init(&st);
    assert_int_equal(feed_sse(v8_stream, on_responses, &st), 0);
    expect_usage(&st.usage, (want_t){.input = 5000,
                                     .cached = 4096,
                                     .output = 1200,
                                     .reasoning = 1000});
    assert_int_equal(st.end, USAGE_RESPONSES_COMPLETED);
    assert_false(st.error);
    assert_string_equal(st.model, "gpt-5-mini-2025-08-07");
}

/* Some servers send no event: lines; the data's type says it all. */
static void test_responses_stream_without_event_names(void **state)
{
    char text[sizeof(v8_stream)];
    char *dst = text;
    usage_responses_stream_t st;

    for (const char *line = v8_stream; *line != '\0';) {
        const char *nl = strchr(line, '\n') + 1;

        if (strncmp(line, "event:", 6) != 0) {
            memcpy(dst, line, (size_t)(nl - line));
            dst += nl - line;
        }
        line = nl;
    }
    *dst = '\0';
    usage_responses_stream_init(&st);
    assert_int_equal(feed_sse(text, on_responses, &st), 0);
    expect_usage(&st.usage, (want_t){.input = 5000,
                                     .cached = 4096,
                                     .output = 1200,
                                     .reasoning = 1000});
    assert_int_equal(st.end, USAGE_RESPONSES_COMPLETED);
}

static void test_responses_stream_incomplete_is_still_billed(void **state)
{
    static const char text[] =
        "event: response.incomplete\n"
        "data: {\"type\":\"response.incomplete\",\"response\":{"
        "\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":"
        "\"max_output_tokens\"},\"service_tier\":\"flex\",\"usage\":{"
        "\"input_tokens\":300,\"output_tokens\":64,"
        "\"input_tokens_details\":null,\"output_tokens_details\":"
        "{\"reasoning_tokens\":null}}}}\n\n";
    usage_responses_stream_t st;

    usage_responses_stream_init(&st);
    assert_int_equal(feed_sse(text, on_responses, &st), 0);
    assert_int_equal(st.end, USAGE_RESPONSES_INCOMPLETE);
    expect_usage(&st.usage, (want_t){.input = 300, .output = 64});
    assert_int_equal(st.usage.service_tier, SERVICE_FLEX);
}

static void test_responses_stream_failed_and_error_events(void **state)
{
    static const char text[] =
        "event: response.failed\n"
        "data: {\"type\":\"response.failed\",\"response\":{\"status\":"
        "\"failed\",\"error\":{\"code\":\"server_error\"},"
        "\"usage\":null}}\n\n"
        "event: error\n"
        "data: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\","
        "\"message\":\"slow down\",\"param\":null}\n\n";
    usage_responses_stream_t st;

    usage_responses_stream_init(&st);
    assert_int_equal(feed_sse(text, on_responses, &st), 0);
    assert_int_equal(st.end, USAGE_RESPONSES_FAILED);
    expect_not_present(&st.usage);
    assert_true(st.error);
    assert_string_equal(st.error_code, "rate_limit_exceeded");
}

static void test_responses_stream_failed_with_usage(void **state)
{
    const char *data =
        "{\"type\":\"response.failed\",\"response\":{\"status\":\"failed\","
        "\"usage\":{\"input_tokens\":70,\"output_tokens\":3}}}";
    usage_responses_stream_t st;

    usage_responses_stream_init(&st);
    assert_int_equal(
        usage_responses_stream_feed(&st, "response.failed", data, strlen(data)),
        0);
    assert_int_equal(st.end, USAGE_RESPONSES_FAILED);
    expect_usage(&st.usage, (want_t){.input = 70, .output = 3});
}

static void test_responses_stream_cut_and_bad_terminal(void **state)
{
    const char *bad = "{\"type\":\"response.completed\",\"response\":{"
                      "\"usage\":{\"input_tokens\":-1,\"output_tokens\":3}}}";
    const char *delta = "{\"type\":\"response.output_text.delta\"}";
    usage_responses_stream_t st;

    usage_responses_stream_init(&st);
    assert_int_equal(usage_responses_stream_feed(&st,
                                                 "response.output_text.delta",
                                                 delta, strlen(delta)),
                     0);
    assert_int_equal(st.end, USAGE_RESPONSES_OPEN);
    expect_not_present(&st.usage);
    assert_int_equal(usage_responses_stream_feed(&st, "", bad, strlen(bad)),
                     -EINVAL);
    assert_int_equal(st.end, USAGE_RESPONSES_COMPLETED);
    expect_not_present(&st.usage);

    /* A named event that cannot end the stream is not even parsed. */
    assert_int_equal(
        usage_responses_stream_feed(&st, "response.in_progress", "{oops", 5),
        0);
    assert_int_equal(usage_responses_stream_feed(&st, NULL, "{oops", 5),
                     -EINVAL);
}

static void test_responses_object_counts_web_searches(void **state)
{
    usage_t u;

    assert_int_equal(
        usage_read_responses(
            json("{\"service_tier\":\"priority\",\"output\":["
                 "{\"type\":\"web_search_call\",\"status\":\"completed\"},"
                 "{\"type\":\"reasoning\"},null,7,"
                 "{\"type\":\"web_search_call\",\"status\":\"completed\"},"
                 "{\"type\":\"message\"}],\"usage\":{\"input_tokens\":900,"
                 "\"input_tokens_details\":{\"cached_tokens\":null,"
                 "\"cache_write_tokens\":100},\"output_tokens\":40,"
                 "\"output_tokens_details\":null}}"),
            &u),
        0);
    expect_usage(
        &u, (want_t){.input = 900, .write = 100, .output = 40, .searches = 2});
    assert_int_equal(u.service_tier, SERVICE_PRIORITY);
}

static void test_responses_object_rejects_bad_totals(void **state)
{
    static const char *const texts[] = {
        "{\"usage\":{\"input_tokens\":null,\"output_tokens\":1}}",
        "{\"usage\":{\"input_tokens\":1}}",
        "{\"usage\":{\"input_tokens\":1,\"output_tokens\":1.0}}",
        "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",
        "{\"usage\":{\"input_tokens\":1,\"output_tokens\":1,"
        "\"output_tokens_details\":{\"reasoning_tokens\":-1}}}",
    };
    usage_t u;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (usage_read_responses(json(texts[i]), &u) != -EINVAL)
            fail_msg("accepted %s", texts[i]);
        expect_not_present(&u);
    }
    assert_int_equal(usage_read_responses(json("{\"usage\":null}"), &u),
                     -ENOENT);
}

/* ---- Anthropic ---- */

static int read_anthropic(const char *usage_text, usage_t *usage)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "{\"id\":\"msg_test\",\"type\":\"message\",\"role\":"
             "\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
             "\"ok\"}],\"stop_reason\":\"end_turn\",\"usage\":%s}",
             usage_text);
    return usage_read_anthropic(json(text), usage);
}

static void test_anthropic_v12_three_buckets_summed(void **state)
{
    usage_t u;

    assert_int_equal(read_anthropic("{\"input_tokens\":3000,"
                                    "\"cache_creation_input_tokens\":2000,"
                                    "\"cache_read_input_tokens\":10000,"
                                    "\"output_tokens\":800}",
                                    &u),
                     0);
    expect_usage(
        &u, (want_t){
                .input = 15000, .cached = 10000, .write = 2000, .output = 800});
}

static void test_anthropic_v13_one_hour_writes(void **state)
{
    usage_t u;

    assert_int_equal(
        read_anthropic("{\"input_tokens\":500,"
                       "\"cache_creation_input_tokens\":6000,"
                       "\"cache_creation\":{\"ephemeral_5m_input_tokens\":"
                       "2000,\"ephemeral_1h_input_tokens\":4000},"
                       "\"cache_read_input_tokens\":0,\"output_tokens\":1000}",
                       &u),
        0);
    expect_usage(&u, (want_t){.input = 6500,
                              .write = 6000,
                              .write_1h = 4000,
                              .output = 1000});
}

static void test_anthropic_v17_web_searches(void **state)
{
    usage_t u;

    assert_int_equal(
        read_anthropic("{\"input_tokens\":2000,"
                       "\"cache_creation_input_tokens\":0,"
                       "\"cache_read_input_tokens\":0,\"output_tokens\":1500,"
                       "\"server_tool_use\":{\"web_search_requests\":3,"
                       "\"web_fetch_requests\":2}}",
                       &u),
        0);
    expect_usage(&u, (want_t){.input = 2000, .output = 1500, .searches = 3});
}

static void test_anthropic_v18_tier_and_geo(void **state)
{
    usage_t u;

    assert_int_equal(
        read_anthropic("{\"input_tokens\":10000,"
                       "\"cache_read_input_tokens\":50000,"
                       "\"cache_creation_input_tokens\":0,"
                       "\"output_tokens\":2000,\"service_tier\":\"batch\"}",
                       &u),
        0);
    expect_usage(&u, (want_t){.input = 60000, .cached = 50000, .output = 2000});
    assert_int_equal(u.service_tier, SERVICE_BATCH);
    assert_string_equal(u.geo, "");

    assert_int_equal(
        read_anthropic("{\"input_tokens\":10000,"
                       "\"cache_read_input_tokens\":50000,"
                       "\"cache_creation_input_tokens\":0,"
                       "\"output_tokens\":2000,\"service_tier\":\"standard\","
                       "\"inference_geo\":\"us\"}",
                       &u),
        0);
    assert_int_equal(u.service_tier, SERVICE_STANDARD);
    assert_string_equal(u.geo, "us");

    assert_int_equal(read_anthropic("{\"input_tokens\":1,\"output_tokens\":1,"
                                    "\"inference_geo\":\"global\"}",
                                    &u),
                     0);
    assert_string_equal(u.geo, "");
}

/* BUG-01: writes are counted once, and reads and writes are not lost. */
static void test_anthropic_bug01_cache_buckets(void **state)
{
    usage_t u;

    assert_int_equal(read_anthropic("{\"input_tokens\":20,"
                                    "\"cache_creation_input_tokens\":10000,"
                                    "\"cache_read_input_tokens\":30000,"
                                    "\"output_tokens\":400}",
                                    &u),
                     0);
    expect_usage(&u, (want_t){.input = 40020,
                              .cached = 30000,
                              .write = 10000,
                              .output = 400});
    assert_int_equal(u.input_tokens - u.cached_tokens - u.cache_write_tokens,
                     20);
}

/* BUG-03 case B: thinking is inside output_tokens. */
static void test_anthropic_bug03_thinking_not_added(void **state)
{
    usage_t u;

    assert_int_equal(
        read_anthropic("{\"input_tokens\":500,\"output_tokens\":1800}", &u), 0);
    expect_usage(&u, (want_t){.input = 500, .output = 1800});
    assert_int_equal(
        read_anthropic("{\"input_tokens\":500,\"output_tokens\":1800,"
                       "\"output_tokens_details\":{\"thinking_tokens\":1500}}",
                       &u),
        0);
    expect_usage(&u, (want_t){.input = 500, .output = 1800, .reasoning = 1500});
}

static void test_anthropic_nulls_count_zero(void **state)
{
    usage_t u;

    assert_int_equal(
        read_anthropic("{\"input_tokens\":7,\"output_tokens\":8,"
                       "\"cache_creation_input_tokens\":null,"
                       "\"cache_read_input_tokens\":null,"
                       "\"cache_creation\":null,\"server_tool_use\":null,"
                       "\"output_tokens_details\":null,"
                       "\"service_tier\":null,\"inference_geo\":null}",
                       &u),
        0);
    expect_usage(&u, (want_t){.input = 7, .output = 8});
    assert_int_equal(u.service_tier, SERVICE_STANDARD);
}

static void test_anthropic_rejects_bad_usage(void **state)
{
    static const char *const usages[] = {
        "{\"output_tokens\":1}",
        "{\"input_tokens\":null,\"output_tokens\":1}",
        "{\"input_tokens\":1}",
        "{\"input_tokens\":-1,\"output_tokens\":1}",
        "{\"input_tokens\":1,\"output_tokens\":\"9\"}",
        "{\"input_tokens\":1,\"output_tokens\":1,"
        "\"cache_read_input_tokens\":2.5}",
        "{\"input_tokens\":1,\"output_tokens\":1,"
        "\"cache_creation\":{\"ephemeral_1h_input_tokens\":-4}}",
        "{\"input_tokens\":1,\"output_tokens\":1,"
        "\"server_tool_use\":{\"web_search_requests\":\"3\"}}",
        "{\"input_tokens\":600000000000,\"output_tokens\":1,"
        "\"cache_read_input_tokens\":600000000000}",
        "{\"input_tokens\":1,\"output_tokens\":1,\"service_tier\":2}",
        "{\"input_tokens\":1,\"output_tokens\":1,\"inference_geo\":1}",
        "{\"input_tokens\":1,\"output_tokens\":1,"
        "\"inference_geo\":\"somewhere-else\"}",
        "[1,2]",
    };
    usage_t u;

    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
        if (read_anthropic(usages[i], &u) != -EINVAL)
            fail_msg("accepted %s", usages[i]);
        expect_not_present(&u);
    }
    assert_int_equal(read_anthropic("null", &u), -ENOENT);
    assert_int_equal(usage_read_anthropic(json("[]"), &u), -EINVAL);
}

static const char v14_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\","
    "\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-haiku-4-5-20251001\",\"content\":[],"
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
    "\"input_tokens\":472,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":12000,\"output_tokens\":1,"
    "\"service_tier\":\"standard\"}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\":\"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
    "{\"type\":\"text_delta\",\"text\":\"Sure\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null,"
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":120}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"end_turn\",\"stop_sequence\":null},\"usage\":"
    "{\"output_tokens\":350}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static void test_anthropic_stream_v14_last_output_wins(void **state)
{
    usage_anthropic_stream_t st;

    usage_anthropic_stream_init(&st);
    assert_int_equal(feed_sse(v14_stream, on_anthropic, &st), 0);
    expect_usage(&st.usage,
                 (want_t){.input = 12472, .cached = 12000, .output = 350});
    assert_int_equal(st.usage.service_tier, SERVICE_STANDARD);
    assert_true(st.started);
    assert_true(st.stopped);
    assert_false(st.error);
    assert_false(st.invalid);
    assert_string_equal(st.model, "claude-haiku-4-5-20251001");
    assert_string_equal(st.stop_reason, "end_turn");
}

static const char bug08_start[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":"
    "\"msg_test_0002\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,"
    "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,"
    "\"cache_read_input_tokens\":4000,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
    "{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n";

static void run_bug08(const char *delta_usage)
{
    char text[4096];
    usage_anthropic_stream_t st;

    snprintf(text, sizeof(text),
             "%sevent: message_delta\n"
             "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
             "\"end_turn\",\"stop_sequence\":null},\"usage\":%s}\n\n"
             "event: message_stop\n"
             "data: {\"type\":\"message_stop\"}\n\n",
             bug08_start, delta_usage);
    usage_anthropic_stream_init(&st);
    assert_int_equal(feed_sse(text, on_anthropic, &st), 0);
    expect_usage(&st.usage,
                 (want_t){.input = 4025, .cached = 4000, .output = 300});
    assert_true(st.stopped);
}

/* BUG-08: counts repeated in message_delta are replaced, never summed. */
static void test_anthropic_stream_bug08_repeated_counts(void **state)
{
    run_bug08("{\"input_tokens\":25,\"cache_creation_input_tokens\":0,"
              "\"cache_read_input_tokens\":4000,\"output_tokens\":300}");
}

static void test_anthropic_stream_bug08_output_only_delta(void **state)
{
    run_bug08("{\"output_tokens\":300}");
}

static void test_anthropic_stream_nulls_keep_start_values(void **state)
{
    run_bug08("{\"input_tokens\":null,\"cache_creation_input_tokens\":null,"
              "\"cache_read_input_tokens\":null,\"cache_creation\":null,"
              "\"server_tool_use\":null,\"output_tokens_details\":null,"
              "\"output_tokens\":300}");
}

/* Server tools: input grows during the turn; the delta's value wins. */
static void test_anthropic_stream_server_tools_replace_input(void **state)
{
    static const char text[] =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"model\":"
        "\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":100,"
        "\"cache_creation_input_tokens\":50,\"cache_read_input_tokens\":0,"
        "\"output_tokens\":1}}}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"tool_use\"},\"usage\":{\"input_tokens\":2100,"
        "\"cache_read_input_tokens\":700,\"cache_creation\":"
        "{\"ephemeral_1h_input_tokens\":50},\"server_tool_use\":"
        "{\"web_search_requests\":2},\"output_tokens\":90}}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":140,"
        "\"server_tool_use\":{\"web_search_requests\":3},"
        "\"output_tokens_details\":{\"thinking_tokens\":60}}}\n\n"
        "event: message_stop\n"
        "data: {\"type\":\"message_stop\"}\n\n";
    usage_anthropic_stream_t st;

    usage_anthropic_stream_init(&st);
    assert_int_equal(feed_sse(text, on_anthropic, &st), 0);
    expect_usage(&st.usage, (want_t){.input = 2850,
                                     .cached = 700,
                                     .write = 50,
                                     .write_1h = 50,
                                     .output = 140,
                                     .reasoning = 60,
                                     .searches = 3});
    assert_string_equal(st.stop_reason, "end_turn");
}

static void test_anthropic_stream_error_mid_stream(void **state)
{
    char text[4096];
    usage_anthropic_stream_t st;

    snprintf(text, sizeof(text),
             "%sevent: error\n"
             "data: {\"type\":\"error\",\"error\":{\"type\":"
             "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
             bug08_start);
    usage_anthropic_stream_init(&st);
    assert_int_equal(feed_sse(text, on_anthropic, &st), 0);
    assert_true(st.error);
    assert_string_equal(st.error_type, "overloaded_error");
    assert_false(st.stopped);
    assert_string_equal(st.stop_reason, "");

    /* The input side is known; output is only message_start's placeholder,
     * so the caller must not treat this as a finished call. */
    expect_usage(&st.usage,
                 (want_t){.input = 4025, .cached = 4000, .output = 1});
}

static void test_anthropic_stream_ignores_unknown_and_ping(void **state)
{
    usage_anthropic_stream_t st;
    const char *unknown = "{\"type\":\"fallback\",\"to\":\"other\"}";
    const char *ping = "{\"type\":\"ping\"}";

    usage_anthropic_stream_init(&st);
    assert_int_equal(
        usage_anthropic_stream_feed(&st, "ping", ping, strlen(ping)), 0);
    assert_int_equal(
        usage_anthropic_stream_feed(&st, "fallback", unknown, strlen(unknown)),
        0);
    assert_int_equal(
        usage_anthropic_stream_feed(&st, "", unknown, strlen(unknown)), 0);
    assert_int_equal(
        usage_anthropic_stream_feed(&st, "content_block_delta", "not json", 8),
        0);
    assert_false(st.started);
    assert_false(st.error);
    expect_not_present(&st.usage);
}

static void test_anthropic_stream_delta_without_start(void **state)
{
    const char *delta = "{\"type\":\"message_delta\",\"usage\":"
                        "{\"output_tokens\":300}}";
    usage_anthropic_stream_t st;

    usage_anthropic_stream_init(&st);
    assert_int_equal(
        usage_anthropic_stream_feed(&st, NULL, delta, strlen(delta)), 0);
    assert_false(st.usage.present);
    assert_int_equal(st.usage.output_tokens, 300);
}

static void test_anthropic_stream_bad_delta_spoils_usage(void **state)
{
    char text[4096];
    usage_anthropic_stream_t st;

    snprintf(text, sizeof(text),
             "%sevent: message_delta\n"
             "data: {\"type\":\"message_delta\",\"usage\":"
             "{\"output_tokens\":\"300\"}}\n\n"
             "event: message_delta\n"
             "data: {\"type\":\"message_delta\",\"usage\":"
             "{\"output_tokens\":310}}\n\n"
             "event: message_stop\n"
             "data: {\"type\":\"message_stop\"}\n\n",
             bug08_start);
    usage_anthropic_stream_init(&st);
    assert_int_equal(feed_sse(text, on_anthropic, &st), 1);
    assert_true(st.invalid);
    assert_true(st.stopped);
    expect_not_present(&st.usage);
}

static void test_anthropic_stream_bad_start(void **state)
{
    const char *start = "{\"type\":\"message_start\",\"message\":{"
                        "\"usage\":{\"input_tokens\":-1,"
                        "\"output_tokens\":1}}}";
    usage_anthropic_stream_t st;

    usage_anthropic_stream_init(&st);
    assert_int_equal(
        usage_anthropic_stream_feed(&st, "message_start", start, strlen(start)),
        -EINVAL);
    assert_true(st.invalid);
    assert_false(st.started);
    expect_not_present(&st.usage);
}

/* ---- Gemini native ---- */

static void test_gemini_v19_thoughts_added_to_output(void **state)
{
    usage_t u;

    assert_int_equal(
        usage_read_gemini(
            json("{\"usageMetadata\":{\"promptTokenCount\":120000,"
                 "\"cachedContentTokenCount\":100000,"
                 "\"candidatesTokenCount\":2000,\"thoughtsTokenCount\":3000,"
                 "\"totalTokenCount\":125000},"
                 "\"modelVersion\":\"gemini-2.5-pro\"}"),
            &u),
        0);
    expect_usage(&u, (want_t){.input = 120000,
                              .cached = 100000,
                              .output = 5000,
                              .reasoning = 3000});
}

static void test_gemini_tool_prompt_and_audio(void **state)
{
    usage_t u;

    assert_int_equal(
        usage_read_gemini(
            json("{\"usageMetadata\":{\"promptTokenCount\":1000,"
                 "\"toolUsePromptTokenCount\":250,"
                 "\"candidatesTokenCount\":80,"
                 "\"promptTokensDetails\":[{\"modality\":\"TEXT\","
                 "\"tokenCount\":400},{\"modality\":\"AUDIO\","
                 "\"tokenCount\":600},null,{\"modality\":\"AUDIO\"}],"
                 "\"candidatesTokensDetails\":[{\"modality\":\"AUDIO\","
                 "\"tokenCount\":50}]}}"),
            &u),
        0);
    expect_usage(
        &u, (want_t){
                .input = 1250, .audio_in = 600, .output = 80, .audio_out = 50});
}

/* A blocked prompt has no candidates, and Gemini leaves out zeros. */
static void test_gemini_absent_counts_are_zero(void **state)
{
    usage_t u;

    assert_int_equal(
        usage_read_gemini(json("{\"promptFeedback\":{\"blockReason\":"
                               "\"SAFETY\"},\"usageMetadata\":{"
                               "\"promptTokenCount\":42,"
                               "\"candidatesTokenCount\":null,"
                               "\"promptTokensDetails\":null}}"),
                          &u),
        0);
    expect_usage(&u, (want_t){.input = 42});
}

static void test_gemini_rejects_bad_metadata(void **state)
{
    static const char *const texts[] = {
        "{\"usageMetadata\":{}}",
        "{\"usageMetadata\":{\"promptTokenCount\":null}}",
        "{\"usageMetadata\":{\"promptTokenCount\":\"5\"}}",
        "{\"usageMetadata\":{\"promptTokenCount\":5,"
        "\"thoughtsTokenCount\":-2}}",
        "{\"usageMetadata\":{\"promptTokenCount\":5,"
        "\"candidatesTokenCount\":700000000000,"
        "\"thoughtsTokenCount\":700000000000}}",
        "{\"usageMetadata\":{\"promptTokenCount\":5,"
        "\"promptTokensDetails\":{\"modality\":\"AUDIO\"}}}",
        "{\"usageMetadata\":{\"promptTokenCount\":5,"
        "\"promptTokensDetails\":[{\"modality\":\"AUDIO\","
        "\"tokenCount\":1.5}]}}",
        "{\"usageMetadata\":7}",
    };
    usage_t u;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (usage_read_gemini(json(texts[i]), &u) != -EINVAL)
            fail_msg("accepted %s", texts[i]);
        expect_not_present(&u);
    }
    assert_int_equal(usage_read_gemini(json("{\"candidates\":[]}"), &u),
                     -ENOENT);
}

static const char v20_stream[] =
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
    "[{\"text\":\"The\"}]},\"index\":0}],\"usageMetadata\":{"
    "\"promptTokenCount\":250000,\"candidatesTokenCount\":12,"
    "\"thoughtsTokenCount\":1000,\"totalTokenCount\":251012},"
    "\"modelVersion\":\"gemini-2.5-pro\"}\n\n"
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
    "[{\"text\":\" report\"}]},\"index\":0}],\"usageMetadata\":{"
    "\"promptTokenCount\":250000,\"candidatesTokenCount\":2100,"
    "\"thoughtsTokenCount\":1000,\"totalTokenCount\":253100},"
    "\"modelVersion\":\"gemini-2.5-pro\"}\n\n"
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":"
    "[{\"text\":\".\"}]},\"finishReason\":\"STOP\",\"index\":0}],"
    "\"usageMetadata\":{\"promptTokenCount\":250000,"
    "\"candidatesTokenCount\":4000,\"thoughtsTokenCount\":1000,"
    "\"totalTokenCount\":255000},\"modelVersion\":\"gemini-2.5-pro\"}\n\n";

static void test_gemini_stream_v20_last_chunk_wins(void **state)
{
    usage_gemini_stream_t st;

    usage_gemini_stream_init(&st);
    assert_int_equal(feed_sse(v20_stream, on_gemini, &st), 0);
    expect_usage(&st.usage,
                 (want_t){.input = 250000, .output = 5000, .reasoning = 1000});
    assert_true(st.finished);
    assert_false(st.error);
    assert_string_equal(st.model, "gemini-2.5-pro");
}

static void test_gemini_stream_cut_and_error(void **state)
{
    const char *first = strstr(v20_stream, "\n\n") + 2;
    const char *bad = "{\"usageMetadata\":{\"promptTokenCount\":-1}}";
    char text[sizeof(v20_stream) + 128];
    usage_gemini_stream_t st;

    memcpy(text, v20_stream, (size_t)(first - v20_stream));
    snprintf(text + (first - v20_stream), 128,
             "data: {\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}"
             "\n\n");
    usage_gemini_stream_init(&st);
    assert_int_equal(feed_sse(text, on_gemini, &st), 0);
    assert_true(st.error);
    assert_false(st.finished);

    /* The last usage seen is kept; the caller sees the stream was cut. */
    expect_usage(&st.usage,
                 (want_t){.input = 250000, .output = 1012, .reasoning = 1000});
    assert_int_equal(usage_gemini_stream_feed(&st, bad, strlen(bad)), -EINVAL);
    assert_true(st.invalid);
    expect_not_present(&st.usage);
}

/* ---- embeddings ---- */

static void test_embeddings_prompt_is_input(void **state)
{
    usage_t u;

    assert_int_equal(
        usage_read_embeddings(json("{\"object\":\"list\",\"usage\":{"
                                   "\"prompt_tokens\":8,"
                                   "\"total_tokens\":8}}"),
                              &u),
        0);
    expect_usage(&u, (want_t){.input = 8});
    assert_int_equal(
        usage_read_embeddings(json("{\"usage\":{\"total_tokens\":11}}"), &u),
        0);
    expect_usage(&u, (want_t){.input = 11});
    assert_int_equal(
        usage_read_embeddings(json("{\"usage\":{\"prompt_tokens\":null,"
                                   "\"total_tokens\":12}}"),
                              &u),
        0);
    expect_usage(&u, (want_t){.input = 12});
}

static void test_embeddings_rejects_bad_usage(void **state)
{
    usage_t u;

    assert_int_equal(usage_read_embeddings(json("{\"usage\":{}}"), &u),
                     -EINVAL);
    assert_int_equal(
        usage_read_embeddings(json("{\"usage\":{\"prompt_tokens\":-8}}"), &u),
        -EINVAL);
    expect_not_present(&u);
    assert_int_equal(usage_read_embeddings(json("{\"data\":[]}"), &u), -ENOENT);
}

/* ---- estimation ---- */

static int64_t estimate(const char *text)
{
    return usage_estimate_tokens(text, strlen(text));
}

static void test_estimate_counts_each_kind_of_run(void **state)
{
    assert_int_equal(estimate(""), 0);
    assert_int_equal(estimate("hello world"), 2);
    assert_int_equal(estimate("Hello, world!"), 4);
    assert_int_equal(estimate("it's"), 2);
    assert_int_equal(estimate("it\xe2\x80\x99s"), 2);
    assert_int_equal(estimate("'tis"), 2);
    assert_int_equal(estimate("internationalization"), 4);
    assert_int_equal(
        estimate("12345678901234567890123456789012345678901234567890"), 17);
    assert_int_equal(estimate("a    b"), 3);
    assert_int_equal(estimate("\n\n\n"), 1);
    assert_int_equal(estimate("x();"), 3);
    assert_int_equal(estimate("\xe6\x88\x91\xe4\xbb\xac"), 2);
    assert_int_equal(estimate("\xf0\x9f\x91\x8d"), 2);
    assert_int_equal(estimate("caf\xc3\xa9"), 2);
    assert_int_equal(usage_estimate_tokens("\xff\xfe\xc3", 3), 3);
    assert_int_equal(usage_estimate_tokens("ab\0cd", 5), 3);
}

static void test_estimate_is_deterministic_and_bounded(void **state)
{
    static char text[1 << 16];

    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)(i * 131 + 7);
    assert_int_equal(usage_estimate_tokens(text, sizeof(text)),
                     usage_estimate_tokens(text, sizeof(text)));
    assert_true(usage_estimate_tokens(text, sizeof(text)) <=
                (int64_t)sizeof(text) * 2);
    memset(text, 'a', 1000);
    assert_int_equal(usage_estimate_tokens(text, 1000), 249);
}

/* The golden strings' real counts sum to 387 (o200k) and 445 (cl100k);
 * the estimate's sum is pinned so a change to it is seen here. */
static void test_estimate_against_golden_vectors(void **state)
{
    const char *shared = getenv("TOLLGATE_SHARED");
    char path[4096];
    struct json_object *root, *vectors;
    int64_t real[2] = {0, 0}, est[2] = {0, 0};

    snprintf(path, sizeof(path), "%s/data/tiktoken/golden_vectors.json",
             shared != NULL ? shared : "../shared");
    if (access(path, R_OK) != 0) {
        printf("SKIP test_usage golden vectors: %s missing\n", path);
        return;
    }
    root = json_object_from_file(path);
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "vectors", &vectors));
    for (size_t i = 0; i < json_object_array_length(vectors); i++) {
        struct json_object *v = json_object_array_get_idx(vectors, i), *f;
        int o200k;

        assert_true(json_object_object_get_ex(v, "encoding", &f));
        o200k = strcmp(json_object_get_string(f), "o200k_base") == 0;
        assert_true(json_object_object_get_ex(v, "count", &f));
        real[o200k] += json_object_get_int64(f);
        assert_true(json_object_object_get_ex(v, "text", &f));
        est[o200k] += usage_estimate_tokens(json_object_get_string(f),
                                            json_object_get_string_len(f));
    }
    json_object_put(root);
    assert_int_equal(real[1], 387);
    assert_int_equal(real[0], 445);
    assert_int_equal(est[1], 519);
    assert_int_equal(est[0], 519);
}

/* ---- visible text ---- */

typedef struct pieces {
    char text[256];
    int calls;
} pieces_t;

static void collect(void *ctx, const char *text, size_t len)
{
    pieces_t *p = ctx;
    size_t used = strlen(p->text);

    snprintf(p->text + used, sizeof(p->text) - used, "%.*s|", (int)len, text);
    p->calls++;
}

static const char *event_text(const char *text)
{
    static pieces_t p;
    int n;

    memset(&p, 0, sizeof(p));
    n = usage_event_text(json(text), collect, &p);
    assert_int_equal(n, p.calls);
    return p.text;
}

static void test_event_text_of_each_shape(void **state)
{
    assert_string_equal(
        event_text("{\"choices\":[{\"delta\":{\"content\":\"Hi\","
                   "\"refusal\":null,\"tool_calls\":[{\"index\":0,"
                   "\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}},null]}},"
                   "{\"delta\":{\"reasoning_content\":\"hmm\"}}],"
                   "\"usage\":null}"),
        "Hi|{\"a\":1}|hmm|");
    assert_string_equal(
        event_text("{\"type\":\"content_block_delta\",\"index\":0,"
                   "\"delta\":{\"type\":\"text_delta\",\"text\":\"Sure\"}}"),
        "Sure|");
    assert_string_equal(
        event_text("{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
                   "\"input_json_delta\",\"partial_json\":\"{\\\"q\"}}"),
        "{\"q|");
    assert_string_equal(event_text("{\"type\":\"response.output_text.delta\","
                                   "\"delta\":\"Hello\"}"),
                        "Hello|");
    assert_string_equal(
        event_text("{\"type\":\"response.function_call_arguments.delta\","
                   "\"delta\":\"{}\"}"),
        "{}|");
    assert_string_equal(
        event_text("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
                   "\"The\"},{\"inlineData\":{}},{\"text\":\" end\"}]}}]}"),
        "The| end|");
}

static void test_event_text_skips_what_is_not_text(void **state)
{
    static const char *const texts[] = {
        "{\"type\":\"response.audio.delta\",\"delta\":\"UklGRg==\"}",
        "{\"type\":\"response.completed\",\"response\":{}}",
        "{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
        "\"signature_delta\",\"signature\":\"abc\"}}",
        "{\"type\":\"message_start\",\"message\":{\"content\":[]}}",
        "{\"type\":\"ping\"}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":1}}",
        "{\"choices\":[{\"delta\":{\"content\":\"\"}}]}",
        "{\"choices\":[{\"delta\":null},7]}",
        "{\"choices\":{\"delta\":{\"content\":\"x\"}}}",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (event_text(texts[i])[0] != '\0')
            fail_msg("found text in %s", texts[i]);
    assert_int_equal(usage_event_text(NULL, collect, NULL), 0);
}

static void test_estimate_event_counts_what_passed(void **state)
{
    const char *chunk = "{\"choices\":[{\"delta\":{\"content\":"
                        "\"Hello, world!\"}}]}";
    const char *delta = "{\"type\":\"content_block_delta\",\"delta\":"
                        "{\"type\":\"text_delta\",\"text\":\"hello world\"}}";

    assert_int_equal(usage_estimate_event(chunk, strlen(chunk)), 4);
    assert_int_equal(usage_estimate_event(delta, strlen(delta)), 2);
    assert_int_equal(usage_estimate_event("[DONE]", 6), 0);
    assert_int_equal(usage_estimate_event("", 0), 0);
    assert_int_equal(usage_estimate_event(NULL, 0), 0);
}

#define TEST(fn) cmocka_unit_test_teardown(fn, parsed_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_read_count_takes_whole_numbers_in_range),
        TEST(test_read_count_rejects_what_no_call_can_have),
        TEST(test_read_tier_maps_every_name),
        TEST(test_read_tier_rejects_a_tier_not_a_string),
        TEST(test_chat_v1_plain),
        TEST(test_chat_v2_cached_is_a_subset),
        TEST(test_chat_v3_reasoning_is_inside_output),
        TEST(test_chat_v4_audio_counts_are_subsets),
        TEST(test_chat_v5_predictions_are_not_added),
        TEST(test_chat_v11_service_tier_is_read),
        TEST(test_chat_subset_larger_than_parent_is_kept),
        TEST(test_chat_missing_usage_is_not_invalid_usage),
        TEST(test_chat_bad_usage_or_tier_fails_whole),
        TEST(test_chat_stream_v6_takes_the_usage_chunk),
        TEST(test_chat_stream_v7_cut_leaves_usage_missing),
        TEST(test_chat_stream_bug10_usage_asked_for_is_read),
        TEST(test_chat_stream_error_chunk_is_seen),
        TEST(test_chat_stream_last_usage_wins_even_if_broken),
        TEST(test_gemini_openai_adds_thoughts_left_out),
        TEST(test_gemini_openai_leaves_openai_meaning_alone),
        TEST(test_fix_gemini_openai_rule),
        TEST(test_chat_stream_gemini_compat_last_chunk_wins),
        TEST(test_responses_stream_v8_completed),
        TEST(test_responses_stream_without_event_names),
        TEST(test_responses_stream_incomplete_is_still_billed),
        TEST(test_responses_stream_failed_and_error_events),
        TEST(test_responses_stream_failed_with_usage),
        TEST(test_responses_stream_cut_and_bad_terminal),
        TEST(test_responses_object_counts_web_searches),
        TEST(test_responses_object_rejects_bad_totals),
        TEST(test_anthropic_v12_three_buckets_summed),
        TEST(test_anthropic_v13_one_hour_writes),
        TEST(test_anthropic_v17_web_searches),
        TEST(test_anthropic_v18_tier_and_geo),
        TEST(test_anthropic_bug01_cache_buckets),
        TEST(test_anthropic_bug03_thinking_not_added),
        TEST(test_anthropic_nulls_count_zero),
        TEST(test_anthropic_rejects_bad_usage),
        TEST(test_anthropic_stream_v14_last_output_wins),
        TEST(test_anthropic_stream_bug08_repeated_counts),
        TEST(test_anthropic_stream_bug08_output_only_delta),
        TEST(test_anthropic_stream_nulls_keep_start_values),
        TEST(test_anthropic_stream_server_tools_replace_input),
        TEST(test_anthropic_stream_error_mid_stream),
        TEST(test_anthropic_stream_ignores_unknown_and_ping),
        TEST(test_anthropic_stream_delta_without_start),
        TEST(test_anthropic_stream_bad_delta_spoils_usage),
        TEST(test_anthropic_stream_bad_start),
        TEST(test_gemini_v19_thoughts_added_to_output),
        TEST(test_gemini_tool_prompt_and_audio),
        TEST(test_gemini_absent_counts_are_zero),
        TEST(test_gemini_rejects_bad_metadata),
        TEST(test_gemini_stream_v20_last_chunk_wins),
        TEST(test_gemini_stream_cut_and_error),
        TEST(test_embeddings_prompt_is_input),
        TEST(test_embeddings_rejects_bad_usage),
        TEST(test_estimate_counts_each_kind_of_run),
        TEST(test_estimate_is_deterministic_and_bounded),
        TEST(test_estimate_against_golden_vectors),
        TEST(test_event_text_of_each_shape),
        TEST(test_event_text_skips_what_is_not_text),
        TEST(test_estimate_event_counts_what_passed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
