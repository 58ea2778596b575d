/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the gemini plugin's stream callbacks behind the host's SSE parser (src/upstream/sse.c). The first
 * input byte picks where the rest is split into two reads (frames cut mid-line, mid-CRLF, mid-UTF-8); the events go
 * through parse_stream_event until an in-band error stops the stream, then stream_end and stream_free.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/gemini/gemini.c"
#include "fuzz_plugin_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEY "AIzaSyFuzz-secret-0123456789abcdefghijk" /* must never appear in a message or URL */

static void check_chunk(const json_t *chunk, const lg_stream_out_t *out)
{
    json_t *choices = json_object_get(chunk, "choices");
    if (!json_is_array(choices))
        abort();
    /* an in-band error never travels with a finish_reason */
    if (out->error != 0 && json_is_string(json_object_get(json_array_get(choices, 0), "finish_reason")))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init("{\"name\":\"fuzz\",\"api_key\":\"" FUZZ_KEY "\",\"options\":{\"thought_signature_cache\":3}}");
    if (size == 0)
        return 0;
    size_t cut = data[0] % size;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (cut > len)
        cut = len;
    json_t *req = json_object();
    lg_call_t call = {
        .struct_size = sizeof(call), .kind = LG_API_CHAT, .stream = 1, .body = req, .upstream_model = "gemini-2.5-flash"};
    fz_stream(&call, text, len, cut, check_chunk, FUZZ_KEY, 0);
    json_decref(req);
    return 0;
}
