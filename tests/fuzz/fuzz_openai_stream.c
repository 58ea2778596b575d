/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the openai plugin's stream callbacks. The input is split into
 * SSE events at blank lines ("\n\n"); an event starting with "event: error\n"
 * carries that event type; the rest is the data. Then stream_end and free.
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
    json_t *conf = json_pack("{ss ss}", "name", "fuzz", "base_url", "https://api.openai.com/v1");
    if (prov->create(conf, &inst, &err) != 0)
        abort();
    json_decref(conf);
}

static void drain(lg_stream_out_t *out)
{
    if (out->num_chunks > LG_STREAM_MAX_CHUNKS)
        abort();
    for (size_t i = 0; i < out->num_chunks; ++i) {
        if (!json_is_object(out->chunks[i]) || json_object_get(out->chunks[i], "usage") != NULL)
            abort();
        json_decref(out->chunks[i]);
    }
    if (out->usage != NULL && !json_is_integer(json_object_get(out->usage, "total_tokens")))
        abort();
    json_decref(out->usage);
    if (memchr(out->error_message, '\0', sizeof(out->error_message)) == NULL ||
        memchr(out->provider_code, '\0', sizeof(out->provider_code)) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    /* copy so each event can be NUL-terminated as the host's parser guarantees */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    json_t *req = json_object();
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .stream = 1, .body = req, .upstream_model = "gpt-4o"};
    void *ss = NULL;
    if (prov->stream_begin(inst, &call, &ss) != 0)
        abort();
    size_t pos = 0;
    int stopped = 0;
    while (pos < size && !stopped) {
        char *sep = memmem(buf + pos, size - pos, "\n\n", 2);
        size_t end = sep != NULL ? (size_t)(sep - buf) : size;
        char *ev_start = buf + pos;
        const char *type = "";
        if (end - pos >= 13 && memcmp(ev_start, "event: error\n", 13) == 0) {
            type = "error";
            ev_start += 13;
        }
        buf[end] = '\0';
        lg_sse_event_t ev = {type, strlen(type), ev_start, (size_t)(buf + end - ev_start), "", 0};
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t err = {{0}};
        if (prov->parse_stream_event(inst, ss, &ev, &out, &err) != 0)
            stopped = 1;
        if (out.error != 0)
            stopped = 1; /* the host ends the stream at an in-band error */
        drain(&out);
        pos = end + 2;
    }
    if (!stopped) {
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t err = {{0}};
        int rc = prov->stream_end(inst, ss, &out, &err);
        if (rc != 0 && rc != LG_EBADRESPONSE)
            abort();
        drain(&out);
    }
    prov->stream_free(inst, ss);
    json_decref(req);
    free(buf);
    return 0;
}
