/* SPDX-License-Identifier: MIT */
/*
 * Federation of upstream MCP servers (see federation.h).
 *
 * Threads. An upstream object is shared: its identity, config copy, refcount
 * and summary (for foreach) are guarded by table_mu; everything about its
 * connection (transport, MCP lifecycle, remapped ids, caches of its lists,
 * circuit breaker, backoff) is touched only on the MCP upstream thread.
 * Provider ops run on a worker: they copy what they need into a fed_req,
 * post it to the upstream thread and hold the call (lg_mcp_call_ref) until
 * the outcome comes back through the worker loop's mailbox. JSON values
 * never cross threads while shared: a value moves with exclusive ownership
 * (deep copies on both sides), since jansson refcounts are not atomic.
 *
 * Upstream lifecycle (upstream thread): connect (spawn / first POST) ->
 * initialize -> notifications/initialized -> list tools (all pages),
 * resources, templates, prompts as advertised -> READY. A dead child or a
 * failed handshake -> BACKOFF (0.5 s doubling to 30 s) -> connect again; its
 * tools disappear meanwhile (notifications/tools/list_changed to clients).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "llmgate/version.h"
#include "mcp/builtin.h"
#include "mcp/federation.h"
#include "mcp/jsonrpc.h"
#include "mcp/naming.h"
#include "mcp/registry.h"
#include "mcp/server.h"
#include "mcp/upstream_http.h"
#include "mcp/upstream_stdio.h"
#include "mcp/upstream_thread.h"
#include "metrics/metrics.h"

#define TICK_MS 100
#define PAGE_SIZE 100
#define MAX_LIST_PAGES 200
#define READY_RESETS_BACKOFF_MS 10000
#define PROTOCOL_VERSION "2025-11-25"

enum { ST_IDLE = 0, ST_STARTING, ST_LISTING, ST_READY, ST_BACKOFF, ST_STOPPED };
enum { CIRCUIT_CLOSED = 0, CIRCUIT_OPEN, CIRCUIT_HALF };
enum { SUM_DOWN = 0, SUM_UP, SUM_OPEN };
enum { K_TOOLS = 0, K_RESOURCES, K_TEMPLATES, K_PROMPTS, K__COUNT };
enum { P_CALL = 1, P_INIT, P_LIST, P_PING, P_LEVEL };
enum {
    OP_LIST_TOOLS = 1,
    OP_LIST_RESOURCES,
    OP_LIST_TEMPLATES,
    OP_LIST_PROMPTS,
    OP_CALL_TOOL,
    OP_READ,
    OP_SUBSCRIBE,
    OP_GET_PROMPT,
    OP_COMPLETE
};
enum { R_NONE = 0, R_RESULT, R_ERROR, R_DECLINE, R_TOOL_ERROR };

static const char *const kind_method[K__COUNT] = {"tools/list", "resources/list", "resources/templates/list", "prompts/list"};
static const char *const kind_key[K__COUNT] = {"tools", "resources", "resourceTemplates", "prompts"};
static const char *const kind_notify[K__COUNT] = {"tools", "resources", "resources", "prompts"};

static unsigned backoff_min_ms = 500, backoff_max_ms = 30000, start_grace_ms = 10000;
static void (*notify_list_changed)(const char *server, const char *kind) = lg_mcp_notify_list_changed;
static void (*notify_updated)(const char *uri) = lg_mcp_notify_resource_updated;

struct fed_req;

struct pending {
    int64_t id;
    int kind; /* P_* */
    int list_kind;
    int64_t deadline_ms;
    struct fed_req *req; /* P_CALL */
    struct pending *next;
};

struct upstream {
    /* ---- guarded by table_mu ---- */
    unsigned refcnt; /* providers + the applied config; 0 = retired */
    int dead;        /* stopped by lg_mcp_federation_shutdown: never reused */
    struct upstream *tnext;
    char **endpoints; /* registries exposing it ("" = /mcp, else virtual server names) */
    size_t num_endpoints;
    /* ---- immutable after creation ---- */
    char *name;
    char *prefix; /* NULL = unprefixed */
    char *sig;    /* settings signature: equal signature = reuse the running upstream on reload */
    char *command, **args, **env, *cwd, *url;
    json_t *headers;
    uint32_t timeout_ms;
    uint32_t circuit_failures, circuit_open_ms;
    /* ---- summary, written on the upstream thread, read by foreach ---- */
    _Atomic int sum_state, sum_pid;
    _Atomic size_t sum_tools;
    /* ---- upstream thread only ---- */
    struct upstream *anext; /* active list */
    int state, retired;
    lg_mcp_stdio_t *stdio;
    lg_mcp_http_t *http;
    int64_t next_id;
    struct pending *pending;
    struct fed_req *parked; /* requests waiting for the first READY */
    json_t *caps;           /* server capabilities */
    json_t *cache[K__COUNT];
    int listing_kind;   /* -1 = no listing in progress */
    unsigned list_mask; /* kinds still to (re-)list */
    json_t *accum;      /* items of the listing in progress */
    int list_pages;
    int ever_failed, ever_ready;
    int64_t ready_since, restart_at, first_start;
    uint32_t backoff_ms;
    int circuit;
    uint32_t failures;
    int64_t open_until;
    char last_error[200];
};

struct fed_provider {
    struct upstream *up; /* reference */
    char **patterns;     /* NULL-terminated tool patterns (virtual server), NULL = everything */
};

struct fed_req {
    _Atomic int refcnt;
    /* worker side */
    lg_mcp_call_t *call; /* reference until delivered */
    uv_loop_t *loop;
    int delivered;
    int64_t started_us;
    /* request, set on the worker before posting */
    struct upstream *up; /* borrowed: the call holds the registry, which holds the provider's reference */
    char **patterns;     /* borrowed likewise */
    int op;
    char *name;   /* tool / prompt name (unprefixed), or URI */
    char *cursor; /* list cursor */
    json_t *args; /* owned deep copies */
    json_t *args2, *args3;
    int on;
    int has_progress;
    int retried; /* re-sent once already after a lost session or transport failure */
    /* upstream side */
    int64_t upstream_id; /* != 0 while pending upstream */
    int parked;
    struct fed_req *pnext;
    /* outcome, moved to the worker with the delivery */
    int outcome;
    json_t *result;
    int err_code;
    char *err_msg;
    json_t *err_data;
};

struct fed_event {
    struct fed_req *req; /* reference */
    int is_log;
    int is_request;          /* an upstream request to relay to the client (sampling, elicitation, roots) */
    char *method;            /* is_request */
    json_t *upstream_id;     /* is_request: the upstream's request id (owned deep copy) */
    struct upstream *up_ref; /* is_request: a reference, so the answer can still be sent */
    double progress, total;
    char *message;
    int level;
    char *logger;
    json_t *data;
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct upstream *table;    /* every live upstream */
static struct upstream **applied; /* config references of the applied config */
static size_t num_applied;
static const void *applied_conf;
static struct upstream *active; /* upstream thread: registered upstreams */
static uv_timer_t tick;
static int tick_on;
static int shut_down;

/* ---- small helpers ---- */

/* Like lg_strv_dup(), but NULL becomes an empty vector. */
static char **strv_dup(char *const *v)
{
    static char *const none[] = {NULL};
    return lg_strv_dup(v != NULL ? v : none);
}

/* Exposed name = "<prefix>__<local>" or local; does the virtual server's pattern list take it? */
static int tool_allowed(const struct upstream *up, char **patterns, const char *local)
{
    if (patterns == NULL)
        return 1;
    char full[512];
    if (up->prefix != NULL)
        snprintf(full, sizeof(full), "%s%s%s", up->prefix, LG_MCP_PREFIX_SEP, local);
    else
        snprintf(full, sizeof(full), "%s", local);
    return lg_mcp_patterns_match(patterns, full);
}

static void notify_endpoints(struct upstream *up, const char *kind)
{
    char **eps;
    size_t n;
    pthread_mutex_lock(&table_mu);
    n = up->num_endpoints;
    eps = lg_malloc((n + 1) * sizeof(*eps));
    for (size_t i = 0; i < n; ++i)
        eps[i] = lg_strdup(up->endpoints[i]);
    pthread_mutex_unlock(&table_mu);
    for (size_t i = 0; i < n; ++i) {
        notify_list_changed(eps[i], kind);
        free(eps[i]);
    }
    free(eps);
}

static void update_summary(struct upstream *up)
{
    int s = up->circuit != CIRCUIT_CLOSED ? SUM_OPEN : up->state == ST_READY ? SUM_UP : SUM_DOWN;
    atomic_store(&up->sum_state, s);
    atomic_store(&up->sum_pid, up->stdio != NULL ? lg__mcp_stdio_pid(up->stdio) : 0);
    atomic_store(&up->sum_tools, up->state == ST_READY ? json_array_size(up->cache[K_TOOLS]) : 0);
}

/* ---- fed_req: refcounted across threads ---- */

static void req_unref(struct fed_req *r)
{
    if (atomic_fetch_sub(&r->refcnt, 1) != 1)
        return;
    free(r->name);
    free(r->cursor);
    json_decref(r->args);
    json_decref(r->args2);
    json_decref(r->args3);
    json_decref(r->result);
    free(r->err_msg);
    json_decref(r->err_data);
    free(r);
}

/* Worker: hand the outcome to the call. */
static void deliver_on_worker(void *arg)
{
    struct fed_req *r = arg;
    lg_mcp_call_t *c = r->call;
    r->delivered = 1;
    lg_mcp_call_on_cancel(c, NULL, NULL);
    if (r->op == OP_CALL_TOOL && r->outcome != R_DECLINE) {
        int ok = r->outcome == R_RESULT && !json_is_true(json_object_get(r->result, "isError"));
        double dur = (double)(lg_now_us() - r->started_us) / 1e6;
        lg_metrics_mcp_call(c->mw != NULL ? c->mw->index : lg_metrics_shared_shard(), r->up->name, r->name, ok, dur);
    }
    json_t *res = r->result, *data = r->err_data;
    r->result = r->err_data = NULL;
    switch (r->outcome) {
    case R_RESULT:
        lg_mcp_call_result(c, res);
        break;
    case R_ERROR:
        lg_mcp_call_error(c, r->err_code, r->err_msg != NULL ? r->err_msg : "upstream error", data);
        data = NULL;
        break;
    case R_TOOL_ERROR:
        if (r->op == OP_CALL_TOOL)
            lg_mcp_call_tool_error(c, r->err_msg != NULL ? r->err_msg : "upstream error");
        else
            lg_mcp_call_error(c, LG_JSONRPC_INTERNAL_ERROR, r->err_msg != NULL ? r->err_msg : "upstream error", NULL);
        break;
    default:
        lg_mcp_call_decline(c);
        break;
    }
    json_decref(data);
    lg_mcp_call_unref(c);
    req_unref(r);
}

/* Upstream thread: the request is finished here; send the outcome to its worker. Consumes the upstream thread's
 * reference (the worker's one travels with the delivery). */
static void req_finish(struct fed_req *r)
{
    if (lg__mcp_mailbox_post(r->loop, deliver_on_worker, r) != 0)
        LG_LOG(LG_LOG_DEBUG, "mcp", "worker loop gone; MCP result dropped");
    req_unref(r);
}

static void req_set_error(struct fed_req *r, int code, const char *msg, json_t *data)
{
    r->outcome = R_ERROR;
    r->err_code = code;
    free(r->err_msg);
    r->err_msg = lg_strdup(msg);
    json_decref(r->err_data);
    r->err_data = data;
}

static void req_set_tool_error(struct fed_req *r, const char *msg)
{
    r->outcome = R_TOOL_ERROR;
    free(r->err_msg);
    r->err_msg = lg_strdup(msg);
}

/* ---- upstream requests relayed to the client (mcp.md 8.1) ---- */

static int up_send(struct upstream *up, json_t *msg, int64_t rid);
static void up_unref(struct upstream *up);

struct relay {
    struct upstream *up; /* reference */
    json_t *upstream_id; /* owned */
    json_t *answer;      /* the response message to send upstream (owned) */
};

/* Upstream thread: send the client's (or the router's) answer to the upstream that asked. */
static void job_relay_answer(void *arg)
{
    struct relay *rl = arg;
    if (!rl->up->retired && rl->up->state != ST_STOPPED)
        up_send(rl->up, rl->answer, 0);
    else
        json_decref(rl->answer);
    json_decref(rl->upstream_id);
    up_unref(rl->up);
    free(rl);
}

static void relay_answer(struct relay *rl, json_t *result, json_t *error)
{
    if (error != NULL) {
        json_t *code = json_object_get(error, "code");
        const char *msg = json_string_value(json_object_get(error, "message"));
        json_t *data = json_object_get(error, "data");
        rl->answer = lg_jsonrpc_make_error(rl->upstream_id,
                                           json_is_integer(code) ? (int)json_integer_value(code) : LG_JSONRPC_INTERNAL_ERROR,
                                           msg != NULL ? msg : "client error", data != NULL ? json_deep_copy(data) : NULL);
    } else {
        rl->answer = lg_jsonrpc_make_result(rl->upstream_id, json_is_object(result) ? json_deep_copy(result) : json_object());
    }
    if (lg__mcp_upthread_post(job_relay_answer, rl) != 0) {
        json_decref(rl->answer);
        json_decref(rl->upstream_id);
        up_unref(rl->up);
        free(rl);
    }
}

static void relay_reply(lg_mcp_call_t *c, void *ud, json_t *result, json_t *error)
{
    (void)c;
    relay_answer(ud, result, error);
}

static void relay_refuse(struct relay *rl, int code, const char *msg)
{
    json_t *err = json_pack("{s:i,s:s}", "code", code, "message", msg);
    relay_answer(rl, NULL, err);
    json_decref(err);
}

static const char *relay_capability(const char *method)
{
    if (strcmp(method, "sampling/createMessage") == 0)
        return "sampling";
    if (strcmp(method, "elicitation/create") == 0)
        return "elicitation";
    if (strcmp(method, "roots/list") == 0)
        return "roots";
    return NULL;
}

/* Worker: the call this upstream request belongs to runs here; ask its client (on the call's own stream). */
static void relay_on_worker(struct fed_event *ev)
{
    struct fed_req *r = ev->req;
    struct relay *rl = lg_malloc(sizeof(*rl));
    rl->up = ev->up_ref;
    rl->upstream_id = ev->upstream_id;
    rl->answer = NULL;
    ev->up_ref = NULL;
    ev->upstream_id = NULL;
    const char *cap = relay_capability(ev->method);
    json_t *params = ev->data;
    ev->data = NULL;
    if (r->delivered || lg_mcp_call_cancelled(r->call)) {
        json_decref(params);
        relay_refuse(rl, LG_MCP_REQUEST_CANCELLED, "the client call this request belongs to is over");
    } else if (cap != NULL && lg_mcp_call_client_has(r->call, cap)) {
        lg_mcp_call_request(r->call, ev->method, params, r->up->timeout_ms, relay_reply, rl);
    } else if (strcmp(ev->method, "sampling/createMessage") == 0 && lg_mcp_builtin_can_sample(r->call)) {
        /* the client cannot sample: the gateway's own router answers, on the caller's key */
        lg_mcp_builtin_sample(r->call, params, relay_reply, rl);
        json_decref(params);
    } else {
        json_decref(params);
        char msg[200];
        snprintf(msg, sizeof(msg), "the client did not declare the %s capability", cap != NULL ? cap : ev->method);
        relay_refuse(rl, LG_JSONRPC_METHOD_NOT_FOUND, msg);
    }
}

static void on_event_worker(void *arg)
{
    struct fed_event *ev = arg;
    struct fed_req *r = ev->req;
    if (ev->is_request) {
        relay_on_worker(ev);
    } else if (!r->delivered) {
        if (ev->is_log)
            lg_mcp_call_log(r->call, ev->level, ev->logger, ev->data);
        else
            lg_mcp_call_progress(r->call, ev->progress, ev->total, ev->message);
        ev->data = NULL;
    }
    json_decref(ev->data);
    free(ev->message);
    free(ev->logger);
    free(ev->method);
    req_unref(r);
    free(ev);
}

static void post_event(struct fed_req *r, struct fed_event *ev)
{
    atomic_fetch_add(&r->refcnt, 1);
    ev->req = r;
    if (lg__mcp_mailbox_post(r->loop, on_event_worker, ev) != 0) {
        if (ev->up_ref != NULL) {
            /* the worker is gone: nobody can answer */
            up_send(ev->up_ref, lg_jsonrpc_make_error(ev->upstream_id, LG_MCP_REQUEST_CANCELLED, "client gone", NULL), 0);
            json_decref(ev->upstream_id);
            up_unref(ev->up_ref);
        }
        json_decref(ev->data);
        free(ev->message);
        free(ev->logger);
        free(ev->method);
        free(ev);
        req_unref(r);
    }
}

/* ---- sending (upstream thread) ---- */

static int up_send(struct upstream *up, json_t *msg, int64_t rid)
{
    int rc = -1;
    if (up->stdio != NULL)
        rc = lg__mcp_stdio_send(up->stdio, msg);
    else if (up->http != NULL)
        rc = lg__mcp_http_send(up->http, msg, rid);
    json_decref(msg);
    return rc;
}

static void up_notify(struct upstream *up, const char *method, json_t *params)
{
    up_send(up, lg_jsonrpc_make_notification(method, params), 0);
}

static struct pending *up_request(struct upstream *up, const char *method, json_t *params, int kind, struct fed_req *r)
{
    struct pending *p = lg_malloc(sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->id = ++up->next_id;
    p->kind = kind;
    p->req = r;
    p->deadline_ms = lg_now_ms() + up->timeout_ms;
    p->next = up->pending;
    up->pending = p;
    json_t *id = json_integer(p->id);
    int rc = up_send(up, lg_jsonrpc_make_request(id, method, params), p->id);
    json_decref(id);
    if (rc != 0) {
        up->pending = p->next;
        free(p);
        return NULL;
    }
    if (r != NULL)
        r->upstream_id = p->id;
    return p;
}

static struct pending *pending_take(struct upstream *up, int64_t id)
{
    for (struct pending **pp = &up->pending; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            return p;
        }
    }
    return NULL;
}

static struct pending *pending_find(struct upstream *up, int64_t id)
{
    for (struct pending *p = up->pending; p != NULL; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

/* ---- circuit breaker ---- */

static void circuit_failure(struct upstream *up, const char *why)
{
    snprintf(up->last_error, sizeof(up->last_error), "%s", why);
    ++up->failures;
    if (up->circuit == CIRCUIT_HALF || (up->circuit == CIRCUIT_CLOSED && up->failures >= up->circuit_failures)) {
        if (up->circuit == CIRCUIT_CLOSED)
            LG_LOG(LG_LOG_WARN, "mcp", "upstream %s: circuit open after %u consecutive failures (last: %s)", up->name, up->failures,
                   why);
        up->circuit = CIRCUIT_OPEN;
        up->open_until = lg_now_ms() + up->circuit_open_ms;
    }
    update_summary(up);
}

static void circuit_success(struct upstream *up)
{
    up->failures = 0;
    if (up->circuit != CIRCUIT_CLOSED) {
        LG_LOG(LG_LOG_INFO, "mcp", "upstream %s: circuit closed", up->name);
        up->circuit = CIRCUIT_CLOSED;
        update_summary(up);
    }
}

/* ---- answering requests from the caches (upstream thread) ---- */

static int list_kind_of(int op)
{
    switch (op) {
    case OP_LIST_TOOLS:
        return K_TOOLS;
    case OP_LIST_RESOURCES:
        return K_RESOURCES;
    case OP_LIST_TEMPLATES:
        return K_TEMPLATES;
    default:
        return K_PROMPTS;
    }
}

static void answer_list(struct upstream *up, struct fed_req *r)
{
    int k = list_kind_of(r->op);
    json_t *items = up->state == ST_READY ? up->cache[k] : NULL;
    size_t off = 0;
    if (r->cursor != NULL) {
        char *end;
        unsigned long v = strtoul(r->cursor, &end, 10);
        if (end == r->cursor || *end != '\0') {
            req_set_error(r, LG_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
            return;
        }
        off = v;
    }
    json_t *page = json_array(), *res = json_object();
    size_t seen = 0, i;
    json_t *it;
    int more = 0;
    json_array_foreach(items, i, it)
    {
        if (k == K_TOOLS && r->patterns != NULL) {
            const char *nm = json_string_value(json_object_get(it, "name"));
            if (nm == NULL || !tool_allowed(up, r->patterns, nm))
                continue;
        }
        if (seen++ < off)
            continue;
        if (json_array_size(page) == PAGE_SIZE) {
            more = 1;
            break;
        }
        json_array_append_new(page, json_deep_copy(it));
    }
    json_object_set_new(res, kind_key[k], page);
    if (more) {
        char cur[32];
        snprintf(cur, sizeof(cur), "%zu", off + PAGE_SIZE);
        json_object_set_new(res, "nextCursor", json_string(cur));
    }
    r->outcome = R_RESULT;
    r->result = res;
}

static json_t *find_named(json_t *arr, const char *key, const char *name)
{
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it)
    {
        const char *nm = json_string_value(json_object_get(it, key));
        if (nm != NULL && strcmp(nm, name) == 0)
            return it;
    }
    return NULL;
}

/* URI served by this upstream: a listed resource, or matching a template's literal part before its first '{' */
static int uri_known(struct upstream *up, const char *uri)
{
    if (find_named(up->cache[K_RESOURCES], "uri", uri) != NULL)
        return 1;
    size_t i;
    json_t *it;
    json_array_foreach(up->cache[K_TEMPLATES], i, it)
    {
        const char *t = json_string_value(json_object_get(it, "uriTemplate"));
        if (t == NULL)
            continue;
        const char *brace = strchr(t, '{');
        size_t lit = brace != NULL ? (size_t)(brace - t) : strlen(t);
        if (lit > 0 && strncmp(t, uri, lit) == 0 && (brace != NULL || uri[lit] == '\0'))
            return 1;
    }
    return 0;
}

static const char *state_word(const struct upstream *up)
{
    switch (up->state) {
    case ST_STARTING:
    case ST_LISTING:
        return "starting";
    case ST_BACKOFF:
        return "restarting";
    default:
        return "stopped";
    }
}

/* Start or answer a request; returns 1 if it went upstream (pending) or was parked, 0 if r is answered (outcome set). */
static int process(struct upstream *up, struct fed_req *r)
{
    char msg[400];
    int op = r->op;
    if (op <= OP_LIST_PROMPTS) {
        if (up->state != ST_READY && !up->ever_ready && !up->ever_failed && !up->retired && up->state != ST_STOPPED) {
            r->parked = 1;
            r->pnext = up->parked;
            up->parked = r;
            return 1;
        }
        answer_list(up, r);
        return 0;
    }
    if (up->state != ST_READY) {
        if (!up->ever_ready && !up->ever_failed && !up->retired && up->state != ST_STOPPED) {
            r->parked = 1;
            r->pnext = up->parked;
            up->parked = r;
            return 1;
        }
        /* a prefixed name is unambiguous: say what is wrong instead of "unknown tool" */
        if (op == OP_CALL_TOOL && up->prefix != NULL && tool_allowed(up, r->patterns, r->name)) {
            snprintf(msg, sizeof(msg), "upstream %s unavailable (%s%s%s)", up->name, state_word(up),
                     up->last_error[0] != '\0' ? ": " : "", up->last_error);
            req_set_tool_error(r, msg);
        } else {
            r->outcome = R_DECLINE;
        }
        return 0;
    }
    const char *method = NULL;
    json_t *params = NULL;
    switch (op) {
    case OP_CALL_TOOL:
        if (find_named(up->cache[K_TOOLS], "name", r->name) == NULL || !tool_allowed(up, r->patterns, r->name)) {
            r->outcome = R_DECLINE;
            return 0;
        }
        method = "tools/call";
        params = json_pack("{s:s,s:O}", "name", r->name, "arguments", r->args); /* args: never NULL for tools/call */
        break;
    case OP_READ:
        if (!uri_known(up, r->name)) {
            r->outcome = R_DECLINE;
            return 0;
        }
        method = "resources/read";
        params = json_pack("{s:s}", "uri", r->name);
        break;
    case OP_SUBSCRIBE:
        if (!json_is_true(json_object_get(json_object_get(up->caps, "resources"), "subscribe")) || !uri_known(up, r->name)) {
            r->outcome = R_DECLINE;
            return 0;
        }
        method = r->on ? "resources/subscribe" : "resources/unsubscribe";
        params = json_pack("{s:s}", "uri", r->name);
        break;
    case OP_GET_PROMPT:
        if (find_named(up->cache[K_PROMPTS], "name", r->name) == NULL) {
            r->outcome = R_DECLINE;
            return 0;
        }
        method = "prompts/get";
        params = json_pack("{s:s}", "name", r->name);
        if (r->args != NULL)
            json_object_set(params, "arguments", r->args);
        break;
    case OP_COMPLETE: {
        const char *pname = json_string_value(json_object_get(r->args, "name"));
        const char *uri = json_string_value(json_object_get(r->args, "uri"));
        if (!json_is_object(up->caps) || json_object_get(up->caps, "completions") == NULL ||
            (pname != NULL ? find_named(up->cache[K_PROMPTS], "name", pname) == NULL : uri == NULL || !uri_known(up, uri))) {
            r->outcome = R_DECLINE;
            return 0;
        }
        method = "completion/complete";
        params = json_pack("{s:O,s:O}", "ref", r->args, "argument", r->args2);
        if (r->args3 != NULL)
            json_object_set(params, "context", r->args3);
        break;
    }
    default:
        r->outcome = R_DECLINE;
        return 0;
    }
    if (up->circuit != CIRCUIT_CLOSED) {
        json_decref(params);
        snprintf(msg, sizeof(msg), "upstream %s unavailable (circuit open)", up->name);
        req_set_tool_error(r, msg);
        return 0;
    }
    if (r->has_progress) {
        /* our own token (the remapped id) replaces the client's; notifications/progress map back through it */
        json_object_set_new(params, "_meta", json_pack("{s:I}", "progressToken", (json_int_t)(up->next_id + 1)));
    }
    if (up_request(up, method, params, P_CALL, r) == NULL) {
        snprintf(msg, sizeof(msg), "upstream %s unavailable (cannot send the request)", up->name);
        req_set_tool_error(r, msg);
        return 0;
    }
    return 1;
}

static void job_submit(void *arg)
{
    struct fed_req *r = arg;
    if (!process(r->up, r))
        req_finish(r);
}

static void release_parked(struct upstream *up)
{
    struct fed_req *list = up->parked;
    up->parked = NULL;
    /* oldest first */
    struct fed_req *rev = NULL;
    while (list != NULL) {
        struct fed_req *n = list->pnext;
        list->pnext = rev;
        rev = list;
        list = n;
    }
    while (rev != NULL) {
        struct fed_req *n = rev->pnext;
        rev->parked = 0;
        rev->pnext = NULL;
        job_submit(rev);
        rev = n;
    }
}

/* ---- cancellation (client cancelled or went away) ---- */

static void job_cancel(void *arg)
{
    struct fed_req *r = arg;
    struct upstream *up = r->up;
    if (r->parked) {
        for (struct fed_req **pp = &up->parked; *pp != NULL; pp = &(*pp)->pnext) {
            if (*pp == r) {
                *pp = r->pnext;
                r->parked = 0;
                req_set_tool_error(r, "request cancelled");
                req_finish(r);
                break;
            }
        }
    } else if (r->upstream_id != 0) {
        struct pending *p = pending_find(up, r->upstream_id);
        if (p != NULL && p->req == r) {
            pending_take(up, p->id);
            up_notify(up, "notifications/cancelled",
                      json_pack("{s:I,s:s}", "requestId", (json_int_t)p->id, "reason", "cancelled by the client"));
            free(p);
            r->upstream_id = 0;
            req_set_tool_error(r, "request cancelled");
            req_finish(r);
        }
    }
    req_unref(r); /* the cancel job's reference */
}

static void on_call_cancel(lg_mcp_call_t *c, void *ud)
{
    struct fed_req *r = ud;
    (void)c;
    atomic_fetch_add(&r->refcnt, 1);
    if (lg__mcp_upthread_post(job_cancel, r) != 0)
        req_unref(r);
}

/* ---- listing (upstream thread) ---- */

static void become_ready(struct upstream *up);

static void list_next(struct upstream *up)
{
    while (up->list_mask != 0) {
        int k = 0;
        while (!(up->list_mask & (1u << k)))
            ++k;
        up->list_mask &= ~(1u << k);
        up->listing_kind = k;
        up->accum = json_array();
        up->list_pages = 0;
        struct pending *p = up_request(up, kind_method[k], NULL, P_LIST, NULL);
        if (p != NULL) {
            p->list_kind = k;
            return;
        }
        json_decref(up->accum);
        up->accum = NULL;
        up->listing_kind = -1;
        return; /* the transport is going away: its close callback takes over */
    }
    up->listing_kind = -1;
    if (up->state == ST_LISTING)
        become_ready(up);
}

static void list_done(struct upstream *up, int k, json_t *items)
{
    json_t *old = up->cache[k];
    int changed = !json_equal(old, items);
    up->cache[k] = items;
    if (k == K_TOOLS) {
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *nm = json_string_value(json_object_get(it, "name"));
            if (nm != NULL)
                lg_metrics_mcp_tool_id(nm);
        }
    }
    json_decref(old);
    if (changed && up->state == ST_READY) {
        LG_LOG(LG_LOG_INFO, "mcp", "upstream %s: %s changed (%zu now)", up->name, kind_key[k], json_array_size(items));
        notify_endpoints(up, kind_notify[k]);
    }
    update_summary(up);
}

static void on_list_page(struct upstream *up, struct pending *p, json_t *result, json_t *error)
{
    int k = p->list_kind;
    if (up->listing_kind != k || up->accum == NULL)
        return;
    const char *next = NULL;
    if (error != NULL) {
        /* servers that advertise a capability without implementing the method (server-memory's resources) */
        LG_LOG(LG_LOG_DEBUG, "mcp", "upstream %s: %s failed: %s", up->name, kind_method[k],
               json_string_value(json_object_get(error, "message")) != NULL ? json_string_value(json_object_get(error, "message"))
                                                                            : "?");
    } else {
        json_t *items = json_object_get(result, kind_key[k]);
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            if (json_is_object(it))
                json_array_append(up->accum, it);
        }
        next = json_string_value(json_object_get(result, "nextCursor"));
        if (next != NULL && next[0] == '\0')
            next = NULL;
    }
    if (next != NULL && ++up->list_pages < MAX_LIST_PAGES) {
        struct pending *np = up_request(up, kind_method[k], json_pack("{s:s}", "cursor", next), P_LIST, NULL);
        if (np != NULL)
            np->list_kind = k;
        return;
    }
    json_t *items = up->accum;
    up->accum = NULL;
    up->listing_kind = -1;
    list_done(up, k, items);
    list_next(up);
}

static void queue_list(struct upstream *up, unsigned mask)
{
    up->list_mask |= mask;
    if (up->listing_kind < 0 && (up->state == ST_READY || up->state == ST_LISTING))
        list_next(up);
}

static void become_ready(struct upstream *up)
{
    up->state = ST_READY;
    up->ready_since = lg_now_ms();
    up->ever_ready = 1;
    up->last_error[0] = '\0';
    circuit_success(up); /* a completed handshake is a successful probe */
    LG_LOG(LG_LOG_INFO, "mcp", "upstream %s ready: %zu tools, %zu resources, %zu prompts", up->name,
           json_array_size(up->cache[K_TOOLS]), json_array_size(up->cache[K_RESOURCES]), json_array_size(up->cache[K_PROMPTS]));
    update_summary(up);
    if (json_array_size(up->cache[K_TOOLS]) > 0)
        notify_endpoints(up, "tools");
    if (json_array_size(up->cache[K_RESOURCES]) > 0 || json_array_size(up->cache[K_TEMPLATES]) > 0)
        notify_endpoints(up, "resources");
    if (json_array_size(up->cache[K_PROMPTS]) > 0)
        notify_endpoints(up, "prompts");
    if (up->http != NULL)
        lg__mcp_http_listen(up->http);
    release_parked(up);
}

/* ---- connection lifecycle (upstream thread) ---- */

static void fail_pending(struct upstream *up, const char *why)
{
    char msg[400];
    struct pending *p = up->pending;
    up->pending = NULL;
    while (p != NULL) {
        struct pending *n = p->next;
        if (p->kind == P_CALL && p->req != NULL) {
            snprintf(msg, sizeof(msg), "upstream %s failed while the request was in flight: %s", up->name, why);
            p->req->upstream_id = 0;
            req_set_tool_error(p->req, msg);
            req_finish(p->req);
        }
        free(p);
        p = n;
    }
}

/* The connection is gone (child exited, handshake failed): drop state, fail calls, schedule the restart. */
static void conn_down(struct upstream *up, const char *why)
{
    int had_tools = json_array_size(up->cache[K_TOOLS]) > 0, had_res = json_array_size(up->cache[K_RESOURCES]) > 0,
        had_prompts = json_array_size(up->cache[K_PROMPTS]) > 0;
    int was_ready = up->state == ST_READY;
    snprintf(up->last_error, sizeof(up->last_error), "%s", why);
    up->stdio = NULL;
    if (up->http != NULL)
        lg__mcp_http_reset_session(up->http);
    for (int k = 0; k < K__COUNT; ++k) {
        json_decref(up->cache[k]);
        up->cache[k] = json_array();
    }
    json_decref(up->accum);
    up->accum = NULL;
    up->listing_kind = -1;
    up->list_mask = 0;
    json_decref(up->caps);
    up->caps = NULL;
    up->ever_failed = 1;
    if (up->retired || up->state == ST_STOPPED) {
        fail_pending(up, why);
        update_summary(up);
        return;
    }
    int64_t now = lg_now_ms();
    if (was_ready && now - up->ready_since >= READY_RESETS_BACKOFF_MS)
        up->backoff_ms = 0;
    up->backoff_ms = up->backoff_ms == 0 ? backoff_min_ms : up->backoff_ms * 2;
    if (up->backoff_ms > backoff_max_ms)
        up->backoff_ms = backoff_max_ms;
    up->state = ST_BACKOFF;
    up->restart_at = now + up->backoff_ms;
    LG_LOG(LG_LOG_WARN, "mcp", "upstream %s down (%s); restarting in %u ms", up->name, why, up->backoff_ms);
    circuit_failure(up, why);
    update_summary(up);
    if (had_tools)
        notify_endpoints(up, "tools");
    if (had_res)
        notify_endpoints(up, "resources");
    if (had_prompts)
        notify_endpoints(up, "prompts");
    /* after the notifications: a client that sees its call fail finds the list already updated */
    fail_pending(up, why);
    release_parked(up); /* first start failed: waiting lists get the (empty) answer now */
}

static void handle_message(struct upstream *up, json_t *msg, int64_t rid);

static void stdio_on_message(void *ud, json_t *msg)
{
    handle_message(ud, msg, 0);
}

static void stdio_on_closed(void *ud, const char *why)
{
    struct upstream *up = ud;
    up->stdio = NULL;
    conn_down(up, why);
}

static const lg_mcp_stdio_callbacks_t stdio_cb = {stdio_on_message, stdio_on_closed};

static void http_on_message(void *ud, json_t *msg, int64_t rid)
{
    handle_message(ud, msg, rid);
}

static void on_init_result(struct upstream *up, json_t *result, json_t *error);

static void send_initialize(struct upstream *up);

/* Start over with a fresh upstream session (HTTP): the requests parked for a retry go out again once READY. */
static void reinitialize(struct upstream *up, const char *why)
{
    if (up->state == ST_STARTING)
        return; /* already under way */
    LG_LOG(LG_LOG_INFO, "mcp", "upstream %s: %s; re-initializing", up->name, why);
    lg__mcp_http_reset_session(up->http);
    up->state = ST_STARTING;
    up->first_start = lg_now_ms(); /* parked retries wait at most the start grace */
    update_summary(up);
    send_initialize(up);
}

static void park(struct upstream *up, struct fed_req *r)
{
    r->parked = 1;
    r->pnext = up->parked;
    up->parked = r;
}

static void http_on_post_failed(void *ud, int64_t rid, int status, int cause, const char *why)
{
    struct upstream *up = ud;
    (void)status;
    struct pending *p = pending_take(up, rid);
    if (p == NULL)
        return;
    char msg[400];
    if (p->kind == P_CALL && p->req != NULL) {
        struct fed_req *r = p->req;
        r->upstream_id = 0;
        if (cause != LG_MCP_HTTP_REFUSED && !r->retried && !up->retired && up->state != ST_STOPPED) {
            /* the session or the connection is gone, not the request's fault: a new session, then once more */
            r->retried = 1;
            park(up, r);
            free(p);
            if (cause == LG_MCP_HTTP_TRANSPORT) {
                circuit_failure(up, why);
                reinitialize(up, why);
            } /* a lost session: on_session_expired follows and re-initializes */
            return;
        }
        snprintf(msg, sizeof(msg), "upstream %s: %s", up->name, why);
        req_set_tool_error(r, msg);
        req_finish(r);
        circuit_failure(up, why);
    } else if (p->kind == P_INIT || p->kind == P_LIST) {
        free(p);
        conn_down(up, why);
        return;
    } else if (p->kind == P_PING) {
        circuit_failure(up, why);
    }
    free(p);
}

static void http_on_session_expired(void *ud)
{
    struct upstream *up = ud;
    if (up->state == ST_READY || up->state == ST_LISTING)
        reinitialize(up, "session expired");
}

static const lg_mcp_http_callbacks_t http_cb = {http_on_message, http_on_post_failed, http_on_session_expired};

static void send_initialize(struct upstream *up)
{
    /* what the gateway can relay to the calling client (mcp.md 8.1): the upstream then offers its capability-gated
     * tools; a request the calling client did not declare is answered -32601 (or, for sampling, by the router) */
    json_t *params = json_pack("{s:s,s:{s:{},s:{s:{},s:{}},s:{s:b}},s:{s:s,s:s,s:s}}", "protocolVersion", PROTOCOL_VERSION,
                               "capabilities", "sampling", "elicitation", "form", "url", "roots", "listChanged", 0, "clientInfo",
                               "name", "llmgate", "title", "llmgate MCP gateway", "version", LG_VERSION_STRING);
    if (up_request(up, "initialize", params, P_INIT, NULL) == NULL && up->http != NULL)
        conn_down(up, "cannot send initialize");
}

static void connect_upstream(struct upstream *up)
{
    up->state = ST_STARTING;
    if (up->first_start == 0)
        up->first_start = lg_now_ms();
    if (up->command != NULL) {
        char err[300];
        lg_mcp_stdio_opts_t o = {.name = up->name, .command = up->command, .args = up->args, .env = up->env, .cwd = up->cwd};
        up->stdio = lg__mcp_stdio_spawn(lg__mcp_upthread_loop(), &o, &stdio_cb, up, err, sizeof(err));
        if (up->stdio == NULL) {
            LG_LOG(LG_LOG_ERR, "mcp", "upstream %s: %s", up->name, err);
            conn_down(up, err);
            return;
        }
    } else {
        if (up->http == NULL)
            up->http = lg__mcp_http_create(lg__mcp_upthread_loop(), lg__mcp_upthread_client(), up->name, up->url, up->headers,
                                           up->timeout_ms, &http_cb, up);
        lg__mcp_http_reset_session(up->http);
    }
    update_summary(up);
    send_initialize(up);
}

static void on_init_result(struct upstream *up, json_t *result, json_t *error)
{
    if (error != NULL || !json_is_object(result)) {
        char why[300];
        snprintf(why, sizeof(why), "initialize failed: %s",
                 json_string_value(json_object_get(error, "message")) != NULL ? json_string_value(json_object_get(error, "message"))
                                                                              : "malformed result");
        if (up->stdio != NULL)
            lg__mcp_stdio_kill(up->stdio, why);
        else
            conn_down(up, why);
        return;
    }
    const char *v = json_string_value(json_object_get(result, "protocolVersion"));
    if (v == NULL || !lg_mcp_version_supported(v, strlen(v)))
        LG_LOG(LG_LOG_WARN, "mcp", "upstream %s negotiated protocol version %s; continuing", up->name, v != NULL ? v : "(none)");
    if (up->http != NULL)
        lg__mcp_http_set_version(up->http, v != NULL ? v : PROTOCOL_VERSION);
    json_t *caps = json_object_get(result, "capabilities");
    json_decref(up->caps);
    up->caps = json_is_object(caps) ? json_deep_copy(caps) : json_object();
    up_notify(up, "notifications/initialized", NULL);
    up->state = ST_LISTING;
    unsigned mask = 0;
    if (json_object_get(up->caps, "tools") != NULL)
        mask |= 1u << K_TOOLS;
    if (json_object_get(up->caps, "resources") != NULL)
        mask |= (1u << K_RESOURCES) | (1u << K_TEMPLATES);
    if (json_object_get(up->caps, "prompts") != NULL)
        mask |= 1u << K_PROMPTS;
    up->listing_kind = -1;
    up->list_mask = 0;
    queue_list(up, mask);
    if (mask == 0)
        become_ready(up);
}

/* ---- messages from an upstream (upstream thread) ---- */

/* the one client call a notification can belong to: the POST's request (HTTP) or the only call in flight (stdio) */
static struct fed_req *related_call(struct upstream *up, int64_t rid)
{
    if (rid != 0) {
        struct pending *p = pending_find(up, rid);
        return p != NULL && p->kind == P_CALL ? p->req : NULL;
    }
    struct fed_req *only = NULL;
    for (struct pending *p = up->pending; p != NULL; p = p->next) {
        if (p->kind != P_CALL)
            continue;
        if (only != NULL)
            return NULL;
        only = p->req;
    }
    return only;
}

static void on_notification(struct upstream *up, const char *method, json_t *params, int64_t rid)
{
    if (strcmp(method, "notifications/tools/list_changed") == 0) {
        queue_list(up, 1u << K_TOOLS);
    } else if (strcmp(method, "notifications/resources/list_changed") == 0) {
        queue_list(up, (1u << K_RESOURCES) | (1u << K_TEMPLATES));
    } else if (strcmp(method, "notifications/prompts/list_changed") == 0) {
        queue_list(up, 1u << K_PROMPTS);
    } else if (strcmp(method, "notifications/resources/updated") == 0) {
        const char *uri = json_string_value(json_object_get(params, "uri"));
        if (uri != NULL && up->prefix != NULL) {
            char *ns = lg_mcp_uri_namespace(up->prefix, uri); /* the name clients subscribed to */
            notify_updated(ns);
            free(ns);
        } else if (uri != NULL) {
            notify_updated(uri);
        }
    } else if (strcmp(method, "notifications/progress") == 0) {
        json_t *tok = json_object_get(params, "progressToken");
        struct pending *p = json_is_integer(tok) ? pending_find(up, json_integer_value(tok)) : NULL;
        if (p == NULL || p->kind != P_CALL || p->req == NULL || !p->req->has_progress)
            return;
        struct fed_event *ev = lg_malloc(sizeof(*ev));
        memset(ev, 0, sizeof(*ev));
        ev->progress = json_number_value(json_object_get(params, "progress"));
        ev->total = json_number_value(json_object_get(params, "total"));
        const char *m = json_string_value(json_object_get(params, "message"));
        ev->message = m != NULL ? lg_strdup(m) : NULL;
        /* progress keeps a long call alive (MCP progress notifications reset the timeout), up to another full timeout from now */
        p->deadline_ms = lg_now_ms() + up->timeout_ms;
        post_event(p->req, ev);
    } else if (strcmp(method, "notifications/message") == 0) {
        struct fed_req *r = related_call(up, rid);
        int level = lg_mcp_log_level_parse(json_string_value(json_object_get(params, "level")));
        if (r == NULL) {
            char *d = json_dumps(json_object_get(params, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            LG_LOG(LG_LOG_DEBUG, "mcp", "upstream %s log: %.300s", up->name, d != NULL ? d : "");
            free(d);
            return;
        }
        struct fed_event *ev = lg_malloc(sizeof(*ev));
        memset(ev, 0, sizeof(*ev));
        ev->is_log = 1;
        ev->level = level >= 0 ? level : LG_MCP_LOG_INFO;
        const char *lg = json_string_value(json_object_get(params, "logger"));
        ev->logger = lg_strdup(lg != NULL ? lg : up->name);
        json_t *data = json_object_get(params, "data");
        ev->data = data != NULL ? json_deep_copy(data) : json_null();
        post_event(r, ev);
    }
    /* cancelled (of its own requests to us) and anything else: nothing to do */
}

static void on_response(struct upstream *up, int64_t id, json_t *result, json_t *error)
{
    struct pending *p = pending_take(up, id);
    if (p == NULL) {
        LG_LOG(LG_LOG_DEBUG, "mcp", "upstream %s: response to unknown or finished request %" PRId64 " dropped", up->name, id);
        return;
    }
    switch (p->kind) {
    case P_INIT:
        on_init_result(up, result, error);
        break;
    case P_LIST:
        on_list_page(up, p, result, error);
        break;
    case P_PING:
        if (error == NULL)
            circuit_success(up);
        else
            circuit_failure(up, "ping failed");
        break;
    case P_LEVEL:
        break; /* an upstream that ignores the level is fine: the gateway filters per session anyway */
    default: {
        struct fed_req *r = p->req;
        r->upstream_id = 0;
        circuit_success(up);
        if (error != NULL) {
            json_t *code = json_object_get(error, "code");
            const char *m = json_string_value(json_object_get(error, "message"));
            json_t *data = json_object_get(error, "data");
            req_set_error(r, json_is_integer(code) ? (int)json_integer_value(code) : LG_JSONRPC_INTERNAL_ERROR,
                          m != NULL ? m : "upstream error", data != NULL ? json_deep_copy(data) : NULL);
        } else {
            r->outcome = R_RESULT;
            r->result = json_is_object(result) ? json_deep_copy(result) : json_object();
        }
        req_finish(r);
        break;
    }
    }
    free(p);
}

/* An upstream asks the client something (sampling/createMessage, elicitation/create, roots/list): relay it to the
 * client session whose call it belongs to; unrelated requests have nobody to ask. */
static void on_upstream_request(struct upstream *up, const lg_jsonrpc_msg_t *m, int64_t rid)
{
    const char *cap = relay_capability(m->method);
    struct fed_req *r = cap != NULL ? related_call(up, rid) : NULL;
    if (cap == NULL) {
        up_send(up, lg_jsonrpc_make_error(m->id, LG_JSONRPC_METHOD_NOT_FOUND, "not supported by the llmgate gateway", NULL), 0);
        return;
    }
    if (r == NULL) {
        if (strcmp(cap, "roots") == 0) /* a gateway has no roots of its own */
            up_send(up, lg_jsonrpc_make_result(m->id, json_pack("{s:[]}", "roots")), 0);
        else
            up_send(up,
                    lg_jsonrpc_make_error(m->id, LG_JSONRPC_METHOD_NOT_FOUND,
                                          "llmgate relays this only during one of the client's tool calls", NULL),
                    0);
        return;
    }
    /* the human may take a while to answer: the call's own deadline restarts */
    struct pending *p = pending_find(up, r->upstream_id);
    if (p != NULL)
        p->deadline_ms = lg_now_ms() + up->timeout_ms;
    struct fed_event *ev = lg_malloc(sizeof(*ev));
    memset(ev, 0, sizeof(*ev));
    ev->is_request = 1;
    ev->method = lg_strdup(m->method);
    ev->upstream_id = json_deep_copy(m->id);
    ev->data = json_is_object(m->params) ? json_deep_copy(m->params) : json_object();
    pthread_mutex_lock(&table_mu);
    ++up->refcnt;
    pthread_mutex_unlock(&table_mu);
    ev->up_ref = up;
    post_event(r, ev);
}

static void handle_message(struct upstream *up, json_t *msg, int64_t rid)
{
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t err;
    memset(&err, 0, sizeof(err));
    if (lg_jsonrpc_from_json(msg, &m, &err) != 0) {
        LG_LOG(LG_LOG_WARN, "mcp", "upstream %s sent an invalid JSON-RPC message: %s", up->name, err.message);
        lg_jsonrpc_err_dispose(&err);
        json_decref(msg);
        return;
    }
    json_decref(msg); /* m holds its own reference */
    switch (m.kind) {
    case LG_JSONRPC_REQUEST:
        if (strcmp(m.method, "ping") == 0)
            up_send(up, lg_jsonrpc_make_result(m.id, json_object()), 0);
        else
            on_upstream_request(up, &m, rid);
        break;
    case LG_JSONRPC_NOTIFICATION:
        on_notification(up, m.method, m.params, rid);
        break;
    case LG_JSONRPC_RESPONSE:
    case LG_JSONRPC_ERROR_RESPONSE:
        if (json_is_integer(m.id))
            on_response(up, json_integer_value(m.id), m.result, m.error);
        break;
    }
    lg_jsonrpc_msg_dispose(&m);
}

/* ---- the tick: deadlines, restarts, circuit probes (upstream thread) ---- */

static void expire(struct upstream *up, int64_t now)
{
    char msg[400];
    for (struct pending **pp = &up->pending; *pp != NULL;) {
        struct pending *p = *pp;
        if (p->deadline_ms > now) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        snprintf(msg, sizeof(msg), "upstream %s did not answer within %u ms", up->name, up->timeout_ms);
        if (p->kind == P_CALL) {
            up_notify(up, "notifications/cancelled", json_pack("{s:I,s:s}", "requestId", (json_int_t)p->id, "reason", "timeout"));
            p->req->upstream_id = 0;
            req_set_tool_error(p->req, msg);
            req_finish(p->req);
            circuit_failure(up, "timeout");
        } else if (p->kind == P_PING) {
            circuit_failure(up, "probe timeout");
        } else if (p->kind == P_LEVEL) {
            /* nothing waits for it */
        } else {
            /* handshake or listing hangs: the connection is not usable */
            free(p);
            if (up->stdio != NULL)
                lg__mcp_stdio_kill(up->stdio, msg);
            else
                conn_down(up, msg);
            return; /* the list changed under us */
        }
        free(p);
    }
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    int64_t now = lg_now_ms();
    for (struct upstream *up = active; up != NULL; up = up->anext) {
        expire(up, now);
        if (up->state == ST_BACKOFF && now >= up->restart_at)
            connect_upstream(up);
        if (up->circuit == CIRCUIT_OPEN && now >= up->open_until && up->state == ST_READY) {
            up->circuit = CIRCUIT_HALF;
            if (up->http != NULL) {
                /* the probe is a fresh handshake: a restarted server has forgotten our session (READY closes the
                 * circuit, a failure re-opens it) */
                reinitialize(up, "circuit probe");
            } else if (up_request(up, "ping", NULL, P_PING, NULL) == NULL) {
                circuit_failure(up, "cannot send the probe");
            }
        } else if (up->circuit == CIRCUIT_OPEN && now >= up->open_until && up->state != ST_READY) {
            /* nothing to probe yet: the restart's successful handshake will close it */
            up->open_until = now + up->circuit_open_ms;
        }
        if (up->parked != NULL && up->first_start != 0 && now - up->first_start >= (int64_t)start_grace_ms) {
            up->ever_failed = 1; /* slow first start: stop making clients wait */
            release_parked(up);
        }
        update_summary(up);
    }
}

static void job_register(void *arg)
{
    struct upstream *up = arg;
    if (!tick_on) {
        uv_timer_init(lg__mcp_upthread_loop(), &tick);
        uv_timer_start(&tick, on_tick, TICK_MS, TICK_MS);
        tick_on = 1;
    }
    up->anext = active;
    active = up;
    connect_upstream(up);
}

static void up_free(struct upstream *up)
{
    for (int k = 0; k < K__COUNT; ++k)
        json_decref(up->cache[k]);
    json_decref(up->accum);
    json_decref(up->caps);
    lg_strv_free(up->endpoints);
    free(up->name);
    free(up->prefix);
    free(up->sig);
    free(up->command);
    lg_strv_free(up->args);
    if (up->env != NULL)
        for (char **e = up->env; *e != NULL; ++e)
            memset(*e, 0, strlen(*e));
    lg_strv_free(up->env);
    free(up->cwd);
    free(up->url);
    json_decref(up->headers);
    free(up);
}

/* Stop the connection for good: fail what waits, stop the transport. */
static void up_stop(struct upstream *up, const char *why)
{
    up->state = ST_STOPPED;
    fail_pending(up, why);
    struct fed_req *r = up->parked;
    up->parked = NULL;
    while (r != NULL) {
        struct fed_req *n = r->pnext;
        r->parked = 0;
        char msg[300];
        snprintf(msg, sizeof(msg), "upstream %s unavailable (%s)", up->name, why);
        if (r->op <= OP_LIST_PROMPTS)
            answer_list(up, r);
        else
            req_set_tool_error(r, msg);
        req_finish(r);
        r = n;
    }
    if (up->stdio != NULL) {
        lg__mcp_stdio_stop(up->stdio);
        up->stdio = NULL;
    }
    if (up->http != NULL) {
        lg__mcp_http_destroy(up->http);
        up->http = NULL;
    }
    update_summary(up);
}

static void job_retire(void *arg)
{
    struct upstream *up = arg;
    up->retired = 1;
    LG_LOG(LG_LOG_INFO, "mcp", "upstream %s removed", up->name);
    up_stop(up, "removed from the configuration");
    for (struct upstream **pp = &active; *pp != NULL; pp = &(*pp)->anext) {
        if (*pp == up) {
            *pp = up->anext;
            break;
        }
    }
    up_free(up);
}

/* ---- the shared table ---- */

static void up_unref_locked(struct upstream *up)
{
    if (--up->refcnt != 0)
        return;
    for (struct upstream **pp = &table; *pp != NULL; pp = &(*pp)->tnext) {
        if (*pp == up) {
            *pp = up->tnext;
            break;
        }
    }
    if (lg__mcp_upthread_post(job_retire, up) != 0)
        up_free(up); /* the thread is stopped: nothing runs for it any more */
}

static void up_unref(struct upstream *up)
{
    pthread_mutex_lock(&table_mu);
    up_unref_locked(up);
    pthread_mutex_unlock(&table_mu);
}

static char *make_sig(const lg_mcp_server_conf_t *sc, const lg_config_t *conf)
{
    json_t *j = json_pack("{s:s?,s:s?,s:s?,s:s?,s:I,s:I,s:I}", "command", sc->command, "cwd", sc->cwd, "url", sc->url, "prefix",
                          sc->prefix, "timeout", (json_int_t)sc->timeout_ms, "cf", (json_int_t)conf->mcp.circuit_failures, "co",
                          (json_int_t)conf->mcp.circuit_open_ms);
    json_t *a = json_array(), *e = json_array();
    for (char **p = sc->args; p != NULL && *p != NULL; ++p)
        json_array_append_new(a, json_string(*p));
    for (char **p = sc->env; p != NULL && *p != NULL; ++p)
        json_array_append_new(e, json_string(*p));
    json_object_set_new(j, "args", a);
    json_object_set_new(j, "env", e);
    if (sc->headers != NULL)
        json_object_set(j, "headers", sc->headers);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static struct upstream *up_create(const lg_mcp_server_conf_t *sc, const lg_config_t *conf, char *sig)
{
    struct upstream *up = lg_malloc(sizeof(*up));
    memset(up, 0, sizeof(*up));
    up->refcnt = 1;
    up->name = lg_strdup(sc->name);
    up->prefix = sc->prefix != NULL ? lg_strdup(sc->prefix) : NULL;
    up->sig = sig;
    up->command = sc->command != NULL ? lg_strdup(sc->command) : NULL;
    up->args = strv_dup(sc->args);
    up->env = strv_dup(sc->env);
    up->cwd = sc->cwd != NULL ? lg_strdup(sc->cwd) : NULL;
    up->url = sc->url != NULL ? lg_strdup(sc->url) : NULL;
    up->headers = sc->headers != NULL ? json_deep_copy(sc->headers) : NULL;
    up->timeout_ms = sc->timeout_ms != 0 ? sc->timeout_ms : 30000;
    up->circuit_failures = conf->mcp.circuit_failures != 0 ? conf->mcp.circuit_failures : 5;
    up->circuit_open_ms = conf->mcp.circuit_open_ms != 0 ? conf->mcp.circuit_open_ms : 30000;
    up->endpoints = strv_dup(NULL);
    up->listing_kind = -1;
    for (int k = 0; k < K__COUNT; ++k)
        up->cache[k] = json_array();
    lg_metrics_mcp_server_id(up->name);
    return up;
}

static void add_endpoint_locked(struct upstream *up, const char *ep)
{
    for (size_t i = 0; i < up->num_endpoints; ++i)
        if (strcmp(up->endpoints[i], ep) == 0)
            return;
    up->endpoints = lg_realloc(up->endpoints, (up->num_endpoints + 2) * sizeof(*up->endpoints));
    up->endpoints[up->num_endpoints++] = lg_strdup(ep);
    up->endpoints[up->num_endpoints] = NULL;
}

static void apply_locked(const lg_config_t *conf)
{
    if (conf == applied_conf || shut_down)
        return;
    struct upstream **next = lg_malloc((conf->mcp.num_servers + 1) * sizeof(*next));
    size_t n = 0;
    for (size_t i = 0; i < conf->mcp.num_servers; ++i) {
        const lg_mcp_server_conf_t *sc = &conf->mcp.servers[i];
        if (!sc->enabled)
            continue;
        char *sig = make_sig(sc, conf);
        struct upstream *up = table;
        while (up != NULL && !(!up->dead && strcmp(up->name, sc->name) == 0 && strcmp(up->sig, sig) == 0))
            up = up->tnext;
        if (up != NULL) {
            free(sig);
            ++up->refcnt;
        } else {
            if (lg__mcp_upthread_start() != 0) {
                free(sig);
                continue;
            }
            up = up_create(sc, conf, sig);
            up->tnext = table;
            table = up;
            lg__mcp_upthread_post(job_register, up);
        }
        /* endpoints only grow: a virtual server dropped by a reload just gets notifications nobody listens to */
        next[n++] = up;
    }
    for (size_t i = 0; i < num_applied; ++i)
        up_unref_locked(applied[i]);
    free(applied);
    applied = next;
    num_applied = n;
    applied_conf = conf;
}

void lg_mcp_federation_apply(const lg_config_t *conf)
{
    pthread_mutex_lock(&table_mu);
    apply_locked(conf);
    pthread_mutex_unlock(&table_mu);
}

/* ---- provider ops (worker threads) ---- */

static struct fed_req *req_new(struct fed_provider *fp, lg_mcp_call_t *c, int op)
{
    struct fed_req *r = lg_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    atomic_init(&r->refcnt, 2); /* the worker's delivery + the upstream thread's processing */
    r->call = lg_mcp_call_ref(c);
    r->loop = lg_mcp_call_loop(c);
    r->up = fp->up;
    r->patterns = fp->patterns;
    r->op = op;
    r->started_us = lg_now_us();
    return r;
}

static void submit(struct fed_req *r)
{
    lg__mcp_mailbox_prepare(r->loop);
    lg_mcp_call_on_cancel(r->call, on_call_cancel, r);
    if (lg__mcp_upthread_post(job_submit, r) != 0) {
        /* gateway shutting down */
        if (r->op <= OP_LIST_PROMPTS) {
            r->outcome = R_RESULT;
            r->result = json_pack("{s:[]}", kind_key[list_kind_of(r->op)]);
        } else if (r->op == OP_CALL_TOOL && r->up->prefix != NULL) {
            req_set_tool_error(r, "MCP upstreams are shutting down");
        } else {
            r->outcome = R_DECLINE;
        }
        atomic_fetch_sub(&r->refcnt, 1);
        deliver_on_worker(r);
    }
}

static void op_list(void *state, lg_mcp_call_t *c, const char *cursor, int op)
{
    struct fed_req *r = req_new(state, c, op);
    r->cursor = cursor != NULL ? lg_strdup(cursor) : NULL;
    submit(r);
}

static void op_list_tools(void *state, lg_mcp_call_t *c, const char *cursor)
{
    op_list(state, c, cursor, OP_LIST_TOOLS);
}

static void op_list_resources(void *state, lg_mcp_call_t *c, const char *cursor)
{
    op_list(state, c, cursor, OP_LIST_RESOURCES);
}

static void op_list_templates(void *state, lg_mcp_call_t *c, const char *cursor)
{
    op_list(state, c, cursor, OP_LIST_TEMPLATES);
}

static void op_list_prompts(void *state, lg_mcp_call_t *c, const char *cursor)
{
    op_list(state, c, cursor, OP_LIST_PROMPTS);
}

static void op_call_tool(void *state, lg_mcp_call_t *c, const char *name, json_t *arguments)
{
    struct fed_provider *fp = state;
    if (!tool_allowed(fp->up, fp->patterns, name)) {
        lg_mcp_call_decline(c);
        return;
    }
    struct fed_req *r = req_new(fp, c, OP_CALL_TOOL);
    r->name = lg_strdup(name);
    r->args = arguments != NULL ? json_deep_copy(arguments) : json_object();
    r->has_progress = lg_mcp_call_progress_token(c) != NULL;
    submit(r);
}

static void op_read_resource(void *state, lg_mcp_call_t *c, const char *uri)
{
    struct fed_req *r = req_new(state, c, OP_READ);
    r->name = lg_strdup(uri);
    submit(r);
}

static void op_subscribe(void *state, lg_mcp_call_t *c, const char *uri, int on)
{
    struct fed_req *r = req_new(state, c, OP_SUBSCRIBE);
    r->name = lg_strdup(uri);
    r->on = on;
    submit(r);
}

static void op_get_prompt(void *state, lg_mcp_call_t *c, const char *name, json_t *arguments)
{
    struct fed_req *r = req_new(state, c, OP_GET_PROMPT);
    r->name = lg_strdup(name);
    r->args = arguments != NULL ? json_deep_copy(arguments) : NULL;
    submit(r);
}

static void op_complete(void *state, lg_mcp_call_t *c, json_t *ref, json_t *argument, json_t *context)
{
    struct fed_req *r = req_new(state, c, OP_COMPLETE);
    r->args = json_deep_copy(ref);
    r->args2 = argument != NULL ? json_deep_copy(argument) : json_object();
    r->args3 = context != NULL ? json_deep_copy(context) : NULL;
    submit(r);
}

struct level_job {
    struct upstream *up; /* reference */
    char level[16];
};

static void job_set_level(void *arg)
{
    struct level_job *j = arg;
    struct upstream *up = j->up;
    /* one upstream session serves every client: it gets the latest level asked for; the gateway still filters
     * notifications/message per session */
    if (up->state == ST_READY && json_object_get(up->caps, "logging") != NULL)
        up_request(up, "logging/setLevel", json_pack("{s:s}", "level", j->level), P_LEVEL, NULL);
    up_unref(up);
    free(j);
}

static void op_set_log_level(void *state, const char *level)
{
    struct fed_provider *fp = state;
    struct level_job *j = lg_malloc(sizeof(*j));
    j->up = fp->up;
    snprintf(j->level, sizeof(j->level), "%s", level);
    pthread_mutex_lock(&table_mu);
    ++fp->up->refcnt;
    pthread_mutex_unlock(&table_mu);
    if (lg__mcp_upthread_post(job_set_level, j) != 0) {
        up_unref(j->up);
        free(j);
    }
}

static void op_destroy(void *state)
{
    struct fed_provider *fp = state;
    up_unref(fp->up);
    lg_strv_free(fp->patterns);
    free(fp);
}

static const lg_mcp_provider_ops_t full_ops = {
    .list_tools = op_list_tools,
    .call_tool = op_call_tool,
    .list_resources = op_list_resources,
    .read_resource = op_read_resource,
    .list_templates = op_list_templates,
    .subscribe = op_subscribe,
    .list_prompts = op_list_prompts,
    .get_prompt = op_get_prompt,
    .complete = op_complete,
    .destroy = op_destroy,
    .set_log_level = op_set_log_level,
};

/* a virtual server is a curated set of tools: nothing else of the upstream shows through it */
static const lg_mcp_provider_ops_t tools_only_ops = {
    .list_tools = op_list_tools,
    .call_tool = op_call_tool,
    .destroy = op_destroy,
};

/* ---- the registry builder ---- */

static void add_provider_locked(lg_mcp_registry_t *r, struct upstream *up, char **patterns, const lg_mcp_provider_ops_t *ops)
{
    struct fed_provider *fp = lg_malloc(sizeof(*fp));
    fp->up = up;
    fp->patterns = patterns;
    ++up->refcnt;
    add_endpoint_locked(up, lg_mcp_registry_name(r));
    /* capabilities: what every federated upstream may contribute; the exact set is only known once it is up */
    json_t *caps = json_pack("{s:{s:b}}", "tools", "listChanged", 1);
    if (patterns == NULL) {
        json_object_set_new(caps, "resources", json_pack("{s:b,s:b}", "subscribe", 1, "listChanged", 1));
        json_object_set_new(caps, "prompts", json_pack("{s:b}", "listChanged", 1));
    }
    if (lg_mcp_registry_add(r, up->name, up->prefix, caps, ops, fp) != 0) {
        LG_LOG(LG_LOG_ERR, "mcp", "upstream %s: invalid prefix \"%s\"", up->name, up->prefix);
        --up->refcnt;
        lg_strv_free(patterns);
        free(fp);
    }
    json_decref(caps);
}

static void builder(const lg_config_t *conf, lg_mcp_registry_t *def, void (*add_registry)(lg_mcp_registry_t *r))
{
    pthread_mutex_lock(&table_mu);
    apply_locked(conf);
    for (size_t i = 0; i < num_applied; ++i)
        add_provider_locked(def, applied[i], NULL, &full_ops);
    for (size_t v = 0; v < conf->mcp.num_vservers; ++v) {
        const lg_mcp_vserver_conf_t *vs = &conf->mcp.vservers[v];
        lg_mcp_registry_t *r = lg_mcp_registry_create(vs->name);
        lg_mcp_registry_set_tool_patterns(r, vs->tools);
        for (size_t i = 0; i < num_applied; ++i) {
            struct upstream *up = applied[i];
            /* only upstreams a pattern can possibly select: by prefix, or any pattern for unprefixed ones */
            int maybe = 0;
            for (char **p = vs->tools; *p != NULL && !maybe; ++p) {
                if (up->prefix == NULL)
                    maybe = 1;
                else {
                    size_t pl = strlen(up->prefix), n = strlen(*p);
                    maybe =
                        (n > 0 && (*p)[n - 1] == '*' && n - 1 <= pl && strncmp(*p, up->prefix, n - 1) == 0) ||
                        (strncmp(*p, up->prefix, pl) == 0 && strncmp(*p + pl, LG_MCP_PREFIX_SEP, strlen(LG_MCP_PREFIX_SEP)) == 0);
                }
            }
            if (maybe)
                add_provider_locked(r, up, strv_dup(vs->tools), &tools_only_ops);
        }
        add_registry(r);
    }
    pthread_mutex_unlock(&table_mu);
}

void lg_mcp_federation_register(void)
{
    lg_mcp_registry_set_builder(builder);
}

/* ---- introspection, shutdown, test hooks ---- */

void lg_mcp_federation_foreach(void (*fn)(const char *name, const char *state, int pid, size_t tools, void *arg), void *arg)
{
    static const char *const words[] = {"down", "up", "circuit_open"};
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < num_applied; ++i) {
        struct upstream *up = applied[i];
        fn(up->name, words[atomic_load(&up->sum_state)], atomic_load(&up->sum_pid), atomic_load(&up->sum_tools), arg);
    }
    pthread_mutex_unlock(&table_mu);
}

static void upstream_gauges(const char *name, const char *state, int pid, size_t tools, void *arg)
{
    lg_metrics_writer_t *w = arg;
    (void)pid;
    lg_metrics_write_gauge(w, "llmgate_mcp_upstream_up", "1 while the upstream MCP server is connected", strcmp(state, "up") == 0,
                           "server", name, NULL);
    lg_metrics_write_gauge(w, "llmgate_mcp_upstream_circuit_open", "1 while the upstream's circuit breaker is open",
                           strcmp(state, "circuit_open") == 0, "server", name, NULL);
    lg_metrics_write_gauge(w, "llmgate_mcp_upstream_tools", "Tools the upstream MCP server currently offers", (double)tools,
                           "server", name, NULL);
}

static void federation_collector(lg_metrics_writer_t *w, void *arg)
{
    (void)arg;
    lg_mcp_federation_foreach(upstream_gauges, w);
}

void lg_mcp_federation_register_metrics(void)
{
    lg_metrics_add_collector(federation_collector, NULL);
}

static void job_shutdown(void *arg)
{
    (void)arg;
    for (struct upstream *up = active; up != NULL; up = up->anext)
        up_stop(up, "gateway shutting down");
    active = NULL;
    if (tick_on) {
        uv_close((uv_handle_t *)&tick, NULL);
        tick_on = 0;
    }
}

void lg_mcp_federation_shutdown(void)
{
    pthread_mutex_lock(&table_mu);
    shut_down = 1;
    for (struct upstream *up = table; up != NULL; up = up->tnext)
        up->dead = 1;
    pthread_mutex_unlock(&table_mu);
    lg__mcp_upthread_stop(job_shutdown, NULL);
    /* upstreams stay allocated while registries hold them; with the thread gone their release frees them directly */
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < num_applied; ++i)
        up_unref_locked(applied[i]);
    free(applied);
    applied = NULL;
    num_applied = 0;
    applied_conf = NULL;
    shut_down = 0;
    pthread_mutex_unlock(&table_mu);
}

void lg__mcp_federation_set_notifiers(void (*list_changed)(const char *server, const char *kind), void (*updated)(const char *uri))
{
    notify_list_changed = list_changed != NULL ? list_changed : lg_mcp_notify_list_changed;
    notify_updated = updated != NULL ? updated : lg_mcp_notify_resource_updated;
}

void lg__mcp_federation_set_timing(unsigned bmin, unsigned bmax, unsigned grace)
{
    backoff_min_ms = bmin != 0 ? bmin : 500;
    backoff_max_ms = bmax != 0 ? bmax : 30000;
    start_grace_ms = grace != 0 ? grace : 10000;
}
