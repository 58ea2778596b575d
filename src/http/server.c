/* SPDX-License-Identifier: MIT */
/*
 * HTTP server: one h2o context and libuv loop per worker thread, each with
 * its own SO_REUSEPORT listening sockets (the kernel spreads connections),
 * optional TLS with ALPN h2, config publication by async wake-up, and
 * graceful shutdown (stop accepting, drain, then stop the loops).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cluster/cluster.h"
#include "core/log.h"
#include "core/util.h"
#include "http/dashboard.h"
#include "http/frontdoor.h"
#include "http/handlers.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "pipeline/cache.h"
#include "pipeline/pipeline.h"
#include "runtime/worker.h"

static h2o_globalconf_t globalconf;
static h2o_handler_t *root_handler;
static lg_worker_t *workers;
static unsigned num_workers;
static SSL_CTX **ssl_ctxs; /* per listener config; shared by workers (SSL_CTX is thread-safe after setup) */
static lg_snapshot_t *start_snapshot;
static int64_t started_at;
static uv_sem_t workers_ready;

int64_t lg_server_started_at(void)
{
    return started_at;
}

unsigned lg_server_num_workers(void)
{
    return num_workers;
}

unsigned lg_server_in_flight(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < num_workers; ++i)
        n += atomic_load_explicit(&workers[i].in_flight_shared, memory_order_relaxed);
    return n;
}

/* ---- listeners ---- */

static int parse_address(const char *address, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, address, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof(*sin);
        return 0;
    }
    const char *a = address;
    char tmp[64];
    size_t alen = strlen(address);
    if (alen > 2 && alen < sizeof(tmp) && a[0] == '[' && a[alen - 1] == ']') {
        memcpy(tmp, a + 1, alen - 2);
        tmp[alen - 2] = '\0';
        a = tmp;
    }
    if (inet_pton(AF_INET6, a, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
        return 0;
    }
    if (strcmp(address, "localhost") == 0)
        return parse_address("127.0.0.1", port, ss, len);
    return -1;
}

static int open_listen_socket(const lg_listener_conf_t *lc, int reuseport, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_address(lc->address, lc->port, &ss, &sslen) != 0) {
        snprintf(err, errlen, "listener %s:%u: not an IP address", lc->address, lc->port);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "listener %s:%u: %s", lc->address, lc->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void on_accept(uv_stream_t *server, int status)
{
    lg_listener_t *l = (lg_listener_t *)server;
    if (status != 0 || l->closing)
        return;
    uv_tcp_t *conn = lg_malloc(sizeof(*conn));
    uv_tcp_init(server->loop, conn);
    if (uv_accept(server, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&l->accept_ctx, sock);
}

static void close_listeners(lg_worker_t *w)
{
    for (size_t i = 0; i < w->num_listeners; ++i) {
        if (w->listeners[i].closing)
            continue;
        w->listeners[i].closing = 1;
        uv_close((uv_handle_t *)&w->listeners[i].tcp, NULL);
    }
}

/* ---- worker thread ---- */

static void maybe_finish_drain(lg_worker_t *w)
{
    if (w->draining && w->in_flight == 0)
        uv_stop(&w->loop);
}

void lg__worker_request_done(lg_worker_t *w)
{
    --w->in_flight;
    atomic_store_explicit(&w->in_flight_shared, w->in_flight, memory_order_relaxed);
    maybe_finish_drain(w);
}

void lg__worker_request_begin(lg_worker_t *w)
{
    ++w->in_flight;
    atomic_store_explicit(&w->in_flight_shared, w->in_flight, memory_order_relaxed);
}

static void on_cut_grace(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* The drain deadline passed: end every live exchange with its error event and terminator (each is settled and
 * recorded), let the loop flush those bytes for a moment, then stop. */
static void cut_in_flight(lg_worker_t *w)
{
    if (w->cut)
        return;
    w->cut = 1;
    lg_pipeline_cut_all(w->pipeline);
    if (w->in_flight == 0) {
        uv_stop(&w->loop);
        return;
    }
    uv_timer_init(&w->loop, &w->cut_grace);
    uv_timer_start(&w->cut_grace, on_cut_grace, 500, 0);
}

static void on_wakeup(uv_async_t *async)
{
    lg_worker_t *w = async->data;
    lg_snapshot_t *snap = atomic_exchange(&w->pending_snapshot, NULL);
    if (snap != NULL) {
        lg_runtime_t *old = w->rt;
        w->rt = lg_runtime_create(w, snap);
        lg_runtime_unref(old); /* in-flight requests keep the old runtime alive until they finish */
        LG_LOG(LG_LOG_INFO, "worker", "worker %u now serves config generation %llu", w->index,
               (unsigned long long)snap->generation);
    }
    int stop = atomic_load(&w->stop_requested);
    if (stop >= 1 && !w->draining) {
        w->draining = 1;
        lg_frontdoor_begin_drain(w);
        close_listeners(w);
        h2o_context_request_shutdown(&w->ctx); /* GOAWAY to HTTP/2 clients, close idle HTTP/1 keep-alives */
        maybe_finish_drain(w);
    }
    if (stop >= 2)
        cut_in_flight(w);
}

static void worker_main(void *arg)
{
    lg_worker_t *w = arg;
    const lg_config_t *conf = start_snapshot->conf;
    uv_loop_init(&w->loop);
    h2o_context_init(&w->ctx, &w->loop, &globalconf);
    w->up = lg_upclient_create(&w->loop, NULL);
    lg_cluster_worker_attach(&w->loop, w->index); /* this worker's Redis connection (scale-out; no-op otherwise) */
    w->rt = lg_runtime_create(w, lg_snapshot_ref(start_snapshot));
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    lg__http_pipeline_init(w);

    w->num_listeners = conf->num_listeners;
    w->listeners = calloc(conf->num_listeners + 1, sizeof(*w->listeners));
    for (size_t i = 0; i < conf->num_listeners; ++i) {
        lg_listener_t *l = &w->listeners[i];
        char err[256];
        int fd = open_listen_socket(&conf->listeners[i], 1, err, sizeof(err));
        l->worker = w;
        l->accept_ctx.ctx = &w->ctx;
        l->accept_ctx.hosts = globalconf.hosts;
        l->accept_ctx.ssl_ctx = ssl_ctxs[i];
        uv_tcp_init(&w->loop, &l->tcp);
        if (fd < 0 || uv_tcp_open(&l->tcp, fd) != 0 || uv_listen((uv_stream_t *)&l->tcp, 1024, on_accept) != 0) {
            LG_LOG(LG_LOG_ERR, "server", "worker %u: %s", w->index, fd < 0 ? err : "cannot listen");
            l->closing = 1;
            uv_close((uv_handle_t *)&l->tcp, NULL);
        }
    }
    uv_sem_post(&workers_ready);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* The loop stopped: drained, or the shutdown deadline passed. Connections still open are closed by process exit;
     * the pipeline's state is not freed for the same reason (exchanges may still point at it until then). */
}

/* ---- start / publish / shutdown ---- */

static SSL_CTX *make_ssl_ctx(const lg_listener_conf_t *lc, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, lc->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, lc->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        char ossl[256];
        ERR_error_string_n(ERR_get_error(), ossl, sizeof(ossl));
        snprintf(err, errlen, "listener %s:%u: TLS certificate/key: %s", lc->address, lc->port, ossl);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

int lg_server_start(lg_snapshot_t *snap, char *err, size_t errlen)
{
    const lg_config_t *conf = snap->conf;
    started_at = lg_unix_time();
    h2o_config_init(&globalconf);
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("llmgate"));
    /* h2o refuses an HTTP/1 body over this limit from its Content-Length, before reading it (chunked: as soon as it
     * crosses it); frontdoor.c reshapes that 413. HTTP/2 bodies over it get RST_STREAM from h2o's DATA frame handler. */
    globalconf.max_request_entity_size = conf->max_body_bytes;
    h2o_hostconf_t *host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    root_handler = h2o_create_handler(path, sizeof(*root_handler));
    root_handler->on_req = lg_handle_request;
    lg_frontdoor_register(host); /* h2o's own 413/400/417 answers in the API's error shape */

    /* Refuse to share a port with another process: SO_REUSEPORT would let two gateways bind it silently. A plain bind
     * without SO_REUSEPORT fails if anyone holds the port. */
    ssl_ctxs = calloc(conf->num_listeners + 1, sizeof(*ssl_ctxs));
    for (size_t i = 0; i < conf->num_listeners; ++i) {
        int fd = open_listen_socket(&conf->listeners[i], 0, err, errlen);
        if (fd < 0)
            return -1;
        close(fd);
        if (conf->listeners[i].tls_cert != NULL && (ssl_ctxs[i] = make_ssl_ctx(&conf->listeners[i], err, errlen)) == NULL)
            return -1;
    }

    start_snapshot = lg_snapshot_ref(snap);
    num_workers = conf->workers != 0 ? conf->workers : 1;
    lg_metrics_register_gateway_collectors();
    lg_rcache_register_metrics();
    lg_dashboard_load_assets(); /* the page's files, read once: no disk I/O on the loops */
    workers = calloc(num_workers, sizeof(*workers));
    uv_sem_init(&workers_ready, 0);
    for (unsigned i = 0; i < num_workers; ++i) {
        workers[i].index = i;
        if (uv_thread_create(&workers[i].thread, worker_main, &workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %u", i);
            return -1;
        }
    }
    for (unsigned i = 0; i < num_workers; ++i)
        uv_sem_wait(&workers_ready);
    for (size_t i = 0; i < conf->num_listeners; ++i)
        LG_LOG(LG_LOG_INFO, "server", "listening on %s:%u (%s), %u workers", conf->listeners[i].address, conf->listeners[i].port,
               ssl_ctxs[i] != NULL ? "https, h2 via ALPN" : "http/1.1 and h2c", num_workers);
    return 0;
}

void lg_server_publish(lg_snapshot_t *snap)
{
    /* a plain size_t the workers read per request head: a torn read is impossible on the platforms we build for */
    globalconf.max_request_entity_size = snap->conf->max_body_bytes;
    for (unsigned i = 0; i < num_workers; ++i) {
        lg_snapshot_t *old = atomic_exchange(&workers[i].pending_snapshot, lg_snapshot_ref(snap));
        if (old != NULL)
            lg_snapshot_unref(old);
        uv_async_send(&workers[i].wakeup);
    }
    lg_snapshot_unref(snap);
}

unsigned lg_server_shutdown(uint32_t deadline_ms)
{
    for (unsigned i = 0; i < num_workers; ++i) {
        atomic_store(&workers[i].stop_requested, 1);
        uv_async_send(&workers[i].wakeup);
    }
    int64_t deadline = lg_now_ms() + deadline_ms;
    unsigned cut = 0;
    /* poll: the workers stop their loops once drained */
    while (lg_now_ms() < deadline && lg_server_in_flight() != 0)
        usleep(5000);
    cut = lg_server_in_flight();
    for (unsigned i = 0; i < num_workers; ++i) {
        atomic_store(&workers[i].stop_requested, 2);
        uv_async_send(&workers[i].wakeup);
    }
    for (unsigned i = 0; i < num_workers; ++i)
        uv_thread_join(&workers[i].thread);
    return cut;
}
