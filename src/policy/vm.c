/* SPDX-License-Identifier: MIT */
/*
 * Policy VM: one LuaJIT state per worker with the JIT off (count hooks do not fire inside traces), a capped
 * allocator, an instruction budget plus a 50 ms (CPU time) deadline enforced by a count hook, and one sandboxed environment
 * per policy file. Loading refuses syntax errors, bytecode, a missing `select`, non-function hooks and a bad VERSION.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>
#include <luajit.h>
#include "core/log.h"
#include "core/util.h"
#include "policy/lua_api.h"
#include "policy/schema.h"

#define POLICY_MAX_FILE_BYTES (1u << 20)

static char vm_key;       /* registry key of the light userdata pointing at the VM (hook lookup when the allocator isn't ours) */
static char template_key; /* registry key of the sandbox template table */

static int charge_alloc(struct lg_policy_vm *vm, size_t bytes);

/* ---- allocator with a cap ---- */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct lg_policy_vm *vm = ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        vm->mem_used -= old;
        return NULL;
    }
    /* the cap only binds while policy code (or marshalling for it) runs: host setup and unwinding never fail on it */
    if (nsize > old && vm->running && vm->mem_cap != 0 && vm->mem_used + (nsize - old) > vm->mem_cap) {
        vm->killed = LG__POLICY_KILL_MEMORY;
        return NULL;
    }
    /* Library functions copy bytes outside the count hook (`s .. s`, string.rep, table.concat): charge what they
     * allocate to the budget, and look at the deadline every few hundred KiB. Failing the allocation makes LuaJIT
     * raise a memory error, which the runner reports with the kill reason. */
    if (nsize > old && vm->running && charge_alloc(vm, nsize - old) != 0)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p == NULL)
        return NULL;
    vm->mem_used = vm->mem_used - old + nsize;
    return p;
}

static struct lg_policy_vm *vm_of(lua_State *L)
{
    void *ud;
    if (lua_getallocf(L, &ud) == vm_alloc)
        return ud;
    lua_pushlightuserdata(L, &vm_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    struct lg_policy_vm *vm = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return vm;
}

/* ---- budget ---- */

const char *lg__policy_kill_reason(const struct lg_policy_vm *vm)
{
    switch (vm->killed) {
    case LG__POLICY_KILL_BUDGET:
        return "instruction budget exceeded";
    case LG__POLICY_KILL_DEADLINE:
        return "deadline exceeded (50 ms of CPU time)";
    case LG__POLICY_KILL_MEMORY:
        return "memory cap exceeded";
    default:
        return NULL;
    }
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The wall clock passed the deadline: confirm with this thread's CPU time, so a worker that was merely preempted on
 * a loaded machine is not blamed. If it was preemption, move the wall deadline by the CPU time still allowed.
 */
static int deadline_passed(struct lg_policy_vm *vm)
{
    uint64_t limit = (uint64_t)vm->deadline_ms * 1000000u, used = thread_cpu_ns() - vm->cpu_start_ns;
    if (used >= limit)
        return 1;
    vm->deadline_ns = lg__policy_mono_ns() + (limit - used);
    return 0;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct lg_policy_vm *vm = vm_of(L);
    if (vm == NULL || !vm->running)
        return;
    vm->instr += LG__POLICY_HOOK_EVERY;
    if (!vm->killed) {
        if (vm->instr > vm->budget)
            vm->killed = LG__POLICY_KILL_BUDGET;
        else if (lg__policy_mono_ns() > vm->deadline_ns && deadline_passed(vm))
            vm->killed = LG__POLICY_KILL_DEADLINE;
    }
    /* once killed, every hook re-raises: the error cannot be swallowed for long */
    if (vm->killed)
        luaL_error(L, "%s", lg__policy_kill_reason(vm));
}

static int charge_alloc(struct lg_policy_vm *vm, size_t bytes)
{
    if (vm->killed)
        return -1;
    vm->instr += bytes / LG__POLICY_ALLOC_BYTES_PER_INSN;
    vm->alloc_unchecked += bytes;
    if (vm->instr > vm->budget)
        vm->killed = LG__POLICY_KILL_BUDGET;
    else if (vm->alloc_unchecked >= LG__POLICY_ALLOC_CHECK_BYTES) {
        vm->alloc_unchecked = 0;
        if (lg__policy_mono_ns() > vm->deadline_ns && deadline_passed(vm))
            vm->killed = LG__POLICY_KILL_DEADLINE;
    }
    return vm->killed ? -1 : 0;
}

void lg__policy_charge(lua_State *L, struct lg_policy_vm *vm, uint64_t n)
{
    if (vm == NULL || !vm->running)
        return;
    vm->instr += n;
    if (!vm->killed) {
        if (vm->instr > vm->budget)
            vm->killed = LG__POLICY_KILL_BUDGET;
        else if (lg__policy_mono_ns() > vm->deadline_ns && deadline_passed(vm))
            vm->killed = LG__POLICY_KILL_DEADLINE;
    }
    if (vm->killed)
        luaL_error(L, "%s", lg__policy_kill_reason(vm));
}

void lg__policy_arm(struct lg_policy_vm *vm)
{
    vm->instr = 0;
    vm->c_depth = 0;
    vm->alloc_unchecked = 0;
    vm->killed = 0;
    vm->deadline_ns = lg__policy_mono_ns() + (uint64_t)vm->deadline_ms * 1000000u;
    vm->cpu_start_ns = thread_cpu_ns();
    vm->running = 1;
}

void lg__policy_disarm(struct lg_policy_vm *vm)
{
    vm->running = 0;
    if (!vm->custom_alloc && vm->mem_cap != 0 && (size_t)lua_gc(vm->L, LUA_GCCOUNT, 0) * 1024u > vm->mem_cap) {
        lua_gc(vm->L, LUA_GCCOLLECT, 0);
        if ((size_t)lua_gc(vm->L, LUA_GCCOUNT, 0) * 1024u > vm->mem_cap)
            vm->killed = LG__POLICY_KILL_MEMORY;
    }
    if (vm->killed)
        lua_gc(vm->L, LUA_GCCOLLECT, 0); /* give a bomb's garbage back before the next request */
}

/* ---- errors ---- */

void lg__policy_report(struct lg_policy_vm *vm, struct policy_entry *pe, const char *hook, const char *msg)
{
    ++vm->errors;
    uint64_t now = lg__policy_mono_ns() / 1000000u;
    if (pe == NULL) {
        LG_LOG(LG_LOG_WARN, "policy", "%s: %s", hook, msg);
        return;
    }
    if (pe->last_log_ms != 0 && now - pe->last_log_ms < 1000) {
        ++pe->suppressed;
        return;
    }
    if (pe->suppressed != 0)
        LG_LOG(LG_LOG_WARN, "policy", "[%s] %s failed: %s (%llu more errors since the last line)", pe->name, hook, msg,
               (unsigned long long)pe->suppressed);
    else
        LG_LOG(LG_LOG_WARN, "policy", "[%s] %s failed: %s", pe->name, hook, msg);
    pe->last_log_ms = now != 0 ? now : 1;
    pe->suppressed = 0;
}

/* message handler: error text + traceback (kept short: the log line is bounded anyway) */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    lg_log_write(LG_LOG_ERR, "policy", "unprotected Lua error: %s", msg != NULL ? msg : "?");
    abort();
}

/* ---- sandbox ---- */

static int strict_index(lua_State *L)
{
    return luaL_error(L, "undefined global '%s' (not available to policies)", luaL_optstring(L, 2, "?"));
}

static int strict_newindex(lua_State *L)
{
    return luaL_error(L, "assignment to global '%s' (policies must use locals)", luaL_optstring(L, 2, "?"));
}

static void open_lib(lua_State *L, const char *name, lua_CFunction fn)
{
    lua_pushcfunction(L, fn);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

/* shallow copy of the table at idx (each policy gets its own string/table/math, so it cannot patch another's) */
static void push_copy(lua_State *L, int idx)
{
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

/* Runs protected at creation: libraries, string.dump removal, the template of allowed globals. */
static int setup_state(lua_State *L)
{
    struct lg_policy_vm *vm = lua_touserdata(L, 1);
    static const char *const plain[] = {"next", "type", "tostring", "tonumber", "select", "error", "assert", "unpack"};

    open_lib(L, "", luaopen_base);
    open_lib(L, LUA_TABLIBNAME, luaopen_table);
    open_lib(L, LUA_STRLIBNAME, luaopen_string);
    open_lib(L, LUA_MATHLIBNAME, luaopen_math);
    /* strings share the real string table as metatable __index: remove dump there, not only in the sandbox copy */
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lg__policy_install_bounded_libs(L, vm);

    lua_pushlightuserdata(L, &vm_key);
    lua_pushlightuserdata(L, vm);
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushlightuserdata(L, &template_key);
    lua_createtable(L, 0, 16);
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); ++i) {
        lua_getglobal(L, plain[i]);
        if (lua_isnil(L, -1))
            return luaL_error(L, "base library lacks %s", plain[i]);
        lua_setfield(L, -2, plain[i]);
    }
    lua_getglobal(L, "pairs");
    lua_pushcclosure(L, lg__policy_sandbox_pairs, 1);
    lua_setfield(L, -2, "pairs");
    lua_getglobal(L, "ipairs");
    lua_pushcclosure(L, lg__policy_sandbox_ipairs, 1);
    lua_setfield(L, -2, "ipairs");
    lua_pushlightuserdata(L, vm);
    lua_pushcclosure(L, lg__policy_sandbox_pcall, 1);
    lua_setfield(L, -2, "pcall");
    lua_rawset(L, LUA_REGISTRYINDEX);

    lua_pushcfunction(L, traceback);
    vm->ref_traceback = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* Push a fresh environment for one policy: the allowed globals, private library copies, lg, strict metatable. */
static void push_env(lua_State *L, struct lg_policy_vm *vm, const char *name, const json_t *settings)
{
    static const char *const libs[] = {"string", "table", "math"};
    lua_createtable(L, 0, 20);
    int env = lua_gettop(L);
    lua_pushlightuserdata(L, &template_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, env);
    }
    lua_pop(L, 1);
    for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); ++i) {
        lua_getglobal(L, libs[i]);
        push_copy(L, lua_gettop(L));
        lua_setfield(L, env, libs[i]);
        lua_pop(L, 1);
    }
    lg__policy_push_lg(L, vm, name, settings);
    lua_setfield(L, env, "lg");
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, strict_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, strict_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, env);
}

/* ---- loading ---- */

struct load_args {
    struct lg_policy_vm *vm;
    struct policy_entry *pe;
    const char *text;
    size_t len;
    const json_t *settings;
    json_t *schema; /* SCHEMA as JSON and the settings checked against it: owned here, freed by add_policy */
    json_t *filled;
};

static int valid_version(const char *v)
{
    /* "x.y.z", each a non-empty run of digits */
    for (int part = 0; part < 3; ++part) {
        if (*v < '0' || *v > '9')
            return 0;
        while (*v >= '0' && *v <= '9')
            ++v;
        if (part < 2 && *v++ != '.')
            return 0;
    }
    return *v == '\0';
}

/*
 * The module's SCHEMA (optional): check it, check the config's settings against it and fill the defaults into the
 * lg.conf proxy, so every hook sees validated settings. Stack: 2 = module table, 3 = its environment. Without a
 * SCHEMA the settings stay as given (free-form).
 */
static int apply_schema(lua_State *L, struct load_args *a)
{
    struct policy_entry *pe = a->pe;
    char why[512], path[300];
    lua_getfield(L, 2, "SCHEMA");
    if (lua_isnil(L, -1))
        return 0;
    if (!lua_istable(L, -1))
        return luaL_error(L, "policy '%s': %s: SCHEMA must be a table (got %s)", pe->name, pe->path, luaL_typename(L, -1));
    a->schema = lg__policy_to_json(L, -1, "SCHEMA", 2 * LG__POLICY_SCHEMA_MAX_DEPTH + 2, why, sizeof(why));
    if (a->schema == NULL || lg__policy_schema_check(a->schema, why, sizeof(why)) != 0)
        return luaL_error(L, "policy '%s': %s: invalid %s", pe->name, pe->path, why);
    snprintf(path, sizeof(path), "policies.%s.settings", pe->name);
    if (lg__policy_schema_apply(a->schema, a->settings, path, &a->filled, why, sizeof(why)) != 0)
        return luaL_error(L, "%s", why);
    lua_getfield(L, 3, "lg");
    lg__policy_set_conf(L, -1, a->filled);
    lua_pop(L, 2);
    return 0;
}

/* Runs inside lua_cpcall; raises with a message naming the file on any refusal. */
static int load_policy(lua_State *L)
{
    struct load_args *a = lua_touserdata(L, 1);
    struct policy_entry *pe = a->pe;
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->vm->ref_traceback); /* 1 */
    /* text only ("t"): precompiled bytecode can break out of any sandbox */
    lua_pushfstring(L, "@%s", pe->path);
    int st = luaL_loadbufferx(L, a->text, a->len, lua_tostring(L, -1), "t");
    lua_remove(L, 2);
    if (st != 0)
        return luaL_error(L, "policy '%s': cannot load %s: %s", pe->name, pe->path, lua_tostring(L, -1));
    push_env(L, a->vm, pe->name, a->settings);
    lua_pushvalue(L, -1);
    lua_setfenv(L, 2);
    lua_insert(L, 2); /* 1 traceback, 2 env (kept for lg.conf), 3 chunk */
    lg__policy_arm(a->vm);
    st = lua_pcall(L, 0, 1, 1);
    lg__policy_disarm(a->vm);
    lua_insert(L, 2); /* 1 traceback, 2 result, 3 env */
    if (st != 0) {
        const char *why = lg__policy_kill_reason(a->vm);
        return luaL_error(L, "policy '%s': %s failed while loading: %s", pe->name, pe->path,
                          why != NULL ? why : lua_tostring(L, 2));
    }
    if (!lua_istable(L, 2))
        return luaL_error(L, "policy '%s': %s must return a table (got %s)", pe->name, pe->path, luaL_typename(L, 2));
    lua_getfield(L, 2, "select");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "policy '%s': %s: `select` must be a function (got %s)", pe->name, pe->path, luaL_typename(L, -1));
    pe->ref_select = luaL_ref(L, LUA_REGISTRYINDEX);
    static const char *const hooks[] = {"on_error", "on_done"};
    int *refs[] = {&pe->ref_on_error, &pe->ref_on_done};
    for (int i = 0; i < 2; ++i) {
        lua_getfield(L, 2, hooks[i]);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
        } else if (!lua_isfunction(L, -1)) {
            return luaL_error(L, "policy '%s': %s: `%s` must be a function when present (got %s)", pe->name, pe->path, hooks[i],
                              luaL_typename(L, -1));
        } else {
            *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
        }
    }
    lua_getfield(L, 2, "VERSION");
    if (!lua_isnil(L, -1) && (lua_type(L, -1) != LUA_TSTRING || !valid_version(lua_tostring(L, -1))))
        return luaL_error(L, "policy '%s': %s: VERSION must be a string \"x.y.z\"", pe->name, pe->path);
    return apply_schema(L, a);
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen, const char *name)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "policy '%s': cannot open %s: %s", name, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(POLICY_MAX_FILE_BYTES + 1);
    size_t n = buf != NULL ? fread(buf, 1, POLICY_MAX_FILE_BYTES + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n > POLICY_MAX_FILE_BYTES;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "policy '%s': cannot read %s (error or larger than %u bytes)", name, path, POLICY_MAX_FILE_BYTES);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int try_dir(const char *dir, const char *name, char *out, size_t outlen)
{
    if (dir == NULL || *dir == '\0')
        return 0;
    int n = snprintf(out, outlen, "%s/%s.lua", dir, name);
    return n > 0 && (size_t)n < outlen && access(out, R_OK) == 0;
}

/*
 * Shipped policy lookup: $LLMGATE_POLICY_DIR, <exe dir>/policies and <exe dir>/../policies (build tree),
 * $LLMGATE_SOURCE_DIR/policies (ctest), then the install prefix. Names are plain identifiers.
 */
static int find_shipped(const char *name, char *out, size_t outlen, char *err, size_t errlen)
{
    for (const char *p = name; *p != '\0'; ++p) {
        if (!(*p == '_' || *p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
            snprintf(err, errlen, "policy '%s': not a shipped policy name and no path given", name);
            return -1;
        }
    }
    if (*name == '\0') {
        snprintf(err, errlen, "policy with an empty name");
        return -1;
    }
    if (try_dir(getenv("LLMGATE_POLICY_DIR"), name, out, outlen))
        return 0;
    char exe[PATH_MAX];
    if (lg_exe_dir(exe, sizeof(exe)) == 0) {
        char dir[PATH_MAX + 16];
        snprintf(dir, sizeof(dir), "%s/policies", exe);
        if (try_dir(dir, name, out, outlen))
            return 0;
        snprintf(dir, sizeof(dir), "%s/../policies", exe); /* build tree: tests/ next to policies/ */
        if (try_dir(dir, name, out, outlen))
            return 0;
    }
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    if (src != NULL && *src != '\0') {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/policies", src);
        if (try_dir(dir, name, out, outlen))
            return 0;
    }
#ifdef LG_INSTALL_POLICY_DIR
    if (try_dir(LG_INSTALL_POLICY_DIR, name, out, outlen))
        return 0;
#endif
    snprintf(err, errlen,
             "policy '%s': shipped file %s.lua not found (searched $LLMGATE_POLICY_DIR, <exe dir>/policies, <exe dir>/../policies, "
             "$LLMGATE_SOURCE_DIR/policies"
#ifdef LG_INSTALL_POLICY_DIR
             ", " LG_INSTALL_POLICY_DIR
#endif
             ")",
             name, name);
    return -1;
}

static int add_policy(struct lg_policy_vm *vm, const char *name, const char *path, const char *base_dir, const json_t *settings,
                      char *err, size_t errlen)
{
    char resolved[PATH_MAX + 256];
    if (path == NULL) {
        if (find_shipped(name, resolved, sizeof(resolved), err, errlen) != 0)
            return -1;
    } else if (path[0] != '/' && base_dir != NULL && *base_dir != '\0') {
        snprintf(resolved, sizeof(resolved), "%s/%s", base_dir, path);
    } else {
        snprintf(resolved, sizeof(resolved), "%s", path);
    }
    size_t len;
    char *text = read_file(resolved, &len, err, errlen, name);
    if (text == NULL)
        return -1;

    struct policy_entry *pe = &vm->policies[vm->num_policies];
    memset(pe, 0, sizeof(*pe));
    pe->ref_select = pe->ref_on_error = pe->ref_on_done = LUA_NOREF;
    pe->name = strdup(name);
    pe->path = strdup(resolved);
    if (pe->name == NULL || pe->path == NULL) {
        free(pe->name);
        free(pe->path);
        free(text);
        snprintf(err, errlen, "policy '%s': out of memory", name);
        return -1;
    }
    ++vm->num_policies; /* owned by the VM from here on, so destroy frees it on failure too */
    struct load_args a = {vm, pe, text, len, settings, NULL, NULL};
    int st = lua_cpcall(vm->L, load_policy, &a);
    free(text);
    json_decref(a.schema);
    json_decref(a.filled);
    if (st != 0) {
        const char *msg = lua_tostring(vm->L, -1);
        if (st == LUA_ERRMEM || msg == NULL)
            snprintf(err, errlen, "policy '%s': %s: %s", name, resolved,
                     st == LUA_ERRMEM ? "memory cap exceeded while loading" : "load failed");
        else
            snprintf(err, errlen, "%s", msg);
        lua_settop(vm->L, 0);
        return -1;
    }
    lua_settop(vm->L, 0);
    return 0;
}

lg_policy_vm_t *lg_policy_vm_create(const lg_config_t *conf, uint64_t seed, char *err, size_t errlen)
{
    struct lg_policy_vm *vm = calloc(1, sizeof(*vm));
    if (err != NULL && errlen != 0)
        err[0] = '\0';
    char dummy[8];
    if (err == NULL || errlen == 0) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (vm == NULL) {
        snprintf(err, errlen, "policy VM: out of memory");
        return NULL;
    }
    vm->budget = conf->policy_instruction_budget != 0 ? conf->policy_instruction_budget : 1000000u;
    vm->mem_cap = (size_t)(conf->policy_memory_mb != 0 ? conf->policy_memory_mb : 64u) << 20;
    vm->deadline_ms = LG__POLICY_DEADLINE_MS;
    vm->ref_traceback = LUA_NOREF;
    lg__policy_rng_seed(vm, seed);

    vm->L = lua_newstate(vm_alloc, vm);
    vm->custom_alloc = vm->L != NULL;
    if (vm->L == NULL) /* 64-bit LuaJIT without GC64 only accepts its own allocator: cap via LUA_GCCOUNT instead */
        vm->L = luaL_newstate();
    if (vm->L == NULL) {
        snprintf(err, errlen, "policy VM: cannot create a Lua state");
        free(vm);
        return NULL;
    }
    lua_atpanic(vm->L, panic);
    /* The JIT does not check count hooks inside compiled traces: without this `while true do end` escapes the budget. */
    luaJIT_setmode(vm->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    if (lua_cpcall(vm->L, setup_state, vm) != 0) {
        snprintf(err, errlen, "policy VM: setup failed: %s", lua_tostring(vm->L, -1));
        lg_policy_vm_destroy(vm);
        return NULL;
    }
    lua_sethook(vm->L, budget_hook, LUA_MASKCOUNT, LG__POLICY_HOOK_EVERY);

    /* configured policies, then the shipped ones the config names (default_policy, models[].policy) */
    size_t max = conf->num_policies + 1 + conf->num_models;
    vm->policies = calloc(max, sizeof(*vm->policies));
    if (vm->policies == NULL) {
        snprintf(err, errlen, "policy VM: out of memory");
        lg_policy_vm_destroy(vm);
        return NULL;
    }
    for (size_t i = 0; i < conf->num_policies; ++i) {
        const lg_policy_conf_t *pc = &conf->policies[i];
        if (pc->name == NULL || lg__policy_find(vm, pc->name) != NULL)
            continue;
        if (add_policy(vm, pc->name, pc->path, conf->base_dir, pc->settings, err, errlen) != 0)
            goto fail;
    }
    const char *def = conf->default_policy != NULL ? conf->default_policy : "default";
    if (lg__policy_find(vm, def) == NULL && add_policy(vm, def, NULL, NULL, NULL, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < conf->num_models; ++i) {
        const char *p = conf->models[i].policy;
        if (p != NULL && lg__policy_find(vm, p) == NULL && add_policy(vm, p, NULL, NULL, NULL, err, errlen) != 0)
            goto fail;
    }
    lua_gc(vm->L, LUA_GCCOLLECT, 0);
    return vm;
fail:
    lg_policy_vm_destroy(vm);
    return NULL;
}

void lg_policy_vm_destroy(lg_policy_vm_t *vm)
{
    if (vm == NULL)
        return;
    if (vm->L != NULL)
        lua_close(vm->L);
    for (size_t i = 0; i < vm->num_policies; ++i) {
        free(vm->policies[i].name);
        free(vm->policies[i].path);
    }
    free(vm->policies);
    free(vm);
}

struct policy_entry *lg__policy_find(struct lg_policy_vm *vm, const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < vm->num_policies; ++i)
        if (strcmp(vm->policies[i].name, name) == 0)
            return &vm->policies[i];
    return NULL;
}

int lg_policy_exists(lg_policy_vm_t *vm, const char *policy)
{
    return vm != NULL && lg__policy_find(vm, policy) != NULL;
}

uint64_t lg_policy_error_count(const lg_policy_vm_t *vm)
{
    return vm != NULL ? vm->errors : 0;
}
