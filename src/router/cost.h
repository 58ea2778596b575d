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
    int64_t prompt_tokens;      /* all prompt tokens incl. cache reads and writes */
    int64_t completion_tokens;  /* incl. reasoning tokens */
    int64_t cached_tokens;      /* cache reads (subset of prompt) */
    int64_t cache_write_tokens; /* cache writes (subset of prompt) */
    int64_t reasoning_tokens;   /* subset of completion */
} lg_usage_t;

/** Read the counters from an OpenAI/OpenRouter usage object (missing members are 0). */
void lg_usage_from_json(const json_t *usage, lg_usage_t *u);
/** Cost in pico-USD; `produced` = 0 means nothing was generated (zero-completion insurance): no charge. */
int64_t lg_cost_pico(const lg_price_t *price, const lg_usage_t *u);
/** Pico-USD as a JSON real in USD. */
json_t *lg_cost_json(int64_t pico);

#endif
