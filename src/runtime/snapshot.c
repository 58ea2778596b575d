/* SPDX-License-Identifier: MIT */
/*
 * Snapshot construction: plugin loading, policy validation, stats handles and
 * the cached /v1/models document (OpenRouter Model schema).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "policy/policy.h"
#include "router/catalog.h"
#include "runtime/snapshot.h"

static const lg_snapshot_t *sort_ctx;

static int cmp_model(const void *a, const void *b)
{
    return strcmp(sort_ctx->conf->models[*(const size_t *)a].id, sort_ctx->conf->models[*(const size_t *)b].id);
}

static json_t *string_array(char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list != NULL && list[i] != NULL; ++i)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

/** Price in pico-USD per token → OpenRouter's decimal string in USD per token, exact. */
static json_t *price_string(int64_t pico)
{
    char buf[48];
    int64_t whole = pico / 1000000000000LL, frac = pico % 1000000000000LL;
    if (frac == 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)whole);
    } else {
        int n = snprintf(buf, sizeof(buf), "%lld.%012lld", (long long)whole, (long long)frac);
        while (n > 0 && buf[n - 1] == '0')
            buf[--n] = '\0';
    }
    return json_string(buf);
}

static int endpoint_routable(const lg_snapshot_t *s, const lg_endpoint_conf_t *ep)
{
    return s->plugins[ep->provider_index] != NULL;
}

static void build_models_json(lg_snapshot_t *s)
{
    json_t *data = json_array();
    for (size_t mi = 0; mi < s->conf->num_models; ++mi) {
        const lg_model_conf_t *m = &s->conf->models[mi];
        const lg_endpoint_conf_t *best = NULL;
        uint32_t max_ctx = 0, max_out = 0;
        for (size_t ei = 0; ei < m->num_endpoints; ++ei) {
            const lg_endpoint_conf_t *ep = &m->endpoints[ei];
            if (!endpoint_routable(s, ep))
                continue;
            /* pricing shows the cheapest routable endpoint, as OpenRouter's listing does */
            if (best == NULL || ep->price.prompt + ep->price.completion < best->price.prompt + best->price.completion)
                best = ep;
            uint32_t ctx = ep->context_length != 0 ? ep->context_length : m->context_length;
            if (ctx > max_ctx)
                max_ctx = ctx;
            if (ep->max_completion_tokens > max_out)
                max_out = ep->max_completion_tokens;
        }
        if (best == NULL)
            continue; /* no enabled provider serves it: hide, it cannot be routed */
        if (max_ctx == 0)
            max_ctx = m->context_length;
        char **params = best->supported_params != NULL ? best->supported_params : m->supported_params;
        char links[512];
        snprintf(links, sizeof(links), "/api/v1/models/%s/endpoints", m->id);
        json_t *pricing =
            json_pack("{s:o,s:o,s:o,s:s}", "prompt", price_string(best->price.prompt), "completion",
                      price_string(best->price.completion), "request", price_string(best->price.request), "image", "0");
        if (best->price.cache_read != 0)
            json_object_set_new(pricing, "input_cache_read", price_string(best->price.cache_read));
        if (best->price.cache_write != 0)
            json_object_set_new(pricing, "input_cache_write", price_string(best->price.cache_write));
        if (best->price.reasoning != 0)
            json_object_set_new(pricing, "internal_reasoning", price_string(best->price.reasoning));
        json_t *model = json_pack(
            "{s:s,s:s,s:s,s:I,s:s,s:i,s:{s:s,s:o,s:o,s:s,s:n},s:o,s:{s:i,s:o,s:b},s:n,s:o,s:n,s:{s:s}}", "id", m->id,
            "canonical_slug", m->id, "name", m->name != NULL ? m->name : m->id, "created", (json_int_t)m->created, "description",
            m->description != NULL ? m->description : "", "context_length", (int)max_ctx, "architecture", "modality",
            m->modality != NULL ? m->modality : "text->text", "input_modalities", string_array(m->input_modalities),
            "output_modalities", string_array(m->output_modalities), "tokenizer", m->tokenizer != NULL ? m->tokenizer : "Other",
            "instruct_type", "pricing", pricing, "top_provider", "context_length", (int)max_ctx, "max_completion_tokens",
            max_out != 0 ? json_integer(max_out) : json_null(), "is_moderated", 0, "per_request_limits", "supported_parameters",
            string_array(params), "default_parameters", "links", "details", links);
        json_array_append_new(data, model);
    }
    json_t *doc = json_pack("{s:o}", "data", data);
    s->models_json = json_dumps(doc, JSON_COMPACT);
    s->models_json_len = strlen(s->models_json);
    json_decref(doc);
}

lg_snapshot_t *lg_snapshot_create(lg_config_t *conf, uint64_t generation, char *err, size_t errlen)
{
    lg_snapshot_t *s = lg_malloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    atomic_init(&s->refcnt, 1);
    s->generation = generation;
    s->conf = conf;
    s->plugins = lg_calloc(conf->num_providers + 1, sizeof(*s->plugins));
    s->pstats = lg_calloc(conf->num_providers + 1, sizeof(*s->pstats));
    s->estats = lg_calloc(conf->num_models + 1, sizeof(*s->estats));

    for (size_t i = 0; i < conf->num_providers; ++i) {
        const lg_provider_conf_t *p = &conf->providers[i];
        s->pstats[i] = lg_stats_provider(p->name);
        if (!p->enabled)
            continue;
        char path[4096], perr[512];
        int rc = lg_plugin_resolve(p->plugin, conf->plugin_dir, path, sizeof(path));
        if (rc == 0)
            rc = lg_plugin_load(path, &s->plugins[i], perr, sizeof(perr));
        else
            snprintf(perr, sizeof(perr), "plugin \"%s\" not found", p->plugin);
        if (rc != 0) {
            s->plugins[i] = NULL;
            if (p->required) {
                snprintf(err, errlen, "providers[%zu] (%s): %s", i, p->name, perr);
                lg_snapshot_unref(s);
                return NULL;
            }
            LG_LOG(LG_LOG_WARN, "config", "provider %s disabled: %s", p->name, perr);
        }
    }
    for (size_t mi = 0; mi < conf->num_models; ++mi) {
        const lg_model_conf_t *m = &conf->models[mi];
        s->estats[mi] = lg_calloc(m->num_endpoints + 1, sizeof(**s->estats));
        for (size_t ei = 0; ei < m->num_endpoints; ++ei)
            s->estats[mi][ei] =
                lg_stats_endpoint(conf->providers[m->endpoints[ei].provider_index].name, m->endpoints[ei].upstream_model);
    }
    s->model_metric_id = lg_malloc((conf->num_models + 1) * sizeof(int));
    s->provider_metric_id = lg_malloc((conf->num_providers + 1) * sizeof(int));
    for (size_t i = 0; i < conf->num_models; ++i)
        s->model_metric_id[i] = lg_metrics_model_id(conf->models[i].id);
    for (size_t i = 0; i < conf->num_providers; ++i)
        s->provider_metric_id[i] = lg_metrics_provider_id(conf->providers[i].name);
    s->model_sorted = lg_malloc((conf->num_models + 1) * sizeof(size_t));
    for (size_t i = 0; i < conf->num_models; ++i)
        s->model_sorted[i] = i;
    sort_ctx = s; /* main thread only */
    qsort(s->model_sorted, conf->num_models, sizeof(size_t), cmp_model);
    s->catalog = (lg_catalog_t){.conf = conf,
                                .plugins = s->plugins,
                                .pstats = s->pstats,
                                .estats = (lg_endpoint_stats_t *const *const *)s->estats,
                                .model_sorted = s->model_sorted};

    /* compile every policy once here so a broken policy file rejects the (re)load instead of failing requests */
    char perr[512];
    lg_policy_vm_t *vm = lg_policy_vm_create(conf, 1, perr, sizeof(perr));
    if (vm == NULL) {
        snprintf(err, errlen, "%s", perr);
        lg_snapshot_unref(s);
        return NULL;
    }
    lg_policy_vm_destroy(vm);
    build_models_json(s);
    return s;
}

lg_snapshot_t *lg_snapshot_ref(lg_snapshot_t *s)
{
    atomic_fetch_add_explicit(&s->refcnt, 1, memory_order_relaxed);
    return s;
}

void lg_snapshot_unref(lg_snapshot_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refcnt, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; s->plugins != NULL && i < s->conf->num_providers; ++i)
        if (s->plugins[i] != NULL)
            lg_plugin_unload(s->plugins[i]);
    for (size_t i = 0; s->estats != NULL && i < s->conf->num_models; ++i)
        free(s->estats[i]);
    free(s->plugins);
    free(s->pstats);
    free(s->estats);
    free(s->model_sorted);
    free(s->model_metric_id);
    free(s->provider_metric_id);
    free(s->models_json);
    lg_config_free(s->conf);
    free(s);
}

long lg_snapshot_find_model(const lg_snapshot_t *s, const char *id, size_t len)
{
    return lg_catalog_find_model(&s->catalog, id, len);
}
