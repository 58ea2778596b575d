/* SPDX-License-Identifier: MIT */
/*
 * Private to src/policy/: the VM struct shared by vm.c (state, sandbox, budget, loading), lua_api.c (the `lg` host
 * module and JSON -> Lua conversion) and runner.c (select/on_error/on_done marshalling). Nothing outside
 * src/policy/ includes this header.
 */
#ifndef LG_POLICY_LUA_API_H
#define LG_POLICY_LUA_API_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <lua.h>
#include "policy/policy.h"

#define LG__POLICY_HOOK_EVERY 1000         /* count-hook period, in VM instructions */
#define LG__POLICY_DEADLINE_MS 50          /* time cap per policy call (CPU time of the worker thread) */
#define LG__POLICY_JSON_MAX_DEPTH 32       /* JSON -> Lua nesting limit (C stack) */
#define LG__POLICY_LOG_BURST 50            /* lg.log lines a policy may write at once (per worker) ... */
#define LG__POLICY_LOG_PER_SEC 10          /* ... and per second after that */
#define LG__POLICY_MAX_C_DEPTH 32          /* nested library-function -> policy calls (gsub callback, sort comparator, pcall) */
#define LG__POLICY_ALLOC_BYTES_PER_INSN 64 /* allocation volume charged to the instruction budget */
#define LG__POLICY_ALLOC_CHECK_BYTES (1u << 18) /* the deadline is also checked every 256 KiB allocated */

struct policy_entry {
    char *name;             /* owned */
    char *path;             /* resolved file, owned (messages) */
    int ref_select;         /* registry refs */
    int ref_on_error;       /* LUA_NOREF when absent */
    int ref_on_done;        /* LUA_NOREF when absent */
    uint64_t last_log_ms;   /* rate limit: at most one error line per second */
    uint64_t suppressed;    /* errors not logged since the last line */
    uint32_t log_tokens;    /* lg.log rate limit (lua_api.c): lines allowed right now */
    uint64_t log_refill_ms; /* last refill; 0 = bucket not started */
    uint64_t log_dropped;   /* lg.log lines dropped since the last one written */
};

struct lg_policy_vm {
    lua_State *L;
    struct policy_entry *policies;
    size_t num_policies;
    uint64_t rng[2];        /* xorshift128+ state for lg.random() */
    size_t mem_used;        /* bytes held by the state (custom allocator only) */
    size_t mem_cap;         /* bytes; 0 = unlimited */
    int custom_alloc;       /* 0 when lua_newstate refused our allocator: cap checked via LUA_GCCOUNT */
    uint32_t budget;        /* instructions per hook call */
    uint32_t deadline_ms;   /* time cap per policy call */
    uint64_t instr;         /* instructions counted in the running call */
    uint64_t deadline_ns;   /* monotonic deadline of the running call (checked first: cheap) */
    uint64_t cpu_start_ns;  /* thread CPU time at arm: the deadline is really CPU time, so preemption is excused */
    int running;            /* inside a policy call: budget and memory cap enforced */
    int killed;             /* 0, or why the running call was aborted (KILL_*) */
    uint64_t errors;        /* lg_policy_error_count */
    int ref_traceback;      /* registry ref of the message handler */
    int ref_cand_builder;   /* registry ref of runner.c's candidate table constructor; 0 until first use */
    int c_depth;            /* library functions currently calling back into policy code (strlib.c) */
    size_t alloc_unchecked; /* bytes allocated since the allocator last looked at the deadline */
};

enum { LG__POLICY_KILL_BUDGET = 1, LG__POLICY_KILL_DEADLINE = 2, LG__POLICY_KILL_MEMORY = 3 };

/** Monotonic clock in ns. */
uint64_t lg__policy_mono_ns(void);

/** Seed the per-VM PRNG (seed 0 is replaced by a fixed constant). */
void lg__policy_rng_seed(struct lg_policy_vm *vm, uint64_t seed);

/**
 * Push the `lg` table for one policy: random, now_ms, log (tagged with policy_name, which must outlive the VM state)
 * and conf (settings converted to a read-only proxy; an empty one when settings is NULL). Raises a Lua error on
 * failure (call inside a protected call).
 */
void lg__policy_push_lg(lua_State *L, struct lg_policy_vm *vm, const char *policy_name, const json_t *settings);

/** Push a JSON value as a plain Lua value (objects/arrays -> tables, null -> nil). Raises past the depth limit. */
void lg__policy_push_json(lua_State *L, const json_t *value, int depth);

/**
 * Lua -> JSON for a policy's declarations (SCHEMA): booleans, numbers (integral ones as integers), strings, and tables
 * (keys 1..n only -> array, string keys only -> object, {} -> object). Never raises: returns NULL with the reason
 * (naming path) in err for functions, userdata, NaN, mixed keys or nesting deeper than max_depth.
 */
json_t *lg__policy_to_json(lua_State *L, int idx, const char *path, int max_depth, char *err, size_t errlen);

/**
 * Replace what the read-only proxy lg.conf (in the `lg` table at lg_idx) shows with settings, in place: code that
 * captured `lg.conf` while loading sees the new content too. Raises on failure (protected call).
 */
void lg__policy_set_conf(lua_State *L, int lg_idx, const json_t *settings);

/** Sandbox replacements for pairs/ipairs (honouring read-only proxies) and pcall (strlib.c: depth guard, kills). */
int lg__policy_sandbox_pairs(lua_State *L);
int lg__policy_sandbox_ipairs(lua_State *L);
int lg__policy_sandbox_pcall(lua_State *L);

/**
 * strlib.c: replace string.find/match/gmatch/gsub with the budgeted matcher and table.sort/insert/remove/concat/maxn
 * with size-charged wrappers, in the real library tables (strings index the real string table). Call once at setup,
 * before any environment copies the libraries. Raises on failure.
 */
void lg__policy_install_bounded_libs(lua_State *L, struct lg_policy_vm *vm);

/**
 * Call the function below nargs arguments on the stack (lua_pcall, no handler) as a library function calling back
 * into policy code: raises a Lua error instead once LG__POLICY_MAX_C_DEPTH such calls are nested (C stack). Returns
 * the lua_pcall status with the depth already restored.
 */
int lg__policy_reenter(lua_State *L, struct lg_policy_vm *vm, int nargs, int nresults);

/**
 * Charge n instructions of work done inside a C function to the running call; raises the kill error when that
 * exhausts the instruction budget or passes the deadline (a no-op outside policy calls).
 */
void lg__policy_charge(lua_State *L, struct lg_policy_vm *vm, uint64_t n);

/** Arm the budget for one call (instruction count + time deadline). running must be cleared by the caller. */
void lg__policy_arm(struct lg_policy_vm *vm);
/** After a call: clear running, apply the GCCOUNT cap when the allocator is not ours, collect after a kill. */
void lg__policy_disarm(struct lg_policy_vm *vm);
/** Human text for vm->killed, or NULL. */
const char *lg__policy_kill_reason(const struct lg_policy_vm *vm);

/** Find a loaded policy by name; NULL if absent. */
struct policy_entry *lg__policy_find(struct lg_policy_vm *vm, const char *name);

/** Count a policy error and log it (at most one line per second per policy). */
void lg__policy_report(struct lg_policy_vm *vm, struct policy_entry *pe, const char *hook, const char *msg);

#endif
