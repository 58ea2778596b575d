/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for mcp/jsonrpc.c: classification of requests, notifications,
 * responses and error responses; ids (string/integer, never null); the
 * -32700 / -32600 cases with the id echoed when readable; batches detected;
 * the size cap; builders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mcp/jsonrpc.h"

static int parse(const char *text, lg_jsonrpc_msg_t *m, json_t **batch, lg_jsonrpc_err_t *e)
{
    return lg_jsonrpc_parse(text, strlen(text), 0, m, batch, e);
}

static void expect_error(const char *text, int code, const char *needle)
{
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t e;
    json_t *batch;
    int rc = parse(text, &m, &batch, &e);
    if (rc != LG_JSONRPC_PARSED_ERROR || e.code != code || strstr(e.message, needle) == NULL)
        print_error("input: %s\nrc=%d code=%d message=%s\n", text, rc, e.code, e.message);
    assert_int_equal(rc, LG_JSONRPC_PARSED_ERROR);
    assert_int_equal(e.code, code);
    assert_non_null(strstr(e.message, needle));
    assert_null(batch);
    lg_jsonrpc_err_dispose(&e);
}

static void test_jsonrpc_request(void **state)
{
    (void)state;
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t e;
    json_t *batch;
    assert_int_equal(
        parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\",\"params\":{\"cursor\":\"x\"}}", &m, &batch, &e),
        LG_JSONRPC_PARSED_ONE);
    assert_int_equal(m.kind, LG_JSONRPC_REQUEST);
    assert_string_equal(m.method, "tools/list");
    assert_true(json_is_integer(m.id));
    assert_int_equal(json_integer_value(m.id), 7);
    assert_string_equal(json_string_value(json_object_get(m.params, "cursor")), "x");
    lg_jsonrpc_msg_dispose(&m);

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"ping\"}", &m, &batch, &e), LG_JSONRPC_PARSED_ONE);
    assert_int_equal(m.kind, LG_JSONRPC_REQUEST);
    assert_string_equal(json_string_value(m.id), "abc");
    assert_null(m.params);
    lg_jsonrpc_msg_dispose(&m);
}

static void test_jsonrpc_notification_and_responses(void **state)
{
    (void)state;
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t e;
    json_t *batch;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m, &batch, &e),
                     LG_JSONRPC_PARSED_ONE);
    assert_int_equal(m.kind, LG_JSONRPC_NOTIFICATION);
    assert_null(m.id);
    lg_jsonrpc_msg_dispose(&m);

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"lg.0.1\",\"result\":{\"action\":\"accept\"}}", &m, &batch, &e),
                     LG_JSONRPC_PARSED_ONE);
    assert_int_equal(m.kind, LG_JSONRPC_RESPONSE);
    assert_string_equal(json_string_value(json_object_get(m.result, "action")), "accept");
    lg_jsonrpc_msg_dispose(&m);

    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1,\"message\":\"no\"}}", &m, &batch, &e),
                     LG_JSONRPC_PARSED_ONE);
    assert_int_equal(m.kind, LG_JSONRPC_ERROR_RESPONSE);
    assert_int_equal(json_integer_value(json_object_get(m.error, "code")), -1);
    lg_jsonrpc_msg_dispose(&m);

    /* an error response may carry id null */
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}", &m, &batch, &e),
                     LG_JSONRPC_PARSED_ONE);
    assert_int_equal(m.kind, LG_JSONRPC_ERROR_RESPONSE);
    assert_null(m.id);
    lg_jsonrpc_msg_dispose(&m);
}

static void test_jsonrpc_parse_errors(void **state)
{
    (void)state;
    expect_error("", LG_JSONRPC_PARSE_ERROR, "parse error");
    expect_error("{\"jsonrpc\":\"2.0\",", LG_JSONRPC_PARSE_ERROR, "parse error");
    expect_error("not json", LG_JSONRPC_PARSE_ERROR, "parse error");
    /* duplicate keys would make the id ambiguous */
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", LG_JSONRPC_PARSE_ERROR, "parse error");
}

static void test_jsonrpc_invalid_requests(void **state)
{
    (void)state;
    expect_error("42", LG_JSONRPC_INVALID_REQUEST, "must be an object");
    expect_error("\"x\"", LG_JSONRPC_INVALID_REQUEST, "must be an object");
    expect_error("[]", LG_JSONRPC_INVALID_REQUEST, "empty batch");
    expect_error("{\"id\":1,\"method\":\"ping\"}", LG_JSONRPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
    expect_error("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", LG_JSONRPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", LG_JSONRPC_INVALID_REQUEST,
                 "\"method\" must be a non-empty string");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", LG_JSONRPC_INVALID_REQUEST, "non-empty");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", LG_JSONRPC_INVALID_REQUEST, "string or an integer");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", LG_JSONRPC_INVALID_REQUEST, "string or an integer");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", LG_JSONRPC_INVALID_REQUEST, "string or an integer");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":3}", LG_JSONRPC_INVALID_REQUEST, "\"params\"");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1}", LG_JSONRPC_INVALID_REQUEST, "not a request");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,\"message\":\"m\"}}",
                 LG_JSONRPC_INVALID_REQUEST, "both");
    expect_error("{\"jsonrpc\":\"2.0\",\"result\":{}}", LG_JSONRPC_INVALID_REQUEST, "needs a string or integer");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\",\"message\":\"m\"}}", LG_JSONRPC_INVALID_REQUEST,
                 "integer code");
    expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"result\":1}", LG_JSONRPC_INVALID_REQUEST, "cannot carry");
}

static void test_jsonrpc_invalid_request_keeps_id(void **state)
{
    (void)state;
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t e;
    json_t *batch;
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"q1\",\"method\":7}", &m, &batch, &e), LG_JSONRPC_PARSED_ERROR);
    assert_string_equal(json_string_value(e.id), "q1");
    json_t *resp = lg_jsonrpc_make_error(e.id, e.code, e.message, NULL);
    assert_string_equal(json_string_value(json_object_get(resp, "id")), "q1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "error"), "code")), -32600);
    json_decref(resp);
    lg_jsonrpc_err_dispose(&e);
    /* an unusable id is not echoed */
    assert_int_equal(parse("{\"jsonrpc\":\"1\",\"id\":{},\"method\":\"x\"}", &m, &batch, &e), LG_JSONRPC_PARSED_ERROR);
    assert_null(e.id);
    lg_jsonrpc_err_dispose(&e);
}

static void test_jsonrpc_batch_detected(void **state)
{
    (void)state;
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t e;
    json_t *batch;
    assert_int_equal(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},{\"bad\":1}]", &m, &batch, &e),
                     LG_JSONRPC_PARSED_BATCH);
    assert_int_equal(json_array_size(batch), 2);
    assert_int_equal(lg_jsonrpc_from_json(json_array_get(batch, 0), &m, &e), 0);
    assert_int_equal(m.kind, LG_JSONRPC_REQUEST);
    lg_jsonrpc_msg_dispose(&m);
    assert_int_equal(lg_jsonrpc_from_json(json_array_get(batch, 1), &m, &e), -1);
    assert_int_equal(e.code, LG_JSONRPC_INVALID_REQUEST);
    lg_jsonrpc_err_dispose(&e);
    json_decref(batch);
}

static void test_jsonrpc_size_limit(void **state)
{
    (void)state;
    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t e;
    json_t *batch;
    const char *text = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    assert_int_equal(lg_jsonrpc_parse(text, strlen(text), strlen(text), &m, &batch, &e), LG_JSONRPC_PARSED_ONE);
    lg_jsonrpc_msg_dispose(&m);
    assert_int_equal(lg_jsonrpc_parse(text, strlen(text), strlen(text) - 1, &m, &batch, &e), LG_JSONRPC_PARSED_ERROR);
    assert_true(e.too_large);
    assert_int_equal(e.code, LG_JSONRPC_INVALID_REQUEST);
    assert_non_null(strstr(e.message, "exceeds the limit"));
    lg_jsonrpc_err_dispose(&e);
    /* NUL bytes inside the body are a parse error, not a truncation */
    static const char nul[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\0ing\"}";
    assert_int_equal(lg_jsonrpc_parse(nul, sizeof(nul) - 1, 0, &m, &batch, &e), LG_JSONRPC_PARSED_ERROR);
    assert_int_equal(e.code, LG_JSONRPC_PARSE_ERROR);
    lg_jsonrpc_err_dispose(&e);
}

static void test_jsonrpc_id_keys(void **state)
{
    (void)state;
    char a[64], b[64];
    json_t *s = json_string("1"), *i = json_integer(1);
    lg_jsonrpc_id_key(s, a, sizeof(a));
    lg_jsonrpc_id_key(i, b, sizeof(b));
    assert_string_equal(a, "s:1");
    assert_string_equal(b, "i:1");
    assert_true(lg_jsonrpc_id_valid(s));
    assert_true(lg_jsonrpc_id_valid(i));
    assert_false(lg_jsonrpc_id_valid(NULL));
    json_t *n = json_null();
    assert_false(lg_jsonrpc_id_valid(n));
    json_decref(s);
    json_decref(i);
    json_decref(n);
}

static void test_jsonrpc_builders(void **state)
{
    (void)state;
    json_t *id = json_integer(5);
    json_t *r = lg_jsonrpc_make_result(id, json_pack("{s:i}", "x", 1));
    char *t = json_dumps(r, JSON_COMPACT);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"x\":1}}");
    free(t);
    json_decref(r);
    r = lg_jsonrpc_make_error(NULL, LG_JSONRPC_PARSE_ERROR, "Parse error", NULL);
    t = json_dumps(r, JSON_COMPACT);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}");
    free(t);
    json_decref(r);
    r = lg_jsonrpc_make_notification("notifications/message", json_pack("{s:s}", "level", "info"));
    t = json_dumps(r, JSON_COMPACT);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\"}}");
    free(t);
    json_decref(r);
    json_t *sid = json_string("lg.0.1");
    r = lg_jsonrpc_make_request(sid, "sampling/createMessage", NULL);
    t = json_dumps(r, JSON_COMPACT);
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"lg.0.1\",\"method\":\"sampling/createMessage\"}");
    free(t);
    json_decref(r);
    json_decref(sid);
    json_decref(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonrpc_request),
        cmocka_unit_test(test_jsonrpc_notification_and_responses),
        cmocka_unit_test(test_jsonrpc_parse_errors),
        cmocka_unit_test(test_jsonrpc_invalid_requests),
        cmocka_unit_test(test_jsonrpc_invalid_request_keeps_id),
        cmocka_unit_test(test_jsonrpc_batch_detected),
        cmocka_unit_test(test_jsonrpc_size_limit),
        cmocka_unit_test(test_jsonrpc_id_keys),
        cmocka_unit_test(test_jsonrpc_builders),
    };
    return cmocka_run_group_tests_name("jsonrpc", tests, NULL, NULL);
}
