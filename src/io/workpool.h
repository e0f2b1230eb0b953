/*
 * workpool.h - a small thread pool that runs blocking jobs (password hashing: 20-100 ms) off
 * the libevent loop and reports each completion back on the loop thread.
 *
 * A job is (work, done, arg): work(arg) runs on a worker thread, then done(arg) runs on the
 * thread that runs the pool's event_base. Completion travels through a non-blocking pipe
 * registered as an ordinary libevent event, so the base needs no evthread_use_pthreads().
 * The number of jobs in flight (submitted, done not yet called) is bounded: submit answers
 * -EAGAIN when full, and the caller replies with a temporary failure instead of queueing more.
 *
 * Guarantee: done is called exactly once for every job submit accepted, on the loop thread,
 * after its work has returned - also for jobs still queued or running when ph_workpool_free is
 * called (free waits for their work and calls their done itself). So arg's ownership can
 * always pass to done. After any asynchronous wait the session may be gone: arg should carry a
 * session id, not a session pointer.
 */
#ifndef POSTHORN_IO_WORKPOOL_H
#define POSTHORN_IO_WORKPOOL_H

struct event_base;

#define PH_WORKPOOL_THREADS_MAX 64
#define PH_WORKPOOL_DEFAULT_PENDING 256

typedef struct ph_workpool ph_workpool;

/*
 * Starts threads (1..PH_WORKPOOL_THREADS_MAX) workers bound to base (borrowed: it must outlive
 * the pool), with at most PH_WORKPOOL_DEFAULT_PENDING jobs in flight. Worker threads block all
 * signals. Returns NULL with errno set (EINVAL, ENOMEM, EMFILE, EAGAIN, ...) on failure.
 */
ph_workpool *ph_workpool_new(struct event_base *base, unsigned threads);

/* The same with an explicit bound on jobs in flight (max_pending >= 1). */
ph_workpool *ph_workpool_new_bounded(struct event_base *base, unsigned threads,
                                     unsigned max_pending);

/*
 * Queues a job; loop thread only (done callbacks may submit). work must not be NULL; done may
 * be NULL. Returns 0, -EAGAIN when max_pending jobs are in flight, -EINVAL for a NULL work, or
 * -ECANCELED while the pool is being freed (a done callback called from ph_workpool_free).
 * When submit fails, nothing is called and arg stays the caller's.
 */
int ph_workpool_submit(ph_workpool *p, void (*work)(void *arg), void (*done)(void *arg),
                       void *arg);

/*
 * Stops the pool: waits for every queued and running job's work, calls every outstanding done
 * on the calling thread (which must be the loop thread, not inside a done callback), joins the
 * workers and frees everything. NULL is fine. With many slow jobs queued this blocks for their
 * total time divided by the thread count: free is for shutdown.
 */
void ph_workpool_free(ph_workpool *p);

#endif
