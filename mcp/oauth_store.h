/* SPDX-License-Identifier: MIT */
/*
 * State of the MCP OAuth authorization server, process-wide and thread-safe:
 * registered clients (RFC 7591) and cached Client ID Metadata Documents,
 * pending consent transactions, authorization codes (single use, <= 60 s),
 * access and refresh tokens (refresh rotation with reuse detection, grant
 * families revoked together). Everything is looked up by the SHA-256 of the
 * secret; the secrets themselves exist only in the responses that carry them.
 *
 * The request path reads only memory. With a store, registered clients and
 * tokens are also written to SQLite (tables of migration 2) by one writer
 * thread that owns its own connection, and loaded back at start-up; without
 * one ("store": null) they live in memory only and a restart signs every
 * client out. Codes and consent transactions are memory-only by design (they
 * live seconds to minutes). Times are unix seconds passed in by the caller, so
 * tests control the clock.
 */
#ifndef LG_MCP_OAUTH_STORE_H
#define LG_MCP_OAUTH_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "mcp/oauth_util.h"

#define LG_OAUTH_GRANT_ID_LEN 24
#define LG_OAUTH_KEY_ID_MAX 32

/** What one consent produced; shared by its code and every token of the family. */
typedef struct lg_oauth_grant {
    char grant_id[LG_OAUTH_GRANT_ID_LEN + 1]; /* family id: "gr_" + random */
    char key_id[LG_OAUTH_KEY_ID_MAX + 1];     /* the API key the person consented with; "" = anonymous (open gateway) */
    char *client_id;
    char *resource;       /* canonical resource indicator (audience) */
    char *scope;          /* granted scope ("mcp") */
    char *redirect_uri;   /* codes only: the exact redirect_uri of the authorization request */
    char *code_challenge; /* codes only: PKCE S256 challenge */
    int64_t expires_at;   /* unix s */
} lg_oauth_grant_t;

void lg_oauth_grant_dispose(lg_oauth_grant_t *g);
void lg_oauth_grant_copy(lg_oauth_grant_t *dst, const lg_oauth_grant_t *src);

/** A pending authorization request between the consent page and its POST. */
typedef struct lg_oauth_pending {
    char txn[48];  /* opaque id in the form */
    char csrf[48]; /* also in an HttpOnly SameSite=Strict cookie; the POST must carry both, equal */
    char *client_id, *client_name, *redirect_uri, *state, *code_challenge, *resource, *scope;
    int64_t expires_at;
    int attempts; /* wrong keys so far (5 end the transaction) */
} lg_oauth_pending_t;

void lg_oauth_pending_dispose(lg_oauth_pending_t *p);

/** Outcomes of the lookups below (0 = fine). */
enum {
    LG_OAUTH_OK = 0,
    LG_OAUTH_NOT_FOUND = -1,
    LG_OAUTH_EXPIRED = -2,
    LG_OAUTH_REUSED = -3,  /* a code or refresh token presented again: its whole grant was revoked */
    LG_OAUTH_REVOKED = -4, /* revoked, or rotated away */
    LG_OAUTH_WRONG_AUDIENCE = -5,
    LG_OAUTH_WRONG_CLIENT = -6,
    LG_OAUTH_FULL = -7, /* a table is at its cap */
};

/**
 * Initialise (main thread, once, before workers). store_path NULL = memory only. Loads registered clients and live
 * tokens from the store and starts the writer thread. max_clients caps registrations (the oldest never-used client is
 * evicted to make room). Returns 0, or -1 with a reason in err. Calling it again replaces nothing (returns 0).
 */
int lg__oauth_store_init(const char *store_path, uint32_t max_clients, int64_t now, char *err, size_t errlen);
/** Drain the writer (every accepted change committed) and free everything. Main thread, after the workers stopped. */
void lg__oauth_store_shutdown(void);
/** 1 when tokens survive a restart (a store is configured). */
int lg__oauth_store_persistent(void);
/** Counts for /metrics-like reporting and tests: live clients, access tokens, refresh tokens, codes, pending. */
void lg__oauth_store_counts(size_t *clients, size_t *access, size_t *refresh, size_t *codes, size_t *pending);
/** Block until every queued change is in the database (tests). */
void lg__oauth_store_flush(void);

/* ---- clients ---- */

/**
 * Add or replace a client (copied). Registered clients (is_metadata_document 0) are persisted; metadata documents are
 * only cached (until expires_at). LG_OAUTH_FULL if the registration cap is reached and nothing could be evicted.
 */
int lg__oauth_client_put(const lg_oauth_client_t *c, int64_t now);
/** Copy of a client into *out (dispose it). LG_OAUTH_NOT_FOUND, or LG_OAUTH_EXPIRED for a stale cached document. */
int lg__oauth_client_get(const char *client_id, int64_t now, lg_oauth_client_t *out);

/* ---- consent transactions ---- */

/** Store p (takes ownership of its strings; p's struct is copied). */
void lg__oauth_pending_put(lg_oauth_pending_t *p, int64_t now);
/** Copy of the transaction txn into *out (dispose it). LG_OAUTH_NOT_FOUND / LG_OAUTH_EXPIRED. */
int lg__oauth_pending_get(const char *txn, int64_t now, lg_oauth_pending_t *out);
/** Count a failed consent attempt; returns the attempts so far (the transaction is dropped at max_attempts). */
int lg__oauth_pending_fail(const char *txn, int max_attempts);
/** Drop the transaction (after approval or denial): LG_OAUTH_OK if this call removed it, LG_OAUTH_NOT_FOUND if it was
 * gone already (another request took it first). */
int lg__oauth_pending_remove(const char *txn);

/* ---- codes ---- */

/** Remember a code by its hash (grant copied). */
void lg__oauth_code_put(const uint8_t hash[32], const lg_oauth_grant_t *g, int64_t now);
/**
 * Redeem a code: LG_OAUTH_OK once, with the grant copied into *out (dispose it); afterwards LG_OAUTH_REUSED (and every
 * token issued from it is revoked, RFC 6749 §4.1.2). LG_OAUTH_EXPIRED after its lifetime, LG_OAUTH_NOT_FOUND.
 */
int lg__oauth_code_redeem(const uint8_t hash[32], int64_t now, lg_oauth_grant_t *out);

/* ---- tokens ---- */

typedef enum { LG_OAUTH_ACCESS = 1, LG_OAUTH_REFRESH = 2 } lg_oauth_token_kind_t;

/** Store a token by its hash (grant copied; its expires_at is the token's). */
void lg__oauth_token_put(const uint8_t hash[32], lg_oauth_token_kind_t kind, const lg_oauth_grant_t *g, int64_t now);
/**
 * Check an access token for resource (canonical): LG_OAUTH_OK with the key id copied into key_id (size >=
 * LG_OAUTH_KEY_ID_MAX + 1) and the client id into client_id (may be NULL); else NOT_FOUND / EXPIRED / REVOKED /
 * WRONG_AUDIENCE. No allocation.
 */
int lg__oauth_access_check(const uint8_t hash[32], const char *resource, int64_t now, char *key_id, char *client_id,
                           size_t client_id_size);
/**
 * Use a refresh token of client_id: LG_OAUTH_OK with its grant in *out (dispose it) and the token marked used (rotation:
 * the caller issues the next pair). A token used before → LG_OAUTH_REUSED and its whole family is revoked. Also
 * NOT_FOUND / EXPIRED / REVOKED / WRONG_CLIENT.
 */
int lg__oauth_refresh_use(const uint8_t hash[32], const char *client_id, int64_t now, lg_oauth_grant_t *out);
/**
 * Revoke a token (RFC 7009): an access token alone, a refresh token with its whole family. client_id non-NULL: only if
 * the token was issued to it. Returns LG_OAUTH_OK, NOT_FOUND or WRONG_CLIENT (callers answer 200 in every case).
 */
int lg__oauth_revoke(const uint8_t hash[32], const char *client_id);
/** Revoke every token of a grant family. */
void lg__oauth_revoke_grant(const char *grant_id);

#endif
