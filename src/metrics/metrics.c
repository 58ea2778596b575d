/* SPDX-License-Identifier: MIT */
/*
 * Metrics registry and Prometheus text exposition (0.0.4). Label-name tables
 * are fixed arrays published with release stores (lock-free readers, one
 * mutex for writers). Each shard holds open-addressing tables keyed by the
 * packed label tuple plus dense arrays for small label sets; the owning
 * worker updates them with relaxed load+store, the shared shard with atomic
 * RMW. A scrape merges all shards into a sorted temporary map.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include "core/log.h"
#include "core/util.h"
#include "llmgate/error.h"
#include "metrics/metrics.h"
#include "metrics/timeseries.h"

#define NB 18        /* histogram buckets including +Inf */
#define MAX_PROBE 32 /* linear-probe limit before a key is folded into "other" */
#define MAX_COLLECTORS 32
#define KEY_USED (UINT64_C(1) << 63)

static const uint64_t bucket_ns[NB - 1] = {
    500000ull,     1000000ull,     2500000ull,     5000000ull,     10000000ull,     25000000ull,
    50000000ull,   100000000ull,   250000000ull,   500000000ull,   1000000000ull,   2500000000ull,
    5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull, 120000000000ull,
};
static const char *const bucket_le[NB] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                          "0.5",    "1",     "2.5",    "5",     "10",   "30",    "60",   "120", "+Inf"};

static const char *const route_names[LG_ROUTE__COUNT] = {"chat",   "completions", "embeddings", "messages", "responses", "models",
                                                         "health", "metrics",     "admin",      "mcp",      "other"};
static const char *const errclass_names[LG_ERRCLASS__COUNT] = {"timeout",      "connect",      "rate_limited", "overloaded",
                                                               "server_error", "bad_response", "rejected",     "auth",
                                                               "queue_full",   "cancelled",    "other"};

enum { REJ_AUTH, REJ_CREDIT, REJ_FORBIDDEN, REJ_RPM, REJ_TPM, REJ_ABUSE, REJ_OTHER, REJ__COUNT };
static const char *const rej_names[REJ__COUNT] = {"auth", "credit", "forbidden", "rpm", "tpm", "abuse", "other"};

/* ---- name registries ---- */

struct registry {
    const char *what;          /* overflow label value, e.g. "model_names" */
    unsigned cap;              /* max ids (ids 1..cap) */
    unsigned icap;             /* index slots, power of two >= 2 * cap */
    char **names;              /* [cap + 1]; written before the release store that publishes the id */
    _Atomic uint16_t *index;   /* [icap]; 0 = empty, else id */
    _Atomic unsigned count;    /* ids 1..count are published */
    _Atomic uint64_t overflow; /* registrations refused because the table was full */
};

static char *model_names[LG_METRICS_MAX_MODELS + 1];
static _Atomic uint16_t model_index[1024];
static char *provider_names[LG_METRICS_MAX_PROVIDERS + 1];
static _Atomic uint16_t provider_index[256];
static char *server_names[LG_METRICS_MAX_MCP_SERVERS + 1];
static _Atomic uint16_t server_index[128];
static char *tool_names[LG_METRICS_MAX_MCP_TOOLS + 1];
static _Atomic uint16_t tool_index[2048];

_Static_assert(sizeof(model_index) / sizeof(model_index[0]) >= 2 * LG_METRICS_MAX_MODELS, "model index too small");
_Static_assert(sizeof(provider_index) / sizeof(provider_index[0]) >= 2 * LG_METRICS_MAX_PROVIDERS, "provider index");
_Static_assert(sizeof(server_index) / sizeof(server_index[0]) >= 2 * LG_METRICS_MAX_MCP_SERVERS, "server index");
_Static_assert(sizeof(tool_index) / sizeof(tool_index[0]) >= 2 * LG_METRICS_MAX_MCP_TOOLS, "tool index");
_Static_assert(LG_METRICS_MAX_MCP_TOOLS < 65536 && LG_METRICS_MAX_MODELS < 65536, "ids must fit 16 bits");

static struct registry reg_models = {"model_names", LG_METRICS_MAX_MODELS, 1024, model_names, model_index, 0, 0};
static struct registry reg_providers = {"provider_names", LG_METRICS_MAX_PROVIDERS, 256, provider_names, provider_index, 0, 0};
static struct registry reg_servers = {"mcp_server_names", LG_METRICS_MAX_MCP_SERVERS, 128, server_names, server_index, 0, 0};
static struct registry reg_tools = {"mcp_tool_names", LG_METRICS_MAX_MCP_TOOLS, 2048, tool_names, tool_index, 0, 0};
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int reg_lookup(struct registry *r, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    unsigned mask = r->icap - 1;
    for (unsigned i = str_hash(name) & mask, n = 0; n < r->icap; i = (i + 1) & mask, n++) {
        unsigned id = atomic_load_explicit(&r->index[i], memory_order_acquire);
        if (id == 0)
            return 0;
        if (strcmp(r->names[id], name) == 0)
            return (int)id;
    }
    return 0;
}

static int reg_register(struct registry *r, const char *name)
{
    int id;
    if (name == NULL || name[0] == '\0' || strcmp(name, "other") == 0)
        return 0;
    size_t len = strlen(name);
    if (len > LG_METRICS_MAX_NAME_LEN) {
        LG_LOG(LG_LOG_WARN, "metrics", "%s: name of %zu bytes is too long for a label, counted as \"other\"", r->what, len);
        return 0;
    }
    pthread_mutex_lock(&reg_lock);
    id = reg_lookup(r, name);
    if (id == 0) {
        unsigned n = atomic_load_explicit(&r->count, memory_order_relaxed);
        if (n >= r->cap) {
            if (atomic_fetch_add_explicit(&r->overflow, 1, memory_order_relaxed) == 0)
                LG_LOG(LG_LOG_WARN, "metrics", "%s: table full (%u), further names are counted as \"other\"", r->what, r->cap);
        } else {
            char *copy = malloc(len + 1);
            if (copy == NULL)
                abort();
            memcpy(copy, name, len + 1);
            id = (int)n + 1;
            r->names[id] = copy;
            unsigned mask = r->icap - 1, i = str_hash(name) & mask;
            while (atomic_load_explicit(&r->index[i], memory_order_relaxed) != 0)
                i = (i + 1) & mask;
            /* the name is written before these release stores; readers acquire them */
            atomic_store_explicit(&r->index[i], (uint16_t)id, memory_order_release);
            atomic_store_explicit(&r->count, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return id;
}

/** Label value for an id; ids not (yet) published render as "other". */
static const char *reg_name(struct registry *r, unsigned id)
{
    if (id == 0 || id > atomic_load_explicit(&r->count, memory_order_acquire))
        return "other";
    return r->names[id];
}

static void reg_reset(struct registry *r)
{
    unsigned n = atomic_load_explicit(&r->count, memory_order_relaxed);
    for (unsigned i = 1; i <= n; i++) {
        free(r->names[i]);
        r->names[i] = NULL;
    }
    for (unsigned i = 0; i < r->icap; i++)
        atomic_store_explicit(&r->index[i], 0, memory_order_relaxed);
    atomic_store_explicit(&r->count, 0, memory_order_relaxed);
    atomic_store_explicit(&r->overflow, 0, memory_order_relaxed);
}

int lg_metrics_model_id(const char *name)
{
    return reg_register(&reg_models, name);
}

int lg_metrics_provider_id(const char *name)
{
    return reg_register(&reg_providers, name);
}

int lg_metrics_mcp_server_id(const char *name)
{
    return reg_register(&reg_servers, name);
}

int lg_metrics_mcp_tool_id(const char *name)
{
    return reg_register(&reg_tools, name);
}

int lg_metrics_model_lookup(const char *name)
{
    return reg_lookup(&reg_models, name);
}

int lg_metrics_provider_lookup(const char *name)
{
    return reg_lookup(&reg_providers, name);
}

/* ---- shards ---- */

/*
 * Sparse table: keys[i] is 0 (empty) or packed labels | KEY_USED, set once
 * by CAS and never cleared; vals has nv counters per slot. Keys that cannot
 * be placed go to fold cells (a few per table, chosen by the caller) whose
 * labels are mostly "other".
 */
struct table {
    _Atomic uint64_t *keys;
    _Atomic uint64_t *vals;
    _Atomic uint64_t *fold; /* [nfold * nv] */
    _Atomic uint32_t used;
    _Atomic uint64_t overflow; /* events that went to a fold cell */
    uint32_t cap, limit, nv, nfold;
};

struct hist {
    _Atomic uint64_t b[NB]; /* per-bucket (not cumulative) counts; _count = sum */
    _Atomic uint64_t sum_ns;
};

struct shard {
    int shared;         /* written by several threads: use atomic RMW */
    struct table req;   /* route, model, provider, status -> count */
    struct table usage; /* model, provider -> prompt, completion, cost_pico */
    struct table att;   /* provider, model, outcome -> count */
    struct table mcp;   /* server, tool, ok -> count */
    struct hist dur[LG_ROUTE__COUNT];
    struct hist *ttft;    /* [MAX_MODELS + 1] */
    struct hist *mcp_dur; /* [MAX_MCP_SERVERS + 1] */
    _Atomic uint64_t streamed[LG_ROUTE__COUNT];
    _Atomic uint64_t fallbacks[LG_METRICS_MAX_MODELS + 1];
    _Atomic uint64_t rejections[REJ__COUNT];
    _Atomic uint64_t policy_errors;
};

static struct shard **shards;
static _Atomic unsigned num_shards; /* 0 = not initialised */

struct collector {
    lg_metrics_gauge_fn fn;
    void *arg;
};
static struct collector collectors[MAX_COLLECTORS];
static _Atomic unsigned num_collectors;

static void table_init(struct table *t, uint32_t cap, uint32_t nv, uint32_t nfold)
{
    t->keys = lg_calloc(cap, sizeof(*t->keys));
    t->vals = lg_calloc((size_t)cap * nv, sizeof(*t->vals));
    t->fold = lg_calloc((size_t)nfold * nv, sizeof(*t->fold));
    t->cap = cap;
    t->limit = cap / 8 * 7; /* keep probe chains short */
    t->nv = nv;
    t->nfold = nfold;
}

static void table_free(struct table *t)
{
    free((void *)t->keys);
    free((void *)t->vals);
    free((void *)t->fold);
}

void lg_metrics_init(unsigned num_workers)
{
    if (atomic_load_explicit(&num_shards, memory_order_acquire) != 0)
        return;
    unsigned n = num_workers + 1;
    shards = lg_calloc(n, sizeof(*shards));
    for (unsigned i = 0; i < n; i++) {
        /* one cache-line-aligned block per shard: no false sharing between workers */
        size_t sz = (sizeof(struct shard) + 63) / 64 * 64;
        struct shard *s = aligned_alloc(64, sz);
        if (s == NULL)
            abort();
        memset(s, 0, sz);
        s->shared = i == num_workers;
        table_init(&s->req, LG_METRICS_REQ_SLOTS, 1, 1);
        table_init(&s->usage, LG_METRICS_USAGE_SLOTS, 3, 1);
        table_init(&s->att, LG_METRICS_ATTEMPT_SLOTS, 1, 1 + LG_ERRCLASS__COUNT);
        table_init(&s->mcp, LG_METRICS_MCP_SLOTS, 1, 2);
        s->ttft = lg_calloc(LG_METRICS_MAX_MODELS + 1, sizeof(*s->ttft));
        s->mcp_dur = lg_calloc(LG_METRICS_MAX_MCP_SERVERS + 1, sizeof(*s->mcp_dur));
        shards[i] = s;
    }
    atomic_store_explicit(&num_shards, n, memory_order_release);
    lg_timeseries_init(n); /* the dashboard's 15-minute rings, same shards */
}

void lg_metrics_shutdown(void)
{
    unsigned n = atomic_load_explicit(&num_shards, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct shard *s = shards[i];
        table_free(&s->req);
        table_free(&s->usage);
        table_free(&s->att);
        table_free(&s->mcp);
        free(s->ttft);
        free(s->mcp_dur);
        free(s);
    }
    free(shards);
    shards = NULL;
    atomic_store_explicit(&num_shards, 0, memory_order_release);
    lg_timeseries_shutdown();
    atomic_store_explicit(&num_collectors, 0, memory_order_release);
    pthread_mutex_lock(&reg_lock);
    reg_reset(&reg_models);
    reg_reset(&reg_providers);
    reg_reset(&reg_servers);
    reg_reset(&reg_tools);
    pthread_mutex_unlock(&reg_lock);
}

unsigned lg_metrics_shared_shard(void)
{
    unsigned n = atomic_load_explicit(&num_shards, memory_order_acquire);
    return n > 0 ? n - 1 : 0;
}

static inline struct shard *get_shard(unsigned i)
{
    unsigned n = atomic_load_explicit(&num_shards, memory_order_acquire);
    if (n == 0)
        return NULL;
    return shards[i < n ? i : n - 1];
}

/* Owner-only shards need no locked instruction: a relaxed load+store is enough for a scraper's relaxed load. */
static inline void add(const struct shard *s, _Atomic uint64_t *p, uint64_t v)
{
    if (s->shared)
        atomic_fetch_add_explicit(p, v, memory_order_relaxed);
    else
        atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb3f99f2b2ae3);
    x ^= x >> 33;
    return x;
}

/** Counters for key (placed on first use), or fold cell `fold` when the table is full. */
static _Atomic uint64_t *table_cell(struct table *t, uint64_t key, unsigned fold)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = (uint32_t)mix64(key) & mask;
    key |= KEY_USED;
    for (unsigned probe = 0; probe < MAX_PROBE; probe++, i = (i + 1) & mask) {
        uint64_t k = atomic_load_explicit(&t->keys[i], memory_order_relaxed);
        if (k == key)
            return &t->vals[(size_t)i * t->nv];
        if (k != 0)
            continue;
        if (atomic_load_explicit(&t->used, memory_order_relaxed) >= t->limit)
            break;
        uint64_t expected = 0;
        /* release: a scraper that sees the key also sees the name ids it was built from as published */
        if (atomic_compare_exchange_strong_explicit(&t->keys[i], &expected, key, memory_order_release, memory_order_relaxed)) {
            atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed);
            return &t->vals[(size_t)i * t->nv];
        }
        if (expected == key) /* another thread of the shared shard placed it */
            return &t->vals[(size_t)i * t->nv];
    }
    atomic_fetch_add_explicit(&t->overflow, 1, memory_order_relaxed);
    return &t->fold[(size_t)fold * t->nv];
}

static inline uint64_t secs_to_ns(double s)
{
    if (!(s > 0)) /* negative, zero, NaN */
        return 0;
    if (s >= 1e9)
        return UINT64_C(1000000000000000000);
    return (uint64_t)(s * 1e9 + 0.5);
}

static inline void observe(const struct shard *s, struct hist *h, double secs)
{
    uint64_t ns = secs_to_ns(secs);
    unsigned b = 0;
    while (b < NB - 1 && ns > bucket_ns[b])
        b++;
    add(s, &h->b[b], 1);
    add(s, &h->sum_ns, ns);
}

static inline unsigned clamp_id(int id, unsigned max)
{
    return id > 0 && (unsigned)id <= max ? (unsigned)id : 0;
}

/* packed keys: fields are sorted most-significant first in the output */
#define REQ_KEY(route, model, prov, status)                                                                                        \
    (((uint64_t)(route) << 48) | ((uint64_t)(model) << 32) | ((uint64_t)(prov) << 16) | (uint64_t)(status))
#define PAIR_KEY(a, b) (((uint64_t)(a) << 16) | (uint64_t)(b))
#define TRIPLE_KEY(a, b, c) (((uint64_t)(a) << 32) | ((uint64_t)(b) << 16) | (uint64_t)(c))

void lg_metrics_request(unsigned shard, lg_route_t route, int model_id, int provider_id, int status, double duration_s,
                        double ttft_s, int64_t prompt_tokens, int64_t completion_tokens, int64_t cost_pico, int stream)
{
    struct shard *s = get_shard(shard);
    if (s == NULL)
        return;
    unsigned r = (unsigned)route < LG_ROUTE__COUNT ? (unsigned)route : LG_ROUTE_OTHER;
    unsigned m = clamp_id(model_id, LG_METRICS_MAX_MODELS);
    unsigned p = clamp_id(provider_id, LG_METRICS_MAX_PROVIDERS);
    unsigned st = status >= 200 && status <= 599 ? (unsigned)status : 0;

    add(s, table_cell(&s->req, REQ_KEY(r, m, p, st), 0), 1);
    observe(s, &s->dur[r], duration_s);
    if (ttft_s >= 0)
        observe(s, &s->ttft[m], ttft_s);
    if (stream)
        add(s, &s->streamed[r], 1);
    if (r == LG_ROUTE_CHAT || r == LG_ROUTE_COMPLETIONS || r == LG_ROUTE_EMBEDDINGS || r == LG_ROUTE_MESSAGES ||
        r == LG_ROUTE_RESPONSES)
        lg_timeseries_request(shard, status, duration_s, ttft_s, prompt_tokens, completion_tokens, cost_pico);

    uint64_t pt = prompt_tokens > 0 ? (uint64_t)prompt_tokens : 0;
    uint64_t ct = completion_tokens > 0 ? (uint64_t)completion_tokens : 0;
    uint64_t cost = cost_pico > 0 ? (uint64_t)cost_pico : 0;
    if ((pt | ct | cost) != 0) {
        _Atomic uint64_t *v = table_cell(&s->usage, PAIR_KEY(m, p), 0);
        add(s, &v[0], pt);
        add(s, &v[1], ct);
        add(s, &v[2], cost);
    }
}

void lg_metrics_attempt(unsigned shard, int provider_id, int model_id, int ok, lg_errclass_t cls)
{
    struct shard *s = get_shard(shard);
    if (s == NULL)
        return;
    /* outcome 0 = ok, 1 + class otherwise */
    unsigned out = ok ? 0 : 1 + ((unsigned)cls < LG_ERRCLASS__COUNT ? (unsigned)cls : LG_ERRCLASS_OTHER);
    uint64_t key = TRIPLE_KEY(clamp_id(provider_id, LG_METRICS_MAX_PROVIDERS), clamp_id(model_id, LG_METRICS_MAX_MODELS), out);
    add(s, table_cell(&s->att, key, out), 1);
}

void lg_metrics_fallback(unsigned shard, int model_id)
{
    struct shard *s = get_shard(shard);
    if (s != NULL)
        add(s, &s->fallbacks[clamp_id(model_id, LG_METRICS_MAX_MODELS)], 1);
    lg_timeseries_fallback(shard);
}

void lg_metrics_rejected(unsigned shard, const char *reason)
{
    struct shard *s = get_shard(shard);
    if (s == NULL)
        return;
    unsigned r = 0;
    while (r < REJ_OTHER && (reason == NULL || strcmp(reason, rej_names[r]) != 0))
        r++;
    add(s, &s->rejections[r], 1);
}

/* lg.log lines dropped by the policy VM's rate limit, all workers (the VM is above this layer: it reports, we count) */
static _Atomic uint64_t policy_log_dropped;

void lg_metrics_policy_log_dropped(uint64_t n)
{
    atomic_fetch_add_explicit(&policy_log_dropped, n, memory_order_relaxed);
}

void lg_metrics_policy_error(unsigned shard)
{
    struct shard *s = get_shard(shard);
    if (s != NULL)
        add(s, &s->policy_errors, 1);
}

void lg_metrics_mcp_call_id(unsigned shard, int server_id, int tool_id, int ok, double duration_s)
{
    struct shard *s = get_shard(shard);
    if (s == NULL)
        return;
    unsigned srv = clamp_id(server_id, LG_METRICS_MAX_MCP_SERVERS);
    unsigned okv = ok ? 1 : 0;
    add(s, table_cell(&s->mcp, TRIPLE_KEY(srv, clamp_id(tool_id, LG_METRICS_MAX_MCP_TOOLS), okv), okv), 1);
    observe(s, &s->mcp_dur[srv], duration_s);
    lg_timeseries_mcp_call(shard, (int)srv, ok);
}

void lg_metrics_mcp_call(unsigned shard, const char *server, const char *tool, int ok, double duration_s)
{
    lg_metrics_mcp_call_id(shard, reg_lookup(&reg_servers, server), reg_lookup(&reg_tools, tool), ok, duration_s);
}

const char *lg_metrics_errclass_name(lg_errclass_t cls)
{
    return (unsigned)cls < LG_ERRCLASS__COUNT ? errclass_names[cls] : "other";
}

const char *lg_metrics_route_name(lg_route_t route)
{
    return (unsigned)route < LG_ROUTE__COUNT ? route_names[route] : "other";
}

void lg_metrics_add_collector(lg_metrics_gauge_fn fn, void *arg)
{
    assert(fn != NULL);
    pthread_mutex_lock(&reg_lock);
    unsigned n = atomic_load_explicit(&num_collectors, memory_order_relaxed);
    if (n < MAX_COLLECTORS) {
        collectors[n].fn = fn;
        collectors[n].arg = arg;
        atomic_store_explicit(&num_collectors, n + 1, memory_order_release);
    } else {
        LG_LOG(LG_LOG_ERR, "metrics", "too many collectors (max %d), one ignored", MAX_COLLECTORS);
    }
    pthread_mutex_unlock(&reg_lock);
}

/* ---- text output ---- */

typedef struct {
    char *data;
    size_t len, cap;
} sbuf_t;

static void sb_reserve(sbuf_t *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL)
        abort();
    b->data = d;
    b->cap = cap;
}

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_puts(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_putc(sbuf_t *b, char c)
{
    sb_add(b, &c, 1);
}

static void sb_u64(sbuf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    sb_add(b, tmp, (size_t)n);
}

/** v / 10^decimals as an exact decimal without trailing zeros ("3e-06" style is never produced). */
static void sb_fixed(sbuf_t *b, uint64_t v, unsigned decimals)
{
    uint64_t scale = 1;
    for (unsigned i = 0; i < decimals; i++)
        scale *= 10;
    sb_u64(b, v / scale);
    uint64_t frac = v % scale;
    if (frac == 0)
        return;
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), ".%0*" PRIu64, (int)decimals, frac);
    while (n > 1 && tmp[n - 1] == '0')
        n--;
    sb_add(b, tmp, (size_t)n);
}

static void sb_double(sbuf_t *b, double v)
{
    char tmp[40];
    if (isnan(v)) {
        sb_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sb_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(tmp, sizeof(tmp), "%.0f", v);
    } else {
        /* shortest representation that reads back exactly */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
    }
    sb_puts(b, tmp);
}

/** Label value escaping per the exposition format: backslash, double quote, line feed. */
static void sb_label_value(sbuf_t *b, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        switch (*p) {
        case '\\':
            sb_add(b, "\\\\", 2);
            break;
        case '"':
            sb_add(b, "\\\"", 2);
            break;
        case '\n':
            sb_add(b, "\\n", 2);
            break;
        default:
            sb_putc(b, *p);
        }
    }
}

/** HELP escaping: backslash and line feed. */
static void sb_help(sbuf_t *b, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\\')
            sb_add(b, "\\\\", 2);
        else if (*p == '\n')
            sb_add(b, "\\n", 2);
        else
            sb_putc(b, *p);
    }
}

struct wfam {
    char *name;
    const char *type; /* "counter", "gauge", "histogram" */
    sbuf_t text;      /* HELP, TYPE, then the samples */
};

struct lg_metrics_writer {
    struct wfam *fams;
    size_t n, cap;
    size_t last; /* index of the family written last (fast path for runs of one family) */
};

/** The family's buffer, created with its HELP/TYPE header on first use; NULL if it exists with another type. */
static sbuf_t *fam(lg_metrics_writer_t *w, const char *name, const char *help, const char *type)
{
    if (w->last < w->n && strcmp(w->fams[w->last].name, name) == 0)
        return w->fams[w->last].type == type || strcmp(w->fams[w->last].type, type) == 0 ? &w->fams[w->last].text : NULL;
    for (size_t i = 0; i < w->n; i++) {
        if (strcmp(w->fams[i].name, name) == 0) {
            w->last = i;
            return strcmp(w->fams[i].type, type) == 0 ? &w->fams[i].text : NULL;
        }
    }
    if (w->n == w->cap) {
        size_t cap = w->cap != 0 ? w->cap * 2 : 32;
        struct wfam *f = realloc(w->fams, cap * sizeof(*f));
        if (f == NULL)
            abort();
        w->fams = f;
        w->cap = cap;
    }
    struct wfam *f = &w->fams[w->n];
    memset(f, 0, sizeof(*f));
    size_t len = strlen(name);
    f->name = malloc(len + 1);
    if (f->name == NULL)
        abort();
    memcpy(f->name, name, len + 1);
    f->type = type;
    sb_puts(&f->text, "# HELP ");
    sb_puts(&f->text, name);
    sb_putc(&f->text, ' ');
    sb_help(&f->text, help != NULL ? help : "");
    sb_puts(&f->text, "\n# TYPE ");
    sb_puts(&f->text, name);
    sb_putc(&f->text, ' ');
    sb_puts(&f->text, type);
    sb_putc(&f->text, '\n');
    w->last = w->n++;
    return &f->text;
}

static int valid_name(const char *s, int colon_ok)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':') ||
                 (p != s && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static void write_sample(lg_metrics_writer_t *w, const char *type, const char *family, const char *help, double value, va_list ap)
{
    const char *labels[2 * 16];
    size_t nl = 0;
    const char *ln;
    while ((ln = va_arg(ap, const char *)) != NULL) {
        const char *lv = va_arg(ap, const char *);
        if (nl == sizeof(labels) / sizeof(labels[0]) || !valid_name(ln, 0) || strncmp(ln, "__", 2) == 0 || lv == NULL) {
            LG_LOG(LG_LOG_WARN, "metrics", "%s: invalid or too many labels, sample dropped", family);
            return;
        }
        labels[nl++] = ln;
        labels[nl++] = lv;
    }
    if (!valid_name(family, 1)) {
        LG_LOG(LG_LOG_WARN, "metrics", "invalid metric name, sample dropped");
        return;
    }
    sbuf_t *b = fam(w, family, help, type);
    if (b == NULL) {
        LG_LOG(LG_LOG_WARN, "metrics", "%s: written as %s after another type, sample dropped", family, type);
        return;
    }
    sb_puts(b, family);
    for (size_t i = 0; i < nl; i += 2) {
        sb_putc(b, i == 0 ? '{' : ',');
        sb_puts(b, labels[i]);
        sb_puts(b, "=\"");
        sb_label_value(b, labels[i + 1]);
        sb_putc(b, '"');
    }
    if (nl != 0)
        sb_putc(b, '}');
    sb_putc(b, ' ');
    sb_double(b, value);
    sb_putc(b, '\n');
}

void lg_metrics_write_gauge(lg_metrics_writer_t *w, const char *family, const char *help, double value, ...)
{
    va_list ap;
    va_start(ap, value);
    write_sample(w, "gauge", family, help, value, ap);
    va_end(ap);
}

void lg_metrics_write_counter(lg_metrics_writer_t *w, const char *family, const char *help, double value, ...)
{
    va_list ap;
    va_start(ap, value);
    write_sample(w, "counter", family, help, value, ap);
    va_end(ap);
}

/* ---- merging shards ---- */

struct merged {
    uint64_t key; /* without KEY_USED; 0 is a valid key, so `used` marks slots */
    uint64_t v[3];
    int used;
};

struct mmap_ {
    struct merged *slots;
    size_t cap, n;
};

static void mm_add(struct mmap_ *m, uint64_t key, const _Atomic uint64_t *v, uint32_t nv)
{
    size_t mask = m->cap - 1, i = (size_t)mix64(key) & mask;
    while (m->slots[i].used && m->slots[i].key != key)
        i = (i + 1) & mask;
    struct merged *e = &m->slots[i];
    if (!e->used) {
        e->used = 1;
        e->key = key;
        m->n++;
    }
    for (uint32_t j = 0; j < nv; j++)
        e->v[j] += atomic_load_explicit(&v[j], memory_order_relaxed);
}

static int cmp_merged(const void *a, const void *b)
{
    uint64_t x = ((const struct merged *)a)->key, y = ((const struct merged *)b)->key;
    return x < y ? -1 : x > y;
}

typedef uint64_t (*fold_key_fn)(unsigned fold);

/** Sum one table over all shards; returns a sorted array of *n entries (caller frees). */
static struct merged *merge_table(size_t off, fold_key_fn fold_key, size_t *n)
{
    unsigned ns = atomic_load_explicit(&num_shards, memory_order_acquire);
    size_t total = 0;
    for (unsigned s = 0; s < ns; s++) {
        struct table *t = (struct table *)((char *)shards[s] + off);
        total += atomic_load_explicit(&t->used, memory_order_relaxed) + t->nfold;
    }
    /* `used` may grow while we scan: size for a full table per shard is too much, so size generously and cap */
    struct mmap_ m = {0};
    m.cap = 64;
    while (m.cap < 2 * (total + 64))
        m.cap *= 2;
    m.slots = lg_calloc(m.cap, sizeof(*m.slots));
    for (unsigned s = 0; s < ns; s++) {
        struct table *t = (struct table *)((char *)shards[s] + off);
        for (uint32_t i = 0; i < t->cap; i++) {
            uint64_t k = atomic_load_explicit(&t->keys[i], memory_order_acquire);
            if (k == 0)
                continue;
            if (2 * (m.n + 1) > m.cap) /* keys inserted since we sized: fold them into "other" */
                k = fold_key(0) | KEY_USED;
            mm_add(&m, k & ~KEY_USED, &t->vals[(size_t)i * t->nv], t->nv);
        }
        for (uint32_t f = 0; f < t->nfold; f++) {
            const _Atomic uint64_t *v = &t->fold[(size_t)f * t->nv];
            uint64_t sum = 0;
            for (uint32_t j = 0; j < t->nv; j++)
                sum |= atomic_load_explicit(&v[j], memory_order_relaxed);
            if (sum != 0) /* only fold cells that were used */
                mm_add(&m, fold_key(f), v, t->nv);
        }
    }
    /* compact and sort */
    size_t j = 0;
    for (size_t i = 0; i < m.cap; i++)
        if (m.slots[i].used)
            m.slots[j++] = m.slots[i];
    qsort(m.slots, j, sizeof(*m.slots), cmp_merged);
    *n = j;
    return m.slots;
}

static uint64_t fold_req(unsigned f)
{
    (void)f;
    return REQ_KEY(LG_ROUTE_OTHER, 0, 0, 0);
}

static uint64_t fold_pair(unsigned f)
{
    (void)f;
    return PAIR_KEY(0, 0);
}

static uint64_t fold_att(unsigned f)
{
    return TRIPLE_KEY(0, 0, f);
}

static uint64_t fold_mcp(unsigned f)
{
    return TRIPLE_KEY(0, 0, f);
}

static uint64_t sum_u64(size_t off_in_shard)
{
    unsigned ns = atomic_load_explicit(&num_shards, memory_order_acquire);
    uint64_t sum = 0;
    for (unsigned s = 0; s < ns; s++)
        sum += atomic_load_explicit((_Atomic uint64_t *)((char *)shards[s] + off_in_shard), memory_order_relaxed);
    return sum;
}

static uint64_t sum_table_overflow(size_t off)
{
    return sum_u64(off + offsetof(struct table, overflow));
}

static void label(sbuf_t *b, int first, const char *name, const char *value)
{
    sb_putc(b, first ? '{' : ',');
    sb_puts(b, name);
    sb_puts(b, "=\"");
    sb_label_value(b, value);
    sb_putc(b, '"');
}

/** Sum histograms at hist_off + i*stride in every shard. Returns 0 if nothing was observed. */
static int sum_hist(size_t hist_off, struct hist *out)
{
    unsigned ns = atomic_load_explicit(&num_shards, memory_order_acquire);
    uint64_t count = 0;
    memset(out, 0, sizeof(*out));
    for (unsigned s = 0; s < ns; s++) {
        const struct hist *h = (const struct hist *)((const char *)shards[s] + hist_off);
        for (unsigned b = 0; b < NB; b++) {
            uint64_t v = atomic_load_explicit(&h->b[b], memory_order_relaxed);
            out->b[b] += v;
            count += v;
        }
        out->sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    }
    return count != 0;
}

/** Same for histograms in a per-shard heap array (struct hist *field at ptr_off, index i). */
static int sum_hist_arr(size_t ptr_off, unsigned i, struct hist *out)
{
    unsigned ns = atomic_load_explicit(&num_shards, memory_order_acquire);
    uint64_t count = 0;
    memset(out, 0, sizeof(*out));
    for (unsigned s = 0; s < ns; s++) {
        const struct hist *h = *(struct hist *const *)((const char *)shards[s] + ptr_off) + i;
        for (unsigned b = 0; b < NB; b++) {
            uint64_t v = atomic_load_explicit(&h->b[b], memory_order_relaxed);
            out->b[b] += v;
            count += v;
        }
        out->sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    }
    return count != 0;
}

static void write_hist(sbuf_t *b, const char *name, const char *lname, const char *lvalue, const struct hist *h)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < NB; i++) {
        cum += h->b[i];
        sb_puts(b, name);
        sb_puts(b, "_bucket");
        label(b, 1, lname, lvalue);
        label(b, 0, "le", bucket_le[i]);
        sb_puts(b, "} ");
        sb_u64(b, cum);
        sb_putc(b, '\n');
    }
    sb_puts(b, name);
    sb_puts(b, "_sum");
    label(b, 1, lname, lvalue);
    sb_puts(b, "} ");
    sb_fixed(b, h->sum_ns, 9);
    sb_putc(b, '\n');
    sb_puts(b, name);
    sb_puts(b, "_count");
    label(b, 1, lname, lvalue);
    sb_puts(b, "} ");
    sb_u64(b, cum);
    sb_putc(b, '\n');
}

static const char *outcome_name(unsigned out)
{
    return out == 0 ? "ok" : lg_metrics_errclass_name((lg_errclass_t)(out - 1));
}

static void render_builtin(lg_metrics_writer_t *w)
{
    size_t n;
    struct merged *e;
    sbuf_t *b;
    struct hist h;

    e = merge_table(offsetof(struct shard, req), fold_req, &n);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = e[i].key;
        unsigned st = (unsigned)(k & 0xffff);
        char stbuf[8];
        snprintf(stbuf, sizeof(stbuf), "%u", st);
        b = fam(w, "llmgate_requests_total", "Finished requests by route, model, provider and HTTP status.", "counter");
        sb_puts(b, "llmgate_requests_total");
        label(b, 1, "route", lg_metrics_route_name((lg_route_t)((k >> 48) & 0xff)));
        label(b, 0, "model", reg_name(&reg_models, (unsigned)((k >> 32) & 0xffff)));
        label(b, 0, "provider", reg_name(&reg_providers, (unsigned)((k >> 16) & 0xffff)));
        label(b, 0, "status", st != 0 ? stbuf : "other");
        sb_puts(b, "} ");
        sb_u64(b, e[i].v[0]);
        sb_putc(b, '\n');
    }
    free(e);

    for (unsigned r = 0; r < LG_ROUTE__COUNT; r++) {
        if (!sum_hist(offsetof(struct shard, dur) + r * sizeof(struct hist), &h))
            continue;
        b = fam(w, "llmgate_request_duration_seconds", "Request duration from arrival to the last byte, by route.", "histogram");
        write_hist(b, "llmgate_request_duration_seconds", "route", route_names[r], &h);
    }
    for (unsigned r = 0; r < LG_ROUTE__COUNT; r++) {
        uint64_t v = sum_u64(offsetof(struct shard, streamed) + r * sizeof(_Atomic uint64_t));
        if (v == 0)
            continue;
        b = fam(w, "llmgate_streamed_requests_total", "Finished requests that asked for a streamed (SSE) response.", "counter");
        sb_puts(b, "llmgate_streamed_requests_total");
        label(b, 1, "route", route_names[r]);
        sb_puts(b, "} ");
        sb_u64(b, v);
        sb_putc(b, '\n');
    }
    for (unsigned m = 0; m <= LG_METRICS_MAX_MODELS; m++) {
        if (!sum_hist_arr(offsetof(struct shard, ttft), m, &h))
            continue;
        b = fam(w, "llmgate_time_to_first_token_seconds",
                "Time from request arrival to the first content byte sent to the client, by model.", "histogram");
        write_hist(b, "llmgate_time_to_first_token_seconds", "model", reg_name(&reg_models, m), &h);
    }

    e = merge_table(offsetof(struct shard, usage), fold_pair, &n);
    for (size_t i = 0; i < n; i++) {
        const char *model = reg_name(&reg_models, (unsigned)((e[i].key >> 16) & 0xffff));
        const char *prov = reg_name(&reg_providers, (unsigned)(e[i].key & 0xffff));
        b = fam(w, "llmgate_tokens_total", "Tokens reported by providers, by model, provider and direction.", "counter");
        for (int d = 0; d < 2; d++) {
            sb_puts(b, "llmgate_tokens_total");
            label(b, 1, "model", model);
            label(b, 0, "provider", prov);
            label(b, 0, "direction", d == 0 ? "prompt" : "completion");
            sb_puts(b, "} ");
            sb_u64(b, e[i].v[d]);
            sb_putc(b, '\n');
        }
    }
    for (size_t i = 0; i < n; i++) {
        b = fam(w, "llmgate_cost_usd_total", "Cost charged for requests in US dollars, by model and provider.", "counter");
        sb_puts(b, "llmgate_cost_usd_total");
        label(b, 1, "model", reg_name(&reg_models, (unsigned)((e[i].key >> 16) & 0xffff)));
        label(b, 0, "provider", reg_name(&reg_providers, (unsigned)(e[i].key & 0xffff)));
        sb_puts(b, "} ");
        sb_fixed(b, e[i].v[2], 12); /* exact: pico-dollars kept as integers */
        sb_putc(b, '\n');
    }
    free(e);

    e = merge_table(offsetof(struct shard, att), fold_att, &n);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = e[i].key;
        b = fam(w, "llmgate_upstream_attempts_total", "Upstream attempts by provider, model and outcome (ok or error class).",
                "counter");
        sb_puts(b, "llmgate_upstream_attempts_total");
        label(b, 1, "provider", reg_name(&reg_providers, (unsigned)((k >> 32) & 0xffff)));
        label(b, 0, "model", reg_name(&reg_models, (unsigned)((k >> 16) & 0xffff)));
        label(b, 0, "outcome", outcome_name((unsigned)(k & 0xffff)));
        sb_puts(b, "} ");
        sb_u64(b, e[i].v[0]);
        sb_putc(b, '\n');
    }
    free(e);

    for (unsigned m = 0; m <= LG_METRICS_MAX_MODELS; m++) {
        uint64_t v = sum_u64(offsetof(struct shard, fallbacks) + m * sizeof(_Atomic uint64_t));
        if (v == 0)
            continue;
        b = fam(w, "llmgate_fallbacks_total", "Requests that succeeded after more than one upstream attempt, by model.", "counter");
        sb_puts(b, "llmgate_fallbacks_total");
        label(b, 1, "model", reg_name(&reg_models, m));
        sb_puts(b, "} ");
        sb_u64(b, v);
        sb_putc(b, '\n');
    }

    b = fam(w, "llmgate_rejections_total", "Requests rejected at admission, by reason.", "counter");
    for (unsigned r = 0; r < REJ__COUNT; r++) {
        sb_puts(b, "llmgate_rejections_total");
        label(b, 1, "reason", rej_names[r]);
        sb_puts(b, "} ");
        sb_u64(b, sum_u64(offsetof(struct shard, rejections) + r * sizeof(_Atomic uint64_t)));
        sb_putc(b, '\n');
    }

    b = fam(w, "llmgate_policy_errors_total", "Routing policy errors (the request used the built-in plan).", "counter");
    sb_puts(b, "llmgate_policy_errors_total ");
    sb_u64(b, sum_u64(offsetof(struct shard, policy_errors)));
    sb_putc(b, '\n');

    b = fam(w, "llmgate_policy_log_lines_dropped_total", "lg.log lines dropped by the per-policy rate limit.", "counter");
    sb_puts(b, "llmgate_policy_log_lines_dropped_total ");
    sb_u64(b, atomic_load_explicit(&policy_log_dropped, memory_order_relaxed));
    sb_putc(b, '\n');

    e = merge_table(offsetof(struct shard, mcp), fold_mcp, &n);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = e[i].key;
        b = fam(w, "llmgate_mcp_tool_calls_total", "MCP tool calls by server, tool and outcome.", "counter");
        sb_puts(b, "llmgate_mcp_tool_calls_total");
        label(b, 1, "server", reg_name(&reg_servers, (unsigned)((k >> 32) & 0xffff)));
        label(b, 0, "tool", reg_name(&reg_tools, (unsigned)((k >> 16) & 0xffff)));
        label(b, 0, "outcome", (k & 0xffff) != 0 ? "ok" : "error");
        sb_puts(b, "} ");
        sb_u64(b, e[i].v[0]);
        sb_putc(b, '\n');
    }
    free(e);
    for (unsigned s = 0; s <= LG_METRICS_MAX_MCP_SERVERS; s++) {
        if (!sum_hist_arr(offsetof(struct shard, mcp_dur), s, &h))
            continue;
        b = fam(w, "llmgate_mcp_tool_duration_seconds", "MCP tool call duration, by server.", "histogram");
        write_hist(b, "llmgate_mcp_tool_duration_seconds", "server", reg_name(&reg_servers, s), &h);
    }

    static const struct {
        const char *name;
        size_t off;
    } tables[] = {
        {"requests", offsetof(struct shard, req)},
        {"usage", offsetof(struct shard, usage)},
        {"attempts", offsetof(struct shard, att)},
        {"mcp_calls", offsetof(struct shard, mcp)},
    };
    struct registry *regs[] = {&reg_models, &reg_providers, &reg_servers, &reg_tools};
    b = fam(w, "llmgate_metrics_overflow_total",
            "Events whose labels were folded into \"other\" because a bounded metrics table was full.", "counter");
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        sb_puts(b, "llmgate_metrics_overflow_total");
        label(b, 1, "table", tables[i].name);
        sb_puts(b, "} ");
        sb_u64(b, sum_table_overflow(tables[i].off));
        sb_putc(b, '\n');
    }
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        sb_puts(b, "llmgate_metrics_overflow_total");
        label(b, 1, "table", regs[i]->what);
        sb_puts(b, "} ");
        sb_u64(b, atomic_load_explicit(&regs[i]->overflow, memory_order_relaxed));
        sb_putc(b, '\n');
    }
}

char *lg_metrics_render(size_t *len)
{
    lg_metrics_writer_t w = {0};
    if (atomic_load_explicit(&num_shards, memory_order_acquire) != 0)
        render_builtin(&w);
    unsigned nc = atomic_load_explicit(&num_collectors, memory_order_acquire);
    for (unsigned i = 0; i < nc; i++)
        collectors[i].fn(&w, collectors[i].arg);

    size_t total = 0;
    for (size_t i = 0; i < w.n; i++)
        total += w.fams[i].text.len;
    char *out = malloc(total + 1);
    if (out == NULL)
        abort();
    size_t pos = 0;
    for (size_t i = 0; i < w.n; i++) {
        memcpy(out + pos, w.fams[i].text.data, w.fams[i].text.len);
        pos += w.fams[i].text.len;
        free(w.fams[i].text.data);
        free(w.fams[i].name);
    }
    out[pos] = '\0';
    free(w.fams);
    if (len != NULL)
        *len = pos;
    return out;
}
