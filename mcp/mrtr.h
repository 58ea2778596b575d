/* SPDX-License-Identifier: MIT */
/*
 * requestState for input-required results (2026-07-28 MRTR, mcp.md §10):
 * the state a server hands the client and gets back verbatim on the retry.
 * The client controls those bytes, so the state is sealed: base64url(JSON)
 * "." base64url(HMAC-SHA256(process secret, key id | JSON)), with an expiry
 * inside the JSON. Opening checks the MAC (constant time), the key binding
 * and the expiry; anything else is refused. The secret is random per process
 * (a restart invalidates outstanding states: the client simply starts over).
 */
#ifndef LG_MCP_MRTR_H
#define LG_MCP_MRTR_H

#include <stddef.h>
#include <jansson.h>

/** How long a sealed state stays valid. */
#define LG_MCP_MRTR_TTL_S 600

/** Seal state (object, borrowed) for key_id (NULL = anonymous). Returns malloc'd text. */
char *lg_mcp_mrtr_seal(const json_t *state, const char *key_id);
/** Open text (len bytes) sealed for key_id: the state object (new reference), or NULL if it is not ours, was altered,
 * belongs to another key or expired. Never reads past len; refuses text above 64 KiB. */
json_t *lg_mcp_mrtr_open(const char *text, size_t len, const char *key_id);

/** Tests: fix the clock (unix seconds; 0 = real time). */
void lg__mcp_mrtr_set_clock(long long now_s);

#endif
