/* SPDX-License-Identifier: MIT */
/*
 * Access gate (see gate.h).
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include "auth/gate.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"

static lg_keytable_t *keys;
static lg_ledger_t *ledger;
static char *store_path;
static _Atomic int require_mode = -1; /* -1 auto, 0 never, 1 always */
static _Atomic int non_loopback;      /* some listener is not on loopback */
static _Atomic int admin_set;
static _Atomic size_t key_count; /* keys in the table, refreshed at each sync: the per-request "open?" check reads this
                                    plain counter instead of taking a reference on the key table's shared version word */
static uint8_t admin_hash[32];

int64_t lg_gate_now_ms(void)
{
    return lg_unix_ms();
}

static int is_loopback(const char *address)
{
    struct in_addr a4;
    if (inet_pton(AF_INET, address, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return strcmp(address, "::1") == 0 || strcmp(address, "[::1]") == 0;
}

void lg_gate_apply_config(const lg_config_t *conf)
{
    int nl = 0;
    for (size_t i = 0; i < conf->num_listeners; ++i)
        nl |= !is_loopback(conf->listeners[i].address);
    atomic_store(&non_loopback, nl);
    atomic_store(&require_mode, conf->require_keys);
    if (conf->admin_key != NULL) {
        lg_key_hash(conf->admin_key, strlen(conf->admin_key), admin_hash);
        atomic_store(&admin_set, 1);
    } else {
        atomic_store(&admin_set, 0);
    }
}

static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;

static int sync_keys_locked(char *err, size_t errlen);

int lg_gate_sync_keys(char *err, size_t errlen)
{
    /* read-then-load must not interleave: a SIGHUP re-sync racing an admin change could install the older list */
    pthread_mutex_lock(&sync_lock);
    int rc = sync_keys_locked(err, errlen);
    pthread_mutex_unlock(&sync_lock);
    return rc;
}

static int sync_keys_locked(char *err, size_t errlen)
{
    if (store_path == NULL)
        return 0; /* no store configured: no keys */
    lg_store_t *s = lg_store_open(store_path, err, errlen);
    if (s == NULL)
        return LG_EINTERNAL;
    lg_key_record_t **list = NULL;
    size_t n = 0;
    int rc = lg_store_key_list(s, &list, &n);
    if (rc != 0) {
        snprintf(err, errlen, "cannot list keys: %s", lg_store_errmsg(s));
        lg_store_close(s);
        return rc;
    }
    int64_t now = lg_gate_now_ms();
    int64_t *usage = calloc(n + 1, sizeof(int64_t));
    for (size_t i = 0; i < n; ++i)
        usage[i] = lg_store_key_cost_since(s, list[i]->id, lg_period_start_ms(list[i]->reset_period, now));
    atomic_store_explicit(&key_count, lg_keytable_load(keys, list, usage, n, now), memory_order_relaxed);
    free(usage);
    lg_store_key_list_free(list, n);
    lg_store_close(s);
    return 0;
}

/* per-process secret for the gateway's calls to itself (built-in MCP tools); never logged */
static char internal_token[65];
static _Atomic int internal_token_set;

static void make_internal_token(void)
{
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n <= 0)
            return; /* no token: internal calls are refused */
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); ++i) {
        internal_token[2 * i] = hex[raw[i] >> 4];
        internal_token[2 * i + 1] = hex[raw[i] & 15];
    }
    internal_token[64] = '\0';
    atomic_store(&internal_token_set, 1);
}

const char *lg_gate_internal_token(void)
{
    return atomic_load(&internal_token_set) ? internal_token : NULL;
}

int lg_gate_init(const lg_config_t *conf, char *err, size_t errlen)
{
    if (!atomic_load(&internal_token_set))
        make_internal_token();
    store_path = conf->store_path != NULL ? lg_strdup(conf->store_path) : NULL;
    keys = lg_keytable_create();
    lg_gate_apply_config(conf);
    int rc = lg_gate_sync_keys(err, errlen);
    if (rc != 0)
        return rc;
    if (store_path == NULL) {
        LG_LOG(LG_LOG_WARN, "auth", "\"store\": null: no API keys and no usage ledger; running OPEN on loopback");
        return 0;
    }
    ledger = lg_ledger_start(store_path, conf->ledger_queue_capacity, conf->ledger_flush_interval_ms, err, errlen);
    if (ledger == NULL)
        return LG_EINTERNAL;
    size_t n = lg_keytable_count(keys);
    if (lg_gate_open())
        LG_LOG(LG_LOG_WARN, "auth",
               "no API keys exist and every listener is loopback: running OPEN (create one with `llmgate "
               "keys create --name NAME`)");
    else {
        char shown[512];
        lg_store_target_display(store_path, shown, sizeof(shown));
        LG_LOG(LG_LOG_INFO, "auth", "API keys required (%zu keys loaded from %s)", n, shown);
    }
    return 0;
}

void lg_gate_shutdown(void)
{
    if (ledger != NULL) {
        lg_ledger_stop(ledger); /* drains the queue: every accepted row is committed before exit */
        ledger = NULL;
    }
}

lg_keytable_t *lg_gate_keys(void)
{
    return keys;
}

lg_ledger_t *lg_gate_ledger(void)
{
    return ledger;
}

const char *lg_gate_store_path(void)
{
    return store_path;
}

int lg_gate_open(void)
{
    int mode = atomic_load_explicit(&require_mode, memory_order_relaxed);
    if (mode == 1)
        return 0;
    if (mode == 0)
        return 1; /* the config loader only allows this with loopback listeners */
    return !atomic_load_explicit(&non_loopback, memory_order_relaxed) &&
           atomic_load_explicit(&key_count, memory_order_relaxed) == 0;
}

/** The presented secret, from `Authorization: Bearer` or `x-api-key`; NULL if none. */
static const char *presented_secret(h2o_req_t *req, size_t *len)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len > 7 && strncasecmp(v.base, "bearer ", 7) == 0) {
            const char *p = v.base + 7;
            size_t n = v.len - 7;
            while (n > 0 && *p == ' ')
                ++p, --n;
            *len = n;
            return p;
        }
        *len = 0;
        return v.base; /* present but not a bearer token: reported as malformed */
    }
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), -1);
    if (i >= 0) {
        *len = req->headers.entries[i].value.len;
        return req->headers.entries[i].value.base;
    }
    return NULL;
}

/* x-llmgate-internal: <token> (constant-time compare) + x-llmgate-key-id: <id> ("" or absent = anonymous) */
static int internal_call(h2o_req_t *req, lg_key_entry_t **key, const char **msg, int *handled)
{
    *handled = 0;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-llmgate-internal"), -1);
    if (i < 0)
        return 0;
    *handled = 1;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (!atomic_load(&internal_token_set) || v.len != 64 || CRYPTO_memcmp(v.base, internal_token, 64) != 0) {
        *msg = "invalid internal credentials";
        return LG_EAUTH;
    }
    ssize_t j = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-llmgate-key-id"), -1);
    h2o_iovec_t id = j >= 0 ? req->headers.entries[j].value : h2o_iovec_init("", 0);
    if (id.len == 0)
        return 0; /* the caller was anonymous: only possible while the gate was open */
    char buf[LG_KEY_ID_LEN + 1];
    if (id.len > LG_KEY_ID_LEN) {
        *msg = "invalid API key";
        return LG_EAUTH;
    }
    memcpy(buf, id.base, id.len);
    buf[id.len] = '\0';
    lg_key_entry_t *e = keys != NULL ? lg_keytable_get_by_id(keys, buf) : NULL;
    if (e == NULL) {
        *msg = "invalid API key";
        return LG_EAUTH;
    }
    *key = e;
    return 0;
}

int lg_gate_authenticate(h2o_req_t *req, lg_key_entry_t **key, const char **msg)
{
    int handled;
    *key = NULL;
    int irc = internal_call(req, key, msg, &handled);
    if (handled)
        return irc;
    size_t len = 0;
    const char *secret = presented_secret(req, &len);
    *key = NULL;
    if (secret == NULL) {
        if (lg_gate_open())
            return 0;
        *msg = "missing API key: send Authorization: Bearer <key>";
        return LG_EAUTH;
    }
    if (len == 0 || len > 512) {
        *msg = "malformed Authorization header: expected Bearer <key>";
        return LG_EAUTH;
    }
    lg_key_entry_t *e = lg_keytable_lookup(keys, secret, len);
    if (e == NULL) {
        if (lg_gate_open())
            return 0; /* an open gateway ignores keys it does not know (clients often send a placeholder) */
        *msg = "invalid API key";
        return LG_EAUTH;
    }
    *key = e;
    return 0;
}

const char *lg_gate_key_refusal(const lg_key_entry_t *key)
{
    const lg_key_record_t *k = lg_key_entry_record(key);
    if (k->disabled)
        return "API key disabled";
    if (k->expires_at != 0 && k->expires_at * 1000 <= lg_gate_now_ms())
        return "API key expired";
    return NULL;
}

int lg_gate_is_admin(h2o_req_t *req)
{
    if (!atomic_load(&admin_set))
        return 0;
    size_t len = 0;
    const char *secret = presented_secret(req, &len);
    if (secret == NULL || len == 0 || len > 512)
        return 0;
    uint8_t h[32];
    lg_key_hash(secret, len, h);
    return CRYPTO_memcmp(h, admin_hash, sizeof(h)) == 0;
}
