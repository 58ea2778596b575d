/* SPDX-License-Identifier: MIT */
/*
 * OpenAI wire format shared by the `openai` and `mock` plugins: parse chat /
 * legacy completions / embeddings bodies and SSE chunks, classify OpenAI-style
 * errors. Header-only so each plugin .so stays self-contained. The including
 * file must have `LG_PLUGIN_DECLARE_HOST;` before including this header.
 */
#ifndef LG_PLUGINS_OPENAI_WIRE_H
#define LG_PLUGINS_OPENAI_WIRE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "llmgate/plugin.h"

#define OW_FN static __attribute__((unused))

/* ---- small helpers ------------------------------------------------------------------------------------------------ */

OW_FN char *ow_strndup(const char *s, size_t n)
{
    char *p = lg_host->alloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

OW_FN char *ow_strdup(const char *s)
{
    return ow_strndup(s, strlen(s));
}

OW_FN char *ow_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
OW_FN char *ow_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = lg_host->alloc(n > 0 ? (size_t)n + 1 : 1);
    va_start(ap, fmt);
    vsnprintf(p, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
    va_end(ap);
    return p;
}

OW_FN void ow_seterr(lg_errbuf_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
OW_FN void ow_seterr(lg_errbuf_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* Copies at most cap-1 bytes of text, turning control characters into spaces (messages end up in logs and JSON). */
OW_FN void ow_copy_text(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    /* do not leave half a UTF-8 sequence at a truncation point */
    if (n < len) {
        size_t start = n;
        while (start > 0 && ((unsigned char)dst[start - 1] & 0xC0) == 0x80)
            --start;
        if (start > 0) {
            unsigned char lead = (unsigned char)dst[start - 1];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (n - (start - 1) < want)
                n = start - 1;
        }
    }
    dst[n] = '\0';
}

/* Removes credentials from an upstream message in place: the configured key, and "sk-..." style tokens. */
OW_FN void ow_redact(char *msg, size_t cap, const char *api_key)
{
    char buf[512];
    size_t o = 0, klen = api_key != NULL ? strlen(api_key) : 0;
    for (size_t i = 0; msg[i] != '\0' && o + 8 < sizeof(buf);) {
        if (klen >= 6 && strncmp(msg + i, api_key, klen) == 0) {
            memcpy(buf + o, "***", 3), o += 3, i += klen;
            continue;
        }
        if (strncmp(msg + i, "sk-", 3) == 0 &&
            (i == 0 || msg[i - 1] == ' ' || msg[i - 1] == ':' || msg[i - 1] == '\'' || msg[i - 1] == '"' || msg[i - 1] == '(')) {
            size_t j = i + 3;
            while ((msg[j] >= 'a' && msg[j] <= 'z') || (msg[j] >= 'A' && msg[j] <= 'Z') || (msg[j] >= '0' && msg[j] <= '9') ||
                   msg[j] == '-' || msg[j] == '_' || msg[j] == '*')
                ++j;
            if (j - i > 6) {
                memcpy(buf + o, "sk-***", 6), o += 6, i = j;
                continue;
            }
        }
        buf[o++] = msg[i++];
    }
    buf[o] = '\0';
    ow_copy_text(msg, cap, buf, o);
}

OW_FN int ow_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Token count from a usage member: integers as-is, finite non-negative reals truncated, anything else absent. */
OW_FN json_int_t ow_tokens(const json_t *v, int *present)
{
    *present = 0;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        *present = 1;
        return n < 0 ? 0 : n;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d < 9.0e15) {
            *present = 1;
            return (json_int_t)d;
        }
    }
    return 0;
}

/** Makes sure a usage object has integer prompt_tokens, completion_tokens and total_tokens; keeps every other member. */
OW_FN void ow_usage_normalize(json_t *u)
{
    int hp, hc, ht;
    json_int_t p = ow_tokens(json_object_get(u, "prompt_tokens"), &hp);
    json_int_t c = ow_tokens(json_object_get(u, "completion_tokens"), &hc);
    json_int_t t = ow_tokens(json_object_get(u, "total_tokens"), &ht);
    /* some OpenAI-compatible servers use the Responses API names */
    if (!hp)
        p = ow_tokens(json_object_get(u, "input_tokens"), &hp);
    if (!hc)
        c = ow_tokens(json_object_get(u, "output_tokens"), &hc);
    if (!ht) {
        const json_int_t cap = (json_int_t)1 << 52;
        t = (p > cap ? cap : p) + (c > cap ? cap : c);
    }
    json_object_set_new(u, "prompt_tokens", json_integer(p));
    json_object_set_new(u, "completion_tokens", json_integer(c));
    json_object_set_new(u, "total_tokens", json_integer(t));
}

/* ---- error classification ----------------------------------------------------------------------------------------- */

/* Error from OpenAI-style `code`/`type` strings; 0 when unknown. */
OW_FN int ow_err_from_code(const char *s)
{
    static const struct {
        const char *code;
        int err;
    } map[] = {
        {"context_length_exceeded", LG_ECONTEXT},
        {"string_above_max_length", LG_ECONTEXT},
        {"rate_limit_exceeded", LG_EUPSTREAM_RATELIMIT},
        {"rate_limit_error", LG_EUPSTREAM_RATELIMIT},
        {"requests", LG_EUPSTREAM_RATELIMIT},
        {"tokens", LG_EUPSTREAM_RATELIMIT},
        {"too_many_requests", LG_EUPSTREAM_RATELIMIT},
        {"insufficient_quota", LG_EUPSTREAM_AUTH},
        {"billing_hard_limit_reached", LG_EUPSTREAM_AUTH},
        {"invalid_api_key", LG_EUPSTREAM_AUTH},
        {"authentication_error", LG_EUPSTREAM_AUTH},
        {"permission_error", LG_EUPSTREAM_AUTH},
        {"permission_denied", LG_EUPSTREAM_AUTH},
        {"unauthorized", LG_EUPSTREAM_AUTH},
        {"overloaded", LG_EOVERLOADED},
        {"overloaded_error", LG_EOVERLOADED},
        {"server_overloaded", LG_EOVERLOADED},
        {"engine_overloaded", LG_EOVERLOADED},
        {"service_unavailable", LG_EOVERLOADED},
        {"content_filter", LG_ECONTENT},
        {"content_policy_violation", LG_ECONTENT},
        {"model_not_found", LG_EUPSTREAM_REJECTED},
        {"invalid_request_error", LG_EUPSTREAM_REJECTED},
        {"timeout", LG_ETIMEOUT},
        {"server_error", LG_EUPSTREAM},
        {"api_error", LG_EUPSTREAM},
        {"internal_error", LG_EUPSTREAM},
    };
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); ++i)
        if (strcasecmp(s, map[i].code) == 0)
            return map[i].err;
    return 0;
}

OW_FN int ow_err_from_status(int status)
{
    switch (status) {
    case 400:
    case 404:
    case 422:
        return LG_EUPSTREAM_REJECTED;
    case 401:
    case 402:
    case 403:
        return LG_EUPSTREAM_AUTH;
    case 408:
        return LG_ETIMEOUT;
    case 413:
        return LG_ETOOLARGE;
    case 429:
        return LG_EUPSTREAM_RATELIMIT;
    case 503:
    case 529:
        return LG_EOVERLOADED;
    default:
        if (status >= 500 && status <= 599)
            return LG_EUPSTREAM;
        if (status >= 400 && status <= 499)
            return LG_EUPSTREAM_REJECTED;
        return LG_EUPSTREAM;
    }
}

OW_FN int ow_retryable(int err, int status)
{
    switch (err) {
    case LG_EUPSTREAM_REJECTED:
        return status == 404; /* model missing here may exist at another endpoint */
    case LG_ETOOLARGE:
    case LG_ECONTENT:
    case LG_EINVAL:
        return 0;
    default:
        return 1;
    }
}

OW_FN int ow_contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; ++hay)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

/**
 * Classifies an upstream failure. status: HTTP status (0 = transport error, 2xx = error object inside a success body or
 * an in-band stream error); root: the parsed body or NULL when it is not JSON; raw/rawlen: the body bytes.
 * out->status is the HTTP status, or for 2xx bodies the status the error object carries (its integer code), if any.
 */
OW_FN void ow_classify(int status, const json_t *root, const char *raw, size_t rawlen, const char *api_key,
                       lg_upstream_error_t *out)
{
    const char *msg = NULL, *code = NULL, *type = NULL;
    json_int_t icode = 0;
    memset(out, 0, sizeof(*out));

    if (json_is_object(root)) {
        json_t *e = json_object_get(root, "error");
        const json_t *src = json_is_object(e) ? e : root;
        if (json_is_string(e))
            msg = json_string_value(e);
        else
            msg = json_string_value(json_object_get(src, "message"));
        if (msg == NULL)
            msg = json_string_value(json_object_get(root, "detail"));
        json_t *c = json_object_get(src, "code");
        if (json_is_string(c))
            code = json_string_value(c);
        else if (json_is_integer(c))
            icode = json_integer_value(c);
        type = json_string_value(json_object_get(src, "type"));
        if (icode == 0 && json_is_integer(json_object_get(src, "status")))
            icode = json_integer_value(json_object_get(src, "status"));
        json_t *ra = json_object_get(src, "retry_after");
        if (json_is_number(ra)) {
            double s = json_number_value(ra);
            if (s > 0 && s < 86400.0)
                out->retry_after_ms = (int64_t)(s * 1000.0);
        }
    }

    int eff = status;
    if ((status == 0 || (status >= 200 && status < 300)) && icode >= 400 && icode <= 599)
        eff = (int)icode;
    out->status = eff;

    int err;
    if (eff >= 400) {
        err = ow_err_from_status(eff);
    } else {
        err = ow_err_from_code(code);
        if (err == 0)
            err = ow_err_from_code(type);
        if (err == 0)
            err = LG_EUPSTREAM;
    }
    /* specific codes win over the status: they tell the router something the status does not */
    int specific = ow_err_from_code(code);
    if (specific == LG_ECONTEXT || specific == LG_ECONTENT || (specific == LG_EUPSTREAM_AUTH && (eff == 429 || eff < 400)))
        err = specific;
    else if (err == LG_EUPSTREAM_REJECTED && msg != NULL &&
             (ow_contains_ci(msg, "maximum context length") || ow_contains_ci(msg, "context length exceeded") ||
              ow_contains_ci(msg, "context window")))
        err = LG_ECONTEXT;
    out->err = err;
    out->retryable = ow_retryable(err, eff);

    if (code != NULL)
        ow_copy_text(out->provider_code, sizeof(out->provider_code), code, strlen(code));
    else if (type != NULL)
        ow_copy_text(out->provider_code, sizeof(out->provider_code), type, strlen(type));
    else if (icode != 0)
        snprintf(out->provider_code, sizeof(out->provider_code), "%lld", (long long)icode);

    if (msg != NULL && *msg != '\0')
        ow_copy_text(out->message, sizeof(out->message), msg, strlen(msg));
    else if (status == 0 && root == NULL && raw != NULL && rawlen != 0)
        ow_copy_text(out->message, sizeof(out->message), raw, rawlen); /* the host passes the transport error text */
    else if (status == 0)
        snprintf(out->message, sizeof(out->message), "upstream transport error");
    else
        snprintf(out->message, sizeof(out->message), "upstream returned HTTP %d", status);
    ow_redact(out->message, sizeof(out->message), api_key);
}

/** Parses the body (never assuming it is JSON) and classifies it. */
OW_FN void ow_classify_body(int status, const char *body, size_t len, const char *api_key, lg_upstream_error_t *out)
{
    json_t *root = NULL;
    size_t i = 0;
    while (body != NULL && i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        ++i;
    if (body != NULL && i < len && body[i] == '{')
        root = json_loadb(body + i, len - i, 0, NULL);
    ow_classify(status, root, body, len, api_key, out);
    json_decref(root);
}

/* ---- non-streaming responses -------------------------------------------------------------------------------------- */

/**
 * Parses a complete 2xx body into the OpenAI response object the host expects: choices (or data for embeddings) and
 * usage as sent, with the top-level fields the host owns (id, object, created, model) removed.
 */
OW_FN int ow_parse_response(lg_api_kind_t kind, int status, const char *body, size_t len, const char *api_key, json_t **out,
                            lg_errbuf_t *err)
{
    *out = NULL;
    json_t *root = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        ow_seterr(err, "upstream response is not a JSON object");
        return LG_EBADRESPONSE;
    }
    json_t *e = json_object_get(root, "error");
    if (e != NULL && !json_is_null(e)) {
        lg_upstream_error_t u;
        ow_classify(status, root, body, len, api_key, &u);
        json_decref(root);
        ow_seterr(err, "%s", u.message);
        return u.err;
    }
    const char *key = kind == LG_API_EMBEDDINGS ? "data" : "choices";
    json_t *list = json_object_get(root, key);
    if (!json_is_array(list)) {
        json_decref(root);
        ow_seterr(err, "upstream response has no %s array", key);
        return LG_EBADRESPONSE;
    }
    for (size_t i = 0; i < json_array_size(list); ++i) {
        if (!json_is_object(json_array_get(list, i))) {
            json_decref(root);
            ow_seterr(err, "upstream response has a non-object in %s", key);
            return LG_EBADRESPONSE;
        }
    }
    json_object_del(root, "id");
    json_object_del(root, "object");
    json_object_del(root, "created");
    json_object_del(root, "model");
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage))
        ow_usage_normalize(usage);
    else if (usage != NULL)
        json_object_del(root, "usage");
    *out = root;
    return 0;
}

/* ---- streaming ---------------------------------------------------------------------------------------------------- */

struct ow_stream {
    int saw_done;   /* data: [DONE] */
    int saw_finish; /* a choice carried a finish_reason */
};

OW_FN int ow_stream_begin(void **sstate)
{
    struct ow_stream *s = lg_host->alloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    *sstate = s;
    return 0;
}

OW_FN void ow_stream_free(void *sstate)
{
    lg_host->free_mem(sstate);
}

/**
 * One SSE event of an OpenAI-style stream. [DONE] ends it; an object with "error" (or an `event: error`) is an in-band
 * error; a chunk with non-empty choices becomes one chunk holding only choices (+ system_fingerprint); a usage object
 * goes to out->usage. Anything that is not a JSON object is ignored: one odd line must not kill the stream.
 */
OW_FN int ow_stream_event(const char *log_name, const char *api_key, struct ow_stream *s, const lg_sse_event_t *ev,
                          lg_stream_out_t *out)
{
    const char *d = ev->data;
    size_t n = ev->data_len;
    while (n > 0 && (*d == ' ' || *d == '\t' || *d == '\r' || *d == '\n'))
        ++d, --n;
    while (n > 0 && (d[n - 1] == ' ' || d[n - 1] == '\t' || d[n - 1] == '\r' || d[n - 1] == '\n'))
        --n;
    if (n == 0)
        return 0;
    if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
        s->saw_done = 1;
        out->done = 1;
        return 0;
    }
    json_t *root = json_loadb(d, n, 0, NULL);
    if (!json_is_object(root)) {
        lg_host->log(LG_LOG_DEBUG, log_name, "ignoring a stream event that is not a JSON object (%zu bytes)", n);
        json_decref(root);
        return 0;
    }
    json_t *e = json_object_get(root, "error");
    int error_event = ev->event_len == 5 && memcmp(ev->event, "error", 5) == 0;
    if ((e != NULL && !json_is_null(e)) || error_event) {
        lg_upstream_error_t u;
        ow_classify(200, root, d, n, api_key, &u);
        out->error = u.err;
        out->error_status = u.status >= 400 ? u.status : 0;
        snprintf(out->error_message, sizeof(out->error_message), "%s", u.message);
        snprintf(out->provider_code, sizeof(out->provider_code), "%s", u.provider_code);
        json_decref(root);
        return 0;
    }
    json_t *choices = json_object_get(root, "choices");
    if (json_is_array(choices) && json_array_size(choices) > 0 && out->num_chunks < LG_STREAM_MAX_CHUNKS) {
        json_t *chunk = json_object();
        json_object_set(chunk, "choices", choices);
        json_t *fp = json_object_get(root, "system_fingerprint");
        if (json_is_string(fp))
            json_object_set(chunk, "system_fingerprint", fp);
        for (size_t i = 0; i < json_array_size(choices); ++i) {
            json_t *fr = json_object_get(json_array_get(choices, i), "finish_reason");
            if (json_is_string(fr))
                s->saw_finish = 1;
        }
        out->chunks[out->num_chunks++] = chunk;
    }
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        ow_usage_normalize(usage);
        json_decref(out->usage);
        out->usage = json_incref(usage);
    }
    json_decref(root);
    return 0;
}

OW_FN int ow_stream_end(const struct ow_stream *s, lg_errbuf_t *err)
{
    if (s != NULL && (s->saw_done || s->saw_finish))
        return 0;
    ow_seterr(err, "upstream closed the stream before it finished");
    return LG_EBADRESPONSE;
}

#endif
