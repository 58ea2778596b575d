/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/cluster/cluster.c in-process, against a real redis-server
 * (tests/cluster/servers.sh, temp dir, loopback, random port): a worker's
 * connection comes up only after the cluster thread subscribed and synced;
 * the shared-state seam for later features (lg_cluster_kv_get/set) stores
 * under the cluster prefix with a TTL, misses, and refuses synchronously
 * while Redis is down (callers fall back to local state) and works again after
 * a restart; /health reports the state; a key change is published on the
 * cluster's channel.
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

#include "cluster/cluster.h"
#include "core/config.h"

static char tmpdir[256], servers[PATH_MAX];
static int port;
static lg_config_t *conf;
static uv_loop_t loop;

static int sh(const char *cmd, char *out, size_t cap)
{
    char line[2 * PATH_MAX];
    snprintf(line, sizeof(line), "%s %s %s", servers, cmd, tmpdir);
    FILE *p = popen(line, "r");
    if (p == NULL)
        return -1;
    size_t n = out != NULL ? fread(out, 1, cap - 1, p) : 0;
    if (out != NULL)
        out[n] = '\0';
    return pclose(p);
}

static void spin(int (*cond)(void), int ms)
{
    for (int i = 0; i < ms && !cond(); i += 5) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
}

static int is_up(void)
{
    return lg_cluster_up();
}

static int is_down(void)
{
    return !lg_cluster_up();
}

static int group_setup(void **state)
{
    (void)state;
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    snprintf(servers, sizeof(servers), "%s/tests/cluster/servers.sh", src != NULL ? src : "../..");
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/lg_cluster_test_XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    char out[64], json[512], err[512];
    if (sh("redis-start", out, sizeof(out)) != 0)
        return -1;
    port = atoi(out);
    snprintf(json, sizeof(json),
             "{\"store\": null, \"cluster\": {\"redis\": \"redis://127.0.0.1:%d/0\", \"name\": \"unit\", \"timeout_ms\": 200}}",
             port);
    conf = lg_config_parse(json, strlen(json), NULL, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    if (lg_cluster_start(conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "cluster: %s\n", err);
        return -1;
    }
    uv_loop_init(&loop);
    lg_cluster_worker_attach(&loop, 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[512];
    lg_cluster_shutdown();
    lg_config_free(conf);
    sh("redis-stop", NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

struct got {
    int calls, found;
    char value[64];
    size_t len;
};

static void on_get(void *arg, int found, const char *value, size_t len)
{
    struct got *g = arg;
    g->calls++;
    g->found = found;
    g->len = len < sizeof(g->value) ? len : sizeof(g->value);
    if (value != NULL)
        memcpy(g->value, value, g->len);
}

static struct got *pending_get;
static int got_reply(void)
{
    return pending_get->calls > 0;
}

static void test_cluster_comes_up_and_reports(void **state)
{
    (void)state;
    assert_true(lg_cluster_enabled());
    spin(is_up, 5000);
    assert_true(lg_cluster_up());
    json_t *h = lg_cluster_health_json();
    assert_string_equal(json_string_value(json_object_get(h, "redis")), "up");
    assert_string_equal(json_string_value(json_object_get(h, "name")), "unit");
    assert_true(json_is_false(json_object_get(h, "degraded")));
    assert_true(strlen(lg_cluster_replica_id()) > 4);
    json_decref(h);
}

static void test_cluster_kv_seam(void **state)
{
    (void)state;
    struct got g = {0};
    assert_int_equal(lg_cluster_kv_set("cache", "k1", 2, "v\0alue", 6, 60000), 0);
    pending_get = &g;
    assert_int_equal(lg_cluster_kv_get("cache", "k1", 2, on_get, &g), 0);
    spin(got_reply, 2000);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.found, 1);
    assert_int_equal(g.len, 6);
    assert_memory_equal(g.value, "v\0alue", 6); /* binary-safe: the NUL made it through */
    /* the key is under the cluster prefix, with the TTL asked for */
    redisContext *rc = redisConnect("127.0.0.1", port);
    redisReply *r = redisCommand(rc, "PTTL llmgate:unit:kv:cache:k1");
    assert_true(r->integer > 0 && r->integer <= 60000);
    freeReplyObject(r);
    redisFree(rc);
    /* a miss */
    struct got m = {0};
    pending_get = &m;
    assert_int_equal(lg_cluster_kv_get("cache", "nope", 4, on_get, &m), 0);
    spin(got_reply, 2000);
    assert_int_equal(m.found, 0);
    /* no TTL, or too big: refused */
    assert_int_equal(lg_cluster_kv_set("cache", "k2", 2, "x", 1, 0), -1);
}

static void test_cluster_down_refuses_then_recovers(void **state)
{
    (void)state;
    assert_int_equal(sh("redis-kill", NULL, 0), 0);
    spin(is_down, 5000);
    assert_false(lg_cluster_up());
    struct got g = {0};
    /* synchronous refusal, no callback: the caller uses its local state */
    assert_int_equal(lg_cluster_kv_get("cache", "k1", 2, on_get, &g), -1);
    assert_int_equal(lg_cluster_kv_set("cache", "k1", 2, "x", 1, 1000), -1);
    json_t *h = lg_cluster_health_json();
    assert_string_not_equal(json_string_value(json_object_get(h, "redis")), "up");
    assert_true(json_is_true(json_object_get(h, "degraded")));
    json_decref(h);
    char out[64];
    assert_int_equal(sh("redis-start", out, sizeof(out)), 0);
    spin(is_up, 10000);
    assert_true(lg_cluster_up());
    assert_int_equal(lg_cluster_kv_set("cache", "k3", 2, "y", 1, 1000), 0);
}

static void test_cluster_keys_changed_is_published(void **state)
{
    (void)state;
    redisContext *sub = redisConnect("127.0.0.1", port);
    redisReply *r = redisCommand(sub, "SUBSCRIBE llmgate:unit:ev:keys");
    freeReplyObject(r);
    lg_cluster_keys_changed();
    struct timeval tv = {3, 0};
    redisSetTimeout(sub, tv);
    void *msg = NULL;
    assert_int_equal(redisGetReply(sub, &msg), REDIS_OK);
    r = msg;
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, "message");
    assert_string_equal(r->element[2]->str, lg_cluster_replica_id());
    freeReplyObject(r);
    redisFree(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_comes_up_and_reports),
        cmocka_unit_test(test_cluster_kv_seam),
        cmocka_unit_test(test_cluster_down_refuses_then_recovers),
        cmocka_unit_test(test_cluster_keys_changed_is_published),
    };
    return cmocka_run_group_tests_name("cluster", tests, group_setup, group_teardown);
}
