/* SPDX-License-Identifier: MIT */
/*
 * skeleton.c — a complete, out-of-tree llmgate provider plugin.
 *
 * It talks to any OpenAI-compatible upstream (`POST {base_url}/chat/completions`, `/completions`, `/embeddings`) and
 * shows every part of the plugin ABI (include/llmgate/plugin.h, explained in plugins/README.md) in the smallest form
 * that is still correct: configuration parsing with strict option checks, request building, response and SSE parsing,
 * in-band error detection, truncated-stream detection and error classification. Copy this folder, rename "skeleton",
 * and replace the wire-format parts with your upstream's.
 *
 * Build (see Makefile):
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags llmgate-plugin) -o skeleton.so skeleton.c \
 *      $(pkg-config --libs jansson)
 * Use it from llmgate.json:
 *   {"providers": [{"name": "my-upstream", "plugin": "/path/to/skeleton.so", "base_url": "https://host/v1",
 *                   "api_key_env": "MY_KEY", "headers": {"X-Team": "a"}, "options": {"user_agent": "me/1.0"}}]}
 *
 * Ground rules (the host relies on them):
 *   - Pure translator: no I/O, no blocking, no threads, no getenv at request time. The host does every network call,
 *     retry, fallback, billing and all client-facing protocol work.
 *   - No global mutable state except the host-table pointer below. Everything per provider lives in the instance
 *     (`state`), everything per stream in the stream state (`sstate`). An instance is only ever used by one worker
 *     thread, so nothing needs locks.
 *   - Allocate what crosses the boundary with host->alloc (it never returns NULL); the host frees it.
 *   - Export exactly one symbol, lg_plugin_init; compile with -fvisibility=hidden so nothing else leaks
 *     (`nm -D --defined-only skeleton.so` must list only lg_plugin_init).
 *   - Link jansson (the JSON values crossing the boundary are jansson's json_t), never the host binary.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llmgate/plugin.h>  /* found through `pkg-config --cflags llmgate-plugin` */
#include <llmgate/version.h> /* LG_VERSION_STRING of the llmgate the plugin was built against (only for the log) */

#define PLUGIN_NAME "skeleton"
#define PLUGIN_VERSION "1.0.0"
#define MAX_EXTRA_HEADERS (LG_HTTP_MAX_HEADERS - 4) /* leave room for Content-Type, Accept, Authorization, User-Agent */

/* The host table, set once by lg_plugin_init and valid until dlclose. The only global the plugin may have. */
LG_PLUGIN_DECLARE_HOST;

/* The one exported symbol (LG_PLUGIN_EXPORT = default visibility; everything else is hidden by -fvisibility=hidden). */
LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

/* ---- small helpers: every string we hand to the host comes from host->alloc ------------------------------------------ */

static char *sk_strndup(const char *s, size_t n)
{
    char *p = lg_host->alloc(n + 1); /* never NULL: the host aborts on OOM */
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *sk_strdup(const char *s)
{
    return sk_strndup(s, strlen(s));
}

/* printf into a fresh host->alloc'd string */
__attribute__((format(printf, 1, 2))) static char *sk_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    size_t cap = n > 0 ? (size_t)n + 1 : 1;
    char *p = lg_host->alloc(cap);
    va_start(ap, fmt);
    vsnprintf(p, cap, fmt, ap);
    va_end(ap);
    return p;
}

/* error texts go into caller-provided fixed buffers (lg_errbuf_t), never into heap strings */
__attribute__((format(printf, 2, 3))) static void sk_seterr(lg_errbuf_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* ---- the instance: one per configured provider per worker ------------------------------------------------------------ */

struct instance {
    char *name;       /* configured provider name, to tag log lines */
    char *base_url;   /* without trailing '/' */
    char *api_key;    /* NULL = send no Authorization header */
    char *user_agent; /* options.user_agent, NULL = none */
    int include_usage;
    lg_header_t extra[MAX_EXTRA_HEADERS]; /* conf "headers" */
    size_t num_extra;
};

/* destroy: free everything create allocated. Called on the worker thread at shutdown or config reload. Must accept a
 * half-built instance (create uses it for cleanup on errors). */
static void sk_destroy(void *state)
{
    struct instance *in = state;
    if (in == NULL)
        return;
    lg_host->free_mem(in->name);
    lg_host->free_mem(in->base_url);
    lg_host->free_mem(in->api_key);
    lg_host->free_mem(in->user_agent);
    for (size_t i = 0; i < in->num_extra; ++i) {
        lg_host->free_mem(in->extra[i].name);
        lg_host->free_mem(in->extra[i].value);
    }
    lg_host->free_mem(in);
}

/*
 * create: conf is the provider's config object, borrowed for the duration of the call:
 *   {"name", "base_url", "api_key" (already resolved from api_key / api_key_env; may be absent), "headers", "options"}
 * Copy what you need — never keep pointers into conf. Validate options strictly: a wrong type is LG_EINVAL naming
 * the option (the gateway refuses to start or reload with that message); unknown keys only get a warning, so a newer
 * config still loads into an older plugin.
 */
static int sk_create(const json_t *conf, void **state, lg_errbuf_t *err)
{
    struct instance *in = lg_host->alloc(sizeof(*in));
    memset(in, 0, sizeof(*in));
    in->include_usage = 1;

    const char *name = json_string_value(json_object_get(conf, "name"));
    in->name = sk_strdup(name != NULL ? name : PLUGIN_NAME);

    const char *url = json_string_value(json_object_get(conf, "base_url"));
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        sk_seterr(err, "base_url is required and must be an http:// or https:// URL");
        goto Fail;
    }
    size_t ulen = strlen(url);
    while (ulen > 0 && url[ulen - 1] == '/')
        --ulen;
    in->base_url = sk_strndup(url, ulen);

    const char *key = json_string_value(json_object_get(conf, "api_key"));
    if (key != NULL && *key != '\0')
        in->api_key = sk_strdup(key);

    json_t *headers = json_object_get(conf, "headers");
    if (headers != NULL && !json_is_null(headers)) {
        if (!json_is_object(headers)) {
            sk_seterr(err, "headers must be an object of strings");
            goto Fail;
        }
        const char *hname;
        json_t *hval;
        json_object_foreach(headers, hname, hval)
        {
            if (!json_is_string(hval)) {
                sk_seterr(err, "headers.%s must be a string", hname);
                goto Fail;
            }
            if (in->num_extra == MAX_EXTRA_HEADERS) {
                sk_seterr(err, "at most %d extra headers", MAX_EXTRA_HEADERS);
                goto Fail;
            }
            in->extra[in->num_extra].name = sk_strdup(hname);
            in->extra[in->num_extra].value = sk_strdup(json_string_value(hval));
            ++in->num_extra;
        }
    }

    json_t *opts = json_object_get(conf, "options");
    if (opts != NULL && !json_is_null(opts)) {
        if (!json_is_object(opts)) {
            sk_seterr(err, "options must be an object");
            goto Fail;
        }
        const char *okey;
        json_t *v;
        json_object_foreach(opts, okey, v)
        {
            if (strcmp(okey, "include_usage") == 0) {
                if (!json_is_boolean(v)) {
                    sk_seterr(err, "options.include_usage must be a boolean");
                    goto Fail;
                }
                in->include_usage = json_is_true(v);
            } else if (strcmp(okey, "user_agent") == 0) {
                if (!json_is_string(v) || json_string_length(v) == 0) {
                    sk_seterr(err, "options.user_agent must be a non-empty string");
                    goto Fail;
                }
                in->user_agent = sk_strdup(json_string_value(v));
            } else {
                lg_host->log(LG_LOG_WARN, in->name, "ignoring unknown option \"%s\"", okey);
            }
        }
    }
    *state = in;
    return 0;
Fail:
    sk_destroy(in);
    return LG_EINVAL;
}

/* ---- request -------------------------------------------------------------------------------------------------------- */

static void add_header(lg_http_req_t *out, const char *name, const char *value)
{
    /* a configured header replaces a default of the same name (header names are case-insensitive) */
    for (size_t i = 0; i < out->num_headers; ++i) {
        if (strcasecmp(out->headers[i].name, name) == 0) {
            lg_host->free_mem(out->headers[i].value);
            out->headers[i].value = sk_strdup(value);
            return;
        }
    }
    if (out->num_headers < LG_HTTP_MAX_HEADERS) { /* never write past the fixed array */
        out->headers[out->num_headers].name = sk_strdup(name);
        out->headers[out->num_headers].value = sk_strdup(value);
        ++out->num_headers;
    }
}

/*
 * build_request: turn one call (OpenAI-shaped body, already stripped of gateway-only fields) into an HTTP request.
 * call and everything it points to are borrowed and read-only: build a NEW body object. json_object_set() of a value
 * taken from call->body only bumps its reference count, which is allowed; modifying call->body is not.
 * Every string put into `out` must come from host->alloc; the host owns them once we return — on errors too, so it
 * is fine to return halfway through.
 */
static int sk_build_request(void *state, const lg_call_t *call, lg_http_req_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    const char *path;
    switch (call->kind) {
    case LG_API_CHAT:
        path = "/chat/completions";
        break;
    case LG_API_COMPLETIONS:
        path = "/completions";
        break;
    case LG_API_EMBEDDINGS:
        path = "/embeddings";
        break;
    default:
        sk_seterr(err, "unsupported API kind %d", (int)call->kind);
        return LG_EUNSUPPORTED;
    }
    if (!json_is_object(call->body)) {
        sk_seterr(err, "request body must be a JSON object");
        return LG_EINVAL;
    }

    /* shallow copy of the client body: unknown fields (tools, response_format, vendor extensions) pass through */
    json_t *body = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)call->body, k, v)
    {
        if (strcmp(k, "stream") != 0 && strcmp(k, "stream_options") != 0)
            json_object_set(body, k, v);
    }
    /* the provider's own model name (the catalog endpoint's "model"), not the id the client used */
    json_object_set_new(body, "model", json_string(call->upstream_model));
    if (call->stream) {
        json_object_set_new(body, "stream", json_true());
        json_t *so = json_object_get(call->body, "stream_options");
        json_t *nso = json_is_object(so) ? json_copy(so) : json_object(); /* json_copy: a new object we may modify */
        if (in->include_usage)
            json_object_set_new(nso, "include_usage", json_true()); /* so the host can bill the stream */
        json_object_set_new(body, "stream_options", nso);
    }

    /* json_dumps allocates with malloc; the host frees out->body with free_mem, so copy into host memory */
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        sk_seterr(err, "cannot serialise the request body");
        return LG_EINTERNAL;
    }
    out->body_len = strlen(text);
    out->body = sk_strndup(text, out->body_len);
    free(text);

    out->method = sk_strdup("POST");
    out->url = sk_printf("%s%s", in->base_url, path);
    add_header(out, "Content-Type", "application/json");
    add_header(out, "Accept", call->stream ? "text/event-stream" : "application/json");
    if (in->api_key != NULL) {
        char *auth = sk_printf("Bearer %s", in->api_key);
        add_header(out, "Authorization", auth);
        lg_host->free_mem(auth);
    }
    if (in->user_agent != NULL)
        add_header(out, "User-Agent", in->user_agent);
    for (size_t i = 0; i < in->num_extra; ++i)
        add_header(out, in->extra[i].name, in->extra[i].value);

    /* prompts are user data: only ever at debug level, and never log the key */
    lg_host->log(LG_LOG_DEBUG, in->name, "%s %s (%zu bytes, stream=%d)", out->method, out->url, out->body_len, call->stream);
    return 0;
}

/* ---- errors ---------------------------------------------------------------------------------------------------------- */

/* lg_err_t for an HTTP status (plugins/README.md has the table the bundled openai plugin uses) */
static int err_from_status(int status)
{
    switch (status) {
    case 0:
        return LG_EUPSTREAM; /* transport error */
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
        return status >= 500 ? LG_EUPSTREAM : LG_EUPSTREAM_REJECTED;
    }
}

/* copy at most cap-1 bytes and blank out the API key wherever the upstream echoed it */
static void copy_redacted(char *dst, size_t cap, const char *src, size_t len, const char *key)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    for (size_t i = 0; i < len; ++i)
        if ((unsigned char)dst[i] < 0x20)
            dst[i] = ' ';
    if (key != NULL && *key != '\0') {
        size_t kl = strlen(key);
        for (char *p = strstr(dst, key); p != NULL; p = strstr(p + kl, key))
            memset(p, '*', kl);
    }
}

/* fills out from an {"error": {"message", "type", "code"}} object (or anything else) */
static void classify(const struct instance *in, int status, const json_t *root, const char *raw, size_t rawlen,
                     lg_upstream_error_t *out)
{
    memset(out, 0, sizeof(*out));
    out->status = status;
    json_t *e = json_object_get(root, "error");
    const char *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message")) : json_string_value(e);
    json_t *code = json_is_object(e) ? json_object_get(e, "code") : NULL;
    const char *type = json_is_object(e) ? json_string_value(json_object_get(e, "type")) : NULL;
    const char *pcode = json_is_string(code) ? json_string_value(code) : type;
    if (pcode != NULL)
        snprintf(out->provider_code, sizeof(out->provider_code), "%s", pcode);
    if (status == 0 && json_is_integer(code)) /* in-band error with an HTTP-like code (OpenRouter style) */
        out->status = status = (int)json_integer_value(code);

    if (msg != NULL)
        copy_redacted(out->message, sizeof(out->message), msg, strlen(msg), in->api_key);
    else if (status == 0 && raw != NULL && rawlen > 0) /* transport error: the body is the transport's message */
        copy_redacted(out->message, sizeof(out->message), raw, rawlen, in->api_key);
    else
        snprintf(out->message, sizeof(out->message), "upstream returned HTTP %d", status);

    out->err = err_from_status(status);
    if (pcode != NULL && (strstr(pcode, "rate_limit") != NULL))
        out->err = LG_EUPSTREAM_RATELIMIT;
    else if (pcode != NULL && strcmp(pcode, "context_length_exceeded") == 0)
        out->err = LG_ECONTEXT;
    else if (pcode != NULL && (strstr(pcode, "overloaded") != NULL))
        out->err = LG_EOVERLOADED;
    /* retryable = another attempt (this endpoint again or another one) may succeed */
    out->retryable = out->err != LG_EUPSTREAM_REJECTED && out->err != LG_ETOOLARGE;
}

/*
 * classify_error: a non-2xx response, a transport failure (status 0, body = the transport's message) or a 2xx body
 * parse_response rejected. The body is borrowed, NOT NUL-terminated and may be anything (an HTML error page, empty).
 * The message is shown to clients and logged: never put credentials in it.
 */
static void sk_classify_error(void *state, int status, const char *body, size_t len, lg_upstream_error_t *out)
{
    struct instance *in = state;
    json_t *root = body != NULL && len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    classify(in, status, json_is_object(root) ? root : NULL, status == 0 ? body : NULL, status == 0 ? len : 0, out);
    json_decref(root);
}

/* ---- non-streaming response ------------------------------------------------------------------------------------------ */

/*
 * parse_response: a complete 2xx body (borrowed, not NUL-terminated). Return a NEW object holding "choices" (or
 * "data" for embeddings) and "usage"; the host adds id, object, created, model and provider, and prices the usage.
 * A 2xx body that carries an error object is an error: return its classification.
 */
static int sk_parse_response(void *state, const lg_call_t *call, int status, const char *body, size_t len, json_t **out,
                             lg_errbuf_t *err)
{
    struct instance *in = state;
    *out = NULL;
    json_t *root = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        sk_seterr(err, "upstream response is not a JSON object");
        return LG_EBADRESPONSE;
    }
    json_t *e = json_object_get(root, "error");
    if (e != NULL && !json_is_null(e)) {
        lg_upstream_error_t u;
        classify(in, status, root, NULL, 0, &u);
        json_decref(root);
        sk_seterr(err, "%s", u.message);
        return u.err;
    }
    const char *listkey = call->kind == LG_API_EMBEDDINGS ? "data" : "choices";
    json_t *list = json_object_get(root, listkey);
    if (!json_is_array(list)) {
        json_decref(root);
        sk_seterr(err, "upstream response has no %s array", listkey);
        return LG_EBADRESPONSE;
    }
    json_t *res = json_object();
    json_object_set(res, listkey, list); /* shares the array with root; root's reference goes away below */
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage))
        json_object_set(res, "usage", usage);
    json_decref(root);
    *out = res;
    return 0;
}

/* ---- streaming -------------------------------------------------------------------------------------------------------- */

/* per-transfer state: one per streamed response, freed by stream_free */
struct stream {
    int saw_done;   /* "data: [DONE]" arrived */
    int saw_finish; /* some choice carried a finish_reason */
};

static int sk_stream_begin(void *state, const lg_call_t *call, void **sstate)
{
    (void)state;
    (void)call;
    struct stream *s = lg_host->alloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    *sstate = s;
    return 0;
}

/*
 * parse_stream_event: one SSE event of a 2xx stream (the host did the framing: CRLF, split reads, multi-line data;
 * comments never arrive here). Append OpenAI chunks holding only "choices" to out->chunks (at most
 * LG_STREAM_MAX_CHUNKS); put usage into out->usage, never into a chunk; set out->done on the end marker; report
 * in-band errors through out->error. Ignore what you do not understand: one odd line must not kill a stream.
 */
static int sk_parse_stream_event(void *state, void *sstate, const lg_sse_event_t *ev, lg_stream_out_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    struct stream *s = sstate;
    (void)err;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        s->saw_done = 1;
        out->done = 1;
        return 0;
    }
    json_t *root = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!json_is_object(root)) {
        lg_host->log(LG_LOG_DEBUG, in->name, "ignoring a non-JSON stream event (%zu bytes)", ev->data_len);
        json_decref(root);
        return 0;
    }
    json_t *e = json_object_get(root, "error");
    if (e != NULL && !json_is_null(e)) {
        /* in-band error: before any output the host fails over, after output it sends the client an error chunk */
        lg_upstream_error_t u;
        classify(in, 0, root, NULL, 0, &u);
        out->error = u.err;
        out->error_status = u.status >= 400 ? u.status : 0;
        snprintf(out->error_message, sizeof(out->error_message), "%s", u.message);
        snprintf(out->provider_code, sizeof(out->provider_code), "%s", u.provider_code);
        json_decref(root);
        return 0;
    }
    json_t *choices = json_object_get(root, "choices");
    if (json_is_array(choices) && json_array_size(choices) > 0 && out->num_chunks < LG_STREAM_MAX_CHUNKS) {
        size_t i;
        json_t *c;
        json_array_foreach(choices, i, c)
        {
            if (json_is_string(json_object_get(c, "finish_reason")))
                s->saw_finish = 1;
        }
        json_t *chunk = json_object();
        json_object_set(chunk, "choices", choices);
        out->chunks[out->num_chunks++] = chunk; /* the host owns it now */
    }
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        json_decref(out->usage); /* a later usage replaces an earlier one */
        out->usage = json_incref(usage);
    }
    json_decref(root);
    return 0;
}

/* stream_end: upstream EOF. 0 only when the stream finished properly; a cut-off stream must not pass as success. */
static int sk_stream_end(void *state, void *sstate, lg_stream_out_t *out, lg_errbuf_t *err)
{
    (void)state;
    (void)out;
    const struct stream *s = sstate;
    if (s->saw_done || s->saw_finish)
        return 0;
    sk_seterr(err, "upstream closed the stream before it finished");
    return LG_EBADRESPONSE;
}

/* stream_free: always called once stream_begin succeeded (finished, failed, or the client went away) */
static void sk_stream_free(void *state, void *sstate)
{
    (void)state;
    lg_host->free_mem(sstate);
}

/* ---- the provider table and the entry point -------------------------------------------------------------------------- */

/* static storage: the host keeps a pointer to it until dlclose */
static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t), /* lets the host see which members this build knows */
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .capabilities = LG_CAP_CHAT | LG_CAP_COMPLETIONS | LG_CAP_EMBEDDINGS | LG_CAP_STREAM,
    .name = PLUGIN_NAME,
    .version = PLUGIN_VERSION,
    .create = sk_create,
    .destroy = sk_destroy,
    .build_request = sk_build_request,
    .parse_response = sk_parse_response,
    .stream_begin = sk_stream_begin,
    .parse_stream_event = sk_parse_stream_event,
    .stream_end = sk_stream_end,
    .stream_free = sk_stream_free,
    .classify_error = sk_classify_error,
    .local_respond = NULL, /* only for LG_CAP_LOCAL providers that answer in-process */
};

/*
 * Called once after dlopen, on the main thread (again after every config reload that reopens the file). Keep the host
 * table, refuse a host whose ABI major differs, and hand out the static table.
 */
int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    if (host == NULL || host->abi_major != LG_PLUGIN_ABI_MAJOR) {
        sk_seterr(err, "built for plugin ABI %d.x, host has %u.x", LG_PLUGIN_ABI_MAJOR, host != NULL ? host->abi_major : 0);
        return LG_EINVAL;
    }
    /* a host member added in ABI 1.N may only be used when host->struct_size says the host has it */
    LG_PLUGIN_SET_HOST(host);
    lg_host->log(LG_LOG_DEBUG, PLUGIN_NAME, "plugin %s built against llmgate %s (ABI %d.%d)", PLUGIN_VERSION, LG_VERSION_STRING,
                 LG_PLUGIN_ABI_MAJOR, LG_PLUGIN_ABI_MINOR);
    *out = &provider;
    return 0;
}
