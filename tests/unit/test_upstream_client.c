/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/upstream/client.c against a tiny HTTP/1.1 server running on
 * the same uv loop (127.0.0.1, ephemeral port). The request path selects the
 * server's behaviour. Every test closes everything and asserts
 * uv_loop_close() == 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "upstream/client.h"

/* ------------------------------------------------------------------------ */
/* mini server                                                              */
/* ------------------------------------------------------------------------ */

#define BIG_LEN 100000
#define NCHUNKS 5

enum { MODE_NONE, MODE_CHUNKED, MODE_STALL, MODE_DRIP };

struct srv;

struct sconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct srv *s;
    struct sconn *next;
    char *buf;
    size_t len, cap;
    int mode, tick, closing, open;
};

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    int accepted;
    int requests;
    struct sconn *conns;
    /* last request seen */
    char path[128];
    char method[16];
    char x_test[128];
    int saw_expect;
    size_t body_len;
    int body_ok; /* body matched the expected pattern */
};

struct wreq {
    uv_write_t req;
    char data[];
};

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void conn_send(struct sconn *k, const char *data, size_t len)
{
    struct wreq *w;
    uv_buf_t b;
    if (k->closing)
        return;
    w = malloc(sizeof(*w) + len);
    assert_non_null(w);
    memcpy(w->data, data, len);
    b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&k->tcp, &b, 1, on_written) != 0)
        free(w);
}

static void conn_sendf(struct sconn *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_sendf(struct sconn *k, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    conn_send(k, tmp, (size_t)n);
}

static void conn_free_cb(uv_handle_t *h)
{
    struct sconn *k = h->data;
    if (--k->open == 0) {
        struct srv *s = k->s;
        struct sconn **pp;
        for (pp = &s->conns; *pp != NULL; pp = &(*pp)->next)
            if (*pp == k) {
                *pp = k->next;
                break;
            }
        free(k->buf);
        free(k);
    }
}

static void conn_close(struct sconn *k, int reset)
{
    if (k->closing)
        return;
    k->closing = 1;
    uv_timer_stop(&k->timer);
    uv_close((uv_handle_t *)&k->timer, conn_free_cb);
    if (reset)
        uv_tcp_close_reset(&k->tcp, conn_free_cb);
    else
        uv_close((uv_handle_t *)&k->tcp, conn_free_cb);
}

static void send_chunk(struct sconn *k, int i)
{
    char ev[64];
    int n = snprintf(ev, sizeof(ev), "data: chunk-%d\n\n", i);
    conn_sendf(k, "%x\r\n%s\r\n", (unsigned)n, ev);
}

static void on_conn_timer(uv_timer_t *t)
{
    struct sconn *k = t->data;
    switch (k->mode) {
    case MODE_CHUNKED:
        if (k->tick < NCHUNKS) {
            send_chunk(k, k->tick++);
        } else {
            conn_send(k, "0\r\n\r\n", 5);
            uv_timer_stop(t);
            k->mode = MODE_NONE;
        }
        break;
    case MODE_DRIP:
        send_chunk(k, k->tick++);
        break;
    default:
        uv_timer_stop(t);
    }
}

static const char SSE_HEAD[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

static void respond(struct sconn *k, const char *path)
{
    if (strcmp(path, "/ok") == 0) {
        static const char body[] = "{\"ok\":true}";
        conn_sendf(k, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    } else if (strcmp(path, "/chunked") == 0) {
        conn_send(k, SSE_HEAD, strlen(SSE_HEAD));
        k->mode = MODE_CHUNKED;
        k->tick = 0;
        uv_timer_start(&k->timer, on_conn_timer, 5, 5);
    } else if (strcmp(path, "/slowhead") == 0) {
        /* never answers */
    } else if (strcmp(path, "/stall") == 0) {
        conn_send(k, SSE_HEAD, strlen(SSE_HEAD));
        send_chunk(k, 0);
    } else if (strcmp(path, "/drip") == 0) {
        conn_send(k, SSE_HEAD, strlen(SSE_HEAD));
        k->mode = MODE_DRIP;
        k->tick = 0;
        uv_timer_start(&k->timer, on_conn_timer, 20, 20);
    } else if (strcmp(path, "/reset") == 0) {
        conn_close(k, 1);
    } else if (strcmp(path, "/big") == 0) {
        char *b = malloc(BIG_LEN);
        assert_non_null(b);
        for (size_t i = 0; i < BIG_LEN; i++)
            b[i] = (char)('a' + i % 26);
        conn_sendf(k, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", BIG_LEN);
        conn_send(k, b, BIG_LEN);
        free(b);
    } else if (strcmp(path, "/status/429") == 0) {
        static const char body[] = "{\"error\":{\"message\":\"slow down\"}}";
        conn_sendf(
            k,
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
            strlen(body), body);
    } else if (strcmp(path, "/early") == 0) {
        conn_sendf(k, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/manyheaders") == 0) {
        char tmp[64];
        conn_send(k, "HTTP/1.1 200 OK\r\n", 17);
        for (int i = 0; i < 150; i++) {
            int n = snprintf(tmp, sizeof(tmp), "X-H%d: v\r\n", i);
            conn_send(k, tmp, (size_t)n);
        }
        conn_send(k, "Content-Length: 0\r\n\r\n", 21);
    } else {
        conn_sendf(k, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

static const char *find_hdr(const char *hdrs, size_t hlen, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = hdrs, *end = hdrs + hlen;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && *v == ' ')
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

static void process_requests(struct sconn *k)
{
    struct srv *s = k->s;
    while (!k->closing) {
        const char *end = memmem(k->buf, k->len, "\r\n\r\n", 4), *v, *sp1, *sp2;
        size_t hlen, clen = 0, vlen;
        if (end == NULL)
            return;
        hlen = (size_t)(end - k->buf) + 4;
        if ((v = find_hdr(k->buf, hlen, "content-length", &vlen)) != NULL)
            clen = strtoul(v, NULL, 10);
        if (k->len < hlen + clen)
            return;
        sp1 = memchr(k->buf, ' ', hlen);
        assert_non_null(sp1);
        sp2 = memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - k->buf));
        assert_non_null(sp2);
        snprintf(s->method, sizeof(s->method), "%.*s", (int)(sp1 - k->buf), k->buf);
        snprintf(s->path, sizeof(s->path), "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
        s->saw_expect = find_hdr(k->buf, hlen, "expect", &vlen) != NULL;
        s->x_test[0] = '\0';
        if ((v = find_hdr(k->buf, hlen, "x-test", &vlen)) != NULL)
            snprintf(s->x_test, sizeof(s->x_test), "%.*s", (int)vlen, v);
        s->body_len = clen;
        s->body_ok = 1;
        for (size_t i = 0; i < clen; i++)
            if (k->buf[hlen + i] != (char)('A' + i % 23))
                s->body_ok = 0;
        s->requests++;
        memmove(k->buf, k->buf + hlen + clen, k->len - hlen - clen);
        k->len -= hlen + clen;
        respond(k, s->path);
    }
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sconn *k = h->data;
    (void)suggested;
    if (k->cap - k->len < 65536) {
        k->cap = k->cap * 2 + 65536;
        k->buf = realloc(k->buf, k->cap);
        assert_non_null(k->buf);
    }
    *buf = uv_buf_init(k->buf + k->len, (unsigned)(k->cap - k->len));
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct sconn *k = st->data;
    (void)buf;
    if (nread < 0) {
        conn_close(k, 0);
        return;
    }
    k->len += (size_t)nread;
    process_requests(k);
}

static void on_accept(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    struct sconn *k;
    assert_int_equal(status, 0);
    k = calloc(1, sizeof(*k));
    assert_non_null(k);
    k->s = s;
    k->open = 2;
    uv_tcp_init(s->loop, &k->tcp);
    uv_timer_init(s->loop, &k->timer);
    k->tcp.data = k;
    k->timer.data = k;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&k->tcp), 0);
    k->next = s->conns;
    s->conns = k;
    s->accepted++;
    uv_read_start((uv_stream_t *)&k->tcp, conn_alloc, conn_read);
}

static void srv_start(struct srv *s, uv_loop_t *loop)
{
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int nlen = sizeof(name);
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 128, on_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &nlen), 0);
    s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
}

static void srv_close(struct srv *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
    for (struct sconn *k = s->conns; k != NULL; k = k->next)
        conn_close(k, 0);
}

/* ------------------------------------------------------------------------ */
/* fixture                                                                  */
/* ------------------------------------------------------------------------ */

struct rec {
    struct fx *f;
    lg_xfer_t *x;
    int heads, datas, dones;
    int status, result;
    int order_bad;
    char msg[256];
    char *body;
    size_t body_len;
    char retry_after[32];
    char ctype[64];
    char xfinal[16];
    int has_link;
    /* behaviours */
    int cancel_at_data; /* cancel inside the n-th on_data (1-based) */
    int cancel_at_head;
    int abort_at_data; /* return -1 from the n-th on_data (1-based) */
    int pause_each;    /* return 1 from every on_data, resume from a timer */
    int resume_ms;     /* delay of that resume (default 2 ms) */
    int paused_now;
    int data_while_paused;
    int done_while_paused;
    int chain_left;            /* start another /ok from on_done while > 0 */
    struct rec *start_in_head; /* start this rec's /ok from inside on_head (inside a curl callback) */
};

struct fx {
    uv_loop_t loop;
    struct srv srv;
    lg_upclient_t *client;
    int closed;
    uv_timer_t resume_timer;
    struct rec *resume_rec;
    char url[256];
};

static const char *url(struct fx *f, const char *path)
{
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d%s", f->srv.port, path);
    return f->url;
}

static void on_resume_timer(uv_timer_t *t)
{
    struct fx *f = t->data;
    struct rec *r = f->resume_rec;
    if (r != NULL && r->x != NULL && r->paused_now) {
        r->paused_now = 0;
        lg_xfer_resume(r->x);
    }
}

static int t_on_head(void *ctx, lg_xfer_t *x, int status);
static int t_on_data(void *ctx, lg_xfer_t *x, const char *data, size_t len);
static void t_on_done(void *ctx, lg_xfer_t *x, int result, const char *msg);
static const lg_xfer_callbacks_t CBS = {t_on_head, t_on_data, t_on_done};

static int t_on_head(void *ctx, lg_xfer_t *x, int status)
{
    struct rec *r = ctx;
    const char *v;
    if (r->heads != 0 || r->datas != 0 || r->dones != 0)
        r->order_bad++;
    r->heads++;
    r->status = status;
    assert_int_equal(lg_xfer_status(x), status);
    if ((v = lg_xfer_header(x, "retry-after")) != NULL)
        snprintf(r->retry_after, sizeof(r->retry_after), "%s", v);
    if ((v = lg_xfer_header(x, "CONTENT-TYPE")) != NULL)
        snprintf(r->ctype, sizeof(r->ctype), "%s", v);
    if ((v = lg_xfer_header(x, "x-final")) != NULL)
        snprintf(r->xfinal, sizeof(r->xfinal), "%s", v);
    r->has_link = lg_xfer_header(x, "link") != NULL;
    if (r->start_in_head != NULL) {
        lg_http_req_t req;
        struct rec *o = r->start_in_head;
        memset(&req, 0, sizeof(req));
        req.method = (char *)"GET";
        req.url = (char *)url(r->f, "/ok");
        o->f = r->f;
        o->x = lg_xfer_start(r->f->client, &req, NULL, &CBS, o, NULL, 0);
        assert_non_null(o->x);
        r->start_in_head = NULL;
    }
    if (r->cancel_at_head) {
        lg_xfer_cancel(x);
        r->x = NULL;
    }
    return 0;
}

static int t_on_data(void *ctx, lg_xfer_t *x, const char *data, size_t len)
{
    struct rec *r = ctx;
    if (r->heads != 1 || r->dones != 0)
        r->order_bad++;
    if (r->paused_now)
        r->data_while_paused++;
    r->datas++;
    r->body = realloc(r->body, r->body_len + len + 1);
    assert_non_null(r->body);
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    if (r->cancel_at_data != 0 && r->datas == r->cancel_at_data) {
        lg_xfer_cancel(x);
        r->x = NULL;
        return 0;
    }
    if (r->abort_at_data != 0 && r->datas == r->abort_at_data)
        return -1;
    if (r->pause_each) {
        r->paused_now = 1;
        r->f->resume_rec = r;
        uv_timer_start(&r->f->resume_timer, on_resume_timer, r->resume_ms > 0 ? (uint64_t)r->resume_ms : 2, 0);
        return 1;
    }
    return 0;
}

static lg_xfer_t *start(struct fx *f, struct rec *r, const char *path, const lg_xfer_opts_t *o)
{
    lg_http_req_t req;
    char err[128] = "";
    memset(&req, 0, sizeof(req));
    req.method = (char *)"GET";
    req.url = (char *)url(f, path);
    r->f = f;
    r->x = lg_xfer_start(f->client, &req, o, &CBS, r, err, sizeof(err));
    assert_non_null(r->x);
    return r->x;
}

static void t_on_done(void *ctx, lg_xfer_t *x, int result, const char *msg)
{
    struct rec *r = ctx;
    (void)x;
    assert_non_null(msg);
    if (r->paused_now)
        r->done_while_paused++;
    r->dones++;
    r->result = result;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
    r->x = NULL;
    if (r->chain_left > 0 && result == 0) {
        r->chain_left--;
        r->heads = r->datas = 0;
        start(r->f, r, "/ok", NULL);
    }
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
}

/** Run the loop until *flag >= want or max_ms elapsed. */
static void run_until(struct fx *f, const int *flag, int want, uint64_t max_ms)
{
    uv_timer_t guard;
    uint64_t deadline;
    uv_update_time(&f->loop);
    deadline = uv_now(&f->loop) + max_ms;
    uv_timer_init(&f->loop, &guard);
    uv_timer_start(&guard, on_guard, max_ms, 0);
    while ((flag == NULL || *flag < want) && uv_now(&f->loop) < deadline)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void on_client_closed(void *arg)
{
    struct fx *f = arg;
    f->closed++;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    /* no proxy from the environment for loopback tests */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    assert_int_equal(uv_loop_init(&f->loop), 0);
    srv_start(&f->srv, &f->loop);
    f->client = lg_upclient_create(&f->loop, NULL);
    assert_non_null(f->client);
    uv_timer_init(&f->loop, &f->resume_timer);
    f->resume_timer.data = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int i;
    if (f->client != NULL)
        lg_upclient_destroy(f->client, on_client_closed, f);
    f->client = NULL;
    srv_close(&f->srv);
    uv_close((uv_handle_t *)&f->resume_timer, NULL);
    for (i = 0; i < 3000 && uv_loop_alive(&f->loop); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (uv_loop_alive(&f->loop))
            usleep(1000);
    }
    assert_int_equal(f->closed, 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void rec_free(struct rec *r)
{
    free(r->body);
    r->body = NULL;
}

/* ------------------------------------------------------------------------ */
/* tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_client_ok(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_http_req_t req;
    char err[128] = "";
    char body[64];
    memset(&req, 0, sizeof(req));
    for (size_t i = 0; i < 40; i++)
        body[i] = (char)('A' + i % 23);
    req.url = (char *)url(f, "/ok");
    req.body = body;
    req.body_len = 40;
    req.headers[0].name = (char *)"X-Test";
    req.headers[0].value = (char *)"hello";
    req.headers[1].name = (char *)"Content-Type";
    req.headers[1].value = (char *)"application/json";
    req.num_headers = 2;
    r.f = f;
    r.x = lg_xfer_start(f->client, &req, NULL, &CBS, &r, err, sizeof(err));
    assert_non_null(r.x);
    memset(body, 0, sizeof(body)); /* the client copied it */
    assert_int_equal(lg_upclient_active(f->client), 1);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.result, 0);
    assert_string_equal(r.msg, "");
    assert_int_equal(r.heads, 1);
    assert_true(r.datas >= 1);
    assert_int_equal(r.order_bad, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_string_equal(r.body, "{\"ok\":true}");
    assert_string_equal(f->srv.method, "POST");
    assert_string_equal(f->srv.x_test, "hello");
    assert_int_equal(f->srv.body_len, 40);
    assert_true(f->srv.body_ok);
    assert_int_equal(lg_upclient_active(f->client), 0);
    rec_free(&r);
}

static void test_client_reuse(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    r.chain_left = 9;
    start(f, &r, "/ok", NULL);
    run_until(f, &r.dones, 10, 10000);
    assert_int_equal(r.dones, 10);
    assert_int_equal(r.result, 0);
    assert_int_equal(f->srv.requests, 10);
    assert_int_equal(f->srv.accepted, 1);
    rec_free(&r);
}

static void test_client_large_post_no_expect(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_http_req_t req;
    char err[128] = "";
    size_t n = 2u << 20;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('A' + i % 23);
    memset(&req, 0, sizeof(req));
    req.url = (char *)url(f, "/ok");
    req.body = body;
    req.body_len = n;
    r.f = f;
    r.x = lg_xfer_start(f->client, &req, NULL, &CBS, &r, err, sizeof(err));
    assert_non_null(r.x);
    free(body);
    run_until(f, &r.dones, 1, 10000);
    assert_int_equal(r.result, 0);
    assert_int_equal(f->srv.body_len, n);
    assert_true(f->srv.body_ok);
    assert_int_equal(f->srv.saw_expect, 0);
    rec_free(&r);
}

static void test_client_chunked(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    char want[256] = "";
    lg_xfer_opts_t o = {.first_byte_timeout_ms = 2000, .idle_timeout_ms = 2000, .total_timeout_ms = 5000};
    for (int i = 0; i < NCHUNKS; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "data: chunk-%d\n\n", i);
    start(f, &r, "/chunked", &o);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.result, 0);
    assert_int_equal(r.heads, 1);
    assert_true(r.datas >= 2); /* written on separate timers */
    assert_int_equal(r.order_bad, 0);
    assert_string_equal(r.ctype, "text/event-stream");
    assert_string_equal(r.body, want);
    rec_free(&r);
}

static void test_client_status_429(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    start(f, &r, "/status/429", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.result, 0);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.retry_after, "7");
    assert_string_equal(r.body, "{\"error\":{\"message\":\"slow down\"}}");
    rec_free(&r);
}

static void test_client_1xx_skipped(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    start(f, &r, "/early", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.result, 0);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.xfinal, "yes");
    assert_int_equal(r.has_link, 0); /* headers of the 103 block are not the response's */
    assert_string_equal(r.body, "ok");
    rec_free(&r);
}

static void test_client_first_byte_timeout(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_xfer_opts_t o = {.first_byte_timeout_ms = 60, .idle_timeout_ms = 1000, .total_timeout_ms = 5000};
    start(f, &r, "/slowhead", &o);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.heads, 0);
    assert_int_equal(r.result, LG_ETIMEOUT);
    assert_string_equal(r.msg, "first byte timeout after 60 ms");
    rec_free(&r);
}

static void test_client_idle_timeout(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_xfer_opts_t o = {.first_byte_timeout_ms = 1000, .idle_timeout_ms = 60, .total_timeout_ms = 5000};
    start(f, &r, "/stall", &o);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.datas, 1);
    assert_string_equal(r.body, "data: chunk-0\n\n");
    assert_int_equal(r.result, LG_ETIMEOUT);
    assert_string_equal(r.msg, "idle timeout after 60 ms");
    rec_free(&r);
}

static void test_client_total_timeout(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_xfer_opts_t o = {.first_byte_timeout_ms = 1000, .idle_timeout_ms = 1000, .total_timeout_ms = 150};
    start(f, &r, "/drip", &o);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.heads, 1);
    assert_true(r.datas >= 2);
    assert_int_equal(r.result, LG_ETIMEOUT);
    assert_string_equal(r.msg, "total timeout after 150 ms");
    rec_free(&r);
}

static void test_client_reset(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    start(f, &r, "/reset", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.heads, 0);
    assert_int_equal(r.result, LG_EUPSTREAM);
    assert_true(strlen(r.msg) > 0);
    assert_non_null(strstr(r.msg, "(curl "));
    rec_free(&r);
}

static void test_client_connect_refused(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_http_req_t req;
    char err[128] = "", u[64];
    uv_tcp_t t;
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int nlen = sizeof(name), port;
    /* a port that was free a moment ago */
    uv_tcp_init(&f->loop, &t);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&addr, 0), 0);
    uv_tcp_getsockname(&t, (struct sockaddr *)&name, &nlen);
    port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", port);
    memset(&req, 0, sizeof(req));
    req.url = u;
    r.f = f;
    lg_xfer_opts_t o = {.connect_timeout_ms = 2000};
    r.x = lg_xfer_start(f->client, &req, &o, &CBS, &r, err, sizeof(err));
    assert_non_null(r.x);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.result, LG_EUPSTREAM);
    assert_int_equal(r.heads, 0);
    rec_free(&r);
}

/* public_addresses_only (fetching outsider-chosen URLs): the loopback test server is refused before any connection */
static void test_client_public_addresses_only(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_http_req_t req;
    char err[128] = "";
    memset(&req, 0, sizeof(req));
    req.url = (char *)url(f, "/ok");
    req.method = (char *)"GET";
    r.f = f;
    lg_xfer_opts_t o = {.connect_timeout_ms = 2000, .public_addresses_only = 1};
    r.x = lg_xfer_start(f->client, &req, &o, &CBS, &r, err, sizeof(err));
    assert_non_null(r.x);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.result, LG_EUPSTREAM);
    assert_int_equal(r.heads, 0);
    assert_int_equal(f->srv.accepted, 0);
    rec_free(&r);
    /* the same URL without the option reaches the server */
    struct rec r2 = {0};
    r2.f = f;
    o.public_addresses_only = 0;
    r2.x = lg_xfer_start(f->client, &req, &o, &CBS, &r2, err, sizeof(err));
    run_until(f, &r2.dones, 1, 5000);
    assert_int_equal(r2.result, 0);
    assert_int_equal(r2.status, 200);
    assert_int_equal(f->srv.accepted, 1);
    rec_free(&r2);
}

static void test_client_big_over_cap(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_xfer_opts_t o = {.max_response_bytes = 1000};
    start(f, &r, "/big", &o);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.result, LG_EBADRESPONSE);
    assert_true(r.body_len <= 1000);
    assert_non_null(strstr(r.msg, "1000"));
    rec_free(&r);
}

static void test_client_too_many_headers(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    start(f, &r, "/manyheaders", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.heads, 0);
    assert_int_equal(r.result, LG_EBADRESPONSE);
    rec_free(&r);
}

static void test_client_cancel_in_on_data(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    r.cancel_at_data = 1;
    start(f, &r, "/chunked", NULL);
    run_until(f, &r.datas, 1, 5000);
    run_until(f, NULL, 0, 80); /* the server would have sent every chunk by now */
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.datas, 1);
    assert_int_equal(r.dones, 0);
    assert_int_equal(lg_upclient_active(f->client), 0);
    rec_free(&r);
}

static void test_client_cancel_in_on_head(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    r.cancel_at_head = 1;
    start(f, &r, "/chunked", NULL);
    run_until(f, &r.heads, 1, 5000);
    run_until(f, NULL, 0, 80);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.datas, 0);
    assert_int_equal(r.dones, 0);
    assert_int_equal(lg_upclient_active(f->client), 0);
    rec_free(&r);
}

static void test_client_cancel_before_data(void **state)
{
    struct fx *f = *state;
    struct rec r = {0}, r2 = {0};
    start(f, &r, "/ok", NULL);
    lg_xfer_cancel(r.x); /* before the loop ran at all */
    r.x = NULL;
    start(f, &r2, "/slowhead", NULL);
    run_until(f, NULL, 0, 30); /* connected and waiting for the head */
    lg_xfer_cancel(r2.x);
    r2.x = NULL;
    run_until(f, NULL, 0, 30);
    assert_int_equal(r.heads + r.datas + r.dones, 0);
    assert_int_equal(r2.heads + r2.datas + r2.dones, 0);
    assert_int_equal(lg_upclient_active(f->client), 0);
    /* the client still works afterwards */
    start(f, &r, "/ok", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.result, 0);
    rec_free(&r);
    rec_free(&r2);
}

/* A client that cancels must not cost an upstream connection each time: a response about to end is read to its end in
 * the background and the HTTP/1.1 connection goes back to the pool; one that does not end in time is cut. */
static void test_client_cancel_keeps_connection_pooled(void **state)
{
    struct fx *f = *state;
    struct rec r = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    r.cancel_at_data = 1;
    start(f, &r, "/chunked", NULL); /* NCHUNKS chunks 5 ms apart, then the end */
    run_until(f, &r.datas, 1, 5000);
    assert_int_equal(lg_upclient_active(f->client), 0); /* cancelled: no longer the owner's */
    run_until(f, NULL, 0, 150);
    assert_int_equal(r.dones + r.datas, 1); /* nothing delivered after the cancel */
    start(f, &r2, "/ok", NULL);
    run_until(f, &r2.dones, 1, 5000);
    assert_int_equal(r2.result, 0);
    assert_int_equal(f->srv.accepted, 1); /* the cancelled transfer's connection was reused */

    /* never ends: cut after the drain window, the next transfer needs a new connection */
    r3.cancel_at_data = 1;
    start(f, &r3, "/drip", NULL);
    run_until(f, &r3.datas, 1, 5000);
    run_until(f, NULL, 0, 600);
    start(f, &r4, "/ok", NULL);
    run_until(f, &r4.dones, 1, 5000);
    assert_int_equal(r4.result, 0);
    assert_int_equal(r3.datas, 1);
    assert_int_equal(r3.dones, 0);
    assert_int_equal(f->srv.accepted, 2);
    assert_int_equal(lg_upclient_active(f->client), 0);
    rec_free(&r);
    rec_free(&r2);
    rec_free(&r3);
    rec_free(&r4);
}

static void test_client_abort_from_on_data(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    r.abort_at_data = 1;
    start(f, &r, "/chunked", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.datas, 1);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.result, LG_ECANCELLED);
    rec_free(&r);
}

static void test_client_pause_resume_chunked(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    char want[256] = "";
    for (int i = 0; i < NCHUNKS; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "data: chunk-%d\n\n", i);
    r.pause_each = 1;
    r.resume_ms = 12; /* longer than the 5 ms between chunks: curl must hold data, and the end arrives while paused */
    start(f, &r, "/chunked", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.result, 0);
    assert_int_equal(r.data_while_paused, 0);
    assert_int_equal(r.done_while_paused, 0);
    assert_string_equal(r.body, want);
    rec_free(&r);
}

static void test_client_pause_resume_big(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_xfer_opts_t o = {.idle_timeout_ms = 1000, .total_timeout_ms = 10000};
    r.pause_each = 1;
    start(f, &r, "/big", &o);
    run_until(f, &r.dones, 1, 10000);
    assert_int_equal(r.result, 0);
    assert_int_equal(r.data_while_paused, 0);
    assert_int_equal(r.done_while_paused, 0);
    assert_int_equal(r.body_len, BIG_LEN);
    assert_true(r.datas >= 2);
    for (size_t i = 0; i < BIG_LEN; i++)
        if (r.body[i] != (char)('a' + i % 26))
            fail_msg("byte %zu out of order", i);
    rec_free(&r);
}

static void test_client_start_from_callback(void **state)
{
    struct fx *f = *state;
    struct rec a = {0}, b = {0};
    a.start_in_head = &b;
    start(f, &a, "/chunked", NULL);
    run_until(f, &a.dones, 1, 5000);
    run_until(f, &b.dones, 1, 5000);
    assert_int_equal(a.result, 0);
    assert_int_equal(b.result, 0);
    assert_string_equal(b.body, "{\"ok\":true}");
    assert_int_equal(lg_upclient_active(f->client), 0);
    rec_free(&a);
    rec_free(&b);
}

static void test_client_concurrent(void **state)
{
    struct fx *f = *state;
    struct rec r[5];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 5; i++)
        start(f, &r[i], "/chunked", NULL);
    for (int i = 0; i < 5; i++)
        run_until(f, &r[i].dones, 1, 5000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].result, 0);
        assert_string_equal(r[i].body, "data: chunk-0\n\ndata: chunk-1\n\ndata: chunk-2\n\ndata: chunk-3\n\ndata: chunk-4\n\n");
        rec_free(&r[i]);
    }
    assert_int_equal(f->srv.accepted, 5); /* HTTP/1.1: one connection per concurrent transfer */
}

static void test_client_host_connection_cap(void **state)
{
    struct fx *f = *state;
    lg_upclient_opts_t o = {.max_host_connections = 2, .max_total_connections = 4, .max_connects = 4};
    lg_upclient_t *main_client = f->client;
    struct rec r[6];
    int closed_before = f->closed;
    memset(r, 0, sizeof(r));
    f->client = lg_upclient_create(&f->loop, &o);
    assert_non_null(f->client);
    for (int i = 0; i < 6; i++)
        start(f, &r[i], "/chunked", NULL);
    for (int i = 0; i < 6; i++)
        run_until(f, &r[i].dones, 1, 5000);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].result, 0);
        rec_free(&r[i]);
    }
    assert_int_equal(f->srv.accepted, 2);
    lg_upclient_destroy(f->client, on_client_closed, f);
    run_until(f, &f->closed, closed_before + 1, 2000);
    assert_int_equal(f->closed, closed_before + 1);
    f->client = main_client;
    f->closed = closed_before;
}

/* cancel / abort inside on_data while curl re-delivers held bytes after a resume (inside curl_easy_pause) */
static void test_client_cancel_during_redelivery(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    r.pause_each = 1;
    r.cancel_at_data = 3;
    start(f, &r, "/big", NULL);
    run_until(f, &r.datas, 3, 5000);
    run_until(f, NULL, 0, 30);
    assert_int_equal(r.datas, 3);
    assert_int_equal(r.dones, 0);
    assert_int_equal(lg_upclient_active(f->client), 0);
    rec_free(&r);
}

static void test_client_abort_during_redelivery(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    r.pause_each = 1;
    r.abort_at_data = 3;
    start(f, &r, "/big", NULL);
    run_until(f, &r.dones, 1, 5000);
    assert_int_equal(r.datas, 3);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.result, LG_ECANCELLED);
    assert_int_equal(lg_upclient_active(f->client), 0);
    rec_free(&r);
}

static void test_client_crlf_rejected(void **state)
{
    struct fx *f = *state;
    struct rec r = {0};
    lg_http_req_t req;
    char err[128];
    memset(&req, 0, sizeof(req));
    req.url = (char *)url(f, "/ok");
    req.headers[0].name = (char *)"X-Test";
    req.headers[0].value = (char *)"a\r\nInjected: 1";
    req.num_headers = 1;
    err[0] = '\0';
    assert_null(lg_xfer_start(f->client, &req, NULL, &CBS, &r, err, sizeof(err)));
    assert_non_null(strstr(err, "CR/LF"));
    req.headers[0].name = (char *)"X-Te\nst";
    req.headers[0].value = (char *)"ok";
    err[0] = '\0';
    assert_null(lg_xfer_start(f->client, &req, NULL, &CBS, &r, err, sizeof(err)));
    assert_true(err[0] != '\0');
    req.headers[0].name = (char *)"X-Test";
    req.headers[0].value = (char *)"lone\rcr";
    assert_null(lg_xfer_start(f->client, &req, NULL, &CBS, &r, NULL, 0));
    assert_int_equal(lg_upclient_active(f->client), 0);
    run_until(f, NULL, 0, 10);
    assert_int_equal(f->srv.requests, 0);
    assert_int_equal(r.heads + r.datas + r.dones, 0);
}

static void test_client_destroy_in_flight(void **state)
{
    struct fx *f = *state;
    struct rec a = {0}, b = {0}, c = {0}, d = {0};
    start(f, &a, "/slowhead", NULL);
    start(f, &b, "/stall", NULL);
    start(f, &c, "/drip", NULL);
    run_until(f, &b.datas, 1, 5000); /* mid-body */
    run_until(f, &c.datas, 1, 5000);
    assert_int_equal(b.heads + c.heads, 2);
    start(f, &d, "/ok", NULL); /* not even connected yet */
    assert_int_equal(lg_upclient_active(f->client), 4);
    lg_upclient_destroy(f->client, on_client_closed, f);
    f->client = NULL;
    run_until(f, &f->closed, 1, 2000);
    assert_int_equal(f->closed, 1);
    assert_int_equal(a.dones + b.dones + c.dones + d.dones, 0);
    rec_free(&a);
    rec_free(&b);
    rec_free(&c);
    rec_free(&d);
}

static struct fx *g_destroy_fx;

static void destroy_on_done(void *ctx, lg_xfer_t *x, int result, const char *msg)
{
    struct rec *r = ctx;
    (void)x;
    (void)msg;
    r->dones++;
    r->result = result;
    lg_upclient_destroy(g_destroy_fx->client, on_client_closed, g_destroy_fx);
    g_destroy_fx->client = NULL;
}

static void test_client_destroy_from_on_done(void **state)
{
    struct fx *f = *state;
    struct rec a = {0}, b = {0};
    lg_http_req_t req;
    lg_xfer_callbacks_t cbs = {t_on_head, t_on_data, destroy_on_done};
    memset(&req, 0, sizeof(req));
    req.method = (char *)"GET";
    req.url = (char *)url(f, "/ok");
    g_destroy_fx = f;
    a.f = f;
    assert_non_null(lg_xfer_start(f->client, &req, NULL, &cbs, &a, NULL, 0));
    start(f, &b, "/slowhead", NULL);
    run_until(f, &f->closed, 1, 5000);
    assert_int_equal(a.dones, 1);
    assert_int_equal(a.result, 0);
    assert_int_equal(b.dones, 0);
    rec_free(&a);
    rec_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_large_post_no_expect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_status_429, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_1xx_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_first_byte_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_total_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_public_addresses_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_big_over_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_too_many_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cancel_in_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cancel_in_on_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cancel_before_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cancel_keeps_connection_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_abort_from_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_pause_resume_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_pause_resume_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_start_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_host_connection_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cancel_during_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_abort_during_redelivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_crlf_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_destroy_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_destroy_from_on_done, setup, teardown),
    };
    lg_upclient_global_init();
    return cmocka_run_group_tests_name("upstream_client", tests, NULL, NULL);
}
