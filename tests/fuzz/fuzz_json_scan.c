/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the JSON scanner and splice writer (src/json/), with
 * jansson as the oracle: validity must agree (apart from documented
 * differences: jansson rejects integers beyond int64 and reals beyond
 * double range, which RFC 8259 allows, and ends input at a NUL byte), every member jansson sees must be
 * found with the same type and string value, the tree writer must print what
 * json_dumps prints, and a splice with edits must
 * produce JSON that jansson reads as the expected object.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "json/splice.h"
#include "json/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lg_json_type_t type_of(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return LG_JSON_OBJECT;
    case JSON_ARRAY:
        return LG_JSON_ARRAY;
    case JSON_STRING:
        return LG_JSON_STRING;
    case JSON_INTEGER:
    case JSON_REAL:
        return LG_JSON_NUMBER;
    case JSON_TRUE:
        return LG_JSON_TRUE;
    case JSON_FALSE:
        return LG_JSON_FALSE;
    default:
        return LG_JSON_NULL;
    }
}

/* Compare one value span with jansson's value, recursively (bounded by the validated depth). */
static void compare(lg_json_span_t s, const json_t *j)
{
    if (s.type != type_of(j))
        abort();
    if (s.type == LG_JSON_STRING) {
        size_t n = lg_json_str_len(s);
        if (n != json_string_length(j))
            abort();
        char *buf = malloc(n + 1);
        size_t got;
        if (lg_json_unescape(s, buf, n + 1, &got) != 0 || got != n || memcmp(buf, json_string_value(j), n) != 0)
            abort();
        free(buf);
    } else if (s.type == LG_JSON_NUMBER) {
        if (json_is_integer(j) != lg_json_is_integer(s))
            abort();
        int64_t i;
        if (json_is_integer(j) && (lg_json_int64(s, &i) != 0 || i != json_integer_value(j)))
            abort();
        double d;
        if (json_is_real(j) && (lg_json_double(s, &d) != 0 || d != json_real_value(j)))
            abort();
    } else if (s.type == LG_JSON_ARRAY) {
        lg_json_iter_t it;
        lg_json_span_t v;
        size_t i = 0;
        lg_json_iter_init(&it, s);
        while (lg_json_iter_element(&it, &v)) {
            if (i >= json_array_size(j))
                abort();
            compare(v, json_array_get(j, i++));
        }
        if (i != json_array_size(j) || lg_json_count(s) != i)
            abort();
    } else if (s.type == LG_JSON_OBJECT) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v)
        {
            lg_json_span_t found;
            /* jansson keys are NUL-terminated: a key with an embedded NUL cannot be looked up by strlen */
            if (!lg_json_find(s, key, strlen(key), &found))
                abort();
            compare(found, v);
        }
        if (lg_json_count(s) < json_object_size(j))
            abort();
    }
}

static int tolerated_jansson_reject(const json_error_t *e)
{
    /* RFC 8259 leaves number range to the implementation; jansson limits it */
    if (strstr(e->text, "too big") != NULL || strstr(e->text, "overflow") != NULL)
        return 1;
    /* jansson keys are C strings; RFC 8259 allows "\u0000" in member names */
    return strstr(e->text, "NUL") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    lg_json_span_t root;
    lg_json_error_t err;
    int ours = lg_json_validate(p, size, &root, &err);
    json_error_t jerr;
    json_t *j = json_loadb(p, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (ours != 0) {
        if (err.offset > size || err.what == NULL)
            abort();
        /* jansson nests deeper than we allow, and its lexer takes a NUL byte outside a string for the end of input;
         * anything else it accepts we must accept too */
        if (j != NULL && strcmp(err.what, "nesting too deep") != 0 && !(err.offset < size && data[err.offset] == 0))
            abort();
        json_decref(j);
        return 0;
    }
    if (j == NULL) {
        if (!tolerated_jansson_reject(&jerr))
            abort();
        return 0;
    }
    if (root.p < p || root.p + root.len > p + size)
        abort();
    compare(root, j);

    /* the tree writer prints what json_dumps prints */
    if (json_is_object(j) || json_is_array(j)) {
        char *want = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
        lg_buf_t tb;
        lg_buf_init(&tb, 1 << 24);
        int trc = lg_json_write_tree(&tb, j);
        if (want != NULL && (trc != 0 || tb.len != strlen(want) || memcmp(tb.data, want, tb.len) != 0))
            abort();
        free(want);
        lg_buf_dispose(&tb);
    }

    if (root.type == LG_JSON_OBJECT) {
        /* splice: set "model", remove the first key jansson reports, append "x"; check with jansson */
        const char *first = json_object_iter_key(json_object_iter(j));
        lg_json_edit_t e[3] = {
            {LG_JSON_EDIT_SET, "model", 5, "\"m\"", 3},
            {LG_JSON_EDIT_REMOVE, first != NULL ? first : "", first != NULL ? strlen(first) : 0, NULL, 0},
            {LG_JSON_EDIT_APPEND, "x", 1, "[1]", 3},
        };
        lg_buf_t b;
        lg_buf_init(&b, size * 2 + 64);
        if (lg_json_splice(&b, root, e, 3) != 0)
            abort();
        json_t *out = json_loadb(b.data, b.len, JSON_ALLOW_NUL, NULL);
        if (out == NULL)
            abort();
        json_t *want = json_deep_copy(j);
        if (first != NULL && strcmp(first, "model") != 0)
            json_object_del(want, first);
        json_object_set_new(want, "model", json_string("m")); /* the SET is the first edit for "model": it wins */
        json_object_set_new(want, "x", json_pack("[i]", 1));
        if (!json_equal(out, want))
            abort();
        json_decref(want);
        json_decref(out);
        lg_buf_dispose(&b);
    }
    json_decref(j);
    return 0;
}
