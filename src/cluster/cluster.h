/* SPDX-License-Identifier: MIT */
/*
 * Scale-out: state shared by every replica of one gateway through Redis.
 * Owns the process-wide cluster state (configured or not, Redis up or down,
 * this replica's id), one Redis connection per worker loop, and the cluster
 * thread (its own loop) that subscribes to the cluster's channels, re-syncs
 * keys and usage, and answers for the gateway in /health and /metrics.
 *
 * What goes through here (see src/cluster/README.md for the full picture):
 * - admission: per-key RPM/TPM buckets and credit used in the period, checked
 *   and taken atomically by one server-side script per request (scripts.h);
 * - settle: TPM correction and credit spent, one script call, fire-and-forget;
 * - key changes: a message on <prefix>ev:keys makes every replica re-sync;
 * - endpoint health: a cooldown found by one replica is applied by all, and
 *   EWMAs are blended every second;
 * - the shared-state seam for later features (response cache, sticky
 *   sessions): lg_cluster_kv_get / lg_cluster_kv_set on the worker's
 *   connection under the cluster's key prefix.
 *
 * Without a "cluster" section everything here is a no-op and the gateway is
 * exactly the single-node one.
 */
#ifndef LG_CLUSTER_CLUSTER_H
#define LG_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>
#include "auth/keytable.h"
#include "core/config.h"

/**
 * Main thread, once, after lg_gate_init and before the workers start: resolve the Redis host, install the key table
 * and stats hooks, start the cluster thread. Returns 0 (also without a cluster section), or -1 with err (bad URL,
 * unresolvable host). Redis being down at start is not an error: the gateway starts degraded and reconnects.
 */
int lg_cluster_start(const lg_config_t *conf, char *err, size_t errlen);
/** SIGHUP: the cluster section is fixed for the life of the process; log a warning when the new config changes it. */
void lg_cluster_check_reload(const lg_config_t *conf);
/** Stop the cluster thread (SIGTERM path, after the workers stopped). */
void lg_cluster_shutdown(void);

/** 1 when a cluster section is configured. */
int lg_cluster_enabled(void);
/** 1 when shared state is usable right now (configured, subscribed, synced, and this worker's connection is up). */
int lg_cluster_up(void);

/** Worker thread: create this worker's Redis connection on its loop (no-op without a cluster). */
void lg_cluster_worker_attach(uv_loop_t *loop, unsigned worker_index);

/** Outcome of a shared admission. */
enum { LG_VERDICT_LOCAL = -1, LG_VERDICT_REFUSE = -2 };
typedef struct lg_cluster_verdict {
    int status;      /* LG_ADMIT_* (scripts.h); LG_VERDICT_LOCAL: Redis failed, decide on local limits (fail-open);
                        LG_VERDICT_REFUSE: Redis failed and the key's limits are fail-closed (503) */
    int64_t charged; /* TPM tokens taken on success */
    int64_t retry_after_ms, limit, remaining, reset_unix_ms;
} lg_cluster_verdict_t;

typedef void lg_cluster_admit_cb(void *arg, const lg_cluster_verdict_t *v);

enum {
    LG_CLUSTER_LOCAL = 0, /* decide locally now (no cluster, nothing shared to check, or Redis down + fail-open) */
    LG_CLUSTER_PENDING,   /* cb will be called once, on this worker's loop */
    LG_CLUSTER_REFUSE,    /* Redis down and this key's limit is fail-closed: answer 503 */
};

/**
 * Start the shared admission for key with est_tokens (an upper bound of the request's prompt estimate). Worker
 * thread. The key must stay referenced until cb ran.
 */
int lg_cluster_preadmit(lg_key_entry_t *key, int64_t est_tokens, lg_cluster_admit_cb *cb, void *arg);

/**
 * Make v the decision of the next lg_key_admit for key on this thread (the request handler runs synchronously
 * between begin and end). end returns what was charged and not consumed to Redis (a request refused before
 * admission, e.g. a 400).
 */
void lg_cluster_verdict_begin(lg_key_entry_t *key, const lg_cluster_verdict_t *v);
void lg_cluster_verdict_end(void);
/** Return an admission that will not run (client gone before the handler started). Worker thread. */
void lg_cluster_refund(lg_key_entry_t *key, const lg_cluster_verdict_t *v);

/** Count a request served on local limits because Redis was down (fail-open), or refused (fail-closed). */
void lg_cluster_count_degraded(int refused);

/** Any thread: tell every replica that keys changed (they re-sync within about a second). */
void lg_cluster_keys_changed(void);

/**
 * For short-lived processes (the CLI): connect to conf's Redis (blocking, bounded by connect_timeout_ms), publish that
 * keys changed, disconnect. 0 = published (or no cluster configured), -1 with err.
 */
int lg_cluster_publish_keys_changed_blocking(const lg_config_t *conf, char *err, size_t errlen);

/* ---- the shared-state seam for other features (response cache, sticky sessions) ---- */

typedef void lg_cluster_get_cb(void *arg, int found, const char *value, size_t len); /* found -1 = Redis failed */
/**
 * Worker thread. GET/SET (with TTL) of <prefix><ns>:<key>. Return -1 (no callback) when Redis is not usable: callers
 * then use their local state. Values are opaque bytes, at most 1 MiB.
 */
int lg_cluster_kv_get(const char *ns, const char *key, size_t key_len, lg_cluster_get_cb *cb, void *arg);
int lg_cluster_kv_set(const char *ns, const char *key, size_t key_len, const void *value, size_t len, uint32_t ttl_ms);

/** /health: {"enabled", "name", "replica", "redis": "up"|"down"|"connecting", "on_redis_down": {...}, counters}. */
json_t *lg_cluster_health_json(void);
/** This replica's id (host-pid-random), "" without a cluster. */
const char *lg_cluster_replica_id(void);

#endif
