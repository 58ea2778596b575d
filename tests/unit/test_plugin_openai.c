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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_request_fixtures),     cmocka_unit_test(test_openai_conf_fixtures),
        cmocka_unit_test(test_openai_response_fixtures),    cmocka_unit_test(test_openai_stream_fixtures),
        cmocka_unit_test(test_openai_classify_error_table),
    };
    return cmocka_run_group_tests_name("plugin_openai", tests, setup, teardown);
}
