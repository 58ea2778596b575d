/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/auth/keytable.c: lookup by secret (hit, miss, same-length
 * wrong secret), admission (disabled, expired, credit, RPM, TPM with
 * correction, atomicity across the two buckets), UTC reset periods, reloads
 * that keep live state, entries outliving their version, allow-lists, and a
 * stress run of 4 workers against a reloading 5th thread (run under ASan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/keytable.h"
#include "llmgate/error.h"

#define T0 INT64_C(1710072000000)       /* Sun 2024-03-10 12:00:00 UTC */
#define MIDNIGHT INT64_C(1710115200000) /* Mon 2024-03-11 00:00:00 UTC */
#define PICO INT64_C(1000000000000)     /* 1 USD */

/* A record with the given secret; the test keeps the secret, the record only its hash. */
static lg_key_record_t *mk(const char *id, const char *secret)
{
    lg_key_record_t *k = calloc(1, sizeof(*k));
    snprintf(k->id, sizeof(k->id), "%s", id);
    k->name = strdup(id);
    lg_key_hash(secret, strlen(secret), k->hash);
    snprintf(k->hint, sizeof(k->hint), "%.10s", secret);
    k->created_at = T0 / 1000;
    k->credit_limit_pico = -1;
    return k;
}

static char **strv(const char *a, const char *b, const char *c)
{
    char **v = calloc(4, sizeof(*v));
    const char *in[3] = {a, b, c};
    for (int i = 0, j = 0; i < 3; ++i)
        if (in[i] != NULL)
            v[j++] = strdup(in[i]);
    return v;
}

static void load1(lg_keytable_t *t, lg_key_record_t *k, int64_t used, int64_t now)
{
    lg_key_record_t *recs[1] = {k};
    assert_int_equal(lg_keytable_load(t, recs, &used, 1, now), 1);
}

static lg_key_entry_t *get(lg_keytable_t *t, const char *secret)
{
    lg_key_entry_t *e = lg_keytable_lookup(t, secret, strlen(secret));
    assert_non_null(e);
    return e;
}

static void test_keytable_lookup(void **state)
{
    const char *s1 = "sk-lg-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *s2 = "sk-lg-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const char *wrong = "sk-lg-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"; /* same length, last char differs */
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *recs[40];
    char id[32], secret[64];
    lg_key_entry_t *e;
    (void)state;

    assert_int_equal(lg_keytable_count(t), 0);
    assert_null(lg_keytable_lookup(t, s1, strlen(s1)));

    recs[0] = mk("key_one", s1);
    recs[1] = mk("key_two", s2);
    for (int i = 2; i < 40; ++i) {
        snprintf(id, sizeof(id), "key_%d", i);
        snprintf(secret, sizeof(secret), "sk-lg-%042d", i);
        recs[i] = mk(id, secret);
    }
    assert_int_equal(lg_keytable_load(t, recs, NULL, 40, T0), 40);
    assert_int_equal(lg_keytable_count(t), 40);

    e = get(t, s1);
    assert_string_equal(lg_key_entry_record(e)->id, "key_one");
    assert_memory_equal(lg_key_entry_record(e)->hash, recs[0]->hash, 32);
    lg_key_entry_release(e);
    e = get(t, s2);
    assert_string_equal(lg_key_entry_record(e)->id, "key_two");
    lg_key_entry_release(e);
    for (int i = 2; i < 40; ++i) {
        snprintf(secret, sizeof(secret), "sk-lg-%042d", i);
        snprintf(id, sizeof(id), "key_%d", i);
        e = get(t, secret);
        assert_string_equal(lg_key_entry_record(e)->id, id);
        lg_key_entry_release(e);
    }
    assert_null(lg_keytable_lookup(t, wrong, strlen(wrong)));
    assert_null(lg_keytable_lookup(t, s1, strlen(s1) - 1));
    assert_null(lg_keytable_lookup(t, "", 0));
    assert_null(lg_keytable_lookup(t, NULL, 0));

    e = lg_keytable_get_by_id(t, "key_two");
    assert_non_null(e);
    assert_string_equal(lg_key_entry_record(e)->name, "key_two");
    lg_key_entry_release(e);
    assert_null(lg_keytable_get_by_id(t, "key_nope"));

    /* the caller's records are copied: freeing them does not affect the table */
    for (int i = 0; i < 40; ++i)
        lg_key_record_free(recs[i]);
    e = get(t, s1);
    assert_string_equal(lg_key_entry_record(e)->name, "key_one");
    lg_key_entry_release(e);
    lg_keytable_destroy(t);
}

static void test_keytable_duplicates_skipped(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *recs[3] = {mk("key_a", "sk-lg-1"), mk("key_a", "sk-lg-2"), mk("key_b", "sk-lg-1")};
    (void)state;

    assert_int_equal(lg_keytable_load(t, recs, NULL, 3, T0), 1);
    assert_null(lg_keytable_lookup(t, "sk-lg-2", 7));
    for (int i = 0; i < 3; ++i)
        lg_key_record_free(recs[i]);
    lg_keytable_destroy(t);
}

static void test_keytable_disabled_and_expired(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *recs[3] = {mk("key_dis", "sk-dis"), mk("key_exp", "sk-exp"), mk("key_ok", "sk-ok")};
    lg_key_entry_t *e;
    lg_admit_t a;
    (void)state;

    recs[0]->disabled = 1;
    recs[1]->expires_at = T0 / 1000 + 60;
    recs[2]->expires_at = T0 / 1000 + 60;
    assert_int_equal(lg_keytable_load(t, recs, NULL, 3, T0), 3);

    e = get(t, "sk-dis");
    assert_int_equal(lg_key_admit(e, 10, T0, &a), LG_EAUTH);
    assert_string_equal(a.reason, "disabled");
    lg_key_entry_release(e);

    e = get(t, "sk-exp");
    assert_int_equal(lg_key_admit(e, 10, T0 + 59999, &a), 0);
    assert_null(a.reason);
    assert_int_equal(a.limit, -1); /* no rate limits on this key */
    assert_int_equal(lg_key_admit(e, 10, T0 + 60000, &a), LG_EAUTH);
    assert_string_equal(a.reason, "expired");
    lg_key_entry_release(e);

    /* re-enabling by reload works for a reader that holds the old entry too */
    e = get(t, "sk-dis");
    recs[0]->disabled = 0;
    assert_int_equal(lg_keytable_load(t, recs, NULL, 3, T0), 3);
    assert_int_equal(lg_key_admit(e, 10, T0, &a), 0);
    lg_key_entry_release(e);

    for (int i = 0; i < 3; ++i)
        lg_key_record_free(recs[i]);
    lg_keytable_destroy(t);
}

static void test_keytable_credit_exhaustion(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *k = mk("key_c", "sk-c");
    lg_key_entry_t *e;
    lg_admit_t a;
    (void)state;

    k->credit_limit_pico = PICO; /* $1 */
    load1(t, k, PICO / 2, T0);   /* the store says $0.50 already used */
    e = get(t, "sk-c");
    assert_int_equal(lg_key_credit_used_pico(e, T0), PICO / 2);
    assert_int_equal(lg_key_admit(e, 100, T0, &a), 0);
    lg_key_settle(e, 100, 120, PICO / 2 - 1, T0);
    assert_int_equal(lg_key_credit_used_pico(e, T0), PICO - 1);
    assert_int_equal(lg_key_admit(e, 100, T0, &a), 0); /* one pico left */
    lg_key_settle(e, 100, 100, 5, T0);
    assert_int_equal(lg_key_admit(e, 100, T0, &a), LG_ECREDIT);
    assert_string_equal(a.reason, "credit");
    /* settling a request that produced nothing costs nothing */
    lg_key_settle(e, 100, 0, 0, T0);
    assert_int_equal(lg_key_credit_used_pico(e, T0), PICO + 4);

    /* the usage passed on a later load is ignored for a known id; a raised limit lets requests through again */
    k->credit_limit_pico = 2 * PICO;
    load1(t, k, 0, T0);
    assert_int_equal(lg_key_credit_used_pico(e, T0), PICO + 4);
    assert_int_equal(lg_key_admit(e, 100, T0, &a), 0);
    /* a zero limit means no credit at all */
    k->credit_limit_pico = 0;
    load1(t, k, 0, T0);
    assert_int_equal(lg_key_admit(e, 1, T0, &a), LG_ECREDIT);
    lg_key_entry_release(e);
    lg_key_record_free(k);
    lg_keytable_destroy(t);
}

static void test_keytable_period_rollover(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *recs[4] = {mk("key_d", "sk-d"), mk("key_w", "sk-w"), mk("key_m", "sk-m"), mk("key_n", "sk-n")};
    int64_t used[4] = {PICO, PICO, PICO, PICO};
    lg_key_entry_t *d, *w, *m, *n;
    lg_admit_t a;
    (void)state;

    recs[0]->reset_period = LG_RESET_DAILY;
    recs[1]->reset_period = LG_RESET_WEEKLY;
    recs[2]->reset_period = LG_RESET_MONTHLY;
    recs[3]->reset_period = LG_RESET_NONE;
    for (int i = 0; i < 4; ++i)
        recs[i]->credit_limit_pico = PICO;
    assert_int_equal(lg_keytable_load(t, recs, used, 4, T0), 4);
    d = get(t, "sk-d");
    w = get(t, "sk-w");
    m = get(t, "sk-m");
    n = get(t, "sk-n");

    assert_int_equal(lg_key_admit(d, 1, MIDNIGHT - 1, &a), LG_ECREDIT);
    lg_key_settle(d, 1, 1, 7, MIDNIGHT - 1);
    assert_int_equal(lg_key_credit_used_pico(d, MIDNIGHT - 1), PICO + 7);
    /* Sunday 23:59:59.999 → Monday 00:00 UTC: a new day and a new ISO week, same month */
    assert_int_equal(lg_key_admit(d, 1, MIDNIGHT, &a), 0);
    assert_int_equal(lg_key_credit_used_pico(d, MIDNIGHT), 0);
    lg_key_settle(d, 1, 1, 3, MIDNIGHT + 1000);
    assert_int_equal(lg_key_credit_used_pico(d, MIDNIGHT + 1000), 3);
    /* a clock stepping back into yesterday does not bring yesterday's usage back or reset again */
    assert_int_equal(lg_key_credit_used_pico(d, MIDNIGHT - 5000), 3);
    assert_int_equal(lg_key_credit_used_pico(d, MIDNIGHT + 86400000 - 1), 3);
    assert_int_equal(lg_key_credit_used_pico(d, MIDNIGHT + 86400000), 0);

    assert_int_equal(lg_key_credit_used_pico(w, MIDNIGHT - 1), PICO);
    assert_int_equal(lg_key_credit_used_pico(w, MIDNIGHT), 0);
    lg_key_settle(w, 0, 0, 9, MIDNIGHT + 6 * 86400000LL); /* Sunday 2024-03-17: same week */
    assert_int_equal(lg_key_credit_used_pico(w, MIDNIGHT + 7 * 86400000LL - 1), 9);
    assert_int_equal(lg_key_credit_used_pico(w, MIDNIGHT + 7 * 86400000LL), 0);

    assert_int_equal(lg_key_credit_used_pico(m, MIDNIGHT), PICO);
    assert_int_equal(lg_key_admit(m, 1, MIDNIGHT, &a), LG_ECREDIT);
    /* 2024-04-01 00:00:00 UTC = 1711929600 */
    assert_int_equal(lg_key_credit_used_pico(m, INT64_C(1711929600000) - 1), PICO);
    assert_int_equal(lg_key_credit_used_pico(m, INT64_C(1711929600000)), 0);

    assert_int_equal(lg_key_credit_used_pico(n, INT64_C(1711929600000) * 2), PICO); /* never resets */

    /* changing the reset period takes the store's usage for the new period */
    recs[3]->reset_period = LG_RESET_DAILY;
    used[3] = 42;
    assert_int_equal(lg_keytable_load(t, recs, used, 4, MIDNIGHT), 4);
    assert_int_equal(lg_key_credit_used_pico(n, MIDNIGHT), 42);
    assert_int_equal(lg_key_credit_used_pico(n, MIDNIGHT + 86400000), 0);

    lg_key_entry_release(d);
    lg_key_entry_release(w);
    lg_key_entry_release(m);
    lg_key_entry_release(n);
    for (int i = 0; i < 4; ++i)
        lg_key_record_free(recs[i]);
    lg_keytable_destroy(t);
}

static void test_keytable_rpm(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *k = mk("key_r", "sk-r");
    lg_key_entry_t *e;
    lg_admit_t a;
    (void)state;

    k->rpm = 60;
    load1(t, k, 0, T0);
    e = get(t, "sk-r");
    for (int i = 0; i < 60; ++i) {
        assert_int_equal(lg_key_admit(e, 50, T0, &a), 0);
        assert_int_equal(a.limit, 60);
        assert_int_equal(a.remaining, 59 - i);
    }
    assert_int_equal(lg_key_admit(e, 50, T0, &a), LG_ERATELIMIT);
    assert_int_equal(a.err, LG_ERATELIMIT);
    assert_string_equal(a.reason, "rpm");
    assert_int_equal(a.retry_after_ms, 1000);
    assert_int_equal(a.limit, 60);
    assert_int_equal(a.remaining, 0);
    assert_int_equal(a.reset_unix_ms, T0 + 60000);
    assert_int_equal(lg_key_admit(e, 50, T0 + 999, &a), LG_ERATELIMIT);
    assert_int_equal(a.retry_after_ms, 1);
    assert_int_equal(lg_key_admit(e, 50, T0 + 1000, &a), 0);
    assert_int_equal(a.remaining, 0);
    lg_key_entry_release(e);
    lg_key_record_free(k);
    lg_keytable_destroy(t);
}

static void test_keytable_tpm_estimate_and_correction(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *k = mk("key_t", "sk-t");
    lg_key_entry_t *e;
    lg_admit_t a;
    (void)state;

    k->tpm = 1000;
    load1(t, k, 0, T0);
    e = get(t, "sk-t");
    assert_int_equal(lg_key_admit(e, 100, T0, &a), 0);
    assert_int_equal(a.limit, 1000); /* no rpm: the tpm bucket is reported */
    assert_int_equal(a.remaining, 900);
    lg_key_settle(e, 100, 10, 0, T0); /* estimate 100, actual 10: 90 refunded */
    assert_int_equal(lg_key_admit(e, 0, T0, &a), 0);
    assert_int_equal(a.remaining, 990);

    /* an underestimate leaves debt; nothing passes until it is repaid */
    assert_int_equal(lg_key_admit(e, 10, T0, &a), 0);
    lg_key_settle(e, 10, 1500, 0, T0); /* 990 - 1500 = -510 */
    assert_int_equal(lg_key_admit(e, 0, T0, &a), LG_ERATELIMIT);
    assert_string_equal(a.reason, "tpm");
    assert_int_equal(a.limit, 1000);
    assert_int_equal(a.remaining, 0);
    assert_int_equal(a.retry_after_ms, 30600); /* 510 tokens at 1000/min */
    assert_int_equal(a.reset_unix_ms, T0 + 90600);

    /* an estimate above the whole budget passes on a full bucket instead of never */
    assert_int_equal(lg_key_admit(e, 5000, T0 + 90600, &a), 0);
    assert_int_equal(lg_key_admit(e, 1, T0 + 90600, &a), LG_ERATELIMIT);
    lg_key_settle(e, 5000, 0, 0, T0 + 90600); /* it failed: everything refunded, capped at capacity */
    assert_int_equal(lg_key_admit(e, 1000, T0 + 90600, &a), 0);
    lg_key_entry_release(e);
    lg_key_record_free(k);
    lg_keytable_destroy(t);
}

static void test_keytable_tpm_reject_keeps_rpm(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *k = mk("key_rt", "sk-rt");
    lg_key_entry_t *e;
    lg_admit_t a;
    (void)state;

    k->rpm = 10;
    k->tpm = 100;
    load1(t, k, 0, T0);
    e = get(t, "sk-rt");
    assert_int_equal(lg_key_admit(e, 80, T0, &a), 0);
    assert_int_equal(a.remaining, 9);
    for (int i = 0; i < 5; ++i) {
        assert_int_equal(lg_key_admit(e, 50, T0, &a), LG_ERATELIMIT);
        assert_string_equal(a.reason, "tpm");
        assert_int_equal(a.limit, 100);
        assert_int_equal(a.remaining, 20);
        assert_int_equal(a.retry_after_ms, 18000); /* 30 tokens at 100/min */
    }
    assert_int_equal(lg_key_admit(e, 10, T0, &a), 0);
    assert_int_equal(a.limit, 10);
    assert_int_equal(a.remaining, 8); /* the refused requests took no RPM token */
    /* and an RPM refusal takes no TPM tokens */
    for (int i = 0; i < 8; ++i)
        assert_int_equal(lg_key_admit(e, 0, T0, &a), 0);
    assert_int_equal(lg_key_admit(e, 10, T0, &a), LG_ERATELIMIT);
    assert_string_equal(a.reason, "rpm");
    lg_key_settle(e, 0, 0, 0, T0);
    assert_int_equal(lg_key_admit(e, 10, T0 + 6000, &a), 0); /* 1 rpm token back; tpm still had 10 */
    lg_key_entry_release(e);
    lg_key_record_free(k);
    lg_keytable_destroy(t);
}

static void test_keytable_reload_keeps_state(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *k = mk("key_s", "sk-s");
    lg_key_entry_t *e, *e2;
    lg_admit_t a;
    (void)state;

    k->rpm = 100;
    k->tpm = 10000;
    k->credit_limit_pico = 10 * PICO;
    load1(t, k, PICO, T0);
    e = get(t, "sk-s");
    for (int i = 0; i < 30; ++i)
        assert_int_equal(lg_key_admit(e, 100, T0, &a), 0);
    lg_key_settle(e, 100, 100, PICO, T0);
    assert_int_equal(a.remaining, 70);

    /* higher limits: the level is kept (not refilled), usage is kept, the store's value is not re-applied */
    k->rpm = 200;
    k->tpm = 20000;
    free(k->name);
    k->name = strdup("renamed");
    load1(t, k, 0, T0);
    e2 = get(t, "sk-s");
    assert_string_equal(lg_key_entry_record(e2)->name, "renamed");
    assert_string_equal(lg_key_entry_record(e)->name, "key_s"); /* the old copy is immutable */
    assert_int_equal(lg_key_credit_used_pico(e2, T0), 2 * PICO);
    assert_int_equal(lg_key_admit(e2, 100, T0, &a), 0);
    assert_int_equal(a.limit, 200);
    assert_int_equal(a.remaining, 69);
    /* the old entry shares the live state and sees the new limits */
    assert_int_equal(lg_key_admit(e, 100, T0, &a), 0);
    assert_int_equal(a.limit, 200);
    assert_int_equal(a.remaining, 68);

    /* lower limits clamp the level */
    k->rpm = 50;
    load1(t, k, 0, T0);
    assert_int_equal(lg_key_admit(e2, 100, T0, &a), 0);
    assert_int_equal(a.limit, 50);
    assert_int_equal(a.remaining, 49);

    /* removing a limit and setting it again starts a full bucket */
    k->rpm = 0;
    load1(t, k, 0, T0);
    assert_int_equal(lg_key_admit(e2, 100, T0, &a), 0);
    assert_int_equal(a.limit, 20000); /* tpm reported now */
    k->rpm = 5;
    load1(t, k, 0, T0);
    assert_int_equal(lg_key_admit(e2, 100, T0, &a), 0);
    assert_int_equal(a.remaining, 4);

    lg_key_entry_release(e);
    lg_key_entry_release(e2);
    lg_key_record_free(k);
    lg_keytable_destroy(t);
}

static void test_keytable_removed_entry_outlives_version(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *recs[2] = {mk("key_x", "sk-x"), mk("key_y", "sk-y")};
    lg_key_entry_t *e, *held;
    lg_admit_t a;
    (void)state;

    recs[0]->rpm = 2;
    recs[0]->allowed_models = strv("openai/*", NULL, NULL);
    assert_int_equal(lg_keytable_load(t, recs, NULL, 2, T0), 2);
    held = get(t, "sk-x");
    assert_int_equal(lg_key_admit(held, 1, T0, &a), 0);
    lg_key_settle(held, 1, 1, 77, T0);

    assert_int_equal(lg_keytable_load(t, recs + 1, NULL, 1, T0), 1);
    assert_null(lg_keytable_lookup(t, "sk-x", 4));
    assert_null(lg_keytable_get_by_id(t, "key_x"));
    e = get(t, "sk-y");
    lg_key_entry_release(e);
    /* the held entry is intact (ASan would flag a use after free) but refused */
    assert_string_equal(lg_key_entry_record(held)->name, "key_x");
    assert_true(lg_key_model_allowed(held, "openai/gpt-4o"));
    assert_int_equal(lg_key_admit(held, 1, T0, &a), LG_EAUTH);
    assert_string_equal(a.reason, "removed");
    lg_key_settle(held, 1, 1, 1, T0);

    /* the same id loaded again is a new key: fresh bucket, usage from the store */
    assert_int_equal(lg_keytable_load(t, recs, NULL, 2, T0), 2);
    e = get(t, "sk-x");
    assert_int_equal(lg_key_credit_used_pico(e, T0), 0);
    assert_int_equal(lg_key_admit(e, 1, T0, &a), 0);
    assert_int_equal(a.remaining, 1);
    lg_key_entry_release(e);
    assert_int_equal(lg_key_credit_used_pico(held, T0), 78);
    assert_int_equal(lg_key_admit(held, 1, T0, &a), LG_EAUTH);

    /* entries may even outlive the table */
    lg_keytable_destroy(t);
    assert_string_equal(lg_key_entry_record(held)->id, "key_x");
    lg_key_entry_release(held);
    for (int i = 0; i < 2; ++i)
        lg_key_record_free(recs[i]);
}

static void test_keytable_allow_lists(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *recs[3] = {mk("key_all", "sk-all"), mk("key_some", "sk-some"), mk("key_none", "sk-none")};
    lg_key_entry_t *all, *some, *none;
    (void)state;

    recs[1]->allowed_models = strv("openai/*", "anthropic/claude-3.5-sonnet", NULL);
    recs[1]->allowed_tools = strv("memory__*", "github__search", NULL);
    recs[2]->allowed_models = strv(NULL, NULL, NULL); /* empty list: nothing */
    recs[2]->allowed_tools = strv("*", NULL, NULL);
    assert_int_equal(lg_keytable_load(t, recs, NULL, 3, T0), 3);
    all = get(t, "sk-all");
    some = get(t, "sk-some");
    none = get(t, "sk-none");

    assert_true(lg_key_model_allowed(all, "x/y"));
    assert_true(lg_key_tool_allowed(all, "anything"));
    assert_false(lg_key_model_allowed(all, NULL));

    assert_true(lg_key_model_allowed(some, "openai/gpt-4o"));
    assert_true(lg_key_model_allowed(some, "openai/"));
    assert_false(lg_key_model_allowed(some, "openai"));
    assert_false(lg_key_model_allowed(some, "openainot/gpt"));
    assert_true(lg_key_model_allowed(some, "anthropic/claude-3.5-sonnet"));
    assert_false(lg_key_model_allowed(some, "anthropic/claude-3.5-sonnet:beta"));
    assert_false(lg_key_model_allowed(some, "anthropic/claude-3.5"));
    assert_true(lg_key_tool_allowed(some, "memory__read"));
    assert_true(lg_key_tool_allowed(some, "github__search"));
    assert_false(lg_key_tool_allowed(some, "github__search_all"));
    assert_false(lg_key_tool_allowed(some, "memoryread"));

    assert_false(lg_key_model_allowed(none, "openai/gpt-4o"));
    assert_true(lg_key_tool_allowed(none, "whatever__tool"));

    lg_key_entry_release(all);
    lg_key_entry_release(some);
    lg_key_entry_release(none);
    for (int i = 0; i < 3; ++i)
        lg_key_record_free(recs[i]);
    lg_keytable_destroy(t);
}

/* ---- stress: 4 workers (lookup + admit + settle) against a 5th thread reloading 1000 times ---- */

#define WORKERS 4
#define RELOADS 1000
#define STRESS_RPM 500

struct stress {
    lg_keytable_t *t;
    atomic_int stop;
    atomic_long admitted, refused, lookups, misses;
    atomic_int reloads_done;
};

static void *stress_worker(void *arg)
{
    struct stress *s = arg;
    while (!atomic_load(&s->stop)) {
        lg_key_entry_t *e = lg_keytable_lookup(s->t, "sk-stable", 9);
        lg_key_entry_t *f = lg_keytable_lookup(s->t, "sk-flaky", 8);
        lg_admit_t a;
        atomic_fetch_add(&s->lookups, 2);
        if (e == NULL) {
            fail_msg("stable key missing");
            return NULL;
        }
        /* the clock is frozen: no refill, so the stable key admits exactly STRESS_RPM requests in total */
        if (lg_key_admit(e, 10, T0, &a) == 0) {
            atomic_fetch_add(&s->admitted, 1);
            lg_key_settle(e, 10, 5, 1, T0);
        } else {
            atomic_fetch_add(&s->refused, 1);
        }
        if (f != NULL) {
            (void)lg_key_admit(f, 1, T0, &a);
            (void)lg_key_model_allowed(f, "openai/x");
            lg_key_entry_release(f);
        } else {
            atomic_fetch_add(&s->misses, 1);
        }
        lg_key_entry_release(e);
    }
    return NULL;
}

static void *stress_loader(void *arg)
{
    struct stress *s = arg;
    lg_key_record_t *recs[50];
    char id[32], secret[64];

    recs[0] = mk("key_stable", "sk-stable");
    recs[0]->rpm = STRESS_RPM;
    recs[0]->tpm = 1000000;
    recs[0]->credit_limit_pico = PICO;
    recs[1] = mk("key_flaky", "sk-flaky");
    recs[1]->rpm = 3;
    recs[1]->allowed_models = strv("openai/*", NULL, NULL);
    for (int i = 2; i < 50; ++i) {
        snprintf(id, sizeof(id), "key_%d", i);
        snprintf(secret, sizeof(secret), "sk-%d", i);
        recs[i] = mk(id, secret);
    }
    for (int r = 0; r < RELOADS; ++r) {
        /* vary the set: the flaky key comes and goes, the tail shrinks and grows, the stable key's tpm changes */
        recs[0]->tpm = 1000000 + (uint32_t)r;
        if (r % 2 == 0)
            lg_keytable_load(s->t, recs, NULL, 2 + (size_t)(r % 48), T0);
        else {
            lg_key_record_t *tmp = recs[1];
            recs[1] = recs[0];
            lg_keytable_load(s->t, recs + 1, NULL, 1 + (size_t)(r % 49), T0);
            recs[1] = tmp;
        }
        atomic_fetch_add(&s->reloads_done, 1);
    }
    for (int i = 0; i < 50; ++i)
        lg_key_record_free(recs[i]);
    return NULL;
}

static void test_keytable_stress_reload(void **state)
{
    struct stress s = {0};
    pthread_t w[WORKERS], l;
    lg_key_record_t *k = mk("key_stable", "sk-stable");
    (void)state;

    s.t = lg_keytable_create();
    k->rpm = STRESS_RPM;
    k->tpm = 1000000;
    k->credit_limit_pico = PICO;
    load1(s.t, k, 0, T0);
    lg_key_record_free(k);

    for (int i = 0; i < WORKERS; ++i)
        assert_int_equal(pthread_create(&w[i], NULL, stress_worker, &s), 0);
    assert_int_equal(pthread_create(&l, NULL, stress_loader, &s), 0);
    pthread_join(l, NULL);
    /* let the workers run a bit past the last reload */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&s.stop, 1);
    for (int i = 0; i < WORKERS; ++i)
        pthread_join(w[i], NULL);

    print_message("stress: %ld lookups, %ld admitted, %ld refused, %ld flaky misses, %d reloads\n", (long)atomic_load(&s.lookups),
                  (long)atomic_load(&s.admitted), (long)atomic_load(&s.refused), (long)atomic_load(&s.misses),
                  atomic_load(&s.reloads_done));
    assert_int_equal(atomic_load(&s.reloads_done), RELOADS);
    assert_true(atomic_load(&s.admitted) <= STRESS_RPM);
    if (atomic_load(&s.refused) > 0)
        assert_int_equal(atomic_load(&s.admitted), STRESS_RPM); /* the limit held exactly */
    {
        lg_key_entry_t *e = get(s.t, "sk-stable");
        assert_int_equal(lg_key_credit_used_pico(e, T0), atomic_load(&s.admitted));
        lg_key_entry_release(e);
    }
    lg_keytable_destroy(s.t);
}

/* ---- lookup cost (informational; asserted loosely so sanitizer builds pass) ---- */

static void test_keytable_lookup_cost(void **state)
{
    lg_keytable_t *t = lg_keytable_create();
    lg_key_record_t *recs[1000];
    char id[32], secret[64];
    struct timespec a, b;
    const int iters = 100000;
    (void)state;

    for (int i = 0; i < 1000; ++i) {
        snprintf(id, sizeof(id), "key_%d", i);
        snprintf(secret, sizeof(secret), "sk-lg-%042d", i);
        recs[i] = mk(id, secret);
    }
    assert_int_equal(lg_keytable_load(t, recs, NULL, 1000, T0), 1000);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < iters; ++i) {
        snprintf(secret, sizeof(secret), "sk-lg-%042d", i % 1000);
        lg_key_entry_t *e = lg_keytable_lookup(t, secret, 48);
        assert_non_null(e);
        lg_key_entry_release(e);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / iters;
    print_message("lookup (incl. snprintf of the secret): %.0f ns\n", ns);
    assert_true(ns < 50000);
    for (int i = 0; i < 1000; ++i)
        lg_key_record_free(recs[i]);
    lg_keytable_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keytable_lookup),
        cmocka_unit_test(test_keytable_duplicates_skipped),
        cmocka_unit_test(test_keytable_disabled_and_expired),
        cmocka_unit_test(test_keytable_credit_exhaustion),
        cmocka_unit_test(test_keytable_period_rollover),
        cmocka_unit_test(test_keytable_rpm),
        cmocka_unit_test(test_keytable_tpm_estimate_and_correction),
        cmocka_unit_test(test_keytable_tpm_reject_keeps_rpm),
        cmocka_unit_test(test_keytable_reload_keeps_state),
        cmocka_unit_test(test_keytable_removed_entry_outlives_version),
        cmocka_unit_test(test_keytable_allow_lists),
        cmocka_unit_test(test_keytable_stress_reload),
        cmocka_unit_test(test_keytable_lookup_cost),
    };
    return cmocka_run_group_tests_name("keytable", tests, NULL, NULL);
}
