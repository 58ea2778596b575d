/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the PostgreSQL store backend (src/store/store_pg.c) against a
 * real server (initdb + pg_ctl through tests/cluster/servers.sh, in a temp
 * dir on loopback and a random port; stopped at the end): migrations (also
 * two processes' worth of concurrent opens), refusal of newer schemas, key
 * CRUD with hostile input, ledger batches with duplicates, and — the seam's
 * contract — the same answers as the SQLite backend for generations, key
 * usage windows and every usage grouping. Then a server restart: calls fail
 * as "unreachable" while it is down and work again without reopening.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "domain/key.h"
#include "store/store.h"
#include "../support/test_servers.h"

static char tmpdir[256], url[256], sqlite_path[512];

static int sh(const char *cmd, char *out, size_t cap)
{
    return lg_test_servers(cmd, tmpdir, out, cap);
}

static int group_setup(void **state)
{
    (void)state;
    if (lg_test_servers_tmpdir(tmpdir, sizeof(tmpdir), "/tmp/lg_pg_test_XXXXXX") != 0)
        return -1;
    char out[64];
    if (sh("pg-init", out, sizeof(out)) != 0)
        return -1;
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/llmgate", atoi(out));
    snprintf(sqlite_path, sizeof(sqlite_path), "%s/ref.db", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[512];
    sh("pg-stop", NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static lg_store_t *open_pg(void)
{
    char err[512] = "";
    lg_store_t *s = lg_store_open(url, err, sizeof(err));
    if (s == NULL)
        print_error("open %s: %s\n", url, err);
    assert_non_null(s);
    assert_string_equal(lg_store_backend(s), "postgresql");
    return s;
}

static void sql(const char *q)
{
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        print_error("%s: %s\n", q, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static lg_key_record_t *make_key(const char *name)
{
    char secret[LG_KEY_SECRET_LEN + 1];
    lg_key_record_t *k = calloc(1, sizeof(*k));
    assert_int_equal(lg_key_generate(k, secret), 0);
    k->name = strdup(name);
    k->credit_limit_pico = -1;
    return k;
}

static void gen_row(lg_generation_row_t *r, const char *id, int64_t at_ms, const char *key, const char *model, const char *provider,
                    int64_t pt, int64_t ct, int64_t cost)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->created_at_ms = at_ms;
    snprintf(r->key_id, sizeof(r->key_id), "%s", key != NULL ? key : "");
    snprintf(r->requested_model, sizeof(r->requested_model), "%s", model);
    snprintf(r->served_model, sizeof(r->served_model), "%s", model);
    snprintf(r->provider, sizeof(r->provider), "%s", provider);
    snprintf(r->api, sizeof(r->api), "chat");
    snprintf(r->finish_reason, sizeof(r->finish_reason), "stop");
    snprintf(r->user_agent, sizeof(r->user_agent), "ua/1 \"quoted\" 'x'; DROP TABLE keys; --");
    r->prompt_tokens = pt;
    r->completion_tokens = ct;
    r->cached_tokens = pt / 2;
    r->reasoning_tokens = ct / 3;
    r->cost_pico = cost;
    r->latency_ms = 12.5;
    r->ttft_ms = 3.25;
    r->status = 200;
    r->streamed = (int)(pt & 1);
}

/* ---- schema ---- */

static void *open_close(void *arg)
{
    (void)arg;
    char err[512];
    lg_store_t *s = lg_store_open(url, err, sizeof(err));
    if (s != NULL)
        lg_store_close(s);
    return s != NULL ? (void *)1 : NULL;
}

static void test_pg_migrates_once_under_concurrency(void **state)
{
    (void)state;
    /* four "replicas" starting at once on an empty database: one migrates, all succeed */
    pthread_t t[4];
    for (int i = 0; i < 4; ++i)
        pthread_create(&t[i], NULL, open_close, NULL);
    for (int i = 0; i < 4; ++i) {
        void *ok;
        pthread_join(t[i], &ok);
        assert_non_null(ok);
    }
    lg_store_t *s = open_pg();
    assert_int_equal(lg_store_version(s), LG_STORE_SCHEMA_VERSION);
    lg_store_close(s);
}

static void test_pg_newer_schema_refused_and_bad_urls(void **state)
{
    (void)state;
    char err[512] = "";
    lg_store_close(open_pg());
    sql("UPDATE schema_version SET version = 99");
    assert_null(lg_store_open(url, err, sizeof(err)));
    assert_non_null(strstr(err, "schema version 99 is newer"));
    char restore[64];
    snprintf(restore, sizeof(restore), "UPDATE schema_version SET version = %d", LG_STORE_SCHEMA_VERSION);
    sql(restore);
    /* nothing listens there: a prompt error, and the password never shows in it */
    assert_null(lg_store_open("postgresql://u:hunter2@127.0.0.1:1/x", err, sizeof(err)));
    assert_non_null(strstr(err, "cannot connect"));
    assert_null(strstr(err, "hunter2"));
    char shown[128];
    lg_store_target_display("postgresql://u:hunter2@h/db", shown, sizeof(shown));
    assert_string_equal(shown, "postgresql://u:***@h/db");
    assert_string_equal(lg_store_backend_for("postgres://h/db"), "postgresql");
    assert_string_equal(lg_store_backend_for("/var/lib/llmgate.db"), "sqlite");
}

/* ---- keys ---- */

static void test_pg_key_crud(void **state)
{
    (void)state;
    lg_store_t *s = open_pg();
    lg_key_record_t *k = make_key("team 'a'; \"b\" — ünïcode"), *got = NULL;
    k->rpm = 60;
    k->tpm = 200000;
    k->credit_limit_pico = 25000000000000;
    k->reset_period = LG_RESET_MONTHLY;
    k->expires_at = 4102444800;
    k->allowed_models = calloc(3, sizeof(char *));
    k->allowed_models[0] = strdup("openai/*");
    k->allowed_models[1] = strdup("m/'x'");
    k->metadata = json_pack("{s:s,s:i}", "team", "a", "n", 7);
    assert_int_equal(lg_store_key_insert(s, k), 0);
    assert_int_equal(lg_store_key_insert(s, k), LG_EINVAL); /* same id and hash */
    assert_non_null(strstr(lg_store_errmsg(s), "already exists"));
    assert_int_equal(lg_store_key_get(s, k->id, &got), 0);
    assert_string_equal(got->name, k->name);
    assert_memory_equal(got->hash, k->hash, 32);
    assert_string_equal(got->hint, k->hint);
    assert_int_equal(got->rpm, 60);
    assert_int_equal(got->tpm, 200000);
    assert_int_equal(got->credit_limit_pico, 25000000000000);
    assert_int_equal(got->reset_period, LG_RESET_MONTHLY);
    assert_int_equal(got->expires_at, 4102444800);
    assert_string_equal(got->allowed_models[1], "m/'x'");
    assert_null(got->allowed_models[2]);
    assert_null(got->allowed_tools);
    assert_true(json_equal(got->metadata, k->metadata));
    lg_key_record_free(got);

    free(k->name);
    k->name = strdup("renamed");
    k->disabled = 1;
    assert_int_equal(lg_store_key_update(s, k), 0);
    assert_int_equal(lg_store_key_get(s, k->id, &got), 0);
    assert_string_equal(got->name, "renamed");
    assert_int_equal(got->disabled, 1);
    lg_key_record_free(got);

    lg_key_record_t **list;
    size_t n;
    assert_int_equal(lg_store_key_list(s, &list, &n), 0);
    assert_true(n >= 1);
    lg_store_key_list_free(list, n);

    assert_int_equal(lg_store_key_delete(s, k->id), 0);
    assert_int_equal(lg_store_key_delete(s, k->id), LG_ENOTFOUND);
    assert_int_equal(lg_store_key_get(s, k->id, &got), LG_ENOTFOUND);
    assert_int_equal(lg_store_key_update(s, k), LG_ENOTFOUND);
    /* a deleted key's hash can never come back */
    assert_int_equal(lg_store_key_insert(s, k), LG_EINVAL);
    lg_key_record_free(k);
    lg_store_close(s);
}

/* ---- ledger and usage: the same answers as SQLite ---- */

static void fill(lg_store_t *s, const char *key)
{
    lg_generation_row_t rows[40];
    int64_t day0 = INT64_C(1710460800000); /* 2024-03-15T00:00:00Z, a Friday */
    for (int i = 0; i < 40; ++i) {
        char id[40];
        snprintf(id, sizeof(id), "gen-eq-%02d", i);
        gen_row(&rows[i], id, day0 + (int64_t)i * 7 * 3600 * 1000, i % 5 == 0 ? "" : key, i % 2 ? "m/a" : "m/b",
                i % 3 ? "p1" : "p2", 10 + i, 20 + i, 1000 * (i + 1));
    }
    free(rows[3].attempts_json);
    rows[3].attempts_json = strdup("[{\"provider\":\"p1\",\"status\":500}]");
    int rc = lg_store_insert_generations(s, rows, 40);
    if (rc != 0)
        print_error("%s insert: %s\n", lg_store_backend(s), lg_store_errmsg(s));
    assert_int_equal(rc, 0);
    free(rows[3].attempts_json);
    rows[3].attempts_json = NULL;
    /* a row cut inside a UTF-8 sequence (user agents are cut to fit) is stored, not a reason to fail the batch */
    rows[4].user_agent[0] = (char)0xe2;
    rows[4].user_agent[1] = (char)0x82;
    rows[4].user_agent[2] = '\0';
    /* a retried batch: every row already there is skipped and counted */
    size_t skipped = 0;
    rc = lg_store_insert_generations_ex(s, rows, 5, &skipped);
    if (rc != 0)
        print_error("%s re-insert: %s\n", lg_store_backend(s), lg_store_errmsg(s));
    assert_int_equal(rc, 0);
    assert_int_equal(skipped, 5);
}

static void test_pg_answers_like_sqlite(void **state)
{
    (void)state;
    char err[512];
    lg_store_t *pg = open_pg(), *sq = lg_store_open(sqlite_path, err, sizeof(err));
    assert_non_null(sq);
    const char *key = "key_EQUIVALENCEabcdefg";
    fill(pg, key);
    fill(sq, key);

    json_t *a, *b;
    for (int i = 0; i < 40; i += 3) {
        char id[40];
        snprintf(id, sizeof(id), "gen-eq-%02d", i);
        assert_int_equal(lg_store_generation_get(pg, id, &a), 0);
        assert_int_equal(lg_store_generation_get(sq, id, &b), 0);
        if (!json_equal(a, b)) {
            char *x = json_dumps(a, JSON_SORT_KEYS), *y = json_dumps(b, JSON_SORT_KEYS);
            print_error("generation %s differs:\npg:     %s\nsqlite: %s\n", id, x, y);
            free(x);
            free(y);
        }
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }
    assert_int_equal(lg_store_generation_get(pg, "gen-none", &a), LG_ENOTFOUND);

    int64_t now = INT64_C(1710460800000) + INT64_C(10) * 86400000;
    assert_int_equal(lg_store_key_usage(pg, key, now, &a), 0);
    assert_int_equal(lg_store_key_usage(sq, key, now, &b), 0);
    assert_true(json_equal(a, b));
    assert_true(json_integer_value(json_object_get(a, "usage_pico")) > 0);
    json_decref(a);
    json_decref(b);
    assert_int_equal(lg_store_key_cost_since(pg, key, now - 86400000 * 3), lg_store_key_cost_since(sq, key, now - 86400000 * 3));

    const char *groups[] = {NULL, "key", "model", "provider", "day"};
    for (size_t g = 0; g < 5; ++g) {
        lg_usage_query_t q = {.group_by = groups[g]};
        if (g == 2)
            q.provider = "p1";
        if (g == 4) {
            q.since_ms = INT64_C(1710460800000) + 86400000;
            q.until_ms = INT64_C(1710460800000) + 5 * 86400000;
        }
        assert_int_equal(lg_store_usage_query(pg, &q, &a), 0);
        assert_int_equal(lg_store_usage_query(sq, &q, &b), 0);
        if (!json_equal(a, b)) {
            char *x = json_dumps(a, JSON_SORT_KEYS), *y = json_dumps(b, JSON_SORT_KEYS);
            print_error("usage by %s differs:\npg:     %s\nsqlite: %s\n", groups[g] ? groups[g] : "total", x, y);
            free(x);
            free(y);
        }
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }
    lg_usage_query_t bad = {.group_by = "nope; DROP TABLE generations"};
    assert_int_equal(lg_store_usage_query(pg, &bad, &a), LG_EINVAL);
    lg_store_close(pg);
    lg_store_close(sq);
}

static void test_pg_survives_a_server_restart(void **state)
{
    (void)state;
    lg_store_t *s = open_pg();
    lg_generation_row_t r;
    gen_row(&r, "gen-restart-1", 1000, "", "m/a", "p1", 1, 1, 1);
    assert_int_equal(lg_store_insert_generations(s, &r, 1), 0);
    assert_int_equal(sh("pg-stop", NULL, 0), 0);
    gen_row(&r, "gen-restart-2", 2000, "", "m/a", "p1", 1, 1, 1);
    assert_int_equal(lg_store_insert_generations(s, &r, 1), LG_EINTERNAL);
    assert_int_equal(lg_store_unreachable(s), 1); /* the ledger keeps such a batch instead of dropping it */
    char out[64];
    assert_int_equal(sh("pg-start", out, sizeof(out)), 0);
    /* the same handle reconnects by itself */
    assert_int_equal(lg_store_insert_generations(s, &r, 1), 0);
    assert_int_equal(lg_store_unreachable(s), 0);
    json_t *g;
    assert_int_equal(lg_store_generation_get(s, "gen-restart-2", &g), 0);
    json_decref(g);
    lg_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_migrates_once_under_concurrency),
        cmocka_unit_test(test_pg_newer_schema_refused_and_bad_urls),
        cmocka_unit_test(test_pg_key_crud),
        cmocka_unit_test(test_pg_answers_like_sqlite),
        cmocka_unit_test(test_pg_survives_a_server_restart),
    };
    return cmocka_run_group_tests_name("store_pg", tests, group_setup, group_teardown);
}
