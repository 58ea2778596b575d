/* SPDX-License-Identifier: MIT */
/*
 * One generation request from parse to last byte: routing, the policy's
 * attempt plan, provider concurrency slots and queueing, upstream transfers
 * (curl or an in-process provider), SSE relay with keep-alive comments and
 * back-pressure, fallback before the first content byte, error chunks after
 * it, usage and cost, access log.
 *
 * Lifetime: the exchange is heap-owned. A shared chunk in req->pool points at
 * it; its dispose callback (which h2o runs in every case, also when the
 * client leaves early) detaches the request and tears the exchange down.
 * Every entry point (h2o proceed, curl callbacks, timers) holds a guard so
 * the exchange is freed only once no callback is on the stack.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "auth/gate.h"
#include "core/accesslog.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "http/anthropic_ingress.h"
#include "http/handlers.h"
#include "http/passthru.h"
#include "http/request.h"
#include "http/respond.h"
#include "metrics/metrics.h"
#include "plugin/loader.h"
#include "router/cost.h"
#include "router/router.h"
#include "store/ledger.h"
#include "upstream/sse.h"

#define MAX_PLAN 64
#define MAX_HELD 16
#define OUTQ_PAUSE_BYTES (256 * 1024)
#define OUTQ_MAX_BYTES (8 * 1024 * 1024)
#define MAX_RETRIES_PER_CANDIDATE 2

enum step_kind { STEP_NONE, STEP_KICK, STEP_LOCAL_HEAD, STEP_LOCAL_DATA, STEP_RETRY_WAIT };
enum start_result { START_OK, START_QUEUED, START_FAILED };

typedef struct lg_exchange {
    lg_worker_t *w;
    lg_runtime_t *rt;
    h2o_req_t *req; /* NULL once the client is gone */
    h2o_generator_t gen;
    lg_gen_request_t r;
    char id[40];
    int64_t start_us, ttft_us;
    const char *route;
    int anthropic; /* /v1/messages: Anthropic request and response shapes */
    uint64_t conn_id;
    lg_key_entry_t *key;            /* calling key (reference), NULL when the gateway runs open */
    int admitted;                   /* rate limits charged: settle at the end */
    lg_anthropic_stream_t *astream; /* Anthropic event writer, created with the SSE response */
    char msg_id[40];

    /* routing */
    lg_candidate_t cands[LG_MAX_CANDIDATES];
    lg_route_ref_t refs[LG_MAX_CANDIDATES];
    size_t num_cands;
    lg_policy_req_t preq;
    char *preq_block; /* strings behind preq (owned) */
    const char *policy;
    uint32_t plan[MAX_PLAN];
    size_t plan_len, plan_pos;
    uint32_t tries[LG_MAX_CANDIDATES];
    uint32_t attempt_n;
    json_t *attempts;
    int all_rate_limited;
    lg_upstream_error_t last_err;
    int stop;

    /* current attempt */
    int cur; /* candidate index, -1 = none */
    int slot_held;
    lg_xfer_t *xfer;
    lg_call_t call;
    const lg_provider_t *prov;
    void *pstate;
    int up_status;
    int up_sse; /* 2xx event stream being parsed */
    int64_t retry_after_ms;
    lg_sse_parser_t sse;
    int sse_inited;
    void *sstate;
    int sstate_inited;
    lg_buf_t up_body;
    int64_t attempt_start_us;
    int attempt_aborted; /* an SSE event asked to stop this attempt */
    int attempt_live;    /* between start_with_slot and reset_attempt */
    lg_upstream_error_t abort_err;
    int64_t streamed_chars;

    /* in-process provider feed */
    lg_local_resp_t local;
    size_t local_pos;
    int local_active;

    /* step timer: kicks, local feed, retry waits */
    uv_timer_t step_timer;
    int step_inited;
    enum step_kind step;

    /* provider queue */
    struct lg_exchange *wq_next;
    int64_t wq_deadline_ms;
    int in_waitq;

    /* client side */
    int headers_sent, committed, finished, final_queued, send_inflight, paused;
    lg_buf_t outq, sending;
    json_t *held[MAX_HELD];
    size_t num_held;
    uv_timer_t ka_timer;
    int ka_inited;
    uv_timer_t watch_timer; /* HTTP/1 only: notices a client that closed while we wait for the upstream */
    int watch_inited;
    int client_fd;

    /* result */
    json_t *usage;
    char finish_reason[32];
    int status; /* status sent (or to log) */
    int64_t cost_pico;
    int served;    /* candidate index that produced the answer, -1 */
    int last_cand; /* candidate of the latest attempt, -1 */
    int logged;

    /* OpenAI wire pass-through of the current attempt (src/http/passthru.h) */
    int pt;           /* this attempt forwards bytes: no plugin parse, no trees */
    int pt_done;      /* saw data: [DONE] */
    int pt_finish;    /* saw a finish_reason */
    lg_buf_t pt_body; /* upstream body of the attempt */
    lg_buf_t pt_held; /* rewritten chunks held back before the commit point */
    size_t pt_held_n;
    lg_buf_t pt_usage_raw; /* the upstream's usage object, as sent (x->usage stays NULL on this path) */
    lg_buf_t pt_head;      /* the owned members of this attempt's chunks, rendered once (lg_pt_write_head) */
    lg_pt_usage_t pt_usage;
    int pt_has_usage;

    /* lifetime */
    int guard;
    int handles_open;
    int torn_down;
} lg_exchange_t;

static void run_plan(lg_exchange_t *x);
static void respond_err(lg_exchange_t *x, int err, int status, const char *msg, json_t *meta);
static void waitq_kick(lg_worker_t *w, uint64_t first_ms);
static void teardown(lg_exchange_t *x);
static void finish_failure(lg_exchange_t *x);
static void up_head(lg_exchange_t *x, int status);
static void up_data(lg_exchange_t *x, const char *data, size_t len);
static void up_done(lg_exchange_t *x, int result, const char *msg);

/* ---- lifetime ---- */

static void exchange_free(lg_exchange_t *x)
{
    lg_buf_dispose(&x->outq);
    lg_buf_dispose(&x->sending);
    lg_buf_dispose(&x->up_body);
    lg_buf_dispose(&x->pt_body);
    lg_buf_dispose(&x->pt_held);
    lg_buf_dispose(&x->pt_usage_raw);
    lg_buf_dispose(&x->pt_head);
    for (size_t i = 0; i < x->num_held; ++i)
        json_decref(x->held[i]);
    json_decref(x->usage);
    json_decref(x->attempts);
    lg_gen_request_dispose(&x->r);
    free(x->preq_block);
    free(x->local.body);
    if (x->astream != NULL)
        lg_anthropic_stream_destroy(x->astream);
    if (x->key != NULL)
        lg_key_entry_release(x->key);
    lg_runtime_unref(x->rt);
    lg__worker_request_done(x->w);
    free(x);
}

static void enter(lg_exchange_t *x)
{
    ++x->guard;
}

static void leave(lg_exchange_t *x)
{
    if (--x->guard == 0 && x->torn_down && x->handles_open == 0)
        exchange_free(x);
}

static void on_handle_closed(uv_handle_t *h)
{
    lg_exchange_t *x = h->data;
    if (--x->handles_open == 0 && x->guard == 0 && x->torn_down)
        exchange_free(x);
}

static void on_req_dispose(void *p)
{
    lg_exchange_t *x = *(lg_exchange_t **)p;
    enter(x);
    if (!x->finished && x->status == 0)
        lg_abuse_note_cancel(&x->w->abuse, x->conn_id, lg_now_ms());
    x->req = NULL;
    teardown(x);
    leave(x);
}

/* ---- timers ---- */

static void on_step(uv_timer_t *t);

static void step_after(lg_exchange_t *x, enum step_kind kind, uint64_t ms)
{
    if (!x->step_inited) {
        uv_timer_init(&x->w->loop, &x->step_timer);
        x->step_timer.data = x;
        x->step_inited = 1;
        ++x->handles_open;
    }
    x->step = kind;
    uv_timer_start(&x->step_timer, on_step, ms, 0);
}

static void stop_step(lg_exchange_t *x)
{
    if (x->step_inited)
        uv_timer_stop(&x->step_timer);
    x->step = STEP_NONE;
}

/* ---- client output ---- */

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req);

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    /* the client went away mid-response; the pool dispose that follows does the cleanup */
    (void)gen;
    (void)req;
}

static void flush_out(lg_exchange_t *x)
{
    if (x->req == NULL || !x->headers_sent || x->send_inflight || x->finished)
        return;
    if (x->outq.len == 0 && !x->final_queued)
        return;
    lg_buf_t tmp = x->sending;
    x->sending = x->outq;
    x->outq = tmp;
    lg_buf_reset(&x->outq);
    h2o_iovec_t iov = h2o_iovec_init(x->sending.data, x->sending.len);
    h2o_send_state_t state = x->final_queued ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
    x->send_inflight = 1;
    if (x->final_queued)
        x->finished = 1;
    h2o_send(x->req, &iov, iov.len != 0 ? 1 : 0, state);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    lg_exchange_t *x = H2O_STRUCT_FROM_MEMBER(lg_exchange_t, gen, gen);
    enter(x);
    x->send_inflight = 0;
    lg_buf_reset(&x->sending);
    flush_out(x);
    if (x->paused && x->outq.len < OUTQ_PAUSE_BYTES / 2 && x->xfer != NULL) {
        x->paused = 0;
        lg_xfer_resume(x->xfer);
    }
    leave(x);
}

static void start_sse(lg_exchange_t *x)
{
    if (x->headers_sent || x->req == NULL)
        return;
    h2o_req_t *req = x->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    lg_add_header(req, "x-accel-buffering", "no");
    lg_add_header(req, "x-generation-id", x->id);
    x->gen.proceed = on_proceed;
    x->gen.stop = on_stop;
    x->headers_sent = 1;
    x->status = 200;
    if (x->anthropic)
        x->astream = lg_anthropic_stream_create(x->msg_id, x->preq.model, x->r.prompt_tokens_estimate);
    h2o_start_response(req, &x->gen);
    /* No zero-length send to "flush the headers": on HTTP/1.1 chunked responses h2o 2.2.5 writes nothing for it and
     * defers the proceed through its zero timeout, which only delays the first event. The headers go out with the
     * first bytes the caller queues right after this (a chunk, or the keep-alive comment). */
}

/** Queue bytes for the client without sending yet: an SSE event is assembled whole before it goes out, so it never
 * straddles two writes (and a round trip through h2o's proceed). */
static void out_append(lg_exchange_t *x, const char *data, size_t len)
{
    if (x->req == NULL || x->finished || x->final_queued)
        return;
    if (lg_buf_append(&x->outq, data, len) != 0) {
        /* the client does not read: give up on it rather than buffer without bound */
        LG_LOG(LG_LOG_WARN, "http", "%s: client output buffer over %d bytes, closing", x->id, OUTQ_MAX_BYTES);
        x->final_queued = 1;
    }
}

static void out_write(lg_exchange_t *x, const char *data, size_t len)
{
    out_append(x, data, len);
    flush_out(x);
}

static void out_event_json(lg_exchange_t *x, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(obj);
    if (s == NULL)
        return;
    size_t n = strlen(s);
    out_append(x, "data: ", 6);
    out_append(x, s, n);
    out_append(x, "\n\n", 2);
    free(s);
}

/**
 * One OpenAI chunk to the client, in the ingress format; queued only: callers flush once per batch (the commit point
 * flushes at once so the first token is not held behind the rest of an upstream read). Takes the reference.
 */
static void out_chunk(lg_exchange_t *x, json_t *chunk)
{
    if (!x->anthropic) {
        out_event_json(x, chunk);
        return;
    }
    if (x->req != NULL && !x->final_queued && lg_anthropic_stream_chunk(x->astream, chunk, &x->outq) != 0)
        x->final_queued = 1; /* client output cap: end the stream */
    json_decref(chunk);
}

static void on_keepalive(uv_timer_t *t)
{
    lg_exchange_t *x = t->data;
    enter(x);
    if (x->req == NULL || x->committed || x->finished) {
        uv_timer_stop(t);
    } else {
        start_sse(x);
        if (x->anthropic) {
            /* Anthropic streams keep alive with ping events, never comments */
            lg_anthropic_stream_begin(x->astream, &x->outq);
            lg_anthropic_stream_ping(&x->outq);
            flush_out(x);
        } else {
            out_write(x, ": PROCESSING\n\n", 14);
        }
    }
    leave(x);
}

/* ---- response building ---- */

static const lg_provider_conf_t *cand_provider(const lg_exchange_t *x, int idx)
{
    return &x->rt->snap->conf->providers[x->refs[idx].provider_index];
}

static const lg_endpoint_conf_t *cand_endpoint(const lg_exchange_t *x, int idx)
{
    const lg_route_ref_t *ref = &x->refs[idx];
    return &x->rt->snap->conf->models[ref->model_index].endpoints[ref->endpoint_index];
}

static const char *object_name(const lg_exchange_t *x, int chunk)
{
    switch (x->r.kind) {
    case LG_API_CHAT:
        return chunk ? "chat.completion.chunk" : "chat.completion";
    case LG_API_COMPLETIONS:
        return "text_completion";
    default:
        return "list";
    }
}

/** New object with the gateway's header fields, then the plugin's fields (minus the ones the host owns). */
static json_t *wrap(lg_exchange_t *x, json_t *inner, int chunk)
{
    int idx = x->served >= 0 ? x->served : x->cur;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(x->id));
    json_object_set_new(o, "object", json_string(object_name(x, chunk)));
    json_object_set_new(o, "created", json_integer(lg_unix_time()));
    json_object_set_new(o, "model", json_string(idx >= 0 ? x->cands[idx].model : x->preq.model));
    json_object_set_new(o, "provider", json_string(idx >= 0 ? x->cands[idx].provider : ""));
    if (inner != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(inner, k, v)
        {
            if (strcmp(k, "id") == 0 || strcmp(k, "object") == 0 || strcmp(k, "created") == 0 || strcmp(k, "model") == 0 ||
                strcmp(k, "provider") == 0 || strcmp(k, "usage") == 0)
                continue;
            json_object_set(o, k, v);
        }
    }
    return o;
}

/** usage + cost as OpenRouter reports it; estimates counts when the upstream sent none. */
static json_t *final_usage(lg_exchange_t *x)
{
    json_t *u = x->usage != NULL  ? json_deep_copy(x->usage)
                : x->pt_has_usage ? json_loadb(x->pt_usage_raw.data, x->pt_usage_raw.len, 0, NULL) /* error paths only */
                                  : NULL;
    if (u == NULL)
        u = json_object();
    if (json_object_get(u, "prompt_tokens") == NULL)
        json_object_set_new(u, "prompt_tokens", json_integer(x->r.prompt_tokens_estimate));
    if (json_object_get(u, "completion_tokens") == NULL)
        json_object_set_new(u, "completion_tokens", json_integer((x->streamed_chars + 3) / 4)); /* ~4 chars a token */
    if (json_object_get(u, "total_tokens") == NULL)
        json_object_set_new(u, "total_tokens",
                            json_integer(json_integer_value(json_object_get(u, "prompt_tokens")) +
                                         json_integer_value(json_object_get(u, "completion_tokens"))));
    lg_usage_t counts;
    lg_usage_from_json(u, &counts);
    int idx = x->served >= 0 ? x->served : x->cur;
    x->cost_pico = idx >= 0 ? lg_cost_pico(&cand_endpoint(x, idx)->price, &counts) : 0;
    json_object_set_new(u, "cost", lg_cost_json(x->cost_pico));
    json_object_set_new(u, "is_byok", json_false());
    json_object_set_new(u, "cost_details", json_pack("{s:n}", "upstream_inference_cost"));
    return u;
}

/* ---- bookkeeping ---- */

static void release_slot(lg_exchange_t *x)
{
    if (x->slot_held) {
        lg_stats_release(x->rt->snap->pstats[x->refs[x->cur].provider_index]);
        x->slot_held = 0;
        /* a slot freed on this worker may let a queued request go now */
        if (x->w->waitq_head != NULL)
            waitq_kick(x->w, 0);
    }
}

static void reset_attempt(lg_exchange_t *x)
{
    x->attempt_live = 0;
    if (x->xfer != NULL) {
        lg_xfer_cancel(x->xfer);
        x->xfer = NULL;
    }
    if (x->local_active) {
        stop_step(x);
        x->local_active = 0;
    }
    free(x->local.body);
    memset(&x->local, 0, sizeof(x->local));
    x->local_pos = 0;
    if (x->sse_inited) {
        lg_sse_parser_dispose(&x->sse);
        x->sse_inited = 0;
    }
    if (x->sstate_inited) {
        if (x->prov->stream_free != NULL)
            x->prov->stream_free(x->pstate, x->sstate);
        x->sstate_inited = 0;
        x->sstate = NULL;
    }
    lg_buf_reset(&x->up_body);
    lg_buf_reset(&x->pt_held);
    lg_buf_reset(&x->pt_head);
    x->pt_held_n = 0;
    x->pt = x->pt_done = x->pt_finish = 0;
    x->up_status = 0;
    x->up_sse = 0;
    x->attempt_aborted = 0;
    x->retry_after_ms = -1;
    release_slot(x);
}

static int metric_model(const lg_exchange_t *x, int idx)
{
    return idx >= 0 ? x->rt->snap->model_metric_id[x->refs[idx].model_index] : 0;
}

static int metric_provider(const lg_exchange_t *x, int idx)
{
    return idx >= 0 ? x->rt->snap->provider_metric_id[x->refs[idx].provider_index] : 0;
}

static void record_metrics(lg_exchange_t *x, int64_t now_us, const lg_usage_t *u)
{
    static const lg_route_t routes[] = {LG_ROUTE_CHAT, LG_ROUTE_COMPLETIONS, LG_ROUTE_EMBEDDINGS};
    lg_route_t route = x->anthropic ? LG_ROUTE_MESSAGES : routes[x->r.kind];
    int idx = x->served >= 0 ? x->served : x->last_cand;
    int model = idx >= 0 ? metric_model(x, idx) : x->num_cands != 0 ? metric_model(x, 0) : 0;
    lg_metrics_request(x->w->index, route, model, metric_provider(x, idx), x->status, (double)(now_us - x->start_us) / 1e6,
                       x->ttft_us != 0 ? (double)(x->ttft_us - x->start_us) / 1e6 : -1, u->prompt_tokens, u->completion_tokens,
                       x->cost_pico, x->r.stream);
    if (x->served >= 0 && x->attempt_n > 1)
        lg_metrics_fallback(x->w->index, model);
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/** One ledger row per routed generation request, also for failures (they cost nothing). Never blocks: a full queue
 * drops the row and the ledger counts it. */
static void submit_ledger_row(lg_exchange_t *x, int64_t now_us, const lg_usage_t *u)
{
    lg_ledger_t *ledger = lg_gate_ledger();
    if (ledger == NULL)
        return;
    lg_generation_row_t row;
    memset(&row, 0, sizeof(row));
    int idx = x->served >= 0 ? x->served : x->last_cand;
    copy_field(row.id, sizeof(row.id), x->id, strlen(x->id));
    row.created_at_ms = lg_gate_now_ms();
    if (x->key != NULL)
        copy_field(row.key_id, sizeof(row.key_id), lg_key_entry_record(x->key)->id, strlen(lg_key_entry_record(x->key)->id));
    copy_field(row.requested_model, sizeof(row.requested_model), x->r.models[0], x->r.model_lens[0]);
    if (idx >= 0) {
        copy_field(row.served_model, sizeof(row.served_model), x->cands[idx].model, strlen(x->cands[idx].model));
        copy_field(row.provider, sizeof(row.provider), x->cands[idx].provider, strlen(x->cands[idx].provider));
        copy_field(row.upstream_model, sizeof(row.upstream_model), x->cands[idx].upstream_model,
                   strlen(x->cands[idx].upstream_model));
    }
    copy_field(row.api, sizeof(row.api), x->route, strlen(x->route));
    row.attempts_json = json_dumps(x->attempts, JSON_COMPACT | JSON_REAL_PRECISION(10));
    row.prompt_tokens = u->prompt_tokens;
    row.completion_tokens = u->completion_tokens;
    row.cached_tokens = u->cached_tokens;
    row.cache_write_tokens = u->cache_write_tokens;
    row.reasoning_tokens = u->reasoning_tokens;
    row.cost_pico = x->served >= 0 ? x->cost_pico : 0;
    row.latency_ms = (double)(now_us - x->start_us) / 1000.0;
    row.ttft_ms = x->ttft_us != 0 ? (double)(x->ttft_us - x->start_us) / 1000.0 : -1;
    row.generation_time_ms = x->ttft_us != 0 ? (double)(now_us - x->ttft_us) / 1000.0 : 0;
    row.status = x->status;
    copy_field(row.finish_reason, sizeof(row.finish_reason), x->finish_reason, strlen(x->finish_reason));
    copy_field(row.native_finish_reason, sizeof(row.native_finish_reason), x->finish_reason, strlen(x->finish_reason));
    row.streamed = x->r.stream;
    row.cancelled = x->status == 499;
    lg_ledger_submit(ledger, &row); /* takes attempts_json */
}

static void access_log(lg_exchange_t *x)
{
    if (x->logged)
        return;
    x->logged = 1;
    int64_t now = lg_now_us();
    int idx = x->served;
    if (x->req == NULL && !x->finished && x->status == 0)
        x->status = 499;
    lg_usage_t u = {0};
    if (x->usage != NULL)
        lg_usage_from_json(x->usage, &u);
    else if (x->pt_has_usage)
        u = x->pt_usage.u;
    if (x->rt->vm != NULL && x->num_cands != 0) {
        lg_policy_result_t res = {.ok = idx >= 0,
                                  .id = idx >= 0 ? (uint32_t)idx + 1 : 0,
                                  .attempts = x->attempt_n,
                                  .status = x->status,
                                  .error_type = idx >= 0 ? NULL : lg_err_type(x->last_err.err),
                                  .prompt_tokens = u.prompt_tokens,
                                  .completion_tokens = u.completion_tokens,
                                  .ttft_ms = x->ttft_us != 0 ? (double)(x->ttft_us - x->start_us) / 1000.0 : -1,
                                  .latency_ms = (double)(now - x->start_us) / 1000.0};
        lg_policy_on_done(x->rt->vm, x->policy, &x->preq, &res);
    }
    record_metrics(x, now, &u);
    if (x->admitted)
        lg_key_settle(x->key, x->r.prompt_tokens_estimate, u.prompt_tokens + u.completion_tokens, x->cost_pico, lg_gate_now_ms());
    if (x->plan_len != 0) /* routed and admitted: a generation (refusals before routing are not) */
        submit_ledger_row(x, now, &u);
    if (!lg_accesslog_enabled())
        return;
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *rec =
        json_pack("{s:s,s:s,s:s,s:s%,s:i,s:i,s:f,s:b}", "ts", ts, "id", x->id, "route", x->route, "model",
                  x->r.num_models != 0 ? x->r.models[0] : "", x->r.num_models != 0 ? x->r.model_lens[0] : 0, "status", x->status,
                  "attempts", (int)x->attempt_n, "latency_ms", (double)(now - x->start_us) / 1000.0, "stream", x->r.stream);
    if (x->key != NULL)
        json_object_set_new(rec, "key_id", json_string(lg_key_entry_record(x->key)->id));
    if (idx >= 0) {
        json_object_set_new(rec, "provider", json_string(x->cands[idx].provider));
        json_object_set_new(rec, "served_model", json_string(x->cands[idx].model));
    }
    if (x->ttft_us != 0)
        json_object_set_new(rec, "ttft_ms", json_real((double)(x->ttft_us - x->start_us) / 1000.0));
    json_object_set_new(rec, "prompt_tokens", json_integer(u.prompt_tokens));
    json_object_set_new(rec, "completion_tokens", json_integer(u.completion_tokens));
    json_object_set_new(rec, "cost", lg_cost_json(x->cost_pico));
    if (idx < 0 && x->status >= 400)
        json_object_set_new(rec, "error_type", json_string(lg_err_type(x->last_err.err)));
    lg_accesslog_write(rec);
}

static void waitq_remove(lg_exchange_t *x)
{
    if (!x->in_waitq)
        return;
    lg_worker_t *w = x->w;
    lg_exchange_t **pp = &w->waitq_head, *prev = NULL;
    while (*pp != NULL && *pp != x) {
        prev = *pp;
        pp = &(*pp)->wq_next;
    }
    if (*pp == x) {
        *pp = x->wq_next;
        if (w->waitq_tail == x)
            w->waitq_tail = prev;
    }
    x->in_waitq = 0;
    x->wq_next = NULL;
    atomic_fetch_sub_explicit(&x->rt->snap->pstats[x->refs[x->cur].provider_index]->queued, 1, memory_order_relaxed);
}

static void teardown(lg_exchange_t *x)
{
    if (x->torn_down)
        return;
    x->torn_down = 1;
    waitq_remove(x);
    reset_attempt(x); /* cancels the upstream transfer at once: no tokens wasted on a gone client */
    access_log(x);
    if (x->step_inited)
        uv_close((uv_handle_t *)&x->step_timer, on_handle_closed);
    if (x->ka_inited)
        uv_close((uv_handle_t *)&x->ka_timer, on_handle_closed);
    if (x->watch_inited)
        uv_close((uv_handle_t *)&x->watch_timer, on_handle_closed);
    x->step_inited = x->ka_inited = x->watch_inited = 0;
}

/* ---- success ---- */

static void record_success(lg_exchange_t *x)
{
    int idx = x->cur;
    int64_t now = lg_now_us();
    lg_usage_t u = {0};
    if (x->usage != NULL)
        lg_usage_from_json(x->usage, &u);
    else if (x->pt_has_usage)
        u = x->pt_usage.u;
    lg_endpoint_stats_t *st = x->rt->snap->estats[x->refs[idx].model_index][x->refs[idx].endpoint_index];
    double ttft = x->ttft_us != 0 ? (double)(x->ttft_us - x->attempt_start_us) / 1000.0 : -1;
    lg_stats_success(st, (double)(now - x->attempt_start_us) / 1000.0, ttft, u.completion_tokens);
    lg_metrics_attempt(x->w->index, metric_provider(x, idx), metric_model(x, idx), 1, LG_ERRCLASS_OTHER);
    json_array_append_new(x->attempts,
                          json_pack("{s:s,s:s,s:i,s:f}", "provider", x->cands[idx].provider, "model", x->cands[idx].upstream_model,
                                    "status", x->up_status, "latency_ms", (double)(now - x->attempt_start_us) / 1000.0));
    x->served = idx;
}

static void commit(lg_exchange_t *x)
{
    if (x->committed)
        return;
    x->committed = 1;
    if (x->ttft_us == 0)
        x->ttft_us = lg_now_us();
    start_sse(x);
    for (size_t i = 0; i < x->num_held; ++i)
        out_chunk(x, wrap(x, x->held[i], 1)), json_decref(x->held[i]);
    x->num_held = 0;
    if (x->pt_held.len != 0) /* pass-through: already rewritten bytes */
        out_append(x, x->pt_held.data, x->pt_held.len);
    lg_buf_reset(&x->pt_held);
    x->pt_held_n = 0;
}

static void pt_final_chunk(lg_exchange_t *x);

static void finish_stream_ok(lg_exchange_t *x)
{
    record_success(x);
    commit(x);
    if (x->anthropic) {
        json_t *usage = final_usage(x);
        lg_anthropic_stream_finish(x->astream, usage, &x->outq);
        json_decref(usage);
    } else if (x->pt) {
        pt_final_chunk(x);
        out_write(x, "data: [DONE]\n\n", 14);
    } else {
        json_t *chunk = wrap(x, NULL, 1);
        json_object_set_new(chunk, "choices", json_array());
        json_object_set_new(chunk, "usage", final_usage(x));
        out_event_json(x, chunk);
        out_write(x, "data: [DONE]\n\n", 14);
    }
    x->final_queued = 1;
    flush_out(x);
    reset_attempt(x);
}

static void respond_json_ok(lg_exchange_t *x, json_t *resp)
{
    json_t *fr = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "finish_reason");
    if (json_is_string(fr))
        snprintf(x->finish_reason, sizeof(x->finish_reason), "%s", json_string_value(fr));
    record_success(x);
    x->ttft_us = lg_now_us();
    json_decref(x->usage);
    x->usage = json_incref(json_object_get(resp, "usage"));
    json_t *o = wrap(x, resp, 0);
    json_decref(resp);
    json_object_set_new(o, "usage", final_usage(x));
    reset_attempt(x);
    if (x->req == NULL)
        return;
    lg_add_header(x->req, "x-generation-id", x->id);
    x->status = 200;
    x->finished = 1;
    if (x->anthropic) {
        json_t *a = lg_anthropic_response_from_openai(o, x->msg_id);
        json_decref(o);
        o = a;
    }
    lg_respond_json(x->req, 200, o);
}

/** A 2xx JSON body arrived although the client streams (upstream ignored stream:true): replay it as chunks. */
static void replay_json_as_stream(lg_exchange_t *x, json_t *resp)
{
    json_t *choices = json_object_get(resp, "choices");
    json_decref(x->usage);
    x->usage = json_incref(json_object_get(resp, "usage"));
    commit(x);
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c)
    {
        json_t *delta = json_deep_copy(json_object_get(c, "message"));
        if (delta == NULL)
            delta = json_pack("{s:O?}", "text", json_object_get(c, "text"));
        json_t *tool_calls = json_object_get(delta, "tool_calls");
        size_t k;
        json_t *tc;
        json_array_foreach(tool_calls, k, tc) json_object_set_new(tc, "index", json_integer((json_int_t)k));
        json_t *chunk = wrap(x, NULL, 1);
        json_object_set_new(chunk, "choices",
                            json_pack("[{s:O,s:o,s:O?}]", "index", json_object_get(c, "index"), "delta", delta, "finish_reason",
                                      json_object_get(c, "finish_reason")));
        out_chunk(x, chunk);
    }
    json_decref(resp);
    finish_stream_ok(x);
}

/* ---- failure ---- */

static int err_retryable(int err)
{
    switch (err) {
    case LG_ETIMEOUT:
    case LG_EUPSTREAM:
    case LG_EOVERLOADED:
    case LG_EUPSTREAM_RATELIMIT:
    case LG_EBADRESPONSE:
    case LG_EQUEUEFULL:
    case LG_EUPSTREAM_AUTH:
    case LG_ECONTEXT:
        return 1;
    default:
        return 0;
    }
}

static void send_error_chunk(lg_exchange_t *x, const lg_upstream_error_t *e)
{
    int status = e->status >= 400 ? e->status : lg_err_status(e->err);
    if (x->anthropic) {
        lg_anthropic_stream_error(x->astream, e->err, e->message[0] != '\0' ? e->message : lg_strerror(e->err), &x->outq);
        x->final_queued = 1;
        flush_out(x);
        return;
    }
    json_t *chunk = wrap(x, NULL, 1);
    json_object_set_new(chunk, "error",
                        json_pack("{s:i,s:s,s:{s:s,s:s}}", "code", status, "message",
                                  e->message[0] != '\0' ? e->message : lg_strerror(e->err), "metadata", "error_type",
                                  lg_err_type(e->err), "provider_code", e->provider_code));
    json_object_set_new(chunk, "choices",
                        json_pack("[{s:i,s:{s:s},s:s}]", "index", 0, "delta", "content", "", "finish_reason", "error"));
    out_event_json(x, chunk);
    if (x->usage != NULL || x->pt_has_usage || x->streamed_chars != 0) {
        json_t *uc = wrap(x, NULL, 1);
        json_object_set_new(uc, "choices", json_array());
        json_object_set_new(uc, "usage", final_usage(x)); /* bill what was streamed so far */
        out_event_json(x, uc);
    }
    out_write(x, "data: [DONE]\n\n", 14);
    x->final_queued = 1;
    flush_out(x);
}

/** After the commit point: no failover, the stream ends with an error chunk. */
static void fail_mid_stream(lg_exchange_t *x, const lg_upstream_error_t *e)
{
    int idx = x->cur;
    if (idx >= 0) {
        lg_stats_failure(x->rt->snap->estats[x->refs[idx].model_index][x->refs[idx].endpoint_index],
                         x->rt->snap->conf->unhealthy_after_failures, x->rt->snap->conf->unhealthy_cooldown_ms);
        lg_metrics_attempt(x->w->index, metric_provider(x, idx), metric_model(x, idx), 0, lg_metrics_errclass(e->err));
        x->served = idx;
    }
    x->last_err = *e;
    LG_LOG(LG_LOG_WARN, "upstream", "%s: %s failed mid-stream: %s", x->id, idx >= 0 ? x->cands[idx].provider : "?", e->message);
    send_error_chunk(x, e);
    reset_attempt(x);
}

/** Record a failed attempt before the commit point and let the policy pick what happens next. */
static void attempt_failed(lg_exchange_t *x, lg_upstream_error_t *e)
{
    int idx = x->cur;
    const lg_snapshot_t *snap = x->rt->snap;
    if (e->retry_after_ms <= 0 && x->retry_after_ms > 0)
        e->retry_after_ms = x->retry_after_ms;
    if (e->err != LG_EQUEUEFULL)
        lg_stats_failure(snap->estats[x->refs[idx].model_index][x->refs[idx].endpoint_index], snap->conf->unhealthy_after_failures,
                         snap->conf->unhealthy_cooldown_ms);
    if (e->err != LG_EUPSTREAM_RATELIMIT)
        x->all_rate_limited = 0;
    x->last_err = *e;
    lg_metrics_attempt(x->w->index, metric_provider(x, idx), metric_model(x, idx), 0, lg_metrics_errclass(e->err));
    json_t *a = json_pack("{s:s,s:s,s:i,s:s,s:s,s:f}", "provider", x->cands[idx].provider, "model", x->cands[idx].upstream_model,
                          "status", e->status != 0 ? e->status : lg_err_status(e->err), "error_type", lg_err_type(e->err),
                          "message", e->message[0] != '\0' ? e->message : lg_strerror(e->err), "latency_ms",
                          (double)(lg_now_us() - x->attempt_start_us) / 1000.0);
    if (e->provider_code[0] != '\0')
        json_object_set_new(a, "provider_code", json_string(e->provider_code));
    json_array_append_new(x->attempts, a);
    LG_LOG(LG_LOG_INFO, "upstream", "%s: attempt %u on %s/%s failed: %s (%s)", x->id, x->attempt_n, x->cands[idx].provider,
           x->cands[idx].upstream_model, lg_err_type(e->err), e->message);
    int64_t retry_after = e->retry_after_ms;
    reset_attempt(x);

    lg_policy_attempt_t at = {.n = x->attempt_n, .id = (uint32_t)idx + 1, .tries = x->tries[idx]};
    lg_policy_error_t pe = {.status = e->status,
                            .error_type = lg_err_type(e->err),
                            .retryable = e->retryable,
                            .retry_after_ms = retry_after > 0 ? retry_after : -1,
                            .provider_code = e->provider_code};
    lg_policy_action_t act = x->rt->vm != NULL ? lg_policy_on_error(x->rt->vm, x->policy, &x->preq, &at, &pe)
                                               : (e->retryable ? LG_POLICY_NEXT : LG_POLICY_STOP);
    if (act == LG_POLICY_RETRY && x->tries[idx] >= MAX_RETRIES_PER_CANDIDATE)
        act = LG_POLICY_NEXT;
    if (act == LG_POLICY_STOP) {
        x->stop = 1;
    } else if (act == LG_POLICY_NEXT) {
        ++x->plan_pos;
        /* an endpoint that already failed on this request is not tried again later in the plan ("retry" is the policy's
         * way to ask for that) */
        while (x->plan_pos < x->plan_len && x->tries[x->plan[x->plan_pos] - 1] != 0)
            ++x->plan_pos;
    } else if (retry_after > 0) {
        step_after(x, STEP_RETRY_WAIT, (uint64_t)(retry_after < 2000 ? retry_after : 2000));
        x->cur = -1;
        return;
    }
    x->cur = -1;
}

static void finish_failure(lg_exchange_t *x)
{
    if (x->req == NULL || x->finished)
        return;
    const lg_upstream_error_t *e = &x->last_err;
    int err = e->err != 0 ? e->err : LG_ENOENDPOINT;
    int status;
    const char *msg;
    char buf[200];
    if (x->attempt_n == 0) {
        status = 503;
        err = LG_ENOENDPOINT;
        msg = "No endpoint could be tried for this request";
    } else if (x->all_rate_limited) {
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
    x->status = status;
    if (x->headers_sent) {
        lg_upstream_error_t fe = *e;
        fe.err = err;
        fe.status = status;
        snprintf(fe.message, sizeof(fe.message), "%s", msg);
        send_error_chunk(x, &fe);
        return;
    }
    json_t *meta = json_pack("{s:O}", "attempts", x->attempts);
    if (e->provider_code[0] != '\0')
        json_object_set_new(meta, "provider_code", json_string(e->provider_code));
    if (x->attempt_n != 0 && json_array_size(x->attempts) != 0)
        json_object_set(meta, "provider_name",
                        json_object_get(json_array_get(x->attempts, json_array_size(x->attempts) - 1), "provider"));
    json_t *prev = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(x->attempts, i, a)
        json_array_append_new(prev, json_pack("{s:O,s:O,s:O}", "provider", json_object_get(a, "provider"), "code",
                                              json_object_get(a, "error_type"), "status", json_object_get(a, "status")));
    json_object_set_new(meta, "previous_errors", prev);
    if (status == 429 || status == 503) {
        char ra[32];
        snprintf(ra, sizeof(ra), "%lld", (long long)(e->retry_after_ms > 0 ? (e->retry_after_ms + 999) / 1000 : 1));
        lg_add_header(x->req, "retry-after", ra);
    }
    respond_err(x, err, status, msg, meta);
}

/** An error response before anything was sent, in the ingress's error shape. meta is stolen. */
static void respond_err(lg_exchange_t *x, int err, int status, const char *msg, json_t *meta)
{
    if (status == 0)
        status = lg_err_status(err);
    x->status = status;
    x->finished = 1;
    if (x->last_err.err == 0)
        x->last_err.err = err; /* the access log's error_type */
    lg_add_header(x->req, "x-generation-id", x->id);
    if (x->anthropic) {
        json_decref(meta);
        x->status = status = lg_anthropic_error_status(err, status);
        lg_respond_json(x->req, status, lg_anthropic_error_json(err, status, msg));
    } else {
        lg_respond_error(x->req, err, status, msg, meta);
    }
}

/* ---- upstream events (shared by curl transfers and in-process providers) ---- */

static int chunk_has_content(const json_t *chunk)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(chunk, "choices"), i, c)
    {
        if (!json_is_null(json_object_get(c, "finish_reason")) && json_object_get(c, "finish_reason") != NULL)
            return 1;
        json_t *text = json_object_get(c, "text");
        if (json_is_string(text) && json_string_length(text) != 0)
            return 1;
        json_t *d = json_object_get(c, "delta");
        const char *k;
        json_t *v;
        json_object_foreach(d, k, v)
        {
            if (strcmp(k, "role") == 0 || json_is_null(v))
                continue;
            if (json_is_string(v) && json_string_length(v) == 0)
                continue;
            return 1;
        }
    }
    return 0;
}

static void note_chunk(lg_exchange_t *x, const json_t *chunk)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(chunk, "choices"), i, c)
    {
        json_t *fr = json_object_get(c, "finish_reason");
        if (json_is_string(fr))
            snprintf(x->finish_reason, sizeof(x->finish_reason), "%s", json_string_value(fr));
        json_t *d = json_object_get(c, "delta");
        json_t *content = json_object_get(d != NULL ? d : c, d != NULL ? "content" : "text");
        if (json_is_string(content))
            x->streamed_chars += (int64_t)json_string_length(content);
    }
}

static void handle_stream_out(lg_exchange_t *x, lg_stream_out_t *out)
{
    if (out->usage != NULL) {
        json_decref(x->usage);
        x->usage = out->usage;
        out->usage = NULL;
    }
    for (size_t i = 0; i < out->num_chunks; ++i) {
        json_t *chunk = out->chunks[i];
        out->chunks[i] = NULL;
        if (chunk == NULL)
            continue;
        note_chunk(x, chunk);
        int committing = !x->committed && (chunk_has_content(chunk) || x->num_held == MAX_HELD);
        if (committing)
            commit(x);
        if (x->committed)
            out_chunk(x, wrap(x, chunk, 1)), json_decref(chunk);
        else
            x->held[x->num_held++] = chunk;
        if (committing)
            flush_out(x); /* the first token leaves now, in one write with the held role chunk */
    }
    out->num_chunks = 0;
}

static int pt_on_event(lg_exchange_t *x, const lg_sse_event_t *ev);

static int on_sse_event(void *ctx, const lg_sse_event_t *ev)
{
    lg_exchange_t *x = ctx;
    if (x->pt)
        return pt_on_event(x, ev);
    lg_stream_out_t out;
    lg_errbuf_t perr = {{0}};
    memset(&out, 0, sizeof(out));
    int rc = x->prov->parse_stream_event(x->pstate, x->sstate, ev, &out, &perr);
    handle_stream_out(x, &out);
    json_decref(out.usage);
    if (rc == 0 && out.error == 0)
        return 0;
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    e.err = out.error != 0 ? out.error : rc;
    e.status = out.error_status;
    e.retryable = err_retryable(e.err);
    snprintf(e.message, sizeof(e.message), "%s",
             out.error_message[0] != '\0' ? out.error_message
             : perr.msg[0] != '\0'        ? perr.msg
                                          : lg_strerror(e.err));
    snprintf(e.provider_code, sizeof(e.provider_code), "%s", out.provider_code);
    x->attempt_aborted = 1;
    x->abort_err = e;
    return 1;
}

static int on_sse_comment(void *ctx, const char *text, size_t len)
{
    lg_exchange_t *x = ctx;
    /* upstream comments stay comments; before our headers went out there is nobody to forward them to; Anthropic's
     * event streams have no comments */
    if (x->headers_sent && x->committed && !x->anthropic) {
        out_append(x, ":", 1);
        if (len != 0)
            out_append(x, " ", 1);
        out_append(x, text, len);
        out_write(x, "\n\n", 2);
    }
    return 0;
}

static void up_head(lg_exchange_t *x, int status)
{
    x->up_status = status;
    if (x->xfer != NULL) {
        const char *ra = lg_xfer_header(x->xfer, "retry-after");
        if (ra != NULL) {
            char *end;
            long secs = strtol(ra, &end, 10);
            if (end != ra && secs >= 0)
                x->retry_after_ms = secs * 1000;
        }
    }
    if (status >= 200 && status < 300 && x->r.stream) {
        const char *ct = x->xfer != NULL ? lg_xfer_header(x->xfer, "content-type") : NULL;
        int is_sse = x->xfer == NULL || (ct != NULL && strstr(ct, "event-stream") != NULL);
        if (is_sse) {
            x->up_sse = 1;
            lg_sse_parser_init(&x->sse, 4 * 1024 * 1024, on_sse_event, on_sse_comment, x);
            x->sse_inited = 1;
            x->sstate = NULL;
            if (x->pt) {
                /* pass-through: the host reads the chunks itself, the plugin keeps no stream state */
            } else if (x->prov->stream_begin != NULL && x->prov->stream_begin(x->pstate, &x->call, &x->sstate) != 0) {
                x->attempt_aborted = 1;
                memset(&x->abort_err, 0, sizeof(x->abort_err));
                x->abort_err.err = LG_EINTERNAL;
                snprintf(x->abort_err.message, sizeof(x->abort_err.message), "plugin could not start a stream");
            }
            x->sstate_inited = !x->pt;
        }
    }
}

/** Called after an attempt was aborted by an event: fail over or end the stream. */
static void handle_abort(lg_exchange_t *x)
{
    lg_upstream_error_t e = x->abort_err;
    if (x->committed) {
        fail_mid_stream(x, &e);
        return;
    }
    attempt_failed(x, &e);
    if (x->step == STEP_NONE)
        step_after(x, STEP_KICK, 0);
}

static void up_data(lg_exchange_t *x, const char *data, size_t len)
{
    if (x->up_sse) {
        int rc = lg_sse_parser_feed(&x->sse, data, len);
        flush_out(x); /* the events of one upstream read leave in one write */
        if (rc != 0 && !x->attempt_aborted) {
            x->attempt_aborted = 1;
            memset(&x->abort_err, 0, sizeof(x->abort_err));
            x->abort_err.err = LG_EBADRESPONSE;
            x->abort_err.retryable = 1;
            snprintf(x->abort_err.message, sizeof(x->abort_err.message), "upstream event stream too large or malformed");
        }
        if (x->attempt_aborted)
            handle_abort(x);
        return;
    }
    if (lg_buf_append(&x->up_body, data, len) != 0) {
        x->attempt_aborted = 1;
        memset(&x->abort_err, 0, sizeof(x->abort_err));
        x->abort_err.err = LG_EBADRESPONSE;
        x->abort_err.retryable = 1;
        snprintf(x->abort_err.message, sizeof(x->abort_err.message), "upstream response larger than %zu bytes", x->up_body.max);
        handle_abort(x);
    }
}

static void pt_stream_end(lg_exchange_t *x);
static void pt_reply(lg_exchange_t *x);

static void up_done(lg_exchange_t *x, int result, const char *msg)
{
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    if (result != 0) {
        e.err = result == LG_ECANCELLED ? LG_EUPSTREAM : result;
        e.status = 0;
        e.retryable = 1;
        snprintf(e.message, sizeof(e.message), "%s", msg != NULL && msg[0] != '\0' ? msg : lg_strerror(result));
        if (x->committed) {
            fail_mid_stream(x, &e);
            return;
        }
        attempt_failed(x, &e);
        if (x->step == STEP_NONE)
            step_after(x, STEP_KICK, 0);
        return;
    }
    if (x->up_sse && x->pt) {
        pt_stream_end(x);
        return;
    }
    if (x->up_sse) {
        lg_stream_out_t out;
        lg_errbuf_t perr = {{0}};
        memset(&out, 0, sizeof(out));
        int truncated = lg_sse_parser_finish(&x->sse);
        int rc = x->prov->stream_end != NULL ? x->prov->stream_end(x->pstate, x->sstate, &out, &perr) : 0;
        handle_stream_out(x, &out);
        json_decref(out.usage);
        if (rc == 0) {
            (void)truncated;
            finish_stream_ok(x);
            return;
        }
        e.err = rc;
        e.retryable = 1;
        snprintf(e.message, sizeof(e.message), "%s", perr.msg[0] != '\0' ? perr.msg : "upstream stream ended before completion");
        if (x->committed) {
            fail_mid_stream(x, &e);
            return;
        }
        attempt_failed(x, &e);
        if (x->step == STEP_NONE)
            step_after(x, STEP_KICK, 0);
        return;
    }
    if (x->up_status >= 200 && x->up_status < 300 && x->pt && !x->r.stream) {
        pt_reply(x);
        return;
    }
    if (x->up_status >= 200 && x->up_status < 300) {
        json_t *resp = NULL;
        lg_errbuf_t perr = {{0}};
        int rc = x->prov->parse_response(x->pstate, &x->call, x->up_status, x->up_body.data != NULL ? x->up_body.data : "",
                                         x->up_body.len, &resp, &perr);
        if (rc == 0 && resp != NULL) {
            if (x->r.stream)
                replay_json_as_stream(x, resp);
            else
                respond_json_ok(x, resp);
            return;
        }
        json_decref(resp);
        x->prov->classify_error(x->pstate, x->up_status, x->up_body.data, x->up_body.len, &e);
        if (e.err == 0 || e.err == LG_OK) {
            e.err = rc != 0 ? rc : LG_EBADRESPONSE;
            e.retryable = 1;
        }
        if (perr.msg[0] != '\0')
            snprintf(e.message, sizeof(e.message), "%s", perr.msg);
    } else {
        x->prov->classify_error(x->pstate, x->up_status, x->up_body.data, x->up_body.len, &e);
        if (e.err == 0)
            e.err = LG_EUPSTREAM, e.retryable = 1;
        if (e.status == 0)
            e.status = x->up_status;
    }
    attempt_failed(x, &e);
    if (x->step == STEP_NONE)
        step_after(x, STEP_KICK, 0);
}

/* ---- OpenAI wire pass-through (src/http/passthru.h): bytes forwarded, only gateway-owned members rewritten ---- */

/** Decide per attempt whether the upstream body is spliced from the client's bytes and the reply forwarded. */
static void pt_prepare(lg_exchange_t *x, const lg_snapshot_t *snap)
{
    (void)snap;
    x->pt = 0;
    x->pt_has_usage = 0; /* a failed attempt's usage is not this one's */
    x->call.wire_body = NULL;
    x->call.wire_body_len = 0;
    int (*wire_ok)(void *, const lg_call_t *) = lg_provider_wire_fn(x->prov);
    if (x->anthropic || x->req == NULL || x->r.wire.type != LG_JSON_OBJECT || wire_ok == NULL ||
        (x->prov->capabilities & LG_CAP_WIRE_OPENAI) == 0 || (x->prov->capabilities & LG_CAP_LOCAL) != 0 ||
        (x->r.kind != LG_API_CHAT && x->r.kind != LG_API_COMPLETIONS))
        return;
    if (!wire_ok(x->pstate, &x->call))
        return;
    lg_pt_body_opts_t o = {.model = x->call.upstream_model, .stream = x->r.stream, .include_usage = 1};
    lg_buf_reset(&x->pt_body);
    if (lg_pt_upstream_body(x->r.wire, &o, &x->pt_body) != 0)
        return; /* over the cap: the tree path reports it */
    x->pt = 1;
    x->call.wire_body = x->pt_body.data;
    x->call.wire_body_len = x->pt_body.len;
}

static lg_pt_owned_t pt_owned(const lg_exchange_t *x, int chunk)
{
    int idx = x->served >= 0 ? x->served : x->cur;
    lg_pt_owned_t o = {x->id, object_name(x, chunk), lg_unix_time(), idx >= 0 ? x->cands[idx].model : x->preq.model,
                       idx >= 0 ? x->cands[idx].provider : ""};
    return o;
}

/** Keep the usage the upstream sent (bytes + counters): what the ledger, metrics and our final usage read. */
static void pt_take_usage(lg_exchange_t *x, lg_json_span_t usage)
{
    lg_buf_reset(&x->pt_usage_raw);
    if (lg_buf_append(&x->pt_usage_raw, usage.p, usage.len) != 0)
        return;
    lg_pt_usage_read(usage, &x->pt_usage);
    /* as the plugins' normaliser does: an upstream usage object defines all three totals (absent = 0) */
    x->pt_usage.has_prompt = x->pt_usage.has_completion = x->pt_usage.has_total = 1;
    x->pt_has_usage = 1;
}

/** Our usage object (counts, estimates where the upstream sent none, cost) as bytes; sets x->cost_pico. */
static int pt_usage_bytes(lg_exchange_t *x, lg_buf_t *out)
{
    lg_pt_usage_t f;
    lg_json_span_t span = {0};
    if (x->pt_has_usage) {
        f = x->pt_usage;
        span = lg_json_span_at(x->pt_usage_raw.data, x->pt_usage_raw.data + x->pt_usage_raw.len);
    } else {
        memset(&f, 0, sizeof(f));
        f.u.prompt_tokens = x->r.prompt_tokens_estimate;
        f.u.completion_tokens = (x->streamed_chars + 3) / 4; /* ~4 chars a token */
        f.total_tokens = f.u.prompt_tokens + f.u.completion_tokens;
    }
    int idx = x->served >= 0 ? x->served : x->cur;
    x->cost_pico = idx >= 0 ? lg_cost_pico(&cand_endpoint(x, idx)->price, &f.u) : 0;
    return lg_pt_write_usage(span, &f, x->cost_pico, out);
}

/** The final usage chunk of a pass-through stream. */
static void pt_final_chunk(lg_exchange_t *x)
{
    static const char empty_choices[] = "{\"choices\":[]}";
    lg_buf_t usage, ev;
    lg_buf_init(&usage, 128 * 1024);
    lg_buf_init(&ev, 256 * 1024);
    lg_pt_info_t info;
    char err[64];
    (void)lg_pt_check_chunk(empty_choices, sizeof(empty_choices) - 1, &info, err, sizeof(err));
    lg_pt_owned_t own = pt_owned(x, 1);
    if (pt_usage_bytes(x, &usage) == 0 && lg_buf_append(&ev, "data: ", 6) == 0 &&
        lg_pt_write_reply(&info, &own, usage.data, usage.len, &ev) == 0 && lg_buf_append(&ev, "\n\n", 2) == 0)
        out_append(x, ev.data, ev.len);
    lg_buf_dispose(&usage);
    lg_buf_dispose(&ev);
}

static void pt_fail(lg_exchange_t *x, int err, const char *msg)
{
    memset(&x->abort_err, 0, sizeof(x->abort_err));
    x->abort_err.err = err;
    x->abort_err.retryable = 1;
    snprintf(x->abort_err.message, sizeof(x->abort_err.message), "%s", msg);
    x->attempt_aborted = 1;
}

static int pt_on_event(lg_exchange_t *x, const lg_sse_event_t *ev)
{
    lg_pt_info_t info;
    char err[256];
    lg_pt_status_t st = lg_pt_check_chunk(ev->data, ev->data_len, &info, err, sizeof(err));
    if (st == LG_PT_DONE) {
        x->pt_done = 1;
        return 0;
    }
    if (st == LG_PT_OK && ev->event_len == 5 && memcmp(ev->event, "error", 5) == 0)
        st = LG_PT_ERROR_OBJECT;
    if (st == LG_PT_ERROR_OBJECT) {
        lg_upstream_error_t e;
        memset(&e, 0, sizeof(e));
        x->prov->classify_error(x->pstate, 200, ev->data, ev->data_len, &e);
        e.retryable = err_retryable(e.err);
        x->abort_err = e;
        x->attempt_aborted = 1;
        return 1;
    }
    if (st != LG_PT_OK) {
        pt_fail(x, LG_EBADRESPONSE, err);
        return 1;
    }
    if (info.usage.type == LG_JSON_OBJECT)
        pt_take_usage(x, info.usage);
    if (info.num_choices == 0)
        return 0; /* usage-only chunk: the final usage chunk is ours */
    if (info.finish_reason[0] != '\0') {
        x->pt_finish = 1;
        snprintf(x->finish_reason, sizeof(x->finish_reason), "%s", info.finish_reason);
    }
    x->streamed_chars += info.content_chars;
    int committing = !x->committed && (info.has_content || x->pt_held_n == MAX_HELD);
    if (committing)
        commit(x);
    if (x->pt_head.len == 0) {
        lg_pt_owned_t own = pt_owned(x, 1);
        if (lg_pt_write_head(&own, &x->pt_head) != 0) {
            pt_fail(x, LG_EINTERNAL, "cannot encode the chunk header");
            return 1;
        }
    }
    if (x->committed) {
        if (x->req != NULL && !x->finished && !x->final_queued &&
            lg_pt_write_chunk_head(&info, x->pt_head.data, x->pt_head.len, &x->outq) != 0)
            x->final_queued = 1; /* client output cap: end the stream */
    } else if (lg_pt_write_chunk_head(&info, x->pt_head.data, x->pt_head.len, &x->pt_held) == 0) {
        ++x->pt_held_n;
    }
    if (committing)
        flush_out(x); /* the first token leaves now, in one write with the held role chunk */
    return 0;
}

static void pt_stream_end(lg_exchange_t *x)
{
    (void)lg_sse_parser_finish(&x->sse); /* a last event without its blank line still counts */
    if (x->attempt_aborted) {
        handle_abort(x);
        return;
    }
    if (x->pt_finish) {
        finish_stream_ok(x);
        return;
    }
    /* [DONE] alone, or EOF, without any finish_reason: the answer is incomplete */
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    e.err = LG_EBADRESPONSE;
    e.retryable = 1;
    snprintf(e.message, sizeof(e.message), "%s",
             x->pt_done ? "upstream stream ended without a finish_reason" : "upstream closed the stream before it finished");
    if (x->committed) {
        fail_mid_stream(x, &e);
        return;
    }
    attempt_failed(x, &e);
    if (x->step == STEP_NONE)
        step_after(x, STEP_KICK, 0);
}

static void pt_reply(lg_exchange_t *x)
{
    lg_pt_info_t info;
    char err[256];
    const char *body = x->up_body.data != NULL ? x->up_body.data : "";
    lg_pt_status_t st = lg_pt_check_reply(body, x->up_body.len, &info, err, sizeof(err));
    if (st != LG_PT_OK) {
        lg_upstream_error_t e;
        memset(&e, 0, sizeof(e));
        x->prov->classify_error(x->pstate, x->up_status, x->up_body.data, x->up_body.len, &e);
        if (st == LG_PT_BAD || e.err == 0) {
            e.err = LG_EBADRESPONSE;
            e.retryable = 1;
            snprintf(e.message, sizeof(e.message), "%s", err);
        }
        attempt_failed(x, &e);
        if (x->step == STEP_NONE)
            step_after(x, STEP_KICK, 0);
        return;
    }
    if (info.finish_reason[0] != '\0')
        snprintf(x->finish_reason, sizeof(x->finish_reason), "%s", info.finish_reason);
    if (info.usage.type == LG_JSON_OBJECT)
        pt_take_usage(x, info.usage);
    record_success(x);
    x->ttft_us = lg_now_us();
    lg_buf_t usage, out;
    lg_buf_init(&usage, 128 * 1024);
    int urc = pt_usage_bytes(x, &usage);
    lg_buf_init(&out, x->up_body.len + 4096 + usage.len);
    lg_pt_owned_t own = pt_owned(x, 0);
    int rc = urc == 0 ? lg_pt_write_reply(&info, &own, usage.data, usage.len, &out) : -1;
    lg_buf_dispose(&usage);
    reset_attempt(x);
    if (x->req != NULL) {
        lg_add_header(x->req, "x-generation-id", x->id);
        x->status = 200;
        x->finished = 1;
        if (rc == 0)
            lg_respond_raw(x->req, 200, "application/json", out.data, out.len);
        else
            lg_respond_error(x->req, LG_EINTERNAL, 500, "cannot encode response", NULL);
    }
    lg_buf_dispose(&out);
}

/* ---- curl transfer callbacks ---- */

static int xfer_on_head(void *ctx, lg_xfer_t *xf, int status)
{
    lg_exchange_t *x = ctx;
    (void)xf;
    enter(x);
    up_head(x, status);
    int abort = x->attempt_aborted;
    if (abort) {
        lg_xfer_cancel(x->xfer);
        x->xfer = NULL;
        handle_abort(x);
    }
    leave(x);
    return 0;
}

static int xfer_on_data(void *ctx, lg_xfer_t *xf, const char *data, size_t len)
{
    lg_exchange_t *x = ctx;
    (void)xf;
    enter(x);
    lg_xfer_t *mine = x->xfer;
    /* while the bytes are processed, failure paths must not cancel the transfer under curl's feet: detach it, and
     * cancel it here (allowed inside a callback) if the attempt ended */
    x->xfer = NULL;
    up_data(x, data, len);
    int rc = 0;
    if (x->attempt_live) {
        x->xfer = mine;
        if (x->outq.len > OUTQ_PAUSE_BYTES) {
            x->paused = 1; /* the client reads slower than the upstream writes: stop reading upstream */
            rc = 1;
        }
    } else {
        lg_xfer_cancel(mine);
    }
    leave(x);
    return rc;
}

static void xfer_on_done(void *ctx, lg_xfer_t *xf, int result, const char *msg)
{
    lg_exchange_t *x = ctx;
    (void)xf;
    enter(x);
    x->xfer = NULL; /* freed by the client after we return */
    up_done(x, result, msg);
    leave(x);
}

static const lg_xfer_callbacks_t xfer_callbacks = {xfer_on_head, xfer_on_data, xfer_on_done};

/* ---- in-process providers ---- */

static void local_step(lg_exchange_t *x)
{
    if (x->step == STEP_LOCAL_HEAD) {
        up_head(x, x->local.status);
        if (x->attempt_aborted) {
            x->local_active = 0;
            handle_abort(x);
            return;
        }
    }
    size_t remaining = x->local.body_len - x->local_pos;
    size_t piece = remaining;
    int paced = x->local.chunk_delay_ms != 0 || x->local.chunk_bytes != 0;
    if (paced && remaining != 0) {
        if (x->local.chunk_bytes != 0) {
            piece = x->local.chunk_bytes < remaining ? x->local.chunk_bytes : remaining;
        } else {
            /* split at SSE event boundaries */
            const char *p = x->local.body + x->local_pos;
            const char *sep = memmem(p, remaining, "\n\n", 2);
            piece = sep != NULL ? (size_t)(sep - p) + 2 : remaining;
        }
    }
    if (piece != 0) {
        const char *p = x->local.body + x->local_pos;
        x->local_pos += piece;
        up_data(x, p, piece);
        if (x->attempt_aborted || x->cur < 0 || !x->local_active)
            return;
    }
    if (x->local_pos < x->local.body_len) {
        step_after(x, STEP_LOCAL_DATA, x->local.chunk_delay_ms);
        return;
    }
    x->local_active = 0;
    up_done(x, 0, NULL);
}

static void on_step(uv_timer_t *t)
{
    lg_exchange_t *x = t->data;
    enter(x);
    enum step_kind kind = x->step;
    x->step = STEP_NONE;
    if (x->req != NULL && !x->torn_down) {
        switch (kind) {
        case STEP_LOCAL_HEAD:
        case STEP_LOCAL_DATA:
            x->step = kind;
            local_step(x);
            if (x->step == kind)
                x->step = STEP_NONE;
            break;
        case STEP_KICK:
        case STEP_RETRY_WAIT:
            run_plan(x);
            break;
        default:
            break;
        }
    }
    leave(x);
}

/* ---- attempts ---- */

static void pt_prepare(lg_exchange_t *x, const lg_snapshot_t *snap);

static enum start_result start_with_slot(lg_exchange_t *x)
{
    int idx = x->cur;
    const lg_route_ref_t *ref = &x->refs[idx];
    const lg_snapshot_t *snap = x->rt->snap;
    const lg_provider_conf_t *pc = &snap->conf->providers[ref->provider_index];
    const lg_endpoint_conf_t *ep = cand_endpoint(x, idx);
    x->prov = snap->plugins[ref->provider_index]->provider;
    x->pstate = x->rt->pstates[ref->provider_index];
    if (x->pstate == (void *)&x->rt->pstates[ref->provider_index])
        x->pstate = NULL;
    ++x->attempt_n;
    ++x->tries[idx];
    x->attempt_start_us = lg_now_us();
    x->retry_after_ms = -1;
    x->attempt_live = 1;
    memset(&x->call, 0, sizeof(x->call));
    x->call.struct_size = sizeof(x->call);
    x->call.kind = (lg_api_kind_t)x->r.kind;
    x->call.stream = x->r.stream;
    x->call.body = NULL; /* set below: the tree only when the attempt is not a pass-through */
    x->call.upstream_model = ep->upstream_model;
    x->call.public_model = x->cands[idx].model;
    x->call.max_output_tokens = ep->max_completion_tokens;
    x->call.request_id = x->id;
    lg_buf_init(&x->up_body, snap->conf->max_upstream_bytes);
    pt_prepare(x, snap);
    if (!x->pt)
        x->call.body = lg_gen_request_body(&x->r); /* built on first use, once per request */

    lg_errbuf_t perr = {{0}};
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    if (x->prov->capabilities & LG_CAP_LOCAL) {
        int rc = x->prov->local_respond(x->pstate, &x->call, &x->local, &perr);
        if (rc != 0) {
            e.err = rc;
            e.retryable = err_retryable(rc);
            snprintf(e.message, sizeof(e.message), "%s", perr.msg);
            attempt_failed(x, &e);
            return START_FAILED;
        }
        x->local_active = 1;
        x->local_pos = 0;
        step_after(x, STEP_LOCAL_HEAD, x->local.first_delay_ms);
        return START_OK;
    }

    lg_http_req_t hr;
    memset(&hr, 0, sizeof(hr));
    int rc = x->prov->build_request(x->pstate, &x->call, &hr, &perr);
    char xerr[256] = "";
    if (rc == 0) {
        lg_xfer_opts_t opts = {.connect_timeout_ms = pc->connect_timeout_ms,
                               .first_byte_timeout_ms = pc->first_byte_timeout_ms,
                               .idle_timeout_ms = pc->idle_timeout_ms,
                               .total_timeout_ms = pc->total_timeout_ms,
                               .max_response_bytes = x->r.stream ? 0 : snap->conf->max_upstream_bytes};
        x->xfer = lg_xfer_start(x->w->up, &hr, &opts, &xfer_callbacks, x, xerr, sizeof(xerr));
    }
    free(hr.method);
    free(hr.url);
    free(hr.body);
    for (size_t i = 0; i < hr.num_headers && i < LG_HTTP_MAX_HEADERS; ++i) {
        free(hr.headers[i].name);
        free(hr.headers[i].value);
    }
    if (rc != 0 || x->xfer == NULL) {
        e.err = rc != 0 ? rc : LG_EINTERNAL;
        e.retryable = rc == 0 || err_retryable(rc);
        snprintf(e.message, sizeof(e.message), "%s", rc != 0 ? perr.msg : xerr);
        attempt_failed(x, &e);
        return START_FAILED;
    }
    return START_OK;
}

static enum start_result start_attempt(lg_exchange_t *x, int idx)
{
    const lg_snapshot_t *snap = x->rt->snap;
    const lg_route_ref_t *ref = &x->refs[idx];
    const lg_provider_conf_t *pc = &snap->conf->providers[ref->provider_index];
    lg_provider_stats_t *ps = snap->pstats[ref->provider_index];
    x->cur = idx;
    x->last_cand = idx;
    if (lg_stats_acquire(ps, pc->max_concurrent)) {
        x->slot_held = 1;
        return start_with_slot(x);
    }
    /* provider at its concurrency limit: wait in the bounded queue, or move on */
    uint32_t queued = atomic_load_explicit(&ps->queued, memory_order_relaxed);
    if (pc->queue_size != 0 && queued < pc->queue_size && pc->queue_timeout_ms != 0) {
        atomic_fetch_add_explicit(&ps->queued, 1, memory_order_relaxed);
        x->in_waitq = 1;
        x->wq_deadline_ms = lg_now_ms() + pc->queue_timeout_ms;
        x->wq_next = NULL;
        if (x->w->waitq_tail != NULL)
            x->w->waitq_tail->wq_next = x;
        else
            x->w->waitq_head = x;
        x->w->waitq_tail = x;
        waitq_kick(x->w, 10);
        return START_QUEUED;
    }
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    e.err = LG_EQUEUEFULL;
    e.retryable = 1;
    snprintf(e.message, sizeof(e.message), "provider %s is at its concurrency limit (%u) and its queue is full", pc->name,
             pc->max_concurrent);
    ++x->attempt_n;
    ++x->tries[idx];
    x->attempt_start_us = lg_now_us();
    attempt_failed(x, &e);
    return START_FAILED;
}

static void run_plan(lg_exchange_t *x)
{
    uint32_t max_attempts = x->rt->snap->conf->max_attempts;
    for (;;) {
        if (x->req == NULL || x->finished)
            return;
        if (x->stop || x->plan_pos >= x->plan_len || x->attempt_n >= max_attempts) {
            finish_failure(x);
            return;
        }
        enum start_result rc = start_attempt(x, (int)x->plan[x->plan_pos] - 1);
        if (rc != START_FAILED)
            return;
        if (x->step == STEP_RETRY_WAIT)
            return;
    }
}

/** Worker queue timer: admit waiting requests when a slot frees, fail those past their deadline. */
static void on_waitq_timer(uv_timer_t *t)
{
    lg_worker_t *w = t->data;
    int64_t now = lg_now_ms();
    lg_exchange_t *x = w->waitq_head;
    while (x != NULL) {
        lg_exchange_t *next = x->wq_next;
        enter(x);
        const lg_provider_conf_t *pc = cand_provider(x, x->cur);
        lg_provider_stats_t *ps = x->rt->snap->pstats[x->refs[x->cur].provider_index];
        if (lg_stats_acquire(ps, pc->max_concurrent)) {
            waitq_remove(x);
            x->slot_held = 1;
            if (start_with_slot(x) == START_FAILED && x->step == STEP_NONE)
                run_plan(x);
        } else if (now >= x->wq_deadline_ms) {
            waitq_remove(x);
            lg_upstream_error_t e;
            memset(&e, 0, sizeof(e));
            e.err = LG_EQUEUEFULL;
            e.retryable = 1;
            snprintf(e.message, sizeof(e.message), "waited %u ms for a free slot at provider %s", pc->queue_timeout_ms, pc->name);
            ++x->attempt_n;
            ++x->tries[x->cur];
            x->attempt_start_us = lg_now_us();
            attempt_failed(x, &e);
            if (x->step == STEP_NONE)
                run_plan(x);
        }
        leave(x);
        x = next;
    }
    if (w->waitq_head == NULL)
        uv_timer_stop(t);
}

/*
 * h2o 2.2.5 does not read an HTTP/1 connection while a request is being handled, so a client that gives up on a
 * non-streaming request (or a stream before its first byte) goes unnoticed until we write. Peek at the socket now and
 * then: EOF or a reset means the client is gone, and the upstream transfer is cancelled at once. HTTP/2 needs none of
 * this: h2o keeps reading frames and disposes the request on RST_STREAM.
 */
static int client_socket_fd(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return -1;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL)
        return -1;
    /* libuv flavour: the uv stream pointer is the first member after the public h2o_socket_t (st_h2o_uv_socket_t in
     * h2o 2.2.5's lib/common/socket/uv-binding.c.h); checked against its type and loop before use */
    uv_handle_t *h = *(uv_handle_t **)((char *)sock + sizeof(h2o_socket_t));
    uv_os_fd_t fd;
    if (h == NULL || h->type != UV_TCP || h->loop != req->conn->ctx->loop || uv_fileno(h, &fd) != 0)
        return -1;
    return fd;
}

static void on_watch(uv_timer_t *t)
{
    lg_exchange_t *x = t->data;
    enter(x);
    if (x->req == NULL || x->finished || x->headers_sent) {
        uv_timer_stop(t);
    } else {
        char c;
        ssize_t n = recv(x->client_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            uv_timer_stop(t);
            LG_LOG(LG_LOG_INFO, "http", "%s: client closed the connection; cancelling the upstream request", x->id);
            waitq_remove(x);
            reset_attempt(x);
            stop_step(x);
            x->status = 499;
            x->finished = 1;
            access_log(x);
            /* the write fails on the closed socket and h2o closes the connection, which disposes the request */
            lg_respond_error(x->req, LG_ECANCELLED, 499, NULL, NULL);
        }
    }
    leave(x);
}

static void waitq_kick(lg_worker_t *w, uint64_t first_ms)
{
    uv_timer_start(&w->waitq_timer, on_waitq_timer, first_ms, 10);
}

/* ---- keys: allow-lists and limits ---- */

/** Model allow-list and rate/credit admission for the calling key. Responds and returns non-zero when refused. */
static int admit(lg_exchange_t *x)
{
    char msg[300];
    for (size_t i = 0; i < x->r.num_models; ++i) {
        char model[256];
        copy_field(model, sizeof(model), x->r.models[i], x->r.model_lens[i]);
        if (!lg_key_model_allowed(x->key, model)) {
            lg_metrics_rejected(x->w->index, "forbidden");
            snprintf(msg, sizeof(msg), "model %s is not allowed for this key", model);
            respond_err(x, LG_EFORBIDDEN, 403, msg, NULL);
            return -1;
        }
    }
    lg_admit_t a;
    if (lg_key_admit(x->key, x->r.prompt_tokens_estimate, lg_gate_now_ms(), &a) == 0) {
        x->admitted = 1;
        return 0;
    }
    lg_metrics_rejected(x->w->index, a.reason != NULL ? a.reason : "auth");
    if (a.err == LG_ERATELIMIT) {
        char v[32];
        snprintf(v, sizeof(v), "%lld", (long long)((a.retry_after_ms + 999) / 1000));
        lg_add_header(x->req, "retry-after", v);
        snprintf(v, sizeof(v), "%lld", (long long)a.limit);
        lg_add_header(x->req, "x-ratelimit-limit", v);
        snprintf(v, sizeof(v), "%lld", (long long)a.remaining);
        lg_add_header(x->req, "x-ratelimit-remaining", v);
        snprintf(v, sizeof(v), "%lld", (long long)a.reset_unix_ms);
        lg_add_header(x->req, "x-ratelimit-reset", v);
        snprintf(msg, sizeof(msg), "rate limit exceeded (%s): retry in %lld ms", a.reason, (long long)a.retry_after_ms);
        respond_err(x, LG_ERATELIMIT, 429, msg,
                    json_pack("{s:s,s:I}", "limit", a.reason, "retry_after_ms", (json_int_t)a.retry_after_ms));
    } else if (a.err == LG_ECREDIT) {
        respond_err(x, LG_ECREDIT, 402, "insufficient credits: this key's credit limit is exhausted", NULL);
    } else {
        snprintf(msg, sizeof(msg), "API key %s", a.reason != NULL ? a.reason : "refused");
        respond_err(x, LG_EAUTH, 401, msg, NULL);
    }
    return -1;
}

/* ---- entry ---- */

/** The policy's view of the request. Strings are copied into one block owned by the exchange: on_error and on_done run
 * later, after other requests of this worker have come and gone. */
static void build_policy_req(lg_exchange_t *x)
{
    lg_policy_req_t *p = &x->preq;
    const lg_config_t *conf = x->rt->snap->conf;
    const char *hv[16];
    size_t hl[16], nh = 0, need = 0;
    const char *hn[16];
    for (size_t i = 0; conf->expose_headers != NULL && conf->expose_headers[i] != NULL && nh < 16; ++i) {
        size_t len;
        const char *v = lg_req_header(x->req, conf->expose_headers[i], &len);
        if (v == NULL)
            continue;
        hn[nh] = conf->expose_headers[i];
        hv[nh] = v;
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
    x->preq_block = block;
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
    long mi = lg_snapshot_find_model(x->rt->snap, x->r.models[0], x->r.model_lens[0]);
    const char *policy = mi >= 0 ? conf->models[mi].policy : NULL;
    x->policy = policy != NULL ? policy : conf->default_policy;
}

static void make_plan(lg_exchange_t *x)
{
    char err[256];
    int rc = LG_EPOLICY;
    if (x->num_cands == 1) {
        /* one candidate has one order: skip the VM (~10 µs of interpreted Lua) on the most common path */
        x->plan[0] = 1;
        x->plan_len = 1;
        rc = 0;
    } else if (x->rt->vm != NULL && lg_policy_exists(x->rt->vm, x->policy))
        rc = lg_policy_select(x->rt->vm, x->policy, &x->preq, x->cands, x->num_cands, x->plan, MAX_PLAN, &x->plan_len, err,
                              sizeof(err));
    if (rc != 0 || x->plan_len == 0) {
        if (x->num_cands > 1)
            lg_metrics_policy_error(x->w->index);
        x->plan_len = lg_policy_builtin_plan(&x->preq, x->cands, x->num_cands, x->plan, MAX_PLAN);
    }
    /* allow_fallbacks:false without an order list: only the first choice per model */
    if (!x->r.allow_fallbacks && (x->r.provider == NULL || json_object_get(x->r.provider, "order") == NULL)) {
        size_t out = 0;
        uint32_t seen_models = 0;
        for (size_t i = 0; i < x->plan_len; ++i) {
            uint32_t mi = x->cands[x->plan[i] - 1].model_index;
            if (mi < 32 && (seen_models & (1u << mi)))
                continue;
            seen_models |= mi < 32 ? 1u << mi : 0;
            x->plan[out++] = x->plan[i];
        }
        x->plan_len = out;
    }
}

void lg_handle_generate(lg_worker_t *w, h2o_req_t *req, int kind, int anthropic)
{
    const lg_config_t *conf = w->rt->snap->conf;
    static const char *const routes[] = {"chat/completions", "completions", "embeddings"};
    if (req->entity.len > conf->max_body_bytes) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body of %zu bytes exceeds the limit of %zu bytes", req->entity.len,
                 conf->max_body_bytes);
        if (anthropic)
            lg_respond_json(req, 413, lg_anthropic_error_json(LG_ETOOLARGE, 413, msg));
        else
            lg_respond_error(req, LG_ETOOLARGE, 413, msg, NULL);
        return;
    }
    if (lg_abuse_blocked(&w->abuse, req->conn->id, lg_now_ms())) {
        /* rapid reset: refuse before any parsing, routing or upstream work */
        lg_respond_error(req, LG_ERATELIMIT, 429, "too many cancelled requests on this connection", NULL);
        return;
    }
    lg_exchange_t *x = lg_malloc(sizeof(*x));
    memset(x, 0, sizeof(*x));
    x->conn_id = req->conn->id;
    x->w = w;
    x->rt = lg_runtime_ref(w->rt);
    x->req = req;
    x->cur = -1;
    x->served = -1;
    x->last_cand = -1;
    x->route = anthropic ? "messages" : routes[kind];
    x->anthropic = anthropic;
    x->start_us = lg_now_us();
    x->all_rate_limited = 1;
    x->attempts = json_array();
    x->retry_after_ms = -1;
    lg_buf_init(&x->outq, OUTQ_MAX_BYTES);
    lg_buf_init(&x->sending, OUTQ_MAX_BYTES);
    lg_buf_init(&x->up_body, conf->max_upstream_bytes);
    lg_buf_init(&x->pt_body, conf->max_body_bytes + 64 * 1024);
    lg_buf_init(&x->pt_held, OUTQ_MAX_BYTES);
    lg_buf_init(&x->pt_usage_raw, 64 * 1024);
    lg_buf_init(&x->pt_head, 64 * 1024);
    lg_random_id(x->id, "gen-", 24);
    memcpy(x->msg_id, "msg_", 4);
    memcpy(x->msg_id + 4, x->id + 4, 25); /* same random part: the Anthropic id maps to the generation id */
    lg__worker_request_begin(w);
    *(lg_exchange_t **)h2o_mem_alloc_shared(&req->pool, sizeof(lg_exchange_t *), on_req_dispose) = x;
    enter(x);

    char err[512];
    const char *body = req->entity.base != NULL ? req->entity.base : "";
    const char *auth_msg = NULL;
    int rc = lg_gate_authenticate(req, &x->key, &auth_msg);
    if (rc != 0) {
        lg_metrics_rejected(w->index, "auth");
        respond_err(x, rc, 401, auth_msg, NULL);
        goto done;
    }
    if (anthropic) {
        json_error_t jerr;
        json_t *in = json_loadb(body, req->entity.len, 0, &jerr), *translated = NULL;
        if (in == NULL) {
            snprintf(err, sizeof(err), "invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
            rc = LG_EINVAL;
        } else {
            rc = lg_anthropic_request_to_openai(in, &translated, err, sizeof(err));
            json_decref(in);
        }
        if (rc == 0)
            rc = lg_gen_request_from_json(&x->r, LG_API_CHAT, translated, err, sizeof(err));
    } else {
        rc = lg_gen_request_parse(&x->r, kind, body, req->entity.len, err, sizeof(err));
    }
    if (rc != 0) {
        respond_err(x, rc, 400, err, NULL);
        goto done;
    }
    json_t *meta = NULL;
    rc = lg_router_candidates(w->rt->snap, w->rt->pstates, &x->r, x->cands, x->refs, &x->num_cands, &meta, err, sizeof(err));
    if (rc != 0) {
        respond_err(x, rc, 0, err, meta);
        goto done;
    }
    if (x->key != NULL && admit(x) != 0)
        goto done;
    build_policy_req(x);
    make_plan(x);
    if (x->r.stream && conf->keepalive == LG_KEEPALIVE_COMMENT && conf->keepalive_interval_ms != 0) {
        uv_timer_init(&w->loop, &x->ka_timer);
        x->ka_timer.data = x;
        x->ka_inited = 1;
        ++x->handles_open;
        uv_timer_start(&x->ka_timer, on_keepalive, conf->keepalive_interval_ms, conf->keepalive_interval_ms);
    }
    if ((x->client_fd = client_socket_fd(req)) >= 0) {
        uv_timer_init(&w->loop, &x->watch_timer);
        x->watch_timer.data = x;
        x->watch_inited = 1;
        ++x->handles_open;
        uv_timer_start(&x->watch_timer, on_watch, 200, 200);
    }
    run_plan(x);
done:
    leave(x);
}
