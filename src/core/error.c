/* SPDX-License-Identifier: MIT */
/*
 * lg_err_t → statuses, error_type strings and the OpenRouter error body.
 */
#include <stddef.h>
#include "core/error.h"

struct err_row {
    int num;
    const char *name;
    int status;
    const char *type;
    const char *msg;
};

static const struct err_row rows[] = {
#define ROW(name, num, status, type, msg) {num, "LG_" #name, status, type, msg},
    LG_ERRNO_MAP(ROW)
#undef ROW
};

static const struct err_row *find_row(int err)
{
    /* codes are dense negatives starting at -1 */
    size_t idx = (size_t)(-err - 1);
    if (err < 0 && idx < sizeof(rows) / sizeof(rows[0]) && rows[idx].num == err)
        return &rows[idx];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); ++i)
        if (rows[i].num == err)
            return &rows[i];
    return NULL;
}

const char *lg_strerror(int err)
{
    const struct err_row *r = find_row(err);
    return err == 0 ? "ok" : r != NULL ? r->msg : "unknown error";
}

int lg_err_status(int err)
{
    const struct err_row *r = find_row(err);
    return r != NULL ? r->status : 500;
}

const char *lg_err_type(int err)
{
    const struct err_row *r = find_row(err);
    return r != NULL ? r->type : "server";
}

json_t *lg_error_json(int err, int status, const char *msg, json_t *metadata)
{
    const char *type = lg_err_type(err);
    if (status == 0)
        status = lg_err_status(err);
    if (metadata == NULL)
        metadata = json_object();
    if (json_object_get(metadata, "error_type") == NULL)
        json_object_set_new(metadata, "error_type", json_string(type));
    return json_pack("{s:{s:i,s:s,s:s,s:o}}", "error", "code", status, "message", msg != NULL ? msg : lg_strerror(err), "type",
                     type, "metadata", metadata);
}
