/* SPDX-License-Identifier: MIT */
/*
 * Attempts: the policy's view of the request, the attempt plan, walking it
 * (one source per attempt), the provider concurrency slots and the worker's
 * bounded provider queue, retries, and what a failure means: classified
 * through the one error table (core/error.h), then the policy's on_error
 * decides retry / next / stop. When the plan is exhausted the final error
 * goes to the relay. Sticky sessions, a routing trace and mid-stream failover
 * belong here too (see README.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/log.h"
#include "metrics/metrics.h"
#include "pipeline/exchange.h"
#include "router/preferences.h"
#include "router/stats.h"

static void on_step(uv_timer_t *t);

void lg_attempts_init(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    a->state = LG_ATTEMPT_IDLE;
    a->cur = a->last_cand = a->served = -1;
    a->all_rate_limited = 1;
    a->retry_after_ms = -1;
    a->log = json_array();
    uv_timer_init(x->pw->loop, &a->step_timer);
    a->step_timer.data = x;
}

void lg_attempts_dispose(lg_exchange_t *x)
{
    json_decref(x->at.log);
    free(x->at.preq_block);
}

void lg_attempts_close(lg_exchange_t *x, uv_close_cb on_closed)
{
    uv_close((uv_handle_t *)&x->at.step_timer, on_closed);
}

static int metric_model(const lg_exchange_t *x, int idx)
{
    return idx >= 0 ? x->rt.snap->model_metric_id[x->at.refs[idx].model_index] : 0;
}

static int metric_provider(const lg_exchange_t *x, int idx)
{
    return idx >= 0 ? x->rt.snap->provider_metric_id[x->at.refs[idx].provider_index] : 0;
}

static lg_endpoint_stats_t *endpoint_stats(const lg_exchange_t *x, int idx)
{
    return x->rt.snap->estats[x->at.refs[idx].model_index][x->at.refs[idx].endpoint_index];
}

static lg_provider_stats_t *provider_stats(const lg_exchange_t *x, int idx)
{
    return x->rt.snap->pstats[x->at.refs[idx].provider_index];
}

/* ---- the plan ---- */

/** The policy's view of the request. Strings are copied into one block owned by the exchange: on_error and on_done run
 * later, after other requests of this worker have come and gone. */
static void build_policy_req(lg_exchange_t *x)
{
    lg_policy_req_t *p = &x->at.preq;
    const lg_config_t *conf = x->rt.snap->conf;
    const char *hv[16];
    size_t hl[16], nh = 0, need = 0;
    const char *hn[16];
    for (size_t i = 0; x->req != NULL && conf->expose_headers != NULL && conf->expose_headers[i] != NULL && nh < 16; ++i) {
        const char *name = conf->expose_headers[i];
        ssize_t hi = h2o_find_header_by_str(&x->req->headers, name, strlen(name), -1);
        if (hi < 0)
            continue;
        size_t len = x->req->headers.entries[hi].value.len;
        hn[nh] = name;
        hv[nh] = x->req->headers.entries[hi].value.base;
        hl[nh] = len < 1024 ? len : 1024;
        need += hl[nh] + 1;
        ++nh;
    }
    for (size_t i = 0; i < x->r.num_models; ++i)
        need += x->r.model_lens[i] + 1;
    size_t ptrs = (x->r.num_models + 2 * nh) * sizeof(char *);
    char *block = lg_malloc(ptrs + need);
    const char **models = (const char **)block, **names = models + x->r.num_models, **values = names + nh;
    char *str = block + ptrs;
    x->at.preq_block = block;
    for (size_t i = 0; i < x->r.num_models; ++i) {
        memcpy(str, x->r.models[i], x->r.model_lens[i]);
        str[x->r.model_lens[i]] = '\0';
        models[i] = str;
        str += x->r.model_lens[i] + 1;
    }
    for (size_t i = 0; i < nh; ++i) {
        memcpy(str, hv[i], hl[i]);
        str[hl[i]] = '\0';
        names[i] = hn[i]; /* config strings: the runtime (and so the config) outlives the exchange */
        values[i] = str;
        str += hl[i] + 1;
    }
    p->model = models[0];
    p->models = models + 1;
    p->num_models = x->r.num_models - 1;
    p->variant = x->r.variant;
    p->provider = x->r.provider;
    p->sort = x->r.sort;
    p->stream = x->r.stream;
    p->has_tools = x->r.has_tools;
    p->max_tokens = x->r.max_tokens;
    p->prompt_tokens = x->r.prompt_tokens_estimate;
    p->session_id = x->r.session_id;
    p->header_names = names;
    p->header_values = values;
    p->num_headers = nh;
    /* the requested model's policy decides, also when only its fallback models have endpoints left */
    long mi = lg_snapshot_find_model(x->rt.snap, x->r.models[0], x->r.model_lens[0]);
    const char *policy = mi >= 0 ? conf->models[mi].policy : NULL;
    x->at.policy = policy != NULL ? policy : conf->default_policy;
}

void lg_attempts_plan(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    build_policy_req(x);
    lg_sticky_annotate(x);
    char err[256];
    int rc = LG_EPOLICY;
    if (a->num_cands == 1) {
        /* one candidate has one order: skip the VM (~10 µs of interpreted Lua) on the most common path */
        a->plan[0] = 1;
        a->plan_len = 1;
        rc = 0;
    } else if (x->rt.vm != NULL && lg_policy_exists(x->rt.vm, a->policy))
        rc = lg_policy_select(x->rt.vm, a->policy, &a->preq, a->cands, a->num_cands, a->plan, LG_X_MAX_PLAN, &a->plan_len, err,
                              sizeof(err));
    if (rc != 0 || a->plan_len == 0) {
        if (a->num_cands > 1)
            lg_metrics_policy_error(x->pw->index);
        a->plan_len = lg_policy_builtin_plan(&a->preq, a->cands, a->num_cands, a->plan, LG_X_MAX_PLAN);
    }
    /* soft performance preferences reorder whatever the policy chose; they never remove */
    lg_router_prefer(x->r.provider, a->cands, a->plan, a->plan_len);
    lg_sticky_order(x);
    /* allow_fallbacks:false without an order list: only the first choice per model */
    if (!x->r.allow_fallbacks && (x->r.provider == NULL || json_object_get(x->r.provider, "order") == NULL)) {
        size_t out = 0;
        uint32_t seen_models = 0;
        for (size_t i = 0; i < a->plan_len; ++i) {
            uint32_t mi = a->cands[a->plan[i] - 1].model_index;
            if (mi < 32 && (seen_models & (1u << mi)))
                continue;
            seen_models |= mi < 32 ? 1u << mi : 0;
            a->plan[out++] = a->plan[i];
        }
        a->plan_len = out;
    }
}

/* ---- slots and the provider queue ---- */

static void waitq_kick(lg_pipeline_worker_t *pw, uint64_t first_ms);

static void release_slot(lg_exchange_t *x)
{
    if (!x->at.slot_held)
        return;
    lg_stats_release(provider_stats(x, x->at.cur));
    x->at.slot_held = 0;
    /* a slot freed on this worker may let a queued request go now */
    if (x->pw->waitq_head != NULL)
        waitq_kick(x->pw, 0);
}

static void waitq_remove(lg_exchange_t *x)
{
    if (x->at.state != LG_ATTEMPT_QUEUED)
        return;
    lg_pipeline_worker_t *pw = x->pw;
    lg_exchange_t **pp = &pw->waitq_head, *prev = NULL;
    while (*pp != NULL && *pp != x) {
        prev = *pp;
        pp = &(*pp)->at.wq_next;
    }
    if (*pp == x) {
        *pp = x->at.wq_next;
        if (pw->waitq_tail == x)
            pw->waitq_tail = prev;
    }
    x->at.state = LG_ATTEMPT_IDLE;
    x->at.wq_next = NULL;
    atomic_fetch_sub_explicit(&provider_stats(x, x->at.cur)->queued, 1, memory_order_relaxed);
}

void lg_attempts_reset(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    waitq_remove(x);
    uv_timer_stop(&a->step_timer);
    lg_source_cancel(&x->rp.source);
    lg_reply_reset(x);
    a->retry_after_ms = -1;
    release_slot(x);
    a->state = LG_ATTEMPT_IDLE;
}

static void schedule(lg_exchange_t *x, lg_attempt_state_t state, uint64_t ms)
{
    x->at.state = state;
    uv_timer_start(&x->at.step_timer, on_step, ms, 0);
}

/* ---- outcomes of one attempt ---- */

void lg_attempts_succeeded(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    int idx = a->cur;
    int64_t now = lg_now_us();
    lg_usage_t u = {0};
    if (x->st.usage != NULL)
        lg_usage_from_json(x->st.usage, &u);
    else if (x->wire.has_usage)
        u = x->wire.usage.u;
    /* a continuation's first token is not its own: the stream's was sent by an earlier attempt */
    double ttft = x->st.ttft_us >= a->start_us ? (double)(x->st.ttft_us - a->start_us) / 1000.0 : -1;
    if (!lg_xcache_hit(x)) { /* a response-cache replay says nothing about the endpoint's health or speed */
        lg_stats_success(endpoint_stats(x, idx), (double)(now - a->start_us) / 1000.0, ttft, u.completion_tokens);
        lg_metrics_attempt(x->pw->index, metric_provider(x, idx), metric_model(x, idx), 1, LG_ERRCLASS_OTHER);
    }
    json_array_append_new(a->log,
                          json_pack("{s:s,s:s,s:i,s:f}", "provider", a->cands[idx].provider, "model", a->cands[idx].upstream_model,
                                    "status", x->rp.status, "latency_ms", (double)(now - a->start_us) / 1000.0));
    a->served = idx;
    lg_xcache_store(x, idx);
}

void lg_attempts_failed_late(lg_exchange_t *x, const lg_upstream_error_t *e)
{
    lg_attempts_t *a = &x->at;
    int idx = a->cur;
    if (idx >= 0) {
        lg_stats_failure(endpoint_stats(x, idx), x->rt.snap->conf->unhealthy_after_failures,
                         x->rt.snap->conf->unhealthy_cooldown_ms);
        lg_metrics_attempt(x->pw->index, metric_provider(x, idx), metric_model(x, idx), 0, lg_err_class(e->err));
        json_array_append_new(a->log,
                              json_pack("{s:s,s:s,s:i,s:s,s:s,s:f}", "provider", a->cands[idx].provider, "model",
                                        a->cands[idx].upstream_model, "status", e->status != 0 ? e->status : lg_err_status(e->err),
                                        "error_type", lg_err_type(e->err), "message", e->message, "latency_ms",
                                        (double)(lg_now_us() - a->start_us) / 1000.0));
        a->served = idx;
    }
    a->last_err = *e;
    LG_LOG(LG_LOG_WARN, "upstream", "%s: %s failed mid-stream: %s", x->id, idx >= 0 ? a->cands[idx].provider : "?", e->message);
}

/** Record a failed attempt before the commit point and let the policy pick what happens next. */
static void record_failure(lg_exchange_t *x, lg_upstream_error_t *e)
{
    lg_attempts_t *a = &x->at;
    int idx = a->cur;
    const lg_snapshot_t *snap = x->rt.snap;
    if (e->retry_after_ms <= 0 && a->retry_after_ms > 0)
        e->retry_after_ms = a->retry_after_ms;
    if (e->err != LG_EQUEUEFULL)
        lg_stats_failure(endpoint_stats(x, idx), snap->conf->unhealthy_after_failures, snap->conf->unhealthy_cooldown_ms);
    if (e->err != LG_EUPSTREAM_RATELIMIT)
        a->all_rate_limited = 0;
    a->last_err = *e;
    lg_metrics_attempt(x->pw->index, metric_provider(x, idx), metric_model(x, idx), 0, lg_err_class(e->err));
    json_t *entry = json_pack(
        "{s:s,s:s,s:i,s:s,s:s,s:f}", "provider", a->cands[idx].provider, "model", a->cands[idx].upstream_model, "status",
        e->status != 0 ? e->status : lg_err_status(e->err), "error_type", lg_err_type(e->err), "message",
        e->message[0] != '\0' ? e->message : lg_strerror(e->err), "latency_ms", (double)(lg_now_us() - a->start_us) / 1000.0);
    if (e->provider_code[0] != '\0')
        json_object_set_new(entry, "provider_code", json_string(e->provider_code));
    json_array_append_new(a->log, entry);
    LG_LOG(LG_LOG_INFO, "upstream", "%s: attempt %u on %s/%s failed: %s (%s)", x->id, a->n, a->cands[idx].provider,
           a->cands[idx].upstream_model, lg_err_type(e->err), e->message);
}

/** After a recorded failure: the policy's (or the table's) decision, as the next state. */
static void decide(lg_exchange_t *x, const lg_upstream_error_t *e)
{
    lg_attempts_t *a = &x->at;
    int idx = a->cur;
    int64_t retry_after = e->retry_after_ms;
    lg_policy_attempt_t at = {.n = a->n, .id = (uint32_t)idx + 1, .tries = a->tries[idx]};
    lg_policy_error_t pe = {.status = e->status,
                            .error_type = lg_err_type(e->err),
                            .retryable = e->retryable,
                            .retry_after_ms = retry_after > 0 ? retry_after : -1,
                            .provider_code = e->provider_code};
    lg_policy_action_t act = x->rt.vm != NULL ? lg_policy_on_error(x->rt.vm, a->policy, &a->preq, &at, &pe)
                                              : (e->retryable ? LG_POLICY_NEXT : LG_POLICY_STOP);
    if (act == LG_POLICY_RETRY && a->tries[idx] >= LG_X_MAX_RETRIES_PER_CANDIDATE)
        act = LG_POLICY_NEXT;
    a->cur = -1;
    if (act == LG_POLICY_STOP) {
        a->stopped = 1;
    } else if (act == LG_POLICY_NEXT) {
        ++a->plan_pos;
        /* an endpoint that already failed on this request is not tried again later in the plan ("retry" is the policy's
         * way to ask for that) */
        while (a->plan_pos < a->plan_len && a->tries[a->plan[a->plan_pos] - 1] != 0)
            ++a->plan_pos;
    } else if (retry_after > 0) {
        schedule(x, LG_ATTEMPT_RETRY_WAIT, (uint64_t)(retry_after < 2000 ? retry_after : 2000));
        return;
    }
    a->state = LG_ATTEMPT_IDLE;
}

void lg_attempts_failed(lg_exchange_t *x, lg_upstream_error_t *e)
{
    if (x->at.cur < 0)
        return;
    record_failure(x, e);
    lg_upstream_error_t copy = *e;
    lg_relay_forget_held(x);
    lg_attempts_reset(x);
    decide(x, &copy);
    /* the next attempt starts from the loop, never inside the failing source's callback */
    if (x->at.state == LG_ATTEMPT_IDLE)
        schedule(x, LG_ATTEMPT_NEXT, 0);
}

/* ---- mid-stream failover (continue.c decides, the plan walk is here) ---- */

int lg_attempts_continuation_pos(const lg_exchange_t *x)
{
    const lg_attempts_t *a = &x->at;
    if (a->cur < 0 || a->stopped || a->n >= x->rt.snap->conf->max_attempts)
        return -1;
    /* the next endpoint not tried yet on this request whose model continues streams (providers differ in how well) */
    for (size_t pos = a->plan_pos + 1; pos < a->plan_len; ++pos) {
        const lg_route_ref_t *ref = &a->refs[a->plan[pos] - 1];
        if (a->tries[a->plan[pos] - 1] == 0 && x->rt.snap->conf->models[ref->model_index].midstream_failover)
            return (int)pos;
    }
    return -1;
}

void lg_attempts_continue_at(lg_exchange_t *x, int pos)
{
    x->at.cur = -1;
    x->at.plan_pos = (size_t)pos;
    schedule(x, LG_ATTEMPT_NEXT, 0); /* from the loop, never inside the broken source's callback */
}

/* ---- the end of the plan ---- */

static void exhausted(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    const lg_upstream_error_t *e = &a->last_err;
    int err = e->err != 0 ? e->err : LG_ENOENDPOINT;
    int status;
    const char *msg;
    char buf[200];
    if (a->n == 0) {
        status = 503;
        err = LG_ENOENDPOINT;
        msg = "No endpoint could be tried for this request";
    } else if (a->all_rate_limited) {
        status = 429;
        snprintf(buf, sizeof(buf), "All providers rate limited the request (capacity exhausted): %.120s", e->message);
        msg = buf;
    } else if (err == LG_EUPSTREAM_REJECTED || err == LG_ECONTEXT || err == LG_ETOOLARGE) {
        /* the request itself was refused: pass the upstream's client-error status and message through */
        status = e->status >= 400 && e->status < 500 ? e->status : lg_err_status(err);
        msg = e->message[0] != '\0' ? e->message : lg_strerror(err);
    } else if (err == LG_EOVERLOADED || err == LG_EQUEUEFULL) {
        status = 503;
        snprintf(buf, sizeof(buf), "All providers are overloaded or at capacity: %.140s", e->message);
        msg = buf;
    } else {
        status = 502;
        snprintf(buf, sizeof(buf), "All providers failed: %.170s", e->message[0] != '\0' ? e->message : lg_strerror(err));
        msg = buf;
    }
    /* after a mid-stream failover the client already has part of the answer: billed like any late failure */
    x->st.outcome = lg_relay_committed(x) ? LG_OUTCOME_FAILED_LATE : LG_OUTCOME_FAILED;
    if (a->last_err.err == 0)
        a->last_err.err = err;
    if (lg_relay_started(x)) {
        lg_upstream_error_t fe = *e;
        fe.err = err;
        fe.status = status;
        snprintf(fe.message, sizeof(fe.message), "%s", msg);
        lg_relay_fail_stream(x, &fe, status);
        lg_x_answered(x);
        return;
    }
    json_t *meta = json_pack("{s:O}", "attempts", a->log);
    if (e->provider_code[0] != '\0')
        json_object_set_new(meta, "provider_code", json_string(e->provider_code));
    if (a->n != 0 && json_array_size(a->log) != 0)
        json_object_set(meta, "provider_name", json_object_get(json_array_get(a->log, json_array_size(a->log) - 1), "provider"));
    json_t *prev = json_array();
    size_t i;
    json_t *entry;
    json_array_foreach(a->log, i, entry)
        json_array_append_new(prev, json_pack("{s:O,s:O,s:O}", "provider", json_object_get(entry, "provider"), "code",
                                              json_object_get(entry, "error_type"), "status", json_object_get(entry, "status")));
    json_object_set_new(meta, "previous_errors", prev);
    if (status == 429 || status == 503) {
        char ra[32];
        snprintf(ra, sizeof(ra), "%lld", (long long)(e->retry_after_ms > 0 ? (e->retry_after_ms + 999) / 1000 : 1));
        lg_relay_header(x, "retry-after", ra);
    }
    lg_relay_error(x, err, status, msg, meta);
    lg_x_answered(x);
}

/* ---- starting attempts ---- */

static void begin_attempt(lg_exchange_t *x, int idx)
{
    lg_attempts_t *a = &x->at;
    ++a->n;
    ++a->tries[idx];
    a->start_us = lg_now_us();
}

/** Start the current candidate with its slot held. Returns 0, or non-zero when it failed at once (recorded). */
static int start_with_slot(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    int idx = a->cur;
    const lg_route_ref_t *ref = &a->refs[idx];
    const lg_snapshot_t *snap = x->rt.snap;
    const lg_endpoint_conf_t *ep = lg_x_endpoint(x, idx);
    a->prov = snap->plugins[ref->provider_index]->provider;
    a->pstate = x->rt.pstates[ref->provider_index];
    if (a->pstate == (void *)&x->rt.pstates[ref->provider_index])
        a->pstate = NULL;
    begin_attempt(x, idx);
    a->retry_after_ms = -1;
    memset(&a->call, 0, sizeof(a->call));
    a->call.struct_size = sizeof(a->call);
    a->call.kind = x->skin->kind;
    a->call.stream = x->r.stream;
    a->call.body = NULL; /* set below: the tree only when the attempt does not pass bytes through */
    a->call.upstream_model = ep->upstream_model;
    a->call.public_model = a->cands[idx].model;
    a->call.max_output_tokens = ep->max_completion_tokens;
    a->call.request_id = x->id;
    lg_reply_reset(x); /* the previous attempt's body buffer is reused, never re-initialised over */
    /* nothing of a failed attempt reached the client: its usage and text do not count */
    json_decref(x->st.usage);
    x->st.usage = NULL;
    x->st.streamed_chars = 0;
    x->st.finish_reason[0] = '\0';
    if (!lg_wire_prepare(x))
        a->call.body = lg_gen_request_body(&x->r); /* built on first use, once per request */
    lg_continue_attempt_start(x);
    if (lg_continue_prepare(x) != 0) { /* a continuation without its prefill would restart the answer */
        lg_upstream_error_t ce;
        memset(&ce, 0, sizeof(ce));
        ce.err = LG_EINTERNAL;
        snprintf(ce.message, sizeof(ce.message), "cannot build the continuation request");
        a->state = LG_ATTEMPT_LIVE;
        lg_attempts_failed(x, &ce);
        return -1;
    }

    lg_source_args_t args = {.loop = x->pw->loop,
                             .up = x->pw->up,
                             .prov = a->prov,
                             .pstate = a->pstate,
                             .call = &a->call,
                             .conf = lg_x_provider(x, idx),
                             .max_response_bytes = x->r.stream ? 0 : snap->conf->max_upstream_bytes,
                             .capture_body = x->trace.echo ? &x->trace.upstream_body : NULL};
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    a->state = LG_ATTEMPT_LIVE;
    if (lg_source_start(&x->rp.source, lg_xcache_pick(x, idx, lg_source_for(a->prov)), &args, &e) == 0) {
        lg_trace_echo(x);
        return 0;
    }
    lg_attempts_failed(x, &e);
    return -1;
}

/** Start candidate idx: take a slot, or queue for one, or fail with "queue full". Returns 0 when it runs or waits. */
static int start_attempt(lg_exchange_t *x, int idx)
{
    lg_attempts_t *a = &x->at;
    const lg_provider_conf_t *pc = lg_x_provider(x, idx);
    lg_provider_stats_t *ps = provider_stats(x, idx);
    a->cur = idx;
    a->last_cand = idx;
    if (lg_stats_acquire(ps, pc->max_concurrent)) {
        a->slot_held = 1;
        return start_with_slot(x);
    }
    /* provider at its concurrency limit: wait in the bounded queue, or move on */
    uint32_t queued = atomic_load_explicit(&ps->queued, memory_order_relaxed);
    if (pc->queue_size != 0 && queued < pc->queue_size && pc->queue_timeout_ms != 0) {
        lg_pipeline_worker_t *pw = x->pw;
        atomic_fetch_add_explicit(&ps->queued, 1, memory_order_relaxed);
        a->state = LG_ATTEMPT_QUEUED;
        a->wq_deadline_ms = lg_now_ms() + pc->queue_timeout_ms;
        a->wq_next = NULL;
        if (pw->waitq_tail != NULL)
            pw->waitq_tail->at.wq_next = x;
        else
            pw->waitq_head = x;
        pw->waitq_tail = x;
        waitq_kick(pw, 10);
        return 0;
    }
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    e.err = LG_EQUEUEFULL;
    e.retryable = 1;
    snprintf(e.message, sizeof(e.message), "provider %s is at its concurrency limit (%u) and its queue is full", pc->name,
             pc->max_concurrent);
    begin_attempt(x, idx);
    a->state = LG_ATTEMPT_LIVE;
    lg_attempts_failed(x, &e);
    return -1;
}

void lg_attempts_run(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    uint32_t max_attempts = x->rt.snap->conf->max_attempts;
    if (!lg_x_active(x))
        return;
    uv_timer_stop(&a->step_timer);
    a->state = LG_ATTEMPT_IDLE;
    if (a->stopped || a->plan_pos >= a->plan_len || a->n >= max_attempts) {
        exhausted(x);
        return;
    }
    /* a failure to start schedules the next step itself (from the loop) */
    start_attempt(x, (int)a->plan[a->plan_pos] - 1);
}

static void on_step(uv_timer_t *t)
{
    lg_exchange_t *x = t->data;
    lg_x_enter(x);
    if (x->at.state == LG_ATTEMPT_NEXT || x->at.state == LG_ATTEMPT_RETRY_WAIT)
        lg_attempts_run(x);
    lg_x_leave(x);
}

/** Worker queue timer: admit waiting requests when a slot frees, fail those past their deadline. */
static void on_waitq_timer(uv_timer_t *t)
{
    lg_pipeline_worker_t *pw = t->data;
    int64_t now = lg_now_ms();
    lg_exchange_t *x = pw->waitq_head;
    while (x != NULL) {
        lg_exchange_t *next = x->at.wq_next;
        lg_x_enter(x);
        const lg_provider_conf_t *pc = lg_x_provider(x, x->at.cur);
        lg_provider_stats_t *ps = provider_stats(x, x->at.cur);
        if (lg_stats_acquire(ps, pc->max_concurrent)) {
            waitq_remove(x);
            x->at.slot_held = 1;
            start_with_slot(x);
        } else if (now >= x->at.wq_deadline_ms) {
            waitq_remove(x);
            lg_upstream_error_t e;
            memset(&e, 0, sizeof(e));
            e.err = LG_EQUEUEFULL;
            e.retryable = 1;
            snprintf(e.message, sizeof(e.message), "waited %u ms for a free slot at provider %s", pc->queue_timeout_ms, pc->name);
            begin_attempt(x, x->at.cur);
            x->at.state = LG_ATTEMPT_LIVE;
            lg_attempts_failed(x, &e);
        }
        lg_x_leave(x);
        x = next;
    }
    if (pw->waitq_head == NULL)
        uv_timer_stop(t);
}

static void waitq_kick(lg_pipeline_worker_t *pw, uint64_t first_ms)
{
    uv_timer_start(&pw->waitq_timer, on_waitq_timer, first_ms, 10);
}

void lg_pipeline_worker_init(lg_pipeline_worker_t *pw, uv_loop_t *loop, lg_upclient_t *up, unsigned index, void *owner)
{
    memset(pw, 0, sizeof(*pw));
    pw->loop = loop;
    pw->up = up;
    pw->index = index;
    pw->owner = owner;
    uv_timer_init(loop, &pw->waitq_timer);
    pw->waitq_timer.data = pw;
}
