/*
 * Real and virtual time for the simulator. Real timers are libevent
 * timer events; virtual ones wait in a sorted list until an advance.
 */
#include "sim_clock.h"

#include <errno.h>
#include <time.h>

static uint64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void vclock_init(struct vclock *clock, struct event_base *base,
                 bool virtual_time)
{
    clock->base = base;
    clock->virtual_time = virtual_time;
    clock->now_ms = 0;
    clock->start_ms = monotonic_ms();
    clock->seq = 0;
    clock->head = NULL;
}

uint64_t vclock_now(const struct vclock *clock)
{
    if (clock->virtual_time)
        return clock->now_ms;
    return monotonic_ms() - clock->start_ms;
}

void vclock_timer_init(struct vclock_timer *timer, struct vclock *clock,
                       void (*fire)(void *arg), void *arg)
{
    timer->clock = clock;
    timer->fire = fire;
    timer->arg = arg;
    timer->due_ms = 0;
    timer->seq = 0;
    timer->armed = false;
    timer->ev = NULL;
    timer->prev = NULL;
    timer->next = NULL;
}

static void real_fired(evutil_socket_t fd, short what, void *arg)
{
    struct vclock_timer *timer = arg;

    timer->armed = false;
    timer->fire(timer->arg);
}

static void real_arm(struct vclock_timer *timer)
{
    uint64_t now = vclock_now(timer->clock);
    uint64_t wait = timer->due_ms > now ? timer->due_ms - now : 0;
    struct timeval tv;

    if (timer->ev == NULL)
        timer->ev = evtimer_new(timer->clock->base, real_fired, timer);
    tv.tv_sec = (time_t)(wait / 1000);
    tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
    evtimer_add(timer->ev, &tv);
}

static bool sooner(const struct vclock_timer *a, const struct vclock_timer *b)
{
    if (a->due_ms != b->due_ms)
        return a->due_ms < b->due_ms;
    return a->seq < b->seq;
}

static void list_insert(struct vclock *clock, struct vclock_timer *timer)
{
    struct vclock_timer *prev = NULL;
    struct vclock_timer *cur = clock->head;

    while (cur != NULL && !sooner(timer, cur)) {
        prev = cur;
        cur = cur->next;
    }

    timer->prev = prev;
    timer->next = cur;
    if (cur != NULL)
        cur->prev = timer;
    if (prev != NULL)
        prev->next = timer;
    else
        clock->head = timer;
}

static void list_remove(struct vclock *clock, struct vclock_timer *timer)
{
    if (timer->prev != NULL)
        timer->prev->next = timer->next;
    else
        clock->head = timer->next;
    if (timer->next != NULL)
        timer->next->prev = timer->prev;
    timer->prev = NULL;
    timer->next = NULL;
}

void vclock_timer_arm(struct vclock_timer *timer, uint64_t due_ms)
{
    struct vclock *clock = timer->clock;

    if (timer->armed && clock->virtual_time)
        list_remove(clock, timer);

    timer->due_ms = due_ms;
    timer->seq = clock->seq++;
    timer->armed = true;

    if (clock->virtual_time)
        list_insert(clock, timer);
    else
        real_arm(timer);
}

void vclock_timer_cancel(struct vclock_timer *timer)
{
    if (timer->armed && timer->clock->virtual_time)
        list_remove(timer->clock, timer);
    timer->armed = false;

    if (timer->ev != NULL) {
        event_free(timer->ev);
        timer->ev = NULL;
    }
}

int vclock_advance(struct vclock *clock, uint64_t ms)
{
    uint64_t target;

    if (!clock->virtual_time)
        return -EINVAL;

    target = clock->now_ms + ms;
    if (target < clock->now_ms)
        target = UINT64_MAX;

    /* Unlink before firing: the owner may free the timer in fire. */
    while (clock->head != NULL && clock->head->due_ms <= target) {
        struct vclock_timer *timer = clock->head;

        list_remove(clock, timer);
        timer->armed = false;
        if (timer->due_ms > clock->now_ms)
            clock->now_ms = timer->due_ms;
        timer->fire(timer->arg);
    }

    clock->now_ms = target;
    return 0;
}
