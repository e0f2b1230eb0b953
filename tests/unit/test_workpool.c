/*
 * test_workpool.c - unit tests for src/io/workpool.c on a real libevent base: work runs on
 * worker threads (with signals blocked) and done on the loop thread, exactly once each; the
 * in-flight bound (-EAGAIN, then room again); done callbacks that submit (even into a pool of
 * one slot); free delivering every outstanding done and refusing submits; bad arguments; and a
 * stress run. Every loop run has a 10 s safety exit so a lost wake-up fails instead of hanging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <event2/event.h>

#include "io/workpool.h"

typedef struct job {
    int id;
    int work_ran;   /* set by work (worker thread), read by done after the pool's handoff */
    int done_calls; /* loop thread only */
    bool work_off_loop, sigint_blocked;
    unsigned sleep_us;
} job;

static pthread_t loop_thread;
static struct event_base *base;
static int done_total, done_target;
static ph_workpool *pool;

static void nap(unsigned us)
{
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
}

static void job_work(void *arg)
{
    job *j = arg;
    j->work_off_loop = !pthread_equal(pthread_self(), loop_thread);
    sigset_t cur;
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    j->sigint_blocked = sigismember(&cur, SIGINT) == 1;
    if (j->sleep_us)
        nap(j->sleep_us);
    j->work_ran++;
}

static void job_done(void *arg)
{
    job *j = arg;
    assert_true(pthread_equal(pthread_self(), loop_thread));
    assert_int_equal(j->work_ran, 1); /* work finished before done */
    j->done_calls++;
    if (++done_total == done_target)
        event_base_loopbreak(base);
}

/* Runs the loop until done_target completions, failing after 10 s. */
static void run_until(int target)
{
    done_target = target;
    if (done_total >= target)
        return;
    struct timeval tv = {10, 0};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    if (done_total < target)
        fail_msg("only %d of %d jobs done after 10 s", done_total, target);
}

static int setup(void **state)
{
    (void)state;
    loop_thread = pthread_self();
    base = event_base_new();
    done_total = 0;
    done_target = -1;
    pool = NULL;
    return base != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ph_workpool_free(pool);
    event_base_free(base);
    return 0;
}

static void check_jobs(const job *jobs, int n)
{
    for (int i = 0; i < n; i++) {
        if (jobs[i].work_ran != 1 || jobs[i].done_calls != 1 || !jobs[i].work_off_loop ||
            !jobs[i].sigint_blocked)
            fail_msg("job %d: work %d done %d off-loop %d sigmask %d", i, jobs[i].work_ran,
                     jobs[i].done_calls, jobs[i].work_off_loop, jobs[i].sigint_blocked);
    }
}

static void test_basic(void **state)
{
    (void)state;
    static job jobs[100];
    memset(jobs, 0, sizeof jobs);
    pool = ph_workpool_new(base, 4);
    assert_non_null(pool);
    for (int i = 0; i < 100; i++) {
        jobs[i] = (job){.id = i, .sleep_us = 500};
        assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[i]), 0);
    }
    run_until(100);
    check_jobs(jobs, 100);
}

/* A gate that holds a worker inside its work until opened. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void gate_work(void *arg)
{
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    job_work(arg);
}

static void set_gate(bool open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void test_full(void **state)
{
    (void)state;
    job jobs[6];
    memset(jobs, 0, sizeof jobs);
    set_gate(false);
    pool = ph_workpool_new_bounded(base, 1, 4);
    assert_non_null(pool);
    assert_int_equal(ph_workpool_submit(pool, gate_work, job_done, &jobs[0]), 0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[i]), 0);
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[4]), -EAGAIN);
    assert_int_equal(jobs[4].work_ran, 0);
    set_gate(true);
    run_until(4);
    /* room again: done ran, so the slots are free */
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[4]), 0);
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[5]), 0);
    run_until(6);
    check_jobs(jobs, 6);
}

/* Finished work whose done has not run yet still counts: the bound is on jobs in flight. */
static void test_full_until_done(void **state)
{
    (void)state;
    job jobs[3];
    memset(jobs, 0, sizeof jobs);
    pool = ph_workpool_new_bounded(base, 2, 2);
    assert_non_null(pool);
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[0]), 0);
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[1]), 0);
    nap(50000); /* both works finish; the loop has not run */
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[2]), -EAGAIN);
    run_until(2);
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &jobs[2]), 0);
    run_until(3);
    check_jobs(jobs, 3);
}

/* done may submit, even into a pool with a single slot: the slot is freed before done runs. */
typedef struct chain {
    job j;
    int left;
} chain;

static void chain_done(void *arg)
{
    chain *c = arg;
    assert_int_equal(c->j.work_ran, 1);
    c->j.work_ran = 0;
    if (--c->left > 0)
        assert_int_equal(ph_workpool_submit(pool, job_work, chain_done, c), 0);
    else
        event_base_loopbreak(base);
    done_total++;
}

static void test_done_resubmits(void **state)
{
    (void)state;
    chain c;
    memset(&c, 0, sizeof c);
    c.left = 50;
    pool = ph_workpool_new_bounded(base, 1, 1);
    assert_non_null(pool);
    assert_int_equal(ph_workpool_submit(pool, job_work, chain_done, &c), 0);
    run_until(50);
    assert_int_equal(c.left, 0);
}

/* free waits for queued and running work and calls every done, once, on this thread. */
static int refused;

static void refusing_done(void *arg)
{
    job_done(arg);
    if (ph_workpool_submit(pool, job_work, job_done, arg) == -ECANCELED)
        refused++;
}

static void test_free_delivers(void **state)
{
    (void)state;
    job jobs[16];
    memset(jobs, 0, sizeof jobs);
    refused = 0;
    pool = ph_workpool_new_bounded(base, 2, 16);
    assert_non_null(pool);
    for (int i = 0; i < 16; i++) {
        jobs[i].sleep_us = 2000;
        assert_int_equal(ph_workpool_submit(pool, job_work, refusing_done, &jobs[i]), 0);
    }
    ph_workpool_free(pool); /* the loop never ran */
    pool = NULL;
    assert_int_equal(done_total, 16);
    assert_int_equal(refused, 16);
    check_jobs(jobs, 16);
}

/* done may be NULL: the work still runs (one worker runs jobs in order). */
static void test_null_done(void **state)
{
    (void)state;
    job a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    pool = ph_workpool_new(base, 1);
    assert_non_null(pool);
    assert_int_equal(ph_workpool_submit(pool, job_work, NULL, &a), 0);
    assert_int_equal(ph_workpool_submit(pool, job_work, job_done, &b), 0);
    run_until(1);
    assert_int_equal(a.work_ran, 1);
}

static void test_bad_args(void **state)
{
    (void)state;
    errno = 0;
    assert_null(ph_workpool_new(base, 0));
    assert_int_equal(errno, EINVAL);
    assert_null(ph_workpool_new(base, PH_WORKPOOL_THREADS_MAX + 1));
    assert_null(ph_workpool_new(NULL, 1));
    assert_null(ph_workpool_new_bounded(base, 1, 0));
    pool = ph_workpool_new(base, PH_WORKPOOL_THREADS_MAX);
    assert_non_null(pool);
    job j;
    memset(&j, 0, sizeof j);
    assert_int_equal(ph_workpool_submit(pool, NULL, job_done, &j), -EINVAL);
    assert_int_equal(ph_workpool_submit(NULL, job_work, job_done, &j), -EINVAL);
    ph_workpool_free(NULL);
}

/* Many threads, many short jobs, a small bound: submit until full, let the loop drain, repeat. */
static void test_stress(void **state)
{
    (void)state;
    enum { N = 3000 };
    static job jobs[N];
    memset(jobs, 0, sizeof jobs);
    pool = ph_workpool_new_bounded(base, 8, 64);
    assert_non_null(pool);
    int next = 0, busy = 0;
    while (next < N) {
        int rc = ph_workpool_submit(pool, job_work, job_done, &jobs[next]);
        if (rc == 0) {
            next++;
            continue;
        }
        assert_int_equal(rc, -EAGAIN);
        busy++;
        event_base_loop(base, EVLOOP_ONCE);
    }
    run_until(N);
    check_jobs(jobs, N);
    print_message("stress: %d jobs, %d full pool waits\n", N, busy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_until_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_resubmits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_delivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stress, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
