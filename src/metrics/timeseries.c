/* SPDX-License-Identifier: MIT */
/*
 * Recent-traffic rings (see timeseries.h). A slot is claimed for a new
 * bucket by CAS on its epoch word: the winner marks it "resetting", zeroes
 * the counters and publishes the new epoch with a release store; samples
 * arriving meanwhile for that bucket are dropped (a few at most, at a bucket
 * boundary). Readers check the epoch before and after copying a slot and
 * skip it when it changed, so a slot being recycled is never mixed into the
 * wrong bucket.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "metrics/metrics.h"
#include "metrics/timeseries.h"

#define RING (LG_TS_WINDOW + 6) /* a few spare slots so the oldest bucket read is never the one being recycled */
#define RESETTING INT64_MIN

struct bucket {
    _Atomic int64_t epoch; /* start_s / LG_TS_BUCKET_S; 0 = never used; RESETTING while being zeroed */
    _Atomic uint64_t requests, errors_4xx, errors_5xx, fallbacks, prompt_tokens, completion_tokens, cost_pico;
    _Atomic uint32_t latency[LG_TS_HIST_BINS], ttft[LG_TS_HIST_BINS];
};

struct ts_shard {
    struct bucket ring[RING];
    _Atomic uint64_t mcp_calls[LG_METRICS_MAX_MCP_SERVERS + 1], mcp_errors[LG_METRICS_MAX_MCP_SERVERS + 1];
};

static struct ts_shard **shards;
static _Atomic unsigned num_shards;

void lg_timeseries_init(unsigned n)
{
    if (atomic_load_explicit(&num_shards, memory_order_acquire) != 0 || n == 0)
        return;
    shards = calloc(n, sizeof(*shards));
    if (shards == NULL)
        abort();
    for (unsigned i = 0; i < n; ++i) {
        size_t sz = (sizeof(struct ts_shard) + 63) / 64 * 64; /* own cache lines: no false sharing between workers */
        shards[i] = aligned_alloc(64, sz);
        if (shards[i] == NULL)
            abort();
        memset(shards[i], 0, sz);
    }
    atomic_store_explicit(&num_shards, n, memory_order_release);
}

void lg_timeseries_shutdown(void)
{
    unsigned n = atomic_load_explicit(&num_shards, memory_order_acquire);
    atomic_store_explicit(&num_shards, 0, memory_order_release);
    for (unsigned i = 0; i < n; ++i)
        free(shards[i]);
    free(shards);
    shards = NULL;
}

/* The shard of index shard; *shared = 1 for the last one, written by several threads. */
static struct ts_shard *shard_of(unsigned shard, int *shared)
{
    unsigned n = atomic_load_explicit(&num_shards, memory_order_acquire);
    if (n == 0)
        return NULL;
    *shared = shard >= n - 1;
    return shards[shard < n ? shard : n - 1]; /* out of range: the shared (last) shard */
}

unsigned lg_ts_bin_of(double ms)
{
    if (!(ms >= 1.0)) /* also NaN */
        return 0;
    int b = 1 + (int)floor(log2(ms) * 4.0);
    return b >= LG_TS_HIST_BINS ? LG_TS_HIST_BINS - 1 : (unsigned)b;
}

static double bin_low(unsigned b)
{
    return b == 0 ? 0.0 : exp2((double)(b - 1) / 4.0);
}

double lg_ts_quantile(const uint64_t bins[LG_TS_HIST_BINS], uint64_t count, double q)
{
    if (count == 0)
        return -1;
    uint64_t rank = (uint64_t)ceil(q * (double)count), cum = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned b = 0; b < LG_TS_HIST_BINS; ++b) {
        if (bins[b] == 0 || cum + bins[b] < rank) {
            cum += bins[b];
            continue;
        }
        if (b == LG_TS_HIST_BINS - 1)
            return bin_low(b);
        /* linear inside the bin: the rank's position among the bin's samples */
        double lo = bin_low(b), hi = exp2((double)b / 4.0);
        return lo + (hi - lo) * ((double)(rank - cum) / (double)bins[b]);
    }
    return bin_low(LG_TS_HIST_BINS - 1);
}

/* The slot for the bucket containing now, claimed for it if it still holds an older bucket; NULL = drop the sample. */
static struct bucket *current_bucket(struct ts_shard *s, int64_t now_s)
{
    int64_t epoch = now_s / LG_TS_BUCKET_S;
    struct bucket *b = &s->ring[epoch % RING];
    int64_t seen = atomic_load_explicit(&b->epoch, memory_order_acquire);
    if (seen == epoch)
        return b;
    if (seen == RESETTING || seen > epoch) /* being recycled, or the clock stepped back: drop */
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&b->epoch, &seen, RESETTING, memory_order_acq_rel, memory_order_acquire))
        return seen == epoch ? b : NULL;
    atomic_store_explicit(&b->requests, 0, memory_order_relaxed);
    atomic_store_explicit(&b->errors_4xx, 0, memory_order_relaxed);
    atomic_store_explicit(&b->errors_5xx, 0, memory_order_relaxed);
    atomic_store_explicit(&b->fallbacks, 0, memory_order_relaxed);
    atomic_store_explicit(&b->prompt_tokens, 0, memory_order_relaxed);
    atomic_store_explicit(&b->completion_tokens, 0, memory_order_relaxed);
    atomic_store_explicit(&b->cost_pico, 0, memory_order_relaxed);
    for (unsigned i = 0; i < LG_TS_HIST_BINS; ++i) {
        atomic_store_explicit(&b->latency[i], 0, memory_order_relaxed);
        atomic_store_explicit(&b->ttft[i], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&b->epoch, epoch, memory_order_release);
    return b;
}

static int64_t real_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts); /* a tick is plenty for 10-second buckets, and cheaper */
    return (int64_t)ts.tv_sec;
}

static int64_t (*_Atomic clock_fn)(void) = real_now_s;

static int64_t now_s(void)
{
    return atomic_load_explicit(&clock_fn, memory_order_relaxed)();
}

void lg_timeseries_set_clock(int64_t (*fn)(void))
{
    atomic_store(&clock_fn, fn != NULL ? fn : real_now_s);
}

/* A worker's own shard has one writer: a relaxed load + store is enough (readers tolerate a stale value) and avoids
 * the locked read-modify-write; the shared shard needs the RMW. */
#define ADD(field, v)                                                                                                              \
    do {                                                                                                                           \
        if (shared)                                                                                                                \
            atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed);                                                        \
        else                                                                                                                       \
            atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (v), memory_order_relaxed);     \
    } while (0)

void lg_timeseries_request(unsigned shard, int status, double duration_s, double ttft_s, int64_t prompt_tokens,
                           int64_t completion_tokens, int64_t cost_pico)
{
    int shared = 1;
    struct ts_shard *s = shard_of(shard, &shared);
    struct bucket *b = s != NULL ? current_bucket(s, now_s()) : NULL;
    if (b == NULL)
        return;
    ADD(b->requests, 1);
    if (status >= 400 && status < 500)
        ADD(b->errors_4xx, 1);
    else if (status >= 500 || status < 100)
        ADD(b->errors_5xx, 1);
    if (prompt_tokens > 0)
        ADD(b->prompt_tokens, (uint64_t)prompt_tokens);
    if (completion_tokens > 0)
        ADD(b->completion_tokens, (uint64_t)completion_tokens);
    if (cost_pico > 0)
        ADD(b->cost_pico, (uint64_t)cost_pico);
    if (duration_s >= 0)
        ADD(b->latency[lg_ts_bin_of(duration_s * 1000.0)], 1);
    if (ttft_s >= 0)
        ADD(b->ttft[lg_ts_bin_of(ttft_s * 1000.0)], 1);
}

void lg_timeseries_fallback(unsigned shard)
{
    int shared = 1;
    struct ts_shard *s = shard_of(shard, &shared);
    struct bucket *b = s != NULL ? current_bucket(s, now_s()) : NULL;
    if (b != NULL)
        ADD(b->fallbacks, 1);
}

void lg_timeseries_mcp_call(unsigned shard, int server_id, int ok)
{
    int shared = 1;
    struct ts_shard *s = shard_of(shard, &shared);
    if (s == NULL)
        return;
    unsigned id = server_id > 0 && server_id <= LG_METRICS_MAX_MCP_SERVERS ? (unsigned)server_id : 0;
    ADD(s->mcp_calls[id], 1);
    if (!ok)
        ADD(s->mcp_errors[id], 1);
}

void lg_timeseries_mcp_totals(int server_id, uint64_t *calls, uint64_t *errors)
{
    *calls = *errors = 0;
    unsigned n = atomic_load_explicit(&num_shards, memory_order_acquire);
    unsigned id = server_id > 0 && server_id <= LG_METRICS_MAX_MCP_SERVERS ? (unsigned)server_id : 0;
    for (unsigned i = 0; i < n; ++i) {
        *calls += atomic_load_explicit(&shards[i]->mcp_calls[id], memory_order_relaxed);
        *errors += atomic_load_explicit(&shards[i]->mcp_errors[id], memory_order_relaxed);
    }
}

struct acc {
    uint64_t requests, errors_4xx, errors_5xx, fallbacks, prompt_tokens, completion_tokens, cost_pico;
    uint64_t latency[LG_TS_HIST_BINS], ttft[LG_TS_HIST_BINS];
};

/* Add slot b to a if it holds bucket epoch (consistent copy, or nothing). */
static void accumulate(struct acc *a, struct bucket *b, int64_t epoch)
{
    if (atomic_load_explicit(&b->epoch, memory_order_acquire) != epoch)
        return;
    struct acc tmp;
    tmp.requests = atomic_load_explicit(&b->requests, memory_order_relaxed);
    tmp.errors_4xx = atomic_load_explicit(&b->errors_4xx, memory_order_relaxed);
    tmp.errors_5xx = atomic_load_explicit(&b->errors_5xx, memory_order_relaxed);
    tmp.fallbacks = atomic_load_explicit(&b->fallbacks, memory_order_relaxed);
    tmp.prompt_tokens = atomic_load_explicit(&b->prompt_tokens, memory_order_relaxed);
    tmp.completion_tokens = atomic_load_explicit(&b->completion_tokens, memory_order_relaxed);
    tmp.cost_pico = atomic_load_explicit(&b->cost_pico, memory_order_relaxed);
    for (unsigned i = 0; i < LG_TS_HIST_BINS; ++i) {
        tmp.latency[i] = atomic_load_explicit(&b->latency[i], memory_order_relaxed);
        tmp.ttft[i] = atomic_load_explicit(&b->ttft[i], memory_order_relaxed);
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&b->epoch, memory_order_relaxed) != epoch)
        return; /* recycled while we copied */
    a->requests += tmp.requests;
    a->errors_4xx += tmp.errors_4xx;
    a->errors_5xx += tmp.errors_5xx;
    a->fallbacks += tmp.fallbacks;
    a->prompt_tokens += tmp.prompt_tokens;
    a->completion_tokens += tmp.completion_tokens;
    a->cost_pico += tmp.cost_pico;
    for (unsigned i = 0; i < LG_TS_HIST_BINS; ++i) {
        a->latency[i] += tmp.latency[i];
        a->ttft[i] += tmp.ttft[i];
    }
}

static void finish(const struct acc *a, int64_t start_s, lg_ts_point_t *p)
{
    p->start_s = start_s;
    p->requests = a->requests;
    p->errors_4xx = a->errors_4xx;
    p->errors_5xx = a->errors_5xx;
    p->fallbacks = a->fallbacks;
    p->prompt_tokens = a->prompt_tokens;
    p->completion_tokens = a->completion_tokens;
    p->cost_pico = a->cost_pico;
    p->latency_samples = p->ttft_samples = 0;
    for (unsigned i = 0; i < LG_TS_HIST_BINS; ++i) {
        p->latency_samples += a->latency[i];
        p->ttft_samples += a->ttft[i];
    }
    p->latency_p50_ms = lg_ts_quantile(a->latency, p->latency_samples, 0.50);
    p->latency_p99_ms = lg_ts_quantile(a->latency, p->latency_samples, 0.99);
    p->ttft_p50_ms = lg_ts_quantile(a->ttft, p->ttft_samples, 0.50);
    p->ttft_p99_ms = lg_ts_quantile(a->ttft, p->ttft_samples, 0.99);
}

void lg_timeseries_read(int64_t now, unsigned n, lg_ts_point_t *out, lg_ts_point_t *total)
{
    if (n > LG_TS_WINDOW)
        n = LG_TS_WINDOW;
    unsigned ns = atomic_load_explicit(&num_shards, memory_order_acquire);
    int64_t last = now / LG_TS_BUCKET_S;
    struct acc *all = calloc(1, sizeof(*all)), *one = malloc(sizeof(*one));
    if (all == NULL || one == NULL)
        abort();
    for (unsigned k = 0; k < n; ++k) {
        int64_t epoch = last - (int64_t)(n - 1 - k);
        memset(one, 0, sizeof(*one));
        for (unsigned i = 0; i < ns && epoch > 0; ++i)
            accumulate(one, &shards[i]->ring[epoch % RING], epoch);
        finish(one, epoch * LG_TS_BUCKET_S, &out[k]);
        all->requests += one->requests;
        all->errors_4xx += one->errors_4xx;
        all->errors_5xx += one->errors_5xx;
        all->fallbacks += one->fallbacks;
        all->prompt_tokens += one->prompt_tokens;
        all->completion_tokens += one->completion_tokens;
        all->cost_pico += one->cost_pico;
        for (unsigned b = 0; b < LG_TS_HIST_BINS; ++b) {
            all->latency[b] += one->latency[b];
            all->ttft[b] += one->ttft[b];
        }
    }
    if (total != NULL)
        finish(all, (last - (int64_t)n + 1) * LG_TS_BUCKET_S, total);
    free(all);
    free(one);
}
