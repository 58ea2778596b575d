/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the MCP parsers of client-controlled tokens: merged-list cursors (mcp/naming.c), namespaced
 * resource URIs, sealed requestState (mcp/mrtr.c) and the 2026-07-28 request checks (mcp/era.c). Byte 0 picks the
 * parser; the rest is the input. A decoded cursor re-encodes to a token that decodes to the same position; a split
 * URI points inside the input; an opened state is an object (the fuzzer cannot forge the MAC, so it never opens);
 * the checks answer NULL or an error object with one of the revision's codes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mcp/era.h"
#include "mcp/jsonrpc.h"
#include "mcp/mrtr.h"
#include "mcp/naming.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_cursor(const char *s, size_t n)
{
    lg_mcp_cursor_t c;
    if (lg_mcp_cursor_decode(s, n, &c) != 0) {
        if (c.provider != NULL || c.pcursor != NULL)
            abort();
        return;
    }
    char *again = lg_mcp_cursor_encode(c.index, c.provider, c.pcursor, c.skip);
    lg_mcp_cursor_t d;
    if (lg_mcp_cursor_decode(again, strlen(again), &d) != 0 || d.index != c.index || d.skip != c.skip ||
        strcmp(d.provider, c.provider) != 0 || (c.pcursor == NULL) != (d.pcursor == NULL) ||
        (c.pcursor != NULL && strcmp(c.pcursor, d.pcursor) != 0))
        abort();
    lg_mcp_cursor_dispose(&d);
    lg_mcp_cursor_dispose(&c);
    free(again);
}

static void fuzz_uri(const char *s, size_t n)
{
    const char *pre, *rest;
    size_t pl;
    if (lg_mcp_uri_split(s, &pre, &pl, &rest)) {
        if (pre < s || pre + pl > s + n || rest <= pre || rest > s + n || *rest == '\0')
            abort();
        char *p = malloc(pl + 1);
        memcpy(p, pre, pl);
        p[pl] = '\0';
        char *back = lg_mcp_uri_namespace(p, rest);
        if (strcmp(back, s) != 0)
            abort();
        free(back);
        free(p);
    }
}

static void fuzz_state(const char *s, size_t n)
{
    json_t *st = lg_mcp_mrtr_open(s, n, "key");
    if (st != NULL && !json_is_object(st))
        abort();
    json_decref(st);
}

static void fuzz_check(const char *s, size_t n)
{
    /* the input is a JSON params object; the headers are the first line split at '|' */
    const char *nl = memchr(s, '\n', n);
    size_t hl = nl != NULL ? (size_t)(nl - s) : 0;
    json_t *params = json_loadb(nl != NULL ? nl + 1 : s, nl != NULL ? n - hl - 1 : n, 0, NULL);
    lg_mcp_era_headers_t h;
    memset(&h, 0, sizeof(h));
    const char *bar = hl > 0 ? memchr(s, '|', hl) : NULL;
    if (hl > 0) {
        h.version = s;
        h.version_len = bar != NULL ? (size_t)(bar - s) : hl;
    }
    if (bar != NULL) {
        h.method = bar + 1;
        h.method_len = hl - (size_t)(bar + 1 - s);
    }
    const char *method = json_string_value(json_object_get(params, "method"));
    json_t *e = lg_mcp_era_check(&h, method != NULL ? method : "tools/list", params);
    if (e != NULL) {
        int code = (int)json_integer_value(json_object_get(e, "code"));
        if (code != LG_MCP_HEADER_MISMATCH && code != LG_MCP_UNSUPPORTED_VERSION && code != LG_JSONRPC_INVALID_PARAMS)
            abort();
        if (json_string_value(json_object_get(e, "message")) == NULL)
            abort();
    }
    (void)lg_mcp_era_of(0, h.version, h.version_len, method, params);
    json_decref(e);
    json_decref(params);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    size_t n = strlen(s); /* the parsers take NUL-terminated client strings */
    switch (data[0] % 4) {
    case 0:
        fuzz_cursor(s, n);
        break;
    case 1:
        fuzz_uri(s, n);
        break;
    case 2:
        fuzz_state(s, n);
        break;
    default:
        fuzz_check(s, size - 1);
        break;
    }
    free(s);
    return 0;
}
