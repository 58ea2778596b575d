/* SPDX-License-Identifier: MIT */
/*
 * The durable store: one SQLite database in WAL mode holding the API keys
 * (hashed secrets, limits) and the generation ledger. Versioned schema with
 * migrations applied at open. One lg_store_t is one sqlite3 connection: use it
 * from one thread at a time (the ledger writer owns its own).
 */
#ifndef LG_STORE_STORE_H
#define LG_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "domain/key.h"
#include "llmgate/error.h"

/** Schema version this binary creates and understands; a database with a newer one is refused. */
#define LG_STORE_SCHEMA_VERSION 3

typedef struct lg_store lg_store_t;

/**
 * One ledger row: a finished generation (successful or not). Fixed-size strings are NUL-terminated and cut to fit;
 * attempts_json is a heap JSON array owned by the row (the ledger frees it; NULL = no attempts recorded).
 */
typedef struct lg_generation_row {
    char id[40];                    /* "gen-..." */
    int64_t created_at_ms;          /* unix milliseconds (wall clock) */
    char key_id[LG_KEY_ID_LEN + 1]; /* "" = open gateway (no key) */
    char requested_model[128], served_model[128], provider[64], upstream_model[128], api[24];
    char *attempts_json;
    int64_t prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_pico;
    double latency_ms, ttft_ms, generation_time_ms;
    int status; /* HTTP status returned to the client */
    char finish_reason[24], native_finish_reason[24];
    int streamed, cancelled;
    char user_agent[128], http_referer[128];
    char response_cache_source_id[40]; /* "" = not a response-cache hit, else the stored answer's generation id */
} lg_generation_row_t;

/**
 * Open (creating the file, mode 0600, and its parent folder if missing) and migrate. Sets journal_mode=WAL,
 * synchronous=NORMAL (a commit survives a process crash; a power loss may lose the last commits, never corrupt),
 * busy_timeout=5000, foreign_keys=ON. Returns NULL with a reason in err when the file cannot be opened, is not a
 * database, or has a schema version newer than LG_STORE_SCHEMA_VERSION.
 */
lg_store_t *lg_store_open(const char *path, char *err, size_t errlen);
/**
 * The target names the backend: a "postgresql://" (or "postgres://") URL opens PostgreSQL (libpq; schema migrated
 * the same way, under an advisory lock), anything else is a SQLite file path as above.
 */
int lg_store_target_is_url(const char *target);
/** "postgresql" or "sqlite": the backend lg_store_open would pick for target (for --check-config and /health). */
const char *lg_store_backend_for(const char *target);
/** target for logs and messages: a URL's password replaced by "***". */
void lg_store_target_display(const char *target, char *out, size_t cap);
/** The backend of an open store ("sqlite" | "postgresql"). */
const char *lg_store_backend(const lg_store_t *s);
/** Finalize statements and close; NULL is a no-op. */
void lg_store_close(lg_store_t *s);
/**
 * 1 when the last failed call failed because the server is unreachable (PostgreSQL restarting): the next call
 * reconnects, so the caller should keep its data and retry rather than give up. Always 0 for SQLite.
 */
int lg_store_unreachable(const lg_store_t *s);
/** Schema version of the open database (== LG_STORE_SCHEMA_VERSION after a successful open). */
int lg_store_version(lg_store_t *s);
/** The connection's sqlite3 handle, for modules that own their own tables (mcp/oauth_store.c); same threading rule. */
struct sqlite3;
struct sqlite3 *lg__store_sqlite(lg_store_t *s);
/** Reason for the last failed call on s ("" if none). Valid until the next call on s. */
const char *lg_store_errmsg(const lg_store_t *s);

/**
 * Insert rows in one transaction (BEGIN IMMEDIATE .. COMMIT). A row whose id already exists is skipped (counted in
 * *skipped when given): the ledger retries failed batches, and one bad row must not poison a batch. Returns 0, or
 * LG_EINTERNAL (rolled back; nothing inserted) with the reason in lg_store_errmsg.
 */
int lg_store_insert_generations(lg_store_t *s, const lg_generation_row_t *rows, size_t n);
/** Same, reporting how many rows were skipped as duplicates. */
int lg_store_insert_generations_ex(lg_store_t *s, const lg_generation_row_t *rows, size_t n, size_t *skipped);

/* ---- keys ---- */

/** Insert a new key. LG_EINVAL if the id or hash already exists (deleted keys included), LG_EINTERNAL on store errors. */
int lg_store_key_insert(lg_store_t *s, const lg_key_record_t *k);
/**
 * Update every mutable field of the key k->id: name, expires_at, disabled, credit_limit_pico, reset_period, rpm, tpm,
 * allowed_models, allowed_tools, metadata (id, hash, hint, created_at never change). LG_ENOTFOUND if absent or deleted.
 */
int lg_store_key_update(lg_store_t *s, const lg_key_record_t *k);
/** Soft delete: the row stays (deleted = 1) so its hash can never be reused. LG_ENOTFOUND if absent or already deleted. */
int lg_store_key_delete(lg_store_t *s, const char *id);
/** Fetch one key (not deleted) into a new record (free with lg_key_record_free). LG_ENOTFOUND if absent. */
int lg_store_key_get(lg_store_t *s, const char *id, lg_key_record_t **out);
/** All keys not deleted, oldest first, with their hashes (the in-memory key table loads from this). */
int lg_store_key_list(lg_store_t *s, lg_key_record_t ***out, size_t *n);
/** Free what lg_store_key_list returned. */
void lg_store_key_list_free(lg_key_record_t **list, size_t n);

/* ---- usage ---- */

/** Start (unix ms, UTC) of the reset period containing now_ms: day, ISO week (Monday) or calendar month; NONE → 0. */
int64_t lg_period_start_ms(lg_reset_period_t p, int64_t now_ms);

/** Sum of cost_pico of key_id's generations with created_at_ms >= since_ms; a negative lg_err_t on store errors. */
int64_t lg_store_key_cost_since(lg_store_t *s, const char *key_id, int64_t since_ms);

/**
 * *out = {"usage", "usage_daily", "usage_weekly", "usage_monthly"} in USD (JSON reals, pico / 1e12) for key_id, windows
 * from lg_period_start_ms(…, now_ms); plus the exact "usage_pico", "usage_daily_pico", "usage_weekly_pico",
 * "usage_monthly_pico" integers. A key without rows has zeros.
 */
int lg_store_key_usage(lg_store_t *s, const char *key_id, int64_t now_ms, json_t **out);

/**
 * *out = the OpenRouter GET /generation "data" object for id (OpenRouter's shape): id, created_at (ISO 8601 UTC),
 * model, provider_name, api_type, streamed, cancelled, tokens_*, native_tokens_*, total_cost, usage, latency,
 * generation_time, finish_reason, native_finish_reason, provider_responses (array), is_byok, upstream_inference_cost,
 * cache_discount, origin, http_referer, user_agent, key_id, requested_model (+ llmgate's upstream_model, ttft,
 * status, cost_pico). LG_ENOTFOUND when absent.
 */
int lg_store_generation_get(lg_store_t *s, const char *id, json_t **out);

/**
 * The most recent generations, newest first: *out = {"data": [{id, created_at (ISO 8601), created_at_ms, key_id,
 * key_name (null when the key is gone or there was none), requested_model, model, provider, api, status, attempts
 * (count), latency_ms, ttft_ms, prompt_tokens, completion_tokens, cost (USD), cost_pico, streamed, cancelled,
 * finish_reason}]}. limit 1..500; before_ms > 0 = only rows created before it (paging). Never message content.
 */
int lg_store_generations_recent(lg_store_t *s, unsigned limit, int64_t before_ms, json_t **out);

typedef struct lg_usage_query {
    const char *key_id, *model, *provider; /* exact filters; NULL = any. model matches the served model */
    int64_t since_ms, until_ms;            /* unix ms, since inclusive, until exclusive; 0 = open */
    const char *group_by;                  /* "key" | "model" | "provider" | "day" (UTC) | NULL = total only */
} lg_usage_query_t;

/**
 * Aggregate the ledger: *out = {"data": [{<group>: value, "requests", "prompt_tokens", "completion_tokens",
 * "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost" (USD), "cost_pico"}], "total": {same without the
 * group}}. Groups are sorted by their value; the "key" group of rows without a key is "". Without group_by, data
 * holds the total as its one element. LG_EINVAL for an unknown group_by.
 */
int lg_store_usage_query(lg_store_t *s, const lg_usage_query_t *q, json_t **out);

#endif
