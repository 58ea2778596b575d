/* SPDX-License-Identifier: MIT */
/*
 * Outcome of config reloads, for the admin API and the dashboard. A reload
 * is asynchronous (SIGHUP, handled on the main loop), so a caller takes a
 * ticket when it asks for one; the main thread, when it starts a reload,
 * notes the highest ticket issued so far (that reload covers all of them,
 * even when several SIGHUPs were merged into one) and publishes the result
 * with it. A caller's reload is done once last().covers >= its ticket.
 * Thread-safe (one mutex; a handful of calls per reload).
 */
#ifndef LG_CORE_RELOAD_STATUS_H
#define LG_CORE_RELOAD_STATUS_H

#include <stdint.h>

typedef struct lg_reload_result {
    uint64_t covers;     /* highest ticket this reload answers; 0 = no reload yet */
    int ok;              /* 1 = the new config is served, 0 = rejected (the old one stays) */
    uint64_t generation; /* config generation served after it */
    int64_t finished_ms; /* unix ms */
    char error[1024];    /* why it was rejected ("path.in.config: reason"), or a warning (keys not re-synced); "" */
} lg_reload_result_t;

/** Take a ticket for a reload about to be requested (any thread). */
uint64_t lg_reload_ticket(void);
/** Main thread, when a reload starts: the highest ticket it covers. */
uint64_t lg_reload_begin(void);
/** Main thread, when it finished. error may be NULL. */
void lg_reload_finish(uint64_t covers, int ok, uint64_t generation, const char *error);
/** Copy of the last result. */
void lg_reload_last(lg_reload_result_t *out);

#endif
