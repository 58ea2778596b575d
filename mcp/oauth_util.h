/* SPDX-License-Identifier: MIT */
/*
 * Pure building blocks of the MCP OAuth authorization server (no I/O, no
 * globals): PKCE S256 (RFC 7636), token minting and hashing, the
 * application/x-www-form-urlencoded parser (RFC 6749 requests), redirect URI
 * rules (exact match; RFC 8252 loopback ports), client metadata documents
 * (RFC 7591 registration requests and Client ID Metadata Documents), resource
 * URI canonicalisation (RFC 8707) and HTML escaping for the consent page.
 * Fuzzed by tests/fuzz/fuzz_mcp_oauth.c.
 */
#ifndef LG_MCP_OAUTH_UTIL_H
#define LG_MCP_OAUTH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* ---- limits (every input is bounded) ---- */
#define LG_OAUTH_FORM_MAX_BYTES 65536  /* a token/consent/revoke request body */
#define LG_OAUTH_FORM_MAX_PARAMS 32    /* name=value pairs in one form or query */
#define LG_OAUTH_PARAM_MAX_BYTES 8192  /* one decoded value */
#define LG_OAUTH_URI_MAX_BYTES 2048    /* a redirect URI, client_id URL or resource */
#define LG_OAUTH_MAX_REDIRECT_URIS 16  /* per client */
#define LG_OAUTH_CLIENT_NAME_MAX 200   /* bytes shown on the consent page */
#define LG_OAUTH_CIMD_MAX_BYTES 5120   /* a Client ID Metadata Document (the spec's suggested cap) */
#define LG_OAUTH_DCR_MAX_BYTES 65536   /* a registration request body */
#define LG_OAUTH_TOKEN_RANDOM_BYTES 32 /* entropy of every token, code and client secret */

/* ---- random tokens and their hashes ---- */

/** Printable length of a token minted by lg_oauth_token_mint with a prefix of plen bytes: prefix + 43 base64url. */
#define LG_OAUTH_TOKEN_LEN(plen) ((plen) + 43)
/**
 * Mint "<prefix><43 base64url chars>" (256 bits from getrandom) into out (size >= strlen(prefix) + 44). Returns 0, or -1
 * if the kernel RNG failed (nothing usable in out).
 */
int lg_oauth_token_mint(const char *prefix, char *out, size_t outsz);
/** out = SHA-256(s[0..n)): how every token, code and client secret is stored and looked up. */
void lg_oauth_hash(const char *s, size_t n, uint8_t out[32]);
/** base64url without padding of in[0..n) into out (size >= 4 * ceil(n / 3) + 1). Returns the length written. */
size_t lg_oauth_b64url(const uint8_t *in, size_t n, char *out);

/* ---- PKCE (RFC 7636), S256 only ---- */

/** 1 if v[0..n) is a valid code_verifier: 43..128 characters of [A-Za-z0-9-._~]. */
int lg_oauth_pkce_verifier_valid(const char *v, size_t n);
/** 1 if c is a valid S256 code_challenge: exactly 43 base64url characters. */
int lg_oauth_pkce_challenge_valid(const char *c);
/** 1 if BASE64URL(SHA256(verifier)) == challenge (constant-time compare), 0 otherwise (also for invalid input). */
int lg_oauth_pkce_verify(const char *verifier, size_t n, const char *challenge);

/* ---- application/x-www-form-urlencoded (also query strings) ---- */

typedef struct lg_oauth_form {
    size_t n;
    char *names[LG_OAUTH_FORM_MAX_PARAMS];
    char *values[LG_OAUTH_FORM_MAX_PARAMS];
    int duplicate; /* some name appeared twice (RFC 6749 §3.1: parameters MUST NOT repeat); its first value is kept */
} lg_oauth_form_t;

/**
 * Parse s[0..n) ('+' = space, %XX decoded). Empty pairs are skipped; a pair without '=' has an empty value. Returns 0,
 * or -1 (nothing to dispose) when the input is over LG_OAUTH_FORM_MAX_BYTES, has more than LG_OAUTH_FORM_MAX_PARAMS
 * pairs, a value over LG_OAUTH_PARAM_MAX_BYTES, a bad %-escape or a decoded NUL byte. Dispose with
 * lg_oauth_form_dispose.
 */
int lg_oauth_form_parse(const char *s, size_t n, lg_oauth_form_t *out);
void lg_oauth_form_dispose(lg_oauth_form_t *f);
/** The value of name, NULL if absent. Borrowed from f. */
const char *lg_oauth_form_get(const lg_oauth_form_t *f, const char *name);

/** Append "name=<percent-encoded value>" to a URL-encoded buffer (used for redirect query strings). */
struct lg_buf;
int lg_oauth_urlencode_append(struct lg_buf *b, const char *value);

/* ---- URIs ---- */

/** Parts of an absolute URI, pointers into the original string (not NUL-terminated). */
typedef struct lg_oauth_uri {
    const char *scheme, *host, *port, *path, *query;
    size_t scheme_len, host_len, port_len, path_len, query_len; /* host keeps IPv6 brackets */
    int has_authority, has_query;
} lg_oauth_uri_t;

/** Split an absolute URI. Returns 0, or -1 if it is not one (no scheme, control characters, spaces, a fragment). */
int lg_oauth_uri_parse(const char *s, lg_oauth_uri_t *u);
/** 1 if host[0..n) is "localhost", "127.x.x.x" or "[::1]". */
int lg_oauth_host_is_loopback(const char *host, size_t n);

/**
 * 1 if uri may be registered as a redirect URI: absolute, <= LG_OAUTH_URI_MAX_BYTES, no fragment, no userinfo; https
 * with a host; http only on a loopback host (RFC 8252 §7.3); or a private-use scheme of a native app (RFC 8252 §7.1;
 * never javascript:, data:, file:, vbscript:, blob:, about:, ws(s):). Else 0 with a reason in *why.
 */
int lg_oauth_redirect_uri_valid(const char *uri, const char **why);
/**
 * 1 if the presented redirect URI matches the registered one: byte-for-byte equal, or, for an http loopback registration
 * (127.0.0.1, [::1], localhost), equal except for the port (RFC 8252 §7.3: native apps get an ephemeral port).
 */
int lg_oauth_redirect_uri_matches(const char *registered, const char *presented);

/**
 * Canonical form of a resource indicator (RFC 8707, MCP "canonical server URI"): scheme and host lower-cased, default
 * port (:443 for https, :80 for http) dropped, trailing '/' dropped; must be absolute http(s) without query or
 * fragment. Writes into out (size outsz). Returns 0, or -1 if invalid or too long.
 */
int lg_oauth_resource_canonical(const char *in, char *out, size_t outsz);

/* ---- client metadata (RFC 7591 §2) ---- */

typedef enum {
    LG_OAUTH_AUTH_NONE = 0,         /* public client (PKCE only) */
    LG_OAUTH_AUTH_SECRET_POST = 1,  /* client_secret in the form */
    LG_OAUTH_AUTH_SECRET_BASIC = 2, /* HTTP Basic client_id:client_secret */
} lg_oauth_auth_method_t;

typedef struct lg_oauth_client {
    char *client_id;
    char *client_name;    /* may be NULL */
    char *client_uri;     /* may be NULL */
    char **redirect_uris; /* NULL-terminated, >= 1 */
    lg_oauth_auth_method_t auth_method;
    int refresh_allowed;      /* grant_types contains refresh_token */
    int is_metadata_document; /* client_id is the URL of its metadata document (CIMD) */
    uint8_t secret_hash[32];  /* SHA-256 of client_secret (auth_method != NONE) */
    int64_t issued_at;        /* unix s */
    int64_t expires_at;       /* unix s: cache lifetime of a metadata document; 0 = registered (kept) */
} lg_oauth_client_t;

/**
 * Parse and validate client metadata from JSON text. document_url == NULL: an RFC 7591 registration request (any
 * auth method of lg_oauth_auth_method_t; client_id is left NULL). document_url != NULL: a Client ID Metadata
 * Document fetched from that URL: "client_id" must equal it exactly and token_endpoint_auth_method must be "none"
 * (shared secrets are forbidden for CIMD). Both: redirect_uris 1..LG_OAUTH_MAX_REDIRECT_URIS, each valid per
 * lg_oauth_redirect_uri_valid; grant_types a subset of authorization_code / refresh_token including
 * authorization_code; response_types (if given) exactly ["code"]; client_name <= LG_OAUTH_CLIENT_NAME_MAX bytes of
 * printable text. Unknown members are ignored (RFC 7591 §2). Returns 0 with *out filled (dispose with
 * lg_oauth_client_dispose), or -1 with the RFC 7591 error code in *error ("invalid_redirect_uri" or
 * "invalid_client_metadata") and a description in why.
 */
int lg_oauth_client_parse(const char *json, size_t len, const char *document_url, lg_oauth_client_t *out, const char **error,
                          char *why, size_t whylen);
void lg_oauth_client_dispose(lg_oauth_client_t *c);
/** Deep copy into dst. */
void lg_oauth_client_copy(lg_oauth_client_t *dst, const lg_oauth_client_t *src);
/** 1 if uri matches one of c's redirect URIs (lg_oauth_redirect_uri_matches). */
int lg_oauth_client_redirect_ok(const lg_oauth_client_t *c, const char *uri);
/** 1 if client_id has the shape of a Client ID Metadata Document URL: https (or, if allow_http_loopback, http on
 * 127.0.0.1/[::1]/localhost) with a host and a path other than "/", no fragment, <= LG_OAUTH_URI_MAX_BYTES. */
int lg_oauth_client_id_is_url(const char *client_id, int allow_http_loopback);

/* ---- HTML ---- */

/** Append s HTML-escaped (& < > " ' escaped) to b. Returns 0 or -1 (cap). */
int lg_oauth_html_escape_append(struct lg_buf *b, const char *s);

#endif
