/* SPDX-License-Identifier: MIT */
/*
 * The front door (see frontdoor.h). h2o 2.2.5 hides Content-Length and Transfer-Encoding from req->headers (it
 * consumes them to frame the body), so the smuggling check reads the raw request head, which stays at the start of
 * the connection's input buffer until the response is done (HTTP/1 only; HTTP/2 has no such framing ambiguity).
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "http/anthropic_ingress.h"
#include "http/frontdoor.h"
#include "http/respond.h"
#include "runtime/worker.h"
#include "llmgate/error.h"

/* ---- shapes ---- */

static int has_prefix(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len >= n && memcmp(s, lit, n) == 0;
}

lg_error_shape_t lg_frontdoor_shape(const char *target, size_t len)
{
    const char *q = memchr(target, '?', len);
    if (q != NULL)
        len = (size_t)(q - target);
    if (has_prefix(target, len, "/api/v1/")) {
        target += 4;
        len -= 4;
    }
    while (len > 1 && target[len - 1] == '/')
        --len;
    if (len == 12 && memcmp(target, "/v1/messages", 12) == 0)
        return LG_SHAPE_ANTHROPIC;
    if (has_prefix(target, len, "/v1/messages/")) /* count_tokens and friends */
        return LG_SHAPE_ANTHROPIC;
    if ((len == 4 && memcmp(target, "/mcp", 4) == 0) || has_prefix(target, len, "/mcp/"))
        return LG_SHAPE_JSONRPC;
    return LG_SHAPE_OPENAI;
}

static json_t *shape_body(lg_error_shape_t shape, int err, int status, const char *msg)
{
    if (msg == NULL)
        msg = lg_strerror(err);
    switch (shape) {
    case LG_SHAPE_ANTHROPIC:
        return lg_anthropic_error_json(err, status, msg);
    case LG_SHAPE_JSONRPC:
        return json_pack("{s:s,s:n,s:{s:i,s:s,s:{s:i,s:s}}}", "jsonrpc", "2.0", "id", "error", "code", lg_err_jsonrpc_code(err),
                         "message", msg, "data", "status", status, "error_type", lg_err_type(err));
    default:
        return lg_error_json(err, status, msg, NULL);
    }
}

void lg_frontdoor_refuse(h2o_req_t *req, lg_error_shape_t shape, int err, int status, const char *msg, int close)
{
    if (status == 0)
        status = lg_err_status(err);
    if (close)
        req->http1_is_persistent = 0;
    lg_respond_json(req, status, shape_body(shape, err, status, msg));
}

/* ---- raw head: request smuggling (RFC 9112 §6.1, §6.3) ---- */

static const char *trim(const char *s, const char *e, size_t *out_len)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        ++s;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        --e;
    *out_len = (size_t)(e - s);
    return s;
}

const char *lg_frontdoor_framing_conflict(const char *head, size_t len)
{
    const char *p = head, *end = head + len;
    const char *cl = NULL;
    size_t cl_len = 0;
    int te = 0;
    /* skip the request line */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
        return NULL;
    p = nl + 1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        if (le == p || (le == p + 1 && *p == '\r'))
            break; /* blank line: end of the head */
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon != NULL) {
            size_t nlen = (size_t)(colon - p);
            size_t vlen;
            const char *v = trim(colon + 1, le, &vlen);
            if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0) {
                for (size_t i = 0; i < vlen; ++i)
                    if (v[i] < '0' || v[i] > '9')
                        return "Content-Length is not a number";
                if (vlen == 0)
                    return "Content-Length is empty";
                if (cl != NULL && (cl_len != vlen || memcmp(cl, v, vlen) != 0))
                    return "Content-Length values disagree";
                cl = v;
                cl_len = vlen;
            } else if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
                if (te++)
                    return "Transfer-Encoding repeated";
            }
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if (te && cl != NULL)
        return "both Content-Length and Transfer-Encoding (RFC 9112 §6.3)";
    return NULL;
}

/* The raw head of an HTTP/1 request, or len 0 when it cannot be seen (HTTP/2, upgraded, or not at the buffer start). */
static const char *raw_head(h2o_req_t *req, size_t *len)
{
    *len = 0;
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->input == NULL)
        return NULL;
    const char *b = sock->input->bytes;
    size_t n = sock->input->size;
    /* sanity: the buffer must start with this request's method (it does, unless h2o changes its buffering) */
    if (n < req->input.method.len + 1 || memcmp(b, req->input.method.base, req->input.method.len) != 0 ||
        b[req->input.method.len] != ' ')
        return NULL;
    for (size_t i = 0; i + 1 < n; ++i) {
        if (b[i] == '\n' && (b[i + 1] == '\n' || (b[i + 1] == '\r' && i + 2 < n && b[i + 2] == '\n'))) {
            *len = i + 1;
            return b;
        }
    }
    return NULL;
}

/* ---- screen ---- */

static size_t header_bytes(const h2o_req_t *req)
{
    size_t n = 0;
    for (size_t i = 0; i != req->headers.size; ++i)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n;
}

static int began_before(const h2o_req_t *req, uint64_t ms)
{
    const struct timeval *tv = &req->timestamps.request_begin_at;
    if (tv->tv_sec == 0)
        return 1;
    return (uint64_t)tv->tv_sec * 1000u + (uint64_t)tv->tv_usec / 1000u < ms;
}

/* ---- rapid reset across connections ---- */

struct cancel_watch {
    h2o_req_t *req;
    lg_worker_t *w;
    uint64_t key;
    struct sockaddr_in6 peer; /* copied at the start: the connection may be half torn down at disposal */
};

static void addr_text(const struct sockaddr_in6 *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sa->sin6_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sin6_family == AF_INET6)
        inet_ntop(AF_INET6, &sa->sin6_addr, buf, (socklen_t)len);
}

/* request pool disposal: a request whose response never started was cancelled by the client (or its connection died) */
static void on_watch_dispose(void *p)
{
    struct cancel_watch *cw = p;
    if (cw->req->res.status != 0)
        return;
    if (lg_abuse_addr_note_cancel(&cw->w->abuse, cw->key, lg_now_ms())) {
        char a[INET6_ADDRSTRLEN];
        addr_text(&cw->peer, a, sizeof(a));
        LG_LOG(LG_LOG_WARN, "http", "client %s cancelled %u requests within %u s: refused for %u s (rapid reset)", a,
               (unsigned)LG_ABUSE_ADDR_MAX_CANCELS, (unsigned)(LG_ABUSE_ADDR_WINDOW_MS / 1000),
               (unsigned)(LG_ABUSE_ADDR_BLOCK_MS / 1000));
    }
}

static uint64_t peer_key(h2o_req_t *req, struct sockaddr_in6 *peer)
{
    struct sockaddr_storage ss;
    memset(peer, 0, sizeof(*peer));
    if (req->conn->callbacks->get_peername == NULL || req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss) == 0)
        return 0;
    memcpy(peer, &ss, ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(*peer));
    return lg_abuse_addr_key((struct sockaddr *)&ss);
}

/*
 * End an abusive HTTP/2 connection. h2o 2.2.5 has no public call to send GOAWAY on one connection (its
 * http2_internal.h needs headers Debian does not ship), so end the read side: h2o sees EOF, stops taking streams,
 * flushes what it has queued (this 429 included) and closes the connection. HTTP/1 closes after the 429 itself.
 */
static void close_abusive(h2o_req_t *req)
{
    if (req->version < 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    int fd = sock != NULL ? h2o_socket_get_fd(sock) : -1;
    if (fd >= 0)
        shutdown(fd, SHUT_RD);
}

static int screen_abuse(lg_worker_t *w, h2o_req_t *req, lg_error_shape_t shape)
{
    struct sockaddr_in6 peer;
    uint64_t key = peer_key(req, &peer);
    if (key == 0)
        return 0;
    if (lg_abuse_addr_blocked(&w->abuse, key, lg_now_ms())) {
        ++w->abuse.addr_refused;
        lg_metrics_rejected(w->index, "abuse");
        close_abusive(req);
        lg_add_header(req, "retry-after", "10");
        lg_frontdoor_refuse(req, shape, LG_ERATELIMIT, 429, "too many cancelled requests from this client address", 1);
        return 1;
    }
    struct cancel_watch *cw = h2o_mem_alloc_shared(&req->pool, sizeof(*cw), on_watch_dispose);
    cw->req = req;
    cw->w = w;
    cw->key = key;
    cw->peer = peer;
    return 0;
}

int lg_frontdoor_screen(struct lg_worker *w, h2o_req_t *req)
{
    lg_error_shape_t shape = lg_frontdoor_shape(req->path.base, req->path.len);
    size_t hl;
    const char *head = raw_head(req, &hl);
    const char *why = head != NULL ? lg_frontdoor_framing_conflict(head, hl) : NULL;
    if (why != NULL) {
        char msg[160];
        snprintf(msg, sizeof(msg), "malformed request framing: %s", why);
        /* the body h2o framed may hide a second request: never read on from this connection */
        lg_frontdoor_refuse(req, shape, LG_EINVAL, 400, msg, 1);
        return 1;
    }
    if (req->path.len > LG_FRONTDOOR_MAX_URL_BYTES) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request target of %zu bytes exceeds the limit of %u bytes", req->path.len,
                 (unsigned)LG_FRONTDOOR_MAX_URL_BYTES);
        lg_frontdoor_refuse(req, shape, LG_EINVAL, 414, msg, 1);
        return 1;
    }
    size_t hb = header_bytes(req);
    if (hb > LG_FRONTDOOR_MAX_HEADER_BYTES) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request headers of %zu bytes exceed the limit of %u bytes", hb,
                 (unsigned)LG_FRONTDOOR_MAX_HEADER_BYTES);
        lg_frontdoor_refuse(req, shape, LG_EINVAL, 431, msg, 1);
        return 1;
    }
    if (screen_abuse(w, req, shape))
        return 1;
    if (w->draining && req->version < 0x200 && !began_before(req, w->drain_began_ms)) {
        /* a new request on a kept-alive connection after SIGTERM: refuse it at once and close */
        lg_add_header(req, "retry-after", "1");
        lg_frontdoor_refuse(req, shape, LG_ESHUTDOWN, 503, NULL, 1);
        return 1;
    }
    if (w->draining)
        req->http1_is_persistent = 0;
    return 0;
}

/* ---- shutdown drain ---- */

static int drain_http1(h2o_req_t *req, void *cbdata)
{
    (void)cbdata;
    req->http1_is_persistent = 0; /* in flight: the response ends the connection */
    if (req->timestamps.request_begin_at.tv_sec == 0 && req->conn->callbacks->get_socket != NULL) {
        /* idle keep-alive (no byte of a next request yet; nothing of ours is unsent): shut it down both ways, so the
         * client sees the close at once even if this worker's loop stops right after (nothing in flight here), and h2o
         * sees EOF and closes it if the loop runs on */
        h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
        int fd = sock != NULL ? h2o_socket_get_fd(sock) : -1;
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
    return 0;
}

void lg_frontdoor_begin_drain(struct lg_worker *w)
{
    /* the same clock as req->timestamps.request_begin_at (h2o's cached gettimeofday) */
    const struct timeval *tv = h2o_get_timestamp(&w->ctx, NULL, NULL);
    w->drain_began_ms = (uint64_t)tv->tv_sec * 1000u + (uint64_t)tv->tv_usec / 1000u;
    if (w->ctx.globalconf->http1.callbacks.foreach_request != NULL)
        w->ctx.globalconf->http1.callbacks.foreach_request(&w->ctx, drain_http1, NULL);
}

/* ---- h2o's own error responses, reshaped ---- */

struct reshape_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    int sent;
};

static void reshape_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    struct reshape_ostream *o = (struct reshape_ostream *)self;
    (void)bufs;
    if (!o->sent && bufcnt != 0) {
        o->sent = 1;
        h2o_ostream_send_next(self, req, &o->body, 1, state);
        return;
    }
    h2o_ostream_send_next(self, req, NULL, 0, state);
}

static int status_err(int status)
{
    switch (status) {
    case 413:
        return LG_ETOOLARGE;
    case 404:
        return LG_ENOTFOUND;
    case 405:
        return LG_EMETHOD;
    case 503:
        return LG_ESHUTDOWN;
    default:
        return status >= 500 ? LG_EINTERNAL : LG_EINVAL;
    }
}

static void on_setup_reshape(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status >= 400) {
        /* only h2o itself answers on the fallback path (our handler is registered at "/"): its reason phrase is the
         * most specific text it gives, e.g. "Request Entity Too Large" */
        char msg[192];
        if (req->res.status == 413)
            snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes",
                     req->conn->ctx->globalconf->max_request_entity_size);
        else
            snprintf(msg, sizeof(msg), "%s", req->res.reason != NULL ? req->res.reason : "bad request");
        lg_error_shape_t shape = lg_frontdoor_shape(req->input.path.base, req->input.path.len);
        json_t *j = shape_body(shape, status_err(req->res.status), req->res.status, msg);
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (text != NULL) {
            struct reshape_ostream *o = (struct reshape_ostream *)h2o_add_ostream(req, sizeof(*o), slot);
            o->super.do_send = reshape_do_send;
            o->body = h2o_strdup(&req->pool, text, strlen(text));
            o->sent = 0;
            free(text);
            memset(&req->res.headers, 0, sizeof(req->res.headers));
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
            req->res.content_length = o->body.len;
            slot = &o->super.next;
        }
    }
    h2o_setup_next_ostream(req, slot);
}

void lg_frontdoor_register(h2o_hostconf_t *host)
{
    h2o_filter_t *f = h2o_create_filter(&host->fallback_path, sizeof(*f));
    f->on_setup_ostream = on_setup_reshape;
}
