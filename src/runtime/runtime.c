/* SPDX-License-Identifier: MIT */
/*
 * Runtimes: what a worker builds for each config snapshot it serves — one
 * plugin instance per routable provider (created from the provider's config)
 * and the Lua policy VM — and their reference counting.
 */
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/util.h"
#include "runtime/runtime.h"

static json_t *plugin_conf_json(const lg_provider_conf_t *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(p->name));
    if (p->base_url != NULL)
        json_object_set_new(o, "base_url", json_string(p->base_url));
    if (p->api_key != NULL)
        json_object_set_new(o, "api_key", json_string(p->api_key));
    if (p->headers != NULL)
        json_object_set(o, "headers", p->headers);
    if (p->options != NULL)
        json_object_set(o, "options", p->options);
    return o;
}

lg_runtime_t *lg_runtime_create(struct lg_worker *w, lg_snapshot_t *snap)
{
    const lg_config_t *conf = snap->conf;
    lg_runtime_t *rt = lg_malloc(sizeof(*rt));
    memset(rt, 0, sizeof(*rt));
    rt->worker = w;
    rt->snap = snap; /* takes the caller's reference */
    rt->refcnt = 1;
    rt->pstates = lg_calloc(conf->num_providers + 1, sizeof(void *));
    for (size_t i = 0; i < conf->num_providers; ++i) {
        if (snap->plugins[i] == NULL)
            continue;
        const lg_provider_t *prov = snap->plugins[i]->provider;
        json_t *pc = plugin_conf_json(&conf->providers[i]);
        lg_errbuf_t perr = {{0}};
        void *state = NULL;
        int rc = prov->create(pc, &state, &perr);
        json_decref(pc);
        if (rc != 0) {
            LG_LOG(LG_LOG_ERR, "worker", "provider %s: plugin %s refused its config: %s", conf->providers[i].name, prov->name,
                   perr.msg);
            continue;
        }
        /* a plugin may legitimately keep no state; remember "created" with a non-NULL marker */
        rt->pstates[i] = state != NULL ? state : (void *)&rt->pstates[i];
    }
    char err[512];
    rt->vm = lg_policy_vm_create(conf, lg_random_u64(), err, sizeof(err));
    if (rt->vm == NULL)
        LG_LOG(LG_LOG_ERR, "worker", "policy VM: %s (using the built-in order)", err);
    return rt;
}

lg_runtime_t *lg_runtime_ref(lg_runtime_t *rt)
{
    ++rt->refcnt;
    return rt;
}

void lg_runtime_unref(lg_runtime_t *rt)
{
    if (--rt->refcnt != 0)
        return;
    const lg_config_t *conf = rt->snap->conf;
    for (size_t i = 0; i < conf->num_providers; ++i) {
        if (rt->pstates[i] == NULL)
            continue;
        void *state = rt->pstates[i] == (void *)&rt->pstates[i] ? NULL : rt->pstates[i];
        rt->snap->plugins[i]->provider->destroy(state);
    }
    free(rt->pstates);
    if (rt->vm != NULL)
        lg_policy_vm_destroy(rt->vm);
    lg_snapshot_unref(rt->snap);
    free(rt);
}
