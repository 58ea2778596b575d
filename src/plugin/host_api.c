/* SPDX-License-Identifier: MIT */
/*
 * The host function table handed to every provider plugin (static storage,
 * valid for the whole process): allocator that aborts on OOM, logging into
 * the process log tagged "plugin/<name>", clocks and a per-thread PRNG.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
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

static int64_t host_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t host_unix_time(void)
{
    return (int64_t)time(NULL);
}

static _Thread_local uint64_t rng_state;

/* xorshift64*: fast, per thread, no locking; seeded lazily from the clock and the thread identity. Not for secrets. */
static uint64_t host_random_u64(void)
{
    uint64_t x = rng_state;
    if (x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ (uint64_t)(uintptr_t)pthread_self() ^
            (uint64_t)(uintptr_t)&rng_state;
        /* splitmix64 finaliser so close seeds give unrelated streams */
        x += 0x9E3779B97F4A7C15ull;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        x ^= x >> 31;
        if (x == 0)
            x = 0x2545F4914F6CDD1Dull;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static const lg_host_api_t host_api = {
    .struct_size = sizeof(lg_host_api_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR,
    .alloc = host_alloc,
    .realloc_mem = host_realloc,
    .free_mem = host_free,
    .log = host_log,
    .now_ms = host_now_ms,
    .unix_time = host_unix_time,
    .random_u64 = host_random_u64,
};

const lg_host_api_t *lg_plugin_host_api(void)
{
    return &host_api;
}
