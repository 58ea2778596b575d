/* SPDX-License-Identifier: MIT */
/*
 * `openai` provider plugin: any OpenAI-compatible upstream (OpenAI, Azure
 * deployments, vLLM, Together, Groq, ...). Passes the client body through
 * losslessly, fixes what reasoning models reject (max_tokens, sampling
 * params), asks for usage in streams, parses bodies and SSE chunks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "llmgate/plugin.h"

LG_PLUGIN_DECLARE_HOST;
#include "../common/openai_wire.h"

#define PLUGIN_NAME "openai"
#define PLUGIN_VERSION "1.0.0"
#define MAX_REASONING_PREFIXES 32
#define NUM_BASE_HEADERS 3 /* Content-Type, Accept, auth */
#define MAX_EXTRA_HEADERS (LG_HTTP_MAX_HEADERS - NUM_BASE_HEADERS)

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

enum token_field {
    TF_AUTO,                  /* max_completion_tokens for reasoning models, else what the client sent */
    TF_MAX_COMPLETION_TOKENS, /* always max_completion_tokens */
    TF_MAX_TOKENS,            /* always max_tokens (older OpenAI-compatible servers) */
};

struct instance {
    char *name;     /* configured provider name, used to tag logs */
    char *base_url; /* without trailing '/' */
    char *api_key;  /* NULL = no auth header */
    char *auth_header;
    int bearer; /* auth value is "Bearer <key>" (Authorization) rather than the raw key */
    enum token_field token_field;
    int include_usage;
    char *reasoning[MAX_REASONING_PREFIXES];
    size_t num_reasoning;
    lg_header_t extra[MAX_EXTRA_HEADERS];
    size_t num_extra;
};

static const char *const default_reasoning[] = {"o1", "o3", "o4", "gpt-5"};

static void oa_destroy(void *state)
{
    struct instance *in = state;
    if (in == NULL)
        return;
    lg_host->free_mem(in->name);
    lg_host->free_mem(in->base_url);
    lg_host->free_mem(in->api_key);
    lg_host->free_mem(in->auth_header);
    for (size_t i = 0; i < in->num_reasoning; ++i)
        lg_host->free_mem(in->reasoning[i]);
    for (size_t i = 0; i < in->num_extra; ++i) {
        lg_host->free_mem(in->extra[i].name);
        lg_host->free_mem(in->extra[i].value);
    }
    lg_host->free_mem(in);
}

static int parse_options(struct instance *in, json_t *opts, lg_errbuf_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v)
    {
        if (strcmp(key, "auth_header") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                ow_seterr(err, "options.auth_header must be a non-empty string");
                return LG_EINVAL;
            }
            lg_host->free_mem(in->auth_header);
            in->auth_header = ow_strdup(json_string_value(v));
            in->bearer = strcasecmp(in->auth_header, "Authorization") == 0;
        } else if (strcmp(key, "max_tokens_field") == 0) {
            const char *s = json_string_value(v);
            if (ow_streq(s, "auto"))
                in->token_field = TF_AUTO;
            else if (ow_streq(s, "max_completion_tokens"))
                in->token_field = TF_MAX_COMPLETION_TOKENS;
            else if (ow_streq(s, "max_tokens"))
                in->token_field = TF_MAX_TOKENS;
            else {
                ow_seterr(err, "options.max_tokens_field must be \"auto\", \"max_completion_tokens\" or \"max_tokens\"");
                return LG_EINVAL;
            }
        } else if (strcmp(key, "reasoning_models") == 0) {
            if (!json_is_array(v) || json_array_size(v) > MAX_REASONING_PREFIXES) {
                ow_seterr(err, "options.reasoning_models must be an array of at most %d prefixes", MAX_REASONING_PREFIXES);
                return LG_EINVAL;
            }
            for (size_t i = 0; i < in->num_reasoning; ++i)
                lg_host->free_mem(in->reasoning[i]);
            in->num_reasoning = 0;
            for (size_t i = 0; i < json_array_size(v); ++i) {
                json_t *p = json_array_get(v, i);
                if (!json_is_string(p) || json_string_length(p) == 0) {
                    ow_seterr(err, "options.reasoning_models[%zu] must be a non-empty string", i);
                    return LG_EINVAL;
                }
                in->reasoning[in->num_reasoning++] = ow_strdup(json_string_value(p));
            }
        } else if (strcmp(key, "include_usage") == 0) {
            if (!json_is_boolean(v)) {
                ow_seterr(err, "options.include_usage must be a boolean");
                return LG_EINVAL;
            }
            in->include_usage = json_is_true(v);
        } else {
            lg_host->log(LG_LOG_WARN, in->name, "ignoring unknown option \"%s\"", key);
        }
    }
    return 0;
}

static int oa_create(const json_t *conf, void **state, lg_errbuf_t *err)
{
    *state = NULL;
    if (!json_is_object(conf)) {
        ow_seterr(err, "provider config must be an object");
        return LG_EINVAL;
    }
    struct instance *in = lg_host->alloc(sizeof(*in));
    memset(in, 0, sizeof(*in));
    in->include_usage = 1;
    in->token_field = TF_AUTO;
    in->auth_header = ow_strdup("Authorization");
    in->bearer = 1;
    for (size_t i = 0; i < sizeof(default_reasoning) / sizeof(default_reasoning[0]); ++i)
        in->reasoning[in->num_reasoning++] = ow_strdup(default_reasoning[i]);

    const char *name = json_string_value(json_object_get(conf, "name"));
    in->name = ow_strdup(name != NULL && *name != '\0' ? name : PLUGIN_NAME);

    const char *url = json_string_value(json_object_get(conf, "base_url"));
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        ow_seterr(err, "base_url must be an http:// or https:// URL");
        goto fail;
    }
    size_t ulen = strlen(url);
    while (ulen > 8 && url[ulen - 1] == '/')
        --ulen;
    in->base_url = ow_strndup(url, ulen);

    json_t *key = json_object_get(conf, "api_key");
    if (json_is_string(key) && json_string_length(key) > 0)
        in->api_key = ow_strdup(json_string_value(key));
    else if (key != NULL && !json_is_null(key) && !json_is_string(key)) {
        ow_seterr(err, "api_key must be a string");
        goto fail;
    }

    json_t *headers = json_object_get(conf, "headers");
    if (headers != NULL && !json_is_null(headers)) {
        const char *hname;
        json_t *hval;
        if (!json_is_object(headers)) {
            ow_seterr(err, "headers must be an object of strings");
            goto fail;
        }
        if (json_object_size(headers) > MAX_EXTRA_HEADERS) {
            ow_seterr(err, "at most %d extra headers", MAX_EXTRA_HEADERS);
            goto fail;
        }
        json_object_foreach(headers, hname, hval)
        {
            if (!json_is_string(hval) || *hname == '\0') {
                ow_seterr(err, "headers.%s must be a string", hname);
                goto fail;
            }
            in->extra[in->num_extra].name = ow_strdup(hname);
            in->extra[in->num_extra].value = ow_strdup(json_string_value(hval));
            ++in->num_extra;
        }
    }

    json_t *opts = json_object_get(conf, "options");
    if (opts != NULL && !json_is_null(opts)) {
        if (!json_is_object(opts)) {
            ow_seterr(err, "options must be an object");
            goto fail;
        }
        if (parse_options(in, opts, err) != 0)
            goto fail;
    }
    *state = in;
    return 0;

fail:
    oa_destroy(in);
    return LG_EINVAL;
}

/* ---- request ------------------------------------------------------------------------------------------------------ */

static int is_reasoning_model(const struct instance *in, const char *model)
{
    /* "openai/o3-mini" style names at aggregators: match the last path segment */
    const char *base = strrchr(model, '/');
    base = base != NULL ? base + 1 : model;
    for (size_t i = 0; i < in->num_reasoning; ++i)
        if (strncasecmp(base, in->reasoning[i], strlen(in->reasoning[i])) == 0)
            return 1;
    return 0;
}

/* Reasoning models reject anything but the default for these (OpenAI: "Only the default (1) value is supported"). */
static int is_default_sampling(const char *key, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return 1;
    if (strcmp(key, "temperature") == 0 || strcmp(key, "top_p") == 0)
        return json_is_number(v) && json_number_value(v) == 1.0;
    if (strcmp(key, "presence_penalty") == 0 || strcmp(key, "frequency_penalty") == 0)
        return json_is_number(v) && json_number_value(v) == 0.0;
    if (strcmp(key, "logit_bias") == 0)
        return json_is_object(v) && json_object_size(v) == 0;
    return 1;
}

static void fix_token_field(const struct instance *in, json_t *b, int reasoning)
{
    enum token_field tf = in->token_field;
    json_t *mt = json_object_get(b, "max_tokens"), *mct = json_object_get(b, "max_completion_tokens");
    if (tf == TF_AUTO) {
        if (reasoning)
            tf = TF_MAX_COMPLETION_TOKENS;
        else if (mt != NULL && mct != NULL)
            json_object_del(b, "max_tokens"); /* both sent: max_completion_tokens wins */
    }
    if (tf == TF_MAX_COMPLETION_TOKENS && mt != NULL) {
        if (mct == NULL)
            json_object_set(b, "max_completion_tokens", mt);
        json_object_del(b, "max_tokens");
    } else if (tf == TF_MAX_TOKENS && mct != NULL) {
        json_object_set(b, "max_tokens", mct);
        json_object_del(b, "max_completion_tokens");
    }
}

static void add_header(lg_http_req_t *out, const char *name, const char *value)
{
    for (size_t i = 0; i < out->num_headers; ++i) {
        if (strcasecmp(out->headers[i].name, name) == 0) {
            lg_host->free_mem(out->headers[i].value);
            out->headers[i].value = ow_strdup(value);
            return;
        }
    }
    if (out->num_headers < LG_HTTP_MAX_HEADERS) {
        out->headers[out->num_headers].name = ow_strdup(name);
        out->headers[out->num_headers].value = ow_strdup(value);
        ++out->num_headers;
    }
}

static int oa_build_request(void *state, const lg_call_t *call, lg_http_req_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    const char *path;
    switch (call->kind) {
    case LG_API_CHAT:
        path = "/chat/completions";
        break;
    case LG_API_COMPLETIONS:
        path = "/completions";
        break;
    case LG_API_EMBEDDINGS:
        path = "/embeddings";
        if (call->stream) {
            ow_seterr(err, "embeddings cannot be streamed");
            return LG_EUNSUPPORTED;
        }
        break;
    default:
        ow_seterr(err, "unsupported call kind %d", (int)call->kind);
        return LG_EUNSUPPORTED;
    }
    if (!json_is_object(call->body)) {
        ow_seterr(err, "request body must be a JSON object");
        return LG_EINVAL;
    }
    if (call->upstream_model == NULL || *call->upstream_model == '\0') {
        ow_seterr(err, "no upstream model");
        return LG_EINVAL;
    }
    json_t *model = json_string(call->upstream_model);
    if (model == NULL) {
        ow_seterr(err, "upstream model name is not valid UTF-8");
        return LG_EINVAL;
    }

    /* A new top-level object sharing the client's values (jansson refcounts): call->body itself is never modified. */
    json_t *b = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)call->body, key, v)
    {
        json_object_set(b, key, v);
    }
    json_object_set_new(b, "model", model);

    if (call->kind != LG_API_EMBEDDINGS) {
        int reasoning = is_reasoning_model(in, call->upstream_model);
        if (call->kind == LG_API_CHAT)
            fix_token_field(in, b, reasoning);
        if (reasoning) {
            static const char *const sampling[] = {"temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias"};
            for (size_t i = 0; i < sizeof(sampling) / sizeof(sampling[0]); ++i) {
                json_t *sv = json_object_get(b, sampling[i]);
                if (sv != NULL && !is_default_sampling(sampling[i], sv)) {
                    lg_host->log(LG_LOG_DEBUG, in->name, "dropped %s for reasoning model %s", sampling[i], call->upstream_model);
                    json_object_del(b, sampling[i]);
                }
            }
        }
        if (call->stream) {
            json_object_set_new(b, "stream", json_true());
            if (in->include_usage) {
                json_t *so = json_object_get(b, "stream_options"), *nso = json_object();
                if (json_is_object(so))
                    json_object_update(nso, so);
                json_object_set_new(nso, "include_usage", json_true());
                json_object_set_new(b, "stream_options", nso);
            }
        } else {
            /* OpenAI rejects stream_options without stream:true */
            json_object_del(b, "stream");
            json_object_del(b, "stream_options");
        }
    }

    char *dumped = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (dumped == NULL) {
        ow_seterr(err, "cannot serialise the upstream body");
        return LG_EINTERNAL;
    }
    out->body_len = strlen(dumped);
    out->body = ow_strndup(dumped, out->body_len);
    free(dumped);
    out->method = ow_strdup("POST");
    out->url = ow_printf("%s%s", in->base_url, path);

    add_header(out, "Content-Type", "application/json");
    add_header(out, "Accept", call->stream ? "text/event-stream" : "application/json");
    if (in->api_key != NULL) {
        if (in->bearer) {
            char *bearer = ow_printf("Bearer %s", in->api_key);
            add_header(out, in->auth_header, bearer);
            lg_host->free_mem(bearer);
        } else {
            add_header(out, in->auth_header, in->api_key);
        }
    }
    for (size_t i = 0; i < in->num_extra; ++i)
        add_header(out, in->extra[i].name, in->extra[i].value);
    return 0;
}

/* ---- responses ---------------------------------------------------------------------------------------------------- */

static int oa_parse_response(void *state, const lg_call_t *call, int status, const char *body, size_t len, json_t **out,
                             lg_errbuf_t *err)
{
    struct instance *in = state;
    return ow_parse_response(call->kind, status, body, len, in->api_key, out, err);
}

static int oa_stream_begin(void *state, const lg_call_t *call, void **sstate)
{
    (void)state;
    (void)call;
    return ow_stream_begin(sstate);
}

static int oa_parse_stream_event(void *state, void *sstate, const lg_sse_event_t *ev, lg_stream_out_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    (void)err;
    return ow_stream_event(in->name, in->api_key, sstate, ev, out);
}

static int oa_stream_end(void *state, void *sstate, lg_stream_out_t *out, lg_errbuf_t *err)
{
    (void)state;
    (void)out;
    return ow_stream_end(sstate, err);
}

static void oa_stream_free(void *state, void *sstate)
{
    (void)state;
    ow_stream_free(sstate);
}

static void oa_classify_error(void *state, int status, const char *body, size_t len, lg_upstream_error_t *out)
{
    struct instance *in = state;
    ow_classify_body(status, body, len, in != NULL ? in->api_key : NULL, out);
}

static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .capabilities = LG_CAP_CHAT | LG_CAP_COMPLETIONS | LG_CAP_EMBEDDINGS | LG_CAP_STREAM,
    .name = PLUGIN_NAME,
    .version = PLUGIN_VERSION,
    .create = oa_create,
    .destroy = oa_destroy,
    .build_request = oa_build_request,
    .parse_response = oa_parse_response,
    .stream_begin = oa_stream_begin,
    .parse_stream_event = oa_parse_stream_event,
    .stream_end = oa_stream_end,
    .stream_free = oa_stream_free,
    .classify_error = oa_classify_error,
    .local_respond = NULL,
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    if (host == NULL || host->abi_major != LG_PLUGIN_ABI_MAJOR ||
        host->struct_size < offsetof(lg_host_api_t, random_u64) + sizeof(host->random_u64)) {
        ow_seterr(err, "host ABI %u is not %d.x", host != NULL ? (unsigned)host->abi_major : 0u, LG_PLUGIN_ABI_MAJOR);
        return LG_EUNSUPPORTED;
    }
    LG_PLUGIN_SET_HOST(host);
    *out = &provider;
    return 0;
}
