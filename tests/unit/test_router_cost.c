/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/router/cost.c: a cost table computed by hand (prices in USD per million tokens as a catalog states
 * them, results exact in pico-USD) for every bucket — plain input, cache reads, 5-minute and 1-hour cache writes,
 * output, reasoning, the flat request price — the prompt/completion split of cost_details, zero-completion insurance for
 * generations and its absence for embeddings, and usage parsing incl. the 1-hour write member.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <jansson.h>

#include "router/cost.h"

#define PER_M(usd_per_million) ((int64_t)((usd_per_million)*1000000.0 + 0.5)) /* pico-USD per token */
#define USD(x) ((int64_t)((x)*1e12 + 0.5))

/* Anthropic-like prices: $3/M in, $15/M out, reads $0.30/M, 5-minute writes $3.75/M, 1-hour writes $6/M */
static lg_price_t claude_price(void)
{
    lg_price_t p;
    memset(&p, 0, sizeof(p));
    p.prompt = PER_M(3);
    p.completion = PER_M(15);
    p.cache_read = PER_M(0.30);
    p.cache_write = PER_M(3.75);
    p.cache_write_1h = PER_M(6);
    return p;
}

static void test_cost_every_bucket(void **state)
{
    (void)state;
    lg_price_t p = claude_price();
    p.request = USD(0.001);
    lg_usage_t u = {.prompt_tokens = 10000,
                    .completion_tokens = 500,
                    .cached_tokens = 2000,
                    .cache_write_tokens = 3000,
                    .cache_write_1h_tokens = 1000,
                    .reasoning_tokens = 100};
    lg_cost_t c;
    lg_cost_compute(&p, &u, LG_COST_GENERATION, &c);
    /* by hand: plain 5000 × $3/M = $0.015; reads 2000 × $0.30/M = $0.0006; 5-minute writes 2000 × $3.75/M = $0.0075;
     * 1-hour writes 1000 × $6/M = $0.006; request $0.001 → prompt $0.0301. Output 500 × $15/M = $0.0075 (reasoning at
     * the output price: the catalog has none). Total $0.0376. */
    assert_int_equal(c.prompt, USD(0.0301));
    assert_int_equal(c.completion, USD(0.0075));
    assert_int_equal(c.total, USD(0.0376));
    assert_int_equal(lg_cost_pico(&p, &u), USD(0.0376));
}

static void test_cost_one_hour_writes_fall_back_to_five_minute_price(void **state)
{
    (void)state;
    lg_price_t p = claude_price();
    p.cache_write_1h = 0; /* no 1-hour price in the catalog: the 5-minute one applies */
    lg_usage_t u = {.prompt_tokens = 1000, .completion_tokens = 10, .cache_write_tokens = 1000, .cache_write_1h_tokens = 1000};
    lg_cost_t c;
    lg_cost_compute(&p, &u, LG_COST_GENERATION, &c);
    assert_int_equal(c.prompt, USD(0.00375));
    assert_int_equal(c.completion, USD(0.00015));
}

static void test_cost_reasoning_price(void **state)
{
    (void)state;
    lg_price_t p = claude_price();
    p.reasoning = PER_M(60);
    lg_usage_t u = {.prompt_tokens = 100, .completion_tokens = 1000, .reasoning_tokens = 400};
    lg_cost_t c;
    lg_cost_compute(&p, &u, LG_COST_GENERATION, &c);
    /* 100 × $3/M = $0.0003; 600 × $15/M = $0.009 + 400 × $60/M = $0.024 */
    assert_int_equal(c.prompt, USD(0.0003));
    assert_int_equal(c.completion, USD(0.033));
}

static void test_cost_zero_completion_insurance(void **state)
{
    (void)state;
    lg_price_t p = claude_price();
    p.request = USD(0.01);
    lg_usage_t u = {.prompt_tokens = 5000, .completion_tokens = 0};
    lg_cost_t c;
    lg_cost_compute(&p, &u, LG_COST_GENERATION, &c);
    assert_int_equal(c.total, 0);
    assert_int_equal(c.prompt, 0);
}

static void test_cost_embeddings_are_billed(void **state)
{
    (void)state;
    lg_price_t p;
    memset(&p, 0, sizeof(p));
    p.prompt = PER_M(0.10);
    p.request = USD(0.0001);
    lg_usage_t u = {.prompt_tokens = 1000};
    lg_cost_t c;
    lg_cost_compute(&p, &u, LG_COST_INPUT_ONLY, &c);
    /* 1000 × $0.10/M = $0.0001, plus $0.0001 per request; nothing is "generated", yet the input is the product */
    assert_int_equal(c.prompt, USD(0.0002));
    assert_int_equal(c.completion, 0);
    assert_int_equal(c.total, USD(0.0002));
}

static void test_cost_inconsistent_counts_never_negative(void **state)
{
    (void)state;
    lg_price_t p = claude_price();
    lg_usage_t u = {.prompt_tokens = 10,
                    .completion_tokens = 1,
                    .cached_tokens = 50,
                    .cache_write_tokens = 50,
                    .cache_write_1h_tokens = 500,
                    .reasoning_tokens = 9};
    lg_cost_t c;
    lg_cost_compute(&p, &u, LG_COST_GENERATION, &c);
    /* reads + writes exceed the prompt: all 10 at the plain price; reasoning above the output count is ignored */
    assert_int_equal(c.prompt, 10 * PER_M(3));
    assert_int_equal(c.completion, PER_M(15));
}

static void test_usage_from_json_reads_every_bucket(void **state)
{
    (void)state;
    json_t *j = json_loads("{\"prompt_tokens\":30,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":5,"
                           "\"cache_write_tokens\":6,\"cache_write_1h_tokens\":2},\"completion_tokens_details\":"
                           "{\"reasoning_tokens\":3}}",
                           0, NULL);
    assert_non_null(j);
    lg_usage_t u;
    lg_usage_from_json(j, &u);
    assert_int_equal(u.prompt_tokens, 30);
    assert_int_equal(u.completion_tokens, 7);
    assert_int_equal(u.cached_tokens, 5);
    assert_int_equal(u.cache_write_tokens, 6);
    assert_int_equal(u.cache_write_1h_tokens, 2);
    assert_int_equal(u.reasoning_tokens, 3);
    json_decref(j);
}

static void test_cost_details_names(void **state)
{
    (void)state;
    lg_cost_t c = {.prompt = USD(0.25), .completion = USD(0.5), .total = USD(0.75)};
    json_t *chat = lg_cost_details_json(&c, 0);
    assert_true(json_is_null(json_object_get(chat, "upstream_inference_cost")));
    assert_true(json_real_value(json_object_get(chat, "upstream_inference_prompt_cost")) == 0.25);
    assert_true(json_real_value(json_object_get(chat, "upstream_inference_completions_cost")) == 0.5);
    json_t *resp = lg_cost_details_json(&c, 1);
    assert_true(json_real_value(json_object_get(resp, "upstream_inference_input_cost")) == 0.25);
    assert_true(json_real_value(json_object_get(resp, "upstream_inference_output_cost")) == 0.5);
    json_decref(chat);
    json_decref(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_every_bucket),
        cmocka_unit_test(test_cost_one_hour_writes_fall_back_to_five_minute_price),
        cmocka_unit_test(test_cost_reasoning_price),
        cmocka_unit_test(test_cost_zero_completion_insurance),
        cmocka_unit_test(test_cost_embeddings_are_billed),
        cmocka_unit_test(test_cost_inconsistent_counts_never_negative),
        cmocka_unit_test(test_usage_from_json_reads_every_bucket),
        cmocka_unit_test(test_cost_details_names),
    };
    return cmocka_run_group_tests_name("cost", tests, NULL, NULL);
}
