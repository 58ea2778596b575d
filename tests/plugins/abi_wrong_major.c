/* SPDX-License-Identifier: MIT */
/*
 * ABI test plugin built for a future major version: the loader must refuse it
 * with "ABI major 2, host supports 1" before touching any callback.
 */
#include "llmgate/plugin.h"

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .capabilities = LG_CAP_CHAT,
    .name = "abi_wrong_major",
    .version = "2.0.0",
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    (void)host, (void)err;
    *out = &provider;
    return 0;
}
