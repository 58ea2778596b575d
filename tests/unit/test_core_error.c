/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/core/error.c: the one error table. Every lg_err_t has its
 * classification row (retryable, metrics class, JSON-RPC code, Anthropic
 * type/status), unknown codes get safe defaults, and the columns agree with
 * the protocol contracts the callers rely on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/error.h"

static const int all_codes[] = {
#define CODE(name, num, status, type, msg) LG_##name,
    LG_ERRNO_MAP(CODE)
#undef CODE
};

static void test_error_every_code_has_a_row(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(all_codes) / sizeof(all_codes[0]); ++i) {
        int err = all_codes[i];
        const char *at = lg_err_anthropic_type(err);
        assert_non_null(at);
        assert_true(strstr(at, "_error") != NULL || strcmp(at, "request_too_large") == 0);
        int rpc = lg_err_jsonrpc_code(err);
        assert_true(rpc <= -32000 && rpc >= -32700);
        assert_true((unsigned)lg_err_class(err) < LG_ERRCLASS__COUNT);
        assert_true(lg_err_retryable(err) == 0 || lg_err_retryable(err) == 1);
    }
}

static void test_error_retryable_is_upstream_trouble(void **state)
{
    (void)state;
    static const int retryable[] = {LG_ETIMEOUT,     LG_EUPSTREAM,  LG_EOVERLOADED, LG_EUPSTREAM_RATELIMIT,
                                    LG_EBADRESPONSE, LG_EQUEUEFULL, LG_ECONTEXT,    LG_EUPSTREAM_AUTH};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(all_codes) / sizeof(all_codes[0]); ++i) {
        int want = 0;
        for (size_t k = 0; k < sizeof(retryable) / sizeof(retryable[0]); ++k)
            want |= retryable[k] == all_codes[i];
        assert_int_equal(lg_err_retryable(all_codes[i]), want);
        n += (size_t)want;
    }
    assert_int_equal(n, sizeof(retryable) / sizeof(retryable[0]));
    /* the client's own mistakes and the gateway's refusals never fall over */
    assert_int_equal(lg_err_retryable(LG_EINVAL), 0);
    assert_int_equal(lg_err_retryable(LG_EUPSTREAM_REJECTED), 0);
    assert_int_equal(lg_err_retryable(LG_ECANCELLED), 0);
}

static void test_error_metrics_class(void **state)
{
    (void)state;
    assert_int_equal(lg_err_class(LG_ETIMEOUT), LG_ERRCLASS_TIMEOUT);
    assert_int_equal(lg_err_class(LG_EUPSTREAM_RATELIMIT), LG_ERRCLASS_RATE_LIMITED);
    assert_int_equal(lg_err_class(LG_ERATELIMIT), LG_ERRCLASS_RATE_LIMITED);
    assert_int_equal(lg_err_class(LG_EOVERLOADED), LG_ERRCLASS_OVERLOADED);
    assert_int_equal(lg_err_class(LG_EUPSTREAM), LG_ERRCLASS_SERVER_ERROR);
    assert_int_equal(lg_err_class(LG_EBADRESPONSE), LG_ERRCLASS_BAD_RESPONSE);
    assert_int_equal(lg_err_class(LG_ECONTEXT), LG_ERRCLASS_REJECTED);
    assert_int_equal(lg_err_class(LG_EUPSTREAM_AUTH), LG_ERRCLASS_AUTH);
    assert_int_equal(lg_err_class(LG_EQUEUEFULL), LG_ERRCLASS_QUEUE_FULL);
    assert_int_equal(lg_err_class(LG_ECANCELLED), LG_ERRCLASS_CANCELLED);
    assert_int_equal(lg_err_class(LG_EINTERNAL), LG_ERRCLASS_OTHER);
}

static void test_error_jsonrpc_codes(void **state)
{
    (void)state;
    assert_int_equal(lg_err_jsonrpc_code(0), 0);
    assert_int_equal(lg_err_jsonrpc_code(LG_EINVAL), -32602);
    assert_int_equal(lg_err_jsonrpc_code(LG_ENOTFOUND), -32601);
    assert_int_equal(lg_err_jsonrpc_code(LG_ETOOLARGE), -32600);
    assert_int_equal(lg_err_jsonrpc_code(LG_EINTERNAL), -32603);
    assert_int_equal(lg_err_jsonrpc_code(LG_EAUTH), -32001);
    assert_int_equal(lg_err_jsonrpc_code(LG_ERATELIMIT), -32000);
}

static void test_error_anthropic_columns(void **state)
{
    (void)state;
    assert_string_equal(lg_err_anthropic_type(LG_EINVAL), "invalid_request_error");
    assert_string_equal(lg_err_anthropic_type(LG_EAUTH), "authentication_error");
    assert_string_equal(lg_err_anthropic_type(LG_ECREDIT), "billing_error");
    assert_string_equal(lg_err_anthropic_type(LG_ENOENDPOINT), "not_found_error");
    assert_string_equal(lg_err_anthropic_type(LG_ETOOLARGE), "request_too_large");
    assert_string_equal(lg_err_anthropic_type(LG_ERATELIMIT), "rate_limit_error");
    assert_string_equal(lg_err_anthropic_type(LG_EOVERLOADED), "overloaded_error");
    assert_string_equal(lg_err_anthropic_type(LG_ETIMEOUT), "timeout_error");
    assert_string_equal(lg_err_anthropic_type(LG_EUPSTREAM), "api_error");
    /* overload answers 529 on the Anthropic skin (its SDKs retry it); everything else keeps its status */
    assert_int_equal(lg_err_anthropic_status(LG_EOVERLOADED), 529);
    assert_int_equal(lg_err_anthropic_status(LG_EQUEUEFULL), 529);
    assert_int_equal(lg_err_anthropic_status(LG_ERATELIMIT), 429);
    assert_int_equal(lg_err_anthropic_status(LG_EUPSTREAM), 502);
}

static void test_error_unknown_codes(void **state)
{
    (void)state;
    static const int unknown[] = {1, -999, -27, 12345};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); ++i) {
        assert_int_equal(lg_err_retryable(unknown[i]), 0);
        assert_int_equal(lg_err_class(unknown[i]), LG_ERRCLASS_OTHER);
        assert_int_equal(lg_err_jsonrpc_code(unknown[i]), -32000);
        assert_string_equal(lg_err_anthropic_type(unknown[i]), "api_error");
        assert_int_equal(lg_err_status(unknown[i]), 500);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_every_code_has_a_row), cmocka_unit_test(test_error_retryable_is_upstream_trouble),
        cmocka_unit_test(test_error_metrics_class),        cmocka_unit_test(test_error_jsonrpc_codes),
        cmocka_unit_test(test_error_anthropic_columns),    cmocka_unit_test(test_error_unknown_codes),
    };
    return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
