/* SPDX-License-Identifier: MIT */
/*
 * A config snapshot: the validated config plus everything derived from it
 * that workers read (loaded plugins, stats handles, the /v1/models body).
 * Built on the main thread; read-only afterwards; reference counted so a
 * reload never pulls it from under in-flight requests.
 */
#ifndef LG_RUNTIME_SNAPSHOT_H
#define LG_RUNTIME_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "core/config.h"
#include "plugin/loader.h"
#include "router/catalog.h"
#include "router/stats.h"

typedef struct lg_snapshot {
    _Atomic int refcnt;
    uint64_t generation;
    lg_config_t *conf;
    lg_plugin_t **plugins;         /* [num_providers]; NULL = disabled or failed to load (not routable) */
    lg_provider_stats_t **pstats;  /* [num_providers] */
    lg_endpoint_stats_t ***estats; /* [num_models][num_endpoints] */
    char *models_json;             /* {"data":[Model...]}: every routable model, unfiltered (MCP list_models) */
    size_t models_json_len;
    size_t *model_sorted;    /* model indices sorted by id, for bsearch */
    int *model_metric_id;    /* [num_models] label ids in the metrics registry */
    int *provider_metric_id; /* [num_providers] */
    lg_catalog_t catalog;    /* the router's view of conf, plugins, stats and model_sorted above */
} lg_snapshot_t;

/** Build a snapshot; takes ownership of conf (freed on failure too). Loads plugins (a required provider whose plugin fails
 * is an error; others are logged and left unroutable) and compiles every policy once to validate it. */
lg_snapshot_t *lg_snapshot_create(lg_config_t *conf, uint64_t generation, char *err, size_t errlen);
lg_snapshot_t *lg_snapshot_ref(lg_snapshot_t *s);
void lg_snapshot_unref(lg_snapshot_t *s);

/** Model index by public id (not NUL-terminated), or -1. */
long lg_snapshot_find_model(const lg_snapshot_t *s, const char *id, size_t len);

#endif
