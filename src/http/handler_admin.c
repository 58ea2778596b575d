/* SPDX-License-Identifier: MIT */
/*
 * The admin API under /api/admin, behind the admin key (or a dashboard session, see dashboard.h): key management
 * (create/list/get/update/delete), usage reports, the detailed provider view
 * and config reload. Bodies and query strings are validated completely on the
 * event loop (CPU only, no I/O) before the store is touched; every store call
 * and the key table re-sync run on the libuv threadpool.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mcp/federation.h"
#include "auth/gate.h"
#include "cluster/cluster.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "core/reload_status.h"
#include "http/dashboard.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/server.h"

#define PICO_PER_USD INT64_C(1000000000000)
#define MAX_BODY_BYTES (1024 * 1024)     /* admin documents are small */
#define MIN_EXPIRES_S INT64_C(946684800) /* 2000-01-01: anything earlier is a unit mistake (ms? days?) */

/*
 * Key changes are read-modify-write on the store followed by a re-sync of the in-memory table. One mutex serialises
 * them (threadpool side), so two concurrent PATCHes cannot interleave get/update, and a re-sync never installs a list
 * read before another admin change committed.
 */
static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;

/* ---- small helpers ---- */

/* Caller text echoed in messages: one printable line, bounded. */
static const char *shown(const char *s, size_t len, char *buf, size_t size)
{
    size_t i = 0;
    for (; i < len && i + 1 < size; ++i)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\') ? '?' : s[i];
    if (i < len && size > 4)
        memcpy(buf + size - 4, "...", 3), i = size - 1;
    buf[i] = '\0';
    return buf;
}

/** A 400 naming the field: message "field: why", metadata.field = field. */
__attribute__((format(printf, 3, 4))) static void bad_field(h2o_req_t *req, const char *field, const char *fmt, ...)
{
    char why[384], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof(msg), "%s: %s", field, why);
    lg_respond_error(req, LG_EINVAL, 400, msg, json_pack("{s:s}", "field", field));
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)" → unix seconds. Returns 0 or -1. */
static int parse_iso8601(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    const char *p = s + 10;
    int64_t offset = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &m) != 3 || m != 8)
            return -1;
        p += 1 + m;
        if (*p == '.')
            for (++p; isdigit((unsigned char)*p); ++p)
                ;
        if (*p == 'Z' || *p == 'z') {
            ++p;
        } else if (*p == '+' || *p == '-') {
            int oh, om, k = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
                return -1;
            offset = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
            p += 1 + k;
        } else {
            return -1; /* a time without a zone is ambiguous */
        }
    }
    if (*p != '\0' || y < 1970 || y > 9999 || h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d) /* 2024-02-31 normalised away */
        return -1;
    *out = (int64_t)t - offset;
    return 0;
}

/* ---- key documents: parse and validate ---- */

enum {
    F_NAME = 1 << 0,
    F_CREDIT = 1 << 1,
    F_RESET = 1 << 2,
    F_RPM = 1 << 3,
    F_TPM = 1 << 4,
    F_MODELS = 1 << 5,
    F_TOOLS = 1 << 6,
    F_EXPIRES = 1 << 7,
    F_METADATA = 1 << 8,
    F_DISABLED = 1 << 9
};

/** A validated set of key fields (create: all given ones; PATCH: the subset to change). Owns its values. */
struct key_edit {
    unsigned set; /* F_* present */
    char *name;
    int64_t credit_pico;
    lg_reset_period_t reset;
    uint32_t rpm, tpm;
    char **models, **tools; /* NULL = all */
    int64_t expires_at;     /* 0 = never */
    json_t *metadata;       /* NULL = none */
    int disabled;
    char id[LG_KEY_ID_LEN + 1]; /* PATCH/DELETE target */
};

static void key_edit_free(void *p)
{
    struct key_edit *e = p;
    free(e->name);
    lg_strv_free(e->models);
    lg_strv_free(e->tools);
    json_decref(e->metadata);
    free(e);
}

/* A JSON string without embedded NULs (which would silently cut it in C). */
static const char *plain_string(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    return strlen(s) == json_string_length(v) ? s : NULL;
}

static int parse_count(h2o_req_t *req, const char *field, const json_t *v, uint32_t *out)
{
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v)) {
        bad_field(req, field, "expected an integer 0..%d (0 or null = unlimited)", LG_KEY_MAX_RATE);
        return -1;
    }
    json_int_t n = json_integer_value(v);
    if (n < 0 || n > LG_KEY_MAX_RATE) {
        bad_field(req, field, "%lld is outside 0..%d", (long long)n, LG_KEY_MAX_RATE);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

static int parse_strv(h2o_req_t *req, const char *field, const json_t *v, int (*valid)(const char *, const char **), char ***out)
{
    char buf[80];
    const char *why;
    *out = NULL;
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v)) {
        bad_field(req, field, "expected an array of strings or null (null = all allowed)");
        return -1;
    }
    size_t n = json_array_size(v);
    if (n > LG_KEY_MAX_LIST_ITEMS) {
        bad_field(req, field, "more than %d entries", LG_KEY_MAX_LIST_ITEMS);
        return -1;
    }
    char **list = lg_malloc(sizeof(*list) * (n + 1));
    size_t i;
    for (i = 0; i < n; ++i) {
        const json_t *item = json_array_get(v, i);
        const char *s = plain_string(item);
        if (s == NULL) {
            list[i] = NULL;
            lg_strv_free(list);
            bad_field(req, field, "entry %zu: expected a string", i);
            return -1;
        }
        if (!valid(s, &why)) {
            list[i] = NULL;
            lg_strv_free(list);
            bad_field(req, field, "entry %zu (\"%s\"): %s", i, shown(s, strlen(s), buf, sizeof(buf)), why);
            return -1;
        }
        list[i] = lg_strdup(s);
    }
    list[i] = NULL;
    *out = list;
    return 0;
}

static int parse_credit(h2o_req_t *req, const json_t *v, int64_t *out)
{
    static const char expect[] = "expected a USD amount 0..1000000 (number or decimal string) or null (= unlimited)";
    if (json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!isfinite(d) || d < 0 || d > LG_KEY_MAX_CREDIT_USD) {
            bad_field(req, "credit_limit", "%g is outside 0..%d USD", d, LG_KEY_MAX_CREDIT_USD);
            return -1;
        }
    } else if (!json_is_string(v)) {
        bad_field(req, "credit_limit", "%s", expect);
        return -1;
    }
    int64_t pico;
    if (lg_price_parse(v, &pico) != 0) {
        bad_field(req, "credit_limit", "%s", expect);
        return -1;
    }
    if (pico > LG_KEY_MAX_CREDIT_USD * PICO_PER_USD) {
        bad_field(req, "credit_limit", "above the maximum of %d USD", LG_KEY_MAX_CREDIT_USD);
        return -1;
    }
    *out = pico;
    return 0;
}

static int parse_expires(h2o_req_t *req, const json_t *v, int64_t *out)
{
    int64_t now = lg_unix_time(), t;
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v)) {
        t = json_integer_value(v);
        if (t == 0) {
            *out = 0;
            return 0;
        }
    } else if (json_is_string(v)) {
        const char *s = plain_string(v);
        if (s == NULL || parse_iso8601(s, &t) != 0) {
            bad_field(req, "expires_at", "expected unix seconds, an ISO 8601 time like 2030-01-01T00:00:00Z, or null");
            return -1;
        }
    } else {
        bad_field(req, "expires_at", "expected unix seconds, an ISO 8601 time like 2030-01-01T00:00:00Z, or null");
        return -1;
    }
    if (t < MIN_EXPIRES_S || t > now + LG_KEY_MAX_EXPIRES_S) {
        bad_field(req, "expires_at", "%lld is outside 2000-01-01 .. now + 100 years (unix seconds)", (long long)t);
        return -1;
    }
    *out = t;
    return 0;
}

/** Parse a create (create = 1) or PATCH body into e. Responds 400 and returns -1 on the first problem. */
static int parse_key_edit(h2o_req_t *req, int create, struct key_edit *e)
{
    static const struct {
        const char *name;
        unsigned flag;
    } fields[] = {{"name", F_NAME},         {"credit_limit", F_CREDIT},   {"reset", F_RESET},         {"rpm", F_RPM},
                  {"tpm", F_TPM},           {"allowed_models", F_MODELS}, {"allowed_tools", F_TOOLS}, {"expires_at", F_EXPIRES},
                  {"metadata", F_METADATA}, {"disabled", F_DISABLED}};
    char buf[80];
    json_error_t jerr;

    if (req->entity.len > MAX_BODY_BYTES) {
        lg_respond_error(req, LG_ETOOLARGE, 413, "admin request body larger than 1 MiB", NULL);
        return -1;
    }
    if (req->entity.base == NULL || req->entity.len == 0) {
        lg_respond_error(req, LG_EINVAL, 400, "missing JSON body", NULL);
        return -1;
    }
    json_t *body = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        char msg[300];
        snprintf(msg, sizeof(msg), "invalid JSON body: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        lg_respond_error(req, LG_EINVAL, 400, msg, NULL);
        return -1;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        lg_respond_error(req, LG_EINVAL, 400, "expected a JSON object", NULL);
        return -1;
    }
    const char *name;
    json_t *v;
    json_object_foreach(body, name, v)
    {
        size_t i;
        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); ++i)
            if (strcmp(name, fields[i].name) == 0)
                break;
        if (i == sizeof(fields) / sizeof(fields[0])) {
            char msg[320];
            snprintf(msg, sizeof(msg),
                     "unknown field \"%s\" (expected name, credit_limit, reset, rpm, tpm, allowed_models, "
                     "allowed_tools, expires_at, metadata, disabled)",
                     shown(name, strlen(name), buf, sizeof(buf)));
            lg_respond_error(req, LG_EINVAL, 400, msg, json_pack("{s:s}", "field", shown(name, strlen(name), buf, sizeof(buf))));
            goto fail;
        }
        e->set |= fields[i].flag;
        const char *why, *s;
        int p;
        switch (fields[i].flag) {
        case F_NAME:
            if ((s = plain_string(v)) == NULL) {
                bad_field(req, "name", "%s", json_is_string(v) ? "contains control characters" : "expected a string");
                goto fail;
            }
            if (!lg_key_name_valid(s, &why)) {
                bad_field(req, "name", "%s", why);
                goto fail;
            }
            e->name = lg_strdup(s);
            break;
        case F_CREDIT:
            if (parse_credit(req, v, &e->credit_pico) != 0)
                goto fail;
            break;
        case F_RESET:
            if (json_is_null(v)) {
                e->reset = LG_RESET_NONE;
                break;
            }
            if ((s = plain_string(v)) == NULL || (p = lg_reset_period_parse(s)) < 0) {
                bad_field(req, "reset", "expected \"none\", \"daily\", \"weekly\" or \"monthly\"");
                goto fail;
            }
            e->reset = (lg_reset_period_t)p;
            break;
        case F_RPM:
            if (parse_count(req, "rpm", v, &e->rpm) != 0)
                goto fail;
            break;
        case F_TPM:
            if (parse_count(req, "tpm", v, &e->tpm) != 0)
                goto fail;
            break;
        case F_MODELS:
            if (parse_strv(req, "allowed_models", v, lg_key_model_valid, &e->models) != 0)
                goto fail;
            break;
        case F_TOOLS:
            if (parse_strv(req, "allowed_tools", v, lg_key_tool_valid, &e->tools) != 0)
                goto fail;
            break;
        case F_EXPIRES:
            if (parse_expires(req, v, &e->expires_at) != 0)
                goto fail;
            break;
        case F_METADATA:
            if (json_is_null(v))
                break;
            if (!json_is_object(v)) {
                bad_field(req, "metadata", "expected a JSON object or null");
                goto fail;
            }
            {
                char *text = json_dumps(v, JSON_COMPACT);
                size_t len = text != NULL ? strlen(text) : 0;
                free(text);
                if (len > LG_KEY_MAX_METADATA_BYTES) {
                    bad_field(req, "metadata", "larger than %d bytes", LG_KEY_MAX_METADATA_BYTES);
                    goto fail;
                }
            }
            e->metadata = json_deep_copy(v);
            break;
        case F_DISABLED:
            if (!json_is_boolean(v)) {
                bad_field(req, "disabled", "expected true or false");
                goto fail;
            }
            e->disabled = json_is_true(v);
            break;
        }
    }
    if (create && !(e->set & F_NAME)) {
        bad_field(req, "name", "required");
        goto fail;
    }
    if (!create && e->set == 0) {
        lg_respond_error(req, LG_EINVAL, 400, "nothing to change: give at least one field (name, credit_limit, rpm, ...)", NULL);
        goto fail;
    }
    json_decref(body);
    return 0;
fail:
    json_decref(body);
    return -1;
}

/** Move the fields of e into k (e loses ownership of what it hands over). */
static void key_edit_apply(struct key_edit *e, lg_key_record_t *k)
{
    if (e->set & F_NAME) {
        free(k->name);
        k->name = e->name;
        e->name = NULL;
    }
    if (e->set & F_CREDIT)
        k->credit_limit_pico = e->credit_pico;
    if (e->set & F_RESET)
        k->reset_period = e->reset;
    if (e->set & F_RPM)
        k->rpm = e->rpm;
    if (e->set & F_TPM)
        k->tpm = e->tpm;
    if (e->set & F_MODELS) {
        lg_strv_free(k->allowed_models);
        k->allowed_models = e->models;
        e->models = NULL;
    }
    if (e->set & F_TOOLS) {
        lg_strv_free(k->allowed_tools);
        k->allowed_tools = e->tools;
        e->tools = NULL;
    }
    if (e->set & F_EXPIRES)
        k->expires_at = e->expires_at;
    if (e->set & F_METADATA) {
        json_decref(k->metadata);
        k->metadata = e->metadata;
        e->metadata = NULL;
    }
    if (e->set & F_DISABLED)
        k->disabled = e->disabled;
}

/* ---- threadpool work ---- */

static json_t *store_failed(lg_store_t *s, const char *what)
{
    LG_LOG(LG_LOG_ERR, "admin", "%s: %s", what, s != NULL ? lg_store_errmsg(s) : "store unavailable");
    return lg_error_json(LG_EINTERNAL, 500, s != NULL ? "store operation failed" : "store unavailable", NULL);
}

/* After a committed change: the running gateway enforces it before the response leaves. */
static void sync_keys(void)
{
    char err[512];
    if (lg_gate_sync_keys(err, sizeof(err)) != 0)
        LG_LOG(LG_LOG_ERR, "admin", "key change committed but the key table was not re-synced: %s", err);
    lg_cluster_keys_changed(); /* the other replicas re-sync too (no-op on a single node) */
}

static int create_work(lg_store_t *s, void *data, json_t **body)
{
    struct key_edit *e = data;
    lg_key_record_t k;
    char secret[LG_KEY_SECRET_LEN + 1];
    int status;

    if (s == NULL) {
        *body = store_failed(s, "create key");
        return 500;
    }
    lg_key_record_init(&k);
    key_edit_apply(e, &k);
    if (lg_key_generate(&k, secret) != 0) {
        *body = lg_error_json(LG_EINTERNAL, 500, "cannot generate a key (random source failed)", NULL);
        status = 500;
        goto out;
    }
    pthread_mutex_lock(&write_mutex);
    int rc = lg_store_key_insert(s, &k);
    if (rc == 0)
        sync_keys();
    pthread_mutex_unlock(&write_mutex);
    if (rc != 0) {
        *body = store_failed(s, "create key");
        status = 500;
        goto out;
    }
    /* the only place the secret ever leaves the process: OpenRouter's shape, {"data": {...}, "key": "sk-..."} */
    *body = json_pack("{s:o,s:s}", "data", lg_key_record_to_json(&k), "key", secret);
    LG_LOG(LG_LOG_INFO, "admin", "key %s created", k.id);
    status = 201;
out:
    memset(secret, 0, sizeof(secret));
    lg_key_record_clear(&k);
    return status;
}

static int not_found(json_t **body, const char *id)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "key not found: %s", id);
    *body = lg_error_json(LG_ENOTFOUND, 404, msg, NULL);
    return 404;
}

static int update_work(lg_store_t *s, void *data, json_t **body)
{
    struct key_edit *e = data;
    lg_key_record_t *k = NULL;
    if (s == NULL) {
        *body = store_failed(s, "update key");
        return 500;
    }
    pthread_mutex_lock(&write_mutex);
    int rc = lg_store_key_get(s, e->id, &k);
    if (rc == 0) {
        key_edit_apply(e, k);
        rc = lg_store_key_update(s, k);
    }
    if (rc == 0)
        sync_keys();
    pthread_mutex_unlock(&write_mutex);
    int status = 200;
    if (rc == LG_ENOTFOUND) {
        status = not_found(body, e->id);
    } else if (rc != 0) {
        *body = store_failed(s, "update key");
        status = 500;
    } else {
        *body = json_pack("{s:o}", "data", lg_key_record_to_json(k));
        LG_LOG(LG_LOG_INFO, "admin", "key %s updated", k->id);
    }
    lg_key_record_free(k);
    return status;
}

static int delete_work(lg_store_t *s, void *data, json_t **body)
{
    struct key_edit *e = data;
    if (s == NULL) {
        *body = store_failed(s, "delete key");
        return 500;
    }
    pthread_mutex_lock(&write_mutex);
    int rc = lg_store_key_delete(s, e->id);
    if (rc == 0)
        sync_keys();
    pthread_mutex_unlock(&write_mutex);
    if (rc == LG_ENOTFOUND)
        return not_found(body, e->id);
    if (rc != 0) {
        *body = store_failed(s, "delete key");
        return 500;
    }
    LG_LOG(LG_LOG_INFO, "admin", "key %s deleted", e->id);
    *body = json_pack("{s:{s:s,s:b}}", "data", "id", e->id, "deleted", 1);
    return 200;
}

static int get_work(lg_store_t *s, void *data, json_t **body)
{
    struct key_edit *e = data;
    lg_key_record_t *k = NULL;
    json_t *usage = NULL;
    if (s == NULL) {
        *body = store_failed(s, "get key");
        return 500;
    }
    int rc = lg_store_key_get(s, e->id, &k);
    if (rc == LG_ENOTFOUND)
        return not_found(body, e->id);
    if (rc == 0 && (rc = lg_store_key_usage(s, e->id, lg_gate_now_ms(), &usage)) == 0) {
        json_t *j = lg_key_record_to_json(k);
        json_object_update(j, usage); /* usage, usage_daily, ... in USD and pico */
        json_decref(usage);
        *body = json_pack("{s:o}", "data", j);
    }
    lg_key_record_free(k);
    if (rc != 0) {
        *body = store_failed(s, "get key");
        return 500;
    }
    return 200;
}

static int list_work(lg_store_t *s, void *data, json_t **body)
{
    (void)data;
    lg_key_record_t **list = NULL;
    size_t n = 0;
    if (s == NULL || lg_store_key_list(s, &list, &n) != 0) {
        *body = store_failed(s, "list keys");
        return 500;
    }
    json_t *a = json_array();
    int64_t now = lg_gate_now_ms();
    for (size_t i = 0; i < n; ++i) {
        json_t *j = lg_key_record_to_json(list[i]); /* never the hash */
        /* live credit used in the key's current reset period, as the gate enforces it */
        lg_key_entry_t *live = lg_keytable_get_by_id(lg_gate_keys(), list[i]->id);
        int64_t used = live != NULL ? lg_key_credit_used_pico(live, now) : 0;
        lg_key_entry_release(live);
        json_object_set_new(j, "credit_used", json_real((double)used / (double)PICO_PER_USD));
        json_object_set_new(j, "credit_used_pico", json_integer(used));
        json_array_append_new(a, j);
    }
    lg_store_key_list_free(list, n);
    *body = json_pack("{s:o}", "data", a);
    return 200;
}

/* ---- usage ---- */

struct usage_req {
    lg_usage_query_t q;
    char *key, *model, *provider, *group_by; /* owned copies the query points at */
};

static void usage_req_free(void *p)
{
    struct usage_req *u = p;
    free(u->key);
    free(u->model);
    free(u->provider);
    free(u->group_by);
    free(u);
}

static int usage_work(lg_store_t *s, void *data, json_t **body)
{
    struct usage_req *u = data;
    if (s == NULL) {
        *body = store_failed(s, "usage");
        return 500;
    }
    int rc = lg_store_usage_query(s, &u->q, body);
    if (rc == LG_EINVAL) {
        *body = lg_error_json(LG_EINVAL, 400, lg_store_errmsg(s), json_pack("{s:s}", "field", "group_by"));
        return 400;
    }
    if (rc != 0) {
        *body = store_failed(s, "usage");
        return 500;
    }
    return 200;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decode s[0..len) ('+' = space) into a new string; NULL if malformed or it decodes to a NUL. */
static char *url_decode(const char *s, size_t len)
{
    char *out = lg_malloc(len + 1), *o = out;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = hexval((unsigned char)s[i + 1])) < 0 || (lo = hexval((unsigned char)s[i + 2])) < 0 ||
                (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *o = '\0';
    return out;
}

/* since/until: unix seconds, or ISO 8601 ("2025-01-31" = that day's UTC midnight) → unix ms. */
static int parse_when(const char *s, int64_t *out_ms)
{
    if (*s == '\0')
        return -1;
    int digits = 1;
    for (const char *p = s; *p != '\0'; ++p)
        digits &= isdigit((unsigned char)*p) != 0;
    if (digits) {
        if (strlen(s) > 12)
            return -1;
        *out_ms = strtoll(s, NULL, 10) * 1000;
        return 0;
    }
    int64_t t;
    if (parse_iso8601(s, &t) != 0)
        return -1;
    *out_ms = t * 1000;
    return 0;
}

static void handle_usage(lg_worker_t *w, h2o_req_t *req)
{
    struct usage_req *u = lg_malloc(sizeof(*u));
    char buf[80];
    const char *why;
    memset(u, 0, sizeof(*u));
    if (req->query_at != SIZE_MAX) {
        const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p)), *stop = amp != NULL ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            size_t nlen = eq != NULL ? (size_t)(eq - p) : (size_t)(stop - p);
            const char *name = p;
            p = stop + 1;
            if (nlen == 0 && eq == NULL)
                continue; /* "a=1&&b=2" */
            char *val = eq != NULL ? url_decode(eq + 1, (size_t)(stop - eq - 1)) : NULL;
            char **slot = NULL;
            if (nlen == 3 && memcmp(name, "key", 3) == 0)
                slot = &u->key;
            else if (nlen == 5 && memcmp(name, "model", 5) == 0)
                slot = &u->model;
            else if (nlen == 8 && memcmp(name, "provider", 8) == 0)
                slot = &u->provider;
            else if (nlen == 8 && memcmp(name, "group_by", 8) == 0)
                slot = &u->group_by;
            int is_since = nlen == 5 && memcmp(name, "since", 5) == 0, is_until = nlen == 5 && memcmp(name, "until", 5) == 0;
            char field[32];
            shown(name, nlen, field, sizeof(field));
            if (slot == NULL && !is_since && !is_until) {
                free(val);
                char msg[160];
                snprintf(msg, sizeof(msg), "unknown query parameter \"%s\" (expected key, model, provider, since, until, group_by)",
                         field);
                lg_respond_error(req, LG_EINVAL, 400, msg, json_pack("{s:s}", "field", field));
                goto fail;
            }
            if (val == NULL) {
                bad_field(req, field, "missing or malformed value (percent-encoding)");
                goto fail;
            }
            if (is_since || is_until) {
                int64_t ms;
                if (parse_when(val, &ms) != 0) {
                    bad_field(req, field, "expected unix seconds or an ISO 8601 date/time, got \"%s\"",
                              shown(val, strlen(val), buf, sizeof(buf)));
                    free(val);
                    goto fail;
                }
                *(is_since ? &u->q.since_ms : &u->q.until_ms) = ms;
                free(val);
                continue;
            }
            free(*slot);
            *slot = val;
        }
    }
    if (u->key != NULL && !lg_key_id_valid(u->key, strlen(u->key))) {
        bad_field(req, "key", "not a key id (key_ followed by 20 letters or digits)");
        goto fail;
    }
    if (u->model != NULL && !lg_key_model_valid(u->model, &why)) {
        bad_field(req, "model", "%s", why);
        goto fail;
    }
    if (u->provider != NULL && !lg_key_tool_valid(u->provider, &why)) {
        bad_field(req, "provider", "expected a provider name like openai");
        goto fail;
    }
    if (u->group_by != NULL && strcmp(u->group_by, "key") != 0 && strcmp(u->group_by, "model") != 0 &&
        strcmp(u->group_by, "provider") != 0 && strcmp(u->group_by, "day") != 0) {
        bad_field(req, "group_by", "expected key, model, provider or day");
        goto fail;
    }
    if (u->q.since_ms > 0 && u->q.until_ms > 0 && u->q.until_ms <= u->q.since_ms) {
        bad_field(req, "until", "must be after since");
        goto fail;
    }
    u->q.key_id = u->key;
    u->q.model = u->model;
    u->q.provider = u->provider;
    u->q.group_by = u->group_by;
    lg__http_store_work(w, req, usage_work, u, usage_req_free);
    return;
fail:
    usage_req_free(u);
}

/* ---- providers (live view; no I/O, answered on the loop) ---- */

static void add_mcp_upstream(const char *name, const char *state, int pid, size_t tools, void *arg)
{
    json_t *o = json_pack("{s:s,s:s,s:I}", "name", name, "state", state, "tools", (json_int_t)tools);
    if (pid > 0)
        json_object_set_new(o, "pid", json_integer(pid));
    json_array_append_new(arg, o);
}

static void handle_providers(lg_worker_t *w, h2o_req_t *req)
{
    const lg_snapshot_t *snap = w->rt->snap;
    const lg_config_t *conf = snap->conf;
    int64_t now = lg_now_ms();
    json_t *providers = json_array();
    for (size_t pi = 0; pi < conf->num_providers; ++pi) {
        const lg_provider_conf_t *p = &conf->providers[pi];
        const lg_provider_stats_t *ps = snap->pstats[pi];
        const char *state = !p->enabled ? "disabled" : snap->plugins[pi] == NULL ? "unavailable" : "ok";
        json_t *eps = json_array();
        size_t healthy = 0, total = 0;
        for (size_t mi = 0; mi < conf->num_models; ++mi)
            for (size_t ei = 0; ei < conf->models[mi].num_endpoints; ++ei) {
                if (conf->models[mi].endpoints[ei].provider_index != pi)
                    continue;
                ++total;
                healthy += lg_stats_healthy(snap->estats[mi][ei], now);
                json_array_append_new(eps, lg__http_endpoint_json(snap, mi, ei, now));
            }
        if (strcmp(state, "ok") == 0 && total != 0 && healthy == 0)
            state = "unhealthy";
        json_array_append_new(providers,
                              json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:I,s:I,s:o}", "name", p->name, "plugin", p->plugin, "state",
                                        state, "in_flight", (int)atomic_load(&ps->in_flight), "queued",
                                        (int)atomic_load(&ps->queued), "max_concurrent", (int)p->max_concurrent, "endpoints_total",
                                        (json_int_t)total, "endpoints_healthy", (json_int_t)healthy, "endpoints", eps));
    }
    json_t *mcp = json_array();
    lg_mcp_federation_foreach(add_mcp_upstream, mcp);
    lg_respond_json(
        req, 200,
        json_pack("{s:o,s:o,s:I}", "data", providers, "mcp_upstreams", mcp, "config_generation", (json_int_t)snap->generation));
}

/* ---- dispatch ---- */

static struct key_edit *new_edit(void)
{
    struct key_edit *e = lg_malloc(sizeof(*e));
    memset(e, 0, sizeof(*e));
    return e;
}

void lg_handle_admin(lg_worker_t *w, h2o_req_t *req, const char *rest, size_t len)
{
    /* the dashboard's sign-in/out and session state need no admin key (they answer "disabled" without one) */
    if ((len == 8 || (len == 9 && rest[8] == '/')) && memcmp(rest, "/session", 8) == 0) {
        lg__dashboard_session(w, req);
        return;
    }
    if (w->rt->snap->conf->admin_key == NULL) {
        lg_respond_error(req, LG_ENOTFOUND, 404,
                         "admin API disabled: set auth.admin_key or the LLMGATE_ADMIN_KEY environment variable", NULL);
        return;
    }
    if (!lg__admin_authorized(w, req)) /* admin key as Bearer, or a dashboard session (+ CSRF token to change state) */
        return;
    if (len > 1 && rest[len - 1] == '/')
        --len;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(rest, lit, sizeof(lit) - 1) == 0)
    if (IS("/keys")) {
        if (lg_req_method_is(req, "GET")) {
            lg__http_store_work(w, req, list_work, NULL, NULL);
        } else if (lg_req_method_is(req, "POST")) {
            struct key_edit *e = new_edit();
            if (parse_key_edit(req, 1, e) != 0)
                key_edit_free(e);
            else
                lg__http_store_work(w, req, create_work, e, key_edit_free);
        } else {
            lg_respond_method_not_allowed(req, "GET, POST");
        }
        return;
    }
    if (len > 6 && memcmp(rest, "/keys/", 6) == 0) {
        const char *id = rest + 6;
        size_t idlen = len - 6;
        char buf[80];
        if (!lg_key_id_valid(id, idlen)) {
            char msg[160];
            snprintf(msg, sizeof(msg), "\"%s\" is not a key id (key_ followed by 20 letters or digits)",
                     shown(id, idlen, buf, sizeof(buf)));
            lg_respond_error(req, LG_ENOTFOUND, 404, msg, NULL);
            return;
        }
        struct key_edit *e = new_edit();
        memcpy(e->id, id, idlen);
        lg_store_work_fn fn = NULL;
        if (lg_req_method_is(req, "GET"))
            fn = get_work;
        else if (lg_req_method_is(req, "DELETE"))
            fn = delete_work;
        else if (lg_req_method_is(req, "PATCH")) {
            if (parse_key_edit(req, 0, e) != 0) {
                key_edit_free(e);
                return;
            }
            fn = update_work;
        }
        if (fn == NULL) {
            key_edit_free(e);
            lg_respond_method_not_allowed(req, "GET, PATCH, DELETE");
            return;
        }
        lg__http_store_work(w, req, fn, e, key_edit_free);
        return;
    }
    if (IS("/usage")) {
        if (!lg_req_method_is(req, "GET"))
            lg_respond_method_not_allowed(req, "GET");
        else
            handle_usage(w, req);
        return;
    }
    if (IS("/providers")) {
        if (!lg_req_method_is(req, "GET"))
            lg_respond_method_not_allowed(req, "GET");
        else
            handle_providers(w, req);
        return;
    }
    if (IS("/reload")) {
        if (!lg_req_method_is(req, "POST")) {
            lg_respond_method_not_allowed(req, "POST");
            return;
        }
        /* the same path as `kill -HUP`: main's signal watcher reloads config, policies and keys. kill() (not raise()):
         * the process-directed signal goes to a thread that does not block it, whichever thread we are on. */
        uint64_t ticket = lg_reload_ticket(); /* done when GET /api/admin/status shows last_reload.covers_ticket >= it */
        if (kill(getpid(), SIGHUP) != 0) {
            lg_respond_error(req, LG_EINTERNAL, 500, "cannot signal the reload", NULL);
            return;
        }
        LG_LOG(LG_LOG_INFO, "admin", "config reload requested through the admin API");
        lg__http_respond_status(req, 202, json_pack("{s:s,s:I}", "status", "reload requested", "ticket", (json_int_t)ticket));
        return;
    }
#undef IS
    if (lg__admin_views(w, req, rest, len))
        return;
    lg_respond_error(req, LG_ENOTFOUND, 404,
                     "no such admin route (keys, keys/{id}, usage, providers, reload, status, timeseries, models, generations, "
                     "generations/{id}, mcp, session)",
                     NULL);
}
