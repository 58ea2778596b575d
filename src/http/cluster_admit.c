/* SPDX-License-Identifier: MIT */
/*
 * Shared admission in front of the generate handler (scale-out). With a
 * cluster configured, a request whose key has shared limits first asks
 * Redis (one script call, asynchronous on the worker's loop); the generate
 * handler then runs with that verdict as the key's admission. Without a
 * cluster, or for keys without limits, the handler runs at once, exactly as
 * on a single node.
 *
 * Lifetime: while Redis answers, the request may go away (client closed):
 * a shared chunk in req->pool clears our back-pointer, the verdict callback
 * then returns what it took and frees the state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/gate.h"
#include "cluster/cluster.h"
#include "cluster/scripts.h"
#include "core/util.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/skins.h"

struct pending {
    lg_worker_t *w;
    h2o_req_t *req;        /* NULL once h2o disposed the request */
    struct pending **slot; /* our pointer in req->pool, cleared when we finish first */
    lg_key_entry_t *key;
    const lg_skin_t *skin; /* the route's ingress skin: its error shape for a refusal */
};

static void on_dispose(void *p)
{
    struct pending *pd = *(struct pending **)p;
    if (pd != NULL)
        pd->req = NULL;
}

static void refuse_unavailable(h2o_req_t *req, const lg_skin_t *skin)
{
    static const char msg[] = "shared rate-limit state (Redis) is unreachable and this gateway is configured to refuse "
                              "rather than enforce limits per replica (cluster.on_redis_down): retry shortly";
    lg_add_header(req, "retry-after", "1");
    lg_skin_error_t e = {.err = LG_EQUEUEFULL, .status = 503, .message = msg, .provider_code = ""};
    int status = 503;
    json_t *body = skin->error_body(&e, &status, json_pack("{s:s}", "reason", "redis_unavailable"));
    lg_respond_json(req, status, body);
}

static void on_verdict(void *arg, const lg_cluster_verdict_t *v)
{
    struct pending *pd = arg;
    if (pd->req == NULL) {
        lg_cluster_refund(pd->key, v); /* the client left while we asked */
    } else if (v->status == LG_VERDICT_REFUSE) {
        refuse_unavailable(pd->req, pd->skin);
    } else if (v->status == LG_VERDICT_LOCAL) {
        lg_handle_generate(pd->w, pd->req, pd->skin);
    } else {
        lg_cluster_verdict_begin(pd->key, v);
        lg_handle_generate(pd->w, pd->req, pd->skin);
        lg_cluster_verdict_end();
    }
    if (pd->req != NULL)
        *pd->slot = NULL; /* the request outlives us: its dispose must not touch pd */
    lg_key_entry_release(pd->key);
    lg__worker_request_done(pd->w);
    free(pd);
}

void lg_handle_generate_shared(lg_worker_t *w, h2o_req_t *req, const lg_skin_t *skin)
{
    if (!lg_cluster_enabled() || req->entity.len > w->rt->snap->conf->max_body_bytes) {
        lg_handle_generate(w, req, skin);
        return;
    }
    lg_key_entry_t *key = NULL;
    const char *msg = NULL;
    if (lg_gate_authenticate(req, &key, &msg) != 0 || key == NULL) {
        lg_key_entry_release(key);
        lg_handle_generate(w, req, skin); /* it answers the 401 (or serves the open gateway) */
        return;
    }
    struct pending *pd = lg_malloc(sizeof(*pd));
    pd->w = w;
    pd->req = req;
    pd->key = key;
    pd->skin = skin;
    /* an upper bound of the handler's prompt estimate (message characters / 4 + 1): corrected at admission */
    int64_t est = (int64_t)(req->entity.len / 4) + 1;
    int rc = lg_cluster_preadmit(key, est, on_verdict, pd);
    if (rc == LG_CLUSTER_PENDING) {
        pd->slot = h2o_mem_alloc_shared(&req->pool, sizeof(struct pending *), on_dispose);
        *pd->slot = pd;
        lg__worker_request_begin(w); /* a draining worker waits for it */
        return;
    }
    lg_key_entry_release(key);
    free(pd);
    if (rc == LG_CLUSTER_REFUSE)
        refuse_unavailable(req, skin);
    else
        lg_handle_generate(w, req, skin);
}
