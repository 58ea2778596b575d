/* SPDX-License-Identifier: MIT */
/*
 * Tests for src/http/cookie.c: finding one cookie among several, spaces and
 * quotes, names that only look alike, empty values and malformed pairs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/cookie.h"

static void expect(const char *header, const char *name, const char *want)
{
    size_t len = 0;
    const char *v = lg_cookie_find(header, strlen(header), name, &len);
    if (want == NULL) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
}

static void test_cookie_find(void **state)
{
    (void)state;
    expect("s=abc", "s", "abc");
    expect("a=1; s=abc; b=2", "s", "abc");
    expect("a=1;s=abc", "s", "abc");
    expect("  s = abc  ; b=2", "s", "abc");
    expect("s=\"abc\"", "s", "abc");
    expect("s=", "s", "");
    expect("s=first; s=second", "s", "first");
    expect("xs=1; sx=2; s_=3", "s", NULL);
    expect("a=1; b=2", "s", NULL);
    expect("s; s", "s", NULL);
    expect(";;;", "s", NULL);
    expect("", "s", NULL);
    expect("a=s=1; s=2", "s", "2");
    expect("s=a=b", "s", "a=b");
    size_t len;
    assert_null(lg_cookie_find("s=1", 3, "", &len));
    assert_null(lg_cookie_find(NULL, 0, "s", &len));
    /* not NUL-terminated: the value stops at the given length */
    const char buf[] = {'s', '=', 'a', 'b', 'c', 'X'};
    const char *v = lg_cookie_find(buf, 5, "s", &len);
    assert_non_null(v);
    assert_int_equal(len, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cookie_find)};
    return cmocka_run_group_tests_name("cookie", tests, NULL, NULL);
}
