/* SPDX-License-Identifier: MIT */
/*
 * The routing catalog: what the router reads to find candidates — the
 * validated config, the loaded plugin of each provider and the live stats
 * handles. A borrowed, read-only view; the config snapshot (runtime layer,
 * above the router) owns everything it points to and embeds one.
 */
#ifndef LG_ROUTER_CATALOG_H
#define LG_ROUTER_CATALOG_H

#include <stddef.h>
#include "core/config.h"
#include "plugin/loader.h"
#include "router/stats.h"

typedef struct lg_catalog {
    const lg_config_t *conf;
    lg_plugin_t *const *plugins;               /* [num_providers]; NULL = disabled or failed to load (not routable) */
    lg_provider_stats_t *const *pstats;        /* [num_providers] */
    lg_endpoint_stats_t *const *const *estats; /* [num_models][num_endpoints] */
    const size_t *model_sorted;                /* model indices sorted by id, for bsearch */
} lg_catalog_t;

/** Model index by public id (id[0..len), not NUL-terminated), or -1. */
long lg_catalog_find_model(const lg_catalog_t *c, const char *id, size_t len);

#endif
