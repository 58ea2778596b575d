/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/cli/keys_cli.c through lg_cli_main with a temporary
 * database: create (secret shown once, only its hash stored), list, show,
 * update, disable/enable, delete, usage reports, --config resolution, and the
 * exit codes: 2 for every kind of invalid input (before any database is
 * created), 1 for unknown keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "domain/key.h"
#include "store/store.h"

static char tmpdir[512];
static char dbpath[PATH_MAX];
static char out[65536], errout[65536];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "%s/lg_cli_test_XXXXXX", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/cli.db", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void slurp(int fd, char *buf, size_t size)
{
    ssize_t n;
    size_t len = 0;
    lseek(fd, 0, SEEK_SET);
    while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
}

/* Run `llmgate <args...>` (NULL-terminated) in-process; stdout/stderr land in out/errout. */
static int run(const char *first, ...)
{
    char *argv[64];
    int argc = 0, rc;
    va_list ap;
    char opath[PATH_MAX], epath[PATH_MAX];

    argv[argc++] = (char *)"llmgate";
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    snprintf(opath, sizeof(opath), "%s/out.XXXXXX", tmpdir);
    snprintf(epath, sizeof(epath), "%s/err.XXXXXX", tmpdir);
    int ofd = mkstemp(opath), efd = mkstemp(epath);
    assert_true(ofd >= 0 && efd >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    rc = lg_cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    slurp(ofd, out, sizeof(out));
    slurp(efd, errout, sizeof(errout));
    close(ofd);
    close(efd);
    unlink(opath);
    unlink(epath);
    return rc;
}

static json_t *out_json(void)
{
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    if (j == NULL)
        print_error("not JSON (%s): %s\n", jerr.text, out);
    assert_non_null(j);
    return j;
}

static lg_key_record_t *stored_key(const char *id)
{
    char err[512];
    lg_key_record_t *k = NULL;
    lg_store_t *s = lg_store_open(dbpath, err, sizeof(err));
    assert_non_null(s);
    int rc = lg_store_key_get(s, id, &k);
    lg_store_close(s);
    return rc == 0 ? k : NULL;
}

/* Creates a key through the CLI and returns its id (static buffer). */
static const char *create_key(const char *name)
{
    static char id[LG_KEY_ID_LEN + 1];
    assert_int_equal(run("keys", "create", "--db", dbpath, "--name", name, "--json", NULL), 0);
    json_t *j = out_json();
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(json_object_get(j, "data"), "id")));
    json_decref(j);
    return id;
}

static void test_cli_create_shows_secret_once(void **state)
{
    uint8_t h[32];
    char id[LG_KEY_ID_LEN + 1], secret[LG_KEY_SECRET_LEN + 1];
    (void)state;

    int rc = run("keys", "create", "--db", dbpath, "--name", "alice", "--credit-limit", "12.5", "--reset", "monthly", "--rpm", "60",
                 "--tpm", "100000", "--models", "openai/gpt-4o,mock/*", "--tools", "github__*", "--expires-in", "30d", "--metadata",
                 "{\"team\":\"ml\"}", "--json", NULL);
    if (rc != 0)
        print_error("stderr: %s\n", errout);
    assert_int_equal(rc, 0);
    json_t *j = out_json();
    json_t *d = json_object_get(j, "data");
    snprintf(secret, sizeof(secret), "%s", json_string_value(json_object_get(j, "key")));
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(d, "id")));
    assert_int_equal(strlen(secret), LG_KEY_SECRET_LEN);
    assert_memory_equal(secret, "sk-lg-", 6);
    assert_null(json_object_get(d, "hash"));
    assert_true(json_real_value(json_object_get(d, "limit")) == 12.5);
    assert_string_equal(json_string_value(json_object_get(d, "limit_reset")), "monthly");
    json_decref(j);
    assert_non_null(strstr(errout, "cannot be shown again"));

    lg_key_record_t *k = stored_key(id);
    assert_non_null(k);
    lg_key_hash(secret, strlen(secret), h);
    assert_memory_equal(k->hash, h, 32); /* only the hash is stored */
    assert_string_equal(k->name, "alice");
    assert_int_equal(k->credit_limit_pico, 12500000000000);
    assert_int_equal(k->reset_period, LG_RESET_MONTHLY);
    assert_int_equal(k->rpm, 60);
    assert_int_equal(k->tpm, 100000);
    assert_string_equal(k->allowed_models[0], "openai/gpt-4o");
    assert_string_equal(k->allowed_models[1], "mock/*");
    assert_null(k->allowed_models[2]);
    assert_string_equal(k->allowed_tools[0], "github__*");
    assert_true(k->expires_at > k->created_at + 29 * 86400);
    assert_string_equal(json_string_value(json_object_get(k->metadata, "team")), "ml");
    lg_key_record_free(k);

    /* the secret never appears again: not in list, not in show */
    assert_int_equal(run("keys", "list", "--db", dbpath, "--json", NULL), 0);
    assert_null(strstr(out, secret));
    assert_non_null(strstr(out, id));
    assert_null(strstr(out, "hash"));
    assert_int_equal(run("keys", "list", "--db", dbpath, NULL), 0);
    assert_null(strstr(out, secret));
    assert_non_null(strstr(out, id));
    assert_non_null(strstr(out, "alice"));
    assert_int_equal(run("keys", "show", id, "--db", dbpath, NULL), 0);
    assert_null(strstr(out, secret));
    assert_non_null(strstr(out, "12.50 USD (reset monthly)"));

    /* text mode prints id and secret with the warning */
    assert_int_equal(run("--db", dbpath, "keys", "create", "--name", "text mode", NULL), 2); /* options before the command */
    assert_int_equal(run("keys", "--db", dbpath, "create", "--name", "text mode", NULL), 0);
    assert_non_null(strstr(out, "id:     key_"));
    assert_non_null(strstr(out, "secret: sk-lg-"));
    assert_non_null(strstr(out, "store it now; it cannot be shown again"));
    assert_non_null(strstr(errout, "SIGHUP"));
}

static void test_cli_update_disable_enable_delete(void **state)
{
    char id[LG_KEY_ID_LEN + 1];
    lg_key_record_t *k;
    (void)state;

    snprintf(id, sizeof(id), "%s", create_key("bob"));
    assert_int_equal(run("keys", "update", id, "--db", dbpath, "--name", "robert", "--rpm", "5", "--credit-limit", "0.000003",
                         "--models", "a/b", NULL),
                     0);
    k = stored_key(id);
    assert_string_equal(k->name, "robert");
    assert_int_equal(k->rpm, 5);
    assert_int_equal(k->credit_limit_pico, 3000000);
    assert_string_equal(k->allowed_models[0], "a/b");
    lg_key_record_free(k);

    /* clearing: unlimited credit, all models */
    assert_int_equal(run("keys", "update", id, "--db", dbpath, "--credit-limit", "none", "--models", "*", NULL), 0);
    k = stored_key(id);
    assert_int_equal(k->credit_limit_pico, -1);
    assert_null(k->allowed_models);
    assert_int_equal(k->rpm, 5); /* untouched fields stay */
    lg_key_record_free(k);

    assert_int_equal(run("keys", "disable", id, "--db", dbpath, NULL), 0);
    k = stored_key(id);
    assert_true(k->disabled);
    lg_key_record_free(k);
    assert_int_equal(run("keys", "show", id, "--db", dbpath, "--json", NULL), 0);
    json_t *j = out_json();
    assert_true(json_is_true(json_object_get(json_object_get(j, "data"), "disabled")));
    assert_true(json_is_real(json_object_get(json_object_get(j, "data"), "usage_monthly")));
    json_decref(j);
    assert_int_equal(run("keys", "enable", id, "--db", dbpath, NULL), 0);
    k = stored_key(id);
    assert_false(k->disabled);
    lg_key_record_free(k);

    assert_int_equal(run("keys", "delete", id, "--db", dbpath, NULL), 0);
    assert_null(stored_key(id));
    assert_int_equal(run("keys", "show", id, "--db", dbpath, NULL), 1);
    assert_non_null(strstr(errout, "key not found"));
    assert_int_equal(run("keys", "delete", id, "--db", dbpath, NULL), 1);
    assert_int_equal(run("keys", "update", id, "--db", dbpath, "--rpm", "1", NULL), 1);
    assert_int_equal(run("keys", "enable", "key_AAAAAAAAAAAAAAAAAAAA", "--db", dbpath, NULL), 1);
}

static void test_cli_bad_input_exits_2(void **state)
{
    char fresh[PATH_MAX], long_name[300], id[LG_KEY_ID_LEN + 1];
    struct stat st;
    (void)state;

    snprintf(fresh, sizeof(fresh), "%s/never-created.db", tmpdir);
    memset(long_name, 'x', 257);
    long_name[257] = '\0';
    static const char *const bad_create[][2] = {
        {"--name", ""},
        {"--name", "tab\there"},
        {"--credit-limit", "-1"},
        {"--credit-limit", "1e10"},
        {"--credit-limit", "abc"},
        {"--credit-limit", "inf"},
        {"--credit-limit", "nan"},
        {"--credit-limit", "1000000.01"},
        {"--rpm", "10000001"},
        {"--rpm", "-5"},
        {"--rpm", "5x"},
        {"--rpm", ""},
        {"--tpm", "99999999999999999999999"},
        {"--reset", "yearly"},
        {"--models", "a b"},
        {"--models", "a,,b"},
        {"--models", "gpt;DROP"},
        {"--tools", "x/y"},
        {"--expires-in", "10y"},
        {"--expires-in", "0d"},
        {"--expires-in", "-1d"},
        {"--metadata", "[1]"},
        {"--metadata", "{bad"},
        {"--bogus", "1"},
    };
    for (size_t i = 0; i < sizeof(bad_create) / sizeof(bad_create[0]); ++i) {
        const char *name = strcmp(bad_create[i][0], "--name") == 0 ? bad_create[i][1] : "ok";
        int rc = strcmp(bad_create[i][0], "--name") == 0
                     ? run("keys", "create", "--db", fresh, "--name", name, NULL)
                     : run("keys", "create", "--db", fresh, "--name", name, bad_create[i][0], bad_create[i][1], NULL);
        if (rc != 2 || errout[0] == '\0')
            print_error("%s %s: exit %d, stderr: %s\n", bad_create[i][0], bad_create[i][1], rc, errout);
        assert_int_equal(rc, 2);
    }
    assert_int_equal(run("keys", "create", "--db", fresh, "--name", long_name, NULL), 2);
    assert_non_null(strstr(errout, "longer than 256"));
    assert_int_equal(run("keys", "create", "--db", fresh, NULL), 2);
    assert_non_null(strstr(errout, "--name is required"));
    assert_int_equal(run("keys", "create", "--db", fresh, "--name", "x", "--rpm", NULL), 2); /* missing value */
    assert_int_equal(run("keys", "frobnicate", "--db", fresh, NULL), 2);
    assert_int_equal(run("keys", "list", "--db", fresh, "--rpm", "5", NULL), 2); /* option of another command */
    assert_int_equal(run("keys", "show", "not-a-key", "--db", fresh, NULL), 2);
    assert_int_equal(run("keys", "show", "--db", fresh, NULL), 2);
    assert_int_equal(run("keys", "update", "key_AAAAAAAAAAAAAAAAAAAA", "--db", fresh, NULL), 2); /* nothing to change */
    assert_int_equal(run("keys", "--db", fresh, "--config", "x.json", "list", NULL), 2);
    assert_int_equal(run("keys", "--db", fresh, NULL), 2);
    assert_int_equal(run("usage", "--db", fresh, "--by", "color", NULL), 2);
    assert_int_equal(run("usage", "--db", fresh, "--since", "2024-13-45", NULL), 2);
    assert_int_equal(run("usage", "--db", fresh, "--since", "2023-02-29", NULL), 2);
    assert_int_equal(run("usage", "--db", fresh, "--since", "yesterday", NULL), 2);
    assert_int_equal(run("usage", "--db", fresh, "--since", "2024-02-01", "--until", "2024-01-01", NULL), 2);
    assert_int_equal(run("usage", "--db", fresh, "--key", "x'; DROP TABLE keys;--", NULL), 2);
    /* nothing above touched the disk */
    assert_int_equal(stat(fresh, &st), -1);

    /* a SQL-looking name is valid input and stored verbatim */
    snprintf(id, sizeof(id), "%s", create_key("x'); DROP TABLE keys;--"));
    lg_key_record_t *k = stored_key(id);
    assert_string_equal(k->name, "x'); DROP TABLE keys;--");
    lg_key_record_free(k);
    assert_int_equal(run("keys", "list", "--db", dbpath, NULL), 0);
    long_name[256] = '\0';
    assert_int_equal(run("keys", "create", "--db", dbpath, "--name", long_name, NULL), 0); /* exactly 256 bytes is fine */
    assert_int_equal(run("keys", "--help", NULL), 0);
    assert_non_null(strstr(out, "llmgate keys create"));
}

static void test_cli_usage_report(void **state)
{
    char err[512], path[PATH_MAX];
    lg_generation_row_t rows[3];
    (void)state;

    snprintf(path, sizeof(path), "%s/usage.db", tmpdir);
    lg_store_t *s = lg_store_open(path, err, sizeof(err));
    assert_non_null(s);
    memset(rows, 0, sizeof(rows));
    for (int i = 0; i < 3; ++i) {
        snprintf(rows[i].id, sizeof(rows[i].id), "gen-%d", i);
        rows[i].created_at_ms = (int64_t)1717236000000 + i * 86400000LL; /* 2024-06-01T10:00Z + i days */
        snprintf(rows[i].key_id, sizeof(rows[i].key_id), "key_%s", i == 2 ? "BBBBBBBBBBBBBBBBBBBB" : "AAAAAAAAAAAAAAAAAAAA");
        snprintf(rows[i].served_model, sizeof(rows[i].served_model), i == 0 ? "m/a" : "m/b");
        snprintf(rows[i].provider, sizeof(rows[i].provider), "p");
        rows[i].prompt_tokens = 10 * (i + 1);
        rows[i].completion_tokens = i + 1;
        rows[i].cost_pico = 250000000000LL * (i + 1); /* 0.25 USD per step */
    }
    assert_int_equal(lg_store_insert_generations(s, rows, 3), 0);
    lg_store_close(s);

    assert_int_equal(run("usage", "--db", path, "--by", "model", "--json", NULL), 0);
    json_t *j = out_json();
    assert_int_equal(json_array_size(json_object_get(j, "data")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "requests")), 3);
    assert_true(json_real_value(json_object_get(json_object_get(j, "total"), "cost")) == 1.5);
    json_decref(j);

    assert_int_equal(run("usage", "--db", path, "--key", "key_AAAAAAAAAAAAAAAAAAAA", "--since", "2024-06-02", "--until",
                         "2024-06-02", "--json", NULL),
                     0);
    j = out_json();
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "requests")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "prompt_tokens")), 20);
    json_decref(j);

    assert_int_equal(run("usage", "--db", path, "--by", "day", NULL), 0);
    assert_non_null(strstr(out, "2024-06-01"));
    assert_non_null(strstr(out, "2024-06-03"));
    assert_non_null(strstr(out, "total"));
    assert_non_null(strstr(out, "1.50")); /* exact USD, not 1.4999999 */
    assert_int_equal(run("usage", "--db", path, "--since", "-7d", "--provider", "nobody", NULL), 0);
}

static void test_cli_config_store_path(void **state)
{
    char dir[1024], cfg[PATH_MAX], db[PATH_MAX];
    struct stat st;
    (void)state;

    snprintf(dir, sizeof(dir), "%s/conf", tmpdir);
    mkdir(dir, 0755);
    snprintf(cfg, sizeof(cfg), "%s/gw.json", dir);
    FILE *fp = fopen(cfg, "w");
    assert_non_null(fp);
    fputs("{\"store\": {\"path\": \"data/keys.db\"}}", fp);
    fclose(fp);
    assert_int_equal(run("keys", "list", "--config", cfg, NULL), 0);
    snprintf(db, sizeof(db), "%s/data/keys.db", dir); /* relative to the config file's folder */
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(run("keys", "list", "--config", "/nonexistent/gw.json", NULL), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_create_shows_secret_once), cmocka_unit_test(test_cli_update_disable_enable_delete),
        cmocka_unit_test(test_cli_bad_input_exits_2),        cmocka_unit_test(test_cli_usage_report),
        cmocka_unit_test(test_cli_config_store_path),
    };
    return cmocka_run_group_tests_name("cli_keys", tests, setup, teardown);
}
