/* SPDX-License-Identifier: MIT */
/*
 * Token buckets: lazy refill under a per-bucket spinlock. Critical sections
 * are a handful of floating-point operations, so spinning (with a CPU pause
 * hint) beats a mutex and there is no global lock to contend on.
 */
#include <assert.h>
#include <math.h>
#include "auth/ratelimit.h"
#include "core/spinlock.h"

/* Bring the level up to now. A backwards clock neither refills nor rewinds _last_ms. */
static void refill(lg_bucket_t *b, int64_t now_ms)
{
    if (now_ms <= b->_last_ms)
        return;
    if (b->_refill > 0 && b->_level < b->_capacity) {
        b->_level += (double)(now_ms - b->_last_ms) * b->_refill / 1000.0;
        if (b->_level > b->_capacity)
            b->_level = b->_capacity;
    }
    b->_last_ms = now_ms;
}

/*
 * Refill rates like rpm/60 are not exact in binary floating point; a tolerance far below one token keeps "available
 * after the announced wait" true (0.999 + 0.001 tokens must count as 1).
 */
#define EPS 1e-9

/* Caller holds the lock and has refilled. */
static int64_t wait_locked(const lg_bucket_t *b, double n)
{
    if (b->_level + EPS >= n)
        return 0;
    if (n > b->_capacity || b->_refill <= 0)
        return -1;
    double ms = ceil((n - b->_level) * 1000.0 / b->_refill - EPS * 1000.0);
    if (ms < 1)
        ms = 1; /* rounding: never say "now" while the take would fail */
    if (ms > (double)INT64_MAX / 2)
        return -1;
    return (int64_t)ms;
}

void lg_bucket_init(lg_bucket_t *b, double capacity, double refill_per_sec, int64_t now_ms)
{
    assert(capacity > 0 && refill_per_sec >= 0);
    atomic_flag_clear(&b->_lock);
    b->_capacity = capacity;
    b->_refill = refill_per_sec;
    b->_level = capacity;
    b->_last_ms = now_ms;
}

int lg_bucket_take(lg_bucket_t *b, double n, int64_t now_ms, int64_t *wait_ms)
{
    int ok;
    int64_t w;
    assert(n >= 0);
    lg_spin_lock(&b->_lock);
    refill(b, now_ms);
    w = wait_locked(b, n);
    ok = w == 0;
    if (ok)
        b->_level -= n;
    lg_spin_unlock(&b->_lock);
    if (!ok && wait_ms != NULL)
        *wait_ms = w;
    return ok;
}

int64_t lg_bucket_wait_ms(lg_bucket_t *b, double n, int64_t now_ms)
{
    int64_t w;
    lg_spin_lock(&b->_lock);
    refill(b, now_ms);
    w = wait_locked(b, n);
    lg_spin_unlock(&b->_lock);
    return w;
}

void lg_bucket_adjust(lg_bucket_t *b, double delta, int64_t now_ms)
{
    lg_spin_lock(&b->_lock);
    refill(b, now_ms);
    b->_level += delta;
    if (b->_level > b->_capacity)
        b->_level = b->_capacity;
    lg_spin_unlock(&b->_lock);
}

double lg_bucket_level(lg_bucket_t *b, int64_t now_ms)
{
    double l;
    lg_spin_lock(&b->_lock);
    refill(b, now_ms);
    l = b->_level;
    lg_spin_unlock(&b->_lock);
    return l;
}

int64_t lg_bucket_full_in_ms(lg_bucket_t *b, int64_t now_ms)
{
    int64_t w;
    lg_spin_lock(&b->_lock);
    refill(b, now_ms);
    w = wait_locked(b, b->_capacity);
    lg_spin_unlock(&b->_lock);
    return w;
}

void lg_bucket_reconfigure(lg_bucket_t *b, double capacity, double refill_per_sec, int64_t now_ms)
{
    assert(capacity > 0 && refill_per_sec >= 0);
    lg_spin_lock(&b->_lock);
    refill(b, now_ms);
    b->_capacity = capacity;
    b->_refill = refill_per_sec;
    if (b->_level > capacity)
        b->_level = capacity;
    lg_spin_unlock(&b->_lock);
}

double lg_bucket_capacity(lg_bucket_t *b)
{
    double c;
    lg_spin_lock(&b->_lock);
    c = b->_capacity;
    lg_spin_unlock(&b->_lock);
    return c;
}
