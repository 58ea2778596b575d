/* SPDX-License-Identifier: MIT */
/*
 * Built-in tools (see builtin.h). The provider is stateless: everything it
 * needs comes from the call's worker (its current config snapshot and
 * upstream client) or, in stdio mode, from the standalone snapshot.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/gate.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "mcp/builtin.h"
#include "mcp/jsonrpc.h"
#include "mcp/registry.h"
#include "metrics/metrics.h"
#include "runtime/worker.h"
#include "upstream/client.h"

#define BUILTIN_NAME "llmgate"
#define CHAT_MAX_RESPONSE (8u << 20)
#define CHAT_TIMEOUT_MS 300000

static lg_snapshot_t *standalone; /* stdio mode */
static int metric_server, metric_chat, metric_list, metric_sample;

void lg_mcp_builtin_set_standalone(lg_snapshot_t *snap)
{
    if (standalone != NULL)
        lg_snapshot_unref(standalone);
    standalone = snap;
    if (snap != NULL)
        lg_snapshot_ref(snap);
}

/* The worker a call runs on (HTTP mode only: every call loop is a worker's loop). */
static lg_worker_t *worker_of(lg_mcp_call_t *c)
{
    uv_loop_t *loop = lg_mcp_call_loop(c);
    return (lg_worker_t *)((char *)loop - offsetof(lg_worker_t, loop));
}

static unsigned shard_of(lg_mcp_call_t *c)
{
    return standalone != NULL ? lg_metrics_shared_shard() : worker_of(c)->index;
}

static void count(lg_mcp_call_t *c, int tool_id, int ok, int64_t started_us)
{
    lg_metrics_mcp_call_id(shard_of(c), metric_server, tool_id, ok, (double)(lg_now_us() - started_us) / 1e6);
}

/* ---- tools/list ---- */

static void list_tools(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    (void)cursor;
    static const char tools_json[] =
        "[{\"name\":\"chat\",\"title\":\"Chat completion\","
        "\"description\":\"Send a chat to any model of the llmgate catalog, routed through the gateway's policies and your "
        "key's limits. Give either messages (OpenAI chat format) or a single prompt. Returns the completion text and usage.\","
        "\"inputSchema\":{\"type\":\"object\",\"properties\":{"
        "\"model\":{\"type\":\"string\",\"description\":\"catalog model id, e.g. mock/echo (see list_models)\"},"
        "\"messages\":{\"type\":\"array\",\"description\":\"chat messages [{role, content}]\","
        "\"items\":{\"type\":\"object\",\"properties\":{\"role\":{\"type\":\"string\"},\"content\":{}},"
        "\"required\":[\"role\"]}},"
        "\"prompt\":{\"type\":\"string\",\"description\":\"a single user message (instead of messages)\"},"
        "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1},"
        "\"temperature\":{\"type\":\"number\"}},\"required\":[\"model\"]},"
        "\"annotations\":{\"readOnlyHint\":true,\"openWorldHint\":true}},"
        "{\"name\":\"list_models\",\"title\":\"List models\","
        "\"description\":\"The models this gateway serves, with context length and pricing.\","
        "\"inputSchema\":{\"type\":\"object\",\"properties\":{}},"
        "\"annotations\":{\"readOnlyHint\":true,\"openWorldHint\":false}}]";
    json_t *tools = json_loads(tools_json, 0, NULL);
    lg_mcp_call_result(c, json_pack("{s:o}", "tools", tools != NULL ? tools : json_array()));
}

/* ---- list_models ---- */

static const lg_snapshot_t *snapshot_of(lg_mcp_call_t *c)
{
    if (standalone != NULL)
        return standalone;
    lg_worker_t *w = worker_of(c);
    return w->rt != NULL ? w->rt->snap : NULL;
}

static void call_list_models(lg_mcp_call_t *c)
{
    int64_t t0 = lg_now_us();
    const lg_snapshot_t *snap = snapshot_of(c);
    json_t *doc = snap != NULL ? json_loadb(snap->models_json, snap->models_json_len, 0, NULL) : NULL;
    json_t *data = json_object_get(doc, "data");
    if (!json_is_array(data)) {
        json_decref(doc);
        count(c, metric_list, 0, t0);
        lg_mcp_call_tool_error(c, "the model catalog is not available");
        return;
    }
    json_t *models = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m)
    {
        json_t *o = json_object();
        static const char *const keep[] = {"id", "name", "context_length", "pricing", NULL};
        for (const char *const *k = keep; *k != NULL; ++k) {
            json_t *v = json_object_get(m, *k);
            if (v != NULL)
                json_object_set(o, *k, v);
        }
        json_array_append_new(models, o);
    }
    json_decref(doc);
    json_t *sc = json_pack("{s:o}", "models", models);
    char *text = json_dumps(sc, JSON_COMPACT);
    json_t *res =
        json_pack("{s:[{s:s,s:s}],s:o}", "content", "type", "text", "text", text != NULL ? text : "{}", "structuredContent", sc);
    free(text);
    count(c, metric_list, 1, t0);
    lg_mcp_call_result(c, res);
}

/* ---- chat ---- */

struct chat_x {
    lg_mcp_call_t *c; /* reference */
    lg_xfer_t *x;
    char *buf;
    size_t len, cap;
    int status;
    int64_t started_us;
    /* sampling on behalf of an upstream (lg_mcp_builtin_sample): the answer goes to reply, not to the call */
    lg_mcp_reply_fn reply;
    void *reply_ud;
};

static void chat_free(struct chat_x *cx)
{
    lg_mcp_call_unref(cx->c);
    free(cx->buf);
    free(cx);
}

static int chat_on_head(void *ctx, lg_xfer_t *x, int status)
{
    (void)x;
    ((struct chat_x *)ctx)->status = status;
    return 0;
}

static int chat_on_data(void *ctx, lg_xfer_t *x, const char *data, size_t len)
{
    (void)x;
    struct chat_x *cx = ctx;
    if (cx->len + len + 1 > cx->cap) {
        size_t cap = cx->cap != 0 ? cx->cap : 4096;
        while (cap < cx->len + len + 1)
            cap *= 2;
        cx->buf = lg_realloc(cx->buf, cap);
        cx->cap = cap;
    }
    memcpy(cx->buf + cx->len, data, len);
    cx->len += len;
    cx->buf[cx->len] = '\0';
    return 0;
}

/* "content" of a chat message: a string, or an array of parts whose text parts are joined */
static char *message_text(json_t *content)
{
    if (json_is_string(content))
        return lg_strdup(json_string_value(content));
    size_t n = 0, i;
    json_t *p;
    json_array_foreach(content, i, p) n += json_string_length(json_object_get(p, "text"));
    char *out = lg_malloc(n + 1), *o = out;
    json_array_foreach(content, i, p)
    {
        json_t *t = json_object_get(p, "text");
        memcpy(o, json_string_value(t) != NULL ? json_string_value(t) : "", json_string_length(t));
        o += json_string_length(t);
    }
    *o = '\0';
    return out;
}

/* The router's chat completion as a sampling/createMessage result (CreateMessageResult), or an error object. */
static void sample_done(struct chat_x *cx, int result, const char *msg)
{
    json_t *doc = cx->len != 0 ? json_loadb(cx->buf, cx->len, 0, NULL) : NULL;
    json_t *res = NULL, *err = NULL;
    char text[400];
    if (result != 0 || cx->status != 200 || !json_is_object(doc)) {
        const char *em = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
        snprintf(text, sizeof(text), "sampling through the llmgate router failed (%s%d): %s", result != 0 ? "transport, " : "HTTP ",
                 result != 0 ? 0 : cx->status,
                 result != 0  ? msg
                 : em != NULL ? em
                              : "invalid response");
        err = json_pack("{s:i,s:s}", "code", LG_JSONRPC_INTERNAL_ERROR, "message", text);
    } else {
        json_t *choice = json_array_get(json_object_get(doc, "choices"), 0);
        char *completion = message_text(json_object_get(json_object_get(choice, "message"), "content"));
        const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
        const char *model = json_string_value(json_object_get(doc, "model"));
        res = json_pack("{s:s,s:{s:s,s:s},s:s,s:s}", "role", "assistant", "content", "type", "text", "text", completion, "model",
                        model != NULL ? model : "", "stopReason",
                        fr == NULL || strcmp(fr, "stop") == 0 ? "endTurn"
                        : strcmp(fr, "length") == 0           ? "maxTokens"
                                                              : fr);
        free(completion);
    }
    count(cx->c, metric_sample, res != NULL, cx->started_us);
    cx->reply(cx->c, cx->reply_ud, res, err);
    json_decref(res);
    json_decref(err);
    json_decref(doc);
}

static void chat_on_done(void *ctx, lg_xfer_t *x, int result, const char *msg)
{
    (void)x;
    struct chat_x *cx = ctx;
    lg_mcp_call_t *c = cx->c;
    if (cx->reply != NULL) {
        sample_done(cx, result, msg);
        chat_free(cx);
        return;
    }
    lg_mcp_call_on_cancel(c, NULL, NULL);
    json_t *doc = cx->len != 0 ? json_loadb(cx->buf, cx->len, 0, NULL) : NULL;
    char text[600];
    if (result != 0) {
        snprintf(text, sizeof(text), "chat failed: gateway unreachable: %s", msg);
        count(c, metric_chat, 0, cx->started_us);
        lg_mcp_call_tool_error(c, text);
    } else if (cx->status != 200 || !json_is_object(doc)) {
        const char *em = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
        snprintf(text, sizeof(text), "chat failed (HTTP %d): %s", cx->status, em != NULL ? em : "invalid response");
        count(c, metric_chat, 0, cx->started_us);
        json_t *res = json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", text, "isError", 1);
        json_t *err = json_object_get(doc, "error");
        if (json_is_object(err)) /* keep the API's error (code, type, metadata) for REST callers */
            json_object_set_new(res, "structuredContent", json_pack("{s:i,s:O}", "status", cx->status, "error", err));
        lg_mcp_call_result(c, res);
    } else {
        json_t *choice = json_array_get(json_object_get(doc, "choices"), 0);
        json_t *message = json_object_get(choice, "message");
        char *completion = message_text(json_object_get(message, "content"));
        json_t *sc = json_object();
        json_object_set_new(sc, "text", json_string(completion));
        json_t *v;
        if ((v = json_object_get(doc, "model")) != NULL)
            json_object_set(sc, "model", v);
        if ((v = json_object_get(doc, "provider")) != NULL)
            json_object_set(sc, "provider", v);
        if ((v = json_object_get(doc, "usage")) != NULL)
            json_object_set(sc, "usage", v);
        if ((v = json_object_get(choice, "finish_reason")) != NULL)
            json_object_set(sc, "finish_reason", v);
        if ((v = json_object_get(doc, "id")) != NULL)
            json_object_set(sc, "id", v);
        json_t *res = json_pack("{s:[{s:s,s:s}],s:o}", "content", "type", "text", "text", completion, "structuredContent", sc);
        free(completion);
        count(c, metric_chat, 1, cx->started_us);
        lg_mcp_call_result(c, res);
    }
    json_decref(doc);
    chat_free(cx);
}

static void chat_on_cancel(lg_mcp_call_t *c, void *ud)
{
    struct chat_x *cx = ud;
    lg_xfer_cancel(cx->x); /* no callback follows */
    count(c, metric_chat, 0, cx->started_us);
    lg_mcp_call_tool_error(c, "chat cancelled");
    chat_free(cx);
}

/* http://<host>:<port> of the first cleartext listener (wildcard addresses dialled on loopback) */
static int self_url(const lg_config_t *conf, char *out, size_t n)
{
    for (size_t i = 0; i < conf->num_listeners; ++i) {
        const lg_listener_conf_t *l = &conf->listeners[i];
        if (l->tls_cert != NULL)
            continue;
        const char *a = l->address;
        if (strcmp(a, "0.0.0.0") == 0 || a[0] == '\0')
            a = "127.0.0.1";
        else if (strcmp(a, "::") == 0)
            a = "::1";
        if (strchr(a, ':') != NULL)
            snprintf(out, n, "http://[%s]:%u/v1/chat/completions", a, (unsigned)l->port);
        else
            snprintf(out, n, "http://%s:%u/v1/chat/completions", a, (unsigned)l->port);
        return 0;
    }
    return -1;
}

/* POST body (stolen) to the gateway's own /v1/chat/completions as the call's key. Returns the exchange, or NULL with
 * the reason in err. */
static struct chat_x *start_internal_chat(lg_mcp_call_t *c, json_t *body, const char *title, lg_mcp_reply_fn reply, void *reply_ud,
                                          int64_t t0, char *err, size_t errlen)
{
    lg_worker_t *w = worker_of(c);
    const char *token = lg_gate_internal_token();
    char url[300];
    if (w->up == NULL || w->rt == NULL || token == NULL || self_url(w->rt->snap->conf, url, sizeof(url)) != 0) {
        json_decref(body);
        snprintf(err, errlen, "%s", "chat is unavailable: the gateway has no cleartext listener to route through");
        return NULL;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    const char *key_id = lg_mcp_call_key_id(c);

    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    req.method = (char *)"POST";
    req.url = url;
    req.body = text;
    req.body_len = strlen(text);
    req.headers[0] = (lg_header_t){(char *)"content-type", (char *)"application/json"};
    req.headers[1] = (lg_header_t){(char *)"x-llmgate-internal", (char *)token};
    req.headers[2] = (lg_header_t){(char *)"x-llmgate-key-id", (char *)(key_id != NULL ? key_id : "")};
    req.headers[3] = (lg_header_t){(char *)"x-title", (char *)title};
    req.num_headers = 4;
    lg_xfer_opts_t opts = {.connect_timeout_ms = 5000,
                           .first_byte_timeout_ms = CHAT_TIMEOUT_MS,
                           .idle_timeout_ms = CHAT_TIMEOUT_MS,
                           .total_timeout_ms = CHAT_TIMEOUT_MS,
                           .max_response_bytes = CHAT_MAX_RESPONSE};
    static const lg_xfer_callbacks_t cbs = {chat_on_head, chat_on_data, chat_on_done};
    struct chat_x *cx = lg_malloc(sizeof(*cx));
    memset(cx, 0, sizeof(*cx));
    cx->c = lg_mcp_call_ref(c);
    cx->started_us = t0;
    cx->reply = reply;
    cx->reply_ud = reply_ud;
    char xerr[160] = "";
    cx->x = lg_xfer_start(w->up, &req, &opts, &cbs, cx, xerr, sizeof(xerr));
    free(text);
    if (cx->x == NULL) {
        chat_free(cx);
        snprintf(err, errlen, "%s", "chat failed: cannot start the internal request");
        return NULL;
    }
    return cx;
}

static void call_chat(lg_mcp_call_t *c, json_t *args)
{
    int64_t t0 = lg_now_us();
    if (standalone != NULL) {
        count(c, metric_chat, 0, t0);
        lg_mcp_call_tool_error(c, "chat needs the HTTP gateway: run `llmgate --config FILE` and connect to its /mcp "
                                  "(stdio mode serves list_models and the federated tools only)");
        return;
    }
    const char *model = json_string_value(json_object_get(args, "model"));
    json_t *messages = json_object_get(args, "messages");
    const char *prompt = json_string_value(json_object_get(args, "prompt"));
    json_t *mt = json_object_get(args, "max_tokens"), *temp = json_object_get(args, "temperature");
    const char *bad = NULL;
    if (model == NULL || model[0] == '\0')
        bad = "\"model\" (string) is required";
    else if (messages != NULL && (!json_is_array(messages) || json_array_size(messages) == 0))
        bad = "\"messages\" must be a non-empty array";
    else if (messages == NULL && prompt == NULL)
        bad = "give \"messages\" (array) or \"prompt\" (string)";
    else if (mt != NULL && !json_is_integer(mt))
        bad = "\"max_tokens\" must be an integer";
    else if (temp != NULL && !json_is_number(temp))
        bad = "\"temperature\" must be a number";
    char m[200];
    if (bad != NULL) {
        snprintf(m, sizeof(m), "invalid arguments: %s", bad);
        count(c, metric_chat, 0, t0);
        lg_mcp_call_tool_error(c, m);
        return;
    }
    json_t *body = json_pack("{s:s,s:b}", "model", model, "stream", 0);
    if (messages != NULL)
        json_object_set(body, "messages", messages);
    else
        json_object_set_new(body, "messages", json_pack("[{s:s,s:s}]", "role", "user", "content", prompt));
    if (mt != NULL)
        json_object_set(body, "max_tokens", mt);
    if (temp != NULL)
        json_object_set(body, "temperature", temp);
    struct chat_x *cx = start_internal_chat(c, body, "llmgate MCP chat tool", NULL, NULL, t0, m, sizeof(m));
    if (cx == NULL) {
        count(c, metric_chat, 0, t0);
        lg_mcp_call_tool_error(c, m);
        return;
    }
    lg_mcp_call_on_cancel(c, chat_on_cancel, cx);
}

/* ---- sampling for upstreams (mcp.sampling_model) ---- */

int lg_mcp_builtin_can_sample(lg_mcp_call_t *c)
{
    if (standalone != NULL)
        return 0;
    lg_worker_t *w = worker_of(c);
    return w->rt != NULL && w->rt->snap->conf->mcp.sampling_model != NULL;
}

/* sampling content (one block or an array of blocks) -> chat content text; non-text blocks are named, not sent */
static json_t *sampling_text(json_t *content)
{
    if (json_is_object(content)) {
        const char *t = json_string_value(json_object_get(content, "text"));
        if (t != NULL)
            return json_string(t);
        const char *type = json_string_value(json_object_get(content, "type"));
        char note[80];
        snprintf(note, sizeof(note), "[%s content omitted]", type != NULL ? type : "non-text");
        return json_string(note);
    }
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b)
        json_array_append_new(parts, json_pack("{s:s,s:o}", "type", "text", "text", sampling_text(b)));
    return parts;
}

void lg_mcp_builtin_sample(lg_mcp_call_t *c, const json_t *params, lg_mcp_reply_fn reply, void *ud)
{
    int64_t t0 = lg_now_us();
    const lg_config_t *conf = worker_of(c)->rt->snap->conf;
    json_t *messages = json_array();
    const char *sys = json_string_value(json_object_get(params, "systemPrompt"));
    if (sys != NULL)
        json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "system", "content", sys));
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(params, "messages"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_array_append_new(messages,
                              json_pack("{s:s,s:o}", "role", role != NULL && strcmp(role, "assistant") == 0 ? "assistant" : "user",
                                        "content", sampling_text(json_object_get(m, "content"))));
    }
    char err[200];
    if (json_array_size(messages) == 0) {
        json_decref(messages);
        json_t *e = json_pack("{s:i,s:s}", "code", LG_JSONRPC_INVALID_PARAMS, "message", "sampling/createMessage without messages");
        reply(c, ud, NULL, e);
        json_decref(e);
        return;
    }
    json_t *body = json_pack("{s:s,s:b,s:o}", "model", conf->mcp.sampling_model, "stream", 0, "messages", messages);
    json_t *v;
    if (json_is_integer(v = json_object_get(params, "maxTokens")) && json_integer_value(v) > 0)
        json_object_set(body, "max_tokens", v);
    if (json_is_number(v = json_object_get(params, "temperature")))
        json_object_set(body, "temperature", v);
    if (json_is_array(v = json_object_get(params, "stopSequences")))
        json_object_set(body, "stop", v);
    if (start_internal_chat(c, body, "llmgate MCP sampling", reply, ud, t0, err, sizeof(err)) == NULL) {
        count(c, metric_sample, 0, t0);
        json_t *e = json_pack("{s:i,s:s}", "code", LG_JSONRPC_INTERNAL_ERROR, "message", err);
        reply(c, ud, NULL, e);
        json_decref(e);
    }
}

static void call_tool(void *state, lg_mcp_call_t *c, const char *name, json_t *args)
{
    (void)state;
    if (strcmp(name, "chat") == 0)
        call_chat(c, args);
    else if (strcmp(name, "list_models") == 0)
        call_list_models(c);
    else
        lg_mcp_call_decline(c);
}

static const lg_mcp_provider_ops_t builtin_ops = {
    .list_tools = list_tools,
    .call_tool = call_tool,
};

static void builder(const lg_config_t *conf, lg_mcp_registry_t *def, void (*add_registry)(lg_mcp_registry_t *r))
{
    (void)conf;
    (void)add_registry;
    metric_server = lg_metrics_mcp_server_id(BUILTIN_NAME);
    metric_chat = lg_metrics_mcp_tool_id("chat");
    metric_list = lg_metrics_mcp_tool_id("list_models");
    metric_sample = lg_metrics_mcp_tool_id("sampling");
    if (lg_mcp_registry_add_builtin(def, BUILTIN_NAME, BUILTIN_NAME, NULL, &builtin_ops) != 0)
        LG_LOG(LG_LOG_ERR, "mcp", "cannot add the built-in tools");
}

void lg_mcp_builtin_register(void)
{
    lg_mcp_registry_set_builder(builder);
}
