/* SPDX-License-Identifier: MIT */
/*
 * The source seam: where the bytes of one attempt's upstream reply come from.
 * A source delivers head (status), body bytes and done through three events,
 * always from the loop (never from inside start), and stops at once on cancel.
 * Kinds today: the curl transfer (source_curl.c) and the in-process provider
 * feed for LG_CAP_LOCAL plugins (source_local.c). A response-cache source that
 * replays a stored answer is one more ops table: the reply decoder, attempts
 * and relay stay as they are.
 */
#ifndef LG_PIPELINE_SOURCE_H
#define LG_PIPELINE_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "core/config.h"
#include "core/util.h"
#include "llmgate/plugin.h"
#include "upstream/client.h"

typedef struct lg_source lg_source_t;

/** What the pipeline hears from a source. ctx is lg_source_t.ctx. */
typedef struct lg_source_events {
    /** Status line and headers are in (lg_source_header works from now on). */
    void (*on_head)(void *ctx, int status);
    /** Body bytes. Return 0 to go on, 1 to pause (the pipeline calls resume once the client caught up). */
    int (*on_data)(void *ctx, const char *data, size_t len);
    /** The reply ended: result 0 = complete, else an lg_err_t with a message ("" if none). No event follows. */
    void (*on_done)(void *ctx, int result, const char *msg);
} lg_source_events_t;

/** Everything a source needs to start one attempt. Borrowed during start only (the call is copied where needed). */
typedef struct lg_source_args {
    uv_loop_t *loop;
    lg_upclient_t *up;              /* worker's curl multi */
    const lg_provider_t *prov;      /* plugin of the endpoint */
    void *pstate;                   /* plugin instance */
    const lg_call_t *call;          /* the upstream call (valid for the whole attempt: it lives in the exchange) */
    const lg_provider_conf_t *conf; /* timeouts */
    size_t max_response_bytes;      /* whole-body cap, 0 = none (streams cap per event instead) */
    lg_buf_t *capture_body;         /* non-NULL: the upstream request body as built is copied here (debug echo) */
} lg_source_args_t;

typedef struct lg_source_ops {
    const char *name; /* "curl", "local" (logs) */
    /** Start. Returns 0, or an lg_err_t with e filled (nothing started, no event follows). */
    int (*start)(lg_source_t *s, const lg_source_args_t *a, lg_upstream_error_t *e);
    /** Stop now; no event follows. Safe from inside this source's own events. Idempotent. */
    void (*cancel)(lg_source_t *s);
    /** Undo a pause requested by on_data returning 1. Never calls back synchronously. */
    void (*resume)(lg_source_t *s);
    /** Reply header (case-insensitive name) between on_head and on_done; NULL if absent or not applicable. */
    const char *(*header)(const lg_source_t *s, const char *name);
} lg_source_ops_t;

/**
 * A source slot, embedded in the exchange and reused by every attempt. `timer` is for sources that pace themselves
 * (local feed, cache replay): initialised with lg_source_init, closed with lg_source_close.
 */
struct lg_source {
    const lg_source_ops_t *ops; /* NULL = idle */
    const lg_source_events_t *events;
    void *ctx;
    uv_timer_t timer;
    union {
        struct {
            lg_xfer_t *xfer;
        } curl;
        struct {
            lg_local_resp_t resp;
            size_t pos;
            int head_sent;
            int paused;
        } local;
    } u;
    void *priv; /* other kinds (a cache replay) keep their state here and free it in cancel */
};

extern const lg_source_ops_t lg_source_curl;
extern const lg_source_ops_t lg_source_local;
/** Replays a stored response-cache entry (slot priv = the entry, its reference handed to the source). */
extern const lg_source_ops_t lg_source_cache;

/** The source kind that serves an endpoint of this plugin (in-process plugins answer locally). */
const lg_source_ops_t *lg_source_for(const lg_provider_t *prov);

/** Bind events to the slot and initialise its timer on loop (counts as one open handle of the owner). */
void lg_source_init(lg_source_t *s, uv_loop_t *loop, const lg_source_events_t *events, void *ctx);
/** Start an attempt with ops in the slot. Returns 0 or an lg_err_t with e filled. */
int lg_source_start(lg_source_t *s, const lg_source_ops_t *ops, const lg_source_args_t *a, lg_upstream_error_t *e);
/** Cancel whatever runs in the slot (no event follows); the slot is idle afterwards. */
void lg_source_cancel(lg_source_t *s);
void lg_source_resume(lg_source_t *s);
const char *lg_source_header(const lg_source_t *s, const char *name);
/** Cancel and close the timer; on_closed runs for it (uv_close semantics). */
void lg_source_close(lg_source_t *s, uv_close_cb on_closed);

#endif
