/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the OpenAI wire pass-through (src/pipeline/passthru.c): the
 * upstream body made from the client's bytes, usage read without a tree,
 * reply and chunk rewriting of the gateway-owned members only, and the
 * checks that turn malformed upstream output into an upstream failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <jansson.h>
#include "pipeline/passthru.h"

static lg_json_span_t span_of(const char *s)
{
    lg_json_span_t v;
    assert_int_equal(lg_json_validate(s, strlen(s), &v, NULL), 0);
    return v;
}

static json_t *load(const char *p, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(p, n, 0, &e);
    if (j == NULL)
        fail_msg("not JSON (%s): %.*s", e.text, (int)n, p);
    return j;
}

static void body_expect(const char *client, const lg_pt_body_opts_t *o, const char *want)
{
    lg_buf_t b;
    lg_buf_init(&b, 1 << 16);
    assert_int_equal(lg_pt_upstream_body(span_of(client), o, &b), 0);
    assert_string_equal(b.data, want);
    lg_buf_dispose(&b);
}

static void test_passthru_body_drops_gateway_fields_and_sets_model(void **state)
{
    (void)state;
    const lg_pt_body_opts_t o = {.model = "gpt-4o-2024", .stream = 0, .include_usage = 1};
    body_expect(
        "{\"model\":\"openai/gpt-4o\",\"models\":[\"a\"],\"provider\":{\"order\":[\"x\"]},\"route\":\"fallback\","
        "\"transforms\":[\"middle-out\"],\"plugins\":[],\"usage\":{\"include\":true},\"debug\":{\"echo_upstream_body\":true},"
        "\"session_id\":\"s\",\"trace\":{},\"messages\":[{\"role\":\"user\",\"content\":\"hi \\u00e9\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}],\"x_unknown\":1.50}",
        &o,
        "{\"model\":\"gpt-4o-2024\",\"messages\":[{\"role\":\"user\",\"content\":\"hi \\u00e9\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}],\"x_unknown\":1.50}");
    /* a model name that needs escaping is escaped; the model is set even when the client only sent models[] */
    const lg_pt_body_opts_t q = {.model = "we\"ird", .stream = 0, .include_usage = 1};
    body_expect("{\"models\":[\"a\"],\"messages\":[]}", &q, "{\"messages\":[],\"model\":\"we\\\"ird\"}");
}

static void test_passthru_body_stream_fields(void **state)
{
    (void)state;
    const lg_pt_body_opts_t s = {.model = "m", .stream = 1, .include_usage = 1};
    body_expect("{\"model\":\"a\",\"stream\":true,\"messages\":[]}", &s,
                "{\"model\":\"m\",\"stream\":true,\"messages\":[],\"stream_options\":{\"include_usage\":true}}");
    /* the client's stream_options are kept and include_usage forced on */
    body_expect("{\"model\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":false,\"x\":1}}", &s,
                "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true,\"x\":1}}");
    const lg_pt_body_opts_t n = {.model = "m", .stream = 0, .include_usage = 1};
    /* OpenAI rejects stream_options without stream:true */
    body_expect("{\"model\":\"a\",\"stream\":false,\"stream_options\":{\"include_usage\":true},\"n\":1}", &n,
                "{\"model\":\"m\",\"n\":1}");
    /* max_completion_tokens wins over max_tokens */
    body_expect("{\"model\":\"a\",\"max_tokens\":5,\"max_completion_tokens\":7}", &n,
                "{\"model\":\"m\",\"max_completion_tokens\":7}");
    body_expect("{\"model\":\"a\",\"max_tokens\":5,\"max_completion_tokens\":null}", &n,
                "{\"model\":\"m\",\"max_tokens\":5,\"max_completion_tokens\":null}");
}

static void test_passthru_body_respects_cap(void **state)
{
    (void)state;
    const lg_pt_body_opts_t o = {.model = "m", .stream = 0, .include_usage = 1};
    lg_buf_t b;
    lg_buf_init(&b, 16);
    assert_int_equal(lg_pt_upstream_body(span_of("{\"model\":\"a\",\"messages\":[1,2,3,4,5,6,7]}"), &o, &b), -1);
    assert_int_equal(b.len, 0);
    lg_buf_dispose(&b);
    assert_true(lg_pt_is_gateway_field("session_id", 10));
    assert_false(lg_pt_is_gateway_field("messages", 8));
}

static void test_passthru_usage_read(void **state)
{
    (void)state;
    lg_pt_usage_t u;
    lg_pt_usage_read(span_of("{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,"
                             "\"prompt_tokens_details\":{\"cached_tokens\":4,\"cache_write_tokens\":3},"
                             "\"completion_tokens_details\":{\"reasoning_tokens\":1}}"),
                     &u);
    assert_int_equal(u.u.prompt_tokens, 9);
    assert_int_equal(u.u.completion_tokens, 2);
    assert_int_equal(u.total_tokens, 11);
    assert_int_equal(u.u.cached_tokens, 4);
    assert_int_equal(u.u.cache_write_tokens, 3);
    assert_int_equal(u.u.reasoning_tokens, 1);
    assert_true(u.has_prompt && u.has_completion && u.has_total);
    /* Responses API names, reals truncated, negatives clamped, total computed when absent */
    lg_pt_usage_read(span_of("{\"input_tokens\":5.9,\"output_tokens\":-3}"), &u);
    assert_int_equal(u.u.prompt_tokens, 5);
    assert_int_equal(u.u.completion_tokens, 0);
    assert_int_equal(u.total_tokens, 5);
    assert_false(u.has_total);
    /* strings are not counts */
    lg_pt_usage_read(span_of("{\"prompt_tokens\":\"9\"}"), &u);
    assert_false(u.has_prompt);
    assert_int_equal(u.u.prompt_tokens, 0);
    lg_pt_usage_read(span_of("[]"), &u);
    assert_int_equal(u.total_tokens, 0);
}

static void test_passthru_usage_write(void **state)
{
    (void)state;
    lg_pt_usage_t u;
    lg_json_span_t in = span_of("{\"prompt_tokens\":9,\"completion_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":0},"
                                "\"cost\":99}");
    lg_pt_usage_read(in, &u);
    lg_buf_t b;
    lg_buf_init(&b, 4096);
    lg_cost_t c1 = {.prompt = 1000000, .completion = 500000, .total = 1500000};
    assert_int_equal(lg_pt_write_usage(in, &u, &c1, &b), 0);
    json_t *j = load(b.data, b.len);
    assert_int_equal(json_integer_value(json_object_get(j, "total_tokens")), 11);
    assert_true(json_is_real(json_object_get(j, "cost")));
    assert_true(json_real_value(json_object_get(j, "cost")) == 1.5e-6);
    assert_true(json_is_false(json_object_get(j, "is_byok")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "cost_details"), "upstream_inference_cost")));
    assert_true(json_real_value(json_object_get(json_object_get(j, "cost_details"), "upstream_inference_prompt_cost")) == 1e-6);
    assert_true(json_real_value(json_object_get(json_object_get(j, "cost_details"), "upstream_inference_completions_cost")) ==
                5e-7);
    assert_non_null(json_object_get(j, "prompt_tokens_details"));
    json_decref(j);
    /* the cost is an exact decimal of the pico-USD integer */
    lg_buf_reset(&b);
    lg_cost_t c2 = {.prompt = 12000000000001, .completion = 0, .total = 12000000000001};
    assert_int_equal(lg_pt_write_usage((lg_json_span_t){0}, &u, &c2, &b), 0);
    assert_non_null(strstr(b.data, "\"cost\":12.000000000001,"));
    lg_buf_reset(&b);
    lg_cost_t c3 = {.prompt = 3000000000000, .completion = 0, .total = 3000000000000};
    assert_int_equal(lg_pt_write_usage((lg_json_span_t){0}, &u, &c3, &b), 0);
    assert_non_null(strstr(b.data, "\"cost\":3.0,"));
    /* no upstream usage: counts from the estimate */
    lg_buf_reset(&b);
    lg_pt_usage_t est = {.u = {.prompt_tokens = 3, .completion_tokens = 4}, .total_tokens = 7};
    lg_cost_t c0 = {0, 0, 0};
    assert_int_equal(lg_pt_write_usage((lg_json_span_t){0}, &est, &c0, &b), 0);
    assert_string_equal(b.data, "{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7,\"cost\":0.0,\"is_byok\":false,"
                                "\"cost_details\":{\"upstream_inference_cost\":null,\"upstream_inference_prompt_cost\":0.0,"
                                "\"upstream_inference_completions_cost\":0.0}}");
    lg_buf_dispose(&b);
}

static const lg_pt_owned_t OWN = {"gen-abc", "chat.completion", 1700000000, "openai/gpt-4o", "OpenAI"};

static void test_passthru_reply_rewrites_owned_members_only(void **state)
{
    (void)state;
    const char *up = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o-2024\","
                     "\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                     "\"content\":\"Hi \\u00e9\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11},\"service_tier\":\"default\"}";
    lg_pt_info_t info;
    char err[256] = "";
    assert_int_equal(lg_pt_check_reply(up, strlen(up), &info, err, sizeof(err)), LG_PT_OK);
    assert_int_equal(info.num_choices, 1);
    assert_string_equal(info.finish_reason, "stop");
    assert_int_equal(info.content_chars, 5);
    assert_int_equal(info.usage.type, LG_JSON_OBJECT);
    lg_buf_t b;
    lg_buf_init(&b, 8192);
    const char *usage = "{\"prompt_tokens\":9,\"cost\":0.5}";
    assert_int_equal(lg_pt_write_reply(&info, &OWN, usage, strlen(usage), &b), 0);
    assert_string_equal(b.data,
                        "{\"id\":\"gen-abc\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"openai/gpt-4o\","
                        "\"provider\":\"OpenAI\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"message\":"
                        "{\"role\":\"assistant\",\"content\":\"Hi \\u00e9\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                        "\"usage\":{\"prompt_tokens\":9,\"cost\":0.5},\"service_tier\":\"default\"}");
    /* a reply without usage gets ours appended; with usage NULL it goes */
    const char *bare = "{\"choices\":[]}";
    assert_int_equal(lg_pt_check_reply(bare, strlen(bare), &info, err, sizeof(err)), LG_PT_OK);
    lg_buf_reset(&b);
    assert_int_equal(lg_pt_write_reply(&info, &OWN, "{}", 2, &b), 0);
    assert_string_equal(b.data,
                        "{\"id\":\"gen-abc\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"openai/gpt-4o\","
                        "\"provider\":\"OpenAI\",\"system_fingerprint\":null,\"choices\":[],\"usage\":{}}");
    const char *only_owned = "{\"id\":\"x\",\"model\":\"y\",\"choices\":[]}";
    assert_int_equal(lg_pt_check_reply(only_owned, strlen(only_owned), &info, err, sizeof(err)), LG_PT_OK);
    lg_buf_reset(&b);
    assert_int_equal(lg_pt_write_reply(&info, &OWN, NULL, 0, &b), 0);
    json_t *j = load(b.data, b.len);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "gen-abc");
    assert_null(json_object_get(j, "usage"));
    assert_true(json_is_null(json_object_get(j, "system_fingerprint"))); /* OpenRouter's schema requires the member */
    assert_int_equal(json_object_size(j), 7);
    json_decref(j);
    /* more members than the writer keeps ranges for: the splice fallback gives the same object */
    char many[2048];
    size_t mo = (size_t)snprintf(many, sizeof(many), "{\"id\":\"u\",\"choices\":[]");
    for (int m = 0; m < 20; ++m)
        mo += (size_t)snprintf(many + mo, sizeof(many) - mo, ",\"x%d\":%d", m, m);
    snprintf(many + mo, sizeof(many) - mo, ",\"usage\":{\"a\":1}}");
    assert_int_equal(lg_pt_check_reply(many, strlen(many), &info, err, sizeof(err)), LG_PT_OK);
    assert_int_equal(info.keep_overflow, 1);
    lg_buf_reset(&b);
    assert_int_equal(lg_pt_write_reply(&info, &OWN, "{\"b\":2}", 7, &b), 0);
    j = load(b.data, b.len);
    assert_int_equal(json_object_size(j), 5 + 1 + 20 + 1 + 1); /* + system_fingerprint */
    assert_int_equal(json_integer_value(json_object_get(j, "x19")), 19);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "b")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "gen-abc");
    json_decref(j);
    /* the cap holds and rolls back */
    lg_buf_t small;
    lg_buf_init(&small, 40);
    assert_int_equal(lg_pt_write_reply(&info, &OWN, NULL, 0, &small), -1);
    assert_int_equal(small.len, 0);
    lg_buf_dispose(&small);
    lg_buf_dispose(&b);
}

static void test_passthru_chunk_rewrite_drops_usage(void **state)
{
    (void)state;
    const char *ev =
        " {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\"tok\"},\"finish_reason\":null}],\"usage\":null}\n";
    lg_pt_info_t info;
    char err[256];
    assert_int_equal(lg_pt_check_chunk(ev, strlen(ev), &info, err, sizeof(err)), LG_PT_OK);
    assert_int_equal(info.has_content, 1);
    assert_int_equal(info.content_chars, 3);
    assert_int_equal(info.usage.type, LG_JSON_NONE);
    lg_buf_t b;
    lg_buf_init(&b, 4096);
    lg_pt_owned_t own = OWN;
    own.object = "chat.completion.chunk";
    assert_int_equal(lg_pt_write_chunk(&info, &own, &b), 0);
    assert_string_equal(b.data, "data: {\"id\":\"gen-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                                "\"model\":\"openai/gpt-4o\",\"provider\":\"OpenAI\",\"choices\":[{\"index\":0,\"delta\":"
                                "{\"content\":\"tok\"},\"finish_reason\":null}]}\n\n");
    lg_buf_dispose(&b);
    /* the usage chunk: usage span found, empty choices */
    const char *uc = "{\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}";
    assert_int_equal(lg_pt_check_chunk(uc, strlen(uc), &info, err, sizeof(err)), LG_PT_OK);
    assert_int_equal(info.num_choices, 0);
    assert_int_equal(info.usage.type, LG_JSON_OBJECT);
    assert_int_equal(lg_pt_check_chunk(" [DONE] ", 8, &info, err, sizeof(err)), LG_PT_DONE);
    /* a chunk's system_fingerprint stays only as a string (OpenRouter's SDK rejects null there) */
    const char *fpnull = "{\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}";
    const char *fpstr = "{\"system_fingerprint\":\"fp_9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}";
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_pt_check_chunk(fpnull, strlen(fpnull), &info, err, sizeof(err)), LG_PT_OK);
    assert_int_equal(lg_pt_write_chunk(&info, &own, &b), 0);
    assert_null(strstr(b.data, "system_fingerprint"));
    lg_buf_reset(&b);
    assert_int_equal(lg_pt_check_chunk(fpstr, strlen(fpstr), &info, err, sizeof(err)), LG_PT_OK);
    assert_int_equal(lg_pt_write_chunk(&info, &own, &b), 0);
    assert_non_null(strstr(b.data, "\"system_fingerprint\":\"fp_9\""));
    lg_buf_dispose(&b);
}

static void test_passthru_commit_point_content(void **state)
{
    (void)state;
    struct {
        const char *chunk;
        int content;
    } cases[] = {
        {"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", 0},
        {"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null}}]}", 0},
        {"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}", 1},
        {"{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\"}]}}]}", 1},
        {"{\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"hmm\"}}]}", 1},
        {"{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}", 1},
        {"{\"choices\":[{\"index\":0,\"text\":\"legacy\"}]}", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        lg_pt_info_t info;
        char err[256];
        assert_int_equal(lg_pt_check_chunk(cases[i].chunk, strlen(cases[i].chunk), &info, err, sizeof(err)), LG_PT_OK);
        if (info.has_content != cases[i].content)
            fail_msg("case %zu: has_content %d", i, info.has_content);
    }
}

static void test_passthru_malformed_upstream_is_a_failure(void **state)
{
    (void)state;
    struct {
        const char *body;
        int stream;
        lg_pt_status_t want;
        const char *msg;
    } cases[] = {
        {"{\"choices\":[{\"index\":0,\"message\":{\"content\":12345}}]}", 0, LG_PT_BAD,
         "choices[0].message.content: expected string, array or null"},
        {"{\"choices\":[{\"index\":0,\"delta\":{\"content\":12345}}]}", 1, LG_PT_BAD,
         "choices[0].delta.content: expected string, array or null"},
        {"{\"choices\":[{\"index\":0,\"message\":{},\"finish_reason\":42}]}", 0, LG_PT_BAD,
         "choices[0].finish_reason: expected string or null"},
        {"{\"choices\":[null]}", 0, LG_PT_BAD, "choices[0]: expected object"},
        {"{\"choices\":[null]}", 1, LG_PT_BAD, "choices[0]: expected object"},
        {"{\"choices\":[{\"message\":\"hi\"}]}", 0, LG_PT_BAD, "choices[0].message: expected object"},
        {"{\"choices\":[{\"index\":\"0\",\"delta\":{}}]}", 1, LG_PT_BAD, "choices[0].index: expected integer"},
        {"{\"choices\":[{\"delta\":{\"tool_calls\":{}}}]}", 1, LG_PT_BAD, "choices[0].delta.tool_calls: expected array or null"},
        {"{\"choices\":[{\"delta\":{\"content\":\"\xED\xA0\x80\"}}]}", 1, LG_PT_BAD, "invalid UTF-8"},
        {"{\"choices\":[{\"delta\":{\"content\":\"cut", 1, LG_PT_BAD, "not valid JSON"},
        {"not json", 1, LG_PT_BAD, "not valid JSON"},
        {"[1]", 1, LG_PT_BAD, "not a JSON object"},
        {"{\"object\":\"chat.completion\"}", 0, LG_PT_BAD, "no choices array"},
        {"{\"choices\":{}}", 1, LG_PT_BAD, "no choices array"},
        {"{\"error\":{\"message\":\"overloaded\",\"code\":529}}", 1, LG_PT_ERROR_OBJECT, ""},
        {"{\"error\":{\"message\":\"bad\"},\"choices\":[]}", 0, LG_PT_ERROR_OBJECT, ""},
        {"{\"error\":null,\"choices\":[]}", 0, LG_PT_OK, ""},
        {"{\"usage\":{\"prompt_tokens\":1}}", 1, LG_PT_OK, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        lg_pt_info_t info;
        char err[256] = "";
        size_t n = strlen(cases[i].body);
        lg_pt_status_t st = cases[i].stream ? lg_pt_check_chunk(cases[i].body, n, &info, err, sizeof(err))
                                            : lg_pt_check_reply(cases[i].body, n, &info, err, sizeof(err));
        if (st != cases[i].want)
            fail_msg("case %zu (%s): status %d, want %d (%s)", i, cases[i].body, st, cases[i].want, err);
        if (cases[i].want == LG_PT_BAD && strstr(err, cases[i].msg) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err, cases[i].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passthru_body_drops_gateway_fields_and_sets_model),
        cmocka_unit_test(test_passthru_body_stream_fields),
        cmocka_unit_test(test_passthru_body_respects_cap),
        cmocka_unit_test(test_passthru_usage_read),
        cmocka_unit_test(test_passthru_usage_write),
        cmocka_unit_test(test_passthru_reply_rewrites_owned_members_only),
        cmocka_unit_test(test_passthru_chunk_rewrite_drops_usage),
        cmocka_unit_test(test_passthru_commit_point_content),
        cmocka_unit_test(test_passthru_malformed_upstream_is_a_failure),
    };
    return cmocka_run_group_tests_name("passthru", tests, NULL, NULL);
}
