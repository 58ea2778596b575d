/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for mcp/naming.c: merged-list cursors round-trip (provider cursor with ':' inside, empty parts) and
 * refuse anything that is not ours; resource URI namespacing is reversible and refuses look-alikes; tool patterns.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mcp/naming.h"

static void test_cursor_round_trip(void **state)
{
    (void)state;
    char *t = lg_mcp_cursor_encode(3, "github", "page:2:of:9", 17);
    for (const char *p = t; *p != '\0'; ++p) /* opaque and URL-safe */
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    lg_mcp_cursor_t c;
    assert_int_equal(lg_mcp_cursor_decode(t, strlen(t), &c), 0);
    assert_int_equal(c.index, 3);
    assert_int_equal(c.skip, 17);
    assert_string_equal(c.provider, "github");
    assert_string_equal(c.pcursor, "page:2:of:9");
    lg_mcp_cursor_dispose(&c);
    free(t);

    t = lg_mcp_cursor_encode(0, "p", NULL, 0); /* first page of a provider */
    assert_int_equal(lg_mcp_cursor_decode(t, strlen(t), &c), 0);
    assert_null(c.pcursor);
    assert_string_equal(c.provider, "p");
    lg_mcp_cursor_dispose(&c);
    free(t);
}

static void test_cursor_rejects(void **state)
{
    (void)state;
    lg_mcp_cursor_t c;
    static const char *const bad[] = {"",
                                      "garbage!",
                                      "A",
                                      "MTox",
                                      /* "1:1" */ "MjoxOng", /* "2:1:x" */
                                      "MjphOjA6cDo",
                                      /* "2:a:0:p:" */ NULL};
    for (const char *const *b = bad; *b != NULL; ++b) {
        assert_int_equal(lg_mcp_cursor_decode(*b, strlen(*b), &c), -1);
        assert_null(c.provider);
    }
    /* a NUL inside the decoded bytes, and an index past a billion */
    assert_int_equal(lg_mcp_cursor_decode("MjowOjA6cAA6eA", 14, &c), -1);
    assert_int_equal(lg_mcp_cursor_decode("MjoxMjM0NTY3ODkwMTowOnA6", 24, &c), -1);
    char *big = malloc(20000);
    memset(big, 'A', 19999);
    big[19999] = '\0';
    assert_int_equal(lg_mcp_cursor_decode(big, strlen(big), &c), -1);
    free(big);
}

static void test_uri_namespace(void **state)
{
    (void)state;
    char *u = lg_mcp_uri_namespace("everything", "demo://resource/static/document/1.txt");
    assert_string_equal(u, "mcp://everything/demo://resource/static/document/1.txt");
    const char *pre, *rest;
    size_t pl;
    assert_int_equal(lg_mcp_uri_split(u, &pre, &pl, &rest), 1);
    assert_int_equal(pl, 10);
    assert_memory_equal(pre, "everything", 10);
    assert_string_equal(rest, "demo://resource/static/document/1.txt");
    free(u);
    /* an upstream's own mcp:// URI nests and unwraps once */
    u = lg_mcp_uri_namespace("a", "mcp://b/x");
    assert_int_equal(lg_mcp_uri_split(u, &pre, &pl, &rest), 1);
    assert_string_equal(rest, "mcp://b/x");
    free(u);
    assert_int_equal(lg_mcp_uri_split("test://static-text", &pre, &pl, &rest), 0);
    assert_int_equal(lg_mcp_uri_split("mcp://", &pre, &pl, &rest), 0);
    assert_int_equal(lg_mcp_uri_split("mcp://a", &pre, &pl, &rest), 0);
    assert_int_equal(lg_mcp_uri_split("mcp://a/", &pre, &pl, &rest), 0);
    assert_int_equal(lg_mcp_uri_split("mcp:///x", &pre, &pl, &rest), 0);
    assert_int_equal(lg_mcp_uri_split("mcp://a b/x", &pre, &pl, &rest), 0);
    assert_int_equal(lg_mcp_uri_split(NULL, &pre, &pl, &rest), 0);
}

static void test_patterns(void **state)
{
    (void)state;
    char p0[] = "github__*", p1[] = "llmgate__list_models";
    char *pats[] = {p0, p1, NULL};
    assert_true(lg_mcp_patterns_match(pats, "github__create_issue"));
    assert_true(lg_mcp_patterns_match(pats, "llmgate__list_models"));
    assert_false(lg_mcp_patterns_match(pats, "llmgate__chat"));
    assert_false(lg_mcp_patterns_match(pats, "git"));
    assert_true(lg_mcp_patterns_match(NULL, "anything"));
    char *none[] = {NULL};
    assert_false(lg_mcp_patterns_match(none, "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_cursor_rejects),
        cmocka_unit_test(test_uri_namespace),
        cmocka_unit_test(test_patterns),
    };
    return cmocka_run_group_tests_name("mcp_naming", tests, NULL, NULL);
}
