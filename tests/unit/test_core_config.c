/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/config.c: the embedded default and the shipped
 * example load, every validation rule reports its JSON path with the exact
 * wording operators see, prices parse exactly to pico-USD, and relative paths
 * resolve against the config file's folder. Run under ASan to catch leaks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"

/* A minimal valid config; tests splice one broken piece into copies of it. */
#define MIN_PROVIDERS "\"providers\": [{\"name\": \"p\", \"plugin\": \"mock\"}]"
#define MIN_MODELS "\"models\": {\"m/x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}"

static char tmpdir[1024]; /* short enough that every path built from it fits PATH_MAX */

static lg_config_t *parse(const char *json, char *err, size_t errlen)
{
    return lg_config_parse(json, strlen(json), tmpdir, err, errlen);
}

/* Fails the test (showing the actual message) unless json is rejected with needle in the message. */
static void assert_config_error(const char *json, const char *needle)
{
    char err[4096];
    lg_config_t *conf = parse(json, err, sizeof(err));
    if (conf != NULL || strstr(err, needle) == NULL) {
        print_error("config: %s\nerror:  %s\nwanted: %s\n", json, conf != NULL ? "(accepted)" : err, needle);
        lg_config_free(conf);
        fail();
    }
}

static lg_config_t *assert_config_ok(const char *json)
{
    char err[4096] = "";
    lg_config_t *conf = parse(json, err, sizeof(err));
    if (conf == NULL) {
        print_error("config: %s\nerror:  %s\n", json, err);
        fail();
    }
    return conf;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int64_t price_of(const char *json_value)
{
    json_error_t jerr;
    int64_t pico = -42;
    json_t *v = json_loads(json_value, JSON_DECODE_ANY, &jerr);
    assert_non_null(v);
    if (lg_price_parse(v, &pico) != 0)
        pico = -1;
    json_decref(v);
    return pico;
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/lg_config_test_XXXXXX", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    /* the loader stores canonical folders; compare against the same spelling */
    char real[PATH_MAX];
    if (realpath(tmpdir, real) == NULL)
        return -1;
    if (strlen(real) >= sizeof(tmpdir))
        return -1;
    memcpy(tmpdir, real, strlen(real) + 1);
    return 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- loading ---- */

static void test_config_embedded_default_loads(void **state)
{
    char err[1024] = "";
    const lg_model_conf_t *m;
    const lg_provider_conf_t *p;
    (void)state;

    unsetenv("OPENAI_API_KEY");
    setenv("ANTHROPIC_API_KEY", "sk-ant-test", 1);
    lg_config_t *conf = lg_config_load(NULL, err, sizeof(err));
    assert_non_null(conf);
    assert_string_equal(err, "");
    assert_null(conf->source_path);
    assert_non_null(conf->base_dir);

    assert_int_equal(conf->num_listeners, 1);
    assert_string_equal(conf->listeners[0].address, "127.0.0.1");
    assert_int_equal(conf->listeners[0].port, 4000);
    assert_null(conf->listeners[0].tls_cert);
    assert_true(conf->workers >= 1 && conf->workers <= 256);
    assert_string_equal(conf->access_log, "stderr");
    assert_string_equal(conf->log_level, "info");
    assert_int_equal(conf->max_body_bytes, 8 << 20);
    assert_int_equal(conf->max_upstream_bytes, 32 << 20);
    assert_int_equal(conf->shutdown_timeout_ms, 15000);
    assert_string_equal(conf->default_policy, "default");
    assert_int_equal(conf->max_attempts, 8);
    assert_int_equal(conf->keepalive, LG_KEEPALIVE_COMMENT);
    assert_non_null(conf->expose_headers);

    /* the default policy is shipped: present with path NULL */
    const lg_policy_conf_t *pol = lg_config_find_policy(conf, "default");
    assert_non_null(pol);
    assert_null(pol->path);

    assert_int_equal(conf->num_providers, 5);
    p = lg_config_find_provider(conf, "mock");
    assert_non_null(p);
    assert_true(p->enabled);
    assert_null(p->base_url);
    assert_int_equal(json_integer_value(json_object_get(p->options, "chunk_words")), 1);
    p = lg_config_find_provider(conf, "openai");
    assert_non_null(p);
    assert_false(p->enabled);
    assert_null(p->api_key);
    assert_string_equal(p->api_key_env, "OPENAI_API_KEY");
    assert_string_equal(p->base_url, "https://api.openai.com/v1");
    p = lg_config_find_provider(conf, "anthropic");
    assert_true(p->enabled);
    assert_string_equal(p->api_key, "sk-ant-test");
    assert_non_null(lg_config_find_provider(conf, "openrouter"));
    assert_non_null(lg_config_find_provider(conf, "gemini"));
    assert_null(lg_config_find_provider(conf, "nope"));

    m = lg_config_find_model(conf, "mock/echo");
    assert_non_null(m);
    assert_int_equal(m->num_endpoints, 1);
    assert_string_equal(conf->providers[m->endpoints[0].provider_index].name, "mock");
    assert_string_equal(m->endpoints[0].upstream_model, "echo");
    assert_int_equal(m->endpoints[0].price.prompt, 1000000);
    assert_int_equal(m->endpoints[0].price.completion, 2000000);
    assert_string_equal(m->endpoints[0].tier, "standard");
    assert_true(m->endpoints[0].weight == 1.0);
    assert_non_null(lg_config_find_model(conf, "mock/lorem"));
    assert_non_null(lg_config_find_model(conf, "mock/embed"));
    assert_non_null(lg_config_find_model(conf, "openai/gpt-4o"));
    assert_non_null(lg_config_find_model(conf, "anthropic/claude-sonnet-4"));
    assert_non_null(lg_config_find_model(conf, "google/gemini-2.5-flash"));
    m = lg_config_find_model(conf, "openai/gpt-4o-mini");
    assert_non_null(m);
    assert_int_equal(m->num_endpoints, 2);
    assert_int_equal(m->endpoints[0].price.prompt, 150000);
    assert_int_equal(m->endpoints[0].price.completion, 600000);
    assert_string_equal(conf->providers[m->endpoints[1].provider_index].name, "openrouter");
    assert_string_equal(m->endpoints[1].upstream_model, "openai/gpt-4o-mini");
    assert_int_equal(m->context_length, 128000);
    assert_null(lg_config_find_model(conf, "nope/nope"));
    lg_config_free(conf);
    unsetenv("ANTHROPIC_API_KEY");
}

static void test_config_example_loads(void **state)
{
    char path[PATH_MAX], err[4096] = "";
    const char *src = getenv("LLMGATE_SOURCE_DIR");
    (void)state;

    if (src != NULL) {
        snprintf(path, sizeof(path), "%s/examples/llmgate.json", src);
    } else {
        /* built by hand outside ctest: locate the tree from this file's path */
        snprintf(path, sizeof(path), "%s", __FILE__);
        char *cut = strstr(path, "tests/unit/");
        assert_non_null(cut);
        strcpy(cut, "examples/llmgate.json");
    }
    lg_config_t *conf = lg_config_load(path, err, sizeof(err));
    if (conf == NULL)
        print_error("%s: %s\n", path, err);
    assert_non_null(conf);
    assert_string_equal(conf->source_path, path);
    assert_true(conf->num_providers >= 1);
    assert_true(conf->num_models >= 1);
    for (size_t i = 0; i < conf->num_models; ++i)
        for (size_t j = 0; j < conf->models[i].num_endpoints; ++j)
            assert_true(conf->models[i].endpoints[j].provider_index < conf->num_providers);
    lg_config_free(conf);
}

static void test_config_defaults_when_keys_absent(void **state)
{
    (void)state;
    lg_config_t *conf = assert_config_ok("{}");
    assert_int_equal(conf->num_listeners, 1);
    assert_string_equal(conf->listeners[0].address, "127.0.0.1");
    assert_int_equal(conf->listeners[0].port, 4000);
    assert_int_equal(conf->num_providers, 0);
    assert_int_equal(conf->num_models, 0);
    assert_int_equal(conf->keepalive_interval_ms, 2000);
    assert_int_equal(conf->policy_instruction_budget, 1000000);
    assert_int_equal(conf->policy_memory_mb, 64);
    assert_int_equal(conf->unhealthy_after_failures, 3);
    assert_int_equal(conf->unhealthy_cooldown_ms, 30000);
    assert_null(conf->expose_headers[0]);
    assert_null(conf->plugin_dir);
    assert_string_equal(conf->base_dir, tmpdir);
    lg_config_free(conf);

    conf = assert_config_ok("{" MIN_PROVIDERS ", " MIN_MODELS "}");
    const lg_provider_conf_t *p = &conf->providers[0];
    assert_int_equal(p->connect_timeout_ms, 5000);
    assert_int_equal(p->first_byte_timeout_ms, 60000);
    assert_int_equal(p->idle_timeout_ms, 30000);
    assert_int_equal(p->total_timeout_ms, 600000);
    assert_int_equal(p->max_concurrent, 0);
    assert_int_equal(p->queue_size, 64);
    assert_int_equal(p->queue_timeout_ms, 5000);
    assert_false(p->required);
    assert_true(p->enabled);
    const lg_model_conf_t *m = &conf->models[0];
    assert_string_equal(m->id, "m/x");
    assert_string_equal(m->name, "m/x");
    assert_string_equal(m->modality, "text->text");
    assert_string_equal(m->input_modalities[0], "text");
    assert_null(m->input_modalities[1]);
    assert_null(m->supported_params[0]);
    assert_null(m->endpoints[0].supported_params);
    lg_config_free(conf);
}

static void test_config_full_values(void **state)
{
    (void)state;
    lg_config_t *conf = assert_config_ok(
        "{\"listeners\": [{\"address\": \"::1\", \"port\": 8080}, {\"port\": 8081}], \"workers\": 3,"
        " \"limits\": {\"max_body_bytes\": 1024, \"max_upstream_bytes\": 2048}, \"shutdown_timeout_ms\": 10,"
        " \"access_log\": \"logs/access.log\", \"log_level\": \"debug\", \"plugin_dir\": \"plugins\","
        " \"routing\": {\"max_attempts\": 2, \"keepalive\": \"off\", \"expose_headers\": [\"X-Route-Hint\"]},"
        " \"policies\": {\"mine\": {\"path\": \"mine.lua\", \"settings\": {\"strict\": true}}, \"abs\": \"/x/abs.lua\"},"
        " \"providers\": [{\"name\": \"p\", \"plugin\": \"openai\", \"base_url\": \"https://h.example/v1///\","
        "   \"api_key\": \"sk-1\", \"headers\": {\"x-foo\": \"bar\"}, \"timeouts\": {\"connect_ms\": 7},"
        "   \"max_concurrent\": 4, \"queue\": {\"size\": 2, \"timeout_ms\": 9}, \"required\": true, \"enabled\": false}],"
        " \"models\": {\"m/x\": {\"name\": \"X\", \"description\": null, \"created\": 5, \"policy\": \"mine\","
        "   \"supported_parameters\": [\"temperature\"],"
        "   \"endpoints\": [{\"provider\": \"p\", \"model\": \"x\", \"context_length\": 1000, \"weight\": 2.5,"
        "     \"tier\": \"flex\", \"supported_parameters\": [], \"pricing\": {\"prompt\": 0.0000003, \"request\": 1}}]}}}");
    char want[PATH_MAX + 32];

    assert_int_equal(conf->num_listeners, 2);
    assert_string_equal(conf->listeners[0].address, "::1");
    assert_int_equal(conf->listeners[1].port, 8081);
    assert_int_equal(conf->workers, 3);
    assert_int_equal(conf->max_body_bytes, 1024);
    assert_int_equal(conf->max_upstream_bytes, 2048);
    assert_int_equal(conf->shutdown_timeout_ms, 10);
    snprintf(want, sizeof(want), "%s/logs/access.log", tmpdir);
    assert_string_equal(conf->access_log, want);
    assert_string_equal(conf->log_level, "debug");
    snprintf(want, sizeof(want), "%s/plugins", tmpdir);
    assert_string_equal(conf->plugin_dir, want);
    assert_int_equal(conf->max_attempts, 2);
    assert_int_equal(conf->keepalive, LG_KEEPALIVE_OFF);
    assert_string_equal(conf->expose_headers[0], "x-route-hint");

    const lg_policy_conf_t *pol = lg_config_find_policy(conf, "mine");
    snprintf(want, sizeof(want), "%s/mine.lua", tmpdir);
    assert_string_equal(pol->path, want);
    assert_true(json_is_true(json_object_get(pol->settings, "strict")));
    assert_string_equal(lg_config_find_policy(conf, "abs")->path, "/x/abs.lua");
    assert_null(lg_config_find_policy(conf, "abs")->settings);
    assert_null(lg_config_find_policy(conf, "price")); /* shipped ones appear only when referenced */
    assert_non_null(lg_config_find_policy(conf, "default"));

    const lg_provider_conf_t *p = &conf->providers[0];
    assert_string_equal(p->base_url, "https://h.example/v1");
    assert_string_equal(p->api_key, "sk-1");
    assert_string_equal(json_string_value(json_object_get(p->headers, "x-foo")), "bar");
    assert_int_equal(p->connect_timeout_ms, 7);
    assert_int_equal(p->first_byte_timeout_ms, 60000);
    assert_int_equal(p->max_concurrent, 4);
    assert_int_equal(p->queue_size, 2);
    assert_int_equal(p->queue_timeout_ms, 9);
    assert_true(p->required);
    assert_false(p->enabled);

    const lg_model_conf_t *m = &conf->models[0];
    assert_string_equal(m->name, "X");
    assert_null(m->description);
    assert_int_equal(m->created, 5);
    assert_string_equal(m->policy, "mine");
    assert_int_equal(m->context_length, 1000); /* inherited from the widest endpoint */
    assert_int_equal(m->num_supported_params, 1);
    assert_string_equal(m->supported_params[0], "temperature");
    const lg_endpoint_conf_t *ep = &m->endpoints[0];
    assert_int_equal(ep->price.prompt, 300000);
    assert_int_equal(ep->price.request, 1000000000000);
    assert_true(ep->weight == 2.5);
    assert_string_equal(ep->tier, "flex");
    assert_non_null(ep->supported_params);
    assert_null(ep->supported_params[0]);
    lg_config_free(conf);
}

static void test_config_load_file_resolves_relative_paths(void **state)
{
    char dir[2048], path[PATH_MAX], want[PATH_MAX], err[1024];
    (void)state;

    snprintf(dir, sizeof(dir), "%s/conf.d", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/gw.json", dir);
    write_file(path, "{\"policies\": {\"mine\": \"p/mine.lua\"}, \"routing\": {\"default_policy\": \"mine\"}}\n");
    lg_config_t *conf = lg_config_load(path, err, sizeof(err));
    assert_non_null(conf);
    assert_string_equal(conf->source_path, path);
    assert_string_equal(conf->base_dir, dir);
    snprintf(want, sizeof(want), "%s/p/mine.lua", dir);
    assert_string_equal(lg_config_find_policy(conf, "mine")->path, want);
    lg_config_free(conf);

    snprintf(path, sizeof(path), "%s/missing.json", dir);
    assert_null(lg_config_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "missing.json: cannot open config: No such file or directory"));
}

static void test_config_plugin_path_resolves(void **state)
{
    char want[PATH_MAX];
    (void)state;
    lg_config_t *conf = assert_config_ok("{\"providers\": [{\"name\": \"a\", \"plugin\": \"lib/a.so\", \"base_url\": \"http://h\"},"
                                         " {\"name\": \"b\", \"plugin\": \"b.so\", \"base_url\": \"http://h/\"},"
                                         " {\"name\": \"c\", \"plugin\": \"/opt/c.so\", \"base_url\": \"http://h\"},"
                                         " {\"name\": \"openai\", \"base_url\": \"http://h\"}]}");
    snprintf(want, sizeof(want), "%s/lib/a.so", tmpdir);
    assert_string_equal(conf->providers[0].plugin, want);
    snprintf(want, sizeof(want), "%s/b.so", tmpdir);
    assert_string_equal(conf->providers[1].plugin, want);
    assert_string_equal(conf->providers[1].base_url, "http://h");
    assert_string_equal(conf->providers[2].plugin, "/opt/c.so");
    assert_string_equal(conf->providers[3].plugin, "openai"); /* defaults to the provider name */
    lg_config_free(conf);
}

/* ---- validation messages ---- */

static void test_config_unknown_keys(void **state)
{
    (void)state;
    assert_config_error("{\"foo\": 1}", "foo: unknown key");
    assert_config_error("{\"routing\": {\"max_attempt\": 1}}", "routing.max_attempt: unknown key");
    assert_config_error("{\"listeners\": [{\"port\": 1, \"tsl\": {}}]}", "listeners[0].tsl: unknown key");
    assert_config_error("{\"providers\": [{\"name\": \"p\", \"plugin\": \"mock\", \"timeouts\": {\"conect_ms\": 1}}]}",
                        "providers[0].timeouts.conect_ms: unknown key");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\","
                        " \"pricing\": {\"promt\": \"1\"}}]}}}",
                        "models[\"m/x\"].endpoints[0].pricing.promt: unknown key");
}

static void test_config_bad_base_url(void **state)
{
    (void)state;
    assert_config_error("{\"providers\": [{\"name\": \"a\", \"plugin\": \"mock\"},"
                        " {\"name\": \"b\", \"plugin\": \"openai\", \"base_url\": \"ftp://x\"}]}",
                        "providers[1].base_url: expected http(s) URL");
    assert_config_error("{\"providers\": [{\"name\": \"b\", \"plugin\": \"openai\", \"base_url\": \"https://\"}]}",
                        "providers[0].base_url: expected http(s) URL");
    assert_config_error("{\"providers\": [{\"name\": \"b\", \"plugin\": \"openai\"}]}", "providers[0].base_url: missing");
}

static void test_config_bad_port(void **state)
{
    (void)state;
    assert_config_error("{\"listeners\": [{\"port\": 0}]}", "listeners[0].port: expected integer 1..65535");
    assert_config_error("{\"listeners\": [{\"port\": 1}, {\"port\": 70000}]}", "listeners[1].port: expected integer 1..65535");
    assert_config_error("{\"listeners\": [{\"port\": \"80\"}]}", "listeners[0].port: expected integer 1..65535");
    assert_config_error("{\"listeners\": [{\"address\": \"localhost\"}]}", "listeners[0].address: expected IPv4 or IPv6");
    assert_config_error("{\"listeners\": []}", "listeners: expected non-empty array");
    assert_config_error("{\"listeners\": [{\"port\": 5}, {\"port\": 5}]}", "listeners[1]: duplicate listener 127.0.0.1:5");
}

static void test_config_duplicate_provider(void **state)
{
    (void)state;
    assert_config_error("{\"providers\": [{\"name\": \"p\", \"plugin\": \"mock\"}, {\"name\": \"p\", \"plugin\": \"mock\"}]}",
                        "providers[1].name: duplicate provider \"p\"");
    assert_config_error("{\"providers\": [{\"name\": \"Bad Name\", \"plugin\": \"mock\"}]}",
                        "providers[0].name: expected [a-z0-9][a-z0-9._-]*");
    assert_config_error("{\"providers\": [{\"plugin\": \"mock\"}]}", "providers[0].name: missing required key");
}

static void test_config_unknown_endpoint_provider(void **state)
{
    (void)state;
    assert_config_error("{" MIN_PROVIDERS
                        ", \"models\": {\"mock/echo\": {\"endpoints\": [{\"provider\": \"foo\", \"model\": \"x\"}]}}}",
                        "models[\"mock/echo\"].endpoints[0].provider: unknown provider \"foo\"");
}

static void test_config_model_without_endpoints(void **state)
{
    (void)state;
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"endpoints\": []}}}",
                        "models[\"m/x\"].endpoints: expected at least one endpoint");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {}}}",
                        "models[\"m/x\"].endpoints: expected at least one endpoint");
}

#define CACHE_MODEL(c)                                                                                                             \
    "{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"cache\": " c ", \"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}}"

/* the response cache: a model's "cache" object and the root "cache.max_bytes" */
static void test_config_response_cache(void **state)
{
    (void)state;
    lg_config_t *conf = assert_config_ok("{" MIN_PROVIDERS ", " MIN_MODELS "}");
    assert_int_equal(conf->models[0].cache_enabled, -1);
    assert_int_equal(conf->models[0].cache_ttl_s, 0);
    assert_int_equal(conf->models[0].cache_shared, 0);
    assert_int_equal(conf->cache_max_bytes, 64u * 1024 * 1024);
    lg_config_free(conf);
    conf = assert_config_ok(CACHE_MODEL("{\"enabled\": true, \"ttl_s\": 600, \"scope\": \"shared\"}"));
    assert_int_equal(conf->models[0].cache_enabled, 1);
    assert_int_equal(conf->models[0].cache_ttl_s, 600);
    assert_int_equal(conf->models[0].cache_shared, 1);
    lg_config_free(conf);
    conf = assert_config_ok("{" MIN_PROVIDERS ", " MIN_MODELS ", \"cache\": {\"max_bytes\": 1048576}}");
    assert_int_equal(conf->cache_max_bytes, 1048576);
    lg_config_free(conf);
    assert_config_error(CACHE_MODEL("true"), "models[\"m/x\"].cache: expected object");
    assert_config_error(CACHE_MODEL("{\"enabled\": 1}"), "models[\"m/x\"].cache.enabled: expected boolean");
    assert_config_error(CACHE_MODEL("{\"ttl_s\": 0}"), "models[\"m/x\"].cache.ttl_s:");
    assert_config_error(CACHE_MODEL("{\"ttl_s\": 86401}"), "models[\"m/x\"].cache.ttl_s:");
    assert_config_error(CACHE_MODEL("{\"scope\": \"team\"}"), "models[\"m/x\"].cache.scope: expected \"key\" or \"shared\"");
    assert_config_error(CACHE_MODEL("{\"ttl\": 5}"), "models[\"m/x\"].cache.ttl: unknown key");
    assert_config_error("{" MIN_PROVIDERS ", " MIN_MODELS ", \"cache\": {\"max_bytes\": 10}}", "cache.max_bytes:");
    assert_config_error("{" MIN_PROVIDERS ", " MIN_MODELS ", \"cache\": {\"size\": 10}}", "cache.size: unknown key");
    assert_config_error("{" MIN_PROVIDERS ", " MIN_MODELS ", \"cache\": []}", "cache: expected object");
}

static void test_config_bad_model_ids(void **state)
{
    (void)state;
    assert_config_error("{" MIN_PROVIDERS
                        ", \"models\": {\"m/x:nitro\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}}",
                        "models[\"m/x:nitro\"]: invalid model id (':' is reserved");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}}",
                        "models[\"m x\"]: invalid model id (whitespace");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}}",
                        "models[\"\"]: invalid model id (empty)");
    /* ids are object keys: a repeated one is rejected by the JSON reader, with its position */
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"a\": {}, \"a\": {}}}", "duplicate object key");
}

static void test_config_bad_prices(void **state)
{
    (void)state;
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\","
                        " \"pricing\": {\"prompt\": \"abc\"}}]}}}",
                        "models[\"m/x\"].endpoints[0].pricing.prompt: expected decimal USD amount");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\","
                        " \"pricing\": {\"completion\": \"-0.000001\"}}]}}}",
                        "models[\"m/x\"].endpoints[0].pricing.completion: negative price");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\","
                        " \"pricing\": {\"request\": -1}}]}}}",
                        "models[\"m/x\"].endpoints[0].pricing.request: negative price");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\","
                        " \"pricing\": {\"prompt\": true}}]}}}",
                        "pricing.prompt: expected decimal USD amount");
}

static void test_config_price_parse_exact(void **state)
{
    (void)state;
    assert_int_equal(price_of("\"0.000000123\""), 123000);
    assert_int_equal(price_of("\"0.0000003\""), 300000); /* 3e-7 is not exact in binary; the text is */
    assert_int_equal(price_of("\"0.00000015\""), 150000);
    assert_int_equal(price_of("\"0\""), 0);
    assert_int_equal(price_of("\"1\""), 1000000000000);
    assert_int_equal(price_of("\"1.5\""), 1500000000000);
    assert_int_equal(price_of("\".5\""), 500000000000);
    assert_int_equal(price_of("\"3e-6\""), 3000000);
    assert_int_equal(price_of("\"3E-6\""), 3000000);
    assert_int_equal(price_of("\"0.0000000000004\""), 0); /* below half a pico rounds down */
    assert_int_equal(price_of("\"0.0000000000005\""), 1); /* half a pico rounds up */
    assert_int_equal(price_of("\"0.0000000000019\""), 2);
    assert_int_equal(price_of("\"0.000000000000000000000000001\""), 0);
    assert_int_equal(price_of("\"9223372.036854775807\""), INT64_MAX);
    assert_int_equal(price_of("\"-0\""), 0);
    assert_int_equal(price_of("\"1e-99999999999999999999\""), 0);
    /* invalid, negative or out of range */
    assert_int_equal(price_of("\"abc\""), -1);
    assert_int_equal(price_of("\"\""), -1);
    assert_int_equal(price_of("\"1.2.3\""), -1);
    assert_int_equal(price_of("\" 1\""), -1);
    assert_int_equal(price_of("\"1e\""), -1);
    assert_int_equal(price_of("\".\""), -1);
    assert_int_equal(price_of("\"-0.000001\""), -1);
    assert_int_equal(price_of("\"9223372.036854775808\""), -1);
    assert_int_equal(price_of("\"1e300\""), -1);
    assert_int_equal(price_of("-1"), -1);
    assert_int_equal(price_of("-0.5"), -1);
    assert_int_equal(price_of("null"), -1);
    assert_int_equal(price_of("10000000"), -1);
    /* JSON numbers round to the nearest pico */
    assert_int_equal(price_of("3e-6"), 3000000);
    assert_int_equal(price_of("0.0000003"), 300000);
    assert_int_equal(price_of("0.000000123"), 123000);
    assert_int_equal(price_of("2"), 2000000000000);
    assert_int_equal(price_of("0"), 0);
    assert_int_equal(price_of("1.5e-12"), 2);
}

static void test_config_api_key_exclusive(void **state)
{
    (void)state;
    assert_config_error("{\"providers\": [{\"name\": \"p\", \"plugin\": \"mock\", \"api_key\": \"k\", \"api_key_env\": \"K\"}]}",
                        "providers[0]: api_key and api_key_env are mutually exclusive");
    assert_config_error("{\"providers\": [{\"name\": \"p\", \"plugin\": \"mock\", \"api_key_env\": \"BAD-NAME\"}]}",
                        "providers[0].api_key_env: expected environment variable name");
}

static void test_config_missing_env_disables_provider(void **state)
{
    static const char json[] = "{\"providers\": [{\"name\": \"p\", \"plugin\": \"openai\", \"base_url\": \"http://127.0.0.1:9\","
                               " \"api_key_env\": \"LG_TEST_CONFIG_KEY\"}]," MIN_MODELS "}";
    (void)state;

    unsetenv("LG_TEST_CONFIG_KEY");
    lg_config_t *conf = assert_config_ok(json);
    assert_false(conf->providers[0].enabled);
    assert_null(conf->providers[0].api_key);
    assert_string_equal(conf->providers[0].api_key_env, "LG_TEST_CONFIG_KEY");
    /* the endpoint keeps its index; routing skips disabled providers */
    assert_int_equal(conf->models[0].endpoints[0].provider_index, 0);
    lg_config_free(conf);

    setenv("LG_TEST_CONFIG_KEY", "", 1);
    conf = assert_config_ok(json);
    assert_false(conf->providers[0].enabled);
    lg_config_free(conf);

    setenv("LG_TEST_CONFIG_KEY", "sk-from-env", 1);
    conf = assert_config_ok(json);
    assert_true(conf->providers[0].enabled);
    assert_string_equal(conf->providers[0].api_key, "sk-from-env");
    lg_config_free(conf);
    unsetenv("LG_TEST_CONFIG_KEY");
}

static void test_config_tls(void **state)
{
    char cert[PATH_MAX], key[PATH_MAX], json[3 * PATH_MAX];
    (void)state;

    assert_config_error("{\"listeners\": [{\"tls\": {\"cert\": \"c.pem\"}}]}",
                        "listeners[0].tls: cert and key must be given together");
    assert_config_error("{\"listeners\": [{\"port\": 1}, {\"tls\": {\"key\": \"k.pem\"}}]}",
                        "listeners[1].tls: cert and key must be given together");
    assert_config_error("{\"listeners\": [{\"tls\": {\"cert\": \"nope.pem\", \"key\": \"nope.key\"}}]}",
                        "listeners[0].tls.cert: cannot read \"");
    assert_config_error("{\"listeners\": [{\"tls\": {\"cert\": \"nope.pem\", \"key\": \"nope.key\"}}]}",
                        "/nope.key\": No such file or directory");
    assert_config_error("{\"listeners\": [{\"tls\": {\"cert\": \"/\", \"key\": \"/\"}}]}",
                        "listeners[0].tls.cert: \"/\" is not a regular file");

    /* relative names resolve against base_dir */
    snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
    snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
    write_file(cert, "-----BEGIN CERTIFICATE-----\n");
    write_file(key, "-----BEGIN PRIVATE KEY-----\n");
    snprintf(json, sizeof(json), "{\"listeners\": [{\"port\": 4443, \"tls\": {\"cert\": \"cert.pem\", \"key\": \"%s\"}}]}", key);
    lg_config_t *conf = assert_config_ok(json);
    assert_string_equal(conf->listeners[0].tls_cert, cert);
    assert_string_equal(conf->listeners[0].tls_key, key);
    lg_config_free(conf);
}

static void test_config_unknown_policy(void **state)
{
    (void)state;
    assert_config_error("{\"routing\": {\"default_policy\": \"nope\"}}", "routing.default_policy: unknown policy \"nope\"");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"policy\": \"fastest\","
                        " \"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}}",
                        "models[\"m/x\"].policy: unknown policy \"fastest\"");
    assert_config_error("{\"policies\": {\"custom\": {\"settings\": {}}}}", "policies[\"custom\"].path: missing required key");
    assert_config_error("{\"policies\": {\"custom\": 5}}", "policies[\"custom\"]: expected path string");
    assert_config_error("{\"policies\": {\"Bad Name\": \"x.lua\"}}", "policies[\"Bad Name\"]: invalid policy name");

    /* shipped names need no entry; they appear once with path NULL */
    lg_config_t *conf =
        assert_config_ok("{" MIN_PROVIDERS ", \"routing\": {\"default_policy\": \"price\"},"
                         " \"models\": {\"m/x\": {\"policy\": \"price\", \"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]},"
                         " \"m/y\": {\"policy\": \"latency\", \"endpoints\": [{\"provider\": \"p\", \"model\": \"y\"}]}}}");
    assert_int_equal(conf->num_policies, 2);
    assert_null(lg_config_find_policy(conf, "price")->path);
    assert_null(lg_config_find_policy(conf, "latency")->path);
    assert_null(lg_config_find_policy(conf, "default"));
    lg_config_free(conf);

    /* a shipped policy may be configured (settings) without a path */
    conf = assert_config_ok("{\"policies\": {\"weighted\": {\"settings\": {\"strict\": false}}}}");
    assert_null(lg_config_find_policy(conf, "weighted")->path);
    assert_non_null(lg_config_find_policy(conf, "weighted")->settings);
    lg_config_free(conf);
}

/* mid-stream failover is a per-model switch (src/pipeline/continue.c): off by default, a boolean */
static void test_config_midstream_failover(void **state)
{
    (void)state;
    lg_config_t *conf = assert_config_ok("{" MIN_PROVIDERS ", \"models\": {\"m/a\": {\"midstream_failover\": true,"
                                         " \"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]},"
                                         " \"m/b\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}}");
    assert_int_equal(lg_config_find_model(conf, "m/a")->midstream_failover, 1);
    assert_int_equal(lg_config_find_model(conf, "m/b")->midstream_failover, 0);
    lg_config_free(conf);
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/a\": {\"midstream_failover\": \"yes\","
                        " \"endpoints\": [{\"provider\": \"p\", \"model\": \"x\"}]}}}",
                        "models[\"m/a\"].midstream_failover: expected boolean");
}

static void test_config_type_errors(void **state)
{
    (void)state;
    assert_config_error("{\"workers\": -1}", "workers: expected integer 0..256");
    assert_config_error("{\"workers\": 1.0}", "workers: expected integer 0..256");
    assert_config_error("{\"routing\": {\"keepalive\": \"sometimes\"}}", "routing.keepalive: expected \"comment\" or \"off\"");
    assert_config_error("{\"log_level\": \"loud\"}", "log_level: expected \"err\", \"warn\", \"info\" or \"debug\"");
    assert_config_error("{\"access_log\": 3}", "access_log: expected file path, \"stderr\", \"off\" or null");
    assert_config_error("{\"providers\": [{\"name\": \"p\", \"plugin\": \"mock\", \"enabled\": 1}]}",
                        "providers[0].enabled: expected boolean");
    assert_config_error("{\"providers\": {}}", "providers: expected array");
    assert_config_error("{\"providers\": [{\"name\": \"p\", \"plugin\": \"mock\", \"headers\": {\"bad name\": \"v\"}}]}",
                        "providers[0].headers[\"bad name\"]: invalid header name");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"input_modalities\": [\"text\", 3],"
                        " \"endpoints\": [{\"provider\": \"p\", \"model\": \"x\", \"tier\": \"gold\"}]}}}",
                        "models[\"m/x\"].input_modalities[1]: expected non-empty string");
    assert_config_error("{" MIN_PROVIDERS ", \"models\": {\"m/x\": {\"endpoints\": [{\"provider\": \"p\", \"model\": \"x\","
                        " \"tier\": \"gold\"}]}}}",
                        "models[\"m/x\"].endpoints[0].tier: expected \"standard\", \"priority\" or \"flex\"");
    assert_config_error("[1, 2]", "expected a JSON object at the top level");
    assert_config_error(
        "{\"routing\": {\"expose_headers\": [\"x-route-hint\", \"CF-AIG-Authorization\"]}}",
        "routing.expose_headers[1]: \"cf-aig-authorization\" carries a credential and is never exposed to policies");
    assert_config_error("{\"routing\": {\"expose_headers\": [\"Authorization\"]}}",
                        "routing.expose_headers[0]: \"authorization\" carries a credential");
}

static void test_config_json_syntax_error_has_line(void **state)
{
    char err[512];
    (void)state;
    assert_config_error("{\n  \"workers\": 1,\n  oops\n}", "JSON syntax error at line 3, column");
    assert_null(parse("", err, sizeof(err)));
    assert_non_null(strstr(err, "JSON syntax error at line"));
}

static void test_config_errors_joined_and_bounded(void **state)
{
    static const char json[] = "{\"foo\": 1, \"bar\": 2, \"workers\": \"many\"}";
    char err[4096], small[16];
    (void)state;

    assert_null(parse(json, err, sizeof(err)));
    assert_non_null(strstr(err, "foo: unknown key; "));
    assert_non_null(strstr(err, "bar: unknown key; "));
    assert_non_null(strstr(err, "workers: expected integer 0..256"));

    memset(small, 'x', sizeof(small));
    assert_null(parse(json, small, sizeof(small)));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_null(parse(json, NULL, 0)); /* no buffer is fine */
}

/* ---- store and auth sections ---- */

static void test_config_store_defaults_and_values(void **state)
{
    char want[PATH_MAX + 32];
    (void)state;
    unsetenv("LLMGATE_ADMIN_KEY");
    lg_config_t *conf = assert_config_ok("{}");
    snprintf(want, sizeof(want), "%s/llmgate.db", tmpdir);
    assert_string_equal(conf->store_path, want);
    assert_int_equal(conf->ledger_flush_interval_ms, 200);
    assert_int_equal(conf->ledger_queue_capacity, 65536);
    assert_null(conf->admin_key);
    assert_string_equal(conf->admin_key_env, "LLMGATE_ADMIN_KEY");
    assert_int_equal(conf->require_keys, -1);
    assert_true(lg_config_listeners_loopback(conf));
    lg_config_free(conf);

    conf = assert_config_ok("{\"store\": {\"path\": \"data/gw.db\", \"flush_interval_ms\": 1000, \"queue_capacity\": 16},"
                            " \"auth\": {\"admin_key\": \"adm-secret-123\", \"require_keys\": true}}");
    snprintf(want, sizeof(want), "%s/data/gw.db", tmpdir);
    assert_string_equal(conf->store_path, want);
    assert_int_equal(conf->ledger_flush_interval_ms, 1000);
    assert_int_equal(conf->ledger_queue_capacity, 16);
    assert_string_equal(conf->admin_key, "adm-secret-123");
    assert_int_equal(conf->require_keys, 1);
    lg_config_free(conf);

    conf = assert_config_ok("{\"store\": {\"path\": \"/var/lib/llmgate/x.db\"}, \"auth\": {\"require_keys\": \"auto\"}}");
    assert_string_equal(conf->store_path, "/var/lib/llmgate/x.db");
    assert_int_equal(conf->require_keys, -1);
    lg_config_free(conf);

    /* the embedded default keeps its database in the current directory */
    char cwd[PATH_MAX], err[1024];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    conf = lg_config_load(NULL, err, sizeof(err));
    assert_non_null(conf);
    snprintf(want, sizeof(want), "%s/llmgate.db", cwd);
    assert_string_equal(conf->store_path, want);
    lg_config_free(conf);
}

static void test_config_admin_key_env(void **state)
{
    (void)state;
    setenv("LLMGATE_ADMIN_KEY", "from-env-key", 1);
    lg_config_t *conf = assert_config_ok("{}");
    assert_string_equal(conf->admin_key, "from-env-key");
    lg_config_free(conf);
    setenv("MY_ADMIN", "other-key", 1);
    conf = assert_config_ok("{\"auth\": {\"admin_key_env\": \"MY_ADMIN\"}}");
    assert_string_equal(conf->admin_key, "other-key");
    assert_string_equal(conf->admin_key_env, "MY_ADMIN");
    lg_config_free(conf);
    setenv("MY_ADMIN", "", 1); /* empty = admin API off, not an error */
    conf = assert_config_ok("{\"auth\": {\"admin_key_env\": \"MY_ADMIN\"}}");
    assert_null(conf->admin_key);
    lg_config_free(conf);
    setenv("MY_ADMIN", "has space", 1);
    assert_config_error("{\"auth\": {\"admin_key_env\": \"MY_ADMIN\"}}",
                        "auth.admin_key_env: the value of MY_ADMIN must be printable ASCII without spaces");
    unsetenv("MY_ADMIN");
    unsetenv("LLMGATE_ADMIN_KEY");
}

static void test_config_store_auth_errors(void **state)
{
    (void)state;
    assert_config_error("{\"store\": {\"flush_interval_ms\": 0}}", "store.flush_interval_ms: expected integer 1..1000");
    assert_config_error("{\"store\": {\"flush_interval_ms\": 1001}}", "store.flush_interval_ms: expected integer 1..1000");
    assert_config_error("{\"store\": {\"queue_capacity\": 0}}", "store.queue_capacity: expected integer 1..16777216");
    assert_config_error("{\"store\": {\"path\": \"\"}}", "store.path: expected non-empty string");
    assert_config_error("{\"store\": {\"pth\": \"x.db\"}}", "store.pth: unknown key");
    assert_config_error("{\"store\": 5}", "store: expected object");
    assert_config_error("{\"auth\": {\"admin_key\": \"a\", \"admin_key_env\": \"B\"}}",
                        "auth: admin_key and admin_key_env are mutually exclusive");
    assert_config_error("{\"auth\": {\"admin_key\": \"two words\"}}", "auth.admin_key: expected printable ASCII without spaces");
    assert_config_error("{\"auth\": {\"admin_key_env\": \"1BAD\"}}", "auth.admin_key_env: expected environment variable name");
    assert_config_error("{\"auth\": {\"require_keys\": \"sometimes\"}}", "auth.require_keys: expected \"auto\", true or false");
    assert_config_error("{\"auth\": {\"require_key\": true}}", "auth.require_key: unknown key");
    /* a non-loopback listener can never run open */
    assert_config_error("{\"listeners\": [{\"address\": \"0.0.0.0\"}], \"auth\": {\"require_keys\": false}}",
                        "auth.require_keys: false is only allowed when every listener is loopback");
    assert_config_error("{\"listeners\": [{\"port\": 1}, {\"address\": \"::\", \"port\": 2}], \"auth\": {\"require_keys\": false}}",
                        "auth.require_keys");
    lg_config_t *conf =
        assert_config_ok("{\"listeners\": [{\"address\": \"127.0.0.2\", \"port\": 1}, {\"address\": \"::1\", \"port\": 2}],"
                         " \"auth\": {\"require_keys\": false}}");
    assert_int_equal(conf->require_keys, 0);
    assert_true(lg_config_listeners_loopback(conf));
    lg_config_free(conf);
    conf = assert_config_ok("{\"listeners\": [{\"address\": \"0.0.0.0\"}]}"); /* auto: allowed, auth enforced at run time */
    assert_false(lg_config_listeners_loopback(conf));
    lg_config_free(conf);
}

static void test_config_mcp_defaults_and_values(void **state)
{
    (void)state;
    lg_config_t *conf = assert_config_ok("{}");
    assert_true(conf->mcp.enabled);
    assert_false(conf->mcp.conformance_fixtures);
    assert_int_equal(conf->mcp.session_ttl_s, 1800);
    assert_int_equal(conf->mcp.max_message_bytes, 4 << 20);
    assert_non_null(conf->mcp.allowed_origins);
    assert_null(conf->mcp.allowed_origins[0]);
    assert_null(conf->mcp.allowed_hosts[0]);
    lg_config_free(conf);
    conf = assert_config_ok("{\"mcp\": {\"enabled\": false, \"allowed_origins\": [\"https://app.example.com\", \"*\"],"
                            " \"allowed_hosts\": [\"gw.example.com\", \"gw.example.com:4000\", \"[::1]:80\"],"
                            " \"session_ttl_s\": 60, \"max_message_bytes\": 2048, \"conformance_fixtures\": true}}");
    assert_false(conf->mcp.enabled);
    assert_true(conf->mcp.conformance_fixtures);
    assert_int_equal(conf->mcp.session_ttl_s, 60);
    assert_int_equal(conf->mcp.max_message_bytes, 2048);
    assert_string_equal(conf->mcp.allowed_origins[0], "https://app.example.com");
    assert_string_equal(conf->mcp.allowed_origins[1], "*");
    assert_null(conf->mcp.allowed_origins[2]);
    assert_string_equal(conf->mcp.allowed_hosts[2], "[::1]:80");
    lg_config_free(conf);
}

static void test_config_mcp_errors(void **state)
{
    (void)state;
    assert_config_error("{\"mcp\": 1}", "mcp: expected object");
    assert_config_error("{\"mcp\": {\"enable\": true}}", "mcp.enable: unknown key");
    assert_config_error("{\"mcp\": {\"enabled\": 1}}", "mcp.enabled: expected boolean");
    assert_config_error("{\"mcp\": {\"conformance_fixtures\": \"yes\"}}", "mcp.conformance_fixtures: expected boolean");
    assert_config_error("{\"mcp\": {\"session_ttl_s\": 0}}", "mcp.session_ttl_s: expected integer 1..604800");
    assert_config_error("{\"mcp\": {\"max_message_bytes\": 10}}", "mcp.max_message_bytes: expected integer 1024..1073741824");
    assert_config_error("{\"mcp\": {\"allowed_origins\": \"*\"}}", "mcp.allowed_origins: expected array of strings");
    assert_config_error("{\"mcp\": {\"allowed_origins\": [\"example.com\"]}}",
                        "mcp.allowed_origins[0]: expected \"scheme://host[:port]\" or \"*\"");
    assert_config_error("{\"mcp\": {\"allowed_origins\": [\"https://a.example/path\"]}}", "mcp.allowed_origins[0]: expected");
    assert_config_error("{\"mcp\": {\"allowed_hosts\": [\"ok.example\", \"bad host\"]}}",
                        "mcp.allowed_hosts[1]: expected \"host\" or \"host:port\"");
    assert_config_error("{\"mcp\": {\"allowed_hosts\": [\"\"]}}", "mcp.allowed_hosts[0]: expected non-empty string");
}

static void test_config_mcp_oauth(void **state)
{
    (void)state;
    lg_config_t *conf = assert_config_ok("{}");
    assert_false(conf->mcp.oauth.enabled);
    assert_int_equal(conf->mcp.oauth.access_token_ttl_s, 3600);
    assert_int_equal(conf->mcp.oauth.code_ttl_s, 60);
    assert_true(conf->mcp.oauth.dynamic_registration);
    assert_true(conf->mcp.oauth.client_id_metadata_documents);
    assert_false(conf->mcp.oauth.allow_loopback_metadata_urls);
    lg_config_free(conf);
    conf = assert_config_ok("{\"listeners\": [{\"address\": \"127.0.0.1\", \"port\": 4000}, {\"port\": 4001}],"
                            " \"mcp\": {\"auth\": {\"mode\": \"oauth\", \"issuer\": \"https://gw.example.com:8443\","
                            " \"listeners\": [\"127.0.0.1:4001\"], \"access_token_ttl_s\": 600, \"code_ttl_s\": 30,"
                            " \"dynamic_registration\": false, \"max_clients\": 50}}}");
    assert_true(conf->mcp.oauth.enabled);
    assert_string_equal(conf->mcp.oauth.issuer, "https://gw.example.com:8443");
    assert_string_equal(conf->mcp.oauth.listeners[0], "127.0.0.1:4001");
    assert_null(conf->mcp.oauth.listeners[1]);
    assert_int_equal(conf->mcp.oauth.access_token_ttl_s, 600);
    assert_int_equal(conf->mcp.oauth.code_ttl_s, 30);
    assert_false(conf->mcp.oauth.dynamic_registration);
    assert_int_equal(conf->mcp.oauth.max_clients, 50);
    lg_config_free(conf);
    conf = assert_config_ok("{\"mcp\": {\"auth\": {\"mode\": \"oauth\", \"issuer\": \"http://127.0.0.1:4000\"}}}");
    assert_null(conf->mcp.oauth.listeners);
    lg_config_free(conf);
    assert_config_error("{\"mcp\": {\"auth\": {\"mode\": \"oauth\"}}}", "mcp.auth.issuer: required when mode is \"oauth\"");
    assert_config_error("{\"mcp\": {\"auth\": {\"mode\": \"jwt\"}}}", "mcp.auth.mode: expected \"keys\" or \"oauth\"");
    assert_config_error("{\"mcp\": {\"auth\": {\"mode\": \"oauth\", \"issuer\": \"http://gw.example.com\"}}}",
                        "mcp.auth.issuer: expected the public base URL");
    assert_config_error("{\"mcp\": {\"auth\": {\"mode\": \"oauth\", \"issuer\": \"https://gw.example.com/mcp\"}}}",
                        "mcp.auth.issuer: expected the public base URL");
    assert_config_error("{\"mcp\": {\"auth\": {\"mode\": \"oauth\", \"issuer\": \"https://gw\", \"listeners\": [\"0.0.0.0:1\"]}}}",
                        "mcp.auth.listeners[0]: \"0.0.0.0:1\" is not one of the listeners");
    assert_config_error("{\"mcp\": {\"auth\": {\"code_ttl_s\": 600}}}", "mcp.auth.code_ttl_s: expected integer 1..60");
    assert_config_error("{\"mcp\": {\"auth\": {\"issuer\": \"https://gw\", \"mode\": \"oauth\", \"dynamic_registration\": false,"
                        " \"client_id_metadata_documents\": false}}}",
                        "no client could register");
    assert_config_error("{\"mcp\": {\"auth\": {\"modes\": \"oauth\"}}}", "mcp.auth.modes: unknown key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_embedded_default_loads),
        cmocka_unit_test(test_config_example_loads),
        cmocka_unit_test(test_config_defaults_when_keys_absent),
        cmocka_unit_test(test_config_full_values),
        cmocka_unit_test(test_config_load_file_resolves_relative_paths),
        cmocka_unit_test(test_config_plugin_path_resolves),
        cmocka_unit_test(test_config_unknown_keys),
        cmocka_unit_test(test_config_bad_base_url),
        cmocka_unit_test(test_config_bad_port),
        cmocka_unit_test(test_config_duplicate_provider),
        cmocka_unit_test(test_config_unknown_endpoint_provider),
        cmocka_unit_test(test_config_model_without_endpoints),
        cmocka_unit_test(test_config_bad_model_ids),
        cmocka_unit_test(test_config_bad_prices),
        cmocka_unit_test(test_config_price_parse_exact),
        cmocka_unit_test(test_config_api_key_exclusive),
        cmocka_unit_test(test_config_missing_env_disables_provider),
        cmocka_unit_test(test_config_tls),
        cmocka_unit_test(test_config_unknown_policy),
        cmocka_unit_test(test_config_response_cache),
        cmocka_unit_test(test_config_type_errors),
        cmocka_unit_test(test_config_json_syntax_error_has_line),
        cmocka_unit_test(test_config_errors_joined_and_bounded),
        cmocka_unit_test(test_config_store_defaults_and_values),
        cmocka_unit_test(test_config_admin_key_env),
        cmocka_unit_test(test_config_store_auth_errors),
        cmocka_unit_test(test_config_mcp_defaults_and_values),
        cmocka_unit_test(test_config_mcp_errors),
        cmocka_unit_test(test_config_mcp_oauth),
        cmocka_unit_test(test_config_midstream_failover),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
