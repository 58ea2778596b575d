/* SPDX-License-Identifier: MIT */
/*
 * Tests for the ingress skins (src/http/skin_openai.c, skin_anthropic.c)
 * through the lg_skin_t vtable only, as the relay calls them: SSE framing,
 * the gateway-owned members, keep-alives, the error event after the commit
 * point with what was billed, whole-body answers and errors per format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "http/skins.h"

static const lg_skin_info_t info = {
    .gen_id = "gen-abc123", .model = "test/echo", .provider = "up1", .created = 1700000000, .prompt_tokens_estimate = 7};

/* The JSON of the n-th `data:` event in out (NULL for [DONE] or when missing). */
static json_t *data_event(const lg_buf_t *out, size_t n, int *is_done)
{
    const char *p = out->data, *end = out->data + out->len;
    *is_done = 0;
    for (size_t i = 0; p != NULL && p < end; ++i) {
        const char *d = strstr(p, "data: ");
        if (d == NULL)
            return NULL;
        const char *e = strstr(d, "\n\n");
        assert_non_null(e); /* every event is complete */
        if (i == n) {
            if (e - d - 6 == 6 && memcmp(d + 6, "[DONE]", 6) == 0) {
                *is_done = 1;
                return NULL;
            }
            return json_loadb(d + 6, (size_t)(e - d - 6), 0, NULL);
        }
        p = e + 2;
    }
    return NULL;
}

static json_t *parse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_skins_openai_chunk_owned_members(void **state)
{
    (void)state;
    const lg_skin_t *s = &lg_skin_openai_chat;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    json_t *obj =
        parse("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"id\":\"upstream\",\"model\":\"x\",\"usage\":{}}");
    lg_skin_chunk_t c = {.obj = obj};
    assert_int_equal(s->stream_chunk(NULL, &info, &c, &out), 0);
    int done;
    json_t *ev = data_event(&out, 0, &done);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "id")), "gen-abc123");
    assert_string_equal(json_string_value(json_object_get(ev, "object")), "chat.completion.chunk");
    assert_string_equal(json_string_value(json_object_get(ev, "model")), "test/echo");
    assert_string_equal(json_string_value(json_object_get(ev, "provider")), "up1");
    assert_int_equal(json_integer_value(json_object_get(ev, "created")), 1700000000);
    assert_null(json_object_get(ev, "usage")); /* usage only in the final chunk */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta"), "content")),
        "hi");
    json_decref(ev);
    json_decref(obj);
    lg_buf_dispose(&out);
}

static void test_skins_openai_finish_and_error(void **state)
{
    (void)state;
    const lg_skin_t *s = &lg_skin_openai_chat;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    json_t *usage = parse("{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,\"cost\":0.1}");
    assert_int_equal(s->stream_finish(NULL, &info, usage, &out), 0);
    int done;
    json_t *ev = data_event(&out, 0, &done);
    assert_int_equal(json_array_size(json_object_get(ev, "choices")), 0);
    assert_true(json_equal(json_object_get(ev, "usage"), usage));
    json_decref(ev);
    assert_null(data_event(&out, 1, &done));
    assert_true(done);

    lg_buf_reset(&out);
    lg_skin_error_t e = {.err = LG_EBADRESPONSE, .status = 502, .message = "broken event", .provider_code = "x1"};
    assert_int_equal(s->stream_error(NULL, &info, &e, usage, &out), 0);
    ev = data_event(&out, 0, &done);
    json_t *err = json_object_get(ev, "error");
    assert_int_equal(json_integer_value(json_object_get(err, "code")), 502);
    assert_string_equal(json_string_value(json_object_get(err, "message")), "broken event");
    assert_string_equal(json_string_value(json_object_get(json_object_get(err, "metadata"), "error_type")), "provider_unavailable");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "finish_reason")),
                        "error");
    json_decref(ev);
    ev = data_event(&out, 1, &done); /* what was billed */
    assert_true(json_equal(json_object_get(ev, "usage"), usage));
    json_decref(ev);
    assert_null(data_event(&out, 2, &done));
    assert_true(done);

    /* without usage: error then [DONE] */
    lg_buf_reset(&out);
    assert_int_equal(s->stream_error(NULL, &info, &e, NULL, &out), 0);
    ev = data_event(&out, 0, &done);
    assert_non_null(json_object_get(ev, "error"));
    json_decref(ev);
    assert_null(data_event(&out, 1, &done));
    assert_true(done);
    json_decref(usage);
    lg_buf_dispose(&out);
}

static void test_skins_openai_keepalive_comment_cap(void **state)
{
    (void)state;
    const lg_skin_t *s = &lg_skin_openai_chat;
    lg_buf_t out;
    lg_buf_init(&out, 16);
    assert_int_equal(s->stream_keepalive(NULL, &info, &out), 0);
    assert_int_equal(out.len, 14);
    assert_memory_equal(out.data, ": PROCESSING\n\n", 14);
    lg_buf_reset(&out);
    assert_int_equal(s->stream_comment(NULL, "ka", 2, &out), 0);
    assert_memory_equal(out.data, ": ka\n\n", 6);
    /* over the cap: the relay ends the stream */
    lg_skin_chunk_t c = {.obj = parse("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"too long for sixteen bytes\"}}]}")};
    assert_int_not_equal(s->stream_chunk(NULL, &info, &c, &out), 0);
    json_decref((json_t *)c.obj);
    lg_buf_dispose(&out);
    assert_int_equal(lg_skin_openai_chat.comments_forwarded, 1);
    assert_int_equal(lg_skin_anthropic_messages.comments_forwarded, 0);
}

static void test_skins_openai_whole_bodies(void **state)
{
    (void)state;
    json_t *usage = parse("{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}");
    json_t *resp = parse("{\"choices\":[{\"index\":0,\"text\":\"t\",\"finish_reason\":\"stop\"}],\"usage\":{\"bogus\":1}}");
    json_t *o = lg_skin_openai_completions.response(&info, resp, usage);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "text_completion");
    assert_true(json_equal(json_object_get(o, "usage"), usage));
    json_decref(o);
    int status = 429;
    lg_skin_error_t e = {.err = LG_ERATELIMIT, .status = 429, .message = "slow down", .provider_code = ""};
    o = lg_skin_openai_chat.error_body(&e, &status, json_pack("{s:i}", "retry_after_ms", 10));
    assert_int_equal(status, 429);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "error"), "code")), 429);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(json_object_get(o, "error"), "metadata"), "retry_after_ms")), 10);
    json_decref(o);
    json_decref(usage);
    assert_ptr_equal(lg_skin_for_kind(LG_API_EMBEDDINGS), &lg_skin_openai_embeddings);
    assert_ptr_equal(lg_skin_for_kind(LG_API_COMPLETIONS), &lg_skin_openai_completions);
    assert_ptr_equal(lg_skin_for_kind(LG_API_CHAT), &lg_skin_openai_chat);
}

static void test_skins_anthropic_stream(void **state)
{
    (void)state;
    const lg_skin_t *s = &lg_skin_anthropic_messages;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    void *st = s->stream_open(&info);
    assert_non_null(st);
    assert_int_equal(s->stream_keepalive(st, &info, &out), 0);
    assert_non_null(strstr(out.data, "event: message_start\n"));
    assert_non_null(strstr(out.data, "\"id\":\"msg_abc123\""));
    assert_non_null(strstr(out.data, "event: ping\n"));
    json_t *obj = parse("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}");
    lg_skin_chunk_t c = {.obj = obj};
    assert_int_equal(s->stream_chunk(st, &info, &c, &out), 0);
    assert_non_null(strstr(out.data, "\"text\":\"hello\""));
    lg_skin_error_t e = {.err = LG_ESHUTDOWN, .status = 503, .message = "cut", .provider_code = ""};
    assert_int_equal(s->stream_error(st, &info, &e, NULL, &out), 0);
    assert_non_null(strstr(out.data, "event: error\n"));
    assert_null(strstr(out.data, "data: [DONE]"));
    s->stream_close(st);
    json_decref(obj);
    lg_buf_dispose(&out);
}

static void test_skins_anthropic_whole_bodies(void **state)
{
    (void)state;
    const lg_skin_t *s = &lg_skin_anthropic_messages;
    json_t *usage = parse("{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}");
    json_t *resp =
        parse("{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}");
    json_t *o = s->response(&info, resp, usage);
    assert_string_equal(json_string_value(json_object_get(o, "id")), "msg_abc123");
    assert_string_equal(json_string_value(json_object_get(o, "type")), "message");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "usage"), "output_tokens")), 2);
    json_decref(o);
    int status = 503;
    lg_skin_error_t e = {.err = LG_EOVERLOADED, .status = 503, .message = "busy", .provider_code = ""};
    o = s->error_body(&e, &status, json_object());
    assert_int_equal(status, 529);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "type")), "overloaded_error");
    json_decref(o);
    status = 400;
    lg_skin_error_t bad = {.err = LG_EINVAL, .status = 400, .message = "max_tokens: required", .provider_code = ""};
    o = s->error_body(&bad, &status, NULL);
    assert_int_equal(status, 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "type")), "invalid_request_error");
    json_decref(o);
    json_decref(usage);
}

static void test_skins_parse(void **state)
{
    (void)state;
    lg_gen_request_t r;
    char err[256];
    static const char chat[] = "{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}";
    assert_int_equal(lg_skin_openai_chat.parse(chat, sizeof(chat) - 1, &r, err, sizeof(err)), 0);
    assert_true(r.stream);
    assert_int_equal(r.num_models, 1);
    lg_gen_request_dispose(&r);
    static const char msgs[] = "{\"model\":\"a/b\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert_int_equal(lg_skin_anthropic_messages.parse(msgs, sizeof(msgs) - 1, &r, err, sizeof(err)), 0);
    assert_int_equal(r.kind, LG_API_CHAT);
    lg_gen_request_dispose(&r);
    static const char broken[] = "{\"model\":";
    assert_int_equal(lg_skin_anthropic_messages.parse(broken, sizeof(broken) - 1, &r, err, sizeof(err)), LG_EINVAL);
    assert_non_null(strstr(err, "invalid JSON body"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skins_openai_chunk_owned_members),
        cmocka_unit_test(test_skins_openai_finish_and_error),
        cmocka_unit_test(test_skins_openai_keepalive_comment_cap),
        cmocka_unit_test(test_skins_openai_whole_bodies),
        cmocka_unit_test(test_skins_anthropic_stream),
        cmocka_unit_test(test_skins_anthropic_whole_bodies),
        cmocka_unit_test(test_skins_parse),
    };
    return cmocka_run_group_tests_name("skins", tests, NULL, NULL);
}
