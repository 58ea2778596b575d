/* SPDX-License-Identifier: MIT */
/*
 * Splice writer: copy a JSON object from its original bytes into a bounded
 * lg_buf_t with a few members replaced, removed or appended, without building
 * a tree; plus the small JSON writers (escaped strings, numbers) such edits
 * need. See src/json/README.md.
 */
#ifndef LG_JSON_SPLICE_H
#define LG_JSON_SPLICE_H

#include <stddef.h>
#include <stdint.h>
#include "core/util.h"
#include "json/scan.h"

typedef enum {
    LG_JSON_EDIT_SET,     /* replace the member's value (first occurrence; later duplicates dropped), append if absent */
    LG_JSON_EDIT_REPLACE, /* replace the member's value if present (later duplicates dropped); nothing if absent */
    LG_JSON_EDIT_REMOVE,  /* drop every member with this key */
    LG_JSON_EDIT_APPEND,  /* add the member at the end, whether or not the key exists */
} lg_json_edit_op_t;

/**
 * One edit. key is the plain (unescaped) member name, key_len bytes; it is written JSON-escaped. value is raw JSON
 * text written verbatim (the caller guarantees it is one valid JSON value; unused for REMOVE). Borrowed.
 */
typedef struct lg_json_edit {
    lg_json_edit_op_t op;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} lg_json_edit_t;

/** Most edits one lg_json_splice call accepts. */
#define LG_JSON_MAX_EDITS 32

/**
 * Append to out the object obj (an LG_JSON_OBJECT span of a validated document) with edits applied: members keep
 * their order and bytes (insignificant whitespace between members is dropped); members matched by a SET/REPLACE/
 * REMOVE edit are rewritten or dropped; SET edits without a match and APPEND edits follow at the end, in edit order.
 * When several edits name the same key the first one wins. Returns 0, or -1 when obj is not an object, n exceeds
 * LG_JSON_MAX_EDITS, or out's cap would be exceeded (out is then rolled back to its length before the call).
 */
int lg_json_splice(lg_buf_t *out, lg_json_span_t obj, const lg_json_edit_t *edits, size_t n);

/** Append s[0..n) as a JSON string (quotes, escapes per RFC 8259; bytes >= 0x80 copied as they are). 0 or -1 (cap). */
int lg_json_write_string(lg_buf_t *out, const char *s, size_t n);
/** Append an integer. 0 or -1 (cap). */
int lg_json_write_int(lg_buf_t *out, int64_t v);
/** Append a finite double with up to 17 significant digits (%.17g, shortest form that round-trips is not promised); a
 * non-finite value is written as 0. 0 or -1 (cap). */
int lg_json_write_double(lg_buf_t *out, double v);

#endif
