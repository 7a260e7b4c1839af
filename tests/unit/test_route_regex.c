/*
 * Pattern translation: ECMAScript-style escapes, groups and classes
 * behave as configs expect on the POSIX matcher; what it cannot do is
 * refused at compile time, never silently changed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "route/regex.h"

#include <string.h>

static bool matches(const char *pattern, const char *text)
{
    regex_t re;
    char err[160];
    bool hit;

    if (route_regex_compile(&re, pattern, err, sizeof(err)) != 0)
        fail_msg("'%s' refused: %s", pattern, err);
    hit = route_regex_search(&re, text, strlen(text));
    regfree(&re);
    return hit;
}

static int refused(const char *pattern)
{
    regex_t re;
    char err[160];
    int rc = route_regex_compile(&re, pattern, err, sizeof(err));

    if (rc == 0)
        regfree(&re);
    return rc;
}

static void test_regex_class_escapes(void **state)
{
    assert_true(matches("^\\d{3}-\\d{4}$", "555-1234"));
    assert_false(matches("^\\d{3}-\\d{4}$", "555-12a4"));
    assert_true(matches("^\\D+$", "abc"));
    assert_false(matches("^\\D+$", "a1c"));
    assert_true(matches("^\\w+\\s\\w+$", "hello world"));
    assert_true(matches("\\bcat\\b", "a cat sat"));
    assert_false(matches("\\bcat\\b", "concatenate"));
}

static void test_regex_bracket_escapes(void **state)
{
    assert_true(matches("^[\\d.]+$", "3.14"));
    assert_false(matches("^[\\d.]+$", "3,14"));
    assert_true(matches("^[\\w-]+$", "a_b-c"));
    assert_true(matches("^[a\\]]+$", "a]a"));
    assert_true(matches("^[\\^x]+$", "^x^"));
    assert_true(matches("[\\^]", "a^b"));
    assert_true(matches("^[^\\d]+$", "abc"));
    assert_false(matches("^[^\\d]+$", "ab1"));
    assert_true(matches("^[\\s]+$", " \t"));
    assert_true(matches("^[[:upper:]]+$", "ABC"));
}

static void test_regex_groups_lazy_and_case(void **state)
{
    assert_true(matches("^(?:ab)+$", "abab"));
    assert_true(matches("a.*?b", "axxb"));
    assert_true(matches("(?i)^HELLO", "hello there"));
    assert_false(matches("^HELLO", "hello there"));
    assert_true(matches("\\.\\/\\$", "./$"));
    assert_true(matches("line\\nnext", "line\nnext"));
}

static void test_regex_search_is_bounded_by_length(void **state)
{
    regex_t re;
    char err[160];
    const char text[] = "abcXYZ";

    assert_int_equal(route_regex_compile(&re, "XYZ", err, sizeof(err)), 0);
    assert_true(route_regex_search(&re, text, 6));
    assert_false(route_regex_search(&re, text, 5));
    regfree(&re);
}

static void test_regex_refuses_what_posix_cannot_do(void **state)
{
    assert_int_equal(refused("a(?=b)"), -22);
    assert_int_equal(refused("(?<!a)b"), -22);
    assert_int_equal(refused("(a)\\1"), -22);
    assert_int_equal(refused("\\p{L}"), -22);
    assert_int_equal(refused("[\\D]"), -22);
    assert_int_equal(refused("[abc"), -22);
    assert_int_equal(refused("a("), -22);
    assert_int_equal(refused("trailing\\"), -22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regex_class_escapes),
        cmocka_unit_test(test_regex_bracket_escapes),
        cmocka_unit_test(test_regex_groups_lazy_and_case),
        cmocka_unit_test(test_regex_search_is_bounded_by_length),
        cmocka_unit_test(test_regex_refuses_what_posix_cannot_do),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
