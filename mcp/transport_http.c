/* SPDX-License-Identifier: MIT */
/*
 * Streamable HTTP for MCP on h2o (see transport_http.h).
 *
 * POST: validation in the order of mcp/README.md, then initialize (mints the
 * session), requests (dispatched to server.c; the answer is application/json
 * unless the call emits a notification or a server->client request first,
 * or the client prefers SSE: then text/event-stream with a priming event),
 * notifications and responses (202). GET: the session's one server->client
 * SSE stream (a second concurrent GET gets 409). DELETE: ends the session.
 *
 * Lifetime: each POST exchange and GET stream is heap-owned and tied to its
 * request by a shared pool chunk whose dispose callback (run by h2o in every
 * case) detaches it; calls reporting to a POST are cancelled then. SSE bytes
 * go out through one h2o_send at a time (proceed drives the next).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "cluster/cluster.h"
#include "core/log.h"
#include "core/util.h"
#include "http/respond.h"
#include "mcp/era.h"
#include "mcp/oauth_server.h"
#include "mcp/server.h"
#include "mcp/transport_http.h"

#define OUTQ_MAX_BYTES ((size_t)64 << 20)
#define GET_KEEPALIVE_MS 15000

static lg_mcp_auth_fn auth_hook;

void lg_mcp_set_auth(lg_mcp_auth_fn fn)
{
    auth_hook = fn;
}

/* ---- per-worker state and inbox ---- */

struct inbox_item {
    int type;
    char session_id[LG_MCP_SESSION_ID_LEN + 1];
    char key[96];
    json_t *msg;
    struct inbox_item *next;
};

struct get_stream;

struct tworker {
    lg_mcp_worker_t mw;
    uv_async_t async;
    pthread_mutex_t mu;
    struct inbox_item *head, *tail;
    struct get_stream *streams;
};

static struct tworker *_Atomic workers_tab[LG_MCP_MAX_WORKERS];

static void stream_send_json(struct get_stream *g, json_t *msg);
static void stream_close(struct get_stream *g);
static struct get_stream *find_stream(struct tworker *tw, const char *session_id);

static void on_inbox(uv_async_t *a)
{
    struct tworker *tw = a->data;
    pthread_mutex_lock(&tw->mu);
    struct inbox_item *it = tw->head;
    tw->head = tw->tail = NULL;
    pthread_mutex_unlock(&tw->mu);
    while (it != NULL) {
        struct inbox_item *next = it->next;
        struct get_stream *g;
        switch (it->type) {
        case LG_MCP_POST_RESPONSE:
            lg__mcp_server_deliver_response(&tw->mw, it->session_id, it->msg);
            break;
        case LG_MCP_POST_CANCEL:
            lg__mcp_server_cancel(&tw->mw, it->session_id, it->key);
            break;
        case LG_MCP_POST_STREAM_SEND:
            if ((g = find_stream(tw, it->session_id)) != NULL && it->msg != NULL)
                stream_send_json(g, json_incref(it->msg));
            break;
        case LG_MCP_POST_SESSION_GONE:
            lg__mcp_server_session_gone(&tw->mw, it->session_id);
            if ((g = find_stream(tw, it->session_id)) != NULL)
                stream_close(g);
            break;
        default:
            break;
        }
        json_decref(it->msg);
        free(it);
        it = next;
    }
}

static const lg_mcp_transport_ops_t http_transport;

static struct tworker *tworker_get(lg_worker_t *w)
{
    if (w->index >= LG_MCP_MAX_WORKERS)
        return NULL;
    struct tworker *tw = atomic_load(&workers_tab[w->index]);
    if (tw != NULL)
        return tw;
    /* only this worker's own thread creates its entry, so there is no race on it */
    lg_mcp_server_set_transport(&http_transport); /* idempotent: the same ops every time */
    tw = lg_malloc(sizeof(*tw));
    memset(tw, 0, sizeof(*tw));
    tw->mw.index = w->index;
    tw->mw.loop = &w->loop;
    tw->mw.transport = tw;
    pthread_mutex_init(&tw->mu, NULL);
    uv_async_init(&w->loop, &tw->async, on_inbox);
    tw->async.data = tw;
    /* the inbox alone must not keep a draining loop alive */
    uv_unref((uv_handle_t *)&tw->async);
    atomic_store(&workers_tab[w->index], tw);
    return tw;
}

lg_mcp_worker_t *lg_mcp_worker_of(lg_worker_t *w)
{
    struct tworker *tw = tworker_get(w);
    return tw != NULL ? &tw->mw : NULL;
}

static int http_post(unsigned worker, int type, const char *session_id, const char *key, json_t *msg)
{
    struct tworker *tw = worker < LG_MCP_MAX_WORKERS ? atomic_load(&workers_tab[worker]) : NULL;
    if (tw == NULL) {
        json_decref(msg);
        return -1;
    }
    struct inbox_item *it = lg_malloc(sizeof(*it));
    memset(it, 0, sizeof(*it));
    it->type = type;
    snprintf(it->session_id, sizeof(it->session_id), "%s", session_id != NULL ? session_id : "");
    snprintf(it->key, sizeof(it->key), "%s", key != NULL ? key : "");
    it->msg = msg;
    pthread_mutex_lock(&tw->mu);
    if (tw->tail != NULL)
        tw->tail->next = it;
    else
        tw->head = it;
    tw->tail = it;
    pthread_mutex_unlock(&tw->mu);
    uv_async_send(&tw->async);
    return 0;
}

static void http_post_all(int type, const char *session_id, const char *key, json_t *msg)
{
    for (unsigned i = 0; i < LG_MCP_MAX_WORKERS; ++i)
        if (atomic_load(&workers_tab[i]) != NULL)
            http_post(i, type, session_id, key, msg != NULL ? json_deep_copy(msg) : NULL);
    json_decref(msg);
}

/* the server core reaches other workers through these (it does not know this transport) */
static const lg_mcp_transport_ops_t http_transport = {http_post, http_post_all};

/* ---- small HTTP helpers ---- */

static const char *header(h2o_req_t *req, const char *name, size_t *len)
{
    size_t l = 0;
    const char *v = lg_req_header(req, name, &l);
    *len = v != NULL ? l : 0;
    return v;
}

static void add_header(h2o_req_t *req, const char *name, const char *value, size_t vlen)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, vlen);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, v.base, v.len);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/** Send obj (stolen) as the whole application/json response. */
static void respond_json(h2o_req_t *req, int status, json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(obj);
    if (body == NULL) {
        status = 500;
        body = lg_strdup("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,\"message\":\"cannot encode response\"}}");
    }
    req->res.status = status;
    req->res.reason = reason_of(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    size_t len = strlen(body);
    req->res.content_length = len;
    h2o_send_inline(req, body, len); /* copies into the pool */
    free(body);
}

/** JSON-RPC error body with an HTTP status (transport-level errors). id borrowed, may be NULL. */
static void respond_rpc_error(h2o_req_t *req, int status, const json_t *id, int code, const char *message)
{
    respond_json(req, status, lg_jsonrpc_make_error(id, code, message, NULL));
}

static void respond_empty(h2o_req_t *req, int status)
{
    static h2o_generator_t gen = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = 0;
    h2o_start_response(req, &gen);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

/* ---- Host / Origin (DNS rebinding protection) ---- */

static int listener_is_loopback(h2o_req_t *req)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (req->conn->callbacks->get_sockname == NULL || req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&ss) == 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && sin6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

/* Split "host[:port]" / "[v6][:port]" into the host part (brackets kept). Returns its length. */
static size_t host_part(const char *a, size_t n)
{
    if (n > 0 && a[0] == '[') {
        const char *e = memchr(a, ']', n);
        return e != NULL ? (size_t)(e - a) + 1 : n;
    }
    const char *colon = memchr(a, ':', n);
    if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon - a) - 1) == NULL)
        return (size_t)(colon - a);
    return n;
}

static int eq_nocase(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    return an == bn && strncasecmp(a, b, an) == 0;
}

static int is_loopback_host(const char *h, size_t n)
{
    if (eq_nocase(h, n, "localhost") || eq_nocase(h, n, "[::1]") || eq_nocase(h, n, "::1"))
        return 1;
    /* 127.0.0.0/8 */
    char buf[16];
    struct in_addr a;
    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, h, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static int host_listed(char *const *list, const char *a, size_t n)
{
    size_t hn = host_part(a, n);
    for (; list != NULL && *list != NULL; ++list)
        if (eq_nocase(a, n, *list) || eq_nocase(a, hn, *list))
            return 1;
    return 0;
}

/* Returns NULL when Host and Origin are acceptable, else the reason (403). */
static const char *check_host_origin(h2o_req_t *req, const lg_mcp_conf_t *mc, int loopback)
{
    h2o_iovec_t auth = req->input.authority;
    int hosts_set = mc->allowed_hosts != NULL && mc->allowed_hosts[0] != NULL;
    int host_ok = (loopback && is_loopback_host(auth.base, host_part(auth.base, auth.len))) ||
                  host_listed(mc->allowed_hosts, auth.base, auth.len) || (!loopback && !hosts_set);
    if (!host_ok)
        return "Host header not allowed";

    size_t olen;
    const char *origin = header(req, "origin", &olen);
    if (origin == NULL)
        return NULL; /* non-browser clients send none */
    for (char *const *o = mc->allowed_origins; o != NULL && *o != NULL; ++o)
        if (strcmp(*o, "*") == 0 || eq_nocase(origin, olen, *o))
            return NULL;
    const char *sep = olen > 3 ? memmem(origin, olen, "://", 3) : NULL;
    if (sep != NULL) {
        const char *oh = sep + 3;
        size_t ohn = olen - (size_t)(oh - origin);
        if (loopback && is_loopback_host(oh, host_part(oh, ohn)))
            return NULL;
        /* same origin as the (already vetted) Host: a page served by this gateway */
        if (ohn == auth.len && strncasecmp(oh, auth.base, ohn) == 0)
            return NULL;
    }
    return "Origin not allowed";
}

static void add_cors(h2o_req_t *req)
{
    size_t olen;
    const char *origin = header(req, "origin", &olen);
    if (origin == NULL)
        return;
    add_header(req, "access-control-allow-origin", origin, olen);
    add_header(req, "vary", "Origin", 6);
    static const char expose[] = "Mcp-Session-Id, Mcp-Protocol-Version";
    add_header(req, "access-control-expose-headers", expose, sizeof(expose) - 1);
}

/* ---- Accept ---- */

/* q of the most specific range in accept matching type/subtype; -1 if none matches. */
static double accept_q(const char *accept, size_t len, const char *type, const char *subtype)
{
    double best_q = -1;
    int best_spec = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && accept[i] != ',')
            ++i;
        size_t end = i++;
        /* one range: "type/subtype ; param=value ..." */
        const char *r = accept + start;
        size_t rl = end - start;
        while (rl > 0 && (*r == ' ' || *r == '\t')) {
            ++r;
            --rl;
        }
        const char *semi = memchr(r, ';', rl);
        size_t ml = semi != NULL ? (size_t)(semi - r) : rl;
        while (ml > 0 && (r[ml - 1] == ' ' || r[ml - 1] == '\t'))
            --ml;
        const char *slash = memchr(r, '/', ml);
        if (slash == NULL)
            continue;
        size_t tl = (size_t)(slash - r), sl = ml - tl - 1;
        int spec = 0;
        if (tl == 1 && r[0] == '*' && sl == 1 && slash[1] == '*')
            spec = 1;
        else if (eq_nocase(r, tl, type) && sl == 1 && slash[1] == '*')
            spec = 2;
        else if (eq_nocase(r, tl, type) && eq_nocase(slash + 1, sl, subtype))
            spec = 3;
        if (spec == 0 || spec < best_spec)
            continue;
        double q = 1.0;
        for (const char *p = semi; p != NULL && p < r + rl;) {
            ++p;
            while (p < r + rl && (*p == ' ' || *p == '\t'))
                ++p;
            if (p + 2 <= r + rl && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                char num[16];
                size_t nl = 0;
                for (const char *d = p + 2; d < r + rl && *d != ';' && nl < sizeof(num) - 1; ++d)
                    num[nl++] = *d;
                num[nl] = '\0';
                q = strtod(num, NULL);
            }
            p = memchr(p, ';', (size_t)(r + rl - p));
        }
        best_spec = spec;
        best_q = q;
    }
    return best_q;
}

/* ---- SSE output shared by POST streams and GET streams ---- */

struct sse_out {
    h2o_req_t *req; /* NULL once the client is gone */
    h2o_generator_t gen;
    lg_buf_t outq, sending;
    int started, send_inflight, final_queued, finished;
    char stream_id[24];
    uint64_t seq;
};

static void sse_flush(struct sse_out *o)
{
    if (o->req == NULL || !o->started || o->send_inflight || o->finished)
        return;
    if (o->outq.len == 0 && !o->final_queued)
        return;
    lg_buf_t tmp = o->sending;
    o->sending = o->outq;
    o->outq = tmp;
    lg_buf_reset(&o->outq);
    h2o_iovec_t iov = h2o_iovec_init(o->sending.data, o->sending.len);
    o->send_inflight = 1;
    if (o->final_queued)
        o->finished = 1;
    h2o_send(o->req, &iov, iov.len != 0 ? 1 : 0, o->final_queued ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void sse_on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    struct sse_out *o = H2O_STRUCT_FROM_MEMBER(struct sse_out, gen, gen);
    o->send_inflight = 0;
    lg_buf_reset(&o->sending);
    sse_flush(o);
}

static void sse_on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    /* the client left; the pool dispose callback that follows cleans up */
    (void)gen;
    (void)req;
}

static void sse_write(struct sse_out *o, const char *data, size_t len)
{
    if (o->req == NULL || o->finished || o->final_queued)
        return;
    if (lg_buf_append(&o->outq, data, len) != 0) {
        LG_LOG(LG_LOG_WARN, "mcp", "SSE client does not read (over %zu bytes queued); closing the stream", OUTQ_MAX_BYTES);
        o->final_queued = 1;
    }
}

/* Start the event stream: status and headers go out together with the priming event (a zero-length send does not
 * flush HTTP/1.1 chunked headers in h2o 2.2.5). */
static void sse_start(struct sse_out *o, lg_mcp_worker_t *mw)
{
    h2o_req_t *req = o->req;
    if (o->started || req == NULL)
        return;
    snprintf(o->stream_id, sizeof(o->stream_id), "%u-%llu", mw->index, (unsigned long long)++mw->seq);
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    add_header(req, "x-accel-buffering", "no", 2);
    o->gen.proceed = sse_on_proceed;
    o->gen.stop = sse_on_stop;
    o->started = 1;
    h2o_start_response(req, &o->gen);
    char prime[64];
    int n = snprintf(prime, sizeof(prime), "id: %s-0\ndata: \n\n", o->stream_id);
    sse_write(o, prime, (size_t)n);
    sse_flush(o);
}

static void sse_event(struct sse_out *o, json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(msg);
    if (s == NULL)
        return;
    char head[80];
    int n = snprintf(head, sizeof(head), "event: message\nid: %s-%llu\ndata: ", o->stream_id, (unsigned long long)++o->seq);
    sse_write(o, head, (size_t)n);
    sse_write(o, s, strlen(s));
    sse_write(o, "\n\n", 2);
    free(s);
    sse_flush(o);
}

static void sse_finish(struct sse_out *o)
{
    if (o->req == NULL || o->finished || o->final_queued)
        return;
    o->final_queued = 1;
    sse_flush(o);
}

static void sse_init(struct sse_out *o, h2o_req_t *req)
{
    memset(o, 0, sizeof(*o));
    o->req = req;
    lg_buf_init(&o->outq, OUTQ_MAX_BYTES);
    lg_buf_init(&o->sending, OUTQ_MAX_BYTES);
}

static void sse_dispose(struct sse_out *o)
{
    lg_buf_dispose(&o->outq);
    lg_buf_dispose(&o->sending);
}

/* ---- POST exchange ---- */

enum { MODE_UNDECIDED = 0, MODE_SSE };

struct post_x {
    struct tworker *tw;
    lg_worker_t *w;
    lg_mcp_sink_t sink;
    struct sse_out out;
    lg_mcp_session_t *session;
    lg_mcp_registry_t *reg;
    int mode;
    int accept_sse;
    int batch;
    unsigned pending;  /* requests not answered yet */
    json_t *collected; /* JSON mode: responses so far */
    int responded;
    int guard, torn_down;
    int modern;      /* a stateless 2026-07-28 request: answers are stamped (resultType, caching hints, status) */
    int status;      /* HTTP status of a JSON answer */
    char method[64]; /* modern: the request's method, for the stamp */
};

static void post_free(struct post_x *x)
{
    sse_dispose(&x->out);
    json_decref(x->collected);
    lg_mcp_session_unref(x->session);
    lg_mcp_registry_unref(x->reg);
    lg__worker_request_done(x->w);
    free(x);
}

static void post_enter(struct post_x *x)
{
    ++x->guard;
}

static void post_leave(struct post_x *x)
{
    if (--x->guard == 0 && x->torn_down)
        post_free(x);
}

static void post_on_dispose(void *p)
{
    struct post_x *x = *(struct post_x **)p;
    post_enter(x);
    x->out.req = NULL;
    x->torn_down = 1;
    /* calls still running for this request are cancelled: nobody could receive their answers */
    lg_mcp_server_detach_sink(&x->tw->mw, &x->sink);
    post_leave(x);
}

static int post_emit(lg_mcp_sink_t *sink, json_t *msg)
{
    struct post_x *x = H2O_STRUCT_FROM_MEMBER(struct post_x, sink, sink);
    if (x->out.req == NULL || x->responded || (x->mode != MODE_SSE && !x->accept_sse)) {
        json_decref(msg);
        return -1;
    }
    if (x->mode != MODE_SSE) {
        x->mode = MODE_SSE;
        sse_start(&x->out, &x->tw->mw);
    }
    sse_event(&x->out, msg);
    return 0;
}

static void post_finish_json(struct post_x *x)
{
    h2o_req_t *req = x->out.req;
    x->responded = 1;
    if (req == NULL) {
        return;
    }
    size_t n = json_array_size(x->collected);
    if (n == 0) {
        /* nothing to answer (a cancelled request): accepted, no body */
        respond_empty(req, 202);
        return;
    }
    json_t *body = x->batch ? json_incref(x->collected) : json_incref(json_array_get(x->collected, 0));
    respond_json(req, x->status != 0 ? x->status : 200, body);
}

static void post_respond(lg_mcp_sink_t *sink, json_t *msg)
{
    struct post_x *x = H2O_STRUCT_FROM_MEMBER(struct post_x, sink, sink);
    post_enter(x);
    if (x->pending > 0)
        --x->pending;
    if (x->modern && msg != NULL)
        x->status = lg_mcp_era_stamp(x->method, msg);
    if (x->mode == MODE_SSE) {
        if (msg != NULL)
            sse_event(&x->out, msg);
        if (x->pending == 0) {
            x->responded = 1;
            sse_finish(&x->out);
        }
    } else {
        if (msg != NULL)
            json_array_append_new(x->collected, msg);
        if (x->pending == 0)
            post_finish_json(x);
    }
    post_leave(x);
}

static struct post_x *post_create(struct tworker *tw, lg_worker_t *w, h2o_req_t *req, lg_mcp_session_t *s, lg_mcp_registry_t *reg,
                                  int accept_sse, int prefer_sse)
{
    struct post_x *x = lg_malloc(sizeof(*x));
    memset(x, 0, sizeof(*x));
    x->tw = tw;
    x->w = w;
    x->sink.emit = post_emit;
    x->sink.respond = post_respond;
    sse_init(&x->out, req);
    x->session = s != NULL ? lg_mcp_session_ref(s) : NULL; /* NULL: a stateless request makes its own */
    x->reg = lg_mcp_registry_ref(reg);
    x->accept_sse = accept_sse;
    x->collected = json_array();
    lg__worker_request_begin(w);
    *(struct post_x **)h2o_mem_alloc_shared(&req->pool, sizeof(struct post_x *), post_on_dispose) = x;
    if (prefer_sse && accept_sse) {
        x->mode = MODE_SSE;
        sse_start(&x->out, &tw->mw);
    }
    return x;
}

/* ---- GET stream ---- */

struct get_stream {
    struct tworker *tw;
    struct sse_out out;
    lg_mcp_session_t *session;
    char session_id[LG_MCP_SESSION_ID_LEN + 1];
    uint64_t serial;
    uv_timer_t ka;
    int listen; /* a 2026-07-28 subscriptions/listen stream: its session ends with it */
    struct get_stream *next, *prev;
};

static struct get_stream *find_stream(struct tworker *tw, const char *session_id)
{
    for (struct get_stream *g = tw->streams; g != NULL; g = g->next)
        if (strcmp(g->session_id, session_id) == 0 && g->out.req != NULL)
            return g;
    return NULL;
}

static void stream_send_json(struct get_stream *g, json_t *msg)
{
    sse_event(&g->out, msg);
}

static void stream_close(struct get_stream *g)
{
    uv_timer_stop(&g->ka);
    sse_finish(&g->out);
}

static void get_closed(uv_handle_t *h)
{
    struct get_stream *g = h->data;
    sse_dispose(&g->out);
    lg_mcp_session_unref(g->session);
    free(g);
}

static void get_on_dispose(void *p)
{
    struct get_stream *g = *(struct get_stream **)p;
    g->out.req = NULL;
    lg_mcp_session_detach_stream(g->session, g->tw->mw.index, g->serial);
    if (g->listen)
        lg_mcp_session_close(g->session);
    if (g->prev != NULL)
        g->prev->next = g->next;
    else
        g->tw->streams = g->next;
    if (g->next != NULL)
        g->next->prev = g->prev;
    uv_timer_stop(&g->ka);
    uv_close((uv_handle_t *)&g->ka, get_closed);
}

static void on_get_keepalive(uv_timer_t *t)
{
    struct get_stream *g = t->data;
    static const char ka[] = ": keepalive\n\n";
    sse_write(&g->out, ka, sizeof(ka) - 1);
    sse_flush(&g->out);
}

/* ---- request handling ---- */

static const char *const supported_list = "2025-11-25, 2025-06-18, 2025-03-26";

/* Mcp-Session-Id lookup: NULL with the answer already sent (400 missing / 404 unknown). */
static lg_mcp_session_t *need_session(h2o_req_t *req, const char *key_id, const char *server)
{
    size_t len;
    const char *sid = header(req, "mcp-session-id", &len);
    if (sid == NULL || len == 0) {
        respond_rpc_error(req, 400, NULL, LG_JSONRPC_SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required");
        return NULL;
    }
    lg_mcp_session_t *s = lg_mcp_session_lookup(sid, len, key_id, server);
    if (s == NULL && lg_cluster_enabled()) {
        /* scale-out: sessions live in the replica that created them (open streams and in-flight calls cannot move), so
         * the balancer must route by Mcp-Session-Id. Still a 404: the client re-initializes and carries on here. */
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "Session not found on this replica (%s): MCP sessions stay on the replica that created them; route by the "
                 "Mcp-Session-Id header or re-initialize",
                 lg_cluster_replica_id());
        respond_rpc_error(req, 404, NULL, LG_JSONRPC_SERVER_ERROR, msg);
    } else if (s == NULL) {
        respond_rpc_error(req, 404, NULL, LG_JSONRPC_SERVER_ERROR, "Session not found");
    }
    return s;
}

/* MCP-Protocol-Version: absent is fine (negotiated or 2025-03-26 assumed); unsupported -> 400. */
static int check_version(h2o_req_t *req)
{
    size_t len;
    const char *v = header(req, "mcp-protocol-version", &len);
    if (v == NULL || lg_mcp_version_supported(v, len))
        return 0;
    char msg[160];
    snprintf(msg, sizeof(msg), "Bad Request: unsupported MCP-Protocol-Version (supported: %s)", supported_list);
    respond_rpc_error(req, 400, NULL, LG_JSONRPC_SERVER_ERROR, msg);
    return -1;
}

static int content_type_json(h2o_req_t *req)
{
    size_t len;
    const char *ct = header(req, "content-type", &len);
    static const char want[] = "application/json";
    size_t wl = sizeof(want) - 1;
    if (ct == NULL || len < wl || strncasecmp(ct, want, wl) != 0)
        return 0;
    return len == wl || ct[wl] == ';' || ct[wl] == ' ' || ct[wl] == '\t';
}

static void handle_initialize(struct tworker *tw, lg_worker_t *w, h2o_req_t *req, const lg_mcp_conf_t *mc, lg_mcp_registry_t *reg,
                              const char *key_id, const lg_jsonrpc_msg_t *msg, int prefer_sse)
{
    lg_mcp_session_t *s = NULL;
    int status = 200;
    json_t *resp = lg_mcp_server_initialize(reg, msg, key_id, mc->session_ttl_s, &s, &status);
    if (s == NULL) {
        respond_json(req, status, resp);
        return;
    }
    add_header(req, "mcp-session-id", lg_mcp_session_id(s), LG_MCP_SESSION_ID_LEN);
    if (prefer_sse) {
        struct post_x *x = post_create(tw, w, req, s, reg, 1, 1);
        x->pending = 1;
        post_respond(&x->sink, resp);
    } else {
        respond_json(req, 200, resp);
    }
    lg_mcp_session_unref(s);
}

static void handle_modern(struct tworker *tw, lg_worker_t *w, h2o_req_t *req, const lg_mcp_conf_t *mc, lg_mcp_registry_t *reg,
                          const char *key_id, const lg_jsonrpc_msg_t *msg, int prefer_sse);

static void handle_post(struct tworker *tw, lg_worker_t *w, h2o_req_t *req, const lg_mcp_conf_t *mc, lg_mcp_registry_t *reg,
                        const char *key_id)
{
    /* (3) Content-Type */
    if (!content_type_json(req)) {
        respond_rpc_error(req, 415, NULL, LG_JSONRPC_SERVER_ERROR, "Unsupported Media Type: Content-Type must be application/json");
        return;
    }
    /* (4) Accept: both application/json and text/event-stream */
    size_t alen;
    const char *accept = header(req, "accept", &alen);
    double qj = accept != NULL ? accept_q(accept, alen, "application", "json") : -1;
    double qs = accept != NULL ? accept_q(accept, alen, "text", "event-stream") : -1;
    if (qj <= 0 || qs <= 0) {
        respond_rpc_error(req, 406, NULL, LG_JSONRPC_SERVER_ERROR,
                          "Not Acceptable: Client must accept both application/json and text/event-stream");
        return;
    }
    int prefer_sse = qs > qj;

    /* (5) size and parse, (6) one object */
    lg_jsonrpc_msg_t msg;
    lg_jsonrpc_err_t perr;
    json_t *batch = NULL;
    int kind = lg_jsonrpc_parse(req->entity.base, req->entity.len, mc->max_message_bytes, &msg, &batch, &perr);
    if (kind == LG_JSONRPC_PARSED_ERROR) {
        respond_rpc_error(req, perr.too_large ? 413 : 400, perr.id, perr.code,
                          perr.code == LG_JSONRPC_PARSE_ERROR ? "Parse error" : perr.message);
        lg_jsonrpc_err_dispose(&perr);
        return;
    }

    if (kind == LG_JSONRPC_PARSED_ONE) {
        /* 2026-07-28 requests carry no session: the era decides before the session checks below */
        size_t hvl = 0, sl = 0;
        const char *hv = header(req, "mcp-protocol-version", &hvl);
        const char *sid = header(req, "mcp-session-id", &sl);
        if (lg_mcp_era_of(sid != NULL && sl > 0, hv, hvl, msg.method, msg.params) == LG_MCP_ERA_MODERN) {
            handle_modern(tw, w, req, mc, reg, key_id, &msg, prefer_sse);
            lg_jsonrpc_msg_dispose(&msg);
            return;
        }
    }

    if (kind == LG_JSONRPC_PARSED_ONE && msg.kind == LG_JSONRPC_REQUEST && strcmp(msg.method, "initialize") == 0) {
        /* (7) initialize mints the session; never answer it with 400/404/405 (clients would fall back to old HTTP+SSE) */
        handle_initialize(tw, w, req, mc, reg, key_id, &msg, prefer_sse);
        lg_jsonrpc_msg_dispose(&msg);
        return;
    }

    /* (7) session, (8) protocol version */
    lg_mcp_session_t *s = need_session(req, key_id, lg_mcp_registry_name(reg));
    if (s == NULL || check_version(req) != 0) {
        lg_mcp_session_unref(s);
        if (kind == LG_JSONRPC_PARSED_ONE)
            lg_jsonrpc_msg_dispose(&msg);
        json_decref(batch);
        return;
    }

    if (kind == LG_JSONRPC_PARSED_BATCH) {
        if (strcmp(lg_mcp_session_version(s), "2025-03-26") != 0) {
            respond_rpc_error(req, 400, NULL, LG_JSONRPC_INVALID_REQUEST,
                              "Invalid Request: JSON-RPC batches are not supported in protocol 2025-06-18 and later");
            lg_mcp_session_unref(s);
            json_decref(batch);
            return;
        }
        /* 2025-03-26: classify every element, answer the requests together */
        size_t n = json_array_size(batch), nreq = 0;
        lg_jsonrpc_msg_t *msgs = calloc(n, sizeof(*msgs));
        json_t *errors = json_array();
        for (size_t i = 0; i < n; ++i) {
            lg_jsonrpc_err_t e;
            if (lg_jsonrpc_from_json(json_array_get(batch, i), &msgs[i], &e) != 0) {
                json_array_append_new(errors, lg_jsonrpc_make_error(e.id, e.code, e.message, NULL));
                lg_jsonrpc_err_dispose(&e);
                continue;
            }
            if (msgs[i].kind == LG_JSONRPC_REQUEST)
                ++nreq;
        }
        struct post_x *x = post_create(tw, w, req, s, reg, 1, prefer_sse);
        post_enter(x);
        x->batch = 1;
        if (x->mode == MODE_SSE) {
            size_t ei;
            json_t *ev;
            json_array_foreach(errors, ei, ev) sse_event(&x->out, json_incref(ev));
        } else {
            json_array_extend(x->collected, errors);
        }
        json_decref(errors);
        x->pending = (unsigned)nreq + 1; /* +1: held until every element was handed over */
        for (size_t i = 0; i < n; ++i) {
            lg_jsonrpc_msg_t *m = &msgs[i];
            if (m->root == NULL)
                continue;
            if (m->kind == LG_JSONRPC_REQUEST && strcmp(m->method, "initialize") == 0) {
                post_respond(&x->sink,
                             lg_jsonrpc_make_error(m->id, LG_JSONRPC_INVALID_REQUEST, "initialize cannot be batched", NULL));
            } else if (m->kind == LG_JSONRPC_REQUEST) {
                lg_mcp_server_dispatch(&tw->mw, s, reg, m, &x->sink);
            } else if (m->kind == LG_JSONRPC_NOTIFICATION) {
                lg_mcp_server_notification(&tw->mw, s, m);
            } else {
                lg_mcp_server_client_response(&tw->mw, s, m);
            }
            lg_jsonrpc_msg_dispose(m);
        }
        free(msgs);
        if (nreq == 0 && json_array_size(x->collected) == 0 && x->mode != MODE_SSE) {
            x->pending = 0;
            x->responded = 1;
            respond_empty(req, 202);
        } else {
            post_respond(&x->sink, NULL); /* drop the hold */
        }
        post_leave(x);
        lg_mcp_session_unref(s);
        json_decref(batch);
        return;
    }

    switch (msg.kind) {
    case LG_JSONRPC_REQUEST: {
        struct post_x *x = post_create(tw, w, req, s, reg, 1, prefer_sse);
        post_enter(x);
        x->pending = 1;
        lg_mcp_server_dispatch(&tw->mw, s, reg, &msg, &x->sink);
        post_leave(x);
        break;
    }
    case LG_JSONRPC_NOTIFICATION:
        lg_mcp_server_notification(&tw->mw, s, &msg);
        respond_empty(req, 202);
        break;
    default:
        lg_mcp_server_client_response(&tw->mw, s, &msg);
        respond_empty(req, 202);
        break;
    }
    lg_jsonrpc_msg_dispose(&msg);
    lg_mcp_session_unref(s);
}

/* The session's server->client SSE stream on this request (GET, or a 2026-07-28 subscriptions/listen POST). Takes
 * over the reference to s. Returns the stream, or NULL with 409 sent (the session has one already). */
static struct get_stream *open_stream(struct tworker *tw, h2o_req_t *req, lg_mcp_session_t *s)
{
    uint64_t serial = ++tw->mw.seq;
    if (lg_mcp_session_attach_stream(s, tw->mw.index, serial) != 0) {
        /* one GET stream per session (spec: "MUST NOT" send a message on more than one stream); the first one stays */
        respond_rpc_error(req, 409, NULL, LG_JSONRPC_SERVER_ERROR, "Conflict: only one SSE stream is allowed per session");
        lg_mcp_session_unref(s);
        return NULL;
    }
    struct get_stream *g = lg_malloc(sizeof(*g));
    memset(g, 0, sizeof(*g));
    g->tw = tw;
    g->session = s; /* takes the lookup reference */
    snprintf(g->session_id, sizeof(g->session_id), "%s", lg_mcp_session_id(s));
    g->serial = serial;
    sse_init(&g->out, req);
    uv_timer_init(tw->mw.loop, &g->ka);
    g->ka.data = g;
    g->next = tw->streams;
    if (g->next != NULL)
        g->next->prev = g;
    tw->streams = g;
    *(struct get_stream **)h2o_mem_alloc_shared(&req->pool, sizeof(struct get_stream *), get_on_dispose) = g;
    sse_start(&g->out, &tw->mw);
    uv_timer_start(&g->ka, on_get_keepalive, GET_KEEPALIVE_MS, GET_KEEPALIVE_MS);
    return g;
}

/* ---- 2026-07-28: stateless requests on the same endpoint ---- */

static void respond_modern_error(h2o_req_t *req, const json_t *id, json_t *error)
{
    json_t *msg = json_pack("{s:s,s:O?,s:o}", "jsonrpc", "2.0", "id", id, "error", error);
    if (json_object_get(msg, "id") == NULL)
        json_object_set_new(msg, "id", json_null());
    int status = lg_mcp_era_stamp(NULL, msg);
    respond_json(req, status == 200 ? 400 : status, msg);
}

/* subscriptions/listen: an SSE response that stays open; first the acknowledgement, then the opted-in notifications
 * (list changes, updates of the listed resources) tagged with the subscription id = the request's id. */
static void handle_listen(struct tworker *tw, h2o_req_t *req, const lg_mcp_conf_t *mc, lg_mcp_registry_t *reg, const char *key_id,
                          const lg_jsonrpc_msg_t *msg)
{
    const json_t *want = json_object_get(msg->params, "notifications");
    const json_t *meta = json_object_get(msg->params, "_meta");
    const json_t *caps = lg_mcp_registry_capabilities(reg);
    if (want != NULL && !json_is_object(want)) {
        respond_modern_error(req, msg->id,
                             json_pack("{s:i,s:s}", "code", LG_JSONRPC_INVALID_PARAMS, "message",
                                       "Invalid params: notifications must be an object"));
        return;
    }
    unsigned mask = 0;
    json_t *honored = json_object();
    if (json_is_true(json_object_get(want, "toolsListChanged"))) {
        mask |= LG_MCP_LISTEN_TOOLS;
        json_object_set_new(honored, "toolsListChanged", json_true());
    }
    if (json_is_true(json_object_get(want, "promptsListChanged")) && json_object_get(caps, "prompts") != NULL) {
        mask |= LG_MCP_LISTEN_PROMPTS;
        json_object_set_new(honored, "promptsListChanged", json_true());
    }
    if (json_is_true(json_object_get(want, "resourcesListChanged")) && json_object_get(caps, "resources") != NULL) {
        mask |= LG_MCP_LISTEN_RESOURCES;
        json_object_set_new(honored, "resourcesListChanged", json_true());
    }
    const json_t *uris = json_object_get(want, "resourceSubscriptions");
    lg_mcp_session_t *s =
        lg_mcp_session_create(key_id, lg_mcp_registry_name(reg), LG_MCP_MODERN_VERSION, json_object_get(meta, LG_MCP_META_CAPS),
                              json_object_get(meta, LG_MCP_META_INFO), mc->session_ttl_s);
    if (s == NULL) {
        json_decref(honored);
        respond_rpc_error(req, 503, msg->id, LG_JSONRPC_SERVER_ERROR, "too many MCP sessions; try again later");
        return;
    }
    if (json_is_array(uris) && json_array_size(uris) > 0 && json_object_get(caps, "resources") != NULL) {
        json_t *kept = json_array();
        size_t i;
        json_t *u;
        json_array_foreach(uris, i, u)
        {
            if (json_is_string(u) && lg_mcp_session_subscribe(s, json_string_value(u), 1) == 0)
                json_array_append(kept, u);
        }
        mask |= LG_MCP_LISTEN_UPDATES;
        json_object_set_new(honored, "resourceSubscriptions", kept);
    }
    char sub[64];
    if (json_is_string(msg->id))
        snprintf(sub, sizeof(sub), "%s", json_string_value(msg->id));
    else
        snprintf(sub, sizeof(sub), "%" JSON_INTEGER_FORMAT, json_integer_value(msg->id));
    /* nothing to listen for is still a valid (quiet) stream: the client closes it */
    lg_mcp_session_set_listen(s, mask != 0 ? mask : LG_MCP_LISTEN_UPDATES, sub);
    lg_mcp_session_set_initialized(s);
    struct get_stream *g = open_stream(tw, req, s);
    if (g == NULL) {
        json_decref(honored);
        return;
    }
    g->listen = 1;
    json_t *ack =
        lg_jsonrpc_make_notification("notifications/subscriptions/acknowledged",
                                     json_pack("{s:{s:s},s:o}", "_meta", LG_MCP_META_SUBSCRIPTION, sub, "notifications", honored));
    stream_send_json(g, ack);
}

static void handle_modern(struct tworker *tw, lg_worker_t *w, h2o_req_t *req, const lg_mcp_conf_t *mc, lg_mcp_registry_t *reg,
                          const char *key_id, const lg_jsonrpc_msg_t *msg, int prefer_sse)
{
    if (msg->kind != LG_JSONRPC_REQUEST) {
        /* notifications (and stray responses) of the stateless era need no state: accepted */
        respond_empty(req, 202);
        return;
    }
    lg_mcp_era_headers_t h;
    memset(&h, 0, sizeof(h));
    h.version = header(req, "mcp-protocol-version", &h.version_len);
    h.method = header(req, "mcp-method", &h.method_len);
    h.name = header(req, "mcp-name", &h.name_len);
    json_t *err = lg_mcp_era_check(&h, msg->method, msg->params);
    if (err != NULL) {
        respond_modern_error(req, msg->id, err);
        return;
    }
    if (lg_mcp_era_removed(msg->method)) {
        char m[160];
        snprintf(m, sizeof(m), "Method not found: %.60s is not part of the stateless (2026-07-28) protocol", msg->method);
        respond_modern_error(req, msg->id, json_pack("{s:i,s:s}", "code", LG_JSONRPC_METHOD_NOT_FOUND, "message", m));
        return;
    }
    if (strcmp(msg->method, "server/discover") == 0) {
        json_t *body = lg_mcp_server_discover(reg, msg->id);
        respond_json(req, lg_mcp_era_stamp(msg->method, body), body);
        return;
    }
    if (strcmp(msg->method, "subscriptions/listen") == 0) {
        handle_listen(tw, req, mc, reg, key_id, msg);
        return;
    }
    struct post_x *x = post_create(tw, w, req, NULL, reg, 1, prefer_sse);
    post_enter(x);
    x->modern = 1;
    snprintf(x->method, sizeof(x->method), "%s", msg->method);
    x->pending = 1;
    if (lg_mcp_server_dispatch_modern(&tw->mw, reg, key_id, msg, &x->sink) != 0) {
        x->pending = 0;
        x->responded = 1;
        respond_rpc_error(req, 503, msg->id, LG_JSONRPC_SERVER_ERROR, "too many MCP sessions; try again later");
    }
    post_leave(x);
}

static void handle_get(struct tworker *tw, h2o_req_t *req, lg_mcp_registry_t *reg, const char *key_id)
{
    size_t alen;
    const char *accept = header(req, "accept", &alen);
    if (accept == NULL || accept_q(accept, alen, "text", "event-stream") <= 0) {
        respond_rpc_error(req, 406, NULL, LG_JSONRPC_SERVER_ERROR, "Not Acceptable: Client must accept text/event-stream");
        return;
    }
    lg_mcp_session_t *s = need_session(req, key_id, lg_mcp_registry_name(reg));
    if (s == NULL)
        return;
    if (check_version(req) != 0) {
        lg_mcp_session_unref(s);
        return;
    }
    open_stream(tw, req, s);
}

static void handle_delete(h2o_req_t *req, lg_mcp_registry_t *reg, const char *key_id)
{
    lg_mcp_session_t *s = need_session(req, key_id, lg_mcp_registry_name(reg));
    if (s == NULL)
        return;
    char sid[LG_MCP_SESSION_ID_LEN + 1];
    snprintf(sid, sizeof(sid), "%s", lg_mcp_session_id(s));
    lg_mcp_session_close(s);
    lg_mcp_session_unref(s);
    /* every worker cancels the session's calls and closes its GET stream */
    lg__mcp_post_all(LG_MCP_POST_SESSION_GONE, sid, NULL, NULL);
    respond_empty(req, 200);
}

int lg_mcp_is_discovery_path(const char *p, size_t n)
{
    static const char *const paths[] = {
        "/.well-known/oauth-protected-resource",       "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",     "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration",           "/.well-known/openid-configuration/mcp",
        "/mcp/.well-known/openid-configuration",       "/mcp/.well-known/oauth-protected-resource",
        "/mcp/.well-known/oauth-authorization-server", NULL};
    for (const char *const *q = paths; *q != NULL; ++q)
        if (strlen(*q) == n && memcmp(*q, p, n) == 0)
            return 1;
    /* any other OAuth discovery variant (e.g. a virtual server's /.well-known/oauth-protected-resource/mcp/x) */
    return (n > 25 && memcmp(p, "/.well-known/oauth-", 19) == 0) ||
           (n >= 33 && memcmp(p, "/.well-known/openid-configuration", 33) == 0);
}

static int valid_server_name(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return 0;
    return 1;
}

/* Step (2), the API-key path: Authorization: Bearer <llmgate key> checked by the auth hook (mcp/auth.c). Returns 0
 * with *key_id set (NULL when auth is off or the hook names no key), or -1 with the 401 already sent. Kept in one place
 * so another authentication scheme (OAuth) can sit beside it. */
static int authenticate(h2o_req_t *req, const char *name, size_t len, char *key_buf, size_t key_len, const char **key_id)
{
    *key_id = NULL;
    if (auth_hook == NULL)
        return 0;
    size_t alen;
    const char *authz = header(req, "authorization", &alen);
    /* OAuth access tokens (listeners with mcp.auth.mode "oauth", mcp/oauth_server.h) first, then API keys */
    int orc = lg__mcp_oauth_authenticate(req, name, len, key_buf, key_len);
    if (orc < 0 || (orc == 0 && auth_hook(req, authz, alen, key_buf, key_len) != 0)) {
        lg__mcp_oauth_challenge(req, name, len); /* WWW-Authenticate: resource_metadata with OAuth, else realm */
        respond_rpc_error(req, 401, NULL, LG_JSONRPC_UNAUTHORIZED, "Unauthorized: invalid or missing API key");
        return -1;
    }
    key_buf[key_len - 1] = '\0';
    if (key_buf[0] != '\0')
        *key_id = key_buf;
    return 0;
}

void lg_mcp_handle(lg_worker_t *w, h2o_req_t *req, const char *name, size_t len)
{
    const lg_config_t *conf = w->rt->snap->conf;
    const lg_mcp_conf_t *mc = &conf->mcp;
    if (!mc->enabled || (len != 0 && !valid_server_name(name, len))) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "no such route", NULL);
        return;
    }
    struct tworker *tw = tworker_get(w);
    if (tw == NULL) {
        lg_respond_error(req, LG_EINTERNAL, 500, "MCP is not available on this worker", NULL);
        return;
    }

    /* (1) Host / Origin */
    const char *why = check_host_origin(req, mc, listener_is_loopback(req));
    if (why != NULL) {
        respond_rpc_error(req, 403, NULL, LG_JSONRPC_SERVER_ERROR, why);
        return;
    }
    add_cors(req);
    int is_options = req->method.len == 7 && memcmp(req->method.base, "OPTIONS", 7) == 0;
    if (is_options) {
        static const char methods[] = "GET, POST, DELETE, OPTIONS";
        static const char headers[] = "mcp-protocol-version, mcp-session-id, last-event-id, authorization, content-type";
        add_header(req, "access-control-allow-methods", methods, sizeof(methods) - 1);
        add_header(req, "access-control-allow-headers", headers, sizeof(headers) - 1);
        add_header(req, "access-control-max-age", "600", 3);
        respond_empty(req, 204);
        return;
    }

    /* (2) auth */
    char key_buf[128] = "";
    const char *key_id = NULL;
    if (authenticate(req, name, len, key_buf, sizeof(key_buf), &key_id) != 0)
        return;

    lg_mcp_registry_t *reg = lg_mcp_registry_for(conf, w->rt->snap->generation, name, len);
    if (reg == NULL) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "no such MCP server", NULL);
        return;
    }
    if (req->method.len == 4 && memcmp(req->method.base, "POST", 4) == 0) {
        handle_post(tw, w, req, mc, reg, key_id);
    } else if (req->method.len == 3 && memcmp(req->method.base, "GET", 3) == 0) {
        handle_get(tw, req, reg, key_id);
    } else if (req->method.len == 6 && memcmp(req->method.base, "DELETE", 6) == 0) {
        handle_delete(req, reg, key_id);
    } else {
        add_header(req, "allow", "GET, POST, DELETE, OPTIONS", 26);
        respond_rpc_error(req, 405, NULL, LG_JSONRPC_SERVER_ERROR, "Method Not Allowed");
    }
    lg_mcp_registry_unref(reg);
}
