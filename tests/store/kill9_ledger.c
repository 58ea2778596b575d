/* SPDX-License-Identifier: MIT */
/*
 * kill -9 durability of the ledger. A child process runs a ledger (flush
 * interval 200 ms) and submits rows with increasing sequence numbers at about
 * 2000 rows/s, reporting "submitted N" on a pipe after each. The parent kills
 * it with SIGKILL after ~1.5 s and checks the database: integrity_check is ok,
 * the committed sequence numbers are exactly 1..C (no gap, no duplicate), and
 * every row submitted more than flush_interval (+ margin) before the kill is
 * there. Three rounds, each on a fresh database, killed at different moments.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "store/ledger.h"

#define FLUSH_MS 200
#define MARGIN_MS 100 /* scheduling slack on a loaded CI machine; the bound under test is FLUSH_MS */
#define RATE_PER_S 2000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Child: submit forever (until killed; 30 s safety cap). */
static void child_main(const char *db, int wfd)
{
    char err[512], line[64];
    lg_ledger_t *l = lg_ledger_start(db, 65536, FLUSH_MS, err, sizeof(err));
    if (l == NULL) {
        fprintf(stderr, "child: %s\n", err);
        _exit(3);
    }
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long seq = 1; seq <= 30L * RATE_PER_S; ++seq) {
        lg_generation_row_t r;
        memset(&r, 0, sizeof(r));
        snprintf(r.id, sizeof(r.id), "gen-seq-%010ld", seq);
        r.created_at_ms = wall_ms();
        snprintf(r.key_id, sizeof(r.key_id), "key_kill9");
        snprintf(r.served_model, sizeof(r.served_model), "mock/echo");
        snprintf(r.provider, sizeof(r.provider), "mock");
        r.prompt_tokens = seq; /* the sequence number the parent checks */
        r.cost_pico = 1000;
        r.status = 200;
        r.attempts_json = strdup("[{\"provider\":\"mock\",\"status\":200}]");
        if (lg_ledger_submit(l, &r) != 0) {
            fprintf(stderr, "child: submit %ld refused\n", seq);
            _exit(4);
        }
        int n = snprintf(line, sizeof(line), "submitted %ld\n", seq);
        if (write(wfd, line, (size_t)n) != n)
            _exit(5);
        /* absolute schedule: RATE_PER_S on average even if one iteration is slow */
        next.tv_nsec += 1000000000L / RATE_PER_S;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    lg_ledger_stop(l);
    _exit(0);
}

struct checkpoint {
    long seq;
    int64_t at_ms; /* when the parent read it: the row was submitted no later than this */
};

static int run_round(const char *dir, int round, int64_t run_ms)
{
    char db[PATH_MAX], buf[4096], pend[128] = "";
    size_t pendlen = 0;
    int fds[2];
    static struct checkpoint cps[200000];
    size_t ncp = 0;

    snprintf(db, sizeof(db), "%s/kill9-%d.db", dir, round);
    if (pipe(fds) != 0)
        return perror("pipe"), 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return perror("fork"), 1;
    if (pid == 0) {
        close(fds[0]);
        child_main(db, fds[1]);
    }
    close(fds[1]);

    int64_t start = mono_ms(), kill_at = 0;
    for (;;) {
        int64_t now = mono_ms();
        if (ncp > 0 && now - cps[0].at_ms >= run_ms) {
            kill_at = now;
            kill(pid, SIGKILL);
            break;
        }
        if (now - start > 20000) {
            fprintf(stderr, "round %d: child never reported progress\n", round);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 1;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        if (poll(&p, 1, 5) <= 0)
            continue;
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n <= 0) {
            fprintf(stderr, "round %d: child exited early\n", round);
            waitpid(pid, NULL, 0);
            return 1;
        }
        int64_t t = mono_ms();
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] != '\n') {
                if (pendlen + 1 < sizeof(pend))
                    pend[pendlen++] = buf[i];
                continue;
            }
            pend[pendlen] = '\0';
            pendlen = 0;
            long seq;
            if (sscanf(pend, "submitted %ld", &seq) == 1 && ncp < sizeof(cps) / sizeof(cps[0]))
                cps[ncp++] = (struct checkpoint){seq, t};
        }
    }
    int status;
    waitpid(pid, &status, 0);
    /* lines still in the pipe were submitted before the kill too */
    long highest = ncp > 0 ? cps[ncp - 1].seq : 0;
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; ++i)
            if (buf[i] == '\n')
                ++highest;
    close(fds[0]);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fprintf(stderr, "round %d: child was not killed by SIGKILL (status %d)\n", round, status);
        return 1;
    }

    /* everything reported at least FLUSH_MS + MARGIN_MS before the kill must be committed */
    long required = 0;
    for (size_t i = 0; i < ncp; ++i)
        if (cps[i].at_ms <= kill_at - FLUSH_MS - MARGIN_MS)
            required = cps[i].seq;

    sqlite3 *h;
    sqlite3_stmt *q;
    int fails = 0;
    if (sqlite3_open(db, &h) != SQLITE_OK)
        return fprintf(stderr, "round %d: cannot open %s\n", round, db), 1;
    sqlite3_busy_timeout(h, 5000);
    sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &q, NULL);
    if (sqlite3_step(q) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0) {
        fprintf(stderr, "round %d: integrity_check: %s\n", round, sqlite3_column_text(q, 0));
        fails++;
    }
    sqlite3_finalize(q);
    sqlite3_prepare_v2(h,
                       "SELECT count(*), count(DISTINCT prompt_tokens), COALESCE(min(prompt_tokens), 0),"
                       " COALESCE(max(prompt_tokens), 0) FROM generations",
                       -1, &q, NULL);
    sqlite3_step(q);
    long count = (long)sqlite3_column_int64(q, 0), distinct = (long)sqlite3_column_int64(q, 1);
    long lo = (long)sqlite3_column_int64(q, 2), hi = (long)sqlite3_column_int64(q, 3);
    sqlite3_finalize(q);
    sqlite3_close(h);

    printf("round %d: ran %lld ms, submitted %ld (reported %zu), committed %ld, required >= %ld, lost %ld (%.0f ms of rows)\n",
           round, (long long)(kill_at - cps[0].at_ms), highest, ncp, count, required, highest - count,
           (double)(highest - count) * 1000.0 / RATE_PER_S);
    if (distinct != count) {
        fprintf(stderr, "round %d: duplicate sequence numbers (%ld rows, %ld distinct)\n", round, count, distinct);
        fails++;
    }
    if (count > 0 && (lo != 1 || hi != count)) {
        fprintf(stderr, "round %d: committed rows are not the prefix 1..%ld (min %ld, max %ld)\n", round, count, lo, hi);
        fails++;
    }
    if (count < required) {
        fprintf(stderr, "round %d: only %ld rows committed, but %ld were submitted more than %d ms before the kill\n", round, count,
                required, FLUSH_MS + MARGIN_MS);
        fails++;
    }
    if (count > highest) {
        fprintf(stderr, "round %d: more rows (%ld) than were submitted (%ld)\n", round, count, highest);
        fails++;
    }
    if (required < RATE_PER_S / 2) {
        fprintf(stderr, "round %d: too little traffic to judge (%ld rows required)\n", round, required);
        fails++;
    }

    /* the killed database opens, migrates (nothing) and takes new rows */
    char err[512];
    lg_store_t *s = lg_store_open(db, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "round %d: reopen: %s\n", round, err);
        fails++;
    } else {
        lg_generation_row_t r;
        memset(&r, 0, sizeof(r));
        snprintf(r.id, sizeof(r.id), "gen-after-restart");
        if (lg_store_insert_generations(s, &r, 1) != 0) {
            fprintf(stderr, "round %d: insert after restart: %s\n", round, lg_store_errmsg(s));
            fails++;
        }
        lg_store_close(s);
    }
    return fails > 0;
}

int main(void)
{
    char dir[512], cmd[600];
    int fails = 0;

    snprintf(dir, sizeof(dir), "%s/lg_kill9_XXXXXX", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return perror("mkdtemp"), 1;
    fails += run_round(dir, 1, 1500);
    fails += run_round(dir, 2, 1730);
    fails += run_round(dir, 3, 1910);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    printf(fails == 0 ? "kill9_ledger: ok\n" : "kill9_ledger: FAILED\n");
    return fails == 0 ? 0 : 1;
}
