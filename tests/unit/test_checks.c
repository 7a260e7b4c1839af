/*
 * Answer checks: every kind passes and fails with its exact reason, all
 * checks run even after one fails, refusals are found where they start,
 * and final_number is measured on the GSM8K answers in routellm-evals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "route/checks.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[400];

static checks_t *from_json(const char *text)
{
    struct json_object *obj = json_tokener_parse(text);
    checks_t *set = NULL;
    int rc;

    assert_non_null(obj);
    rc = checks_parse_json(obj, &set, err, sizeof(err));
    json_object_put(obj);
    if (rc != 0)
        fail_msg("checks_parse_json: %s", err);
    return set;
}

static int parse_error(const char *text)
{
    struct json_object *obj = json_tokener_parse(text);
    checks_t *set = NULL;
    int rc;

    assert_non_null(obj);
    rc = checks_parse_json(obj, &set, err, sizeof(err));
    json_object_put(obj);
    assert_null(set);
    return rc;
}

/* Runs the set on answer and returns the failure text ("" when all
 * passed); the result is kept in last. */
static checks_result_t last;
static char failures[800];

static const char *run(const checks_t *set, const char *answer,
                       const char *finish_reason)
{
    checks_run(set, answer, strlen(answer), finish_reason, &last);
    return checks_failures(&last, failures, sizeof(failures));
}

static void test_checks_json_valid_and_invalid_at_byte(void **state)
{
    checks_t *set = from_json("{\"json\": true}");

    assert_string_equal(run(set, "{\"a\": [1, 2]}", "stop"), "");
    assert_string_equal(run(set, "  42 ", "stop"), "");
    assert_string_equal(run(set, "null", "stop"), "");
    assert_string_equal(run(set, "{\"total\": 12, \"items\": [1, 2,]}", NULL),
                        "json: invalid at byte 29");
    assert_string_equal(run(set, "{'a': 1}", NULL), "json: invalid at byte 1");
    assert_string_equal(run(set, "{\"a\": 1} trailing", NULL),
                        "json: invalid at byte 9");
    assert_string_equal(run(set, "   ", NULL), "json: empty answer");
    assert_false(last.passed);
    checks_free(set);
}

static void test_checks_schema_reason_has_pointer(void **state)
{
    checks_t *set = from_json(
        "{\"schema\": {\"type\": \"object\", \"required\": [\"items\"],"
        " \"properties\": {\"items\": {\"type\": \"array\", \"items\":"
        " {\"properties\": {\"price\": {\"type\": \"number\"}}}}}}}");

    assert_string_equal(run(set, "{\"items\": [{\"price\": 1.5}]}", "stop"),
                        "");
    assert_string_equal(
        run(set,
            "{\"items\": [{\"price\": 1}, {\"price\": 2}, {\"price\": \"3\"}]}",
            "stop"),
        "schema: /items/2/price: expected number");
    /* A schema implies json; both say what went wrong. */
    assert_string_equal(run(set, "items: none", "stop"),
                        "json: invalid at byte 0; schema: answer is not JSON");
    assert_int_equal(last.n_run, 2);
    assert_int_equal(last.n_failed, 2);
    checks_free(set);
}

static void test_checks_patterns(void **state)
{
    checks_t *set = from_json("{\"must_match\": \"(?i)^summary:\","
                              " \"must_not_match\": \"\\\\bTODO\\\\b\"}");

    assert_string_equal(run(set, "SUMMARY: all good", NULL), "");
    assert_string_equal(run(set, "Here is the summary: fine", NULL),
                        "must_match: no match for '(?i)^summary:'");
    assert_string_equal(run(set, "Summary: TODO later", NULL),
                        "must_not_match: '\\bTODO\\b' matched");
    assert_string_equal(run(set, "Summary: TODOS later", NULL), "");
    checks_free(set);
}

static void test_checks_length_counts_code_points(void **state)
{
    checks_t *set = from_json("{\"min_chars\": 3, \"max_chars\": 5}");

    assert_string_equal(run(set, "abc", NULL), "");
    /* Five code points, ten bytes. */
    assert_string_equal(
        run(set, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL), "");
    assert_string_equal(run(set, "ab", NULL),
                        "answer has 2 chars, min_chars is 3");
    assert_string_equal(run(set, "abcdef", NULL),
                        "answer has 6 chars, max_chars is 5");
    checks_free(set);
}

static void test_checks_truncation_by_finish_reason(void **state)
{
    checks_t *set = from_json("{\"no_truncation\": true}");

    assert_string_equal(run(set, "done", "stop"), "");
    assert_string_equal(run(set, "done", "end_turn"), "");
    assert_string_equal(run(set, "done", NULL), "");
    assert_string_equal(run(set, "cut", "length"), "finish_reason is length");
    assert_string_equal(run(set, "cut", "max_tokens"),
                        "finish_reason is max_tokens");
    assert_string_equal(run(set, "cut", "MAX_TOKENS"),
                        "finish_reason is MAX_TOKENS");
    assert_string_equal(run(set, "cut", "content_filter"),
                        "finish_reason is content_filter");
    checks_free(set);
}

static void test_checks_refusal_phrases_default(void **state)
{
    checks_t *set = from_json("{\"no_refusal\": true}");

    assert_string_equal(run(set, "I'm sorry, but I can't share that.", NULL),
                        "refusal phrase 'I'm sorry, but I can't'");
    /* The typographic apostrophe and case do not hide a refusal. */
    assert_string_equal(
        run(set, "i can\xe2\x80\x99t help with that request.", NULL),
        "refusal phrase 'I can't help with'");
    assert_string_equal(run(set, "Sure. Step one: open the file.", NULL), "");
    assert_string_equal(run(set, "Here you go.", "refusal"),
                        "finish_reason is refusal");
    checks_free(set);
}

static void test_checks_refusal_only_near_the_start(void **state)
{
    checks_t *set = from_json("{\"no_refusal\": true}");
    char answer[700];

    memset(answer, 'x', 450);
    answer[450] = ' ';
    strcpy(answer + 451, "I can't help with that, said the character.");
    assert_string_equal(run(set, answer, NULL), "");
    /* "AI can't help with" is not "I can't help with". */
    assert_string_equal(run(set, "AI can't help with taxes; humans can.", NULL),
                        "");
    checks_free(set);
}

static void test_checks_refusal_phrases_configured(void **state)
{
    checks_t *set = from_json("{\"refusal_phrases\": [\"outside my scope\", "
                              "\"n\xe2\x80\x99y peux\"]}");

    assert_string_equal(run(set, "That is outside my scope.", NULL),
                        "refusal phrase 'outside my scope'");
    assert_string_equal(run(set, "Je n'y peux rien.", NULL),
                        "refusal phrase 'n'y peux'");
    /* The configured list replaces the built-in one. */
    assert_string_equal(run(set, "I can't help with that.", NULL), "");
    checks_free(set);
}

static void test_checks_all_run_and_summary_lists_each(void **state)
{
    checks_t *set = from_json(
        "{\"no_truncation\": true, \"no_refusal\": true, \"min_chars\": 1,"
        " \"max_chars\": 10, \"json\": true, \"must_match\": \"x\","
        " \"must_not_match\": \"y\", \"final_number\": true}");
    char summary[300];

    assert_string_equal(run(set, "[\"xy\", 1, 2, 3]", "length"),
                        "finish_reason is length; "
                        "answer has 15 chars, max_chars is 10; "
                        "must_not_match: 'y' matched; "
                        "final_number: last line ends mid-sentence");
    assert_int_equal(last.n_run, 8);
    assert_int_equal(last.n_failed, 4);
    assert_string_equal(checks_summary(&last, summary, sizeof(summary)),
                        "no_truncation=fail,no_refusal=pass,min_chars=pass,"
                        "max_chars=fail,json=pass,must_match=pass,"
                        "must_not_match=fail,final_number=fail");
    checks_free(set);
}

static void test_checks_empty_set_passes_everything(void **state)
{
    checks_t *set = from_json("{}");

    assert_false(checks_any(set));
    assert_true(checks_run(set, "", 0, "length", &last));
    assert_int_equal(last.n_run, 0);
    checks_free(set);
}

static void test_checks_parse_errors_name_the_member(void **state)
{
    assert_int_equal(parse_error("{\"jsn\": true}"), -22);
    assert_string_equal(err, "checks: unknown member 'jsn'");
    assert_int_equal(parse_error("{\"json\": 1}"), -22);
    assert_string_equal(err, "checks: json must be true or false");
    assert_int_equal(parse_error("{\"min_chars\": -2}"), -22);
    assert_string_equal(err, "checks: min_chars must be a non-negative "
                             "integer");
    assert_int_equal(parse_error("{\"min_chars\": 9, \"max_chars\": 3}"), -22);
    assert_int_equal(parse_error("{\"must_match\": \"a(\"}"), -22);
    assert_true(strncmp(err, "must_match: ", 12) == 0);
    assert_int_equal(parse_error("{\"schema\": {\"type\": 5}}"), -22);
    assert_string_equal(err, "schema: schema /: type must be a string or an "
                             "array of strings");
    assert_int_equal(parse_error("{\"refusal_phrases\": [\"\"]}"), -22);
}

static void test_checks_compile_from_desc(void **state)
{
    static const char *const phrases[] = {"no can do"};
    checks_desc_t d;
    checks_t *set;

    checks_desc_init(&d);
    d.no_refusal = true;
    d.refusal_phrases = phrases;
    d.n_refusal_phrases = 1;
    d.final_number = true;
    assert_int_equal(checks_compile(&d, &set, err, sizeof(err)), 0);
    assert_string_equal(run(set, "No can do, sorry.", NULL),
                        "refusal phrase 'no can do'; "
                        "final_number: no number in the last line");
    assert_string_equal(run(set, "It costs 4 * 3 = 12 dollars.", NULL), "");
    checks_free(set);
}

/* final_number on answers written the way GSM8K answers are. */
static void expect_number(const char *answer, const char *number)
{
    char num[64], why[120];

    if (checks_final_number(answer, strlen(answer), num, sizeof(num), why,
                            sizeof(why)) != 0)
        fail_msg("'%s' failed: %s", answer, why);
    assert_string_equal(num, number);
}

static void expect_no_number(const char *answer, const char *reason)
{
    char why[120];

    assert_int_equal(
        checks_final_number(answer, strlen(answer), NULL, 0, why, sizeof(why)),
        -22);
    assert_string_equal(why, reason);
}

static void test_final_number_after_hash_marker(void **state)
{
    expect_number("Tom buys 4 packs of 6 pens, so he has 4 * 6 = "
                  "<<4*6=24>>24 pens.\nHe gives away 5, leaving 24 - 5 = "
                  "<<24-5=19>>19 pens.\n#### 19",
                  "19");
    expect_number("The fence needs 3 * 40 = <<3*40=120>>120 feet.\n"
                  "#### 1,200\n\n",
                  "1200");
    expect_number("She is 9 - 5 = 4 years old.\n\n#### Mia is 4 years old.",
                  "4");
    expect_no_number("The guns cannot be shared out evenly.\n\n"
                     "#### Cannot be shared equally.",
                     "no number after '####'");
}

static void test_final_number_in_a_finished_last_sentence(void **state)
{
    expect_number("Each box holds 12 apples and there are 3 boxes, so there "
                  "are 12 * 3 = 36 apples.\n\nAfter selling 10, the shop has "
                  "36 - 10 = 26 apples left.",
                  "26");
    expect_number("Rent and food come to $900 + $350 = $1,250.", "1250");
    expect_number("Total cost of the bike: 150 + 45 = $195", "195");
    expect_number("Now, two years later, the dog is 7 + 2 = 9 years old.", "9");
    expect_number("The level falls 8 - 13 = -5", "-5");
    expect_number("So the temperature is -5", "-5");
    expect_number("He ran 3 x 60 = <<3*60=180>>180 meters in all.\n\n"
                  "**540**",
                  "540");
    expect_number("The share is (2/8) * 100% = 25%", "25");
}

static void test_final_number_after_answer_markers(void **state)
{
    expect_number("Adding up the costs, the answer is $42.50 per week, which "
                  "she saves",
                  "42.50");
    expect_number("Steps...\nFinal Answer: 15 marbles", "15");
    expect_number("**Answer:** 12 cookies\n(assuming none broke", "12");
    expect_number("Thus $x = 7$ and the result is \\boxed{7}", "7");
}

static void test_final_number_rejects_cut_off_answers(void **state)
{
    expect_no_number("She pays 3 + 4 = <<3+4", "unfinished calculation '<<'");
    expect_no_number("The house is worth 80,000 + 50,000 = $<<80000+50000="
                     "130000>>130,00",
                     "number cut off in the last line");
    expect_no_number("So the price of the bag after 3",
                     "last line ends mid-sentence");
    expect_no_number("They ran 3 + 3 + 2500 - 200",
                     "last line ends mid-sentence");
    expect_no_number("The sloth must pick 12 per trip.\n\nSo there is no "
                     "whole-number answer with the information given.",
                     "no number in the last line");
    expect_no_number("  \n\t", "empty answer");
    expect_no_number("In each room, Bob washes 2 sheets, ",
                     "last line ends mid-sentence");
}

/* One CSV record of RFC 4180 text: fields may be quoted, hold newlines
 * and doubled quotes. Returns the number of fields read, 0 at the end. */
static int csv_record(FILE *f, char **fields, int max_fields, char *buf,
                      size_t buflen)
{
    int n = 0, c;
    size_t used = 0;
    int quoted = 0, at_start = 1;

    fields[0] = buf;
    while ((c = fgetc(f)) != EOF) {
        if (at_start && c == '"') {
            quoted = 1;
            at_start = 0;
            continue;
        }
        at_start = 0;
        if (quoted && c == '"') {
            c = fgetc(f);
            if (c != '"') {
                quoted = 0;
                if (c == EOF)
                    break;
            }
            if (c == '"') {
                buf[used++] = '"';
                continue;
            }
        }
        if (!quoted && (c == ',' || c == '\n')) {
            buf[used++] = '\0';
            if (++n == max_fields || c == '\n')
                return n;
            fields[n] = buf + used;
            at_start = 1;
            continue;
        }
        if (!quoted && c == '\r')
            continue;
        if (used + 2 < buflen)
            buf[used++] = (char)c;
    }
    if (used == 0 && n == 0)
        return 0;
    buf[used] = '\0';
    return n + 1;
}

typedef struct tally {
    int answers, passed, correct, passed_correct;
} tally_t;

static void tally_answer(tally_t *t, const char *answer, const char *correct)
{
    int ok = checks_final_number(answer, strlen(answer), NULL, 0, NULL, 0) == 0;
    int right = strcmp(correct, "True") == 0;

    t->answers++;
    t->passed += ok;
    t->correct += right;
    t->passed_correct += ok && right;
}

static void print_tally(const char *model, const tally_t *t)
{
    printf("final_number %s: %d of %d answers pass (%.1f%%); correct: %d of "
           "%d passing, %d of %d failing\n",
           model, t->passed, t->answers, 100.0 * t->passed / t->answers,
           t->passed_correct, t->passed, t->correct - t->passed_correct,
           t->answers - t->passed);
}

static void test_final_number_on_routellm_gsm8k(void **state)
{
    const char *shared = getenv("TOLLGATE_SHARED");
    char path[1024], *fields[8];
    static char buf[1 << 16];
    tally_t gpt4 = {0}, mixtral = {0};
    FILE *f;

    snprintf(path, sizeof(path), "%s/data/routellm-evals/gsm8k_responses.csv",
             shared ? shared : "../shared");
    f = fopen(path, "r");
    if (f == NULL) {
        printf("SKIP test_final_number_on_routellm_gsm8k: %s missing\n", path);
        skip();
    }
    /* prompt, Mixtral ok, GPT-4 ok, Mixtral answer, GPT-4 answer */
    assert_int_equal(csv_record(f, fields, 8, buf, sizeof(buf)), 5);
    assert_string_equal(fields[4], "gpt-4-1106-preview_response");
    while (csv_record(f, fields, 8, buf, sizeof(buf)) == 5) {
        tally_answer(&mixtral, fields[3], fields[1]);
        tally_answer(&gpt4, fields[4], fields[2]);
    }
    fclose(f);

    print_tally("gpt-4-1106-preview", &gpt4);
    print_tally("Mixtral-8x7B", &mixtral);
    assert_int_equal(gpt4.answers, 1319);
    assert_int_equal(gpt4.passed, 1317);
    assert_int_equal(mixtral.passed, 1257);
    assert_int_equal(mixtral.passed_correct, 841);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks_json_valid_and_invalid_at_byte),
        cmocka_unit_test(test_checks_schema_reason_has_pointer),
        cmocka_unit_test(test_checks_patterns),
        cmocka_unit_test(test_checks_length_counts_code_points),
        cmocka_unit_test(test_checks_truncation_by_finish_reason),
        cmocka_unit_test(test_checks_refusal_phrases_default),
        cmocka_unit_test(test_checks_refusal_only_near_the_start),
        cmocka_unit_test(test_checks_refusal_phrases_configured),
        cmocka_unit_test(test_checks_all_run_and_summary_lists_each),
        cmocka_unit_test(test_checks_empty_set_passes_everything),
        cmocka_unit_test(test_checks_parse_errors_name_the_member),
        cmocka_unit_test(test_checks_compile_from_desc),
        cmocka_unit_test(test_final_number_after_hash_marker),
        cmocka_unit_test(test_final_number_in_a_finished_last_sentence),
        cmocka_unit_test(test_final_number_after_answer_markers),
        cmocka_unit_test(test_final_number_rejects_cut_off_answers),
        cmocka_unit_test(test_final_number_on_routellm_gsm8k),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
