/* SPDX-License-Identifier: MIT */
/*
 * Protocol mapping of lg_err_t, done once here: HTTP status, OpenRouter
 * error_type, default message, the JSON error body of the /v1 API, and the
 * classification columns (retryable, metrics class, JSON-RPC code, Anthropic
 * error type and status) every other module looks up instead of switching.
 */
#ifndef LG_CORE_ERROR_H
#define LG_CORE_ERROR_H

#include <jansson.h>
#include "llmgate/error.h"

const char *lg_err_name(int err);
const char *lg_strerror(int err);
/** HTTP status for err (500 for unknown codes). */
int lg_err_status(int err);
/** OpenRouter error_type for err ("server" for unknown codes). */
const char *lg_err_type(int err);

/** Attempt-failure classes, the `class` label of llmgate_upstream_attempts_total. */
typedef enum {
    LG_ERRCLASS_TIMEOUT,
    LG_ERRCLASS_CONNECT,
    LG_ERRCLASS_RATE_LIMITED,
    LG_ERRCLASS_OVERLOADED,
    LG_ERRCLASS_SERVER_ERROR,
    LG_ERRCLASS_BAD_RESPONSE,
    LG_ERRCLASS_REJECTED,
    LG_ERRCLASS_AUTH,
    LG_ERRCLASS_QUEUE_FULL,
    LG_ERRCLASS_CANCELLED,
    LG_ERRCLASS_OTHER,
    LG_ERRCLASS__COUNT
} lg_errclass_t;

/** 1 when another attempt (the same endpoint again or the next one) may succeed after err; 0 for unknown codes. */
int lg_err_retryable(int err);
/** Metrics class of a failed attempt with err (LG_ERRCLASS_OTHER for 0 and unknown codes). */
lg_errclass_t lg_err_class(int err);
/** JSON-RPC 2.0 error code for err on the MCP endpoint (0 for LG_OK, -32000 "server error" for unknown codes). */
int lg_err_jsonrpc_code(int err);
/** Anthropic Messages `error.type` for err ("api_error" for unknown codes). Static string. */
const char *lg_err_anthropic_type(int err);
/** HTTP status on the Anthropic skin: the error's own status, except overload (529, which Anthropic's SDKs retry). */
int lg_err_anthropic_status(int err);

/**
 * Build {"error":{"code":status,"message":msg,"type":type,"metadata":{"error_type":type,...}}}. metadata (may be NULL) is
 * stolen and merged. msg NULL = default message. status 0 = lg_err_status(err). Returns a new reference.
 */
json_t *lg_error_json(int err, int status, const char *msg, json_t *metadata);

#endif
