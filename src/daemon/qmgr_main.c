/*
 * qmgr_main.c - the queue manager process (see qmgr_main.h). Owns its event loop, the spool
 * handle used for bounces, the queue store shared by the jobs, the scheduler and the control
 * socket, all released when the loop ends.
 */
#include "daemon/qmgr_main.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/control.h"
#include "daemon/logbuf.h"
#include "daemon/qmgr_relay.h"
#include "deliver/job.h"
#include "deliver/qmgr.h"

void qmgr_control_path(const ph_config *cfg, char *buf, size_t size)
{
    if (cfg->g.control_socket[0])
        snprintf(buf, size, "%s", cfg->g.control_socket);
    else
        snprintf(buf, size, "%s/control", cfg->g.queue_dir);
}

/* The scheduler's and jobs' lines (level 0 error, else info), filtered by log_level as the
 * SMTP workers' lines are. */
static void log_line(void *ctx, int level, const char *line)
{
    const ph_config *cfg = ctx;
    posthorn_log_level l = level == 0 ? POSTHORN_LOG_ERROR : POSTHORN_LOG_INFO;
    if ((int)l <= cfg->g.log_level)
        logbuf_log(l, line, NULL);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

/* SIGHUP is the supervisor's business (it reloads the tables and replaces this process); here
 * it must not end the process, as its default action would. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
}

/* Job context from the configuration. */
static void job_context(const qmgr_process *p, ph_job_ctx *ctx)
{
    const ph_config *cfg = p->cfg;
    ph_retry_policy_default(&ctx->policy);
    size_t n = ph_config_retry_schedule(cfg, ctx->policy.schedule_ms, PH_RETRY_SCHEDULE_MAX);
    if (n > 0)
        ctx->policy.n = n;
    ctx->policy.lifetime_ms = cfg->g.queue_lifetime_ms;
    ctx->table = p->policy->table;
    ctx->hostname = p->hostname;
    uint64_t timeout = 0;
    for (size_t i = 0; i < cfg->ndomains; i++)
        if (cfg->domains[i].lmtp_timeout_ms > timeout)
            timeout = cfg->domains[i].lmtp_timeout_ms;
    ctx->lmtp_timeout_ms = timeout ? (int)timeout : 300000;
}

static int run_loop(const qmgr_process *p, struct event_base *base)
{
    const ph_config *cfg = p->cfg;
    char err[512] = "";
    ph_job_ctx ctx = {0};
    job_context(p, &ctx);
    int status = 1;
    ph_qmgr *q = NULL;
    control_server *cs = NULL;
    qmgr_relay *relay = NULL;
    if (!(ctx.sessions = ph_destlimit_new(cfg->g.destination_concurrency))) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    if (ph_spool_open(cfg->g.queue_dir, NULL, NULL, NULL, false, &ctx.spool, err, sizeof(err)) < 0 ||
        ph_qstore_open(cfg->g.queue_dir, &ctx.store, err, sizeof(err)) < 0)
        goto out;
    /* without a relay (no resolver: a missing trust anchor, say) local delivery still runs;
     * remote recipients wait, deferred, until it is fixed */
    if ((relay = qmgr_relay_new(base, cfg, p->hostname, log_line, (void *)cfg, err,
                                sizeof(err)))) {
        ctx.relay = qmgr_relay_engine(relay);
        ctx.route = qmgr_relay_route;
        ctx.route_ctx = relay;
    } else {
        logbuf_now(POSTHORN_LOG_ERROR, "event=relay_error error=\"%s\"", err);
        err[0] = '\0';
    }
    ph_qmgr_options o = {.spool_dir = cfg->g.queue_dir, .concurrency = cfg->g.queue_concurrency,
                         .run = ph_job_run, .run_ctx = &ctx, .log = log_line,
                         .log_ctx = (void *)cfg};
    if (!(q = ph_qmgr_new(base, &o, err, sizeof(err))))
        goto out;
    if (!(cs = control_start(base, p->control_path, q, ctx.store, err, sizeof(err))))
        goto out;
    struct event *term = evsignal_new(base, SIGTERM, stop_cb, base);
    struct event *intr = evsignal_new(base, SIGINT, stop_cb, base);
    struct event *hup = evsignal_new(base, SIGHUP, hup_cb, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_add(hup, NULL);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    event_free(hup);
    status = 0;
out:
    if (status != 0)
        logbuf_now(POSTHORN_LOG_ERROR, "event=qmgr_error error=\"%s\"", err);
    control_stop(cs);
    qmgr_relay_shutdown(relay); /* wakes jobs waiting for the relay before they are joined */
    ph_qmgr_free(q);
    qmgr_relay_free(relay);
    ph_qstore_close(ctx.store);
    ph_spool_close(ctx.spool);
    ph_destlimit_free(ctx.sessions);
    return status;
}

int qmgr_process_main(void *arg)
{
    const qmgr_process *p = arg;
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    if (!base)
        return 1;
    logbuf_start(base);
    int status = run_loop(p, base);
    logbuf_stop();
    event_base_free(base);
    return status;
}
