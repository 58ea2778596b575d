/* SPDX-License-Identifier: MIT */
/*
 * Fixture runner for the `openai` plugin, driving the real openai.so through
 * the loader. tests/data/providers/openai/ holds:
 *   <case>.request.json  {conf?, call, body, expect{rc, url, headers, absent_headers, message}} → <case>.upstream.json
 *   <case>.response.json (raw upstream body)  → <case>.expected.json {kind, status, rc, out | message}
 *   stream_<case>.sse    (raw upstream stream) → stream_<case>.expected.json {kind, chunks, usage, done, error, end}
 *   <case>.conf.json     {conf, rc, message}: create() refusals
 *   classify_error.cases.json  [{status, body, err, retryable, provider_code?, message?}]
 * The shared runner (tests/support/plugin_fixture.c) replays streams through the host's SSE parser in every split.
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

static const lg_provider_t *P;

static const struct pf_plugin openai = {
    .name = "openai",
    .default_conf = "{\"name\":\"openai\",\"base_url\":\"https://api.openai.com/v1\",\"api_key\":\"sk-test-0123456789\"}",
    .upstream_model = "gpt-4o",
    .public_model = "openai/gpt-4o",
};

static int setup(void **state)
{
    (void)state;
    P = pf_setup(&openai);
    return P != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pf_teardown();
    return 0;
}

/* ---- request translation ---- */

static void test_openai_request_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".request.json", pf_run_request_case) >= 10);
}

static void test_openai_conf_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".conf.json", pf_run_conf_case) >= 3);
}

static void test_openai_response_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".response.json", pf_run_response_case) >= 5);
}

static void test_openai_stream_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".sse", pf_run_sse_case) >= 6);
}

static void test_openai_classify_error_table(void **state)
{
    (void)state;
    pf_check_classify_table(10);
}

/* Workers AI streams a numeric token as a JSON number ({"delta":{"content":6}}): with coerce_numeric_content the text
 * keeps every character, spelled as sent; without it such an event stays a broken chunk for the normal-form checks. */
static void test_openai_coerce_numeric_content(void **state)
{
    (void)state;
    static const char sse[] =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"$\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":0.005}}],\"usage\":{\"completion_tokens\":1}}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\": -12}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" say \\\"content\\\":7 \",\"reasoning_content\":1e3}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    json_t *conf = json_loads("{\"name\":\"cf\",\"base_url\":\"https://api.cloudflare.com/client/v4/accounts/a/ai/v1\","
                              "\"api_key\":\"t\",\"options\":{\"coerce_numeric_content\":true}}",
                              0, NULL);
    void *inst = pf_create(conf);
    json_t *body = json_object();
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = LG_API_CHAT,
                      .stream = 1,
                      .body = body,
                      .upstream_model = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"};
    assert_int_equal(P->wire_passthrough(inst, &call), 0); /* the events must go through the plugin */
    static const size_t cuts[] = {3, 90, 91, 200};
    struct pf_replay r;
    pf_replay_stream(inst, &call, sse, sizeof(sse) - 1, cuts, 4, &r);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(json_array_size(r.chunks), 5);
    const char *want[] = {"$", "0.005", "-12", " say \"content\":7 ", NULL};
    for (size_t i = 0; i < 4; ++i) {
        json_t *c = json_object_get(
            json_object_get(json_array_get(json_object_get(json_array_get(r.chunks, i), "choices"), 0), "delta"), "content");
        assert_true(json_is_string(c));
        assert_string_equal(json_string_value(c), want[i]);
    }
    json_t *rc = json_object_get(
        json_object_get(json_array_get(json_object_get(json_array_get(r.chunks, 3), "choices"), 0), "delta"), "reasoning_content");
    assert_string_equal(json_string_value(rc), "1e3");
    pf_replay_free(&r);
    P->destroy(inst);

    /* the default keeps the number as sent (the host's normal-form check then fails the attempt) */
    inst = pf_create(NULL);
    assert_int_equal(P->wire_passthrough(inst, &call), 1);
    pf_replay_stream(inst, &call, sse, sizeof(sse) - 1, NULL, 0, &r);
    assert_true(json_is_number(json_object_get(
        json_object_get(json_array_get(json_object_get(json_array_get(r.chunks, 1), "choices"), 0), "delta"), "content")));
    pf_replay_free(&r);
    P->destroy(inst);
    json_decref(body);
    json_decref(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_request_fixtures),     cmocka_unit_test(test_openai_conf_fixtures),
        cmocka_unit_test(test_openai_response_fixtures),    cmocka_unit_test(test_openai_stream_fixtures),
        cmocka_unit_test(test_openai_classify_error_table), cmocka_unit_test(test_openai_coerce_numeric_content),
    };
    return cmocka_run_group_tests_name("plugin_openai", tests, setup, teardown);
}
