/* SPDX-License-Identifier: MIT */
/*
 * Tree writer (see tree.h): a direct recursive walk; strings through the
 * splice writer's escaper, integers without printf, reals as jansson prints
 * them at precision 15.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "json/splice.h"
#include "json/tree.h"

#define MAX_TREE_DEPTH 256

static int write_real(lg_buf_t *out, double d)
{
    char buf[40];
    if (!isfinite(d))
        return -1; /* jansson refuses these too */
    int n = snprintf(buf, sizeof(buf), "%.15g", d);
    if (n <= 0 || (size_t)n >= sizeof(buf) - 3)
        return -1;
    char *e = strchr(buf, 'e');
    if (e != NULL) { /* as jansson prints exponents: no '+', no leading zeros ("1.5e-05" -> "1.5e-5") */
        char *dst = e + 1, *src = e + 1;
        if (*src == '+')
            ++src;
        else if (*src == '-')
            *dst++ = *src++;
        while (*src == '0' && src[1] != '\0')
            ++src;
        memmove(dst, src, strlen(src) + 1);
        n = (int)strlen(buf);
    }
    if (strpbrk(buf, ".eE") == NULL) { /* a real stays a real */
        buf[n++] = '.';
        buf[n++] = '0';
    }
    return lg_buf_append(out, buf, (size_t)n);
}

static int write_value(lg_buf_t *out, const json_t *v, int depth);

static int write_members(lg_buf_t *out, const json_t *o, const char *const *skip, int first, int depth)
{
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)o, k, m)
    {
        int skipped = 0;
        for (size_t i = 0; skip != NULL && skip[i] != NULL && !skipped; ++i)
            skipped = strcmp(k, skip[i]) == 0;
        if (skipped)
            continue;
        if ((!first && lg_buf_append(out, ",", 1) != 0) || lg_json_write_string(out, k, strlen(k)) != 0 ||
            lg_buf_append(out, ":", 1) != 0 || write_value(out, m, depth + 1) != 0)
            return -1;
        first = 0;
    }
    return 0;
}

static int write_value(lg_buf_t *out, const json_t *v, int depth)
{
    if (depth > MAX_TREE_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return lg_buf_append(out, "{", 1) != 0 || write_members(out, v, NULL, 1, depth) != 0 || lg_buf_append(out, "}", 1) != 0 ? -1
                                                                                                                                : 0;
    case JSON_ARRAY: {
        if (lg_buf_append(out, "[", 1) != 0)
            return -1;
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; ++i)
            if ((i != 0 && lg_buf_append(out, ",", 1) != 0) || write_value(out, json_array_get(v, i), depth + 1) != 0)
                return -1;
        return lg_buf_append(out, "]", 1);
    }
    case JSON_STRING:
        return lg_json_write_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return lg_json_write_int(out, (int64_t)json_integer_value(v));
    case JSON_REAL:
        return write_real(out, json_real_value(v));
    case JSON_TRUE:
        return lg_buf_append(out, "true", 4);
    case JSON_FALSE:
        return lg_buf_append(out, "false", 5);
    default:
        return lg_buf_append(out, "null", 4);
    }
}

int lg_json_write_tree(lg_buf_t *out, const json_t *v)
{
    size_t start = out->len;
    if (v == NULL || write_value(out, v, 0) != 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return -1;
    }
    return 0;
}

int lg_json_write_members(lg_buf_t *out, const json_t *o, const char *const *skip)
{
    size_t start = out->len;
    if (!json_is_object(o) || write_members(out, o, skip, 0, 0) != 0) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return -1;
    }
    return 0;
}
