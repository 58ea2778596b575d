/* SPDX-License-Identifier: MIT */
/*
 * ABI test plugin whose init refuses to start: the loader must report
 * "init failed: <the plugin's own message>" and unload it.
 */
#include <stdio.h>
#include "llmgate/plugin.h"

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    (void)host;
    *out = NULL;
    snprintf(err->msg, sizeof(err->msg), "abi_init_fails: required CPU feature missing");
    return LG_EUNSUPPORTED;
}
