/* SPDX-License-Identifier: MIT */
/*
 * JSON scanner (see scan.h): one strict validating pass, then span navigation
 * that trusts the validated bytes but still never reads past a span's end.
 * No allocation anywhere; recursion depth is bounded by LG_JSON_MAX_DEPTH.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "json/scan.h"

/* ---- validation ---------------------------------------------------------------------------------------------------- */

struct vctx {
    const unsigned char *p, *end, *start;
    const char *what; /* first failure */
    const unsigned char *at;
};

/* Byte classes for the string fast path: 0 = ordinary ASCII, 1 = needs attention (quote, backslash, control, >= 0x80). */
static const unsigned char str_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00-0x1f */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static int fail(struct vctx *v, const unsigned char *at, const char *what)
{
    if (v->what == NULL) {
        v->what = what;
        v->at = at;
    }
    return -1;
}

static void skip_ws(struct vctx *v)
{
    while (v->p < v->end && (*v->p == ' ' || *v->p == '\n' || *v->p == '\r' || *v->p == '\t'))
        ++v->p;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned u = 0;
    for (int i = 0; i < 4; ++i) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        u = u << 4 | d;
    }
    *out = u;
    return 0;
}

/* One UTF-8 sequence starting at p (p[0] >= 0x80); returns its length or 0 if ill-formed (RFC 3629 table). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; ++i)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

static int v_string(struct vctx *v)
{
    const unsigned char *p = v->p + 1, *end = v->end; /* after the opening quote */
    for (;;) {
        while (p < end && !str_special[*p])
            ++p;
        if (p >= end)
            return fail(v, p, "unterminated string");
        unsigned c = *p;
        if (c == '"') {
            v->p = p + 1;
            return 0;
        }
        if (c == '\\') {
            if (end - p < 2)
                return fail(v, p, "unterminated string");
            switch (p[1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                p += 2;
                continue;
            case 'u': {
                unsigned u, u2;
                if (end - p < 6 || hex4(p + 2, &u) != 0)
                    return fail(v, p, "invalid \\u escape");
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return fail(v, p, "lone low surrogate");
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &u2) != 0 || u2 < 0xDC00 || u2 > 0xDFFF)
                        return fail(v, p, "lone high surrogate");
                    p += 12;
                } else {
                    p += 6;
                }
                continue;
            }
            default:
                return fail(v, p, "invalid escape");
            }
        }
        if (c < 0x20)
            return fail(v, p, "control character in string");
        size_t n = utf8_seq(p, end);
        if (n == 0)
            return fail(v, p, "invalid UTF-8");
        p += n;
    }
}

static int is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static int v_number(struct vctx *v)
{
    const unsigned char *p = v->p, *end = v->end;
    if (p < end && *p == '-')
        ++p;
    if (p >= end || !is_digit(*p))
        return fail(v, p, "invalid number");
    if (*p == '0')
        ++p;
    else
        while (p < end && is_digit(*p))
            ++p;
    if (p < end && *p == '.') {
        ++p;
        if (p >= end || !is_digit(*p))
            return fail(v, p, "invalid number");
        while (p < end && is_digit(*p))
            ++p;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        ++p;
        if (p < end && (*p == '+' || *p == '-'))
            ++p;
        if (p >= end || !is_digit(*p))
            return fail(v, p, "invalid number");
        while (p < end && is_digit(*p))
            ++p;
    }
    v->p = p;
    return 0;
}

static int v_literal(struct vctx *v, const char *lit, size_t n)
{
    if ((size_t)(v->end - v->p) < n || memcmp(v->p, lit, n) != 0)
        return fail(v, v->p, "invalid literal");
    v->p += n;
    return 0;
}

static int v_value(struct vctx *v, int depth)
{
    skip_ws(v);
    if (v->p >= v->end)
        return fail(v, v->p, "unexpected end of input");
    switch (*v->p) {
    case '{':
        if (depth >= LG_JSON_MAX_DEPTH)
            return fail(v, v->p, "nesting too deep");
        ++v->p;
        skip_ws(v);
        if (v->p < v->end && *v->p == '}') {
            ++v->p;
            return 0;
        }
        for (;;) {
            skip_ws(v);
            if (v->p >= v->end || *v->p != '"')
                return fail(v, v->p, "expected member name");
            if (v_string(v) != 0)
                return -1;
            skip_ws(v);
            if (v->p >= v->end || *v->p != ':')
                return fail(v, v->p, "expected ':'");
            ++v->p;
            if (v_value(v, depth + 1) != 0)
                return -1;
            skip_ws(v);
            if (v->p < v->end && *v->p == ',') {
                ++v->p;
                continue;
            }
            if (v->p < v->end && *v->p == '}') {
                ++v->p;
                return 0;
            }
            return fail(v, v->p, "expected ',' or '}'");
        }
    case '[':
        if (depth >= LG_JSON_MAX_DEPTH)
            return fail(v, v->p, "nesting too deep");
        ++v->p;
        skip_ws(v);
        if (v->p < v->end && *v->p == ']') {
            ++v->p;
            return 0;
        }
        for (;;) {
            if (v_value(v, depth + 1) != 0)
                return -1;
            skip_ws(v);
            if (v->p < v->end && *v->p == ',') {
                ++v->p;
                continue;
            }
            if (v->p < v->end && *v->p == ']') {
                ++v->p;
                return 0;
            }
            return fail(v, v->p, "expected ',' or ']'");
        }
    case '"':
        return v_string(v);
    case 't':
        return v_literal(v, "true", 4);
    case 'f':
        return v_literal(v, "false", 5);
    case 'n':
        return v_literal(v, "null", 4);
    default:
        if (*v->p == '-' || is_digit(*v->p))
            return v_number(v);
        return fail(v, v->p, "unexpected character");
    }
}

int lg_json_validate(const char *p, size_t len, lg_json_span_t *root, lg_json_error_t *err)
{
    struct vctx v = {.p = (const unsigned char *)p, .end = (const unsigned char *)p + len, .start = (const unsigned char *)p};
    const unsigned char *vstart;
    skip_ws(&v);
    vstart = v.p;
    if (v_value(&v, 0) == 0) {
        const unsigned char *vend = v.p;
        skip_ws(&v);
        if (v.p == v.end) {
            if (root != NULL) {
                *root = lg_json_span_at((const char *)vstart, (const char *)vend);
                root->len = (size_t)(vend - vstart);
            }
            return 0;
        }
        fail(&v, v.p, "trailing data after the value");
    }
    if (err != NULL) {
        err->offset = (size_t)(v.at - v.start);
        err->what = v.what;
    }
    if (root != NULL)
        memset(root, 0, sizeof(*root));
    return -1;
}

int lg_json_validate_value(const char *p, const char *end, int depth, lg_json_span_t *out, lg_json_error_t *err)
{
    struct vctx v = {.p = (const unsigned char *)p, .end = (const unsigned char *)end, .start = (const unsigned char *)p};
    skip_ws(&v);
    const unsigned char *vstart = v.p;
    if (v_value(&v, depth) == 0) {
        if (out != NULL) {
            out->p = (const char *)vstart;
            out->len = (size_t)(v.p - vstart);
            switch (*vstart) {
            case '{':
                out->type = LG_JSON_OBJECT;
                break;
            case '[':
                out->type = LG_JSON_ARRAY;
                break;
            case '"':
                out->type = LG_JSON_STRING;
                break;
            case 't':
                out->type = LG_JSON_TRUE;
                break;
            case 'f':
                out->type = LG_JSON_FALSE;
                break;
            case 'n':
                out->type = LG_JSON_NULL;
                break;
            default:
                out->type = LG_JSON_NUMBER;
            }
        }
        return 0;
    }
    if (err != NULL) {
        err->offset = (size_t)(v.at - v.start);
        err->what = v.what;
    }
    return -1;
}

/* ---- navigation over validated bytes ------------------------------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static const char *skip_ws_to(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        ++p;
    return p;
}

/* p at an opening quote; returns the byte after the closing quote (or end). */
static const char *skip_string(const char *p, const char *end)
{
    ++p;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL)
            return end;
        /* the quote closes the string unless preceded by an odd number of backslashes */
        const char *b = q;
        while (b > p && b[-1] == '\\')
            --b;
        if (((q - b) & 1) == 0)
            return q + 1;
        p = q + 1;
    }
    return end;
}

static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return end;
    switch (*p) {
    case '"':
        return skip_string(p, end);
    case '{':
    case '[': {
        size_t depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, end);
                continue;
            }
            ++p;
            if (c == '{' || c == '[')
                ++depth;
            else if ((c == '}' || c == ']') && --depth == 0)
                return p;
        }
        return end;
    }
    default:
        while (p < end && *p != ',' && *p != '}' && *p != ']' && !is_ws(*p))
            ++p;
        return p;
    }
}

lg_json_span_t lg_json_span_at(const char *p, const char *end)
{
    lg_json_span_t s = {p, 0, LG_JSON_NONE};
    if (p >= end)
        return s;
    switch (*p) {
    case '{':
        s.type = LG_JSON_OBJECT;
        break;
    case '[':
        s.type = LG_JSON_ARRAY;
        break;
    case '"':
        s.type = LG_JSON_STRING;
        break;
    case 't':
        s.type = LG_JSON_TRUE;
        break;
    case 'f':
        s.type = LG_JSON_FALSE;
        break;
    case 'n':
        s.type = LG_JSON_NULL;
        break;
    default:
        s.type = LG_JSON_NUMBER;
        break;
    }
    s.len = (size_t)(skip_value(p, end) - p);
    return s;
}

void lg_json_iter_init(lg_json_iter_t *it, lg_json_span_t c)
{
    if ((c.type == LG_JSON_OBJECT || c.type == LG_JSON_ARRAY) && c.len >= 2) {
        it->p = c.p + 1;
        it->end = c.p + c.len - 1; /* the closing bracket */
    } else {
        it->p = it->end = c.p;
    }
}

/* Advance past whitespace and one separating comma. */
static const char *next_item(const char *p, const char *end)
{
    p = skip_ws_to(p, end);
    if (p < end && *p == ',')
        p = skip_ws_to(p + 1, end);
    return p;
}

int lg_json_iter_member(lg_json_iter_t *it, lg_json_span_t *key, lg_json_span_t *val)
{
    const char *p = next_item(it->p, it->end), *end = it->end;
    if (p >= end || *p != '"') {
        it->p = end;
        return 0;
    }
    const char *k = p;
    p = skip_string(p, end);
    key->p = k;
    key->len = (size_t)(p - k);
    key->type = LG_JSON_STRING;
    p = skip_ws_to(p, end);
    if (p < end && *p == ':')
        ++p;
    p = skip_ws_to(p, end);
    *val = lg_json_span_at(p, end);
    it->p = p + val->len;
    return 1;
}

int lg_json_iter_element(lg_json_iter_t *it, lg_json_span_t *val)
{
    const char *p = next_item(it->p, it->end);
    if (p >= it->end) {
        it->p = it->end;
        return 0;
    }
    *val = lg_json_span_at(p, it->end);
    it->p = p + val->len;
    if (val->len == 0) { /* not a value (unvalidated input): stop rather than loop */
        it->p = it->end;
        return 0;
    }
    return 1;
}

const char *lg_json_str_raw(lg_json_span_t s, size_t *n)
{
    if (s.type != LG_JSON_STRING || s.len < 2) {
        *n = 0;
        return s.p;
    }
    *n = s.len - 2;
    return s.p + 1;
}

int lg_json_str_plain(lg_json_span_t s)
{
    size_t n;
    const char *r = lg_json_str_raw(s, &n);
    return s.type == LG_JSON_STRING && memchr(r, '\\', n) == NULL;
}

/* Decode one escape at p (p[0] == '\\'); writes up to 4 bytes to buf, returns bytes consumed (0 = malformed). */
static size_t decode_escape(const char *p, const char *end, char buf[4], size_t *nout)
{
    if (end - p < 2)
        return 0;
    char c;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        c = p[1];
        break;
    case 'b':
        c = '\b';
        break;
    case 'f':
        c = '\f';
        break;
    case 'n':
        c = '\n';
        break;
    case 'r':
        c = '\r';
        break;
    case 't':
        c = '\t';
        break;
    case 'u':
        c = 0;
        break;
    default:
        return 0;
    }
    if (p[1] != 'u') {
        buf[0] = c;
        *nout = 1;
        return 2;
    }
    unsigned u, u2;
    size_t used = 6;
    if (end - p < 6 || hex4((const unsigned char *)p + 2, &u) != 0)
        return 0;
    if (u >= 0xD800 && u <= 0xDBFF) {
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4((const unsigned char *)p + 8, &u2) != 0 || u2 < 0xDC00 ||
            u2 > 0xDFFF)
            return 0;
        u = 0x10000 + ((u - 0xD800) << 10) + (u2 - 0xDC00);
        used = 12;
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
        return 0;
    }
    if (u < 0x80) {
        buf[0] = (char)u;
        *nout = 1;
    } else if (u < 0x800) {
        buf[0] = (char)(0xC0 | u >> 6);
        buf[1] = (char)(0x80 | (u & 0x3F));
        *nout = 2;
    } else if (u < 0x10000) {
        buf[0] = (char)(0xE0 | u >> 12);
        buf[1] = (char)(0x80 | (u >> 6 & 0x3F));
        buf[2] = (char)(0x80 | (u & 0x3F));
        *nout = 3;
    } else {
        buf[0] = (char)(0xF0 | u >> 18);
        buf[1] = (char)(0x80 | (u >> 12 & 0x3F));
        buf[2] = (char)(0x80 | (u >> 6 & 0x3F));
        buf[3] = (char)(0x80 | (u & 0x3F));
        *nout = 4;
    }
    return used;
}

int lg_json_unescape(lg_json_span_t s, char *out, size_t cap, size_t *outlen)
{
    size_t n, o = 0;
    int rc = 0;
    if (outlen != NULL)
        *outlen = 0;
    if (s.type != LG_JSON_STRING) {
        if (cap > 0)
            out[0] = '\0';
        return -1;
    }
    const char *p = lg_json_str_raw(s, &n), *end = p + n;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs != NULL ? bs : end) - p);
        if (o + run >= cap) {
            rc = -1;
            run = cap > o ? cap - o - (cap > 0) : 0;
            memcpy(out + o, p, run);
            o += run;
            break;
        }
        memcpy(out + o, p, run);
        o += run;
        p += run;
        if (bs == NULL)
            break;
        char buf[4];
        size_t k = 0, used = decode_escape(p, end, buf, &k);
        if (used == 0 || o + k >= cap) {
            rc = -1;
            break;
        }
        memcpy(out + o, buf, k);
        o += k;
        p += used;
    }
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return rc;
}

size_t lg_json_str_len(lg_json_span_t s)
{
    size_t n, o = 0;
    const char *p = lg_json_str_raw(s, &n), *end = p + n;
    if (memchr(p, '\\', n) == NULL)
        return n; /* no escape: the raw bytes are the value */
    while (p < end) {
        if (*p != '\\') {
            ++p;
            ++o;
            continue;
        }
        char buf[4];
        size_t k = 0, used = decode_escape(p, end, buf, &k);
        if (used == 0)
            break;
        o += k;
        p += used;
    }
    return o;
}

int lg_json_key_eq(lg_json_span_t key, const char *s, size_t n)
{
    if (key.type != LG_JSON_STRING || key.len < 2)
        return 0;
    const char *r = key.p + 1;
    size_t rn = key.len - 2;
    /* escapes only ever shrink a string: a raw key shorter than s never matches, one of the same length only when it
     * has no escape, i.e. when the bytes are equal and s itself has no backslash */
    if (rn < n)
        return 0;
    if (rn == n) {
        if (memcmp(r, s, n) != 0)
            return 0;
        for (size_t i = 0; i < n; ++i)
            if (s[i] == '\\')
                return 0;
        return 1;
    }
    if (memchr(r, '\\', rn) == NULL)
        return 0;
    /* escaped key: decode piecewise and compare */
    const char *p = r, *end = r + rn;
    size_t o = 0;
    while (p < end) {
        if (*p != '\\') {
            if (o >= n || s[o] != *p)
                return 0;
            ++o;
            ++p;
            continue;
        }
        char buf[4];
        size_t k = 0, used = decode_escape(p, end, buf, &k);
        if (used == 0 || o + k > n || memcmp(s + o, buf, k) != 0)
            return 0;
        o += k;
        p += used;
    }
    return o == n;
}

int lg_json_find(lg_json_span_t obj, const char *name, size_t n, lg_json_span_t *val)
{
    lg_json_iter_t it;
    lg_json_span_t k, v;
    int found = 0;
    memset(val, 0, sizeof(*val));
    if (obj.type != LG_JSON_OBJECT)
        return 0;
    lg_json_iter_init(&it, obj);
    while (lg_json_iter_member(&it, &k, &v))
        if (lg_json_key_eq(k, name, n)) {
            *val = v;
            found = 1;
        }
    return found;
}

int lg_json_get(lg_json_span_t obj, const char *name, lg_json_span_t *val)
{
    return lg_json_find(obj, name, strlen(name), val);
}

size_t lg_json_count(lg_json_span_t c)
{
    lg_json_iter_t it;
    lg_json_span_t k, v;
    size_t n = 0;
    lg_json_iter_init(&it, c);
    if (c.type == LG_JSON_OBJECT)
        while (lg_json_iter_member(&it, &k, &v))
            ++n;
    else if (c.type == LG_JSON_ARRAY)
        while (lg_json_iter_element(&it, &v))
            ++n;
    return n;
}

int lg_json_is_integer(lg_json_span_t s)
{
    if (s.type != LG_JSON_NUMBER)
        return 0;
    for (size_t i = 0; i < s.len; ++i)
        if (s.p[i] == '.' || s.p[i] == 'e' || s.p[i] == 'E')
            return 0;
    return 1;
}

int lg_json_int64(lg_json_span_t s, int64_t *out)
{
    if (!lg_json_is_integer(s) || s.len == 0)
        return -1;
    size_t i = 0;
    int neg = s.p[0] == '-';
    i += (size_t)neg;
    if (i >= s.len)
        return -1;
    uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < s.len; ++i) {
        unsigned d = (unsigned)(s.p[i] - '0');
        if (d > 9 || u > (lim - d) / 10)
            return -1;
        u = u * 10 + d;
    }
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

int lg_json_double(lg_json_span_t s, double *out)
{
    char buf[512];
    if (s.type != LG_JSON_NUMBER || s.len == 0 || s.len >= sizeof(buf))
        return -1;
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    char *e;
    double d = strtod(buf, &e);
    if (e != buf + s.len || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}
