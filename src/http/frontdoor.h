/* SPDX-License-Identifier: MIT */
/*
 * The front door: checks every request passes before routing (request smuggling, URL and header-block limits, the
 * shutdown drain, the per-address rapid-reset guard) and the one place that answers a refusal in the shape of the API
 * the path belongs to (OpenRouter JSON on /v1, Anthropic's on /v1/messages, JSON-RPC on /mcp). It also rewrites the
 * plain-text errors h2o produces itself (413 for a body over the limit, 400 for a broken body framing, 417) into
 * that shape.
 */
#ifndef LG_HTTP_FRONTDOOR_H
#define LG_HTTP_FRONTDOOR_H

#include <stddef.h>
#include <h2o.h>

struct lg_worker;

#define LG_FRONTDOOR_MAX_URL_BYTES 8192           /* request target, query included (414 beyond) */
#define LG_FRONTDOOR_MAX_HEADER_BYTES (64 * 1024) /* names + values of all request headers (431 beyond) */

typedef enum {
    LG_SHAPE_OPENAI = 0, /* {"error":{"code","message","type","metadata"}} */
    LG_SHAPE_ANTHROPIC,  /* {"type":"error","error":{"type","message"}} */
    LG_SHAPE_JSONRPC,    /* {"jsonrpc":"2.0","id":null,"error":{"code","message"}} */
} lg_error_shape_t;

/** The error shape of a request target (path, optionally with a query): /v1/messages, /mcp..., everything else. */
lg_error_shape_t lg_frontdoor_shape(const char *target, size_t len);

/**
 * Answer req with err (an LG_E* code) in the given shape; status 0 = the error's own status, msg NULL = its default
 * message. close = also end the connection after the response (HTTP/1: Connection: close; HTTP/2: no effect).
 */
void lg_frontdoor_refuse(h2o_req_t *req, lg_error_shape_t shape, int err, int status, const char *msg, int close);

/**
 * Screen a request before dispatch (worker thread, from the root handler). Returns 1 if it answered the request
 * (refused), 0 to go on routing.
 */
int lg_frontdoor_screen(struct lg_worker *w, h2o_req_t *req);

/**
 * SIGTERM on this worker: record when the drain began (requests that begin later on HTTP/1 are refused with 503 and
 * the connection closed), mark every in-flight HTTP/1 response Connection: close, and close idle keep-alive
 * connections. HTTP/2 connections get h2o's GOAWAY from h2o_context_request_shutdown.
 */
void lg_frontdoor_begin_drain(struct lg_worker *w);

/** Attach the filter that reshapes h2o's own error responses (host config setup, before the workers start). */
void lg_frontdoor_register(h2o_hostconf_t *host);

/**
 * Raw HTTP/1 request head check (pure; fuzzed): returns NULL if head[0..len) (the bytes up to the blank line, or
 * fewer) has no framing conflict, else the reason: both Content-Length and Transfer-Encoding, Content-Length values
 * that disagree or are not digits, or Transfer-Encoding repeated.
 */
const char *lg_frontdoor_framing_conflict(const char *head, size_t len);

#endif
