/* SPDX-License-Identifier: MIT */
/*
 * Cost of one generation from catalog prices and an OpenAI-shaped usage
 * object, in integer pico-USD (no float drift). Cache reads, cache writes
 * and reasoning tokens use their own prices when the catalog has them.
 */
#ifndef LG_ROUTER_COST_H
#define LG_ROUTER_COST_H

#include <stdint.h>
#include <jansson.h>
#include "core/config.h"

typedef struct lg_usage {
    int64_t prompt_tokens;         /* all prompt tokens incl. cache reads and writes */
    int64_t completion_tokens;     /* incl. reasoning tokens */
    int64_t cached_tokens;         /* cache reads (subset of prompt) */
    int64_t cache_write_tokens;    /* cache writes of every lifetime (subset of prompt) */
    int64_t cache_write_1h_tokens; /* the 1-hour cache writes among them (subset of cache_write_tokens) */
    int64_t reasoning_tokens;      /* subset of completion */
} lg_usage_t;

/** A generation's cost in pico-USD, split as OpenRouter's cost_details reports it: prompt holds every input-side charge
 * (plain input, cache reads, 5-minute and 1-hour cache writes) plus the flat per-request price, completion the output
 * (incl. reasoning); total = prompt + completion. */
typedef struct lg_cost {
    int64_t prompt;
    int64_t completion;
    int64_t total;
} lg_cost_t;

/** What a route produces, for the zero-completion rule. */
typedef enum {
    LG_COST_GENERATION = 0, /* chat, completions, messages, responses: nothing generated = no charge */
    LG_COST_INPUT_ONLY = 1, /* embeddings: the input is the product, always charged */
} lg_cost_kind_t;

/** Read the counters from an OpenAI/OpenRouter usage object (missing members are 0). The 1-hour cache writes come from
 * prompt_tokens_details.cache_write_1h_tokens (llmgate's member; OpenRouter reports one cache_write_tokens). */
void lg_usage_from_json(const json_t *usage, lg_usage_t *u);
/** The cost of usage u at catalog prices; exact integer math. */
void lg_cost_compute(const lg_price_t *price, const lg_usage_t *u, lg_cost_kind_t kind, lg_cost_t *out);
/** Total cost of a generation (LG_COST_GENERATION) in pico-USD; zero-completion insurance: nothing generated, no charge. */
int64_t lg_cost_pico(const lg_price_t *price, const lg_usage_t *u);
/** usage.cost_details for cost c: {upstream_inference_cost: null, upstream_inference_prompt_cost,
 * upstream_inference_completions_cost} (both numbers, as OpenRouter's SDK requires); names are the Responses API's
 * (…_input_cost, …_output_cost) when responses_names is set. */
json_t *lg_cost_details_json(const lg_cost_t *c, int responses_names);
/** Pico-USD as a JSON real in USD. */
json_t *lg_cost_json(int64_t pico);

#endif
