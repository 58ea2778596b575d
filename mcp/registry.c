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
#include "mcp/fixtures.h"
#include "mcp/server.h"

enum { OP_NONE = 0, OP_LIST, OP_CALL_TOOL, OP_READ, OP_SUBSCRIBE, OP_GET_PROMPT, OP_COMPLETE };

struct provider {
    char *name;
    char *prefix; /* NULL = unprefixed */
    size_t prefix_len;
    const lg_mcp_provider_ops_t *ops;
    void *state;
};

struct lg_mcp_registry {
    _Atomic unsigned refcnt;
    char *name;
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
    }
    free(r->p);
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
    }
    p->ops = ops;
    p->state = state;
    if (json_is_object(capabilities))
        merge_caps(r->caps, capabilities);
    return 0;
}

/* ---- cursors: base64url("<index>:<provider name>:<provider cursor>") ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const char *s, size_t n)
{
    char *out = lg_malloc(n / 3 * 4 + 5), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        *o++ = b64[(v >> 6) & 63];
        *o++ = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned char)s[i] << 16 | (i + 1 < n ? (unsigned char)s[i + 1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[(v >> 12) & 63];
        if (i + 1 < n)
            *o++ = b64[(v >> 6) & 63];
    }
    *o = '\0';
    return out;
}

static int b64_val(char c)
{
    const char *p = c != '\0' ? strchr(b64, c) : NULL;
    return p != NULL ? (int)(p - b64) : -1;
}

/* returns a NUL-terminated malloc'd buffer or NULL if s is not base64url */
static char *b64_decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    if (n % 4 == 1)
        return NULL;
    char *out = lg_malloc(n / 4 * 3 + 4), *o = out;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; ++i) {
        int v = b64_val(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)((acc >> bits) & 0xff);
        }
    }
    *o = '\0';
    *outlen = (size_t)(o - out);
    return out;
}

static char *make_cursor(const lg_mcp_registry_t *r, size_t index, const char *pcursor)
{
    size_t n = strlen(r->p[index].name) + strlen(pcursor) + 32;
    char *raw = lg_malloc(n);
    int len = snprintf(raw, n, "%zu:%s:%s", index, r->p[index].name, pcursor);
    char *c = b64_encode(raw, (size_t)len);
    free(raw);
    return c;
}

static int parse_cursor(const lg_mcp_registry_t *r, const char *cursor, size_t *index, char **pcursor)
{
    size_t len;
    char *raw = b64_decode(cursor, &len);
    if (raw == NULL)
        return -1;
    char *end;
    unsigned long idx = strtoul(raw, &end, 10);
    int ok = end != raw && *end == ':' && idx < r->n && memchr(raw, '\0', len) == NULL;
    if (ok) {
        const char *name = end + 1, *colon = strchr(name, ':');
        size_t nl = strlen(r->p[idx].name);
        ok = colon != NULL && (size_t)(colon - name) == nl && memcmp(name, r->p[idx].name, nl) == 0;
        if (ok) {
            *index = idx;
            *pcursor = colon[1] != '\0' ? lg_strdup(colon + 1) : NULL;
        }
    }
    free(raw);
    return ok ? 0 : -1;
}

/* ---- routing ---- */

void lg__registry_route_dispose(lg_mcp_route_t *route)
{
    free(route->name);
    free(route->cursor);
    json_decref(route->args);
    json_decref(route->args2);
    json_decref(route->args3);
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
        free(c->route.cursor);
        c->route.cursor = NULL;
    }
    /* past the last provider (or none at all): an empty, final page */
    c->route.op = OP_NONE;
    json_t *res = json_object();
    json_object_set_new(res, list_key(kind), json_array());
    lg_mcp_call_result(c, res);
}

void lg__registry_list(lg_mcp_registry_t *r, lg_mcp_call_t *c, int kind, const char *cursor)
{
    size_t index = 0;
    char *pcursor = NULL;
    if (cursor != NULL && parse_cursor(r, cursor, &index, &pcursor) != 0) {
        lg_mcp_call_error(c, LG_JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
        return;
    }
    c->route.op = OP_LIST;
    c->route.on = kind;
    c->route.index = index;
    c->route.cursor = pcursor;
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
            if (p->ops->read_resource == NULL)
                continue;
            p->ops->read_resource(p->state, c, c->route.name);
            return;
        case OP_SUBSCRIBE:
            if (p->ops->subscribe == NULL)
                continue;
            p->ops->subscribe(p->state, c, c->route.name, c->route.on);
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
                p->ops->complete(p->state, c, ref, c->route.args2, c->route.args3);
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
    (void)r;
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

/* Rewrite a provider's page: prefix names, replace nextCursor by ours. Returns 1 if the page was consumed and the next
 * provider asked instead. */
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
        items = json_array();
        json_object_set_new(result, key, items);
    }
    const char *next = json_string_value(json_object_get(result, "nextCursor"));
    if (next != NULL && next[0] == '\0')
        next = NULL;
    int last_provider = c->route.index + 1 >= r->n;
    if (json_array_size(items) == 0 && next == NULL && !last_provider) {
        /* nothing here: go straight to the next provider rather than hand out an empty page */
        json_decref(result);
        *resultp = NULL;
        ++c->route.index;
        free(c->route.cursor);
        c->route.cursor = NULL;
        list_step(c);
        return 1;
    }
    if (p->prefix != NULL && (kind == LG__LIST_TOOLS || kind == LG__LIST_PROMPTS)) {
        /* the provider may hand out a cached array: prefix a copy */
        json_t *copy = json_deep_copy(items);
        size_t i;
        json_t *it;
        json_array_foreach(copy, i, it)
        {
            const char *nm = json_string_value(json_object_get(it, "name"));
            if (nm == NULL)
                continue;
            size_t n = p->prefix_len + strlen(nm) + 1;
            char *full = lg_malloc(n);
            snprintf(full, n, "%s%s", p->prefix, nm);
            json_object_set_new(it, "name", json_string(full));
            free(full);
        }
        json_object_set_new(result, key, copy);
    }
    char *ours = NULL;
    if (next != NULL)
        ours = make_cursor(r, c->route.index, next);
    else if (!last_provider)
        ours = make_cursor(r, c->route.index + 1, "");
    if (ours != NULL) {
        json_object_set_new(result, "nextCursor", json_string(ours));
        free(ours);
    } else {
        json_object_del(result, "nextCursor");
    }
    c->route.op = OP_NONE;
    return 0;
}

int lg__registry_on_result(lg_mcp_call_t *c, json_t **result)
{
    if (c->route.op == OP_LIST)
        return list_result(c, result);
    c->route.op = OP_NONE;
    return 0;
}

int lg__registry_on_decline(lg_mcp_call_t *c)
{
    if (c->route.op == OP_LIST) {
        /* a provider that declines a list has nothing to list */
        ++c->route.index;
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
    if (conf->mcp.conformance_fixtures) {
        lg_mcp_registry_t *fx = lg_mcp_registry_create("conformance");
        lg_mcp_registry_add(fx, "conformance", NULL, lg_mcp_fixtures_capabilities(), &lg_mcp_fixtures_ops, NULL);
        cache_add(fx);
    }
    for (size_t i = 0; i < num_builders; ++i)
        builders[i](conf, def, cache_add);
    /* a test gateway with nothing else to serve offers the fixtures at /mcp too (the built-in llmgate__ tools are
     * prefixed, so they do not count) */
    size_t others = 0;
    for (size_t i = 0; i < def->n; ++i)
        if (def->p[i].prefix == NULL || strcmp(def->p[i].name, "llmgate") != 0)
            ++others;
    if (conf->mcp.conformance_fixtures && others == 0)
        lg_mcp_registry_add(def, "conformance", NULL, lg_mcp_fixtures_capabilities(), &lg_mcp_fixtures_ops, NULL);
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
