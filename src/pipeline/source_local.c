/* SPDX-License-Identifier: MIT */
/*
 * Source kind "local": an in-process provider (LG_CAP_LOCAL, e.g. the mock
 * plugin) produces its whole virtual upstream reply at once; this feeds it to
 * the pipeline from the loop as the plugin asked (after first_delay_ms, then
 * in pieces of chunk_bytes or one SSE event per chunk_delay_ms), exactly like
 * bytes from the network. Any status, errors included, goes through the same
 * head/data/done events, so classification and fallback are the curl path's.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "pipeline/source.h"

static void feed(uv_timer_t *t);

static void schedule(lg_source_t *s, uint64_t ms)
{
    uv_timer_start(&s->timer, feed, ms, 0);
}

/* One step: the head first, then one piece of the body, then done. Every event may end the attempt (cancel), so the
 * slot is checked after each one. */
static void feed(uv_timer_t *t)
{
    lg_source_t *s = (lg_source_t *)(void *)((char *)t - offsetof(lg_source_t, timer));
    if (s->ops != &lg_source_local || s->u.local.paused)
        return;
    lg_local_resp_t *r = &s->u.local.resp;
    if (!s->u.local.head_sent) {
        s->u.local.head_sent = 1;
        s->events->on_head(s->ctx, r->status);
        if (s->ops != &lg_source_local)
            return;
    }
    size_t remaining = r->body_len - s->u.local.pos;
    size_t piece = remaining;
    int paced = r->chunk_delay_ms != 0 || r->chunk_bytes != 0;
    if (paced && remaining != 0) {
        if (r->chunk_bytes != 0) {
            piece = r->chunk_bytes < remaining ? r->chunk_bytes : remaining;
        } else {
            /* split at SSE event boundaries */
            const char *p = r->body + s->u.local.pos;
            const char *sep = memmem(p, remaining, "\n\n", 2);
            piece = sep != NULL ? (size_t)(sep - p) + 2 : remaining;
        }
    }
    if (piece != 0) {
        const char *p = r->body + s->u.local.pos;
        s->u.local.pos += piece;
        int pause = s->events->on_data(s->ctx, p, piece);
        if (s->ops != &lg_source_local)
            return;
        if (pause) {
            s->u.local.paused = 1;
            return;
        }
    }
    if (s->u.local.pos < r->body_len) {
        schedule(s, r->chunk_delay_ms);
        return;
    }
    /* done: the slot is idle before the event, as after a transfer */
    s->ops = NULL;
    free(r->body);
    r->body = NULL;
    s->events->on_done(s->ctx, 0, "");
}

static int local_start(lg_source_t *s, const lg_source_args_t *a, lg_upstream_error_t *e)
{
    lg_errbuf_t perr = {{0}};
    int rc = a->prov->local_respond(a->pstate, a->call, &s->u.local.resp, &perr);
    if (rc != 0) {
        free(s->u.local.resp.body);
        memset(&s->u.local.resp, 0, sizeof(s->u.local.resp));
        e->err = rc;
        e->retryable = lg_err_retryable(rc);
        snprintf(e->message, sizeof(e->message), "%s", perr.msg[0] != '\0' ? perr.msg : lg_strerror(rc));
        return rc;
    }
    if (s->u.local.resp.body == NULL)
        s->u.local.resp.body_len = 0;
    schedule(s, s->u.local.resp.first_delay_ms);
    return 0;
}

static void local_cancel(lg_source_t *s)
{
    uv_timer_stop(&s->timer);
    free(s->u.local.resp.body);
    memset(&s->u.local, 0, sizeof(s->u.local));
}

static void local_resume(lg_source_t *s)
{
    if (!s->u.local.paused)
        return;
    s->u.local.paused = 0;
    schedule(s, 0); /* never synchronously */
}

const lg_source_ops_t lg_source_local = {"local", local_start, local_cancel, local_resume, NULL};
