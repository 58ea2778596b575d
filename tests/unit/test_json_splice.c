/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the splice writer (src/json/splice.c): replace, remove,
 * set-or-append and append edits, duplicate keys, escaped keys, the buffer
 * cap with roll-back, and the string/number writers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>
#include <jansson.h>
#include "json/splice.h"

#define EDIT(op, k, v)                                                                                                             \
    {                                                                                                                              \
        op, k, sizeof(k) - 1, v, sizeof(v) - 1                                                                                     \
    }

static void splice_expect(const char *in, const lg_json_edit_t *e, size_t n, const char *want)
{
    lg_json_span_t obj;
    assert_int_equal(lg_json_validate(in, strlen(in), &obj, NULL), 0);
    lg_buf_t b;
    lg_buf_init(&b, 1 << 16);
    assert_int_equal(lg_json_splice(&b, obj, e, n), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(lg_json_validate(b.data, b.len, NULL, NULL), 0);
    lg_buf_dispose(&b);
}

static void test_splice_replace_remove_append(void **state)
{
    (void)state;
    const lg_json_edit_t e[] = {
        EDIT(LG_JSON_EDIT_SET, "model", "\"up-model\""),
        EDIT(LG_JSON_EDIT_REMOVE, "models", ""),
        EDIT(LG_JSON_EDIT_REMOVE, "provider", ""),
        EDIT(LG_JSON_EDIT_APPEND, "stream", "true"),
    };
    splice_expect("{ \"model\" : \"pub\", \"models\":[\"a\",\"b\"], \"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                  " \"provider\":{\"order\":[\"x\"]} }",
                  e, 4, "{\"model\":\"up-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}");
}

static void test_splice_set_appends_when_absent_replace_does_not(void **state)
{
    (void)state;
    const lg_json_edit_t e[] = {
        EDIT(LG_JSON_EDIT_SET, "id", "\"gen-1\""),
        EDIT(LG_JSON_EDIT_REPLACE, "usage", "{}"),
        EDIT(LG_JSON_EDIT_SET, "provider", "\"P\""),
    };
    splice_expect("{\"id\":\"x\",\"a\":1}", e, 3, "{\"id\":\"gen-1\",\"a\":1,\"provider\":\"P\"}");
    splice_expect("{}", e, 3, "{\"id\":\"gen-1\",\"provider\":\"P\"}");
    splice_expect("{\"usage\":{\"total_tokens\":3}}", e, 3, "{\"usage\":{},\"id\":\"gen-1\",\"provider\":\"P\"}");
}

static void test_splice_duplicates_and_escaped_keys(void **state)
{
    (void)state;
    /* both spellings of "model" are the same key: replaced once, the duplicate dropped (no ambiguity upstream) */
    const lg_json_edit_t e[] = {EDIT(LG_JSON_EDIT_SET, "model", "\"m\""), EDIT(LG_JSON_EDIT_REMOVE, "debug", "")};
    splice_expect("{\"model\":\"a\",\"x\":0,\"m\\u006fdel\":\"b\",\"debug\":{},\"debug\":1}", e, 2, "{\"model\":\"m\",\"x\":0}");
    /* first edit for a key wins: REMOVE then SET of the same key removes it and appends nothing */
    const lg_json_edit_t e2[] = {EDIT(LG_JSON_EDIT_REMOVE, "k", ""), EDIT(LG_JSON_EDIT_SET, "k", "1")};
    splice_expect("{\"k\":0,\"j\":2}", e2, 2, "{\"j\":2}");
    splice_expect("{\"j\":2}", e2, 2, "{\"j\":2}");
    /* keys needing escapes are written escaped */
    const lg_json_edit_t e3[] = {EDIT(LG_JSON_EDIT_APPEND, "a\"b\n", "null")};
    splice_expect("{\"z\":1}", e3, 1, "{\"z\":1,\"a\\\"b\\n\":null}");
    /* untouched members keep their bytes exactly, escapes included */
    splice_expect("{\"s\":\"\\u00e9\\n\",\"n\":1.50e+2}", NULL, 0, "{\"s\":\"\\u00e9\\n\",\"n\":1.50e+2}");
}

static void test_splice_cap_rolls_back(void **state)
{
    (void)state;
    const char *in = "{\"model\":\"a\",\"messages\":[1,2,3]}";
    lg_json_span_t obj;
    assert_int_equal(lg_json_validate(in, strlen(in), &obj, NULL), 0);
    const lg_json_edit_t e[] = {EDIT(LG_JSON_EDIT_SET, "model", "\"a-much-longer-model-name\"")};
    lg_buf_t b;
    lg_buf_init(&b, 20);
    assert_int_equal(lg_buf_append(&b, "pre", 3), 0);
    assert_int_equal(lg_json_splice(&b, obj, e, 1), -1);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "pre");
    lg_buf_dispose(&b);
    /* not an object, too many edits */
    lg_buf_init(&b, 1024);
    lg_json_span_t arr;
    assert_int_equal(lg_json_validate("[1]", 3, &arr, NULL), 0);
    assert_int_equal(lg_json_splice(&b, arr, e, 1), -1);
    assert_int_equal(lg_json_splice(&b, obj, e, LG_JSON_MAX_EDITS + 1), -1);
    assert_int_equal(b.len, 0);
    lg_buf_dispose(&b);
}

static void test_splice_write_string_escapes_roundtrip(void **state)
{
    (void)state;
    const char raw[] = "q\"b\\s/\b\f\n\r\t\x01\x1f caf\xC3\xA9";
    lg_buf_t b;
    lg_buf_init(&b, 1024);
    assert_int_equal(lg_json_write_string(&b, raw, sizeof(raw) - 1), 0);
    assert_string_equal(b.data, "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001F caf\xC3\xA9\"");
    lg_json_span_t s;
    assert_int_equal(lg_json_validate(b.data, b.len, &s, NULL), 0);
    char out[64];
    size_t n;
    assert_int_equal(lg_json_unescape(s, out, sizeof(out), &n), 0);
    assert_int_equal(n, sizeof(raw) - 1);
    assert_memory_equal(out, raw, n);
    /* a full buffer rolls back */
    lg_buf_t small;
    lg_buf_init(&small, 4);
    assert_int_equal(lg_json_write_string(&small, "abcdef", 6), -1);
    assert_int_equal(small.len, 0);
    lg_buf_dispose(&small);
    lg_buf_dispose(&b);
}

static void test_splice_write_numbers(void **state)
{
    (void)state;
    lg_buf_t b;
    lg_buf_init(&b, 1024);
    assert_int_equal(lg_json_write_int(&b, INT64_MIN), 0);
    assert_string_equal(b.data, "-9223372036854775808");
    lg_buf_reset(&b);
    assert_int_equal(lg_json_write_double(&b, 0.1), 0);
    assert_string_equal(b.data, "0.1");
    lg_buf_reset(&b);
    assert_int_equal(lg_json_write_double(&b, 1.0 / 3.0), 0);
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    assert_true(json_real_value(v) == 1.0 / 3.0);
    json_decref(v);
    lg_buf_reset(&b);
    assert_int_equal(lg_json_write_double(&b, INFINITY), 0);
    assert_string_equal(b.data, "0");
    lg_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splice_replace_remove_append),
        cmocka_unit_test(test_splice_set_appends_when_absent_replace_does_not),
        cmocka_unit_test(test_splice_duplicates_and_escaped_keys),
        cmocka_unit_test(test_splice_cap_rolls_back),
        cmocka_unit_test(test_splice_write_string_escapes_roundtrip),
        cmocka_unit_test(test_splice_write_numbers),
    };
    return cmocka_run_group_tests_name("json_splice", tests, NULL, NULL);
}
