/* SPDX-License-Identifier: MIT */
/*
 * The process-wide access gate: the in-memory key table (synced from the
 * store), the ledger writer, the admin key, and the rule that decides whether
 * a request needs a key. Initialised by the main thread before the workers
 * start; the request path only reads it (no disk).
 */
#ifndef LG_AUTH_GATE_H
#define LG_AUTH_GATE_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "auth/keytable.h"
#include "core/config.h"
#include "store/ledger.h"

/** Open (create) the store, load the keys with their current-period usage, start the ledger. Main thread, once. */
int lg_gate_init(const lg_config_t *conf, char *err, size_t errlen);
/** Adopt the auth settings of a reloaded config (admin key, require_keys, listeners) and re-sync the keys. */
void lg_gate_apply_config(const lg_config_t *conf);
/** Re-read every key from the store into the key table (admin changes, SIGHUP). Any thread; opens its own connection. */
int lg_gate_sync_keys(char *err, size_t errlen);
/** Drain and stop the ledger (SIGTERM), free the table. */
void lg_gate_shutdown(void);

lg_keytable_t *lg_gate_keys(void);
lg_ledger_t *lg_gate_ledger(void);
const char *lg_gate_store_path(void);
/** 1 while requests need no key (no keys exist and every listener is loopback, or auth.require_keys false). */
int lg_gate_open(void);

/**
 * Authenticate a /v1 (or /mcp) request: `Authorization: Bearer <key>` or `x-api-key: <key>`. Returns 0 with *key set
 * (a reference to release with lg_key_entry_release), 0 with *key NULL when the gate is open and no key was sent, or
 * LG_EAUTH with a reason in *msg (never containing the presented secret).
 */
int lg_gate_authenticate(h2o_req_t *req, lg_key_entry_t **key, const char **msg);
/**
 * Per-process random token (64 hex chars, from getrandom at lg_gate_init; NULL before) for the gateway's calls to
 * itself (the built-in MCP `chat` tool): a request with `x-llmgate-internal: <token>` is authenticated as the key whose
 * id is in `x-llmgate-key-id` (absent/empty = anonymous, as on an open gateway), so that key's allow-lists, limits and
 * credit apply. A wrong token is LG_EAUTH. Never log it.
 */
const char *lg_gate_internal_token(void);
/** 1 if the request carries the admin key (constant-time compare); 0 also when no admin key is configured. */
int lg_gate_is_admin(h2o_req_t *req);
/** Why an authenticated key may not be used now ("API key disabled", "API key expired"), or NULL when it may. */
const char *lg_gate_key_refusal(const lg_key_entry_t *key);
/** Wall clock in unix milliseconds (key periods and rate-limit resets are wall-clock based). */
int64_t lg_gate_now_ms(void);

#endif
