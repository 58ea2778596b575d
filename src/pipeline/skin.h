/* SPDX-License-Identifier: MIT */
/*
 * The ingress skin seam: one small vtable per client wire format (OpenAI chat,
 * legacy completions, embeddings, Anthropic Messages; the Responses API is the
 * next one). A skin parses the client body into the internal request and
 * shapes every byte the client receives; attempts and relay never look at the
 * format. Declared here, below http, so the pipeline depends on the interface
 * and the skins (src/http/skin_*.c) implement it.
 */
#ifndef LG_PIPELINE_SKIN_H
#define LG_PIPELINE_SKIN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/util.h"
#include "llmgate/plugin.h"
#include "metrics/metrics.h"
#include "router/router.h" /* lg_gen_request_t (domain request type) */

/** What a skin needs to label its output. Borrowed, valid during the call. */
typedef struct lg_skin_info {
    const char *gen_id;             /* "gen-..." (the skin may derive its own ids from it) */
    const char *model;              /* public model that serves (or was requested, before one served) */
    const char *provider;           /* provider that serves, "" before one did */
    int64_t created;                /* Unix time of the answer */
    int64_t prompt_tokens_estimate; /* for formats that announce input tokens up front */
    const json_t *skin_data;        /* what the skin's parse kept for its answers (lg_gen_request_t.skin_data), or NULL */
} lg_skin_info_t;

/**
 * One chunk of the internal stream. `obj` is the normal form (an OpenAI chat.completion.chunk body holding `choices`,
 * as plugins produce it; header members are the skin's to set). `raw`/`raw_len` is the upstream event's data span
 * when the source and plugin can offer it (pass-through: a skin that speaks the upstream's format may forward it with
 * only gateway-owned members rewritten); NULL today. A skin must handle obj; raw is an optimisation.
 */
typedef struct lg_skin_chunk {
    const json_t *obj;
    const char *raw;
    size_t raw_len;
} lg_skin_chunk_t;

/** A failure the client is told about, in the skin's error shape. */
typedef struct lg_skin_error {
    int err;                   /* lg_err_t */
    int status;                /* HTTP status (already resolved) */
    const char *message;       /* never NULL */
    const char *provider_code; /* "" if none */
} lg_skin_error_t;

/**
 * The vtable. Every emitting function appends to out (capped: a non-zero return = the cap was hit, and the relay
 * ends the response) and returns 0. Stream functions take the per-response state made by stream_open.
 */
typedef struct lg_skin {
    const char *name;       /* "chat", "completions", "embeddings", "messages" (logs) */
    const char *route;      /* ledger `api` and access-log `route`, e.g. "chat/completions" */
    lg_route_t metrics;     /* metrics route label */
    lg_api_kind_t kind;     /* what plugins are asked for */
    int comments_forwarded; /* upstream SSE comments reach the client (OpenAI formats: yes; Anthropic: never) */

    /** Parse and validate the client body into r (disposed on error); err names the field. Returns 0 or an lg_err_t. */
    int (*parse)(const char *body, size_t len, lg_gen_request_t *r, char *err, size_t errlen);

    /** Per-response stream state, made when the SSE response starts (may return NULL if the skin needs none). */
    void *(*stream_open)(const lg_skin_info_t *info);
    void (*stream_close)(void *st);
    /** One content-bearing (or held role) chunk. */
    int (*stream_chunk)(void *st, const lg_skin_info_t *info, const lg_skin_chunk_t *chunk, lg_buf_t *out);
    /** Keep-alive before the first chunk (a comment, or a ping event). */
    int (*stream_keepalive)(void *st, const lg_skin_info_t *info, lg_buf_t *out);
    /** An upstream SSE comment after the commit point (only called when comments_forwarded). */
    int (*stream_comment)(void *st, const char *text, size_t len, lg_buf_t *out);
    /** Successful end: final usage (borrowed; OpenAI usage with cost) and the terminator. */
    int (*stream_finish)(void *st, const lg_skin_info_t *info, const json_t *usage, lg_buf_t *out);
    /** Failed end after the stream started: the error event, what was billed (usage, may be NULL), the terminator. */
    int (*stream_error)(void *st, const lg_skin_info_t *info, const lg_skin_error_t *e, const json_t *usage, lg_buf_t *out);

    /** Whole-body success: resp (stolen) is the plugin's normal-form response, usage (borrowed) the final usage. */
    json_t *(*response)(const lg_skin_info_t *info, json_t *resp, const json_t *usage);
    /** Whole-body error. *status is the status to send (the skin may change it, e.g. 529); meta stolen, may be NULL. */
    json_t *(*error_body)(const lg_skin_error_t *e, int *status, json_t *meta);
    /** The client speaks OpenAI chat/completions wire format: an upstream that does too (LG_CAP_WIRE_OPENAI) may be
     * passed through as bytes with only the gateway-owned members rewritten (src/pipeline/wire.h). */
    int wire_openai;
} lg_skin_t;

#endif
