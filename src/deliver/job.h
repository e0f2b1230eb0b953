/*
 * job.h - one delivery attempt for one queued message, run on a queue manager worker thread
 * (blocking I/O): load the envelope, deliver every due recipient (Maildir, LMTP; remote
 * recipients go to the relay on the queue manager's loop, relay.h, while the job waits
 * without a thread: ph_job_result.wait), record each outcome with the retry schedule, send
 * one bounce for the recipients that failed for good, then save the new state or remove the
 * finished message. See qmgr.h for how jobs are scheduled.
 *
 * Crash safety: Maildir files are fsync'd (file and new/) before a recipient is recorded as
 * delivered; a bounce is committed to the queue before its recipients are recorded as failed;
 * the envelope is replaced atomically. A crash anywhere repeats at most one attempt.
 */
#ifndef POSTHORN_DELIVER_JOB_H
#define POSTHORN_DELIVER_JOB_H

#include <stdint.h>

#include "deliver/destlimit.h"
#include "deliver/qmgr.h"
#include "deliver/recipients.h"
#include "deliver/relay.h"
#include "queue/qstore.h"
#include "queue/schedule.h"
#include "queue/spool.h"

/* How mail for a remote domain leaves: fills *route (MX, or a smarthost). */
typedef void (*ph_job_route_fn)(void *ctx, const char *domain, ph_relay_route *route);

typedef struct ph_job_ctx {
    ph_qstore *store;             /* committed messages (shared by all jobs) */
    ph_spool *spool;              /* where bounces are committed */
    const ph_rcpt_table *table;   /* local domains; may be NULL (nothing is local) */
    const char *hostname;         /* LHLO name, Reporting-MTA, MAILER-DAEMON@ domain */
    ph_retry_policy policy;
    int lmtp_timeout_ms;
    ph_destlimit *sessions;       /* sessions per destination; NULL = no limit */
    ph_relay *relay;              /* remote delivery; NULL: remote recipients wait (deferred) */
    ph_job_route_fn route;        /* with relay */
    void *route_ctx;
} ph_job_ctx;

/* ph_qmgr_run_fn: ctx is a ph_job_ctx. */
void ph_job_run(void *ctx, const char *qid, ph_job_mode mode, ph_job_result *out);

#endif
