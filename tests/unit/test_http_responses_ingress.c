/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/http/responses_ingress.c: Responses requests → chat requests (string and item input, function
 * call round trips, reasoning items passed back, tools, tool_choice, text.format, the stateless refusals, every bad
 * input naming its field), chat.completion → response objects (text, function calls, reasoning, incomplete status,
 * usage names), and the streaming event sequence (order, sequence_number, deltas, done events, completed / failed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "core/error.h"
#include "http/responses_ingress.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("bad fixture: %s: %s", e.text, s);
    return j;
}

static json_t *to_chat(const char *req, json_t **echo)
{
    json_t *in = parse(req), *out = NULL, *e = NULL;
    char err[256] = "";
    int rc = lg_responses_request_to_openai(in, &out, &e, err, sizeof(err));
    json_decref(in);
    if (rc != 0)
        fail_msg("translation failed: %s", err);
    if (echo != NULL)
        *echo = e;
    else
        json_decref(e);
    return out;
}

static void expect_error(const char *req, const char *msg)
{
    json_t *in = parse(req), *out = NULL, *echo = NULL;
    char err[256] = "";
    int rc = lg_responses_request_to_openai(in, &out, &echo, err, sizeof(err));
    json_decref(in);
    assert_int_equal(rc, LG_EINVAL);
    assert_null(out);
    assert_null(echo);
    if (strstr(err, msg) == NULL)
        fail_msg("error \"%s\" should contain \"%s\" (request %s)", err, msg, req);
}

static const char *str_at(json_t *j, const char *path)
{
    /* tiny path walker: "messages.1.content" */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok != NULL && cur != NULL; tok = strtok(NULL, "."))
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    return json_string_value(cur);
}

static void test_request_string_input_and_instructions(void **state)
{
    (void)state;
    json_t *echo = NULL;
    json_t *c = to_chat("{\"model\":\"m\",\"instructions\":\"be brief\",\"input\":\"hi\",\"max_output_tokens\":50,"
                        "\"temperature\":0.2,\"metadata\":{\"k\":\"v\"},\"provider\":{\"order\":[\"a\"]},\"stream\":true}",
                        &echo);
    assert_string_equal(str_at(c, "model"), "m");
    assert_string_equal(str_at(c, "messages.0.role"), "system");
    assert_string_equal(str_at(c, "messages.0.content"), "be brief");
    assert_string_equal(str_at(c, "messages.1.role"), "user");
    assert_string_equal(str_at(c, "messages.1.content"), "hi");
    assert_int_equal(json_integer_value(json_object_get(c, "max_tokens")), 50);
    assert_non_null(json_object_get(c, "provider"));
    assert_true(json_is_true(json_object_get(json_object_get(c, "stream_options"), "include_usage")));
    assert_null(json_object_get(c, "metadata")); /* echoed, not sent upstream */
    assert_string_equal(str_at(echo, "instructions"), "be brief");
    assert_string_equal(str_at(echo, "metadata.k"), "v");
    json_decref(c);
    json_decref(echo);
}

static void test_request_items_function_call_round_trip(void **state)
{
    (void)state;
    json_t *c = to_chat("{\"model\":\"m\",\"input\":["
                        "{\"role\":\"developer\",\"content\":\"rules\"},"
                        "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"weather?\"}]},"
                        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"think\"}],"
                        "\"signature\":\"sig\",\"format\":\"anthropic-claude-v1\"},"
                        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
                        "\\\"Paris\\\"}\"},"
                        "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"get_time\",\"arguments\":\"{}\"},"
                        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"sunny\"},"
                        "{\"type\":\"function_call_output\",\"call_id\":\"c2\",\"output\":\"noon\"}],"
                        "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"d\",\"parameters\":{"
                        "\"type\":\"object\"},\"strict\":true}],\"tool_choice\":{\"type\":\"function\",\"name\":\"get_weather\"}}",
                        NULL);
    json_t *msgs = json_object_get(c, "messages");
    assert_int_equal(json_array_size(msgs), 5);
    assert_string_equal(str_at(c, "messages.0.role"), "system");
    assert_string_equal(str_at(c, "messages.1.content"), "weather?");
    assert_string_equal(str_at(c, "messages.2.role"), "assistant");
    assert_true(json_is_null(json_object_get(json_array_get(msgs, 2), "content")));
    assert_string_equal(str_at(c, "messages.2.tool_calls.0.id"), "c1");
    assert_string_equal(str_at(c, "messages.2.tool_calls.0.function.name"), "get_weather");
    assert_string_equal(str_at(c, "messages.2.tool_calls.1.id"), "c2");
    assert_string_equal(str_at(c, "messages.2.reasoning_details.0.type"), "reasoning.text");
    assert_string_equal(str_at(c, "messages.2.reasoning_details.0.signature"), "sig");
    assert_string_equal(str_at(c, "messages.3.role"), "tool");
    assert_string_equal(str_at(c, "messages.3.tool_call_id"), "c1");
    assert_string_equal(str_at(c, "messages.3.content"), "sunny");
    assert_string_equal(str_at(c, "messages.4.tool_call_id"), "c2");
    assert_string_equal(str_at(c, "tools.0.type"), "function");
    assert_string_equal(str_at(c, "tools.0.function.name"), "get_weather");
    assert_true(
        json_is_true(json_object_get(json_object_get(json_array_get(json_object_get(c, "tools"), 0), "function"), "strict")));
    assert_string_equal(str_at(c, "tool_choice.function.name"), "get_weather");
    json_decref(c);
}

static void test_request_text_format_and_reasoning(void **state)
{
    (void)state;
    json_t *c =
        to_chat("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"out\","
                "\"schema\":{\"type\":\"object\"},\"strict\":true}},\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"}}",
                NULL);
    assert_string_equal(str_at(c, "response_format.type"), "json_schema");
    assert_string_equal(str_at(c, "response_format.json_schema.name"), "out");
    assert_string_equal(str_at(c, "reasoning.effort"), "high");
    assert_null(json_object_get(json_object_get(c, "reasoning"), "summary"));
    json_decref(c);
    c = to_chat("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"look\"},{\"type\":"
                "\"input_image\",\"image_url\":\"data:image/png;base64,AA\",\"detail\":\"low\"}]}]}",
                NULL);
    assert_string_equal(str_at(c, "messages.0.content.1.type"), "image_url");
    assert_string_equal(str_at(c, "messages.0.content.1.image_url.detail"), "low");
    json_decref(c);
}

static void test_request_bad_input_names_the_field(void **state)
{
    (void)state;
    expect_error("{\"model\":\"m\",\"input\":\"x\",\"store\":true}", "store: true is not supported");
    expect_error("{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}", "previous_response_id");
    expect_error("{\"input\":\"x\"}", "model: required");
    expect_error("{\"model\":\"m\"}", "input: required");
    expect_error("{\"model\":\"m\",\"input\":[]}", "input: must not be empty");
    expect_error("{\"model\":\"m\",\"input\":5}", "input: expected string or array");
    expect_error("{\"model\":\"m\",\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "input[0].role");
    expect_error("{\"model\":\"m\",\"input\":[\"x\"]}", "input[0]: expected object");
    expect_error("{\"model\":\"m\",\"input\":[{\"type\":\"teleport\"}]}", "input[0].type: unknown item type");
    expect_error("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"a\"},{\"type\":\"function_call\",\"name\":\"f\"}]}",
                 "input[1].call_id");
    expect_error("{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":{}}]}",
                 "input[0].arguments: expected string");
    expect_error("{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"output\":\"x\"}]}", "input[0].call_id");
    expect_error("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
                 "input[0].content[0].type: unknown content type");
    expect_error("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "tools[0].type");
    expect_error("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\"}]}", "tools[0].name");
    expect_error("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"sometimes\"}", "tool_choice");
    expect_error("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\"}}}",
                 "text.format.schema");
    expect_error("{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", "max_output_tokens");
    expect_error("{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"x\"}]}", "stateless");
}

static void test_response_text_tools_reasoning(void **state)
{
    (void)state;
    json_t *chat = parse("{\"id\":\"gen-1\",\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{\"role\":"
                         "\"assistant\",\"content\":\"checking\",\"reasoning\":\"hmm\",\"reasoning_details\":[{\"type\":"
                         "\"reasoning.text\",\"text\":\"hmm\",\"signature\":\"s1\",\"format\":\"anthropic-claude-v1\"}],"
                         "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                         "\"{\\\"a\\\":1}\"}}]}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,"
                         "\"prompt_tokens_details\":{\"cached_tokens\":2},\"completion_tokens_details\":{\"reasoning_tokens\":3},"
                         "\"cost\":0.5,\"cost_details\":{\"upstream_inference_prompt_cost\":0.2,"
                         "\"upstream_inference_completions_cost\":0.3}}}");
    json_t *echo = parse("{\"instructions\":\"be brief\",\"metadata\":{\"k\":\"v\"}}");
    json_t *r = lg_responses_response_from_openai(chat, "resp_abc", "m/x", 1700000000, echo);
    assert_string_equal(str_at(r, "object"), "response");
    assert_string_equal(str_at(r, "id"), "resp_abc");
    assert_string_equal(str_at(r, "status"), "completed");
    assert_string_equal(str_at(r, "model"), "m/x");
    assert_string_equal(str_at(r, "instructions"), "be brief");
    assert_string_equal(str_at(r, "output.0.type"), "reasoning");
    assert_string_equal(str_at(r, "output.0.summary.0.text"), "hmm");
    assert_string_equal(str_at(r, "output.0.signature"), "s1");
    assert_string_equal(str_at(r, "output.1.type"), "message");
    assert_string_equal(str_at(r, "output.1.content.0.type"), "output_text");
    assert_string_equal(str_at(r, "output.1.content.0.text"), "checking");
    assert_string_equal(str_at(r, "output.2.type"), "function_call");
    assert_string_equal(str_at(r, "output.2.call_id"), "call_1");
    assert_string_equal(str_at(r, "output.2.arguments"), "{\"a\":1}");
    json_t *u = json_object_get(r, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 10);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 15);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "input_tokens_details"), "cached_tokens")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "output_tokens_details"), "reasoning_tokens")), 3);
    assert_true(json_real_value(json_object_get(u, "cost")) == 0.5);
    assert_true(json_real_value(json_object_get(json_object_get(u, "cost_details"), "upstream_inference_input_cost")) == 0.2);
    assert_true(json_real_value(json_object_get(json_object_get(u, "cost_details"), "upstream_inference_output_cost")) == 0.3);
    json_decref(r);
    json_decref(chat);
    chat = parse("{\"choices\":[{\"finish_reason\":\"length\",\"message\":{\"content\":\"cut\"}}],\"usage\":{}}");
    r = lg_responses_response_from_openai(chat, "resp_x", "m", 1, NULL);
    assert_string_equal(str_at(r, "status"), "incomplete");
    assert_string_equal(str_at(r, "incomplete_details.reason"), "max_output_tokens");
    assert_string_equal(str_at(r, "tool_choice"), "auto");
    assert_true(json_is_array(json_object_get(r, "tools")));
    json_decref(r);
    json_decref(chat);
    json_decref(echo);
}

/* parses "event: X\ndata: {...}\n\n" blocks; returns the array of data objects and checks event == data.type */
static json_t *events_of(const lg_buf_t *b)
{
    json_t *arr = json_array();
    char *copy = strndup(b->data != NULL ? b->data : "", b->len);
    char *save = NULL;
    for (char *blk = strtok_r(copy, "\n", &save); blk != NULL; blk = strtok_r(NULL, "\n", &save)) {
        if (strncmp(blk, "event: ", 7) == 0) {
            char *data = strtok_r(NULL, "\n", &save);
            assert_non_null(data);
            assert_true(strncmp(data, "data: ", 6) == 0);
            json_t *ev = parse(data + 6);
            assert_string_equal(json_string_value(json_object_get(ev, "type")), blk + 7);
            json_array_append_new(arr, ev);
        }
    }
    free(copy);
    return arr;
}

static void feed(lg_responses_stream_t *s, lg_buf_t *out, const char *chunk)
{
    json_t *c = parse(chunk);
    assert_int_equal(lg_responses_stream_chunk(s, c, out), 0);
    json_decref(c);
}

static void test_stream_text_then_tool_call(void **state)
{
    (void)state;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    lg_responses_stream_t *s = lg_responses_stream_create("resp_s1", "m", 1700000000, NULL);
    feed(s, &out, "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\"\"}}]}}]}");
    feed(s, &out,
         "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"function\":{\"name\":\"f\",\"arguments\":"
         "\":1}\"}}]}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}");
    json_t *usage = parse("{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":0.001}");
    assert_int_equal(lg_responses_stream_finish(s, usage, &out), 0);
    json_decref(usage);
    json_t *evs = events_of(&out);
    static const char *const want[] = {"response.created",
                                       "response.in_progress",
                                       "response.output_item.added",
                                       "response.content_part.added",
                                       "response.output_text.delta",
                                       "response.output_text.delta",
                                       "response.output_text.done",
                                       "response.content_part.done",
                                       "response.output_item.done",
                                       "response.output_item.added",
                                       "response.function_call_arguments.delta",
                                       "response.function_call_arguments.done",
                                       "response.output_item.done",
                                       "response.completed"};
    assert_int_equal(json_array_size(evs), sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < json_array_size(evs); ++i) {
        json_t *ev = json_array_get(evs, i);
        assert_string_equal(json_string_value(json_object_get(ev, "type")), want[i]);
        assert_int_equal(json_integer_value(json_object_get(ev, "sequence_number")), (json_int_t)i);
    }
    assert_string_equal(str_at(evs, "6.text"), "Hello");
    assert_string_equal(str_at(evs, "9.item.type"), "function_call");
    assert_string_equal(str_at(evs, "9.item.call_id"), "call_9");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, 9), "output_index")), 1);
    assert_string_equal(str_at(evs, "10.delta"), "{\"a\":1}");
    assert_string_equal(str_at(evs, "11.arguments"), "{\"a\":1}");
    json_t *final = json_object_get(json_array_get(evs, 13), "response");
    assert_string_equal(str_at(final, "status"), "completed");
    assert_string_equal(str_at(final, "output.0.content.0.text"), "Hello");
    assert_string_equal(str_at(final, "output.1.arguments"), "{\"a\":1}");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(final, "usage"), "output_tokens")), 4);
    json_decref(evs);
    lg_responses_stream_destroy(s);
    lg_buf_dispose(&out);
}

static void test_stream_reasoning_incomplete_and_failure(void **state)
{
    (void)state;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    lg_responses_stream_t *s = lg_responses_stream_create("resp_s2", "m", 1, NULL);
    feed(s, &out, "{\"choices\":[{\"delta\":{\"reasoning\":\"deep\"}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{\"content\":\"answer\"},\"finish_reason\":\"length\"}]}");
    assert_int_equal(lg_responses_stream_finish(s, NULL, &out), 0);
    json_t *evs = events_of(&out);
    assert_string_equal(str_at(evs, "2.item.type"), "reasoning");
    assert_string_equal(str_at(evs, "4.type"), "response.reasoning_summary_text.delta");
    json_t *last = json_array_get(evs, json_array_size(evs) - 1);
    assert_string_equal(str_at(last, "type"), "response.incomplete");
    assert_string_equal(str_at(last, "response.incomplete_details.reason"), "max_output_tokens");
    assert_string_equal(str_at(last, "response.output.0.summary.0.text"), "deep");
    json_decref(evs);
    lg_responses_stream_destroy(s);

    lg_buf_reset(&out);
    s = lg_responses_stream_create("resp_s3", "m", 1, NULL);
    feed(s, &out, "{\"choices\":[{\"delta\":{\"content\":\"par\"}}]}");
    assert_int_equal(lg_responses_stream_error(s, LG_EUPSTREAM, "upstream reset", &out), 0);
    assert_int_equal(lg_responses_stream_finish(s, NULL, &out), 0); /* no-op after the error */
    evs = events_of(&out);
    last = json_array_get(evs, json_array_size(evs) - 1);
    assert_string_equal(str_at(last, "type"), "response.failed");
    assert_string_equal(str_at(last, "response.status"), "failed");
    assert_string_equal(str_at(last, "response.error.code"), "server_error");
    assert_string_equal(str_at(last, "response.error.message"), "upstream reset");
    json_decref(evs);
    lg_responses_stream_destroy(s);
    lg_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_string_input_and_instructions),
        cmocka_unit_test(test_request_items_function_call_round_trip),
        cmocka_unit_test(test_request_text_format_and_reasoning),
        cmocka_unit_test(test_request_bad_input_names_the_field),
        cmocka_unit_test(test_response_text_tools_reasoning),
        cmocka_unit_test(test_stream_text_then_tool_call),
        cmocka_unit_test(test_stream_reasoning_incomplete_and_failure),
    };
    return cmocka_run_group_tests_name("responses_ingress", tests, NULL, NULL);
}
