/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/metrics/timeseries.c: histogram bins and quantiles within
 * the bin resolution, exact totals recorded from several threads while
 * readers merge, bucket placement and expiry as the (fake) clock moves,
 * a clock stepping back, percentiles merged across shards, MCP counters,
 * and recording before init.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"
#include "metrics/timeseries.h"

static _Atomic int64_t fake_now = 1700000000; /* a multiple of 10: bucket boundaries are easy to reason about */

static int64_t fake_clock(void)
{
    return atomic_load(&fake_now);
}

static int setup(void **state)
{
    (void)state;
    atomic_store(&fake_now, 1700000000);
    lg_timeseries_set_clock(fake_clock);
    lg_timeseries_init(4); /* 3 workers + the shared shard */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_timeseries_shutdown();
    lg_timeseries_set_clock(NULL);
    return 0;
}

static void test_ts_bins_and_quantiles(void **state)
{
    (void)state;
    assert_int_equal(lg_ts_bin_of(0), 0);
    assert_int_equal(lg_ts_bin_of(0.5), 0);
    assert_int_equal(lg_ts_bin_of(NAN), 0);
    assert_int_equal(lg_ts_bin_of(-3), 0);
    assert_int_equal(lg_ts_bin_of(1e12), LG_TS_HIST_BINS - 1);
    unsigned prev = 0;
    for (double ms = 1; ms < 1e6; ms *= 1.07) {
        unsigned b = lg_ts_bin_of(ms);
        assert_true(b >= prev);
        prev = b;
    }
    /* 100 samples at each of 10, 100 and 1000 ms: p50 ~ 100 ms and p99 ~ 1000 ms, within one bin (2^0.25 = 19 %) */
    uint64_t bins[LG_TS_HIST_BINS] = {0};
    for (int i = 0; i < 100; ++i) {
        bins[lg_ts_bin_of(10)]++;
        bins[lg_ts_bin_of(100)]++;
        bins[lg_ts_bin_of(1000)]++;
    }
    double p50 = lg_ts_quantile(bins, 300, 0.5), p99 = lg_ts_quantile(bins, 300, 0.99), p0 = lg_ts_quantile(bins, 300, 0.0);
    assert_true(p50 > 100 / 1.19 && p50 < 100 * 1.19);
    assert_true(p99 > 1000 / 1.19 && p99 < 1000 * 1.19);
    assert_true(p0 > 10 / 1.19 && p0 < 10 * 1.19);
    assert_true(lg_ts_quantile(bins, 0, 0.5) < 0); /* no samples: "none", not 0 */
}

static void test_ts_bucket_placement_and_expiry(void **state)
{
    (void)state;
    int64_t t0 = fake_clock();
    lg_timeseries_request(0, 200, 0.010, 0.005, 10, 20, 1000);
    lg_timeseries_request(1, 503, 0.020, -1, 0, 0, 0);
    atomic_store(&fake_now, t0 + 10);
    lg_timeseries_request(2, 429, 0.030, -1, 5, 0, 0);
    lg_timeseries_fallback(0);

    lg_ts_point_t pts[LG_TS_WINDOW], total;
    lg_timeseries_read(t0 + 10, LG_TS_WINDOW, pts, &total);
    assert_int_equal(pts[LG_TS_WINDOW - 1].start_s, t0 + 10);
    assert_int_equal(pts[LG_TS_WINDOW - 2].start_s, t0);
    assert_int_equal(pts[LG_TS_WINDOW - 2].requests, 2);
    assert_int_equal(pts[LG_TS_WINDOW - 2].errors_5xx, 1);
    assert_int_equal(pts[LG_TS_WINDOW - 2].ttft_samples, 1);
    assert_int_equal(pts[LG_TS_WINDOW - 2].cost_pico, 1000);
    assert_int_equal(pts[LG_TS_WINDOW - 1].requests, 1);
    assert_int_equal(pts[LG_TS_WINDOW - 1].errors_4xx, 1);
    assert_int_equal(pts[LG_TS_WINDOW - 1].fallbacks, 1);
    assert_true(pts[LG_TS_WINDOW - 1].ttft_p50_ms < 0);
    assert_int_equal(total.requests, 3);
    assert_int_equal(total.prompt_tokens, 15);
    assert_int_equal(total.completion_tokens, 20);
    assert_int_equal(total.latency_samples, 3);

    /* a shorter window sees only its buckets */
    lg_ts_point_t one;
    lg_timeseries_read(t0 + 10, 1, pts, &one);
    assert_int_equal(one.requests, 1);

    /* 15 minutes later those buckets are out of the window, and their slots are recycled for new ones */
    atomic_store(&fake_now, t0 + 10 + 15 * 60);
    lg_timeseries_read(fake_clock(), LG_TS_WINDOW, pts, &total);
    assert_int_equal(total.requests, 0);
    for (int64_t dt = 0; dt < 20 * 60; dt += 10) { /* touch every slot of the ring */
        atomic_store(&fake_now, t0 + 15 * 60 + dt);
        lg_timeseries_request(0, 200, 0.001, -1, 0, 0, 0);
    }
    lg_timeseries_read(fake_clock(), LG_TS_WINDOW, pts, &total);
    assert_int_equal(total.requests, LG_TS_WINDOW); /* exactly one per bucket: recycled slots start from zero */
    for (unsigned i = 0; i < LG_TS_WINDOW; ++i)
        assert_int_equal(pts[i].requests, 1);
}

static void test_ts_clock_backwards(void **state)
{
    (void)state;
    int64_t t0 = fake_clock();
    atomic_store(&fake_now, t0 + 100);
    lg_timeseries_request(0, 200, 0.001, -1, 0, 0, 0);
    /* the clock steps back a full ring: that slot now holds a newer bucket, the sample is dropped, nothing breaks */
    atomic_store(&fake_now, t0 + 100 - 10 * 96);
    lg_timeseries_request(0, 200, 0.001, -1, 0, 0, 0);
    lg_ts_point_t pts[LG_TS_WINDOW], total;
    lg_timeseries_read(t0 + 100, LG_TS_WINDOW, pts, &total);
    assert_int_equal(total.requests, 1);
}

static void test_ts_percentiles_merge_shards(void **state)
{
    (void)state;
    /* worker 0 fast, worker 1 slow: the gateway's p50/p99 come from the merged histogram, not per-worker averages */
    for (int i = 0; i < 90; ++i)
        lg_timeseries_request(0, 200, 0.010, -1, 0, 0, 0);
    for (int i = 0; i < 10; ++i)
        lg_timeseries_request(1, 200, 2.0, -1, 0, 0, 0);
    lg_ts_point_t pts[1], total;
    lg_timeseries_read(fake_clock(), 1, pts, &total);
    assert_int_equal(total.requests, 100);
    assert_true(total.latency_p50_ms > 10 / 1.19 && total.latency_p50_ms < 10 * 1.19);
    assert_true(total.latency_p99_ms > 2000 / 1.19 && total.latency_p99_ms < 2000 * 1.19);
}

#define THREADS 4
#define PER_THREAD 50000

static _Atomic int stop_readers;

static void *writer(void *arg)
{
    unsigned shard = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < PER_THREAD; ++i) {
        lg_timeseries_request(shard, i % 10 == 0 ? 500 : 200, 0.001 * (i % 100), 0.0005, 1, 2, 3);
        if (i % 1000 == 0)
            lg_timeseries_mcp_call(shard, 7, i % 2000 == 0);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    lg_ts_point_t pts[LG_TS_WINDOW], total;
    while (!atomic_load(&stop_readers)) {
        lg_timeseries_read(fake_clock(), LG_TS_WINDOW, pts, &total);
        assert_true(total.requests <= (uint64_t)THREADS * PER_THREAD + 1);
    }
    return NULL;
}

static void test_ts_concurrent_exact(void **state)
{
    (void)state;
    pthread_t w[THREADS], r;
    atomic_store(&stop_readers, 0);
    /* open the current bucket first: a sample racing the claim of a new bucket is dropped by design (only the shared
     * shard has several writers; worker shards have one), and this test counts exactly */
    lg_timeseries_request(3, 200, 0.001, 0.0005, 0, 0, 0);
    pthread_create(&r, NULL, reader, NULL);
    for (uintptr_t i = 0; i < THREADS; ++i) /* writers 0 and 1 own shards 0 and 1; 2 and 3 share the shared shard 3 */
        pthread_create(&w[i], NULL, writer, (void *)(i < 2 ? i : 97 + i));
    for (int i = 0; i < THREADS; ++i)
        pthread_join(w[i], NULL);
    atomic_store(&stop_readers, 1);
    pthread_join(r, NULL);
    lg_ts_point_t pts[1], total;
    lg_timeseries_read(fake_clock(), 1, pts, &total);
    assert_int_equal(total.requests, (uint64_t)THREADS * PER_THREAD + 1);
    assert_int_equal(total.errors_5xx, (uint64_t)THREADS * PER_THREAD / 10);
    assert_int_equal(total.prompt_tokens, (uint64_t)THREADS * PER_THREAD);
    assert_int_equal(total.completion_tokens, (uint64_t)THREADS * PER_THREAD * 2);
    assert_int_equal(total.cost_pico, (uint64_t)THREADS * PER_THREAD * 3);
    assert_int_equal(total.latency_samples, (uint64_t)THREADS * PER_THREAD + 1);
    uint64_t calls, errors;
    lg_timeseries_mcp_totals(7, &calls, &errors);
    assert_int_equal(calls, THREADS * (PER_THREAD / 1000));
    assert_int_equal(errors, THREADS * (PER_THREAD / 2000));
    lg_timeseries_mcp_totals(8, &calls, &errors);
    assert_int_equal(calls, 0);
}

static void test_ts_before_init(void **state)
{
    (void)state;
    lg_timeseries_shutdown();
    lg_timeseries_request(0, 200, 0.001, -1, 0, 0, 0); /* ignored, no crash */
    lg_timeseries_fallback(0);
    lg_timeseries_mcp_call(0, 1, 1);
    lg_ts_point_t pts[2], total;
    lg_timeseries_read(fake_clock(), 2, pts, &total);
    assert_int_equal(total.requests, 0);
    lg_timeseries_init(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ts_bins_and_quantiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ts_bucket_placement_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ts_clock_backwards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ts_percentiles_merge_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ts_concurrent_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ts_before_init, setup, teardown),
    };
    return cmocka_run_group_tests_name("timeseries", tests, NULL, NULL);
}
