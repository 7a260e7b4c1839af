/*
 * JSON member finding and byte splicing: exact spans and edits, the usage
 * edit in each shape a caller can send, malformed text read only within
 * its bounds, and a seeded check that valid requests stay valid.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/jsonedit.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEW_MODEL "tollgate-upstream"

static arena_t *arena;

static int arena_setup(void **state)
{
    arena = arena_new(4096);
    return 0;
}

static int arena_teardown(void **state)
{
    arena_free(arena);
    arena = NULL;
    return 0;
}

/* An exact-size copy with no NUL after it, so that a read past the end
 * trips ASan. The copy lives in the test's arena. */
static const char *exact(const char *text, size_t len)
{
    char *p = arena_alloc(arena, len ? len : 1);

    memcpy(p, text, len);
    return p;
}

/* The value's text as jsonedit_find spans it, or "<ENOENT>"/"<EINVAL>". */
static const char *find_text(const char *text, size_t obj, const char *key)
{
    size_t len = strlen(text);
    json_span_t span = {0, 0};
    int rc = jsonedit_find(exact(text, len), len, obj, key, &span);

    if (rc == -ENOENT)
        return "<ENOENT>";
    if (rc == -EINVAL)
        return "<EINVAL>";
    assert_int_equal(rc, 0);
    assert_true(span.start < span.end && span.end <= len);
    return arena_strndup(arena, text + span.start, span.end - span.start);
}

static void test_find_returns_the_value_span(void **state)
{
    const char *text = "{\"model\":\"gpt-4o\",\"n\":2}";
    json_span_t span;

    assert_int_equal(jsonedit_find(text, strlen(text), 0, "model", &span), 0);
    assert_int_equal(span.start, 9);
    assert_int_equal(span.end, 17);
    assert_string_equal(find_text(text, 0, "n"), "2");
}

static void test_find_takes_the_last_duplicate(void **state)
{
    assert_string_equal(
        find_text("{\"model\":\"a\",\"x\":1,\"model\":\"b\"}", 0, "model"),
        "\"b\"");
    assert_string_equal(
        find_text("{\"model\":\"a\",\"model\":{\"c\":[]}}", 0, "model"),
        "{\"c\":[]}");
}

static void test_find_skips_nested_values_and_strings(void **state)
{
    const char *text = "{\"a\":{\"model\":\"inner\"},"
                       "\"b\":[\"model\",{\"model\":0}],"
                       "\"c\":\"{\\\"model\\\":\\\"s\\\"}\","
                       "\"model\":\"top\"}";

    assert_string_equal(find_text(text, 0, "model"), "\"top\"");
    assert_string_equal(find_text(text, 0, "c"),
                        "\"{\\\"model\\\":\\\"s\\\"}\"");
    assert_string_equal(find_text(text, 5, "model"), "\"inner\"");
}

static void test_find_handles_escapes_and_brackets_in_strings(void **state)
{
    const char *text = "{\"s\":\"a\\\"b}\\\\\",\"t\":\"]\\\\\\\"[\","
                       "\"model\" : [1, {\"x\":\"]\"}] }";

    assert_string_equal(find_text(text, 0, "s"), "\"a\\\"b}\\\\\"");
    assert_string_equal(find_text(text, 0, "t"), "\"]\\\\\\\"[\"");
    assert_string_equal(find_text(text, 0, "model"), "[1, {\"x\":\"]\"}]");
    /* Names are compared decoded, as json-c reads them. */
    assert_string_equal(find_text("{\"k\\\"q\":7}", 0, "k\"q"), "7");
    assert_string_equal(find_text("{\"mod\\u0065l\":\"x\"}", 0, "model"),
                        "\"x\"");
    assert_string_equal(
        find_text("{\"model\":1,\"mod\\u0065l\":2}", 0, "model"), "2");
}

static void test_find_spans_every_kind_of_value(void **state)
{
    const char *text = " \r\n{ \"t\"\t:\ntrue , \"f\":false,\"z\" :null,"
                       "\"n\":-1.5e+3 ,\"e\":\"\",\"o\":{},\"a\":[ ],"
                       "\"\":1}";

    assert_string_equal(find_text(text, 0, "t"), "true");
    assert_string_equal(find_text(text, 0, "f"), "false");
    assert_string_equal(find_text(text, 0, "z"), "null");
    assert_string_equal(find_text(text, 0, "n"), "-1.5e+3");
    assert_string_equal(find_text(text, 0, "e"), "\"\"");
    assert_string_equal(find_text(text, 0, "o"), "{}");
    assert_string_equal(find_text(text, 0, "a"), "[ ]");
    assert_string_equal(find_text(text, 0, ""), "1");
}

static void test_find_reports_absent_members(void **state)
{
    assert_string_equal(find_text("{}", 0, "model"), "<ENOENT>");
    assert_string_equal(find_text(" { \n} ", 0, "model"), "<ENOENT>");
    assert_string_equal(
        find_text("{\"modelx\":1,\"mode\":2,\"Model\":3,\"a\":{\"model\":4}}",
                  0, "model"),
        "<ENOENT>");
}

static void test_find_rejects_malformed_text(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "[",
        "[]",
        "\"model\"",
        "1",
        "{",
        "{\"model\"",
        "{\"model\":",
        "{\"model\": ",
        "{\"model\":1",
        "{\"model\":1,",
        "{\"model\":1,}",
        "{\"model\" 1}",
        "{model:1}",
        "{\"model\":\"abc",
        "{\"model\":\"abc\\\"}",
        "{\"model\":\"\\",
        "{\"a\":[1,2}",
        "{\"a\":}",
        "{\"a\"::1}",
        "{\"a\":1 2}",
        "{,}",
        "{\"a\":[",
        "{\"a\":{\"b\":1}",
        "{\"a\":1,\"b\"}",
        "{\"a\":]}",
        "{\"a\",1}",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool asked;
        json_edit_t edit;
        size_t len = strlen(bad[i]);

        if (strcmp(find_text(bad[i], 0, "model"), "<EINVAL>") != 0)
            fail_msg("find accepted malformed text: %s", bad[i]);
        if (jsonedit_usage_edit(arena, exact(bad[i], len), len, &edit,
                                &asked) != -EINVAL)
            fail_msg("usage edit accepted malformed text: %s", bad[i]);
    }
}

static void test_find_rejects_every_cut_of_a_request(void **state)
{
    const char *text = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"a \\\"}] quote\"}],\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":false}}";
    size_t len = strlen(text);

    for (size_t cut = 0; cut < len; cut++) {
        const char *p = exact(text, cut);
        json_span_t span;
        json_edit_t edit;
        bool asked;

        assert_int_equal(jsonedit_find(p, cut, 0, "model", &span), -EINVAL);
        assert_int_equal(jsonedit_usage_edit(arena, p, cut, &edit, &asked),
                         -EINVAL);
    }
}

static void test_skip_ws_stops_at_the_first_other_byte(void **state)
{
    assert_int_equal(jsonedit_skip_ws(" \t\r\nx", 5, 0), 4);
    assert_int_equal(jsonedit_skip_ws("   ", 3, 1), 3);
    assert_int_equal(jsonedit_skip_ws("ab", 2, 5), 5);
    assert_int_equal(jsonedit_skip_ws("\v", 1, 0), 0);
}

static const char *apply_text(const char *text, json_edit_t *edits, size_t n)
{
    size_t len = strlen(text), out_len = 0;
    char *out =
        jsonedit_apply(arena, exact(text, len), len, edits, n, &out_len);

    assert_int_equal(out[out_len], '\0');
    assert_int_equal(strlen(out), out_len);
    return out;
}

static void test_apply_keeps_numbers_as_written(void **state)
{
    const char *text = "{\"model\":\"a\",\"temperature\":0.70,\"top_p\":1E0,"
                       "\"seed\":-0,\"n\":12345678901234567890123,"
                       "\"x\":1.0e-7}";
    json_span_t span;
    json_edit_t edit;

    assert_int_equal(jsonedit_find(text, strlen(text), 0, "model", &span), 0);
    edit = (json_edit_t){span.start, span.end, "\"" NEW_MODEL "\""};
    assert_string_equal(apply_text(text, &edit, 1),
                        "{\"model\":\"" NEW_MODEL "\",\"temperature\":0.70,"
                        "\"top_p\":1E0,\"seed\":-0,"
                        "\"n\":12345678901234567890123,\"x\":1.0e-7}");
}

static void test_apply_takes_edits_in_any_order(void **state)
{
    json_edit_t edits[3] = {
        {6, 6, "!"},
        {0, 0, "<"},
        {2, 4, "CD"},
    };
    json_edit_t none[1];

    assert_string_equal(apply_text("abcdef", edits, 3), "<abCDef!");
    assert_string_equal(apply_text("abc", none, 0), "abc");
    assert_string_equal(apply_text("", none, 0), "");
}

/* Runs the usage edit and returns the edited text (the input when there
 * is no edit), with the return code and caller_asked. */
static const char *usage_text(const char *text, int *rc, bool *asked)
{
    size_t len = strlen(text);
    json_edit_t edit = {0, 0, NULL};

    *asked = true; /* the edit must clear it */
    *rc = jsonedit_usage_edit(arena, exact(text, len), len, &edit, asked);
    if (*rc <= 0)
        return text;
    return apply_text(text, &edit, 1);
}

static void expect_usage(const char *text, const char *want, int want_rc,
                         bool want_asked)
{
    int rc;
    bool asked;
    const char *got = usage_text(text, &rc, &asked);

    if (rc != want_rc || asked != want_asked || strcmp(got, want) != 0)
        fail_msg("usage edit of %s gave rc %d asked %d: %s", text, rc,
                 (int)asked, got);
}

static void test_usage_edit_adds_stream_options_when_absent(void **state)
{
    expect_usage("{\"model\":\"m\",\"stream\":true}",
                 "{\"model\":\"m\",\"stream\":true,"
                 "\"stream_options\":{\"include_usage\":true}}",
                 1, false);
    expect_usage("{}", "{\"stream_options\":{\"include_usage\":true}}", 1,
                 false);
    expect_usage(" { \n} ",
                 " { \n\"stream_options\":{\"include_usage\":true}} ", 1,
                 false);
    expect_usage(
        " { \"a\" : 1 } \n",
        " { \"a\" : 1 ,\"stream_options\":{\"include_usage\":true}} \n", 1,
        false);
}

static void test_usage_edit_replaces_a_stream_options_not_object(void **state)
{
    expect_usage("{\"stream_options\":null,\"x\":1}",
                 "{\"stream_options\":{\"include_usage\":true},\"x\":1}", 1,
                 false);
    expect_usage("{\"stream_options\":\"yes\"}",
                 "{\"stream_options\":{\"include_usage\":true}}", 1, false);
    expect_usage("{\"stream_options\" : [true] }",
                 "{\"stream_options\" : {\"include_usage\":true} }", 1, false);
    expect_usage("{\"stream_options\":true}",
                 "{\"stream_options\":{\"include_usage\":true}}", 1, false);
}

static void test_usage_edit_fills_an_empty_stream_options(void **state)
{
    expect_usage("{\"stream_options\":{}}",
                 "{\"stream_options\":{\"include_usage\":true}}", 1, false);
    expect_usage("{\"stream_options\":{ }}",
                 "{\"stream_options\":{\"include_usage\":true }}", 1, false);
}

static void test_usage_edit_turns_false_to_true(void **state)
{
    expect_usage("{\"stream_options\":{\"include_usage\":false}}",
                 "{\"stream_options\":{\"include_usage\":true}}", 1, false);
    expect_usage("{\"stream_options\":{\"include_usage\":null}}",
                 "{\"stream_options\":{\"include_usage\":true}}", 1, false);
    expect_usage("{\"stream_options\":{\"include_usage\":\"true\"}}",
                 "{\"stream_options\":{\"include_usage\":true}}", 1, false);
}

static void test_usage_edit_leaves_a_caller_who_asked(void **state)
{
    const char *text = "{\"stream_options\":{\"include_usage\":true}}";
    const char *spaced = "{\"stream_options\": { \"include_usage\" : true } ,"
                         "\"model\":\"x\"}";

    expect_usage(text, text, 0, true);
    expect_usage(spaced, spaced, 0, true);
}

static void test_usage_edit_keeps_other_members(void **state)
{
    expect_usage("{\"stream_options\":{\"foo\":[1,2]},\"b\":2}",
                 "{\"stream_options\":{\"include_usage\":true,\"foo\":[1,2]},"
                 "\"b\":2}",
                 1, false);
    expect_usage("{\"a\":0,\"stream_options\":{\"foo\":1,\"include_usage\":"
                 "false,\"bar\":\"}\"},\"b\":2}",
                 "{\"a\":0,\"stream_options\":{\"foo\":1,\"include_usage\":"
                 "true,\"bar\":\"}\"},\"b\":2}",
                 1, false);
}

static void test_usage_edit_follows_the_last_duplicate(void **state)
{
    expect_usage("{\"stream_options\":{\"include_usage\":true},"
                 "\"stream_options\":null}",
                 "{\"stream_options\":{\"include_usage\":true},"
                 "\"stream_options\":{\"include_usage\":true}}",
                 1, false);
    expect_usage("{\"stream_options\":{\"include_usage\":false,"
                 "\"include_usage\":true}}",
                 "{\"stream_options\":{\"include_usage\":false,"
                 "\"include_usage\":true}}",
                 0, true);
}

static void test_usage_edit_rejects_a_top_level_not_object(void **state)
{
    static const char *const texts[] = {"[]", "\"x\"", "1",   "null",
                                        "",   " ",     "[{}]"};

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        expect_usage(texts[i], texts[i], -EINVAL, false);
}

static void test_model_and_usage_edits_apply_together(void **state)
{
    const char *text = "{\"stream\":true,\"model\":\"alias\",\"messages\":[]}";
    size_t len = strlen(text);
    json_edit_t edits[2];
    json_span_t span;
    bool asked;

    assert_int_equal(jsonedit_usage_edit(arena, text, len, &edits[0], &asked),
                     1);
    assert_int_equal(jsonedit_find(text, len, 0, "model", &span), 0);
    edits[1] = (json_edit_t){span.start, span.end, "\"gpt-4o-mini\""};
    assert_string_equal(apply_text(text, edits, 2),
                        "{\"stream\":true,\"model\":\"gpt-4o-mini\","
                        "\"messages\":[],"
                        "\"stream_options\":{\"include_usage\":true}}");
}

/*
 * The invariant the gateway relies on: whatever a strict JSON parser
 * accepts as a request, the spliced request is still JSON, carries the
 * new model exactly, asks for usage, and keeps every other member.
 */
static struct json_object *parse_strict(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;
    size_t end;

    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, text, (int)len);
    end = jsonedit_skip_ws(text, len, json_tokener_get_parse_end(tok));
    if (obj != NULL &&
        (json_tokener_get_error(tok) != json_tokener_success || end != len)) {
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    return obj;
}

/* Compared as json-c prints them, since json_object_equal() holds NaN
 * unequal to itself and json-c reads NaN even when strict. */
static bool same_value(struct json_object *a, struct json_object *b)
{
    return strcmp(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN)) ==
           0;
}

/* Every member of a other than `skip` is in b with an equal value. */
static void expect_members_kept(struct json_object *a, struct json_object *b,
                                const char *skip)
{
    json_object_object_foreach(a, key, val)
    {
        struct json_object *other;

        if (strcmp(key, skip) == 0)
            continue;
        assert_true(json_object_object_get_ex(b, key, &other));
        assert_true(same_value(val, other));
    }
}

static bool wants_usage(struct json_object *obj)
{
    struct json_object *opts, *inc;

    return json_object_object_get_ex(obj, "stream_options", &opts) &&
           json_object_is_type(opts, json_type_object) &&
           json_object_object_get_ex(opts, "include_usage", &inc) &&
           json_object_is_type(inc, json_type_boolean) &&
           json_object_get_boolean(inc);
}

static void check_model_edit(const char *text, size_t len,
                             struct json_object *orig, bool plain_keys)
{
    json_span_t span;
    json_edit_t edit;
    struct json_object *edited, *model;
    bool has = json_object_object_get_ex(orig, "model", NULL);
    int rc = jsonedit_find(text, len, jsonedit_skip_ws(text, len, 0), "model",
                           &span);
    size_t out_len, new_len = strlen("\"" NEW_MODEL "\"");
    const char *out;

    assert_int_not_equal(rc, -EINVAL);
    if (plain_keys)
        assert_int_equal(rc, has ? 0 : -ENOENT);
    if (rc != 0)
        return;
    edit = (json_edit_t){span.start, span.end, "\"" NEW_MODEL "\""};
    out = jsonedit_apply(arena, text, len, &edit, 1, &out_len);
    assert_int_equal(out_len, len - (span.end - span.start) + new_len);
    assert_memory_equal(out, text, span.start);
    assert_memory_equal(out + span.start, "\"" NEW_MODEL "\"", new_len);
    assert_memory_equal(out + span.start + new_len, text + span.end,
                        len - span.end);
    edited = parse_strict(out, out_len);
    assert_non_null(edited);
    if (plain_keys) {
        assert_true(json_object_object_get_ex(edited, "model", &model));
        assert_string_equal(json_object_get_string(model), NEW_MODEL);
        expect_members_kept(orig, edited, "model");
    }
    json_object_put(edited);
}

static void check_usage_edit(const char *text, size_t len,
                             struct json_object *orig, bool plain_keys)
{
    json_edit_t edit;
    bool asked;
    int rc = jsonedit_usage_edit(arena, text, len, &edit, &asked);
    size_t out_len;
    const char *out;
    struct json_object *edited, *a, *b;

    assert_true(rc == 0 || rc == 1);
    out = jsonedit_apply(arena, text, len, &edit, (size_t)rc, &out_len);
    edited = parse_strict(out, out_len);
    assert_non_null(edited);
    if (plain_keys) {
        assert_int_equal(asked, wants_usage(orig));
        assert_int_equal(rc, asked ? 0 : 1);
        assert_true(wants_usage(edited));
        expect_members_kept(orig, edited, "stream_options");
        if (json_object_object_get_ex(orig, "stream_options", &a) &&
            json_object_is_type(a, json_type_object)) {
            json_object_object_get_ex(edited, "stream_options", &b);
            expect_members_kept(a, b, "include_usage");
        }
    }
    json_object_put(edited);
}

/* json-c 0.16 takes single-quoted object keys even when strict; that is
 * not JSON, and jsonedit refuses it, so such texts are held only to not
 * faulting. Outside strings, a single quote can only open such a key. */
static bool has_single_quoted_key(const char *text, size_t len)
{
    bool in_string = false;

    for (size_t pos = 0; pos < len; pos++) {
        if (in_string && text[pos] == '\\')
            pos++;
        else if (text[pos] == '"')
            in_string = !in_string;
        else if (!in_string && text[pos] == '\'')
            return true;
    }
    return false;
}

/* Checks one request body the way the gateway edits it. */
static void check_request(const char *bytes, size_t len)
{
    const char *text = exact(bytes, len);
    struct json_object *obj = parse_strict(text, len);
    json_span_t span;
    json_edit_t edit;
    bool asked;
    int find_rc = jsonedit_find(text, len, 0, "model", &span);
    int usage_rc = jsonedit_usage_edit(arena, text, len, &edit, &asked);
    /* A key spelt with \u escapes is compared raw (jsonedit.h), so only
     * texts without them are held to the parser's view of the keys. */
    bool plain_keys = memmem(text, len, "\\u", 2) == NULL;

    assert_true(find_rc == 0 || find_rc == -ENOENT || find_rc == -EINVAL);
    assert_true(usage_rc == 0 || usage_rc == 1 || usage_rc == -EINVAL);
    if (obj == NULL)
        return;
    if (has_single_quoted_key(text, len)) {
        json_object_put(obj);
        return;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        assert_int_equal(usage_rc, -EINVAL);
        json_object_put(obj);
        return;
    }
    check_model_edit(text, len, obj, plain_keys);
    check_usage_edit(text, len, obj, plain_keys);
    json_object_put(obj);
}

static void test_request_checks_hold_for_examples(void **state)
{
    static const char *const texts[] = {
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}],\"stream\":true}",
        " {\"stream_options\":{\"include_usage\":true},\"model\":\"m\"} ",
        "{\"model\":1,\"model\":\"b\",\"stream_options\":[]}",
        "{}",
        "[1,2]",
        "\"model\"",
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        check_request(texts[i], strlen(texts[i]));
}

/* Seeded generator of valid requests, then byte mutations of them. */
static uint64_t rng_state;

static uint32_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static const char *pick(const char *const *list, size_t n)
{
    return list[rng_next() % n];
}

#define PICK(list) pick(list, sizeof(list) / sizeof(list[0]))

static void put(buf_t *b, const char *s)
{
    assert_int_equal(buf_append(b, s, strlen(s)), 0);
}

static void put_ws(buf_t *b)
{
    static const char *const ws[] = {"", "", "", " ", "\n", "\t", "\r\n  "};

    put(b, PICK(ws));
}

static const char *const STRINGS[] = {
    "\"\"",      "\"a\"",           "\"a\\\"b\"",    "\"}\"",
    "\"{[\"",    "\"\\\\\"",        "\"\\\\\\\"\"",  "\"\\u00e9\"",
    "\"model\"", "\"caf\xc3\xa9\"", "\"\\n\\t\\/\"", "\"gpt-4o\"",
};

static void put_value(buf_t *b, int depth);

static void put_object(buf_t *b, int depth, bool top)
{
    static const char *const keys[] = {
        "\"model\"",  "\"stream_options\"", "\"include_usage\"",
        "\"stream\"", "\"messages\"",       "\"a\"",
        "\"\"",       "\"k\\\"q\"",         "\"}\"",
    };
    static const char *const opts[] = {
        "null",
        "{}",
        "{\"include_usage\":true}",
        "{\"include_usage\":false}",
        "{ \"x\" : [1] , \"include_usage\" : true }",
        "{\"include_usage\":null,\"y\":\"}\"}",
        "[]",
        "\"s\"",
    };
    size_t n = rng_next() % (top ? 6 : 4);

    put(b, "{");
    put_ws(b);
    for (size_t i = 0; i < n; i++) {
        const char *key = PICK(keys);

        if (i > 0) {
            put(b, ",");
            put_ws(b);
        }
        put(b, key);
        put_ws(b);
        put(b, ":");
        put_ws(b);
        if (strcmp(key, "\"stream_options\"") == 0 && rng_next() % 2)
            put(b, PICK(opts));
        else if (strcmp(key, "\"model\"") == 0 && rng_next() % 2)
            put(b, PICK(STRINGS));
        else
            put_value(b, depth + 1);
        put_ws(b);
    }
    put(b, "}");
}

static void put_value(buf_t *b, int depth)
{
    static const char *const scalars[] = {
        "true",  "false",  "null", "0",
        "-0",    "1.5e10", "0.70", "12345678901234567890",
        "-1E-7", "3",
    };
    uint32_t kind = rng_next() % (depth > 4 ? 2 : 4);

    if (kind == 0) {
        put(b, PICK(scalars));
    } else if (kind == 1) {
        put(b, PICK(STRINGS));
    } else if (kind == 2) {
        put_object(b, depth, false);
    } else {
        size_t n = rng_next() % 4;

        put(b, "[");
        for (size_t i = 0; i < n; i++) {
            put_ws(b);
            put_value(b, depth + 1);
            put_ws(b);
            if (i + 1 < n)
                put(b, ",");
        }
        put(b, "]");
    }
}

static size_t mutate(char *text, size_t len, size_t size)
{
    static const char noise[] = "{}[]\":,\\ 0atn\x01\xff";
    size_t rounds = 1 + rng_next() % 3;

    for (size_t r = 0; r < rounds && len > 0; r++) {
        size_t at = rng_next() % len;

        switch (rng_next() % 5) {
        case 0: /* delete a byte */
            memmove(text + at, text + at + 1, len - at - 1);
            len--;
            break;
        case 1: /* insert a byte */
            if (len < size) {
                memmove(text + at + 1, text + at, len - at);
                text[at] = noise[rng_next() % (sizeof(noise) - 1)];
                len++;
            }
            break;
        case 2: /* overwrite a byte */
            text[at] = noise[rng_next() % (sizeof(noise) - 1)];
            break;
        case 3: /* cut the end */
            len = at;
            break;
        default: /* flip a bit */
            text[at] = (char)(text[at] ^ (1 << (rng_next() % 8)));
            break;
        }
    }
    return len;
}

static void test_random_requests_stay_valid_after_edits(void **state)
{
    enum { ROUNDS = 20000 };
    buf_t b;
    size_t valid = 0, mutated_valid = 0;

    rng_state = 0x0123456789abcdefULL;
    for (int round = 0; round < ROUNDS; round++) {
        char copy[1 << 16];
        size_t len;
        struct json_object *obj;

        buf_init(&b, sizeof(copy) - 16);
        put_ws(&b);
        put_object(&b, 0, true);
        put_ws(&b);
        obj = parse_strict(b.data, b.len);
        if (obj == NULL)
            fail_msg("generator made invalid JSON: %s", b.data);
        json_object_put(obj);
        check_request(b.data, b.len);
        valid++;

        memcpy(copy, b.data, b.len);
        len = mutate(copy, b.len, sizeof(copy));
        obj = parse_strict(copy, len);
        mutated_valid += obj != NULL;
        json_object_put(obj);
        check_request(copy, len);
        buf_free(&b);

        /* The arena would otherwise hold every round's copies. */
        arena_free(arena);
        arena = arena_new(4096);
    }
    assert_int_equal(valid, ROUNDS);
    assert_true(mutated_valid > 100);
}

#define TEST(fn)                                                               \
    cmocka_unit_test_setup_teardown(fn, arena_setup, arena_teardown)

static void test_validate_follows_rfc_8259(void **state)
{
    static const char *good[] = {
        "{}",
        " [1, -0.5e+3, 0, \"\\u00e9\", true, false, null] ",
        "{\"a\":{\"b\":[]}}",
        "\"caf\xc3\xa9\"",
        "-0",
        "1E9",
    };
    static const char *bad[] = {
        "",
        "{'a':1}",
        "{\"a\":NaN}",
        "[Infinity]",
        "{\"a\":1,}",
        "[1,]",
        "01",
        "1.",
        ".5",
        "+1",
        "\"\x01\"",
        "\"\xc3(\"",
        "\"\xed\xa0\x80\"",
        "\"\\x\"",
        "\"\\u12g4\"",
        "{\"a\" 1}",
        "[1] 2",
        "{\"a\":1}}",
        "tru",
        "\"open",
    };
    char deep[600];
    size_t where;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(jsonedit_validate(good[i], strlen(good[i]), &where),
                         0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(jsonedit_validate(bad[i], strlen(bad[i]), &where),
                         -EINVAL);
    assert_int_equal(jsonedit_validate("{'a':1}", 7, &where), -EINVAL);
    assert_int_equal(where, 1);

    /* Nesting is bounded, so a hostile body cannot exhaust the stack. */
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    assert_int_equal(jsonedit_validate(deep, 600, &where), -EINVAL);
    assert_int_equal(jsonedit_validate(deep + 100, 400, &where), 0);
}

/* Found by fuzz_jsonedit: a name holding a NUL byte or an escaped NUL
 * made the comparison read past the end of the key. The buffers are
 * exact-size heap copies so ASan sees any overread. */
static void test_find_names_with_nul_bytes(void **state)
{
    static const char raw1[] = "{\"model\0x\":1}";
    static const char raw2[] = "{\"mod\\u0000\":1,\"model\\\\\":2}";
    json_span_t span;
    char *t1 = malloc(sizeof(raw1) - 1), *t2 = malloc(sizeof(raw2) - 1);

    memcpy(t1, raw1, sizeof(raw1) - 1);
    memcpy(t2, raw2, sizeof(raw2) - 1);
    assert_int_equal(jsonedit_find(t1, sizeof(raw1) - 1, 0, "model", &span),
                     -ENOENT);
    assert_int_equal(jsonedit_find(t1, sizeof(raw1) - 1, 0, "m", &span),
                     -ENOENT);
    assert_int_equal(jsonedit_find(t2, sizeof(raw2) - 1, 0, "mod", &span),
                     -ENOENT);
    assert_int_equal(jsonedit_find(t2, sizeof(raw2) - 1, 0, "model", &span),
                     -ENOENT);
    free(t1);
    free(t2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_follows_rfc_8259),
        cmocka_unit_test(test_find_names_with_nul_bytes),
        TEST(test_find_returns_the_value_span),
        TEST(test_find_takes_the_last_duplicate),
        TEST(test_find_skips_nested_values_and_strings),
        TEST(test_find_handles_escapes_and_brackets_in_strings),
        TEST(test_find_spans_every_kind_of_value),
        TEST(test_find_reports_absent_members),
        TEST(test_find_rejects_malformed_text),
        TEST(test_find_rejects_every_cut_of_a_request),
        TEST(test_skip_ws_stops_at_the_first_other_byte),
        TEST(test_apply_keeps_numbers_as_written),
        TEST(test_apply_takes_edits_in_any_order),
        TEST(test_usage_edit_adds_stream_options_when_absent),
        TEST(test_usage_edit_replaces_a_stream_options_not_object),
        TEST(test_usage_edit_fills_an_empty_stream_options),
        TEST(test_usage_edit_turns_false_to_true),
        TEST(test_usage_edit_leaves_a_caller_who_asked),
        TEST(test_usage_edit_keeps_other_members),
        TEST(test_usage_edit_follows_the_last_duplicate),
        TEST(test_usage_edit_rejects_a_top_level_not_object),
        TEST(test_model_and_usage_edits_apply_together),
        TEST(test_request_checks_hold_for_examples),
        TEST(test_random_requests_stay_valid_after_edits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
