/* SPDX-License-Identifier: MIT */
/*
 * Whole-body responses (see respond.h).
 */
#include <string.h>
#include "core/error.h"
#include "http/respond.h"

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

void lg_add_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    h2o_iovec_t n = h2o_strdup(&req->pool, name, nlen);
    h2o_iovec_t v = h2o_strdup(&req->pool, value, vlen);
    h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base, v.len);
}

const char *lg_req_header(h2o_req_t *req, const char *name, size_t *len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    *len = req->headers.entries[i].value.len;
    return req->headers.entries[i].value.base;
}

void lg_respond_raw(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    req->res.content_length = len;
    h2o_send_inline(req, body, len); /* copies body into the pool */
}

void lg_respond_json(h2o_req_t *req, int status, json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(obj);
    if (body == NULL) {
        static const char fallback[] = "{\"error\":{\"code\":500,\"message\":\"cannot encode response\",\"type\":\"server\"}}";
        lg_respond_raw(req, 500, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    lg_respond_raw(req, status, "application/json", body, strlen(body));
    free(body);
}

void lg_respond_error(h2o_req_t *req, int err, int status, const char *msg, json_t *metadata)
{
    if (status == 0)
        status = lg_err_status(err);
    lg_respond_json(req, status, lg_error_json(err, status, msg, metadata));
}

int lg_req_method_is(h2o_req_t *req, const char *m)
{
    size_t n = strlen(m);
    return req->method.len == n && memcmp(req->method.base, m, n) == 0;
}

void lg_respond_method_not_allowed(h2o_req_t *req, const char *allow)
{
    lg_add_header(req, "allow", allow);
    lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", allow));
}
