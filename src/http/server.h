/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server: listeners (SO_REUSEPORT per worker), N worker threads,
 * route dispatch, config publication and graceful shutdown.
 */
#ifndef LG_HTTP_SERVER_H
#define LG_HTTP_SERVER_H

#include <stdint.h>
#include "runtime/snapshot.h"

/** Bind listeners and start the workers on snap (the server takes a reference). Returns 0 or -1 with err. */
int lg_server_start(lg_snapshot_t *snap, char *err, size_t errlen);
/** Hand a new snapshot to every worker (reload). The server takes a reference. Main thread. */
void lg_server_publish(lg_snapshot_t *snap);
/** Stop accepting and let in-flight requests finish; returns when all workers have exited or after deadline_ms, when the
 * remaining requests are cut. Returns the number of requests that were cut. Main thread. */
unsigned lg_server_shutdown(uint32_t deadline_ms);
/** Requests in flight over all workers (approximate). */
unsigned lg_server_in_flight(void);
/** Process start time and worker count, for /health. */
int64_t lg_server_started_at(void);
unsigned lg_server_num_workers(void);

#endif
