/* SPDX-License-Identifier: MIT */
/*
 * Provider slug matching for routing lists (provider.order / only / ignore),
 * used by the router's hard filters and the policy's built-in order alike.
 */
#include <string.h>
#include "domain/candidate.h"

int lg_provider_slug_matches(const char *entry, const char *provider)
{
    size_t n = strlen(entry);
    if (strcmp(entry, provider) == 0)
        return 1;
    return strncmp(entry, provider, n) == 0 && provider[n] == '/';
}
