/* SPDX-License-Identifier: MIT */
/*
 * lg_err_t → names, statuses, error_type strings and the OpenRouter error body
 * (from LG_ERRNO_MAP), and the classification columns every protocol and the
 * retry logic look up (LG_ERR_CLASS_MAP below): one table, no switches.
 */
#include <stddef.h>
#include "core/error.h"

/*
 * XX(name, retryable, metrics class, JSON-RPC code, Anthropic error type)
 *
 * One row per LG_ERRNO_MAP row, in the same order (checked at compile time below). retryable: another attempt may
 * succeed, so the default on_error moves to the next endpoint (credential and context-length refusals are per
 * endpoint: another provider may take the request). JSON-RPC: -32602 invalid params, -32601 method not found, -32600
 * invalid request, -32603 internal, -32001 unauthorized, -32000 server error (the implementation-defined range for
 * rate limits, denials and upstream trouble, answered with HTTP 200). Anthropic: the `error.type` its API uses for the
 * same condition.
 */
#define LG_ERR_CLASS_MAP(XX)                                                                                                       \
    XX(EINVAL, 0, REJECTED, -32602, "invalid_request_error")                                                                       \
    XX(EMODEL, 0, REJECTED, -32602, "invalid_request_error")                                                                       \
    XX(ENOENDPOINT, 0, OTHER, -32000, "not_found_error")                                                                           \
    XX(ECONSTRAINT, 0, OTHER, -32000, "not_found_error")                                                                           \
    XX(ETOOLARGE, 0, REJECTED, -32600, "request_too_large")                                                                        \
    XX(EMETHOD, 0, OTHER, -32600, "invalid_request_error")                                                                         \
    XX(ENOTFOUND, 0, OTHER, -32601, "not_found_error")                                                                             \
    XX(EAUTH, 0, AUTH, -32001, "authentication_error")                                                                             \
    XX(ECREDIT, 0, OTHER, -32000, "billing_error")                                                                                 \
    XX(EFORBIDDEN, 0, OTHER, -32000, "permission_error")                                                                           \
    XX(ERATELIMIT, 0, RATE_LIMITED, -32000, "rate_limit_error")                                                                    \
    XX(ETIMEOUT, 1, TIMEOUT, -32000, "timeout_error")                                                                              \
    XX(EUPSTREAM, 1, SERVER_ERROR, -32000, "api_error")                                                                            \
    XX(EOVERLOADED, 1, OVERLOADED, -32000, "overloaded_error")                                                                     \
    XX(EUPSTREAM_RATELIMIT, 1, RATE_LIMITED, -32000, "rate_limit_error")                                                           \
    XX(EBADRESPONSE, 1, BAD_RESPONSE, -32000, "api_error")                                                                         \
    XX(EUPSTREAM_REJECTED, 0, REJECTED, -32000, "invalid_request_error")                                                           \
    XX(EINTERNAL, 0, OTHER, -32603, "api_error")                                                                                   \
    XX(EQUEUEFULL, 1, QUEUE_FULL, -32000, "overloaded_error")                                                                      \
    XX(ECONTEXT, 1, REJECTED, -32000, "invalid_request_error")                                                                     \
    XX(EPOLICY, 0, OTHER, -32603, "api_error")                                                                                     \
    XX(ECANCELLED, 0, CANCELLED, -32000, "invalid_request_error")                                                                  \
    XX(EUNSUPPORTED, 0, REJECTED, -32602, "invalid_request_error")                                                                 \
    XX(ESHUTDOWN, 0, OTHER, -32000, "overloaded_error")                                                                            \
    XX(ECONTENT, 0, REJECTED, -32000, "permission_error")                                                                          \
    XX(EUPSTREAM_AUTH, 1, AUTH, -32000, "api_error")

struct class_row {
    int num;
    int retryable;
    lg_errclass_t cls;
    int jsonrpc;
    const char *anthropic_type;
};

static const struct class_row class_rows[] = {
#define CLASS_ROW(name, retry, cls, rpc, atype) {LG_##name, retry, LG_ERRCLASS_##cls, rpc, atype},
    LG_ERR_CLASS_MAP(CLASS_ROW)
#undef CLASS_ROW
};

/* Both tables list the codes densely from -1 in the same order: a row added to one and not the other fails here. */
#define CLASS_ORDER(name, retry, cls, rpc, atype) +((LG_##name) == -(__COUNTER__ - lg__class_counter_base))
enum { lg__class_counter_base = __COUNTER__ };
_Static_assert((0 LG_ERR_CLASS_MAP(CLASS_ORDER)) == sizeof(class_rows) / sizeof(class_rows[0]),
               "LG_ERR_CLASS_MAP must list every lg_err_t in LG_ERRNO_MAP order");
#undef CLASS_ORDER
#define COUNT_ERR(name, num, status, type, msg) +1
_Static_assert((0 LG_ERRNO_MAP(COUNT_ERR)) == sizeof(class_rows) / sizeof(class_rows[0]),
               "LG_ERR_CLASS_MAP needs one row per LG_ERRNO_MAP row");
#undef COUNT_ERR

struct err_row {
    int num;
    const char *name;
    int status;
    const char *type;
    const char *msg;
};

static const struct err_row rows[] = {
#define ROW(name, num, status, type, msg) {num, "LG_" #name, status, type, msg},
    LG_ERRNO_MAP(ROW)
#undef ROW
};

static const struct err_row *find_row(int err)
{
    /* codes are dense negatives starting at -1 */
    size_t idx = (size_t)(-err - 1);
    if (err < 0 && idx < sizeof(rows) / sizeof(rows[0]) && rows[idx].num == err)
        return &rows[idx];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); ++i)
        if (rows[i].num == err)
            return &rows[i];
    return NULL;
}

const char *lg_err_name(int err)
{
    const struct err_row *r = find_row(err);
    return err == 0 ? "LG_OK" : r != NULL ? r->name : "LG_UNKNOWN";
}

const char *lg_strerror(int err)
{
    const struct err_row *r = find_row(err);
    return err == 0 ? "ok" : r != NULL ? r->msg : "unknown error";
}

int lg_err_status(int err)
{
    const struct err_row *r = find_row(err);
    return r != NULL ? r->status : 500;
}

const char *lg_err_type(int err)
{
    const struct err_row *r = find_row(err);
    return r != NULL ? r->type : "server";
}

json_t *lg_error_json(int err, int status, const char *msg, json_t *metadata)
{
    const char *type = lg_err_type(err);
    if (status == 0)
        status = lg_err_status(err);
    if (metadata == NULL)
        metadata = json_object();
    if (json_object_get(metadata, "error_type") == NULL)
        json_object_set_new(metadata, "error_type", json_string(type));
    return json_pack("{s:{s:i,s:s,s:s,s:o}}", "error", "code", status, "message", msg != NULL ? msg : lg_strerror(err), "type",
                     type, "metadata", metadata);
}

static const struct class_row *find_class(int err)
{
    size_t idx = (size_t)(-err - 1);
    return err < 0 && idx < sizeof(class_rows) / sizeof(class_rows[0]) ? &class_rows[idx] : NULL;
}

int lg_err_retryable(int err)
{
    const struct class_row *r = find_class(err);
    return r != NULL ? r->retryable : 0;
}

lg_errclass_t lg_err_class(int err)
{
    const struct class_row *r = find_class(err);
    return r != NULL ? r->cls : LG_ERRCLASS_OTHER;
}

int lg_err_jsonrpc_code(int err)
{
    const struct class_row *r = find_class(err);
    return err == 0 ? 0 : r != NULL ? r->jsonrpc : -32000;
}

const char *lg_err_anthropic_type(int err)
{
    const struct class_row *r = find_class(err);
    return r != NULL ? r->anthropic_type : "api_error";
}

int lg_err_anthropic_status(int err)
{
    /* Anthropic answers overload with its own 529 (overloaded_error), which its SDKs retry */
    if (err == LG_EOVERLOADED || err == LG_EQUEUEFULL)
        return 529;
    return lg_err_status(err);
}
