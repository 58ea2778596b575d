/* SPDX-License-Identifier: MIT */
/*
 * Route dispatch and the route handlers. Every route exists under /v1 and
 * under OpenRouter's /api/v1 spelling.
 */
#ifndef LG_HTTP_HANDLERS_H
#define LG_HTTP_HANDLERS_H

#include <h2o.h>
#include <jansson.h>
#include "runtime/worker.h"
#include "store/store.h"

/** h2o on_req for the whole server. */
int lg_handle_request(h2o_handler_t *self, h2o_req_t *req);

void lg_handle_health(lg_worker_t *w, h2o_req_t *req);
/** GET /v1/models: OpenRouter's Model list with its query filters and {data, total_count, links} envelope. */
void lg_handle_models(lg_worker_t *w, h2o_req_t *req);
/** GET /v1/models/count: {data:{count}} under the same filters. */
void lg_handle_models_count(lg_worker_t *w, h2o_req_t *req);
/** One model by "author/slug" (variant suffix allowed): {data: Model} (OpenRouter's /model/{author}/{slug}), or, with
 * openai_shape, the Model object itself with OpenAI's object/owned_by (/models/{author}/{slug}, models.retrieve). */
void lg_handle_model_get(lg_worker_t *w, h2o_req_t *req, const char *id, size_t len, int openai_shape);
/** GET /v1/providers: the configured providers in OpenRouter's Provider shape. */
void lg_handle_providers(lg_worker_t *w, h2o_req_t *req);
/** POST /v1/messages/count_tokens: {"input_tokens": N} for an Anthropic Messages body, Anthropic's error shape. */
void lg_handle_count_tokens(lg_worker_t *w, h2o_req_t *req);
/** GET /v1/credits: the calling key's credit limit and usage, {data:{total_credits, total_usage}}. */
void lg_handle_credits(lg_worker_t *w, h2o_req_t *req);
void lg_handle_metrics(lg_worker_t *w, h2o_req_t *req);
/** Register the scrape-time gauges (main thread, once). */
void lg_metrics_register_gateway_collectors(void);
void lg_handle_model_endpoints(lg_worker_t *w, h2o_req_t *req, const char *model_id, size_t len);
struct lg_skin;
/** POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/messages, /v1/responses: one generation through the
 * pipeline, parsed and answered by the route's ingress skin (http/skins.h). */
void lg_handle_generate(lg_worker_t *w, h2o_req_t *req, const struct lg_skin *skin);
/** The generate route with shared admission first when a cluster is configured (cluster_admit.c); else the above. */
void lg_handle_generate_shared(lg_worker_t *w, h2o_req_t *req, const struct lg_skin *skin);

/** GET /v1/generation?id=gen-... (and /api/v1/generation): the ledger row of one generation, OpenRouter's shape. */
void lg_handle_generation(lg_worker_t *w, h2o_req_t *req);
/** GET /v1/key, /api/v1/key, /api/v1/auth/key: the calling key's label, limits and usage (OpenRouter's /key shape). */
void lg_handle_key(lg_worker_t *w, h2o_req_t *req);
/** /api/admin/...: rest is the path after "/api/admin" ("" or "/keys", "/keys/{id}", ...). Checks the admin key. */
void lg_handle_admin(lg_worker_t *w, h2o_req_t *req, const char *rest, size_t len);

/**
 * Work on the store, off the event loop. run is called on a libuv threadpool thread with a store connection from a
 * small process-wide pool (or NULL when the database cannot be opened: run must then answer 500); it must not touch
 * the request, the worker or any other event-loop state, only data. It returns the HTTP status and sets *body to the
 * whole response document (a new reference; {"data":...} or an lg_error_json() object). Back on the worker's loop the
 * response is sent if the request is still alive (a client that left is detected with a dispose hook on req->pool),
 * then free_data(data) runs (free_data may be NULL). The request counts as in flight until then, so a graceful
 * shutdown waits for it. Worker thread only.
 */
typedef int (*lg_store_work_fn)(lg_store_t *store, void *data, json_t **body);
void lg__http_store_work(lg_worker_t *w, h2o_req_t *req, lg_store_work_fn run, void *data, void (*free_data)(void *));
/** Send a JSON document with any status (201/202 get their reason phrase); steals obj. */
void lg__http_respond_status(h2o_req_t *req, int status, json_t *obj);
/** Endpoint view with live stats (shared by /v1/models/{id}/endpoints and the admin provider view). */
json_t *lg__http_endpoint_json(const lg_snapshot_t *snap, size_t mi, size_t ei, int64_t now);

/** Set up the worker's pipeline state (after its loop and upstream client exist). Worker thread. */
void lg__http_pipeline_init(lg_worker_t *w);

#endif
