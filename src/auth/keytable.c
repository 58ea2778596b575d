/* SPDX-License-Identifier: MIT */
/*
 * In-memory API key table for the request path: immutable versions published
 * with a split reference count (see keytable.h), per-key live state (token
 * buckets, credit used in the current UTC reset period) under a per-key
 * spinlock. No disk, no allocation on admit/settle.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "auth/keytable.h"
#include "auth/ratelimit.h"
#include "core/log.h"
#include "core/spinlock.h"
#include "core/util.h"
#include "llmgate/error.h"

#define MS_PER_DAY INT64_C(86400000)

/*
 * The published word packs the version pointer with the number of readers inside it. Versions are allocated aligned
 * to VERSION_ALIGN so the low bits of the pointer are free for that count: it only counts readers between the
 * fetch_add and the matching release (a few hundred ns each), so 65535 is far above any thread count, and the layout
 * does not depend on the platform's virtual address width.
 */
#define VERSION_ALIGN ((uintptr_t)65536)
#define COUNT_MASK (VERSION_ALIGN - 1)

struct key_live {
    atomic_uint refs; /* entries (of any version) pointing here */
    atomic_flag lock; /* guards everything below */
    int removed;      /* absent from the latest load */
    int disabled;
    int64_t expires_at;        /* unix seconds, 0 = never */
    int64_t credit_limit_pico; /* -1 = unlimited */
    lg_reset_period_t period;
    uint32_t rpm, tpm; /* 0 = unlimited (bucket unused) */
    lg_bucket_t rpm_b, tpm_b;
    int64_t used_pico;       /* credit used since period_start_ms */
    int64_t period_start_ms; /* INT64_MIN for LG_RESET_NONE */
    int64_t owed_pico;       /* spent while the remote limiter was unreachable, not yet delivered to it */
};

static const lg_key_remote_ops_t *_Atomic remote_ops;

void lg_keytable_set_remote(const lg_key_remote_ops_t *ops)
{
    atomic_store(&remote_ops, ops);
}

struct lg_key_entry {
    atomic_uint refs;
    lg_key_record_t *rec;  /* immutable deep copy, owned */
    struct key_live *live; /* one reference */
};

struct version {
    atomic_int_fast64_t inner; /* split refcount, see put_version() */
    size_t n;
    lg_key_entry_t **entries; /* n, one reference each */
    size_t mask;              /* both indexes have mask + 1 slots (power of two, >= 2n) */
    lg_key_entry_t **by_hash; /* open addressing on the first 8 bytes of the SHA-256 */
    lg_key_entry_t **by_id;   /* open addressing on FNV-1a of the id */
};

struct lg_keytable {
    _Atomic uintptr_t state; /* (struct version *) | readers inside it */
    pthread_mutex_t load_lock;
};

/* ---- small helpers ---- */

static const EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_init(void)
{
    /* an explicit fetch once: EVP_sha256() would make OpenSSL 3 fetch (and lock) on every digest */
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL)
        sha256_md = EVP_sha256();
}

static void sha256(const char *s, size_t len, uint8_t out[32])
{
    unsigned int outlen = 32;
    pthread_once(&sha256_once, sha256_init);
    if (EVP_Digest(s, len, out, &outlen, sha256_md, NULL) != 1 || outlen != 32)
        abort(); /* cannot fail short of OOM; never compare against an uninitialised hash */
}

static inline size_t hash_slot(const uint8_t h[32])
{
    uint64_t v;
    memcpy(&v, h, sizeof(v)); /* SHA-256 output is uniform: its first bytes are a fine table hash */
    return (size_t)v;
}

static size_t id_slot(const char *id)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; ++p)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return (size_t)(h ^ (h >> 29));
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

/* ---- UTC reset periods ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Start (Unix ms) of the reset period containing now: UTC midnight, Monday 00:00 UTC (ISO week), 1st of the month. */
static int64_t period_start_ms(lg_reset_period_t p, int64_t now_ms)
{
    int64_t day = floor_div(now_ms, MS_PER_DAY);
    switch (p) {
    case LG_RESET_DAILY:
        return day * MS_PER_DAY;
    case LG_RESET_WEEKLY: {
        int64_t wd = day + 3 - floor_div(day + 3, 7) * 7; /* 1970-01-01 was a Thursday: Monday = 0 */
        return (day - wd) * MS_PER_DAY;
    }
    case LG_RESET_MONTHLY: {
        int64_t y;
        int m;
        civil_from_days(day, &y, &m);
        return days_from_civil(y, m, 1) * MS_PER_DAY;
    }
    case LG_RESET_NONE:
    default:
        return INT64_MIN;
    }
}

/* Caller holds live->lock. A clock stepping back never resets usage. */
static void roll_period(struct key_live *l, int64_t now_ms)
{
    int64_t ps = period_start_ms(l->period, now_ms);
    if (ps > l->period_start_ms) {
        l->period_start_ms = ps;
        l->used_pico = 0;
    }
}

/* ---- live state ---- */

/* Caller holds l->lock (or l is not shared yet). Applies the record's limits; buckets keep their level. */
static void live_configure(struct key_live *l, const lg_key_record_t *rec, int64_t now_ms)
{
    l->removed = 0;
    l->disabled = rec->disabled;
    l->expires_at = rec->expires_at;
    l->credit_limit_pico = rec->credit_limit_pico;
    if (rec->rpm > 0) {
        if (l->rpm > 0)
            lg_bucket_reconfigure(&l->rpm_b, rec->rpm, rec->rpm / 60.0, now_ms);
        else
            lg_bucket_init(&l->rpm_b, rec->rpm, rec->rpm / 60.0, now_ms);
    }
    if (rec->tpm > 0) {
        if (l->tpm > 0)
            lg_bucket_reconfigure(&l->tpm_b, rec->tpm, rec->tpm / 60.0, now_ms);
        else
            lg_bucket_init(&l->tpm_b, rec->tpm, rec->tpm / 60.0, now_ms);
    }
    l->rpm = rec->rpm;
    l->tpm = rec->tpm;
}

static void live_set_usage(struct key_live *l, lg_reset_period_t p, int64_t used, int64_t now_ms)
{
    l->period = p;
    l->period_start_ms = period_start_ms(p, now_ms);
    l->used_pico = used > 0 ? used : 0;
}

static struct key_live *live_new(const lg_key_record_t *rec, int64_t used, int64_t now_ms)
{
    struct key_live *l = lg_malloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    atomic_init(&l->refs, 1);
    atomic_flag_clear(&l->lock);
    live_set_usage(l, rec->reset_period, used, now_ms);
    live_configure(l, rec, now_ms);
    return l;
}

static void live_update(struct key_live *l, const lg_key_record_t *rec, int64_t used, int64_t now_ms)
{
    lg_spin_lock(&l->lock);
    if (rec->reset_period != l->period) {
        live_set_usage(l, rec->reset_period, used, now_ms); /* the live count was for another period */
    } else {
        /* The store never knows more than this process spent itself, unless other processes share it (scale-out
         * replicas on one store): then its total is a floor for the live count. */
        roll_period(l, now_ms);
        if (used > l->used_pico && l->period_start_ms == period_start_ms(l->period, now_ms))
            l->used_pico = used;
    }
    live_configure(l, rec, now_ms);
    lg_spin_unlock(&l->lock);
}

static void live_release(struct key_live *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1)
        free(l);
}

/* ---- entries ---- */

lg_key_entry_t *lg_key_entry_ref(lg_key_entry_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

void lg_key_entry_release(lg_key_entry_t *e)
{
    if (e == NULL)
        return;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        lg_key_record_free(e->rec);
        live_release(e->live);
        free(e);
    }
}

const lg_key_record_t *lg_key_entry_record(const lg_key_entry_t *e)
{
    return e->rec;
}

/* ---- versions ---- */

static struct version *version_new(size_t n)
{
    struct version *v;
    size_t slots = 8;
    while (slots < 2 * n)
        slots <<= 1;
    if (posix_memalign((void **)&v, VERSION_ALIGN, sizeof(*v)) != 0)
        abort();
    atomic_init(&v->inner, 0);
    v->n = 0;
    v->entries = lg_malloc((n ? n : 1) * sizeof(*v->entries));
    v->mask = slots - 1;
    v->by_hash = lg_malloc(slots * sizeof(*v->by_hash));
    v->by_id = lg_malloc(slots * sizeof(*v->by_id));
    memset(v->by_hash, 0, slots * sizeof(*v->by_hash));
    memset(v->by_id, 0, slots * sizeof(*v->by_id));
    return v;
}

static void version_free(struct version *v)
{
    for (size_t i = 0; i < v->n; ++i)
        lg_key_entry_release(v->entries[i]);
    free(v->entries);
    free(v->by_hash);
    free(v->by_id);
    free(v);
}

static lg_key_entry_t *version_find_hash(const struct version *v, const uint8_t h[32])
{
    for (size_t i = hash_slot(h) & v->mask;; i = (i + 1) & v->mask) {
        lg_key_entry_t *e = v->by_hash[i];
        if (e == NULL)
            return NULL;
        if (CRYPTO_memcmp(e->rec->hash, h, 32) == 0)
            return e;
    }
}

static lg_key_entry_t *version_find_id(const struct version *v, const char *id)
{
    for (size_t i = id_slot(id) & v->mask;; i = (i + 1) & v->mask) {
        lg_key_entry_t *e = v->by_id[i];
        if (e == NULL)
            return NULL;
        if (strcmp(e->rec->id, id) == 0)
            return e;
    }
}

/* Only while building (single thread); the caller checked both keys are absent. Tables are at most half full. */
static void version_insert(struct version *v, lg_key_entry_t *e)
{
    size_t i;
    for (i = hash_slot(e->rec->hash) & v->mask; v->by_hash[i] != NULL; i = (i + 1) & v->mask)
        ;
    v->by_hash[i] = e;
    for (i = id_slot(e->rec->id) & v->mask; v->by_id[i] != NULL; i = (i + 1) & v->mask)
        ;
    v->by_id[i] = e;
    v->entries[v->n++] = e;
}

/*
 * Split reference count. The table's word counts readers that entered a version through it ("outer"); a version's
 * own counter ("inner") starts at 0 and counts readers that left after the version was replaced (negative) plus the
 * outer count handed over at replacement. Every reader leaves exactly once, either by decrementing the outer count
 * (version still installed) or the inner one, so inner reaches 0 exactly when the last of them is gone and the
 * hand-over happened; whoever makes it 0 frees the version. Inner cannot hit 0 early: before the hand-over it only
 * goes down from 0.
 */
static struct version *acquire_version(lg_keytable_t *t)
{
    uintptr_t s = atomic_fetch_add(&t->state, 1);
    assert((s & COUNT_MASK) != COUNT_MASK);
    return (struct version *)(s & ~COUNT_MASK);
}

static void release_version(lg_keytable_t *t, struct version *v)
{
    uintptr_t s = atomic_load(&t->state);
    while ((s & ~COUNT_MASK) == (uintptr_t)v) {
        if (atomic_compare_exchange_weak(&t->state, &s, s - 1))
            return;
    }
    if (atomic_fetch_sub(&v->inner, 1) == 1)
        version_free(v);
}

/* Called by whoever unpublished v, with the outer count taken out of the table's word. */
static void retire_version(struct version *v, uintptr_t outer)
{
    if (atomic_fetch_add(&v->inner, (int_fast64_t)outer) + (int_fast64_t)outer == 0)
        version_free(v);
}

/* ---- table ---- */

lg_keytable_t *lg_keytable_create(void)
{
    lg_keytable_t *t = lg_malloc(sizeof(*t));
    pthread_mutex_init(&t->load_lock, NULL);
    atomic_init(&t->state, (uintptr_t)version_new(0));
    return t;
}

void lg_keytable_destroy(lg_keytable_t *t)
{
    uintptr_t s;
    if (t == NULL)
        return;
    s = atomic_exchange(&t->state, (uintptr_t)0);
    retire_version((struct version *)(s & ~COUNT_MASK), s & COUNT_MASK);
    pthread_mutex_destroy(&t->load_lock);
    free(t);
}

size_t lg_keytable_load(lg_keytable_t *t, lg_key_record_t *const *records, const int64_t *period_usage_pico, size_t n,
                        int64_t now_ms)
{
    struct version *old, *v;
    uintptr_t s;

    pthread_mutex_lock(&t->load_lock);
    /* only loaders replace the version and we hold the load lock: the installed one cannot go away under us */
    old = (struct version *)(atomic_load(&t->state) & ~COUNT_MASK);
    v = version_new(n);
    for (size_t i = 0; i < n; ++i) {
        const lg_key_record_t *rec = records[i];
        int64_t used = period_usage_pico != NULL ? period_usage_pico[i] : 0;
        lg_key_entry_t *e, *prev;

        if (rec == NULL)
            continue;
        if (version_find_id(v, rec->id) != NULL || version_find_hash(v, rec->hash) != NULL) {
            LG_LOG(LG_LOG_WARN, "auth", "key table: duplicate key id or secret hash for %s, skipped", rec->id);
            continue;
        }
        e = lg_malloc(sizeof(*e));
        atomic_init(&e->refs, 1);
        if ((e->rec = lg_key_record_dup(rec)) == NULL) {
            LG_LOG(LG_LOG_WARN, "auth", "key table: cannot copy key %s, skipped", rec->id);
            free(e);
            continue;
        }
        if ((prev = version_find_id(old, rec->id)) != NULL) {
            e->live = prev->live;
            atomic_fetch_add(&e->live->refs, 1);
            live_update(e->live, rec, used, now_ms);
        } else {
            e->live = live_new(rec, used, now_ms);
        }
        version_insert(v, e);
    }

    s = atomic_exchange(&t->state, (uintptr_t)v);
    assert((struct version *)(s & ~COUNT_MASK) == old);
    for (size_t i = 0; i < old->n; ++i) {
        lg_key_entry_t *oe = old->entries[i];
        if (version_find_id(v, oe->rec->id) == NULL) {
            lg_spin_lock(&oe->live->lock);
            oe->live->removed = 1;
            lg_spin_unlock(&oe->live->lock);
        }
    }
    retire_version(old, s & COUNT_MASK);
    n = v->n;
    pthread_mutex_unlock(&t->load_lock);
    return n;
}

size_t lg_keytable_count(lg_keytable_t *t)
{
    struct version *v = acquire_version(t);
    size_t n = v->n;
    release_version(t, v);
    return n;
}

lg_key_entry_t *lg_keytable_lookup(lg_keytable_t *t, const char *secret, size_t len)
{
    uint8_t h[32];
    struct version *v;
    lg_key_entry_t *e;

    if (secret == NULL)
        return NULL;
    sha256(secret, len, h);
    v = acquire_version(t);
    if ((e = version_find_hash(v, h)) != NULL)
        lg_key_entry_ref(e);
    release_version(t, v);
    return e;
}

lg_key_entry_t *lg_keytable_get_by_id(lg_keytable_t *t, const char *id)
{
    struct version *v;
    lg_key_entry_t *e;

    if (id == NULL)
        return NULL;
    v = acquire_version(t);
    if ((e = version_find_id(v, id)) != NULL)
        lg_key_entry_ref(e);
    release_version(t, v);
    return e;
}

/* ---- admission and accounting ---- */

/* X-RateLimit-* values for one bucket. Caller holds the live lock. */
static void fill_headers(lg_admit_t *out, lg_bucket_t *b, uint32_t limit, int64_t now_ms)
{
    double level = lg_bucket_level(b, now_ms);
    int64_t full_in = lg_bucket_full_in_ms(b, now_ms);
    out->limit = limit;
    out->remaining = level > 0 ? (int64_t)floor(level) : 0;
    out->reset_unix_ms = now_ms + (full_in > 0 ? full_in : 0);
}

static int refuse(lg_admit_t *out, int err, const char *reason)
{
    out->err = err;
    out->reason = reason;
    return err;
}

/* Caller holds l->lock. */
static void limits_locked(lg_key_entry_t *e, lg_key_limits_t *out)
{
    struct key_live *l = e->live;
    out->id = e->rec->id;
    out->rpm = l->rpm;
    out->tpm = l->tpm;
    out->credit_limit_pico = l->credit_limit_pico;
    out->period = l->period;
    out->period_start_ms = l->period_start_ms;
    out->used_pico = l->used_pico;
    out->owed_pico = l->owed_pico;
}

void lg_key_limits(lg_key_entry_t *e, int64_t now_ms, lg_key_limits_t *out)
{
    lg_spin_lock(&e->live->lock);
    roll_period(e->live, now_ms);
    limits_locked(e, out);
    lg_spin_unlock(&e->live->lock);
}

void lg_key_owed_add(lg_key_entry_t *e, int64_t pico)
{
    lg_spin_lock(&e->live->lock);
    e->live->owed_pico = sat_add(e->live->owed_pico, pico);
    lg_spin_unlock(&e->live->lock);
}

int64_t lg_key_owed_take(lg_key_entry_t *e)
{
    lg_spin_lock(&e->live->lock);
    int64_t v = e->live->owed_pico;
    e->live->owed_pico = 0;
    lg_spin_unlock(&e->live->lock);
    return v;
}

void lg_key_credit_raise(lg_key_entry_t *e, int64_t used_pico, int64_t now_ms)
{
    lg_spin_lock(&e->live->lock);
    roll_period(e->live, now_ms);
    if (used_pico > e->live->used_pico)
        e->live->used_pico = used_pico;
    lg_spin_unlock(&e->live->lock);
}

int lg_key_admit(lg_key_entry_t *e, int64_t est_tokens, int64_t now_ms, lg_admit_t *out)
{
    struct key_live *l = e->live;
    int64_t w_rpm = 0, w_tpm = 0;
    double need = 0;
    int rc;
    const lg_key_remote_ops_t *remote = atomic_load_explicit(&remote_ops, memory_order_acquire);

    if (est_tokens < 0)
        est_tokens = 0;
    out->err = 0;
    out->reason = NULL;
    out->retry_after_ms = 0;
    out->limit = -1;
    out->remaining = -1;
    out->reset_unix_ms = 0;

    lg_spin_lock(&l->lock);
    if (l->rpm > 0)
        fill_headers(out, &l->rpm_b, l->rpm, now_ms);
    else if (l->tpm > 0)
        fill_headers(out, &l->tpm_b, l->tpm, now_ms);

    if (l->removed) {
        rc = refuse(out, LG_EAUTH, "removed");
        goto done;
    }
    if (l->disabled) {
        rc = refuse(out, LG_EAUTH, "disabled");
        goto done;
    }
    if (l->expires_at != 0 && now_ms >= l->expires_at * 1000) {
        rc = refuse(out, LG_EAUTH, "expired");
        goto done;
    }
    roll_period(l, now_ms);
    if (remote != NULL && remote->admit != NULL) {
        lg_key_limits_t lim;
        limits_locked(e, &lim);
        lg_spin_unlock(&l->lock);
        /* the shared limiter decides without our lock held (it may queue I/O); its verdict replaces the local one */
        if (remote->admit(e, &lim, est_tokens, now_ms, out))
            return out->err;
        lg_spin_lock(&l->lock);
        roll_period(l, now_ms);
    }
    if (l->credit_limit_pico >= 0 && l->used_pico >= l->credit_limit_pico) {
        rc = refuse(out, LG_ECREDIT, "credit");
        goto done;
    }

    /* check both buckets before taking from either: everything that changes them holds l->lock, so this is atomic */
    if (l->rpm > 0)
        w_rpm = lg_bucket_wait_ms(&l->rpm_b, 1, now_ms);
    if (l->tpm > 0) {
        /* an estimate above the whole budget passes on a full bucket (and leaves debt) instead of never */
        need = (double)est_tokens < (double)l->tpm ? (double)est_tokens : (double)l->tpm;
        w_tpm = lg_bucket_wait_ms(&l->tpm_b, need, now_ms);
    }
    if (w_rpm != 0 || w_tpm != 0) {
        /* report the binding limit: the one that frees up last */
        if (w_tpm > w_rpm) {
            fill_headers(out, &l->tpm_b, l->tpm, now_ms);
            out->retry_after_ms = w_tpm;
            rc = refuse(out, LG_ERATELIMIT, "tpm");
        } else {
            fill_headers(out, &l->rpm_b, l->rpm, now_ms);
            out->retry_after_ms = w_rpm;
            rc = refuse(out, LG_ERATELIMIT, "rpm");
        }
        goto done;
    }
    if (l->rpm > 0)
        lg_bucket_adjust(&l->rpm_b, -1, now_ms);
    if (l->tpm > 0)
        lg_bucket_adjust(&l->tpm_b, -(double)est_tokens, now_ms);
    if (l->rpm > 0)
        fill_headers(out, &l->rpm_b, l->rpm, now_ms);
    else if (l->tpm > 0)
        fill_headers(out, &l->tpm_b, l->tpm, now_ms);
    rc = 0;
done:
    lg_spin_unlock(&l->lock);
    return rc;
}

void lg_key_settle(lg_key_entry_t *e, int64_t est_tokens, int64_t actual_tokens, int64_t cost_pico, int64_t now_ms)
{
    struct key_live *l = e->live;

    if (est_tokens < 0)
        est_tokens = 0;
    if (actual_tokens < 0)
        actual_tokens = 0;
    const lg_key_remote_ops_t *remote = atomic_load_explicit(&remote_ops, memory_order_acquire);
    lg_spin_lock(&l->lock);
    roll_period(l, now_ms);
    if (cost_pico > 0)
        l->used_pico = sat_add(l->used_pico, cost_pico);
    if (remote != NULL && remote->settle != NULL) {
        lg_key_limits_t lim;
        limits_locked(e, &lim);
        lg_spin_unlock(&l->lock);
        if (remote->settle(e, &lim, est_tokens, actual_tokens, cost_pico, now_ms))
            return;
        lg_spin_lock(&l->lock);
    }
    if (l->tpm > 0 && est_tokens != actual_tokens)
        lg_bucket_adjust(&l->tpm_b, (double)est_tokens - (double)actual_tokens, now_ms);
    lg_spin_unlock(&l->lock);
}

int64_t lg_key_credit_used_pico(lg_key_entry_t *e, int64_t now_ms)
{
    struct key_live *l = e->live;
    int64_t used;
    lg_spin_lock(&l->lock);
    roll_period(l, now_ms);
    used = l->used_pico;
    lg_spin_unlock(&l->lock);
    return used;
}

/* ---- allow-lists ---- */

static int list_allows(char *const *list, const char *name)
{
    if (name == NULL)
        return 0;
    if (list == NULL)
        return 1;
    for (; *list != NULL; ++list) {
        size_t n = strlen(*list);
        if (n > 0 && (*list)[n - 1] == '*') {
            if (strncmp(*list, name, n - 1) == 0)
                return 1;
        } else if (strcmp(*list, name) == 0) {
            return 1;
        }
    }
    return 0;
}

int lg_key_model_allowed(const lg_key_entry_t *e, const char *model)
{
    return list_allows(e->rec->allowed_models, model);
}

int lg_key_tool_allowed(const lg_key_entry_t *e, const char *tool)
{
    return list_allows(e->rec->allowed_tools, tool);
}
