/* SPDX-License-Identifier: MIT */
/*
 * Federation of upstream MCP servers ("mcp.servers" in the config): one
 * provider per upstream in the default registry (/mcp), names prefixed
 * "<prefix>__<name>" unless switched off, virtual servers (/mcp/<name>)
 * exposing curated tool subsets, a circuit breaker per upstream, and
 * list_changed propagation. All upstream I/O runs on the MCP upstream thread
 * (upstream_thread.h); provider ops post jobs there and their results come
 * back on the call's worker loop.
 */
#ifndef LG_MCP_FEDERATION_H
#define LG_MCP_FEDERATION_H

#include <stddef.h>

struct lg_config;

/** Register the registry builder (lg_mcp_registry_set_builder). Call once from main before the workers start. */
void lg_mcp_federation_register(void);

/**
 * Bring the running upstreams in line with conf (start new ones, keep unchanged ones — same name and settings — running,
 * retire removed or changed ones once no registry uses them). Idempotent per config; thread-safe. main calls it at
 * start-up (so stdio servers are up before the first client) and after a reload; the builder also calls it lazily.
 */
void lg_mcp_federation_apply(const struct lg_config *conf);

/**
 * State of every configured upstream, for the metrics collector and the admin view: name, state ("up", "down",
 * "circuit_open"), pid (stdio child, 0 when none/HTTP) and the number of tools it currently offers. Any thread; fn runs
 * under the federation lock (keep it short, do not call back into the federation).
 */
void lg_mcp_federation_foreach(void (*fn)(const char *name, const char *state, int pid, size_t tools, void *arg), void *arg);

/** Register the /metrics collector of the upstreams (llmgate_mcp_upstream_up, _circuit_open, _tools). Main, once,
 * before the workers start. */
void lg_mcp_federation_register_metrics(void);

/**
 * Stop every upstream (stdio: close stdin, 2 s, SIGTERM, 2 s, SIGKILL), fail calls still in flight, and join the
 * upstream thread. Call from main once, after the workers drained (lg_server_shutdown). Blocks up to ~5 s.
 */
void lg_mcp_federation_shutdown(void);

/** Replace the list_changed / resources-updated notifiers (NULL = the server's lg_mcp_notify_*): stdio mode delivers
 * them to its stdout; tests record them. Called on the upstream thread: they must be thread-safe. */
void lg__mcp_federation_set_notifiers(void (*list_changed)(const char *server, const char *kind), void (*updated)(const char *uri));
/* ---- tests ---- */

/** Backoff and grace overrides in ms (0 = default): first restart delay, max restart delay, first-start grace. */
void lg__mcp_federation_set_timing(unsigned backoff_min_ms, unsigned backoff_max_ms, unsigned start_grace_ms);

#endif
