/* SPDX-License-Identifier: MIT */
/*
 * Reload outcomes (see reload_status.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "core/reload_status.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tickets;
static lg_reload_result_t last;

uint64_t lg_reload_ticket(void)
{
    pthread_mutex_lock(&lock);
    uint64_t t = ++tickets;
    pthread_mutex_unlock(&lock);
    return t;
}

uint64_t lg_reload_begin(void)
{
    pthread_mutex_lock(&lock);
    uint64_t t = tickets;
    pthread_mutex_unlock(&lock);
    return t;
}

void lg_reload_finish(uint64_t covers, int ok, uint64_t generation, const char *error)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&lock);
    last.covers = covers > last.covers ? covers : last.covers;
    last.ok = ok;
    last.generation = generation;
    last.finished_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(last.error, sizeof(last.error), "%s", error != NULL ? error : "");
    pthread_mutex_unlock(&lock);
}

void lg_reload_last(lg_reload_result_t *out)
{
    pthread_mutex_lock(&lock);
    *out = last;
    pthread_mutex_unlock(&lock);
}
