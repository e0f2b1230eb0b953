/*
 * test_dns_mx.c - the pure MX rules (src/dns/mx_plan.c) on made-up answers: ordering by
 * preference, the shuffle among equal preference with fixed RNGs, null MX alone and among
 * others, implicit MX, NXDOMAIN and every temporary failure, unusable targets, duplicates, the
 * caps (32 exchangers, 16 addresses), addresses AAAA-first, hosts without addresses, and the
 * domain checks (address literals, syntax).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/mx_plan.h"

#define MAXREC 64

typedef struct mx_spec {
    uint16_t pref;
    const char *name;
} mx_spec;

typedef struct answer_buf {
    ph_dns_record recs[MAXREC];
    ph_dns_answer answer;
} answer_buf;

static const ph_dns_answer *mx_answer(answer_buf *b, const mx_spec *spec, size_t n)
{
    memset(b, 0, sizeof(*b));
    for (size_t i = 0; i < n; i++) {
        b->recs[i].type = PH_DNS_TYPE_MX;
        b->recs[i].u.mx.preference = spec[i].pref;
        snprintf(b->recs[i].u.mx.exchange, sizeof(b->recs[i].u.mx.exchange), "%s", spec[i].name);
    }
    b->answer.status = PH_DNS_OK;
    b->answer.qtype = PH_DNS_TYPE_MX;
    b->answer.records = b->recs;
    b->answer.nrecords = n;
    return &b->answer;
}

static const ph_dns_answer *status_answer(answer_buf *b, ph_dns_status status)
{
    memset(b, 0, sizeof(*b));
    b->answer.status = status;
    b->answer.records = b->recs;
    return &b->answer;
}

/* RNGs: always the first / always the last of the run / recording the bounds asked for. */
static size_t rng_first(void *arg, size_t bound)
{
    (void)arg;
    (void)bound;
    return 0;
}

static size_t rng_last(void *arg, size_t bound)
{
    (void)arg;
    return bound - 1;
}

typedef struct rng_log {
    size_t bounds[16];
    size_t n;
} rng_log;

static size_t rng_logging(void *arg, size_t bound)
{
    rng_log *log = arg;
    if (log->n < 16)
        log->bounds[log->n++] = bound;
    return 0;
}

static size_t rng_broken(void *arg, size_t bound)
{
    (void)arg;
    return bound + 1000; /* out of range: must be clamped, never used as an index */
}

static void expect_names(const ph_mx_result *res, const char *const *names, size_t n)
{
    assert_int_equal(res->nhosts, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(res->hosts[i].name, names[i]);
}

static void test_sorted_by_preference(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    const mx_spec spec[] = {{20, "b.example"}, {10, "a.example"}, {30, "c.example"},
                            {15, "d.example"}};
    assert_false(ph_mx_plan_exchangers("example", mx_answer(&b, spec, 4), rng_first, NULL, &res));
    assert_int_equal(res.verdict, PH_MX_OK);
    assert_false(res.implicit_mx);
    const char *want[] = {"a.example", "d.example", "b.example", "c.example"};
    expect_names(&res, want, 4);
    assert_int_equal(res.hosts[0].preference, 10);
    assert_int_equal(res.hosts[3].preference, 30);
    assert_int_equal(res.hosts[0].naddrs, 0); /* addresses come in step 2 */
}

static void test_equal_preference_shuffle(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    const mx_spec spec[] = {{10, "b"}, {10, "C"}, {10, "a"}, {5, "z"}, {20, "y"}};
    /* rng_last never swaps: the run stays in name order (whatever order the records came in). */
    ph_mx_plan_exchangers("d.example", mx_answer(&b, spec, 5), rng_last, NULL, &res);
    const char *identity[] = {"z", "a", "b", "C", "y"};
    expect_names(&res, identity, 5);
    /* rng_first: k=3 swaps [2]<->[0] -> C b a; k=2 swaps [1]<->[0] -> b C a. */
    ph_mx_plan_exchangers("d.example", mx_answer(&b, spec, 5), rng_first, NULL, &res);
    const char *shuffled[] = {"z", "b", "C", "a", "y"};
    expect_names(&res, shuffled, 5);
    /* The RNG is asked only inside runs of equal preference, with the run's shrinking size. */
    rng_log log = {0};
    ph_mx_plan_exchangers("d.example", mx_answer(&b, spec, 5), rng_logging, &log, &res);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.bounds[0], 3);
    assert_int_equal(log.bounds[1], 2);
    /* An RNG answering out of range is clamped. */
    ph_mx_plan_exchangers("d.example", mx_answer(&b, spec, 5), rng_broken, NULL, &res);
    assert_int_equal(res.nhosts, 5);
    assert_string_equal(res.hosts[0].name, "z");
    assert_string_equal(res.hosts[4].name, "y");
}

static void test_null_mx(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    const mx_spec null_mx[] = {{0, "."}};
    assert_true(ph_mx_plan_exchangers("nomail.example", mx_answer(&b, null_mx, 1), rng_first,
                                      NULL, &res));
    assert_int_equal(res.verdict, PH_MX_NULL_MX);
    assert_true(res.permanent);
    assert_int_equal(res.smtp_code, 556);
    assert_string_equal(res.status, "5.1.10");
    assert_string_equal(res.text, "domain does not accept mail (null MX, RFC 7505)");
    assert_int_equal(res.nhosts, 0);

    /* "." as the only MX with another preference: the same unambiguous statement. */
    const mx_spec null10[] = {{10, "."}};
    ph_mx_plan_exchangers("nomail.example", mx_answer(&b, null10, 1), rng_first, NULL, &res);
    assert_int_equal(res.verdict, PH_MX_NULL_MX);

    /* A null MX among others is ignored; the others are used. */
    const mx_spec mixed[] = {{0, "."}, {10, "mx.example"}};
    assert_false(ph_mx_plan_exchangers("x.example", mx_answer(&b, mixed, 2), rng_first, NULL,
                                       &res));
    assert_int_equal(res.verdict, PH_MX_OK);
    const char *want[] = {"mx.example"};
    expect_names(&res, want, 1);
    assert_int_equal(res.nskipped, 1);

    /* One "." plus a malformed record is not a clean null MX: nothing usable -> temporary. */
    mx_answer(&b, null_mx, 1);
    b.answer.nmalformed = 1;
    ph_mx_plan_exchangers("x.example", &b.answer, rng_first, NULL, &res);
    assert_int_equal(res.verdict, PH_MX_TEMPORARY);
    assert_false(res.permanent);
}

static void test_implicit_mx(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    assert_false(ph_mx_plan_exchangers("plain.example", status_answer(&b, PH_DNS_NODATA),
                                       rng_first, NULL, &res));
    assert_int_equal(res.verdict, PH_MX_OK);
    assert_true(res.implicit_mx);
    const char *want[] = {"plain.example"};
    expect_names(&res, want, 1);
    assert_int_equal(res.hosts[0].preference, 0);
}

static void test_nxdomain_and_temporary(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    assert_true(ph_mx_plan_exchangers("nx.example", status_answer(&b, PH_DNS_NXDOMAIN),
                                      rng_first, NULL, &res));
    assert_int_equal(res.verdict, PH_MX_NXDOMAIN);
    assert_true(res.permanent);
    assert_int_equal(res.smtp_code, 550);
    assert_string_equal(res.status, "5.1.2");
    assert_string_equal(res.text, "domain not found");

    const ph_dns_status temporary[] = {PH_DNS_SERVFAIL, PH_DNS_TIMEOUT, PH_DNS_BOGUS,
                                       PH_DNS_MALFORMED, PH_DNS_ERROR};
    for (size_t i = 0; i < sizeof(temporary) / sizeof(temporary[0]); i++) {
        assert_true(ph_mx_plan_exchangers("t.example", status_answer(&b, temporary[i]),
                                          rng_first, NULL, &res));
        assert_int_equal(res.verdict, PH_MX_TEMPORARY);
        assert_false(res.permanent);
        assert_int_equal(res.smtp_code, 451);
        assert_string_equal(res.status, "4.4.3");
        assert_non_null(strstr(res.text, ph_dns_status_name(temporary[i])));
        assert_int_equal(res.nhosts, 0);
    }
}

static void test_unusable_targets_and_duplicates(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    const mx_spec spec[] = {{5, "192.0.2.1"}, {10, "mx.example"}, {20, "MX.example"},
                            {30, "10.0.0.1"}, {1, "backup.example"}, {40, "backup.example"}};
    ph_mx_plan_exchangers("d.example", mx_answer(&b, spec, 6), rng_first, NULL, &res);
    assert_int_equal(res.verdict, PH_MX_OK);
    const char *want[] = {"backup.example", "mx.example"};
    expect_names(&res, want, 2);
    assert_int_equal(res.hosts[0].preference, 1);  /* lowest of its two */
    assert_int_equal(res.hosts[1].preference, 10); /* case-insensitive duplicate dropped */
    assert_int_equal(res.nskipped, 2);             /* the two numeric targets */

    /* A name that only ends in digits in a middle label is fine; an all-digit last label is not. */
    const mx_spec names[] = {{10, "mx1.123.example"}, {10, "mx.example.123"}};
    ph_mx_plan_exchangers("d.example", mx_answer(&b, names, 2), rng_last, NULL, &res);
    const char *kept[] = {"mx1.123.example"};
    expect_names(&res, kept, 1);

    const mx_spec none[] = {{10, "192.0.2.1"}, {20, "."}};
    assert_true(ph_mx_plan_exchangers("d.example", mx_answer(&b, none, 2), rng_first, NULL,
                                      &res));
    assert_int_equal(res.verdict, PH_MX_TEMPORARY);
    assert_non_null(strstr(res.text, "no usable MX"));
}

static void test_exchanger_cap(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    mx_spec spec[40];
    char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "mx%d.example", i);
        spec[i] = (mx_spec){(uint16_t)(100 - i), names[i]}; /* published worst first */
    }
    ph_mx_plan_exchangers("big.example", mx_answer(&b, spec, 40), rng_first, NULL, &res);
    assert_int_equal(res.verdict, PH_MX_OK);
    assert_int_equal(res.nhosts, PH_MX_HOSTS_MAX);
    assert_int_equal(res.nskipped, 40 - PH_MX_HOSTS_MAX);
    assert_string_equal(res.hosts[0].name, "mx39.example"); /* the best 32 are kept */
    assert_int_equal(res.hosts[0].preference, 61);
    assert_int_equal(res.hosts[31].preference, 92);
}

/* ---- step 2 ---------------------------------------------------------------------------- */

static ph_mx_addr_answer addrs(ph_dns_status status, int family, const char *const *text,
                               size_t n)
{
    ph_mx_addr_answer a;
    memset(&a, 0, sizeof(a));
    a.status = status;
    for (size_t i = 0; i < n && i < PH_MX_ADDRS_MAX; i++) {
        a.addrs[i].family = family;
        assert_int_equal(inet_pton(family, text[i], a.addrs[i].bytes), 1);
    }
    a.naddrs = n;
    return a;
}

static ph_mx_addr_answer nodata(void)
{
    return addrs(PH_DNS_NODATA, AF_INET, NULL, 0);
}

static void plan_three(ph_mx_result *res)
{
    answer_buf b;
    const mx_spec spec[] = {{10, "a.example"}, {20, "b.example"}, {30, "c.example"}};
    ph_mx_plan_exchangers("d.example", mx_answer(&b, spec, 3), rng_first, NULL, res);
}

static void test_addresses(void **state)
{
    (void)state;
    ph_mx_result res;
    plan_three(&res);
    const char *v6[] = {"2001:db8::1"}, *v4[] = {"192.0.2.1", "192.0.2.2"}, *c4[] = {"192.0.2.9"};
    ph_mx_addr_answer aaaa[3] = {addrs(PH_DNS_OK, AF_INET6, v6, 1), nodata(),
                                 addrs(PH_DNS_NODATA, AF_INET6, NULL, 0)};
    ph_mx_addr_answer a[3] = {addrs(PH_DNS_OK, AF_INET, v4, 2), nodata(),
                              addrs(PH_DNS_OK, AF_INET, c4, 1)};
    ph_mx_plan_addresses("d.example", &res, aaaa, a);
    assert_int_equal(res.verdict, PH_MX_OK);
    const char *want[] = {"a.example", "c.example"}; /* b has no address: dropped, order kept */
    expect_names(&res, want, 2);
    assert_int_equal(res.nskipped, 1);
    assert_int_equal(res.hosts[0].naddrs, 3);
    assert_int_equal(res.hosts[0].addrs[0].family, AF_INET6); /* AAAA first */
    assert_int_equal(res.hosts[0].addrs[1].family, AF_INET);
    assert_int_equal(res.hosts[0].addrs[2].bytes[3], 2);
    assert_int_equal(res.hosts[1].naddrs, 1);
    assert_int_equal(res.hosts[1].preference, 30);
}

static void test_no_address(void **state)
{
    (void)state;
    ph_mx_result res;
    plan_three(&res);
    ph_mx_addr_answer none[3] = {nodata(), nodata(), addrs(PH_DNS_NXDOMAIN, AF_INET, NULL, 0)};
    ph_mx_plan_addresses("d.example", &res, none, none);
    assert_int_equal(res.verdict, PH_MX_NO_ADDRESS);
    assert_false(res.permanent);
    assert_int_equal(res.smtp_code, 451);
    assert_string_equal(res.status, "4.4.4");
    assert_int_equal(res.nhosts, 0);

    /* One temporary failure among hosts without address: TEMPORARY, with the reason. */
    plan_three(&res);
    ph_mx_addr_answer mixed[3] = {nodata(), addrs(PH_DNS_TIMEOUT, AF_INET, NULL, 0), nodata()};
    ph_mx_plan_addresses("d.example", &res, none, mixed);
    assert_int_equal(res.verdict, PH_MX_TEMPORARY);
    assert_string_equal(res.status, "4.4.3");
    assert_non_null(strstr(res.text, "timeout"));

    /* A temporary failure of one host does not stop delivery to another with addresses. */
    plan_three(&res);
    const char *v4[] = {"192.0.2.1"};
    ph_mx_addr_answer some[3] = {addrs(PH_DNS_SERVFAIL, AF_INET, NULL, 0), nodata(),
                                 addrs(PH_DNS_OK, AF_INET, v4, 1)};
    ph_mx_plan_addresses("d.example", &res, none, some);
    assert_int_equal(res.verdict, PH_MX_OK);
    assert_int_equal(res.nhosts, 1);
    assert_string_equal(res.hosts[0].name, "c.example");
}

static void test_implicit_without_address(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    ph_mx_plan_exchangers("bare.example", status_answer(&b, PH_DNS_NODATA), rng_first, NULL,
                          &res);
    ph_mx_addr_answer nd = nodata();
    ph_mx_plan_addresses("bare.example", &res, &nd, &nd);
    assert_int_equal(res.verdict, PH_MX_NO_ADDRESS);
    assert_non_null(strstr(res.text, "no MX and no address"));

    /* The name vanished between the MX and the address lookups: NXDOMAIN. */
    ph_mx_plan_exchangers("bare.example", status_answer(&b, PH_DNS_NODATA), rng_first, NULL,
                          &res);
    ph_mx_addr_answer nx = addrs(PH_DNS_NXDOMAIN, AF_INET, NULL, 0);
    ph_mx_plan_addresses("bare.example", &res, &nx, &nx);
    assert_int_equal(res.verdict, PH_MX_NXDOMAIN);
    assert_true(res.permanent);
}

static void test_address_cap(void **state)
{
    (void)state;
    answer_buf b;
    ph_mx_result res;
    ph_dns_record recs[20];
    ph_dns_answer many = {.status = PH_DNS_OK, .records = recs, .nrecords = 20};
    for (int i = 0; i < 20; i++) {
        memset(&recs[i], 0, sizeof(recs[i]));
        recs[i].type = PH_DNS_TYPE_AAAA;
        recs[i].u.addr.family = AF_INET6;
        recs[i].u.addr.bytes[15] = (uint8_t)i;
    }
    ph_mx_addr_answer v6;
    ph_mx_addr_answer_set(&v6, &many);
    assert_int_equal(v6.naddrs, PH_MX_ADDRS_MAX); /* the copy is capped */
    assert_int_equal(v6.status, PH_DNS_OK);

    ph_mx_addr_answer v4 = v6;
    for (size_t i = 0; i < v4.naddrs; i++)
        v4.addrs[i].family = AF_INET;

    /* Both families plentiful: 8 + 8. */
    ph_mx_plan_exchangers("x.example", status_answer(&b, PH_DNS_NODATA), rng_first, NULL, &res);
    ph_mx_plan_addresses("x.example", &res, &v6, &v4);
    assert_int_equal(res.hosts[0].naddrs, PH_MX_ADDRS_MAX);
    assert_int_equal(res.hosts[0].addrs[7].family, AF_INET6);
    assert_int_equal(res.hosts[0].addrs[8].family, AF_INET);

    /* Two AAAA, many A: 2 + 14. */
    ph_mx_addr_answer two6 = v6;
    two6.naddrs = 2;
    ph_mx_plan_exchangers("x.example", status_answer(&b, PH_DNS_NODATA), rng_first, NULL, &res);
    ph_mx_plan_addresses("x.example", &res, &two6, &v4);
    assert_int_equal(res.hosts[0].naddrs, PH_MX_ADDRS_MAX);
    assert_int_equal(res.hosts[0].addrs[1].family, AF_INET6);
    assert_int_equal(res.hosts[0].addrs[2].family, AF_INET);

    /* Only AAAA: all 16 places. */
    ph_mx_addr_answer nd = nodata();
    ph_mx_plan_exchangers("x.example", status_answer(&b, PH_DNS_NODATA), rng_first, NULL, &res);
    ph_mx_plan_addresses("x.example", &res, &v6, &nd);
    assert_int_equal(res.hosts[0].naddrs, PH_MX_ADDRS_MAX);
    assert_int_equal(res.hosts[0].addrs[15].family, AF_INET6);
}

/* ---- step 0 ---------------------------------------------------------------------------- */

static void test_domain_literals(void **state)
{
    (void)state;
    ph_mx_result res;
    char name[PH_DNS_NAME_MAX + 1];
    assert_int_equal(ph_mx_plan_domain("[192.0.2.5]", &res, name, sizeof(name)), 1);
    assert_int_equal(res.verdict, PH_MX_OK);
    assert_true(res.literal);
    assert_int_equal(res.nhosts, 1);
    assert_string_equal(res.hosts[0].name, "[192.0.2.5]");
    assert_int_equal(res.hosts[0].naddrs, 1);
    assert_int_equal(res.hosts[0].addrs[0].family, AF_INET);
    assert_int_equal(res.hosts[0].addrs[0].bytes[3], 5);

    assert_int_equal(ph_mx_plan_domain("[IPv6:2001:db8::7]", &res, name, sizeof(name)), 1);
    assert_int_equal(res.verdict, PH_MX_OK);
    assert_int_equal(res.hosts[0].addrs[0].family, AF_INET6);
    assert_int_equal(res.hosts[0].addrs[0].bytes[15], 7);
    assert_int_equal(ph_mx_plan_domain("[ipv6:::1]", &res, name, sizeof(name)), 1);
    assert_int_equal(res.verdict, PH_MX_OK);

    const char *bad[] = {"[999.0.0.1]", "[192.0.2.1", "[]", "[tag:whatever]", "[2001:db8::1]",
                         "[1.2.3]", "[IPv6:192.0.2.1x]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ph_mx_plan_domain(bad[i], &res, name, sizeof(name)), 1);
        assert_int_equal(res.verdict, PH_MX_BAD_DOMAIN);
        assert_true(res.permanent);
        assert_int_equal(res.nhosts, 0);
    }
}

static void test_domain_names(void **state)
{
    (void)state;
    ph_mx_result res;
    char name[PH_DNS_NAME_MAX + 1];
    assert_int_equal(ph_mx_plan_domain("Example.COM.", &res, name, sizeof(name)), 0);
    assert_string_equal(name, "Example.COM"); /* one trailing dot dropped, case kept */
    assert_int_equal(ph_mx_plan_domain("_srv.x-y.example", &res, name, sizeof(name)), 0);

    char too_long[300];
    memset(too_long, 'a', sizeof(too_long));
    for (int i = 60; i < 299; i += 61)
        too_long[i] = '.';
    too_long[254] = '\0';
    const char *bad[] = {"", ".", "a..b", ".a", "a.b..", "a b.example", "ex\xc3\xa4mple.de",
                         "a/b", too_long,
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example"}; /* a 64-octet label */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ph_mx_plan_domain(bad[i], &res, name, sizeof(name)), -1);
        assert_int_equal(res.verdict, PH_MX_BAD_DOMAIN);
    }
    assert_int_equal(ph_mx_plan_domain(NULL, &res, name, sizeof(name)), -1);
    too_long[253] = '\0'; /* 253 characters is the limit */
    if (too_long[252] == '.')
        too_long[252] = 'a';
    assert_int_equal(ph_mx_plan_domain(too_long, &res, name, sizeof(name)), 0);
}

static void test_verdict_names(void **state)
{
    (void)state;
    assert_string_equal(ph_mx_verdict_name(PH_MX_NULL_MX), "NULL_MX");
    assert_string_equal(ph_mx_verdict_name(PH_MX_NO_ADDRESS), "NO_ADDRESS");
    assert_string_equal(ph_mx_verdict_name((ph_mx_verdict)42), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_by_preference),
        cmocka_unit_test(test_equal_preference_shuffle),
        cmocka_unit_test(test_null_mx),
        cmocka_unit_test(test_implicit_mx),
        cmocka_unit_test(test_nxdomain_and_temporary),
        cmocka_unit_test(test_unusable_targets_and_duplicates),
        cmocka_unit_test(test_exchanger_cap),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_no_address),
        cmocka_unit_test(test_implicit_without_address),
        cmocka_unit_test(test_address_cap),
        cmocka_unit_test(test_domain_literals),
        cmocka_unit_test(test_domain_names),
        cmocka_unit_test(test_verdict_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
