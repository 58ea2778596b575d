/* SPDX-License-Identifier: MIT */
/*
 * The generation handler (POST /v1/chat/completions, /v1/completions,
 * /v1/embeddings, /v1/messages): the front of the pipeline. It picks the
 * ingress skin, refuses what it must before any work (body size, rapid
 * reset), authenticates, lets the skin parse the body, routes, admits the
 * key (model allow-list, rate and credit limits), and hands the exchange to
 * the pipeline (src/pipeline/), which answers from then on.
 */
#include <stdio.h>
#include <string.h>
#include "auth/gate.h"
#include "core/error.h"
#include "core/util.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/skins.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"

static void copy_model(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/** Model allow-list and rate/credit admission for the calling key. Refuses and returns non-zero when refused. */
static int admit(lg_worker_t *w, h2o_req_t *req, lg_exchange_t *x)
{
    const lg_gen_request_t *r = lg_exchange_request(x);
    lg_key_entry_t *key = lg_exchange_key(x);
    char msg[300];
    for (size_t i = 0; i < r->num_models; ++i) {
        char model[256];
        copy_model(model, sizeof(model), r->models[i], r->model_lens[i]);
        if (!lg_key_model_allowed(key, model)) {
            lg_metrics_rejected(w->index, "forbidden");
            snprintf(msg, sizeof(msg), "model %s is not allowed for this key", model);
            lg_exchange_refuse(x, LG_EFORBIDDEN, 403, msg, NULL);
            return -1;
        }
    }
    lg_admit_t a;
    if (lg_key_admit(key, r->prompt_tokens_estimate, lg_gate_now_ms(), &a) == 0) {
        lg_exchange_admitted(x);
        return 0;
    }
    lg_metrics_rejected(w->index, a.reason != NULL ? a.reason : "auth");
    if (a.err == LG_ERATELIMIT) {
        char v[32];
        snprintf(v, sizeof(v), "%lld", (long long)((a.retry_after_ms + 999) / 1000));
        lg_add_header(req, "retry-after", v);
        snprintf(v, sizeof(v), "%lld", (long long)a.limit);
        lg_add_header(req, "x-ratelimit-limit", v);
        snprintf(v, sizeof(v), "%lld", (long long)a.remaining);
        lg_add_header(req, "x-ratelimit-remaining", v);
        snprintf(v, sizeof(v), "%lld", (long long)a.reset_unix_ms);
        lg_add_header(req, "x-ratelimit-reset", v);
        snprintf(msg, sizeof(msg), "rate limit exceeded (%s): retry in %lld ms", a.reason, (long long)a.retry_after_ms);
        lg_exchange_refuse(x, LG_ERATELIMIT, 429, msg,
                           json_pack("{s:s,s:I}", "limit", a.reason, "retry_after_ms", (json_int_t)a.retry_after_ms));
    } else if (a.err == LG_ECREDIT) {
        lg_exchange_refuse(x, LG_ECREDIT, 402, "insufficient credits: this key's credit limit is exhausted", NULL);
    } else {
        snprintf(msg, sizeof(msg), "API key %s", a.reason != NULL ? a.reason : "refused");
        lg_exchange_refuse(x, LG_EAUTH, 401, msg, NULL);
    }
    return -1;
}

/** A refusal before any exchange exists, in the skin's error shape. */
static void refuse_early(h2o_req_t *req, const lg_skin_t *skin, int err, int status, const char *msg)
{
    lg_skin_error_t e = {.err = err, .status = status, .message = msg, .provider_code = ""};
    json_t *body = skin->error_body(&e, &status, NULL);
    lg_respond_json(req, status, body);
}

static void release_runtime(void *rt)
{
    lg_runtime_unref(rt);
}

static void worker_request_done(void *owner)
{
    lg__worker_request_done(owner);
}

static void worker_note_cancel(void *owner, uint64_t conn_id)
{
    lg_worker_t *w = owner;
    lg_abuse_note_cancel(&w->abuse, conn_id, lg_now_ms());
}

void lg__http_pipeline_init(lg_worker_t *w)
{
    lg_pipeline_worker_init(&w->pipeline, &w->loop, w->up, w->index, w);
    w->pipeline.request_done = worker_request_done;
    w->pipeline.note_cancel = worker_note_cancel;
}

void lg_handle_generate(lg_worker_t *w, h2o_req_t *req, int kind, int anthropic)
{
    const lg_config_t *conf = w->rt->snap->conf;
    const lg_skin_t *skin = anthropic ? &lg_skin_anthropic_messages : lg_skin_for_kind(kind);
    if (req->entity.len > conf->max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body of %zu bytes exceeds the limit of %zu bytes", req->entity.len,
                 conf->max_body_bytes);
        refuse_early(req, skin, LG_ETOOLARGE, 413, msg);
        return;
    }
    if (lg_abuse_blocked(&w->abuse, req->conn->id, lg_now_ms())) {
        /* rapid reset: refuse before any parsing, routing or upstream work */
        refuse_early(req, skin, LG_ERATELIMIT, 429, "too many cancelled requests on this connection");
        return;
    }
    lg_runtime_t *rt = lg_runtime_ref(w->rt);
    lg_pipeline_runtime_t view = {.snap = rt->snap, .pstates = rt->pstates, .vm = rt->vm, .ref = rt, .release = release_runtime};
    lg__worker_request_begin(w);
    lg_exchange_t *x = lg_exchange_create(&w->pipeline, req, skin, &view);

    char err[512];
    const char *body = req->entity.base != NULL ? req->entity.base : "";
    const char *auth_msg = NULL;
    lg_key_entry_t *key = NULL;
    int rc = lg_gate_authenticate(req, &key, &auth_msg);
    lg_exchange_set_key(x, key);
    if (rc != 0) {
        lg_metrics_rejected(w->index, "auth");
        lg_exchange_refuse(x, rc, 401, auth_msg, NULL);
        goto done;
    }
    rc = skin->parse(body, req->entity.len, lg_exchange_request(x), err, sizeof(err));
    if (rc != 0) {
        lg_exchange_refuse(x, rc, 400, err, NULL);
        goto done;
    }
    json_t *meta = NULL;
    rc = lg_exchange_route(x, &meta, err, sizeof(err));
    if (rc != 0) {
        lg_exchange_refuse(x, rc, 0, err, meta);
        goto done;
    }
    if (key != NULL && admit(w, req, x) != 0)
        goto done;
    lg_exchange_run(x);
done:
    lg_exchange_release(x);
}
