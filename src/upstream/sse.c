/* SPDX-License-Identifier: MIT */
/*
 * Incremental server-sent-events parser (WHATWG "event stream" rules). Complete
 * lines are parsed in place from the caller's buffer; only a line that spans a
 * feed boundary is copied. Buffers grow geometrically up to a cap and are reused
 * across events, so a warm parser does no allocation per event.
 */
#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "llmgate/error.h"
#include "upstream/sse.h"

/* A line may exceed max_event_bytes by this much, so that a data: line whose value is exactly at the cap still fits
 * ("data: " plus slack); the data cap itself is exact. */
#define LINE_SLACK 64

#define BOM_DONE 3
static const char utf8_bom[3] = {'\xEF', '\xBB', '\xBF'};

void lg_sse_parser_init(lg_sse_parser_t *p, size_t max_event_bytes, lg_sse_on_event_t on_event, lg_sse_on_comment_t on_comment,
                        void *ctx)
{
    assert(p != NULL);
    assert(on_event != NULL);
    assert(max_event_bytes > 0);
    memset(p, 0, sizeof(*p));
    p->on_event = on_event;
    p->on_comment = on_comment;
    p->ctx = ctx;
    /* clamped so that cap + LINE_SLACK and cap + 1 never overflow; no real buffer gets near it */
    p->max_event_bytes = max_event_bytes > SIZE_MAX / 4 ? SIZE_MAX / 4 : max_event_bytes;
    p->_retry_ms = -1;
}

void lg_sse_parser_dispose(lg_sse_parser_t *p)
{
    free(p->_line);
    free(p->_data);
    p->_line = NULL;
    p->_data = NULL;
    p->_line_len = p->_line_cap = 0;
    p->_data_len = p->_data_cap = 0;
}

static size_t line_limit(const lg_sse_parser_t *p)
{
    return p->max_event_bytes + LINE_SLACK;
}

/* Make room for `need` (<= limit) bytes in *buf, doubling but never past limit. Host OOM aborts. */
static void reserve(char **buf, size_t *cap, size_t need, size_t limit)
{
    assert(need <= limit);
    if (need <= *cap)
        return;
    size_t ncap = *cap < 256 ? 256 : *cap;
    while (ncap < need)
        ncap = ncap > limit / 2 ? limit : ncap * 2;
    if (ncap > limit)
        ncap = limit;
    char *nbuf = realloc(*buf, ncap);
    if (nbuf == NULL)
        abort();
    *buf = nbuf;
    *cap = ncap;
}

static void reset_event(lg_sse_parser_t *p)
{
    p->_data_len = 0;
    p->_event_len = 0;
    p->_event[0] = '\0';
}

static int dispatch(lg_sse_parser_t *p)
{
    /* The data buffer is empty only when no data: field was seen (each one appends at least '\n'): no event. */
    if (p->_data_len == 0) {
        reset_event(p);
        return 0;
    }
    /* Drop the final '\n'; its slot holds the terminator (the buffer always has room for it). */
    p->_data[--p->_data_len] = '\0';
    p->_id[p->_id_len] = '\0';
    p->_event[p->_event_len] = '\0';
    lg_sse_event_t ev = {
        .event = p->_event,
        .event_len = p->_event_len,
        .data = p->_data,
        .data_len = p->_data_len,
        .id = p->_id,
        .id_len = p->_id_len,
    };
    int rc = p->on_event(p->ctx, &ev);
    reset_event(p);
    return rc;
}

static void set_small(char *dst, size_t dst_size, size_t *dst_len, const char *v, size_t vlen)
{
    if (vlen > dst_size - 1)
        vlen = dst_size - 1;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    *dst_len = vlen;
}

static void set_retry(lg_sse_parser_t *p, const char *v, size_t vlen)
{
    long ms = 0;
    if (vlen == 0)
        return;
    for (size_t i = 0; i < vlen; ++i) {
        if (v[i] < '0' || v[i] > '9')
            return;
        int d = v[i] - '0';
        if (ms > (LONG_MAX - d) / 10)
            return; /* absurd value: ignore like any other invalid one */
        ms = ms * 10 + d;
    }
    p->_retry_ms = ms;
}

static int field_is(const char *name, size_t nlen, const char *lit, size_t litlen)
{
    return nlen == litlen && memcmp(name, lit, litlen) == 0;
}

/* One complete line without its terminator. */
static int process_line(lg_sse_parser_t *p, const char *line, size_t len)
{
    if (len == 0)
        return dispatch(p);

    if (line[0] == ':') {
        if (p->on_comment == NULL)
            return 0;
        const char *text = line + 1;
        size_t tlen = len - 1;
        if (tlen > 0 && text[0] == ' ') {
            ++text;
            --tlen;
        }
        return p->on_comment(p->ctx, text, tlen);
    }

    const char *colon = memchr(line, ':', len);
    size_t nlen = colon != NULL ? (size_t)(colon - line) : len;
    const char *v = "";
    size_t vlen = 0;
    if (colon != NULL) {
        v = colon + 1;
        vlen = len - nlen - 1;
        if (vlen > 0 && v[0] == ' ') {
            ++v;
            --vlen;
        }
    }

    if (field_is(line, nlen, "data", 4)) {
        /* _data_len + vlen is what this event would dispatch if it ended here (the '\n' is dropped). */
        if (vlen > p->max_event_bytes || p->_data_len + vlen > p->max_event_bytes)
            return LG_EBADRESPONSE;
        reserve(&p->_data, &p->_data_cap, p->_data_len + vlen + 1, p->max_event_bytes + 1);
        memcpy(p->_data + p->_data_len, v, vlen);
        p->_data_len += vlen;
        p->_data[p->_data_len++] = '\n';
    } else if (field_is(line, nlen, "event", 5)) {
        set_small(p->_event, sizeof(p->_event), &p->_event_len, v, vlen);
    } else if (field_is(line, nlen, "id", 2)) {
        if (memchr(v, '\0', vlen) == NULL)
            set_small(p->_id, sizeof(p->_id), &p->_id_len, v, vlen);
    } else if (field_is(line, nlen, "retry", 5)) {
        set_retry(p, v, vlen);
    }
    /* any other field is ignored, as the spec says */
    return 0;
}

/* Line splitting over one buffer; BOM already handled. */
static int scan(lg_sse_parser_t *p, const char *data, size_t len)
{
    const char *pos = data, *end = data + len;
    const size_t limit = line_limit(p);

    if (len == 0)
        return 0;
    if (p->_last_was_cr) {
        /* The CR that ended the previous feed already terminated its line; this LF is the rest of that CRLF. */
        p->_last_was_cr = 0;
        if (*pos == '\n')
            ++pos;
    }

    /* Next CR and next LF, each searched with memchr and re-searched only once passed: O(n) for the whole feed. */
    const char *next_cr = NULL, *next_lf = NULL;
    int cr_done = 0, lf_done = 0; /* no more CR / LF in [pos, end) */
    while (pos < end) {
        if (!cr_done && (next_cr == NULL || next_cr < pos)) {
            next_cr = memchr(pos, '\r', (size_t)(end - pos));
            cr_done = next_cr == NULL;
        }
        if (!lf_done && (next_lf == NULL || next_lf < pos)) {
            next_lf = memchr(pos, '\n', (size_t)(end - pos));
            lf_done = next_lf == NULL;
        }
        const char *eol = next_cr;
        if (eol == NULL || (next_lf != NULL && next_lf < eol))
            eol = next_lf;

        if (eol == NULL) {
            /* Unterminated tail: keep it for the next feed. */
            size_t n = (size_t)(end - pos);
            if (p->_line_len + n > limit)
                return LG_EBADRESPONSE;
            reserve(&p->_line, &p->_line_cap, p->_line_len + n, limit);
            memcpy(p->_line + p->_line_len, pos, n);
            p->_line_len += n;
            return 0;
        }

        size_t n = (size_t)(eol - pos);
        int rc;
        if (p->_line_len > 0) {
            if (p->_line_len + n > limit)
                return LG_EBADRESPONSE;
            reserve(&p->_line, &p->_line_cap, p->_line_len + n, limit);
            memcpy(p->_line + p->_line_len, pos, n);
            /* reset before processing so a stop leaves no stale partial line behind */
            size_t total = p->_line_len + n;
            p->_line_len = 0;
            rc = process_line(p, p->_line, total);
        } else {
            if (n > limit)
                return LG_EBADRESPONSE;
            rc = process_line(p, pos, n);
        }

        pos = eol + 1;
        if (*eol == '\r') {
            if (pos == end)
                p->_last_was_cr = 1;
            else if (*pos == '\n')
                ++pos;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int lg_sse_parser_feed(lg_sse_parser_t *p, const char *data, size_t len)
{
    int rc;

    if (p->_stopped != 0)
        return p->_stopped;
    if (len == 0)
        return 0;
    assert(data != NULL);

    if (p->_bom_state != BOM_DONE) {
        /* A UTF-8 BOM is skipped only at the very start of the stream, possibly split across feeds. */
        size_t i = 0;
        while (p->_bom_state < BOM_DONE && i < len && data[i] == utf8_bom[p->_bom_state]) {
            ++p->_bom_state;
            ++i;
        }
        if (p->_bom_state < BOM_DONE && i == len)
            return 0; /* still a BOM prefix; decide on the next feed */
        if (p->_bom_state < BOM_DONE) {
            /* Not a BOM after all: the bytes matched so far (maybe from earlier feeds) are ordinary input. */
            size_t matched = (size_t)p->_bom_state;
            p->_bom_state = BOM_DONE;
            if ((rc = scan(p, utf8_bom, matched)) != 0)
                return p->_stopped = rc;
        }
        p->_bom_state = BOM_DONE;
        data += i;
        len -= i;
    }

    if ((rc = scan(p, data, len)) != 0)
        p->_stopped = rc;
    return rc;
}

int lg_sse_parser_finish(lg_sse_parser_t *p)
{
    if (p->_stopped != 0)
        return 0;
    int pending = p->_line_len > 0 || p->_data_len > 0 || p->_event_len > 0 || (p->_bom_state > 0 && p->_bom_state < BOM_DONE);
    /* The spec discards an unterminated event at EOF; never dispatch it. */
    p->_line_len = 0;
    p->_last_was_cr = 0;
    p->_bom_state = BOM_DONE;
    reset_event(p);
    return pending;
}
