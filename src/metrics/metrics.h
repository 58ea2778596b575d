/* SPDX-License-Identifier: MIT */
/*
 * Metrics registry and Prometheus text exposition (format 0.0.4).
 * Counters and histograms live in per-worker shards: a worker only touches
 * its own shard (relaxed atomics, no malloc, no lock); a scrape sums all
 * shards. Label values come from bounded sets (enums, or names registered up
 * front from the config), so cardinality is bounded by construction.
 */
#ifndef LG_METRICS_METRICS_H
#define LG_METRICS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "core/error.h" /* lg_errclass_t */

/** Content-Type of lg_metrics_render() output. */
#define LG_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Registry capacities: ids 1..MAX are names, id 0 is the reserved "other". */
#define LG_METRICS_MAX_MODELS 512
#define LG_METRICS_MAX_PROVIDERS 128
#define LG_METRICS_MAX_MCP_SERVERS 64
#define LG_METRICS_MAX_MCP_TOOLS 1024
/** Longer names are not registered (they map to "other"). */
#define LG_METRICS_MAX_NAME_LEN 255

/* Per-shard sparse table capacities (series per shard before folding into "other"). */
#define LG_METRICS_REQ_SLOTS 8192
#define LG_METRICS_USAGE_SLOTS 4096
#define LG_METRICS_ATTEMPT_SLOTS 4096
#define LG_METRICS_MCP_SLOTS 2048

typedef enum {
    LG_ROUTE_CHAT,
    LG_ROUTE_COMPLETIONS,
    LG_ROUTE_EMBEDDINGS,
    LG_ROUTE_MESSAGES,
    LG_ROUTE_RESPONSES,
    LG_ROUTE_MODELS,
    LG_ROUTE_HEALTH,
    LG_ROUTE_METRICS,
    LG_ROUTE_ADMIN,
    LG_ROUTE_MCP,
    LG_ROUTE_OTHER,
    LG_ROUTE__COUNT
} lg_route_t;

/**
 * Allocate num_workers + 1 zeroed shards: shard i belongs to worker i, shard
 * num_workers is shared by every non-worker thread. Call once from the main
 * thread before workers start (calling again without lg_metrics_shutdown()
 * is a no-op). Recording calls before init are ignored.
 */
void lg_metrics_init(unsigned num_workers);
/** Free shards, names and collectors (tests, clean exit). No thread may record or render concurrently. */
void lg_metrics_shutdown(void);
/** Index of the shard shared by non-worker threads (== num_workers given to init). */
unsigned lg_metrics_shared_shard(void);

/**
 * Register-or-get a label id (any thread; takes a mutex, so not for the hot
 * path — call when a config snapshot is built). Ids are process-wide and
 * stable: re-registering a name after a reload returns the same id.
 * Returns 0 ("other") for NULL, "", "other", names longer than
 * LG_METRICS_MAX_NAME_LEN, or when the table is full (counted in
 * llmgate_metrics_overflow_total{table="..._names"}).
 */
int lg_metrics_model_id(const char *name);
int lg_metrics_provider_id(const char *name);
int lg_metrics_mcp_server_id(const char *name);
int lg_metrics_mcp_tool_id(const char *name);
/** Lookup only, lock-free, any thread; 0 if unknown. */
int lg_metrics_model_lookup(const char *name);
int lg_metrics_provider_lookup(const char *name);

/** Label value of a class ("timeout", "connect", ...); "other" when out of range. */
const char *lg_metrics_errclass_name(lg_errclass_t cls);
/** Label value of a route ("chat", ...); "other" when out of range. */
const char *lg_metrics_route_name(lg_route_t route);

/*
 * Recording (hot path, worker thread, shard = worker index; out-of-range
 * shards go to the shared shard). Ids out of range count as "other".
 * No allocation, no lock; a handful of relaxed atomic adds.
 */

/**
 * A finished request. status outside 200..599 is labelled "other". ttft_s < 0
 * = none (no content byte reached the client). Negative token counts and
 * costs are ignored. stream != 0 also counts llmgate_streamed_requests_total.
 */
void lg_metrics_request(unsigned shard, lg_route_t route, int model_id, int provider_id, int status, double duration_s,
                        double ttft_s, int64_t prompt_tokens, int64_t completion_tokens, int64_t cost_pico, int stream);
/** Every upstream attempt: ok, or failed with class cls. */
void lg_metrics_attempt(unsigned shard, int provider_id, int model_id, int ok, lg_errclass_t cls);
/** A request that needed more than one attempt and succeeded. */
void lg_metrics_fallback(unsigned shard, int model_id);
/** An admission rejection: "auth", "credit", "forbidden", "rpm", "tpm"; anything else counts as "other". */
void lg_metrics_rejected(unsigned shard, const char *reason);
/** A routing policy error (the request fell back to the built-in plan). */
void lg_metrics_policy_error(unsigned shard);
/** n more lg.log lines dropped by a policy's rate limit (any thread). */
void lg_metrics_policy_log_dropped(uint64_t n);
/** An MCP tool call; server/tool are looked up (lock-free) among registered names, unknown → "other". */
void lg_metrics_mcp_call(unsigned shard, const char *server, const char *tool, int ok, double duration_s);
/** Same with ids from lg_metrics_mcp_server_id/_tool_id (no string lookup). */
void lg_metrics_mcp_call_id(unsigned shard, int server_id, int tool_id, int ok, double duration_s);

/*
 * Scrape-time collectors: gauges (and counters kept elsewhere) are written
 * by callbacks while rendering. Samples of one family are grouped together
 * and get one HELP/TYPE header however the collectors interleave them.
 */
typedef struct lg_metrics_writer lg_metrics_writer_t;
typedef void (*lg_metrics_gauge_fn)(lg_metrics_writer_t *w, void *arg);

/** Register a collector (main thread, before workers start; at most 32). fn runs on the rendering thread. */
void lg_metrics_add_collector(lg_metrics_gauge_fn fn, void *arg);
/**
 * Write one sample from a collector. Labels follow value as alternating
 * name, value (const char *) pairs terminated by NULL: always pass the NULL,
 * even with no labels. Label values are escaped here; family and label names
 * must be valid Prometheus names (invalid samples are dropped). The first
 * write of a family fixes its HELP and TYPE; a later write with another type
 * is dropped.
 */
void lg_metrics_write_gauge(lg_metrics_writer_t *w, const char *family, const char *help, double value, ...)
    __attribute__((sentinel));
void lg_metrics_write_counter(lg_metrics_writer_t *w, const char *family, const char *help, double value, ...)
    __attribute__((sentinel));

/**
 * Render every family (any thread, concurrent with recording). Returns a
 * malloc'd NUL-terminated text (caller frees with free()) and its length in
 * *len (may be NULL). Output order is deterministic.
 */
char *lg_metrics_render(size_t *len);

#endif
