/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the JSON scanner (src/json/scan.c): RFC 8259 validity
 * (accepted and rejected texts, UTF-8, surrogates, depth), navigation by
 * spans, key comparison with escapes, unescaping and numbers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "json/scan.h"

static int valid(const char *s)
{
    return lg_json_validate(s, strlen(s), NULL, NULL) == 0;
}

static void test_scan_accepts_rfc_texts(void **state)
{
    (void)state;
    static const char *const ok[] = {"{}",
                                     "[]",
                                     " \t\r\n{ } ",
                                     "0",
                                     "-0",
                                     "1.5e-3",
                                     "-12E+2",
                                     "\"\"",
                                     "true",
                                     "false",
                                     "null",
                                     "[1,2,[3,{\"a\":null}]]",
                                     "{\"a\":{\"b\":[true,false,null]},\"c\":\"d\"}",
                                     "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\"",
                                     "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"",
                                     "\"\\u0000\"",
                                     "123456789012345678901234567890",
                                     "[1e400]",
                                     "\"\xEF\xBF\xBF\"",
                                     "\"\xF4\x8F\xBF\xBF\""};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); ++i)
        if (!valid(ok[i]))
            fail_msg("rejected valid text %zu: %s", i, ok[i]);
}

static void test_scan_rejects_invalid_texts(void **state)
{
    (void)state;
    static const char *const bad[] = {"",
                                      " ",
                                      "{",
                                      "}",
                                      "{\"a\"}",
                                      "{\"a\":}",
                                      "{\"a\":1,}",
                                      "[1,]",
                                      "[,1]",
                                      "{a:1}",
                                      "{'a':1}",
                                      "01",
                                      "-",
                                      "1.",
                                      ".5",
                                      "1e",
                                      "1e+",
                                      "+1",
                                      "0x10",
                                      "NaN",
                                      "Infinity",
                                      "tru",
                                      "nul",
                                      "truex",
                                      "[true false]",
                                      "{} {}",
                                      "\"abc",
                                      "\"\\x\"",
                                      "\"\\u12\"",
                                      "\"\\uZZZZ\"",
                                      "\"tab\there\"",
                                      "\"nl\nhere\"",
                                      "\"\\uD800\"",
                                      "\"\\uD800\\u0041\"",
                                      "\"\\uDC00\"",
                                      "\"\xC0\xAF\"",
                                      "\"\xC3\"",
                                      "\"\xE0\x80\xAF\"",
                                      "\"\xED\xA0\x80\"",
                                      "\"\xF0\x80\x80\xAF\"",
                                      "\"\xF4\x90\x80\x80\"",
                                      "\"\xFF\"",
                                      "\"\x80\"",
                                      "[1]\x01",
                                      "\xEF\xBB\xBF{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        if (valid(bad[i]))
            fail_msg("accepted invalid text %zu: %s", i, bad[i]);
    /* a NUL byte inside the span is data, not a terminator */
    assert_int_equal(lg_json_validate("{}\0", 3, NULL, NULL), -1);
    assert_int_equal(lg_json_validate("\"a\0b\"", 5, NULL, NULL), -1);
}

static void test_scan_error_offset_and_reason(void **state)
{
    (void)state;
    lg_json_error_t e;
    assert_int_equal(lg_json_validate("{\"a\":tru}", 9, NULL, &e), -1);
    assert_int_equal(e.offset, 5);
    assert_string_equal(e.what, "invalid literal");
    assert_int_equal(lg_json_validate("[\"\xED\xA0\x80\"]", 6, NULL, &e), -1);
    assert_int_equal(e.offset, 2);
    assert_string_equal(e.what, "invalid UTF-8");
}

static void test_scan_depth_limit(void **state)
{
    (void)state;
    char buf[2 * (LG_JSON_MAX_DEPTH + 1) + 1];
    size_t d = LG_JSON_MAX_DEPTH;
    memset(buf, '[', d);
    memset(buf + d, ']', d);
    assert_int_equal(lg_json_validate(buf, 2 * d, NULL, NULL), 0);
    d = LG_JSON_MAX_DEPTH + 1;
    memset(buf, '[', d);
    memset(buf + d, ']', d);
    lg_json_error_t e;
    assert_int_equal(lg_json_validate(buf, 2 * d, NULL, &e), -1);
    assert_string_equal(e.what, "nesting too deep");
}

static void test_scan_root_span_excludes_whitespace(void **state)
{
    (void)state;
    const char *s = "  {\"a\" : [1, 2] }\n";
    lg_json_span_t root;
    assert_int_equal(lg_json_validate(s, strlen(s), &root, NULL), 0);
    assert_int_equal(root.type, LG_JSON_OBJECT);
    assert_int_equal(root.len, strlen("{\"a\" : [1, 2] }"));
    assert_ptr_equal(root.p, s + 2);
    assert_int_equal(lg_json_validate(" 42 ", 4, &root, NULL), 0);
    assert_int_equal(root.type, LG_JSON_NUMBER);
    assert_int_equal(root.len, 2);
}

static void test_scan_iterates_members_and_elements(void **state)
{
    (void)state;
    const char *s = "{ \"a\" : \"x,}\\\"]\" , \"b\":[1, {\"c\":2}, \"]\"] ,\"d\":-1.5e3,\"e\":{}}";
    lg_json_span_t root, k, v;
    assert_int_equal(lg_json_validate(s, strlen(s), &root, NULL), 0);
    lg_json_iter_t it;
    lg_json_iter_init(&it, root);
    const char *keys[] = {"\"a\"", "\"b\"", "\"d\"", "\"e\""};
    const char *vals[] = {"\"x,}\\\"]\"", "[1, {\"c\":2}, \"]\"]", "-1.5e3", "{}"};
    lg_json_type_t types[] = {LG_JSON_STRING, LG_JSON_ARRAY, LG_JSON_NUMBER, LG_JSON_OBJECT};
    for (size_t i = 0; i < 4; ++i) {
        assert_int_equal(lg_json_iter_member(&it, &k, &v), 1);
        assert_int_equal(k.len, strlen(keys[i]));
        assert_memory_equal(k.p, keys[i], k.len);
        assert_int_equal(v.len, strlen(vals[i]));
        assert_memory_equal(v.p, vals[i], v.len);
        assert_int_equal(v.type, types[i]);
    }
    assert_int_equal(lg_json_iter_member(&it, &k, &v), 0);
    assert_int_equal(lg_json_iter_member(&it, &k, &v), 0);

    lg_json_span_t arr;
    assert_int_equal(lg_json_get(root, "b", &arr), 1);
    assert_int_equal(lg_json_count(arr), 3);
    lg_json_iter_init(&it, arr);
    assert_int_equal(lg_json_iter_element(&it, &v), 1);
    assert_int_equal(v.type, LG_JSON_NUMBER);
    assert_int_equal(lg_json_iter_element(&it, &v), 1);
    assert_int_equal(v.type, LG_JSON_OBJECT);
    assert_int_equal(lg_json_iter_element(&it, &v), 1);
    assert_int_equal(v.type, LG_JSON_STRING);
    assert_int_equal(lg_json_iter_element(&it, &v), 0);
    assert_int_equal(lg_json_count(root), 4);

    lg_json_span_t empty;
    assert_int_equal(lg_json_get(root, "e", &empty), 1);
    assert_int_equal(lg_json_count(empty), 0);
    lg_json_iter_init(&it, empty);
    assert_int_equal(lg_json_iter_member(&it, &k, &v), 0);
    /* a scalar iterates nothing */
    lg_json_span_t d;
    assert_int_equal(lg_json_get(root, "d", &d), 1);
    lg_json_iter_init(&it, d);
    assert_int_equal(lg_json_iter_element(&it, &v), 0);
    assert_int_equal(lg_json_count(d), 0);
}

static void test_scan_find_last_duplicate_and_escaped_keys(void **state)
{
    (void)state;
    const char *s = "{\"model\":\"a\",\"m\\u006fdel\":\"b\",\"x\":1,\"\\\"q\":2,\"caf\\u00e9\":3}";
    lg_json_span_t root, v;
    assert_int_equal(lg_json_validate(s, strlen(s), &root, NULL), 0);
    assert_int_equal(lg_json_get(root, "model", &v), 1);
    assert_memory_equal(v.p, "\"b\"", 3); /* last one wins, escaped spelling counts */
    assert_int_equal(lg_json_get(root, "\"q", &v), 1);
    assert_memory_equal(v.p, "2", 1);
    assert_int_equal(lg_json_get(root, "caf\xC3\xA9", &v), 1);
    assert_memory_equal(v.p, "3", 1);
    /* a raw key with escapes never matches its own raw spelling: "a\\\\b" decodes to a\b */
    lg_json_span_t bs;
    assert_int_equal(lg_json_validate("\"a\\\\b\"", 6, &bs, NULL), 0);
    assert_int_equal(lg_json_key_eq(bs, "a\\\\b", 4), 0);
    assert_int_equal(lg_json_key_eq(bs, "a\\b", 3), 1);
    assert_int_equal(lg_json_get(root, "mode", &v), 0);
    assert_int_equal(v.type, LG_JSON_NONE);
    assert_int_equal(lg_json_get(root, "modell", &v), 0);
    /* find on a non-object */
    lg_json_span_t x;
    assert_int_equal(lg_json_get(root, "x", &x), 1);
    assert_int_equal(lg_json_get(x, "x", &v), 0);
}

static void test_scan_unescape(void **state)
{
    (void)state;
    const char *s = "\"a\\n\\\"b\\u00e9\\uD83D\\uDE00\\u0000z\"";
    lg_json_span_t str;
    assert_int_equal(lg_json_validate(s, strlen(s), &str, NULL), 0);
    char out[32];
    size_t n;
    assert_int_equal(lg_json_unescape(str, out, sizeof(out), &n), 0);
    const char want[] = "a\n\"b\xC3\xA9\xF0\x9F\x98\x80\0z";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    assert_int_equal(out[n], '\0');
    assert_int_equal(lg_json_str_len(str), n);
    assert_int_equal(lg_json_str_plain(str), 0);
    /* exactly fitting (value + NUL) works; one byte less fails but stays terminated */
    assert_int_equal(lg_json_unescape(str, out, n + 1, NULL), 0);
    assert_int_equal(lg_json_unescape(str, out, n, &n), -1);
    assert_true(n < sizeof(want) - 1);
    assert_int_equal(out[n], '\0');
    assert_int_equal(lg_json_unescape(str, out, 0, NULL), -1);

    lg_json_span_t plain;
    assert_int_equal(lg_json_validate("\"hello\"", 7, &plain, NULL), 0);
    assert_int_equal(lg_json_str_plain(plain), 1);
    assert_int_equal(lg_json_unescape(plain, out, 6, &n), 0);
    assert_string_equal(out, "hello");
    assert_int_equal(lg_json_unescape(plain, out, 5, &n), -1);
    assert_string_equal(out, "hell");
    size_t rn;
    const char *raw = lg_json_str_raw(plain, &rn);
    assert_int_equal(rn, 5);
    assert_memory_equal(raw, "hello", 5);
    /* not a string */
    lg_json_span_t num;
    assert_int_equal(lg_json_validate("5", 1, &num, NULL), 0);
    assert_int_equal(lg_json_unescape(num, out, sizeof(out), NULL), -1);
}

static void test_scan_numbers(void **state)
{
    (void)state;
    struct {
        const char *text;
        int is_int, int_ok;
        int64_t i;
        double d;
    } cases[] = {
        {"0", 1, 1, 0, 0},
        {"-0", 1, 1, 0, 0},
        {"42", 1, 1, 42, 42},
        {"-17", 1, 1, -17, -17},
        {"9223372036854775807", 1, 1, INT64_MAX, 9223372036854775807.0},
        {"-9223372036854775808", 1, 1, INT64_MIN, -9223372036854775808.0},
        {"9223372036854775808", 1, 0, 0, 9223372036854775808.0},
        {"1.0", 0, 0, 0, 1.0},
        {"1e2", 0, 0, 0, 100},
        {"-2.5E-1", 0, 0, 0, -0.25},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        lg_json_span_t s;
        assert_int_equal(lg_json_validate(cases[i].text, strlen(cases[i].text), &s, NULL), 0);
        assert_int_equal(s.type, LG_JSON_NUMBER);
        assert_int_equal(lg_json_is_integer(s), cases[i].is_int);
        int64_t v = -1;
        assert_int_equal(lg_json_int64(s, &v) == 0, cases[i].int_ok);
        if (cases[i].int_ok)
            assert_true(v == cases[i].i);
        double d;
        assert_int_equal(lg_json_double(s, &d), 0);
        assert_true(d == cases[i].d);
    }
    lg_json_span_t big;
    assert_int_equal(lg_json_validate("1e400", 5, &big, NULL), 0);
    double d;
    assert_int_equal(lg_json_double(big, &d), -1); /* not finite */
    lg_json_span_t str;
    assert_int_equal(lg_json_validate("\"1\"", 3, &str, NULL), 0);
    int64_t i;
    assert_int_equal(lg_json_int64(str, &i), -1);
    assert_int_equal(lg_json_double(str, &d), -1);
}

static void test_scan_reads_stay_inside_unvalidated_spans(void **state)
{
    (void)state;
    /* navigation on garbage must terminate and stay within the span (ASan checks the bounds) */
    static const char *const junk[] = {"{\"a", "{\"a\":", "[1,", "{\"a\":\"b", "[\"\\", "{,,,}", "[[[[", "{\"a\"::1}"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); ++i) {
        size_t n = strlen(junk[i]);
        char *copy = test_malloc(n);
        memcpy(copy, junk[i], n);
        lg_json_span_t s = lg_json_span_at(copy, copy + n), k, v;
        lg_json_iter_t it;
        lg_json_iter_init(&it, s);
        for (int guard = 0;
             guard < 100 && (s.type == LG_JSON_OBJECT ? lg_json_iter_member(&it, &k, &v) : lg_json_iter_element(&it, &v)); ++guard)
            ;
        (void)lg_json_count(s);
        lg_json_span_t f;
        (void)lg_json_get(s, "a", &f);
        test_free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_accepts_rfc_texts),
        cmocka_unit_test(test_scan_rejects_invalid_texts),
        cmocka_unit_test(test_scan_error_offset_and_reason),
        cmocka_unit_test(test_scan_depth_limit),
        cmocka_unit_test(test_scan_root_span_excludes_whitespace),
        cmocka_unit_test(test_scan_iterates_members_and_elements),
        cmocka_unit_test(test_scan_find_last_duplicate_and_escaped_keys),
        cmocka_unit_test(test_scan_unescape),
        cmocka_unit_test(test_scan_numbers),
        cmocka_unit_test(test_scan_reads_stay_inside_unvalidated_spans),
    };
    return cmocka_run_group_tests_name("json_scan", tests, NULL, NULL);
}
