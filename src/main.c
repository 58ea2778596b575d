/* SPDX-License-Identifier: MIT */
/*
 * llmgate entry point: command line, config load (file or embedded default),
 * server start, signals (SIGTERM/SIGINT graceful shutdown, SIGHUP reload).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "auth/gate.h"
#include "cli/cli.h"
#include "core/accesslog.h"
#include "core/buildinfo.h"
#include "core/config.h"
#include "core/log.h"
#include "cluster/cluster.h"
#include "core/overrides.h"
#include "core/reload_status.h"
#include "store/store.h"
#include "http/server.h"
#include "llmgate/version.h"
#include "mcp/auth.h"
#include "mcp/builtin.h"
#include "mcp/federation.h"
#include "mcp/oauth_server.h"
#include "mcp/fixtures.h"
#include "mcp/stdio_mode.h"
#include "metrics/metrics.h"
#include "runtime/snapshot.h"
#include "upstream/client.h"

static const char *config_path;
static uint64_t generation = 1;
static uint32_t shutdown_timeout_ms;
static uv_signal_t sig_term, sig_int, sig_hup;

static void usage(FILE *out)
{
    fprintf(out, "usage: llmgate [--config FILE]      serve (no FILE: embedded default, mock provider on 127.0.0.1:4000)\n"
                 "       llmgate --check-config FILE  validate FILE and exit (0 valid, 1 invalid)\n"
                 "  --listen HOST:PORT   replace the listeners (repeatable; [::1]:4000, :4000 = all interfaces)\n"
                 "  --workers N          worker threads (0 = one per CPU)\n"
                 "  --log-level LEVEL    err | warn | info | debug\n"
                 "  environment: LLMGATE_LISTEN (comma-separated), LLMGATE_WORKERS, LLMGATE_LOG_LEVEL; flags win\n"
                 "       llmgate mcp --stdio [--config FILE]  serve the MCP tools over stdin/stdout\n"
                 "       llmgate --version | --help\n"
                 "signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config and policies (overrides kept)\n");
}

static lg_snapshot_t *load_snapshot(const char *path, char *err, size_t errlen)
{
    lg_config_t *conf = lg_config_load(path, err, errlen);
    if (conf == NULL)
        return NULL;
    return lg_snapshot_create(conf, generation, err, errlen);
}

static void apply_process_settings(const lg_config_t *conf)
{
    int level = lg_log_level_parse(conf->log_level);
    if (level >= 0)
        lg_log_level = level;
    if (lg_accesslog_open(conf->access_log) != 0)
        LG_LOG(LG_LOG_ERR, "main", "cannot open access log %s", conf->access_log);
    shutdown_timeout_ms = conf->shutdown_timeout_ms;
}

static void on_shutdown_signal(uv_signal_t *s, int signum)
{
    LG_LOG(LG_LOG_INFO, "main", "%s: draining %u in-flight requests (deadline %u ms)", signum == SIGINT ? "SIGINT" : "SIGTERM",
           lg_server_in_flight(), shutdown_timeout_ms);
    unsigned cut = lg_server_shutdown(shutdown_timeout_ms);
    if (cut != 0)
        LG_LOG(LG_LOG_WARN, "main", "shutdown deadline reached; %u requests were cut", cut);
    lg_mcp_federation_shutdown(); /* stops upstream MCP servers (stdin close, SIGTERM, SIGKILL) */
    lg_cluster_shutdown();        /* after the workers: nothing uses Redis any more */
    lg_gate_shutdown();           /* commits every queued ledger row */
    lg_mcp_oauth_shutdown();      /* commits queued OAuth token/client changes */
    LG_LOG(LG_LOG_INFO, "main", "stopped");
    uv_signal_stop(&sig_term);
    uv_signal_stop(&sig_int);
    uv_signal_stop(&sig_hup);
    uv_stop(s->loop);
}

static void on_reload_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    char err[2048];
    uint64_t covers = lg_reload_begin(); /* the admin API's reload requests this reload answers */
    ++generation;
    lg_snapshot_t *snap = load_snapshot(config_path, err, sizeof(err));
    if (snap == NULL) {
        LG_LOG(LG_LOG_ERR, "main", "SIGHUP: new config rejected, keeping the current one: %s", err);
        lg_reload_finish(covers, 0, 0, err);
        return;
    }
    apply_process_settings(snap->conf);
    lg_gate_apply_config(snap->conf);
    lg_cluster_check_reload(snap->conf);
    int keys_rc = lg_gate_sync_keys(err, sizeof(err));
    if (keys_rc != 0)
        LG_LOG(LG_LOG_ERR, "main", "SIGHUP: keys not re-synced from the store: %s", err);
    LG_LOG(LG_LOG_INFO, "main", "SIGHUP: config generation %llu loaded from %s", (unsigned long long)generation,
           config_path != NULL ? config_path : "(embedded default)");
    lg_mcp_federation_apply(snap->conf); /* unchanged upstream servers keep running */
    lg_mcp_auth_configure(snap->conf);
    if (lg_mcp_oauth_init(snap->conf, err, sizeof(err)) != 0) /* OAuth switched on by this reload */
        LG_LOG(LG_LOG_ERR, "main", "SIGHUP: OAuth tables not opened: %s", err);
    lg_server_publish(snap);
    lg_reload_finish(covers, 1, generation, keys_rc != 0 ? err : NULL);
}

/* --check-config: which backends this config uses (no connection is made) */
static void print_backends(const lg_config_t *conf)
{
    const char *target = conf->store_path;
    if (target == NULL)
        printf("store: none (no API keys, no ledger)\n");
    else if (lg_store_target_is_url(target))
        printf("store: postgresql (keys and ledger shared by every replica using this URL)\n");
    else
        printf("store: sqlite %s\n", target);
    if (conf->cluster.redis_url != NULL)
        printf("cluster: redis, name \"%s\" (rate limits, credit, key changes, endpoint health shared; on redis down: "
               "rate_limits %s, credit %s)\n",
               conf->cluster.name, conf->cluster.rate_limits_fail_closed ? "closed" : "open",
               conf->cluster.credit_fail_closed ? "closed" : "open");
    else
        printf("cluster: none (single node: limits and health are per process)\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "keys") == 0 || strcmp(argv[1], "usage") == 0))
        return lg_cli_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "mcp") == 0)
        return lg_mcp_stdio_main(argc, argv); /* llmgate mcp --stdio [--config FILE] */
    const char *check_path = NULL;
    lg_overrides_t ov = {0};
    for (int i = 1; i < argc; ++i) {
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0 && i + 1 < argc) {
            check_path = argv[++i];
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc && ov.num_listen < LG_OVERRIDES_MAX_LISTEN) {
            ov.listen[ov.num_listen++] = argv[++i];
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            ov.workers = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            ov.log_level = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0) {
            lg_buildinfo_print(stdout);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "llmgate: unknown argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    char err[4096];
    json_t *patch = lg_overrides_patch(&ov, err, sizeof(err));
    if (patch == NULL) {
        fprintf(stderr, "llmgate: %s\n", err);
        return 2;
    }
    json_t *early_level = json_object_get(patch, "log_level");
    if (early_level != NULL) /* before the config load logs anything (plugin loading) */
        lg_log_level = lg_log_level_parse(json_string_value(early_level));
    lg_config_set_overrides(patch);

    if (check_path != NULL) {
        lg_config_t *conf = lg_config_load(check_path, err, sizeof(err));
        if (conf == NULL) {
            fprintf(stderr, "%s: %s\n", check_path, err);
            return 1;
        }
        /* also load plugins and compile policies, as a start would */
        lg_snapshot_t *snap = lg_snapshot_create(conf, 1, err, sizeof(err));
        if (snap == NULL) {
            fprintf(stderr, "%s: %s\n", check_path, err);
            return 1;
        }
        printf("%s: ok (%zu providers, %zu models, %zu listeners)\n", check_path, snap->conf->num_providers, snap->conf->num_models,
               snap->conf->num_listeners);
        print_backends(snap->conf);
        lg_snapshot_unref(snap);
        return 0;
    }

    lg_upclient_global_init();
    lg_config_t *conf = lg_config_load(config_path, err, sizeof(err));
    /* one metrics shard per worker; they must exist before the snapshot registers its label names. The worker count
     * is fixed for the life of the process (a reload cannot change it). */
    if (conf != NULL)
        lg_metrics_init(conf->workers);
    lg_snapshot_t *snap = conf != NULL ? lg_snapshot_create(conf, generation, err, sizeof(err)) : NULL;
    if (snap == NULL) {
        fprintf(stderr, "llmgate: %s: %s\n", config_path != NULL ? config_path : "embedded default config", err);
        return 1;
    }
    apply_process_settings(snap->conf);
    if (lg_gate_init(snap->conf, err, sizeof(err)) != 0) {
        char shown[512];
        lg_store_target_display(snap->conf->store_path, shown, sizeof(shown));
        fprintf(stderr, "llmgate: store %s: %s\n", shown, err);
        return 1;
    }
    if (lg_cluster_start(snap->conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmgate: %s\n", err);
        return 1;
    }
    if (lg_mcp_oauth_init(snap->conf, err, sizeof(err)) != 0) { /* mcp.auth.mode "oauth": clients and tokens */
        fprintf(stderr, "llmgate: %s\n", err);
        return 1;
    }
    lg_mcp_auth_install(); /* /mcp and /api/mcp: same keys, allow-lists and limits as /v1 */
    lg_mcp_auth_configure(snap->conf);
    lg_mcp_builtin_register(); /* llmgate__chat, llmgate__list_models on /mcp */
    /* upstream MCP servers start before the listeners so their tools are there for the first client */
    lg_mcp_federation_register();
    lg_mcp_federation_register_metrics(); /* each module registers its own /metrics collector */
    lg_mcp_fixtures_register();           /* last: the fixtures join /mcp only beside prefixed providers */
    lg_mcp_federation_apply(snap->conf);
    if (lg_server_start(snap, err, sizeof(err)) != 0) {
        fprintf(stderr, "llmgate: %s\n", err);
        return 1;
    }
    if (config_path == NULL)
        LG_LOG(LG_LOG_INFO, "main", "no --config: serving the embedded default (mock/echo, mock/lorem, mock/embed%s)",
               getenv("OPENAI_API_KEY") != NULL ? ", OpenAI models" : "");
    lg_snapshot_unref(snap);

    uv_loop_t *loop = uv_default_loop();
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_init(loop, &sig_hup);
    uv_signal_start(&sig_term, on_shutdown_signal, SIGTERM);
    uv_signal_start(&sig_int, on_shutdown_signal, SIGINT);
    uv_signal_start(&sig_hup, on_reload_signal, SIGHUP);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
