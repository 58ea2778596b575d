/* SPDX-License-Identifier: MIT */
/*
 * mock_upstream: Cloudflare Workers AI's OpenAI-compatible endpoint, /client/v4/accounts/{account}/ai/v1/...
 * (chat/completions, embeddings). Checks what Cloudflare checks first — the account id's form, the route, the
 * method, `Authorization: Bearer <API token>` — and answers each failure in Cloudflare's v4 envelope
 * ({"success":false,"errors":[{"code":N,"message":"..."}],"messages":[],"result":null}); `cf-error-<status>` in the
 * model answers that status in the same envelope. Everything else is the OpenAI endpoints' behaviour (mock_upstream.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mock.h"

const char *cloudflare_token = NULL;

#define ACCOUNT_ID_LEN 32 /* Cloudflare account ids are 32 lower-case hex digits */

/* one v4 error envelope; message is JSON-escaped */
static void cf_error(h2o_req_t *req, struct reqtrack *t, int status, int code, const char *message)
{
    struct resp r;
    resp_init(&r, &req->pool, status, "application/json", 256 + strlen(message));
    ev_begin(&r);
    sb_fmt(&r.buf, "{\"success\":false,\"errors\":[{\"code\":%d,\"message\":\"", code);
    sb_json_str(&r.buf, message, strlen(message));
    sb_lit(&r.buf, "\"}],\"messages\":[],\"result\":null}");
    ev_end(&r, 0);
    r.content_length = r.buf.len;
    respond(req, t, &r, NULL);
}

/* the code and text Workers AI answers with for a status (its documented errors) */
static void cf_error_for_status(h2o_req_t *req, struct reqtrack *t, int status, const char *model, size_t model_len)
{
    char msg[300];
    int code;
    switch (status) {
    case 400:
        code = 5007;
        snprintf(msg, sizeof(msg), "No such model %.*s or task", (int)(model_len > 200 ? 200 : model_len), model);
        break;
    case 401:
        code = 10000, snprintf(msg, sizeof(msg), "Authentication error");
        break;
    case 403:
        code = 3023, snprintf(msg, sizeof(msg), "Service unavailable for account");
        break;
    case 404:
        code = 3042, snprintf(msg, sizeof(msg), "The model name is invalid");
        break;
    case 408:
        code = 3007, snprintf(msg, sizeof(msg), "Request timeout");
        break;
    case 413:
        code = 3006, snprintf(msg, sizeof(msg), "Request is too large");
        break;
    case 429:
        code = 3040, snprintf(msg, sizeof(msg), "Capacity temporarily exceeded, please try again.");
        break;
    default:
        if (status >= 500)
            code = 3043, snprintf(msg, sizeof(msg), "Internal server error");
        else
            code = 1000, snprintf(msg, sizeof(msg), "mock Cloudflare error %d", status);
        break;
    }
    cf_error(req, t, status, code, msg);
}

static int is_account_id(const char *s, size_t n)
{
    if (n != ACCOUNT_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int bearer_ok(h2o_req_t *req)
{
    size_t len;
    const char *v = header_value(req, "authorization", &len);
    if (v == NULL || len <= 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    if (cloudflare_token == NULL)
        return 1;
    return len - 7 == strlen(cloudflare_token) && memcmp(v + 7, cloudflare_token, len - 7) == 0;
}

void mock_cloudflare_handle(h2o_req_t *req, struct reqtrack *t, int is_post)
{
    h2o_iovec_t path = req->path_normalized;
    const char *acct = path.base + 20; /* after "/client/v4/accounts/" */
    size_t rest = path.len - 20, acct_len = 0;
    while (acct_len < rest && acct[acct_len] != '/')
        acct_len++;
    const char *route = acct + acct_len;
    size_t route_len = rest - acct_len;
    char msg[300];

    if (!is_account_id(acct, acct_len)) {
        snprintf(msg, sizeof(msg), "Could not route to %.*s, perhaps your object identifier is invalid?",
                 (int)(path.len > 200 ? 200 : path.len), path.base);
        cf_error(req, t, 400, 7003, msg);
        return;
    }
    enum api api;
    if (h2o_memis(route, route_len, H2O_STRLIT("/ai/v1/chat/completions")))
        api = API_CHAT;
    else if (h2o_memis(route, route_len, H2O_STRLIT("/ai/v1/embeddings")))
        api = API_EMBEDDINGS;
    else {
        cf_error(req, t, 404, 7000, "No route for that URI");
        return;
    }
    if (!is_post) {
        cf_error(req, t, 405, 10405, "Method not allowed");
        return;
    }
    if (!bearer_ok(req)) {
        cf_error(req, t, 401, 10000, "Authentication error");
        return;
    }

    /* cf-error-<status>: recorded like any API request, then the envelope */
    json_t *body = req->entity.base != NULL ? json_loadb(req->entity.base, req->entity.len, 0, NULL) : NULL;
    json_t *jmodel = json_object_get(body, "model");
    if (json_is_string(jmodel)) {
        struct plan plan;
        parse_plan(json_string_value(jmodel), json_string_length(jmodel), &plan);
        if (plan.cf_error_status != 0) {
            record_request(req, json_string_value(jmodel), json_string_length(jmodel));
            if (!quiet)
                fprintf(stderr, "mock: POST %.*s model=%s\n", (int)path.len, path.base, json_string_value(jmodel));
            cf_error_for_status(req, t, plan.cf_error_status, json_string_value(jmodel), json_string_length(jmodel));
            json_decref(body);
            return;
        }
    }
    json_decref(body);
    mock_openai_handle(req, t, api);
}
