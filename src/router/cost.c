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
    const json_t *cd = json_object_get(usage, "completion_tokens_details");
    u->reasoning_tokens = get_int(cd, "reasoning_tokens");
}

int64_t lg_cost_pico(const lg_price_t *p, const lg_usage_t *u)
{
    if (u->completion_tokens == 0)
        return 0; /* zero-completion insurance: nothing generated, nothing charged */
    int64_t cached = u->cached_tokens, writes = u->cache_write_tokens;
    if (cached + writes > u->prompt_tokens) /* inconsistent upstream counts: never charge negative input */
        cached = writes = 0;
    int64_t plain_in = u->prompt_tokens - cached - writes;
    int64_t read_price = p->cache_read != 0 ? p->cache_read : p->prompt;
    int64_t write_price = p->cache_write != 0 ? p->cache_write : p->prompt;
    int64_t reasoning = u->reasoning_tokens <= u->completion_tokens ? u->reasoning_tokens : 0;
    int64_t reasoning_price = p->reasoning != 0 ? p->reasoning : p->completion;
    return plain_in * p->prompt + cached * read_price + writes * write_price + (u->completion_tokens - reasoning) * p->completion +
           reasoning * reasoning_price + p->request;
}

json_t *lg_cost_json(int64_t pico)
{
    return json_real((double)pico / 1e12);
}
