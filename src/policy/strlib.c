/* SPDX-License-Identifier: MIT */
/*
 * Bounded library functions for policies. LuaJIT's own C library functions run outside the count hook, so a policy
 * could stall the worker inside one call (`("a"):rep(150):find(".-.-.-.-b")` backtracks for seconds) or overflow the
 * C stack by re-entering Lua from C (`local function f(s) return (s:gsub(".", f)) end`). This file replaces them:
 * string.find/match/gmatch/gsub run on our own Lua-5.1-compatible matcher, which charges every step to the call's
 * instruction budget and limits its recursion; table.sort/insert/remove/concat/maxn are charged by table size before
 * they run; and every C function that calls back into policy code (gsub with a function, sort with a comparator,
 * pcall) goes through one C-depth guard. Allocation volume is charged in vm.c's allocator.
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <lauxlib.h>
#include "policy/lua_api.h"

#define STEPS_PER_INSN 4      /* matcher steps that cost one VM instruction */
#define STEPS_PER_CHECK 256   /* the budget and deadline are checked this often inside one match */
#define BYTES_PER_INSN 64     /* plain (memchr-like) scans: bytes that cost one instruction */
#define ELEMS_PER_INSN 4      /* table element moves that cost one instruction */
#define MATCH_MAX_DEPTH 200   /* matcher recursion (Lua 5.2's MAXCCALLS) */
#define MATCH_MAX_CAPTURES 32 /* LUA_MAXCAPTURES */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
#define L_ESC '%'
#define SPECIALS "^$*+?.([%-"

static struct lg_policy_vm *vm_up(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- the C-depth guard ---- */

int lg__policy_reenter(lua_State *L, struct lg_policy_vm *vm, int nargs, int nresults)
{
    if (vm->c_depth >= LG__POLICY_MAX_C_DEPTH)
        return luaL_error(L, "C stack depth limit (%d nested calls from library functions back into the policy)",
                          LG__POLICY_MAX_C_DEPTH);
    ++vm->c_depth;
    int st = lua_pcall(L, nargs, nresults, 0);
    --vm->c_depth;
    return st;
}

static void reenter_or_raise(lua_State *L, struct lg_policy_vm *vm, int nargs, int nresults)
{
    if (lg__policy_reenter(L, vm, nargs, nresults) != 0)
        lua_error(L); /* the error object is on top; the depth is already balanced */
}

/* ---- matcher (Lua 5.1 pattern semantics, with explicit pattern end so embedded zeros are safe) ---- */

struct match_state {
    const char *src_init, *src_end, *p_end;
    lua_State *L;
    struct lg_policy_vm *vm;
    int level, depth;
    uint32_t steps; /* since the last charge */
    struct {
        const char *init;
        ptrdiff_t len;
    } capture[MATCH_MAX_CAPTURES];
};

static const char *match(struct match_state *ms, const char *s, const char *p);

static void step(struct match_state *ms)
{
    if (++ms->steps >= STEPS_PER_CHECK) {
        ms->steps = 0;
        lg__policy_charge(ms->L, ms->vm, STEPS_PER_CHECK / STEPS_PER_INSN);
    }
}

static int check_capture(struct match_state *ms, int l)
{
    l -= '1';
    if (l < 0 || l >= ms->level || ms->capture[l].len == CAP_UNFINISHED)
        return luaL_error(ms->L, "invalid capture index");
    return l;
}

static int capture_to_close(struct match_state *ms)
{
    for (int level = ms->level - 1; level >= 0; --level)
        if (ms->capture[level].len == CAP_UNFINISHED)
            return level;
    return luaL_error(ms->L, "invalid pattern capture");
}

static const char *class_end(struct match_state *ms, const char *p)
{
    switch (*p++) {
    case L_ESC:
        if (p >= ms->p_end)
            luaL_error(ms->L, "malformed pattern (ends with '%%')");
        return p + 1;
    case '[':
        if (p < ms->p_end && *p == '^')
            ++p;
        do { /* look for a ']' */
            if (p >= ms->p_end)
                luaL_error(ms->L, "malformed pattern (missing ']')");
            if (*(p++) == L_ESC && p < ms->p_end)
                ++p; /* skip escapes (e.g. '%]') */
        } while (*p != ']');
        return p + 1;
    default:
        return p;
    }
}

static int match_class(int c, int cl)
{
    int res;
    switch (tolower(cl)) {
    case 'a':
        res = isalpha(c);
        break;
    case 'c':
        res = iscntrl(c);
        break;
    case 'd':
        res = isdigit(c);
        break;
    case 'l':
        res = islower(c);
        break;
    case 'p':
        res = ispunct(c);
        break;
    case 's':
        res = isspace(c);
        break;
    case 'u':
        res = isupper(c);
        break;
    case 'w':
        res = isalnum(c);
        break;
    case 'x':
        res = isxdigit(c);
        break;
    case 'z':
        res = (c == 0);
        break;
    default:
        return cl == c;
    }
    return isupper(cl) ? !res : res;
}

/* p points at '[', ec at the closing ']' */
static int match_bracket_class(int c, const char *p, const char *ec)
{
    int sig = 1;
    if (*(p + 1) == '^') {
        sig = 0;
        ++p;
    }
    while (++p < ec) {
        if (*p == L_ESC) {
            ++p;
            if (match_class(c, (unsigned char)*p))
                return sig;
        } else if (*(p + 1) == '-' && p + 2 < ec) {
            p += 2;
            if ((unsigned char)*(p - 2) <= c && c <= (unsigned char)*p)
                return sig;
        } else if ((unsigned char)*p == c) {
            return sig;
        }
    }
    return !sig;
}

static int single_match(struct match_state *ms, const char *s, const char *p, const char *ep)
{
    if (s >= ms->src_end)
        return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.':
        return 1;
    case L_ESC:
        return match_class(c, (unsigned char)*(p + 1));
    case '[':
        return match_bracket_class(c, p, ep - 1);
    default:
        return (unsigned char)*p == c;
    }
}

static const char *match_balance(struct match_state *ms, const char *s, const char *p)
{
    if (p + 1 >= ms->p_end)
        luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= ms->src_end || *s != *p)
        return NULL;
    int b = *p, e = *(p + 1), cont = 1;
    while (++s < ms->src_end) {
        step(ms);
        if (*s == e) {
            if (--cont == 0)
                return s + 1;
        } else if (*s == b) {
            ++cont;
        }
    }
    return NULL;
}

static const char *max_expand(struct match_state *ms, const char *s, const char *p, const char *ep)
{
    ptrdiff_t i = 0;
    while (single_match(ms, s + i, p, ep)) {
        step(ms);
        ++i;
    }
    while (i >= 0) { /* try with the maximum repetitions, then fewer */
        const char *res = match(ms, s + i, ep + 1);
        if (res != NULL)
            return res;
        --i;
    }
    return NULL;
}

static const char *min_expand(struct match_state *ms, const char *s, const char *p, const char *ep)
{
    for (;;) {
        const char *res = match(ms, s, ep + 1);
        if (res != NULL)
            return res;
        if (!single_match(ms, s, p, ep))
            return NULL;
        ++s;
    }
}

static const char *start_capture(struct match_state *ms, const char *s, const char *p, int what)
{
    int level = ms->level;
    if (level >= MATCH_MAX_CAPTURES)
        luaL_error(ms->L, "too many captures");
    ms->capture[level].init = s;
    ms->capture[level].len = what;
    ms->level = level + 1;
    const char *res = match(ms, s, p);
    if (res == NULL)
        --ms->level;
    return res;
}

static const char *end_capture(struct match_state *ms, const char *s, const char *p)
{
    int l = capture_to_close(ms);
    ms->capture[l].len = s - ms->capture[l].init;
    const char *res = match(ms, s, p);
    if (res == NULL)
        ms->capture[l].len = CAP_UNFINISHED;
    return res;
}

static const char *match_capture(struct match_state *ms, const char *s, int l)
{
    l = check_capture(ms, l);
    size_t len = (size_t)ms->capture[l].len;
    if ((size_t)(ms->src_end - s) >= len && memcmp(ms->capture[l].init, s, len) == 0)
        return s + len;
    return NULL;
}

static const char *match(struct match_state *ms, const char *s, const char *p)
{
    if (ms->depth-- == 0)
        luaL_error(ms->L, "pattern too complex");
init:
    step(ms);
    if (p == ms->p_end)
        goto done;
    switch (*p) {
    case '(':
        if (p + 1 < ms->p_end && *(p + 1) == ')')
            s = start_capture(ms, s, p + 2, CAP_POSITION);
        else
            s = start_capture(ms, s, p + 1, CAP_UNFINISHED);
        goto done;
    case ')':
        s = end_capture(ms, s, p + 1);
        goto done;
    case '$':
        if (p + 1 != ms->p_end)
            goto dflt;
        s = s == ms->src_end ? s : NULL;
        goto done;
    case L_ESC:
        if (p + 1 >= ms->p_end)
            goto dflt; /* class_end reports the malformed pattern */
        switch (*(p + 1)) {
        case 'b':
            s = match_balance(ms, s, p + 2);
            if (s != NULL) {
                p += 4;
                goto init;
            }
            goto done;
        case 'f': {
            p += 2;
            if (p >= ms->p_end || *p != '[')
                luaL_error(ms->L, "missing '[' after '%%f' in pattern");
            const char *ep = class_end(ms, p);
            int previous = s == ms->src_init ? '\0' : (unsigned char)*(s - 1);
            int current = s < ms->src_end ? (unsigned char)*s : '\0';
            if (!match_bracket_class(previous, p, ep - 1) && match_bracket_class(current, p, ep - 1)) {
                p = ep;
                goto init;
            }
            s = NULL;
            goto done;
        }
        default:
            if (isdigit((unsigned char)*(p + 1))) {
                s = match_capture(ms, s, (unsigned char)*(p + 1));
                if (s != NULL) {
                    p += 2;
                    goto init;
                }
                goto done;
            }
            goto dflt;
        }
    default:
    dflt : {
        const char *ep = class_end(ms, p);
        int m = single_match(ms, s, p, ep);
        char next = ep < ms->p_end ? *ep : '\0';
        if (!m) {
            if (next == '*' || next == '?' || next == '-') {
                p = ep + 1;
                goto init;
            }
            s = NULL;
            goto done;
        }
        switch (next) {
        case '?': {
            const char *res = match(ms, s + 1, ep + 1);
            if (res != NULL) {
                s = res;
                goto done;
            }
            p = ep + 1;
            goto init;
        }
        case '+':
            s = max_expand(ms, s + 1, p, ep);
            goto done;
        case '*':
            s = max_expand(ms, s, p, ep);
            goto done;
        case '-':
            s = min_expand(ms, s, p, ep);
            goto done;
        default:
            ++s;
            p = ep;
            goto init;
        }
    }
    }
done:
    ++ms->depth;
    return s;
}

static void match_state_init(struct match_state *ms, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
    ms->L = L;
    ms->vm = vm_up(L);
    ms->src_init = s;
    ms->src_end = s + ls;
    ms->p_end = p + lp;
    ms->level = 0;
    ms->depth = MATCH_MAX_DEPTH;
    ms->steps = 0;
}

static void push_onecapture(struct match_state *ms, int i, const char *s, const char *e)
{
    if (i >= ms->level) {
        if (i == 0) /* ms->level == 0, too */
            lua_pushlstring(ms->L, s, (size_t)(e - s));
        else
            luaL_error(ms->L, "invalid capture index");
        return;
    }
    ptrdiff_t l = ms->capture[i].len;
    if (l == CAP_UNFINISHED)
        luaL_error(ms->L, "unfinished capture");
    if (l == CAP_POSITION)
        lua_pushinteger(ms->L, ms->capture[i].init - ms->src_init + 1);
    else
        lua_pushlstring(ms->L, ms->capture[i].init, (size_t)l);
}

static int push_captures(struct match_state *ms, const char *s, const char *e)
{
    int nlevels = (ms->level == 0 && s != NULL) ? 1 : ms->level;
    luaL_checkstack(ms->L, nlevels, "too many captures");
    for (int i = 0; i < nlevels; ++i)
        push_onecapture(ms, i, s, e);
    return nlevels;
}

/* relative string position: negative means back from the end */
static ptrdiff_t posrelat(ptrdiff_t pos, size_t len)
{
    if (pos < 0)
        pos += (ptrdiff_t)len + 1;
    return pos >= 0 ? pos : 0;
}

/* plain substring search, charged by the bytes it may scan */
static const char *find_plain(lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
    lg__policy_charge(L, vm_up(L), ls / BYTES_PER_INSN + 1);
    if (lp == 0)
        return s;
    if (lp > ls)
        return NULL;
    const char *end = s + (ls - lp) + 1;
    while (s < end) {
        const char *hit = memchr(s, *p, (size_t)(end - s));
        if (hit == NULL)
            return NULL;
        if (memcmp(hit + 1, p + 1, lp - 1) == 0)
            return hit;
        s = hit + 1;
    }
    return NULL;
}

static int has_specials(const char *p, size_t lp)
{
    for (size_t i = 0; i < lp; ++i)
        if (p[i] != '\0' && strchr(SPECIALS, p[i]) != NULL)
            return 1;
    return 0;
}

static int str_find_aux(lua_State *L, int find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    ptrdiff_t init = posrelat(luaL_optinteger(L, 3, 1), ls) - 1;
    if (init < 0)
        init = 0;
    if ((size_t)init > ls) /* Lua 5.1 (and LuaJIT): a start past the end is clamped to the end */
        init = (ptrdiff_t)ls;
    /* no specials anywhere in the pattern: a plain substring search (LuaJIT's lj_str_haspattern rule) */
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
        const char *hit = find_plain(L, s + init, ls - (size_t)init, p, lp);
        if (hit == NULL) {
            lua_pushnil(L);
            return 1;
        }
        lua_pushinteger(L, hit - s + 1);
        lua_pushinteger(L, hit - s + (ptrdiff_t)lp);
        return 2;
    }
    struct match_state ms;
    lp = strlen(p); /* Lua 5.1 patterns end at an embedded zero (use %z) */
    int anchor = lp > 0 && *p == '^';
    const char *pat = anchor ? p + 1 : p;
    const char *s1 = s + init;
    match_state_init(&ms, L, s, ls, p, lp);
    do {
        ms.level = 0;
        ms.depth = MATCH_MAX_DEPTH;
        const char *e = match(&ms, s1, pat);
        if (e != NULL) {
            if (find) {
                lua_pushinteger(L, s1 - s + 1);
                lua_pushinteger(L, e - s);
                return push_captures(&ms, NULL, NULL) + 2;
            }
            return push_captures(&ms, s1, e);
        }
    } while (s1++ < ms.src_end && !anchor);
    lua_pushnil(L);
    return 1;
}

static int str_find(lua_State *L)
{
    return str_find_aux(L, 1);
}

static int str_match(lua_State *L)
{
    return str_find_aux(L, 0);
}

static int gmatch_aux(lua_State *L)
{
    struct match_state ms;
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(2), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(3), &lp);
    lp = strlen(p);
    /* vm_up reads upvalue 1: the iterator closure carries the VM first, like every other function here */
    match_state_init(&ms, L, s, ls, p, lp);
    for (const char *src = s + (size_t)lua_tointeger(L, lua_upvalueindex(4)); src <= ms.src_end; ++src) {
        ms.level = 0;
        ms.depth = MATCH_MAX_DEPTH;
        const char *e = match(&ms, src, p);
        if (e != NULL) {
            lua_Integer newstart = e - s;
            if (e == src)
                ++newstart; /* empty match: go at least one position */
            lua_pushinteger(L, newstart);
            lua_replace(L, lua_upvalueindex(4));
            return push_captures(&ms, src, e);
        }
    }
    return 0;
}

static int str_gmatch(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, gmatch_aux, 4);
    return 1;
}

static void add_s(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    size_t l;
    const char *news = lua_tolstring(ms->L, 3, &l);
    for (size_t i = 0; i < l; ++i) {
        if (news[i] != L_ESC) {
            luaL_addchar(b, news[i]);
        } else {
            ++i; /* skip ESC */
            if (i >= l || !isdigit((unsigned char)news[i])) {
                luaL_addchar(b, i < l ? news[i] : '\0'); /* LuaJIT adds the terminator after a trailing '%' */
            } else if (news[i] == '0') {
                luaL_addlstring(b, s, (size_t)(e - s));
            } else {
                push_onecapture(ms, news[i] - '1', s, e);
                luaL_addvalue(b); /* add capture to accumulated result */
            }
        }
    }
}

static void add_value(struct match_state *ms, luaL_Buffer *b, const char *s, const char *e)
{
    lua_State *L = ms->L;
    switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
        add_s(ms, b, s, e);
        return;
    case LUA_TFUNCTION: {
        lua_pushvalue(L, 3);
        int n = push_captures(ms, s, e);
        reenter_or_raise(L, ms->vm, n, 1);
        break;
    }
    case LUA_TTABLE:
        push_onecapture(ms, 0, s, e);
        lua_gettable(L, 3);
        break;
    default:
        break;
    }
    if (!lua_toboolean(L, -1)) { /* nil or false: keep the original text */
        lua_pop(L, 1);
        lua_pushlstring(L, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    }
    luaL_addvalue(b);
}

static int str_gsub(lua_State *L)
{
    size_t srcl, lp;
    const char *src = luaL_checklstring(L, 1, &srcl);
    const char *p = luaL_checklstring(L, 2, &lp);
    lp = strlen(p);
    int tr = lua_type(L, 3);
    lua_Integer max_s = luaL_optinteger(L, 4, (lua_Integer)srcl + 1);
    int anchor = lp > 0 && *p == '^';
    if (anchor) {
        ++p;
        --lp;
    }
    luaL_argcheck(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                  "string/function/table expected");
    lua_settop(L, 4);
    struct match_state ms;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    match_state_init(&ms, L, src, srcl, p, lp);
    lua_Integer n = 0;
    while (n < max_s) {
        ms.level = 0;
        ms.depth = MATCH_MAX_DEPTH;
        const char *e = match(&ms, src, p);
        if (e != NULL) {
            ++n;
            add_value(&ms, &b, src, e);
        }
        if (e != NULL && e > src) {
            src = e;
        } else if (src < ms.src_end) {
            luaL_addchar(&b, *src++);
        } else {
            break;
        }
        if (anchor)
            break;
    }
    luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

/* ---- table functions charged by size ---- */

static size_t table_len(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    return lua_objlen(L, 1);
}

/* call the original (upvalue 2) with this call's arguments and return its results */
static int call_original(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

static int tab_sort(lua_State *L)
{
    struct lg_policy_vm *vm = vm_up(L);
    size_t n = table_len(L);
    uint64_t log2n = 1;
    while ((1ull << log2n) < n)
        ++log2n;
    lg__policy_charge(L, vm, (uint64_t)n * log2n / ELEMS_PER_INSN + 1);
    if (lua_isnoneornil(L, 2))
        return call_original(L); /* built-in comparison: no policy code runs inside */
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    reenter_or_raise(L, vm, 2, 0);
    return 0;
}

/* insert/remove shift the array part; concat and maxn walk it */
static int tab_linear(lua_State *L)
{
    lg__policy_charge(L, vm_up(L), table_len(L) / ELEMS_PER_INSN + 1);
    return call_original(L);
}

/* pcall under the C-depth guard; a budget, deadline or memory kill is re-raised so it cannot be swallowed */
int lg__policy_sandbox_pcall(lua_State *L)
{
    struct lg_policy_vm *vm = vm_up(L);
    luaL_checkany(L, 1);
    int status = lg__policy_reenter(L, vm, lua_gettop(L) - 1, LUA_MULTRET);
    if (vm->killed)
        return lua_error(L);
    lua_pushboolean(L, status == 0);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/* replace t[name] with fn(vm, original) */
static void wrap(lua_State *L, int t, struct lg_policy_vm *vm, const char *name, lua_CFunction fn)
{
    lua_pushlightuserdata(L, vm);
    lua_getfield(L, t, name);
    lua_pushcclosure(L, fn, 2);
    lua_setfield(L, t, name);
}

void lg__policy_install_bounded_libs(lua_State *L, struct lg_policy_vm *vm)
{
    static const struct {
        const char *name;
        lua_CFunction fn;
    } str[] = {{"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}},
      tab[] = {{"sort", tab_sort}, {"insert", tab_linear}, {"remove", tab_linear}, {"concat", tab_linear}, {"maxn", tab_linear}};
    /* the real tables: strings reach string.* through their shared metatable, so the sandbox copies are not enough */
    lua_getglobal(L, "string");
    for (size_t i = 0; i < sizeof(str) / sizeof(str[0]); ++i)
        wrap(L, lua_gettop(L), vm, str[i].name, str[i].fn);
    lua_pop(L, 1);
    lua_getglobal(L, "table");
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); ++i)
        wrap(L, lua_gettop(L), vm, tab[i].name, tab[i].fn);
    lua_pop(L, 1);
}
