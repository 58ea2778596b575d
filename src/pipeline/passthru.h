/* SPDX-License-Identifier: MIT */
/*
 * OpenAI wire pass-through: when the client speaks OpenAI chat and the
 * upstream is OpenAI-compatible (the plugin declares LG_CAP_WIRE_OPENAI), the
 * gateway forwards bytes instead of rebuilding trees. Pure functions over
 * spans (src/json): the upstream body from the client's bytes, validation of
 * the upstream reply and of each stream chunk (what must count as an upstream
 * failure), usage read without a tree, and the client-facing reply/chunk with
 * only the members the gateway owns rewritten.
 */
#ifndef LG_PIPELINE_PASSTHRU_H
#define LG_PIPELINE_PASSTHRU_H

#include <stddef.h>
#include <stdint.h>
#include "core/util.h"
#include "json/scan.h"
#include "router/cost.h"

/** Members the gateway owns in every reply and chunk it sends. Borrowed strings. */
typedef struct lg_pt_owned {
    const char *id;       /* generation id "gen-…" */
    const char *object;   /* "chat.completion" | "chat.completion.chunk" | "text_completion" */
    int64_t created;      /* unix seconds */
    const char *model;    /* public model that served */
    const char *provider; /* provider name */
} lg_pt_owned_t;

/** How the upstream body is derived from the client's. */
typedef struct lg_pt_body_opts {
    const char *model; /* upstream model name (replaces the client's `model`) */
    int stream;        /* 1: "stream":true (+ stream_options.include_usage when include_usage); 0: both removed */
    int include_usage; /* ask a streaming upstream for the final usage chunk */
} lg_pt_body_opts_t;

/**
 * Append to out the upstream request body: the client object (validated span) with `model` set to opts->model, the
 * gateway-only members removed (models, provider, route, transforms, plugins, usage, debug, session_id, trace — the
 * same list lg_gen_request_t's tree body drops), `stream`/`stream_options` set as opts says, and `max_tokens` dropped
 * when `max_completion_tokens` is also present (OpenAI's newer field wins, as the openai plugin does). Returns 0, or
 * -1 when out's cap is exceeded (out rolled back).
 */
int lg_pt_upstream_body(lg_json_span_t client, const lg_pt_body_opts_t *opts, lg_buf_t *out);

/** 1 if name is a gateway-only request member (never sent upstream). */
int lg_pt_is_gateway_field(const char *name, size_t n);

/** Counters read from a usage span, plus which of the three totals were present. */
typedef struct lg_pt_usage {
    lg_usage_t u;
    int has_prompt, has_completion, has_total;
    int64_t total_tokens;
} lg_pt_usage_t;

/**
 * Read usage counters from an OpenAI usage object span without a tree: prompt/completion/total tokens (or the
 * Responses API's input_tokens/output_tokens), prompt_tokens_details.cached_tokens/cache_write_tokens,
 * completion_tokens_details.reasoning_tokens. Negative or non-numeric counts read as absent/0, reals are truncated.
 */
void lg_pt_usage_read(lg_json_span_t usage, lg_pt_usage_t *out);

/** Result of checking a non-stream reply or one stream chunk. */
typedef enum {
    LG_PT_OK = 0,
    LG_PT_ERROR_OBJECT = 1, /* carries a non-null "error": classify with the plugin's classify_error */
    LG_PT_BAD = 2,          /* malformed: an upstream failure (LG_EBADRESPONSE); reason in err */
    LG_PT_DONE = 3,         /* stream only: the "[DONE]" sentinel */
} lg_pt_status_t;

/** What the gateway needs to know about a reply or a chunk. Spans point into the checked bytes. */
typedef struct lg_pt_info {
    lg_json_span_t root;    /* the object */
    lg_json_span_t usage;   /* usage object, NONE if absent or not an object */
    size_t num_choices;     /* elements of choices */
    int has_content;        /* a choice carries content, a tool call, or a finish_reason (the stream commit point) */
    int64_t content_chars;  /* bytes of text in message/delta content (or legacy text) */
    char finish_reason[32]; /* last string finish_reason seen, "" if none */
    /* the top-level members the writers copy (all but id/object/created/model/provider/usage), as byte ranges from the
     * key's quote to the value's end; more than LG_PT_MAX_KEEP members fall back to a splice */
    struct {
        const char *p;
        size_t len;
    } keep[16];
    size_t num_keep; /* a NULL p marks where the first usage member was */
    int keep_overflow;
    int has_usage_slot;
    lg_json_type_t fingerprint; /* type of system_fingerprint, NONE if absent (a chunk's non-string one is not kept) */
} lg_pt_info_t;
#define LG_PT_MAX_KEEP 16

/**
 * Check a complete non-stream chat/completions reply body: one valid JSON object (strict UTF-8), no error object,
 * `choices` an array of objects, each `message` (or `delta`) an object whose `content` is a string, null or an array
 * and whose `tool_calls` is an array or null, `finish_reason` a string or null, legacy `text` a string. Returns an
 * lg_pt_status_t; on LG_PT_BAD a reason naming the member is in err (e.g. "choices[0].message.content: expected
 * string, array or null").
 */
lg_pt_status_t lg_pt_check_reply(const char *body, size_t len, lg_pt_info_t *info, char *err, size_t errlen);

/**
 * Check the data of one stream event: "[DONE]" → LG_PT_DONE; otherwise the same rules as lg_pt_check_reply on a
 * chunk (choices may be empty; usage-only chunks are fine). Data that is not a JSON object, invalid UTF-8 included,
 * is LG_PT_BAD: an event the gateway cannot read is an upstream failure, never silently dropped.
 */
lg_pt_status_t lg_pt_check_chunk(const char *data, size_t len, lg_pt_info_t *info, char *err, size_t errlen);

/**
 * Append the client reply: info->root with id/object/created/model/provider set (the upstream's replaced, placed
 * first), `usage` replaced by usage_json (raw JSON, usage_len bytes; NULL = remove usage). Every other member is
 * forwarded byte for byte. 0, or -1 when out's cap is exceeded (rolled back).
 */
int lg_pt_write_reply(const lg_pt_info_t *info, const lg_pt_owned_t *own, const char *usage_json, size_t usage_len, lg_buf_t *out);
/** The same for the final usage chunk of a stream (an object, without the `data: ` framing): chunk rules for the
 * members (a non-string system_fingerprint is left out). 0 or -1 (cap). */
int lg_pt_write_usage_chunk(const lg_pt_info_t *info, const lg_pt_owned_t *own, const char *usage_json, size_t usage_len,
                            lg_buf_t *out);

/** Append one SSE event "data: <chunk>\n\n" for a checked chunk: owned members set, usage removed. 0 or -1 (cap). */
int lg_pt_write_chunk(const lg_pt_info_t *info, const lg_pt_owned_t *own, lg_buf_t *out);

/**
 * Append the owned members as the start of an object, without the closing brace:
 * {"id":…,"object":…,"created":…,"model":…,"provider":… — render it once per stream (the values do not change between
 * chunks; `created` is the stream's, as OpenAI sends it) and pass it to lg_pt_write_chunk_head. 0 or -1 (cap).
 */
int lg_pt_write_head(const lg_pt_owned_t *own, lg_buf_t *out);
/** lg_pt_write_chunk with a head from lg_pt_write_head (head_len bytes). 0 or -1 (cap). */
int lg_pt_write_chunk_head(const lg_pt_info_t *info, const char *head, size_t head_len, lg_buf_t *out);

/**
 * Append the usage object the client sees: the upstream usage span (NONE = {}) with the three totals filled from
 * final when the upstream did not send them, and OpenRouter's `cost` (USD from cost_pico), `is_byok:false`,
 * `cost_details:{upstream_inference_cost:null}` set. 0 or -1 (cap).
 */
int lg_pt_write_usage(lg_json_span_t usage, const lg_pt_usage_t *final, const lg_cost_t *cost, lg_buf_t *out);

#endif
