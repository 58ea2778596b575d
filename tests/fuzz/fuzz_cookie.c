/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the Cookie header parser and the session id / CSRF token
 * checks the dashboard runs on what it finds (any bytes, any length).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "auth/admin_session.h"
#include "http/cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *h = (const char *)data;
    size_t vlen = 0;
    const char *v = lg_cookie_find(h, size, LG_ADMIN_SESSION_COOKIE, &vlen);
    if (v != NULL) {
        assert(v >= h && v + vlen <= h + size);
        (void)lg_admin_session_check(v, vlen, "fuzz-admin-key", 1700000000000, NULL, NULL);
        (void)lg_admin_csrf_ok(v, vlen, h, size);
        lg_admin_session_destroy(v, vlen);
    }
    (void)lg_cookie_find(h, size, "a", &vlen);
    return 0;
}
