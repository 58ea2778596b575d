/* SPDX-License-Identifier: MIT */
/*
 * The ingress skins (the lg_skin_t seam of src/pipeline/skin.h): one per
 * client wire format. A new format (the Responses API) is one more skin_*.c
 * and one more row here; attempts and relay do not change.
 */
#ifndef LG_HTTP_SKINS_H
#define LG_HTTP_SKINS_H

#include <jansson.h>
#include "pipeline/skin.h"

extern const lg_skin_t lg_skin_openai_chat;        /* POST /v1/chat/completions */
extern const lg_skin_t lg_skin_openai_completions; /* POST /v1/completions */
extern const lg_skin_t lg_skin_openai_embeddings;  /* POST /v1/embeddings */
extern const lg_skin_t lg_skin_anthropic_messages; /* POST /v1/messages */

/** The skin of an OpenAI route kind (lg_api_kind_t). */
const lg_skin_t *lg_skin_for_kind(int kind);

/**
 * New OpenAI object for kind with the gateway's header members (id, object, created, model, provider) followed by
 * inner's members except the ones the gateway owns (those five and usage). chunk selects the `object` of a stream
 * chunk. inner is borrowed and may be NULL.
 */
json_t *lg_skin_openai_wrap(lg_api_kind_t kind, const lg_skin_info_t *info, const json_t *inner, int chunk);

#endif
