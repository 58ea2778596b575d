/* SPDX-License-Identifier: MIT */
/*
 * The request pipeline's public face, for the HTTP handler: a worker's
 * pipeline state (provider queue, live exchanges), and one exchange's entry
 * points in the order the handler uses them: create, route, admit, run.
 * Everything after run (attempts, relay, settlement) happens inside.
 * See src/pipeline/README.md for the modules and their seams.
 */
#ifndef LG_PIPELINE_PIPELINE_H
#define LG_PIPELINE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include <jansson.h>
#include <uv.h>
#include "auth/keytable.h"
#include "core/snapshot.h"
#include "pipeline/skin.h"
#include "policy/policy.h"
#include "upstream/client.h"

typedef struct lg_exchange lg_exchange_t;

/** Per-worker pipeline state, embedded in the worker. Worker thread only. */
typedef struct lg_pipeline_worker {
    uv_loop_t *loop;
    lg_upclient_t *up;
    unsigned index;                         /* metrics shard */
    lg_exchange_t *waitq_head, *waitq_tail; /* exchanges waiting for a provider slot, FIFO */
    uv_timer_t waitq_timer;
    lg_exchange_t *live; /* every exchange not yet freed (shutdown cut) */
    void *owner;         /* the worker, for the hooks below */
    /** An exchange was freed (the worker's in-flight count). */
    void (*request_done)(void *owner);
    /** The client left before any answer on connection conn_id (rapid-reset accounting). */
    void (*note_cancel)(void *owner, uint64_t conn_id);
} lg_pipeline_worker_t;

/** What an exchange runs on: a worker runtime's snapshot, plugin instances and policy VM, held by one reference. */
typedef struct lg_pipeline_runtime {
    const lg_snapshot_t *snap;
    void **pstates;     /* [num_providers], NULL = not routable */
    lg_policy_vm_t *vm; /* NULL = built-in order */
    void *ref;          /* the reference, dropped with release(ref) when the exchange is freed */
    void (*release)(void *ref);
} lg_pipeline_runtime_t;

/** Set up pw on loop (its queue timer counts as a handle of the loop). */
void lg_pipeline_worker_init(lg_pipeline_worker_t *pw, uv_loop_t *loop, lg_upclient_t *up, unsigned index, void *owner);

/**
 * Shutdown deadline: every live exchange ends now. A stream that already started gets the skin's error event
 * (LG_ESHUTDOWN) and its terminator; one that did not gets a 503 in the skin's error shape. Each is settled (ledger
 * row, access log, metrics) before this returns; the bytes leave as the loop keeps running.
 */
void lg_pipeline_cut_all(lg_pipeline_worker_t *pw);

/**
 * New exchange for req with the ingress skin. Takes the runtime reference (rt->release runs when it is freed). Its
 * lifetime follows req (a dispose hook on req->pool) and the caller's own reference, dropped with lg_exchange_release.
 */
lg_exchange_t *lg_exchange_create(lg_pipeline_worker_t *pw, h2o_req_t *req, const lg_skin_t *skin, const lg_pipeline_runtime_t *rt);
/** The internal request the skin parses into. */
lg_gen_request_t *lg_exchange_request(lg_exchange_t *x);
/** Generation id ("gen-..."). */
const char *lg_exchange_id(const lg_exchange_t *x);
/** The calling key (reference taken over; NULL when the gateway runs open). */
void lg_exchange_set_key(lg_exchange_t *x, lg_key_entry_t *key);
lg_key_entry_t *lg_exchange_key(const lg_exchange_t *x);
/** The request parsed: find its candidate endpoints. Returns 0, or an lg_err_t with err (and *meta, owned) set. */
int lg_exchange_route(lg_exchange_t *x, json_t **meta, char *err, size_t errlen);
/** Admission charged the key's limits: settle them when the exchange ends. */
void lg_exchange_admitted(lg_exchange_t *x);
/** Answer with an error before any attempt, in the skin's shape (status 0 = the error's own; meta stolen). */
void lg_exchange_refuse(lg_exchange_t *x, int err, int status, const char *msg, json_t *meta);
/** Build the plan and walk it: the exchange answers from here on. */
void lg_exchange_run(lg_exchange_t *x);
/** Drop the caller's reference (after any of the above). */
void lg_exchange_release(lg_exchange_t *x);

#endif
