/* SPDX-License-Identifier: MIT */
/*
 * The policy configuration the docs show is the one the loader takes: the JSON block under "## Configuration" in
 * policies/README.md and the snippet in the header comment of examples/policy-route-by-header.lua are read from the
 * files themselves, loaded with lg_config_parse, and their policies compiled by a real policy VM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "policy/policy.h"

static char tmpdir[1024];

static const char *source_dir(void)
{
    const char *s = getenv("LLMGATE_SOURCE_DIR");
    assert_non_null(s);
    return s;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* "{" + text[from, to) + "}": the docs show members of the top-level config object */
static char *wrap_object(const char *from, const char *to)
{
    size_t n = (size_t)(to - from);
    char *out = malloc(n + 3);
    assert_non_null(out);
    out[0] = '{';
    memcpy(out + 1, from, n);
    out[n + 1] = '}';
    out[n + 2] = '\0';
    return out;
}

/* the ```json block that follows the "## Configuration" heading of policies/README.md */
static char *readme_snippet(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/policies/README.md", source_dir());
    char *md = read_file(path);
    const char *sec = strstr(md, "\n## Configuration\n");
    assert_non_null(sec);
    const char *start = strstr(sec, "```json\n");
    assert_non_null(start);
    start += strlen("```json\n");
    const char *end = strstr(start, "```");
    assert_non_null(end);
    char *json = wrap_object(start, end);
    free(md);
    return json;
}

/* the "--   " lines after "policy registered:" in the example's header comment, comment markers removed */
static char *example_snippet(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/examples/policy-route-by-header.lua", source_dir());
    char *lua = read_file(path);
    const char *p = strstr(lua, "the policy registered:\n");
    assert_non_null(p);
    p = strchr(p, '\n') + 1;
    size_t cap = strlen(p) + 1, len = 0;
    char *members = malloc(cap);
    assert_non_null(members);
    while (strncmp(p, "--   ", 5) == 0) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        memcpy(members + len, p + 5, (size_t)(eol - p - 5));
        len += (size_t)(eol - p - 5);
        members[len++] = ' ';
        p = eol + 1;
    }
    assert_true(len > 0);
    char *json = wrap_object(members, members + len);
    free(members);
    free(lua);
    return json;
}

static void copy_file(const char *from, const char *to)
{
    char *text = read_file(from);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    fclose(f);
    free(text);
}

static void assert_policy_vm_loads(const lg_config_t *conf, const char *policy)
{
    char err[1024] = "";
    lg_policy_vm_t *vm = lg_policy_vm_create(conf, 1, err, sizeof(err));
    if (vm == NULL)
        fail_msg("policy VM refused the documented config: %s", err);
    assert_true(lg_policy_exists(vm, policy));
    lg_policy_vm_destroy(vm);
}

static void test_docs_policies_readme_snippet_loads(void **state)
{
    (void)state;
    /* the snippet's relative path resolves against the config's folder: put the example there */
    char dir[PATH_MAX / 2], from[PATH_MAX], want[PATH_MAX], err[1024] = "";
    snprintf(dir, sizeof(dir), "%s/policies", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(want, sizeof(want), "%s/route-by-header.lua", dir);
    snprintf(from, sizeof(from), "%s/examples/policy-route-by-header.lua", source_dir());
    copy_file(from, want);

    char *json = readme_snippet();
    lg_config_t *conf = lg_config_parse(json, strlen(json), tmpdir, err, sizeof(err));
    if (conf == NULL)
        fail_msg("policies/README.md configuration does not load: %s\n%s", err, json);
    const lg_policy_conf_t *pol = lg_config_find_policy(conf, "route_by_header");
    assert_non_null(pol);
    assert_string_equal(pol->path, want);
    assert_non_null(pol->settings);
    assert_string_equal(json_string_value(json_object_get(pol->settings, "default_hint")), "cheap");
    assert_non_null(lg_config_find_policy(conf, "price"));
    assert_non_null(conf->expose_headers);
    assert_string_equal(conf->expose_headers[0], "x-route-hint");
    assert_policy_vm_loads(conf, "route_by_header");
    lg_config_free(conf);
    free(json);
    unlink(want);
    rmdir(dir);
}

static void test_docs_example_policy_snippet_loads(void **state)
{
    (void)state;
    char dir[PATH_MAX / 2], want[PATH_MAX], err[1024] = "";
    snprintf(dir, sizeof(dir), "%s/examples", source_dir());
    snprintf(want, sizeof(want), "%s/policy-route-by-header.lua", dir);

    char *json = example_snippet();
    lg_config_t *conf = lg_config_parse(json, strlen(json), dir, err, sizeof(err));
    if (conf == NULL)
        fail_msg("examples/policy-route-by-header.lua header snippet does not load: %s\n%s", err, json);
    const lg_policy_conf_t *pol = lg_config_find_policy(conf, "route_by_header");
    assert_non_null(pol);
    assert_string_equal(pol->path, want);
    assert_string_equal(json_string_value(json_object_get(pol->settings, "default_hint")), "cheap");
    assert_policy_vm_loads(conf, "route_by_header");
    lg_config_free(conf);
    free(json);
}

/* the form the docs showed before is refused, so a snippet in that form could not pass the tests above */
static void test_docs_policies_array_form_is_rejected(void **state)
{
    (void)state;
    static const char json[] = "{\"policies\": [ { \"name\": \"price\" } ]}";
    char err[1024] = "";
    lg_config_t *conf = lg_config_parse(json, strlen(json), tmpdir, err, sizeof(err));
    assert_null(conf);
    assert_non_null(strstr(err, "policies: expected object"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/lg_docs_policy_XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_policies_readme_snippet_loads),
        cmocka_unit_test(test_docs_example_policy_snippet_loads),
        cmocka_unit_test(test_docs_policies_array_form_is_rejected),
    };
    return cmocka_run_group_tests_name("docs_policy_config", tests, setup, teardown);
}
