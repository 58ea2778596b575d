/* SPDX-License-Identifier: MIT */
/*
 * One asynchronous Redis connection on a libuv loop (hiredis async API with
 * our own uv_poll glue). Owns: the connection lifecycle (an explicit state
 * machine with reconnect and exponential backoff), AUTH/SELECT on every
 * connect, a per-command deadline, and server-side scripts sent as EVALSHA
 * with a transparent EVAL fallback when the server does not know the script
 * (first use, SCRIPT FLUSH, restart).
 *
 * Never blocks the loop: connect, writes and reads are non-blocking; the host
 * must be an IP literal (resolve names before, off the loop). Commands are
 * pipelined: callers issue them back to back and replies come in order.
 *
 * Failure model: a command not answered within timeout_ms means Redis is
 * slow or gone: every pending command fails at once (callback with reply
 * NULL), the connection is dropped and re-established with backoff (100 ms
 * doubling to 5 s). Commands issued while not connected fail synchronously
 * (lg_redis_call returns -1 and does not call back), so callers pick their
 * fallback at once instead of queueing behind a dead server.
 *
 * Threading: a connection belongs to the thread running its loop; every call
 * on it must come from that thread.
 */
#ifndef LG_CLUSTER_REDIS_CONN_H
#define LG_CLUSTER_REDIS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <uv.h>
#include "core/redis_url.h"

typedef enum {
    LG_REDIS_IDLE = 0,   /* created, not started */
    LG_REDIS_CONNECTING, /* TCP connect in progress */
    LG_REDIS_READY,      /* connected: commands are sent */
    LG_REDIS_BACKOFF,    /* disconnected, waiting to retry */
    LG_REDIS_CLOSED,     /* lg_redis_conn_close called */
} lg_redis_state_t;

typedef struct lg_redis_conn lg_redis_conn_t;

/** Reply callback: reply is NULL when the command failed (timeout, disconnect, close); valid only during the call. */
typedef void lg_redis_cb(void *arg, const redisReply *reply);
/** State callback: called on every transition into READY (up = 1) or out of it (up = 0). */
typedef void lg_redis_state_cb(void *arg, int up);
/** Pub/sub message callback (subscriber connections only): channel and payload, not NUL-terminated. */
typedef void lg_redis_message_cb(void *arg, const char *channel, size_t channel_len, const char *msg, size_t msg_len);

/** A server-side Lua script: its source and SHA-1 (hex), computed once by lg_redis_script_init. */
typedef struct lg_redis_script {
    const char *name; /* for logs */
    const char *source;
    char sha[41];
} lg_redis_script_t;

/** Compute script->sha from script->source. Any thread, before first use. */
void lg_redis_script_init(lg_redis_script_t *script);

typedef struct lg_redis_conn_opts {
    const char *ip; /* IP literal */
    int port, db;
    const char *user, *password; /* "" or NULL = none */
    uint32_t timeout_ms, connect_timeout_ms;
    const char *label;               /* for logs, e.g. "worker 2" */
    lg_redis_state_cb *on_state;     /* optional */
    void *state_arg;                 /* for on_state and on_message */
    const char *subscribe_pattern;   /* non-NULL: a subscriber connection (PSUBSCRIBE this pattern on every connect) */
    lg_redis_message_cb *on_message; /* subscriber connections */
} lg_redis_conn_opts_t;

/** Create and start connecting. Strings in opts are copied. Loop thread. */
lg_redis_conn_t *lg_redis_conn_new(uv_loop_t *loop, const lg_redis_conn_opts_t *opts);

/** Current state. Loop thread. */
lg_redis_state_t lg_redis_conn_state(const lg_redis_conn_t *c);

/**
 * Send one command (argv strings, argvlen bytes each). Returns 0 and later calls cb exactly once, or -1 (not READY) and
 * never calls cb. The argument bytes are copied by hiredis at once. Loop thread.
 */
int lg_redis_call(lg_redis_conn_t *c, lg_redis_cb *cb, void *arg, int argc, const char **argv, const size_t *argvlen);

/** Same for a script: EVALSHA sha numkeys keys... args..., re-sent once as EVAL on NOSCRIPT. argv = keys then args. */
int lg_redis_eval(lg_redis_conn_t *c, const lg_redis_script_t *script, lg_redis_cb *cb, void *arg, int numkeys, int argc,
                  const char **argv, const size_t *argvlen);

/** Counters for metrics (loop thread writes, any thread reads; relaxed). */
typedef struct lg_redis_counters {
    uint64_t commands, failures, reconnects, timeouts;
} lg_redis_counters_t;
void lg_redis_conn_counters(const lg_redis_conn_t *c, lg_redis_counters_t *out);

/**
 * Close: pending commands fail (cb with NULL), handles are closed, memory is freed once the loop has run the close
 * callbacks. No callbacks after this returns except those failures. Loop thread.
 */
void lg_redis_conn_close(lg_redis_conn_t *c);

#endif
