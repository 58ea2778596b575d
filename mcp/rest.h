/* SPDX-License-Identifier: MIT */
/*
 * REST facade for callers that do not speak MCP (issue #5):
 *   GET  /api/mcp          -> 200 {"data":[{name, description, inputSchema}]}  (tools the key may call)
 *   POST /api/mcp/<tool>   body = the tool's arguments (JSON object; empty = {})
 *                          -> 200 {"data": <CallToolResult>}
 *                             422 isError result (502 when the tool's upstream is down), 404 unknown tool,
 *                             403 not allowed for the key, 429 rate limited, 400 bad JSON, 401 bad key
 * Errors use the API's shape {"error":{code,message,type,metadata}}. Same keys, allow-lists, limits, audit log and
 * metrics as /mcp: requests go through the same registry and server core (lg_mcp_invoke).
 */
#ifndef LG_MCP_REST_H
#define LG_MCP_REST_H

#include <stddef.h>
#include <h2o.h>
#include "runtime/worker.h"

/** Serve /api/mcp (tool = NULL/len 0) or /api/mcp/<tool>. Always answers (possibly later, on w's loop). An unknown
 * <tool> that is the unprefixed name of exactly one tool ("parse_prd" for "taskmaster__parse_prd") calls that one. */
void lg_mcp_rest_handle(lg_worker_t *w, h2o_req_t *req, const char *tool, size_t len);

/** A path under an upstream's "rest_path" mount (mcp.servers.<n>.rest_path, e.g. "/api/swarm"): GET <mount> lists
 * that upstream's tools, POST <mount>/<tool> calls "<prefix>__<tool>". Returns 1 if the path was one (answered), 0 if
 * not (nothing sent). */
int lg_mcp_rest_mount(lg_worker_t *w, h2o_req_t *req, const char *path, size_t len);

#endif
