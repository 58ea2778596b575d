/* SPDX-License-Identifier: MIT */
/*
 * Sticky sessions (OpenRouter's session_id): requests of one session go to the endpoint that served the session last,
 * so the provider's prompt cache keeps hitting, for as long as that endpoint stays healthy and passes the request's
 * filters. The session id is the body's `session_id`, else the `x-session-id` header, else Claude Code's
 * `x-claude-code-session-id` (at most 256 bytes; longer header values are ignored). Bindings live in the router's
 * shared table (router/sessions.h) under the calling key, the requested model and the session id, so one key cannot
 * steer another's sessions; the value names the endpoint by provider, model and upstream model, which survives reloads.
 *
 * Three steps: annotate (before the policy: the policy sees req.session_id and req.session_endpoint), order (after
 * the policy: the bound candidate goes first if the policy kept it in its plan — a policy overrides stickiness by
 * leaving it out), settle (an OK answer binds the session to the candidate that served it and refreshes the TTL; so a
 * failover or an unhealthy bound endpoint moves the session to the endpoint that answered).
 */
#include <string.h>
#include "auth/gate.h"
#include "core/util.h"
#include "pipeline/exchange.h"
#include "router/sessions.h"

#define SEP '\x1f'

static const char *const session_headers[] = {"x-session-id", "x-claude-code-session-id"};

static void effective_id(lg_exchange_t *x)
{
    lg_sticky_t *s = &x->sticky;
    s->session_id[0] = '\0';
    if (x->r.session_id != NULL) {
        size_t n = strlen(x->r.session_id); /* the body's is validated to at most 256 characters */
        if (n < sizeof(s->session_id)) {
            memcpy(s->session_id, x->r.session_id, n + 1);
            return;
        }
    }
    for (size_t i = 0; x->req != NULL && i < sizeof(session_headers) / sizeof(session_headers[0]); ++i) {
        ssize_t hi = h2o_find_header_by_str(&x->req->headers, session_headers[i], strlen(session_headers[i]), -1);
        if (hi < 0)
            continue;
        const h2o_iovec_t v = x->req->headers.entries[hi].value;
        if (v.len == 0 || v.len >= sizeof(s->session_id))
            continue;
        memcpy(s->session_id, v.base, v.len);
        s->session_id[v.len] = '\0';
        return;
    }
}

/* key_id SEP model SEP session_id; 0 when it does not fit */
static size_t session_key(const lg_exchange_t *x, char *out, size_t cap)
{
    const char *key_id = x->key != NULL ? lg_key_entry_record(x->key)->id : "";
    size_t kl = strlen(key_id), ml = x->r.model_lens[0], sl = strlen(x->sticky.session_id);
    if (kl + ml + sl + 2 > cap)
        return 0;
    char *p = out;
    memcpy(p, key_id, kl);
    p += kl;
    *p++ = SEP;
    memcpy(p, x->r.models[0], ml);
    p += ml;
    *p++ = SEP;
    memcpy(p, x->sticky.session_id, sl);
    p += sl;
    return (size_t)(p - out);
}

/* provider SEP model SEP upstream_model; 0 when it does not fit */
static size_t endpoint_value(const lg_candidate_t *c, char *out, size_t cap)
{
    size_t pl = strlen(c->provider), ml = strlen(c->model), ul = strlen(c->upstream_model);
    if (pl + ml + ul + 2 > cap)
        return 0;
    char *p = out;
    memcpy(p, c->provider, pl);
    p += pl;
    *p++ = SEP;
    memcpy(p, c->model, ml);
    p += ml;
    *p++ = SEP;
    memcpy(p, c->upstream_model, ul);
    p += ul;
    return (size_t)(p - out);
}

static int stickiness_on(const lg_exchange_t *x)
{
    return x->sticky.session_id[0] != '\0' && x->rt.snap->conf->session_ttl_s != 0 && x->r.num_models != 0;
}

void lg_sticky_annotate(lg_exchange_t *x)
{
    lg_sticky_t *s = &x->sticky;
    s->bound = -1;
    effective_id(x);
    /* the policy sees the session whichever way it came; the string lives in the exchange as long as the policy view */
    x->at.preq.session_id = s->session_id[0] != '\0' ? s->session_id : NULL;
    x->at.preq.session_endpoint = 0;
    if (!stickiness_on(x))
        return;
    char key[LG_SESSION_MAX_KEY], val[LG_SESSION_MAX_VALUE + 1], mine[LG_SESSION_MAX_VALUE + 1];
    size_t kl = session_key(x, key, sizeof(key));
    long vl = kl != 0 ? lg_session_get(lg_session_table_shared(), key, kl, lg_now_ms(), val, sizeof(val)) : -1;
    if (vl <= 0)
        return;
    for (size_t i = 0; i < x->at.num_cands; ++i) {
        const lg_candidate_t *c = &x->at.cands[i];
        size_t ml = endpoint_value(c, mine, sizeof(mine));
        if (ml == (size_t)vl && memcmp(mine, val, ml) == 0) {
            /* an endpoint in its cooldown releases the session: the next answer rebinds it */
            if (c->healthy) {
                s->bound = (int)i;
                x->at.preq.session_endpoint = c->id;
            }
            return;
        }
    }
}

void lg_sticky_order(lg_exchange_t *x)
{
    lg_attempts_t *a = &x->at;
    if (x->sticky.bound < 0)
        return;
    uint32_t id = (uint32_t)x->sticky.bound + 1;
    for (size_t i = 0; i < a->plan_len; ++i) {
        if (a->plan[i] != id)
            continue;
        memmove(a->plan + 1, a->plan, i * sizeof(a->plan[0]));
        a->plan[0] = id;
        return;
    }
}

void lg_sticky_settle(lg_exchange_t *x)
{
    if (x->st.outcome != LG_OUTCOME_OK || x->at.served < 0 || x->at.plan_len == 0 || !stickiness_on(x))
        return;
    const lg_config_t *conf = x->rt.snap->conf;
    char key[LG_SESSION_MAX_KEY], val[LG_SESSION_MAX_VALUE];
    size_t kl = session_key(x, key, sizeof(key));
    size_t vl = endpoint_value(&x->at.cands[x->at.served], val, sizeof(val));
    if (kl == 0 || vl == 0)
        return;
    lg_session_limits_t lim = {.max_entries = conf->session_max_entries, .max_bytes = conf->session_max_bytes};
    lg_session_put(lg_session_table_shared(), key, kl, val, vl, lg_now_ms(), (int64_t)conf->session_ttl_s * 1000, &lim);
}
