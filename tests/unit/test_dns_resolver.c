/*
 * test_dns_resolver.c - the libunbound wrapper (src/dns/resolver.c) without any DNS server:
 * option checks (forwarder syntax, trust anchor file, limits), argument checks, and the query
 * life cycle against a UDP socket on 127.0.0.1 that never answers - the timeout fires within
 * bounds, a cancelled query never calls back, freeing the resolver with queries open is clean
 * (ASan/LSan watch), and an MX lookup over it ends TEMPORARY. Nothing leaves 127.0.0.1:
 * every resolver here forwards to the silent local socket (recursion mode is only created,
 * never asked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns/mx.h"
#include "dns/resolver.h"

typedef struct fixture {
    struct event_base *base;
    int silent_fd; /* a bound UDP socket nobody reads: queries to it are never answered */
    char forwarder[64];
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof(f));
    f.base = event_base_new();
    f.silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (!f.base || f.silent_fd < 0 || bind(f.silent_fd, (struct sockaddr *)&sin, sizeof(sin)) ||
        getsockname(f.silent_fd, (struct sockaddr *)&sin, &len))
        return -1;
    snprintf(f.forwarder, sizeof(f.forwarder), "127.0.0.1@%u", (unsigned)ntohs(sin.sin_port));
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close(f->silent_fd);
    event_base_free(f->base);
    return 0;
}

static ph_resolver *silent_resolver(fixture *f, unsigned timeout_ms)
{
    const char *fwd[] = {f->forwarder};
    ph_resolver_opts o = {.forwarders = fwd, .nforwarders = 1, .timeout_ms = timeout_ms};
    ph_resolver *r = NULL;
    char err[200];
    assert_int_equal(ph_resolver_new(f->base, &o, &r, err, sizeof(err)), 0);
    assert_non_null(r);
    return r;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_for(fixture *f, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static void test_options(void **state)
{
    fixture *f = *state;
    ph_resolver *r = (ph_resolver *)1;
    char err[200];
    const char *bad[] = {"not-an-ip"};
    ph_resolver_opts o = {.forwarders = bad, .nforwarders = 1};
    assert_int_equal(ph_resolver_new(f->base, &o, &r, err, sizeof(err)), -EINVAL);
    assert_null(r);
    assert_non_null(strstr(err, "not-an-ip"));

    const char *good[] = {"127.0.0.1", "::1@5353", "127.0.0.1@53"};
    o = (ph_resolver_opts){.forwarders = good, .nforwarders = 3};
    assert_int_equal(ph_resolver_new(f->base, &o, &r, err, sizeof(err)), 0);
    ph_resolver_free(r);

    o.nforwarders = PH_RESOLVER_FORWARDERS_MAX + 1;
    assert_int_equal(ph_resolver_new(f->base, &o, &r, err, sizeof(err)), -EINVAL);

    /* Recursion with a trust anchor that is not there: refused, not silently unvalidated. */
    o = (ph_resolver_opts){.trust_anchor_file = "/nonexistent/root.key"};
    assert_int_equal(ph_resolver_new(f->base, &o, &r, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/root.key"));

    /* Recursion with the default anchor (created only: asking would leave the machine). */
    if (access(PH_RESOLVER_ROOT_KEY, R_OK) == 0) {
        assert_int_equal(ph_resolver_new(f->base, NULL, &r, err, sizeof(err)), 0);
        assert_ptr_equal(ph_resolver_base(r), f->base);
        ph_resolver_free(r);
    }
    o = (ph_resolver_opts){.forwarders = good, .nforwarders = 1, .hosts_file = "/nonexistent"};
    assert_int_equal(ph_resolver_new(f->base, &o, &r, err, sizeof(err)), -EINVAL);

    assert_int_equal(ph_resolver_new(NULL, NULL, &r, err, sizeof(err)), -EINVAL);
    assert_int_equal(ph_resolver_new(f->base, NULL, NULL, err, sizeof(err)), -EINVAL);
    ph_resolver_free(NULL);
    ph_dns_query_cancel(NULL);
}

typedef struct outcome {
    int calls;
    ph_dns_status status;
    int rcode;
    long at_ms;
} outcome;

static void record(void *arg, const ph_dns_answer *a)
{
    outcome *o = arg;
    o->calls++;
    o->status = a->status;
    o->rcode = a->rcode;
    o->at_ms = now_ms();
}

static void test_resolve_arguments(void **state)
{
    fixture *f = *state;
    ph_resolver *r = silent_resolver(f, 200);
    outcome o = {0};
    ph_dns_query *q = (ph_dns_query *)1;
    assert_int_equal(ph_resolver_resolve(r, "", PH_DNS_TYPE_A, record, &o, &q), -EINVAL);
    assert_null(q);
    assert_int_equal(ph_resolver_resolve(r, NULL, PH_DNS_TYPE_A, record, &o, &q), -EINVAL);
    assert_int_equal(ph_resolver_resolve(r, "x.example", PH_DNS_TYPE_A, NULL, &o, &q), -EINVAL);
    char huge[300];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    assert_int_equal(ph_resolver_resolve(r, huge, PH_DNS_TYPE_A, record, &o, &q), -EINVAL);
    assert_int_equal(ph_resolver_pending(r), 0);
    ph_resolver_free(r);
    assert_int_equal(o.calls, 0);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    ph_resolver *r = silent_resolver(f, 300);
    outcome o = {0};
    long start = now_ms();
    ph_dns_query *q = NULL;
    assert_int_equal(ph_resolver_resolve(r, "silent.example", PH_DNS_TYPE_MX, record, &o, &q),
                     0);
    assert_non_null(q);
    assert_int_equal(o.calls, 0); /* never from inside resolve */
    assert_int_equal(ph_resolver_pending(r), 1);
    run_for(f, 1500);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, PH_DNS_TIMEOUT);
    assert_int_equal(o.rcode, -1);
    assert_in_range(o.at_ms - start, 250, 1200);
    assert_int_equal(ph_resolver_pending(r), 0);
    ph_resolver_free(r);
}

static void test_cancel_and_free_with_open_queries(void **state)
{
    fixture *f = *state;
    ph_resolver *r = silent_resolver(f, 200);
    outcome cancelled = {0}, kept = {0}, open = {0};
    ph_dns_query *q1 = NULL, *q2 = NULL;
    assert_int_equal(ph_resolver_resolve(r, "a.example", PH_DNS_TYPE_A, record, &cancelled, &q1),
                     0);
    assert_int_equal(ph_resolver_resolve(r, "b.example", PH_DNS_TYPE_AAAA, record, &kept, &q2),
                     0);
    assert_int_equal(ph_resolver_pending(r), 2);
    ph_dns_query_cancel(q1);
    assert_int_equal(ph_resolver_pending(r), 1);
    run_for(f, 800);
    assert_int_equal(cancelled.calls, 0);
    assert_int_equal(kept.calls, 1);
    assert_int_equal(kept.status, PH_DNS_TIMEOUT);

    /* Freed with a query open: its callback never runs, nothing leaks. */
    assert_int_equal(ph_resolver_resolve(r, "c.example", PH_DNS_TYPE_A, record, &open, NULL), 0);
    ph_resolver_free(r);
    run_for(f, 300);
    assert_int_equal(open.calls, 0);
}

typedef struct mx_outcome {
    int calls;
    ph_mx_result result;
} mx_outcome;

static void mx_done(void *arg, const ph_mx_result *res)
{
    mx_outcome *o = arg;
    o->calls++;
    o->result = *res;
}

static void test_mx_lookup_timeout_and_cancel(void **state)
{
    fixture *f = *state;
    ph_resolver *r = silent_resolver(f, 200);
    mx_outcome timed = {0}, cancelled = {0}, literal = {0};
    ph_mx_query *q = NULL;
    assert_int_equal(ph_mx_lookup(r, "silent.example", NULL, NULL, mx_done, &timed, NULL), 0);
    assert_int_equal(ph_mx_lookup(r, "other.example", NULL, NULL, mx_done, &cancelled, &q), 0);
    assert_int_equal(ph_mx_lookup(r, "[192.0.2.1]", NULL, NULL, mx_done, &literal, NULL), 0);
    assert_int_equal(literal.calls, 0); /* even a literal answers from the loop */
    ph_mx_lookup_cancel(q);
    run_for(f, 800);
    assert_int_equal(timed.calls, 1);
    assert_int_equal(timed.result.verdict, PH_MX_TEMPORARY);
    assert_non_null(strstr(timed.result.text, "timeout"));
    assert_int_equal(cancelled.calls, 0);
    assert_int_equal(literal.calls, 1);
    assert_int_equal(literal.result.verdict, PH_MX_OK);
    assert_true(literal.result.literal);

    /* Cancelled while its result is already scheduled: still never called. */
    mx_outcome late = {0};
    assert_int_equal(ph_mx_lookup(r, "[192.0.2.2]", NULL, NULL, mx_done, &late, &q), 0);
    ph_mx_lookup_cancel(q);
    run_for(f, 100);
    assert_int_equal(late.calls, 0);

    assert_int_equal(ph_mx_lookup(NULL, "x.example", NULL, NULL, mx_done, &late, NULL), -EINVAL);
    assert_int_equal(ph_mx_lookup(r, NULL, NULL, NULL, mx_done, &late, NULL), -EINVAL);
    ph_mx_lookup_cancel(NULL);
    ph_resolver_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_resolve_arguments),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_cancel_and_free_with_open_queries),
        cmocka_unit_test(test_mx_lookup_timeout_and_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
