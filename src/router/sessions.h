/* SPDX-License-Identifier: MIT */
/*
 * Sticky-session bindings: session key -> the endpoint that last served it, shared by every worker. A bounded table
 * (entry and byte caps, least recently used evicted first), entries expire after their TTL. The key and the value are
 * opaque bytes to this module (the pipeline's sticky step composes them); values name an endpoint by strings, so a
 * binding survives a config reload for as long as the endpoint does.
 */
#ifndef LG_ROUTER_SESSIONS_H
#define LG_ROUTER_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#define LG_SESSION_MAX_KEY 1024  /* longer keys are refused (put does nothing, get finds nothing) */
#define LG_SESSION_MAX_VALUE 512 /* longer values are refused */

typedef struct lg_session_table lg_session_table_t;

typedef struct lg_session_limits {
    size_t max_entries; /* 0 = the default, 65536 */
    size_t max_bytes;   /* keys + values + per-entry overhead; 0 = the default, 32 MiB */
} lg_session_limits_t;

lg_session_table_t *lg_session_table_create(void);
void lg_session_table_destroy(lg_session_table_t *t);
/** The process-wide table the workers share (created on first use, never freed before exit). */
lg_session_table_t *lg_session_table_shared(void);

/**
 * Copy the live value of key into out (cap bytes; NUL-terminated) and mark the entry used. Returns its length, or -1
 * when absent, expired (then dropped) or longer than cap - 1.
 */
long lg_session_get(lg_session_table_t *t, const char *key, size_t klen, int64_t now_ms, char *out, size_t cap);
/** Insert or replace; the entry expires at now_ms + ttl_ms. Evicts the least recently used past the limits. */
void lg_session_put(lg_session_table_t *t, const char *key, size_t klen, const char *val, size_t vlen, int64_t now_ms,
                    int64_t ttl_ms, const lg_session_limits_t *lim);
void lg_session_remove(lg_session_table_t *t, const char *key, size_t klen);

typedef struct lg_session_counts {
    size_t entries;
    size_t bytes;
    uint64_t evictions; /* dropped by the caps (not by expiry) */
} lg_session_counts_t;
void lg_session_table_counts(lg_session_table_t *t, lg_session_counts_t *out);

#endif
