/* SPDX-License-Identifier: MIT */
/*
 * Redis URL parser (see redis_url.h).
 */
#include <string.h>
#include "core/redis_url.h"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode s[0..n) into out (cap bytes incl. NUL). -1 on a bad escape, a NUL or control byte, or overflow. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; ++i) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1; /* needs two hex digits after the '%' */
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
    long v = 0;
    if (n == 0 || n > 7)
        return -1;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int lg_redis_url_parse(const char *url, size_t len, lg_redis_url_t *out, const char **why)
{
    static const char scheme[] = "redis://";
    const char *p, *end = url + len, *at, *hostend, *slash;
    long v;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (len > LG_REDIS_URL_MAX) {
        *why = "URL too long";
        return -1;
    }
    if (memchr(url, '\0', len) != NULL) {
        *why = "URL contains a NUL byte";
        return -1;
    }
    if (len >= 9 && strncmp(url, "rediss://", 9) == 0) {
        *why = "rediss:// (TLS) is not supported: use redis:// on a private network or a local TLS tunnel";
        return -1;
    }
    if (len < sizeof(scheme) - 1 || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        *why = "expected redis://[[user]:password@]host[:port][/db]";
        return -1;
    }
    p = url + sizeof(scheme) - 1;
    slash = memchr(p, '/', (size_t)(end - p));
    if (slash == NULL)
        slash = end;
    /* userinfo: the last '@' before the path (a password may contain '@' only percent-encoded, but be lenient) */
    at = NULL;
    for (const char *q = p; q < slash; ++q)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {
            *why = "userinfo must be :password or user:password";
            return -1;
        }
        if (decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) != 0 ||
            decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password)) != 0) {
            *why = "bad user or password (percent-encoding, control characters or length)";
            return -1;
        }
        p = at + 1;
    }
    /* host [:port] */
    if (p < slash && *p == '[') {
        const char *rb = memchr(p, ']', (size_t)(slash - p));
        if (rb == NULL || rb == p + 1 || (size_t)(rb - p - 1) >= sizeof(out->host)) {
            *why = "bad IPv6 host literal";
            return -1;
        }
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        out->host[rb - p - 1] = '\0';
        for (const char *q = out->host; *q != '\0'; ++q)
            if (!(hexval(*q) >= 0 || *q == ':' || *q == '.')) {
                *why = "bad IPv6 host literal";
                return -1;
            }
        hostend = rb + 1;
        if (hostend < slash && *hostend != ':') {
            *why = "unexpected characters after the host";
            return -1;
        }
    } else {
        hostend = memchr(p, ':', (size_t)(slash - p));
        if (hostend == NULL)
            hostend = slash;
        size_t hl = (size_t)(hostend - p);
        if (hl == 0 || hl >= sizeof(out->host)) {
            *why = "missing or too long host";
            return -1;
        }
        for (size_t i = 0; i < hl; ++i) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) {
                *why = "host may contain only letters, digits, '-', '.', '_'";
                return -1;
            }
        }
        memcpy(out->host, p, hl);
        out->host[hl] = '\0';
    }
    if (hostend < slash && *hostend == ':') {
        if (parse_uint(hostend + 1, (size_t)(slash - hostend - 1), 65535, &v) != 0 || v == 0) {
            *why = "port must be 1..65535";
            return -1;
        }
        out->port = (int)v;
    }
    /* /db */
    if (slash < end) {
        size_t dl = (size_t)(end - slash - 1);
        if (dl > 0) {
            if (parse_uint(slash + 1, dl, 1000000, &v) != 0) {
                *why = "database must be a number (e.g. /0)";
                return -1;
            }
            out->db = (int)v;
        }
    }
    return 0;
}
