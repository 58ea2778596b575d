/* SPDX-License-Identifier: MIT */
/*
 * OpenAI wire format shared by the `openai` and `mock` plugins: parse chat /
 * legacy completions / embeddings bodies and SSE chunks, classify OpenAI-style
 * errors (and Cloudflare's v4 error envelope, which Workers AI's OpenAI-compatible
 * endpoint answers with), and the provider callbacks built on them. Header-only so each plugin
 * .so stays self-contained. The including file must have
 * `LG_PLUGIN_DECLARE_HOST;` before including this header.
 */
#ifndef LG_PLUGINS_OPENAI_WIRE_H
#define LG_PLUGINS_OPENAI_WIRE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "llmgate/plugin.h"
#include "plugin_util.h"

#define OW_FN static __attribute__((unused))

/** Makes sure a usage object has integer prompt_tokens, completion_tokens and total_tokens; keeps every other member. */
OW_FN void ow_usage_normalize(json_t *u)
{
    int hp, hc, ht;
    json_int_t p = pu_tokens(json_object_get(u, "prompt_tokens"), &hp);
    json_int_t c = pu_tokens(json_object_get(u, "completion_tokens"), &hc);
    json_int_t t = pu_tokens(json_object_get(u, "total_tokens"), &ht);
    /* some OpenAI-compatible servers use the Responses API names */
    if (!hp)
        p = pu_tokens(json_object_get(u, "input_tokens"), &hp);
    if (!hc)
        c = pu_tokens(json_object_get(u, "output_tokens"), &hc);
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

/*
 * Cloudflare's v4 API envelope (Workers AI, AI Gateway): {"success":false,"errors":[{"code":N,"message":"..."}],
 * "messages":[],"result":null}. The numeric codes that tell the router more than the HTTP status; 0 when unknown.
 */
OW_FN int ow_err_from_cf_code(json_int_t code, int *model_missing)
{
    *model_missing = 0;
    switch (code) {
    case 5007: /* "No such model ${model} or task" (400) */
    case 3042: /* "The model name is invalid" (404) */
        *model_missing = 1;
        return LG_EUPSTREAM_REJECTED;
    case 3036: /* daily free allocation used up (429): a quota, like OpenAI's insufficient_quota */
        return LG_EUPSTREAM_AUTH;
    case 7000: /* "No route for that URI" */
    case 7003: /* "Could not route to ..., perhaps your object identifier is invalid?" (wrong account id) */
        return LG_EUPSTREAM;
    default:
        return 0;
    }
}

/** The first entry of a Cloudflare v4 error envelope, or NULL when root is not one. */
OW_FN const json_t *ow_cf_first_error(const json_t *root)
{
    if (json_object_get(root, "error") != NULL)
        return NULL;
    const json_t *errors = json_object_get(root, "errors");
    if (!json_is_array(errors) || json_array_size(errors) == 0 || !json_is_false(json_object_get(root, "success")))
        return NULL;
    const json_t *first = json_array_get(errors, 0);
    return json_is_object(first) ? first : NULL;
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

/**
 * Classifies an upstream failure. status: HTTP status (0 = transport error, 2xx = error object inside a success body or
 * an in-band stream error); root: the parsed body or NULL when it is not JSON; raw/rawlen: the body bytes.
 * out->status is the HTTP status, or for 2xx bodies the status the error object carries (its integer code), if any.
 */
OW_FN void ow_classify(int status, const json_t *root, const char *raw, size_t rawlen, const char *api_key,
                       lg_upstream_error_t *out)
{
    const char *msg = NULL, *code = NULL, *type = NULL;
    json_int_t icode = 0, cf_code = 0; /* cf_code: a Cloudflare v4 error code (1000+), never an HTTP status */
    memset(out, 0, sizeof(*out));

    const json_t *cf = json_is_object(root) ? ow_cf_first_error(root) : NULL;
    if (cf != NULL) {
        msg = json_string_value(json_object_get(cf, "message"));
        json_t *c = json_object_get(cf, "code");
        if (json_is_integer(c))
            cf_code = json_integer_value(c);
        else if (json_is_string(c))
            code = json_string_value(c);
    } else if (json_is_object(root)) {
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
        err = pu_err_from_status(eff);
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
             (pu_contains_ci(msg, "maximum context length") || pu_contains_ci(msg, "context length exceeded") ||
              pu_contains_ci(msg, "context window")))
        err = LG_ECONTEXT;
    int cf_model_missing = 0, cf_err = cf_code != 0 ? ow_err_from_cf_code(cf_code, &cf_model_missing) : 0;
    if (cf_err != 0 && (cf_err != LG_EUPSTREAM_AUTH || eff == 429 || eff < 400))
        err = cf_err;
    out->err = err;
    /* a model this account does not have may exist at another endpoint, whatever the status says */
    out->retryable = cf_model_missing ? 1 : ow_retryable(err, eff);

    if (code != NULL)
        pu_copy_code(out->provider_code, sizeof(out->provider_code), code, strlen(code), api_key);
    else if (type != NULL)
        pu_copy_code(out->provider_code, sizeof(out->provider_code), type, strlen(type), api_key);
    else if (cf_code != 0)
        snprintf(out->provider_code, sizeof(out->provider_code), "%lld", (long long)cf_code);
    else if (icode != 0)
        snprintf(out->provider_code, sizeof(out->provider_code), "%lld", (long long)icode);

    pu_error_message(out->message, sizeof(out->message), msg, status, root, raw, rawlen);
    pu_redact(out->message, sizeof(out->message), api_key);
}

/** Parses the body (never assuming it is JSON) and classifies it. */
OW_FN void ow_classify_body(int status, const char *body, size_t len, const char *api_key, lg_upstream_error_t *out)
{
    json_t *root = pu_load_body(body, len, "{");
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
        pu_seterr(err, "upstream response is not a JSON object");
        return LG_EBADRESPONSE;
    }
    json_t *e = json_object_get(root, "error");
    if ((e != NULL && !json_is_null(e)) || ow_cf_first_error(root) != NULL) {
        lg_upstream_error_t u;
        ow_classify(status, root, body, len, api_key, &u);
        json_decref(root);
        pu_seterr(err, "%s", u.message);
        return u.err;
    }
    const char *key = kind == LG_API_EMBEDDINGS ? "data" : "choices";
    json_t *list = json_object_get(root, key);
    if (!json_is_array(list)) {
        json_decref(root);
        pu_seterr(err, "upstream response has no %s array", key);
        return LG_EBADRESPONSE;
    }
    for (size_t i = 0; i < json_array_size(list); ++i) {
        if (!json_is_object(json_array_get(list, i))) {
            json_decref(root);
            pu_seterr(err, "upstream response has a non-object in %s", key);
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
    int saw_done;            /* data: [DONE] */
    int saw_finish;          /* a choice carried a finish_reason */
    int coerce_numeric_text; /* quote bare numbers in text members (Workers AI sends a numeric token as a number) */
};

/*
 * Workers AI's OpenAI-compatible stream sends a token that looks like a number as a JSON number
 * ({"delta":{"content":6}}, {"content":0.005}). Quotes such values of "content", "reasoning_content" and "reasoning"
 * byte for byte (a parsed double would lose "0.005"'s spelling). A `"key":` whose closing quote is unescaped can only
 * be a member name, never text inside a string, so the scan needs no JSON state. Returns NULL when nothing changed,
 * else a new buffer (lg_host->alloc) of *out_len bytes.
 */
OW_FN char *ow_quote_numeric_text(const char *d, size_t n, size_t *out_len)
{
    static const char *const keys[] = {"\"content\":", "\"reasoning_content\":", "\"reasoning\":"};
    char *out = NULL;
    size_t o = 0, i = 0, copied = 0;
    while (i < n) {
        size_t klen = 0;
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && klen == 0; ++k) {
            size_t l = strlen(keys[k]);
            if (n - i >= l && memcmp(d + i, keys[k], l) == 0)
                klen = l;
        }
        if (klen == 0) {
            ++i;
            continue;
        }
        size_t v = i + klen;
        while (v < n && (d[v] == ' ' || d[v] == '\t'))
            ++v;
        size_t e = v;
        while (e < n && ((d[e] >= '0' && d[e] <= '9') || d[e] == '-' || d[e] == '+' || d[e] == '.' || d[e] == 'e' || d[e] == 'E'))
            ++e;
        if (e == v || (d[v] != '-' && (d[v] < '0' || d[v] > '9'))) {
            i = v > i + klen ? v : i + klen;
            continue;
        }
        if (out == NULL)
            out = lg_host->alloc(n + 2 * (n / 4 + 1) + 1); /* at most one quoted number per 4 bytes of input */
        memcpy(out + o, d + copied, v - copied);
        o += v - copied;
        out[o++] = '"';
        memcpy(out + o, d + v, e - v);
        o += e - v;
        out[o++] = '"';
        copied = e;
        i = e;
    }
    if (out == NULL)
        return NULL;
    memcpy(out + o, d + copied, n - copied);
    o += n - copied;
    out[o] = '\0';
    *out_len = o;
    return out;
}

/**
 * One SSE event of an OpenAI-style stream. [DONE] ends it; an object with "error" (or an `event: error`) is an in-band
 * error; a chunk with non-empty choices becomes one chunk holding only choices (+ system_fingerprint); a usage object
 * goes to out->usage. An event that is not a JSON object is an in-band LG_EBADRESPONSE: its text would be lost.
 */
OW_FN int ow_stream_event(const char *log_name, const char *api_key, struct ow_stream *s, const lg_sse_event_t *ev,
                          lg_stream_out_t *out)
{
    const char *d = ev->data;
    size_t n = ev->data_len;
    pu_trim(&d, &n);
    if (n == 0)
        return 0;
    if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
        s->saw_done = 1;
        out->done = 1;
        return 0;
    }
    size_t qn = 0;
    char *quoted = s->coerce_numeric_text ? ow_quote_numeric_text(d, n, &qn) : NULL;
    json_t *root = quoted != NULL ? json_loadb(quoted, qn, 0, NULL) : json_loadb(d, n, 0, NULL);
    lg_host->free_mem(quoted);
    if (!json_is_object(root)) {
        lg_host->log(LG_LOG_WARN, log_name, "stream event that is not a JSON object (%zu bytes)", n);
        json_decref(root);
        pu_stream_bad_event(out, n);
        return 0;
    }
    json_t *e = json_object_get(root, "error");
    if ((e != NULL && !json_is_null(e)) || ow_cf_first_error(root) != NULL || pu_is_error_event(ev)) {
        lg_upstream_error_t u;
        ow_classify(200, root, d, n, api_key, &u);
        pu_stream_error(out, &u, u.err);
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

/* ---- provider callbacks ------------------------------------------------------------------------------------------- */

/*
 * The lg_provider_t callbacks of a plugin that speaks the OpenAI wire format unchanged. The plugin state must start
 * with a `struct pu_common` (name tags the logs, api_key is redacted from messages; NULL key = nothing configured).
 */

OW_FN int ow_cb_parse_response(void *state, const lg_call_t *call, int status, const char *body, size_t len, json_t **out,
                               lg_errbuf_t *err)
{
    const struct pu_common *c = state;
    return ow_parse_response(call->kind, status, body, len, c->api_key, out, err);
}

OW_FN int ow_cb_stream_begin(void *state, const lg_call_t *call, void **sstate)
{
    (void)state;
    (void)call;
    struct ow_stream *s = lg_host->alloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    *sstate = s;
    return 0;
}

OW_FN int ow_cb_parse_stream_event(void *state, void *sstate, const lg_sse_event_t *ev, lg_stream_out_t *out, lg_errbuf_t *err)
{
    const struct pu_common *c = state;
    (void)err;
    return ow_stream_event(c->name, c->api_key, sstate, ev, out);
}

OW_FN int ow_cb_stream_end(void *state, void *sstate, lg_stream_out_t *out, lg_errbuf_t *err)
{
    (void)state;
    (void)out;
    const struct ow_stream *s = sstate;
    if (s != NULL && (s->saw_done || s->saw_finish))
        return 0;
    pu_seterr(err, "upstream closed the stream before it finished");
    return LG_EBADRESPONSE;
}

OW_FN void ow_cb_stream_free(void *state, void *sstate)
{
    (void)state;
    lg_host->free_mem(sstate);
}

OW_FN void ow_cb_classify_error(void *state, int status, const char *body, size_t len, lg_upstream_error_t *out)
{
    const struct pu_common *c = state;
    ow_classify_body(status, body, len, c != NULL ? c->api_key : NULL, out);
}

#endif
