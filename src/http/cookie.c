/* SPDX-License-Identifier: MIT */
/*
 * Cookie header parsing (see cookie.h).
 */
#include <string.h>
#include "http/cookie.h"

const char *lg_cookie_find(const char *header, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = header, *end = header + len;
    if (nl == 0 || header == NULL)
        return NULL;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
            ++p;
        const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi != NULL ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq != NULL) {
            const char *n_end = eq;
            while (n_end > p && (n_end[-1] == ' ' || n_end[-1] == '\t'))
                --n_end;
            if ((size_t)(n_end - p) == nl && memcmp(p, name, nl) == 0) {
                const char *v = eq + 1, *v_end = stop;
                while (v < v_end && (*v == ' ' || *v == '\t'))
                    ++v;
                while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
                    --v_end;
                if (v_end - v >= 2 && *v == '"' && v_end[-1] == '"')
                    ++v, --v_end;
                *vlen = (size_t)(v_end - v);
                return v;
            }
        }
        p = stop;
    }
    return NULL;
}
