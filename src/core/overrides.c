/* SPDX-License-Identifier: MIT */
/*
 * Operator overrides (see overrides.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/overrides.h"

int lg_overrides_parse_listen(const char *s, char *addr, size_t addrlen, unsigned *port)
{
    const char *colon;
    size_t alen;
    if (s[0] == '[') { /* [v6]:port */
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        alen = (size_t)(close - s - 1);
        if (alen == 0 || alen >= addrlen)
            return -1;
        memcpy(addr, s + 1, alen);
        addr[alen] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL) /* bare v6 without brackets is ambiguous */
            return -1;
        alen = (size_t)(colon - s);
        if (alen >= addrlen)
            return -1;
        if (alen == 0) {
            snprintf(addr, addrlen, "0.0.0.0");
        } else {
            memcpy(addr, s, alen);
            addr[alen] = '\0';
        }
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
        return -1;
    *port = (unsigned)p;
    return 0;
}

static int add_listen(json_t *arr, const char *spec, const char *origin, char *err, size_t errlen)
{
    char addr[64];
    unsigned port;
    if (lg_overrides_parse_listen(spec, addr, sizeof(addr), &port) != 0) {
        snprintf(err, errlen, "%s '%s': expected HOST:PORT (e.g. 127.0.0.1:4000, [::1]:4000, :4000)", origin, spec);
        return -1;
    }
    json_array_append_new(arr, json_pack("{s:s,s:i}", "address", addr, "port", (int)port));
    return 0;
}

static int set_workers(json_t *patch, const char *v, const char *origin, char *err, size_t errlen)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0 || n > 256) {
        snprintf(err, errlen, "%s '%s': expected a number of worker threads, 0 (one per CPU) to 256", origin, v);
        return -1;
    }
    json_object_set_new(patch, "workers", json_integer(n));
    return 0;
}

static int set_level(json_t *patch, const char *v, const char *origin, char *err, size_t errlen)
{
    static const char *const levels[] = {"err", "error", "warn", "info", "debug"};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); ++i) {
        if (strcmp(v, levels[i]) == 0) {
            json_object_set_new(patch, "log_level", json_string(i == 1 ? "err" : v));
            return 0;
        }
    }
    snprintf(err, errlen, "%s '%s': expected err, warn, info or debug", origin, v);
    return -1;
}

json_t *lg_overrides_patch(const lg_overrides_t *o, char *err, size_t errlen)
{
    json_t *patch = json_object();
    const char *v;
    if ((v = getenv("LLMGATE_LISTEN")) != NULL && *v != '\0' && o->num_listen == 0) {
        json_t *arr = json_array();
        char *copy = strdup(v), *save = NULL;
        for (char *tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
            if (json_array_size(arr) >= LG_OVERRIDES_MAX_LISTEN || add_listen(arr, tok, "LLMGATE_LISTEN", err, errlen) != 0) {
                if (json_array_size(arr) >= LG_OVERRIDES_MAX_LISTEN)
                    snprintf(err, errlen, "LLMGATE_LISTEN: at most %d listeners", LG_OVERRIDES_MAX_LISTEN);
                free(copy);
                json_decref(arr);
                json_decref(patch);
                return NULL;
            }
        }
        free(copy);
        json_object_set_new(patch, "listeners", arr);
    }
    if ((v = getenv("LLMGATE_WORKERS")) != NULL && *v != '\0' && o->workers == NULL &&
        set_workers(patch, v, "LLMGATE_WORKERS", err, errlen) != 0)
        goto fail;
    if ((v = getenv("LLMGATE_LOG_LEVEL")) != NULL && *v != '\0' && o->log_level == NULL &&
        set_level(patch, v, "LLMGATE_LOG_LEVEL", err, errlen) != 0)
        goto fail;
    if (o->num_listen != 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < o->num_listen; ++i) {
            if (add_listen(arr, o->listen[i], "--listen", err, errlen) != 0) {
                json_decref(arr);
                goto fail;
            }
        }
        json_object_set_new(patch, "listeners", arr);
    }
    if (o->workers != NULL && set_workers(patch, o->workers, "--workers", err, errlen) != 0)
        goto fail;
    if (o->log_level != NULL && set_level(patch, o->log_level, "--log-level", err, errlen) != 0)
        goto fail;
    return patch;
fail:
    json_decref(patch);
    return NULL;
}
