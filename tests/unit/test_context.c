/*
 * Context trimming: each rule on small hand-written conversations (exact
 * output), tool calls kept with their results, Anthropic cache
 * breakpoints and alternation, OpenAI's cached prefix, the risk flag,
 * idempotence and budgets that cannot be met. Counts are exact o200k.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "context/context.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tokens_encoding_t *enc;
static arena_t *arena;

static int suite_setup(void **state)
{
    arena = arena_new(1 << 16);
    if (tokens_load(TOKENS_O200K, NULL, &enc) != 0) {
        const char *shared = getenv("TOLLGATE_SHARED");

        printf("SKIP test_context: %s/data/tiktoken/o200k_base.tiktoken "
               "missing\n",
               shared != NULL ? shared : "../shared");
        enc = NULL;
    }
    return 0;
}

static int suite_teardown(void **state)
{
    tokens_free(enc);
    arena_free(arena);
    return 0;
}

static const tokens_encoding_t *enc_get(void)
{
    if (enc == NULL)
        skip();
    return enc;
}

static void policy_from(const char *json, context_policy_t *policy)
{
    json_object *obj = json_tokener_parse(json);
    char err[256];

    assert_non_null(obj);
    assert_int_equal(context_policy_parse(obj, policy, err, sizeof(err)), 0);
    json_object_put(obj);
}

/* Trims REQ by POLICY; checks the re-trim changes nothing. */
static context_result_t trim_check(context_surface_t surface, const char *req,
                                   const char *policy, const char *model)
{
    json_object *obj = json_tokener_parse(req), *out;
    context_policy_t pol;
    context_result_t r, again;

    assert_non_null(obj);
    policy_from(policy, &pol);
    assert_int_equal(
        context_trim(arena, surface, obj, &pol, enc_get(), model, &r), 0);
    if (r.changed) {
        out = json_tokener_parse(r.body);
        assert_non_null(out);
        assert_int_equal(
            context_trim(arena, surface, out, &pol, enc, model, &again), 0);
        assert_false(again.changed);
        assert_int_equal(again.tokens_before, r.tokens_after);
        json_object_put(out);
    }
    json_object_put(obj);
    return r;
}

static int64_t chat_tokens(const char *body)
{
    json_object *obj = json_tokener_parse(body);
    tokens_chat_t chat;

    assert_int_equal(tokens_count_chat(enc, "gpt-4o", obj, &chat), 0);
    json_object_put(obj);
    return chat.total;
}

static const char *const chat3 =
    "{\"model\":\"gpt-4o\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"user\",\"content\":\"What is the capital of Burkina "
    "Faso?\"},"
    "{\"role\":\"assistant\",\"content\":\"Ouagadougou.\"},"
    "{\"role\":\"user\",\"content\":\"And of Kyrgyzstan?\"},"
    "{\"role\":\"assistant\",\"content\":\"Bishkek.\"},"
    "{\"role\":\"user\",\"content\":\"Spell the first one backwards.\"}]}";

static void test_keep_last_turns_drops_older_turns(void **state)
{
    context_result_t r = trim_check(CONTEXT_OPENAI_CHAT, chat3,
                                    "{\"keep_last_turns\":1}", "gpt-4o");

    assert_string_equal(r.body,
                        "{\"model\":\"gpt-4o\",\"messages\":["
                        "{\"role\":\"system\",\"content\":\"You are terse.\"},"
                        "{\"role\":\"user\",\"content\":\"Spell the first one "
                        "backwards.\"}]}");
    assert_int_equal(r.tokens_before, 61);
    assert_int_equal(r.tokens_after, 21);
    assert_int_equal(r.tokens_before, chat_tokens(chat3));
    assert_int_equal(r.tokens_after, chat_tokens(r.body));
    assert_int_equal(r.removed[CONTEXT_RULE_OLD_TURNS].items, 4);
    assert_int_equal(r.removed[CONTEXT_RULE_OLD_TURNS].tokens, 40);
    assert_int_equal(r.messages_dropped, 4);
    assert_false(r.estimated);
    assert_false(r.risk);
}

static void test_no_rule_leaves_request_unchanged(void **state)
{
    context_result_t r = trim_check(CONTEXT_OPENAI_CHAT, chat3, "{}", "gpt-4o");

    assert_false(r.changed);
    assert_null(r.body);
    assert_int_equal(r.tokens_before, 61);
    assert_int_equal(r.tokens_after, 61);
}

static void test_budget_drops_oldest_turns_until_it_fits(void **state)
{
    context_result_t r = trim_check(CONTEXT_OPENAI_CHAT, chat3,
                                    "{\"budget_tokens\":45}", "gpt-4o");

    assert_int_equal(r.tokens_after, 40);
    assert_int_equal(r.removed[CONTEXT_RULE_BUDGET].items, 2);
    assert_int_equal(r.removed[CONTEXT_RULE_BUDGET].tokens, 21);
    assert_false(r.over_budget);
    assert_non_null(strstr(r.body, "Kyrgyzstan"));
    assert_null(strstr(r.body, "Burkina"));
}

static void test_budget_unreachable_keeps_system_and_last_turn(void **state)
{
    context_result_t r = trim_check(CONTEXT_OPENAI_CHAT, chat3,
                                    "{\"budget_tokens\":5}", "gpt-4o");

    assert_true(r.over_budget);
    assert_int_equal(r.tokens_after, 21);
    assert_string_equal(r.body,
                        "{\"model\":\"gpt-4o\",\"messages\":["
                        "{\"role\":\"system\",\"content\":\"You are terse.\"},"
                        "{\"role\":\"user\",\"content\":\"Spell the first one "
                        "backwards.\"}]}");
}

static const char *const tools2 =
    "{\"model\":\"gpt-4o\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are a weather bot.\"},"
    "{\"role\":\"user\",\"content\":\"Weather in Reykjavik?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
    "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Reykjavik\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"Reykjavik:"
    " 3 C, wind 12 m/s from the north-east, light snow showers through the"
    " evening, visibility 4 km, pressure 1003 hPa and falling, humidity 87"
    " percent, sunrise 11:02, sunset 15:41.\"},"
    "{\"role\":\"assistant\",\"content\":\"3 C and light snow.\"},"
    "{\"role\":\"user\",\"content\":\"And in Tromso?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
    "\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Tromso\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"Tromso: "
    "-6 C, calm, clear sky, polar night, aurora forecast high, humidity 70"
    " percent.\"},"
    "{\"role\":\"assistant\",\"content\":\"-6 C and clear.\"},"
    "{\"role\":\"user\",\"content\":\"Which is colder?\"}]}";

static void test_stale_tool_result_becomes_marker(void **state)
{
    context_result_t r =
        trim_check(CONTEXT_OPENAI_CHAT, tools2,
                   "{\"tool_result_max_age_turns\":2}", "gpt-4o");

    assert_non_null(strstr(
        r.body, "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":"
                "\"[tool result removed by the gateway: 57 tokens, 3 "
                "replies old]\"}"));
    assert_non_null(strstr(r.body, "aurora forecast high"));
    assert_int_equal(r.removed[CONTEXT_RULE_TOOL_RESULTS].items, 1);
    /* 57 tokens of weather out, the 17-token marker in */
    assert_int_equal(r.removed[CONTEXT_RULE_TOOL_RESULTS].tokens, 40);
    assert_int_equal(r.tokens_before, 181);
    assert_int_equal(r.tokens_after, 141);
    assert_int_equal(r.tokens_after, chat_tokens(r.body));
}

/* Every tool message answers a call of the assistant message before its
 * run of tool messages. */
static void openai_pairs_check(const char *body)
{
    json_object *obj = json_tokener_parse(body), *msgs, *calls = NULL;

    json_object_object_get_ex(obj, "messages", &msgs);
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *v, *id;
        const char *role;
        bool found = false;

        json_object_object_get_ex(m, "role", &v);
        role = json_object_get_string(v);
        if (strcmp(role, "tool") != 0) {
            calls = json_object_object_get_ex(m, "tool_calls", &v) ? v : NULL;
            continue;
        }
        assert_non_null(calls);
        json_object_object_get_ex(m, "tool_call_id", &id);
        for (size_t k = 0; k < json_object_array_length(calls); k++) {
            json_object *c = json_object_array_get_idx(calls, k), *cid;

            json_object_object_get_ex(c, "id", &cid);
            found = found || strcmp(json_object_get_string(cid),
                                    json_object_get_string(id)) == 0;
        }
        assert_true(found);
    }
    json_object_put(obj);
}

static void test_openai_tool_call_and_result_drop_together(void **state)
{
    for (int budget = 5; budget <= 200; budget += 5) {
        char policy[64];
        context_result_t r;

        snprintf(policy, sizeof(policy), "{\"budget_tokens\":%d}", budget);
        r = trim_check(CONTEXT_OPENAI_CHAT, tools2, policy, "gpt-4o");
        if (r.changed)
            openai_pairs_check(r.body);
    }
}

static void test_huge_tool_output_keeps_head_and_tail(void **state)
{
    char *req = malloc(64 * 1024), *p;
    context_result_t r;
    json_object *out, *msgs, *v;
    const char *content;

    p = req + sprintf(req, "{\"model\":\"gpt-4o\",\"messages\":["
                           "{\"role\":\"user\",\"content\":\"List rows\"},"
                           "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
                           "\"c1\",\"type\":\"function\",\"function\":{"
                           "\"name\":\"rows\",\"arguments\":\"{}\"}}]},"
                           "{\"role\":\"tool\",\"tool_call_id\":\"c1\","
                           "\"content\":\"");
    for (int i = 0; i < 300; i++)
        p += sprintf(p, "row %d: value %d\\n", i, i * 7);
    sprintf(p, "\"}]}");
    r = trim_check(CONTEXT_OPENAI_CHAT, req, "{\"tool_output_max_tokens\":64}",
                   "gpt-4o");

    out = json_tokener_parse(r.body);
    json_object_object_get_ex(out, "messages", &msgs);
    json_object_object_get_ex(json_object_array_get_idx(msgs, 2), "content",
                              &v);
    content = json_object_get_string(v);
    assert_true(tokens_count(enc, content, strlen(content)) <= 64);
    assert_memory_equal(content, "row 0: value 0\nrow 1:", 21);
    assert_non_null(strstr(content, "tokens cut by the gateway ...]\n"));
    assert_non_null(strstr(content, "row 299: value 2093\n"));
    assert_int_equal(r.removed[CONTEXT_RULE_TOOL_OUTPUT].items, 1);
    assert_int_equal(r.removed[CONTEXT_RULE_TOOL_OUTPUT].tokens,
                     r.tokens_before - r.tokens_after);
    assert_int_equal(r.tokens_after, chat_tokens(r.body));
    json_object_put(out);
    free(req);
}

#define SPEC                                                                   \
    "Zephyrine service specification, version 1. The Quorvex module owns "     \
    "billing: it prices every call, writes one ledger row per outcome and "    \
    "reconciles the ledger with the provider invoices each night. The "        \
    "Halcyon module owns routing: it picks the cheapest tier that passes "     \
    "the task checks and escalates on failure. Both modules log with the "     \
    "outcome id on every line and never log prompt text. Deployments go "      \
    "through the staging cluster first, then the two production regions, "     \
    "one at a time, with a 30 minute soak between them. Owners: Quorvex is "   \
    "run by Marisol Ventrakis, Halcyon by Idris Okonkwo-Baptiste."

static const char *const anthropic_docs =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"messages\":["
    "{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{"
    "\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"" SPEC
    "\"}},{\"type\":\"text\",\"text\":\"Summarise.\"}]},"
    "{\"role\":\"assistant\",\"content\":\"Two modules, staged deploys.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{"
    "\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"" SPEC
    "\"}},{\"type\":\"text\",\"text\":\"Who owns billing?\"}]}]}";

static void test_resent_document_becomes_marker(void **state)
{
    context_result_t r =
        trim_check(CONTEXT_ANTHROPIC, anthropic_docs,
                   "{\"drop_resent_documents\":true}", "claude-sonnet-4-5");
    const char *last = strstr(r.body, "{\"role\":\"user\",\"content\":[{"
                                      "\"type\":\"text\",\"text\":\"[doc");

    assert_non_null(last);
    assert_string_equal(
        last, "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
              "\"[document removed by the gateway: identical to one sent "
              "earlier in this conversation]\"},{\"type\":\"text\",\"text\":"
              "\"Who owns billing?\"}]}]}");
    assert_true(r.estimated);
    assert_int_equal(r.removed[CONTEXT_RULE_DOCUMENTS].items, 1);
    /* Claude: o200k counts times 1.25; the spec is 139 tokens, the
     * marker 16: (139 - 16) * 1.25 */
    assert_int_equal(r.tokens_before, 385);
    assert_int_equal(r.removed[CONTEXT_RULE_DOCUMENTS].tokens, 153);
    assert_int_equal(r.tokens_after, 232);
    assert_false(r.risk);
}

#define RULES                                                                  \
    "Answer in formal English and cite the section of the handbook for "       \
    "every claim."

static const char *const repeats =
    "{\"model\":\"gpt-4o\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"You answer HR questions.\\n\\n" RULES
    "\"},"
    "{\"role\":\"user\",\"content\":\"" RULES
    "\\n\\nHow many vacation days do I get?\"},"
    "{\"role\":\"assistant\",\"content\":\"25 days (section 4.1).\"},"
    "{\"role\":\"user\",\"content\":\"" RULES "\"},"
    "{\"role\":\"assistant\",\"content\":\"Understood.\"},"
    "{\"role\":\"user\",\"content\":\"" RULES
    "\\n\\nCan I carry them over?\"}]}";

static void test_repeated_instructions_are_removed(void **state)
{
    context_result_t r =
        trim_check(CONTEXT_OPENAI_CHAT, repeats,
                   "{\"drop_repeated_instructions\":true}", "gpt-4o");

    assert_string_equal(
        r.body,
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"You answer HR "
        "questions.\\n\\n" RULES "\"},"
        "{\"role\":\"user\",\"content\":\"\\n\\nHow many vacation days do I "
        "get?\"},"
        "{\"role\":\"assistant\",\"content\":\"25 days (section 4.1).\"},"
        "{\"role\":\"user\",\"content\":\"[instructions repeated from "
        "earlier removed]\"},"
        "{\"role\":\"assistant\",\"content\":\"Understood.\"},"
        "{\"role\":\"user\",\"content\":\"\\n\\nCan I carry them over?\"}]}");
    assert_int_equal(r.removed[CONTEXT_RULE_REPEATED].items, 3);
    assert_int_equal(r.tokens_after, chat_tokens(r.body));
    assert_int_equal(r.tokens_before - r.tokens_after,
                     r.removed[CONTEXT_RULE_REPEATED].tokens);
}

static void test_last_turn_that_is_only_a_repeat_stays(void **state)
{
    const char *req = "{\"model\":\"gpt-4o\",\"messages\":["
                      "{\"role\":\"user\",\"content\":\"" RULES "\"},"
                      "{\"role\":\"assistant\",\"content\":\"Understood.\"},"
                      "{\"role\":\"user\",\"content\":\"" RULES "\"}]}";
    context_result_t r =
        trim_check(CONTEXT_OPENAI_CHAT, req,
                   "{\"drop_repeated_instructions\":true}", "gpt-4o");

    assert_false(r.changed);
}

/* An Anthropic agent loop: two questions, each with a tool round. */
#define LOOP_TURN_1                                                            \
    "{\"role\":\"user\",\"content\":\"Find the owner of Quorvex.\"},"          \
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"        \
    "\"Looking it up.\"},{\"type\":\"tool_use\",\"id\":\"tu_1\",\"name\":"     \
    "\"lookup\",\"input\":{\"q\":\"Quorvex owner\"}}]},"                       \
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","               \
    "\"tool_use_id\":\"tu_1\",\"content\":\"Owner: Marisol Ventrakis, team "   \
    "Halcyon, based in Lisbon.\"%s}]},"                                        \
    "{\"role\":\"assistant\",\"content\":\"Marisol Ventrakis owns it.\"},"
#define LOOP_TURN_2                                                            \
    "{\"role\":\"user\",\"content\":\"List her open tickets.\"},"              \
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":"      \
    "\"tu_2\",\"name\":\"tickets\",\"input\":{\"owner\":\"mventrakis\"}}]},"   \
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","               \
    "\"tool_use_id\":\"tu_2\",\"content\":\"QX-101 invoices late; QX-117 "     \
    "ledger drift; QX-120 refunds.\"}]},"                                      \
    "{\"role\":\"assistant\",\"content\":\"Three: QX-101, QX-117, "            \
    "QX-120.\"},"

static char *loop_request(const char *cache)
{
    static char buf[4096];

    snprintf(buf, sizeof(buf),
             "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,"
             "\"messages\":[" LOOP_TURN_1 LOOP_TURN_2
             "{\"role\":\"user\",\"content\":\"Which is the oldest?\"}]}",
             cache);
    return buf;
}

/* First message a user's, roles alternating, every tool_result answering
 * a tool_use of the message just before. */
static void anthropic_valid_check(const char *body)
{
    json_object *obj = json_tokener_parse(body), *msgs, *prev = NULL;

    json_object_object_get_ex(obj, "messages", &msgs);
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        json_object *m = json_object_array_get_idx(msgs, i), *role, *c;
        const char *r;

        json_object_object_get_ex(m, "role", &role);
        r = json_object_get_string(role);
        assert_string_equal(r, i % 2 == 0 ? "user" : "assistant");
        json_object_object_get_ex(m, "content", &c);
        for (size_t k = 0; json_object_is_type(c, json_type_array) &&
                           k < json_object_array_length(c);
             k++) {
            json_object *b = json_object_array_get_idx(c, k), *id;
            const char *want;

            if (!json_object_object_get_ex(b, "tool_use_id", &id))
                continue;
            want = json_object_get_string(id);
            assert_non_null(prev);
            assert_non_null(strstr(json_object_to_json_string(prev), want));
        }
        prev = m;
    }
    json_object_put(obj);
}

static void test_anthropic_tool_use_and_result_drop_together(void **state)
{
    const char *req = loop_request("");

    for (int budget = 5; budget <= 300; budget += 5) {
        char policy[64];
        context_result_t r;

        snprintf(policy, sizeof(policy), "{\"budget_tokens\":%d}", budget);
        r = trim_check(CONTEXT_ANTHROPIC, req, policy, "claude-sonnet-4-5");
        if (r.changed)
            anthropic_valid_check(r.body);
    }
}

static void test_anthropic_never_touches_cached_prefix(void **state)
{
    const char *req = loop_request(",\"cache_control\":{\"type\":"
                                   "\"ephemeral\"}");
    context_result_t r =
        trim_check(CONTEXT_ANTHROPIC, req,
                   "{\"budget_tokens\":10,\"tool_result_max_age_turns\":1}",
                   "claude-sonnet-4-5");
    json_object *in = json_tokener_parse(req), *out, *a, *b;

    assert_true(r.over_budget);
    out = json_tokener_parse(r.body);
    json_object_object_get_ex(in, "messages", &a);
    json_object_object_get_ex(out, "messages", &b);
    assert_int_equal(json_object_array_length(b), 5);
    for (size_t i = 0; i < 4; i++)
        assert_true(json_object_equal(json_object_array_get_idx(a, i),
                                      json_object_array_get_idx(b, i)));
    anthropic_valid_check(r.body);
    assert_int_equal(r.removed[CONTEXT_RULE_BUDGET].items, 4);
    json_object_put(in);
    json_object_put(out);
}

static void test_anthropic_respect_cache_off_trims_prefix(void **state)
{
    const char *req = loop_request(",\"cache_control\":{\"type\":"
                                   "\"ephemeral\"}");
    context_result_t r = trim_check(
        CONTEXT_ANTHROPIC, req,
        "{\"budget_tokens\":10,\"respect_cache\":false}", "claude-sonnet-4-5");

    assert_int_equal(r.removed[CONTEXT_RULE_BUDGET].items, 8);
    assert_true(r.over_budget);
}

static void test_anthropic_alternation_blocks_a_drop(void **state)
{
    const char *req =
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Read "
        "this.\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
        "{\"role\":\"user\",\"content\":\"First question.\"},"
        "{\"role\":\"assistant\",\"content\":\"First answer.\"},"
        "{\"role\":\"user\",\"content\":\"Second question.\"},"
        "{\"role\":\"assistant\",\"content\":\"Second answer.\"},"
        "{\"role\":\"user\",\"content\":\"Third question.\"}]}";
    context_result_t r = trim_check(
        CONTEXT_ANTHROPIC, req, "{\"keep_last_turns\":1}", "claude-sonnet-4-5");

    assert_non_null(strstr(r.body, "First question"));
    assert_null(strstr(r.body, "Second question"));
    assert_int_equal(r.messages_dropped, 2);
}

static void test_openai_cached_prefix_is_kept(void **state)
{
    context_result_t r = trim_check(
        CONTEXT_OPENAI_CHAT, chat3,
        "{\"keep_last_turns\":1,\"openai_cached_prefix_tokens\":20}", "gpt-4o");

    assert_non_null(strstr(r.body, "Burkina"));
    assert_non_null(strstr(r.body, "Ouagadougou"));
    assert_null(strstr(r.body, "Kyrgyzstan"));
    assert_int_equal(r.messages_dropped, 2);
}

static void test_openai_cache_control_part_is_a_breakpoint(void **state)
{
    const char *req =
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Old "
        "question.\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"Old answer.\"},"
        "{\"role\":\"user\",\"content\":\"Middle question.\"},"
        "{\"role\":\"assistant\",\"content\":\"Middle answer.\"},"
        "{\"role\":\"user\",\"content\":\"New question.\"}]}";
    context_result_t r = trim_check(CONTEXT_OPENAI_CHAT, req,
                                    "{\"keep_last_turns\":1}", "gpt-4o");

    assert_non_null(strstr(r.body, "Old answer"));
    assert_null(strstr(r.body, "Middle"));
}

static const char *const names =
    "{\"model\":\"gpt-4o\",\"messages\":["
    "{\"role\":\"user\",\"content\":\"Who owns Quorvex billing?\"},"
    "{\"role\":\"assistant\",\"content\":\"Marisol Ventrakis; her deputy "
    "is Bob.\"},"
    "{\"role\":\"user\",\"content\":\"Where is the office?\"},"
    "{\"role\":\"assistant\",\"content\":\"In Lisbon.\"},"
    "{\"role\":\"user\",\"content\":\"%s\"}]}";

static context_result_t names_trim(const char *question)
{
    static char req[1024];

    snprintf(req, sizeof(req), names, question);
    return trim_check(CONTEXT_OPENAI_CHAT, req, "{\"keep_last_turns\":1}",
                      "gpt-4o");
}

static void test_anthropic_stale_tool_result_becomes_marker(void **state)
{
    const char *req =
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"messages\":["
        "{\"role\":\"user\",\"content\":\"Check the spec.\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"tu_9\",\"name\":\"spec\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"tu_9\",\"content\":[{\"type\":\"text\","
        "\"text\":\"" SPEC "\"}]}]},"
        "{\"role\":\"assistant\",\"content\":\"Staged deploys.\"},"
        "{\"role\":\"user\",\"content\":\"Why?\"},"
        "{\"role\":\"assistant\",\"content\":\"Safety.\"},"
        "{\"role\":\"user\",\"content\":\"Fine.\"}]}";
    context_result_t r =
        trim_check(CONTEXT_ANTHROPIC, req, "{\"tool_result_max_age_turns\":2}",
                   "claude-sonnet-4-5");

    assert_non_null(strstr(
        r.body, "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                "\"tool_use_id\":\"tu_9\",\"content\":\"[tool result "
                "removed by the gateway: 139 tokens, 2 replies old]\"}]}"));
    assert_int_equal(r.removed[CONTEXT_RULE_TOOL_RESULTS].items, 1);
    anthropic_valid_check(r.body);
}

static void test_keep_system_keeps_mid_conversation_system(void **state)
{
    const char *req =
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Old question.\"},"
        "{\"role\":\"system\",\"content\":\"The user is on the free "
        "plan.\"},"
        "{\"role\":\"assistant\",\"content\":\"Old answer.\"},"
        "{\"role\":\"user\",\"content\":\"New question.\"}]}";
    context_result_t r = trim_check(CONTEXT_OPENAI_CHAT, req,
                                    "{\"keep_last_turns\":1}", "gpt-4o");

    assert_non_null(strstr(r.body, "free plan"));
    assert_null(strstr(r.body, "Old"));
    r = trim_check(CONTEXT_OPENAI_CHAT, req,
                   "{\"keep_last_turns\":1,\"keep_system\":false}", "gpt-4o");
    assert_null(strstr(r.body, "free plan"));
    assert_non_null(strstr(r.body, "Be brief."));
}

static void test_risk_flags_rare_words_and_names(void **state)
{
    context_result_t r =
        names_trim("Does Ventrakis approve refunds, or does Bob?");

    assert_true(r.risk);
    assert_int_equal(r.n_risk_words, 2);
    assert_string_equal(r.risk_words[0], "Ventrakis");
    assert_string_equal(r.risk_words[1], "Bob");

    /* long words match in any case; "billing" was only in the dropped
     * question */
    r = names_trim("Is QUORVEX billing audited?");
    assert_true(r.risk);
    assert_int_equal(r.n_risk_words, 2);
    assert_string_equal(r.risk_words[0], "QUORVEX");
    assert_string_equal(r.risk_words[1], "billing");
}

static void test_risk_misses_common_words_and_kept_text(void **state)
{
    context_result_t r = names_trim("What should I write about today?");

    assert_true(r.changed);
    assert_false(r.risk);

    /* lower-case "bob" is not the name; "Lisbon" is gone but short of
     * nothing: it is a rare word and must be flagged */
    r = names_trim("can bob work from there?");
    assert_false(r.risk);
    r = names_trim("Is the Lisbon office open?");
    assert_true(r.risk);
    assert_string_equal(r.risk_words[0], "Lisbon");
}

static void test_risk_ignores_words_still_sent(void **state)
{
    const char *req =
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Project Quorvex support.\"},"
        "{\"role\":\"user\",\"content\":\"Quorvex crashed.\"},"
        "{\"role\":\"assistant\",\"content\":\"Restart it.\"},"
        "{\"role\":\"user\",\"content\":\"Quorvex still crashes.\"}]}";
    context_result_t r = trim_check(CONTEXT_OPENAI_CHAT, req,
                                    "{\"keep_last_turns\":1}", "gpt-4o");

    assert_true(r.changed);
    assert_false(r.risk);
}

static void test_all_rules_are_idempotent(void **state)
{
    const char *all =
        "{\"keep_last_turns\":2,\"drop_repeated_instructions\":true,"
        "\"drop_resent_documents\":true,\"tool_result_max_age_turns\":1,"
        "\"tool_output_max_tokens\":64,\"budget_tokens\":60}";
    const char *openai[] = {chat3, tools2, repeats};
    context_result_t r;

    for (size_t i = 0; i < 3; i++) {
        r = trim_check(CONTEXT_OPENAI_CHAT, openai[i], all, "gpt-4o");
        assert_true(r.changed);
    }
    r = trim_check(CONTEXT_ANTHROPIC, anthropic_docs, all, "claude-sonnet-4-5");
    assert_true(r.changed);
    r = trim_check(CONTEXT_ANTHROPIC, loop_request(""), all,
                   "claude-sonnet-4-5");
    anthropic_valid_check(r.body);
}

static void test_estimates_without_encoding(void **state)
{
    json_object *obj = json_tokener_parse(chat3);
    context_policy_t pol;
    context_result_t r;

    policy_from("{\"keep_last_turns\":1}", &pol);
    assert_int_equal(
        context_trim(arena, CONTEXT_OPENAI_CHAT, obj, &pol, NULL, "gpt-4o", &r),
        0);
    /* a token per 4 bytes of each string, 3 per message, 3 priming */
    assert_true(r.estimated);
    assert_int_equal(r.tokens_before, 63);
    assert_int_equal(r.tokens_after, 24);

    /* Claude through an o200k count: 1.25 times, rounded up */
    assert_int_equal(context_trim(arena, CONTEXT_OPENAI_CHAT, obj, &pol,
                                  enc_get(), "claude-sonnet-4-5", &r),
                     0);
    assert_true(r.estimated);
    assert_int_equal(r.tokens_before, 77);
    assert_int_equal(r.tokens_before - r.tokens_after,
                     r.removed[CONTEXT_RULE_OLD_TURNS].tokens);
    json_object_put(obj);
}

static void test_bad_input_is_refused(void **state)
{
    json_object *obj = json_tokener_parse("{\"model\":\"gpt-4o\"}");
    context_policy_t pol;
    context_result_t r;

    context_policy_default(&pol);
    assert_int_equal(
        context_trim(arena, CONTEXT_OPENAI_CHAT, obj, &pol, NULL, "gpt-4o", &r),
        -EINVAL);
    pol.tool_output_max = 10;
    json_object_put(obj);
    obj = json_tokener_parse(chat3);
    assert_int_equal(
        context_trim(arena, CONTEXT_OPENAI_CHAT, obj, &pol, NULL, "gpt-4o", &r),
        -EINVAL);
    json_object_put(obj);
}

static void test_policy_parse(void **state)
{
    json_object *obj = json_tokener_parse(
        "{\"budget_tokens\":\"8000\",\"keep_system\":\"false\","
        "\"keep_last_turns\":6,\"drop_repeated_instructions\":true,"
        "\"tool_result_max_age_turns\":3,\"tool_output_max_tokens\":2000,"
        "\"drop_resent_documents\":true,\"respect_cache\":false,"
        "\"openai_cached_prefix_tokens\":1024}");
    context_policy_t p;
    char err[256];

    assert_int_equal(context_policy_parse(obj, &p, err, sizeof(err)), 0);
    assert_int_equal(p.budget_tokens, 8000);
    assert_false(p.keep_system);
    assert_int_equal(p.keep_last_turns, 6);
    assert_true(p.drop_repeated);
    assert_int_equal(p.tool_result_age, 3);
    assert_int_equal(p.tool_output_max, 2000);
    assert_true(p.drop_documents);
    assert_false(p.respect_cache);
    assert_int_equal(p.openai_prefix_tokens, 1024);
    json_object_put(obj);

    obj = json_tokener_parse("{\"keep_last\":2}");
    assert_int_equal(context_policy_parse(obj, &p, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "unknown context key 'keep_last'"));
    json_object_put(obj);
    obj = json_tokener_parse("{\"tool_output_max_tokens\":10}");
    assert_int_equal(context_policy_parse(obj, &p, err, sizeof(err)), -EINVAL);
    json_object_put(obj);

    assert_int_equal(context_policy_parse(NULL, &p, err, sizeof(err)), 0);
    assert_true(p.keep_system);
    assert_true(p.respect_cache);
    assert_string_equal(context_rule_name(CONTEXT_RULE_TOOL_OUTPUT),
                        "tool_output");
}

static void test_saved_dollars_at_input_price(void **state)
{
    price_table_t *table = billing_table_new();
    const price_t *price = billing_lookup(table, "gpt-4o");

    assert_non_null(price);
    /* $2.50 per million input tokens */
    assert_int_equal(context_saved_pico(price, 40), INT64_C(100000000));
    assert_int_equal(context_saved_pico(price, 0), 0);
    assert_int_equal(context_saved_pico(NULL, 40), 0);
    assert_int_equal(context_saved_pico(price, INT64_MAX), INT64_MAX);
    billing_table_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_last_turns_drops_older_turns),
        cmocka_unit_test(test_no_rule_leaves_request_unchanged),
        cmocka_unit_test(test_budget_drops_oldest_turns_until_it_fits),
        cmocka_unit_test(test_budget_unreachable_keeps_system_and_last_turn),
        cmocka_unit_test(test_stale_tool_result_becomes_marker),
        cmocka_unit_test(test_openai_tool_call_and_result_drop_together),
        cmocka_unit_test(test_huge_tool_output_keeps_head_and_tail),
        cmocka_unit_test(test_resent_document_becomes_marker),
        cmocka_unit_test(test_repeated_instructions_are_removed),
        cmocka_unit_test(test_last_turn_that_is_only_a_repeat_stays),
        cmocka_unit_test(test_anthropic_tool_use_and_result_drop_together),
        cmocka_unit_test(test_anthropic_never_touches_cached_prefix),
        cmocka_unit_test(test_anthropic_respect_cache_off_trims_prefix),
        cmocka_unit_test(test_anthropic_alternation_blocks_a_drop),
        cmocka_unit_test(test_openai_cached_prefix_is_kept),
        cmocka_unit_test(test_openai_cache_control_part_is_a_breakpoint),
        cmocka_unit_test(test_anthropic_stale_tool_result_becomes_marker),
        cmocka_unit_test(test_keep_system_keeps_mid_conversation_system),
        cmocka_unit_test(test_risk_flags_rare_words_and_names),
        cmocka_unit_test(test_risk_misses_common_words_and_kept_text),
        cmocka_unit_test(test_risk_ignores_words_still_sent),
        cmocka_unit_test(test_all_rules_are_idempotent),
        cmocka_unit_test(test_estimates_without_encoding),
        cmocka_unit_test(test_bad_input_is_refused),
        cmocka_unit_test(test_policy_parse),
        cmocka_unit_test(test_saved_dollars_at_input_price),
    };

    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
