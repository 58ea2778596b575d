/* SPDX-License-Identifier: MIT */
/*
 * The relay: everything the client receives, through the exchange's skin.
 * SSE framing comes from the skin; the relay owns the order and the timing:
 * chunks before the first content chunk are held (the commit point: until
 * then a failed attempt is invisible and attempts may fall over), keep-alives
 * while nothing is committed, one write per upstream read, back-pressure (the
 * source pauses while the client lags), the error event after the commit
 * point, whole-body answers and errors, and the HTTP/1 client watch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "core/error.h"
#include "core/log.h"
#include "pipeline/exchange.h"

static void on_keepalive(uv_timer_t *t);
static void on_watch(uv_timer_t *t);

void lg_relay_init(lg_exchange_t *x)
{
    lg_relay_t *rl = &x->rl;
    rl->state = LG_RELAY_IDLE;
    rl->client_fd = -1;
    lg_buf_init(&rl->outq, LG_X_OUTQ_MAX_BYTES);
    lg_buf_init(&rl->sending, LG_X_OUTQ_MAX_BYTES);
    uv_timer_init(x->pw->loop, &rl->ka_timer);
    rl->ka_timer.data = x;
    uv_timer_init(x->pw->loop, &rl->watch_timer);
    rl->watch_timer.data = x;
}

void lg_relay_dispose(lg_exchange_t *x)
{
    lg_relay_t *rl = &x->rl;
    lg_buf_dispose(&rl->outq);
    lg_buf_dispose(&rl->sending);
    for (size_t i = 0; i < rl->num_held; ++i)
        json_decref(rl->held[i]);
    rl->num_held = 0;
    if (rl->skin_state != NULL && x->skin->stream_close != NULL)
        x->skin->stream_close(rl->skin_state);
    rl->skin_state = NULL;
}

void lg_relay_close(lg_exchange_t *x, uv_close_cb on_closed)
{
    uv_close((uv_handle_t *)&x->rl.ka_timer, on_closed);
    uv_close((uv_handle_t *)&x->rl.watch_timer, on_closed);
}

void lg_relay_forget_held(lg_exchange_t *x)
{
    lg_relay_t *rl = &x->rl;
    for (size_t i = 0; i < rl->num_held; ++i)
        json_decref(rl->held[i]);
    rl->num_held = 0;
}

int lg_relay_committed(const lg_exchange_t *x)
{
    return x->rl.state >= LG_RELAY_COMMITTED;
}

int lg_relay_started(const lg_exchange_t *x)
{
    return x->rl.state >= LG_RELAY_OPEN;
}

int lg_relay_backlogged(const lg_exchange_t *x)
{
    return x->rl.outq.len > LG_X_OUTQ_PAUSE_BYTES;
}

void lg_relay_header(lg_exchange_t *x, const char *name, const char *value)
{
    h2o_req_t *req = x->req;
    if (req == NULL)
        return;
    h2o_iovec_t n = h2o_strdup(&req->pool, name, strlen(name));
    h2o_iovec_t v = h2o_strdup(&req->pool, value, strlen(value));
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base, v.len);
}

/* ---- the byte pump ---- */

/** A skin emit hit the output cap: the client does not read, so the stream ends rather than buffer without bound. */
static void emitted(lg_exchange_t *x, int rc)
{
    if (rc != 0 && x->rl.state < LG_RELAY_CLOSING) {
        LG_LOG(LG_LOG_WARN, "http", "%s: client output buffer over %d bytes, closing", x->id, LG_X_OUTQ_MAX_BYTES);
        x->rl.state = LG_RELAY_CLOSING;
    }
}

void lg_relay_flush(lg_exchange_t *x)
{
    lg_relay_t *rl = &x->rl;
    if (x->req == NULL || rl->state == LG_RELAY_IDLE || rl->state == LG_RELAY_DONE || rl->send_inflight)
        return;
    if (rl->outq.len == 0 && rl->state != LG_RELAY_CLOSING)
        return;
    lg_buf_t tmp = rl->sending;
    rl->sending = rl->outq;
    rl->outq = tmp;
    lg_buf_reset(&rl->outq);
    h2o_iovec_t iov = h2o_iovec_init(rl->sending.data, rl->sending.len);
    h2o_send_state_t state = rl->state == LG_RELAY_CLOSING ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS;
    rl->send_inflight = 1;
    if (rl->state == LG_RELAY_CLOSING)
        rl->state = LG_RELAY_DONE;
    h2o_send(x->req, &iov, iov.len != 0 ? 1 : 0, state);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    lg_exchange_t *x = H2O_STRUCT_FROM_MEMBER(lg_exchange_t, rl.gen, gen);
    lg_x_enter(x);
    x->rl.send_inflight = 0;
    lg_buf_reset(&x->rl.sending);
    lg_relay_flush(x);
    if (x->rl.paused && x->rl.outq.len < LG_X_OUTQ_PAUSE_BYTES / 2) {
        x->rl.paused = 0;
        lg_source_resume(&x->rp.source);
    }
    lg_x_leave(x);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    /* the client went away mid-response; the pool dispose that follows does the cleanup */
    (void)gen;
    (void)req;
}

/** Open the SSE response (idempotent): headers, the skin's stream state. */
static void start_sse(lg_exchange_t *x)
{
    lg_relay_t *rl = &x->rl;
    if (rl->state != LG_RELAY_IDLE || x->req == NULL)
        return;
    h2o_req_t *req = x->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    lg_relay_header(x, "x-accel-buffering", "no");
    lg_relay_header(x, "x-generation-id", x->id);
    rl->gen.proceed = on_proceed;
    rl->gen.stop = on_stop;
    rl->state = LG_RELAY_OPEN;
    x->st.status = 200;
    if (x->skin->stream_open != NULL) {
        lg_skin_info_t info;
        lg_x_skin_info(x, &info);
        rl->skin_state = x->skin->stream_open(&info);
    }
    h2o_start_response(req, &rl->gen);
    /* No zero-length send to "flush the headers": on HTTP/1.1 chunked responses h2o 2.2.5 writes nothing for it and
     * defers the proceed through its zero timeout, which only delays the first event. The headers go out with the
     * first bytes queued right after this (a chunk, or the keep-alive). */
}

static void emit_chunk(lg_exchange_t *x, json_t *chunk)
{
    if (x->rl.state < LG_RELAY_CLOSING) {
        lg_skin_info_t info;
        lg_x_skin_info(x, &info);
        lg_skin_chunk_t c = {.obj = chunk, .raw = NULL, .raw_len = 0};
        emitted(x, x->skin->stream_chunk(x->rl.skin_state, &info, &c, &x->rl.outq));
    }
    json_decref(chunk);
}

void lg_relay_event(lg_exchange_t *x, const char *json, size_t len)
{
    start_sse(x);
    if (x->rl.state == LG_RELAY_IDLE || x->rl.state >= LG_RELAY_CLOSING)
        return;
    emitted(x, lg_buf_append(&x->rl.outq, "data: ", 6) || lg_buf_append(&x->rl.outq, json, len) ||
                   lg_buf_append(&x->rl.outq, "\n\n", 2));
    lg_relay_flush(x);
}

static void commit(lg_exchange_t *x)
{
    lg_relay_t *rl = &x->rl;
    if (rl->state >= LG_RELAY_COMMITTED)
        return;
    if (x->st.ttft_us == 0)
        x->st.ttft_us = lg_now_us();
    start_sse(x);
    lg_trace_stream_first(x);
    if (rl->state == LG_RELAY_OPEN)
        rl->state = LG_RELAY_COMMITTED;
    uv_timer_stop(&rl->ka_timer);
    for (size_t i = 0; i < rl->num_held; ++i)
        emit_chunk(x, rl->held[i]);
    rl->num_held = 0;
    if (x->wire.held.len != 0 && rl->state < LG_RELAY_CLOSING) /* pass-through: already rewritten bytes */
        emitted(x, lg_buf_append(&rl->outq, x->wire.held.data, x->wire.held.len));
    lg_buf_reset(&x->wire.held);
    x->wire.num_held = 0;
}

void lg_relay_chunk(lg_exchange_t *x, json_t *chunk, const lg_chunk_facts_t *facts)
{
    lg_relay_t *rl = &x->rl;
    if (x->req == NULL || rl->state >= LG_RELAY_CLOSING) {
        json_decref(chunk);
        return;
    }
    if (rl->state == LG_RELAY_RESUMING && !facts->has_content) { /* a continuation's role chunk: the client has one */
        json_decref(chunk);
        return;
    }
    int committing = rl->state < LG_RELAY_COMMITTED && (facts->has_content || rl->num_held == LG_X_MAX_HELD);
    if (committing)
        commit(x);
    if (rl->state >= LG_RELAY_COMMITTED)
        emit_chunk(x, chunk);
    else
        rl->held[rl->num_held++] = chunk;
    if (committing)
        lg_relay_flush(x); /* the first token leaves now, in one write with the held role chunk */
}

void lg_relay_comment(lg_exchange_t *x, const char *text, size_t len)
{
    /* upstream comments stay comments; before the commit point there is nobody to forward them to */
    if (x->req != NULL && lg_relay_committed(x) && x->rl.state < LG_RELAY_CLOSING && x->skin->comments_forwarded &&
        x->skin->stream_comment != NULL) {
        emitted(x, x->skin->stream_comment(x->rl.skin_state, text, len, &x->rl.outq));
        lg_relay_flush(x);
    }
}

void lg_relay_finish_stream(lg_exchange_t *x)
{
    commit(x);
    json_t *usage = lg_settle_final_usage(x);
    if (x->rl.state < LG_RELAY_CLOSING) {
        lg_skin_info_t info;
        lg_x_skin_info(x, &info);
        emitted(x, x->skin->stream_finish(x->rl.skin_state, &info, usage, &x->rl.outq));
    }
    json_decref(usage);
    if (x->rl.state < LG_RELAY_CLOSING && x->rl.state != LG_RELAY_IDLE)
        x->rl.state = LG_RELAY_CLOSING;
    lg_relay_flush(x);
}

void lg_relay_fail_stream(lg_exchange_t *x, const lg_upstream_error_t *e, int status)
{
    lg_relay_t *rl = &x->rl;
    start_sse(x);
    x->st.status = status;
    /* bill what was streamed so far (and tell the client, in the same counts) */
    json_t *usage = x->st.usage != NULL || x->wire.has_usage || x->st.streamed_chars != 0 || x->cont.count != 0
                        ? lg_settle_final_usage(x)
                        : NULL;
    if (rl->state < LG_RELAY_CLOSING && rl->state != LG_RELAY_IDLE) {
        lg_skin_info_t info;
        lg_x_skin_info(x, &info);
        lg_skin_error_t se = {.err = e->err,
                              .status = status,
                              .message = e->message[0] != '\0' ? e->message : lg_strerror(e->err),
                              .provider_code = e->provider_code};
        emitted(x, x->skin->stream_error(rl->skin_state, &info, &se, usage, &rl->outq));
        rl->state = LG_RELAY_CLOSING;
    }
    json_decref(usage);
    uv_timer_stop(&rl->ka_timer);
    lg_relay_flush(x);
}

/* ---- OpenAI wire pass-through (wire.c): bytes rewritten by src/pipeline/passthru.c, no skin tree ---- */

static lg_pt_owned_t wire_owned(const lg_exchange_t *x, const lg_skin_info_t *info, int chunk)
{
    const char *object = x->skin->kind == LG_API_COMPLETIONS ? "text_completion"
                         : chunk                             ? "chat.completion.chunk"
                                                             : "chat.completion";
    lg_pt_owned_t o = {info->gen_id, object, info->created, info->model, info->provider};
    return o;
}

int lg_relay_wire_chunk(lg_exchange_t *x, const lg_pt_info_t *info)
{
    lg_relay_t *rl = &x->rl;
    lg_wire_t *w = &x->wire;
    if (x->req == NULL || rl->state >= LG_RELAY_CLOSING)
        return 0;
    if (w->head.len == 0) { /* the owned members are the same for every chunk of the attempt */
        lg_skin_info_t si;
        lg_x_skin_info(x, &si);
        lg_pt_owned_t own = wire_owned(x, &si, 1);
        if (lg_pt_write_head(&own, &w->head) != 0)
            return -1;
    }
    if (rl->state == LG_RELAY_RESUMING && !info->has_content)
        return 0; /* a continuation's role chunk: the client has one */
    int committing = rl->state < LG_RELAY_COMMITTED && (info->has_content || w->num_held == LG_X_MAX_HELD);
    if (committing)
        commit(x);
    if (rl->state >= LG_RELAY_COMMITTED) {
        emitted(x, lg_pt_write_chunk_head(info, w->head.data, w->head.len, &rl->outq));
    } else if (lg_pt_write_chunk_head(info, w->head.data, w->head.len, &w->held) == 0) {
        ++w->num_held;
    }
    if (committing)
        lg_relay_flush(x); /* the first token leaves now, in one write with the held role chunk */
    return 0;
}

/* "data: {owned…,"choices":[],"usage":{…}}\n\n" + "data: [DONE]\n\n" */
static int wire_final(lg_exchange_t *x, lg_buf_t *out)
{
    static const char empty_choices[] = "{\"choices\":[]}";
    lg_pt_info_t info;
    char err[64];
    (void)lg_pt_check_chunk(empty_choices, sizeof(empty_choices) - 1, &info, err, sizeof(err));
    lg_skin_info_t si;
    lg_x_skin_info(x, &si);
    lg_pt_owned_t own = wire_owned(x, &si, 1);
    lg_buf_t usage;
    lg_buf_init(&usage, 128 * 1024);
    int rc = lg_wire_usage_bytes(x, &usage) != 0 || lg_buf_append(out, "data: ", 6) != 0 ||
             lg_pt_write_usage_chunk(&info, &own, usage.data, usage.len, out) != 0 ||
             lg_buf_append(out, "\n\ndata: [DONE]\n\n", 16) != 0;
    lg_buf_dispose(&usage);
    return rc;
}

void lg_relay_wire_finish(lg_exchange_t *x)
{
    commit(x);
    if (x->rl.state < LG_RELAY_CLOSING)
        emitted(x, wire_final(x, &x->rl.outq));
    if (x->rl.state < LG_RELAY_CLOSING && x->rl.state != LG_RELAY_IDLE)
        x->rl.state = LG_RELAY_CLOSING;
    lg_relay_flush(x);
}

/* the routing trace as the last member of a written JSON object (the pass-through body has no tree to add it to) */
static int append_trace_member(lg_exchange_t *x, lg_buf_t *out)
{
    size_t end = out->len;
    while (end > 0 && out->data[end - 1] != '}')
        --end;
    if (end == 0)
        return 0;
    json_t *meta = lg_trace_json(x);
    char *s = json_dumps(meta, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(meta);
    if (s == NULL)
        return 0;
    out->len = end - 1;
    static const char member[] = ",\"openrouter_metadata\":";
    int rc = lg_buf_append(out, member, sizeof(member) - 1) || lg_buf_append(out, s, strlen(s)) || lg_buf_append(out, "}", 1);
    free(s);
    return rc;
}

void lg_relay_wire_respond(lg_exchange_t *x, const lg_pt_info_t *info)
{
    lg_buf_t usage, out;
    lg_buf_init(&usage, 128 * 1024);
    int rc = lg_wire_usage_bytes(x, &usage); /* also what settlement bills */
    if (x->req == NULL || x->rl.state != LG_RELAY_IDLE) {
        lg_buf_dispose(&usage);
        return;
    }
    lg_skin_info_t si;
    lg_x_skin_info(x, &si);
    lg_pt_owned_t own = wire_owned(x, &si, 0);
    lg_buf_init(&out, x->rp.body.len + usage.len + 4096);
    if (rc == 0)
        rc = lg_pt_write_reply(info, &own, usage.data, usage.len, &out);
    lg_buf_dispose(&usage);
    if (rc == 0 && x->trace.on)
        rc = append_trace_member(x, &out);
    if (rc != 0) {
        lg_buf_dispose(&out);
        lg_relay_error(x, LG_EINTERNAL, 500, "cannot encode response", NULL);
        return;
    }
    h2o_req_t *req = x->req;
    lg_relay_header(x, "x-generation-id", x->id);
    x->st.status = 200;
    x->rl.state = LG_RELAY_DONE;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    req->res.content_length = out.len;
    h2o_send_inline(req, out.data, out.len); /* copies into the pool */
    lg_buf_dispose(&out);
}

/* ---- whole bodies ---- */

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *reason;
    } phrases[] = {{200, "OK"},
                   {400, "Bad Request"},
                   {401, "Unauthorized"},
                   {402, "Payment Required"},
                   {403, "Forbidden"},
                   {404, "Not Found"},
                   {413, "Payload Too Large"},
                   {429, "Too Many Requests"},
                   {499, "Client Closed Request"},
                   {500, "Internal Server Error"},
                   {502, "Bad Gateway"},
                   {503, "Service Unavailable"},
                   {504, "Gateway Timeout"},
                   {529, "Overloaded"}};
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); ++i)
        if (phrases[i].status == status)
            return phrases[i].reason;
    return "Status";
}

static void send_json(lg_exchange_t *x, int status, json_t *obj)
{
    h2o_req_t *req = x->req;
    char *body = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(obj);
    static const char fallback[] = "{\"error\":{\"code\":500,\"message\":\"cannot encode response\",\"type\":\"server\"}}";
    if (body == NULL)
        status = 500;
    const char *bytes = body != NULL ? body : fallback;
    size_t len = body != NULL ? strlen(body) : sizeof(fallback) - 1;
    x->st.status = status;
    x->rl.state = LG_RELAY_DONE;
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    req->res.content_length = len;
    h2o_send_inline(req, bytes, len); /* copies into the pool */
    free(body);
}

void lg_relay_respond(lg_exchange_t *x, json_t *resp)
{
    json_t *usage = lg_settle_final_usage(x);
    if (x->req == NULL || x->rl.state != LG_RELAY_IDLE) {
        json_decref(resp);
        json_decref(usage);
        return;
    }
    lg_skin_info_t info;
    lg_x_skin_info(x, &info);
    json_t *body = x->skin->response(&info, resp, usage);
    json_decref(usage);
    if (x->trace.on && json_is_object(body))
        json_object_set_new(body, "openrouter_metadata", lg_trace_json(x));
    lg_relay_header(x, "x-generation-id", x->id);
    send_json(x, 200, body);
}

void lg_relay_error(lg_exchange_t *x, int err, int status, const char *msg, json_t *meta)
{
    if (x->req == NULL || x->rl.state != LG_RELAY_IDLE) {
        json_decref(meta);
        return;
    }
    if (status == 0)
        status = lg_err_status(err);
    if (x->at.last_err.err == 0)
        x->at.last_err.err = err; /* the access log's error_type */
    lg_skin_error_t se = {.err = err, .status = status, .message = msg != NULL ? msg : lg_strerror(err), .provider_code = ""};
    json_t *body = x->skin->error_body(&se, &status, meta);
    if (x->trace.on && json_is_object(body)) /* why nothing was left, or what every attempt answered */
        json_object_set_new(body, "openrouter_metadata", lg_trace_json(x));
    lg_relay_header(x, "x-generation-id", x->id);
    send_json(x, status, body);
}

/* ---- timers ---- */

static void on_keepalive(uv_timer_t *t)
{
    lg_exchange_t *x = t->data;
    lg_x_enter(x);
    if (x->req == NULL || x->rl.state >= LG_RELAY_COMMITTED || x->state >= LG_X_ANSWERED) {
        uv_timer_stop(t);
    } else {
        start_sse(x);
        lg_skin_info_t info;
        lg_x_skin_info(x, &info);
        emitted(x, x->skin->stream_keepalive(x->rl.skin_state, &info, &x->rl.outq));
        lg_relay_flush(x);
    }
    lg_x_leave(x);
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
    lg_x_enter(x);
    if (!lg_x_active(x) || x->rl.state != LG_RELAY_IDLE) {
        uv_timer_stop(t);
    } else {
        char c;
        ssize_t n = recv(x->rl.client_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            uv_timer_stop(t);
            LG_LOG(LG_LOG_INFO, "http", "%s: client closed the connection; cancelling the upstream request", x->id);
            lg_attempts_reset(x);
            x->st.outcome = LG_OUTCOME_CANCELLED;
            x->st.status = 499;
            lg_x_answered(x);
            /* the write fails on the closed socket and h2o closes the connection, which disposes the request */
            send_json(x, 499, lg_error_json(LG_ECANCELLED, 499, NULL, NULL));
        }
    }
    lg_x_leave(x);
}

void lg_relay_start_timers(lg_exchange_t *x)
{
    const lg_config_t *conf = x->rt.snap->conf;
    if (x->req == NULL)
        return;
    if (x->r.stream && conf->keepalive == LG_KEEPALIVE_COMMENT && conf->keepalive_interval_ms != 0)
        uv_timer_start(&x->rl.ka_timer, on_keepalive, conf->keepalive_interval_ms, conf->keepalive_interval_ms);
    if ((x->rl.client_fd = client_socket_fd(x->req)) >= 0)
        uv_timer_start(&x->rl.watch_timer, on_watch, 200, 200);
}
