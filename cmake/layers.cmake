# SPDX-License-Identifier: MIT
# The layer map: which layer every source directory belongs to. Lower layers never include upper ones; a layer may
# include its own and every lower layer, and nothing beside it except the exact edges listed below. The build enforces
# this twice (see README "Architecture"): each layer is a static library that sees only the include roots of its own
# and lower layers, and cmake/check_layers.cmake fails the build on any include that breaks the map.
# This file only sets variables, so the checker can read it in script mode.

# Layers from the bottom up; "http" and "mcp" share one rank (beside each other).
set(LG_LAYER_ORDER core domain io services runtime pipeline http mcp app)
set(LG_LAYER_RANK_core 0)
set(LG_LAYER_RANK_domain 1)
set(LG_LAYER_RANK_io 2)
set(LG_LAYER_RANK_services 3)
set(LG_LAYER_RANK_runtime 4)
set(LG_LAYER_RANK_pipeline 5)
set(LG_LAYER_RANK_http 6)
set(LG_LAYER_RANK_mcp 6)
set(LG_LAYER_RANK_app 7)

# Directory → layer. The key is the first component of an include path ("core" in "core/log.h"); its files live in
# src/<key>/, except llmgate (include/llmgate/, the public plugin ABI) and mcp (mcp/). Subdirectories inherit it.
set(LG_LAYER_DIR_llmgate core)  # public ABI: version, error codes, plugin.h
set(LG_LAYER_DIR_core core)     # config parsing, errors, log, util, spinlock
set(LG_LAYER_DIR_json core)     # JSON scanner
set(LG_LAYER_DIR_domain domain) # request, candidate, key record: the types every layer above shares
set(LG_LAYER_DIR_metrics domain) # metrics registry
set(LG_LAYER_DIR_plugin domain)  # plugin loader and host table
set(LG_LAYER_DIR_store io)       # SQLite: keys, ledger
set(LG_LAYER_DIR_cluster services) # Redis shared state: limits, credit, health, key changes (uses auth and router)
set(LG_LAYER_DIR_upstream io)    # curl multi client, SSE parser
set(LG_LAYER_DIR_router services)
set(LG_LAYER_DIR_policy services)
set(LG_LAYER_DIR_auth services)
set(LG_LAYER_DIR_runtime runtime) # config snapshot, workers and their per-snapshot runtime
set(LG_LAYER_DIR_pipeline pipeline) # attempts, relay, settle
set(LG_LAYER_DIR_http http) # server, ingress skins, handlers, admin
set(LG_LAYER_DIR_ui http)   # dashboard static files (served by http; C only if generated from them)
set(LG_LAYER_DIR_mcp mcp)
set(LG_LAYER_DIR_cli app) # and src/main.c, the only file directly in src/

# Where a key's files live, relative to the source root (default src/<key>).
set(LG_LAYER_PATH_llmgate include/llmgate)
set(LG_LAYER_PATH_mcp mcp)

# The only includes allowed between the two layers of the same rank, as "<file> -> <include>".
# mcp's transport and REST bridge are HTTP handlers: they may use these http headers, and only these.
set(LG_LAYER_ALLOWED_mcp
    "mcp/oauth_server.c -> http/handlers.h"
    "mcp/oauth_server.c -> http/respond.h"
    "mcp/rest.c -> http/respond.h"
    "mcp/transport_http.c -> http/respond.h")
# TODO(#8): the http → mcp half of the include circle, removed by the MCP rework (transport registers its callbacks
# at init, each module registers its own metrics collector). Delete these lines; cmake/layer_libraries.cmake then
# drops the link from lg_http to lg_mcp by itself.
set(LG_LAYER_ALLOWED_http
    "src/http/admin_views.c -> mcp/federation.h"
    "src/http/admin_views.c -> mcp/session.h"
    "src/http/handler_admin.c -> mcp/federation.h"
    "src/http/handler_dispatch.c -> mcp/oauth_server.h"
    "src/http/handler_dispatch.c -> mcp/rest.h"
    "src/http/handler_dispatch.c -> mcp/transport_http.h"
    "src/http/handler_info.c -> mcp/federation.h")
