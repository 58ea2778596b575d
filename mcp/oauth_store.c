/* SPDX-License-Identifier: MIT */
/*
 * OAuth state tables and their write-behind persistence (see oauth_store.h).
 *
 * One read-write lock guards all tables: OAuth traffic is a few requests per
 * client per hour (writers), while the per-request access-token check is a
 * reader doing one hash probe with no allocation, so workers never wait for
 * each other on the request path. Changes that must survive a restart are
 * queued, in table order, for the writer thread (its own mutex), which commits
 * everything queued in one transaction.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include "core/log.h"
#include "core/util.h"
#include "mcp/oauth_store.h"
#include "store/store.h"

#define SWEEP_INTERVAL_S 30
#define MAX_PENDING 10000
#define MAX_CODES 10000
#define MAX_CACHED_DOCUMENTS 10000

/* ---- a small hash table keyed by 32-byte hashes ---- */

struct node {
    uint8_t key[32];
    struct node *next;
};

struct tab {
    struct node **b;
    size_t nb, n;
};

static size_t slot(const struct tab *t, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof(h)); /* the keys are SHA-256 outputs: any 8 bytes are uniform */
    return (size_t)(h & (t->nb - 1));
}

static void tab_grow(struct tab *t)
{
    size_t nb = t->nb == 0 ? 64 : t->nb * 2;
    struct node **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        abort();
    struct tab nt = {b, nb, t->n};
    for (size_t i = 0; i < t->nb; ++i)
        for (struct node *e = t->b[i], *next; e != NULL; e = next) {
            next = e->next;
            size_t s = slot(&nt, e->key);
            e->next = b[s];
            b[s] = e;
        }
    free(t->b);
    *t = nt;
}

static struct node *tab_get(const struct tab *t, const uint8_t *key)
{
    if (t->nb == 0)
        return NULL;
    for (struct node *e = t->b[slot(t, key)]; e != NULL; e = e->next)
        if (CRYPTO_memcmp(e->key, key, 32) == 0)
            return e;
    return NULL;
}

static void tab_add(struct tab *t, struct node *e)
{
    if (t->n + 1 > t->nb)
        tab_grow(t);
    size_t s = slot(t, e->key);
    e->next = t->b[s];
    t->b[s] = e;
    t->n++;
}

static void tab_unlink(struct tab *t, struct node *e)
{
    for (struct node **p = &t->b[slot(t, e->key)]; *p != NULL; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            t->n--;
            return;
        }
}

/* ---- records ---- */

struct client_node {
    struct node n;
    lg_oauth_client_t c;
    int used; /* obtained a token at least once (never evicted) */
};

struct pending_node {
    struct node n;
    lg_oauth_pending_t p;
};

struct code_node {
    struct node n;
    lg_oauth_grant_t g;
    int used;
};

struct token_node {
    struct node n;
    lg_oauth_token_kind_t kind;
    int state; /* 0 active, 1 used (a rotated refresh token), 2 revoked */
    int64_t created_at;
    lg_oauth_grant_t g;
};

enum { TOKEN_ACTIVE = 0, TOKEN_USED = 1, TOKEN_REVOKED = 2 };

void lg_oauth_grant_dispose(lg_oauth_grant_t *g)
{
    free(g->client_id);
    free(g->resource);
    free(g->scope);
    free(g->redirect_uri);
    free(g->code_challenge);
    memset(g, 0, sizeof(*g));
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? lg_strdup(s) : NULL;
}

void lg_oauth_grant_copy(lg_oauth_grant_t *dst, const lg_oauth_grant_t *src)
{
    *dst = *src;
    dst->client_id = dup_or_null(src->client_id);
    dst->resource = dup_or_null(src->resource);
    dst->scope = dup_or_null(src->scope);
    dst->redirect_uri = dup_or_null(src->redirect_uri);
    dst->code_challenge = dup_or_null(src->code_challenge);
}

void lg_oauth_pending_dispose(lg_oauth_pending_t *p)
{
    free(p->client_id);
    free(p->client_name);
    free(p->redirect_uri);
    free(p->state);
    free(p->code_challenge);
    free(p->resource);
    free(p->scope);
    memset(p, 0, sizeof(*p));
}

static void pending_copy(lg_oauth_pending_t *dst, const lg_oauth_pending_t *src)
{
    *dst = *src;
    dst->client_id = dup_or_null(src->client_id);
    dst->client_name = dup_or_null(src->client_name);
    dst->redirect_uri = dup_or_null(src->redirect_uri);
    dst->state = dup_or_null(src->state);
    dst->code_challenge = dup_or_null(src->code_challenge);
    dst->resource = dup_or_null(src->resource);
    dst->scope = dup_or_null(src->scope);
}

/* ---- persistence queue ---- */

enum { OP_TOKEN_INSERT, OP_TOKEN_STATE, OP_GRANT_REVOKE, OP_CLIENT_INSERT, OP_CLIENT_USED, OP_CLIENT_DELETE, OP_PURGE };

struct op {
    int type;
    struct op *next;
    uint8_t hash[32];
    int kind, state;
    int64_t created_at, now;
    lg_oauth_grant_t g; /* OP_TOKEN_INSERT */
    char *text;         /* OP_CLIENT_*: client id; OP_GRANT_REVOKE: grant id */
    char *metadata;     /* OP_CLIENT_INSERT */
    int has_secret;
};

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;    /* the tables; readers: the per-request access-token check */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;      /* the write-behind queue (lock order: rw, then mu) */
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;      /* writer: work or stop */
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER; /* flush: queue drained */
static struct tab clients, pending, codes, tokens;
static size_t num_registered, max_registered = 10000;
static int64_t last_sweep;
static int initialised, persistent, stopping, writer_busy;
static struct op *q_head, *q_tail;
static pthread_t writer;
static lg_store_t *wstore; /* writer thread only */

static void op_free(struct op *o)
{
    lg_oauth_grant_dispose(&o->g);
    free(o->text);
    free(o->metadata);
    free(o);
}

/* Queue a change (rw held for writing: the queue keeps the order of the table changes). Without a store nothing is queued. */
static void enqueue(struct op *o)
{
    pthread_mutex_lock(&mu);
    if (!persistent || stopping) {
        pthread_mutex_unlock(&mu);
        op_free(o);
        return;
    }
    if (q_tail != NULL)
        q_tail->next = o;
    else
        q_head = o;
    q_tail = o;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mu);
}

static struct op *op_new(int type)
{
    struct op *o = lg_malloc(sizeof(*o));
    memset(o, 0, sizeof(*o));
    o->type = type;
    return o;
}

static int run_op(sqlite3 *db, const struct op *o)
{
    sqlite3_stmt *st = NULL;
    const char *sql = NULL;
    switch (o->type) {
    case OP_TOKEN_INSERT:
        sql = "INSERT OR REPLACE INTO oauth_tokens (hash, kind, grant_id, client_id, key_id, resource, scope, created_at, "
              "expires_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0)";
        break;
    case OP_TOKEN_STATE:
        sql = "UPDATE oauth_tokens SET state = ?2 WHERE hash = ?1";
        break;
    case OP_GRANT_REVOKE:
        sql = "UPDATE oauth_tokens SET state = 2 WHERE grant_id = ?3";
        break;
    case OP_CLIENT_INSERT:
        sql =
            "INSERT OR REPLACE INTO oauth_clients (client_id, metadata, secret_hash, created_at, used) VALUES (?3, ?4, ?1, ?8, 0)";
        break;
    case OP_CLIENT_USED:
        sql = "UPDATE oauth_clients SET used = 1 WHERE client_id = ?3";
        break;
    case OP_CLIENT_DELETE:
        sql = "DELETE FROM oauth_clients WHERE client_id = ?3";
        break;
    case OP_PURGE:
        sql = "DELETE FROM oauth_tokens WHERE expires_at < ?8";
        break;
    default:
        return 0;
    }
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int np = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= np; ++i) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        int idx = name != NULL ? atoi(name + 1) : i;
        switch (idx) {
        case 1:
            if (o->type == OP_CLIENT_INSERT && !o->has_secret)
                sqlite3_bind_null(st, i);
            else
                sqlite3_bind_blob(st, i, o->hash, 32, SQLITE_STATIC);
            break;
        case 2:
            sqlite3_bind_int(st, i, o->type == OP_TOKEN_STATE ? o->state : o->kind);
            break;
        case 3:
            sqlite3_bind_text(st, i, o->type == OP_TOKEN_INSERT ? o->g.grant_id : o->text, -1, SQLITE_STATIC);
            break;
        case 4:
            sqlite3_bind_text(st, i, o->type == OP_TOKEN_INSERT ? o->g.client_id : o->metadata, -1, SQLITE_STATIC);
            break;
        case 5:
            sqlite3_bind_text(st, i, o->g.key_id, -1, SQLITE_STATIC);
            break;
        case 6:
            sqlite3_bind_text(st, i, o->g.resource != NULL ? o->g.resource : "", -1, SQLITE_STATIC);
            break;
        case 7:
            sqlite3_bind_text(st, i, o->g.scope != NULL ? o->g.scope : "", -1, SQLITE_STATIC);
            break;
        case 8:
            sqlite3_bind_int64(st, i, o->type == OP_PURGE ? o->now : o->created_at);
            break;
        case 9:
            sqlite3_bind_int64(st, i, o->g.expires_at);
            break;
        default:
            break;
        }
    }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void *writer_main(void *arg)
{
    (void)arg;
    sqlite3 *db = lg__store_sqlite(wstore);
    pthread_mutex_lock(&mu);
    for (;;) {
        while (q_head == NULL && !stopping)
            pthread_cond_wait(&cond, &mu);
        if (q_head == NULL && stopping)
            break;
        struct op *batch = q_head;
        q_head = q_tail = NULL;
        writer_busy = 1;
        pthread_mutex_unlock(&mu);
        int ok = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
        for (struct op *o = batch; ok && o != NULL; o = o->next)
            if (run_op(db, o) != 0) {
                LG_LOG(LG_LOG_WARN, "oauth", "store write failed: %s", sqlite3_errmsg(db));
                ok = 0;
            }
        if (ok && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            ok = 0;
        if (!ok) {
            LG_LOG(LG_LOG_WARN, "oauth", "store transaction failed (%s); the in-memory state stays authoritative",
                   sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        }
        while (batch != NULL) {
            struct op *next = batch->next;
            op_free(batch);
            batch = next;
        }
        pthread_mutex_lock(&mu);
        writer_busy = 0;
        pthread_cond_broadcast(&idle_cond);
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

void lg__oauth_store_flush(void)
{
    pthread_mutex_lock(&mu);
    while (persistent && (q_head != NULL || writer_busy))
        pthread_cond_wait(&idle_cond, &mu);
    pthread_mutex_unlock(&mu);
}

/* ---- client (de)serialisation for the store ---- */

static char *client_metadata_json(const lg_oauth_client_t *c)
{
    json_t *uris = json_array();
    for (char **r = c->redirect_uris; r != NULL && *r != NULL; ++r)
        json_array_append_new(uris, json_string(*r));
    json_t *o = json_pack("{s:o,s:i,s:b,s:I}", "redirect_uris", uris, "auth_method", (int)c->auth_method, "refresh_allowed",
                          c->refresh_allowed, "issued_at", (json_int_t)c->issued_at);
    if (c->client_name != NULL)
        json_object_set_new(o, "client_name", json_string(c->client_name));
    if (c->client_uri != NULL)
        json_object_set_new(o, "client_uri", json_string(c->client_uri));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        abort();
    return s;
}

static int client_from_row(const char *id, const char *meta, const void *secret, int secret_len, lg_oauth_client_t *c)
{
    memset(c, 0, sizeof(*c));
    json_t *o = json_loads(meta, 0, NULL);
    json_t *uris = json_object_get(o, "redirect_uris");
    if (!json_is_array(uris) || json_array_size(uris) == 0) {
        json_decref(o);
        return -1;
    }
    c->client_id = lg_strdup(id);
    c->redirect_uris = calloc(json_array_size(uris) + 1, sizeof(char *));
    if (c->redirect_uris == NULL)
        abort();
    for (size_t i = 0; i < json_array_size(uris); ++i)
        c->redirect_uris[i] =
            lg_strdup(json_string_value(json_array_get(uris, i)) != NULL ? json_string_value(json_array_get(uris, i)) : "");
    c->client_name = dup_or_null(json_string_value(json_object_get(o, "client_name")));
    c->client_uri = dup_or_null(json_string_value(json_object_get(o, "client_uri")));
    c->auth_method = (lg_oauth_auth_method_t)json_integer_value(json_object_get(o, "auth_method"));
    c->refresh_allowed = json_is_true(json_object_get(o, "refresh_allowed"));
    c->issued_at = json_integer_value(json_object_get(o, "issued_at"));
    if (secret != NULL && secret_len == 32)
        memcpy(c->secret_hash, secret, 32);
    json_decref(o);
    return 0;
}

/* ---- init / shutdown ---- */

static void client_key(const char *id, uint8_t out[32])
{
    lg_oauth_hash(id, strlen(id), out);
}

static int load_from_store(lg_store_t *s, int64_t now, char *err, size_t errlen)
{
    sqlite3 *db = lg__store_sqlite(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT client_id, metadata, secret_hash, used FROM oauth_clients", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct client_node *cn = lg_malloc(sizeof(*cn));
        memset(cn, 0, sizeof(*cn));
        if (client_from_row((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                            sqlite3_column_blob(st, 2), sqlite3_column_bytes(st, 2), &cn->c) != 0) {
            free(cn);
            continue;
        }
        cn->used = sqlite3_column_int(st, 3);
        client_key(cn->c.client_id, cn->n.key);
        tab_add(&clients, &cn->n);
        num_registered++;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db,
                           "SELECT hash, kind, grant_id, client_id, key_id, resource, scope, created_at, expires_at, state "
                           "FROM oauth_tokens WHERE expires_at >= ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(st, 1, now);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != 32)
            continue;
        struct token_node *tn = lg_malloc(sizeof(*tn));
        memset(tn, 0, sizeof(*tn));
        memcpy(tn->n.key, sqlite3_column_blob(st, 0), 32);
        tn->kind = sqlite3_column_int(st, 1) == LG_OAUTH_REFRESH ? LG_OAUTH_REFRESH : LG_OAUTH_ACCESS;
        snprintf(tn->g.grant_id, sizeof(tn->g.grant_id), "%s", (const char *)sqlite3_column_text(st, 2));
        tn->g.client_id = lg_strdup((const char *)sqlite3_column_text(st, 3));
        snprintf(tn->g.key_id, sizeof(tn->g.key_id), "%s", (const char *)sqlite3_column_text(st, 4));
        tn->g.resource = lg_strdup((const char *)sqlite3_column_text(st, 5));
        tn->g.scope = lg_strdup((const char *)sqlite3_column_text(st, 6));
        tn->created_at = sqlite3_column_int64(st, 7);
        tn->g.expires_at = sqlite3_column_int64(st, 8);
        tn->state = sqlite3_column_int(st, 9);
        tab_add(&tokens, &tn->n);
    }
    sqlite3_finalize(st);
    return 0;
fail:
    snprintf(err, errlen, "oauth: cannot load clients and tokens: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return -1;
}

int lg__oauth_store_init(const char *store_path, uint32_t max_clients, int64_t now, char *err, size_t errlen)
{
    pthread_rwlock_wrlock(&rw);
    if (initialised) {
        pthread_rwlock_unlock(&rw);
        return 0;
    }
    if (max_clients > 0)
        max_registered = max_clients;
    last_sweep = now;
    if (store_path != NULL && lg_store_target_is_url(store_path)) {
        /* a PostgreSQL store (scale-out): its schema has no OAuth tables, so grants live in this process only */
        LG_LOG(LG_LOG_WARN, "oauth",
               "store is PostgreSQL: OAuth clients and tokens are kept in memory (lost at restart, "
               "not shared between replicas)");
        store_path = NULL;
    }
    if (store_path != NULL) {
        wstore = lg_store_open(store_path, err, errlen);
        if (wstore == NULL || load_from_store(wstore, now, err, errlen) != 0) {
            lg_store_close(wstore);
            wstore = NULL;
            pthread_rwlock_unlock(&rw);
            return -1;
        }
        pthread_mutex_lock(&mu);
        persistent = 1;
        pthread_mutex_unlock(&mu);
        if (pthread_create(&writer, NULL, writer_main, NULL) != 0) {
            snprintf(err, errlen, "oauth: cannot start the store writer thread");
            pthread_mutex_lock(&mu);
            persistent = 0;
            pthread_mutex_unlock(&mu);
            lg_store_close(wstore);
            wstore = NULL;
            pthread_rwlock_unlock(&rw);
            return -1;
        }
    }
    initialised = 1;
    pthread_rwlock_unlock(&rw);
    return 0;
}

static void free_tab(struct tab *t, void (*free_node)(struct node *))
{
    for (size_t i = 0; i < t->nb; ++i)
        for (struct node *e = t->b[i], *next; e != NULL; e = next) {
            next = e->next;
            free_node(e);
        }
    free(t->b);
    memset(t, 0, sizeof(*t));
}

static void free_client_node(struct node *n)
{
    struct client_node *cn = (struct client_node *)n;
    lg_oauth_client_dispose(&cn->c);
    free(cn);
}

static void free_pending_node(struct node *n)
{
    struct pending_node *pn = (struct pending_node *)n;
    lg_oauth_pending_dispose(&pn->p);
    free(pn);
}

static void free_code_node(struct node *n)
{
    struct code_node *c = (struct code_node *)n;
    lg_oauth_grant_dispose(&c->g);
    free(c);
}

static void free_token_node(struct node *n)
{
    struct token_node *t = (struct token_node *)n;
    lg_oauth_grant_dispose(&t->g);
    free(t);
}

void lg__oauth_store_shutdown(void)
{
    pthread_mutex_lock(&mu);
    int had_writer = persistent;
    stopping = 1;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mu);
    if (had_writer)
        pthread_join(writer, NULL);
    pthread_rwlock_wrlock(&rw);
    lg_store_close(wstore);
    wstore = NULL;
    free_tab(&clients, free_client_node);
    free_tab(&pending, free_pending_node);
    free_tab(&codes, free_code_node);
    free_tab(&tokens, free_token_node);
    num_registered = 0;
    initialised = 0;
    pthread_rwlock_unlock(&rw);
    pthread_mutex_lock(&mu);
    persistent = stopping = 0;
    pthread_mutex_unlock(&mu);
}

int lg__oauth_store_persistent(void)
{
    return persistent;
}

void lg__oauth_store_counts(size_t *nclients, size_t *access, size_t *refresh, size_t *ncodes, size_t *npending)
{
    size_t a = 0, r = 0;
    pthread_rwlock_wrlock(&rw);
    for (size_t i = 0; i < tokens.nb; ++i)
        for (struct node *e = tokens.b[i]; e != NULL; e = e->next) {
            const struct token_node *t = (const struct token_node *)e;
            if (t->state == TOKEN_ACTIVE)
                *(t->kind == LG_OAUTH_ACCESS ? &a : &r) += 1;
        }
    if (nclients != NULL)
        *nclients = clients.n;
    if (ncodes != NULL)
        *ncodes = codes.n;
    if (npending != NULL)
        *npending = pending.n;
    pthread_rwlock_unlock(&rw);
    if (access != NULL)
        *access = a;
    if (refresh != NULL)
        *refresh = r;
}

/* Drop what expired (rw held for writing): consent transactions, codes, tokens, cached documents. At most every SWEEP_INTERVAL_S.
 */
static void sweep(int64_t now)
{
    if (now - last_sweep < SWEEP_INTERVAL_S)
        return;
    last_sweep = now;
    struct {
        struct tab *t;
        void (*free_node)(struct node *);
    } tabs[] = {{&pending, free_pending_node}, {&codes, free_code_node}, {&tokens, free_token_node}, {&clients, free_client_node}};
    for (size_t k = 0; k < sizeof(tabs) / sizeof(tabs[0]); ++k) {
        struct tab *t = tabs[k].t;
        for (size_t i = 0; i < t->nb; ++i)
            for (struct node **p = &t->b[i]; *p != NULL;) {
                struct node *e = *p;
                int64_t exp;
                if (t == &pending)
                    exp = ((struct pending_node *)e)->p.expires_at;
                else if (t == &codes)
                    exp = ((struct code_node *)e)->g.expires_at;
                else if (t == &tokens)
                    exp = ((struct token_node *)e)->g.expires_at;
                else
                    exp = ((struct client_node *)e)->c.expires_at; /* 0 = registered: kept */
                if (exp != 0 && exp < now) {
                    *p = e->next;
                    t->n--;
                    tabs[k].free_node(e);
                } else {
                    p = &e->next;
                }
            }
    }
    struct op *o = op_new(OP_PURGE);
    o->now = now;
    enqueue(o);
}

/* ---- clients ---- */

/* Evict the oldest registered client that never obtained a token (rw held for writing). */
static int evict_one(void)
{
    struct client_node *oldest = NULL;
    for (size_t i = 0; i < clients.nb; ++i)
        for (struct node *e = clients.b[i]; e != NULL; e = e->next) {
            struct client_node *cn = (struct client_node *)e;
            if (!cn->c.is_metadata_document && !cn->used && (oldest == NULL || cn->c.issued_at < oldest->c.issued_at))
                oldest = cn;
        }
    if (oldest == NULL)
        return -1;
    struct op *o = op_new(OP_CLIENT_DELETE);
    o->text = lg_strdup(oldest->c.client_id);
    enqueue(o);
    tab_unlink(&clients, &oldest->n);
    num_registered--;
    free_client_node(&oldest->n);
    return 0;
}

int lg__oauth_client_put(const lg_oauth_client_t *c, int64_t now)
{
    uint8_t key[32];
    client_key(c->client_id, key);
    pthread_rwlock_wrlock(&rw);
    sweep(now);
    struct client_node *old = (struct client_node *)tab_get(&clients, key);
    if (old != NULL) {
        tab_unlink(&clients, &old->n);
        if (!old->c.is_metadata_document)
            num_registered--;
        free_client_node(&old->n);
    }
    if (!c->is_metadata_document && num_registered >= max_registered && evict_one() != 0) {
        pthread_rwlock_unlock(&rw);
        return LG_OAUTH_FULL;
    }
    if (c->is_metadata_document && clients.n - num_registered >= MAX_CACHED_DOCUMENTS) {
        pthread_rwlock_unlock(&rw);
        return LG_OAUTH_FULL;
    }
    struct client_node *cn = lg_malloc(sizeof(*cn));
    memset(cn, 0, sizeof(*cn));
    memcpy(cn->n.key, key, 32);
    lg_oauth_client_copy(&cn->c, c);
    tab_add(&clients, &cn->n);
    if (!c->is_metadata_document) {
        num_registered++;
        struct op *o = op_new(OP_CLIENT_INSERT);
        o->text = lg_strdup(c->client_id);
        o->metadata = client_metadata_json(c);
        o->has_secret = c->auth_method != LG_OAUTH_AUTH_NONE;
        memcpy(o->hash, c->secret_hash, 32);
        o->created_at = c->issued_at;
        enqueue(o);
    }
    pthread_rwlock_unlock(&rw);
    return LG_OAUTH_OK;
}

int lg__oauth_client_get(const char *client_id, int64_t now, lg_oauth_client_t *out)
{
    uint8_t key[32];
    client_key(client_id, key);
    pthread_rwlock_wrlock(&rw);
    struct client_node *cn = (struct client_node *)tab_get(&clients, key);
    int rc = LG_OAUTH_NOT_FOUND;
    if (cn != NULL && strcmp(cn->c.client_id, client_id) == 0) {
        rc = cn->c.expires_at != 0 && cn->c.expires_at < now ? LG_OAUTH_EXPIRED : LG_OAUTH_OK;
        if (rc == LG_OAUTH_OK)
            lg_oauth_client_copy(out, &cn->c);
    }
    pthread_rwlock_unlock(&rw);
    return rc;
}

/* first token for a client: it is in use and never evicted (rw held for writing) */
static void client_mark_used(const char *client_id)
{
    uint8_t key[32];
    client_key(client_id, key);
    struct client_node *cn = (struct client_node *)tab_get(&clients, key);
    if (cn == NULL || cn->used)
        return;
    cn->used = 1;
    if (!cn->c.is_metadata_document) {
        struct op *o = op_new(OP_CLIENT_USED);
        o->text = lg_strdup(client_id);
        enqueue(o);
    }
}

/* ---- consent transactions ---- */

static void txn_key(const char *txn, uint8_t out[32])
{
    lg_oauth_hash(txn, strlen(txn), out);
}

void lg__oauth_pending_put(lg_oauth_pending_t *p, int64_t now)
{
    struct pending_node *pn = lg_malloc(sizeof(*pn));
    memset(pn, 0, sizeof(*pn));
    pn->p = *p;
    memset(p, 0, sizeof(*p));
    txn_key(pn->p.txn, pn->n.key);
    pthread_rwlock_wrlock(&rw);
    sweep(now);
    if (pending.n >= MAX_PENDING) {
        /* flood of abandoned consent pages: forget the whole lot rather than grow without bound */
        free_tab(&pending, free_pending_node);
        LG_LOG(LG_LOG_WARN, "oauth", "more than %d consent pages pending; dropped them all", MAX_PENDING);
    }
    tab_add(&pending, &pn->n);
    pthread_rwlock_unlock(&rw);
}

int lg__oauth_pending_get(const char *txn, int64_t now, lg_oauth_pending_t *out)
{
    uint8_t key[32];
    txn_key(txn, key);
    pthread_rwlock_wrlock(&rw);
    struct pending_node *pn = (struct pending_node *)tab_get(&pending, key);
    int rc = pn == NULL ? LG_OAUTH_NOT_FOUND : pn->p.expires_at < now ? LG_OAUTH_EXPIRED : LG_OAUTH_OK;
    if (rc == LG_OAUTH_OK)
        pending_copy(out, &pn->p);
    pthread_rwlock_unlock(&rw);
    return rc;
}

int lg__oauth_pending_fail(const char *txn, int max_attempts)
{
    uint8_t key[32];
    txn_key(txn, key);
    int n = max_attempts;
    pthread_rwlock_wrlock(&rw);
    struct pending_node *pn = (struct pending_node *)tab_get(&pending, key);
    if (pn != NULL) {
        n = ++pn->p.attempts;
        if (n >= max_attempts) {
            tab_unlink(&pending, &pn->n);
            free_pending_node(&pn->n);
        }
    }
    pthread_rwlock_unlock(&rw);
    return n;
}

int lg__oauth_pending_remove(const char *txn)
{
    uint8_t key[32];
    txn_key(txn, key);
    pthread_rwlock_wrlock(&rw);
    struct pending_node *pn = (struct pending_node *)tab_get(&pending, key);
    if (pn != NULL) {
        tab_unlink(&pending, &pn->n);
        free_pending_node(&pn->n);
    }
    pthread_rwlock_unlock(&rw);
    return pn != NULL ? LG_OAUTH_OK : LG_OAUTH_NOT_FOUND;
}

/* ---- codes ---- */

void lg__oauth_code_put(const uint8_t hash[32], const lg_oauth_grant_t *g, int64_t now)
{
    struct code_node *c = lg_malloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    memcpy(c->n.key, hash, 32);
    lg_oauth_grant_copy(&c->g, g);
    pthread_rwlock_wrlock(&rw);
    sweep(now);
    if (codes.n >= MAX_CODES) {
        free_tab(&codes, free_code_node);
        LG_LOG(LG_LOG_WARN, "oauth", "more than %d authorization codes outstanding; dropped them all", MAX_CODES);
    }
    tab_add(&codes, &c->n);
    pthread_rwlock_unlock(&rw);
}

/* mu held */
static void revoke_grant_locked(const char *grant_id)
{
    for (size_t i = 0; i < tokens.nb; ++i)
        for (struct node *e = tokens.b[i]; e != NULL; e = e->next) {
            struct token_node *t = (struct token_node *)e;
            if (strcmp(t->g.grant_id, grant_id) == 0)
                t->state = TOKEN_REVOKED;
        }
    struct op *o = op_new(OP_GRANT_REVOKE);
    o->text = lg_strdup(grant_id);
    enqueue(o);
}

int lg__oauth_code_redeem(const uint8_t hash[32], int64_t now, lg_oauth_grant_t *out)
{
    pthread_rwlock_wrlock(&rw);
    struct code_node *c = (struct code_node *)tab_get(&codes, hash);
    int rc;
    if (c == NULL) {
        rc = LG_OAUTH_NOT_FOUND;
    } else if (c->used) {
        rc = LG_OAUTH_REUSED;
        revoke_grant_locked(c->g.grant_id); /* RFC 6749 §4.1.2: revoke what the first redemption issued */
    } else if (c->g.expires_at < now) {
        rc = LG_OAUTH_EXPIRED;
        c->used = 1;
    } else {
        rc = LG_OAUTH_OK;
        c->used = 1;
        lg_oauth_grant_copy(out, &c->g);
    }
    pthread_rwlock_unlock(&rw);
    return rc;
}

/* ---- tokens ---- */

void lg__oauth_token_put(const uint8_t hash[32], lg_oauth_token_kind_t kind, const lg_oauth_grant_t *g, int64_t now)
{
    struct token_node *t = lg_malloc(sizeof(*t));
    memset(t, 0, sizeof(*t));
    memcpy(t->n.key, hash, 32);
    t->kind = kind;
    t->created_at = now;
    lg_oauth_grant_copy(&t->g, g);
    free(t->g.redirect_uri);
    free(t->g.code_challenge);
    t->g.redirect_uri = t->g.code_challenge = NULL;
    struct op *o = op_new(OP_TOKEN_INSERT);
    memcpy(o->hash, hash, 32);
    o->kind = kind;
    o->created_at = now;
    lg_oauth_grant_copy(&o->g, &t->g);
    pthread_rwlock_wrlock(&rw);
    sweep(now);
    tab_add(&tokens, &t->n);
    client_mark_used(g->client_id);
    enqueue(o);
    pthread_rwlock_unlock(&rw);
}

int lg__oauth_access_check(const uint8_t hash[32], const char *resource, int64_t now, char *key_id, char *client_id,
                           size_t client_id_size)
{
    pthread_rwlock_rdlock(&rw);
    const struct token_node *t = (const struct token_node *)tab_get(&tokens, hash);
    int rc;
    if (t == NULL || t->kind != LG_OAUTH_ACCESS)
        rc = LG_OAUTH_NOT_FOUND;
    else if (t->state != TOKEN_ACTIVE)
        rc = LG_OAUTH_REVOKED;
    else if (t->g.expires_at < now)
        rc = LG_OAUTH_EXPIRED;
    else if (resource == NULL || strcmp(t->g.resource, resource) != 0)
        rc = LG_OAUTH_WRONG_AUDIENCE;
    else {
        rc = LG_OAUTH_OK;
        memcpy(key_id, t->g.key_id, sizeof(t->g.key_id));
        if (client_id != NULL)
            snprintf(client_id, client_id_size, "%s", t->g.client_id);
    }
    pthread_rwlock_unlock(&rw);
    return rc;
}

int lg__oauth_refresh_use(const uint8_t hash[32], const char *client_id, int64_t now, lg_oauth_grant_t *out)
{
    pthread_rwlock_wrlock(&rw);
    struct token_node *t = (struct token_node *)tab_get(&tokens, hash);
    int rc;
    if (t == NULL || t->kind != LG_OAUTH_REFRESH)
        rc = LG_OAUTH_NOT_FOUND;
    else if (client_id == NULL || strcmp(t->g.client_id, client_id) != 0)
        rc = LG_OAUTH_WRONG_CLIENT;
    else if (t->state == TOKEN_USED) {
        rc = LG_OAUTH_REUSED; /* a stolen refresh token races its owner: end the whole family (OAuth 2.1 §4.3.1) */
        revoke_grant_locked(t->g.grant_id);
    } else if (t->state == TOKEN_REVOKED)
        rc = LG_OAUTH_REVOKED;
    else if (t->g.expires_at < now)
        rc = LG_OAUTH_EXPIRED;
    else {
        rc = LG_OAUTH_OK;
        t->state = TOKEN_USED;
        lg_oauth_grant_copy(out, &t->g);
        struct op *o = op_new(OP_TOKEN_STATE);
        memcpy(o->hash, hash, 32);
        o->state = TOKEN_USED;
        enqueue(o);
    }
    pthread_rwlock_unlock(&rw);
    return rc;
}

int lg__oauth_revoke(const uint8_t hash[32], const char *client_id)
{
    pthread_rwlock_wrlock(&rw);
    struct token_node *t = (struct token_node *)tab_get(&tokens, hash);
    int rc;
    if (t == NULL)
        rc = LG_OAUTH_NOT_FOUND;
    else if (client_id != NULL && strcmp(t->g.client_id, client_id) != 0)
        rc = LG_OAUTH_WRONG_CLIENT;
    else {
        rc = LG_OAUTH_OK;
        if (t->kind == LG_OAUTH_REFRESH) {
            revoke_grant_locked(t->g.grant_id); /* RFC 7009 §2.1: a refresh token takes its access tokens along */
        } else {
            t->state = TOKEN_REVOKED;
            struct op *o = op_new(OP_TOKEN_STATE);
            memcpy(o->hash, hash, 32);
            o->state = TOKEN_REVOKED;
            enqueue(o);
        }
    }
    pthread_rwlock_unlock(&rw);
    return rc;
}

void lg__oauth_revoke_grant(const char *grant_id)
{
    pthread_rwlock_wrlock(&rw);
    revoke_grant_locked(grant_id);
    pthread_rwlock_unlock(&rw);
}
