/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/cluster/scripts.c and src/cluster/redis_conn.c against a
 * real redis-server (started by the test through tests/cluster/servers.sh in a
 * temp dir, loopback, random port; stopped at the end): bucket arithmetic and
 * refusal reasons of the admit script, estimates above the budget, refunds and
 * debt through adjust, credit seeding and refusal, expiry of idle buckets;
 * the async connection's EVALSHA→EVAL fallback after SCRIPT FLUSH, command
 * deadlines against a paused server, synchronous refusal while disconnected
 * and reconnection after a restart.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "cluster/redis_conn.h"
#include "../support/test_servers.h"
#include "cluster/scripts.h"

static char tmpdir[256];
static int port;
static redisContext *rc;

static int sh(const char *cmd, char *out, size_t cap)
{
    return lg_test_servers(cmd, tmpdir, out, cap);
}

static int group_setup(void **state)
{
    (void)state;
    if (lg_test_servers_tmpdir(tmpdir, sizeof(tmpdir), "/tmp/lg_redis_test_XXXXXX") != 0)
        return -1;
    char out[64];
    if (sh("redis-start", out, sizeof(out)) != 0)
        return -1;
    port = atoi(out);
    rc = redisConnect("127.0.0.1", port);
    lg_cluster_scripts_init();
    return rc == NULL || rc->err ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[512];
    redisFree(rc);
    sh("redis-stop", NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

/* admit(rl, cr, rpm, tpm, est, limit, seed, ttl) → the 6 integers */
static void admit(const char *id, long rpm, long tpm, long est, long long limit, long long seed, long long out[6])
{
    char rl[64], cr[64];
    snprintf(rl, sizeof(rl), "t:{%s}:rl", id);
    snprintf(cr, sizeof(cr), "t:{%s}:cr", id);
    redisReply *r = cmd("EVAL %s 2 %s %s %ld %ld %ld %lld %lld 100", lg_script_admit.source, rl, cr, rpm, tpm, est, limit, seed);
    if (r->type == REDIS_REPLY_ERROR)
        print_error("admit: %s\n", r->str);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 6);
    for (int i = 0; i < 6; ++i)
        out[i] = r->element[i]->integer;
    freeReplyObject(r);
}

static long long adjust(const char *id, long rpm, long tpm, long dr, long dt, long long cost, long long seed)
{
    char rl[64], cr[64];
    snprintf(rl, sizeof(rl), "t:{%s}:rl", id);
    snprintf(cr, sizeof(cr), "t:{%s}:cr", id);
    redisReply *r =
        cmd("EVAL %s 2 %s %s %ld %ld %ld %ld %lld %lld 100", lg_script_adjust.source, rl, cr, rpm, tpm, dr, dt, cost, seed);
    if (r->type == REDIS_REPLY_ERROR)
        print_error("adjust: %s\n", r->str);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void test_scripts_rpm_exact(void **state)
{
    (void)state;
    long long o[6];
    for (int i = 0; i < 5; ++i) {
        admit("rpm5", 5, 0, 10, -1, 0, o);
        assert_int_equal(o[0], LG_ADMIT_OK);
        assert_int_equal(o[2], 5);         /* X-RateLimit-Limit */
        assert_int_equal(o[3], 4 - i);     /* remaining */
        assert_true(o[4] > 1600000000000); /* reset is unix ms */
    }
    admit("rpm5", 5, 0, 10, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_RPM);
    assert_true(o[1] >= 1 && o[1] <= 12000); /* one token back after 60/5 s at most */
    assert_int_equal(o[3], 0);
    /* a refusal takes nothing: a refund of one token admits exactly one more */
    adjust("rpm5", 5, 0, 1, 0, 0, 0);
    admit("rpm5", 5, 0, 10, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_OK);
    admit("rpm5", 5, 0, 10, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_RPM);
}

static void test_scripts_tpm_estimate_and_correction(void **state)
{
    (void)state;
    long long o[6];
    admit("tpm", 0, 1000, 600, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_OK);
    admit("tpm", 0, 1000, 600, -1, 0, o); /* 400 left */
    assert_int_equal(o[0], LG_ADMIT_TPM);
    assert_true(o[1] >= 1);
    /* the first request really used 100: 500 back */
    adjust("tpm", 0, 1000, 0, 500, 0, 0);
    admit("tpm", 0, 1000, 600, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_OK); /* 900 - 600 = 300 left */
    /* an under-estimate leaves debt: 300 - 2000 */
    adjust("tpm", 0, 1000, 0, -2000, 0, 0);
    admit("tpm", 0, 1000, 1, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_TPM);
    assert_true(o[1] > 60000); /* ~1700 tokens of debt take > 1 min to refill at 1000/min */
    /* an estimate above the whole budget passes on a full bucket */
    admit("tpm-big", 0, 100, 5000, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_OK);
    admit("tpm-big", 0, 100, 1, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_TPM);
}

static void test_scripts_both_limits_atomic(void **state)
{
    (void)state;
    long long o[6];
    /* tpm refuses: the rpm token must not be taken */
    admit("both", 2, 100, 80, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_OK);
    admit("both", 2, 100, 80, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_TPM);
    admit("both", 2, 100, 10, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_OK); /* the second rpm token was still there */
    admit("both", 2, 100, 0, -1, 0, o);
    assert_int_equal(o[0], LG_ADMIT_RPM);
}

static void test_scripts_credit(void **state)
{
    (void)state;
    long long o[6];
    /* a fresh counter is seeded from the replica's view (what the ledger says was spent) */
    admit("cr", 0, 0, 1, 1000, 400, o);
    assert_int_equal(o[0], LG_ADMIT_OK);
    assert_int_equal(o[5], 400);
    assert_int_equal(adjust("cr", 0, 0, 0, 0, 599, 999999), 999); /* the seed is not applied twice */
    admit("cr", 0, 0, 1, 1000, 0, o);
    assert_int_equal(o[0], LG_ADMIT_OK); /* 999 < 1000: one pico left */
    assert_int_equal(adjust("cr", 0, 0, 0, 0, 5, 0), 1004);
    admit("cr", 0, 0, 1, 1000, 0, o);
    assert_int_equal(o[0], LG_ADMIT_CREDIT);
    /* integer pico-USD well beyond 2^53 stay exact in the counter (Lua itself only sees doubles, so read it back) */
    adjust("cr-big", 0, 0, 0, 0, 900000000000000001LL, 0);
    adjust("cr-big", 0, 0, 0, 0, 2, 0);
    redisReply *g = cmd("GET t:{cr-big}:cr");
    assert_string_equal(g->str, "900000000000000003");
    freeReplyObject(g);
    redisReply *r = cmd("TTL t:{cr}:cr");
    assert_true(r->integer > 0 && r->integer <= 100); /* counters expire after their period */
    freeReplyObject(r);
}

static void test_scripts_idle_bucket_expires(void **state)
{
    (void)state;
    long long o[6];
    admit("exp", 60000, 0, 0, -1, 0, o); /* 1000 tokens/s: full again within ms */
    redisReply *r = cmd("PTTL t:{exp}:rl");
    assert_true(r->integer > 0 && r->integer <= 1100);
    freeReplyObject(r);
    usleep(1200 * 1000);
    r = cmd("EXISTS t:{exp}:rl");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* ---- the async connection ---- */

struct cbstate {
    int calls, nulls, ints;
    long long last;
    int ups, downs;
};

static void on_reply(void *arg, const redisReply *r)
{
    struct cbstate *s = arg;
    s->calls++;
    if (r == NULL)
        s->nulls++;
    else if (r->type == REDIS_REPLY_INTEGER) {
        s->ints++;
        s->last = r->integer;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        s->ints++;
        s->last = r->element[0]->integer;
    }
}

static void on_state(void *arg, int up)
{
    struct cbstate *s = arg;
    if (up)
        s->ups++;
    else
        s->downs++;
}

static void run_until(uv_loop_t *loop, int *flag, int want, int ms)
{
    for (int i = 0; i < ms && *flag < want; i += 5) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
}

static lg_redis_conn_t *connect_async(uv_loop_t *loop, struct cbstate *st, uint32_t timeout_ms)
{
    lg_redis_conn_opts_t o = {.ip = "127.0.0.1",
                              .port = port,
                              .timeout_ms = timeout_ms,
                              .connect_timeout_ms = 500,
                              .label = "test",
                              .on_state = on_state,
                              .state_arg = st};
    lg_redis_conn_t *c = lg_redis_conn_new(loop, &o);
    run_until(loop, &st->ups, 1, 3000);
    assert_int_equal(lg_redis_conn_state(c), LG_REDIS_READY);
    return c;
}

static void close_loop(uv_loop_t *loop, lg_redis_conn_t *c)
{
    lg_redis_conn_close(c);
    for (int i = 0; i < 100; ++i)
        uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0); /* every handle was closed */
}

static void test_conn_evalsha_falls_back_to_eval(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cbstate st = {0}, rs = {0};
    lg_redis_conn_t *c = connect_async(&loop, &st, 1000);
    freeReplyObject(cmd("SCRIPT FLUSH"));
    const char *argv[8] = {"t:{async}:rl", "t:{async}:cr", "3", "0", "0", "-1", "0", "100"};
    size_t lens[8];
    for (int i = 0; i < 8; ++i)
        lens[i] = strlen(argv[i]);
    assert_int_equal(lg_redis_eval(c, &lg_script_admit, on_reply, &rs, 2, 8, argv, lens), 0);
    run_until(&loop, &rs.calls, 1, 3000);
    assert_int_equal(rs.calls, 1);
    assert_int_equal(rs.ints, 1);
    assert_int_equal(rs.last, LG_ADMIT_OK);
    redisReply *r = cmd("SCRIPT EXISTS %s", lg_script_admit.sha);
    assert_int_equal(r->element[0]->integer, 1); /* EVAL loaded it: the next call is a plain EVALSHA */
    freeReplyObject(r);
    /* pipelined: 3 more back to back, replies in order */
    for (int i = 0; i < 3; ++i)
        assert_int_equal(lg_redis_eval(c, &lg_script_admit, on_reply, &rs, 2, 8, argv, lens), 0);
    run_until(&loop, &rs.calls, 4, 3000);
    assert_int_equal(rs.calls, 4);
    assert_int_equal(rs.last, LG_ADMIT_RPM); /* rpm 3: the 4th is refused */
    close_loop(&loop, c);
}

static void test_conn_deadline_and_reconnect(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cbstate st = {0}, rs = {0};
    lg_redis_conn_t *c = connect_async(&loop, &st, 100);
    /* a slow server: every pending command fails at its deadline instead of hanging */
    freeReplyObject(cmd("CLIENT PAUSE 600 ALL"));
    const char *ping[1] = {"PING"};
    size_t pl[1] = {4};
    assert_int_equal(lg_redis_call(c, on_reply, &rs, 1, ping, pl), 0);
    assert_int_equal(lg_redis_call(c, on_reply, &rs, 1, ping, pl), 0);
    run_until(&loop, &rs.calls, 2, 2000);
    assert_int_equal(rs.nulls, 2);
    assert_int_equal(st.downs, 1);
    /* while reconnecting, commands are refused at once (the caller picks its fallback) */
    assert_int_equal(lg_redis_call(c, on_reply, &rs, 1, ping, pl), -1);
    assert_int_equal(rs.calls, 2);
    lg_redis_counters_t cnt;
    lg_redis_conn_counters(c, &cnt);
    assert_true(cnt.timeouts >= 1);
    /* back after the pause (connects are accepted during it, so let it end first), with backoff */
    int never = 0;
    run_until(&loop, &never, 1, 700);
    run_until(&loop, &st.ups, 2, 5000);
    assert_int_equal(lg_redis_conn_state(c), LG_REDIS_READY);
    assert_int_equal(lg_redis_call(c, on_reply, &rs, 1, ping, pl), 0);
    run_until(&loop, &rs.calls, 3, 2000);
    assert_int_equal(rs.calls, 3);
    assert_int_equal(rs.nulls, 2);
    close_loop(&loop, c);
}

static void test_conn_server_restart(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cbstate st = {0};
    lg_redis_conn_t *c = connect_async(&loop, &st, 200);
    redisFree(rc);
    rc = NULL;
    assert_int_equal(sh("redis-kill", NULL, 0), 0);
    run_until(&loop, &st.downs, 1, 3000);
    assert_int_equal(st.downs, 1);
    char cmdline[64], out[64];
    snprintf(cmdline, sizeof(cmdline), "redis-start");
    assert_int_equal(sh(cmdline, out, sizeof(out)), 0); /* same port (servers.sh keeps it) */
    assert_int_equal(atoi(out), port);
    run_until(&loop, &st.ups, 2, 8000);
    assert_int_equal(lg_redis_conn_state(c), LG_REDIS_READY);
    rc = redisConnect("127.0.0.1", port);
    close_loop(&loop, c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts_rpm_exact),           cmocka_unit_test(test_scripts_tpm_estimate_and_correction),
        cmocka_unit_test(test_scripts_both_limits_atomic),  cmocka_unit_test(test_scripts_credit),
        cmocka_unit_test(test_scripts_idle_bucket_expires), cmocka_unit_test(test_conn_evalsha_falls_back_to_eval),
        cmocka_unit_test(test_conn_deadline_and_reconnect), cmocka_unit_test(test_conn_server_restart),
    };
    return cmocka_run_group_tests_name("cluster_redis", tests, group_setup, group_teardown);
}
