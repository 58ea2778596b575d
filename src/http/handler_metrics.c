/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: the Prometheus exposition, plus the gauges read at scrape time
 * from the live stats (in-flight and queue depth per provider, endpoint
 * health and EWMAs, gateway in-flight requests, ledger queue and API keys).
 */
#include <stdlib.h>
#include <string.h>
#include "auth/gate.h"
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
    lg_metrics_write_gauge(w, "llmgate_endpoint_error_rate", "EWMA of the attempt failure rate", lg_stats_get(&s->error_ewma_bits),
                           "provider", s->provider, "model", s->model, NULL);
}

/* The ledger queue and writer (store/ledger.h): a full queue drops rows (never blocks the event loop), so drops must be
 * visible here; and the API key count from the in-memory table. */
static void ledger_metrics(lg_metrics_writer_t *w)
{
    lg_ledger_t *l = lg_gate_ledger();
    if (l != NULL) {
        lg_ledger_stats_t st;
        lg_ledger_stats(l, &st);
        lg_metrics_write_gauge(w, "llmgate_ledger_queue_depth", "Ledger rows waiting for the writer thread", (double)st.depth,
                               NULL);
        lg_metrics_write_gauge(w, "llmgate_ledger_queue_capacity", "Ledger queue capacity (rows; beyond it rows are dropped)",
                               (double)st.capacity, NULL);
        lg_metrics_write_counter(w, "llmgate_ledger_rows_submitted_total", "Ledger rows accepted into the queue",
                                 (double)st.submitted, NULL);
        lg_metrics_write_counter(w, "llmgate_ledger_rows_committed_total", "Ledger rows durably committed to the store",
                                 (double)st.committed, NULL);
        lg_metrics_write_counter(w, "llmgate_ledger_rows_dropped_total",
                                 "Ledger rows lost: queue full, shutting down, or commit retries exhausted", (double)st.dropped,
                                 NULL);
        lg_metrics_write_counter(w, "llmgate_ledger_batches_total", "Ledger transactions committed", (double)st.batches, NULL);
        lg_metrics_write_gauge(w, "llmgate_ledger_last_commit_timestamp_seconds", "Unix time of the last ledger commit (0 = none)",
                               (double)st.last_commit_ms / 1000.0, NULL);
    }
    lg_keytable_t *keys = lg_gate_keys();
    if (keys != NULL)
        lg_metrics_write_gauge(w, "llmgate_api_keys", "API keys loaded in the gateway's key table (not deleted)",
                               (double)lg_keytable_count(keys), NULL);
}

static void gateway_gauges(lg_metrics_writer_t *w, void *arg)
{
    (void)arg;
    lg_metrics_write_gauge(w, "llmgate_in_flight_requests", "Client requests being handled", (double)lg_server_in_flight(), NULL);
    lg_metrics_write_gauge(w, "llmgate_workers", "Worker threads", (double)lg_server_num_workers(), NULL);
    lg_stats_foreach_provider(provider_gauges, w);
    lg_stats_foreach_endpoint(endpoint_gauges, w);
    ledger_metrics(w);
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
