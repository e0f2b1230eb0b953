/*
 * test_qmgr_dest.c - per-destination in-flight counts and parked messages: references,
 * case-insensitive names, the cap, FIFO release, unparking from the middle, many names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "deliver/qmgr_dest.h"

static void test_refs_and_names(void **state)
{
    (void)state;
    qdest_table *t = qdest_table_new(2);
    qdest *a = qdest_ref(t, "Example.ORG");
    qdest *b = qdest_ref(t, "example.org");
    assert_ptr_equal(a, b); /* one destination, case-insensitively */
    qdest *c = qdest_ref(t, "other.test");
    assert_ptr_not_equal(a, c);
    qdest_unref(t, a);
    qdest_unref(t, b); /* gone now */
    qdest_unref(t, c);
    qdest_unref(t, NULL);
    qdest_table_free(t);
}

static void test_cap_and_fifo(void **state)
{
    (void)state;
    qdest_table *t = qdest_table_new(2);
    qdest *d = qdest_ref(t, "slow.test");
    qdest_node n[3] = {{0}};
    assert_false(qdest_full(t, d));
    qdest_enter(d);
    qdest_enter(d);
    assert_true(qdest_full(t, d));
    for (int i = 0; i < 3; i++)
        qdest_park(d, &n[i]);
    assert_int_equal(qdest_parked(d), 3);
    assert_null(qdest_release(t, d)); /* still full */
    qdest_unpark(&n[1]);              /* from the middle (hold, delete) */
    assert_null(n[1].parked_at);
    qdest_leave(d);
    assert_ptr_equal(qdest_release(t, d), &n[0]); /* first in, first out */
    qdest_enter(d);
    qdest_leave(d);
    assert_ptr_equal(qdest_release(t, d), &n[2]);
    assert_null(qdest_release(t, d)); /* nothing parked */
    assert_int_equal(qdest_parked(d), 0);
    qdest_unref(t, d);
    qdest_table_free(t);
}

static void test_no_cap(void **state)
{
    (void)state;
    qdest_table *t = qdest_table_new(0);
    qdest *d = qdest_ref(t, "any.test");
    for (int i = 0; i < 1000; i++)
        qdest_enter(d);
    assert_false(qdest_full(t, d));
    qdest_unref(t, d);
    qdest_table_free(t);
}

static void test_many_names(void **state)
{
    (void)state;
    qdest_table *t = qdest_table_new(1);
    qdest *ds[500];
    char name[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "d%d.test", i);
        ds[i] = qdest_ref(t, name);
        qdest_enter(ds[i]);
    }
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "D%d.TEST", i);
        qdest *again = qdest_ref(t, name);
        assert_ptr_equal(again, ds[i]);
        assert_true(qdest_full(t, again));
        qdest_unref(t, again);
    }
    for (int i = 0; i < 500; i++)
        qdest_unref(t, ds[i]);
    qdest_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refs_and_names),
        cmocka_unit_test(test_cap_and_fifo),
        cmocka_unit_test(test_no_cap),
        cmocka_unit_test(test_many_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
