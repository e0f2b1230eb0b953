/*
 * mx.c - the MX lookup state machine (see mx.h): one MX query, then AAAA + A for every
 * exchanger in parallel, decisions by mx_plan.c. Owns its DNS query handles and a one-shot event
 * that delivers the result from the loop, so done never runs inside ph_mx_lookup.
 */
#include "dns/mx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_AAAA, SLOT_A, SLOT_FAMILIES };

typedef struct addr_slot {
    ph_mx_query *owner;
    size_t host;
    int family; /* SLOT_AAAA or SLOT_A */
    ph_dns_query *dns;
} addr_slot;

struct ph_mx_query {
    ph_resolver *resolver;
    char domain[PH_DNS_NAME_MAX + 1];
    ph_mx_rng_fn rng;
    void *rng_arg;
    ph_mx_done_fn done;
    void *arg;
    struct event *finish;  /* active once the result is final: runs done */
    ph_dns_query *mx_dns;  /* the MX query while it is open */
    size_t pending;        /* address queries still open */
    addr_slot slots[PH_MX_HOSTS_MAX][SLOT_FAMILIES];
    ph_mx_addr_answer answers[SLOT_FAMILIES][PH_MX_HOSTS_MAX];
    ph_mx_result result;
};

static size_t default_rng(void *arg, size_t bound)
{
    (void)arg;
    return arc4random_uniform((uint32_t)bound);
}

static void free_lookup(ph_mx_query *q)
{
    event_free(q->finish);
    free(q);
}

static void on_finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ph_mx_query *q = arg;
    q->done(q->arg, &q->result);
    free_lookup(q);
}

static void finish(ph_mx_query *q)
{
    event_active(q->finish, EV_TIMEOUT, 1);
}

static void addresses_done(ph_mx_query *q)
{
    ph_mx_plan_addresses(q->domain, &q->result, q->answers[SLOT_AAAA], q->answers[SLOT_A]);
    finish(q);
}

static void on_address(void *arg, const ph_dns_answer *answer)
{
    addr_slot *slot = arg;
    ph_mx_query *q = slot->owner;
    slot->dns = NULL;
    ph_mx_addr_answer_set(&q->answers[slot->family][slot->host], answer);
    if (--q->pending == 0)
        addresses_done(q);
}

/* Starts AAAA and A for every exchanger; a query that cannot even start counts as a local DNS
 * error for that host (never a reason to lose the others). */
static void start_address_queries(ph_mx_query *q)
{
    static const uint16_t types[SLOT_FAMILIES] = {PH_DNS_TYPE_AAAA, PH_DNS_TYPE_A};
    for (size_t i = 0; i < q->result.nhosts; i++) {
        for (int f = 0; f < SLOT_FAMILIES; f++) {
            addr_slot *slot = &q->slots[i][f];
            *slot = (addr_slot){q, i, f, NULL};
            int rc = ph_resolver_resolve(q->resolver, q->result.hosts[i].name, types[f],
                                         on_address, slot, &slot->dns);
            if (rc < 0)
                q->answers[f][i].status = PH_DNS_ERROR;
            else
                q->pending++;
        }
    }
    if (q->pending == 0)
        addresses_done(q);
}

static void on_mx(void *arg, const ph_dns_answer *answer)
{
    ph_mx_query *q = arg;
    q->mx_dns = NULL;
    if (ph_mx_plan_exchangers(q->domain, answer, q->rng, q->rng_arg, &q->result))
        finish(q);
    else
        start_address_queries(q);
}

static int lookup(ph_resolver *resolver, const char *domain, bool host_only, ph_mx_rng_fn rng,
                  void *rng_arg, ph_mx_done_fn done, void *arg, ph_mx_query **out)
{
    if (out)
        *out = NULL;
    if (!resolver || !domain || !done)
        return -EINVAL;
    ph_mx_query *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->resolver = resolver;
    q->rng = rng ? rng : default_rng;
    q->rng_arg = rng_arg;
    q->done = done;
    q->arg = arg;
    q->finish = event_new(ph_resolver_base(resolver), -1, 0, on_finish, q);
    if (!q->finish) {
        free(q);
        return -ENOMEM;
    }
    int rc = 0;
    if (ph_mx_plan_domain(domain, &q->result, q->domain, sizeof(q->domain)) != 0) {
        finish(q); /* an address literal or an invalid domain: final without DNS */
    } else if (host_only) {
        /* a named host: the exchanger is the name itself, as for an implicit MX */
        q->result.implicit_mx = true;
        q->result.nhosts = 1;
        snprintf(q->result.hosts[0].name, sizeof(q->result.hosts[0].name), "%s", q->domain);
        start_address_queries(q);
    } else {
        rc = ph_resolver_resolve(resolver, q->domain, PH_DNS_TYPE_MX, on_mx, q, &q->mx_dns);
    }
    if (rc < 0) {
        free_lookup(q);
        return rc;
    }
    if (out)
        *out = q;
    return 0;
}

int ph_mx_lookup(ph_resolver *resolver, const char *domain, ph_mx_rng_fn rng, void *rng_arg,
                 ph_mx_done_fn done, void *arg, ph_mx_query **out)
{
    return lookup(resolver, domain, false, rng, rng_arg, done, arg, out);
}

int ph_mx_lookup_host(ph_resolver *resolver, const char *host, ph_mx_done_fn done, void *arg,
                      ph_mx_query **out)
{
    char literal[PH_DNS_NAME_MAX + 3];
    unsigned char buf[16];
    if (host && (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)) {
        snprintf(literal, sizeof(literal), strchr(host, ':') ? "[IPv6:%s]" : "[%s]", host);
        host = literal; /* a bare address: the literal form the plan understands */
    }
    return lookup(resolver, host, true, NULL, NULL, done, arg, out);
}

void ph_mx_lookup_cancel(ph_mx_query *q)
{
    if (!q)
        return;
    ph_dns_query_cancel(q->mx_dns);
    for (size_t i = 0; i < PH_MX_HOSTS_MAX; i++)
        for (int f = 0; f < SLOT_FAMILIES; f++)
            ph_dns_query_cancel(q->slots[i][f].dns);
    free_lookup(q); /* event_free also takes the finish event off the active queue */
}
