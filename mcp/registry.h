/* SPDX-License-Identifier: MIT */
/*
 * Where tools, resources and prompts come from. A registry (one per MCP
 * endpoint: "/mcp" and each virtual server "/mcp/<name>") is an ordered list
 * of providers; a provider is a vtable + state (the conformance fixtures
 * now; stdio/HTTP upstreams and built-in tools later). The registry merges
 * the providers' lists (opaque cursor = provider + the provider's own
 * cursor), prefixes tool and prompt names per provider ("<prefix>__<name>"),
 * and routes calls back to the owning provider.
 *
 * Provider contract: every op receives an lg_mcp_call_t and must complete it
 * exactly once, now or later, on the call's worker loop, with
 * lg_mcp_call_result(), lg_mcp_call_error() or lg_mcp_call_decline() ("not
 * mine": the registry tries the next provider). A NULL op behaves like an
 * empty list (list ops) or a decline (targeted ops). Ops run on a worker
 * thread; provider state is shared by all workers, so a provider guards its
 * own mutable state.
 */
#ifndef LG_MCP_REGISTRY_H
#define LG_MCP_REGISTRY_H

#include <stdint.h>
#include <jansson.h>
#include <uv.h>

struct lg_config;
typedef struct lg_mcp_call lg_mcp_call_t;

/** Provider vtable. Names and URIs passed in are the provider's own (prefix already stripped). json args are borrowed. */
typedef struct lg_mcp_provider_ops {
    /* lists: complete with {"tools"|"resources"|"resourceTemplates"|"prompts": [...], "nextCursor"?: "..."};
     * cursor is the provider's own cursor from its previous page, NULL for the first page */
    void (*list_tools)(void *state, lg_mcp_call_t *call, const char *cursor);
    /* -> CallToolResult {content, structuredContent?, isError?}; decline = unknown tool */
    void (*call_tool)(void *state, lg_mcp_call_t *call, const char *name, json_t *arguments);
    void (*list_resources)(void *state, lg_mcp_call_t *call, const char *cursor);
    /* -> {contents:[...]}; decline = not this provider's URI */
    void (*read_resource)(void *state, lg_mcp_call_t *call, const char *uri);
    void (*list_templates)(void *state, lg_mcp_call_t *call, const char *cursor);
    /* on = 1 subscribe, 0 unsubscribe -> {}; decline = not this provider's URI */
    void (*subscribe)(void *state, lg_mcp_call_t *call, const char *uri, int on);
    void (*list_prompts)(void *state, lg_mcp_call_t *call, const char *cursor);
    /* -> {description?, messages}; decline = unknown prompt */
    void (*get_prompt)(void *state, lg_mcp_call_t *call, const char *name, json_t *arguments);
    /* completion/complete; ref {type:"ref/prompt",name} (name unprefixed) or {type:"ref/resource",uri};
     * -> {completion:{values,total?,hasMore?}}; decline = not this provider's ref */
    void (*complete)(void *state, lg_mcp_call_t *call, json_t *ref, json_t *argument, json_t *context);
    /* release state when the last registry holding the provider goes; may be NULL */
    void (*destroy)(void *state);
    /* a client's logging/setLevel (RFC 5424 level name), passed on to upstreams; fire and forget; may be NULL */
    void (*set_log_level)(void *state, const char *level);
} lg_mcp_provider_ops_t;

/** Items per merged list page (tools/list, resources/list, ...): one page spans every provider, so a client that
 * lists once sees everything below this size; above it, nextCursor continues exactly where the page stopped. */
#define LG_MCP_LIST_PAGE 1000

/** Separator between a provider prefix and a tool/prompt name (Envoy/Docker style; within [A-Za-z0-9_.-]). */
#define LG_MCP_PREFIX_SEP "__"

typedef struct lg_mcp_registry lg_mcp_registry_t;

/** Empty registry for endpoint name ("" = /mcp). New reference. */
lg_mcp_registry_t *lg_mcp_registry_create(const char *name);
lg_mcp_registry_t *lg_mcp_registry_ref(lg_mcp_registry_t *r);
void lg_mcp_registry_unref(lg_mcp_registry_t *r);
const char *lg_mcp_registry_name(const lg_mcp_registry_t *r);
size_t lg_mcp_registry_num_providers(const lg_mcp_registry_t *r);
/** Providers whose names are not prefixed. */
size_t lg_mcp_registry_num_unprefixed(const lg_mcp_registry_t *r);

/**
 * Append a provider. name: slug for logs and cursors; prefix: NULL = names as the provider has them, else
 * "<prefix>__<name>" (prefix must match [A-Za-z0-9_.-]{1,64}); capabilities: the server capabilities it contributes
 * (object, borrowed, merged into the registry's); ops/state: see the contract above; state is released with
 * ops->destroy when the registry goes (a provider added to several registries must be refcounted by its owner and
 * have a destroy that drops one reference). Returns 0, or -1 if prefix is invalid. Call before the registry is shared.
 */
int lg_mcp_registry_add(lg_mcp_registry_t *r, const char *name, const char *prefix, const json_t *capabilities,
                        const lg_mcp_provider_ops_t *ops, void *state);

/** Like lg_mcp_registry_add for a stateless built-in provider (state NULL, no destroy): every virtual server whose
 * tool patterns are set also gets it, so the built-ins its patterns match show up there. */
int lg_mcp_registry_add_builtin(lg_mcp_registry_t *r, const char *name, const char *prefix, const json_t *capabilities,
                                const lg_mcp_provider_ops_t *ops);

/** Virtual server: only tools whose exposed (prefixed) name matches one of the NULL-terminated patterns ("name",
 * "prefix*") are listed and callable. Copied; NULL = every tool. Call before the registry is shared. */
void lg_mcp_registry_set_tool_patterns(lg_mcp_registry_t *r, char *const *patterns);

/** Server capabilities to advertise: the union of the providers' (+ logging and completions). Borrowed. */
const json_t *lg_mcp_registry_capabilities(const lg_mcp_registry_t *r);

/**
 * The registry serving an endpoint for a config generation: "" or a virtual server name (len bytes). Registries are
 * built from conf on first use per generation (conformance fixtures, and whatever lg_mcp_registry_set_builder adds) and
 * shared by all workers. Returns a new reference, or NULL if no such endpoint exists. Thread-safe.
 */
lg_mcp_registry_t *lg_mcp_registry_for(const struct lg_config *conf, uint64_t generation, const char *name, size_t len);

/**
 * Hook for the federation stage: called (under the registry cache lock) when the registries of a config generation are
 * built, after the built-in ones; may create more registries (virtual servers) and add providers. add_registry takes
 * over r's reference.
 */
typedef void (*lg_mcp_registry_builder_fn)(const struct lg_config *conf, lg_mcp_registry_t *def,
                                           void (*add_registry)(lg_mcp_registry_t *r));
/* Builders are kept in a small list (up to 8) and run in registration order (the conformance fixtures register
 * last: they join /mcp only when no other unprefixed provider is there): registering the same fn twice is a no-op,
 * NULL clears every builder. Either way the cached registries are rebuilt on next use. */
void lg_mcp_registry_set_builder(lg_mcp_registry_builder_fn fn);

/* ---- the call handle providers complete (implemented in server.c) ---- */

/** Complete with a result object (stolen). */
void lg_mcp_call_result(lg_mcp_call_t *c, json_t *result);
/** Complete with a JSON-RPC error; data stolen, may be NULL. */
void lg_mcp_call_error(lg_mcp_call_t *c, int code, const char *message, json_t *data);
/** "Not mine": the registry tries the next provider, or answers not-found. */
void lg_mcp_call_decline(lg_mcp_call_t *c);
/** Convenience: complete a tools/call with {content:[{type:text,text}], isError:true}. */
void lg_mcp_call_tool_error(lg_mcp_call_t *c, const char *text);

/** notifications/message to the client, if the session's level lets it through. data stolen. */
void lg_mcp_call_log(lg_mcp_call_t *c, int level, const char *logger, json_t *data);
/** notifications/progress for this request; a no-op when the request carried no progressToken. message may be NULL. */
void lg_mcp_call_progress(lg_mcp_call_t *c, double progress, double total, const char *message);
/** The request's _meta.progressToken (borrowed) or NULL. */
const json_t *lg_mcp_call_progress_token(const lg_mcp_call_t *c);

/**
 * Send a request to the client (sampling/createMessage, elicitation/create, roots/list) on this request's stream and
 * call cb once with the client's result (error NULL) or error object (result NULL): also on cancellation, timeout
 * (timeout_ms, 0 = 60 s) or when it cannot be sent (then before this function returns). params stolen. cb runs on the
 * call's worker loop; the call stays valid until the provider completes it. Only ask for capabilities the client
 * declared (lg_mcp_call_client_has).
 */
typedef void (*lg_mcp_reply_fn)(lg_mcp_call_t *c, void *ud, json_t *result, json_t *error);
void lg_mcp_call_request(lg_mcp_call_t *c, const char *method, json_t *params, uint32_t timeout_ms, lg_mcp_reply_fn cb, void *ud);

/** The call is a stateless 2026-07-28 request (server->client requests become input-required results). */
int lg_mcp_call_modern(const lg_mcp_call_t *c);
/** The request's params object (borrowed, never NULL): inputResponses and requestState of a modern retry live here. */
const json_t *lg_mcp_call_params(const lg_mcp_call_t *c);

/** The endpoint the call came to ("" = /mcp, else the virtual server's name). */
const char *lg_mcp_call_server(const lg_mcp_call_t *c);

/** The client declared this capability at initialize ("sampling", "elicitation", "roots"). */
int lg_mcp_call_client_has(const lg_mcp_call_t *c, const char *capability);
/** The worker loop the call runs on (for timers). */
uv_loop_t *lg_mcp_call_loop(const lg_mcp_call_t *c);
/** The API key id of the session (NULL when auth is off); for allow-lists and audit. */
const char *lg_mcp_call_key_id(const lg_mcp_call_t *c);

/**
 * Cancellation (client notifications/cancelled, client gone, session deleted): fn(c, ud) runs once on the worker loop;
 * the provider stops its work and still completes the call (the response is then dropped). Setting a new hook replaces
 * the previous one; NULL clears it.
 */
void lg_mcp_call_on_cancel(lg_mcp_call_t *c, void (*fn)(lg_mcp_call_t *c, void *ud), void *ud);
int lg_mcp_call_cancelled(const lg_mcp_call_t *c);

/** Keep a call alive across asynchronous work (timers); every ref needs an unref. */
lg_mcp_call_t *lg_mcp_call_ref(lg_mcp_call_t *c);
void lg_mcp_call_unref(lg_mcp_call_t *c);

#endif
