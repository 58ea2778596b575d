/* SPDX-License-Identifier: MIT */
/*
 * SQLite backend of the store seam (store_backend.h): connection set-up (WAL),
 * ordered schema migrations, key CRUD and the ledger's inserts and aggregate
 * queries. Every statement is a fixed SQL text with bound parameters: names,
 * models and other caller data are never spliced into SQL.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "core/util.h"
#include "store/store_backend.h"

/* the shared helpers under their short local names */
#define jstr(s) lg__store_jstr((const char *)(s))
#define usd lg__store_usd
#define iso8601 lg__store_iso8601
#define strv_to_json lg__store_strv_to_json
#define strv_from_json(t) lg__store_strv_from_json((const char *)(t))
#define usage_row lg__store_usage_row
#define USAGE_NFIELDS LG_STORE_USAGE_NFIELDS

struct sqlite_store {
    lg_store_t base; /* first: an lg_store_t * is a struct sqlite_store * */
    sqlite3 *db;
    sqlite3_stmt *insert_generation; /* cached: the ledger writer runs it for every row */
};

#define SQ(s) ((struct sqlite_store *)(s))

static const lg_store_ops_t sqlite_ops;
static void sq_close(lg_store_t *s);

/*
 * Migrations, in order: migrations[i] takes the schema from version i to i + 1. Append only; never edit a shipped
 * entry (databases in the field already ran it).
 */
static const char *const migrations[] = {
    /* 1: keys and the generation ledger */
    "CREATE TABLE keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  hint TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  credit_limit_pico INTEGER NOT NULL DEFAULT -1,"
    "  reset_period TEXT NOT NULL DEFAULT 'none' CHECK (reset_period IN ('none', 'daily', 'weekly', 'monthly')),"
    "  rpm INTEGER NOT NULL DEFAULT 0,"
    "  tpm INTEGER NOT NULL DEFAULT 0,"
    "  allowed_models TEXT,"
    "  allowed_tools TEXT,"
    "  metadata TEXT,"
    "  deleted INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE generations ("
    "  id TEXT PRIMARY KEY,"
    "  created_at_ms INTEGER NOT NULL,"
    "  key_id TEXT,"
    "  requested_model TEXT,"
    "  served_model TEXT,"
    "  provider TEXT,"
    "  upstream_model TEXT,"
    "  api TEXT,"
    "  attempts TEXT,"
    "  prompt_tokens INTEGER NOT NULL DEFAULT 0,"
    "  completion_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cached_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cache_write_tokens INTEGER NOT NULL DEFAULT 0,"
    "  reasoning_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cost_pico INTEGER NOT NULL DEFAULT 0,"
    "  latency_ms REAL,"
    "  ttft_ms REAL,"
    "  generation_time_ms REAL,"
    "  status INTEGER,"
    "  finish_reason TEXT,"
    "  native_finish_reason TEXT,"
    "  streamed INTEGER NOT NULL DEFAULT 0,"
    "  cancelled INTEGER NOT NULL DEFAULT 0,"
    "  user_agent TEXT,"
    "  http_referer TEXT"
    ");"
    "CREATE INDEX generations_key_time ON generations (key_id, created_at_ms);"
    "CREATE INDEX generations_time ON generations (created_at_ms);"
    "CREATE INDEX generations_provider ON generations (provider);"
    "CREATE INDEX generations_model ON generations (served_model);",
    /* 2: OAuth for MCP clients (mcp/oauth_store.c): registered clients and issued tokens, secrets as SHA-256 only */
    "CREATE TABLE oauth_clients ("
    "  client_id TEXT PRIMARY KEY,"
    "  metadata TEXT NOT NULL,"
    "  secret_hash BLOB CHECK (secret_hash IS NULL OR length(secret_hash) = 32),"
    "  created_at INTEGER NOT NULL,"
    "  used INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE oauth_tokens ("
    "  hash BLOB PRIMARY KEY CHECK (length(hash) = 32),"
    "  kind INTEGER NOT NULL,"
    "  grant_id TEXT NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  key_id TEXT NOT NULL,"
    "  resource TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  state INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);"
    "CREATE INDEX oauth_tokens_expiry ON oauth_tokens (expires_at);",
    /* 3: response-cache hits (src/pipeline/cache_exchange.c): the generation whose stored answer was replayed */
    "ALTER TABLE generations ADD COLUMN response_cache_source_id TEXT;",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == LG_STORE_SCHEMA_VERSION, "one migration per version");

#define set_err lg__store_set_err

/* Map a failed sqlite call to an lg error, remembering sqlite's message. */
static int db_fail(lg_store_t *s, const char *what)
{
    int code = sqlite3_extended_errcode(SQ(s)->db);
    set_err(s, "%s: %s", what, sqlite3_errmsg(SQ(s)->db));
    if ((code & 0xff) == SQLITE_CONSTRAINT)
        return LG_EINVAL;
    return LG_EINTERNAL;
}

static int exec(lg_store_t *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(SQ(s)->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(s, "%s", msg != NULL ? msg : sqlite3_errmsg(SQ(s)->db));
        sqlite3_free(msg);
        return LG_EINTERNAL;
    }
    return 0;
}

static int prepare(lg_store_t *s, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(SQ(s)->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_fail(s, "prepare");
    }
    return 0;
}

/* mkdir -p for the database's folder */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(buf)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
        return 0;
    *slash = '\0';
    for (char *p = buf + 1;; ++p) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "%s: cannot create folder %s: %s", path, buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

static int migrate(lg_store_t *s, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int version = 0, known = (int)(sizeof(migrations) / sizeof(migrations[0]));

    /* IMMEDIATE: two processes starting on a fresh file must not both run migration 1 */
    if (exec(s, "BEGIN IMMEDIATE") != 0)
        goto fail;
    if (exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)") != 0)
        goto rollback;
    if (prepare(s, "SELECT max(version) FROM schema_version", &st) != 0)
        goto rollback;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > known) {
        set_err(s, "database schema version %d is newer than this llmgate supports (%d); upgrade llmgate", version, known);
        goto rollback;
    }
    for (int v = version; v < known; ++v)
        if (exec(s, migrations[v]) != 0) {
            char m[sizeof(s->errmsg)];
            memcpy(m, s->errmsg, sizeof(m));
            set_err(s, "migration to version %d failed: %.200s", v + 1, m);
            goto rollback;
        }
    if (version != known) {
        if (exec(s, "DELETE FROM schema_version") != 0 || prepare(s, "INSERT INTO schema_version (version) VALUES (?1)", &st) != 0)
            goto rollback;
        sqlite3_bind_int(st, 1, known);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            db_fail(s, "schema_version");
            goto rollback;
        }
    }
    if (exec(s, "COMMIT") != 0)
        goto rollback;
    s->version = known;
    return 0;
rollback:
    sqlite3_exec(SQ(s)->db, "ROLLBACK", NULL, NULL, NULL);
fail:
    snprintf(err, errlen, "%s", s->errmsg);
    return -1;
}

lg_store_t *lg__store_sqlite_open(const char *path, char *err, size_t errlen)
{
    char dummy[8];
    lg_store_t *s;
    sqlite3_stmt *st = NULL;

    if (err == NULL) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "store: empty database path");
        return NULL;
    }
    if (strcmp(path, ":memory:") != 0) {
        int fd;
        if (make_parent_dirs(path, err, errlen) != 0)
            return NULL;
        /* create it ourselves: the file holds key hashes and usage, so 0600 (sqlite's -wal/-shm inherit the mode).
         * Only when it does not exist yet: close() on any fd of a file drops every POSIX lock this process holds on it,
         * including the locks of our other open connections (ledger writer, readers); another process would then see
         * no readers and delete the WAL and -shm from under them. */
        struct stat sb;
        if (stat(path, &sb) != 0) {
            if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0)
                close(fd);
            else if (errno != EEXIST) {
                snprintf(err, errlen, "%s: cannot open database: %s", path, strerror(errno));
                return NULL;
            }
        }
    }
    s = lg_malloc(sizeof(struct sqlite_store));
    memset(s, 0, sizeof(struct sqlite_store));
    s->ops = &sqlite_ops;
    if (sqlite3_open_v2(path, &SQ(s)->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open database: %s", path,
                 SQ(s)->db != NULL ? sqlite3_errmsg(SQ(s)->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(SQ(s)->db, 1);
    sqlite3_busy_timeout(SQ(s)->db, 5000);
    /* journal_mode answers with the mode in effect; anything but "wal" on a file means WAL could not be enabled */
    if (prepare(s, "PRAGMA journal_mode=WAL", &st) != 0 || sqlite3_step(st) != SQLITE_ROW) {
        snprintf(err, errlen, "%s: %s", path, st != NULL ? sqlite3_errmsg(SQ(s)->db) : s->errmsg);
        sqlite3_finalize(st);
        goto fail;
    }
    if (strcmp(path, ":memory:") != 0 && sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        snprintf(err, errlen, "%s: cannot enable WAL journal mode (got %s)", path, sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    if (exec(s, "PRAGMA synchronous=NORMAL") != 0 || exec(s, "PRAGMA foreign_keys=ON") != 0) {
        snprintf(err, errlen, "%s: %s", path, s->errmsg);
        goto fail;
    }
    if (migrate(s, err, errlen) != 0) {
        char m[256];
        snprintf(m, sizeof(m), "%s", err);
        snprintf(err, errlen, "%s: %s", path, m);
        goto fail;
    }
    return s;
fail:
    sq_close(s);
    return NULL;
}

static void sq_close(lg_store_t *s)
{
    if (s == NULL)
        return;
    sqlite3_finalize(SQ(s)->insert_generation);
    sqlite3_close_v2(SQ(s)->db);
    free(s);
}

/* ---- binding helpers ---- */

/* Fixed-size row strings: bounded (a sloppy caller may fill the array), empty = NULL. */
static void bind_fixed(sqlite3_stmt *st, int idx, const char *buf, size_t size)
{
    size_t n = strnlen(buf, size);
    if (n == 0)
        sqlite3_bind_null(st, idx);
    else
        sqlite3_bind_text(st, idx, buf, (int)n, SQLITE_TRANSIENT);
}

#define BIND_FIXED(st, idx, field) bind_fixed((st), (idx), (field), sizeof(field))

static void bind_opt_text(sqlite3_stmt *st, int idx, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(st, idx);
    else
        sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

static json_t *col_str(sqlite3_stmt *st, int i)
{
    return jstr(sqlite3_column_text(st, i));
}

/* ---- generations ---- */

static const char insert_generation_sql[] =
    "INSERT OR IGNORE INTO generations (id, created_at_ms, key_id, requested_model, served_model, provider,"
    " upstream_model, api, attempts, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,"
    " reasoning_tokens, cost_pico, latency_ms, ttft_ms, generation_time_ms, status, finish_reason, native_finish_reason,"
    " streamed, cancelled, user_agent, http_referer, response_cache_source_id)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,"
    " ?24, ?25, ?26)";

static int bind_generation(sqlite3_stmt *st, const lg_generation_row_t *r)
{
    BIND_FIXED(st, 1, r->id);
    sqlite3_bind_int64(st, 2, r->created_at_ms);
    BIND_FIXED(st, 3, r->key_id);
    BIND_FIXED(st, 4, r->requested_model);
    BIND_FIXED(st, 5, r->served_model);
    BIND_FIXED(st, 6, r->provider);
    BIND_FIXED(st, 7, r->upstream_model);
    BIND_FIXED(st, 8, r->api);
    bind_opt_text(st, 9, r->attempts_json);
    sqlite3_bind_int64(st, 10, r->prompt_tokens);
    sqlite3_bind_int64(st, 11, r->completion_tokens);
    sqlite3_bind_int64(st, 12, r->cached_tokens);
    sqlite3_bind_int64(st, 13, r->cache_write_tokens);
    sqlite3_bind_int64(st, 14, r->reasoning_tokens);
    sqlite3_bind_int64(st, 15, r->cost_pico);
    sqlite3_bind_double(st, 16, r->latency_ms);
    sqlite3_bind_double(st, 17, r->ttft_ms);
    sqlite3_bind_double(st, 18, r->generation_time_ms);
    sqlite3_bind_int(st, 19, r->status);
    BIND_FIXED(st, 20, r->finish_reason);
    BIND_FIXED(st, 21, r->native_finish_reason);
    sqlite3_bind_int(st, 22, r->streamed != 0);
    sqlite3_bind_int(st, 23, r->cancelled != 0);
    BIND_FIXED(st, 24, r->user_agent);
    BIND_FIXED(st, 25, r->http_referer);
    BIND_FIXED(st, 26, r->response_cache_source_id);
    return 0;
}

static int sq_insert_generations(lg_store_t *s, const lg_generation_row_t *rows, size_t n, size_t *skipped)
{
    size_t dup = 0;
    int rc;

    s->errmsg[0] = '\0';
    if (skipped != NULL)
        *skipped = 0;
    if (n == 0)
        return 0;
    if (SQ(s)->insert_generation == NULL && (rc = prepare(s, insert_generation_sql, &SQ(s)->insert_generation)) != 0)
        return rc;
    if ((rc = exec(s, "BEGIN IMMEDIATE")) != 0)
        return rc;
    for (size_t i = 0; i < n; ++i) {
        if (rows[i].id[0] == '\0') { /* the id is the primary key; a row without one cannot be stored */
            ++dup;
            continue;
        }
        sqlite3_reset(SQ(s)->insert_generation);
        sqlite3_clear_bindings(SQ(s)->insert_generation);
        bind_generation(SQ(s)->insert_generation, &rows[i]);
        if (sqlite3_step(SQ(s)->insert_generation) != SQLITE_DONE) {
            rc = db_fail(s, "insert generation");
            sqlite3_reset(SQ(s)->insert_generation);
            sqlite3_exec(SQ(s)->db, "ROLLBACK", NULL, NULL, NULL);
            return rc == LG_EINVAL ? LG_EINTERNAL : rc;
        }
        if (sqlite3_changes(SQ(s)->db) == 0)
            ++dup;
    }
    sqlite3_reset(SQ(s)->insert_generation);
    if (exec(s, "COMMIT") != 0) {
        char m[sizeof(s->errmsg)];
        memcpy(m, s->errmsg, sizeof(m));
        set_err(s, "commit: %.240s", m);
        sqlite3_exec(SQ(s)->db, "ROLLBACK", NULL, NULL, NULL);
        return LG_EINTERNAL;
    }
    if (skipped != NULL)
        *skipped = dup;
    return 0;
}

/* ---- recent generations (dashboard) ---- */

static int sq_generations_recent(lg_store_t *s, unsigned limit, int64_t before_ms, json_t **out)
{
    static const char sql[] =
        "SELECT g.id, g.created_at_ms, g.key_id, k.name, g.requested_model, g.served_model, g.provider, g.api,"
        " g.status, g.attempts, g.latency_ms, g.ttft_ms, g.prompt_tokens, g.completion_tokens, g.cost_pico,"
        " g.streamed, g.cancelled, g.finish_reason"
        " FROM generations g LEFT JOIN keys k ON k.id = g.key_id AND k.deleted = 0"
        " WHERE ?1 <= 0 OR g.created_at_ms < ?1 ORDER BY g.created_at_ms DESC, g.id DESC LIMIT ?2";
    sqlite3_stmt *st;
    int rc, step;
    char when[32];

    *out = NULL;
    if ((rc = prepare(s, sql, &st)) != 0)
        return rc;
    sqlite3_bind_int64(st, 1, before_ms);
    sqlite3_bind_int(st, 2, (int)limit);
    json_t *rows = json_array();
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t created = sqlite3_column_int64(st, 1), cost = sqlite3_column_int64(st, 14);
        iso8601(created, when);
        json_array_append_new(
            rows, lg__store_recent_row((const char *)sqlite3_column_text(st, 0), when, created, col_str(st, 2),
                                       sqlite3_column_type(st, 3) == SQLITE_NULL ? json_null() : col_str(st, 3), col_str(st, 4),
                                       col_str(st, 5), col_str(st, 6), col_str(st, 7), sqlite3_column_int(st, 8),
                                       (const char *)sqlite3_column_text(st, 9), sqlite3_column_double(st, 10),
                                       sqlite3_column_type(st, 11) == SQLITE_NULL ? json_null()
                                                                                  : json_real(sqlite3_column_double(st, 11)),
                                       sqlite3_column_int64(st, 12), sqlite3_column_int64(st, 13), cost, sqlite3_column_int(st, 15),
                                       sqlite3_column_int(st, 16), col_str(st, 17)));
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, "recent generations");
        sqlite3_finalize(st);
        json_decref(rows);
        return rc;
    }
    sqlite3_finalize(st);
    *out = json_pack("{s:o}", "data", rows);
    return 0;
}

static struct sqlite3 *sq_sqlite_handle(lg_store_t *s)
{
    return SQ(s)->db;
}

static int sq_generation_get(lg_store_t *s, const char *id, json_t **out)
{
    static const char sql[] =
        "SELECT id, created_at_ms, key_id, requested_model, served_model, provider, upstream_model, api, attempts,"
        " prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_pico, latency_ms,"
        " ttft_ms, generation_time_ms, status, finish_reason, native_finish_reason, streamed, cancelled, user_agent,"
        " http_referer, response_cache_source_id FROM generations WHERE id = ?1";
    sqlite3_stmt *st;
    int rc, step;
    char when[32];

    *out = NULL;
    s->errmsg[0] = '\0';
    if ((rc = prepare(s, sql, &st)) != 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        sqlite3_finalize(st);
        set_err(s, "generation not found");
        return LG_ENOTFOUND;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(s, "generation");
        sqlite3_finalize(st);
        return LG_EINTERNAL;
    }

    json_t *o = json_object();
    int64_t cost = sqlite3_column_int64(st, 14);
    json_t *attempts = NULL;
    const char *att = (const char *)sqlite3_column_text(st, 8);
    if (att != NULL)
        attempts = json_loads(att, 0, NULL);
    if (!json_is_array(attempts)) {
        json_decref(attempts);
        attempts = json_array();
    }
    iso8601(sqlite3_column_int64(st, 1), when);

    json_object_set_new(o, "id", col_str(st, 0));
    json_object_set_new(o, "created_at", json_string(when));
    json_object_set_new(o, "model", col_str(st, 4));
    json_object_set_new(o, "requested_model", col_str(st, 3));
    json_object_set_new(o, "upstream_model", col_str(st, 6));
    json_object_set_new(o, "provider_name", col_str(st, 5));
    json_object_set_new(o, "api_type", col_str(st, 7));
    json_object_set_new(o, "streamed", json_boolean(sqlite3_column_int(st, 21)));
    json_object_set_new(o, "cancelled", json_boolean(sqlite3_column_int(st, 22)));
    json_object_set_new(o, "tokens_prompt", json_integer(sqlite3_column_int64(st, 9)));
    json_object_set_new(o, "tokens_completion", json_integer(sqlite3_column_int64(st, 10)));
    json_object_set_new(o, "native_tokens_prompt", json_integer(sqlite3_column_int64(st, 9)));
    json_object_set_new(o, "native_tokens_completion", json_integer(sqlite3_column_int64(st, 10)));
    json_object_set_new(o, "native_tokens_reasoning", json_integer(sqlite3_column_int64(st, 13)));
    json_object_set_new(o, "native_tokens_cached", json_integer(sqlite3_column_int64(st, 11)));
    json_object_set_new(o, "native_tokens_cache_write", json_integer(sqlite3_column_int64(st, 12)));
    json_object_set_new(o, "total_cost", usd(cost));
    json_object_set_new(o, "usage", usd(cost));
    json_object_set_new(o, "cost_pico", json_integer(cost));
    json_object_set_new(o, "is_byok", json_false());
    json_object_set_new(o, "upstream_inference_cost", json_null());
    json_object_set_new(o, "cache_discount", json_null());
    json_object_set_new(o, "latency", json_real(sqlite3_column_double(st, 15)));
    json_object_set_new(o, "ttft", json_real(sqlite3_column_double(st, 16)));
    json_object_set_new(o, "generation_time", json_real(sqlite3_column_double(st, 17)));
    json_object_set_new(o, "status", json_integer(sqlite3_column_int(st, 18)));
    json_object_set_new(o, "finish_reason", col_str(st, 19));
    json_object_set_new(o, "native_finish_reason", col_str(st, 20));
    json_object_set_new(o, "provider_responses", attempts);
    json_object_set_new(o, "origin", sqlite3_column_type(st, 24) == SQLITE_NULL ? json_string("") : col_str(st, 24));
    json_object_set_new(o, "http_referer", col_str(st, 24));
    json_object_set_new(o, "user_agent", col_str(st, 23));
    json_object_set_new(o, "key_id", col_str(st, 2));
    const unsigned char *src = sqlite3_column_text(st, 25);
    int cached = src != NULL && src[0] != '\0';
    json_object_set_new(o, "cached", json_boolean(cached));
    json_object_set_new(o, "response_cache_source_id", cached ? col_str(st, 25) : json_null());
    sqlite3_finalize(st);
    *out = o;
    return 0;
}

/* ---- keys ---- */

/* Binds ?2.. ?11 shared by insert and update: name, expires_at, disabled, limit, reset, rpm, tpm, models, tools, metadata. */
static int bind_key_mutable(lg_store_t *s, sqlite3_stmt *st, const lg_key_record_t *k)
{
    char *models = strv_to_json(k->allowed_models), *tools = strv_to_json(k->allowed_tools), *meta = NULL;
    if (k->metadata != NULL)
        meta = json_dumps(k->metadata, JSON_COMPACT | JSON_ENCODE_ANY);
    if (k->name == NULL) {
        free(models);
        free(tools);
        free(meta);
        set_err(s, "key name is required");
        return LG_EINVAL;
    }
    sqlite3_bind_text(st, 2, k->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, k->expires_at);
    sqlite3_bind_int(st, 4, k->disabled != 0);
    sqlite3_bind_int64(st, 5, k->credit_limit_pico < 0 ? -1 : k->credit_limit_pico);
    sqlite3_bind_text(st, 6, lg_reset_period_name(k->reset_period), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, k->rpm);
    sqlite3_bind_int64(st, 8, k->tpm);
    bind_opt_text(st, 9, models);
    bind_opt_text(st, 10, tools);
    bind_opt_text(st, 11, meta);
    free(models);
    free(tools);
    free(meta);
    return 0;
}

/* Run a write statement that must touch exactly one row (changes == 0 → LG_ENOTFOUND). */
static int step_write(lg_store_t *s, sqlite3_stmt *st, const char *what)
{
    int rc = 0;
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(s, what);
        if (rc == LG_EINVAL)
            set_err(s, "%s: a key with this id or secret hash already exists", what);
    } else if (sqlite3_changes(SQ(s)->db) == 0) {
        set_err(s, "key not found");
        rc = LG_ENOTFOUND;
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_key_insert(lg_store_t *s, const lg_key_record_t *k)
{
    static const char sql[] = "INSERT INTO keys (id, name, expires_at, disabled, credit_limit_pico, reset_period, rpm, tpm,"
                              " allowed_models, allowed_tools, metadata, hash, hint, created_at, deleted)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0)";
    sqlite3_stmt *st;
    int rc;

    s->errmsg[0] = '\0';
    if (k->id[0] == '\0') {
        set_err(s, "key id is required");
        return LG_EINVAL;
    }
    if ((rc = prepare(s, sql, &st)) != 0)
        return rc;
    sqlite3_bind_text(st, 1, k->id, (int)strnlen(k->id, sizeof(k->id)), SQLITE_TRANSIENT);
    if ((rc = bind_key_mutable(s, st, k)) != 0) {
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_bind_blob(st, 12, k->hash, sizeof(k->hash), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 13, k->hint, (int)strnlen(k->hint, sizeof(k->hint)), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 14, k->created_at);
    return step_write(s, st, "insert key");
}

static int sq_key_update(lg_store_t *s, const lg_key_record_t *k)
{
    static const char sql[] = "UPDATE keys SET name = ?2, expires_at = ?3, disabled = ?4, credit_limit_pico = ?5,"
                              " reset_period = ?6, rpm = ?7, tpm = ?8, allowed_models = ?9, allowed_tools = ?10,"
                              " metadata = ?11 WHERE id = ?1 AND deleted = 0";
    sqlite3_stmt *st;
    int rc;

    s->errmsg[0] = '\0';
    if ((rc = prepare(s, sql, &st)) != 0)
        return rc;
    sqlite3_bind_text(st, 1, k->id, (int)strnlen(k->id, sizeof(k->id)), SQLITE_TRANSIENT);
    if ((rc = bind_key_mutable(s, st, k)) != 0) {
        sqlite3_finalize(st);
        return rc;
    }
    return step_write(s, st, "update key");
}

static int sq_key_delete(lg_store_t *s, const char *id)
{
    sqlite3_stmt *st;
    int rc;

    s->errmsg[0] = '\0';
    /* the row and its hash stay: a deleted secret must never become valid again through a colliding new key */
    if ((rc = prepare(s, "UPDATE keys SET deleted = 1, disabled = 1 WHERE id = ?1 AND deleted = 0", &st)) != 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    return step_write(s, st, "delete key");
}

#define KEY_COLUMNS                                                                                                                \
    "id, name, hash, hint, created_at, expires_at, disabled, credit_limit_pico, reset_period, rpm, tpm, allowed_models,"           \
    " allowed_tools, metadata"

static lg_key_record_t *key_from_row(sqlite3_stmt *st)
{
    lg_key_record_t *k = lg_malloc(sizeof(*k));
    const unsigned char *t;
    int64_t v;

    memset(k, 0, sizeof(*k));
    if ((t = sqlite3_column_text(st, 0)) != NULL)
        snprintf(k->id, sizeof(k->id), "%s", (const char *)t);
    t = sqlite3_column_text(st, 1);
    k->name = lg_strdup(t != NULL ? (const char *)t : "");
    if (sqlite3_column_bytes(st, 2) == (int)sizeof(k->hash))
        memcpy(k->hash, sqlite3_column_blob(st, 2), sizeof(k->hash));
    if ((t = sqlite3_column_text(st, 3)) != NULL)
        snprintf(k->hint, sizeof(k->hint), "%s", (const char *)t);
    k->created_at = sqlite3_column_int64(st, 4);
    k->expires_at = sqlite3_column_int64(st, 5);
    k->disabled = sqlite3_column_int(st, 6) != 0;
    k->credit_limit_pico = sqlite3_column_int64(st, 7);
    int p = lg_reset_period_parse((const char *)sqlite3_column_text(st, 8));
    k->reset_period = p < 0 ? LG_RESET_NONE : (lg_reset_period_t)p;
    v = sqlite3_column_int64(st, 9);
    k->rpm = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    v = sqlite3_column_int64(st, 10);
    k->tpm = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    k->allowed_models = strv_from_json(sqlite3_column_text(st, 11));
    k->allowed_tools = strv_from_json(sqlite3_column_text(st, 12));
    if ((t = sqlite3_column_text(st, 13)) != NULL)
        k->metadata = json_loads((const char *)t, JSON_DECODE_ANY, NULL);
    return k;
}

static int sq_key_get(lg_store_t *s, const char *id, lg_key_record_t **out)
{
    sqlite3_stmt *st;
    int rc, step;

    *out = NULL;
    s->errmsg[0] = '\0';
    if ((rc = prepare(s, "SELECT " KEY_COLUMNS " FROM keys WHERE id = ?1 AND deleted = 0", &st)) != 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *out = key_from_row(st);
        rc = 0;
    } else if (step == SQLITE_DONE) {
        set_err(s, "key not found");
        rc = LG_ENOTFOUND;
    } else {
        rc = db_fail(s, "get key");
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_key_list(lg_store_t *s, lg_key_record_t ***out, size_t *n)
{
    sqlite3_stmt *st;
    lg_key_record_t **list = NULL;
    size_t len = 0, cap = 0;
    int rc, step;

    *out = NULL;
    *n = 0;
    s->errmsg[0] = '\0';
    if ((rc = prepare(s, "SELECT " KEY_COLUMNS " FROM keys WHERE deleted = 0 ORDER BY created_at, id", &st)) != 0)
        return rc;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            list = lg_realloc(list, cap * sizeof(*list));
        }
        list[len++] = key_from_row(st);
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, "list keys");
        sqlite3_finalize(st);
        lg_store_key_list_free(list, len);
        return rc;
    }
    sqlite3_finalize(st);
    *out = list;
    *n = len;
    return 0;
}

/* ---- usage ---- */

static int64_t sq_key_cost_since(lg_store_t *s, const char *key_id, int64_t since_ms)
{
    sqlite3_stmt *st;
    int64_t sum;
    int rc;

    s->errmsg[0] = '\0';
    if ((rc = prepare(s, "SELECT COALESCE(SUM(cost_pico), 0) FROM generations WHERE key_id = ?1 AND created_at_ms >= ?2", &st)) !=
        0)
        return rc;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, since_ms);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, "key cost");
        sqlite3_finalize(st);
        return rc;
    }
    sum = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return sum;
}

static int sq_key_usage(lg_store_t *s, const char *key_id, const int64_t since_ms[3], int64_t out_pico[4])
{
    static const char sql[] = "SELECT COALESCE(SUM(cost_pico), 0),"
                              " COALESCE(SUM(CASE WHEN created_at_ms >= ?2 THEN cost_pico ELSE 0 END), 0),"
                              " COALESCE(SUM(CASE WHEN created_at_ms >= ?3 THEN cost_pico ELSE 0 END), 0),"
                              " COALESCE(SUM(CASE WHEN created_at_ms >= ?4 THEN cost_pico ELSE 0 END), 0)"
                              " FROM generations WHERE key_id = ?1";
    sqlite3_stmt *st;
    int rc;

    s->errmsg[0] = '\0';
    if ((rc = prepare(s, sql, &st)) != 0)
        return rc;
    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_TRANSIENT);
    for (int i = 0; i < 3; ++i)
        sqlite3_bind_int64(st, 2 + i, since_ms[i]);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(s, "key usage");
        sqlite3_finalize(st);
        return rc;
    }
    for (int i = 0; i < 4; ++i)
        out_pico[i] = sqlite3_column_int64(st, i);
    sqlite3_finalize(st);
    return 0;
}

#define USAGE_AGGREGATES                                                                                                           \
    " COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cached_tokens), 0),"            \
    " COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pico), 0)"
#define USAGE_FILTER                                                                                                               \
    " FROM generations WHERE (?1 IS NULL OR key_id = ?1) AND (?2 IS NULL OR served_model = ?2)"                                    \
    " AND (?3 IS NULL OR provider = ?3) AND created_at_ms >= ?4 AND created_at_ms < ?5"

/* One fixed statement per grouping: the group column comes from this table, never from the caller's text. */
static const struct {
    const char *name;
    const char *sql;
} usage_groups[] = {
    {NULL, "SELECT NULL," USAGE_AGGREGATES USAGE_FILTER},
    {"key", "SELECT COALESCE(key_id, '')," USAGE_AGGREGATES USAGE_FILTER " GROUP BY 1 ORDER BY 1"},
    {"model", "SELECT COALESCE(served_model, '')," USAGE_AGGREGATES USAGE_FILTER " GROUP BY 1 ORDER BY 1"},
    {"provider", "SELECT COALESCE(provider, '')," USAGE_AGGREGATES USAGE_FILTER " GROUP BY 1 ORDER BY 1"},
    {"day",
     "SELECT strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch')," USAGE_AGGREGATES USAGE_FILTER " GROUP BY 1 ORDER BY 1"},
};

static int sq_usage_query(lg_store_t *s, const lg_usage_query_t *q, json_t **out)
{
    size_t g;
    sqlite3_stmt *st;
    int64_t total[USAGE_NFIELDS] = {0};
    json_t *data;
    int rc, step;

    *out = NULL;
    s->errmsg[0] = '\0';
    for (g = 0; g < sizeof(usage_groups) / sizeof(usage_groups[0]); ++g)
        if ((q->group_by == NULL && usage_groups[g].name == NULL) ||
            (q->group_by != NULL && usage_groups[g].name != NULL && strcmp(q->group_by, usage_groups[g].name) == 0))
            break;
    if (g == sizeof(usage_groups) / sizeof(usage_groups[0])) {
        set_err(s, "group_by must be key, model, provider or day");
        return LG_EINVAL;
    }
    if ((rc = prepare(s, usage_groups[g].sql, &st)) != 0)
        return rc;
    bind_opt_text(st, 1, q->key_id);
    bind_opt_text(st, 2, q->model);
    bind_opt_text(st, 3, q->provider);
    sqlite3_bind_int64(st, 4, q->since_ms > 0 ? q->since_ms : INT64_MIN);
    sqlite3_bind_int64(st, 5, q->until_ms > 0 ? q->until_ms : INT64_MAX);

    data = json_array();
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t v[USAGE_NFIELDS];
        for (int i = 0; i < USAGE_NFIELDS; ++i) {
            v[i] = sqlite3_column_int64(st, i + 1);
            total[i] += v[i];
        }
        json_t *row = usage_row(v);
        if (usage_groups[g].name != NULL)
            json_object_set_new(row, usage_groups[g].name, col_str(st, 0));
        json_array_append_new(data, row);
    }
    if (step != SQLITE_DONE) {
        rc = db_fail(s, "usage query");
        sqlite3_finalize(st);
        json_decref(data);
        return rc;
    }
    sqlite3_finalize(st);
    *out = json_object();
    json_object_set_new(*out, "data", data);
    json_object_set_new(*out, "total", usage_row(total));
    return 0;
}

static const lg_store_ops_t sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .insert_generations = sq_insert_generations,
    .key_insert = sq_key_insert,
    .key_update = sq_key_update,
    .key_delete = sq_key_delete,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_cost_since = sq_key_cost_since,
    .key_usage = sq_key_usage,
    .generation_get = sq_generation_get,
    .generations_recent = sq_generations_recent,
    .sqlite_handle = sq_sqlite_handle,
    .usage_query = sq_usage_query,
};
