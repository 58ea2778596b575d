/* SPDX-License-Identifier: MIT */
/*
 * The 2026-07-28 conformance fixtures (see fixtures.h): the tools and the
 * prompt the suite's stateless and input-required-result scenarios call
 * (conformance src/scenarios/server/{stateless,input-required-result}.ts),
 * answering as the reference everything-server does. They exist for
 * stateless requests only: a legacy session lists none of them. Every
 * requestState they hand out is sealed (mrtr.h), so a tampered or foreign
 * one is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/util.h"
#include "mcp/era.h"
#include "mcp/fixtures.h"
#include "mcp/jsonrpc.h"
#include "mcp/mrtr.h"
#include "mcp/server.h"

static const char tools_json[] =
    "["
    "{\"name\":\"test_missing_capability\",\"description\":\"Test tool requiring sampling\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_elicitation\",\"description\":\"MRTR: returns InputRequiredResult with "
    "elicitation request\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_sampling\",\"description\":\"MRTR: returns InputRequiredResult with sampling "
    "request\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_list_roots\",\"description\":\"MRTR: returns InputRequiredResult with "
    "roots/list request\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_request_state\",\"description\":\"MRTR: returns InputRequiredResult with "
    "requestState\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_multiple_inputs\",\"description\":\"MRTR: returns InputRequiredResult with "
    "multiple input requests\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_multi_round\",\"description\":\"MRTR: multi-round InputRequiredResult "
    "workflow\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_tampered_state\",\"description\":\"MRTR: HMAC-signed requestState integrity "
    "test\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_input_required_result_capabilities\",\"description\":\"MRTR: respects client capabilities in "
    "inputRequests\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_streaming_elicitation\",\"description\":\"Diagnostic tool validating response progress streams\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_logging_tool\",\"description\":\"Diagnostic logging validator tool\","
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_trigger_tool_change\",\"description\":\"Diagnostic hook: announces a tool list change to open "
    "subscriptions/listen streams\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}},"
    "{\"name\":\"test_trigger_prompt_change\",\"description\":\"Diagnostic hook: announces a prompt list change to open "
    "subscriptions/listen streams\",\"inputSchema\":{\"type\":\"object\",\"properties\":{}}}"
    "]";

static void text_result(lg_mcp_call_t *c, const char *text)
{
    lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s}]}", "content", "type", "text", "text", text));
}

static json_t *elicit(const char *message, const char *field, const char *type)
{
    return json_pack("{s:s,s:{s:s,s:{s:s,s:{s:{s:s}},s:[s]}}}", "method", "elicitation/create", "params", "message", message,
                     "requestedSchema", "type", "object", "properties", field, "type", type, "required", field);
}

static json_t *sample(const char *text, int max_tokens)
{
    return json_pack("{s:s,s:{s:[{s:s,s:{s:s,s:s}}],s:i}}", "method", "sampling/createMessage", "params", "messages", "role",
                     "user", "content", "type", "text", "text", text, "maxTokens", max_tokens);
}

static json_t *roots(void)
{
    return json_pack("{s:s,s:{}}", "method", "roots/list", "params");
}

/* {resultType:"input_required", inputRequests, requestState?} (requests stolen; state borrowed, sealed for the key) */
static void input_required(lg_mcp_call_t *c, json_t *requests, const json_t *state)
{
    json_t *res = json_pack("{s:s,s:o}", "resultType", "input_required", "inputRequests", requests);
    if (state != NULL) {
        char *sealed = lg_mcp_mrtr_seal(state, lg_mcp_call_key_id(c));
        json_object_set_new(res, "requestState", json_string(sealed));
        free(sealed);
    }
    lg_mcp_call_result(c, res);
}

static json_t *state_of(const char *kind)
{
    char nonce[24];
    lg_random_id(nonce, "", 16);
    return json_pack("{s:s,s:s}", "kind", kind, "nonce", nonce);
}

/* The client's answer to input request key: an object (anything else is no answer), or NULL. */
static const json_t *answer(lg_mcp_call_t *c, const char *key)
{
    const json_t *a = json_object_get(json_object_get(lg_mcp_call_params(c), "inputResponses"), key);
    return json_is_object(a) ? a : NULL;
}

/* An accepted elicitation's content.<field> as text; NULL when the answer is missing, declined or malformed. */
static const char *elicited(lg_mcp_call_t *c, const char *key, const char *field)
{
    const json_t *a = answer(c, key);
    return json_string_value(json_object_get(json_object_get(a, "content"), field));
}

/* The request's requestState opened (new reference), NULL if absent; *bad = 1 if present but refused. */
static json_t *opened_state(lg_mcp_call_t *c, int *bad)
{
    const char *rs = json_string_value(json_object_get(lg_mcp_call_params(c), "requestState"));
    *bad = 0;
    if (rs == NULL)
        return NULL;
    json_t *st = lg_mcp_mrtr_open(rs, strlen(rs), lg_mcp_call_key_id(c));
    *bad = st == NULL;
    return st;
}

static const char *kind_of(const json_t *st)
{
    const char *k = json_string_value(json_object_get(st, "kind"));
    return k != NULL ? k : "";
}

static void tool_elicitation(lg_mcp_call_t *c)
{
    const char *name = elicited(c, "user_name", "name");
    if (name != NULL) {
        char t[300];
        snprintf(t, sizeof(t), "Hello, %.200s!", name);
        text_result(c, t);
        return;
    }
    /* no (usable) answer: ask again rather than fail (SEP-2322: re-request missing information) */
    input_required(c, json_pack("{s:o}", "user_name", elicit("What is your name?", "name", "string")), NULL);
}

static void tool_sampling(lg_mcp_call_t *c)
{
    const json_t *a = answer(c, "sample_request");
    const char *text = json_string_value(json_object_get(json_object_get(a, "content"), "text"));
    if (a != NULL) {
        char t[400];
        snprintf(t, sizeof(t), "Sampling result: %.300s", text != NULL ? text : "no response");
        text_result(c, t);
        return;
    }
    input_required(c, json_pack("{s:o}", "sample_request", sample("What is the capital of France?", 100)), NULL);
}

static void tool_roots(lg_mcp_call_t *c)
{
    const json_t *a = answer(c, "roots_request");
    if (a != NULL && json_is_array(json_object_get(a, "roots"))) {
        char t[80];
        snprintf(t, sizeof(t), "Found %zu root(s)", json_array_size(json_object_get(a, "roots")));
        text_result(c, t);
        return;
    }
    input_required(c, json_pack("{s:o}", "roots_request", roots()), NULL);
}

static void tool_request_state(lg_mcp_call_t *c)
{
    int bad;
    json_t *st = opened_state(c, &bad);
    const json_t *a = answer(c, "confirm");
    if (bad) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "requestState integrity check failed", NULL);
        return;
    }
    if (st != NULL && strcmp(kind_of(st), "request-state") == 0 &&
        json_is_true(json_object_get(json_object_get(a, "content"), "ok"))) {
        json_decref(st);
        text_result(c, "state-ok: requestState validated");
        return;
    }
    json_decref(st);
    json_t *ns = state_of("request-state");
    input_required(c, json_pack("{s:o}", "confirm", elicit("Please confirm", "ok", "boolean")), ns);
    json_decref(ns);
}

static void tool_multiple(lg_mcp_call_t *c)
{
    int bad;
    json_t *st = opened_state(c, &bad);
    if (bad) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "requestState integrity check failed", NULL);
        return;
    }
    const char *name = elicited(c, "user_name", "name");
    const json_t *greeting = answer(c, "greeting"), *rl = answer(c, "client_roots");
    if (st != NULL && strcmp(kind_of(st), "multiple-inputs") == 0 && name != NULL && greeting != NULL && rl != NULL) {
        const char *g = json_string_value(json_object_get(json_object_get(greeting, "content"), "text"));
        char t[600];
        snprintf(t, sizeof(t), "Name: %.200s; Greeting: %.200s; Roots: %zu", name, g != NULL ? g : "Hello there!",
                 json_array_size(json_object_get(rl, "roots")));
        json_decref(st);
        text_result(c, t);
        return;
    }
    json_decref(st);
    json_t *ns = state_of("multiple-inputs");
    input_required(c,
                   json_pack("{s:o,s:o,s:o}", "user_name", elicit("What is your name?", "name", "string"), "greeting",
                             sample("Generate a greeting", 50), "client_roots", roots()),
                   ns);
    json_decref(ns);
}

static void tool_multi_round(lg_mcp_call_t *c)
{
    int bad;
    json_t *st = opened_state(c, &bad);
    if (bad) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "requestState integrity check failed", NULL);
        return;
    }
    json_int_t round = json_integer_value(json_object_get(st, "round"));
    const char *name = elicited(c, "step1", "name");
    const char *color = elicited(c, "step2", "color");
    if (round == 1 && name != NULL) {
        json_t *ns = state_of("multi-round");
        json_object_set_new(ns, "round", json_integer(2));
        json_object_set_new(ns, "name", json_string(name));
        input_required(c, json_pack("{s:o}", "step2", elicit("Step 2: What is your favorite color?", "color", "string")), ns);
        json_decref(ns);
    } else if (round == 2 && color != NULL) {
        const char *who = json_string_value(json_object_get(st, "name"));
        char t[400];
        snprintf(t, sizeof(t), "Multi-round complete for %.150s who likes %.150s", who != NULL ? who : "friend", color);
        text_result(c, t);
    } else {
        json_t *ns = state_of("multi-round");
        json_object_set_new(ns, "round", json_integer(1));
        input_required(c, json_pack("{s:o}", "step1", elicit("Step 1: What is your name?", "name", "string")), ns);
        json_decref(ns);
    }
    json_decref(st);
}

static void tool_tampered(lg_mcp_call_t *c)
{
    int bad;
    json_t *st = opened_state(c, &bad);
    if (bad) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "requestState integrity check failed", NULL);
        return;
    }
    if (st != NULL && strcmp(kind_of(st), "tamper-test") == 0 && answer(c, "confirm") != NULL) {
        json_decref(st);
        text_result(c, "integrity-ok: state verified");
        return;
    }
    json_decref(st);
    json_t *ns = state_of("tamper-test");
    input_required(c, json_pack("{s:o}", "confirm", elicit("Please confirm", "ok", "boolean")), ns);
    json_decref(ns);
}

static void tool_capabilities(lg_mcp_call_t *c)
{
    const json_t *responses = json_object_get(lg_mcp_call_params(c), "inputResponses");
    if (json_is_object(responses) && json_object_size(responses) > 0) {
        char t[400] = "capabilities-ok: received ";
        size_t n = strlen(t);
        const char *k;
        json_t *v;
        int first = 1;
        json_object_foreach((json_t *)responses, k, v)
        {
            (void)v;
            n += (size_t)snprintf(t + n, n < sizeof(t) ? sizeof(t) - n : 0, "%s%.60s", first ? "" : ",", k);
            first = 0;
            if (n >= sizeof(t))
                break;
        }
        text_result(c, t);
        return;
    }
    json_t *req = json_object();
    if (lg_mcp_call_client_has(c, "elicitation"))
        json_object_set_new(req, "elicit_input", elicit("Elicitation input", "value", "string"));
    if (lg_mcp_call_client_has(c, "sampling"))
        json_object_set_new(req, "sample_input", sample("Sample request", 50));
    if (json_object_size(req) == 0) {
        json_decref(req);
        text_result(c, "No supported capabilities declared");
        return;
    }
    json_t *ns = state_of("capabilities-test");
    input_required(c, req, ns);
    json_decref(ns);
}

static void mrtr_list_tools(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    (void)cursor;
    if (!lg_mcp_call_modern(c)) {
        lg_mcp_call_result(c, json_pack("{s:[]}", "tools"));
        return;
    }
    json_t *tools = json_loads(tools_json, 0, NULL);
    lg_mcp_call_result(c, json_pack("{s:o}", "tools", tools != NULL ? tools : json_array()));
}

static void mrtr_call_tool(void *state, lg_mcp_call_t *c, const char *name, json_t *arguments)
{
    (void)state;
    (void)arguments;
    if (!lg_mcp_call_modern(c)) {
        lg_mcp_call_decline(c);
        return;
    }
    if (strcmp(name, "test_missing_capability") == 0) {
        if (!lg_mcp_call_client_has(c, "sampling"))
            lg_mcp_call_error(c, LG_MCP_MISSING_CAPABILITY, "Missing required client capability: sampling",
                              json_pack("{s:{s:{}}}", "requiredCapabilities", "sampling"));
        else
            text_result(c, "Success");
    } else if (strcmp(name, "test_input_required_result_elicitation") == 0) {
        tool_elicitation(c);
    } else if (strcmp(name, "test_input_required_result_sampling") == 0) {
        tool_sampling(c);
    } else if (strcmp(name, "test_input_required_result_list_roots") == 0) {
        tool_roots(c);
    } else if (strcmp(name, "test_input_required_result_request_state") == 0) {
        tool_request_state(c);
    } else if (strcmp(name, "test_input_required_result_multiple_inputs") == 0) {
        tool_multiple(c);
    } else if (strcmp(name, "test_input_required_result_multi_round") == 0) {
        tool_multi_round(c);
    } else if (strcmp(name, "test_input_required_result_tampered_state") == 0) {
        tool_tampered(c);
    } else if (strcmp(name, "test_input_required_result_capabilities") == 0) {
        tool_capabilities(c);
    } else if (strcmp(name, "test_streaming_elicitation") == 0) {
        lg_mcp_call_progress(c, 50, 100, "streaming"); /* only with a progressToken; never a request on the stream */
        text_result(c, "Streaming complete");
    } else if (strcmp(name, "test_logging_tool") == 0) {
        /* reaches the client only when the request's _meta named a log level */
        lg_mcp_call_log(c, LG_MCP_LOG_INFO, "conformance", json_string("Diagnostic trace logging activated"));
        text_result(c, "Logging evaluated");
    } else if (strcmp(name, "test_trigger_tool_change") == 0 || strcmp(name, "test_trigger_prompt_change") == 0) {
        lg_mcp_notify_list_changed(lg_mcp_call_server(c), strcmp(name, "test_trigger_tool_change") == 0 ? "tools" : "prompts");
        text_result(c, "Mutation triggered");
    } else {
        lg_mcp_call_decline(c);
    }
}

static void mrtr_list_prompts(void *state, lg_mcp_call_t *c, const char *cursor)
{
    (void)state;
    (void)cursor;
    if (!lg_mcp_call_modern(c)) {
        lg_mcp_call_result(c, json_pack("{s:[]}", "prompts"));
        return;
    }
    lg_mcp_call_result(c, json_pack("{s:[{s:s,s:s}]}", "prompts", "name", "test_input_required_result_prompt", "description",
                                    "MRTR: prompt that requires elicitation input"));
}

static void mrtr_get_prompt(void *state, lg_mcp_call_t *c, const char *name, json_t *arguments)
{
    (void)state;
    (void)arguments;
    if (!lg_mcp_call_modern(c) || strcmp(name, "test_input_required_result_prompt") != 0) {
        lg_mcp_call_decline(c);
        return;
    }
    const char *ctx = elicited(c, "user_context", "context");
    if (ctx != NULL) {
        char t[300];
        snprintf(t, sizeof(t), "Prompt with context: %.200s", ctx);
        lg_mcp_call_result(c,
                           json_pack("{s:[{s:s,s:{s:s,s:s}}]}", "messages", "role", "user", "content", "type", "text", "text", t));
        return;
    }
    input_required(c, json_pack("{s:o}", "user_context", elicit("What context should the prompt use?", "context", "string")), NULL);
}

const lg_mcp_provider_ops_t lg_mcp_fixtures_mrtr_ops = {
    .list_tools = mrtr_list_tools,
    .call_tool = mrtr_call_tool,
    .list_prompts = mrtr_list_prompts,
    .get_prompt = mrtr_get_prompt,
};
