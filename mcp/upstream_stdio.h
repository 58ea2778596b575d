/* SPDX-License-Identifier: MIT */
/*
 * stdio transport towards one federated MCP server: the child process
 * (uv_spawn, own process group), newline-delimited JSON-RPC on its
 * stdin/stdout with a line cap, its stderr relayed line by line to the
 * gateway log (rate-limited), and the graceful stop sequence
 * (close stdin -> 2 s -> SIGTERM -> 2 s -> SIGKILL). Message-level only: the
 * MCP lifecycle lives in federation.c. Upstream thread only.
 */
#ifndef LG_MCP_UPSTREAM_STDIO_H
#define LG_MCP_UPSTREAM_STDIO_H

#include <stddef.h>
#include <jansson.h>
#include <uv.h>

#define LG_MCP_STDIO_MAX_LINE ((size_t)4 << 20)

typedef struct lg_mcp_stdio lg_mcp_stdio_t;

typedef struct lg_mcp_stdio_opts {
    const char *name;       /* upstream name: log module "mcp/<name>" */
    const char *command;    /* executable, looked up in PATH */
    char *const *args;      /* NULL-terminated arguments after argv[0]; may be NULL */
    char *const *env;       /* NULL-terminated "NAME=value" overrides on top of the gateway's environment; may be NULL */
    const char *cwd;        /* may be NULL */
    size_t max_line_bytes;  /* 0 = LG_MCP_STDIO_MAX_LINE; a longer stdout line kills the child */
    uint32_t stop_grace_ms; /* each stop step (stdin closed -> SIGTERM -> SIGKILL); 0 = 2000 */
} lg_mcp_stdio_opts_t;

typedef struct lg_mcp_stdio_callbacks {
    /** One JSON object read from stdout (stolen). Not called after stop. */
    void (*on_message)(void *ud, json_t *msg);
    /** The child is gone (exit, signal, broken framing); why is one printable line. Called at most once, never after
     * stop; the transport frees itself afterwards and must not be used again. */
    void (*on_closed)(void *ud, const char *why);
} lg_mcp_stdio_callbacks_t;

/** Spawn. Returns the transport, or NULL with err filled (e.g. "spawn npx: no such file or directory"). */
lg_mcp_stdio_t *lg__mcp_stdio_spawn(uv_loop_t *loop, const lg_mcp_stdio_opts_t *opts, const lg_mcp_stdio_callbacks_t *cb, void *ud,
                                    char *err, size_t errlen);
/** Write one message (borrowed) as a line. Returns 0, or -1 when stdin is closed or the write backlog is over its cap. */
int lg__mcp_stdio_send(lg_mcp_stdio_t *s, const json_t *msg);
/** The child's pid (also its process group id). */
int lg__mcp_stdio_pid(const lg_mcp_stdio_t *s);
/** Stop the child gracefully; no callback follows; the transport frees itself once the child is reaped. */
void lg__mcp_stdio_stop(lg_mcp_stdio_t *s);
/** Kill the child now (SIGKILL to its group); on_closed follows with why. For broken upstreams (timeouts on init). */
void lg__mcp_stdio_kill(lg_mcp_stdio_t *s, const char *why);

#endif
