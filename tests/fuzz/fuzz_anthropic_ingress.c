/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the Anthropic Messages skin. The input is parsed as JSON and
 * run through the request translator (invariants: success gives an object with
 * a messages array; failure gives a non-empty message), the response translator,
 * and, when it is an array, through the stream translator as a chunk sequence
 * (every event must be framed "event: X\ndata: {...}\n\n").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http/anthropic_ingress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sse(const lg_buf_t *out)
{
    size_t pos = 0;
    while (pos < out->len) {
        const char *ev = out->data + pos;
        const char *end = strstr(ev, "\n\n");
        if (end == NULL || strncmp(ev, "event: ", 7) != 0)
            abort();
        const char *nl = strchr(ev, '\n');
        if (nl == NULL || nl >= end || strncmp(nl + 1, "data: ", 6) != 0)
            abort();
        json_t *j = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
        if (!json_is_object(j))
            abort();
        json_decref(j);
        pos = (size_t)(end + 2 - out->data);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (in == NULL)
        return 0;
    char err[256];
    json_t *out = NULL;
    int rc = lg_anthropic_request_to_openai(in, &out, err, sizeof(err));
    if (rc == 0) {
        if (!json_is_object(out) || !json_is_array(json_object_get(out, "messages")) ||
            !json_is_string(json_object_get(out, "model")))
            abort();
        char *s = json_dumps(out, JSON_COMPACT);
        if (s == NULL)
            abort();
        free(s);
        json_decref(out);
    } else if (out != NULL || memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort();
    }

    json_t *msg = lg_anthropic_response_from_openai(in, "msg_fuzz");
    if (!json_is_object(msg) || !json_is_array(json_object_get(msg, "content")))
        abort();
    json_decref(msg);

    if (json_is_array(in)) {
        lg_buf_t sse;
        lg_buf_init(&sse, 64u << 20);
        lg_anthropic_stream_t *st = lg_anthropic_stream_create("msg_fuzz", "m", 3);
        size_t i;
        json_t *chunk;
        json_array_foreach(in, i, chunk) lg_anthropic_stream_chunk(st, chunk, &sse);
        if (size % 2 == 0)
            lg_anthropic_stream_finish(st, NULL, &sse);
        else
            lg_anthropic_stream_error(st, -13, "boom", &sse);
        check_sse(&sse);
        lg_anthropic_stream_destroy(st);
        lg_buf_dispose(&sse);
    }
    json_decref(in);
    return 0;
}
