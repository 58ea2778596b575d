/* SPDX-License-Identifier: MIT */
/* Probe for layering_include_roots: found from http's include root, "No such file" from the router's. */
#include "core/util.h"
#include "http/server.h"

int lg_layering_probe(void);
int lg_layering_probe(void)
{
    return (int)lg_server_num_workers();
}
