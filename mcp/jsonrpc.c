/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 parsing and building for MCP (see jsonrpc.h). Pure functions:
 * every input either becomes one classified message, a batch array, or an
 * error object the transport can send back as is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "llmgate/error.h"
#include "mcp/jsonrpc.h"

static void set_err(lg_jsonrpc_err_t *err, int code, const json_t *id, const char *msg)
{
    err->code = code;
    err->id = id != NULL && lg_jsonrpc_id_valid(id) ? json_incref((json_t *)id) : NULL;
    snprintf(err->message, sizeof(err->message), "%s", msg);
}

int lg_jsonrpc_id_valid(const json_t *id)
{
    return id != NULL && (json_is_string(id) || json_is_integer(id));
}

void lg_jsonrpc_id_key(const json_t *id, char *buf, size_t n)
{
    if (n == 0)
        return;
    if (json_is_string(id))
        snprintf(buf, n, "s:%s", json_string_value(id));
    else if (json_is_integer(id))
        snprintf(buf, n, "i:%" JSON_INTEGER_FORMAT, json_integer_value(id));
    else
        snprintf(buf, n, "-");
}

int lg_jsonrpc_from_json(json_t *v, lg_jsonrpc_msg_t *out, lg_jsonrpc_err_t *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (!json_is_object(v)) {
        set_err(err, LG_JSONRPC_INVALID_REQUEST, NULL, "a JSON-RPC message must be an object");
        return -1;
    }
    json_t *id = json_object_get(v, "id");
    json_t *jv = json_object_get(v, "jsonrpc");
    if (!json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0) {
        set_err(err, LG_JSONRPC_INVALID_REQUEST, id, "\"jsonrpc\" must be \"2.0\"");
        return -1;
    }
    json_t *method = json_object_get(v, "method");
    json_t *params = json_object_get(v, "params");
    json_t *result = json_object_get(v, "result");
    json_t *error = json_object_get(v, "error");

    if (method != NULL) {
        if (!json_is_string(method) || json_string_length(method) == 0) {
            set_err(err, LG_JSONRPC_INVALID_REQUEST, id, "\"method\" must be a non-empty string");
            return -1;
        }
        if (result != NULL || error != NULL) {
            set_err(err, LG_JSONRPC_INVALID_REQUEST, id, "a request cannot carry \"result\" or \"error\"");
            return -1;
        }
        if (params != NULL && !json_is_object(params) && !json_is_array(params)) {
            set_err(err, LG_JSONRPC_INVALID_REQUEST, id, "\"params\" must be an object");
            return -1;
        }
        if (id != NULL && !lg_jsonrpc_id_valid(id)) {
            /* MCP: ids are strings or integers, never null */
            set_err(err, LG_JSONRPC_INVALID_REQUEST, NULL, "\"id\" must be a string or an integer");
            return -1;
        }
        out->kind = id != NULL ? LG_JSONRPC_REQUEST : LG_JSONRPC_NOTIFICATION;
        out->method = json_string_value(method);
        out->params = params;
    } else if (result != NULL || error != NULL) {
        if (result != NULL && error != NULL) {
            set_err(err, LG_JSONRPC_INVALID_REQUEST, id, "a response cannot carry both \"result\" and \"error\"");
            return -1;
        }
        if (result != NULL) {
            if (!lg_jsonrpc_id_valid(id)) {
                set_err(err, LG_JSONRPC_INVALID_REQUEST, NULL, "a response needs a string or integer \"id\"");
                return -1;
            }
            out->kind = LG_JSONRPC_RESPONSE;
            out->result = result;
        } else {
            /* an error response may carry "id": null when the peer could not read our id */
            if (id != NULL && !json_is_null(id) && !lg_jsonrpc_id_valid(id)) {
                set_err(err, LG_JSONRPC_INVALID_REQUEST, NULL, "\"id\" must be a string, an integer or null");
                return -1;
            }
            if (!json_is_object(error) || !json_is_integer(json_object_get(error, "code")) ||
                !json_is_string(json_object_get(error, "message"))) {
                set_err(err, LG_JSONRPC_INVALID_REQUEST, id, "\"error\" must be an object with integer code and string message");
                return -1;
            }
            out->kind = LG_JSONRPC_ERROR_RESPONSE;
            out->error = error;
            if (json_is_null(id))
                id = NULL;
        }
    } else {
        set_err(err, LG_JSONRPC_INVALID_REQUEST, id, "not a request, notification or response");
        return -1;
    }
    out->root = json_incref(v);
    out->id = id;
    return 0;
}

int lg_jsonrpc_parse(const char *buf, size_t len, size_t max_bytes, lg_jsonrpc_msg_t *out, json_t **batch, lg_jsonrpc_err_t *err)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    *batch = NULL;
    if (max_bytes != 0 && len > max_bytes) {
        char msg[128];
        snprintf(msg, sizeof(msg), "message of %zu bytes exceeds the limit of %zu bytes", len, max_bytes);
        set_err(err, LG_JSONRPC_INVALID_REQUEST, NULL, msg);
        err->too_large = 1;
        return LG_JSONRPC_PARSED_ERROR;
    }
    if (buf == NULL)
        buf = "";
    json_error_t jerr;
    /* duplicate keys would make "id"/"method" ambiguous; jansson also rejects NUL in strings by default */
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (root == NULL) {
        char msg[160];
        snprintf(msg, sizeof(msg), "parse error at line %d, column %d: %.100s", jerr.line, jerr.column, jerr.text);
        /* keep the message one printable line */
        for (char *p = msg; *p != '\0'; ++p)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        set_err(err, LG_JSONRPC_PARSE_ERROR, NULL, msg);
        return LG_JSONRPC_PARSED_ERROR;
    }
    if (json_is_array(root)) {
        if (json_array_size(root) == 0) {
            set_err(err, LG_JSONRPC_INVALID_REQUEST, NULL, "empty batch");
            json_decref(root);
            return LG_JSONRPC_PARSED_ERROR;
        }
        *batch = root;
        return LG_JSONRPC_PARSED_BATCH;
    }
    int rc = lg_jsonrpc_from_json(root, out, err);
    json_decref(root); /* out holds its own reference on success */
    return rc == 0 ? LG_JSONRPC_PARSED_ONE : LG_JSONRPC_PARSED_ERROR;
}

void lg_jsonrpc_msg_dispose(lg_jsonrpc_msg_t *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

void lg_jsonrpc_err_dispose(lg_jsonrpc_err_t *e)
{
    json_decref(e->id);
    e->id = NULL;
}

json_t *lg_jsonrpc_make_result(const json_t *id, json_t *result)
{
    json_t *o = json_object();
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "id", id != NULL ? json_copy((json_t *)id) : json_null());
    json_object_set_new(o, "result", result != NULL ? result : json_object());
    return o;
}

json_t *lg_jsonrpc_make_error(const json_t *id, int code, const char *message, json_t *data)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", json_string(message != NULL ? message : "error"));
    if (data != NULL)
        json_object_set_new(e, "data", data);
    json_t *o = json_object();
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "id", id != NULL ? json_copy((json_t *)id) : json_null());
    json_object_set_new(o, "error", e);
    return o;
}

json_t *lg_jsonrpc_make_request(const json_t *id, const char *method, json_t *params)
{
    json_t *o = json_object();
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "id", json_copy((json_t *)id));
    json_object_set_new(o, "method", json_string(method));
    if (params != NULL)
        json_object_set_new(o, "params", params);
    return o;
}

json_t *lg_jsonrpc_make_notification(const char *method, json_t *params)
{
    json_t *o = json_object();
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "method", json_string(method));
    if (params != NULL)
        json_object_set_new(o, "params", params);
    return o;
}
