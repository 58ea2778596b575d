/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/pipeline/normal_form.c: which plugin chunks and answers the
 * host trusts. Malformed choices (content 12345, finish_reason 42, choices
 * [null], a delta that is not an object) are rejected with a reason naming
 * the member; valid ones report whether they commit the stream.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "llmgate/error.h"
#include "pipeline/normal_form.h"

/* facts.finish borrows from the chunk: the last one checked stays alive until the next check */
static json_t *last_chunk;

static int check(lg_api_kind_t kind, const char *text, lg_chunk_facts_t *facts, char *why, size_t whylen)
{
    json_error_t e;
    json_decref(last_chunk);
    last_chunk = json_loads(text, 0, &e);
    assert_non_null(last_chunk);
    return lg_chunk_check(kind, last_chunk, facts, why, whylen);
}

static int teardown(void **state)
{
    (void)state;
    json_decref(last_chunk);
    last_chunk = NULL;
    return 0;
}

static void test_normal_form_role_chunk_holds(void **state)
{
    (void)state;
    lg_chunk_facts_t f;
    char why[160];
    assert_int_equal(check(LG_API_CHAT,
                           "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                           "\"finish_reason\":null}]}",
                           &f, why, sizeof(why)),
                     0);
    assert_false(f.has_content);
    assert_int_equal(f.text_chars, 0);
    assert_null(f.finish);
}

static void test_normal_form_content_commits(void **state)
{
    (void)state;
    lg_chunk_facts_t f;
    char why[160];
    assert_int_equal(check(LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"héllo\"}}]}", &f, why, sizeof(why)),
                     0);
    assert_true(f.has_content);
    assert_int_equal(f.text_chars, 6); /* bytes */
    assert_int_equal(
        check(LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}", &f, why, sizeof(why)), 0);
    assert_true(f.has_content);
    assert_string_equal(f.finish, "length");
    assert_int_equal(check(LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\"}]}}]}", &f,
                           why, sizeof(why)),
                     0);
    assert_true(f.has_content);
    assert_int_equal(
        check(LG_API_COMPLETIONS, "{\"choices\":[{\"text\":\"abc\",\"index\":0,\"finish_reason\":null}]}", &f, why, sizeof(why)),
        0);
    assert_true(f.has_content);
    assert_int_equal(f.text_chars, 3);
}

static void test_normal_form_malformed_choices(void **state)
{
    (void)state;
    static const struct {
        lg_api_kind_t kind;
        const char *chunk, *why;
    } cases[] = {
        {LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":12345}}]}",
         "choices[0].delta.content: expected string or null, got number"},
        {LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":42}]}",
         "choices[0].finish_reason: expected string or null, got number"},
        {LG_API_CHAT, "{\"choices\":[null]}", "choices[0]: expected object, got null"},
        {LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":\"hi\"}]}", "choices[0].delta: expected object, got string"},
        {LG_API_CHAT, "{\"choices\":[{\"index\":\"0\",\"delta\":{}}]}", "choices[0].index: expected integer, got string"},
        {LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":{}}}]}",
         "choices[0].delta.tool_calls: expected array, got object"},
        {LG_API_CHAT, "{\"choices\":[{\"index\":0,\"delta\":{\"role\":7}}]}",
         "choices[0].delta.role: expected string or null, got number"},
        {LG_API_COMPLETIONS, "{\"choices\":[{\"text\":[1],\"index\":0}]}", "choices[0].text: expected string or null, got array"},
        {LG_API_CHAT, "{\"choices\":{}}", "stream chunk without a choices array"},
        {LG_API_CHAT, "[]", "stream chunk without a choices array"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        lg_chunk_facts_t f;
        char why[160] = "";
        assert_int_equal(check(cases[i].kind, cases[i].chunk, &f, why, sizeof(why)), LG_EBADRESPONSE);
        assert_string_equal(why, cases[i].why);
    }
}

static int check_resp(lg_api_kind_t kind, const char *text, char *why, size_t whylen)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    int rc = lg_response_check(kind, j, why, whylen);
    json_decref(j);
    return rc;
}

static void test_normal_form_responses(void **state)
{
    (void)state;
    char why[160];
    assert_int_equal(
        check_resp(LG_API_CHAT,
                   "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":"
                   "\"stop\"}]}",
                   why, sizeof(why)),
        0);
    assert_int_equal(
        check_resp(LG_API_CHAT, "{\"choices\":[{\"index\":0,\"message\":{\"content\":null,\"tool_calls\":[]}}]}", why, sizeof(why)),
        0);
    assert_int_equal(check_resp(LG_API_COMPLETIONS, "{\"choices\":[{\"text\":\"x\",\"index\":0}]}", why, sizeof(why)), 0);
    assert_int_equal(check_resp(LG_API_EMBEDDINGS, "{\"data\":[]}", why, sizeof(why)), 0);

    assert_int_equal(check_resp(LG_API_CHAT, "{\"choices\":[{\"message\":{\"content\":12345}}]}", why, sizeof(why)),
                     LG_EBADRESPONSE);
    assert_string_equal(why, "choices[0].message.content: expected string or null, got number");
    assert_int_equal(check_resp(LG_API_CHAT, "{\"choices\":[{\"message\":{},\"finish_reason\":42}]}", why, sizeof(why)),
                     LG_EBADRESPONSE);
    assert_int_equal(check_resp(LG_API_CHAT, "{\"choices\":[null]}", why, sizeof(why)), LG_EBADRESPONSE);
    assert_int_equal(check_resp(LG_API_CHAT, "{\"choices\":[]}", why, sizeof(why)), LG_EBADRESPONSE);
    assert_string_equal(why, "response without choices");
    assert_int_equal(check_resp(LG_API_EMBEDDINGS, "{\"data\":{}}", why, sizeof(why)), LG_EBADRESPONSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_form_role_chunk_holds),
        cmocka_unit_test(test_normal_form_content_commits),
        cmocka_unit_test(test_normal_form_malformed_choices),
        cmocka_unit_test(test_normal_form_responses),
    };
    return cmocka_run_group_tests_name("normal_form", tests, NULL, teardown);
}
