/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for mcp/server.c + mcp/registry.c + mcp/fixtures.c without
 * HTTP: a fake sink records what a request emits and answers. Covers the
 * method table, merged pagination with opaque cursors across providers,
 * name prefixing and routing, decline fall-through, not-found codes, log
 * filtering, progress, sampling round trips, cancellation and a sink that
 * goes away mid-call. Every test runs the loop until idle and closes it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/fixtures.h"
#include "mcp/server.h"

/* ---- fake sink ---- */

struct fake_sink {
    lg_mcp_sink_t sink;
    json_t *emitted;
    json_t *responses;
    int responded; /* respond() calls, including NULL */
};

static int fs_emit(lg_mcp_sink_t *s, json_t *msg)
{
    struct fake_sink *f = (struct fake_sink *)s;
    json_array_append_new(f->emitted, msg);
    return 0;
}

static void fs_respond(lg_mcp_sink_t *s, json_t *msg)
{
    struct fake_sink *f = (struct fake_sink *)s;
    ++f->responded;
    if (msg != NULL)
        json_array_append_new(f->responses, msg);
}

static void fs_init(struct fake_sink *f)
{
    f->sink.emit = fs_emit;
    f->sink.respond = fs_respond;
    f->emitted = json_array();
    f->responses = json_array();
    f->responded = 0;
}

static void fs_dispose(struct fake_sink *f)
{
    json_decref(f->emitted);
    json_decref(f->responses);
}

/* ---- a paging provider: two pages of tools, a prompt, declines everything else ---- */

static void pg_list_tools(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    if (cursor == NULL)
        lg_mcp_call_result(c, json_pack("{s:[{s:s},{s:s}],s:s}", "tools", "name", "a", "name", "b", "nextCursor", "p2"));
    else if (strcmp(cursor, "p2") == 0)
        lg_mcp_call_result(c, json_pack("{s:[{s:s}]}", "tools", "name", "c"));
    else
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
}

static void pg_call_tool(void *state, lg_mcp_call_t *c, const char *name, json_t *args)
{
    (void)state;
    (void)args;
    if (strcmp(name, "a") == 0)
        lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s}]}", "content", "type", "text", "text", "pg:a"));
    else
        lg_mcp_call_decline(c);
}

static const lg_mcp_provider_ops_t pg_ops = {.list_tools = pg_list_tools, .call_tool = pg_call_tool};

/* ---- fixture ---- */

struct env {
    uv_loop_t loop;
    lg_mcp_worker_t mw;
    lg_mcp_registry_t *reg;
    lg_mcp_session_t *session;
    int next_id;
};

static struct env *env_new(int with_sampling)
{
    struct env *e = calloc(1, sizeof(*e));
    uv_loop_init(&e->loop);
    e->mw.loop = &e->loop;
    e->mw.index = 0;
    e->reg = lg_mcp_registry_create("");
    assert_int_equal(lg_mcp_registry_add(e->reg, "fixtures", "fx", lg_mcp_fixtures_capabilities(), &lg_mcp_fixtures_ops, NULL), 0);
    assert_int_equal(lg_mcp_registry_add(e->reg, "pager", NULL, NULL, &pg_ops, NULL), 0);
    json_t *caps = with_sampling ? json_pack("{s:{},s:{}}", "sampling", "elicitation") : json_object();
    e->session = lg_mcp_session_create(NULL, "", "2025-11-25", caps, NULL, 60);
    json_decref(caps);
    return e;
}

static void env_free(struct env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0); /* a leaked timer fails the test */
    lg_mcp_session_unref(e->session);
    lg_mcp_registry_unref(e->reg);
    lg_mcp_session_reset();
    free(e);
}

/* Dispatch method(params) as request id; params stolen. */
static void request(struct env *e, struct fake_sink *f, const char *method, json_t *params)
{
    json_t *msg = json_pack("{s:s,s:i,s:s}", "jsonrpc", "2.0", "id", ++e->next_id, "method", method);
    if (params != NULL)
        json_object_set_new(msg, "params", params);
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t err;
    assert_int_equal(lg_jsonrpc_from_json(msg, &m, &err), 0);
    lg_mcp_server_dispatch(&e->mw, e->session, e->reg, &m, &f->sink);
    lg_jsonrpc_msg_dispose(&m);
    json_decref(msg);
}

static json_t *last_response(struct fake_sink *f)
{
    size_t n = json_array_size(f->responses);
    assert_true(n > 0);
    return json_array_get(f->responses, n - 1);
}

static int error_code(json_t *resp)
{
    return (int)json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
}

static const char *first_text(json_t *resp)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(json_object_get(resp, "result"), "content"), 0), "text"));
}

/* ---- tests ---- */

static void test_registry_pagination_and_prefixes(void **state)
{
    (void)state;
    struct env *e = env_new(0);
    struct fake_sink f;
    fs_init(&f);
    const char *names[32];
    size_t nn = 0;
    json_t *cursor = NULL;
    int pages = 0;
    do {
        request(e, &f, "tools/list", cursor != NULL ? json_pack("{s:O}", "cursor", cursor) : NULL);
        json_decref(cursor);
        json_t *res = json_object_get(last_response(&f), "result");
        assert_non_null(res);
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(res, "tools"), i, t) if (nn < 32) names[nn++] =
            json_string_value(json_object_get(t, "name"));
        cursor = json_incref(json_object_get(res, "nextCursor"));
        ++pages;
    } while (cursor != NULL && pages < 10);
    assert_int_equal(pages, 1); /* one merged page: fixtures, then both pages of the pager */
    assert_int_equal(nn, 13 + 3);
    assert_string_equal(names[0], "fx__test_simple_text");
    assert_string_equal(names[12], "fx__json_schema_2020_12_tool");
    assert_string_equal(names[13], "a");
    assert_string_equal(names[15], "c");

    request(e, &f, "tools/list", json_pack("{s:s}", "cursor", "garbage!"));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    request(e, &f, "tools/list", json_pack("{s:i}", "cursor", 3));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    /* the list capability union */
    assert_true(json_is_true(json_object_get(json_object_get(lg_mcp_registry_capabilities(e->reg), "resources"), "subscribe")));
    fs_dispose(&f);
    env_free(e);
}

static void test_registry_routing(void **state)
{
    (void)state;
    struct env *e = env_new(0);
    struct fake_sink f;
    fs_init(&f);
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__test_simple_text"));
    assert_string_equal(first_text(last_response(&f)), "This is a simple text response for testing.");
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "a"));
    assert_string_equal(first_text(last_response(&f)), "pg:a");
    /* unprefixed fixture name: the fixtures are not asked, the pager declines */
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "test_simple_text"));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__nope"));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    request(e, &f, "tools/call", json_pack("{s:s,s:i}", "name", "a", "arguments", 3));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__test_error_handling"));
    assert_true(json_is_true(json_object_get(json_object_get(last_response(&f), "result"), "isError")));

    /* the prefixed provider's resources are namespaced: mcp://fx/<its URI> */
    request(e, &f, "resources/read", json_pack("{s:s}", "uri", "mcp://fx/test://template/123/data"));
    json_t *c0 = json_array_get(json_object_get(json_object_get(last_response(&f), "result"), "contents"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "text")),
                        "{\"id\":\"123\",\"templateTest\":true,\"data\":\"Data for ID: 123\"}");
    assert_string_equal(json_string_value(json_object_get(c0, "uri")), "mcp://fx/test://template/123/data");
    request(e, &f, "resources/read", json_pack("{s:s}", "uri", "test://template/123/data")); /* not its name any more */
    assert_int_equal(error_code(last_response(&f)), LG_MCP_RESOURCE_NOT_FOUND);
    request(e, &f, "resources/read", json_pack("{s:s}", "uri", "mcp://fx/test://missing"));
    assert_int_equal(error_code(last_response(&f)), LG_MCP_RESOURCE_NOT_FOUND);
    request(e, &f, "resources/subscribe", json_pack("{s:s}", "uri", "mcp://fx/test://watched-resource"));
    assert_non_null(json_object_get(last_response(&f), "result"));
    assert_true(lg_mcp_session_subscribed(e->session, "mcp://fx/test://watched-resource"));
    request(e, &f, "resources/unsubscribe", json_pack("{s:s}", "uri", "mcp://fx/test://watched-resource"));
    assert_false(lg_mcp_session_subscribed(e->session, "mcp://fx/test://watched-resource"));

    request(
        e, &f, "prompts/get",
        json_pack("{s:s,s:{s:s,s:s}}", "name", "fx__test_prompt_with_arguments", "arguments", "arg1", "hello", "arg2", "world"));
    json_t *m0 = json_array_get(json_object_get(json_object_get(last_response(&f), "result"), "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m0, "content"), "text")),
                        "Prompt with arguments: arg1='hello', arg2='world'");
    request(e, &f, "prompts/get", json_pack("{s:s}", "name", "nope"));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    request(e, &f, "completion/complete",
            json_pack("{s:{s:s,s:s},s:{s:s,s:s}}", "ref", "type", "ref/prompt", "name", "fx__test_prompt_with_arguments",
                      "argument", "name", "arg1", "value", "x"));
    assert_true(
        json_is_array(json_object_get(json_object_get(json_object_get(last_response(&f), "result"), "completion"), "values")));
    request(e, &f, "completion/complete", json_pack("{s:{s:s}}", "ref", "type", "ref/other"));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);

    request(e, &f, "ping", NULL);
    assert_int_equal(json_object_size(json_object_get(last_response(&f), "result")), 0);
    request(e, &f, "no/such", NULL);
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_METHOD_NOT_FOUND);
    request(e, &f, "initialize", json_pack("{s:s}", "protocolVersion", "2025-11-25"));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_REQUEST);
    request(e, &f, "logging/setLevel", json_pack("{s:s}", "level", "loud"));
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    assert_int_equal(json_array_size(f.emitted), 0);
    assert_int_equal((size_t)f.responded, json_array_size(f.responses));
    fs_dispose(&f);
    env_free(e);
}

static void test_registry_logging_and_progress(void **state)
{
    (void)state;
    struct env *e = env_new(0);
    struct fake_sink f;
    fs_init(&f);
    request(e, &f, "logging/setLevel", json_pack("{s:s}", "level", "debug"));
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__test_tool_with_logging"));
    assert_int_equal(json_array_size(f.responses), 1); /* still running */
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(json_array_size(f.emitted), 3);
    json_t *p0 = json_object_get(json_array_get(f.emitted, 0), "params");
    assert_string_equal(json_string_value(json_object_get(p0, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(p0, "data")), "Tool execution started");
    assert_string_equal(first_text(last_response(&f)), "Tool with logging executed successfully");

    /* filtered out below the session's level */
    request(e, &f, "logging/setLevel", json_pack("{s:s}", "level", "warning"));
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__test_tool_with_logging"));
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(json_array_size(f.emitted), 3);

    request(e, &f, "tools/call",
            json_pack("{s:s,s:{s:s}}", "name", "fx__test_tool_with_progress", "_meta", "progressToken", "tok"));
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(json_array_size(f.emitted), 6);
    json_t *last = json_object_get(json_array_get(f.emitted, 5), "params");
    assert_string_equal(json_string_value(json_object_get(last, "progressToken")), "tok");
    assert_int_equal(json_integer_value(json_object_get(last, "progress")), 100);
    assert_int_equal(json_integer_value(json_object_get(last, "total")), 100);
    assert_string_equal(first_text(last_response(&f)), "tok");
    fs_dispose(&f);
    env_free(e);
}

static void test_registry_sampling_round_trip(void **state)
{
    (void)state;
    struct env *e = env_new(1);
    struct fake_sink f;
    fs_init(&f);
    request(e, &f, "tools/call", json_pack("{s:s,s:{s:s}}", "name", "fx__test_sampling", "arguments", "prompt", "hi"));
    assert_int_equal(json_array_size(f.emitted), 1);
    json_t *req = json_array_get(f.emitted, 0);
    assert_string_equal(json_string_value(json_object_get(req, "method")), "sampling/createMessage");
    json_t *id = json_object_get(req, "id");
    assert_int_equal(lg__mcp_outgoing_worker(id), 0);
    json_t *resp = json_pack("{s:s,s:O,s:{s:s,s:{s:s,s:s}}}", "jsonrpc", "2.0", "id", id, "result", "role", "assistant", "content",
                             "type", "text", "text", "hello back");
    /* a response from another session is not accepted */
    lg__mcp_server_deliver_response(&e->mw, "0123456789abcdef0123456789abcdef", resp);
    assert_int_equal(json_array_size(f.responses), 0);
    lg__mcp_server_deliver_response(&e->mw, lg_mcp_session_id(e->session), resp);
    json_decref(resp);
    assert_string_equal(first_text(last_response(&f)), "LLM response: hello back");

    /* elicitation, answered with an error */
    request(e, &f, "tools/call", json_pack("{s:s,s:{s:s}}", "name", "fx__test_elicitation", "arguments", "message", "who?"));
    req = json_array_get(f.emitted, 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(req, "params"), "message")), "who?");
    resp = json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", json_object_get(req, "id"), "error", "code", -1, "message",
                     "user said no");
    lg__mcp_server_deliver_response(&e->mw, lg_mcp_session_id(e->session), resp);
    json_decref(resp);
    json_t *r = last_response(&f);
    assert_true(json_is_true(json_object_get(json_object_get(r, "result"), "isError")));
    assert_non_null(strstr(first_text(r), "user said no"));
    fs_dispose(&f);
    env_free(e);
}

static void test_registry_sampling_needs_capability(void **state)
{
    (void)state;
    struct env *e = env_new(0);
    struct fake_sink f;
    fs_init(&f);
    request(e, &f, "tools/call", json_pack("{s:s,s:{s:s}}", "name", "fx__test_sampling", "arguments", "prompt", "hi"));
    assert_int_equal(json_array_size(f.emitted), 0);
    assert_true(json_is_true(json_object_get(json_object_get(last_response(&f), "result"), "isError")));
    fs_dispose(&f);
    env_free(e);
}

static void test_registry_cancel_and_detach(void **state)
{
    (void)state;
    struct env *e = env_new(1);
    struct fake_sink f;
    fs_init(&f);
    /* client notifications/cancelled: stop, and do not reply */
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__test_tool_with_progress"));
    char key[32];
    snprintf(key, sizeof(key), "i:%d", e->next_id);
    lg__mcp_server_cancel(&e->mw, lg_mcp_session_id(e->session), key);
    assert_int_equal(f.responded, 1);
    assert_int_equal(json_array_size(f.responses), 0);

    /* the HTTP request goes away while a tool waits for the client */
    struct fake_sink g;
    fs_init(&g);
    request(e, &g, "tools/call", json_pack("{s:s,s:{s:s}}", "name", "fx__test_sampling", "arguments", "prompt", "hi"));
    assert_int_equal(json_array_size(g.emitted), 1);
    lg_mcp_server_detach_sink(&e->mw, &g.sink);
    assert_int_equal(g.responded, 0); /* nobody to answer */
    assert_null(e->mw.calls);
    assert_null(e->mw.waiters);

    /* session deleted while a timed tool runs */
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__test_tool_with_logging"));
    lg__mcp_server_session_gone(&e->mw, lg_mcp_session_id(e->session));
    assert_null(e->mw.calls);
    fs_dispose(&g);
    fs_dispose(&f);
    env_free(e);
}

/* ---- a big provider: 1500 tools in pages of 700, and one resource URI that another provider has too ---- */

static void big_list_tools(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    int from = cursor != NULL ? atoi(cursor) : 0;
    json_t *tools = json_array();
    for (int i = from; i < from + 700 && i < 1500; ++i) {
        char nm[32];
        snprintf(nm, sizeof(nm), "t%04d", i);
        json_array_append_new(tools, json_pack("{s:s}", "name", nm));
    }
    json_t *res = json_pack("{s:o}", "tools", tools);
    if (from + 700 < 1500) {
        char nx[16];
        snprintf(nx, sizeof(nx), "%d", from + 700);
        json_object_set_new(res, "nextCursor", json_string(nx));
    }
    lg_mcp_call_result(c, res);
}

static void same_list_resources(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)cursor;
    lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s}]}", "resources", "uri", "file:///same", "name", (const char *)state));
}

static void same_read(void *state, lg_mcp_call_t *c, const char *uri)
{
    if (strcmp(uri, "file:///same") != 0) {
        lg_mcp_call_decline(c);
        return;
    }
    lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s}]}", "contents", "uri", uri, "text", (const char *)state));
}

static const lg_mcp_provider_ops_t big_ops = {
    .list_tools = big_list_tools, .list_resources = same_list_resources, .read_resource = same_read};

static void test_registry_one_list_across_providers(void **state)
{
    (void)state;
    struct env *e = env_new(0);
    assert_int_equal(lg_mcp_registry_add(e->reg, "big", "big", NULL, &big_ops, (void *)(uintptr_t) "from-big"), 0);
    assert_int_equal(lg_mcp_registry_add(e->reg, "twin", "twin", NULL, &big_ops, (void *)(uintptr_t) "from-twin"), 0);
    struct fake_sink f;
    fs_init(&f);
    json_t *seen = json_object();
    json_t *cursor = NULL;
    int pages = 0;
    size_t total = 0;
    const char *first = NULL;
    do {
        request(e, &f, "tools/list", cursor != NULL ? json_pack("{s:O}", "cursor", cursor) : NULL);
        json_decref(cursor);
        json_t *res = json_object_get(last_response(&f), "result");
        json_t *tools = json_object_get(res, "tools");
        if (pages == 0)
            first = json_string_value(json_object_get(json_array_get(tools, 0), "name"));
        assert_true(json_array_size(tools) <= LG_MCP_LIST_PAGE);
        if (json_object_get(res, "nextCursor") != NULL) /* every page but the last is full */
            assert_int_equal(json_array_size(tools), LG_MCP_LIST_PAGE);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t)
        {
            const char *nm = json_string_value(json_object_get(t, "name"));
            assert_null(json_object_get(seen, nm)); /* no duplicates across page boundaries */
            json_object_set_new(seen, nm, json_true());
            ++total;
        }
        cursor = json_incref(json_object_get(res, "nextCursor"));
        ++pages;
    } while (cursor != NULL && pages < 20);
    /* 13 fixtures + 3 pager + 1500 big + 1500 twin, in provider order, in pages of LG_MCP_LIST_PAGE */
    assert_int_equal(total, 13 + 3 + 1500 + 1500);
    assert_int_equal(pages, (int)((total + LG_MCP_LIST_PAGE - 1) / LG_MCP_LIST_PAGE));
    assert_string_equal(first, "fx__test_simple_text");
    assert_non_null(json_object_get(seen, "big__t0699"));
    assert_non_null(json_object_get(seen, "big__t0700"));
    assert_non_null(json_object_get(seen, "twin__t1499"));

    /* the same URI from two providers: two resources, each read routes back to its owner */
    request(e, &f, "resources/list", NULL);
    json_t *res = json_object_get(json_object_get(last_response(&f), "result"), "resources");
    json_t *uris = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r) json_object_set_new(uris, json_string_value(json_object_get(r, "uri")), json_true());
    assert_non_null(json_object_get(uris, "mcp://big/file:///same"));
    assert_non_null(json_object_get(uris, "mcp://twin/file:///same"));
    assert_non_null(json_object_get(uris, "mcp://fx/test://static-text"));
    request(e, &f, "resources/read", json_pack("{s:s}", "uri", "mcp://twin/file:///same"));
    json_t *c0 = json_array_get(json_object_get(json_object_get(last_response(&f), "result"), "contents"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "text")), "from-twin");
    assert_string_equal(json_string_value(json_object_get(c0, "uri")), "mcp://twin/file:///same");
    request(e, &f, "resources/read", json_pack("{s:s}", "uri", "mcp://big/file:///same"));
    c0 = json_array_get(json_object_get(json_object_get(last_response(&f), "result"), "contents"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "text")), "from-big");
    request(e, &f, "resources/read", json_pack("{s:s}", "uri", "mcp://nobody/file:///same"));
    assert_int_equal(error_code(last_response(&f)), LG_MCP_RESOURCE_NOT_FOUND);
    json_decref(uris);
    json_decref(seen);
    fs_dispose(&f);
    env_free(e);
}

static void test_registry_virtual_server_patterns(void **state)
{
    (void)state;
    struct env *e = env_new(0);
    char p0[] = "fx__test_simple_text", p1[] = "a";
    char *pats[] = {p0, p1, NULL};
    lg_mcp_registry_set_tool_patterns(e->reg, pats);
    struct fake_sink f;
    fs_init(&f);
    request(e, &f, "tools/list", NULL);
    json_t *tools = json_object_get(json_object_get(last_response(&f), "result"), "tools");
    assert_int_equal(json_array_size(tools), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 0), "name")), "fx__test_simple_text");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 1), "name")), "a");
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "a"));
    assert_string_equal(first_text(last_response(&f)), "pg:a");
    request(e, &f, "tools/call", json_pack("{s:s}", "name", "fx__test_error_handling")); /* hidden: unknown here */
    assert_int_equal(error_code(last_response(&f)), LG_JSONRPC_INVALID_PARAMS);
    fs_dispose(&f);
    env_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_pagination_and_prefixes),   cmocka_unit_test(test_registry_routing),
        cmocka_unit_test(test_registry_logging_and_progress),      cmocka_unit_test(test_registry_sampling_round_trip),
        cmocka_unit_test(test_registry_sampling_needs_capability), cmocka_unit_test(test_registry_cancel_and_detach),
        cmocka_unit_test(test_registry_one_list_across_providers), cmocka_unit_test(test_registry_virtual_server_patterns),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
