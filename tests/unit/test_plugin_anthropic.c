/* SPDX-License-Identifier: MIT */
/*
 * Fixture runner for the `anthropic` plugin, driving the real anthropic.so through the loader. Fixtures were written
 * from Anthropic's public Messages API documentation (request/response shapes, streaming event reference, error
 * types) and plugins/README.md. tests/data/providers/anthropic/ holds:
 *   <case>.request.json  {conf?, call{kind,stream,upstream_model,max_output_tokens}, body,
 *                         expect{rc, url, headers, absent_headers, message}} → <case>.upstream.json (exact body)
 *   <case>.response.json (raw upstream body) → <case>.expected.json {status?, body?, rc, out | message}
 *   stream_<case>.sse    (raw upstream stream) → stream_<case>.expected.json
 *                        {body?, chunks, usage, done, error{err,status,provider_code,message} | null, end, end_message}
 *   <case>.conf.json     {conf, rc, message}: create() results
 *   classify_error.cases.json  [{name, status, body, err, retryable, want_status?, provider_code?, message?,
 *                                message_lacks?}]
 * Streams go through the host's SSE parser (src/upstream/sse.c) as one piece, byte by byte, split in two at every
 * offset, and again with CRLF and lone-CR line endings: every variant must give exactly the expected chunks.
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

#define TEST_KEY "sk-ant-api03-test-0123456789"

/* never an OpenAI auth header */
static void check_request(const char *casename, const lg_http_req_t *req)
{
    (void)casename;
    assert_null(pf_find_header(req, "Authorization"));
}

static const struct pf_plugin anthropic = {
    .name = "anthropic",
    .default_conf = "{\"name\":\"anthropic\",\"api_key\":\"" TEST_KEY "\"}",
    .upstream_model = "claude-sonnet-4-20250514",
    .public_model = "anthropic/claude-sonnet-4",
    .default_url = "https://api.anthropic.com/v1/messages",
    .check_request = check_request,
};

static int setup(void **state)
{
    (void)state;
    P = pf_setup(&anthropic);
    return P != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pf_teardown();
    return 0;
}

/* ---- provider table ---- */

static void test_anthropic_table(void **state)
{
    (void)state;
    assert_string_equal(P->name, "anthropic");
    assert_int_equal(P->capabilities, LG_CAP_CHAT | LG_CAP_STREAM);
    assert_null(P->local_respond);
}

/* ---- request translation ---- */

static void test_anthropic_request_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".request.json", pf_run_request_case) >= 25);
}

static void test_anthropic_conf_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".conf.json", pf_run_conf_case) >= 5);
}

static void test_anthropic_response_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".response.json", pf_run_response_case) >= 8);
}

static void test_anthropic_stream_fixtures(void **state)
{
    (void)state;
    assert_true(pf_each_fixture(".sse", pf_run_sse_case) >= 12);
}

static void test_anthropic_classify_error_table(void **state)
{
    (void)state;
    pf_check_classify_table(15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_table),           cmocka_unit_test(test_anthropic_request_fixtures),
        cmocka_unit_test(test_anthropic_conf_fixtures),   cmocka_unit_test(test_anthropic_response_fixtures),
        cmocka_unit_test(test_anthropic_stream_fixtures), cmocka_unit_test(test_anthropic_classify_error_table),
    };
    return cmocka_run_group_tests_name("plugin_anthropic", tests, setup, teardown);
}
