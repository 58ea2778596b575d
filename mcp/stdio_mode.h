/* SPDX-License-Identifier: MIT */
/*
 * `llmgate mcp --stdio [--config FILE]`: the gateway's MCP tool set (conformance fixtures when enabled, federated
 * upstreams, built-in tools) served over stdin/stdout as newline-delimited JSON-RPC, for desktop clients that launch
 * local MCP servers (Claude Desktop's claude_desktop_config.json). One implicit session; stdout carries only protocol
 * messages, logs go to stderr; exits 0 on stdin EOF (after in-flight calls finish, at most 30 s).
 *
 * Chat: the router and HTTP workers do not run in this mode, so `llmgate__chat` answers isError "chat needs the HTTP
 * gateway" (run `llmgate --config FILE` and point the client at /mcp, e.g. through mcp-remote); `llmgate__list_models`
 * answers from the config's catalog.
 */
#ifndef LG_MCP_STDIO_MODE_H
#define LG_MCP_STDIO_MODE_H

/** Entry point from main when argv[1] is "mcp". Returns the process exit code. */
int lg_mcp_stdio_main(int argc, char **argv);

#endif
