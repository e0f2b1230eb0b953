/*
 * job_internal.h - what the delivery job's files share: job.c (the attempt: local delivery,
 * outcomes, bounces, saving) and job_remote.c (the remote recipients, through the relay).
 * Not a public interface: see job.h.
 *
 * An attempt is heap-allocated by ph_job_run and lives until its result is final: across the
 * wait for the relay when it has remote recipients (qmgr.h: ph_job_result.wait/finish).
 */
#ifndef POSTHORN_DELIVER_JOB_INTERNAL_H
#define POSTHORN_DELIVER_JOB_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "deliver/job.h"
#include "deliver/relay.h"

#define REPLY_MAX 600

/* What happened to one due recipient in this attempt. */
typedef struct outcome {
    bool tried;
    bool busy;              /* its destination had no free session: not tried, no attempt */
    int code;               /* 250, 4xx, 5xx */
    char reply[REPLY_MAX];  /* "250 2.0.0 ..." */
    char relay[PH_RELAY_EXCHANGER_MAX]; /* "maildir", "lmtp:unix:/x", "mx[ip]:25", "none" */
    char remote_mta[256];   /* the server that gave a remote reply (DSN Remote-MTA) */
    bool remote;            /* goes through the relay */
    const char *dir;        /* Maildir dir to sync before this counts as delivered */
    ph_mailbox mbox;
} outcome;

typedef struct attempt {
    const ph_job_ctx *ctx;
    ph_envelope *env;
    int fd;                 /* message data */
    uint64_t size;
    int64_t now;
    outcome *out;           /* env->nrcpts */
    FILE *log;              /* collected log lines */
    char *logbuf;
    size_t loglen;
    bool busy;              /* some recipient waits for a busy destination */
    bool *failed_now;       /* env->nrcpts: failed for good in this attempt */
    /* remote recipients (job_remote.c): one relay request per domain */
    size_t nreq;
    ph_relay_request *reqs;
    ph_relay_request **ptrs;
    const char **rcpts;
    ph_client_result *results;
    char (*exch)[PH_RELAY_EXCHANGER_MAX];
    size_t *owner;          /* env->nrcpts: index into rcpts/results, SIZE_MAX = not remote */
    ph_qmgr *qmgr;          /* while waiting for the relay */
    void *token;
} attempt;

void job_set_outcome(outcome *o, int code, const char *relay, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Builds one relay request per domain for the due remote recipients (a->nreq; 0 when there
 * are none, or memory is short: those recipients are then deferred). */
void job_remote_prepare(attempt *a);
/* ph_job_result.wait: hands the requests to the relay on the loop. */
void job_remote_wait(void *arg, ph_qmgr *q, void *token);
/* ph_job_result.cancel: the queue manager will not wait now; nothing counts as tried. */
void job_remote_cancel(void *arg);
/* The destination the attempt waits for (its first remote domain), or NULL. */
const char *job_remote_destination(const attempt *a);
/* The relay's answers into the outcomes. */
void job_remote_record(attempt *a);
void job_remote_free(attempt *a);

#endif
