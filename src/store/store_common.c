/* SPDX-License-Identifier: MIT */
/*
 * Helpers every store backend shares (store_backend.h): error text, JSON
 * values from stored strings, ISO timestamps, string lists as JSON text and
 * the usage aggregate object.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/util.h"
#include "store/store_backend.h"

#define PICO_PER_USD 1e12

void lg__store_set_err(lg_store_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
}

json_t *lg__store_jstr(const char *s)
{
    json_t *j;
    if (s == NULL)
        return json_null();
    if ((j = json_string(s)) != NULL)
        return j;
    /* a cut user agent may end inside a UTF-8 sequence: show it rather than fail the whole answer */
    char *copy = lg_strdup(s);
    for (char *p = copy; *p != '\0'; ++p)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j != NULL ? j : json_null();
}

json_t *lg__store_usd(int64_t pico)
{
    return json_real((double)pico / PICO_PER_USD);
}

void lg__store_iso8601(int64_t ms, char out[32])
{
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms - sec * 1000));
}

char *lg__store_strv_to_json(char *const *v)
{
    json_t *a;
    char *text;
    if (v == NULL)
        return NULL;
    a = json_array();
    for (; *v != NULL; ++v)
        json_array_append_new(a, lg__store_jstr(*v));
    text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

char **lg__store_strv_from_json(const char *text)
{
    json_t *a, *e;
    size_t i, n = 0;
    char **v;
    if (text == NULL || (a = json_loads(text, 0, NULL)) == NULL)
        return NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        return NULL;
    }
    v = lg_malloc((json_array_size(a) + 1) * sizeof(*v));
    json_array_foreach(a, i, e)
    {
        if (json_is_string(e))
            v[n++] = lg_strdup(json_string_value(e));
    }
    v[n] = NULL;
    json_decref(a);
    return v;
}

json_t *lg__store_usage_row(const int64_t v[LG_STORE_USAGE_NFIELDS])
{
    static const char *const fields[LG_STORE_USAGE_NFIELDS] = {
        "requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost_pico"};
    json_t *o = json_object();
    for (int i = 0; i < LG_STORE_USAGE_NFIELDS; ++i)
        json_object_set_new(o, fields[i], json_integer(v[i]));
    json_object_set_new(o, "cost", lg__store_usd(v[LG_STORE_USAGE_NFIELDS - 1]));
    return o;
}

json_t *lg__store_recent_row(const char *id, const char *created_at, int64_t created_ms, json_t *key_id, json_t *key_name,
                             json_t *requested_model, json_t *model, json_t *provider, json_t *api, int status,
                             const char *attempts_json, double latency_ms, json_t *ttft_ms, int64_t prompt_tokens,
                             int64_t completion_tokens, int64_t cost_pico, int streamed, int cancelled, json_t *finish_reason)
{
    /* only the number of attempts: the trail itself is in the generation view */
    size_t attempts = 0;
    if (attempts_json != NULL) {
        json_t *a = json_loads(attempts_json, 0, NULL);
        attempts = json_is_array(a) ? json_array_size(a) : 0;
        json_decref(a);
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id != NULL ? id : ""));
    json_object_set_new(o, "created_at", json_string(created_at));
    json_object_set_new(o, "created_at_ms", json_integer(created_ms));
    json_object_set_new(o, "key_id", key_id);
    json_object_set_new(o, "key_name", key_name);
    json_object_set_new(o, "requested_model", requested_model);
    json_object_set_new(o, "model", model);
    json_object_set_new(o, "provider", provider);
    json_object_set_new(o, "api", api);
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "attempts", json_integer((json_int_t)attempts));
    json_object_set_new(o, "latency_ms", json_real(latency_ms));
    json_object_set_new(o, "ttft_ms", ttft_ms);
    json_object_set_new(o, "prompt_tokens", json_integer(prompt_tokens));
    json_object_set_new(o, "completion_tokens", json_integer(completion_tokens));
    json_object_set_new(o, "cost", lg__store_usd(cost_pico));
    json_object_set_new(o, "cost_pico", json_integer(cost_pico));
    json_object_set_new(o, "streamed", json_boolean(streamed));
    json_object_set_new(o, "cancelled", json_boolean(cancelled));
    json_object_set_new(o, "finish_reason", finish_reason);
    return o;
}
