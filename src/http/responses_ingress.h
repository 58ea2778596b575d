/* SPDX-License-Identifier: MIT */
/*
 * OpenAI Responses API skin (POST /v1/responses, stateless as OpenRouter serves it): pure translation between the
 * Responses request/response/stream formats and the gateway's internal OpenAI Chat Completions normal form. No I/O.
 * Mapping details are documented at the top of responses_ingress.c.
 */
#ifndef LG_HTTP_RESPONSES_INGRESS_H
#define LG_HTTP_RESPONSES_INGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/util.h"

/**
 * Translate a Responses request (in, borrowed) into a new OpenAI chat request (*out) and the request members a response
 * object echoes back (*echo: instructions, metadata, tools, tool_choice, parallel_tool_calls, temperature, top_p,
 * max_output_tokens, reasoning, text, user), both owned by the caller. Returns 0, or LG_EINVAL with a message naming the
 * field in err (`input[2].call_id: expected string`, `store: true is not supported: llmgate's Responses API is
 * stateless, send the whole conversation in input`); *out and *echo are NULL then.
 *
 * Kept as-is: the gateway routing fields models, provider, route, transforms, plugins, usage, debug, session_id, trace.
 */
int lg_responses_request_to_openai(const json_t *in, json_t **out, json_t **echo, char *err, size_t errlen);

/**
 * A complete `response` object (status completed or incomplete) for a gateway-built chat.completion (borrowed), with id
 * resp_id, the served model, created_at and the echoed request members (borrowed, may be NULL). Never fails on odd input.
 */
json_t *lg_responses_response_from_openai(const json_t *openai, const char *resp_id, const char *model, int64_t created_at,
                                          const json_t *echo);

/** Streaming translator: OpenAI chat.completion.chunk objects in, Responses SSE events out. One per response. */
typedef struct lg_responses_stream lg_responses_stream_t;

/** New translator; resp_id and model are copied, echo is referenced (may be NULL). */
lg_responses_stream_t *lg_responses_stream_create(const char *resp_id, const char *model, int64_t created_at, const json_t *echo);

/**
 * `response.created` and `response.in_progress`, once (idempotent; the other calls emit them lazily). Every emitting call
 * returns 0, or LG_ETOOLARGE when out's cap was hit (the stream is then unusable: abort it). Each event carries a
 * strictly increasing `sequence_number` from 0.
 */
int lg_responses_stream_begin(lg_responses_stream_t *s, lg_buf_t *out);

/**
 * Feed one OpenAI chunk (borrowed): text deltas become `response.output_text.delta` in a message item, reasoning
 * deltas `response.reasoning_summary_text.delta` in a reasoning item, tool-call deltas
 * `response.function_call_arguments.delta` in a function_call item (opened once its id and name are known; earlier
 * argument fragments are sent first). Usage chunks are remembered for finish(). No-op after finish/error.
 */
int lg_responses_stream_chunk(lg_responses_stream_t *s, const json_t *chunk, lg_buf_t *out);

/**
 * End of a successful stream: close every open item (`…done` events with the full text/arguments), then
 * `response.completed` (or `response.incomplete` with reason max_output_tokens / content_filter) carrying the whole
 * output and usage (borrowed OpenAI usage with cost, NULL = the last seen in a chunk). No-op after finish/error.
 */
int lg_responses_stream_finish(lg_responses_stream_t *s, const json_t *usage, lg_buf_t *out);

/** Mid-stream failure: `response.failed` whose response has status failed and error {code, message} (lg_err: an
 * lg_err_t; message NULL = its default). No-op after finish/error. */
int lg_responses_stream_error(lg_responses_stream_t *s, int lg_err, const char *message, lg_buf_t *out);

/** Keep-alive on this skin: an SSE comment (the openai SDK skips them). */
int lg_responses_stream_ping(lg_buf_t *out);

void lg_responses_stream_destroy(lg_responses_stream_t *s);

/** The Responses `usage` for an OpenAI usage object with cost (borrowed): input/output token names, cached and reasoning
 * details, cost, is_byok and cost_details with the Responses names. New reference; {} counts as zeros. */
json_t *lg_responses_usage(const json_t *openai_usage);

#endif
