/* SPDX-License-Identifier: MIT */
/*
 * Plugin loader and host API: every ABI test plugin is refused with its exact
 * reason and the file path; abi_ok and the real plugins load through
 * lg_plugin_resolve; the host table behaves as documented.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dlfcn.h>
#include "core/log.h"
#include "plugin/loader.h"

static char test_plugin_dir[1024];

static int setup(void **state)
{
    (void)state;
    const char *build = getenv("LLMGATE_BUILD_DIR");
    if (build == NULL) {
        fprintf(stderr, "LLMGATE_BUILD_DIR is not set (run through ctest)\n");
        return -1;
    }
    snprintf(test_plugin_dir, sizeof(test_plugin_dir), "%s/test-plugins", build);
    return 0;
}

static void test_path(char *out, size_t outlen, const char *name)
{
    snprintf(out, outlen, "%s/%s.so", test_plugin_dir, name);
}

/* Loads a test plugin that must be refused and checks "<path>: <reason...>". */
static void expect_refused(const char *name, const char *reason)
{
    char path[1200], err[512];
    lg_plugin_t *p = (lg_plugin_t *)(uintptr_t)1;
    test_path(path, sizeof(path), name);
    int rc = lg_plugin_load(path, &p, err, sizeof(err));
    print_message("%s -> %s\n", name, err);
    assert_int_not_equal(rc, 0);
    assert_null(p);
    size_t plen = strlen(path);
    assert_int_equal(strncmp(err, path, plen), 0);
    assert_int_equal(strncmp(err + plen, ": ", 2), 0);
    assert_non_null(strstr(err, reason));
}

static void test_loader_abi_ok_loads(void **state)
{
    (void)state;
    char path[1200], err[512] = "";
    lg_plugin_t *p = NULL;
    test_path(path, sizeof(path), "abi_ok");
    assert_int_equal(lg_plugin_load(path, &p, err, sizeof(err)), 0);
    assert_non_null(p);
    assert_string_equal(p->path, path);
    assert_non_null(p->dl);
    assert_string_equal(p->provider->name, "abi_ok");
    assert_int_equal(p->provider->abi_major, LG_PLUGIN_ABI_MAJOR);
    void *inst = NULL;
    lg_errbuf_t e;
    assert_int_equal(p->provider->create(NULL, &inst, &e), 0);
    p->provider->destroy(inst);
    lg_plugin_unload(p);
    lg_plugin_unload(NULL);
}

static void test_loader_wrong_major(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof(want), "ABI major %d, host supports %d", LG_PLUGIN_ABI_MAJOR + 1, LG_PLUGIN_ABI_MAJOR);
    expect_refused("abi_wrong_major", want);
}

static void test_loader_newer_minor(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof(want), "plugin needs ABI %d.%d, host has %d.%d", LG_PLUGIN_ABI_MAJOR, LG_PLUGIN_ABI_MINOR + 1,
             LG_PLUGIN_ABI_MAJOR, LG_PLUGIN_ABI_MINOR);
    expect_refused("abi_newer_minor", want);
}

static void test_loader_missing_entry(void **state)
{
    (void)state;
    expect_refused("abi_missing_entry", "missing entry point lg_plugin_init");
}

static void test_loader_init_fails(void **state)
{
    (void)state;
    expect_refused("abi_init_fails", "init failed: abi_init_fails: required CPU feature missing");
}

static void test_loader_small_struct(void **state)
{
    (void)state;
    expect_refused("abi_small_struct", "provider table too small");
}

static void test_loader_missing_callbacks(void **state)
{
    (void)state;
    expect_refused("abi_no_classify", "missing required callback classify_error");
    expect_refused("abi_no_build", "missing required callback build_request");
    expect_refused("abi_stream_no_cb", "LG_CAP_STREAM without stream callbacks");
    expect_refused("abi_local_no_respond", "LG_CAP_LOCAL without local_respond");
    expect_refused("abi_null_table", "init returned no provider table");
    expect_refused("abi_wire_no_cb", "LG_CAP_WIRE_OPENAI without wire_passthrough");
    expect_refused("abi_minor1_small", "ABI 1.1 needs at least");
}

static void test_loader_abi_1_0_table_still_loads(void **state)
{
    (void)state;
    /* a plugin built against ABI 1.0 ships a table that ends before wire_passthrough: loaded, never read past its end */
    char path[1200], err[512] = "";
    lg_plugin_t *p = NULL;
    test_path(path, sizeof(path), "abi_abi_1_0");
    int rc = lg_plugin_load(path, &p, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(p->provider->abi_minor, 0);
    assert_int_equal(p->provider->struct_size, LG_PROVIDER_MIN_SIZE_1_0);
    assert_null(lg_provider_wire_fn(p->provider));
    lg_plugin_unload(p);
}

static void test_loader_bad_files(void **state)
{
    (void)state;
    char err[512], path[1200];
    lg_plugin_t *p = NULL;

    /* missing file */
    test_path(path, sizeof(path), "does_not_exist");
    assert_int_equal(lg_plugin_load(path, &p, err, sizeof(err)), LG_ENOTFOUND);
    assert_null(p);
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_non_null(strstr(err, "cannot access plugin"));

    /* a directory */
    assert_int_not_equal(lg_plugin_load(test_plugin_dir, &p, err, sizeof(err)), 0);
    assert_null(p);
    assert_int_equal(strncmp(err, test_plugin_dir, strlen(test_plugin_dir)), 0);
    assert_non_null(strstr(err, "not a regular file"));

    /* not an ELF object: dlopen's own reason is reported */
    char tmp[] = "/tmp/lg_plugin_garbageXXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not an elf file\n", 16), 16);
    close(fd);
    assert_int_not_equal(lg_plugin_load(tmp, &p, err, sizeof(err)), 0);
    assert_null(p);
    print_message("garbage -> %s\n", err);
    assert_int_equal(strncmp(err, tmp, strlen(tmp)), 0);
    assert_non_null(strstr(err, "dlopen failed: "));
    unlink(tmp);

    /* a tiny error buffer is never overrun */
    char small[8];
    assert_int_not_equal(lg_plugin_load(test_plugin_dir, &p, small, sizeof(small)), 0);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_loader_resolve(void **state)
{
    (void)state;
    char out[1200], want[1200];
    /* paths are used as-is */
    assert_int_equal(lg_plugin_resolve("/x/y/openai.so", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/x/y/openai.so");
    assert_int_equal(lg_plugin_resolve("custom.so", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "custom.so");
    /* explicit directory */
    assert_int_equal(lg_plugin_resolve("abi_ok", test_plugin_dir, out, sizeof(out)), 0);
    test_path(want, sizeof(want), "abi_ok");
    assert_string_equal(out, want);
    assert_int_equal(lg_plugin_resolve("nope", test_plugin_dir, out, sizeof(out)), LG_ENOTFOUND);
    /* search path: $LLMGATE_PLUGIN_DIR */
    const char *dir = getenv("LLMGATE_PLUGIN_DIR");
    assert_non_null(dir);
    assert_int_equal(lg_plugin_resolve("openai", NULL, out, sizeof(out)), 0);
    snprintf(want, sizeof(want), "%s/openai.so", dir);
    assert_string_equal(out, want);
    assert_int_equal(lg_plugin_resolve("no_such_plugin", NULL, out, sizeof(out)), LG_ENOTFOUND);
    /* a list of directories is searched in order */
    char list[2400];
    snprintf(list, sizeof(list), "/nonexistent:%s", test_plugin_dir);
    setenv("LLMGATE_PLUGIN_DIR", list, 1);
    assert_int_equal(lg_plugin_resolve("abi_ok", NULL, out, sizeof(out)), 0);
    test_path(want, sizeof(want), "abi_ok");
    assert_string_equal(out, want);
    setenv("LLMGATE_PLUGIN_DIR", dir, 1);
    /* too small an output buffer */
    assert_int_equal(lg_plugin_resolve("openai", NULL, out, 4), LG_ENOTFOUND);
}

static void load_real(const char *name, uint32_t caps)
{
    char path[1200], err[512] = "";
    lg_plugin_t *p = NULL;
    assert_int_equal(lg_plugin_resolve(name, NULL, path, sizeof(path)), 0);
    int rc = lg_plugin_load(path, &p, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(p->provider->name, name);
    assert_int_equal(p->provider->capabilities, caps);
    assert_true(p->provider->struct_size >= LG_PROVIDER_MIN_SIZE_1_0);
    /* the pass-through promise and its callback come together */
    assert_int_equal(lg_provider_wire_fn(p->provider) != NULL, (caps & LG_CAP_WIRE_OPENAI) != 0);
    /* plugins export exactly one symbol: nothing else is reachable */
    assert_null(dlsym(p->dl, "ow_classify"));
    lg_plugin_unload(p);
}

static void test_loader_real_plugins(void **state)
{
    (void)state;
    load_real("openai", LG_CAP_CHAT | LG_CAP_COMPLETIONS | LG_CAP_EMBEDDINGS | LG_CAP_STREAM | LG_CAP_WIRE_OPENAI);
    load_real("mock", LG_CAP_LOCAL | LG_CAP_CHAT | LG_CAP_COMPLETIONS | LG_CAP_EMBEDDINGS | LG_CAP_STREAM);
}

/* ---- host API ---- */

static char last_module[128], last_line[512];
static int last_level = -1, lines;

static void capture_sink(int level, const char *module, const char *line)
{
    last_level = level;
    snprintf(last_module, sizeof(last_module), "%s", module);
    snprintf(last_line, sizeof(last_line), "%s", line);
    ++lines;
}

static void test_host_api_table(void **state)
{
    (void)state;
    const lg_host_api_t *h = lg_plugin_host_api();
    assert_int_equal(h->struct_size, sizeof(lg_host_api_t));
    assert_int_equal(h->abi_major, LG_PLUGIN_ABI_MAJOR);
    assert_int_equal(h->abi_minor, LG_PLUGIN_ABI_MINOR);

    char *p = h->alloc(10);
    memset(p, 'x', 10);
    p = h->realloc_mem(p, 1000);
    assert_int_equal(p[9], 'x');
    h->free_mem(p);
    h->free_mem(NULL);
    h->free_mem(h->alloc(0));

    int saved = lg_log_level;
    lg_log_set_sink(capture_sink);
    lg_log_level = LG_LOG_INFO;
    h->log(LG_LOG_WARN, "openai-azure", "status %d", 503);
    assert_int_equal(last_level, LG_LOG_WARN);
    assert_string_equal(last_module, "plugin/openai-azure");
    assert_string_equal(last_line, "status 503");
    int before = lines;
    h->log(LG_LOG_DEBUG, "openai", "dropped %s", "x"); /* below the level */
    assert_int_equal(lines, before);
    h->log(LG_LOG_INFO, NULL, "anonymous");
    assert_string_equal(last_module, "plugin/?");
    lg_log_set_sink(NULL);
    lg_log_level = saved;

    int64_t t0 = h->now_ms(), t1 = h->now_ms();
    assert_true(t1 >= t0);
    assert_true(h->unix_time() > 1600000000);
    uint64_t a = h->random_u64(), b = h->random_u64(), c = h->random_u64();
    assert_true(a != b && b != c && a != c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_abi_ok_loads),      cmocka_unit_test(test_loader_wrong_major),
        cmocka_unit_test(test_loader_newer_minor),       cmocka_unit_test(test_loader_missing_entry),
        cmocka_unit_test(test_loader_init_fails),        cmocka_unit_test(test_loader_small_struct),
        cmocka_unit_test(test_loader_missing_callbacks), cmocka_unit_test(test_loader_abi_1_0_table_still_loads),
        cmocka_unit_test(test_loader_bad_files),         cmocka_unit_test(test_loader_resolve),
        cmocka_unit_test(test_loader_real_plugins),      cmocka_unit_test(test_host_api_table),
    };
    return cmocka_run_group_tests_name("plugin_loader", tests, setup, NULL);
}
