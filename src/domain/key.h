/* SPDX-License-Identifier: MIT */
/*
 * An API key as the gateway knows it: identity, hashed secret, limits and
 * allow-lists. Shared by the store (durable copy), the in-memory key table
 * (request path) and the admin API. The secret itself is never stored: only
 * its SHA-256; it is shown once, at creation.
 */
#ifndef LG_DOMAIN_KEY_H
#define LG_DOMAIN_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define LG_KEY_ID_LEN 24 /* "key_" + 20 base62 chars */
#define LG_KEY_SECRET_PREFIX "sk-lg-"
#define LG_KEY_SECRET_LEN 48 /* prefix + 42 base62 chars (~250 bits) */
#define LG_KEY_NAME_MAX 256

/* Input bounds shared by the CLI (`llmgate keys`) and the admin API. */
#define LG_KEY_MAX_RATE 10000000      /* rpm / tpm */
#define LG_KEY_MAX_CREDIT_USD 1000000 /* 1e6 USD = 1e18 pico, inside int64 (1e9 USD would not fit) */
#define LG_KEY_MAX_LIST_ITEMS 1000    /* allowed models / tools entries */
#define LG_KEY_MAX_METADATA_BYTES 16384
#define LG_KEY_MAX_EXPIRES_S (INT64_C(100) * 366 * 86400) /* expiry at most 100 years ahead */

typedef enum { LG_RESET_NONE = 0, LG_RESET_DAILY = 1, LG_RESET_WEEKLY = 2, LG_RESET_MONTHLY = 3 } lg_reset_period_t;

typedef struct lg_key_record {
    char id[LG_KEY_ID_LEN + 1];
    char *name;         /* label, <= LG_KEY_NAME_MAX bytes */
    uint8_t hash[32];   /* SHA-256 of the secret */
    char hint[16];      /* first 10 chars of the secret ("sk-lg-ab12"), for listings; not secret */
    int64_t created_at; /* unix seconds */
    int64_t expires_at; /* unix seconds, 0 = never */
    int disabled;
    int64_t credit_limit_pico; /* -1 = unlimited */
    lg_reset_period_t reset_period;
    uint32_t rpm;          /* requests per minute, 0 = unlimited */
    uint32_t tpm;          /* tokens per minute, 0 = unlimited */
    char **allowed_models; /* NULL-terminated; NULL = all models */
    char **allowed_tools;  /* NULL-terminated MCP tool names (or "server__*"); NULL = all */
    json_t *metadata;      /* free-form object, may be NULL; owned */
} lg_key_record_t;

/** Deep copy / free. */
lg_key_record_t *lg_key_record_dup(const lg_key_record_t *k);
void lg_key_record_free(lg_key_record_t *k);
/** A blank record in caller storage: all zero, credit unlimited (-1). */
void lg_key_record_init(lg_key_record_t *k);
/** Release what a record in caller storage owns (name, lists, metadata) and NULL those fields; k itself stays. */
void lg_key_record_clear(lg_key_record_t *k);

/**
 * Make a new key: id ("key_" + 20 base62), secret (LG_KEY_SECRET_PREFIX + 42 base62), both from getrandom() (crypto
 * randomness), hash = SHA-256(secret), hint (first 10 chars of the secret) and created_at (now). Other fields of k are
 * left as they are. secret_out receives the secret, which exists nowhere else: show it once, then wipe it.
 * Returns 0, or LG_EINTERNAL if the kernel RNG or the digest failed.
 */
int lg_key_generate(lg_key_record_t *k, char secret_out[LG_KEY_SECRET_LEN + 1]);
/** out = SHA-256(secret[0..len)). */
void lg_key_hash(const char *secret, size_t len, uint8_t out[32]);

/** Input rules shared by the CLI and the admin API. Each returns 1 if valid, else 0 with a reason in *why. */
int lg_key_name_valid(const char *name, const char **why);   /* 1..LG_KEY_NAME_MAX bytes, no control chars */
int lg_key_model_valid(const char *model, const char **why); /* 1..256 bytes of [A-Za-z0-9._:/@+*-] */
int lg_key_tool_valid(const char *tool, const char **why);   /* 1..128 bytes of [A-Za-z0-9._*-] */
/** 1 if id[0..len) has the shape of a key id ("key_" + 20 [A-Za-z0-9]), else 0. */
int lg_key_id_valid(const char *id, size_t len);

/** Reset period names "none", "daily", "weekly", "monthly" (returns -1 when unknown). */
const char *lg_reset_period_name(lg_reset_period_t p);
int lg_reset_period_parse(const char *s);

/**
 * The key as JSON for listings and the admin API: id, name, hint, created_at, expires_at (null = never), disabled,
 * limit (USD or null), limit_pico (-1 = unlimited), limit_reset, rpm, tpm, allowed_models, allowed_tools (null = all),
 * metadata. Never the hash. New reference.
 */
json_t *lg_key_record_to_json(const lg_key_record_t *k);

#endif
