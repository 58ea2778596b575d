/* SPDX-License-Identifier: MIT */
/*
 * Admin JSON views added for the dashboard, each usable on its own with the
 * admin key: /status (version, uptime, generation, in-flight, ledger queue,
 * last reload), /timeseries (the last 15 minutes in 10-second buckets),
 * /models (catalog with prices, policy and live endpoint state),
 * /generations (most recent ledger rows; never content) and
 * /generations/{id} (one row with its attempt trail), /mcp (upstreams with
 * calls and errors, session count). Live views are answered on the loop
 * from atomics; ledger reads go to the threadpool.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/admin_session.h"
#include "auth/gate.h"
#include "core/error.h"
#include "core/reload_status.h"
#include "core/util.h"
#include "http/dashboard.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/server.h"
#include "llmgate/version.h"
#include "mcp/federation.h"
#include "mcp/session.h"
#include "metrics/metrics.h"
#include "metrics/timeseries.h"
#include "store/ledger.h"

#define PICO_PER_USD 1e12

static int method_is(h2o_req_t *req, const char *m)
{
    size_t n = strlen(m);
    return req->method.len == n && memcmp(req->method.base, m, n) == 0;
}

static void get_only(h2o_req_t *req)
{
    lg_add_header(req, "allow", "GET");
    lg_respond_error(req, LG_EMETHOD, 405, NULL, json_pack("{s:s}", "allow", "GET"));
}

/* Query parameter name=value (raw, not decoded: our values are digits and ids) or NULL. Unknown names → *unknown. */
static const char *query_param(h2o_req_t *req, const char *name, size_t *len)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            *len = (size_t)(stop - p - nl - 1);
            return p + nl + 1;
        }
        p = stop + 1;
    }
    return NULL;
}

/* Only the named parameters are accepted; responds 400 on another one. */
static int only_params(h2o_req_t *req, const char *const *names)
{
    if (req->query_at == SIZE_MAX)
        return 1;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t nl = (size_t)((eq != NULL ? eq : stop) - p);
        int known = nl == 0;
        for (const char *const *n = names; *n != NULL && !known; ++n)
            known = strlen(*n) == nl && memcmp(*n, p, nl) == 0;
        if (!known) {
            char field[40], msg[160];
            size_t k = 0;
            for (; k < nl && k + 1 < sizeof(field); ++k)
                field[k] = isprint((unsigned char)p[k]) && p[k] != '"' && p[k] != '\\' ? p[k] : '?';
            field[k] = '\0';
            snprintf(msg, sizeof(msg), "unknown query parameter \"%s\"", field);
            lg_respond_error(req, LG_EINVAL, 400, msg, json_pack("{s:s}", "field", field));
            return 0;
        }
        p = stop + 1;
    }
    return 1;
}

/* A decimal integer parameter in [lo, hi]; *out unchanged when absent. Responds 400 and returns -1 when malformed. */
static int int_param(h2o_req_t *req, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    size_t len;
    const char *v = query_param(req, name, &len);
    if (v == NULL)
        return 0;
    int64_t n = 0;
    int ok = len > 0 && len <= 15;
    for (size_t i = 0; ok && i < len; ++i) {
        ok = isdigit((unsigned char)v[i]);
        n = n * 10 + (v[i] - '0');
    }
    if (!ok || n < lo || n > hi) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s: expected an integer %lld..%lld", name, (long long)lo, (long long)hi);
        lg_respond_error(req, LG_EINVAL, 400, msg, json_pack("{s:s}", "field", name));
        return -1;
    }
    *out = n;
    return 0;
}

/* ---- /status ---- */

/* The config path a load error names ("routing.max_attempts: expected ..."), or null when it names none. */
static json_t *error_path(const char *err)
{
    const char *colon = strstr(err, ": ");
    if (colon == NULL || colon == err || colon - err > 200)
        return json_null();
    for (const char *p = err; p < colon; ++p)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-' || *p == '[' || *p == ']' || *p == '/'))
            return json_null();
    return json_stringn(err, (size_t)(colon - err));
}

static void handle_status(lg_worker_t *w, h2o_req_t *req)
{
    const lg_snapshot_t *snap = w->rt->snap;
    lg_ledger_stats_t ls = {0};
    lg_ledger_t *ledger = lg_gate_ledger();
    if (ledger != NULL)
        lg_ledger_stats(ledger, &ls);
    lg_reload_result_t rr;
    lg_reload_last(&rr);
    json_t *reload = json_null();
    if (rr.covers != 0) {
        reload = json_pack("{s:b,s:I,s:I,s:s}", "ok", rr.ok, "finished_at_ms", (json_int_t)rr.finished_ms, "covers_ticket",
                           (json_int_t)rr.covers, "error", rr.error);
        if (rr.ok)
            json_object_set_new(reload, "generation", json_integer((json_int_t)rr.generation));
        else
            json_object_set_new(reload, "path", error_path(rr.error));
    }
    int64_t now = lg_gate_now_ms();
    lg_keytable_t *kt = lg_gate_keys();
    json_t *d = json_pack(
        "{s:s,s:I,s:I,s:i,s:I,s:i,s:b,s:I,s:I,s:I,s:o}", "version", LG_VERSION_STRING, "uptime_s",
        (json_int_t)(lg_unix_time() - lg_server_started_at()), "started_at", (json_int_t)lg_server_started_at(), "workers",
        (int)lg_server_num_workers(), "config_generation", (json_int_t)snap->generation, "in_flight", (int)lg_server_in_flight(),
        "open_gateway", lg_gate_open(), "keys", (json_int_t)(kt != NULL ? lg_keytable_count(kt) : 0), "dashboard_sessions",
        (json_int_t)lg_admin_session_count(now), "mcp_sessions", (json_int_t)lg_mcp_session_count(), "last_reload", reload);
    json_object_set_new(d, "ledger",
                        ledger == NULL ? json_null()
                                       : json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "depth", (json_int_t)ls.depth, "capacity",
                                                   (json_int_t)ls.capacity, "submitted", (json_int_t)ls.submitted, "committed",
                                                   (json_int_t)ls.committed, "dropped", (json_int_t)ls.dropped, "batches",
                                                   (json_int_t)ls.batches, "last_commit_ms", (json_int_t)ls.last_commit_ms));
    lg_respond_json(req, 200, json_pack("{s:o}", "data", d));
}

/* ---- /timeseries ---- */

static json_t *ms_or_null(double v)
{
    return v < 0 ? json_null() : json_real(v);
}

static json_t *point_json(const lg_ts_point_t *p, int with_time)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:o,s:o,s:o,s:o}", "requests", (json_int_t)p->requests, "errors_4xx",
                          (json_int_t)p->errors_4xx, "errors_5xx", (json_int_t)p->errors_5xx, "fallbacks", (json_int_t)p->fallbacks,
                          "prompt_tokens", (json_int_t)p->prompt_tokens, "completion_tokens", (json_int_t)p->completion_tokens,
                          "cost", (double)p->cost_pico / PICO_PER_USD, "cost_pico", (json_int_t)p->cost_pico, "latency_p50_ms",
                          ms_or_null(p->latency_p50_ms), "latency_p99_ms", ms_or_null(p->latency_p99_ms), "ttft_p50_ms",
                          ms_or_null(p->ttft_p50_ms), "ttft_p99_ms", ms_or_null(p->ttft_p99_ms));
    if (with_time)
        json_object_set_new(o, "t", json_integer(p->start_s));
    return o;
}

static void handle_timeseries(lg_worker_t *w, h2o_req_t *req)
{
    static const char *const names[] = {"minutes", NULL};
    int64_t minutes = 15;
    if (!only_params(req, names) || int_param(req, "minutes", 1, LG_TS_WINDOW * LG_TS_BUCKET_S / 60, &minutes) != 0)
        return;
    unsigned n = (unsigned)(minutes * 60 / LG_TS_BUCKET_S);
    lg_ts_point_t *pts = lg_malloc(sizeof(*pts) * n), total;
    int64_t now = lg_unix_time();
    lg_timeseries_read(now, n, pts, &total);
    json_t *series = json_array();
    for (unsigned i = 0; i < n; ++i)
        json_array_append_new(series, point_json(&pts[i], 1));
    free(pts);
    json_t *tot = point_json(&total, 0);
    double secs = (double)(now - total.start_s + 1);
    json_object_set_new(tot, "requests_per_s", json_real(secs > 0 ? (double)total.requests / secs : 0));
    /* in flight = generation requests at a provider now (not admin or dashboard calls), queued = waiting for a slot */
    const lg_snapshot_t *snap = w->rt->snap;
    json_int_t in_flight = 0, queued = 0;
    for (size_t pi = 0; pi < snap->conf->num_providers; ++pi) {
        in_flight += atomic_load(&snap->pstats[pi]->in_flight);
        queued += atomic_load(&snap->pstats[pi]->queued);
    }
    lg_respond_json(req, 200,
                    json_pack("{s:{s:i,s:I,s:I,s:I,s:I,s:o,s:o}}", "data", "bucket_s", LG_TS_BUCKET_S, "from",
                              (json_int_t)total.start_s, "now", (json_int_t)now, "in_flight", in_flight, "queued", queued, "totals",
                              tot, "series", series));
}

/* ---- /models ---- */

static json_t *per_mtok(int64_t pico_per_token)
{
    return json_real((double)pico_per_token * 1e6 / PICO_PER_USD); /* USD per million tokens */
}

static void handle_models(lg_worker_t *w, h2o_req_t *req)
{
    const lg_snapshot_t *snap = w->rt->snap;
    const lg_config_t *conf = snap->conf;
    int64_t now = lg_now_ms();
    json_t *models = json_array();
    for (size_t mi = 0; mi < conf->num_models; ++mi) {
        const lg_model_conf_t *m = &conf->models[mi];
        json_t *eps = json_array();
        size_t healthy = 0;
        for (size_t ei = 0; ei < m->num_endpoints; ++ei) {
            const lg_endpoint_conf_t *ep = &m->endpoints[ei];
            const lg_endpoint_stats_t *st = snap->estats[mi][ei];
            json_t *e = lg__http_endpoint_json(snap, mi, ei, now);
            int64_t until = atomic_load(&st->unhealthy_until_ms);
            int ok = lg_stats_healthy(st, now);
            healthy += ok;
            json_object_set_new(e, "provider", json_string(conf->providers[ep->provider_index].name));
            json_object_set_new(e, "routable", json_boolean(snap->plugins[ep->provider_index] != NULL));
            json_object_set_new(e, "circuit",
                                json_string(!ok                                          ? "open"
                                            : atomic_load(&st->consecutive_failures) > 0 ? "half_open"
                                                                                         : "closed"));
            json_object_set_new(e, "cooldown_ms", json_integer(until > now ? until - now : 0));
            json_object_set_new(e, "weight", json_real(ep->weight));
            json_object_set_new(e, "tier", json_string(ep->tier != NULL ? ep->tier : "standard"));
            json_object_set_new(e, "context_length",
                                json_integer(ep->context_length != 0 ? ep->context_length : m->context_length));
            json_object_set_new(e, "price_per_mtok",
                                json_pack("{s:o,s:o,s:o,s:o}", "prompt", per_mtok(ep->price.prompt), "completion",
                                          per_mtok(ep->price.completion), "cache_read", per_mtok(ep->price.cache_read),
                                          "cache_write", per_mtok(ep->price.cache_write)));
            json_object_set_new(e, "price_per_request", json_real((double)ep->price.request / PICO_PER_USD));
            json_array_append_new(eps, e);
        }
        const char *policy = m->policy != NULL ? m->policy : conf->default_policy != NULL ? conf->default_policy : "default";
        json_array_append_new(models,
                              json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:o}", "id", m->id, "name", m->name != NULL ? m->name : m->id,
                                        "context_length", (json_int_t)m->context_length, "policy", policy, "endpoints_total",
                                        (json_int_t)m->num_endpoints, "endpoints_healthy", (json_int_t)healthy, "endpoints", eps));
    }
    lg_respond_json(req, 200, json_pack("{s:o,s:I}", "data", models, "config_generation", (json_int_t)snap->generation));
}

/* ---- /generations ---- */

struct recent_req {
    unsigned limit;
    int64_t before_ms;
    char id[48];
};

static int recent_work(lg_store_t *s, void *data, json_t **body)
{
    struct recent_req *r = data;
    if (s == NULL || lg_store_generations_recent(s, r->limit, r->before_ms, body) != 0) {
        *body = lg_error_json(LG_EINTERNAL, 500, s != NULL ? "store operation failed" : "store unavailable", NULL);
        return 500;
    }
    return 200;
}

static int generation_work(lg_store_t *s, void *data, json_t **body)
{
    struct recent_req *r = data;
    json_t *g = NULL;
    int rc = s != NULL ? lg_store_generation_get(s, r->id, &g) : LG_EINTERNAL;
    if (rc == LG_ENOTFOUND) {
        *body = lg_error_json(LG_ENOTFOUND, 404, "generation not found", NULL);
        return 404;
    }
    if (rc != 0) {
        *body = lg_error_json(LG_EINTERNAL, 500, s != NULL ? "store operation failed" : "store unavailable", NULL);
        return 500;
    }
    *body = json_pack("{s:o}", "data", g);
    return 200;
}

static void handle_recent(lg_worker_t *w, h2o_req_t *req)
{
    static const char *const names[] = {"limit", "before", NULL};
    int64_t limit = 50, before = 0;
    if (!only_params(req, names) || int_param(req, "limit", 1, 500, &limit) != 0 ||
        int_param(req, "before", 0, INT64_C(999999999999999), &before) != 0)
        return;
    struct recent_req *r = lg_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    r->limit = (unsigned)limit;
    r->before_ms = before;
    lg__http_store_work(w, req, recent_work, r, free);
}

static void handle_generation(lg_worker_t *w, h2o_req_t *req, const char *id, size_t len)
{
    int ok = len > 4 && len < 48 && memcmp(id, "gen-", 4) == 0;
    for (size_t i = 0; ok && i < len; ++i)
        ok = isalnum((unsigned char)id[i]) || id[i] == '-' || id[i] == '_';
    if (!ok) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "not a generation id (gen-...)", NULL);
        return;
    }
    struct recent_req *r = lg_malloc(sizeof(*r));
    memset(r, 0, sizeof(*r));
    memcpy(r->id, id, len);
    lg__http_store_work(w, req, generation_work, r, free);
}

/* ---- /mcp ---- */

static void add_upstream(const char *name, const char *state, int pid, size_t tools, void *arg)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "name", name, "state", state, "tools", (json_int_t)tools, "circuit",
                          strcmp(state, "circuit_open") == 0 ? "open" : "closed");
    json_object_set_new(o, "pid", pid > 0 ? json_integer(pid) : json_null());
    json_array_append_new(arg, o);
}

static void handle_mcp(h2o_req_t *req)
{
    json_t *ups = json_array();
    lg_mcp_federation_foreach(add_upstream, ups);
    /* calls/errors come from the metrics registry's per-server ids (registration takes a mutex, not under the
     * federation lock) */
    size_t i;
    json_t *u;
    json_array_foreach(ups, i, u)
    {
        uint64_t calls, errors;
        lg_timeseries_mcp_totals(lg_metrics_mcp_server_id(json_string_value(json_object_get(u, "name"))), &calls, &errors);
        json_object_set_new(u, "calls", json_integer((json_int_t)calls));
        json_object_set_new(u, "errors", json_integer((json_int_t)errors));
    }
    lg_respond_json(req, 200, json_pack("{s:o,s:I}", "data", ups, "sessions", (json_int_t)lg_mcp_session_count()));
}

int lg__admin_views(lg_worker_t *w, h2o_req_t *req, const char *rest, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(rest, lit, sizeof(lit) - 1) == 0)
    int get = method_is(req, "GET");
    if (IS("/status")) {
        get ? handle_status(w, req) : get_only(req);
    } else if (IS("/timeseries")) {
        get ? handle_timeseries(w, req) : get_only(req);
    } else if (IS("/models")) {
        get ? handle_models(w, req) : get_only(req);
    } else if (IS("/generations")) {
        get ? handle_recent(w, req) : get_only(req);
    } else if (len > 13 && memcmp(rest, "/generations/", 13) == 0) {
        get ? handle_generation(w, req, rest + 13, len - 13) : get_only(req);
    } else if (IS("/mcp")) {
        get ? handle_mcp(req) : get_only(req);
    } else {
        return 0;
    }
    return 1;
#undef IS
}
