/* SPDX-License-Identifier: MIT */
/*
 * Source kind "cache": replays a stored response-cache entry — status 200,
 * then its bytes (the upstream's own whole body or event stream, so the reply
 * decoder, the normal-form checks, the relay and the skin treat it exactly
 * like a live answer and the framing is the original's), then done. No
 * pacing: pieces of REPLAY_PIECE bytes from the loop, pausing when the client
 * reads slower. The slot's priv carries the entry in and the replay state
 * afterwards; both are dropped on done or cancel.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/error.h"
#include "pipeline/cache.h"
#include "pipeline/source.h"

#define REPLAY_PIECE (64 * 1024)

typedef struct replay {
    const lg_rcache_entry_t *entry;
    size_t pos;
    int head_sent;
    int paused;
} replay_t;

static void feed(uv_timer_t *t);

static void schedule(lg_source_t *s)
{
    uv_timer_start(&s->timer, feed, 0, 0);
}

static void drop(lg_source_t *s)
{
    replay_t *r = s->priv;
    s->priv = NULL;
    if (r != NULL) {
        lg_rcache_release(lg_rcache_global(), r->entry);
        free(r);
    }
}

static void feed(uv_timer_t *t)
{
    lg_source_t *s = (lg_source_t *)(void *)((char *)t - offsetof(lg_source_t, timer));
    if (s->ops != &lg_source_cache || s->priv == NULL)
        return;
    replay_t *r = s->priv;
    if (r->paused)
        return;
    if (!r->head_sent) {
        r->head_sent = 1;
        s->events->on_head(s->ctx, 200);
        if (s->ops != &lg_source_cache)
            return;
    }
    size_t remaining = r->entry->len - r->pos;
    size_t piece = remaining < REPLAY_PIECE ? remaining : REPLAY_PIECE;
    if (piece != 0) {
        const char *p = r->entry->body + r->pos;
        r->pos += piece;
        int pause = s->events->on_data(s->ctx, p, piece);
        if (s->ops != &lg_source_cache)
            return;
        if (pause) {
            r->paused = 1;
            return;
        }
    }
    if (r->pos < r->entry->len) {
        schedule(s);
        return;
    }
    s->ops = NULL; /* idle before the event, as after a transfer */
    drop(s);
    s->events->on_done(s->ctx, 0, "");
}

static int cache_start(lg_source_t *s, const lg_source_args_t *a, lg_upstream_error_t *e)
{
    (void)a;
    const lg_rcache_entry_t *entry = s->priv;
    replay_t *r = entry != NULL ? calloc(1, sizeof(*r)) : NULL;
    if (r == NULL) {
        if (entry != NULL)
            lg_rcache_release(lg_rcache_global(), entry);
        s->priv = NULL;
        e->err = LG_EINTERNAL;
        e->retryable = 1; /* the live attempt follows */
        snprintf(e->message, sizeof(e->message), "response cache replay could not start");
        return LG_EINTERNAL;
    }
    r->entry = entry;
    s->priv = r;
    schedule(s);
    return 0;
}

static void cache_cancel(lg_source_t *s)
{
    uv_timer_stop(&s->timer);
    drop(s);
}

static void cache_resume(lg_source_t *s)
{
    replay_t *r = s->priv;
    if (r == NULL || !r->paused)
        return;
    r->paused = 0;
    schedule(s); /* never synchronously */
}

static const char *cache_header(const lg_source_t *s, const char *name)
{
    const replay_t *r = s->priv;
    if (r == NULL || strcasecmp(name, "content-type") != 0)
        return NULL;
    return r->entry->sse ? "text/event-stream" : "application/json";
}

const lg_source_ops_t lg_source_cache = {"cache", cache_start, cache_cancel, cache_resume, cache_header};
