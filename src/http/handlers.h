/* SPDX-License-Identifier: MIT */
/*
 * Route dispatch and the route handlers. Every route exists under /v1 and
 * under OpenRouter's /api/v1 spelling.
 */
#ifndef LG_HTTP_HANDLERS_H
#define LG_HTTP_HANDLERS_H

#include <h2o.h>
#include "http/worker.h"

/** h2o on_req for the whole server. */
int lg_handle_request(h2o_handler_t *self, h2o_req_t *req);

void lg_handle_health(lg_worker_t *w, h2o_req_t *req);
void lg_handle_models(lg_worker_t *w, h2o_req_t *req);
void lg_handle_metrics(lg_worker_t *w, h2o_req_t *req);
/** Register the scrape-time gauges (main thread, once). */
void lg_metrics_register_gateway_collectors(void);
void lg_handle_model_endpoints(lg_worker_t *w, h2o_req_t *req, const char *model_id, size_t len);
/** POST /v1/chat/completions, /v1/completions, /v1/embeddings (kind is an lg_api_kind_t), and /v1/messages
 * (anthropic = 1: Anthropic Messages request and response shapes, routed like chat). */
void lg_handle_generate(lg_worker_t *w, h2o_req_t *req, int kind, int anthropic);

/** Worker bookkeeping for requests that outlive on_req. */
void lg__worker_request_begin(lg_worker_t *w);
void lg__worker_request_done(lg_worker_t *w);

#endif
