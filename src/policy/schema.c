/* SPDX-License-Identifier: MIT */
/*
 * Policy settings schemas: checks a policy's SCHEMA (field specs) and the config's settings against it, filling the
 * defaults. Messages carry the JSON path the way src/core/config.c writes its own (`a.b[2].c: message`).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy/schema.h"

#define PATH_LEN 512

static const char *const type_names[] = {"string", "number", "integer", "boolean", "array", "object", NULL};
enum field_type { T_STRING, T_NUMBER, T_INTEGER, T_BOOLEAN, T_ARRAY, T_OBJECT };

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void path_key(char *out, const char *base, const char *key)
{
    snprintf(out, PATH_LEN, "%s.%s", base, key);
}

static int type_of(const json_t *spec)
{
    const char *t = json_string_value(json_object_get(spec, "type"));
    for (int i = 0; t != NULL && type_names[i] != NULL; ++i)
        if (strcmp(t, type_names[i]) == 0)
            return i;
    return -1;
}

static int is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return 1;
    if (!json_is_real(v))
        return 0;
    double d = json_real_value(v);
    return isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0; /* 2^53: exact in a Lua number */
}

static int matches_type(int type, const json_t *v)
{
    switch (type) {
    case T_STRING:
        return json_is_string(v);
    case T_NUMBER:
        return json_is_number(v);
    case T_INTEGER:
        return is_integral(v);
    case T_BOOLEAN:
        return json_is_boolean(v);
    case T_ARRAY:
        return json_is_array(v);
    case T_OBJECT:
        return json_is_object(v);
    default:
        return 0;
    }
}

/* Lua has one table type: an empty table converted to JSON is an object, but as an array setting it means []. */
static int empty_table_for_array(int type, const json_t *v)
{
    return type == T_ARRAY && json_is_object(v) && json_object_size(v) == 0;
}

static int same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

static void describe(const json_t *v, char *out, size_t outlen)
{
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, outlen, "%s", s != NULL ? s : "?");
    free(s);
}

/* ---- the SCHEMA itself ---- */

static int check_schema_map(const json_t *schema, const char *path, int depth, char *err, size_t errlen);

/* item = 1: an array's `items` spec, where required and default mean nothing */
static int check_spec(const json_t *spec, const char *path, int depth, int item, char *err, size_t errlen)
{
    static const char *const keys[] = {"type",   "required", "default", "min",         "max",
                                       "one_of", "items",    "fields",  "description", NULL};
    char p[PATH_LEN];
    const char *key;
    json_t *v;
    if (!json_is_object(spec))
        return fail(err, errlen, path, "a field spec must be a table {type = ..., ...}");
    if (depth > LG__POLICY_SCHEMA_MAX_DEPTH)
        return fail(err, errlen, path, "nested more than %d levels", LG__POLICY_SCHEMA_MAX_DEPTH);
    json_object_foreach((json_t *)spec, key, v)
    {
        int known = 0;
        for (int i = 0; keys[i] != NULL; ++i)
            known |= strcmp(keys[i], key) == 0;
        path_key(p, path, key);
        if (!known)
            return fail(err, errlen, p,
                        "unknown field-spec key (expected type, required, default, min, max, one_of, items, "
                        "fields, description)");
    }
    int type = type_of(spec);
    path_key(p, path, "type");
    if (type < 0)
        return fail(err, errlen, p, "must be one of string, number, integer, boolean, array, object");
    const json_t *req = json_object_get(spec, "required"), *def = json_object_get(spec, "default");
    const json_t *min = json_object_get(spec, "min"), *max = json_object_get(spec, "max");
    const json_t *one_of = json_object_get(spec, "one_of"), *items = json_object_get(spec, "items");
    const json_t *fields = json_object_get(spec, "fields"), *desc = json_object_get(spec, "description");
    if (desc != NULL && !json_is_string(desc))
        return fail(err, errlen, (path_key(p, path, "description"), p), "must be a string");
    if (req != NULL) {
        path_key(p, path, "required");
        if (!json_is_boolean(req))
            return fail(err, errlen, p, "must be a boolean");
        if (item)
            return fail(err, errlen, p, "not allowed in an array's items spec");
    }
    const int ranged = type == T_NUMBER || type == T_INTEGER || type == T_STRING || type == T_ARRAY;
    for (int i = 0; i < 2; ++i) {
        const json_t *bound = i == 0 ? min : max;
        if (bound == NULL)
            continue;
        path_key(p, path, i == 0 ? "min" : "max");
        if (!json_is_number(bound))
            return fail(err, errlen, p, "must be a number");
        if (!ranged)
            return fail(err, errlen, p, "only for number, integer, string (length) and array (item count) fields");
        if (type != T_NUMBER && type != T_INTEGER && (!is_integral(bound) || json_number_value(bound) < 0))
            return fail(err, errlen, p, "a length bound must be a non-negative integer");
    }
    if (min != NULL && max != NULL && json_number_value(min) > json_number_value(max))
        return fail(err, errlen, (path_key(p, path, "min"), p), "greater than max");
    if (one_of != NULL) {
        path_key(p, path, "one_of");
        if (type != T_STRING && type != T_NUMBER && type != T_INTEGER)
            return fail(err, errlen, p, "only for string, number and integer fields");
        if (!json_is_array(one_of) || json_array_size(one_of) == 0)
            return fail(err, errlen, p, "must be a non-empty array");
        size_t i;
        json_t *e;
        json_array_foreach(one_of, i, e)
        {
            if (!matches_type(type, e))
                return fail(err, errlen, p, "entry %zu is not a %s", i + 1, type_names[type]);
        }
    }
    if (items != NULL) {
        path_key(p, path, "items");
        if (type != T_ARRAY)
            return fail(err, errlen, p, "only for array fields");
        if (check_spec(items, p, depth + 1, 1, err, errlen) != 0)
            return -1;
    }
    if (fields != NULL) {
        path_key(p, path, "fields");
        if (type != T_OBJECT)
            return fail(err, errlen, p, "only for object fields");
        if (check_schema_map(fields, p, depth + 1, err, errlen) != 0)
            return -1;
    }
    if (def != NULL) {
        path_key(p, path, "default");
        if (item)
            return fail(err, errlen, p, "not allowed in an array's items spec");
        if (json_is_true(req))
            return fail(err, errlen, p, "a required setting cannot have a default");
        /* the default must itself satisfy the spec: checked by applying it */
        json_t *scratch = json_object();
        json_t *wrapper = json_object();
        json_object_set((json_t *)wrapper, "value", (json_t *)spec);
        json_t *filled = NULL;
        char sub[256];
        int rc = lg__policy_schema_apply(wrapper, scratch, "default", &filled, sub, sizeof(sub));
        json_decref(filled);
        json_decref(wrapper);
        json_decref(scratch);
        if (rc != 0)
            return fail(err, errlen, p, "does not satisfy its own spec (%s)", sub);
    }
    return 0;
}

static int check_schema_map(const json_t *schema, const char *path, int depth, char *err, size_t errlen)
{
    char p[PATH_LEN];
    const char *key;
    json_t *spec;
    if (!json_is_object(schema))
        return fail(err, errlen, path, "must be a table of setting name -> field spec");
    json_object_foreach((json_t *)schema, key, spec)
    {
        path_key(p, path, key);
        if (check_spec(spec, p, depth, 0, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int lg__policy_schema_check(const json_t *schema, char *err, size_t errlen)
{
    return check_schema_map(schema, "SCHEMA", 0, err, errlen);
}

/* ---- settings against the SCHEMA ---- */

static int apply_map(const json_t *schema, const json_t *settings, const char *path, json_t *out, char *err, size_t errlen);

/* Levenshtein distance of short names, for "did you mean" */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; ++j)
        row[j] = j;
    for (size_t i = 1; i <= la; ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; ++j) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Check value against spec; returns a new reference to the value to store (defaults filled inside), or NULL. */
static json_t *apply_value(const json_t *spec, const json_t *value, const char *path, char *err, size_t errlen)
{
    char p[PATH_LEN], shown[96];
    int type = type_of(spec);
    if (empty_table_for_array(type, value))
        return json_array();
    if (!matches_type(type, value)) {
        fail(err, errlen, path, "expected %s%s", type == T_ARRAY || type == T_INTEGER ? "an " : "a ", type_names[type]);
        return NULL;
    }
    const json_t *min = json_object_get(spec, "min"), *max = json_object_get(spec, "max");
    const json_t *one_of = json_object_get(spec, "one_of");
    double measure = 0;
    const char *what = "";
    if (type == T_NUMBER || type == T_INTEGER) {
        measure = json_number_value(value);
    } else if (type == T_STRING) {
        measure = (double)json_string_length(value);
        what = " bytes long";
    } else if (type == T_ARRAY) {
        measure = (double)json_array_size(value);
        what = " items";
    }
    if (min != NULL && measure < json_number_value(min)) {
        describe(min, shown, sizeof(shown));
        fail(err, errlen, path, "must be at least %s%s", shown, what);
        return NULL;
    }
    if (max != NULL && measure > json_number_value(max)) {
        describe(max, shown, sizeof(shown));
        fail(err, errlen, path, "must be at most %s%s", shown, what);
        return NULL;
    }
    if (one_of != NULL) {
        size_t i;
        json_t *e;
        int found = 0;
        json_array_foreach(one_of, i, e) found |= same_value(e, value);
        if (!found) {
            char list[256];
            describe(one_of, list, sizeof(list));
            fail(err, errlen, path, "must be one of %s", list);
            return NULL;
        }
    }
    if (type == T_INTEGER && json_is_real(value))
        return json_integer((json_int_t)json_real_value(value));
    if (type == T_ARRAY) {
        const json_t *items = json_object_get(spec, "items");
        if (items == NULL)
            return json_deep_copy(value);
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(value, i, e)
        {
            snprintf(p, sizeof(p), "%s[%zu]", path, i);
            json_t *v = apply_value(items, e, p, err, errlen);
            if (v == NULL) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, v);
        }
        return out;
    }
    if (type == T_OBJECT) {
        const json_t *fields = json_object_get(spec, "fields");
        if (fields == NULL) /* free-form object */
            return json_deep_copy(value);
        json_t *out = json_object();
        if (apply_map(fields, value, path, out, err, errlen) != 0) {
            json_decref(out);
            return NULL;
        }
        return out;
    }
    return json_deep_copy(value);
}

static int apply_map(const json_t *schema, const json_t *settings, const char *path, json_t *out, char *err, size_t errlen)
{
    char p[PATH_LEN];
    const char *key;
    json_t *v, *spec;
    if (settings != NULL) {
        json_object_foreach((json_t *)settings, key, v)
        {
            path_key(p, path, key);
            spec = json_object_get(schema, key);
            if (spec == NULL) {
                const char *near = NULL, *name;
                size_t best = 3; /* suggest only a close name */
                json_t *unused;
                json_object_foreach((json_t *)schema, name, unused)
                {
                    size_t d = edit_distance(key, name);
                    if (d < best) {
                        best = d;
                        near = name;
                    }
                }
                if (near != NULL)
                    return fail(err, errlen, p, "unknown setting (did you mean \"%s\"?)", near);
                return fail(err, errlen, p, "unknown setting");
            }
            if (json_is_null(v)) /* null = absent, as everywhere in the config */
                continue;
            json_t *checked = apply_value(spec, v, p, err, errlen);
            if (checked == NULL)
                return -1;
            json_object_set_new(out, key, checked);
        }
    }
    json_object_foreach((json_t *)schema, key, spec)
    {
        if (json_object_get(out, key) != NULL)
            continue;
        path_key(p, path, key);
        if (json_is_true(json_object_get(spec, "required")))
            return fail(err, errlen, p, "missing required setting");
        const json_t *def = json_object_get(spec, "default");
        if (def != NULL) {
            json_t *filled = apply_value(spec, def, p, err, errlen);
            if (filled == NULL)
                return -1;
            json_object_set_new(out, key, filled);
        } else if (type_of(spec) == T_OBJECT && json_object_get(spec, "fields") != NULL) {
            /* an absent optional object still gets its fields' defaults; when one of its fields is required the
             * object simply stays absent */
            json_t *sub = json_object();
            char ignored[8];
            if (apply_map(json_object_get(spec, "fields"), NULL, p, sub, ignored, sizeof(ignored)) == 0 &&
                json_object_size(sub) != 0)
                json_object_set_new(out, key, sub);
            else
                json_decref(sub);
        }
    }
    return 0;
}

int lg__policy_schema_apply(const json_t *schema, const json_t *settings, const char *path, json_t **filled, char *err,
                            size_t errlen)
{
    *filled = NULL;
    if (settings != NULL && !json_is_object(settings))
        return fail(err, errlen, path, "expected an object");
    json_t *out = json_object();
    if (apply_map(schema, settings, path, out, err, errlen) != 0) {
        json_decref(out);
        return -1;
    }
    *filled = out;
    return 0;
}
