/* SPDX-License-Identifier: MIT */
/*
 * Anthropic Messages skin: request translation (Anthropic → OpenAI), response
 * translation and the streaming event sequence (OpenAI chunks → Anthropic SSE),
 * including the multi-tool traps (parallel tool calls interleaved by index,
 * arguments split across chunks, text and tool blocks in one message).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http/anthropic_ingress.h"
#include "llmgate/error.h"

/* ---- helpers ---- */

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON (%s): %s", e.text, text);
    return v;
}

static void assert_json(json_t *got, const char *expected)
{
    json_t *exp = J(expected);
    if (!json_equal(got, exp)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *x = json_dumps(exp, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got:      %s\nexpected: %s\n", g, x);
        free(g);
        free(x);
        json_decref(exp);
        fail();
    }
    json_decref(exp);
}

static json_t *req_ok(const char *in)
{
    json_t *j = J(in), *out = NULL;
    char err[256] = "";
    int rc = lg_anthropic_request_to_openai(j, &out, err, sizeof(err));
    if (rc != 0)
        fail_msg("unexpected error: %s", err);
    assert_non_null(out);
    json_decref(j);
    return out;
}

static void req_check(const char *in, const char *expected)
{
    json_t *out = req_ok(in);
    assert_json(out, expected);
    json_decref(out);
}

static void req_err(const char *in, const char *msg)
{
    json_t *j = J(in), *out = (json_t *)1;
    char err[256] = "";
    assert_int_equal(lg_anthropic_request_to_openai(j, &out, err, sizeof(err)), LG_EINVAL);
    assert_null(out);
    assert_string_equal(err, msg);
    json_decref(j);
}

#define BASE "\"model\":\"m\",\"max_tokens\":100"

/* ---- request ---- */

static void test_anthropic_request_minimal(void **state)
{
    (void)state;
    req_check("{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
}

static void test_anthropic_request_system_string(void **state)
{
    (void)state;
    req_check("{" BASE ",\"system\":\"be brief\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
              "{\"role\":\"user\",\"content\":\"hi\"}]}");
}

static void test_anthropic_request_system_blocks(void **state)
{
    (void)state;
    /* without cache_control: one string joined by blank lines */
    req_check("{" BASE ",\"system\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}],"
              "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"system\",\"content\":\"a\\n\\nb\"},"
              "{\"role\":\"user\",\"content\":\"hi\"}]}");
    /* with cache_control: parts keep it */
    req_check("{" BASE ",\"system\":[{\"type\":\"text\",\"text\":\"a\"},"
              "{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
              "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"system\",\"content\":["
              "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
              "{\"role\":\"user\",\"content\":\"hi\"}]}");
}

static void test_anthropic_request_text_blocks(void **state)
{
    (void)state;
    req_check("{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
              "{\"type\":\"text\",\"text\":\"b\"}]},"
              "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"x\"},"
              "{\"type\":\"text\",\"text\":\"c\"}]},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"d\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":["
              "{\"role\":\"user\",\"content\":\"a\\n\\nb\"},"
              "{\"role\":\"assistant\",\"content\":\"c\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"d\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}");
}

static void test_anthropic_request_tool_round_trip(void **state)
{
    (void)state;
    /* assistant text + 2 tool_use; the user turn answers both (in order) and adds text: tool messages come first */
    json_t *out =
        req_ok("{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
               "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"checking\"},"
               "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get\",\"input\":{\"city\":\"Paris\",\"n\":[1,2]}},"
               "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"get\",\"input\":{}}]},"
               "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"sunny\"},"
               "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},"
               "{\"type\":\"text\",\"text\":\"y\"}],\"is_error\":true},"
               "{\"type\":\"text\",\"text\":\"thanks\"}]}]}");
    assert_json(out, "{\"model\":\"m\",\"max_tokens\":100,\"messages\":["
                     "{\"role\":\"user\",\"content\":\"weather?\"},"
                     "{\"role\":\"assistant\",\"content\":\"checking\",\"tool_calls\":["
                     "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
                     "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"n\\\":[1,2]}\"}},"
                     "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{}\"}}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"sunny\"},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":\"Error: x\\n\\ny\"},"
                     "{\"role\":\"user\",\"content\":\"thanks\"}]}");
    /* arguments parse back to the input object */
    json_t *args = json_object_get(
        json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(out, "messages"), 1), "tool_calls"), 0),
                        "function"),
        "arguments");
    json_t *input = J(json_string_value(args));
    assert_json(input, "{\"city\":\"Paris\",\"n\":[1,2]}");
    json_decref(input);
    json_decref(out);

    /* assistant with only tool_use: content null; tool_result without content and with cache_control */
    req_check("{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
              "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}]},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\","
              "\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
              "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\","
              "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
              "{\"role\":\"tool\",\"tool_call_id\":\"t\",\"content\":[{\"type\":\"text\",\"text\":\"\","
              "\"cache_control\":{\"type\":\"ephemeral\"}}]}]}");
}

static void test_anthropic_request_images(void **state)
{
    (void)state;
    req_check("{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBOR\"}},"
              "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x/y.jpg\"}},"
              "{\"type\":\"text\",\"text\":\"what?\"}]}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":["
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBOR\"}},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.jpg\"}},"
              "{\"type\":\"text\",\"text\":\"what?\"}]}]}");
    /* an image inside a tool_result moves to the user message after the tool message */
    req_check("{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\","
              "\"content\":[{\"type\":\"text\",\"text\":\"shot\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
              "\"media_type\":\"image/jpeg\",\"data\":\"AA\"}}]}]}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"t\",\"content\":\"shot\"},"
              "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,AA\"}}]}]}");
}

static void test_anthropic_request_documents(void **state)
{
    (void)state;
    req_check(
        "{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\",\"data\":\"JVBE\"}},"
        "{\"type\":\"document\",\"title\":\"T\",\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"body\"}},"
        "{\"type\":\"text\",\"text\":\"sum\"}]}]}",
        "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"file\",\"file\":{\"filename\":\"document.pdf\",\"file_data\":\"data:application/pdf;base64,JVBE\"}},"
        "{\"type\":\"text\",\"text\":\"T\\n\\nbody\"},{\"type\":\"text\",\"text\":\"sum\"}]}]}");
}

static void test_anthropic_request_tools_and_choice(void **state)
{
    (void)state;
    const char *tools = "\"tools\":[{\"name\":\"get\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\"},"
                        "\"cache_control\":{\"type\":\"ephemeral\"}},"
                        "{\"type\":\"web_search_20250305\",\"name\":\"web_search\",\"max_uses\":5},"
                        "{\"type\":\"custom\",\"name\":\"put\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]";
    const char *otools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"description\":\"d\","
                         "\"parameters\":{\"type\":\"object\"}}},{\"type\":\"function\",\"function\":{\"name\":\"put\","
                         "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]";
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"type\":\"auto\"}", "\"tool_choice\":\"auto\""},
        {"{\"type\":\"any\"}", "\"tool_choice\":\"required\""},
        {"{\"type\":\"none\"}", "\"tool_choice\":\"none\""},
        {"{\"type\":\"tool\",\"name\":\"get\"}", "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get\"}}"},
        {"{\"type\":\"auto\",\"disable_parallel_tool_use\":true}", "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false"},
        {"{\"type\":\"any\",\"disable_parallel_tool_use\":false}", "\"tool_choice\":\"required\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        char in[1024], exp[1024];
        snprintf(in, sizeof(in), "{" BASE ",%s,\"tool_choice\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", tools,
                 cases[i].in);
        snprintf(exp, sizeof(exp),
                 "{\"model\":\"m\",\"max_tokens\":100,%s,%s,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", otools,
                 cases[i].out);
        req_check(in, exp);
    }
    /* only server tools: tools and tool_choice both disappear */
    req_check("{" BASE ",\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],\"tool_choice\":{\"type\":\"any\"},"
              "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
}

static void test_anthropic_request_params(void **state)
{
    (void)state;
    req_check("{" BASE ",\"stop_sequences\":[\"END\"],\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"stream\":true,"
              "\"metadata\":{\"user_id\":\"u1\"},\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},"
              "\"service_tier\":\"auto\",\"container\":\"c\",\"provider\":{\"order\":[\"a\"]},\"session_id\":\"s\","
              "\"usage\":{\"include\":true},\"transforms\":[],\"route\":\"fallback\","
              "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":[\"END\"],"
              "\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"stream\":true,\"user\":\"u1\","
              "\"reasoning\":{\"max_tokens\":2048},\"provider\":{\"order\":[\"a\"]},\"session_id\":\"s\","
              "\"usage\":{\"include\":true},\"transforms\":[],\"route\":\"fallback\"}");
    req_check("{" BASE ",\"thinking\":{\"type\":\"disabled\"},\"output_format\":{\"type\":\"json_schema\",\"schema\":{\"type\":"
              "\"object\"}},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
              "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"output\",\"schema\":{\"type\":\"object\"},"
              "\"strict\":true}}}");
}

static void test_anthropic_request_fallbacks(void **state)
{
    (void)state;
    req_check("{" BASE
              ",\"fallbacks\":[{\"model\":\"b\"},{\"model\":\"c\"}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
              "{\"model\":\"m\",\"max_tokens\":100,\"models\":[\"m\",\"b\",\"c\"],"
              "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    req_check(
        "{" BASE ",\"models\":[\"m\",\"x\"],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"m\",\"max_tokens\":100,\"models\":[\"m\",\"x\"],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    req_err("{" BASE ",\"models\":[\"x\"],\"fallbacks\":[{\"model\":\"b\"}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            "fallbacks: cannot be combined with models");
    req_err("{" BASE ",\"fallbacks\":[{\"model\":\"b\"},{\"model\":\"c\"},{\"model\":\"d\"},{\"model\":\"e\"}],"
            "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            "fallbacks: at most 3 entries");
    req_err("{" BASE ",\"fallbacks\":[{\"model\":\"b\"},{\"name\":\"c\"}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            "fallbacks[1].model: expected non-empty string");
    req_err("{" BASE ",\"fallbacks\":{\"model\":\"b\"},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            "fallbacks: expected array");
}

static void test_anthropic_request_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"[]", "body: expected JSON object"},
        {"{\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model: required"},
        {"{\"model\":3,\"max_tokens\":1,\"messages\":[]}", "model: expected non-empty string"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "max_tokens: required"},
        {"{\"model\":\"m\",\"max_tokens\":\"5\",\"messages\":[]}", "max_tokens: expected integer"},
        {"{\"model\":\"m\",\"max_tokens\":0,\"messages\":[]}", "max_tokens: must be greater than or equal to 1"},
        {"{" BASE "}", "messages: required"},
        {"{" BASE ",\"messages\":{}}", "messages: expected array"},
        {"{" BASE ",\"messages\":[]}", "messages: must not be empty"},
        {"{" BASE ",\"messages\":[1]}", "messages[0]: expected object"},
        {"{" BASE ",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role: expected string"},
        {"{" BASE ",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
         "messages[0].role: must be \"user\", \"assistant\" or \"system\", got \"robot\""},
        {"{" BASE ",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image\"}]}]}",
         "messages[0].content[0].type: expected \"text\""},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content: expected string or array"},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[]}]}", "messages[0].content: must not be empty"},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":[{\"type\":\"foo\"}]}]}",
         "messages[1].content[0].type: unknown block type \"foo\""},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"}]}]}",
         "messages[0].content[0].type: expected string"},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[\"a\"]}]}", "messages[0].content[0]: expected object"},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}",
         "messages[0].content[0].text: expected string"},
        {"{" BASE ",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
         "\"input\":\"{}\"}]}]}",
         "messages[0].content[0].input: expected object"},
        {"{" BASE ",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"input\":{}}]}]}",
         "messages[0].content[0].name: expected non-empty string"},
        {"{" BASE
         ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}]}]}",
         "messages[0].content[0].type: tool_use blocks are only allowed in assistant messages"},
        {"{" BASE ",\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\"}]}]}",
         "messages[0].content[0].type: tool_result blocks are only allowed in user messages"},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\"}]}]}",
         "messages[0].content[0].tool_use_id: expected non-empty string"},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\","
         "\"content\":[{\"type\":\"bar\"}]}]}]}",
         "messages[0].content[0].content[0].type: unknown block type \"bar\""},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"file\","
         "\"file_id\":\"f\"}}]}]}",
         "messages[0].content[0].source.type: unsupported image source \"file\""},
        {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
         "\"data\":\"AA\"}}]}]}",
         "messages[0].content[0].source.media_type: expected non-empty string"},
        {"{" BASE ",\"system\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "system: expected string or array of text blocks"},
        {"{" BASE ",\"system\":[{\"type\":\"image\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "system[0].type: expected \"text\""},
        {"{" BASE ",\"tools\":[{\"name\":\"f\"}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "tools[0].input_schema: expected object"},
        {"{" BASE ",\"tools\":{},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools: expected array"},
        {"{" BASE ",\"tool_choice\":{\"type\":\"maybe\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "tool_choice.type: unknown type \"maybe\""},
        {"{" BASE ",\"tool_choice\":{\"type\":\"tool\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "tool_choice.name: expected non-empty string"},
        {"{" BASE ",\"tool_choice\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "tool_choice: expected object"},
        {"{" BASE ",\"stop_sequences\":[\"a\",1],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "stop_sequences[1]: expected string"},
        {"{" BASE ",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "temperature: expected number"},
        {"{" BASE ",\"top_k\":1.5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "top_k: expected integer"},
        {"{" BASE ",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "stream: expected boolean"},
        {"{" BASE ",\"metadata\":{\"user_id\":1},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "metadata.user_id: expected string"},
        {"{" BASE ",\"thinking\":{\"type\":\"enabled\"},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "thinking.budget_tokens: expected positive integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
        req_err(cases[i].in, cases[i].msg);
}

/* ---- response ---- */

static json_t *resp(const char *openai)
{
    json_t *o = J(openai);
    json_t *r = lg_anthropic_response_from_openai(o, "msg_1");
    json_decref(o);
    assert_non_null(r);
    return r;
}

static void test_anthropic_response_text_and_tools(void **state)
{
    (void)state;
    json_t *r = resp("{\"id\":\"gen-1\",\"model\":\"openai/gpt-4o\",\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\","
                     "\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\",\"tool_calls\":["
                     "{\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"c\\\":1}\"}},"
                     "{\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"\"}},"
                     "{\"id\":\"call_c\",\"type\":\"function\",\"function\":{\"name\":\"bad\",\"arguments\":\"{oops\"}},"
                     "{\"id\":\"call_d\",\"type\":\"function\",\"function\":{\"arguments\":\"{}\"}}]}}],"
                     "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,\"total_tokens\":120,\"cost\":0.01}}");
    assert_json(r, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"openai/gpt-4o\",\"content\":["
                   "{\"type\":\"text\",\"text\":\"Let me check.\"},"
                   "{\"type\":\"tool_use\",\"id\":\"call_a\",\"name\":\"get\",\"input\":{\"c\":1}},"
                   "{\"type\":\"tool_use\",\"id\":\"call_b\",\"name\":\"now\",\"input\":{}},"
                   "{\"type\":\"tool_use\",\"id\":\"call_c\",\"name\":\"bad\",\"input\":{}}],"
                   "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,"
                   "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":20}}");
    /* key order as Anthropic sends it */
    char *s = json_dumps(r, JSON_COMPACT);
    assert_true(strncmp(s, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\"", 56) == 0);
    free(s);
    json_decref(r);
}

static void test_anthropic_response_stop_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *fr, *stop;
    } cases[] = {{"stop", "end_turn"},          {"length", "max_tokens"}, {"tool_calls", "tool_use"},
                 {"content_filter", "refusal"}, {"error", "end_turn"},    {NULL, "end_turn"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        char in[256];
        if (cases[i].fr != NULL)
            snprintf(in, sizeof(in), "{\"model\":\"x\",\"choices\":[{\"finish_reason\":\"%s\",\"message\":{\"content\":\"hi\"}}]}",
                     cases[i].fr);
        else
            snprintf(in, sizeof(in), "{\"model\":\"x\",\"choices\":[{\"finish_reason\":null,\"message\":{\"content\":\"hi\"}}]}");
        json_t *r = resp(in);
        assert_string_equal(json_string_value(json_object_get(r, "stop_reason")), cases[i].stop);
        assert_true(json_is_null(json_object_get(r, "stop_sequence")));
        json_decref(r);
    }
    /* "stop" with tool calls (some providers) still means tool_use */
    json_t *r = resp("{\"model\":\"x\",\"choices\":[{\"finish_reason\":\"stop\",\"message\":{\"content\":null,\"tool_calls\":["
                     "{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}");
    assert_string_equal(json_string_value(json_object_get(r, "stop_reason")), "tool_use");
    assert_int_equal(json_array_size(json_object_get(r, "content")), 1);
    json_decref(r);
}

static void test_anthropic_response_usage_and_reasoning(void **state)
{
    (void)state;
    json_t *r = resp("{\"model\":\"a/b\",\"choices\":[{\"finish_reason\":\"length\",\"message\":{\"role\":\"assistant\","
                     "\"content\":\"\",\"reasoning\":\"think\"}}],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":50,"
                     "\"prompt_tokens_details\":{\"cached_tokens\":600,\"cache_write_tokens\":300}}}");
    assert_json(r, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"a/b\",\"content\":["
                   "{\"type\":\"thinking\",\"thinking\":\"think\",\"signature\":\"\"}],"
                   "\"stop_reason\":\"max_tokens\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,"
                   "\"cache_creation_input_tokens\":300,\"cache_read_input_tokens\":600,\"output_tokens\":50}}");
    json_decref(r);
    /* garbage in: still a well-formed message */
    r = resp("{\"choices\":5}");
    assert_json(r, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"\",\"content\":[],"
                   "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,"
                   "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}}");
    json_decref(r);
}

/* ---- errors ---- */

static void test_anthropic_error_json(void **state)
{
    (void)state;
    json_t *e = lg_anthropic_error_json(LG_EINVAL, 0, "max_tokens: required");
    assert_json(e, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"max_tokens: required\","
                   "\"error_type\":\"invalid_request\"}}");
    json_decref(e);
    static const struct {
        int err, status;
        const char *type, *et;
    } cases[] = {
        {LG_EAUTH, 0, "authentication_error", "authentication"},
        {LG_ECREDIT, 0, "billing_error", "payment_required"},
        {LG_EFORBIDDEN, 0, "permission_error", "permission_denied"},
        {LG_ENOENDPOINT, 0, "not_found_error", "no_endpoints"},
        {LG_ETOOLARGE, 0, "request_too_large", "payload_too_large"},
        {LG_ERATELIMIT, 0, "rate_limit_error", "rate_limit_exceeded"},
        {LG_EINTERNAL, 0, "api_error", "server"},
        {LG_EUPSTREAM, 0, "api_error", "provider_unavailable"},
        {LG_EOVERLOADED, 0, "overloaded_error", "provider_overloaded"},
        {LG_ETIMEOUT, 0, "timeout_error", "timeout"},
        {0, 529, "overloaded_error", "provider_overloaded"},
        {0, 418, "invalid_request_error", "invalid_request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        e = lg_anthropic_error_json(cases[i].err, cases[i].status, NULL);
        json_t *inner = json_object_get(e, "error");
        assert_string_equal(json_string_value(json_object_get(e, "type")), "error");
        assert_string_equal(json_string_value(json_object_get(inner, "type")), cases[i].type);
        assert_string_equal(json_string_value(json_object_get(inner, "error_type")), cases[i].et);
        assert_true(json_string_length(json_object_get(inner, "message")) > 0);
        json_decref(e);
    }
}

/* ---- streaming ---- */

struct sse_ev {
    char name[32];
    json_t *data;
};

/* Parse out into (event, data) pairs; asserts the framing: "event: X\ndata: {"type":"X",...}\n\n". */
static size_t parse_sse(const lg_buf_t *out, struct sse_ev *evs, size_t max)
{
    size_t n = 0, pos = 0;
    while (pos < out->len) {
        const char *ev = out->data + pos;
        const char *end = strstr(ev, "\n\n");
        assert_non_null(end);
        assert_true(strncmp(ev, "event: ", 7) == 0);
        const char *nl = strchr(ev, '\n');
        assert_true(nl < end);
        size_t nlen = (size_t)(nl - ev - 7);
        assert_true(nlen < sizeof(evs[0].name));
        assert_true(n < max);
        memcpy(evs[n].name, ev + 7, nlen);
        evs[n].name[nlen] = '\0';
        assert_true(strncmp(nl + 1, "data: ", 6) == 0);
        const char *data = nl + 7;
        assert_null(memchr(data, '\n', (size_t)(end - data))); /* one data line */
        json_error_t je;
        evs[n].data = json_loadb(data, (size_t)(end - data), 0, &je);
        if (evs[n].data == NULL)
            fail_msg("bad event JSON: %.*s", (int)(end - data), data);
        /* "type" first and equal to the event name */
        char prefix[64];
        if (strcmp(evs[n].name, "ping") == 0)
            snprintf(prefix, sizeof(prefix), "{\"type\": \"ping\"}");
        else
            snprintf(prefix, sizeof(prefix), "{\"type\":\"%s\"", evs[n].name);
        assert_true(strncmp(data, prefix, strlen(prefix)) == 0);
        ++n;
        pos = (size_t)(end + 2 - out->data);
    }
    return n;
}

static void free_evs(struct sse_ev *evs, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        json_decref(evs[i].data);
}

static void feed(lg_anthropic_stream_t *s, lg_buf_t *out, const char *chunk)
{
    json_t *c = J(chunk);
    assert_int_equal(lg_anthropic_stream_chunk(s, c, out), 0);
    json_decref(c);
}

static json_int_t ev_index(const struct sse_ev *e)
{
    return json_integer_value(json_object_get(e->data, "index"));
}

/* Check the block structure (start/deltas/stop nesting, increasing indices) and collect per-block text. */
static void check_blocks(struct sse_ev *evs, size_t n, char texts[][256], const char **kinds, size_t *nblocks)
{
    assert_true(n >= 2);
    assert_string_equal(evs[0].name, "message_start");
    int open = -1;
    size_t nb = 0;
    for (size_t i = 1; i < n; ++i) {
        const char *name = evs[i].name;
        if (strcmp(name, "content_block_start") == 0) {
            assert_int_equal(open, -1);
            assert_int_equal(ev_index(&evs[i]), (json_int_t)nb);
            open = (int)nb;
            json_t *cb = json_object_get(evs[i].data, "content_block");
            kinds[nb] = json_string_value(json_object_get(cb, "type"));
            texts[nb][0] = '\0';
            if (strcmp(kinds[nb], "tool_use") == 0) {
                /* never an empty tool_use block */
                assert_true(json_string_length(json_object_get(cb, "name")) > 0);
                assert_true(json_string_length(json_object_get(cb, "id")) > 0);
                assert_true(json_is_object(json_object_get(cb, "input")));
                snprintf(texts[nb], 256, "%s|%s|", json_string_value(json_object_get(cb, "id")),
                         json_string_value(json_object_get(cb, "name")));
            }
            ++nb;
        } else if (strcmp(name, "content_block_delta") == 0) {
            assert_int_equal(ev_index(&evs[i]), open);
            json_t *d = json_object_get(evs[i].data, "delta");
            const char *dt = json_string_value(json_object_get(d, "type"));
            const char *k = kinds[open];
            const char *piece = NULL;
            if (strcmp(k, "text") == 0) {
                assert_string_equal(dt, "text_delta");
                piece = json_string_value(json_object_get(d, "text"));
            } else if (strcmp(k, "thinking") == 0) {
                assert_string_equal(dt, "thinking_delta");
                piece = json_string_value(json_object_get(d, "thinking"));
            } else {
                assert_string_equal(dt, "input_json_delta");
                piece = json_string_value(json_object_get(d, "partial_json"));
            }
            assert_non_null(piece);
            strncat(texts[open], piece, 255 - strlen(texts[open]));
        } else if (strcmp(name, "content_block_stop") == 0) {
            assert_int_equal(ev_index(&evs[i]), open);
            open = -1;
        } else if (strcmp(name, "message_delta") == 0 || strcmp(name, "message_stop") == 0 || strcmp(name, "error") == 0) {
            assert_int_equal(open, -1); /* every block closed before */
        } else if (strcmp(name, "ping") != 0) {
            fail_msg("unexpected event %s", name);
        }
    }
    *nblocks = nb;
}

static void test_anthropic_stream_text_and_two_tools(void **state)
{
    (void)state;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    lg_anthropic_stream_t *s = lg_anthropic_stream_create("msg_9", "openai/gpt-4o", 42);
    const char *chunks[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}",
        /* tool 0: id+name first, then fragments */
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\","
        "\"function\":{\"name\":\"get\",\"arguments\":\"\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\":\\\"Paris\\\"}\"}}"
        "]}}]}",
        /* tool 1: a fragment before its id and name */
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{\\\"tz\\\"\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"function\":{\"name\":\"now\"}}]}}]"
        "}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\":\\\"UTC\\\"}\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        /* usage chunk: no event */
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":7}}",
    };
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); ++i) {
        size_t before = out.len;
        feed(s, &out, chunks[i]);
        if (i == sizeof(chunks) / sizeof(chunks[0]) - 1 || i == sizeof(chunks) / sizeof(chunks[0]) - 2)
            assert_int_equal(out.len, before); /* finish_reason / usage chunks emit nothing */
    }
    json_t *usage = J("{\"prompt_tokens\":50,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":10}}");
    assert_int_equal(lg_anthropic_stream_finish(s, usage, &out), 0);
    json_decref(usage);
    /* after finish: nothing more */
    size_t len = out.len;
    feed(s, &out, "{\"choices\":[{\"delta\":{\"content\":\"late\"}}]}");
    assert_int_equal(lg_anthropic_stream_finish(s, NULL, &out), 0);
    assert_int_equal(out.len, len);

    struct sse_ev evs[64];
    size_t n = parse_sse(&out, evs, 64);
    static const char *const expected[] = {
        "message_start",       "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",  "content_block_start",
        "content_block_delta", "content_block_delta", "content_block_stop",  "message_delta",       "message_stop",
    };
    for (size_t i = 0; i < n && i < sizeof(expected) / sizeof(expected[0]); ++i)
        assert_string_equal(evs[i].name, expected[i]);
    assert_int_equal(n, sizeof(expected) / sizeof(expected[0]));

    assert_json(evs[0].data,
                "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_9\",\"type\":\"message\",\"role\":\"assistant\","
                "\"model\":\"openai/gpt-4o\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                "\"usage\":{\"input_tokens\":42,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
                "\"output_tokens\":0}}}");
    assert_json(evs[1].data, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
    assert_json(evs[5].data, "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
                             "\"id\":\"call_a\",\"name\":\"get\",\"input\":{}}}");
    assert_json(evs[9].data, "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
                             "\"id\":\"call_b\",\"name\":\"now\",\"input\":{}}}");
    assert_json(evs[13].data, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
                              "\"usage\":{\"output_tokens\":7,\"input_tokens\":40,\"cache_creation_input_tokens\":0,"
                              "\"cache_read_input_tokens\":10}}");
    assert_json(evs[14].data, "{\"type\":\"message_stop\"}");

    char texts[8][256];
    const char *kinds[8];
    size_t nb;
    check_blocks(evs, n, texts, kinds, &nb);
    assert_int_equal(nb, 3);
    assert_string_equal(kinds[0], "text");
    assert_string_equal(texts[0], "Hello");
    assert_string_equal(texts[1], "call_a|get|{\"city\":\"Paris\"}");
    assert_string_equal(texts[2], "call_b|now|{\"tz\":\"UTC\"}");
    assert_int_equal(lg_anthropic_stream_dropped_bytes(s), 0);
    free_evs(evs, n);
    lg_anthropic_stream_destroy(s);
    lg_buf_dispose(&out);
}

static void test_anthropic_stream_reasoning_and_usage_chunk(void **state)
{
    (void)state;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    lg_anthropic_stream_t *s = lg_anthropic_stream_create("m1", "x", 0);
    assert_int_equal(lg_anthropic_stream_begin(s, &out), 0);
    assert_int_equal(lg_anthropic_stream_begin(s, &out), 0); /* idempotent */
    assert_int_equal(lg_anthropic_stream_ping(&out), 0);
    feed(s, &out, "{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"reasoning\":\"hmm \"}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{\"reasoning\":\"ok\"}}]}");
    feed(s, &out,
         "{\"choices\":[{\"delta\":{\"content\":\"Answer\"},\"finish_reason\":\"length\"}],"
         "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}");
    assert_int_equal(lg_anthropic_stream_finish(s, NULL, &out), 0);
    struct sse_ev evs[32];
    size_t n = parse_sse(&out, evs, 32);
    static const char *const expected[] = {"message_start",       "ping",
                                           "content_block_start", "content_block_delta",
                                           "content_block_delta", "content_block_stop",
                                           "content_block_start", "content_block_delta",
                                           "content_block_stop",  "message_delta",
                                           "message_stop"};
    assert_int_equal(n, sizeof(expected) / sizeof(expected[0]));
    for (size_t i = 0; i < n; ++i)
        assert_string_equal(evs[i].name, expected[i]);
    char texts[8][256];
    const char *kinds[8];
    size_t nb;
    check_blocks(evs, n, texts, kinds, &nb);
    assert_int_equal(nb, 2);
    assert_string_equal(kinds[0], "thinking");
    assert_string_equal(texts[0], "hmm ok");
    assert_string_equal(kinds[1], "text");
    assert_string_equal(texts[1], "Answer");
    assert_json(evs[9].data, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},"
                             "\"usage\":{\"output_tokens\":3,\"input_tokens\":9,\"cache_creation_input_tokens\":0,"
                             "\"cache_read_input_tokens\":0}}");
    free_evs(evs, n);
    lg_anthropic_stream_destroy(s);
    lg_buf_dispose(&out);
}

/* Tool 1 interleaves with tool 0 whose JSON is still open: tool 1 is buffered, nothing is truncated; a nameless call is
 * dropped, a call without id gets one. */
static void test_anthropic_stream_interleaved_tools(void **state)
{
    (void)state;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    lg_anthropic_stream_t *s = lg_anthropic_stream_create("m", "x", 1);
    feed(s, &out,
         "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\","
         "\"arguments\":\"{\\\"x\\\":\"}},{\"index\":1,\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":\"{\"}}]}}]}");
    feed(s, &out,
         "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"}\"}},"
         "{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":2,\"function\":{\"arguments\":\"{}\"}}]}}]}");
    feed(s, &out,
         "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":3,\"function\":{\"name\":\"h\",\"arguments\":\"[]\"}}]}}]}");
    feed(s, &out, "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}");
    assert_int_equal(lg_anthropic_stream_finish(s, NULL, &out), 0);
    struct sse_ev evs[32];
    size_t n = parse_sse(&out, evs, 32);
    char texts[8][256];
    const char *kinds[8];
    size_t nb;
    check_blocks(evs, n, texts, kinds, &nb);
    assert_int_equal(nb, 3);
    assert_string_equal(texts[0], "a|f|{\"x\":1}");
    assert_string_equal(texts[1], "b|g|{}");
    assert_true(strncmp(texts[2], "toolu_", 6) == 0);
    assert_non_null(strstr(texts[2], "|h|[]"));
    assert_int_equal(lg_anthropic_stream_dropped_bytes(s), 2); /* the nameless call's "{}" */
    assert_string_equal(evs[n - 2].name, "message_delta");
    assert_string_equal(json_string_value(json_object_get(json_object_get(evs[n - 2].data, "delta"), "stop_reason")), "tool_use");
    free_evs(evs, n);
    lg_anthropic_stream_destroy(s);
    lg_buf_dispose(&out);
}

static void test_anthropic_stream_error_midstream(void **state)
{
    (void)state;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    lg_anthropic_stream_t *s = lg_anthropic_stream_create("m", "x", 5);
    feed(s, &out, "{\"choices\":[{\"delta\":{\"content\":\"partial\"}}]}");
    assert_int_equal(lg_anthropic_stream_error(s, LG_EOVERLOADED, "Overloaded", &out), 0);
    size_t len = out.len;
    assert_int_equal(lg_anthropic_stream_finish(s, NULL, &out), 0); /* no-op after error */
    assert_int_equal(out.len, len);
    struct sse_ev evs[16];
    size_t n = parse_sse(&out, evs, 16);
    static const char *const expected[] = {"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                                           "error"};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; ++i)
        assert_string_equal(evs[i].name, expected[i]);
    assert_json(evs[4].data, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\","
                             "\"error_type\":\"provider_overloaded\"}}");
    free_evs(evs, n);
    lg_anthropic_stream_destroy(s);
    lg_buf_dispose(&out);
}

static void test_anthropic_stream_ping_and_empty(void **state)
{
    (void)state;
    lg_buf_t out;
    lg_buf_init(&out, 1 << 20);
    assert_int_equal(lg_anthropic_stream_ping(&out), 0);
    assert_string_equal(out.data, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    lg_buf_reset(&out);
    /* no content at all: message_start, message_delta, message_stop */
    lg_anthropic_stream_t *s = lg_anthropic_stream_create("m", "x", 0);
    assert_int_equal(lg_anthropic_stream_finish(s, NULL, &out), 0);
    struct sse_ev evs[8];
    size_t n = parse_sse(&out, evs, 8);
    assert_int_equal(n, 3);
    assert_string_equal(evs[1].name, "message_delta");
    assert_string_equal(json_string_value(json_object_get(json_object_get(evs[1].data, "delta"), "stop_reason")), "end_turn");
    free_evs(evs, n);
    lg_anthropic_stream_destroy(s);
    /* a capped buffer reports overflow instead of emitting half an event */
    lg_buf_t small;
    lg_buf_init(&small, 16);
    s = lg_anthropic_stream_create("m", "x", 0);
    assert_int_equal(lg_anthropic_stream_begin(s, &small), LG_ETOOLARGE);
    json_t *c = J("{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}");
    assert_int_equal(lg_anthropic_stream_chunk(s, c, &small), LG_ETOOLARGE);
    json_decref(c);
    lg_anthropic_stream_destroy(s);
    lg_buf_dispose(&small);
    lg_buf_dispose(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anthropic_request_minimal),
        cmocka_unit_test(test_anthropic_request_system_string),
        cmocka_unit_test(test_anthropic_request_system_blocks),
        cmocka_unit_test(test_anthropic_request_text_blocks),
        cmocka_unit_test(test_anthropic_request_tool_round_trip),
        cmocka_unit_test(test_anthropic_request_images),
        cmocka_unit_test(test_anthropic_request_documents),
        cmocka_unit_test(test_anthropic_request_tools_and_choice),
        cmocka_unit_test(test_anthropic_request_params),
        cmocka_unit_test(test_anthropic_request_fallbacks),
        cmocka_unit_test(test_anthropic_request_invalid),
        cmocka_unit_test(test_anthropic_response_text_and_tools),
        cmocka_unit_test(test_anthropic_response_stop_reasons),
        cmocka_unit_test(test_anthropic_response_usage_and_reasoning),
        cmocka_unit_test(test_anthropic_error_json),
        cmocka_unit_test(test_anthropic_stream_text_and_two_tools),
        cmocka_unit_test(test_anthropic_stream_reasoning_and_usage_chunk),
        cmocka_unit_test(test_anthropic_stream_interleaved_tools),
        cmocka_unit_test(test_anthropic_stream_error_midstream),
        cmocka_unit_test(test_anthropic_stream_ping_and_empty),
    };
    return cmocka_run_group_tests_name("anthropic_ingress", tests, NULL, NULL);
}
