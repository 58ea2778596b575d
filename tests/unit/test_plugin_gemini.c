/* SPDX-License-Identifier: MIT */
/*
 * Fixture runner for the `gemini` plugin, driving the real gemini.so through the loader. tests/data/providers/gemini/:
 *   <case>.request.json  {conf?, call, body, prime?, expect{rc, url, headers, absent_headers, message}}
 *                        → <case>.upstream.json (the Gemini request body). `prime` is a list of {"response": <Gemini
 *                        body>} or {"sse": "<file>.sse"} fed through the same instance first (fills its
 *                        thought-signature cache, as turn 1 of a conversation does).
 *   <case>.response.json (raw upstream body) → <case>.expected.json {kind, status, request_body?, rc, out | message}
 *   stream_<case>.sse    (raw upstream stream) → stream_<case>.expected.json {chunks, usage, done, error, end}.
 *                        Replayed through the host's SSE parser (src/upstream/sse.c): whole, split in two at every
 *                        byte offset, and one byte at a time; every replay must give the same result.
 *   <case>.conf.json     {conf, rc, message}: create() outcomes
 *   classify_error.cases.json  [{name, status, body, err, retryable, want_status?, provider_code?, message?, ...}]
 * Plus hand-written tests for the thoughtSignature round trip (§2.1) and the bounded signature cache.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugin/loader.h"
#include "../support/plugin_fixture.h"

#define TEST_KEY "AIzaSyTest-0123456789abcdefghijklmnopq"

static const lg_provider_t *P;

/* the key never travels in the URL */
static void check_request(const char *casename, const lg_http_req_t *req)
{
    (void)casename;
    assert_null(strstr(req->url, "key="));
    assert_null(strstr(req->url, "AIza"));
}

/* §2.3: total = prompt + completion, cached tokens are a subset and never added */
static void check_response(const char *casename, json_t *out)
{
    (void)casename;
    json_t *u = json_object_get(out, "usage");
    if (u != NULL)
        assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")),
                         json_integer_value(json_object_get(u, "prompt_tokens")) +
                             json_integer_value(json_object_get(u, "completion_tokens")));
}

static void prime_instance(void *inst, json_t *fx);

static const struct pf_plugin gemini = {
    .name = "gemini",
    .default_conf = "{\"name\":\"gemini\",\"api_key\":\"" TEST_KEY "\"}",
    .upstream_model = "gemini-2.5-flash",
    .public_model = "google/gemini-2.5-flash",
    .request_model = "gemini-2.5-flash",
    .check_request = check_request,
    .check_response = check_response,
    .prepare = prime_instance,
};

static int setup(void **state)
{
    (void)state;
    P = pf_setup(&gemini);
    return P != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pf_teardown();
    return 0;
}

static lg_call_t stream_call(json_t *body)
{
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = LG_API_CHAT,
                      .stream = 1,
                      .body = body,
                      .upstream_model = "gemini-2.5-flash",
                      .public_model = "google/gemini-2.5-flash"};
    return call;
}

/* ---- request translation ---- */

/* `prime`: responses and streams fed through the instance first (turn 1 of a conversation) */
static void prime_instance(void *inst, json_t *fx)
{
    json_t *prime = json_object_get(fx, "prime");
    size_t i;
    json_t *p;
    json_t *req_body = json_object();
    json_array_foreach(prime, i, p)
    {
        json_t *resp = json_object_get(p, "response");
        const char *sse = json_string_value(json_object_get(p, "sse"));
        if (resp != NULL) {
            char *text = json_dumps(resp, JSON_COMPACT);
            lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req_body, .upstream_model = "gemini-3-pro"};
            json_t *out = NULL;
            lg_errbuf_t e = {{0}};
            assert_int_equal(P->parse_response(inst, &call, 200, text, strlen(text), &out, &e), 0);
            json_decref(out);
            free(text);
        } else if (sse != NULL) {
            size_t len;
            char *text = pf_read_fixture(sse, &len);
            lg_call_t call = stream_call(req_body);
            struct pf_replay r;
            pf_replay_stream(inst, &call, text, len, NULL, 0, &r);
            pf_replay_free(&r);
            free(text);
        }
    }
    json_decref(req_body);
}

static void test_gemini_request_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".request.json", pf_run_request_case) >= 20);
}

static void test_gemini_conf_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".conf.json", pf_run_conf_case) >= 5);
}

static void test_gemini_response_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".response.json", pf_run_response_case) >= 12);
}

static void test_gemini_stream_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".sse", pf_run_sse_case) >= 10);
}

static void test_gemini_classify_error_table(void **state)
{
    (void)state;
    pf_check_classify_table(15);
}

/* ---- thoughtSignature round trip (Gemini requires the signature of a thought part back in the next turn) ---- */

/* Builds a chat request and returns the parsed upstream body. */
static json_t *build_body(void *inst, json_t *body)
{
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = body, .upstream_model = "gemini-3-pro-preview"};
    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    lg_errbuf_t e = {{0}};
    int rc = P->build_request(inst, &call, &req, &e);
    if (rc != 0)
        fail_msg("build_request: %s (%s)", pf_err_name(rc), e.msg);
    json_t *got = json_loadb(req.body, req.body_len, 0, NULL);
    assert_non_null(got);
    pf_free_req(&req);
    return got;
}

/* turn 2: user, the assistant message exactly as the client got it (optionally without extra_content), tool results */
static json_t *turn2_body(json_t *assistant, int drop_extra)
{
    json_t *msg = json_deep_copy(assistant);
    json_t *msgs = json_pack("[{ss ss}]", "role", "user", "content", "Weather in Paris and London? Book the warmer one.");
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc)
    {
        if (drop_extra)
            json_object_del(tc, "extra_content");
    }
    json_array_append_new(msgs, msg);
    json_array_foreach(json_object_get(assistant, "tool_calls"), i, tc)
    {
        json_array_append_new(msgs, json_pack("{ss sO ss}", "role", "tool", "tool_call_id", json_object_get(tc, "id"), "content",
                                              i == 0 ? "{\"temp_c\":21}" : "14 degrees"));
    }
    return json_pack("{so}", "messages", msgs);
}

/* the functionCall parts of the model turn of an upstream body */
static json_t *model_parts(json_t *up)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(up, "contents"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "role")), "model") == 0)
            return json_object_get(c, "parts");
    }
    fail_msg("no model turn");
    return NULL;
}

static json_t *parse_turn1(void *inst, const char *fixture, json_t **raw_out)
{
    size_t len;
    char *text = pf_read_fixture(fixture, &len);
    *raw_out = json_loadb(text, len, 0, NULL);
    json_t *req = json_object();
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req, .upstream_model = "gemini-3-pro-preview"};
    json_t *out = NULL;
    lg_errbuf_t e = {{0}};
    assert_int_equal(P->parse_response(inst, &call, 200, text, len, &out, &e), 0);
    free(text);
    json_decref(req);
    json_t *msg = json_incref(json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"));
    json_decref(out);
    return msg;
}

static void test_gemini_thought_signature_roundtrip(void **state)
{
    (void)state;
    void *inst = pf_create(NULL);
    json_t *raw;
    json_t *assistant = parse_turn1(inst, "thought_signature_turn1.response.json", &raw);
    json_t *raw_parts = json_object_get(json_object_get(json_array_get(json_object_get(raw, "candidates"), 0), "content"), "parts");
    const char *sig1 = json_string_value(json_object_get(json_array_get(raw_parts, 0), "thoughtSignature"));
    assert_non_null(sig1);
    json_t *tcs = json_object_get(assistant, "tool_calls");
    assert_int_equal(json_array_size(tcs), 2);
    /* turn 1 → the client sees the signature inside the tool call; Gemini 3 signs only the first parallel call */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(json_array_get(tcs, 0), "extra_content"), "google"),
                                          "thought_signature")),
        sig1);
    assert_null(json_object_get(json_array_get(tcs, 1), "extra_content"));

    for (int drop = 0; drop <= 1; ++drop) {
        /* extra_content kept: works on any instance (another worker); dropped: restored from this instance's cache */
        void *target = drop ? inst : pf_create(NULL);
        json_t *body = turn2_body(assistant, drop);
        json_t *up = build_body(target, body);
        json_t *parts = model_parts(up);
        assert_int_equal(json_array_size(parts), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(parts, 0), "thoughtSignature")), sig1);
        assert_null(json_object_get(json_array_get(parts, 1), "thoughtSignature"));
        /* function responses mapped back by name */
        json_t *last = json_array_get(json_object_get(up, "contents"), json_array_size(json_object_get(up, "contents")) - 1);
        assert_string_equal(json_string_value(json_object_get(last, "role")), "user");
        json_t *fr = json_object_get(json_array_get(json_object_get(last, "parts"), 1), "functionResponse");
        assert_string_equal(json_string_value(json_object_get(fr, "name")), "get_weather");
        assert_string_equal(json_string_value(json_object_get(json_object_get(fr, "response"), "result")), "14 degrees");
        json_decref(up);
        json_decref(body);
        if (target != inst)
            P->destroy(target);
    }
    /* dropped extra_content on an instance that never saw turn 1: no signature can be invented */
    void *other = pf_create(NULL);
    json_t *body = turn2_body(assistant, 1);
    json_t *up = build_body(other, body);
    assert_null(json_object_get(json_array_get(model_parts(up), 0), "thoughtSignature"));
    json_decref(up);
    json_decref(body);
    P->destroy(other);

    json_decref(assistant);
    json_decref(raw);
    P->destroy(inst);
}

/* streamed turn 1 fills the cache too */
static void test_gemini_thought_signature_stream_cache(void **state)
{
    (void)state;
    void *inst = pf_create(NULL);
    size_t len;
    char *text = pf_read_fixture("stream_function_call_signature.sse", &len);
    json_t *req = json_object();
    lg_call_t call = stream_call(req);
    struct pf_replay r;
    pf_replay_stream(inst, &call, text, len, NULL, 0, &r);
    json_t *tc = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(r.chunks, i, c)
    {
        json_t *t = json_object_get(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta"), "tool_calls");
        if (t != NULL)
            tc = json_array_get(t, 0);
    }
    assert_non_null(tc);
    const char *sig =
        json_string_value(json_object_get(json_object_get(json_object_get(tc, "extra_content"), "google"), "thought_signature"));
    assert_non_null(sig);
    json_t *assistant =
        json_pack("{ss sn s[{sO ss s{sO sO}}]}", "role", "assistant", "content", "tool_calls", "id", json_object_get(tc, "id"),
                  "type", "function", "function", "name", json_object_get(json_object_get(tc, "function"), "name"), "arguments",
                  json_object_get(json_object_get(tc, "function"), "arguments"));
    json_t *body = turn2_body(assistant, 1);
    json_t *up = build_body(inst, body);
    assert_string_equal(json_string_value(json_object_get(json_array_get(model_parts(up), 0), "thoughtSignature")), sig);
    json_decref(up);
    json_decref(body);
    json_decref(assistant);
    pf_replay_free(&r);
    json_decref(req);
    free(text);
    P->destroy(inst);
}

/* options.thought_signature_cache bounds the cache (FIFO); 0 disables it */
static void test_gemini_signature_cache_bounded(void **state)
{
    (void)state;
    for (int cap = 0; cap <= 2; cap += 2) {
        json_t *conf = json_pack("{ss ss s{si}}", "name", "g", "api_key", TEST_KEY, "options", "thought_signature_cache", cap);
        void *inst = pf_create(conf);
        json_decref(conf);
        char ids[3][64];
        json_t *req = json_object();
        for (int k = 0; k < 3; ++k) {
            char body[512];
            snprintf(body, sizeof(body),
                     "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{"
                     "\"k\":%d}},"
                     "\"thoughtSignature\":\"SIG%d\"}]},\"finishReason\":\"STOP\"}],\"responseId\":\"r%d\"}",
                     k, k, k);
            lg_call_t call = {
                .struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req, .upstream_model = "gemini-3-pro-preview"};
            json_t *out = NULL;
            lg_errbuf_t e = {{0}};
            assert_int_equal(P->parse_response(inst, &call, 200, body, strlen(body), &out, &e), 0);
            json_t *tc = json_array_get(
                json_object_get(json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"), "tool_calls"), 0);
            snprintf(ids[k], sizeof(ids[k]), "%s", json_string_value(json_object_get(tc, "id")));
            json_decref(out);
        }
        for (int k = 0; k < 3; ++k) {
            json_t *assistant = json_pack("{ss sn s[{ss ss s{ss ss}}]}", "role", "assistant", "content", "tool_calls", "id", ids[k],
                                          "type", "function", "function", "name", "f", "arguments", "{}");
            json_t *body = turn2_body(assistant, 1);
            json_t *up = build_body(inst, body);
            const char *got = json_string_value(json_object_get(json_array_get(model_parts(up), 0), "thoughtSignature"));
            char want[16];
            snprintf(want, sizeof(want), "SIG%d", k);
            if (cap == 0 || k == 0)
                assert_null(got); /* disabled, or evicted as the oldest of three in a cache of two */
            else
                assert_string_equal(got, want);
            json_decref(up);
            json_decref(body);
            json_decref(assistant);
        }
        json_decref(req);
        P->destroy(inst);
    }
}

/* synthesized ids are deterministic and unique within a response, also for identical calls */
static void test_gemini_synthesized_ids(void **state)
{
    (void)state;
    void *inst = pf_create(NULL);
    const char *body = "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":["
                       "{\"functionCall\":{\"name\":\"f\",\"args\":{}}},{\"functionCall\":{\"name\":\"f\",\"args\":{}}},"
                       "{\"functionCall\":{\"name\":\"f\",\"args\":{}}}]},\"finishReason\":\"STOP\"}]}";
    json_t *req = json_object();
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req, .upstream_model = "gemini-2.0-flash"};
    json_t *first = NULL;
    for (int round = 0; round < 2; ++round) {
        json_t *out = NULL;
        lg_errbuf_t e = {{0}};
        assert_int_equal(P->parse_response(inst, &call, 200, body, strlen(body), &out, &e), 0);
        json_t *tcs = json_object_get(json_object_get(json_array_get(json_object_get(out, "choices"), 0), "message"), "tool_calls");
        assert_int_equal(json_array_size(tcs), 3);
        for (size_t a = 0; a < 3; ++a) {
            const char *ia = json_string_value(json_object_get(json_array_get(tcs, a), "id"));
            assert_true(strncmp(ia, "call_", 5) == 0);
            for (size_t b = a + 1; b < 3; ++b)
                assert_string_not_equal(ia, json_string_value(json_object_get(json_array_get(tcs, b), "id")));
        }
        if (first == NULL)
            first = json_incref(tcs);
        else
            pf_assert_json_equal("synthesized_ids", tcs, first);
        json_decref(out);
    }
    json_decref(first);
    json_decref(req);
    P->destroy(inst);
}

/* a self-referencing schema is inlined to a bounded depth and size, never leaving "$ref" for Gemini to reject */
static void test_gemini_recursive_ref_bounded(void **state)
{
    (void)state;
    void *inst = pf_create(NULL);
    json_t *body =
        json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
                   "\"function\":{\"name\":\"tree\",\"parameters\":{\"$ref\":\"#/$defs/Node\",\"$defs\":{\"Node\":"
                   "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/Node\"},\"b\":{\"$ref\":\"#/$defs/Node\"},"
                   "\"c\":{\"$ref\":\"#/$defs/Node\"},\"d\":{\"$ref\":\"#/$defs/Node\"},\"kids\":{\"type\":\"array\","
                   "\"items\":{\"$ref\":\"#/$defs/Node\"}},\"v\":{\"type\":\"string\"}}}}}}}]}",
                   0, NULL);
    assert_non_null(body);
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = body, .upstream_model = "gemini-2.5-flash"};
    lg_http_req_t req;
    memset(&req, 0, sizeof(req));
    lg_errbuf_t e = {{0}};
    assert_int_equal(P->build_request(inst, &call, &req, &e), 0);
    assert_true(req.body_len < 512 * 1024);
    assert_null(strstr(req.body, "$ref"));
    assert_null(strstr(req.body, "$defs"));
    assert_non_null(strstr(req.body, "\"v\":{\"type\":\"string\"}"));
    pf_free_req(&req);
    json_decref(body);
    P->destroy(inst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemini_request_fixtures),
        cmocka_unit_test(test_gemini_conf_fixtures),
        cmocka_unit_test(test_gemini_response_fixtures),
        cmocka_unit_test(test_gemini_stream_fixtures),
        cmocka_unit_test(test_gemini_classify_error_table),
        cmocka_unit_test(test_gemini_thought_signature_roundtrip),
        cmocka_unit_test(test_gemini_thought_signature_stream_cache),
        cmocka_unit_test(test_gemini_signature_cache_bounded),
        cmocka_unit_test(test_gemini_synthesized_ids),
        cmocka_unit_test(test_gemini_recursive_ref_bounded),
    };
    return cmocka_run_group_tests_name("plugin_gemini", tests, setup, teardown);
}
