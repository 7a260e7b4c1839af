/*
 * The small shared pieces every request touches: the arena, capped
 * buffers, virtual timers, money formatting and cost state names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/arena.h"
#include "util/clock.h"
#include "util/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_arena_memory_is_aligned_and_distinct(void **state)
{
    arena_t *arena = arena_new(0);
    char *prev = NULL;

    for (size_t size = 0; size < 300; size++) {
        char *p = arena_alloc(arena, size);

        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        assert_ptr_not_equal(p, prev);
        memset(p, 0xab, size);
        prev = p;
    }
    arena_free(arena);
}

static void test_arena_serves_allocations_larger_than_a_block(void **state)
{
    arena_t *arena = arena_new(256);
    size_t before;
    char *big;

    arena_alloc(arena, 10);
    before = arena_footprint(arena);
    assert_true(before >= 256);
    big = arena_alloc(arena, 100000);
    memset(big, 1, 100000);
    assert_true(arena_footprint(arena) >= before + 100000);
    /* Small allocations still work after the big block. */
    memset(arena_alloc(arena, 32), 2, 32);
    arena_free(arena);
    arena_free(NULL);
}

static void test_arena_strings_are_copies(void **state)
{
    arena_t *arena = arena_new(1024);
    char src[] = "hello world";
    char *a = arena_strdup(arena, src);
    char *b = arena_strndup(arena, src, 5);
    char *c = arena_strndup(arena, "a\0b", 3);
    char *d = arena_printf(arena, "%s=%d;%05.1f", "n", -42, 2.5);

    src[0] = 'J';
    assert_string_equal(a, "hello world");
    assert_string_equal(b, "hello");
    assert_memory_equal(c, "a\0b\0", 4);
    assert_string_equal(d, "n=-42;002.5");
    assert_string_equal(arena_printf(arena, "%s", ""), "");
    arena_free(arena);
}

static void test_arena_printf_longer_than_a_block(void **state)
{
    arena_t *arena = arena_new(256);
    char want[2001];
    char *got;

    memset(want, 'x', 2000);
    want[2000] = '\0';
    got = arena_printf(arena, "%s", want);
    assert_string_equal(got, want);
    arena_free(arena);
}

static void test_buf_appends_and_keeps_a_nul(void **state)
{
    buf_t b;

    buf_init(&b, 100);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append(&b, "de", 2), 0);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_buf_refuses_to_pass_its_cap(void **state)
{
    buf_t b;
    char block[64];

    memset(block, 'z', sizeof(block));
    buf_init(&b, 10);
    assert_int_equal(buf_append(&b, block, 6), 0);
    assert_int_equal(buf_append(&b, block, 5), -ENOSPC);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "zzzzzz");
    /* Filling exactly to the cap is allowed. */
    assert_int_equal(buf_append(&b, "0123", 4), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "zzzzzz0123");
    assert_int_equal(buf_append(&b, "!", 1), -ENOSPC);
    assert_int_equal(buf_append(&b, "", 0), 0);
    buf_free(&b);

    buf_init(&b, 0);
    assert_int_equal(buf_append(&b, "x", 1), -ENOSPC);
    buf_free(&b);
}

static void test_buf_grows_past_its_first_allocation(void **state)
{
    buf_t b;
    char chunk[1000];

    buf_init(&b, 1 << 20);
    for (int i = 0; i < 100; i++) {
        memset(chunk, 'a' + i % 26, sizeof(chunk));
        assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
    }
    assert_int_equal(b.len, 100000);
    assert_true(b.size > b.len);
    assert_int_equal(b.data[0], 'a');
    assert_int_equal(b.data[99999], 'a' + 99 % 26);
    assert_int_equal(b.data[100000], '\0');
    buf_free(&b);
}

static void test_buf_consume_drops_the_front(void **state)
{
    buf_t b;

    buf_init(&b, 100);
    buf_consume(&b, 5); /* empty, never allocated */
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    buf_consume(&b, 0);
    assert_string_equal(b.data, "abcdef");
    buf_consume(&b, 2);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "cdef");
    buf_consume(&b, 4);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(buf_append(&b, "xy", 2), 0);
    buf_consume(&b, 99);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_free(&b);
}

/*
 * Virtual timers. The clock is process state, so each test starts it
 * afresh and frees every timer it made.
 */
#define MAX_FIRED 16

static struct {
    int ids[MAX_FIRED];
    int64_t at[MAX_FIRED];
    int n;
} fired;

typedef struct probe {
    int id;
    clock_timer_t *timer;
    clock_timer_t *victim; /* freed or cancelled when this one fires */
    bool free_victim;
    int64_t rearm_ms; /* re-armed by its own callback when > 0 */
} probe_t;

static void on_fire(void *arg)
{
    probe_t *p = arg;

    assert_true(fired.n < MAX_FIRED);
    fired.ids[fired.n] = p->id;
    fired.at[fired.n] = clock_now_ms();
    fired.n++;
    if (p->victim != NULL) {
        if (p->free_victim)
            clock_timer_free(p->victim);
        else
            clock_timer_cancel(p->victim);
        p->victim = NULL;
    }
    if (p->rearm_ms > 0) {
        int64_t again = p->rearm_ms;

        p->rearm_ms = 0;
        clock_timer_arm(p->timer, again);
    }
}

static int clock_setup(void **state)
{
    memset(&fired, 0, sizeof(fired));
    clock_init(NULL, true, 1000000);
    return 0;
}

static void probe_make(probe_t *p, int id)
{
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->timer = clock_timer_new(on_fire, p);
}

static void expect_fired(const int *ids, const int64_t *at, int n)
{
    assert_int_equal(fired.n, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(fired.ids[i], ids[i]);
        assert_int_equal(fired.at[i], at[i]);
    }
}

static void test_clock_virtual_time_moves_only_when_advanced(void **state)
{
    assert_true(clock_is_virtual());
    assert_int_equal(clock_now_ms(), 1000000);
    assert_int_equal(clock_mono_ms(), 1000000);
    assert_int_equal(clock_advance(250), 0);
    assert_int_equal(clock_now_ms(), 1000250);
    assert_int_equal(clock_mono_ms(), 1000250);
    assert_int_equal(clock_advance(-5), 0);
    assert_int_equal(clock_now_ms(), 1000250);
    assert_int_equal(clock_advance(0), 0);
    assert_int_equal(clock_now_ms(), 1000250);
}

static void test_clock_real_time_refuses_to_advance(void **state)
{
    int64_t a, b;

    clock_init(NULL, false, 0);
    assert_false(clock_is_virtual());
    a = clock_mono_ms();
    b = clock_mono_ms();
    assert_true(b >= a);
    /* Later than 2020-01-01 in Unix milliseconds. */
    assert_true(clock_now_ms() > INT64_C(1577836800000));
    assert_int_equal(clock_advance(10), -EPERM);
    clock_init(NULL, true, 0);
}

static void test_clock_timers_fire_in_due_order(void **state)
{
    probe_t p[4];
    static const int ids[] = {2, 3, 1, 4};
    static const int64_t at[] = {1000010, 1000020, 1000030, 1000030};

    for (int i = 0; i < 4; i++)
        probe_make(&p[i], i + 1);
    clock_timer_arm(p[0].timer, 30);
    clock_timer_arm(p[1].timer, 10);
    clock_timer_arm(p[2].timer, 20);
    clock_timer_arm(p[3].timer, 30); /* same due time: arm order */

    assert_int_equal(clock_advance(9), 0);
    assert_int_equal(fired.n, 0);
    assert_int_equal(clock_advance(1), 0);
    assert_int_equal(fired.n, 1);
    assert_int_equal(clock_advance(100), 0);
    expect_fired(ids, at, 4);
    assert_int_equal(clock_now_ms(), 1000110);

    /* One-shot: nothing fires again. */
    assert_int_equal(clock_advance(1000), 0);
    assert_int_equal(fired.n, 4);
    for (int i = 0; i < 4; i++)
        clock_timer_free(p[i].timer);
}

static void test_clock_cancel_and_rearm(void **state)
{
    probe_t a, b;
    static const int ids[] = {2, 1};
    static const int64_t at[] = {1000050, 1000070};

    probe_make(&a, 1);
    probe_make(&b, 2);
    clock_timer_arm(a.timer, 10);
    clock_timer_cancel(a.timer);
    clock_timer_cancel(a.timer); /* twice is harmless */
    clock_timer_arm(b.timer, 100);
    clock_timer_arm(b.timer, 50); /* re-arming moves it */
    clock_timer_arm(a.timer, 70);
    assert_int_equal(clock_advance(200), 0);
    expect_fired(ids, at, 2);
    clock_timer_free(a.timer);
    clock_timer_free(b.timer);
    clock_timer_free(NULL);
}

static void test_clock_timer_freed_in_a_callback_never_fires(void **state)
{
    probe_t a, b, c;
    static const int ids[] = {1, 3};
    static const int64_t at[] = {1000010, 1000030};

    probe_make(&a, 1);
    probe_make(&b, 2);
    probe_make(&c, 3);
    a.victim = b.timer;
    a.free_victim = true;
    clock_timer_arm(a.timer, 10);
    clock_timer_arm(b.timer, 10); /* due at the same time as a */
    clock_timer_arm(c.timer, 30);
    assert_int_equal(clock_advance(100), 0);
    expect_fired(ids, at, 2);
    clock_timer_free(a.timer);
    clock_timer_free(c.timer);
}

static void test_clock_timer_cancelled_in_a_callback_never_fires(void **state)
{
    probe_t a, b;
    static const int ids[] = {1};
    static const int64_t at[] = {1000010};

    probe_make(&a, 1);
    probe_make(&b, 2);
    a.victim = b.timer;
    clock_timer_arm(a.timer, 10);
    clock_timer_arm(b.timer, 20);
    assert_int_equal(clock_advance(100), 0);
    expect_fired(ids, at, 1);
    clock_timer_free(a.timer);
    clock_timer_free(b.timer);
}

static void test_clock_timer_rearmed_in_its_callback_fires_again(void **state)
{
    probe_t a, b;
    static const int ids[] = {1, 2, 1};
    static const int64_t at[] = {1000010, 1000015, 1000020};

    probe_make(&a, 1);
    probe_make(&b, 2);
    a.rearm_ms = 10;
    clock_timer_arm(a.timer, 10);
    clock_timer_arm(b.timer, 15);
    assert_int_equal(clock_advance(25), 0);
    expect_fired(ids, at, 3);
    clock_timer_free(a.timer);
    clock_timer_free(b.timer);
}

static void free_self(void *arg)
{
    clock_timer_t **self = arg;

    clock_timer_free(*self);
    *self = NULL;
}

static void test_clock_timer_may_free_itself(void **state)
{
    clock_timer_t *t = NULL;

    t = clock_timer_new(free_self, &t);
    clock_timer_arm(t, 5);
    assert_int_equal(clock_advance(5), 0);
    assert_null(t);
}

static void expect_usd(pico_t pico, const char *want)
{
    char out[40];

    assert_ptr_equal(pico_format_usd(pico, out, sizeof(out)), out);
    assert_string_equal(out, want);
}

static void test_pico_format_usd_is_exact(void **state)
{
    expect_usd(0, "0.000000000000");
    expect_usd(1, "0.000000000001");
    expect_usd(123450000, "0.000123450000");
    expect_usd(PICO_PER_USD, "1.000000000000");
    expect_usd(INT64_C(1234567890123), "1.234567890123");
    expect_usd(INT64_C(100) * PICO_PER_USD + 5, "100.000000000005");
    expect_usd(-1, "-0.000000000001");
    expect_usd(-PICO_PER_USD, "-1.000000000000");
    expect_usd(INT64_MAX, "9223372.036854775807");
    expect_usd(INT64_MIN, "-9223372.036854775808");
}

static void test_pico_format_usd_truncates_to_the_buffer(void **state)
{
    char out[6];

    pico_format_usd(PICO_PER_USD, out, sizeof(out));
    assert_string_equal(out, "1.000");
}

static void test_cost_status_names(void **state)
{
    assert_string_equal(cost_status_name(COST_PRICED), "priced");
    assert_string_equal(cost_status_name(COST_UNPRICED), "unpriced");
    assert_string_equal(cost_status_name(COST_USAGE_MISSING), "usage_missing");
    assert_string_equal(cost_status_name(COST_INVALID_USAGE), "invalid_usage");
    assert_string_equal(cost_status_name(COST_NONE), "none");
    assert_string_equal(cost_status_name((cost_status_t)7), "unknown");
}

#define CLOCK_TEST(fn) cmocka_unit_test_setup(fn, clock_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_memory_is_aligned_and_distinct),
        cmocka_unit_test(test_arena_serves_allocations_larger_than_a_block),
        cmocka_unit_test(test_arena_strings_are_copies),
        cmocka_unit_test(test_arena_printf_longer_than_a_block),
        cmocka_unit_test(test_buf_appends_and_keeps_a_nul),
        cmocka_unit_test(test_buf_refuses_to_pass_its_cap),
        cmocka_unit_test(test_buf_grows_past_its_first_allocation),
        cmocka_unit_test(test_buf_consume_drops_the_front),
        CLOCK_TEST(test_clock_virtual_time_moves_only_when_advanced),
        CLOCK_TEST(test_clock_real_time_refuses_to_advance),
        CLOCK_TEST(test_clock_timers_fire_in_due_order),
        CLOCK_TEST(test_clock_cancel_and_rearm),
        CLOCK_TEST(test_clock_timer_freed_in_a_callback_never_fires),
        CLOCK_TEST(test_clock_timer_cancelled_in_a_callback_never_fires),
        CLOCK_TEST(test_clock_timer_rearmed_in_its_callback_fires_again),
        CLOCK_TEST(test_clock_timer_may_free_itself),
        cmocka_unit_test(test_pico_format_usd_is_exact),
        cmocka_unit_test(test_pico_format_usd_truncates_to_the_buffer),
        cmocka_unit_test(test_cost_status_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
