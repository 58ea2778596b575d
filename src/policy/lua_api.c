/* SPDX-License-Identifier: MIT */
/*
 * The `lg` host module seen by routing policies (lg.random, lg.now_ms, lg.log, lg.len, lg.conf, and the candidate
 * helpers lg.stable, lg.stable_order, lg.group_by_model, lg.plan_by_model), the JSON -> Lua conversion
 * used for settings and request preferences, and the sandbox's pairs/ipairs/pcall replacements. Everything here runs
 * on the worker thread that owns the VM.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include "core/log.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "policy/lua_api.h"

uint64_t lg__policy_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- PRNG: xorshift128+, seeded through splitmix64 so nearby seeds diverge ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void lg__policy_rng_seed(struct lg_policy_vm *vm, uint64_t seed)
{
    uint64_t x = seed != 0 ? seed : 0x6C6C6D67617465ull; /* "llmgate" */
    vm->rng[0] = splitmix64(&x);
    vm->rng[1] = splitmix64(&x);
    if ((vm->rng[0] | vm->rng[1]) == 0)
        vm->rng[1] = 1;
}

static uint64_t rng_next(struct lg_policy_vm *vm)
{
    uint64_t s1 = vm->rng[0];
    const uint64_t s0 = vm->rng[1];
    vm->rng[0] = s0;
    s1 ^= s1 << 23;
    vm->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return vm->rng[1] + s0;
}

/* uniform double in [0,1) */
static double rng_double(struct lg_policy_vm *vm)
{
    return (double)(rng_next(vm) >> 11) * (1.0 / 9007199254740992.0); /* 53 bits -> [0,1) */
}

/* lg.random() -> [0,1); lg.random(m) -> integer in [1,m]; lg.random(m, n) -> integer in [m,n] (math.random rules) */
static int l_random(lua_State *L)
{
    struct lg_policy_vm *vm = lua_touserdata(L, lua_upvalueindex(1));
    double r = rng_double(vm);
    double lo, hi;
    switch (lua_gettop(L)) {
    case 0:
        lua_pushnumber(L, r);
        return 1;
    case 1:
        lo = 1;
        hi = floor(luaL_checknumber(L, 1));
        break;
    case 2:
        lo = floor(luaL_checknumber(L, 1));
        hi = floor(luaL_checknumber(L, 2));
        break;
    default:
        return luaL_error(L, "lg.random: wrong number of arguments");
    }
    luaL_argcheck(L, lo <= hi, lua_gettop(L), "interval is empty");
    lua_pushnumber(L, lo + floor(r * (hi - lo + 1)));
    return 1;
}

static int l_now_ms(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)lg_unix_ms());
    return 1;
}

/* lg.log(level, msg): level "error"|"err"|"warn"|"info"|"debug" (or LG_LOG_* number); the line names the policy. */
static _Atomic uint64_t log_lines_dropped; /* all workers: lg_policy_log_dropped_total */

uint64_t lg_policy_log_dropped_total(void)
{
    return atomic_load_explicit(&log_lines_dropped, memory_order_relaxed);
}

/*
 * Token bucket per policy (per worker): LG__POLICY_LOG_BURST lines at once, LG__POLICY_LOG_PER_SEC lines per second
 * after that. A dropped line is counted; the next line that passes says how many were dropped before it.
 */
static int log_admit(struct policy_entry *pe, uint64_t *dropped_before)
{
    uint64_t now = lg__policy_mono_ns() / 1000000u;
    if (pe->log_refill_ms == 0) {
        pe->log_tokens = LG__POLICY_LOG_BURST;
        pe->log_refill_ms = now;
    }
    uint64_t add = (now - pe->log_refill_ms) * LG__POLICY_LOG_PER_SEC / 1000u;
    if (add != 0) {
        pe->log_tokens = pe->log_tokens + add > LG__POLICY_LOG_BURST ? LG__POLICY_LOG_BURST : pe->log_tokens + add;
        pe->log_refill_ms = now;
    }
    if (pe->log_tokens == 0) {
        ++pe->log_dropped;
        atomic_fetch_add_explicit(&log_lines_dropped, 1, memory_order_relaxed);
        lg_metrics_policy_log_dropped(1);
        return 0;
    }
    --pe->log_tokens;
    *dropped_before = pe->log_dropped;
    pe->log_dropped = 0;
    return 1;
}

static int l_log(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    struct policy_entry *pe = lg__policy_find(lua_touserdata(L, lua_upvalueindex(2)), name);
    int level;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        level = (int)lua_tointeger(L, 1);
    } else {
        level = lg_log_level_parse(luaL_checkstring(L, 1));
        luaL_argcheck(L, level >= 0, 1, "expected \"error\", \"warn\", \"info\" or \"debug\"");
    }
    if (level < LG_LOG_ERR || level > LG_LOG_DEBUG)
        return luaL_argerror(L, 1, "level out of range");
    if (level > lg_log_level)
        return 0;
    const char *msg = lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER ? lua_tostring(L, 2) : luaL_typename(L, 2);
    uint64_t dropped = 0;
    if (pe != NULL && !log_admit(pe, &dropped))
        return 0;
    if (dropped != 0)
        lg_log_write(level, "policy", "[%s] %.1000s (%llu lg.log lines dropped before this one: rate limit)",
                     name != NULL ? name : "?", msg, (unsigned long long)dropped);
    else
        lg_log_write(level, "policy", "[%s] %.1000s", name != NULL ? name : "?", msg);
    return 0;
}

/* ---- JSON -> Lua ---- */

static void make_read_only(lua_State *L);

/* JSON -> Lua; with read_only, objects and arrays become read-only proxies (lg.conf). */
static void push_value(lua_State *L, const json_t *value, int depth, int read_only)
{
    if (depth > LG__POLICY_JSON_MAX_DEPTH)
        luaL_error(L, read_only ? "settings nested too deeply" : "JSON nested too deeply");
    luaL_checkstack(L, 6, read_only ? "lg.conf" : "JSON -> Lua");
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        lua_createtable(L, 0, (int)json_object_size(value));
        json_object_foreach((json_t *)value, key, v)
        {
            if (json_is_null(v))
                continue;
            lua_pushstring(L, key);
            push_value(L, v, depth + 1, read_only);
            lua_rawset(L, -3);
        }
        if (read_only)
            make_read_only(L);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        lua_createtable(L, (int)json_array_size(value), 0);
        json_array_foreach(value, i, v)
        {
            if (json_is_null(v))
                continue; /* leaves a hole, as nil would */
            push_value(L, v, depth + 1, read_only);
            lua_rawseti(L, -2, (int)i + 1);
        }
        if (read_only)
            make_read_only(L);
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        lua_pushnumber(L, (lua_Number)json_integer_value(value));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(value));
        break;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        break;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        break;
    default:
        lua_pushnil(L);
        break;
    }
}

void lg__policy_push_json(lua_State *L, const json_t *value, int depth)
{
    push_value(L, value, depth, 0);
}

/* ---- read-only proxies for lg.conf ---- */

static int ro_newindex(lua_State *L)
{
    return luaL_error(L, "lg.conf is read-only");
}

/* iterator of a proxy: next() over the real table (upvalue 1) */
static int ro_next(lua_State *L)
{
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1)))
        return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__index");
    lua_pushcclosure(L, ro_next, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

static int ro_len(lua_State *L)
{
    lua_getmetatable(L, 1);
    lua_getfield(L, -1, "__index");
    lua_pushinteger(L, (lua_Integer)lua_objlen(L, -1));
    return 1;
}

/* Turn the table on top of the stack into a read-only proxy (replacing it). */
static void make_read_only(lua_State *L)
{
    lua_newtable(L);          /* real proxy */
    lua_createtable(L, 0, 5); /* real proxy mt */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ro_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, ro_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_pushcfunction(L, ro_len);
    lua_setfield(L, -2, "__len"); /* honoured by LuaJIT only with Lua 5.2 compat; lg.len() always works */
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, -2);
}

void lg__policy_set_conf(lua_State *L, int lg_idx, const json_t *settings)
{
    lg_idx = lg_idx < 0 ? lua_gettop(L) + lg_idx + 1 : lg_idx;
    lua_getfield(L, lg_idx, "conf"); /* the proxy the policy may hold */
    if (!lua_getmetatable(L, -1))
        luaL_error(L, "lg.conf is not the host's proxy");
    push_value(L, settings, 0, 1); /* a new proxy; take its backing table */
    lua_getmetatable(L, -1);
    lua_getfield(L, -1, "__index");
    lua_setfield(L, -4, "__index"); /* old proxy's metatable now points at the new content */
    lua_pop(L, 4);
}

/* ---- Lua -> JSON (declarations such as SCHEMA) ---- */

static json_t *to_json(lua_State *L, int idx, const char *path, int depth, int max_depth, char *err, size_t errlen)
{
    char p[512];
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (d != d || d > 1e308 || d < -1e308) {
            snprintf(err, errlen, "%s: not a finite number", path);
            return NULL;
        }
        if (d == (double)(json_int_t)d && d > -9007199254740992.0 && d < 9007199254740992.0)
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        json_t *v = json_stringn(s, len);
        if (v == NULL)
            snprintf(err, errlen, "%s: not valid UTF-8", path);
        return v;
    }
    case LUA_TTABLE:
        break;
    default:
        snprintf(err, errlen, "%s: a %s cannot be declared here", path, lua_typename(L, lua_type(L, idx)));
        return NULL;
    }
    if (depth >= max_depth || !lua_checkstack(L, 4)) {
        snprintf(err, errlen, "%s: nested too deeply", path);
        return NULL;
    }
    size_t count = 0, strings = 0, n = lua_objlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        ++count;
        strings += lua_type(L, -2) == LUA_TSTRING;
        lua_pop(L, 1);
    }
    json_t *out;
    if (count != 0 && strings == 0 && n == count) {
        out = json_array();
        for (size_t i = 1; i <= n; ++i) {
            snprintf(p, sizeof(p), "%s[%zu]", path, i - 1);
            lua_rawgeti(L, idx, (int)i);
            json_t *v = to_json(L, lua_gettop(L), p, depth + 1, max_depth, err, errlen);
            lua_pop(L, 1);
            if (v == NULL) {
                json_decref(out);
                return NULL;
            }
            json_array_append_new(out, v);
        }
        return out;
    }
    if (strings != count) {
        snprintf(err, errlen, "%s: a table must be an array (keys 1..n) or have only string keys", path);
        return NULL;
    }
    out = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const char *key = lua_tostring(L, -2); /* a string key: no conversion that would confuse lua_next */
        snprintf(p, sizeof(p), "%s.%s", path, key);
        json_t *v = to_json(L, lua_gettop(L), p, depth + 1, max_depth, err, errlen);
        lua_pop(L, 1);
        if (v == NULL) {
            lua_pop(L, 1);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, key, v);
    }
    return out;
}

json_t *lg__policy_to_json(lua_State *L, int idx, const char *path, int max_depth, char *err, size_t errlen)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    return to_json(L, idx, path, 0, max_depth, err, errlen);
}

/* lg.len(t): length of a table or of a read-only proxy (lg.conf arrays), since `#` ignores __len in Lua 5.1 */
static int l_len(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (luaL_getmetafield(L, 1, "__len")) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)lua_objlen(L, 1));
    return 1;
}

/* ---- candidate helpers shared by the policies ---- */

#define STABLE_AFTER_S 30 /* OpenRouter's default routing: "stable" = no significant outage in the last 30 s */

/* c.healthy and no failure in the last 30 s (outage_age_s < 0 = none recorded); c is the table at idx (> 0) */
static int candidate_stable(lua_State *L, int idx)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int stable = 0;
    lua_getfield(L, idx, "healthy");
    if (lua_toboolean(L, -1)) {
        lua_getfield(L, idx, "outage_age_s");
        if (lua_type(L, -1) != LUA_TNUMBER)
            return luaL_error(L, "lg.stable: candidate outage_age_s is not a number");
        lua_Number age = lua_tonumber(L, -1);
        stable = age < 0 || age >= STABLE_AFTER_S;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return stable;
}

/* lg.stable(c) */
static int l_stable(lua_State *L)
{
    lua_pushboolean(L, candidate_stable(L, 1));
    return 1;
}

static lua_Number number_field(lua_State *L, int idx, const char *name)
{
    lua_getfield(L, idx, name);
    if (lua_type(L, -1) != LUA_TNUMBER)
        return luaL_error(L, "lg.stable_order: candidate %s is not a number", name);
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

static lua_Number key_of(lua_State *L, int idx)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TNUMBER)
        return luaL_error(L, "lg.stable_order: key function returned %s, not a number", luaL_typename(L, -1));
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return v;
}

/* the comparator lg.stable_order returns: stable first, then key ascending, then cheapest, then lower id */
static int l_stable_order_cmp(lua_State *L)
{
    int sa = candidate_stable(L, 1), sb = candidate_stable(L, 2);
    if (sa != sb) {
        lua_pushboolean(L, sa);
        return 1;
    }
    lua_Number ka = key_of(L, 1), kb = key_of(L, 2);
    if (ka != kb) {
        lua_pushboolean(L, ka < kb);
        return 1;
    }
    lua_Number pa = number_field(L, 1, "price_prompt") + number_field(L, 1, "price_completion");
    lua_Number pb = number_field(L, 2, "price_prompt") + number_field(L, 2, "price_completion");
    if (pa != pb) {
        lua_pushboolean(L, pa < pb);
        return 1;
    }
    lua_pushboolean(L, number_field(L, 1, "id") < number_field(L, 2, "id"));
    return 1;
}

/* lg.stable_order(key) -> cmp, the within-model order the shipped sorting policies share */
static int l_stable_order(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_pushcclosure(L, l_stable_order_cmp, 1);
    return 1;
}

/*
 * Pushes the candidates (argument 1, a table or read-only proxy) grouped by model_index: an array of arrays, groups in
 * ascending model_index (requested model first, then the models[] fallbacks), candidates in input order, each group
 * then sorted with table.sort (upvalue 1) and argument 2 when that is not nil.
 */
static void push_groups(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_newtable(L); /* 3: model_index -> group */
    lua_newtable(L); /* 4: model_index values, first seen first */
    int nkeys = 0;
    for (int i = 1;; ++i) {
        lua_pushinteger(L, i);
        lua_gettable(L, 1); /* not raw: proxies answer through __index */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        lua_getfield(L, -1, "model_index");
        if (lua_isnil(L, -1))
            luaL_error(L, "candidate %d has no model_index", i);
        lua_pushvalue(L, -1);
        lua_rawget(L, 3); /* c, k, group */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, 3);
            lua_pushvalue(L, -2);
            lua_rawseti(L, 4, ++nkeys);
        }
        int n = (int)lua_objlen(L, -1);
        lua_pushvalue(L, -3);
        lua_rawseti(L, -2, n + 1);
        lua_pop(L, 3);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 4);
    lua_call(L, 1, 0);
    lua_createtable(L, nkeys, 0); /* 5: the result */
    for (int j = 1; j <= nkeys; ++j) {
        lua_rawgeti(L, 4, j);
        lua_rawget(L, 3);
        if (!lua_isnil(L, 2)) {
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_pushvalue(L, -2);
            lua_pushvalue(L, 2);
            lua_call(L, 2, 0);
        }
        lua_rawseti(L, 5, j);
    }
}

/* lg.group_by_model(candidates [, cmp]) -> { {c, ...}, ... } */
static int l_group_by_model(lua_State *L)
{
    push_groups(L);
    return 1;
}

/* lg.plan_by_model(candidates [, cmp]) -> { id, ... }: the ids of lg.group_by_model(candidates, cmp), group after group */
static int l_plan_by_model(lua_State *L)
{
    push_groups(L);
    int groups = lua_gettop(L), ngroups = (int)lua_objlen(L, groups), n = 0;
    lua_newtable(L);
    for (int j = 1; j <= ngroups; ++j) {
        lua_rawgeti(L, groups, j);
        int size = (int)lua_objlen(L, -1);
        for (int i = 1; i <= size; ++i) {
            lua_rawgeti(L, -1, i);
            lua_getfield(L, -1, "id");
            lua_rawseti(L, groups + 1, ++n);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return 1;
}

void lg__policy_push_lg(lua_State *L, struct lg_policy_vm *vm, const char *policy_name, const json_t *settings)
{
    lua_createtable(L, 0, 10);
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, l_random, 1);
    lua_setfield(L, -2, "random");
    lua_pushcfunction(L, l_now_ms);
    lua_setfield(L, -2, "now_ms");
    lua_pushstring(L, policy_name);
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, l_log, 2);
    lua_setfield(L, -2, "log");
    lua_pushcfunction(L, l_len);
    lua_setfield(L, -2, "len");
    lua_pushcfunction(L, l_stable);
    lua_setfield(L, -2, "stable");
    lua_pushcfunction(L, l_stable_order);
    lua_setfield(L, -2, "stable_order");
    /* the real table.sort: policies only see private copies of the table library */
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_remove(L, -2);
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_group_by_model, 1);
    lua_setfield(L, -3, "group_by_model");
    lua_pushcclosure(L, l_plan_by_model, 1);
    lua_setfield(L, -2, "plan_by_model");
    if (settings != NULL && json_is_object(settings)) {
        push_value(L, settings, 0, 1);
    } else {
        lua_newtable(L);
        make_read_only(L);
    }
    lua_setfield(L, -2, "conf");
}

/* ---- sandbox replacements ---- */

/* pairs(t): Lua 5.2 semantics (__pairs) so read-only proxies iterate; plain tables get the builtin pairs (upvalue 1). */
int lg__policy_sandbox_pairs(lua_State *L)
{
    if (luaL_getmetafield(L, 1, "__pairs")) {
        lua_pushvalue(L, 1);
        lua_call(L, 1, 3);
        return 3;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
}

static int ro_ipairs_aux(lua_State *L)
{
    lua_Integer i = luaL_checkinteger(L, 2) + 1;
    lua_pushinteger(L, i);
    lua_pushinteger(L, i);
    lua_gettable(L, 1); /* not raw: goes through the proxy's __index */
    if (lua_isnil(L, -1))
        return 1;
    return 2;
}

/* ipairs(t): proxies iterate through __index; plain tables get the builtin ipairs (upvalue 1) and its fast iterator. */
int lg__policy_sandbox_ipairs(lua_State *L)
{
    if (lua_getmetatable(L, 1)) {
        lua_pop(L, 1);
        lua_pushcfunction(L, ro_ipairs_aux);
        lua_pushvalue(L, 1);
        lua_pushinteger(L, 0);
        return 3;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
}
