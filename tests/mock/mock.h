/* SPDX-License-Identifier: MIT */
/*
 * Private header of mock_upstream: the pieces of mock_upstream.c (response/event machinery, directive parser, request
 * recording) that the Anthropic (mock_anthropic.c) and Gemini (mock_gemini.c) endpoints reuse. Not an API: everything
 * here lives in one executable. See README.md for the behaviour.
 */
#ifndef LLMGATE_TESTS_MOCK_H
#define LLMGATE_TESTS_MOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <jansson.h>

/* ---- shared constants ------------------------------------------------------------------------------------------------ */

#define TOOL_ARG_FRAGMENT 10 /* bytes of tool-call arguments per streamed delta */

struct mock_tool_call {
    const char *id, *name, *args;
};
extern const struct mock_tool_call TOOL_CALLS[2]; /* get_weather, get_time (OpenAI ids call_1, call_2) */
extern const char LOREM[];
extern const char HTML_502[];
extern const size_t HTML_502_LEN;
extern int quiet;
extern atomic_ulong id_seq; /* process-wide id counter ("chatcmpl-mock-N", "msg_mock_N", ...) */

/* ---- string builder in req->pool --------------------------------------------------------------------------------------- */

struct sb {
    h2o_mem_pool_t *pool;
    char *p;
    size_t len, cap;
};

void sb_init(struct sb *b, h2o_mem_pool_t *pool, size_t cap);
void sb_reserve(struct sb *b, size_t extra);
void sb_add(struct sb *b, const char *s, size_t n);
__attribute__((format(printf, 2, 3))) void sb_fmt(struct sb *b, const char *fmt, ...);
/* appends s as the inside of a JSON string literal */
void sb_json_str(struct sb *b, const char *s, size_t n);
#define sb_lit(b, s) sb_add((b), (s), sizeof(s) - 1)

/* ---- directives (the model string) ------------------------------------------------------------------------------------ */

enum content_kind { CONTENT_ECHO, CONTENT_LOREM, CONTENT_WORDS, CONTENT_TOOLS, CONTENT_BASH_TOOL, CONTENT_PREFILL };

/* corrupt-<kind> / corrupt-mid-<kind>: one broken event (or a broken non-stream body) */
enum corrupt_kind { CORRUPT_NONE, CORRUPT_JSON, CORRUPT_UTF8, CORRUPT_CONTENT, CORRUPT_FINISH, CORRUPT_NULLCHOICE };

struct plan {
    enum content_kind content;
    unsigned long nwords;
    int fail_status;
    unsigned html502 : 1, garbage : 1, garbage_sse : 1, hang : 1, reset : 1, reset_mid : 1, inband_error : 1,
        inband_error_first : 1, no_done : 1, comments : 1, crlf : 1, split : 1, require_mct : 1, usage : 1,
        cache : 1,           /* Anthropic / Gemini: cache-token usage */
        require_sig : 1;     /* Gemini: 400 when a model turn's functionCall lacks its thoughtSignature */
    int cf_error_status;     /* cf-error-<status>: the Cloudflare routes answer with a v4 error envelope */
    unsigned cf_numeric : 1; /* chat streams: a content chunk of digits only goes out as a JSON number (Workers AI) */
    unsigned long delay_ms, slow_ms;
    enum corrupt_kind corrupt;
    unsigned corrupt_mid : 1, /* the broken event follows the first content chunk instead of the role chunk */
        only_done : 1;        /* the stream is `data: [DONE]` and nothing else */
};

void parse_plan(const char *model, size_t len, struct plan *p);

/* ---- response description: one buffer + events sent one h2o_send at a time ------------------------------------------ */

struct ev {
    size_t off, len;
    unsigned char wait; /* "slow": wait slow_ms before sending this event */
};

struct resp {
    int status;
    const char *ctype;
    int retry_after;
    int stream;            /* no content-length (chunked on HTTP/1.1) */
    size_t content_length; /* declared length when !stream (may exceed the bytes sent for reset-mid) */
    struct sb buf;
    H2O_VECTOR(struct ev) evs;
    int abort;     /* abort the response after the events instead of finishing it */
    int crlf;      /* SSE line endings */
    size_t ev_off; /* start of the event under construction */
};

void ev_begin(struct resp *r);
void ev_end(struct resp *r, int wait);
void sse_data_begin(struct resp *r);    /* ev_begin + "data: " */
void sse_end(struct resp *r, int wait); /* "\n\n" or "\r\n\r\n" + ev_end */
void sse_comment(struct resp *r);
void resp_init(struct resp *r, h2o_mem_pool_t *pool, int status, const char *ctype, size_t cap);
void resp_body(struct resp *r, h2o_mem_pool_t *pool, int status, const char *ctype, const char *body, size_t len);

/* ---- request handling ------------------------------------------------------------------------------------------------- */

struct reqtrack; /* in-flight accounting of one API request (opaque) */

/* sends r now or after plan->delay_ms (split / slow honoured); r's buffer must live in req->pool */
void respond(h2o_req_t *req, struct reqtrack *t, struct resp *r, const struct plan *plan);
/* "reset": drops the TCP connection without a response byte */
void drop_request(h2o_req_t *req, struct reqtrack *t);
/* "hang": never answers (released when the client leaves, dropped after 120 s) */
void start_hang(h2o_req_t *req, struct reqtrack *t);
/* stores the request for GET /_mock/last?model=<model> and counts it in /_mock/stats */
void record_request(h2o_req_t *req, const char *model, size_t model_len);

/* ---- text helpers ----------------------------------------------------------------------------------------------------- */

size_t count_words(const char *s, size_t n);
int is_space(char c);
/* a string, or the "text" members of an array's items joined with one space */
h2o_iovec_t content_text(h2o_mem_pool_t *pool, json_t *content);
/* the reply text for echo / lorem / words-N */
h2o_iovec_t reply_text(h2o_mem_pool_t *pool, const struct plan *plan, h2o_iovec_t echo);
/* end of the stream chunk starting at i: one word plus the whitespace after it (the first also takes leading space) */
size_t next_chunk(const char *s, size_t n, size_t i);
/* "[v0,...,v(dims-1)]": deterministic vector of the text (FNV-1a-64 + splitmix64, %.6f) */
void embedding_values(struct sb *b, const char *s, size_t n, size_t dims);
/* percent-decoded query parameter ('+' kept), {NULL,0} when absent */
h2o_iovec_t query_param(h2o_req_t *req, const char *name);
int path_is(h2o_iovec_t path, const char *lit);
const char *header_value(h2o_req_t *req, const char *name, size_t *len); /* NULL when absent */

/* the OpenAI-compatible endpoints (also behind the Cloudflare Workers AI routes) */
enum api { API_CHAT, API_COMPLETIONS, API_EMBEDDINGS };
/* POST /v1/chat/completions, /v1/completions, /v1/embeddings: parse, record, then act on the model's directives */
void mock_openai_handle(h2o_req_t *req, struct reqtrack *t, enum api api);

/* ---- provider endpoints ----------------------------------------------------------------------------------------------- */

/* POST /v1/messages (Anthropic Messages API) */
void mock_anthropic_handle(h2o_req_t *req, struct reqtrack *t);
/* /v1beta/models/{model}:generateContent | :streamGenerateContent | :embedContent | :batchEmbedContents (Gemini) */
void mock_gemini_handle(h2o_req_t *req, struct reqtrack *t, int is_post);
/* /client/v4/accounts/{account}/ai/v1/chat/completions | /embeddings (Cloudflare Workers AI, mock_cloudflare.c) */
void mock_cloudflare_handle(h2o_req_t *req, struct reqtrack *t, int is_post);
extern const char *cloudflare_token; /* --cloudflare-token: the only Bearer token accepted there; NULL = any */

#endif
