/* SPDX-License-Identifier: MIT */
/*
 * Mid-stream failover: a chat stream that breaks after its first token
 * (reset, idle timeout, in-band error, a malformed event) continues on the
 * next endpoint of the plan instead of ending with an error event. The
 * continuation request is the conversation plus one trailing assistant
 * message holding the text the client already has (a prefill: the model
 * continues it); the relay stays committed (LG_RELAY_RESUMING) and splices
 * the new attempt's chunks into the same client stream, so the skin never
 * knows. Settlement adds the earlier attempts' counts and cost (each at its
 * own endpoint's price) to the live one's.
 *
 * Opt-in twice: per request (header X-LLMGate-Midstream-Failover: true) and
 * per model (midstream_failover: true in the config, checked for the endpoint
 * that would continue). A tool call being streamed is never continued, nor
 * are n > 1 answers (a choice index other than 0). Only while opted in are
 * the streamed chunks read for their text (one small parse per pass-through
 * event); otherwise nothing here runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/log.h"
#include "pipeline/exchange.h"

#define LG_CONT_MAX_TEXT (4 * 1024 * 1024) /* the prefix the gateway keeps; a longer answer is not continued */

static int header_true(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    return (v.len == 4 && h2o_lcstris(v.base, v.len, H2O_STRLIT("true"))) || (v.len == 1 && v.base[0] == '1');
}

void lg_continue_init(lg_exchange_t *x)
{
    lg_continuation_t *c = &x->cont;
    memset(c, 0, sizeof(*c));
    lg_buf_init(&c->text, LG_CONT_MAX_TEXT);
}

void lg_continue_dispose(lg_exchange_t *x)
{
    lg_buf_dispose(&x->cont.text);
    json_decref(x->cont.body);
    x->cont.body = NULL;
}

void lg_continue_plan(lg_exchange_t *x)
{
    lg_continuation_t *c = &x->cont;
    c->wanted =
        x->req != NULL && x->r.stream && x->skin->kind == LG_API_CHAT && header_true(x->req, "x-llmgate-midstream-failover");
}

void lg_continue_attempt_start(lg_exchange_t *x)
{
    x->cont.tool_call = 0; /* what the new attempt streams decides whether it may be continued in turn */
}

/** The text (choice 0's delta.content) and the tool-call state of one chunk the client receives. */
static void note_choices(lg_continuation_t *c, const json_t *choices)
{
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch)
    {
        json_t *index = json_object_get(ch, "index");
        if (json_integer_value(index) != 0) {
            c->unfit = 1; /* n > 1: one prefill cannot continue several answers */
            continue;
        }
        json_t *delta = json_object_get(ch, "delta");
        json_t *tc = json_object_get(delta, "tool_calls");
        if (json_is_array(tc) && json_array_size(tc) != 0)
            c->tool_call = 1;
        json_t *content = json_object_get(delta, "content");
        if (json_is_string(content) && lg_buf_append(&c->text, json_string_value(content), json_string_length(content)) != 0)
            c->unfit = 1;
    }
}

void lg_continue_note_chunk(lg_exchange_t *x, const json_t *chunk)
{
    if (x->cont.wanted)
        note_choices(&x->cont, json_object_get(chunk, "choices"));
}

void lg_continue_note_bytes(lg_exchange_t *x, const char *data, size_t len)
{
    if (!x->cont.wanted)
        return;
    json_t *chunk = json_loadb(data, len, 0, NULL); /* already checked by the pass-through; only when opted in */
    if (chunk == NULL) {
        x->cont.unfit = 1;
        return;
    }
    note_choices(&x->cont, json_object_get(chunk, "choices"));
    json_decref(chunk);
}

int lg_continue_resuming(const lg_exchange_t *x)
{
    return x->rl.state == LG_RELAY_RESUMING;
}

int lg_continue_failover(lg_exchange_t *x, const lg_upstream_error_t *e)
{
    lg_continuation_t *c = &x->cont;
    if (!c->wanted || c->unfit || c->tool_call || c->text.len == 0 || !e->retryable || !lg_x_active(x) ||
        x->rl.state >= LG_RELAY_CLOSING)
        return 0;
    int pos = lg_attempts_continuation_pos(x);
    if (pos < 0)
        return 0;
    lg_attempts_failed_late(x, e); /* the trail shows the broken attempt; it is the one served so far */
    /* what the broken attempt produced is billed at its own endpoint's price */
    if (x->st.usage != NULL || x->wire.has_usage || x->st.streamed_chars != 0) {
        lg_usage_t u;
        lg_cost_t cost;
        lg_settle_attempt_counts(x, &u, &cost);
        c->prior.prompt_tokens += u.prompt_tokens;
        c->prior.completion_tokens += u.completion_tokens;
        c->prior.cached_tokens += u.cached_tokens;
        c->prior.cache_write_tokens += u.cache_write_tokens;
        c->prior.cache_write_1h_tokens += u.cache_write_1h_tokens;
        c->prior.reasoning_tokens += u.reasoning_tokens;
        c->prior_cost.prompt += cost.prompt;
        c->prior_cost.completion += cost.completion;
        c->prior_cost.total += cost.total;
    }
    ++c->count;
    lg_attempts_reset(x);
    x->rl.paused = 0; /* the paused source is gone; the next one pauses itself if the client still lags */
    x->rl.state = LG_RELAY_RESUMING;
    LG_LOG(LG_LOG_INFO, "upstream", "%s: continuing the stream after %zu bytes on the next endpoint (continuation %u)", x->id,
           c->text.len, c->count);
    lg_attempts_continue_at(x, pos);
    return 1;
}

/** messages + {"role":"assistant","content":<text so far>} in obj (a copy the caller owns). */
static int add_prefill(lg_continuation_t *c, json_t *obj)
{
    json_t *messages = json_object_get(obj, "messages");
    if (!json_is_array(messages))
        return -1;
    json_t *copy = json_copy(messages);
    json_array_append_new(copy, json_pack("{s:s,s:s%}", "role", "assistant", "content", c->text.data, c->text.len));
    json_object_set_new(obj, "messages", copy);
    return 0;
}

int lg_continue_prepare(lg_exchange_t *x)
{
    lg_continuation_t *c = &x->cont;
    lg_attempts_t *a = &x->at;
    if (!lg_continue_resuming(x))
        return 0;
    json_decref(c->body);
    c->body = NULL;
    if (a->call.wire_body != NULL) {
        /* pass-through: the spliced upstream body, with the prefill appended */
        json_t *obj = json_loadb(a->call.wire_body, a->call.wire_body_len, 0, NULL);
        char *bytes = NULL;
        int rc =
            obj != NULL && add_prefill(c, obj) == 0 && (bytes = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17))) != NULL
                ? 0
                : -1;
        json_decref(obj);
        lg_buf_reset(&x->wire.body);
        if (rc == 0)
            rc = lg_buf_append(&x->wire.body, bytes, strlen(bytes));
        free(bytes);
        if (rc != 0)
            return -1;
        a->call.wire_body = x->wire.body.data;
        a->call.wire_body_len = x->wire.body.len;
        return 0;
    }
    if (a->call.body == NULL)
        return -1;
    c->body = json_copy(lg_gen_request_body(&x->r)); /* shallow: the request's members are shared, only messages is new */
    if (c->body == NULL || add_prefill(c, c->body) != 0)
        return -1;
    a->call.body = c->body;
    return 0;
}

void lg_continue_fold(const lg_exchange_t *x, lg_usage_t *u, lg_cost_t *cost)
{
    const lg_continuation_t *c = &x->cont;
    u->prompt_tokens += c->prior.prompt_tokens;
    u->completion_tokens += c->prior.completion_tokens;
    u->cached_tokens += c->prior.cached_tokens;
    u->cache_write_tokens += c->prior.cache_write_tokens;
    u->cache_write_1h_tokens += c->prior.cache_write_1h_tokens;
    u->reasoning_tokens += c->prior.reasoning_tokens;
    cost->prompt += c->prior_cost.prompt;
    cost->completion += c->prior_cost.completion;
    cost->total += c->prior_cost.total;
}
