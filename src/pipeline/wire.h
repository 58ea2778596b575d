/* SPDX-License-Identifier: MIT */
/*
 * Private to src/pipeline: the OpenAI wire pass-through of one attempt. When
 * the skin speaks OpenAI (lg_skin_t.wire_openai) and the endpoint's plugin
 * accepts the call (LG_CAP_WIRE_OPENAI, wire_passthrough), the upstream body
 * is spliced from the client's bytes and the reply and every chunk are
 * checked and forwarded as bytes with only the gateway's members rewritten
 * (src/pipeline/passthru.h): no jansson tree on the whole path. Otherwise
 * nothing here runs and the plugin translates as before.
 */
#ifndef LG_PIPELINE_WIRE_H
#define LG_PIPELINE_WIRE_H

#include <stddef.h>
#include "core/util.h"
#include "llmgate/plugin.h"
#include "pipeline/passthru.h"

typedef struct lg_exchange lg_exchange_t;

typedef struct lg_wire {
    int on;        /* the live attempt forwards bytes */
    int done;      /* saw data: [DONE] */
    int finish;    /* saw a finish_reason */
    lg_buf_t body; /* the attempt's upstream body */
    lg_buf_t held; /* rewritten chunks held back before the commit point */
    size_t num_held;
    lg_buf_t head;      /* the owned members of this attempt's chunks, rendered once */
    lg_buf_t usage_raw; /* the upstream's usage object as sent (settlement's st.usage stays NULL on this path) */
    lg_pt_usage_t usage;
    int has_usage;
} lg_wire_t;

void lg_wire_init(lg_exchange_t *x, size_t max_body);
void lg_wire_dispose(lg_exchange_t *x);
/** Forget the attempt's state (held bytes, head); the usage of a finished attempt stays for settlement. */
void lg_wire_reset(lg_exchange_t *x);
/**
 * Called by attempts once x->at.call is filled (body NULL): decide whether this attempt passes through and, if so,
 * set call.wire_body. Returns 1 when it does; 0 means the caller gives the plugin the tree.
 */
int lg_wire_prepare(lg_exchange_t *x);
/** One SSE event of a pass-through stream (reply.c). Returns 1 when the attempt must stop (rp.aborted set). */
int lg_wire_event(lg_exchange_t *x, const lg_sse_event_t *ev);
/** The pass-through stream ended (reply.c): finish it, fall over, or end it with an error. */
void lg_wire_stream_end(lg_exchange_t *x);
/** A whole 2xx body of a pass-through attempt while the client does not stream (reply.c). */
void lg_wire_reply(lg_exchange_t *x);
/** Our usage object as bytes (upstream counts, estimates where none, cost); sets st.billed and st.cost_pico. */
int lg_wire_usage_bytes(lg_exchange_t *x, lg_buf_t *out);
/** The upstream usage as a tree, for error paths that report what was billed (NULL if none). */
json_t *lg_wire_usage_json(const lg_exchange_t *x);

#endif
