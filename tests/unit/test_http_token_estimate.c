/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/http/token_estimate.c: the count_tokens estimate is never 0, counts every kind of block (system,
 * text, images, tool_use inputs, tool_result contents, thinking, tool schemas), grows with the input, and errs high
 * against a known tokenizer figure (prose of 1,000 words is ~1,300 cl100k tokens).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "http/token_estimate.h"

static int64_t est(const char *json)
{
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    if (j == NULL)
        fail_msg("bad fixture: %s", e.text);
    int64_t n = lg_estimate_anthropic_input_tokens(j);
    json_decref(j);
    return n;
}

static void test_estimate_never_zero(void **state)
{
    (void)state;
    assert_true(est("{}") >= 1);
    assert_true(est("{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}") >= 1);
}

static void test_estimate_prose_errs_high(void **state)
{
    (void)state;
    /* 1,000 ordinary words (5–6 bytes with the space): a BPE tokenizer gives ~1,300 tokens */
    static char text[8192];
    size_t n = 0;
    static const char *const words[] = {"the", "gateway", "routes", "each", "request", "to", "a", "provider", "and", "falls"};
    for (int i = 0; i < 1000; ++i)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s ", words[i % 10]);
    char body[9000];
    snprintf(body, sizeof(body), "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    int64_t t = est(body);
    assert_true(t >= 1300);
    assert_true(t <= 2600); /* conservative, not absurd */
}

static void test_estimate_counts_every_block(void **state)
{
    (void)state;
    int64_t base = est("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    int64_t with_system = est("{\"system\":[{\"type\":\"text\",\"text\":\"You are a careful assistant who explains.\"}],"
                              "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    int64_t with_image = est("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":"
                             "\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]}]}");
    int64_t with_tool_use =
        est("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
            "\"id\":\"t1\",\"name\":\"Bash\",\"input\":{\"command\":\"ls -la /usr/share/doc | head -n 40\"}}]},{\"role\":"
            "\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"total 40 drwxr-xr-x\"}]}]}");
    int64_t with_tools = est("{\"tools\":[{\"name\":\"Bash\",\"description\":\"Run a shell command\",\"input_schema\":{\"type\":"
                             "\"object\",\"properties\":{\"command\":{\"type\":\"string\"}}}}],"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    int64_t with_thinking = est("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":[{"
                                "\"type\":\"thinking\",\"thinking\":\"Let me consider the options carefully first.\","
                                "\"signature\":\"x\"}]}]}");
    assert_true(with_system > base);
    assert_true(with_image >= base + 1600);
    assert_true(with_tool_use > base + 20);
    assert_true(with_tools > base + 12);
    assert_true(with_thinking > base + 10);
}

static void test_estimate_grows_with_input(void **state)
{
    (void)state;
    int64_t a = est("{\"messages\":[{\"role\":\"user\",\"content\":\"one two three\"}]}");
    int64_t b = est("{\"messages\":[{\"role\":\"user\",\"content\":\"one two three four five six seven eight nine ten\"}]}");
    int64_t c = est("{\"messages\":[{\"role\":\"user\",\"content\":\"one two three\"},{\"role\":\"assistant\",\"content\":"
                    "\"four\"},{\"role\":\"user\",\"content\":\"five\"}]}");
    assert_true(b > a);
    assert_true(c > a);
}

static void test_estimate_odd_shapes_do_not_crash(void **state)
{
    (void)state;
    assert_true(est("{\"messages\":\"nope\",\"system\":42,\"tools\":{}}") >= 1);
    assert_true(est("{\"messages\":[null,1,{\"content\":[null,{\"type\":7},{\"type\":\"document\"}]}]}") >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate_never_zero),
        cmocka_unit_test(test_estimate_prose_errs_high),
        cmocka_unit_test(test_estimate_counts_every_block),
        cmocka_unit_test(test_estimate_grows_with_input),
        cmocka_unit_test(test_estimate_odd_shapes_do_not_crash),
    };
    return cmocka_run_group_tests_name("token_estimate", tests, NULL, NULL);
}
