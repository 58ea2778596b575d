/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the cluster.redis URL parser: any byte string (also with
 * NULs and no terminator) goes through lg_redis_url_parse; an accepted URL
 * must have a NUL-terminated host, a port in range and a reason-free result,
 * a refused one a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_redis_url_t u;
    const char *why = NULL;
    /* an exact-size heap copy: ASan catches any read past the end */
    char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    if (lg_redis_url_parse(copy, size, &u, &why) == 0) {
        if (memchr(u.host, '\0', sizeof(u.host)) == NULL || u.host[0] == '\0' || u.port < 1 || u.port > 65535 || u.db < 0 ||
            memchr(u.password, '\0', sizeof(u.password)) == NULL || memchr(u.user, '\0', sizeof(u.user)) == NULL)
            abort();
    } else if (why == NULL || why[0] == '\0') {
        abort();
    }
    free(copy);
    return 0;
}
