/*
 * The worker thread: jobs run off the loop in order, completions run on
 * the loop, and freeing the worker finishes what was queued.
 */
#include "util/worker.h"

#include <event2/event.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef struct probe {
    int order[16];
    int n_run;
    int n_done;
    pthread_t loop_thread;
    pthread_t ran_on[16];
    struct event_base *base;
} probe_t;

typedef struct job_arg {
    probe_t *probe;
    int id;
} job_arg_t;

static void job_run(void *arg)
{
    job_arg_t *j = arg;

    j->probe->ran_on[j->id] = pthread_self();
    j->probe->order[j->probe->n_run++] = j->id;
}

static void job_done(void *arg)
{
    job_arg_t *j = arg;

    assert_true(pthread_equal(pthread_self(), j->probe->loop_thread));
    if (++j->probe->n_done == 8)
        event_base_loopbreak(j->probe->base);
}

static void test_worker_runs_jobs_in_order_off_the_loop(void **state)
{
    probe_t p = {.loop_thread = pthread_self()};
    job_arg_t jobs[8];
    worker_t *w;

    p.base = event_base_new();
    w = worker_new(p.base);
    assert_non_null(w);
    for (int i = 0; i < 8; i++) {
        jobs[i] = (job_arg_t){&p, i};
        worker_submit(w, job_run, job_done, &jobs[i]);
    }
    assert_int_equal(worker_pending(w), 8);
    event_base_dispatch(p.base);

    assert_int_equal(p.n_done, 8);
    assert_int_equal(worker_pending(w), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(p.order[i], i);
        assert_false(pthread_equal(p.ran_on[i], p.loop_thread));
    }
    worker_free(w);
    event_base_free(p.base);
}

static void test_worker_free_finishes_queued_jobs(void **state)
{
    probe_t p = {.loop_thread = pthread_self()};
    job_arg_t jobs[3];
    worker_t *w;

    p.base = event_base_new();
    w = worker_new(p.base);
    for (int i = 0; i < 3; i++) {
        jobs[i] = (job_arg_t){&p, i};
        worker_submit(w, job_run, job_done, &jobs[i]);
    }
    worker_free(w);
    assert_int_equal(p.n_run, 3);
    assert_int_equal(p.n_done, 3);
    event_base_free(p.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_runs_jobs_in_order_off_the_loop),
        cmocka_unit_test(test_worker_free_finishes_queued_jobs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
