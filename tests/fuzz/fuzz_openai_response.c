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
#include "fuzz_plugin_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEY "sk-fuzz-secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {0, 200, 400, 404, 429, 500, 503, 529};
    const char *body = (const char *)data;
    fz_init("{\"name\":\"fuzz\",\"base_url\":\"https://api.openai.com/v1\",\"api_key\":\"" FUZZ_KEY "\"}");
    json_t *req = json_object();
    for (int kind = LG_API_CHAT; kind <= LG_API_EMBEDDINGS; ++kind) {
        lg_call_t call = {.struct_size = sizeof(call), .kind = (lg_api_kind_t)kind, .body = req, .upstream_model = "gpt-4o"};
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
    return 0;
}
