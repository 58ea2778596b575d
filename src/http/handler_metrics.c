/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the Prometheus exposition, plus the gauges read at scrape time
 * from the live stats (in-flight and queue depth per provider, endpoint
 * health and EWMAs, gateway in-flight requests).
 */
#include <stdlib.h>
#include "core/util.h"
#include "http/handlers.h"
#include "http/respond.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "router/stats.h"

static void provider_gauges(const lg_provider_stats_t *p, void *arg)
{
    lg_metrics_writer_t *w = arg;
    lg_metrics_write_gauge(w, "llmgate_provider_in_flight", "Upstream requests in flight per provider",
                           (double)atomic_load(&p->in_flight), "provider", p->name, NULL);
    lg_metrics_write_gauge(w, "llmgate_provider_queue_depth", "Requests waiting for a provider concurrency slot",
                           (double)atomic_load(&p->queued), "provider", p->name, NULL);
}

static void endpoint_gauges(const lg_endpoint_stats_t *s, void *arg)
{
    lg_metrics_writer_t *w = arg;
    int64_t now = lg_now_ms();
    lg_metrics_write_gauge(w, "llmgate_endpoint_healthy", "1 while the endpoint is routable, 0 while in failure cooldown",
                           lg_stats_healthy(s, now) ? 1 : 0, "provider", s->provider, "model", s->model, NULL);
    lg_metrics_write_gauge(w, "llmgate_endpoint_consecutive_failures", "Consecutive failed attempts on the endpoint",
                           (double)atomic_load(&s->consecutive_failures), "provider", s->provider, "model", s->model, NULL);
    lg_metrics_write_gauge(w, "llmgate_endpoint_latency_ewma_seconds", "EWMA of attempt latency",
                           lg_stats_get(&s->latency_ewma_bits) / 1000.0, "provider", s->provider, "model", s->model, NULL);
    lg_metrics_write_gauge(w, "llmgate_endpoint_ttft_ewma_seconds", "EWMA of time to first token",
                           lg_stats_get(&s->ttft_ewma_bits) / 1000.0, "provider", s->provider, "model", s->model, NULL);
    lg_metrics_write_gauge(w, "llmgate_endpoint_error_rate", "EWMA of the attempt failure rate",
                           lg_stats_get(&s->error_ewma_bits), "provider", s->provider, "model", s->model, NULL);
}

static void gateway_gauges(lg_metrics_writer_t *w, void *arg)
{
    (void)arg;
    lg_metrics_write_gauge(w, "llmgate_in_flight_requests", "Client requests being handled", (double)lg_server_in_flight(),
                           NULL);
    lg_metrics_write_gauge(w, "llmgate_workers", "Worker threads", (double)lg_server_num_workers(), NULL);
    lg_stats_foreach_provider(provider_gauges, w);
    lg_stats_foreach_endpoint(endpoint_gauges, w);
}

void lg_metrics_register_gateway_collectors(void)
{
    lg_metrics_add_collector(gateway_gauges, NULL);
}

void lg_handle_metrics(lg_worker_t *w, h2o_req_t *req)
{
    (void)w;
    size_t len;
    char *text = lg_metrics_render(&len);
    lg_respond_raw(req, 200, LG_METRICS_CONTENT_TYPE, text, len);
    free(text);
}
