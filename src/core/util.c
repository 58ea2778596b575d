/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers: clocks, random ids, bounded buffers, allocation that aborts,
 * NULL-terminated string vectors.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "core/util.h"

int64_t lg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t lg_unix_time(void)
{
    return (int64_t)time(NULL);
}

int64_t lg_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static _Thread_local uint64_t rng_state;

uint64_t lg_random_u64(void)
{
    if (rng_state == 0) {
        if (getrandom(&rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state) || rng_state == 0)
            rng_state = (uint64_t)lg_now_us() * 0x9E3779B97F4A7C15ull | 1;
    }
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

void lg_random_id(char *out, const char *prefix, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < n; ++i)
        out[plen + i] = alphabet[lg_random_u64() % (sizeof(alphabet) - 1)];
    out[plen + n] = '\0';
}

void *lg_malloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "llmgate: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

int lg_exe_dir(char *out, size_t outlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL || (size_t)(slash - exe) >= outlen)
        return -1;
    *slash = '\0';
    memcpy(out, exe, (size_t)(slash - exe) + 1);
    return 0;
}

void *lg_calloc(size_t n, size_t sz)
{
    void *p = calloc(n != 0 ? n : 1, sz != 0 ? sz : 1);
    if (p == NULL) {
        fprintf(stderr, "llmgate: out of memory allocating %zu x %zu bytes\n", n, sz);
        abort();
    }
    return p;
}

void *lg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n != 0 ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "llmgate: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return q;
}

char *lg_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(lg_malloc(n), s, n);
}

char **lg_strv_dup(char *const *v)
{
    size_t n = 0;
    char **out;
    if (v == NULL)
        return NULL;
    while (v[n] != NULL)
        ++n;
    out = lg_malloc((n + 1) * sizeof(*out));
    for (size_t i = 0; i < n; ++i)
        out[i] = lg_strdup(v[i]);
    out[n] = NULL;
    return out;
}

void lg_strv_free(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p != NULL; ++p)
        free(*p);
    free(v);
}

void lg_buf_init(lg_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

int lg_buf_append(lg_buf_t *b, const void *p, size_t n)
{
    if (n > b->max - b->len)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = lg_realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0'; /* keep it usable as a C string for parsers */
    return 0;
}

void lg_buf_reset(lg_buf_t *b)
{
    b->len = 0;
}

void lg_buf_dispose(lg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
