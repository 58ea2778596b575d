/* SPDX-License-Identifier: MIT */
/*
 * Candidates: the endpoints that can serve a request, as the router finds
 * them in the catalog and as the policy orders them. An attempt plan is an
 * ordered array of candidate ids (1-based positions in the candidate array),
 * walked by the attempt loop. Shared by router, policy and the pipeline.
 */
#ifndef LG_DOMAIN_CANDIDATE_H
#define LG_DOMAIN_CANDIDATE_H

#include <stdint.h>

#define LG_MAX_CANDIDATES 64 /* per request, over the model and its models[] fallbacks */

/** One routable endpoint as the router annotates it and the policy sees it (Lua table fields of the same names). */
typedef struct lg_candidate {
    uint32_t id;                /* 1-based id the policy returns in its plan (index + 1 into the array) */
    const char *provider;       /* provider slug */
    const char *model;          /* public model id this endpoint serves */
    const char *upstream_model; /* provider-side model name */
    uint32_t model_index;       /* 0 = the requested model, 1.. = position in models[] fallbacks */
    double price_prompt;        /* USD per token */
    double price_completion;    /* USD per token */
    double weight;              /* catalog weight, default 1 */
    const char *tier;           /* "standard", "priority", "flex" */
    uint32_t context_length;
    int healthy;           /* 0 while marked unhealthy (cooldown) */
    double outage_age_s;   /* seconds since the last failure, -1 = never failed */
    double latency_ms;     /* EWMA of total latency, 0 = no data */
    double ttft_ms;        /* EWMA of time to first token, 0 = no data */
    double throughput_tps; /* EWMA of output tokens per second, 0 = no data */
    double error_rate;     /* EWMA of failures in [0,1] */
    uint32_t consecutive_failures;
    uint32_t in_flight;
    uint32_t queued;
    uint32_t max_concurrent; /* 0 = unlimited */
} lg_candidate_t;

/** Where a candidate lives in the snapshot's catalog (parallel to the candidate array). */
typedef struct lg_route_ref {
    uint32_t model_index; /* into conf->models */
    uint32_t endpoint_index;
    uint32_t provider_index;
} lg_route_ref_t;

/** 1 if provider slug matches a routing list entry (exact, or entry is a base slug "x" of "x/variant"). */
int lg_provider_slug_matches(const char *entry, const char *provider);

#endif
