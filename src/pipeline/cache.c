/* SPDX-License-Identifier: MIT */
/*
 * The response cache's store: a chained hash table over the key's first bytes
 * (the key is a SHA-256, already uniform) and one LRU list, under one mutex
 * held only for pointer work (never while hashing or copying a body). Entries
 * are reference-counted so a replay keeps reading its bytes after an eviction
 * or a replacement; the memory is freed by the last reference.
 */
#include "pipeline/cache.h"
#include "metrics/metrics.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    lg_rcache_entry_t e; /* first: the public view */
    atomic_int refs;     /* the table's own reference + readers */
    size_t cost;         /* bytes charged against the cap */
    struct node *hnext, *lprev, *lnext;
    int linked;
    char bytes[];
} node_t;

struct lg_rcache {
    pthread_mutex_t mu;
    node_t **buckets;
    size_t nbuckets;             /* power of two */
    node_t *lru_head, *lru_tail; /* head = most recently used */
    size_t bytes, max_bytes, entries;
    uint64_t hits, misses, stores, evictions, expirations, rejected;
};

static size_t bucket_of(const lg_rcache_t *c, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return (size_t)(h & (c->nbuckets - 1));
}

lg_rcache_t *lg_rcache_create(size_t max_bytes)
{
    lg_rcache_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->nbuckets = 4096;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    return c;
}

static void unref(node_t *n)
{
    if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1)
        free(n);
}

/* Take n out of the table and the list (mutex held); the table's reference is dropped by the caller. */
static void unlink_node(lg_rcache_t *c, node_t *n)
{
    node_t **pp = &c->buckets[bucket_of(c, n->e.key)];
    while (*pp != NULL && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp == n)
        *pp = n->hnext;
    if (n->lprev != NULL)
        n->lprev->lnext = n->lnext;
    else
        c->lru_head = n->lnext;
    if (n->lnext != NULL)
        n->lnext->lprev = n->lprev;
    else
        c->lru_tail = n->lprev;
    n->hnext = n->lprev = n->lnext = NULL;
    n->linked = 0;
    c->bytes -= n->cost;
    --c->entries;
}

void lg_rcache_destroy(lg_rcache_t *c)
{
    if (c == NULL)
        return;
    while (c->lru_head != NULL) {
        node_t *n = c->lru_head;
        unlink_node(c, n);
        unref(n);
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static lg_rcache_t *global_cache;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    global_cache = lg_rcache_create(LG_RCACHE_DEFAULT_MAX_BYTES);
}

lg_rcache_t *lg_rcache_global(void)
{
    pthread_once(&global_once, global_init);
    return global_cache;
}

/* Evict from the LRU tail until need more bytes fit (mutex held). */
static void make_room(lg_rcache_t *c, size_t need)
{
    while (c->lru_tail != NULL && c->bytes + need > c->max_bytes) {
        node_t *n = c->lru_tail;
        unlink_node(c, n);
        ++c->evictions;
        unref(n);
    }
}

void lg_rcache_set_max_bytes(lg_rcache_t *c, size_t max_bytes)
{
    pthread_mutex_lock(&c->mu);
    c->max_bytes = max_bytes;
    make_room(c, 0);
    pthread_mutex_unlock(&c->mu);
}

static node_t *find(lg_rcache_t *c, const uint8_t *key)
{
    for (node_t *n = c->buckets[bucket_of(c, key)]; n != NULL; n = n->hnext)
        if (memcmp(n->e.key, key, LG_RCACHE_KEY_LEN) == 0)
            return n;
    return NULL;
}

const lg_rcache_entry_t *lg_rcache_lookup(lg_rcache_t *c, const uint8_t key[LG_RCACHE_KEY_LEN], int64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    node_t *n = find(c, key);
    if (n != NULL && now_ms >= n->e.expires_ms) {
        unlink_node(c, n);
        ++c->expirations;
        unref(n);
        n = NULL;
    }
    if (n == NULL) {
        ++c->misses;
        pthread_mutex_unlock(&c->mu);
        return NULL;
    }
    /* move to the front */
    if (n != c->lru_head) {
        n->lprev->lnext = n->lnext;
        if (n->lnext != NULL)
            n->lnext->lprev = n->lprev;
        else
            c->lru_tail = n->lprev;
        n->lprev = NULL;
        n->lnext = c->lru_head;
        c->lru_head->lprev = n;
        c->lru_head = n;
    }
    ++c->hits;
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&c->mu);
    return &n->e;
}

void lg_rcache_release(lg_rcache_t *c, const lg_rcache_entry_t *e)
{
    (void)c;
    if (e != NULL)
        unref((node_t *)(void *)e);
}

void lg_rcache_retain(const lg_rcache_entry_t *e)
{
    atomic_fetch_add_explicit(&((node_t *)(void *)e)->refs, 1, memory_order_relaxed);
}

static void collect(lg_metrics_writer_t *w, void *arg)
{
    (void)arg;
    lg_rcache_stats_t st;
    lg_rcache_stats(lg_rcache_global(), &st);
    lg_metrics_write_counter(w, "llmgate_response_cache_hits_total", "Response cache lookups that found a live entry",
                             (double)st.hits, NULL);
    lg_metrics_write_counter(w, "llmgate_response_cache_misses_total", "Response cache lookups that found none", (double)st.misses,
                             NULL);
    lg_metrics_write_counter(w, "llmgate_response_cache_stores_total", "Answers stored in the response cache", (double)st.stores,
                             NULL);
    lg_metrics_write_counter(w, "llmgate_response_cache_evictions_total",
                             "Response cache entries evicted to stay under the byte cap", (double)st.evictions, NULL);
    lg_metrics_write_counter(w, "llmgate_response_cache_expirations_total", "Response cache entries dropped at their TTL",
                             (double)st.expirations, NULL);
    lg_metrics_write_counter(w, "llmgate_response_cache_rejected_total",
                             "Answers too large for the response cache (over an eighth of the cap)", (double)st.rejected, NULL);
    lg_metrics_write_gauge(w, "llmgate_response_cache_bytes", "Bytes held by the response cache", (double)st.bytes, NULL);
    lg_metrics_write_gauge(w, "llmgate_response_cache_entries", "Entries in the response cache", (double)st.entries, NULL);
    lg_metrics_write_gauge(w, "llmgate_response_cache_max_bytes", "The response cache's byte cap", (double)st.max_bytes, NULL);
}

void lg_rcache_register_metrics(void)
{
    lg_metrics_add_collector(collect, NULL);
}

int lg_rcache_store(lg_rcache_t *c, const lg_rcache_entry_t *tmpl)
{
    size_t cost = sizeof(node_t) + tmpl->len;
    pthread_mutex_lock(&c->mu);
    size_t cap = c->max_bytes;
    pthread_mutex_unlock(&c->mu);
    if (cost > cap / 8) {
        pthread_mutex_lock(&c->mu);
        ++c->rejected;
        pthread_mutex_unlock(&c->mu);
        return -1;
    }
    node_t *n = malloc(sizeof(node_t) + tmpl->len + 1);
    if (n == NULL)
        return -1;
    memset(n, 0, sizeof(*n));
    n->e = *tmpl;
    memcpy(n->bytes, tmpl->body, tmpl->len);
    n->bytes[tmpl->len] = '\0';
    n->e.body = n->bytes;
    n->cost = cost;
    atomic_init(&n->refs, 1);
    pthread_mutex_lock(&c->mu);
    node_t *old = find(c, tmpl->key);
    if (old != NULL) {
        unlink_node(c, old);
        unref(old);
    }
    make_room(c, cost);
    n->hnext = c->buckets[bucket_of(c, n->e.key)];
    c->buckets[bucket_of(c, n->e.key)] = n;
    n->lnext = c->lru_head;
    if (c->lru_head != NULL)
        c->lru_head->lprev = n;
    c->lru_head = n;
    if (c->lru_tail == NULL)
        c->lru_tail = n;
    n->linked = 1;
    c->bytes += cost;
    ++c->entries;
    ++c->stores;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void lg_rcache_remove(lg_rcache_t *c, const uint8_t key[LG_RCACHE_KEY_LEN])
{
    pthread_mutex_lock(&c->mu);
    node_t *n = find(c, key);
    if (n != NULL) {
        unlink_node(c, n);
        unref(n);
    }
    pthread_mutex_unlock(&c->mu);
}

void lg_rcache_stats(lg_rcache_t *c, lg_rcache_stats_t *out)
{
    pthread_mutex_lock(&c->mu);
    out->hits = c->hits;
    out->misses = c->misses;
    out->stores = c->stores;
    out->evictions = c->evictions;
    out->expirations = c->expirations;
    out->rejected = c->rejected;
    out->bytes = c->bytes;
    out->entries = c->entries;
    out->max_bytes = c->max_bytes;
    pthread_mutex_unlock(&c->mu);
}

/* ---- the key ---- */

typedef struct norm {
    int in_string, escaped;
} norm_t;

/* Feed bytes through the normaliser, calling emit for each kept run. */
static size_t normalise_run(norm_t *st, const char *p, size_t len, char *out, size_t cap, size_t *olen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (st->in_string) {
            if (st->escaped)
                st->escaped = 0;
            else if (ch == '\\')
                st->escaped = 1;
            else if (ch == '"')
                st->in_string = 0;
        } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            continue;
        } else if (ch == '"') {
            st->in_string = 1;
        }
        if (*olen + n < cap)
            out[*olen + n] = ch;
        ++n;
    }
    *olen += n;
    return n;
}

size_t lg_rcache_normalise(const char *body, size_t len, char *out, size_t cap)
{
    norm_t st = {0, 0};
    size_t olen = 0;
    normalise_run(&st, body, len, out, cap, &olen);
    return olen;
}

int lg_rcache_key(const char *scope, const char *model, const char *route, int stream, const char *body, size_t len,
                  uint8_t out[LG_RCACHE_KEY_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return -1;
    int ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    const char *parts[3] = {scope, model, route};
    for (int i = 0; ok && i < 3; i++) /* each part with its NUL: "a"+"bc" never equals "ab"+"c" */
        ok = EVP_DigestUpdate(md, parts[i] != NULL ? parts[i] : "", strlen(parts[i] != NULL ? parts[i] : "") + 1) == 1;
    if (ok)
        ok = EVP_DigestUpdate(md, stream ? "S" : "B", 1) == 1;
    norm_t st = {0, 0};
    char buf[4096];
    for (size_t pos = 0; ok && pos < len;) {
        size_t take = len - pos < sizeof(buf) ? len - pos : sizeof(buf);
        size_t olen = 0;
        normalise_run(&st, body + pos, take, buf, sizeof(buf), &olen);
        pos += take;
        ok = EVP_DigestUpdate(md, buf, olen) == 1;
    }
    unsigned int dlen = 0;
    if (ok)
        ok = EVP_DigestFinal_ex(md, out, &dlen) == 1 && dlen == LG_RCACHE_KEY_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

int lg_rcache_parse_ttl(const char *s, size_t len, uint32_t *ttl_s)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        ++i;
    if (i >= len || s[i] < '0' || s[i] > '9')
        return 0;
    uint64_t v = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        if (v <= LG_RCACHE_TTL_MAX)
            v = v * 10 + (uint64_t)(s[i] - '0');
    if (v < 1)
        v = 1;
    if (v > LG_RCACHE_TTL_MAX)
        v = LG_RCACHE_TTL_MAX;
    *ttl_s = (uint32_t)v;
    return 1;
}
