/*
 * A thread for work the event loop must not wait on (SQLite reads and
 * writes for keys and approvals). Jobs run on the thread in order; each
 * job's `done` then runs on the loop, so results are handed back without
 * locks in the caller's code.
 */
#ifndef TOLLGATE_WORKER_H
#define TOLLGATE_WORKER_H

struct event_base;

typedef struct worker worker_t;

/* Runs on the worker thread. */
typedef void (*worker_fn)(void *arg);

/* Runs on the loop after the job's fn has returned. */
typedef void (*worker_done_fn)(void *arg);

/* Starts the thread and binds completions to the loop. NULL when the
 * thread or its wake-up descriptor cannot be made. */
worker_t *worker_new(struct event_base *base);

/*
 * Queues a job; fn runs on the thread, then done (which may be NULL) on
 * the loop. arg is the caller's and stays untouched here. Call from the
 * loop's thread only. Never blocks beyond a short mutex; aborts on out of
 * memory.
 */
void worker_submit(worker_t *w, worker_fn fn, worker_done_fn done,
                   void *arg);

/* Jobs queued or running and not yet completed on the loop. */
unsigned worker_pending(const worker_t *w);

/*
 * Runs every queued job and its completion, then stops the thread. Call
 * from the loop's thread with the loop no longer dispatching (at exit);
 * completions then run here. NULL is a no-op.
 */
void worker_free(worker_t *w);

#endif
