/* SPDX-License-Identifier: MIT */
/*
 * Protocol mapping of lg_err_t, done once here: HTTP status, OpenRouter
 * error_type, default message, and the JSON error body of the /v1 API.
 */
#ifndef LG_CORE_ERROR_H
#define LG_CORE_ERROR_H

#include <jansson.h>
#include "llmgate/error.h"

const char *lg_strerror(int err);
/** HTTP status for err (500 for unknown codes). */
int lg_err_status(int err);
/** OpenRouter error_type for err ("server" for unknown codes). */
const char *lg_err_type(int err);

/**
 * Build {"error":{"code":status,"message":msg,"type":type,"metadata":{"error_type":type,...}}}. metadata (may be NULL) is
 * stolen and merged. msg NULL = default message. status 0 = lg_err_status(err). Returns a new reference.
 */
json_t *lg_error_json(int err, int status, const char *msg, json_t *metadata);

#endif
