/* SPDX-License-Identifier: MIT */
/*
 * The OpenAI Responses skin (POST /v1/responses, stateless as OpenRouter serves it): the lg_skin_t adapter over the
 * pure translators of responses_ingress.c. Requests become the internal chat request (the request members a response
 * object echoes ride along as the request's skin_data); answers are `response` objects, streams the Responses event
 * sequence with sequence_number, errors before generation OpenRouter's error shape (what the openai SDK reads), errors
 * after it `response.failed`. The response id shares the generation id's random part, so resp_X maps to gen-X.
 */
#include <stdio.h>
#include <string.h>
#include "core/error.h"
#include "domain/request.h"
#include "http/responses_ingress.h"
#include "http/skins.h"

static void resp_id(const lg_skin_info_t *info, char *out, size_t cap)
{
    const char *rand = strncmp(info->gen_id, "gen-", 4) == 0 ? info->gen_id + 4 : info->gen_id;
    snprintf(out, cap, "resp_%s", rand);
}

static int parse(const char *body, size_t len, lg_gen_request_t *r, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *in = json_loadb(body, len, 0, &jerr), *translated = NULL, *echo = NULL;
    if (in == NULL) {
        memset(r, 0, sizeof(*r));
        snprintf(err, errlen, "invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return LG_EINVAL;
    }
    int rc = lg_responses_request_to_openai(in, &translated, &echo, err, errlen);
    json_decref(in);
    if (rc != 0) {
        memset(r, 0, sizeof(*r));
        return rc;
    }
    rc = lg_gen_request_from_json(r, LG_API_CHAT, translated, err, errlen);
    if (rc != 0) {
        json_decref(echo);
        return rc;
    }
    r->skin_data = echo;
    return 0;
}

static void *stream_open(const lg_skin_info_t *info)
{
    char id[64];
    resp_id(info, id, sizeof(id));
    return lg_responses_stream_create(id, info->model, info->created, info->skin_data);
}

static void stream_close(void *st)
{
    lg_responses_stream_destroy(st);
}

static int stream_chunk(void *st, const lg_skin_info_t *info, const lg_skin_chunk_t *c, lg_buf_t *out)
{
    (void)info;
    return lg_responses_stream_chunk(st, c->obj, out);
}

static int stream_keepalive(void *st, const lg_skin_info_t *info, lg_buf_t *out)
{
    (void)info;
    /* response.created goes first, so a client sees the response start while the first token is awaited */
    return lg_responses_stream_begin(st, out) | lg_responses_stream_ping(out);
}

static int stream_finish(void *st, const lg_skin_info_t *info, const json_t *usage, lg_buf_t *out)
{
    (void)info;
    return lg_responses_stream_finish(st, usage, out);
}

static int stream_error(void *st, const lg_skin_info_t *info, const lg_skin_error_t *e, const json_t *usage, lg_buf_t *out)
{
    (void)info;
    (void)usage; /* the failed response carries the usage the stream saw */
    return lg_responses_stream_error(st, e->err, e->message, out);
}

static json_t *response(const lg_skin_info_t *info, json_t *resp, const json_t *usage)
{
    char id[64];
    resp_id(info, id, sizeof(id));
    json_t *o = lg_skin_openai_wrap(LG_API_CHAT, info, resp, 0);
    json_decref(resp);
    json_object_set(o, "usage", (json_t *)usage);
    json_t *r = lg_responses_response_from_openai(o, id, info->model, info->created, info->skin_data);
    json_decref(o);
    return r;
}

static json_t *error_body(const lg_skin_error_t *e, int *status, json_t *meta)
{
    return lg_error_json(e->err, *status, e->message, meta);
}

const lg_skin_t lg_skin_openai_responses = {
    .name = "responses",
    .route = "responses",
    .metrics = LG_ROUTE_RESPONSES,
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
