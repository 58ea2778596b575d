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
 * The skin's own checked view of one upstream event or reply on the pass-through path (opaque to the pipeline: the
 * skin that made it with wire_check reads it back). Fixed-size storage so the pipeline can keep one per exchange.
 */
typedef struct lg_skin_wire_view {
    _Alignas(8) unsigned char bytes[256];
} lg_skin_wire_view_t;

/** What wire_check tells the pipeline about an upstream event or reply. */
typedef enum lg_skin_wire_status {
    LG_SKIN_WIRE_OK = 0,    /* checked; view is valid */
    LG_SKIN_WIRE_ERROR = 1, /* carries an error object: the plugin's classify_error decides */
    LG_SKIN_WIRE_BAD = 2,   /* not trustworthy (broken JSON, invalid UTF-8, malformed choices): an upstream failure */
    LG_SKIN_WIRE_DONE = 3,  /* stream terminator ("[DONE]") */
} lg_skin_wire_status_t;

typedef struct lg_skin_wire_facts {
    size_t num_choices;     /* 0 = a usage-only chunk (the final usage chunk is the gateway's) */
    int has_content;        /* commits the stream */
    int64_t text_chars;     /* completion-token estimate when no usage comes */
    char finish_reason[32]; /* "" if none */
    json_t *usage;          /* the upstream usage, counts normalised (new reference, NULL if none) */
} lg_skin_wire_facts_t;

/**
 * One chunk of the internal stream: either `obj`, the normal form (an OpenAI chat.completion.chunk body holding
 * `choices`, as plugins produce it; header members are the skin's to set), or `wire`, the skin's checked view of an
 * upstream event it forwards with only gateway-owned members rewritten (pass-through; obj is NULL then).
 */
typedef struct lg_skin_chunk {
    const json_t *obj;
    const lg_skin_wire_view_t *wire;
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

    /*
     * Pass-through (optional, all NULL = this skin always translates): the skin speaks the wire format of plugins that
     * declare LG_CAP_WIRE_OPENAI, so for an attempt whose plugin accepts it the upstream body is made from the client's
     * bytes and the reply is forwarded, checked and with only the gateway-owned members rewritten; no plugin parse,
     * no trees.
     */
    /** Append the upstream body for upstream_model from the client's bytes. 0, or -1 (not possible: translate). */
    int (*wire_body)(const lg_gen_request_t *r, const char *upstream_model, int stream, lg_buf_t *out);
    /** Check one upstream event's data (whole = 0) or a whole reply body (whole = 1); fill view and facts. */
    lg_skin_wire_status_t (*wire_check)(const char *data, size_t len, int whole, lg_skin_wire_view_t *view,
                                        lg_skin_wire_facts_t *facts, char *err, size_t errlen);
    /** Whole-body success: the checked reply with owned members set and usage replaced by usage_json (raw JSON). */
    int (*wire_response)(const lg_skin_wire_view_t *view, const lg_skin_info_t *info, const char *usage_json, size_t usage_len,
                         lg_buf_t *out);
} lg_skin_t;

#endif
