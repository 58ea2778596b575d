/* SPDX-License-Identifier: MIT */
/*
 * A worker thread owns one libuv loop, one h2o context, one upstream curl
 * multi, and a "runtime" per config snapshot it serves: the plugin instances
 * and the Lua policy VM built for that snapshot. Requests hold a reference to
 * the runtime they started on, so a reload lets them finish on the old one.
 */
#ifndef LG_HTTP_WORKER_H
#define LG_HTTP_WORKER_H

#include <stdatomic.h>
#include <h2o.h>
#include <uv.h>
#include "core/snapshot.h"
#include "http/abuse.h"
#include "policy/policy.h"
#include "upstream/client.h"

struct lg_exchange;

typedef struct lg_runtime {
    struct lg_worker *worker;
    lg_snapshot_t *snap;
    void **pstates;     /* [num_providers] plugin instance per provider, NULL if not routable */
    lg_policy_vm_t *vm; /* NULL only if creation failed (then the built-in order is used) */
    unsigned refcnt;    /* worker's "current" reference + one per request; worker-thread only */
} lg_runtime_t;

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
    unsigned in_flight;                          /* requests being handled */
    _Atomic unsigned in_flight_shared;           /* copy of in_flight readable by the main thread */
    struct lg_exchange *waitq_head, *waitq_tail; /* requests waiting for a provider slot */
    uv_timer_t waitq_timer;
    int waitq_timer_active;
    lg_abuse_table_t abuse;  /* rapid-reset guard, per connection */
    uint64_t drain_began_ms; /* frontdoor.c: wall-clock ms when SIGTERM reached this worker (0 = not draining) */
} lg_worker_t;

/** Take / drop a request's reference on a runtime (worker thread). */
lg_runtime_t *lg_runtime_ref(lg_runtime_t *rt);
void lg_runtime_unref(lg_runtime_t *rt);

#endif
