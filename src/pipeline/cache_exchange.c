/* SPDX-License-Identifier: MIT */
/*
 * The response cache on one exchange (OpenRouter's contract, reference §10):
 * whether it applies (the model's "cache" setting and X-OpenRouter-Cache,
 * -TTL, -Clear), the key, the lookup, the X-OpenRouter-Cache-* answer headers,
 * the replay source on a hit, the tee of a live 200 answer's upstream bytes
 * and their store at settlement. attempts, reply and settlement call in at one
 * place each (settlement twice); the store itself is cache.c.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "pipeline/exchange.h"

/* an answer larger than this is never teed (the store rejects over an eighth of its cap anyway) */
#define TEE_MAX_BYTES (8u * 1024 * 1024)

static int header(const lg_exchange_t *x, const char *name, const char **val, size_t *len)
{
    const h2o_req_t *req = x->req;
    if (req == NULL)
        return 0;
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return 0;
    *val = req->headers.entries[i].value.base;
    *len = req->headers.entries[i].value.len;
    return 1;
}

/* 1 = "true", 0 = "false", -1 = absent or anything else (ignored) */
static int header_bool(const lg_exchange_t *x, const char *name)
{
    const char *v;
    size_t n;
    if (!header(x, name, &v, &n))
        return -1;
    if (n == 4 && strncasecmp(v, "true", 4) == 0)
        return 1;
    if (n == 5 && strncasecmp(v, "false", 5) == 0)
        return 0;
    return -1;
}

static void header_u64(lg_exchange_t *x, const char *name, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%lld", (long long)v);
    lg_relay_header(x, name, buf);
}

static int compute_key(lg_exchange_t *x, const lg_model_conf_t *m)
{
    const char *scope = "";
    if (m->cache_shared)
        scope = "\x01shared"; /* never a key id */
    else if (x->key != NULL)
        scope = lg_key_entry_record(x->key)->id;
    const char *model = x->r.num_models != 0 ? x->r.models[0] : "";
    if (x->r.raw != NULL)
        return lg_rcache_key(scope, model, x->skin->route, x->r.stream, x->r.raw, x->r.raw_len, x->cache.key);
    if (x->r.root == NULL)
        return -1;
    char *dump = json_dumps(x->r.root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (dump == NULL)
        return -1;
    int rc = lg_rcache_key(scope, model, x->skin->route, x->r.stream, dump, strlen(dump), x->cache.key);
    free(dump);
    return rc;
}

/* The first attempt: does the cache apply, and does it have the answer? */
static void decide(lg_exchange_t *x, int idx)
{
    lg_xcache_t *xc = &x->cache;
    const lg_config_t *conf = x->rt.snap->conf;
    const lg_model_conf_t *m = &conf->models[x->at.refs[idx].model_index];
    int asked = header_bool(x, "x-openrouter-cache");
    /* the model's "enabled": false beats the header; the header's false beats the model's true */
    int on = m->cache_enabled == 0 ? 0 : asked >= 0 ? asked : m->cache_enabled == 1;
    if (!on)
        return;
    const char *v;
    size_t n;
    xc->ttl_s = m->cache_ttl_s != 0 ? m->cache_ttl_s : LG_RCACHE_TTL_DEFAULT;
    if (header(x, "x-openrouter-cache-ttl", &v, &n))
        (void)lg_rcache_parse_ttl(v, n, &xc->ttl_s); /* junk is ignored */
    if (compute_key(x, m) != 0)
        return;
    lg_rcache_t *c = lg_rcache_global();
    if (c == NULL)
        return;
    lg_rcache_set_max_bytes(c, conf->cache_max_bytes);
    const lg_rcache_entry_t *e = NULL;
    if (header_bool(x, "x-openrouter-cache-clear") == 1)
        lg_rcache_remove(c, xc->key); /* drop, call the provider, store anew */
    else
        e = lg_rcache_lookup(c, xc->key, lg_now_ms());
    /* a replay is decoded by the plugin that produced it: it must be this candidate's endpoint */
    if (e != NULL &&
        (strcmp(e->provider, x->at.cands[idx].provider) != 0 || strcmp(e->upstream_model, x->at.cands[idx].upstream_model) != 0)) {
        lg_rcache_release(c, e);
        e = NULL;
    }
    if (e == NULL) {
        xc->state = LG_CACHE_MISS;
        lg_buf_init(&xc->tee, TEE_MAX_BYTES);
        lg_relay_header(x, "x-openrouter-cache-status", "MISS");
        header_u64(x, "x-openrouter-cache-ttl", xc->ttl_s);
        return;
    }
    int64_t now = lg_now_ms();
    xc->state = LG_CACHE_HIT;
    xc->hit = e;
    lg_relay_header(x, "x-openrouter-cache-status", "HIT");
    header_u64(x, "x-openrouter-cache-ttl", (e->expires_ms - now + 999) / 1000);
    header_u64(x, "x-openrouter-cache-age", (now - e->created_ms) / 1000);
    lg_relay_header(x, "x-openrouter-cache-source-id", e->source_id);
}

const lg_source_ops_t *lg_xcache_pick(lg_exchange_t *x, int idx, const lg_source_ops_t *live)
{
    lg_xcache_t *xc = &x->cache;
    if (!xc->decided) {
        xc->decided = 1;
        decide(x, idx);
        if (xc->state == LG_CACHE_HIT) {
            lg_rcache_retain(xc->hit); /* the replay's own reference */
            x->rp.source.priv = (void *)xc->hit;
            return &lg_source_cache;
        }
    } else if (xc->state == LG_CACHE_HIT) {
        /* the replay failed (a corrupt entry): this attempt is live and billed; nothing is stored */
        lg_rcache_release(lg_rcache_global(), xc->hit);
        xc->hit = NULL;
        xc->state = LG_CACHE_OFF;
    }
    if (xc->state == LG_CACHE_MISS) {
        lg_buf_reset(&xc->tee); /* a failed attempt's bytes are not the answer */
        xc->tee_on = 1;
    }
    return live;
}

void lg_xcache_tee(lg_exchange_t *x, const char *data, size_t len)
{
    lg_xcache_t *xc = &x->cache;
    if (!xc->tee_on)
        return;
    if (x->rp.status != 200 || lg_buf_append(&xc->tee, data, len) != 0) {
        xc->tee_on = 0; /* only 200s are stored; too large is not stored */
        lg_buf_reset(&xc->tee);
        return;
    }
    xc->tee_sse = x->rp.mode == LG_REPLY_SSE; /* the reply's mode is gone by settlement (the attempt was reset) */
}

int lg_xcache_hit(const lg_exchange_t *x)
{
    return x->cache.state == LG_CACHE_HIT;
}

void lg_xcache_store(lg_exchange_t *x, int idx)
{
    lg_xcache_t *xc = &x->cache;
    /* before the answer's last bytes are queued: a client that asks again at once already finds the entry */
    if (xc->state == LG_CACHE_MISS && xc->tee_on && idx >= 0 && xc->tee.data != NULL) {
        lg_rcache_entry_t e;
        memset(&e, 0, sizeof(e));
        memcpy(e.key, xc->key, sizeof(e.key));
        e.created_ms = lg_now_ms();
        e.expires_ms = e.created_ms + (int64_t)xc->ttl_s * 1000;
        e.ttl_s = xc->ttl_s;
        e.sse = xc->tee_sse;
        snprintf(e.source_id, sizeof(e.source_id), "%s", x->id);
        snprintf(e.provider, sizeof(e.provider), "%s", x->at.cands[idx].provider);
        snprintf(e.upstream_model, sizeof(e.upstream_model), "%s", x->at.cands[idx].upstream_model);
        e.body = xc->tee.data;
        e.len = xc->tee.len;
        if (strlen(x->at.cands[idx].provider) < sizeof(e.provider) &&
            strlen(x->at.cands[idx].upstream_model) < sizeof(e.upstream_model))
            (void)lg_rcache_store(lg_rcache_global(), &e);
    }
    xc->tee_on = 0;
}

void lg_xcache_settle(lg_exchange_t *x)
{
    lg_xcache_t *xc = &x->cache;
    xc->tee_on = 0;
    if (xc->state == LG_CACHE_MISS)
        lg_buf_dispose(&xc->tee);
    /* a hit keeps its entry for the ledger's source id until the exchange goes; the replay holds its own reference */
}

const char *lg_xcache_source_id(const lg_exchange_t *x)
{
    return x->cache.state == LG_CACHE_HIT && x->cache.hit != NULL ? x->cache.hit->source_id : NULL;
}

void lg_xcache_dispose(lg_exchange_t *x)
{
    if (x->cache.hit != NULL)
        lg_rcache_release(lg_rcache_global(), x->cache.hit);
    x->cache.hit = NULL;
}
