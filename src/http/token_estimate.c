/* SPDX-License-Identifier: MIT */
/*
 * A conservative input-token estimate for an Anthropic Messages request, used by /v1/messages/count_tokens when the
 * serving provider has no counting endpoint of its own. It walks every block a tokenizer would see — system, text,
 * tool_use inputs, tool_result contents, thinking, tool definitions and their schemas — and errs high: a coding agent
 * compacts its context on this number, so too low is the harmful direction (a fake 0 stops compaction entirely).
 */
#include <string.h>
#include "http/token_estimate.h"

/* Roughly 3.5 UTF-8 bytes per token for English prose and code with BPE tokenizers (cl100k/o200k and Claude's both
 * land between 3.5 and 4.5 on such text): dividing by 3.5 and rounding up over-counts slightly, on purpose. */
#define BYTES_PER_TOKEN_X2 7 /* 3.5 × 2, to stay in integers */
#define PER_MESSAGE 4        /* role and turn markers */
#define PER_BLOCK 3          /* block type framing */
#define PER_TOOL 12          /* tool definition framing */
#define PER_IMAGE 1600       /* Anthropic's documented ceiling for one image (~1.15 megapixels / 750) */
#define PER_DOCUMENT_PAGE 1500
#define SYSTEM_OVERHEAD 8

static int64_t text_tokens(size_t bytes)
{
    return (int64_t)((bytes * 2 + BYTES_PER_TOKEN_X2 - 1) / BYTES_PER_TOKEN_X2);
}

/* every string value under v (keys of objects too, as schemas spell them out), in bytes */
static size_t json_text_bytes(const json_t *v, int depth)
{
    if (v == NULL || depth > 64)
        return 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v);
    case JSON_INTEGER:
    case JSON_REAL:
        return 4;
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return 4;
    case JSON_ARRAY: {
        size_t n = 0, i;
        json_t *e;
        json_array_foreach(v, i, e) n += json_text_bytes(e, depth + 1) + 1;
        return n;
    }
    case JSON_OBJECT: {
        size_t n = 0;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) n += strlen(k) + json_text_bytes(e, depth + 1) + 2;
        return n;
    }
    }
    return 0;
}

static int64_t block_tokens(const json_t *blk, int depth);

static int64_t content_tokens(const json_t *content, int depth)
{
    if (json_is_string(content))
        return text_tokens(json_string_length(content));
    int64_t n = 0;
    size_t i;
    json_t *blk;
    if (json_is_array(content))
        json_array_foreach(content, i, blk) n += block_tokens(blk, depth + 1);
    return n;
}

static int64_t block_tokens(const json_t *blk, int depth)
{
    if (!json_is_object(blk) || depth > 16)
        return json_is_string(blk) ? text_tokens(json_string_length(blk)) : 0;
    const char *type = json_string_value(json_object_get(blk, "type"));
    int64_t n = PER_BLOCK;
    if (type == NULL)
        return n + text_tokens(json_text_bytes(blk, 0));
    if (strcmp(type, "text") == 0)
        return n + text_tokens(json_string_length(json_object_get(blk, "text")));
    if (strcmp(type, "image") == 0)
        return n + PER_IMAGE;
    if (strcmp(type, "document") == 0) {
        const json_t *src = json_object_get(blk, "source");
        const char *st = json_string_value(json_object_get(src, "type"));
        if (st != NULL && strcmp(st, "text") == 0)
            return n + text_tokens(json_string_length(json_object_get(src, "data")));
        if (st != NULL && strcmp(st, "content") == 0)
            return n + content_tokens(json_object_get(src, "content"), depth);
        /* a PDF: about one page per 50 KB of base64, at least one page */
        size_t b64 = json_string_length(json_object_get(src, "data"));
        return n + PER_DOCUMENT_PAGE * (int64_t)(1 + b64 / 50000);
    }
    if (strcmp(type, "tool_use") == 0 || strcmp(type, "server_tool_use") == 0)
        return n +
               text_tokens(json_string_length(json_object_get(blk, "name")) + json_text_bytes(json_object_get(blk, "input"), 0));
    if (strcmp(type, "tool_result") == 0)
        return n + content_tokens(json_object_get(blk, "content"), depth);
    if (strcmp(type, "thinking") == 0)
        return n + text_tokens(json_string_length(json_object_get(blk, "thinking")));
    if (strcmp(type, "redacted_thinking") == 0)
        return n + text_tokens(json_string_length(json_object_get(blk, "data")) * 3 / 4);
    /* anything else (search results, server tool results, ...): every string in it */
    return n + text_tokens(json_text_bytes(blk, 0));
}

int64_t lg_estimate_anthropic_input_tokens(const json_t *body)
{
    int64_t n = 0;
    const json_t *sys = json_object_get(body, "system");
    if (sys != NULL && !json_is_null(sys))
        n += SYSTEM_OVERHEAD + content_tokens(sys, 0);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(body, "messages"), i, m) n += PER_MESSAGE + content_tokens(json_object_get(m, "content"), 0);
    json_t *t;
    json_array_foreach(json_object_get(body, "tools"), i, t) n += PER_TOOL + text_tokens(json_text_bytes(t, 0));
    const json_t *tc = json_object_get(body, "tool_choice");
    if (tc != NULL && !json_is_null(tc))
        n += text_tokens(json_text_bytes(tc, 0));
    return n > 0 ? n : 1;
}
