/*
 * job.c - one delivery attempt for one message (see job.h).
 *
 * Recipients are routed by the recipient table: Maildir users are delivered one by one (each
 * copy differs in its Delivered-To:), their new/ directories fsync'd once per directory at the
 * end; LMTP users go to their server in one session per destination; remote recipients go to
 * the relay per domain (job_remote.c), and the attempt waits for its answers without holding
 * a thread. Each outcome is a reply ("250 2.0.0 ...", "451 4.3.0 ...") recorded by the retry
 * schedule.
 */
#include "deliver/job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/bounce.h"
#include "deliver/job_internal.h"
#include "deliver/lmtp.h"
#include "deliver/maildir.h"
#include "proto/qid.h"

void job_set_outcome(outcome *o, int code, const char *relay, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    o->tried = true;
    o->code = code;
    vsnprintf(o->reply, sizeof(o->reply), fmt, ap);
    snprintf(o->relay, sizeof(o->relay), "%s", relay);
    va_end(ap);
}

/* ---- Maildir ------------------------------------------------------------------------------ */

static void deliver_maildir(attempt *a, size_t i)
{
    outcome *o = &a->out[i];
    const char *dir = o->mbox.folder ? o->mbox.folder : o->mbox.maildir;
    char prefix[2 * 1100];
    int n = snprintf(prefix, sizeof(prefix), "Return-Path: <%s>\nDelivered-To: %s\n",
                     a->env->from, a->env->rcpts[i].addr);
    char err[512] = "";
    int r = n > 0 && (size_t)n < sizeof(prefix)
                ? ph_maildir_deliver(dir, prefix, (size_t)n, a->fd, a->size, false, NULL, 0, err,
                                     sizeof(err))
                : -ENAMETOOLONG;
    if (r == 0) {
        o->dir = dir;
        job_set_outcome(o, 250, "maildir", "250 2.0.0 delivered to maildir");
    } else if (ph_maildir_error_is_temporary(r)) {
        job_set_outcome(o, r == -ENOSPC || r == -EDQUOT ? 452 : 451, "maildir", "%s %s maildir: %s",
                    r == -ENOSPC || r == -EDQUOT ? "452" : "451",
                    r == -ENOSPC || r == -EDQUOT ? "4.2.2" : "4.3.0", err[0] ? err : strerror(-r));
    } else {
        job_set_outcome(o, 550, "maildir", "550 5.2.0 maildir: %s", err[0] ? err : strerror(-r));
    }
}

/* One fsync per Maildir new/ directory makes every rename into it durable. */
static void sync_maildirs(attempt *a)
{
    for (size_t i = 0; i < a->env->nrcpts; i++) {
        outcome *o = &a->out[i];
        if (!o->dir)
            continue;
        bool first = true;
        for (size_t k = 0; k < i && first; k++)
            first = !a->out[k].dir || strcmp(a->out[k].dir, o->dir) != 0;
        int r = first ? ph_maildir_sync(o->dir) : 0;
        for (size_t k = i; r < 0 && k < a->env->nrcpts; k++)
            if (a->out[k].dir && strcmp(a->out[k].dir, o->dir) == 0) {
                job_set_outcome(&a->out[k], 451, "maildir", "451 4.3.0 maildir: fsync of %s/new: %s",
                            o->dir, strerror(-r));
                a->out[k].dir = NULL;
            }
    }
}

/* ---- LMTP -------------------------------------------------------------------------------- */

static bool has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* RFC 6531 3.4: SMTPUTF8 is only asked for when an address needs it, so ASCII mail received
 * with the parameter still goes to servers without the extension (Dovecot 2.3 has none). */
static bool needs_smtputf8(const ph_envelope *e, const char *const *rcpts, size_t n)
{
    if (!ph_envelope_param(e, "SMTPUTF8"))
        return false;
    bool any = has_8bit(e->from);
    for (size_t i = 0; i < n && !any; i++)
        any = has_8bit(rcpts[i]);
    return any;
}

/* Marks dest's recipients as waiting for a free session (no attempt is counted). */
static void mark_busy(attempt *a, const char *dest)
{
    for (size_t i = 0; i < a->env->nrcpts; i++)
        if (!a->out[i].tried && a->out[i].mbox.lmtp && strcmp(a->out[i].mbox.lmtp, dest) == 0)
            a->out[i].busy = true;
    a->busy = true;
    fprintf(a->log, "event=destination_busy qid=%s relay=lmtp:%s\n", a->env->id, dest);
}

/* All due recipients whose mailbox is behind LMTP destination dest, in one session. */
static void deliver_lmtp_group(attempt *a, const char *dest)
{
    if (a->ctx->sessions && !ph_destlimit_try(a->ctx->sessions, dest))
        return mark_busy(a, dest);
    size_t n = 0;
    size_t *idx = calloc(a->env->nrcpts, sizeof(*idx));
    const char **rcpts = calloc(a->env->nrcpts, sizeof(*rcpts));
    ph_lmtp_result *res = calloc(a->env->nrcpts, sizeof(*res));
    char relay[128];
    snprintf(relay, sizeof(relay), "lmtp:%s", dest);
    for (size_t i = 0; idx && rcpts && res && i < a->env->nrcpts; i++) {
        outcome *o = &a->out[i];
        if (!o->tried && o->mbox.lmtp && strcmp(o->mbox.lmtp, dest) == 0) {
            idx[n] = i;
            rcpts[n++] = a->env->rcpts[i].addr;
        }
    }
    if (!idx || !rcpts || !res) {
        for (size_t i = 0; i < a->env->nrcpts; i++)
            if (!a->out[i].tried && a->out[i].mbox.lmtp && strcmp(a->out[i].mbox.lmtp, dest) == 0)
                job_set_outcome(&a->out[i], 451, relay, "451 4.3.0 out of memory");
        goto out;
    }
    const char *body = ph_envelope_param(a->env, "BODY");
    ph_lmtp_job job = {
        .dest = dest,
        .lhlo_name = a->ctx->hostname,
        .from = a->env->from,
        .body_8bitmime = body && strcmp(body, "8BITMIME") == 0,
        .smtputf8 = needs_smtputf8(a->env, rcpts, n),
        .rcpts = rcpts,
        .nrcpts = n,
        .msg_fd = a->fd,
        .size = a->size,
        .timeout_ms = a->ctx->lmtp_timeout_ms,
    };
    char err[512] = "";
    int r = ph_lmtp_deliver(&job, res, err, sizeof(err));
    for (size_t k = 0; k < n; k++) {
        outcome *o = &a->out[idx[k]];
        if (r < 0)
            job_set_outcome(o, 451, relay, "451 4.4.1 %s", err[0] ? err : strerror(-r));
        else
            job_set_outcome(o, res[k].code, relay, "%d%s%s %s", res[k].code, res[k].enh[0] ? " " : "",
                        res[k].enh, res[k].text);
    }
out:
    if (a->ctx->sessions)
        ph_destlimit_release(a->ctx->sessions, dest);
    free(idx);
    free(rcpts);
    free(res);
}

/* ---- routing ------------------------------------------------------------------------------ */

static void route(attempt *a, size_t i)
{
    outcome *o = &a->out[i];
    const char *addr = a->env->rcpts[i].addr;
    const char *at = strrchr(addr, '@');
    if (!a->ctx->table || !at || !ph_rcpt_table_is_local(a->ctx->table, at + 1)) {
        if (at && a->ctx->relay)
            o->remote = true; /* sent per domain below */
        else
            job_set_outcome(o, 451, "none",
                        "451 4.4.0 no route to %s: remote delivery is not available",
                        at ? at + 1 : addr);
        return;
    }
    int r = ph_rcpt_table_mailbox(a->ctx->table, addr, &o->mbox);
    if (r == -ENOENT)
        job_set_outcome(o, 550, "none", "550 5.1.1 <%s>: no such user here", addr);
    else if (r < 0)
        job_set_outcome(o, 451, "none", "451 4.3.0 mailbox lookup failed: %s", strerror(-r));
    else if (o->mbox.transport == PH_DELIVER_MAILDIR)
        deliver_maildir(a, i);
    /* LMTP recipients are left untried here and sent per destination below */
}

static void deliver_due(attempt *a, bool force)
{
    for (size_t i = 0; i < a->env->nrcpts; i++)
        if (ph_schedule_due(&a->env->rcpts[i], a->now, force))
            route(a, i);
    for (size_t i = 0; i < a->env->nrcpts; i++) {
        outcome *o = &a->out[i];
        if (!o->tried && !o->busy && o->mbox.transport == PH_DELIVER_LMTP && o->mbox.lmtp &&
            ph_schedule_due(&a->env->rcpts[i], a->now, force))
            deliver_lmtp_group(a, o->mbox.lmtp);
    }
    job_remote_prepare(a);
    sync_maildirs(a);
}

/* ---- bounces ------------------------------------------------------------------------------ */

/* The RFC 3463 code inside a recorded reply ("550 5.1.1 ..." -> "5.1.1"), else a default. */
static void status_of(const char *reply, char *out, size_t size)
{
    const char *fallback = "5.0.0";
    if (reply && strncmp(reply, "delivery time expired", 21) == 0)
        fallback = "4.4.7";
    const char *p = reply ? strchr(reply, ' ') : NULL;
    unsigned c, s, d;
    int used = 0;
    if (p && sscanf(p + 1, "%1u.%3u.%3u%n", &c, &s, &d, &used) == 3 && (c == 4 || c == 5) &&
        (p[1 + used] == ' ' || p[1 + used] == '\0') && strcmp(fallback, "4.4.7") != 0)
        snprintf(out, size, "%u.%u.%u", c, s, d);
    else
        snprintf(out, size, "%s", fallback);
}

static int queue_bounce(attempt *a, const bool *failed_now, char *newid, size_t idsize)
{
    ph_envelope *e = a->env;
    size_t n = 0;
    ph_bounce_rcpt *br = calloc(e->nrcpts, sizeof(*br));
    char (*status)[16] = calloc(e->nrcpts, sizeof(*status));
    int r = br && status ? 0 : -ENOMEM;
    for (size_t i = 0; r == 0 && i < e->nrcpts; i++) {
        if (!failed_now[i])
            continue;
        status_of(e->rcpts[i].last_error, status[i], sizeof(status[i]));
        br[n++] = (ph_bounce_rcpt){.addr = e->rcpts[i].addr, .status = status[i],
                                   .diagnostic = e->rcpts[i].last_error,
                                   .remote_mta = a->out && a->out[i].remote_mta[0]
                                                     ? a->out[i].remote_mta : NULL,
                                   .last_attempt = e->rcpts[i].done_at};
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    static unsigned counter;
    char qid[PH_QID_LEN + 1];
    ph_qid_format(qid, (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000,
                  (unsigned)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    char *msg = NULL, *envtext = NULL;
    size_t msglen = 0, envlen = 0;
    ph_bounce_info in = {.reporting_mta = a->ctx->hostname, .queue_id = e->id,
                         .sender = e->from, .arrival = e->received, .now = a->now,
                         .rcpts = br, .nrcpts = n, .msg_fd = a->fd, .msg_size = a->size,
                         .boundary_seed = qid};
    if (r == 0)
        r = ph_bounce_build(&in, &msg, &msglen);
    ph_envelope *be = r == 0 ? ph_envelope_new() : NULL;
    if (r == 0 && !be)
        r = -ENOMEM;
    if (r == 0) {
        r |= ph_envelope_set_string(&be->id, qid);
        r |= ph_envelope_set_string(&be->client, "local");
        r |= ph_envelope_set_string(&be->protocol, "local");
        r |= ph_envelope_set_string(&be->from, "");
        r |= ph_envelope_add_rcpt(be, e->from);
        be->received = a->now;
        be->size = msglen;
        if (r == 0)
            r = ph_envelope_serialize(be, &envtext, &envlen);
    }
    if (r == 0)
        r = ph_spool_store(a->ctx->spool, qid, msg, msglen, envtext, envlen);
    if (r == 0)
        snprintf(newid, idsize, "%s", qid);
    ph_envelope_free(be);
    free(msg);
    free(envtext);
    free(br);
    free(status);
    return r < 0 ? r : 0;
}

/* Sends one bounce for the recipients that failed in this run (never to the null sender). If
 * it cannot be queued they are deferred again: failing them silently would lose the notice. */
static void bounce_failures(attempt *a, const bool *failed_now, size_t nfailed)
{
    ph_envelope *e = a->env;
    if (nfailed == 0 || e->from[0] == '\0') {
        if (nfailed)
            fprintf(a->log, "event=bounce_skipped qid=%s reason=null_sender nrcpt=%zu\n", e->id,
                    nfailed);
        return;
    }
    char bid[PH_QID_LEN + 1] = "";
    int r = queue_bounce(a, failed_now, bid, sizeof(bid));
    if (r == 0) {
        fprintf(a->log, "event=bounce qid=%s bounce_qid=%s nrcpt=%zu\n", e->id, bid, nfailed);
        return;
    }
    fprintf(a->log, "event=bounce_error qid=%s error=\"%s\"\n", e->id, strerror(-r));
    for (size_t i = 0; i < e->nrcpts; i++)
        if (failed_now[i]) {
            char why[PH_ENVELOPE_ERROR_MAX];
            snprintf(why, sizeof(why), "%s (bounce not sent: %s)",
                     e->rcpts[i].last_error ? e->rcpts[i].last_error : "failed", strerror(-r));
            ph_envelope_rcpt_set_state(e, i, PH_RCPT_DEFERRED,
                                       a->now + ph_retry_delay(&a->ctx->policy, 1), why);
        }
}

/* ---- the job ------------------------------------------------------------------------------- */

static const char *status_word(ph_rcpt_state s)
{
    return s == PH_RCPT_DELIVERED ? "sent" : s == PH_RCPT_FAILED ? "bounced" : "deferred";
}

/* Records every outcome (only the deliveries, when only_delivered: those are then no longer
 * "tried", so a later call does not record them twice); marks the recipients that failed for
 * good in this run. */
static size_t record_outcomes(attempt *a, bool *failed_now, bool only_delivered)
{
    size_t nfailed = 0;
    ph_envelope *e = a->env;
    for (size_t i = 0; i < e->nrcpts; i++) {
        outcome *o = &a->out[i];
        if (!o->tried || (only_delivered && o->code >= 300))
            continue;
        if (only_delivered)
            o->tried = false;
        int s = ph_schedule_record(e, i, o->code, o->reply, a->now, &a->ctx->policy);
        if (s == PH_RCPT_FAILED)
            failed_now[i] = true, nfailed++;
        fprintf(a->log,
                "event=delivery qid=%s rcpt=%s status=%s relay=%s delay=%llds attempts=%u "
                "reply=\"%s\"\n",
                e->id, e->rcpts[i].addr, s < 0 ? "error" : status_word((ph_rcpt_state)s),
                o->relay, (long long)(a->now - e->received), e->rcpts[i].attempts,
                e->rcpts[i].last_error ? e->rcpts[i].last_error : "");
    }
    return nfailed;
}

static size_t fail_all(attempt *a, bool *failed_now)
{
    size_t n = 0;
    for (size_t i = 0; i < a->env->nrcpts; i++) {
        ph_rcpt *r = &a->env->rcpts[i];
        if (r->state == PH_RCPT_PENDING || r->state == PH_RCPT_DEFERRED) {
            ph_schedule_fail(a->env, i, "550 5.0.0 returned to sender by the postmaster", a->now);
            failed_now[i] = true;
            n++;
        }
    }
    return n;
}

/* After the attempt: remove the finished message, or store its new state. */
static void finish(attempt *a, ph_job_result *out)
{
    const ph_job_ctx *ctx = a->ctx;
    if (ph_envelope_all_done(a->env)) {
        int r = ph_qstore_remove(ctx->store, a->env->id);
        fprintf(a->log, "event=removed qid=%s%s%s\n", a->env->id, r < 0 ? " error=" : "",
                r < 0 ? strerror(-r) : "");
        out->next_due = -1;
        return;
    }
    int r = ph_qstore_save(ctx->store, a->env);
    if (r < 0) /* the old state stays: the attempt is repeated, nothing is lost */
        fprintf(a->log, "event=queue_error qid=%s what=save error=\"%s\"\n", a->env->id,
                strerror(-r));
    out->next_due = ph_envelope_next_due(a->env);
    if (a->busy && out->next_due < a->now + 1)
        out->next_due = a->now + 1; /* a busy destination: look again in a second */
}

/* Everything a finished attempt holds, then the attempt itself; the log goes to out. */
static void end_attempt(attempt *a, ph_job_result *out)
{
    for (size_t i = 0; a->out && a->env && i < a->env->nrcpts; i++)
        ph_mailbox_clear(&a->out[i].mbox);
    free(a->out);
    free(a->failed_now);
    job_remote_free(a);
    if (a->fd >= 0)
        close(a->fd);
    ph_envelope_free(a->env);
    fclose(a->log);
    out->log = a->logbuf;
    free(a);
}

/* Every outcome is known: record them, bounce, save or remove. */
static void complete(attempt *a, ph_job_result *out)
{
    bounce_failures(a, a->failed_now, record_outcomes(a, a->failed_now, false));
    finish(a, out);
}

/* ph_job_result.finish: the relay has answered for the remote recipients. */
static void finish_remote(void *arg, ph_job_result *out)
{
    attempt *a = arg;
    out->next_due = -1;
    a->now = (int64_t)time(NULL); /* the wait may have been long: retries count from now */
    job_remote_record(a);
    complete(a, out);
    end_attempt(a, out);
}

/* Before waiting for the relay (which may take minutes): local recipients delivered now are
 * recorded and saved, so a crash during the wait does not deliver them again. Failures wait
 * for the end, where their bounce is committed before they are recorded. */
static void checkpoint_local(attempt *a)
{
    bool any = false;
    for (size_t i = 0; i < a->env->nrcpts && !any; i++)
        any = a->out[i].tried && a->out[i].code < 300;
    if (!any)
        return;
    record_outcomes(a, a->failed_now, true);
    int r = ph_qstore_save(a->ctx->store, a->env);
    if (r < 0) /* the deliveries stay recorded in memory and are saved at the end */
        fprintf(a->log, "event=queue_error qid=%s what=save error=\"%s\"\n", a->env->id,
                strerror(-r));
}

/* true: the attempt waits for the relay (out says how), a stays alive. */
static bool run_attempt(attempt *a, ph_job_mode mode, ph_job_result *out)
{
    a->failed_now = calloc(a->env->nrcpts, sizeof(bool));
    a->out = calloc(a->env->nrcpts, sizeof(*a->out));
    if (!a->failed_now || !a->out) {
        fprintf(a->log, "event=queue_error qid=%s what=memory\n", a->env->id);
        out->next_due = a->now + 60;
        return false;
    }
    if (mode == PH_JOB_BOUNCE) {
        bounce_failures(a, a->failed_now, fail_all(a, a->failed_now));
        finish(a, out);
        return false;
    }
    deliver_due(a, mode == PH_JOB_FLUSH);
    if (a->nreq > 0) {
        checkpoint_local(a);
        out->wait = job_remote_wait;
        out->cancel = job_remote_cancel;
        out->wait_dest = job_remote_destination(a);
        out->finish = finish_remote;
        out->wait_arg = a;
        return true;
    }
    complete(a, out);
    return false;
}

void ph_job_run(void *ctxp, const char *qid, ph_job_mode mode, ph_job_result *out)
{
    const ph_job_ctx *ctx = ctxp;
    int64_t now = (int64_t)time(NULL);
    out->next_due = now + 60; /* if nothing else is known: look again in a minute */
    out->held = false;
    attempt *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    a->ctx = ctx;
    a->fd = -1;
    a->now = now;
    if (!(a->log = open_memstream(&a->logbuf, &a->loglen))) {
        free(a);
        return;
    }
    out->next_due = -1;
    char err[512];
    int r = ph_qstore_load(ctx->store, qid, &a->env, err, sizeof(err));
    if (r == -EBADMSG)
        fprintf(a->log, "event=queue_corrupt qid=%s moved_to=corrupt/ reason=\"%s\"\n", qid, err);
    else if (r < 0 && r != -ENOENT)
        fprintf(a->log, "event=queue_error qid=%s what=load error=\"%s\"\n", qid, strerror(-r)),
            out->next_due = a->now + 60;
    if (r == 0 && mode != PH_JOB_BOUNCE && ph_qstore_is_held(ctx->store, qid)) {
        out->held = true;
        out->next_due = ph_envelope_next_due(a->env);
    } else if (r == 0 && mode == PH_JOB_DELIVER && ph_envelope_next_due(a->env) > a->now) {
        out->next_due = ph_envelope_next_due(a->env); /* nothing due yet (seen at start-up) */
    } else if (r == 0) {
        a->fd = ph_qstore_open_data(ctx->store, qid);
        long long size = a->fd >= 0 ? ph_qstore_data_size(ctx->store, qid) : -1;
        if (a->fd < 0 || size < 0) {
            fprintf(a->log, "event=queue_error qid=%s what=data error=\"%s\"\n", qid,
                    strerror(a->fd < 0 ? -a->fd : (int)-size));
            out->next_due = a->now + 60;
        } else {
            a->size = (uint64_t)size;
            if (run_attempt(a, mode, out))
                return; /* finish_remote ends it */
        }
    }
    end_attempt(a, out);
}
