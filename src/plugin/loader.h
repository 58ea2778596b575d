/* SPDX-License-Identifier: MIT */
/*
 * Provider plugin loader (Redis-module style): resolve a plugin name to a
 * .so, dlopen it RTLD_NOW|RTLD_LOCAL, call its one entry point with the host
 * function table, and refuse it with a reason naming the file when the ABI
 * does not match. Called from the main thread at config (re)load only.
 */
#ifndef LG_PLUGIN_LOADER_H
#define LG_PLUGIN_LOADER_H

#include "llmgate/plugin.h"

typedef struct lg_plugin {
    char *path;                    /* resolved file */
    void *dl;                      /* dlopen handle */
    const lg_provider_t *provider; /* the plugin's table, valid until unload */
} lg_plugin_t;

/** The host function table handed to every plugin (static storage). */
const lg_host_api_t *lg_plugin_host_api(void);

/**
 * Resolve "openai" → "<dir>/openai.so"; a value containing '/' or ending in ".so" is a path used as-is. dir NULL =
 * built-in search path: $LLMGATE_PLUGIN_DIR, then "<exe dir>/plugins", then the install libdir. Writes the path to out.
 * Returns 0 or LG_ENOTFOUND.
 */
int lg_plugin_resolve(const char *name_or_path, const char *dir, char *out, size_t outlen);

/**
 * Load a plugin file. Refusals (err names the file and the reason): not a regular file / not readable, dlopen failure,
 * missing entry point, init failure (with the plugin's own message), NULL table, ABI major mismatch, plugin minor newer
 * than the host, struct_size below the minimum for its version, missing required callbacks. Returns 0 or an lg_err_t.
 */
int lg_plugin_load(const char *path, lg_plugin_t **out, char *err, size_t errlen);
void lg_plugin_unload(lg_plugin_t *p);

/**
 * The table's ABI 1.1 wire_passthrough callback, or NULL when the plugin was built for ABI 1.0 (its table ends before
 * the member) or does not set it. Reading it through here keeps 1.0 plugins working.
 */
static inline int (*lg_provider_wire_fn(const lg_provider_t *t))(void *, const lg_call_t *)
{
    if (t->abi_minor < 1 || t->struct_size < LG_PROVIDER_MIN_SIZE_1_1)
        return NULL;
    return t->wire_passthrough;
}

#endif
