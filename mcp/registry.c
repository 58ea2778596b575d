/* SPDX-License-Identifier: MIT */
/*
 * Registries of providers (see registry.h): merged, paginated lists with
 * opaque cursors, per-provider name prefixes, routing of targeted calls by
 * prefix with "decline" fall-through, and the per-config-generation cache of
 * the registries behind /mcp and /mcp/<virtual server>.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "mcp/naming.h"
#include "mcp/server.h"

enum { OP_NONE = 0, OP_LIST, OP_CALL_TOOL, OP_READ, OP_SUBSCRIBE, OP_GET_PROMPT, OP_COMPLETE };

struct provider {
    char *name;
    char *prefix; /* "<prefix>__" or NULL = unprefixed */
    size_t prefix_len;
    char *ns;    /* the bare prefix, for resource URIs (NULL = URIs as the provider has them) */
    int builtin; /* stateless built-in: virtual servers whose patterns match its tools include it */
    const lg_mcp_provider_ops_t *ops;
    void *state;
};

struct lg_mcp_registry {
    _Atomic unsigned refcnt;
    char *name;
    char **tool_patterns; /* virtual server: tools shown and callable (full names); NULL = all */
    struct provider *p;
    size_t n;
    json_t *caps;
};

/* ---- registries ---- */

static void merge_caps(json_t *into, const json_t *from)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)from, k, v)
    {
        json_t *cur = json_object_get(into, k);
        if (json_is_object(cur) && json_is_object(v)) {
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                /* booleans OR together (listChanged, subscribe); anything else: first wins */
                json_t *c2 = json_object_get(cur, k2);
                if (c2 == NULL || (json_is_boolean(c2) && json_is_true(v2)))
                    json_object_set(cur, k2, v2);
            }
        } else if (cur == NULL) {
            json_object_set_new(into, k, json_deep_copy(v));
        }
    }
}

lg_mcp_registry_t *lg_mcp_registry_create(const char *name)
{
    lg_mcp_registry_t *r = lg_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    atomic_init(&r->refcnt, 1);
    r->name = lg_strdup(name != NULL ? name : "");
    /* tools are always advertised: an empty gateway still answers tools/list and may gain tools later */
    r->caps = json_pack("{s:{s:b},s:{},s:{}}", "tools", "listChanged", 1, "logging", "completions");
    return r;
}

lg_mcp_registry_t *lg_mcp_registry_ref(lg_mcp_registry_t *r)
{
    atomic_fetch_add(&r->refcnt, 1);
    return r;
}

void lg_mcp_registry_unref(lg_mcp_registry_t *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refcnt, 1) != 1)
        return;
    for (size_t i = 0; i < r->n; ++i) {
        if (r->p[i].ops->destroy != NULL)
            r->p[i].ops->destroy(r->p[i].state);
        free(r->p[i].name);
        free(r->p[i].prefix);
        free(r->p[i].ns);
    }
    free(r->p);
    lg_strv_free(r->tool_patterns);
    free(r->name);
    json_decref(r->caps);
    free(r);
}

const char *lg_mcp_registry_name(const lg_mcp_registry_t *r)
{
    return r->name;
}

size_t lg_mcp_registry_num_providers(const lg_mcp_registry_t *r)
{
    return r->n;
}

const json_t *lg_mcp_registry_capabilities(const lg_mcp_registry_t *r)
{
    return r->caps;
}

static int valid_prefix(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 64)
        return 0;
    for (; *p != '\0'; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '.'))
            return 0;
    return 1;
}

int lg_mcp_registry_add(lg_mcp_registry_t *r, const char *name, const char *prefix, const json_t *capabilities,
                        const lg_mcp_provider_ops_t *ops, void *state)
{
    if (prefix != NULL && !valid_prefix(prefix))
        return -1;
    r->p = lg_realloc(r->p, (r->n + 1) * sizeof(*r->p));
    struct provider *p = &r->p[r->n++];
    memset(p, 0, sizeof(*p));
    p->name = lg_strdup(name);
    if (prefix != NULL) {
        size_t n = strlen(prefix) + sizeof(LG_MCP_PREFIX_SEP);
        p->prefix = lg_malloc(n);
        snprintf(p->prefix, n, "%s%s", prefix, LG_MCP_PREFIX_SEP);
        p->prefix_len = n - 1;
        p->ns = lg_strdup(prefix);
    }
    p->ops = ops;
    p->state = state;
    if (json_is_object(capabilities))
        merge_caps(r->caps, capabilities);
    return 0;
}

int lg_mcp_registry_add_builtin(lg_mcp_registry_t *r, const char *name, const char *prefix, const json_t *capabilities,
                                const lg_mcp_provider_ops_t *ops)
{
    if (lg_mcp_registry_add(r, name, prefix, capabilities, ops, NULL) != 0)
        return -1;
    r->p[r->n - 1].builtin = 1;
    return 0;
}

void lg_mcp_registry_set_tool_patterns(lg_mcp_registry_t *r, char *const *patterns)
{
    lg_strv_free(r->tool_patterns);
    r->tool_patterns = patterns != NULL ? lg_strv_dup(patterns) : NULL;
}

/* ---- routing ---- */

void lg__registry_route_dispose(lg_mcp_route_t *route)
{
    free(route->name);
    free(route->cursor);
    json_decref(route->args);
    json_decref(route->args2);
    json_decref(route->args3);
    json_decref(route->acc);
    memset(route, 0, sizeof(*route));
}

static const char *list_key(int kind)
{
    switch (kind) {
    case LG__LIST_TOOLS:
        return "tools";
    case LG__LIST_RESOURCES:
        return "resources";
    case LG__LIST_TEMPLATES:
        return "resourceTemplates";
    default:
        return "prompts";
    }
}

static void list_step(lg_mcp_call_t *c)
{
    lg_mcp_registry_t *r = c->reg;
    int kind = c->route.on; /* list kind is kept in route.on */
    while (c->route.index < r->n) {
        struct provider *p = &r->p[c->route.index];
        void (*op)(void *, lg_mcp_call_t *, const char *) = NULL;
        switch (kind) {
        case LG__LIST_TOOLS:
            op = p->ops->list_tools;
            break;
        case LG__LIST_RESOURCES:
            op = p->ops->list_resources;
            break;
        case LG__LIST_TEMPLATES:
            op = p->ops->list_templates;
            break;
        default:
            op = p->ops->list_prompts;
            break;
        }
        if (op != NULL) {
            lg_mcp_call_on_cancel(c, NULL, NULL);
            op(p->state, c, c->route.cursor);
            return;
        }
        ++c->route.index;
        c->route.skip = 0;
        free(c->route.cursor);
        c->route.cursor = NULL;
    }
    /* past the last provider: the merged page is final */
    c->route.op = OP_NONE;
    json_t *res = json_object();
    json_object_set_new(res, list_key(kind), c->route.acc != NULL ? c->route.acc : json_array());
    c->route.acc = NULL;
    lg_mcp_call_result(c, res);
}

void lg__registry_list(lg_mcp_registry_t *r, lg_mcp_call_t *c, int kind, const char *cursor)
{
    lg_mcp_cursor_t cur;
    memset(&cur, 0, sizeof(cur));
    if (cursor != NULL) {
        if (lg_mcp_cursor_decode(cursor, strlen(cursor), &cur) != 0 || cur.index >= r->n ||
            strcmp(cur.provider, r->p[cur.index].name) != 0) {
            lg_mcp_cursor_dispose(&cur);
            lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
            return;
        }
    }
    c->route.op = OP_LIST;
    c->route.on = kind;
    c->route.index = cur.index;
    c->route.skip = cur.skip;
    c->route.cursor = cur.pcursor;
    cur.pcursor = NULL;
    lg_mcp_cursor_dispose(&cur);
    c->route.acc = json_array();
    list_step(c);
}

/* Does provider p take name (tools, prompts)? *local = the provider's own name. */
static int name_matches(const struct provider *p, const char *name, const char **local)
{
    if (p->prefix == NULL) {
        *local = name;
        return 1;
    }
    if (strncmp(name, p->prefix, p->prefix_len) != 0 || name[p->prefix_len] == '\0')
        return 0;
    *local = name + p->prefix_len;
    return 1;
}

/* Does provider p serve resource uri? *local = the provider's own URI. A namespaced URI ("mcp://<prefix>/...") of a
 * provider in this registry goes to that provider only; any other URI to the providers whose URIs are not namespaced. */
static int uri_matches(const lg_mcp_registry_t *r, const struct provider *p, const char *uri, const char **local)
{
    const char *pre, *rest;
    size_t pl;
    if (lg_mcp_uri_split(uri, &pre, &pl, &rest)) {
        for (size_t i = 0; i < r->n; ++i) {
            const char *ns = r->p[i].ns;
            if (ns != NULL && strlen(ns) == pl && memcmp(ns, pre, pl) == 0) {
                *local = rest;
                return &r->p[i] == p;
            }
        }
    }
    *local = uri;
    return p->ns == NULL;
}

/* Try providers from route.index on; returns when one was asked, or answers not-found when none is left. */
static void targeted_step(lg_mcp_call_t *c)
{
    lg_mcp_registry_t *r = c->reg;
    for (; c->route.index < r->n; ++c->route.index) {
        struct provider *p = &r->p[c->route.index];
        const char *local = c->route.name;
        lg_mcp_call_on_cancel(c, NULL, NULL);
        switch (c->route.op) {
        case OP_CALL_TOOL:
            if (p->ops->call_tool == NULL || !name_matches(p, c->route.name, &local))
                continue;
            p->ops->call_tool(p->state, c, local, c->route.args);
            return;
        case OP_GET_PROMPT:
            if (p->ops->get_prompt == NULL || !name_matches(p, c->route.name, &local))
                continue;
            p->ops->get_prompt(p->state, c, local, c->route.args);
            return;
        case OP_READ:
            if (p->ops->read_resource == NULL || !uri_matches(r, p, c->route.name, &local))
                continue;
            p->ops->read_resource(p->state, c, local);
            return;
        case OP_SUBSCRIBE:
            if (p->ops->subscribe == NULL || !uri_matches(r, p, c->route.name, &local))
                continue;
            p->ops->subscribe(p->state, c, local, c->route.on);
            return;
        case OP_COMPLETE: {
            if (p->ops->complete == NULL)
                continue;
            json_t *ref = c->route.args;
            const char *rname = json_string_value(json_object_get(ref, "name"));
            if (rname != NULL) { /* ref/prompt: strip this provider's prefix */
                if (!name_matches(p, rname, &local))
                    continue;
                json_t *copy = json_deep_copy(ref);
                json_object_set_new(copy, "name", json_string(local));
                p->ops->complete(p->state, c, copy, c->route.args2, c->route.args3);
                json_decref(copy);
            } else {
                const char *ruri = json_string_value(json_object_get(ref, "uri"));
                if (ruri != NULL && !uri_matches(r, p, ruri, &local))
                    continue;
                if (ruri != NULL && local != ruri) {
                    json_t *copy = json_deep_copy(ref);
                    json_object_set_new(copy, "uri", json_string(local));
                    p->ops->complete(p->state, c, copy, c->route.args2, c->route.args3);
                    json_decref(copy);
                } else {
                    p->ops->complete(p->state, c, ref, c->route.args2, c->route.args3);
                }
            }
            return;
        }
        default:
            return;
        }
    }
    c->route.op = OP_NONE;
    lg_mcp_call_decline(c); /* the server turns this into the method's not-found answer */
}

static void start_targeted(lg_mcp_call_t *c, int op, const char *name, json_t *args)
{
    c->route.op = op;
    c->route.index = 0;
    c->route.name = lg_strdup(name != NULL ? name : "");
    c->route.args = args != NULL ? json_incref(args) : NULL;
    targeted_step(c);
}

void lg__registry_call_tool(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *name, json_t *args)
{
    if (r->tool_patterns != NULL && (name == NULL || !lg_mcp_patterns_match(r->tool_patterns, name))) {
        lg_mcp_call_decline(c); /* not part of this virtual server: unknown tool */
        return;
    }
    start_targeted(c, OP_CALL_TOOL, name, args);
}

void lg__registry_read_resource(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *uri)
{
    (void)r;
    start_targeted(c, OP_READ, uri, NULL);
}

void lg__registry_subscribe(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *uri, int on)
{
    (void)r;
    c->route.on = on;
    start_targeted(c, OP_SUBSCRIBE, uri, NULL);
}

void lg__registry_get_prompt(lg_mcp_registry_t *r, lg_mcp_call_t *c, const char *name, json_t *args)
{
    (void)r;
    start_targeted(c, OP_GET_PROMPT, name, args);
}

void lg__registry_complete(lg_mcp_registry_t *r, lg_mcp_call_t *c, json_t *ref, json_t *argument, json_t *context)
{
    (void)r;
    c->route.args2 = json_incref(argument);
    c->route.args3 = context != NULL ? json_incref(context) : NULL;
    const char *uri = json_string_value(json_object_get(ref, "uri"));
    start_targeted(c, OP_COMPLETE, uri, ref);
}

/* One item of provider p's page as the client sees it: prefixed name, namespaced URI. New reference, or NULL when a
 * virtual server's patterns hide it. */
static json_t *expose_item(const lg_mcp_registry_t *r, const struct provider *p, int kind, json_t *it)
{
    if (!json_is_object(it))
        return NULL;
    const char *field = NULL, *sep_prefix = NULL;
    switch (kind) {
    case LG__LIST_TOOLS:
    case LG__LIST_PROMPTS:
        field = "name";
        sep_prefix = p->prefix;
        break;
    case LG__LIST_RESOURCES:
        field = "uri";
        break;
    default:
        field = "uriTemplate";
        break;
    }
    const char *v = json_string_value(json_object_get(it, field));
    char *renamed = NULL;
    if (v != NULL && sep_prefix != NULL) {
        size_t n = p->prefix_len + strlen(v) + 1;
        renamed = lg_malloc(n);
        snprintf(renamed, n, "%s%s", sep_prefix, v);
    } else if (v != NULL && p->ns != NULL && (kind == LG__LIST_RESOURCES || kind == LG__LIST_TEMPLATES)) {
        renamed = lg_mcp_uri_namespace(p->ns, v);
    }
    const char *shown = renamed != NULL ? renamed : v;
    if (kind == LG__LIST_TOOLS && r->tool_patterns != NULL && (shown == NULL || !lg_mcp_patterns_match(r->tool_patterns, shown))) {
        free(renamed);
        return NULL;
    }
    json_t *out;
    if (renamed != NULL) {
        out = json_copy(it); /* shallow: the provider may hand out a cached array */
        json_object_set_new(out, field, json_string(renamed));
        free(renamed);
    } else {
        out = json_incref(it);
    }
    return out;
}

/* Take a provider's page into the merged page (route.acc, up to LG_MCP_LIST_PAGE items). Returns 1 if the registry
 * went on to the next provider page (the call is not finished), 0 when *resultp is the merged page to send. */
static int list_result(lg_mcp_call_t *c, json_t **resultp)
{
    lg_mcp_registry_t *r = c->reg;
    int kind = c->route.on;
    const char *key = list_key(kind);
    json_t *result = *resultp;
    struct provider *p = &r->p[c->route.index];
    json_t *items = json_object_get(result, key);
    if (!json_is_array(items)) {
        LG_LOG(LG_LOG_WARN, "mcp", "provider %s: %s page without a \"%s\" array; treated as empty", p->name, c->method, key);
        items = NULL;
    }
    const char *next = json_string_value(json_object_get(result, "nextCursor"));
    if (next != NULL && next[0] == '\0')
        next = NULL;
    if (c->route.acc == NULL)
        c->route.acc = json_array();
    size_t total = json_array_size(items), i = c->route.skip;
    for (; i < total && json_array_size(c->route.acc) < LG_MCP_LIST_PAGE; ++i) {
        json_t *shown = expose_item(r, p, kind, json_array_get(items, i));
        if (shown != NULL)
            json_array_append_new(c->route.acc, shown);
    }
    char *ours = NULL;
    int full = json_array_size(c->route.acc) >= LG_MCP_LIST_PAGE;
    if (i < total) {
        /* the page is full in the middle of this provider page: resume right here */
        ours = lg_mcp_cursor_encode(c->route.index, p->name, c->route.cursor, i);
    } else if (next != NULL) {
        if (full) {
            ours = lg_mcp_cursor_encode(c->route.index, p->name, next, 0);
        } else {
            free(c->route.cursor);
            c->route.cursor = lg_strdup(next);
            c->route.skip = 0;
            json_decref(result);
            *resultp = NULL;
            list_step(c);
            return 1;
        }
    } else if (c->route.index + 1 < r->n) {
        if (full) {
            ours = lg_mcp_cursor_encode(c->route.index + 1, r->p[c->route.index + 1].name, NULL, 0);
        } else {
            ++c->route.index;
            c->route.skip = 0;
            free(c->route.cursor);
            c->route.cursor = NULL;
            json_decref(result);
            *resultp = NULL;
            list_step(c);
            return 1;
        }
    }
    json_decref(result);
    result = json_object();
    json_object_set_new(result, key, c->route.acc);
    c->route.acc = NULL;
    if (ours != NULL) {
        json_object_set_new(result, "nextCursor", json_string(ours));
        free(ours);
    }
    *resultp = result;
    c->route.op = OP_NONE;
    return 0;
}

/* resources/read of a namespaced provider: the contents carry the URI the client asked for */
static void namespace_contents(const struct provider *p, json_t *result)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(result, "contents"), i, it)
    {
        const char *u = json_string_value(json_object_get(it, "uri"));
        if (u == NULL)
            continue;
        char *ns = lg_mcp_uri_namespace(p->ns, u);
        json_object_set_new(it, "uri", json_string(ns));
        free(ns);
    }
}

int lg__registry_on_result(lg_mcp_call_t *c, json_t **result)
{
    if (c->route.op == OP_LIST)
        return list_result(c, result);
    if (c->route.op == OP_READ && c->route.index < c->reg->n && c->reg->p[c->route.index].ns != NULL)
        namespace_contents(&c->reg->p[c->route.index], *result);
    c->route.op = OP_NONE;
    return 0;
}

int lg__registry_on_error(lg_mcp_call_t *c)
{
    if (c->route.op != OP_LIST)
        return 0;
    /* one provider failing to list does not fail the merged list: it has nothing to show now */
    LG_LOG(LG_LOG_WARN, "mcp", "provider %s: %s failed; left out of the list", c->reg->p[c->route.index].name, c->method);
    return lg__registry_on_decline(c);
}

int lg__registry_on_decline(lg_mcp_call_t *c)
{
    if (c->route.op == OP_LIST) {
        /* a provider that declines a list has nothing to list */
        ++c->route.index;
        c->route.skip = 0;
        free(c->route.cursor);
        c->route.cursor = NULL;
        list_step(c);
        return 1;
    }
    if (c->route.op == OP_NONE)
        return 0;
    ++c->route.index;
    targeted_step(c);
    return 1;
}

void lg__registry_set_log_level(lg_mcp_registry_t *r, const char *level)
{
    for (size_t i = 0; i < r->n; ++i)
        if (r->p[i].ops->set_log_level != NULL)
            r->p[i].ops->set_log_level(r->p[i].state, level);
}

/* ---- the registries of the current config generation ---- */

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static int cache_valid;
static uint64_t cache_gen;
static lg_mcp_registry_t **cache;
static size_t cache_n;
/* builders run in registration order; several stages register one (federation, built-in tools) */
#define MAX_BUILDERS 8
static lg_mcp_registry_builder_fn builders[MAX_BUILDERS];
static size_t num_builders;

void lg_mcp_registry_set_builder(lg_mcp_registry_builder_fn fn)
{
    pthread_mutex_lock(&cache_mu);
    if (fn == NULL) {
        num_builders = 0; /* NULL clears every builder */
    } else {
        size_t i = 0;
        while (i < num_builders && builders[i] != fn)
            ++i;
        if (i == num_builders && num_builders < MAX_BUILDERS)
            builders[num_builders++] = fn;
    }
    cache_valid = 0;
    pthread_mutex_unlock(&cache_mu);
}

static void cache_add(lg_mcp_registry_t *r)
{
    for (size_t i = 0; i < cache_n; ++i) {
        if (strcmp(cache[i]->name, r->name) == 0) {
            LG_LOG(LG_LOG_WARN, "mcp", "duplicate MCP endpoint /mcp/%s ignored", r->name);
            lg_mcp_registry_unref(r);
            return;
        }
    }
    cache = lg_realloc(cache, (cache_n + 1) * sizeof(*cache));
    cache[cache_n++] = r;
}

static void rebuild_locked(const lg_config_t *conf)
{
    for (size_t i = 0; i < cache_n; ++i)
        lg_mcp_registry_unref(cache[i]);
    free(cache);
    cache = NULL;
    cache_n = 0;

    lg_mcp_registry_t *def = lg_mcp_registry_create("");
    cache_add(def);
    for (size_t i = 0; i < num_builders; ++i)
        builders[i](conf, def, cache_add);
    /* virtual servers show the built-in tools their patterns match (the registry's patterns do the filtering) */
    for (size_t v = 0; v < cache_n; ++v) {
        lg_mcp_registry_t *vs = cache[v];
        if (vs == def || vs->tool_patterns == NULL)
            continue;
        for (size_t i = 0; i < def->n; ++i) {
            const struct provider *p = &def->p[i];
            if (!p->builtin)
                continue;
            int have = 0;
            for (size_t j = 0; j < vs->n && !have; ++j)
                have = strcmp(vs->p[j].name, p->name) == 0;
            if (!have)
                lg_mcp_registry_add_builtin(vs, p->name, p->ns, NULL, p->ops);
        }
    }
}

size_t lg_mcp_registry_num_unprefixed(const lg_mcp_registry_t *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; ++i)
        if (r->p[i].prefix == NULL)
            ++n;
    return n;
}

lg_mcp_registry_t *lg_mcp_registry_for(const lg_config_t *conf, uint64_t generation, const char *name, size_t len)
{
    lg_mcp_registry_t *found = NULL;
    pthread_mutex_lock(&cache_mu);
    /* a worker still on an older generation during a reload is served the newer registries */
    if (!cache_valid || generation > cache_gen) {
        rebuild_locked(conf);
        cache_gen = generation;
        cache_valid = 1;
    }
    for (size_t i = 0; i < cache_n; ++i) {
        if (strlen(cache[i]->name) == len && memcmp(cache[i]->name, name, len) == 0) {
            found = lg_mcp_registry_ref(cache[i]);
            break;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return found;
}
