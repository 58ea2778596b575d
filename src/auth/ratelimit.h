/* SPDX-License-Identifier: MIT */
/*
 * Token buckets shared by all worker threads: one small spinlock per bucket
 * (no global lock), lazy refill from the caller's clock, debt allowed for
 * after-the-fact corrections (tokens-per-minute charged from an estimate).
 */
#ifndef LG_AUTH_RATELIMIT_H
#define LG_AUTH_RATELIMIT_H

#include <stdatomic.h>
#include <stdint.h>

/**
 * A token bucket. Embed it anywhere (no heap); every function below may be
 * called from any thread at any time after lg_bucket_init. The lock is held
 * for a few arithmetic instructions only, never across a call out.
 *
 * Clock: now_ms is any millisecond clock the caller uses consistently for
 * the bucket (the key table passes Unix-epoch milliseconds). A clock that
 * goes backwards does not refill and does not move the bucket's notion of
 * time backwards, so it can never mint tokens.
 */
typedef struct lg_bucket {
    atomic_flag _lock;
    double _level;    /* tokens now (at _last_ms); may be negative (debt), never above _capacity */
    double _capacity; /* > 0 */
    double _refill;   /* tokens per second, >= 0 */
    int64_t _last_ms; /* time of the last refill */
} lg_bucket_t;

/** Initialise a full bucket. capacity > 0, refill_per_sec >= 0 (0 = never refills). Not thread-safe (set-up). */
void lg_bucket_init(lg_bucket_t *b, double capacity, double refill_per_sec, int64_t now_ms);

/**
 * Take n (>= 0) tokens if the level is at least n: returns 1 and updates the bucket. Otherwise returns 0, leaves the
 * bucket as it was, and sets *wait_ms (if not NULL) to the time until n tokens are there, or -1 if that never happens
 * (n > capacity, or the bucket does not refill).
 */
int lg_bucket_take(lg_bucket_t *b, double n, int64_t now_ms, int64_t *wait_ms);

/**
 * Time in ms until n tokens are there without taking anything: 0 if available now, -1 if never (n > capacity, or no
 * refill). Atomic with respect to other bucket calls, but a later take may still fail if other threads take in
 * between; callers that need check-then-take atomically across several buckets serialise them under their own lock.
 */
int64_t lg_bucket_wait_ms(lg_bucket_t *b, double n, int64_t now_ms);

/** Unconditional adjust: level += delta (after refill). May go negative (debt); capped at capacity. */
void lg_bucket_adjust(lg_bucket_t *b, double delta, int64_t now_ms);

/** Current level after refill (may be negative). */
double lg_bucket_level(lg_bucket_t *b, int64_t now_ms);

/** Time in ms until the bucket is full again: 0 if full, -1 if it never refills. */
int64_t lg_bucket_full_in_ms(lg_bucket_t *b, int64_t now_ms);

/**
 * Change capacity and refill rate: refills up to now at the old rate, then keeps the level, clamped to the new
 * capacity (a bucket does not become full because its limit grew).
 */
void lg_bucket_reconfigure(lg_bucket_t *b, double capacity, double refill_per_sec, int64_t now_ms);

/** Current capacity. */
double lg_bucket_capacity(lg_bucket_t *b);

#endif
