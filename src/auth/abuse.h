/* SPDX-License-Identifier: MIT */
/*
 * Per-connection abuse guard against HTTP/2 "Rapid Reset" (CVE-2023-44487),
 * which Debian's h2o 2.2.5 does not mitigate: a client that opens and
 * cancels requests in a loop makes the gateway parse, route and start an
 * upstream call for every one. We count requests the client cancelled before
 * their response finished, per connection, in a small per-worker table; past
 * the limit within the window, new requests on that connection are refused
 * with 429 before any routing or upstream work.
 *
 * A client that reconnects before the per-connection limit trips is caught by the per-address table: cancellations
 * are also counted per client address (IPv4 /32, IPv6 /64) across its connections; past LG_ABUSE_ADDR_MAX_CANCELS
 * within the window the address is blocked for LG_ABUSE_ADDR_BLOCK_MS, its requests refused with 429 and its
 * HTTP/2 connections closed (frontdoor.c). Tables are per worker: SO_REUSEPORT
 * spreads one client's connections over the workers, so a client gets at most workers x the limit.
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

#define LG_ABUSE_ADDR_SLOTS 1024
#define LG_ABUSE_ADDR_MAX_CANCELS 200 /* cancelled requests per client address ... */
#define LG_ABUSE_ADDR_WINDOW_MS 10000 /* ... within this window */
#define LG_ABUSE_ADDR_BLOCK_MS 10000  /* then refused for this long */

typedef struct lg_abuse_addr_slot {
    uint64_t key; /* lg_abuse_addr_key; 0 = empty */
    uint32_t cancels;
    int64_t window_start_ms;
    int64_t blocked_until_ms;
} lg_abuse_addr_slot_t;

typedef struct lg_abuse_table {
    lg_abuse_slot_t slots[LG_ABUSE_SLOTS];
    lg_abuse_addr_slot_t addrs[LG_ABUSE_ADDR_SLOTS];
    uint64_t addr_refused; /* requests refused by the per-address guard (worker-local; logged in aggregate) */
} lg_abuse_table_t;

struct sockaddr;

/** Key of a client address: IPv4 /32 or IPv6 /64 (one subscriber), never 0; 0 for an unknown family. */
uint64_t lg_abuse_addr_key(const struct sockaddr *sa);
/** Record a request from this address that the client cancelled before its response started; 1 if that blocked it. */
int lg_abuse_addr_note_cancel(lg_abuse_table_t *t, uint64_t key, int64_t now_ms);
/** 1 while the address is blocked. */
int lg_abuse_addr_blocked(const lg_abuse_table_t *t, uint64_t key, int64_t now_ms);

/** Record a request the client cancelled before it finished. */
void lg_abuse_note_cancel(lg_abuse_table_t *t, uint64_t conn_id, int64_t now_ms);
/** 1 if the connection is over the limit (refuse new requests on it). */
int lg_abuse_blocked(const lg_abuse_table_t *t, uint64_t conn_id, int64_t now_ms);

#endif
