/* SPDX-License-Identifier: MIT */
/*
 * The conformance fixture provider: every tool, resource, template, prompt
 * and completion the official MCP conformance suite (0.1.16) expects, with
 * the reference server's exact texts and bytes (tests/conformance/README.md). Served as the
 * virtual server "conformance" when mcp.conformance_fixtures is on. Stateless
 * (state pointer unused); timers run on the calling worker's loop.
 */
#ifndef LG_MCP_FIXTURES_H
#define LG_MCP_FIXTURES_H

#include <jansson.h>
#include "mcp/registry.h"

extern const lg_mcp_provider_ops_t lg_mcp_fixtures_ops;
/** The 2026-07-28 fixtures (fixtures_mrtr.c): stateless-era diagnostic tools and input-required results; empty for
 * legacy sessions. Registered right after lg_mcp_fixtures_ops, unprefixed. */
extern const lg_mcp_provider_ops_t lg_mcp_fixtures_mrtr_ops;

/** Capabilities the fixtures need: tools{listChanged}, resources{subscribe,listChanged}, prompts{listChanged},
 * logging, completions. Borrowed, static. */
const json_t *lg_mcp_fixtures_capabilities(void);

/** Register the fixtures' registry builder (mcp.conformance_fixtures: /mcp/conformance, and /mcp unless another
 * unprefixed provider is there). Main, after every other MCP builder. */
void lg_mcp_fixtures_register(void);

/** Delay between the notifications of test_tool_with_logging / test_tool_with_progress (ms). */
#define LG_MCP_FIXTURE_STEP_MS 50

#endif
