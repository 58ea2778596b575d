/* SPDX-License-Identifier: MIT */
/*
 * The source slot: binds a source kind to the exchange's events for one
 * attempt, and picks the kind that serves a plugin.
 */
#include <string.h>
#include "pipeline/source.h"

const lg_source_ops_t *lg_source_for(const lg_provider_t *prov)
{
    return (prov->capabilities & LG_CAP_LOCAL) ? &lg_source_local : &lg_source_curl;
}

void lg_source_init(lg_source_t *s, uv_loop_t *loop, const lg_source_events_t *events, void *ctx)
{
    memset(s, 0, sizeof(*s));
    s->events = events;
    s->ctx = ctx;
    uv_timer_init(loop, &s->timer);
    s->timer.data = ctx; /* the owner's close callback finds its way back; the feed uses container_of */
}

int lg_source_start(lg_source_t *s, const lg_source_ops_t *ops, const lg_source_args_t *a, lg_upstream_error_t *e)
{
    lg_source_cancel(s);
    memset(&s->u, 0, sizeof(s->u));
    s->ops = ops;
    int rc = ops->start(s, a, e);
    if (rc != 0)
        s->ops = NULL;
    return rc;
}

void lg_source_cancel(lg_source_t *s)
{
    if (s->ops == NULL)
        return;
    const lg_source_ops_t *ops = s->ops;
    s->ops = NULL;
    ops->cancel(s);
}

void lg_source_resume(lg_source_t *s)
{
    if (s->ops != NULL)
        s->ops->resume(s);
}

const char *lg_source_header(const lg_source_t *s, const char *name)
{
    return s->ops != NULL && s->ops->header != NULL ? s->ops->header(s, name) : NULL;
}

void lg_source_close(lg_source_t *s, uv_close_cb on_closed)
{
    lg_source_cancel(s);
    uv_close((uv_handle_t *)&s->timer, on_closed);
}
