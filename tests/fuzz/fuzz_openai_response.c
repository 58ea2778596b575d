/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the openai plugin's parse_response (chat, legacy completions,
 * embeddings) and classify_error on arbitrary upstream bodies. The plugin
 * source is compiled in directly so the fuzzer sees its code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/openai/openai.c"
#include "plugin/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const lg_provider_t *prov;
static void *inst;

static void init_once(void)
{
    if (prov != NULL)
        return;
    lg_errbuf_t err = {{0}};
    if (lg_plugin_init(lg_plugin_host_api(), &prov, &err) != 0)
        abort();
    json_t *conf = json_pack("{ss ss ss}", "name", "fuzz", "base_url", "https://api.openai.com/v1", "api_key", "sk-fuzz-secret");
    if (prov->create(conf, &inst, &err) != 0)
        abort();
    json_decref(conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {0, 200, 400, 404, 429, 500, 503, 529};
    const char *body = (const char *)data;
    init_once();
    json_t *req = json_object();
    for (int kind = LG_API_CHAT; kind <= LG_API_EMBEDDINGS; ++kind) {
        lg_call_t call = {.struct_size = sizeof(call), .kind = (lg_api_kind_t)kind, .body = req, .upstream_model = "gpt-4o"};
        json_t *out = NULL;
        lg_errbuf_t err = {{0}};
        int rc = prov->parse_response(inst, &call, 200, body, size, &out, &err);
        if ((rc == 0) != (out != NULL))
            abort();
        if (rc == 0 && (json_object_get(out, "id") != NULL || json_object_get(out, "model") != NULL))
            abort();
        if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
            abort();
        json_decref(out);
    }
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); ++i) {
        lg_upstream_error_t u;
        prov->classify_error(inst, statuses[i], body, size, &u);
        if (u.err >= 0 || memchr(u.message, '\0', sizeof(u.message)) == NULL ||
            memchr(u.provider_code, '\0', sizeof(u.provider_code)) == NULL || strstr(u.message, "sk-fuzz-secret") != NULL)
            abort();
    }
    json_decref(req);
    return 0;
}
