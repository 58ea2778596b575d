/* SPDX-License-Identifier: MIT */
/*
 * Compact JSON text of a jansson tree into a bounded lg_buf_t, for the paths
 * that still translate (normal-form chunks from the Anthropic and Gemini
 * plugins): the same text as json_dumps(JSON_COMPACT | JSON_REAL_PRECISION(15))
 * without its per-fragment callbacks and allocations.
 */
#ifndef LG_JSON_TREE_H
#define LG_JSON_TREE_H

#include <jansson.h>
#include "core/util.h"

/** Append v as compact JSON (members in jansson's order; reals with 15 significant digits, always with a '.' or an
 * exponent). Nesting deeper than 256 is refused. Returns 0, or -1 when out's cap is exceeded (rolled back). */
int lg_json_write_tree(lg_buf_t *out, const json_t *v);

/** Append the members of object o (without braces), each preceded by a comma, skipping the names in skip (a
 * NULL-terminated list, may be NULL). For splicing a tree's members after members written by hand. 0 or -1. */
int lg_json_write_members(lg_buf_t *out, const json_t *o, const char *const *skip);

#endif
