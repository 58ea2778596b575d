/* SPDX-License-Identifier: MIT */
/*
 * Candidate selection: the requested model and its models[] fallbacks are
 * looked up in the catalog and every endpoint passes the hard
 * filters (routable on this worker, API kind, provider.only/ignore/order with
 * allow_fallbacks:false, max_price, require_parameters, context length,
 * service tiers, and the data policy: data_collection, zdr, enforce_distillable_text,
 * quantizations). Unknown ids are skipped while one resolves. The policy then orders what is left. An auto model
 * (catalog "auto": {"models": [...]}) stands for its listed models: their
 * endpoints are its candidates, each naming the model it serves.
 */
#ifndef LG_ROUTER_ROUTER_H
#define LG_ROUTER_ROUTER_H

#include <stddef.h>
#include <jansson.h>
#include "domain/candidate.h"
#include "domain/request.h"
#include "router/catalog.h"

/**
 * Fill cands/refs (up to LG_MAX_CANDIDATES). pstates is the worker's plugin instances (NULL entries are not routable).
 * Returns 0, LG_EMODEL (unknown model id; msg names it), LG_ENOENDPOINT or LG_ECONSTRAINT (404; *meta receives an
 * OpenRouter `availability` object with excluded_by reasons).
 */
int lg_router_candidates(const lg_catalog_t *cat, void *const *pstates, const lg_gen_request_t *r, lg_candidate_t *cands,
                         lg_route_ref_t *refs, size_t *num, json_t **meta, char *msg, size_t msglen);

/** The same, also appending to trace (a JSON array, or NULL) one object per catalog endpoint looked at: {model,
 * provider, upstream_model, eligible, filtered_by?} — filtered_by names the first filter that removed it. */
int lg_router_candidates_traced(const lg_catalog_t *cat, void *const *pstates, const lg_gen_request_t *r, lg_candidate_t *cands,
                                lg_route_ref_t *refs, size_t *num, json_t **meta, char *msg, size_t msglen, json_t *trace);

#endif
