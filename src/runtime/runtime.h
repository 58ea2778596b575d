/* SPDX-License-Identifier: MIT */
/*
 * A runtime is what a worker serves one config snapshot with: the snapshot,
 * the plugin instances created for it and the Lua policy VM built for it.
 * Requests hold a reference to the runtime they started on, so a reload lets
 * them finish on the old one. Worker-thread only (the count is not atomic).
 */
#ifndef LG_RUNTIME_RUNTIME_H
#define LG_RUNTIME_RUNTIME_H

#include "policy/policy.h"
#include "runtime/snapshot.h"

struct lg_worker;

typedef struct lg_runtime {
    struct lg_worker *worker;
    lg_snapshot_t *snap;
    void **pstates;     /* [num_providers] plugin instance per provider, NULL if not routable */
    lg_policy_vm_t *vm; /* NULL only if creation failed (then the built-in order is used) */
    unsigned refcnt;    /* worker's "current" reference + one per request; worker-thread only */
} lg_runtime_t;

/**
 * Build the runtime of worker w for snap; takes the caller's reference on snap. A provider whose plugin refuses its
 * config, or a policy VM that cannot be created, is logged and left out (not routable / built-in order). Returns a
 * runtime with one reference.
 */
lg_runtime_t *lg_runtime_create(struct lg_worker *w, lg_snapshot_t *snap);
/** Take / drop a request's reference on a runtime (worker thread); the last drop destroys it. */
lg_runtime_t *lg_runtime_ref(lg_runtime_t *rt);
void lg_runtime_unref(lg_runtime_t *rt);

#endif
