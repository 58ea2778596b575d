/* SPDX-License-Identifier: MIT */
/*
 * Reading one cookie out of a Cookie request header (RFC 6265 §5.4 form:
 * "a=1; b=2"), without allocating. Pure function, fuzzed by
 * tests/fuzz/fuzz_cookie.c.
 */
#ifndef LG_HTTP_COOKIE_H
#define LG_HTTP_COOKIE_H

#include <stddef.h>

/**
 * The value of cookie name in header[0..len), or NULL when absent. *vlen receives its length (surrounding spaces and
 * a pair of double quotes removed). The first occurrence wins. name must not be empty.
 */
const char *lg_cookie_find(const char *header, size_t len, const char *name, size_t *vlen);

#endif
