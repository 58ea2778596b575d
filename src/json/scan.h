/* SPDX-License-Identifier: MIT */
/*
 * Allocation-free JSON scanner over a byte span: strict RFC 8259 validation
 * (grammar, UTF-8, lone surrogates, depth limit), then navigation by spans
 * into the original bytes (find a member, iterate members and elements,
 * unescape a string, read numbers). Used on the hot path where the gateway
 * forwards bytes instead of building a jansson tree. See src/json/README.md.
 */
#ifndef LG_JSON_SCAN_H
#define LG_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

/** Nesting limit of lg_json_validate (objects + arrays). Deeper documents are invalid. */
#define LG_JSON_MAX_DEPTH 128

/** Type of a value span. LG_JSON_NONE marks "no value" (absent member, end of iteration). */
typedef enum {
    LG_JSON_NONE = 0,
    LG_JSON_OBJECT,
    LG_JSON_ARRAY,
    LG_JSON_STRING,
    LG_JSON_NUMBER,
    LG_JSON_TRUE,
    LG_JSON_FALSE,
    LG_JSON_NULL,
} lg_json_type_t;

/**
 * A JSON value inside a caller's buffer: p..p+len are exactly the value's bytes (a string span includes its quotes,
 * a container span its brackets). Borrowed: valid as long as the buffer is. A zeroed span is LG_JSON_NONE.
 */
typedef struct lg_json_span {
    const char *p;
    size_t len;
    lg_json_type_t type;
} lg_json_span_t;

/** Where and why validation failed. what is a static string ("unexpected character", "invalid UTF-8", …). */
typedef struct lg_json_error {
    size_t offset; /* byte offset of the failure in the validated buffer */
    const char *what;
} lg_json_error_t;

/**
 * Validate p..p+len as one complete JSON text (any value, optional surrounding whitespace) per RFC 8259: number
 * grammar, string escapes, control characters, well-formed UTF-8 (no overlongs, no surrogate code points, nothing
 * above U+10FFFF), \u escapes forming valid code points (a high surrogate must be followed by a low one), nesting
 * at most LG_JSON_MAX_DEPTH. Never reads outside the span, never allocates. Returns 0 and sets *root (may be NULL)
 * to the value without its whitespace, or -1 and fills *err (may be NULL).
 */
int lg_json_validate(const char *p, size_t len, lg_json_span_t *root, lg_json_error_t *err);

/**
 * Validate the one JSON value that starts at p (after optional whitespace) and ends before end, with depth levels of
 * nesting already used by the caller (for LG_JSON_MAX_DEPTH); whatever follows the value is not looked at. For callers
 * that walk a document's outer structure themselves and validate the values inside in the same pass. Returns 0 and
 * sets *out (the value without whitespace), or -1 and fills *err (offset relative to p).
 */
int lg_json_validate_value(const char *p, const char *end, int depth, lg_json_span_t *out, lg_json_error_t *err);

/** Span of the (already validated) value starting at p, which lies before end. Type from the first byte. */
lg_json_span_t lg_json_span_at(const char *p, const char *end);

/**
 * Iterator over the members of an object span or the elements of an array span. The span must come from a
 * validated document (lg_json_validate or a span found inside one); otherwise results are unspecified but reads
 * stay inside the span.
 */
typedef struct lg_json_iter {
    const char *p, *end;
} lg_json_iter_t;

/** Start iterating container (an LG_JSON_OBJECT or LG_JSON_ARRAY span; anything else iterates nothing). */
void lg_json_iter_init(lg_json_iter_t *it, lg_json_span_t container);
/** Next object member: 1 with *key (a string span, quotes included) and *val, 0 at the end. */
int lg_json_iter_member(lg_json_iter_t *it, lg_json_span_t *key, lg_json_span_t *val);
/** Next array element: 1 with *val, 0 at the end. */
int lg_json_iter_element(lg_json_iter_t *it, lg_json_span_t *val);

/** 1 if the string span key, unescaped, equals s[0..n). */
int lg_json_key_eq(lg_json_span_t key, const char *s, size_t n);
/**
 * Find member name (n bytes, compared with the unescaped key) in object obj. Duplicate keys: the LAST one wins, as
 * in jansson. Returns 1 and sets *val, or 0 (and *val = NONE span) when absent or obj is not an object.
 */
int lg_json_find(lg_json_span_t obj, const char *name, size_t n, lg_json_span_t *val);
/** lg_json_find with a NUL-terminated name. */
int lg_json_get(lg_json_span_t obj, const char *name, lg_json_span_t *val);
/** Number of members or elements of a container span (0 for scalars). O(len). */
size_t lg_json_count(lg_json_span_t container);

/** Raw bytes between the quotes of a string span (escapes not decoded); *n set to their length. */
const char *lg_json_str_raw(lg_json_span_t str, size_t *n);
/** 1 if the string span contains no escape, so lg_json_str_raw is already its value. */
int lg_json_str_plain(lg_json_span_t str);
/**
 * Decode string span str into out (UTF-8, NUL-terminated, cap bytes including the NUL). *outlen (may be NULL) gets
 * the decoded length. Returns 0, or -1 when str is not a string or the value plus NUL needs more than cap bytes
 * (out then holds a truncated prefix, still NUL-terminated when cap > 0). \u0000 decodes to a NUL byte.
 */
int lg_json_unescape(lg_json_span_t str, char *out, size_t cap, size_t *outlen);
/** Decoded length of a string span in bytes (what lg_json_unescape writes before the NUL). */
size_t lg_json_str_len(lg_json_span_t str);

/** 1 if the number span has no fraction and no exponent (jansson's "integer"). */
int lg_json_is_integer(lg_json_span_t num);
/** Integer value of an integer number span; -1 when it is not one or does not fit int64_t. */
int lg_json_int64(lg_json_span_t num, int64_t *out);
/** Value of any number span as a double (strtod rounding); -1 when not a number or not finite. */
int lg_json_double(lg_json_span_t num, double *out);

#endif
