/*
 * The worker thread: a FIFO of jobs under one mutex, and an eventfd that
 * tells the loop that finished jobs wait for their completions. Jobs move
 * from `todo` to `done` on the thread and leave `done` on the loop.
 */
#include "util/worker.h"

#include "util/arena.h"
#include "util/log.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct job {
    worker_fn fn;
    worker_done_fn done;
    void *arg;
    struct job *next;
} job_t;

typedef struct queue {
    job_t *head, *tail;
} queue_t;

struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    queue_t todo;
    queue_t done;
    unsigned pending;
    bool stopping;
    int efd;
    struct event *ev;
};

static void push(queue_t *q, job_t *j)
{
    j->next = NULL;
    if (q->tail != NULL)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static job_t *take_all(queue_t *q)
{
    job_t *all = q->head;

    q->head = q->tail = NULL;
    return all;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    uint64_t one = 1;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        job_t *j;

        while (w->todo.head == NULL && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        if (w->todo.head == NULL)
            break;
        j = w->todo.head;
        w->todo.head = j->next;
        if (w->todo.head == NULL)
            w->todo.tail = NULL;
        pthread_mutex_unlock(&w->lock);

        j->fn(j->arg);

        pthread_mutex_lock(&w->lock);
        push(&w->done, j);
        /* A full eventfd counter is impossible here: the loop reads it. */
        if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            log_warn("worker: eventfd write: %d", errno);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Completions run on the loop, in the order their jobs finished. */
static void complete(worker_t *w)
{
    job_t *j;

    pthread_mutex_lock(&w->lock);
    j = take_all(&w->done);
    pthread_mutex_unlock(&w->lock);
    while (j != NULL) {
        job_t *next = j->next;

        if (j->done != NULL)
            j->done(j->arg);
        free(j);
        w->pending--;
        j = next;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;

    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_warn("worker: eventfd read: %d", errno);
    complete(arg);
}

worker_t *worker_new(struct event_base *base)
{
    worker_t *w = calloc(1, sizeof(*w));

    if (w == NULL)
        die_oom();
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0)
        goto fail;
    w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, on_wake, w);
    if (w->ev == NULL || event_add(w->ev, NULL) < 0)
        goto fail;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        goto fail;
    }
    return w;
fail:
    if (w->ev != NULL)
        event_free(w->ev);
    if (w->efd >= 0)
        close(w->efd);
    free(w);
    return NULL;
}

void worker_submit(worker_t *w, worker_fn fn, worker_done_fn done, void *arg)
{
    job_t *j = malloc(sizeof(*j));

    if (j == NULL)
        die_oom();
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    w->pending++;
    pthread_mutex_lock(&w->lock);
    push(&w->todo, j);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

unsigned worker_pending(const worker_t *w)
{
    return w->pending;
}

void worker_free(worker_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    complete(w);
    event_free(w->ev);
    close(w->efd);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
