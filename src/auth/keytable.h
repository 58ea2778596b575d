/* SPDX-License-Identifier: MIT */
/*
 * The request-path view of API keys: an in-memory table (no disk), looked up
 * by the SHA-256 of the presented secret, with per-key live state shared by
 * all worker threads: RPM/TPM token buckets and credit used in the current
 * reset period. The store/admin side feeds it with lg_keytable_load().
 *
 * Threading and lifetime
 * - Any number of worker threads may call every function here concurrently;
 *   lg_keytable_load may run at the same time on another thread (loads are
 *   serialised among themselves by an internal mutex; readers never wait).
 * - The table publishes an immutable "version" (records + hash indexes) with
 *   one atomic word that packs the version pointer and a count of readers
 *   currently inside it (split reference count). A lookup is: fetch_add on
 *   that word (registers + reads the pointer in one step), probe, take a
 *   reference on the entry, then give the version back (CAS the count down
 *   if the version is still installed, else decrement the version's own
 *   counter). A load swaps the word and moves the in-flight count into the
 *   old version; whoever brings that counter to zero frees the version.
 * - An entry (lg_key_entry_t) is reference counted on its own: it stays valid
 *   after its key was reloaded, changed or removed, until released, and it
 *   may even outlive the table. Its record is an immutable deep copy.
 * - Live state (buckets, credit) belongs to the key id, not to a version: it
 *   is shared by the entries of successive versions, and the limits applied
 *   on admission are always those of the newest load (so a reader holding an
 *   old entry still sees the current limits; a removed key is refused).
 *
 * Time: every now_ms here is Unix-epoch milliseconds (wall clock), because it
 * also decides credit reset periods (UTC days/weeks/months) and the
 * X-RateLimit-Reset value. Buckets tolerate a clock stepping backwards.
 *
 * The secret is never stored: only its SHA-256, compared in constant time.
 */
#ifndef LG_AUTH_KEYTABLE_H
#define LG_AUTH_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>
#include "domain/key.h"

typedef struct lg_keytable lg_keytable_t;
/** One key: an immutable copy of its record + a reference to the key's shared live state. */
typedef struct lg_key_entry lg_key_entry_t;

/** Create an empty table. Owned by the caller; aborts on OOM. */
lg_keytable_t *lg_keytable_create(void);

/**
 * Destroy the table (no other call on it may be running or start afterwards). Entries still held by readers stay valid
 * until they are released.
 */
void lg_keytable_destroy(lg_keytable_t *t);

/**
 * Replace the whole key set with records[0..n). Called by the main/admin thread on start-up and after changes, never
 * per request; may run while workers look keys up. Records are deep-copied (lg_key_record_dup); the caller keeps its
 * own. period_usage_pico[i] (may be NULL = all 0) is the credit records[i] used in its current reset period according
 * to the store; it is applied the first time an id is seen, and again when a key's reset_period changes (the live
 * count then refers to another period). For ids already known, live state survives: credit used is kept (raised to
 * period_usage_pico[i] when the store knows more, i.e. other processes spend through the same store) and buckets are reconfigured
 * to the new limits keeping their level (a limit newly set starts full). Keys absent from records are removed: lookups miss, and
 * entries still held refuse admission ("removed"). Duplicate ids or hashes: the first wins, the others are skipped with a warning.
 * Returns the number of keys loaded.
 */
size_t lg_keytable_load(lg_keytable_t *t, lg_key_record_t *const *records, const int64_t *period_usage_pico, size_t n,
                        int64_t now_ms);

/** Number of keys in the current version. */
size_t lg_keytable_count(lg_keytable_t *t);

/**
 * Find the key whose secret is secret[0..len): one SHA-256, one hash-table probe, constant-time comparison of the full
 * 32-byte hash (CRYPTO_memcmp). Returns a new reference (release with lg_key_entry_release) or NULL. Any thread.
 * Disabled/expired keys are returned too (lg_key_admit refuses them), so callers can tell 401 reasons apart.
 */
lg_key_entry_t *lg_keytable_lookup(lg_keytable_t *t, const char *secret, size_t len);

/** Same, by key id ("key_..."). New reference or NULL. Any thread. */
lg_key_entry_t *lg_keytable_get_by_id(lg_keytable_t *t, const char *id);

/** Take another reference (e.g. to keep the entry beyond the request that looked it up). */
lg_key_entry_t *lg_key_entry_ref(lg_key_entry_t *e);

/** Drop a reference; NULL is a no-op. Any thread. */
void lg_key_entry_release(lg_key_entry_t *e);

/**
 * The key's record as of the version the entry came from. Immutable, valid while the entry is held. Note that limits
 * enforced by lg_key_admit are those of the latest load, which may be newer than this copy.
 */
const lg_key_record_t *lg_key_entry_record(const lg_key_entry_t *e);

/** Outcome of lg_key_admit; also the input for 401/402/429 responses and X-RateLimit-* headers. */
typedef struct lg_admit {
    int err;                /**< 0, LG_EAUTH (disabled/expired/removed), LG_ECREDIT (credit exhausted), LG_ERATELIMIT */
    const char *reason;     /**< NULL on success, else "disabled", "expired", "removed", "credit", "rpm", "tpm" (static) */
    int64_t retry_after_ms; /**< LG_ERATELIMIT: ms until a retry can pass (>= 1, round up for Retry-After seconds);
                                 0 otherwise */
    int64_t limit;          /**< X-RateLimit-Limit: the limit that decided (rpm on success/other errors, tpm if it
                                 decided or there is no rpm); -1 = no rate limit on this key */
    int64_t remaining;      /**< X-RateLimit-Remaining: whole tokens left in that bucket (>= 0); -1 if no limit */
    int64_t reset_unix_ms;  /**< X-RateLimit-Reset: Unix ms when that bucket is full again; 0 if no limit */
} lg_admit_t;

/**
 * Admission for one request, atomic per key: refused if removed or disabled (LG_EAUTH), expired (LG_EAUTH), credit used
 * in the current period >= credit limit (LG_ECREDIT), or if the RPM bucket lacks 1 token or the TPM bucket lacks
 * est_tokens (LG_ERATELIMIT; nothing is taken from either bucket then). On success takes 1 RPM token and est_tokens
 * TPM tokens. An estimate larger than the whole TPM capacity is admitted when the bucket is full and leaves it in debt
 * (otherwise such a request could never pass). Returns out->err. No allocation; any thread.
 */
int lg_key_admit(lg_key_entry_t *e, int64_t est_tokens, int64_t now_ms, lg_admit_t *out);

/**
 * After an admitted request: TPM correction (refunds est_tokens - actual_tokens; may create debt when the estimate was
 * low) and credit used += cost_pico (saturating), after rolling the reset period if it changed. Pass actual_tokens = 0
 * and cost_pico = 0 for a request that produced nothing. No allocation; any thread.
 */
void lg_key_settle(lg_key_entry_t *e, int64_t est_tokens, int64_t actual_tokens, int64_t cost_pico, int64_t now_ms);

/** Credit used in the current reset period (0 right after a rollover). */
int64_t lg_key_credit_used_pico(lg_key_entry_t *e, int64_t now_ms);

/**
 * Allow-lists of the entry's record: a NULL list allows everything, an empty list nothing; an item matches exactly, or
 * as a prefix when it ends in '*' (e.g. "memory__*", "*", or "openai/" followed by '*'). A NULL name is never allowed. Return 1/0.
 */
int lg_key_model_allowed(const lg_key_entry_t *e, const char *model);
int lg_key_tool_allowed(const lg_key_entry_t *e, const char *tool);

/* ---- shared (remote) limit state: the seam the scale-out module plugs into ---- */

/** A key's current limits and local credit view, copied under the key's lock for a remote limiter. */
typedef struct lg_key_limits {
    const char *id; /* valid while the entry is held */
    uint32_t rpm, tpm;
    int64_t credit_limit_pico; /* -1 = unlimited */
    lg_reset_period_t period;
    int64_t period_start_ms; /* start of the current reset period (INT64_MIN for none) */
    int64_t used_pico;       /* credit used in the period as this process knows it (seed for a fresh shared counter) */
    int64_t owed_pico;       /* part of used_pico not yet delivered to the remote counter */
} lg_key_limits_t;

/**
 * A remote limiter (src/cluster: Redis). Installed once before the workers start; NULL members are skipped.
 * - admit: called by lg_key_admit after the local checks (removed, disabled, expired) passed, without the key's lock.
 *   Returns 1 when it decided (out filled, out->err set; the local buckets and credit are not touched) or 0 to let
 *   the local buckets and credit decide (single node, Redis down in fail-open mode, no shared verdict).
 * - settle: called by lg_key_settle after the local credit was updated. Returns 1 when it applied the TPM correction
 *   remotely (the local TPM bucket is then left alone), 0 to correct the local bucket.
 */
typedef struct lg_key_remote_ops {
    int (*admit)(lg_key_entry_t *e, const lg_key_limits_t *lim, int64_t est_tokens, int64_t now_ms, lg_admit_t *out);
    int (*settle)(lg_key_entry_t *e, const lg_key_limits_t *lim, int64_t est_tokens, int64_t actual_tokens, int64_t cost_pico,
                  int64_t now_ms);
} lg_key_remote_ops_t;

/** Install (or remove, NULL) the remote limiter. Call before any admission runs. */
void lg_keytable_set_remote(const lg_key_remote_ops_t *ops);

/** Copy the entry's current limits (newest load) and local credit view. */
void lg_key_limits(lg_key_entry_t *e, int64_t now_ms, lg_key_limits_t *out);

/**
 * Credit spent locally that the remote counter has not received yet (Redis was down at settle): add to it, or take
 * it all (returns the amount and zeroes it). Any thread.
 */
void lg_key_owed_add(lg_key_entry_t *e, int64_t pico);
int64_t lg_key_owed_take(lg_key_entry_t *e);

/** Raise the local credit used in the current period to at least used_pico (re-sync from the ledger). Any thread. */
void lg_key_credit_raise(lg_key_entry_t *e, int64_t used_pico, int64_t now_ms);

#endif
