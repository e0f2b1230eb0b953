/*
 * relay.c - requests, destinations and the choice of exchanger for the relay (see relay.h);
 * the connections themselves are relay_conn.c's.
 *
 * Objects, all owned by the relay and living on the loop thread:
 *  - relay_req: one ph_relay_request in flight: its MX result, the candidate addresses in try
 *    order, the connection attempts running for it, which recipients are final.
 *  - relay_dest: one destination (recipient domain, or "relay:NAME"): sessions open (counted
 *    against destination_concurrency from the first connection attempt to the close), idle
 *    sessions kept for reuse, requests waiting for a session.
 *  - host memory (relay_memory.h): per address and port, the last connect latency and until
 *    when a failure is remembered.
 * The entry points (handing requests over, creation, shutdown) are relay_life.c's; the
 * objects are defined in relay_state.h.
 */
#include "deliver/relay.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "deliver/logline.h"
#include "deliver/relay_internal.h"
#include "deliver/relay_memory.h"
#include "deliver/relay_state.h"
#include "dns/idna.h"
#include "dns/mx.h"

static bool req_seek(relay_req *q);
static void dest_pump(relay_dest *d);

/* ---- small things ---------------------------------------------------------------------- */

const ph_relay_options *relay_options(const ph_relay *r) { return &r->o; }
struct event_base *relay_base(const ph_relay *r) { return r->base; }
int relay_req_fd(const relay_req *q) { return q->pub->msg_fd; }
const char *relay_req_qid(const relay_req *q) { return q->pub->qid; }

ph_tls_ctx *relay_tls_ctx(const ph_relay *r, bool verify)
{
    return verify ? r->o.tls_ctx_verify : r->o.tls_ctx;
}

/* ---- destinations -------------------------------------------------------------------------- */

static void dest_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dest_pump(arg);
}

static relay_dest *dest_get(ph_relay *r, const ph_relay_request *p)
{
    char key[DEST_KEY_MAX];
    if (p->route.smarthost)
        snprintf(key, sizeof(key), "relay:%s", p->route.name ? p->route.name : p->route.host);
    else
        snprintf(key, sizeof(key), "%s", p->domain);
    for (char *k = key; *k; k++)
        *k = (char)tolower((unsigned char)*k);
    for (relay_dest *d = r->dests; d; d = d->next)
        if (strcmp(d->key, key) == 0)
            return d;
    relay_dest *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    if (!(d->timer = event_new(r->base, -1, 0, dest_timer_cb, d))) {
        free(d);
        return NULL;
    }
    memcpy(d->key, key, sizeof(key));
    d->relay = r;
    d->wait_tail = &d->wait_head;
    d->next = r->dests;
    r->dests = d;
    return d;
}

static void dest_maybe_free(ph_relay *r, relay_dest *d)
{
    if (d->active || d->nreqs || d->sessions || d->wait_head)
        return;
    relay_dest **pp = &r->dests;
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    event_free(d->timer);
    free(d);
}

static void dest_wait(relay_dest *d, relay_req *q)
{
    q->waiting = true;
    q->wait_next = NULL;
    *d->wait_tail = q;
    d->wait_tail = &q->wait_next;
}

static relay_req *dest_unwait(relay_dest *d, relay_req *q)
{
    relay_req **pp = &d->wait_head;
    while (*pp && *pp != q)
        pp = &(*pp)->wait_next;
    if (!*pp)
        return NULL;
    *pp = q->wait_next;
    if (d->wait_tail == &q->wait_next)
        d->wait_tail = pp;
    q->waiting = false;
    return q;
}

/* Keeps d alive across calls that may finish its last request (dest_release frees it then). */
static void dest_hold(relay_dest *d)
{
    d->nreqs++;
}

static void dest_release(ph_relay *r, relay_dest *d)
{
    d->nreqs--;
    dest_maybe_free(r, d);
}

static void dest_drop_session(relay_dest *d, relay_conn *c)
{
    for (relay_conn **pp = &d->sessions; *pp; pp = &(*pp)->snext)
        if (*pp == c) {
            *pp = c->snext;
            return;
        }
}

static relay_conn *dest_take_idle(relay_dest *d)
{
    for (relay_conn *c = d->sessions; c; c = c->snext)
        if (c->state == CONN_IDLE && !c->req)
            return c;
    return NULL;
}

/* New sessions allowed now (destination_rate); else the timer is armed for later. */
static bool dest_rate_ok(ph_relay *r, relay_dest *d)
{
    if (r->o.dest_rate == 0)
        return true;
    long long gap = 1000 / r->o.dest_rate, now = relay_now_ms();
    if (d->last_open_ms == 0 || now - d->last_open_ms >= gap)
        return true;
    long long left = gap - (now - d->last_open_ms);
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    event_add(d->timer, &tv);
    return false;
}

/* A session finished its transaction: the next waiter takes it over, else it idles (or quits
 * when only requests that need another host wait, so that they get its slot). */
static void dest_give_conn(relay_dest *d, relay_conn *c)
{
    for (relay_req *w = d->wait_head; w; w = w->wait_next)
        if (!w->fallback) {
            dest_unwait(d, w);
            req_seek(w); /* finds c idle */
            return;
        }
    if (d->wait_head)
        relay_conn_quit(c);
}

/* Lets waiting requests try again (a slot or a session came free), until one has to wait. */
static void dest_pump(relay_dest *d)
{
    ph_relay *r = d->relay;
    dest_hold(d);
    while (d->wait_head) {
        relay_req *w = d->wait_head;
        dest_unwait(d, w);
        if (req_seek(w))
            break; /* back in line: nothing free */
    }
    dest_release(r, d);
}

/* ---- candidates ---------------------------------------------------------------------------- */

static bool is_self(const ph_relay *r, const char *name)
{
    size_t n = strlen(name), m = strlen(r->o.helo_name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    return n == m && strncasecmp(name, r->o.helo_name, n) == 0;
}

/* RFC 5321 5.1: when we are one of the exchangers, only better ones may be used. */
static void drop_self(ph_relay *r, ph_mx_result *mx)
{
    for (size_t i = 0; i < mx->nhosts; i++)
        if (is_self(r, mx->hosts[i].name)) {
            uint16_t pref = mx->hosts[i].preference;
            size_t k = 0;
            while (k < mx->nhosts && mx->hosts[k].preference < pref)
                k++;
            mx->nhosts = k;
            return;
        }
}

static void build_candidates(relay_req *q)
{
    ph_mx_result *mx = q->mx;
    long long rank[CANDS_MAX];
    q->ncand = 0;
    for (size_t h = 0; h < mx->nhosts; h++)
        for (size_t a = 0; a < mx->hosts[h].naddrs && q->ncand < CANDS_MAX; a++) {
            rank[q->ncand] =
                relay_memory_rank(&q->relay->memory, &mx->hosts[h].addrs[a], q->port);
            q->cands[q->ncand++] = (cand){(uint8_t)h, (uint8_t)a};
        }
    /* stable insertion sort by (preference, memory rank): the plan's shuffle among equals
     * stays where memory knows nothing */
    for (size_t i = 1; i < q->ncand; i++)
        for (size_t k = i; k > 0; k--) {
            uint16_t pa = mx->hosts[q->cands[k - 1].host].preference;
            uint16_t pb = mx->hosts[q->cands[k].host].preference;
            if (pa < pb || (pa == pb && rank[k - 1] <= rank[k]))
                break;
            cand t = q->cands[k];
            q->cands[k] = q->cands[k - 1];
            q->cands[k - 1] = t;
            long long rt = rank[k];
            rank[k] = rank[k - 1];
            rank[k - 1] = rt;
        }
}

static uint16_t cand_pref(const relay_req *q, size_t k)
{
    return q->mx->hosts[q->cands[k].host].preference;
}

/* The next candidate worth starting, or ncand: hosts that already answered in an earlier
 * round are skipped, and no more than PH_RELAY_HOSTS_MAX distinct hosts are tried. */
static size_t next_candidate(relay_req *q)
{
    while (q->next_cand < q->ncand) {
        cand c = q->cands[q->next_cand];
        if (!q->host_used[c.host] && q->hosts_used < PH_RELAY_HOSTS_MAX)
            return q->next_cand;
        if (q->host_used[c.host] && !q->fallback)
            return q->next_cand; /* another address of a host that only failed to connect */
        q->next_cand++;
    }
    return q->ncand;
}

/* ---- results ------------------------------------------------------------------------------- */

void relay_req_set_open(relay_req *q, int code, const char *enh, const char *text, bool remote,
                     ph_client_stage stage)
{
    for (size_t i = 0; i < q->pub->env.nrcpts; i++)
        if (!q->final[i]) {
            ph_client_result_set(&q->pub->results[i], stage, remote, code, enh, text);
            if (code < 400 || code >= 500)
                q->final[i] = true;
        }
}

static void prepare_txn(relay_req *q)
{
    size_t n = 0;
    for (size_t i = 0; i < q->pub->env.nrcpts; i++)
        if (!q->final[i]) {
            q->open_idx[n] = i;
            q->open_rcpts[n++] = q->pub->env.rcpts[i];
        }
    q->txn_env = q->pub->env;
    q->txn_env.rcpts = q->open_rcpts;
    q->txn_env.nrcpts = n;
}

/* Takes the transaction's results; true when some recipient may try another host. */
static bool collect(relay_req *q, relay_conn *c)
{
    size_t sent = 0, failed = 0, deferred = 0;
    for (size_t k = 0; k < q->txn_env.nrcpts; k++) {
        size_t i = q->open_idx[k];
        ph_client_result *res = &q->txn_results[k];
        if (res->code == 0)
            ph_client_result_set(res, PH_STAGE_NONE, false, 451, "4.4.2", "session ended");
        q->pub->results[i] = *res;
        snprintf(q->pub->exchanger[i], PH_RELAY_EXCHANGER_MAX, "%s", c->exchanger);
        if (res->code >= 400 && res->code < 500) {
            deferred++;
            continue;
        }
        q->final[i] = true;
        if (res->code < 300)
            sent++;
        else
            failed++;
    }
    logf_(q->relay, 2,
          "event=smtp_txn qid=%s exchanger=%s session_txn=%u tls=%s sent=%zu failed=%zu "
          "deferred=%zu",
          q->pub->qid, c->exchanger, c->c.transactions, c->c.tls_active ? "yes" : "no", sent,
          failed, deferred);
    return deferred > 0;
}

/* What req_after_txn needs of the connection, taken before the connection moves on. */
typedef struct txn_end {
    bool any_open;          /* some recipient got a 4xx */
    bool tls_broke;         /* opportunistic STARTTLS failed in the handshake */
    ph_dns_addr addr;
    unsigned port;
    size_t cand;
} txn_end;

static txn_end txn_end_of(relay_req *q, relay_conn *c)
{
    bool open = collect(q, c);
    return (txn_end){.any_open = open,
                     .tls_broke = c->params.tls == PH_SMTP_TLS_OPPORTUNISTIC &&
                                  q->txn_results[0].stage == PH_STAGE_TLS,
                     .addr = c->addr, .port = c->port, .cand = c->cand};
}

/* After a transaction (or a broken session): go on with another host, or finish. */
static void req_after_txn(relay_req *q, const txn_end *e)
{
    if (e->any_open && e->tls_broke && !q->tls_fallback) {
        /* RFC 7435: opportunistic TLS that fails is retried in clear with the same host */
        q->tls_fallback = true;
        relay_memory_no_tls(&q->relay->memory, &e->addr, e->port);
        q->next_cand = e->cand;
        q->host_used[q->cands[e->cand].host] = false;
        q->hosts_used--;
        req_seek(q);
        return;
    }
    if (e->any_open) {
        q->fallback = true; /* hosts already tried do not count any more */
        if (next_candidate(q) < q->ncand) {
            req_seek(q);
            return;
        }
    }
    relay_req_finish(q);
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void client_params(relay_req *q, const ph_dns_addr *a, ph_smtp_client_params *p,
                          bool *verify)
{
    ph_relay *r = q->relay;
    const ph_relay_route *rt = &q->pub->route;
    *p = (ph_smtp_client_params){.mode = PH_SMTP_MODE_SMTP, .helo_name = r->o.helo_name};
    if (rt->smarthost) {
        p->tls = rt->tls;
        p->tls_active = rt->implicit_tls;
        p->auth_user = rt->auth_user;
        p->auth_pass = rt->auth_pass;
        p->auth_insecure = rt->auth_insecure;
        *verify = rt->tls_verify;
    } else {
        p->tls = r->o.mx_tls;
        *verify = r->o.mx_tls_verify && r->o.mx_tls == PH_SMTP_TLS_REQUIRED;
    }
    if (!relay_tls_ctx(r, *verify)) {
        if (p->tls == PH_SMTP_TLS_OPPORTUNISTIC)
            p->tls = PH_SMTP_TLS_NONE; /* no TLS context (no OpenSSL setup): clear text */
    }
    bool no_tls = q->tls_fallback || relay_memory_skip_tls(&r->memory, a, q->port);
    if (no_tls && p->tls == PH_SMTP_TLS_OPPORTUNISTIC)
        p->tls = PH_SMTP_TLS_NONE;
}

static void stagger_cb(evutil_socket_t fd, short what, void *arg);

/* Which failure of a connection round the recipients get when no session came of it: a loop
 * back to ourselves (our own 5xx) over a server's own reply over a failed connection. */
static int error_rank(int code, bool remote)
{
    return code == 0 ? 0 : !remote && code >= 500 ? 3 : remote ? 2 : 1;
}

static void arm_stagger(relay_req *q)
{
    size_t k = next_candidate(q);
    if (q->relay->o.stagger_ms == 0 || k >= q->ncand || cand_pref(q, k) != q->group_pref)
        return;
    unsigned ms = q->relay->o.stagger_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(q->stagger, &tv);
}

/* Starts the next candidate; false when none is left. */
static bool start_attempt(relay_req *q)
{
    for (size_t k; (k = next_candidate(q)) < q->ncand;) {
        if (q->attempts && cand_pref(q, k) != q->group_pref)
            return false; /* a better exchanger is still connecting */
        q->next_cand = k + 1;
        cand cd = q->cands[k];
        ph_mx_host *h = &q->mx->hosts[cd.host];
        if (!q->attempts)
            q->group_pref = h->preference;
        if (!q->host_used[cd.host]) {
            q->host_used[cd.host] = true;
            q->hosts_used++;
        }
        ph_smtp_client_params p;
        bool verify;
        client_params(q, &h->addrs[cd.addr], &p, &verify);
        char err[300];
        relay_conn *c = relay_conn_start(q->relay, q, k, h->name, &h->addrs[cd.addr], q->port,
                                         &p, err, sizeof(err));
        if (!c) {
            if (error_rank(451, false) >= error_rank(q->last_error.code, q->last_error.remote)) {
                ph_client_result_set(&q->last_error, PH_STAGE_CONNECT, false, 451, "4.4.1", err);
                relay_format_exchanger(q->last_exchanger, sizeof(q->last_exchanger), h->name,
                                       &h->addrs[cd.addr], q->port);
            }
            logf_(q->relay, 2, "event=smtp_connect_failed qid=%s host=%s error=\"%s\"",
                  q->pub->qid, h->name, err);
            continue;
        }
        c->tls_verify = verify;
        c->dest = q->dest;
        c->next = q->attempts;
        q->attempts = c;
        arm_stagger(q);
        return true;
    }
    return false;
}

static void stagger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    relay_req *q = arg;
    size_t k = next_candidate(q);
    if (q->attempts && k < q->ncand && cand_pref(q, k) == q->group_pref)
        start_attempt(q);
}

/* No attempt is left running: the next preference group, or the end of this round. */
static void round_failed(relay_req *q)
{
    if (start_attempt(q))
        return;
    ph_client_result *e = &q->last_error;
    if (e->code == 0)
        ph_client_result_set(e, PH_STAGE_CONNECT, false, 451, "4.4.1", "no exchanger reachable");
    for (size_t i = 0; i < q->pub->env.nrcpts; i++)
        if (!q->final[i] && q->pub->results[i].code == 0) {
            q->pub->results[i] = *e;
            snprintf(q->pub->exchanger[i], PH_RELAY_EXCHANGER_MAX, "%s", q->last_exchanger);
        }
    relay_req_finish(q); /* gives the slot back */
}

void relay_on_attempt_failed(relay_conn *c, int code, const char *enh, const char *why,
                             bool remote)
{
    relay_req *q = c->req;
    ph_relay *r = c->relay;
    for (relay_conn **pp = &q->attempts; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    relay_memory_failure(&r->memory, &c->addr, c->port);
    if (error_rank(code, remote) >= error_rank(q->last_error.code, q->last_error.remote)) {
        ph_client_result_set(&q->last_error, PH_STAGE_GREETING, remote, code, enh, why);
        snprintf(q->last_exchanger, sizeof(q->last_exchanger), "%s", c->exchanger);
    }
    logf_(r, 2, "event=smtp_connect_failed qid=%s host=%s addr=%s error=\"%d %s %s\"",
          q->pub->qid, c->host, c->exchanger, code, enh ? enh : "", why);
    size_t k = next_candidate(q);
    if (k < q->ncand && (cand_pref(q, k) == q->group_pref || !q->attempts)) {
        event_del(q->stagger);
        if (start_attempt(q))
            return;
    }
    if (!q->attempts)
        round_failed(q);
}

void relay_on_greeted(relay_conn *c)
{
    relay_req *q = c->req;
    ph_relay *r = c->relay;
    for (relay_conn *o = q->attempts, *next; o; o = next) {
        next = o->next;
        if (o == c)
            continue;
        /* lost the race: never heard from, so still a candidate for a fallback round */
        size_t h = q->cands[o->cand].host;
        if (h != q->cands[c->cand].host && q->host_used[h]) {
            q->host_used[h] = false;
            q->hosts_used--;
        }
        if (o->cand < q->next_cand)
            q->next_cand = o->cand;
        relay_conn_abort(o);
    }
    q->attempts = NULL;
    event_del(q->stagger);
    unsigned ms = (unsigned)(relay_now_ms() - c->started_ms);
    relay_memory_latency(&r->memory, &c->addr, c->port, ms);
    logf_(r, 2, "event=smtp_connect qid=%s host=%s addr=%s ms=%u", q->pub->qid, c->host,
          c->exchanger, ms);
    c->best = q->mx->hosts[q->cands[c->cand].host].preference == q->mx->hosts[0].preference;
    q->holds_slot = false; /* the session holds it from now on */
    c->snext = q->dest->sessions;
    q->dest->sessions = c;
    prepare_txn(q);
    relay_conn_begin(c, q, &q->txn_env, q->txn_results);
}

/* ---- sessions ------------------------------------------------------------------------------ */

void relay_on_txn_done(relay_conn *c)
{
    relay_req *q = c->req;
    relay_dest *d = c->dest;
    c->req = NULL;
    txn_end e = txn_end_of(q, c);
    relay_conn_idle(c, q->relay->o.idle_ms ? q->relay->o.idle_ms : PH_RELAY_IDLE_MS);
    bool full = d->active >= q->relay->o.dest_concurrency;
    if (!c->best || (e.any_open && full)) {
        /* a backup exchanger is not kept for new mail; and q, going on to another host,
         * needs this slot more than an idle session does */
        relay_conn_quit(c);
    } else {
        dest_give_conn(d, c); /* whoever waits takes it over (c may be gone after this) */
    }
    req_after_txn(q, &e);
}

void relay_on_gone(relay_conn *c)
{
    relay_dest *d = c->dest;
    relay_req *q = c->req;
    dest_hold(d);
    dest_drop_session(d, c);
    d->active--;
    if (q) {
        c->req = NULL;
        txn_end e = txn_end_of(q, c);
        req_after_txn(q, &e);
    }
    dest_pump(d);
    dest_release(c->relay, d);
}

/* ---- requests -------------------------------------------------------------------------------- */

/* q takes over an idle session: its host counts as tried (a 4xx there moves on to another
 * host, never to a second connection to the same one). */
static void adopt_session(relay_req *q, relay_conn *c)
{
    for (size_t k = 0; k < q->ncand; k++) {
        const ph_mx_host *h = &q->mx->hosts[q->cands[k].host];
        const ph_dns_addr *a = &h->addrs[q->cands[k].addr];
        if (a->family == c->addr.family && memcmp(a->bytes, c->addr.bytes, 16) == 0 &&
            strcmp(h->name, c->host) == 0) {
            c->cand = k;
            if (!q->host_used[q->cands[k].host]) {
                q->host_used[q->cands[k].host] = true;
                q->hosts_used++;
            }
            return;
        }
    }
}

/* A session for q: an idle one, a new one, or a place in the line (true: q waits). q may be
 * finished (and freed) when this returns false. */
static bool req_seek(relay_req *q)
{
    ph_relay *r = q->relay;
    relay_dest *d = q->dest;
    relay_conn *c = q->fallback ? NULL : dest_take_idle(d);
    if (c) {
        adopt_session(q, c);
        prepare_txn(q);
        relay_conn_next(c, q, &q->txn_env, q->txn_results);
        return false;
    }
    if (d->active < r->o.dest_concurrency && dest_rate_ok(r, d)) {
        d->active++;
        d->last_open_ms = relay_now_ms();
        q->holds_slot = true;
        q->last_error = (ph_client_result){0};
        if (!start_attempt(q))
            round_failed(q);
        return false;
    }
    dest_wait(d, q);
    return true;
}

static void req_free(relay_req *q)
{
    if (q->stagger)
        event_free(q->stagger);
    free(q->mx);
    free(q->final);
    free(q->open_idx);
    free(q->open_rcpts);
    free(q->txn_results);
    free(q);
}

void relay_batch_done(batch *b)
{
    if (b->done) { /* ph_relay_submit: loop thread only, no lock */
        if (--b->left == 0) {
            ph_relay_done_fn done = b->done;
            void *arg = b->done_arg;
            free(b);
            done(arg);
        }
        return;
    }
    pthread_mutex_lock(&b->mu);
    if (--b->left == 0)
        pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void relay_req_finish(relay_req *q)
{
    ph_relay *r = q->relay;
    for (relay_req **pp = &r->inflight; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    ph_mx_lookup_cancel(q->mxq);
    for (relay_conn *c = q->attempts, *next; c; c = next) {
        next = c->next;
        relay_conn_abort(c);
    }
    if (q->dest && q->waiting)
        dest_unwait(q->dest, q);
    bool freed_slot = q->dest && q->holds_slot;
    if (freed_slot)
        q->dest->active--;
    for (size_t i = 0; i < q->pub->env.nrcpts; i++)
        if (q->pub->results[i].code == 0)
            ph_client_result_set(&q->pub->results[i], PH_STAGE_NONE, false, 451, "4.3.0",
                                 "delivery not completed");
    relay_dest *d = q->dest;
    batch *b = q->b;
    req_free(q);
    relay_batch_done(b);
    if (d && freed_slot && !r->shutting)
        dest_pump(d);
    if (d)
        dest_release(r, d);
}

static void on_mx(void *arg, const ph_mx_result *res)
{
    relay_req *q = arg;
    q->mxq = NULL;
    if (res->verdict != PH_MX_OK) {
        relay_req_set_open(q, res->smtp_code, res->status, res->text, false, PH_STAGE_CONNECT);
        logf_(q->relay, 2, "event=smtp_dns qid=%s domain=%s verdict=%s text=\"%s\"", q->pub->qid,
              q->pub->domain, ph_mx_verdict_name(res->verdict), res->text);
        return relay_req_finish(q);
    }
    if (!(q->mx = malloc(sizeof(*q->mx)))) {
        relay_req_set_open(q, 451, "4.3.0", "out of memory", false, PH_STAGE_CONNECT);
        return relay_req_finish(q);
    }
    *q->mx = *res;
    if (!q->pub->route.smarthost)
        drop_self(q->relay, q->mx);
    if (q->mx->nhosts == 0) {
        char why[400];
        snprintf(why, sizeof(why), "mail for %s loops back to myself", q->pub->domain);
        relay_req_set_open(q, 554, "5.4.6", why, false, PH_STAGE_CONNECT);
        return relay_req_finish(q);
    }
    build_candidates(q);
    req_seek(q);
}

void relay_req_start(ph_relay *r, relay_req *q)
{
    q->next = r->inflight;
    r->inflight = q;
    const ph_relay_route *rt = &q->pub->route;
    q->port = rt->smarthost ? rt->port : r->o.mx_port;
    if (!(q->dest = dest_get(r, q->pub))) {
        relay_req_set_open(q, 451, "4.3.0", "out of memory", false, PH_STAGE_CONNECT);
        return relay_req_finish(q);
    }
    q->dest->nreqs++;
    if (ph_dns_name_to_ascii(rt->smarthost ? rt->host : q->pub->domain, q->lookup,
                             sizeof(q->lookup)) < 0) {
        relay_req_set_open(q, 550, "5.1.2", "the domain is not a valid internationalized domain name",
                 false, PH_STAGE_CONNECT);
        return relay_req_finish(q);
    }
    int rc = rt->smarthost ? ph_mx_lookup_host(r->o.resolver, q->lookup, on_mx, q, &q->mxq)
                           : ph_mx_lookup(r->o.resolver, q->lookup, NULL, NULL, on_mx, q,
                                          &q->mxq);
    if (rc < 0) {
        relay_req_set_open(q, 451, "4.3.0", "cannot start the DNS lookup", false, PH_STAGE_CONNECT);
        relay_req_finish(q);
    }
}

relay_req *relay_req_new(ph_relay *r, ph_relay_request *p, batch *b)
{
    size_t n = p->env.nrcpts;
    relay_req *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->relay = r;
    q->pub = p;
    q->b = b;
    q->final = calloc(n, sizeof(*q->final));
    q->open_idx = calloc(n, sizeof(*q->open_idx));
    q->open_rcpts = calloc(n, sizeof(*q->open_rcpts));
    q->txn_results = calloc(n, sizeof(*q->txn_results));
    q->stagger = event_new(r->base, -1, 0, stagger_cb, q);
    if (!q->final || !q->open_idx || !q->open_rcpts || !q->txn_results || !q->stagger) {
        req_free(q);
        return NULL;
    }
    return q;
}
