/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/store/store.c (and the key helpers of src/domain/key.c):
 * schema creation and migrations, refusal of newer schemas, key CRUD with
 * hostile names, soft delete, the generation row in OpenRouter's shape, usage
 * aggregates and the daily/weekly/monthly windows at their exact boundaries.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "domain/key.h"
#include "store/store.h"

static char tmpdir[512];
static char dbpath[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/lg_store_test_XXXXXX", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh database path per test. */
static lg_store_t *fresh_store(const char *name)
{
    char err[512] = "";
    snprintf(dbpath, sizeof(dbpath), "%s/%s.db", tmpdir, name);
    lg_store_t *s = lg_store_open(dbpath, err, sizeof(err));
    if (s == NULL)
        print_error("open %s: %s\n", dbpath, err);
    assert_non_null(s);
    return s;
}

static int64_t utc_ms(int y, int mo, int d, int h, int mi, int sec)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    return (int64_t)timegm(&tm) * 1000;
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

static char **strv(const char *a, const char *b)
{
    char **v = calloc(3, sizeof(*v));
    v[0] = strdup(a);
    v[1] = b != NULL ? strdup(b) : NULL;
    return v;
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
    r->prompt_tokens = pt;
    r->completion_tokens = ct;
    r->cost_pico = cost;
    r->status = 200;
}

/* ---- schema ---- */

static void test_store_open_creates_schema_v1(void **state)
{
    char err[512], path[PATH_MAX];
    struct stat st;
    sqlite3 *db;
    sqlite3_stmt *q;
    (void)state;

    /* parent folders are created too */
    snprintf(path, sizeof(path), "%s/deep/er/gw.db", tmpdir);
    lg_store_t *s = lg_store_open(path, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(lg_store_version(s), LG_STORE_SCHEMA_VERSION);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), LG_STORE_SCHEMA_VERSION);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE); /* exactly one row */
    sqlite3_finalize(q);
    static const char *const objects[] = {
        "keys",          "generations",  "generations_key_time", "generations_time",   "generations_provider", "generations_model",
        "oauth_clients", "oauth_tokens", "oauth_tokens_grant",   "oauth_tokens_expiry"};
    for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); ++i) {
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = ?1", -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_text(q, 1, objects[i], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        if (sqlite3_column_int(q, 0) != 1)
            print_error("missing schema object %s\n", objects[i]);
        assert_int_equal(sqlite3_column_int(q, 0), 1);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    lg_store_close(s);

    /* a second open migrates nothing and still reports the current version */
    s = lg_store_open(path, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(lg_store_version(s), LG_STORE_SCHEMA_VERSION);
    lg_store_close(s);
}

static void test_store_reopen_keeps_data(void **state)
{
    char err[512];
    lg_key_record_t *k = make_key("persist"), *got;
    lg_generation_row_t r;
    json_t *g;
    (void)state;

    lg_store_t *s = fresh_store("reopen");
    assert_int_equal(lg_store_key_insert(s, k), 0);
    gen_row(&r, "gen-1", 1000, k->id, "m/x", "p", 1, 2, 3);
    assert_int_equal(lg_store_insert_generations(s, &r, 1), 0);
    lg_store_close(s);

    s = lg_store_open(dbpath, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(lg_store_key_get(s, k->id, &got), 0);
    assert_string_equal(got->name, "persist");
    assert_memory_equal(got->hash, k->hash, 32);
    assert_int_equal(lg_store_generation_get(s, "gen-1", &g), 0);
    json_decref(g);
    lg_key_record_free(got);
    lg_store_close(s);
    lg_key_record_free(k);
}

static void test_store_newer_version_refused(void **state)
{
    char err[512] = "";
    sqlite3 *db;
    (void)state;

    lg_store_close(fresh_store("newer"));
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(lg_store_open(dbpath, err, sizeof(err)));
    char want[96];
    snprintf(want, sizeof(want), "schema version 99 is newer than this llmgate supports (%d)", LG_STORE_SCHEMA_VERSION);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, dbpath));
}

static void test_store_not_a_database(void **state)
{
    char err[512] = "", path[PATH_MAX];
    (void)state;
    snprintf(path, sizeof(path), "%s/garbage.db", tmpdir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; ++i)
        fputs("this is not sqlite at all ", fp);
    fclose(fp);
    assert_null(lg_store_open(path, err, sizeof(err)));
    assert_non_null(strstr(err, "not a database"));
}

/* ---- keys ---- */

static void assert_key_equal(const lg_key_record_t *a, const lg_key_record_t *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_memory_equal(a->hash, b->hash, 32);
    assert_string_equal(a->hint, b->hint);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->expires_at, b->expires_at);
    assert_int_equal(a->disabled, b->disabled);
    assert_int_equal(a->credit_limit_pico, b->credit_limit_pico);
    assert_int_equal(a->reset_period, b->reset_period);
    assert_int_equal(a->rpm, b->rpm);
    assert_int_equal(a->tpm, b->tpm);
    for (int pass = 0; pass < 2; ++pass) {
        char **x = pass == 0 ? a->allowed_models : a->allowed_tools, **y = pass == 0 ? b->allowed_models : b->allowed_tools;
        assert_true((x == NULL) == (y == NULL));
        for (size_t i = 0; x != NULL && (x[i] != NULL || y[i] != NULL); ++i) {
            assert_non_null(x[i]);
            assert_non_null(y[i]);
            assert_string_equal(x[i], y[i]);
        }
    }
    assert_true((a->metadata == NULL) == (b->metadata == NULL));
    if (a->metadata != NULL)
        assert_true(json_equal(a->metadata, b->metadata));
}

static void test_store_key_generate(void **state)
{
    char secret[LG_KEY_SECRET_LEN + 1], secret2[LG_KEY_SECRET_LEN + 1];
    lg_key_record_t a, b;
    uint8_t h[32];
    (void)state;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(lg_key_generate(&a, secret), 0);
    assert_int_equal(lg_key_generate(&b, secret2), 0);
    assert_int_equal(strlen(a.id), LG_KEY_ID_LEN);
    assert_memory_equal(a.id, "key_", 4);
    assert_int_equal(strlen(secret), LG_KEY_SECRET_LEN);
    assert_memory_equal(secret, LG_KEY_SECRET_PREFIX, strlen(LG_KEY_SECRET_PREFIX));
    for (const char *p = secret + strlen(LG_KEY_SECRET_PREFIX); *p != '\0'; ++p)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));
    assert_int_equal(strlen(a.hint), 10);
    assert_memory_equal(a.hint, secret, 10);
    lg_key_hash(secret, strlen(secret), h);
    assert_memory_equal(h, a.hash, 32);
    assert_string_not_equal(secret, secret2);
    assert_string_not_equal(a.id, b.id);
    assert_true(a.created_at > 1700000000);

    /* SHA-256("abc"), FIPS 180-2 test vector */
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    lg_key_hash("abc", 3, h);
    assert_memory_equal(h, abc, 32);
}

static void test_store_key_crud_round_trip(void **state)
{
    static const char sql_name[] = "x'); DROP TABLE keys;--";
    char long_name[LG_KEY_NAME_MAX + 1];
    lg_key_record_t *k = make_key(sql_name), *k2, *got, **list;
    size_t n;
    (void)state;

    lg_store_t *s = fresh_store("crud");
    k->expires_at = 2000000000;
    k->credit_limit_pico = 12500000000000; /* 12.5 USD */
    k->reset_period = LG_RESET_MONTHLY;
    k->rpm = 60;
    k->tpm = 100000;
    k->allowed_models = strv("openai/gpt-4o", "mock/*");
    k->allowed_tools = strv("github__*", NULL);
    k->metadata = json_pack("{ss si}", "team", "x'); DELETE FROM generations;--", "n", 3);
    assert_int_equal(lg_store_key_insert(s, k), 0);

    memset(long_name, 'n', LG_KEY_NAME_MAX);
    long_name[LG_KEY_NAME_MAX] = '\0';
    k2 = make_key(long_name);
    assert_int_equal(lg_store_key_insert(s, k2), 0);

    assert_int_equal(lg_store_key_get(s, k->id, &got), 0);
    assert_key_equal(got, k);
    lg_key_record_free(got);
    assert_int_equal(lg_store_key_get(s, k2->id, &got), 0);
    assert_int_equal(strlen(got->name), LG_KEY_NAME_MAX);
    assert_key_equal(got, k2);
    lg_key_record_free(got);

    assert_int_equal(lg_store_key_list(s, &list, &n), 0);
    assert_int_equal(n, 2); /* the table survived the SQL-looking name */
    lg_store_key_list_free(list, n);

    /* update every mutable field; lists and metadata can be cleared */
    free(k->name);
    k->name = strdup("renamed \"quoted\" ñame");
    k->expires_at = 0;
    k->disabled = 1;
    k->credit_limit_pico = -1;
    k->reset_period = LG_RESET_DAILY;
    k->rpm = 0;
    k->tpm = 7;
    for (char **p = k->allowed_models; *p != NULL; ++p)
        free(*p);
    free(k->allowed_models);
    k->allowed_models = NULL;
    json_decref(k->metadata);
    k->metadata = NULL;
    assert_int_equal(lg_store_key_update(s, k), 0);
    assert_int_equal(lg_store_key_get(s, k->id, &got), 0);
    assert_key_equal(got, k);
    lg_key_record_free(got);

    /* update cannot change identity fields */
    lg_key_record_t *mut = lg_key_record_dup(k);
    memset(mut->hash, 0xAB, 32);
    mut->created_at = 5;
    assert_int_equal(lg_store_key_update(s, mut), 0);
    assert_int_equal(lg_store_key_get(s, k->id, &got), 0);
    assert_memory_equal(got->hash, k->hash, 32);
    assert_int_equal(got->created_at, k->created_at);
    lg_key_record_free(got);
    lg_key_record_free(mut);

    assert_int_equal(lg_store_key_get(s, "key_doesnotexist000000", &got), LG_ENOTFOUND);
    assert_null(got);
    lg_key_record_t *ghost = make_key("ghost");
    assert_int_equal(lg_store_key_update(s, ghost), LG_ENOTFOUND);
    lg_key_record_free(ghost);

    lg_store_close(s);
    lg_key_record_free(k);
    lg_key_record_free(k2);
}

static void test_store_key_hash_unique(void **state)
{
    lg_key_record_t *a = make_key("a"), *b = make_key("b"), *c = make_key("c");
    (void)state;

    lg_store_t *s = fresh_store("unique");
    assert_int_equal(lg_store_key_insert(s, a), 0);
    memcpy(b->hash, a->hash, 32);
    assert_int_equal(lg_store_key_insert(s, b), LG_EINVAL);
    assert_non_null(strstr(lg_store_errmsg(s), "already exists"));
    memcpy(c->id, a->id, sizeof(c->id)); /* same id, different hash */
    assert_int_equal(lg_store_key_insert(s, c), LG_EINVAL);
    lg_store_close(s);
    lg_key_record_free(a);
    lg_key_record_free(b);
    lg_key_record_free(c);
}

static void test_store_key_soft_delete(void **state)
{
    lg_key_record_t *a = make_key("a"), *b = make_key("b"), *got, **list;
    size_t n;
    sqlite3 *db;
    sqlite3_stmt *q;
    (void)state;

    lg_store_t *s = fresh_store("softdel");
    assert_int_equal(lg_store_key_insert(s, a), 0);
    assert_int_equal(lg_store_key_insert(s, b), 0);
    assert_int_equal(lg_store_key_delete(s, a->id), 0);
    assert_int_equal(lg_store_key_get(s, a->id, &got), LG_ENOTFOUND);
    assert_int_equal(lg_store_key_delete(s, a->id), LG_ENOTFOUND);
    assert_int_equal(lg_store_key_update(s, a), LG_ENOTFOUND);
    assert_int_equal(lg_store_key_list(s, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->id, b->id);
    lg_store_key_list_free(list, n);

    /* the hash stays reserved: a new key with the deleted secret is refused */
    lg_key_record_t *again = make_key("again");
    memcpy(again->hash, a->hash, 32);
    assert_int_equal(lg_store_key_insert(s, again), LG_EINVAL);
    lg_key_record_free(again);
    lg_store_close(s);

    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT deleted, length(hash) FROM keys WHERE id = ?1", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, a->id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    assert_int_equal(sqlite3_column_int(q, 1), 32);
    sqlite3_finalize(q);
    sqlite3_close(db);
    lg_key_record_free(a);
    lg_key_record_free(b);
}

/* ---- generations ---- */

static void test_store_generation_shape(void **state)
{
    lg_generation_row_t r;
    json_t *g, *pr;
    (void)state;

    lg_store_t *s = fresh_store("gen");
    gen_row(&r, "gen-abc", utc_ms(2024, 5, 6, 7, 8, 9) + 123, "key_AAAAAAAAAAAAAAAAAAAA", "openai/gpt-4o", "openai", 100, 20,
            1500000000); /* 0.0015 USD */
    snprintf(r.requested_model, sizeof(r.requested_model), "openai/gpt-4o-auto");
    snprintf(r.upstream_model, sizeof(r.upstream_model), "gpt-4o-2024-08-06");
    snprintf(r.api, sizeof(r.api), "chat");
    r.attempts_json = strdup("[{\"provider\":\"azure\",\"status\":503},{\"provider\":\"openai\",\"status\":200}]");
    r.cached_tokens = 30;
    r.cache_write_tokens = 4;
    r.reasoning_tokens = 5;
    r.latency_ms = 812.5;
    r.ttft_ms = 120.25;
    r.generation_time_ms = 700;
    snprintf(r.finish_reason, sizeof(r.finish_reason), "stop");
    snprintf(r.native_finish_reason, sizeof(r.native_finish_reason), "end_turn");
    r.streamed = 1;
    snprintf(r.user_agent, sizeof(r.user_agent), "curl/8 \xff\xfe"); /* invalid UTF-8 must not break the JSON */
    snprintf(r.http_referer, sizeof(r.http_referer), "https://app.example");
    assert_int_equal(lg_store_insert_generations(s, &r, 1), 0);
    free(r.attempts_json);

    assert_int_equal(lg_store_generation_get(s, "gen-abc", &g), 0);
    assert_string_equal(json_string_value(json_object_get(g, "id")), "gen-abc");
    assert_string_equal(json_string_value(json_object_get(g, "created_at")), "2024-05-06T07:08:09.123Z");
    assert_string_equal(json_string_value(json_object_get(g, "model")), "openai/gpt-4o");
    assert_string_equal(json_string_value(json_object_get(g, "requested_model")), "openai/gpt-4o-auto");
    assert_string_equal(json_string_value(json_object_get(g, "provider_name")), "openai");
    assert_string_equal(json_string_value(json_object_get(g, "api_type")), "chat");
    assert_true(json_is_true(json_object_get(g, "streamed")));
    assert_true(json_is_false(json_object_get(g, "cancelled")));
    assert_int_equal(json_integer_value(json_object_get(g, "tokens_prompt")), 100);
    assert_int_equal(json_integer_value(json_object_get(g, "tokens_completion")), 20);
    assert_int_equal(json_integer_value(json_object_get(g, "native_tokens_prompt")), 100);
    assert_int_equal(json_integer_value(json_object_get(g, "native_tokens_completion")), 20);
    assert_int_equal(json_integer_value(json_object_get(g, "native_tokens_cached")), 30);
    assert_int_equal(json_integer_value(json_object_get(g, "native_tokens_reasoning")), 5);
    assert_true(json_real_value(json_object_get(g, "total_cost")) == 0.0015);
    assert_true(json_real_value(json_object_get(g, "usage")) == 0.0015);
    assert_int_equal(json_integer_value(json_object_get(g, "cost_pico")), 1500000000);
    assert_true(json_real_value(json_object_get(g, "latency")) == 812.5);
    assert_true(json_real_value(json_object_get(g, "generation_time")) == 700);
    assert_string_equal(json_string_value(json_object_get(g, "finish_reason")), "stop");
    assert_string_equal(json_string_value(json_object_get(g, "native_finish_reason")), "end_turn");
    assert_true(json_is_false(json_object_get(g, "is_byok")));
    assert_true(json_is_null(json_object_get(g, "upstream_inference_cost")));
    assert_true(json_is_null(json_object_get(g, "cache_discount")));
    assert_string_equal(json_string_value(json_object_get(g, "origin")), "https://app.example");
    assert_string_equal(json_string_value(json_object_get(g, "http_referer")), "https://app.example");
    assert_string_equal(json_string_value(json_object_get(g, "user_agent")), "curl/8 ??");
    assert_string_equal(json_string_value(json_object_get(g, "key_id")), "key_AAAAAAAAAAAAAAAAAAAA");
    pr = json_object_get(g, "provider_responses");
    assert_true(json_is_array(pr));
    assert_int_equal(json_array_size(pr), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pr, 0), "provider")), "azure");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(pr, 1), "status")), 200);
    char *text = json_dumps(g, 0);
    assert_non_null(text); /* serialisable as a whole */
    free(text);
    json_decref(g);

    /* a row without attempts still has the array; absent id is LG_ENOTFOUND */
    gen_row(&r, "gen-bare", 1, NULL, "m", "p", 0, 0, 0);
    assert_int_equal(lg_store_insert_generations(s, &r, 1), 0);
    assert_int_equal(lg_store_generation_get(s, "gen-bare", &g), 0);
    assert_int_equal(json_array_size(json_object_get(g, "provider_responses")), 0);
    assert_true(json_is_null(json_object_get(g, "key_id")));
    assert_string_equal(json_string_value(json_object_get(g, "origin")), "");
    json_decref(g);
    assert_int_equal(lg_store_generation_get(s, "gen-nope", &g), LG_ENOTFOUND);
    assert_null(g);

    /* the same id twice is stored once */
    size_t skipped = 9;
    assert_int_equal(lg_store_insert_generations_ex(s, &r, 1, &skipped), 0);
    assert_int_equal(skipped, 1);
    lg_store_close(s);
}

static json_t *find_group(json_t *data, const char *field, const char *value)
{
    size_t i;
    json_t *row;
    json_array_foreach(data, i, row)
    {
        const char *v = json_string_value(json_object_get(row, field));
        if (v != NULL && strcmp(v, value) == 0)
            return row;
    }
    return NULL;
}

static void test_store_usage_query(void **state)
{
    lg_generation_row_t rows[6];
    lg_usage_query_t q;
    json_t *res, *row;
    int64_t d1 = utc_ms(2024, 6, 1, 10, 0, 0), d2 = utc_ms(2024, 6, 2, 23, 59, 59) + 999;
    (void)state;

    lg_store_t *s = fresh_store("usage");
    gen_row(&rows[0], "g0", d1, "key_A", "m/a", "p1", 10, 1, 1000);
    gen_row(&rows[1], "g1", d1 + 1, "key_A", "m/b", "p2", 20, 2, 2000);
    gen_row(&rows[2], "g2", d2, "key_B", "m/a", "p1", 30, 3, 4000);
    gen_row(&rows[3], "g3", d2, NULL, "m/a", "p1", 40, 4, 8000);
    gen_row(&rows[4], "g4", d2 + 1, "key_B", "x'); DROP TABLE generations;--", "p1", 50, 5, 16000);
    gen_row(&rows[5], "g5", d1 - 1, "key_A", "m/a", "p1", 60, 6, 32000);
    assert_int_equal(lg_store_insert_generations(s, rows, 6), 0);

    memset(&q, 0, sizeof(q));
    assert_int_equal(lg_store_usage_query(s, &q, &res), 0);
    row = json_object_get(res, "total");
    assert_int_equal(json_integer_value(json_object_get(row, "requests")), 6);
    assert_int_equal(json_integer_value(json_object_get(row, "prompt_tokens")), 210);
    assert_int_equal(json_integer_value(json_object_get(row, "completion_tokens")), 21);
    assert_int_equal(json_integer_value(json_object_get(row, "cost_pico")), 63000);
    assert_true(json_real_value(json_object_get(row, "cost")) == 63000 / 1e12);
    assert_int_equal(json_array_size(json_object_get(res, "data")), 1);
    json_decref(res);

    q.group_by = "key";
    assert_int_equal(lg_store_usage_query(s, &q, &res), 0);
    assert_int_equal(json_array_size(json_object_get(res, "data")), 3);
    row = find_group(json_object_get(res, "data"), "key", "key_A");
    assert_int_equal(json_integer_value(json_object_get(row, "requests")), 3);
    assert_int_equal(json_integer_value(json_object_get(row, "cost_pico")), 35000);
    row = find_group(json_object_get(res, "data"), "key", ""); /* rows without a key */
    assert_int_equal(json_integer_value(json_object_get(row, "cost_pico")), 8000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "total"), "cost_pico")), 63000);
    json_decref(res);

    q.group_by = "model";
    q.key_id = "key_B";
    assert_int_equal(lg_store_usage_query(s, &q, &res), 0);
    assert_int_equal(json_array_size(json_object_get(res, "data")), 2);
    row = find_group(json_object_get(res, "data"), "model", "x'); DROP TABLE generations;--");
    assert_int_equal(json_integer_value(json_object_get(row, "prompt_tokens")), 50);
    json_decref(res);

    q.key_id = NULL;
    q.group_by = "provider";
    q.model = "m/a";
    assert_int_equal(lg_store_usage_query(s, &q, &res), 0);
    assert_int_equal(json_array_size(json_object_get(res, "data")), 1);
    row = find_group(json_object_get(res, "data"), "provider", "p1");
    assert_int_equal(json_integer_value(json_object_get(row, "requests")), 4);
    json_decref(res);

    /* UTC days; since inclusive, until exclusive */
    memset(&q, 0, sizeof(q));
    q.group_by = "day";
    q.since_ms = d1;
    q.until_ms = d2 + 1;
    assert_int_equal(lg_store_usage_query(s, &q, &res), 0);
    assert_int_equal(json_array_size(json_object_get(res, "data")), 2);
    row = json_array_get(json_object_get(res, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(row, "day")), "2024-06-01");
    assert_int_equal(json_integer_value(json_object_get(row, "cost_pico")), 3000);
    row = json_array_get(json_object_get(res, "data"), 1);
    assert_string_equal(json_string_value(json_object_get(row, "day")), "2024-06-02");
    assert_int_equal(json_integer_value(json_object_get(row, "cost_pico")), 12000);
    json_decref(res);

    q.group_by = "key; DROP TABLE generations";
    assert_int_equal(lg_store_usage_query(s, &q, &res), LG_EINVAL);
    assert_null(res);
    q.group_by = NULL;
    q.provider = "nobody";
    assert_int_equal(lg_store_usage_query(s, &q, &res), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "total"), "requests")), 0);
    json_decref(res);
    lg_store_close(s);
}

static void test_store_period_start(void **state)
{
    (void)state;
    int64_t wed = utc_ms(2024, 3, 13, 15, 30, 0);
    assert_int_equal(lg_period_start_ms(LG_RESET_NONE, wed), 0);
    assert_int_equal(lg_period_start_ms(LG_RESET_DAILY, wed), utc_ms(2024, 3, 13, 0, 0, 0));
    assert_int_equal(lg_period_start_ms(LG_RESET_WEEKLY, wed), utc_ms(2024, 3, 11, 0, 0, 0));
    assert_int_equal(lg_period_start_ms(LG_RESET_MONTHLY, wed), utc_ms(2024, 3, 1, 0, 0, 0));
    /* Sunday belongs to the week that began on Monday */
    assert_int_equal(lg_period_start_ms(LG_RESET_WEEKLY, utc_ms(2024, 3, 17, 23, 59, 59)), utc_ms(2024, 3, 11, 0, 0, 0));
    /* exact boundaries map to themselves; one ms earlier to the previous period */
    int64_t jan1 = utc_ms(2024, 1, 1, 0, 0, 0); /* a Monday */
    assert_int_equal(lg_period_start_ms(LG_RESET_DAILY, jan1), jan1);
    assert_int_equal(lg_period_start_ms(LG_RESET_WEEKLY, jan1), jan1);
    assert_int_equal(lg_period_start_ms(LG_RESET_MONTHLY, jan1), jan1);
    assert_int_equal(lg_period_start_ms(LG_RESET_DAILY, jan1 - 1), utc_ms(2023, 12, 31, 0, 0, 0));
    assert_int_equal(lg_period_start_ms(LG_RESET_WEEKLY, jan1 - 1), utc_ms(2023, 12, 25, 0, 0, 0));
    assert_int_equal(lg_period_start_ms(LG_RESET_MONTHLY, jan1 - 1), utc_ms(2023, 12, 1, 0, 0, 0));
    /* leap day */
    assert_int_equal(lg_period_start_ms(LG_RESET_MONTHLY, utc_ms(2024, 2, 29, 12, 0, 0)), utc_ms(2024, 2, 1, 0, 0, 0));
}

static void test_store_key_usage_windows(void **state)
{
    lg_generation_row_t rows[8];
    json_t *u;
    const char *k = "key_WINDOWSWINDOWSWIND";
    int64_t now = utc_ms(2024, 3, 13, 15, 0, 0); /* Wednesday */
    int64_t day = utc_ms(2024, 3, 13, 0, 0, 0), week = utc_ms(2024, 3, 11, 0, 0, 0), month = utc_ms(2024, 3, 1, 0, 0, 0);
    (void)state;

    lg_store_t *s = fresh_store("windows");
    gen_row(&rows[0], "w0", day, k, "m", "p", 0, 0, 1);             /* daily, weekly, monthly */
    gen_row(&rows[1], "w1", now, k, "m", "p", 0, 0, 2);             /* daily ... */
    gen_row(&rows[2], "w2", day - 1, k, "m", "p", 0, 0, 4);         /* weekly, monthly */
    gen_row(&rows[3], "w3", week, k, "m", "p", 0, 0, 8);            /* weekly, monthly */
    gen_row(&rows[4], "w4", week - 1, k, "m", "p", 0, 0, 16);       /* monthly */
    gen_row(&rows[5], "w5", month, k, "m", "p", 0, 0, 32);          /* monthly */
    gen_row(&rows[6], "w6", month - 1, k, "m", "p", 0, 0, 64);      /* total only */
    gen_row(&rows[7], "w7", now, "key_other", "m", "p", 0, 0, 128); /* another key */
    assert_int_equal(lg_store_insert_generations(s, rows, 8), 0);

    assert_int_equal(lg_store_key_usage(s, k, now, &u), 0);
    assert_int_equal(json_integer_value(json_object_get(u, "usage_pico")), 127);
    assert_int_equal(json_integer_value(json_object_get(u, "usage_daily_pico")), 3);
    assert_int_equal(json_integer_value(json_object_get(u, "usage_weekly_pico")), 15);
    assert_int_equal(json_integer_value(json_object_get(u, "usage_monthly_pico")), 63);
    assert_true(json_is_real(json_object_get(u, "usage")));
    assert_true(json_real_value(json_object_get(u, "usage")) == 127 / 1e12);
    assert_true(json_real_value(json_object_get(u, "usage_daily")) == 3 / 1e12);
    assert_true(json_real_value(json_object_get(u, "usage_weekly")) == 15 / 1e12);
    assert_true(json_real_value(json_object_get(u, "usage_monthly")) == 63 / 1e12);
    json_decref(u);

    assert_int_equal(lg_store_key_cost_since(s, k, week), 15);
    assert_int_equal(lg_store_key_cost_since(s, k, 0), 127);
    assert_int_equal(lg_store_key_cost_since(s, "key_none", 0), 0);
    assert_int_equal(lg_store_key_usage(s, "key_none", now, &u), 0);
    assert_true(json_real_value(json_object_get(u, "usage")) == 0.0);
    json_decref(u);
    lg_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_open_creates_schema_v1), cmocka_unit_test(test_store_reopen_keeps_data),
        cmocka_unit_test(test_store_newer_version_refused),  cmocka_unit_test(test_store_not_a_database),
        cmocka_unit_test(test_store_key_generate),           cmocka_unit_test(test_store_key_crud_round_trip),
        cmocka_unit_test(test_store_key_hash_unique),        cmocka_unit_test(test_store_key_soft_delete),
        cmocka_unit_test(test_store_generation_shape),       cmocka_unit_test(test_store_usage_query),
        cmocka_unit_test(test_store_period_start),           cmocka_unit_test(test_store_key_usage_windows),
    };
    return cmocka_run_group_tests_name("store", tests, setup, teardown);
}
