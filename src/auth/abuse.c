/* SPDX-License-Identifier: MIT */
/*
 * Rapid-reset guard (see abuse.h). Direct-mapped by connection id: a
 * collision simply restarts the count for the newer connection, which can
 * only make the guard more lenient, never block an innocent connection.
 */
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
