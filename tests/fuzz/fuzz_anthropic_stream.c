/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the anthropic plugin's stream callbacks behind the host's SSE parser. The input is a raw upstream
 * byte stream (seeds are the .sse fixtures); the first byte picks where it is cut in two, so framing across reads is
 * exercised as well. Checks the ABI promises: at most LG_STREAM_MAX_CHUNKS object chunks without usage, usage with
 * integer totals, NUL-terminated error texts, stream_end 0 only after done.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/anthropic/anthropic.c"
#include "fuzz_plugin_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEY "sk-ant-fuzz-secret"

static void check_chunk(const json_t *chunk, const lg_stream_out_t *out)
{
    (void)out;
    if (!json_is_object(json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta")))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init("{\"name\":\"fuzz\",\"api_key\":\"" FUZZ_KEY "\"}");
    json_t *req = json_pack("{s{sb}}", "reasoning", "exclude", size > 1 && (data[1] & 1));
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .stream = 1, .body = req, .upstream_model = "claude-x"};
    size_t cut = size > 0 ? (size_t)data[0] % (size + 1) : 0;
    fz_stream(&call, (const char *)data, size, cut, check_chunk, FUZZ_KEY, 1);
    json_decref(req);
    return 0;
}
