/* SPDX-License-Identifier: MIT */
/*
 * The reply of the live attempt, as a source delivers it: head, body bytes,
 * done. A 2xx stream is parsed as SSE and each event translated by the plugin
 * into normal-form chunks, every one checked (normal_form.h) before the relay
 * sees it; any other reply is collected whole and parsed or classified at the
 * end. Whatever the client could not trust (a broken event, a malformed
 * choice, a stream that never produced an answer) is an upstream failure:
 * attempts fall over before the commit point, the relay ends the stream with
 * an error after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/log.h"
#include "pipeline/exchange.h"

#define SSE_MAX_EVENT_BYTES (4 * 1024 * 1024)

void lg_reply_init(lg_exchange_t *x, size_t max_body)
{
    lg_reply_t *rp = &x->rp;
    rp->mode = LG_REPLY_NONE;
    lg_buf_init(&rp->body, max_body);
    lg_source_init(&rp->source, x->pw->loop, &lg_reply_events, x);
}

void lg_reply_reset(lg_exchange_t *x)
{
    lg_reply_t *rp = &x->rp;
    if (rp->mode == LG_REPLY_SSE) {
        lg_sse_parser_dispose(&rp->sse);
        if (x->at.prov != NULL && x->at.prov->stream_free != NULL)
            x->at.prov->stream_free(x->at.pstate, rp->sstate);
        rp->sstate = NULL;
    }
    rp->mode = LG_REPLY_NONE;
    rp->status = 0;
    rp->saw_chunk = 0;
    rp->aborted = 0;
    lg_buf_reset(&rp->body);
    lg_wire_reset(x);
}

void lg_reply_dispose(lg_exchange_t *x)
{
    lg_reply_reset(x);
    lg_buf_dispose(&x->rp.body);
}

static void set_abort(lg_exchange_t *x, int err, int retryable, const char *prefix, const char *detail)
{
    lg_reply_t *rp = &x->rp;
    if (rp->aborted)
        return;
    rp->aborted = 1;
    memset(&rp->abort_err, 0, sizeof(rp->abort_err));
    rp->abort_err.err = err;
    rp->abort_err.retryable = retryable;
    snprintf(rp->abort_err.message, sizeof(rp->abort_err.message), "%s%s", prefix, detail);
}

/** The attempt failed (e is consumed): before the commit point attempts fall over, after it the stream ends. */
void lg_reply_fail(lg_exchange_t *x, lg_upstream_error_t *e)
{
    lg_source_cancel(&x->rp.source);
    if (lg_relay_committed(x)) {
        if (lg_continue_failover(x, e))
            return; /* the next endpoint continues the client's stream */
        lg_attempts_failed_late(x, e);
        x->st.outcome = LG_OUTCOME_FAILED_LATE;
        lg_attempts_reset(x);
        lg_relay_fail_stream(x, e, e->status >= 400 ? e->status : lg_err_status(e->err));
        lg_x_answered(x);
        return;
    }
    lg_attempts_failed(x, e);
}

static void handle_abort(lg_exchange_t *x)
{
    lg_upstream_error_t e = x->rp.abort_err;
    lg_reply_fail(x, &e);
}

/* ---- stream ---- */

static void take_stream_out(lg_exchange_t *x, lg_stream_out_t *out)
{
    if (out->usage != NULL) {
        json_decref(x->st.usage);
        x->st.usage = out->usage;
        out->usage = NULL;
    }
    for (size_t i = 0; i < out->num_chunks; ++i) {
        json_t *chunk = out->chunks[i];
        out->chunks[i] = NULL;
        if (chunk == NULL)
            continue;
        lg_chunk_facts_t facts;
        char why[160];
        if (x->rp.aborted || lg_chunk_check(x->skin->kind, chunk, &facts, why, sizeof(why)) != 0) {
            if (!x->rp.aborted)
                set_abort(x, LG_EBADRESPONSE, 1, "upstream sent a malformed stream chunk: ", why);
            json_decref(chunk);
            continue;
        }
        x->rp.saw_chunk = 1;
        lg_continue_note_chunk(x, chunk);
        if (facts.finish != NULL)
            snprintf(x->st.finish_reason, sizeof(x->st.finish_reason), "%s", facts.finish);
        x->st.streamed_chars += facts.text_chars;
        lg_relay_chunk(x, chunk, &facts);
    }
    out->num_chunks = 0;
}

static int on_sse_event(void *ctx, const lg_sse_event_t *ev)
{
    lg_exchange_t *x = ctx;
    if (x->wire.on)
        return lg_wire_event(x, ev);
    lg_stream_out_t out;
    lg_errbuf_t perr = {{0}};
    memset(&out, 0, sizeof(out));
    int rc = x->at.prov->parse_stream_event(x->at.pstate, x->rp.sstate, ev, &out, &perr);
    take_stream_out(x, &out);
    json_decref(out.usage);
    if (x->rp.aborted)
        return 1;
    if (rc == 0 && out.error == 0)
        return 0;
    lg_upstream_error_t *e = &x->rp.abort_err;
    memset(e, 0, sizeof(*e));
    e->err = out.error != 0 ? out.error : rc;
    e->status = out.error_status;
    e->retryable = lg_err_retryable(e->err);
    snprintf(e->message, sizeof(e->message), "%s",
             out.error_message[0] != '\0' ? out.error_message
             : perr.msg[0] != '\0'        ? perr.msg
                                          : lg_strerror(e->err));
    snprintf(e->provider_code, sizeof(e->provider_code), "%s", out.provider_code);
    x->rp.aborted = 1;
    return 1;
}

static int on_sse_comment(void *ctx, const char *text, size_t len)
{
    lg_relay_comment(ctx, text, len);
    return 0;
}

/* ---- source events ---- */

static void on_head(void *ctx, int status)
{
    lg_exchange_t *x = ctx;
    lg_reply_t *rp = &x->rp;
    lg_x_enter(x);
    rp->status = status;
    const char *ra = lg_source_header(&rp->source, "retry-after");
    if (ra != NULL) {
        char *end;
        long secs = strtol(ra, &end, 10);
        if (end != ra && secs >= 0)
            x->at.retry_after_ms = secs * 1000;
    }
    rp->mode = LG_REPLY_BODY;
    if (status >= 200 && status < 300 && x->r.stream) {
        /* sources without headers (in-process) speak SSE when asked to stream */
        const char *ct = lg_source_header(&rp->source, "content-type");
        int has_headers = rp->source.ops != NULL && rp->source.ops->header != NULL;
        if (!has_headers || (ct != NULL && strstr(ct, "event-stream") != NULL)) {
            rp->mode = LG_REPLY_SSE;
            lg_sse_parser_init(&rp->sse, SSE_MAX_EVENT_BYTES, on_sse_event, on_sse_comment, x);
            rp->sstate = NULL;
            /* pass-through: the pipeline reads the chunks itself, the plugin keeps no stream state */
            if (!x->wire.on && x->at.prov->stream_begin != NULL &&
                x->at.prov->stream_begin(x->at.pstate, &x->at.call, &rp->sstate) != 0)
                set_abort(x, LG_EINTERNAL, 0, "plugin could not start a stream", "");
        }
    }
    if (rp->aborted)
        handle_abort(x);
    lg_x_leave(x);
}

static int on_data(void *ctx, const char *data, size_t len)
{
    lg_exchange_t *x = ctx;
    lg_reply_t *rp = &x->rp;
    int pause = 0;
    lg_x_enter(x);
    lg_xcache_tee(x, data, len);
    if (rp->mode == LG_REPLY_SSE) {
        int rc = lg_sse_parser_feed(&rp->sse, data, len);
        lg_relay_flush(x); /* the events of one upstream read leave in one write */
        if (rc != 0 && !rp->aborted)
            set_abort(x, LG_EBADRESPONSE, 1, "upstream event stream too large or malformed", "");
        if (rp->aborted)
            handle_abort(x);
        else
            pause = lg_relay_backlogged(x);
    } else if (lg_buf_append(&rp->body, data, len) != 0) {
        char max[64];
        snprintf(max, sizeof(max), "%zu bytes", rp->body.max);
        set_abort(x, LG_EBADRESPONSE, 1, "upstream response larger than ", max);
        handle_abort(x);
    }
    if (pause)
        x->rl.paused = 1;
    lg_x_leave(x);
    return pause;
}

/** A whole 2xx body arrived although the client streams (the upstream ignored stream:true): replay it as chunks. */
static void replay_as_stream(lg_exchange_t *x, json_t *resp)
{
    json_t *choices = json_object_get(resp, "choices");
    json_decref(x->st.usage);
    x->st.usage = json_incref(json_object_get(resp, "usage"));
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
        json_t *chunk = json_pack("{s:[{s:O,s:o,s:O?}]}", "choices", "index", json_object_get(c, "index"), "delta", delta,
                                  "finish_reason", json_object_get(c, "finish_reason"));
        lg_chunk_facts_t facts;
        char why[160];
        if (lg_chunk_check(x->skin->kind, chunk, &facts, why, sizeof(why)) == 0) {
            facts.has_content = 1; /* a whole answer commits */
            if (facts.finish != NULL)
                snprintf(x->st.finish_reason, sizeof(x->st.finish_reason), "%s", facts.finish);
            x->st.streamed_chars += facts.text_chars;
            lg_relay_chunk(x, chunk, &facts);
        } else {
            json_decref(chunk);
        }
    }
    json_decref(resp);
    lg_attempts_succeeded(x);
    x->st.outcome = LG_OUTCOME_OK;
    lg_relay_finish_stream(x);
    lg_attempts_reset(x);
    lg_x_answered(x);
}

static void answer_whole(lg_exchange_t *x, json_t *resp)
{
    const json_t *fr = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "finish_reason");
    if (json_is_string(fr))
        snprintf(x->st.finish_reason, sizeof(x->st.finish_reason), "%s", json_string_value(fr));
    json_decref(x->st.usage);
    x->st.usage = json_incref(json_object_get(resp, "usage"));
    x->st.ttft_us = lg_now_us();
    lg_attempts_succeeded(x);
    x->st.outcome = LG_OUTCOME_OK;
    lg_attempts_reset(x);
    lg_relay_respond(x, resp);
    lg_x_answered(x);
}

static void done_stream(lg_exchange_t *x)
{
    lg_reply_t *rp = &x->rp;
    if (x->wire.on) {
        (void)lg_sse_parser_finish(&rp->sse);
        lg_wire_stream_end(x);
        return;
    }
    lg_stream_out_t out;
    lg_errbuf_t perr = {{0}};
    memset(&out, 0, sizeof(out));
    (void)lg_sse_parser_finish(&rp->sse); /* a trailing partial event is dropped by the SSE rules; stream_end decides */
    int rc = x->at.prov->stream_end != NULL ? x->at.prov->stream_end(x->at.pstate, rp->sstate, &out, &perr) : 0;
    take_stream_out(x, &out);
    json_decref(out.usage);
    if (rp->aborted) {
        handle_abort(x);
        return;
    }
    if (rc == 0 && !rp->saw_chunk) {
        /* e.g. nothing but [DONE]: a 200 with no answer is no answer */
        rc = LG_EBADRESPONSE;
        snprintf(perr.msg, sizeof(perr.msg), "upstream stream ended without any choice");
    }
    if (rc == 0) {
        lg_attempts_succeeded(x);
        x->st.outcome = LG_OUTCOME_OK;
        lg_relay_finish_stream(x);
        lg_attempts_reset(x);
        lg_x_answered(x);
        return;
    }
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    e.err = rc;
    e.retryable = 1;
    snprintf(e.message, sizeof(e.message), "%s", perr.msg[0] != '\0' ? perr.msg : "upstream stream ended before completion");
    lg_reply_fail(x, &e);
}

static void done_body(lg_exchange_t *x)
{
    lg_reply_t *rp = &x->rp;
    const lg_provider_t *prov = x->at.prov;
    lg_upstream_error_t e;
    memset(&e, 0, sizeof(e));
    const char *body = rp->body.data != NULL ? rp->body.data : "";
    if (rp->status >= 200 && rp->status < 300 && x->wire.on && !x->r.stream) {
        lg_wire_reply(x);
        return;
    }
    if (rp->status >= 200 && rp->status < 300) {
        json_t *resp = NULL;
        lg_errbuf_t perr = {{0}};
        char why[160];
        int malformed = 0;
        int rc = prov->parse_response(x->at.pstate, &x->at.call, rp->status, body, rp->body.len, &resp, &perr);
        if (rc == 0 && resp != NULL && lg_response_check(x->skin->kind, resp, why, sizeof(why)) != 0) {
            rc = LG_EBADRESPONSE;
            malformed = 1;
            snprintf(perr.msg, sizeof(perr.msg), "upstream sent a malformed response: %s", why);
        }
        if (rc == 0 && resp != NULL) {
            if (x->r.stream)
                replay_as_stream(x, resp);
            else
                answer_whole(x, resp);
            return;
        }
        json_decref(resp);
        if (!malformed) /* a 2xx body may still carry an error object */
            prov->classify_error(x->at.pstate, rp->status, rp->body.data, rp->body.len, &e);
        if (e.err == 0 || e.err == LG_OK) {
            e.err = rc != 0 ? rc : LG_EBADRESPONSE;
            e.retryable = 1;
        }
        if (perr.msg[0] != '\0')
            snprintf(e.message, sizeof(e.message), "%s", perr.msg);
    } else {
        prov->classify_error(x->at.pstate, rp->status, rp->body.data, rp->body.len, &e);
        if (e.err == 0)
            e.err = LG_EUPSTREAM, e.retryable = 1;
        if (e.status == 0)
            e.status = rp->status;
    }
    lg_reply_fail(x, &e);
}

static void on_done(void *ctx, int result, const char *msg)
{
    lg_exchange_t *x = ctx;
    lg_x_enter(x);
    if (result != 0) {
        lg_upstream_error_t e;
        memset(&e, 0, sizeof(e));
        e.err = result == LG_ECANCELLED ? LG_EUPSTREAM : result;
        e.retryable = 1; /* transport failures: another attempt may get through */
        snprintf(e.message, sizeof(e.message), "%s", msg != NULL && msg[0] != '\0' ? msg : lg_strerror(result));
        lg_reply_fail(x, &e);
    } else if (x->rp.mode == LG_REPLY_SSE) {
        done_stream(x);
    } else {
        done_body(x);
    }
    lg_x_leave(x);
}

const lg_source_events_t lg_reply_events = {on_head, on_data, on_done};
