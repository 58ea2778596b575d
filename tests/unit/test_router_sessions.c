/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/router/sessions.c: get/put/replace/remove, TTL expiry (an expired entry is gone and dropped),
 * the entry cap evicting the least recently used (a read refreshes), the byte cap, refused oversized keys and values,
 * and four threads hammering one table (run under the sanitizers for races).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "router/sessions.h"

#define PUT(t, k, v, now, ttl, lim) lg_session_put((t), (k), strlen(k), (v), strlen(v), (now), (ttl), (lim))
#define GET(t, k, now, buf) lg_session_get((t), (k), strlen(k), (now), (buf), sizeof(buf))

static void test_put_get_replace_remove(void **state)
{
    (void)state;
    lg_session_table_t *t = lg_session_table_create();
    char buf[64];
    assert_int_equal(GET(t, "s1", 0, buf), -1);
    PUT(t, "s1", "up1\x1fmodel", 1000, 5000, NULL);
    assert_int_equal(GET(t, "s1", 1000, buf), 9);
    assert_memory_equal(buf, "up1\x1fmodel", 10);
    PUT(t, "s1", "up2", 1000, 5000, NULL);
    assert_int_equal(GET(t, "s1", 1001, buf), 3);
    assert_string_equal(buf, "up2");
    lg_session_counts_t c;
    lg_session_table_counts(t, &c);
    assert_int_equal(c.entries, 1);
    lg_session_remove(t, "s1", 2);
    assert_int_equal(GET(t, "s1", 1001, buf), -1);
    lg_session_table_counts(t, &c);
    assert_int_equal(c.entries, 0);
    assert_int_equal(c.bytes, 0);
    /* a value longer than the caller's buffer is not truncated silently */
    char small[3];
    PUT(t, "s2", "abcdef", 0, 100, NULL);
    assert_int_equal(lg_session_get(t, "s2", 2, 1, small, sizeof(small)), -1);
    lg_session_table_destroy(t);
}

static void test_ttl(void **state)
{
    (void)state;
    lg_session_table_t *t = lg_session_table_create();
    char buf[16];
    PUT(t, "a", "x", 0, 1000, NULL);
    assert_int_equal(GET(t, "a", 999, buf), 1);
    assert_int_equal(GET(t, "a", 1000, buf), -1);
    lg_session_counts_t c;
    lg_session_table_counts(t, &c);
    assert_int_equal(c.entries, 0); /* dropped on the expired read */
    /* a put refreshes the expiry */
    PUT(t, "b", "y", 0, 1000, NULL);
    PUT(t, "b", "y", 900, 1000, NULL);
    assert_int_equal(GET(t, "b", 1500, buf), 1);
    /* ttl <= 0 stores nothing */
    PUT(t, "c", "z", 0, 0, NULL);
    assert_int_equal(GET(t, "c", 0, buf), -1);
    lg_session_table_destroy(t);
}

static void test_entry_cap_lru(void **state)
{
    (void)state;
    lg_session_table_t *t = lg_session_table_create();
    lg_session_limits_t lim = {.max_entries = 16 * 4, .max_bytes = 0}; /* 4 a shard */
    char key[32], buf[16];
    for (int i = 0; i < 2000; ++i) {
        snprintf(key, sizeof(key), "k%d", i);
        PUT(t, key, "v", 0, 1000000, &lim);
        /* k0 stays the most recently used in its shard */
        assert_int_equal(GET(t, "k0", 0, buf), 1);
    }
    lg_session_counts_t c;
    lg_session_table_counts(t, &c);
    assert_true(c.entries <= 64);
    assert_true(c.entries >= 16); /* every shard keeps something */
    assert_true(c.evictions >= 2000 - 64);
    assert_int_equal(GET(t, "k0", 0, buf), 1);
    assert_int_equal(GET(t, "k1999", 0, buf), 1); /* the newest survives */
    assert_int_equal(GET(t, "k1", 0, buf), -1);   /* an old, unused one is gone */
    lg_session_table_destroy(t);
}

static void test_byte_cap_and_refusals(void **state)
{
    (void)state;
    lg_session_table_t *t = lg_session_table_create();
    lg_session_limits_t lim = {.max_entries = 1000000, .max_bytes = 16 * 1024};
    char key[32], val[400], buf[512];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 5000; ++i) {
        snprintf(key, sizeof(key), "key-%d", i);
        PUT(t, key, val, 0, 1000000, &lim);
    }
    lg_session_counts_t c;
    lg_session_table_counts(t, &c);
    assert_true(c.bytes <= 16 * 1024);
    assert_true(c.entries > 0);
    assert_int_equal(GET(t, "key-4999", 0, buf), (long)strlen(val));
    /* oversized keys and values are refused, not truncated */
    char big[LG_SESSION_MAX_KEY + 2];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    PUT(t, big, "v", 0, 1000, NULL);
    assert_int_equal(GET(t, big, 0, buf), -1);
    char bigv[LG_SESSION_MAX_VALUE + 2];
    memset(bigv, 'v', sizeof(bigv) - 1);
    bigv[sizeof(bigv) - 1] = '\0';
    PUT(t, "kv", bigv, 0, 1000, NULL);
    assert_int_equal(GET(t, "kv", 0, buf), -1);
    assert_int_equal(lg_session_get(t, "", 0, 0, buf, sizeof(buf)), -1);
    lg_session_table_destroy(t);
}

static lg_session_table_t *shared_for_threads;

static void *hammer(void *arg)
{
    int id = (int)(intptr_t)arg;
    lg_session_limits_t lim = {.max_entries = 256, .max_bytes = 0};
    char key[32], val[32], buf[64];
    for (int i = 0; i < 20000; ++i) {
        snprintf(key, sizeof(key), "s%d", (i * 7 + id) % 1000);
        snprintf(val, sizeof(val), "w%d", id);
        if (i % 3 == 0)
            PUT(shared_for_threads, key, val, i, 5000, &lim);
        else if (i % 11 == 0)
            lg_session_remove(shared_for_threads, key, strlen(key));
        else
            (void)GET(shared_for_threads, key, i, buf);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    shared_for_threads = lg_session_table_create();
    pthread_t th[4];
    for (int i = 0; i < 4; ++i)
        pthread_create(&th[i], NULL, hammer, (void *)(intptr_t)i);
    for (int i = 0; i < 4; ++i)
        pthread_join(th[i], NULL);
    lg_session_counts_t c;
    lg_session_table_counts(shared_for_threads, &c);
    assert_true(c.entries <= 256);
    lg_session_table_destroy(shared_for_threads);
    assert_non_null(lg_session_table_shared());
    assert_ptr_equal(lg_session_table_shared(), lg_session_table_shared());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace_remove), cmocka_unit_test(test_ttl),     cmocka_unit_test(test_entry_cap_lru),
        cmocka_unit_test(test_byte_cap_and_refusals),  cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
