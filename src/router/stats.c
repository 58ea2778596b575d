/* SPDX-License-Identifier: MIT */
/*
 * Endpoint and provider statistics registry (see stats.h).
 */
#include <pthread.h>
#include <string.h>
#include "core/util.h"
#include "router/stats.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static lg_endpoint_stats_t *endpoints;
static lg_provider_stats_t *providers;

static const double EWMA_ALPHA = 0.2;
static lg_stats_unhealthy_hook_t *_Atomic unhealthy_hook;

void lg_stats_set_unhealthy_hook(lg_stats_unhealthy_hook_t *fn)
{
    atomic_store(&unhealthy_hook, fn);
}

void lg_stats_mark_unhealthy(lg_endpoint_stats_t *s, uint32_t cooldown_ms)
{
    int64_t until = lg_now_ms() + cooldown_ms, cur = atomic_load_explicit(&s->unhealthy_until_ms, memory_order_relaxed);
    while (cur < until &&
           !atomic_compare_exchange_weak_explicit(&s->unhealthy_until_ms, &cur, until, memory_order_relaxed, memory_order_relaxed))
        ;
    atomic_store_explicit(&s->last_failure_ms, lg_now_ms(), memory_order_relaxed);
}

lg_endpoint_stats_t *lg_stats_endpoint(const char *provider, const char *model)
{
    pthread_mutex_lock(&registry_lock);
    lg_endpoint_stats_t *s;
    for (s = endpoints; s != NULL; s = s->next)
        if (strcmp(s->provider, provider) == 0 && strcmp(s->model, model) == 0)
            break;
    if (s == NULL) {
        s = lg_malloc(sizeof(*s));
        memset(s, 0, sizeof(*s));
        s->provider = lg_strdup(provider);
        s->model = lg_strdup(model);
        s->next = endpoints;
        endpoints = s;
    }
    pthread_mutex_unlock(&registry_lock);
    return s;
}

lg_provider_stats_t *lg_stats_provider(const char *name)
{
    pthread_mutex_lock(&registry_lock);
    lg_provider_stats_t *p;
    for (p = providers; p != NULL; p = p->next)
        if (strcmp(p->name, name) == 0)
            break;
    if (p == NULL) {
        p = lg_malloc(sizeof(*p));
        memset(p, 0, sizeof(*p));
        p->name = lg_strdup(name);
        p->next = providers;
        providers = p;
    }
    pthread_mutex_unlock(&registry_lock);
    return p;
}

double lg_stats_get(const _Atomic uint64_t *bits)
{
    uint64_t v = atomic_load_explicit(bits, memory_order_relaxed);
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

static void ewma_update(_Atomic uint64_t *bits, double sample)
{
    double cur = lg_stats_get(bits);
    double next = cur == 0 ? sample : cur + EWMA_ALPHA * (sample - cur);
    uint64_t v;
    memcpy(&v, &next, sizeof(v));
    atomic_store_explicit(bits, v, memory_order_relaxed);
}

static void ewma_blend(_Atomic uint64_t *bits, double sample)
{
    if (sample > 0)
        ewma_update(bits, sample);
}

void lg_stats_merge_remote(lg_endpoint_stats_t *s, double latency_ms, double ttft_ms, double tput, double error_rate)
{
    ewma_blend(&s->latency_ewma_bits, latency_ms);
    ewma_blend(&s->ttft_ewma_bits, ttft_ms);
    ewma_blend(&s->tput_ewma_bits, tput);
    if (error_rate >= 0 && error_rate <= 1) {
        double er = lg_stats_get(&s->error_ewma_bits), next = er + EWMA_ALPHA * (error_rate - er);
        uint64_t v;
        memcpy(&v, &next, sizeof(v));
        atomic_store_explicit(&s->error_ewma_bits, v, memory_order_relaxed);
    }
}

void lg_stats_success(lg_endpoint_stats_t *s, double latency_ms, double ttft_ms, int64_t completion_tokens)
{
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    atomic_store_explicit(&s->consecutive_failures, 0, memory_order_relaxed);
    atomic_store_explicit(&s->unhealthy_until_ms, 0, memory_order_relaxed);
    ewma_update(&s->latency_ewma_bits, latency_ms);
    if (ttft_ms >= 0)
        ewma_update(&s->ttft_ewma_bits, ttft_ms);
    double gen_ms = latency_ms - (ttft_ms >= 0 ? ttft_ms : 0);
    if (completion_tokens > 0 && gen_ms > 1)
        ewma_update(&s->tput_ewma_bits, (double)completion_tokens * 1000.0 / gen_ms);
    /* error rate decays towards 0 on success; the first success must not look like "no data" */
    double er = lg_stats_get(&s->error_ewma_bits);
    double next = er * (1 - EWMA_ALPHA);
    uint64_t v;
    memcpy(&v, &next, sizeof(v));
    atomic_store_explicit(&s->error_ewma_bits, v, memory_order_relaxed);
}

void lg_stats_failure(lg_endpoint_stats_t *s, uint32_t threshold, uint32_t cooldown_ms)
{
    int64_t now = lg_now_ms();
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
    atomic_store_explicit(&s->last_failure_ms, now, memory_order_relaxed);
    uint32_t n = atomic_fetch_add_explicit(&s->consecutive_failures, 1, memory_order_relaxed) + 1;
    if (threshold != 0 && n >= threshold) {
        atomic_store_explicit(&s->unhealthy_until_ms, now + cooldown_ms, memory_order_relaxed);
        lg_stats_unhealthy_hook_t *hook = atomic_load_explicit(&unhealthy_hook, memory_order_acquire);
        if (hook != NULL && n == threshold) /* once per outage: the first failure that crosses the threshold */
            hook(s, cooldown_ms);
    }
    double er = lg_stats_get(&s->error_ewma_bits);
    double next = er + EWMA_ALPHA * (1 - er);
    uint64_t v;
    memcpy(&v, &next, sizeof(v));
    atomic_store_explicit(&s->error_ewma_bits, v, memory_order_relaxed);
}

int lg_stats_healthy(const lg_endpoint_stats_t *s, int64_t now_ms)
{
    /* after the cooldown the endpoint counts as healthy again: the next request is the probe */
    return atomic_load_explicit(&s->unhealthy_until_ms, memory_order_relaxed) <= now_ms;
}

int lg_stats_acquire(lg_provider_stats_t *p, uint32_t max)
{
    if (max == 0) {
        atomic_fetch_add_explicit(&p->in_flight, 1, memory_order_relaxed);
        return 1;
    }
    uint32_t cur = atomic_load_explicit(&p->in_flight, memory_order_relaxed);
    while (cur < max) {
        if (atomic_compare_exchange_weak_explicit(&p->in_flight, &cur, cur + 1, memory_order_acq_rel, memory_order_relaxed))
            return 1;
    }
    return 0;
}

void lg_stats_release(lg_provider_stats_t *p)
{
    atomic_fetch_sub_explicit(&p->in_flight, 1, memory_order_acq_rel);
}

void lg_stats_foreach_endpoint(void (*fn)(const lg_endpoint_stats_t *s, void *arg), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (const lg_endpoint_stats_t *s = endpoints; s != NULL; s = s->next)
        fn(s, arg);
    pthread_mutex_unlock(&registry_lock);
}

void lg_stats_foreach_provider(void (*fn)(const lg_provider_stats_t *p, void *arg), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (const lg_provider_stats_t *p = providers; p != NULL; p = p->next)
        fn(p, arg);
    pthread_mutex_unlock(&registry_lock);
}
