/* SPDX-License-Identifier: MIT */
/*
 * Upstream HTTP client: one CURLM per worker driven by the worker's uv loop
 * (curl's docs/examples/multi-uv.c shape: uv_poll_t per curl socket, one
 * uv_timer_t for CURLMOPT_TIMERFUNCTION), plus per-transfer deadline timers,
 * bounded response-header capture, pause/resume and cancellation that never
 * removes an easy handle from inside a libcurl callback.
 */
#include "upstream/client.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <curl/curl.h>

#include "core/log.h"
#include "core/util.h"

#define MOD "lg/upstream"

#define HDR_MAX_COUNT 100
#define HDR_MAX_BYTES (64 * 1024)

#define DEFAULT_MAX_HOST_CONNECTIONS 256
#define DEFAULT_MAX_TOTAL_CONNECTIONS 1024
#define DEFAULT_MAX_CONNECTS 512

/* A cancelled HTTP/1.1 transfer cannot be stopped without closing its connection. If the response may be about to
 * end, let it run to completion in the background, discarding the body, so the connection goes back to the pool:
 * a client that cancels a request cannot make us open a new upstream connection per request. Bounded in time and
 * bytes so a long generation is still cut (and its tokens stop costing) right away. */
#define DRAIN_MS 300
#define DRAIN_MAX_BYTES (256 * 1024)

/* ---- tiny intrusive list ---- */
struct link {
    struct link *prev, *next;
};

static void link_init(struct link *l)
{
    l->prev = l->next = l;
}

static int link_linked(const struct link *l)
{
    return l->next != l;
}

static void link_insert_tail(struct link *head, struct link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

static void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- state ---- */

/** One curl socket watched by libuv. Freed in the uv_close callback. */
struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    lg_upclient_t *c;
    struct link link; /* in c->socks while open */
    int closing;
};

struct hdr_ent {
    uint32_t name_off, value_off; /* into x->hbuf */
};

struct lg_xfer {
    lg_upclient_t *c;
    CURL *easy;
    struct link link;    /* c->xfers while not finished */
    struct link pending; /* c->pending when deferred work is queued */
    uv_timer_t timer;    /* deadlines; its close callback frees the xfer */
    lg_xfer_callbacks_t cb;
    void *ctx;
    lg_xfer_opts_t opts;
    struct curl_slist *hdrs;
    char *body;               /* our copy of the request body */
    uint64_t t_start, t_last; /* loop ms: start, last body activity (idle deadline base) */
    size_t resp_bytes;
    /* response headers of the final block: "name\0value\0" records */
    char *hbuf;
    size_t hlen, hcap;
    struct hdr_ent hent[HDR_MAX_COUNT];
    size_t nhdr;
    int status;
    unsigned char added;       /* in the multi handle */
    unsigned char head_done;   /* on_head delivered (or due) */
    unsigned char paused;      /* consumer asked for no more on_data */
    unsigned char curl_paused; /* we returned CURL_WRITEFUNC_PAUSE: curl holds data until CURLPAUSE_CONT */
    unsigned char cancelled;   /* lg_xfer_cancel: no callbacks at all any more */
    unsigned char draining;    /* cancelled, but left to finish (DRAIN_MS) so its HTTP/1.1 connection is reused */
    unsigned char tls;         /* https:// (h2 via ALPN: a cancel is a stream reset, nothing to drain) */
    uint64_t drain_until;      /* loop ms */
    size_t drain_bytes;
    unsigned char want_add;     /* curl_multi_add_handle deferred (started inside a curl callback) */
    unsigned char want_unpause; /* resume deferred to the pending queue */
    unsigned char stashed;      /* curl finished while paused; on_done waits for resume */
    unsigned char finished;     /* detached from the client; only the timer close is outstanding */
    int abort_code;             /* lg_err_t decided by us (cap, callback abort); 0 = none */
    int stash_result;
    char msg[256];
    char errbuf[CURL_ERROR_SIZE];
};

struct lg_upclient {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share;
    uv_timer_t timer; /* CURLMOPT_TIMERFUNCTION */
    uv_timer_t defer; /* runs the pending queue on the next loop iteration */
    struct link xfers, pending, socks;
    size_t active;
    size_t open_handles; /* uv handles whose close callback has not run yet */
    int in_curl;         /* > 0 while inside a libcurl call that may run callbacks */
    int in_timer_cb;     /* inside our curl timer callback: a 0 ms timeout becomes 1 ms */
    int depth;           /* nesting of our uv callbacks (destroy is deferred until 0) */
    int destroying;
    int torn_down;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

/* ---- helpers ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void maybe_finalize(lg_upclient_t *c)
{
    if (c->torn_down && c->open_handles == 0) {
        void (*cb)(void *) = c->on_closed;
        void *arg = c->closed_arg;
        free(c);
        if (cb != NULL)
            cb(arg);
    }
}

static void teardown(lg_upclient_t *c);

static void enter(lg_upclient_t *c)
{
    c->depth++;
}

static void leave(lg_upclient_t *c)
{
    if (--c->depth == 0 && c->destroying && !c->torn_down)
        teardown(c);
}

static void process_pending(lg_upclient_t *c);

static void on_defer(uv_timer_t *t)
{
    lg_upclient_t *c = CONTAINER_OF(t, lg_upclient_t, defer);
    if (c->destroying)
        return;
    enter(c);
    process_pending(c);
    leave(c);
}

static void enqueue(lg_xfer_t *x)
{
    lg_upclient_t *c = x->c;
    if (!link_linked(&x->pending))
        link_insert_tail(&c->pending, &x->pending);
    /* Usually the dispatch that queued this drains the queue right away; the 0 ms timer covers calls from outside our
     * callbacks (e.g. lg_xfer_resume from an h2o proceed()). */
    if (!uv_is_active((uv_handle_t *)&c->defer))
        uv_timer_start(&c->defer, on_defer, 0, 0);
}

/** Record a failure decided by us; the transfer ends with on_done(code, msg) once we are outside curl callbacks. */
static void set_abort(lg_xfer_t *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_abort(lg_xfer_t *x, int code, const char *fmt, ...)
{
    va_list ap;
    if (x->abort_code != 0 || x->cancelled || x->finished)
        return;
    x->abort_code = code;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
    va_end(ap);
    enqueue(x);
}

/* ---- deadlines ---- */

static void on_xfer_timer(uv_timer_t *t);

static void arm_timer(lg_xfer_t *x)
{
    uint64_t now = uv_now(x->c->loop), next = UINT64_MAX;
    if (x->finished)
        return;
    if (x->opts.total_timeout_ms != 0)
        next = x->t_start + x->opts.total_timeout_ms;
    if (!x->stashed) {
        if (!x->head_done && x->opts.first_byte_timeout_ms != 0 && x->t_start + x->opts.first_byte_timeout_ms < next)
            next = x->t_start + x->opts.first_byte_timeout_ms;
        if (x->head_done && !x->paused && x->opts.idle_timeout_ms != 0 && x->t_last + x->opts.idle_timeout_ms < next)
            next = x->t_last + x->opts.idle_timeout_ms;
    }
    if (next == UINT64_MAX)
        uv_timer_stop(&x->timer);
    else
        uv_timer_start(&x->timer, on_xfer_timer, next > now ? next - now : 0, 0);
}

/* ---- completion ---- */

static void on_xfer_closed(uv_handle_t *h)
{
    lg_xfer_t *x = CONTAINER_OF(h, lg_xfer_t, timer);
    lg_upclient_t *c = x->c;
    free(x);
    c->open_handles--;
    maybe_finalize(c);
}

static void xfer_free(lg_xfer_t *x)
{
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    x->easy = NULL;
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    free(x->body);
    x->body = NULL;
    free(x->hbuf);
    x->hbuf = NULL;
    uv_close((uv_handle_t *)&x->timer, on_xfer_closed);
}

/** Take the easy handle out of the multi. Never from inside a libcurl callback. */
static void xfer_detach(lg_xfer_t *x)
{
    assert(x->c->in_curl == 0);
    if (x->added) {
        CURLMcode mc = curl_multi_remove_handle(x->c->multi, x->easy);
        if (mc != CURLM_OK)
            LG_LOG(LG_LOG_ERR, MOD, "curl_multi_remove_handle: %s", curl_multi_strerror(mc));
        x->added = 0;
    }
}

/** End the transfer: detach, optionally call on_done, free. Only outside libcurl callbacks. */
static void xfer_complete(lg_xfer_t *x, int notify, int result, const char *msg)
{
    lg_upclient_t *c = x->c;
    if (x->finished)
        return;
    xfer_detach(x);
    if (link_linked(&x->pending))
        link_remove(&x->pending);
    link_remove(&x->link);
    if (!x->draining)
        c->active--; /* a draining transfer left the count when it was cancelled */
    x->finished = 1;
    uv_timer_stop(&x->timer);
    if (notify && !x->cancelled && !c->destroying && x->cb.on_done != NULL)
        x->cb.on_done(x->ctx, x, result, msg != NULL ? msg : "");
    xfer_free(x);
}

static void on_xfer_timer(uv_timer_t *t)
{
    lg_xfer_t *x = CONTAINER_OF(t, lg_xfer_t, timer);
    lg_upclient_t *c = x->c;
    uint64_t now = uv_now(c->loop), best = UINT64_MAX;
    const char *kind = NULL;
    uint32_t ms = 0;

    if (x->draining && !x->finished && !c->destroying) {
        if (now >= x->drain_until) {
            enter(c);
            xfer_complete(x, 0, 0, NULL); /* did not finish in time: the connection is closed after all */
            process_pending(c);
            leave(c);
        } else {
            uv_timer_start(&x->timer, on_xfer_timer, x->drain_until - now, 0);
        }
        return;
    }
    if (x->finished || x->cancelled || x->abort_code != 0 || c->destroying)
        return; /* the pending queue ends it */
    if (!x->stashed && !x->head_done && x->opts.first_byte_timeout_ms != 0 && x->t_start + x->opts.first_byte_timeout_ms <= now) {
        best = x->t_start + x->opts.first_byte_timeout_ms;
        kind = "first byte";
        ms = x->opts.first_byte_timeout_ms;
    }
    if (!x->stashed && x->head_done && !x->paused && x->opts.idle_timeout_ms != 0 && x->t_last + x->opts.idle_timeout_ms <= now &&
        x->t_last + x->opts.idle_timeout_ms < best) {
        best = x->t_last + x->opts.idle_timeout_ms;
        kind = "idle";
        ms = x->opts.idle_timeout_ms;
    }
    if (x->opts.total_timeout_ms != 0 && x->t_start + x->opts.total_timeout_ms <= now &&
        x->t_start + x->opts.total_timeout_ms < best) {
        kind = "total";
        ms = x->opts.total_timeout_ms;
    }
    if (kind == NULL) {
        arm_timer(x); /* the idle base moved since the timer was armed */
        return;
    }
    snprintf(x->msg, sizeof(x->msg), "%s timeout after %u ms", kind, (unsigned)ms);
    enter(c);
    xfer_complete(x, 1, LG_ETIMEOUT, x->msg);
    process_pending(c);
    leave(c);
}

static int map_curl_result(lg_xfer_t *x, CURLcode rc)
{
    const char *detail = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OK) {
        x->msg[0] = '\0';
        return 0;
    }
    snprintf(x->msg, sizeof(x->msg), "%.200s (curl %d)", detail, (int)rc);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return LG_ETIMEOUT;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_FILESIZE_EXCEEDED:
        return LG_EBADRESPONSE;
    default:
        /* connect failures, resets, GOT_NOTHING, PARTIAL_FILE, HTTP2 / HTTP2_STREAM, TLS errors, ... */
        return LG_EUPSTREAM;
    }
}

/** curl reported CURLMSG_DONE for x. */
static void on_curl_done(lg_xfer_t *x, CURLcode rc)
{
    int result;
    if (x->cancelled) {
        xfer_complete(x, 0, 0, NULL);
        return;
    }
    if (x->abort_code != 0) {
        xfer_complete(x, 1, x->abort_code, x->msg);
        return;
    }
    result = map_curl_result(x, rc);
    if (x->paused) {
        /* The consumer asked for no more callbacks for now: release the connection, hold the outcome until resume. */
        xfer_detach(x);
        x->stashed = 1;
        x->stash_result = result;
        arm_timer(x); /* only the total deadline still applies */
        return;
    }
    xfer_complete(x, 1, result, x->msg);
}

static void check_multi_info(lg_upclient_t *c)
{
    CURLMsg *m;
    int left;
    while (!c->destroying && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        CURL *easy;
        CURLcode rc;
        lg_xfer_t *x = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        /* copy everything we need: the message is gone after curl_multi_remove_handle */
        easy = m->easy_handle;
        rc = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (x != NULL && !x->finished)
            on_curl_done(x, rc);
    }
}

static void drive(lg_upclient_t *c, curl_socket_t fd, int flags)
{
    int running = 0;
    CURLMcode mc;
    c->in_curl++;
    mc = curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    if (mc != CURLM_OK)
        LG_LOG(LG_LOG_ERR, MOD, "curl_multi_socket_action: %s", curl_multi_strerror(mc));
    check_multi_info(c);
    process_pending(c);
}

static void xfer_add(lg_xfer_t *x)
{
    CURLMcode mc = curl_multi_add_handle(x->c->multi, x->easy);
    if (mc == CURLM_OK)
        x->added = 1;
    else
        set_abort(x, LG_EUPSTREAM, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
}

static void xfer_unpause(lg_xfer_t *x)
{
    lg_upclient_t *c = x->c;
    CURLcode rc;
    if (x->paused || x->cancelled || x->abort_code != 0)
        return;
    if (x->stashed) {
        xfer_complete(x, 1, x->stash_result, x->msg);
        return;
    }
    x->t_last = uv_now(c->loop);
    arm_timer(x);
    if (!x->curl_paused)
        return;
    x->curl_paused = 0;
    /* Re-delivers the bytes curl held back through cb_write (possibly pausing again) */
    c->in_curl++;
    rc = curl_easy_pause(x->easy, CURLPAUSE_CONT);
    c->in_curl--;
    if (rc != CURLE_OK && !x->cancelled && x->abort_code == 0 && !x->finished)
        set_abort(x, LG_EUPSTREAM, "resume failed: %s", curl_easy_strerror(rc));
}

/** Run deferred work: removals, deferred adds, resumes. Only outside libcurl callbacks. */
static void process_pending(lg_upclient_t *c)
{
    while (!c->destroying && link_linked(&c->pending)) {
        lg_xfer_t *x = CONTAINER_OF(c->pending.next, lg_xfer_t, pending);
        link_remove(&x->pending);
        if (x->draining) {
            if (x->curl_paused) { /* curl holds bytes for us: take them (and discard) */
                x->curl_paused = 0;
                c->in_curl++;
                CURLcode prc = curl_easy_pause(x->easy, CURLPAUSE_CONT);
                c->in_curl--;
                if (prc != CURLE_OK)
                    xfer_complete(x, 0, 0, NULL);
            }
        } else if (x->cancelled) {
            xfer_complete(x, 0, 0, NULL);
        } else if (x->abort_code != 0) {
            xfer_complete(x, 1, x->abort_code, x->msg);
        } else if (x->want_add) {
            x->want_add = 0;
            xfer_add(x);
        } else if (x->want_unpause) {
            x->want_unpause = 0;
            xfer_unpause(x);
        }
    }
    if (!link_linked(&c->pending))
        uv_timer_stop(&c->defer);
}

/* ---- curl multi callbacks ---- */

static void on_sock_closed(uv_handle_t *h)
{
    struct sock_ctx *s = CONTAINER_OF(h, struct sock_ctx, poll);
    lg_upclient_t *c = s->c;
    free(s);
    c->open_handles--;
    maybe_finalize(c);
}

static void sock_close(struct sock_ctx *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    link_remove(&s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *s = CONTAINER_OF(h, struct sock_ctx, poll);
    lg_upclient_t *c = s->c;
    int flags = 0;
    if (s->closing || c->destroying)
        return;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    enter(c);
    drive(c, s->fd, flags);
    leave(c);
}

static int cb_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    lg_upclient_t *c = userp;
    struct sock_ctx *s = socketp;
    int events = 0;
    (void)easy;

    if (c->torn_down)
        return 0; /* teardown closes every poll itself */
    if (what == CURL_POLL_REMOVE) {
        /* curl calls this before it closes fd: stop polling now, free asynchronously */
        if (s != NULL) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (c->destroying)
        return 0;
    if (s == NULL) {
        int r;
        s = lg_calloc(1, sizeof(*s));
        s->c = c;
        s->fd = fd;
        if ((r = uv_poll_init_socket(c->loop, &s->poll, fd)) != 0) {
            LG_LOG(LG_LOG_ERR, MOD, "uv_poll_init_socket(%d): %s", (int)fd, uv_strerror(r));
            free(s);
            return -1;
        }
        c->open_handles++;
        link_insert_tail(&c->socks, &s->link);
        curl_multi_assign(c->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_curl_timer(uv_timer_t *t)
{
    lg_upclient_t *c = CONTAINER_OF(t, lg_upclient_t, timer);
    if (c->destroying)
        return;
    enter(c);
    c->in_timer_cb++;
    drive(c, CURL_SOCKET_TIMEOUT, 0);
    c->in_timer_cb--;
    leave(c);
}

static int cb_timer(CURLM *multi, long timeout_ms, void *userp)
{
    lg_upclient_t *c = userp;
    (void)multi;
    if (c->torn_down)
        return 0;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
        return 0;
    }
    /* 0 = "as soon as possible, but not from within this callback". A 0 ms libuv timer runs on the next timer phase;
     * when we are already inside our timer callback, libuv 1.44 would run it again in the same phase without polling
     * I/O, so use 1 ms there. */
    if (timeout_ms == 0 && c->in_timer_cb > 0)
        timeout_ms = 1;
    uv_timer_start(&c->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- curl easy callbacks ---- */

static int head_complete(lg_xfer_t *x, int status)
{
    lg_upclient_t *c = x->c;
    int r = 0;
    x->head_done = 1;
    x->status = status;
    x->t_last = uv_now(c->loop);
    arm_timer(x);
    if (x->cb.on_head != NULL)
        r = x->cb.on_head(x->ctx, x, status);
    if (x->draining && !c->destroying)
        return 0; /* cancelled in on_head: read on quietly */
    if (x->cancelled || c->destroying)
        return -1;
    if (r != 0) {
        set_abort(x, LG_ECANCELLED, "aborted by on_head");
        return -1;
    }
    return 0;
}

static void hdr_reset(lg_xfer_t *x)
{
    x->nhdr = 0;
    x->hlen = 0;
}

/** Store one "Name: value" line (without CRLF). Returns -1 when over the caps. */
static int hdr_add(lg_xfer_t *x, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    size_t nlen, vlen, need;
    const char *v, *end = line + len;
    if (colon == NULL || colon == line)
        return 0; /* not a header line; ignore */
    nlen = (size_t)(colon - line);
    while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
        nlen--;
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    vlen = (size_t)(end - v);
    need = nlen + vlen + 2;
    if (x->nhdr >= HDR_MAX_COUNT || x->hlen + need > HDR_MAX_BYTES)
        return -1;
    if (x->hlen + need > x->hcap) {
        size_t cap = x->hcap != 0 ? x->hcap : 1024;
        char *nb;
        while (cap < x->hlen + need)
            cap *= 2;
        if (cap > HDR_MAX_BYTES)
            cap = HDR_MAX_BYTES;
        nb = realloc(x->hbuf, cap);
        if (nb == NULL)
            abort();
        x->hbuf = nb;
        x->hcap = cap;
    }
    x->hent[x->nhdr].name_off = (uint32_t)x->hlen;
    memcpy(x->hbuf + x->hlen, line, nlen);
    x->hlen += nlen;
    x->hbuf[x->hlen++] = '\0';
    x->hent[x->nhdr].value_off = (uint32_t)x->hlen;
    memcpy(x->hbuf + x->hlen, v, vlen);
    x->hlen += vlen;
    x->hbuf[x->hlen++] = '\0';
    x->nhdr++;
    return 0;
}

static size_t cb_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    lg_xfer_t *x = userdata;
    size_t len = size * nitems, l = len;

    if (x->draining && !x->c->destroying)
        return len; /* read on to the end of the response; nothing is delivered */
    if (x->cancelled || x->abort_code != 0 || x->c->destroying)
        return 0; /* makes curl fail the transfer; the removal happens outside this callback */
    if (x->head_done)
        return len; /* trailers: ignored */
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        hdr_reset(x); /* a new header block (after a 1xx) */
        return len;
    }
    while (l > 0 && (buf[l - 1] == '\r' || buf[l - 1] == '\n'))
        l--;
    if (l == 0) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 100 && code < 200) {
            hdr_reset(x); /* informational block (100 Continue, 103 Early Hints): not the response */
            return len;
        }
        return head_complete(x, (int)code) == 0 ? len : 0;
    }
    if (buf[0] == ' ' || buf[0] == '\t')
        return len; /* obsolete line folding: ignored */
    if (hdr_add(x, buf, l) != 0) {
        set_abort(x, LG_EBADRESPONSE, "response headers exceed %d headers or %d bytes", HDR_MAX_COUNT, HDR_MAX_BYTES);
        return 0;
    }
    return len;
}

/* 1 for addresses an outsider-chosen URL must not reach: this host, private networks, link-local, CGNAT, multicast. */
static int address_is_internal(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || (a & 0xffc00000u) == 0x64400000u ||
               (a & 0xffff0000u) == 0xa9fe0000u || (a & 0xfff00000u) == 0xac100000u || (a & 0xffff0000u) == 0xc0a80000u ||
               (a >> 28) >= 14;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4;
            memset(&v4, 0, sizeof(v4));
            v4.sin_family = AF_INET;
            memcpy(&v4.sin_addr, a->s6_addr + 12, 4);
            return address_is_internal((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
               (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return 1;
}

/* CURLOPT_OPENSOCKETFUNCTION for public_addresses_only: checked on the resolved address, so DNS cannot smuggle 10.x in */
static curl_socket_t cb_opensocket_public(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)clientp;
    if (purpose != CURLSOCKTYPE_IPCXN || address_is_internal(&addr->addr))
        return CURL_SOCKET_BAD;
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static size_t cb_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    lg_xfer_t *x = userdata;
    lg_upclient_t *c = x->c;
    size_t len = size * nmemb;
    int r = 0;

    if (x->draining && !c->destroying) {
        x->drain_bytes += len;
        return x->drain_bytes <= DRAIN_MAX_BYTES ? len : 0; /* past the cap: give up the connection */
    }
    if (x->cancelled || x->abort_code != 0 || c->destroying)
        return 0;
    if (!x->head_done) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        if (head_complete(x, (int)code) != 0)
            return 0;
    }
    if (x->paused) {
        /* Not consumed: curl keeps these bytes and hands them to us again after curl_easy_pause(CURLPAUSE_CONT). */
        x->curl_paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (x->opts.max_response_bytes != 0 && len > x->opts.max_response_bytes - x->resp_bytes) {
        set_abort(x, LG_EBADRESPONSE, "response body exceeds %zu bytes", x->opts.max_response_bytes);
        return 0;
    }
    x->resp_bytes += len;
    x->t_last = uv_now(c->loop);
    if (x->cb.on_data != NULL)
        r = x->cb.on_data(x->ctx, x, ptr, len);
    if (x->draining && !c->destroying)
        return len; /* cancelled in on_data: read on quietly */
    if (x->cancelled || c->destroying)
        return 0;
    if (r < 0) {
        set_abort(x, LG_ECANCELLED, "aborted by on_data");
        return 0;
    }
    if (r == 1 && !x->paused) {
        /* The bytes were consumed; only later deliveries stop (the next one returns CURL_WRITEFUNC_PAUSE). */
        x->paused = 1;
        arm_timer(x); /* no idle deadline while paused */
    }
    return len;
}

/* ---- public API ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_ALL);
    if (rc != CURLE_OK) {
        LG_LOG(LG_LOG_ERR, MOD, "curl_global_init: %s", curl_easy_strerror(rc));
        abort();
    }
}

void lg_upclient_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

lg_upclient_t *lg_upclient_create(uv_loop_t *loop, const lg_upclient_opts_t *opts)
{
    lg_upclient_t *c;
    long max_host = DEFAULT_MAX_HOST_CONNECTIONS, max_total = DEFAULT_MAX_TOTAL_CONNECTIONS, max_conn = DEFAULT_MAX_CONNECTS;

    assert(loop != NULL);
    lg_upclient_global_init();
    if (opts != NULL) {
        if (opts->max_host_connections > 0)
            max_host = opts->max_host_connections;
        if (opts->max_total_connections > 0)
            max_total = opts->max_total_connections;
        if (opts->max_connects > 0)
            max_conn = opts->max_connects;
    }

    c = lg_calloc(1, sizeof(*c));
    c->loop = loop;
    link_init(&c->xfers);
    link_init(&c->pending);
    link_init(&c->socks);
    if ((c->multi = curl_multi_init()) == NULL || (c->share = curl_share_init()) == NULL) {
        if (c->multi != NULL)
            curl_multi_cleanup(c->multi);
        free(c);
        return NULL;
    }
    /* One share per worker, used by one thread only: no lock callbacks needed. Connections are already shared by all
     * transfers through the multi handle's own connection cache (which honours the MAXCONNECTS cap). */
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, cb_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, cb_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, max_conn);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer);
    c->open_handles = 2;
    return c;
}

static void on_client_timer_closed(uv_handle_t *h)
{
    lg_upclient_t *c = h->data;
    c->open_handles--;
    maybe_finalize(c);
}

static void teardown(lg_upclient_t *c)
{
    c->torn_down = 1; /* from here on cb_socket / cb_timer do nothing */
    /* stop polling before curl closes any socket (in-flight transfers and cached connections) */
    while (link_linked(&c->socks))
        sock_close(CONTAINER_OF(c->socks.next, struct sock_ctx, link));
    while (link_linked(&c->xfers)) {
        lg_xfer_t *x = CONTAINER_OF(c->xfers.next, lg_xfer_t, link);
        link_remove(&x->link);
        if (link_linked(&x->pending))
            link_remove(&x->pending);
        uv_timer_stop(&x->timer);
        if (x->added)
            curl_multi_remove_handle(c->multi, x->easy);
        x->added = 0;
        x->finished = 1;
        xfer_free(x);
    }
    c->active = 0;
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    curl_share_cleanup(c->share);
    c->share = NULL;
    c->timer.data = c;
    c->defer.data = c;
    uv_close((uv_handle_t *)&c->timer, on_client_timer_closed);
    uv_close((uv_handle_t *)&c->defer, on_client_timer_closed);
}

void lg_upclient_destroy(lg_upclient_t *c, void (*on_closed)(void *arg), void *arg)
{
    if (c == NULL || c->destroying)
        return;
    c->destroying = 1;
    c->on_closed = on_closed;
    c->closed_arg = arg;
    if (c->depth == 0)
        teardown(c);
    /* else: called from inside one of our callbacks; the outermost one tears down when it returns */
}

size_t lg_upclient_active(const lg_upclient_t *c)
{
    return c != NULL ? c->active : 0;
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int valid_header_name(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch == ':' || ch == 0x7f)
            return 0;
    }
    return 1;
}

static int valid_method(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

lg_xfer_t *lg_xfer_start(lg_upclient_t *c, const lg_http_req_t *req, const lg_xfer_opts_t *opts, const lg_xfer_callbacks_t *cb,
                         void *ctx, char *err, size_t errlen)
{
    static char empty_body[] = "";
    struct curl_slist *hdrs = NULL;
    const char *method;
    int has_expect = 0;
    lg_xfer_t *x;
    CURL *e;
    size_t i;

    assert(c != NULL && req != NULL && cb != NULL);
    if (c->destroying) {
        set_err(err, errlen, "upstream client is shutting down");
        return NULL;
    }
    if (req->url == NULL || req->url[0] == '\0' || has_crlf(req->url) || strchr(req->url, ' ') != NULL) {
        set_err(err, errlen, "invalid upstream URL");
        return NULL;
    }
    method = req->method != NULL ? req->method : "POST";
    if (!valid_method(method)) {
        set_err(err, errlen, "invalid HTTP method");
        return NULL;
    }
    if (req->num_headers > LG_HTTP_MAX_HEADERS) {
        set_err(err, errlen, "too many request headers (%zu > %d)", req->num_headers, LG_HTTP_MAX_HEADERS);
        return NULL;
    }
    for (i = 0; i < req->num_headers; i++) {
        const lg_header_t *h = &req->headers[i];
        char *line;
        size_t nlen, vlen;
        struct curl_slist *n;
        if (h->name == NULL || h->value == NULL || has_crlf(h->name) || has_crlf(h->value) || !valid_header_name(h->name)) {
            set_err(err, errlen, "invalid request header #%zu (%s): CR/LF or bad name", i,
                    h->name != NULL && !has_crlf(h->name) ? h->name : "?");
            curl_slist_free_all(hdrs);
            return NULL;
        }
        if (strcasecmp(h->name, "expect") == 0)
            has_expect = 1;
        nlen = strlen(h->name);
        vlen = strlen(h->value);
        line = lg_malloc(nlen + vlen + 3);
        if (vlen == 0) /* "Name:" would tell curl to remove the header; "Name;" sends it empty */
            snprintf(line, nlen + vlen + 3, "%s;", h->name);
        else
            snprintf(line, nlen + vlen + 3, "%s: %s", h->name, h->value);
        n = curl_slist_append(hdrs, line);
        free(line);
        if (n == NULL)
            abort();
        hdrs = n;
    }
    if (!has_expect) {
        /* curl adds "Expect: 100-continue" to big bodies; that costs a round trip (or a 1 s wait) per request */
        struct curl_slist *n = curl_slist_append(hdrs, "Expect:");
        if (n == NULL)
            abort();
        hdrs = n;
    }

    if ((e = curl_easy_init()) == NULL)
        abort();
    x = lg_calloc(1, sizeof(*x));
    x->c = c;
    x->easy = e;
    x->hdrs = hdrs;
    x->cb = *cb;
    x->ctx = ctx;
    if (opts != NULL)
        x->opts = *opts;
    link_init(&x->link);
    link_init(&x->pending);
    if (req->body != NULL && req->body_len > 0) {
        x->body = lg_malloc(req->body_len);
        memcpy(x->body, req->body, req->body_len);
    }

    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* h2 only over TLS via ALPN; HTTP/1.1 keep-alive for http:// (h2c reuse is broken in 7.88.1, curl #10634) */
    /* Cleartext upstreams get plain HTTP/1.1: with "2TLS" curl 7.88 still treats a half-open http:// connection as
     * possibly multiplexable and holds concurrent transfers to a new host until the first response starts (their
     * first-byte deadlines then expire while they wait). */
    int tls = strncasecmp(req->url, "https://", 8) == 0;
    x->tls = (unsigned char)tls;
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)(tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1));
    /* Wait for a possibly-multiplexed connection only where h2 can happen (TLS). For http:// curl 7.88 would still make
     * concurrent transfers wait for the first connection and then queue some behind it although HTTP/1.1 cannot
     * multiplex (measured: 5 concurrent SSE transfers used 4 connections, one ran after another finished). */
    if (tls)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 300L);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    if (x->opts.connect_timeout_ms != 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)x->opts.connect_timeout_ms);
    if (x->opts.public_addresses_only)
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, cb_opensocket_public);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cb_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cb_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    /* no CURLOPT_ACCEPT_ENCODING: SSE must arrive unbuffered and undecoded */
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(x->body != NULL ? req->body_len : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body != NULL ? x->body : empty_body);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

    uv_timer_init(c->loop, &x->timer);
    c->open_handles++;
    link_insert_tail(&c->xfers, &x->link);
    c->active++;
    x->t_start = x->t_last = uv_now(c->loop);
    arm_timer(x);
    if (c->in_curl > 0) {
        /* curl refuses curl_multi_add_handle from inside its callbacks */
        x->want_add = 1;
        enqueue(x);
    } else {
        xfer_add(x);
    }
    return x;
}

void lg_xfer_cancel(lg_xfer_t *x)
{
    if (x == NULL || x->finished || x->cancelled)
        return;
    x->cancelled = 1;
    if (x->added && !x->stashed && x->abort_code == 0 && !x->tls && !x->c->destroying) {
        /* no callback follows either way; the transfer frees itself when curl is done or DRAIN_MS have passed */
        x->draining = 1;
        x->c->active--; /* nobody owns it any more: not "active" for lg_upclient_active */
        x->drain_until = uv_now(x->c->loop) + DRAIN_MS;
        uv_timer_start(&x->timer, on_xfer_timer, DRAIN_MS, 0);
        if (x->curl_paused)
            enqueue(x); /* resumed from the pending queue, outside any curl callback */
        return;
    }
    if (x->c->in_curl > 0) {
        /* inside a curl callback: its return value makes curl stop the transfer; the removal comes after */
        enqueue(x);
        return;
    }
    xfer_complete(x, 0, 0, NULL);
}

void lg_xfer_resume(lg_xfer_t *x)
{
    if (x == NULL || x->finished || x->cancelled || !x->paused)
        return;
    x->paused = 0;
    if (x->curl_paused || x->stashed) {
        /* never re-enter callbacks synchronously: curl_easy_pause(CONT) re-delivers data, so do it from the queue */
        x->want_unpause = 1;
        enqueue(x);
        return;
    }
    x->t_last = uv_now(x->c->loop);
    arm_timer(x);
}

const char *lg_xfer_header(const lg_xfer_t *x, const char *name)
{
    size_t i;
    if (x == NULL || name == NULL || x->hbuf == NULL)
        return NULL;
    for (i = 0; i < x->nhdr; i++)
        if (strcasecmp(x->hbuf + x->hent[i].name_off, name) == 0)
            return x->hbuf + x->hent[i].value_off;
    return NULL;
}

int lg_xfer_status(const lg_xfer_t *x)
{
    return x != NULL && x->head_done ? x->status : 0;
}
