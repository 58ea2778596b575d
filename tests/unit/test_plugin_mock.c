/* SPDX-License-Identifier: MIT */
/*
 * The `mock` plugin through the real mock.so: local_respond produces OpenAI
 * wire bytes, which go back through the plugin's own parse callbacks exactly
 * as the host does it (non-stream: parse_response; stream: SSE events).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plugin/loader.h"
#include "../support/plugin_fixture.h"

static const lg_provider_t *P;

static const char lorem[] =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore "
    "magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo "
    "consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
    "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.";
#define LOREM_WORDS 69

static const struct pf_plugin mock = {.name = "mock"};

static int setup(void **state)
{
    (void)state;
    P = pf_setup(&mock);
    return P != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    pf_teardown();
    return 0;
}

static void *make(const char *conf_text)
{
    json_t *conf = json_loads(conf_text, 0, NULL);
    assert_non_null(conf);
    void *inst = NULL;
    lg_errbuf_t e = {{0}};
    int rc = P->create(conf, &inst, &e);
    if (rc != 0)
        fail_msg("create: %s", e.msg);
    json_decref(conf);
    return inst;
}

struct result {
    lg_local_resp_t resp;
    json_t *body; /* non-stream: parsed response */
    int rc;       /* parse_response / stream_end result */
    json_t *chunks, *usage;
    int done;
    char err[256];
};

static void free_result(struct result *r)
{
    lg_plugin_host_api()->free_mem(r->resp.body);
    json_decref(r->body);
    json_decref(r->chunks);
    json_decref(r->usage);
}

/* Splits an SSE body into events at blank lines (the mock writes "data: ...\n\n" only) and feeds them. */
static void feed_sse(void *inst, void *ss, struct result *r)
{
    const char *p = r->resp.body, *end = p + r->resp.body_len;
    r->chunks = json_array();
    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        assert_non_null(sep);
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        size_t dlen = (size_t)(sep - (p + 6));
        char *data = malloc(dlen + 1);
        memcpy(data, p + 6, dlen);
        data[dlen] = '\0';
        lg_sse_event_t ev = {"", 0, data, dlen, "", 0};
        lg_stream_out_t out;
        memset(&out, 0, sizeof(out));
        lg_errbuf_t e = {{0}};
        assert_int_equal(P->parse_stream_event(inst, ss, &ev, &out, &e), 0);
        assert_int_equal(out.error, 0);
        for (size_t i = 0; i < out.num_chunks; ++i)
            json_array_append_new(r->chunks, out.chunks[i]);
        if (out.usage != NULL) {
            json_decref(r->usage);
            r->usage = out.usage;
        }
        r->done |= out.done;
        free(data);
        p = sep + 2;
    }
}

static void run(void *inst, lg_api_kind_t kind, int stream, const char *model, const char *body_text, struct result *r)
{
    memset(r, 0, sizeof(*r));
    json_t *body = json_loads(body_text, 0, NULL);
    assert_non_null(body);
    lg_call_t call = {.struct_size = sizeof(call),
                      .kind = kind,
                      .stream = stream,
                      .body = body,
                      .upstream_model = model,
                      .public_model = model,
                      .request_id = "gen-1"};
    lg_errbuf_t e = {{0}};
    assert_int_equal(P->local_respond(inst, &call, &r->resp, &e), 0);
    assert_non_null(r->resp.body);
    assert_int_equal(strlen(r->resp.body), r->resp.body_len);
    if (r->resp.status == 200) {
        if (!stream) {
            r->rc = P->parse_response(inst, &call, 200, r->resp.body, r->resp.body_len, &r->body, &e);
        } else {
            void *ss = NULL;
            assert_int_equal(P->stream_begin(inst, &call, &ss), 0);
            feed_sse(inst, ss, r);
            lg_stream_out_t out;
            memset(&out, 0, sizeof(out));
            r->rc = P->stream_end(inst, ss, &out, &e);
            P->stream_free(inst, ss);
        }
        snprintf(r->err, sizeof(r->err), "%s", e.msg);
    }
    json_decref(body);
}

static json_int_t usage_of(json_t *u, const char *k)
{
    assert_true(json_is_integer(json_object_get(u, k)));
    return json_integer_value(json_object_get(u, k));
}

static void test_mock_echo_non_stream(void **state)
{
    (void)state;
    void *inst = make("{\"name\":\"mock\"}");
    struct result r;
    run(inst, LG_API_CHAT, 0, "echo",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"be nice\"},{\"role\":\"user\",\"content\":\"first\"},"
        "{\"role\":\"assistant\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"big  world\"}]}]}",
        &r);
    assert_int_equal(r.resp.status, 200);
    assert_int_equal(r.resp.chunk_bytes, 0);
    assert_int_equal(r.resp.chunk_delay_ms, 0);
    assert_int_equal(r.rc, 0);
    json_t *msg = json_object_get(json_array_get(json_object_get(r.body, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Hello big  world");
    assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.body, "choices"), 0), "finish_reason")),
                        "stop");
    /* parse_response strips what the host owns */
    assert_null(json_object_get(r.body, "id"));
    assert_null(json_object_get(r.body, "model"));
    json_t *u = json_object_get(r.body, "usage");
    /* words: "be nice"=2, "first"=1, "ok"=1, "Hello big  world"=3, plus one per message */
    assert_int_equal(usage_of(u, "prompt_tokens"), 7 + 4);
    assert_int_equal(usage_of(u, "completion_tokens"), 3);
    assert_int_equal(usage_of(u, "total_tokens"), 14);
    free_result(&r);
    P->destroy(inst);
}

static void test_mock_lorem_stream_chunks(void **state)
{
    (void)state;
    void *inst = make("{\"name\":\"m\",\"options\":{\"chunk_words\":3}}");
    struct result r;
    run(inst, LG_API_CHAT, 1, "lorem", "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],\"stream\":true}", &r);
    assert_int_equal(r.resp.status, 200);
    /* ends with the usage chunk and [DONE] */
    assert_non_null(strstr(r.resp.body, "\"choices\":[],"));
    assert_int_equal(strcmp(r.resp.body + r.resp.body_len - 14, "data: [DONE]\n\n"), 0);
    assert_int_equal(r.rc, 0);
    assert_true(r.done);
    /* role chunk + ceil(69/3) content chunks + finish chunk */
    size_t n = json_array_size(r.chunks), content_chunks = (LOREM_WORDS + 2) / 3;
    assert_int_equal(n, 1 + content_chunks + 1);
    json_t *first = json_object_get(json_array_get(json_object_get(json_array_get(r.chunks, 0), "choices"), 0), "delta");
    assert_string_equal(json_string_value(json_object_get(first, "role")), "assistant");
    char text[1024] = "";
    for (size_t i = 1; i + 1 < n; ++i) {
        json_t *c = json_array_get(json_object_get(json_array_get(r.chunks, i), "choices"), 0);
        const char *piece = json_string_value(json_object_get(json_object_get(c, "delta"), "content"));
        assert_non_null(piece);
        assert_true(json_is_null(json_object_get(c, "finish_reason")));
        strcat(text, piece);
    }
    assert_string_equal(text, lorem); /* spaces preserved across pieces */
    json_t *last = json_array_get(json_object_get(json_array_get(r.chunks, n - 1), "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(last, "finish_reason")), "stop");
    assert_int_equal(usage_of(r.usage, "completion_tokens"), LOREM_WORDS);
    assert_int_equal(usage_of(r.usage, "prompt_tokens"), 2);
    free_result(&r);
    P->destroy(inst);
}

static void test_mock_lorem_max_tokens_length(void **state)
{
    (void)state;
    void *inst = make("{\"options\":{\"chunk_delay_ms\":5,\"first_delay_ms\":7}}");
    struct result r;
    run(inst, LG_API_CHAT, 1, "lorem", "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],\"max_tokens\":10}", &r);
    assert_int_equal(r.resp.chunk_delay_ms, 5);
    assert_int_equal(r.resp.first_delay_ms, 7);
    assert_int_equal(r.resp.chunk_bytes, 0);
    assert_int_equal(json_array_size(r.chunks), 1 + 10 + 1);
    json_t *last = json_array_get(json_object_get(json_array_get(r.chunks, 11), "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(last, "finish_reason")), "length");
    assert_int_equal(usage_of(r.usage, "completion_tokens"), 10);
    free_result(&r);

    run(inst, LG_API_CHAT, 0, "lorem", "{\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],\"max_completion_tokens\":5}", &r);
    json_t *c = json_array_get(json_object_get(r.body, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "message"), "content")),
                        "Lorem ipsum dolor sit amet,");
    assert_string_equal(json_string_value(json_object_get(c, "finish_reason")), "length");
    free_result(&r);
    P->destroy(inst);
}

static void test_mock_embeddings_deterministic(void **state)
{
    (void)state;
    void *inst = make("{}");
    struct result a, b, c;
    run(inst, LG_API_EMBEDDINGS, 0, "embed", "{\"input\":[\"hello world\",\"other\"]}", &a);
    run(inst, LG_API_EMBEDDINGS, 0, "embed", "{\"input\":[\"hello world\",\"other\"]}", &b);
    assert_int_equal(a.rc, 0);
    assert_true(json_equal(a.body, b.body));
    json_t *data = json_object_get(a.body, "data");
    assert_int_equal(json_array_size(data), 2);
    json_t *v0 = json_object_get(json_array_get(data, 0), "embedding"), *v1 = json_object_get(json_array_get(data, 1), "embedding");
    assert_int_equal(json_array_size(v0), 8);
    assert_false(json_equal(v0, v1));
    double norm = 0;
    for (size_t i = 0; i < 8; ++i)
        norm += json_real_value(json_array_get(v0, i)) * json_real_value(json_array_get(v0, i));
    assert_true(fabs(norm - 1.0) < 1e-9);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "index")), 1);
    assert_int_equal(usage_of(json_object_get(a.body, "usage"), "prompt_tokens"), 3);
    assert_int_equal(usage_of(json_object_get(a.body, "usage"), "completion_tokens"), 0);
    /* a single string gives the same vector as the same string in a list */
    run(inst, LG_API_EMBEDDINGS, 0, "embed", "{\"input\":\"hello world\",\"dimensions\":8}", &c);
    assert_true(json_equal(json_object_get(json_array_get(json_object_get(c.body, "data"), 0), "embedding"), v0));
    free_result(&a);
    free_result(&b);
    free_result(&c);
    P->destroy(inst);

    inst = make("{\"options\":{\"dimensions\":16}}");
    run(inst, LG_API_EMBEDDINGS, 0, "embed", "{\"input\":\"x\"}", &a);
    assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(a.body, "data"), 0), "embedding")), 16);
    free_result(&a);
    P->destroy(inst);
}

static void test_mock_errors(void **state)
{
    (void)state;
    void *inst = make("{}");
    struct result r;
    lg_upstream_error_t u;
    run(inst, LG_API_CHAT, 1, "error-429", "{\"messages\":[]}", &r);
    assert_int_equal(r.resp.status, 429);
    P->classify_error(inst, r.resp.status, r.resp.body, r.resp.body_len, &u);
    assert_int_equal(u.err, LG_EUPSTREAM_RATELIMIT);
    assert_true(u.retryable);
    assert_string_equal(u.provider_code, "rate_limit_exceeded");
    free_result(&r);

    run(inst, LG_API_CHAT, 0, "error-500", "{\"messages\":[]}", &r);
    assert_int_equal(r.resp.status, 500);
    P->classify_error(inst, r.resp.status, r.resp.body, r.resp.body_len, &u);
    assert_int_equal(u.err, LG_EUPSTREAM);
    assert_true(u.retryable);
    assert_string_equal(u.provider_code, "server_error");
    free_result(&r);

    run(inst, LG_API_CHAT, 0, "no-such-model", "{\"messages\":[]}", &r);
    assert_int_equal(r.resp.status, 404);
    P->classify_error(inst, r.resp.status, r.resp.body, r.resp.body_len, &u);
    assert_int_equal(u.err, LG_EUPSTREAM_REJECTED);
    assert_string_equal(u.provider_code, "model_not_found");
    free_result(&r);

    lg_local_resp_t out;
    memset(&out, 0, sizeof(out));
    json_t *body = json_pack("{ss}", "input", "x");
    lg_call_t call = {.struct_size = sizeof(call), .kind = LG_API_EMBEDDINGS, .stream = 1, .body = body, .upstream_model = "embed"};
    lg_errbuf_t e = {{0}};
    assert_int_equal(P->local_respond(inst, &call, &out, &e), LG_EUNSUPPORTED);
    json_decref(body);
    P->destroy(inst);
}

static void test_mock_legacy_completions(void **state)
{
    (void)state;
    void *inst = make("{\"options\":{\"chunk_words\":2}}");
    struct result r;
    run(inst, LG_API_COMPLETIONS, 0, "echo", "{\"prompt\":\"Say this is a test\"}", &r);
    assert_int_equal(r.rc, 0);
    json_t *c = json_array_get(json_object_get(r.body, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "text")), "Say this is a test");
    assert_int_equal(usage_of(json_object_get(r.body, "usage"), "prompt_tokens"), 6);
    free_result(&r);

    run(inst, LG_API_COMPLETIONS, 1, "echo", "{\"prompt\":[\"one two three\"],\"stream\":true}", &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.done);
    assert_non_null(strstr(r.resp.body, "\"object\":\"text_completion\""));
    /* no role chunk for legacy completions: "one two", " three", finish */
    assert_int_equal(json_array_size(r.chunks), 3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(r.chunks, 1), "choices"), 0), "text")),
        " three");
    assert_int_equal(usage_of(r.usage, "completion_tokens"), 3);
    free_result(&r);
    P->destroy(inst);
}

static void test_mock_bad_options(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"options\":{\"chunk_words\":0}}",
        "{\"options\":{\"chunk_delay_ms\":-1}}",
        "{\"options\":{\"dimensions\":\"8\"}}",
        "{\"options\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        json_t *conf = json_loads(bad[i], 0, NULL);
        void *inst = (void *)(uintptr_t)1;
        lg_errbuf_t e = {{0}};
        assert_int_equal(P->create(conf, &inst, &e), LG_EINVAL);
        assert_null(inst);
        assert_true(e.msg[0] != '\0');
        json_decref(conf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mock_echo_non_stream),
        cmocka_unit_test(test_mock_lorem_stream_chunks),
        cmocka_unit_test(test_mock_lorem_max_tokens_length),
        cmocka_unit_test(test_mock_embeddings_deterministic),
        cmocka_unit_test(test_mock_errors),
        cmocka_unit_test(test_mock_legacy_completions),
        cmocka_unit_test(test_mock_bad_options),
    };
    return cmocka_run_group_tests_name("plugin_mock", tests, setup, teardown);
}
