/* SPDX-License-Identifier: MIT */
/*
 * The generation ledger: event-loop threads hand finished generations to a
 * bounded in-memory queue; one writer thread commits them to the store in
 * batches. Submitting never touches the disk and never blocks beyond a short
 * mutex hold.
 *
 * Durability bound: a submitted row is committed within flush_interval_ms
 * (the writer commits as soon as rows are present; rows that arrive during a
 * commit go into the next batch). After kill -9 at most the rows of the last
 * flush interval are missing; what was committed is never lost or corrupted
 * (WAL, synchronous=NORMAL).
 *
 * Overflow policy: when the queue is full, lg_ledger_submit returns
 * LG_EQUEUEFULL and the row is dropped. Drops are never silent: they are
 * counted (lg_ledger_stats().dropped, exported as a metric) and logged at most
 * once per 10 s with the running count. Rows whose commit keeps failing (disk
 * full, ...) are retried every 100 ms, LG_LEDGER_MAX_RETRIES times, then also
 * counted as dropped.
 */
#ifndef LG_STORE_LEDGER_H
#define LG_STORE_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

#define LG_LEDGER_BATCH_MAX 1024 /* rows per transaction */
#define LG_LEDGER_MAX_RETRIES 50 /* failed commits of one batch before its rows count as dropped */
#define LG_LEDGER_RETRY_DELAY_MS 100

typedef struct lg_ledger lg_ledger_t;

typedef struct lg_ledger_stats {
    uint64_t depth;         /* rows waiting in the queue now */
    uint64_t capacity;      /* queue capacity */
    uint64_t submitted;     /* rows accepted by lg_ledger_submit */
    uint64_t committed;     /* rows durably committed */
    uint64_t dropped;       /* rows lost: queue full, or commit retries exhausted */
    uint64_t batches;       /* committed transactions */
    int64_t last_commit_ms; /* unix ms of the last successful commit, 0 = none yet */
    int store_unreachable;  /* 1 while the writer holds a batch because the store server is away (PostgreSQL) */
} lg_ledger_stats_t;

/**
 * Start the writer thread. It opens its own connection to db_path (created and migrated if needed); this call waits
 * until that open succeeded and returns NULL with the reason in err if it did not. queue_capacity >= 1,
 * flush_interval_ms 1..1000 (config store.queue_capacity / store.flush_interval_ms).
 */
lg_ledger_t *lg_ledger_start(const char *db_path, uint32_t queue_capacity, uint32_t flush_interval_ms, char *err, size_t errlen);

/**
 * Queue one row; callable from any thread, never waits on disk. Takes ownership of row->attempts_json in all cases
 * (sets it to NULL). Returns 0, LG_EQUEUEFULL (row dropped and counted) or LG_ESHUTDOWN (after lg_ledger_stop
 * began; also counted as dropped).
 */
int lg_ledger_submit(lg_ledger_t *l, lg_generation_row_t *row);

/**
 * Drain: commit everything queued, join the writer, close its connection, free l. Call once, after the event loops
 * stopped submitting (SIGTERM path). NULL is a no-op.
 */
void lg_ledger_stop(lg_ledger_t *l);

/** Counters; lock-free, callable from any thread (metrics). */
void lg_ledger_stats(const lg_ledger_t *l, lg_ledger_stats_t *out);

#endif
