/* SPDX-License-Identifier: MIT */
/*
 * Incremental server-sent-events parser (WHATWG "event stream" rules) for
 * upstream responses. Bytes arrive in arbitrary pieces; events and comments
 * are delivered through callbacks. Handles LF, CRLF and lone CR line endings
 * (also split across reads), multi-line data, event/id/retry fields, a UTF-8
 * BOM at the start, and payloads that are not JSON (they are just bytes here).
 * Every buffer is capped: an event larger than max_event_bytes is an error.
 */
#ifndef LG_UPSTREAM_SSE_H
#define LG_UPSTREAM_SSE_H

#include <stddef.h>
#include "llmgate/plugin.h" /* lg_sse_event_t */

/** Return 0 to continue, non-zero to stop parsing (lg_sse_parser_feed then returns that value). */
typedef int (*lg_sse_on_event_t)(void *ctx, const lg_sse_event_t *ev);
/** A comment line (": text"); text excludes the leading ':' and one following space. */
typedef int (*lg_sse_on_comment_t)(void *ctx, const char *text, size_t len);

typedef struct lg_sse_parser {
    lg_sse_on_event_t on_event;
    lg_sse_on_comment_t on_comment; /* may be NULL */
    void *ctx;
    size_t max_event_bytes;
    /* private */
    char *_line; /* current partial line (only bytes that spanned a feed boundary are copied here) */
    size_t _line_len, _line_cap;
    char *_data; /* accumulated data for the current event, each data: value followed by '\n' */
    size_t _data_len, _data_cap;
    char _event[64]; /* event type, NUL-terminated (longer values are truncated) */
    size_t _event_len;
    char _id[128]; /* last event id, NUL-terminated; persists across events (longer values are truncated) */
    size_t _id_len;
    long _retry_ms;   /* last retry: field value, -1 if none */
    int _last_was_cr; /* previous feed ended with CR: a leading LF belongs to it */
    int _bom_state;   /* 0..2 = BOM bytes matched so far at stream start, 3 = BOM check done */
    int _stopped;     /* non-zero: value returned by a callback or LG_EBADRESPONSE; sticky */
} lg_sse_parser_t;

void lg_sse_parser_init(lg_sse_parser_t *p, size_t max_event_bytes, lg_sse_on_event_t on_event, lg_sse_on_comment_t on_comment,
                        void *ctx);
/** Feed bytes. Returns 0, a callback's non-zero return, or LG_EBADRESPONSE when an event or line exceeds the cap.
 * After a non-zero return the parser is stopped: the rest of that feed is dropped and later feeds return the same value. */
int lg_sse_parser_feed(lg_sse_parser_t *p, const char *data, size_t len);
/** End of input. Per the spec's EOF rule an event without its terminating blank line is discarded, not dispatched.
 * Returns 1 if bytes of an unfinished line or event were pending (useful to detect truncation), else 0 (also after a
 * stop). Does not free anything; call lg_sse_parser_dispose. */
int lg_sse_parser_finish(lg_sse_parser_t *p);
void lg_sse_parser_dispose(lg_sse_parser_t *p);

#endif
