/* SPDX-License-Identifier: MIT */
/*
 * The built-in MCP tools of /mcp, prefixed "llmgate": `llmgate__chat` (a
 * non-streaming chat completion through the gateway's own router, policies
 * and the calling key's limits) and `llmgate__list_models` (the catalog of the
 * serving config snapshot, as GET /v1/models has it).
 *
 * chat is an internal HTTP call from the worker's upstream client to the
 * gateway's first cleartext listener, POST /v1/chat/completions, with
 * `x-llmgate-internal: <lg_gate_internal_token()>` and `x-llmgate-key-id:
 * <calling key id>`: the gate authenticates it as the calling key, so its
 * model allow-list, rate limits and credit apply, and the usage lands in its
 * ledger like any other request.
 */
#ifndef LG_MCP_BUILTIN_H
#define LG_MCP_BUILTIN_H

#include <jansson.h>
#include "mcp/registry.h"
#include "runtime/snapshot.h"

/** Add the built-in provider to every /mcp registry (lg_mcp_registry_set_builder). Main, before the workers start. */
void lg_mcp_builtin_register(void);

/**
 * Stdio mode (no HTTP workers): list_models answers from snap (a reference is taken; NULL releases it) and chat
 * answers isError "chat needs the HTTP gateway". Call before the first registry is built.
 */
void lg_mcp_builtin_set_standalone(lg_snapshot_t *snap);

/** 1 if an upstream's sampling/createMessage may be answered by the router for call c (mcp.sampling_model is set and
 * the HTTP gateway runs). */
int lg_mcp_builtin_can_sample(lg_mcp_call_t *c);

/**
 * Answer a sampling/createMessage (params borrowed) with a chat completion of mcp.sampling_model through the gateway's
 * own router, as the call's key (its allow-list, limits, credit and ledger apply). reply runs once on the call's loop
 * with a CreateMessageResult or a JSON-RPC error object (both borrowed).
 */
void lg_mcp_builtin_sample(lg_mcp_call_t *c, const json_t *params, lg_mcp_reply_fn reply, void *ud);

#endif
