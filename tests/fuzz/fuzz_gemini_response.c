/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the gemini plugin's parse_response (chat and embeddings) and classify_error on arbitrary upstream
 * bodies; when the input is a JSON object it is also used as a client body for build_request (chat, stream,
 * embeddings), so the request translation (schema stripping, tool mapping, signature cache) is fuzzed too. The
 * plugin source is compiled in directly so the fuzzer sees its code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/gemini/gemini.c"
#include "fuzz_plugin_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEY "AIzaSyFuzz-secret-0123456789abcdefghijk" /* must never appear in a message or URL */

static void free_req(lg_http_req_t *r)
{
    const lg_host_api_t *h = lg_plugin_host_api();
    h->free_mem(r->method);
    h->free_mem(r->url);
    h->free_mem(r->body);
    for (size_t i = 0; i < r->num_headers; ++i) {
        h->free_mem(r->headers[i].name);
        h->free_mem(r->headers[i].value);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {0, 200, 400, 401, 404, 429, 500, 503, 504};
    const char *body = (const char *)data;
    /* a small cache so eviction runs too */
    fz_init("{\"name\":\"fuzz\",\"api_key\":\"" FUZZ_KEY "\",\"options\":{\"thought_signature_cache\":4}}");
    json_t *req = json_pack("{s[ss]}", "input", "hello", "world");
    for (int kind = LG_API_CHAT; kind <= LG_API_EMBEDDINGS; kind += LG_API_EMBEDDINGS - LG_API_CHAT) {
        lg_call_t call = {
            .struct_size = sizeof(call), .kind = (lg_api_kind_t)kind, .body = req, .upstream_model = "gemini-2.5-flash"};
        json_t *out = NULL;
        lg_errbuf_t err = {{0}};
        int rc = fz_prov->parse_response(fz_inst, &call, 200, body, size, &out, &err);
        if ((rc == 0) != (out != NULL))
            abort();
        if (rc == 0 && (json_object_get(out, "id") != NULL || json_object_get(out, "model") != NULL))
            abort();
        fz_check_text(err.msg, sizeof(err.msg), NULL);
        json_decref(out);
    }
    fz_check_classify(statuses, sizeof(statuses) / sizeof(statuses[0]), body, size, FUZZ_KEY);
    json_decref(req);

    json_t *client = json_loadb(body, size, 0, NULL);
    if (json_is_object(client)) {
        json_t *before = json_deep_copy(client);
        for (int k = 0; k < 3; ++k) {
            lg_call_t call = {.struct_size = sizeof(call),
                              .kind = k == 2 ? LG_API_EMBEDDINGS : LG_API_CHAT,
                              .stream = k == 1,
                              .body = client,
                              .upstream_model = k == 2 ? "text-embedding-004" : "gemini-3-pro-preview"};
            lg_http_req_t hr;
            memset(&hr, 0, sizeof(hr));
            lg_errbuf_t err = {{0}};
            int rc = fz_prov->build_request(fz_inst, &call, &hr, &err);
            if (rc == 0) {
                json_t *j = json_loadb(hr.body, hr.body_len, 0, NULL);
                if (!json_is_object(j) || hr.url == NULL || strstr(hr.url, FUZZ_KEY) != NULL)
                    abort();
                json_decref(j);
            } else if (rc > 0 || memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
                abort();
            }
            free_req(&hr);
        }
        if (!json_equal(client, before)) /* the client body is never modified */
            abort();
        json_decref(before);
    }
    json_decref(client);
    return 0;
}
