// SPDX-License-Identifier: MIT
/*
 * mock_upstream: a fake upstream for llmgate integration tests and benchmarks: OpenAI-compatible endpoints here, the
 * Anthropic Messages API in mock_anthropic.c and the Gemini API in mock_gemini.c (shared machinery in mock.h).
 * The request's "model" string is a '+'-joined list of directives (echo, fail-500, slow-20, reset-mid, ...) that selects
 * the behaviour; GET /_mock/last and /_mock/stats let tests inspect what the gateway sent. Directives and endpoints are
 * documented in tests/mock/README.md. h2o 2.2.5 (libuv flavour), one loop per thread, SO_REUSEPORT when --threads > 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <h2o.h>
#include <jansson.h>
#include <uv.h>

#include "mock.h"

#define MAX_BODY_SIZE (32 * 1024 * 1024)
#define MAX_WORDS 100000     /* cap for words-N */
#define SPLIT_PIECE 7        /* bytes per h2o_send in "split" mode */
#define HANG_LIMIT_MS 120000 /* "hang" gives up after this long */
#define HANG_POLL_MS 100     /* HTTP/1: how often "hang" checks whether the client left */

const char LOREM[] = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
                     "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip "
                     "ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
                     "fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident.";

const struct mock_tool_call TOOL_CALLS[2] = {
    {"call_1", "get_weather", "{\"location\":\"Paris\",\"unit\":\"celsius\"}"},
    {"call_2", "get_time", "{\"timezone\":\"Europe/Paris\"}"},
};

/* "bash-tool": one call of a coding agent's shell tool, answered with text once its result comes back */
static const struct mock_tool_call BASH_CALL = {"call_bash_1", "Bash",
                                                "{\"command\":\"echo llmgate-tool-ok\",\"description\":\"Print a marker\"}"};

static const char INBAND_ERROR[] =
    "{\"error\":{\"message\":\"mock in-band error\",\"type\":\"server_error\",\"code\":\"overloaded\"}}";

const char HTML_502[] = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
                        "Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
const size_t HTML_502_LEN = sizeof(HTML_502) - 1;

/* ---------------------------------------------------------------------------------------------------------------------------
 * global state: counters are atomics (hit on every request, any thread); the per-model map is behind one mutex
 */

int quiet;
atomic_ulong id_seq;
static atomic_ulong stat_total, stat_in_flight, stat_max_in_flight, stat_connections, stat_open_connections;

struct model_entry {
    struct model_entry *next;
    char *model;
    unsigned long count;
    char *body; /* raw request body of the last request with this model (malloc) */
    size_t body_len;
    char *hdrs; /* "name\0value\0" pairs of that request (malloc) */
    size_t hdrs_len;
};
static pthread_mutex_t models_mu = PTHREAD_MUTEX_INITIALIZER;
static struct model_entry *models;

static h2o_globalconf_t config;

struct worker {
    pthread_t tid;
    int fd;
    uv_loop_t loop;
    uv_tcp_t listener;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
};

/* ---------------------------------------------------------------------------------------------------------------------------
 * string builder in req->pool
 */

void sb_init(struct sb *b, h2o_mem_pool_t *pool, size_t cap)
{
    b->pool = pool;
    b->len = 0;
    b->cap = cap;
    b->p = h2o_mem_alloc_pool(pool, cap);
}

void sb_reserve(struct sb *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    size_t ncap = b->cap * 2;
    while (ncap < b->len + extra)
        ncap *= 2;
    char *np = h2o_mem_alloc_pool(b->pool, ncap); /* the old block stays in the pool until the request ends */
    memcpy(np, b->p, b->len);
    b->p = np;
    b->cap = ncap;
}

void sb_add(struct sb *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void sb_fmt(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        sb_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* appends s as the inside of a JSON string literal */
void sb_json_str(struct sb *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sb_reserve(b, n * 6);
    char *d = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            *d++ = '\\', *d++ = '"';
            break;
        case '\\':
            *d++ = '\\', *d++ = '\\';
            break;
        case '\n':
            *d++ = '\\', *d++ = 'n';
            break;
        case '\r':
            *d++ = '\\', *d++ = 'r';
            break;
        case '\t':
            *d++ = '\\', *d++ = 't';
            break;
        default:
            if (c < 0x20) {
                *d++ = '\\', *d++ = 'u', *d++ = '0', *d++ = '0', *d++ = hex[c >> 4], *d++ = hex[c & 15];
            } else {
                *d++ = (char)c;
            }
        }
    }
    b->len = (size_t)(d - b->p);
}

/* ---------------------------------------------------------------------------------------------------------------------------
 * directives
 */

/* struct plan is in mock.h */

static int tok_is(const char *t, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(t, lit, n) == 0;
}

/* "prefix<digits>" -> 1 and *out; digits only, no sign, bounded */
static int tok_num(const char *t, size_t n, const char *prefix, unsigned long max, unsigned long *out)
{
    size_t pl = strlen(prefix);
    if (n <= pl || memcmp(t, prefix, pl) != 0)
        return 0;
    unsigned long v = 0;
    for (size_t i = pl; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
        v = v * 10 + (unsigned long)(t[i] - '0');
        if (v > max)
            return 0;
    }
    *out = v;
    return 1;
}

/* unknown tokens are ignored, so any model name (e.g. "gpt-4o") behaves like "echo" */
void parse_plan(const char *model, size_t len, struct plan *p)
{
    memset(p, 0, sizeof(*p));
    p->content = CONTENT_ECHO;
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && model[j] != '+')
            j++;
        const char *t = model + i;
        size_t n = j - i;
        unsigned long v;
        if (tok_is(t, n, "echo"))
            p->content = CONTENT_ECHO;
        else if (tok_is(t, n, "lorem"))
            p->content = CONTENT_LOREM;
        else if (tok_is(t, n, "tools"))
            p->content = CONTENT_TOOLS;
        else if (tok_is(t, n, "bash-tool"))
            p->content = CONTENT_BASH_TOOL;
        else if (tok_is(t, n, "prefill-echo"))
            p->content = CONTENT_PREFILL;
        else if (tok_num(t, n, "words-", MAX_WORDS, &v))
            p->content = CONTENT_WORDS, p->nwords = v;
        else if (tok_num(t, n, "fail-", 599, &v) && v >= 100) {
            if (p->fail_status == 0)
                p->fail_status = (int)v;
        } else if (tok_is(t, n, "html-502"))
            p->html502 = 1;
        else if (tok_is(t, n, "garbage"))
            p->garbage = 1;
        else if (tok_is(t, n, "garbage-sse"))
            p->garbage_sse = 1;
        else if (tok_is(t, n, "hang"))
            p->hang = 1;
        else if (tok_num(t, n, "delay-", 3600000, &v))
            p->delay_ms = v;
        else if (tok_num(t, n, "slow-", 3600000, &v))
            p->slow_ms = v;
        else if (tok_is(t, n, "reset"))
            p->reset = 1;
        else if (tok_is(t, n, "reset-mid"))
            p->reset_mid = 1;
        else if (tok_is(t, n, "inband-error"))
            p->inband_error = 1;
        else if (tok_is(t, n, "inband-error-first"))
            p->inband_error_first = 1;
        else if (tok_is(t, n, "no-done"))
            p->no_done = 1;
        else if (tok_is(t, n, "comments"))
            p->comments = 1;
        else if (tok_is(t, n, "crlf"))
            p->crlf = 1;
        else if (tok_is(t, n, "split"))
            p->split = 1;
        else if (tok_is(t, n, "require-mct"))
            p->require_mct = 1;
        else if (tok_is(t, n, "usage"))
            p->usage = 1;
        else if (tok_is(t, n, "cache"))
            p->cache = 1;
        else if (tok_is(t, n, "require-sig"))
            p->require_sig = 1;
        else if (tok_num(t, n, "cf-error-", 599, &v) && v >= 400) {
            if (p->cf_error_status == 0)
                p->cf_error_status = (int)v;
        } else if (tok_is(t, n, "cf-numeric"))
            p->cf_numeric = 1;
        else if (tok_is(t, n, "only-done"))
            p->only_done = 1;
        else if (n > 8 && memcmp(t, "corrupt-", 8) == 0) {
            static const char *const kinds[] = {NULL, "json", "utf8", "content", "finish", "nullchoice"};
            const char *k = t + 8;
            size_t kn = n - 8;
            int mid = kn > 4 && memcmp(k, "mid-", 4) == 0;
            if (mid)
                k += 4, kn -= 4;
            for (size_t c = 1; c < sizeof(kinds) / sizeof(kinds[0]); c++)
                if (tok_is(k, kn, kinds[c]))
                    p->corrupt = (enum corrupt_kind)c, p->corrupt_mid = mid;
        }
        i = j + 1;
    }
}

/* ---------------------------------------------------------------------------------------------------------------------------
 * response description: one buffer + a list of events (SSE events, or the body) sent one h2o_send at a time
 */

/* struct ev and struct resp are in mock.h */

void ev_begin(struct resp *r)
{
    r->ev_off = r->buf.len;
}

void ev_end(struct resp *r, int wait)
{
    h2o_vector_reserve(r->buf.pool, &r->evs, r->evs.size + 1);
    struct ev *e = r->evs.entries + r->evs.size++;
    e->off = r->ev_off;
    e->len = r->buf.len - r->ev_off;
    e->wait = (unsigned char)wait;
}

void sse_data_begin(struct resp *r)
{
    ev_begin(r);
    sb_lit(&r->buf, "data: ");
}

void sse_end(struct resp *r, int wait)
{
    if (r->crlf)
        sb_lit(&r->buf, "\r\n\r\n");
    else
        sb_lit(&r->buf, "\n\n");
    ev_end(r, wait);
}

void sse_comment(struct resp *r)
{
    ev_begin(r);
    sb_lit(&r->buf, ": keep-alive");
    sse_end(r, 0);
}

void resp_init(struct resp *r, h2o_mem_pool_t *pool, int status, const char *ctype, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->ctype = ctype;
    sb_init(&r->buf, pool, cap);
}

/* a whole-body response */
void resp_body(struct resp *r, h2o_mem_pool_t *pool, int status, const char *ctype, const char *body, size_t len)
{
    resp_init(r, pool, status, ctype, len + 1);
    ev_begin(r);
    sb_add(&r->buf, body, len);
    ev_end(r, 0);
    r->content_length = len;
}

static void resp_error(struct resp *r, h2o_mem_pool_t *pool, int status, const char *message, const char *type, const char *code,
                       const char *param)
{
    resp_init(r, pool, status, "application/json", 256);
    ev_begin(r);
    sb_lit(&r->buf, "{\"error\":{\"message\":\"");
    sb_json_str(&r->buf, message, strlen(message));
    sb_fmt(&r->buf, "\",\"type\":\"%s\",", type);
    if (param != NULL)
        sb_fmt(&r->buf, "\"param\":\"%s\",", param);
    sb_fmt(&r->buf, "\"code\":\"%s\"}}", code);
    ev_end(r, 0);
    r->content_length = r->buf.len;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

/* ---------------------------------------------------------------------------------------------------------------------------
 * request tracking (in_flight) and the asynchronous response state
 */

struct mreq;

/* lives in req->pool as a shared chunk: its dispose callback is the one notification we get in every case */
struct reqtrack {
    struct mreq *m;
    int counted; /* still counted in in_flight */
};

enum phase { PHASE_NONE, PHASE_DELAY, PHASE_SLOW, PHASE_HANG };

/* heap object for responses that outlive on_req (timers, streaming); freed after the request is disposed */
struct mreq {
    h2o_generator_t gen; /* first: h2o hands &gen back to proceed/stop */
    h2o_req_t *req;      /* NULL once the request is gone */
    struct reqtrack *track;
    uv_timer_t timer;
    int timer_inited;
    enum phase phase;
    uint64_t hang_deadline;
    struct resp r; /* lives in req->pool: only touched while req != NULL */
    size_t iev, off;
    int split;
    uint64_t slow_ms;
};

static void track_done(struct reqtrack *t)
{
    if (t->counted) {
        t->counted = 0;
        atomic_fetch_sub(&stat_in_flight, 1);
    }
}

static void on_mreq_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_track_dispose(void *p)
{
    struct reqtrack *t = p;
    track_done(t);
    struct mreq *m = t->m;
    if (m == NULL)
        return;
    m->req = NULL;
    if (m->timer_inited) {
        uv_timer_stop(&m->timer);
        uv_close((uv_handle_t *)&m->timer, on_mreq_timer_closed);
    } else {
        free(m);
    }
}

static void start_response(h2o_req_t *req, struct resp *r, h2o_generator_t *gen)
{
    req->res.status = r->status;
    req->res.reason = reason_of(r->status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, r->ctype, strlen(r->ctype));
    if (r->retry_after > 0) {
        h2o_iovec_t v = h2o_iovec_init(h2o_mem_alloc_pool(&req->pool, 16), 0); /* h2o_add_header does not copy */
        v.len = (size_t)snprintf(v.base, 16, "%d", r->retry_after);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v.base, v.len);
    }
    if (r->stream) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    } else {
        /* an explicit length keeps HTTP/1.1 non-200 responses keep-alive (h2o closes them otherwise) */
        req->res.content_length = r->content_length;
    }
    h2o_start_response(req, gen);
}

/*
 * Drops the TCP connection under h2o: shutdown(2) the fd (h2o keeps owning and later closes it), optionally with
 * SO_LINGER 0 so the close sends RST. Anything h2o writes afterwards fails with EPIPE, after which h2o closes the
 * connection itself, so the caller must still finish the request (a response or H2O_SEND_STATE_ERROR). For h2c this
 * takes down every stream on the connection.
 */
static void shutdown_conn(h2o_req_t *req, int rst)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    req->http1_is_persistent = 0;
    if (sock == NULL)
        return;
    int fd = h2o_socket_get_fd(sock);
    if (fd < 0)
        return;
    if (rst) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    shutdown(fd, SHUT_RDWR);
}

/* finishes a request whose connection was shut down: nothing reaches the client, h2o tears the connection down */
void drop_request(h2o_req_t *req, struct reqtrack *t)
{
    static h2o_generator_t generator = {NULL, NULL};
    shutdown_conn(req, 1);
    track_done(t);
    req->res.status = 502;
    req->res.reason = "Bad Gateway";
    req->res.content_length = 0;
    h2o_start_response(req, &generator);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static void abort_response(struct mreq *m)
{
    h2o_req_t *req = m->req;
    /* HTTP/1: shut the socket first so the client sees the connection end mid-body (curl: "transfer closed with
     * outstanding read data remaining") instead of h2o's deliberately broken chunk. h2: ERROR becomes RST_STREAM. */
    if (req->version < 0x200)
        shutdown_conn(req, 0);
    track_done(m->track);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
}

static void send_next(struct mreq *m)
{
    h2o_req_t *req = m->req;
    struct resp *r = &m->r;

    if (m->iev == r->evs.size) {
        if (r->abort) {
            abort_response(m);
        } else {
            track_done(m->track);
            h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        }
        return;
    }
    struct ev *e = r->evs.entries + m->iev;
    size_t n = e->len - m->off;
    if (m->split && n > SPLIT_PIECE)
        n = SPLIT_PIECE;
    h2o_iovec_t buf = h2o_iovec_init(r->buf.p + e->off + m->off, n);
    m->off += n;
    if (m->off == e->len) {
        m->iev++;
        m->off = 0;
    }
    int final = m->iev == r->evs.size && !r->abort;
    if (final)
        track_done(m->track);
    /* m may be freed once h2o is done with the request: do not touch it after h2o_send */
    h2o_send(req, &buf, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_timer(uv_timer_t *timer);

/*
 * Headers always go out together with the first event. (In h2o 2.2.5 a zero-length IN_PROGRESS h2o_send does NOT flush
 * the headers of an HTTP/1.1 chunked response: h2o_ostream_send_next() turns it into a deferred proceed. So "slow" cannot
 * pause between the headers and the first event; the first event never waits.)
 */
static void begin_response(struct mreq *m)
{
    start_response(m->req, &m->r, &m->gen);
    send_next(m);
}

static void arm_timer(struct mreq *m, enum phase phase, uint64_t ms, uint64_t repeat)
{
    if (!m->timer_inited) {
        uv_timer_init(m->req->conn->ctx->loop, &m->timer);
        m->timer.data = m;
        m->timer_inited = 1;
    }
    m->phase = phase;
    uv_timer_start(&m->timer, on_timer, ms, repeat);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct mreq *m = (struct mreq *)gen;
    (void)req;
    if (m->slow_ms != 0 && m->off == 0 && m->iev < m->r.evs.size && m->r.evs.entries[m->iev].wait) {
        arm_timer(m, PHASE_SLOW, m->slow_ms, 0);
        return;
    }
    send_next(m);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct mreq *m = (struct mreq *)gen;
    (void)req;
    if (m->timer_inited)
        uv_timer_stop(&m->timer);
}

static void on_timer(uv_timer_t *timer)
{
    struct mreq *m = timer->data;
    h2o_req_t *req = m->req;
    if (req == NULL)
        return;
    switch (m->phase) {
    case PHASE_DELAY:
        m->phase = PHASE_NONE;
        begin_response(m);
        break;
    case PHASE_SLOW:
        m->phase = PHASE_NONE;
        send_next(m);
        break;
    case PHASE_HANG: {
        int gone = 0;
        if (req->version < 0x200) {
            /* h2o does not read an HTTP/1 connection while a request is being handled: peek for EOF ourselves */
            h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
            int fd = sock != NULL ? h2o_socket_get_fd(sock) : -1;
            char c;
            ssize_t rv = fd >= 0 ? recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) : 0;
            gone = rv == 0 || (rv < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        }
        if (gone || uv_now(timer->loop) >= m->hang_deadline) {
            uv_timer_stop(&m->timer);
            m->phase = PHASE_NONE;
            drop_request(req, m->track);
        }
        break;
    }
    case PHASE_NONE:
        break;
    }
}

static struct mreq *mreq_create(h2o_req_t *req, struct reqtrack *t)
{
    struct mreq *m = h2o_mem_alloc(sizeof(*m));
    memset(m, 0, sizeof(*m));
    m->gen.proceed = on_proceed;
    m->gen.stop = on_stop;
    m->req = req;
    m->track = t;
    t->m = m;
    return m;
}

void start_hang(h2o_req_t *req, struct reqtrack *t)
{
    struct mreq *m = mreq_create(req, t);
    m->hang_deadline = uv_now(req->conn->ctx->loop) + HANG_LIMIT_MS;
    if (req->version < 0x200)
        arm_timer(m, PHASE_HANG, HANG_POLL_MS, HANG_POLL_MS);
    else
        arm_timer(m, PHASE_HANG, HANG_LIMIT_MS, 0);
}

/* sends r now or after plan->delay_ms; r must live in req->pool */
void respond(h2o_req_t *req, struct reqtrack *t, struct resp *r, const struct plan *plan)
{
    int split = plan != NULL && plan->split;
    uint64_t delay = plan != NULL ? plan->delay_ms : 0;

    if (delay == 0 && !split && !r->abort && !r->stream && r->evs.size == 1) {
        /* fast path: one synchronous send, no heap state */
        static h2o_generator_t generator = {NULL, NULL};
        h2o_iovec_t buf = h2o_iovec_init(r->buf.p + r->evs.entries[0].off, r->evs.entries[0].len);
        start_response(req, r, &generator);
        track_done(t);
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
        return;
    }
    struct mreq *m = mreq_create(req, t);
    m->r = *r;
    m->split = split;
    m->slow_ms = plan != NULL && r->stream ? plan->slow_ms : 0;
    if (delay != 0) {
        arm_timer(m, PHASE_DELAY, delay, 0);
        return;
    }
    begin_response(m);
}

/* ---------------------------------------------------------------------------------------------------------------------------
 * request inspection
 */

size_t count_words(const char *s, size_t n)
{
    size_t words = 0;
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        int sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v';
        if (!sp && !in)
            words++;
        in = !sp;
    }
    return words;
}

int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* text of a message "content": a string, or the "text" parts of an array joined with a single space */
h2o_iovec_t content_text(h2o_mem_pool_t *pool, json_t *content)
{
    if (json_is_string(content))
        return h2o_iovec_init(json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return h2o_iovec_init("", 0);
    struct sb b;
    sb_init(&b, pool, 256);
    size_t i;
    json_t *part;
    int first = 1;
    json_array_foreach(content, i, part)
    {
        json_t *text = json_object_get(part, "text");
        if (!json_is_string(text))
            continue;
        if (!first)
            sb_lit(&b, " ");
        sb_add(&b, json_string_value(text), json_string_length(text));
        first = 0;
    }
    return h2o_iovec_init(b.p, b.len);
}

/* ---------------------------------------------------------------------------------------------------------------------------
 * stats / last-request store
 */

void record_request(h2o_req_t *req, const char *model, size_t model_len)
{
    size_t hlen = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        hlen += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 2;
    char *body = NULL, *hdrs = h2o_mem_alloc(hlen + 1), *d = hdrs;
    for (size_t i = 0; i < req->headers.size; i++) {
        h2o_header_t *h = req->headers.entries + i;
        memcpy(d, h->name->base, h->name->len);
        d += h->name->len;
        *d++ = '\0';
        memcpy(d, h->value.base, h->value.len);
        d += h->value.len;
        *d++ = '\0';
    }
    if (req->entity.base != NULL) {
        body = h2o_mem_alloc(req->entity.len + 1);
        memcpy(body, req->entity.base, req->entity.len);
    }

    pthread_mutex_lock(&models_mu);
    struct model_entry *e;
    for (e = models; e != NULL; e = e->next)
        if (strlen(e->model) == model_len && memcmp(e->model, model, model_len) == 0)
            break;
    if (e == NULL) {
        e = h2o_mem_alloc(sizeof(*e));
        memset(e, 0, sizeof(*e));
        e->model = h2o_mem_alloc(model_len + 1);
        memcpy(e->model, model, model_len);
        e->model[model_len] = '\0';
        e->next = models;
        models = e;
    }
    e->count++;
    char *old_body = e->body, *old_hdrs = e->hdrs;
    e->body = body;
    e->body_len = req->entity.base != NULL ? req->entity.len : 0;
    e->hdrs = hdrs;
    e->hdrs_len = hlen;
    pthread_mutex_unlock(&models_mu);
    free(old_body);
    free(old_hdrs);
}

static void models_clear(void)
{
    pthread_mutex_lock(&models_mu);
    struct model_entry *e = models;
    models = NULL;
    pthread_mutex_unlock(&models_mu);
    while (e != NULL) {
        struct model_entry *next = e->next;
        free(e->model);
        free(e->body);
        free(e->hdrs);
        free(e);
        e = next;
    }
}

static void resp_json(struct resp *r, h2o_mem_pool_t *pool, int status, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    resp_body(r, pool, status, "application/json", s, strlen(s));
    free(s);
    json_decref(obj);
}

static void build_stats(struct resp *r, h2o_mem_pool_t *pool)
{
    json_t *o = json_object(), *per = json_object();
    pthread_mutex_lock(&models_mu);
    for (struct model_entry *e = models; e != NULL; e = e->next)
        json_object_set_new(per, e->model, json_integer((json_int_t)e->count));
    pthread_mutex_unlock(&models_mu);
    json_object_set_new(o, "requests", per);
    json_object_set_new(o, "total", json_integer((json_int_t)atomic_load(&stat_total)));
    json_object_set_new(o, "in_flight", json_integer((json_int_t)atomic_load(&stat_in_flight)));
    json_object_set_new(o, "max_in_flight", json_integer((json_int_t)atomic_load(&stat_max_in_flight)));
    json_object_set_new(o, "connections", json_integer((json_int_t)atomic_load(&stat_connections)));
    json_object_set_new(o, "open_connections", json_integer((json_int_t)atomic_load(&stat_open_connections)));
    resp_json(r, pool, 200, o);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* value of query parameter `name`, percent-decoded ('+' is kept literally: model strings use it) */
h2o_iovec_t query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init(NULL, 0);
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (amp == NULL)
            amp = end;
        if ((size_t)(amp - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            const char *v = q + nl + 1;
            char *out = h2o_mem_alloc_pool(&req->pool, (size_t)(amp - v) + 1);
            size_t n = 0;
            for (const char *s = v; s < amp; s++) {
                int hi, lo;
                if (*s == '%' && amp - s >= 3 && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
                    out[n++] = (char)(hi * 16 + lo);
                    s += 2;
                } else {
                    out[n++] = *s;
                }
            }
            out[n] = '\0';
            return h2o_iovec_init(out, n);
        }
        q = amp + 1;
    }
    return h2o_iovec_init(NULL, 0);
}

static void build_last(struct resp *r, h2o_req_t *req)
{
    h2o_iovec_t model = query_param(req, "model");
    if (model.base == NULL) {
        resp_error(r, &req->pool, 400, "mock: missing ?model=", "invalid_request_error", "missing_model", NULL);
        return;
    }
    json_t *o = NULL;
    pthread_mutex_lock(&models_mu);
    struct model_entry *e;
    for (e = models; e != NULL; e = e->next)
        if (strlen(e->model) == model.len && memcmp(e->model, model.base, model.len) == 0)
            break;
    if (e != NULL) {
        o = json_object();
        json_t *body = e->body != NULL ? json_loadb(e->body, e->body_len, 0, NULL) : NULL;
        if (body == NULL)
            body = e->body != NULL ? json_stringn(e->body, e->body_len) : json_null();
        json_object_set_new(o, "body", body != NULL ? body : json_null());
        json_t *hdrs = json_object();
        for (const char *p = e->hdrs, *end = e->hdrs + e->hdrs_len; p < end;) {
            const char *name = p, *value = p + strlen(p) + 1;
            p = value + strlen(value) + 1;
            json_t *prev = json_object_get(hdrs, name);
            if (prev != NULL) { /* repeated header: join like a proxy would */
                size_t n = json_string_length(prev) + 2 + strlen(value);
                char *joined = malloc(n + 1);
                snprintf(joined, n + 1, "%s, %s", json_string_value(prev), value);
                json_object_set_new(hdrs, name, json_string(joined));
                free(joined);
            } else {
                json_object_set_new(hdrs, name, json_string(value));
            }
        }
        json_object_set_new(o, "headers", hdrs);
        json_object_set_new(o, "count", json_integer((json_int_t)e->count));
    }
    pthread_mutex_unlock(&models_mu);
    if (o == NULL) {
        resp_error(r, &req->pool, 404, "mock: no request recorded for this model", "not_found_error", "404", NULL);
        return;
    }
    resp_json(r, &req->pool, 200, o);
}

/* ---------------------------------------------------------------------------------------------------------------------------
 * API responses
 */

struct gen_ctx {
    enum api api;
    const struct plan *plan;
    h2o_iovec_t prefix; /* '{"id":"...","object":"...","created":N,"model":"...",' shared by every chunk */
    size_t prompt_tokens;
    int include_usage;
    const struct mock_tool_call *calls; /* tool calls to answer with (chat only), NULL = a text reply */
    size_t ncalls;
};

static void build_prefix(struct gen_ctx *g, h2o_mem_pool_t *pool, const char *object, const char *model, size_t model_len)
{
    struct sb b;
    sb_init(&b, pool, 128 + model_len * 2);
    unsigned long n = atomic_fetch_add(&id_seq, 1) + 1;
    sb_fmt(&b, "{\"id\":\"%s-mock-%lu\",\"object\":\"%s\",\"created\":%ld,\"model\":\"", g->api == API_CHAT ? "chatcmpl" : "cmpl",
           n, object, (long)time(NULL));
    sb_json_str(&b, model, model_len);
    sb_lit(&b, "\",");
    g->prefix = h2o_iovec_init(b.p, b.len);
}

static void add_usage(struct sb *b, size_t prompt, size_t completion)
{
    sb_fmt(b, "\"usage\":{\"prompt_tokens\":%zu,\"completion_tokens\":%zu,\"total_tokens\":%zu}", prompt, completion,
           prompt + completion);
}

/* the reply text for echo/lorem/words-N */
h2o_iovec_t reply_text(h2o_mem_pool_t *pool, const struct plan *plan, h2o_iovec_t echo)
{
    switch (plan->content) {
    case CONTENT_LOREM:
        return h2o_iovec_init(LOREM, sizeof(LOREM) - 1);
    case CONTENT_WORDS: {
        struct sb b;
        sb_init(&b, pool, 16 + plan->nwords * 8);
        for (unsigned long i = 1; i <= plan->nwords; i++)
            sb_fmt(&b, i == 1 ? "w%lu" : " w%lu", i);
        return h2o_iovec_init(b.p, b.len);
    }
    default:
        return echo;
    }
}

/* chunk boundaries: each chunk is one word plus the whitespace after it (the first also carries leading whitespace) */
size_t next_chunk(const char *s, size_t n, size_t i)
{
    size_t j = i;
    if (i == 0)
        while (j < n && is_space(s[j]))
            j++;
    while (j < n && !is_space(s[j]))
        j++;
    while (j < n && is_space(s[j]))
        j++;
    return j;
}

static size_t tools_completion_tokens(const struct gen_ctx *g)
{
    size_t n = 0;
    for (size_t t = 0; t < g->ncalls; t++)
        n += 1 + (strlen(g->calls[t].args) + TOOL_ARG_FRAGMENT - 1) / TOOL_ARG_FRAGMENT;
    return n;
}

/* a chat/completions chunk: prefix + "choices":[{...}] */
static void chunk_begin(struct resp *r, const struct gen_ctx *g)
{
    sse_data_begin(r);
    sb_add(&r->buf, g->prefix.base, g->prefix.len);
    sb_lit(&r->buf, "\"choices\":[{");
}

static void chunk_text(struct resp *r, const struct gen_ctx *g, const char *s, size_t n, int wait)
{
    chunk_begin(r, g);
    size_t digits = 0;
    while (digits < n && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    if (g->api == API_CHAT && g->plan->cf_numeric && n > 0 && digits == n) {
        sb_lit(&r->buf, "\"index\":0,\"delta\":{\"content\":");
        sb_add(&r->buf, s, n);
        sb_lit(&r->buf, "},\"logprobs\":null,\"finish_reason\":null}]}");
    } else if (g->api == API_CHAT) {
        sb_lit(&r->buf, "\"index\":0,\"delta\":{\"content\":\"");
        sb_json_str(&r->buf, s, n);
        sb_lit(&r->buf, "\"},\"logprobs\":null,\"finish_reason\":null}]}");
    } else {
        sb_lit(&r->buf, "\"text\":\"");
        sb_json_str(&r->buf, s, n);
        sb_lit(&r->buf, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}");
    }
    sse_end(r, wait);
}

static void sse_inband_error(struct resp *r, int wait)
{
    sse_data_begin(r);
    sb_lit(&r->buf, INBAND_ERROR);
    sse_end(r, wait);
}

/* The choices array of a broken event or body: what a faulty upstream might send. message = "message" or "delta". */
static void corrupt_choices(struct sb *b, const struct gen_ctx *g, enum corrupt_kind kind, const char *message, h2o_iovec_t text)
{
    int chat = g->api == API_CHAT;
    switch (kind) {
    case CORRUPT_JSON:
        /* cut off mid-string, after the whole text (so a big answer makes a big broken body) */
        sb_fmt(b, "\"choices\":[{\"index\":0,\"%s\":{\"content\":\"", message);
        sb_json_str(b, text.base, text.len);
        return;
    case CORRUPT_UTF8:
        if (chat)
            sb_fmt(b, "\"choices\":[{\"index\":0,\"%s\":{\"content\":\"bad \xff\xfe bytes\"},\"finish_reason\":null}]", message);
        else
            sb_lit(b, "\"choices\":[{\"text\":\"bad \xff\xfe bytes\",\"index\":0,\"finish_reason\":null}]");
        break;
    case CORRUPT_CONTENT:
        if (chat)
            sb_fmt(b, "\"choices\":[{\"index\":0,\"%s\":{\"content\":12345},\"finish_reason\":null}]", message);
        else
            sb_lit(b, "\"choices\":[{\"text\":12345,\"index\":0,\"finish_reason\":null}]");
        break;
    case CORRUPT_FINISH:
        if (chat)
            sb_fmt(b, "\"choices\":[{\"index\":0,\"%s\":{\"content\":\"x\"},\"finish_reason\":42}]", message);
        else
            sb_lit(b, "\"choices\":[{\"text\":\"x\",\"index\":0,\"finish_reason\":42}]");
        break;
    default:
        sb_lit(b, "\"choices\":[null]");
        break;
    }
    sb_lit(b, "}");
}

static void sse_corrupt(struct resp *r, const struct gen_ctx *g, int wait)
{
    sse_data_begin(r);
    sb_add(&r->buf, g->prefix.base, g->prefix.len);
    corrupt_choices(&r->buf, g, g->plan->corrupt, "delta", h2o_iovec_init(H2O_STRLIT("lost")));
    sse_end(r, wait);
}

static void build_stream(struct resp *r, const struct gen_ctx *g, h2o_iovec_t text)
{
    const struct plan *p = g->plan;
    int tools = g->api == API_CHAT && g->ncalls > 0;
    size_t content_chunks = 0, completion = tools ? tools_completion_tokens(g) : count_words(text.base, text.len);
    int wait = 0; /* "slow" waits before every event except the first (sent with the headers) */

    r->stream = 1;
    r->crlf = p->crlf;
    if (p->inband_error_first) {
        sse_inband_error(r, 0);
        return;
    }
    if (p->only_done) {
        sse_data_begin(r);
        sb_lit(&r->buf, "[DONE]");
        sse_end(r, 0);
        return;
    }
#define SEP()                                                                                                                      \
    do {                                                                                                                           \
        if (p->comments && r->evs.size != 0)                                                                                       \
            sse_comment(r);                                                                                                        \
    } while (0)
    if (g->api == API_CHAT) {
        chunk_begin(r, g);
        sb_lit(&r->buf,
               "\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}");
        sse_end(r, 0);
        wait = 1;
    }
    if (p->corrupt != CORRUPT_NONE && !p->corrupt_mid)
        sse_corrupt(r, g, wait); /* the answer follows as if nothing happened: the text of that event is lost */
    if (tools) {
        for (size_t t = 0; t < g->ncalls; t++) {
            SEP();
            chunk_begin(r, g);
            sb_fmt(&r->buf,
                   "\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%zu,\"id\":\"%s\",\"type\":\"function\",\"function\":{"
                   "\"name\":\"%s\","
                   "\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]}",
                   t, g->calls[t].id, g->calls[t].name);
            sse_end(r, wait);
            wait = 1;
            const char *a = g->calls[t].args;
            size_t alen = strlen(a);
            for (size_t off = 0; off < alen; off += TOOL_ARG_FRAGMENT) {
                size_t n = alen - off < TOOL_ARG_FRAGMENT ? alen - off : TOOL_ARG_FRAGMENT;
                SEP();
                chunk_begin(r, g);
                sb_fmt(&r->buf, "\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%zu,\"function\":{\"arguments\":\"", t);
                sb_json_str(&r->buf, a + off, n);
                sb_lit(&r->buf, "\"}}]},\"logprobs\":null,\"finish_reason\":null}]}");
                sse_end(r, 1);
                if (++content_chunks == 2 && p->reset_mid)
                    goto Abort;
                if (content_chunks == 1 && p->inband_error)
                    goto InbandError;
            }
        }
    } else {
        for (size_t i = 0, j; i < text.len; i = j) {
            j = next_chunk(text.base, text.len, i);
            SEP();
            chunk_text(r, g, text.base + i, j - i, wait);
            wait = 1;
            if (content_chunks == 0 && p->corrupt != CORRUPT_NONE && p->corrupt_mid)
                sse_corrupt(r, g, 1);
            if (++content_chunks == 2 && p->reset_mid)
                goto Abort;
            if (content_chunks == 1 && p->inband_error)
                goto InbandError;
        }
    }
    if (p->reset_mid)
        goto Abort;
    if (p->inband_error)
        goto InbandError;
    if (p->no_done)
        return;
    SEP();
    chunk_begin(r, g);
    if (g->api == API_CHAT)
        sb_fmt(&r->buf, "\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]}", tools ? "tool_calls" : "stop");
    else
        sb_lit(&r->buf, "\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]}");
    sse_end(r, wait);
    if (g->include_usage || p->usage) {
        SEP();
        sse_data_begin(r);
        sb_add(&r->buf, g->prefix.base, g->prefix.len);
        sb_lit(&r->buf, "\"choices\":[],");
        add_usage(&r->buf, g->prompt_tokens, completion);
        sb_lit(&r->buf, "}");
        sse_end(r, 1);
    }
    SEP();
    sse_data_begin(r);
    sb_lit(&r->buf, "[DONE]");
    sse_end(r, 1);
    return;
#undef SEP
Abort:
    r->abort = 1;
    return;
InbandError:
    if (p->comments)
        sse_comment(r);
    sse_inband_error(r, 1);
}

static void build_nonstream(struct resp *r, const struct gen_ctx *g, h2o_iovec_t text)
{
    const struct plan *p = g->plan;
    struct sb *b = &r->buf;
    ev_begin(r);
    sb_add(b, g->prefix.base, g->prefix.len);
    if (p->corrupt != CORRUPT_NONE) {
        corrupt_choices(b, g, p->corrupt, "message", text);
        r->content_length = b->len - r->ev_off;
        ev_end(r, 0);
        return;
    }
    if (g->api == API_CHAT && g->ncalls > 0) {
        sb_lit(b, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[");
        for (size_t t = 0; t < g->ncalls; t++) {
            sb_fmt(b, "%s{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"%s\",\"arguments\":\"", t ? "," : "",
                   g->calls[t].id, g->calls[t].name);
            sb_json_str(b, g->calls[t].args, strlen(g->calls[t].args));
            sb_lit(b, "\"}}");
        }
        sb_lit(b, "]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],");
        add_usage(b, g->prompt_tokens, tools_completion_tokens(g));
    } else if (g->api == API_CHAT) {
        sb_lit(b, "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"");
        sb_json_str(b, text.base, text.len);
        sb_lit(b, "\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],");
        add_usage(b, g->prompt_tokens, count_words(text.base, text.len));
    } else {
        sb_lit(b, "\"choices\":[{\"text\":\"");
        sb_json_str(b, text.base, text.len);
        sb_lit(b, "\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],");
        add_usage(b, g->prompt_tokens, count_words(text.base, text.len));
    }
    sb_lit(b, "}");
    r->content_length = b->len - r->ev_off;
    if (p->reset_mid) {
        /* declare the full length, send the first half, then drop the connection */
        size_t half = r->content_length / 2;
        h2o_vector_reserve(b->pool, &r->evs, 1);
        r->evs.entries[0] = (struct ev){r->ev_off, half, 0};
        r->evs.size = 1;
        r->abort = 1;
    } else {
        ev_end(r, 0);
    }
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void embedding_values(struct sb *b, const char *s, size_t n, size_t dims)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    sb_lit(b, "[");
    for (size_t k = 0; k < dims; k++) {
        double v = (double)(splitmix64(h + (uint64_t)k) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
        sb_fmt(b, "%s%.6f", k ? "," : "", v);
    }
    sb_lit(b, "]");
}

static void embedding_for(struct sb *b, size_t idx, const char *s, size_t n)
{
    sb_fmt(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", idx ? "," : "", idx);
    embedding_values(b, s, n, 8);
    sb_lit(b, "}");
}

static void build_embeddings(struct resp *r, h2o_req_t *req, json_t *body, const char *model, size_t model_len)
{
    json_t *input = json_object_get(body, "input");
    if (!json_is_string(input) && !json_is_array(input)) {
        resp_error(r, &req->pool, 400, "mock: 'input' must be a string or an array of strings", "invalid_request_error",
                   "invalid_input", "input");
        return;
    }
    resp_init(r, &req->pool, 200, "application/json", 1024);
    struct sb *b = &r->buf;
    size_t words = 0;
    ev_begin(r);
    sb_lit(b, "{\"object\":\"list\",\"data\":[");
    if (json_is_string(input)) {
        embedding_for(b, 0, json_string_value(input), json_string_length(input));
        words += count_words(json_string_value(input), json_string_length(input));
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(input, i, v)
        {
            if (json_is_string(v)) {
                embedding_for(b, i, json_string_value(v), json_string_length(v));
                words += count_words(json_string_value(v), json_string_length(v));
            } else {
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                embedding_for(b, i, s, strlen(s));
                words += 1;
                free(s);
            }
        }
    }
    sb_lit(b, "],\"model\":\"");
    sb_json_str(b, model, model_len);
    sb_fmt(b, "\",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", words, words);
    ev_end(r, 0);
    r->content_length = b->len;
}

static void build_models(struct resp *r, h2o_mem_pool_t *pool)
{
    static const char body[] = "{\"object\":\"list\",\"data\":["
                               "{\"id\":\"echo\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
                               "{\"id\":\"lorem\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},"
                               "{\"id\":\"tools\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"}]}";
    resp_body(r, pool, 200, "application/json", body, sizeof(body) - 1);
}

/* POST /v1/chat/completions, /v1/completions, /v1/embeddings: parse, record, then act on the model's directives */
void mock_openai_handle(h2o_req_t *req, struct reqtrack *t, enum api api)
{
    struct resp r;
    json_error_t jerr;
    json_t *body = req->entity.base != NULL ? json_loadb(req->entity.base, req->entity.len, 0, &jerr) : NULL;

    if (body == NULL || !json_is_object(body)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "mock: malformed JSON body: %s",
                 body == NULL ? (req->entity.base ? jerr.text : "empty body") : "not a JSON object");
        json_decref(body);
        resp_error(&r, &req->pool, 400, msg, "invalid_request_error", "invalid_json", NULL);
        respond(req, t, &r, NULL);
        return;
    }

    json_t *jmodel = json_object_get(body, "model");
    const char *model = json_is_string(jmodel) ? json_string_value(jmodel) : "";
    size_t model_len = json_is_string(jmodel) ? json_string_length(jmodel) : 0;
    record_request(req, model, model_len);
    if (!quiet)
        fprintf(stderr, "mock: %.*s %.*s model=%s\n", (int)req->method.len, req->method.base, (int)req->path.len, req->path.base,
                model);

    struct plan *plan = h2o_mem_alloc_pool(&req->pool, sizeof(*plan));
    parse_plan(model, model_len, plan);

    if (plan->reset) {
        json_decref(body);
        drop_request(req, t);
        return;
    }
    if (plan->hang) {
        json_decref(body);
        start_hang(req, t);
        return;
    }

    int stream = json_is_true(json_object_get(body, "stream"));
    if (plan->fail_status != 0) {
        char msg[64], code[16];
        snprintf(msg, sizeof(msg), "mock failure %d", plan->fail_status);
        snprintf(code, sizeof(code), "%d", plan->fail_status);
        resp_error(&r, &req->pool, plan->fail_status, msg, "server_error", code, NULL);
        if (plan->fail_status == 429)
            r.retry_after = 1;
    } else if (plan->html502) {
        resp_body(&r, &req->pool, 502, "text/html", HTML_502, HTML_502_LEN);
    } else if (plan->require_mct && json_object_get(body, "max_tokens") != NULL &&
               !json_is_null(json_object_get(body, "max_tokens"))) {
        resp_error(&r, &req->pool, 400,
                   "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                   "invalid_request_error", "unsupported_parameter", "max_tokens");
    } else if (plan->garbage) {
        resp_body(&r, &req->pool, 200, "application/json", H2O_STRLIT("not json {{{"));
    } else if (plan->garbage_sse) {
        resp_init(&r, &req->pool, 200, "text/event-stream", 64);
        r.stream = 1;
        r.crlf = plan->crlf;
        sse_data_begin(&r);
        sb_lit(&r.buf, "nonsense{");
        sse_end(&r, 0);
    } else if (api == API_EMBEDDINGS) {
        build_embeddings(&r, req, body, model, model_len);
    } else {
        struct gen_ctx g = {.api = api, .plan = plan};
        h2o_iovec_t echo = h2o_iovec_init("", 0);
        if (api == API_CHAT) {
            json_t *msgs = json_object_get(body, "messages"), *msg;
            size_t i;
            int last_is_tool = 0, last_is_assistant = 0;
            h2o_iovec_t tool_text = h2o_iovec_init("", 0), prefill = h2o_iovec_init("", 0);
            json_array_foreach(msgs, i, msg)
            {
                h2o_iovec_t txt = content_text(&req->pool, json_object_get(msg, "content"));
                g.prompt_tokens += count_words(txt.base, txt.len);
                json_t *role = json_object_get(msg, "role");
                if (json_is_string(role) && strcmp(json_string_value(role), "user") == 0)
                    echo = txt;
                last_is_tool = json_is_string(role) && strcmp(json_string_value(role), "tool") == 0;
                if (last_is_tool)
                    tool_text = txt;
                last_is_assistant = json_is_string(role) && strcmp(json_string_value(role), "assistant") == 0;
                if (last_is_assistant)
                    prefill = txt;
            }
            if (plan->content == CONTENT_PREFILL) { /* a continuation: say what it continues */
                struct sb b;
                sb_init(&b, &req->pool, prefill.len + 32);
                if (last_is_assistant) {
                    sb_lit(&b, " continued after \"");
                    sb_add(&b, prefill.base, prefill.len);
                    sb_lit(&b, "\"");
                } else {
                    sb_lit(&b, "no prefill");
                }
                echo = h2o_iovec_init(b.p, b.len);
            }
            if (plan->content == CONTENT_TOOLS) {
                g.calls = TOOL_CALLS, g.ncalls = 2;
            } else if (plan->content == CONTENT_BASH_TOOL && !last_is_tool) {
                g.calls = &BASH_CALL, g.ncalls = 1;
            } else if (plan->content == CONTENT_BASH_TOOL) {
                struct sb b;
                sb_init(&b, &req->pool, tool_text.len + 16);
                sb_lit(&b, "tool said: ");
                sb_add(&b, tool_text.base, tool_text.len);
                echo = h2o_iovec_init(b.p, b.len);
            }
        } else {
            json_t *prompt = json_object_get(body, "prompt");
            if (json_is_string(prompt)) {
                echo = h2o_iovec_init(json_string_value(prompt), json_string_length(prompt));
            } else if (json_is_array(prompt)) { /* array of strings: join with a space */
                struct sb b;
                sb_init(&b, &req->pool, 256);
                size_t i;
                json_t *v;
                json_array_foreach(prompt, i, v)
                {
                    if (!json_is_string(v))
                        continue;
                    if (b.len)
                        sb_lit(&b, " ");
                    sb_add(&b, json_string_value(v), json_string_length(v));
                }
                echo = h2o_iovec_init(b.p, b.len);
            }
            g.prompt_tokens = count_words(echo.base, echo.len);
        }
        /* echo points into the parsed JSON: copy before body is released */
        echo = h2o_strdup(&req->pool, echo.base, echo.len);
        h2o_iovec_t text = reply_text(&req->pool, plan, echo);
        json_t *so = json_object_get(body, "stream_options");
        g.include_usage = json_is_true(json_object_get(so, "include_usage"));
        build_prefix(&g, &req->pool, api == API_CHAT ? (stream ? "chat.completion.chunk" : "chat.completion") : "text_completion",
                     model, model_len);
        resp_init(&r, &req->pool, 200, stream ? "text/event-stream" : "application/json", 512 + text.len * 2);
        if (stream)
            build_stream(&r, &g, text);
        else
            build_nonstream(&r, &g, text);
    }
    json_decref(body);
    respond(req, t, &r, plan);
}

int path_is(h2o_iovec_t path, const char *lit)
{
    return h2o_memis(path.base, path.len, lit, strlen(lit));
}

const char *header_value(h2o_req_t *req, const char *name, size_t *len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    *len = req->headers.entries[i].value.len;
    return req->headers.entries[i].value.base;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    struct resp r;
    h2o_iovec_t path = req->path_normalized;
    int is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    int is_get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));

    if (path.len >= 7 && memcmp(path.base, "/_mock/", 7) == 0) {
        struct reqtrack *t = h2o_mem_alloc_pool(&req->pool, sizeof(*t));
        memset(t, 0, sizeof(*t));
        if (path_is(path, "/_mock/stats") && is_get) {
            build_stats(&r, &req->pool);
        } else if (path_is(path, "/_mock/last") && is_get) {
            build_last(&r, req);
        } else if (path_is(path, "/_mock/reset") && is_post) {
            models_clear();
            atomic_store(&stat_total, 0);
            atomic_store(&stat_connections, 0);
            atomic_store(&stat_max_in_flight, atomic_load(&stat_in_flight));
            resp_body(&r, &req->pool, 200, "application/json", H2O_STRLIT("{\"ok\":true}"));
        } else {
            resp_error(&r, &req->pool, 404, "mock: unknown path", "invalid_request_error", "not_found", NULL);
        }
        respond(req, t, &r, NULL);
        return 0;
    }

    /* API request: count it and get told (in every case) when it is gone */
    struct reqtrack *t = h2o_mem_alloc_shared(&req->pool, sizeof(*t), on_track_dispose);
    t->m = NULL;
    t->counted = 1;
    atomic_fetch_add(&stat_total, 1);
    unsigned long cur = atomic_fetch_add(&stat_in_flight, 1) + 1, max = atomic_load(&stat_max_in_flight);
    while (cur > max && !atomic_compare_exchange_weak(&stat_max_in_flight, &max, cur))
        ;

    enum api api;
    if (path_is(path, "/v1/chat/completions"))
        api = API_CHAT;
    else if (path_is(path, "/v1/completions"))
        api = API_COMPLETIONS;
    else if (path_is(path, "/v1/embeddings"))
        api = API_EMBEDDINGS;
    else if (path_is(path, "/v1/messages")) { /* Anthropic Messages API: mock_anthropic.c */
        if (!is_post) {
            resp_error(&r, &req->pool, 405, "mock: method not allowed", "invalid_request_error", "method_not_allowed", NULL);
            respond(req, t, &r, NULL);
        } else {
            mock_anthropic_handle(req, t);
        }
        return 0;
    } else if (path.len >= 20 && memcmp(path.base, "/client/v4/accounts/", 20) == 0) { /* Workers AI: mock_cloudflare.c */
        mock_cloudflare_handle(req, t, is_post);
        return 0;
    } else if (path.len >= 8 && memcmp(path.base, "/v1beta/", 8) == 0) { /* Gemini API: mock_gemini.c */
        mock_gemini_handle(req, t, is_post);
        return 0;
    } else if (path_is(path, "/v1/models")) {
        if (is_get)
            build_models(&r, &req->pool);
        else
            resp_error(&r, &req->pool, 405, "mock: method not allowed", "invalid_request_error", "method_not_allowed", NULL);
        respond(req, t, &r, NULL);
        return 0;
    } else {
        char msg[200];
        snprintf(msg, sizeof(msg), "mock: unknown path %.*s", (int)(path.len > 150 ? 150 : path.len), path.base);
        resp_error(&r, &req->pool, 404, msg, "invalid_request_error", "not_found", NULL);
        respond(req, t, &r, NULL);
        return 0;
    }
    if (!is_post) {
        resp_error(&r, &req->pool, 405, "mock: method not allowed", "invalid_request_error", "method_not_allowed", NULL);
        respond(req, t, &r, NULL);
        return 0;
    }
    mock_openai_handle(req, t, api);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------------------
 * server plumbing
 */

static void on_sock_closed(uv_handle_t *h)
{
    atomic_fetch_sub(&stat_open_connections, 1);
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct worker *w = listener->data;
    if (status != 0)
        return;
    uv_tcp_t *conn = h2o_mem_alloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    atomic_fetch_add(&stat_connections, 1);
    atomic_fetch_add(&stat_open_connections, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_sock_closed);
    h2o_accept(&w->accept_ctx, sock);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int r;
    uv_loop_init(&w->loop);
    h2o_context_init(&w->ctx, &w->loop, &config);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = config.hosts;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if ((r = uv_tcp_open(&w->listener, w->fd)) != 0 || (r = uv_listen((uv_stream_t *)&w->listener, 4096, on_accept)) != 0) {
        fprintf(stderr, "mock_upstream: listen: %s\n", uv_strerror(r));
        _exit(1);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int open_listener(const char *address, int port, int reuseport, int *bound_port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV}, *res;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rv = getaddrinfo(address, portstr, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "mock_upstream: bad address %s: %s\n", address, gai_strerror(rv));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "mock_upstream: cannot listen on %s:%d: %s\n", address, port, strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void on_exit_signal(int sig)
{
    (void)sig;
    _exit(0);
}

static void usage_exit(const char *argv0)
{
    fprintf(stderr, "usage: %s --port N [--address 127.0.0.1] [--threads N] [--quiet] [--cloudflare-token T]\n", argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *address = "127.0.0.1";
    int port = -1, nthreads = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--address") == 0 && i + 1 < argc)
            address = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quiet") == 0)
            quiet = 1;
        else if (strcmp(argv[i], "--cloudflare-token") == 0 && i + 1 < argc)
            cloudflare_token = argv[++i];
        else
            usage_exit(argv[0]);
    }
    if (port < 0 || port > 65535 || nthreads < 1 || nthreads > 256)
        usage_exit(argv[0]);

    /* keep freed memory instead of trimming/re-growing the heap on every request burst (measured ~+10% req/s) */
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_TOP_PAD, 16 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    signal(SIGPIPE, SIG_IGN); /* writes to sockets we shut down on purpose ("reset") must not kill us */
    /* SIGTERM/SIGINT: exit 0 from whichever thread gets it; nothing is persisted, so no orderly teardown */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_exit_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    h2o_config_init(&config);
    config.max_request_entity_size = MAX_BODY_SIZE;
    h2o_hostconf_t *hostconf = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;

    struct worker *workers = calloc((size_t)nthreads, sizeof(*workers));
    int bound = port;
    for (int i = 0; i < nthreads; i++) {
        /* thread 0 resolves port 0; the others join it through SO_REUSEPORT (only used with more than one thread so a
         * second copy of the mock cannot silently share a fixed port) */
        if ((workers[i].fd = open_listener(address, bound, nthreads > 1, &bound)) < 0)
            return 1;
    }
    for (int i = 0; i < nthreads; i++)
        pthread_create(&workers[i].tid, NULL, worker_main, workers + i);

    printf("listening on %s:%d\n", address, bound);
    fflush(stdout);

    for (int i = 0; i < nthreads; i++)
        pthread_join(workers[i].tid, NULL);
    return 0;
}
