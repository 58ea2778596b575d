/* SPDX-License-Identifier: MIT */
/*
 * Rapid-reset guard (see abuse.h). Direct-mapped by connection id: a
 * collision simply restarts the count for the newer connection, which can
 * only make the guard more lenient, never block an innocent connection.
 */
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "auth/abuse.h"

void lg_abuse_note_cancel(lg_abuse_table_t *t, uint64_t conn_id, int64_t now_ms)
{
    lg_abuse_slot_t *s = &t->slots[conn_id % LG_ABUSE_SLOTS];
    if (s->conn_id != conn_id || now_ms - s->window_start_ms > LG_ABUSE_WINDOW_MS) {
        s->conn_id = conn_id;
        s->cancels = 0;
        s->window_start_ms = now_ms;
    }
    ++s->cancels;
}

int lg_abuse_blocked(const lg_abuse_table_t *t, uint64_t conn_id, int64_t now_ms)
{
    const lg_abuse_slot_t *s = &t->slots[conn_id % LG_ABUSE_SLOTS];
    return s->conn_id == conn_id && now_ms - s->window_start_ms <= LG_ABUSE_WINDOW_MS && s->cancels >= LG_ABUSE_MAX_CANCELS;
}

uint64_t lg_abuse_addr_key(const struct sockaddr *sa)
{
    uint64_t k;
    if (sa->sa_family == AF_INET) {
        k = 0x4000000000000000ull | ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
    } else if (sa->sa_family == AF_INET6) {
        memcpy(&k, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 8); /* the /64 */
        k |= 1;                                                              /* never 0 */
    } else {
        return 0;
    }
    return k;
}

static lg_abuse_addr_slot_t *addr_slot(const lg_abuse_table_t *t, uint64_t key)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: neighbouring addresses spread out */
    return (lg_abuse_addr_slot_t *)&t->addrs[(h >> 32) % LG_ABUSE_ADDR_SLOTS];
}

int lg_abuse_addr_note_cancel(lg_abuse_table_t *t, uint64_t key, int64_t now_ms)
{
    if (key == 0)
        return 0;
    lg_abuse_addr_slot_t *s = addr_slot(t, key);
    if (s->key != key) {
        if (s->key != 0 && s->blocked_until_ms > now_ms)
            return 0; /* keep a live block rather than let a colliding address wipe it */
        memset(s, 0, sizeof(*s));
        s->key = key;
        s->window_start_ms = now_ms;
    }
    if (now_ms - s->window_start_ms > LG_ABUSE_ADDR_WINDOW_MS) {
        s->cancels = 0;
        s->window_start_ms = now_ms;
    }
    if (++s->cancels >= LG_ABUSE_ADDR_MAX_CANCELS && s->blocked_until_ms <= now_ms) {
        s->blocked_until_ms = now_ms + LG_ABUSE_ADDR_BLOCK_MS;
        return 1;
    }
    return 0;
}

int lg_abuse_addr_blocked(const lg_abuse_table_t *t, uint64_t key, int64_t now_ms)
{
    if (key == 0)
        return 0;
    const lg_abuse_addr_slot_t *s = addr_slot(t, key);
    return s->key == key && s->blocked_until_ms > now_ms;
}
