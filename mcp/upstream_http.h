/* SPDX-License-Identifier: MIT */
/*
 * Streamable HTTP transport towards one federated MCP server (client side of
 * the MCP Streamable HTTP transport): every message is a POST with Accept: application/json,
 * text/event-stream; replies come back as one JSON body or as an SSE stream
 * (progress and log notifications first, then the response). Keeps the
 * upstream's Mcp-Session-Id, sends MCP-Protocol-Version once negotiated,
 * reports 404-with-session (or 400 about the session) as an expired session, and may hold a GET SSE
 * stream for server-initiated notifications. Headers come from the config
 * only (the upstream's own credentials): nothing of the downstream client's
 * request is ever forwarded. Message-level only; upstream thread only.
 */
#ifndef LG_MCP_UPSTREAM_HTTP_H
#define LG_MCP_UPSTREAM_HTTP_H

#include <stdint.h>
#include <jansson.h>
#include "upstream/client.h"

typedef struct lg_mcp_http lg_mcp_http_t;

/** Why a POST ended without its response: the session is gone (404, or 400 about the session id), the transport
 * failed (connection refused or reset, timeout), or the upstream refused the request in another way (HTTP error,
 * a reply without the response). */
enum { LG_MCP_HTTP_REFUSED = 0, LG_MCP_HTTP_SESSION_LOST, LG_MCP_HTTP_TRANSPORT };

typedef struct lg_mcp_http_callbacks {
    /** A message from the upstream (stolen): from the reply to the POST that carried request rid (rid 0 for other
     * POSTs and for the GET stream). */
    void (*on_message)(void *ud, json_t *msg, int64_t rid);
    /** The POST that carried request rid ended without that request's response (HTTP error, transport failure, a
     * reply without it). status = HTTP status or 0; cause = LG_MCP_HTTP_*; why = one printable line. */
    void (*on_post_failed)(void *ud, int64_t rid, int status, int cause, const char *why);
    /** The upstream answered 404 (or 400 about the session) to a request carrying our session id: re-initialize. */
    void (*on_session_expired)(void *ud);
} lg_mcp_http_callbacks_t;

/**
 * Create. name: for logs; url: the MCP endpoint; headers: object of extra headers (borrowed, copied); timeout_ms: cap on
 * one POST exchange. Never fails.
 */
lg_mcp_http_t *lg__mcp_http_create(uv_loop_t *loop, lg_upclient_t *client, const char *name, const char *url, const json_t *headers,
                                   uint32_t timeout_ms, const lg_mcp_http_callbacks_t *cb, void *ud);
/** POST one message (borrowed). rid: the id of the request it carries (0 for notifications and responses). Returns 0 or
 * -1 (invalid header values; on_post_failed is not called). */
int lg__mcp_http_send(lg_mcp_http_t *h, const json_t *msg, int64_t rid);
/** The negotiated protocol version, sent as MCP-Protocol-Version from now on (NULL = none). */
void lg__mcp_http_set_version(lg_mcp_http_t *h, const char *version);
/** Forget the session id and close the GET stream (before a new initialize). */
void lg__mcp_http_reset_session(lg_mcp_http_t *h);
/** Keep a GET SSE stream open for server-initiated messages (reopened after failures; dropped for good on 405). */
void lg__mcp_http_listen(lg_mcp_http_t *h);
/** Abort every exchange (no callback follows), DELETE the session best-effort, free asynchronously. */
void lg__mcp_http_destroy(lg_mcp_http_t *h);

#endif
