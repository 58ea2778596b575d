/* SPDX-License-Identifier: MIT */
/*
 * Helpers every provider plugin needs: strings and a growable buffer on the host allocator, the common config members
 * (name, base_url, api_key, headers, options), upstream request building, error-body plumbing (JSON sniffing, message
 * fallback, key redaction, in-band stream errors) and the lg_plugin_init checks. Header-only (static functions) so each
 * plugin .so stays self-contained and still exports only lg_plugin_init. The including file must have
 * `LG_PLUGIN_DECLARE_HOST;` before including this header.
 */
#ifndef LG_PLUGINS_PLUGIN_UTIL_H
#define LG_PLUGINS_PLUGIN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "llmgate/plugin.h"

#define PU_FN static __attribute__((unused))

/* ---- strings ------------------------------------------------------------------------------------------------------ */

PU_FN char *pu_strndup(const char *s, size_t n)
{
    char *p = lg_host->alloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

PU_FN char *pu_strdup(const char *s)
{
    return pu_strndup(s, strlen(s));
}

PU_FN char *pu_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
PU_FN char *pu_printf(const char *fmt, ...)
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

PU_FN void pu_seterr(lg_errbuf_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
PU_FN void pu_seterr(lg_errbuf_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

PU_FN int pu_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

PU_FN int pu_contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; ++hay)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

/* Copies at most cap-1 bytes of text, turning control characters into spaces (messages end up in logs and JSON). */
PU_FN void pu_copy_text(char *dst, size_t cap, const char *src, size_t len)
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
PU_FN void pu_redact(char *msg, size_t cap, const char *api_key)
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
    pu_copy_text(msg, cap, buf, o);
}

/* Token count from a usage member: integers as-is, finite non-negative reals truncated, anything else absent. */
PU_FN json_int_t pu_tokens(const json_t *v, int *present)
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

/* ---- growable byte buffer (host allocator, always NUL-terminated once written to) --------------------------------- */

struct pu_buf {
    char *p;
    size_t len, cap;
};

PU_FN void pu_buf_add(struct pu_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = lg_host->realloc_mem(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

PU_FN void pu_buf_adds(struct pu_buf *b, const char *s)
{
    pu_buf_add(b, s, strlen(s));
}

PU_FN void pu_buf_free(struct pu_buf *b)
{
    lg_host->free_mem(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- configuration ------------------------------------------------------------------------------------------------ */

/** Config members every plugin shares; embed it first in the instance (the shared OpenAI callbacks rely on that). */
struct pu_common {
    char *name;     /* configured provider name, used to tag logs */
    char *base_url; /* without trailing '/' */
    char *api_key;  /* NULL = no auth header */
    lg_header_t extra[LG_HTTP_MAX_HEADERS];
    size_t num_extra;
};

/** Returned by a pu_option_fn for a key it does not know: logged and ignored. */
#define PU_UNKNOWN_OPTION 1

/** One member of the "options" object: 0, LG_EINVAL (with err set) or PU_UNKNOWN_OPTION. */
typedef int (*pu_option_fn)(void *instance, const char *key, json_t *value, lg_errbuf_t *err);

PU_FN void pu_common_dispose(struct pu_common *c)
{
    lg_host->free_mem(c->name);
    lg_host->free_mem(c->base_url);
    lg_host->free_mem(c->api_key);
    for (size_t i = 0; i < c->num_extra; ++i) {
        lg_host->free_mem(c->extra[i].name);
        lg_host->free_mem(c->extra[i].value);
    }
}

/** conf.name when it is a non-empty string, else fallback; host-allocated. conf may be NULL. */
PU_FN char *pu_conf_name(const json_t *conf, const char *fallback)
{
    const char *name = json_string_value(json_object_get(conf, "name"));
    return pu_strdup(name != NULL && *name != '\0' ? name : fallback);
}

/**
 * Fills c from conf (which must be an object): name (default_name when absent), base_url (an http(s) URL; default_url
 * when absent or null, required when default_url is NULL), api_key (string or null) and headers (at most max_extra
 * string members). Returns 0 or LG_EINVAL with err set; whatever was filled is released by pu_common_dispose.
 */
PU_FN int pu_common_parse(struct pu_common *c, const json_t *conf, const char *default_name, const char *default_url,
                          size_t max_extra, lg_errbuf_t *err)
{
    if (!json_is_object(conf)) {
        pu_seterr(err, "provider config must be an object");
        return LG_EINVAL;
    }
    c->name = pu_conf_name(conf, default_name);

    json_t *urlj = json_object_get(conf, "base_url");
    const char *url = default_url != NULL && (urlj == NULL || json_is_null(urlj)) ? default_url : json_string_value(urlj);
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        pu_seterr(err, "base_url must be an http:// or https:// URL");
        return LG_EINVAL;
    }
    size_t ulen = strlen(url);
    while (ulen > 8 && url[ulen - 1] == '/')
        --ulen;
    c->base_url = pu_strndup(url, ulen);

    json_t *key = json_object_get(conf, "api_key");
    if (json_is_string(key) && json_string_length(key) > 0)
        c->api_key = pu_strdup(json_string_value(key));
    else if (key != NULL && !json_is_null(key) && !json_is_string(key)) {
        pu_seterr(err, "api_key must be a string");
        return LG_EINVAL;
    }

    json_t *headers = json_object_get(conf, "headers");
    if (headers == NULL || json_is_null(headers))
        return 0;
    const char *hname;
    json_t *hval;
    if (!json_is_object(headers)) {
        pu_seterr(err, "headers must be an object of strings");
        return LG_EINVAL;
    }
    if (json_object_size(headers) > max_extra) {
        pu_seterr(err, "at most %zu extra headers", max_extra);
        return LG_EINVAL;
    }
    json_object_foreach((json_t *)headers, hname, hval)
    {
        if (!json_is_string(hval) || *hname == '\0') {
            pu_seterr(err, "headers.%s must be a string", hname);
            return LG_EINVAL;
        }
        c->extra[c->num_extra].name = pu_strdup(hname);
        c->extra[c->num_extra].value = pu_strdup(json_string_value(hval));
        ++c->num_extra;
    }
    return 0;
}

/**
 * Checks conf.options (absent, null or an object) and hands each member to fn, in order; unknown keys are logged under
 * log_name and ignored. fn NULL = only check the type. conf may be NULL. Returns 0 or fn's error.
 */
PU_FN int pu_parse_options(const json_t *conf, const char *log_name, pu_option_fn fn, void *instance, lg_errbuf_t *err)
{
    json_t *opts = json_object_get(conf, "options");
    if (opts == NULL || json_is_null(opts))
        return 0;
    if (!json_is_object(opts)) {
        pu_seterr(err, "options must be an object");
        return LG_EINVAL;
    }
    if (fn == NULL)
        return 0;
    const char *key;
    json_t *v;
    json_object_foreach(opts, key, v)
    {
        int rc = fn(instance, key, v, err);
        if (rc == PU_UNKNOWN_OPTION)
            lg_host->log(LG_LOG_WARN, log_name, "ignoring unknown option \"%s\"", key);
        else if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- upstream requests -------------------------------------------------------------------------------------------- */

/** The checks every build_request starts with: a JSON object body and an upstream model (valid UTF-8 when model != NULL,
 *  which then receives it as a new JSON string). */
PU_FN int pu_check_call(const lg_call_t *call, json_t **model, lg_errbuf_t *err)
{
    if (!json_is_object(call->body)) {
        pu_seterr(err, "request body must be a JSON object");
        return LG_EINVAL;
    }
    if (call->upstream_model == NULL || *call->upstream_model == '\0') {
        pu_seterr(err, "no upstream model");
        return LG_EINVAL;
    }
    if (model != NULL && (*model = json_string(call->upstream_model)) == NULL) {
        pu_seterr(err, "upstream model name is not valid UTF-8");
        return LG_EINVAL;
    }
    return 0;
}

/** Sets a header, replacing the value of one already there (case-insensitive name); silently full at LG_HTTP_MAX_HEADERS. */
PU_FN void pu_add_header(lg_http_req_t *out, const char *name, const char *value)
{
    for (size_t i = 0; i < out->num_headers; ++i) {
        if (strcasecmp(out->headers[i].name, name) == 0) {
            lg_host->free_mem(out->headers[i].value);
            out->headers[i].value = pu_strdup(value);
            return;
        }
    }
    if (out->num_headers < LG_HTTP_MAX_HEADERS) {
        out->headers[out->num_headers].name = pu_strdup(name);
        out->headers[out->num_headers].value = pu_strdup(value);
        ++out->num_headers;
    }
}

/** Makes out a JSON POST to url (host-allocated, taken over): serialises body (takes ownership of it) and sets
 *  Content-Type and Accept (SSE when stream). Returns 0 or LG_EINTERNAL; the caller adds auth and extra headers. */
PU_FN int pu_json_post(lg_http_req_t *out, char *url, json_t *body, int stream, lg_errbuf_t *err)
{
    char *dumped = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (dumped == NULL) {
        lg_host->free_mem(url);
        pu_seterr(err, "cannot serialise the upstream body");
        return LG_EINTERNAL;
    }
    out->body_len = strlen(dumped);
    out->body = pu_strndup(dumped, out->body_len);
    free(dumped);
    out->method = pu_strdup("POST");
    out->url = url;
    pu_add_header(out, "Content-Type", "application/json");
    pu_add_header(out, "Accept", stream ? "text/event-stream" : "application/json");
    return 0;
}

/** Adds the configured extra headers (last, so they override the plugin's own). */
PU_FN void pu_add_extra_headers(lg_http_req_t *out, const struct pu_common *c)
{
    for (size_t i = 0; i < c->num_extra; ++i)
        pu_add_header(out, c->extra[i].name, c->extra[i].value);
}

/* ---- upstream errors and stream events ---------------------------------------------------------------------------- */

/* HTTP status → error, the common mapping (providers with other conventions adjust a few statuses themselves). */
PU_FN int pu_err_from_status(int status)
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

/** Parses an error body without assuming it is JSON: only when its first non-blank byte is one of `starts` ("{" or
 *  "{["). Returns a new reference or NULL. */
PU_FN json_t *pu_load_body(const char *body, size_t len, const char *starts)
{
    size_t i = 0;
    while (body != NULL && i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        ++i;
    if (body == NULL || i >= len || body[i] == '\0' || strchr(starts, body[i]) == NULL)
        return NULL;
    return json_loadb(body + i, len - i, 0, NULL);
}

/** Trims blanks (space, tab, CR, LF) from both ends of an SSE data payload. */
PU_FN void pu_trim(const char **d, size_t *n)
{
    while (*n > 0 && (**d == ' ' || **d == '\t' || **d == '\r' || **d == '\n'))
        ++*d, --*n;
    while (*n > 0 && ((*d)[*n - 1] == ' ' || (*d)[*n - 1] == '\t' || (*d)[*n - 1] == '\r' || (*d)[*n - 1] == '\n'))
        --*n;
}

/** Copies an upstream error code/type into a result field, redacted before truncation: upstreams have echoed the
 * caller's key inside error types too, and a key cut at the field's end must not survive as a prefix. */
PU_FN void pu_copy_code(char *dst, size_t cap, const char *src, size_t len, const char *api_key)
{
    char tmp[512];
    pu_copy_text(tmp, sizeof(tmp), src, len);
    pu_redact(tmp, sizeof(tmp), api_key);
    pu_copy_text(dst, cap, tmp, strlen(tmp));
}

/** `event: error` */
PU_FN int pu_is_error_event(const lg_sse_event_t *ev)
{
    return ev->event_len == 5 && memcmp(ev->event, "error", 5) == 0;
}

/**
 * The message of a classified error: the upstream's own msg, else (transport errors, status 0, body not JSON) the text
 * the host passed as the raw body, else a generic line. Not yet redacted.
 */
PU_FN void pu_error_message(char *dst, size_t cap, const char *msg, int status, const json_t *root, const char *raw, size_t rawlen)
{
    if (msg != NULL && *msg != '\0')
        pu_copy_text(dst, cap, msg, strlen(msg));
    else if (status == 0 && root == NULL && raw != NULL && rawlen != 0)
        pu_copy_text(dst, cap, raw, rawlen); /* the host passes the transport error text */
    else if (status == 0)
        snprintf(dst, cap, "upstream transport error");
    else
        snprintf(dst, cap, "upstream returned HTTP %d", status);
}

/** Reports a classified in-band error on the stream, as error `err` (usually u->err). */
PU_FN void pu_stream_error(lg_stream_out_t *out, const lg_upstream_error_t *u, int err)
{
    out->error = err;
    out->error_status = u->status >= 400 ? u->status : 0;
    snprintf(out->error_message, sizeof(out->error_message), "%s", u->message);
    snprintf(out->provider_code, sizeof(out->provider_code), "%s", u->provider_code);
}

/** A stream event that is not a usable JSON object (broken, truncated, invalid UTF-8): its text is lost, so the stream
 * cannot be trusted; an in-band LG_EBADRESPONSE lets the host fall over or end the stream with an error. */
PU_FN void pu_stream_bad_event(lg_stream_out_t *out, size_t len)
{
    out->error = LG_EBADRESPONSE;
    out->error_status = 0;
    snprintf(out->error_message, sizeof(out->error_message), "upstream sent a stream event that is not a JSON object (%zu bytes)",
             len);
    out->provider_code[0] = '\0';
}

/* ---- entry point -------------------------------------------------------------------------------------------------- */

/** The body of every lg_plugin_init: checks the host ABI, keeps the host table, hands out the provider. */
PU_FN int pu_plugin_init(const lg_host_api_t *host, const lg_provider_t *provider, const lg_provider_t **out, lg_errbuf_t *err)
{
    if (host == NULL || host->abi_major != LG_PLUGIN_ABI_MAJOR ||
        host->struct_size < offsetof(lg_host_api_t, random_u64) + sizeof(host->random_u64)) {
        pu_seterr(err, "host ABI %u is not %d.x", host != NULL ? (unsigned)host->abi_major : 0u, LG_PLUGIN_ABI_MAJOR);
        return LG_EUNSUPPORTED;
    }
    LG_PLUGIN_SET_HOST(host);
    *out = provider;
    return 0;
}

#endif
