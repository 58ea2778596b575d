/* SPDX-License-Identifier: MIT */
/*
 * What the translating ingress skins (Anthropic Messages, OpenAI Responses) share: the gateway's routing fields,
 * which they copy into the internal chat request unchanged.
 */
#ifndef LG_HTTP_INGRESS_COMMON_H
#define LG_HTTP_INGRESS_COMMON_H

#include <jansson.h>

/** Copy the gateway routing fields (models, provider, route, transforms, plugins, usage, debug, session_id, trace) of
 * in into out as they are (borrowed references added). */
void lg__ingress_copy_routing_fields(const json_t *in, json_t *out);

#endif
