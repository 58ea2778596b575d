/* SPDX-License-Identifier: MIT */
/*
 * Streamable HTTP transport for MCP (2025-11-25, also 2025-06-18 and
 * 2025-03-26) on h2o: POST/GET/DELETE /mcp and /mcp/<virtual server>, the
 * validation order of mcp/README.md, JSON or SSE responses, the per-session GET
 * SSE stream, and the per-worker inbox that carries client responses,
 * cancellations and notifications between worker threads.
 */
#ifndef LG_MCP_TRANSPORT_HTTP_H
#define LG_MCP_TRANSPORT_HTTP_H

#include <stddef.h>
#include <h2o.h>
#include "runtime/worker.h"

/**
 * Authentication hook, set once at start-up by the integrator (NULL = run open). Called for every /mcp request after
 * the Host/Origin checks with the Authorization header (NULL if absent). Return 0 to admit, writing the API key id into
 * key_id (NUL-terminated; "" = anonymous), or -1 to reject: the transport answers 401 with a JSON body and
 * `WWW-Authenticate: Bearer realm="llmgate"` (no resource_metadata, so OAuth-capable clients do not start OAuth).
 * Runs on worker threads: must be thread-safe and must not block. The Authorization header is never forwarded upstream.
 */
typedef int (*lg_mcp_auth_fn)(h2o_req_t *req, const char *authorization, size_t len, char *key_id, size_t key_id_size);
void lg_mcp_set_auth(lg_mcp_auth_fn fn);

/** The MCP state of worker w (created on first use; worker thread only), for the REST facade. NULL if unavailable. */
struct lg_mcp_worker;
struct lg_mcp_worker *lg_mcp_worker_of(lg_worker_t *w);

/**
 * Serve one request for an MCP endpoint. name/len: "" for /mcp, else the virtual server name from /mcp/<name>.
 * Always answers (404 for an unknown virtual server or when mcp.enabled is false).
 */
void lg_mcp_handle(lg_worker_t *w, h2o_req_t *req, const char *name, size_t len);

/**
 * 1 for the OAuth/OIDC discovery paths MCP clients probe (the gateway uses API keys, not OAuth); the router answers them 404 at
 * once so clients keep using the static API key instead of starting OAuth.
 */
int lg_mcp_is_discovery_path(const char *path, size_t len);

#endif
