/* SPDX-License-Identifier: MIT */
/*
 * MCP sessions (Streamable HTTP `Mcp-Session-Id`): 128-bit random ids from
 * getrandom, bound to the API key id and the virtual server they were minted
 * on, idle TTL expiry, and the per-session state every worker may touch:
 * negotiated version, client capabilities, log level, subscriptions, the GET
 * SSE stream attachment. One process-wide table behind a mutex: MCP is not
 * the LLM hot path, and a session's requests may land on any worker.
 */
#ifndef LG_MCP_SESSION_H
#define LG_MCP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define LG_MCP_SESSION_ID_LEN 32  /* hex characters */
#define LG_MCP_MAX_SESSIONS 10000 /* beyond this (after a sweep) creation fails: the transport answers 503 */

/** RFC 5424 levels as MCP names them, in increasing severity. */
typedef enum {
    LG_MCP_LOG_DEBUG = 0,
    LG_MCP_LOG_INFO,
    LG_MCP_LOG_NOTICE,
    LG_MCP_LOG_WARNING,
    LG_MCP_LOG_ERROR,
    LG_MCP_LOG_CRITICAL,
    LG_MCP_LOG_ALERT,
    LG_MCP_LOG_EMERGENCY,
    LG_MCP_LOG_NONE /* a level above every message: nothing is sent */
} lg_mcp_log_level_t;

/** Level by MCP name ("debug" ... "emergency"), -1 if unknown. */
int lg_mcp_log_level_parse(const char *name);
const char *lg_mcp_log_level_name(int level);

typedef struct lg_mcp_session lg_mcp_session_t;

/**
 * Create and register a session. key_id (may be NULL = auth off), server ("" for /mcp, else the virtual server name),
 * version (negotiated), client_caps / client_info (deep-copied, may be NULL). ttl_s = idle lifetime. Returns a new
 * reference (release with lg_mcp_session_unref), or NULL when the table is full or the kernel RNG failed.
 * Thread-safe.
 */
lg_mcp_session_t *lg_mcp_session_create(const char *key_id, const char *server, const char *version, const json_t *client_caps,
                                        const json_t *client_info, uint32_t ttl_s);

/**
 * Find a live session by id (len bytes, not NUL-terminated) and refresh its idle timer. Returns a new reference, or NULL
 * when unknown, expired, terminated, bound to another key, or minted on another virtual server (all the same to the
 * client: 404). key_id NULL matches only sessions created with NULL. Thread-safe.
 */
lg_mcp_session_t *lg_mcp_session_lookup(const char *id, size_t len, const char *key_id, const char *server);

lg_mcp_session_t *lg_mcp_session_ref(lg_mcp_session_t *s);
void lg_mcp_session_unref(lg_mcp_session_t *s);

/** Terminate (DELETE): removes it from the table; holders of references see lg_mcp_session_closed() == 1. */
void lg_mcp_session_close(lg_mcp_session_t *s);
int lg_mcp_session_closed(lg_mcp_session_t *s);

/** Immutable after creation; valid while a reference is held. */
const char *lg_mcp_session_id(const lg_mcp_session_t *s);
const char *lg_mcp_session_version(const lg_mcp_session_t *s);
const char *lg_mcp_session_key_id(const lg_mcp_session_t *s); /* NULL when auth is off */
const char *lg_mcp_session_server(const lg_mcp_session_t *s);
const json_t *lg_mcp_session_client_caps(const lg_mcp_session_t *s); /* object, never NULL */
/** 1 if the client declared capability name ("sampling", "elicitation", "roots", ...). */
int lg_mcp_session_client_has(const lg_mcp_session_t *s, const char *name);

/** notifications/initialized received. */
void lg_mcp_session_set_initialized(lg_mcp_session_t *s);

/** logging/setLevel; until set, every level is sent (-1). */
void lg_mcp_session_set_log_level(lg_mcp_session_t *s, int level);
int lg_mcp_session_log_level(lg_mcp_session_t *s);
/** 1 if a notifications/message of this level should reach the client. */
int lg_mcp_session_log_wanted(lg_mcp_session_t *s, int level);

/** 2026-07-28 subscriptions/listen: the stream's session records what it asked for and its subscription id. */
enum { LG_MCP_LISTEN_TOOLS = 1, LG_MCP_LISTEN_PROMPTS = 2, LG_MCP_LISTEN_RESOURCES = 4, LG_MCP_LISTEN_UPDATES = 8 };
void lg_mcp_session_set_listen(lg_mcp_session_t *s, unsigned mask, const char *subscription_id);
/** The listen mask (0 = an ordinary session); the subscription id is copied to id_out (may be NULL). */
unsigned lg_mcp_session_listen(lg_mcp_session_t *s, char *id_out, size_t n);

/** resources/subscribe (on = 1) and unsubscribe (on = 0). Returns 0, or -1 when over the per-session cap (256). */
int lg_mcp_session_subscribe(lg_mcp_session_t *s, const char *uri, int on);
int lg_mcp_session_subscribed(lg_mcp_session_t *s, const char *uri);

/**
 * The session's one GET SSE stream, identified by (worker index, serial). attach returns 0, or -1 if another stream is
 * attached (the transport answers 409). detach is a no-op unless (worker, serial) is the attached one. While a stream
 * is attached the session does not idle out. get returns 0 with the attachment, -1 if none.
 */
int lg_mcp_session_attach_stream(lg_mcp_session_t *s, unsigned worker, uint64_t serial);
void lg_mcp_session_detach_stream(lg_mcp_session_t *s, unsigned worker, uint64_t serial);
int lg_mcp_session_stream(lg_mcp_session_t *s, unsigned *worker, uint64_t *serial);

/** Requests being served for this session right now (in-flight calls also keep it from idling out). */
void lg_mcp_session_busy(lg_mcp_session_t *s, int delta);

/** Call fn for each live session (references held across the calls, the table lock is not). */
void lg_mcp_session_foreach(void (*fn)(lg_mcp_session_t *s, void *ud), void *ud);

/** Drop idle sessions now; returns how many. Also runs by itself at most once a second on create. */
size_t lg_mcp_session_sweep(void);
size_t lg_mcp_session_count(void);

/** Tests: replace the millisecond clock (NULL = monotonic clock); drop every session. */
void lg_mcp_session_set_clock(int64_t (*now_ms)(void));
void lg_mcp_session_reset(void);

/** 128-bit id from getrandom() as 32 lower-case hex characters + NUL. Returns 0, -1 if the RNG failed. */
int lg__mcp_session_new_id(char out[LG_MCP_SESSION_ID_LEN + 1]);

#endif
