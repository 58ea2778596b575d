/* SPDX-License-Identifier: MIT */
/*
 * Forwarder for src/http/exchange.c only, while that file is being split: the
 * generation request moved to the domain layer (domain/request.h), and the
 * router now takes the snapshot's catalog instead of the snapshot (the
 * snapshot lives in the runtime layer, above the router). New code includes
 * domain/request.h and calls lg_router_candidates(&snap->catalog, ...).
 * TODO(#8): delete this file with the exchange split.
 */
#ifndef LG_HTTP_REQUEST_H
#define LG_HTTP_REQUEST_H

#include "domain/request.h"
#include "router/router.h"
#include "runtime/snapshot.h"

/* declared above first, so this only rewrites the old call spelling */
#define lg_router_candidates(snap, ...) lg_router_candidates(&(snap)->catalog, __VA_ARGS__)

#endif
