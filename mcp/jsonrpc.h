/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 for MCP: bytes -> one classified message (request,
 * notification, response, error response) or a batch array, plus builders for
 * the messages the gateway sends. Pure: no I/O, no globals, fuzzable. The
 * JSON-RPC error codes MCP uses, and the mapping from lg_err_t, live here.
 */
#ifndef LG_MCP_JSONRPC_H
#define LG_MCP_JSONRPC_H

#include <stddef.h>
#include <jansson.h>

/* JSON-RPC / MCP error codes (mcp.md §6) */
#define LG_JSONRPC_PARSE_ERROR (-32700)
#define LG_JSONRPC_INVALID_REQUEST (-32600)
#define LG_JSONRPC_METHOD_NOT_FOUND (-32601)
#define LG_JSONRPC_INVALID_PARAMS (-32602)
#define LG_JSONRPC_INTERNAL_ERROR (-32603)
#define LG_JSONRPC_SERVER_ERROR (-32000) /* transport errors (406, 400 ...), policy denials, rate limits */
#define LG_JSONRPC_UNAUTHORIZED (-32001) /* 401 body */
#define LG_MCP_RESOURCE_NOT_FOUND (-32002)
#define LG_MCP_REQUEST_CANCELLED (-32800) /* local: a server->client request abandoned (cancel, timeout) */

typedef enum {
    LG_JSONRPC_REQUEST = 1,       /* method + id */
    LG_JSONRPC_NOTIFICATION = 2,  /* method, no id */
    LG_JSONRPC_RESPONSE = 3,      /* id + result */
    LG_JSONRPC_ERROR_RESPONSE = 4 /* id (may be NULL when the peer could not tell) + error */
} lg_jsonrpc_kind_t;

/** One message. Every pointer except root is borrowed from root; dispose releases root. */
typedef struct lg_jsonrpc_msg {
    lg_jsonrpc_kind_t kind;
    json_t *root;       /* owned: the message object */
    json_t *id;         /* string or integer; NULL for notifications (and error responses with "id":null) */
    const char *method; /* requests and notifications */
    json_t *params;     /* object or array, NULL if absent */
    json_t *result;     /* responses */
    json_t *error;      /* error responses: object with integer "code" and string "message" */
} lg_jsonrpc_msg_t;

/** Why a body was refused. id is a new reference to the offending message's id when it could be read, else NULL. */
typedef struct lg_jsonrpc_err {
    int code;          /* LG_JSONRPC_PARSE_ERROR or LG_JSONRPC_INVALID_REQUEST */
    int too_large;     /* the body exceeded max_bytes (transport answers 413) */
    json_t *id;        /* owned; release with lg_jsonrpc_err_dispose */
    char message[160]; /* one printable line for the client */
} lg_jsonrpc_err_t;

/** Parse result of lg_jsonrpc_parse. */
enum { LG_JSONRPC_PARSED_ERROR = -1, LG_JSONRPC_PARSED_ONE = 0, LG_JSONRPC_PARSED_BATCH = 1 };

/**
 * Parse one HTTP body (or one stdio line) of len bytes. max_bytes caps len (0 = no cap). Returns
 * LG_JSONRPC_PARSED_ONE with *out filled (dispose it), LG_JSONRPC_PARSED_BATCH with *batch set to the non-empty array
 * (new reference; classify the elements with lg_jsonrpc_from_json; whether batches are allowed is the caller's
 * decision, by negotiated version), or LG_JSONRPC_PARSED_ERROR with *err filled (dispose it). Never crashes on any input.
 */
int lg_jsonrpc_parse(const char *buf, size_t len, size_t max_bytes, lg_jsonrpc_msg_t *out, json_t **batch, lg_jsonrpc_err_t *err);

/** Classify one already-parsed value (a batch element). Takes a new reference on v. Returns 0, or -1 with *err. */
int lg_jsonrpc_from_json(json_t *v, lg_jsonrpc_msg_t *out, lg_jsonrpc_err_t *err);

void lg_jsonrpc_msg_dispose(lg_jsonrpc_msg_t *m);
void lg_jsonrpc_err_dispose(lg_jsonrpc_err_t *e);

/** 1 if id is a valid JSON-RPC id for MCP: a string or an integer (never null, never a real). */
int lg_jsonrpc_id_valid(const json_t *id);
/** Canonical table key for an id: "s:<string>" or "i:<integer>", cut to n-1 bytes. Distinguishes "1" from 1. */
void lg_jsonrpc_id_key(const json_t *id, char *buf, size_t n);

/** {"jsonrpc":"2.0","id":id,"result":result}. id is copied (borrowed), result stolen. New reference. */
json_t *lg_jsonrpc_make_result(const json_t *id, json_t *result);
/** {"jsonrpc":"2.0","id":id|null,"error":{"code","message","data"?}}. id borrowed (NULL = null), data stolen (may be NULL). */
json_t *lg_jsonrpc_make_error(const json_t *id, int code, const char *message, json_t *data);
/** Request to the peer; id borrowed, params stolen (may be NULL). */
json_t *lg_jsonrpc_make_request(const json_t *id, const char *method, json_t *params);
/** Notification; params stolen (may be NULL). */
json_t *lg_jsonrpc_make_notification(const char *method, json_t *params);

#endif
