/*
 * Wall and virtual time. Virtual timers sit in a list sorted by due time;
 * clock_advance() pops and runs them. Real timers are libevent events.
 */
#include "util/clock.h"

#include "util/arena.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

struct clock_timer {
    void (*cb)(void *arg);
    void *arg;
    struct event *ev; /* real clock */
    int64_t due_ms;   /* virtual clock */
    bool armed;
    struct clock_timer *next;
};

static struct event_base *clock_base;
static bool clock_virtual;
static int64_t virtual_now_ms;
static clock_timer_t *virtual_timers; /* sorted by due_ms */

void clock_init(struct event_base *base, bool virtual_time, int64_t start_ms)
{
    clock_base = base;
    clock_virtual = virtual_time;
    virtual_now_ms = start_ms;
}

bool clock_is_virtual(void)
{
    return clock_virtual;
}

int64_t clock_now_ms(void)
{
    struct timespec ts;

    if (clock_virtual)
        return virtual_now_ms;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
    struct timespec ts;

    if (clock_virtual)
        return virtual_now_ms;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unlink_virtual(clock_timer_t *timer)
{
    clock_timer_t **p;

    for (p = &virtual_timers; *p != NULL; p = &(*p)->next) {
        if (*p == timer) {
            *p = timer->next;
            break;
        }
    }
    timer->next = NULL;
}

int clock_advance(int64_t ms)
{
    int64_t target;

    if (!clock_virtual)
        return -EPERM;
    target = virtual_now_ms + (ms > 0 ? ms : 0);
    while (virtual_timers != NULL && virtual_timers->due_ms <= target) {
        clock_timer_t *t = virtual_timers;

        virtual_timers = t->next;
        t->next = NULL;
        t->armed = false;
        virtual_now_ms = t->due_ms;
        t->cb(t->arg);
    }
    virtual_now_ms = target;
    return 0;
}

static void real_fire(evutil_socket_t fd, short what, void *arg)
{
    clock_timer_t *t = arg;

    t->armed = false;
    t->cb(t->arg);
}

clock_timer_t *clock_timer_new(void (*cb)(void *arg), void *arg)
{
    clock_timer_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        die_oom();
    t->cb = cb;
    t->arg = arg;
    if (!clock_virtual) {
        t->ev = evtimer_new(clock_base, real_fire, t);
        if (t->ev == NULL)
            die_oom();
    }
    return t;
}

void clock_timer_arm(clock_timer_t *timer, int64_t delay_ms)
{
    clock_timer_t **p;

    clock_timer_cancel(timer);
    timer->armed = true;
    if (!clock_virtual) {
        struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};

        evtimer_add(timer->ev, &tv);
        return;
    }
    timer->due_ms = virtual_now_ms + delay_ms;
    for (p = &virtual_timers; *p != NULL; p = &(*p)->next)
        if ((*p)->due_ms > timer->due_ms)
            break;
    timer->next = *p;
    *p = timer;
}

void clock_timer_cancel(clock_timer_t *timer)
{
    if (!timer->armed)
        return;
    timer->armed = false;
    if (clock_virtual)
        unlink_virtual(timer);
    else
        evtimer_del(timer->ev);
}

void clock_timer_free(clock_timer_t *timer)
{
    if (timer == NULL)
        return;
    clock_timer_cancel(timer);
    if (timer->ev != NULL)
        event_free(timer->ev);
    free(timer);
}
