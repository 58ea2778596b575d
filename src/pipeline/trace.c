/* SPDX-License-Identifier: MIT */
/*
 * The routing trace (OpenRouter's `openrouter_metadata`, opt-in with `X-OpenRouter-Metadata: enabled` or
 * `X-OpenRouter-Experimental-Metadata: enabled`) and `debug.echo_upstream_body` on streams.
 *
 * The metadata object has OpenRouter's required members (attempt, endpoints{available[{model, provider, selected}],
 * total}, is_byok, region, requested, strategy, summary, attempts[{model, provider, status}]) and llmgate's own under
 * `llmgate`: the policy, the variant and sort, every catalog endpoint the router looked at with the filter that removed
 * it (`filtered_by`: allowed_providers, max_price, require_parameters, data_policy:*, quantization, ...), the plan in
 * order, and the session binding. Attempts carry error_type and latency_ms too. It never holds keys, headers or
 * message content: names, ids, numbers.
 *
 * Whole bodies get it as a top-level member; streams in a first chunk of their own (`choices: []`) before any content.
 * The echo chunk (streams only, OpenAI chat and completions skins): one per attempted provider, `choices: []` and
 * `debug.echo_upstream_body` = the upstream request body as the plugin built it (the body holds no credentials; they
 * travel in headers, which are never echoed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pipeline/exchange.h"
#include "router/router.h"

static int header_enabled(h2o_req_t *req, const char *name)
{
    ssize_t hi = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (hi < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[hi].value;
    return v.len == 7 && strncasecmp(v.base, "enabled", 7) == 0;
}

int lg_trace_route(lg_exchange_t *x, json_t **meta, char *err, size_t errlen)
{
    lg_trace_t *t = &x->trace;
    t->on = x->req != NULL &&
            (header_enabled(x->req, "x-openrouter-metadata") || header_enabled(x->req, "x-openrouter-experimental-metadata"));
    /* the tree is built only for a stream whose bytes mention debug at all (the hot path never parses twice) */
    json_t *debug = NULL;
    if (x->r.stream && x->skin->wire_openai && x->r.raw != NULL && memmem(x->r.raw, x->r.raw_len, "\"debug\"", 7) != NULL &&
        lg_gen_request_body(&x->r) != NULL)
        debug = json_object_get(x->r.root, "debug");
    t->echo = json_is_true(json_object_get(debug, "echo_upstream_body"));
    if (t->echo)
        lg_buf_init(&t->upstream_body, 1 << 20);
    if (t->on)
        t->endpoints = json_array();
    return lg_router_candidates_traced(&x->rt.snap->catalog, x->rt.pstates, &x->r, x->at.cands, x->at.refs, &x->at.num_cands, meta,
                                       err, errlen, t->endpoints);
}

void lg_trace_dispose(lg_exchange_t *x)
{
    json_decref(x->trace.endpoints);
    x->trace.endpoints = NULL;
    if (x->trace.echo)
        lg_buf_dispose(&x->trace.upstream_body);
}

json_t *lg_trace_json(lg_exchange_t *x)
{
    const lg_attempts_t *a = &x->at;
    int sel = a->served >= 0 ? a->served : a->cur;
    json_t *available = json_array(), *attempts = json_deep_copy(a->log), *plan = json_array();
    for (size_t i = 0; i < a->num_cands; ++i)
        json_array_append_new(available, json_pack("{s:s,s:s,s:b}", "model", a->cands[i].model, "provider", a->cands[i].provider,
                                                   "selected", (int)i == sel));
    if (a->served < 0 && a->cur >= 0) /* a stream's first chunk: the live attempt is not logged yet */
        json_array_append_new(attempts,
                              json_pack("{s:s,s:s,s:i}", "provider", a->cands[a->cur].provider, "model",
                                        a->cands[a->cur].upstream_model, "status", x->rp.status != 0 ? x->rp.status : 200));
    for (size_t i = 0; i < a->plan_len; ++i) {
        const lg_candidate_t *c = &a->cands[a->plan[i] - 1];
        json_array_append_new(plan, json_pack("{s:i,s:s,s:s}", "id", (int)c->id, "provider", c->provider, "model", c->model));
    }
    char requested[600];
    snprintf(requested, sizeof(requested), "%.*s%s%s", (int)(x->r.model_lens[0] > 500 ? 500 : x->r.model_lens[0]), x->r.models[0],
             x->r.variant != NULL ? ":" : "", x->r.variant != NULL ? x->r.variant : "");
    size_t filtered = 0;
    size_t i;
    json_t *e;
    json_array_foreach(x->trace.endpoints, i, e) filtered += !json_is_true(json_object_get(e, "eligible"));
    char summary[1400];
    snprintf(summary, sizeof(summary), "%s served %s after %u attempt%s; %zu of %zu endpoints eligible (%zu filtered), policy %s",
             sel >= 0 ? a->cands[sel].provider : "no provider", sel >= 0 ? a->cands[sel].model : requested, a->n,
             a->n == 1 ? "" : "s", a->num_cands, json_array_size(x->trace.endpoints), filtered,
             a->policy != NULL ? a->policy : "builtin");
    json_t *ll = json_pack("{s:s?,s:s?,s:s?,s:O,s:o}", "policy", a->policy, "variant", x->r.variant, "sort", x->r.sort,
                           "candidates", x->trace.endpoints != NULL ? x->trace.endpoints : json_array(), "plan", plan);
    if (x->sticky.session_id[0] != '\0')
        json_object_set_new(ll, "session", json_pack("{s:b}", "sticky", x->sticky.bound >= 0));
    return json_pack("{s:i,s:o,s:{s:o,s:i},s:b,s:n,s:s,s:s,s:s,s:o}", "attempt", (int)(a->n != 0 ? a->n : 1), "attempts", attempts,
                     "endpoints", "available", available, "total", (int)a->num_cands, "is_byok", 0, "region", "requested",
                     requested, "strategy", x->r.num_models > 1 ? "fallback" : "direct", "summary", summary, "llmgate", ll);
}

/* one SSE data event with choices:[] and the given member, in the skin's chunk object */
static void chunk_event(lg_exchange_t *x, const char *member, json_t *value)
{
    lg_skin_info_t si;
    lg_x_skin_info(x, &si);
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", si.gen_id, "object",
                          x->skin->kind == LG_API_COMPLETIONS ? "text_completion" : "chat.completion.chunk", "created",
                          (json_int_t)si.created, "model", si.model, "choices", member, value);
    char *s = c != NULL ? json_dumps(c, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(c);
    if (s != NULL)
        lg_relay_event(x, s, strlen(s));
    free(s);
}

void lg_trace_stream_first(lg_exchange_t *x)
{
    if (!x->trace.on || x->trace.sent || !x->skin->wire_openai)
        return;
    x->trace.sent = 1;
    chunk_event(x, "openrouter_metadata", lg_trace_json(x));
}

void lg_trace_echo(lg_exchange_t *x)
{
    if (!x->trace.echo)
        return;
    const lg_call_t *call = &x->at.call;
    json_t *body = NULL;
    if (x->trace.upstream_body.len != 0)
        body = json_loadb(x->trace.upstream_body.data, x->trace.upstream_body.len, 0, NULL);
    else if (call->wire_body != NULL)
        body = json_loadb(call->wire_body, call->wire_body_len, 0, NULL);
    else if (call->body != NULL)
        body = json_deep_copy(call->body);
    if (body == NULL) /* not JSON (or none): the bytes as a string */
        body = json_stringn(x->trace.upstream_body.data != NULL ? x->trace.upstream_body.data : "", x->trace.upstream_body.len);
    lg_buf_reset(&x->trace.upstream_body);
    chunk_event(x, "debug", json_pack("{s:o}", "echo_upstream_body", body));
}
