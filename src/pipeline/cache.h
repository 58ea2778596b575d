/* SPDX-License-Identifier: MIT */
/*
 * The response cache's store (exact match, in-process): immutable entries of a
 * stored upstream answer (status 200, its bytes, whole body or SSE), found by
 * a 32-byte key, shared by every worker behind one mutex, bounded by a byte
 * cap with LRU eviction and a TTL per entry. Also the two pure pieces of the
 * contract: the key recipe (scope + model + route + stream flag + SHA-256 of
 * the whitespace-normalised body) and the X-OpenRouter-Cache-TTL parser.
 * The exchange side (decision, headers, tee, replay) is cache_exchange.c and
 * source_cache.c. Moving it to several replicas means swapping this store for
 * a key-value one: entries are plain bytes plus a few fields.
 */
#ifndef LG_PIPELINE_CACHE_H
#define LG_PIPELINE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define LG_RCACHE_KEY_LEN 32
#define LG_RCACHE_TTL_DEFAULT 300
#define LG_RCACHE_TTL_MAX 86400
#define LG_RCACHE_DEFAULT_MAX_BYTES (64u * 1024 * 1024)

typedef struct lg_rcache lg_rcache_t;

/** One stored answer. Immutable once stored; readers hold a reference (lg_rcache_release). */
typedef struct lg_rcache_entry {
    uint8_t key[LG_RCACHE_KEY_LEN];
    int64_t created_ms, expires_ms;
    uint32_t ttl_s;
    int sse;            /* the bytes are an event stream (a streamed request's answer) */
    char source_id[48]; /* generation id of the answer that was stored */
    char provider[64];  /* the endpoint that produced it: a replay is decoded by the same plugin */
    char upstream_model[160];
    size_t len;
    const char *body; /* len bytes, behind the entry */
} lg_rcache_entry_t;

typedef struct lg_rcache_stats {
    uint64_t hits, misses, stores, evictions, expirations, rejected;
    uint64_t bytes, entries, max_bytes;
} lg_rcache_stats_t;

lg_rcache_t *lg_rcache_create(size_t max_bytes);
void lg_rcache_destroy(lg_rcache_t *c);
/** The process-wide store (created on first use with the default cap). */
lg_rcache_t *lg_rcache_global(void);
/** Change the byte cap (evicts at once when it shrinks). */
void lg_rcache_set_max_bytes(lg_rcache_t *c, size_t max_bytes);

/** A live entry for key at now_ms with a reference taken, or NULL (counted as a miss; expired entries go). */
const lg_rcache_entry_t *lg_rcache_lookup(lg_rcache_t *c, const uint8_t key[LG_RCACHE_KEY_LEN], int64_t now_ms);
void lg_rcache_release(lg_rcache_t *c, const lg_rcache_entry_t *e);
/** One more reference to an entry already held. */
void lg_rcache_retain(const lg_rcache_entry_t *e);
/** The /metrics collector for the process-wide store (main thread, before workers start). */
void lg_rcache_register_metrics(void);
/**
 * Store a copy of tmpl's fields and body (tmpl->body, tmpl->len), replacing an entry of the same key. Evicts the
 * least recently used entries to fit. Returns 0, or -1 when the entry is larger than an eighth of the cap (not stored).
 */
int lg_rcache_store(lg_rcache_t *c, const lg_rcache_entry_t *tmpl);
/** Drop the entry of key if any (X-OpenRouter-Cache-Clear). */
void lg_rcache_remove(lg_rcache_t *c, const uint8_t key[LG_RCACHE_KEY_LEN]);
void lg_rcache_stats(lg_rcache_t *c, lg_rcache_stats_t *out);

/**
 * The key: SHA-256 over scope, model, route, the stream flag and the body with JSON's insignificant whitespace
 * removed (bytes inside strings are kept as they are; key order counts). Returns 0, -1 on a digest failure.
 */
int lg_rcache_key(const char *scope, const char *model, const char *route, int stream, const char *body, size_t len,
                  uint8_t out[LG_RCACHE_KEY_LEN]);
/** Copy body without insignificant whitespace into out (cap bytes); returns the normalised length (may exceed cap). */
size_t lg_rcache_normalise(const char *body, size_t len, char *out, size_t cap);
/**
 * X-OpenRouter-Cache-TTL: leading digits (after optional blanks) are the seconds, clamped to 1..86400 ("60abc" = 60,
 * "1.5" = 1, "0" = 1). Returns 1 with *ttl_s set, or 0 for junk (no leading digit: the value is ignored).
 */
int lg_rcache_parse_ttl(const char *s, size_t len, uint32_t *ttl_s);

#endif
