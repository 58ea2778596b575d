/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the MCP JSON-RPC parser (mcp/jsonrpc.c). Byte 0 picks the
 * size cap (none, or small enough to trigger the too-large path); the rest is
 * one HTTP body. Every outcome must be self-consistent: a message has the
 * fields its kind promises, an error is -32700 or -32600 with a printable
 * message, batch elements classify one by one, and the reply built from the
 * result serializes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mcp/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(const lg_jsonrpc_msg_t *m)
{
    switch (m->kind) {
    case LG_JSONRPC_REQUEST:
        if (m->method == NULL || m->method[0] == '\0' || !lg_jsonrpc_id_valid(m->id))
            abort();
        break;
    case LG_JSONRPC_NOTIFICATION:
        if (m->method == NULL || m->id != NULL)
            abort();
        break;
    case LG_JSONRPC_RESPONSE:
        if (m->result == NULL || !lg_jsonrpc_id_valid(m->id))
            abort();
        break;
    case LG_JSONRPC_ERROR_RESPONSE:
        if (!json_is_object(m->error) || (m->id != NULL && !lg_jsonrpc_id_valid(m->id)))
            abort();
        break;
    default:
        abort();
    }
    if (m->params != NULL && !json_is_object(m->params) && !json_is_array(m->params))
        abort();
    /* what the server would send back */
    json_t *reply = m->kind == LG_JSONRPC_REQUEST ? lg_jsonrpc_make_result(m->id, json_object())
                                                  : lg_jsonrpc_make_notification("notifications/x", NULL);
    char *s = json_dumps(reply, JSON_COMPACT);
    if (s == NULL)
        abort();
    free(s);
    json_decref(reply);
}

static void check_err(const lg_jsonrpc_err_t *e)
{
    if (e->code != LG_JSONRPC_PARSE_ERROR && e->code != LG_JSONRPC_INVALID_REQUEST)
        abort();
    if (e->id != NULL && !lg_jsonrpc_id_valid(e->id))
        abort();
    for (const char *p = e->message; *p != '\0'; ++p)
        if ((unsigned char)*p < 0x20)
            abort();
    json_t *reply = lg_jsonrpc_make_error(e->id, e->code, e->message, NULL);
    char *s = json_dumps(reply, JSON_COMPACT);
    if (s == NULL)
        abort();
    free(s);
    json_decref(reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cap = (data[0] & 1) ? (size_t)data[0] * 4 : 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    lg_jsonrpc_msg_t m;
    lg_jsonrpc_err_t e;
    json_t *batch = NULL;
    int rc = lg_jsonrpc_parse(body, len, cap, &m, &batch, &e);
    if (rc == LG_JSONRPC_PARSED_ONE) {
        check_msg(&m);
        lg_jsonrpc_msg_dispose(&m);
    } else if (rc == LG_JSONRPC_PARSED_BATCH) {
        if (!json_is_array(batch) || json_array_size(batch) == 0)
            abort();
        size_t i;
        json_t *v;
        json_array_foreach(batch, i, v)
        {
            if (lg_jsonrpc_from_json(v, &m, &e) == 0) {
                check_msg(&m);
                lg_jsonrpc_msg_dispose(&m);
            } else {
                check_err(&e);
                lg_jsonrpc_err_dispose(&e);
            }
        }
        json_decref(batch);
    } else if (rc == LG_JSONRPC_PARSED_ERROR) {
        if (e.too_large != (cap != 0 && len > cap))
            abort();
        check_err(&e);
        lg_jsonrpc_err_dispose(&e);
    } else {
        abort();
    }
    return 0;
}
