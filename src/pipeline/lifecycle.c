/* SPDX-License-Identifier: MIT */
/*
 * An exchange's lifetime: creation for the handler, the guard that keeps it
 * alive while a callback runs, teardown when the client request goes away,
 * the free once every handle closed, and the shutdown cut that ends every
 * live exchange at the drain deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/keytable.h"
#include "core/error.h"
#include "core/log.h"
#include "pipeline/exchange.h"

static void exchange_free(lg_exchange_t *x)
{
    lg_pipeline_worker_t *pw = x->pw;
    if (x->live_prev != NULL)
        x->live_prev->live_next = x->live_next;
    else
        pw->live = x->live_next;
    if (x->live_next != NULL)
        x->live_next->live_prev = x->live_prev;
    lg_relay_dispose(x);
    lg_reply_dispose(x);
    lg_trace_dispose(x);
    lg_wire_dispose(x);
    lg_continue_dispose(x);
    lg_xcache_dispose(x);
    lg_attempts_dispose(x);
    json_decref(x->st.usage);
    lg_gen_request_dispose(&x->r);
    if (x->key != NULL)
        lg_key_entry_release(x->key);
    if (x->rt.release != NULL)
        x->rt.release(x->rt.ref);
    free(x);
    if (pw->request_done != NULL)
        pw->request_done(pw->owner);
}

void lg_x_enter(lg_exchange_t *x)
{
    ++x->guard;
}

void lg_x_leave(lg_exchange_t *x)
{
    if (--x->guard == 0 && x->state == LG_X_TORN_DOWN && x->handles_open == 0)
        exchange_free(x);
}

static void on_handle_closed(uv_handle_t *h)
{
    /* every handle's data is the exchange (the source slot's timer too) */
    lg_exchange_t *x = h->data;
    if (--x->handles_open == 0 && x->guard == 0 && x->state == LG_X_TORN_DOWN)
        exchange_free(x);
}

void lg_x_answered(lg_exchange_t *x)
{
    if (x->state < LG_X_ANSWERED)
        x->state = LG_X_ANSWERED;
    lg_settle(x);
}

int lg_x_active(const lg_exchange_t *x)
{
    return x->req != NULL && x->state < LG_X_ANSWERED;
}

void lg_x_teardown(lg_exchange_t *x)
{
    if (x->state == LG_X_TORN_DOWN)
        return;
    lg_attempts_reset(x); /* cancels the upstream transfer at once: no tokens wasted on a gone client */
    lg_reply_reset(x);
    if (x->st.outcome == LG_OUTCOME_NONE) {
        x->st.outcome = LG_OUTCOME_CANCELLED;
        if (x->at.last_err.err == 0)
            x->at.last_err.err = LG_ECANCELLED; /* the access log's error_type */
    }
    lg_settle(x);
    x->state = LG_X_TORN_DOWN;
    lg_source_close(&x->rp.source, on_handle_closed);
    lg_attempts_close(x, on_handle_closed);
    lg_relay_close(x, on_handle_closed);
}

static void on_req_dispose(void *p)
{
    lg_exchange_t *x = *(lg_exchange_t **)p;
    lg_x_enter(x);
    /* the rapid-reset guard counts requests abandoned before any answer byte */
    if (x->st.outcome == LG_OUTCOME_NONE && x->st.status == 0 && x->pw->note_cancel != NULL)
        x->pw->note_cancel(x->pw->owner, x->conn_id);
    x->req = NULL;
    lg_x_teardown(x);
    lg_x_leave(x);
}

const lg_endpoint_conf_t *lg_x_endpoint(const lg_exchange_t *x, int idx)
{
    const lg_route_ref_t *ref = &x->at.refs[idx];
    return &x->rt.snap->conf->models[ref->model_index].endpoints[ref->endpoint_index];
}

const lg_provider_conf_t *lg_x_provider(const lg_exchange_t *x, int idx)
{
    return &x->rt.snap->conf->providers[x->at.refs[idx].provider_index];
}

void lg_x_skin_info(const lg_exchange_t *x, lg_skin_info_t *info)
{
    int idx = x->at.served >= 0 ? x->at.served : x->at.cur;
    info->gen_id = x->id;
    info->model = idx >= 0 ? x->at.cands[idx].model : x->at.preq.model != NULL ? x->at.preq.model : "";
    info->provider = idx >= 0 ? x->at.cands[idx].provider : "";
    info->created = lg_unix_time();
    info->prompt_tokens_estimate = x->r.prompt_tokens_estimate;
    info->skin_data = x->r.skin_data;
}

/* ---- the handler's entry points ---- */

lg_exchange_t *lg_exchange_create(lg_pipeline_worker_t *pw, h2o_req_t *req, const lg_skin_t *skin, const lg_pipeline_runtime_t *rt)
{
    lg_exchange_t *x = lg_malloc(sizeof(*x));
    memset(x, 0, sizeof(*x));
    x->state = LG_X_INTAKE;
    x->pw = pw;
    x->rt = *rt;
    x->skin = skin;
    x->req = req;
    x->conn_id = req->conn->id;
    x->st.start_us = lg_now_us();
    lg_random_id(x->id, "gen-", 24);
    lg_attempts_init(x);
    lg_reply_init(x, rt->snap->conf->max_upstream_bytes);
    lg_wire_init(x, rt->snap->conf->max_body_bytes);
    lg_continue_init(x);
    lg_relay_init(x);
    x->handles_open = LG_X_HANDLES;
    x->live_next = pw->live;
    if (pw->live != NULL)
        pw->live->live_prev = x;
    pw->live = x;
    *(lg_exchange_t **)h2o_mem_alloc_shared(&req->pool, sizeof(lg_exchange_t *), on_req_dispose) = x;
    lg_x_enter(x); /* the caller's reference */
    return x;
}

lg_gen_request_t *lg_exchange_request(lg_exchange_t *x)
{
    return &x->r;
}

const char *lg_exchange_id(const lg_exchange_t *x)
{
    return x->id;
}

void lg_exchange_set_key(lg_exchange_t *x, lg_key_entry_t *key)
{
    x->key = key;
}

lg_key_entry_t *lg_exchange_key(const lg_exchange_t *x)
{
    return x->key;
}

int lg_exchange_route(lg_exchange_t *x, json_t **meta, char *err, size_t errlen)
{
    return lg_trace_route(x, meta, err, errlen);
}

void lg_exchange_admitted(lg_exchange_t *x)
{
    x->st.admitted = 1;
}

void lg_exchange_refuse(lg_exchange_t *x, int err, int status, const char *msg, json_t *meta)
{
    if (!lg_x_active(x)) {
        json_decref(meta);
        return;
    }
    x->st.outcome = LG_OUTCOME_REFUSED;
    lg_relay_error(x, err, status, msg, meta);
    lg_x_answered(x);
}

void lg_exchange_run(lg_exchange_t *x)
{
    if (!lg_x_active(x))
        return;
    x->state = LG_X_RUNNING;
    lg_attempts_plan(x);
    lg_continue_plan(x);
    lg_relay_start_timers(x);
    lg_attempts_run(x);
}

void lg_exchange_release(lg_exchange_t *x)
{
    lg_x_leave(x);
}

/* ---- worker ---- */

void lg_pipeline_cut_all(lg_pipeline_worker_t *pw)
{
    unsigned cut = 0;
    for (lg_exchange_t *x = pw->live; x != NULL;) {
        lg_exchange_t *next = x->live_next;
        lg_x_enter(x);
        if (lg_x_active(x)) {
            lg_upstream_error_t e;
            memset(&e, 0, sizeof(e));
            e.err = LG_ESHUTDOWN;
            snprintf(e.message, sizeof(e.message), "the gateway is shutting down: the response was cut at the drain deadline");
            lg_attempts_reset(x);
            lg_reply_reset(x);
            if (lg_relay_started(x)) {
                if (x->at.cur >= 0 || x->at.last_cand >= 0)
                    x->at.served = x->at.cur >= 0 ? x->at.cur : x->at.last_cand;
                x->at.last_err = e;
                x->st.outcome = LG_OUTCOME_FAILED_LATE;
                lg_relay_fail_stream(x, &e, lg_err_status(LG_ESHUTDOWN));
            } else {
                x->at.last_err = e;
                x->st.outcome = LG_OUTCOME_FAILED;
                lg_relay_error(x, LG_ESHUTDOWN, 503, e.message, NULL);
            }
            lg_x_answered(x);
            ++cut;
        }
        next = x->live_next; /* x stays linked until freed, and nothing here frees another exchange */
        lg_x_leave(x);
        x = next;
    }
    if (cut != 0)
        LG_LOG(LG_LOG_WARN, "pipeline", "worker %u: %u requests cut at the shutdown deadline", pw->index, cut);
}
