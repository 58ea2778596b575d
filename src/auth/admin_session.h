/* SPDX-License-Identifier: MIT */
/*
 * Dashboard sessions: what a browser holds instead of the admin key after
 * signing in. A session id is 32 random bytes (64 hex chars) sent only in an
 * HttpOnly cookie; the table keeps its SHA-256, never the id itself, so a
 * memory dump or log cannot replay it. Each session records a fingerprint of
 * the admin key it was opened with: changing the key (reload) ends every
 * session. The CSRF token is an HMAC of the session id under a per-process
 * secret, so it needs no storage and dies with the session.
 *
 * Also the sign-in throttle: failed admin-key attempts per client address
 * and in total over a sliding minute; past the limit sign-in is refused
 * (429) until the window passes, whether or not the next guess is right.
 *
 * Process-wide, one mutex: every worker shares the table. Not on the hot
 * path (only /api/admin and /dashboard calls come here).
 */
#ifndef LG_AUTH_ADMIN_SESSION_H
#define LG_AUTH_ADMIN_SESSION_H

#include <stddef.h>
#include <stdint.h>

#define LG_ADMIN_SESSION_ID_LEN 64       /* hex chars */
#define LG_ADMIN_SESSION_MAX 256         /* live sessions; the oldest is ended to make room */
#define LG_ADMIN_SIGNIN_WINDOW_MS 60000  /* failed sign-ins are counted over this window ... */
#define LG_ADMIN_SIGNIN_MAX_PER_CLIENT 5 /* ... per client address */
#define LG_ADMIN_SIGNIN_MAX_TOTAL 30     /* ... and over all clients */
#define LG_ADMIN_SESSION_COOKIE "llmgate_session"

/**
 * Open a session for admin_key (the key the caller just verified), living ttl_s seconds. Writes the id and its CSRF token
 * (NUL-terminated, 64 hex chars each) and the expiry (unix ms). Returns 0, or -1 if the random source failed.
 */
int lg_admin_session_create(const char *admin_key, uint32_t ttl_s, int64_t now_ms, char id[LG_ADMIN_SESSION_ID_LEN + 1],
                            char csrf[LG_ADMIN_SESSION_ID_LEN + 1], int64_t *expires_ms);
/**
 * 1 if id[0..len) is a live session opened with the current admin_key (NULL key = none valid), else 0. On success
 * fills csrf (may be NULL) and *expires_ms (may be NULL).
 */
int lg_admin_session_check(const char *id, size_t len, const char *admin_key, int64_t now_ms,
                           char csrf[LG_ADMIN_SESSION_ID_LEN + 1], int64_t *expires_ms);
/** 1 if token[0..len) is the CSRF token of session id[0..len) (constant time), else 0. */
int lg_admin_csrf_ok(const char *id, size_t idlen, const char *token, size_t toklen);
/** End a session (sign-out); unknown ids are ignored. */
void lg_admin_session_destroy(const char *id, size_t len);
/** Live sessions now (status view). */
size_t lg_admin_session_count(int64_t now_ms);

/** 0 if client may try a sign-in now, else the ms until it may (> 0). */
int64_t lg_admin_signin_wait_ms(const char *client, int64_t now_ms);
/** Record a failed sign-in from client. */
void lg_admin_signin_failed(const char *client, int64_t now_ms);

/** Tests: forget every session and throttle entry. */
void lg_admin_session_reset(void);

#endif
