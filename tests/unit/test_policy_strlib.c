/* SPDX-License-Identifier: MIT */
/*
 * Bounded policy library (src/policy/strlib.c) and the allocation charge in vm.c: recursion from library functions
 * back into Lua is an ordinary policy error at select time and at load time, pattern bombs and big copies stop at the
 * budget, lg.log is rate-limited, and the replacement matcher answers exactly like LuaJIT's own (differential test).
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
#include <lauxlib.h>
#include <lualib.h>
#include "core/log.h"
#include "llmgate/error.h"
#include "policy/lua_api.h"
#include "policy/policy.h"

static int log_lines;
static char last_log[2048], first_log[2048];

static void capture_sink(int level, const char *module, const char *line)
{
    (void)level;
    (void)module;
    if (log_lines++ == 0)
        snprintf(first_log, sizeof(first_log), "%s", line);
    snprintf(last_log, sizeof(last_log), "%s", line);
}

static lg_policy_vm_t *vm_from(const char *src, char *err, size_t errlen)
{
    static lg_policy_conf_t pc;
    static char name[] = "t";
    char path[64];
    snprintf(path, sizeof(path), "/tmp/lg_strlib_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    lg_config_t conf;
    memset(&conf, 0, sizeof(conf));
    conf.policy_instruction_budget = 1000000; /* production defaults */
    conf.policy_memory_mb = 64;
    pc.name = name;
    pc.path = path;
    conf.policies = &pc;
    conf.num_policies = 1;
    conf.default_policy = name;
    lg_policy_vm_t *vm = lg_policy_vm_create(&conf, 42, err, errlen);
    unlink(path);
    return vm;
}

static lg_candidate_t cands[2];
static lg_policy_req_t req0;

static int setup(void **state)
{
    (void)state;
    lg_log_set_sink(capture_sink);
    lg_log_level = LG_LOG_DEBUG;
    static const char *const provs[] = {"alpha", "beta"};
    for (int i = 0; i < 2; ++i) {
        cands[i].id = (uint32_t)i + 1;
        cands[i].provider = provs[i];
        cands[i].model = "m";
        cands[i].upstream_model = "m";
        cands[i].weight = 1;
        cands[i].tier = "standard";
        cands[i].healthy = 1;
        cands[i].outage_age_s = -1;
    }
    req0.model = "m";
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_log_set_sink(NULL);
    return 0;
}

/* select on a policy whose select body is `body` (req.model picks the case) */
static int run_select(lg_policy_vm_t *vm, const char *model, char *err, size_t errlen)
{
    uint32_t plan[4];
    size_t n = 0;
    lg_policy_req_t req = req0;
    req.model = model;
    return lg_policy_select(vm, "t", &req, cands, 2, plan, 4, &n, err, errlen);
}

static void assert_vm_still_works(lg_policy_vm_t *vm)
{
    char err[512];
    assert_int_equal(run_select(vm, "ok", err, sizeof(err)), 0);
}

static const char *const BOMBS = "local M = {}\n"
                                 "local function gs(s) return (s:gsub('.', gs)) end\n"
                                 "local function srt() local t = {2, 1} table.sort(t, function(a, b) srt() return a < b end) end\n"
                                 "local function pc() pcall(pc) end\n"
                                 "function M.select(req, c)\n"
                                 "  local m = req.model\n"
                                 "  if m == 'gsub' then gs('a') end\n"
                                 "  if m == 'sort' then srt() end\n"
                                 "  if m == 'group' then\n"
                                 "    local function g() lg.group_by_model(c, function(a, b) g() return a.id < b.id end) end\n"
                                 "    g()\n"
                                 "  end\n"
                                 "  if m == 'pcall' then pc() end\n"
                                 "  if m == 'find150' then ('a'):rep(150):find('.-.-.-.-b') end\n"
                                 "  if m == 'find400' then ('a'):rep(400):match('.-.-.-.-.-b') end\n"
                                 "  if m == 'gmatch' then for _ in ('a'):rep(300):gmatch('.-.-.-.-b') do end end\n"
                                 "  if m == 'gsubpat' then ('a'):rep(300):gsub('.-.-.-.-b', 'x') end\n"
                                 "  if m == 'plain' then\n"
                                 "    local s = ('x'):rep(16 * 1024 * 1024)\n"
                                 "    while true do s:find('y', 1, true) end\n"
                                 "  end\n"
                                 "  if m == 'concat' then\n"
                                 "    local s = ('x'):rep(8 * 1024 * 1024)\n"
                                 "    local i = 0 while true do i = i + 1 local y = s .. i end\n"
                                 "  end\n"
                                 "  if m == 'tconcat' then\n"
                                 "    local t = {} for i = 1, 1000 do t[i] = ('y'):rep(4096) end\n"
                                 "    while true do local y = table.concat(t) end\n"
                                 "  end\n"
                                 "  if m == 'shift' then\n"
                                 "    local t = {} for i = 1, 200000 do t[i] = i end\n"
                                 "    while true do table.insert(t, 1, 0) table.remove(t, 1) end\n"
                                 "  end\n"
                                 "  if m == 'bigsort' then\n"
                                 "    local t = {} for i = 1, 200000 do t[i] = -i end\n"
                                 "    while true do table.sort(t) end\n"
                                 "  end\n"
                                 "  return {1}\n"
                                 "end\n"
                                 "return M\n";

/* The crash: gsub (and sort, pcall) calling back into the policy recursively overflowed the C stack. */
static void test_strlib_recursion_through_c_is_a_policy_error(void **state)
{
    (void)state;
    char err[1024];
    lg_policy_vm_t *vm = vm_from(BOMBS, err, sizeof(err));
    assert_non_null(vm);
    static const char *const cases[] = {"gsub", "sort", "group"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        assert_int_equal(run_select(vm, cases[i], err, sizeof(err)), LG_EPOLICY);
        assert_non_null(strstr(err, "C stack depth limit"));
        assert_vm_still_works(vm);
    }
    /* pcall swallows the depth error at the innermost level: the policy carries on and returns its plan */
    assert_int_equal(run_select(vm, "pcall", err, sizeof(err)), 0);
    lg_policy_vm_destroy(vm);
}

/* Same at load time (--check-config, SIGHUP): the file is refused with a message, the process lives. */
static void test_strlib_recursion_at_load_refuses_the_file(void **state)
{
    (void)state;
    char err[1024];
    lg_policy_vm_t *vm = vm_from("local function f(s) return (s:gsub('.', f)) end f('a')\n"
                                 "return {select = function() return {1} end}\n",
                                 err, sizeof(err));
    assert_null(vm);
    assert_non_null(strstr(err, "C stack depth limit"));
    assert_non_null(strstr(err, "policy 't'"));
}

/* Library calls obey the instruction budget and deadline: each of these ran for seconds to minutes before. */
static void test_strlib_library_calls_obey_the_budget(void **state)
{
    (void)state;
    char err[1024];
    lg_policy_vm_t *vm = vm_from(BOMBS, err, sizeof(err));
    assert_non_null(vm);
    static const char *const cases[] = {"find150", "find400", "gmatch", "gsubpat", "plain",
                                        "concat",  "tconcat", "shift",  "bigsort"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        assert_int_equal(run_select(vm, cases[i], err, sizeof(err)), LG_EPOLICY);
        if (strstr(err, "budget") == NULL && strstr(err, "deadline") == NULL && strstr(err, "memory cap") == NULL)
            fail_msg("%s: %s", cases[i], err);
        assert_vm_still_works(vm);
    }
    lg_policy_vm_destroy(vm);
}

static void test_strlib_lg_log_is_rate_limited(void **state)
{
    (void)state;
    char err[512];
    lg_policy_vm_t *vm = vm_from(
        "return {select = function() for i = 1, 10000 do lg.log('info', 'line ' .. i) end return {1} end}\n", err, sizeof(err));
    assert_non_null(vm);
    uint64_t dropped0 = lg_policy_log_dropped_total();
    log_lines = 0;
    assert_int_equal(run_select(vm, "m", err, sizeof(err)), 0);
    assert_true(log_lines >= LG__POLICY_LOG_BURST);
    assert_true(log_lines <= LG__POLICY_LOG_BURST + 20); /* refill during the loop is at most a few lines */
    assert_true(lg_policy_log_dropped_total() - dropped0 >= 10000 - (uint64_t)log_lines);
    lg_policy_vm_destroy(vm);
    /* after a pause, the first line that passes says how many were dropped before it */
    vm = vm_from("return {select = function() for i = 1, 100 do lg.log('warn', 'x' .. i) end return {1} end}\n", err, sizeof(err));
    assert_non_null(vm);
    assert_int_equal(run_select(vm, "m", err, sizeof(err)), 0);
    usleep(300 * 1000); /* at least 3 tokens come back */
    log_lines = 0;
    assert_int_equal(run_select(vm, "m", err, sizeof(err)), 0);
    assert_true(log_lines >= 1 && log_lines < 100);
    assert_non_null(strstr(first_log, "lg.log lines dropped before this one"));
    assert_non_null(strstr(first_log, "[t] x1 "));
    lg_policy_vm_destroy(vm);
}

/* ---- differential: the replacement matcher against LuaJIT's own ---- */

static const char *const DIFF_DRIVER =
    "local subjects, patterns, repls = ...\n"
    "local out = {}\n"
    "local function ser(ok, ...)\n"
    "  local t = {ok and 'ok' or 'err'}\n"
    "  if ok then for i = 1, select('#', ...) do t[#t + 1] = (tostring((select(i, ...))):gsub('%z', '\\\\0')) end end\n"
    "  return table.concat(t, '|')\n"
    "end\n"
    "for _, s in ipairs(subjects) do\n"
    "  for _, p in ipairs(patterns) do\n"
    "    out[#out + 1] = ser(pcall(string.find, s, p))\n"
    "    out[#out + 1] = ser(pcall(string.find, s, p, 3))\n"
    "    out[#out + 1] = ser(pcall(string.find, s, p, -2))\n"
    "    out[#out + 1] = ser(pcall(string.find, s, p, 1, true))\n"
    "    out[#out + 1] = ser(pcall(string.match, s, p))\n"
    "    out[#out + 1] = ser(pcall(string.match, s, p, 2))\n"
    "    out[#out + 1] = ser(pcall(function() local r = {} for a, b in s:gmatch(p) do r[#r + 1] = tostring(a) .. ',' .. "
    "tostring(b) end return table.concat(r, ';') end))\n"
    "    for _, r in ipairs(repls) do\n"
    "      out[#out + 1] = ser(pcall(string.gsub, s, p, r))\n"
    "      out[#out + 1] = ser(pcall(string.gsub, s, p, r, 1))\n"
    "    end\n"
    "    out[#out + 1] = ser(pcall(string.gsub, s, p, function(a) return '<' .. tostring(a) .. '>' end))\n"
    "    out[#out + 1] = ser(pcall(string.gsub, s, p, {hello = 'HI', a = false, l = 7}))\n"
    "  end\n"
    "end\n"
    "return table.concat(out, '\\n')\n";

static char *run_diff(int bounded)
{
    static const char *const subjects[] = {"",
                                           "hello world",
                                           "aaa",
                                           "key=value; k2 = v2",
                                           "(foo(bar))baz",
                                           "THE (quick) fox",
                                           "a.b-c+d*e?f",
                                           "  trim me  ",
                                           "abc\0def",
                                           "x1y22z333",
                                           "\xe4\xb8\xad\xe6\x96\x87 utf8"};
    static const size_t subject_len[] = {0, 11, 3, 18, 13, 15, 11, 11, 7, 9, 12};
    static const char *const patterns[] = {
        "",      "o",           "l+",          "l*",     "l-",        "l?o",    "^h",     "d$",   "^$",      ".",      "%a+",
        "%d+",   "(%w+)=(%w+)", "%s*(.-)%s*$", "%b()",   "%f[%w]%w+", "[a-c]+", "[^%s]+", "[%]]", "(a)(b)?", "()ll()", "(h)(e)%2",
        "(l)%1", "%",           "[a",          "(()",    "%b",        "%f",     "a)",     "%1",   "[%a-z]",  "[]]",    "%z",
        "\0",    "c%zd",        ".-b",         "(.-)%)", "%u%l*",     "%x+",    "%p",     "[.-]", "a-?"};
    static const char *const repls[] = {"[%0]", "%1-%1", "%%", "x%", "%2", "%a", ""};
    lua_State *L = luaL_newstate();
    assert_non_null(L);
    luaL_openlibs(L);
    static struct lg_policy_vm dummy; /* not running: charges are no-ops, only the depth guard is live */
    memset(&dummy, 0, sizeof(dummy));
    if (bounded)
        lg__policy_install_bounded_libs(L, &dummy);
    assert_int_equal(luaL_loadstring(L, DIFF_DRIVER), 0);
    lua_newtable(L);
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); ++i) {
        lua_pushlstring(L, subjects[i], subject_len[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_newtable(L);
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); ++i) {
        lua_pushlstring(L, patterns[i], patterns[i][0] == '\0' && i == 33 ? 1 : strlen(patterns[i]));
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_newtable(L);
    for (size_t i = 0; i < sizeof(repls) / sizeof(repls[0]); ++i) {
        lua_pushstring(L, repls[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    if (lua_pcall(L, 3, 1, 0) != 0)
        fail_msg("driver failed: %s", lua_tostring(L, -1));
    char *out = strdup(lua_tostring(L, -1));
    lua_close(L);
    return out;
}

static void test_strlib_matches_luajit_exactly(void **state)
{
    (void)state;
    char *ref = run_diff(0), *ours = run_diff(1);
    if (strcmp(ref, ours) != 0) {
        /* name the first differing line */
        const char *a = ref, *b = ours;
        int line = 1;
        while (*a != '\0' && *a == *b) {
            if (*a == '\n')
                ++line;
            ++a;
            ++b;
        }
        const char *la = a, *lb = b;
        while (la > ref && la[-1] != '\n')
            --la;
        while (lb > ours && lb[-1] != '\n')
            --lb;
        fail_msg("line %d differs:\n luajit: %.*s\n    ours: %.*s", line, (int)strcspn(la, "\n"), la, (int)strcspn(lb, "\n"), lb);
    }
    free(ref);
    free(ours);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strlib_recursion_through_c_is_a_policy_error),
        cmocka_unit_test(test_strlib_recursion_at_load_refuses_the_file),
        cmocka_unit_test(test_strlib_library_calls_obey_the_budget),
        cmocka_unit_test(test_strlib_lg_log_is_rate_limited),
        cmocka_unit_test(test_strlib_matches_luajit_exactly),
    };
    return cmocka_run_group_tests_name("policy_strlib", tests, setup, teardown);
}
