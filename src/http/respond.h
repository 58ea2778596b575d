/* SPDX-License-Identifier: MIT */
/*
 * Whole-body responses: JSON documents and errors in the API's error shape.
 * Bodies are copied into req->pool, so callers may free theirs right away.
 */
#ifndef LG_HTTP_RESPOND_H
#define LG_HTTP_RESPOND_H

#include <h2o.h>
#include <jansson.h>

/** Send body as the whole response with the given status and content type. */
void lg_respond_raw(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);
/** Dump obj (steals the reference) compactly and send it as application/json. */
void lg_respond_json(h2o_req_t *req, int status, json_t *obj);
/** Send the /v1 error shape for err; status 0 = the error's own status; msg NULL = default; metadata stolen, may be NULL. */
void lg_respond_error(h2o_req_t *req, int err, int status, const char *msg, json_t *metadata);
/** Add a response header; name and value are copied into the pool. */
void lg_add_header(h2o_req_t *req, const char *name, const char *value);
/** Request header value (lower-case name) or NULL; *len receives the length. */
const char *lg_req_header(h2o_req_t *req, const char *name, size_t *len);
/** 1 if the request method is exactly m ("GET", "POST", ...). */
int lg_req_method_is(h2o_req_t *req, const char *m);
/** 405 in the /v1 error shape with an Allow header (allow = "GET, POST", ...; also in metadata.allow). */
void lg_respond_method_not_allowed(h2o_req_t *req, const char *allow);

#endif
