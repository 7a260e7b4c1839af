/*
 * The simulator's clock: real (monotonic time, libevent timers) or
 * virtual (time moves only when a test advances it). Latencies, stalls
 * and stream pacing all schedule their next step through it.
 */
#ifndef PROVIDER_SIM_CLOCK_H
#define PROVIDER_SIM_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

struct vclock_timer;

/*
 * One clock per simulator, owned by main. In virtual mode pending timers
 * sit in a list sorted by (due, arming order).
 */
struct vclock {
    struct event_base *base;
    bool virtual_time;
    uint64_t now_ms;           /* virtual mode: the current time */
    uint64_t start_ms;         /* real mode: monotonic ms at start */
    uint64_t seq;              /* arming order, to break ties */
    struct vclock_timer *head; /* virtual mode: pending, earliest first */
};

/*
 * A timer embedded in its owner's struct. vclock_timer_init before use,
 * vclock_timer_cancel before the owner is freed.
 */
struct vclock_timer {
    struct vclock *clock;
    void (*fire)(void *arg);
    void *arg;
    uint64_t due_ms;
    uint64_t seq;
    bool armed;
    struct event *ev; /* real mode only */
    struct vclock_timer *prev, *next;
};

void vclock_init(struct vclock *clock, struct event_base *base,
                 bool virtual_time);

/* Milliseconds since the simulator started (virtual: since time 0). */
uint64_t vclock_now(const struct vclock *clock);

void vclock_timer_init(struct vclock_timer *timer, struct vclock *clock,
                       void (*fire)(void *arg), void *arg);

/* (Re)arms the timer to fire at due_ms; a due time in the past fires on
 * the next loop pass (real) or the next advance (virtual). */
void vclock_timer_arm(struct vclock_timer *timer, uint64_t due_ms);

/* Disarms the timer and releases its event; safe when never armed. */
void vclock_timer_cancel(struct vclock_timer *timer);

/*
 * Virtual mode: moves time forward by ms, firing every timer that
 * becomes due, in due order, with the clock set to each one's due time.
 * Timers armed by a firing timer fire in the same call when due.
 * Returns -EINVAL in real mode.
 */
int vclock_advance(struct vclock *clock, uint64_t ms);

#endif
