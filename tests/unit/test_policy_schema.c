/* SPDX-License-Identifier: MIT */
/*
 * Policy settings schemas: the validator on JSON (SCHEMA refusals, settings errors with their JSON paths, defaults
 * filled in nested objects and array items) and through the real VM (a bad SCHEMA refuses the policy, lg.conf shows
 * the filled settings in hooks, also when the policy captured lg.conf while loading).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/log.h"
#include "llmgate/error.h"
#include "policy/policy.h"
#include "policy/schema.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    return v;
}

/* lg__policy_schema_check on schema text: 0, or -1 with err containing want */
static void expect_schema(const char *schema, const char *want)
{
    json_t *s = parse(schema);
    char err[512] = "";
    int rc = lg__policy_schema_check(s, err, sizeof(err));
    json_decref(s);
    if (want == NULL) {
        if (rc != 0)
            fail_msg("schema %s refused: %s", schema, err);
        return;
    }
    if (rc == 0)
        fail_msg("schema %s accepted, expected \"%s\"", schema, want);
    if (strstr(err, want) == NULL)
        fail_msg("schema %s: got \"%s\", expected \"%s\"", schema, err, want);
}

/* settings against schema: want_filled = the expected result JSON, or want_err = a substring of the message */
static void expect_apply(const char *schema, const char *settings, const char *want_filled, const char *want_err)
{
    json_t *s = parse(schema), *v = settings != NULL ? parse(settings) : NULL, *filled = NULL;
    char err[512] = "";
    if (lg__policy_schema_check(s, err, sizeof(err)) != 0)
        fail_msg("schema refused: %s", err);
    int rc = lg__policy_schema_apply(s, v, "policies.p.settings", &filled, err, sizeof(err));
    if (want_err != NULL) {
        if (rc == 0)
            fail_msg("settings %s accepted, expected \"%s\"", settings, want_err);
        assert_null(filled);
        if (strcmp(err, want_err) != 0)
            fail_msg("settings %s: got \"%s\", expected \"%s\"", settings, err, want_err);
    } else {
        if (rc != 0)
            fail_msg("settings %s refused: %s", settings, err);
        json_t *want = parse(want_filled);
        if (!json_equal(want, filled)) {
            char *got = json_dumps(filled, JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("settings %s filled as %s, expected %s", settings, got, want_filled);
        }
        json_decref(want);
    }
    json_decref(filled);
    json_decref(v);
    json_decref(s);
}

static void test_schema_refusals(void **state)
{
    (void)state;
    expect_schema("{}", NULL);
    expect_schema("{\"a\": {\"type\": \"string\", \"one_of\": [\"x\", \"y\"], \"default\": \"x\", \"description\": \"d\"}}", NULL);
    expect_schema("{\"r\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"fields\": {\"m\": {\"type\": \"string\", "
                  "\"required\": true}}}, \"min\": 1}}",
                  NULL);
    expect_schema("[]", "SCHEMA: must be a table");
    expect_schema("{\"a\": \"string\"}", "SCHEMA.a: a field spec must be a table");
    expect_schema("{\"a\": {}}", "SCHEMA.a.type: must be one of string, number, integer, boolean, array, object");
    expect_schema("{\"a\": {\"type\": \"float\"}}", "SCHEMA.a.type: must be one of");
    expect_schema("{\"a\": {\"type\": \"string\", \"defualt\": \"x\"}}", "SCHEMA.a.defualt: unknown field-spec key");
    expect_schema("{\"a\": {\"type\": \"string\", \"required\": 1}}", "SCHEMA.a.required: must be a boolean");
    expect_schema("{\"a\": {\"type\": \"boolean\", \"min\": 1}}", "SCHEMA.a.min: only for number, integer, string");
    expect_schema("{\"a\": {\"type\": \"number\", \"min\": 5, \"max\": 1}}", "SCHEMA.a.min: greater than max");
    expect_schema("{\"a\": {\"type\": \"string\", \"max\": 1.5}}", "SCHEMA.a.max: a length bound must be a non-negative integer");
    expect_schema("{\"a\": {\"type\": \"string\", \"one_of\": []}}", "SCHEMA.a.one_of: must be a non-empty array");
    expect_schema("{\"a\": {\"type\": \"string\", \"one_of\": [\"x\", 2]}}", "SCHEMA.a.one_of: entry 2 is not a string");
    expect_schema("{\"a\": {\"type\": \"boolean\", \"one_of\": [true]}}", "SCHEMA.a.one_of: only for string, number and integer");
    expect_schema("{\"a\": {\"type\": \"string\", \"items\": {\"type\": \"string\"}}}", "SCHEMA.a.items: only for array fields");
    expect_schema("{\"a\": {\"type\": \"array\", \"items\": {\"type\": \"string\", \"required\": true}}}",
                  "SCHEMA.a.items.required: not allowed in an array's items spec");
    expect_schema("{\"a\": {\"type\": \"object\", \"fields\": {\"b\": {\"type\": \"nope\"}}}}", "SCHEMA.a.fields.b.type: must be");
    expect_schema("{\"a\": {\"type\": \"integer\", \"default\": 1.5}}", "SCHEMA.a.default: does not satisfy its own spec");
    expect_schema("{\"a\": {\"type\": \"integer\", \"max\": 3, \"default\": 4}}", "SCHEMA.a.default: does not satisfy");
    expect_schema("{\"a\": {\"type\": \"string\", \"required\": true, \"default\": \"x\"}}",
                  "SCHEMA.a.default: a required setting cannot have a default");
    /* nesting is bounded */
    char deep[2048] = "{\"a\": ";
    for (int i = 0; i < 12; ++i)
        strcat(deep, "{\"type\": \"object\", \"fields\": {\"a\": ");
    strcat(deep, "{\"type\": \"string\"}");
    for (int i = 0; i < 12; ++i)
        strcat(deep, "}}");
    strcat(deep, "}");
    expect_schema(deep, "nested more than");
}

static const char *const ROUTES =
    "{\"threshold\": {\"type\": \"integer\", \"min\": 1, \"max\": 1000000, \"default\": 2000},"
    " \"ratio\": {\"type\": \"number\", \"min\": 0, \"max\": 1},"
    " \"mode\": {\"type\": \"string\", \"one_of\": [\"a\", \"b\"], \"default\": \"a\"},"
    " \"name\": {\"type\": \"string\", \"required\": true, \"max\": 8},"
    " \"strict\": {\"type\": \"boolean\", \"default\": false},"
    " \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"default\": []},"
    " \"routes\": {\"type\": \"array\", \"min\": 1, \"items\": {\"type\": \"object\", \"fields\": {"
    "     \"model\": {\"type\": \"string\", \"required\": true}, \"tools\": {\"type\": \"boolean\"},"
    "     \"weight\": {\"type\": \"integer\", \"default\": 1}}}},"
    " \"extra\": {\"type\": \"object\"},"
    " \"limits\": {\"type\": \"object\", \"fields\": {\"rpm\": {\"type\": \"integer\", \"default\": 60}}}}";

static void test_settings_errors(void **state)
{
    (void)state;
    expect_apply(ROUTES, "{\"name\": \"n\", \"thresold\": 3}", NULL,
                 "policies.p.settings.thresold: unknown setting (did you mean \"threshold\"?)");
    expect_apply(ROUTES, "{\"name\": \"n\", \"zzzzzzzz\": 3}", NULL, "policies.p.settings.zzzzzzzz: unknown setting");
    expect_apply(ROUTES, "{}", NULL, "policies.p.settings.name: missing required setting");
    expect_apply(ROUTES, NULL, NULL, "policies.p.settings.name: missing required setting");
    expect_apply(ROUTES, "{\"name\": 3}", NULL, "policies.p.settings.name: expected a string");
    expect_apply(ROUTES, "{\"name\": \"123456789\"}", NULL, "policies.p.settings.name: must be at most 8 bytes long");
    expect_apply(ROUTES, "{\"name\": \"n\", \"threshold\": 0}", NULL, "policies.p.settings.threshold: must be at least 1");
    expect_apply(ROUTES, "{\"name\": \"n\", \"threshold\": 2.5}", NULL, "policies.p.settings.threshold: expected an integer");
    expect_apply(ROUTES, "{\"name\": \"n\", \"threshold\": \"5\"}", NULL, "policies.p.settings.threshold: expected an integer");
    expect_apply(ROUTES, "{\"name\": \"n\", \"ratio\": 1.5}", NULL, "policies.p.settings.ratio: must be at most 1");
    expect_apply(ROUTES, "{\"name\": \"n\", \"mode\": \"c\"}", NULL, "policies.p.settings.mode: must be one of [\"a\",\"b\"]");
    expect_apply(ROUTES, "{\"name\": \"n\", \"strict\": \"yes\"}", NULL, "policies.p.settings.strict: expected a boolean");
    expect_apply(ROUTES, "{\"name\": \"n\", \"tags\": [\"x\", 1]}", NULL, "policies.p.settings.tags[1]: expected a string");
    expect_apply(ROUTES, "{\"name\": \"n\", \"routes\": []}", NULL, "policies.p.settings.routes: must be at least 1 items");
    expect_apply(ROUTES, "{\"name\": \"n\", \"routes\": [{\"model\": \"x\"}, {\"tools\": true}]}", NULL,
                 "policies.p.settings.routes[1].model: missing required setting");
    expect_apply(ROUTES, "{\"name\": \"n\", \"routes\": [{\"model\": \"x\", \"tool\": true}]}", NULL,
                 "policies.p.settings.routes[0].tool: unknown setting (did you mean \"tools\"?)");
    expect_apply(ROUTES, "{\"name\": \"n\", \"extra\": []}", NULL, "policies.p.settings.extra: expected a object");
    expect_apply(ROUTES, "{\"name\": \"n\", \"limits\": {\"rpm\": true}}", NULL,
                 "policies.p.settings.limits.rpm: expected an integer");
    expect_apply("{}", "{\"default_hnt\": \"x\"}", NULL, "policies.p.settings.default_hnt: unknown setting");
    expect_apply("{}", "[1]", NULL, "policies.p.settings: expected an object");
}

static void test_settings_defaults(void **state)
{
    (void)state;
    expect_apply(
        ROUTES, "{\"name\": \"n\"}",
        "{\"name\": \"n\", \"threshold\": 2000, \"mode\": \"a\", \"strict\": false, \"tags\": [], \"limits\": {\"rpm\": 60}}",
        NULL);
    /* given values win; integral reals become integers; null = absent; nested defaults inside array items */
    expect_apply(ROUTES,
                 "{\"name\": \"n\", \"threshold\": 7.0, \"mode\": null, \"routes\": [{\"model\": \"x\"}, {\"model\": \"y\", "
                 "\"weight\": 3}], \"extra\": {\"free\": [1, {\"form\": true}]}, \"limits\": {}}",
                 "{\"name\": \"n\", \"threshold\": 7, \"mode\": \"a\", \"strict\": false, \"tags\": [], \"routes\": [{\"model\": "
                 "\"x\", \"weight\": 1}, {\"model\": \"y\", \"weight\": 3}], \"extra\": {\"free\": [1, {\"form\": true}]}, "
                 "\"limits\": {\"rpm\": 60}}",
                 NULL);
    expect_apply("{}", NULL, "{}", NULL);
}

/* ---- through the VM ---- */

static char last_log[2048];
static void capture_sink(int level, const char *module, const char *line)
{
    (void)level;
    (void)module;
    snprintf(last_log, sizeof(last_log), "%s", line);
}

static lg_policy_vm_t *vm_with(const char *src, const char *settings, char *err, size_t errlen)
{
    static lg_policy_conf_t pc;
    static char name[] = "t";
    char path[64] = "/tmp/lg_schema_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    lg_config_t conf;
    memset(&conf, 0, sizeof(conf));
    conf.policy_instruction_budget = 1000000;
    conf.policy_memory_mb = 64;
    pc.name = name;
    pc.path = path;
    pc.settings = settings != NULL ? parse(settings) : NULL;
    conf.policies = &pc;
    conf.num_policies = 1;
    conf.default_policy = name;
    lg_policy_vm_t *vm = lg_policy_vm_create(&conf, 1, err, errlen);
    json_decref(pc.settings);
    unlink(path);
    return vm;
}

/* The policy returns candidate ids chosen from lg.conf so the test can read what the hook saw. */
static const char *const SEES_CONF =
    "local lg = lg\n"
    "local captured = lg.conf\n"
    "local M = { NAME = 't', VERSION = '1.0.0' }\n"
    "M.SCHEMA = { first = { type = 'integer', min = 1, max = 3, default = 2 },\n"
    "             order = { type = 'array', items = { type = 'integer' }, default = {} },\n"
    "             nested = { type = 'object', fields = { pick = { type = 'integer', default = 3 } } } }\n"
    "function M.select(req, c)\n"
    "    local plan = { captured.first, lg.conf.nested.pick }\n"
    "    for _, id in ipairs(lg.conf.order) do plan[#plan + 1] = id end\n"
    "    return plan\n"
    "end\n"
    "return M\n";

static void run_select(lg_policy_vm_t *vm, uint32_t *plan, size_t *n)
{
    lg_candidate_t c[3];
    memset(c, 0, sizeof(c));
    for (uint32_t i = 0; i < 3; ++i) {
        c[i].id = i + 1;
        c[i].provider = "p";
        c[i].model = "m";
        c[i].upstream_model = "m";
        c[i].tier = "standard";
        c[i].healthy = 1;
        c[i].outage_age_s = -1;
    }
    lg_policy_req_t req;
    memset(&req, 0, sizeof(req));
    req.model = "m";
    char err[512];
    assert_int_equal(lg_policy_select(vm, "t", &req, c, 3, plan, 8, n, err, sizeof(err)), 0);
}

static void test_vm_fills_defaults(void **state)
{
    (void)state;
    char err[512];
    uint32_t plan[8];
    size_t n;
    lg_policy_vm_t *vm = vm_with(SEES_CONF, NULL, err, sizeof(err));
    assert_non_null(vm);
    run_select(vm, plan, &n);
    assert_int_equal(n, 2);
    assert_int_equal(plan[0], 2); /* default, seen through the table captured while loading */
    assert_int_equal(plan[1], 3); /* nested default */
    lg_policy_vm_destroy(vm);

    vm = vm_with(SEES_CONF, "{\"first\": 1, \"order\": [3, 1]}", err, sizeof(err));
    assert_non_null(vm);
    run_select(vm, plan, &n);
    assert_int_equal(n, 4);
    assert_int_equal(plan[0], 1);
    assert_int_equal(plan[2], 3);
    assert_int_equal(plan[3], 1);
    lg_policy_vm_destroy(vm);
}

static void expect_refused(const char *src, const char *settings, const char *want)
{
    char err[512] = "";
    lg_policy_vm_t *vm = vm_with(src, settings, err, sizeof(err));
    if (vm != NULL) {
        lg_policy_vm_destroy(vm);
        fail_msg("policy accepted, expected \"%s\"", want);
    }
    if (strstr(err, want) == NULL)
        fail_msg("got \"%s\", expected \"%s\"", err, want);
}

static void test_vm_refusals(void **state)
{
    (void)state;
    expect_refused(SEES_CONF, "{\"frist\": 1}", "policies.t.settings.frist: unknown setting (did you mean \"first\"?)");
    expect_refused(SEES_CONF, "{\"first\": 9}", "policies.t.settings.first: must be at most 3");
    expect_refused(SEES_CONF, "{\"nested\": {\"pick\": \"x\"}}", "policies.t.settings.nested.pick: expected an integer");
    static const char *const bad[][2] = {
        {"M.SCHEMA = 'x'", "SCHEMA must be a table (got string)"},
        {"M.SCHEMA = { a = { type = 'str' } }", "invalid SCHEMA.a.type: must be one of"},
        {"M.SCHEMA = { a = { type = 'string', check = function() end } }", "invalid SCHEMA.a.check: a function cannot be declared"},
        {"M.SCHEMA = { { type = 'string' } }", "invalid SCHEMA.a"},
        {"M.SCHEMA = { a = { type = 'number', default = 0/0 } }", "invalid SCHEMA.a.default: not a finite number"},
        {"M.SCHEMA = { a = { type = 'string', [1] = 2 } }", "invalid SCHEMA.a: a table must be an array"},
    };
    char src[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        snprintf(src, sizeof(src), "local M = { NAME = 't' }\n%s\nfunction M.select(r, c) return { c[1].id } end\nreturn M\n",
                 bad[i][0]);
        if (i == 3) /* an array of specs is a field spec map with the wrong shape */
            expect_refused(src, NULL, "SCHEMA");
        else
            expect_refused(src, NULL, bad[i][1]);
    }
    /* the message names the policy and its file */
    expect_refused("local M = { NAME = 't' }\nM.SCHEMA = 1\nfunction M.select() end\nreturn M\n", NULL,
                   "policy 't': /tmp/lg_schema_");
}

/* The shipped policies declare an empty SCHEMA: any setting is a typo. */
static void test_shipped_refuse_unknown_settings(void **state)
{
    (void)state;
    static const char *const names[] = {"default", "price", "latency", "throughput", "weighted"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        lg_policy_conf_t pc = {.name = (char *)names[i], .settings = parse("{\"default_hnt\": \"cheap\"}")};
        lg_config_t conf;
        memset(&conf, 0, sizeof(conf));
        conf.policy_instruction_budget = 1000000;
        conf.policy_memory_mb = 64;
        conf.policies = &pc;
        conf.num_policies = 1;
        conf.default_policy = pc.name;
        char err[512] = "", want[128];
        lg_policy_vm_t *vm = lg_policy_vm_create(&conf, 1, err, sizeof(err));
        json_decref(pc.settings);
        assert_null(vm);
        snprintf(want, sizeof(want), "policies.%s.settings.default_hnt: unknown setting", names[i]);
        assert_string_equal(err, want);
    }
}

int main(void)
{
    lg_log_set_sink(capture_sink);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_refusals),   cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_settings_defaults), cmocka_unit_test(test_vm_fills_defaults),
        cmocka_unit_test(test_vm_refusals),       cmocka_unit_test(test_shipped_refuse_unknown_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
