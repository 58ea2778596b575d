/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the tree writer (src/json/tree.c): the same text as
 * json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(15)) for every JSON type,
 * member skipping, the cap with roll-back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "json/tree.h"

static void same_as_jansson(const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    char *want = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    lg_buf_t b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_json_write_tree(&b, j), 0);
    assert_string_equal(b.data, want);
    free(want);
    lg_buf_dispose(&b);
    json_decref(j);
}

static void test_tree_prints_like_json_dumps(void **state)
{
    (void)state;
    same_as_jansson(
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \\\"q\\\" \\u00e9\\n\\u0001\"},\"finish_reason\":null}],"
        "\"usage\":{\"prompt_tokens\":9,\"cost\":0.000015,\"x\":1e300,\"y\":-0.5,\"z\":3.0},\"b\":[true,false,null,[],{}]}");
    same_as_jansson("[1,-9223372036854775807,0.1,100.0,1.5e-7,\"/\"]");
    same_as_jansson("\"just a string\"");
    same_as_jansson("42");
}

static void test_tree_members_skip_and_cap(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s,s:i,s:[i]}", "id", "x", "n", 1, "choices", 2);
    static const char *const skip[] = {"id", NULL};
    lg_buf_t b;
    lg_buf_init(&b, 1024);
    assert_int_equal(lg_buf_append(&b, "{\"a\":0", 6), 0);
    assert_int_equal(lg_json_write_members(&b, o, skip), 0);
    assert_string_equal(b.data, "{\"a\":0,\"n\":1,\"choices\":[2]");
    lg_buf_dispose(&b);
    lg_buf_init(&b, 8);
    assert_int_equal(lg_json_write_tree(&b, o), -1);
    assert_int_equal(b.len, 0);
    lg_buf_dispose(&b);
    lg_buf_init(&b, 64);
    assert_int_equal(lg_json_write_members(&b, json_array_get(json_object_get(o, "choices"), 0), NULL), -1);
    lg_buf_dispose(&b);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_prints_like_json_dumps),
        cmocka_unit_test(test_tree_members_skip_and_cap),
    };
    return cmocka_run_group_tests_name("json_tree", tests, NULL, NULL);
}
