/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the anthropic plugin's parse_response and classify_error on arbitrary upstream bodies (Messages
 * responses, error objects, HTML, garbage). The plugin source is compiled in directly so the fuzzer sees its code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/anthropic/anthropic.c"
#include "fuzz_plugin_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEY "sk-ant-fuzz-secret"

static void check_response(const json_t *out)
{
    /* exactly one choice with an assistant message, a finish_reason and, when present, a complete usage object */
    json_t *choices = json_object_get(out, "choices");
    json_t *c = json_array_get(choices, 0);
    if (json_array_size(choices) != 1 || !json_is_string(json_object_get(c, "finish_reason")) ||
        !json_is_object(json_object_get(c, "message")) || json_object_get(out, "id") != NULL)
        abort();
    json_t *u = json_object_get(out, "usage");
    if (u != NULL) {
        json_int_t p = json_integer_value(json_object_get(u, "prompt_tokens"));
        json_int_t cached = json_integer_value(json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
        if (!json_is_integer(json_object_get(u, "total_tokens")) || p < 0 || cached > p)
            abort();
    }
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(json_object_get(c, "message"), "tool_calls"), i, tc)
    {
        const char *args = json_string_value(json_object_get(json_object_get(tc, "function"), "arguments"));
        json_t *parsed = args != NULL ? json_loads(args, 0, NULL) : NULL;
        if (!json_is_object(parsed)) /* arguments are always a JSON object text */
            abort();
        json_decref(parsed);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {0, 200, 400, 401, 404, 413, 429, 500, 502, 503, 504, 529};
    const char *body = (const char *)data;
    fz_init("{\"name\":\"fuzz\",\"api_key\":\"" FUZZ_KEY "\"}");
    json_t *req = json_pack("{s{sb}}", "reasoning", "exclude", size > 0 && data[0] == '{');
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .body = req, .upstream_model = "claude-x"};
    json_t *out = NULL;
    lg_errbuf_t err = {{0}};
    int rc = fz_prov->parse_response(fz_inst, &call, 200, body, size, &out, &err);
    if ((rc == 0) != (out != NULL) || rc > 0)
        abort();
    if (rc == 0)
        check_response(out);
    fz_check_text(err.msg, sizeof(err.msg), FUZZ_KEY);
    json_decref(out);
    fz_check_classify(statuses, sizeof(statuses) / sizeof(statuses[0]), body, size, FUZZ_KEY);
    json_decref(req);
    return 0;
}
