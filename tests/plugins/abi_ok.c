/* SPDX-License-Identifier: MIT */
/*
 * ABI test plugin that the loader must accept: a complete 1.0 provider table
 * of stubs. Built again with ABI_VARIANT_* defines to produce tables the
 * loader must refuse for one missing callback or capability mismatch each.
 */
#include <string.h>
#include "llmgate/plugin.h"

LG_PLUGIN_DECLARE_HOST;

/* variants leave some stubs out of the table */
#define STUB static __attribute__((unused))

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

STUB int t_create(const json_t *conf, void **state, lg_errbuf_t *err)
{
    (void)conf;
    (void)err;
    *state = lg_host->alloc(16);
    return 0;
}

STUB void t_destroy(void *state)
{
    lg_host->free_mem(state);
}

STUB int t_build_request(void *state, const lg_call_t *call, lg_http_req_t *out, lg_errbuf_t *err)
{
    (void)state, (void)call, (void)out, (void)err;
    return LG_EUNSUPPORTED;
}

STUB int t_parse_response(void *state, const lg_call_t *call, int status, const char *body, size_t len, json_t **out,
                          lg_errbuf_t *err)
{
    (void)state, (void)call, (void)status, (void)body, (void)len, (void)err;
    *out = NULL;
    return LG_EBADRESPONSE;
}

STUB int t_stream_begin(void *state, const lg_call_t *call, void **sstate)
{
    (void)state, (void)call;
    *sstate = NULL;
    return 0;
}

STUB int t_parse_stream_event(void *state, void *sstate, const lg_sse_event_t *ev, lg_stream_out_t *out, lg_errbuf_t *err)
{
    (void)state, (void)sstate, (void)ev, (void)out, (void)err;
    return 0;
}

STUB int t_stream_end(void *state, void *sstate, lg_stream_out_t *out, lg_errbuf_t *err)
{
    (void)state, (void)sstate, (void)out, (void)err;
    return 0;
}

STUB void t_stream_free(void *state, void *sstate)
{
    (void)state, (void)sstate;
}

STUB void t_classify_error(void *state, int status, const char *body, size_t len, lg_upstream_error_t *out)
{
    (void)state, (void)body, (void)len;
    memset(out, 0, sizeof(*out));
    out->err = LG_EUPSTREAM;
    out->status = status;
}

STUB int t_local_respond(void *state, const lg_call_t *call, lg_local_resp_t *out, lg_errbuf_t *err)
{
    (void)state, (void)call, (void)out, (void)err;
    return LG_EUNSUPPORTED;
}

#if defined(ABI_VARIANT_LOCAL_NO_RESPOND)
#define CAPS (LG_CAP_LOCAL | LG_CAP_CHAT)
#elif defined(ABI_VARIANT_STREAM_NO_CB)
#define CAPS (LG_CAP_CHAT | LG_CAP_STREAM)
#elif defined(ABI_VARIANT_WIRE_NO_CB)
#define CAPS (LG_CAP_CHAT | LG_CAP_STREAM | LG_CAP_WIRE_OPENAI)
#else
#define CAPS (LG_CAP_CHAT | LG_CAP_STREAM)
#endif

/* ABI_VARIANT_ABI_1_0: the table a plugin built against ABI 1.0 ships (shorter, minor 0): it must still load.
 * ABI_VARIANT_MINOR1_SMALL: claims minor 1 with a 1.0-sized table: refused. */
#if defined(ABI_VARIANT_ABI_1_0) || defined(ABI_VARIANT_MINOR1_SMALL)
#define TABLE_SIZE LG_PROVIDER_MIN_SIZE_1_0
#else
#define TABLE_SIZE sizeof(lg_provider_t)
#endif
#if defined(ABI_VARIANT_ABI_1_0)
#define TABLE_MINOR 0
#else
#define TABLE_MINOR LG_PLUGIN_ABI_MINOR
#endif

static const lg_provider_t provider __attribute__((unused)) = {
    .struct_size = TABLE_SIZE,
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = TABLE_MINOR,
    .capabilities = CAPS,
    .name = "abi_ok",
    .version = "1.0.0",
    .create = t_create,
    .destroy = t_destroy,
#if defined(ABI_VARIANT_NO_BUILD) || defined(ABI_VARIANT_LOCAL_NO_RESPOND)
    .build_request = NULL,
#else
    .build_request = t_build_request,
#endif
    .parse_response = t_parse_response,
#if defined(ABI_VARIANT_STREAM_NO_CB)
    .stream_begin = t_stream_begin,
    .parse_stream_event = NULL,
#else
    .stream_begin = t_stream_begin,
    .parse_stream_event = t_parse_stream_event,
#endif
    .stream_end = t_stream_end,
    .stream_free = t_stream_free,
#if defined(ABI_VARIANT_NO_CLASSIFY)
    .classify_error = NULL,
#else
    .classify_error = t_classify_error,
#endif
#if defined(ABI_VARIANT_LOCAL_NO_RESPOND)
    .local_respond = NULL,
#else
    .local_respond = t_local_respond,
#endif
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    if (host->abi_major != LG_PLUGIN_ABI_MAJOR || host->struct_size < sizeof(lg_host_api_t)) {
        strcpy(err->msg, "unexpected host table");
        return LG_EUNSUPPORTED;
    }
    LG_PLUGIN_SET_HOST(host);
    /* exercise the host table once during init */
    void *p = host->alloc(8);
    host->free_mem(p);
    host->log(LG_LOG_DEBUG, "abi_ok", "init at %lld ms", (long long)host->now_ms());
#if defined(ABI_VARIANT_NULL_TABLE)
    *out = NULL;
#else
    *out = &provider;
#endif
    return 0;
}
