/*
 * workpool.c - worker threads for blocking jobs, completions delivered on the libevent loop
 * (see workpool.h for the contract).
 *
 * Owns: the worker threads, a fixed array of job slots (the in-flight bound: no allocation
 * per job, so submit cannot fail for memory), the wake-up pipe and its event. Slots move
 * between three lists under one mutex: free -> queue (submit) -> done (worker) -> free (loop).
 * A worker writes one byte to the pipe only when the done list goes from empty to non-empty;
 * the loop drains the pipe before taking the whole list, so no completion is ever missed and
 * the pipe never fills. Failures: new returns NULL with errno; submit returns -errno; a failed
 * pipe write can only be EAGAIN, which means a wake-up byte is already pending.
 */
#include "io/workpool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

typedef struct ph_job {
    void (*work)(void *arg);
    void (*done)(void *arg);
    void *arg;
    struct ph_job *next;
} ph_job;

typedef struct job_list {
    ph_job *head, *tail;
} job_list;

struct ph_workpool {
    struct event_base *base;
    struct event *wake_ev;
    int wake_rd, wake_wr;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* workers wait here for queued jobs or stopping */
    ph_job *slots;
    ph_job *free_slots;
    job_list queue, done;
    bool stopping;
    pthread_t *threads;
    unsigned nthreads; /* started so far */
};

/* --- lists (callers hold mu) ------------------------------------------------------------------ */

static void list_push(job_list *l, ph_job *j)
{
    j->next = NULL;
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static ph_job *list_pop(job_list *l)
{
    ph_job *j = l->head;
    if (j != NULL) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return j;
}

/* --- worker side ------------------------------------------------------------------------------ */

static void wake_loop(ph_workpool *p)
{
    char b = 1;
    while (write(p->wake_wr, &b, 1) < 0 && errno == EINTR)
        ;
    /* EAGAIN: the pipe holds unread bytes already, so the loop will wake anyway. */
}

static void *worker_main(void *arg)
{
    ph_workpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        ph_job *j = list_pop(&p->queue);
        if (j == NULL) {
            if (p->stopping) /* stop only once the queue is empty: every job's work runs */
                break;
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        j->work(j->arg);
        pthread_mutex_lock(&p->mu);
        bool was_empty = p->done.head == NULL;
        list_push(&p->done, j);
        if (was_empty) {
            pthread_mutex_unlock(&p->mu);
            wake_loop(p);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* --- loop side -------------------------------------------------------------------------------- */

/* Calls done for every finished job. Each slot is freed before its done runs, so done may
 * submit again even when the pool was full. */
static void run_done(ph_workpool *p)
{
    pthread_mutex_lock(&p->mu);
    job_list l = p->done;
    p->done.head = p->done.tail = NULL;
    pthread_mutex_unlock(&p->mu);
    ph_job *j = l.head;
    while (j != NULL) {
        ph_job *next = j->next;
        void (*done)(void *) = j->done;
        void *arg = j->arg;
        pthread_mutex_lock(&p->mu);
        j->next = p->free_slots;
        p->free_slots = j;
        pthread_mutex_unlock(&p->mu);
        if (done != NULL)
            done(arg);
        j = next;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) /* drain first, then take the list */
        ;
    run_done(arg);
}

int ph_workpool_submit(ph_workpool *p, void (*work)(void *arg), void (*done)(void *arg),
                       void *arg)
{
    if (p == NULL || work == NULL)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    ph_job *j = p->free_slots;
    if (p->stopping)
        rc = -ECANCELED;
    else if (j == NULL)
        rc = -EAGAIN;
    else {
        p->free_slots = j->next;
        *j = (ph_job){work, done, arg, NULL};
        list_push(&p->queue, j);
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* --- life cycle ------------------------------------------------------------------------------- */

/* Starts the workers with every signal blocked (they inherit the mask), so signals keep going
 * to the loop thread. Returns 0 or an errno value; p->nthreads counts those started. */
static int start_threads(ph_workpool *p, unsigned n)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = 0;
    for (; p->nthreads < n; p->nthreads++) {
        err = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);
        if (err != 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

/* Joins the workers after letting them finish the queue; safe with none started. */
static void stop_threads(ph_workpool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

static void release(ph_workpool *p)
{
    if (p->wake_ev != NULL)
        event_free(p->wake_ev);
    if (p->wake_rd >= 0)
        close(p->wake_rd);
    if (p->wake_wr >= 0)
        close(p->wake_wr);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->slots);
    free(p);
}

/* The parts that can fail before any thread exists: memory, pipe, event. errno on failure. */
static int init_resources(ph_workpool *p, unsigned threads, unsigned max_pending)
{
    p->slots = calloc(max_pending, sizeof *p->slots);
    p->threads = calloc(threads, sizeof *p->threads);
    if (p->slots == NULL || p->threads == NULL)
        return ENOMEM;
    for (unsigned i = 0; i < max_pending; i++) {
        p->slots[i].next = p->free_slots;
        p->free_slots = &p->slots[i];
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return errno;
    p->wake_rd = fds[0];
    p->wake_wr = fds[1];
    p->wake_ev = event_new(p->base, p->wake_rd, EV_READ | EV_PERSIST, on_wake, p);
    if (p->wake_ev == NULL || event_add(p->wake_ev, NULL) != 0)
        return ENOMEM;
    return 0;
}

ph_workpool *ph_workpool_new_bounded(struct event_base *base, unsigned threads,
                                     unsigned max_pending)
{
    if (base == NULL || threads == 0 || threads > PH_WORKPOOL_THREADS_MAX || max_pending == 0) {
        errno = EINVAL;
        return NULL;
    }
    ph_workpool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->base = base;
    p->wake_rd = p->wake_wr = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int err = init_resources(p, threads, max_pending);
    if (err == 0)
        err = start_threads(p, threads);
    if (err != 0) {
        stop_threads(p); /* no job was ever queued: nothing to deliver */
        release(p);
        errno = err;
        return NULL;
    }
    return p;
}

ph_workpool *ph_workpool_new(struct event_base *base, unsigned threads)
{
    return ph_workpool_new_bounded(base, threads, PH_WORKPOOL_DEFAULT_PENDING);
}

void ph_workpool_free(ph_workpool *p)
{
    if (p == NULL)
        return;
    stop_threads(p); /* every queued job's work has run when this returns */
    run_done(p);     /* ... so this delivers every outstanding done, exactly once */
    release(p);
}
