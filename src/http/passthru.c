/* SPDX-License-Identifier: MIT */
/*
 * OpenAI wire pass-through (see passthru.h). Every function works on spans
 * into the bytes it was given and writes into a bounded lg_buf_t; nothing
 * builds a JSON tree.
 */
#include <stdio.h>
#include <string.h>
#include "http/passthru.h"
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
    }
    if (cd.type == LG_JSON_OBJECT)
        o->u.reasoning_tokens = count(cd, "reasoning_tokens", NULL);
    if (!o->has_total) {
        const int64_t cap = (int64_t)1 << 52;
        o->total_tokens =
            (o->u.prompt_tokens > cap ? cap : o->u.prompt_tokens) + (o->u.completion_tokens > cap ? cap : o->u.completion_tokens);
    }
}

int lg_pt_write_usage(lg_json_span_t usage, const lg_pt_usage_t *f, int64_t cost_pico, lg_buf_t *out)
{
    char nums[3][24], cost[40];
    int64_t vals[3] = {f->u.prompt_tokens, f->u.completion_tokens, f->total_tokens};
    size_t lens[3];
    for (int i = 0; i < 3; ++i)
        lens[i] = (size_t)snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)vals[i]);
    /* the same value lg_cost_json gives jansson (a real in USD), printed as jansson prints it with 15 digits */
    size_t clen = (size_t)snprintf(cost, sizeof(cost), "%.15g", (double)cost_pico / 1e12);
    if (memchr(cost, '.', clen) == NULL && memchr(cost, 'e', clen) == NULL && clen + 2 < sizeof(cost)) {
        memcpy(cost + clen, ".0", 3); /* a real stays a real for strict clients */
        clen += 2;
    }
    const lg_json_edit_t e[] = {
        {LG_JSON_EDIT_SET, KEY("prompt_tokens"), nums[0], lens[0]},
        {LG_JSON_EDIT_SET, KEY("completion_tokens"), nums[1], lens[1]},
        {LG_JSON_EDIT_SET, KEY("total_tokens"), nums[2], lens[2]},
        {LG_JSON_EDIT_SET, KEY("cost"), cost, clen},
        {LG_JSON_EDIT_SET, KEY("is_byok"), KEY("false")},
        {LG_JSON_EDIT_SET, KEY("cost_details"), KEY("{\"upstream_inference_cost\":null}")},
    };
    static const lg_json_span_t empty = {"{}", 2, LG_JSON_OBJECT};
    return lg_json_splice(out, usage.type == LG_JSON_OBJECT ? usage : empty, e, sizeof(e) / sizeof(e[0]));
}

/* ---- checking replies and chunks ------------------------------------------------------------------------------------ */

#define BAD(...)                                                                                                                   \
    do {                                                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                                                        \
        return LG_PT_BAD;                                                                                                          \
    } while (0)

/* One choice: message/delta, its content and tool calls, finish_reason, legacy text. */
static lg_pt_status_t check_choice(lg_json_span_t c, size_t i, int chunk, lg_pt_info_t *info, char *err, size_t errlen)
{
    const char *mname = chunk ? "delta" : "message";
    if (c.type != LG_JSON_OBJECT)
        BAD("choices[%zu]: expected object", i);
    lg_json_iter_t it;
    lg_json_span_t k, v;
    lg_json_iter_init(&it, c);
    while (lg_json_iter_member(&it, &k, &v)) {
        if (lg_json_key_eq(k, KEY("finish_reason"))) {
            if (v.type == LG_JSON_STRING) {
                lg_json_unescape(v, info->finish_reason, sizeof(info->finish_reason), NULL);
                info->has_content = 1;
            } else if (v.type != LG_JSON_NULL) {
                BAD("choices[%zu].finish_reason: expected string or null", i);
            }
        } else if (lg_json_key_eq(k, KEY("text"))) {
            if (v.type == LG_JSON_STRING) {
                size_t n = lg_json_str_len(v);
                info->content_chars += (int64_t)n;
                info->has_content |= n != 0;
            } else if (v.type != LG_JSON_NULL) {
                BAD("choices[%zu].text: expected string", i);
            }
        } else if (lg_json_key_eq(k, KEY("index"))) {
            if (v.type != LG_JSON_NUMBER || !lg_json_is_integer(v))
                BAD("choices[%zu].index: expected integer", i);
        } else if (lg_json_key_eq(k, mname, strlen(mname))) {
            if (v.type == LG_JSON_NULL)
                continue;
            if (v.type != LG_JSON_OBJECT)
                BAD("choices[%zu].%s: expected object", i, mname);
            lg_json_iter_t mi;
            lg_json_span_t mk, mv;
            lg_json_iter_init(&mi, v);
            while (lg_json_iter_member(&mi, &mk, &mv)) {
                if (lg_json_key_eq(mk, KEY("content"))) {
                    if (mv.type == LG_JSON_STRING) {
                        size_t n = lg_json_str_len(mv);
                        info->content_chars += (int64_t)n;
                        info->has_content |= n != 0;
                    } else if (mv.type == LG_JSON_ARRAY) {
                        info->has_content |= lg_json_count(mv) != 0;
                    } else if (mv.type != LG_JSON_NULL) {
                        BAD("choices[%zu].%s.content: expected string, array or null", i, mname);
                    }
                } else if (lg_json_key_eq(mk, KEY("tool_calls"))) {
                    if (mv.type == LG_JSON_ARRAY)
                        info->has_content |= lg_json_count(mv) != 0;
                    else if (mv.type != LG_JSON_NULL)
                        BAD("choices[%zu].%s.tool_calls: expected array or null", i, mname);
                } else if (lg_json_key_eq(mk, KEY("role"))) {
                    if (mv.type != LG_JSON_STRING && mv.type != LG_JSON_NULL)
                        BAD("choices[%zu].%s.role: expected string", i, mname);
                } else if (mv.type != LG_JSON_NULL && !(mv.type == LG_JSON_STRING && mv.len == 2)) {
                    /* reasoning, refusal, audio, function_call …: anything non-empty is content for the commit point */
                    info->has_content = 1;
                }
            }
        }
    }
    return LG_PT_OK;
}

static lg_pt_status_t check_object(const char *p, size_t len, int chunk, lg_pt_info_t *info, char *err, size_t errlen)
{
    lg_json_error_t je;
    memset(info, 0, sizeof(*info));
    if (lg_json_validate(p, len, &info->root, &je) != 0)
        BAD("upstream %s is not valid JSON: %s at byte %zu", chunk ? "event" : "response", je.what, je.offset);
    if (info->root.type != LG_JSON_OBJECT)
        BAD("upstream %s is not a JSON object", chunk ? "event" : "response");
    lg_json_iter_t it;
    lg_json_span_t k, v, choices = {0};
    int has_error = 0;
    lg_json_iter_init(&it, info->root);
    while (lg_json_iter_member(&it, &k, &v)) {
        if (lg_json_key_eq(k, KEY("choices")))
            choices = v;
        else if (lg_json_key_eq(k, KEY("usage")))
            info->usage = v.type == LG_JSON_OBJECT ? v : (lg_json_span_t){0};
        else if (lg_json_key_eq(k, KEY("error")))
            has_error = v.type != LG_JSON_NULL;
    }
    if (has_error)
        return LG_PT_ERROR_OBJECT;
    if (choices.type == LG_JSON_NONE && chunk)
        return LG_PT_OK; /* usage-only or keep-alive style event */
    if (choices.type != LG_JSON_ARRAY)
        BAD("upstream %s has no choices array", chunk ? "event" : "response");
    lg_json_iter_init(&it, choices);
    size_t i = 0;
    while (lg_json_iter_element(&it, &v)) {
        lg_pt_status_t st = check_choice(v, i++, chunk, info, err, errlen);
        if (st != LG_PT_OK)
            return st;
    }
    info->num_choices = i;
    return LG_PT_OK;
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

static int write_owned(const lg_pt_info_t *info, const lg_pt_owned_t *own, const char *usage_json, size_t usage_len, int chunk,
                       lg_buf_t *out)
{
    /* owned members go first, as the tree path wrote them: SET on an absent key appends, so build the head by hand */
    size_t start = out->len;
    if (lg_buf_append(out, "{\"id\":", 6) != 0 || lg_json_write_string(out, own->id, strlen(own->id)) != 0 ||
        lg_buf_append(out, ",\"object\":", 10) != 0 || lg_json_write_string(out, own->object, strlen(own->object)) != 0 ||
        lg_buf_append(out, ",\"created\":", 11) != 0 || lg_json_write_int(out, own->created) != 0 ||
        lg_buf_append(out, ",\"model\":", 9) != 0 || lg_json_write_string(out, own->model, strlen(own->model)) != 0 ||
        lg_buf_append(out, ",\"provider\":", 12) != 0 || lg_json_write_string(out, own->provider, strlen(own->provider)) != 0)
        goto full;
    /* OpenRouter's schema: a reply always has system_fingerprint (null when the upstream sent none); a chunk has it only
     * as a string (its SDK rejects a null there) */
    lg_json_span_t fp;
    int has_fp = lg_json_find(info->root, KEY("system_fingerprint"), &fp);
    int whole = !chunk;
    if (whole && !has_fp && lg_buf_append(out, ",\"system_fingerprint\":null", 26) != 0)
        goto full;
    /* the rest of the upstream object without the owned members: splice it into place after the head */
    const lg_json_edit_t e[] = {
        {LG_JSON_EDIT_REMOVE, KEY("id"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("object"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("created"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("model"), NULL, 0},
        {LG_JSON_EDIT_REMOVE, KEY("provider"), NULL, 0},
        {usage_json != NULL ? LG_JSON_EDIT_SET : LG_JSON_EDIT_REMOVE, KEY("usage"), usage_json, usage_len},
        {LG_JSON_EDIT_REMOVE, KEY("system_fingerprint"), NULL, 0}, /* last: only applied to a chunk's non-string one */
    };
    size_t num_edits = sizeof(e) / sizeof(e[0]) - (!whole && has_fp && fp.type != LG_JSON_STRING ? 0 : 1);
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

int lg_pt_write_reply(const lg_pt_info_t *info, const lg_pt_owned_t *own, const char *usage_json, size_t usage_len, lg_buf_t *out)
{
    return write_owned(info, own, usage_json, usage_len, 0, out);
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
