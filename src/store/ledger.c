/* SPDX-License-Identifier: MIT */
/*
 * Ledger writer: a bounded ring of row pointers filled by event-loop threads
 * and drained by one writer thread that owns its own store connection and
 * commits whatever is queued in one transaction per batch. See ledger.h for
 * the durability bound and the overflow policy.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "core/util.h"
#include "store/ledger.h"

#define DROP_LOG_INTERVAL_MS 10000

struct lg_ledger {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* writer waits here for rows or stop */
    pthread_t thread;
    lg_generation_row_t **ring; /* capacity slots; rows are heap copies so memory follows the depth, not the capacity */
    size_t cap, head, count;    /* guarded by mu */
    int stopping;               /* guarded by mu */

    char *db_path;
    uint32_t flush_interval_ms;
    lg_store_t *store; /* writer thread only */

    /* start-up handshake: the writer reports whether its open succeeded */
    int open_done, open_rc;
    char open_err[512];

    _Atomic uint64_t depth, submitted, committed, dropped, batches;
    _Atomic int64_t last_commit_ms;
    _Atomic int64_t last_drop_log_ms; /* monotonic; rate limit of the drop warning */
    int64_t last_unreachable_log_ms;  /* writer thread only */
    _Atomic int unreachable;          /* the store server is away: the writer is holding a batch */
};

static int ledger_stopping(lg_ledger_t *l)
{
    pthread_mutex_lock(&l->mu);
    int stopping = l->stopping;
    pthread_mutex_unlock(&l->mu);
    return stopping;
}

static void row_free(lg_generation_row_t *r)
{
    if (r == NULL)
        return;
    free(r->attempts_json);
    free(r);
}

/* Count n lost rows and say so, at most once per DROP_LOG_INTERVAL_MS (the counter carries the exact number). */
static void count_drops(lg_ledger_t *l, uint64_t n, const char *why)
{
    uint64_t total = atomic_fetch_add(&l->dropped, n) + n;
    int64_t now = lg_now_ms(), last = atomic_load(&l->last_drop_log_ms);
    if ((last == 0 || now - last >= DROP_LOG_INTERVAL_MS) && atomic_compare_exchange_strong(&l->last_drop_log_ms, &last, now))
        LG_LOG(LG_LOG_WARN, "ledger", "dropped %llu ledger rows (%s); %llu dropped since start", (unsigned long long)n, why,
               (unsigned long long)total);
}

int lg_ledger_submit(lg_ledger_t *l, lg_generation_row_t *row)
{
    lg_generation_row_t *copy;
    int rc = 0;

    /* the copy is made before taking the lock so the critical section is a pointer store */
    copy = lg_malloc(sizeof(*copy));
    *copy = *row;
    row->attempts_json = NULL; /* ownership moved into copy */

    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        rc = LG_ESHUTDOWN;
    } else if (l->count == l->cap) {
        rc = LG_EQUEUEFULL;
    } else {
        l->ring[(l->head + l->count) % l->cap] = copy;
        l->count++;
        atomic_store(&l->depth, l->count);
        pthread_cond_signal(&l->cond);
    }
    pthread_mutex_unlock(&l->mu);

    if (rc != 0) {
        row_free(copy);
        count_drops(l, 1, rc == LG_EQUEUEFULL ? "queue full" : "ledger stopped");
        return rc;
    }
    atomic_fetch_add(&l->submitted, 1);
    return 0;
}

/* Commit rows[0..n) with bounded retries; returns how many were dropped. Writer thread only. */
static void commit_batch(lg_ledger_t *l, lg_generation_row_t *rows, size_t n)
{
    size_t skipped = 0;
    int attempt;

    for (attempt = 0; attempt <= LG_LEDGER_MAX_RETRIES; ++attempt) {
        if (attempt > 0) {
            struct timespec ts = {0, LG_LEDGER_RETRY_DELAY_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (lg_store_insert_generations_ex(l->store, rows, n, &skipped) == 0)
            break;
        if (lg_store_unreachable(l->store) && !ledger_stopping(l)) {
            /* the server is away (restart, failover): keep the batch and wait for it without spending the retry
             * budget; new rows queue behind it up to the queue bound. Once stopping, the normal budget applies. */
            int64_t now = lg_now_ms();
            if (now - l->last_unreachable_log_ms >= DROP_LOG_INTERVAL_MS) {
                l->last_unreachable_log_ms = now;
                LG_LOG(LG_LOG_WARN, "ledger", "store unreachable, holding %zu rows and retrying: %s", n, lg_store_errmsg(l->store));
            }
            atomic_store(&l->unreachable, 1);
            attempt = 0;
            continue;
        }
        if (attempt == 0 || attempt == LG_LEDGER_MAX_RETRIES)
            LG_LOG(LG_LOG_ERR, "ledger", "commit of %zu rows failed (attempt %d of %d): %s", n, attempt + 1,
                   LG_LEDGER_MAX_RETRIES + 1, lg_store_errmsg(l->store));
    }
    if (attempt > LG_LEDGER_MAX_RETRIES) {
        count_drops(l, n, "commit kept failing");
        return;
    }
    if (skipped > 0) {
        /* an id already in the ledger (or none at all): the row is not stored twice, and that is a loss to report */
        LG_LOG(LG_LOG_WARN, "ledger", "%zu ledger rows skipped: missing or duplicate generation id", skipped);
        count_drops(l, skipped, "duplicate id");
    }
    atomic_store(&l->unreachable, 0);
    atomic_fetch_add(&l->committed, n - skipped);
    atomic_fetch_add(&l->batches, 1);
    atomic_store(&l->last_commit_ms, lg_unix_ms());
}

static void *writer_main(void *arg)
{
    lg_ledger_t *l = arg;
    lg_generation_row_t *taken[LG_LEDGER_BATCH_MAX];
    lg_generation_row_t *batch;
    char err[512];

    l->store = lg_store_open(l->db_path, err, sizeof(err));
    pthread_mutex_lock(&l->mu);
    l->open_done = 1;
    l->open_rc = l->store != NULL ? 0 : -1;
    if (l->store == NULL)
        snprintf(l->open_err, sizeof(l->open_err), "%s", err);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (l->store == NULL)
        return NULL;

    batch = lg_malloc(sizeof(*batch) * LG_LEDGER_BATCH_MAX);
    for (;;) {
        size_t n = 0;

        pthread_mutex_lock(&l->mu);
        /*
         * Wait for rows; the timed wait only bounds a missed wake-up. Rows that arrive during a commit form the
         * next batch.
         */
        while (l->count == 0 && !l->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)l->flush_interval_ms * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&l->cond, &l->mu, &ts);
        }
        if (l->count == 0 && l->stopping) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        /* Gather for a short while before committing: one commit per request would cost a core's worth of CPU at a
         * few thousand requests/s on small machines. A quarter of the flush interval (at most 50 ms) plus the commit
         * keeps every row well inside the flush-interval durability bound. */
        if (!l->stopping && l->count < LG_LEDGER_BATCH_MAX / 2) {
            uint32_t gather_ms = l->flush_interval_ms / 4 < 50 ? l->flush_interval_ms / 4 : 50;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)gather_ms * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            while (!l->stopping && l->count < LG_LEDGER_BATCH_MAX / 2 && pthread_cond_timedwait(&l->cond, &l->mu, &ts) == 0)
                ;
        }
        while (n < LG_LEDGER_BATCH_MAX && l->count > 0) {
            taken[n++] = l->ring[l->head];
            l->ring[l->head] = NULL;
            l->head = (l->head + 1) % l->cap;
            l->count--;
        }
        atomic_store(&l->depth, l->count);
        pthread_mutex_unlock(&l->mu);

        for (size_t i = 0; i < n; ++i)
            batch[i] = *taken[i];
        commit_batch(l, batch, n);
        for (size_t i = 0; i < n; ++i)
            row_free(taken[i]);
    }
    free(batch);
    return NULL;
}

lg_ledger_t *lg_ledger_start(const char *db_path, uint32_t queue_capacity, uint32_t flush_interval_ms, char *err, size_t errlen)
{
    lg_ledger_t *l;
    int rc;

    if (queue_capacity == 0 || flush_interval_ms == 0) {
        snprintf(err, errlen, "ledger: queue capacity and flush interval must be positive");
        return NULL;
    }
    l = lg_malloc(sizeof(*l));
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    l->cap = queue_capacity;
    l->ring = lg_malloc(sizeof(*l->ring) * l->cap);
    l->db_path = lg_strdup(db_path);
    l->flush_interval_ms = flush_interval_ms;
    atomic_init(&l->depth, 0);
    atomic_init(&l->submitted, 0);
    atomic_init(&l->committed, 0);
    atomic_init(&l->dropped, 0);
    atomic_init(&l->batches, 0);
    atomic_init(&l->last_commit_ms, 0);
    atomic_init(&l->last_drop_log_ms, 0);

    if ((rc = pthread_create(&l->thread, NULL, writer_main, l)) != 0) {
        snprintf(err, errlen, "ledger: cannot start the writer thread: %s", strerror(rc));
        goto fail;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->open_done)
        pthread_cond_wait(&l->cond, &l->mu);
    rc = l->open_rc;
    pthread_mutex_unlock(&l->mu);
    if (rc != 0) {
        snprintf(err, errlen, "ledger: %s", l->open_err);
        pthread_join(l->thread, NULL);
        goto fail;
    }
    return l;
fail:
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l->ring);
    free(l->db_path);
    free(l);
    return NULL;
}

void lg_ledger_stop(lg_ledger_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL); /* the writer exits only once the ring is empty */
    lg_store_close(l->store);
    LG_LOG(LG_LOG_INFO, "ledger", "stopped: %llu rows committed in %llu batches, %llu dropped",
           (unsigned long long)atomic_load(&l->committed), (unsigned long long)atomic_load(&l->batches),
           (unsigned long long)atomic_load(&l->dropped));
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l->ring);
    free(l->db_path);
    free(l);
}

void lg_ledger_stats(const lg_ledger_t *l, lg_ledger_stats_t *out)
{
    lg_ledger_t *m = (lg_ledger_t *)l; /* atomic_load takes a non-const pointer in C11 */
    out->depth = atomic_load(&m->depth);
    out->capacity = m->cap;
    out->submitted = atomic_load(&m->submitted);
    out->committed = atomic_load(&m->committed);
    out->dropped = atomic_load(&m->dropped);
    out->batches = atomic_load(&m->batches);
    out->last_commit_ms = atomic_load(&m->last_commit_ms);
    out->store_unreachable = atomic_load(&m->unreachable);
}
