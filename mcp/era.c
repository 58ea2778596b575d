/* SPDX-License-Identifier: MIT */
/*
 * Era detection, modern request checks and answer stamping (see era.h).
 */
#include <stdio.h>
#include <string.h>
#include "mcp/era.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"

static int legacy_version(const char *v, size_t n)
{
    return v != NULL && lg_mcp_version_supported(v, n);
}

static int has_modern_meta(const json_t *params)
{
    const json_t *meta = json_object_get(params, "_meta");
    const char *k;
    json_t *v;
    if (!json_is_object(meta))
        return 0;
    json_object_foreach((json_t *)meta, k, v)
    {
        (void)v;
        if (strncmp(k, "io.modelcontextprotocol/", 24) == 0 && strcmp(k, "io.modelcontextprotocol/related-task") != 0)
            return 1;
    }
    return 0;
}

int lg_mcp_era_of(int has_session, const char *hver, size_t hlen, const char *method, const json_t *params)
{
    if (has_session)
        return LG_MCP_ERA_LEGACY;
    int meta = has_modern_meta(params);
    if (method != NULL && strcmp(method, "initialize") == 0 && !meta)
        return LG_MCP_ERA_LEGACY;
    if (meta)
        return LG_MCP_ERA_MODERN;
    if (hver != NULL && !legacy_version(hver, hlen))
        return LG_MCP_ERA_MODERN;
    return LG_MCP_ERA_LEGACY;
}

static json_t *err(int code, const char *message, json_t *data)
{
    json_t *e = json_pack("{s:i,s:s}", "code", code, "message", message);
    if (data != NULL)
        json_object_set_new(e, "data", data);
    return e;
}

json_t *lg_mcp_era_supported(void)
{
    json_t *a = json_array();
    json_array_append_new(a, json_string(LG_MCP_MODERN_VERSION));
    for (const char *const *v = lg_mcp_supported_versions; *v != NULL; ++v)
        json_array_append_new(a, json_string(*v));
    return a;
}

/* header value = s, leading and trailing whitespace excluded (RFC 9110 5.5); values are case-sensitive */
static int header_is(const char *h, size_t hl, const char *s)
{
    if (h == NULL)
        return 0;
    while (hl > 0 && (*h == ' ' || *h == '\t'))
        ++h, --hl;
    while (hl > 0 && (h[hl - 1] == ' ' || h[hl - 1] == '\t'))
        --hl;
    return strlen(s) == hl && memcmp(h, s, hl) == 0;
}

/* the name a request is about: params.name (tools/call, prompts/get) or params.uri (resources/read) */
static const char *subject_of(const char *method, const json_t *params)
{
    if (strcmp(method, "tools/call") == 0 || strcmp(method, "prompts/get") == 0)
        return json_string_value(json_object_get(params, "name"));
    if (strcmp(method, "resources/read") == 0)
        return json_string_value(json_object_get(params, "uri"));
    return NULL;
}

json_t *lg_mcp_era_check(const lg_mcp_era_headers_t *h, const char *method, const json_t *params)
{
    if (h->version == NULL || h->version_len == 0)
        return err(LG_MCP_HEADER_MISMATCH, "Header mismatch: the MCP-Protocol-Version header is required", NULL);
    const json_t *meta = json_object_get(params, "_meta");
    const char *mv = json_string_value(json_object_get(meta, LG_MCP_META_VERSION));
    if (!json_is_object(meta) || mv == NULL || !json_is_object(json_object_get(meta, LG_MCP_META_CAPS)))
        return err(LG_JSONRPC_INVALID_PARAMS,
                   "Invalid params: _meta needs \"" LG_MCP_META_VERSION "\" (string) and \"" LG_MCP_META_CAPS "\" (object)", NULL);
    if (!header_is(h->version, h->version_len, mv))
        return err(LG_MCP_HEADER_MISMATCH, "Header mismatch: MCP-Protocol-Version differs from _meta's protocolVersion", NULL);
    if (strcmp(mv, LG_MCP_MODERN_VERSION) != 0) {
        char m[200];
        snprintf(m, sizeof(m),
                 "Unsupported protocol version %.40s (stateless requests speak " LG_MCP_MODERN_VERSION
                 "; older revisions start with initialize)",
                 mv);
        return err(LG_MCP_UNSUPPORTED_VERSION, m, json_pack("{s:o,s:s}", "supported", lg_mcp_era_supported(), "requested", mv));
    }
    if (h->method == NULL)
        return err(LG_MCP_HEADER_MISMATCH, "Header mismatch: the Mcp-Method header is required", NULL);
    if (!header_is(h->method, h->method_len, method))
        return err(LG_MCP_HEADER_MISMATCH, "Header mismatch: Mcp-Method differs from the body's method", NULL);
    const char *subject = subject_of(method, params);
    if (subject != NULL && h->name == NULL)
        return err(LG_MCP_HEADER_MISMATCH, "Header mismatch: the Mcp-Name header is required for this method", NULL);
    /* a Base64 sentinel form ("=?base64?...?=") carries names that are not plain ASCII: left to the body */
    if (h->name != NULL && subject != NULL && !(h->name_len >= 9 && memcmp(h->name, "=?base64?", 9) == 0) &&
        !header_is(h->name, h->name_len, subject))
        return err(LG_MCP_HEADER_MISMATCH, "Header mismatch: Mcp-Name differs from the body's name or uri", NULL);
    return NULL;
}

int lg_mcp_era_removed(const char *method)
{
    static const char *const gone[] = {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe",
                                       NULL};
    for (const char *const *g = gone; *g != NULL; ++g)
        if (strcmp(*g, method) == 0)
            return 1;
    return 0;
}

static int cacheable(const char *method)
{
    static const char *const c[] = {"server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list",
                                    "resources/read",  NULL};
    for (const char *const *m = c; *m != NULL; ++m)
        if (strcmp(*m, method) == 0)
            return 1;
    return 0;
}

int lg_mcp_era_stamp(const char *method, json_t *msg)
{
    json_t *result = json_object_get(msg, "result");
    if (json_is_object(result)) {
        if (json_object_get(result, "resultType") == NULL)
            json_object_set_new(result, "resultType", json_string("complete"));
        if (method != NULL && cacheable(method) &&
            strcmp(json_string_value(json_object_get(result, "resultType")), "complete") == 0) {
            if (json_object_get(result, "ttlMs") == NULL)
                json_object_set_new(result, "ttlMs", json_integer(0));
            if (json_object_get(result, "cacheScope") == NULL)
                json_object_set_new(result, "cacheScope", json_string("private"));
        }
        return 200;
    }
    json_t *e = json_object_get(msg, "error");
    int code = (int)json_integer_value(json_object_get(e, "code"));
    if (code == LG_MCP_RESOURCE_NOT_FOUND) {
        json_object_set_new(e, "code", json_integer(LG_JSONRPC_INVALID_PARAMS));
        code = LG_JSONRPC_INVALID_PARAMS;
    }
    if (code == LG_MCP_HEADER_MISMATCH || code == LG_MCP_MISSING_CAPABILITY || code == LG_MCP_UNSUPPORTED_VERSION)
        return 400;
    if (code == LG_JSONRPC_METHOD_NOT_FOUND)
        return 404;
    return 200;
}
