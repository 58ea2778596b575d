/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/auth/admin_session.c: a session is valid only with its exact
 * id, until its expiry, and while the admin key it was opened with is still
 * the admin key; ids are random and well-formed; the CSRF token belongs to
 * one session; sign-out ends it; the table evicts the oldest when full; the
 * sign-in throttle per client and in total, and its window.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/admin_session.h"

#define KEY "admin-key-for-tests"
#define T0 INT64_C(1700000000000)
#define TTL 3600u

static int setup(void **state)
{
    (void)state;
    lg_admin_session_reset();
    return 0;
}

static void test_session_lifecycle(void **state)
{
    (void)state;
    char id[LG_ADMIN_SESSION_ID_LEN + 1], csrf[LG_ADMIN_SESSION_ID_LEN + 1], csrf2[LG_ADMIN_SESSION_ID_LEN + 1];
    int64_t exp = 0, exp2 = 0;
    assert_int_equal(lg_admin_session_create(KEY, TTL, T0, id, csrf, &exp), 0);
    assert_int_equal(strlen(id), LG_ADMIN_SESSION_ID_LEN);
    assert_int_equal(strspn(id, "0123456789abcdef"), LG_ADMIN_SESSION_ID_LEN);
    assert_int_equal(exp, T0 + TTL * 1000);
    assert_true(lg_admin_session_check(id, strlen(id), KEY, T0 + 1, csrf2, &exp2));
    assert_string_equal(csrf, csrf2);
    assert_int_equal(exp2, exp);
    assert_int_equal(lg_admin_session_count(T0), 1);

    /* one character off, truncated, upper case, empty, no admin key: all refused */
    char bad[LG_ADMIN_SESSION_ID_LEN + 1];
    memcpy(bad, id, sizeof(bad));
    bad[10] = bad[10] == 'a' ? 'b' : 'a';
    assert_false(lg_admin_session_check(bad, strlen(bad), KEY, T0 + 1, NULL, NULL));
    assert_false(lg_admin_session_check(id, LG_ADMIN_SESSION_ID_LEN - 1, KEY, T0 + 1, NULL, NULL));
    memcpy(bad, id, sizeof(bad));
    bad[0] = 'A';
    assert_false(lg_admin_session_check(bad, strlen(bad), KEY, T0 + 1, NULL, NULL));
    assert_false(lg_admin_session_check("", 0, KEY, T0 + 1, NULL, NULL));
    assert_false(lg_admin_session_check(id, strlen(id), NULL, T0 + 1, NULL, NULL));
    assert_true(lg_admin_session_check(id, strlen(id), KEY, T0 + 2, NULL, NULL)); /* none of that ended it */

    /* expiry */
    assert_true(lg_admin_session_check(id, strlen(id), KEY, exp - 1, NULL, NULL));
    assert_false(lg_admin_session_check(id, strlen(id), KEY, exp, NULL, NULL));
    assert_false(lg_admin_session_check(id, strlen(id), KEY, T0 + 1, NULL, NULL)); /* expired sessions are gone */
    assert_int_equal(lg_admin_session_count(T0), 0);
}

static void test_session_admin_key_change(void **state)
{
    (void)state;
    char id[LG_ADMIN_SESSION_ID_LEN + 1], csrf[LG_ADMIN_SESSION_ID_LEN + 1];
    int64_t exp;
    assert_int_equal(lg_admin_session_create(KEY, TTL, T0, id, csrf, &exp), 0);
    assert_false(lg_admin_session_check(id, strlen(id), KEY "-rotated", T0 + 1, NULL, NULL));
    /* ended for good: going back to the old key does not revive it */
    assert_false(lg_admin_session_check(id, strlen(id), KEY, T0 + 2, NULL, NULL));
}

static void test_session_csrf(void **state)
{
    (void)state;
    char a[LG_ADMIN_SESSION_ID_LEN + 1], ca[LG_ADMIN_SESSION_ID_LEN + 1], b[LG_ADMIN_SESSION_ID_LEN + 1],
        cb[LG_ADMIN_SESSION_ID_LEN + 1];
    int64_t exp;
    assert_int_equal(lg_admin_session_create(KEY, TTL, T0, a, ca, &exp), 0);
    assert_int_equal(lg_admin_session_create(KEY, TTL, T0, b, cb, &exp), 0);
    assert_string_not_equal(a, b);
    assert_string_not_equal(ca, cb);
    assert_string_not_equal(a, ca);
    assert_true(lg_admin_csrf_ok(a, strlen(a), ca, strlen(ca)));
    assert_true(lg_admin_csrf_ok(b, strlen(b), cb, strlen(cb)));
    assert_false(lg_admin_csrf_ok(a, strlen(a), cb, strlen(cb)));
    assert_false(lg_admin_csrf_ok(a, strlen(a), a, strlen(a)));
    assert_false(lg_admin_csrf_ok(a, strlen(a), ca, strlen(ca) - 1));
    assert_false(lg_admin_csrf_ok(a, strlen(a), "", 0));
    assert_false(lg_admin_csrf_ok("zz", 2, ca, strlen(ca)));
}

static void test_session_destroy(void **state)
{
    (void)state;
    char a[LG_ADMIN_SESSION_ID_LEN + 1], b[LG_ADMIN_SESSION_ID_LEN + 1], c[LG_ADMIN_SESSION_ID_LEN + 1];
    int64_t exp;
    assert_int_equal(lg_admin_session_create(KEY, TTL, T0, a, c, &exp), 0);
    assert_int_equal(lg_admin_session_create(KEY, TTL, T0, b, c, &exp), 0);
    lg_admin_session_destroy(a, strlen(a));
    lg_admin_session_destroy("junk", 4); /* ignored */
    assert_false(lg_admin_session_check(a, strlen(a), KEY, T0 + 1, NULL, NULL));
    assert_true(lg_admin_session_check(b, strlen(b), KEY, T0 + 1, NULL, NULL));
}

static void test_session_table_full(void **state)
{
    (void)state;
    char first[LG_ADMIN_SESSION_ID_LEN + 1], last[LG_ADMIN_SESSION_ID_LEN + 1], id[LG_ADMIN_SESSION_ID_LEN + 1],
        c[LG_ADMIN_SESSION_ID_LEN + 1];
    int64_t exp;
    assert_int_equal(lg_admin_session_create(KEY, TTL, T0, first, c, &exp), 0);
    for (int i = 1; i < LG_ADMIN_SESSION_MAX + 10; ++i)
        assert_int_equal(lg_admin_session_create(KEY, TTL, T0 + i, i == LG_ADMIN_SESSION_MAX + 9 ? last : id, c, &exp), 0);
    assert_int_equal(lg_admin_session_count(T0 + 1000), LG_ADMIN_SESSION_MAX);
    assert_false(lg_admin_session_check(first, strlen(first), KEY, T0 + 1000, NULL, NULL)); /* the oldest made room */
    assert_true(lg_admin_session_check(last, strlen(last), KEY, T0 + 1000, NULL, NULL));
}

static void test_signin_throttle(void **state)
{
    (void)state;
    assert_int_equal(lg_admin_signin_wait_ms("10.0.0.1", T0), 0);
    for (int i = 0; i < LG_ADMIN_SIGNIN_MAX_PER_CLIENT; ++i) {
        assert_int_equal(lg_admin_signin_wait_ms("10.0.0.1", T0 + i), 0);
        lg_admin_signin_failed("10.0.0.1", T0 + i);
    }
    int64_t w = lg_admin_signin_wait_ms("10.0.0.1", T0 + 10);
    assert_true(w > 0 && w <= LG_ADMIN_SIGNIN_WINDOW_MS);
    assert_int_equal(lg_admin_signin_wait_ms("10.0.0.2", T0 + 10), 0); /* another client is not locked out */
    assert_int_equal(lg_admin_signin_wait_ms("10.0.0.1", T0 + LG_ADMIN_SIGNIN_WINDOW_MS + 1), 0); /* window over */
}

static void test_signin_throttle_total(void **state)
{
    (void)state;
    char client[32];
    for (int i = 0; i < LG_ADMIN_SIGNIN_MAX_TOTAL; ++i) {
        snprintf(client, sizeof(client), "192.0.2.%d", i);
        lg_admin_signin_failed(client, T0 + i);
    }
    /* a distributed guess: every client waits, including one that never failed */
    assert_true(lg_admin_signin_wait_ms("198.51.100.7", T0 + 100) > 0);
    assert_int_equal(lg_admin_signin_wait_ms("198.51.100.7", T0 + LG_ADMIN_SIGNIN_WINDOW_MS + 100), 0);
    /* more clients than the throttle table has slots: no crash, the newest failures still count */
    for (int i = 0; i < 1000; ++i) {
        snprintf(client, sizeof(client), "203.0.113.%d/%d", i % 250, i);
        lg_admin_signin_failed(client, T0 + 2 * LG_ADMIN_SIGNIN_WINDOW_MS + i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_session_lifecycle, setup),     cmocka_unit_test_setup(test_session_admin_key_change, setup),
        cmocka_unit_test_setup(test_session_csrf, setup),          cmocka_unit_test_setup(test_session_destroy, setup),
        cmocka_unit_test_setup(test_session_table_full, setup),    cmocka_unit_test_setup(test_signin_throttle, setup),
        cmocka_unit_test_setup(test_signin_throttle_total, setup),
    };
    return cmocka_run_group_tests_name("admin_session", tests, NULL, NULL);
}
