/* SPDX-License-Identifier: MIT */
/*
 * The store seam: what a durable backend (SQLite file, PostgreSQL server)
 * implements so that store.h's callers (ledger writer, key sync, admin and
 * account handlers, the CLI) never know which one they talk to. store.c
 * picks the backend from the target string at open and forwards every call
 * through the backend's ops table; nothing else branches on the backend.
 * Private to src/store.
 */
#ifndef LG_STORE_BACKEND_H
#define LG_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "store/store.h"

typedef struct lg_store_ops {
    const char *name; /* "sqlite" | "postgresql": reported by --check-config and /health */
    void (*close)(lg_store_t *s);
    int (*lost_connection)(const lg_store_t *s); /* optional: 1 when the last failure was the server going away */
    int (*insert_generations)(lg_store_t *s, const lg_generation_row_t *rows, size_t n, size_t *skipped);
    int (*key_insert)(lg_store_t *s, const lg_key_record_t *k);
    int (*key_update)(lg_store_t *s, const lg_key_record_t *k);
    int (*key_delete)(lg_store_t *s, const char *id);
    int (*key_get)(lg_store_t *s, const char *id, lg_key_record_t **out);
    int (*key_list)(lg_store_t *s, lg_key_record_t ***out, size_t *n);
    int64_t (*key_cost_since)(lg_store_t *s, const char *key_id, int64_t since_ms);
    /* sums of cost_pico for key_id: all time, and since each of the three period starts */
    int (*key_usage)(lg_store_t *s, const char *key_id, const int64_t since_ms[3], int64_t out_pico[4]);
    int (*generation_get)(lg_store_t *s, const char *id, json_t **out);
    int (*usage_query)(lg_store_t *s, const lg_usage_query_t *q, json_t **out);
    int (*generations_recent)(lg_store_t *s, unsigned limit, int64_t before_ms, json_t **out);
    struct sqlite3 *(*sqlite_handle)(lg_store_t *s); /* optional: the SQLite connection (modules with their own tables) */
} lg_store_ops_t;

/** The part every backend embeds first (container_of by cast). */
struct lg_store {
    const lg_store_ops_t *ops;
    int version;      /* schema version after migration */
    char errmsg[256]; /* reason for the last failed call */
};

/** Backends: open and migrate; NULL with a reason in err. */
lg_store_t *lg__store_sqlite_open(const char *path, char *err, size_t errlen);
lg_store_t *lg__store_pg_open(const char *url, char *err, size_t errlen);

/* ---- helpers shared by the backends (store_common.c) ---- */

__attribute__((format(printf, 2, 3))) void lg__store_set_err(lg_store_t *s, const char *fmt, ...);
/** A JSON string; bytes that are not valid UTF-8 become '?'. NULL → JSON null. */
json_t *lg__store_jstr(const char *s);
json_t *lg__store_usd(int64_t pico);
/** One row of lg_store_generations_recent (both backends build the same object; steals the json_t arguments).
 * attempts_json is the stored attempt trail (only its length is reported), NULL if none. */
json_t *lg__store_recent_row(const char *id, const char *created_at, int64_t created_ms, json_t *key_id, json_t *key_name,
                             json_t *requested_model, json_t *model, json_t *provider, json_t *api, int status,
                             const char *attempts_json, double latency_ms, json_t *ttft_ms, int64_t prompt_tokens,
                             int64_t completion_tokens, int64_t cost_pico, int streamed, int cancelled, json_t *finish_reason);
/** ISO 8601 UTC with milliseconds. */
void lg__store_iso8601(int64_t ms, char out[32]);
/** NULL-terminated string list ↔ JSON array text (NULL ↔ NULL). */
char *lg__store_strv_to_json(char *const *v);
char **lg__store_strv_from_json(const char *text);
/** One usage aggregate object from requests, prompt, completion, cached, cache_write, reasoning, cost_pico. */
#define LG_STORE_USAGE_NFIELDS 7
json_t *lg__store_usage_row(const int64_t v[LG_STORE_USAGE_NFIELDS]);

#endif
