/* SPDX-License-Identifier: MIT */
/*
 * Read-only routes: /health (cheap liveness + per-provider state) and the
 * endpoint view with live stats shared with the admin API; the catalog routes
 * are in catalog_view.c.
 */
#include <string.h>
#include "auth/gate.h"
#include "cluster/cluster.h"
#include "core/util.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/server.h"
#include "llmgate/version.h"
#include "mcp/federation.h"

json_t *lg__http_endpoint_json(const lg_snapshot_t *snap, size_t mi, size_t ei, int64_t now)
{
    const lg_endpoint_conf_t *ep = &snap->conf->models[mi].endpoints[ei];
    const lg_endpoint_stats_t *st = snap->estats[mi][ei];
    return json_pack("{s:s,s:s,s:b,s:i,s:f,s:f,s:f,s:f,s:I,s:I}", "model", snap->conf->models[mi].id, "upstream_model",
                     ep->upstream_model, "healthy", lg_stats_healthy(st, now), "consecutive_failures",
                     (int)atomic_load(&st->consecutive_failures), "latency_ms", lg_stats_get(&st->latency_ewma_bits), "ttft_ms",
                     lg_stats_get(&st->ttft_ewma_bits), "throughput_tps", lg_stats_get(&st->tput_ewma_bits), "error_rate",
                     lg_stats_get(&st->error_ewma_bits), "requests", (json_int_t)atomic_load(&st->requests), "failures",
                     (json_int_t)atomic_load(&st->failures));
}

/* federated MCP upstreams: name, state ("up", "down", "circuit_open"), tools offered now */
static void health_mcp_upstream(const char *name, const char *state, int pid, size_t tools, void *arg)
{
    (void)pid;
    json_array_append_new(arg, json_pack("{s:s,s:s,s:I}", "name", name, "state", state, "tools", (json_int_t)tools));
}

/* Which store backend serves keys and the ledger, and whether the ledger writer reaches it. */
static json_t *store_health(void)
{
    const char *target = lg_gate_store_path();
    lg_ledger_t *l = lg_gate_ledger();
    if (target == NULL)
        return json_pack("{s:s}", "backend", "none");
    lg_ledger_stats_t st = {0};
    if (l != NULL)
        lg_ledger_stats(l, &st);
    return json_pack("{s:s,s:s,s:I,s:I,s:I}", "backend", lg_store_backend_for(target), "state",
                     st.store_unreachable ? "unreachable" : "ok", "ledger_queue_depth", (json_int_t)st.depth, "ledger_dropped",
                     (json_int_t)st.dropped, "last_commit_ms", (json_int_t)st.last_commit_ms);
}

void lg_handle_health(lg_worker_t *w, h2o_req_t *req)
{
    /* cheap on purpose (load balancers poll it): atomics only, no endpoint list; the detailed view with per-endpoint
     * stats is GET /api/admin/providers */
    const lg_snapshot_t *snap = w->rt->snap;
    const lg_config_t *conf = snap->conf;
    int64_t now = lg_now_ms();
    json_t *providers = json_array();
    for (size_t pi = 0; pi < conf->num_providers; ++pi) {
        const lg_provider_conf_t *p = &conf->providers[pi];
        const lg_provider_stats_t *ps = snap->pstats[pi];
        const char *state = !p->enabled ? "disabled" : snap->plugins[pi] == NULL ? "unavailable" : "ok";
        size_t healthy = 0, total = 0;
        for (size_t mi = 0; mi < conf->num_models; ++mi)
            for (size_t ei = 0; ei < conf->models[mi].num_endpoints; ++ei) {
                if (conf->models[mi].endpoints[ei].provider_index != pi)
                    continue;
                ++total;
                healthy += lg_stats_healthy(snap->estats[mi][ei], now);
            }
        if (strcmp(state, "ok") == 0 && total != 0 && healthy == 0)
            state = "unhealthy";
        json_array_append_new(providers, json_pack("{s:s,s:s,s:i,s:i,s:i}", "name", p->name, "state", state, "in_flight",
                                                   (int)atomic_load(&ps->in_flight), "queued", (int)atomic_load(&ps->queued),
                                                   "max_concurrent", (int)p->max_concurrent));
    }
    json_t *doc = json_pack("{s:s,s:s,s:I,s:i,s:I,s:i,s:o}", "status", "ok", "version", LG_VERSION_STRING, "uptime_s",
                            (json_int_t)(lg_unix_time() - lg_server_started_at()), "workers", (int)lg_server_num_workers(),
                            "config_generation", (json_int_t)snap->generation, "in_flight", (int)lg_server_in_flight(), "providers",
                            providers);
    json_t *mcp = json_array();
    lg_mcp_federation_foreach(health_mcp_upstream, mcp);
    json_object_set_new(doc, "mcp_upstreams", mcp);
    json_object_set_new(doc, "store", store_health());
    json_object_set_new(doc, "cluster", lg_cluster_health_json());
    lg_respond_json(req, 200, doc);
}
