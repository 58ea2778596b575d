/* SPDX-License-Identifier: MIT */
/*
 * `openai` provider plugin: any OpenAI-compatible upstream (OpenAI, Azure
 * deployments, vLLM, Together, Groq, ...). Passes the client body through
 * losslessly, fixes what reasoning models reject (max_tokens, sampling
 * params), asks for usage in streams, parses bodies and SSE chunks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "llmgate/plugin.h"

LG_PLUGIN_DECLARE_HOST;
#include "../common/openai_wire.h"
#include "../common/plugin_util.h"

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
    struct pu_common c; /* first: the shared OpenAI callbacks read it */
    char *auth_header;
    int bearer; /* auth value is "Bearer <key>" (Authorization) rather than the raw key */
    enum token_field token_field;
    int include_usage;
    int coerce_numeric_content; /* Workers AI: a numeric token arrives as a JSON number in the stream */
    char *reasoning[MAX_REASONING_PREFIXES];
    size_t num_reasoning;
};

static const char *const default_reasoning[] = {"o1", "o3", "o4", "gpt-5"};

static void oa_destroy(void *state)
{
    struct instance *in = state;
    if (in == NULL)
        return;
    pu_common_dispose(&in->c);
    lg_host->free_mem(in->auth_header);
    for (size_t i = 0; i < in->num_reasoning; ++i)
        lg_host->free_mem(in->reasoning[i]);
    lg_host->free_mem(in);
}

static int parse_option(void *instance, const char *key, json_t *v, lg_errbuf_t *err)
{
    struct instance *in = instance;
    if (strcmp(key, "auth_header") == 0) {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            pu_seterr(err, "options.auth_header must be a non-empty string");
            return LG_EINVAL;
        }
        lg_host->free_mem(in->auth_header);
        in->auth_header = pu_strdup(json_string_value(v));
        in->bearer = strcasecmp(in->auth_header, "Authorization") == 0;
    } else if (strcmp(key, "max_tokens_field") == 0) {
        const char *s = json_string_value(v);
        if (pu_streq(s, "auto"))
            in->token_field = TF_AUTO;
        else if (pu_streq(s, "max_completion_tokens"))
            in->token_field = TF_MAX_COMPLETION_TOKENS;
        else if (pu_streq(s, "max_tokens"))
            in->token_field = TF_MAX_TOKENS;
        else {
            pu_seterr(err, "options.max_tokens_field must be \"auto\", \"max_completion_tokens\" or \"max_tokens\"");
            return LG_EINVAL;
        }
    } else if (strcmp(key, "reasoning_models") == 0) {
        if (!json_is_array(v) || json_array_size(v) > MAX_REASONING_PREFIXES) {
            pu_seterr(err, "options.reasoning_models must be an array of at most %d prefixes", MAX_REASONING_PREFIXES);
            return LG_EINVAL;
        }
        for (size_t i = 0; i < in->num_reasoning; ++i)
            lg_host->free_mem(in->reasoning[i]);
        in->num_reasoning = 0;
        for (size_t i = 0; i < json_array_size(v); ++i) {
            json_t *p = json_array_get(v, i);
            if (!json_is_string(p) || json_string_length(p) == 0) {
                pu_seterr(err, "options.reasoning_models[%zu] must be a non-empty string", i);
                return LG_EINVAL;
            }
            in->reasoning[in->num_reasoning++] = pu_strdup(json_string_value(p));
        }
    } else if (strcmp(key, "include_usage") == 0) {
        if (!json_is_boolean(v)) {
            pu_seterr(err, "options.include_usage must be a boolean");
            return LG_EINVAL;
        }
        in->include_usage = json_is_true(v);
    } else if (strcmp(key, "coerce_numeric_content") == 0) {
        if (!json_is_boolean(v)) {
            pu_seterr(err, "options.coerce_numeric_content must be a boolean");
            return LG_EINVAL;
        }
        in->coerce_numeric_content = json_is_true(v);
    } else {
        return PU_UNKNOWN_OPTION;
    }
    return 0;
}

static int oa_create(const json_t *conf, void **state, lg_errbuf_t *err)
{
    *state = NULL;
    struct instance *in = lg_host->alloc(sizeof(*in));
    memset(in, 0, sizeof(*in));
    in->include_usage = 1;
    in->token_field = TF_AUTO;
    in->auth_header = pu_strdup("Authorization");
    in->bearer = 1;
    for (size_t i = 0; i < sizeof(default_reasoning) / sizeof(default_reasoning[0]); ++i)
        in->reasoning[in->num_reasoning++] = pu_strdup(default_reasoning[i]);
    if (pu_common_parse(&in->c, conf, PLUGIN_NAME, NULL, MAX_EXTRA_HEADERS, err) != 0 ||
        pu_parse_options(conf, in->c.name, parse_option, in, err) != 0) {
        oa_destroy(in);
        return LG_EINVAL;
    }
    *state = in;
    return 0;
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
            pu_seterr(err, "embeddings cannot be streamed");
            return LG_EUNSUPPORTED;
        }
        break;
    default:
        pu_seterr(err, "unsupported call kind %d", (int)call->kind);
        return LG_EUNSUPPORTED;
    }
    int rc;
    if (call->struct_size >= offsetof(lg_call_t, wire_body_len) + sizeof(size_t) && call->wire_body != NULL) {
        /* pass-through (wire_passthrough said yes): the host-made body goes out unchanged */
        char *body = lg_host->alloc(call->wire_body_len + 1);
        memcpy(body, call->wire_body, call->wire_body_len);
        body[call->wire_body_len] = '\0';
        out->body = body;
        out->body_len = call->wire_body_len;
        out->method = pu_strdup("POST");
        out->url = pu_printf("%s%s", in->c.base_url, path);
        pu_add_header(out, "Content-Type", "application/json");
        pu_add_header(out, "Accept", call->stream ? "text/event-stream" : "application/json");
        goto auth;
    }
    json_t *model;
    rc = pu_check_call(call, &model, err);
    if (rc != 0)
        return rc;

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
                    lg_host->log(LG_LOG_DEBUG, in->c.name, "dropped %s for reasoning model %s", sampling[i], call->upstream_model);
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

    rc = pu_json_post(out, pu_printf("%s%s", in->c.base_url, path), b, call->stream, err);
    if (rc != 0)
        return rc;
auth:
    if (in->c.api_key != NULL) {
        if (in->bearer) {
            char *bearer = pu_printf("Bearer %s", in->c.api_key);
            pu_add_header(out, in->auth_header, bearer);
            lg_host->free_mem(bearer);
        } else {
            pu_add_header(out, in->auth_header, in->c.api_key);
        }
    }
    pu_add_extra_headers(out, &in->c);
    return 0;
}

/* The host's wire body equals what oa_build_request would make from the tree exactly when no per-model rewrite
 * applies: not a reasoning model (token field and sampling fixes), the automatic token field (the host drops
 * max_tokens when max_completion_tokens is present, as TF_AUTO does), and usage requested in streams. */
static int oa_wire_passthrough(void *state, const lg_call_t *call)
{
    const struct instance *in = state;
    if (in == NULL || call->upstream_model == NULL || (call->kind != LG_API_CHAT && call->kind != LG_API_COMPLETIONS))
        return 0;
    if (in->token_field != TF_AUTO || !in->include_usage || in->coerce_numeric_content)
        return 0; /* coerce_numeric_content: the events must pass through ow_stream_event's rewrite */
    return !is_reasoning_model(in, call->upstream_model);
}

static int oa_stream_begin(void *state, const lg_call_t *call, void **sstate)
{
    int rc = ow_cb_stream_begin(state, call, sstate);
    const struct instance *in = state;
    if (rc == 0 && in != NULL)
        ((struct ow_stream *)*sstate)->coerce_numeric_text = in->coerce_numeric_content;
    return rc;
}

static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .capabilities = LG_CAP_CHAT | LG_CAP_COMPLETIONS | LG_CAP_EMBEDDINGS | LG_CAP_STREAM | LG_CAP_WIRE_OPENAI,
    .name = PLUGIN_NAME,
    .version = PLUGIN_VERSION,
    .create = oa_create,
    .destroy = oa_destroy,
    .build_request = oa_build_request,
    .parse_response = ow_cb_parse_response,
    .stream_begin = oa_stream_begin,
    .parse_stream_event = ow_cb_parse_stream_event,
    .stream_end = ow_cb_stream_end,
    .stream_free = ow_cb_stream_free,
    .classify_error = ow_cb_classify_error,
    .local_respond = NULL,
    .wire_passthrough = oa_wire_passthrough,
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    return pu_plugin_init(host, &provider, out, err);
}
