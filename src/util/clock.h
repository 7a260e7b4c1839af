/*
 * The gateway's clock and timers. In normal runs they are the wall clock
 * and libevent timers; under --test-clock time moves only when a test
 * advances it, so timeouts and drains are tested without waiting.
 */
#ifndef TOLLGATE_CLOCK_H
#define TOLLGATE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;

/* Binds timers to the loop. Call once before any timer is made. */
void clock_init(struct event_base *base, bool virtual_time, int64_t start_ms);
bool clock_is_virtual(void);

/* Unix time in milliseconds (virtual time in test mode). */
int64_t clock_now_ms(void);
/* A monotonic reading in milliseconds for durations. */
int64_t clock_mono_ms(void);

/* Moves virtual time forward and runs every timer that falls due, in
 * order. Returns -EPERM on the real clock. */
int clock_advance(int64_t ms);

typedef struct clock_timer clock_timer_t;

/* A one-shot timer calling cb(arg). Owned by the caller; freeing it
 * cancels it. Aborts on out of memory. */
clock_timer_t *clock_timer_new(void (*cb)(void *arg), void *arg);
void clock_timer_arm(clock_timer_t *timer, int64_t delay_ms);
void clock_timer_cancel(clock_timer_t *timer);
void clock_timer_free(clock_timer_t *timer);

#endif
