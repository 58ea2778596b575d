/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the openai plugin's stream callbacks. The input is split into
 * SSE events at blank lines ("\n\n"); an event starting with "event: error\n"
 * carries that event type; the rest is the data. Then stream_end and free. Odd-sized inputs also go through the
 * numeric-text rewrite (coerce_numeric_content, for Workers AI), which must keep valid JSON valid.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../plugins/openai/openai.c"
#include "fuzz_plugin_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_init("{\"name\":\"fuzz\",\"base_url\":\"https://api.openai.com/v1\"}");
    /* copy so each event can be NUL-terminated as the host's parser guarantees */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    json_t *req = json_object();
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_CHAT, .stream = 1, .body = req, .upstream_model = "gpt-4o"};
    void *ss = NULL;
    if (fz_prov->stream_begin(fz_inst, &call, &ss) != 0)
        abort();
    ((struct ow_stream *)ss)->coerce_numeric_text = (int)(size & 1); /* Workers AI's numeric-token rewrite on odd sizes */
    {
        /* the rewrite keeps valid JSON valid */
        size_t qn = 0;
        char *q = ow_quote_numeric_text(buf, size, &qn);
        if (q != NULL) {
            json_t *a = json_loadb(buf, size, 0, NULL), *b = a != NULL ? json_loadb(q, qn, 0, NULL) : NULL;
            if (a != NULL && b == NULL)
                abort();
            json_decref(a);
            json_decref(b);
            lg_host->free_mem(q);
        }
    }
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
        if (fz_prov->parse_stream_event(fz_inst, ss, &ev, &out, &err) != 0)
            stopped = 1;
        if (out.error != 0)
            stopped = 1; /* the host ends the stream at an in-band error */
        fz_drain(&out, NULL, NULL);
        pos = end + 2;
    }
    if (!stopped) {
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t err = {{0}};
        int rc = fz_prov->stream_end(fz_inst, ss, &out, &err);
        if (rc != 0 && rc != LG_EBADRESPONSE)
            abort();
        fz_drain(&out, NULL, NULL);
    }
    fz_prov->stream_free(fz_inst, ss);
    json_decref(req);
    free(buf);
    return 0;
}
