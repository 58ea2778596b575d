/* SPDX-License-Identifier: MIT */
/*
 * Anthropic Messages skin (POST /v1/messages): pure translation between
 * Anthropic's request/response/stream formats and the gateway's internal
 * OpenAI Chat Completions normal form. No I/O; the exchange does the wiring.
 */
#ifndef LG_HTTP_ANTHROPIC_INGRESS_H
#define LG_HTTP_ANTHROPIC_INGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/util.h"

/** Most Anthropic-style `fallbacks` entries accepted (then models = [model, fallbacks...]). */
#define LG_ANTHROPIC_MAX_FALLBACKS 3

/**
 * Translate an Anthropic Messages request (in, borrowed) into a new OpenAI chat request object (*out, owned by the caller).
 * Returns 0, or LG_EINVAL with a message naming the field in err (e.g.
 * `messages[1].content[0].type: unknown block type "foo"`, `max_tokens: required`); *out is NULL then.
 *
 * Kept as-is: the gateway routing fields models, provider, route, transforms, plugins, usage, debug, session_id, trace.
 * `fallbacks` ([{"model":..}] or ["..."], at most 3, not combinable with `models`) becomes models = [model, fallbacks...].
 * Every other unknown top-level field (anthropic-only features such as container, mcp_servers, service_tier,
 * context_management) is dropped. Mapping details are documented at the top of anthropic_ingress.c.
 */
int lg_anthropic_request_to_openai(const json_t *in, json_t **out, char *err, size_t errlen);

/**
 * Translate a gateway-built OpenAI chat.completion (borrowed) into a new Anthropic message object with id msg_id.
 * Never fails on odd input: missing parts are left out (content may be empty).
 */
json_t *lg_anthropic_response_from_openai(const json_t *openai, const char *msg_id);

/** Streaming translator state: OpenAI chat.completion.chunk objects in, Anthropic SSE events out. One per response. */
typedef struct lg_anthropic_stream lg_anthropic_stream_t;

/** New translator. msg_id and model are copied; input_tokens_estimate goes into message_start.usage.input_tokens. */
lg_anthropic_stream_t *lg_anthropic_stream_create(const char *msg_id, const char *model, int64_t input_tokens_estimate);

/**
 * Emit `message_start` now if it was not sent yet (idempotent). Optional: the other calls emit it lazily; call this when the
 * response is committed if pings may be sent before the first chunk.
 * Every emitting call returns 0, or LG_ETOOLARGE when out's cap was hit (the stream is then unusable: abort it).
 */
int lg_anthropic_stream_begin(lg_anthropic_stream_t *s, lg_buf_t *out);

/**
 * Feed one OpenAI chunk (borrowed). Appends zero or more events to out. Chunks without choices (usage chunk) produce nothing
 * but their `usage` is remembered for finish(). finish_reason is recorded; message_delta is only sent by finish().
 * Tool calls: a tool_use block opens once id and name are known; argument fragments seen before are buffered and sent
 * first. While one tool block is open, fragments of another tool are buffered until the open one's arguments form complete
 * JSON (or finish). No-op after finish/error.
 */
int lg_anthropic_stream_chunk(lg_anthropic_stream_t *s, const json_t *chunk, lg_buf_t *out);

/**
 * End of a successful stream: flush buffered tool calls (a call that never got a name is dropped, one without an id gets a
 * synthesised "toolu_…" id), close the open block, `message_delta` {stop_reason, stop_sequence:null, usage{output_tokens,
 * input_tokens, cache_creation_input_tokens, cache_read_input_tokens}} and `message_stop`. usage (borrowed, OpenAI shape,
 * may be NULL = the last usage seen in a chunk). No-op after finish/error.
 */
int lg_anthropic_stream_finish(lg_anthropic_stream_t *s, const json_t *usage, lg_buf_t *out);

/**
 * Mid-stream failure: close the open block, then `event: error` {"type":"error","error":{"type","message","error_type"}}.
 * lg_err is an lg_err_t; message NULL = its default message. No-op after finish/error.
 */
int lg_anthropic_stream_error(lg_anthropic_stream_t *s, int lg_err, const char *message, lg_buf_t *out);

/** Bytes of tool arguments that arrived for an already-closed tool_use block and could not be sent (for logging). */
size_t lg_anthropic_stream_dropped_bytes(const lg_anthropic_stream_t *s);

/** Keep-alive on this skin: `event: ping\ndata: {"type": "ping"}\n\n` (what Anthropic sends). */
int lg_anthropic_stream_ping(lg_buf_t *out);

void lg_anthropic_stream_destroy(lg_anthropic_stream_t *s);

/** Anthropic stop_reason for an OpenAI finish_reason (NULL/unknown/"error" → "end_turn"). Static string. */
const char *lg_anthropic_stop_reason(const char *finish_reason);

/** Anthropic error type for an HTTP status (400 invalid_request_error, 413 request_too_large, ...). Static string. */
const char *lg_anthropic_error_type(int http_status);

/** HTTP status of an error response on the Anthropic skin: http_status (0 = the error's own), except overload = 529. */
int lg_anthropic_error_status(int lg_err, int http_status);
/**
 * New {"type":"error","error":{"type":<anthropic type>,"message":msg,"error_type":<OpenRouter error_type>}}.
 * http_status 0 = lg_err_status(lg_err); msg NULL = lg_strerror(lg_err).
 */
json_t *lg_anthropic_error_json(int lg_err, int http_status, const char *msg);

#endif
