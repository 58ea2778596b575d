/* SPDX-License-Identifier: MIT */
/*
 * The one list of llmgate error codes. Every row carries the HTTP status and
 * the OpenRouter `error_type` it maps to, so the enum, names, statuses and
 * messages can never drift apart (libuv's UV_ERRNO_MAP idea).
 *
 * APPEND ONLY: numbers are part of the plugin ABI; never reuse or remove one.
 */
#ifndef LLMGATE_ERROR_H
#define LLMGATE_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, number, http status, error_type, default message) */
#define LG_ERRNO_MAP(XX)                                                                                                           \
    XX(EINVAL, -1, 400, "invalid_request", "invalid request")                                                                      \
    XX(EMODEL, -2, 400, "model_not_found", "model not found")                                                                      \
    XX(ENOENDPOINT, -3, 404, "no_endpoints", "no endpoint available for this request")                                             \
    XX(ECONSTRAINT, -4, 404, "constraint_filtered", "no endpoint meets the price constraints")                                     \
    XX(ETOOLARGE, -5, 413, "payload_too_large", "request body too large")                                                          \
    XX(EMETHOD, -6, 405, "method_not_allowed", "method not allowed")                                                               \
    XX(ENOTFOUND, -7, 404, "not_found", "not found")                                                                               \
    XX(EAUTH, -8, 401, "authentication", "invalid or missing API key")                                                             \
    XX(ECREDIT, -9, 402, "payment_required", "insufficient credits")                                                               \
    XX(EFORBIDDEN, -10, 403, "permission_denied", "permission denied")                                                             \
    XX(ERATELIMIT, -11, 429, "rate_limit_exceeded", "rate limited")                                                                \
    XX(ETIMEOUT, -12, 504, "timeout", "upstream timed out")                                                                        \
    XX(EUPSTREAM, -13, 502, "provider_unavailable", "upstream provider unavailable")                                               \
    XX(EOVERLOADED, -14, 503, "provider_overloaded", "upstream provider overloaded")                                               \
    XX(EUPSTREAM_RATELIMIT, -15, 429, "rate_limit_exceeded", "upstream provider rate limited the request")                         \
    XX(EBADRESPONSE, -16, 502, "provider_unavailable", "invalid response from upstream provider")                                  \
    XX(EUPSTREAM_REJECTED, -17, 400, "invalid_request", "upstream provider rejected the request")                                  \
    XX(EINTERNAL, -18, 500, "server", "internal error")                                                                            \
    XX(EQUEUEFULL, -19, 503, "temporarily_unavailable", "provider queue full")                                                     \
    XX(ECONTEXT, -20, 400, "context_length_exceeded", "context length exceeded")                                                   \
    XX(EPOLICY, -21, 500, "server", "routing policy failed")                                                                       \
    XX(ECANCELLED, -22, 499, "cancelled", "request cancelled by the client")                                                       \
    XX(EUNSUPPORTED, -23, 400, "invalid_request", "operation not supported by this provider")                                      \
    XX(ESHUTDOWN, -24, 503, "temporarily_unavailable", "gateway is shutting down")                                                 \
    XX(ECONTENT, -25, 403, "content_policy_violation", "content blocked by the provider")                                          \
    XX(EUPSTREAM_AUTH, -26, 502, "provider_unavailable", "upstream provider rejected the gateway's credentials")

typedef enum {
    LG_OK = 0,
#define LG__ERR_ENUM(name, num, status, type, msg) LG_##name = (num),
    LG_ERRNO_MAP(LG__ERR_ENUM)
#undef LG__ERR_ENUM
} lg_err_t;

/** Caller-provided buffer for a human-readable error detail. Never heap-allocated across the plugin boundary. */
typedef struct st_lg_errbuf_t {
    char msg[256];
} lg_errbuf_t;

#ifdef __cplusplus
}
#endif
#endif
