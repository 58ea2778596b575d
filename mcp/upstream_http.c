/* SPDX-License-Identifier: MIT */
/*
 * Streamable HTTP MCP upstream transport (see upstream_http.h): one lg_xfer
 * per POST, JSON or SSE replies, the session header, and the optional GET
 * stream with its reopen timer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/log.h"
#include "core/util.h"
#include "mcp/upstream_http.h"
#include "upstream/sse.h"

#define MAX_REPLY_BYTES ((size_t)32 << 20)
#define MAX_EVENT_BYTES ((size_t)8 << 20)
#define LISTEN_RETRY_MS 5000

struct exchange {
    struct lg_mcp_http *h;
    lg_xfer_t *x;
    int64_t rid;
    int is_get, is_sse, got_response, status;
    lg_buf_t body;
    lg_sse_parser_t sse;
    struct exchange *next, *prev;
};

struct lg_mcp_http {
    uv_loop_t *loop;
    lg_upclient_t *client;
    lg_mcp_http_callbacks_t cb;
    void *ud;
    char module[80];
    char *url;
    json_t *headers; /* object; owned */
    uint32_t timeout_ms;
    char session[256]; /* Mcp-Session-Id, "" = none */
    char version[32];
    int listen_wanted, listen_disabled;
    struct exchange *get; /* the GET stream, if open */
    struct exchange *xs;  /* every exchange in progress */
    uv_timer_t retry;
    int destroyed;
};

static void xs_unlink(struct exchange *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        e->h->xs = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    if (e->h->get == e)
        e->h->get = NULL;
}

static void exchange_free(struct exchange *e)
{
    lg_buf_dispose(&e->body);
    if (e->is_sse)
        lg_sse_parser_dispose(&e->sse);
    free(e);
}

static void deliver(struct exchange *e, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, 0, &jerr);
    if (v == NULL) {
        LG_LOG(LG_LOG_WARN, e->h->module, "unparsable message from upstream ignored: %s", jerr.text);
        return;
    }
    /* 2025-03-26 servers may answer with a batch: deliver its elements one by one */
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n; ++i) {
        json_t *m = json_is_array(v) ? json_incref(json_array_get(v, i)) : json_incref(v);
        if (!json_is_object(m)) {
            json_decref(m);
            continue;
        }
        json_t *id = json_object_get(m, "id");
        if (e->rid != 0 && json_is_integer(id) && json_integer_value(id) == e->rid &&
            (json_object_get(m, "result") != NULL || json_object_get(m, "error") != NULL))
            e->got_response = 1;
        e->h->cb.on_message(e->h->ud, m, e->is_get ? 0 : e->rid);
    }
    json_decref(v);
}

static int on_sse_event(void *ctx, const lg_sse_event_t *ev)
{
    struct exchange *e = ctx;
    /* priming events carry no data; "message" is the only event type MCP uses */
    if (ev->data_len == 0 || (ev->event_len != 0 && strcmp(ev->event, "message") != 0))
        return 0;
    deliver(e, ev->data, ev->data_len);
    return e->h->destroyed ? 1 : 0;
}

static void schedule_listen(struct lg_mcp_http *h, uint64_t delay_ms);

static int on_head(void *ctx, lg_xfer_t *x, int status)
{
    struct exchange *e = ctx;
    struct lg_mcp_http *h = e->h;
    e->status = status;
    const char *sid = lg_xfer_header(x, "mcp-session-id");
    if (sid != NULL && status >= 200 && status < 300 && sid[0] != '\0' && strlen(sid) < sizeof(h->session))
        snprintf(h->session, sizeof(h->session), "%s", sid);
    const char *ct = lg_xfer_header(x, "content-type");
    if (status >= 200 && status < 300 && ct != NULL && strncasecmp(ct, "text/event-stream", 17) == 0) {
        e->is_sse = 1;
        lg_sse_parser_init(&e->sse, MAX_EVENT_BYTES, on_sse_event, NULL, e);
    }
    return 0;
}

static int on_data(void *ctx, lg_xfer_t *x, const char *data, size_t len)
{
    struct exchange *e = ctx;
    (void)x;
    if (e->status < 200 || e->status >= 300) {
        (void)lg_buf_append(&e->body, data, len); /* error bodies: keep what fits, for the message */
        return 0;
    }
    if (e->is_sse) {
        int rc = lg_sse_parser_feed(&e->sse, data, len);
        return rc == 0 ? 0 : -1;
    }
    return lg_buf_append(&e->body, data, len) == 0 ? 0 : -1;
}

static void error_excerpt(const struct exchange *e, char *out, size_t n)
{
    size_t len = e->body.len < 160 ? e->body.len : 160;
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < n; ++i)
        out[j++] = (unsigned char)e->body.data[i] < 0x20 ? ' ' : e->body.data[i];
    out[j] = '\0';
}

static int mentions_session(const lg_buf_t *body)
{
    static const char needle[] = "session";
    size_t n = sizeof(needle) - 1;
    for (size_t i = 0; i + n <= body->len; ++i)
        if (strncasecmp(body->data + i, needle, n) == 0)
            return 1;
    return 0;
}

static void on_done(void *ctx, lg_xfer_t *x, int result, const char *msg)
{
    struct exchange *e = ctx;
    struct lg_mcp_http *h = e->h;
    (void)x;
    xs_unlink(e);
    char why[320];
    why[0] = '\0';
    int expired = 0;
    if (result == 0 && e->status >= 200 && e->status < 300) {
        if (!e->is_sse && e->body.len > 0)
            deliver(e, e->body.data, e->body.len);
    } else if (result != 0) {
        snprintf(why, sizeof(why), "upstream transport error: %s", msg);
    } else {
        char ex[200];
        error_excerpt(e, ex, sizeof(ex));
        snprintf(why, sizeof(why), "upstream answered HTTP %d%s%s", e->status, ex[0] != '\0' ? ": " : "", ex);
        /* a lost session: 404 (the spec), or 400 about the session id (servers built on the official SDKs answer an
         * unknown session with "Bad Request: No valid session ID provided") */
        expired = h->session[0] != '\0' && (e->status == 404 || (e->status == 400 && mentions_session(&e->body)));
    }
    if (e->is_get) {
        if (!h->destroyed) {
            if (e->status == 405) {
                h->listen_disabled = 1; /* the server offers no GET stream: fine */
            } else if (expired) {
                h->session[0] = '\0';
                h->cb.on_session_expired(h->ud);
            } else if (h->listen_wanted) {
                if (why[0] != '\0')
                    LG_LOG(LG_LOG_DEBUG, h->module, "GET stream ended: %s", why);
                schedule_listen(h, LISTEN_RETRY_MS);
            }
        }
        exchange_free(e);
        return;
    }
    if (expired) {
        h->session[0] = '\0';
        if (e->rid != 0)
            h->cb.on_post_failed(h->ud, e->rid, e->status, LG_MCP_HTTP_SESSION_LOST, "upstream session expired");
        h->cb.on_session_expired(h->ud);
    } else if (e->rid != 0 && !e->got_response) {
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "upstream reply without a response to the request");
        h->cb.on_post_failed(h->ud, e->rid, e->status, result != 0 ? LG_MCP_HTTP_TRANSPORT : LG_MCP_HTTP_REFUSED, why);
    } else if (why[0] != '\0') {
        LG_LOG(LG_LOG_WARN, h->module, "%s", why);
    }
    exchange_free(e);
}

static const lg_xfer_callbacks_t xfer_cb = {on_head, on_data, on_done};

/* Request headers: config headers first, then ours (Content-Type/Accept/session/version are not overridable). */
static struct exchange *start(struct lg_mcp_http *h, const char *method, const char *body, size_t len, int64_t rid, int is_get)
{
    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    req.method = (char *)method;
    req.url = h->url;
    req.body = (char *)body;
    req.body_len = len;
    const char *k;
    json_t *v;
    json_object_foreach(h->headers, k, v)
    {
        if (req.num_headers + 5 >= LG_HTTP_MAX_HEADERS)
            break;
        if (strcasecmp(k, "content-type") == 0 || strcasecmp(k, "accept") == 0 || strcasecmp(k, "mcp-session-id") == 0 ||
            strcasecmp(k, "mcp-protocol-version") == 0)
            continue;
        req.headers[req.num_headers].name = (char *)k;
        req.headers[req.num_headers++].value = (char *)json_string_value(v);
    }
    if (!is_get && strcmp(method, "DELETE") != 0) {
        req.headers[req.num_headers].name = (char *)"Content-Type";
        req.headers[req.num_headers++].value = (char *)"application/json";
    }
    req.headers[req.num_headers].name = (char *)"Accept";
    req.headers[req.num_headers++].value = (char *)(is_get ? "text/event-stream" : "application/json, text/event-stream");
    if (h->session[0] != '\0') {
        req.headers[req.num_headers].name = (char *)"Mcp-Session-Id";
        req.headers[req.num_headers++].value = h->session;
    }
    if (h->version[0] != '\0') {
        req.headers[req.num_headers].name = (char *)"MCP-Protocol-Version";
        req.headers[req.num_headers++].value = h->version;
    }
    lg_xfer_opts_t o;
    memset(&o, 0, sizeof(o));
    o.connect_timeout_ms = 5000;
    o.first_byte_timeout_ms = is_get ? 30000 : h->timeout_ms + 1000;
    o.total_timeout_ms = is_get ? 0 : h->timeout_ms + 2000; /* the federation's own deadline fires first */
    o.max_response_bytes = is_get ? 0 : MAX_REPLY_BYTES;
    struct exchange *e = lg_malloc(sizeof(*e));
    memset(e, 0, sizeof(*e));
    e->h = h;
    e->rid = rid;
    e->is_get = is_get;
    lg_buf_init(&e->body, is_get ? 64 * 1024 : MAX_REPLY_BYTES);
    char err[256];
    e->x = lg_xfer_start(h->client, &req, &o, &xfer_cb, e, err, sizeof(err));
    if (e->x == NULL) {
        LG_LOG(LG_LOG_ERR, h->module, "cannot start %s: %s", method, err);
        lg_buf_dispose(&e->body);
        free(e);
        return NULL;
    }
    e->next = h->xs;
    if (e->next != NULL)
        e->next->prev = e;
    h->xs = e;
    return e;
}

lg_mcp_http_t *lg__mcp_http_create(uv_loop_t *loop, lg_upclient_t *client, const char *name, const char *url, const json_t *headers,
                                   uint32_t timeout_ms, const lg_mcp_http_callbacks_t *cb, void *ud)
{
    struct lg_mcp_http *h = lg_malloc(sizeof(*h));
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    h->client = client;
    h->cb = *cb;
    h->ud = ud;
    snprintf(h->module, sizeof(h->module), "mcp/%s", name);
    h->url = lg_strdup(url);
    h->headers = json_is_object(headers) ? json_deep_copy(headers) : json_object();
    h->timeout_ms = timeout_ms;
    uv_timer_init(loop, &h->retry);
    h->retry.data = h;
    return h;
}

int lg__mcp_http_send(lg_mcp_http_t *h, const json_t *msg, int64_t rid)
{
    char *body = json_dumps(msg, JSON_COMPACT);
    if (body == NULL)
        return -1;
    struct exchange *e = start(h, "POST", body, strlen(body), rid, 0);
    free(body);
    return e != NULL ? 0 : -1;
}

void lg__mcp_http_set_version(lg_mcp_http_t *h, const char *version)
{
    snprintf(h->version, sizeof(h->version), "%s", version != NULL ? version : "");
}

void lg__mcp_http_reset_session(lg_mcp_http_t *h)
{
    h->session[0] = '\0';
    h->version[0] = '\0';
    h->listen_wanted = 0;
    uv_timer_stop(&h->retry);
    if (h->get != NULL) {
        struct exchange *e = h->get;
        lg_xfer_cancel(e->x);
        xs_unlink(e);
        exchange_free(e);
    }
}

static void on_retry(uv_timer_t *t)
{
    struct lg_mcp_http *h = t->data;
    if (h->destroyed || !h->listen_wanted || h->listen_disabled || h->get != NULL)
        return;
    h->get = start(h, "GET", NULL, 0, 0, 1);
    if (h->get == NULL)
        schedule_listen(h, LISTEN_RETRY_MS);
}

static void schedule_listen(struct lg_mcp_http *h, uint64_t delay_ms)
{
    uv_timer_start(&h->retry, on_retry, delay_ms, 0);
}

void lg__mcp_http_listen(lg_mcp_http_t *h)
{
    if (h->listen_disabled)
        return;
    h->listen_wanted = 1;
    schedule_listen(h, 0);
}

static void on_delete_done(void *ctx, lg_xfer_t *x, int result, const char *msg)
{
    (void)ctx;
    (void)x;
    (void)result;
    (void)msg;
}

static int on_delete_head(void *ctx, lg_xfer_t *x, int status)
{
    (void)ctx;
    (void)x;
    (void)status;
    return 0;
}

static int on_delete_data(void *ctx, lg_xfer_t *x, const char *data, size_t len)
{
    (void)ctx;
    (void)x;
    (void)data;
    (void)len;
    return 0;
}

static void on_http_closed(uv_handle_t *hd)
{
    struct lg_mcp_http *h = hd->data;
    free(h->url);
    json_decref(h->headers);
    free(h);
}

void lg__mcp_http_destroy(lg_mcp_http_t *h)
{
    h->destroyed = 1;
    while (h->xs != NULL) {
        struct exchange *e = h->xs;
        lg_xfer_cancel(e->x);
        xs_unlink(e);
        exchange_free(e);
    }
    if (h->session[0] != '\0' && h->client != NULL) {
        /* end the upstream session politely; nobody waits for the answer */
        static const lg_xfer_callbacks_t del_cb = {on_delete_head, on_delete_data, on_delete_done};
        lg_http_req_t req;
        memset(&req, 0, sizeof(req));
        req.method = (char *)"DELETE";
        req.url = h->url;
        const char *k;
        json_t *v;
        json_object_foreach(h->headers, k, v)
        {
            if (req.num_headers + 3 >= LG_HTTP_MAX_HEADERS)
                break;
            req.headers[req.num_headers].name = (char *)k;
            req.headers[req.num_headers++].value = (char *)json_string_value(v);
        }
        req.headers[req.num_headers].name = (char *)"Mcp-Session-Id";
        req.headers[req.num_headers++].value = h->session;
        if (h->version[0] != '\0') {
            req.headers[req.num_headers].name = (char *)"MCP-Protocol-Version";
            req.headers[req.num_headers++].value = h->version;
        }
        lg_xfer_opts_t o = {.connect_timeout_ms = 2000, .total_timeout_ms = 5000, .max_response_bytes = 65536};
        char err[128];
        lg_xfer_start(h->client, &req, &o, &del_cb, NULL, err, sizeof(err));
    }
    uv_close((uv_handle_t *)&h->retry, on_http_closed);
}
