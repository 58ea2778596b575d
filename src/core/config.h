/* SPDX-License-Identifier: MIT */
/*
 * The validated, immutable gateway configuration (one "snapshot"). Built from
 * one JSON file or the embedded default; never modified after lg_config_load
 * returns. Reload builds a new snapshot; see src/runtime/snapshot.h.
 */
#ifndef LG_CORE_CONFIG_H
#define LG_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/** Prices in pico-USD (1e-12 USD) per token (per request for `request`). Integer so cost math never drifts. */
typedef struct lg_price {
    int64_t prompt;
    int64_t completion;
    int64_t cache_read;
    int64_t cache_write;    /* 5-minute cache writes */
    int64_t cache_write_1h; /* 1-hour cache writes; 0 = use cache_write */
    int64_t reasoning;      /* internal reasoning tokens; 0 = price as completion */
    int64_t request;        /* flat per request */
} lg_price_t;

typedef struct lg_listener_conf {
    char *address; /* "127.0.0.1", "::1", "0.0.0.0" */
    uint16_t port;
    char *tls_cert; /* PEM paths, both NULL for cleartext */
    char *tls_key;
} lg_listener_conf_t;

typedef struct lg_provider_conf {
    char *name;                     /* slug used in routing (provider.order/only/ignore) and responses */
    char *plugin;                   /* plugin name ("openai", "mock") or a path to a .so */
    char *base_url;                 /* http(s) URL without trailing slash; may be NULL for local plugins */
    char *api_key;                  /* resolved secret (from api_key or api_key_env), NULL if none */
    char *api_key_env;              /* name of the env var, kept for messages */
    json_t *headers;                /* object of extra upstream headers, or NULL; owned */
    json_t *options;                /* plugin-specific options object, or NULL; owned */
    uint32_t connect_timeout_ms;    /* default 5000 */
    uint32_t first_byte_timeout_ms; /* default 60000 */
    uint32_t idle_timeout_ms;       /* between chunks, default 30000 */
    uint32_t total_timeout_ms;      /* default 600000 */
    uint32_t max_concurrent;        /* 0 = unlimited */
    uint32_t queue_size;            /* requests allowed to wait for a slot, default 64 */
    uint32_t queue_timeout_ms;      /* how long one may wait, default 5000 */
    int required;                   /* fail start-up if the plugin cannot be loaded */
    int enabled;                    /* 0 when created from env defaults without a key */
} lg_provider_conf_t;

typedef struct lg_endpoint_conf {
    size_t provider_index; /* into lg_config_t.providers */
    char *upstream_model;  /* model name sent upstream */
    lg_price_t price;
    uint32_t context_length;        /* 0 = inherit the model's */
    uint32_t max_completion_tokens; /* 0 = unknown */
    char **supported_params;        /* NULL-terminated list; NULL = inherit the model's list */
    size_t num_supported_params;
    double weight; /* default 1.0 */
    char *tier;    /* "standard" (default), "priority", "flex" */
    /* data policy and serving facts (OpenRouter's hard filters, provider.data_collection / zdr /
     * enforce_distillable_text / quantizations): what the operator declares about this endpoint */
    int data_collection; /* 1 = the provider may store or train on prompts ("allow", the default), 0 = "deny" */
    int zdr;             /* 1 = zero data retention; default 0 */
    int distillable;     /* 1 = the model's author allows distillation of outputs; default 0 */
    char *quantization;  /* one of OpenRouter's Quantization enum, NULL = not stated ("unknown") */
} lg_endpoint_conf_t;

typedef struct lg_model_conf {
    char *id;          /* public id, e.g. "mock/echo" */
    char *name;        /* display name */
    char *description; /* may be NULL */
    int64_t created;   /* unix seconds */
    uint32_t context_length;
    char *modality;          /* "text->text" */
    char **input_modalities; /* NULL-terminated */
    char **output_modalities;
    char *tokenizer;         /* "GPT", "Claude", ... */
    char **supported_params; /* NULL-terminated, default list when an endpoint has none */
    size_t num_supported_params;
    char *policy;           /* policy name, NULL = routing.default_policy */
    int midstream_failover; /* a stream that breaks after its first token may continue on this model's endpoints */
    lg_endpoint_conf_t *endpoints;
    size_t num_endpoints;
    /* "auto": {"models": [...]}: a router model without endpoints of its own (OpenRouter's openrouter/auto). Its
     * candidates are the listed models' endpoints (src/router/router.c) and its policy (default "auto",
     * policies/auto.lua) picks among them. */
    char **auto_models; /* NULL-terminated ids; NULL = an ordinary model */
    size_t num_auto_models;
    uint32_t *auto_model_index; /* [num_auto_models] indices into conf->models, resolved after all models parse */
    /* response cache ("cache" member): enabled -1 = only on request (X-OpenRouter-Cache), 0 = never, 1 = always unless
     * the request says false; ttl_s 0 = 300 s unless the request says; shared = one scope for every key */
    int cache_enabled;
    uint32_t cache_ttl_s;
    int cache_shared;
} lg_model_conf_t;

typedef struct lg_policy_conf {
    char *name;       /* "default", "price", ... */
    char *path;       /* resolved against the config file's folder; NULL = shipped policy, located by the policy VM */
    json_t *settings; /* exposed read-only to the policy as lg.conf; may be NULL */
} lg_policy_conf_t;

typedef enum { LG_KEEPALIVE_COMMENT = 0, LG_KEEPALIVE_OFF = 1 } lg_keepalive_mode_t;

/** One federated upstream MCP server ("mcp.servers.<name>"; mcp/federation.h). Exactly one of command / url is set. */
typedef struct lg_mcp_server_conf {
    char *name;          /* slug [a-z0-9_-]{1,64} */
    char *command;       /* stdio upstream: executable (PATH lookup), NULL for HTTP */
    char **args;         /* NULL-terminated (empty list when none) */
    char **env;          /* NULL-terminated "NAME=value" entries added to the gateway's environment */
    char *cwd;           /* resolved against base_dir; NULL = the gateway's cwd */
    char *url;           /* Streamable HTTP upstream, NULL for stdio */
    json_t *headers;     /* object of headers sent upstream (the upstream's own credentials), or NULL; owned */
    char *prefix;        /* tool/prompt name prefix ("<prefix>__<tool>"); NULL = unprefixed; default = name */
    uint32_t timeout_ms; /* per upstream request, default 30000 */
    int enabled;         /* default 1 */
    char *rest_path;     /* REST facade mount "/api/<name>": POST <rest_path>/<tool> calls this upstream's tool; NULL = none */
} lg_mcp_server_conf_t;

/** A virtual server "/mcp/<name>" exposing a curated subset of the federated tools ("mcp.virtual_servers.<name>"). */
typedef struct lg_mcp_vserver_conf {
    char *name;   /* slug [a-z0-9_-]{1,64} */
    char **tools; /* NULL-terminated patterns on the exposed (prefixed) names; a trailing '*' matches any rest */
    size_t num_tools;
} lg_mcp_vserver_conf_t;

/** OAuth for MCP clients ("mcp.auth"; mcp/README.md §OAuth): llmgate as authorization + resource server for /mcp. */
typedef struct lg_mcp_oauth_conf {
    int enabled;                      /* mode "oauth" (default "keys": API keys only, discovery paths 404) */
    char **listeners;                 /* NULL-terminated "address:port" of the listeners that serve OAuth; NULL = all */
    char *issuer;                     /* public base URL "https://host[:port]" (http only for loopback hosts) */
    uint32_t access_token_ttl_s;      /* default 3600 */
    uint32_t refresh_token_ttl_s;     /* default 2592000 (30 days) */
    uint32_t code_ttl_s;              /* authorization code lifetime, 1..60, default 60 */
    uint32_t consent_ttl_s;           /* how long the consent page stays valid, default 600 */
    uint32_t max_clients;             /* dynamically registered clients kept, default 10000 */
    int dynamic_registration;         /* RFC 7591 endpoint, default 1 */
    int client_id_metadata_documents; /* CIMD (https client_id URLs fetched by the gateway), default 1 */
    int admin_approval;               /* the consent page also accepts the admin key + a key id, default 1 */
    int allow_loopback_metadata_urls; /* tests only: http://127.0.0.1 client_id URLs and loopback fetches, default 0 */
} lg_mcp_oauth_conf_t;

/** MCP tool gateway at /mcp ("mcp" section; mcp/README.md). */
typedef struct lg_mcp_conf {
    int enabled;                   /* serve /mcp at all, default 1 */
    char **allowed_origins;        /* NULL-terminated; "scheme://host[:port]" or "*"; loopback origins are always allowed on
                                      loopback listeners; a foreign Origin gets 403 */
    char **allowed_hosts;          /* NULL-terminated; "host" or "host:port" accepted in Host besides the loopback names on
                                      loopback listeners; when set, also enforced on other listeners */
    uint32_t session_ttl_s;        /* idle session lifetime, default 1800 */
    uint32_t max_message_bytes;    /* JSON-RPC message cap, default 4 MiB (413 above) */
    int conformance_fixtures;      /* serve the conformance fixture server at /mcp/conformance (and /mcp when nothing else is
                                      configured), default 0 */
    lg_mcp_server_conf_t *servers; /* federated upstreams, in config order */
    size_t num_servers;
    lg_mcp_vserver_conf_t *vservers; /* virtual servers */
    size_t num_vservers;
    char **tool_limit_patterns; /* NULL-terminated tool names or "prefix*" patterns ... */
    uint32_t *tool_limit_rpm;   /* ... and their calls per minute, shared by all callers (per-tool rate limits) */
    uint32_t circuit_failures;  /* consecutive upstream failures that open its circuit, default 5 */
    uint32_t circuit_open_ms;   /* how long an open circuit fails calls fast before a probe, default 30000 */
    lg_mcp_oauth_conf_t oauth;  /* "mcp.auth" */
    char *sampling_model;       /* catalog model that answers an upstream's sampling/createMessage through the router (with
                                   the caller's key) when the client cannot; NULL = such requests get -32601 */
} lg_mcp_conf_t;

/** Scale-out: the "cluster" section (see src/cluster/README.md). redis_url NULL = single node, nothing shared. */
typedef struct lg_cluster_conf {
    char *redis_url;             /* redis://[[user]:password@]host[:port][/db], validated by lg_redis_url_parse */
    char *name;                  /* namespace of every Redis key and channel ("llmgate:<name>:..."), default "llmgate" */
    uint32_t timeout_ms;         /* a Redis command not answered within this counts as Redis down, default 100 */
    uint32_t connect_timeout_ms; /* per connect attempt, default 1000 */
    int rate_limits_fail_closed; /* on_redis_down.rate_limits: 0 "open" (local buckets, default), 1 "closed" (503) */
    int credit_fail_closed;      /* on_redis_down.credit: 0 "open" (local counter, default), 1 "closed" (503) */
    int share_health;            /* health: share endpoint cooldowns and stats (default true) */
} lg_cluster_conf_t;

typedef struct lg_config {
    char *source_path; /* file it came from, NULL for the embedded default */
    char *base_dir;    /* folder relative paths resolve against */

    lg_listener_conf_t *listeners;
    size_t num_listeners;
    unsigned workers; /* 0 in the file = CPU count; resolved here */

    size_t max_body_bytes;        /* request body limit, default 8 MiB */
    size_t max_upstream_bytes;    /* upstream response body cap, default 32 MiB */
    uint32_t shutdown_timeout_ms; /* graceful shutdown deadline, default 15000 */
    char *access_log;             /* path, "stderr", or NULL (off) */
    char *log_level;              /* "err" | "warn" | "info" | "debug" */
    char *plugin_dir;             /* where plugin names resolve; NULL = built-in search path */

    /* routing */
    char *default_policy;               /* policy name, default "default" */
    uint32_t max_attempts;              /* cap on attempts per request, default 8 */
    uint32_t keepalive_interval_ms;     /* ": PROCESSING" comment period while waiting, default 2000 */
    lg_keepalive_mode_t keepalive;      /* comment (default) or off */
    uint32_t policy_instruction_budget; /* Lua count-hook budget per call, default 1000000 */
    uint32_t policy_memory_mb;          /* per worker VM, default 64 */
    uint32_t unhealthy_after_failures;  /* consecutive failures that mark an endpoint unhealthy, default 3 */
    uint32_t unhealthy_cooldown_ms;     /* probe again after, default 30000 */
    char **expose_headers;              /* lower-case request header names visible to policies; NULL-terminated */
    uint32_t session_ttl_s;             /* sticky-session binding lifetime, default 3600; 0 = stickiness off */
    uint32_t session_max_entries;       /* bound on the shared session table, default 65536 */
    uint32_t session_max_bytes;         /* and on its memory, default 32 MiB */

    lg_policy_conf_t *policies;
    size_t num_policies;

    lg_provider_conf_t *providers;
    size_t num_providers;

    lg_model_conf_t *models;
    size_t num_models;

    /* store and ledger ("store" section) */
    char *store_path;                  /* store target: a SQLite file (store.path; relative paths resolve against
                                          base_dir; default "llmgate.db") or a postgresql:// URL (store.url) */
    uint32_t ledger_flush_interval_ms; /* longest a ledger row waits before its commit, 1..1000, default 200 */
    uint32_t ledger_queue_capacity;    /* ledger rows queued in memory before drops, default 65536 */

    /* authentication ("auth" section) */
    char *admin_key;     /* resolved admin secret (auth.admin_key or the auth.admin_key_env variable); NULL = admin API off */
    char *admin_key_env; /* variable name when the key comes from the environment (default LLMGATE_ADMIN_KEY), for messages */
    int require_keys;    /* -1 auto: open only while no keys exist and every listener is loopback; 0 never; 1 always */
    uint32_t dashboard_session_ttl_s; /* auth.dashboard_session_ttl_s: lifetime of a dashboard sign-in, default 28800 (8 h) */

    lg_mcp_conf_t mcp; /* "mcp" section */

    lg_cluster_conf_t cluster; /* "cluster" section: shared state in Redis (scale-out) */
    uint32_t cache_max_bytes;  /* "cache.max_bytes": the response cache's memory cap, default 64 MiB */
} lg_config_t;

/**
 * Load and validate a config. path == NULL loads the embedded default. api_key_env variables are read with getenv
 * here: a provider whose variable is unset or empty gets enabled = 0 (not an error), so the embedded default enables
 * exactly the providers with OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or OPENROUTER_API_KEY set. Files are
 * capped at 16 MiB; relative paths inside resolve against the file's folder (base_dir). Returns a new config (free
 * with lg_config_free) or NULL with a message in err such as
 * "providers[1].base_url: expected http(s) URL". Unknown keys are errors. Several errors are joined with "; " up to the
 * size of err.
 */
lg_config_t *lg_config_load(const char *path, char *err, size_t errlen);
/** Same, from a JSON text; base_dir resolves relative paths (may be NULL = cwd). */
lg_config_t *lg_config_parse(const char *json_text, size_t len, const char *base_dir, char *err, size_t errlen);
void lg_config_free(lg_config_t *conf);

/** Lookups; NULL when absent. Linear or hashed: called at snapshot build time, not per request. */
const lg_model_conf_t *lg_config_find_model(const lg_config_t *conf, const char *id);
const lg_provider_conf_t *lg_config_find_provider(const lg_config_t *conf, const char *name);
const lg_policy_conf_t *lg_config_find_policy(const lg_config_t *conf, const char *name);

/** 1 when every listener binds a loopback address (127.0.0.0/8, ::1), else 0. */
int lg_config_listeners_loopback(const lg_config_t *conf);

/** The embedded default config text (mock provider demo models + env-enabled providers). */
extern const char lg_config_embedded_default[];
/** OpenRouter's Quantization enum, NULL-terminated (endpoint "quantization", provider.quantizations). */
extern const char *const lg_quantizations[];

/** Parse a decimal USD amount ("0.000003", 3e-6 as a JSON real) into pico-USD. Returns 0 on success, -1 if invalid. */
int lg_price_parse(const json_t *value, int64_t *out_pico);

/**
 * Top-level keys (a JSON object; takes ownership, NULL clears) that replace the file's or the embedded default's
 * before validation, for every later lg_config_load (start, --check-config, SIGHUP). Main thread, before workers.
 */
void lg_config_set_overrides(json_t *patch);

#endif
