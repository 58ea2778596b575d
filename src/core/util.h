/* SPDX-License-Identifier: MIT */
/*
 * Small shared helpers: clocks, per-thread random numbers and ids, bounded
 * growable byte buffers.
 */
#ifndef LG_CORE_UTIL_H
#define LG_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t lg_now_ms(void);
/** Monotonic microseconds. */
int64_t lg_now_us(void);
int64_t lg_unix_time(void);
/** Wall-clock milliseconds since the Unix epoch (timestamps, rate-limit reset times; not for measuring durations). */
int64_t lg_unix_ms(void);
/** Per-thread xorshift PRNG seeded from getrandom(); not for secrets. */
uint64_t lg_random_u64(void);
/** Write "<prefix><n random [A-Za-z0-9]>" NUL-terminated into out (size >= strlen(prefix)+n+1). */
void lg_random_id(char *out, const char *prefix, size_t n);
/** Allocate or abort (the host aborts on out-of-memory; a zero size still returns a unique pointer). */
void *lg_malloc(size_t n);
/** Zeroed array of n elements of sz bytes, or abort (also on n * sz overflow). */
void *lg_calloc(size_t n, size_t sz);
void *lg_realloc(void *p, size_t n);
char *lg_strdup(const char *s);
/** Deep copy of a NULL-terminated string vector (allocation aborts); NULL stays NULL. */
char **lg_strv_dup(char *const *v);
/** Free a NULL-terminated string vector and its strings; NULL is a no-op. */
void lg_strv_free(char **v);

/**
 * Directory of the running executable (from /proc/self/exe, last component cut; "" when the binary is in /), where the
 * build tree and relocatable installs keep plugins/ and policies/. Returns 0, or -1 (out untouched) if it cannot be
 * read or does not fit in outlen.
 */
int lg_exe_dir(char *out, size_t outlen);

/** Growable byte buffer with a hard cap. */
typedef struct lg_buf {
    char *data;
    size_t len, cap, max;
} lg_buf_t;

void lg_buf_init(lg_buf_t *b, size_t max);
/** Append; returns 0, or -1 if the cap would be exceeded (nothing appended). */
int lg_buf_append(lg_buf_t *b, const void *p, size_t n);
void lg_buf_reset(lg_buf_t *b);
void lg_buf_dispose(lg_buf_t *b);

#endif
