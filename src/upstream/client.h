/* SPDX-License-Identifier: MIT */
/*
 * Upstream HTTP client: one libcurl multi handle per worker, driven by the
 * worker's libuv loop (uv_poll_t per curl socket, one uv_timer_t for curl's
 * timer), with connection reuse, capped connections, HTTP/2 over TLS where
 * the upstream offers it, HTTP/1.1 keep-alive for cleartext (curl 7.88.1's
 * h2c reuse is broken), and per-transfer connect / first-byte / idle / total
 * deadlines enforced by our own timers.
 *
 * Threading: everything here runs on the owning worker's loop thread.
 */
#ifndef LG_UPSTREAM_CLIENT_H
#define LG_UPSTREAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "llmgate/plugin.h"

typedef struct lg_upclient lg_upclient_t;
typedef struct lg_xfer lg_xfer_t;

typedef struct lg_upclient_opts {
    long max_host_connections;  /* CURLMOPT_MAX_HOST_CONNECTIONS, default 256 */
    long max_total_connections; /* CURLMOPT_MAX_TOTAL_CONNECTIONS, default 1024 */
    long max_connects;          /* connection cache size, CURLMOPT_MAXCONNECTS, default 512 */
} lg_upclient_opts_t;

typedef struct lg_xfer_opts {
    uint32_t connect_timeout_ms;    /* 0 = none */
    uint32_t first_byte_timeout_ms; /* from start until response headers arrive */
    uint32_t idle_timeout_ms;       /* max gap between body bytes once the response started */
    uint32_t total_timeout_ms;      /* whole transfer */
    size_t max_response_bytes;      /* 0 = unlimited; exceeding it fails the transfer with LG_EBADRESPONSE */
    int public_addresses_only;      /* refuse to connect to loopback, private, link-local, CGNAT, multicast and reserved
                                       addresses (fetching URLs chosen by outsiders, e.g. OAuth client metadata; SSRF) */
} lg_xfer_opts_t;

/**
 * Callbacks. None is called after lg_xfer_cancel returns or after on_done. It is allowed to call lg_xfer_cancel or
 * lg_xfer_resume from inside on_head / on_data (never lg_upclient_destroy).
 */
typedef struct lg_xfer_callbacks {
    /** Response status line and headers are complete. Return 0 to continue, non-zero to abort (on_done follows with
     * LG_ECANCELLED unless cancelled). */
    int (*on_head)(void *ctx, lg_xfer_t *x, int status);
    /** Body bytes. Return 0 to continue, 1 to pause (call lg_xfer_resume later), -1 to abort. */
    int (*on_data)(void *ctx, lg_xfer_t *x, const char *data, size_t len);
    /** Transfer finished: result 0 = complete; else LG_ETIMEOUT (with which deadline in msg: "first byte timeout after
     * N ms", "idle timeout after N ms", "total timeout after N ms", or curl's connect-timeout text), LG_EUPSTREAM
     * (connect failure, reset, protocol error; msg = curl's error text), LG_EBADRESPONSE (over max_response_bytes,
     * response headers over 100 / 64 KiB, malformed response), LG_ECANCELLED (on_head non-zero / on_data -1).
     * msg is never NULL ("" on success). While the xfer is paused, on_done is held back until lg_xfer_resume (only
     * the total deadline still runs). The xfer is freed right after on_done returns. */
    void (*on_done)(void *ctx, lg_xfer_t *x, int result, const char *msg);
} lg_xfer_callbacks_t;

/** curl_global_init(CURL_GLOBAL_ALL) exactly once per process (pthread_once). Call from main before starting worker
 * threads; lg_upclient_create calls it too. */
void lg_upclient_global_init(void);

/** Create the client of one worker on loop (opts may be NULL; fields <= 0 take the defaults). NULL if curl fails. */
lg_upclient_t *lg_upclient_create(uv_loop_t *loop, const lg_upclient_opts_t *opts);
/** Abort all transfers (their on_done is NOT called) and close handles; memory is freed once the loop runs the close
 * callbacks, after which on_closed(arg) is called (may be NULL). */
void lg_upclient_destroy(lg_upclient_t *c, void (*on_closed)(void *arg), void *arg);

/**
 * Start a transfer. req is copied (the caller keeps ownership of req and may free it right after). Header values with
 * CR or LF are rejected (returns NULL with err). Returns NULL only on such invalid input.
 */
lg_xfer_t *lg_xfer_start(lg_upclient_t *c, const lg_http_req_t *req, const lg_xfer_opts_t *opts, const lg_xfer_callbacks_t *cb,
                         void *ctx, char *err, size_t errlen);
/** Stop a transfer now and free it; no callback follows. Safe inside this xfer's own callbacks (deferred removal). */
void lg_xfer_cancel(lg_xfer_t *x);
/** Undo a pause (on_data returned 1; no on_data or on_done is delivered and the idle deadline does not run while paused).
 * Never calls back synchronously: held bytes are delivered from a later loop iteration. */
void lg_xfer_resume(lg_xfer_t *x);
/** Response header lookup (case-insensitive name), valid from on_head until on_done; NULL if absent. */
const char *lg_xfer_header(const lg_xfer_t *x, const char *name);
/** Final response status (valid from on_head until on_done), 0 before headers. */
int lg_xfer_status(const lg_xfer_t *x);
/** Number of transfers in progress on this client. */
size_t lg_upclient_active(const lg_upclient_t *c);

#endif
