/*
 * job_remote.c - the remote recipients of a delivery attempt (see job_internal.h): grouped by
 * domain (ASCII case-insensitively) into relay requests, handed to the relay on the queue
 * manager's loop while the job waits without a thread, and the answers turned into outcomes
 * (the server that answered becomes the DSN's Remote-MTA). Owns the request arrays of its
 * attempt until job_remote_free.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/job_internal.h"
#include "queue/envelope.h"

static const char *domain_of(const char *addr)
{
    return strrchr(addr, '@') + 1;
}

static bool waits_for_relay(const attempt *a, size_t i)
{
    return a->out[i].remote && !a->out[i].tried;
}

/* The per-domain requests: recipients of one domain (ASCII case-insensitively) together. */
static size_t group_remote(attempt *a, ph_relay_request *reqs, const char **rcpts,
                           ph_client_result *results, char (*exch)[PH_RELAY_EXCHANGER_MAX],
                           size_t *owner)
{
    const char *body = ph_envelope_param(a->env, "BODY");
    size_t nreq = 0, used = 0;
    for (size_t i = 0; i < a->env->nrcpts; i++) {
        if (!waits_for_relay(a, i) || owner[i] != SIZE_MAX)
            continue;
        const char *dom = domain_of(a->env->rcpts[i].addr);
        ph_relay_request *q = &reqs[nreq];
        *q = (ph_relay_request){.qid = a->env->id, .domain = dom, .msg_fd = a->fd,
                                .results = results + used, .exchanger = exch + used};
        a->ctx->route(a->ctx->route_ctx, dom, &q->route);
        q->env = (ph_smtp_envelope){.from = a->env->from, .rcpts = rcpts + used,
                                    .size = a->size,
                                    .body_8bitmime = body && strcmp(body, "8BITMIME") == 0};
        for (size_t k = i; k < a->env->nrcpts; k++)
            if (waits_for_relay(a, k) && owner[k] == SIZE_MAX &&
                strcasecmp(domain_of(a->env->rcpts[k].addr), dom) == 0) {
                rcpts[used] = a->env->rcpts[k].addr;
                owner[k] = used++;
                q->env.nrcpts++;
            }
        nreq++;
    }
    return nreq;
}

static void record_remote(attempt *a, size_t i, const ph_client_result *res, const char *exch)
{
    outcome *o = &a->out[i];
    job_set_outcome(o, res->code, exch[0] ? exch : "none", "%d%s%s %s", res->code,
                res->enh[0] ? " " : "", res->enh, res->text);
    if (res->remote && exch[0]) {
        /* "host[address]:port" -> host; "[address literal]:port" -> the literal */
        size_t n = exch[0] == '[' ? strcspn(exch, "]") + 1 : strcspn(exch, "[");
        snprintf(o->remote_mta, sizeof(o->remote_mta), "%.*s", (int)n, exch);
    }
}

void job_remote_prepare(attempt *a)
{
    size_t n = a->env->nrcpts;
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = waits_for_relay(a, i);
    if (!any)
        return;
    a->reqs = calloc(n, sizeof(*a->reqs));
    a->ptrs = calloc(n, sizeof(*a->ptrs));
    a->rcpts = calloc(n, sizeof(*a->rcpts));
    a->results = calloc(n, sizeof(*a->results));
    a->exch = calloc(n, sizeof(*a->exch));
    a->owner = malloc(n * sizeof(*a->owner));
    if (!a->reqs || !a->ptrs || !a->rcpts || !a->results || !a->exch || !a->owner) {
        for (size_t i = 0; i < n; i++)
            if (waits_for_relay(a, i))
                job_set_outcome(&a->out[i], 451, "none", "451 4.3.0 out of memory");
        return job_remote_free(a);
    }
    for (size_t i = 0; i < n; i++)
        a->owner[i] = SIZE_MAX;
    a->nreq = group_remote(a, a->reqs, a->rcpts, a->results, a->exch, a->owner);
    for (size_t k = 0; k < a->nreq; k++)
        a->ptrs[k] = &a->reqs[k];
}

static void relay_answered(void *arg)
{
    attempt *a = arg;
    ph_qmgr_resume(a->qmgr, a->token);
}

void job_remote_cancel(void *arg)
{
    attempt *a = arg;
    for (size_t k = 0; k < a->nreq; k++) {
        ph_relay_request *p = &a->reqs[k];
        p->untried = true;
        for (size_t i = 0; i < p->env.nrcpts; i++)
            ph_client_result_set(&p->results[i], PH_STAGE_NONE, false, 451, "4.4.5",
                                 "destination busy");
    }
}

const char *job_remote_destination(const attempt *a)
{
    return a->nreq ? a->reqs[0].domain : NULL;
}

void job_remote_wait(void *arg, ph_qmgr *q, void *token)
{
    attempt *a = arg;
    a->qmgr = q;
    a->token = token;
    ph_relay_submit(a->ctx->relay, a->ptrs, a->nreq, relay_answered, a);
}

/* Whether the request that holds rcpts[slot] was not attempted (relay shutdown, or the
 * queue manager held it back for a busy destination). */
static bool untried(const attempt *a, size_t slot)
{
    for (size_t k = 0; k < a->nreq; k++) {
        size_t first = (size_t)(a->reqs[k].env.rcpts - a->rcpts);
        if (slot >= first && slot < first + a->reqs[k].env.nrcpts)
            return a->reqs[k].untried;
    }
    return false;
}

void job_remote_record(attempt *a)
{
    for (size_t k = 0; k < a->nreq; k++)
        if (a->reqs[k].untried)
            a->busy = true; /* not an attempt: due again as soon as a relay runs */
    for (size_t i = 0; a->owner && i < a->env->nrcpts; i++) {
        if (a->owner[i] == SIZE_MAX)
            continue;
        if (!untried(a, a->owner[i]))
            record_remote(a, i, &a->results[a->owner[i]], a->exch[a->owner[i]]);
    }
}

void job_remote_free(attempt *a)
{
    free(a->reqs);
    free(a->ptrs);
    free(a->rcpts);
    free(a->results);
    free(a->exch);
    free(a->owner);
    a->reqs = NULL;
    a->ptrs = NULL;
    a->rcpts = NULL;
    a->results = NULL;
    a->exch = NULL;
    a->owner = NULL;
    a->nreq = 0;
}
