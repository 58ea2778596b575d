/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers for how the gateway names what it merges (no state, no I/O):
 *  - list cursors: one opaque token naming the provider, the provider's own
 *    cursor and how many of that provider page's items were already handed
 *    out, so one merged page can span several providers;
 *  - resource URI namespacing: a prefixed provider's URIs are exposed as
 *    "mcp://<prefix>/<original>" (reversible: the prefix never holds '/'),
 *    so identical URIs of two upstreams stay distinct and reads and
 *    subscriptions route back;
 *  - tool-name patterns of virtual servers ("github__*", exact names).
 */
#ifndef LG_MCP_NAMING_H
#define LG_MCP_NAMING_H

#include <stddef.h>

/** Scheme + authority marker of a namespaced URI. */
#define LG_MCP_URI_NS "mcp://"

/** Position in a merged list: provider index, its name (checked on decode), the provider cursor (NULL = first page)
 * and the number of items of that provider page already returned. */
typedef struct lg_mcp_cursor {
    size_t index;
    size_t skip;
    char *provider; /* owned by the decoder's caller */
    char *pcursor;  /* owned; NULL = the provider's first page */
} lg_mcp_cursor_t;

/** Encode (malloc'd base64url text). provider and pcursor may be NULL. */
char *lg_mcp_cursor_encode(size_t index, const char *provider, const char *pcursor, size_t skip);
/** Decode a client's cursor; 0 on success (free with lg_mcp_cursor_dispose), -1 if it is not one of ours. Never reads
 * past len; cursors above 16 KiB are rejected. */
int lg_mcp_cursor_decode(const char *text, size_t len, lg_mcp_cursor_t *out);
void lg_mcp_cursor_dispose(lg_mcp_cursor_t *c);

/** "mcp://<prefix>/<uri>" (malloc'd). */
char *lg_mcp_uri_namespace(const char *prefix, const char *uri);
/**
 * Split a namespaced URI: returns 1 and sets *prefix and *prefix_len (inside uri) and *rest (the provider's own URI) when
 * uri has the form "mcp://PREFIX/REST" with a PREFIX of [A-Za-z0-9_.-]{1,64}; 0 otherwise (a plain URI).
 */
int lg_mcp_uri_split(const char *uri, const char **prefix, size_t *prefix_len, const char **rest);

/** Virtual-server tool pattern: "name" exact, "pre*" prefix match. */
int lg_mcp_pattern_match(const char *pattern, const char *name);
/** 1 if any of the NULL-terminated patterns takes name (NULL patterns = everything). */
int lg_mcp_patterns_match(char *const *patterns, const char *name);

#endif
