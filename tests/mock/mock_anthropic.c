// SPDX-License-Identifier: MIT
/*
 * mock_upstream: the Anthropic Messages API (`POST /v1/messages`), byte for byte in Anthropic's wire format
 * (docs.anthropic.com: Messages, Streaming Messages, Errors). The body's "model" carries the same directives as the
 * OpenAI endpoints (echo, lorem, words-N, tools, fail-<status>, hang, delay-, slow-, reset, reset-mid, inband-error,
 * inband-error-first, no-done, comments, crlf, split, cache); see README.md "Anthropic endpoint".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock.h"

#define ANTH_CACHE_WRITE_TOKENS 1000 /* "cache": cache_creation_input_tokens */
#define ANTH_CACHE_READ_TOKENS 2000  /* "cache": cache_read_input_tokens */

/* "tools": a text block, then two tool_use blocks with the arguments of TOOL_CALLS[] */
static const char TOOLS_TEXT[] = "Let me check the weather and the time.";
static const char *const TOOL_IDS[2] = {"toolu_mock_1", "toolu_mock_2"};

struct anth {
    const struct plan *plan;
    h2o_iovec_t model;
    unsigned long id;
    size_t input_tokens, output_tokens;
    const char *stop_reason;
};

static const char *error_type_of(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* {"type":"error","error":{"type":"...","message":"..."}} */
static void anth_error_json(struct sb *b, const char *type, const char *message)
{
    sb_fmt(b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"", type);
    sb_json_str(b, message, strlen(message));
    sb_lit(b, "\"}}");
}

static void anth_error(struct resp *r, h2o_mem_pool_t *pool, int status, const char *message)
{
    resp_init(r, pool, status, "application/json", 256);
    ev_begin(r);
    anth_error_json(&r->buf, error_type_of(status), message);
    ev_end(r, 0);
    r->content_length = r->buf.len;
}

/* ---- SSE: "event: <type>\ndata: {...}\n\n" (CRLF line endings with "crlf") ------------------------------------------- */

static void event_begin(struct resp *r, const char *type)
{
    ev_begin(r);
    sb_fmt(&r->buf, "event: %s%sdata: ", type, r->crlf ? "\r\n" : "\n");
}

static void usage_json(struct sb *b, const struct anth *a, size_t output_tokens)
{
    int c = a->plan->cache;
    sb_fmt(b,
           "\"usage\":{\"input_tokens\":%zu,\"cache_creation_input_tokens\":%d,\"cache_read_input_tokens\":%d,"
           "\"output_tokens\":%zu}",
           a->input_tokens, c ? ANTH_CACHE_WRITE_TOKENS : 0, c ? ANTH_CACHE_READ_TOKENS : 0, output_tokens);
}

static void ev_message_start(struct resp *r, const struct anth *a)
{
    event_begin(r, "message_start");
    sb_fmt(&r->buf,
           "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock_%lu\",\"type\":\"message\",\"role\":\"assistant\","
           "\"model\":\"",
           a->id);
    sb_json_str(&r->buf, a->model.base, a->model.len);
    sb_lit(&r->buf, "\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,");
    usage_json(&r->buf, a, 1); /* Anthropic reports a placeholder output count here; message_delta has the real one */
    sb_lit(&r->buf, "}}");
    sse_end(r, 0);
}

static void ev_ping(struct resp *r, int wait)
{
    event_begin(r, "ping");
    sb_lit(&r->buf, "{\"type\": \"ping\"}"); /* sic: Anthropic's ping payload has a space */
    sse_end(r, wait);
}

static void ev_block_start_text(struct resp *r, size_t index, int wait)
{
    event_begin(r, "content_block_start");
    sb_fmt(&r->buf, "{\"type\":\"content_block_start\",\"index\":%zu,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}", index);
    sse_end(r, wait);
}

static void ev_block_start_tool(struct resp *r, size_t index, size_t t, int wait)
{
    event_begin(r, "content_block_start");
    sb_fmt(&r->buf,
           "{\"type\":\"content_block_start\",\"index\":%zu,\"content_block\":{\"type\":\"tool_use\",\"id\":\"%s\",\"name\":\"%s\","
           "\"input\":{}}}",
           index, TOOL_IDS[t], TOOL_CALLS[t].name);
    sse_end(r, wait);
}

static void ev_text_delta(struct resp *r, size_t index, const char *s, size_t n, int wait)
{
    event_begin(r, "content_block_delta");
    sb_fmt(&r->buf, "{\"type\":\"content_block_delta\",\"index\":%zu,\"delta\":{\"type\":\"text_delta\",\"text\":\"", index);
    sb_json_str(&r->buf, s, n);
    sb_lit(&r->buf, "\"}}");
    sse_end(r, wait);
}

static void ev_json_delta(struct resp *r, size_t index, const char *s, size_t n, int wait)
{
    event_begin(r, "content_block_delta");
    sb_fmt(&r->buf, "{\"type\":\"content_block_delta\",\"index\":%zu,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"",
           index);
    sb_json_str(&r->buf, s, n);
    sb_lit(&r->buf, "\"}}");
    sse_end(r, wait);
}

static void ev_block_stop(struct resp *r, size_t index, int wait)
{
    event_begin(r, "content_block_stop");
    sb_fmt(&r->buf, "{\"type\":\"content_block_stop\",\"index\":%zu}", index);
    sse_end(r, wait);
}

static void ev_error(struct resp *r, int wait)
{
    event_begin(r, "error");
    anth_error_json(&r->buf, "overloaded_error", "Overloaded");
    sse_end(r, wait);
}

/*
 * message_start, content_block_start(text 0), ping, text deltas (one word each), content_block_stop, [tools: per call
 * content_block_start(tool_use), input_json_delta "" then 10-byte fragments, content_block_stop], message_delta
 * (stop_reason + cumulative usage), message_stop.
 */
static void build_stream(struct resp *r, const struct anth *a, h2o_iovec_t text)
{
    const struct plan *p = a->plan;
    size_t content = 0; /* content deltas so far (text or tool arguments) */
    int tools = p->content == CONTENT_TOOLS;

    r->stream = 1;
    r->crlf = p->crlf;
#define SEP()                                                                                                                      \
    do {                                                                                                                           \
        if (p->comments && r->evs.size != 0)                                                                                       \
            sse_comment(r);                                                                                                        \
    } while (0)
#define CONTENT_DONE()                                                                                                             \
    do {                                                                                                                           \
        if (++content == 2 && p->reset_mid)                                                                                        \
            goto Abort;                                                                                                            \
        if (content == 1 && p->inband_error)                                                                                       \
            goto InbandError;                                                                                                      \
    } while (0)

    ev_message_start(r, a);
    if (p->inband_error_first)
        goto InbandError;
    SEP();
    ev_block_start_text(r, 0, 1);
    SEP();
    ev_ping(r, 1);
    for (size_t i = 0, j; i < text.len; i = j) {
        j = next_chunk(text.base, text.len, i);
        SEP();
        ev_text_delta(r, 0, text.base + i, j - i, 1);
        CONTENT_DONE();
    }
    SEP();
    ev_block_stop(r, 0, 1);
    if (tools) {
        for (size_t t = 0; t < 2; t++) {
            SEP();
            ev_block_start_tool(r, t + 1, t, 1);
            SEP();
            ev_json_delta(r, t + 1, "", 0, 1); /* Anthropic opens every tool_use block with an empty fragment */
            const char *args = TOOL_CALLS[t].args;
            size_t alen = strlen(args);
            for (size_t off = 0; off < alen; off += TOOL_ARG_FRAGMENT) {
                size_t n = alen - off < TOOL_ARG_FRAGMENT ? alen - off : TOOL_ARG_FRAGMENT;
                SEP();
                ev_json_delta(r, t + 1, args + off, n, 1);
                CONTENT_DONE();
            }
            SEP();
            ev_block_stop(r, t + 1, 1);
        }
    }
    if (p->reset_mid)
        goto Abort;
    if (p->inband_error)
        goto InbandError;
    SEP();
    event_begin(r, "message_delta");
    sb_fmt(&r->buf, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\",\"stop_sequence\":null},", a->stop_reason);
    usage_json(&r->buf, a, a->output_tokens);
    sb_lit(&r->buf, "}");
    sse_end(r, 1);
    if (p->no_done)
        return;
    SEP();
    event_begin(r, "message_stop");
    sb_lit(&r->buf, "{\"type\":\"message_stop\"}");
    sse_end(r, 1);
    return;
#undef CONTENT_DONE
#undef SEP
Abort:
    r->abort = 1;
    return;
InbandError:
    if (p->comments)
        sse_comment(r);
    ev_error(r, 1);
}

static void build_message(struct resp *r, const struct anth *a, h2o_iovec_t text)
{
    struct sb *b = &r->buf;
    ev_begin(r);
    sb_fmt(b, "{\"id\":\"msg_mock_%lu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"", a->id);
    sb_json_str(b, a->model.base, a->model.len);
    sb_lit(b, "\",\"content\":[{\"type\":\"text\",\"text\":\"");
    sb_json_str(b, text.base, text.len);
    sb_lit(b, "\"}");
    if (a->plan->content == CONTENT_TOOLS) {
        for (size_t t = 0; t < 2; t++) {
            sb_fmt(b, ",{\"type\":\"tool_use\",\"id\":\"%s\",\"name\":\"%s\",\"input\":%s}", TOOL_IDS[t], TOOL_CALLS[t].name,
                   TOOL_CALLS[t].args);
        }
    }
    sb_fmt(b, "],\"stop_reason\":\"%s\",\"stop_sequence\":null,", a->stop_reason);
    usage_json(b, a, a->output_tokens);
    sb_lit(b, "}");
    r->content_length = b->len - r->ev_off;
    if (a->plan->reset_mid) { /* declare the full length, send the first half, then drop the connection */
        h2o_vector_reserve(b->pool, &r->evs, 1);
        r->evs.entries[0] = (struct ev){r->ev_off, r->content_length / 2, 0};
        r->evs.size = 1;
        r->abort = 1;
    } else {
        ev_end(r, 0);
    }
}

/* words of the text in a content value: a string, text blocks, and tool_result blocks' content (string or text blocks) */
static size_t content_words(h2o_mem_pool_t *pool, json_t *content)
{
    h2o_iovec_t txt = content_text(pool, content);
    size_t n = count_words(txt.base, txt.len);
    if (json_is_array(content)) {
        size_t i;
        json_t *blk;
        json_array_foreach(content, i, blk)
        {
            json_t *type = json_object_get(blk, "type");
            if (json_is_string(type) && strcmp(json_string_value(type), "tool_result") == 0) {
                txt = content_text(pool, json_object_get(blk, "content"));
                n += count_words(txt.base, txt.len);
            }
        }
    }
    return n;
}

/* the first `max` words of text (trailing whitespace dropped) */
static h2o_iovec_t first_words(h2o_iovec_t text, size_t max)
{
    size_t i = 0;
    for (size_t w = 0; w < max && i < text.len; w++)
        i = next_chunk(text.base, text.len, i);
    while (i > 0 && is_space(text.base[i - 1]))
        i--;
    return h2o_iovec_init(text.base, i);
}

/* a request-validation error in Anthropic's shape; returns 1 when the request is invalid */
static int validate(struct resp *r, h2o_req_t *req, json_t *body)
{
    char msg[200];
    json_t *mt = json_object_get(body, "max_tokens");
    if (mt == NULL) {
        anth_error(r, &req->pool, 400, "max_tokens: Field required");
        return 1;
    }
    if (!json_is_integer(mt) || json_integer_value(mt) < 1) {
        anth_error(r, &req->pool, 400, "max_tokens: Input should be a valid integer greater than or equal to 1");
        return 1;
    }
    json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs)) {
        anth_error(r, &req->pool, 400, "messages: Field required");
        return 1;
    }
    if (json_array_size(msgs) == 0) {
        anth_error(r, &req->pool, 400, "messages: at least one message is required");
        return 1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
            snprintf(msg, sizeof(msg), "messages.%zu.role: Input should be 'user' or 'assistant'", i);
            anth_error(r, &req->pool, 400, msg);
            return 1;
        }
        json_t *c = json_object_get(m, "content");
        if (!json_is_string(c) && !json_is_array(c)) {
            snprintf(msg, sizeof(msg), "messages.%zu.content: Input should be a valid string or list", i);
            anth_error(r, &req->pool, 400, msg);
            return 1;
        }
    }
    json_t *sys = json_object_get(body, "system");
    if (sys != NULL && !json_is_string(sys) && !json_is_array(sys)) {
        anth_error(r, &req->pool, 400, "system: Input should be a valid string or list of text blocks");
        return 1;
    }
    return 0;
}

void mock_anthropic_handle(h2o_req_t *req, struct reqtrack *t)
{
    struct resp r;
    json_error_t jerr;
    json_t *body = req->entity.base != NULL ? json_loadb(req->entity.base, req->entity.len, 0, &jerr) : NULL;

    if (body == NULL || !json_is_object(body)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "mock: malformed JSON body: %s",
                 body == NULL ? (req->entity.base ? jerr.text : "empty body") : "not a JSON object");
        json_decref(body);
        anth_error(&r, &req->pool, 400, msg);
        respond(req, t, &r, NULL);
        return;
    }
    json_t *jmodel = json_object_get(body, "model");
    h2o_iovec_t model = json_is_string(jmodel) ? h2o_strdup(&req->pool, json_string_value(jmodel), json_string_length(jmodel))
                                               : h2o_iovec_init("", 0);
    record_request(req, model.base, model.len);
    if (!quiet)
        fprintf(stderr, "mock: POST /v1/messages (anthropic) model=%s\n", model.base);

    struct plan *plan = h2o_mem_alloc_pool(&req->pool, sizeof(*plan));
    parse_plan(model.base, model.len, plan);
    if (plan->reset) {
        json_decref(body);
        drop_request(req, t);
        return;
    }
    if (plan->hang) {
        json_decref(body);
        start_hang(req, t);
        return;
    }

    size_t hlen;
    int stream = json_is_true(json_object_get(body, "stream"));
    if (header_value(req, "x-api-key", &hlen) == NULL || hlen == 0) {
        anth_error(&r, &req->pool, 401, "x-api-key header is required");
    } else if (header_value(req, "anthropic-version", &hlen) == NULL || hlen == 0) {
        anth_error(&r, &req->pool, 400, "anthropic-version: header is required");
    } else if (validate(&r, req, body)) {
        /* r holds the 400 */
    } else if (plan->fail_status != 0) {
        char msg[64];
        if (plan->fail_status == 529)
            snprintf(msg, sizeof(msg), "Overloaded");
        else
            snprintf(msg, sizeof(msg), "mock failure %d", plan->fail_status);
        anth_error(&r, &req->pool, plan->fail_status, msg);
        if (plan->fail_status == 429)
            r.retry_after = 1;
    } else if (plan->html502) {
        resp_body(&r, &req->pool, 502, "text/html", HTML_502, HTML_502_LEN);
    } else if (plan->garbage) {
        resp_body(&r, &req->pool, 200, "application/json", H2O_STRLIT("not json {{{"));
    } else if (plan->garbage_sse) {
        resp_init(&r, &req->pool, 200, "text/event-stream", 64);
        r.stream = 1;
        r.crlf = plan->crlf;
        sse_data_begin(&r);
        sb_lit(&r.buf, "nonsense{");
        sse_end(&r, 0);
    } else {
        struct anth a = {.plan = plan, .model = model, .id = atomic_fetch_add(&id_seq, 1) + 1};
        h2o_iovec_t echo = h2o_iovec_init("", 0), txt;
        json_t *sys = json_object_get(body, "system"), *msgs = json_object_get(body, "messages"), *m;
        txt = content_text(&req->pool, sys);
        a.input_tokens = count_words(txt.base, txt.len);
        size_t i;
        json_array_foreach(msgs, i, m)
        {
            json_t *c = json_object_get(m, "content");
            a.input_tokens += content_words(&req->pool, c);
            if (strcmp(json_string_value(json_object_get(m, "role")), "user") == 0)
                echo = content_text(&req->pool, c);
        }
        echo = h2o_strdup(&req->pool, echo.base, echo.len); /* points into body */
        h2o_iovec_t text;
        a.stop_reason = "end_turn";
        if (plan->content == CONTENT_TOOLS) {
            text = h2o_iovec_init(TOOLS_TEXT, sizeof(TOOLS_TEXT) - 1);
            a.output_tokens = count_words(text.base, text.len);
            for (size_t k = 0; k < 2; k++)
                a.output_tokens += 1 + (strlen(TOOL_CALLS[k].args) + TOOL_ARG_FRAGMENT - 1) / TOOL_ARG_FRAGMENT;
            a.stop_reason = "tool_use";
        } else {
            text = reply_text(&req->pool, plan, echo);
            size_t max = (size_t)json_integer_value(json_object_get(body, "max_tokens"));
            a.output_tokens = count_words(text.base, text.len);
            if (a.output_tokens > max) {
                text = first_words(text, max);
                a.output_tokens = max;
                a.stop_reason = "max_tokens";
            }
        }
        resp_init(&r, &req->pool, 200, stream ? "text/event-stream" : "application/json", 1024 + text.len * 4);
        if (stream)
            build_stream(&r, &a, text);
        else
            build_message(&r, &a, text);
    }
    json_decref(body);
    respond(req, t, &r, plan);
}
