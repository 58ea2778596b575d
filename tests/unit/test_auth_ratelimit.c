/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/auth/ratelimit.c: token-bucket arithmetic with a fake
 * clock (refill, wait times, debt, reconfigure keeps the level, clock going
 * backwards) and exact counting under concurrent takes from several threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>

#include "auth/ratelimit.h"

#define T0 INT64_C(1710072000000) /* 2024-03-10 12:00:00 UTC */

static void assert_level(lg_bucket_t *b, int64_t now, double want)
{
    double got = lg_bucket_level(b, now);
    if (fabs(got - want) > 1e-6)
        fail_msg("level %f, wanted %f", got, want);
}

static void test_bucket_starts_full_and_refills(void **state)
{
    lg_bucket_t b;
    int64_t w = 12345;
    (void)state;

    lg_bucket_init(&b, 60, 1, T0); /* 60 per minute */
    assert_level(&b, T0, 60);
    for (int i = 0; i < 60; ++i)
        assert_int_equal(lg_bucket_take(&b, 1, T0, &w), 1);
    assert_int_equal(w, 12345); /* untouched on success */
    assert_int_equal(lg_bucket_take(&b, 1, T0, &w), 0);
    assert_int_equal(w, 1000);
    assert_level(&b, T0, 0); /* a failed take changes nothing */
    assert_int_equal(lg_bucket_take(&b, 1, T0 + 999, &w), 0);
    assert_int_equal(w, 1);
    assert_int_equal(lg_bucket_take(&b, 1, T0 + 1000, &w), 1);
    assert_level(&b, T0 + 1500, 0.5);
    /* refill is capped at capacity */
    assert_level(&b, T0 + 3600 * 1000, 60);
    assert_int_equal(lg_bucket_full_in_ms(&b, T0 + 3600 * 1000), 0);
}

static void test_bucket_wait_times(void **state)
{
    lg_bucket_t b;
    int64_t w = 0;
    (void)state;

    lg_bucket_init(&b, 1000, 1000.0 / 60, T0); /* 1000 tokens per minute */
    assert_int_equal(lg_bucket_take(&b, 900, T0, &w), 1);
    assert_int_equal(lg_bucket_wait_ms(&b, 100, T0), 0);
    assert_int_equal(lg_bucket_wait_ms(&b, 400, T0), 18000); /* 300 missing at 16.67/s */
    assert_int_equal(lg_bucket_take(&b, 400, T0, &w), 0);
    assert_int_equal(w, 18000);
    assert_int_equal(lg_bucket_take(&b, 1001, T0, &w), 0);
    assert_int_equal(w, -1); /* more than the capacity: never */
    assert_int_equal(lg_bucket_full_in_ms(&b, T0), 54000);
    assert_int_equal(lg_bucket_take(&b, 400, T0 + 18000, &w), 1);

    /* a bucket that never refills says "never" once empty */
    lg_bucket_init(&b, 2, 0, T0);
    assert_int_equal(lg_bucket_take(&b, 2, T0, &w), 1);
    assert_int_equal(lg_bucket_take(&b, 1, T0 + 100000, &w), 0);
    assert_int_equal(w, -1);
    assert_int_equal(lg_bucket_full_in_ms(&b, T0), -1);
}

static void test_bucket_debt(void **state)
{
    lg_bucket_t b;
    int64_t w = 0;
    (void)state;

    lg_bucket_init(&b, 600, 10, T0);
    assert_int_equal(lg_bucket_take(&b, 100, T0, &w), 1); /* 500 */
    lg_bucket_adjust(&b, -700, T0);                       /* actual usage was 800: -200 */
    assert_level(&b, T0, -200);
    assert_int_equal(lg_bucket_take(&b, 0, T0, &w), 0); /* in debt nothing passes */
    assert_int_equal(w, 20000);
    assert_int_equal(lg_bucket_take(&b, 10, T0 + 20000, &w), 0);
    assert_int_equal(w, 1000);
    assert_int_equal(lg_bucket_take(&b, 10, T0 + 21000, &w), 1);
    /* refunds are capped at capacity */
    lg_bucket_adjust(&b, 1e9, T0 + 21000);
    assert_level(&b, T0 + 21000, 600);
}

static void test_bucket_reconfigure_keeps_level(void **state)
{
    lg_bucket_t b;
    int64_t w = 0;
    (void)state;

    lg_bucket_init(&b, 100, 100.0 / 60, T0);
    assert_int_equal(lg_bucket_take(&b, 70, T0, &w), 1);
    lg_bucket_reconfigure(&b, 200, 200.0 / 60, T0);
    assert_level(&b, T0, 30); /* a bigger limit does not make the bucket full */
    assert_true(fabs(lg_bucket_capacity(&b) - 200) < 1e-9);
    assert_level(&b, T0 + 3000, 40); /* new rate from now on: 10 tokens in 3 s */
    lg_bucket_reconfigure(&b, 20, 20.0 / 60, T0 + 3000);
    assert_level(&b, T0 + 3000, 20); /* clamped to the smaller capacity */
    /* refill up to the reconfiguration happens at the old rate */
    lg_bucket_init(&b, 60, 1, T0);
    assert_int_equal(lg_bucket_take(&b, 60, T0, &w), 1);
    lg_bucket_reconfigure(&b, 60, 0.5, T0 + 10000); /* 10 s at 1/s */
    assert_level(&b, T0 + 10000, 10);
    assert_level(&b, T0 + 20000, 15);
}

static void test_bucket_clock_backwards(void **state)
{
    lg_bucket_t b;
    int64_t w = 0;
    (void)state;

    lg_bucket_init(&b, 10, 1, T0);
    assert_int_equal(lg_bucket_take(&b, 10, T0, &w), 1);
    assert_level(&b, T0 - 60000, 0); /* no refill, no negative refill */
    assert_level(&b, T0 + 1000, 1);  /* time did not move backwards inside the bucket */
    assert_level(&b, T0 - 5000, 1);
    assert_level(&b, T0 + 2000, 2);
}

#define THREADS 4
#define TRIES 5000

struct race {
    lg_bucket_t *b;
    pthread_barrier_t *go;
    int ok;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(r->go);
    for (int i = 0; i < TRIES; ++i) {
        int64_t w;
        r->ok += lg_bucket_take(r->b, 1, T0 + i, &w);
    }
    return NULL;
}

static void test_bucket_concurrent_take_exact(void **state)
{
    lg_bucket_t b;
    pthread_t th[THREADS];
    struct race r[THREADS];
    pthread_barrier_t go;
    int total = 0;
    (void)state;

    lg_bucket_init(&b, 1000, 0, T0);
    pthread_barrier_init(&go, NULL, THREADS);
    for (int i = 0; i < THREADS; ++i) {
        r[i] = (struct race){.b = &b, .go = &go};
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; ++i) {
        pthread_join(th[i], NULL);
        total += r[i].ok;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(total, 1000);
    assert_level(&b, T0 + TRIES, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_starts_full_and_refills),
        cmocka_unit_test(test_bucket_wait_times),
        cmocka_unit_test(test_bucket_debt),
        cmocka_unit_test(test_bucket_reconfigure_keeps_level),
        cmocka_unit_test(test_bucket_clock_backwards),
        cmocka_unit_test(test_bucket_concurrent_take_exact),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
