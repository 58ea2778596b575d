/* SPDX-License-Identifier: MIT */
/*
 * Cost math (see cost.h).
 */
#include "router/cost.h"

static int64_t get_int(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
}

void lg_usage_from_json(const json_t *usage, lg_usage_t *u)
{
    u->prompt_tokens = get_int(usage, "prompt_tokens");
    u->completion_tokens = get_int(usage, "completion_tokens");
    const json_t *pd = json_object_get(usage, "prompt_tokens_details");
    u->cached_tokens = get_int(pd, "cached_tokens");
    u->cache_write_tokens = get_int(pd, "cache_write_tokens");
    u->cache_write_1h_tokens = get_int(pd, "cache_write_1h_tokens");
    const json_t *cd = json_object_get(usage, "completion_tokens_details");
    u->reasoning_tokens = get_int(cd, "reasoning_tokens");
}

void lg_cost_compute(const lg_price_t *p, const lg_usage_t *u, lg_cost_kind_t kind, lg_cost_t *out)
{
    out->prompt = out->completion = out->total = 0;
    if (kind == LG_COST_GENERATION && u->completion_tokens == 0)
        return; /* zero-completion insurance: nothing generated, nothing charged */
    int64_t cached = u->cached_tokens, writes = u->cache_write_tokens;
    if (cached + writes > u->prompt_tokens) /* inconsistent upstream counts: never charge negative input */
        cached = writes = 0;
    int64_t writes_1h = u->cache_write_1h_tokens <= writes ? u->cache_write_1h_tokens : 0;
    int64_t plain_in = u->prompt_tokens - cached - writes;
    int64_t read_price = p->cache_read != 0 ? p->cache_read : p->prompt;
    int64_t write_price = p->cache_write != 0 ? p->cache_write : p->prompt;
    int64_t write_1h_price = p->cache_write_1h != 0 ? p->cache_write_1h : write_price;
    int64_t reasoning = u->reasoning_tokens <= u->completion_tokens ? u->reasoning_tokens : 0;
    int64_t reasoning_price = p->reasoning != 0 ? p->reasoning : p->completion;
    out->prompt =
        plain_in * p->prompt + cached * read_price + (writes - writes_1h) * write_price + writes_1h * write_1h_price + p->request;
    out->completion = (u->completion_tokens - reasoning) * p->completion + reasoning * reasoning_price;
    out->total = out->prompt + out->completion;
}

int64_t lg_cost_pico(const lg_price_t *p, const lg_usage_t *u)
{
    lg_cost_t c;
    lg_cost_compute(p, u, LG_COST_GENERATION, &c);
    return c.total;
}

json_t *lg_cost_details_json(const lg_cost_t *c, int responses_names)
{
    return json_pack("{s:n,s:o,s:o}", "upstream_inference_cost",
                     responses_names ? "upstream_inference_input_cost" : "upstream_inference_prompt_cost", lg_cost_json(c->prompt),
                     responses_names ? "upstream_inference_output_cost" : "upstream_inference_completions_cost",
                     lg_cost_json(c->completion));
}

json_t *lg_cost_json(int64_t pico)
{
    return json_real((double)pico / 1e12);
}
