/* SPDX-License-Identifier: MIT */
/*
 * The store front: picks the backend from the target at open (a
 * "postgresql://" or "postgres://" URL → PostgreSQL, anything else → a SQLite
 * file) and forwards every call through the backend's ops table
 * (store_backend.h). Also the backend-independent parts: reset periods and
 * the JSON shape of a key's usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "store/store_backend.h"

#define MS_PER_DAY INT64_C(86400000)

int lg_store_target_is_url(const char *target)
{
    return target != NULL && (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0);
}

const char *lg_store_backend_for(const char *target)
{
    return lg_store_target_is_url(target) ? "postgresql" : "sqlite";
}

void lg_store_target_display(const char *target, char *out, size_t cap)
{
    const char *scheme = target != NULL ? strstr(target, "://") : NULL, *at = scheme != NULL ? strchr(scheme + 3, '@') : NULL;
    const char *colon = at != NULL ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (colon == NULL)
        snprintf(out, cap, "%s", target != NULL ? target : "(none)");
    else
        snprintf(out, cap, "%.*s:***%s", (int)(colon - target), target, at);
}

lg_store_t *lg_store_open(const char *path, char *err, size_t errlen)
{
    if (lg_store_target_is_url(path))
        return lg__store_pg_open(path, err, errlen);
    return lg__store_sqlite_open(path, err, errlen);
}

void lg_store_close(lg_store_t *s)
{
    if (s != NULL)
        s->ops->close(s);
}

const char *lg_store_backend(const lg_store_t *s)
{
    return s->ops->name;
}

int lg_store_version(lg_store_t *s)
{
    return s->version;
}

const char *lg_store_errmsg(const lg_store_t *s)
{
    return s != NULL ? s->errmsg : "no store";
}

int lg_store_unreachable(const lg_store_t *s)
{
    return s->ops->lost_connection != NULL && s->ops->lost_connection(s);
}

int lg_store_insert_generations_ex(lg_store_t *s, const lg_generation_row_t *rows, size_t n, size_t *skipped)
{
    return s->ops->insert_generations(s, rows, n, skipped);
}

int lg_store_insert_generations(lg_store_t *s, const lg_generation_row_t *rows, size_t n)
{
    return s->ops->insert_generations(s, rows, n, NULL);
}

int lg_store_key_insert(lg_store_t *s, const lg_key_record_t *k)
{
    return s->ops->key_insert(s, k);
}

int lg_store_key_update(lg_store_t *s, const lg_key_record_t *k)
{
    return s->ops->key_update(s, k);
}

int lg_store_key_delete(lg_store_t *s, const char *id)
{
    return s->ops->key_delete(s, id);
}

int lg_store_key_get(lg_store_t *s, const char *id, lg_key_record_t **out)
{
    return s->ops->key_get(s, id, out);
}

int lg_store_key_list(lg_store_t *s, lg_key_record_t ***out, size_t *n)
{
    return s->ops->key_list(s, out, n);
}

void lg_store_key_list_free(lg_key_record_t **list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; ++i)
        lg_key_record_free(list[i]);
    free(list);
}

int64_t lg_store_key_cost_since(lg_store_t *s, const char *key_id, int64_t since_ms)
{
    return s->ops->key_cost_since(s, key_id, since_ms);
}

int lg_store_generations_recent(lg_store_t *s, unsigned limit, int64_t before_ms, json_t **out)
{
    if (limit == 0 || limit > 500)
        limit = limit == 0 ? 1 : 500;
    return s->ops->generations_recent(s, limit, before_ms, out);
}

struct sqlite3 *lg__store_sqlite(lg_store_t *s)
{
    return s != NULL && s->ops->sqlite_handle != NULL ? s->ops->sqlite_handle(s) : NULL;
}

int lg_store_generation_get(lg_store_t *s, const char *id, json_t **out)
{
    return s->ops->generation_get(s, id, out);
}

int lg_store_usage_query(lg_store_t *s, const lg_usage_query_t *q, json_t **out)
{
    return s->ops->usage_query(s, q, out);
}

/* ---- usage ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t lg_period_start_ms(lg_reset_period_t p, int64_t now_ms)
{
    int64_t day = floor_div(now_ms, MS_PER_DAY); /* days since 1970-01-01, a Thursday */
    switch (p) {
    case LG_RESET_DAILY:
        return day * MS_PER_DAY;
    case LG_RESET_WEEKLY: {
        int64_t since_monday = ((day + 3) % 7 + 7) % 7; /* ISO weeks start on Monday */
        return (day - since_monday) * MS_PER_DAY;
    }
    case LG_RESET_MONTHLY: {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        return (day - (tm.tm_mday - 1)) * MS_PER_DAY;
    }
    default:
        return 0;
    }
}

int lg_store_key_usage(lg_store_t *s, const char *key_id, int64_t now_ms, json_t **out)
{
    static const char *const names[] = {"usage", "usage_daily", "usage_weekly", "usage_monthly"};
    const int64_t since[3] = {lg_period_start_ms(LG_RESET_DAILY, now_ms), lg_period_start_ms(LG_RESET_WEEKLY, now_ms),
                              lg_period_start_ms(LG_RESET_MONTHLY, now_ms)};
    int64_t pico[4] = {0};
    int rc;

    *out = NULL;
    if ((rc = s->ops->key_usage(s, key_id, since, pico)) != 0)
        return rc;
    json_t *o = json_object();
    for (int i = 0; i < 4; ++i) {
        char name[32];
        json_object_set_new(o, names[i], lg__store_usd(pico[i]));
        snprintf(name, sizeof(name), "%s_pico", names[i]);
        json_object_set_new(o, name, json_integer(pico[i]));
    }
    *out = o;
    return 0;
}
