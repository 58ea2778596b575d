/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the SSE parser (src/upstream/sse.c). Byte 0 chooses the
 * piece size and the event cap; the rest is the stream. The input is parsed
 * whole and in pieces, and both runs must report the same callbacks, return
 * code and truncation flag (chunk boundaries must never change the result).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "upstream/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
    uint64_t h;
    size_t events, comments;
};

static void mix(struct digest *d, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; ++i) {
        d->h ^= b[i];
        d->h *= 1099511628211ull; /* FNV-1a */
    }
}

static void mix_field(struct digest *d, const char *s, size_t n)
{
    mix(d, &n, sizeof(n));
    mix(d, s, n);
}

static int on_event(void *ctx, const lg_sse_event_t *ev)
{
    struct digest *d = ctx;
    /* all three are NUL-terminated at their length (the event type may itself contain NUL bytes; the id may not) */
    if (ev->data[ev->data_len] != '\0' || ev->event[ev->event_len] != '\0' || ev->id[ev->id_len] != '\0' ||
        strlen(ev->id) != ev->id_len)
        abort();
    mix(d, "E", 1);
    mix_field(d, ev->event, ev->event_len);
    mix_field(d, ev->data, ev->data_len);
    mix_field(d, ev->id, ev->id_len);
    ++d->events;
    /* a deterministic stop, to exercise the callback-stop path */
    return ev->data_len >= 4 && memcmp(ev->data, "STOP", 4) == 0 ? 7 : 0;
}

static int on_comment(void *ctx, const char *text, size_t len)
{
    struct digest *d = ctx;
    mix(d, "C", 1);
    mix_field(d, text, len);
    ++d->comments;
    return 0;
}

struct outcome {
    struct digest d;
    int rc, pending;
};

static void run(const char *in, size_t len, size_t piece, size_t max, struct outcome *o)
{
    lg_sse_parser_t p;
    memset(o, 0, sizeof(*o));
    o->d.h = 14695981039346656037ull;
    lg_sse_parser_init(&p, max, on_event, on_comment, &o->d);
    for (size_t off = 0; off < len && o->rc == 0; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        o->rc = lg_sse_parser_feed(&p, in + off, n);
    }
    o->pending = lg_sse_parser_finish(&p);
    lg_sse_parser_dispose(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* low 6 bits: piece size 1..64; high 2 bits: cap 16 B, 256 B, 4 KiB or 1 MiB */
    size_t piece = (size_t)(data[0] & 0x3f) + 1;
    static const size_t caps[4] = {16, 256, 4096, 1 << 20};
    size_t max = caps[data[0] >> 6];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    struct outcome whole, split;
    run(in, len, len > 0 ? len : 1, max, &whole);
    run(in, len, piece, max, &split);
    if (whole.rc != split.rc || whole.pending != split.pending || whole.d.h != split.d.h || whole.d.events != split.d.events ||
        whole.d.comments != split.d.comments)
        abort();
    return 0;
}
