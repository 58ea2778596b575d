/* SPDX-License-Identifier: MIT */
/*
 * Catalog objects in OpenRouter's published schema (Model, PublicEndpoint, pricing), built from a snapshot. Owns no
 * state; every function returns a new jansson reference (or a pointer into the snapshot's config).
 */
#ifndef LG_RUNTIME_CATALOG_JSON_H
#define LG_RUNTIME_CATALOG_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "runtime/snapshot.h"

/** A model's summary over its routable endpoints: the cheapest one (the listing shows its prices, as OpenRouter's does),
 * the largest context and output length. */
typedef struct lg_catalog_summary {
    const lg_endpoint_conf_t *best;
    uint32_t max_ctx, max_out;
} lg_catalog_summary_t;

/** Fills *out; returns out->best, NULL when no loaded provider serves the model (it is then hidden from the catalog). */
const lg_endpoint_conf_t *lg_catalog_summarize(const lg_snapshot_t *s, const lg_model_conf_t *m, lg_catalog_summary_t *out);
/** 1 when the endpoint's provider plugin is loaded. */
int lg_catalog_endpoint_routable(const lg_snapshot_t *s, const lg_endpoint_conf_t *ep);
/** The endpoint's supported parameters (its own list, else the model's); NULL-terminated, may be NULL. */
char *const *lg_catalog_endpoint_params(const lg_model_conf_t *m, const lg_endpoint_conf_t *ep);
/** 1 when the NULL-terminated list holds the len-byte string s. */
int lg_catalog_list_has(char *const *list, const char *s, size_t len);

/** OpenRouter's pricing object: decimal strings in USD per token (prompt, completion, request, image, cache read,
 * 5-minute and 1-hour cache writes, internal reasoning). */
json_t *lg_catalog_pricing_json(const lg_price_t *p);
/** {modality, input_modalities, output_modalities, tokenizer, instruct_type}. */
json_t *lg_catalog_architecture_json(const lg_model_conf_t *m);
/** The Model object (every member the schema requires, null where there is no value); NULL when nothing routes it. */
json_t *lg_catalog_model_json(const lg_snapshot_t *s, size_t mi);
/** The PublicEndpoint object of endpoint ei of model mi, with its health as `status` (0 healthy, -1 not). */
json_t *lg_catalog_endpoint_json(const lg_snapshot_t *s, size_t mi, size_t ei, int64_t now);

#endif
