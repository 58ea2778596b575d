/* SPDX-License-Identifier: MIT */
/*
 * The OpenAI skins: chat completions, legacy completions and embeddings. The
 * internal normal form is OpenAI's, so the skin only sets the members the
 * gateway owns (id, object, created, model, provider, usage) and frames SSE
 * (`data: {...}`, `: PROCESSING` keep-alives, `data: [DONE]`).
 */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "domain/request.h"
#include "http/skins.h"
#include "json/tree.h"
#include "pipeline/passthru.h"

static const char *object_name(lg_api_kind_t kind, int chunk)
{
    switch (kind) {
    case LG_API_CHAT:
        return chunk ? "chat.completion.chunk" : "chat.completion";
    case LG_API_COMPLETIONS:
        return "text_completion";
    default:
        return "list";
    }
}

json_t *lg_skin_openai_wrap(lg_api_kind_t kind, const lg_skin_info_t *info, const json_t *inner, int chunk)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(info->gen_id));
    json_object_set_new(o, "object", json_string(object_name(kind, chunk)));
    json_object_set_new(o, "created", json_integer(info->created));
    json_object_set_new(o, "model", json_string(info->model));
    json_object_set_new(o, "provider", json_string(info->provider));
    if (inner != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)inner, k, v)
        {
            if (strcmp(k, "id") == 0 || strcmp(k, "object") == 0 || strcmp(k, "created") == 0 || strcmp(k, "model") == 0 ||
                strcmp(k, "provider") == 0 || strcmp(k, "usage") == 0)
                continue;
            json_object_set(o, k, v);
        }
    }
    /* OpenRouter's schema: a reply always has system_fingerprint (null when unknown); a chunk has it only as a string */
    json_t *fp = json_object_get(o, "system_fingerprint");
    if (chunk && fp != NULL && !json_is_string(fp))
        json_object_del(o, "system_fingerprint");
    else if (!chunk && fp == NULL && kind != LG_API_EMBEDDINGS)
        json_object_set_new(o, "system_fingerprint", json_null());
    return o;
}

/** `data: <json>\n\n`; steals obj. */
static int event_json(json_t *obj, lg_buf_t *out)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(obj);
    if (s == NULL)
        return 0;
    int rc = lg_buf_append(out, "data: ", 6) | lg_buf_append(out, s, strlen(s)) | lg_buf_append(out, "\n\n", 2);
    free(s);
    return rc;
}

/* `data: <chunk>\n\n` written straight from the plugin's tree: the owned members first, then the chunk's own (no wrap
 * object, no json_dumps: this runs once per relayed chunk on every translating path). */
static int chunk_event(lg_api_kind_t kind, const lg_skin_info_t *info, const json_t *inner, lg_buf_t *out)
{
    static const char *const owned[] = {"id", "object", "created", "model", "provider", "usage", NULL};
    lg_pt_owned_t own = {info->gen_id, object_name(kind, 1), info->created, info->model, info->provider};
    size_t start = out->len;
    if (lg_buf_append(out, "data: ", 6) != 0 || lg_pt_write_head(&own, out) != 0 ||
        (inner != NULL && lg_json_write_members(out, inner, owned) != 0) || lg_buf_append(out, "}\n\n", 3) != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

static int parse_chat(const char *body, size_t len, lg_gen_request_t *r, char *err, size_t errlen)
{
    return lg_gen_request_parse(r, LG_API_CHAT, body, len, err, errlen);
}

static int parse_completions(const char *body, size_t len, lg_gen_request_t *r, char *err, size_t errlen)
{
    return lg_gen_request_parse(r, LG_API_COMPLETIONS, body, len, err, errlen);
}

static int parse_embeddings(const char *body, size_t len, lg_gen_request_t *r, char *err, size_t errlen)
{
    return lg_gen_request_parse(r, LG_API_EMBEDDINGS, body, len, err, errlen);
}

/* The stream functions are shared; the kind only changes `object`, so chat and completions get one each. */
#define KIND_FNS(tag, KIND)                                                                                                        \
    static int tag##_chunk(void *st, const lg_skin_info_t *info, const lg_skin_chunk_t *c, lg_buf_t *out)                          \
    {                                                                                                                              \
        (void)st;                                                                                                                  \
        return chunk_event(KIND, info, c->obj, out);                                                                               \
    }                                                                                                                              \
    static int tag##_finish(void *st, const lg_skin_info_t *info, const json_t *usage, lg_buf_t *out)                              \
    {                                                                                                                              \
        (void)st;                                                                                                                  \
        json_t *chunk = lg_skin_openai_wrap(KIND, info, NULL, 1);                                                                  \
        json_object_set_new(chunk, "choices", json_array());                                                                       \
        json_object_set(chunk, "usage", (json_t *)usage);                                                                          \
        return event_json(chunk, out) | lg_buf_append(out, "data: [DONE]\n\n", 14);                                                \
    }                                                                                                                              \
    static int tag##_error(void *st, const lg_skin_info_t *info, const lg_skin_error_t *e, const json_t *usage, lg_buf_t *out)     \
    {                                                                                                                              \
        (void)st;                                                                                                                  \
        json_t *chunk = lg_skin_openai_wrap(KIND, info, NULL, 1);                                                                  \
        json_object_set_new(chunk, "error",                                                                                        \
                            json_pack("{s:i,s:s,s:{s:s,s:s}}", "code", e->status, "message", e->message, "metadata", "error_type", \
                                      lg_err_type(e->err), "provider_code", e->provider_code));                                    \
        json_object_set_new(chunk, "choices",                                                                                      \
                            KIND == LG_API_COMPLETIONS                                                                             \
                                ? json_pack("[{s:s,s:i,s:s}]", "text", "", "index", 0, "finish_reason", "error")                   \
                                : json_pack("[{s:i,s:{s:s},s:s}]", "index", 0, "delta", "content", "", "finish_reason", "error")); \
        int rc = event_json(chunk, out);                                                                                           \
        if (usage != NULL) {                                                                                                       \
            json_t *uc = lg_skin_openai_wrap(KIND, info, NULL, 1);                                                                 \
            json_object_set_new(uc, "choices", json_array());                                                                      \
            json_object_set(uc, "usage", (json_t *)usage); /* bill what was streamed so far */                                     \
            rc |= event_json(uc, out);                                                                                             \
        }                                                                                                                          \
        return rc | lg_buf_append(out, "data: [DONE]\n\n", 14);                                                                    \
    }                                                                                                                              \
    static json_t *tag##_response(const lg_skin_info_t *info, json_t *resp, const json_t *usage)                                   \
    {                                                                                                                              \
        json_t *o = lg_skin_openai_wrap(KIND, info, resp, 0);                                                                      \
        json_decref(resp);                                                                                                         \
        json_object_set(o, "usage", (json_t *)usage);                                                                              \
        return o;                                                                                                                  \
    }

KIND_FNS(chat, LG_API_CHAT)
KIND_FNS(completions, LG_API_COMPLETIONS)
KIND_FNS(embeddings, LG_API_EMBEDDINGS)

static int keepalive(void *st, const lg_skin_info_t *info, lg_buf_t *out)
{
    (void)st;
    (void)info;
    return lg_buf_append(out, ": PROCESSING\n\n", 14);
}

static int comment(void *st, const char *text, size_t len, lg_buf_t *out)
{
    (void)st;
    return lg_buf_append(out, ":", 1) | (len != 0 ? lg_buf_append(out, " ", 1) : 0) | lg_buf_append(out, text, len) |
           lg_buf_append(out, "\n\n", 2);
}

static json_t *error_body(const lg_skin_error_t *e, int *status, json_t *meta)
{
    return lg_error_json(e->err, *status, e->message, meta);
}

const lg_skin_t lg_skin_openai_chat = {
    .name = "chat",
    .route = "chat/completions",
    .metrics = LG_ROUTE_CHAT,
    .kind = LG_API_CHAT,
    .comments_forwarded = 1,
    .parse = parse_chat,
    .stream_chunk = chat_chunk,
    .stream_keepalive = keepalive,
    .stream_comment = comment,
    .stream_finish = chat_finish,
    .stream_error = chat_error,
    .response = chat_response,
    .error_body = error_body,
    .wire_openai = 1,
};

const lg_skin_t lg_skin_openai_completions = {
    .name = "completions",
    .route = "completions",
    .metrics = LG_ROUTE_COMPLETIONS,
    .kind = LG_API_COMPLETIONS,
    .comments_forwarded = 1,
    .parse = parse_completions,
    .stream_chunk = completions_chunk,
    .stream_keepalive = keepalive,
    .stream_comment = comment,
    .stream_finish = completions_finish,
    .stream_error = completions_error,
    .response = completions_response,
    .error_body = error_body,
    .wire_openai = 1,
};

/* embeddings answer with a whole body; should a client ask for a stream anyway, it is framed like the others */
const lg_skin_t lg_skin_openai_embeddings = {
    .name = "embeddings",
    .route = "embeddings",
    .metrics = LG_ROUTE_EMBEDDINGS,
    .kind = LG_API_EMBEDDINGS,
    .comments_forwarded = 0,
    .parse = parse_embeddings,
    .stream_chunk = embeddings_chunk,
    .stream_keepalive = keepalive,
    .stream_finish = embeddings_finish,
    .stream_error = embeddings_error,
    .response = embeddings_response,
    .error_body = error_body,
};
