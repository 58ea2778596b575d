/* SPDX-License-Identifier: MIT */
/*
 * The host function table handed to every provider plugin (static storage,
 * valid for the whole process): allocator that aborts on OOM, logging into
 * the process log tagged "plugin/<name>", clocks and a per-thread PRNG.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "core/util.h"
#include "plugin/loader.h"

static void oom_abort(size_t size)
{
    lg_log_write(LG_LOG_ERR, "plugin", "out of memory allocating %zu bytes", size);
    abort();
}

static void *host_alloc(size_t size)
{
    void *p = malloc(size != 0 ? size : 1);
    if (p == NULL)
        oom_abort(size);
    return p;
}

static void *host_realloc(void *p, size_t size)
{
    void *q = realloc(p, size != 0 ? size : 1);
    if (q == NULL)
        oom_abort(size);
    return q;
}

static void host_free(void *p)
{
    free(p);
}

static void host_log(int level, const char *plugin_name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void host_log(int level, const char *plugin_name, const char *fmt, ...)
{
    char module[80];
    va_list ap;
    if (level < LG_LOG_ERR)
        level = LG_LOG_ERR;
    if (level > lg_log_level || fmt == NULL)
        return;
    snprintf(module, sizeof(module), "plugin/%s", plugin_name != NULL && *plugin_name != '\0' ? plugin_name : "?");
    va_start(ap, fmt);
    lg_log_vwrite(level, module, fmt, ap);
    va_end(ap);
}

static const lg_host_api_t host_api = {
    .struct_size = sizeof(lg_host_api_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .alloc = host_alloc,
    .realloc_mem = host_realloc,
    .free_mem = host_free,
    .log = host_log,
    .now_ms = lg_now_ms, /* monotonic */
    .unix_time = lg_unix_time,
    .random_u64 = lg_random_u64, /* per-thread xorshift64*, not for secrets */
};

const lg_host_api_t *lg_plugin_host_api(void)
{
    return &host_api;
}
