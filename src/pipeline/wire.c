/* SPDX-License-Identifier: MIT */
/*
 * OpenAI wire pass-through of one attempt (see wire.h): the decision, the
 * spliced upstream body, the per-event checks and the end of the stream or
 * body. Bytes go to the client through the relay's wire functions; usage is
 * kept as the upstream's bytes plus counters, never as a tree.
 */
#include <stdio.h>
#include <string.h>
#include "core/error.h"
#include "pipeline/exchange.h"
#include "plugin/loader.h"

void lg_wire_init(lg_exchange_t *x, size_t max_body)
{
    lg_wire_t *w = &x->wire;
    memset(w, 0, sizeof(*w));
    lg_buf_init(&w->body, max_body + 64 * 1024);
    lg_buf_init(&w->held, LG_X_OUTQ_MAX_BYTES);
    lg_buf_init(&w->head, 64 * 1024);
    lg_buf_init(&w->usage_raw, 64 * 1024);
}

void lg_wire_dispose(lg_exchange_t *x)
{
    lg_wire_t *w = &x->wire;
    lg_buf_dispose(&w->body);
    lg_buf_dispose(&w->held);
    lg_buf_dispose(&w->head);
    lg_buf_dispose(&w->usage_raw);
}

void lg_wire_reset(lg_exchange_t *x)
{
    lg_wire_t *w = &x->wire;
    w->on = w->done = w->finish = 0;
    lg_buf_reset(&w->held);
    lg_buf_reset(&w->head);
    w->num_held = 0;
}

int lg_wire_prepare(lg_exchange_t *x)
{
    lg_wire_t *w = &x->wire;
    lg_attempts_t *a = &x->at;
    lg_wire_reset(x);
    w->has_usage = 0; /* a failed attempt's usage is not this one's */
    a->call.wire_body = NULL;
    a->call.wire_body_len = 0;
    int (*wire_ok)(void *, const lg_call_t *) = lg_provider_wire_fn(a->prov);
    if (!x->skin->wire_openai || x->r.wire.type != LG_JSON_OBJECT || wire_ok == NULL ||
        (a->prov->capabilities & LG_CAP_WIRE_OPENAI) == 0 || (a->prov->capabilities & LG_CAP_LOCAL) != 0 ||
        (x->skin->kind != LG_API_CHAT && x->skin->kind != LG_API_COMPLETIONS))
        return 0;
    if (!wire_ok(a->pstate, &a->call))
        return 0;
    lg_pt_body_opts_t o = {.model = a->call.upstream_model, .stream = x->r.stream, .include_usage = 1};
    lg_buf_reset(&w->body);
    if (lg_pt_upstream_body(x->r.wire, &o, &w->body) != 0)
        return 0; /* over the cap: the tree path reports it */
    w->on = 1;
    a->call.wire_body = w->body.data;
    a->call.wire_body_len = w->body.len;
    return 1;
}

/* Keep the usage the upstream sent (bytes + counters): what settlement and our final usage read. */
static void take_usage(lg_exchange_t *x, lg_json_span_t usage)
{
    lg_wire_t *w = &x->wire;
    lg_buf_reset(&w->usage_raw);
    if (lg_buf_append(&w->usage_raw, usage.p, usage.len) != 0)
        return;
    lg_pt_usage_read(usage, &w->usage);
    /* as the plugins' normaliser does: an upstream usage object defines all three totals (absent = 0) */
    w->usage.has_prompt = w->usage.has_completion = w->usage.has_total = 1;
    w->has_usage = 1;
}

int lg_wire_usage_bytes(lg_exchange_t *x, lg_buf_t *out)
{
    lg_wire_t *w = &x->wire;
    lg_pt_usage_t f;
    lg_json_span_t span = {0};
    if (w->has_usage) {
        f = w->usage;
        span = lg_json_span_at(w->usage_raw.data, w->usage_raw.data + w->usage_raw.len);
    } else {
        memset(&f, 0, sizeof(f));
        f.u.prompt_tokens = x->r.prompt_tokens_estimate;
        f.u.completion_tokens = (x->st.streamed_chars + 3) / 4; /* ~4 chars a token */
        f.total_tokens = f.u.prompt_tokens + f.u.completion_tokens;
    }
    if (lg_xcache_hit(x)) { /* a response-cache replay: zero usage, no charge */
        memset(&f, 0, sizeof(f));
        f.has_prompt = f.has_completion = f.has_total = 1;
        span = (lg_json_span_t){0};
    }
    int idx = x->at.served >= 0 ? x->at.served : x->at.cur;
    lg_cost_t cost = {0, 0, 0};
    if (idx >= 0 && !lg_xcache_hit(x))
        lg_cost_compute(&lg_x_endpoint(x, idx)->price, &f.u,
                        x->r.kind == LG_API_EMBEDDINGS ? LG_COST_INPUT_ONLY : LG_COST_GENERATION, &cost);
    if (x->cont.count != 0) { /* mid-stream failover: the broken attempts' counts and cost (continue.c) */
        if (!w->has_usage && x->st.streamed_chars == 0) {
            memset(&f.u, 0, sizeof(f.u));
            memset(&cost, 0, sizeof(cost));
        }
        lg_continue_fold(x, &f.u, &cost);
        f.total_tokens = f.u.prompt_tokens + f.u.completion_tokens;
    }
    x->st.billed = f.u;
    x->st.cost_pico = cost.total;
    return lg_pt_write_usage(span, &f, &cost, out);
}

json_t *lg_wire_usage_json(const lg_exchange_t *x)
{
    const lg_wire_t *w = &x->wire;
    return w->has_usage ? json_loadb(w->usage_raw.data, w->usage_raw.len, 0, NULL) : NULL;
}

static void abort_with(lg_exchange_t *x, int err, const char *msg)
{
    lg_reply_t *rp = &x->rp;
    if (rp->aborted)
        return;
    memset(&rp->abort_err, 0, sizeof(rp->abort_err));
    rp->abort_err.err = err;
    rp->abort_err.retryable = 1;
    snprintf(rp->abort_err.message, sizeof(rp->abort_err.message), "%.250s", msg);
    rp->aborted = 1;
}

int lg_wire_event(lg_exchange_t *x, const lg_sse_event_t *ev)
{
    lg_wire_t *w = &x->wire;
    lg_pt_info_t info;
    char err[256];
    lg_pt_status_t st = lg_pt_check_chunk(ev->data, ev->data_len, &info, err, sizeof(err));
    if (st == LG_PT_DONE) {
        w->done = 1;
        return 0;
    }
    if (st == LG_PT_OK && ev->event_len == 5 && memcmp(ev->event, "error", 5) == 0)
        st = LG_PT_ERROR_OBJECT;
    if (st == LG_PT_ERROR_OBJECT) {
        /* an in-band error: classified by the plugin, as its own stream parser would */
        lg_upstream_error_t *e = &x->rp.abort_err;
        memset(e, 0, sizeof(*e));
        x->at.prov->classify_error(x->at.pstate, 200, ev->data, ev->data_len, e);
        if (e->err == 0)
            e->err = LG_EUPSTREAM;
        e->retryable = lg_err_retryable(e->err);
        x->rp.aborted = 1;
        return 1;
    }
    if (st != LG_PT_OK) {
        char msg[300];
        snprintf(msg, sizeof(msg), "upstream sent a malformed stream chunk: %.200s", err);
        abort_with(x, LG_EBADRESPONSE, msg);
        return 1;
    }
    if (info.usage.type == LG_JSON_OBJECT)
        take_usage(x, info.usage);
    if (info.num_choices == 0)
        return 0; /* usage-only chunk: the final usage chunk is ours */
    x->rp.saw_chunk = 1;
    lg_continue_note_bytes(x, ev->data, ev->data_len);
    if (info.finish_reason[0] != '\0') {
        w->finish = 1;
        snprintf(x->st.finish_reason, sizeof(x->st.finish_reason), "%s", info.finish_reason);
    }
    x->st.streamed_chars += info.content_chars;
    if (lg_relay_wire_chunk(x, &info) != 0) {
        abort_with(x, LG_EINTERNAL, "cannot encode the chunk header");
        return 1;
    }
    return 0;
}

void lg_wire_stream_end(lg_exchange_t *x)
{
    lg_upstream_error_t e;
    if (x->rp.aborted) {
        e = x->rp.abort_err;
        lg_reply_fail(x, &e);
        return;
    }
    if (x->wire.finish) {
        lg_attempts_succeeded(x);
        x->st.outcome = LG_OUTCOME_OK;
        lg_relay_wire_finish(x);
        lg_attempts_reset(x);
        lg_x_answered(x);
        return;
    }
    /* [DONE] alone, or EOF, without any finish_reason: the answer is incomplete */
    memset(&e, 0, sizeof(e));
    e.err = LG_EBADRESPONSE;
    e.retryable = 1;
    snprintf(e.message, sizeof(e.message), "%s",
             x->wire.done ? "upstream stream ended without a finish_reason" : "upstream closed the stream before it finished");
    lg_reply_fail(x, &e);
}

void lg_wire_reply(lg_exchange_t *x)
{
    lg_reply_t *rp = &x->rp;
    lg_pt_info_t info;
    char err[256];
    const char *body = rp->body.data != NULL ? rp->body.data : "";
    lg_pt_status_t st = lg_pt_check_reply(body, rp->body.len, &info, err, sizeof(err));
    if (st != LG_PT_OK) {
        lg_upstream_error_t e;
        memset(&e, 0, sizeof(e));
        if (st == LG_PT_ERROR_OBJECT) /* a 2xx body carrying an error object */
            x->at.prov->classify_error(x->at.pstate, rp->status, rp->body.data, rp->body.len, &e);
        if (st == LG_PT_BAD || e.err == 0) {
            e.err = LG_EBADRESPONSE;
            e.retryable = 1;
            snprintf(e.message, sizeof(e.message), "upstream sent a malformed response: %.200s", err);
        }
        lg_reply_fail(x, &e);
        return;
    }
    if (info.finish_reason[0] != '\0')
        snprintf(x->st.finish_reason, sizeof(x->st.finish_reason), "%s", info.finish_reason);
    if (info.usage.type == LG_JSON_OBJECT)
        take_usage(x, info.usage);
    x->st.ttft_us = lg_now_us();
    lg_attempts_succeeded(x);
    x->st.outcome = LG_OUTCOME_OK;
    lg_relay_wire_respond(x, &info); /* before the reset: info points into the body buffer */
    lg_attempts_reset(x);
    lg_x_answered(x);
}
