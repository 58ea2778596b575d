/* SPDX-License-Identifier: MIT */
/*
 * A worker thread owns one libuv loop, one h2o context, one upstream curl
 * multi, and a "runtime" per config snapshot it serves: the plugin instances
 * and the Lua policy VM built for that snapshot. Requests hold a reference to
 * the runtime they started on, so a reload lets them finish on the old one.
 */
#ifndef LG_RUNTIME_WORKER_H
#define LG_RUNTIME_WORKER_H

#include <stdatomic.h>
#include <h2o.h>
#include <uv.h>
#include "auth/abuse.h"
#include "runtime/runtime.h"
#include "upstream/client.h"

struct lg_pipeline_worker;

typedef struct lg_listener {
    uv_tcp_t tcp;
    h2o_accept_ctx_t accept_ctx;
    struct lg_worker *worker;
    int closing;
} lg_listener_t;

typedef struct lg_worker {
    unsigned index;
    uv_loop_t loop;
    h2o_context_t ctx;
    uv_thread_t thread;
    uv_async_t wakeup;
    lg_upclient_t *up;
    lg_runtime_t *rt; /* current runtime */
    lg_listener_t *listeners;
    size_t num_listeners;
    _Atomic(lg_snapshot_t *) pending_snapshot; /* set by the main thread on reload, with a reference */
    _Atomic int stop_requested;                /* 1 = drain, 2 = stop now */
    int draining;
    unsigned in_flight;                  /* requests being handled */
    _Atomic unsigned in_flight_shared;   /* copy of in_flight readable by the main thread */
    struct lg_pipeline_worker *pipeline; /* provider queue and live exchanges (owned; the pipeline layer is above this one) */
    int cut;                             /* shutdown deadline passed: live exchanges were ended */
    uv_timer_t cut_grace;                /* bounds the flush of their last bytes */
    lg_abuse_table_t abuse;              /* rapid-reset guard, per connection */
    uint64_t drain_began_ms;             /* frontdoor.c: wall-clock ms when SIGTERM reached this worker (0 = not draining) */
} lg_worker_t;

/** Worker bookkeeping for requests that outlive on_req (graceful shutdown waits for them). */
void lg__worker_request_begin(lg_worker_t *w);
void lg__worker_request_done(lg_worker_t *w);

#endif
