/* SPDX-License-Identifier: MIT */
/*
 * OAuth for MCP clients (mcp.md §7.1; opt-in per listener with
 * mcp.auth.mode "oauth"): llmgate as the authorization server and the
 * resource server of /mcp and /mcp/<virtual server>. Serves RFC 9728
 * protected-resource metadata, RFC 8414 / OpenID discovery metadata, the
 * authorization endpoint with its consent page (PKCE S256 only; the person
 * pastes an llmgate API key, or the admin approves), the token endpoint
 * (authorization_code, refresh_token with rotation), RFC 7591 registration,
 * Client ID Metadata Documents (fetched asynchronously with the worker's curl
 * client) and RFC 7009 revocation. Issued tokens act as the consenting API
 * key: its limits, allow-lists and metering apply, and they stop working when
 * the key is disabled or deleted. Listeners without OAuth keep API keys only
 * and answer the discovery paths 404.
 */
#ifndef LG_MCP_OAUTH_SERVER_H
#define LG_MCP_OAUTH_SERVER_H

#include <stddef.h>
#include <h2o.h>
#include "core/config.h"
#include "runtime/worker.h"

/** Start-up and reload (main thread): opens the OAuth tables once OAuth is enabled. Returns 0 or -1 with err. */
int lg_mcp_oauth_init(const lg_config_t *conf, char *err, size_t errlen);
/** After the workers stopped: commit queued changes, free the tables. */
void lg_mcp_oauth_shutdown(void);

/**
 * Router hook (before the discovery-path 404): answers the OAuth routes — /.well-known/oauth-protected-resource[...],
 * /.well-known/oauth-authorization-server[...], /.well-known/openid-configuration[...], their /mcp/.well-known/ forms,
 * and /oauth/{authorize,token,register,revoke,consent.css} — when OAuth is on for the request's listener, and returns
 * 1. Returns 0 (nothing sent) otherwise. path/len: normalized path without query.
 */
int lg_mcp_oauth_route(lg_worker_t *w, h2o_req_t *req, const char *path, size_t len);

/**
 * /mcp auth step, before the API-key hook. server/len: "" or the virtual server name. Returns 1 when an OAuth access
 * token admitted the request (key_id filled: the consenting key, "" = anonymous), 0 when this is not an OAuth request
 * (OAuth off on this listener, or an API key was presented: the key hook decides), -1 to answer 401 (OAuth on and no
 * credential, or an access token that is unknown, expired, revoked, for another resource, or whose key is gone).
 */
int lg__mcp_oauth_authenticate(h2o_req_t *req, const char *server, size_t len, char *key_id, size_t key_id_size);

/**
 * Add the WWW-Authenticate header of a 401 on /mcp[/server]: with OAuth on, `Bearer resource_metadata="<issuer>/.well-
 * known/oauth-protected-resource/mcp[/server]", scope="mcp"` (+ error="invalid_token" when a credential was sent);
 * otherwise `Bearer realm="llmgate"` as before.
 */
void lg__mcp_oauth_challenge(h2o_req_t *req, const char *server, size_t len);

#endif
