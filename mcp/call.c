/* SPDX-License-Identifier: MIT */
/*
 * Read-only facts about a call for providers (registry.h): its era, its
 * params, its endpoint. Kept apart from the call lifecycle in server.c so a
 * provider that only reads these (the 2026-07-28 fixtures) does not drag the
 * whole server core into a unit test that fakes the call API.
 */
#include <string.h>
#include "mcp/era.h"
#include "mcp/server.h"

int lg_mcp_call_modern(const lg_mcp_call_t *c)
{
    return strcmp(lg_mcp_session_version(c->session), LG_MCP_MODERN_VERSION) == 0;
}

const char *lg_mcp_call_server(const lg_mcp_call_t *c)
{
    return lg_mcp_registry_name(c->reg);
}

const json_t *lg_mcp_call_params(const lg_mcp_call_t *c)
{
    return c->params;
}
