/* SPDX-License-Identifier: MIT */
/*
 * The dashboard's recent-traffic time series: per shard (one per worker plus
 * one shared by other threads, like the metrics registry) a ring of 10-second
 * buckets covering the last 15 minutes, each with request/error/fallback
 * counts, tokens, cost and log-scale latency and TTFT histograms. Recording
 * is a handful of relaxed atomic adds on the caller's own shard (no lock, no
 * allocation); a reader merges every shard's buckets at read time, so
 * percentiles are computed over the whole gateway, not averaged per worker.
 * Also per-MCP-upstream call/error counters since start.
 *
 * Fed from src/metrics (lg_metrics_request/_fallback/_mcp_call_id), so the
 * request path needs no extra hook.
 */
#ifndef LG_METRICS_TIMESERIES_H
#define LG_METRICS_TIMESERIES_H

#include <stddef.h>
#include <stdint.h>

#define LG_TS_BUCKET_S 10  /* seconds per bucket */
#define LG_TS_WINDOW 90    /* buckets kept for reading: 15 minutes */
#define LG_TS_HIST_BINS 80 /* latency bins: 4 per doubling from 1 ms (bin 79 ~ 15 min and above) */

/** One merged bucket (or the whole window). Times are unix seconds; latencies in ms, -1 when no sample. */
typedef struct lg_ts_point {
    int64_t start_s;
    uint64_t requests, errors_4xx, errors_5xx, fallbacks;
    uint64_t prompt_tokens, completion_tokens, cost_pico;
    uint64_t latency_samples, ttft_samples;
    double latency_p50_ms, latency_p99_ms, ttft_p50_ms, ttft_p99_ms;
} lg_ts_point_t;

/** Allocate shards [0, num_shards); idempotent until lg_timeseries_shutdown(). Recording before init is ignored. */
void lg_timeseries_init(unsigned num_shards);
void lg_timeseries_shutdown(void);

/** A finished generation request (chat, completions, embeddings, messages). ttft_s < 0 = none. */
void lg_timeseries_request(unsigned shard, int status, double duration_s, double ttft_s, int64_t prompt_tokens,
                           int64_t completion_tokens, int64_t cost_pico);
void lg_timeseries_fallback(unsigned shard);
/** An MCP tool call to server id (the metrics registry's MCP server ids, 0 = other). */
void lg_timeseries_mcp_call(unsigned shard, int server_id, int ok);
/** Calls and failed calls to an MCP server id since start, summed over shards. */
void lg_timeseries_mcp_totals(int server_id, uint64_t *calls, uint64_t *errors);

/**
 * Merge the last n (<= LG_TS_WINDOW) complete-or-current buckets ending with the one containing now_s into
 * out[0..n) (oldest first) and the whole window into *total (may be NULL). Any thread, concurrent with recording.
 */
void lg_timeseries_read(int64_t now_s, unsigned n, lg_ts_point_t *out, lg_ts_point_t *total);

/** Tests: replace the wall clock (unix seconds) samples are filed under; NULL = the real clock. */
void lg_timeseries_set_clock(int64_t (*now_s)(void));

/** Histogram helpers, exposed for the unit test: bin of a latency in ms, and the value a quantile maps to. */
unsigned lg_ts_bin_of(double ms);
double lg_ts_quantile(const uint64_t bins[LG_TS_HIST_BINS], uint64_t count, double q);

#endif
