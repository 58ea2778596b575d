/* SPDX-License-Identifier: MIT */
/*
 * Provider plugin loader (Redis moduleLoad style): resolve a name to a file,
 * check it, dlopen RTLD_NOW|RTLD_LOCAL, call lg_plugin_init with the host
 * table and validate the returned provider table. Every refusal names the
 * file and the exact reason and leaves nothing loaded.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/log.h"
#include "core/util.h"
#include "plugin/loader.h"

static int is_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n >= 3 && strcmp(s + n - 3, ".so") == 0);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Writes "<dir>/<name>.so"; returns 0 if it fit. */
static int join(char *out, size_t outlen, const char *dir, size_t dirlen, const char *name)
{
    while (dirlen > 1 && dir[dirlen - 1] == '/')
        --dirlen;
    int n = snprintf(out, outlen, "%.*s/%s.so", (int)dirlen, dir, name);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* Tries each entry of a ':'-separated list; on success the path is in out. */
static int try_dirs(const char *dirs, const char *name, char *out, size_t outlen, int *wrote)
{
    const char *p = dirs;
    while (*p != '\0') {
        size_t len = strcspn(p, ":");
        if (len != 0 && join(out, outlen, p, len, name) == 0) {
            *wrote = 1;
            if (file_exists(out))
                return 0;
        }
        p += len;
        if (*p == ':')
            ++p;
    }
    return -1;
}

int lg_plugin_resolve(const char *name_or_path, const char *dir, char *out, size_t outlen)
{
    char first[PATH_MAX] = "";
    int wrote = 0;

    if (name_or_path == NULL || *name_or_path == '\0' || out == NULL || outlen == 0)
        return LG_ENOTFOUND;
    if (is_path(name_or_path)) {
        int n = snprintf(out, outlen, "%s", name_or_path);
        return n > 0 && (size_t)n < outlen ? 0 : LG_ENOTFOUND;
    }
    if (dir != NULL) {
        if (join(out, outlen, dir, strlen(dir), name_or_path) != 0)
            return LG_ENOTFOUND;
        return file_exists(out) ? 0 : LG_ENOTFOUND;
    }

    /* 1. $LLMGATE_PLUGIN_DIR (may be a ':'-separated list) */
    const char *env = getenv("LLMGATE_PLUGIN_DIR");
    if (env != NULL && *env != '\0') {
        if (try_dirs(env, name_or_path, out, outlen, &wrote) == 0)
            return 0;
        if (wrote)
            snprintf(first, sizeof(first), "%s", out);
    }
    /* 2. <dir of the executable>/plugins (build tree and relocatable installs) */
    char exe[PATH_MAX];
    if (lg_exe_dir(exe, sizeof(exe)) == 0) {
        char plugdir[PATH_MAX];
        if (snprintf(plugdir, sizeof(plugdir), "%s/plugins", exe) < (int)sizeof(plugdir)) {
            wrote = 0;
            if (try_dirs(plugdir, name_or_path, out, outlen, &wrote) == 0)
                return 0;
            if (wrote && first[0] == '\0')
                snprintf(first, sizeof(first), "%s", out);
        }
    }
    /* 3. the install libdir */
#ifdef LG_INSTALL_PLUGIN_DIR
    wrote = 0;
    if (try_dirs(LG_INSTALL_PLUGIN_DIR, name_or_path, out, outlen, &wrote) == 0)
        return 0;
    if (wrote && first[0] == '\0')
        snprintf(first, sizeof(first), "%s", out);
#endif
    /* not found: leave the first candidate in out so the caller can name it */
    snprintf(out, outlen, "%s", first[0] != '\0' ? first : name_or_path);
    return LG_ENOTFOUND;
}

static int refuse(char *err, size_t errlen, const char *path, int rc, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int refuse(char *err, size_t errlen, const char *path, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen != 0) {
        int n = snprintf(err, errlen, "%s: ", path);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return rc;
}

/* Checks the table the plugin returned; returns 0 or writes the reason. */
static int check_table(const lg_provider_t *t, const char *path, char *err, size_t errlen)
{
    if (t == NULL)
        return refuse(err, errlen, path, LG_EINVAL, "init returned no provider table");
    /* the four leading uint32_t members exist in every version of the struct */
    if (t->abi_major != LG_PLUGIN_ABI_MAJOR)
        return refuse(err, errlen, path, LG_EINVAL, "ABI major %u, host supports %u", (unsigned)t->abi_major,
                      (unsigned)LG_PLUGIN_ABI_MAJOR);
    if (t->abi_minor > LG_PLUGIN_ABI_MINOR)
        return refuse(err, errlen, path, LG_EINVAL, "plugin needs ABI %u.%u, host has %u.%u", (unsigned)t->abi_major,
                      (unsigned)t->abi_minor, (unsigned)LG_PLUGIN_ABI_MAJOR, (unsigned)LG_PLUGIN_ABI_MINOR);
    /* each minor appends members and raises the minimum for its version */
    if (t->struct_size < LG_PROVIDER_MIN_SIZE_1_0)
        return refuse(err, errlen, path, LG_EINVAL, "provider table too small (%u bytes, ABI 1.0 needs at least %zu)",
                      (unsigned)t->struct_size, (size_t)LG_PROVIDER_MIN_SIZE_1_0);
    if (t->abi_minor >= 1 && t->struct_size < LG_PROVIDER_MIN_SIZE_1_1)
        return refuse(err, errlen, path, LG_EINVAL, "provider table too small (%u bytes, ABI 1.1 needs at least %zu)",
                      (unsigned)t->struct_size, (size_t)LG_PROVIDER_MIN_SIZE_1_1);
    /* the pass-through promise needs its callback */
    if ((t->capabilities & LG_CAP_WIRE_OPENAI) != 0 && lg_provider_wire_fn(t) == NULL)
        return refuse(err, errlen, path, LG_EINVAL, "LG_CAP_WIRE_OPENAI without wire_passthrough (ABI 1.1)");
    if (t->name == NULL || t->name[0] == '\0')
        return refuse(err, errlen, path, LG_EINVAL, "provider table has no name");
#define REQUIRE(member)                                                                                                            \
    do {                                                                                                                           \
        if (t->member == NULL)                                                                                                     \
            return refuse(err, errlen, path, LG_EINVAL, "missing required callback " #member);                                     \
    } while (0)
    REQUIRE(create);
    REQUIRE(destroy);
    REQUIRE(classify_error);
    /* local providers produce wire bytes that go through the same parse path */
    REQUIRE(parse_response);
    if ((t->capabilities & LG_CAP_LOCAL) == 0)
        REQUIRE(build_request);
#undef REQUIRE
    if ((t->capabilities & LG_CAP_LOCAL) != 0 && t->local_respond == NULL)
        return refuse(err, errlen, path, LG_EINVAL, "LG_CAP_LOCAL without local_respond");
    if ((t->capabilities & LG_CAP_STREAM) != 0 &&
        (t->stream_begin == NULL || t->parse_stream_event == NULL || t->stream_end == NULL || t->stream_free == NULL))
        return refuse(err, errlen, path, LG_EINVAL,
                      "LG_CAP_STREAM without stream callbacks (stream_begin, parse_stream_event, stream_end, stream_free)");
    if ((t->capabilities & (LG_CAP_CHAT | LG_CAP_COMPLETIONS | LG_CAP_EMBEDDINGS)) == 0)
        return refuse(err, errlen, path, LG_EINVAL, "no API capability (LG_CAP_CHAT, LG_CAP_COMPLETIONS or LG_CAP_EMBEDDINGS)");
    return 0;
}

int lg_plugin_load(const char *path, lg_plugin_t **out, char *err, size_t errlen)
{
    struct stat st;
    char dlpath[PATH_MAX];

    if (out != NULL)
        *out = NULL;
    if (err != NULL && errlen != 0)
        err[0] = '\0';
    if (path == NULL || *path == '\0' || out == NULL)
        return refuse(err, errlen, path != NULL ? path : "(null)", LG_EINVAL, "no plugin path");

    if (stat(path, &st) != 0) {
        int e = errno;
        return refuse(err, errlen, path, e == ENOENT ? LG_ENOTFOUND : LG_EINVAL, "cannot access plugin: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode))
        return refuse(err, errlen, path, LG_EINVAL, "not a regular file");
    if (access(path, R_OK) != 0)
        return refuse(err, errlen, path, LG_EINVAL, "not readable: %s", strerror(errno));

    /* dlopen searches the library path for names without '/': force a file path */
    if (snprintf(dlpath, sizeof(dlpath), "%s%s", strchr(path, '/') != NULL ? "" : "./", path) >= (int)sizeof(dlpath))
        return refuse(err, errlen, path, LG_EINVAL, "path too long");

    dlerror();
    void *dl = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *why = dlerror();
        return refuse(err, errlen, path, LG_EINVAL, "dlopen failed: %s", why != NULL ? why : "unknown error");
    }

    lg_plugin_init_fn init;
    /* POSIX: converting void * to a function pointer is allowed for dlsym results; memcpy avoids -Wpedantic noise */
    void *sym = dlsym(dl, LG_PLUGIN_ENTRY);
    if (sym == NULL) {
        dlclose(dl);
        return refuse(err, errlen, path, LG_EINVAL, "missing entry point " LG_PLUGIN_ENTRY);
    }
    memcpy(&init, &sym, sizeof(init));

    const lg_provider_t *table = NULL;
    lg_errbuf_t perr;
    memset(&perr, 0, sizeof(perr));
    int rc = init(lg_plugin_host_api(), &table, &perr);
    if (rc != 0) {
        perr.msg[sizeof(perr.msg) - 1] = '\0';
        dlclose(dl);
        return refuse(err, errlen, path, LG_EINVAL, "init failed: %s", perr.msg[0] != '\0' ? perr.msg : "no reason given");
    }
    rc = check_table(table, path, err, errlen);
    if (rc != 0) {
        dlclose(dl);
        return rc;
    }

    lg_plugin_t *p = calloc(1, sizeof(*p));
    char *copy = strdup(path);
    if (p == NULL || copy == NULL) {
        free(p);
        free(copy);
        dlclose(dl);
        return refuse(err, errlen, path, LG_EINTERNAL, "out of memory");
    }
    p->path = copy;
    p->dl = dl;
    p->provider = table;
    LG_LOG(LG_LOG_INFO, "plugin", "loaded %s (%s %s, ABI %u.%u)", path, table->name, table->version != NULL ? table->version : "?",
           (unsigned)table->abi_major, (unsigned)table->abi_minor);
    *out = p;
    return 0;
}

void lg_plugin_unload(lg_plugin_t *p)
{
    if (p == NULL)
        return;
    if (p->dl != NULL)
        dlclose(p->dl);
    free(p->path);
    free(p);
}
