/* SPDX-License-Identifier: MIT */
/*
 * /v1 request parsing and validation (see request.h). Types follow the OpenAI
 * and OpenRouter schemas; unknown top-level fields are kept and passed on
 * (OpenAI-compatible upstreams may understand them), unknown `provider`
 * fields are rejected (OpenRouter's schema has additionalProperties:false).
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "http/request.h"
#include "llmgate/error.h"
#include "llmgate/plugin.h"

/* Fields only the gateway reads; never sent upstream. */
static const char *const gateway_fields[] = {"models", "provider", "route",      "transforms", "plugins",
                                             "usage",  "debug",    "session_id", "trace",      NULL};

/* OpenRouter parameter vocabulary used by require_parameters. */
static const char *const known_params[] = {"temperature",
                                           "top_p",
                                           "top_k",
                                           "min_p",
                                           "top_a",
                                           "frequency_penalty",
                                           "presence_penalty",
                                           "repetition_penalty",
                                           "max_tokens",
                                           "max_completion_tokens",
                                           "logit_bias",
                                           "logprobs",
                                           "top_logprobs",
                                           "prediction",
                                           "seed",
                                           "response_format",
                                           "structured_outputs",
                                           "stop",
                                           "tools",
                                           "tool_choice",
                                           "parallel_tool_calls",
                                           "include_reasoning",
                                           "reasoning",
                                           "reasoning_effort",
                                           "web_search_options",
                                           "verbosity",
                                           NULL};

#define FAIL(...)                                                                                                                  \
    do {                                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                                        \
        return LG_EINVAL;                                                                                                          \
    } while (0)

static int check_string_array(json_t *v, const char *name, size_t max, char *err, size_t errlen)
{
    if (!json_is_array(v))
        FAIL("%s: expected array of strings", name);
    if (json_array_size(v) > max)
        FAIL("%s: at most %zu entries", name, max);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) == 0)
            FAIL("%s[%zu]: expected non-empty string", name, i);
    }
    return 0;
}

static int check_number(json_t *v, const char *name, double lo, double hi, char *err, size_t errlen)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        FAIL("%s: expected number", name);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        FAIL("%s: must be between %g and %g", name, lo, hi);
    return 0;
}

static int check_int(json_t *v, const char *name, json_int_t lo, json_int_t hi, char *err, size_t errlen)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        FAIL("%s: expected integer", name);
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi)
        FAIL("%s: must be between %lld and %lld", name, (long long)lo, (long long)hi);
    return 0;
}

static int check_type(json_t *v, const char *name, int (*pred)(const json_t *), const char *what, char *err, size_t errlen)
{
    if (v == NULL || json_is_null(v))
        return 0;
    if (!pred(v))
        FAIL("%s: expected %s", name, what);
    return 0;
}

static int is_bool(const json_t *v)
{
    return json_is_boolean(v);
}
static int is_object(const json_t *v)
{
    return json_is_object(v);
}
static int is_array(const json_t *v)
{
    return json_is_array(v);
}
static int is_string(const json_t *v)
{
    return json_is_string(v);
}
static int is_string_or_array(const json_t *v)
{
    return json_is_string(v) || json_is_array(v);
}
static int is_string_or_object(const json_t *v)
{
    return json_is_string(v) || json_is_object(v);
}

static size_t text_length(json_t *content)
{
    if (json_is_string(content))
        return json_string_length(content);
    size_t n = 0, i;
    json_t *part;
    if (json_is_array(content))
        json_array_foreach(content, i, part)
        {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t))
                n += json_string_length(t);
            else if (json_is_string(part))
                n += json_string_length(part);
        }
    return n;
}

static int validate_messages(json_t *msgs, int64_t *chars, char *err, size_t errlen)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function", NULL};
    if (msgs == NULL)
        FAIL("messages: required");
    if (!json_is_array(msgs))
        FAIL("messages: expected array");
    if (json_array_size(msgs) == 0)
        FAIL("messages: must not be empty");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (!json_is_object(m))
            FAIL("messages[%zu]: expected object", i);
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role))
            FAIL("messages[%zu].role: expected string", i);
        int known = 0;
        for (size_t k = 0; roles[k] != NULL && !known; ++k)
            known = strcmp(json_string_value(role), roles[k]) == 0;
        if (!known)
            FAIL("messages[%zu].role: unknown role \"%.32s\"", i, json_string_value(role));
        json_t *content = json_object_get(m, "content");
        if (content != NULL && !json_is_null(content) && !json_is_string(content) && !json_is_array(content))
            FAIL("messages[%zu].content: expected string, array or null", i);
        json_t *tc = json_object_get(m, "tool_calls");
        if (tc != NULL && !json_is_null(tc) && !json_is_array(tc))
            FAIL("messages[%zu].tool_calls: expected array", i);
        *chars += (int64_t)text_length(content) + 16;
        if (tc != NULL) {
            char *dump = json_dumps(tc, JSON_COMPACT);
            *chars += dump != NULL ? (int64_t)strlen(dump) : 0;
            free(dump);
        }
    }
    return 0;
}

static int parse_provider(lg_gen_request_t *r, json_t *p, char *err, size_t errlen)
{
    static const char *const known[] = {"order",
                                        "allow_fallbacks",
                                        "require_parameters",
                                        "data_collection",
                                        "zdr",
                                        "enforce_distillable_text",
                                        "only",
                                        "ignore",
                                        "quantizations",
                                        "sort",
                                        "preferred_min_throughput",
                                        "preferred_max_latency",
                                        "max_price",
                                        "experimental",
                                        NULL};
    if (!json_is_object(p))
        FAIL("provider: expected object");
    const char *key;
    json_t *v;
    json_object_foreach(p, key, v)
    {
        int ok = 0;
        for (size_t k = 0; known[k] != NULL && !ok; ++k)
            ok = strcmp(key, known[k]) == 0;
        if (!ok)
            FAIL("provider.%.64s: unknown field", key);
    }
    int rc;
    if ((v = json_object_get(p, "order")) != NULL && (rc = check_string_array(v, "provider.order", 64, err, errlen)) != 0)
        return rc;
    if ((v = json_object_get(p, "only")) != NULL && (rc = check_string_array(v, "provider.only", 64, err, errlen)) != 0)
        return rc;
    if ((v = json_object_get(p, "ignore")) != NULL && (rc = check_string_array(v, "provider.ignore", 64, err, errlen)) != 0)
        return rc;
    if ((v = json_object_get(p, "quantizations")) != NULL &&
        (rc = check_string_array(v, "provider.quantizations", 16, err, errlen)) != 0)
        return rc;
    static const char *const bools[] = {"allow_fallbacks", "require_parameters", "zdr", "enforce_distillable_text", NULL};
    for (size_t k = 0; bools[k] != NULL; ++k) {
        char name[64];
        snprintf(name, sizeof(name), "provider.%s", bools[k]);
        if ((rc = check_type(json_object_get(p, bools[k]), name, is_bool, "boolean", err, errlen)) != 0)
            return rc;
    }
    if ((v = json_object_get(p, "data_collection")) != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || (strcmp(json_string_value(v), "allow") != 0 && strcmp(json_string_value(v), "deny") != 0))
            FAIL("provider.data_collection: expected \"allow\" or \"deny\"");
    }
    r->allow_fallbacks = !json_is_false(json_object_get(p, "allow_fallbacks"));
    r->require_parameters = json_is_true(json_object_get(p, "require_parameters"));
    if ((v = json_object_get(p, "sort")) != NULL && !json_is_null(v)) {
        json_t *by = v;
        if (json_is_object(v)) {
            by = json_object_get(v, "by");
            json_t *part = json_object_get(v, "partition");
            if (part != NULL && !json_is_null(part)) {
                if (!json_is_string(part) ||
                    (strcmp(json_string_value(part), "model") != 0 && strcmp(json_string_value(part), "none") != 0))
                    FAIL("provider.sort.partition: expected \"model\" or \"none\"");
            }
        }
        if (!json_is_string(by))
            FAIL("provider.sort: expected \"price\", \"throughput\", \"latency\" or {\"by\":...}");
        const char *s = json_string_value(by);
        if (strcmp(s, "price") != 0 && strcmp(s, "throughput") != 0 && strcmp(s, "latency") != 0 && strcmp(s, "exacto") != 0)
            FAIL("provider.sort: unknown sort \"%.32s\"", s);
        /* exacto (quality-first) has no local signal yet: treat as throughput, the closest measurable proxy */
        r->sort = strcmp(s, "exacto") == 0 ? "throughput" : s;
    }
    if ((v = json_object_get(p, "max_price")) != NULL && !json_is_null(v)) {
        if (!json_is_object(v))
            FAIL("provider.max_price: expected object");
        const char *k;
        json_t *pv;
        json_object_foreach(v, k, pv)
        {
            if (!json_is_number(pv) && !(json_is_string(pv)))
                FAIL("provider.max_price.%.32s: expected number", k);
            double d = json_is_number(pv) ? json_number_value(pv) : atof(json_string_value(pv));
            if (!(d >= 0) || !isfinite(d))
                FAIL("provider.max_price.%.32s: must be a non-negative number", k);
            if (strcmp(k, "prompt") == 0)
                r->max_price_prompt = d;
            else if (strcmp(k, "completion") == 0)
                r->max_price_completion = d;
            else if (strcmp(k, "request") == 0)
                r->max_price_request = d;
            else if (strcmp(k, "image") != 0 && strcmp(k, "audio") != 0)
                FAIL("provider.max_price.%.32s: unknown field", k);
        }
    }
    static const char *const soft[] = {"preferred_min_throughput", "preferred_max_latency", NULL};
    for (size_t k = 0; soft[k] != NULL; ++k) {
        v = json_object_get(p, soft[k]);
        if (v != NULL && !json_is_null(v) && !json_is_number(v) && !json_is_object(v))
            FAIL("provider.%s: expected number or object", soft[k]);
    }
    r->provider = p;
    return 0;
}

static int add_model(lg_gen_request_t *r, const char *id, size_t len, int primary, char *err, size_t errlen)
{
    const char *colon = memchr(id, ':', len);
    if (colon != NULL) {
        const char *suffix = colon + 1;
        size_t slen = len - (size_t)(suffix - id);
        const char *variant = NULL;
        if (slen == 5 && memcmp(suffix, "nitro", 5) == 0)
            variant = "nitro";
        else if (slen == 5 && memcmp(suffix, "floor", 5) == 0)
            variant = "floor";
        if (variant != NULL) {
            len = (size_t)(colon - id);
            if (primary)
                r->variant = variant;
        }
    }
    for (size_t i = 0; i < r->num_models; ++i)
        if (r->model_lens[i] == len && memcmp(r->models[i], id, len) == 0)
            return 0; /* duplicates removed, first position wins */
    if (r->num_models >= LG_MAX_MODELS)
        FAIL("models: at most %d models", LG_MAX_MODELS);
    r->models[r->num_models] = id;
    r->model_lens[r->num_models] = len;
    ++r->num_models;
    return 0;
}

int lg_gen_request_parse(lg_gen_request_t *r, int kind, const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (root == NULL) {
        memset(r, 0, sizeof(*r));
        snprintf(err, errlen, "invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return LG_EINVAL;
    }
    int rc = lg_gen_request_from_json(r, kind, root, err, errlen);
    /* the same bytes as a validated span, for the pass-through path (jansson nests deeper than the scanner allows:
     * such a body simply takes the tree path) */
    if (rc == 0 && lg_json_validate(body, len, &r->wire, NULL) != 0)
        memset(&r->wire, 0, sizeof(r->wire));
    return rc;
}

int lg_gen_request_from_json(lg_gen_request_t *r, int kind, json_t *root_in, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->allow_fallbacks = 1;
    r->max_price_prompt = r->max_price_completion = r->max_price_request = -1;
    r->root = root_in;
    int rc = LG_EINVAL;
    if (!json_is_object(r->root)) {
        snprintf(err, errlen, "body: expected a JSON object");
        goto fail;
    }
    json_t *root = r->root, *v;

    /* model and models[] */
    json_t *model = json_object_get(root, "model"), *models = json_object_get(root, "models");
    if (model != NULL && !json_is_null(model) && (!json_is_string(model) || json_string_length(model) == 0)) {
        snprintf(err, errlen, "model: expected non-empty string");
        goto fail;
    }
    if (models != NULL && !json_is_null(models) && (rc = check_string_array(models, "models", LG_MAX_MODELS, err, errlen)) != 0)
        goto fail;
    rc = LG_EINVAL;
    if (json_is_string(model) && (rc = add_model(r, json_string_value(model), json_string_length(model), 1, err, errlen)) != 0)
        goto fail;
    if (json_is_array(models)) {
        size_t i;
        json_array_foreach(models, i, v)
        {
            if ((rc = add_model(r, json_string_value(v), json_string_length(v), r->num_models == 0, err, errlen)) != 0)
                goto fail;
        }
    }
    rc = LG_EINVAL;
    if (r->num_models == 0) {
        snprintf(err, errlen, "model: required (or a non-empty models array)");
        goto fail;
    }

    /* route-specific payload */
    int64_t chars = 0;
    if (kind == LG_API_CHAT) {
        if ((rc = validate_messages(json_object_get(root, "messages"), &chars, err, errlen)) != 0)
            goto fail;
    } else if (kind == LG_API_COMPLETIONS) {
        v = json_object_get(root, "prompt");
        if (v == NULL || (!json_is_string(v) && !json_is_array(v))) {
            snprintf(err, errlen, "prompt: expected string or array");
            goto fail;
        }
        chars = (int64_t)text_length(v);
    } else {
        v = json_object_get(root, "input");
        if (v == NULL || (!json_is_string(v) && !json_is_array(v))) {
            snprintf(err, errlen, "input: expected string or array");
            goto fail;
        }
        if (json_is_array(v) && json_array_size(v) == 0) {
            snprintf(err, errlen, "input: must not be empty");
            goto fail;
        }
        chars = (int64_t)text_length(v);
    }
    rc = LG_EINVAL;

    /* common typed fields */
    if ((rc = check_type(json_object_get(root, "stream"), "stream", is_bool, "boolean", err, errlen)) != 0 ||
        (rc = check_number(json_object_get(root, "temperature"), "temperature", 0, 2, err, errlen)) != 0 ||
        (rc = check_number(json_object_get(root, "top_p"), "top_p", 0, 1, err, errlen)) != 0 ||
        (rc = check_number(json_object_get(root, "frequency_penalty"), "frequency_penalty", -2, 2, err, errlen)) != 0 ||
        (rc = check_number(json_object_get(root, "presence_penalty"), "presence_penalty", -2, 2, err, errlen)) != 0 ||
        (rc = check_number(json_object_get(root, "repetition_penalty"), "repetition_penalty", 0, 2, err, errlen)) != 0 ||
        (rc = check_int(json_object_get(root, "max_tokens"), "max_tokens", 1, INT32_MAX, err, errlen)) != 0 ||
        (rc = check_int(json_object_get(root, "max_completion_tokens"), "max_completion_tokens", 1, INT32_MAX, err, errlen)) != 0 ||
        (rc = check_int(json_object_get(root, "n"), "n", 1, 128, err, errlen)) != 0 ||
        (rc = check_int(json_object_get(root, "top_k"), "top_k", 0, INT32_MAX, err, errlen)) != 0 ||
        (rc = check_int(json_object_get(root, "seed"), "seed", INT64_MIN, INT64_MAX, err, errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "stop"), "stop", is_string_or_array, "string or array", err, errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "tools"), "tools", is_array, "array", err, errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "tool_choice"), "tool_choice", is_string_or_object, "string or object", err,
                         errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "response_format"), "response_format", is_object, "object", err, errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "stream_options"), "stream_options", is_object, "object", err, errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "parallel_tool_calls"), "parallel_tool_calls", is_bool, "boolean", err, errlen)) !=
            0 ||
        (rc = check_type(json_object_get(root, "user"), "user", is_string, "string", err, errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "session_id"), "session_id", is_string, "string", err, errlen)) != 0 ||
        (rc = check_type(json_object_get(root, "logit_bias"), "logit_bias", is_object, "object", err, errlen)) != 0)
        goto fail;
    rc = LG_EINVAL;
    r->stream = json_is_true(json_object_get(root, "stream"));
    if (r->stream && kind == LG_API_EMBEDDINGS) {
        snprintf(err, errlen, "stream: embeddings cannot be streamed");
        goto fail;
    }
    if ((v = json_object_get(root, "session_id")) != NULL && json_is_string(v)) {
        if (json_string_length(v) > 256) {
            snprintf(err, errlen, "session_id: at most 256 characters");
            goto fail;
        }
        r->session_id = json_string_value(v);
    }
    json_t *tools = json_object_get(root, "tools");
    r->has_tools = json_is_array(tools) && json_array_size(tools) > 0;
    json_t *mct = json_object_get(root, "max_completion_tokens"), *mt = json_object_get(root, "max_tokens");
    r->max_tokens = json_is_integer(mct) ? json_integer_value(mct) : json_is_integer(mt) ? json_integer_value(mt) : 0;
    r->prompt_tokens_estimate = chars / 4 + 1;

    if ((v = json_object_get(root, "provider")) != NULL && !json_is_null(v) && (rc = parse_provider(r, v, err, errlen)) != 0)
        goto fail;
    rc = LG_EINVAL;
    if (r->sort == NULL && r->variant != NULL)
        r->sort = strcmp(r->variant, "nitro") == 0 ? "throughput" : "price";
    /* deprecated alias: route "sort" = provider.sort.partition "none". Normalised here into the provider preferences,
     * which is where policies and the built-in order read the partition. */
    json_t *sort = r->provider != NULL ? json_object_get(r->provider, "sort") : NULL;
    if ((v = json_object_get(root, "route")) != NULL && json_is_string(v) && strcmp(json_string_value(v), "sort") == 0 &&
        json_is_string(sort)) {
        json_t *by = json_string(json_string_value(sort));
        json_object_set_new(r->provider, "sort", json_pack("{s:o,s:s}", "by", by, "partition", "none"));
        /* the old string is gone; "by" lives in provider.sort now (exacto keeps its throughput stand-in) */
        r->sort = strcmp(json_string_value(by), "exacto") == 0 ? "throughput" : json_string_value(by);
    }

    /* the body plugins see: everything but gateway-only fields */
    r->body = json_object();
    const char *key;
    json_object_foreach(root, key, v)
    {
        int gw = 0;
        for (size_t k = 0; gateway_fields[k] != NULL && !gw; ++k)
            gw = strcmp(key, gateway_fields[k]) == 0;
        if (!gw)
            json_object_set(r->body, key, v);
        for (size_t k = 0; known_params[k] != NULL; ++k)
            if (strcmp(key, known_params[k]) == 0 && !json_is_null(v) && r->num_sent_params < 32)
                r->sent_params[r->num_sent_params++] = known_params[k];
    }
    return 0;

fail:
    lg_gen_request_dispose(r);
    return rc;
}

void lg_gen_request_dispose(lg_gen_request_t *r)
{
    json_decref(r->body);
    json_decref(r->root);
    r->body = r->root = NULL;
    /* everything below pointed into root */
    r->num_models = 0;
    r->provider = NULL;
    r->session_id = NULL;
    r->variant = NULL;
    r->sort = NULL;
}
