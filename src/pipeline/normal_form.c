/* SPDX-License-Identifier: MIT */
/*
 * Normal-form checks: what a plugin hands the host must have the types the
 * client's SDK relies on. A number where text belongs, a null choice or a
 * numeric finish_reason would crash or silently corrupt a client; treating it
 * as an upstream failure lets the gateway fall over (before the commit point)
 * or end the stream with an error chunk (after it).
 */
#include <stdio.h>
#include <string.h>
#include "llmgate/error.h"
#include "pipeline/normal_form.h"

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static int bad(char *why, size_t whylen, const char *path, size_t i, const char *member, const char *want, const json_t *v)
{
    snprintf(why, whylen, "%s[%zu]%s: expected %s, got %s", path, i, member, want, type_name(v));
    return LG_EBADRESPONSE;
}

/* NULL (absent) and JSON null are both fine for optional text */
static int text_ok(const json_t *v)
{
    return v == NULL || json_is_null(v) || json_is_string(v);
}

static int check_choice_common(const json_t *c, size_t i, const char *path, char *why, size_t whylen, const char **finish)
{
    const json_t *idx = json_object_get(c, "index");
    if (idx != NULL && !json_is_integer(idx))
        return bad(why, whylen, path, i, ".index", "integer", idx);
    const json_t *fr = json_object_get(c, "finish_reason");
    if (!text_ok(fr))
        return bad(why, whylen, path, i, ".finish_reason", "string or null", fr);
    if (json_is_string(fr) && finish != NULL)
        *finish = json_string_value(fr);
    return 0;
}

static int check_message(const json_t *m, size_t i, const char *path, const char *name, char *why, size_t whylen, int64_t *chars,
                         int *content)
{
    static const char *const text_members[] = {"content", "role", "refusal", "reasoning"};
    char member[32];
    if (!json_is_object(m)) {
        snprintf(member, sizeof(member), ".%s", name);
        return bad(why, whylen, path, i, member, "object", m);
    }
    for (size_t k = 0; k < sizeof(text_members) / sizeof(text_members[0]); ++k) {
        const json_t *v = json_object_get(m, text_members[k]);
        if (!text_ok(v)) {
            snprintf(member, sizeof(member), ".%s.%s", name, text_members[k]);
            return bad(why, whylen, path, i, member, "string or null", v);
        }
    }
    const json_t *tc = json_object_get(m, "tool_calls");
    if (tc != NULL && !json_is_null(tc) && !json_is_array(tc)) {
        snprintf(member, sizeof(member), ".%s.tool_calls", name);
        return bad(why, whylen, path, i, member, "array", tc);
    }
    const json_t *text = json_object_get(m, "content");
    if (json_is_string(text))
        *chars += (int64_t)json_string_length(text);
    /* content = any member beyond the role that carries something */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        if (strcmp(k, "role") == 0 || json_is_null(v))
            continue;
        if (json_is_string(v) && json_string_length(v) == 0)
            continue;
        *content = 1;
    }
    return 0;
}

int lg_chunk_check(lg_api_kind_t kind, const json_t *chunk, lg_chunk_facts_t *facts, char *why, size_t whylen)
{
    memset(facts, 0, sizeof(*facts));
    const json_t *choices = json_object_get(chunk, "choices");
    if (!json_is_object(chunk) || !json_is_array(choices)) {
        snprintf(why, whylen, "stream chunk without a choices array");
        return LG_EBADRESPONSE;
    }
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c)
    {
        if (!json_is_object(c))
            return bad(why, whylen, "choices", i, "", "object", c);
        int rc = check_choice_common(c, i, "choices", why, whylen, &facts->finish);
        if (rc != 0)
            return rc;
        if (json_is_string(json_object_get(c, "finish_reason")))
            facts->has_content = 1;
        if (kind == LG_API_COMPLETIONS) {
            const json_t *text = json_object_get(c, "text");
            if (!text_ok(text))
                return bad(why, whylen, "choices", i, ".text", "string or null", text);
            if (json_is_string(text) && json_string_length(text) != 0) {
                facts->has_content = 1;
                facts->text_chars += (int64_t)json_string_length(text);
            }
            continue;
        }
        const json_t *d = json_object_get(c, "delta");
        if (d == NULL) {
            /* a completions-style choice in a chat stream (some upstreams): text, checked the same way */
            const json_t *text = json_object_get(c, "text");
            if (!text_ok(text))
                return bad(why, whylen, "choices", i, ".text", "string or null", text);
            if (json_is_string(text) && json_string_length(text) != 0)
                facts->has_content = 1, facts->text_chars += (int64_t)json_string_length(text);
            continue;
        }
        rc = check_message(d, i, "choices", "delta", why, whylen, &facts->text_chars, &facts->has_content);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int lg_response_check(lg_api_kind_t kind, const json_t *resp, char *why, size_t whylen)
{
    if (!json_is_object(resp)) {
        snprintf(why, whylen, "response is not a JSON object");
        return LG_EBADRESPONSE;
    }
    if (kind == LG_API_EMBEDDINGS) {
        if (!json_is_array(json_object_get(resp, "data"))) {
            snprintf(why, whylen, "embeddings response without a data array");
            return LG_EBADRESPONSE;
        }
        return 0;
    }
    const json_t *choices = json_object_get(resp, "choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        snprintf(why, whylen, "response without choices");
        return LG_EBADRESPONSE;
    }
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c)
    {
        if (!json_is_object(c))
            return bad(why, whylen, "choices", i, "", "object", c);
        int rc = check_choice_common(c, i, "choices", why, whylen, NULL);
        if (rc != 0)
            return rc;
        int64_t chars = 0;
        int content = 0;
        if (kind == LG_API_COMPLETIONS || json_object_get(c, "message") == NULL) {
            const json_t *text = json_object_get(c, "text");
            if (!text_ok(text))
                return bad(why, whylen, "choices", i, ".text", "string or null", text);
            continue;
        }
        rc = check_message(json_object_get(c, "message"), i, "choices", "message", why, whylen, &chars, &content);
        if (rc != 0)
            return rc;
    }
    return 0;
}
