/* SPDX-License-Identifier: MIT */
/*
 * OpenRouter's soft performance preferences (provider.preferred_min_throughput, provider.preferred_max_latency):
 * applied to a finished attempt plan, they move the endpoints whose live stats miss a threshold to the end, in their
 * order, without removing any.
 */
#ifndef LG_ROUTER_PREFERENCES_H
#define LG_ROUTER_PREFERENCES_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "domain/candidate.h"

/**
 * Stable-partition plan (1-based candidate ids) so that candidates meeting the preferences come first. provider is the
 * request's validated preferences tree (NULL = nothing to do). Returns how many entries were moved to the end.
 */
size_t lg_router_prefer(const json_t *provider, const lg_candidate_t *cands, uint32_t *plan, size_t len);

/** 1 if candidate c misses provider's performance preferences (the same test lg_router_prefer applies). */
int lg_router_below_preferences(const json_t *provider, const lg_candidate_t *c);

#endif
