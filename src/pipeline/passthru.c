/* SPDX-License-Identifier: MIT */
/*
 * OpenAI wire pass-through (see passthru.h). Every function works on spans
 * into the bytes it was given and writes into a bounded lg_buf_t; nothing
 * builds a JSON tree.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "pipeline/passthru.h"
#include "json/splice.h"

#define KEY(s) s, sizeof(s) - 1

/* The same list as request.c's tree body drops: members only the gateway reads. */
static const struct {
    const char *name;
    size_t len;
} gateway_fields[] = {{KEY("models")}, {KEY("provider")}, {KEY("route")},      {KEY("transforms")}, {KEY("plugins")},
                      {KEY("usage")},  {KEY("debug")},    {KEY("session_id")}, {KEY("trace")}};
#define NUM_GATEWAY_FIELDS (sizeof(gateway_fields) / sizeof(gateway_fields[0]))

int lg_pt_is_gateway_field(const char *name, size_t n)
{
    for (size_t i = 0; i < NUM_GATEWAY_FIELDS; ++i)
        if (gateway_fields[i].len == n && memcmp(gateway_fields[i].name, name, n) == 0)
            return 1;
    return 0;
}

int lg_pt_upstream_body(lg_json_span_t client, const lg_pt_body_opts_t *o, lg_buf_t *out)
{
    lg_json_edit_t e[NUM_GATEWAY_FIELDS + 5];
    size_t n = 0;
    char model[512];
    lg_buf_t mb;
    /* the model value, escaped, in a small scratch buffer (model names are short; the cap guards odd configs) */
    lg_buf_init(&mb, sizeof(model));
    if (lg_json_write_string(&mb, o->model, strlen(o->model)) != 0) {
        lg_buf_dispose(&mb);
        return -1;
    }
    e[n++] = (lg_json_edit_t){LG_JSON_EDIT_SET, KEY("model"), mb.data, mb.len};
    for (size_t i = 0; i < NUM_GATEWAY_FIELDS; ++i)
        e[n++] = (lg_json_edit_t){LG_JSON_EDIT_REMOVE, gateway_fields[i].name, gateway_fields[i].len, NULL, 0};
    lg_json_span_t so, mct;
    lg_buf_t sob;
    lg_buf_init(&sob, 64 * 1024);
    if (o->stream) {
        e[n++] = (lg_json_edit_t){LG_JSON_EDIT_SET, KEY("stream"), KEY("true")};
        if (o->include_usage) {
            static const lg_json_edit_t iu = {LG_JSON_EDIT_SET, KEY("include_usage"), KEY("true")};
            if (lg_json_get(client, "stream_options", &so) && so.type == LG_JSON_OBJECT) {
                if (lg_json_splice(&sob, so, &iu, 1) != 0)
                    goto fail;
                e[n++] = (lg_json_edit_t){LG_JSON_EDIT_SET, KEY("stream_options"), sob.data, sob.len};
            } else {
                e[n++] = (lg_json_edit_t){LG_JSON_EDIT_SET, KEY("stream_options"), KEY("{\"include_usage\":true}")};
            }
        }
    } else {
        /* OpenAI rejects stream_options without stream:true */
        e[n++] = (lg_json_edit_t){LG_JSON_EDIT_REMOVE, KEY("stream"), NULL, 0};
        e[n++] = (lg_json_edit_t){LG_JSON_EDIT_REMOVE, KEY("stream_options"), NULL, 0};
    }
    if (lg_json_get(client, "max_completion_tokens", &mct) && mct.type != LG_JSON_NULL)
        e[n++] = (lg_json_edit_t){LG_JSON_EDIT_REMOVE, KEY("max_tokens"), NULL, 0};
    int rc = lg_json_splice(out, client, e, n);
    lg_buf_dispose(&sob);
    lg_buf_dispose(&mb);
    return rc;
fail:
    lg_buf_dispose(&sob);
    lg_buf_dispose(&mb);
    return -1;
}

/* ---- usage ---------------------------------------------------------------------------------------------------------- */

/* A token count: non-negative integer, or a real below 2^53 truncated (what the plugins' normaliser accepts). */
static int64_t count(lg_json_span_t obj, const char *name, int *present)
{
    lg_json_span_t v;
    int64_t i;
    double d;
    if (present != NULL)
        *present = 0;
    if (!lg_json_get(obj, name, &v) || v.type != LG_JSON_NUMBER)
        return 0;
    if (lg_json_int64(v, &i) == 0) {
        if (present != NULL)
            *present = 1;
        return i < 0 ? 0 : i;
    }
    if (!lg_json_is_integer(v) && lg_json_double(v, &d) == 0 && d >= 0 && d < 9.0e15) {
        if (present != NULL)
            *present = 1;
        return (int64_t)d;
    }
    return 0;
}

void lg_pt_usage_read(lg_json_span_t usage, lg_pt_usage_t *o)
{
    memset(o, 0, sizeof(*o));
    if (usage.type != LG_JSON_OBJECT)
        return;
    /* one pass over the members instead of one lookup per counter */
    lg_json_iter_t it;
    lg_json_span_t k, v, pd = {0}, cd = {0};
    int64_t in = -1, outp = -1;
    lg_json_iter_init(&it, usage);
    while (lg_json_iter_member(&it, &k, &v)) {
        int64_t i;
        double d;
        int64_t c = -1;
        if (v.type == LG_JSON_NUMBER) {
            if (lg_json_int64(v, &i) == 0)
                c = i < 0 ? 0 : i;
            else if (!lg_json_is_integer(v) && lg_json_double(v, &d) == 0 && d >= 0 && d < 9.0e15)
                c = (int64_t)d;
        }
        if (lg_json_key_eq(k, KEY("prompt_tokens"))) {
            o->has_prompt = c >= 0;
            o->u.prompt_tokens = c >= 0 ? c : 0;
        } else if (lg_json_key_eq(k, KEY("completion_tokens"))) {
            o->has_completion = c >= 0;
            o->u.completion_tokens = c >= 0 ? c : 0;
        } else if (lg_json_key_eq(k, KEY("total_tokens"))) {
            o->has_total = c >= 0;
            o->total_tokens = c >= 0 ? c : 0;
        } else if (lg_json_key_eq(k, KEY("prompt_tokens_details"))) {
            pd = v;
        } else if (lg_json_key_eq(k, KEY("completion_tokens_details"))) {
            cd = v;
        } else if (lg_json_key_eq(k, KEY("input_tokens"))) {
            in = c;
        } else if (lg_json_key_eq(k, KEY("output_tokens"))) {
            outp = c;
        }
    }
    /* some OpenAI-compatible servers use the Responses API names */
    if (!o->has_prompt && in >= 0) {
        o->has_prompt = 1;
        o->u.prompt_tokens = in;
    }
    if (!o->has_completion && outp >= 0) {
        o->has_completion = 1;
        o->u.completion_tokens = outp;
    }
    if (pd.type == LG_JSON_OBJECT) {
        o->u.cached_tokens = count(pd, "cached_tokens", NULL);
        o->u.cache_write_tokens = count(pd, "cache_write_tokens", NULL);
        o->u.cache_write_1h_tokens = count(pd, "cache_write_1h_tokens", NULL);
    }
    if (cd.type == LG_JSON_OBJECT)
        o->u.reasoning_tokens = count(cd, "reasoning_tokens", NULL);
    if (!o->has_total) {
        const int64_t cap = (int64_t)1 << 52;
        o->total_tokens =
            (o->u.prompt_tokens > cap ? cap : o->u.prompt_tokens) + (o->u.completion_tokens > cap ? cap : o->u.completion_tokens);
    }
}

/* Decimal digits of v (>= 0) right-aligned ending at end; returns the first digit. */
static char *digits(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

/* Cost in pico-USD as an exact decimal USD real ("0.0000015", "12.0"): no float rounding, no printf. */
static size_t format_cost(char *out, int64_t pico)
{
    char buf[48], *end = buf + sizeof(buf);
    uint64_t u = pico < 0 ? 0 - (uint64_t)pico : (uint64_t)pico;
    uint64_t whole = u / 1000000000000ull, frac = u % 1000000000000ull;
    char *p = end;
    if (frac == 0) {
        *--p = '0';
    } else {
        int n = 12;
        while (frac % 10 == 0) { /* trailing zeros go */
            frac /= 10;
            --n;
        }
        for (int i = 0; i < n; ++i, frac /= 10)
            *--p = (char)('0' + frac % 10);
    }
    *--p = '.';
    p = digits(p, whole);
    if (pico < 0)
        *--p = '-';
    size_t len = (size_t)(end - p);
    memcpy(out, p, len);
    return len;
}

int lg_pt_write_usage(lg_json_span_t usage, const lg_pt_usage_t *f, const lg_cost_t *c, lg_buf_t *out)
{
    char nums[3][24], cost[48], pcost[48], ccost[48], details[160];
    const char *np[3];
    int64_t vals[3] = {f->u.prompt_tokens, f->u.completion_tokens, f->total_tokens};
    size_t lens[3];
    for (int i = 0; i < 3; ++i) {
        np[i] = digits(nums[i] + sizeof(nums[i]), vals[i] < 0 ? 0 : (uint64_t)vals[i]);
        lens[i] = (size_t)(nums[i] + sizeof(nums[i]) - np[i]);
    }
    size_t clen = format_cost(cost, c->total);
    /* cost_details as OpenRouter's SDK requires it: both split costs are numbers */
    size_t plen = format_cost(pcost, c->prompt), cclen = format_cost(ccost, c->completion);
    size_t dlen = (size_t)snprintf(details, sizeof(details),
                                   "{\"upstream_inference_cost\":null,\"upstream_inference_prompt_cost\":%.*s,"
                                   "\"upstream_inference_completions_cost\":%.*s}",
                                   (int)plen, pcost, (int)cclen, ccost);
    const lg_json_edit_t e[] = {
        {LG_JSON_EDIT_SET, KEY("prompt_tokens"), np[0], lens[0]}, {LG_JSON_EDIT_SET, KEY("completion_tokens"), np[1], lens[1]},
        {LG_JSON_EDIT_SET, KEY("total_tokens"), np[2], lens[2]},  {LG_JSON_EDIT_SET, KEY("cost"), cost, clen},
        {LG_JSON_EDIT_SET, KEY("is_byok"), KEY("false")},         {LG_JSON_EDIT_SET, KEY("cost_details"), details, dlen},
    };
    static const lg_json_span_t empty = {"{}", 2, LG_JSON_OBJECT};
    return lg_json_splice(out, usage.type == LG_JSON_OBJECT ? usage : empty, e, sizeof(e) / sizeof(e[0]));
}

/* ---- checking replies and chunks ------------------------------------------------------------------------------------ */

/*
 * One pass over the bytes: the walker follows the outer structure (the object, choices[], each choice, its message or
 * delta) and has every other value validated by the scanner as it goes, so each byte is read once. Schema errors are
 * noted (the first one) and the walk goes on: a syntax error anywhere, then an error object, take precedence.
 */
#define BAD(...)                                                                                                                   \
    do {                                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                                        \
        return LG_PT_BAD;                                                                                                          \
    } while (0)
#define BAD_SYNTAX(what, reason, at) BAD("upstream %s is not valid JSON: %s at byte %zu", what, reason, (size_t)(at))

struct walk {
    const char *p, *end, *start;
    int chunk;
    lg_pt_info_t *info;
    char *err;
    size_t errlen;
    int schema_bad;       /* a schema error was noted in err */
    const char *syntax;   /* first syntax error, NULL if none */
    size_t syntax_at;     /* its byte offset */
    size_t choice;        /* index of the choice being walked */
    lg_json_span_t field; /* choices member being checked */
};

static void schema(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void schema(struct walk *w, const char *fmt, ...)
{
    if (w->schema_bad)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
    w->schema_bad = 1;
}

static int syntax(struct walk *w, const char *at, const char *what)
{
    w->syntax = what;
    w->syntax_at = (size_t)(at - w->start);
    return -1;
}

/* A member name as plain bytes: the raw bytes when it has no escape (the common case), else decoded into buf (names
 * longer than buf never match the few names checked here). */
struct name {
    const char *p;
    size_t n;
    char buf[32];
};

static void name_of(lg_json_span_t key, struct name *nm)
{
    nm->p = key.p + 1;
    nm->n = key.len - 2;
    for (size_t i = 0; i < nm->n; ++i)
        if (nm->p[i] == '\\') {
            if (lg_json_unescape(key, nm->buf, sizeof(nm->buf), &nm->n) != 0)
                nm->n = 0;
            nm->p = nm->buf;
            return;
        }
}

#define IS(nm, lit) ((nm).n == sizeof(lit) - 1 && memcmp((nm).p, lit, sizeof(lit) - 1) == 0)

static void ws(struct walk *w)
{
    while (w->p < w->end && (*w->p == ' ' || *w->p == '\n' || *w->p == '\r' || *w->p == '\t'))
        ++w->p;
}

/* Validate the value at w->p and step over it. */
static int value(struct walk *w, int depth, lg_json_span_t *v)
{
    lg_json_error_t je;
    if (lg_json_validate_value(w->p, w->end, depth, v, &je) != 0)
        return syntax(w, w->p + je.offset, je.what);
    w->p = v->p + v->len;
    return 0;
}

typedef int (*member_fn)(struct walk *w, lg_json_span_t key, int depth);
typedef int (*element_fn)(struct walk *w, size_t index, int depth);

/* w->p at '{': members until '}'; fn consumes each value (depth = the values' depth). */
static int walk_object(struct walk *w, int depth, member_fn fn)
{
    if (depth >= LG_JSON_MAX_DEPTH)
        return syntax(w, w->p, "nesting too deep");
    ++w->p;
    ws(w);
    if (w->p < w->end && *w->p == '}') {
        ++w->p;
        return 0;
    }
    for (;;) {
        ws(w);
        lg_json_span_t key;
        if (w->p >= w->end || *w->p != '"')
            return syntax(w, w->p, "expected member name");
        if (value(w, depth + 1, &key) != 0)
            return -1;
        ws(w);
        if (w->p >= w->end || *w->p != ':')
            return syntax(w, w->p, "expected ':'");
        ++w->p;
        ws(w);
        if (fn(w, key, depth + 1) != 0)
            return -1;
        ws(w);
        if (w->p < w->end && *w->p == ',') {
            ++w->p;
            continue;
        }
        if (w->p < w->end && *w->p == '}') {
            ++w->p;
            return 0;
        }
        return syntax(w, w->p, "expected ',' or '}'");
    }
}

static int walk_array(struct walk *w, int depth, element_fn fn)
{
    if (depth >= LG_JSON_MAX_DEPTH)
        return syntax(w, w->p, "nesting too deep");
    ++w->p;
    ws(w);
    if (w->p < w->end && *w->p == ']') {
        ++w->p;
        return 0;
    }
    for (size_t i = 0;; ++i) {
        ws(w);
        if (fn(w, i, depth + 1) != 0)
            return -1;
        ws(w);
        if (w->p < w->end && *w->p == ',') {
            ++w->p;
            continue;
        }
        if (w->p < w->end && *w->p == ']') {
            ++w->p;
            return 0;
        }
        return syntax(w, w->p, "expected ',' or ']'");
    }
}

static int on_message_member(struct walk *w, lg_json_span_t k, int depth)
{
    lg_json_span_t v;
    const char *mname = w->chunk ? "delta" : "message";
    if (value(w, depth, &v) != 0)
        return -1;
    lg_pt_info_t *info = w->info;
    struct name nm;
    name_of(k, &nm);
    if (IS(nm, "content")) {
        if (v.type == LG_JSON_STRING) {
            size_t n = lg_json_str_plain(v) ? v.len - 2 : lg_json_str_len(v);
            info->content_chars += (int64_t)n;
            info->has_content |= n != 0;
        } else if (v.type == LG_JSON_ARRAY) {
            info->has_content |= v.len > 2 && lg_json_count(v) != 0;
        } else if (v.type != LG_JSON_NULL) {
            schema(w, "choices[%zu].%s.content: expected string, array or null", w->choice, mname);
        }
    } else if (IS(nm, "tool_calls")) {
        if (v.type == LG_JSON_ARRAY)
            info->has_content |= v.len > 2 && lg_json_count(v) != 0;
        else if (v.type != LG_JSON_NULL)
            schema(w, "choices[%zu].%s.tool_calls: expected array or null", w->choice, mname);
    } else if (IS(nm, "role")) {
        if (v.type != LG_JSON_STRING && v.type != LG_JSON_NULL)
            schema(w, "choices[%zu].%s.role: expected string", w->choice, mname);
    } else if (v.type != LG_JSON_NULL && !(v.type == LG_JSON_STRING && v.len == 2)) {
        /* reasoning, refusal, audio, function_call …: anything non-empty is content for the commit point */
        info->has_content = 1;
    }
    return 0;
}

static int on_choice_member(struct walk *w, lg_json_span_t k, int depth)
{
    const char *mname = w->chunk ? "delta" : "message";
    lg_pt_info_t *info = w->info;
    struct name nm;
    name_of(k, &nm);
    int is_msg = w->chunk ? IS(nm, "delta") : IS(nm, "message");
    if (is_msg && w->p < w->end && *w->p == '{')
        return walk_object(w, depth, on_message_member);
    lg_json_span_t v;
    if (value(w, depth, &v) != 0)
        return -1;
    if (IS(nm, "finish_reason")) {
        if (v.type == LG_JSON_STRING) {
            lg_json_unescape(v, info->finish_reason, sizeof(info->finish_reason), NULL);
            info->has_content = 1;
        } else if (v.type != LG_JSON_NULL) {
            schema(w, "choices[%zu].finish_reason: expected string or null", w->choice);
        }
    } else if (IS(nm, "text")) {
        if (v.type == LG_JSON_STRING) {
            size_t n = lg_json_str_plain(v) ? v.len - 2 : lg_json_str_len(v);
            info->content_chars += (int64_t)n;
            info->has_content |= n != 0;
        } else if (v.type != LG_JSON_NULL) {
            schema(w, "choices[%zu].text: expected string", w->choice);
        }
    } else if (IS(nm, "index")) {
        if (v.type != LG_JSON_NUMBER || !lg_json_is_integer(v))
            schema(w, "choices[%zu].index: expected integer", w->choice);
    } else if (is_msg && v.type != LG_JSON_NULL) {
        schema(w, "choices[%zu].%s: expected object", w->choice, mname);
    }
    return 0;
}

static int on_choice(struct walk *w, size_t i, int depth)
{
    w->choice = i;
    w->info->num_choices = i + 1;
    if (w->p < w->end && *w->p == '{')
        return walk_object(w, depth, on_choice_member);
    lg_json_span_t v;
    if (value(w, depth, &v) != 0)
        return -1;
    schema(w, "choices[%zu]: expected object", i);
    return 0;
}

struct root_state {
    int has_error;
    lg_json_type_t choices;
};

static struct root_state *root_of(struct walk *w);

static int on_root_member(struct walk *w, lg_json_span_t k, int depth)
{
    lg_pt_info_t *info = w->info;
    struct root_state *rs = root_of(w);
    const char *vstart = w->p;
    lg_json_span_t v;
    int owned = 0;
    struct name nm;
    name_of(k, &nm);
    if (IS(nm, "choices")) {
        if (w->p < w->end && *w->p == '[') {
            info->num_choices = 0;
            if (walk_array(w, depth, on_choice) != 0)
                return -1;
            v = (lg_json_span_t){vstart, (size_t)(w->p - vstart), LG_JSON_ARRAY};
        } else if (value(w, depth, &v) != 0) {
            return -1;
        }
        rs->choices = v.type;
    } else {
        if (value(w, depth, &v) != 0)
            return -1;
        if (IS(nm, "usage")) {
            info->usage = v.type == LG_JSON_OBJECT ? v : (lg_json_span_t){0};
            owned = info->has_usage_slot; /* the first usage member marks where ours goes; duplicates are dropped */
            info->has_usage_slot = 1;
            if (!owned)
                k.p = NULL; /* slot marker */
        } else if (IS(nm, "error")) {
            rs->has_error = v.type != LG_JSON_NULL;
        } else if (IS(nm, "system_fingerprint")) {
            /* OpenRouter's schema: a chunk carries it only as a string (its SDK rejects a null there) */
            info->fingerprint = v.type;
            owned = w->chunk && v.type != LG_JSON_STRING;
        } else {
            owned = IS(nm, "id") || IS(nm, "object") || IS(nm, "created") || IS(nm, "model") || IS(nm, "provider");
        }
    }
    if (owned)
        return 0;
    if (info->num_keep < LG_PT_MAX_KEEP) {
        info->keep[info->num_keep].p = k.p;
        info->keep[info->num_keep].len = k.p != NULL ? (size_t)(v.p + v.len - k.p) : 0;
        ++info->num_keep;
    } else {
        info->keep_overflow = 1;
    }
    return 0;
}

struct walk_root {
    struct walk w; /* first: the callbacks get &w */
    struct root_state rs;
};

static struct root_state *root_of(struct walk *w)
{
    return &((struct walk_root *)(void *)w)->rs;
}

static lg_pt_status_t check_object(const char *p, size_t len, int chunk, lg_pt_info_t *info, char *err, size_t errlen)
{
    const char *what = chunk ? "event" : "response";
    memset(info, 0, sizeof(*info));
    struct walk_root wr;
    memset(&wr, 0, sizeof(wr));
    struct walk *w = &wr.w;
    w->p = w->start = p;
    w->end = p + len;
    w->chunk = chunk;
    w->info = info;
    w->err = err;
    w->errlen = errlen;
    ws(w);
    const char *root = w->p;
    if (w->p >= w->end || *w->p != '{') {
        lg_json_error_t je;
        if (lg_json_validate(p, len, NULL, &je) != 0)
            BAD_SYNTAX(what, je.what, je.offset);
        BAD("upstream %s is not a JSON object", what);
    }
    if (walk_object(w, 0, on_root_member) == 0) {
        info->root = (lg_json_span_t){root, (size_t)(w->p - root), LG_JSON_OBJECT};
        ws(w);
        if (w->p != w->end)
            syntax(w, w->p, "trailing data after the value");
    }
    if (w->syntax != NULL)
        BAD_SYNTAX(what, w->syntax, w->syntax_at);
    if (wr.rs.has_error)
        return LG_PT_ERROR_OBJECT;
    if (wr.rs.choices == LG_JSON_NONE && chunk)
        return w->schema_bad ? LG_PT_BAD : LG_PT_OK; /* usage-only or keep-alive style event */
    if (wr.rs.choices != LG_JSON_ARRAY)
        BAD("upstream %s has no choices array", what);
    return w->schema_bad ? LG_PT_BAD : LG_PT_OK;
}

lg_pt_status_t lg_pt_check_reply(const char *body, size_t len, lg_pt_info_t *info, char *err, size_t errlen)
{
    return check_object(body, len, 0, info, err, errlen);
}

lg_pt_status_t lg_pt_check_chunk(const char *data, size_t len, lg_pt_info_t *info, char *err, size_t errlen)
{
    /* SSE data may carry surrounding whitespace; [DONE] is the sentinel */
    const char *p = data, *end = data + len;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        ++p;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        --end;
    if (end - p == 6 && memcmp(p, "[DONE]", 6) == 0) {
        memset(info, 0, sizeof(*info));
        return LG_PT_DONE;
    }
    return check_object(p, (size_t)(end - p), 1, info, err, errlen);
}

/* ---- writing -------------------------------------------------------------------------------------------------------- */

int lg_pt_write_head(const lg_pt_owned_t *own, lg_buf_t *out)
{
    size_t start = out->len;
    if (lg_buf_append(out, "{\"id\":", 6) != 0 || lg_json_write_string(out, own->id, strlen(own->id)) != 0 ||
        lg_buf_append(out, ",\"object\":", 10) != 0 || lg_json_write_string(out, own->object, strlen(own->object)) != 0 ||
        lg_buf_append(out, ",\"created\":", 11) != 0 || lg_json_write_int(out, own->created) != 0 ||
        lg_buf_append(out, ",\"model\":", 9) != 0 || lg_json_write_string(out, own->model, strlen(own->model)) != 0 ||
        lg_buf_append(out, ",\"provider\":", 12) != 0 || lg_json_write_string(out, own->provider, strlen(own->provider)) != 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return -1;
    }
    return 0;
}

/* head (owned members, rendered by lg_pt_write_head) + the upstream members kept + usage */
static int write_with_head(const lg_pt_info_t *info, const char *head, size_t head_len, const char *usage_json, size_t usage_len,
                           int chunk, lg_buf_t *out)
{
    size_t start = out->len;
    if (lg_buf_append(out, head, head_len) != 0)
        goto full;
    /* OpenRouter's schema: a whole reply always has system_fingerprint, null when the upstream sent none */
    if (!chunk && info->fingerprint == LG_JSON_NONE && lg_buf_append(out, ",\"system_fingerprint\":null", 26) != 0)
        goto full;
    if (!info->keep_overflow) {
        /* the members check_object kept, copied as they are */
        int usage_done = usage_json == NULL;
        for (size_t i = 0; i < info->num_keep; ++i) {
            if (info->keep[i].p == NULL) { /* where the upstream had usage */
                if (usage_json != NULL &&
                    (lg_buf_append(out, ",\"usage\":", 9) != 0 || lg_buf_append(out, usage_json, usage_len) != 0))
                    goto full;
                usage_done = 1;
            } else if (lg_buf_append(out, ",", 1) != 0 || lg_buf_append(out, info->keep[i].p, info->keep[i].len) != 0) {
                goto full;
            }
        }
        if (!usage_done && (lg_buf_append(out, ",\"usage\":", 9) != 0 || lg_buf_append(out, usage_json, usage_len) != 0))
            goto full;
        if (lg_buf_append(out, "}", 1) != 0)
            goto full;
        return 0;
    }
    /* more members than ranges: splice the upstream object without the owned members into place after the head */
    const lg_json_edit_t e[] = {
        {LG_JSON_EDIT_REMOVE, KEY("id"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("object"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("created"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("model"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("provider"), NULL, 0},
        {usage_json != NULL ? LG_JSON_EDIT_SET : LG_JSON_EDIT_REMOVE, KEY("usage"), usage_json, usage_len},
        {LG_JSON_EDIT_REMOVE, KEY("system_fingerprint"), NULL, 0}, /* last: only for a chunk's non-string one */
    };
    size_t num_edits =
        sizeof(e) / sizeof(e[0]) - (chunk && info->fingerprint != LG_JSON_NONE && info->fingerprint != LG_JSON_STRING ? 0 : 1);
    size_t body = out->len;
    if (lg_json_splice(out, info->root, e, num_edits) != 0)
        goto full;
    /* the splice wrote "{...}": turn its "{" into "," (or drop it for an empty remainder) */
    if (out->len - body == 2) {
        out->len = body;
        if (lg_buf_append(out, "}", 1) != 0)
            goto full;
    } else {
        out->data[body] = ',';
    }
    return 0;
full:
    out->len = start;
    if (out->data != NULL)
        out->data[start] = '\0';
    return -1;
}

static int write_owned(const lg_pt_info_t *info, const lg_pt_owned_t *own, const char *usage_json, size_t usage_len, int chunk,
                       lg_buf_t *out)
{
    char hb[1024];
    lg_buf_t head = {hb, 0, sizeof(hb), sizeof(hb) - 1}; /* a stack buffer: never grown past its cap */
    if (lg_pt_write_head(own, &head) != 0) {
        /* very long names: a heap head */
        lg_buf_t big;
        lg_buf_init(&big, 1 << 20);
        int rc =
            lg_pt_write_head(own, &big) == 0 ? write_with_head(info, big.data, big.len, usage_json, usage_len, chunk, out) : -1;
        lg_buf_dispose(&big);
        return rc;
    }
    return write_with_head(info, hb, head.len, usage_json, usage_len, chunk, out);
}

int lg_pt_write_reply(const lg_pt_info_t *info, const lg_pt_owned_t *own, const char *usage_json, size_t usage_len, lg_buf_t *out)
{
    return write_owned(info, own, usage_json, usage_len, 0, out);
}

int lg_pt_write_usage_chunk(const lg_pt_info_t *info, const lg_pt_owned_t *own, const char *usage_json, size_t usage_len,
                            lg_buf_t *out)
{
    return write_owned(info, own, usage_json, usage_len, 1, out);
}

int lg_pt_write_chunk_head(const lg_pt_info_t *info, const char *head, size_t head_len, lg_buf_t *out)
{
    size_t start = out->len;
    if (lg_buf_append(out, "data: ", 6) != 0 || write_with_head(info, head, head_len, NULL, 0, 1, out) != 0 ||
        lg_buf_append(out, "\n\n", 2) != 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return -1;
    }
    return 0;
}

int lg_pt_write_chunk(const lg_pt_info_t *info, const lg_pt_owned_t *own, lg_buf_t *out)
{
    size_t start = out->len;
    if (lg_buf_append(out, "data: ", 6) != 0 || write_owned(info, own, NULL, 0, 1, out) != 0 ||
        lg_buf_append(out, "\n\n", 2) != 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return -1;
    }
    return 0;
}
