/* SPDX-License-Identifier: MIT */
/*
 * Input-token estimates where no provider count is available (see token_estimate.c for the method and its bias).
 */
#ifndef LG_HTTP_TOKEN_ESTIMATE_H
#define LG_HTTP_TOKEN_ESTIMATE_H

#include <stdint.h>
#include <jansson.h>

/** Estimated input tokens of an Anthropic Messages request body (system, messages, tools, tool_choice): a conservative
 * (high-side) count, never 0. Pure; any JSON is accepted (unknown shapes count by their string content). */
int64_t lg_estimate_anthropic_input_tokens(const json_t *body);

#endif
