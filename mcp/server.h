/* SPDX-License-Identifier: MIT */
/*
 * The MCP server core, transport-independent: initialize and version
 * negotiation, the static {method, handler} table, per-request call objects
 * (lg_mcp_call_t) with their cancellation, progress, logging and
 * server->client requests, and the routing of client responses back to the
 * waiting call. A transport (transport_http.c now, stdio later) feeds parsed
 * messages in and supplies a sink for what goes out.
 *
 * Threading: calls live on the worker thread that received the request.
 * Cross-worker events (a client response arriving on another connection, a
 * cancellation, a session deleted elsewhere) travel through the transport's
 * per-worker inbox (lg__mcp_post*), then run here on the owning worker.
 */
#ifndef LG_MCP_SERVER_H
#define LG_MCP_SERVER_H

#include <stdint.h>
#include <jansson.h>
#include <uv.h>
#include "mcp/jsonrpc.h"
#include "mcp/registry.h"
#include "mcp/session.h"

#define LG_MCP_MAX_WORKERS 256

/** Protocol revisions we speak, newest first. */
extern const char *const lg_mcp_supported_versions[];
#define LG_MCP_LATEST_VERSION "2025-11-25"
/** 1 if v (len bytes) is one of lg_mcp_supported_versions. */
int lg_mcp_version_supported(const char *v, size_t len);

/**
 * Where a request's output goes. emit: a notification or server->client request related to the request (may switch
 * the HTTP response to SSE); returns 0, or -1 if it cannot be delivered (dropped). respond: the request's final message
 * (NULL = none: a cancelled request gets no reply); exactly once per dispatched request. Both steal msg.
 */
typedef struct lg_mcp_sink {
    int (*emit)(struct lg_mcp_sink *sink, json_t *msg);
    void (*respond)(struct lg_mcp_sink *sink, json_t *msg);
} lg_mcp_sink_t;

struct lg_mcp_waiter;

/** Per-worker MCP state; created by the transport on a worker's first MCP request, lives as long as the thread. */
typedef struct lg_mcp_worker {
    unsigned index;
    uv_loop_t *loop;
    uint64_t seq;                  /* outgoing request ids and stream serials */
    struct lg_mcp_call *calls;     /* calls in flight on this worker */
    struct lg_mcp_waiter *waiters; /* server->client requests awaiting the client's answer */
    void *transport;               /* transport-private */
} lg_mcp_worker_t;

/** Route-through state the registry keeps on a call. */
typedef struct lg_mcp_route {
    int op;       /* registry op, 0 = none (answered by the server itself) */
    size_t index; /* provider being asked */
    char *name;   /* stripped name / URI being resolved; owned */
    char *cursor; /* provider cursor; owned */
    json_t *args; /* arguments / ref / argument (owned reference) */
    json_t *args2;
    json_t *args3;
    int on;      /* subscribe flag */
    size_t skip; /* lists: items of the current provider page already handed out on earlier pages */
    json_t *acc; /* lists: the merged page being filled (owned) */
} lg_mcp_route_t;

struct lg_mcp_call {
    lg_mcp_worker_t *mw;
    lg_mcp_session_t *session; /* reference */
    lg_mcp_registry_t *reg;    /* reference */
    lg_mcp_sink_t *sink;       /* NULL once the request side is gone */
    json_t *id;                /* request id (reference) */
    char id_key[96];           /* lg_jsonrpc_id_key(id) */
    char method[64];
    json_t *params;         /* reference; object, never NULL */
    json_t *progress_token; /* borrowed from params */
    unsigned refcnt;
    int completed, cancelled, silent; /* silent: client cancelled, send no reply */
    void (*on_cancel)(lg_mcp_call_t *c, void *ud);
    void *cancel_ud;
    lg_mcp_route_t route;
    int64_t started_us;              /* dispatch time (lg_now_us), for the tool-call audit */
    struct lg_mcp_call *next, *prev; /* mw->calls */
};

/**
 * initialize (no session yet): negotiate the version, create the session (bound to key_id and the registry's name),
 * and return the response message (result, or error for a malformed request with *session_out NULL). Synchronous.
 * Returns a new reference. *session_out: new reference or NULL. *status: HTTP status to use (200, or 503 when the
 * session table is full).
 */
json_t *lg_mcp_server_initialize(lg_mcp_registry_t *reg, const lg_jsonrpc_msg_t *msg, const char *key_id, uint32_t ttl_s,
                                 lg_mcp_session_t **session_out, int *status);

/**
 * 2026-07-28: dispatch one stateless request (already checked with lg_mcp_era_check) as its own ephemeral session:
 * client capabilities and info from params._meta, notifications/message only when _meta carries a logLevel. The
 * answer reaches sink->respond (possibly before this returns); the caller stamps it (lg_mcp_era_stamp). Returns 0, or
 * -1 when no session could be made (sink->respond is not called).
 */
int lg_mcp_server_dispatch_modern(lg_mcp_worker_t *mw, lg_mcp_registry_t *reg, const char *key_id, const lg_jsonrpc_msg_t *msg,
                                  lg_mcp_sink_t *sink);
/** server/discover's answer for reg (new reference). */
json_t *lg_mcp_server_discover(lg_mcp_registry_t *reg, const json_t *id);

/** Dispatch one request of an established session; its response reaches sink->respond (possibly before this returns). */
void lg_mcp_server_dispatch(lg_mcp_worker_t *mw, lg_mcp_session_t *s, lg_mcp_registry_t *reg, const lg_jsonrpc_msg_t *msg,
                            lg_mcp_sink_t *sink);

/** A client notification (initialized, cancelled, progress, roots/list_changed ...). */
void lg_mcp_server_notification(lg_mcp_worker_t *mw, lg_mcp_session_t *s, const lg_jsonrpc_msg_t *msg);

/** A client response or error response: routed to the worker whose call is waiting for it (via the transport). */
void lg_mcp_server_client_response(lg_mcp_worker_t *mw, lg_mcp_session_t *s, const lg_jsonrpc_msg_t *msg);

/** The transport's request side went away: cancel every call that reports to sink, and stop using it. */
void lg_mcp_server_detach_sink(lg_mcp_worker_t *mw, lg_mcp_sink_t *sink);

/**
 * Session-less entry point (REST facade /api/mcp): dispatch one request (method, params borrowed, may be NULL) for
 * key_id (NULL = anonymous) against reg on worker mw, as if from an established session; the answer (a JSON-RPC
 * response object) reaches sink->respond, possibly before this returns. An ephemeral session carries the key; it is
 * taken out of the session table at once (no Mcp-Session-Id exists for it). Returns 0, or -1 when no session could be
 * made (table full; sink->respond is not called).
 */
int lg_mcp_invoke(lg_mcp_worker_t *mw, lg_mcp_registry_t *reg, const char *key_id, const char *method, json_t *params,
                  lg_mcp_sink_t *sink);

/**
 * Per-key tool policy, set once at start-up by the integrator (mcp/auth.c; NULL or NULL members = everything allowed,
 * nothing logged). Runs on worker threads; must be thread-safe and must not block.
 *  - allowed: 1 if key_id (NULL = anonymous) may see / call the prefixed tool name. tools/list pages are filtered by it;
 *    a tools/call of a hidden tool is answered -32000 "tool not permitted for this key" (data.reason "forbidden").
 *  - admit: per-call admission (rate limits) before a tools/call is routed: 0 = go, else a JSON-RPC error with code,
 *    message and data (new reference or NULL) is the answer (HTTP 200).
 *  - done: after every tools/call answer (also denials and errors): outcome "ok", "tool_error" (isError result),
 *    "error" (JSON-RPC error; reason = error.data.reason when present), "cancelled"; for the audit log.
 */
typedef struct lg_mcp_tool_policy {
    int (*allowed)(const char *key_id, const char *tool);
    int (*admit)(const char *key_id, const char *tool, int *code, char *msg, size_t msglen, json_t **data);
    void (*done)(const lg_mcp_call_t *c, const char *key_id, const char *tool, const char *outcome, const char *reason,
                 double duration_s);
} lg_mcp_tool_policy_t;
void lg_mcp_set_tool_policy(const lg_mcp_tool_policy_t *p);

/* ---- run on the owning worker by the transport's inbox ---- */
void lg__mcp_server_deliver_response(lg_mcp_worker_t *mw, const char *session_id, json_t *msg);
void lg__mcp_server_cancel(lg_mcp_worker_t *mw, const char *session_id, const char *id_key);
void lg__mcp_server_session_gone(lg_mcp_worker_t *mw, const char *session_id);

/* ---- delivered by the registered transport to another (or the same) worker's loop ---- */
enum lg_mcp_post_type {
    LG_MCP_POST_RESPONSE = 1, /* client response for a waiter: msg */
    LG_MCP_POST_CANCEL,       /* cancel the call key on session */
    LG_MCP_POST_STREAM_SEND,  /* send msg on the session's GET stream */
    LG_MCP_POST_SESSION_GONE  /* session deleted/expired: close its GET stream, cancel its calls */
};
/** Post to worker (index); msg stolen (may be NULL); key may be NULL. Returns 0, -1 if that worker has no MCP state (or
 * no transport registered). Delegates to the registered transport. */
int lg__mcp_post(unsigned worker, int type, const char *session_id, const char *key, json_t *msg);
/** Post to every worker with MCP state. msg is copied per worker and released. */
void lg__mcp_post_all(int type, const char *session_id, const char *key, json_t *msg);

/** What a transport supplies so the core can reach other workers' loops (the core never includes a transport). */
typedef struct lg_mcp_transport_ops {
    int (*post)(unsigned worker, int type, const char *session_id, const char *key, json_t *msg);
    void (*post_all)(int type, const char *session_id, const char *key, json_t *msg);
} lg_mcp_transport_ops_t;
/** Register the transport (transport_http.c does it when its first worker starts). NULL unregisters. Thread-safe. */
void lg_mcp_server_set_transport(const lg_mcp_transport_ops_t *ops);

/* ---- server-initiated notifications for the later stages ---- */
/** Send a notification to one session's GET stream (dropped when it has none). msg stolen. */
void lg_mcp_notify_session(lg_mcp_session_t *s, json_t *msg);
/** notifications/<kind>/list_changed ("tools", "resources", "prompts") to every session of endpoint server. */
void lg_mcp_notify_list_changed(const char *server, const char *kind);
/** notifications/resources/updated {uri} to every session subscribed to uri. */
void lg_mcp_notify_resource_updated(const char *uri);

/* ---- registry.c entry points, called by the server ---- */
enum { LG__LIST_TOOLS = 1, LG__LIST_RESOURCES, LG__LIST_TEMPLATES, LG__LIST_PROMPTS };
void lg__registry_list(lg_mcp_registry_t *r, lg_mcp_call_t *c, int kind, const char *cursor);
void lg__registry_call_tool(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *name, json_t *args);
void lg__registry_read_resource(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *uri);
void lg__registry_subscribe(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *uri, int on);
void lg__registry_get_prompt(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *name, json_t *args);
void lg__registry_complete(lg_mcp_registry_t *r, lg_mcp_call_t *c, json_t *ref, json_t *argument, json_t *context);
int lg__registry_on_result(lg_mcp_call_t *c, json_t **result);
int lg__registry_on_decline(lg_mcp_call_t *c);
int lg__registry_on_error(lg_mcp_call_t *c);
void lg__registry_set_log_level(lg_mcp_registry_t *r, const char *level);
void lg__registry_route_dispose(lg_mcp_route_t *route);

/** Parse our own outgoing request id ("lg.<worker>.<seq>") into the worker index; -1 if it is not ours. */
int lg__mcp_outgoing_worker(const json_t *id);

#endif
