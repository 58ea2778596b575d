// SPDX-License-Identifier: MIT
/*
 * mock_upstream: the Gemini API (generativelanguage.googleapis.com/v1beta), byte for byte in Google's wire format
 * (ai.google.dev: generateContent, streamGenerateContent?alt=sse, embedContent, batchEmbedContents, error model).
 * The model in the URL path (`/v1beta/models/{model}:{method}`, percent-decoded) carries the same directives as the
 * OpenAI endpoints; see README.md "Gemini endpoints".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define GEM_CACHED_TOKENS 1500 /* "cache": cachedContentTokenCount (also added to promptTokenCount) */
#define GEM_DEFAULT_DIMS 8     /* embeddings without outputDimensionality */
#define GEM_MAX_DIMS 3072

/* the signature Gemini attaches to the first functionCall part of a turn; it must come back on the next request */
static const char THOUGHT_SIGNATURE[] = "bW9jay10aG91Z2h0LXNpZ25hdHVyZS0x"; /* base64("mock-thought-signature-1") */

static const char *status_name_of(int code)
{
    switch (code) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 501:
        return "UNIMPLEMENTED";
    case 503:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return code >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

/* {"error":{"code":N,"message":"...","status":"..."}} */
static void gem_error_json(struct sb *b, int code, const char *message)
{
    sb_fmt(b, "{\"error\":{\"code\":%d,\"message\":\"", code);
    sb_json_str(b, message, strlen(message));
    sb_fmt(b, "\",\"status\":\"%s\"}}", status_name_of(code));
}

static void gem_error(struct resp *r, h2o_mem_pool_t *pool, int code, const char *message)
{
    resp_init(r, pool, code, "application/json; charset=UTF-8", 256);
    ev_begin(r);
    gem_error_json(&r->buf, code, message);
    ev_end(r, 0);
    r->content_length = r->buf.len;
}

/* ---- generateContent / streamGenerateContent ------------------------------------------------------------------------ */

struct gem {
    const struct plan *plan;
    h2o_iovec_t model;
    unsigned long id;
    size_t prompt_tokens, output_tokens;
    const char *finish_reason;
    int sse;   /* stream with alt=sse (else a JSON array, Google's default for streamGenerateContent) */
    int first; /* array mode: next chunk is the first */
};

static void usage_json(struct sb *b, const struct gem *g)
{
    size_t prompt = g->prompt_tokens + (g->plan->cache ? GEM_CACHED_TOKENS : 0);
    sb_fmt(b, "\"usageMetadata\":{\"promptTokenCount\":%zu,\"candidatesTokenCount\":%zu,\"totalTokenCount\":%zu,", prompt,
           g->output_tokens, prompt + g->output_tokens);
    if (g->plan->cache)
        sb_fmt(b, "\"cachedContentTokenCount\":%d,", GEM_CACHED_TOKENS);
    sb_fmt(b, "\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":%zu}]", prompt);
    if (g->plan->cache)
        sb_fmt(b, ",\"cacheTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":%d}]", GEM_CACHED_TOKENS);
    sb_lit(b, "}");
}

static void text_part(struct sb *b, const char *s, size_t n)
{
    sb_lit(b, "{\"text\":\"");
    sb_json_str(b, s, n);
    sb_lit(b, "\"}");
}

static void call_part(struct sb *b, size_t t)
{
    sb_fmt(b, "{\"functionCall\":{\"name\":\"%s\",\"args\":%s}", TOOL_CALLS[t].name, TOOL_CALLS[t].args);
    if (t == 0) /* like Gemini 3: only the first functionCall part of a turn carries the signature */
        sb_fmt(b, ",\"thoughtSignature\":\"%s\"", THOUGHT_SIGNATURE);
    sb_lit(b, "}");
}

/* {"candidates":[{"content":{"parts":[ */
static void candidates_begin(struct sb *b)
{
    sb_lit(b, "{\"candidates\":[{\"content\":{\"parts\":[");
}

/* ]},"role":"model"} [,"finishReason":..] ,"index":0}] [,"usageMetadata":..] ,"modelVersion":..,"responseId":..} */
static void candidates_end(struct sb *b, const struct gem *g, int final)
{
    sb_lit(b, "],\"role\":\"model\"}");
    if (final)
        sb_fmt(b, ",\"finishReason\":\"%s\"", g->finish_reason);
    sb_lit(b, ",\"index\":0}]");
    if (final) {
        sb_lit(b, ",");
        usage_json(b, g);
    }
    sb_lit(b, ",\"modelVersion\":\"");
    sb_json_str(b, g->model.base, g->model.len);
    sb_fmt(b, "\",\"responseId\":\"mock-%lu\"}", g->id);
}

/* one streamed GenerateContentResponse: "data: {...}\r\n\r\n", or an element of the JSON array without alt=sse */
static void chunk_begin(struct resp *r, struct gem *g)
{
    if (g->sse) {
        sse_data_begin(r);
    } else {
        ev_begin(r);
        if (g->first)
            sb_lit(&r->buf, "[");
        else
            sb_lit(&r->buf, ",\r\n");
        g->first = 0;
    }
}

static void chunk_end(struct resp *r, const struct gem *g, int wait)
{
    if (g->sse)
        sse_end(r, wait);
    else
        ev_end(r, wait);
}

static void chunk_error(struct resp *r, struct gem *g, int wait)
{
    chunk_begin(r, g);
    gem_error_json(&r->buf, 503, "The model is overloaded. Please try again later.");
    chunk_end(r, g, wait);
}

/*
 * One chunk per word; the last word travels with finishReason + usageMetadata. "tools": one chunk per functionCall
 * (each whole, the first with its thoughtSignature), the second with finishReason + usageMetadata. No [DONE]: the
 * body just ends. CRLF framing always (that is what Google sends).
 */
static void build_stream(struct resp *r, struct gem *g, h2o_iovec_t text)
{
    const struct plan *p = g->plan;
    size_t content = 0;
    int wait = 0;

    r->stream = 1;
    r->crlf = 1;
    g->first = 1;
#define SEP()                                                                                                                      \
    do {                                                                                                                           \
        if (p->comments && g->sse && r->evs.size != 0)                                                                             \
            sse_comment(r);                                                                                                        \
    } while (0)
    if (p->inband_error_first) {
        chunk_error(r, g, 0);
        goto End;
    }
    if (p->content == CONTENT_TOOLS) {
        for (size_t t = 0; t < 2; t++) {
            int final = t == 1 && !p->no_done && !p->inband_error && !p->reset_mid;
            SEP();
            chunk_begin(r, g);
            candidates_begin(&r->buf);
            call_part(&r->buf, t);
            candidates_end(&r->buf, g, final);
            chunk_end(r, g, wait);
            wait = 1;
            if (++content == 2 && p->reset_mid)
                goto Abort;
            if (content == 1 && p->inband_error)
                goto InbandError;
        }
    } else {
        size_t i = 0, j;
        do {
            j = next_chunk(text.base, text.len, i);
            int final = j == text.len && !p->no_done && !p->inband_error && !p->reset_mid;
            SEP();
            chunk_begin(r, g);
            candidates_begin(&r->buf);
            text_part(&r->buf, text.base + i, j - i);
            candidates_end(&r->buf, g, final);
            chunk_end(r, g, wait);
            wait = 1;
            if (++content == 2 && p->reset_mid)
                goto Abort;
            if (content == 1 && p->inband_error)
                goto InbandError;
            i = j;
        } while (i < text.len);
    }
    if (p->reset_mid)
        goto Abort;
    if (p->inband_error)
        goto InbandError;
    goto End;
#undef SEP
Abort:
    r->abort = 1;
    return;
InbandError:
    if (p->comments && g->sse)
        sse_comment(r);
    chunk_error(r, g, 1);
End:
    if (!g->sse) {
        ev_begin(r);
        if (g->first)
            sb_lit(&r->buf, "[]");
        else
            sb_lit(&r->buf, "]");
        ev_end(r, 1);
    }
}

static void build_nonstream(struct resp *r, struct gem *g, h2o_iovec_t text)
{
    struct sb *b = &r->buf;
    ev_begin(r);
    candidates_begin(b);
    if (g->plan->content == CONTENT_TOOLS) {
        call_part(b, 0);
        sb_lit(b, ",");
        call_part(b, 1);
    } else {
        text_part(b, text.base, text.len);
    }
    candidates_end(b, g, 1);
    r->content_length = b->len - r->ev_off;
    if (g->plan->reset_mid) {
        h2o_vector_reserve(b->pool, &r->evs, 1);
        r->evs.entries[0] = (struct ev){r->ev_off, r->content_length / 2, 0};
        r->evs.size = 1;
        r->abort = 1;
    } else {
        ev_end(r, 0);
    }
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

/* request checks Gemini makes; 1 (and r filled) when the request is rejected */
static int validate_generate(struct resp *r, h2o_req_t *req, json_t *body, const struct plan *plan)
{
    char msg[400];
    json_t *contents = json_object_get(body, "contents");
    if (!json_is_array(contents) || json_array_size(contents) == 0) {
        gem_error(r, &req->pool, 400, "* GenerateContentRequest.contents: contents is not specified\n");
        return 1;
    }
    size_t i;
    json_t *c;
    json_array_foreach(contents, i, c)
    {
        json_t *role = json_object_get(c, "role");
        if (role != NULL && (!json_is_string(role) ||
                             (strcmp(json_string_value(role), "user") != 0 && strcmp(json_string_value(role), "model") != 0))) {
            gem_error(r, &req->pool, 400, "Please use a valid role: user, model.");
            return 1;
        }
        json_t *parts = json_object_get(c, "parts");
        if (!json_is_array(parts) || json_array_size(parts) == 0) {
            snprintf(msg, sizeof(msg), "* GenerateContentRequest.contents[%zu].parts: contents.parts must not be empty.\n", i);
            gem_error(r, &req->pool, 400, msg);
            return 1;
        }
        if (!plan->require_sig || !json_is_string(role) || strcmp(json_string_value(role), "model") != 0)
            continue;
        /* Gemini 3: the first functionCall part of a model turn must carry the thoughtSignature it was sent with */
        size_t k;
        json_t *part;
        json_array_foreach(parts, k, part)
        {
            json_t *fc = json_object_get(part, "functionCall");
            if (fc == NULL)
                continue;
            const char *sig = json_string_value(json_object_get(part, "thoughtSignature"));
            if (sig == NULL || strcmp(sig, THOUGHT_SIGNATURE) != 0) {
                const char *name = json_string_value(json_object_get(fc, "name"));
                snprintf(msg, sizeof(msg),
                         "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                         "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
                         "data, function call `default_api:%s` , position %zu. Please refer to "
                         "https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                         name != NULL ? name : "", i + 1);
                gem_error(r, &req->pool, 400, msg);
                return 1;
            }
            break;
        }
    }
    return 0;
}

static void generate(struct resp *r, h2o_req_t *req, json_t *body, const struct plan *plan, h2o_iovec_t model, int stream, int sse)
{
    struct gem g = {.plan = plan, .model = model, .id = atomic_fetch_add(&id_seq, 1) + 1, .sse = sse, .finish_reason = "STOP"};
    h2o_iovec_t echo = h2o_iovec_init("", 0), txt;
    txt = content_text(&req->pool, json_object_get(json_object_get(body, "systemInstruction"), "parts"));
    g.prompt_tokens = count_words(txt.base, txt.len);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(body, "contents"), i, c)
    {
        txt = content_text(&req->pool, json_object_get(c, "parts"));
        g.prompt_tokens += count_words(txt.base, txt.len);
        json_t *role = json_object_get(c, "role");
        if (role == NULL || strcmp(json_string_value(role), "user") == 0)
            echo = txt;
    }
    echo = h2o_strdup(&req->pool, echo.base, echo.len); /* points into body */
    h2o_iovec_t text = h2o_iovec_init("", 0);
    if (plan->content == CONTENT_TOOLS) {
        for (size_t k = 0; k < 2; k++)
            g.output_tokens += 1 + (strlen(TOOL_CALLS[k].args) + TOOL_ARG_FRAGMENT - 1) / TOOL_ARG_FRAGMENT;
    } else {
        text = reply_text(&req->pool, plan, echo);
        g.output_tokens = count_words(text.base, text.len);
        json_t *max = json_object_get(json_object_get(body, "generationConfig"), "maxOutputTokens");
        if (json_is_integer(max) && json_integer_value(max) >= 0 && g.output_tokens > (size_t)json_integer_value(max)) {
            g.output_tokens = (size_t)json_integer_value(max);
            text = first_words(text, g.output_tokens);
            g.finish_reason = "MAX_TOKENS";
        }
    }
    resp_init(r, &req->pool, 200, stream && sse ? "text/event-stream" : "application/json; charset=UTF-8", 1024 + text.len * 4);
    if (stream)
        build_stream(r, &g, text);
    else
        build_nonstream(r, &g, text);
}

/* ---- embeddings --------------------------------------------------------------------------------------------------------- */

static size_t dims_of(json_t *req)
{
    json_t *d = json_object_get(req, "outputDimensionality");
    return json_is_integer(d) && json_integer_value(d) >= 1 && json_integer_value(d) <= GEM_MAX_DIMS ? (size_t)json_integer_value(d)
                                                                                                     : GEM_DEFAULT_DIMS;
}

/* "embedding": {"values": [...]} of one EmbedContentRequest; 0 when it has no content */
static int embed_one(struct sb *b, h2o_mem_pool_t *pool, json_t *ereq)
{
    json_t *parts = json_object_get(json_object_get(ereq, "content"), "parts");
    if (!json_is_array(parts))
        return 0;
    h2o_iovec_t txt = content_text(pool, parts);
    sb_lit(b, "{\"values\":");
    embedding_values(b, txt.base, txt.len, dims_of(ereq));
    sb_lit(b, "}");
    return 1;
}

static void embed(struct resp *r, h2o_req_t *req, json_t *body, h2o_iovec_t model, int batch)
{
    char msg[300];
    resp_init(r, &req->pool, 200, "application/json; charset=UTF-8", 1024);
    struct sb *b = &r->buf;
    ev_begin(r);
    if (!batch) {
        sb_lit(b, "{\"embedding\":");
        if (!embed_one(b, &req->pool, body)) {
            gem_error(r, &req->pool, 400, "* EmbedContentRequest.content: content is not specified\n");
            return;
        }
        sb_lit(b, "}");
    } else {
        json_t *reqs = json_object_get(body, "requests"), *e;
        if (!json_is_array(reqs) || json_array_size(reqs) == 0) {
            gem_error(r, &req->pool, 400, "* BatchEmbedContentsRequest.requests: requests is not specified\n");
            return;
        }
        sb_lit(b, "{\"embeddings\":[");
        size_t i;
        json_array_foreach(reqs, i, e)
        {
            /* Google insists each request names the model of the URL */
            const char *m = json_string_value(json_object_get(e, "model"));
            if (m == NULL || strncmp(m, "models/", 7) != 0 || strlen(m + 7) != model.len ||
                memcmp(m + 7, model.base, model.len) != 0) {
                snprintf(msg, sizeof(msg),
                         "* BatchEmbedContentsRequest.requests[%zu].model: model \"%s\" does not match models/%.*s\n", i,
                         m != NULL ? m : "", (int)(model.len > 100 ? 100 : model.len), model.base);
                gem_error(r, &req->pool, 400, msg);
                return;
            }
            if (i)
                sb_lit(b, ",");
            if (!embed_one(b, &req->pool, e)) {
                snprintf(msg, sizeof(msg), "* BatchEmbedContentsRequest.requests[%zu].content: content is not specified\n", i);
                gem_error(r, &req->pool, 400, msg);
                return;
            }
        }
        sb_lit(b, "]}");
    }
    ev_end(r, 0);
    r->content_length = b->len;
}

/* ---- dispatch ----------------------------------------------------------------------------------------------------------- */

enum gem_method { GM_UNKNOWN, GM_GENERATE, GM_STREAM, GM_EMBED, GM_BATCH_EMBED };

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* raw path "/v1beta/models/<model>:<method>[?query]" -> decoded model, method */
static enum gem_method parse_path(h2o_req_t *req, h2o_iovec_t *model)
{
    const char *p = req->path.base;
    size_t len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    static const char prefix[] = "/v1beta/models/";
    if (len <= sizeof(prefix) - 1 || memcmp(p, prefix, sizeof(prefix) - 1) != 0)
        return GM_UNKNOWN;
    const char *m = p + sizeof(prefix) - 1, *end = p + len, *colon = end;
    while (colon > m && colon[-1] != ':')
        colon--;
    if (colon == m)
        return GM_UNKNOWN;
    h2o_iovec_t method = h2o_iovec_init(colon, (size_t)(end - colon));
    char *out = h2o_mem_alloc_pool(&req->pool, (size_t)(colon - m));
    size_t n = 0;
    for (const char *s = m; s < colon - 1; s++) {
        int hi, lo;
        if (*s == '%' && colon - 1 - s >= 3 && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            s += 2;
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    *model = h2o_iovec_init(out, n);
    if (h2o_memis(method.base, method.len, H2O_STRLIT("generateContent")))
        return GM_GENERATE;
    if (h2o_memis(method.base, method.len, H2O_STRLIT("streamGenerateContent")))
        return GM_STREAM;
    if (h2o_memis(method.base, method.len, H2O_STRLIT("embedContent")))
        return GM_EMBED;
    if (h2o_memis(method.base, method.len, H2O_STRLIT("batchEmbedContents")))
        return GM_BATCH_EMBED;
    return GM_UNKNOWN;
}

void mock_gemini_handle(h2o_req_t *req, struct reqtrack *t, int is_post)
{
    struct resp r;
    h2o_iovec_t model = h2o_iovec_init("", 0);
    enum gem_method method = parse_path(req, &model);
    if (method == GM_UNKNOWN || !is_post) {
        char msg[200];
        snprintf(msg, sizeof(msg), "mock: unknown Gemini method %s %.*s", is_post ? "POST" : "GET",
                 (int)(req->path.len > 150 ? 150 : req->path.len), req->path.base);
        gem_error(&r, &req->pool, 404, msg);
        respond(req, t, &r, NULL);
        return;
    }

    json_error_t jerr;
    json_t *body = req->entity.base != NULL ? json_loadb(req->entity.base, req->entity.len, 0, &jerr) : NULL;
    if (body == NULL || !json_is_object(body)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Invalid JSON payload received. %s",
                 body == NULL ? (req->entity.base ? jerr.text : "empty body") : "not a JSON object");
        json_decref(body);
        gem_error(&r, &req->pool, 400, msg);
        respond(req, t, &r, NULL);
        return;
    }
    record_request(req, model.base, model.len);
    if (!quiet)
        fprintf(stderr, "mock: POST %.*s (gemini) model=%s\n", (int)req->path.len, req->path.base, model.base);

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
    h2o_iovec_t qkey = query_param(req, "key");
    int generating = method == GM_GENERATE || method == GM_STREAM;
    h2o_iovec_t alt = query_param(req, "alt");
    int sse = alt.base != NULL && h2o_memis(alt.base, alt.len, H2O_STRLIT("sse"));
    if ((header_value(req, "x-goog-api-key", &hlen) == NULL || hlen == 0) && (qkey.base == NULL || qkey.len == 0)) {
        gem_error(&r, &req->pool, 403,
                  "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or "
                  "other form of API consumer identity to call this API.");
    } else if (generating && validate_generate(&r, req, body, plan)) {
        /* r holds the 400 */
    } else if (plan->fail_status != 0) {
        char msg[80];
        if (plan->fail_status == 503)
            snprintf(msg, sizeof(msg), "The model is overloaded. Please try again later.");
        else if (plan->fail_status == 429)
            snprintf(msg, sizeof(msg), "Resource has been exhausted (e.g. check quota).");
        else
            snprintf(msg, sizeof(msg), "mock failure %d", plan->fail_status);
        gem_error(&r, &req->pool, plan->fail_status, msg);
    } else if (plan->html502) {
        resp_body(&r, &req->pool, 502, "text/html", HTML_502, HTML_502_LEN);
    } else if (plan->garbage) {
        resp_body(&r, &req->pool, 200, "application/json", H2O_STRLIT("not json {{{"));
    } else if (plan->garbage_sse && method == GM_STREAM) {
        resp_init(&r, &req->pool, 200, "text/event-stream", 64);
        r.stream = 1;
        r.crlf = 1;
        sse_data_begin(&r);
        sb_lit(&r.buf, "nonsense{");
        sse_end(&r, 0);
    } else if (generating) {
        generate(&r, req, body, plan, model, method == GM_STREAM, sse);
    } else {
        embed(&r, req, body, model, method == GM_BATCH_EMBED);
    }
    json_decref(body);
    respond(req, t, &r, plan);
}
