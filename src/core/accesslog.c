/* SPDX-License-Identifier: MIT */
/*
 * Access log writer (see accesslog.h).
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
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

void lg_accesslog_write(json_t *record)
{
    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    if (fd < 0) {
        json_decref(record);
        return;
    }
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
