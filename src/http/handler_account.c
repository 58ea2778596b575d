/* SPDX-License-Identifier: MIT */
/*
 * The caller's account view: GET /v1/generation?id=… (a ledger row) and
 * GET /v1/key (the calling key: limits, credit left, usage). Both read the
 * store, which never happens on the event loop: the query runs on the libuv
 * threadpool (lg__http_store_work, also used by the admin API) and the
 * response is sent back on the worker's loop if the client is still there.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "auth/gate.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "http/handlers.h"
#include "http/respond.h"

#define PICO_PER_USD 1e12

/* ---- store connections for threadpool work ----
 *
 * A small mutex-protected pool instead of one open per job: lg_store_open runs the WAL pragma and the migration check
 * (several statements, a schema read) which would dominate a one-row query. A connection is used by one threadpool
 * thread at a time (sqlite "multi-thread" mode: a connection may move between threads, never be shared at once).
 * At most POOL_MAX idle connections are kept (the libuv threadpool has 4 threads by default, so that is also about
 * the most in use); extras are closed on release. A connection whose job failed with a store error is closed rather
 * than reused. Idle connections live until the process exits (readers hold no locks while idle).
 */
#define POOL_MAX 4

static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static lg_store_t *pool[POOL_MAX];
static size_t pool_len;

static lg_store_t *pool_acquire(char *err, size_t errlen)
{
    lg_store_t *s = NULL;
    pthread_mutex_lock(&pool_mutex);
    if (pool_len != 0)
        s = pool[--pool_len];
    pthread_mutex_unlock(&pool_mutex);
    if (s != NULL)
        return s;
    const char *path = lg_gate_store_path();
    if (path == NULL) {
        snprintf(err, errlen, "no store configured");
        return NULL;
    }
    return lg_store_open(path, err, errlen);
}

static void pool_release(lg_store_t *s, int healthy)
{
    if (s == NULL)
        return;
    if (healthy) {
        pthread_mutex_lock(&pool_mutex);
        if (pool_len < POOL_MAX) {
            pool[pool_len++] = s;
            s = NULL;
        }
        pthread_mutex_unlock(&pool_mutex);
    }
    lg_store_close(s);
}

/* ---- threadpool jobs tied to a request ---- */

struct store_job {
    uv_work_t work;
    lg_worker_t *w;
    h2o_req_t *req;          /* NULL once the request is gone (dispose hook) */
    struct store_job **slot; /* the pointer in req->pool the dispose hook reads; cleared before the job is freed */
    lg_store_work_fn run;
    void *data;
    void (*free_data)(void *);
    int status;
    json_t *body;
};

static void on_job_req_dispose(void *p)
{
    struct store_job *job = *(struct store_job **)p;
    if (job != NULL)
        job->req = NULL; /* client left (or the request completed) before the work came back */
}

static void on_job_work(uv_work_t *work)
{
    struct store_job *job = work->data;
    char err[512];
    lg_store_t *s = pool_acquire(err, sizeof(err));
    if (s == NULL)
        LG_LOG(LG_LOG_ERR, "store", "cannot open the store for a query: %s", err);
    job->status = job->run(s, job->data, &job->body);
    pool_release(s, job->status < 500);
}

static void on_job_done(uv_work_t *work, int status)
{
    struct store_job *job = work->data;
    if (job->req != NULL) {
        *job->slot = NULL; /* the request lives on past the response: its dispose hook must not see a freed job */
        if (status == UV_ECANCELED || job->body == NULL) {
            json_decref(job->body);
            lg_respond_error(job->req, LG_EINTERNAL, 500, "store query did not run", NULL);
        } else {
            lg__http_respond_status(job->req, job->status, job->body);
        }
    } else {
        json_decref(job->body);
    }
    if (job->free_data != NULL)
        job->free_data(job->data);
    lg_worker_t *w = job->w;
    free(job);
    lg__worker_request_done(w);
}

void lg__http_store_work(lg_worker_t *w, h2o_req_t *req, lg_store_work_fn run, void *data, void (*free_data)(void *))
{
    if (lg_gate_store_path() == NULL) {
        lg_respond_error(req, LG_ENOTFOUND, 404, "this gateway runs without a store (\"store\": null): no keys, usage or ledger",
                         NULL);
        if (free_data != NULL)
            free_data(data);
        return;
    }
    struct store_job *job = lg_malloc(sizeof(*job));
    memset(job, 0, sizeof(*job));
    job->w = w;
    job->req = req;
    job->run = run;
    job->data = data;
    job->free_data = free_data;
    job->work.data = job;
    job->slot = h2o_mem_alloc_shared(&req->pool, sizeof(*job->slot), on_job_req_dispose);
    *job->slot = job;
    lg__worker_request_begin(w);
    int rc = uv_queue_work(&w->loop, &job->work, on_job_work, on_job_done);
    if (rc != 0) {
        *job->slot = NULL;
        lg_respond_error(req, LG_EINTERNAL, 500, "cannot schedule the store query", NULL);
        if (free_data != NULL)
            free_data(data);
        free(job);
        lg__worker_request_done(w);
    }
}

void lg__http_respond_status(h2o_req_t *req, int status, json_t *obj)
{
    if (status != 201 && status != 202) {
        lg_respond_json(req, status, obj);
        return;
    }
    /* lg_respond_raw knows no 2xx other than 200; same body handling with the right reason phrase */
    char *body = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(obj);
    if (body == NULL) {
        lg_respond_error(req, LG_EINTERNAL, 500, "cannot encode response", NULL);
        return;
    }
    size_t len = strlen(body);
    req->res.status = status;
    req->res.reason = status == 201 ? "Created" : "Accepted";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
    free(body);
}

/* ---- shared request checks ---- */

/** The calling key, refusing what a generation request would refuse as 401. Responds and returns -1 on refusal. */
static int calling_key(h2o_req_t *req, lg_key_entry_t **key)
{
    const char *msg = NULL;
    if (lg_gate_authenticate(req, key, &msg) != 0) {
        lg_respond_error(req, LG_EAUTH, 401, msg, NULL);
        return -1;
    }
    if (*key == NULL)
        return 0;
    const char *why = lg_gate_key_refusal(*key);
    if (why != NULL) {
        lg_key_entry_release(*key);
        *key = NULL;
        lg_respond_error(req, LG_EAUTH, 401, why, NULL);
        return -1;
    }
    return 0;
}

static void iso8601_s(int64_t unix_s, char out[32])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- GET /v1/generation?id=… ---- */

struct gen_query {
    char id[40];
    char key_id[LG_KEY_ID_LEN + 1]; /* "" = may read any generation (admin key or open gateway) */
};

/** Every member of OpenRouter's generation schema is present: what the ledger has no value for is null (its SDK rejects
 * a missing member), the data region is "global" (one gateway, no regional hosts). Works on any store backend's row. */
static void complete_generation(json_t *row)
{
    static const char *const nullable[] = {"upstream_id",
                                           "router",
                                           "service_tier",
                                           "session_id",
                                           "moderation_latency",
                                           "native_tokens_completion_images",
                                           "app_id",
                                           "external_user",
                                           "preset_id",
                                           "workspace_id",
                                           "num_media_prompt",
                                           "num_media_completion",
                                           "num_input_audio_prompt",
                                           "num_search_results",
                                           "num_fetches",
                                           "web_search_engine",
                                           "upstream_inference_cost",
                                           "cache_discount",
                                           "http_referer",
                                           "user_agent",
                                           "finish_reason",
                                           "native_finish_reason",
                                           "provider_name",
                                           "api_type",
                                           "latency",
                                           "generation_time",
                                           "provider_responses",
                                           "streamed",
                                           "cancelled",
                                           "tokens_prompt",
                                           "tokens_completion",
                                           "native_tokens_prompt",
                                           "native_tokens_completion",
                                           "native_tokens_reasoning",
                                           "native_tokens_cached"};
    for (size_t i = 0; i < sizeof(nullable) / sizeof(nullable[0]); ++i)
        if (json_object_get(row, nullable[i]) == NULL)
            json_object_set_new(row, nullable[i], json_null());
    /* OpenRouter's api_type names the API family: every text generation route is "completions" */
    const char *api = json_string_value(json_object_get(row, "api_type"));
    if (api != NULL && strcmp(api, "embeddings") != 0)
        json_object_set_new(row, "api_type", json_string("completions"));
    if (json_object_get(row, "data_region") == NULL)
        json_object_set_new(row, "data_region", json_string("global"));
    if (!json_is_string(json_object_get(row, "origin")))
        json_object_set_new(row, "origin", json_string(""));
    if (!json_is_boolean(json_object_get(row, "is_byok")))
        json_object_set_new(row, "is_byok", json_false());
}

static int gen_work(lg_store_t *s, void *data, json_t **body)
{
    struct gen_query *q = data;
    json_t *row = NULL;
    if (s == NULL) {
        *body = lg_error_json(LG_EINTERNAL, 500, "store unavailable", NULL);
        return 500;
    }
    int rc = lg_store_generation_get(s, q->id, &row);
    if (rc == LG_ENOTFOUND) {
        /* the ledger commits within store.flush_interval_ms of the response: a brand-new id may not be there yet */
        *body =
            lg_error_json(LG_ENOTFOUND, 404, "generation not found (rows are committed within the ledger flush interval)", NULL);
        return 404;
    }
    if (rc != 0) {
        *body = lg_error_json(LG_EINTERNAL, 500, "store query failed", NULL);
        LG_LOG(LG_LOG_ERR, "store", "generation %s: %s", q->id, lg_store_errmsg(s));
        return 500;
    }
    if (q->key_id[0] != '\0') {
        const char *owner = json_string_value(json_object_get(row, "key_id"));
        if (owner == NULL || strcmp(owner, q->key_id) != 0) {
            /* another key's generation: answer as if it did not exist (ids must not be probeable) */
            json_decref(row);
            *body = lg_error_json(LG_ENOTFOUND, 404, "generation not found", NULL);
            return 404;
        }
    }
    complete_generation(row);
    *body = json_pack("{s:o}", "data", row);
    return 200;
}

/** Value of query parameter name (not decoded), or NULL. */
static const char *query_param(h2o_req_t *req, const char *name, size_t *len)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) >= nlen + 1 && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *len = (size_t)(stop - p - nlen - 1);
            return p + nlen + 1;
        }
        p = stop + 1;
    }
    return NULL;
}

void lg_handle_generation(lg_worker_t *w, h2o_req_t *req)
{
    size_t len = 0;
    const char *id = query_param(req, "id", &len);
    lg_key_entry_t *key = NULL;

    int admin = lg_gate_is_admin(req);
    if (!admin && calling_key(req, &key) != 0)
        return;
    if (id == NULL || len == 0) {
        lg_key_entry_release(key);
        lg_respond_error(req, LG_EINVAL, 400, "missing query parameter id (GET /api/v1/generation?id=gen-...)",
                         json_pack("{s:s}", "field", "id"));
        return;
    }
    /* ids are "gen-" + letters and digits; anything else cannot exist, so it is a client error, not a lookup */
    int ok = len > 4 && len < sizeof(((struct gen_query *)0)->id) && memcmp(id, "gen-", 4) == 0;
    for (size_t i = 4; ok && i < len; ++i)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-' ||
             id[i] == '_';
    if (!ok) {
        lg_key_entry_release(key);
        lg_respond_error(req, LG_EINVAL, 400, "malformed generation id: expected gen- followed by letters and digits",
                         json_pack("{s:s}", "field", "id"));
        return;
    }
    struct gen_query *q = lg_malloc(sizeof(*q));
    memset(q, 0, sizeof(*q));
    memcpy(q->id, id, len);
    if (key != NULL) {
        snprintf(q->key_id, sizeof(q->key_id), "%s", lg_key_entry_record(key)->id);
        lg_key_entry_release(key);
    }
    lg__http_store_work(w, req, gen_work, q, free);
}

/* ---- GET /v1/key ---- */

struct key_query {
    char key_id[LG_KEY_ID_LEN + 1];
    int64_t now_ms;
    json_t *doc;        /* the data object built on the loop (everything but usage) */
    int credits;        /* answer GET /credits ({total_credits, total_usage}) instead of GET /key */
    int64_t left_pico;  /* credit left in the current period, -1 = the key has no credit limit */
    int64_t limit_pico; /* the key's credit limit (when left_pico >= 0) */
};

static void key_query_free(void *p)
{
    struct key_query *q = p;
    json_decref(q->doc);
    free(q);
}

/*
 * Several replicas (scale-out): the in-memory credit count knows this replica's spend, the shared ledger everyone's (up
 * to a flush interval behind). The remaining credit shown is the lower of the two views.
 */
static void shared_limit_remaining(json_t *doc, const json_t *usage)
{
    json_t *limit = json_object_get(doc, "limit"), *remaining = json_object_get(doc, "limit_remaining");
    if (!json_is_number(limit) || !json_is_number(remaining))
        return;
    const char *reset = json_string_value(json_object_get(doc, "limit_reset"));
    const char *field = reset == NULL                   ? "usage_pico"
                        : strcmp(reset, "daily") == 0   ? "usage_daily_pico"
                        : strcmp(reset, "weekly") == 0  ? "usage_weekly_pico"
                        : strcmp(reset, "monthly") == 0 ? "usage_monthly_pico"
                                                        : "usage_pico";
    double left = json_number_value(limit) - (double)json_integer_value(json_object_get(usage, field)) / PICO_PER_USD;
    if (left < 0)
        left = 0;
    if (left < json_number_value(remaining))
        json_object_set_new(doc, "limit_remaining", json_real(left));
}

static int key_work(lg_store_t *s, void *data, json_t **body)
{
    struct key_query *q = data;
    json_t *usage = NULL;
    if (s == NULL) {
        *body = lg_error_json(LG_EINTERNAL, 500, "store unavailable", NULL);
        return 500;
    }
    if (lg_store_key_usage(s, q->key_id, q->now_ms, &usage) != 0) {
        LG_LOG(LG_LOG_ERR, "store", "usage of %s: %s", q->key_id, lg_store_errmsg(s));
        *body = lg_error_json(LG_EINTERNAL, 500, "store query failed", NULL);
        return 500;
    }
    static const char *const names[] = {"usage", "usage_daily", "usage_weekly", "usage_monthly"};
    for (int i = 0; i < 4; ++i)
        json_object_set(q->doc, names[i], json_object_get(usage, names[i]));
    shared_limit_remaining(q->doc, usage);
    json_decref(usage);
    if (q->credits) {
        /* OpenRouter's credits: what was granted and what was used. A key with a credit limit: its limit and what the
         * gate has counted against it in the current period (both from the live count, so they agree even while the
         * last rows are still on their way to the ledger); without a limit: total_credits -1 (unlimited) and the
         * ledger's usage so far. */
        double used = json_number_value(json_object_get(q->doc, "usage"));
        double total = -1.0;
        if (q->left_pico >= 0) {
            total = (double)q->limit_pico / PICO_PER_USD;
            used = (double)(q->limit_pico - q->left_pico) / PICO_PER_USD;
        }
        *body = json_pack("{s:{s:f,s:f}}", "data", "total_credits", total, "total_usage", used);
        return 200;
    }
    *body = json_pack("{s:O}", "data", q->doc);
    return 200;
}

static void key_or_credits(lg_worker_t *w, h2o_req_t *req, int credits)
{
    lg_key_entry_t *key = NULL;
    if (calling_key(req, &key) != 0)
        return;
    if (key == NULL) {
        lg_respond_error(req, LG_EAUTH, 401,
                         "no API key: send Authorization: Bearer <key> (this gateway runs open, so there is no calling key)", NULL);
        return;
    }
    const lg_key_record_t *k = lg_key_entry_record(key);
    int64_t now = lg_gate_now_ms();
    json_t *doc = json_object();
    json_object_set_new(doc, "label", json_string(k->name != NULL ? k->name : ""));
    int64_t left_pico = -1;
    if (k->credit_limit_pico >= 0) {
        int64_t left = k->credit_limit_pico - lg_key_credit_used_pico(key, now);
        left_pico = left > 0 ? left : 0;
        json_object_set_new(doc, "limit", json_real((double)k->credit_limit_pico / PICO_PER_USD));
        json_object_set_new(doc, "limit_remaining", json_real(left > 0 ? (double)left / PICO_PER_USD : 0.0));
    } else {
        json_object_set_new(doc, "limit", json_null());
        json_object_set_new(doc, "limit_remaining", json_null());
    }
    json_object_set_new(doc, "limit_reset",
                        k->reset_period == LG_RESET_NONE ? json_null() : json_string(lg_reset_period_name(k->reset_period)));
    json_object_set_new(doc, "include_byok_in_limit", json_false());
    json_object_set_new(doc, "usage", json_real(0));
    json_object_set_new(doc, "usage_daily", json_real(0));
    json_object_set_new(doc, "usage_weekly", json_real(0));
    json_object_set_new(doc, "usage_monthly", json_real(0));
    json_object_set_new(doc, "byok_usage", json_real(0));
    json_object_set_new(doc, "byok_usage_daily", json_real(0));
    json_object_set_new(doc, "byok_usage_weekly", json_real(0));
    json_object_set_new(doc, "byok_usage_monthly", json_real(0));
    json_object_set_new(doc, "is_free_tier", json_false());
    json_object_set_new(doc, "is_management_key", json_false());
    json_object_set_new(doc, "is_provisioning_key", json_false());
    if (k->expires_at != 0) {
        char when[32];
        iso8601_s(k->expires_at, when);
        json_object_set_new(doc, "expires_at", json_string(when));
    } else {
        json_object_set_new(doc, "expires_at", json_null());
    }
    json_object_set_new(doc, "creator_user_id", json_null());
    /* deprecated in OpenRouter's API (its schema still requires it; OpenRouter sends -1): the key's own limits are
     * `rpm`/`tpm` below */
    json_object_set_new(doc, "rate_limit", json_pack("{s:i,s:s,s:s}", "requests", -1, "interval", "10s", "note", "deprecated"));
    json_object_set_new(doc, "allowed_data_regions", json_pack("[s]", "global"));
    /* llmgate has no per-day bucket for :free models: -1 = unlimited */
    json_object_set_new(doc, "free_model_daily_requests", json_pack("{s:i,s:i,s:i}", "used", 0, "limit", -1, "remaining", -1));
    json_object_set_new(doc, "organization_id", json_null());
    json_object_set_new(doc, "workspace_id", json_null());
    json_object_set_new(doc, "key_id", json_string(k->id));
    json_object_set_new(doc, "rpm", k->rpm != 0 ? json_integer((json_int_t)k->rpm) : json_null());
    json_object_set_new(doc, "tpm", k->tpm != 0 ? json_integer((json_int_t)k->tpm) : json_null());

    struct key_query *q = lg_malloc(sizeof(*q));
    memset(q, 0, sizeof(*q));
    snprintf(q->key_id, sizeof(q->key_id), "%s", k->id);
    q->now_ms = now;
    q->doc = doc;
    q->credits = credits;
    q->left_pico = left_pico;
    q->limit_pico = k->credit_limit_pico;
    lg_key_entry_release(key);
    lg__http_store_work(w, req, key_work, q, key_query_free);
}

void lg_handle_key(lg_worker_t *w, h2o_req_t *req)
{
    key_or_credits(w, req, 0);
}

void lg_handle_credits(lg_worker_t *w, h2o_req_t *req)
{
    key_or_credits(w, req, 1);
}
