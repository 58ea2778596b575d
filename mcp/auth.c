/* SPDX-License-Identifier: MIT */
/*
 * MCP auth and per-key tool policy on top of the gate (see auth.h). Anonymous
 * callers (open gateway, stdio mode) are not limited. The client's
 * Authorization header is only read here; nothing in mcp/ forwards it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/gate.h"
#include "auth/ratelimit.h"
#include "core/config.h"
#include "core/util.h"
#include "core/log.h"
#include "llmgate/plugin.h"
#include "mcp/auth.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"
#include "mcp/transport_http.h"

int lg_mcp_auth_request(h2o_req_t *req, char *key_id, size_t key_id_size, const char **msg)
{
    lg_key_entry_t *e = NULL;
    *msg = NULL;
    key_id[0] = '\0';
    if (lg_gate_keys() == NULL) /* no gate (tests without a store): open */
        return 0;
    if (lg_gate_authenticate(req, &e, msg) != 0)
        return -1;
    if (e == NULL)
        return 0;
    /* a disabled or expired key is refused like an unknown one (lg_key_admit tells the reason on /v1) */
    const lg_key_record_t *rec = lg_key_entry_record(e);
    int64_t now_s = lg_gate_now_ms() / 1000;
    if (rec->disabled || (rec->expires_at != 0 && rec->expires_at <= now_s)) {
        *msg = rec->disabled ? "API key disabled" : "API key expired";
        lg_key_entry_release(e);
        return -1;
    }
    snprintf(key_id, key_id_size, "%s", rec->id);
    lg_key_entry_release(e);
    return 0;
}

static int auth_hook(h2o_req_t *req, const char *authorization, size_t len, char *key_id, size_t key_id_size)
{
    (void)authorization;
    (void)len; /* lg_gate_authenticate reads Authorization and x-api-key itself */
    const char *msg;
    if (lg_mcp_auth_request(req, key_id, key_id_size, &msg) != 0) {
        LG_LOG(LG_LOG_DEBUG, "mcp", "401: %s", msg != NULL ? msg : "unauthorized");
        return -1;
    }
    return 0;
}

static lg_key_entry_t *entry_of(const char *key_id)
{
    if (key_id == NULL || key_id[0] == '\0' || lg_gate_keys() == NULL)
        return NULL;
    return lg_keytable_get_by_id(lg_gate_keys(), key_id);
}

int lg_mcp_auth_tool_allowed(const char *key_id, const char *tool)
{
    if (key_id == NULL || key_id[0] == '\0')
        return 1;
    lg_key_entry_t *e = entry_of(key_id);
    if (e == NULL)
        return 0; /* removed since the session started */
    int ok = lg_key_tool_allowed(e, tool);
    lg_key_entry_release(e);
    return ok;
}

/* Per-tool rate limits (mcp.tool_rate_limits): one token bucket per configured pattern, shared by every caller, so an
 * expensive upstream tool is protected whoever calls it. Tool calls are not the LLM hot path: a mutex is fine. */
struct tool_limit {
    char *pattern;
    uint32_t rpm;
    lg_bucket_t bucket;
};
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tool_limit *limits;
static size_t num_limits;

void lg_mcp_auth_configure(const lg_config_t *conf)
{
    size_t n = 0;
    while (conf->mcp.tool_limit_patterns != NULL && conf->mcp.tool_limit_patterns[n] != NULL)
        ++n;
    struct tool_limit *next = calloc(n + 1, sizeof(*next));
    int64_t now = lg_gate_now_ms();
    pthread_mutex_lock(&limits_lock);
    for (size_t i = 0; i < n; ++i) {
        next[i].pattern = lg_strdup(conf->mcp.tool_limit_patterns[i]);
        next[i].rpm = conf->mcp.tool_limit_rpm[i];
        lg_bucket_init(&next[i].bucket, next[i].rpm, next[i].rpm / 60.0, now);
        /* a reload keeps the level of a limit that did not change */
        for (size_t j = 0; j < num_limits; ++j)
            if (strcmp(limits[j].pattern, next[i].pattern) == 0)
                next[i].bucket = limits[j].bucket, lg_bucket_reconfigure(&next[i].bucket, next[i].rpm, next[i].rpm / 60.0, now);
    }
    for (size_t j = 0; j < num_limits; ++j)
        free(limits[j].pattern);
    free(limits);
    limits = next;
    num_limits = n;
    pthread_mutex_unlock(&limits_lock);
}

static int pattern_matches(const char *pattern, const char *tool)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*')
        return strncmp(pattern, tool, n - 1) == 0;
    return strcmp(pattern, tool) == 0;
}

/** 0 if the tool's shared limit lets the call through, else the wait in ms (first matching pattern decides). */
static int64_t tool_limit_take(const char *tool, uint32_t *rpm)
{
    int64_t wait = 0;
    pthread_mutex_lock(&limits_lock);
    for (size_t i = 0; i < num_limits; ++i) {
        if (!pattern_matches(limits[i].pattern, tool))
            continue;
        *rpm = limits[i].rpm;
        if (!lg_bucket_take(&limits[i].bucket, 1, lg_gate_now_ms(), &wait))
            wait = wait > 0 ? wait : 1;
        else
            wait = 0;
        break;
    }
    pthread_mutex_unlock(&limits_lock);
    return wait;
}

static int policy_admit(const char *key_id, const char *tool, int *code, char *msg, size_t msglen, json_t **data)
{
    uint32_t rpm = 0;
    int64_t wait = tool != NULL ? tool_limit_take(tool, &rpm) : 0;
    if (wait > 0) {
        *code = LG_JSONRPC_SERVER_ERROR;
        snprintf(msg, msglen, "tool %s is rate limited (%u calls/min for all callers): retry in %" PRId64 " ms", tool, rpm, wait);
        *data = json_pack("{s:s,s:I,s:i}", "reason", "tool_rate_limited", "retryAfterMs", (json_int_t)wait, "limit", (int)rpm);
        return -1;
    }
    if (key_id == NULL || key_id[0] == '\0')
        return 0;
    lg_key_entry_t *e = entry_of(key_id);
    if (e == NULL) {
        *code = LG_JSONRPC_SERVER_ERROR;
        snprintf(msg, msglen, "API key removed");
        *data = json_pack("{s:s}", "reason", "unauthorized");
        return -1;
    }
    lg_admit_t a;
    int rc = lg_key_admit(e, 0, lg_gate_now_ms(), &a);
    lg_key_entry_release(e);
    if (rc == 0)
        return 0;
    *code = LG_JSONRPC_SERVER_ERROR;
    if (rc == LG_ERATELIMIT) {
        snprintf(msg, msglen, "rate limited: retry in %" PRId64 " ms", a.retry_after_ms);
        *data = json_pack("{s:s,s:I,s:I}", "reason", "rate_limited", "retryAfterMs", (json_int_t)a.retry_after_ms, "limit",
                          (json_int_t)a.limit);
    } else if (rc == LG_ECREDIT) {
        snprintf(msg, msglen, "credit limit reached for this key");
        *data = json_pack("{s:s}", "reason", "credit");
    } else {
        snprintf(msg, msglen, "API key %s", a.reason != NULL ? a.reason : "refused");
        *data = json_pack("{s:s}", "reason", "unauthorized");
    }
    return -1;
}

static int policy_allowed(const char *key_id, const char *tool)
{
    return lg_mcp_auth_tool_allowed(key_id, tool);
}

static void policy_done(const lg_mcp_call_t *c, const char *key_id, const char *tool, const char *outcome, const char *reason,
                        double duration_s)
{
    /* server: the prefix of the tool name ("<server>__<tool>"), or the endpoint for unprefixed tools */
    const char *sep = strstr(tool, LG_MCP_PREFIX_SEP);
    const char *ep = c->reg != NULL ? lg_mcp_registry_name(c->reg) : "";
    int slen = sep != NULL ? (int)(sep - tool) : (int)strlen(ep[0] != '\0' ? ep : "mcp");
    LG_LOG(LG_LOG_INFO, "mcp", "tool call key=%s server=%.*s tool=%s duration_ms=%.1f outcome=%s%s%s",
           key_id != NULL ? key_id : "-", slen, sep != NULL ? tool : (ep[0] != '\0' ? ep : "mcp"), tool, duration_s * 1e3, outcome,
           reason != NULL ? " reason=" : "", reason != NULL ? reason : "");
}

static const lg_mcp_tool_policy_t policy = {
    .allowed = policy_allowed,
    .admit = policy_admit,
    .done = policy_done,
};

void lg_mcp_auth_install(void)
{
    lg_mcp_set_auth(auth_hook);
    lg_mcp_set_tool_policy(&policy);
}
