/* SPDX-License-Identifier: MIT */
/*
 * The sticky-session table (see sessions.h): 16 shards, each a mutex, a chained hash table and an LRU list, so two
 * workers touching different sessions rarely meet on a lock. The caps are split evenly over the shards. Every
 * operation is O(1) expected; the lock is held only for the table work (one malloc at most on put), never across I/O.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "core/util.h"
#include "router/sessions.h"

#define SHARDS 16
#define BUCKETS_PER_SHARD 4096 /* chains stay short up to the default cap (65536 / 16 = 4096 entries a shard) */
#define ENTRY_OVERHEAD ((size_t)sizeof(entry_t))

typedef struct entry {
    struct entry *chain;
    struct entry *lru_prev, *lru_next; /* lru_next toward older */
    uint64_t hash;
    int64_t expires_ms;
    uint32_t klen, vlen;
    char data[]; /* key bytes, then value bytes, then NUL */
} entry_t;

typedef struct shard {
    pthread_mutex_t lock;
    entry_t *buckets[BUCKETS_PER_SHARD];
    entry_t *newest, *oldest;
    size_t entries, bytes;
    uint64_t evictions;
} shard_t;

struct lg_session_table {
    shard_t shards[SHARDS];
};

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then a final mix so shard and bucket bits are independent */
    for (size_t i = 0; i < n; ++i)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

lg_session_table_t *lg_session_table_create(void)
{
    lg_session_table_t *t = lg_calloc(1, sizeof(*t));
    for (size_t i = 0; i < SHARDS; ++i)
        pthread_mutex_init(&t->shards[i].lock, NULL);
    return t;
}

void lg_session_table_destroy(lg_session_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < SHARDS; ++i) {
        for (entry_t *e = t->shards[i].newest, *next; e != NULL; e = next) {
            next = e->lru_next;
            free(e);
        }
        pthread_mutex_destroy(&t->shards[i].lock);
    }
    free(t);
}

static pthread_once_t shared_once = PTHREAD_ONCE_INIT;
static lg_session_table_t *shared_table;
static void shared_init(void)
{
    shared_table = lg_session_table_create();
}

lg_session_table_t *lg_session_table_shared(void)
{
    pthread_once(&shared_once, shared_init);
    return shared_table;
}

static entry_t **find(shard_t *s, uint64_t h, const char *key, size_t klen)
{
    entry_t **pp = &s->buckets[(h >> 4) % BUCKETS_PER_SHARD];
    while (*pp != NULL && !((*pp)->hash == h && (*pp)->klen == klen && memcmp((*pp)->data, key, klen) == 0))
        pp = &(*pp)->chain;
    return pp;
}

static void lru_unlink(shard_t *s, entry_t *e)
{
    if (e->lru_prev != NULL)
        e->lru_prev->lru_next = e->lru_next;
    else
        s->newest = e->lru_next;
    if (e->lru_next != NULL)
        e->lru_next->lru_prev = e->lru_prev;
    else
        s->oldest = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_newest(shard_t *s, entry_t *e)
{
    e->lru_prev = NULL;
    e->lru_next = s->newest;
    if (s->newest != NULL)
        s->newest->lru_prev = e;
    s->newest = e;
    if (s->oldest == NULL)
        s->oldest = e;
}

static size_t entry_bytes(const entry_t *e)
{
    return ENTRY_OVERHEAD + e->klen + e->vlen + 1;
}

/* unlink e (found at *pp in its chain) and free it */
static void drop(shard_t *s, entry_t **pp)
{
    entry_t *e = *pp;
    *pp = e->chain;
    lru_unlink(s, e);
    s->entries--;
    s->bytes -= entry_bytes(e);
    free(e);
}

static void drop_entry(shard_t *s, entry_t *e)
{
    entry_t **pp = find(s, e->hash, e->data, e->klen);
    if (*pp == e)
        drop(s, pp);
}

long lg_session_get(lg_session_table_t *t, const char *key, size_t klen, int64_t now_ms, char *out, size_t cap)
{
    if (klen == 0 || klen > LG_SESSION_MAX_KEY || cap == 0)
        return -1;
    uint64_t h = hash_bytes(key, klen);
    shard_t *s = &t->shards[h % SHARDS];
    long len = -1;
    pthread_mutex_lock(&s->lock);
    entry_t **pp = find(s, h, key, klen);
    entry_t *e = *pp;
    if (e != NULL && e->expires_ms <= now_ms) {
        drop(s, pp);
    } else if (e != NULL && e->vlen < cap) {
        memcpy(out, e->data + e->klen, e->vlen);
        out[e->vlen] = '\0';
        len = (long)e->vlen;
        lru_unlink(s, e);
        lru_push_newest(s, e);
    }
    pthread_mutex_unlock(&s->lock);
    return len;
}

void lg_session_put(lg_session_table_t *t, const char *key, size_t klen, const char *val, size_t vlen, int64_t now_ms,
                    int64_t ttl_ms, const lg_session_limits_t *lim)
{
    if (klen == 0 || klen > LG_SESSION_MAX_KEY || vlen > LG_SESSION_MAX_VALUE || ttl_ms <= 0)
        return;
    size_t max_entries = lim != NULL && lim->max_entries != 0 ? lim->max_entries : 65536;
    size_t max_bytes = lim != NULL && lim->max_bytes != 0 ? lim->max_bytes : (size_t)32 << 20;
    size_t shard_entries = max_entries / SHARDS != 0 ? max_entries / SHARDS : 1;
    size_t shard_bytes = max_bytes / SHARDS;
    uint64_t h = hash_bytes(key, klen);
    shard_t *s = &t->shards[h % SHARDS];
    entry_t *n = malloc(sizeof(entry_t) + klen + vlen + 1); /* outside the lock */
    if (n == NULL)
        return;
    memset(n, 0, sizeof(*n));
    n->hash = h;
    n->klen = (uint32_t)klen;
    n->vlen = (uint32_t)vlen;
    n->expires_ms = now_ms + ttl_ms;
    memcpy(n->data, key, klen);
    memcpy(n->data + klen, val, vlen);
    n->data[klen + vlen] = '\0';
    if (entry_bytes(n) > shard_bytes) {
        free(n);
        return;
    }
    pthread_mutex_lock(&s->lock);
    entry_t **pp = find(s, h, key, klen);
    if (*pp != NULL)
        drop(s, pp);
    /* expired entries at the old end go first, then the least recently used while over a cap */
    while (s->oldest != NULL && s->oldest->expires_ms <= now_ms)
        drop_entry(s, s->oldest);
    while (s->oldest != NULL && (s->entries + 1 > shard_entries || s->bytes + entry_bytes(n) > shard_bytes)) {
        drop_entry(s, s->oldest);
        s->evictions++;
    }
    pp = &s->buckets[(h >> 4) % BUCKETS_PER_SHARD];
    n->chain = *pp;
    *pp = n;
    lru_push_newest(s, n);
    s->entries++;
    s->bytes += entry_bytes(n);
    pthread_mutex_unlock(&s->lock);
}

void lg_session_remove(lg_session_table_t *t, const char *key, size_t klen)
{
    if (klen == 0 || klen > LG_SESSION_MAX_KEY)
        return;
    uint64_t h = hash_bytes(key, klen);
    shard_t *s = &t->shards[h % SHARDS];
    pthread_mutex_lock(&s->lock);
    entry_t **pp = find(s, h, key, klen);
    if (*pp != NULL)
        drop(s, pp);
    pthread_mutex_unlock(&s->lock);
}

void lg_session_table_counts(lg_session_table_t *t, lg_session_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < SHARDS; ++i) {
        shard_t *s = &t->shards[i];
        pthread_mutex_lock(&s->lock);
        out->entries += s->entries;
        out->bytes += s->bytes;
        out->evictions += s->evictions;
        pthread_mutex_unlock(&s->lock);
    }
}
