/* SPDX-License-Identifier: MIT */
/*
 * Settlement: what an exchange cost and how it ended, written once. The final
 * usage the client is told (upstream counts, estimated where missing, plus
 * the cost from the catalog price) is the same set of counts the key is
 * charged, the ledger records and the access log shows. Then the policy's
 * on_done, the request metrics, the key's limits, one ledger row per routed
 * generation (also for failures) and one access-log line.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "auth/gate.h"
#include "core/accesslog.h"
#include "core/error.h"
#include "metrics/metrics.h"
#include "pipeline/exchange.h"

/* A response-cache hit: zero usage, no charge (the stored answer's counts belong to its first request). */
static json_t *cached_usage(lg_exchange_t *x)
{
    lg_cost_t zero = {0, 0, 0};
    memset(&x->st.billed, 0, sizeof(x->st.billed));
    x->st.cost_pico = 0;
    json_t *u = json_pack("{s:i,s:i,s:i}", "prompt_tokens", 0, "completion_tokens", 0, "total_tokens", 0);
    json_object_set_new(u, "cost", lg_cost_json(0));
    json_object_set_new(u, "is_byok", json_false());
    json_object_set_new(u, "cost_details", lg_cost_details_json(&zero, 0));
    return u;
}

/** The live attempt's usage object (upstream counts, estimated where missing) with its counts and its cost. A
 * continuation attempt that produced nothing counts nothing (its broken predecessors are folded in by the caller). */
static json_t *attempt_usage(lg_exchange_t *x, lg_usage_t *counts, lg_cost_t *cost)
{
    lg_settlement_t *st = &x->st;
    memset(cost, 0, sizeof(*cost));
    if (x->cont.count != 0 && st->usage == NULL && !x->wire.has_usage && st->streamed_chars == 0) {
        memset(counts, 0, sizeof(*counts));
        return json_object();
    }
    json_t *u = st->usage != NULL ? json_deep_copy(st->usage) : lg_wire_usage_json(x); /* pass-through: error paths */
    if (u == NULL)
        u = json_object();
    if (json_object_get(u, "prompt_tokens") == NULL)
        json_object_set_new(u, "prompt_tokens", json_integer(x->r.prompt_tokens_estimate));
    if (json_object_get(u, "completion_tokens") == NULL)
        json_object_set_new(u, "completion_tokens", json_integer((st->streamed_chars + 3) / 4)); /* ~4 chars a token */
    if (json_object_get(u, "total_tokens") == NULL)
        json_object_set_new(u, "total_tokens",
                            json_integer(json_integer_value(json_object_get(u, "prompt_tokens")) +
                                         json_integer_value(json_object_get(u, "completion_tokens"))));
    lg_usage_from_json(u, counts);
    int idx = x->at.served >= 0 ? x->at.served : x->at.cur;
    if (idx >= 0)
        lg_cost_compute(&lg_x_endpoint(x, idx)->price, counts,
                        x->r.kind == LG_API_EMBEDDINGS ? LG_COST_INPUT_ONLY : LG_COST_GENERATION, cost);
    return u;
}

void lg_settle_attempt_counts(lg_exchange_t *x, lg_usage_t *u, lg_cost_t *cost)
{
    json_decref(attempt_usage(x, u, cost));
}

json_t *lg_settle_final_usage(lg_exchange_t *x)
{
    lg_settlement_t *st = &x->st;
    if (lg_xcache_hit(x))
        return cached_usage(x);
    lg_cost_t cost;
    json_t *u = attempt_usage(x, &st->billed, &cost);
    if (x->cont.count != 0) { /* mid-stream failover: the client's one answer came from several attempts */
        lg_continue_fold(x, &st->billed, &cost);
        json_object_set_new(u, "prompt_tokens", json_integer(st->billed.prompt_tokens));
        json_object_set_new(u, "completion_tokens", json_integer(st->billed.completion_tokens));
        json_object_set_new(u, "total_tokens", json_integer(st->billed.prompt_tokens + st->billed.completion_tokens));
    }
    st->cost_pico = cost.total;
    json_object_set_new(u, "cost", lg_cost_json(st->cost_pico));
    json_object_set_new(u, "is_byok", json_false());
    json_object_set_new(u, "cost_details", lg_cost_details_json(&cost, 0));
    return u;
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/** Candidate the exchange is accounted to: the one that served (or failed late), else the latest attempt's. */
static int accounted_cand(const lg_exchange_t *x)
{
    return x->at.served >= 0 ? x->at.served : x->at.last_cand;
}

/** Something reached the client, so the upstream's work is billed: an answer, a stream that failed (or was cut, or
 * lost its client) after the commit point. */
static int charged(const lg_exchange_t *x)
{
    return x->st.outcome == LG_OUTCOME_OK || x->st.outcome == LG_OUTCOME_FAILED_LATE ||
           (x->st.outcome == LG_OUTCOME_CANCELLED && lg_relay_committed(x));
}

static void record_metrics(lg_exchange_t *x, int64_t now_us)
{
    const lg_snapshot_t *snap = x->rt.snap;
    int idx = accounted_cand(x);
    int model = idx >= 0               ? snap->model_metric_id[x->at.refs[idx].model_index]
                : x->at.num_cands != 0 ? snap->model_metric_id[x->at.refs[0].model_index]
                                       : 0;
    int provider = idx >= 0 ? snap->provider_metric_id[x->at.refs[idx].provider_index] : 0;
    lg_metrics_request(x->pw->index, x->skin->metrics, model, provider, x->st.status, (double)(now_us - x->st.start_us) / 1e6,
                       x->st.ttft_us != 0 ? (double)(x->st.ttft_us - x->st.start_us) / 1e6 : -1, x->st.billed.prompt_tokens,
                       x->st.billed.completion_tokens, x->st.cost_pico, x->r.stream);
    if (x->st.outcome == LG_OUTCOME_OK && x->at.n > 1)
        lg_metrics_fallback(x->pw->index, model);
}

/** One ledger row per routed generation request, also for failures (they cost nothing). Never blocks: a full queue
 * drops the row and the ledger counts it. */
static void submit_ledger_row(lg_exchange_t *x, int64_t now_us)
{
    lg_ledger_t *ledger = lg_gate_ledger();
    if (ledger == NULL)
        return;
    const lg_settlement_t *st = &x->st;
    lg_generation_row_t row;
    memset(&row, 0, sizeof(row));
    int idx = accounted_cand(x);
    copy_field(row.id, sizeof(row.id), x->id, strlen(x->id));
    row.created_at_ms = lg_gate_now_ms();
    if (x->key != NULL)
        copy_field(row.key_id, sizeof(row.key_id), lg_key_entry_record(x->key)->id, strlen(lg_key_entry_record(x->key)->id));
    copy_field(row.requested_model, sizeof(row.requested_model), x->r.models[0], x->r.model_lens[0]);
    if (idx >= 0) {
        const lg_candidate_t *c = &x->at.cands[idx];
        copy_field(row.served_model, sizeof(row.served_model), c->model, strlen(c->model));
        copy_field(row.provider, sizeof(row.provider), c->provider, strlen(c->provider));
        copy_field(row.upstream_model, sizeof(row.upstream_model), c->upstream_model, strlen(c->upstream_model));
    }
    copy_field(row.api, sizeof(row.api), x->skin->route, strlen(x->skin->route));
    row.attempts_json = json_dumps(x->at.log, JSON_COMPACT | JSON_REAL_PRECISION(10));
    row.prompt_tokens = st->billed.prompt_tokens;
    row.completion_tokens = st->billed.completion_tokens;
    row.cached_tokens = st->billed.cached_tokens;
    row.cache_write_tokens = st->billed.cache_write_tokens;
    row.reasoning_tokens = st->billed.reasoning_tokens;
    row.cost_pico = charged(x) ? st->cost_pico : 0;
    row.latency_ms = (double)(now_us - st->start_us) / 1000.0;
    row.ttft_ms = st->ttft_us != 0 ? (double)(st->ttft_us - st->start_us) / 1000.0 : -1;
    row.generation_time_ms = st->ttft_us != 0 ? (double)(now_us - st->ttft_us) / 1000.0 : 0;
    row.status = st->status;
    const char *finish = st->outcome == LG_OUTCOME_FAILED_LATE ? "error" : st->finish_reason;
    copy_field(row.finish_reason, sizeof(row.finish_reason), finish, strlen(finish));
    copy_field(row.native_finish_reason, sizeof(row.native_finish_reason), st->finish_reason, strlen(st->finish_reason));
    row.streamed = x->r.stream;
    row.cancelled = st->status == 499;
    const char *cache_src = lg_xcache_source_id(x);
    if (cache_src != NULL)
        copy_field(row.response_cache_source_id, sizeof(row.response_cache_source_id), cache_src, strlen(cache_src));
    lg_ledger_submit(ledger, &row); /* takes attempts_json */
}

static void write_access_log(lg_exchange_t *x, int64_t now_us)
{
    const lg_settlement_t *st = &x->st;
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *rec =
        json_pack("{s:s,s:s,s:s,s:s%,s:i,s:i,s:f,s:b}", "ts", ts, "id", x->id, "route", x->skin->route, "model",
                  x->r.num_models != 0 ? x->r.models[0] : "", x->r.num_models != 0 ? x->r.model_lens[0] : 0, "status", st->status,
                  "attempts", (int)x->at.n, "latency_ms", (double)(now_us - st->start_us) / 1000.0, "stream", x->r.stream);
    if (x->key != NULL)
        json_object_set_new(rec, "key_id", json_string(lg_key_entry_record(x->key)->id));
    int idx = x->at.served;
    if (idx >= 0) {
        json_object_set_new(rec, "provider", json_string(x->at.cands[idx].provider));
        json_object_set_new(rec, "served_model", json_string(x->at.cands[idx].model));
    }
    if (x->cont.count != 0) /* mid-stream failover: the answer was continued on this many further endpoints */
        json_object_set_new(rec, "continuations", json_integer(x->cont.count));
    if (st->ttft_us != 0)
        json_object_set_new(rec, "ttft_ms", json_real((double)(st->ttft_us - st->start_us) / 1000.0));
    json_object_set_new(rec, "prompt_tokens", json_integer(st->billed.prompt_tokens));
    json_object_set_new(rec, "completion_tokens", json_integer(st->billed.completion_tokens));
    json_object_set_new(rec, "cost", lg_cost_json(charged(x) ? st->cost_pico : 0));
    if (st->outcome != LG_OUTCOME_OK && st->status >= 400)
        json_object_set_new(rec, "error_type", json_string(lg_err_type(x->at.last_err.err)));
    lg_accesslog_write(rec);
}

void lg_settle(lg_exchange_t *x)
{
    lg_settlement_t *st = &x->st;
    if (st->settled)
        return;
    st->settled = 1;
    int64_t now = lg_now_us();
    lg_xcache_settle(x);
    if (st->outcome == LG_OUTCOME_CANCELLED)
        st->status = 499;
    if (lg_xcache_hit(x)) {
        json_decref(cached_usage(x)); /* a replay is never billed, also when it broke off */
    } else if (charged(x)) {
        if (st->outcome != LG_OUTCOME_OK || (st->billed.prompt_tokens == 0 && st->billed.completion_tokens == 0)) {
            json_t *u = lg_settle_final_usage(x); /* the answer's own, or what was streamed until the stream broke */
            json_decref(u);
        }
    } else {
        /* nothing was delivered: upstream counts only (a refusal or failure costs nothing) */
        memset(&st->billed, 0, sizeof(st->billed));
        if (st->usage != NULL)
            lg_usage_from_json(st->usage, &st->billed);
        else if (x->wire.has_usage)
            st->billed = x->wire.usage.u;
        st->cost_pico = 0;
    }
    int idx = x->at.served;
    if (x->rt.vm != NULL && x->at.num_cands != 0) {
        int ok = st->outcome == LG_OUTCOME_OK;
        lg_policy_result_t res = {.ok = ok,
                                  .id = idx >= 0 ? (uint32_t)idx + 1 : 0,
                                  .attempts = x->at.n,
                                  .status = st->status,
                                  .error_type = ok ? NULL : lg_err_type(x->at.last_err.err),
                                  .prompt_tokens = st->billed.prompt_tokens,
                                  .completion_tokens = st->billed.completion_tokens,
                                  .ttft_ms = st->ttft_us != 0 ? (double)(st->ttft_us - st->start_us) / 1000.0 : -1,
                                  .latency_ms = (double)(now - st->start_us) / 1000.0};
        lg_policy_on_done(x->rt.vm, x->at.policy, &x->at.preq, &res);
    }
    lg_sticky_settle(x);
    record_metrics(x, now);
    if (st->admitted)
        lg_key_settle(x->key, x->r.prompt_tokens_estimate, st->billed.prompt_tokens + st->billed.completion_tokens,
                      charged(x) ? st->cost_pico : 0, lg_gate_now_ms());
    if (x->at.plan_len != 0) /* routed and admitted: a generation (refusals before routing are not) */
        submit_ledger_row(x, now);
    if (lg_accesslog_enabled())
        write_access_log(x, now);
}
