/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for mcp/session.c: random hex ids, key and endpoint binding,
 * idle TTL on a fake clock (busy sessions and attached GET streams do not
 * expire), DELETE, subscriptions, log levels, the one-GET-stream rule, and
 * concurrent use from several threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mcp/session.h"

static int64_t fake_now;

static int64_t fake_clock(void)
{
    return fake_now;
}

static int setup(void **state)
{
    (void)state;
    fake_now = 1000000;
    lg_mcp_session_set_clock(fake_clock);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_mcp_session_reset();
    lg_mcp_session_set_clock(NULL);
    return 0;
}

static lg_mcp_session_t *find(lg_mcp_session_t *s, const char *key, const char *server)
{
    return lg_mcp_session_lookup(lg_mcp_session_id(s), strlen(lg_mcp_session_id(s)), key, server);
}

static void test_session_ids_random_hex(void **state)
{
    (void)state;
    char a[LG_MCP_SESSION_ID_LEN + 1], b[LG_MCP_SESSION_ID_LEN + 1];
    assert_int_equal(lg__mcp_session_new_id(a), 0);
    assert_int_equal(lg__mcp_session_new_id(b), 0);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_string_not_equal(a, b);
}

static void test_session_create_lookup_bindings(void **state)
{
    (void)state;
    json_t *caps = json_pack("{s:{},s:{}}", "sampling", "elicitation");
    lg_mcp_session_t *s = lg_mcp_session_create("key_a", "", "2025-11-25", caps, NULL, 60);
    json_decref(caps);
    assert_non_null(s);
    assert_string_equal(lg_mcp_session_version(s), "2025-11-25");
    assert_string_equal(lg_mcp_session_key_id(s), "key_a");
    assert_true(lg_mcp_session_client_has(s, "sampling"));
    assert_false(lg_mcp_session_client_has(s, "roots"));
    assert_int_equal(lg_mcp_session_count(), 1);

    lg_mcp_session_t *f = find(s, "key_a", "");
    assert_ptr_equal(f, s);
    lg_mcp_session_unref(f);
    /* another key, no key, another endpoint, a wrong id: all "unknown" */
    assert_null(find(s, "key_b", ""));
    assert_null(find(s, NULL, ""));
    assert_null(find(s, "key_a", "conformance"));
    assert_null(lg_mcp_session_lookup("0123", 4, "key_a", ""));
    assert_null(lg_mcp_session_lookup("0123456789abcdef0123456789abcdef", 32, "key_a", ""));

    lg_mcp_session_t *open = lg_mcp_session_create(NULL, "conformance", "2025-06-18", NULL, NULL, 60);
    f = find(open, NULL, "conformance");
    assert_ptr_equal(f, open);
    assert_null(lg_mcp_session_key_id(open));
    assert_non_null(lg_mcp_session_client_caps(open));
    lg_mcp_session_unref(f);
    assert_null(find(open, "key_a", "conformance"));
    lg_mcp_session_unref(open);
    lg_mcp_session_unref(s);
}

static void test_session_idle_ttl(void **state)
{
    (void)state;
    lg_mcp_session_t *s = lg_mcp_session_create(NULL, "", "2025-11-25", NULL, NULL, 10);
    fake_now += 9000;
    lg_mcp_session_t *f = find(s, NULL, ""); /* refreshes the idle timer */
    assert_non_null(f);
    lg_mcp_session_unref(f);
    fake_now += 9000;
    f = find(s, NULL, "");
    assert_non_null(f);
    lg_mcp_session_unref(f);
    fake_now += 10001;
    assert_null(find(s, NULL, ""));
    assert_true(lg_mcp_session_closed(s));
    assert_int_equal(lg_mcp_session_count(), 0);
    lg_mcp_session_unref(s);
}

static void test_session_busy_and_stream_keep_alive(void **state)
{
    (void)state;
    lg_mcp_session_t *a = lg_mcp_session_create(NULL, "", "2025-11-25", NULL, NULL, 5);
    lg_mcp_session_t *b = lg_mcp_session_create(NULL, "", "2025-11-25", NULL, NULL, 5);
    lg_mcp_session_t *c = lg_mcp_session_create(NULL, "", "2025-11-25", NULL, NULL, 5);
    lg_mcp_session_busy(a, 1);
    assert_int_equal(lg_mcp_session_attach_stream(b, 1, 42), 0);
    fake_now += 60000;
    assert_int_equal(lg_mcp_session_sweep(), 1); /* only c */
    assert_true(lg_mcp_session_closed(c));
    assert_false(lg_mcp_session_closed(a));
    assert_false(lg_mcp_session_closed(b));
    lg_mcp_session_busy(a, -1);
    lg_mcp_session_detach_stream(b, 1, 41); /* not the attached one: no-op */
    fake_now += 60000;
    assert_int_equal(lg_mcp_session_sweep(), 1); /* a: idle since its call ended */
    lg_mcp_session_detach_stream(b, 1, 42);
    fake_now += 6000;
    assert_int_equal(lg_mcp_session_sweep(), 1);
    assert_int_equal(lg_mcp_session_count(), 0);
    lg_mcp_session_unref(a);
    lg_mcp_session_unref(b);
    lg_mcp_session_unref(c);
}

static void test_session_delete(void **state)
{
    (void)state;
    lg_mcp_session_t *s = lg_mcp_session_create("k", "", "2025-11-25", NULL, NULL, 60);
    lg_mcp_session_t *held = find(s, "k", "");
    lg_mcp_session_close(s);
    lg_mcp_session_unref(s);
    assert_true(lg_mcp_session_closed(held)); /* a request in flight still holds it safely */
    assert_null(find(held, "k", ""));
    assert_int_equal(lg_mcp_session_count(), 0);
    /* no new GET stream on a closed session */
    assert_int_equal(lg_mcp_session_attach_stream(held, 0, 1), -1);
    lg_mcp_session_unref(held);
}

static void test_session_one_get_stream(void **state)
{
    (void)state;
    lg_mcp_session_t *s = lg_mcp_session_create(NULL, "", "2025-11-25", NULL, NULL, 60);
    unsigned w;
    uint64_t serial;
    assert_int_equal(lg_mcp_session_stream(s, &w, &serial), -1);
    assert_int_equal(lg_mcp_session_attach_stream(s, 3, 9), 0);
    assert_int_equal(lg_mcp_session_attach_stream(s, 1, 10), -1);
    assert_int_equal(lg_mcp_session_stream(s, &w, &serial), 0);
    assert_int_equal(w, 3);
    assert_int_equal(serial, 9);
    lg_mcp_session_detach_stream(s, 3, 9);
    assert_int_equal(lg_mcp_session_attach_stream(s, 1, 10), 0);
    lg_mcp_session_unref(s);
}

static void test_session_levels_and_subscriptions(void **state)
{
    (void)state;
    assert_int_equal(lg_mcp_log_level_parse("debug"), LG_MCP_LOG_DEBUG);
    assert_int_equal(lg_mcp_log_level_parse("emergency"), LG_MCP_LOG_EMERGENCY);
    assert_int_equal(lg_mcp_log_level_parse("warn"), -1);
    assert_int_equal(lg_mcp_log_level_parse(NULL), -1);
    assert_string_equal(lg_mcp_log_level_name(LG_MCP_LOG_WARNING), "warning");

    lg_mcp_session_t *s = lg_mcp_session_create(NULL, "", "2025-11-25", NULL, NULL, 60);
    assert_true(lg_mcp_session_log_wanted(s, LG_MCP_LOG_DEBUG)); /* unset: everything */
    lg_mcp_session_set_log_level(s, LG_MCP_LOG_WARNING);
    assert_false(lg_mcp_session_log_wanted(s, LG_MCP_LOG_INFO));
    assert_true(lg_mcp_session_log_wanted(s, LG_MCP_LOG_ERROR));

    assert_int_equal(lg_mcp_session_subscribe(s, "test://a", 1), 0);
    assert_int_equal(lg_mcp_session_subscribe(s, "test://a", 1), 0); /* idempotent */
    assert_true(lg_mcp_session_subscribed(s, "test://a"));
    assert_false(lg_mcp_session_subscribed(s, "test://b"));
    assert_int_equal(lg_mcp_session_subscribe(s, "test://a", 0), 0);
    assert_false(lg_mcp_session_subscribed(s, "test://a"));
    char uri[64];
    int rc = 0;
    for (int i = 0; i < 300 && rc == 0; ++i) {
        snprintf(uri, sizeof(uri), "test://r/%d", i);
        rc = lg_mcp_session_subscribe(s, uri, 1);
    }
    assert_int_equal(rc, -1); /* capped */
    lg_mcp_session_unref(s);
}

static void count_one(lg_mcp_session_t *s, void *ud)
{
    (void)s;
    ++*(int *)ud;
}

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; ++i) {
        lg_mcp_session_t *s = lg_mcp_session_create("k", "", "2025-11-25", NULL, NULL, 60);
        if (s == NULL)
            continue;
        lg_mcp_session_t *f = find(s, "k", "");
        lg_mcp_session_set_log_level(f, i % 8);
        lg_mcp_session_subscribe(f, "test://x", 1);
        if (i % 2 == 0)
            lg_mcp_session_close(f);
        lg_mcp_session_unref(f);
        lg_mcp_session_unref(s);
    }
    return NULL;
}

static void test_session_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; ++i)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; ++i)
        pthread_join(t[i], NULL);
    assert_int_equal(lg_mcp_session_count(), 400);
    int n = 0;
    lg_mcp_session_foreach(count_one, &n);
    assert_int_equal(n, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_session_ids_random_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_create_lookup_bindings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_idle_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_busy_and_stream_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_one_get_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_levels_and_subscriptions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_threads, setup, teardown),
    };
    return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
