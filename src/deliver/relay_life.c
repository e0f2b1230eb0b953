/*
 * relay_life.c - the relay's entry points (see relay.h): requests handed over from worker
 * threads (an inbox under the mutex and a wake-up pipe on the loop) or on the loop itself,
 * creation, and shutdown (every session closed, every request answered). Owns the inbox, the
 * pipe and its event; the requests themselves are relay.c's.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/relay_state.h"

/* ---- the inbox (worker threads -> loop) ------------------------------------------------------ */

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    ph_relay *r = arg;
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    pthread_mutex_lock(&r->mu);
    relay_req *list = r->inbox;
    r->inbox = NULL;
    pthread_mutex_unlock(&r->mu);
    /* the inbox is LIFO: start in arrival order */
    relay_req *rev = NULL;
    while (list) {
        relay_req *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        relay_req *next = rev->next;
        relay_req_start(r, rev);
        rev = next;
    }
}

/* Clears a request's outputs before it is taken. */
static void reset_request(ph_relay_request *p)
{
    memset(p->results, 0, p->env.nrcpts * sizeof(*p->results));
    p->untried = false;
    for (size_t k = 0; k < p->env.nrcpts; k++)
        p->exchanger[k][0] = '\0';
}

/* A request that cannot start: the relay is stopping (not tried: no attempt counts), or
 * memory is short (a temporary failure). */
static void refuse_request(ph_relay_request *p, bool stopping)
{
    p->untried = stopping;
    for (size_t i = 0; i < p->env.nrcpts; i++)
        ph_client_result_set(&p->results[i], PH_STAGE_NONE, false, 451,
                             stopping ? "4.3.2" : "4.3.0",
                             stopping ? "shutting down" : "out of memory");
}

void ph_relay_deliver(ph_relay *r, ph_relay_request *const *reqs, size_t n)
{
    batch b = {.left = 0};
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < n; i++) {
        ph_relay_request *p = reqs[i];
        reset_request(p);
        relay_req *q = r->shut || p->env.nrcpts == 0 ? NULL : relay_req_new(r, p, &b);
        if (!q) {
            refuse_request(p, r->shut);
            continue;
        }
        q->next = r->inbox;
        r->inbox = q;
        b.left++;
    }
    pthread_mutex_unlock(&r->mu);
    if (b.left > 0) {
        ssize_t w = write(r->wake[1], "x", 1);
        (void)w; /* EAGAIN: a wake-up is pending already */
        pthread_mutex_lock(&b.mu);
        while (b.left > 0)
            pthread_cond_wait(&b.cv, &b.mu);
        pthread_mutex_unlock(&b.mu);
    }
    pthread_cond_destroy(&b.cv);
    pthread_mutex_destroy(&b.mu);
}

void ph_relay_submit(ph_relay *r, ph_relay_request *const *reqs, size_t n,
                     ph_relay_done_fn done, void *arg)
{
    batch *b = calloc(1, sizeof(*b));
    if (b) {
        b->done = done;
        b->done_arg = arg;
        b->left = 1; /* held until every request has started: one may finish at once */
    }
    for (size_t i = 0; i < n; i++) {
        ph_relay_request *p = reqs[i];
        reset_request(p);
        relay_req *q = b && !r->shutting && p->env.nrcpts ? relay_req_new(r, p, b) : NULL;
        if (!q) {
            refuse_request(p, r->shutting);
            continue;
        }
        b->left++;
        relay_req_start(r, q);
    }
    if (b)
        relay_batch_done(b);
    else
        done(arg);
}

/* ---- life -------------------------------------------------------------------------------------- */

ph_relay *ph_relay_new(struct event_base *base, const ph_relay_options *o)
{
    if (!base || !o || !o->resolver || !o->helo_name || o->dest_concurrency == 0) {
        errno = EINVAL;
        return NULL;
    }
    ph_relay *r = calloc(1, sizeof(*r));
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->o = *o;
    r->base = base;
    r->memory.lifetime_ms = o->host_memory_ms;
    r->wake[0] = r->wake[1] = -1;
    pthread_mutex_init(&r->mu, NULL);
    if (pipe2(r->wake, O_NONBLOCK | O_CLOEXEC) < 0 ||
        !(r->wake_ev = event_new(base, r->wake[0], EV_READ | EV_PERSIST, wake_cb, r)) ||
        event_add(r->wake_ev, NULL) < 0) {
        int e = errno ? errno : ENOMEM;
        ph_relay_free(r);
        errno = e;
        return NULL;
    }
    return r;
}

void ph_relay_shutdown(ph_relay *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->shut = true;
    relay_req *list = r->inbox;
    r->inbox = NULL;
    pthread_mutex_unlock(&r->mu);
    r->shutting = true;
    for (relay_req *q = list, *next; q; q = next) {
        next = q->next;
        q->next = r->inflight;
        r->inflight = q;
    }
    /* sessions first (no callbacks), then every request ends with what it has */
    for (relay_dest *d = r->dests; d; d = d->next) {
        for (relay_conn *c = d->sessions, *next; c; c = next) {
            next = c->snext;
            relay_conn_abort(c);
        }
        d->sessions = NULL;
        d->active = 0;
        d->wait_head = NULL;
        d->wait_tail = &d->wait_head;
    }
    while (r->inflight) {
        relay_req *q = r->inflight;
        q->waiting = false;
        q->holds_slot = false;
        q->pub->untried = true;
        relay_req_set_open(q, 451, "4.3.2", "shutting down", false, PH_STAGE_NONE);
        relay_req_finish(q);
    }
    while (r->dests) {
        relay_dest *d = r->dests;
        r->dests = d->next;
        event_free(d->timer);
        free(d);
    }
}

void ph_relay_free(ph_relay *r)
{
    if (!r)
        return;
    ph_relay_shutdown(r);
    if (r->wake_ev)
        event_free(r->wake_ev);
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
