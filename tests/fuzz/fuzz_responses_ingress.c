/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the OpenAI Responses skin. The input is parsed as JSON and run through the request translator
 * (invariants: success gives an object with a messages array and an echo object; failure gives a non-empty message and
 * nothing else), the response translator, and, when it is an array, through the stream translator as a chunk sequence
 * (every event framed "event: X\ndata: {...}\n\n", X equal to the data's type, sequence numbers 0, 1, 2, ...).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http/responses_ingress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sse(const lg_buf_t *out)
{
    size_t pos = 0;
    json_int_t seq = 0;
    while (pos < out->len) {
        const char *ev = out->data + pos;
        const char *end = strstr(ev, "\n\n");
        if (end == NULL)
            abort();
        if (ev[0] == ':') { /* keep-alive comment */
            pos = (size_t)(end + 2 - out->data);
            continue;
        }
        if (strncmp(ev, "event: ", 7) != 0)
            abort();
        const char *nl = strchr(ev, '\n');
        if (nl == NULL || nl >= end || strncmp(nl + 1, "data: ", 6) != 0)
            abort();
        json_t *j = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (!json_is_object(j) || type == NULL || strlen(type) != (size_t)(nl - ev - 7) ||
            memcmp(type, ev + 7, strlen(type)) != 0 || json_integer_value(json_object_get(j, "sequence_number")) != seq++)
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
    json_t *out = NULL, *echo = NULL;
    int rc = lg_responses_request_to_openai(in, &out, &echo, err, sizeof(err));
    if (rc == 0) {
        if (!json_is_object(out) || !json_is_array(json_object_get(out, "messages")) || !json_is_object(echo))
            abort();
        char *s = json_dumps(out, JSON_COMPACT);
        if (s == NULL)
            abort();
        free(s);
    } else if (out != NULL || echo != NULL || memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        abort();
    }

    json_t *resp = lg_responses_response_from_openai(in, "resp_fuzz", "m", 1, echo);
    if (!json_is_object(resp) || !json_is_array(json_object_get(resp, "output")) || !json_is_object(json_object_get(resp, "usage")))
        abort();
    json_decref(resp);

    if (json_is_array(in)) {
        lg_buf_t sse;
        lg_buf_init(&sse, 64u << 20);
        lg_responses_stream_t *st = lg_responses_stream_create("resp_fuzz", "m", 1, echo);
        size_t i;
        json_t *chunk;
        json_array_foreach(in, i, chunk) lg_responses_stream_chunk(st, chunk, &sse);
        if (size % 2 == 0)
            lg_responses_stream_finish(st, NULL, &sse);
        else
            lg_responses_stream_error(st, -13, "boom", &sse);
        check_sse(&sse);
        lg_responses_stream_destroy(st);
        lg_buf_dispose(&sse);
    }
    json_decref(out);
    json_decref(echo);
    json_decref(in);
    return 0;
}
