/* SPDX-License-Identifier: MIT */
/*
 * Soft performance preferences over the live stats (see preferences.h). The gateway keeps one EWMA per signal, not a
 * rolling percentile window: the EWMA stands in for every percentile the client names, so an endpoint is "below" when
 * its EWMA misses any threshold given (p50, p75, p90 or p99). Latency is time to first token (OpenRouter's
 * latency_last_30m), in seconds on the wire; the total-latency EWMA is used while no TTFT has been measured. An
 * endpoint without measurements yet is never moved: no data is not bad data.
 */
#include <string.h>
#include "router/preferences.h"

/* 1 if value misses the threshold spec (number or percentile object); higher_is_better picks the direction */
static int misses(const json_t *spec, double value, int higher_is_better)
{
    if (spec == NULL || value <= 0)
        return 0;
    if (json_is_number(spec)) {
        double t = json_number_value(spec);
        return higher_is_better ? value < t : value > t;
    }
    if (!json_is_object(spec))
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spec, k, v)
    {
        if (!json_is_number(v))
            continue;
        double t = json_number_value(v);
        if (higher_is_better ? value < t : value > t)
            return 1;
    }
    return 0;
}

int lg_router_below_preferences(const json_t *provider, const lg_candidate_t *c)
{
    if (provider == NULL)
        return 0;
    const json_t *tput = json_object_get(provider, "preferred_min_throughput");
    const json_t *lat = json_object_get(provider, "preferred_max_latency");
    double latency_s = (c->ttft_ms > 0 ? c->ttft_ms : c->latency_ms) / 1000.0;
    return misses(tput, c->throughput_tps, 1) || misses(lat, latency_s, 0);
}

size_t lg_router_prefer(const json_t *provider, const lg_candidate_t *cands, uint32_t *plan, size_t len)
{
    if (provider == NULL || (json_object_get(provider, "preferred_min_throughput") == NULL &&
                             json_object_get(provider, "preferred_max_latency") == NULL))
        return 0;
    uint32_t below[LG_MAX_CANDIDATES * 4];
    size_t keep = 0, moved = 0;
    for (size_t i = 0; i < len; ++i) {
        if (lg_router_below_preferences(provider, &cands[plan[i] - 1]) && moved < sizeof(below) / sizeof(below[0]))
            below[moved++] = plan[i];
        else
            plan[keep++] = plan[i];
    }
    memcpy(plan + keep, below, moved * sizeof(plan[0]));
    return moved;
}
