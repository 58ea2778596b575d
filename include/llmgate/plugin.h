/* SPDX-License-Identifier: MIT */
/*
 * llmgate provider plugin ABI. A provider plugin is a shared object that
 * translates between the gateway's internal normal form (OpenAI Chat
 * Completions JSON) and one upstream API. Plugins are pure translators: they
 * build an upstream HTTP request description and parse bytes. They never do
 * I/O, never block, never keep global mutable state outside their instance.
 *
 * Versioning: same LG_PLUGIN_ABI_MAJOR = compatible. Minor versions only
 * append members to lg_host_api_t and lg_provider_t; every struct starts with
 * its size so either side can tell which members exist.
 *
 * JSON values cross the boundary as jansson `json_t *` (libjansson.so.4, whose
 * ABI is stable): the normal form is OpenAI JSON, and unknown request fields
 * must reach OpenAI-compatible upstreams losslessly, so a C view struct would
 * either lose data or parse twice. Ownership rules are stated per member.
 */
#ifndef LLMGATE_PLUGIN_H
#define LLMGATE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "llmgate/error.h"
#include "llmgate/log.h" /* LG_LOG_ERR .. LG_LOG_DEBUG for lg_host_api_t.log */

#ifdef __cplusplus
extern "C" {
#endif

#define LG_PLUGIN_ABI_MAJOR 1
#define LG_PLUGIN_ABI_MINOR 1

#if defined(__GNUC__)
#define LG_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define LG_PLUGIN_EXPORT
#endif

/* ---------------------------------------------------------------------------
 * Host → plugin: the function table the host hands to lg_plugin_init.
 * Valid for the whole life of the plugin (until the host dlcloses it).
 * ------------------------------------------------------------------------- */
typedef struct st_lg_host_api_t {
    uint32_t struct_size; /* sizeof(lg_host_api_t) as the host compiled it */
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t _reserved;

    /* ABI 1.0 and later */
    /** Allocate; never returns NULL (the host aborts on OOM). Free with free_mem. */
    void *(*alloc)(size_t size);
    void *(*realloc_mem)(void *p, size_t size);
    void (*free_mem)(void *p);
    /** Log a line tagged with the plugin name. Safe from any callback. Never log keys. */
    void (*log)(int level, const char *plugin_name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
    /** Monotonic clock in milliseconds. */
    int64_t (*now_ms)(void);
    /** Wall clock, seconds since the epoch (for `created` fields). */
    int64_t (*unix_time)(void);
    /** Per-thread pseudo-random 64-bit value (not for secrets). */
    uint64_t (*random_u64)(void);
} lg_host_api_t;

/* ---------------------------------------------------------------------------
 * Data crossing the boundary on the request path.
 * ------------------------------------------------------------------------- */

/** What kind of call the client made (which /v1 route). */
typedef enum {
    LG_API_CHAT = 0,        /* /v1/chat/completions */
    LG_API_COMPLETIONS = 1, /* /v1/completions (legacy prompt) */
    LG_API_EMBEDDINGS = 2,  /* /v1/embeddings */
} lg_api_kind_t;

/** One upstream call, as the host asks the plugin to make it. Read-only for the plugin; valid during the callback only
 * unless stated. */
typedef struct st_lg_call_t {
    uint32_t struct_size;
    lg_api_kind_t kind;
    int stream;                 /* client asked for stream:true */
    const json_t *body;         /* client request body in OpenAI shape; gateway-only routing fields (models, provider, route,
                                   transforms, plugins, usage, debug, session_id, trace) already removed. Borrowed. */
    const char *upstream_model; /* model name at the provider (catalog endpoint "model") */
    const char *public_model;   /* model id the client sees (catalog key, variant stripped) */
    int64_t max_output_tokens;  /* catalog max completion tokens for this endpoint, 0 = unknown */
    const char *request_id;     /* gateway generation id, e.g. "gen-..." */

    /* ABI 1.1 and later (read only when struct_size covers them) */
    const char *wire_body; /* OpenAI wire pass-through (LG_CAP_WIRE_OPENAI): the finished upstream body, made by the host
                              from the client's bytes (model = upstream_model, gateway-only fields removed, stream and
                              stream_options.include_usage set as for a stream, max_tokens dropped when
                              max_completion_tokens is present); body is NULL then. Send it unchanged. NULL otherwise. */
    size_t wire_body_len;
} lg_call_t;

/** One HTTP header. */
typedef struct st_lg_header_t {
    char *name;
    char *value;
} lg_header_t;

#define LG_HTTP_MAX_HEADERS 32

/**
 * Upstream request description filled by build_request. Every string member is allocated with host->alloc and owned
 * by the host after build_request returns (also on error: the host frees whatever is set). The host validates header
 * values for CR/LF before use.
 */
typedef struct st_lg_http_req_t {
    char *method; /* "POST" (default when NULL) or "GET" */
    char *url;    /* absolute http(s) URL */
    char *body;   /* request body bytes (need not be NUL-terminated) */
    size_t body_len;
    lg_header_t headers[LG_HTTP_MAX_HEADERS];
    size_t num_headers;
} lg_http_req_t;

/** One parsed server-sent event (from the host's SSE parser). Borrowed, valid during the callback only. */
typedef struct st_lg_sse_event_t {
    const char *event; /* value of the last `event:` field, "" when absent (never NULL) */
    size_t event_len;
    const char *data; /* `data:` lines joined with '\n' (NUL-terminated at data[data_len]) */
    size_t data_len;
    const char *id; /* value of `id:`, "" when absent */
    size_t id_len;
} lg_sse_event_t;

#define LG_STREAM_MAX_CHUNKS 8

/**
 * Output of parse_stream_event / stream_end. The plugin appends OpenAI `chat.completion.chunk` objects (or legacy
 * `text_completion` chunks for LG_API_COMPLETIONS) to chunks[]; ownership of each passes to the host. The plugin only
 * fills `choices` (and anything provider-specific it wants the client to see); the host sets id, object, created, model,
 * provider and never forwards a `usage` member from a chunk: usage goes into `usage` instead.
 */
typedef struct st_lg_stream_out_t {
    json_t *chunks[LG_STREAM_MAX_CHUNKS]; /* owned by the host after return */
    size_t num_chunks;
    json_t *usage;    /* OpenAI usage object seen in this event, or NULL; owned by the host; replaces earlier ones */
    int done;         /* the upstream signalled a proper end of stream ([DONE], message_stop, finishReason) */
    int error;        /* lg_err_t of an in-band error event, 0 if none */
    int error_status; /* HTTP-like status the upstream attached to the in-band error (0 if unknown) */
    char error_message[256];
    char provider_code[64]; /* upstream's native error code/type, "" if none */
} lg_stream_out_t;

/** Classification of a failed attempt. */
typedef struct st_lg_upstream_error_t {
    int err;                /* lg_err_t, e.g. LG_EUPSTREAM_RATELIMIT */
    int status;             /* upstream HTTP status (0 for transport errors) */
    int retryable;          /* 1 when another attempt (same or other endpoint) may succeed */
    int64_t retry_after_ms; /* from the body if the plugin found one; the host also reads the Retry-After header */
    char provider_code[64]; /* upstream's native error code/type */
    char message[256];      /* upstream's error message (never contains credentials) */
} lg_upstream_error_t;

/** Result of local_respond (providers that answer in-process, e.g. `mock`). */
typedef struct st_lg_local_resp_t {
    int status; /* HTTP status of the virtual upstream response */
    char *body; /* host->alloc'd bytes in the provider's own wire format (SSE when streaming), owned by host */
    size_t body_len;
    size_t chunk_bytes;      /* host feeds body to the parser in pieces of this size; 0 = all at once, or, when
                                chunk_delay_ms > 0, one SSE event (up to and including its blank line "\n\n") per piece */
    uint32_t chunk_delay_ms; /* delay between pieces (0 = none) */
    uint32_t first_delay_ms; /* delay before the first piece */
} lg_local_resp_t;

/* Capability bits for lg_provider_t.capabilities. */
#define LG_CAP_CHAT (1u << 0)
#define LG_CAP_COMPLETIONS (1u << 1)
#define LG_CAP_EMBEDDINGS (1u << 2)
#define LG_CAP_STREAM (1u << 3)
#define LG_CAP_LOCAL (1u << 4) /* answers in-process through local_respond; no network */
/* ABI 1.1: the upstream speaks the OpenAI chat wire format unchanged, so for calls wire_passthrough accepts the host
 * builds the upstream body from the client's bytes and forwards the reply and stream chunks itself (validated, with
 * only the members the gateway owns rewritten); parse_response / parse_stream_event are not called for such calls,
 * classify_error still is. */
#define LG_CAP_WIRE_OPENAI (1u << 5)

/* ---------------------------------------------------------------------------
 * Plugin → host: the provider table. Static storage in the plugin.
 * Callbacks run on a worker thread; one instance (state) is only ever used by
 * one thread, so instances need no locking. A stream state belongs to one
 * transfer.
 * ------------------------------------------------------------------------- */
typedef struct st_lg_provider_t {
    uint32_t struct_size; /* sizeof(lg_provider_t) as the plugin compiled it */
    uint32_t abi_major;   /* LG_PLUGIN_ABI_MAJOR */
    uint32_t abi_minor;   /* LG_PLUGIN_ABI_MINOR */
    uint32_t capabilities;
    const char *name;    /* plugin name, e.g. "openai" */
    const char *version; /* "x.y.z" */

    /* ABI 1.0 and later. Return 0 or an lg_err_t; on error write a reason to err. */

    /**
     * Create one instance for one configured provider on one worker. conf is the provider's config object (borrowed,
     * valid only during the call): {"name","base_url","api_key" (resolved, may be absent),"headers":{..},"options":{..}}.
     */
    int (*create)(const json_t *conf, void **state, lg_errbuf_t *err);
    void (*destroy)(void *state);

    /** Build the upstream request for call. Required unless LG_CAP_LOCAL. */
    int (*build_request)(void *state, const lg_call_t *call, lg_http_req_t *out, lg_errbuf_t *err);

    /**
     * Parse a complete non-streaming 2xx upstream body into an OpenAI response object (*out, owned by host). For chat:
     * {"choices":[{"index","message","finish_reason"}],"usage":{..}}; the host fills id/object/created/model/provider.
     * For embeddings: {"data":[..],"usage":{..}}. Returns LG_EBADRESPONSE (or another code) when the body is unusable,
     * or the classified error for 2xx bodies that carry an error object.
     */
    int (*parse_response)(void *state, const lg_call_t *call, int status, const char *body, size_t len, json_t **out,
                          lg_errbuf_t *err);

    /** Per-transfer stream state. stream_begin may set *sstate to NULL if the plugin needs none. */
    int (*stream_begin)(void *state, const lg_call_t *call, void **sstate);
    /** One SSE event from a 2xx streaming response. Comments never reach the plugin. */
    int (*parse_stream_event)(void *state, void *sstate, const lg_sse_event_t *ev, lg_stream_out_t *out, lg_errbuf_t *err);
    /** Upstream EOF. Return 0 if the stream ended properly (may emit final chunks), else an lg_err_t (LG_EBADRESPONSE for
     * a truncated stream). */
    int (*stream_end)(void *state, void *sstate, lg_stream_out_t *out, lg_errbuf_t *err);
    void (*stream_free)(void *state, void *sstate);

    /** Classify a non-2xx response (or a 2xx body parse_response rejected). body may be non-JSON (HTML error pages). */
    void (*classify_error)(void *state, int status, const char *body, size_t len, lg_upstream_error_t *out);

    /** LG_CAP_LOCAL only: produce the whole virtual upstream response. */
    int (*local_respond)(void *state, const lg_call_t *call, lg_local_resp_t *out, lg_errbuf_t *err);

    /* ABI 1.1 and later; NULL = never pass-through */

    /**
     * LG_CAP_WIRE_OPENAI only: may this call go through unchanged? Called before build_request with call->body NULL and
     * call->wire_body NULL (only kind, stream and the model names are set). Return 1 when build_request can send the
     * host-made wire_body as it is (no body translation needed for this endpoint), 0 to get the tree in call->body.
     */
    int (*wire_passthrough)(void *state, const lg_call_t *call);
} lg_provider_t;

/** Smallest lg_provider_t the host accepts for ABI 1.0. */
#define LG_PROVIDER_MIN_SIZE_1_0 (offsetof(lg_provider_t, local_respond) + sizeof(void *))
/** Size of an ABI 1.1 provider table (the host reads wire_passthrough only from tables at least this large). */
#define LG_PROVIDER_MIN_SIZE_1_1 (offsetof(lg_provider_t, wire_passthrough) + sizeof(void *))

/**
 * The one exported symbol. Called once after dlopen. The plugin stores host (valid until dlclose), checks
 * host->abi_major, and points *out at its static provider table. Return 0 on success or an lg_err_t with a reason.
 */
typedef int (*lg_plugin_init_fn)(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);
#define LG_PLUGIN_ENTRY "lg_plugin_init"

/* Keep the host table in one global inside the plugin (SQLite's INIT1/INIT2 pattern). */
#define LG_PLUGIN_DECLARE_HOST static const lg_host_api_t *lg_host
#define LG_PLUGIN_SET_HOST(h) (lg_host = (h))

#ifdef __cplusplus
}
#endif
#endif
