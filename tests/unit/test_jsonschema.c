/*
 * The JSON Schema subset: each keyword accepts and rejects what it
 * should, errors name the failing value by JSON pointer, $ref cycles end
 * at the depth cap, and bad schemas are refused with their path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "route/jsonschema.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static char err[512];

/* Validates instance against schema (both JSON text); returns 0 or the
 * validator's code, with its message in err. */
static int validate(const char *schema_text, const char *instance_text)
{
    struct json_object *schema = json_tokener_parse(schema_text);
    struct json_tokener *tok = json_tokener_new_ex(200);
    struct json_object *instance = json_tokener_parse_ex(
        tok, instance_text, (int)strlen(instance_text) + 1);
    jsonschema_t *js;
    int rc;

    assert_non_null(schema);
    assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
    json_tokener_free(tok);
    err[0] = '\0';
    rc = jsonschema_compile(schema, &js, err, sizeof(err));
    json_object_put(schema);
    assert_int_equal(rc, 0);
    rc = jsonschema_validate(js, instance, err, sizeof(err));
    jsonschema_free(js);
    json_object_put(instance);
    return rc;
}

static int compile_error(const char *schema_text)
{
    struct json_object *schema = json_tokener_parse(schema_text);
    jsonschema_t *js = NULL;
    int rc;

    assert_non_null(schema);
    rc = jsonschema_compile(schema, &js, err, sizeof(err));
    json_object_put(schema);
    assert_null(js);
    return rc;
}

static void assert_invalid(const char *schema, const char *instance,
                           const char *message)
{
    assert_int_equal(validate(schema, instance), -22);
    assert_string_equal(err, message);
}

static void test_jsonschema_type_names_and_integer_vs_number(void **state)
{
    assert_int_equal(validate("{\"type\":\"integer\"}", "3"), 0);
    assert_int_equal(validate("{\"type\":\"integer\"}", "3.0"), 0);
    assert_invalid("{\"type\":\"integer\"}", "3.5", "/: expected integer");
    assert_int_equal(validate("{\"type\":\"number\"}", "3"), 0);
    assert_int_equal(validate("{\"type\":\"number\"}", "-0.25"), 0);
    assert_invalid("{\"type\":\"number\"}", "\"3\"", "/: expected number");
    assert_int_equal(validate("{\"type\":\"null\"}", "null"), 0);
    assert_invalid("{\"type\":\"boolean\"}", "0", "/: expected boolean");
    assert_invalid("{\"type\":\"object\"}", "[]", "/: expected object");
    assert_invalid("{\"type\":\"array\"}", "{}", "/: expected array");
    assert_invalid("{\"type\":\"string\"}", "null", "/: expected string");
}

static void test_jsonschema_type_array_allows_each_listed(void **state)
{
    const char *s = "{\"type\":[\"string\",\"null\"]}";

    assert_int_equal(validate(s, "\"a\""), 0);
    assert_int_equal(validate(s, "null"), 0);
    assert_invalid(s, "1", "/: expected null or string");
}

static void test_jsonschema_error_path_is_json_pointer(void **state)
{
    const char *s = "{\"type\":\"object\",\"properties\":{\"items\":{"
                    "\"type\":\"array\",\"items\":{\"type\":\"object\","
                    "\"properties\":{\"price\":{\"type\":\"number\"}}}}}}";

    assert_int_equal(validate(s, "{\"items\":[{\"price\":1},{\"price\":2.5}]}"),
                     0);
    assert_invalid(s,
                   "{\"items\":[{\"price\":1},{\"price\":2},"
                   "{\"price\":\"9.99\"}]}",
                   "/items/2/price: expected number");
}

static void test_jsonschema_pointer_escapes_tilde_and_slash(void **state)
{
    assert_invalid("{\"additionalProperties\":{\"type\":\"integer\"}}",
                   "{\"a/b~c\":true}", "/a~1b~0c: expected integer");
}

static void test_jsonschema_required_and_additional(void **state)
{
    const char *s = "{\"type\":\"object\",\"required\":[\"id\",\"name\"],"
                    "\"properties\":{\"id\":{},\"name\":{}},"
                    "\"additionalProperties\":false}";

    assert_int_equal(validate(s, "{\"id\":1,\"name\":\"x\"}"), 0);
    assert_invalid(s, "{\"id\":1}", "/: missing required property 'name'");
    assert_invalid(s, "{\"id\":1,\"name\":\"x\",\"extra\":0}",
                   "/extra: property not allowed");
    assert_invalid("{\"additionalProperties\":{\"type\":\"string\"},"
                   "\"properties\":{\"n\":{\"type\":\"integer\"}}}",
                   "{\"n\":1,\"tag\":2}", "/tag: expected string");
    assert_int_equal(validate("{\"additionalProperties\":true}", "{\"x\":1}"),
                     0);
}

static void test_jsonschema_enum_and_const(void **state)
{
    const char *s = "{\"enum\":[\"low\",\"high\",1,null,{\"a\":[1]}]}";

    assert_int_equal(validate(s, "\"low\""), 0);
    assert_int_equal(validate(s, "1.0"), 0); /* 1 == 1.0 in JSON Schema */
    assert_int_equal(validate(s, "null"), 0);
    assert_int_equal(validate(s, "{\"a\":[1]}"), 0);
    assert_invalid(s, "\"medium\"", "/: not one of the enum values");
    assert_invalid(s, "{\"a\":[2]}", "/: not one of the enum values");
    assert_int_equal(
        validate("{\"const\":{\"x\":1,\"y\":2}}", "{\"y\":2,\"x\":1}"), 0);
    assert_invalid("{\"const\":\"v1\"}", "\"v2\"", "/: not the const value");
}

static void test_jsonschema_numeric_bounds(void **state)
{
    const char *s = "{\"minimum\":0,\"maximum\":10}";
    const char *x = "{\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}";

    assert_int_equal(validate(s, "0"), 0);
    assert_int_equal(validate(s, "10"), 0);
    assert_invalid(s, "-1", "/: below minimum 0");
    assert_invalid(s, "10.5", "/: above maximum 10");
    assert_int_equal(validate(x, "0.001"), 0);
    assert_invalid(x, "0", "/: not above exclusiveMinimum 0");
    assert_invalid(x, "10", "/: not below exclusiveMaximum 10");
    /* Draft 4 spelling: booleans beside minimum/maximum. */
    assert_invalid("{\"minimum\":5,\"exclusiveMinimum\":true}", "5",
                   "/: not above exclusiveMinimum 5");
    assert_int_equal(validate(s, "\"not a number\""), 0);
}

static void test_jsonschema_string_length_in_code_points(void **state)
{
    const char *s = "{\"minLength\":2,\"maxLength\":3}";

    assert_int_equal(validate(s, "\"ab\""), 0);
    /* "héé" is 5 bytes and 3 code points. */
    assert_int_equal(validate(s, "\"h\xc3\xa9\xc3\xa9\""), 0);
    assert_invalid(s, "\"a\"", "/: shorter than minLength 2");
    assert_invalid(s, "\"abcd\"", "/: longer than maxLength 3");
}

static void test_jsonschema_pattern_searches_with_escapes(void **state)
{
    const char *s = "{\"pattern\":\"^[A-Z]{3}-\\\\d{4}$\"}";

    assert_int_equal(validate(s, "\"ABC-1234\""), 0);
    assert_invalid(s, "\"ABC-12345\"",
                   "/: does not match pattern '^[A-Z]{3}-\\d{4}$'");
    /* Unanchored patterns search, as JSON Schema says. */
    assert_int_equal(validate("{\"pattern\":\"b+\"}", "\"abbbc\""), 0);
    assert_int_equal(validate("{\"pattern\":\"[\\\\w.]+@\"}", "\"a.b@c\""), 0);
}

static void test_jsonschema_array_bounds_and_items(void **state)
{
    const char *s = "{\"type\":\"array\",\"minItems\":1,\"maxItems\":2,"
                    "\"items\":{\"type\":\"string\"}}";

    assert_int_equal(validate(s, "[\"a\"]"), 0);
    assert_invalid(s, "[]", "/: fewer than minItems 1");
    assert_invalid(s, "[\"a\",\"b\",\"c\"]", "/: more than maxItems 2");
    assert_invalid(s, "[\"a\",7]", "/1: expected string");
}

static void test_jsonschema_combinators(void **state)
{
    const char *any = "{\"anyOf\":[{\"type\":\"string\"},"
                      "{\"type\":\"number\",\"minimum\":5}]}";
    const char *one = "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":5}]}";
    const char *all = "{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":5}]}";

    assert_int_equal(validate(any, "\"x\""), 0);
    assert_int_equal(validate(any, "7"), 0);
    assert_invalid(any, "null", "/: matches none of anyOf");
    assert_int_equal(validate(one, "2"), 0);
    assert_int_equal(validate(one, "5.5"), 0);
    assert_invalid(one, "6", "/: matches 2 of oneOf, not exactly one");
    assert_int_equal(validate(all, "6"), 0);
    assert_invalid(all, "4", "/: below minimum 5");
}

static void test_jsonschema_local_refs(void **state)
{
    const char *defs = "{\"type\":\"object\",\"properties\":{"
                       "\"home\":{\"$ref\":\"#/definitions/addr\"},"
                       "\"work\":{\"$ref\":\"#/$defs/addr\"}},"
                       "\"definitions\":{\"addr\":{\"required\":[\"zip\"]}},"
                       "\"$defs\":{\"addr\":{\"required\":[\"city\"]}}}";

    assert_int_equal(validate(defs, "{\"home\":{\"zip\":1},"
                                    "\"work\":{\"city\":\"x\"}}"),
                     0);
    assert_invalid(defs, "{\"home\":{}}",
                   "/home: missing required property 'zip'");
    assert_invalid(defs, "{\"work\":{\"zip\":1}}",
                   "/work: missing required property 'city'");
}

static void test_jsonschema_recursive_ref_validates_trees(void **state)
{
    const char *tree = "{\"type\":\"object\",\"required\":[\"v\"],"
                       "\"properties\":{\"v\":{\"type\":\"integer\"},"
                       "\"kids\":{\"type\":\"array\",\"items\":"
                       "{\"$ref\":\"#\"}}}}";

    assert_int_equal(validate(tree, "{\"v\":1,\"kids\":[{\"v\":2,"
                                    "\"kids\":[{\"v\":3}]}]}"),
                     0);
    assert_invalid(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{}]}]}",
                   "/kids/0/kids/0: missing required property 'v'");
}

static void test_jsonschema_ref_cycle_stops_at_depth_cap(void **state)
{
    const char *loop = "{\"definitions\":{\"a\":{\"allOf\":"
                       "[{\"$ref\":\"#/definitions/a\"}]}},"
                       "\"$ref\":\"#/definitions/a\"}";

    assert_invalid(loop, "1", "/: nested deeper than 64");
}

static void test_jsonschema_deep_instance_stops_at_depth_cap(void **state)
{
    char deep[400] = "";

    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    assert_int_equal(validate("{\"items\":{\"$ref\":\"#\"}}", "[[[]]]"), 0);
    assert_int_equal(validate("{\"items\":{\"$ref\":\"#\"}}", deep), -22);
    assert_true(strstr(err, "nested deeper than 64") != NULL);
}

static void test_jsonschema_boolean_schemas(void **state)
{
    assert_invalid("{\"properties\":{\"x\":false}}", "{\"x\":1}",
                   "/x: no value allowed here");
    assert_int_equal(validate("{\"properties\":{\"x\":true}}", "{\"x\":1}"), 0);
}

static void test_jsonschema_bad_schemas_are_refused(void **state)
{
    assert_int_equal(compile_error("{\"type\":\"numbr\"}"), -22);
    assert_string_equal(err, "schema /: unknown type 'numbr'");
    assert_int_equal(compile_error("{\"properties\":{\"a\":{\"minLength\":"
                                   "-1}}}"),
                     -22);
    assert_string_equal(err, "schema /properties/a: count must be a "
                             "non-negative integer");
    assert_int_equal(compile_error("{\"$ref\":\"#/definitions/none\"}"), -22);
    assert_string_equal(err, "schema /: $ref points at nothing");
    assert_int_equal(compile_error("{\"$ref\":\"other.json#/a\"}"), -22);
    assert_int_equal(compile_error("{\"pattern\":\"(?=x)\"}"), -22);
    assert_int_equal(compile_error("{\"items\":[{},{}]}"), -22);
    assert_int_equal(compile_error("{\"anyOf\":[]}"), -22);
    assert_int_equal(compile_error("[1]"), -22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonschema_type_names_and_integer_vs_number),
        cmocka_unit_test(test_jsonschema_type_array_allows_each_listed),
        cmocka_unit_test(test_jsonschema_error_path_is_json_pointer),
        cmocka_unit_test(test_jsonschema_pointer_escapes_tilde_and_slash),
        cmocka_unit_test(test_jsonschema_required_and_additional),
        cmocka_unit_test(test_jsonschema_enum_and_const),
        cmocka_unit_test(test_jsonschema_numeric_bounds),
        cmocka_unit_test(test_jsonschema_string_length_in_code_points),
        cmocka_unit_test(test_jsonschema_pattern_searches_with_escapes),
        cmocka_unit_test(test_jsonschema_array_bounds_and_items),
        cmocka_unit_test(test_jsonschema_combinators),
        cmocka_unit_test(test_jsonschema_local_refs),
        cmocka_unit_test(test_jsonschema_recursive_ref_validates_trees),
        cmocka_unit_test(test_jsonschema_ref_cycle_stops_at_depth_cap),
        cmocka_unit_test(test_jsonschema_deep_instance_stops_at_depth_cap),
        cmocka_unit_test(test_jsonschema_boolean_schemas),
        cmocka_unit_test(test_jsonschema_bad_schemas_are_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
