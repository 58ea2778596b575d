/* SPDX-License-Identifier: MIT */
/*
 * Shared by the translating ingress skins: see ingress_common.h.
 */
#include "http/ingress_common.h"

static const char *const routing_fields[] = {"models", "provider", "route",      "transforms", "plugins",
                                             "usage",  "debug",    "session_id", "trace",      NULL};

void lg__ingress_copy_routing_fields(const json_t *in, json_t *out)
{
    json_t *v;
    for (size_t k = 0; routing_fields[k] != NULL; ++k)
        if ((v = json_object_get(in, routing_fields[k])) != NULL)
            json_object_set(out, routing_fields[k], v);
}
