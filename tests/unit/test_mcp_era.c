/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for mcp/era.c (which era a request is in, the 2026-07-28 request checks in the revision's order, the
 * stamping of modern answers) and mcp/mrtr.c (sealed requestState: round trip, tampering, key binding, expiry).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mcp/era.h"
#include "mcp/jsonrpc.h"
#include "mcp/mrtr.h"

static json_t *meta_params(const char *version, int with_caps)
{
    json_t *meta = json_object();
    if (version != NULL)
        json_object_set_new(meta, LG_MCP_META_VERSION, json_string(version));
    if (with_caps)
        json_object_set_new(meta, LG_MCP_META_CAPS, json_object());
    return json_pack("{s:o}", "_meta", meta);
}

static void test_era_of(void **state)
{
    (void)state;
    json_t *modern = meta_params("2026-07-28", 1);
    json_t *plain = json_pack("{s:s}", "name", "x");
    /* a session keeps everything legacy */
    assert_int_equal(lg_mcp_era_of(1, "2026-07-28", 10, "tools/list", modern), LG_MCP_ERA_LEGACY);
    /* modern _meta, with or without the header */
    assert_int_equal(lg_mcp_era_of(0, "2026-07-28", 10, "tools/list", modern), LG_MCP_ERA_MODERN);
    assert_int_equal(lg_mcp_era_of(0, NULL, 0, "tools/list", modern), LG_MCP_ERA_MODERN);
    /* a legacy version header without modern _meta: a legacy request (that lacks its session) */
    assert_int_equal(lg_mcp_era_of(0, "2025-11-25", 10, "tools/list", plain), LG_MCP_ERA_LEGACY);
    assert_int_equal(lg_mcp_era_of(0, "2025-03-26", 10, "tools/list", NULL), LG_MCP_ERA_LEGACY);
    /* an unknown version header: the modern path answers it with -32022 */
    assert_int_equal(lg_mcp_era_of(0, "v999.0.0", 8, "server/discover", plain), LG_MCP_ERA_MODERN);
    /* no header, no _meta: legacy */
    assert_int_equal(lg_mcp_era_of(0, NULL, 0, "tools/list", plain), LG_MCP_ERA_LEGACY);
    /* initialize is legacy unless it carries modern _meta */
    assert_int_equal(lg_mcp_era_of(0, "2026-07-28", 10, "initialize", plain), LG_MCP_ERA_LEGACY);
    assert_int_equal(lg_mcp_era_of(0, "2026-07-28", 10, "initialize", modern), LG_MCP_ERA_MODERN);
    assert_int_equal(lg_mcp_era_of(0, NULL, 0, NULL, NULL), LG_MCP_ERA_LEGACY);
    json_decref(modern);
    json_decref(plain);
}

static int check_code(const char *hver, const char *hmethod, const char *hname, const char *method, json_t *params)
{
    lg_mcp_era_headers_t h = {
        hver, hmethod, hname, hver ? strlen(hver) : 0, hmethod ? strlen(hmethod) : 0, hname ? strlen(hname) : 0};
    json_t *e = lg_mcp_era_check(&h, method, params);
    int code = e != NULL ? (int)json_integer_value(json_object_get(e, "code")) : 0;
    json_decref(e);
    return code;
}

static void test_era_check_order(void **state)
{
    (void)state;
    json_t *ok = meta_params("2026-07-28", 1);
    assert_int_equal(check_code("2026-07-28", "tools/list", NULL, "tools/list", ok), 0);
    /* the version header first */
    assert_int_equal(check_code(NULL, "tools/list", NULL, "tools/list", ok), LG_MCP_HEADER_MISMATCH);
    /* then _meta's required fields */
    json_t *no_meta = json_object(), *no_caps = meta_params("2026-07-28", 0), *no_ver = meta_params(NULL, 1);
    assert_int_equal(check_code("2026-07-28", "tools/list", NULL, "tools/list", no_meta), LG_JSONRPC_INVALID_PARAMS);
    assert_int_equal(check_code("2026-07-28", "tools/list", NULL, "tools/list", no_caps), LG_JSONRPC_INVALID_PARAMS);
    assert_int_equal(check_code("2026-07-28", "tools/list", NULL, "tools/list", no_ver), LG_JSONRPC_INVALID_PARAMS);
    /* header vs _meta, then the version itself (with the supported list and the requested one) */
    json_t *v999 = meta_params("v999.0.0", 1);
    assert_int_equal(check_code("2026-07-28", "server/discover", NULL, "server/discover", v999), LG_MCP_HEADER_MISMATCH);
    lg_mcp_era_headers_t h = {"v999.0.0", "server/discover", NULL, 8, 15, 0};
    json_t *e = lg_mcp_era_check(&h, "server/discover", v999);
    assert_int_equal(json_integer_value(json_object_get(e, "code")), LG_MCP_UNSUPPORTED_VERSION);
    json_t *data = json_object_get(e, "data");
    assert_string_equal(json_string_value(json_object_get(data, "requested")), "v999.0.0");
    assert_string_equal(json_string_value(json_array_get(json_object_get(data, "supported"), 0)), "2026-07-28");
    assert_string_equal(json_string_value(json_array_get(json_object_get(data, "supported"), 1)), "2025-11-25");
    json_decref(e);
    /* Mcp-Method: required, exact, case-sensitive; whitespace around it is not part of the value */
    assert_int_equal(check_code("2026-07-28", NULL, NULL, "tools/list", ok), LG_MCP_HEADER_MISMATCH);
    assert_int_equal(check_code("2026-07-28", "prompts/list", NULL, "tools/list", ok), LG_MCP_HEADER_MISMATCH);
    assert_int_equal(check_code("2026-07-28", "TOOLS/LIST", NULL, "tools/list", ok), LG_MCP_HEADER_MISMATCH);
    assert_int_equal(check_code(" 2026-07-28 ", "  tools/list\t", NULL, "tools/list", ok), 0);
    /* Mcp-Name for tools/call, prompts/get, resources/read */
    json_t *call = meta_params("2026-07-28", 1);
    json_object_set_new(call, "name", json_string("echo"));
    assert_int_equal(check_code("2026-07-28", "tools/call", "echo", "tools/call", call), 0);
    assert_int_equal(check_code("2026-07-28", "tools/call", "  echo  ", "tools/call", call), 0);
    assert_int_equal(check_code("2026-07-28", "tools/call", "other", "tools/call", call), LG_MCP_HEADER_MISMATCH);
    assert_int_equal(check_code("2026-07-28", "tools/call", NULL, "tools/call", call), LG_MCP_HEADER_MISMATCH);
    assert_int_equal(check_code("2026-07-28", "tools/call", "=?base64?ZWNobw==?=", "tools/call", call), 0);
    json_t *read = meta_params("2026-07-28", 1);
    json_object_set_new(read, "uri", json_string("test://x"));
    assert_int_equal(check_code("2026-07-28", "resources/read", "test://x", "resources/read", read), 0);
    assert_int_equal(check_code("2026-07-28", "resources/read", "test://y", "resources/read", read), LG_MCP_HEADER_MISMATCH);
    json_decref(ok);
    json_decref(no_meta);
    json_decref(no_caps);
    json_decref(no_ver);
    json_decref(v999);
    json_decref(call);
    json_decref(read);
    assert_true(lg_mcp_era_removed("ping"));
    assert_true(lg_mcp_era_removed("initialize"));
    assert_true(lg_mcp_era_removed("resources/subscribe"));
    assert_false(lg_mcp_era_removed("tools/list"));
}

static void test_era_stamp(void **state)
{
    (void)state;
    json_t *id = json_integer(7);
    json_t *m = lg_jsonrpc_make_result(id, json_pack("{s:[]}", "tools"));
    assert_int_equal(lg_mcp_era_stamp("tools/list", m), 200);
    json_t *r = json_object_get(m, "result");
    assert_string_equal(json_string_value(json_object_get(r, "resultType")), "complete");
    assert_int_equal(json_integer_value(json_object_get(r, "ttlMs")), 0);
    assert_string_equal(json_string_value(json_object_get(r, "cacheScope")), "private");
    json_decref(m);
    /* not cacheable: resultType only; an input-required result keeps its type and gets no caching hints */
    m = lg_jsonrpc_make_result(id, json_pack("{s:s}", "resultType", "input_required"));
    assert_int_equal(lg_mcp_era_stamp("resources/read", m), 200);
    assert_null(json_object_get(json_object_get(m, "result"), "ttlMs"));
    json_decref(m);
    m = lg_jsonrpc_make_result(id, json_object());
    lg_mcp_era_stamp("tools/call", m);
    assert_null(json_object_get(json_object_get(m, "result"), "ttlMs"));
    json_decref(m);
    /* the revision's resource-not-found code, and the HTTP statuses */
    m = lg_jsonrpc_make_error(id, LG_MCP_RESOURCE_NOT_FOUND, "Resource not found", json_pack("{s:s}", "uri", "x://y"));
    assert_int_equal(lg_mcp_era_stamp("resources/read", m), 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "error"), "code")), LG_JSONRPC_INVALID_PARAMS);
    json_decref(m);
    m = lg_jsonrpc_make_error(id, LG_JSONRPC_METHOD_NOT_FOUND, "nope", NULL);
    assert_int_equal(lg_mcp_era_stamp("x/y", m), 404);
    json_decref(m);
    m = lg_jsonrpc_make_error(id, LG_MCP_MISSING_CAPABILITY, "cap", NULL);
    assert_int_equal(lg_mcp_era_stamp("tools/call", m), 400);
    json_decref(m);
    json_decref(id);
}

static void test_mrtr_seal_open(void **state)
{
    (void)state;
    json_t *st = json_pack("{s:s,s:i}", "kind", "multi-round", "round", 2);
    char *sealed = lg_mcp_mrtr_seal(st, "key_a");
    json_t *back = lg_mcp_mrtr_open(sealed, strlen(sealed), "key_a");
    assert_non_null(back);
    assert_true(json_equal(back, st)); /* the expiry is the seal's own business */
    json_decref(back);
    /* another key, no key, any changed byte, a truncated MAC, garbage: refused */
    assert_null(lg_mcp_mrtr_open(sealed, strlen(sealed), "key_b"));
    assert_null(lg_mcp_mrtr_open(sealed, strlen(sealed), NULL));
    for (size_t i = 0, len = strlen(sealed); i < len; i += 7) {
        char *t = strdup(sealed);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_null(lg_mcp_mrtr_open(t, strlen(t), "key_a"));
        free(t);
    }
    assert_null(lg_mcp_mrtr_open(sealed, strlen(sealed) - 2, "key_a"));
    size_t n = strlen(sealed);
    char *tampered = malloc(n + 10);
    snprintf(tampered, n + 10, "%s-TAMPERED", sealed);
    assert_null(lg_mcp_mrtr_open(tampered, strlen(tampered), "key_a"));
    free(tampered);
    assert_null(lg_mcp_mrtr_open("{\"kind\":\"x\"}", 12, "key_a"));
    assert_null(lg_mcp_mrtr_open("", 0, "key_a"));
    /* expiry */
    lg__mcp_mrtr_set_clock(1000000);
    char *old = lg_mcp_mrtr_seal(st, NULL);
    lg__mcp_mrtr_set_clock(1000000 + LG_MCP_MRTR_TTL_S - 1);
    back = lg_mcp_mrtr_open(old, strlen(old), NULL);
    assert_non_null(back);
    json_decref(back);
    lg__mcp_mrtr_set_clock(1000000 + LG_MCP_MRTR_TTL_S + 1);
    assert_null(lg_mcp_mrtr_open(old, strlen(old), NULL));
    lg__mcp_mrtr_set_clock(0);
    free(old);
    free(sealed);
    json_decref(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_era_of),
        cmocka_unit_test(test_era_check_order),
        cmocka_unit_test(test_era_stamp),
        cmocka_unit_test(test_mrtr_seal_open),
    };
    return cmocka_run_group_tests_name("mcp_era", tests, NULL, NULL);
}
