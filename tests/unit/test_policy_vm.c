/* SPDX-License-Identifier: MIT */
/*
 * Policy VM: loading and refusals, the sandbox, the instruction budget / deadline / memory cap, plan validation,
 * on_error / on_done marshalling, lg.* and error counting. Test policies are written to temp files from strings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "llmgate/error.h"
#include "policy/policy.h"

static int log_lines;
static char last_log[2048];

static void capture_sink(int level, const char *module, const char *line)
{
    (void)level;
    (void)module;
    ++log_lines;
    snprintf(last_log, sizeof(last_log), "%s", line);
}

static char tmp_path[64]; /* the latest temp file; removed once the VM is created */

static const char *write_tmp(const char *text)
{
    char *path = tmp_path;
    snprintf(path, 64, "/tmp/lg_policy_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void base_conf(lg_config_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->policy_instruction_budget = 1000000; /* production defaults */
    conf->policy_memory_mb = 64;
}

/* A VM with one policy "t" from source text (also the default policy, so nothing shipped is needed). */
static lg_policy_vm_t *vm_from(const char *src, uint32_t memory_mb, uint32_t budget, char *err, size_t errlen)
{
    static lg_policy_conf_t pc;
    static char name[] = "t";
    lg_config_t conf;
    base_conf(&conf);
    if (memory_mb != 0)
        conf.policy_memory_mb = memory_mb;
    if (budget != 0)
        conf.policy_instruction_budget = budget;
    pc.name = name;
    pc.path = (char *)write_tmp(src);
    pc.settings = NULL;
    conf.policies = &pc;
    conf.num_policies = 1;
    conf.default_policy = name;
    lg_policy_vm_t *vm = lg_policy_vm_create(&conf, 42, err, errlen);
    unlink(pc.path);
    return vm;
}

static lg_candidate_t cands3[3];
static lg_policy_req_t req0;

static void init_fixtures(void)
{
    static const char *const provs[] = {"alpha", "beta", "gamma"};
    memset(cands3, 0, sizeof(cands3));
    for (uint32_t i = 0; i < 3; ++i) {
        cands3[i].id = i + 1;
        cands3[i].provider = provs[i];
        cands3[i].model = "m/x";
        cands3[i].upstream_model = "x";
        cands3[i].price_prompt = (i + 1) * 1e-6;
        cands3[i].price_completion = 0;
        cands3[i].weight = 1;
        cands3[i].tier = "standard";
        cands3[i].healthy = 1;
        cands3[i].outage_age_s = -1;
    }
    memset(&req0, 0, sizeof(req0));
    req0.model = "m/x";
}

static int setup(void **state)
{
    (void)state;
    lg_log_set_sink(capture_sink);
    lg_log_level = LG_LOG_DEBUG;
    init_fixtures();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_log_set_sink(NULL);
    return 0;
}

static int do_select(lg_policy_vm_t *vm, const lg_policy_req_t *req, uint32_t *plan, size_t cap, size_t *len, char *err,
                     size_t errlen)
{
    return lg_policy_select(vm, "t", req, cands3, 3, plan, cap, len, err, errlen);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- loading ---- */

static void test_vm_loads_and_selects(void **state)
{
    (void)state;
    char err[512];
    lg_policy_vm_t *vm = vm_from("local M = {NAME='t', VERSION='1.2.3'}\n"
                                 "function M.select(req, c) return {3, 1, 3} end\nreturn M\n",
                                 0, 0, err, sizeof(err));
    assert_non_null(vm);
    assert_true(lg_policy_exists(vm, "t"));
    assert_false(lg_policy_exists(vm, "nope"));
    uint32_t plan[8];
    size_t n;
    assert_int_equal(do_select(vm, &req0, plan, 8, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3); /* duplicates allowed: retry the same endpoint */
    assert_int_equal(plan[0], 3);
    assert_int_equal(plan[1], 1);
    assert_int_equal(plan[2], 3);
    /* truncated to plan_cap */
    assert_int_equal(do_select(vm, &req0, plan, 2, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    /* unknown policy name */
    assert_int_equal(lg_policy_select(vm, "nope", &req0, cands3, 3, plan, 8, &n, err, sizeof(err)), LG_EPOLICY);
    assert_non_null(strstr(err, "nope"));
    lg_policy_vm_destroy(vm);
}

static void expect_refused(const char *src, const char *needle)
{
    char err[512] = "";
    lg_policy_vm_t *vm = vm_from(src, 0, 0, err, sizeof(err));
    if (vm != NULL)
        fail_msg("policy was accepted: %s", src);
    const char *path = tmp_path;
    if (strstr(err, path) == NULL)
        fail_msg("message does not name the file %s: %s", path, err);
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("message lacks '%s': %s", needle, err);
}

static void test_vm_refuses_bad_files(void **state)
{
    (void)state;
    expect_refused("local M = {}\nfunction M.select( return M\n", NULL);                   /* syntax error */
    expect_refused("local M = {}\nreturn M\n", "select");                                  /* missing select */
    expect_refused("return {select = 1}\n", "select");                                     /* select not a function */
    expect_refused("return 42\n", "table");                                                /* not a table */
    expect_refused("return {select = function() end, on_error = 'x'}\n", "on_error");      /* bad hook */
    expect_refused("return {select = function() end, on_done = {}}\n", "on_done");         /* bad hook */
    expect_refused("return {select = function() end, VERSION = '1.0'}\n", "VERSION");      /* bad version */
    expect_refused("return {select = function() end, VERSION = 1}\n", "VERSION");          /* not a string */
    expect_refused("return {select = function() end, VERSION = '1.0.0-rc'}\n", "VERSION"); /* trailing junk */
    expect_refused("error('boom at load')\n", "boom at load");                             /* raises */
    expect_refused("os.execute('true')\nreturn {select = function() end}\n", "os");        /* sandbox at load */
    expect_refused("while true do end\n", "budget");                                       /* runaway at load */
    expect_refused("x = 1\nreturn {select = function() end}\n", "global");                 /* no globals */
    expect_refused("\033LJ\002\000binary", NULL);                                          /* bytecode refused */

    /* missing file and unknown shipped name */
    char err[512];
    lg_config_t conf;
    base_conf(&conf);
    lg_policy_conf_t pc = {.name = (char *)"gone", .path = (char *)"/nonexistent/gone.lua"};
    conf.policies = &pc;
    conf.num_policies = 1;
    conf.default_policy = pc.name;
    assert_null(lg_policy_vm_create(&conf, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/gone.lua"));
    conf.num_policies = 0;
    conf.default_policy = (char *)"no_such_shipped_policy";
    assert_null(lg_policy_vm_create(&conf, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "no_such_shipped_policy.lua"));
}

/* ---- sandbox ---- */

static void test_vm_sandbox(void **state)
{
    (void)state;
    static const char *const attempts[] = {
        "os.execute('touch /tmp/lg_policy_pwned')",
        "io.open('/etc/passwd')",
        "require('ffi')",
        "loadstring('return 1')()",
        "load('return 1')",
        "dofile('/etc/passwd')",
        "loadfile('/etc/passwd')",
        "debug.sethook()",
        "string.dump(function() end)",
        "local s = ''; local d = s.dump(function() end)",
        "ffi.cdef('int x;')",
        "jit.off()",
        "collectgarbage('stop')",
        "setfenv(1, {})",
        "getfenv(1)",
        "package.loaded.os.exit()",
        "_G.os.exit()",
        "getmetatable('').__index.dump(print)",
        "coroutine.create(print)",
        "newproxy(true)",
        "rawset(_G, 'x', 1)",
        "print('x')",
    };
    char src[512];
    char err[1024];
    for (size_t i = 0; i < sizeof(attempts) / sizeof(attempts[0]); ++i) {
        snprintf(src, sizeof(src), "local M = {}\nfunction M.select(req, c)\n %s\n return {1}\nend\nreturn M\n", attempts[i]);
        lg_policy_vm_t *vm = vm_from(src, 0, 0, err, sizeof(err));
        assert_non_null(vm);
        uint32_t plan[4];
        size_t n = 99;
        int rc = do_select(vm, &req0, plan, 4, &n, err, sizeof(err));
        if (rc != LG_EPOLICY)
            fail_msg("sandbox escape: %s (rc %d)", attempts[i], rc);
        assert_int_equal(n, 0);
        lg_policy_vm_destroy(vm);
    }
    assert_int_not_equal(access("/tmp/lg_policy_pwned", F_OK), 0);

    /* what is allowed works, and each policy has its own copies of the libraries */
    lg_policy_vm_t *vm = vm_from("local M = {}\n"
                                 "string.upper = nil -- patches only this policy's copy\n"
                                 "function M.select(req, c)\n"
                                 "  local t = {}\n"
                                 "  for _, x in ipairs(c) do table.insert(t, x.id) end\n"
                                 "  table.sort(t, function(a, b) return a > b end)\n"
                                 "  assert(select('#', unpack(t)) == 3 and type(next(c)) == 'number')\n"
                                 "  assert(('abc'):upper() == 'ABC' and tonumber('7') == 7 and tostring(1) == '1')\n"
                                 "  assert(math.floor(2.5) == 2 and string.format('%d', 3) == '3')\n"
                                 "  local ok, e = pcall(error, 'inner')\n"
                                 "  assert(not ok and e:find('inner'))\n"
                                 "  for k in pairs({a = 1}) do assert(k == 'a') end\n"
                                 "  return t\n"
                                 "end\nreturn M\n",
                                 0, 0, err, sizeof(err));
    if (vm == NULL)
        fail_msg("%s", err);
    uint32_t plan[4];
    size_t n;
    if (do_select(vm, &req0, plan, 4, &n, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(n, 3);
    assert_int_equal(plan[0], 3);
    lg_policy_vm_destroy(vm);
}

/* ---- garbage plans ---- */

static void test_vm_invalid_plans(void **state)
{
    (void)state;
    static const char *const rets[] = {"'1'",     "{999}",   "{}",   "nil",   "{0}",   "{1.5}", "{'1'}",
                                       "{1, {}}", "{a = 1}", "{-1}", "{0/0}", "{1/0}", "42",    "error('no plan')"};
    char src[256];
    char err[1024];
    for (size_t i = 0; i < sizeof(rets) / sizeof(rets[0]); ++i) {
        snprintf(src, sizeof(src), "return {select = function() return %s end}\n", rets[i]);
        lg_policy_vm_t *vm = vm_from(src, 0, 0, err, sizeof(err));
        assert_non_null(vm);
        uint32_t plan[4];
        size_t n = 7;
        int rc = do_select(vm, &req0, plan, 4, &n, err, sizeof(err));
        if (rc != LG_EPOLICY)
            fail_msg("garbage plan accepted: %s", rets[i]);
        assert_int_equal(n, 0);
        assert_non_null(strstr(err, "'t'")); /* names the policy */
        assert_int_equal(lg_policy_error_count(vm), 1);
        lg_policy_vm_destroy(vm);
    }
    /* an empty plan is fine when there are no candidates */
    lg_policy_vm_t *vm = vm_from("return {select = function() return {} end}\n", 0, 0, err, sizeof(err));
    uint32_t plan[4];
    size_t n;
    assert_int_equal(lg_policy_select(vm, "t", &req0, cands3, 0, plan, 4, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    lg_policy_vm_destroy(vm);
}

/* ---- runaway and memory ---- */

static void test_vm_runaway_loop(void **state)
{
    (void)state;
    char err[1024];
    /* production budget and JIT setting; the VM must survive for the next call */
    lg_policy_vm_t *vm = vm_from("local M = {}\n"
                                 "function M.select(req, c)\n"
                                 "  if req.model == 'loop' then while true do end end\n"
                                 "  if req.model == 'sneaky' then\n"
                                 "    while true do pcall(function() while true do end end) end\n"
                                 "  end\n"
                                 "  if req.model == 'calls' then\n"
                                 "    local function f(x) return x + 1 end\n"
                                 "    local i = 0 while true do i = f(i) end\n"
                                 "  end\n"
                                 "  return {2}\n"
                                 "end\nreturn M\n",
                                 0, 0, err, sizeof(err));
    assert_non_null(vm);
    static const char *const models[] = {"loop", "sneaky", "calls"};
    for (size_t i = 0; i < 3; ++i) {
        lg_policy_req_t req = req0;
        req.model = models[i];
        uint32_t plan[4];
        size_t n;
        double t0 = now_ms();
        assert_int_equal(do_select(vm, &req, plan, 4, &n, err, sizeof(err)), LG_EPOLICY);
        double dt = now_ms() - t0;
        assert_true(dt < 1000);
        assert_true(strstr(err, "budget") != NULL || strstr(err, "deadline") != NULL);
        assert_int_equal(do_select(vm, &req0, plan, 4, &n, err, sizeof(err)), 0);
        assert_int_equal(n, 1);
        assert_int_equal(plan[0], 2);
    }
    assert_int_equal(lg_policy_error_count(vm), 3);
    lg_policy_vm_destroy(vm);

    /* an enormous instruction budget still stops at the deadline */
    vm = vm_from("return {select = function() while true do end end}\n", 0, 4000000000u, err, sizeof(err));
    assert_non_null(vm);
    uint32_t plan[4];
    size_t n;
    double t0 = now_ms();
    assert_int_equal(do_select(vm, &req0, plan, 4, &n, err, sizeof(err)), LG_EPOLICY);
    assert_true(now_ms() - t0 < 1000);
    assert_non_null(strstr(err, "deadline"));
    lg_policy_vm_destroy(vm);
}

static void test_vm_memory_bomb(void **state)
{
    (void)state;
    char err[1024];
    lg_policy_vm_t *vm =
        vm_from("local M = {}\n"
                "function M.select(req, c)\n"
                "  if req.model == 'concat' then local s = 'x' while true do s = s .. s end end\n"
                "  if req.model == 'table' then local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 4096) .. i end end\n"
                "  if req.model == 'rep' then local s = string.rep('x', 2^30) return {#s} end\n"
                "  if req.model == 'caught' then\n"
                "    local ok = pcall(function() local s = 'x' while true do s = s .. s end end)\n"
                "    return {ok and 1 or 3}\n"
                "  end\n"
                "  return {1}\n"
                "end\nreturn M\n",
                4, 100000000, err, sizeof(err));
    assert_non_null(vm);
    static const char *const models[] = {"concat", "table", "rep", "caught"};
    for (size_t i = 0; i < 4; ++i) {
        lg_policy_req_t req = req0;
        req.model = models[i];
        uint32_t plan[4];
        size_t n;
        int rc = do_select(vm, &req, plan, 4, &n, err, sizeof(err));
        if (rc != LG_EPOLICY)
            fail_msg("memory bomb '%s' not stopped", models[i]);
        if (strstr(err, "memory") == NULL)
            fail_msg("%s: %s", models[i], err);
        assert_int_equal(do_select(vm, &req0, plan, 4, &n, err, sizeof(err)), 0);
        assert_int_equal(plan[0], 1);
    }
    lg_policy_vm_destroy(vm);
}

/* ---- marshalling ---- */

static void test_vm_request_fields(void **state)
{
    (void)state;
    char err[1024];
    lg_policy_vm_t *vm =
        vm_from("local M = {}\n"
                "function M.select(req, c)\n"
                "  assert(req.model == 'm/x', 'model')\n"
                "  assert(#req.models == 2 and req.models[2] == 'm/z', 'models')\n"
                "  assert(req.variant == 'nitro' and req.sort == 'throughput', 'variant/sort')\n"
                "  assert(req.provider.order[2] == 'beta' and req.provider.allow_fallbacks == false, 'provider')\n"
                "  assert(req.provider.max_price.prompt == 1.5, 'nested')\n"
                "  assert(req.stream == true and req.has_tools == false, 'flags')\n"
                "  assert(req.max_tokens == 100 and req.prompt_tokens == 12, 'tokens')\n"
                "  assert(req.key_id == 'k1' and req.session_id == nil, 'ids')\n"
                "  assert(req.headers['x-route-hint'] == 'cheap', 'headers')\n"
                "  local x = c[2]\n"
                "  assert(#c == 3 and x.id == 2 and x.provider == 'beta' and x.model == 'm/x', 'cand')\n"
                "  assert(x.upstream_model == 'x' and x.model_index == 0 and x.tier == 'standard', 'cand2')\n"
                "  assert(x.price.prompt == 2e-6 and x.price_prompt == 2e-6 and x.price.completion == 0, 'price')\n"
                "  assert(x.weight == 1 and x.healthy == true and x.outage_age_s == -1, 'health')\n"
                "  assert(x.latency_ms == 250 and x.ttft_ms == 80 and x.throughput_tps == 55, 'stats')\n"
                "  assert(x.error_rate == 0.25 and x.consecutive_failures == 2, 'errors')\n"
                "  assert(x.in_flight == 3 and x.queued == 1 and x.max_concurrent == 8 and x.context_length == 4096)\n"
                "  assert(c[3].healthy == false, 'unhealthy')\n"
                "  return {x.id}\n"
                "end\nreturn M\n",
                0, 0, err, sizeof(err));
    assert_non_null(vm);
    lg_candidate_t c[3];
    memcpy(c, cands3, sizeof(c));
    c[1].latency_ms = 250;
    c[1].ttft_ms = 80;
    c[1].throughput_tps = 55;
    c[1].error_rate = 0.25;
    c[1].consecutive_failures = 2;
    c[1].in_flight = 3;
    c[1].queued = 1;
    c[1].max_concurrent = 8;
    c[1].context_length = 4096;
    c[2].healthy = 0;
    json_error_t jerr;
    json_t *prov = json_loads("{\"order\":[\"alpha\",\"beta\"],\"allow_fallbacks\":false,"
                              "\"max_price\":{\"prompt\":1.5},\"ignore\":null}",
                              0, &jerr);
    assert_non_null(prov);
    static const char *const models[] = {"m/y", "m/z"};
    static const char *const hn[] = {"x-route-hint"}, *const hv[] = {"cheap"};
    lg_policy_req_t req = {.model = "m/x",
                           .models = models,
                           .num_models = 2,
                           .variant = "nitro",
                           .provider = prov,
                           .sort = "throughput",
                           .stream = 1,
                           .has_tools = 0,
                           .max_tokens = 100,
                           .prompt_tokens = 12,
                           .key_id = "k1",
                           .header_names = hn,
                           .header_values = hv,
                           .num_headers = 1};
    uint32_t plan[4];
    size_t n;
    int rc = lg_policy_select(vm, "t", &req, c, 3, plan, 4, &n, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(plan[0], 2);
    json_decref(prov);
    lg_policy_vm_destroy(vm);
}

static void test_vm_on_error_actions(void **state)
{
    (void)state;
    char err[1024];
    lg_policy_vm_t *vm = vm_from("local M = {}\n"
                                 "function M.select() return {1} end\n"
                                 "function M.on_error(req, attempt, e)\n"
                                 "  if attempt.n == 1 then return 'retry' end\n"
                                 "  if attempt.n == 2 then return 'next' end\n"
                                 "  if attempt.n == 3 then return 'stop' end\n"
                                 "  if attempt.n == 4 then return 42 end\n"
                                 "  if attempt.n == 5 then return 'again' end\n"
                                 "  if attempt.n == 6 then error('on_error bug') end\n"
                                 "  if attempt.n == 7 then while true do end end\n"
                                 "  assert(attempt.id == 2 and attempt.tries == 3, 'attempt')\n"
                                 "  assert(e.status == 429 and e.error_type == 'rate_limit_exceeded', 'err')\n"
                                 "  assert(e.retryable == true and e.retry_after_ms == 1500, 'retry')\n"
                                 "  assert(e.provider_code == 'slow_down' and req.model == 'm/x', 'code')\n"
                                 "  return 'retry'\n"
                                 "end\nreturn M\n",
                                 0, 0, err, sizeof(err));
    assert_non_null(vm);
    lg_policy_error_t e = {
        .status = 429, .error_type = "rate_limit_exceeded", .retryable = 1, .retry_after_ms = 1500, .provider_code = "slow_down"};
    lg_policy_error_t e_fatal = {
        .status = 400, .error_type = "invalid_request", .retryable = 0, .retry_after_ms = -1, .provider_code = ""};
    static const lg_policy_action_t expect_retryable[] = {LG_POLICY_RETRY, LG_POLICY_NEXT, LG_POLICY_STOP, LG_POLICY_NEXT,
                                                          LG_POLICY_NEXT,  LG_POLICY_NEXT, LG_POLICY_NEXT, LG_POLICY_RETRY};
    static const lg_policy_action_t expect_fatal[] = {LG_POLICY_RETRY, LG_POLICY_NEXT, LG_POLICY_STOP, LG_POLICY_STOP,
                                                      LG_POLICY_STOP,  LG_POLICY_STOP, LG_POLICY_STOP};
    for (uint32_t i = 0; i < 8; ++i) {
        lg_policy_attempt_t a = {.n = i + 1, .id = 2, .tries = 3};
        assert_int_equal(lg_policy_on_error(vm, "t", &req0, &a, &e), expect_retryable[i]);
        if (i < 7)
            assert_int_equal(lg_policy_on_error(vm, "t", &req0, &a, &e_fatal), expect_fatal[i]);
    }
    /* garbage (4, 5), error (6) and runaway (7) are policy errors, twice each */
    assert_int_equal(lg_policy_error_count(vm), 8);
    lg_policy_vm_destroy(vm);

    /* without on_error: OpenRouter defaults */
    vm = vm_from("return {select = function() return {1} end}\n", 0, 0, err, sizeof(err));
    lg_policy_attempt_t a = {.n = 1, .id = 1, .tries = 1};
    assert_int_equal(lg_policy_on_error(vm, "t", &req0, &a, &e), LG_POLICY_NEXT);
    assert_int_equal(lg_policy_on_error(vm, "t", &req0, &a, &e_fatal), LG_POLICY_STOP);
    assert_int_equal(lg_policy_on_error(vm, "missing", &req0, &a, &e), LG_POLICY_NEXT);
    assert_int_equal(lg_policy_error_count(vm), 0);
    lg_policy_vm_destroy(vm);
}

static void test_vm_on_done(void **state)
{
    (void)state;
    char err[1024];
    /* a deliberate per-worker cache in a module upvalue: on_done feeds what select reads */
    lg_policy_vm_t *vm = vm_from("local M = {}\n"
                                 "local done = 0\n"
                                 "function M.select() return {done + 1} end\n"
                                 "function M.on_done(req, r)\n"
                                 "  if r.ok and r.id == 1 and r.attempts == 2 and r.status == 200 and r.error_type == nil\n"
                                 "     and r.prompt_tokens == 10 and r.completion_tokens == 7 and r.ttft_ms == 12.5\n"
                                 "     and r.latency_ms == 99 then done = done + 1 return end\n"
                                 "  error('unexpected result')\n"
                                 "end\nreturn M\n",
                                 0, 0, err, sizeof(err));
    assert_non_null(vm);
    lg_policy_result_t r = {.ok = 1,
                            .id = 1,
                            .attempts = 2,
                            .status = 200,
                            .error_type = NULL,
                            .prompt_tokens = 10,
                            .completion_tokens = 7,
                            .ttft_ms = 12.5,
                            .latency_ms = 99};
    lg_policy_on_done(vm, "t", &req0, &r);
    lg_policy_on_done(vm, "t", &req0, &r);
    uint32_t plan[4];
    size_t n;
    assert_int_equal(do_select(vm, &req0, plan, 4, &n, err, sizeof(err)), 0);
    assert_int_equal(plan[0], 3);
    lg_policy_result_t bad = {.ok = 0, .status = 502, .error_type = "provider_unavailable"};
    lg_policy_on_done(vm, "t", &req0, &bad); /* raises: logged and counted, nothing else */
    assert_int_equal(lg_policy_error_count(vm), 1);
    lg_policy_on_done(vm, "missing", &req0, &r);
    lg_policy_vm_destroy(vm);
}

/* ---- lg module ---- */

static void test_vm_lg_module(void **state)
{
    (void)state;
    char err[1024];
    lg_config_t conf;
    base_conf(&conf);
    json_error_t jerr;
    json_t *settings = json_loads("{\"boost\":{\"alpha\":2},\"list\":[10,20,30],\"name\":\"x\"}", 0, &jerr);
    lg_policy_conf_t pc = {.name = (char *)"t",
                           .path =
                               (char *)write_tmp("local lg = lg\n"
                                                 "local M = {}\n"
                                                 "function M.select()\n"
                                                 "  assert(lg.conf.boost.alpha == 2 and lg.conf.name == 'x', 'conf')\n"
                                                 "  local sum = 0\n"
                                                 "  for _, v in ipairs(lg.conf.list) do sum = sum + v end\n"
                                                 "  assert(sum == 60 and lg.len(lg.conf.list) == 3, 'ipairs/len')\n"
                                                 "  local keys = 0\n"
                                                 "  for k, v in pairs(lg.conf) do keys = keys + 1 end\n"
                                                 "  assert(keys == 3, 'pairs')\n"
                                                 "  assert(not pcall(function() lg.conf.name = 'y' end), 'read-only')\n"
                                                 "  assert(not pcall(function() lg.conf.boost.beta = 1 end), 'read-only nested')\n"
                                                 "  assert(lg.conf.name == 'x')\n"
                                                 "  for _ = 1, 100 do\n"
                                                 "    local r = lg.random()\n"
                                                 "    assert(r >= 0 and r < 1, 'random')\n"
                                                 "    local k = lg.random(3)\n"
                                                 "    assert(k >= 1 and k <= 3 and k % 1 == 0, 'random(m)')\n"
                                                 "    local j = lg.random(5, 6)\n"
                                                 "    assert(j == 5 or j == 6, 'random(m, n)')\n"
                                                 "  end\n"
                                                 "  assert(lg.now_ms() > 1.6e12, 'now_ms')\n"
                                                 "  lg.log('info', 'hello from policy')\n"
                                                 "  return {1}\n"
                                                 "end\nreturn M\n"),
                           .settings = settings};
    conf.policies = &pc;
    conf.num_policies = 1;
    conf.default_policy = pc.name;
    lg_policy_vm_t *vm = lg_policy_vm_create(&conf, 7, err, sizeof(err));
    unlink(pc.path);
    json_decref(settings); /* the VM keeps no pointer into conf */
    assert_non_null(vm);
    uint32_t plan[4];
    size_t n;
    log_lines = 0;
    int rc = do_select(vm, &req0, plan, 4, &n, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(log_lines, 1);
    assert_non_null(strstr(last_log, "[t] hello from policy"));
    lg_policy_vm_destroy(vm);
}

static void test_vm_random_is_seeded(void **state)
{
    (void)state;
    char err[512];
    const char *src = "local lg = lg\nreturn {select = function(_, c) return {lg.random(#c), lg.random(#c),"
                      " lg.random(#c), lg.random(#c), lg.random(#c), lg.random(#c)} end}\n";
    uint32_t p1[6], p2[6];
    size_t n1, n2;
    lg_policy_vm_t *a = vm_from(src, 0, 0, err, sizeof(err));
    lg_policy_vm_t *b = vm_from(src, 0, 0, err, sizeof(err));
    for (int round = 0; round < 10; ++round) {
        assert_int_equal(do_select(a, &req0, p1, 6, &n1, err, sizeof(err)), 0);
        assert_int_equal(do_select(b, &req0, p2, 6, &n2, err, sizeof(err)), 0);
        assert_memory_equal(p1, p2, sizeof(p1));
    }
    lg_policy_vm_destroy(a);
    lg_policy_vm_destroy(b);
}

static void test_vm_error_log_rate_limited(void **state)
{
    (void)state;
    char err[512];
    lg_policy_vm_t *vm = vm_from("return {select = function() error('always') end}\n", 0, 0, err, sizeof(err));
    uint32_t plan[4];
    size_t n;
    log_lines = 0;
    for (int i = 0; i < 50; ++i)
        assert_int_equal(do_select(vm, &req0, plan, 4, &n, err, sizeof(err)), LG_EPOLICY);
    assert_int_equal(lg_policy_error_count(vm), 50);
    assert_int_equal(log_lines, 1);
    assert_non_null(strstr(last_log, "always"));
    assert_non_null(strstr(last_log, "[t]"));
    assert_non_null(strstr(err, "always"));
    lg_policy_vm_destroy(vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vm_loads_and_selects), cmocka_unit_test(test_vm_refuses_bad_files),
        cmocka_unit_test(test_vm_sandbox),           cmocka_unit_test(test_vm_invalid_plans),
        cmocka_unit_test(test_vm_runaway_loop),      cmocka_unit_test(test_vm_memory_bomb),
        cmocka_unit_test(test_vm_request_fields),    cmocka_unit_test(test_vm_on_error_actions),
        cmocka_unit_test(test_vm_on_done),           cmocka_unit_test(test_vm_lg_module),
        cmocka_unit_test(test_vm_random_is_seeded),  cmocka_unit_test(test_vm_error_log_rate_limited),
    };
    return cmocka_run_group_tests_name("policy_vm", tests, setup, teardown);
}
