/* SPDX-License-Identifier: MIT */
/*
 * The Anthropic Messages skin (POST /v1/messages): the lg_skin_t adapter over
 * the pure translators of anthropic_ingress.c. Requests become the internal
 * chat request; answers, stream events (message_start ... message_stop, ping
 * keep-alives, never comments) and errors (Anthropic's error shape, 529 for
 * overload) are Anthropic's. The message id shares the generation id's random
 * part, so msg_X maps to gen-X.
 */
#include <stdio.h>
#include <string.h>
#include "core/error.h"
#include "http/anthropic_ingress.h"
#include "http/request.h"
#include "http/skins.h"

static void msg_id(const lg_skin_info_t *info, char *out, size_t cap)
{
    const char *rand = strncmp(info->gen_id, "gen-", 4) == 0 ? info->gen_id + 4 : info->gen_id;
    snprintf(out, cap, "msg_%s", rand);
}

static int parse(const char *body, size_t len, lg_gen_request_t *r, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *in = json_loadb(body, len, 0, &jerr), *translated = NULL;
    if (in == NULL) {
        snprintf(err, errlen, "invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return LG_EINVAL;
    }
    int rc = lg_anthropic_request_to_openai(in, &translated, err, errlen);
    json_decref(in);
    if (rc != 0)
        return rc;
    return lg_gen_request_from_json(r, LG_API_CHAT, translated, err, errlen);
}

static void *stream_open(const lg_skin_info_t *info)
{
    char id[48];
    msg_id(info, id, sizeof(id));
    return lg_anthropic_stream_create(id, info->model, info->prompt_tokens_estimate);
}

static void stream_close(void *st)
{
    lg_anthropic_stream_destroy(st);
}

static int stream_chunk(void *st, const lg_skin_info_t *info, const lg_skin_chunk_t *c, lg_buf_t *out)
{
    (void)info;
    return lg_anthropic_stream_chunk(st, c->obj, out);
}

static int stream_keepalive(void *st, const lg_skin_info_t *info, lg_buf_t *out)
{
    (void)info;
    /* Anthropic streams keep alive with ping events, never comments; message_start goes first */
    return lg_anthropic_stream_begin(st, out) | lg_anthropic_stream_ping(out);
}

static int stream_finish(void *st, const lg_skin_info_t *info, const json_t *usage, lg_buf_t *out)
{
    (void)info;
    return lg_anthropic_stream_finish(st, usage, out);
}

static int stream_error(void *st, const lg_skin_info_t *info, const lg_skin_error_t *e, const json_t *usage, lg_buf_t *out)
{
    (void)info;
    (void)usage; /* Anthropic's error event carries no usage */
    return lg_anthropic_stream_error(st, e->err, e->message, out);
}

static json_t *response(const lg_skin_info_t *info, json_t *resp, const json_t *usage)
{
    char id[48];
    msg_id(info, id, sizeof(id));
    json_t *o = lg_skin_openai_wrap(LG_API_CHAT, info, resp, 0);
    json_decref(resp);
    json_object_set(o, "usage", (json_t *)usage);
    json_t *a = lg_anthropic_response_from_openai(o, id);
    json_decref(o);
    return a;
}

static json_t *error_body(const lg_skin_error_t *e, int *status, json_t *meta)
{
    json_decref(meta);
    *status = lg_anthropic_error_status(e->err, *status);
    return lg_anthropic_error_json(e->err, *status, e->message);
}

const lg_skin_t lg_skin_anthropic_messages = {
    .name = "messages",
    .route = "messages",
    .metrics = LG_ROUTE_MESSAGES,
    .kind = LG_API_CHAT,
    .comments_forwarded = 0,
    .parse = parse,
    .stream_open = stream_open,
    .stream_close = stream_close,
    .stream_chunk = stream_chunk,
    .stream_keepalive = stream_keepalive,
    .stream_finish = stream_finish,
    .stream_error = stream_error,
    .response = response,
    .error_body = error_body,
};
