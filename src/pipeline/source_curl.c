/* SPDX-License-Identifier: MIT */
/*
 * Source kind "curl": the attempt's reply comes from an HTTP transfer on the
 * worker's curl multi. The plugin builds the request description; the
 * transfer's deadlines come from the provider's config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "pipeline/source.h"

static int on_head(void *ctx, lg_xfer_t *xf, int status)
{
    lg_source_t *s = ctx;
    (void)xf;
    s->events->on_head(s->ctx, status);
    return 0;
}

static int on_data(void *ctx, lg_xfer_t *xf, const char *data, size_t len)
{
    lg_source_t *s = ctx;
    (void)xf;
    int rc = s->events->on_data(s->ctx, data, len);
    /* the event may have ended the attempt (and cancelled this transfer, which curl allows from its callbacks) */
    return s->ops == &lg_source_curl && s->u.curl.xfer == xf ? rc : 0;
}

static void on_done(void *ctx, lg_xfer_t *xf, int result, const char *msg)
{
    lg_source_t *s = ctx;
    (void)xf;
    s->u.curl.xfer = NULL; /* the client frees it after we return */
    s->ops = NULL;
    s->events->on_done(s->ctx, result, msg);
}

static const lg_xfer_callbacks_t xfer_callbacks = {on_head, on_data, on_done};

static void free_http_req(lg_http_req_t *hr)
{
    free(hr->method);
    free(hr->url);
    free(hr->body);
    for (size_t i = 0; i < hr->num_headers && i < LG_HTTP_MAX_HEADERS; ++i) {
        free(hr->headers[i].name);
        free(hr->headers[i].value);
    }
}

static int curl_start(lg_source_t *s, const lg_source_args_t *a, lg_upstream_error_t *e)
{
    lg_http_req_t hr;
    lg_errbuf_t perr = {{0}};
    memset(&hr, 0, sizeof(hr));
    int rc = a->prov->build_request(a->pstate, a->call, &hr, &perr);
    if (rc == 0 && a->capture_body != NULL && hr.body != NULL)
        (void)lg_buf_append(a->capture_body, hr.body, hr.body_len); /* over its cap: the echo falls back to the call body */
    char xerr[256] = "";
    if (rc == 0) {
        lg_xfer_opts_t opts = {.connect_timeout_ms = a->conf->connect_timeout_ms,
                               .first_byte_timeout_ms = a->conf->first_byte_timeout_ms,
                               .idle_timeout_ms = a->conf->idle_timeout_ms,
                               .total_timeout_ms = a->conf->total_timeout_ms,
                               .max_response_bytes = a->max_response_bytes};
        s->u.curl.xfer = lg_xfer_start(a->up, &hr, &opts, &xfer_callbacks, s, xerr, sizeof(xerr));
    }
    free_http_req(&hr);
    if (rc == 0 && s->u.curl.xfer != NULL)
        return 0;
    e->err = rc != 0 ? rc : LG_EINTERNAL;
    e->retryable = rc == 0 || lg_err_retryable(rc);
    snprintf(e->message, sizeof(e->message), "%s", rc != 0 ? perr.msg : xerr);
    return e->err;
}

static void curl_cancel(lg_source_t *s)
{
    if (s->u.curl.xfer != NULL)
        lg_xfer_cancel(s->u.curl.xfer);
    s->u.curl.xfer = NULL;
}

static void curl_resume(lg_source_t *s)
{
    if (s->u.curl.xfer != NULL)
        lg_xfer_resume(s->u.curl.xfer);
}

static const char *curl_header(const lg_source_t *s, const char *name)
{
    return s->u.curl.xfer != NULL ? lg_xfer_header(s->u.curl.xfer, name) : NULL;
}

const lg_source_ops_t lg_source_curl = {"curl", curl_start, curl_cancel, curl_resume, curl_header};
