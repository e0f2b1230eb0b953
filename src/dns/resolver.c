/*
 * resolver.c - libunbound (threaded async mode) driven from a libevent read event on ub_fd, with
 * a timer per query; turns each ub_result into a ph_dns_answer (rdata parsed by rdata.c). See
 * resolver.h for the design. Owns the ub_ctx, the fd event and every open query.
 */
#include "dns/resolver.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>
#include <unistd.h>

#define DNS_CLASS_IN 1
#define RCODE_NOERROR 0
#define RCODE_NXDOMAIN 3
#define RECORDS_MAX 4096 /* more records than fit in a 64 KiB reply: a broken result */

struct ph_dns_query {
    ph_resolver *resolver;
    int async_id;
    uint16_t qtype;
    struct event *timer;
    ph_dns_done_fn done;
    void *arg;
    ph_dns_query *prev, *next; /* the resolver's list of open queries */
};

struct ph_resolver {
    struct event_base *base;
    struct ub_ctx *ctx;
    struct event *fd_event;
    unsigned timeout_ms;
    ph_dns_query *open;
    size_t nopen;
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
                                                           const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int set_option(struct ub_ctx *ctx, const char *opt, const char *val, char *err,
                      size_t errlen)
{
    int rc = ub_ctx_set_option(ctx, opt, val);
    if (rc != 0) {
        set_err(err, errlen, "libunbound option %s %s refused", opt, val);
        return -EINVAL;
    }
    return 0;
}

static int add_forwarders(struct ub_ctx *ctx, const ph_resolver_opts *o, char *err,
                          size_t errlen)
{
    if (o->nforwarders > PH_RESOLVER_FORWARDERS_MAX) {
        set_err(err, errlen, "too many forwarders (at most %d)", PH_RESOLVER_FORWARDERS_MAX);
        return -EINVAL;
    }
    /* A loopback forwarder is what tests and local resolvers use: allow it. */
    int rc = set_option(ctx, "do-not-query-localhost:", "no", err, errlen);
    if (rc == 0)
        rc = set_option(ctx, "infra-keep-probing:", "yes", err, errlen);
    /* libunbound answers names under test. (RFC 6761) itself with NXDOMAIN; the forwarder may
     * well serve them (test setups do), so let those queries through. */
    if (rc == 0)
        rc = set_option(ctx, "local-zone:", "test. transparent", err, errlen);
    for (size_t i = 0; rc == 0 && i < o->nforwarders; i++) {
        const char *f = o->forwarders[i];
        /* ub_ctx_set_fwd takes IP or IP@PORT only (no host names: no DNS to find DNS). */
        if (!f || !*f || ub_ctx_set_fwd(ctx, f) != 0) {
            set_err(err, errlen, "bad forwarder \"%s\" (want IP or IP@PORT)", f ? f : "");
            rc = -EINVAL;
        }
    }
    return rc;
}

static int add_trust_anchor(struct ub_ctx *ctx, const char *file, char *err, size_t errlen)
{
    /* Checked here because libunbound only reports an unreadable file at the first query. */
    if (access(file, R_OK) != 0) {
        int e = errno;
        set_err(err, errlen, "trust anchor %s: %s", file, strerror(e));
        return -e;
    }
    int rc = ub_ctx_add_ta_file(ctx, file);
    if (rc != 0) {
        set_err(err, errlen, "trust anchor %s: %s", file, ub_strerror(rc));
        return -EIO;
    }
    return 0;
}

static int configure(struct ub_ctx *ctx, const ph_resolver_opts *o, char *err, size_t errlen)
{
    int rc = 0;
    if (o->nforwarders > 0)
        rc = add_forwarders(ctx, o, err, errlen);
    const char *ta = o->trust_anchor_file;
    if (!ta && o->nforwarders == 0)
        ta = PH_RESOLVER_ROOT_KEY;
    if (rc == 0 && ta)
        rc = add_trust_anchor(ctx, ta, err, errlen);
    if (rc == 0 && o->hosts_file && ub_ctx_hosts(ctx, o->hosts_file) != 0) {
        set_err(err, errlen, "hosts file %s: cannot be read", o->hosts_file);
        rc = -EINVAL;
    }
    /* A thread, not the default forked process: see resolver.h. */
    if (rc == 0 && ub_ctx_async(ctx, 1) != 0) {
        set_err(err, errlen, "libunbound: no threaded async mode");
        rc = -EIO;
    }
    return rc;
}

static void on_fd_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ph_resolver *r = arg;
    /* An error means libunbound's thread or pipe is gone: stop watching a pipe that would stay
     * readable (at EOF) and spin the loop. Open and later queries then end by their timers, so
     * nothing waits forever. */
    if (ub_process(r->ctx) != 0)
        event_del(r->fd_event);
}

int ph_resolver_new(struct event_base *base, const ph_resolver_opts *opts, ph_resolver **out,
                    char *err, size_t errlen)
{
    static const ph_resolver_opts defaults = {0};
    if (err && errlen > 0)
        err[0] = '\0';
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!base || (opts && opts->nforwarders > 0 && !opts->forwarders)) {
        set_err(err, errlen, "invalid arguments");
        return -EINVAL;
    }
    const ph_resolver_opts *o = opts ? opts : &defaults;
    ph_resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->base = base;
    r->timeout_ms = o->timeout_ms ? o->timeout_ms : PH_RESOLVER_TIMEOUT_MS;
    r->ctx = ub_ctx_create();
    int rc = r->ctx ? configure(r->ctx, o, err, errlen) : -ENOMEM;
    if (rc == 0) {
        r->fd_event = event_new(base, ub_fd(r->ctx), EV_READ | EV_PERSIST, on_fd_readable, r);
        if (!r->fd_event || event_add(r->fd_event, NULL) != 0)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        ph_resolver_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static void unlink_query(ph_dns_query *q)
{
    ph_resolver *r = q->resolver;
    if (q->prev)
        q->prev->next = q->next;
    else
        r->open = q->next;
    if (q->next)
        q->next->prev = q->prev;
    r->nopen--;
}

static void free_query(ph_dns_query *q)
{
    unlink_query(q);
    if (q->timer)
        event_free(q->timer);
    free(q);
}

void ph_dns_query_cancel(ph_dns_query *q)
{
    if (!q)
        return;
    /* Threaded mode: the query is only marked; libunbound drops its answer when it comes. */
    (void)ub_cancel(q->resolver->ctx, q->async_id);
    free_query(q);
}

void ph_resolver_free(ph_resolver *r)
{
    if (!r)
        return;
    while (r->open)
        ph_dns_query_cancel(r->open);
    if (r->fd_event)
        event_free(r->fd_event);
    if (r->ctx)
        ub_ctx_delete(r->ctx); /* stops and joins libunbound's thread */
    free(r);
}

struct event_base *ph_resolver_base(const ph_resolver *r)
{
    return r ? r->base : NULL;
}

size_t ph_resolver_pending(const ph_resolver *r)
{
    return r ? r->nopen : 0;
}

/* Parses every rdata item of res into recs (capacity n); returns how many parsed. */
static size_t parse_records(const struct ub_result *res, uint16_t qtype, ph_dns_record *recs,
                            size_t n, size_t *nmalformed)
{
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        int len = res->len ? res->len[i] : -1;
        if (len < 0 ||
            ph_dns_parse_record(qtype, (const uint8_t *)res->data[i], (size_t)len,
                                &recs[good]) < 0)
            (*nmalformed)++;
        else
            good++;
    }
    return good;
}

static ph_dns_status classify(const struct ub_result *res, size_t good, size_t malformed)
{
    if (res->bogus)
        return PH_DNS_BOGUS;
    if (res->rcode == RCODE_NXDOMAIN)
        return PH_DNS_NXDOMAIN;
    if (res->rcode != RCODE_NOERROR)
        return PH_DNS_SERVFAIL;
    if (good > 0)
        return PH_DNS_OK;
    return malformed > 0 ? PH_DNS_MALFORMED : PH_DNS_NODATA;
}

static size_t count_data(const struct ub_result *res)
{
    size_t n = 0;
    while (res->data && n < RECORDS_MAX && res->data[n])
        n++;
    return n;
}

/* Builds the answer from a libunbound result and calls done; recs is freed here. */
static void deliver_result(ph_dns_query *q, int err, struct ub_result *res)
{
    ph_dns_answer a = {.status = PH_DNS_ERROR, .qtype = q->qtype, .rcode = -1};
    ph_dns_record *recs = NULL;
    if (err == 0 && res) {
        size_t n = count_data(res);
        recs = calloc(n ? n : 1, sizeof(*recs));
        if (recs) {
            a.nrecords = parse_records(res, q->qtype, recs, n, &a.nmalformed);
            a.records = recs;
            a.status = classify(res, a.nrecords, a.nmalformed);
            a.rcode = res->rcode;
            a.secure = res->secure != 0;
            a.bogus = res->bogus != 0;
            a.why_bogus = res->bogus ? res->why_bogus : NULL;
            a.canonname = res->canonname;
            a.ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;
        }
    }
    q->done(q->arg, &a);
    free(recs);
}

static void on_result(void *mydata, int err, struct ub_result *res)
{
    ph_dns_query *q = mydata;
    /* Off the open list before the callback, so a callback that frees other things or starts
     * queries sees a consistent resolver; the handle is gone for the caller from here on. */
    unlink_query(q);
    event_free(q->timer);
    deliver_result(q, err, res);
    ub_resolve_free(res);
    free(q);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ph_dns_query *q = arg;
    (void)ub_cancel(q->resolver->ctx, q->async_id);
    unlink_query(q);
    ph_dns_answer a = {.status = PH_DNS_TIMEOUT, .qtype = q->qtype, .rcode = -1};
    q->done(q->arg, &a);
    event_free(q->timer);
    free(q);
}

static int map_ub_error(int rc)
{
    return rc == UB_NOMEM ? -ENOMEM : rc == UB_SYNTAX ? -EINVAL : -EIO;
}

int ph_resolver_resolve(ph_resolver *r, const char *name, uint16_t rrtype, ph_dns_done_fn done,
                        void *arg, ph_dns_query **out)
{
    if (out)
        *out = NULL;
    size_t len = name ? strlen(name) : 0;
    if (!r || !done || len == 0 || len > PH_DNS_NAME_MAX + 1)
        return -EINVAL;
    ph_dns_query *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->resolver = r;
    q->qtype = rrtype;
    q->done = done;
    q->arg = arg;
    q->timer = evtimer_new(r->base, on_timeout, q);
    struct timeval tv = {r->timeout_ms / 1000, (long)(r->timeout_ms % 1000) * 1000};
    if (!q->timer || evtimer_add(q->timer, &tv) != 0) {
        if (q->timer)
            event_free(q->timer);
        free(q);
        return -ENOMEM;
    }
    int rc = ub_resolve_async(r->ctx, name, rrtype, DNS_CLASS_IN, q, on_result, &q->async_id);
    if (rc != 0) {
        event_free(q->timer);
        free(q);
        return map_ub_error(rc);
    }
    q->next = r->open;
    if (r->open)
        r->open->prev = q;
    r->open = q;
    r->nopen++;
    if (out)
        *out = q;
    return 0;
}
