/* SPDX-License-Identifier: MIT */
/*
 * ABI test plugin that needs a newer minor version than the host has: the
 * loader must refuse it ("plugin needs ABI 1.N, host has 1.M").
 */
#include "llmgate/plugin.h"

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

/* a 1.(N+1) table would be longer; the host must not read past what it knows anyway */
static const lg_provider_t provider = {
    .struct_size = sizeof(lg_provider_t),
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = LG_PLUGIN_ABI_MINOR + 1,
    .capabilities = LG_CAP_CHAT,
    .name = "abi_newer_minor",
    .version = "1.1.0",
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    (void)host, (void)err;
    *out = &provider;
    return 0;
}
