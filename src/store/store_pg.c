/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL backend of the store seam (store_backend.h), over libpq. The
 * same tables as the SQLite backend, with ordered migrations applied at open
 * inside one transaction under an advisory lock (replicas starting together
 * migrate once). Blocking calls: only ever used from the ledger writer, the
 * key-sync and threadpool threads and the CLI, never from an event loop. A
 * lost connection is re-established on the next call (PQreset); the ledger
 * keeps its batch and retries while the server is away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "core/util.h"
#include "store/store_backend.h"

/* the one advisory lock id llmgate takes while migrating (any fixed 64-bit number: "llmgate\0" as ASCII) */
#define MIGRATION_LOCK_ID "7812726356617472"

struct pg_store {
    lg_store_t base; /* first */
    PGconn *conn;
    int insert_prepared; /* "lg_ins_gen" exists on this connection */
    int lost;            /* the last failure was a lost connection */
};

#define PG(s) ((struct pg_store *)(s))

static const lg_store_ops_t pg_ops;

/* Migrations, in order: migrations[i] takes the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 1: keys and the generation ledger (same shape as the SQLite schema 1) */
    "CREATE TABLE keys ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  hash BYTEA NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  hint TEXT,"
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL DEFAULT 0,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  credit_limit_pico BIGINT NOT NULL DEFAULT -1,"
    "  reset_period TEXT NOT NULL DEFAULT 'none' CHECK (reset_period IN ('none', 'daily', 'weekly', 'monthly')),"
    "  rpm BIGINT NOT NULL DEFAULT 0,"
    "  tpm BIGINT NOT NULL DEFAULT 0,"
    "  allowed_models TEXT,"
    "  allowed_tools TEXT,"
    "  metadata TEXT,"
    "  deleted INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE generations ("
    "  id TEXT PRIMARY KEY,"
    "  created_at_ms BIGINT NOT NULL,"
    "  key_id TEXT,"
    "  requested_model TEXT,"
    "  served_model TEXT,"
    "  provider TEXT,"
    "  upstream_model TEXT,"
    "  api TEXT,"
    "  attempts TEXT,"
    "  prompt_tokens BIGINT NOT NULL DEFAULT 0,"
    "  completion_tokens BIGINT NOT NULL DEFAULT 0,"
    "  cached_tokens BIGINT NOT NULL DEFAULT 0,"
    "  cache_write_tokens BIGINT NOT NULL DEFAULT 0,"
    "  reasoning_tokens BIGINT NOT NULL DEFAULT 0,"
    "  cost_pico BIGINT NOT NULL DEFAULT 0,"
    "  latency_ms DOUBLE PRECISION,"
    "  ttft_ms DOUBLE PRECISION,"
    "  generation_time_ms DOUBLE PRECISION,"
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
    /* 2: the SQLite schema's OAuth tables; with a PostgreSQL store the MCP OAuth grants stay in memory (mcp/README.md) */
    "SELECT 1;",
    /* 3: response-cache hits (src/pipeline/cache_exchange.c): the generation whose stored answer was replayed */
    "ALTER TABLE generations ADD COLUMN IF NOT EXISTS response_cache_source_id TEXT;",
};
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == LG_STORE_SCHEMA_VERSION, "one migration per version");

/* Remember why res (or the connection) failed; LG_EINVAL for constraint violations, else LG_EINTERNAL. */
static int pg_fail(lg_store_t *s, PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
    if (msg == NULL || msg[0] == '\0')
        msg = PQerrorMessage(PG(s)->conn);
    char clean[200];
    snprintf(clean, sizeof(clean), "%s", msg);
    for (char *p = clean; *p != '\0'; ++p)
        if (*p == '\n')
            *p = ' ';
    lg__store_set_err(s, "%s: %s", what, clean);
    PG(s)->lost = PQstatus(PG(s)->conn) != CONNECTION_OK;
    if (PG(s)->lost)
        PG(s)->insert_prepared = 0; /* prepared statements die with the session */
    /* class 23: integrity constraint violation (read before PQclear: state points into res) */
    int constraint = state != NULL && strncmp(state, "23", 2) == 0;
    if (res != NULL)
        PQclear(res);
    return constraint ? LG_EINVAL : LG_EINTERNAL;
}

/* Before each call: a connection that broke (server restart) is re-opened. 0 when usable. */
static int pg_ready(lg_store_t *s)
{
    s->errmsg[0] = '\0';
    if (PQstatus(PG(s)->conn) == CONNECTION_OK)
        return 0;
    PQreset(PG(s)->conn);
    PG(s)->insert_prepared = 0;
    if (PQstatus(PG(s)->conn) == CONNECTION_OK) {
        PG(s)->lost = 0;
        return 0;
    }
    PG(s)->lost = 1;
    char clean[200];
    snprintf(clean, sizeof(clean), "%s", PQerrorMessage(PG(s)->conn));
    for (char *p = clean; *p != '\0'; ++p)
        if (*p == '\n')
            *p = ' ';
    lg__store_set_err(s, "postgresql unreachable: %s", clean);
    return LG_EINTERNAL;
}

static int pg_exec(lg_store_t *s, const char *sql)
{
    PGresult *r = PQexec(PG(s)->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return pg_fail(s, r, "exec");
    PQclear(r);
    return 0;
}

static PGresult *pg_query(lg_store_t *s, const char *sql, int n, const char *const *vals, ExecStatusType want, const char *what,
                          int *rc)
{
    PGresult *r = PQexecParams(PG(s)->conn, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        *rc = pg_fail(s, r, what);
        return NULL;
    }
    *rc = 0;
    return r;
}

static int migrate(lg_store_t *s)
{
    int known = (int)(sizeof(migrations) / sizeof(migrations[0])), version = 0, rc;
    PGresult *r;

    if (pg_exec(s, "BEGIN") != 0)
        return -1;
    /* replicas starting together: one migrates, the others wait here and then see the new version */
    if (pg_exec(s, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_ID ")") != 0 ||
        pg_exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)") != 0)
        goto rollback;
    if ((r = pg_query(s, "SELECT COALESCE(max(version), 0) FROM schema_version", 0, NULL, PGRES_TUPLES_OK, "schema_version",
                      &rc)) == NULL)
        goto rollback;
    version = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (version > known) {
        lg__store_set_err(s, "database schema version %d is newer than this llmgate supports (%d); upgrade llmgate", version,
                          known);
        goto rollback;
    }
    for (int v = version; v < known; ++v)
        if (pg_exec(s, migrations[v]) != 0) {
            char m[sizeof(s->errmsg)];
            memcpy(m, s->errmsg, sizeof(m));
            lg__store_set_err(s, "migration to version %d failed: %.200s", v + 1, m);
            goto rollback;
        }
    if (version != known) {
        char vs[16];
        const char *vals[1] = {vs};
        snprintf(vs, sizeof(vs), "%d", known);
        if (pg_exec(s, "DELETE FROM schema_version") != 0 ||
            (r = pg_query(s, "INSERT INTO schema_version (version) VALUES ($1::int)", 1, vals, PGRES_COMMAND_OK, "schema_version",
                          &rc)) == NULL)
            goto rollback;
        PQclear(r);
    }
    if (pg_exec(s, "COMMIT") != 0)
        goto rollback;
    s->version = known;
    return 0;
rollback:
    PQclear(PQexec(PG(s)->conn, "ROLLBACK"));
    return -1;
}

lg_store_t *lg__store_pg_open(const char *url, char *err, size_t errlen)
{
    char dummy[8], shown[256];
    if (err == NULL) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    lg_store_target_display(url, shown, sizeof(shown));
    struct pg_store *p = lg_malloc(sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->base.ops = &pg_ops;
    /* a bounded connect: a dead server must fail start-up (and each reconnect) in seconds, not hang */
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {url, "5", "llmgate", NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
        char m[200];
        snprintf(m, sizeof(m), "%s", p->conn != NULL ? PQerrorMessage(p->conn) : "out of memory");
        for (char *c = m; *c != '\0'; ++c)
            if (*c == '\n')
                *c = ' ';
        snprintf(err, errlen, "%s: cannot connect to postgresql: %s", shown, m);
        PQfinish(p->conn);
        free(p);
        return NULL;
    }
    /* keep server notices (e.g. "relation already exists, skipping") off stderr */
    PQsetNoticeProcessor(p->conn, NULL, NULL);
    if (pg_exec(&p->base, "SET client_min_messages = warning") != 0 || migrate(&p->base) != 0) {
        snprintf(err, errlen, "%s: %s", shown, p->base.errmsg);
        PQfinish(p->conn);
        free(p);
        return NULL;
    }
    return &p->base;
}

static void pg_close(lg_store_t *s)
{
    PQfinish(PG(s)->conn);
    free(s);
}

/* ---- generations ---- */

#define GEN_PARAMS 26

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || n > left || (n == 2 && s[0] < 0xc2))
        return 0;
    for (size_t i = 1; i < n; ++i)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/*
 * Row strings are fixed arrays: bounded copies, "" stored as NULL (like the SQLite backend). PostgreSQL refuses
 * text that is not UTF-8 (and would fail the whole batch), while row strings are cut to fit and may end inside a
 * sequence: such bytes become '?', as the SQLite backend shows them.
 */
static const char *fixed(char *tmp, size_t tmpcap, const char *buf, size_t size)
{
    size_t n = strnlen(buf, size);
    if (n == 0)
        return NULL;
    if (n >= tmpcap)
        n = tmpcap - 1;
    memcpy(tmp, buf, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)tmp + i, n - i);
        if (k == 0) {
            tmp[i++] = '?';
            continue;
        }
        i += k;
    }
    return tmp;
}

static int pg_insert_generations(lg_store_t *s, const lg_generation_row_t *rows, size_t n, size_t *skipped)
{
    static const char sql[] =
        "INSERT INTO generations (id, created_at_ms, key_id, requested_model, served_model, provider, upstream_model, api,"
        " attempts, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_pico,"
        " latency_ms, ttft_ms, generation_time_ms, status, finish_reason, native_finish_reason, streamed, cancelled,"
        " user_agent, http_referer, response_cache_source_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26) ON CONFLICT (id) DO NOTHING";
    size_t dup = 0;
    int rc;

    if (skipped != NULL)
        *skipped = 0;
    if (n == 0)
        return 0;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    if (!PG(s)->insert_prepared) {
        PGresult *r = PQprepare(PG(s)->conn, "lg_ins_gen", sql, GEN_PARAMS, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return pg_fail(s, r, "prepare insert");
        PQclear(r);
        PG(s)->insert_prepared = 1;
    }
    if ((rc = pg_exec(s, "BEGIN")) != 0)
        return rc;
    for (size_t i = 0; i < n; ++i) {
        const lg_generation_row_t *g = &rows[i];
        char t[13][160], num[13][32];
        const char *v[GEN_PARAMS];
        if (g->id[0] == '\0') {
            ++dup;
            continue;
        }
        v[0] = fixed(t[0], sizeof(t[0]), g->id, sizeof(g->id));
        snprintf(num[0], 32, "%lld", (long long)g->created_at_ms);
        v[1] = num[0];
        v[2] = fixed(t[1], sizeof(t[1]), g->key_id, sizeof(g->key_id));
        v[3] = fixed(t[2], sizeof(t[2]), g->requested_model, sizeof(g->requested_model));
        v[4] = fixed(t[3], sizeof(t[3]), g->served_model, sizeof(g->served_model));
        v[5] = fixed(t[4], sizeof(t[4]), g->provider, sizeof(g->provider));
        v[6] = fixed(t[5], sizeof(t[5]), g->upstream_model, sizeof(g->upstream_model));
        v[7] = fixed(t[6], sizeof(t[6]), g->api, sizeof(g->api));
        v[8] = g->attempts_json;
        const int64_t ints[6] = {g->prompt_tokens,      g->completion_tokens, g->cached_tokens,
                                 g->cache_write_tokens, g->reasoning_tokens,  g->cost_pico};
        for (int k = 0; k < 6; ++k) {
            snprintf(num[1 + k], 32, "%lld", (long long)ints[k]);
            v[9 + k] = num[1 + k];
        }
        snprintf(num[7], 32, "%.17g", g->latency_ms);
        snprintf(num[8], 32, "%.17g", g->ttft_ms);
        snprintf(num[9], 32, "%.17g", g->generation_time_ms);
        snprintf(num[10], 32, "%d", g->status);
        v[15] = num[7];
        v[16] = num[8];
        v[17] = num[9];
        v[18] = num[10];
        v[19] = fixed(t[7], sizeof(t[7]), g->finish_reason, sizeof(g->finish_reason));
        v[20] = fixed(t[8], sizeof(t[8]), g->native_finish_reason, sizeof(g->native_finish_reason));
        v[21] = g->streamed ? "1" : "0";
        v[22] = g->cancelled ? "1" : "0";
        v[23] = fixed(t[9], sizeof(t[9]), g->user_agent, sizeof(g->user_agent));
        v[24] = fixed(t[10], sizeof(t[10]), g->http_referer, sizeof(g->http_referer));
        v[25] = fixed(t[12], sizeof(t[12]), g->response_cache_source_id, sizeof(g->response_cache_source_id));
        PGresult *r = PQexecPrepared(PG(s)->conn, "lg_ins_gen", GEN_PARAMS, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = pg_fail(s, r, "insert generation");
            if (!PG(s)->lost)
                PQclear(PQexec(PG(s)->conn, "ROLLBACK"));
            return LG_EINTERNAL;
        }
        if (strcmp(PQcmdTuples(r), "0") == 0)
            ++dup;
        PQclear(r);
    }
    if (pg_exec(s, "COMMIT") != 0) {
        if (!PG(s)->lost)
            PQclear(PQexec(PG(s)->conn, "ROLLBACK"));
        return LG_EINTERNAL;
    }
    if (skipped != NULL)
        *skipped = dup;
    return 0;
}

static json_t *col(PGresult *r, int c)
{
    return PQgetisnull(r, 0, c) ? json_null() : lg__store_jstr(PQgetvalue(r, 0, c));
}

static int64_t col_i64(PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? 0 : strtoll(PQgetvalue(r, row, c), NULL, 10);
}

static double col_f(PGresult *r, int c)
{
    return PQgetisnull(r, 0, c) ? 0 : strtod(PQgetvalue(r, 0, c), NULL);
}

static json_t *col_at(PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? json_null() : json_string(PQgetvalue(r, row, c));
}

static int pg_generations_recent(lg_store_t *s, unsigned limit, int64_t before_ms, json_t **out)
{
    static const char sql[] =
        "SELECT g.id, g.created_at_ms, g.key_id, k.name, g.requested_model, g.served_model, g.provider, g.api,"
        " g.status, g.attempts, g.latency_ms, g.ttft_ms, g.prompt_tokens, g.completion_tokens, g.cost_pico,"
        " g.streamed, g.cancelled, g.finish_reason"
        " FROM generations g LEFT JOIN keys k ON k.id = g.key_id AND k.deleted = 0"
        " WHERE $1::bigint <= 0 OR g.created_at_ms < $1::bigint ORDER BY g.created_at_ms DESC, g.id DESC LIMIT $2::bigint";
    char before[24], lim[16], when[32];
    snprintf(before, sizeof(before), "%lld", (long long)before_ms);
    snprintf(lim, sizeof(lim), "%u", limit);
    const char *vals[2] = {before, lim};
    int rc;

    *out = NULL;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    PGresult *r = pg_query(s, sql, 2, vals, PGRES_TUPLES_OK, "recent generations", &rc);
    if (r == NULL)
        return LG_EINTERNAL;
    json_t *rows = json_array();
    for (int i = 0; i < PQntuples(r); ++i) {
        int64_t created = col_i64(r, i, 1);
        lg__store_iso8601(created, when);
        json_array_append_new(
            rows, lg__store_recent_row(
                      PQgetvalue(r, i, 0), when, created, col_at(r, i, 2), col_at(r, i, 3), col_at(r, i, 4), col_at(r, i, 5),
                      col_at(r, i, 6), col_at(r, i, 7), (int)col_i64(r, i, 8), PQgetisnull(r, i, 9) ? NULL : PQgetvalue(r, i, 9),
                      PQgetisnull(r, i, 10) ? 0 : strtod(PQgetvalue(r, i, 10), NULL),
                      PQgetisnull(r, i, 11) ? json_null() : json_real(strtod(PQgetvalue(r, i, 11), NULL)), col_i64(r, i, 12),
                      col_i64(r, i, 13), col_i64(r, i, 14), (int)col_i64(r, i, 15), (int)col_i64(r, i, 16), col_at(r, i, 17)));
    }
    PQclear(r);
    *out = json_pack("{s:o}", "data", rows);
    return 0;
}

static int pg_generation_get(lg_store_t *s, const char *id, json_t **out)
{
    static const char sql[] =
        "SELECT id, created_at_ms, key_id, requested_model, served_model, provider, upstream_model, api, attempts,"
        " prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_pico, latency_ms,"
        " ttft_ms, generation_time_ms, status, finish_reason, native_finish_reason, streamed, cancelled, user_agent,"
        " http_referer, response_cache_source_id FROM generations WHERE id = $1";
    const char *vals[1] = {id};
    char when[32];
    int rc;

    *out = NULL;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    PGresult *r = pg_query(s, sql, 1, vals, PGRES_TUPLES_OK, "generation", &rc);
    if (r == NULL)
        return LG_EINTERNAL;
    if (PQntuples(r) == 0) {
        PQclear(r);
        lg__store_set_err(s, "generation not found");
        return LG_ENOTFOUND;
    }
    json_t *o = json_object(), *attempts = NULL;
    int64_t cost = col_i64(r, 0, 14);
    if (!PQgetisnull(r, 0, 8))
        attempts = json_loads(PQgetvalue(r, 0, 8), 0, NULL);
    if (!json_is_array(attempts)) {
        json_decref(attempts);
        attempts = json_array();
    }
    lg__store_iso8601(col_i64(r, 0, 1), when);
    json_object_set_new(o, "id", col(r, 0));
    json_object_set_new(o, "created_at", json_string(when));
    json_object_set_new(o, "model", col(r, 4));
    json_object_set_new(o, "requested_model", col(r, 3));
    json_object_set_new(o, "upstream_model", col(r, 6));
    json_object_set_new(o, "provider_name", col(r, 5));
    json_object_set_new(o, "api_type", col(r, 7));
    json_object_set_new(o, "streamed", json_boolean(col_i64(r, 0, 21)));
    json_object_set_new(o, "cancelled", json_boolean(col_i64(r, 0, 22)));
    json_object_set_new(o, "tokens_prompt", json_integer(col_i64(r, 0, 9)));
    json_object_set_new(o, "tokens_completion", json_integer(col_i64(r, 0, 10)));
    json_object_set_new(o, "native_tokens_prompt", json_integer(col_i64(r, 0, 9)));
    json_object_set_new(o, "native_tokens_completion", json_integer(col_i64(r, 0, 10)));
    json_object_set_new(o, "native_tokens_reasoning", json_integer(col_i64(r, 0, 13)));
    json_object_set_new(o, "native_tokens_cached", json_integer(col_i64(r, 0, 11)));
    json_object_set_new(o, "native_tokens_cache_write", json_integer(col_i64(r, 0, 12)));
    json_object_set_new(o, "total_cost", lg__store_usd(cost));
    json_object_set_new(o, "usage", lg__store_usd(cost));
    json_object_set_new(o, "cost_pico", json_integer(cost));
    json_object_set_new(o, "is_byok", json_false());
    json_object_set_new(o, "upstream_inference_cost", json_null());
    json_object_set_new(o, "cache_discount", json_null());
    json_object_set_new(o, "latency", json_real(col_f(r, 15)));
    json_object_set_new(o, "ttft", json_real(col_f(r, 16)));
    json_object_set_new(o, "generation_time", json_real(col_f(r, 17)));
    json_object_set_new(o, "status", json_integer(col_i64(r, 0, 18)));
    json_object_set_new(o, "finish_reason", col(r, 19));
    json_object_set_new(o, "native_finish_reason", col(r, 20));
    json_object_set_new(o, "provider_responses", attempts);
    json_object_set_new(o, "origin", PQgetisnull(r, 0, 24) ? json_string("") : col(r, 24));
    json_object_set_new(o, "http_referer", col(r, 24));
    json_object_set_new(o, "user_agent", col(r, 23));
    json_object_set_new(o, "key_id", col(r, 2));
    int cached = !PQgetisnull(r, 0, 25) && PQgetvalue(r, 0, 25)[0] != '\0';
    json_object_set_new(o, "cached", json_boolean(cached));
    json_object_set_new(o, "response_cache_source_id", cached ? col(r, 25) : json_null());
    PQclear(r);
    *out = o;
    return 0;
}

/* ---- keys ---- */

static void hex_encode(const uint8_t *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Write one key: insert (with identity columns) or update (mutable columns only, id = $1). */
static int key_write(lg_store_t *s, const lg_key_record_t *k, int insert)
{
    static const char ins[] =
        "INSERT INTO keys (id, name, expires_at, disabled, credit_limit_pico, reset_period, rpm, tpm, allowed_models,"
        " allowed_tools, metadata, hash, hint, created_at, deleted)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, decode($12, 'hex'), $13, $14, 0)";
    static const char upd[] = "UPDATE keys SET name = $2, expires_at = $3, disabled = $4, credit_limit_pico = $5,"
                              " reset_period = $6, rpm = $7, tpm = $8, allowed_models = $9, allowed_tools = $10,"
                              " metadata = $11 WHERE id = $1 AND deleted = 0";
    char id[LG_KEY_ID_LEN + 1], exp[32], lim[32], rpm[16], tpm[16], hash[65], created[32], hint[sizeof(k->hint)];
    const char *v[14];
    int rc;

    if ((rc = pg_ready(s)) != 0)
        return rc;
    if (k->name == NULL) {
        lg__store_set_err(s, "key name is required");
        return LG_EINVAL;
    }
    if (insert && k->id[0] == '\0') {
        lg__store_set_err(s, "key id is required");
        return LG_EINVAL;
    }
    snprintf(id, sizeof(id), "%.*s", (int)strnlen(k->id, sizeof(k->id)), k->id);
    snprintf(exp, sizeof(exp), "%lld", (long long)k->expires_at);
    snprintf(lim, sizeof(lim), "%lld", (long long)(k->credit_limit_pico < 0 ? -1 : k->credit_limit_pico));
    snprintf(rpm, sizeof(rpm), "%u", k->rpm);
    snprintf(tpm, sizeof(tpm), "%u", k->tpm);
    char *models = lg__store_strv_to_json(k->allowed_models), *tools = lg__store_strv_to_json(k->allowed_tools), *meta = NULL;
    if (k->metadata != NULL)
        meta = json_dumps(k->metadata, JSON_COMPACT | JSON_ENCODE_ANY);
    v[0] = id;
    v[1] = k->name;
    v[2] = exp;
    v[3] = k->disabled ? "1" : "0";
    v[4] = lim;
    v[5] = lg_reset_period_name(k->reset_period);
    v[6] = rpm;
    v[7] = tpm;
    v[8] = models;
    v[9] = tools;
    v[10] = meta;
    hex_encode(k->hash, sizeof(k->hash), hash);
    snprintf(hint, sizeof(hint), "%.*s", (int)strnlen(k->hint, sizeof(k->hint)), k->hint);
    snprintf(created, sizeof(created), "%lld", (long long)k->created_at);
    v[11] = hash;
    v[12] = hint;
    v[13] = created;
    PGresult *r = pg_query(s, insert ? ins : upd, insert ? 14 : 11, v, PGRES_COMMAND_OK, insert ? "insert key" : "update key", &rc);
    free(models);
    free(tools);
    free(meta);
    if (r == NULL) {
        if (rc == LG_EINVAL)
            lg__store_set_err(s, "%s: a key with this id or secret hash already exists", insert ? "insert key" : "update key");
        return rc;
    }
    rc = strcmp(PQcmdTuples(r), "0") == 0 ? LG_ENOTFOUND : 0;
    if (rc != 0)
        lg__store_set_err(s, "key not found");
    PQclear(r);
    return rc;
}

static int pg_key_insert(lg_store_t *s, const lg_key_record_t *k)
{
    return key_write(s, k, 1);
}

static int pg_key_update(lg_store_t *s, const lg_key_record_t *k)
{
    return key_write(s, k, 0);
}

static int pg_key_delete(lg_store_t *s, const char *id)
{
    const char *v[1] = {id};
    int rc;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    /* soft delete: the row and its hash stay so a deleted secret can never become valid again */
    PGresult *r = pg_query(s, "UPDATE keys SET deleted = 1, disabled = 1 WHERE id = $1 AND deleted = 0", 1, v, PGRES_COMMAND_OK,
                           "delete key", &rc);
    if (r == NULL)
        return rc;
    rc = strcmp(PQcmdTuples(r), "0") == 0 ? LG_ENOTFOUND : 0;
    if (rc != 0)
        lg__store_set_err(s, "key not found");
    PQclear(r);
    return rc;
}

#define KEY_COLUMNS                                                                                                                \
    "id, name, encode(hash, 'hex'), hint, created_at, expires_at, disabled, credit_limit_pico, reset_period, rpm, tpm,"            \
    " allowed_models, allowed_tools, metadata"

static lg_key_record_t *key_from_row(PGresult *r, int row)
{
    lg_key_record_t *k = lg_malloc(sizeof(*k));
    memset(k, 0, sizeof(*k));
    snprintf(k->id, sizeof(k->id), "%s", PQgetvalue(r, row, 0));
    k->name = lg_strdup(PQgetvalue(r, row, 1));
    const char *h = PQgetvalue(r, row, 2);
    if (strlen(h) == 64)
        for (int i = 0; i < 32; ++i)
            k->hash[i] = (uint8_t)(hex_val(h[2 * i]) << 4 | hex_val(h[2 * i + 1]));
    snprintf(k->hint, sizeof(k->hint), "%s", PQgetvalue(r, row, 3));
    k->created_at = col_i64(r, row, 4);
    k->expires_at = col_i64(r, row, 5);
    k->disabled = col_i64(r, row, 6) != 0;
    k->credit_limit_pico = col_i64(r, row, 7);
    int p = lg_reset_period_parse(PQgetvalue(r, row, 8));
    k->reset_period = p < 0 ? LG_RESET_NONE : (lg_reset_period_t)p;
    int64_t v = col_i64(r, row, 9);
    k->rpm = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    v = col_i64(r, row, 10);
    k->tpm = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    k->allowed_models = PQgetisnull(r, row, 11) ? NULL : lg__store_strv_from_json(PQgetvalue(r, row, 11));
    k->allowed_tools = PQgetisnull(r, row, 12) ? NULL : lg__store_strv_from_json(PQgetvalue(r, row, 12));
    if (!PQgetisnull(r, row, 13))
        k->metadata = json_loads(PQgetvalue(r, row, 13), JSON_DECODE_ANY, NULL);
    return k;
}

static int pg_key_get(lg_store_t *s, const char *id, lg_key_record_t **out)
{
    const char *v[1] = {id};
    int rc;
    *out = NULL;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    PGresult *r =
        pg_query(s, "SELECT " KEY_COLUMNS " FROM keys WHERE id = $1 AND deleted = 0", 1, v, PGRES_TUPLES_OK, "get key", &rc);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        lg__store_set_err(s, "key not found");
        return LG_ENOTFOUND;
    }
    *out = key_from_row(r, 0);
    PQclear(r);
    return 0;
}

static int pg_key_list(lg_store_t *s, lg_key_record_t ***out, size_t *n)
{
    int rc;
    *out = NULL;
    *n = 0;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    PGresult *r = pg_query(s, "SELECT " KEY_COLUMNS " FROM keys WHERE deleted = 0 ORDER BY created_at, id", 0, NULL,
                           PGRES_TUPLES_OK, "list keys", &rc);
    if (r == NULL)
        return rc;
    int rows = PQntuples(r);
    lg_key_record_t **list = lg_malloc(((size_t)rows + 1) * sizeof(*list));
    for (int i = 0; i < rows; ++i)
        list[i] = key_from_row(r, i);
    PQclear(r);
    *out = list;
    *n = (size_t)rows;
    return 0;
}

/* ---- usage ---- */

static int64_t pg_key_cost_since(lg_store_t *s, const char *key_id, int64_t since_ms)
{
    char since[32];
    const char *v[2] = {key_id, since};
    int rc;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    snprintf(since, sizeof(since), "%lld", (long long)since_ms);
    PGresult *r =
        pg_query(s, "SELECT COALESCE(SUM(cost_pico), 0) FROM generations WHERE key_id = $1 AND created_at_ms >= $2::bigint", 2, v,
                 PGRES_TUPLES_OK, "key cost", &rc);
    if (r == NULL)
        return rc;
    int64_t sum = col_i64(r, 0, 0);
    PQclear(r);
    return sum;
}

static int pg_key_usage(lg_store_t *s, const char *key_id, const int64_t since_ms[3], int64_t out_pico[4])
{
    static const char sql[] = "SELECT COALESCE(SUM(cost_pico), 0),"
                              " COALESCE(SUM(CASE WHEN created_at_ms >= $2::bigint THEN cost_pico ELSE 0 END), 0),"
                              " COALESCE(SUM(CASE WHEN created_at_ms >= $3::bigint THEN cost_pico ELSE 0 END), 0),"
                              " COALESCE(SUM(CASE WHEN created_at_ms >= $4::bigint THEN cost_pico ELSE 0 END), 0)"
                              " FROM generations WHERE key_id = $1";
    char since[3][32];
    const char *v[4] = {key_id, since[0], since[1], since[2]};
    int rc;
    if ((rc = pg_ready(s)) != 0)
        return rc;
    for (int i = 0; i < 3; ++i)
        snprintf(since[i], sizeof(since[i]), "%lld", (long long)since_ms[i]);
    PGresult *r = pg_query(s, sql, 4, v, PGRES_TUPLES_OK, "key usage", &rc);
    if (r == NULL)
        return rc;
    for (int i = 0; i < 4; ++i)
        out_pico[i] = col_i64(r, 0, i);
    PQclear(r);
    return 0;
}

#define USAGE_AGGREGATES                                                                                                           \
    " COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cached_tokens), 0),"            \
    " COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(cost_pico), 0)"
#define USAGE_FILTER                                                                                                               \
    " FROM generations WHERE ($1::text IS NULL OR key_id = $1) AND ($2::text IS NULL OR served_model = $2)"                        \
    " AND ($3::text IS NULL OR provider = $3) AND created_at_ms >= $4::bigint AND created_at_ms < $5::bigint"

/* One fixed statement per grouping: the group column comes from this table, never from the caller's text. COLLATE "C"
 * sorts like SQLite (bytewise), whatever the database's locale. */
static const struct {
    const char *name;
    const char *sql;
} usage_groups[] = {
    {NULL, "SELECT NULL," USAGE_AGGREGATES USAGE_FILTER},
    {"key", "SELECT COALESCE(key_id, '') COLLATE \"C\"," USAGE_AGGREGATES USAGE_FILTER " GROUP BY 1 ORDER BY 1"},
    {"model", "SELECT COALESCE(served_model, '') COLLATE \"C\"," USAGE_AGGREGATES USAGE_FILTER " GROUP BY 1 ORDER BY 1"},
    {"provider", "SELECT COALESCE(provider, '') COLLATE \"C\"," USAGE_AGGREGATES USAGE_FILTER " GROUP BY 1 ORDER BY 1"},
    {"day", "SELECT to_char(to_timestamp(created_at_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')," USAGE_AGGREGATES USAGE_FILTER
            " GROUP BY 1 ORDER BY 1"},
};

static int pg_usage_query(lg_store_t *s, const lg_usage_query_t *q, json_t **out)
{
    size_t g;
    int64_t total[LG_STORE_USAGE_NFIELDS] = {0};
    char since[32], until[32];
    int rc;

    *out = NULL;
    for (g = 0; g < sizeof(usage_groups) / sizeof(usage_groups[0]); ++g)
        if ((q->group_by == NULL && usage_groups[g].name == NULL) ||
            (q->group_by != NULL && usage_groups[g].name != NULL && strcmp(q->group_by, usage_groups[g].name) == 0))
            break;
    if (g == sizeof(usage_groups) / sizeof(usage_groups[0])) {
        lg__store_set_err(s, "group_by must be key, model, provider or day");
        return LG_EINVAL;
    }
    if ((rc = pg_ready(s)) != 0)
        return rc;
    snprintf(since, sizeof(since), "%lld", (long long)(q->since_ms > 0 ? q->since_ms : INT64_MIN));
    snprintf(until, sizeof(until), "%lld", (long long)(q->until_ms > 0 ? q->until_ms : INT64_MAX));
    const char *v[5] = {q->key_id, q->model, q->provider, since, until};
    PGresult *r = pg_query(s, usage_groups[g].sql, 5, v, PGRES_TUPLES_OK, "usage query", &rc);
    if (r == NULL)
        return rc;
    json_t *data = json_array();
    for (int row = 0; row < PQntuples(r); ++row) {
        int64_t vals[LG_STORE_USAGE_NFIELDS];
        for (int i = 0; i < LG_STORE_USAGE_NFIELDS; ++i) {
            vals[i] = col_i64(r, row, i + 1);
            total[i] += vals[i];
        }
        json_t *o = lg__store_usage_row(vals);
        if (usage_groups[g].name != NULL)
            json_object_set_new(o, usage_groups[g].name, lg__store_jstr(PQgetvalue(r, row, 0)));
        json_array_append_new(data, o);
    }
    PQclear(r);
    *out = json_object();
    json_object_set_new(*out, "data", data);
    json_object_set_new(*out, "total", lg__store_usage_row(total));
    return 0;
}

static int pg_lost(const lg_store_t *s)
{
    return PG(s)->lost;
}

static const lg_store_ops_t pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .lost_connection = pg_lost,
    .insert_generations = pg_insert_generations,
    .key_insert = pg_key_insert,
    .key_update = pg_key_update,
    .key_delete = pg_key_delete,
    .key_get = pg_key_get,
    .key_list = pg_key_list,
    .key_cost_since = pg_key_cost_since,
    .key_usage = pg_key_usage,
    .generation_get = pg_generation_get,
    .generations_recent = pg_generations_recent,
    .usage_query = pg_usage_query,
};
