/* SPDX-License-Identifier: MIT */
/*
 * Candidate lookup and OpenRouter's hard filters (provider.only / ignore / order
 * with allow_fallbacks:false, max_price, require_parameters; see router.h).
 */
#include <stdio.h>
#include <string.h>
#include "core/log.h"
#include "core/util.h"
#include "llmgate/plugin.h"
#include "router/router.h"

enum {
    EX_UNAVAILABLE = 1 << 0,
    EX_API = 1 << 1,
    EX_ALLOWED = 1 << 2,
    EX_MAX_PRICE = 1 << 3,
    EX_PARAMS = 1 << 4,
    EX_CONTEXT = 1 << 5,
    EX_TIER = 1 << 6,
    EX_TRAINING = 1 << 7, /* provider.data_collection "deny" */
    EX_ZDR = 1 << 8,
    EX_DISTILL = 1 << 9,
    EX_QUANT = 1 << 10,
};
#define EX_PRIVACY (EX_TRAINING | EX_ZDR | EX_DISTILL)
#define EX_CONSTRAINT (EX_MAX_PRICE | EX_QUANT)

static const struct {
    int bit;
    const char *name;
} exclusion_names[] = {{EX_UNAVAILABLE, "provider_unavailable"},
                       {EX_API, "unsupported_api"},
                       {EX_ALLOWED, "allowed_providers"},
                       {EX_MAX_PRICE, "max_price"},
                       {EX_PARAMS, "require_parameters"},
                       {EX_CONTEXT, "context_length"},
                       {EX_TIER, "service_tier"},
                       {EX_TRAINING, "data_policy:training"},
                       {EX_ZDR, "data_policy:zdr"},
                       {EX_DISTILL, "data_policy:distillable"},
                       {EX_QUANT, "quantization"}};

/* The request's data-policy filters, read once from the provider tree. */
typedef struct data_filters {
    int deny_collection, zdr, distillable;
    const json_t *quantizations; /* array of enum strings, NULL = any */
} data_filters_t;

static void data_filters_read(const json_t *provider, data_filters_t *f)
{
    const json_t *dc = provider != NULL ? json_object_get(provider, "data_collection") : NULL;
    f->deny_collection = json_is_string(dc) && strcmp(json_string_value(dc), "deny") == 0;
    f->zdr = provider != NULL && json_is_true(json_object_get(provider, "zdr"));
    f->distillable = provider != NULL && json_is_true(json_object_get(provider, "enforce_distillable_text"));
    f->quantizations = provider != NULL ? json_object_get(provider, "quantizations") : NULL;
    if (!json_is_array(f->quantizations))
        f->quantizations = NULL;
}

/** 0 or the EX_ bit that excludes ep. An endpoint that states no quantization counts as "unknown". */
static int data_filters_exclude(const data_filters_t *f, const lg_endpoint_conf_t *ep)
{
    if (f->deny_collection && ep->data_collection)
        return EX_TRAINING;
    if (f->zdr && !ep->zdr)
        return EX_ZDR;
    if (f->distillable && !ep->distillable)
        return EX_DISTILL;
    if (f->quantizations != NULL) {
        const char *q = ep->quantization != NULL ? ep->quantization : "unknown";
        size_t i;
        json_t *e;
        json_array_foreach(f->quantizations, i, e)
        {
            if (json_is_string(e) && strcmp(json_string_value(e), q) == 0)
                return 0;
        }
        return EX_QUANT;
    }
    return 0;
}

static int list_matches(const json_t *list, const char *provider)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (json_is_string(e) && lg_provider_slug_matches(json_string_value(e), provider))
            return 1;
    }
    return 0;
}

static int supports_all(char *const *supported, const lg_gen_request_t *r)
{
    if (supported == NULL)
        return 1; /* the catalog does not say: assume the provider takes what OpenAI takes */
    for (size_t i = 0; i < r->num_sent_params; ++i) {
        int found = 0;
        for (size_t k = 0; supported[k] != NULL && !found; ++k)
            found = strcmp(supported[k], r->sent_params[i]) == 0 ||
                    /* the two spellings of the output limit are one capability */
                    (strcmp(r->sent_params[i], "max_completion_tokens") == 0 && strcmp(supported[k], "max_tokens") == 0);
        if (!found)
            return 0;
    }
    return 1;
}

static uint32_t api_capability(int kind)
{
    return kind == LG_API_CHAT ? LG_CAP_CHAT : kind == LG_API_COMPLETIONS ? LG_CAP_COMPLETIONS : LG_CAP_EMBEDDINGS;
}

static const char *exclusion_name(int bit)
{
    for (size_t i = 0; i < sizeof(exclusion_names) / sizeof(exclusion_names[0]); ++i)
        if (exclusion_names[i].bit == bit)
            return exclusion_names[i].name;
    return "unknown";
}

/* the routing trace's view of one catalog endpoint: eligible, or the first filter that removed it */
static void trace_endpoint(json_t *trace, const char *model, const char *provider, const char *upstream, int bit)
{
    if (trace == NULL)
        return;
    json_t *e =
        json_pack("{s:s,s:s,s:s,s:b}", "model", model, "provider", provider, "upstream_model", upstream, "eligible", bit == 0);
    if (bit != 0)
        json_object_set_new(e, "filtered_by", json_string(exclusion_name(bit)));
    json_array_append_new(trace, e);
}

#define EXCLUDE(bit)                                                                                                               \
    {                                                                                                                              \
        excluded |= (bit);                                                                                                         \
        trace_endpoint(trace, model->id, pc->name, ep->upstream_model, (bit));                                                     \
        continue;                                                                                                                  \
    }

int lg_router_candidates(const lg_catalog_t *cat, void *const *pstates, const lg_gen_request_t *r, lg_candidate_t *cands,
                         lg_route_ref_t *refs, size_t *num, json_t **meta, char *msg, size_t msglen)
{
    return lg_router_candidates_traced(cat, pstates, r, cands, refs, num, meta, msg, msglen, NULL);
}

int lg_router_candidates_traced(const lg_catalog_t *cat, void *const *pstates, const lg_gen_request_t *r, lg_candidate_t *cands,
                                lg_route_ref_t *refs, size_t *num, json_t **meta, char *msg, size_t msglen, json_t *trace)
{
    const lg_config_t *conf = cat->conf;
    const json_t *only = r->provider != NULL ? json_object_get(r->provider, "only") : NULL;
    const json_t *ignore = r->provider != NULL ? json_object_get(r->provider, "ignore") : NULL;
    const json_t *order = r->provider != NULL ? json_object_get(r->provider, "order") : NULL;
    int64_t now = lg_now_ms();
    int excluded = 0;
    size_t n = 0;
    *meta = NULL;

    data_filters_t df;
    data_filters_read(r->provider, &df);

    /* An unknown id is skipped (and logged) as long as another id of the request resolves; OpenRouter's docs say
     * nothing about it, and failing a request for one stale fallback id helps nobody. */
    long model_idx[LG_MAX_MODELS + 1];
    size_t known = 0;
    for (size_t m = 0; m < r->num_models; ++m) {
        model_idx[m] = lg_catalog_find_model(cat, r->models[m], r->model_lens[m]);
        known += model_idx[m] >= 0;
    }
    if (known == 0) {
        json_t *requested = json_array();
        for (size_t m = 0; m < r->num_models; ++m)
            json_array_append_new(requested, json_stringn(r->models[m], r->model_lens[m]));
        *meta = json_pack("{s:{s:s,s:b,s:o}}", "availability", "code", "model_not_found", "retryable", 0, "requested_models",
                          requested);
        if (r->num_models == 1)
            snprintf(msg, msglen, "%.*s is not a valid model ID", (int)(r->model_lens[0] > 200 ? 200 : r->model_lens[0]),
                     r->models[0]);
        else
            snprintf(msg, msglen, "None of the requested models is a valid model ID (first: %.*s)",
                     (int)(r->model_lens[0] > 200 ? 200 : r->model_lens[0]), r->models[0]);
        return LG_EMODEL;
    }
    for (size_t m = 0; m < r->num_models && known != r->num_models; ++m)
        if (model_idx[m] < 0)
            LG_LOG(LG_LOG_INFO, "router", "models[]: skipping unknown model id \"%.*s\"",
                   (int)(r->model_lens[m] > 200 ? 200 : r->model_lens[m]), r->models[m]);

    /* An auto model (catalog "auto": {"models": [...]}) stands for its listed models: their endpoints are its
     * candidates, at its place in the request (model_index), each naming the model that serves it. */
    size_t num_sources = 0, source_pos[LG_MAX_CANDIDATES];
    long source_idx[LG_MAX_CANDIDATES];
    for (size_t m = 0; m < r->num_models; ++m) {
        if (model_idx[m] < 0) {
            if (trace != NULL)
                json_array_append_new(trace, json_pack("{s:s%,s:b,s:s}", "model", r->models[m], r->model_lens[m], "eligible", 0,
                                                       "filtered_by", "unknown_model"));
            continue;
        }
        const lg_model_conf_t *model = &conf->models[model_idx[m]];
        for (size_t k = 0; k < (model->num_auto_models != 0 ? model->num_auto_models : 1) && num_sources < LG_MAX_CANDIDATES; ++k) {
            source_pos[num_sources] = m;
            source_idx[num_sources++] = model->num_auto_models != 0 ? (long)model->auto_model_index[k] : model_idx[m];
        }
    }

    for (size_t s = 0; s < num_sources; ++s) {
        const size_t m = source_pos[s];
        const lg_model_conf_t *model = &conf->models[source_idx[s]];
        for (size_t ei = 0; ei < model->num_endpoints && n < LG_MAX_CANDIDATES; ++ei) {
            const lg_endpoint_conf_t *ep = &model->endpoints[ei];
            const lg_provider_conf_t *pc = &conf->providers[ep->provider_index];
            const lg_plugin_t *plugin = cat->plugins[ep->provider_index];
            if (plugin == NULL || pstates[ep->provider_index] == NULL) {
                EXCLUDE(EX_UNAVAILABLE);
            }
            uint32_t caps = plugin->provider->capabilities;
            if (!(caps & api_capability(r->kind)) || (r->stream && !(caps & LG_CAP_STREAM))) {
                EXCLUDE(EX_API);
            }
            if ((only != NULL && !list_matches(only, pc->name)) || (ignore != NULL && list_matches(ignore, pc->name)) ||
                (!r->allow_fallbacks && order != NULL && !list_matches(order, pc->name))) {
                EXCLUDE(EX_ALLOWED);
            }
            /* priority endpoints are opt-in through :nitro or an explicit order, flex endpoints through :floor */
            if (ep->tier != NULL && strcmp(ep->tier, "standard") != 0) {
                int explicit_order = order != NULL && list_matches(order, pc->name);
                int ok = explicit_order ||
                         (strcmp(ep->tier, "priority") == 0 && r->variant != NULL && strcmp(r->variant, "nitro") == 0) ||
                         (strcmp(ep->tier, "flex") == 0 && r->variant != NULL && strcmp(r->variant, "floor") == 0);
                if (!ok) {
                    EXCLUDE(EX_TIER);
                }
            }
            /* max_price is USD per million tokens; prices are pico-USD per token: per-million USD = pico / 1e6 */
            if ((r->max_price_prompt >= 0 && (double)ep->price.prompt / 1e6 > r->max_price_prompt + 1e-12) ||
                (r->max_price_completion >= 0 && (double)ep->price.completion / 1e6 > r->max_price_completion + 1e-12) ||
                (r->max_price_request >= 0 && (double)ep->price.request / 1e12 > r->max_price_request + 1e-12)) {
                EXCLUDE(EX_MAX_PRICE);
            }
            int data_ex = data_filters_exclude(&df, ep);
            if (data_ex != 0) {
                EXCLUDE(data_ex);
            }
            if (r->require_parameters &&
                !supports_all(ep->supported_params != NULL ? ep->supported_params : model->supported_params, r)) {
                EXCLUDE(EX_PARAMS);
            }
            uint32_t ctx = ep->context_length != 0 ? ep->context_length : model->context_length;
            if (ctx != 0 && r->prompt_tokens_estimate + (r->max_tokens > 0 ? r->max_tokens : 0) > (int64_t)ctx &&
                r->prompt_tokens_estimate > (int64_t)ctx / 2) {
                /* the estimate is rough (chars/4): only exclude when it clearly cannot fit */
                EXCLUDE(EX_CONTEXT);
            }
            if (ep->max_completion_tokens != 0 && r->max_tokens > (int64_t)ep->max_completion_tokens) {
                EXCLUDE(EX_CONTEXT);
            }
            const lg_endpoint_stats_t *st = cat->estats[source_idx[s]][ei];
            const lg_provider_stats_t *ps = cat->pstats[ep->provider_index];
            lg_candidate_t *c = &cands[n];
            int64_t last_fail = atomic_load_explicit(&st->last_failure_ms, memory_order_relaxed);
            memset(c, 0, sizeof(*c));
            c->id = (uint32_t)n + 1;
            c->provider = pc->name;
            c->model = model->id;
            c->upstream_model = ep->upstream_model;
            c->model_index = (uint32_t)m;
            c->price_prompt = (double)ep->price.prompt / 1e12;
            c->price_completion = (double)ep->price.completion / 1e12;
            c->weight = ep->weight;
            c->tier = ep->tier != NULL ? ep->tier : "standard";
            c->context_length = ctx;
            c->healthy = lg_stats_healthy(st, now);
            c->outage_age_s = last_fail == 0 ? -1 : (double)(now - last_fail) / 1000.0;
            c->latency_ms = lg_stats_get(&st->latency_ewma_bits);
            c->ttft_ms = lg_stats_get(&st->ttft_ewma_bits);
            c->throughput_tps = lg_stats_get(&st->tput_ewma_bits);
            c->error_rate = lg_stats_get(&st->error_ewma_bits);
            c->consecutive_failures = atomic_load_explicit(&st->consecutive_failures, memory_order_relaxed);
            c->in_flight = atomic_load_explicit(&ps->in_flight, memory_order_relaxed);
            c->queued = atomic_load_explicit(&ps->queued, memory_order_relaxed);
            c->max_concurrent = pc->max_concurrent;
            refs[n].model_index = (uint32_t)source_idx[s];
            refs[n].endpoint_index = (uint32_t)ei;
            refs[n].provider_index = (uint32_t)ep->provider_index;
            trace_endpoint(trace, model->id, pc->name, ep->upstream_model, 0);
            ++n;
        }
    }
    *num = n;
    if (n != 0)
        return 0;

    json_t *excluded_by = json_array(), *requested = json_array();
    for (size_t i = 0; i < sizeof(exclusion_names) / sizeof(exclusion_names[0]); ++i)
        if (excluded & exclusion_names[i].bit)
            json_array_append_new(excluded_by, json_string(exclusion_names[i].name));
    for (size_t m = 0; m < r->num_models; ++m)
        json_array_append_new(requested, json_stringn(r->models[m], r->model_lens[m]));
    /* the code names the filter family when one family removed everything (§9 availability codes) */
    int err = excluded != 0 && (excluded & ~EX_CONSTRAINT) == 0 ? LG_ECONSTRAINT : LG_ENOENDPOINT;
    int privacy = excluded != 0 && (excluded & ~EX_PRIVACY) == 0;
    const char *code = err == LG_ECONSTRAINT ? "constraint_filtered" : privacy ? "privacy_restricted" : "no_endpoints";
    *meta = json_pack("{s:{s:s,s:b,s:o,s:o}}", "availability", "code", code, "retryable", 0, "requested_models", requested,
                      "excluded_by", excluded_by);
    if (err == LG_ECONSTRAINT && excluded == EX_MAX_PRICE)
        snprintf(msg, msglen, "No endpoints found matching your price constraints (provider.max_price)");
    else if (err == LG_ECONSTRAINT)
        snprintf(msg, msglen, "No endpoints found matching your price and quantization constraints");
    else if (privacy)
        snprintf(msg, msglen,
                 "No endpoints found matching your data policy (provider.data_collection, zdr, enforce_distillable_text)");
    else if (excluded == EX_UNAVAILABLE)
        snprintf(msg, msglen, "No endpoints available: every provider of this model is disabled or failed to load");
    else
        snprintf(msg, msglen, "No endpoints found that satisfy the request's routing constraints");
    return err;
}

long lg_catalog_find_model(const lg_catalog_t *c, const char *id, size_t len)
{
    size_t lo = 0, hi = c->conf->num_models;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *mid_id = c->conf->models[c->model_sorted[mid]].id;
        int cmp = strncmp(mid_id, id, len);
        if (cmp == 0 && mid_id[len] != '\0')
            cmp = 1;
        if (cmp == 0)
            return (long)c->model_sorted[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
