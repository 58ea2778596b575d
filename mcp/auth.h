/* SPDX-License-Identifier: MIT */
/*
 * MCP access control with the /v1 gate (API keys, not OAuth): the lg_mcp_auth_fn for
 * /mcp (Bearer key or x-api-key -> key id; open gateway -> anonymous; bad key
 * -> 401), and the per-key tool policy of server.h (allow-lists on the
 * prefixed tool name, rate limits per tools/call, one audit log line per call).
 */
#ifndef LG_MCP_AUTH_H
#define LG_MCP_AUTH_H

#include <stddef.h>
#include <h2o.h>

/** Install the /mcp auth hook (lg_mcp_set_auth) and the tool policy (lg_mcp_set_tool_policy). Main, before workers. */
void lg_mcp_auth_install(void);
struct lg_config;
/** Adopt mcp.tool_rate_limits (start-up and reload); buckets of unchanged patterns keep their level. */
void lg_mcp_auth_configure(const struct lg_config *conf);

/**
 * Authenticate an MCP or REST-facade request with the gate. Returns 0 with key_id filled ("" = anonymous: the gateway is
 * open), or -1 with *msg set (never containing the secret).
 */
int lg_mcp_auth_request(h2o_req_t *req, char *key_id, size_t key_id_size, const char **msg);

/** Policy checks, also used by the REST facade: 1 if key_id (NULL/"" = anonymous) may call tool. */
int lg_mcp_auth_tool_allowed(const char *key_id, const char *tool);

#endif
