/* SPDX-License-Identifier: MIT */
/*
 * Checks on the internal normal form (OpenAI chat.completion.chunk bodies and
 * responses as plugins hand them to the host): a chunk or answer the client
 * could not trust is an upstream failure, never forwarded as it is. Pure
 * functions over jansson values; no I/O.
 */
#ifndef LG_PIPELINE_NORMAL_FORM_H
#define LG_PIPELINE_NORMAL_FORM_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "llmgate/plugin.h"

/** Per-chunk facts the relay and settlement need. */
typedef struct lg_chunk_facts {
    int has_content;    /* anything beyond a role/empty delta: reaching the client commits the stream */
    int64_t text_chars; /* bytes of text content (completion-token estimate when the upstream sends no usage) */
    const char *finish; /* finish_reason of the last choice that has one (borrowed from the chunk), NULL if none */
} lg_chunk_facts_t;

/**
 * Validate one stream chunk for kind: `choices` an array of objects; each choice's `index` an integer if present;
 * `finish_reason` a string or null; chat: `delta` an object whose `content`/`role`/`refusal`/`reasoning` are strings
 * or null and `tool_calls` an array; completions: `text` a string or null. Returns 0 and fills facts, or LG_EBADRESPONSE
 * with the reason in why (e.g. "choices[0].delta.content: expected string, got number").
 */
int lg_chunk_check(lg_api_kind_t kind, const json_t *chunk, lg_chunk_facts_t *facts, char *why, size_t whylen);

/**
 * Validate a whole (non-stream) answer: chat/completions need a non-empty `choices` array of objects with
 * `message` (chat, `content` string or null) or `text` (completions), `finish_reason` string or null; embeddings
 * need a `data` array. Returns 0 or LG_EBADRESPONSE with why.
 */
int lg_response_check(lg_api_kind_t kind, const json_t *resp, char *why, size_t whylen);

#endif
