/* SPDX-License-Identifier: MIT */
/*
 * Catalog objects in OpenRouter's published schema, built from a snapshot: Model, PublicEndpoint and the pricing object
 * (strings in USD per token, exact). Shared by the HTTP catalog routes and the MCP list_models tool.
 */
#include <stdio.h>
#include <string.h>
#include "runtime/catalog_json.h"

/** Price in pico-USD per token → OpenRouter's decimal string in USD per token, exact. */
static json_t *price_string(int64_t pico)
{
    char buf[48];
    const char *sign = pico < 0 ? "-" : "";
    uint64_t v = pico < 0 ? (uint64_t)(-pico) : (uint64_t)pico;
    uint64_t whole = v / 1000000000000ULL, frac = v % 1000000000000ULL;
    if (frac == 0) {
        snprintf(buf, sizeof(buf), "%s%llu", sign, (unsigned long long)whole);
    } else {
        int n = snprintf(buf, sizeof(buf), "%s%llu.%012llu", sign, (unsigned long long)whole, (unsigned long long)frac);
        while (n > 0 && buf[n - 1] == '0')
            buf[--n] = '\0';
    }
    return json_string(buf);
}

json_t *lg_catalog_pricing_json(const lg_price_t *p)
{
    json_t *o = json_pack("{s:o,s:o,s:o,s:s}", "prompt", price_string(p->prompt), "completion", price_string(p->completion),
                          "request", price_string(p->request), "image", "0");
    if (p->cache_read != 0)
        json_object_set_new(o, "input_cache_read", price_string(p->cache_read));
    if (p->cache_write != 0)
        json_object_set_new(o, "input_cache_write", price_string(p->cache_write));
    if (p->cache_write_1h != 0 || p->cache_write != 0)
        json_object_set_new(o, "input_cache_write_1h", price_string(p->cache_write_1h != 0 ? p->cache_write_1h : p->cache_write));
    if (p->reasoning != 0)
        json_object_set_new(o, "internal_reasoning", price_string(p->reasoning));
    return o;
}

static json_t *string_array(char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list != NULL && list[i] != NULL; ++i)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

int lg_catalog_list_has(char *const *list, const char *s, size_t len)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; ++i)
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return 1;
    return 0;
}

int lg_catalog_endpoint_routable(const lg_snapshot_t *s, const lg_endpoint_conf_t *ep)
{
    return s->plugins[ep->provider_index] != NULL;
}

char *const *lg_catalog_endpoint_params(const lg_model_conf_t *m, const lg_endpoint_conf_t *ep)
{
    return ep->supported_params != NULL ? ep->supported_params : m->supported_params;
}

static uint32_t endpoint_context(const lg_model_conf_t *m, const lg_endpoint_conf_t *ep)
{
    return ep->context_length != 0 ? ep->context_length : m->context_length;
}

static void summarize_endpoints(const lg_snapshot_t *s, const lg_model_conf_t *m, lg_catalog_summary_t *out)
{
    for (size_t ei = 0; ei < m->num_endpoints; ++ei) {
        const lg_endpoint_conf_t *ep = &m->endpoints[ei];
        if (!lg_catalog_endpoint_routable(s, ep))
            continue;
        if (out->best == NULL || ep->price.prompt + ep->price.completion < out->best->price.prompt + out->best->price.completion)
            out->best = ep;
        uint32_t ctx = endpoint_context(m, ep);
        if (ctx > out->max_ctx)
            out->max_ctx = ctx;
        if (ep->max_completion_tokens > out->max_out)
            out->max_out = ep->max_completion_tokens;
    }
    if (out->max_ctx == 0)
        out->max_ctx = m->context_length;
}

const lg_endpoint_conf_t *lg_catalog_summarize(const lg_snapshot_t *s, const lg_model_conf_t *m, lg_catalog_summary_t *out)
{
    memset(out, 0, sizeof(*out));
    /* an auto model is served by its listed models: listed while one of them is, with their largest context */
    for (size_t k = 0; k < m->num_auto_models; ++k)
        summarize_endpoints(s, &s->conf->models[m->auto_model_index[k]], out);
    summarize_endpoints(s, m, out);
    return out->best;
}

json_t *lg_catalog_architecture_json(const lg_model_conf_t *m)
{
    return json_pack("{s:s,s:o,s:o,s:s,s:n}", "modality", m->modality != NULL ? m->modality : "text->text", "input_modalities",
                     string_array(m->input_modalities), "output_modalities", string_array(m->output_modalities), "tokenizer",
                     m->tokenizer != NULL ? m->tokenizer : "Other", "instruct_type");
}

static json_t *nullable_uint(uint32_t v)
{
    return v != 0 ? json_integer(v) : json_null();
}

json_t *lg_catalog_model_json(const lg_snapshot_t *s, size_t mi)
{
    const lg_model_conf_t *m = &s->conf->models[mi];
    lg_catalog_summary_t sum;
    if (lg_catalog_summarize(s, m, &sum) == NULL)
        return NULL;
    char details[512];
    snprintf(details, sizeof(details), "/api/v1/models/%s/endpoints", m->id);
    json_t *model =
        json_pack("{s:s,s:s,s:s,s:I,s:s,s:o,s:o,s:o,s:{s:o,s:o,s:b},s:n,s:o,s:n,s:n,s:{s:s}}", "id", m->id, "canonical_slug", m->id,
                  "name", m->name != NULL ? m->name : m->id, "created", (json_int_t)m->created, "description",
                  m->description != NULL ? m->description : "", "context_length", nullable_uint(sum.max_ctx), "architecture",
                  lg_catalog_architecture_json(m), "pricing", lg_catalog_pricing_json(&sum.best->price), "top_provider",
                  "context_length", nullable_uint(sum.max_ctx), "max_completion_tokens", nullable_uint(sum.max_out), "is_moderated",
                  0, "per_request_limits", "supported_parameters", string_array(lg_catalog_endpoint_params(m, sum.best)),
                  "default_parameters", "supported_voices", "links", "details", details);
    if (m->num_auto_models != 0 && model != NULL) /* the price depends on the model picked per request: OpenRouter's "-1" */
        json_object_set_new(model, "pricing", json_pack("{s:s,s:s}", "prompt", "-1", "completion", "-1"));
    return model;
}

json_t *lg_catalog_endpoint_json(const lg_snapshot_t *s, size_t mi, size_t ei, int64_t now)
{
    const lg_model_conf_t *m = &s->conf->models[mi];
    const lg_endpoint_conf_t *ep = &m->endpoints[ei];
    const char *prov = s->conf->providers[ep->provider_index].name;
    char *const *params = lg_catalog_endpoint_params(m, ep);
    int tools = lg_catalog_list_has(params, "tools", 5) || lg_catalog_list_has(params, "tool_choice", 11);
    char name[512];
    snprintf(name, sizeof(name), "%s | %s", prov, m->id);
    uint32_t ctx = endpoint_context(m, ep);
    /* latency/throughput percentiles and uptime windows are not tracked (the gateway keeps EWMAs, see the admin
     * providers view): null, as OpenRouter sends for endpoints without data */
    json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?,s:I,s:o,s:o,s:o,s:o,s:b,s:{s:b,s:b,s:b,s:b},s:b,s:n,s:n,s:n,s:n,s:n,s:i}",
                          "name", name, "model_id", m->id, "model_name", m->name != NULL ? m->name : m->id, "provider_name", prov,
                          "tag", prov, "quantization", ep->quantization, "context_length", (json_int_t)ctx, "max_prompt_tokens",
                          nullable_uint(ctx), "max_completion_tokens", nullable_uint(ep->max_completion_tokens), "pricing",
                          lg_catalog_pricing_json(&ep->price), "supported_parameters", string_array(params),
                          "supports_implicit_caching", 0, "supports_tool_choice", "auto", tools, "function", tools, "none", tools,
                          "required", tools, "supports_voice_cloning", 0, "uptime_last_5m", "uptime_last_30m", "uptime_last_1d",
                          "latency_last_30m", "throughput_last_30m", "status", lg_stats_healthy(s->estats[mi][ei], now) ? 0 : -1);
    return e;
}
