/* SPDX-License-Identifier: MIT */
/*
 * Cursor codec, URI namespacing and tool patterns (see naming.h).
 *
 * Cursor text: base64url (no padding) of "2:<index>:<skip>:<provider>:<provider cursor>". The provider name is kept
 * so a cursor from another configuration (providers reordered by a reload) is refused instead of silently paging the
 * wrong provider; the provider cursor is the rest of the string (it may itself contain ':').
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/util.h"
#include "mcp/naming.h"

#define MAX_CURSOR_TEXT 16384

static char *dup_n(const char *s, size_t n)
{
    char *out = lg_malloc(n + 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const char *s, size_t n)
{
    char *out = lg_malloc(n / 3 * 4 + 5), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned char)s[i] << 16 | (i + 1 < n ? (unsigned char)s[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        if (i + 1 < n)
            *o++ = b64[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* NUL-terminated malloc'd bytes, or NULL if s is not unpadded base64url */
static char *b64_decode(const char *s, size_t n, size_t *outlen)
{
    if (n % 4 == 1)
        return NULL;
    char *out = lg_malloc(n / 4 * 3 + 4), *o = out;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; ++i) {
        int v = b64_val(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)((acc >> bits) & 0xff);
        }
    }
    *o = '\0';
    *outlen = (size_t)(o - out);
    return out;
}

char *lg_mcp_cursor_encode(size_t index, const char *provider, const char *pcursor, size_t skip)
{
    if (provider == NULL)
        provider = "";
    if (pcursor == NULL)
        pcursor = "";
    size_t n = strlen(provider) + strlen(pcursor) + 64;
    char *raw = lg_malloc(n);
    int len = snprintf(raw, n, "2:%zu:%zu:%s:%s", index, skip, provider, pcursor);
    char *c = b64_encode(raw, (size_t)len);
    free(raw);
    return c;
}

static int parse_size(const char **p, const char *end, size_t *out)
{
    const char *s = *p;
    size_t v = 0;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (++digits > 9)
            return -1; /* nobody pages past a billion */
        v = v * 10 + (size_t)(*s - '0');
        ++s;
    }
    if (digits == 0 || s >= end || *s != ':')
        return -1;
    *out = v;
    *p = s + 1;
    return 0;
}

int lg_mcp_cursor_decode(const char *text, size_t len, lg_mcp_cursor_t *out)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || len == 0 || len > MAX_CURSOR_TEXT)
        return -1;
    size_t n;
    char *raw = b64_decode(text, len, &n);
    if (raw == NULL)
        return -1;
    const char *p = raw, *end = raw + n;
    int ok = memchr(raw, '\0', n) == NULL && n > 2 && p[0] == '2' && p[1] == ':';
    if (ok) {
        p += 2;
        ok = parse_size(&p, end, &out->index) == 0 && parse_size(&p, end, &out->skip) == 0;
    }
    if (ok) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        ok = colon != NULL;
        if (ok) {
            out->provider = dup_n(p, (size_t)(colon - p));
            out->pcursor = colon + 1 < end ? dup_n(colon + 1, (size_t)(end - colon - 1)) : NULL;
        }
    }
    free(raw);
    if (!ok)
        lg_mcp_cursor_dispose(out);
    return ok ? 0 : -1;
}

void lg_mcp_cursor_dispose(lg_mcp_cursor_t *c)
{
    free(c->provider);
    free(c->pcursor);
    memset(c, 0, sizeof(*c));
}

char *lg_mcp_uri_namespace(const char *prefix, const char *uri)
{
    size_t n = sizeof(LG_MCP_URI_NS) + strlen(prefix) + strlen(uri) + 2;
    char *out = lg_malloc(n);
    snprintf(out, n, "%s%s/%s", LG_MCP_URI_NS, prefix, uri);
    return out;
}

static int prefix_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

int lg_mcp_uri_split(const char *uri, const char **prefix, size_t *prefix_len, const char **rest)
{
    size_t ns = sizeof(LG_MCP_URI_NS) - 1;
    if (uri == NULL || strncmp(uri, LG_MCP_URI_NS, ns) != 0)
        return 0;
    const char *p = uri + ns, *q = p;
    while (*q != '\0' && *q != '/' && prefix_char(*q))
        ++q;
    if (*q != '/' || q == p || q - p > 64 || q[1] == '\0')
        return 0;
    *prefix = p;
    *prefix_len = (size_t)(q - p);
    *rest = q + 1;
    return 1;
}

int lg_mcp_pattern_match(const char *pattern, const char *name)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, name, n - 1) == 0;
    return strcmp(pattern, name) == 0;
}

int lg_mcp_patterns_match(char *const *patterns, const char *name)
{
    if (patterns == NULL)
        return 1;
    for (char *const *p = patterns; *p != NULL; ++p)
        if (lg_mcp_pattern_match(*p, name))
            return 1;
    return 0;
}
