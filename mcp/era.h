/* SPDX-License-Identifier: MIT */
/*
 * The two protocol eras on one endpoint (mcp.md §10.1), pure functions only:
 *  - legacy (2025-11-25, 2025-06-18, 2025-03-26): initialize + Mcp-Session-Id;
 *  - modern (2026-07-28): stateless, every request carries _meta
 *    {io.modelcontextprotocol/protocolVersion, .../clientCapabilities, ...}
 *    and the MCP-Protocol-Version / Mcp-Method / Mcp-Name headers.
 * Which era a request is in, the modern request checks in the revision's
 * order and error codes, and how a modern answer is stamped (resultType,
 * caching hints, the revision's resource-not-found code, the HTTP status).
 */
#ifndef LG_MCP_ERA_H
#define LG_MCP_ERA_H

#include <stddef.h>
#include <jansson.h>

#define LG_MCP_MODERN_VERSION "2026-07-28"
#define LG_MCP_META_VERSION "io.modelcontextprotocol/protocolVersion"
#define LG_MCP_META_CAPS "io.modelcontextprotocol/clientCapabilities"
#define LG_MCP_META_INFO "io.modelcontextprotocol/clientInfo"
#define LG_MCP_META_LOG_LEVEL "io.modelcontextprotocol/logLevel"
#define LG_MCP_META_SERVER_INFO "io.modelcontextprotocol/serverInfo"
#define LG_MCP_META_SUBSCRIPTION "io.modelcontextprotocol/subscriptionId"

/* 2026-07-28 error codes (HTTP 400) */
#define LG_MCP_HEADER_MISMATCH (-32020)
#define LG_MCP_MISSING_CAPABILITY (-32021)
#define LG_MCP_UNSUPPORTED_VERSION (-32022)

enum { LG_MCP_ERA_LEGACY = 0, LG_MCP_ERA_MODERN = 1 };

/**
 * The era of one POSTed message. has_session: an Mcp-Session-Id header came with it (its session keeps it legacy);
 * hver/hlen: the MCP-Protocol-Version header (NULL = absent); method/params of the message (params may be NULL).
 * Modern: no session and either modern _meta or a version header that does not name a legacy revision. An initialize
 * without modern _meta is always legacy.
 */
int lg_mcp_era_of(int has_session, const char *hver, size_t hlen, const char *method, const json_t *params);

/** Headers of a modern request (NULL = absent). */
typedef struct lg_mcp_era_headers {
    const char *version, *method, *name;
    size_t version_len, method_len, name_len;
} lg_mcp_era_headers_t;

/**
 * Check a modern request in the revision's order: version header present (-32020), _meta with protocolVersion and
 * clientCapabilities (-32602), header = _meta version (-32020), version supported (-32022 with data {supported,
 * requested}), Mcp-Method present and equal to the method, Mcp-Name present and equal to params.name / params.uri
 * for tools/call, prompts/get, resources/read (-32020; values compared without surrounding whitespace). Returns NULL when it is
 * fine, else the error object {code, message, data?} (new reference); every one of them is answered with HTTP 400.
 */
json_t *lg_mcp_era_check(const lg_mcp_era_headers_t *h, const char *method, const json_t *params);

/** Methods the modern era removed (initialize, ping, logging/setLevel, resources/subscribe|unsubscribe): 404 -32601. */
int lg_mcp_era_removed(const char *method);

/** Every version the endpoint speaks, newest first (for server/discover and -32022). New reference. */
json_t *lg_mcp_era_supported(void);

/**
 * Stamp a modern response message in place: results get resultType "complete" unless set, and the cacheable ones
 * (server/discover, the lists, resources/read) ttlMs 0 and cacheScope "private" unless set (a gateway's lists depend on the
 * caller's key); resource-not-found -32002 becomes the revision's -32602 with data.uri. Returns the HTTP status for
 * it: 400 for -32020..-32022, 404 for -32601, else 200.
 */
int lg_mcp_era_stamp(const char *method, json_t *msg);

#endif
