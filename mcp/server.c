/* SPDX-License-Identifier: MIT */
/*
 * MCP method dispatch and the call lifecycle (see server.h). Handlers either
 * answer at once (ping, logging/setLevel) or hand the call to the registry,
 * which routes it to a provider; providers complete it now or later.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/util.h"
#include "llmgate/version.h"
#include "mcp/era.h"
#include "mcp/server.h"

const char *const lg_mcp_supported_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};

#define DEFAULT_REQUEST_TIMEOUT_MS 60000

static const lg_mcp_tool_policy_t *tool_policy;

void lg_mcp_set_tool_policy(const lg_mcp_tool_policy_t *p)
{
    tool_policy = p;
}

int lg_mcp_version_supported(const char *v, size_t len)
{
    for (const char *const *p = lg_mcp_supported_versions; *p != NULL; ++p)
        if (strlen(*p) == len && memcmp(*p, v, len) == 0)
            return 1;
    return 0;
}

/* ---- server -> client request waiters ---- */

struct lg_mcp_waiter {
    lg_mcp_worker_t *mw;
    lg_mcp_call_t *call; /* reference */
    char id[48];         /* "lg.<worker>.<seq>" */
    char session_id[LG_MCP_SESSION_ID_LEN + 1];
    lg_mcp_reply_fn cb;
    void *ud;
    uv_timer_t timer;
    struct lg_mcp_waiter *next, *prev;
};

static void waiter_unlink(struct lg_mcp_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        w->mw->waiters = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Deliver exactly once: unlink, stop the timer, run cb, free asynchronously. */
static void waiter_finish(struct lg_mcp_waiter *w, json_t *result, json_t *error)
{
    waiter_unlink(w);
    uv_timer_stop(&w->timer);
    lg_mcp_call_t *c = w->call;
    w->cb(c, w->ud, result, error);
    lg_mcp_call_unref(c);
    uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

static void waiter_fail(struct lg_mcp_waiter *w, int code, const char *message)
{
    json_t *err = json_pack("{s:i,s:s}", "code", code, "message", message);
    waiter_finish(w, NULL, err);
    json_decref(err);
}

static void on_waiter_timeout(uv_timer_t *t)
{
    waiter_fail(t->data, LG_MCP_REQUEST_CANCELLED, "the client did not answer in time");
}

int lg__mcp_outgoing_worker(const json_t *id)
{
    const char *s = json_string_value(id);
    if (s == NULL || strncmp(s, "lg.", 3) != 0)
        return -1;
    char *end;
    unsigned long w = strtoul(s + 3, &end, 10);
    if (end == s + 3 || *end != '.' || w >= LG_MCP_MAX_WORKERS)
        return -1;
    return (int)w;
}

void lg__mcp_server_deliver_response(lg_mcp_worker_t *mw, const char *session_id, json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "id"));
    if (id == NULL)
        return;
    for (struct lg_mcp_waiter *w = mw->waiters; w != NULL; w = w->next) {
        if (strcmp(w->id, id) != 0 || strcmp(w->session_id, session_id) != 0)
            continue;
        json_t *err = json_object_get(msg, "error");
        if (err != NULL)
            waiter_finish(w, NULL, err);
        else
            waiter_finish(w, json_object_get(msg, "result"), NULL);
        return;
    }
    LG_LOG(LG_LOG_DEBUG, "mcp", "response for unknown or finished request %s dropped", id);
}

void lg_mcp_call_request(lg_mcp_call_t *c, const char *method, json_t *params, uint32_t timeout_ms, lg_mcp_reply_fn cb, void *ud)
{
    lg_mcp_worker_t *mw = c->mw;
    struct lg_mcp_waiter *w = lg_malloc(sizeof(*w));
    memset(w, 0, sizeof(*w));
    w->mw = mw;
    w->call = lg_mcp_call_ref(c);
    w->cb = cb;
    w->ud = ud;
    snprintf(w->id, sizeof(w->id), "lg.%u.%" PRIu64, mw->index, ++mw->seq);
    snprintf(w->session_id, sizeof(w->session_id), "%s", lg_mcp_session_id(c->session));
    uv_timer_init(mw->loop, &w->timer);
    w->timer.data = w;
    w->next = mw->waiters;
    if (w->next != NULL)
        w->next->prev = w;
    mw->waiters = w;

    if (c->cancelled || c->sink == NULL) {
        json_decref(params);
        waiter_fail(w, LG_MCP_REQUEST_CANCELLED, "request cancelled");
        return;
    }
    if (lg_mcp_call_modern(c)) {
        /* 2026-07-28 has no server->client requests on any stream (input-required results instead) */
        json_decref(params);
        waiter_fail(w, LG_JSONRPC_METHOD_NOT_FOUND, "a stateless (2026-07-28) request cannot carry a request to the client");
        return;
    }
    json_t *id = json_string(w->id);
    json_t *msg = lg_jsonrpc_make_request(id, method, params);
    json_decref(id);
    if (c->sink->emit(c->sink, msg) != 0) {
        waiter_fail(w, LG_JSONRPC_INTERNAL_ERROR, "cannot send a request to this client");
        return;
    }
    uv_timer_start(&w->timer, on_waiter_timeout, timeout_ms != 0 ? timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS, 0);
}

/* ---- call lifecycle ---- */

lg_mcp_call_t *lg_mcp_call_ref(lg_mcp_call_t *c)
{
    ++c->refcnt;
    return c;
}

static void call_unlink(lg_mcp_call_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (c->mw->calls == c)
        c->mw->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

void lg_mcp_call_unref(lg_mcp_call_t *c)
{
    if (--c->refcnt != 0)
        return;
    lg__registry_route_dispose(&c->route);
    lg_mcp_session_busy(c->session, -1);
    lg_mcp_session_unref(c->session);
    lg_mcp_registry_unref(c->reg);
    json_decref(c->id);
    json_decref(c->params);
    free(c);
}

/* the tool-call audit hook: outcome from the answer */
static void audit_tool_call(lg_mcp_call_t *c, const json_t *msg)
{
    if (tool_policy == NULL || tool_policy->done == NULL || strcmp(c->method, "tools/call") != 0)
        return;
    const char *outcome = "ok", *reason = NULL;
    json_t *err = json_object_get(msg, "error");
    if (c->cancelled || msg == NULL) {
        outcome = "cancelled";
    } else if (err != NULL) {
        outcome = "error";
        reason = json_string_value(json_object_get(json_object_get(err, "data"), "reason"));
        if (reason == NULL)
            reason = json_string_value(json_object_get(err, "message"));
    } else if (json_is_true(json_object_get(json_object_get(msg, "result"), "isError"))) {
        outcome = "tool_error";
    }
    const char *tool = json_string_value(json_object_get(c->params, "name"));
    tool_policy->done(c, lg_mcp_call_key_id(c), tool != NULL ? tool : "", outcome, reason,
                      (double)(lg_now_us() - c->started_us) / 1e6);
}

static void call_finish(lg_mcp_call_t *c, json_t *msg)
{
    audit_tool_call(c, msg);
    c->completed = 1;
    c->on_cancel = NULL;
    call_unlink(c);
    lg_mcp_sink_t *sink = c->sink;
    c->sink = NULL;
    if (sink != NULL) {
        if (c->silent) {
            json_decref(msg);
            msg = NULL;
        }
        sink->respond(sink, msg);
    } else {
        json_decref(msg);
    }
    lg_mcp_call_unref(c); /* the dispatch reference */
}

void lg_mcp_call_result(lg_mcp_call_t *c, json_t *result)
{
    if (c->completed) {
        json_decref(result);
        return;
    }
    if (result == NULL)
        result = json_object();
    if (c->route.op != 0 && lg__registry_on_result(c, &result))
        return; /* the registry asked the next provider */
    if (tool_policy != NULL && tool_policy->allowed != NULL && strcmp(c->method, "tools/list") == 0) {
        /* per-key allow-list: hide what the key may not call (the page may come out shorter, even empty) */
        json_t *tools = json_object_get(result, "tools");
        const char *key_id = lg_mcp_call_key_id(c);
        for (size_t i = 0; json_is_array(tools) && i < json_array_size(tools);) {
            const char *nm = json_string_value(json_object_get(json_array_get(tools, i), "name"));
            if (nm == NULL || !tool_policy->allowed(key_id, nm))
                json_array_remove(tools, i);
            else
                ++i;
        }
    }
    call_finish(c, lg_jsonrpc_make_result(c->id, result));
}

void lg_mcp_call_error(lg_mcp_call_t *c, int code, const char *message, json_t *data)
{
    if (c->completed) {
        json_decref(data);
        return;
    }
    if (c->route.op != 0 && lg__registry_on_error(c)) {
        json_decref(data);
        return;
    }
    call_finish(c, lg_jsonrpc_make_error(c->id, code, message, data));
}

void lg_mcp_call_decline(lg_mcp_call_t *c)
{
    if (c->completed)
        return;
    if (c->route.op != 0 && lg__registry_on_decline(c))
        return;
    if (strcmp(c->method, "resources/read") == 0 || strcmp(c->method, "resources/subscribe") == 0 ||
        strcmp(c->method, "resources/unsubscribe") == 0)
        lg_mcp_call_error(c, LG_MCP_RESOURCE_NOT_FOUND, "Resource not found",
                          json_pack("{s:s}", "uri", c->route.name != NULL ? c->route.name : ""));
    else if (strcmp(c->method, "tools/call") == 0)
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Unknown tool", NULL);
    else if (strcmp(c->method, "prompts/get") == 0)
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Unknown prompt", NULL);
    else if (strcmp(c->method, "completion/complete") == 0)
        lg_mcp_call_result(c, json_pack("{s:{s:[],s:i,s:b}}", "completion", "values", "total", 0, "hasMore", 0));
    else
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Not found", NULL);
}

void lg_mcp_call_tool_error(lg_mcp_call_t *c, const char *text)
{
    lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", text, "isError", 1));
}

static void call_cancel(lg_mcp_call_t *c)
{
    if (c->completed || c->cancelled)
        return;
    c->cancelled = 1;
    lg_mcp_call_ref(c);
    /* abandon the client requests it waits for first: their callbacks see the cancellation */
    for (struct lg_mcp_waiter *w = c->mw->waiters, *next; w != NULL; w = next) {
        next = w->next;
        if (w->call == c) {
            waiter_fail(w, LG_MCP_REQUEST_CANCELLED, "request cancelled");
            next = c->mw->waiters; /* the list may have changed under the callback */
        }
    }
    if (!c->completed && c->on_cancel != NULL) {
        void (*fn)(lg_mcp_call_t *, void *) = c->on_cancel;
        c->on_cancel = NULL;
        fn(c, c->cancel_ud);
    }
    lg_mcp_call_unref(c);
}

void lg_mcp_call_on_cancel(lg_mcp_call_t *c, void (*fn)(lg_mcp_call_t *c, void *ud), void *ud)
{
    c->on_cancel = fn;
    c->cancel_ud = ud;
}

int lg_mcp_call_cancelled(const lg_mcp_call_t *c)
{
    return c->cancelled;
}

void lg_mcp_call_log(lg_mcp_call_t *c, int level, const char *logger, json_t *data)
{
    if (c->sink == NULL || c->completed || !lg_mcp_session_log_wanted(c->session, level)) {
        json_decref(data);
        return;
    }
    json_t *p = json_object();
    json_object_set_new(p, "level", json_string(lg_mcp_log_level_name(level)));
    if (logger != NULL)
        json_object_set_new(p, "logger", json_string(logger));
    json_object_set_new(p, "data", data != NULL ? data : json_null());
    c->sink->emit(c->sink, lg_jsonrpc_make_notification("notifications/message", p));
}

void lg_mcp_call_progress(lg_mcp_call_t *c, double progress, double total, const char *message)
{
    if (c->progress_token == NULL || c->sink == NULL || c->completed)
        return;
    json_t *p = json_object();
    json_object_set_new(p, "progressToken", json_copy(c->progress_token));
    /* integral values as JSON integers: clients compare them numerically either way, humans read them better */
    json_object_set_new(p, "progress",
                        progress == (double)(json_int_t)progress ? json_integer((json_int_t)progress) : json_real(progress));
    if (total > 0)
        json_object_set_new(p, "total", total == (double)(json_int_t)total ? json_integer((json_int_t)total) : json_real(total));
    if (message != NULL)
        json_object_set_new(p, "message", json_string(message));
    c->sink->emit(c->sink, lg_jsonrpc_make_notification("notifications/progress", p));
}

const json_t *lg_mcp_call_progress_token(const lg_mcp_call_t *c)
{
    return c->progress_token;
}

int lg_mcp_call_client_has(const lg_mcp_call_t *c, const char *capability)
{
    return lg_mcp_session_client_has(c->session, capability);
}

uv_loop_t *lg_mcp_call_loop(const lg_mcp_call_t *c)
{
    return c->mw->loop;
}

const char *lg_mcp_call_key_id(const lg_mcp_call_t *c)
{
    return lg_mcp_session_key_id(c->session);
}

void lg__mcp_server_cancel(lg_mcp_worker_t *mw, const char *session_id, const char *id_key)
{
    for (lg_mcp_call_t *c = mw->calls; c != NULL; c = c->next) {
        if (strcmp(c->id_key, id_key) != 0 || strcmp(lg_mcp_session_id(c->session), session_id) != 0)
            continue;
        c->silent = 1; /* "stop and don't reply" */
        call_cancel(c);
        return;
    }
}

void lg__mcp_server_session_gone(lg_mcp_worker_t *mw, const char *session_id)
{
    for (lg_mcp_call_t *c = mw->calls; c != NULL;) {
        if (strcmp(lg_mcp_session_id(c->session), session_id) == 0 && !c->cancelled) {
            call_cancel(c);
            c = mw->calls; /* restart: cancellation may complete and unlink calls */
        } else {
            c = c->next;
        }
    }
}

void lg_mcp_server_detach_sink(lg_mcp_worker_t *mw, lg_mcp_sink_t *sink)
{
    for (lg_mcp_call_t *c = mw->calls; c != NULL;) {
        if (c->sink == sink && !c->cancelled) {
            c->sink = NULL;
            call_cancel(c);
            c = mw->calls;
        } else {
            if (c->sink == sink)
                c->sink = NULL;
            c = c->next;
        }
    }
}

/* ---- handlers ---- */

typedef void (*handler_fn)(lg_mcp_call_t *c);

static const char *param_str(lg_mcp_call_t *c, const char *key)
{
    return json_string_value(json_object_get(c->params, key));
}

/* cursor: absent/null = first page; otherwise must be a string */
static int get_cursor(lg_mcp_call_t *c, const char **cursor)
{
    json_t *v = json_object_get(c->params, "cursor");
    *cursor = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
        return -1;
    }
    *cursor = json_string_value(v);
    return 0;
}

static void h_ping(lg_mcp_call_t *c)
{
    lg_mcp_call_result(c, json_object());
}

static void h_set_level(lg_mcp_call_t *c)
{
    int level = lg_mcp_log_level_parse(param_str(c, "level"));
    if (level < 0) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Invalid log level",
                          json_pack("{s:[s,s,s,s,s,s,s,s]}", "levels", "debug", "info", "notice", "warning", "error", "critical",
                                    "alert", "emergency"));
        return;
    }
    lg_mcp_session_set_log_level(c->session, level);
    lg__registry_set_log_level(c->reg, lg_mcp_log_level_name(level)); /* federated upstreams get it too */
    lg_mcp_call_result(c, json_object());
}

static void list(lg_mcp_call_t *c, int kind)
{
    const char *cursor;
    if (get_cursor(c, &cursor) == 0)
        lg__registry_list(c->reg, c, kind, cursor);
}

static void h_tools_list(lg_mcp_call_t *c)
{
    list(c, LG__LIST_TOOLS);
}

static void h_resources_list(lg_mcp_call_t *c)
{
    list(c, LG__LIST_RESOURCES);
}

static void h_templates_list(lg_mcp_call_t *c)
{
    list(c, LG__LIST_TEMPLATES);
}

static void h_prompts_list(lg_mcp_call_t *c)
{
    list(c, LG__LIST_PROMPTS);
}

/* arguments: absent/null = {}; otherwise must be an object */
static json_t *get_arguments(lg_mcp_call_t *c)
{
    json_t *a = json_object_get(c->params, "arguments");
    if (a == NULL || json_is_null(a))
        return json_object();
    if (!json_is_object(a)) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "\"arguments\" must be an object", NULL);
        return NULL;
    }
    return json_incref(a);
}

static void h_tools_call(lg_mcp_call_t *c)
{
    const char *name = param_str(c, "name");
    if (name == NULL || name[0] == '\0') {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "\"name\" must be a non-empty string", NULL);
        return;
    }
    json_t *args = get_arguments(c);
    if (args == NULL)
        return;
    if (tool_policy != NULL) {
        const char *key_id = lg_mcp_call_key_id(c);
        if (tool_policy->allowed != NULL && !tool_policy->allowed(key_id, name)) {
            json_decref(args);
            lg_mcp_call_error(c, LG_JSONRPC_SERVER_ERROR, "tool not permitted for this key",
                              json_pack("{s:s,s:s}", "reason", "forbidden", "tool", name));
            return;
        }
        int code = LG_JSONRPC_SERVER_ERROR;
        char msg[160] = "rate limited";
        json_t *data = NULL;
        if (tool_policy->admit != NULL && tool_policy->admit(key_id, name, &code, msg, sizeof(msg), &data) != 0) {
            json_decref(args);
            lg_mcp_call_error(c, code, msg, data);
            return;
        }
    }
    lg__registry_call_tool(c->reg, c, name, args);
    json_decref(args);
}

static const char *get_uri(lg_mcp_call_t *c)
{
    const char *uri = param_str(c, "uri");
    if (uri == NULL || uri[0] == '\0')
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "\"uri\" must be a non-empty string", NULL);
    return uri != NULL && uri[0] != '\0' ? uri : NULL;
}

static void h_resources_read(lg_mcp_call_t *c)
{
    const char *uri = get_uri(c);
    if (uri != NULL)
        lg__registry_read_resource(c->reg, c, uri);
}

static void h_subscribe(lg_mcp_call_t *c)
{
    const char *uri = get_uri(c);
    if (uri == NULL)
        return;
    if (lg_mcp_session_subscribe(c->session, uri, 1) != 0) {
        lg_mcp_call_error(c, LG_JSONRPC_SERVER_ERROR, "too many subscriptions in this session", NULL);
        return;
    }
    lg__registry_subscribe(c->reg, c, uri, 1);
}

static void h_unsubscribe(lg_mcp_call_t *c)
{
    const char *uri = get_uri(c);
    if (uri == NULL)
        return;
    lg_mcp_session_subscribe(c->session, uri, 0);
    lg__registry_subscribe(c->reg, c, uri, 0);
}

static void h_prompts_get(lg_mcp_call_t *c)
{
    const char *name = param_str(c, "name");
    if (name == NULL || name[0] == '\0') {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "\"name\" must be a non-empty string", NULL);
        return;
    }
    json_t *args = get_arguments(c);
    if (args == NULL)
        return;
    lg__registry_get_prompt(c->reg, c, name, args);
    json_decref(args);
}

static void h_complete(lg_mcp_call_t *c)
{
    json_t *ref = json_object_get(c->params, "ref");
    json_t *arg = json_object_get(c->params, "argument");
    const char *type = json_string_value(json_object_get(ref, "type"));
    if (type == NULL || (strcmp(type, "ref/prompt") != 0 && strcmp(type, "ref/resource") != 0)) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "\"ref.type\" must be \"ref/prompt\" or \"ref/resource\"", NULL);
        return;
    }
    if (!json_is_object(arg) || !json_is_string(json_object_get(arg, "name"))) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "\"argument\" must be an object with a string \"name\"", NULL);
        return;
    }
    lg__registry_complete(c->reg, c, ref, arg, json_object_get(c->params, "context"));
}

static const struct {
    const char *method;
    handler_fn fn;
} methods[] = {
    {"ping", h_ping},
    {"tools/list", h_tools_list},
    {"tools/call", h_tools_call},
    {"resources/list", h_resources_list},
    {"resources/read", h_resources_read},
    {"resources/templates/list", h_templates_list},
    {"resources/subscribe", h_subscribe},
    {"resources/unsubscribe", h_unsubscribe},
    {"prompts/list", h_prompts_list},
    {"prompts/get", h_prompts_get},
    {"logging/setLevel", h_set_level},
    {"completion/complete", h_complete},
};

void lg_mcp_server_dispatch(lg_mcp_worker_t *mw, lg_mcp_session_t *s, lg_mcp_registry_t *reg, const lg_jsonrpc_msg_t *msg,
                            lg_mcp_sink_t *sink)
{
    lg_mcp_call_t *c = lg_malloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->mw = mw;
    c->session = lg_mcp_session_ref(s);
    lg_mcp_session_busy(s, 1);
    c->reg = lg_mcp_registry_ref(reg);
    c->sink = sink;
    c->id = json_incref(msg->id);
    lg_jsonrpc_id_key(msg->id, c->id_key, sizeof(c->id_key));
    snprintf(c->method, sizeof(c->method), "%s", msg->method);
    c->params = json_is_object(msg->params) ? json_incref(msg->params) : json_object();
    json_t *meta = json_object_get(c->params, "_meta");
    json_t *tok = json_object_get(meta, "progressToken");
    if (json_is_string(tok) || json_is_integer(tok))
        c->progress_token = tok;
    c->refcnt = 1; /* released by call_finish */
    c->started_us = lg_now_us();
    c->next = mw->calls;
    if (c->next != NULL)
        c->next->prev = c;
    mw->calls = c;

    if (msg->params != NULL && !json_is_object(msg->params)) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "\"params\" must be an object", NULL);
        return;
    }
    if (strcmp(msg->method, "initialize") == 0) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_REQUEST, "session already initialized", NULL);
        return;
    }
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); ++i) {
        if (strcmp(methods[i].method, msg->method) == 0) {
            lg_mcp_call_ref(c); /* hold across the handler: it may complete and free synchronously */
            methods[i].fn(c);
            lg_mcp_call_unref(c);
            return;
        }
    }
    char m[128];
    snprintf(m, sizeof(m), "Method not found: %.100s", msg->method);
    lg_mcp_call_error(c, LG_JSONRPC_METHOD_NOT_FOUND, m, NULL);
}

int lg_mcp_invoke(lg_mcp_worker_t *mw, lg_mcp_registry_t *reg, const char *key_id, const char *method, json_t *params,
                  lg_mcp_sink_t *sink)
{
    lg_mcp_session_t *s = lg_mcp_session_create(key_id, lg_mcp_registry_name(reg), LG_MCP_LATEST_VERSION, NULL, NULL, 60);
    if (s == NULL)
        return -1;
    lg_mcp_session_close(s); /* never addressable by id; the call's reference keeps it alive */
    lg_mcp_session_set_initialized(s);
    json_t *id = json_string("invoke");
    json_t *root = json_pack("{s:s,s:O,s:s}", "jsonrpc", "2.0", "id", id, "method", method);
    if (params != NULL)
        json_object_set(root, "params", params);
    lg_jsonrpc_msg_t m;
    memset(&m, 0, sizeof(m));
    m.kind = LG_JSONRPC_REQUEST;
    m.root = root;
    m.id = id;
    m.method = method;
    m.params = params;
    lg_mcp_server_dispatch(mw, s, reg, &m, sink);
    lg_mcp_session_unref(s);
    json_decref(root);
    json_decref(id);
    return 0;
}

/* ---- initialize ---- */

static json_t *server_info(const lg_mcp_registry_t *reg)
{
    const char *name = lg_mcp_registry_name(reg);
    char full[160];
    snprintf(full, sizeof(full), name[0] != '\0' ? "llmgate/%s" : "llmgate", name);
    return json_pack("{s:s,s:s,s:s}", "name", full, "title", "llmgate MCP gateway", "version", LG_VERSION_STRING);
}

json_t *lg_mcp_server_initialize(lg_mcp_registry_t *reg, const lg_jsonrpc_msg_t *msg, const char *key_id, uint32_t ttl_s,
                                 lg_mcp_session_t **session_out, int *status)
{
    *session_out = NULL;
    *status = 200;
    json_t *params = msg->params;
    const char *requested = json_string_value(json_object_get(params, "protocolVersion"));
    if (!json_is_object(params) || requested == NULL)
        return lg_jsonrpc_make_error(msg->id, LG_JSONRPC_INVALID_PARAMS, "initialize needs params.protocolVersion", NULL);
    json_t *caps = json_object_get(params, "capabilities");
    if (caps != NULL && !json_is_object(caps))
        return lg_jsonrpc_make_error(msg->id, LG_JSONRPC_INVALID_PARAMS, "params.capabilities must be an object", NULL);
    /* supported: echo it; otherwise answer with our latest and let the client decide (MCP version negotiation) */
    const char *version = lg_mcp_version_supported(requested, strlen(requested)) ? requested : LG_MCP_LATEST_VERSION;
    lg_mcp_session_t *s =
        lg_mcp_session_create(key_id, lg_mcp_registry_name(reg), version, caps, json_object_get(params, "clientInfo"), ttl_s);
    if (s == NULL) {
        *status = 503;
        return lg_jsonrpc_make_error(msg->id, LG_JSONRPC_SERVER_ERROR, "too many MCP sessions; try again later", NULL);
    }
    json_t *result = json_object();
    json_object_set_new(result, "protocolVersion", json_string(version));
    json_object_set_new(result, "capabilities", json_deep_copy(lg_mcp_registry_capabilities(reg)));
    json_object_set_new(result, "serverInfo", server_info(reg));
    *session_out = s;
    return lg_jsonrpc_make_result(msg->id, result);
}

/* ---- 2026-07-28: stateless requests ---- */

json_t *lg_mcp_server_discover(lg_mcp_registry_t *reg, const json_t *id)
{
    json_t *result = json_object();
    json_object_set_new(result, "supportedVersions", lg_mcp_era_supported());
    json_object_set_new(result, "capabilities", json_deep_copy(lg_mcp_registry_capabilities(reg)));
    json_object_set_new(result, "serverInfo", server_info(reg)); /* the pre-#3002 place, for older modern clients */
    json_object_set_new(result, "_meta", json_pack("{s:o}", LG_MCP_META_SERVER_INFO, server_info(reg)));
    return lg_jsonrpc_make_result(id, result);
}

int lg_mcp_server_dispatch_modern(lg_mcp_worker_t *mw, lg_mcp_registry_t *reg, const char *key_id, const lg_jsonrpc_msg_t *msg,
                                  lg_mcp_sink_t *sink)
{
    const json_t *meta = json_object_get(msg->params, "_meta");
    lg_mcp_session_t *s =
        lg_mcp_session_create(key_id, lg_mcp_registry_name(reg), LG_MCP_MODERN_VERSION, json_object_get(meta, LG_MCP_META_CAPS),
                              json_object_get(meta, LG_MCP_META_INFO), 60);
    if (s == NULL)
        return -1;
    lg_mcp_session_close(s); /* the request is its own session: never addressable by id */
    lg_mcp_session_set_initialized(s);
    /* no notifications/message unless the request asks for a level */
    int level = lg_mcp_log_level_parse(json_string_value(json_object_get(meta, LG_MCP_META_LOG_LEVEL)));
    lg_mcp_session_set_log_level(s, level >= 0 ? level : LG_MCP_LOG_NONE);
    lg_mcp_server_dispatch(mw, s, reg, msg, sink);
    lg_mcp_session_unref(s);
    return 0;
}

/* ---- client notifications and responses ---- */

void lg_mcp_server_notification(lg_mcp_worker_t *mw, lg_mcp_session_t *s, const lg_jsonrpc_msg_t *msg)
{
    (void)mw;
    if (strcmp(msg->method, "notifications/initialized") == 0) {
        lg_mcp_session_set_initialized(s);
    } else if (strcmp(msg->method, "notifications/cancelled") == 0) {
        json_t *rid = json_object_get(msg->params, "requestId");
        if (!lg_jsonrpc_id_valid(rid))
            return;
        char key[96];
        lg_jsonrpc_id_key(rid, key, sizeof(key));
        /* the request may be running on any worker: each checks its own calls */
        lg__mcp_post_all(LG_MCP_POST_CANCEL, lg_mcp_session_id(s), key, NULL);
    } else if (strcmp(msg->method, "notifications/progress") == 0) {
        /* progress about a server->client request (sampling, elicitation). Relayed upstream requests are sent with
         * no progressToken, so nothing upstream waits for such progress: it is dropped. */
        LG_LOG(LG_LOG_DEBUG, "mcp", "client progress notification ignored");
    } else {
        /* roots/list_changed and unknown notifications: nothing to do, never an error */
        LG_LOG(LG_LOG_DEBUG, "mcp", "client notification %s ignored", msg->method);
    }
}

void lg_mcp_server_client_response(lg_mcp_worker_t *mw, lg_mcp_session_t *s, const lg_jsonrpc_msg_t *msg)
{
    (void)mw;
    int w = msg->id != NULL ? lg__mcp_outgoing_worker(msg->id) : -1;
    if (w < 0) {
        LG_LOG(LG_LOG_DEBUG, "mcp", "client response with an id we never sent dropped");
        return;
    }
    if (lg__mcp_post((unsigned)w, LG_MCP_POST_RESPONSE, lg_mcp_session_id(s), NULL, json_incref(msg->root)) != 0)
        LG_LOG(LG_LOG_DEBUG, "mcp", "client response for worker %d dropped", w);
}

/* ---- the transport's cross-worker delivery ---- */

static const lg_mcp_transport_ops_t *_Atomic transport;

void lg_mcp_server_set_transport(const lg_mcp_transport_ops_t *ops)
{
    atomic_store(&transport, ops);
}

int lg__mcp_post(unsigned worker, int type, const char *session_id, const char *key, json_t *msg)
{
    const lg_mcp_transport_ops_t *t = atomic_load(&transport);
    if (t == NULL) {
        json_decref(msg);
        return -1;
    }
    return t->post(worker, type, session_id, key, msg);
}

void lg__mcp_post_all(int type, const char *session_id, const char *key, json_t *msg)
{
    const lg_mcp_transport_ops_t *t = atomic_load(&transport);
    if (t == NULL) {
        json_decref(msg);
        return;
    }
    t->post_all(type, session_id, key, msg);
}

/* ---- server-initiated notifications ---- */

void lg_mcp_notify_session(lg_mcp_session_t *s, json_t *msg)
{
    unsigned worker;
    uint64_t serial;
    if (lg_mcp_session_stream(s, &worker, &serial) != 0 ||
        lg__mcp_post(worker, LG_MCP_POST_STREAM_SEND, lg_mcp_session_id(s), NULL, msg) != 0)
        json_decref(msg);
}

struct notify_ctx {
    const char *server;
    const char *uri;
    const char *method;
    unsigned listen_bit; /* what a 2026-07-28 subscriptions/listen stream must have asked for */
};

static void notify_one(lg_mcp_session_t *s, void *ud)
{
    struct notify_ctx *n = ud;
    if (n->server != NULL && strcmp(lg_mcp_session_server(s), n->server) != 0)
        return;
    if (n->uri != NULL && !lg_mcp_session_subscribed(s, n->uri))
        return;
    char sub[64];
    unsigned listen = lg_mcp_session_listen(s, sub, sizeof(sub));
    if (listen != 0 && !(listen & n->listen_bit))
        return; /* a listen stream gets only the notification types it opted in to */
    json_t *params = n->uri != NULL ? json_pack("{s:s}", "uri", n->uri) : NULL;
    if (listen != 0) {
        if (params == NULL)
            params = json_object();
        json_object_set_new(params, "_meta", json_pack("{s:s}", "io.modelcontextprotocol/subscriptionId", sub));
    }
    lg_mcp_notify_session(s, lg_jsonrpc_make_notification(n->method, params));
}

void lg_mcp_notify_list_changed(const char *server, const char *kind)
{
    char method[64];
    snprintf(method, sizeof(method), "notifications/%s/list_changed", kind);
    unsigned bit = strcmp(kind, "tools") == 0     ? LG_MCP_LISTEN_TOOLS
                   : strcmp(kind, "prompts") == 0 ? LG_MCP_LISTEN_PROMPTS
                                                  : LG_MCP_LISTEN_RESOURCES;
    struct notify_ctx n = {.server = server, .method = method, .listen_bit = bit};
    lg_mcp_session_foreach(notify_one, &n);
}

void lg_mcp_notify_resource_updated(const char *uri)
{
    struct notify_ctx n = {.uri = uri, .method = "notifications/resources/updated", .listen_bit = LG_MCP_LISTEN_UPDATES};
    lg_mcp_session_foreach(notify_one, &n);
}
