/* SPDX-License-Identifier: MIT */
/*
 * The server-side Lua scripts that make shared limits atomic across replicas
 * and workers. Each runs as one EVALSHA: Redis executes scripts one at a time,
 * so check-then-take over several keys needs no lock and no retry loop.
 * Time comes from the Redis server (TIME), so replicas with skewed clocks
 * share one notion of "now" for refill.
 *
 * Keys (all under the cluster name, with a hash tag so a Redis Cluster keeps
 * one API key's state in one slot):
 *   llmgate:<name>:{<key_id>}:rl            hash: r (RPM level), t (TPM level), ts (ms of last refill)
 *   llmgate:<name>:{<key_id>}:cr:<period>   integer: credit used (pico-USD) in the period starting at <period> (unix ms)
 *
 * admit  KEYS = rl, cr   ARGV = rpm, tpm, est_tokens, credit_limit_pico (-1 = none), seed_used_pico, credit_ttl_s
 *   → {status, retry_after_ms, limit, remaining, reset_unix_ms, used_pico}
 *     status 0 admitted (1 RPM token and est_tokens TPM taken), 1 refused rpm, 2 refused tpm, 3 refused credit.
 *     A missing credit counter is created from seed_used_pico (the replica's view from the ledger) first.
 * adjust KEYS = rl, cr   ARGV = rpm, tpm, rpm_delta, tpm_delta, cost_pico, seed_used_pico, credit_ttl_s
 *   → used_pico after adding cost_pico. Refunds/charges after the fact: TPM correction at settle (may leave debt),
 *     returning an admission whose request never ran.
 */
#ifndef LG_CLUSTER_SCRIPTS_H
#define LG_CLUSTER_SCRIPTS_H

#include "cluster/redis_conn.h"

enum { LG_ADMIT_OK = 0, LG_ADMIT_RPM = 1, LG_ADMIT_TPM = 2, LG_ADMIT_CREDIT = 3 };

extern lg_redis_script_t lg_script_admit;
extern lg_redis_script_t lg_script_adjust;

/** Compute the SHAs (once, before any worker uses them). */
void lg_cluster_scripts_init(void);

#endif
