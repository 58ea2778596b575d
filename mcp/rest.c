/* SPDX-License-Identifier: MIT */
/*
 * REST facade over the MCP registry (see rest.h). One exchange per HTTP
 * request: a sink that receives the JSON-RPC answer of lg_mcp_invoke and
 * turns it into an HTTP response. If the client goes away first, the pool
 * dispose hook detaches the sink (the call is cancelled, no answer follows).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "http/respond.h"
#include "llmgate/plugin.h"
#include "mcp/auth.h"
#include "mcp/jsonrpc.h"
#include "mcp/rest.h"
#include "mcp/server.h"
#include "mcp/transport_http.h"

#define MAX_LIST_PAGES 1000

struct rest_x {
    lg_mcp_sink_t sink; /* first: the sink callbacks get this pointer */
    h2o_req_t *req;     /* NULL once h2o disposed of the request */
    lg_mcp_worker_t *mw;
    lg_mcp_registry_t *reg;
    char key_id[128];
    char *tool; /* NULL = list */
    json_t *tools;
    unsigned pages;
    int pending;
    json_t *args;      /* the call's arguments, kept for a second try under the resolved name */
    int resolving;     /* listing to resolve an unprefixed tool name */
    char *list_prefix; /* GET <rest_path>: only the tools of this prefix ("<prefix>__") */
};

static void rest_on_dispose(void *p)
{
    struct rest_x *x = *(struct rest_x **)p;
    x->req = NULL;
    if (x->pending)
        lg_mcp_server_detach_sink(x->mw, &x->sink); /* cancels the call; sink->respond is not called */
    lg_mcp_registry_unref(x->reg);
    json_decref(x->tools);
    json_decref(x->args);
    free(x->tool);
    free(x->list_prefix);
    free(x);
}

static int rest_emit(lg_mcp_sink_t *sink, json_t *msg)
{
    (void)sink;
    json_decref(msg); /* logs and progress have nowhere to go in a plain JSON answer */
    return -1;
}

static int upstream_down(const char *text)
{
    static const char *const marks[] = {"unavailable", "unreachable", "circuit",   "not running", "not connected",
                                        "is down",     "restarting",  "timed out", NULL};
    for (const char *const *m = marks; text != NULL && *m != NULL; ++m)
        if (strcasestr(text, *m) != NULL)
            return 1;
    return 0;
}

/* An upstream that rejects the arguments often says so with -32603 and a validation message ("topology must be one
 * of ..."): that is the caller's mistake (422), not an unavailable provider. */
static int looks_like_validation(const char *m)
{
    static const char *const marks[] = {"must be",       "must have",      "is required",   "required property", "invalid argument",
                                        "invalid input", "invalid params", "invalid value", "expected",          "validation",
                                        "not one of",    "not allowed",    "unrecognized",  "missing",           NULL};
    for (const char *const *k = marks; m != NULL && *k != NULL; ++k)
        if (strcasestr(m, *k) != NULL)
            return 1;
    return 0;
}

static void answer_error(struct rest_x *x, json_t *err)
{
    int code = (int)json_integer_value(json_object_get(err, "code"));
    const char *message = json_string_value(json_object_get(err, "message"));
    json_t *data = json_object_get(err, "data");
    const char *reason = json_string_value(json_object_get(data, "reason"));
    json_t *meta = json_pack("{s:i}", "mcp_code", code);
    if (x->tool != NULL)
        json_object_set_new(meta, "tool", json_string(x->tool));
    if (data != NULL && reason == NULL)
        json_object_set(meta, "mcp_data", data);
    if (reason != NULL && strcmp(reason, "forbidden") == 0) {
        lg_respond_error(x->req, LG_EFORBIDDEN, 403, "tool not permitted for this key", meta);
    } else if (reason != NULL && strcmp(reason, "rate_limited") == 0) {
        json_int_t ms = json_integer_value(json_object_get(data, "retryAfterMs"));
        char ra[32];
        snprintf(ra, sizeof(ra), "%lld", (long long)((ms + 999) / 1000 > 0 ? (ms + 999) / 1000 : 1));
        lg_add_header(x->req, "retry-after", ra);
        lg_respond_error(x->req, LG_ERATELIMIT, 429, message, meta);
    } else if (reason != NULL && strcmp(reason, "credit") == 0) {
        lg_respond_error(x->req, LG_ECREDIT, 402, message, meta);
    } else if (reason != NULL && strcmp(reason, "unauthorized") == 0) {
        lg_respond_error(x->req, LG_EAUTH, 401, message, meta);
    } else if (code == LG_JSONRPC_INVALID_PARAMS && message != NULL && strcmp(message, "Unknown tool") == 0) {
        char m[300];
        snprintf(m, sizeof(m), "unknown tool: %.200s", x->tool != NULL ? x->tool : "");
        lg_respond_error(x->req, LG_ENOTFOUND, 404, m, meta);
    } else if (code == LG_JSONRPC_INVALID_PARAMS) {
        lg_respond_error(x->req, LG_EINVAL, 400, message, meta);
    } else if (looks_like_validation(message)) {
        lg_respond_error(x->req, LG_EINVAL, 422, message, meta);
    } else {
        lg_respond_error(x->req, LG_EUPSTREAM, 502, message != NULL ? message : "tool call failed", meta);
    }
}

static void answer_call(struct rest_x *x, json_t *result)
{
    if (!json_is_true(json_object_get(result, "isError"))) {
        lg_respond_json(x->req, 200, json_pack("{s:O}", "data", result));
        return;
    }
    /* a tool error is the tool's answer (200, isError in the data) unless the gateway could not reach its upstream */
    const char *text = NULL;
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(result, "content"), i, part)
    {
        if ((text = json_string_value(json_object_get(part, "text"))) != NULL)
            break;
    }
    if (text != NULL && strncmp(text, "upstream ", 9) == 0 && upstream_down(text)) {
        json_t *meta = json_pack("{s:s,s:O}", "tool", x->tool, "result", result);
        lg_respond_error(x->req, LG_EUPSTREAM, 502, text, meta);
        return;
    }
    lg_respond_json(x->req, 200, json_pack("{s:O}", "data", result));
}

static void list_next(struct rest_x *x, const char *cursor);
static void resolve_and_call(struct rest_x *x);

static void rest_respond(lg_mcp_sink_t *sink, json_t *msg)
{
    struct rest_x *x = (struct rest_x *)sink;
    x->pending = 0;
    if (x->req == NULL || msg == NULL) {
        json_decref(msg);
        if (x->req != NULL)
            lg_respond_error(x->req, LG_ECANCELLED, 499, "tool call cancelled", NULL);
        return;
    }
    json_t *err = json_object_get(msg, "error");
    json_t *result = json_object_get(msg, "result");
    if (err != NULL && x->tool != NULL && !x->resolving && x->args != NULL &&
        json_integer_value(json_object_get(err, "code")) == LG_JSONRPC_INVALID_PARAMS &&
        strcmp(json_string_value(json_object_get(err, "message")) != NULL ? json_string_value(json_object_get(err, "message")) : "",
               "Unknown tool") == 0) {
        /* maybe an unprefixed name ("parse_prd" for "taskmaster__parse_prd"): list, and call it if only one matches */
        json_decref(msg);
        x->resolving = 1;
        x->tools = json_array();
        list_next(x, NULL);
        return;
    }
    if (err != NULL) {
        answer_error(x, err);
    } else if (x->tool != NULL && x->resolving != 1) {
        answer_call(x, result);
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(result, "tools"), i, t)
        {
            const char *nm = json_string_value(json_object_get(t, "name"));
            if (x->list_prefix != NULL && (nm == NULL || strncmp(nm, x->list_prefix, strlen(x->list_prefix)) != 0))
                continue;
            json_t *o = json_object();
            static const char *const keep[] = {"name", "title", "description", "inputSchema", "outputSchema", NULL};
            for (const char *const *k = keep; *k != NULL; ++k)
                if (json_object_get(t, *k) != NULL)
                    json_object_set(o, *k, json_object_get(t, *k));
            json_array_append_new(x->tools, o);
        }
        const char *next = json_string_value(json_object_get(result, "nextCursor"));
        if (next != NULL && next[0] != '\0' && ++x->pages < MAX_LIST_PAGES) {
            char *cur = lg_strdup(next);
            json_decref(msg);
            list_next(x, cur);
            free(cur);
            return;
        }
        if (x->resolving == 1) {
            json_decref(msg);
            resolve_and_call(x);
            return;
        }
        lg_respond_json(x->req, 200, json_pack("{s:O}", "data", x->tools));
    }
    json_decref(msg);
}

static void invoke(struct rest_x *x, const char *method, json_t *params)
{
    x->pending = 1;
    if (lg_mcp_invoke(x->mw, x->reg, x->key_id[0] != '\0' ? x->key_id : NULL, method, params, &x->sink) != 0) {
        x->pending = 0;
        lg_respond_error(x->req, LG_EOVERLOADED, 503, "too many MCP sessions; try again later", NULL);
    }
}

static void list_next(struct rest_x *x, const char *cursor)
{
    json_t *params = cursor != NULL ? json_pack("{s:s}", "cursor", cursor) : json_object();
    invoke(x, "tools/list", params);
    json_decref(params);
}

static void call_named(struct rest_x *x)
{
    json_t *params = json_pack("{s:s,s:O}", "name", x->tool, "arguments", x->args);
    invoke(x, "tools/call", params);
    json_decref(params);
}

/* After the list: exactly one "<prefix>__<tool>" -> call it; none -> 404; several -> 409 naming them. */
static void resolve_and_call(struct rest_x *x)
{
    json_t *matches = json_array();
    size_t tl = strlen(x->tool), sl = strlen(LG_MCP_PREFIX_SEP), i;
    json_t *t;
    json_array_foreach(x->tools, i, t)
    {
        const char *nm = json_string_value(json_object_get(t, "name"));
        size_t n = nm != NULL ? strlen(nm) : 0;
        if (n > tl + sl && strcmp(nm + n - tl, x->tool) == 0 && memcmp(nm + n - tl - sl, LG_MCP_PREFIX_SEP, sl) == 0)
            json_array_append_new(matches, json_string(nm));
    }
    size_t found = json_array_size(matches);
    if (found == 1) {
        free(x->tool);
        x->tool = lg_strdup(json_string_value(json_array_get(matches, 0)));
        json_decref(matches);
        x->resolving = 2; /* resolved: the call's answer is final */
        call_named(x);
        return;
    }
    char m[300];
    if (found == 0) {
        snprintf(m, sizeof(m), "unknown tool: %.200s", x->tool);
        json_decref(matches);
        lg_respond_error(x->req, LG_ENOTFOUND, 404, m, json_pack("{s:s}", "tool", x->tool));
    } else {
        snprintf(m, sizeof(m), "tool name %.200s is ambiguous: use one of the prefixed names", x->tool);
        lg_respond_error(x->req, LG_EINVAL, 409, m, json_pack("{s:s,s:o}", "tool", x->tool, "candidates", matches));
    }
}

/* tool (len bytes, may be empty = list) under prefix (the mounted upstream's "<prefix>__", or "") */
static void rest_serve(lg_worker_t *w, h2o_req_t *req, const char *tool, size_t len, const char *prefix, size_t prefix_len)
{
    const lg_config_t *conf = w->rt->snap->conf;
    if (!conf->mcp.enabled) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "no such route", NULL);
        return;
    }
    int is_get = req->method.len == 3 && memcmp(req->method.base, "GET", 3) == 0;
    int is_post = req->method.len == 4 && memcmp(req->method.base, "POST", 4) == 0;
    if (len == 0 && !is_get) {
        lg_add_header(req, "allow", "GET");
        lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", "GET"));
        return;
    }
    if (len != 0 && !is_post) {
        lg_add_header(req, "allow", "POST");
        lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", "POST"));
        return;
    }
    char key_id[128];
    const char *msg = NULL;
    if (lg_mcp_auth_request(req, key_id, sizeof(key_id), &msg) != 0) {
        lg_add_header(req, "www-authenticate", "Bearer realm=\"llmgate\"");
        lg_respond_error(req, LG_EAUTH, 401, msg, NULL);
        return;
    }
    json_t *args = NULL;
    if (len != 0) {
        if (req->entity.len == 0) {
            args = json_object();
        } else {
            json_error_t jerr;
            args = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
            if (!json_is_object(args)) {
                char m[300];
                if (args == NULL)
                    snprintf(m, sizeof(m), "invalid JSON body: %.200s", jerr.text);
                else
                    snprintf(m, sizeof(m), "the body must be a JSON object of the tool's arguments");
                json_decref(args);
                lg_respond_error(req, LG_EINVAL, 400, m, NULL);
                return;
            }
        }
    }
    lg_mcp_worker_t *mw = lg_mcp_worker_of(w);
    lg_mcp_registry_t *reg = mw != NULL ? lg_mcp_registry_for(conf, w->rt->snap->generation, "", 0) : NULL;
    if (reg == NULL) {
        json_decref(args);
        lg_respond_error(req, LG_EINTERNAL, 500, "MCP is not available on this worker", NULL);
        return;
    }
    struct rest_x *x = lg_malloc(sizeof(*x));
    memset(x, 0, sizeof(*x));
    x->sink.emit = rest_emit;
    x->sink.respond = rest_respond;
    x->req = req;
    x->mw = mw;
    x->reg = reg;
    snprintf(x->key_id, sizeof(x->key_id), "%s", key_id);
    *(struct rest_x **)h2o_mem_alloc_shared(&req->pool, sizeof(struct rest_x *), rest_on_dispose) = x;
    if (len == 0) {
        x->tools = json_array();
        if (prefix_len != 0)
            x->list_prefix = lg_strdup(prefix);
        list_next(x, NULL);
        return;
    }
    x->tool = lg_malloc(prefix_len + len + 1);
    memcpy(x->tool, prefix, prefix_len);
    memcpy(x->tool + prefix_len, tool, len);
    x->tool[prefix_len + len] = '\0';
    x->args = args;
    if (prefix_len != 0)
        x->resolving = 2; /* a mounted upstream's tool: no guessing */
    call_named(x);
}

void lg_mcp_rest_handle(lg_worker_t *w, h2o_req_t *req, const char *tool, size_t len)
{
    rest_serve(w, req, tool, len, "", 0);
}

int lg_mcp_rest_mount(lg_worker_t *w, h2o_req_t *req, const char *path, size_t len)
{
    const lg_config_t *conf = w->rt->snap->conf;
    for (size_t i = 0; i < conf->mcp.num_servers; ++i) {
        const lg_mcp_server_conf_t *sc = &conf->mcp.servers[i];
        if (sc->rest_path == NULL || !sc->enabled)
            continue;
        size_t rl = strlen(sc->rest_path);
        if (len < rl || memcmp(path, sc->rest_path, rl) != 0 || (len > rl && path[rl] != '/'))
            continue;
        size_t off = len > rl ? rl + 1 : rl, tl = len - off;
        if (tl > 0 && path[off + tl - 1] == '/')
            --tl;
        char prefix[80] = "";
        if (sc->prefix != NULL)
            snprintf(prefix, sizeof(prefix), "%s%s", sc->prefix, LG_MCP_PREFIX_SEP);
        rest_serve(w, req, path + off, tl, prefix, strlen(prefix));
        return 1;
    }
    return 0;
}
