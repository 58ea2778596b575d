/* SPDX-License-Identifier: MIT */
/*
 * Access log writer (see accesslog.h). Requests the client cancelled before any byte of the response (status 499,
 * no ttft_ms) are what a stream-reset flood produces: past CANCEL_LINES_PER_SEC of them per second and thread, they
 * are folded into one summary line ({"aggregate":"cancelled","count":N}) written with the thread's next line.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/accesslog.h"

static _Atomic int log_fd = -1;

int lg_accesslog_open(const char *target)
{
    int fd = -1;
    if (target != NULL && strcmp(target, "off") != 0) {
        if (strcmp(target, "stderr") == 0)
            fd = dup(STDERR_FILENO);
        else
            fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return -1;
    }
    int old = atomic_exchange(&log_fd, fd);
    if (old >= 0)
        close(old); /* a write racing with a reopen may be lost; reopen only happens on reload */
    return 0;
}

int lg_accesslog_enabled(void)
{
    return atomic_load_explicit(&log_fd, memory_order_relaxed) >= 0;
}

#define CANCEL_LINES_PER_SEC 10

static _Thread_local struct {
    int64_t window_s; /* the second being counted */
    unsigned written; /* cancelled lines written in it */
    uint64_t folded;  /* cancelled lines folded into the next summary */
    int64_t folded_since_s;
} cancels;

static void write_line(int fd, json_t *record);

static void flush_folded(int fd)
{
    if (cancels.folded == 0)
        return;
    char ts[32], since[32];
    time_t t = time(NULL), s0 = (time_t)cancels.folded_since_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    gmtime_r(&s0, &tm);
    strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
    uint64_t n = cancels.folded;
    cancels.folded = 0;
    write_line(fd, json_pack("{s:s,s:s,s:I,s:s,s:i}", "ts", ts, "aggregate", "cancelled", "count", (json_int_t)n, "since", since,
                             "status", 499));
}

/* 1 if the record is folded into a summary instead of written */
static int fold_cancelled(int fd, json_t *record)
{
    int64_t now = (int64_t)time(NULL);
    if (now != cancels.window_s) {
        flush_folded(fd);
        cancels.window_s = now;
        cancels.written = 0;
    }
    if (json_integer_value(json_object_get(record, "status")) != 499 || json_object_get(record, "ttft_ms") != NULL)
        return 0;
    if (cancels.written < CANCEL_LINES_PER_SEC) {
        ++cancels.written;
        return 0;
    }
    if (cancels.folded++ == 0)
        cancels.folded_since_s = now;
    return 1;
}

void lg_accesslog_write(json_t *record)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    if (fd < 0) {
        json_decref(record);
        return;
    }
    if (fold_cancelled(fd, record)) {
        json_decref(record);
        return;
    }
    write_line(fd, record);
}

static void write_line(int fd, json_t *record)
{
    char *line = json_dumps(record, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(record);
    if (line == NULL)
        return;
    size_t n = strlen(line);
    line[n] = '\n'; /* json_dumps' NUL becomes the newline: one write for the whole line */
    ssize_t rc = write(fd, line, n + 1);
    (void)rc;
    free(line);
}
