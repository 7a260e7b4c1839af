/*
 * Tests of the dashboard's session: a signed expiry that only this
 * process' key makes, refused when altered or past, and the cookie read
 * back from a Cookie header among others.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dashboard/dashboard.h"

static const unsigned char key[DASHBOARD_KEY_BYTES] =
    "0123456789abcdef0123456789abcde";

static void test_session_token_is_signed_and_expires(void **state)
{
    unsigned char other[DASHBOARD_KEY_BYTES] = {0};
    char token[DASHBOARD_TOKEN_MAX];
    char forged[DASHBOARD_TOKEN_MAX + 8];

    (void)state;
    dashboard_session_make(key, 5000, token);
    assert_int_equal(strlen(token), 4 + 1 + 64);
    assert_memory_equal(token, "5000.", 5);
    assert_true(dashboard_session_check(key, token, 4999));
    assert_false(dashboard_session_check(key, token, 5000));
    assert_false(dashboard_session_check(other, token, 0));

    /* A later expiry with the old signature is refused. */
    snprintf(forged, sizeof(forged), "9%s", token);
    assert_false(dashboard_session_check(key, forged, 0));
    snprintf(forged, sizeof(forged), "%s", token);
    forged[10] = forged[10] == 'a' ? 'b' : 'a';
    assert_false(dashboard_session_check(key, forged, 0));
    assert_false(dashboard_session_check(key, "", 0));
    assert_false(dashboard_session_check(key, "5000.", 0));
    assert_false(dashboard_session_check(key, "-1.abc", 0));
}

static void test_cookie_is_found_among_others(void **state)
{
    char value[32];

    (void)state;
    assert_true(dashboard_cookie_get("a=1; tollgate_session=xyz; b=2",
                                     "tollgate_session", value, sizeof(value)));
    assert_string_equal(value, "xyz");
    assert_true(dashboard_cookie_get("tollgate_session=q", "tollgate_session",
                                     value, sizeof(value)));
    assert_string_equal(value, "q");
    assert_false(dashboard_cookie_get(
        "xtollgate_session=1; a=2", "tollgate_session", value, sizeof(value)));
    assert_false(dashboard_cookie_get("tollgate_session=0123456789abcdef"
                                      "0123456789abcdef",
                                      "tollgate_session", value,
                                      sizeof(value)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_token_is_signed_and_expires),
        cmocka_unit_test(test_cookie_is_found_among_others),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
