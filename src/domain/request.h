/* SPDX-License-Identifier: MIT */
/*
 * Parse and validate a /v1 generation request body once, on its bytes: field
 * types checked with errors naming the field, OpenRouter routing fields
 * (models, provider, variants) extracted; the jansson body the plugins see
 * (stripped of them) is built only when a plugin needs it.
 */
#ifndef LG_DOMAIN_REQUEST_H
#define LG_DOMAIN_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "json/scan.h"

#define LG_MAX_MODELS 8

typedef struct lg_gen_request {
    int kind;                              /* lg_api_kind_t */
    int stream;                            /* stream:true */
    json_t *root;                          /* whole body as a tree (owned), NULL until lg_gen_request_body needs it */
    json_t *body;                          /* root without gateway-only fields (owned), built on first use; see below */
    const char *models[LG_MAX_MODELS + 1]; /* [0] = primary; variant suffix stripped; decoded, in strs */
    size_t model_lens[LG_MAX_MODELS + 1];
    size_t num_models;
    const char *variant;     /* "nitro" | "floor" | NULL (from the primary model) */
    json_t *provider;        /* the provider preferences as a small tree (owned), NULL if absent */
    const char *sort;        /* effective sort (static string): provider.sort(.by) or the variant's */
    int allow_fallbacks;     /* provider.allow_fallbacks, default 1 */
    int require_parameters;  /* provider.require_parameters */
    double max_price_prompt; /* USD per million tokens, < 0 = none */
    double max_price_completion;
    double max_price_request;
    int has_tools;
    int64_t max_tokens; /* max_completion_tokens or max_tokens, 0 = not set */
    int64_t prompt_tokens_estimate;
    const char *session_id;      /* decoded, in strs; NULL if absent */
    const char *sent_params[32]; /* OpenRouter parameter names present in the body (for require_parameters) */
    size_t num_sent_params;
    lg_json_span_t wire; /* the client's body object as validated bytes (in raw); NONE when the request came from a
                            tree (Anthropic skin): the OpenAI wire pass-through splices it */
    char *raw;           /* owned copy of the body bytes behind wire (NULL for requests made from a tree) */
    size_t raw_len;
    char *strs;        /* owned: decoded model ids and session_id, NUL-terminated */
    json_t *skin_data; /* owned; set by an ingress skin's parse for its own answers (e.g. the Responses request members
                          a response object echoes), NULL otherwise */
} lg_gen_request_t;

/**
 * Parse and validate body (len bytes) for route kind with the JSON scanner (src/json): no jansson tree is built on
 * this path (only the provider preferences, when present, become a small tree for the router and policies). On
 * error returns an lg_err_t (LG_EINVAL) with a message naming the field in err (e.g. "messages[2].role: expected
 * string"), and the request is left disposed. The bytes are copied; body may be freed afterwards.
 */
int lg_gen_request_parse(lg_gen_request_t *r, int kind, const char *body, size_t len, char *err, size_t errlen);
/** Same from an already parsed body (the Anthropic skin's translation); takes ownership of root (also on error). */
int lg_gen_request_from_json(lg_gen_request_t *r, int kind, json_t *root, char *err, size_t errlen);
/**
 * The body plugins receive (lg_call_t.body): the request without gateway-only fields, built from the bytes on first
 * call (one jansson parse per request at most) and cached. Borrowed; NULL only if the body cannot be built (OOM).
 */
json_t *lg_gen_request_body(lg_gen_request_t *r);
void lg_gen_request_dispose(lg_gen_request_t *r);

#endif
