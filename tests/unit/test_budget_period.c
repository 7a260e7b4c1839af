/*
 * Tests of budget periods: day, ISO week, month and total bounds in UTC,
 * Europe/Berlin, America/New_York and America/Santiago, across DST, with
 * expected instants computed independently (Python's zoneinfo).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget/period.h"

#define H INT64_C(3600000)

static budget_tz_t *zone(const char *name)
{
    budget_tz_t *tz = NULL;
    char err[256];
    int rc = budget_tz_load(name, &tz, err, sizeof(err));

    if (rc != 0)
        fail_msg("%s", err);
    return tz;
}

static int need_zoneinfo(void **state)
{
    (void)state;
    if (access("/usr/share/zoneinfo/Europe/Berlin", R_OK) != 0 &&
        getenv("TZDIR") == NULL) {
        printf("SKIP test_budget_period: /usr/share/zoneinfo missing\n");
        return -1;
    }
    return 0;
}

static void expect_bounds(budget_period_t p, const budget_tz_t *tz, int64_t now,
                          int64_t start, int64_t end)
{
    int64_t s, e;

    budget_period_bounds(p, tz, now, &s, &e);
    assert_int_equal(s, start);
    assert_int_equal(e, end);
}

static void test_period_utc_day_week_month_total(void **state)
{
    budget_tz_t *utc = zone("UTC");
    int64_t dec3 = INT64_C(1796256000000); /* 2026-12-03T00:00Z */
    int64_t now = dec3 + 15 * H;

    (void)state;
    expect_bounds(BUDGET_DAY, utc, now, dec3, dec3 + 24 * H);
    expect_bounds(BUDGET_DAY, NULL, now, dec3, dec3 + 24 * H);
    /* 2026-12-03 is a Thursday: the week began Monday 2026-11-30. */
    expect_bounds(BUDGET_WEEK, utc, now, dec3 - 3 * 24 * H, dec3 + 4 * 24 * H);
    expect_bounds(BUDGET_MONTH, utc, now, dec3 - 2 * 24 * H,
                  dec3 + 29 * 24 * H);
    expect_bounds(BUDGET_TOTAL, utc, now, BUDGET_TIME_MIN, BUDGET_TIME_MAX);

    /* The last millisecond of a day is in it; the next is not. */
    expect_bounds(BUDGET_DAY, utc, dec3 + 24 * H - 1, dec3, dec3 + 24 * H);
    expect_bounds(BUDGET_DAY, utc, dec3 + 24 * H, dec3 + 24 * H, dec3 + 48 * H);
    budget_tz_free(utc);
}

static void test_period_iso_week_crosses_the_year(void **state)
{
    int64_t mon = INT64_C(1798416000000);  /* 2026-12-28T00:00Z */
    int64_t next = INT64_C(1799020800000); /* 2027-01-04T00:00Z */

    (void)state;
    /* 2027-01-01 is a Friday of the week that began 2026-12-28. */
    expect_bounds(BUDGET_WEEK, NULL, mon + 4 * 24 * H + 5, mon, next);
    expect_bounds(BUDGET_WEEK, NULL, next - 1, mon, next);
    expect_bounds(BUDGET_WEEK, NULL, next, next, next + 7 * 24 * H);
}

static void test_period_berlin_spring_forward_day_is_23_hours(void **state)
{
    budget_tz_t *tz = zone("Europe/Berlin");
    int64_t mar29 = INT64_C(1774738800000); /* 2026-03-29T00:00+01 */
    int64_t mar30 = INT64_C(1774821600000); /* 2026-03-30T00:00+02 */

    (void)state;
    assert_int_equal(mar30 - mar29, 23 * H);
    expect_bounds(BUDGET_DAY, tz, mar29, mar29, mar30);
    expect_bounds(BUDGET_DAY, tz, mar29 + 2 * H, mar29, mar30);
    expect_bounds(BUDGET_DAY, tz, mar30 - 1, mar29, mar30);
    /* Week of Monday 2026-03-23 (CET) to Monday 2026-03-30 (CEST). */
    expect_bounds(BUDGET_WEEK, tz, mar29 + 10 * H, INT64_C(1774220400000),
                  mar30);
    /* March: 2026-03-01T00:00+01 to 2026-04-01T00:00+02. */
    expect_bounds(BUDGET_MONTH, tz, mar29, INT64_C(1772319600000),
                  INT64_C(1774994400000));
    assert_int_equal(budget_tz_offset(tz, mar29 / 1000 + 7200 - 1), 3600);
    assert_int_equal(budget_tz_offset(tz, mar29 / 1000 + 7200), 7200);
    budget_tz_free(tz);
}

static void test_period_berlin_fall_back_day_is_25_hours(void **state)
{
    budget_tz_t *tz = zone("Europe/Berlin");
    int64_t oct25 = INT64_C(1792879200000); /* 2026-10-25T00:00+02 */
    int64_t oct26 = INT64_C(1792969200000); /* 2026-10-26T00:00+01 */

    (void)state;
    assert_int_equal(oct26 - oct25, 25 * H);
    expect_bounds(BUDGET_DAY, tz, oct25 + 24 * H, oct25, oct26);
    expect_bounds(BUDGET_DAY, tz, oct26, oct26, oct26 + 24 * H);
    budget_tz_free(tz);
}

static void test_period_new_york_across_both_changes(void **state)
{
    budget_tz_t *tz = zone("America/New_York");
    int64_t mar8 = INT64_C(1772946000000); /* 2026-03-08T00:00-05 */
    int64_t mar9 = INT64_C(1773028800000); /* 2026-03-09T00:00-04 */
    int64_t nov1 = INT64_C(1793505600000); /* 2026-11-01T00:00-04 */
    int64_t nov2 = INT64_C(1793595600000); /* 2026-11-02T00:00-05 */
    char text[48];

    (void)state;
    expect_bounds(BUDGET_DAY, tz, mar8 + 3 * H, mar8, mar9);
    assert_int_equal(mar9 - mar8, 23 * H);
    expect_bounds(BUDGET_DAY, tz, nov1 + 24 * H + 30 * 60000, nov1, nov2);
    assert_int_equal(nov2 - nov1, 25 * H);
    assert_string_equal(budget_format_time(tz, nov2, text, sizeof(text)),
                        "2026-11-02T00:00:00-05:00");
    assert_string_equal(budget_format_time(tz, mar9, text, sizeof(text)),
                        "2026-03-09T00:00:00-04:00");
    budget_tz_free(tz);
}

static void test_period_far_future_uses_the_zone_rule(void **state)
{
    budget_tz_t *tz = zone("Europe/Berlin");
    int64_t mar25 = INT64_C(2216242800000); /* 2040-03-25T00:00+01 */
    int64_t mar26 = INT64_C(2216325600000); /* 2040-03-26T00:00+02 */
    char text[48];

    (void)state;
    expect_bounds(BUDGET_DAY, tz, mar25 + 12 * H, mar25, mar26);
    assert_string_equal(budget_format_time(tz, mar26, text, sizeof(text)),
                        "2040-03-26T00:00:00+02:00");
    budget_tz_free(tz);
}

static void test_period_day_without_a_midnight_starts_at_the_jump(void **state)
{
    budget_tz_t *tz = zone("America/Santiago");
    /* 2026-09-06: clocks go from 00:00 -04 to 01:00 -03 at 04:00Z. */
    int64_t jump = INT64_C(1788667200000);
    int64_t sep7 = INT64_C(1788750000000); /* 2026-09-07T00:00-03 */
    char text[48];

    (void)state;
    expect_bounds(BUDGET_DAY, tz, jump + 5 * H, jump, sep7);
    expect_bounds(BUDGET_DAY, tz, jump - 1, jump - 24 * H, jump);
    assert_string_equal(budget_format_time(tz, jump, text, sizeof(text)),
                        "2026-09-06T01:00:00-03:00");
    budget_tz_free(tz);
}

static void test_period_wall_time_to_utc(void **state)
{
    budget_tz_t *tz = zone("Europe/Berlin");
    /* 2026-10-25T02:30 local happens twice: the first is 00:30Z. */
    int64_t twice = INT64_C(1792895400); /* 2026-10-25T02:30 as UTC */
    /* 2026-03-29T02:30 local never happens: the jump is 01:00Z. */
    int64_t never = INT64_C(1774751400);

    (void)state;
    assert_int_equal(budget_tz_to_utc(tz, twice), twice - 2 * 3600);
    assert_int_equal(budget_tz_to_utc(tz, never), INT64_C(1774746000));
    budget_tz_free(tz);
}

static void test_period_refuses_bad_zone_names(void **state)
{
    budget_tz_t *tz = NULL;
    char err[256];

    (void)state;
    assert_int_equal(budget_tz_load("../../etc/passwd", &tz, err, 256),
                     -EINVAL);
    assert_int_equal(budget_tz_load("/etc/localtime", &tz, err, 256), -EINVAL);
    assert_int_equal(budget_tz_load("Nowhere/City", &tz, err, 256), -ENOENT);
    assert_null(tz);
    assert_string_equal(budget_tz_name(NULL), "UTC");
}

static void test_period_names_parse_and_print(void **state)
{
    budget_period_t p;

    (void)state;
    assert_int_equal(budget_period_parse("week", &p), 0);
    assert_int_equal(p, BUDGET_WEEK);
    assert_int_equal(budget_period_parse("fortnight", &p), -EINVAL);
    assert_string_equal(budget_period_name(BUDGET_MONTH), "month");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_utc_day_week_month_total),
        cmocka_unit_test(test_period_iso_week_crosses_the_year),
        cmocka_unit_test(test_period_berlin_spring_forward_day_is_23_hours),
        cmocka_unit_test(test_period_berlin_fall_back_day_is_25_hours),
        cmocka_unit_test(test_period_new_york_across_both_changes),
        cmocka_unit_test(test_period_far_future_uses_the_zone_rule),
        cmocka_unit_test(test_period_day_without_a_midnight_starts_at_the_jump),
        cmocka_unit_test(test_period_wall_time_to_utc),
        cmocka_unit_test(test_period_refuses_bad_zone_names),
        cmocka_unit_test(test_period_names_parse_and_print),
    };

    return cmocka_run_group_tests(tests, need_zoneinfo, NULL);
}
