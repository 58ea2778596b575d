/* SPDX-License-Identifier: MIT */
/*
 * The response cache's store and its pure pieces (src/pipeline/cache.c): LRU
 * order and eviction under the byte cap, TTL expiry, replacement, removal, a
 * replay's reference surviving eviction, the size limit, the key recipe
 * (whitespace normalised, key order and every part counting) and the
 * X-OpenRouter-Cache-TTL parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "pipeline/cache.h"

static void key_of(int n, uint8_t key[LG_RCACHE_KEY_LEN])
{
    char body[32];
    snprintf(body, sizeof(body), "{\"n\":%d}", n);
    assert_int_equal(lg_rcache_key("key_a", "m", "chat", 0, body, strlen(body), key), 0);
}

static int put(lg_rcache_t *c, int n, size_t len, int64_t now, uint32_t ttl)
{
    static char bytes[65536];
    memset(bytes, 'a' + n % 26, sizeof(bytes));
    lg_rcache_entry_t e;
    memset(&e, 0, sizeof(e));
    key_of(n, e.key);
    e.created_ms = now;
    e.expires_ms = now + (int64_t)ttl * 1000;
    e.ttl_s = ttl;
    snprintf(e.source_id, sizeof(e.source_id), "gen-%d", n);
    snprintf(e.provider, sizeof(e.provider), "up1");
    e.body = bytes;
    e.len = len;
    return lg_rcache_store(c, &e);
}

static int present(lg_rcache_t *c, int n, int64_t now)
{
    uint8_t key[LG_RCACHE_KEY_LEN];
    key_of(n, key);
    const lg_rcache_entry_t *e = lg_rcache_lookup(c, key, now);
    if (e != NULL)
        lg_rcache_release(c, e);
    return e != NULL;
}

static void test_lookup_store_replace_remove(void **state)
{
    (void)state;
    lg_rcache_t *c = lg_rcache_create(1024 * 1024);
    assert_false(present(c, 1, 0));
    assert_int_equal(put(c, 1, 100, 0, 10), 0);
    uint8_t key[LG_RCACHE_KEY_LEN];
    key_of(1, key);
    const lg_rcache_entry_t *e = lg_rcache_lookup(c, key, 5);
    assert_non_null(e);
    assert_int_equal(e->len, 100);
    assert_string_equal(e->source_id, "gen-1");
    assert_int_equal(e->body[0], 'b');
    lg_rcache_release(c, e);
    assert_int_equal(put(c, 1, 200, 1, 10), 0); /* replaces */
    e = lg_rcache_lookup(c, key, 5);
    assert_int_equal(e->len, 200);
    lg_rcache_release(c, e);
    lg_rcache_stats_t st;
    lg_rcache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 1);
    lg_rcache_remove(c, key);
    assert_false(present(c, 1, 5));
    lg_rcache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    lg_rcache_destroy(c);
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    lg_rcache_t *c = lg_rcache_create(1024 * 1024);
    assert_int_equal(put(c, 1, 10, 1000, 2), 0);
    assert_true(present(c, 1, 2999));
    assert_false(present(c, 1, 3000)); /* expires_ms is the first instant it is gone */
    lg_rcache_stats_t st;
    lg_rcache_stats(c, &st);
    assert_int_equal(st.expirations, 1);
    assert_int_equal(st.entries, 0);
    lg_rcache_destroy(c);
}

static void test_lru_eviction_under_the_cap(void **state)
{
    (void)state;
    /* each entry ~ 8 KiB + node: a 128 KiB cap holds at most 15 */
    lg_rcache_t *c = lg_rcache_create(128 * 1024);
    for (int i = 0; i < 10; i++)
        assert_int_equal(put(c, i, 8192, 0, 100), 0);
    assert_true(present(c, 0, 1)); /* 0 is now the most recently used */
    for (int i = 10; i < 20; i++)
        assert_int_equal(put(c, i, 8192, 0, 100), 0);
    lg_rcache_stats_t st;
    lg_rcache_stats(c, &st);
    assert_true(st.bytes <= 128 * 1024);
    assert_true(st.evictions >= 5);
    assert_true(present(c, 0, 1));  /* touched: survived */
    assert_false(present(c, 1, 1)); /* the oldest untouched went first */
    assert_true(present(c, 19, 1));
    /* shrinking the cap evicts at once */
    lg_rcache_set_max_bytes(c, 20000);
    lg_rcache_stats(c, &st);
    assert_true(st.bytes <= 20000);
    assert_true(present(c, 0, 1) || present(c, 19, 1));
    lg_rcache_destroy(c);
}

static void test_too_large_and_reference_survives(void **state)
{
    (void)state;
    lg_rcache_t *c = lg_rcache_create(128 * 1024);
    assert_int_equal(put(c, 1, 60000, 0, 100), -1); /* over an eighth of the cap */
    lg_rcache_stats_t st;
    lg_rcache_stats(c, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(put(c, 2, 1000, 0, 100), 0);
    uint8_t key[LG_RCACHE_KEY_LEN];
    key_of(2, key);
    const lg_rcache_entry_t *e = lg_rcache_lookup(c, key, 1);
    assert_non_null(e);
    lg_rcache_retain(e);
    lg_rcache_remove(c, key); /* a replay keeps reading */
    assert_int_equal(e->body[999], 'c');
    lg_rcache_release(c, e);
    assert_int_equal(e->len, 1000);
    lg_rcache_release(c, e); /* freed here (ASan checks) */
    lg_rcache_destroy(c);
}

static void test_normalise(void **state)
{
    (void)state;
    char out[128];
    const char *in = "{ \"a\" : [ 1 , 2 ],\n\t\"s\": \"x y\\\" z \" ,\r\n \"e\":\"\\\\\" }";
    size_t n = lg_rcache_normalise(in, strlen(in), out, sizeof(out));
    out[n] = '\0';
    assert_string_equal(out, "{\"a\":[1,2],\"s\":\"x y\\\" z \",\"e\":\"\\\\\"}");
    /* the reported length is the full one even when out is short */
    assert_int_equal(lg_rcache_normalise(in, strlen(in), out, 4), n);
}

static void test_key_recipe(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    const char *compact = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}";
    const char *spaced = "{ \"model\": \"m\",\n \"messages\": [ {\"role\": \"user\", \"content\": \"hi there\"} ] }";
    const char *reordered = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}],\"model\":\"m\"}";
    const char *inner = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi  there\"}]}";
    assert_int_equal(lg_rcache_key("k", "m", "chat", 0, compact, strlen(compact), a), 0);
    assert_int_equal(lg_rcache_key("k", "m", "chat", 0, spaced, strlen(spaced), b), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(lg_rcache_key("k", "m", "chat", 0, reordered, strlen(reordered), b), 0);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(lg_rcache_key("k", "m", "chat", 0, inner, strlen(inner), b), 0);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(lg_rcache_key("k2", "m", "chat", 0, compact, strlen(compact), b), 0);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(lg_rcache_key("k", "m", "chat", 1, compact, strlen(compact), b), 0);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(lg_rcache_key("k", "m", "messages", 0, compact, strlen(compact), b), 0);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(lg_rcache_key("k", "m2", "chat", 0, compact, strlen(compact), b), 0);
    assert_memory_not_equal(a, b, 32);
    /* parts are delimited: "ab"+"c" is not "a"+"bc" */
    assert_int_equal(lg_rcache_key("ab", "c", "chat", 0, "", 0, a), 0);
    assert_int_equal(lg_rcache_key("a", "bc", "chat", 0, "", 0, b), 0);
    assert_memory_not_equal(a, b, 32);
    /* a body longer than the hashing buffer normalises the same across the buffer boundary */
    static char big1[20000], big2[40000];
    size_t n1 = 0, n2 = 0;
    big1[n1++] = '[';
    big2[n2++] = '[';
    for (int i = 0; i < 3000; i++) {
        n1 += (size_t)snprintf(big1 + n1, sizeof(big1) - n1, "%s%d", i ? "," : "", i);
        n2 += (size_t)snprintf(big2 + n2, sizeof(big2) - n2, "%s %d\n", i ? " ," : "", i);
    }
    big1[n1++] = ']';
    big2[n2++] = ']';
    assert_int_equal(lg_rcache_key("k", "m", "chat", 0, big1, n1, a), 0);
    assert_int_equal(lg_rcache_key("k", "m", "chat", 0, big2, n2, b), 0);
    assert_memory_equal(a, b, 32);
}

static void test_parse_ttl(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int ok;
        uint32_t want;
    } cases[] = {
        {"300", 1, 300},
        {"60abc", 1, 60},
        {"1.5", 1, 1},
        {"0", 1, 1},
        {"86400", 1, 86400},
        {"86401", 1, 86400},
        {"99999999999999999999999999", 1, 86400},
        {" 42", 1, 42},
        {"abc", 0, 0},
        {"", 0, 0},
        {"-5", 0, 0},
        {"+5", 0, 0},
        {".5", 0, 0},
        {"00007", 1, 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t ttl = 12345;
        int ok = lg_rcache_parse_ttl(cases[i].in, strlen(cases[i].in), &ttl);
        assert_int_equal(ok, cases[i].ok);
        assert_int_equal(ttl, cases[i].ok ? cases[i].want : 12345);
    }
    uint32_t ttl = 0;
    assert_int_equal(lg_rcache_parse_ttl("123", 2, &ttl), 1); /* length-bounded, no NUL needed */
    assert_int_equal(ttl, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_store_replace_remove),
        cmocka_unit_test(test_ttl_expiry),
        cmocka_unit_test(test_lru_eviction_under_the_cap),
        cmocka_unit_test(test_too_large_and_reference_survives),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_key_recipe),
        cmocka_unit_test(test_parse_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
