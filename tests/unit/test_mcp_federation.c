/* SPDX-License-Identifier: MIT */
/*
 * Federation unit tests: the real builder, registry, upstream thread, stdio
 * transport and tests/mcp/fake_mcp_server, driven through the registry entry
 * points with a stand-in for the server's call object (the call API below
 * mirrors server.c's completion rules, so no transport is needed). Covers the
 * mcp.servers/virtual_servers/circuit config, prefixing, paginated upstream
 * listing, calls and error mapping, progress and log routing, list_changed,
 * virtual-server filtering, a crashing upstream and its restart, timeouts with
 * notifications/cancelled, client cancellation, the circuit breaker, and the
 * graceful stop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "mcp/federation.h"
#include "mcp/server.h"
#include "mcp/upstream_thread.h"

/* registry entry points (registry.c), as server.c declares them */
void lg__registry_list(lg_mcp_registry_t *r, lg_mcp_call_t *c, int kind, const char *cursor);
void lg__registry_call_tool(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *name, json_t *args);
void lg__registry_read_resource(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *uri);
void lg__registry_get_prompt(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *name, json_t *args);
int lg__registry_on_result(lg_mcp_call_t *c, json_t **result);
int lg__registry_on_decline(lg_mcp_call_t *c);
void lg__registry_route_dispose(lg_mcp_route_t *route);

/* ---- a stand-in for server.c's call object ---- */

struct tcall {
    struct lg_mcp_call c; /* first: container_of by cast */
    int done;
    json_t *result;
    int code;
    char message[256];
    int progress_events;
    double last_progress;
    int log_events;
    char log_text[128];
};

static uv_loop_t loop;
static lg_mcp_worker_t worker;

const char *const lg_mcp_supported_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};

int lg_mcp_version_supported(const char *v, size_t len)
{
    for (const char *const *p = lg_mcp_supported_versions; *p != NULL; ++p)
        if (strlen(*p) == len && memcmp(*p, v, len) == 0)
            return 1;
    return 0;
}

lg_mcp_call_t *lg_mcp_call_ref(lg_mcp_call_t *c)
{
    ++c->refcnt;
    return c;
}

void lg_mcp_call_unref(lg_mcp_call_t *c)
{
    if (--c->refcnt != 0)
        return;
    struct tcall *t = (struct tcall *)c;
    lg__registry_route_dispose(&c->route);
    lg_mcp_registry_unref(c->reg);
    json_decref(c->params);
    json_decref(t->result);
    free(t);
}

static void finish(lg_mcp_call_t *c)
{
    c->completed = 1;
    c->on_cancel = NULL;
    ((struct tcall *)c)->done = 1;
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
        return;
    ((struct tcall *)c)->result = result;
    finish(c);
}

void lg_mcp_call_error(lg_mcp_call_t *c, int code, const char *message, json_t *data)
{
    json_decref(data);
    if (c->completed)
        return;
    struct tcall *t = (struct tcall *)c;
    t->code = code;
    snprintf(t->message, sizeof(t->message), "%s", message);
    finish(c);
}

void lg_mcp_call_decline(lg_mcp_call_t *c)
{
    if (c->completed)
        return;
    if (c->route.op != 0 && lg__registry_on_decline(c))
        return;
    lg_mcp_call_error(c, strcmp(c->method, "resources/read") == 0 ? LG_MCP_RESOURCE_NOT_FOUND : LG_JSONRPC_INVALID_PARAMS,
                      "Not found", NULL);
}

void lg_mcp_call_tool_error(lg_mcp_call_t *c, const char *text)
{
    lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s}],s:b}", "content", "type", "text", "text", text, "isError", 1));
}

void lg_mcp_call_log(lg_mcp_call_t *c, int level, const char *logger, json_t *data)
{
    struct tcall *t = (struct tcall *)c;
    (void)level;
    (void)logger;
    t->log_events++;
    snprintf(t->log_text, sizeof(t->log_text), "%s", json_string_value(data) != NULL ? json_string_value(data) : "");
    json_decref(data);
}

void lg_mcp_call_progress(lg_mcp_call_t *c, double progress, double total, const char *message)
{
    struct tcall *t = (struct tcall *)c;
    (void)total;
    (void)message;
    if (c->progress_token == NULL)
        return;
    t->progress_events++;
    t->last_progress = progress;
}

const json_t *lg_mcp_call_progress_token(const lg_mcp_call_t *c)
{
    return c->progress_token;
}

void lg_mcp_call_request(lg_mcp_call_t *c, const char *method, json_t *params, uint32_t timeout_ms, lg_mcp_reply_fn cb, void *ud)
{
    (void)method;
    (void)timeout_ms;
    json_decref(params);
    json_t *err = json_pack("{s:i,s:s}", "code", -32601, "message", "no");
    cb(c, ud, NULL, err);
    json_decref(err);
}

int lg_mcp_call_client_has(const lg_mcp_call_t *c, const char *capability)
{
    (void)c;
    (void)capability;
    return 0;
}

uv_loop_t *lg_mcp_call_loop(const lg_mcp_call_t *c)
{
    return c->mw->loop;
}

const char *lg_mcp_call_key_id(const lg_mcp_call_t *c)
{
    (void)c;
    return NULL;
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

/* ---- notifications and the log, observed from the upstream thread ---- */

static pthread_mutex_t obs_mu = PTHREAD_MUTEX_INITIALIZER;
static int tools_changed_root, tools_changed_sub;
static char logbuf[1 << 16];
static size_t loglen;

void lg_mcp_notify_list_changed(const char *server, const char *kind)
{
    pthread_mutex_lock(&obs_mu);
    if (strcmp(kind, "tools") == 0) {
        if (server[0] == '\0')
            ++tools_changed_root;
        else if (strcmp(server, "sub") == 0)
            ++tools_changed_sub;
    }
    pthread_mutex_unlock(&obs_mu);
}

void lg_mcp_notify_resource_updated(const char *uri)
{
    (void)uri;
}

static void log_sink(int level, const char *module, const char *line)
{
    (void)level;
    pthread_mutex_lock(&obs_mu);
    int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "[%s] %s\n", module, line);
    if (n > 0 && loglen + (size_t)n < sizeof(logbuf))
        loglen += (size_t)n;
    pthread_mutex_unlock(&obs_mu);
}

static int log_has(const char *needle)
{
    pthread_mutex_lock(&obs_mu);
    int r = strstr(logbuf, needle) != NULL;
    pthread_mutex_unlock(&obs_mu);
    return r;
}

static int changed_root(void)
{
    pthread_mutex_lock(&obs_mu);
    int v = tools_changed_root;
    pthread_mutex_unlock(&obs_mu);
    return v;
}

/* ---- helpers ---- */

static char fake_path[1024];
static lg_config_t *conf;
static uint64_t generation = 1;

static void on_keepalive(uv_timer_t *t)
{
    (void)t;
}

/* Run the worker loop until *flag is set (or pred true) or ms pass. */
static int run_until(int (*pred)(void *), void *arg, int ms)
{
    uv_timer_t ka;
    uv_timer_init(&loop, &ka);
    uv_timer_start(&ka, on_keepalive, 5, 5);
    int64_t deadline = lg_now_ms() + ms;
    int ok = 0;
    while (!(ok = pred(arg)) && lg_now_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&ka, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static int call_done(void *arg)
{
    return ((struct tcall *)arg)->done;
}

static struct tcall *new_call(lg_mcp_registry_t *reg, const char *method, json_t *params)
{
    struct tcall *t = calloc(1, sizeof(*t));
    t->c.mw = &worker;
    t->c.reg = lg_mcp_registry_ref(reg);
    snprintf(t->c.method, sizeof(t->c.method), "%s", method);
    t->c.params = params != NULL ? params : json_object();
    json_t *tok = json_object_get(json_object_get(t->c.params, "_meta"), "progressToken");
    t->c.progress_token = tok;
    t->c.refcnt = 1; /* the test's */
    return t;
}

static lg_mcp_registry_t *registry(const char *name)
{
    return lg_mcp_registry_for(conf, generation, name, strlen(name));
}

/* tools/list across every page; returns the names joined by ',' */
static char *list_all(lg_mcp_registry_t *reg, int *pages)
{
    char *out = calloc(1, 8192);
    char *cursor = NULL;
    *pages = 0;
    do {
        struct tcall *t = new_call(reg, "tools/list", NULL);
        lg__registry_list(reg, &t->c, 1, cursor);
        assert_true(run_until(call_done, t, 15000));
        assert_non_null(t->result);
        ++*pages;
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(t->result, "tools"), i, it)
        {
            strcat(out, json_string_value(json_object_get(it, "name")));
            strcat(out, ",");
        }
        free(cursor);
        const char *next = json_string_value(json_object_get(t->result, "nextCursor"));
        cursor = next != NULL ? strdup(next) : NULL;
        lg_mcp_call_unref(&t->c);
    } while (cursor != NULL);
    return out;
}

static struct tcall *call_tool(lg_mcp_registry_t *reg, const char *name, json_t *args, json_t *meta)
{
    json_t *params = json_pack("{s:s}", "name", name);
    if (meta != NULL)
        json_object_set_new(params, "_meta", meta);
    struct tcall *t = new_call(reg, "tools/call", params);
    lg__registry_call_tool(reg, &t->c, name, args);
    json_decref(args);
    return t;
}

static const char *result_text(struct tcall *t)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(t->result, "content"), 0), "text"));
}

static int is_error_result(struct tcall *t)
{
    return json_is_true(json_object_get(t->result, "isError"));
}

struct wait_list {
    lg_mcp_registry_t *reg;
    const char *needle;
    int want; /* 1 = present, 0 = absent */
};

static int list_matches(void *arg)
{
    struct wait_list *w = arg;
    int pages;
    char *all = list_all(w->reg, &pages);
    int present = strstr(all, w->needle) != NULL;
    free(all);
    return present == w->want;
}

static int wait_list(lg_mcp_registry_t *reg, const char *needle, int want, int ms)
{
    struct wait_list w = {reg, needle, want};
    int64_t deadline = lg_now_ms() + ms;
    while (lg_now_ms() < deadline) {
        if (list_matches(&w))
            return 1;
        usleep(50000);
    }
    return 0;
}

struct fstate {
    const char *name;
    char state[32];
    int pid;
    size_t tools;
};

static void on_state(const char *name, const char *state, int pid, size_t tools, void *arg)
{
    struct fstate *f = arg;
    if (strcmp(name, f->name) != 0)
        return;
    snprintf(f->state, sizeof(f->state), "%s", state);
    f->pid = pid;
    f->tools = tools;
}

static struct fstate upstream_state(const char *name)
{
    struct fstate f = {.name = name};
    lg_mcp_federation_foreach(on_state, &f);
    return f;
}

/* ---- setup ---- */

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    const char *bd = getenv("LLMGATE_BUILD_DIR");
    snprintf(fake_path, sizeof(fake_path), "%s/tests/mcp/fake_mcp_server", bd != NULL ? bd : "build");
    if (access(fake_path, X_OK) != 0) {
        fprintf(stderr, "fake_mcp_server not found at %s (set LLMGATE_BUILD_DIR)\n", fake_path);
        return -1;
    }
    lg_log_set_sink(log_sink);
    lg_log_level = LG_LOG_DEBUG;
    uv_loop_init(&loop);
    worker.loop = &loop;
    lg__mcp_federation_set_timing(100, 400, 3000);
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"mcp\":{\"servers\":{"
             "\"fake\":{\"command\":\"%s\",\"timeout_ms\":700,\"env\":{\"FAKE_NOISE\":\"3\"}},"
             "\"plain\":{\"command\":\"%s\",\"prefix\":false},"
             "\"off\":{\"command\":\"/nonexistent\",\"enabled\":false}},"
             "\"virtual_servers\":{\"sub\":{\"tools\":[\"fake__echo\",\"fake__a*\"]}},"
             "\"circuit\":{\"failures\":2,\"open_ms\":400}}}",
             fake_path, fake_path);
    char err[2048];
    conf = lg_config_parse(json, strlen(json), "/tmp", err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    lg_mcp_federation_register();
    lg_mcp_federation_apply(conf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_mcp_federation_shutdown();
    lg_mcp_registry_set_builder(NULL); /* drops the cached registries on the next build */
    lg__mcp_mailbox_close(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    lg_config_free(conf);
    lg_log_set_sink(NULL);
    return rc == 0 ? 0 : -1;
}

/* ---- tests ---- */

static void expect_config_error(const char *mcp, const char *needle)
{
    char json[2048], err[2048] = "";
    snprintf(json, sizeof(json), "{\"mcp\":%s}", mcp);
    lg_config_t *c = lg_config_parse(json, strlen(json), "/tmp", err, sizeof(err));
    if (c != NULL || strstr(err, needle) == NULL) {
        fprintf(stderr, "config %s\n  error: %s\n  wanted: %s\n", json, err, needle);
        lg_config_free(c);
        fail();
    }
}

static void test_federation_config(void **state)
{
    (void)state;
    assert_int_equal(conf->mcp.num_servers, 3);
    const lg_mcp_server_conf_t *f = &conf->mcp.servers[0];
    assert_string_equal(f->name, "fake");
    assert_string_equal(f->prefix, "fake");
    assert_int_equal(f->timeout_ms, 700);
    assert_string_equal(f->env[0], "FAKE_NOISE=3");
    assert_null(conf->mcp.servers[1].prefix);
    assert_int_equal(conf->mcp.servers[1].timeout_ms, 30000);
    assert_int_equal(conf->mcp.servers[2].enabled, 0);
    assert_int_equal(conf->mcp.num_vservers, 1);
    assert_int_equal(conf->mcp.vservers[0].num_tools, 2);
    assert_int_equal(conf->mcp.circuit_failures, 2);
    assert_int_equal(conf->mcp.circuit_open_ms, 400);

    expect_config_error("{\"servers\":{\"a\":{\"command\":\"x\",\"bogus\":1}}}", "mcp.servers[\"a\"].bogus: unknown key");
    expect_config_error("{\"servers\":{\"Bad.Name\":{\"command\":\"x\"}}}", "server name must match");
    expect_config_error("{\"servers\":{\"a\":{\"command\":\"x\",\"url\":\"http://h/mcp\"}}}", "exactly one of");
    expect_config_error("{\"servers\":{\"a\":{}}}", "exactly one of");
    expect_config_error("{\"servers\":{\"a\":{\"url\":\"ftp://h\"}}}", "expected http(s) URL");
    expect_config_error("{\"servers\":{\"a\":{\"command\":\"x\",\"prefix\":\"a b\"}}}", "prefix: expected true, false");
    expect_config_error("{\"servers\":{\"a\":{\"command\":\"x\"},\"b\":{\"command\":\"y\",\"prefix\":\"a\"}}}",
                        "prefix \"a\" is also used");
    expect_config_error("{\"servers\":{\"a\":{\"url\":\"http://h/mcp\",\"headers\":{\"X\":1}}}}", "expected string");
    expect_config_error("{\"servers\":{\"a\":{\"url\":\"http://h/mcp\",\"args\":[\"1\"]}}}", "need \"command\"");
    expect_config_error("{\"servers\":{\"a\":{\"command\":\"x\",\"env\":{\"1X\":\"v\"}}}}", "environment variable name");
    expect_config_error("{\"virtual_servers\":{\"v\":{}}}", "mcp.virtual_servers[\"v\"].tools: required");
    expect_config_error("{\"virtual_servers\":{\"v\":{\"tools\":[\"a*b\"]}}}", "optionally ending in '*'");
    expect_config_error("{\"circuit\":{\"failures\":0}}", "mcp.circuit.failures: expected integer 1..1000");
}

static void test_federation_list_prefixed_and_paginated(void **state)
{
    (void)state;
    lg_mcp_registry_t *reg = registry("");
    assert_non_null(reg);
    /* the first list waits for the first start (no empty answer while the children are still initializing) */
    int pages;
    char *all = list_all(reg, &pages);
    assert_non_null(strstr(all, "fake__echo,"));
    assert_non_null(strstr(all, "fake__bad,")); /* the fake's last page: every upstream page was fetched */
    assert_non_null(strstr(all, ",echo,"));     /* "plain" is unprefixed */
    assert_null(strstr(all, "fake__fake__"));
    assert_int_equal(pages, 1); /* one merged page holds every provider's tools (a single listTools() sees them all) */
    free(all);
    struct fstate f = upstream_state("fake");
    assert_string_equal(f.state, "up");
    assert_true(f.pid > 0);
    assert_int_equal(f.tools, 9);
    assert_true(log_has("[mcp/fake] fake MCP server starting"));
    assert_true(log_has("[mcp/fake] noise line 2"));
    lg_mcp_registry_unref(reg);
}

static void test_federation_calls(void **state)
{
    (void)state;
    lg_mcp_registry_t *reg = registry("");
    struct tcall *t = call_tool(reg, "fake__echo", json_pack("{s:s}", "message", "hi"), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_string_equal(result_text(t), "Echo: hi");
    lg_mcp_call_unref(&t->c);

    t = call_tool(reg, "add", json_pack("{s:i,s:i}", "a", 2, "b", 40), NULL); /* unprefixed: "plain" */
    assert_true(run_until(call_done, t, 5000));
    assert_string_equal(result_text(t), "42");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(t->result, "structuredContent"), "sum")), 42);
    lg_mcp_call_unref(&t->c);

    t = call_tool(reg, "fake__bad", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_true(is_error_result(t));
    assert_string_equal(result_text(t), "bad things");
    lg_mcp_call_unref(&t->c);

    t = call_tool(reg, "fake__fail", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_null(t->result);
    assert_int_equal(t->code, -32603);
    assert_string_equal(t->message, "fake failure");
    lg_mcp_call_unref(&t->c);

    t = call_tool(reg, "fake__nope", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_int_equal(t->code, LG_JSONRPC_INVALID_PARAMS);
    lg_mcp_call_unref(&t->c);

    /* progress: our own token upstream, mapped back to the caller */
    t = call_tool(reg, "fake__progress", json_object(), json_pack("{s:s}", "progressToken", "tok-1"));
    assert_true(run_until(call_done, t, 5000));
    assert_string_equal(result_text(t), "progress done");
    assert_int_equal(t->progress_events, 3);
    assert_true(t->last_progress == 3.0);
    lg_mcp_call_unref(&t->c);

    /* notifications/message during the only call in flight goes to that call */
    t = call_tool(reg, "fake__log", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_int_equal(t->log_events, 1);
    assert_string_equal(t->log_text, "log from tool");
    lg_mcp_call_unref(&t->c);

    /* resources and prompts */
    t = new_call(reg, "resources/read", NULL);
    lg__registry_read_resource(reg, &t->c, "fake://t/7");
    assert_true(run_until(call_done, t, 5000));
    assert_non_null(t->result);
    lg_mcp_call_unref(&t->c);
    t = new_call(reg, "resources/read", NULL);
    lg__registry_read_resource(reg, &t->c, "other://x");
    assert_true(run_until(call_done, t, 5000));
    assert_int_equal(t->code, LG_MCP_RESOURCE_NOT_FOUND);
    lg_mcp_call_unref(&t->c);
    t = new_call(reg, "prompts/get", NULL);
    lg__registry_get_prompt(reg, &t->c, "fake__greet", NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_non_null(json_object_get(t->result, "messages"));
    lg_mcp_call_unref(&t->c);
    lg_mcp_registry_unref(reg);
}

static void test_federation_list_changed_and_virtual_server(void **state)
{
    (void)state;
    lg_mcp_registry_t *reg = registry(""), *sub = registry("sub");
    assert_non_null(sub);
    int pages;
    char *all = list_all(sub, &pages);
    assert_string_equal(all, "fake__echo,fake__add,");
    free(all);
    struct tcall *t = call_tool(sub, "fake__bad", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_int_equal(t->code, LG_JSONRPC_INVALID_PARAMS); /* not in the curated set */
    lg_mcp_call_unref(&t->c);

    int before = changed_root();
    t = call_tool(reg, "fake__toggle", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    lg_mcp_call_unref(&t->c);
    assert_true(wait_list(reg, "fake__extra,", 1, 5000));
    assert_true(changed_root() > before);
    t = call_tool(reg, "fake__extra", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_string_equal(result_text(t), "extra!");
    lg_mcp_call_unref(&t->c);
    lg_mcp_registry_unref(sub);
    lg_mcp_registry_unref(reg);
}

static int pid_alive(int pid)
{
    return pid > 0 && kill(pid, 0) == 0;
}

static void test_federation_crash_and_restart(void **state)
{
    (void)state;
    lg_mcp_registry_t *reg = registry("");
    int pid = upstream_state("fake").pid;
    assert_true(pid_alive(pid));
    int before = changed_root();
    /* a slow call in flight on the same upstream fails at once when the child dies */
    struct tcall *slow = call_tool(reg, "fake__slow", json_pack("{s:i}", "ms", 600), NULL);
    struct tcall *t = call_tool(reg, "fake__crash", json_object(), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_true(is_error_result(t));
    assert_non_null(strstr(result_text(t), "upstream fake failed while the request was in flight"));
    assert_true(run_until(call_done, slow, 5000));
    assert_true(is_error_result(slow));
    lg_mcp_call_unref(&t->c);
    lg_mcp_call_unref(&slow->c);
    assert_true(changed_root() > before); /* notified before the in-flight calls were failed */
    /* while it restarts, its tools are unavailable; a call by prefixed name says so */
    t = call_tool(reg, "fake__echo", json_pack("{s:s}", "message", "x"), NULL);
    assert_true(run_until(call_done, t, 5000));
    if (is_error_result(t))
        assert_non_null(strstr(result_text(t), "upstream fake unavailable"));
    lg_mcp_call_unref(&t->c);
    /* the other upstream keeps working */
    t = call_tool(reg, "echo", json_pack("{s:s}", "message", "still"), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_string_equal(result_text(t), "Echo: still");
    lg_mcp_call_unref(&t->c);
    /* back after the backoff, with a new pid */
    assert_true(wait_list(reg, "fake__echo,", 1, 10000));
    int pid2 = upstream_state("fake").pid;
    assert_true(pid2 > 0 && pid2 != pid);
    lg_mcp_registry_unref(reg);
}

static void fire_cancel(struct tcall *t)
{
    lg_mcp_call_t *c = &t->c;
    c->cancelled = 1;
    void (*fn)(lg_mcp_call_t *, void *) = c->on_cancel;
    c->on_cancel = NULL;
    assert_non_null(fn);
    fn(c, c->cancel_ud);
}

static int log_cancelled(void *arg)
{
    (void)arg;
    return log_has("[mcp/fake] cancelled");
}

static void test_federation_cancel_timeout_circuit(void **state)
{
    (void)state;
    lg_mcp_registry_t *reg = registry("");
    assert_true(wait_list(reg, "fake__slow,", 1, 10000));
    /* client cancellation: answered at once, notifications/cancelled reaches the upstream */
    struct tcall *t = call_tool(reg, "fake__slow", json_pack("{s:i}", "ms", 5000), NULL);
    run_until(call_done, t, 200);
    assert_false(t->done);
    fire_cancel(t);
    assert_true(run_until(call_done, t, 2000));
    assert_true(is_error_result(t));
    lg_mcp_call_unref(&t->c);
    assert_true(run_until(log_cancelled, NULL, 3000));

    /* two timeouts (timeout_ms 700) open the circuit (failures 2) */
    for (int i = 0; i < 2; ++i) {
        t = call_tool(reg, "fake__slow", json_pack("{s:i}", "ms", 3000), NULL);
        assert_true(run_until(call_done, t, 3000));
        assert_true(is_error_result(t));
        assert_non_null(strstr(result_text(t), "did not answer within 700 ms"));
        lg_mcp_call_unref(&t->c);
    }
    assert_string_equal(upstream_state("fake").state, "circuit_open");
    int64_t t0 = lg_now_ms();
    t = call_tool(reg, "fake__echo", json_pack("{s:s}", "message", "x"), NULL);
    assert_true(run_until(call_done, t, 2000));
    assert_true(lg_now_ms() - t0 < 300); /* fails fast */
    assert_string_equal(result_text(t), "upstream fake unavailable (circuit open)");
    lg_mcp_call_unref(&t->c);
    /* the tools stay listed while the circuit is open */
    assert_true(wait_list(reg, "fake__echo,", 1, 1000));
    /* a ping probe after open_ms (400) closes it */
    int64_t deadline = lg_now_ms() + 5000;
    while (strcmp(upstream_state("fake").state, "up") != 0 && lg_now_ms() < deadline)
        usleep(50000);
    assert_string_equal(upstream_state("fake").state, "up");
    t = call_tool(reg, "fake__echo", json_pack("{s:s}", "message", "again"), NULL);
    assert_true(run_until(call_done, t, 5000));
    assert_string_equal(result_text(t), "Echo: again");
    lg_mcp_call_unref(&t->c);
    lg_mcp_registry_unref(reg);
}

static void test_federation_shutdown_stops_children(void **state)
{
    (void)state;
    int p1 = upstream_state("fake").pid, p2 = upstream_state("plain").pid;
    assert_true(pid_alive(p1) && pid_alive(p2));
    int64_t t0 = lg_now_ms();
    lg_mcp_federation_shutdown();
    assert_true(lg_now_ms() - t0 < 5000);
    /* reaped by the upstream loop: the pids are gone */
    assert_false(pid_alive(p1));
    assert_false(pid_alive(p2));
    /* calls after shutdown answer at once instead of hanging */
    lg_mcp_registry_t *reg = registry("");
    struct tcall *t = call_tool(reg, "fake__echo", json_pack("{s:s}", "message", "x"), NULL);
    assert_true(run_until(call_done, t, 1000));
    assert_true(is_error_result(t));
    lg_mcp_call_unref(&t->c);
    lg_mcp_registry_unref(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_federation_config),
        cmocka_unit_test(test_federation_list_prefixed_and_paginated),
        cmocka_unit_test(test_federation_calls),
        cmocka_unit_test(test_federation_list_changed_and_virtual_server),
        cmocka_unit_test(test_federation_crash_and_restart),
        cmocka_unit_test(test_federation_cancel_timeout_circuit),
        cmocka_unit_test(test_federation_shutdown_stops_children),
    };
    return cmocka_run_group_tests_name("mcp_federation", tests, setup, teardown);
}
