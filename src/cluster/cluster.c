/* SPDX-License-Identifier: MIT */
/*
 * Scale-out state and the cluster thread (see cluster.h). Workers talk to
 * Redis on their own loops through their own connection; the cluster thread
 * owns the subscriber connection (events from other replicas), a command
 * connection (liveness, publishing), and the re-sync jobs, which run on the
 * libuv threadpool because they read the store.
 */
#include <netdb.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include "auth/gate.h"
#include "cluster/cluster.h"
#include "cluster/redis_conn.h"
#include "cluster/scripts.h"
#include "core/log.h"
#include "core/redis_url.h"
#include "core/util.h"
#include "metrics/metrics.h"
#include "router/stats.h"

#define MAX_WORKERS 256
#define KEY_MAX 192
#define KV_VALUE_MAX (1024 * 1024)
#define STATS_MSG_MAX (64 * 1024)
#define TICK_MS 1000

struct worker_ctx {
    lg_redis_conn_t *conn;
    unsigned index;
};

static struct {
    int enabled;
    char name[72];
    char prefix[96]; /* "llmgate:<name>:" */
    char replica[96];
    char ip[INET6_ADDRSTRLEN];
    lg_redis_url_t url;
    uint32_t timeout_ms, connect_timeout_ms;
    int rl_closed, credit_closed, share_health;

    /* cluster thread */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    lg_redis_conn_t *sub, *cmd;
    uv_work_t sync_work;
    int sync_running, sync_again;
    _Atomic int keys_dirty; /* keys changed here: publish on the next wake */
    _Atomic int stopping;
    int started;

    _Atomic int sub_ready;        /* the subscriber connection is up (read by /health on worker threads) */
    _Atomic int shared_up;        /* subscribed and re-synced */
    _Atomic int64_t last_sync_ms; /* unix ms of the last completed re-sync */
    _Atomic uint64_t syncs, degraded_open, degraded_closed, remote_admits, remote_refusals, health_events_in, health_events_out;
} cl;

static struct worker_ctx *workers[MAX_WORKERS];
static _Thread_local struct worker_ctx *self;

/* ---- small helpers ---- */

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int lg_cluster_enabled(void)
{
    return cl.enabled;
}

const char *lg_cluster_replica_id(void)
{
    return cl.enabled ? cl.replica : "";
}

int lg_cluster_up(void)
{
    return cl.enabled && atomic_load_explicit(&cl.shared_up, memory_order_acquire) && self != NULL &&
           lg_redis_conn_state(self->conn) == LG_REDIS_READY;
}

static void key_names(const lg_key_limits_t *lim, char rl[KEY_MAX], char cr[KEY_MAX])
{
    snprintf(rl, KEY_MAX, "%s{%s}:rl", cl.prefix, lim->id);
    if (lim->period == LG_RESET_NONE)
        snprintf(cr, KEY_MAX, "%s{%s}:cr:all", cl.prefix, lim->id);
    else
        snprintf(cr, KEY_MAX, "%s{%s}:cr:%lld", cl.prefix, lim->id, (long long)lim->period_start_ms);
}

/* A period's counter outlives its period a little; a never-resetting one is re-seeded from the ledger after a year. */
static const char *credit_ttl(lg_reset_period_t p)
{
    switch (p) {
    case LG_RESET_DAILY:
        return "172800";
    case LG_RESET_WEEKLY:
        return "691200";
    case LG_RESET_MONTHLY:
        return "2764800";
    default:
        return "34560000";
    }
}

/* ---- admission ---- */

static _Thread_local struct {
    int active;
    char id[LG_KEY_ID_LEN + 1];
    lg_cluster_verdict_t v;
    lg_key_entry_t *key;
} tl;

struct pending_admit {
    lg_cluster_admit_cb *cb;
    void *arg;
    int64_t est;
    int fail_closed; /* what to answer if Redis fails on this request */
};

static int fail_closed_for(const lg_key_limits_t *lim)
{
    return ((lim->rpm > 0 || lim->tpm > 0) && cl.rl_closed) || (lim->credit_limit_pico >= 0 && cl.credit_closed);
}

void lg_cluster_count_degraded(int refused)
{
    atomic_fetch_add_explicit(refused ? &cl.degraded_closed : &cl.degraded_open, 1, memory_order_relaxed);
}

static void on_admit_reply(void *arg, const redisReply *r)
{
    struct pending_admit *p = arg;
    lg_cluster_verdict_t v = {.status = LG_VERDICT_LOCAL};
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 6) {
        int ok = 1;
        for (size_t i = 0; i < 6; ++i)
            ok &= r->element[i]->type == REDIS_REPLY_INTEGER;
        if (ok) {
            v.status = (int)r->element[0]->integer;
            v.retry_after_ms = r->element[1]->integer;
            v.limit = r->element[2]->integer;
            v.remaining = r->element[3]->integer;
            v.reset_unix_ms = r->element[4]->integer;
            v.charged = v.status == LG_ADMIT_OK ? p->est : 0;
            atomic_fetch_add_explicit(v.status == LG_ADMIT_OK ? &cl.remote_admits : &cl.remote_refusals, 1, memory_order_relaxed);
        }
    } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        /* e.g. NOAUTH, OOM, a read-only replica: say so, but not once per request */
        static _Atomic int64_t last_log_ms;
        int64_t now = lg_now_ms(), last = atomic_load(&last_log_ms);
        if ((last == 0 || now - last >= 10000) && atomic_compare_exchange_strong(&last_log_ms, &last, now))
            LG_LOG(LG_LOG_ERR, "cluster", "admit script failed (deciding per cluster.on_redis_down): %.*s", (int)r->len, r->str);
    }
    if (v.status == LG_VERDICT_LOCAL) {
        /* Redis failed on this request: the configured fallback decides */
        if (p->fail_closed)
            v.status = LG_VERDICT_REFUSE;
        lg_cluster_count_degraded(p->fail_closed);
    }
    p->cb(p->arg, &v);
    free(p);
}

int lg_cluster_preadmit(lg_key_entry_t *key, int64_t est_tokens, lg_cluster_admit_cb *cb, void *arg)
{
    lg_key_limits_t lim;
    char rl[KEY_MAX], cr[KEY_MAX], a[6][24];
    if (!cl.enabled || self == NULL)
        return LG_CLUSTER_LOCAL;
    lg_key_limits(key, lg_gate_now_ms(), &lim);
    if (lim.rpm == 0 && lim.tpm == 0 && lim.credit_limit_pico < 0)
        return LG_CLUSTER_LOCAL; /* nothing shared to check */
    int closed = fail_closed_for(&lim);
    if (!lg_cluster_up()) {
        lg_cluster_count_degraded(closed);
        return closed ? LG_CLUSTER_REFUSE : LG_CLUSTER_LOCAL;
    }
    if (est_tokens < 0)
        est_tokens = 0;
    key_names(&lim, rl, cr);
    snprintf(a[0], 24, "%u", lim.rpm);
    snprintf(a[1], 24, "%u", lim.tpm);
    snprintf(a[2], 24, "%lld", (long long)est_tokens);
    snprintf(a[3], 24, "%lld", (long long)lim.credit_limit_pico);
    snprintf(a[4], 24, "%lld", (long long)(lim.used_pico - lim.owed_pico));
    const char *argv[8] = {rl, cr, a[0], a[1], a[2], a[3], a[4], credit_ttl(lim.period)};
    size_t lens[8];
    for (int i = 0; i < 8; ++i)
        lens[i] = strlen(argv[i]);
    struct pending_admit *p = lg_malloc(sizeof(*p));
    p->cb = cb;
    p->arg = arg;
    p->est = est_tokens;
    p->fail_closed = closed;
    if (lg_redis_eval(self->conn, &lg_script_admit, on_admit_reply, p, 2, 8, argv, lens) != 0) {
        free(p);
        lg_cluster_count_degraded(closed);
        return closed ? LG_CLUSTER_REFUSE : LG_CLUSTER_LOCAL;
    }
    return LG_CLUSTER_PENDING;
}

static void on_adjust_reply(void *arg, const redisReply *r)
{
    lg_key_entry_t *e = arg;
    (void)r;
    lg_key_entry_release(e);
}

/* Fire-and-forget bucket/credit adjustment. Returns 0 when sent. */
static int send_adjust(lg_key_entry_t *e, const lg_key_limits_t *lim, int64_t rpm_delta, int64_t tpm_delta, int64_t cost,
                       int64_t seed)
{
    char rl[KEY_MAX], cr[KEY_MAX], a[6][24];
    if (!lg_cluster_up())
        return -1;
    key_names(lim, rl, cr);
    snprintf(a[0], 24, "%u", lim->rpm);
    snprintf(a[1], 24, "%u", lim->tpm);
    snprintf(a[2], 24, "%lld", (long long)rpm_delta);
    snprintf(a[3], 24, "%lld", (long long)tpm_delta);
    snprintf(a[4], 24, "%lld", (long long)cost);
    snprintf(a[5], 24, "%lld", (long long)(seed > 0 ? seed : 0));
    const char *argv[9] = {rl, cr, a[0], a[1], a[2], a[3], a[4], a[5], credit_ttl(lim->period)};
    size_t lens[9];
    for (int i = 0; i < 9; ++i)
        lens[i] = strlen(argv[i]);
    lg_key_entry_ref(e);
    if (lg_redis_eval(self->conn, &lg_script_adjust, on_adjust_reply, e, 2, 9, argv, lens) != 0) {
        lg_key_entry_release(e);
        return -1;
    }
    return 0;
}

void lg_cluster_verdict_begin(lg_key_entry_t *key, const lg_cluster_verdict_t *v)
{
    tl.active = 1;
    tl.v = *v;
    tl.key = key;
    snprintf(tl.id, sizeof(tl.id), "%s", lg_key_entry_record(key)->id);
}

void lg_cluster_refund(lg_key_entry_t *key, const lg_cluster_verdict_t *v)
{
    if (v->status != LG_ADMIT_OK)
        return;
    lg_key_limits_t lim;
    lg_key_limits(key, lg_gate_now_ms(), &lim);
    send_adjust(key, &lim, 1, v->charged, 0, 0);
}

void lg_cluster_verdict_end(void)
{
    if (tl.active) /* the handler refused the request before admission (bad body, unknown model): give it back */
        lg_cluster_refund(tl.key, &tl.v);
    tl.active = 0;
    tl.key = NULL;
}

/* keytable hook: the shared verdict decides the admission it was made for */
static int remote_admit(lg_key_entry_t *e, const lg_key_limits_t *lim, int64_t est_tokens, int64_t now_ms, lg_admit_t *out)
{
    (void)now_ms;
    if (!tl.active || strcmp(tl.id, lim->id) != 0)
        return 0;
    tl.active = 0;
    const lg_cluster_verdict_t *v = &tl.v;
    out->retry_after_ms = 0;
    out->limit = v->limit;
    out->remaining = v->remaining;
    out->reset_unix_ms = v->reset_unix_ms;
    switch (v->status) {
    case LG_ADMIT_OK:
        out->err = 0;
        out->reason = NULL;
        /* the exchange's estimate (parsed messages) is at most the body-size bound we charged: give back the difference */
        if (v->charged != est_tokens && lim->tpm > 0)
            send_adjust(e, lim, 0, v->charged - est_tokens, 0, 0);
        return 1;
    case LG_ADMIT_RPM:
    case LG_ADMIT_TPM:
        out->err = LG_ERATELIMIT;
        out->reason = v->status == LG_ADMIT_RPM ? "rpm" : "tpm";
        out->retry_after_ms = v->retry_after_ms > 0 ? v->retry_after_ms : 1;
        return 1;
    case LG_ADMIT_CREDIT:
        out->err = LG_ECREDIT;
        out->reason = "credit";
        return 1;
    default:
        return 0;
    }
}

/* keytable hook: TPM correction and credit spent go to Redis; what cannot be delivered now is owed */
static int remote_settle(lg_key_entry_t *e, const lg_key_limits_t *lim, int64_t est_tokens, int64_t actual_tokens,
                         int64_t cost_pico, int64_t now_ms)
{
    (void)now_ms;
    if (!cl.enabled || self == NULL)
        return 0; /* not a worker thread (tests, MCP stdio): local only */
    if (lim->rpm == 0 && lim->tpm == 0 && lim->credit_limit_pico < 0)
        return 0;
    int64_t cost = cost_pico > 0 ? cost_pico : 0;
    int64_t owed = lg_key_owed_take(e);
    int64_t tpm_delta = lim->tpm > 0 ? est_tokens - actual_tokens : 0;
    /* seed for a counter Redis lost: what we knew before this delivery (used_pico already includes cost and owed) */
    int64_t seed = lim->used_pico - cost - owed;
    if (lim->credit_limit_pico < 0)
        cost = owed = 0; /* no credit limit: nobody reads the shared counter */
    if ((tpm_delta == 0 && cost + owed == 0) || send_adjust(e, lim, 0, tpm_delta, cost + owed, seed) == 0)
        return lg_cluster_up();
    if (cost + owed > 0)
        lg_key_owed_add(e, cost + owed);
    return 0;
}

static const lg_key_remote_ops_t remote_ops = {.admit = remote_admit, .settle = remote_settle};

/* ---- health sharing ---- */

static void publish_reply(void *arg, const redisReply *r)
{
    (void)arg;
    (void)r;
}

static void on_unhealthy(const lg_endpoint_stats_t *s, uint32_t cooldown_ms)
{
    char chan[KEY_MAX], msg[512];
    if (!lg_cluster_up() || !cl.share_health)
        return;
    snprintf(chan, sizeof(chan), "%sev:health", cl.prefix);
    int n = snprintf(msg, sizeof(msg), "%s\t%s\t%s\t%u", cl.replica, s->provider, s->model, cooldown_ms);
    if (n <= 0 || (size_t)n >= sizeof(msg))
        return;
    const char *argv[3] = {"PUBLISH", chan, msg};
    size_t lens[3] = {7, strlen(chan), (size_t)n};
    if (lg_redis_call(self->conn, publish_reply, NULL, 3, argv, lens) == 0)
        atomic_fetch_add_explicit(&cl.health_events_out, 1, memory_order_relaxed);
    /* also kept for the cooldown's duration, so a replica that starts (or reconnects) meanwhile learns it at its sync */
    char key[KEY_MAX + 320], ttl[16];
    int kn = snprintf(key, sizeof(key), "%scd:%s\t%s", cl.prefix, s->provider, s->model);
    if (kn <= 0 || (size_t)kn >= sizeof(key))
        return;
    snprintf(ttl, sizeof(ttl), "%u", cooldown_ms);
    const char *set[5] = {"SET", key, "1", "PX", ttl};
    size_t setl[5] = {3, (size_t)kn, 1, 2, strlen(ttl)};
    lg_redis_call(self->conn, publish_reply, NULL, 5, set, setl);
}

/* Sync side (threadpool, may block): cooldowns other replicas found while we were away or not yet running. */
static void load_cooldowns(void)
{
    struct timeval tv = {.tv_sec = cl.connect_timeout_ms / 1000, .tv_usec = (cl.connect_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(cl.ip, cl.url.port, tv);
    if (c == NULL || c->err) {
        redisFree(c);
        return;
    }
    struct timeval ctv = {.tv_sec = cl.timeout_ms / 1000, .tv_usec = (cl.timeout_ms % 1000) * 1000 + 100000};
    redisSetTimeout(c, ctv);
    redisReply *r;
    if (cl.url.password[0] != '\0') {
        r = cl.url.user[0] != '\0' ? redisCommand(c, "AUTH %s %s", cl.url.user, cl.url.password)
                                   : redisCommand(c, "AUTH %s", cl.url.password);
        freeReplyObject(r);
    }
    if (cl.url.db != 0)
        freeReplyObject(redisCommand(c, "SELECT %d", cl.url.db));
    char pattern[KEY_MAX], cursor[32] = "0";
    snprintf(pattern, sizeof(pattern), "%scd:*", cl.prefix);
    size_t plen = strlen(cl.prefix) + 3;
    int rounds = 0;
    do {
        r = redisCommand(c, "SCAN %s MATCH %s COUNT 500", cursor, pattern);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str != NULL ? r->element[0]->str : "0");
        for (size_t i = 0; i < r->element[1]->elements; ++i) {
            const redisReply *k = r->element[1]->element[i];
            if (k->type != REDIS_REPLY_STRING || k->len <= plen || k->len > 600)
                continue;
            redisReply *t = redisCommand(c, "PTTL %b", k->str, k->len);
            char name[640];
            memcpy(name, k->str + plen, k->len - plen);
            name[k->len - plen] = '\0';
            char *tab = strchr(name, '\t');
            if (t != NULL && t->type == REDIS_REPLY_INTEGER && t->integer > 0 && tab != NULL && tab != name && tab[1] != '\0') {
                *tab = '\0';
                lg_stats_mark_unhealthy(lg_stats_endpoint(name, tab + 1),
                                        (uint32_t)(t->integer > 86400000 ? 86400000 : t->integer));
            }
            freeReplyObject(t);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0 && ++rounds < 1000);
    redisFree(c);
}

/* "<replica>\t<provider>\t<model>\t<cooldown_ms>" from another replica */
static void apply_health(const char *msg, size_t len)
{
    char buf[512], *f[4];
    if (len >= sizeof(buf))
        return;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    char *p = buf;
    for (int i = 0; i < 4; ++i) {
        f[i] = p;
        p = i < 3 ? strchr(p, '\t') : NULL;
        if (i < 3) {
            if (p == NULL)
                return;
            *p++ = '\0';
        }
    }
    if (strcmp(f[0], cl.replica) == 0 || f[1][0] == '\0' || f[2][0] == '\0')
        return;
    long ms = strtol(f[3], NULL, 10);
    if (ms <= 0 || ms > 86400000)
        return;
    lg_stats_mark_unhealthy(lg_stats_endpoint(f[1], f[2]), (uint32_t)ms);
    atomic_fetch_add_explicit(&cl.health_events_in, 1, memory_order_relaxed);
}

/* Every second: this replica's EWMAs of the endpoints it used since the last tick, for the others to blend in. */
struct stats_buf {
    char *text;
    size_t len;
};

struct seen {
    const lg_endpoint_stats_t *s;
    uint64_t requests;
};
static struct seen *seen;
static size_t num_seen, cap_seen;

static void collect_stats(const lg_endpoint_stats_t *s, void *arg)
{
    struct stats_buf *b = arg;
    uint64_t req = atomic_load_explicit(&s->requests, memory_order_relaxed);
    size_t i;
    for (i = 0; i < num_seen && seen[i].s != s; ++i)
        ;
    if (i == num_seen) {
        if (num_seen == cap_seen) {
            cap_seen = cap_seen ? cap_seen * 2 : 32;
            seen = lg_realloc(seen, cap_seen * sizeof(*seen));
        }
        seen[num_seen].s = s;
        seen[num_seen++].requests = 0;
    }
    if (req == seen[i].requests)
        return;
    seen[i].requests = req;
    int n = snprintf(b->text + b->len, STATS_MSG_MAX - b->len, "%s\t%s\t%.3f\t%.3f\t%.3f\t%.4f\n", s->provider, s->model,
                     lg_stats_get(&s->latency_ewma_bits), lg_stats_get(&s->ttft_ewma_bits), lg_stats_get(&s->tput_ewma_bits),
                     lg_stats_get(&s->error_ewma_bits));
    if (n > 0 && b->len + (size_t)n < STATS_MSG_MAX)
        b->len += (size_t)n;
}

static void apply_stats(const char *msg, size_t len)
{
    char *copy = lg_malloc(len + 1), *save = NULL;
    memcpy(copy, msg, len);
    copy[len] = '\0';
    char *line = strtok_r(copy, "\n", &save);
    if (line == NULL || strcmp(line, cl.replica) == 0) {
        free(copy);
        return;
    }
    int lines = 0;
    while ((line = strtok_r(NULL, "\n", &save)) != NULL && ++lines <= 1000) {
        char prov[128], model[256];
        double lat, ttft, tput, er;
        if (sscanf(line, "%127[^\t]\t%255[^\t]\t%lf\t%lf\t%lf\t%lf", prov, model, &lat, &ttft, &tput, &er) == 6)
            lg_stats_merge_remote(lg_stats_endpoint(prov, model), lat, ttft, tput, er);
    }
    free(copy);
}

/* ---- the cluster thread ---- */

static void sync_run(uv_work_t *w)
{
    (void)w;
    char err[512];
    if (lg_gate_sync_keys(err, sizeof(err)) != 0)
        LG_LOG(LG_LOG_WARN, "cluster", "key re-sync failed: %s", err);
    /* the sync also raises each key's credit count to the ledger's total for the period (lg_keytable_load): the
     * ledger knows what every replica spent, up to its flush interval */
    if (cl.share_health)
        load_cooldowns();
}

static void schedule_sync(void);

static void sync_done(uv_work_t *w, int status)
{
    (void)w;
    (void)status;
    cl.sync_running = 0;
    if (atomic_load(&cl.stopping))
        return; /* the connections are closed already: a job that finished during shutdown has nobody to tell */
    atomic_fetch_add(&cl.syncs, 1);
    atomic_store(&cl.last_sync_ms, wall_ms());
    /* shared state is trusted again only once keys and credit seeds are fresh */
    if (atomic_load(&cl.sub_ready) && !atomic_load(&cl.shared_up)) {
        atomic_store_explicit(&cl.shared_up, 1, memory_order_release);
        LG_LOG(LG_LOG_INFO, "cluster", "shared state up (redis %s:%d, cluster \"%s\", replica %s)", cl.ip, cl.url.port, cl.name,
               cl.replica);
    }
    if (cl.sync_again) {
        cl.sync_again = 0;
        schedule_sync();
    }
}

static void schedule_sync(void)
{
    if (atomic_load(&cl.stopping))
        return;
    if (cl.sync_running) {
        cl.sync_again = 1; /* coalesce a burst of changes into one more sync */
        return;
    }
    cl.sync_running = 1;
    cl.sync_work.data = NULL;
    uv_queue_work(&cl.loop, &cl.sync_work, sync_run, sync_done);
}

static void on_sub_state(void *arg, int up)
{
    (void)arg;
    atomic_store(&cl.sub_ready, up);
    if (up) {
        schedule_sync(); /* re-sync before trusting: changes made while we were cut off were not heard */
    } else if (atomic_exchange(&cl.shared_up, 0)) {
        LG_LOG(LG_LOG_WARN, "cluster", "shared state down: limits fall back per cluster.on_redis_down (rate_limits %s, credit %s)",
               cl.rl_closed ? "closed" : "open", cl.credit_closed ? "closed" : "open");
    }
}

static int channel_is(const char *ch, size_t len, const char *suffix)
{
    size_t pl = strlen(cl.prefix), sl = strlen(suffix);
    return len == pl + 3 + sl && memcmp(ch, cl.prefix, pl) == 0 && memcmp(ch + pl, "ev:", 3) == 0 &&
           memcmp(ch + pl + 3, suffix, sl) == 0;
}

static void on_message(void *arg, const char *ch, size_t chlen, const char *msg, size_t len)
{
    (void)arg;
    if (channel_is(ch, chlen, "keys"))
        schedule_sync();
    else if (channel_is(ch, chlen, "health"))
        apply_health(msg, len);
    else if (channel_is(ch, chlen, "stats") && len <= STATS_MSG_MAX)
        apply_stats(msg, len);
}

static void cmd_publish(const char *suffix, const char *msg, size_t len)
{
    char chan[KEY_MAX];
    snprintf(chan, sizeof(chan), "%sev:%s", cl.prefix, suffix);
    const char *argv[3] = {"PUBLISH", chan, msg};
    size_t lens[3] = {7, strlen(chan), len};
    if (lg_redis_call(cl.cmd, publish_reply, NULL, 3, argv, lens) != 0 && strcmp(suffix, "keys") == 0)
        atomic_store(&cl.keys_dirty, 1); /* retried on the next tick */
}

static void on_wake(uv_async_t *a)
{
    if (atomic_load(&cl.stopping)) {
        uv_close((uv_handle_t *)a, NULL);
        uv_timer_stop(&cl.tick);
        uv_close((uv_handle_t *)&cl.tick, NULL);
        lg_redis_conn_close(cl.sub);
        lg_redis_conn_close(cl.cmd);
        cl.sub = cl.cmd = NULL;
        return;
    }
    if (atomic_exchange(&cl.keys_dirty, 0))
        cmd_publish("keys", cl.replica, strlen(cl.replica));
}

static void on_ping(void *arg, const redisReply *r)
{
    (void)arg;
    (void)r;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    /* liveness of the command connection: a dead server makes the PING time out and the connection cycle */
    const char *ping[1] = {"PING"};
    size_t pl[1] = {4};
    lg_redis_call(cl.cmd, on_ping, NULL, 1, ping, pl);
    if (atomic_exchange(&cl.keys_dirty, 0))
        cmd_publish("keys", cl.replica, strlen(cl.replica));
    if (cl.share_health && lg_redis_conn_state(cl.cmd) == LG_REDIS_READY) {
        struct stats_buf b = {.text = lg_malloc(STATS_MSG_MAX), .len = 0};
        b.len = (size_t)snprintf(b.text, STATS_MSG_MAX, "%s\n", cl.replica);
        size_t header = b.len;
        lg_stats_foreach_endpoint(collect_stats, &b);
        if (b.len > header)
            cmd_publish("stats", b.text, b.len);
        free(b.text);
    }
}

static void cluster_main(void *arg)
{
    (void)arg;
    uv_run(&cl.loop, UV_RUN_DEFAULT);
}

static lg_redis_conn_opts_t base_opts(const char *label)
{
    lg_redis_conn_opts_t o = {.ip = cl.ip,
                              .port = cl.url.port,
                              .db = cl.url.db,
                              .user = cl.url.user,
                              .password = cl.url.password,
                              .timeout_ms = cl.timeout_ms,
                              .connect_timeout_ms = cl.connect_timeout_ms,
                              .label = label};
    return o;
}

/* Resolve once, off the loops: hiredis' async connect would resolve a name synchronously on the loop. */
static int resolve(const char *host, char out[INET6_ADDRSTRLEN], char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "cluster.redis: cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    const void *addr = res->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                                                  : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    inet_ntop(res->ai_family, addr, out, INET6_ADDRSTRLEN);
    freeaddrinfo(res);
    return 0;
}

static void cluster_gauges(lg_metrics_writer_t *w, void *arg)
{
    (void)arg;
    lg_redis_counters_t sum = {0};
    for (unsigned i = 0; i < MAX_WORKERS; ++i) {
        if (workers[i] == NULL)
            continue;
        lg_redis_counters_t c;
        lg_redis_conn_counters(workers[i]->conn, &c);
        sum.commands += c.commands;
        sum.failures += c.failures;
        sum.timeouts += c.timeouts;
        sum.reconnects += c.reconnects;
    }
    lg_metrics_write_gauge(
        w, "llmgate_cluster_redis_up",
        "1 while shared state in Redis is usable (0: limits run per replica or refuse, per cluster.on_redis_down)",
        (double)atomic_load(&cl.shared_up), NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_redis_commands_total", "Redis commands sent by the workers", (double)sum.commands,
                             NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_redis_failures_total", "Redis commands that failed (timeout, disconnect)",
                             (double)sum.failures, NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_redis_timeouts_total", "Redis command deadlines missed", (double)sum.timeouts,
                             NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_redis_connects_total", "Redis connection attempts by the workers",
                             (double)sum.reconnects, NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_degraded_total", "requests decided without Redis",
                             (double)atomic_load(&cl.degraded_open), "mode", "open", NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_degraded_total", "requests decided without Redis",
                             (double)atomic_load(&cl.degraded_closed), "mode", "closed", NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_admissions_total", "shared admissions decided in Redis",
                             (double)atomic_load(&cl.remote_admits), "result", "admitted", NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_admissions_total", "shared admissions decided in Redis",
                             (double)atomic_load(&cl.remote_refusals), "result", "refused", NULL);
    lg_metrics_write_counter(w, "llmgate_cluster_key_syncs_total", "key and credit re-syncs triggered by the cluster",
                             (double)atomic_load(&cl.syncs), NULL);
}

int lg_cluster_start(const lg_config_t *conf, char *err, size_t errlen)
{
    const lg_cluster_conf_t *cc = &conf->cluster;
    const char *why = NULL;
    char host[256];

    if (cc->redis_url == NULL)
        return 0;
    if (lg_redis_url_parse(cc->redis_url, strlen(cc->redis_url), &cl.url, &why) != 0) {
        snprintf(err, errlen, "cluster.redis: %s", why);
        return -1;
    }
    if (resolve(cl.url.host, cl.ip, err, errlen) != 0)
        return -1;
    snprintf(cl.name, sizeof(cl.name), "%s", cc->name != NULL ? cc->name : "llmgate");
    snprintf(cl.prefix, sizeof(cl.prefix), "llmgate:%s:", cl.name);
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "host");
    host[sizeof(host) - 1] = '\0';
    snprintf(cl.replica, sizeof(cl.replica), "%.48s-%ld-%04x", host, (long)getpid(), (unsigned)(lg_random_u64() & 0xffff));
    cl.timeout_ms = cc->timeout_ms;
    cl.connect_timeout_ms = cc->connect_timeout_ms;
    cl.rl_closed = cc->rate_limits_fail_closed;
    cl.credit_closed = cc->credit_fail_closed;
    cl.share_health = cc->share_health;
    lg_cluster_scripts_init();
    cl.enabled = 1;

    lg_keytable_set_remote(&remote_ops);
    lg_stats_set_unhealthy_hook(on_unhealthy);
    lg_metrics_add_collector(cluster_gauges, NULL);

    uv_loop_init(&cl.loop);
    uv_async_init(&cl.loop, &cl.wake, on_wake);
    uv_timer_init(&cl.loop, &cl.tick);
    char pattern[KEY_MAX];
    snprintf(pattern, sizeof(pattern), "%sev:*", cl.prefix);
    lg_redis_conn_opts_t so = base_opts("subscriber");
    so.subscribe_pattern = pattern;
    so.on_message = on_message;
    so.on_state = on_sub_state;
    cl.sub = lg_redis_conn_new(&cl.loop, &so);
    lg_redis_conn_opts_t co = base_opts("cluster");
    cl.cmd = lg_redis_conn_new(&cl.loop, &co);
    uv_timer_start(&cl.tick, on_tick, TICK_MS, TICK_MS);
    if (uv_thread_create(&cl.thread, cluster_main, NULL) != 0) {
        snprintf(err, errlen, "cluster: cannot start the cluster thread");
        return -1;
    }
    cl.started = 1;
    LG_LOG(LG_LOG_INFO, "cluster",
           "replica %s of cluster \"%s\": shared state in redis %s:%d/%d (rate limits fail-%s, credit fail-%s)", cl.replica,
           cl.name, cl.ip, cl.url.port, cl.url.db, cl.rl_closed ? "closed" : "open", cl.credit_closed ? "closed" : "open");
    return 0;
}

void lg_cluster_check_reload(const lg_config_t *conf)
{
    const lg_cluster_conf_t *cc = &conf->cluster;
    int same = cl.enabled ? cc->redis_url != NULL && strcmp(cc->name != NULL ? cc->name : "llmgate", cl.name) == 0 &&
                                cc->timeout_ms == cl.timeout_ms && cc->rate_limits_fail_closed == cl.rl_closed &&
                                cc->credit_fail_closed == cl.credit_closed && cc->share_health == cl.share_health
                          : cc->redis_url == NULL;
    if (same && cl.enabled) {
        lg_redis_url_t u;
        const char *why;
        same = lg_redis_url_parse(cc->redis_url, strlen(cc->redis_url), &u, &why) == 0 && strcmp(u.host, cl.url.host) == 0 &&
               u.port == cl.url.port && u.db == cl.url.db && strcmp(u.password, cl.url.password) == 0;
    }
    if (!same)
        LG_LOG(LG_LOG_WARN, "cluster",
               "SIGHUP: the \"cluster\" section changed; it takes effect at the next restart (the "
               "running one stays)");
}

void lg_cluster_shutdown(void)
{
    if (!cl.started)
        return;
    atomic_store(&cl.stopping, 1);
    uv_async_send(&cl.wake);
    uv_thread_join(&cl.thread);
    cl.started = 0;
}

void lg_cluster_worker_attach(uv_loop_t *loop, unsigned worker_index)
{
    char label[32];
    if (!cl.enabled || worker_index >= MAX_WORKERS)
        return;
    snprintf(label, sizeof(label), "worker %u", worker_index);
    struct worker_ctx *w = lg_malloc(sizeof(*w));
    w->index = worker_index;
    lg_redis_conn_opts_t o = base_opts(label);
    w->conn = lg_redis_conn_new(loop, &o);
    workers[worker_index] = w;
    self = w;
}

void lg_cluster_keys_changed(void)
{
    if (!cl.started)
        return;
    atomic_store(&cl.keys_dirty, 1);
    uv_async_send(&cl.wake);
}

int lg_cluster_publish_keys_changed_blocking(const lg_config_t *conf, char *err, size_t errlen)
{
    lg_redis_url_t u;
    const char *why = NULL;
    char ip[INET6_ADDRSTRLEN], chan[KEY_MAX];
    if (conf->cluster.redis_url == NULL)
        return 0;
    if (lg_redis_url_parse(conf->cluster.redis_url, strlen(conf->cluster.redis_url), &u, &why) != 0) {
        snprintf(err, errlen, "cluster.redis: %s", why);
        return -1;
    }
    if (resolve(u.host, ip, err, errlen) != 0)
        return -1;
    struct timeval tv = {.tv_sec = conf->cluster.connect_timeout_ms / 1000,
                         .tv_usec = (conf->cluster.connect_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(ip, u.port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", ip, u.port, c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return -1;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u.password[0] != '\0') {
        r = u.user[0] != '\0' ? redisCommand(c, "AUTH %s %s", u.user, u.password) : redisCommand(c, "AUTH %s", u.password);
        freeReplyObject(r);
    }
    snprintf(chan, sizeof(chan), "llmgate:%s:ev:keys", conf->cluster.name != NULL ? conf->cluster.name : "llmgate");
    r = redisCommand(c, "PUBLISH %s %s", chan, "cli");
    int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    if (!ok)
        snprintf(err, errlen, "redis %s:%d: PUBLISH failed: %s", ip, u.port, r != NULL && r->str != NULL ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
    return ok ? 0 : -1;
}

/* ---- shared-state seam: GET/SET under the cluster prefix ---- */

struct kv_get {
    lg_cluster_get_cb *cb;
    void *arg;
};

static void on_kv_get(void *arg, const redisReply *r)
{
    struct kv_get *g = arg;
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        g->cb(g->arg, -1, NULL, 0);
    else if (r->type == REDIS_REPLY_STRING)
        g->cb(g->arg, 1, r->str, r->len);
    else
        g->cb(g->arg, 0, NULL, 0);
    free(g);
}

static int kv_key(char *out, const char *ns, const char *key, size_t key_len)
{
    int n = snprintf(out, KEY_MAX, "%skv:%s:%.*s", cl.prefix, ns, (int)key_len, key);
    return n > 0 && n < KEY_MAX ? n : -1;
}

int lg_cluster_kv_get(const char *ns, const char *key, size_t key_len, lg_cluster_get_cb *cb, void *arg)
{
    char k[KEY_MAX];
    int n;
    if (!lg_cluster_up() || (n = kv_key(k, ns, key, key_len)) < 0)
        return -1;
    struct kv_get *g = lg_malloc(sizeof(*g));
    g->cb = cb;
    g->arg = arg;
    const char *argv[2] = {"GET", k};
    size_t lens[2] = {3, (size_t)n};
    if (lg_redis_call(self->conn, on_kv_get, g, 2, argv, lens) != 0) {
        free(g);
        return -1;
    }
    return 0;
}

int lg_cluster_kv_set(const char *ns, const char *key, size_t key_len, const void *value, size_t len, uint32_t ttl_ms)
{
    char k[KEY_MAX], ttl[16];
    int n;
    if (!lg_cluster_up() || len > KV_VALUE_MAX || ttl_ms == 0 || (n = kv_key(k, ns, key, key_len)) < 0)
        return -1;
    snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
    const char *argv[5] = {"SET", k, value, "PX", ttl};
    size_t lens[5] = {3, (size_t)n, len, 2, strlen(ttl)};
    return lg_redis_call(self->conn, publish_reply, NULL, 5, argv, lens);
}

/* ---- /health ---- */

json_t *lg_cluster_health_json(void)
{
    if (!cl.enabled)
        return json_pack("{s:b}", "enabled", 0);
    int up = atomic_load(&cl.shared_up);
    const char *redis = up ? "up" : atomic_load(&cl.sub_ready) ? "syncing" : "down";
    json_t *o =
        json_pack("{s:b,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:b,s:I,s:I,s:I,s:I}", "enabled", 1, "name", cl.name, "replica", cl.replica,
                  "redis", redis, "redis_address", cl.ip, "on_redis_down", "rate_limits", cl.rl_closed ? "closed" : "open",
                  "credit", cl.credit_closed ? "closed" : "open", "degraded", !up, "degraded_open_total",
                  (json_int_t)atomic_load(&cl.degraded_open), "degraded_closed_total", (json_int_t)atomic_load(&cl.degraded_closed),
                  "key_syncs_total", (json_int_t)atomic_load(&cl.syncs), "last_sync_ms", (json_int_t)atomic_load(&cl.last_sync_ms));
    return o;
}
