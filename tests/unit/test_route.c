/*
 * Route rules: features read from each request shape, and the first
 * matching rule picking the start tier (tokens, tools, images, format,
 * pattern on the last user turn, key, team), else the default.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "route/rules.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static char err[300];

static route_rules_t *rules_from(const char *text, int default_tier)
{
    struct json_object *arr = json_tokener_parse(text);
    route_rules_t *rules = NULL;

    assert_non_null(arr);
    if (route_rules_parse_json(arr, default_tier, &rules, err, sizeof(err)) !=
        0)
        fail_msg("route_rules_parse_json: %s", err);
    json_object_put(arr);
    return rules;
}

static int rules_error(const char *text)
{
    struct json_object *arr = json_tokener_parse(text);
    route_rules_t *rules = NULL;
    int rc = route_rules_parse_json(arr, 0, &rules, err, sizeof(err));

    json_object_put(arr);
    assert_null(rules);
    return rc;
}

/* Features of a request given as JSON text; the parsed request is kept
 * in *req because the features point into it. */
static void features_of(const char *text, struct json_object **req,
                        route_features_t *f)
{
    *req = json_tokener_parse(text);
    assert_non_null(*req);
    assert_int_equal(route_features_from_request(*req, f), 0);
}

static void assert_part(const route_features_t *f, size_t i, const char *text)
{
    assert_true(i < f->n_last_user);
    assert_int_equal(f->last_user_len[i], strlen(text));
    assert_memory_equal(f->last_user[i], text, strlen(text));
}

static void test_features_openai_chat(void **state)
{
    struct json_object *req;
    route_features_t f;

    features_of("{\"model\":\"m\",\"messages\":["
                "{\"role\":\"system\",\"content\":\"be brief\"},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                "\"text\":\"what is this?\"},{\"type\":\"image_url\","
                "\"image_url\":{\"url\":\"data:...\"}}]},"
                "{\"role\":\"assistant\",\"content\":\"a cat\"},"
                "{\"role\":\"user\",\"content\":\"and the colour?\"}],"
                "\"tools\":[{\"type\":\"function\"}],"
                "\"response_format\":{\"type\":\"json_schema\"}}",
                &req, &f);
    assert_true(f.has_tools);
    assert_true(f.has_images);
    assert_int_equal(f.response_format, ROUTE_FORMAT_JSON_SCHEMA);
    assert_int_equal(f.n_last_user, 1);
    assert_part(&f, 0, "and the colour?");
    assert_int_equal(f.input_tokens, 0);
    assert_null(f.key);
    json_object_put(req);
}

static void test_features_chat_legacy_functions_and_empty_tools(void **state)
{
    struct json_object *req;
    route_features_t f;

    features_of("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                "\"tools\":[],\"functions\":[{\"name\":\"f\"}],"
                "\"response_format\":{\"type\":\"json_object\"}}",
                &req, &f);
    assert_true(f.has_tools);
    assert_false(f.has_images);
    assert_int_equal(f.response_format, ROUTE_FORMAT_JSON_OBJECT);
    json_object_put(req);

    features_of("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                "\"tools\":[]}",
                &req, &f);
    assert_false(f.has_tools);
    assert_int_equal(f.response_format, ROUTE_FORMAT_NONE);
    json_object_put(req);
}

static void test_features_anthropic_messages(void **state)
{
    struct json_object *req;
    route_features_t f;

    features_of("{\"model\":\"claude\",\"system\":\"sys\",\"max_tokens\":9,"
                "\"messages\":[{\"role\":\"user\",\"content\":["
                "{\"type\":\"image\",\"source\":{\"type\":\"base64\"}},"
                "{\"type\":\"text\",\"text\":\"Translate this:\"},"
                "{\"type\":\"text\",\"text\":\"bonjour\"}]}],"
                "\"tools\":[{\"name\":\"t\"}],"
                "\"output_format\":{\"type\":\"json_schema\"}}",
                &req, &f);
    assert_true(f.has_tools);
    assert_true(f.has_images);
    assert_int_equal(f.response_format, ROUTE_FORMAT_JSON_SCHEMA);
    assert_int_equal(f.n_last_user, 2);
    assert_part(&f, 0, "Translate this:");
    assert_part(&f, 1, "bonjour");
    json_object_put(req);
}

static void test_features_anthropic_tool_result_turn_has_no_text(void **state)
{
    struct json_object *req;
    route_features_t f;

    features_of(
        "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"content\":\"42\"}]}]}",
        &req, &f);
    assert_int_equal(f.n_last_user, 0);
    json_object_put(req);
}

static void test_features_responses_shapes(void **state)
{
    struct json_object *req;
    route_features_t f;

    features_of("{\"model\":\"m\",\"input\":\"summarise the memo\","
                "\"text\":{\"format\":{\"type\":\"json_schema\"}}}",
                &req, &f);
    assert_int_equal(f.n_last_user, 1);
    assert_part(&f, 0, "summarise the memo");
    assert_int_equal(f.response_format, ROUTE_FORMAT_JSON_SCHEMA);
    assert_false(f.has_tools);
    json_object_put(req);

    features_of("{\"input\":[{\"role\":\"user\",\"content\":["
                "{\"type\":\"input_text\",\"text\":\"describe\"},"
                "{\"type\":\"input_image\",\"image_url\":\"https://x\"}]},"
                "{\"type\":\"function_call_output\",\"output\":\"{}\"}],"
                "\"tools\":[{\"type\":\"web_search\"}],"
                "\"text\":{\"format\":{\"type\":\"text\"}}}",
                &req, &f);
    assert_int_equal(f.n_last_user, 1);
    assert_part(&f, 0, "describe");
    assert_true(f.has_images);
    assert_true(f.has_tools);
    assert_int_equal(f.response_format, ROUTE_FORMAT_TEXT);
    json_object_put(req);
}

static void test_features_not_an_object(void **state)
{
    struct json_object *req = json_object_new_array();
    route_features_t f;

    assert_int_equal(route_features_from_request(req, &f), -22);
    assert_int_equal(f.n_last_user, 0);
    json_object_put(req);
}

static const char *const example_rules =
    "[{\"when\":{\"images\":true},\"start_tier\":2},"
    " {\"when\":{\"min_input_tokens\":8000},\"start_tier\":2},"
    " {\"when\":{\"tools\":true,\"response_format\":[\"json_schema\"]},"
    "  \"start_tier\":1},"
    " {\"when\":{\"last_user_matches\":\"(?i)^(prove|derive)\\\\b\"},"
    "  \"start_tier\":1},"
    " {\"when\":{\"key\":\"ci-bot\",\"max_input_tokens\":500},"
    "  \"start_tier\":0},"
    " {\"when\":{\"team\":[\"research\",\"legal\"]},\"start_tier\":1}]";

static int pick(const route_rules_t *rules, const route_features_t *f)
{
    int matched = -2;
    int tier = route_rules_pick(rules, f, &matched);

    return tier * 100 + matched; /* both in one exact value */
}

static void test_rules_first_match_wins(void **state)
{
    route_rules_t *rules = rules_from(example_rules, 3);
    route_features_t f;

    memset(&f, 0, sizeof(f));
    assert_int_equal(pick(rules, &f), 300 - 1); /* default, no rule */

    f.has_images = true;
    f.input_tokens = 9000;
    assert_int_equal(pick(rules, &f), 200); /* rule 0 before rule 1 */
    f.has_images = false;
    assert_int_equal(pick(rules, &f), 201);
    f.input_tokens = 7999;
    assert_int_equal(pick(rules, &f), 299);
    assert_int_equal(route_rules_max_tier(rules), 3);
    route_rules_free(rules);
}

static void test_rules_tools_and_format_must_both_hold(void **state)
{
    route_rules_t *rules = rules_from(example_rules, 3);
    route_features_t f;

    memset(&f, 0, sizeof(f));
    f.has_tools = true;
    assert_int_equal(pick(rules, &f), 299);
    f.response_format = ROUTE_FORMAT_JSON_OBJECT;
    assert_int_equal(pick(rules, &f), 299);
    f.response_format = ROUTE_FORMAT_JSON_SCHEMA;
    assert_int_equal(pick(rules, &f), 102);
    route_rules_free(rules);
}

static void test_rules_pattern_on_last_user_turn(void **state)
{
    route_rules_t *rules = rules_from(example_rules, 3);
    struct json_object *req;
    route_features_t f;

    features_of("{\"messages\":[{\"role\":\"user\",\"content\":\"Prove it\"},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                "\"text\":\"context first\"},{\"type\":\"text\","
                "\"text\":\"DERIVE the bound\"}]}]}",
                &req, &f);
    assert_int_equal(pick(rules, &f), 103);
    json_object_put(req);

    features_of("{\"messages\":[{\"role\":\"user\",\"content\":\"Prove it\"},"
                "{\"role\":\"user\",\"content\":\"disprove it\"}]}",
                &req, &f);
    assert_int_equal(pick(rules, &f), 299); /* only the last turn counts */
    json_object_put(req);
    route_rules_free(rules);
}

static void test_rules_key_and_team(void **state)
{
    route_rules_t *rules = rules_from(example_rules, 3);
    route_features_t f;

    memset(&f, 0, sizeof(f));
    f.key = "ci-bot";
    f.input_tokens = 400;
    assert_int_equal(pick(rules, &f), 4);
    f.input_tokens = 501;
    assert_int_equal(pick(rules, &f), 299);
    f.key = "other";
    f.team = "legal";
    assert_int_equal(pick(rules, &f), 105);
    f.team = "sales";
    assert_int_equal(pick(rules, &f), 299);
    f.team = NULL;
    assert_int_equal(pick(rules, &f), 299);
    route_rules_free(rules);
}

static void test_rules_images_false_and_tokens_inclusive(void **state)
{
    route_rules_t *rules =
        rules_from("[{\"when\":{\"images\":false,\"min_input_tokens\":10,"
                   "\"max_input_tokens\":20},\"start_tier\":1}]",
                   0);
    route_features_t f;

    memset(&f, 0, sizeof(f));
    f.input_tokens = 10;
    assert_int_equal(pick(rules, &f), 100);
    f.input_tokens = 20;
    assert_int_equal(pick(rules, &f), 100);
    f.has_images = true;
    assert_int_equal(pick(rules, &f), -1);
    route_rules_free(rules);
}

static void test_rules_compile_from_desc_copies_strings(void **state)
{
    char team[16] = "ops";
    const char *teams[] = {team};
    route_rule_desc_t d;
    route_rules_t *rules;
    route_features_t f;

    route_when_init(&d.when);
    d.when.teams = teams;
    d.when.n_teams = 1;
    d.when.last_user_matches = "urgent";
    d.start_tier = 2;
    assert_int_equal(route_rules_compile(&d, 1, 0, &rules, err, sizeof(err)),
                     0);
    strcpy(team, "xxx");

    memset(&f, 0, sizeof(f));
    f.team = "ops";
    f.last_user[0] = "this is urgent";
    f.last_user_len[0] = 14;
    f.n_last_user = 1;
    assert_int_equal(pick(rules, &f), 200);
    f.last_user_len[0] = 8; /* the pattern sees only the part's bytes */
    assert_int_equal(pick(rules, &f), -1);
    route_rules_free(rules);
}

static void test_rules_errors_name_the_rule(void **state)
{
    assert_int_equal(rules_error("[{\"start_tier\":1},{\"when\":{}}]"), -22);
    assert_string_equal(err, "rule 1: start_tier missing");
    assert_int_equal(rules_error("[{\"when\":{\"tool\":true},"
                                 "\"start_tier\":1}]"),
                     -22);
    assert_string_equal(err, "rule 0: unknown condition 'tool'");
    assert_int_equal(rules_error("[{\"when\":{\"response_format\":\"xml\"},"
                                 "\"start_tier\":1}]"),
                     -22);
    assert_int_equal(rules_error("[{\"when\":{\"last_user_matches\":\"(\"},"
                                 "\"start_tier\":1}]"),
                     -22);
    assert_int_equal(rules_error("[{\"when\":{},\"start_tier\":-1}]"), -22);
    assert_string_equal(err, "rule 0: start_tier must be 0 or more");
    assert_int_equal(rules_error("[{\"when\":{\"min_input_tokens\":9,"
                                 "\"max_input_tokens\":3},\"start_tier\":0}]"),
                     -22);
    assert_int_equal(rules_error("{}"), -22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_openai_chat),
        cmocka_unit_test(test_features_chat_legacy_functions_and_empty_tools),
        cmocka_unit_test(test_features_anthropic_messages),
        cmocka_unit_test(test_features_anthropic_tool_result_turn_has_no_text),
        cmocka_unit_test(test_features_responses_shapes),
        cmocka_unit_test(test_features_not_an_object),
        cmocka_unit_test(test_rules_first_match_wins),
        cmocka_unit_test(test_rules_tools_and_format_must_both_hold),
        cmocka_unit_test(test_rules_pattern_on_last_user_turn),
        cmocka_unit_test(test_rules_key_and_team),
        cmocka_unit_test(test_rules_images_false_and_tokens_inclusive),
        cmocka_unit_test(test_rules_compile_from_desc_copies_strings),
        cmocka_unit_test(test_rules_errors_name_the_rule),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
