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
#include "plugin/loader.h"
#include "upstream/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEY "AIzaSyFuzz-secret-0123456789abcdefghijk" /* must never appear in a message or URL */

static const lg_provider_t *prov;
static void *inst;

static void init_once(void)
{
    if (prov != NULL)
        return;
    lg_errbuf_t err = {{0}};
    if (lg_plugin_init(lg_plugin_host_api(), &prov, &err) != 0)
        abort();
    json_t *conf = json_pack("{ss ss s{si}}", "name", "fuzz", "api_key", FUZZ_KEY, "options",
                             "thought_signature_cache", 3);
    if (prov->create(conf, &inst, &err) != 0)
        abort();
    json_decref(conf);
}

static void drain(lg_stream_out_t *out)
{
    if (out->num_chunks > LG_STREAM_MAX_CHUNKS)
        abort();
    for (size_t i = 0; i < out->num_chunks; ++i) {
        json_t *c = out->chunks[i];
        if (!json_is_object(c) || json_object_get(c, "usage") != NULL || !json_is_array(json_object_get(c, "choices")))
            abort();
        /* an in-band error never travels with a finish_reason */
        if (out->error != 0 && json_is_string(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "finish_reason")))
            abort();
        json_decref(c);
    }
    if (out->usage != NULL && !json_is_integer(json_object_get(out->usage, "total_tokens")))
        abort();
    json_decref(out->usage);
    if (memchr(out->error_message, '\0', sizeof(out->error_message)) == NULL ||
        memchr(out->provider_code, '\0', sizeof(out->provider_code)) == NULL || strstr(out->error_message, FUZZ_KEY) != NULL)
        abort();
}

struct ctx {
    void *ss;
    int stopped;
};

static int on_event(void *vctx, const lg_sse_event_t *ev)
{
    struct ctx *c = vctx;
    lg_stream_out_t out;
    memset(&out, 0, sizeof(out));
    lg_errbuf_t err = {{0}};
    int rc = prov->parse_stream_event(inst, c->ss, ev, &out, &err);
    int stop = rc != 0 || out.error != 0; /* the host ends the stream at an in-band error */
    drain(&out);
    if (stop)
        c->stopped = 1;
    return stop;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size == 0)
        return 0;
    size_t cut = data[0] % size;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (cut > len)
        cut = len;
    json_t *req = json_object();
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .stream = 1, .body = req, .upstream_model = "gemini-2.5-flash"};
    struct ctx c = {NULL, 0};
    if (prov->stream_begin(inst, &call, &c.ss) != 0)
        abort();
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 1 << 20, on_event, NULL, &c);
    if (lg_sse_parser_feed(&p, text, cut) == 0)
        lg_sse_parser_feed(&p, text + cut, len - cut);
    lg_sse_parser_finish(&p);
    lg_sse_parser_dispose(&p);
    if (!c.stopped) {
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t err = {{0}};
        int rc = prov->stream_end(inst, c.ss, &out, &err);
        if (rc != 0 && rc != LG_EBADRESPONSE)
            abort();
        drain(&out);
    }
    prov->stream_free(inst, c.ss);
    json_decref(req);
    return 0;
}
