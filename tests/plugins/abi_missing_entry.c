/* SPDX-License-Identifier: MIT */
/*
 * ABI test plugin without the entry point (it exports a misspelt one): the
 * loader must refuse it with "missing entry point lg_plugin_init".
 */
#include "llmgate/plugin.h"

LG_PLUGIN_EXPORT int lg_plugin_initialize(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

LG_PLUGIN_EXPORT int lg_plugin_initialize(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    (void)host, (void)err;
    *out = NULL;
    return 0;
}
