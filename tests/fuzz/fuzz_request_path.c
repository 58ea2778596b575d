/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the request path as the handler sees it: the input is a raw HTTP/1 request. It is parsed with the
 * parser h2o 2.2.5 uses (picohttpparser, exported by libh2o), the path normalised as h2o does for path_normalized,
 * then run through the front door's framing check (with an independent oracle: both Content-Length and
 * Transfer-Encoding, or two different Content-Lengths, must be refused), the error-shape choice, and the body parser
 * of the route the path selects (chat/completions/embeddings request parser, the Anthropic skin, JSON-RPC for /mcp).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <h2o.h>
#include "http/anthropic_ingress.h"
#include "http/frontdoor.h"
#include "domain/request.h"
#include "llmgate/plugin.h"
#include "mcp/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* picohttpparser's API as exported by libh2o (its header is not installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);

static int is(const struct phr_header *h, const char *name)
{
    return h->name != NULL && h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

/* header value without trailing optional whitespace (RFC 9110 OWS; older picohttpparser keeps it) */
static size_t ows_trimmed(const struct phr_header *h)
{
    size_t n = h->value_len;
    while (n > 0 && (h->value[n - 1] == ' ' || h->value[n - 1] == '\t'))
        --n;
    return n;
}

static int route_is(h2o_iovec_t p, const char *lit)
{
    size_t n = strlen(lit);
    return p.len == n && memcmp(p.base, lit, n) == 0;
}

static void parse_body(h2o_iovec_t path, const char *body, size_t len)
{
    char err[256];
    if (path.len >= 8 && memcmp(path.base, "/api/v1/", 8) == 0) {
        path.base += 4;
        path.len -= 4;
    }
    static const struct {
        const char *path;
        int kind;
    } routes[] = {
        {"/v1/chat/completions", LG_API_CHAT}, {"/v1/completions", LG_API_COMPLETIONS}, {"/v1/embeddings", LG_API_EMBEDDINGS}};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); ++i) {
        if (route_is(path, routes[i].path)) {
            lg_gen_request_t r;
            memset(&r, 0, sizeof(r));
            if (lg_gen_request_parse(&r, routes[i].kind, body, len, err, sizeof(err)) == 0)
                lg_gen_request_dispose(&r);
            else if (err[0] == '\0')
                abort(); /* a refusal always names its reason */
            return;
        }
    }
    if (route_is(path, "/v1/messages")) {
        json_t *in = json_loadb(body, len, 0, NULL);
        json_t *out = NULL;
        if (in != NULL && lg_anthropic_request_to_openai(in, &out, err, sizeof(err)) == 0) {
            lg_gen_request_t r;
            memset(&r, 0, sizeof(r));
            if (lg_gen_request_from_json(&r, LG_API_CHAT, out, err, sizeof(err)) == 0)
                lg_gen_request_dispose(&r);
        }
        json_decref(in);
        return;
    }
    if (route_is(path, "/mcp") || (path.len > 5 && memcmp(path.base, "/mcp/", 5) == 0)) {
        lg_jsonrpc_msg_t msg;
        lg_jsonrpc_err_t e;
        json_t *batch = NULL;
        memset(&msg, 0, sizeof(msg));
        memset(&e, 0, sizeof(e));
        int rc = lg_jsonrpc_parse(body, len, 1 << 20, &msg, &batch, &e);
        if (rc == LG_JSONRPC_PARSED_ONE)
            lg_jsonrpc_msg_dispose(&msg);
        else if (rc == LG_JSONRPC_PARSED_BATCH)
            json_decref(batch);
        else
            lg_jsonrpc_err_dispose(&e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data, *method, *path;
    size_t method_len, path_len, num_headers = 100;
    int minor;
    struct phr_header headers[100];
    int head_len = phr_parse_request(buf, size, &method, &method_len, &path, &path_len, &minor, headers, &num_headers, 0);
    if (head_len <= 0)
        return 0;

    /* oracle for the smuggling check, from the parser's own view of the headers */
    int te = 0, cl = 0, cl_differ = 0;
    const struct phr_header *first_cl = NULL;
    for (size_t i = 0; i < num_headers; ++i) {
        if (is(&headers[i], "transfer-encoding")) {
            ++te;
        } else if (is(&headers[i], "content-length")) {
            ++cl;
            if (first_cl == NULL)
                first_cl = &headers[i];
            else if (ows_trimmed(first_cl) != ows_trimmed(&headers[i]) ||
                     memcmp(first_cl->value, headers[i].value, ows_trimmed(&headers[i])) != 0)
                cl_differ = 1;
        }
    }
    const char *why = lg_frontdoor_framing_conflict(buf, (size_t)head_len);
    if (((te != 0 && cl != 0) || cl_differ || te > 1) && why == NULL)
        abort();

    lg_error_shape_t shape = lg_frontdoor_shape(path, path_len);
    if (shape != LG_SHAPE_OPENAI && shape != LG_SHAPE_ANTHROPIC && shape != LG_SHAPE_JSONRPC)
        abort();

    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    size_t query_at = SIZE_MAX, *norm_indexes = NULL;
    h2o_iovec_t norm = h2o_url_normalize_path(&pool, path, path_len, &query_at, &norm_indexes);
    parse_body(norm, buf + head_len, size - (size_t)head_len);
    h2o_mem_clear_pool(&pool);
    return 0;
}
