/* SPDX-License-Identifier: MIT */
/*
 * ABI test plugin whose provider table claims to be shorter than ABI 1.0
 * requires (a truncated struct): the loader must refuse it with
 * "provider table too small" and never read the missing members.
 */
#include <stddef.h>
#include "llmgate/plugin.h"

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err);

static const lg_provider_t provider = {
    .struct_size = offsetof(lg_provider_t, classify_error), /* ends before classify_error */
    .abi_major = LG_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .capabilities = LG_CAP_CHAT,
    .name = "abi_small_struct",
    .version = "1.0.0",
};

LG_PLUGIN_EXPORT int lg_plugin_init(const lg_host_api_t *host, const lg_provider_t **out, lg_errbuf_t *err)
{
    (void)host, (void)err;
    *out = &provider;
    return 0;
}
