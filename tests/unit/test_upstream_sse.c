/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/upstream/sse.c: WHATWG event-stream framing (line endings, BOM,
 * fields, comments, caps, stop, truncation) and chunk-boundary independence:
 * realistic provider transcripts split at every byte offset must parse exactly
 * like the whole transcript (upstreams split events anywhere, even inside a
 * UTF-8 sequence or a CRLF).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmgate/error.h"
#include "upstream/sse.h"

/* ---- recorder: every callback appends one unambiguous record to a log ---- */

struct rec {
    char *log;
    size_t len, cap;
    size_t events, comments;
    size_t stop_after; /* on_event returns 42 once this many events were seen (0 = never) */
};

static void rec_append(struct rec *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t ncap = r->cap ? r->cap : 256;
        while (ncap < r->len + n + 1)
            ncap *= 2;
        r->log = realloc(r->log, ncap);
        assert_non_null(r->log);
        r->cap = ncap;
    }
    memcpy(r->log + r->len, s, n);
    r->len += n;
    r->log[r->len] = '\0';
}

static void rec_field(struct rec *r, const char *s, size_t n)
{
    char hdr[32];
    int k = snprintf(hdr, sizeof(hdr), "[%zu:", n);
    rec_append(r, hdr, (size_t)k);
    rec_append(r, s, n);
    rec_append(r, "]", 1);
}

static int on_event(void *ctx, const lg_sse_event_t *ev)
{
    struct rec *r = ctx;
    assert_non_null(ev->event);
    assert_non_null(ev->data);
    assert_non_null(ev->id);
    assert_int_equal(ev->data[ev->data_len], '\0');
    assert_int_equal(ev->event[ev->event_len], '\0');
    assert_int_equal(strlen(ev->id), ev->id_len);
    rec_append(r, "E", 1);
    rec_field(r, ev->event, ev->event_len);
    rec_field(r, ev->data, ev->data_len);
    rec_field(r, ev->id, ev->id_len);
    rec_append(r, "\n", 1);
    ++r->events;
    if (r->stop_after != 0 && r->events >= r->stop_after)
        return 42;
    return 0;
}

static int on_comment(void *ctx, const char *text, size_t len)
{
    struct rec *r = ctx;
    rec_append(r, "C", 1);
    rec_field(r, text, len);
    rec_append(r, "\n", 1);
    ++r->comments;
    return 0;
}

static void rec_free(struct rec *r)
{
    free(r->log);
    memset(r, 0, sizeof(*r));
}

/* Parse `in` fed in pieces of the given sizes (the last piece takes the rest); returns finish()'s value. */
static int parse_pieces(const char *in, size_t len, const size_t *pieces, size_t npieces, size_t max, struct rec *r)
{
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, max, on_event, on_comment, r);
    size_t off = 0;
    for (size_t i = 0; i < npieces && off < len; ++i) {
        size_t n = pieces[i] < len - off ? pieces[i] : len - off;
        assert_int_equal(lg_sse_parser_feed(&p, in + off, n), 0);
        off += n;
    }
    if (off < len)
        assert_int_equal(lg_sse_parser_feed(&p, in + off, len - off), 0);
    int pending = lg_sse_parser_finish(&p);
    lg_sse_parser_dispose(&p);
    return pending;
}

static int parse_whole(const char *in, size_t len, struct rec *r)
{
    return parse_pieces(in, len, NULL, 0, 1 << 20, r);
}

#define S(lit) lit, sizeof(lit) - 1

static void expect_log(const char *in, size_t len, const char *want)
{
    struct rec r = {0};
    assert_int_equal(parse_whole(in, len, &r), 0);
    assert_non_null(r.log);
    assert_string_equal(r.log, want);
    rec_free(&r);
}

/* ---- framing ---- */

static void test_sse_single_event(void **state)
{
    (void)state;
    expect_log(S("data: {\"a\":1}\n\n"), "E[0:][7:{\"a\":1}][0:]\n");
}

static void test_sse_multiple_events_one_feed(void **state)
{
    (void)state;
    expect_log(S("data: one\n\ndata: two\n\ndata: three\n\n"), "E[0:][3:one][0:]\nE[0:][3:two][0:]\nE[0:][5:three][0:]\n");
}

static void test_sse_multiline_data(void **state)
{
    (void)state;
    expect_log(S("data: first\ndata: second\ndata:\ndata: fourth\n\n"), "E[0:][20:first\nsecond\n\nfourth][0:]\n");
}

static void test_sse_event_id_retry(void **state)
{
    (void)state;
    struct rec r = {0};
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
    static const char in[] = "retry: 2500\nid: 7\nevent: message_start\ndata: {}\n\n"
                             "data: no type, id persists\n\n"
                             "retry: 12x\nid: 8\nevent:ping\ndata: x\n\n"
                             "id\ndata: id cleared\n\n";
    assert_int_equal(lg_sse_parser_feed(&p, in, sizeof(in) - 1), 0);
    assert_string_equal(r.log, "E[13:message_start][2:{}][1:7]\n"
                               "E[0:][20:no type, id persists][1:7]\n"
                               "E[4:ping][1:x][1:8]\n"
                               "E[0:][10:id cleared][0:]\n");
    /* "12x" is not all digits: the earlier value stays */
    assert_int_equal(p._retry_ms, 2500);
    assert_int_equal(lg_sse_parser_finish(&p), 0);
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_sse_id_with_nul_ignored(void **state)
{
    (void)state;
    expect_log(S("id: 1\n\nid: a\0b\ndata: x\n\n"), "E[0:][1:x][1:1]\n");
}

static void test_sse_long_event_and_id_truncated(void **state)
{
    (void)state;
    struct rec r = {0};
    lg_sse_parser_t p;
    char in[512];
    char name[100], id[200];
    memset(name, 'e', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    int n = snprintf(in, sizeof(in), "event: %s\nid: %s\nretry: 99999999999999999999999\ndata: x\n\n", name, id);
    lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, in, (size_t)n), 0);
    assert_int_equal(r.events, 1);
    assert_non_null(strstr(r.log, "E[63:eee"));
    assert_non_null(strstr(r.log, "][127:iii"));
    assert_int_equal(p._retry_ms, -1); /* overflowing retry is ignored */
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_sse_comments_never_events(void **state)
{
    (void)state;
    expect_log(S(": OPENROUTER PROCESSING\n\n:\n\n:  two spaces\ndata: real\n:mid-event\n\n"),
               "C[21:OPENROUTER PROCESSING]\nC[0:]\nC[11: two spaces]\nC[9:mid-event]\nE[0:][4:real][0:]\n");

    /* without an on_comment callback they are silently skipped */
    struct rec r = {0};
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 4096, on_event, NULL, &r);
    static const char in[] = ": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n";
    assert_int_equal(lg_sse_parser_feed(&p, in, sizeof(in) - 1), 0);
    assert_int_equal(r.events, 1);
    assert_string_equal(r.log, "E[0:][1:x][0:]\n");
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_sse_crlf_and_lone_cr(void **state)
{
    (void)state;
    expect_log(S("data: a\r\n\r\ndata: b\r\rdata: c\r\ndata: d\n\r\n"), "E[0:][1:a][0:]\nE[0:][1:b][0:]\nE[0:][3:c\nd][0:]\n");
}

static void test_sse_crlf_split_across_feeds(void **state)
{
    (void)state;
    /* CR ends one feed, LF starts the next: one line ending, so no spurious blank line splits the event */
    struct rec r = {0};
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: a\r")), 0);
    assert_int_equal(lg_sse_parser_feed(&p, S("\ndata: b\r")), 0);
    assert_int_equal(lg_sse_parser_feed(&p, S("\n")), 0);
    assert_int_equal(r.events, 0);
    assert_int_equal(lg_sse_parser_feed(&p, S("\r")), 0);
    assert_int_equal(r.events, 1);
    assert_int_equal(lg_sse_parser_feed(&p, S("\n")), 0); /* the LF of that CRLF, not another blank line */
    assert_int_equal(lg_sse_parser_feed(&p, S("\r")), 0); /* a real blank line: nothing pending, no event */
    assert_string_equal(r.log, "E[0:][3:a\nb][0:]\n");
    assert_int_equal(lg_sse_parser_finish(&p), 0);
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_sse_bom(void **state)
{
    (void)state;
    expect_log(S("\xEF\xBB\xBF"
                 "data: x\n\n"),
               "E[0:][1:x][0:]\n");

    static const char in[] = "\xEF\xBB\xBF"
                             "data: x\n\n";
    for (size_t a = 1; a <= 3; ++a) {
        for (size_t b = 1; b <= 3; ++b) {
            struct rec r = {0};
            size_t pieces[] = {a, b, 1};
            assert_int_equal(parse_pieces(in, sizeof(in) - 1, pieces, 3, 4096, &r), 0);
            assert_string_equal(r.log, "E[0:][1:x][0:]\n");
            rec_free(&r);
        }
    }

    /* only at the very start: a second BOM is part of the field name, so the line is an unknown field */
    expect_log(S("\xEF\xBB\xBF\xEF\xBB\xBF"
                 "data: x\n\ndata: y\n\n"),
               "E[0:][1:y][0:]\n");
    /* a BOM in the middle of the stream is data */
    expect_log(S("data: \xEF\xBB\xBFx\n\n"), "E[0:][4:\xEF\xBB\xBFx][0:]\n");
}

static void test_sse_bom_prefix_then_other_bytes(void **state)
{
    (void)state;
    /* "\xEF\xBB" then not "\xBF": the two bytes are ordinary input (here: an unknown field name) */
    struct rec r = {0};
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, S("\xEF")), 0);
    assert_int_equal(lg_sse_parser_feed(&p, S("\xBB")), 0);
    assert_int_equal(lg_sse_parser_feed(&p, S(":\n\ndata: x\n\n")), 0);
    assert_string_equal(r.log, "E[0:][1:x][0:]\n");
    lg_sse_parser_dispose(&p);
    rec_free(&r);

    /* a stream that is only a BOM prefix is truncated */
    memset(&r, 0, sizeof(r));
    lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, S("\xEF\xBB")), 0);
    assert_int_equal(lg_sse_parser_finish(&p), 1);
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_sse_empty_data_event(void **state)
{
    (void)state;
    /* data: with an empty value is dispatched with data_len 0; a block without data: is not */
    expect_log(S("data:\n\nevent: ping\n\nid: 3\n\ndata\n\n"), "E[0:][0:][0:]\nE[0:][0:][1:3]\n");
}

static void test_sse_field_without_colon(void **state)
{
    (void)state;
    /* "event" alone sets an empty type; "data" alone appends an empty line */
    expect_log(S("event: x\nevent\ndata\ndata: y\n\n"), "E[0:][2:\ny][0:]\n");
}

static void test_sse_value_space_handling(void **state)
{
    (void)state;
    /* exactly one space after the colon is stripped; trailing spaces and extra colons are kept */
    expect_log(S("event:  two\ndata:  a: b \n\n"), "E[4: two][6: a: b ][0:]\n");
    /* field names are case-sensitive; unknown fields are ignored */
    expect_log(S("Data: no\nfoo: bar\ndata: yes\n\n"), "E[0:][3:yes][0:]\n");
}

static void test_sse_non_json_passthrough(void **state)
{
    (void)state;
    expect_log(S("data: <html>502 Bad Gateway</html>\n\ndata: \"just a string\"\n\ndata: {\"broken\":\n\n"),
               "E[0:][28:<html>502 Bad Gateway</html>][0:]\nE[0:][15:\"just a string\"][0:]\nE[0:][10:{\"broken\":][0:]\n");
    /* binary bytes, including NUL, are data too */
    struct rec r = {0};
    static const char want[] = "E[0:][4:a\0b\xff][0:]\n";
    assert_int_equal(parse_whole(S("data: a\0b\xff\n\n"), &r), 0);
    assert_int_equal(r.len, sizeof(want) - 1);
    assert_memory_equal(r.log, want, sizeof(want) - 1);
    rec_free(&r);
}

static void test_sse_done_without_space(void **state)
{
    (void)state;
    expect_log(S("data:[DONE]\n\ndata: [DONE]\n\n"), "E[0:][6:[DONE]][0:]\nE[0:][6:[DONE]][0:]\n");
}

static void test_sse_utf8_split(void **state)
{
    (void)state;
    static const char in[] = "data: h\xC3\xA9llo \xF0\x9F\x99\x82 \xE2\x82\xAC\n\n";
    for (size_t k = 0; k < sizeof(in) - 1; ++k) {
        struct rec r = {0};
        size_t pieces[] = {k};
        assert_int_equal(parse_pieces(in, sizeof(in) - 1, pieces, 1, 4096, &r), 0);
        assert_string_equal(r.log, "E[0:][15:h\xC3\xA9llo \xF0\x9F\x99\x82 \xE2\x82\xAC][0:]\n");
        rec_free(&r);
    }
}

/* ---- caps ---- */

static void test_sse_oversize_event(void **state)
{
    (void)state;
    struct rec r = {0};
    lg_sse_parser_t p;

    /* exactly at the cap is fine, one more byte across two data lines is not */
    lg_sse_parser_init(&p, 8, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: 12345678\n\ndata: 1234\ndata: 123\n\n")), 0);
    assert_int_equal(r.events, 2);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: 1234\ndata: 1234\n\n")), LG_EBADRESPONSE);
    assert_int_equal(r.events, 2);
    /* sticky: the parser stays failed */
    assert_int_equal(lg_sse_parser_feed(&p, S("data: x\n\n")), LG_EBADRESPONSE);
    assert_int_equal(r.events, 2);
    lg_sse_parser_dispose(&p);
    rec_free(&r);

    /* one data line over the cap */
    lg_sse_parser_init(&p, 8, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: 123456789\n\n")), LG_EBADRESPONSE);
    assert_int_equal(r.events, 0);
    lg_sse_parser_dispose(&p);

    /* a line that never ends is refused while it is still arriving, without waiting for its terminator */
    lg_sse_parser_init(&p, 16, on_event, on_comment, &r);
    char chunk[32];
    memset(chunk, 'x', sizeof(chunk));
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; ++i)
        rc = lg_sse_parser_feed(&p, chunk, sizeof(chunk));
    assert_int_equal(rc, LG_EBADRESPONSE);
    assert_true(p._line_cap <= 16 + 64 + 1);
    lg_sse_parser_dispose(&p);

    /* a huge comment line within one feed is refused too */
    lg_sse_parser_init(&p, 16, on_event, on_comment, &r);
    char big[200];
    memset(big, 'c', sizeof(big));
    big[0] = ':';
    big[sizeof(big) - 1] = '\n';
    assert_int_equal(lg_sse_parser_feed(&p, big, sizeof(big)), LG_EBADRESPONSE);
    assert_int_equal(r.comments, 0);
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

static void test_sse_buffers_reused(void **state)
{
    (void)state;
    /* once warm, the data buffer is not reallocated per event */
    struct rec r = {0};
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 1 << 16, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: warm up the buffer with a line\n\ndata: x")), 0);
    char *data = p._data, *line = p._line;
    for (int i = 0; i < 1000; ++i) {
        assert_int_equal(lg_sse_parser_feed(&p, S("y\n\ndata: abc")), 0);
        assert_int_equal(lg_sse_parser_feed(&p, S("def\n")), 0);
        assert_int_equal(lg_sse_parser_feed(&p, S("\ndata: x")), 0);
    }
    assert_ptr_equal(p._data, data);
    assert_ptr_equal(p._line, line);
    assert_int_equal(r.events, 2001);
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

/* ---- control flow ---- */

static void test_sse_callback_stop(void **state)
{
    (void)state;
    struct rec r = {.stop_after = 2};
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: 1\n\ndata: 2\n\ndata: 3\n\n")), 42);
    assert_int_equal(r.events, 2);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: 4\n\n")), 42);
    assert_int_equal(r.events, 2);
    assert_int_equal(lg_sse_parser_finish(&p), 0);
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

static int stop_on_comment(void *ctx, const char *text, size_t len)
{
    (void)text;
    (void)len;
    ++*(int *)ctx;
    return -1;
}

static int fail_on_event(void *ctx, const lg_sse_event_t *ev)
{
    (void)ctx;
    (void)ev;
    fail_msg("no event expected after a comment stopped the parser");
    return 0;
}

static void test_sse_comment_stop(void **state)
{
    (void)state;
    int calls = 0;
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 4096, fail_on_event, stop_on_comment, &calls);
    assert_int_equal(lg_sse_parser_feed(&p, S(": stop\ndata: x\n\n")), -1);
    assert_int_equal(calls, 1);
    lg_sse_parser_dispose(&p);
}

static void test_sse_finish_reports_truncation(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int pending;
    } cases[] = {
        {"", 0},
        {"data: x\n\n", 0},
        {"data: x\n\n: comment\n", 0},
        {"data: x\r\n\r\n", 0},
        {"data: x\r\r", 0},
        {"data: x", 1},       /* partial line */
        {"data: x\n", 1},     /* data without the blank line */
        {"data: x\r", 1},     /* same, lone CR */
        {"event: foo\n", 1},  /* an unfinished event block */
        {"data: x\n\n:", 1},  /* a partial comment line */
        {"data: x\n\nid", 1}, /* a partial field */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        struct rec r = {0};
        lg_sse_parser_t p;
        lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
        assert_int_equal(lg_sse_parser_feed(&p, cases[i].in, strlen(cases[i].in)), 0);
        size_t events = r.events;
        assert_int_equal(lg_sse_parser_finish(&p), cases[i].pending);
        assert_int_equal(r.events, events); /* never dispatched at EOF */
        lg_sse_parser_dispose(&p);
        rec_free(&r);
    }
}

static void test_sse_empty_feed_and_dispose_twice(void **state)
{
    (void)state;
    struct rec r = {0};
    lg_sse_parser_t p;
    lg_sse_parser_init(&p, 4096, on_event, on_comment, &r);
    assert_int_equal(lg_sse_parser_feed(&p, "", 0), 0);
    assert_int_equal(lg_sse_parser_feed(&p, NULL, 0), 0);
    assert_int_equal(lg_sse_parser_feed(&p, S("\xEF\xBB\xBF")), 0);
    assert_int_equal(lg_sse_parser_feed(&p, S("data: x\n\n")), 0);
    assert_int_equal(r.events, 1);
    lg_sse_parser_dispose(&p);
    lg_sse_parser_dispose(&p);
    rec_free(&r);
}

/* ---- chunk-boundary independence over realistic transcripts ---- */

static const char openai_transcript[] =
    ": OPENROUTER PROCESSING\n\n"
    ": OPENROUTER PROCESSING\n\n"
    "data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"created\":1718000000,\"model\":\"openai/gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
    "\"H\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\x99\x82\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{"
    "\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"ci\"}}]}}]}"
    "\n\n"
    "data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}\n\n"
    "data: [DONE]\n\n";

static const char anthropic_transcript[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\","
    "\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \xE2\x80\x94 "
    "\xE6\x97\xA5\xE6\x9C\xAC\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static const char gemini_transcript[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],\"role\": \"model\"},\"index\": 0}],"
    "\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": "
    "{\"city\": \"Z\xC3\xBCrich\"}}}],\"role\": \"model\"},\"index\": 0}]}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"!\"}],\"role\": \"model\"},\"finishReason\": \"STOP\","
    "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 4,\"totalTokenCount\": 12}}\r\n\r\n";

/* Everything at once: BOM, lone CR, id/retry, multi-line data, comments, empty data, unknown fields. */
static const char mixed_transcript[] = "\xEF\xBB\xBF"
                                       ": hello\r"
                                       "retry: 1000\r"
                                       "id: 1\r"
                                       "event: a\r"
                                       "data: line1\r"
                                       "data:line2\r\r"
                                       "data:\n\n"
                                       "foo: bar\n"
                                       "data\r\n"
                                       "data: {\"x\": \"\xE2\x82\xAC\"}\r\n\r\n"
                                       ":\n"
                                       "event: done\n"
                                       "data: [DONE]\n\n";

struct transcript {
    const char *name;
    const char *text;
    size_t len;
    size_t events, comments;
};

static const struct transcript transcripts[] = {
    {"openai", openai_transcript, sizeof(openai_transcript) - 1, 5, 2},
    {"anthropic", anthropic_transcript, sizeof(anthropic_transcript) - 1, 7, 0},
    {"gemini", gemini_transcript, sizeof(gemini_transcript) - 1, 3, 0},
    {"mixed", mixed_transcript, sizeof(mixed_transcript) - 1, 4, 2},
};

static void test_sse_transcripts_split_everywhere(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(transcripts) / sizeof(transcripts[0]); ++t) {
        const struct transcript *tr = &transcripts[t];
        struct rec whole = {0};
        assert_int_equal(parse_whole(tr->text, tr->len, &whole), 0);
        if (whole.events != tr->events || whole.comments != tr->comments)
            fail_msg("%s: %zu events, %zu comments; log:\n%s", tr->name, whole.events, whole.comments, whole.log);

        /* two pieces, split at every offset (0 and len included) */
        for (size_t k = 0; k <= tr->len; ++k) {
            struct rec r = {0};
            size_t pieces[] = {k};
            assert_int_equal(parse_pieces(tr->text, tr->len, pieces, 1, 1 << 20, &r), 0);
            if (r.len != whole.len || memcmp(r.log, whole.log, whole.len) != 0)
                fail_msg("%s split at %zu:\n%s\nexpected:\n%s", tr->name, k, r.log, whole.log);
            rec_free(&r);
        }

        /* three pieces around every offset: a CRLF or UTF-8 sequence may sit alone in a piece */
        for (size_t k = 0; k + 2 <= tr->len; ++k) {
            struct rec r = {0};
            size_t pieces[] = {k, 1, 1};
            assert_int_equal(parse_pieces(tr->text, tr->len, pieces, 3, 1 << 20, &r), 0);
            if (r.len != whole.len || memcmp(r.log, whole.log, whole.len) != 0)
                fail_msg("%s split at %zu+1+1:\n%s\nexpected:\n%s", tr->name, k, r.log, whole.log);
            rec_free(&r);
        }

        /* one byte at a time */
        struct rec r = {0};
        lg_sse_parser_t p;
        lg_sse_parser_init(&p, 1 << 20, on_event, on_comment, &r);
        for (size_t i = 0; i < tr->len; ++i)
            assert_int_equal(lg_sse_parser_feed(&p, tr->text + i, 1), 0);
        assert_int_equal(lg_sse_parser_finish(&p), 0);
        lg_sse_parser_dispose(&p);
        if (r.len != whole.len || memcmp(r.log, whole.log, whole.len) != 0)
            fail_msg("%s byte by byte:\n%s\nexpected:\n%s", tr->name, r.log, whole.log);
        rec_free(&r);
        rec_free(&whole);
    }
}

static void test_sse_transcript_contents(void **state)
{
    (void)state;
    struct rec r = {0};
    assert_int_equal(parse_whole(S(mixed_transcript), &r), 0);
    assert_string_equal(r.log, "C[5:hello]\n"
                               "E[1:a][11:line1\nline2][1:1]\n"
                               "E[0:][0:][1:1]\n"
                               "E[0:][13:\n{\"x\": \"\xE2\x82\xAC\"}][1:1]\n"
                               "C[0:]\n"
                               "E[4:done][6:[DONE]][1:1]\n");
    rec_free(&r);

    /* Anthropic: every event has its type; Gemini: CRLF stripped, no trailing CR in data */
    memset(&r, 0, sizeof(r));
    assert_int_equal(parse_whole(S(anthropic_transcript), &r), 0);
    assert_non_null(strstr(r.log, "E[13:message_start]["));
    assert_non_null(strstr(r.log, "E[4:ping][16:{\"type\": \"ping\"}][0:]\n"));
    assert_non_null(strstr(r.log, "E[12:message_stop][23:{\"type\":\"message_stop\"}][0:]\n"));
    rec_free(&r);

    memset(&r, 0, sizeof(r));
    assert_int_equal(parse_whole(S(gemini_transcript), &r), 0);
    assert_null(strchr(r.log, '\r'));
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_single_event),
        cmocka_unit_test(test_sse_multiple_events_one_feed),
        cmocka_unit_test(test_sse_multiline_data),
        cmocka_unit_test(test_sse_event_id_retry),
        cmocka_unit_test(test_sse_id_with_nul_ignored),
        cmocka_unit_test(test_sse_long_event_and_id_truncated),
        cmocka_unit_test(test_sse_comments_never_events),
        cmocka_unit_test(test_sse_crlf_and_lone_cr),
        cmocka_unit_test(test_sse_crlf_split_across_feeds),
        cmocka_unit_test(test_sse_bom),
        cmocka_unit_test(test_sse_bom_prefix_then_other_bytes),
        cmocka_unit_test(test_sse_empty_data_event),
        cmocka_unit_test(test_sse_field_without_colon),
        cmocka_unit_test(test_sse_value_space_handling),
        cmocka_unit_test(test_sse_non_json_passthrough),
        cmocka_unit_test(test_sse_done_without_space),
        cmocka_unit_test(test_sse_utf8_split),
        cmocka_unit_test(test_sse_oversize_event),
        cmocka_unit_test(test_sse_buffers_reused),
        cmocka_unit_test(test_sse_callback_stop),
        cmocka_unit_test(test_sse_comment_stop),
        cmocka_unit_test(test_sse_finish_reports_truncation),
        cmocka_unit_test(test_sse_empty_feed_and_dispose_twice),
        cmocka_unit_test(test_sse_transcripts_split_everywhere),
        cmocka_unit_test(test_sse_transcript_contents),
    };
    return cmocka_run_group_tests_name("sse", tests, NULL, NULL);
}
