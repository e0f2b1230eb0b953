/*
 * test_destlimit.c - per-destination session limits: slots per name, release, independence of
 * destinations, and many threads never exceeding the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "deliver/destlimit.h"

static void test_slots(void **state)
{
    (void)state;
    ph_destlimit *dl = ph_destlimit_new(2);
    assert_true(ph_destlimit_try(dl, "unix:/a"));
    assert_true(ph_destlimit_try(dl, "unix:/a"));
    assert_false(ph_destlimit_try(dl, "unix:/a"));
    assert_true(ph_destlimit_try(dl, "unix:/b")); /* another destination has its own slots */
    assert_int_equal(ph_destlimit_active(dl, "unix:/a"), 2);
    ph_destlimit_release(dl, "unix:/a");
    assert_true(ph_destlimit_try(dl, "unix:/a"));
    ph_destlimit_release(dl, "unix:/never-seen"); /* harmless */
    assert_int_equal(ph_destlimit_active(dl, "unix:/never-seen"), 0);
    ph_destlimit_free(dl);
}

typedef struct shared {
    ph_destlimit *dl;
    pthread_mutex_t lock;
    unsigned inside, max_inside, entered;
} shared;

static void *worker(void *arg)
{
    shared *s = arg;
    for (int i = 0; i < 2000; i++) {
        if (!ph_destlimit_try(s->dl, "mx"))
            continue;
        pthread_mutex_lock(&s->lock);
        s->inside++;
        s->entered++;
        if (s->inside > s->max_inside)
            s->max_inside = s->inside;
        pthread_mutex_unlock(&s->lock);
        pthread_mutex_lock(&s->lock);
        s->inside--;
        pthread_mutex_unlock(&s->lock);
        ph_destlimit_release(s->dl, "mx");
    }
    return NULL;
}

static void test_threads_respect_limit(void **state)
{
    (void)state;
    shared s = {.dl = ph_destlimit_new(3)};
    pthread_mutex_init(&s.lock, NULL);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, worker, &s);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_true(s.max_inside <= 3);
    assert_true(s.entered > 0);
    assert_int_equal(ph_destlimit_active(s.dl, "mx"), 0);
    pthread_mutex_destroy(&s.lock);
    ph_destlimit_free(s.dl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_threads_respect_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
