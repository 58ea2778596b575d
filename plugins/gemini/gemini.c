/* SPDX-License-Identifier: MIT */
/*
 * `gemini` provider plugin: Google Gemini API (generativelanguage.googleapis.com, v1beta).
 *
 *   chat        POST {base}/models/{m}:generateContent
 *   chat stream POST {base}/models/{m}:streamGenerateContent?alt=sse   (one complete GenerateContentResponse per event,
 *                                                                      no [DONE]: a finishReason ends it)
 *   embeddings  POST {base}/models/{m}:batchEmbedContents
 *
 * plugins/gemini/README.md documents the translation rules, the options and every
 * decision taken where the mapping is not one-to-one. The key is sent as `x-goog-api-key`, never in the URL.
 *
 * Thought signatures (§2.1): a functionCall part's `thoughtSignature` is returned to the client as
 * tool_calls[i].extra_content.google.thought_signature and also remembered in a bounded per-instance FIFO cache
 * (tool_call id → signature), so a follow-up request whose client dropped extra_content still carries it upstream.
 * The cache is per instance, i.e. per worker thread: a follow-up served by another worker relies on extra_content.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "llmgate/plugin.h"
#include "json/scan.h"

LG_PLUGIN_DECLARE_HOST;
#include "../common/plugin_util.h"

#define PLUGIN_NAME "gemini"
#define PLUGIN_VERSION "1.0.0"
#define DEFAULT_BASE_URL "https://generativelanguage.googleapis.com/v1beta"
#define NUM_BASE_HEADERS 3 /* Content-Type, Accept, x-goog-api-key */
#define MAX_EXTRA_HEADERS (LG_HTTP_MAX_HEADERS - NUM_BASE_HEADERS)
#define MAX_STRIP_KEYWORDS 64
#define DEFAULT_SIG_CACHE 1024
#define MAX_SIG_CACHE 100000
#define MAX_SCHEMA_DEPTH 64
#define MAX_REF_DEPTH 8
#define MAX_REF_INLINES 256 /* per schema: recursive definitions must not blow up the request */
#define MAX_CAND 8          /* stream: per-candidate state for candidate indexes 0..7 */

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

/* JSON-Schema keywords Gemini's OpenAPI-subset Schema rejects. `const` becomes `enum:[value]` (string values only),
 * `oneOf` becomes `anyOf` (when there is no anyOf), `$ref` is inlined from the root's $defs/definitions when it is a
 * local reference; every other listed keyword is removed. Property names are never touched. */
static const char *const default_strip[] = {
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "definitions",
    "$comment",
    "additionalProperties",
    "patternProperties",
    "unevaluatedProperties",
    "const",
    "examples",
    "default",
    "title",
    "oneOf",
};

struct sig_entry {
    uint64_t hash; /* FNV-1a of id, 0 = empty slot */
    char *id;
    char *sig;
};

struct instance {
    struct pu_common c; /* api_key NULL = no x-goog-api-key header */
    char *strip[MAX_STRIP_KEYWORDS];
    size_t num_strip;
    struct sig_entry *cache; /* FIFO ring of cache_cap entries */
    size_t cache_cap, cache_next;
};

/* ---- small helpers ------------------------------------------------------------------------------------------------ */

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; ++i) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* Gemini API keys look like "AIza" + 35 characters: redact them wherever they appear, plus the configured key. */
static void gm_redact(char *msg, size_t cap, const char *api_key)
{
    pu_redact(msg, cap, api_key);
    for (char *p = strstr(msg, "AIza"); p != NULL; p = strstr(p + 1, "AIza")) {
        size_t j = 4;
        while ((p[j] >= 'a' && p[j] <= 'z') || (p[j] >= 'A' && p[j] <= 'Z') || (p[j] >= '0' && p[j] <= '9') || p[j] == '-' ||
               p[j] == '_')
            ++j;
        if (j >= 20) {
            memcpy(p, "AIza***", 7);
            memmove(p + 7, p + j, strlen(p + j) + 1);
        }
    }
}

/* ---- thought-signature cache -------------------------------------------------------------------------------------- */

static uint64_t id_hash(const char *id)
{
    uint64_t h = fnv1a(FNV_INIT, id, strlen(id));
    return h != 0 ? h : 1;
}

static const char *sig_lookup(const struct instance *in, const char *id)
{
    if (in->cache_cap == 0 || id == NULL || *id == '\0')
        return NULL;
    uint64_t h = id_hash(id);
    for (size_t i = 0; i < in->cache_cap; ++i)
        if (in->cache[i].hash == h && strcmp(in->cache[i].id, id) == 0)
            return in->cache[i].sig;
    return NULL;
}

static void sig_store(struct instance *in, const char *id, const char *sig)
{
    if (in->cache_cap == 0 || id == NULL || *id == '\0' || sig == NULL)
        return;
    uint64_t h = id_hash(id);
    for (size_t i = 0; i < in->cache_cap; ++i) {
        struct sig_entry *e = &in->cache[i];
        if (e->hash == h && strcmp(e->id, id) == 0) {
            lg_host->free_mem(e->sig);
            e->sig = pu_strdup(sig);
            return;
        }
    }
    struct sig_entry *e = &in->cache[in->cache_next]; /* FIFO: overwrite the oldest slot */
    lg_host->free_mem(e->id);
    lg_host->free_mem(e->sig);
    e->hash = h;
    e->id = pu_strdup(id);
    e->sig = pu_strdup(sig);
    in->cache_next = (in->cache_next + 1) % in->cache_cap;
}

/* ---- create / destroy --------------------------------------------------------------------------------------------- */

static void gm_destroy(void *state)
{
    struct instance *in = state;
    if (in == NULL)
        return;
    pu_common_dispose(&in->c);
    for (size_t i = 0; i < in->num_strip; ++i)
        lg_host->free_mem(in->strip[i]);
    for (size_t i = 0; i < in->cache_cap; ++i) {
        lg_host->free_mem(in->cache[i].id);
        lg_host->free_mem(in->cache[i].sig);
    }
    lg_host->free_mem(in->cache);
    lg_host->free_mem(in);
}

static int parse_option(void *instance, const char *key, json_t *v, lg_errbuf_t *err)
{
    struct instance *in = instance;
    if (strcmp(key, "strip_schema_keywords") == 0) {
        if (!json_is_array(v) || json_array_size(v) > MAX_STRIP_KEYWORDS) {
            pu_seterr(err, "options.strip_schema_keywords must be an array of at most %d strings", MAX_STRIP_KEYWORDS);
            return LG_EINVAL;
        }
        for (size_t i = 0; i < in->num_strip; ++i)
            lg_host->free_mem(in->strip[i]);
        in->num_strip = 0;
        for (size_t i = 0; i < json_array_size(v); ++i) {
            json_t *s = json_array_get(v, i);
            if (!json_is_string(s) || json_string_length(s) == 0) {
                pu_seterr(err, "options.strip_schema_keywords[%zu] must be a non-empty string", i);
                return LG_EINVAL;
            }
            in->strip[in->num_strip++] = pu_strdup(json_string_value(s));
        }
    } else if (strcmp(key, "thought_signature_cache") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MAX_SIG_CACHE) {
            pu_seterr(err, "options.thought_signature_cache must be an integer from 0 to %d", MAX_SIG_CACHE);
            return LG_EINVAL;
        }
        in->cache_cap = (size_t)json_integer_value(v);
    } else {
        return PU_UNKNOWN_OPTION;
    }
    return 0;
}

static int gm_create(const json_t *conf, void **state, lg_errbuf_t *err)
{
    *state = NULL;
    struct instance *in = lg_host->alloc(sizeof(*in));
    memset(in, 0, sizeof(*in));
    in->cache_cap = DEFAULT_SIG_CACHE;
    for (size_t i = 0; i < sizeof(default_strip) / sizeof(default_strip[0]); ++i)
        in->strip[in->num_strip++] = pu_strdup(default_strip[i]);
    if (pu_common_parse(&in->c, conf, PLUGIN_NAME, DEFAULT_BASE_URL, MAX_EXTRA_HEADERS, err) != 0 ||
        pu_parse_options(conf, in->c.name, parse_option, in, err) != 0) {
        in->cache_cap = 0; /* nothing allocated yet */
        gm_destroy(in);
        return LG_EINVAL;
    }
    if (in->cache_cap > 0) {
        in->cache = lg_host->alloc(in->cache_cap * sizeof(*in->cache));
        memset(in->cache, 0, in->cache_cap * sizeof(*in->cache));
    }
    *state = in;
    return 0;
}

/* ---- schema stripping --------------------------------------------------------------------------------------------- */

static int is_stripped(const struct instance *in, const char *key)
{
    for (size_t i = 0; i < in->num_strip; ++i)
        if (strcmp(in->strip[i], key) == 0)
            return 1;
    return 0;
}

struct schema_ctx {
    const struct instance *in;
    const json_t *root; /* for local $ref resolution */
    int ref_depth;
    int inlines;
};

static json_t *strip_schema(struct schema_ctx *sc, const json_t *s, int depth);

static json_t *strip_schema_array(struct schema_ctx *sc, const json_t *a, int depth)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        json_array_append_new(out, strip_schema(sc, v, depth + 1));
    }
    return out;
}

/* name → schema maps (properties, $defs kept by configuration, ...) */
static json_t *strip_schema_map(struct schema_ctx *sc, const json_t *m, int depth)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        json_object_set_new(out, k, strip_schema(sc, v, depth + 1));
    }
    return out;
}

/* "#/$defs/Name" or "#/definitions/Name" in the root schema; NULL if not found */
static const json_t *resolve_ref(const struct schema_ctx *sc, const char *ref)
{
    static const char *const prefixes[] = {"#/$defs/", "#/definitions/"};
    for (size_t i = 0; i < 2; ++i) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(ref, prefixes[i], n) == 0) {
            const json_t *defs = json_object_get(sc->root, i == 0 ? "$defs" : "definitions");
            const json_t *d = json_object_get(defs, ref + n);
            return json_is_object(d) ? d : NULL;
        }
    }
    return NULL;
}

static json_t *strip_schema(struct schema_ctx *sc, const json_t *s, int depth)
{
    if (!json_is_object(s) || depth > MAX_SCHEMA_DEPTH)
        return json_deep_copy(s);
    const struct instance *in = sc->in;
    json_t *out = json_object();

    /* local $ref: inline the definition (bounded depth for recursive schemas), siblings override it */
    json_t *ref = json_object_get(s, "$ref");
    if (json_is_string(ref) && is_stripped(in, "$ref") && sc->ref_depth < MAX_REF_DEPTH && sc->inlines < MAX_REF_INLINES) {
        const json_t *def = resolve_ref(sc, json_string_value(ref));
        if (def != NULL) {
            ++sc->inlines;
            ++sc->ref_depth;
            json_t *inl = strip_schema(sc, def, depth + 1);
            --sc->ref_depth;
            json_object_update(out, inl);
            json_decref(inl);
        }
    }

    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v)
    {
        if (strcmp(k, "const") == 0 && is_stripped(in, k)) {
            if (json_is_string(v) && json_object_get(s, "enum") == NULL)
                json_object_set_new(out, "enum", json_pack("[O]", v));
            continue;
        }
        if (strcmp(k, "oneOf") == 0 && is_stripped(in, k)) {
            if (json_is_array(v) && json_object_get(s, "anyOf") == NULL)
                json_object_set_new(out, "anyOf", strip_schema_array(sc, v, depth));
            continue;
        }
        if (is_stripped(in, k))
            continue;
        if (strcmp(k, "format") == 0 && pu_streq(json_string_value(json_object_get(s, "type")), "string") &&
            !pu_streq(json_string_value(v), "enum") && !pu_streq(json_string_value(v), "date-time"))
            continue; /* Gemini: "only 'enum' and 'date-time' are supported for STRING type" */
        if (strcmp(k, "type") == 0 && json_is_array(v)) {
            /* ["string","null"] → "string" + nullable (Schema.type is a single value) */
            size_t i;
            json_t *t;
            const char *first = NULL;
            int has_null = 0;
            json_array_foreach(v, i, t)
            {
                const char *ts = json_string_value(t);
                if (ts == NULL)
                    continue;
                if (strcmp(ts, "null") == 0)
                    has_null = 1;
                else if (first == NULL)
                    first = ts;
            }
            if (first != NULL)
                json_object_set_new(out, "type", json_string(first));
            if (has_null)
                json_object_set_new(out, "nullable", json_true());
            continue;
        }
        if ((strcmp(k, "properties") == 0 || strcmp(k, "patternProperties") == 0 || strcmp(k, "$defs") == 0 ||
             strcmp(k, "definitions") == 0 || strcmp(k, "dependentSchemas") == 0) &&
            json_is_object(v))
            json_object_set_new(out, k, strip_schema_map(sc, v, depth));
        else if ((strcmp(k, "anyOf") == 0 || strcmp(k, "oneOf") == 0 || strcmp(k, "allOf") == 0 || strcmp(k, "prefixItems") == 0) &&
                 json_is_array(v))
            json_object_set_new(out, k, strip_schema_array(sc, v, depth));
        else if ((strcmp(k, "items") == 0 || strcmp(k, "not") == 0 || strcmp(k, "additionalProperties") == 0 ||
                  strcmp(k, "additionalItems") == 0 || strcmp(k, "contains") == 0 || strcmp(k, "propertyNames") == 0) &&
                 (json_is_object(v) || json_is_array(v)))
            json_object_set_new(out, k, json_is_array(v) ? strip_schema_array(sc, v, depth) : strip_schema(sc, v, depth + 1));
        else
            json_object_set(out, k, v);
    }
    return out;
}

static json_t *clean_schema(const struct instance *in, const json_t *schema)
{
    struct schema_ctx sc = {in, schema, 0, 0};
    return strip_schema(&sc, schema, 0);
}

/* ---- request: messages -------------------------------------------------------------------------------------------- */

/* Text of a system/tool message content: a string or an array of text parts (other parts are ignored). */
static void content_text(const json_t *content, struct pu_buf *b)
{
    if (json_is_string(content)) {
        pu_buf_add(b, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t))
            pu_buf_add(b, json_string_value(t), json_string_length(t));
    }
}

static const char *mime_from_url(const char *url)
{
    static const struct {
        const char *ext, *mime;
    } map[] = {
        {"png", "image/png"},   {"jpg", "image/jpeg"},  {"jpeg", "image/jpeg"}, {"gif", "image/gif"},
        {"webp", "image/webp"}, {"heic", "image/heic"}, {"heif", "image/heif"}, {"pdf", "application/pdf"},
        {"mp3", "audio/mp3"},   {"wav", "audio/wav"},   {"mp4", "video/mp4"},   {"txt", "text/plain"},
    };
    size_t end = strcspn(url, "?#");
    size_t dot = end;
    while (dot > 0 && url[dot - 1] != '.' && url[dot - 1] != '/')
        --dot;
    if (dot > 0 && url[dot - 1] == '.') {
        size_t n = end - dot;
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); ++i)
            if (strlen(map[i].ext) == n && strncasecmp(url + dot, map[i].ext, n) == 0)
                return map[i].mime;
    }
    return "image/jpeg";
}

/* data:<mime>[;params];base64,<data> → {inlineData:{mimeType,data}}; http(s) URL → {fileData:{mimeType,fileUri}} */
static json_t *media_part(const char *url, size_t len, const char *default_mime, lg_errbuf_t *err, size_t msg_i)
{
    if (len >= 5 && strncasecmp(url, "data:", 5) == 0) {
        const char *comma = memchr(url, ',', len);
        if (comma == NULL) {
            pu_seterr(err, "messages[%zu]: malformed data URI", msg_i);
            return NULL;
        }
        const char *meta = url + 5;
        size_t mlen = (size_t)(comma - meta);
        size_t mime_len = 0;
        while (mime_len < mlen && meta[mime_len] != ';')
            ++mime_len;
        int b64 = 0;
        for (size_t i = mime_len; i + 7 <= mlen; ++i)
            if (strncasecmp(meta + i, ";base64", 7) == 0)
                b64 = 1;
        if (!b64) {
            pu_seterr(err, "messages[%zu]: only base64 data URIs are supported", msg_i);
            return NULL;
        }
        json_t *mime = mime_len > 0 ? json_stringn(meta, mime_len) : json_string(default_mime);
        json_t *data = json_stringn(comma + 1, len - (size_t)(comma + 1 - url));
        return json_pack("{s{so so}}", "inlineData", "mimeType", mime, "data", data);
    }
    if ((len >= 7 && strncasecmp(url, "http://", 7) == 0) || (len >= 8 && strncasecmp(url, "https://", 8) == 0) ||
        (len >= 5 && strncasecmp(url, "gs://", 5) == 0))
        return json_pack("{s{ss ss}}", "fileData", "mimeType", mime_from_url(url), "fileUri", url);
    pu_seterr(err, "messages[%zu]: unsupported media URL (need a data: URI or an http(s) URL)", msg_i);
    return NULL;
}

/* user/assistant content → parts (appended). Returns 0 or an lg_err_t. */
static int content_parts(const json_t *content, json_t *parts, lg_errbuf_t *err, size_t msg_i)
{
    if (content == NULL || json_is_null(content))
        return 0;
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            json_array_append_new(parts, json_pack("{sO}", "text", content));
        return 0;
    }
    if (!json_is_array(content)) {
        pu_seterr(err, "messages[%zu].content must be a string or an array of parts", msg_i);
        return LG_EINVAL;
    }
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        const char *type = json_string_value(json_object_get(p, "type"));
        if (type == NULL) {
            pu_seterr(err, "messages[%zu].content[%zu] has no type", msg_i, i);
            return LG_EINVAL;
        }
        if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0) {
            json_t *t = json_object_get(p, type);
            if (!json_is_string(t)) {
                pu_seterr(err, "messages[%zu].content[%zu].%s must be a string", msg_i, i, type);
                return LG_EINVAL;
            }
            if (json_string_length(t) > 0)
                json_array_append_new(parts, json_pack("{sO}", "text", t));
        } else if (strcmp(type, "image_url") == 0) {
            json_t *iu = json_object_get(p, "image_url");
            json_t *u = json_is_object(iu) ? json_object_get(iu, "url") : iu;
            if (!json_is_string(u)) {
                pu_seterr(err, "messages[%zu].content[%zu].image_url.url must be a string", msg_i, i);
                return LG_EINVAL;
            }
            json_t *mp = media_part(json_string_value(u), json_string_length(u), "image/jpeg", err, msg_i);
            if (mp == NULL)
                return LG_EINVAL;
            json_array_append_new(parts, mp);
        } else if (strcmp(type, "input_audio") == 0) {
            json_t *ia = json_object_get(p, "input_audio");
            const char *data = json_string_value(json_object_get(ia, "data"));
            const char *fmt = json_string_value(json_object_get(ia, "format"));
            if (data == NULL || fmt == NULL) {
                pu_seterr(err, "messages[%zu].content[%zu].input_audio needs data and format", msg_i, i);
                return LG_EINVAL;
            }
            char mime[64];
            snprintf(mime, sizeof(mime), "audio/%s", fmt);
            json_array_append_new(parts, json_pack("{s{ss ss}}", "inlineData", "mimeType", mime, "data", data));
        } else if (strcmp(type, "file") == 0) {
            json_t *fd = json_object_get(json_object_get(p, "file"), "file_data");
            if (!json_is_string(fd)) {
                pu_seterr(err, "messages[%zu].content[%zu].file.file_data must be a data URI", msg_i, i);
                return LG_EUNSUPPORTED;
            }
            json_t *mp = media_part(json_string_value(fd), json_string_length(fd), "application/pdf", err, msg_i);
            if (mp == NULL)
                return LG_EINVAL;
            json_array_append_new(parts, mp);
        } else {
            pu_seterr(err, "messages[%zu].content[%zu]: content part type \"%s\" is not supported by Gemini", msg_i, i, type);
            return LG_EUNSUPPORTED;
        }
    }
    return 0;
}

/* Appends parts (stolen) as a turn of role, merging into the previous turn when it has the same role. */
static void append_turn(json_t *contents, const char *role, json_t *parts)
{
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return;
    }
    size_t n = json_array_size(contents);
    json_t *last = n > 0 ? json_array_get(contents, n - 1) : NULL;
    if (last != NULL && pu_streq(json_string_value(json_object_get(last, "role")), role)) {
        json_array_extend(json_object_get(last, "parts"), parts);
        json_decref(parts);
        return;
    }
    json_array_append_new(contents, json_pack("{ss so}", "role", role, "parts", parts));
}

/* function.arguments (a JSON string; "" → {}) → args object. Invalid or non-object JSON is kept as {"arguments": s}. */
static json_t *args_object(struct instance *in, const json_t *a)
{
    if (json_is_object(a))
        return json_deep_copy(a);
    const char *s = json_string_value(a);
    if (s == NULL)
        return json_object();
    size_t n = json_string_length(a), i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        ++i;
    if (i == n)
        return json_object();
    json_t *j = json_loadb(s, n, JSON_DECODE_ANY, NULL);
    if (json_is_object(j))
        return j;
    if (json_is_null(j)) {
        json_decref(j);
        return json_object(); /* "null" arguments: no arguments */
    }
    json_decref(j);
    lg_host->log(LG_LOG_DEBUG, in->c.name, "tool call arguments are not a JSON object; sent as {\"arguments\": ...}");
    return json_pack("{sO}", "arguments", a);
}

static const char *tool_call_sig(const json_t *tc)
{
    return json_string_value(json_object_get(json_object_get(json_object_get(tc, "extra_content"), "google"), "thought_signature"));
}

/* Name of the function a tool message answers: by tool_call_id among earlier assistant tool_calls, else the message's
 * own `name` (legacy `function` messages), else by position in the run of tool messages after the last assistant
 * message (clients that rewrote or dropped the ids). */
static const char *tool_name_for(const json_t *msgs, size_t upto, const json_t *msg, const json_t *last_calls, size_t pos)
{
    const char *id = json_string_value(json_object_get(msg, "tool_call_id"));
    if (id != NULL) {
        for (size_t m = upto; m-- > 0;) {
            json_t *calls = json_object_get(json_array_get(msgs, m), "tool_calls");
            size_t i;
            json_t *tc;
            json_array_foreach(calls, i, tc)
            {
                if (pu_streq(json_string_value(json_object_get(tc, "id")), id)) {
                    const char *nm = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
                    if (nm != NULL)
                        return nm;
                }
            }
        }
    }
    const char *own = json_string_value(json_object_get(msg, "name"));
    if (own != NULL && *own != '\0')
        return own;
    json_t *tc = json_array_get(last_calls, pos);
    return json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
}

static int build_contents(struct instance *in, const json_t *msgs, json_t *contents, json_t *sys_parts, lg_errbuf_t *err)
{
    const json_t *last_calls = NULL; /* tool_calls of the last assistant message */
    size_t tool_pos = 0;             /* tool messages since then */
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || role == NULL) {
            pu_seterr(err, "messages[%zu] needs a role", i);
            return LG_EINVAL;
        }
        json_t *content = json_object_get(m, "content");
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            struct pu_buf b = {0};
            content_text(content, &b);
            if (b.len > 0)
                json_array_append_new(sys_parts, json_pack("{ss%}", "text", b.p, b.len));
            pu_buf_free(&b);
        } else if (strcmp(role, "user") == 0) {
            json_t *parts = json_array();
            int rc = content_parts(content, parts, err, i);
            if (rc != 0) {
                json_decref(parts);
                return rc;
            }
            append_turn(contents, "user", parts);
        } else if (strcmp(role, "assistant") == 0) {
            json_t *parts = json_array();
            int rc = content_parts(content, parts, err, i);
            if (rc != 0) {
                json_decref(parts);
                return rc;
            }
            json_t *calls = json_object_get(m, "tool_calls");
            size_t k;
            json_t *tc;
            json_array_foreach(calls, k, tc)
            {
                json_t *fn = json_object_get(tc, "function");
                const char *name = json_string_value(json_object_get(fn, "name"));
                if (name == NULL) {
                    json_decref(parts);
                    pu_seterr(err, "messages[%zu].tool_calls[%zu].function.name must be a string", i, k);
                    return LG_EINVAL;
                }
                json_t *part = json_pack("{s{ss so}}", "functionCall", "name", name, "args",
                                         args_object(in, json_object_get(fn, "arguments")));
                const char *sig = tool_call_sig(tc);
                if (sig == NULL)
                    sig = sig_lookup(in, json_string_value(json_object_get(tc, "id")));
                if (sig != NULL)
                    json_object_set_new(part, "thoughtSignature", json_string(sig));
                json_array_append_new(parts, part);
            }
            last_calls = calls;
            tool_pos = 0;
            append_turn(contents, "model", parts);
        } else if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
            const char *name = tool_name_for(msgs, i, m, last_calls, tool_pos++);
            if (name == NULL) {
                pu_seterr(err, "messages[%zu]: cannot find the tool call this tool message answers", i);
                return LG_EINVAL;
            }
            struct pu_buf b = {0};
            content_text(content, &b);
            json_t *resp = b.len > 0 ? json_loadb(b.p, b.len, 0, NULL) : NULL;
            if (!json_is_object(resp)) {
                json_decref(resp);
                resp = json_pack("{ss%}", "result", b.p != NULL ? b.p : "", b.len);
            }
            pu_buf_free(&b);
            json_t *parts = json_pack("[{s{ss so}}]", "functionResponse", "name", name, "response", resp);
            append_turn(contents, "user", parts);
        } else {
            pu_seterr(err, "messages[%zu]: unsupported role \"%s\"", i, role);
            return LG_EINVAL;
        }
    }
    return 0;
}

/* ---- request: tools, config --------------------------------------------------------------------------------------- */

static int build_tools(struct instance *in, const json_t *body, json_t *b, lg_errbuf_t *err)
{
    json_t *tools = json_object_get(body, "tools");
    if (tools != NULL && !json_is_null(tools)) {
        if (!json_is_array(tools)) {
            pu_seterr(err, "tools must be an array");
            return LG_EINVAL;
        }
        json_t *decls = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t)
        {
            const char *type = json_string_value(json_object_get(t, "type"));
            json_t *fn = json_object_get(t, "function");
            const char *name = json_string_value(json_object_get(fn, "name"));
            if ((type != NULL && strcmp(type, "function") != 0) || name == NULL) {
                json_decref(decls);
                pu_seterr(err, "tools[%zu]: only function tools with a name are supported by Gemini", i);
                return LG_EUNSUPPORTED;
            }
            json_t *d = json_pack("{ss}", "name", name);
            json_t *desc = json_object_get(fn, "description");
            if (json_is_string(desc))
                json_object_set(d, "description", desc);
            json_t *params = json_object_get(fn, "parameters");
            if (json_is_object(params)) {
                json_t *p = clean_schema(in, params);
                /* Gemini rejects an OBJECT schema with no properties: a parameterless function has no schema */
                json_t *props = json_object_get(p, "properties");
                if (pu_streq(json_string_value(json_object_get(p, "type")), "object") &&
                    (props == NULL || (json_is_object(props) && json_object_size(props) == 0)))
                    json_decref(p);
                else
                    json_object_set_new(d, "parameters", p);
            }
            json_array_append_new(decls, d);
        }
        if (json_array_size(decls) > 0)
            json_object_set_new(b, "tools", json_pack("[{so}]", "functionDeclarations", decls));
        else
            json_decref(decls);
    }

    json_t *tc = json_object_get(body, "tool_choice");
    if (tc != NULL && !json_is_null(tc)) {
        json_t *fcc = NULL;
        const char *s = json_string_value(tc);
        if (pu_streq(s, "auto"))
            fcc = json_pack("{ss}", "mode", "AUTO");
        else if (pu_streq(s, "none"))
            fcc = json_pack("{ss}", "mode", "NONE");
        else if (pu_streq(s, "required") || pu_streq(s, "any"))
            fcc = json_pack("{ss}", "mode", "ANY");
        else if (json_is_object(tc)) {
            const char *nm = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
            if (nm != NULL)
                fcc = json_pack("{ss s[s]}", "mode", "ANY", "allowedFunctionNames", nm);
        }
        if (fcc == NULL) {
            pu_seterr(
                err, "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}");
            return LG_EINVAL;
        }
        json_object_set_new(b, "toolConfig", json_pack("{so}", "functionCallingConfig", fcc));
    }
    return 0;
}

static json_t *thinking_config(const json_t *body)
{
    json_t *r = json_object_get(body, "reasoning");
    const char *effort = json_string_value(json_object_get(r, "effort"));
    if (effort == NULL)
        effort = json_string_value(json_object_get(body, "reasoning_effort"));
    json_t *mt = json_object_get(r, "max_tokens");
    int include = !json_is_true(json_object_get(r, "exclude"));
    json_int_t budget = -1;
    if (json_is_integer(mt) && json_integer_value(mt) >= 0)
        budget = json_integer_value(mt);
    else if (effort != NULL) {
        if (strcmp(effort, "none") == 0)
            budget = 0;
        else if (strcmp(effort, "minimal") == 0 || strcmp(effort, "low") == 0)
            budget = 1024;
        else if (strcmp(effort, "medium") == 0)
            budget = 8192;
        else if (strcmp(effort, "high") == 0)
            budget = 24576;
    } else if (json_is_false(json_object_get(r, "enabled"))) {
        budget = 0;
    } else if (json_is_true(json_object_get(r, "enabled"))) {
        /* dynamic thinking */
        return json_pack("{sI sb}", "thinkingBudget", (json_int_t)-1, "includeThoughts", include);
    }
    if (budget < 0)
        return NULL;
    if (budget == 0)
        return json_pack("{sI}", "thinkingBudget", (json_int_t)0);
    return json_pack("{sI sb}", "thinkingBudget", budget, "includeThoughts", include);
}

static int build_generation_config(struct instance *in, const json_t *body, json_t *b, lg_errbuf_t *err)
{
    json_t *gc = json_object();
    static const struct {
        const char *from, *to;
    } nums[] = {{"temperature", "temperature"},
                {"top_p", "topP"},
                {"top_k", "topK"},
                {"seed", "seed"},
                {"n", "candidateCount"},
                {"presence_penalty", "presencePenalty"},
                {"frequency_penalty", "frequencyPenalty"}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); ++i) {
        json_t *v = json_object_get(body, nums[i].from);
        if (json_is_number(v))
            json_object_set(gc, nums[i].to, v);
    }
    json_t *mct = json_object_get(body, "max_completion_tokens"), *mt = json_object_get(body, "max_tokens");
    json_t *maxt = json_is_integer(mct) ? mct : json_is_integer(mt) ? mt : NULL;
    if (maxt != NULL)
        json_object_set(gc, "maxOutputTokens", maxt);
    json_t *stop = json_object_get(body, "stop");
    if (json_is_string(stop)) {
        json_object_set_new(gc, "stopSequences", json_pack("[O]", stop));
    } else if (json_is_array(stop) && json_array_size(stop) > 0) {
        json_t *ss = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(stop, i, s)
        {
            if (json_is_string(s))
                json_array_append(ss, s);
        }
        json_object_set_new(gc, "stopSequences", ss);
    }
    json_t *rf = json_object_get(body, "response_format");
    if (rf != NULL && !json_is_null(rf)) {
        const char *type = json_string_value(json_object_get(rf, "type"));
        if (pu_streq(type, "json_object")) {
            json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        } else if (pu_streq(type, "json_schema")) {
            json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
            json_object_set_new(gc, "responseMimeType", json_string("application/json"));
            if (json_is_object(schema))
                json_object_set_new(gc, "responseSchema", clean_schema(in, schema));
        } else if (!pu_streq(type, "text")) {
            json_decref(gc);
            pu_seterr(err, "response_format.type must be \"text\", \"json_object\" or \"json_schema\"");
            return LG_EINVAL;
        }
    }
    json_t *tc = thinking_config(body);
    if (tc != NULL)
        json_object_set_new(gc, "thinkingConfig", tc);
    if (json_object_size(gc) > 0)
        json_object_set_new(b, "generationConfig", gc);
    else
        json_decref(gc);
    return 0;
}

/* Request fields this plugin translates (or that are transport-level); anything else is dropped with a debug log. */
static int is_known_field(const char *k)
{
    static const char *const known[] = {"model",
                                        "messages",
                                        "stream",
                                        "stream_options",
                                        "tools",
                                        "tool_choice",
                                        "temperature",
                                        "top_p",
                                        "top_k",
                                        "seed",
                                        "n",
                                        "presence_penalty",
                                        "frequency_penalty",
                                        "max_tokens",
                                        "max_completion_tokens",
                                        "stop",
                                        "response_format",
                                        "reasoning",
                                        "reasoning_effort"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); ++i)
        if (strcmp(known[i], k) == 0)
            return 1;
    return 0;
}

static int build_chat_body(struct instance *in, const json_t *body, json_t **out, lg_errbuf_t *err)
{
    json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        pu_seterr(err, "messages must be a non-empty array");
        return LG_EINVAL;
    }
    json_t *b = json_object(), *contents = json_array(), *sys = json_array();
    int rc = build_contents(in, msgs, contents, sys, err);
    if (rc == 0 && json_array_size(contents) == 0) {
        pu_seterr(err, "messages must contain at least one user, assistant or tool message");
        rc = LG_EINVAL;
    }
    if (rc != 0) {
        json_decref(b);
        json_decref(contents);
        json_decref(sys);
        return rc;
    }
    json_object_set_new(b, "contents", contents);
    if (json_array_size(sys) > 0)
        json_object_set_new(b, "systemInstruction", json_pack("{so}", "parts", sys));
    else
        json_decref(sys);
    if ((rc = build_tools(in, body, b, err)) != 0 || (rc = build_generation_config(in, body, b, err)) != 0) {
        json_decref(b);
        return rc;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        if (!is_known_field(k))
            lg_host->log(LG_LOG_DEBUG, in->c.name, "dropped unsupported parameter %s", k);
    }
    *out = b;
    return 0;
}

static int build_embed_body(const json_t *body, const char *model_path, json_t **out, lg_errbuf_t *err)
{
    json_t *input = json_object_get(body, "input");
    json_t *list = json_array();
    if (json_is_string(input)) {
        json_array_append(list, input);
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        size_t i;
        json_t *s;
        json_array_foreach(input, i, s)
        {
            if (!json_is_string(s)) {
                json_decref(list);
                pu_seterr(err, "Gemini embeddings take text input only: token-id arrays are not supported");
                return LG_EUNSUPPORTED;
            }
            json_array_append(list, s);
        }
    } else {
        json_decref(list);
        pu_seterr(err, "input must be a string or a non-empty array of strings");
        return LG_EINVAL;
    }
    json_t *task = json_object_get(body, "task_type");
    json_t *dims = json_object_get(body, "dimensions");
    json_t *reqs = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        json_t *r = json_pack("{ss s{s[{sO}]}}", "model", model_path, "content", "parts", "text", s);
        if (json_is_string(task))
            json_object_set(r, "taskType", task);
        if (json_is_integer(dims))
            json_object_set(r, "outputDimensionality", dims);
        json_array_append_new(reqs, r);
    }
    json_decref(list);
    *out = json_pack("{so}", "requests", reqs);
    return 0;
}

/* "models/<m>" with <m> percent-encoded where it is not URL-safe; "models/…" and "tunedModels/…" are kept. */
static char *model_path(const char *model)
{
    struct pu_buf b = {0};
    if (strncmp(model, "models/", 7) != 0 && strncmp(model, "tunedModels/", 12) != 0)
        pu_buf_add(&b, "models/", 7);
    for (const char *p = model; *p != '\0'; ++p) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~' || c == '/') {
            pu_buf_add(&b, p, 1);
        } else {
            char esc[4];
            snprintf(esc, sizeof(esc), "%%%02X", c);
            pu_buf_add(&b, esc, 3);
        }
    }
    return b.p;
}

static int gm_build_request(void *state, const lg_call_t *call, lg_http_req_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    if (call->kind != LG_API_CHAT && call->kind != LG_API_EMBEDDINGS) {
        pu_seterr(err, "Gemini supports chat and embeddings only");
        return LG_EUNSUPPORTED;
    }
    if (call->kind == LG_API_EMBEDDINGS && call->stream) {
        pu_seterr(err, "embeddings cannot be streamed");
        return LG_EUNSUPPORTED;
    }
    int rc = pu_check_call(call, NULL, err);
    if (rc != 0)
        return rc;
    char *mpath = model_path(call->upstream_model);
    json_t *b = NULL;
    rc = call->kind == LG_API_EMBEDDINGS ? build_embed_body(call->body, mpath, &b, err) : build_chat_body(in, call->body, &b, err);
    if (rc != 0) {
        lg_host->free_mem(mpath);
        return rc;
    }
    const char *verb = call->kind == LG_API_EMBEDDINGS ? ":batchEmbedContents"
                       : call->stream                  ? ":streamGenerateContent?alt=sse"
                                                       : ":generateContent";
    char *url = pu_printf("%s/%s%s", in->c.base_url, mpath, verb);
    lg_host->free_mem(mpath);
    rc = pu_json_post(out, url, b, call->stream, err);
    if (rc != 0)
        return rc;
    if (in->c.api_key != NULL)
        pu_add_header(out, "x-goog-api-key", in->c.api_key);
    pu_add_extra_headers(out, &in->c);
    return 0;
}

/* ---- error classification ----------------------------------------------------------------------------------------- */

static int err_from_status(int status)
{
    switch (status) {
    case 401:
    case 403:
        return LG_EUPSTREAM_AUTH;
    case 408:
    case 504:
        return LG_ETIMEOUT;
    case 413:
        return LG_ETOOLARGE;
    case 429:
        return LG_EUPSTREAM_RATELIMIT;
    case 503:
        return LG_EOVERLOADED;
    default:
        if (status >= 400 && status <= 499)
            return LG_EUPSTREAM_REJECTED;
        return LG_EUPSTREAM;
    }
}

/* google.rpc.Code names → error; 0 when unknown */
static int err_from_gstatus(const char *s)
{
    static const struct {
        const char *name;
        int err;
    } map[] = {
        {"INVALID_ARGUMENT", LG_EUPSTREAM_REJECTED},
        {"FAILED_PRECONDITION", LG_EUPSTREAM_REJECTED},
        {"OUT_OF_RANGE", LG_EUPSTREAM_REJECTED},
        {"NOT_FOUND", LG_EUPSTREAM_REJECTED},
        {"ALREADY_EXISTS", LG_EUPSTREAM_REJECTED},
        {"UNIMPLEMENTED", LG_EUPSTREAM_REJECTED},
        {"UNAUTHENTICATED", LG_EUPSTREAM_AUTH},
        {"PERMISSION_DENIED", LG_EUPSTREAM_AUTH},
        {"RESOURCE_EXHAUSTED", LG_EUPSTREAM_RATELIMIT},
        {"UNAVAILABLE", LG_EOVERLOADED},
        {"DEADLINE_EXCEEDED", LG_ETIMEOUT},
        {"INTERNAL", LG_EUPSTREAM},
        {"UNKNOWN", LG_EUPSTREAM},
        {"DATA_LOSS", LG_EUPSTREAM},
        {"ABORTED", LG_EUPSTREAM},
        {"CANCELLED", LG_EUPSTREAM},
    };
    for (size_t i = 0; s != NULL && i < sizeof(map) / sizeof(map[0]); ++i)
        if (strcmp(s, map[i].name) == 0)
            return map[i].err;
    return 0;
}

/* "37s", "1.5s" → ms; 0 when unusable */
static int64_t parse_duration_ms(const char *s)
{
    if (s == NULL)
        return 0;
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end != 's' || end[1] != '\0' || !(d > 0) || d > 86400.0)
        return 0;
    return (int64_t)(d * 1000.0);
}

/**
 * Classifies a Gemini failure. status: HTTP status (0 = transport error; 2xx = error object in a success body or an
 * in-band stream error). root: parsed body (object, or an array whose first element is the error object) or NULL.
 */
static void gm_classify(int status, const json_t *root, const char *raw, size_t rawlen, const char *api_key,
                        lg_upstream_error_t *out)
{
    memset(out, 0, sizeof(*out));
    if (json_is_array(root))
        root = json_array_get(root, 0);
    json_t *e = json_object_get(root, "error");
    const char *msg = NULL, *gstatus = NULL, *reason = NULL;
    json_int_t code = 0;
    if (json_is_object(e)) {
        msg = json_string_value(json_object_get(e, "message"));
        gstatus = json_string_value(json_object_get(e, "status"));
        json_t *c = json_object_get(e, "code");
        if (json_is_integer(c))
            code = json_integer_value(c);
        else if (gstatus == NULL && json_is_string(c))
            gstatus = json_string_value(c);
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(e, "details"), i, d)
        {
            const char *t = json_string_value(json_object_get(d, "@type"));
            if (t == NULL)
                continue;
            if (strstr(t, "RetryInfo") != NULL)
                out->retry_after_ms = parse_duration_ms(json_string_value(json_object_get(d, "retryDelay")));
            else if (strstr(t, "ErrorInfo") != NULL && reason == NULL)
                reason = json_string_value(json_object_get(d, "reason"));
        }
    } else if (json_is_string(e)) {
        msg = json_string_value(e);
    }

    int eff = status;
    if ((status == 0 || (status >= 200 && status < 300)) && code >= 400 && code <= 599)
        eff = (int)code;
    out->status = eff;

    int err;
    if (eff >= 400)
        err = err_from_status(eff);
    else if ((err = err_from_gstatus(gstatus)) == 0)
        err = status >= 200 && status < 300 && e == NULL ? LG_EBADRESPONSE : LG_EUPSTREAM;

    /* specifics the status does not tell: bad key (Gemini answers 400 INVALID_ARGUMENT), prompt too long */
    if (pu_streq(reason, "API_KEY_INVALID") || pu_streq(reason, "API_KEY_EXPIRED") ||
        (msg != NULL && (pu_contains_ci(msg, "API key not valid") || pu_contains_ci(msg, "API key expired"))))
        err = LG_EUPSTREAM_AUTH;
    else if (msg != NULL && err == LG_EUPSTREAM_REJECTED &&
             (pu_contains_ci(msg, "exceeds the maximum number of tokens") || pu_contains_ci(msg, "context window")))
        err = LG_ECONTEXT;
    out->err = err;
    switch (err) {
    case LG_EUPSTREAM_REJECTED:
        /* 404: the model may exist elsewhere; FAILED_PRECONDITION: region / billing of this key */
        out->retryable = eff == 404 || pu_streq(gstatus, "NOT_FOUND") || pu_streq(gstatus, "FAILED_PRECONDITION");
        break;
    case LG_ETOOLARGE:
    case LG_ECONTENT:
        out->retryable = 0;
        break;
    default:
        out->retryable = 1;
    }

    if (gstatus != NULL) {
        char code_tmp[512];
        pu_copy_text(code_tmp, sizeof(code_tmp), gstatus, strlen(gstatus));
        gm_redact(code_tmp, sizeof(code_tmp), api_key); /* redact before truncating, like the message below */
        pu_copy_text(out->provider_code, sizeof(out->provider_code), code_tmp, strlen(code_tmp));
    } else if (code != 0)
        snprintf(out->provider_code, sizeof(out->provider_code), "%lld", (long long)code);

    /* redact before truncating, so a key cut at the 256-byte boundary cannot survive as a prefix */
    char tmp[512];
    pu_error_message(tmp, sizeof(tmp), msg, status, root, raw, rawlen);
    gm_redact(tmp, sizeof(tmp), api_key);
    pu_copy_text(out->message, sizeof(out->message), tmp, strlen(tmp));
}

static void gm_classify_error(void *state, int status, const char *body, size_t len, lg_upstream_error_t *out)
{
    struct instance *in = state;
    json_t *root = pu_load_body(body, len, "{[");
    gm_classify(status, root, body, len, in != NULL ? in->c.api_key : NULL, out);
    json_decref(root);
}

/* ---- responses ---------------------------------------------------------------------------------------------------- */

static json_int_t cap_tokens(const json_t *um, const char *key)
{
    int present;
    json_int_t v = pu_tokens(json_object_get(um, key), &present);
    const json_int_t cap = (json_int_t)1 << 50;
    return v > cap ? cap : v;
}

/* usageMetadata → OpenAI usage (plugins/gemini/README.md, "usage"). total_tokens = prompt_tokens + completion_tokens. */
static json_t *map_usage(const json_t *um)
{
    json_int_t prompt = cap_tokens(um, "promptTokenCount") + cap_tokens(um, "toolUsePromptTokenCount");
    json_int_t thoughts = cap_tokens(um, "thoughtsTokenCount");
    json_int_t completion = cap_tokens(um, "candidatesTokenCount") + thoughts;
    json_int_t cached = cap_tokens(um, "cachedContentTokenCount");
    return json_pack("{sI sI sI s{sI} s{sI}}", "prompt_tokens", prompt, "completion_tokens", completion, "total_tokens",
                     prompt + completion, "prompt_tokens_details", "cached_tokens", cached, "completion_tokens_details",
                     "reasoning_tokens", thoughts);
}

/* Gemini finishReason → OpenAI finish_reason; NULL for FINISH_REASON_UNSPECIFIED (not an end). */
static const char *map_finish(const char *fr, int saw_call)
{
    static const char *const filtered[] = {
        "SAFETY",          "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION"};
    if (strcmp(fr, "FINISH_REASON_UNSPECIFIED") == 0)
        return NULL;
    if (strcmp(fr, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < sizeof(filtered) / sizeof(filtered[0]); ++i)
        if (strcmp(fr, filtered[i]) == 0)
            return "content_filter";
    /* STOP, and MALFORMED_FUNCTION_CALL / OTHER / LANGUAGE / unknown: stop (native_finish_reason keeps the detail) */
    return saw_call ? "tool_calls" : "stop";
}

/**
 * functionCall part → OpenAI tool call. The id is the part's own functionCall.id, else synthesized:
 * "call_<seq>_<16 hex of FNV-1a(responseId, name, args, signature)>" (deterministic; seq makes it unique within the
 * response). A thoughtSignature goes to extra_content.google.thought_signature and into the instance cache.
 */
static json_t *make_tool_call(struct instance *in, const json_t *part, const char *response_id, size_t seq, int with_index,
                              size_t index)
{
    json_t *fc = json_object_get(part, "functionCall");
    const char *name = json_string_value(json_object_get(fc, "name"));
    if (name == NULL)
        name = "";
    json_t *args = json_object_get(fc, "args");
    char *aj = args != NULL && !json_is_null(args) ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *arguments = aj != NULL ? aj : "{}";
    const char *sig = json_string_value(json_object_get(part, "thoughtSignature"));
    const char *own_id = json_string_value(json_object_get(fc, "id"));
    char idbuf[64];
    const char *id = own_id;
    if (id == NULL || *id == '\0') {
        uint64_t h = FNV_INIT;
        if (response_id != NULL)
            h = fnv1a(h, response_id, strlen(response_id) + 1);
        h = fnv1a(h, name, strlen(name) + 1);
        h = fnv1a(h, arguments, strlen(arguments) + 1);
        if (sig != NULL)
            h = fnv1a(h, sig, strlen(sig));
        snprintf(idbuf, sizeof(idbuf), "call_%zu_%016llx", seq, (unsigned long long)h);
        id = idbuf;
    }
    json_t *tc = json_object();
    if (with_index)
        json_object_set_new(tc, "index", json_integer((json_int_t)index));
    json_object_set_new(tc, "id", json_string(id));
    json_object_set_new(tc, "type", json_string("function"));
    json_object_set_new(tc, "function", json_pack("{ss ss}", "name", name, "arguments", arguments));
    if (sig != NULL) {
        json_object_set_new(tc, "extra_content", json_pack("{s{ss}}", "google", "thought_signature", sig));
        sig_store(in, id, sig);
    }
    free(aj);
    return tc;
}

static size_t input_chars(const json_t *input)
{
    if (json_is_string(input))
        return json_string_length(input);
    size_t n = 0, i;
    json_t *s;
    json_array_foreach(input, i, s)
    {
        n += json_string_length(s);
    }
    return n;
}

static int parse_embeddings(const lg_call_t *call, json_t *root, json_t **out, lg_errbuf_t *err)
{
    json_t *embs = json_object_get(root, "embeddings");
    if (!json_is_array(embs)) {
        pu_seterr(err, "upstream response has no embeddings array");
        return LG_EBADRESPONSE;
    }
    json_t *data = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(embs, i, e)
    {
        json_t *values = json_object_get(e, "values");
        if (!json_is_array(values)) {
            json_decref(data);
            pu_seterr(err, "upstream embeddings[%zu] has no values array", i);
            return LG_EBADRESPONSE;
        }
        json_array_append_new(data, json_pack("{ss sI sO}", "object", "embedding", "index", (json_int_t)i, "embedding", values));
    }
    json_int_t est = (json_int_t)((input_chars(json_object_get(call->body, "input")) + 3) / 4);
    *out = json_pack("{ss so s{sI sI}}", "object", "list", "data", data, "usage", "prompt_tokens", est, "total_tokens", est);
    return 0;
}

static int parse_chat(struct instance *in, json_t *root, json_t **out, lg_errbuf_t *err)
{
    json_t *cands = json_object_get(root, "candidates");
    const char *rid = json_string_value(json_object_get(root, "responseId"));
    json_t *choices = json_array();
    if (json_array_size(cands) == 0) {
        const char *block = json_string_value(json_object_get(json_object_get(root, "promptFeedback"), "blockReason"));
        if (block == NULL) {
            json_decref(choices);
            pu_seterr(err, "upstream response has no candidates");
            return LG_EBADRESPONSE;
        }
        json_array_append_new(choices, json_pack("{sI s{ss ss} ss ss}", "index", (json_int_t)0, "message", "role", "assistant",
                                                 "content", "", "finish_reason", "content_filter", "native_finish_reason", block));
    }
    size_t seq = 0, ci;
    json_t *cand;
    json_array_foreach(cands, ci, cand)
    {
        if (!json_is_object(cand)) {
            json_decref(choices);
            pu_seterr(err, "upstream response has a non-object candidate");
            return LG_EBADRESPONSE;
        }
        struct pu_buf text = {0}, reasoning = {0};
        json_t *calls = json_array();
        size_t i;
        json_t *part;
        json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, part)
        {
            json_t *t = json_object_get(part, "text");
            if (json_is_object(json_object_get(part, "functionCall")))
                json_array_append_new(calls, make_tool_call(in, part, rid, seq++, 0, 0));
            else if (json_is_string(t))
                pu_buf_add(json_is_true(json_object_get(part, "thought")) ? &reasoning : &text, json_string_value(t),
                           json_string_length(t));
        }
        json_t *msg = json_pack("{ss}", "role", "assistant");
        if (text.len > 0)
            json_object_set_new(msg, "content", json_stringn(text.p, text.len));
        else
            json_object_set_new(msg, "content", json_array_size(calls) > 0 ? json_null() : json_string(""));
        if (reasoning.len > 0)
            json_object_set_new(msg, "reasoning", json_stringn(reasoning.p, reasoning.len));
        int saw_call = json_array_size(calls) > 0;
        if (saw_call)
            json_object_set_new(msg, "tool_calls", calls);
        else
            json_decref(calls);
        pu_buf_free(&text);
        pu_buf_free(&reasoning);
        json_t *idx = json_object_get(cand, "index");
        json_t *choice =
            json_pack("{sI so}", "index", json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)ci, "message", msg);
        const char *fr = json_string_value(json_object_get(cand, "finishReason"));
        const char *mapped = fr != NULL ? map_finish(fr, saw_call) : NULL;
        json_object_set_new(choice, "finish_reason", json_string(mapped != NULL ? mapped : saw_call ? "tool_calls" : "stop"));
        if (fr != NULL)
            json_object_set_new(choice, "native_finish_reason", json_string(fr));
        json_array_append_new(choices, choice);
    }
    json_t *o = json_pack("{so}", "choices", choices);
    json_t *um = json_object_get(root, "usageMetadata");
    if (json_is_object(um))
        json_object_set_new(o, "usage", map_usage(um));
    *out = o;
    return 0;
}

static int gm_parse_response(void *state, const lg_call_t *call, int status, const char *body, size_t len, json_t **out,
                             lg_errbuf_t *err)
{
    struct instance *in = state;
    *out = NULL;
    json_t *root = pu_load_body(body, len, "{[");
    json_t *obj = json_is_array(root) && json_array_size(root) == 1 ? json_array_get(root, 0) : root;
    if (!json_is_object(obj)) {
        json_decref(root);
        pu_seterr(err, "upstream response is not a JSON object");
        return LG_EBADRESPONSE;
    }
    json_t *e = json_object_get(obj, "error");
    if (e != NULL && !json_is_null(e)) {
        lg_upstream_error_t u;
        gm_classify(status, obj, body, len, in->c.api_key, &u);
        json_decref(root);
        pu_seterr(err, "%s", u.message);
        return u.err;
    }
    int rc = call->kind == LG_API_EMBEDDINGS ? parse_embeddings(call, obj, out, err) : parse_chat(in, obj, out, err);
    json_decref(root);
    return rc;
}

/* ---- streaming ---------------------------------------------------------------------------------------------------- */

struct gstream {
    int role_sent[MAX_CAND];
    int saw_call[MAX_CAND];
    int cand_done[MAX_CAND];
    size_t tool_index[MAX_CAND];
    size_t call_seq;
    int finished; /* a finishReason (or a prompt blockReason) arrived */
};

static int gm_stream_begin(void *state, const lg_call_t *call, void **sstate)
{
    (void)state;
    (void)call;
    struct gstream *s = lg_host->alloc(sizeof(*s));
    memset(s, 0, sizeof(*s));
    *sstate = s;
    return 0;
}

static void gm_stream_free(void *state, void *sstate)
{
    (void)state;
    lg_host->free_mem(sstate);
}

static void push_chunk(struct instance *in, lg_stream_out_t *out, json_t *choices)
{
    if (json_array_size(choices) == 0) {
        json_decref(choices);
        return;
    }
    if (out->num_chunks >= LG_STREAM_MAX_CHUNKS) {
        lg_host->log(LG_LOG_WARN, in->c.name, "stream event produced too many chunks; dropping one");
        json_decref(choices);
        return;
    }
    json_t *chunk = json_object();
    json_object_set_new(chunk, "choices", choices);
    out->chunks[out->num_chunks++] = chunk;
}

/*
 * The event that carries nearly every byte of a stream — one candidate whose parts are plain text, no finishReason,
 * no usageMetadata, no error — read with the scanner instead of a jansson parse. Returns 1 when it handled the event
 * exactly as the general path would, 0 to take the general path (anything else, including text that decodes to NUL,
 * which jansson refuses).
 */
static int text_event_fast(struct instance *in, struct gstream *s, const char *d, size_t n, lg_stream_out_t *out)
{
    lg_json_span_t root, cands = {0}, cand, extra, k, v, content = {0}, parts = {0}, part;
    lg_json_iter_t it, pit;
    if (lg_json_validate(d, n, &root, NULL) != 0 || root.type != LG_JSON_OBJECT)
        return 0;
    /* one pass over the top level (the last "candidates" wins, as in jansson) */
    lg_json_iter_init(&it, root);
    while (lg_json_iter_member(&it, &k, &v)) {
        if (lg_json_key_eq(k, "candidates", 10))
            cands = v;
        else if (lg_json_key_eq(k, "error", 5) || lg_json_key_eq(k, "usageMetadata", 13) || lg_json_key_eq(k, "promptFeedback", 14))
            return 0;
    }
    if (cands.type != LG_JSON_ARRAY)
        return 0;
    lg_json_iter_init(&it, cands);
    if (!lg_json_iter_element(&it, &cand) || cand.type != LG_JSON_OBJECT || lg_json_iter_element(&it, &extra))
        return 0; /* exactly one candidate */
    lg_json_iter_init(&it, cand);
    while (lg_json_iter_member(&it, &k, &v)) {
        if (lg_json_key_eq(k, "content", 7))
            content = v;
        else if (lg_json_key_eq(k, "finishReason", 12))
            return 0; /* finishing: the general path */
        else if (lg_json_key_eq(k, "index", 5) && !(v.len == 1 && v.p[0] == '0'))
            return 0; /* another candidate than the first: the general path */
    }
    if (s->cand_done[0] || content.type != LG_JSON_OBJECT || !lg_json_get(content, "parts", &parts) || parts.type != LG_JSON_ARRAY)
        return 0;
    /* every part plain text: {"text": "..."} and nothing else */
    char stackbuf[1024];
    struct pu_buf text = {0};
    lg_json_iter_init(&pit, parts);
    while (lg_json_iter_element(&pit, &part)) {
        lg_json_span_t t = {0};
        size_t members = 0;
        if (part.type != LG_JSON_OBJECT)
            goto general;
        lg_json_iter_init(&it, part);
        while (lg_json_iter_member(&it, &k, &v)) {
            ++members;
            if (lg_json_key_eq(k, "text", 4))
                t = v;
        }
        if (members != 1 || t.type != LG_JSON_STRING)
            goto general;
        size_t tn = lg_json_str_len(t), got = 0;
        char *buf = tn < sizeof(stackbuf) ? stackbuf : lg_host->alloc(tn + 1);
        int ok = lg_json_unescape(t, buf, tn + 1, &got) == 0 && memchr(buf, '\0', got) == NULL;
        if (ok)
            pu_buf_add(&text, buf, got);
        if (buf != stackbuf)
            lg_host->free_mem(buf);
        if (!ok)
            goto general;
    }
    if (text.len > 0) {
        json_t *delta = json_object();
        if (!s->role_sent[0]) {
            json_object_set_new(delta, "role", json_string("assistant"));
            s->role_sent[0] = 1;
        }
        json_object_set_new(delta, "content", json_stringn(text.p, text.len));
        /* built member by member: json_pack's format parsing costs more than the tree on this path */
        json_t *choice = json_object(), *choices = json_array();
        json_object_set_new(choice, "index", json_integer(0));
        json_object_set_new(choice, "delta", delta);
        json_object_set_new(choice, "finish_reason", json_null());
        json_array_append_new(choices, choice);
        push_chunk(in, out, choices);
    }
    pu_buf_free(&text);
    return 1;
general:
    pu_buf_free(&text);
    return 0;
}

static int gm_parse_stream_event(void *state, void *sstate, const lg_sse_event_t *ev, lg_stream_out_t *out, lg_errbuf_t *err)
{
    struct instance *in = state;
    struct gstream *s = sstate;
    (void)err;
    const char *d = ev->data;
    size_t n = ev->data_len;
    pu_trim(&d, &n);
    if (n == 0)
        return 0;
    if (!pu_is_error_event(ev) && text_event_fast(in, s, d, n, out))
        return 0;
    json_t *root = json_loadb(d, n, 0, NULL);
    json_t *obj = json_is_array(root) && json_array_size(root) == 1 ? json_array_get(root, 0) : root;
    if (!json_is_object(obj)) {
        lg_host->log(LG_LOG_WARN, in->c.name, "stream event that is not a JSON object (%zu bytes)", n);
        json_decref(root);
        pu_stream_bad_event(out, n);
        return 0;
    }
    json_t *e = json_object_get(obj, "error");
    if ((e != NULL && !json_is_null(e)) || pu_is_error_event(ev)) {
        lg_upstream_error_t u;
        gm_classify(200, obj, d, n, in->c.api_key, &u);
        pu_stream_error(out, &u, u.err == LG_EBADRESPONSE ? LG_EUPSTREAM : u.err);
        json_decref(root);
        return 0;
    }

    const char *rid = json_string_value(json_object_get(obj, "responseId"));
    json_t *cands = json_object_get(obj, "candidates");
    json_t *content_choices = json_array(), *finish_choices = json_array();
    size_t ci;
    json_t *cand;
    json_array_foreach(cands, ci, cand)
    {
        json_t *idxj = json_object_get(cand, "index");
        json_int_t idx = json_is_integer(idxj) ? json_integer_value(idxj) : (json_int_t)ci;
        if (!json_is_object(cand) || idx < 0 || idx >= MAX_CAND || s->cand_done[idx])
            continue;
        struct pu_buf text = {0}, reasoning = {0};
        json_t *calls = json_array();
        size_t i;
        json_t *part;
        json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, part)
        {
            json_t *t = json_object_get(part, "text");
            if (json_is_object(json_object_get(part, "functionCall"))) {
                json_array_append_new(calls, make_tool_call(in, part, rid, s->call_seq++, 1, s->tool_index[idx]++));
                s->saw_call[idx] = 1;
            } else if (json_is_string(t)) {
                pu_buf_add(json_is_true(json_object_get(part, "thought")) ? &reasoning : &text, json_string_value(t),
                           json_string_length(t));
            }
        }
        if (text.len > 0 || reasoning.len > 0 || json_array_size(calls) > 0) {
            json_t *delta = json_object();
            if (!s->role_sent[idx]) {
                json_object_set_new(delta, "role", json_string("assistant"));
                s->role_sent[idx] = 1;
            }
            if (text.len > 0)
                json_object_set_new(delta, "content", json_stringn(text.p, text.len));
            if (reasoning.len > 0)
                json_object_set_new(delta, "reasoning", json_stringn(reasoning.p, reasoning.len));
            if (json_array_size(calls) > 0)
                json_object_set(delta, "tool_calls", calls);
            json_array_append_new(content_choices, json_pack("{sI so sn}", "index", idx, "delta", delta, "finish_reason"));
        }
        json_decref(calls);
        pu_buf_free(&text);
        pu_buf_free(&reasoning);

        const char *fr = json_string_value(json_object_get(cand, "finishReason"));
        const char *mapped = fr != NULL ? map_finish(fr, s->saw_call[idx]) : NULL;
        if (mapped != NULL) {
            json_t *delta = json_object();
            if (!s->role_sent[idx]) {
                json_object_set_new(delta, "role", json_string("assistant"));
                json_object_set_new(delta, "content", json_string(""));
                s->role_sent[idx] = 1;
            }
            json_array_append_new(finish_choices, json_pack("{sI so ss ss}", "index", idx, "delta", delta, "finish_reason", mapped,
                                                            "native_finish_reason", fr));
            s->cand_done[idx] = 1;
            s->finished = 1;
            out->done = 1;
        }
    }
    if (json_array_size(cands) == 0 && !s->finished) {
        const char *block = json_string_value(json_object_get(json_object_get(obj, "promptFeedback"), "blockReason"));
        if (block != NULL) {
            json_array_append_new(finish_choices,
                                  json_pack("{sI s{ss ss} ss ss}", "index", (json_int_t)0, "delta", "role", "assistant", "content",
                                            "", "finish_reason", "content_filter", "native_finish_reason", block));
            s->role_sent[0] = 1;
            s->cand_done[0] = 1;
            s->finished = 1;
            out->done = 1;
        }
    }
    push_chunk(in, out, content_choices);
    push_chunk(in, out, finish_choices);

    json_t *um = json_object_get(obj, "usageMetadata");
    if (json_is_object(um)) {
        json_decref(out->usage);
        out->usage = map_usage(um);
    }
    json_decref(root);
    return 0;
}

static int gm_stream_end(void *state, void *sstate, lg_stream_out_t *out, lg_errbuf_t *err)
{
    (void)state;
    (void)out;
    const struct gstream *s = sstate;
    if (s != NULL && s->finished)
        return 0;
    pu_seterr(err, "upstream closed the stream before a finishReason");
    return LG_EBADRESPONSE;
}

static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .capabilities = LG_CAP_CHAT | LG_CAP_STREAM | LG_CAP_EMBEDDINGS,
    .name = PLUGIN_NAME,
    .version = PLUGIN_VERSION,
    .create = gm_create,
    .destroy = gm_destroy,
    .build_request = gm_build_request,
    .parse_response = gm_parse_response,
    .stream_begin = gm_stream_begin,
    .parse_stream_event = gm_parse_stream_event,
    .stream_end = gm_stream_end,
    .stream_free = gm_stream_free,
    .classify_error = gm_classify_error,
    .local_respond = NULL,
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    return pu_plugin_init(host, &provider, out, err);
}
