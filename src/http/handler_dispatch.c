/* SPDX-License-Identifier: MIT */
/*
 * Route table: maps method + path to a handler; unknown paths get a JSON 404,
 * known paths with the wrong method a JSON 405 with Allow.
 */
#include <string.h>
#include "http/dashboard.h"
#include "http/frontdoor.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/skins.h"
#include "llmgate/plugin.h"
#include "mcp/oauth_server.h"
#include "mcp/rest.h"
#include "mcp/transport_http.h"

static int path_is(h2o_iovec_t path, const char *lit)
{
    size_t n = strlen(lit);
    return path.len == n && memcmp(path.base, lit, n) == 0;
}

static lg_worker_t *worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(lg_worker_t, ctx, req->conn->ctx);
}

int lg_handle_request(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    lg_worker_t *w = worker_of(req);
    if (lg_frontdoor_screen(w, req))
        return 0;
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
        if (!lg_req_method_is(req, "GET") && !lg_req_method_is(req, "HEAD"))
            lg_respond_method_not_allowed(req, "GET");
        else
            lg_handle_health(w, req);
        return 0;
    }
    if (path_is(path, "/metrics")) {
        if (!lg_req_method_is(req, "GET") && !lg_req_method_is(req, "HEAD"))
            lg_respond_method_not_allowed(req, "GET");
        else
            lg_handle_metrics(w, req);
        return 0;
    }
    if (path_is(path, "/v1/models")) {
        if (!lg_req_method_is(req, "GET") && !lg_req_method_is(req, "HEAD"))
            lg_respond_method_not_allowed(req, "GET");
        else
            lg_handle_models(w, req);
        return 0;
    }
    if (path_is(path, "/v1/models/count") || path_is(path, "/v1/providers") || path_is(path, "/v1/credits")) {
        if (!lg_req_method_is(req, "GET") && !lg_req_method_is(req, "HEAD"))
            lg_respond_method_not_allowed(req, "GET");
        else if (path.base[4] == 'm')
            lg_handle_models_count(w, req);
        else if (path.base[4] == 'p')
            lg_handle_providers(w, req);
        else
            lg_handle_credits(w, req);
        return 0;
    }
    if (path_is(path, "/v1/generation")) {
        if (!lg_req_method_is(req, "GET"))
            lg_respond_method_not_allowed(req, "GET");
        else
            lg_handle_generation(w, req);
        return 0;
    }
    if (path_is(path, "/v1/key") || path_is(path, "/v1/auth/key")) {
        if (!lg_req_method_is(req, "GET"))
            lg_respond_method_not_allowed(req, "GET");
        else
            lg_handle_key(w, req);
        return 0;
    }
    if (path_is(path, "/v1/messages/count_tokens")) {
        if (!lg_req_method_is(req, "POST"))
            lg_respond_method_not_allowed(req, "POST");
        else
            lg_handle_count_tokens(w, req);
        return 0;
    }
    static const struct {
        const char *path;
        const lg_skin_t *skin;
    } generate_routes[] = {{"/v1/chat/completions", &lg_skin_openai_chat},
                           {"/v1/completions", &lg_skin_openai_completions},
                           {"/v1/embeddings", &lg_skin_openai_embeddings},
                           {"/v1/messages", &lg_skin_anthropic_messages},
                           {"/v1/responses", &lg_skin_openai_responses}};
    for (size_t i = 0; i < sizeof(generate_routes) / sizeof(generate_routes[0]); ++i) {
        if (!path_is(path, generate_routes[i].path))
            continue;
        if (!lg_req_method_is(req, "POST"))
            lg_respond_method_not_allowed(req, "POST");
        else
            lg_handle_generate_shared(w, req, generate_routes[i].skin);
        return 0;
    }
    /* /v1/models/{author}/{slug}/endpoints */
    static const char models_prefix[] = "/v1/models/", endpoints_suffix[] = "/endpoints";
    size_t pl = sizeof(models_prefix) - 1, sl = sizeof(endpoints_suffix) - 1;
    if (path.len > pl + sl && memcmp(path.base, models_prefix, pl) == 0 &&
        memcmp(path.base + path.len - sl, endpoints_suffix, sl) == 0) {
        if (!lg_req_method_is(req, "GET"))
            lg_respond_method_not_allowed(req, "GET");
        else
            lg_handle_model_endpoints(w, req, path.base + pl, path.len - pl - sl);
        return 0;
    }
    /* one model: /v1/models/{author}/{slug} (the OpenAI SDK's models.retrieve) and /v1/model/{author}/{slug} (OpenRouter) */
    static const char model_prefix[] = "/v1/model/";
    int openai_shape = path.len > pl && memcmp(path.base, models_prefix, pl) == 0;
    size_t mpl = openai_shape ? pl : sizeof(model_prefix) - 1;
    if (openai_shape || (path.len > mpl && memcmp(path.base, model_prefix, mpl) == 0)) {
        if (!lg_req_method_is(req, "GET") && !lg_req_method_is(req, "HEAD"))
            lg_respond_method_not_allowed(req, "GET");
        else
            lg_handle_model_get(w, req, path.base + mpl, path.len - mpl, openai_shape);
        return 0;
    }
    /* MCP OAuth (listeners with mcp.auth.mode "oauth"): metadata and /oauth/... endpoints */
    if (lg_mcp_oauth_route(w, req, path.base, path.len))
        return 0;
    /* MCP: OAuth/OIDC discovery probes get a fast 404 elsewhere (the gateway authenticates /mcp with API keys there;
     * mcp/auth.h), then /mcp and /mcp/<server> */
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
    /* the dashboard: /dashboard and its files; / and /ui lead there */
    if (path_is(path, "/dashboard") || (path.len > 11 && memcmp(path.base, "/dashboard/", 11) == 0)) {
        lg_handle_dashboard(w, req, path.base + 10, path.len - 10);
        return 0;
    }
    if (path_is(path, "/") || path_is(path, "/ui")) {
        lg_handle_dashboard_redirect(req);
        return 0;
    }
    /* REST mounts of single MCP upstreams (mcp.servers.<name>.rest_path, e.g. /api/swarm/<tool>) */
    if (path.len > 5 && memcmp(path.base, "/api/", 5) == 0 &&
        lg_mcp_rest_mount(w, req, req->path_normalized.base, req->path_normalized.len))
        return 0;
    lg_respond_error(req, LG_ENOTFOUND, 404, "no such route", NULL);
    return 0;
}
