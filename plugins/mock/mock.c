/* SPDX-License-Identifier: MIT */
/*
 * `mock` provider plugin: a deterministic in-process "virtual upstream" that
 * answers in OpenAI wire format (JSON or SSE bytes) through local_respond;
 * the host feeds those bytes through the same parse callbacks as a real
 * upstream. Models: echo, lorem, embed (any model for embeddings), error-<status>.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llmgate/plugin.h"

LG_PLUGIN_DECLARE_HOST;
#include "../common/openai_wire.h"
#include "../common/plugin_util.h"

#define PLUGIN_NAME "mock"
#define PLUGIN_VERSION "1.0.0"
#define MAX_DELAY_MS 60000
#define MAX_DIMENSIONS 4096

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

static const char lorem_text[] =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore "
    "magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo "
    "consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
    "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.";

struct instance {
    struct pu_common c;      /* first: the shared OpenAI callbacks read it; only name is set */
    uint32_t chunk_words;    /* words per streamed content chunk */
    uint32_t chunk_delay_ms; /* delay between SSE events */
    uint32_t first_delay_ms; /* delay before the first byte */
    uint32_t dimensions;     /* embedding size unless the request sets "dimensions" */
};

/* ---- SSE body ----------------------------------------------------------------------------------------------------- */

/* Appends one SSE event "data: <compact json>\n\n"; takes ownership of obj. */
static void buf_add_event(struct pu_buf *b, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    pu_buf_adds(b, "data: ");
    if (s != NULL)
        pu_buf_adds(b, s);
    pu_buf_adds(b, "\n\n");
    free(s);
}

/* ---- lifecycle ---------------------------------------------------------------------------------------------------- */

static void mk_destroy(void *state)
{
    struct instance *in = state;
    if (in == NULL)
        return;
    pu_common_dispose(&in->c);
    lg_host->free_mem(in);
}

static int opt_uint(json_t *opts, const char *key, json_int_t lo, json_int_t hi, uint32_t *out, lg_errbuf_t *err)
{
    json_t *v = json_object_get(opts, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        pu_seterr(err, "options.%s must be an integer from %lld to %lld", key, (long long)lo, (long long)hi);
        return LG_EINVAL;
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int mk_create(const json_t *conf, void **state, lg_errbuf_t *err)
{
    *state = NULL;
    if (conf != NULL && !json_is_object(conf)) {
        pu_seterr(err, "provider config must be an object");
        return LG_EINVAL;
    }
    struct instance *in = lg_host->alloc(sizeof(*in));
    memset(in, 0, sizeof(*in));
    in->c.name = pu_conf_name(conf, PLUGIN_NAME);
    in->chunk_words = 1;
    in->dimensions = 8;
    json_t *opts = json_object_get(conf, "options");
    if (pu_parse_options(conf, in->c.name, NULL, NULL, err) != 0 ||
        opt_uint(opts, "chunk_words", 1, 1000000, &in->chunk_words, err) != 0 ||
        opt_uint(opts, "chunk_delay_ms", 0, MAX_DELAY_MS, &in->chunk_delay_ms, err) != 0 ||
        opt_uint(opts, "first_delay_ms", 0, MAX_DELAY_MS, &in->first_delay_ms, err) != 0 ||
        opt_uint(opts, "dimensions", 1, MAX_DIMENSIONS, &in->dimensions, err) != 0)
        goto fail;
    *state = in;
    return 0;
fail:
    mk_destroy(in);
    return LG_EINVAL;
}

/* ---- text helpers ------------------------------------------------------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static json_int_t count_words(const char *s)
{
    json_int_t n = 0;
    for (size_t i = 0; s[i] != '\0'; ++i)
        if (!is_space(s[i]) && (i == 0 || is_space(s[i - 1])))
            ++n;
    return n;
}

/* Text of a message content: a string, or the concatenated "text" parts of an array. */
static void content_text(json_t *content, struct pu_buf *out)
{
    if (json_is_string(content)) {
        pu_buf_add(out, json_string_value(content), json_string_length(content));
        return;
    }
    for (size_t i = 0; json_is_array(content) && i < json_array_size(content); ++i) {
        json_t *part = json_array_get(content, i);
        const char *t = json_string_value(json_object_get(part, "text"));
        if (t != NULL && pu_streq(json_string_value(json_object_get(part, "type")), "text"))
            pu_buf_adds(out, t);
    }
}

/* Prompt tokens: words in every message's text content plus one per message (chat) or per prompt (legacy). */
static json_int_t prompt_tokens(const lg_call_t *call)
{
    json_int_t n = 0;
    struct pu_buf t = {0};
    if (call->kind == LG_API_CHAT) {
        json_t *msgs = json_object_get(call->body, "messages");
        for (size_t i = 0; json_is_array(msgs) && i < json_array_size(msgs); ++i) {
            t.len = 0;
            pu_buf_add(&t, "", 0);
            content_text(json_object_get(json_array_get(msgs, i), "content"), &t);
            n += count_words(t.p) + 1;
        }
    } else {
        json_t *prompt = json_object_get(call->body, "prompt");
        if (json_is_string(prompt))
            n = count_words(json_string_value(prompt)) + 1;
        for (size_t i = 0; json_is_array(prompt) && i < json_array_size(prompt); ++i) {
            const char *s = json_string_value(json_array_get(prompt, i));
            n += (s != NULL ? count_words(s) : 0) + 1;
        }
    }
    lg_host->free_mem(t.p);
    return n;
}

/* The text the model "generates" before any max_tokens cut; host-allocated. */
static char *source_text(const lg_call_t *call, int lorem)
{
    struct pu_buf t = {0};
    pu_buf_add(&t, "", 0);
    if (lorem) {
        pu_buf_adds(&t, lorem_text);
    } else if (call->kind == LG_API_CHAT) {
        json_t *msgs = json_object_get(call->body, "messages");
        for (size_t i = json_is_array(msgs) ? json_array_size(msgs) : 0; i-- > 0;) {
            json_t *m = json_array_get(msgs, i);
            if (pu_streq(json_string_value(json_object_get(m, "role")), "user")) {
                content_text(json_object_get(m, "content"), &t);
                break;
            }
        }
    } else {
        json_t *prompt = json_object_get(call->body, "prompt");
        if (json_is_array(prompt))
            prompt = json_array_get(prompt, 0);
        if (json_is_string(prompt))
            pu_buf_add(&t, json_string_value(prompt), json_string_length(prompt));
    }
    return t.p;
}

/* Start offsets of the words of text; returns the count (host-allocated array in *starts). */
static size_t word_starts(const char *text, size_t **starts)
{
    size_t n = 0, cap = 16;
    size_t *s = lg_host->alloc(cap * sizeof(*s));
    for (size_t i = 0; text[i] != '\0'; ++i) {
        if (!is_space(text[i]) && (i == 0 || is_space(text[i - 1]))) {
            if (n == cap)
                s = lg_host->realloc_mem(s, (cap *= 2) * sizeof(*s));
            s[n++] = i;
        }
    }
    *starts = s;
    return n;
}

static size_t word_end(const char *text, size_t start)
{
    while (text[start] != '\0' && !is_space(text[start]))
        ++start;
    return start;
}

static json_int_t request_max_tokens(const lg_call_t *call)
{
    json_t *v = json_object_get(call->body, "max_completion_tokens");
    if (!json_is_integer(v))
        v = json_object_get(call->body, "max_tokens");
    return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

/* ---- responses ---------------------------------------------------------------------------------------------------- */

static json_t *usage_obj(json_int_t prompt, json_int_t completion)
{
    return json_pack("{sI sI sI}", "prompt_tokens", (json_int_t)prompt, "completion_tokens", (json_int_t)completion, "total_tokens",
                     (json_int_t)(prompt + completion));
}

static void set_body(lg_local_resp_t *out, int status, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    out->status = status;
    out->body_len = s != NULL ? strlen(s) : 0;
    out->body = pu_strndup(s != NULL ? s : "", out->body_len);
    free(s);
}

static void error_response(lg_local_resp_t *out, int status, const char *model)
{
    char msg[200];
    const char *type = "server_error", *code = NULL;
    if (status == 429) {
        type = "requests";
        code = "rate_limit_exceeded";
        snprintf(msg, sizeof(msg), "Rate limit reached for %s (mock upstream)", model);
    } else if (status == 404) {
        type = "invalid_request_error";
        code = "model_not_found";
        snprintf(msg, sizeof(msg), "The model `%s` does not exist (mock upstream)", model);
    } else if (status >= 400 && status < 500) {
        type = "invalid_request_error";
        snprintf(msg, sizeof(msg), "The mock upstream rejected the request (HTTP %d)", status);
    } else {
        snprintf(msg, sizeof(msg), "The mock upstream had an error while processing your request (HTTP %d)", status);
    }
    set_body(out, status,
             json_pack("{s{ss ss so? so}}", "error", "message", msg, "type", type, "code", code != NULL ? json_string(code) : NULL,
                       "param", json_null()));
}

static void embeddings_response(const struct instance *in, const lg_call_t *call, lg_local_resp_t *out)
{
    json_t *input = json_object_get(call->body, "input");
    json_t *dim = json_object_get(call->body, "dimensions");
    size_t dims = in->dimensions;
    if (json_is_integer(dim) && json_integer_value(dim) >= 1 && json_integer_value(dim) <= MAX_DIMENSIONS)
        dims = (size_t)json_integer_value(dim);
    /* a string, an array of strings, an array of token ids or an array of token arrays */
    json_t *items = json_array();
    if (json_is_array(input) && json_array_size(input) > 0 && !json_is_integer(json_array_get(input, 0)))
        json_array_extend(items, input);
    else if (input != NULL)
        json_array_append(items, input);

    json_t *data = json_array();
    json_int_t tokens = 0;
    for (size_t i = 0; i < json_array_size(items); ++i) {
        json_t *it = json_array_get(items, i);
        char *bytes = json_is_string(it) ? NULL : json_dumps(it, JSON_COMPACT | JSON_ENCODE_ANY);
        const char *s = json_is_string(it) ? json_string_value(it) : bytes != NULL ? bytes : "";
        size_t slen = json_is_string(it) ? json_string_length(it) : strlen(s);
        tokens += json_is_string(it) ? count_words(s) : (json_int_t)json_array_size(it);
        /* FNV-1a of the input seeds a splitmix64 sequence: same input, same vector, on every machine */
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t k = 0; k < slen; ++k)
            h = (h ^ (unsigned char)s[k]) * 0x100000001b3ull;
        double *v = lg_host->alloc(dims * sizeof(double)), norm = 0;
        for (size_t k = 0; k < dims; ++k) {
            uint64_t z = (h += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            v[k] = (double)(z >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0;
            norm += v[k] * v[k];
        }
        norm = norm > 0 ? sqrt(norm) : 1.0;
        json_t *vec = json_array();
        for (size_t k = 0; k < dims; ++k)
            json_array_append_new(vec, json_real(v[k] / norm));
        lg_host->free_mem(v);
        free(bytes);
        json_array_append_new(data, json_pack("{ss sI so}", "object", "embedding", "index", (json_int_t)i, "embedding", vec));
    }
    json_decref(items);
    set_body(out, 200,
             json_pack("{ss so ss s{sI sI}}", "object", "list", "data", data, "model", call->upstream_model, "usage",
                       "prompt_tokens", tokens, "total_tokens", tokens));
}

static json_t *chunk_base(const lg_call_t *call, const char *id, int64_t created, json_t *choice)
{
    return json_pack("{ss ss sI ss s[o]}", "id", id, "object",
                     call->kind == LG_API_CHAT ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)created,
                     "model", call->upstream_model, "choices", choice);
}

static json_t *stream_choice(const lg_call_t *call, const char *text, size_t len, const char *finish, int role)
{
    json_t *fr = finish != NULL ? json_string(finish) : json_null();
    if (call->kind == LG_API_CHAT) {
        json_t *delta = json_object();
        if (role)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (text != NULL)
            json_object_set_new(delta, "content", json_stringn(text, len));
        return json_pack("{sI so so}", "index", (json_int_t)0, "delta", delta, "finish_reason", fr);
    }
    return json_pack("{ss% sI so so}", "text", text != NULL ? text : "", text != NULL ? len : 0, "index", (json_int_t)0, "logprobs",
                     json_null(), "finish_reason", fr);
}

static int mk_local_respond(void *state, const lg_call_t *call, lg_local_resp_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    const char *model = call->upstream_model != NULL ? call->upstream_model : "";
    memset(out, 0, sizeof(*out));
    out->first_delay_ms = in->first_delay_ms;
    out->chunk_delay_ms = in->chunk_delay_ms;
    out->chunk_bytes = 0; /* with a delay the host splits at SSE event boundaries */

    if (strncmp(model, "error-", 6) == 0) {
        char *end;
        long st = strtol(model + 6, &end, 10);
        error_response(out, *end == '\0' && st >= 400 && st <= 599 ? (int)st : 500, model);
        return 0;
    }
    if (call->kind == LG_API_EMBEDDINGS) {
        if (call->stream) {
            pu_seterr(err, "embeddings cannot be streamed");
            return LG_EUNSUPPORTED;
        }
        embeddings_response(in, call, out);
        return 0;
    }
    int lorem = strcmp(model, "lorem") == 0;
    if (!lorem && strcmp(model, "echo") != 0) {
        error_response(out, 404, model);
        return 0;
    }

    /* the "generation": source text cut after max_tokens words */
    char *text = source_text(call, lorem);
    size_t *starts;
    size_t nwords = word_starts(text, &starts), end = strlen(text);
    json_int_t max = request_max_tokens(call);
    const char *finish = "stop";
    if (max > 0 && (size_t)max < nwords) {
        size_t cut = starts[max];
        while (cut > 0 && is_space(text[cut - 1]))
            --cut;
        end = cut;
        nwords = (size_t)max;
        finish = "length";
    }
    json_int_t ptoks = prompt_tokens(call);
    int64_t created = lg_host->unix_time();
    char id[160];
    snprintf(id, sizeof(id), "%s-mock-%s", call->kind == LG_API_CHAT ? "chatcmpl" : "cmpl",
             call->request_id != NULL ? call->request_id : "0");

    if (!call->stream) {
        json_t *choice;
        if (call->kind == LG_API_CHAT)
            choice = json_pack("{sI s{ss ss%} ss}", "index", (json_int_t)0, "message", "role", "assistant", "content", text, end,
                               "finish_reason", finish);
        else
            choice = json_pack("{ss% sI so ss}", "text", text, end, "index", (json_int_t)0, "logprobs", json_null(),
                               "finish_reason", finish);
        set_body(out, 200,
                 json_pack("{ss ss sI ss s[o] so}", "id", id, "object",
                           call->kind == LG_API_CHAT ? "chat.completion" : "text_completion", "created", (json_int_t)created,
                           "model", model, "choices", choice, "usage", usage_obj(ptoks, (json_int_t)nwords)));
    } else {
        struct pu_buf b = {0};
        if (call->kind == LG_API_CHAT)
            buf_add_event(&b, chunk_base(call, id, created, stream_choice(call, "", 0, NULL, 1)));
        /* content pieces of chunk_words words; a piece starts right after the previous piece's last word, so the
         * whitespace before a word travels with it (" world", like real tokens) and the pieces concatenate exactly */
        for (size_t w = 0; w < nwords; w += in->chunk_words) {
            size_t from = w == 0 ? 0 : word_end(text, starts[w - 1]);
            size_t to = w + in->chunk_words < nwords ? word_end(text, starts[w + in->chunk_words - 1]) : end;
            buf_add_event(&b, chunk_base(call, id, created, stream_choice(call, text + from, to - from, NULL, 0)));
        }
        json_t *fin =
            chunk_base(call, id, created,
                       call->kind == LG_API_CHAT ? stream_choice(call, NULL, 0, finish, 0) : stream_choice(call, "", 0, finish, 0));
        buf_add_event(&b, fin);
        json_t *u = json_pack("{ss ss sI ss s[] so}", "id", id, "object",
                              call->kind == LG_API_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                              (json_int_t)created, "model", model, "choices", "usage", usage_obj(ptoks, (json_int_t)nwords));
        buf_add_event(&b, u);
        pu_buf_adds(&b, "data: [DONE]\n\n");
        out->status = 200;
        out->body = b.p;
        out->body_len = b.len;
    }
    lg_host->free_mem(starts);
    lg_host->free_mem(text);
    return 0;
}

/* Parsing: the virtual upstream speaks OpenAI, so the OpenAI wire callbacks apply unchanged. */
static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .capabilities = LG_CAP_LOCAL | LG_CAP_CHAT | LG_CAP_COMPLETIONS | LG_CAP_EMBEDDINGS | LG_CAP_STREAM,
    .name = PLUGIN_NAME,
    .version = PLUGIN_VERSION,
    .create = mk_create,
    .destroy = mk_destroy,
    .build_request = NULL,
    .parse_response = ow_cb_parse_response,
    .stream_begin = ow_cb_stream_begin,
    .parse_stream_event = ow_cb_parse_stream_event,
    .stream_end = ow_cb_stream_end,
    .stream_free = ow_cb_stream_free,
    .classify_error = ow_cb_classify_error,
    .local_respond = mk_local_respond,
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    return pu_plugin_init(host, &provider, out, err);
}
