/* SPDX-License-Identifier: MIT */
/*
 * Routing policy VM: one sandboxed LuaJIT state per worker running the Lua
 * policies named in the config (policies/<name>.lua). The router hands it the
 * request and the candidates that passed the hard filters; the policy returns
 * the ordered attempt plan and decides what to do after an error. A broken,
 * runaway or garbage-returning policy never fails a request: the caller gets
 * an error code and uses lg_policy_builtin_plan instead.
 */
#ifndef LG_POLICY_POLICY_H
#define LG_POLICY_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/config.h"
#include "domain/candidate.h"

/** Request view for policies (Lua `req`). All pointers borrowed for the duration of the call. */
typedef struct lg_policy_req {
    const char *model;         /* requested model (variant stripped) */
    const char *const *models; /* fallback models (not including model), may be NULL */
    size_t num_models;
    const char *variant;    /* "nitro", "floor", or NULL */
    const json_t *provider; /* client's `provider` preferences object, or NULL */
    const char *sort;       /* effective sort ("price", "throughput", "latency") from provider.sort or variant; NULL */
    int stream;
    int has_tools;
    int64_t max_tokens;              /* 0 = not set */
    int64_t prompt_tokens;           /* estimate */
    const char *key_id;              /* NULL when auth is off */
    const char *session_id;          /* NULL when absent (body session_id, else x-session-id / x-claude-code-session-id) */
    uint32_t session_endpoint;       /* candidate id the session is stuck to (healthy, eligible), 0 = none */
    const char *const *header_names; /* exposed headers (config routing.expose_headers) present on the request */
    const char *const *header_values;
    size_t num_headers;
} lg_policy_req_t;

typedef struct lg_policy_attempt {
    uint32_t n;     /* 1-based attempt number */
    uint32_t id;    /* candidate id of the failed attempt */
    uint32_t tries; /* attempts made on this candidate so far */
} lg_policy_attempt_t;

typedef struct lg_policy_error {
    int status;             /* upstream HTTP status, 0 for transport errors */
    const char *error_type; /* OpenRouter error_type, e.g. "rate_limit_exceeded" */
    int retryable;
    int64_t retry_after_ms;    /* -1 = none */
    const char *provider_code; /* may be "" */
} lg_policy_error_t;

typedef struct lg_policy_result {
    int ok;
    uint32_t id; /* candidate that served it (0 if none) */
    uint32_t attempts;
    int status;
    const char *error_type; /* NULL on success */
    int64_t prompt_tokens, completion_tokens;
    double ttft_ms, latency_ms;
} lg_policy_result_t;

typedef enum { LG_POLICY_RETRY = 0, LG_POLICY_NEXT = 1, LG_POLICY_STOP = 2 } lg_policy_action_t;

typedef struct lg_policy_vm lg_policy_vm_t;

/**
 * Create a worker's VM and load every policy of conf (conf->policies plus the shipped ones it names). seed seeds
 * lg.random(). Returns NULL with a message naming the policy file on syntax errors, a missing `select`, non-function
 * hooks or a bad VERSION. The VM keeps no pointer into conf after return except policy names.
 */
lg_policy_vm_t *lg_policy_vm_create(const lg_config_t *conf, uint64_t seed, char *err, size_t errlen);
void lg_policy_vm_destroy(lg_policy_vm_t *vm);

/** 1 if the VM has a policy of this name. */
int lg_policy_exists(lg_policy_vm_t *vm, const char *policy);

/**
 * Run policy.select. On success writes up to plan_cap candidate ids to plan, sets *plan_len, returns 0. On a policy
 * error, runaway loop (instruction budget), memory cap or invalid plan (non-array, unknown id) returns LG_EPOLICY with
 * the reason in err (the error is also logged, rate-limited); the caller then uses lg_policy_builtin_plan.
 */
int lg_policy_select(lg_policy_vm_t *vm, const char *policy, const lg_policy_req_t *req, const lg_candidate_t *cands,
                     size_t num_cands, uint32_t *plan, size_t plan_cap, size_t *plan_len, char *err, size_t errlen);

/** Run policy.on_error if present; otherwise (or on policy failure) the OpenRouter default: retryable → NEXT, else STOP. */
lg_policy_action_t lg_policy_on_error(lg_policy_vm_t *vm, const char *policy, const lg_policy_req_t *req,
                                      const lg_policy_attempt_t *attempt, const lg_policy_error_t *error);

/** Run policy.on_done if present; errors are logged and ignored. */
void lg_policy_on_done(lg_policy_vm_t *vm, const char *policy, const lg_policy_req_t *req, const lg_policy_result_t *res);

/**
 * The built-in order used when a policy fails: group by model_index (one group when provider.sort has partition
 * "none" and a sort is set); within a group provider.order entries first (in that order; a base slug matches
 * "<slug>/…"), then by req->sort (price asc / throughput desc / latency asc, unknown latency last) or else stable first
 * (healthy and no failure in the last 30 s) and price ascending; ties keep the candidate order. Pure C,
 * deterministic. Returns the plan length.
 */
size_t lg_policy_builtin_plan(const lg_policy_req_t *req, const lg_candidate_t *cands, size_t num_cands, uint32_t *plan,
                              size_t plan_cap);

/** Counters for metrics/health: policy errors, budget kills. */
uint64_t lg_policy_error_count(const lg_policy_vm_t *vm);

/** lg.log lines dropped by the per-policy rate limit, all workers together (metrics). Thread-safe. */
uint64_t lg_policy_log_dropped_total(void);

#endif
