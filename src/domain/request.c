/* SPDX-License-Identifier: MIT */
/*
 * /v1 request parsing and validation (see request.h), on the body's bytes
 * with the JSON scanner: one validating pass, one pass over the top-level
 * members, then the checks in a fixed order so the first error is the same
 * whatever the member order. Types follow the OpenAI and OpenRouter schemas;
 * unknown top-level fields are kept and passed on (OpenAI-compatible
 * upstreams may understand them), unknown `provider` fields are rejected
 * (OpenRouter's schema has additionalProperties:false). Duplicate keys: the
 * last one counts, as in jansson (which builds the plugins' tree).
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "core/config.h"
#include "core/util.h"
#include "domain/request.h"
#include "json/scan.h"
#include "llmgate/error.h"
#include "llmgate/plugin.h"

/* Fields only the gateway reads; never sent upstream (src/pipeline/passthru.c drops the same list from the bytes). */
static const char *const gateway_fields[] = {"models", "provider", "route",      "transforms", "plugins",
                                             "usage",  "debug",    "session_id", "trace",      NULL};

/* OpenRouter parameter vocabulary used by require_parameters. */
#define P(s)                                                                                                                       \
    {                                                                                                                              \
        s, sizeof(s) - 1                                                                                                           \
    }
static const struct {
    const char *name;
    size_t len;
} known_params[] = {P("temperature"),
                    P("top_p"),
                    P("top_k"),
                    P("min_p"),
                    P("top_a"),
                    P("frequency_penalty"),
                    P("presence_penalty"),
                    P("repetition_penalty"),
                    P("max_tokens"),
                    P("max_completion_tokens"),
                    P("logit_bias"),
                    P("logprobs"),
                    P("top_logprobs"),
                    P("prediction"),
                    P("seed"),
                    P("response_format"),
                    P("structured_outputs"),
                    P("stop"),
                    P("tools"),
                    P("tool_choice"),
                    P("parallel_tool_calls"),
                    P("include_reasoning"),
                    P("reasoning"),
                    P("reasoning_effort"),
                    P("web_search_options"),
                    P("verbosity")};
#undef P
#define NUM_KNOWN_PARAMS (sizeof(known_params) / sizeof(known_params[0]))

/* Top-level members the validation reads; F_COUNT spans are collected in one pass. */
#define FIELDS(X)                                                                                                                  \
    X(MODEL, "model")                                                                                                              \
    X(MODELS, "models")                                                                                                            \
    X(MESSAGES, "messages")                                                                                                        \
    X(PROMPT, "prompt")                                                                                                            \
    X(INPUT, "input")                                                                                                              \
    X(STREAM, "stream")                                                                                                            \
    X(TEMPERATURE, "temperature")                                                                                                  \
    X(TOP_P, "top_p")                                                                                                              \
    X(FREQUENCY_PENALTY, "frequency_penalty")                                                                                      \
    X(PRESENCE_PENALTY, "presence_penalty")                                                                                        \
    X(REPETITION_PENALTY, "repetition_penalty")                                                                                    \
    X(MAX_TOKENS, "max_tokens")                                                                                                    \
    X(MAX_COMPLETION_TOKENS, "max_completion_tokens")                                                                              \
    X(N, "n")                                                                                                                      \
    X(TOP_K, "top_k")                                                                                                              \
    X(SEED, "seed")                                                                                                                \
    X(STOP, "stop")                                                                                                                \
    X(TOOLS, "tools")                                                                                                              \
    X(TOOL_CHOICE, "tool_choice")                                                                                                  \
    X(RESPONSE_FORMAT, "response_format")                                                                                          \
    X(STREAM_OPTIONS, "stream_options")                                                                                            \
    X(PARALLEL_TOOL_CALLS, "parallel_tool_calls")                                                                                  \
    X(USER, "user")                                                                                                                \
    X(SESSION_ID, "session_id")                                                                                                    \
    X(LOGIT_BIAS, "logit_bias")                                                                                                    \
    X(PROVIDER, "provider")                                                                                                        \
    X(ROUTE, "route")

enum field {
#define X(id, name) F_##id,
    FIELDS(X)
#undef X
        F_COUNT
};
static const struct {
    const char *name;
    size_t len;
} field_names[F_COUNT] = {
#define X(id, name) {name, sizeof(name) - 1},
    FIELDS(X)
#undef X
};

#define FAIL(...)                                                                                                                  \
    do {                                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                                        \
        return LG_EINVAL;                                                                                                          \
    } while (0)

/* present and not null (jansson: v != NULL && !json_is_null(v)) */
static int given(lg_json_span_t v)
{
    return v.type != LG_JSON_NONE && v.type != LG_JSON_NULL;
}

/* Decoded string value into buf (truncated to cap-1 bytes, NUL-terminated), for messages that quote it. */
static void str_value(lg_json_span_t v, char *buf, size_t cap)
{
    lg_json_unescape(v, buf, cap, NULL);
}

static int str_eq(lg_json_span_t v, const char *s)
{
    return v.type == LG_JSON_STRING && lg_json_key_eq(v, s, strlen(s));
}

static int check_string_array(lg_json_span_t v, const char *name, size_t max, char *err, size_t errlen)
{
    if (v.type != LG_JSON_ARRAY)
        FAIL("%s: expected array of strings", name);
    if (lg_json_count(v) > max)
        FAIL("%s: at most %zu entries", name, max);
    lg_json_iter_t it;
    lg_json_span_t e;
    size_t i = 0;
    lg_json_iter_init(&it, v);
    for (; lg_json_iter_element(&it, &e); ++i)
        if (e.type != LG_JSON_STRING || e.len == 2)
            FAIL("%s[%zu]: expected non-empty string", name, i);
    return 0;
}

/* A number as jansson's json_number_value sees it; out-of-range reals become +-inf (jansson would refuse the body). */
static double number_value(lg_json_span_t v)
{
    double d;
    if (lg_json_double(v, &d) == 0)
        return d;
    return v.len > 0 && v.p[0] == '-' ? -INFINITY : INFINITY;
}

static int check_number(lg_json_span_t v, const char *name, double lo, double hi, char *err, size_t errlen)
{
    if (!given(v))
        return 0;
    if (v.type != LG_JSON_NUMBER)
        FAIL("%s: expected number", name);
    double d = number_value(v);
    if (!(d >= lo && d <= hi))
        FAIL("%s: must be between %g and %g", name, lo, hi);
    return 0;
}

static int check_int(lg_json_span_t v, const char *name, int64_t lo, int64_t hi, char *err, size_t errlen)
{
    if (!given(v))
        return 0;
    if (v.type != LG_JSON_NUMBER || !lg_json_is_integer(v))
        FAIL("%s: expected integer", name);
    int64_t i;
    if (lg_json_int64(v, &i) != 0 || i < lo || i > hi)
        FAIL("%s: must be between %lld and %lld", name, (long long)lo, (long long)hi);
    return 0;
}

/* type check of an optional member: ok when absent/null or one of the allowed types (bit set of lg_json_type_t) */
#define T(t) (1u << (t))
static int check_type(lg_json_span_t v, const char *name, unsigned types, const char *what, char *err, size_t errlen)
{
    if (!given(v))
        return 0;
    if ((T(v.type) & types) == 0)
        FAIL("%s: expected %s", name, what);
    return 0;
}
#define T_BOOL (T(LG_JSON_TRUE) | T(LG_JSON_FALSE))

static size_t text_length(lg_json_span_t content)
{
    if (content.type == LG_JSON_STRING)
        return lg_json_str_len(content);
    size_t n = 0;
    if (content.type == LG_JSON_ARRAY) {
        lg_json_iter_t it;
        lg_json_span_t part, t;
        lg_json_iter_init(&it, content);
        while (lg_json_iter_element(&it, &part)) {
            if (part.type == LG_JSON_OBJECT && lg_json_get(part, "text", &t) && t.type == LG_JSON_STRING)
                n += lg_json_str_len(t);
            else if (part.type == LG_JSON_STRING)
                n += lg_json_str_len(part);
        }
    }
    return n;
}

static int validate_messages(lg_json_span_t msgs, int64_t *chars, char *err, size_t errlen)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function", NULL};
    if (msgs.type == LG_JSON_NONE)
        FAIL("messages: required");
    if (msgs.type != LG_JSON_ARRAY)
        FAIL("messages: expected array");
    if (msgs.len <= 2 || lg_json_count(msgs) == 0)
        FAIL("messages: must not be empty");
    lg_json_iter_t it;
    lg_json_span_t m;
    size_t i = 0;
    lg_json_iter_init(&it, msgs);
    for (; lg_json_iter_element(&it, &m); ++i) {
        if (m.type != LG_JSON_OBJECT)
            FAIL("messages[%zu]: expected object", i);
        /* one pass over the message's members; the last duplicate wins, as everywhere */
        lg_json_span_t role = {0}, content = {0}, tc = {0}, k, v;
        lg_json_iter_t mi;
        lg_json_iter_init(&mi, m);
        while (lg_json_iter_member(&mi, &k, &v)) {
            if (lg_json_key_eq(k, "role", 4))
                role = v;
            else if (lg_json_key_eq(k, "content", 7))
                content = v;
            else if (lg_json_key_eq(k, "tool_calls", 10))
                tc = v;
        }
        if (role.type != LG_JSON_STRING)
            FAIL("messages[%zu].role: expected string", i);
        int known = 0;
        for (size_t r = 0; roles[r] != NULL && !known; ++r)
            known = lg_json_key_eq(role, roles[r], strlen(roles[r]));
        if (!known) {
            char buf[64];
            str_value(role, buf, sizeof(buf));
            FAIL("messages[%zu].role: unknown role \"%.32s\"", i, buf);
        }
        if (given(content) && content.type != LG_JSON_STRING && content.type != LG_JSON_ARRAY)
            FAIL("messages[%zu].content: expected string, array or null", i);
        if (given(tc) && tc.type != LG_JSON_ARRAY)
            FAIL("messages[%zu].tool_calls: expected array", i);
        *chars += (int64_t)text_length(content) + 16;
        /* the tool calls' JSON size, as sent (the tree path counted its compact re-serialisation) */
        if (tc.type == LG_JSON_ARRAY)
            *chars += (int64_t)tc.len;
    }
    return 0;
}

/* provider.quantizations entries: OpenRouter's Quantization enum */
static int check_quantizations(lg_json_span_t v, char *err, size_t errlen)
{
    lg_json_iter_t it;
    lg_json_span_t e;
    lg_json_iter_init(&it, v);
    for (size_t i = 0; lg_json_iter_element(&it, &e); ++i) {
        size_t q = 0;
        while (lg_quantizations[q] != NULL && !str_eq(e, lg_quantizations[q]))
            ++q;
        if (lg_quantizations[q] == NULL)
            FAIL("provider.quantizations[%zu]: expected one of int4, int8, fp4, mxfp4, nvfp4, fp6, fp8, mxfp8, fp16, bf16, fp32, "
                 "unknown",
                 i);
    }
    return 0;
}

/* preferred_min_throughput / preferred_max_latency: a non-negative number or {p50,p75,p90,p99} of them */
static int check_percentiles(lg_json_span_t v, const char *field, char *err, size_t errlen)
{
    if (v.type == LG_JSON_NUMBER) {
        double d = number_value(v);
        if (!(d >= 0) || !isfinite(d))
            FAIL("provider.%s: must be a non-negative number", field);
        return 0;
    }
    lg_json_iter_t it;
    lg_json_span_t k, m;
    lg_json_iter_init(&it, v);
    while (lg_json_iter_member(&it, &k, &m)) {
        char name[64];
        str_value(k, name, sizeof(name));
        if (strcmp(name, "p50") != 0 && strcmp(name, "p75") != 0 && strcmp(name, "p90") != 0 && strcmp(name, "p99") != 0)
            FAIL("provider.%s.%.32s: unknown field (expected p50, p75, p90 or p99)", field, name);
        double d = m.type == LG_JSON_NUMBER ? number_value(m) : -1;
        if (m.type != LG_JSON_NULL && (!(d >= 0) || !isfinite(d)))
            FAIL("provider.%s.%s: must be a non-negative number", field, name);
    }
    return 0;
}

static int parse_provider(lg_gen_request_t *r, lg_json_span_t p, char *err, size_t errlen)
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
    enum { P_ORDER, P_AF, P_RP, P_DC, P_ZDR, P_EDT, P_ONLY, P_IGNORE, P_QUANT, P_SORT, P_PMT, P_PML, P_MAXP, P_EXP, P_COUNT };
    if (p.type != LG_JSON_OBJECT)
        FAIL("provider: expected object");
    lg_json_span_t f[P_COUNT], k, v;
    memset(f, 0, sizeof(f));
    lg_json_iter_t it;
    lg_json_iter_init(&it, p);
    while (lg_json_iter_member(&it, &k, &v)) {
        size_t i = 0;
        while (known[i] != NULL && !lg_json_key_eq(k, known[i], strlen(known[i])))
            ++i;
        if (known[i] == NULL) {
            char name[80];
            str_value(k, name, sizeof(name));
            FAIL("provider.%.64s: unknown field", name);
        }
        f[i] = v;
    }
    int rc;
    if (f[P_ORDER].type != LG_JSON_NONE && (rc = check_string_array(f[P_ORDER], "provider.order", 64, err, errlen)) != 0)
        return rc;
    if (f[P_ONLY].type != LG_JSON_NONE && (rc = check_string_array(f[P_ONLY], "provider.only", 64, err, errlen)) != 0)
        return rc;
    if (f[P_IGNORE].type != LG_JSON_NONE && (rc = check_string_array(f[P_IGNORE], "provider.ignore", 64, err, errlen)) != 0)
        return rc;
    if (f[P_QUANT].type != LG_JSON_NONE && (rc = check_string_array(f[P_QUANT], "provider.quantizations", 16, err, errlen)) != 0)
        return rc;
    if (f[P_QUANT].type != LG_JSON_NONE && (rc = check_quantizations(f[P_QUANT], err, errlen)) != 0)
        return rc;
    static const int bools[] = {P_AF, P_RP, P_ZDR, P_EDT};
    for (size_t b = 0; b < sizeof(bools) / sizeof(bools[0]); ++b) {
        char name[64];
        snprintf(name, sizeof(name), "provider.%s", known[bools[b]]);
        if ((rc = check_type(f[bools[b]], name, T_BOOL, "boolean", err, errlen)) != 0)
            return rc;
    }
    if (given(f[P_DC]) && !str_eq(f[P_DC], "allow") && !str_eq(f[P_DC], "deny"))
        FAIL("provider.data_collection: expected \"allow\" or \"deny\"");
    r->allow_fallbacks = f[P_AF].type != LG_JSON_FALSE;
    r->require_parameters = f[P_RP].type == LG_JSON_TRUE;
    if (given(f[P_SORT])) {
        lg_json_span_t by = f[P_SORT];
        if (by.type == LG_JSON_OBJECT) {
            lg_json_span_t part;
            lg_json_get(f[P_SORT], "partition", &part);
            lg_json_get(f[P_SORT], "by", &by);
            if (given(part) && !str_eq(part, "model") && !str_eq(part, "none"))
                FAIL("provider.sort.partition: expected \"model\" or \"none\"");
        }
        if (by.type != LG_JSON_STRING)
            FAIL("provider.sort: expected \"price\", \"throughput\", \"latency\" or {\"by\":...}");
        /* exacto (quality-first) has no local signal yet: treat as throughput, the closest measurable proxy */
        if (str_eq(by, "price"))
            r->sort = "price";
        else if (str_eq(by, "throughput") || str_eq(by, "exacto"))
            r->sort = "throughput";
        else if (str_eq(by, "latency"))
            r->sort = "latency";
        else {
            char s[64];
            str_value(by, s, sizeof(s));
            FAIL("provider.sort: unknown sort \"%.32s\"", s);
        }
    }
    if (given(f[P_MAXP])) {
        if (f[P_MAXP].type != LG_JSON_OBJECT)
            FAIL("provider.max_price: expected object");
        lg_json_iter_init(&it, f[P_MAXP]);
        while (lg_json_iter_member(&it, &k, &v)) {
            char name[64];
            str_value(k, name, sizeof(name));
            if (v.type != LG_JSON_NUMBER && v.type != LG_JSON_STRING)
                FAIL("provider.max_price.%.32s: expected number", name);
            double d;
            if (v.type == LG_JSON_NUMBER) {
                d = number_value(v);
            } else {
                char num[64];
                str_value(v, num, sizeof(num));
                d = atof(num);
            }
            if (!(d >= 0) || !isfinite(d))
                FAIL("provider.max_price.%.32s: must be a non-negative number", name);
            if (strcmp(name, "prompt") == 0)
                r->max_price_prompt = d;
            else if (strcmp(name, "completion") == 0)
                r->max_price_completion = d;
            else if (strcmp(name, "request") == 0)
                r->max_price_request = d;
            else if (strcmp(name, "image") != 0 && strcmp(name, "audio") != 0)
                FAIL("provider.max_price.%.32s: unknown field", name);
        }
    }
    static const int soft[] = {P_PMT, P_PML};
    for (size_t s = 0; s < 2; ++s) {
        v = f[soft[s]];
        if (given(v) && v.type != LG_JSON_NUMBER && v.type != LG_JSON_OBJECT)
            FAIL("provider.%s: expected number or object", known[soft[s]]);
        if (given(v) && (rc = check_percentiles(v, known[soft[s]], err, errlen)) != 0)
            return rc;
    }
    /* routing preferences are read by the router and by Lua policies as a tree: a small one, built once */
    r->provider = json_loadb(p.p, p.len, 0, NULL);
    if (r->provider == NULL)
        FAIL("provider: cannot be represented (numbers out of range)");
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

/* Append the decoded string to the strs block (sized for all strings up front); returns it NUL-terminated. */
static const char *keep_string(char **cursor, lg_json_span_t s, size_t *len)
{
    char *dst = *cursor;
    size_t raw_n, n;
    lg_json_str_raw(s, &raw_n);
    lg_json_unescape(s, dst, raw_n + 1, &n); /* decoding never grows a string */
    *cursor += n + 1;
    *len = n;
    return dst;
}

static int parse_span(lg_gen_request_t *r, int kind, lg_json_span_t root, char *err, size_t errlen)
{
    lg_json_span_t f[F_COUNT], k, v;
    memset(f, 0, sizeof(f));
    if (root.type != LG_JSON_OBJECT)
        FAIL("body: expected a JSON object");

    /* one pass over the members: collect what the checks read, and the OpenRouter parameters that were sent */
    lg_json_iter_t it;
    lg_json_iter_init(&it, root);
    while (lg_json_iter_member(&it, &k, &v)) {
        size_t kn;
        const char *kr = lg_json_str_raw(k, &kn);
        int plain = memchr(kr, '\\', kn) == NULL;
#define KEY_IS(name, len) (plain ? (kn == (len) && memcmp(kr, name, len) == 0) : lg_json_key_eq(k, name, len))
        for (size_t i = 0; i < F_COUNT; ++i)
            if (KEY_IS(field_names[i].name, field_names[i].len)) {
                f[i] = v;
                break;
            }
        for (size_t p = 0; p < NUM_KNOWN_PARAMS; ++p) {
            if (!KEY_IS(known_params[p].name, known_params[p].len))
                continue;
            size_t j = 0;
            while (j < r->num_sent_params && r->sent_params[j] != known_params[p].name)
                ++j;
            if (v.type != LG_JSON_NULL && j == r->num_sent_params && r->num_sent_params < 32)
                r->sent_params[r->num_sent_params++] = known_params[p].name;
            else if (v.type == LG_JSON_NULL && j < r->num_sent_params) /* a later null duplicate wins */
                r->sent_params[j] = r->sent_params[--r->num_sent_params];
            break;
        }
#undef KEY_IS
    }

    /* model and models[] */
    lg_json_span_t model = f[F_MODEL], models = f[F_MODELS];
    if (given(model) && (model.type != LG_JSON_STRING || model.len == 2))
        FAIL("model: expected non-empty string");
    int rc;
    if (given(models) && (rc = check_string_array(models, "models", LG_MAX_MODELS, err, errlen)) != 0)
        return rc;
    /* decoded copies of every string kept past parsing: model ids and session_id */
    size_t need = 2 + (model.type == LG_JSON_STRING ? model.len : 0) + (models.type == LG_JSON_ARRAY ? models.len : 0) +
                  (f[F_SESSION_ID].type == LG_JSON_STRING ? f[F_SESSION_ID].len : 0);
    r->strs = lg_malloc(need);
    char *cursor = r->strs;
    size_t n;
    if (model.type == LG_JSON_STRING) {
        const char *id = keep_string(&cursor, model, &n);
        if ((rc = add_model(r, id, n, 1, err, errlen)) != 0)
            return rc;
    }
    if (models.type == LG_JSON_ARRAY) {
        lg_json_iter_init(&it, models);
        while (lg_json_iter_element(&it, &v)) {
            const char *id = keep_string(&cursor, v, &n);
            if ((rc = add_model(r, id, n, r->num_models == 0, err, errlen)) != 0)
                return rc;
        }
    }
    if (r->num_models == 0)
        FAIL("model: required (or a non-empty models array)");

    /* route-specific payload */
    int64_t chars = 0;
    if (kind == LG_API_CHAT) {
        if ((rc = validate_messages(f[F_MESSAGES], &chars, err, errlen)) != 0)
            return rc;
    } else if (kind == LG_API_COMPLETIONS) {
        v = f[F_PROMPT];
        if (v.type != LG_JSON_STRING && v.type != LG_JSON_ARRAY)
            FAIL("prompt: expected string or array");
        chars = (int64_t)text_length(v);
    } else {
        v = f[F_INPUT];
        if (v.type != LG_JSON_STRING && v.type != LG_JSON_ARRAY)
            FAIL("input: expected string or array");
        if (v.type == LG_JSON_ARRAY && lg_json_count(v) == 0)
            FAIL("input: must not be empty");
        chars = (int64_t)text_length(v);
    }

    /* common typed fields */
    if ((rc = check_type(f[F_STREAM], "stream", T_BOOL, "boolean", err, errlen)) != 0 ||
        (rc = check_number(f[F_TEMPERATURE], "temperature", 0, 2, err, errlen)) != 0 ||
        (rc = check_number(f[F_TOP_P], "top_p", 0, 1, err, errlen)) != 0 ||
        (rc = check_number(f[F_FREQUENCY_PENALTY], "frequency_penalty", -2, 2, err, errlen)) != 0 ||
        (rc = check_number(f[F_PRESENCE_PENALTY], "presence_penalty", -2, 2, err, errlen)) != 0 ||
        (rc = check_number(f[F_REPETITION_PENALTY], "repetition_penalty", 0, 2, err, errlen)) != 0 ||
        (rc = check_int(f[F_MAX_TOKENS], "max_tokens", 1, INT32_MAX, err, errlen)) != 0 ||
        (rc = check_int(f[F_MAX_COMPLETION_TOKENS], "max_completion_tokens", 1, INT32_MAX, err, errlen)) != 0 ||
        (rc = check_int(f[F_N], "n", 1, 128, err, errlen)) != 0 ||
        (rc = check_int(f[F_TOP_K], "top_k", 0, INT32_MAX, err, errlen)) != 0 ||
        (rc = check_int(f[F_SEED], "seed", INT64_MIN, INT64_MAX, err, errlen)) != 0 ||
        (rc = check_type(f[F_STOP], "stop", T(LG_JSON_STRING) | T(LG_JSON_ARRAY), "string or array", err, errlen)) != 0 ||
        (rc = check_type(f[F_TOOLS], "tools", T(LG_JSON_ARRAY), "array", err, errlen)) != 0 ||
        (rc = check_type(f[F_TOOL_CHOICE], "tool_choice", T(LG_JSON_STRING) | T(LG_JSON_OBJECT), "string or object", err,
                         errlen)) != 0 ||
        (rc = check_type(f[F_RESPONSE_FORMAT], "response_format", T(LG_JSON_OBJECT), "object", err, errlen)) != 0 ||
        (rc = check_type(f[F_STREAM_OPTIONS], "stream_options", T(LG_JSON_OBJECT), "object", err, errlen)) != 0 ||
        (rc = check_type(f[F_PARALLEL_TOOL_CALLS], "parallel_tool_calls", T_BOOL, "boolean", err, errlen)) != 0 ||
        (rc = check_type(f[F_USER], "user", T(LG_JSON_STRING), "string", err, errlen)) != 0 ||
        (rc = check_type(f[F_SESSION_ID], "session_id", T(LG_JSON_STRING), "string", err, errlen)) != 0 ||
        (rc = check_type(f[F_LOGIT_BIAS], "logit_bias", T(LG_JSON_OBJECT), "object", err, errlen)) != 0)
        return rc;
    r->stream = f[F_STREAM].type == LG_JSON_TRUE;
    if (r->stream && kind == LG_API_EMBEDDINGS)
        FAIL("stream: embeddings cannot be streamed");
    if (f[F_SESSION_ID].type == LG_JSON_STRING) {
        if (lg_json_str_len(f[F_SESSION_ID]) > 256)
            FAIL("session_id: at most 256 characters");
        r->session_id = keep_string(&cursor, f[F_SESSION_ID], &n);
    }
    r->has_tools = f[F_TOOLS].type == LG_JSON_ARRAY && f[F_TOOLS].len > 2 && lg_json_count(f[F_TOOLS]) > 0;
    int64_t mct, mt;
    if (f[F_MAX_COMPLETION_TOKENS].type == LG_JSON_NUMBER && lg_json_int64(f[F_MAX_COMPLETION_TOKENS], &mct) == 0)
        r->max_tokens = mct;
    else if (f[F_MAX_TOKENS].type == LG_JSON_NUMBER && lg_json_int64(f[F_MAX_TOKENS], &mt) == 0)
        r->max_tokens = mt;
    r->prompt_tokens_estimate = chars / 4 + 1;

    if (given(f[F_PROVIDER]) && (rc = parse_provider(r, f[F_PROVIDER], err, errlen)) != 0)
        return rc;
    if (r->sort == NULL && r->variant != NULL)
        r->sort = strcmp(r->variant, "nitro") == 0 ? "throughput" : "price";
    /* deprecated alias: route "sort" = provider.sort.partition "none". Normalised here into the provider preferences,
     * which is where policies and the built-in order read the partition. */
    json_t *sort = r->provider != NULL ? json_object_get(r->provider, "sort") : NULL;
    if (str_eq(f[F_ROUTE], "sort") && json_is_string(sort)) {
        json_t *by = json_string(json_string_value(sort));
        json_object_set_new(r->provider, "sort", json_pack("{s:o,s:s}", "by", by, "partition", "none"));
    }
    return 0;
}

int lg_gen_request_parse(lg_gen_request_t *r, int kind, const char *body, size_t len, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->allow_fallbacks = 1;
    r->max_price_prompt = r->max_price_completion = r->max_price_request = -1;
    r->raw = lg_malloc(len + 1);
    memcpy(r->raw, body, len);
    r->raw[len] = '\0';
    r->raw_len = len;
    lg_json_span_t root;
    lg_json_error_t jerr;
    int rc;
    if (lg_json_validate(r->raw, len, &root, &jerr) != 0) {
        /* line and column like a text editor counts them (1-based) */
        int line = 1, col = 1;
        for (size_t i = 0; i < jerr.offset && i < len; ++i, ++col)
            if (r->raw[i] == '\n')
                ++line, col = 0;
        snprintf(err, errlen, "invalid JSON body: %s (line %d, column %d)", jerr.what, line, col);
        rc = LG_EINVAL;
    } else if (root.type != LG_JSON_OBJECT && root.type != LG_JSON_ARRAY) {
        snprintf(err, errlen, "invalid JSON body: '[' or '{' expected (line 1, column 1)");
        rc = LG_EINVAL;
    } else {
        rc = parse_span(r, kind, root, err, errlen);
        if (rc == 0)
            r->wire = root;
    }
    if (rc != 0)
        lg_gen_request_dispose(r);
    return rc;
}

int lg_gen_request_from_json(lg_gen_request_t *r, int kind, json_t *root, char *err, size_t errlen)
{
    /* one validator for both entries: the translated tree is serialised once and read like a client body; the tree
     * itself is what plugins get (the Anthropic skin always translates, so it never takes the pass-through path) */
    char *text = json_is_object(root) ? json_dumps(root, JSON_COMPACT) : NULL;
    if (text == NULL) {
        json_decref(root);
        memset(r, 0, sizeof(*r));
        snprintf(err, errlen, "body: expected a JSON object");
        return LG_EINVAL;
    }
    int rc = lg_gen_request_parse(r, kind, text, strlen(text), err, errlen);
    free(text);
    if (rc != 0) {
        json_decref(root);
        return rc;
    }
    memset(&r->wire, 0, sizeof(r->wire)); /* bytes of a translation, not the client's: never forwarded as they are */
    r->root = root;
    return 0;
}

json_t *lg_gen_request_body(lg_gen_request_t *r)
{
    if (r->body != NULL)
        return r->body;
    if (r->root == NULL && r->raw != NULL)
        r->root = json_loadb(r->raw, r->raw_len, JSON_ALLOW_NUL, NULL);
    if (r->root == NULL)
        return NULL;
    r->body = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(r->root, key, v)
    {
        int gw = 0;
        for (size_t k = 0; gateway_fields[k] != NULL && !gw; ++k)
            gw = strcmp(key, gateway_fields[k]) == 0;
        if (!gw)
            json_object_set(r->body, key, v);
    }
    return r->body;
}

void lg_gen_request_dispose(lg_gen_request_t *r)
{
    json_decref(r->body);
    json_decref(r->root);
    json_decref(r->provider);
    json_decref(r->skin_data);
    r->skin_data = NULL;
    free(r->raw);
    free(r->strs);
    r->body = r->root = r->provider = NULL;
    r->raw = r->strs = NULL;
    /* everything below pointed into strs or raw */
    r->num_models = 0;
    memset(&r->wire, 0, sizeof(r->wire));
    r->session_id = NULL;
    r->variant = NULL;
    r->sort = NULL;
}
