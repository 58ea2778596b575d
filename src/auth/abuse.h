/* SPDX-License-Identifier: MIT */
/*
 * Per-connection abuse guard against HTTP/2 "Rapid Reset" (CVE-2023-44487),
 * which Debian's h2o 2.2.5 does not mitigate: a client that opens and
 * cancels requests in a loop makes the gateway parse, route and start an
 * upstream call for every one. We count requests the client cancelled before
 * their response finished, per connection, in a small per-worker table; past
 * the limit within the window, new requests on that connection are refused
 * with 429 before any routing or upstream work.
 */
#ifndef LG_AUTH_ABUSE_H
#define LG_AUTH_ABUSE_H

#include <stdint.h>

#define LG_ABUSE_SLOTS 256
#define LG_ABUSE_MAX_CANCELS 100 /* cancelled requests per connection ... */
#define LG_ABUSE_WINDOW_MS 10000 /* ... within this window */

typedef struct lg_abuse_slot {
    uint64_t conn_id;
    uint32_t cancels;
    int64_t window_start_ms;
} lg_abuse_slot_t;

typedef struct lg_abuse_table {
    lg_abuse_slot_t slots[LG_ABUSE_SLOTS];
} lg_abuse_table_t;

/** Record a request the client cancelled before it finished. */
void lg_abuse_note_cancel(lg_abuse_table_t *t, uint64_t conn_id, int64_t now_ms);
/** 1 if the connection is over the limit (refuse new requests on it). */
int lg_abuse_blocked(const lg_abuse_table_t *t, uint64_t conn_id, int64_t now_ms);

#endif
