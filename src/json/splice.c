/* SPDX-License-Identifier: MIT */
/*
 * Splice writer (see splice.h): one pass over the object's members, copying
 * untouched members byte for byte and applying edits by key. Bounded by the
 * lg_buf_t cap; a failed call leaves the buffer as it was.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "json/splice.h"

static int put(lg_buf_t *out, const void *p, size_t n)
{
    return lg_buf_append(out, p, n);
}

int lg_json_write_string(lg_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* uppercase, as jansson writes them */
    size_t start = out->len;
    if (put(out, "\"", 1) != 0)
        return -1;
    size_t run = 0;
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (put(out, s + run, i - run) != 0)
            goto full;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t k = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            k = 6;
        }
        if (put(out, esc, k) != 0)
            goto full;
        run = i + 1;
    }
    if (put(out, s + run, n - run) != 0 || put(out, "\"", 1) != 0)
        goto full;
    return 0;
full:
    out->len = start;
    return -1;
}

int lg_json_write_int(lg_buf_t *out, int64_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return put(out, p, (size_t)(buf + sizeof(buf) - p));
}

int lg_json_write_double(lg_buf_t *out, double v)
{
    char buf[32];
    if (!isfinite(v))
        v = 0;
    int n = snprintf(buf, sizeof(buf), "%.17g", v);
    /* %.17g may print 0.10000000000000001: try 15 digits first and keep it when it round-trips */
    char short_buf[32];
    int m = snprintf(short_buf, sizeof(short_buf), "%.15g", v);
    double back = 0;
    if (sscanf(short_buf, "%lf", &back) == 1 && back == v)
        return put(out, short_buf, (size_t)m);
    return put(out, buf, (size_t)n);
}

static int member(lg_buf_t *out, int *first, const char *key, size_t key_len, const char *val, size_t val_len)
{
    if (!*first && put(out, ",", 1) != 0)
        return -1;
    *first = 0;
    if (lg_json_write_string(out, key, key_len) != 0 || put(out, ":", 1) != 0 || put(out, val, val_len) != 0)
        return -1;
    return 0;
}

int lg_json_splice(lg_buf_t *out, lg_json_span_t obj, const lg_json_edit_t *edits, size_t n)
{
    if (obj.type != LG_JSON_OBJECT || n > LG_JSON_MAX_EDITS)
        return -1;
    size_t start = out->len;
    unsigned char used[LG_JSON_MAX_EDITS] = {0}; /* SET/REPLACE already written once */
    int first = 1;
    lg_json_iter_t it;
    lg_json_span_t k, v;
    if (put(out, "{", 1) != 0)
        goto full;
    lg_json_iter_init(&it, obj);
    while (lg_json_iter_member(&it, &k, &v)) {
        size_t e = n;
        for (size_t i = 0; i < n; ++i)
            if (edits[i].op != LG_JSON_EDIT_APPEND && lg_json_key_eq(k, edits[i].key, edits[i].key_len)) {
                e = i;
                break;
            }
        if (e == n) {
            if (!first && put(out, ",", 1) != 0)
                goto full;
            first = 0;
            if (put(out, k.p, k.len) != 0 || put(out, ":", 1) != 0 || put(out, v.p, v.len) != 0)
                goto full;
            continue;
        }
        if (edits[e].op == LG_JSON_EDIT_REMOVE || used[e])
            continue;
        used[e] = 1;
        if (member(out, &first, edits[e].key, edits[e].key_len, edits[e].value, edits[e].value_len) != 0)
            goto full;
    }
    for (size_t i = 0; i < n; ++i) {
        if (edits[i].op != LG_JSON_EDIT_APPEND && (edits[i].op != LG_JSON_EDIT_SET || used[i]))
            continue;
        /* a SET shadowed by an earlier edit of the same key is not appended */
        int shadowed = 0;
        for (size_t j = 0; j < i && !shadowed && edits[i].op == LG_JSON_EDIT_SET; ++j)
            shadowed = edits[j].op != LG_JSON_EDIT_APPEND && edits[j].key_len == edits[i].key_len &&
                       memcmp(edits[j].key, edits[i].key, edits[i].key_len) == 0;
        if (shadowed)
            continue;
        if (member(out, &first, edits[i].key, edits[i].key_len, edits[i].value, edits[i].value_len) != 0)
            goto full;
    }
    if (put(out, "}", 1) != 0)
        goto full;
    return 0;
full:
    out->len = start;
    if (out->data != NULL)
        out->data[start] = '\0';
    return -1;
}
