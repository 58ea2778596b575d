/* SPDX-License-Identifier: MIT */
/*
 * Route table: maps method + path to a handler; unknown paths get a JSON 404,
 * known paths with the wrong method a JSON 405 with Allow.
 */
#include <string.h>
#include "http/handlers.h"
#include "http/respond.h"
#include "llmgate/plugin.h"
#include "mcp/rest.h"
#include "mcp/transport_http.h"

static int path_is(h2o_iovec_t path, const char *lit)
{
    size_t n = strlen(lit);
    return path.len == n && memcmp(path.base, lit, n) == 0;
}

static int method_is(h2o_req_t *req, const char *m)
{
    size_t n = strlen(m);
    return req->method.len == n && memcmp(req->method.base, m, n) == 0;
}

static lg_worker_t *worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(lg_worker_t, ctx, req->conn->ctx);
}

static void method_not_allowed(h2o_req_t *req, const char *allow)
{
    lg_add_header(req, "allow", allow);
    lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", allow));
}

int lg_handle_request(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    lg_worker_t *w = worker_of(req);
    h2o_iovec_t path = req->path_normalized;
    /* admin API: /api/admin and everything below (the handler checks the admin key before anything else) */
    if (path.len >= 10 && memcmp(path.base, "/api/admin", 10) == 0 && (path.len == 10 || path.base[10] == '/')) {
        lg_handle_admin(w, req, path.base + 10, path.len - 10);
        return 0;
    }
    /* REST facade over the MCP tools: GET /api/mcp, POST /api/mcp/<tool> */
    if (path.len >= 8 && memcmp(path.base, "/api/mcp", 8) == 0 && (path.len == 8 || path.base[8] == '/')) {
        size_t off = path.len > 8 ? 9 : 8;
        size_t tl = path.len - off;
        if (tl > 0 && path.base[off + tl - 1] == '/')
            --tl; /* tolerate one trailing slash */
        lg_mcp_rest_handle(w, req, path.base + off, tl);
        return 0;
    }
    /* OpenRouter's spelling: /api/v1/... is the same route as /v1/... */
    if (path.len >= 8 && memcmp(path.base, "/api/v1/", 8) == 0) {
        path.base += 4;
        path.len -= 4;
    }
    /* tolerate one trailing slash */
    if (path.len > 1 && path.base[path.len - 1] == '/')
        --path.len;

    if (path_is(path, "/health") || path_is(path, "/healthz")) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD"))
            method_not_allowed(req, "GET");
        else
            lg_handle_health(w, req);
        return 0;
    }
    if (path_is(path, "/metrics")) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD"))
            method_not_allowed(req, "GET");
        else
            lg_handle_metrics(w, req);
        return 0;
    }
    if (path_is(path, "/v1/models")) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD"))
            method_not_allowed(req, "GET");
        else
            lg_handle_models(w, req);
        return 0;
    }
    if (path_is(path, "/v1/generation")) {
        if (!method_is(req, "GET"))
            method_not_allowed(req, "GET");
        else
            lg_handle_generation(w, req);
        return 0;
    }
    if (path_is(path, "/v1/key") || path_is(path, "/v1/auth/key")) {
        if (!method_is(req, "GET"))
            method_not_allowed(req, "GET");
        else
            lg_handle_key(w, req);
        return 0;
    }
    static const struct {
        const char *path;
        int kind;
        int anthropic;
    } generate_routes[] = {{"/v1/chat/completions", LG_API_CHAT, 0},
                           {"/v1/completions", LG_API_COMPLETIONS, 0},
                           {"/v1/embeddings", LG_API_EMBEDDINGS, 0},
                           {"/v1/messages", LG_API_CHAT, 1}};
    for (size_t i = 0; i < sizeof(generate_routes) / sizeof(generate_routes[0]); ++i) {
        if (!path_is(path, generate_routes[i].path))
            continue;
        if (!method_is(req, "POST"))
            method_not_allowed(req, "POST");
        else
            lg_handle_generate_shared(w, req, generate_routes[i].kind, generate_routes[i].anthropic);
        return 0;
    }
    /* /v1/models/{author}/{slug}/endpoints */
    static const char models_prefix[] = "/v1/models/", endpoints_suffix[] = "/endpoints";
    size_t pl = sizeof(models_prefix) - 1, sl = sizeof(endpoints_suffix) - 1;
    if (path.len > pl + sl && memcmp(path.base, models_prefix, pl) == 0 &&
        memcmp(path.base + path.len - sl, endpoints_suffix, sl) == 0) {
        if (!method_is(req, "GET"))
            method_not_allowed(req, "GET");
        else
            lg_handle_model_endpoints(w, req, path.base + pl, path.len - pl - sl);
        return 0;
    }
    /* MCP: OAuth/OIDC discovery probes get a fast 404 (API keys, not OAuth: mcp.md §7), then /mcp and /mcp/<server> */
    if (lg_mcp_is_discovery_path(path.base, path.len)) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "no OAuth metadata: authenticate with an API key (Authorization: Bearer)", NULL);
        return 0;
    }
    if (path_is(path, "/mcp")) {
        lg_mcp_handle(w, req, "", 0);
        return 0;
    }
    if (path.len > 5 && memcmp(path.base, "/mcp/", 5) == 0) {
        lg_mcp_handle(w, req, path.base + 5, path.len - 5);
        return 0;
    }
    lg_respond_error(req, LG_ENOTFOUND, 404, "no such route", NULL);
    return 0;
}
