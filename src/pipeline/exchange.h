/* SPDX-License-Identifier: MIT */
/*
 * Private to src/pipeline: one generation request's state, as the parts the
 * modules own (attempts, reply, relay, settlement), the lifecycle enums that
 * replace the old flags, and the calls the modules make into each other.
 *
 * Lifetime (lifecycle.c): the exchange is heap-owned. A shared chunk in
 * req->pool points at it; its dispose callback (which h2o runs in every case,
 * also when the client leaves early) detaches the request and tears the
 * exchange down. Every entry point (h2o proceed, source events, timers) holds
 * a guard, so the exchange is freed only once no callback is on the stack and
 * every timer handle has closed.
 */
#ifndef LG_PIPELINE_EXCHANGE_H
#define LG_PIPELINE_EXCHANGE_H

#include <stdint.h>
#include <h2o.h>
#include <jansson.h>
#include <uv.h>
#include "core/util.h"
#include "pipeline/cache.h"
#include "pipeline/normal_form.h"
#include "pipeline/pipeline.h"
#include "pipeline/skin.h"
#include "pipeline/source.h"
#include "pipeline/wire.h"
#include "router/router.h"
#include "router/cost.h"
#include "upstream/sse.h"

#define LG_X_MAX_PLAN 64
#define LG_X_MAX_HELD 16
#define LG_X_OUTQ_PAUSE_BYTES (256 * 1024)
#define LG_X_OUTQ_MAX_BYTES (8 * 1024 * 1024)
#define LG_X_MAX_RETRIES_PER_CANDIDATE 2
#define LG_X_HANDLES 4 /* step timer, keep-alive timer, watch timer, source timer */

/** The exchange as a whole. */
typedef enum lg_xstate {
    LG_X_INTAKE,    /* created: authenticating, parsing, routing, admitting (the handler's part) */
    LG_X_RUNNING,   /* walking the plan: attempts and relay at work */
    LG_X_ANSWERED,  /* the answer is complete (success or final error); only bytes still to flush */
    LG_X_TORN_DOWN, /* settled and detached; freed once no guard and no open handle remain */
} lg_xstate_t;

/** The current attempt (attempts.c). */
typedef enum lg_attempt_state {
    LG_ATTEMPT_IDLE,       /* none: before the first, between two, after the last */
    LG_ATTEMPT_QUEUED,     /* waiting in the worker's provider queue for a concurrency slot */
    LG_ATTEMPT_NEXT,       /* the next attempt starts from the loop (never inside the failing callback) */
    LG_ATTEMPT_RETRY_WAIT, /* the policy retries after the upstream's Retry-After */
    LG_ATTEMPT_LIVE,       /* a source is producing the reply */
} lg_attempt_state_t;

/** How the live attempt's reply is decoded (reply.c). */
typedef enum lg_reply_mode {
    LG_REPLY_NONE, /* no head yet */
    LG_REPLY_BODY, /* whole body collected into body (JSON answer or an error) */
    LG_REPLY_SSE,  /* 2xx event stream, parsed event by event through the plugin */
} lg_reply_mode_t;

/** What the client has been sent (relay.c). */
typedef enum lg_relay_state {
    LG_RELAY_IDLE,      /* nothing: a whole-body answer or a stream may follow */
    LG_RELAY_OPEN,      /* SSE headers and keep-alives only: failover is still invisible to the client */
    LG_RELAY_COMMITTED, /* the first content chunk went out: the commit point is behind */
    LG_RELAY_RESUMING,  /* committed, and the stream broke: a continuation on the next endpoint is spliced in (continue.c) */
    LG_RELAY_CLOSING,   /* the last bytes are queued; the next send is FINAL */
    LG_RELAY_DONE,      /* FINAL handed to h2o, or a whole-body response sent */
} lg_relay_state_t;

/** How the exchange ended, for settlement. */
typedef enum lg_outcome {
    LG_OUTCOME_NONE,        /* still running */
    LG_OUTCOME_OK,          /* answered by candidate `served` */
    LG_OUTCOME_REFUSED,     /* refused before routing/attempts (auth, parse, limits) */
    LG_OUTCOME_FAILED,      /* every attempt failed before the commit point: error response */
    LG_OUTCOME_FAILED_LATE, /* failed after the commit point (mid-stream, or cut at shutdown): error chunk */
    LG_OUTCOME_CANCELLED,   /* the client left first */
} lg_outcome_t;

typedef struct lg_attempts {
    lg_attempt_state_t state;
    lg_candidate_t cands[LG_MAX_CANDIDATES];
    lg_route_ref_t refs[LG_MAX_CANDIDATES];
    size_t num_cands;
    lg_policy_req_t preq;
    char *preq_block;   /* strings behind preq (owned) */
    const char *policy; /* policy that decides (config string) */
    uint32_t plan[LG_X_MAX_PLAN];
    size_t plan_len, plan_pos;
    uint32_t tries[LG_MAX_CANDIDATES];
    uint32_t n;  /* attempts started */
    json_t *log; /* [{provider, model, status, ...}] per attempt (owned) */
    int stopped; /* the policy said stop */
    int all_rate_limited;
    lg_upstream_error_t last_err;
    int cur;       /* candidate of the current attempt, -1 = none */
    int last_cand; /* candidate of the latest attempt, -1 */
    int served;    /* candidate that produced the answer (or failed after the commit point), -1 */
    int slot_held; /* a provider concurrency slot is held for cur */
    const lg_provider_t *prov;
    void *pstate;
    lg_call_t call;
    int64_t start_us;       /* of the current attempt */
    int64_t retry_after_ms; /* from the reply's Retry-After, -1 */
    uv_timer_t step_timer;  /* NEXT and RETRY_WAIT */
    lg_exchange_t *wq_next; /* provider queue link */
    int64_t wq_deadline_ms;
} lg_attempts_t;

typedef struct lg_reply {
    lg_reply_mode_t mode;
    int status;
    lg_sse_parser_t sse;
    void *sstate;  /* plugin stream state (valid while mode == SSE) */
    lg_buf_t body; /* whole-body replies; initialised once, reset per attempt */
    int saw_chunk; /* the stream produced at least one valid choice chunk */
    int aborted;   /* an event ended this attempt; handled once the source callback unwinds */
    lg_upstream_error_t abort_err;
    lg_source_t source;
} lg_reply_t;

typedef struct lg_relay {
    lg_relay_state_t state;
    int send_inflight; /* an h2o_send awaits its proceed */
    int paused;        /* the source is paused until the client drains outq */
    h2o_generator_t gen;
    lg_buf_t outq, sending;
    json_t *held[LG_X_MAX_HELD]; /* chunks before the first content chunk (role, empty deltas) */
    size_t num_held;
    void *skin_state;
    uv_timer_t ka_timer;
    uv_timer_t watch_timer; /* HTTP/1 only: notices a client that closed while we wait for the upstream */
    int client_fd;
} lg_relay_t;

typedef struct lg_settlement {
    lg_outcome_t outcome;
    int status;    /* HTTP status sent (or to log) */
    json_t *usage; /* latest upstream usage (owned), NULL if none */
    char finish_reason[32];
    int64_t streamed_chars;
    lg_usage_t billed; /* the counts the client was told (and charged) */
    int64_t cost_pico;
    int admitted; /* rate limits charged: settle them */
    int settled;  /* ledger/log/metrics written */
    int64_t start_us, ttft_us;
} lg_settlement_t;

/** Mid-stream failover (continue.c): what the client has of the answer, and what the broken attempts cost. */
typedef struct lg_continuation {
    int wanted;           /* the request opted in (and streams chat) */
    int unfit;            /* the answer cannot be continued (n > 1, text over the cap) */
    int tool_call;        /* the live attempt streamed a tool call: its arguments are not continued */
    unsigned count;       /* continuations started */
    lg_buf_t text;        /* choice 0's text the client received, over every attempt */
    lg_usage_t prior;     /* billed counts of the broken attempts */
    lg_cost_t prior_cost; /* their cost, each at its own endpoint's price */
    json_t *body;         /* the live continuation's request tree (owned), tree path */
} lg_continuation_t;
/** Sticky session of this exchange (sticky.c): the key it is bound under and the candidate bound, if still eligible. */
typedef struct lg_sticky {
    char session_id[257]; /* effective id: body session_id, else x-session-id / x-claude-code-session-id; "" = none */
    int bound;            /* candidate index the session is stuck to (healthy and eligible), -1 = none */
} lg_sticky_t;

/** Routing trace of this exchange (trace.c). */
typedef struct lg_trace {
    int on;                 /* X-OpenRouter-Metadata: enabled */
    int echo;               /* debug.echo_upstream_body on a stream of an OpenAI skin */
    int sent;               /* the stream's metadata chunk went out */
    json_t *endpoints;      /* the router's per-endpoint verdicts (owned), NULL when off */
    lg_buf_t upstream_body; /* the live attempt's upstream body as built (echo only) */
} lg_trace_t;
/** The response cache's part of an exchange (cache_exchange.c). */
typedef enum lg_cache_state {
    LG_CACHE_OFF,  /* not asked for (or not cacheable): nothing read, nothing stored */
    LG_CACHE_MISS, /* looked up, not found (or cleared): the live answer is teed and stored at settlement */
    LG_CACHE_HIT,  /* the first attempt replays a stored answer (source_cache.c): zero usage, no charge */
} lg_cache_state_t;

typedef struct lg_xcache {
    lg_cache_state_t state;
    int decided; /* the first attempt made the decision */
    uint8_t key[LG_RCACHE_KEY_LEN];
    uint32_t ttl_s;
    const lg_rcache_entry_t *hit; /* reference held until settlement */
    lg_buf_t tee;                 /* MISS: the live attempt's upstream bytes */
    int tee_on;                   /* the current attempt is 200 and fits */
    int tee_sse;                  /* the teed bytes are an event stream */
} lg_xcache_t;

struct lg_exchange {
    lg_xstate_t state;
    lg_pipeline_worker_t *pw;
    lg_pipeline_runtime_t rt;
    const lg_skin_t *skin;
    h2o_req_t *req; /* NULL once the client is gone */
    uint64_t conn_id;
    lg_gen_request_t r;
    char id[40];
    lg_key_entry_t *key;
    lg_attempts_t at;
    lg_reply_t rp;
    lg_relay_t rl;
    lg_settlement_t st;
    lg_wire_t wire; /* OpenAI wire pass-through of the live attempt (wire.c) */
    lg_continuation_t cont;
    lg_sticky_t sticky;
    lg_trace_t trace;
    lg_xcache_t cache;
    lg_exchange_t *live_prev, *live_next;
    int guard;
    int handles_open;
};

/* ---- lifecycle.c ---- */
void lg_x_enter(lg_exchange_t *x);
void lg_x_leave(lg_exchange_t *x);
/** Settle, stop everything, close the handles (idempotent). */
void lg_x_teardown(lg_exchange_t *x);
/** The client-visible answer is complete: settle now (the dispose that follows tears down). */
void lg_x_answered(lg_exchange_t *x);
/** 1 while the exchange may still act on the client (request alive, not answered). */
int lg_x_active(const lg_exchange_t *x);
const lg_endpoint_conf_t *lg_x_endpoint(const lg_exchange_t *x, int idx);
const lg_provider_conf_t *lg_x_provider(const lg_exchange_t *x, int idx);
/** Labels for the skin: the serving candidate if any. */
void lg_x_skin_info(const lg_exchange_t *x, lg_skin_info_t *info);

/* ---- attempts.c ---- */
void lg_attempts_init(lg_exchange_t *x);
void lg_attempts_dispose(lg_exchange_t *x);
/** The policy's view of the request and the plan (built-in order if the policy fails). */
void lg_attempts_plan(lg_exchange_t *x);
/** Walk the plan from the current position until an attempt runs, waits, or the plan is exhausted. */
void lg_attempts_run(lg_exchange_t *x);
/** The live attempt failed before the commit point: record it, ask the policy, schedule what follows. */
void lg_attempts_failed(lg_exchange_t *x, lg_upstream_error_t *e);
/** The live attempt failed after the commit point: record it (no failover). */
void lg_attempts_failed_late(lg_exchange_t *x, const lg_upstream_error_t *e);
/** The live attempt produced the answer. */
void lg_attempts_succeeded(lg_exchange_t *x);
/** End the current attempt: cancel its source, release its slot, leave the queue. */
void lg_attempts_reset(lg_exchange_t *x);
void lg_attempts_close(lg_exchange_t *x, uv_close_cb on_closed);

/* ---- reply.c ---- */
extern const lg_source_events_t lg_reply_events;
void lg_reply_init(lg_exchange_t *x, size_t max_body);
/** Forget the attempt's decoding state (plugin stream state, parser, body). */
void lg_reply_reset(lg_exchange_t *x);
void lg_reply_dispose(lg_exchange_t *x);
/** The live attempt failed (e is consumed): fall over before the commit point, end the stream after it. */
void lg_reply_fail(lg_exchange_t *x, lg_upstream_error_t *e);

/* ---- relay.c ---- */
void lg_relay_init(lg_exchange_t *x);
void lg_relay_dispose(lg_exchange_t *x);
/** Keep-alive and client-watch timers (after the plan is made). */
void lg_relay_start_timers(lg_exchange_t *x);
void lg_relay_close(lg_exchange_t *x, uv_close_cb on_closed);
int lg_relay_committed(const lg_exchange_t *x);
/** Drop the normal-form chunks held before the commit point (their attempt failed: the next one sends its own). */
void lg_relay_forget_held(lg_exchange_t *x);
/** Headers went out (an SSE stream started): an error can only be an in-stream event now. */
int lg_relay_started(const lg_exchange_t *x);
/** A normal-form stream chunk (stolen): held until the first content chunk, which commits. */
void lg_relay_chunk(lg_exchange_t *x, json_t *chunk, const lg_chunk_facts_t *facts);
/** Push queued bytes to the client (once per upstream read). */
void lg_relay_flush(lg_exchange_t *x);
/** 1 when the client reads slower than the upstream writes: pause the source. */
int lg_relay_backlogged(const lg_exchange_t *x);
/** An upstream SSE comment (forwarded after the commit point if the skin does). */
void lg_relay_comment(lg_exchange_t *x, const char *text, size_t len);
/** Successful end of a stream: final usage, terminator, FINAL. */
void lg_relay_finish_stream(lg_exchange_t *x);
/** Whole-body success (resp stolen). */
void lg_relay_respond(lg_exchange_t *x, json_t *resp);
/** Error after the stream started: error event with what was billed, terminator. */
void lg_relay_fail_stream(lg_exchange_t *x, const lg_upstream_error_t *e, int status);
/** Whole-body error in the skin's shape (status 0 = the error's own; meta stolen). */
void lg_relay_error(lg_exchange_t *x, int err, int status, const char *msg, json_t *meta);
/** Pass-through (wire.c): one checked upstream chunk, rewritten and queued, or held before the commit point.
 * Returns 0, or -1 when the chunk header cannot be rendered. */
int lg_relay_wire_chunk(lg_exchange_t *x, const lg_pt_info_t *info);
/** Pass-through: successful end of a stream (our final usage chunk as bytes, [DONE], FINAL). */
void lg_relay_wire_finish(lg_exchange_t *x);
/** Pass-through: the whole-body answer, the upstream's bytes with the owned members and usage rewritten. */
void lg_relay_wire_respond(lg_exchange_t *x, const lg_pt_info_t *info);
/** One SSE `data:` event of the given JSON bytes, opening the stream if needed (before the commit point: failover
 * stays possible). OpenAI skins only. */
void lg_relay_event(lg_exchange_t *x, const char *json, size_t len);
/** Add a response header (copied into the pool). */
void lg_relay_header(lg_exchange_t *x, const char *name, const char *value);

/** Mid-stream failover: the plan index of the next endpoint that may continue the stream, or -1. */
int lg_attempts_continuation_pos(const lg_exchange_t *x);
/** Start the continuation at plan index pos from the loop (the broken attempt was recorded and reset). */
void lg_attempts_continue_at(lg_exchange_t *x, int pos);

/* ---- continue.c ---- */
void lg_continue_init(lg_exchange_t *x);
void lg_continue_dispose(lg_exchange_t *x);
/** Read the opt-in (request header) once the request is parsed. */
void lg_continue_plan(lg_exchange_t *x);
/** A new attempt starts: forget the previous one's tool-call state. */
void lg_continue_attempt_start(lg_exchange_t *x);
/** A chunk the client receives (tree path / pass-through event bytes): keep its text, note tool calls. */
void lg_continue_note_chunk(lg_exchange_t *x, const json_t *chunk);
void lg_continue_note_bytes(lg_exchange_t *x, const char *data, size_t len);
/** 1 while a continuation is being spliced into the committed stream. */
int lg_continue_resuming(const lg_exchange_t *x);
/** The live attempt broke after the commit point: 1 when a continuation was scheduled (the caller stops), else 0. */
int lg_continue_failover(lg_exchange_t *x, const lg_upstream_error_t *e);
/** Called once the attempt's call is filled: a continuation's request gets the prefill. 0, or -1 (cannot build). */
int lg_continue_prepare(lg_exchange_t *x);
/** Add the broken attempts' counts and cost to the live one's. */
void lg_continue_fold(const lg_exchange_t *x, lg_usage_t *u, lg_cost_t *cost);
/* ---- sticky.c ---- */
/** Before the policy: the session's id and bound candidate into the policy's view (preq.session_id/session_endpoint). */
void lg_sticky_annotate(lg_exchange_t *x);
/** After the policy: the bound candidate first in the plan, if the policy kept it. */
void lg_sticky_order(lg_exchange_t *x);
/** At settlement: an OK outcome binds the session to the candidate that served it (refreshing the TTL). */
void lg_sticky_settle(lg_exchange_t *x);

/* ---- trace.c ---- */
/** Route (the router with per-endpoint verdicts when the trace is on); decides trace and echo from the request. */
int lg_trace_route(lg_exchange_t *x, json_t **meta, char *err, size_t errlen);
void lg_trace_dispose(lg_exchange_t *x);
/** The openrouter_metadata object (new reference). */
json_t *lg_trace_json(lg_exchange_t *x);
/** Streams: the metadata chunk, once, before the first content (OpenAI skins). */
void lg_trace_stream_first(lg_exchange_t *x);
/** Streams with debug.echo_upstream_body: the attempt's upstream body as a chunk (after its source started). */
void lg_trace_echo(lg_exchange_t *x);
/* ---- cache_exchange.c (response cache) ---- */
/**
 * Called as each attempt starts, with the source kind that would serve it: decides once (first attempt) whether the
 * cache applies, sets the X-OpenRouter-Cache-* headers, and returns the replay source on a hit (the slot's priv holds
 * the entry), else live. Every attempt starts a fresh tee.
 */
const lg_source_ops_t *lg_xcache_pick(lg_exchange_t *x, int idx, const lg_source_ops_t *live);
/** The live attempt's upstream bytes (reply.c's on_data): kept while the reply is a 200 and fits. */
void lg_xcache_tee(lg_exchange_t *x, const char *data, size_t len);
/** 1 when the answer is a replay (usage zero, cost zero). */
int lg_xcache_hit(const lg_exchange_t *x);
/** The live attempt on candidate idx produced the answer (whole, before it is sent): store a MISS's 200. */
void lg_xcache_store(lg_exchange_t *x, int idx);
/** Once, from settlement: drop the tee. */
void lg_xcache_settle(lg_exchange_t *x);
/** The stored answer's generation id on a hit (ledger), else NULL. */
const char *lg_xcache_source_id(const lg_exchange_t *x);
/** Drop the hit's reference (exchange freed). */
void lg_xcache_dispose(lg_exchange_t *x);

/* ---- settle.c ---- */
/** The live attempt's own counts and cost at its endpoint's price (no continuation folded in). */
void lg_settle_attempt_counts(lg_exchange_t *x, lg_usage_t *u, lg_cost_t *cost);
/** Final usage as the client sees it (usage + cost), estimated where the upstream sent no counts; records billed/cost. */
json_t *lg_settle_final_usage(lg_exchange_t *x);
/** Once per exchange: policy on_done, metrics, key limits, ledger row, access log. */
void lg_settle(lg_exchange_t *x);

#endif
