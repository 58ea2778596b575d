/* SPDX-License-Identifier: MIT */
/*
 * Calls into a loaded policy: marshals the request, candidates, attempt/error and result structs into Lua tables,
 * runs select/on_error/on_done under the budget, validates what comes back, and provides the deterministic built-in
 * plan used whenever a policy fails.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "domain/candidate.h"
#include "llmgate/error.h"
#include "policy/lua_api.h"

#define ERRBUF 768

/* ---- marshalling (runs inside lua_cpcall, so allocation failures are protected errors) ---- */

static void set_str(lua_State *L, const char *k, const char *v)
{
    if (v != NULL) {
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v != 0);
    lua_setfield(L, -2, k);
}

static void push_req(lua_State *L, const lg_policy_req_t *req)
{
    lua_createtable(L, 0, 16);
    set_str(L, "model", req->model);
    lua_createtable(L, (int)req->num_models, 0);
    for (size_t i = 0; i < req->num_models && req->models != NULL; ++i) {
        lua_pushstring(L, req->models[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "models");
    set_str(L, "variant", req->variant);
    if (req->provider != NULL) {
        lg__policy_push_json(L, req->provider, 0);
        lua_setfield(L, -2, "provider");
    }
    set_str(L, "sort", req->sort);
    set_bool(L, "stream", req->stream);
    set_bool(L, "has_tools", req->has_tools);
    if (req->max_tokens > 0)
        set_num(L, "max_tokens", (double)req->max_tokens);
    set_num(L, "prompt_tokens", (double)req->prompt_tokens);
    set_str(L, "key_id", req->key_id);
    set_str(L, "session_id", req->session_id);
    if (req->session_endpoint != 0)
        set_num(L, "session_endpoint", (double)req->session_endpoint);
    lua_createtable(L, 0, (int)req->num_headers);
    for (size_t i = 0; i < req->num_headers; ++i) {
        if (req->header_names[i] == NULL || req->header_values[i] == NULL)
            continue;
        lua_pushstring(L, req->header_values[i]);
        lua_setfield(L, -2, req->header_names[i]);
    }
    lua_setfield(L, -2, "headers");
}

/*
 * Candidate tables are built by a tiny Lua constructor: its table literal compiles to a template duplicated with all
 * keys in place (TDUP), which halves the cost of 23 lua_setfield calls per candidate. The tables stay fresh per
 * call, so a policy may keep or modify them without affecting the next request.
 */
static const char cand_builder_src[] =
    "local id, provider, model, upstream_model, model_index, pp, pc, weight, tier, context_length, healthy,\n"
    "  outage_age_s, latency_ms, ttft_ms, throughput_tps, error_rate, consecutive_failures, in_flight, queued,\n"
    "  max_concurrent = ...\n"
    "return {id = id, provider = provider, model = model, upstream_model = upstream_model,\n"
    "  model_index = model_index, price = {prompt = pp, completion = pc}, price_prompt = pp, price_completion = pc,\n"
    "  weight = weight, tier = tier, context_length = context_length, healthy = healthy,\n"
    "  outage_age_s = outage_age_s, latency_ms = latency_ms, ttft_ms = ttft_ms, throughput_tps = throughput_tps,\n"
    "  error_rate = error_rate, consecutive_failures = consecutive_failures, in_flight = in_flight,\n"
    "  queued = queued, max_concurrent = max_concurrent}\n";
#define CAND_BUILDER_NARGS 20

static void push_cand_builder(lua_State *L, struct lg_policy_vm *vm)
{
    if (vm->ref_cand_builder == 0) {
        if (luaL_loadbuffer(L, cand_builder_src, sizeof(cand_builder_src) - 1, "=candidate") != 0)
            lua_error(L);
        lua_newtable(L); /* no globals */
        lua_setfenv(L, -2);
        vm->ref_cand_builder = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_cand_builder);
}

static void push_candidates(lua_State *L, struct lg_policy_vm *vm, const lg_candidate_t *cands, size_t n)
{
    luaL_checkstack(L, CAND_BUILDER_NARGS + 8, "candidates");
    push_cand_builder(L, vm);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; ++i) {
        const lg_candidate_t *c = &cands[i];
        lua_pushvalue(L, -2);
        lua_pushnumber(L, c->id);
        lua_pushstring(L, c->provider); /* NULL -> nil */
        lua_pushstring(L, c->model);
        lua_pushstring(L, c->upstream_model);
        lua_pushnumber(L, c->model_index);
        lua_pushnumber(L, c->price_prompt);
        lua_pushnumber(L, c->price_completion);
        lua_pushnumber(L, c->weight);
        lua_pushstring(L, c->tier);
        lua_pushnumber(L, c->context_length);
        lua_pushboolean(L, c->healthy != 0);
        lua_pushnumber(L, c->outage_age_s);
        lua_pushnumber(L, c->latency_ms);
        lua_pushnumber(L, c->ttft_ms);
        lua_pushnumber(L, c->throughput_tps);
        lua_pushnumber(L, c->error_rate);
        lua_pushnumber(L, c->consecutive_failures);
        lua_pushnumber(L, c->in_flight);
        lua_pushnumber(L, c->queued);
        lua_pushnumber(L, c->max_concurrent);
        lua_call(L, CAND_BUILDER_NARGS, 1);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_remove(L, -2); /* the constructor */
}

/* ---- one protected call ---- */

struct call {
    struct lg_policy_vm *vm;
    struct policy_entry *pe;
    const lg_policy_req_t *req;
    /* select */
    const lg_candidate_t *cands;
    size_t num_cands;
    uint32_t *plan;
    size_t plan_cap;
    size_t plan_len;
    /* on_error */
    const lg_policy_attempt_t *attempt;
    const lg_policy_error_t *error;
    lg_policy_action_t action;
    /* on_done */
    const lg_policy_result_t *result;
    int failed;
    char err[ERRBUF];
};

static void fail(struct call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->failed = 1;
}

/* Push handler + function; returns the handler's index. */
static int push_fn(lua_State *L, struct call *c, int ref)
{
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->vm->ref_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    return 1;
}

static int known_id(const struct call *c, uint32_t id)
{
    if (id >= 1 && id <= c->num_cands && c->cands[id - 1].id == id)
        return 1;
    for (size_t i = 0; i < c->num_cands; ++i)
        if (c->cands[i].id == id)
            return 1;
    return 0;
}

static int select_c(lua_State *L)
{
    struct call *c = lua_touserdata(L, 1);
    int h = push_fn(L, c, c->pe->ref_select);
    push_req(L, c->req);
    push_candidates(L, c->vm, c->cands, c->num_cands);
    if (lua_pcall(L, 2, 1, h) != 0) {
        fail(c, "%s", lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "error");
        return 0;
    }
    if (!lua_istable(L, -1)) {
        fail(c, "select returned %s, expected an array of candidate ids", luaL_typename(L, -1));
        return 0;
    }
    size_t n = lua_objlen(L, -1);
    if (n == 0 && c->num_cands != 0) {
        fail(c, "select returned an empty plan for %zu candidates", c->num_cands);
        return 0;
    }
    /* entries past plan_cap are dropped unchecked: the caller never walks them */
    for (size_t i = 1; i <= n && c->plan_len < c->plan_cap; ++i) {
        lua_rawgeti(L, -1, (int)i);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            fail(c, "plan[%zu] is a %s, expected a candidate id", i, luaL_typename(L, -1));
            return 0;
        }
        double d = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (!(d >= 1 && d <= 4294967295.0) || d != floor(d)) {
            fail(c, "plan[%zu] = %g is not a candidate id", i, d);
            return 0;
        }
        uint32_t id = (uint32_t)d;
        if (!known_id(c, id)) {
            fail(c, "plan[%zu] = %u is not among the %zu candidates", i, id, c->num_cands);
            return 0;
        }
        c->plan[c->plan_len++] = id;
    }
    return 0;
}

static int on_error_c(lua_State *L)
{
    struct call *c = lua_touserdata(L, 1);
    int h = push_fn(L, c, c->pe->ref_on_error);
    push_req(L, c->req);
    lua_createtable(L, 0, 3);
    set_num(L, "n", c->attempt->n);
    set_num(L, "id", c->attempt->id);
    set_num(L, "tries", c->attempt->tries);
    lua_createtable(L, 0, 5);
    set_num(L, "status", c->error->status);
    set_str(L, "error_type", c->error->error_type);
    set_bool(L, "retryable", c->error->retryable);
    if (c->error->retry_after_ms >= 0)
        set_num(L, "retry_after_ms", (double)c->error->retry_after_ms);
    set_str(L, "provider_code", c->error->provider_code);
    if (lua_pcall(L, 3, 1, h) != 0) {
        fail(c, "%s", lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "error");
        return 0;
    }
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (s != NULL && strcmp(s, "retry") == 0)
        c->action = LG_POLICY_RETRY;
    else if (s != NULL && strcmp(s, "next") == 0)
        c->action = LG_POLICY_NEXT;
    else if (s != NULL && strcmp(s, "stop") == 0)
        c->action = LG_POLICY_STOP;
    else
        fail(c, "on_error returned %s%.40s%s, expected \"retry\", \"next\" or \"stop\"", s != NULL ? "\"" : "",
             s != NULL ? s : luaL_typename(L, -1), s != NULL ? "\"" : "");
    return 0;
}

static int on_done_c(lua_State *L)
{
    struct call *c = lua_touserdata(L, 1);
    const lg_policy_result_t *r = c->result;
    int h = push_fn(L, c, c->pe->ref_on_done);
    push_req(L, c->req);
    lua_createtable(L, 0, 9);
    set_bool(L, "ok", r->ok);
    if (r->id != 0)
        set_num(L, "id", r->id);
    set_num(L, "attempts", r->attempts);
    set_num(L, "status", r->status);
    set_str(L, "error_type", r->error_type);
    set_num(L, "prompt_tokens", (double)r->prompt_tokens);
    set_num(L, "completion_tokens", (double)r->completion_tokens);
    set_num(L, "ttft_ms", r->ttft_ms);
    set_num(L, "latency_ms", r->latency_ms);
    if (lua_pcall(L, 2, 0, h) != 0)
        fail(c, "%s", lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "error");
    return 0;
}

/* Run fn protected under the budget; on failure c->failed is set with the reason (a kill reason wins). */
static void run(struct call *c, lua_CFunction fn, const char *hook)
{
    lua_State *L = c->vm->L;
    lg__policy_arm(c->vm);
    int st = lua_cpcall(L, fn, c);
    if (st != 0 && !c->failed)
        fail(c, "%s", st == LUA_ERRMEM ? "not enough memory" : lua_tostring(L, -1) != NULL ? lua_tostring(L, -1) : "error");
    lua_settop(L, 0);
    lg__policy_disarm(c->vm);
    const char *why = lg__policy_kill_reason(c->vm);
    if (why != NULL && !(c->failed && strstr(c->err, why) != NULL)) {
        /* keep the traceback (where it looped) but lead with the cause */
        char tmp[ERRBUF];
        snprintf(tmp, sizeof(tmp), "%s", c->failed ? c->err : "");
        fail(c, "%s%s%s", why, tmp[0] != '\0' ? ": " : "", tmp);
    }
    if (c->failed)
        lg__policy_report(c->vm, c->pe, hook, c->err);
}

int lg_policy_select(lg_policy_vm_t *vm, const char *policy, const lg_policy_req_t *req, const lg_candidate_t *cands,
                     size_t num_cands, uint32_t *plan, size_t plan_cap, size_t *plan_len, char *err, size_t errlen)
{
    *plan_len = 0;
    struct policy_entry *pe = vm != NULL ? lg__policy_find(vm, policy) : NULL;
    if (pe == NULL) {
        if (err != NULL && errlen != 0)
            snprintf(err, errlen, "no policy named '%s'", policy != NULL ? policy : "(null)");
        if (vm != NULL)
            lg__policy_report(vm, NULL, "select", "unknown policy");
        return LG_EPOLICY;
    }
    struct call c = {.vm = vm, .pe = pe, .req = req, .cands = cands, .num_cands = num_cands, .plan = plan, .plan_cap = plan_cap};
    run(&c, select_c, "select");
    if (c.failed) {
        if (err != NULL && errlen != 0)
            snprintf(err, errlen, "policy '%s': %s", pe->name, c.err);
        return LG_EPOLICY;
    }
    *plan_len = c.plan_len;
    return 0;
}

lg_policy_action_t lg_policy_on_error(lg_policy_vm_t *vm, const char *policy, const lg_policy_req_t *req,
                                      const lg_policy_attempt_t *attempt, const lg_policy_error_t *error)
{
    lg_policy_action_t dflt = error->retryable ? LG_POLICY_NEXT : LG_POLICY_STOP;
    struct policy_entry *pe = vm != NULL ? lg__policy_find(vm, policy) : NULL;
    if (pe == NULL || pe->ref_on_error == LUA_NOREF)
        return dflt;
    struct call c = {.vm = vm, .pe = pe, .req = req, .attempt = attempt, .error = error, .action = dflt};
    run(&c, on_error_c, "on_error");
    return c.failed ? dflt : c.action;
}

void lg_policy_on_done(lg_policy_vm_t *vm, const char *policy, const lg_policy_req_t *req, const lg_policy_result_t *res)
{
    struct policy_entry *pe = vm != NULL ? lg__policy_find(vm, policy) : NULL;
    if (pe == NULL || pe->ref_on_done == LUA_NOREF)
        return;
    struct call c = {.vm = vm, .pe = pe, .req = req, .result = res};
    run(&c, on_done_c, "on_done");
}

/* ---- built-in plan ---- */

enum { SORT_NONE, SORT_PRICE, SORT_THROUGHPUT, SORT_LATENCY };

struct bkey {
    uint32_t group;      /* model_index, or 0 for everything with sort partition "none" */
    uint32_t order_rank; /* index of the first matching provider.order entry, UINT32_MAX if none */
    int unstable;        /* only used without sort */
    double key;          /* ascending */
    size_t idx;          /* original position: makes the order total and deterministic */
};

static int cmp_bkey(const void *pa, const void *pb)
{
    const struct bkey *a = pa, *b = pb;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    if (a->order_rank != b->order_rank)
        return a->order_rank < b->order_rank ? -1 : 1;
    if (a->unstable != b->unstable)
        return a->unstable < b->unstable ? -1 : 1;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

size_t lg_policy_builtin_plan(const lg_policy_req_t *req, const lg_candidate_t *cands, size_t num_cands, uint32_t *plan,
                              size_t plan_cap)
{
    if (num_cands == 0 || plan_cap == 0)
        return 0;
    int sort = SORT_NONE;
    if (req != NULL && req->sort != NULL) {
        if (strcmp(req->sort, "price") == 0)
            sort = SORT_PRICE;
        else if (strcmp(req->sort, "throughput") == 0)
            sort = SORT_THROUGHPUT;
        else if (strcmp(req->sort, "latency") == 0)
            sort = SORT_LATENCY;
    }
    const json_t *order = NULL;
    int partition_none = 0;
    if (req != NULL && json_is_object(req->provider)) {
        order = json_object_get(req->provider, "order");
        if (!json_is_array(order))
            order = NULL;
        const json_t *s = json_object_get(req->provider, "sort");
        const char *part = json_is_object(s) ? json_string_value(json_object_get(s, "partition")) : NULL;
        partition_none = sort != SORT_NONE && part != NULL && strcmp(part, "none") == 0;
    }

    struct bkey small[64];
    struct bkey *keys = num_cands <= 64 ? small : malloc(num_cands * sizeof(*keys));
    if (keys == NULL) { /* out of memory: candidate order as given */
        size_t n = num_cands < plan_cap ? num_cands : plan_cap;
        for (size_t i = 0; i < n; ++i)
            plan[i] = cands[i].id;
        return n;
    }
    for (size_t i = 0; i < num_cands; ++i) {
        const lg_candidate_t *c = &cands[i];
        struct bkey *k = &keys[i];
        k->idx = i;
        k->group = partition_none ? 0 : c->model_index;
        k->order_rank = UINT32_MAX;
        if (order != NULL) {
            size_t j;
            json_t *e;
            json_array_foreach(order, j, e)
            {
                /* an order entry matches a full slug exactly, or as a base slug every "<entry>/..." endpoint */
                if (json_is_string(e) && c->provider != NULL && lg_provider_slug_matches(json_string_value(e), c->provider)) {
                    k->order_rank = (uint32_t)j;
                    break;
                }
            }
        }
        double price = c->price_prompt + c->price_completion;
        k->unstable = 0;
        switch (sort) {
        case SORT_PRICE:
            k->key = price;
            break;
        case SORT_THROUGHPUT:
            k->key = -c->throughput_tps;
            break;
        case SORT_LATENCY:
            k->key = c->latency_ms > 0 ? c->latency_ms : INFINITY;
            break;
        default:
            /* §4.1 stability: healthy and no failure in the last 30 s */
            k->unstable = !c->healthy || (c->outage_age_s >= 0 && c->outage_age_s < 30);
            k->key = price;
            break;
        }
        if (k->key != k->key) /* NaN would break the total order qsort needs */
            k->key = INFINITY;
    }
    qsort(keys, num_cands, sizeof(*keys), cmp_bkey);
    size_t n = num_cands < plan_cap ? num_cands : plan_cap;
    for (size_t i = 0; i < n; ++i)
        plan[i] = cands[keys[i].idx].id;
    if (keys != small)
        free(keys);
    return n;
}
