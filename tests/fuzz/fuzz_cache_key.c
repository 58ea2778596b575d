/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the response cache's byte parsers — the X-OpenRouter-Cache-TTL
 * value (any bytes: the result is always in 1..86400 when accepted) and the
 * whitespace normaliser behind the key (never longer than its input, stable
 * idempotent, and the key of the input equals the key of its
 * normalised form).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pipeline/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* checked in every build type (assert is compiled out with NDEBUG) */
static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    uint32_t ttl = 0;
    if (lg_rcache_parse_ttl(s, size, &ttl))
        check(ttl >= 1 && ttl <= LG_RCACHE_TTL_MAX);
    char *once = malloc(size + 1);
    char *twice = malloc(size + 1);
    if (once == NULL || twice == NULL) {
        free(once);
        free(twice);
        return 0;
    }
    size_t n1 = lg_rcache_normalise(s, size, once, size + 1);
    check(n1 <= size);
    size_t n2 = lg_rcache_normalise(once, n1, twice, size + 1);
    /* whitespace outside strings never changes the string state, so a second pass finds nothing to remove */
    check(n2 == n1 && memcmp(once, twice, n1) == 0);
    uint8_t a[LG_RCACHE_KEY_LEN], b[LG_RCACHE_KEY_LEN];
    if (lg_rcache_key("k", "m", "chat", 0, s, size, a) == 0 && lg_rcache_key("k", "m", "chat", 0, once, n1, b) == 0)
        check(memcmp(a, b, sizeof(a)) == 0);
    free(once);
    free(twice);
    return 0;
}
