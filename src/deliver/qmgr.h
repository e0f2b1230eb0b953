/*
 * qmgr.h - the queue manager: knows every committed message in <spool>/queue, decides when each
 * is tried, and runs delivery jobs on worker threads, at most `concurrency` at once, one job per
 * message at a time. New messages (from any receiving process, or bounces it made itself) are
 * noticed through inotify on queue/, deferred ones by a once-a-second look at their due times.
 *
 * What a job does is the caller's (see job.h): the manager only passes the queue id and a mode,
 * and gets back when the message is due next (or that it is gone) plus log lines to write.
 * Operator commands (flush, hold, release, delete, bounce) come from the control socket.
 *
 * Threads: everything here runs on the event loop's thread except run(), which runs on a worker.
 * Ownership: the manager owns its index, workers, inotify descriptor and queue directory
 * handle; strings in options are borrowed and must outlive it.
 */
#ifndef POSTHORN_DELIVER_QMGR_H
#define POSTHORN_DELIVER_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef enum ph_job_mode {
    PH_JOB_DELIVER, /* recipients that are due */
    PH_JOB_FLUSH,   /* every undelivered recipient, due or not */
    PH_JOB_BOUNCE,  /* fail every undelivered recipient now and send the bounce */
} ph_job_mode;

typedef struct ph_qmgr ph_qmgr;
typedef struct ph_job_result ph_job_result;

struct ph_job_result {
    int64_t next_due; /* unix seconds of the next attempt; -1: the message is gone */
    bool held;        /* a hold marker was found: leave it alone until released */
    char *log;        /* malloc'd log lines ("\n"-separated, info level), or NULL */
    /*
     * A job that must wait for work on the event loop (remote delivery) sets wait and finish
     * instead of a final result: the manager then calls wait(wait_arg, q, token) on the loop,
     * and that work calls ph_qmgr_resume(q, token) on the loop when it is done; finish
     * (wait_arg, out) then runs on a worker thread and fills the final result (it may not
     * wait again). Meanwhile the job holds neither a thread nor a concurrency slot, and the
     * message is still one job: no other starts for it. log, if set, is written at once.
     */
    void (*wait)(void *wait_arg, ph_qmgr *q, void *token);
    void (*finish)(void *wait_arg, ph_job_result *out);
    void *wait_arg;
    /* With wait: the destination the job waits for (borrowed until finish), and cancel, which
     * the manager calls instead of wait when that destination already has its share of
     * messages in flight (ph_qmgr_options.dest_in_flight): finish then runs at once and must
     * count no attempt; the message is parked until one of that destination finishes. */
    const char *wait_dest;
    void (*cancel)(void *wait_arg);
};

/* Runs on a worker thread; fills *out (next_due -1 and log NULL when nothing is known). */
typedef void (*ph_qmgr_run_fn)(void *ctx, const char *qid, ph_job_mode mode, ph_job_result *out);
/* Loop thread: one log line (no newline). */
typedef void (*ph_qmgr_log_fn)(void *ctx, int level, const char *line);

typedef struct ph_qmgr_options {
    const char *spool_dir;
    unsigned concurrency;   /* jobs at once, >= 1 */
    ph_qmgr_run_fn run;
    void *run_ctx;
    ph_qmgr_log_fn log;     /* may be NULL */
    void *log_ctx;
    unsigned dest_in_flight; /* messages waiting per destination at most; 0 = half of the
                                messages in flight (10x concurrency, or the fd limit's share) */
} ph_qmgr_options;

typedef struct ph_qmgr_stats {
    unsigned long known;      /* messages in the index */
    unsigned long active;     /* jobs running */
    unsigned long ready;      /* due, waiting for a free slot */
    unsigned long long jobs;  /* jobs finished since start */
} ph_qmgr_stats;

/* Scans the queue (every message is looked at once: due times live in the envelopes), starts
 * watching it and the workers. NULL with a reason in err. */
ph_qmgr *ph_qmgr_new(struct event_base *base, const ph_qmgr_options *o, char *err,
                     size_t errlen);
/* Stops taking new jobs, waits for running ones, frees everything. NULL is fine. Every
 * waiting job must have been resumed first (or resume during this call: stop what they wait
 * for before, e.g. ph_relay_shutdown); one that is not is logged and abandoned. */
void ph_qmgr_free(ph_qmgr *q);

/* Operator commands. qid NULL for flush means every message. 0, -ENOENT (no such message),
 * -EINVAL (bad id) or another -errno. */
int ph_qmgr_flush(ph_qmgr *q, const char *qid);
int ph_qmgr_hold(ph_qmgr *q, const char *qid);
int ph_qmgr_release(ph_qmgr *q, const char *qid);
int ph_qmgr_delete(ph_qmgr *q, const char *qid);
int ph_qmgr_bounce(ph_qmgr *q, const char *qid);

ph_qmgr_stats ph_qmgr_get_stats(const ph_qmgr *q);

/* A waiting job's loop work is done (see ph_job_result.wait): its finish runs next, on a
 * worker thread (or right here when the pool is shutting down). Loop thread only. */
void ph_qmgr_resume(ph_qmgr *q, void *token);

#endif
