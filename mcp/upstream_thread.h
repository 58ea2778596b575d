/* SPDX-License-Identifier: MIT */
/*
 * The MCP upstream thread: one dedicated thread with its own uv loop that owns
 * every federated upstream's I/O (stdio children, the HTTP client), plus
 * per-worker-loop mailboxes so results travel back to the worker loop that
 * owns the MCP call. Both directions are mutex-guarded FIFO queues woken by a
 * uv_async_t; jobs run in posting order.
 */
#ifndef LG_MCP_UPSTREAM_THREAD_H
#define LG_MCP_UPSTREAM_THREAD_H

#include <uv.h>
#include "upstream/client.h"

typedef void (*lg_mcp_job_fn)(void *arg);

/** Start the thread (idempotent, thread-safe). Returns 0, or -1 if the thread could not be created. */
int lg__mcp_upthread_start(void);
/**
 * Run fn(arg) on the upstream thread, after every job posted before it. Any thread. Returns 0, or -1 when the thread is
 * not running (fn is not called; the caller still owns arg).
 */
int lg__mcp_upthread_post(lg_mcp_job_fn fn, void *arg);
/** The upstream loop (valid while running); only touch it from the upstream thread. */
uv_loop_t *lg__mcp_upthread_loop(void);
/** The HTTP client of the upstream loop, created on first use. Upstream thread only. */
lg_upclient_t *lg__mcp_upthread_client(void);

/**
 * Stop: runs on_stop(arg) on the upstream thread as the last job; on_stop must close (or start closing) every handle it
 * owns. The thread then destroys the HTTP client, closes its own handles, runs the loop until nothing is left and exits;
 * this call joins it. Later posts fail. Call from a non-worker, non-upstream thread (main), once.
 */
void lg__mcp_upthread_stop(lg_mcp_job_fn on_stop, void *arg);

/**
 * Make sure loop has a mailbox. Must run ON loop's thread (uv_async_init is not thread-safe): a provider op calls it on
 * the worker before posting work whose result comes back here. The async handle is unref'd so it never keeps the loop
 * alive. Worker loops live as long as the process; a loop that is closed must call lg__mcp_mailbox_close first.
 */
void lg__mcp_mailbox_prepare(uv_loop_t *loop);
/** Close loop's mailbox (on loop's thread, before the loop is closed: tests, worker teardown); later posts fail. */
void lg__mcp_mailbox_close(uv_loop_t *loop);
/**
 * Run fn(arg) on loop's thread, in posting order. Any thread. Returns 0, or -1 when loop has no (open) mailbox: fn is
 * not called and the caller still owns arg.
 */
int lg__mcp_mailbox_post(uv_loop_t *loop, lg_mcp_job_fn fn, void *arg);

#endif
