/* SPDX-License-Identifier: MIT */
/* Probe for layering_include_roots: found from http's include root, "No such file" from the router's. */
#include "core/util.h"
#include "http/abuse.h"

int lg_layering_probe(void);
int lg_layering_probe(void)
{
    return LG_ABUSE_SLOTS;
}
