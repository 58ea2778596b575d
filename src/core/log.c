/* SPDX-License-Identifier: MIT */
/*
 * Process log implementation: formats one line and hands it to the sink.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/log.h"

int lg_log_level = LG_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void stderr_sink(int level, const char *module, const char *line)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    /* one fprintf per line so lines from several workers do not interleave */
    fprintf(stderr, "%s.%03ldZ %-5s [%s] %s\n", stamp, ts.tv_nsec / 1000000, level_names[level & 3], module, line);
}

static lg_log_sink_t sink = stderr_sink;

void lg_log_set_sink(lg_log_sink_t s)
{
    sink = s != NULL ? s : stderr_sink;
}

int lg_log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "err") == 0 || strcmp(name, "error") == 0)
        return LG_LOG_ERR;
    if (strcmp(name, "warn") == 0 || strcmp(name, "warning") == 0)
        return LG_LOG_WARN;
    if (strcmp(name, "info") == 0)
        return LG_LOG_INFO;
    if (strcmp(name, "debug") == 0)
        return LG_LOG_DEBUG;
    return -1;
}

void lg_log_vwrite(int level, const char *module, const char *fmt, va_list ap)
{
    char line[2048];
    if (level > lg_log_level)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    /* keep one record per line even if a message carries newlines */
    for (char *p = line; *p != '\0'; ++p)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    sink(level, module, line);
}

void lg_log_write(int level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lg_log_vwrite(level, module, fmt, ap);
    va_end(ap);
}
