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
#include "plugin/loader.h"
#include "upstream/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const lg_provider_t *prov;
static void *inst;

struct ctx {
    void *ss;
    int done, stopped;
};

static void init_once(void)
{
    if (prov != NULL)
        return;
    lg_errbuf_t err = {{0}};
    if (lg_plugin_init(lg_plugin_host_api(), &prov, &err) != 0)
        abort();
    json_t *conf = json_pack("{ss ss}", "name", "fuzz", "api_key", "sk-ant-fuzz-secret");
    if (prov->create(conf, &inst, &err) != 0)
        abort();
    json_decref(conf);
}

static void drain(lg_stream_out_t *out)
{
    if (out->num_chunks > LG_STREAM_MAX_CHUNKS)
        abort();
    for (size_t i = 0; i < out->num_chunks; ++i) {
        json_t *choices = json_object_get(out->chunks[i], "choices");
        if (!json_is_object(out->chunks[i]) || json_object_get(out->chunks[i], "usage") != NULL ||
            !json_is_object(json_object_get(json_array_get(choices, 0), "delta")))
            abort();
        json_decref(out->chunks[i]);
    }
    if (out->usage != NULL && !json_is_integer(json_object_get(out->usage, "total_tokens")))
        abort();
    json_decref(out->usage);
    if (memchr(out->error_message, '\0', sizeof(out->error_message)) == NULL ||
        memchr(out->provider_code, '\0', sizeof(out->provider_code)) == NULL ||
        strstr(out->error_message, "sk-ant-fuzz-secret") != NULL)
        abort();
    if (out->error != 0 && (out->error >= 0 || (out->error_status != 0 && (out->error_status < 400 || out->error_status > 599))))
        abort();
}

static int on_event(void *vctx, const lg_sse_event_t *ev)
{
    struct ctx *c = vctx;
    lg_stream_out_t out;
    memset(&out, 0, sizeof(out));
    lg_errbuf_t err = {{0}};
    int rc = prov->parse_stream_event(inst, c->ss, ev, &out, &err);
    int stop = rc != 0 || out.error != 0; /* the host ends the attempt at an in-band error */
    c->done |= out.done;
    drain(&out);
    if (stop)
        c->stopped = 1;
    return stop;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    json_t *req = json_pack("{s{sb}}", "reasoning", "exclude", size > 1 && (data[1] & 1));
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .stream = 1, .body = req, .upstream_model = "claude-x"};
    struct ctx c = {NULL, 0, 0};
    if (prov->stream_begin(inst, &call, &c.ss) != 0)
        abort();
    lg_sse_parser_t sp;
    lg_sse_parser_init(&sp, 1 << 20, on_event, NULL, &c);
    size_t cut = size > 0 ? (size_t)data[0] % (size + 1) : 0;
    if (lg_sse_parser_feed(&sp, (const char *)data, cut) == 0)
        lg_sse_parser_feed(&sp, (const char *)data + cut, size - cut);
    lg_sse_parser_finish(&sp);
    lg_sse_parser_dispose(&sp);
    if (!c.stopped) {
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t err = {{0}};
        int rc = prov->stream_end(inst, c.ss, &out, &err);
        if ((rc != 0 && rc != LG_EBADRESPONSE) || (rc == 0) != (c.done != 0))
            abort();
        drain(&out);
    }
    prov->stream_free(inst, c.ss);
    json_decref(req);
    return 0;
}
