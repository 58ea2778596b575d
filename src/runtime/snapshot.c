/* SPDX-License-Identifier: MIT */
/*
 * Snapshot construction: plugin loading, policy validation and stats handles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/catalog_json.h"
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

/* the unfiltered catalog, serialised once per snapshot */
static void build_models_json(lg_snapshot_t *s)
{
    json_t *data = json_array();
    for (size_t mi = 0; mi < s->conf->num_models; ++mi) {
        json_t *model = lg_catalog_model_json(s, mi);
        if (model != NULL)
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
