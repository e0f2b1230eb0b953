/*
 * test_relay_memory.c - the relay's host memory (latency ranks, failures, STARTTLS skipping,
 * lifetime 0 = nothing remembered, a full table) and the DNS form of domain names (IDNA).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "deliver/relay_memory.h"
#include "dns/idna.h"

static ph_dns_addr v4(unsigned char last)
{
    ph_dns_addr a = {.family = AF_INET, .bytes = {127, 0, 0, last}};
    return a;
}

static relay_memory *new_memory(unsigned lifetime_ms)
{
    relay_memory *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->lifetime_ms = lifetime_ms;
    return m;
}

static void test_ranks(void **state)
{
    (void)state;
    relay_memory *m = new_memory(60000);
    ph_dns_addr fast = v4(2), slow = v4(3), bad = v4(4), unknown = v4(5);
    relay_memory_latency(m, &fast, 25, 3);
    relay_memory_latency(m, &slow, 25, 900);
    relay_memory_failure(m, &bad, 25);
    assert_int_equal(relay_memory_rank(m, &fast, 25), 3);
    assert_int_equal(relay_memory_rank(m, &slow, 25), 900);
    assert_true(relay_memory_rank(m, &unknown, 25) == PH_RELAY_RANK_UNKNOWN);
    assert_true(relay_memory_rank(m, &bad, 25) == PH_RELAY_RANK_FAILED);
    /* the port is part of the key */
    assert_true(relay_memory_rank(m, &fast, 2525) == PH_RELAY_RANK_UNKNOWN);
    /* a success forgets the failure */
    relay_memory_latency(m, &bad, 25, 7);
    assert_int_equal(relay_memory_rank(m, &bad, 25), 7);
    free(m);
}

static void test_tls_skip(void **state)
{
    (void)state;
    relay_memory *m = new_memory(60000);
    ph_dns_addr a = v4(2), b = v4(3);
    assert_false(relay_memory_skip_tls(m, &a, 25));
    relay_memory_no_tls(m, &a, 25);
    assert_true(relay_memory_skip_tls(m, &a, 25));
    assert_false(relay_memory_skip_tls(m, &b, 25));
    free(m);
}

static void test_lifetime_zero_remembers_nothing(void **state)
{
    (void)state;
    relay_memory *m = new_memory(0);
    ph_dns_addr a = v4(2);
    relay_memory_failure(m, &a, 25);
    relay_memory_no_tls(m, &a, 25);
    assert_true(relay_memory_rank(m, &a, 25) == PH_RELAY_RANK_UNKNOWN);
    assert_false(relay_memory_skip_tls(m, &a, 25));
    free(m);
}

static void test_full_table_keeps_working(void **state)
{
    (void)state;
    relay_memory *m = new_memory(60000);
    for (unsigned i = 0; i < 3 * PH_RELAY_MEMORY_SLOTS; i++) {
        ph_dns_addr a = {.family = AF_INET6};
        memcpy(a.bytes, &i, sizeof(i));
        relay_memory_latency(m, &a, 25, i % 1000);
        assert_int_equal(relay_memory_rank(m, &a, 25), i % 1000);
    }
    free(m);
}

static void test_idna(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(ph_dns_name_to_ascii("example.org", out, sizeof(out)), 0);
    assert_string_equal(out, "example.org");
    assert_int_equal(ph_dns_name_to_ascii("b\xc3\xbc" "cher.test", out, sizeof(out)), 0);
    assert_string_equal(out, "xn--bcher-kva.test");
    /* UTS #46 mapping: upper case folds */
    assert_int_equal(ph_dns_name_to_ascii("B\xc3\x9c" "CHER.test", out, sizeof(out)), 0);
    assert_string_equal(out, "xn--bcher-kva.test");
    /* invalid UTF-8, and a result that does not fit */
    assert_int_equal(ph_dns_name_to_ascii("bad\xff.test", out, sizeof(out)), -EINVAL);
    assert_int_equal(ph_dns_name_to_ascii("b\xc3\xbc" "cher.test", out, 8), -EINVAL);
    assert_int_equal(ph_dns_name_to_ascii("example.org", out, 5), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranks),
        cmocka_unit_test(test_tls_skip),
        cmocka_unit_test(test_lifetime_zero_remembers_nothing),
        cmocka_unit_test(test_full_table_keeps_working),
        cmocka_unit_test(test_idna),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
