/* SPDX-License-Identifier: MIT */
/*
 * The process-wide MCP session table (see session.h): a chained hash table
 * behind one mutex, reference-counted sessions, idle expiry on lookup and by
 * a rate-limited sweep.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "core/util.h"
#include "mcp/session.h"

#define MAX_SUBSCRIPTIONS 256
#define SWEEP_EVERY_MS 1000

struct lg_mcp_session {
    char id[LG_MCP_SESSION_ID_LEN + 1];
    char *key_id;
    char *server;
    char version[16];
    json_t *client_caps;
    json_t *client_info;
    uint32_t ttl_ms;

    /* below: under table_mu */
    unsigned refcnt;
    int in_table;
    int closed;
    int initialized;
    int log_level;
    int64_t last_used_ms;
    int busy;
    int has_stream;
    unsigned stream_worker;
    uint64_t stream_serial;
    char **subs;
    size_t num_subs;
    unsigned listen_mask; /* 2026-07-28 subscriptions/listen: LG_MCP_LISTEN_* wanted, 0 = not a listen stream */
    char listen_id[64];
    struct lg_mcp_session *next; /* bucket chain */
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static lg_mcp_session_t **buckets;
static size_t num_buckets, num_sessions;
static int64_t last_sweep_ms;
static int64_t (*clock_fn)(void);

static const char *const level_names[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

int lg_mcp_log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); ++i)
        if (strcmp(level_names[i], name) == 0)
            return i;
    return -1;
}

const char *lg_mcp_log_level_name(int level)
{
    if (level < 0 || level >= (int)(sizeof(level_names) / sizeof(level_names[0])))
        return "info";
    return level_names[level];
}

static int64_t now_ms(void)
{
    return clock_fn != NULL ? clock_fn() : lg_now_ms();
}

void lg_mcp_session_set_clock(int64_t (*fn)(void))
{
    clock_fn = fn;
}

int lg__mcp_session_new_id(char out[LG_MCP_SESSION_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[LG_MCP_SESSION_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(raw); ++i) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[LG_MCP_SESSION_ID_LEN] = '\0';
    return 0;
}

static size_t hash_id(const char *id, size_t len)
{
    /* ids are uniformly random already: the first bytes are a fine hash (FNV-1a over all of them anyway) */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; ++i)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ULL;
    return (size_t)h;
}

static void session_free(lg_mcp_session_t *s)
{
    free(s->key_id);
    free(s->server);
    json_decref(s->client_caps);
    json_decref(s->client_info);
    for (size_t i = 0; i < s->num_subs; ++i)
        free(s->subs[i]);
    free(s->subs);
    free(s);
}

/* table_mu held */
static void unlink_locked(lg_mcp_session_t *s)
{
    if (!s->in_table)
        return;
    lg_mcp_session_t **pp = &buckets[hash_id(s->id, LG_MCP_SESSION_ID_LEN) % num_buckets];
    while (*pp != NULL && *pp != s)
        pp = &(*pp)->next;
    if (*pp == s)
        *pp = s->next;
    s->next = NULL;
    s->in_table = 0;
    --num_sessions;
}

/* table_mu held; returns 1 if the caller must free s */
static int unref_locked(lg_mcp_session_t *s)
{
    return --s->refcnt == 0;
}

static int idle_expired_locked(const lg_mcp_session_t *s, int64_t now)
{
    return !s->has_stream && s->busy == 0 && now - s->last_used_ms > (int64_t)s->ttl_ms;
}

/* table_mu held; moves expired sessions to *dead (chained through next) for freeing outside the lock */
static size_t sweep_locked(int64_t now, lg_mcp_session_t **dead)
{
    size_t n = 0;
    for (size_t b = 0; b < num_buckets; ++b) {
        lg_mcp_session_t **pp = &buckets[b];
        while (*pp != NULL) {
            lg_mcp_session_t *s = *pp;
            if (idle_expired_locked(s, now)) {
                *pp = s->next;
                s->in_table = 0;
                s->closed = 1;
                --num_sessions;
                ++n;
                if (unref_locked(s)) {
                    s->next = *dead;
                    *dead = s;
                } else {
                    s->next = NULL;
                }
            } else {
                pp = &s->next;
            }
        }
    }
    last_sweep_ms = now;
    return n;
}

static void free_chain(lg_mcp_session_t *dead)
{
    while (dead != NULL) {
        lg_mcp_session_t *next = dead->next;
        session_free(dead);
        dead = next;
    }
}

static void grow_locked(void)
{
    size_t nb = num_buckets == 0 ? 256 : num_buckets * 2;
    lg_mcp_session_t **nbk = calloc(nb, sizeof(*nbk));
    if (nbk == NULL)
        return; /* keep the old table; chains just get longer */
    for (size_t b = 0; b < num_buckets; ++b) {
        lg_mcp_session_t *s = buckets[b];
        while (s != NULL) {
            lg_mcp_session_t *next = s->next;
            size_t h = hash_id(s->id, LG_MCP_SESSION_ID_LEN) % nb;
            s->next = nbk[h];
            nbk[h] = s;
            s = next;
        }
    }
    free(buckets);
    buckets = nbk;
    num_buckets = nb;
}

lg_mcp_session_t *lg_mcp_session_create(const char *key_id, const char *server, const char *version, const json_t *client_caps,
                                        const json_t *client_info, uint32_t ttl_s)
{
    lg_mcp_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (lg__mcp_session_new_id(s->id) != 0) {
        free(s);
        return NULL;
    }
    s->key_id = key_id != NULL ? lg_strdup(key_id) : NULL;
    s->server = lg_strdup(server != NULL ? server : "");
    snprintf(s->version, sizeof(s->version), "%s", version != NULL ? version : "");
    s->client_caps = json_is_object(client_caps) ? json_deep_copy(client_caps) : json_object();
    s->client_info = client_info != NULL ? json_deep_copy(client_info) : NULL;
    s->ttl_ms = (ttl_s == 0 ? 1 : ttl_s) * 1000u;
    s->log_level = -1;
    s->refcnt = 2; /* the table's and the caller's */

    lg_mcp_session_t *dead = NULL;
    pthread_mutex_lock(&table_mu);
    int64_t now = now_ms();
    s->last_used_ms = now;
    if (now - last_sweep_ms >= SWEEP_EVERY_MS || num_sessions >= LG_MCP_MAX_SESSIONS)
        sweep_locked(now, &dead);
    if (num_sessions >= LG_MCP_MAX_SESSIONS) {
        pthread_mutex_unlock(&table_mu);
        free_chain(dead);
        session_free(s);
        return NULL;
    }
    if (num_sessions + 1 > num_buckets)
        grow_locked();
    size_t h = hash_id(s->id, LG_MCP_SESSION_ID_LEN) % num_buckets;
    s->next = buckets[h];
    buckets[h] = s;
    s->in_table = 1;
    ++num_sessions;
    pthread_mutex_unlock(&table_mu);
    free_chain(dead);
    return s;
}

static int same_key(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

lg_mcp_session_t *lg_mcp_session_lookup(const char *id, size_t len, const char *key_id, const char *server)
{
    if (len != LG_MCP_SESSION_ID_LEN)
        return NULL;
    lg_mcp_session_t *found = NULL, *dead = NULL;
    pthread_mutex_lock(&table_mu);
    if (num_buckets != 0) {
        lg_mcp_session_t *s = buckets[hash_id(id, len) % num_buckets];
        while (s != NULL && memcmp(s->id, id, len) != 0)
            s = s->next;
        int64_t now = now_ms();
        if (s != NULL && idle_expired_locked(s, now)) {
            unlink_locked(s);
            s->closed = 1;
            if (unref_locked(s))
                dead = s;
            s = NULL;
        }
        if (s != NULL && same_key(s->key_id, key_id) && strcmp(s->server, server != NULL ? server : "") == 0) {
            s->last_used_ms = now;
            ++s->refcnt;
            found = s;
        }
    }
    pthread_mutex_unlock(&table_mu);
    if (dead != NULL)
        session_free(dead);
    return found;
}

lg_mcp_session_t *lg_mcp_session_ref(lg_mcp_session_t *s)
{
    pthread_mutex_lock(&table_mu);
    ++s->refcnt;
    pthread_mutex_unlock(&table_mu);
    return s;
}

void lg_mcp_session_unref(lg_mcp_session_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&table_mu);
    int last = unref_locked(s);
    pthread_mutex_unlock(&table_mu);
    if (last)
        session_free(s);
}

void lg_mcp_session_close(lg_mcp_session_t *s)
{
    int last = 0;
    pthread_mutex_lock(&table_mu);
    if (s->in_table) {
        unlink_locked(s);
        last = unref_locked(s); /* the table's reference; the caller still holds one, so never the last */
    }
    s->closed = 1;
    pthread_mutex_unlock(&table_mu);
    if (last)
        session_free(s);
}

int lg_mcp_session_closed(lg_mcp_session_t *s)
{
    pthread_mutex_lock(&table_mu);
    int c = s->closed;
    pthread_mutex_unlock(&table_mu);
    return c;
}

const char *lg_mcp_session_id(const lg_mcp_session_t *s)
{
    return s->id;
}

const char *lg_mcp_session_version(const lg_mcp_session_t *s)
{
    return s->version;
}

const char *lg_mcp_session_key_id(const lg_mcp_session_t *s)
{
    return s->key_id;
}

const char *lg_mcp_session_server(const lg_mcp_session_t *s)
{
    return s->server;
}

const json_t *lg_mcp_session_client_caps(const lg_mcp_session_t *s)
{
    return s->client_caps;
}

int lg_mcp_session_client_has(const lg_mcp_session_t *s, const char *name)
{
    json_t *v = json_object_get(s->client_caps, name);
    return v != NULL && !json_is_null(v) && !json_is_false(v);
}

void lg_mcp_session_set_initialized(lg_mcp_session_t *s)
{
    pthread_mutex_lock(&table_mu);
    s->initialized = 1;
    pthread_mutex_unlock(&table_mu);
}

void lg_mcp_session_set_log_level(lg_mcp_session_t *s, int level)
{
    pthread_mutex_lock(&table_mu);
    s->log_level = level;
    pthread_mutex_unlock(&table_mu);
}

int lg_mcp_session_log_level(lg_mcp_session_t *s)
{
    pthread_mutex_lock(&table_mu);
    int v = s->log_level;
    pthread_mutex_unlock(&table_mu);
    return v;
}

void lg_mcp_session_set_listen(lg_mcp_session_t *s, unsigned mask, const char *subscription_id)
{
    pthread_mutex_lock(&table_mu);
    s->listen_mask = mask;
    snprintf(s->listen_id, sizeof(s->listen_id), "%s", subscription_id != NULL ? subscription_id : "");
    pthread_mutex_unlock(&table_mu);
}

unsigned lg_mcp_session_listen(lg_mcp_session_t *s, char *id_out, size_t n)
{
    pthread_mutex_lock(&table_mu);
    unsigned m = s->listen_mask;
    if (id_out != NULL && n > 0)
        snprintf(id_out, n, "%s", s->listen_id);
    pthread_mutex_unlock(&table_mu);
    return m;
}

int lg_mcp_session_log_wanted(lg_mcp_session_t *s, int level)
{
    int min = lg_mcp_session_log_level(s);
    return min < 0 || level >= min;
}

int lg_mcp_session_subscribe(lg_mcp_session_t *s, const char *uri, int on)
{
    int rc = 0;
    pthread_mutex_lock(&table_mu);
    size_t i = 0;
    while (i < s->num_subs && strcmp(s->subs[i], uri) != 0)
        ++i;
    if (on && i == s->num_subs) {
        if (s->num_subs >= MAX_SUBSCRIPTIONS) {
            rc = -1;
        } else {
            char **n = realloc(s->subs, (s->num_subs + 1) * sizeof(*n));
            if (n == NULL) {
                rc = -1;
            } else {
                s->subs = n;
                s->subs[s->num_subs++] = lg_strdup(uri);
            }
        }
    } else if (!on && i < s->num_subs) {
        free(s->subs[i]);
        s->subs[i] = s->subs[--s->num_subs];
    }
    pthread_mutex_unlock(&table_mu);
    return rc;
}

int lg_mcp_session_subscribed(lg_mcp_session_t *s, const char *uri)
{
    int found = 0;
    pthread_mutex_lock(&table_mu);
    for (size_t i = 0; i < s->num_subs && !found; ++i)
        found = strcmp(s->subs[i], uri) == 0;
    pthread_mutex_unlock(&table_mu);
    return found;
}

int lg_mcp_session_attach_stream(lg_mcp_session_t *s, unsigned worker, uint64_t serial)
{
    int rc = 0;
    pthread_mutex_lock(&table_mu);
    if (s->has_stream || s->closed) {
        rc = -1;
    } else {
        s->has_stream = 1;
        s->stream_worker = worker;
        s->stream_serial = serial;
    }
    pthread_mutex_unlock(&table_mu);
    return rc;
}

void lg_mcp_session_detach_stream(lg_mcp_session_t *s, unsigned worker, uint64_t serial)
{
    pthread_mutex_lock(&table_mu);
    if (s->has_stream && s->stream_worker == worker && s->stream_serial == serial) {
        s->has_stream = 0;
        s->last_used_ms = now_ms(); /* idle from now on */
    }
    pthread_mutex_unlock(&table_mu);
}

int lg_mcp_session_stream(lg_mcp_session_t *s, unsigned *worker, uint64_t *serial)
{
    pthread_mutex_lock(&table_mu);
    int rc = s->has_stream ? 0 : -1;
    if (rc == 0) {
        *worker = s->stream_worker;
        *serial = s->stream_serial;
    }
    pthread_mutex_unlock(&table_mu);
    return rc;
}

void lg_mcp_session_busy(lg_mcp_session_t *s, int delta)
{
    pthread_mutex_lock(&table_mu);
    s->busy += delta;
    s->last_used_ms = now_ms();
    pthread_mutex_unlock(&table_mu);
}

void lg_mcp_session_foreach(void (*fn)(lg_mcp_session_t *s, void *ud), void *ud)
{
    pthread_mutex_lock(&table_mu);
    size_t n = 0, cap = num_sessions;
    lg_mcp_session_t **list = cap != 0 ? calloc(cap, sizeof(*list)) : NULL;
    for (size_t b = 0; b < num_buckets && list != NULL; ++b)
        for (lg_mcp_session_t *s = buckets[b]; s != NULL && n < cap; s = s->next) {
            ++s->refcnt;
            list[n++] = s;
        }
    pthread_mutex_unlock(&table_mu);
    for (size_t i = 0; i < n; ++i) {
        fn(list[i], ud);
        lg_mcp_session_unref(list[i]);
    }
    free(list);
}

size_t lg_mcp_session_sweep(void)
{
    lg_mcp_session_t *dead = NULL;
    pthread_mutex_lock(&table_mu);
    size_t n = sweep_locked(now_ms(), &dead);
    pthread_mutex_unlock(&table_mu);
    free_chain(dead);
    return n;
}

size_t lg_mcp_session_count(void)
{
    pthread_mutex_lock(&table_mu);
    size_t n = num_sessions;
    pthread_mutex_unlock(&table_mu);
    return n;
}

void lg_mcp_session_reset(void)
{
    lg_mcp_session_t *dead = NULL;
    pthread_mutex_lock(&table_mu);
    for (size_t b = 0; b < num_buckets; ++b) {
        lg_mcp_session_t *s = buckets[b];
        while (s != NULL) {
            lg_mcp_session_t *next = s->next;
            s->in_table = 0;
            s->closed = 1;
            s->next = NULL;
            if (unref_locked(s)) {
                s->next = dead;
                dead = s;
            }
            s = next;
        }
    }
    free(buckets);
    buckets = NULL;
    num_buckets = num_sessions = 0;
    last_sweep_ms = 0;
    pthread_mutex_unlock(&table_mu);
    free_chain(dead);
}
