/* SPDX-License-Identifier: MIT */
/*
 * Live statistics per endpoint (provider + upstream model) and per provider,
 * shared by all workers through relaxed atomics (no lock on the request
 * path). Entries live for the whole process so they survive config reloads.
 * EWMA updates may race and lose a sample now and then; that is acceptable
 * for routing signals.
 */
#ifndef LG_ROUTER_STATS_H
#define LG_ROUTER_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct lg_endpoint_stats {
    char *provider;
    char *model;
    _Atomic uint64_t requests;
    _Atomic uint64_t failures;
    _Atomic uint32_t consecutive_failures;
    _Atomic int64_t last_failure_ms;    /* monotonic ms, 0 = never */
    _Atomic int64_t unhealthy_until_ms; /* monotonic ms; > now = unhealthy (cooldown) */
    _Atomic uint64_t latency_ewma_bits; /* doubles stored as bits */
    _Atomic uint64_t ttft_ewma_bits;
    _Atomic uint64_t tput_ewma_bits;
    _Atomic uint64_t error_ewma_bits;
    struct lg_endpoint_stats *next;
} lg_endpoint_stats_t;

typedef struct lg_provider_stats {
    char *name;
    _Atomic uint32_t in_flight;
    _Atomic uint32_t queued;
    _Atomic uint64_t requests;
    _Atomic uint64_t failures;
    struct lg_provider_stats *next;
} lg_provider_stats_t;

/** Find or create (thread-safe; takes a mutex — call at snapshot build time, not per request). */
lg_endpoint_stats_t *lg_stats_endpoint(const char *provider, const char *model);
lg_provider_stats_t *lg_stats_provider(const char *name);

/** Record a successful attempt. ttft_ms < 0 = unknown; tokens/s computed from completion tokens and generation time. */
void lg_stats_success(lg_endpoint_stats_t *s, double latency_ms, double ttft_ms, int64_t completion_tokens);
/** Record a failed attempt; marks the endpoint unhealthy for cooldown_ms after `threshold` consecutive failures. */
void lg_stats_failure(lg_endpoint_stats_t *s, uint32_t threshold, uint32_t cooldown_ms);

double lg_stats_get(const _Atomic uint64_t *bits);
int lg_stats_healthy(const lg_endpoint_stats_t *s, int64_t now_ms);

/** Visit every registered endpoint / provider (metrics scrape; takes the registry mutex). */
void lg_stats_foreach_endpoint(void (*fn)(const lg_endpoint_stats_t *s, void *arg), void *arg);
void lg_stats_foreach_provider(void (*fn)(const lg_provider_stats_t *p, void *arg), void *arg);

/** Try to take a concurrency slot (max 0 = unlimited). Returns 1 on success. */
int lg_stats_acquire(lg_provider_stats_t *p, uint32_t max);
void lg_stats_release(lg_provider_stats_t *p);

/* ---- sharing with other replicas (src/cluster) ---- */

/** Called (on the worker thread) when lg_stats_failure marks an endpoint unhealthy; one hook, set before workers run. */
typedef void lg_stats_unhealthy_hook_t(const lg_endpoint_stats_t *s, uint32_t cooldown_ms);
void lg_stats_set_unhealthy_hook(lg_stats_unhealthy_hook_t *fn);

/** A peer found the endpoint failing: unhealthy for cooldown_ms from now (never shortens a longer local cooldown). */
void lg_stats_mark_unhealthy(lg_endpoint_stats_t *s, uint32_t cooldown_ms);

/**
 * Blend a peer's EWMAs into ours, weighted like one sample (values <= 0 are "no data" and skipped). Routing then sees
 * latency, TTFT, throughput and error rate observed by every replica.
 */
void lg_stats_merge_remote(lg_endpoint_stats_t *s, double latency_ms, double ttft_ms, double tput, double error_rate);

#endif
