/*
 * test_schedule.c - delivery outcomes and the retry schedule: 2xx delivered, 5xx failed, 4xx
 * deferred by the schedule (last entry repeating), capped at the end of the queue lifetime,
 * and failed when a temporary failure happens at or after that end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "queue/schedule.h"

#define T0 1795480000

static ph_envelope *two_rcpts(void)
{
    ph_envelope *e = ph_envelope_new();
    assert_non_null(e);
    assert_int_equal(ph_envelope_add_rcpt(e, "a@example.org"), 0);
    assert_int_equal(ph_envelope_add_rcpt(e, "b@example.org"), 0);
    e->received = T0;
    return e;
}

static void test_default_policy(void **state)
{
    (void)state;
    ph_retry_policy p;
    ph_retry_policy_default(&p);
    assert_int_equal(p.n, 5);
    assert_int_equal(ph_retry_delay(&p, 1), 60);
    assert_int_equal(ph_retry_delay(&p, 2), 300);
    assert_int_equal(ph_retry_delay(&p, 3), 900);
    assert_int_equal(ph_retry_delay(&p, 4), 3600);
    assert_int_equal(ph_retry_delay(&p, 5), 14400);
    assert_int_equal(ph_retry_delay(&p, 50), 14400); /* the last entry repeats */
    assert_int_equal(ph_retry_delay(&p, 0), 60);
    assert_true(p.lifetime_ms == 5ull * 86400 * 1000);
}

static void test_outcomes(void **state)
{
    (void)state;
    ph_retry_policy p;
    ph_retry_policy_default(&p);
    ph_envelope *e = two_rcpts();
    assert_int_equal(ph_schedule_record(e, 0, 250, "250 2.0.0 ok", T0 + 5, &p), PH_RCPT_DELIVERED);
    assert_int_equal(e->rcpts[0].done_at, T0 + 5);
    assert_int_equal(e->rcpts[0].attempts, 1);
    assert_int_equal(ph_schedule_record(e, 1, 451, "451 4.3.0 busy", T0 + 5, &p), PH_RCPT_DEFERRED);
    assert_int_equal(e->rcpts[1].next_try, T0 + 5 + 60);
    assert_string_equal(e->rcpts[1].last_error, "451 4.3.0 busy");
    assert_false(ph_schedule_due(&e->rcpts[1], T0 + 64, false));
    assert_true(ph_schedule_due(&e->rcpts[1], T0 + 64, true));
    assert_true(ph_schedule_due(&e->rcpts[1], T0 + 65, false));
    assert_false(ph_schedule_due(&e->rcpts[0], T0 + 65, true)); /* delivered is never due */
    assert_int_equal(ph_schedule_record(e, 1, 0, "connection refused", T0 + 65, &p),
                     PH_RCPT_DEFERRED);
    assert_int_equal(e->rcpts[1].next_try, T0 + 65 + 300);
    assert_int_equal(ph_schedule_record(e, 1, 550, "550 5.1.1 unknown", T0 + 400, &p),
                     PH_RCPT_FAILED);
    assert_int_equal(e->rcpts[1].attempts, 3);
    assert_true(ph_envelope_all_done(e));
    assert_int_equal(ph_schedule_record(e, 2, 250, NULL, T0, &p), -EINVAL);
    ph_envelope_free(e);
}

static void test_lifetime(void **state)
{
    (void)state;
    ph_retry_policy p;
    ph_retry_policy_default(&p);
    p.lifetime_ms = 3600 * 1000; /* one hour */
    ph_envelope *e = two_rcpts();
    e->rcpts[0].attempts = 4; /* next delay would be 4h: capped at the lifetime's end */
    assert_int_equal(ph_schedule_record(e, 0, 421, "421 4.4.2 timeout", T0 + 1800, &p),
                     PH_RCPT_DEFERRED);
    assert_int_equal(e->rcpts[0].next_try, T0 + 3600);
    assert_int_equal(ph_schedule_record(e, 0, 421, "421 4.4.2 timeout", T0 + 3600, &p),
                     PH_RCPT_FAILED);
    assert_non_null(strstr(e->rcpts[0].last_error, "delivery time expired"));
    assert_non_null(strstr(e->rcpts[0].last_error, "421 4.4.2 timeout"));
    assert_int_equal(ph_schedule_fail(e, 1, "550 5.0.0 returned", T0 + 10), 0);
    assert_int_equal(e->rcpts[1].state, PH_RCPT_FAILED);
    assert_int_equal(e->rcpts[1].attempts, 0);
    ph_envelope_free(e);
}

static void test_custom_schedule(void **state)
{
    (void)state;
    ph_retry_policy p = {.schedule_ms = {1500, 10}, .n = 2, .lifetime_ms = 86400000};
    assert_int_equal(ph_retry_delay(&p, 1), 2); /* rounded up */
    assert_int_equal(ph_retry_delay(&p, 2), 1); /* at least a second */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_outcomes),
        cmocka_unit_test(test_lifetime),
        cmocka_unit_test(test_custom_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
