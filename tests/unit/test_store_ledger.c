/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/store/ledger.c: rows from several threads are committed
 * exactly once, rows that queue up during a commit are batched, a full queue
 * rejects and counts (never silently), and a row becomes visible to another
 * connection within the flush interval without stopping the ledger. A second
 * connection holding the write lock makes the batching tests deterministic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "store/ledger.h"

static char tmpdir[512];
static char dbpath[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/lg_ledger_test_XXXXXX", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static lg_ledger_t *start(const char *name, uint32_t cap, uint32_t flush_ms)
{
    char err[512] = "";
    snprintf(dbpath, sizeof(dbpath), "%s/%s.db", tmpdir, name);
    lg_ledger_t *l = lg_ledger_start(dbpath, cap, flush_ms, err, sizeof(err));
    if (l == NULL)
        print_error("ledger start: %s\n", err);
    assert_non_null(l);
    return l;
}

static void make_row(lg_generation_row_t *r, const char *prefix, int n)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s-%08d", prefix, n);
    r->created_at_ms = 1700000000000 + n;
    snprintf(r->key_id, sizeof(r->key_id), "key_test");
    snprintf(r->served_model, sizeof(r->served_model), "m/x");
    snprintf(r->provider, sizeof(r->provider), "p");
    r->prompt_tokens = n;
    r->cost_pico = 1;
    r->attempts_json = strdup("[{\"provider\":\"p\",\"status\":200}]");
}

static int64_t db_count(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    int64_t n = -1;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A second connection that holds the write lock, so the writer's next commit waits (busy_timeout) until released. */
static sqlite3 *block_writer(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void unblock_writer(sqlite3 *db)
{
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* Wait until the writer has taken everything out of the queue (it is then stuck on the lock). */
static void wait_depth_zero(lg_ledger_t *l)
{
    lg_ledger_stats_t st;
    for (int i = 0; i < 500; ++i) {
        lg_ledger_stats(l, &st);
        if (st.depth == 0)
            return;
        sleep_ms(2);
    }
    fail_msg("writer never took the queued rows");
}

/* ---- tests ---- */

struct submitter {
    lg_ledger_t *l;
    const char *prefix;
    int n, failures;
};

static void *submit_thread(void *arg)
{
    struct submitter *s = arg;
    for (int i = 1; i <= s->n; ++i) {
        lg_generation_row_t r;
        make_row(&r, s->prefix, i);
        if (lg_ledger_submit(s->l, &r) != 0)
            s->failures++;
        if (r.attempts_json != NULL) /* ownership must have moved */
            s->failures++;
        if (i % 500 == 0)
            sleep_ms(1);
    }
    return NULL;
}

static void test_ledger_two_threads_exactly_once(void **state)
{
    const int n = 3000;
    lg_ledger_stats_t st;
    pthread_t t1, t2;
    (void)state;

    lg_ledger_t *l = start("threads", 65536, 200);
    struct submitter a = {l, "gen-a", n, 0}, b = {l, "gen-b", n, 0};
    pthread_create(&t1, NULL, submit_thread, &a);
    pthread_create(&t2, NULL, submit_thread, &b);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(a.failures + b.failures, 0);
    lg_ledger_stats(l, &st);
    assert_int_equal(st.submitted, 2 * n);
    assert_int_equal(st.capacity, 65536);
    lg_ledger_stop(l); /* drains */

    assert_int_equal(db_count("SELECT count(*) FROM generations"), 2 * n);
    assert_int_equal(db_count("SELECT count(DISTINCT id) FROM generations"), 2 * n);
    assert_int_equal(db_count("SELECT count(*) FROM generations WHERE id LIKE 'gen-a-%'"), n);
    assert_int_equal(db_count("SELECT sum(prompt_tokens) FROM generations"), (int64_t)n * (n + 1));
    assert_int_equal(db_count("SELECT count(*) FROM generations WHERE attempts LIKE '[{%'"), 2 * n);
}

/* Rows that queue up while a commit is in progress go out together: row 0 alone, then 2999 rows in 3 batches. */
static void test_ledger_batch_count(void **state)
{
    const int n = 3000;
    lg_generation_row_t r;
    lg_ledger_stats_t st;
    (void)state;

    lg_ledger_t *l = start("batchcount", 65536, 200);
    sqlite3 *blocker = block_writer();
    make_row(&r, "gen", 0);
    assert_int_equal(lg_ledger_submit(l, &r), 0);
    wait_depth_zero(l);
    for (int i = 1; i < n; ++i) {
        make_row(&r, "gen", i);
        assert_int_equal(lg_ledger_submit(l, &r), 0);
    }
    unblock_writer(blocker);
    /* wait for the commits without stopping, so the counters are read from a live ledger */
    for (int i = 0; i < 1000; ++i) {
        lg_ledger_stats(l, &st);
        if (st.committed == (uint64_t)n)
            break;
        sleep_ms(5);
    }
    lg_ledger_stats(l, &st);
    assert_int_equal(st.committed, n);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.batches, 1 + (n - 1 + LG_LEDGER_BATCH_MAX - 1) / LG_LEDGER_BATCH_MAX);
    assert_true(st.last_commit_ms > 1700000000000);
    assert_int_equal(st.depth, 0);
    lg_ledger_stop(l);
}

static void test_ledger_queue_full_counts_drops(void **state)
{
    lg_generation_row_t r;
    lg_ledger_stats_t st;
    (void)state;

    lg_ledger_t *l = start("full", 4, 200);
    sqlite3 *blocker = block_writer();
    make_row(&r, "gen", 0);
    assert_int_equal(lg_ledger_submit(l, &r), 0);
    wait_depth_zero(l);
    for (int i = 1; i <= 4; ++i) {
        make_row(&r, "gen", i);
        assert_int_equal(lg_ledger_submit(l, &r), 0);
    }
    make_row(&r, "gen", 5);
    assert_int_equal(lg_ledger_submit(l, &r), LG_EQUEUEFULL);
    assert_null(r.attempts_json); /* freed by the ledger (ASan reports a leak otherwise) */
    make_row(&r, "gen", 6);
    assert_int_equal(lg_ledger_submit(l, &r), LG_EQUEUEFULL);
    lg_ledger_stats(l, &st);
    assert_int_equal(st.depth, 4);
    assert_int_equal(st.capacity, 4);
    assert_int_equal(st.submitted, 5);
    assert_int_equal(st.dropped, 2);
    unblock_writer(blocker);
    lg_ledger_stop(l);
    assert_int_equal(db_count("SELECT count(*) FROM generations"), 5);
    assert_int_equal(db_count("SELECT count(*) FROM generations WHERE id IN ('gen-00000005', 'gen-00000006')"), 0);
}

static void test_ledger_flush_bound_without_stop(void **state)
{
    const uint32_t flush_ms = 100;
    lg_generation_row_t r;
    (void)state;

    lg_ledger_t *l = start("flush", 1024, flush_ms);
    /* idle first, so the writer is parked in its wait, not mid-loop */
    sleep_ms(3 * flush_ms);
    make_row(&r, "gen", 1);
    assert_int_equal(lg_ledger_submit(l, &r), 0);
    sleep_ms(flush_ms + 150);
    assert_int_equal(db_count("SELECT count(*) FROM generations WHERE id = 'gen-00000001'"), 1);

    /* and again after another idle period */
    sleep_ms(2 * flush_ms);
    make_row(&r, "gen", 2);
    assert_int_equal(lg_ledger_submit(l, &r), 0);
    sleep_ms(flush_ms + 150);
    assert_int_equal(db_count("SELECT count(*) FROM generations"), 2);
    lg_ledger_stop(l);
}

static void test_ledger_start_fails_cleanly(void **state)
{
    char err[512] = "", path[PATH_MAX];
    (void)state;
    assert_null(lg_ledger_start("/proc/llmgate-no/such.db", 16, 200, err, sizeof(err)));
    assert_non_null(strstr(err, "ledger: "));
    assert_non_null(strstr(err, "/proc/llmgate-no/such.db"));
    assert_null(lg_ledger_start("x.db", 0, 200, err, sizeof(err)));
    /* a database from the future is refused at start, not at the first commit */
    snprintf(path, sizeof(path), "%s/future.db", tmpdir);
    lg_store_t *s = lg_store_open(path, err, sizeof(err));
    assert_non_null(s);
    lg_store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_null(lg_ledger_start(path, 16, 200, err, sizeof(err)));
    assert_non_null(strstr(err, "newer"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ledger_two_threads_exactly_once), cmocka_unit_test(test_ledger_batch_count),
        cmocka_unit_test(test_ledger_queue_full_counts_drops),  cmocka_unit_test(test_ledger_flush_bound_without_stop),
        cmocka_unit_test(test_ledger_start_fails_cleanly),
    };
    return cmocka_run_group_tests_name("ledger", tests, setup, teardown);
}
