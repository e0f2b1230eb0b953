/*
 * mx_lookup.c - test tool: one MX lookup (src/dns/mx.h) on a real libunbound resolver, so the
 * integration tests can drive it against a fake DNS server on 127.0.0.1.
 *
 *   mx_lookup [--forwarder IP@PORT]... [--recursive] [--timeout MS] [--seed N] DOMAIN
 *
 * At least one --forwarder is required unless --recursive is given (full recursion from the
 * root: never used by the tests, which must not leave 127.0.0.0/8). --seed N makes the shuffle
 * among equal preferences deterministic (xorshift seeded with N) instead of arc4random.
 *
 * Output, one line each:
 *   result VERDICT CODE STATUS [implicit] [literal] TEXT
 *   host PREFERENCE NAME ADDRESS...          (verdict OK only, in try order)
 *   elapsed_ms N
 * Exit 0 when a result was printed, 1 when the resolver could not be set up or the lookup not
 * started, 2 for usage errors.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dns/mx.h"

typedef struct options {
    const char *forwarders[PH_RESOLVER_FORWARDERS_MAX];
    size_t nforwarders;
    bool recursive;
    unsigned timeout_ms;
    bool seeded;
    unsigned long long seed;
    const char *domain;
} options;

typedef struct run {
    struct event_base *base;
    bool printed;
    struct timespec start;
} run;

static int usage(void)
{
    fprintf(stderr, "usage: mx_lookup [--forwarder IP@PORT]... [--recursive] [--timeout MS] "
                    "[--seed N] DOMAIN\n");
    return 2;
}

static int parse_options(int argc, char **argv, options *o)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        bool has_value = i + 1 < argc;
        if (strcmp(argv[i], "--forwarder") == 0 && has_value &&
            o->nforwarders < PH_RESOLVER_FORWARDERS_MAX)
            o->forwarders[o->nforwarders++] = argv[++i];
        else if (strcmp(argv[i], "--recursive") == 0)
            o->recursive = true;
        else if (strcmp(argv[i], "--timeout") == 0 && has_value)
            o->timeout_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && has_value) {
            o->seeded = true;
            o->seed = strtoull(argv[++i], NULL, 10) | 1; /* xorshift must not start at 0 */
        } else
            return -1;
    }
    if (argc - i != 1 || (o->nforwarders == 0 && !o->recursive))
        return -1;
    o->domain = argv[i];
    return 0;
}

static size_t seeded_rng(void *arg, size_t bound)
{
    unsigned long long *x = arg;
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (size_t)(*x % bound);
}

static long elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void print_host(const ph_mx_host *h)
{
    printf("host %u %s", (unsigned)h->preference, h->name);
    for (size_t i = 0; i < h->naddrs; i++) {
        char text[INET6_ADDRSTRLEN];
        const ph_dns_addr *a = &h->addrs[i];
        if (inet_ntop(a->family, a->bytes, text, sizeof(text)))
            printf(" %s", text);
    }
    printf("\n");
}

static void on_done(void *arg, const ph_mx_result *res)
{
    run *r = arg;
    printf("result %s %d %s%s%s %s\n", ph_mx_verdict_name(res->verdict), res->smtp_code,
           res->status, res->implicit_mx ? " implicit" : "", res->literal ? " literal" : "",
           res->text);
    for (size_t i = 0; i < res->nhosts; i++)
        print_host(&res->hosts[i]);
    printf("elapsed_ms %ld\n", elapsed_ms(&r->start));
    fflush(stdout);
    r->printed = true;
    event_base_loopbreak(r->base);
}

int main(int argc, char **argv)
{
    options o = {0};
    if (parse_options(argc, argv, &o) < 0)
        return usage();
    run r = {0};
    clock_gettime(CLOCK_MONOTONIC, &r.start);
    r.base = event_base_new();
    if (!r.base)
        return 1;
    ph_resolver_opts ro = {.forwarders = o.forwarders, .nforwarders = o.nforwarders,
                           .timeout_ms = o.timeout_ms};
    ph_resolver *res = NULL;
    char err[256];
    int rc = ph_resolver_new(r.base, &ro, &res, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "mx_lookup: resolver: %s (%s)\n", err, strerror(-rc));
        event_base_free(r.base);
        return 1;
    }
    rc = ph_mx_lookup(res, o.domain, o.seeded ? seeded_rng : NULL, o.seeded ? &o.seed : NULL,
                      on_done, &r, NULL);
    if (rc == 0)
        event_base_dispatch(r.base);
    else
        fprintf(stderr, "mx_lookup: lookup: %s\n", strerror(-rc));
    ph_resolver_free(res);
    event_base_free(r.base);
    return r.printed ? 0 : 1;
}
